/* Unit tests of the configuration loader: defaults, the sample file, strict validation with exact
 * line numbers, cross-field checks, copies, and CFG_Validate after command-line overrides. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <arpa/inet.h>
#include <sys/socket.h>

#include <libconfig.h>

#include "cidr.h"
#include "config.h"
#include "log.h"
#include "tap.h"
#include "tmpfile.h"

/* Path of the temporary file written by load_text, for comparing error file names. */
static char tmp_path[64];

/* Write text to a fresh temporary file, load it into cfg (errors into errs), remove it. */
static int
load_text(const char *text, struct config *cfg, struct config_errors *errs)
{
	int rc;

	tmp_write(tmp_path, sizeof(tmp_path), "rgconf", text);
	rc = CFG_Load(cfg, tmp_path, errs);
	unlink(tmp_path);
	return rc;
}

/* Expect exactly one error, in the temporary file, at line with message msg. */
static void
expect_one(const struct config_errors *errs, int rc, int line, const char *msg, const char *what)
{
	TAP_OK(rc == -1 && errs->count == 1, "%s: one error (rc %d, count %zu)", what, rc,
	    errs->count);
	if (errs->count < 1) {
		TAP_OK(0, "%s: line", what);
		TAP_OK(0, "%s: message", what);
		return;
	}
	TAP_OK(errs->items[0].line == line && strcmp(errs->items[0].file, tmp_path) == 0,
	    "%s: at %s:%d (got %s:%d)", what, tmp_path, line, errs->items[0].file,
	    errs->items[0].line);
	TAP_EQ_S(errs->items[0].message, msg, what);
}

/* Load text, expect a single error at line with msg, free everything. */
static void
check_error(const char *text, int line, const char *msg, const char *what)
{
	struct config cfg;
	struct config_errors errs = { 0 };
	int rc = load_text(text, &cfg, &errs);

	expect_one(&errs, rc, line, msg, what);
	CFG_FreeErrors(&errs);
	CFG_Free(&cfg);
}

/* Load text, expect no error at all. */
static void
check_ok(const char *text, struct config *cfg, const char *what)
{
	struct config_errors errs = { 0 };
	int rc = load_text(text, cfg, &errs);

	TAP_OK(rc == 0 && errs.count == 0, "%s: loads without errors (rc %d, count %zu%s%s)", what,
	    rc, errs.count, errs.count ? ", first: " : "", errs.count ? errs.items[0].message : "");
	CFG_FreeErrors(&errs);
}

/* One expected integer: what was got, what is wanted, and what the check is called. */
struct uint_case {
	unsigned long long got, want;
	const char *what;
};

static void
check_values(const struct uint_case *cases, size_t n)
{
	for (size_t i = 0; i < n; i++)
		TAP_EQ_U(cases[i].got, cases[i].want, cases[i].what);
}

/* One file that must give exactly one error, at line, with message msg. */
struct error_case {
	const char *text;
	int line;
	const char *msg;
	const char *what;
};

static void
check_errors(const struct error_case *cases, size_t n)
{
	for (size_t i = 0; i < n; i++)
		check_error(cases[i].text, cases[i].line, cases[i].msg, cases[i].what);
}

static void
test_defaults(void)
{
	struct config c;

	CFG_SetDefaults(&c);
	const struct uint_case values[] = {
		{ c.mode, RG_MODE_DETECT, "default mode detect" },
		{ c.queue_num, 0, "default queue.num" },
		{ c.queue_count, 1, "default queue.count" },
		{ c.queue_maxlen, 4096, "default queue.maxlen" },
		{ c.copy_range, 256, "default queue.copy_range" },
		{ c.fail_open, 1, "default queue.fail_open" },
		{ c.rcvbuf, 8388608, "default queue.rcvbuf" },
		{ c.batch, 64, "default queue.batch" },
		{ c.flows_max, 262144, "default flows.max" },
		{ c.timeout.syn, 30, "default flows.timeout.syn" },
		{ c.timeout.established, 7440, "default flows.timeout.established" },
		{ c.timeout.closing, 120, "default flows.timeout.closing" },
		{ c.timeout.closed, 10, "default flows.timeout.closed" },
		{ c.events_rate, 1000, "default events.rate" },
		{ c.events_burst, 5000, "default events.burst" },
		{ c.events_alert_rate, 100, "default events.alert_rate" },
		{ c.events_alert_burst, 1000, "default events.alert_burst" },
		{ c.log_syslog, 0, "default log.target stderr" },
		{ c.log_level, LOG_LVL_INFO, "default log.level info" },
		{ c.idle_timeout, 0, "default eviction.idle_timeout" },
		{ c.keepalive, 0, "default eviction.keepalive" },
		{ c.probe_lead, 0, "default eviction.probe_lead (automatic)" },
		{ c.max_idle, 7200, "default eviction.max_idle" },
		{ c.probe_rate, 100, "default eviction.probe_rate" },
		{ c.probe_retries, 3, "default eviction.probe_retries" },
		{ c.probe_side, PROBE_SERVER, "default eviction.probe_side server" },
		{ c.watch_min_gap, 0, "default eviction.watch_min_gap (automatic)" },
		{ c.n_overrides, 0, "default eviction.overrides is empty" },
		{ c.policy.drop_injected, 1, "default policy.actions.injected drop" },
		{ c.policy.drop_invalid_seq, 0, "default policy.actions.invalid_seq accept" },
	};

	check_values(values, sizeof(values) / sizeof(values[0]));
	TAP_EQ_S(c.events_path, "-", "default events.path");
	TAP_OK(c.policy.n_protect == 0 && c.policy.n_exempt == 0 && c.policy.n_exempt_ports == 0,
	    "default policy lists are empty");
	TAP_EQ_S(c.source, "", "default source is empty");
	CFG_Free(&c);
}

static void
test_sample_file(void)
{
	const char *srcdir = getenv("RG_SRCDIR");
	struct config c, d;
	struct config_errors errs = { 0 };
	const char *diff;
	char path[4096];
	int rc;

	snprintf(path, sizeof(path), "%s/conf/rstguard.conf", srcdir && *srcdir ? srcdir : ".");
	rc = CFG_Load(&c, path, &errs);
	TAP_OK(rc == 0 && errs.count == 0, "sample %s loads without errors (count %zu)", path,
	    errs.count);
	CFG_PrintErrors(&errs, stdout);
	CFG_SetDefaults(&d);
	diff = CFG_Diff(&c, &d);
	TAP_OK(diff == NULL, "sample file yields exactly the defaults (first difference: %s)",
	    diff ? diff : "none");
	TAP_EQ_S(c.source, path, "source is the file name");
	CFG_FreeErrors(&errs);
	CFG_Free(&c);
	CFG_Free(&d);
}

static void
test_empty_file(void)
{
	struct config c, d;
	const char *diff;

	check_ok("# nothing but a comment\n", &c, "empty file");
	CFG_SetDefaults(&d);
	diff = CFG_Diff(&c, &d);
	TAP_OK(diff == NULL, "empty file yields the defaults (first difference: %s)",
	    diff ? diff : "none");
	CFG_Free(&c);
	CFG_Free(&d);
}

static void
test_every_key(void)
{
	/* Both group syntaxes, an L suffix, a hexadecimal integer. */
	static const char text[] =
	    "mode = \"enforce\";\n"
	    "queue: {\n"
	    "  num = 100; count = 4;\n"
	    "  maxlen = 0x2000;\n"
	    "  copy_range = 1500;\n"
	    "  fail_open = false;\n"
	    "  rcvbuf = 16777216L;\n"
	    "  batch = 128;\n"
	    "};\n"
	    "flows = {\n"
	    "  max = 1048576;\n"
	    "  timeout: { syn = 20; established = 86401; closing = 60; closed = 5; };\n"
	    "};\n"
	    "events = { path = \"/var/log/rstguard/eve.json\"; rate = 200; burst = 200; };\n"
	    "log = { target = \"syslog\"; level = \"debug\"; };\n"
	    "eviction = { idle_timeout = 86400; keepalive = true; };\n";
	struct config c;

	check_ok(text, &c, "every key changed");
	const struct uint_case values[] = {
		{ c.mode, RG_MODE_ENFORCE, "mode enforce" },
		{ c.queue_num, 100, "queue.num" },
		{ c.queue_count, 4, "queue.count" },
		{ c.queue_maxlen, 8192, "queue.maxlen (hexadecimal)" },
		{ c.copy_range, 1500, "queue.copy_range" },
		{ c.fail_open, 0, "queue.fail_open" },
		{ c.rcvbuf, 16777216, "queue.rcvbuf (L suffix)" },
		{ c.batch, 128, "queue.batch" },
		{ c.flows_max, 1048576, "flows.max" },
		{ c.timeout.syn, 20, "flows.timeout.syn" },
		{ c.timeout.established, 86401, "flows.timeout.established" },
		{ c.timeout.closing, 60, "flows.timeout.closing" },
		{ c.timeout.closed, 5, "flows.timeout.closed" },
		{ c.events_rate, 200, "events.rate" },
		{ c.events_burst, 200, "events.burst (equal to rate is fine)" },
		{ c.log_syslog, 1, "log.target syslog" },
		{ c.log_level, LOG_LVL_DEBUG, "log.level debug" },
		{ c.idle_timeout, 86400, "eviction.idle_timeout" },
		{ c.keepalive, 1, "eviction.keepalive" },
	};

	check_values(values, sizeof(values) / sizeof(values[0]));
	TAP_EQ_S(c.events_path, "/var/log/rstguard/eve.json", "events.path");
	TAP_EQ_S(c.source, tmp_path, "source");
	CFG_Free(&c);
}

/* Limits that are valid: the ends of each range and the special zeros. */
static void
test_range_edges(void)
{
	struct config c;

	check_ok("queue = { num = 65472; count = 64; maxlen = 16; copy_range = 65535;"
	    " rcvbuf = 0; batch = 1024; };\n"
	    "flows = { max = 1024; timeout = { syn = 1; established = 2592000; closing = 2592000;"
	    " closed = 1; }; };\n"
	    "events = { rate = 1000000; burst = 10000000; };\n"
	    "eviction = { idle_timeout = 10; probe_lead = 9; };\n", &c, "range edges");
	TAP_EQ_U(c.queue_num, 65472, "queue.num 65472 with count 64 ends at 65535");
	TAP_EQ_U(c.rcvbuf, 0, "queue.rcvbuf 0 is the kernel default");
	TAP_EQ_U(c.timeout.established, 2592000, "flows.timeout.established at its maximum");
	TAP_EQ_U(c.idle_timeout, 10, "eviction.idle_timeout at its minimum");
	CFG_Free(&c);
	check_ok("queue = { rcvbuf = 1073741824; };\n", &c, "queue.rcvbuf at its maximum");
	TAP_EQ_U(c.rcvbuf, 1073741824, "queue.rcvbuf 1073741824");
	CFG_Free(&c);
	check_ok("queue = { rcvbuf = 65536L; };\n", &c, "queue.rcvbuf at its minimum, as int64");
	TAP_EQ_U(c.rcvbuf, 65536, "queue.rcvbuf 65536L");
	CFG_Free(&c);
}

