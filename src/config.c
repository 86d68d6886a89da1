/* Configuration: built-in defaults, a libconfig file walked strictly (unknown keys, wrong types and
 * out-of-range values are errors with their line), and the cross-field checks shared with the
 * command line. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <libconfig.h>

#include "config.h"
#include "log.h"

/* Settings whose line (and validity) the cross-field checks need. */
enum field_id {
	F_NONE = 0,
	F_QUEUE_NUM,
	F_QUEUE_COUNT,
	F_TIMEOUT_ESTABLISHED,
	F_EVENTS_RATE,
	F_EVENTS_BURST,
	F_IDLE_TIMEOUT,
	F_KEEPALIVE,
	F_COUNT
};

enum key_kind { K_GROUP, K_INT, K_BOOL, K_STRING };

/* One key of the file. Integers and booleans are stored through offset/size; strings go through
 * a setter that returns NULL when the value is accepted, or what was expected otherwise. */
struct cfg_key {
	const char *name;
	enum key_kind kind;
	enum field_id id;
	const struct cfg_key *children;            /* K_GROUP */
	long long lo, hi;                          /* K_INT: accepted range */
	const char *zero_note;                     /* K_INT: 0 is accepted too, and means this */
	size_t offset, size;                       /* K_INT, K_BOOL */
	const char *(*set)(struct config *, const char *);  /* K_STRING */
};

#define FIELD_SIZE(f) sizeof(((struct config *)0)->f)
#define GROUP_KEY(n, c) { .name = (n), .kind = K_GROUP, .children = (c) }
#define INT_KEY(n, f, l, h) \
	{ .name = (n), .kind = K_INT, .lo = (l), .hi = (h), \
	  .offset = offsetof(struct config, f), .size = FIELD_SIZE(f) }
#define INT_KEY_ID(n, f, l, h, i) \
	{ .name = (n), .kind = K_INT, .id = (i), .lo = (l), .hi = (h), \
	  .offset = offsetof(struct config, f), .size = FIELD_SIZE(f) }
#define INT_KEY_ZERO(n, f, l, h, i, z) \
	{ .name = (n), .kind = K_INT, .id = (i), .lo = (l), .hi = (h), .zero_note = (z), \
	  .offset = offsetof(struct config, f), .size = FIELD_SIZE(f) }
#define BOOL_KEY(n, f, i) \
	{ .name = (n), .kind = K_BOOL, .id = (i), \
	  .offset = offsetof(struct config, f), .size = FIELD_SIZE(f) }
#define STRING_KEY(n, s) { .name = (n), .kind = K_STRING, .set = (s) }
#define END_KEYS { .name = NULL }

static const char *set_mode(struct config *cfg, const char *s);
static const char *set_events_path(struct config *cfg, const char *s);
static const char *set_log_target(struct config *cfg, const char *s);
static const char *set_log_level(struct config *cfg, const char *s);

static const struct cfg_key queue_keys[] = {
	INT_KEY_ID("num", queue_num, 0, 65535, F_QUEUE_NUM),
	INT_KEY_ID("count", queue_count, 1, 64, F_QUEUE_COUNT),
	INT_KEY("maxlen", queue_maxlen, 16, 1048576),
	INT_KEY("copy_range", copy_range, 128, 65535),
	BOOL_KEY("fail_open", fail_open, F_NONE),
	INT_KEY_ZERO("rcvbuf", rcvbuf, 65536, 1073741824, F_NONE, "for the kernel default"),
	INT_KEY("batch", batch, 1, 1024),
	END_KEYS
};

static const struct cfg_key timeout_keys[] = {
	INT_KEY("syn", timeout.syn, 1, 2592000),
	INT_KEY_ID("established", timeout.established, 1, 2592000, F_TIMEOUT_ESTABLISHED),
	INT_KEY("closing", timeout.closing, 1, 2592000),
	INT_KEY("closed", timeout.closed, 1, 2592000),
	END_KEYS
};

static const struct cfg_key flows_keys[] = {
	INT_KEY("max", flows_max, 1024, 16777216),
	GROUP_KEY("timeout", timeout_keys),
	END_KEYS
};

