/* rstguardctl: ask a running rstguard over its control socket (control.h). One request line,
 * one answer line; the answer is printed as tables, or as it came with --json. */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "json.h"

#define DEFAULT_SOCKET "/run/rstguard/rstguard.sock"
#define ANSWER_MAX (2u << 20)
#define MAX_DEPTH 16
#define MAX_NODES 100000

/* Exit codes (rstguardctl(8)). */
#define EXIT_OK 0
#define EXIT_REFUSED 1     /* the daemon answered with an error */
#define EXIT_USAGE 2
#define EXIT_COMM 3        /* no daemon, no answer in time, or an answer that is not JSON */

static void
usage(FILE *out)
{
	fprintf(out,
		"usage: rstguardctl [-S PATH] [--json] [-T SECONDS] COMMAND [ARGS]\n"
		"\n"
		"  -S, --socket PATH     control socket (default " DEFAULT_SOCKET ")\n"
		"  -j, --json            print the daemon's JSON answer as it came\n"
		"  -T, --timeout SECS    give up waiting for the answer after SECS seconds (default 10)\n"
		"  -V, --version         print the version and exit\n"
		"  -h, --help            print this help and exit\n"
		"\n"
		"commands:\n"
		"  status                version, uptime, mode, queues, flows, configuration, last reload\n"
		"  stats                 every counter, and the kernel's counters of each queue\n"
		"  flows [--ip ADDR] [--port N] [--state STATE] [--limit N]\n"
		"                        the live flows, most recent first (default limit 100, at most 1000)\n"
		"  timeouts              the learnt middlebox idle timeouts per server network\n"
		"  reload                reload the configuration (as SIGHUP); prints the errors if rejected\n"
		"  metrics               the Prometheus text exposition\n"
		"\n"
		"exit status: 0 success, 1 the daemon refused the request, 2 usage error,\n"
		"             3 no answer (no daemon, no permission, timeout, garbled answer)\n");
}

/* ---- a small JSON reader for the answer ---- */

enum jtype { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };

struct jnode {
	enum jtype type;
	const char *key;      /* member name (objects' children), NUL-terminated in place */
	const char *val;      /* J_STR, J_NUM, J_BOOL: the text, NUL-terminated in place */
	int first, next;      /* first child; next sibling (-1: none) */
	char lit[24];         /* J_NUM, J_BOOL, J_NULL: the literal */
};

struct jdoc {
	struct jnode *n;
	int count;
	char *p, *end;
};

static int jvalue(struct jdoc *d, int depth);

static void
jws(struct jdoc *d)
{
	while (d->p < d->end && (*d->p == ' ' || *d->p == '\t' || *d->p == '\r' || *d->p == '\n'))
		d->p++;
}

/* A string at d->p, decoded in place (escapes only shrink it). */
static char *
jstring(struct jdoc *d)
{
	char *out, *start;

	if (d->p >= d->end || *d->p != '"')
		return NULL;
	start = out = ++d->p;
	while (d->p < d->end && *d->p != '"') {
		if (*d->p == '\\') {
			if (++d->p >= d->end)
				return NULL;
			switch (*d->p) {
			case 'n': *out++ = '\n'; break;
			case 't': *out++ = '\t'; break;
			case 'r': *out++ = '\r'; break;
			case 'b': *out++ = '\b'; break;
			case 'f': *out++ = '\f'; break;
			case 'u':
				if (d->end - d->p < 5)
					return NULL;
				*out++ = '?';   /* shown, not interpreted */
				d->p += 4;
				break;
			default: *out++ = *d->p; break;
			}
			d->p++;
		} else {
			*out++ = *d->p++;
		}
	}
	if (d->p >= d->end)
		return NULL;
	d->p++;
	*out = '\0';
	return start;
}

static int
jnew(struct jdoc *d, enum jtype t)
{
	if (d->count >= MAX_NODES)
		return -1;
	d->n[d->count] = (struct jnode){ .type = t, .first = -1, .next = -1 };
	return d->count++;
}