static void
test_read_errors(void)
{
	struct config c;
	struct config_errors errs = { 0 };
	char buf[256];
	int rc;

	rc = CFG_Load(&c, "/nonexistent/rstguard.conf", &errs);
	TAP_OK(rc == -1 && errs.count == 1 && errs.items[0].line == 0,
	    "missing file: one error without a line");
	if (errs.count == 1)
		TAP_EQ_S(errs.items[0].message, "cannot read: No such file or directory",
		    "missing file message");
	else
		TAP_OK(0, "missing file message");
	TAP_EQ_S(c.events_path, "-", "missing file leaves the defaults");
	CFG_FreeErrors(&errs);
	CFG_Free(&c);

	rc = CFG_Load(&c, "/", &errs);
	snprintf(buf, sizeof(buf), "%s", errs.count ? errs.items[0].message : "");
	TAP_OK(rc == -1 && errs.count == 1, "directory: one error");
	TAP_EQ_S(buf, "cannot read: Is a directory", "directory message");
	CFG_FreeErrors(&errs);
	CFG_Free(&c);

	static const struct error_case errors[] = {
		{ "mode = \"detect\";\nqueue = {\n  num = ;\n};\n", 3, "syntax error",
		    "syntax error" },
		{ "mode = \"detect\"\nqueue = { num = 1; }\nlog = { level = \"debug\" ;\n", 4,
		    "syntax error", "unterminated group" },
		{ "queue = { num = 1; };\n\nqueue = { count = 2; };\n", 3,
		    "duplicate setting name", "duplicate key" },
	};
	check_errors(errors, sizeof(errors) / sizeof(errors[0]));
}

static void
test_unknown_keys(void)
{
	static const struct error_case errors[] = {
		{ "mode = \"detect\";\n\nfoo = 1;\n", 3, "unknown key 'foo'", "unknown top-level key" },
		{ "queue = {\n  num = 1;\n  numm = 2;\n};\n", 3, "unknown key 'queue.numm'",
		    "unknown key in a group" },
		{ "flows = {\n  timeout = {\n    syn = 5;\n\n    establihsed = 60;\n  };\n};\n", 5,
		    "unknown key 'flows.timeout.establihsed'", "unknown key two levels down" },
		{ "\n\nstats = { port = 9100; bogus = 1; };\n", 3, "unknown key 'stats'",
		    "unknown group reported once, not its members" },
	};
	check_errors(errors, sizeof(errors) / sizeof(errors[0]));
}

static void
test_wrong_types(void)
{
	struct config c;
	struct config_errors errs = { 0 };
	int rc;

	/* The classic pitfall: a quoted number must not be ignored silently. */
	rc = load_text("flows = {\n  timeout = {\n    syn = \"30\";\n  };\n};\n", &c, &errs);
	expect_one(&errs, rc, 3, "flows.timeout.syn: expected an integer", "string for an integer");
	TAP_EQ_U(c.timeout.syn, 30, "rejected value keeps the default");
	CFG_FreeErrors(&errs);
	CFG_Free(&c);

	static const struct error_case errors[] = {
		{ "events = {\n  rate = 1.5;\n};\n", 2, "events.rate: expected an integer",
		    "float for an integer" },
		{ "queue = { num = true; };\n", 1, "queue.num: expected an integer",
		    "boolean for an integer" },
		{ "queue = {\n  count = [ 1, 2 ];\n};\n", 2, "queue.count: expected an integer",
		    "array for an integer" },
		{ "queue = {\n  fail_open = 1;\n};\n", 2,
		    "queue.fail_open: expected a boolean (true or false)", "integer for a boolean" },
		{ "eviction = { keepalive = \"yes\"; };\n", 1,
		    "eviction.keepalive: expected a boolean (true or false)", "string for a boolean" },
		{ "\nmode = 1;\n", 2, "mode: expected a string", "integer for a string" },
		{ "log = { level = { x = 1; }; };\n", 1, "log.level: expected a string",
		    "group for a string" },
		{ "\n\nqueue = 5;\n", 3, "queue: expected a group", "scalar for a group" },
		{ "flows = {\n  timeout = 30;\n};\n", 2, "flows.timeout: expected a group",
		    "scalar for a nested group" },
		{ "events = ( \"-\", 10 );\n", 1, "events: expected a group", "list for a group" },
	};
	check_errors(errors, sizeof(errors) / sizeof(errors[0]));
}

static void
test_ranges(void)
{
	static const struct error_case errors[] = {
		{ "queue = {\n  count = 0;\n};\n", 2, "queue.count: 0 is out of range 1..64",
		    "queue.count low" },
		{ "queue = {\n  count = 65;\n};\n", 2, "queue.count: 65 is out of range 1..64",
		    "queue.count high" },
		{ "queue = { num = -1; };\n", 1, "queue.num: -1 is out of range 0..65535",
		    "negative queue.num" },
		{ "queue = { num = 65536; };\n", 1, "queue.num: 65536 is out of range 0..65535",
		    "queue.num high" },
		{ "queue = { maxlen = 15; };\n", 1, "queue.maxlen: 15 is out of range 16..1048576",
		    "queue.maxlen low" },
		{ "queue = { copy_range = 127; };\n", 1,
		    "queue.copy_range: 127 is out of range 128..65535", "queue.copy_range low" },
		{ "queue = { batch = 1025; };\n", 1, "queue.batch: 1025 is out of range 1..1024",
		    "queue.batch high" },
		{ "queue = {\n\n  rcvbuf = 65535;\n};\n", 3,
		    "queue.rcvbuf: 65535 is out of range 65536..1073741824 (or 0 for the kernel default)",
		    "queue.rcvbuf between 0 and its minimum" },
		{ "queue = { rcvbuf = 2147483648L; };\n", 1,
		    "queue.rcvbuf: 2147483648 is out of range 65536..1073741824 (or 0 for the kernel default)",
		    "queue.rcvbuf high, int64" },
		{ "flows = { max = 1023; };\n", 1, "flows.max: 1023 is out of range 1024..16777216",
		    "flows.max low" },
		{ "flows = { timeout = { closed = 0; }; };\n", 1,
		    "flows.timeout.closed: 0 is out of range 1..2592000", "flows.timeout.closed low" },
		{ "flows = { timeout = { closing = 2592001; }; };\n", 1,
		    "flows.timeout.closing: 2592001 is out of range 1..2592000", "flows.timeout.closing high" },
		{ "events = { rate = 0; };\n", 1, "events.rate: 0 is out of range 1..1000000",
		    "events.rate low" },
		{ "events = { burst = 10000001; rate = 1000; };\n", 1,
		    "events.burst: 10000001 is out of range 1..10000000", "events.burst high" },
		{ "eviction = { idle_timeout = 9; };\n", 1,
		    "eviction.idle_timeout: 9 is out of range 10..86400 (or 0 when not configured)",
		    "eviction.idle_timeout low" },
		{ "eviction = { idle_timeout = 86401; };\n", 1,
		    "eviction.idle_timeout: 86401 is out of range 10..86400 (or 0 when not configured)",
		    "eviction.idle_timeout high" },
	};
	check_errors(errors, sizeof(errors) / sizeof(errors[0]));
}

/* libconfig 1.5 truncates integer literals beyond 32 bits written without the L suffix. */
static void
test_truncated_literals(void)
{
	struct config c;

	static const struct error_case errors[] = {
		{ "queue = {\n  rcvbuf = 4294967296;\n};\n", 2,
		    "queue.rcvbuf: 4294967296 is out of range 65536..1073741824 (or 0 for the kernel default)",
		    "4 GiB without L (libconfig makes it 0) is not the kernel default" },
		{ "queue = { rcvbuf = 4295032832; };\n", 1,
		    "queue.rcvbuf: 4295032832 is out of range 65536..1073741824 (or 0 for the kernel default)",
		    "2^32 + 65536 without L is not 65536" },
		{ "queue = { num = 0x100000001; };\n", 1,
		    "queue.num: 0x100000001 is out of range 0..65535", "hexadecimal beyond 32 bits" },
	};
	check_errors(errors, sizeof(errors) / sizeof(errors[0]));
	check_ok("events = { path = \"rate = 5 \\\" rate = 7\"; rate = 10; burst = 20; };\n"
	    "eviction = { /* idle_timeout = 1 */ idle_timeout = 60; }; # idle_timeout = 2\n",
	    &c, "literal check skips strings and comments");
	TAP_OK(c.events_rate == 10 && c.idle_timeout == 60, "values next to decoys are read");
	CFG_Free(&c);
	check_error("flows = { max =\n  99999999999999999999999; };\n", 1,
	    "flows.max: 99999999999999999999999 is out of range 1024..16777216",
	    "literal beyond 64 bits, value on the next line");
}

static void
test_enums(void)
{
	static const struct error_case errors[] = {
		{ "\nmode = \"block\";\n", 2,
		    "mode: invalid value \"block\" (expected detect or enforce)", "bad mode" },
		{ "log = {\n  level = \"verbose\";\n};\n", 2,
		    "log.level: invalid value \"verbose\" (expected error, warning, info or debug)",
		    "bad log.level" },
		{ "log = { target = \"file\"; };\n", 1,
		    "log.target: invalid value \"file\" (expected stderr or syslog)", "bad log.target" },
		{ "events = {\n  path = \"\";\n};\n", 2,
		    "events.path: invalid value \"\" (expected a file name, or - for stdout)",
		    "empty events.path" },
	};
	check_errors(errors, sizeof(errors) / sizeof(errors[0]));
}

static void
test_cross_fields(void)
{
	static const struct error_case errors[] = {
		{ "events = {\n  rate = 6000;\n};\n", 2,
		    "events.burst (5000) must be at least events.rate (6000)",
		    "rate above the default burst: reported at rate" },
		{ "events = {\n  rate = 100;\n  burst = 50;\n};\n", 3,
		    "events.burst (50) must be at least events.rate (100)", "burst below rate: at burst" },
		{ "events = {\n  alert_rate = 100;\n  alert_burst = 50;\n};\n", 3,
		    "events.alert_burst (50) must be at least events.alert_rate (100)",
		    "alert_burst below alert_rate: at alert_burst" },
		{ "events = {\n  alert_rate = 2000;\n};\n", 2,
		    "events.alert_burst (1000) must be at least events.alert_rate (2000)",
		    "alert_rate above the default alert_burst: at alert_rate" },
		{ "events = { alert_rate = 0; };\n", 1,
		    "events.alert_rate: 0 is out of range 1..1000000", "events.alert_rate low" },
		{ "eviction = {\n  keepalive = true;\n};\n", 2,
		    "eviction.keepalive needs eviction.idle_timeout or eviction.overrides",
		    "keepalive without idle_timeout" },
		{ "eviction = {\n  idle_timeout = 0;\n  keepalive = true;\n};\n", 3,
		    "eviction.keepalive needs eviction.idle_timeout or eviction.overrides",
		    "keepalive with idle_timeout 0" },
		{ "eviction = {\n  idle_timeout = 7440;\n};\n", 2,
		    "flows.timeout.established must be longer than eviction.idle_timeout",
		    "idle_timeout equal to the default established timeout" },
		{ "flows = {\n  timeout = {\n    established = 600;\n  };\n};\n"
		    "eviction = {\n  idle_timeout = 900;\n};\n", 3,
		    "flows.timeout.established must be longer than eviction.idle_timeout",
		    "established shorter than idle_timeout: at established" },
		{ "queue = {\n  num = 65500;\n  count = 64;\n};\n", 3,
		    "queue.num + queue.count - 1 is 65563, beyond the last queue number 65535",
		    "queue range beyond 65535" },
		{ "queue = {\n  num = 65535;\n};\nqueue2 = 1;\n", 4, "unknown key 'queue2'",
		    "num 65535 with the default count is fine" },
		/* A rejected value keeps its default and triggers no cross-field noise. */
		{ "events = {\n  rate = 100;\n  burst = \"50\";\n};\n", 3,
		    "events.burst: expected an integer", "no cross check on a rejected burst" },
		{ "eviction = {\n  idle_timeout = 5;\n  keepalive = true;\n};\n", 2,
		    "eviction.idle_timeout: 5 is out of range 10..86400 (or 0 when not configured)",
		    "no keepalive error when idle_timeout was rejected" },
	};
	check_errors(errors, sizeof(errors) / sizeof(errors[0]));
}