static const struct cfg_key events_keys[] = {
	STRING_KEY("path", set_events_path),
	INT_KEY_ID("rate", events_rate, 1, 1000000, F_EVENTS_RATE),
	INT_KEY_ID("burst", events_burst, 1, 10000000, F_EVENTS_BURST),
	END_KEYS
};

static const struct cfg_key log_keys[] = {
	STRING_KEY("target", set_log_target),
	STRING_KEY("level", set_log_level),
	END_KEYS
};

static const struct cfg_key eviction_keys[] = {
	INT_KEY_ZERO("idle_timeout", idle_timeout, 10, 86400, F_IDLE_TIMEOUT, "when not configured"),
	BOOL_KEY("keepalive", keepalive, F_KEEPALIVE),
	END_KEYS
};

static const struct cfg_key top_keys[] = {
	STRING_KEY("mode", set_mode),
	GROUP_KEY("queue", queue_keys),
	GROUP_KEY("flows", flows_keys),
	GROUP_KEY("events", events_keys),
	GROUP_KEY("log", log_keys),
	GROUP_KEY("eviction", eviction_keys),
	END_KEYS
};

/* State of one CFG_Load: where each tracked setting was found, and whether it was rejected (a
 * rejected value keeps its default, and cross-field checks on it would only add noise). */
struct load_state {
	struct config *cfg;
	struct config_errors *errs;
	const char *file;
	int line[F_COUNT];
	const char *line_file[F_COUNT];  /* an @include'd file, or NULL for the main one */
	unsigned char bad[F_COUNT];
	char *text_file;           /* source text of the last file read back (see literal_mismatch) */
	char *text;
	size_t text_len;
};

static char *
xstrdup(const char *s)
{
	char *p = strdup(s);

	if (p == NULL)
		fatal("strdup");
	return p;
}

static void
replace_string(char **dst, const char *s)
{
	free(*dst);
	*dst = xstrdup(s);
}

static const char *
set_mode(struct config *cfg, const char *s)
{
	int m = CFG_ParseMode(s);

	if (m < 0)
		return "detect or enforce";
	cfg->mode = (enum rg_mode)m;
	return NULL;
}

static const char *
set_events_path(struct config *cfg, const char *s)
{
	if (*s == '\0')
		return "a file name, or - for stdout";
	replace_string(&cfg->events_path, s);
	return NULL;
}

static const char *
set_log_target(struct config *cfg, const char *s)
{
	if (strcmp(s, "stderr") == 0)
		cfg->log_syslog = 0;
	else if (strcmp(s, "syslog") == 0)
		cfg->log_syslog = 1;
	else
		return "stderr or syslog";
	return NULL;
}

static const char *
set_log_level(struct config *cfg, const char *s)
{
	int lvl = LOG_ParseLevel(s);

	if (lvl < 0)
		return "error, warning, info or debug";
	cfg->log_level = lvl;
	return NULL;
}

void
CFG_SetDefaults(struct config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->mode = RG_MODE_DETECT;

	cfg->queue_num = 0;
	cfg->queue_count = 1;
	cfg->queue_maxlen = 4096;
	cfg->copy_range = 256;
	cfg->fail_open = 1;
	cfg->rcvbuf = 8388608;
	cfg->batch = 64;

	cfg->flows_max = 262144;
	cfg->timeout.syn = 30;
	cfg->timeout.established = 7440;
	cfg->timeout.closing = 120;
	cfg->timeout.closed = 10;

	cfg->events_path = xstrdup("-");
	cfg->events_rate = 1000;
	cfg->events_burst = 5000;

	cfg->log_syslog = 0;
	cfg->log_level = LOG_LVL_INFO;

	cfg->idle_timeout = 0;
	cfg->keepalive = 0;

	cfg->source = xstrdup("");
}

void
CFG_Copy(struct config *dst, const struct config *src)
{
	*dst = *src;
	dst->events_path = src->events_path ? xstrdup(src->events_path) : NULL;
	dst->source = src->source ? xstrdup(src->source) : NULL;
}

void
CFG_Free(struct config *cfg)
{
	free(cfg->events_path);
	cfg->events_path = NULL;
	free(cfg->source);
	cfg->source = NULL;
}