static int
jcontainer(struct jdoc *d, int depth, int obj)
{
	int me = jnew(d, obj ? J_OBJ : J_ARR), last = -1;

	if (me < 0 || depth > MAX_DEPTH)
		return -1;
	d->p++;
	jws(d);
	if (d->p < d->end && *d->p == (obj ? '}' : ']')) {
		d->p++;
		return me;
	}
	for (;;) {
		char *key = NULL;
		int c;

		jws(d);
		if (obj) {
			if ((key = jstring(d)) == NULL)
				return -1;
			jws(d);
			if (d->p >= d->end || *d->p != ':')
				return -1;
			d->p++;
			jws(d);
		}
		if ((c = jvalue(d, depth + 1)) < 0)
			return -1;
		d->n[c].key = key;
		if (last < 0)
			d->n[me].first = c;
		else
			d->n[last].next = c;
		last = c;
		jws(d);
		if (d->p < d->end && *d->p == ',') {
			d->p++;
			continue;
		}
		if (d->p < d->end && *d->p == (obj ? '}' : ']')) {
			d->p++;
			return me;
		}
		return -1;
	}
}

static int
jvalue(struct jdoc *d, int depth)
{
	int me;
	char *s;

	if (d->p >= d->end)
		return -1;
	if (*d->p == '{' || *d->p == '[')
		return jcontainer(d, depth, *d->p == '{');
	if (*d->p == '"') {
		if ((me = jnew(d, J_STR)) < 0 || (s = jstring(d)) == NULL)
			return -1;
		d->n[me].val = s;
		return me;
	}
	s = d->p;
	while (d->p < d->end && strchr(",}] \t\r\n", *d->p) == NULL)
		d->p++;
	if (d->p == s)
		return -1;
	if ((size_t)(d->p - s) >= sizeof(d->n[0].lit))
		return -1;
	me = jnew(d, strncmp(s, "null", 4) == 0 ? J_NULL : (*s == 't' || *s == 'f') ? J_BOOL : J_NUM);
	if (me < 0)
		return -1;
	/* Copied out: the delimiter after it is still to be read. */
	memcpy(d->n[me].lit, s, (size_t)(d->p - s));
	d->n[me].val = d->n[me].lit;
	return me;
}

static const struct jnode *
jget(const struct jdoc *d, const struct jnode *obj, const char *key)
{
	if (obj == NULL || obj->type != J_OBJ)
		return NULL;
	for (int c = obj->first; c >= 0; c = d->n[c].next)
		if (d->n[c].key && strcmp(d->n[c].key, key) == 0)
			return &d->n[c];
	return NULL;
}

static const char *
jtext(const struct jnode *n)
{
	if (n == NULL)
		return "-";
	if (n->type == J_NULL)
		return "null";
	return n->val ? n->val : "";
}

/* ---- printing ---- */

static void print_value(const struct jdoc *d, const struct jnode *n, int indent);

/* An array of objects as a table: the union of their scalar members as columns. */
static void
print_table(const struct jdoc *d, const struct jnode *arr, int indent)
{
	const char *cols[32];
	size_t width[32];
	int ncols = 0;

	for (int r = arr->first; r >= 0; r = d->n[r].next)
		for (int c = d->n[r].first; c >= 0 && d->n[r].type == J_OBJ; c = d->n[c].next) {
			int k;

			if (d->n[c].type == J_OBJ || d->n[c].type == J_ARR)
				continue;
			for (k = 0; k < ncols && strcmp(cols[k], d->n[c].key) != 0; k++)
				;
			if (k == ncols && ncols < 32) {
				cols[ncols] = d->n[c].key;
				width[ncols++] = strlen(d->n[c].key);
			}
		}
	for (int r = arr->first; r >= 0; r = d->n[r].next)
		for (int k = 0; k < ncols; k++) {
			size_t w = strlen(jtext(jget(d, &d->n[r], cols[k])));

			if (w > width[k])
				width[k] = w;
		}
	if (ncols == 0) {
		printf("%*s(none)\n", indent, "");
		return;
	}
	printf("%*s", indent, "");
	for (int k = 0; k < ncols; k++)
		printf("%-*s%s", (int)width[k], cols[k], k + 1 < ncols ? "  " : "\n");
	for (int r = arr->first; r >= 0; r = d->n[r].next) {
		printf("%*s", indent, "");
		for (int k = 0; k < ncols; k++)
			printf("%-*s%s", (int)width[k], jtext(jget(d, &d->n[r], cols[k])), k + 1 < ncols ? "  " : "\n");
	}
}