static void
test_many_errors(void)
{
	static const char text[] =
	    "mode = \"enforce\";\n"                 /* 1: valid */
	    "modee = \"detect\";\n"                 /* 2: unknown */
	    "queue = {\n"                           /* 3 */
	    "  num = \"7\";\n"                      /* 4: type */
	    "  count = 2;\n"                        /* 5: valid */
	    "  batch = 0;\n"                        /* 6: range */
	    "  extra = 1;\n"                        /* 7: unknown */
	    "};\n"                                  /* 8 */
	    "flows = {\n"                           /* 9 */
	    "  timeout = { syn = 2.5; };\n"         /* 10: float */
	    "};\n"                                  /* 11 */
	    "log = \"syslog\";\n"                   /* 12: not a group */
	    "events = { rate = 10; burst = 5; };\n" /* 13: cross */
	    "eviction = { keepalive = true; };\n";  /* 14: cross */
	static const struct { int line; const char *msg; } want[] = {
		{ 2, "unknown key 'modee'" },
		{ 4, "queue.num: expected an integer" },
		{ 6, "queue.batch: 0 is out of range 1..1024" },
		{ 7, "unknown key 'queue.extra'" },
		{ 10, "flows.timeout.syn: expected an integer" },
		{ 12, "log: expected a group" },
		{ 13, "events.burst (5) must be at least events.rate (10)" },
		{ 14, "eviction.keepalive needs eviction.idle_timeout or eviction.overrides" },
	};
	size_t n = sizeof(want) / sizeof(want[0]);
	struct config c;
	struct config_errors errs = { 0 };
	int rc;

	rc = load_text(text, &c, &errs);
	TAP_OK(rc == -1 && errs.count == n, "all %zu errors reported (got %zu)", n, errs.count);
	for (size_t i = 0; i < n; i++) {
		const struct config_error *e = i < errs.count ? &errs.items[i] : NULL;

		TAP_OK(e && e->line == want[i].line && strcmp(e->message, want[i].msg) == 0,
		    "error %zu: line %d \"%s\" (got line %d \"%s\")", i + 1, want[i].line,
		    want[i].msg, e ? e->line : -1, e ? e->message : "(none)");
	}
	TAP_OK(c.mode == RG_MODE_ENFORCE && c.queue_count == 2 && c.queue_num == 0,
	    "valid settings are applied, rejected ones keep their defaults");
	TAP_EQ_U(c.events_rate, 10, "events.rate applied although the pair is inconsistent");
	CFG_FreeErrors(&errs);
	CFG_Free(&c);
}

/* Errors in an @include'd file name that file and its own line, cross-field ones too. */
static void
test_include(void)
{
	char inc[64], text[256];
	struct config c;
	struct config_errors errs = { 0 };
	int rc;
	static const char inc_text[] =
	    "events = {\n  rate = 100;\n  burst = 10;\n};\nqueue = { num = \"1\"; };\n";

	tmp_write(inc, sizeof(inc), "rginc", inc_text);
	snprintf(text, sizeof(text), "mode = \"enforce\";\n@include \"%s\"\nfoo = 1;\n", inc);
	rc = load_text(text, &c, &errs);
	unlink(inc);
	TAP_OK(rc == -1 && errs.count == 3, "include: three errors (got %zu)", errs.count);
	TAP_OK(errs.count == 3 && strcmp(errs.items[0].file, inc) == 0 && errs.items[0].line == 5 &&
	    strcmp(errs.items[0].message, "queue.num: expected an integer") == 0,
	    "include: type error at the included file's line");
	TAP_OK(errs.count == 3 && strcmp(errs.items[1].file, tmp_path) == 0 &&
	    errs.items[1].line == 3 && strcmp(errs.items[1].message, "unknown key 'foo'") == 0,
	    "include: main file's own error at its line");
	TAP_OK(errs.count == 3 && strcmp(errs.items[2].file, inc) == 0 && errs.items[2].line == 3,
	    "include: cross-field error at the included burst");
	TAP_OK(c.mode == RG_MODE_ENFORCE && c.events_rate == 100, "include: values applied");
	CFG_FreeErrors(&errs);
	CFG_Free(&c);
}

/* Hostile @include targets: libconfig 1.5's scanner calls exit(2) on a read error (a directory)
 * and blocks on a FIFO, so the loader must refuse them itself, naming the file and line. Before
 * that check this test ended with status 2 at its first load. */
static void
test_include_hostile(void)
{
	char dir[64], sub[96], fifo[96], self[96], deep[96], text[512], want[256];
	struct config c;
	struct config_errors errs = { 0 };
	int rc, fd;

	tmp_template(dir, sizeof(dir), "rgincd");
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		exit(99);
	}
	snprintf(sub, sizeof(sub), "%s/sub", dir);
	snprintf(fifo, sizeof(fifo), "%s/fifo", dir);
	snprintf(self, sizeof(self), "%s/self.conf", dir);
	snprintf(deep, sizeof(deep), "%s/deep.conf", dir);
	if (mkdir(sub, 0700) < 0 || mkfifo(fifo, 0600) < 0) {
		perror("mkdir/mkfifo");
		exit(99);
	}

	snprintf(text, sizeof(text), "mode = \"detect\";\n@include \"%s\"\n", sub);
	rc = load_text(text, &c, &errs);
	snprintf(want, sizeof(want), "@include \"%s\": cannot read: Is a directory", sub);
	expect_one(&errs, rc, 2, want, "@include of a directory");
	CFG_FreeErrors(&errs);
	CFG_Free(&c);

	snprintf(text, sizeof(text), "\n\n  @include \"%s\"\n", fifo);
	rc = load_text(text, &c, &errs);
	snprintf(want, sizeof(want), "@include \"%s\": cannot read: not a regular file", fifo);
	expect_one(&errs, rc, 3, want, "@include of a FIFO (would block)");
	CFG_FreeErrors(&errs);
	CFG_Free(&c);

	/* A file including itself: libconfig's depth limit, reported at the include. */
	snprintf(text, sizeof(text), "@include \"%s\"\n", self);
	if ((fd = open(self, O_WRONLY | O_CREAT | O_TRUNC, 0600)) < 0 ||
	    write(fd, text, strlen(text)) != (ssize_t)strlen(text)) {
		perror(self);
		exit(99);
	}
	close(fd);
	rc = CFG_Load(&c, self, &errs);
	TAP_OK(rc == -1 && errs.count == 1 && strcmp(errs.items[0].file, self) == 0 &&
	    errs.items[0].line == 1 && strstr(errs.items[0].message, "nested deeper than 10"),
	    "self-include: one depth error at the include (got %zu: %s)", errs.count,
	    errs.count ? errs.items[0].message : "");
	CFG_FreeErrors(&errs);
	CFG_Free(&c);

	/* A bad include inside an included file: reported at the inner file's line. */
	snprintf(text, sizeof(text), "# inner\n@include \"%s\"\n", sub);
	if ((fd = open(deep, O_WRONLY | O_CREAT | O_TRUNC, 0600)) < 0 ||
	    write(fd, text, strlen(text)) != (ssize_t)strlen(text)) {
		perror(deep);
		exit(99);
	}
	close(fd);
	snprintf(text, sizeof(text), "@include \"%s\"\n", deep);
	rc = load_text(text, &c, &errs);
	TAP_OK(rc == -1 && errs.count == 1 && strcmp(errs.items[0].file, deep) == 0 &&
	    errs.items[0].line == 2, "nested bad include: at the inner file's line (got %s:%d)",
	    errs.count ? errs.items[0].file : "", errs.count ? errs.items[0].line : 0);
	CFG_FreeErrors(&errs);
	CFG_Free(&c);

	/* What libconfig's scanner does not take as an include is not checked either. */
	snprintf(text, sizeof(text),
	    "/*\n@include \"%s\"\n*/\n# @include \"%s\"\nmode = \"enforce\"; // @include \"%s\"\n",
	    sub, sub, sub);
	check_ok(text, &c, "@include of a directory in comments is no include");
	CFG_Free(&c);

	/* The main file itself: a FIFO would block libconfig's read. */
	rc = CFG_Load(&c, fifo, &errs);
	TAP_OK(rc == -1 && errs.count == 1 && errs.items[0].line == 0 &&
	    strcmp(errs.items[0].message, "cannot read: not a regular file") == 0,
	    "main file a FIFO: refused without blocking");
	CFG_FreeErrors(&errs);
	CFG_Free(&c);

	/* Root reads every file: the unreadable include is tried as an unprivileged user, in a
	 * child (the include then lies in a directory that user cannot enter). */
	{
		pid_t pid;
		int st = 0;

		chmod(deep, 0);
		snprintf(text, sizeof(text), "@include \"%s\"\n", deep);
		fflush(stdout);
		pid = geteuid() == 0 ? fork() : 0;
		if (pid == 0) {
			int ok;

			if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0))
				_exit(2);
			rc = load_text(text, &c, &errs);
			ok = rc == -1 && errs.count == 1 && errs.items[0].line == 1 &&
			     strstr(errs.items[0].message, "Permission denied") != NULL;
			CFG_FreeErrors(&errs);
			CFG_Free(&c);
			if (geteuid() != 0 && getuid() == 65534)
				_exit(ok ? 0 : 1);
			TAP_OK(ok, "unreadable include: refused at its line");
		} else {
			waitpid(pid, &st, 0);
			TAP_OK(pid > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
			    "unreadable include (as uid 65534): refused at its line (child status %d)", st);
		}
	}

	unlink(self);
	unlink(deep);
	unlink(fifo);
	rmdir(sub);
	rmdir(dir);
}

static void
test_print_errors(void)
{
	struct config_errors errs = { 0 };
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

	CFG_AddError(&errs, "/etc/rstguard.conf", 12, "queue.num: %d is out of range %s", 70000,
	    "0..65535");
	CFG_AddError(&errs, "command line", 0, "events.burst (%u) must be at least events.rate (%u)",
	    1u, 2u);
	for (int i = 0; i < 20; i++)
		CFG_AddError(&errs, "x", i + 1, "error %d", i);
	TAP_EQ_U(errs.count, 22, "error list grows");
	f = open_memstream(&buf, &len);
	if (f == NULL) {
		perror("open_memstream");
		exit(99);
	}
	errs.count = 2;   /* print the first two only */
	CFG_PrintErrors(&errs, f);
	errs.count = 22;
	fclose(f);
	/* Compared without echoing: the text has newlines, which TAP lines must not. */
	TAP_OK(buf && strcmp(buf, "/etc/rstguard.conf:12: queue.num: 70000 is out of range 0..65535\n"
	    "command line: events.burst (1) must be at least events.rate (2)\n") == 0,
	    "CFG_PrintErrors format: FILE:LINE: message, or FILE: message without a line");
	free(buf);
	CFG_FreeErrors(&errs);
	TAP_OK(errs.count == 0 && errs.items == NULL, "CFG_FreeErrors empties the list");
	CFG_FreeErrors(&errs);
	TAP_OK(1, "CFG_FreeErrors twice is harmless");
}