int
CFG_ParseMode(const char *s)
{
	if (strcmp(s, "detect") == 0)
		return RG_MODE_DETECT;
	if (strcmp(s, "enforce") == 0)
		return RG_MODE_ENFORCE;
	return -1;
}

const char *
CFG_ModeName(enum rg_mode mode)
{
	switch (mode) {
	case RG_MODE_DETECT:
		return "detect";
	case RG_MODE_ENFORCE:
		return "enforce";
	}
	return "unknown";
}

static void add_verror(struct config_errors *errs, const char *file, int line, const char *fmt,
	va_list ap) __attribute__((format(printf, 4, 0)));

static void
add_verror(struct config_errors *errs, const char *file, int line, const char *fmt, va_list ap)
{
	struct config_error *e;
	va_list ap2;
	char *msg;
	int n;

	va_copy(ap2, ap);
	n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		n = 0;
	msg = malloc((size_t)n + 1);
	if (msg == NULL)
		fatal("malloc");
	if (vsnprintf(msg, (size_t)n + 1, fmt, ap) < 0)
		msg[0] = '\0';

	if (errs->count == errs->cap) {
		size_t cap = errs->cap ? errs->cap * 2 : 8;
		struct config_error *items = realloc(errs->items, cap * sizeof(*items));

		if (items == NULL)
			fatal("realloc");
		errs->items = items;
		errs->cap = cap;
	}
	e = &errs->items[errs->count++];
	e->file = xstrdup(file ? file : "");
	e->line = line;
	e->message = msg;
}

void
CFG_AddError(struct config_errors *errs, const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	add_verror(errs, file, line, fmt, ap);
	va_end(ap);
}

void
CFG_PrintErrors(const struct config_errors *errs, FILE *out)
{
	for (size_t i = 0; i < errs->count; i++) {
		const struct config_error *e = &errs->items[i];

		if (e->line > 0)
			fprintf(out, "%s:%d: %s\n", e->file, e->line, e->message);
		else
			fprintf(out, "%s: %s\n", e->file, e->message);
	}
}

void
CFG_FreeErrors(struct config_errors *errs)
{
	for (size_t i = 0; i < errs->count; i++) {
		free(errs->items[i].file);
		free(errs->items[i].message);
	}
	free(errs->items);
	errs->items = NULL;
	errs->count = 0;
	errs->cap = 0;
}

/*
 * Cross-field checks, shared by CFG_Load (ld set: errors carry the line of a setting involved,
 * and a check is skipped when one of its settings was rejected, since the default that stayed in
 * its place is not what the user wrote) and CFG_Validate (ld NULL: file "command line", line 0).
 */
static int
cross_skip(const struct load_state *ld, enum field_id a, enum field_id b)
{
	return ld != NULL && (ld->bad[a] || ld->bad[b]);
}

/* Place of the preferred setting if the file has it, else of the other one. */
static enum field_id
cross_at(const struct load_state *ld, enum field_id prefer, enum field_id other)
{
	return ld != NULL && ld->line[prefer] ? prefer : other;
}