static void
print_value(const struct jdoc *d, const struct jnode *n, int indent)
{
	if (n->type == J_OBJ) {
		for (int c = n->first; c >= 0; c = d->n[c].next) {
			const struct jnode *m = &d->n[c];

			if (strcmp(m->key, "ok") == 0 && indent == 0)
				continue;
			if (m->type == J_OBJ || m->type == J_ARR) {
				printf("%*s%s:\n", indent, "", m->key);
				print_value(d, m, indent + 2);
			} else {
				printf("%*s%-*s %s\n", indent, "", 24 - indent > 0 ? 24 - indent : 1, m->key, jtext(m));
			}
		}
	} else if (n->type == J_ARR) {
		if (n->first >= 0 && d->n[n->first].type == J_OBJ) {
			print_table(d, n, indent);
		} else {
			for (int c = n->first; c >= 0; c = d->n[c].next)
				printf("%*s%s\n", indent, "", jtext(&d->n[c]));
		}
	} else {
		printf("%*s%s\n", indent, "", jtext(n));
	}
}

static void
side(char *buf, size_t len, const struct jdoc *d, const struct jnode *s)
{
	const struct jnode *h = jget(d, s, "ipid_habit");

	snprintf(buf, len, "%s/%s%s%s", jtext(jget(d, s, "ttl_base")), jtext(jget(d, s, "ttl_last")),
		 h ? " " : "", h ? jtext(h) : "");
}

static void
print_flows(const struct jdoc *d, const struct jnode *root)
{
	const struct jnode *arr = jget(d, root, "flows");
	int wc = 6, ws = 6;   /* CLIENT, SERVER column widths */

	printf("%s flows matched, %s listed (most recent first)\n", jtext(jget(d, root, "matched")),
	       jtext(jget(d, root, "listed")));
	if (arr == NULL || arr->type != J_ARR || arr->first < 0)
		return;
	for (int r = arr->first; r >= 0; r = d->n[r].next) {
		const struct jnode *f = &d->n[r];
		int c = (int)(strlen(jtext(jget(d, f, "src_ip"))) + 1 + strlen(jtext(jget(d, f, "src_port"))));
		int s = (int)(strlen(jtext(jget(d, f, "dest_ip"))) + 1 + strlen(jtext(jget(d, f, "dest_port"))));

		wc = c > wc ? c : wc;
		ws = s > ws ? s : ws;
	}
	printf("%-7s %-11s %-*s %-*s %-13s %-20s %s\n", "IDLE_S", "STATE", wc, "CLIENT", ws, "SERVER",
	       "PKTS_C>S/S>C", "CLIENT_TTL/IPID", "SERVER_TTL/IPID");
	for (int r = arr->first; r >= 0; r = d->n[r].next) {
		const struct jnode *f = &d->n[r];
		char cli[64], srv[64], pk[48], sc[48], ss[48];
		double idle = atof(jtext(jget(d, f, "idle_ms"))) / 1000.0;

		snprintf(cli, sizeof(cli), "%s:%s", jtext(jget(d, f, "src_ip")), jtext(jget(d, f, "src_port")));
		snprintf(srv, sizeof(srv), "%s:%s", jtext(jget(d, f, "dest_ip")), jtext(jget(d, f, "dest_port")));
		snprintf(pk, sizeof(pk), "%s/%s", jtext(jget(d, jget(d, f, "toserver"), "pkts")),
			 jtext(jget(d, jget(d, f, "toclient"), "pkts")));
		side(sc, sizeof(sc), d, jget(d, f, "toserver"));
		side(ss, sizeof(ss), d, jget(d, f, "toclient"));
		printf("%-7.1f %-11s %-*s %-*s %-13s %-20s %s\n", idle, jtext(jget(d, f, "state")), wc, cli, ws, srv,
		       pk, sc, ss);
	}
}