static void
test_copy(void)
{
	struct config a, b;

	check_ok("mode = \"enforce\";\nevents = { path = \"/tmp/eve.json\"; rate = 7; burst = 9; };\n"
	    "policy = { protect = [ \"198.18.0.0/15\", \"2001:db8::/32\" ]; exempt_ports = [ 22 ]; };\n"
	    "eviction = { overrides = ( { network = \"198.18.3.0/24\"; port = 443;"
	    " idle_timeout = 350; }, { network = \"2001:db8::/32\"; idle_timeout = 240; } ); };\n",
	    &a, "config to copy");
	CFG_Copy(&b, &a);
	TAP_OK(CFG_Diff(&a, &b) == NULL, "copy equals the original");
	TAP_OK(b.events_path != a.events_path && b.source != a.source, "copy owns its strings");
	TAP_EQ_S(b.source, a.source, "copy keeps the source");
	CFG_Free(&a);
	TAP_OK(a.events_path == NULL && a.source == NULL, "CFG_Free clears the pointers");
	CFG_Free(&a);
	TAP_EQ_S(b.events_path, "/tmp/eve.json", "copy survives freeing the original");
	TAP_EQ_U(b.events_burst, 9, "copy keeps the numbers");
	TAP_OK(b.policy.n_protect == 2 && b.policy.protect[1].family == AF_INET6 &&
	    b.policy.protect[1].prefix == 32 && b.policy.n_exempt_ports == 1 &&
	    b.policy.exempt_ports[0] == 22, "copy keeps the policy lists");
	TAP_OK(b.n_overrides == 2 && b.overrides[0].port == 443 &&
	    b.overrides[0].idle_timeout == 350 && b.overrides[0].network.prefix == 24 &&
	    b.overrides[1].network.family == AF_INET6 && b.overrides[1].idle_timeout == 240,
	    "copy keeps eviction.overrides");
	CFG_Free(&b);
}

static void
test_validate(void)
{
	struct config c;
	struct config_errors errs = { 0 };
	int rc;

	CFG_SetDefaults(&c);
	TAP_OK(CFG_Validate(&c, &errs) == 0 && errs.count == 0, "defaults validate");

	/* As if the command line said --queue-num 65530 --queue-count 8 --rate 9000. */
	c.queue_num = 65530;
	c.queue_count = 8;
	c.events_rate = 9000;
	c.keepalive = 1;
	rc = CFG_Validate(&c, &errs);
	TAP_OK(rc == -1 && errs.count == 3, "three cross-field errors (got %zu)", errs.count);
	TAP_OK(errs.count == 3 && strcmp(errs.items[0].file, "command line") == 0 &&
	    errs.items[0].line == 0 && errs.items[2].line == 0, "file \"command line\", line 0");
	if (errs.count == 3) {
		TAP_EQ_S(errs.items[0].message,
		    "queue.num + queue.count - 1 is 65537, beyond the last queue number 65535",
		    "validate: queue range");
		TAP_EQ_S(errs.items[1].message,
		    "events.burst (5000) must be at least events.rate (9000)", "validate: burst");
		TAP_EQ_S(errs.items[2].message,
		    "eviction.keepalive needs eviction.idle_timeout or eviction.overrides",
		    "validate: keepalive");
	} else {
		TAP_OK(0, "validate: queue range");
		TAP_OK(0, "validate: burst");
		TAP_OK(0, "validate: keepalive");
	}
	CFG_FreeErrors(&errs);

	c.queue_num = 0;
	c.events_burst = 9000;
	c.idle_timeout = 7440;
	rc = CFG_Validate(&c, &errs);
	TAP_OK(rc == -1 && errs.count == 1 && strcmp(errs.items[0].message,
	    "flows.timeout.established must be longer than eviction.idle_timeout") == 0,
	    "validate: idle_timeout not below established");
	CFG_FreeErrors(&errs);

	c.timeout.established = 7441;
	TAP_OK(CFG_Validate(&c, &errs) == 0 && errs.count == 0, "fixed overrides validate");
	CFG_FreeErrors(&errs);

	/* Errors already in the list are not counted against a later check. */
	CFG_AddError(&errs, "earlier", 0, "an earlier error");
	TAP_OK(CFG_Validate(&c, &errs) == 0 && errs.count == 1,
	    "CFG_Validate: earlier errors do not fail it");
	CFG_Free(&c);
	TAP_OK(load_text("mode = \"enforce\";\n", &c, &errs) == 0 && errs.count == 1,
	    "CFG_Load: earlier errors do not fail it");
	CFG_FreeErrors(&errs);
	CFG_Free(&c);
}

static void
test_policy_keys(void)
{
	/* Both list syntaxes, IPv4 and IPv6, bare addresses, a port as int64 and in hexadecimal. */
	static const char text[] =
	    "policy = {\n"
	    "  actions = { injected = \"accept\"; invalid_seq = \"drop\"; };\n"
	    "  protect = [ \"198.18.0.0/15\", \"2001:db8::/32\", \"198.19.7.1\",\n"
	    "              \"2001:db8:5::9\", \"0.0.0.0/0\" ];\n"
	    "  exempt = ( \"198.18.2.0/24\" );\n"
	    "  exempt_ports = ( 22, 0x1bb, 65535L );\n"
	    "};\n";
	static const uint8_t v6net[16] = { 0x20, 0x01, 0x0d, 0xb8 };
	static const uint8_t v6host[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 5, [15] = 9 };
	struct config c;
	char buf[64];

	check_ok(text, &c, "policy group");
	TAP_EQ_U(c.policy.drop_injected, 0, "policy.actions.injected accept");
	TAP_EQ_U(c.policy.drop_invalid_seq, 1, "policy.actions.invalid_seq drop");
	TAP_EQ_U(c.policy.n_protect, 5, "policy.protect: 5 networks");
	TAP_OK(c.policy.protect[0].family == AF_INET && c.policy.protect[0].prefix == 15 &&
	    inet_ntop(AF_INET, c.policy.protect[0].addr, buf, sizeof(buf)) &&
	    strcmp(buf, "198.18.0.0") == 0, "protect[0] 198.18.0.0/15");
	TAP_OK(c.policy.protect[1].family == AF_INET6 && c.policy.protect[1].prefix == 32 &&
	    memcmp(c.policy.protect[1].addr, v6net, 16) == 0, "protect[1] 2001:db8::/32");
	TAP_OK(c.policy.protect[2].family == AF_INET && c.policy.protect[2].prefix == 32,
	    "protect[2] bare IPv4 address is a /32");
	TAP_OK(c.policy.protect[3].family == AF_INET6 && c.policy.protect[3].prefix == 128 &&
	    memcmp(c.policy.protect[3].addr, v6host, 16) == 0,
	    "protect[3] bare IPv6 address is a /128");
	TAP_OK(c.policy.protect[4].family == AF_INET && c.policy.protect[4].prefix == 0,
	    "protect[4] 0.0.0.0/0");
	TAP_OK(c.policy.n_exempt == 1 && c.policy.exempt[0].prefix == 24, "policy.exempt as a ( ) list");
	TAP_OK(c.policy.n_exempt_ports == 3 && c.policy.exempt_ports[0] == 22 &&
	    c.policy.exempt_ports[1] == 443 && c.policy.exempt_ports[2] == 65535,
	    "policy.exempt_ports 22, 0x1bb, 65535L");
	CFG_Free(&c);

	check_ok("policy = { protect = ( ); exempt = [ ]; exempt_ports = [ ]; actions = { }; };\n",
	    &c, "empty lists and an empty actions group");
	TAP_OK(c.policy.n_protect == 0 && c.policy.drop_injected == 1, "empty policy keeps defaults");
	CFG_Free(&c);
}

enum list_kind { LIST_V4, LIST_V6, LIST_PORTS };

/* A list of n entries of a kind, one per line from line 3 ("policy = {", "key = ["). */
static char *
long_list(const char *key, enum list_kind kind, int n)
{
	size_t cap = 64 + (size_t)n * 64, len;
	char *t = malloc(cap);

	if (t == NULL)
		exit(99);
	len = (size_t)snprintf(t, cap, "policy = {\n  %s = [\n", key);
	for (int i = 0; i < n; i++) {
		len += (size_t)snprintf(t + len, cap - len, "    ");
		if (kind == LIST_V4)
			len += (size_t)snprintf(t + len, cap - len, "\"198.18.%d.0/24\"", i + 1);
		else if (kind == LIST_V6)
			len += (size_t)snprintf(t + len, cap - len, "\"2001:db8:%x::/48\"", i + 1);
		else
			len += (size_t)snprintf(t + len, cap - len, "%d", i + 1);
		len += (size_t)snprintf(t + len, cap - len, "%s\n", i + 1 < n ? "," : "");
	}
	snprintf(t + len, cap - len, "  ];\n};\n");
	return t;
}