static void cross_error(const struct load_state *ld, enum field_id at, const char *file,
	struct config_errors *errs, const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void
cross_error(const struct load_state *ld, enum field_id at, const char *file,
	struct config_errors *errs, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (ld == NULL)
		add_verror(errs, file, 0, fmt, ap);
	else
		add_verror(errs, ld->line_file[at] ? ld->line_file[at] : file, ld->line[at], fmt, ap);
	va_end(ap);
}

static void
check_cross(const struct config *cfg, const struct load_state *ld, const char *file,
	struct config_errors *errs)
{
	unsigned int last_queue = (unsigned int)cfg->queue_num + cfg->queue_count - 1;

	if (last_queue > 65535 && !cross_skip(ld, F_QUEUE_NUM, F_QUEUE_COUNT))
		cross_error(ld, cross_at(ld, F_QUEUE_COUNT, F_QUEUE_NUM), file, errs,
		    "queue.num + queue.count - 1 is %u, beyond the last queue number 65535",
		    last_queue);

	if (cfg->events_burst < cfg->events_rate && !cross_skip(ld, F_EVENTS_RATE, F_EVENTS_BURST))
		cross_error(ld, cross_at(ld, F_EVENTS_BURST, F_EVENTS_RATE), file, errs,
		    "events.burst (%u) must be at least events.rate (%u)",
		    cfg->events_burst, cfg->events_rate);

	if (cfg->keepalive && cfg->idle_timeout == 0 && !cross_skip(ld, F_KEEPALIVE, F_IDLE_TIMEOUT))
		cross_error(ld, cross_at(ld, F_KEEPALIVE, F_IDLE_TIMEOUT), file, errs,
		    "eviction.keepalive needs eviction.idle_timeout");

	if (cfg->idle_timeout != 0 && cfg->idle_timeout >= cfg->timeout.established &&
	    !cross_skip(ld, F_IDLE_TIMEOUT, F_TIMEOUT_ESTABLISHED))
		cross_error(ld, cross_at(ld, F_TIMEOUT_ESTABLISHED, F_IDLE_TIMEOUT), file, errs,
		    "flows.timeout.established must be longer than eviction.idle_timeout");
}

int
CFG_Validate(const struct config *cfg, struct config_errors *errs)
{
	size_t before = errs->count;

	check_cross(cfg, NULL, "command line", errs);
	return errs->count > before ? -1 : 0;
}

static void setting_error(struct load_state *ld, const config_setting_t *s, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* An error at a setting: its own file (it may come from an @include) and line. */
static void
setting_error(struct load_state *ld, const config_setting_t *s, const char *fmt, ...)
{
	const char *file = config_setting_source_file(s);
	va_list ap;

	va_start(ap, fmt);
	add_verror(ld->errs, file ? file : ld->file, (int)config_setting_source_line(s), fmt, ap);
	va_end(ap);
}

static void
store_uint(struct config *cfg, const struct cfg_key *k, long long v)
{
	char *p = (char *)cfg + k->offset;

	if (k->size == sizeof(uint16_t)) {
		uint16_t u = (uint16_t)v;
		memcpy(p, &u, sizeof(u));
	} else {
		uint32_t u = (uint32_t)v;
		memcpy(p, &u, sizeof(u));
	}
}

static int
is_name_char(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	    c == '_' || c == '-' || c == '*';
}

/* Read a whole file into ld's one-entry cache; 0 on success. */
static int
load_text(struct load_state *ld, const char *file)
{
	FILE *f;
	char *buf = NULL;
	size_t len = 0, cap = 0, n;

	if (ld->text_file != NULL && strcmp(ld->text_file, file) == 0)
		return ld->text ? 0 : -1;
	free(ld->text_file);
	free(ld->text);
	ld->text_file = xstrdup(file);
	ld->text = NULL;
	ld->text_len = 0;
	if ((f = fopen(file, "r")) == NULL)
		return -1;
	do {
		if (len == cap) {
			char *nb;

			cap = cap ? cap * 2 : 8192;
			if ((nb = realloc(buf, cap + 1)) == NULL)
				fatal("realloc");
			buf = nb;
		}
		n = fread(buf + len, 1, cap - len, f);
		len += n;
	} while (n > 0);
	if (ferror(f)) {
		fclose(f);
		free(buf);
		return -1;
	}
	fclose(f);
	buf[len] = '\0';
	ld->text = buf;
	ld->text_len = len;
	return 0;
}

/*
 * libconfig 1.5 converts a decimal literal without the L suffix with atoi() and a hexadecimal one
 * with a cast to int, so "rcvbuf = 4294967296;" (4 GiB) arrives as 0 and would be accepted as
 * "kernel default", and 4295032832 as 65536. Read the literal back from the source text (at the
 * setting's line: its name, '=' or ':', the number) and compare. Returns 1 when the literal does
 * not denote the value libconfig gave us, with *lit and *litlen set to it; 0 when it matches or
 * cannot be found (the check is best effort and never rejects what it cannot read).
 */
static int
literal_mismatch(struct load_state *ld, const config_setting_t *s, const char *name, long long v,
	const char **lit, int *litlen)
{
	const char *file = config_setting_source_file(s);
	int line = (int)config_setting_source_line(s);
	size_t nlen = strlen(name);
	const char *p, *eol;

	if (load_text(ld, file ? file : ld->file) < 0 || line < 1)
		return 0;
	p = ld->text;
	for (int l = 1; l < line; l++) {
		if ((p = strchr(p, '\n')) == NULL)
			return 0;
		p++;
	}
	if ((eol = strchr(p, '\n')) == NULL)
		eol = ld->text + ld->text_len;

	for (; p + nlen <= eol; p++) {
		const char *q = p + nlen, *start;
		unsigned long long mag;
		int neg = 0, base = 10, over = 0, digits = 0;

		/* Do not look inside strings and comments: the name may appear there. */
		if (*p == '"') {
			for (p++; p < eol && *p != '"'; p++)
				if (*p == '\\' && p[1] != '\0')
					p++;
			continue;
		}
		if (*p == '#' || (p[0] == '/' && p[1] == '/'))
			return 0;
		if (p[0] == '/' && p[1] == '*') {
			const char *end = strstr(p + 2, "*/");

			if (end == NULL || end >= eol)
				return 0;
			p = end + 1;
			continue;
		}
		if (strncmp(p, name, nlen) != 0 || (p > ld->text && is_name_char((unsigned char)p[-1])) ||
		    is_name_char((unsigned char)*q))
			continue;
		while (*q == ' ' || *q == '\t' || *q == '\r' || *q == '\n' || *q == '\f')
			q++;
		if (*q != '=' && *q != ':')
			continue;
		q++;
		while (*q == ' ' || *q == '\t' || *q == '\r' || *q == '\n' || *q == '\f')
			q++;
		start = q;
		if (*q == '-' || *q == '+')
			neg = *q++ == '-';
		if (q[0] == '0' && (q[1] == 'x' || q[1] == 'X')) {
			base = 16;
			q += 2;
		}
		for (mag = 0;; q++, digits++) {
			int d;

			if (*q >= '0' && *q <= '9')
				d = *q - '0';
			else if (base == 16 && *q >= 'a' && *q <= 'f')
				d = *q - 'a' + 10;
			else if (base == 16 && *q >= 'A' && *q <= 'F')
				d = *q - 'A' + 10;
			else
				break;
			if (mag > (ULLONG_MAX - (unsigned)d) / (unsigned)base)
				over = 1;
			else
				mag = mag * (unsigned)base + (unsigned)d;
		}
		if (digits == 0)
			return 0;
		while (*q == 'L')
			q++;
		*lit = start;
		*litlen = (int)(q - start);
		if (over || mag > (unsigned long long)LLONG_MAX)
			return 1;
		return (neg ? -(long long)mag : (long long)mag) != v;
	}
	return 0;
}

/* Returns 0 when the value was accepted and stored, -1 after reporting an error. */
static int
load_leaf(struct load_state *ld, const struct cfg_key *k, const config_setting_t *s,
	const char *path)
{
	int type = config_setting_type(s);
	const char *expect, *lit;
	long long v;
	int b, litlen;

	switch (k->kind) {
	case K_INT:
		if (type != CONFIG_TYPE_INT && type != CONFIG_TYPE_INT64) {
			setting_error(ld, s, "%s: expected an integer", path);
			return -1;
		}
		v = config_setting_get_int64(s);
		if (literal_mismatch(ld, s, k->name, v, &lit, &litlen)) {
			if (k->zero_note != NULL)
				setting_error(ld, s, "%s: %.*s is out of range %lld..%lld (or 0 %s)",
				    path, litlen, lit, k->lo, k->hi, k->zero_note);
			else
				setting_error(ld, s, "%s: %.*s is out of range %lld..%lld",
				    path, litlen, lit, k->lo, k->hi);
			return -1;
		}
		if (v == 0 && k->zero_note != NULL) {
			store_uint(ld->cfg, k, 0);
			return 0;
		}
		if (v < k->lo || v > k->hi) {
			if (k->zero_note != NULL)
				setting_error(ld, s, "%s: %lld is out of range %lld..%lld (or 0 %s)",
				    path, v, k->lo, k->hi, k->zero_note);
			else
				setting_error(ld, s, "%s: %lld is out of range %lld..%lld",
				    path, v, k->lo, k->hi);
			return -1;
		}
		store_uint(ld->cfg, k, v);
		return 0;
	case K_BOOL:
		if (type != CONFIG_TYPE_BOOL) {
			setting_error(ld, s, "%s: expected a boolean (true or false)", path);
			return -1;
		}
		b = config_setting_get_bool(s) ? 1 : 0;
		memcpy((char *)ld->cfg + k->offset, &b, sizeof(b));
		return 0;
	case K_STRING:
		if (type != CONFIG_TYPE_STRING) {
			setting_error(ld, s, "%s: expected a string", path);
			return -1;
		}
		expect = k->set(ld->cfg, config_setting_get_string(s));
		if (expect != NULL) {
			setting_error(ld, s, "%s: invalid value \"%s\" (expected %s)", path,
			    config_setting_get_string(s), expect);
			return -1;
		}
		return 0;
	case K_GROUP:
		break;
	}
	return -1;
}

/*
 * Walk every setting of a group (rather than looking up the keys we know) so that unknown keys,
 * which libconfig accepts silently, are reported instead of being ignored. prefix is the dotted
 * path of the group ("" at the top, "flows.timeout." below).
 */
static void
walk_group(struct load_state *ld, const config_setting_t *group, const struct cfg_key *keys,
	const char *prefix)
{
	int n = config_setting_length(group);

	for (int i = 0; i < n; i++) {
		const config_setting_t *s = config_setting_get_elem(group, (unsigned int)i);
		const struct cfg_key *k;
		const char *name;
		char path[128];

		if (s == NULL)
			continue;
		if ((name = config_setting_name(s)) == NULL)
			name = "";
		snprintf(path, sizeof(path), "%s%s", prefix, name);
		for (k = keys; k->name != NULL; k++)
			if (strcmp(k->name, name) == 0)
				break;
		if (k->name == NULL) {
			setting_error(ld, s, "unknown key '%s%s'", prefix, name);
			continue;
		}
		if (k->kind == K_GROUP) {
			char sub[sizeof(path) + 1];

			if (config_setting_type(s) != CONFIG_TYPE_GROUP) {
				setting_error(ld, s, "%s: expected a group", path);
				continue;
			}
			snprintf(sub, sizeof(sub), "%s.", path);
			walk_group(ld, s, k->children, sub);
			continue;
		}
		if (k->id != F_NONE) {
			ld->line[k->id] = (int)config_setting_source_line(s);
			ld->line_file[k->id] = config_setting_source_file(s);
		}
		if (load_leaf(ld, k, s, path) < 0 && k->id != F_NONE)
			ld->bad[k->id] = 1;
	}
}

int
CFG_Load(struct config *cfg, const char *file, struct config_errors *errs)
{
	struct load_state ld;
	size_t before = errs->count;
	config_t c;

	CFG_SetDefaults(cfg);
	replace_string(&cfg->source, file);

	config_init(&c);
	errno = 0;
	if (config_read_file(&c, file) != CONFIG_TRUE) {
		int saved = errno;
		struct stat st;

		/* libconfig opens a directory happily and then fails to read it, errno unset. */
		if (saved == 0 && stat(file, &st) == 0 && S_ISDIR(st.st_mode))
			saved = EISDIR;
		if (config_error_type(&c) == CONFIG_ERR_FILE_IO)
			CFG_AddError(errs, file, 0, "cannot read: %s",
			    saved ? strerror(saved) : config_error_text(&c));
		else
			CFG_AddError(errs, config_error_file(&c) ? config_error_file(&c) : file,
			    config_error_line(&c), "%s", config_error_text(&c));
		config_destroy(&c);
		return -1;
	}

	memset(&ld, 0, sizeof(ld));
	ld.cfg = cfg;
	ld.errs = errs;
	ld.file = file;
	walk_group(&ld, config_root_setting(&c), top_keys, "");
	check_cross(cfg, &ld, file, errs);
	free(ld.text_file);
	free(ld.text);

	config_destroy(&c);
	return errs->count > before ? -1 : 0;
}