/* ---- the conversation ---- */

static int
connect_socket(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "rstguardctl: socket path too long\n");
		return -1;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		fprintf(stderr, "rstguardctl: cannot connect to %s: %s\n", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

static uint64_t
mono_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000u + (uint64_t)t.tv_nsec / 1000000u;
}

/* Send req, read one line into buf (cap bytes); returns its length, or -1 (reported). */
static long
ask(int fd, const char *req, size_t reqlen, char *buf, size_t cap, unsigned timeout_s)
{
	uint64_t deadline = mono_ms() + timeout_s * 1000ull;
	size_t off = 0, len = 0;

	while (off < reqlen) {
		ssize_t n = send(fd, req + off, reqlen - off, MSG_NOSIGNAL);

		if (n < 0) {
			fprintf(stderr, "rstguardctl: send: %s\n", strerror(errno));
			return -1;
		}
		off += (size_t)n;
	}
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		uint64_t now = mono_ms();
		ssize_t n;
		char *nl;

		if (now >= deadline || poll(&p, 1, (int)(deadline - now)) == 0) {
			fprintf(stderr, "rstguardctl: no answer within %u s\n", timeout_s);
			return -1;
		}
		n = recv(fd, buf + len, cap - 1 - len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			fprintf(stderr, "rstguardctl: the daemon closed the connection without answering\n");
			return -1;
		}
		len += (size_t)n;
		buf[len] = '\0';
		if ((nl = memchr(buf, '\n', len)) != NULL)
			return nl - buf;
		if (len == cap - 1) {
			fprintf(stderr, "rstguardctl: answer too long\n");
			return -1;
		}
	}
}