static void
test_policy_errors(void)
{
	struct config c;
	struct config_errors errs = { 0 };
	char *t;
	int rc;

	/* actions */
	static const struct error_case errors[] = {
		{ "policy = {\n  actions = {\n    forged = \"drop\";\n  };\n};\n", 3,
		    "unknown key 'policy.actions.forged'", "unknown action key" },
		{ "policy = {\n  actions = {\n    injected = \"drop\";\n    abort = \"drop\";\n"
		    "  };\n};\n", 4, "policy.actions.abort: genuine RSTs are never dropped",
		    "genuine cause named" },
		{ "policy = { actions = {\n refused = \"accept\"; }; };\n", 2,
		    "policy.actions.refused: genuine RSTs are never dropped",
		    "genuine cause named, even to accept it" },
		{ "policy = { actions = { idle_eviction = \"drop\"; }; };\n", 1,
		    "policy.actions.idle_eviction: eviction RSTs are never dropped (the client would hang)",
		    "eviction named" },
		{ "policy = { actions = { no_flow = \"drop\"; }; };\n", 1,
		    "policy.actions.no_flow: RSTs of untracked flows are never dropped", "no_flow named" },
		{ "policy = {\n  actions = {\n\n    injected = \"block\";\n  };\n};\n", 4,
		    "policy.actions.injected: invalid value \"block\" (expected drop or accept)",
		    "bad action string" },
		{ "policy = { actions = { invalid_seq = \"Drop\"; }; };\n", 1,
		    "policy.actions.invalid_seq: invalid value \"Drop\" (expected drop or accept)",
		    "action strings are case-sensitive" },
		{ "policy = { actions = { injected = true; }; };\n", 1,
		    "policy.actions.injected: expected a string", "boolean for an action" },
		{ "policy = {\n  actions = \"drop\";\n};\n", 2, "policy.actions: expected a group",
		    "string for actions" },
		{ "\npolicy = [ \"198.18.0.0/15\" ];\n", 2, "policy: expected a group",
		    "list for policy" },
		{ "policy = {\n  protected = [ ];\n};\n", 2, "unknown key 'policy.protected'",
		    "unknown policy key" },
		/* networks */
		{ "policy = {\n  protect = [ \"198.18.0.0/15\",\n    \"198.18.1.1/15\" ];\n};\n", 3,
		    "policy.protect: 198.18.1.1/15 has host bits set", "host bits, at the element's line" },
		{ "policy = { exempt = [ \"2001:db8::1/64\" ]; };\n", 1,
		    "policy.exempt: 2001:db8::1/64 has host bits set", "IPv6 host bits" },
		{ "policy = {\n  protect = [ \"198.18.0.0/33\" ];\n};\n", 2,
		    "policy.protect: 198.18.0.0/33 has a prefix longer than 32", "IPv4 prefix too long" },
		{ "policy = { exempt = ( \"2001:db8::/129\" ); };\n", 1,
		    "policy.exempt: 2001:db8::/129 has a prefix longer than 128", "IPv6 prefix too long" },
		{ "policy = {\n  protect = [\n    \"gateway\"\n  ];\n};\n", 3,
		    "policy.protect: invalid value \"gateway\" (expected an IPv4 or IPv6 address, "
		    "optionally with /prefix)", "bad CIDR" },
		{ "policy = { protect = [ \"198.18.0.0/\" ]; };\n", 1,
		    "policy.protect: invalid value \"198.18.0.0/\" (expected an IPv4 or IPv6 address, "
		    "optionally with /prefix)", "empty prefix" },
		{ "policy = { protect = ( \"198.18.0.0/15\",\n 15 ); };\n", 2,
		    "policy.protect: element 2: expected a string", "integer in a network list" },
		{ "policy = { exempt = [ 1 ]; };\n", 1,
		    "policy.exempt: element 1: expected a string", "integer array for networks" },
		{ "policy = {\n  protect = \"198.18.0.0/15\";\n};\n", 2,
		    "policy.protect: expected a list", "string for a network list" },
		{ "policy = { exempt = { a = 1; }; };\n", 1, "policy.exempt: expected a list",
		    "group for a network list" },
		/* ports */
		{ "policy = {\n  exempt_ports = [ 22,\n    0 ];\n};\n", 3,
		    "policy.exempt_ports: 0 is out of range 1..65535", "port 0" },
		{ "policy = { exempt_ports = [ 65536 ]; };\n", 1,
		    "policy.exempt_ports: 65536 is out of range 1..65535", "port 65536" },
		{ "policy = { exempt_ports = ( -1 ); };\n", 1,
		    "policy.exempt_ports: -1 is out of range 1..65535", "negative port" },
		{ "policy = { exempt_ports = [ 22, /* 4294967296 */ 4294967376 ]; };\n", 1,
		    "policy.exempt_ports: 4294967376 is out of range 1..65535",
		    "2^32 + 80 without L (libconfig makes it 80) is not port 80" },
		{ "policy = { exempt_ports = [\n  22, # ssh\n  0x100000050\n]; };\n", 3,
		    "policy.exempt_ports: 0x100000050 is out of range 1..65535",
		    "hexadecimal beyond 32 bits, after a comment" },
		{ "policy = { exempt_ports = [ \"80\" ]; };\n", 1,
		    "policy.exempt_ports: element 1: expected an integer", "string in a port list" },
		{ "policy = { exempt_ports = ( 80, 1.5 ); };\n", 1,
		    "policy.exempt_ports: element 2: expected an integer", "float in a port list" },
		{ "policy = {\n  exempt_ports = 80;\n};\n", 2,
		    "policy.exempt_ports: expected a list", "scalar for a port list" },
	};
	check_errors(errors, sizeof(errors) / sizeof(errors[0]));

	/* sizes: 64 is the limit, the 65th is reported at its own line */
	t = long_list("protect", LIST_V4, 64);
	check_ok(t, &c, "64 networks");
	TAP_EQ_U(c.policy.n_protect, 64, "64 networks stored");
	CFG_Free(&c);
	free(t);
	t = long_list("protect", LIST_V4, 65);
	check_error(t, 67, "policy.protect: more than 64 networks", "65 networks");
	free(t);
	t = long_list("exempt", LIST_V6, 70);
	check_error(t, 67, "policy.exempt: more than 64 networks", "70 networks: one error");
	free(t);
	t = long_list("exempt_ports", LIST_PORTS, 64);
	check_ok(t, &c, "64 ports");
	TAP_OK(c.policy.n_exempt_ports == 64 && c.policy.exempt_ports[63] == 64, "64 ports stored");
	CFG_Free(&c);
	free(t);
	t = long_list("exempt_ports", LIST_PORTS, 65);
	check_error(t, 67, "policy.exempt_ports: more than 64 ports", "65 ports");
	free(t);

	/* Every bad element is reported; a list with any keeps its default (empty). */
	rc = load_text("policy = {\n  protect = [\n    \"198.18.0.0/15\",\n    \"198.18.0.1/15\",\n"
	    "    \"x\"\n  ];\n  exempt_ports = [ 22 ];\n};\n", &c, &errs);
	TAP_OK(rc == -1 && errs.count == 2 && errs.items[0].line == 4 && errs.items[1].line == 5,
	    "two bad elements: two errors at lines 4 and 5 (got %zu)", errs.count);
	TAP_EQ_U(c.policy.n_protect, 0, "a rejected list keeps its default");
	TAP_EQ_U(c.policy.n_exempt_ports, 1, "the valid list beside it is applied");
	CFG_FreeErrors(&errs);
	CFG_Free(&c);
}

static void
test_modes(void)
{
	TAP_OK(CFG_ParseMode("detect") == RG_MODE_DETECT, "parse detect");
	TAP_OK(CFG_ParseMode("enforce") == RG_MODE_ENFORCE, "parse enforce");
	TAP_OK(CFG_ParseMode("Enforce") == -1 && CFG_ParseMode("") == -1, "parse rejects others");
	TAP_EQ_S(CFG_ModeName(RG_MODE_DETECT), "detect", "name of detect");
	TAP_EQ_S(CFG_ModeName(RG_MODE_ENFORCE), "enforce", "name of enforce");
}

static void
test_eviction_keys(void)
{
	/* Every new key, two overrides on one line (each literal read inside its own braces), a
	 * hexadecimal port, an int64 timeout, an IPv6 override without a port, both list syntaxes. */
	static const char text[] =
	    "eviction = {\n"
	    "  idle_timeout = 600;\n"
	    "  keepalive = true;\n"
	    "  probe_lead = 45;\n"
	    "  max_idle = 86400;\n"
	    "  probe_rate = 5000;\n"
	    "  probe_retries = 5;\n"
	    "  probe_side = \"both\";\n"
	    "  watch_min_gap = 120;\n"
	    "  overrides = (\n"
	    "    { network = \"198.18.3.0/24\"; port = 0x1bb; idle_timeout = 350; },"
	    " { port = 80; idle_timeout = 60L; network = \"198.18.3.0/24\"; },\n"
	    "    { network = \"2001:db8:10::/48\"; idle_timeout = 240; },\n"
	    "    { network = \"198.18.0.0/15\"; port = 0; idle_timeout = 1200; }\n"
	    "  );\n"
	    "};\n";
	static const uint8_t v6net[16] = { 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x10 };
	struct config c;
	char buf[64];

	check_ok(text, &c, "every eviction key");
	const struct uint_case values[] = {
		{ c.idle_timeout, 600, "eviction.idle_timeout" },
		{ c.keepalive, 1, "eviction.keepalive" },
		{ c.probe_lead, 45, "eviction.probe_lead" },
		{ c.max_idle, 86400, "eviction.max_idle" },
		{ c.probe_rate, 5000, "eviction.probe_rate" },
		{ c.probe_retries, 5, "eviction.probe_retries" },
	};
	check_values(values, sizeof(values) / sizeof(values[0]));
	TAP_OK(c.probe_side == PROBE_BOTH, "eviction.probe_side both");
	TAP_EQ_U(c.watch_min_gap, 120, "eviction.watch_min_gap");
	TAP_EQ_U(c.n_overrides, 4, "eviction.overrides: 4 entries");
	TAP_OK(c.overrides[0].network.family == AF_INET && c.overrides[0].network.prefix == 24 &&
	    inet_ntop(AF_INET, c.overrides[0].network.addr, buf, sizeof(buf)) &&
	    strcmp(buf, "198.18.3.0") == 0 && c.overrides[0].port == 443 &&
	    c.overrides[0].idle_timeout == 350, "overrides[0] 198.18.3.0/24 port 0x1bb 350 s");
	TAP_OK(c.overrides[1].port == 80 && c.overrides[1].idle_timeout == 60 &&
	    c.overrides[1].network.prefix == 24,
	    "overrides[1] on the same line, keys in another order, 60L");
	TAP_OK(c.overrides[2].network.family == AF_INET6 && c.overrides[2].network.prefix == 48 &&
	    memcmp(c.overrides[2].network.addr, v6net, 16) == 0 && c.overrides[2].port == 0 &&
	    c.overrides[2].idle_timeout == 240, "overrides[2] IPv6, no port: any port");
	TAP_OK(c.overrides[3].port == 0 && c.overrides[3].idle_timeout == 1200,
	    "overrides[3] port 0: any port");
	CFG_Free(&c);

	check_ok("eviction = {\n  probe_side = \"client\";\n  overrides = [ ];\n"
	    "  probe_lead = 1; max_idle = 60; probe_rate = 1; probe_retries = 1;"
	    " watch_min_gap = 1;\n};\n", &c, "eviction: lower edges, overrides as an empty array");
	TAP_OK(c.probe_side == PROBE_CLIENT && c.probe_lead == 1 && c.max_idle == 60 &&
	    c.probe_rate == 1 && c.probe_retries == 1 && c.watch_min_gap == 1 && c.n_overrides == 0,
	    "eviction lower edges stored");
	CFG_Free(&c);
	check_ok("eviction = { probe_side = \"server\"; probe_lead = 3600; max_idle = 2592000;"
	    " probe_rate = 100000; probe_retries = 10; watch_min_gap = 86400;"
	    " overrides = ( { network = \"0.0.0.0/0\"; port = 65535; idle_timeout = 86400; },"
	    " { network = \"::/0\"; idle_timeout = 3601; } ); };\n"
	    "flows = { timeout = { established = 86401; }; };\n", &c, "eviction: upper edges");
	TAP_OK(c.probe_side == PROBE_SERVER && c.probe_lead == 3600 && c.max_idle == 2592000 &&
	    c.probe_rate == 100000 && c.probe_retries == 10 && c.watch_min_gap == 86400 &&
	    c.n_overrides == 2 && c.overrides[0].port == 65535 &&
	    c.overrides[0].idle_timeout == 86400 && c.overrides[1].network.prefix == 0,
	    "eviction upper edges stored");
	CFG_Free(&c);

	/* keepalive with only overrides is fine (no global idle_timeout). */
	check_ok("eviction = {\n  keepalive = true;\n"
	    "  overrides = ( { network = \"198.18.3.0/24\"; idle_timeout = 350; } );\n};\n", &c,
	    "keepalive with only overrides");
	TAP_OK(c.keepalive == 1 && c.idle_timeout == 0 && c.n_overrides == 1,
	    "keepalive on, no global timeout, one override");
	CFG_Free(&c);
}

static void
test_eviction_errors(void)
{
	struct config c;

	static const struct error_case errors[] = {
		{ "eviction = {\n  probe_side = \"middle\";\n};\n", 2,
		    "eviction.probe_side: invalid value \"middle\" (expected server, client or both)",
		    "bad probe_side" },
		{ "eviction = { probe_side = \"Server\"; };\n", 1,
		    "eviction.probe_side: invalid value \"Server\" (expected server, client or both)",
		    "probe_side is case-sensitive" },
		{ "eviction = {\n\n  probe_side = 1;\n};\n", 3,
		    "eviction.probe_side: expected a string", "integer for probe_side" },
	};
	check_errors(errors, sizeof(errors) / sizeof(errors[0]));
	check_ok("eviction = {\n  probe_lead = 0;\n};\n", &c, "probe_lead 0: automatic");
	CFG_Free(&c);
	static const struct error_case errors2[] = {
		{ "eviction = { probe_lead = 3601; };\n", 1,
		    "eviction.probe_lead: 3601 is out of range 1..3600 (or 0 for a fifth of each timeout)", "probe_lead high" },
		{ "eviction = { probe_lead = \"30\"; };\n", 1,
		    "eviction.probe_lead: expected an integer", "string for probe_lead" },
		{ "eviction = {\n  max_idle = 59;\n};\n", 2,
		    "eviction.max_idle: 59 is out of range 60..2592000", "max_idle low" },
		{ "eviction = { max_idle = 2592001; };\n", 1,
		    "eviction.max_idle: 2592001 is out of range 60..2592000", "max_idle high" },
		{ "eviction = { max_idle = 4294967356; };\n", 1,
		    "eviction.max_idle: 4294967356 is out of range 60..2592000",
		    "max_idle 2^32 + 60 without L is not 60" },
		{ "eviction = { probe_rate = 0; };\n", 1,
		    "eviction.probe_rate: 0 is out of range 1..100000", "probe_rate low" },
		{ "eviction = { probe_rate = 100001; };\n", 1,
		    "eviction.probe_rate: 100001 is out of range 1..100000", "probe_rate high" },
		{ "eviction = { probe_retries = 0; };\n", 1,
		    "eviction.probe_retries: 0 is out of range 1..10", "probe_retries low" },
		{ "eviction = {\n  probe_retries = 11;\n};\n", 2,
		    "eviction.probe_retries: 11 is out of range 1..10", "probe_retries high" },
		{ "eviction = { probe_retries = 2.5; };\n", 1,
		    "eviction.probe_retries: expected an integer", "float for probe_retries" },
		{ "eviction = { watch_min_gap = -1; };\n", 1,
		    "eviction.watch_min_gap: -1 is out of range 1..86400 (or 0 for automatic)",
		    "watch_min_gap negative" },
		{ "eviction = { watch_min_gap = 86401; };\n", 1,
		    "eviction.watch_min_gap: 86401 is out of range 1..86400 (or 0 for automatic)",
		    "watch_min_gap high" },
		{ "eviction = {\n  keepalive = false;\n  probe_interval = 30;\n};\n", 3,
		    "unknown key 'eviction.probe_interval'", "unknown eviction key" },
	};
	check_errors(errors2, sizeof(errors2) / sizeof(errors2[0]));
}

/* An overrides list of n entries, one per line from line 3 ("eviction = {", "overrides = ("). */
static char *
long_overrides(int n)
{
	size_t cap = 64 + (size_t)n * 80, len;
	char *t = malloc(cap);

	if (t == NULL)
		exit(99);
	len = (size_t)snprintf(t, cap, "eviction = {\n  overrides = (\n");
	for (int i = 0; i < n; i++)
		len += (size_t)snprintf(t + len, cap - len,
		    "    { network = \"198.18.%d.0/24\"; idle_timeout = %d; }%s\n", i + 1, 100 + i,
		    i + 1 < n ? "," : "");
	snprintf(t + len, cap - len, "  );\n};\n");
	return t;
}

static void
test_override_errors(void)
{
	struct config c;
	struct config_errors errs = { 0 };
	char *t;
	int rc;

	static const struct error_case errors[] = {
		{ "eviction = {\n  overrides = \"198.18.3.0/24\";\n};\n", 2,
		    "eviction.overrides: expected a list", "string for overrides" },
		{ "eviction = {\n  overrides = { network = \"198.18.3.0/24\"; idle_timeout = 350; };\n"
		    "};\n", 2, "eviction.overrides: expected a list", "a bare group for overrides" },
		{ "eviction = {\n  overrides = (\n    \"198.18.3.0/24\"\n  );\n};\n", 3,
		    "eviction.overrides[0]: expected a group { network = \"CIDR\"; port = N; "
		    "idle_timeout = N; }", "string element in overrides" },
		{ "eviction = { overrides = [ 350 ]; };\n", 1,
		    "eviction.overrides[0]: expected a group { network = \"CIDR\"; port = N; "
		    "idle_timeout = N; }", "integer array for overrides" },
		{ "eviction = {\n  overrides = (\n"
		    "    { network = \"198.18.3.0/24\"; idle_timeout = 350; },\n"
		    "    { network = \"198.18.4.0/24\";\n"
		    "      idle_timeout = 350;\n"
		    "      prot = 443; }\n  );\n};\n", 6,
		    "unknown key 'eviction.overrides[1].prot'", "override with an unknown key, at its line" },
		{ "eviction = {\n  overrides = (\n"
		    "    { network = \"lb.example\"; idle_timeout = 350; }\n  );\n};\n", 3,
		    "eviction.overrides[0].network: invalid value \"lb.example\" (expected an IPv4 or IPv6 "
		    "address, optionally with /prefix)", "override with a bad CIDR" },
		{ "eviction = {\n  overrides = (\n    {\n      network = \"198.18.3.1/24\";\n"
		    "      idle_timeout = 350;\n    }\n  );\n};\n", 4,
		    "eviction.overrides[0].network: 198.18.3.1/24 has host bits set",
		    "override network with host bits" },
		{ "eviction = { overrides = ( { network = \"2001:db8::/129\"; idle_timeout = 350; } ); };\n",
		    1, "eviction.overrides[0].network: 2001:db8::/129 has a prefix longer than 128",
		    "override IPv6 prefix too long" },
		{ "eviction = { overrides = ( { network = [ \"198.18.3.0/24\" ]; idle_timeout = 350; } ); };\n",
		    1, "eviction.overrides[0].network: expected a string", "override network not a string" },
		{ "eviction = {\n  overrides = (\n    { network = \"198.18.3.0/24\";\n      port = 65536;\n"
		    "      idle_timeout = 350; }\n  );\n};\n", 4,
		    "eviction.overrides[0].port: 65536 is out of range 0..65535", "override port too high" },
		{ "eviction = { overrides = ( { network = \"198.18.3.0/24\"; port = -1; idle_timeout = 350; } ); };\n",
		    1, "eviction.overrides[0].port: -1 is out of range 0..65535", "override port negative" },
		{ "eviction = { overrides = ( { network = \"198.18.3.0/24\"; port = \"443\"; idle_timeout = 350; } ); };\n",
		    1, "eviction.overrides[0].port: expected an integer", "override port as a string" },
		/* Two groups on one line: the second's port is 2^32 + 443 (libconfig makes it 443). */
		{ "eviction = { overrides = ( { network = \"198.18.3.0/24\"; port = 443; idle_timeout = 350; },"
		    " { network = \"198.18.4.0/24\"; port = 4294967739; idle_timeout = 350; } ); };\n", 1,
		    "eviction.overrides[1].port: 4294967739 is out of range 0..65535",
		    "override port beyond 32 bits, read in its own group" },
		{ "eviction = { overrides = ( { network = \"198.18.3.0/24\"; idle_timeout = 9; } ); };\n",
		    1, "eviction.overrides[0].idle_timeout: 9 is out of range 10..86400",
		    "override idle_timeout too low" },
		{ "eviction = { overrides = ( { network = \"198.18.3.0/24\"; idle_timeout = 86401; } ); };\n"
		    "flows = { timeout = { established = 100000; }; };\n", 1,
		    "eviction.overrides[0].idle_timeout: 86401 is out of range 10..86400",
		    "override idle_timeout too high" },
		{ "eviction = { overrides = ( { network = \"198.18.3.0/24\"; idle_timeout = 0; } ); };\n",
		    1, "eviction.overrides[0].idle_timeout: 0 is out of range 10..86400",
		    "override idle_timeout 0 is not 'not configured'" },
		{ "eviction = {\n  overrides = (\n    { network = \"198.18.3.0/24\"; idle_timeout = 350; },\n"
		    "    { network = \"198.18.4.0/24\";\n      port = 443; }\n  );\n};\n", 4,
		    "eviction.overrides[1]: idle_timeout is required",
		    "override without idle_timeout, at its opening brace" },
		{ "eviction = {\n  overrides = (\n\n    { port = 443; idle_timeout = 350; }\n  );\n};\n", 4,
		    "eviction.overrides[0]: network is required", "override without network" },
		{ "eviction = {\n  overrides = (\n"
		    "    { network = \"198.18.3.0/24\"; port = 443; idle_timeout = 350; },\n"
		    "    { network = \"198.18.4.0/24\"; idle_timeout = 350; },\n"
		    "    { idle_timeout = 60; port = 443; network = \"198.18.3.0/24\"; }\n  );\n};\n", 5,
		    "eviction.overrides[2]: the same network and port as eviction.overrides[0]",
		    "two overrides for the same network and port" },
	};
	check_errors(errors, sizeof(errors) / sizeof(errors[0]));

	/* 64 is the limit; the 65th is reported at its own line. */
	t = long_overrides(64);
	check_ok(t, &c, "64 overrides");
	TAP_OK(c.n_overrides == 64 && c.overrides[63].idle_timeout == 163, "64 overrides stored");
	CFG_Free(&c);
	free(t);
	t = long_overrides(65);
	check_error(t, 67, "eviction.overrides: more than 64 entries", "65 overrides");
	free(t);

	/* Every problem is reported; a list with any keeps its default (empty). */
	rc = load_text("eviction = {\n  overrides = (\n    { network = \"198.18.3.0/24\"; idle_timeout = 350; },\n"
	    "    { network = \"198.18.4.1/24\"; idle_timeout = 350; },\n"
	    "    { network = \"198.18.5.0/24\"; }\n  );\n  probe_rate = 7;\n};\n", &c, &errs);
	TAP_OK(rc == -1 && errs.count == 2 && errs.items[0].line == 4 && errs.items[1].line == 5,
	    "two bad overrides: errors at lines 4 and 5 (got %zu)", errs.count);
	TAP_EQ_U(c.n_overrides, 0, "a rejected overrides list keeps its default");
	TAP_EQ_U(c.probe_rate, 7, "the valid key beside it is applied");
	CFG_FreeErrors(&errs);
	CFG_Free(&c);

	/* Several errors in one override are all reported. */
	rc = load_text("eviction = {\n  overrides = (\n    { network = 5;\n      port = 70000;\n"
	    "      timeout = 350; }\n  );\n};\n", &c, &errs);
	TAP_OK(rc == -1 && errs.count == 4, "one override, four problems (got %zu)", errs.count);
	TAP_OK(errs.count == 4 && errs.items[0].line == 3 && errs.items[1].line == 4 &&
	    errs.items[2].line == 5 && errs.items[3].line == 3 &&
	    strcmp(errs.items[2].message, "unknown key 'eviction.overrides[0].timeout'") == 0 &&
	    strcmp(errs.items[3].message, "eviction.overrides[0]: idle_timeout is required") == 0,
	    "network, port, unknown key, missing idle_timeout: each at its line");
	CFG_FreeErrors(&errs);
	CFG_Free(&c);
}