static int
parse_uint_arg(const char *s, long lo, long hi, long *out)
{
	char *end;
	long v;

	if (s == NULL || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

/* The request for argv (command and its arguments) into j. Returns 0, or -1 (reported). */
static int
build_request(int argc, char **argv, struct json *j)
{
	const char *cmd = argv[0];
	static const char *const simple[] = { "status", "stats", "timeouts", "reload", "metrics", NULL };

	for (const char *const *s = simple; *s; s++)
		if (strcmp(cmd, *s) == 0) {
			if (argc > 1) {
				fprintf(stderr, "rstguardctl: %s takes no arguments\n", cmd);
				return -1;
			}
			JSON_Str(j, "command", cmd);
			return 0;
		}
	if (strcmp(cmd, "flows") != 0) {
		fprintf(stderr, "rstguardctl: unknown command '%s'\n", cmd);
		return -1;
	}
	JSON_Str(j, "command", "flows");
	for (int i = 1; i < argc; i += 2) {
		long v;

		if (i + 1 >= argc) {
			fprintf(stderr, "rstguardctl: %s needs a value\n", argv[i]);
			return -1;
		}
		if (strcmp(argv[i], "--ip") == 0) {
			JSON_Str(j, "ip", argv[i + 1]);
		} else if (strcmp(argv[i], "--state") == 0) {
			JSON_Str(j, "state", argv[i + 1]);
		} else if (strcmp(argv[i], "--port") == 0) {
			if (parse_uint_arg(argv[i + 1], 1, 65535, &v) < 0) {
				fprintf(stderr, "rstguardctl: --port: 1..65535\n");
				return -1;
			}
			JSON_U64(j, "port", (uint64_t)v);
		} else if (strcmp(argv[i], "--limit") == 0) {
			if (parse_uint_arg(argv[i + 1], 1, 1000, &v) < 0) {
				fprintf(stderr, "rstguardctl: --limit: 1..1000\n");
				return -1;
			}
			JSON_U64(j, "limit", (uint64_t)v);
		} else {
			fprintf(stderr, "rstguardctl: unknown flows option '%s'\n", argv[i]);
			return -1;
		}
	}
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 'S' },
		{ "json", no_argument, NULL, 'j' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = DEFAULT_SOCKET;
	int json = 0, c, fd, rc;
	long timeout = 10, len;
	char req[1024], *buf;
	struct json j;
	size_t reqlen;
	struct jdoc d;
	int root;
	const struct jnode *ok;

	/* "+": stop at the command, so that its own options (flows --ip) are left to it. */
	while ((c = getopt_long(argc, argv, "+S:jT:Vh", longopts, NULL)) != -1) {
		switch (c) {
		case 'S':
			path = optarg;
			break;
		case 'j':
			json = 1;
			break;
		case 'T':
			if (parse_uint_arg(optarg, 1, 3600, &timeout) < 0) {
				fprintf(stderr, "rstguardctl: --timeout: 1..3600 seconds\n");
				return EXIT_USAGE;
			}
			break;
		case 'V':
			printf("rstguardctl %s\n", PACKAGE_VERSION);
			return EXIT_OK;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	JSON_Init(&j, req, sizeof(req));
	if (build_request(argc - optind, argv + optind, &j) < 0)
		return EXIT_USAGE;
	reqlen = JSON_Finish(&j);
	if (reqlen == 0) {
		fprintf(stderr, "rstguardctl: request too long\n");
		return EXIT_USAGE;
	}
	fd = connect_socket(path);
	if (fd < 0)
		return EXIT_COMM;
	buf = malloc(ANSWER_MAX);
	if (buf == NULL)
		return EXIT_COMM;
	len = ask(fd, req, reqlen, buf, ANSWER_MAX, (unsigned)timeout);
	close(fd);
	if (len < 0) {
		free(buf);
		return EXIT_COMM;
	}
	buf[len] = '\0';
	d.n = calloc(MAX_NODES, sizeof(*d.n));
	d.count = 0;
	d.p = buf;
	d.end = buf + len;
	if (json) {
		/* Checked before it is printed, so a script never gets half a line. */
		char *copy = strndup(buf, (size_t)len);

		if (d.n == NULL || copy == NULL) {
			free(copy);
			free(buf);
			free(d.n);
			return EXIT_COMM;
		}
		root = jvalue(&d, 0);
		ok = root >= 0 ? jget(&d, &d.n[root], "ok") : NULL;
		if (root < 0 || ok == NULL) {
			fprintf(stderr, "rstguardctl: the answer is not a JSON object\n");
			rc = EXIT_COMM;
		} else {
			printf("%s\n", copy);
			rc = strcmp(jtext(ok), "true") == 0 ? EXIT_OK : EXIT_REFUSED;
		}
		free(copy);
		free(buf);
		free(d.n);
		return rc;
	}
	root = d.n ? jvalue(&d, 0) : -1;
	ok = root >= 0 ? jget(&d, &d.n[root], "ok") : NULL;
	if (ok == NULL) {
		fprintf(stderr, "rstguardctl: the answer is not a JSON object\n");
		rc = EXIT_COMM;
	} else if (strcmp(jtext(ok), "true") != 0) {
		const struct jnode *errs = jget(&d, &d.n[root], "errors");

		fprintf(stderr, "rstguardctl: %s\n", jtext(jget(&d, &d.n[root], "error")));
		for (int e = errs ? errs->first : -1; e >= 0; e = d.n[e].next)
			fprintf(stderr, "  %s\n", jtext(&d.n[e]));
		rc = EXIT_REFUSED;
	} else {
		const char *cmd = argv[optind];

		if (strcmp(cmd, "flows") == 0)
			print_flows(&d, &d.n[root]);
		else if (strcmp(cmd, "metrics") == 0)
			fputs(jtext(jget(&d, &d.n[root], "metrics")), stdout);
		else if (strcmp(cmd, "reload") == 0)
			printf("configuration reloaded\n");
		else
			print_value(&d, &d.n[root], 0);
		rc = EXIT_OK;
	}
	free(buf);
	free(d.n);
	return rc;
}