static void
test_eviction_cross(void)
{
	struct config c;

	/* probe_lead against eviction.idle_timeout: at probe_lead when the file has it. */
	check_error("eviction = {\n  idle_timeout = 20;\n  probe_lead = 30;\n};\n", 3,
	    "eviction.probe_lead (30) must be shorter than eviction.idle_timeout (20)",
	    "probe_lead longer than idle_timeout");
	check_error("eviction = {\n  probe_lead = 60;\n  idle_timeout = 60;\n};\n", 2,
	    "eviction.probe_lead (60) must be shorter than eviction.idle_timeout (60)",
	    "probe_lead equal to idle_timeout");
	check_ok("eviction = {\n\n  idle_timeout = 25;\n};\n", &c,
	    "automatic probe_lead with a short idle_timeout");
	CFG_Free(&c);
	check_ok("eviction = { idle_timeout = 31; };\n", &c, "default probe_lead below idle_timeout");
	CFG_Free(&c);
	check_ok("eviction = { probe_lead = 3600; };\n", &c,
	    "probe_lead without any timeout configured");
	CFG_Free(&c);

	/* probe_lead against each override. */
	static const struct error_case errors[] = {
		{ "eviction = {\n  probe_lead = 120;\n  overrides = (\n"
		    "    { network = \"198.18.3.0/24\"; idle_timeout = 350; },\n"
		    "    { network = \"198.18.4.0/24\"; port = 443; idle_timeout = 60; }\n  );\n};\n", 2,
		    "eviction.probe_lead (120) must be shorter than eviction.overrides[1].idle_timeout (60)",
		    "probe_lead longer than an override's timeout: at probe_lead" },
		{ "eviction = {\n  probe_lead = 30;\n  overrides = (\n    { network = \"198.18.3.0/24\";\n"
		    "      idle_timeout = 30; }\n  );\n};\n", 2,
		    "eviction.probe_lead (30) must be shorter than eviction.overrides[0].idle_timeout (30)",
		    "probe_lead equal to an override's timeout: at probe_lead" },
		/* Each override must be shorter than flows.timeout.established. */
		{ "eviction = {\n  overrides = (\n    { network = \"198.18.3.0/24\";\n"
		    "      idle_timeout = 7440; }\n  );\n};\n", 4,
		    "flows.timeout.established (7440) must be longer than eviction.overrides[0].idle_timeout "
		    "(7440)", "override equal to the default established timeout: at the override" },
		{ "flows = {\n  timeout = {\n    established = 600;\n  };\n};\n"
		    "eviction = { overrides = ( { network = \"2001:db8::/32\"; idle_timeout = 900; } ); };\n",
		    3, "flows.timeout.established (600) must be longer than "
		    "eviction.overrides[0].idle_timeout (900)", "override above established: at established" },
		{ "flows = {\n  timeout = {\n    established = \"600\";\n  };\n};\n"
		    "eviction = { overrides = ( { network = \"2001:db8::/32\"; idle_timeout = 900; } ); };\n",
		    3, "flows.timeout.established: expected an integer",
		    "no override cross check on a rejected established" },
		/* keepalive needs a timeout: a global one or an override. */
		{ "eviction = {\n  keepalive = true;\n  overrides = ( );\n};\n", 2,
		    "eviction.keepalive needs eviction.idle_timeout or eviction.overrides",
		    "keepalive with neither idle_timeout nor overrides" },
		{ "eviction = {\n  keepalive = true;\n  overrides = (\n"
		    "    { network = \"198.18.3.0/24\"; }\n  );\n};\n", 4,
		    "eviction.overrides[0]: idle_timeout is required",
		    "no keepalive error when the overrides were rejected" },
		{ "eviction = {\n  probe_lead = \"x\";\n  idle_timeout = 20;\n};\n", 2,
		    "eviction.probe_lead: expected an integer",
		    "no probe_lead cross check when probe_lead was rejected" },
	};
	check_errors(errors, sizeof(errors) / sizeof(errors[0]));
}

static void
test_eviction_validate(void)
{
	struct config c;
	struct config_errors errs = { 0 };
	int rc;

	/* As if the file had overrides and the command line said --keepalive. */
	CFG_SetDefaults(&c);
	c.keepalive = 1;
	TAP_OK(CFG_Validate(&c, &errs) == -1 && errs.count == 1 && strcmp(errs.items[0].message,
	    "eviction.keepalive needs eviction.idle_timeout or eviction.overrides") == 0,
	    "validate: --keepalive alone");
	CFG_FreeErrors(&errs);
	CIDR_Parse("198.18.3.0/24", &c.overrides[0].network);
	c.overrides[0].idle_timeout = 350;
	c.n_overrides = 1;
	TAP_OK(CFG_Validate(&c, &errs) == 0 && errs.count == 0, "validate: --keepalive with overrides");
	CFG_FreeErrors(&errs);

	/* --idle-timeout 20 with a probe_lead of 30; an override above established. */
	c.idle_timeout = 20;
	c.probe_lead = 30;
	c.overrides[0].idle_timeout = 8000;
	rc = CFG_Validate(&c, &errs);
	TAP_OK(rc == -1 && errs.count == 2, "validate: two eviction errors (got %zu)", errs.count);
	TAP_OK(errs.count == 2 && errs.items[0].line == 0 && errs.items[1].line == 0 &&
	    strcmp(errs.items[0].file, "command line") == 0 &&
	    strcmp(errs.items[0].message,
	    "eviction.probe_lead (30) must be shorter than eviction.idle_timeout (20)") == 0 &&
	    strcmp(errs.items[1].message, "flows.timeout.established (7440) must be longer than "
	    "eviction.overrides[0].idle_timeout (8000)") == 0,
	    "validate: probe_lead and override messages");
	CFG_FreeErrors(&errs);
	c.idle_timeout = 300;
	c.overrides[0].idle_timeout = 25;
	rc = CFG_Validate(&c, &errs);
	TAP_OK(rc == -1 && errs.count == 1 && strcmp(errs.items[0].message,
	    "eviction.probe_lead (30) must be shorter than eviction.overrides[0].idle_timeout (25)") == 0,
	    "validate: probe_lead against an override");
	CFG_FreeErrors(&errs);
	c.probe_lead = 20;
	TAP_OK(CFG_Validate(&c, &errs) == 0 && errs.count == 0, "validate: fixed eviction settings");
	CFG_FreeErrors(&errs);
	CFG_Free(&c);
}

static void
addr_of(const char *s, int *family, uint8_t addr[16])
{
	memset(addr, 0, 16);
	*family = strchr(s, ':') ? AF_INET6 : AF_INET;
	if (inet_pton(*family, s, addr) != 1) {
		fprintf(stderr, "bad address %s\n", s);
		exit(99);
	}
}

static uint32_t
timeout_for(const struct config *c, const char *addr, uint16_t port)
{
	uint8_t a[16];
	int family;

	addr_of(addr, &family, a);
	return CFG_IdleTimeoutFor(c, family, a, port);
}

static void
test_idle_timeout_for(void)
{
	/* Listed broadest first and port-specific last, so that order cannot be what decides. */
	static const char text[] =
	    "eviction = {\n"
	    "  idle_timeout = 600;\n"
	    "  overrides = (\n"
	    "    { network = \"198.18.0.0/15\"; idle_timeout = 1200; },\n"
	    "    { network = \"198.18.3.0/24\"; idle_timeout = 350; },\n"
	    "    { network = \"198.18.3.0/24\"; port = 443; idle_timeout = 60; },\n"
	    "    { network = \"198.18.0.0/15\"; port = 22; idle_timeout = 3600; },\n"
	    "    { network = \"198.18.3.7\"; idle_timeout = 240; },\n"
	    "    { network = \"2001:db8::/32\"; idle_timeout = 300; },\n"
	    "    { network = \"2001:db8:1::/48\"; port = 443; idle_timeout = 100; },\n"
	    "    { network = \"::/0\"; port = 8443; idle_timeout = 200; }\n"
	    "  );\n"
	    "};\n";
	static const uint8_t zero[16];
	struct config c;

	check_ok(text, &c, "overrides for lookups");
	TAP_EQ_U(timeout_for(&c, "198.19.200.1", 80), 1200, "/15 matches");
	TAP_EQ_U(timeout_for(&c, "198.18.3.9", 80), 350, "/24 beats /15");
	TAP_EQ_U(timeout_for(&c, "198.18.3.9", 443), 60, "/24 with port beats /24 without");
	TAP_EQ_U(timeout_for(&c, "198.18.3.9", 22), 350,
	    "/24 without port beats /15 with port (longest prefix first)");
	TAP_EQ_U(timeout_for(&c, "198.18.9.9", 22), 3600, "/15 with port beats /15 without");
	TAP_EQ_U(timeout_for(&c, "198.18.3.7", 443), 240, "/32 beats /24 with port");
	TAP_EQ_U(timeout_for(&c, "192.0.2.1", 443), 600, "no match: eviction.idle_timeout");
	TAP_EQ_U(timeout_for(&c, "192.0.2.1", 8443), 600, "::/0 never matches IPv4");
	TAP_EQ_U(timeout_for(&c, "2001:db8:1::5", 443), 100, "IPv6 /48 with port");
	TAP_EQ_U(timeout_for(&c, "2001:db8:1::5", 80), 300, "IPv6 /32");
	TAP_EQ_U(timeout_for(&c, "2001:db9::1", 8443), 200, "IPv6 ::/0 with port");
	TAP_EQ_U(timeout_for(&c, "2001:db9::1", 80), 600, "IPv6 no match: global");
	/* An IPv6 address whose first 4 bytes are 198.18.3.7 must not match the IPv4 entries. */
	TAP_EQ_U(timeout_for(&c, "c612:307::", 80), 600, "IPv6 never matches IPv4 overrides");
	TAP_EQ_U(CFG_IdleTimeoutFor(&c, AF_INET6, zero, 80), 600, ":: port 80: global");
	c.idle_timeout = 0;
	TAP_EQ_U(timeout_for(&c, "192.0.2.1", 443), 0, "no match and no global: 0");
	TAP_EQ_U(timeout_for(&c, "198.18.3.9", 443), 60, "an override without a global timeout");
	c.n_overrides = 0;
	TAP_EQ_U(timeout_for(&c, "198.18.3.9", 443), 0, "no overrides, no global: 0");
	CFG_Free(&c);
}

static void
test_watch_min_gap(void)
{
	struct config c;

	CFG_SetDefaults(&c);
	TAP_EQ_U(CFG_WatchMinGap(&c, 0), 30, "automatic gap for a flow without a timeout: 30");
	TAP_EQ_U(CFG_WatchMinGap(&c, 350), 87, "automatic gap: a quarter of the flow's timeout");
	TAP_EQ_U(CFG_WatchMinGap(&c, 3), 1, "automatic gap is at least 1");
	c.watch_min_gap = 45;
	TAP_EQ_U(CFG_WatchMinGap(&c, 350), 45, "configured gap");
	CFG_Free(&c);
}


/* ---- The key table (CFG_ForEachKey) against the sample file, the man page and the loader ---- */

#define MAX_KEYS 128

struct key_list {
	size_t n;
	struct cfg_key_info k[MAX_KEYS];
	char path[MAX_KEYS][64];
};

static void
collect_key(const struct cfg_key_info *k, void *arg)
{
	struct key_list *l = arg;

	if (l->n == MAX_KEYS) {
		fprintf(stderr, "more than %d keys\n", MAX_KEYS);
		exit(99);
	}
	l->k[l->n] = *k;
	snprintf(l->path[l->n], sizeof(l->path[0]), "%s", k->path);
	l->k[l->n].path = l->path[l->n];
	l->n++;
}

/* The file text that sets key path ("a.b.c") to value: "a = { b = { c = value; }; };". */
static void
key_text(char *buf, size_t size, const char *path, const char *value)
{
	const char *dot;
	size_t len = 0;
	int depth = 0;

	buf[0] = '\0';
	while ((dot = strchr(path, '.')) != NULL) {
		len += (size_t)snprintf(buf + len, size - len, "%.*s = { ", (int)(dot - path), path);
		path = dot + 1;
		depth++;
	}
	len += (size_t)snprintf(buf + len, size - len, "%s = %s;", path, value);
	while (depth-- > 0)
		len += (size_t)snprintf(buf + len, size - len, " };");
	snprintf(buf + len, size - len, "\n");
}

/* A valid value other than the default, for the keys that are neither integers nor booleans
 * (those take one derived from the table). A new key of another type must be added here. */
static const struct { const char *path, *value; } other_values[] = {
	{ "mode", "\"enforce\"" },
	{ "events.path", "\"/var/log/rstguard/eve.json\"" },
	{ "log.target", "\"syslog\"" },
	{ "fastpath.pin_dir", "\"/sys/fs/bpf/other\"" },
	{ "log.level", "\"debug\"" },
	{ "eviction.probe_side", "\"both\"" },
	{ "eviction.overrides", "( { network = \"198.18.3.0/24\"; idle_timeout = 350; } )" },
	{ "policy.actions.injected", "\"accept\"" },
	{ "policy.actions.invalid_seq", "\"drop\"" },
	{ "policy.protect", "[ \"198.18.0.0/15\" ]" },
	{ "policy.exempt", "[ \"2001:db8::/32\" ]" },
	{ "policy.exempt_ports", "[ 22 ]" },
#ifdef HAVE_MICROHTTPD
	{ "metrics.listen", "\"[::1]:9471\"" },
#endif
	{ "metrics.textfile", "\"/var/lib/node-exporter/rstguard.prom\"" },
	{ "evidence.dir", "\"/var/lib/rstguard/evidence\"" },
	{ "control.socket", "\"/run/rstguard/other.sock\"" },
	{ "control.group", "\"adm\"" },
	{ "user", "\"nobody\"" },
};

/* A value of key k other than its default, as file text; NULL when none is known. */
static const char *
other_value(const struct cfg_key_info *k, char *buf, size_t size)
{
	if (k->type == CFG_KEY_INT) {
		snprintf(buf, size, "%lld", k->def != k->hi ? k->hi : k->lo);
		return buf;
	}
	if (k->type == CFG_KEY_BOOL)
		return k->def ? "false" : "true";
	for (size_t i = 0; i < sizeof(other_values) / sizeof(other_values[0]); i++)
		if (strcmp(other_values[i].path, k->path) == 0)
			return other_values[i].value;
	return NULL;
}

/* Load text and find an error about key path ("PATH: ..."); its message, or NULL. */
static char *
key_error(const char *text, const char *path)
{
	struct config c;
	struct config_errors errs = { 0 };
	size_t plen = strlen(path);
	char *msg = NULL;

	load_text(text, &c, &errs);
	for (size_t i = 0; i < errs.count && msg == NULL; i++)
		if (strncmp(errs.items[i].message, path, plen) == 0 &&
		    strncmp(errs.items[i].message + plen, ": ", 2) == 0)
			msg = strdup(errs.items[i].message);
	CFG_FreeErrors(&errs);
	CFG_Free(&c);
	return msg;
}

/* Integer key k accepts v (want_ok) or rejects it as out of its range. */
static void
check_int_value(const struct cfg_key_info *k, long long v, int want_ok)
{
	char value[32], text[256], want[160];
	char *msg;

	snprintf(value, sizeof(value), "%lld", v);
	key_text(text, sizeof(text), k->path, value);
	msg = key_error(text, k->path);
	if (want_ok) {
		TAP_OK(msg == NULL, "%s = %lld is accepted (%s)", k->path, v, msg ? msg : "no error");
	} else {
		snprintf(want, sizeof(want), "%s: %lld is out of range %lld..%lld", k->path, v, k->lo,
		    k->hi);
		TAP_OK(msg != NULL && strncmp(msg, want, strlen(want)) == 0,
		    "%s = %lld is rejected as out of range %lld..%lld (got: %s)", k->path, v, k->lo,
		    k->hi, msg ? msg : "no error");
	}
	free(msg);
}

/* The keys the RELOAD section of rstguard.conf(5) says need a restart: the .BR entries between
 * "cannot change while running" and "All the others". */
static size_t
man_restart_keys(char keys[][64], size_t max)
{
	const char *srcdir = getenv("RG_SRCDIR");
	char path[4096], line[512];
	size_t n = 0;
	int on = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/man/rstguard.conf.5", srcdir && *srcdir ? srcdir : ".");
	if ((f = fopen(path, "r")) == NULL) {
		perror(path);
		exit(99);
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strstr(line, "cannot change while running") != NULL)
			on = 1;
		else if (strstr(line, "All the others") != NULL)
			on = 0;
		else if (on && n < max && sscanf(line, ".BR %63[a-z_.]", keys[n]) == 1)
			n++;
	}
	fclose(f);
	return n;
}

static int
in_names(const char *name, char names[][64], size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(names[i], name) == 0)
			return 1;
	return 0;
}

static void
test_key_table(void)
{
	static struct key_list keys;
	const char *srcdir = getenv("RG_SRCDIR");
	char sample_path[4096], man[MAX_KEYS][64], restart[MAX_KEYS][64];
	size_t n_man, n_restart = 0;
	config_t sample;

	CFG_ForEachKey(collect_key, &keys);
	TAP_OK(keys.n >= 40, "the key table lists %zu keys", keys.n);

	snprintf(sample_path, sizeof(sample_path), "%s/conf/rstguard.conf",
	    srcdir && *srcdir ? srcdir : ".");
	config_init(&sample);
	if (config_read_file(&sample, sample_path) != CONFIG_TRUE) {
		fprintf(stderr, "%s: %s\n", sample_path, config_error_text(&sample));
		exit(99);
	}
	for (size_t i = 0; i < keys.n; i++) {
		const struct cfg_key_info *k = &keys.k[i];
		char buf[64], text[256];
		const char *other = other_value(k, buf, sizeof(buf));
		struct config c, old;
		struct config_errors errs = { 0 };
		const char *diff;
		int warned;

		TAP_OK(config_lookup(&sample, k->path) != NULL, "%s is set in conf/rstguard.conf",
		    k->path);
		TAP_OK(k->doc != NULL && *k->doc != '\0', "%s has a line of documentation", k->path);
		if (k->restart)
			snprintf(restart[n_restart++], sizeof(restart[0]), "%s", k->path);

		/* Another value is told apart from the default, and a reload applies it unless the
		 * key needs a restart. */
#ifndef HAVE_MICROHTTPD
		if (other == NULL && strcmp(k->path, "metrics.listen") == 0) {
			TAP_OK(1, "metrics.listen: no other value without libmicrohttpd (test_metrics_keys)");
			continue;
		}
#endif
		if (other == NULL) {
			TAP_OK(0, "%s: no other value known (add one to other_values)", k->path);
			continue;
		}
		key_text(text, sizeof(text), k->path, other);
		load_text(text, &c, &errs);   /* cross-field errors aside, the value is stored */
		CFG_FreeErrors(&errs);
		CFG_SetDefaults(&old);
		diff = CFG_Diff(&c, &old);
		TAP_OK(diff != NULL && strcmp(diff, k->path) == 0,
		    "%s = %s differs from the default in %s only", k->path, other,
		    diff ? diff : "nothing");
		warned = CFG_KeepRestartOnly(&c, &old);
		diff = CFG_Diff(&c, &old);
		if (k->restart)
			TAP_OK(warned == 1 && diff == NULL,
			    "%s: a reload keeps the running value (requires restart: %s)", k->path,
			    k->restart);
		else
			TAP_OK(warned == 0 && diff != NULL && strcmp(diff, k->path) == 0,
			    "%s: a reload applies it", k->path);
		CFG_Free(&c);
		CFG_Free(&old);

		/* Integers: the ends of the range are accepted, one beyond each is not. */
		if (k->type != CFG_KEY_INT)
			continue;
		check_int_value(k, k->lo, 1);
		check_int_value(k, k->hi, 1);
		if (!(k->zero_ok && k->lo - 1 == 0))
			check_int_value(k, k->lo - 1, 0);
		check_int_value(k, k->hi + 1, 0);
		TAP_OK(k->def >= k->lo && k->def <= k->hi ? 1 : k->zero_ok && k->def == 0,
		    "%s: the default %lld is in range", k->path, k->def);
	}
	config_destroy(&sample);

	/* The keys that need a restart are the ones rstguard.conf(5) lists under RELOAD. */
	n_man = man_restart_keys(man, MAX_KEYS);
	for (size_t i = 0; i < n_restart; i++)
		TAP_OK(in_names(restart[i], man, n_man),
		    "%s needs a restart and rstguard.conf(5) says so under RELOAD", restart[i]);
	for (size_t i = 0; i < n_man; i++)
		TAP_OK(in_names(man[i], restart, n_restart),
		    "%s, listed under RELOAD in rstguard.conf(5), needs a restart", man[i]);
}

/* metrics.listen takes a numeric address and port (or nothing), and nothing at all in a build
 * without libmicrohttpd; metrics.textfile an absolute file name. */
static void
test_metrics_keys(void)
{
	static const char *const bad_listen[] = { "localhost:9471", "127.0.0.1", "::1:9471", "[::1]:0" };
	static const char *const bad_file[] = { "rstguard.prom", "/var/lib/node/" };
	char text[256], *msg;
	struct config c;
	struct config_errors errs = { 0 };

	for (size_t i = 0; i < sizeof(bad_listen) / sizeof(bad_listen[0]); i++) {
		snprintf(text, sizeof(text), "metrics = { listen = \"%s\"; };\n", bad_listen[i]);
		msg = key_error(text, "metrics.listen");
		TAP_OK(msg != NULL, "metrics.listen = \"%s\" is refused: %s", bad_listen[i], msg ? msg : "accepted");
		free(msg);
	}
	msg = key_error("metrics = { listen = \"[2001:db8::1]:9471\"; };\n", "metrics.listen");
#ifdef HAVE_MICROHTTPD
	TAP_OK(msg == NULL, "metrics.listen = \"[2001:db8::1]:9471\" is accepted");
#else
	TAP_OK(msg != NULL && strstr(msg, "built without libmicrohttpd") != NULL,
	       "without libmicrohttpd metrics.listen is refused, saying why: %s", msg ? msg : "accepted");
#endif
	free(msg);
	for (size_t i = 0; i < sizeof(bad_file) / sizeof(bad_file[0]); i++) {
		snprintf(text, sizeof(text), "metrics = { textfile = \"%s\"; };\n", bad_file[i]);
		msg = key_error(text, "metrics.textfile");
		TAP_OK(msg != NULL, "metrics.textfile = \"%s\" is refused", bad_file[i]);
		free(msg);
	}
	load_text("metrics = { textfile = \"/run/x.prom\"; interval = 1; listen = \"\"; };\n", &c, &errs);
	TAP_OK(errs.count == 0 && strcmp(c.metrics_textfile, "/run/x.prom") == 0 && c.metrics_interval == 1 &&
	       c.metrics_listen[0] == '\0', "metrics.textfile, metrics.interval and an empty listen are loaded");
	CFG_FreeErrors(&errs);
	CFG_Free(&c);
}

int
main(void)
{
	test_defaults();
	test_sample_file();
	test_empty_file();
	test_every_key();
	test_range_edges();
	test_read_errors();
	test_unknown_keys();
	test_wrong_types();
	test_ranges();
	test_truncated_literals();
	test_enums();
	test_cross_fields();
	test_many_errors();
	test_include();
	test_include_hostile();
	test_print_errors();
	test_copy();
	test_validate();
	test_policy_keys();
	test_policy_errors();
	test_modes();
	test_eviction_keys();
	test_eviction_errors();
	test_override_errors();
	test_eviction_cross();
	test_eviction_validate();
	test_idle_timeout_for();
	test_watch_min_gap();
	test_key_table();
	test_metrics_keys();
	return tap_done();
}
