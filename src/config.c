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
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libconfig.h>

#include "config.h"
#include "log.h"
#include "cidr.h"
#include "metrics.h"
#include "metrics_http.h"

/* Settings whose line (and validity) the cross-field checks need. */
enum field_id {
	F_NONE = 0,
	F_QUEUE_NUM,
	F_QUEUE_COUNT,
	F_TIMEOUT_ESTABLISHED,
	F_EVENTS_RATE,
	F_EVENTS_BURST,
	F_EVENTS_ALERT_RATE,
	F_EVENTS_ALERT_BURST,
	F_IDLE_TIMEOUT,
	F_KEEPALIVE,
	F_PROBE_LEAD,
	F_OVERRIDES,
	F_USER,
	F_RULES_INSTALL,
	F_FASTPATH_ENABLE,
	F_COUNT
};

/* K_REJECT: a name that must not be given (an error saying why, rather than "unknown key");
 * K_NETS, K_PORTS: a list ( ) or array [ ] of CIDR strings or of integers, stored in a fixed
 * array of struct config with its count beside it; K_OVERRIDES: eviction.overrides, a list of
 * groups (load_overrides). */
enum key_kind { K_GROUP, K_INT, K_BOOL, K_STRING, K_REJECT, K_NETS, K_PORTS, K_OVERRIDES };

/*
 * One key of the file: the single description of it that loading, the defaults
 * (CFG_SetDefaults), comparing (CFG_Diff), a reload (CFG_KeepRestartOnly) and the key list
 * (CFG_ForEachKey; tests/docs_sync.sh reads the names from this source) all work from.
 * Every leaf key names the field of struct config it fills (offset, size). Integers and booleans
 * are stored there directly; strings go through a setter that returns NULL when the value is
 * accepted, or what was expected otherwise (and the default is applied through it too); lists
 * default to empty.
 */
struct cfg_key {
	const char *name;
	enum key_kind kind;
	enum field_id id;
	const struct cfg_key *children;            /* K_GROUP */
	long long def;                             /* K_INT, K_BOOL: the default */
	const char *def_str;                       /* K_STRING: the default */
	long long lo, hi;                          /* K_INT, K_PORTS: accepted range */
	const char *zero_note;                     /* K_INT: 0 is accepted too, and means this */
	size_t offset, size;                       /* the field; K_NETS, K_PORTS, K_OVERRIDES: the array */
	int heap;                                  /* K_STRING: the field is a string the config owns */
	const char *(*set)(struct config *, const char *);  /* K_STRING */
	const char *reject;                        /* K_REJECT: why */
	size_t count_offset;                       /* K_NETS, K_PORTS, K_OVERRIDES: its unsigned count */
	unsigned max;                              /* K_NETS, K_PORTS, K_OVERRIDES: its capacity */
	const char *restart;                       /* NULL: a reload applies it; else it keeps its
	                                            * running value and the warning names this */
	const char *doc;                           /* one line */
};

#define FIELD_SIZE(f) sizeof(((struct config *)0)->f)
#define ARRAY_LEN(f) (FIELD_SIZE(f) / FIELD_SIZE(f[0]))
#define FIELD(f) .offset = offsetof(struct config, f), .size = FIELD_SIZE(f)
#define ARRAY_FIELD(f, c) FIELD(f), .count_offset = offsetof(struct config, c), .max = ARRAY_LEN(f)
/* The first line of every entry names the key (tests/docs_sync.sh reads them from there). */
#define GROUP_KEY(n, c) { .name = (n), .kind = K_GROUP, .children = (c) }
#define INT_KEY(n, f, ...) { .name = (n), .kind = K_INT, FIELD(f), __VA_ARGS__ }
#define BOOL_KEY(n, f, ...) { .name = (n), .kind = K_BOOL, FIELD(f), __VA_ARGS__ }
#define STRING_KEY(n, s, f, ...) { .name = (n), .kind = K_STRING, .set = (s), FIELD(f), __VA_ARGS__ }
#define REJECT_KEY(n, why) { .name = (n), .kind = K_REJECT, .reject = (why) }
#define NETS_KEY(n, f, c, ...) { .name = (n), .kind = K_NETS, ARRAY_FIELD(f, c), __VA_ARGS__ }
#define PORTS_KEY(n, f, c, ...) { .name = (n), .kind = K_PORTS, ARRAY_FIELD(f, c), __VA_ARGS__ }
#define OVERRIDES_KEY(n, f, c, ...) { .name = (n), .kind = K_OVERRIDES, ARRAY_FIELD(f, c), __VA_ARGS__ }
#define END_KEYS { .name = NULL }

/* The queue is bound once, at start-up: one warning covers all its settings. */
#define QUEUE_RESTART .restart = "queue settings"

static const char *set_mode(struct config *cfg, const char *s);
static const char *set_events_path(struct config *cfg, const char *s);
static const char *set_log_target(struct config *cfg, const char *s);
static const char *set_log_level(struct config *cfg, const char *s);
static const char *set_action_injected(struct config *cfg, const char *s);
static const char *set_action_invalid_seq(struct config *cfg, const char *s);
static const char *set_probe_side(struct config *cfg, const char *s);
static const char *set_metrics_listen(struct config *cfg, const char *s);
static const char *set_metrics_textfile(struct config *cfg, const char *s);
static const char *set_evidence_dir(struct config *cfg, const char *s);
static const char *set_control_socket(struct config *cfg, const char *s);
static const char *set_control_group(struct config *cfg, const char *s);
static const char *set_user(struct config *cfg, const char *s);
static const char *set_fastpath_pin_dir(struct config *cfg, const char *s);

static const struct cfg_key queue_keys[] = {
	INT_KEY("num", queue_num, .def = 0, .lo = 0, .hi = 65535, .id = F_QUEUE_NUM, QUEUE_RESTART,
	    .doc = "first queue number"),
	INT_KEY("count", queue_count, .def = 1, .lo = 1, .hi = 64, .id = F_QUEUE_COUNT, QUEUE_RESTART,
	    .doc = "number of queues, num .. num+count-1, one packet thread each"),
	INT_KEY("maxlen", queue_maxlen, .def = 4096, .lo = 16, .hi = 1048576, QUEUE_RESTART,
	    .doc = "packets the kernel holds per queue while the daemon is busy"),
	INT_KEY("copy_range", copy_range, .def = 256, .lo = 128, .hi = 65535, QUEUE_RESTART,
	    .doc = "bytes of each packet copied to the daemon"),
	BOOL_KEY("fail_open", fail_open, .def = 1, QUEUE_RESTART,
	    .doc = "accept packets when the queue is full instead of dropping them"),
	INT_KEY("rcvbuf", rcvbuf, .def = 8388608, .lo = 65536, .hi = 1073741824,
	    .zero_note = "for the kernel default", QUEUE_RESTART,
	    .doc = "netlink socket receive buffer in bytes (SO_RCVBUFFORCE)"),
	INT_KEY("batch", batch, .def = 64, .lo = 1, .hi = 1024, QUEUE_RESTART,
	    .doc = "messages read per receive batch before giving verdicts"),
	END_KEYS
};

static const struct cfg_key timeout_keys[] = {
	INT_KEY("syn", timeout.syn, .def = 30, .lo = 1, .hi = 2592000,
	    .doc = "idle seconds before a flow whose handshake is not complete is forgotten"),
	INT_KEY("established", timeout.established, .def = 7440, .lo = 1, .hi = 2592000,
	    .id = F_TIMEOUT_ESTABLISHED,
	    .doc = "idle seconds before an established flow is forgotten"),
	INT_KEY("closing", timeout.closing, .def = 120, .lo = 1, .hi = 2592000,
	    .doc = "idle seconds before a flow with a FIN seen is forgotten"),
	INT_KEY("closed", timeout.closed, .def = 10, .lo = 1, .hi = 2592000,
	    .doc = "idle seconds before a flow after a RST or the final ACK is forgotten"),
	END_KEYS
};

static const struct cfg_key flows_keys[] = {
	INT_KEY("max", flows_max, .def = 262144, .lo = 1024, .hi = 16777216, .restart = "flows.max",
	    .doc = "most flows tracked over all queues"),
	GROUP_KEY("timeout", timeout_keys),
	END_KEYS
};

static const struct cfg_key events_keys[] = {
	STRING_KEY("path", set_events_path, events_path, .def_str = "-", .heap = 1,
	    .restart = "events.path",
	    .doc = "the event file, reopened on SIGHUP; - for standard output"),
	INT_KEY("rate", events_rate, .def = 1000, .lo = 1, .hi = 1000000, .id = F_EVENTS_RATE,
	    .doc = "sustained events per second over the whole daemon"),
	INT_KEY("burst", events_burst, .def = 5000, .lo = 1, .hi = 10000000, .id = F_EVENTS_BURST,
	    .doc = "largest burst of events (token bucket depth, at least rate)"),
	INT_KEY("alert_rate", events_alert_rate, .def = 100, .lo = 1, .hi = 1000000,
	    .id = F_EVENTS_ALERT_RATE,
	    .doc = "alerts per second, a budget of their own"),
	INT_KEY("alert_burst", events_alert_burst, .def = 1000, .lo = 1, .hi = 10000000,
	    .id = F_EVENTS_ALERT_BURST,
	    .doc = "largest burst of alerts (at least alert_rate)"),
	END_KEYS
};

static const struct cfg_key log_keys[] = {
	STRING_KEY("target", set_log_target, log_syslog, .def_str = "stderr",
	    .restart = "log.target",
	    .doc = "stderr or syslog"),
	STRING_KEY("level", set_log_level, log_level, .def_str = "info",
	    .doc = "most verbose level written: error, warning, info or debug"),
	END_KEYS
};

static const struct cfg_key eviction_keys[] = {
	INT_KEY("idle_timeout", idle_timeout, .def = 0, .lo = 10, .hi = 86400,
	    .zero_note = "when not configured", .id = F_IDLE_TIMEOUT,
	    .doc = "the middlebox idle timeout in seconds, if known"),
	BOOL_KEY("keepalive", keepalive, .def = 0, .id = F_KEEPALIVE,
	    .doc = "send keepalive probes before the idle timeout expires"),
	INT_KEY("probe_lead", probe_lead, .def = 0, .lo = 1, .hi = 3600,
	    .zero_note = "for a fifth of each timeout", .id = F_PROBE_LEAD,
	    .doc = "seconds before the timeout at which a probe is sent"),
	INT_KEY("max_idle", max_idle, .def = 7200, .lo = 60, .hi = 2592000,
	    .doc = "flows idle longer than this many seconds are no longer kept alive"),
	INT_KEY("probe_rate", probe_rate, .def = 100, .lo = 1, .hi = 100000,
	    .doc = "most probes per second over the whole daemon"),
	INT_KEY("probe_retries", probe_retries, .def = 3, .lo = 1, .hi = 10,
	    .doc = "unanswered probes before the path is reported as a black hole"),
	STRING_KEY("probe_side", set_probe_side, probe_side, .def_str = "server",
	    .doc = "side beyond the middlebox that probes go to: server, client or both"),
	INT_KEY("watch_min_gap", watch_min_gap, .def = 0, .lo = 1, .hi = 86400,
	    .zero_note = "for automatic",
	    .doc = "seconds of silence after which a flow's resumption is watched"),
	OVERRIDES_KEY("overrides", overrides, n_overrides, .id = F_OVERRIDES,
	    .doc = "idle timeouts per server network and port"),
	END_KEYS
};

static const struct cfg_key detector_keys[] = {
	INT_KEY("threshold", threshold, .def = 60, .lo = 1, .hi = 1000,
	    .doc = "score at which a RST is judged forged"),
	INT_KEY("ttl_tolerance", ttl_tolerance, .def = 2, .lo = 0, .hi = 64,
	    .doc = "TTL difference from the sender's baseline tolerated as route jitter"),
	INT_KEY("min_rtt_ms", min_rtt_ms, .def = 2, .lo = 0, .hi = 10000,
	    .doc = "least RTT to the sender at which the timing signal is used"),
	INT_KEY("hold_threshold", hold_threshold, .def = 0, .lo = 0, .hi = 1000,
	    .doc = "enforce: hold RSTs scoring at least this until their sender's traffic decides"),
	INT_KEY("hold_min_ms", hold_min_ms, .def = 60, .lo = 1, .hi = 1000,
	    .doc = "shortest wait for a judgement, milliseconds"),
	INT_KEY("hold_max_ms", hold_max_ms, .def = 200, .lo = 1, .hi = 1000,
	    .doc = "longest wait for a judgement, milliseconds"),
	INT_KEY("max_pending", max_pending, .def = 256, .lo = 1, .hi = 65536,
	    .restart = "detector.max_pending",
	    .doc = "RSTs awaiting judgement at once, per queue"),
	INT_KEY("revise_window", revise_window, .def = 10, .lo = 0, .hi = 3600,
	    .doc = "seconds a RST judged genuine may still be revised by its sender's traffic"),
	BOOL_KEY("confirm", confirm, .def = 1,
	    .doc = "enforce: probe the claimed sender of a held RST"),
	INT_KEY("confirm_rate", confirm_rate, .def = 100, .lo = 1, .hi = 100000,
	    .doc = "confirmation probes per second over the whole daemon"),
	END_KEYS
};

/* Only the causes that can be forged or are harmless to drop take an action; the names are those
 * of RST_CauseName (tests/unit/test_policy.c checks that every cause is covered). */
#define GENUINE "genuine RSTs are never dropped"
static const struct cfg_key actions_keys[] = {
	STRING_KEY("injected", set_action_injected, policy.drop_injected, .def_str = "drop",
	    .doc = "action for RSTs judged forged: drop or accept"),
	STRING_KEY("invalid_seq", set_action_invalid_seq, policy.drop_invalid_seq,
	    .def_str = "accept",
	    .doc = "action for stale or out-of-window RSTs: drop or accept"),
	REJECT_KEY("refused", GENUINE),
	REJECT_KEY("connect_abort", GENUINE),
	REJECT_KEY("abort", GENUINE),
	REJECT_KEY("unread_data", GENUINE),
	REJECT_KEY("closed_socket", GENUINE),
	REJECT_KEY("keepalive_timeout", GENUINE),
	REJECT_KEY("time_wait", GENUINE),
	REJECT_KEY("idle_eviction", "eviction RSTs are never dropped (the client would hang)"),
	REJECT_KEY("no_flow", "RSTs of untracked flows are never dropped"),
	END_KEYS
};
#undef GENUINE

static const struct cfg_key policy_keys[] = {
	GROUP_KEY("actions", actions_keys),
	NETS_KEY("protect", policy.protect, policy.n_protect,
	    .doc = "drop only RSTs whose destination is inside these networks; empty: every one"),
	NETS_KEY("exempt", policy.exempt, policy.n_exempt,
	    .doc = "never drop a RST from or to these networks"),
	PORTS_KEY("exempt_ports", policy.exempt_ports, policy.n_exempt_ports, .lo = 1, .hi = 65535,
	    .doc = "never drop a RST from or to these TCP ports"),
	END_KEYS
};

static const struct cfg_key metrics_keys[] = {
	STRING_KEY("listen", set_metrics_listen, metrics_listen, .def_str = "", .heap = 1,
	    .restart = "metrics.listen",
	    .doc = "address:port of the HTTP /metrics listener, [v6]:port for IPv6; \"\" for none"),
	STRING_KEY("textfile", set_metrics_textfile, metrics_textfile, .def_str = "", .heap = 1,
	    .doc = "absolute path of a file for node_exporter's textfile collector; \"\" for none"),
	INT_KEY("interval", metrics_interval, .def = 15, .lo = 1, .hi = 3600,
	    .doc = "seconds between writes of metrics.textfile"),
	END_KEYS
};

/* The ring is allocated and the directory opened at start-up. */
#define EVIDENCE_RESTART .restart = "evidence settings"

static const struct cfg_key evidence_keys[] = {
	STRING_KEY("dir", set_evidence_dir, evidence_dir, .def_str = "", .heap = 1, EVIDENCE_RESTART,
	    .doc = "directory for a pcap of each forged RST's flow (created 0750); empty: none"),
	INT_KEY("max_bytes", evidence_max_bytes, .def = 104857600, .lo = 65536, .hi = 2147483647,
	    EVIDENCE_RESTART,
	    .doc = "total size of the captures in dir; the oldest are removed first"),
	INT_KEY("packets", evidence_packets, .def = 4096, .lo = 16, .hi = 1048576, EVIDENCE_RESTART,
	    .doc = "recent packets kept per queue to build captures from"),
	INT_KEY("snaplen", evidence_snaplen, .def = 128, .lo = 64, .hi = 65535, EVIDENCE_RESTART,
	    .doc = "bytes kept of each packet: headers and the first bytes of payload"),
	INT_KEY("rate", evidence_rate, .def = 10, .lo = 1, .hi = 10000, EVIDENCE_RESTART,
	    .doc = "capture files written per second at most; the rest are counted as skipped"),
	BOOL_KEY("evictions", evidence_evictions, .def = 0, EVIDENCE_RESTART,
	    .doc = "also write a capture for each detected eviction"),
	END_KEYS
};

static const struct cfg_key nat_keys[] = {
	BOOL_KEY("lookup", nat_lookup, .def = 1, .restart = "nat.lookup",
	    .doc = "join the halves of translated connections through conntrack lookups"),
	INT_KEY("lookup_rate", nat_lookup_rate, .def = 20000, .lo = 1, .hi = 1000000,
	    .doc = "conntrack lookups per second over the whole daemon"),
	INT_KEY("zone", nat_zone, .def = 0, .lo = 0, .hi = 65535,
	    .doc = "conntrack zone the translated connections live in"),
	INT_KEY("max_aliases", nat_max_aliases, .def = 65536, .lo = 16, .hi = 16777216,
	    .restart = "nat.max_aliases",
	    .doc = "translated connections joined at once, per queue"),
	INT_KEY("timeout_ms", nat_timeout_ms, .def = 10, .lo = 0, .hi = 1000,
	    .doc = "longest wait for conntrack's answer to a lookup, milliseconds"),
	END_KEYS
};

static const struct cfg_key control_keys[] = {
	STRING_KEY("socket", set_control_socket, control_socket, .def_str = "/run/rstguard/rstguard.sock",
	    .heap = 1, .restart = "control.socket",
	    .doc = "UNIX socket for rstguardctl (mode 0660); empty: no socket"),
	STRING_KEY("group", set_control_group, control_group, .def_str = "", .heap = 1,
	    .restart = "control.group",
	    .doc = "group owning the socket, whose members may use it; empty: the daemon's"),
	END_KEYS
};

static const struct cfg_key rules_keys[] = {
	BOOL_KEY("install", rules_install, .def = 0, .restart = "rules.install", .id = F_RULES_INSTALL,
	    .doc = "add the queue rules in chain RSTGUARD of the raw table at start, remove them at exit"),
	END_KEYS
};

static const struct cfg_key fastpath_keys[] = {
	BOOL_KEY("enable", fastpath_enable, .def = 0, .restart = "fastpath.enable", .id = F_FASTPATH_ENABLE,
	    .doc = "queue only the packets the daemon must see; the kernel keeps the flows' baselines"),
	STRING_KEY("pin_dir", set_fastpath_pin_dir, fastpath_pin_dir, .def_str = "/sys/fs/bpf/rstguard",
	    .heap = 1, .restart = "fastpath.pin_dir",
	    .doc = "directory (on a bpffs, mounted if missing) where the selector and its maps are pinned"),
	END_KEYS
};

static const struct cfg_key top_keys[] = {
	STRING_KEY("mode", set_mode, mode, .def_str = "detect",
	    .doc = "detect: only report suspicious RSTs; enforce: also drop the forged ones"),
	GROUP_KEY("queue", queue_keys),
	GROUP_KEY("flows", flows_keys),
	GROUP_KEY("events", events_keys),
	GROUP_KEY("log", log_keys),
	GROUP_KEY("eviction", eviction_keys),
	GROUP_KEY("detector", detector_keys),
	GROUP_KEY("policy", policy_keys),
	GROUP_KEY("metrics", metrics_keys),
	GROUP_KEY("evidence", evidence_keys),
	GROUP_KEY("nat", nat_keys),
	GROUP_KEY("control", control_keys),
	STRING_KEY("user", set_user, user, .def_str = "", .heap = 1, .restart = "user", .id = F_USER,
	    .doc = "started as root: run as this user with only CAP_NET_ADMIN and CAP_NET_RAW"),
	GROUP_KEY("rules", rules_keys),
	GROUP_KEY("fastpath", fastpath_keys),
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
	int ov_line[CFG_EVICTION_MAX_OVERRIDES];         /* each stored override's idle_timeout */
	const char *ov_file[CFG_EVICTION_MAX_OVERRIDES];
	char *text_file;           /* source text of the last file read back (see check_int) */
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
set_metrics_listen(struct config *cfg, const char *s)
{
	struct sockaddr_storage ss;
	socklen_t sl;

	if (*s != '\0' && !MHTTP_AVAILABLE)
		return "\"\": this rstguard was built without libmicrohttpd, so it has no HTTP listener; "
		       "use metrics.textfile or rstguardctl metrics";
	if (*s != '\0' && MET_ParseListen(s, &ss, &sl) < 0)
		return "a numeric address and port, 127.0.0.1:9471 or [::1]:9471, or \"\" for none";
	replace_string(&cfg->metrics_listen, s);
	return NULL;
}

static const char *
set_metrics_textfile(struct config *cfg, const char *s)
{
	size_t n = strlen(s);

	if (*s != '\0' && (s[0] != '/' || s[n - 1] == '/' || n > 1024))
		return "an absolute file name, or \"\" for none";
	replace_string(&cfg->metrics_textfile, s);
	return NULL;
}

static const char *
set_control_socket(struct config *cfg, const char *s)
{
	if (*s != '\0' && (*s != '/' || strlen(s) >= 108))
		return "an absolute path shorter than 108 bytes, or \"\" for none";
	replace_string(&cfg->control_socket, s);
	return NULL;
}

/* A user or group name as useradd accepts it: no path or shell characters. */
static int
plain_name(const char *s)
{
	size_t n = strlen(s);

	if (n > 32 || s[0] == '-')
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '-' || s[i] == '.'))
			return 0;
	return 1;
}

static const char *
set_control_group(struct config *cfg, const char *s)
{
	if (!plain_name(s))
		return "a group name";
	replace_string(&cfg->control_group, s);
	return NULL;
}

static const char *
set_evidence_dir(struct config *cfg, const char *s)
{
	if (strlen(s) > EVIDENCE_DIR_MAX)
		return "a directory name of at most 1024 bytes";
	replace_string(&cfg->evidence_dir, s);
	return NULL;
}

static const char *
set_user(struct config *cfg, const char *s)
{
	if (!plain_name(s))
		return "a user name";
	replace_string(&cfg->user, s);
	return NULL;
}

static const char *
set_fastpath_pin_dir(struct config *cfg, const char *s)
{
	if (s[0] != '/' || strlen(s) > 1000)
		return "an absolute directory path";
	replace_string(&cfg->fastpath_pin_dir, s);
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

static const char *
set_action(int *drop, const char *s)
{
	if (strcmp(s, "drop") == 0)
		*drop = 1;
	else if (strcmp(s, "accept") == 0)
		*drop = 0;
	else
		return "drop or accept";
	return NULL;
}

static const char *
set_action_injected(struct config *cfg, const char *s)
{
	return set_action(&cfg->policy.drop_injected, s);
}

static const char *
set_action_invalid_seq(struct config *cfg, const char *s)
{
	return set_action(&cfg->policy.drop_invalid_seq, s);
}

static const char *
set_probe_side(struct config *cfg, const char *s)
{
	if (strcmp(s, "server") == 0)
		cfg->probe_side = PROBE_SERVER;
	else if (strcmp(s, "client") == 0)
		cfg->probe_side = PROBE_CLIENT;
	else if (strcmp(s, "both") == 0)
		cfg->probe_side = PROBE_BOTH;
	else
		return "server, client or both";
	return NULL;
}

/* Every leaf key of keys (and of its subgroups), depth first in table order: fn(key, path, arg)
 * with path its dotted name, built in buf (size bytes, holding the prefix up to len). */
typedef void (*key_fn)(const struct cfg_key *k, const char *path, void *arg);

static void
walk_keys(const struct cfg_key *keys, char *buf, size_t size, size_t len, key_fn fn, void *arg)
{
	for (const struct cfg_key *k = keys; k->name != NULL; k++) {
		int n = snprintf(buf + len, size - len, "%s", k->name);

		if (n < 0 || (size_t)n >= size - len)
			fatalx("configuration key path too long: %s", k->name);
		if (k->kind == K_GROUP) {
			if ((size_t)n + 1 >= size - len)
				fatalx("configuration key path too long: %s", k->name);
			buf[len + (size_t)n] = '.';
			buf[len + (size_t)n + 1] = '\0';
			walk_keys(k->children, buf, size, len + (size_t)n + 1, fn, arg);
		} else if (k->kind != K_REJECT) {
			fn(k, buf, arg);
		}
	}
}

static void
for_each_key(key_fn fn, void *arg)
{
	char path[128];

	walk_keys(top_keys, path, sizeof(path), 0, fn, arg);
}

static void *
field(struct config *cfg, const struct cfg_key *k)
{
	return (char *)cfg + k->offset;
}

static const void *
cfield(const struct config *cfg, const struct cfg_key *k)
{
	return (const char *)cfg + k->offset;
}

static void store_uint(struct config *cfg, const struct cfg_key *k, long long v);

static void
set_default(const struct cfg_key *k, const char *path, void *arg)
{
	struct config *cfg = arg;
	int b;

	switch (k->kind) {
	case K_INT:
		store_uint(cfg, k, k->def);
		break;
	case K_BOOL:
		b = k->def ? 1 : 0;
		memcpy(field(cfg, k), &b, sizeof(b));
		break;
	case K_STRING:
		if (k->set(cfg, k->def_str) != NULL)
			fatalx("the default of %s is not valid", path);
		break;
	default:
		break;     /* lists: empty (the memset) */
	}
}

void
CFG_SetDefaults(struct config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	for_each_key(set_default, cfg);
	cfg->source = xstrdup("");
}

/* Does key k hold the same value in a and b? */
static int
key_equal(const struct cfg_key *k, const struct config *a, const struct config *b)
{
	unsigned na, nb;

	switch (k->kind) {
	case K_STRING:
		if (k->heap) {
			const char *sa, *sb;

			memcpy(&sa, cfield(a, k), sizeof(sa));
			memcpy(&sb, cfield(b, k), sizeof(sb));
			return sa == sb || (sa != NULL && sb != NULL && strcmp(sa, sb) == 0);
		}
		return memcmp(cfield(a, k), cfield(b, k), k->size) == 0;
	case K_INT:
	case K_BOOL:
		return memcmp(cfield(a, k), cfield(b, k), k->size) == 0;
	case K_NETS:
	case K_PORTS:
	case K_OVERRIDES:
		memcpy(&na, (const char *)a + k->count_offset, sizeof(na));
		memcpy(&nb, (const char *)b + k->count_offset, sizeof(nb));
		return na == nb && na <= k->max &&
		    memcmp(cfield(a, k), cfield(b, k), na * (k->size / k->max)) == 0;
	case K_GROUP:
	case K_REJECT:
		break;
	}
	return 1;
}

/* Set key k of dst to its value in src. */
static void
key_copy(const struct cfg_key *k, struct config *dst, const struct config *src)
{
	if (k->kind == K_STRING && k->heap) {
		char *old, *s;

		memcpy(&old, field(dst, k), sizeof(old));
		memcpy(&s, cfield(src, k), sizeof(s));
		s = s != NULL ? xstrdup(s) : NULL;
		free(old);
		memcpy(field(dst, k), &s, sizeof(s));
		return;
	}
	memcpy(field(dst, k), cfield(src, k), k->size);
	if (k->kind == K_NETS || k->kind == K_PORTS || k->kind == K_OVERRIDES)
		memcpy((char *)dst + k->count_offset, (const char *)src + k->count_offset,
		    sizeof(unsigned));
}

struct diff_walk {
	const struct config *a, *b;
	char first[128];
};

static void
diff_key(const struct cfg_key *k, const char *path, void *arg)
{
	struct diff_walk *d = arg;

	if (d->first[0] == '\0' && !key_equal(k, d->a, d->b))
		snprintf(d->first, sizeof(d->first), "%s", path);
}

const char *
CFG_Diff(const struct config *a, const struct config *b)
{
	static _Thread_local struct diff_walk d;

	d.a = a;
	d.b = b;
	d.first[0] = '\0';
	for_each_key(diff_key, &d);
	return d.first[0] != '\0' ? d.first : NULL;
}

#define RESTART_MAX 16     /* distinct names of settings that need a restart */

struct restart_walk {
	struct config *nc;
	const struct config *old;
	const char *changed[RESTART_MAX];
	int n;
};

static void
restart_key(const struct cfg_key *k, const char *path, void *arg)
{
	struct restart_walk *r = arg;
	int i;

	if (k->restart == NULL || key_equal(k, r->nc, r->old))
		return;
	for (i = 0; i < r->n && strcmp(r->changed[i], k->restart) != 0; i++)
		;
	if (i == r->n && r->n < RESTART_MAX)
		r->changed[r->n++] = k->restart;
	key_copy(k, r->nc, r->old);
}

int
CFG_KeepRestartOnly(struct config *nc, const struct config *old)
{
	struct restart_walk r = { .nc = nc, .old = old };

	for_each_key(restart_key, &r);
	for (int i = 0; i < r.n; i++)
		log_warnx("reload: %s changed: requires restart", r.changed[i]);
	return r.n;
}

struct info_walk {
	void (*fn)(const struct cfg_key_info *key, void *arg);
	void *arg;
};

static void
info_key(const struct cfg_key *k, const char *path, void *arg)
{
	struct info_walk *w = arg;
	struct cfg_key_info i = {
		.path = path, .def = k->def, .def_str = k->def_str, .lo = k->lo, .hi = k->hi,
		.zero_ok = k->zero_note != NULL, .restart = k->restart, .doc = k->doc,
	};

	i.type = k->kind == K_INT ? CFG_KEY_INT : k->kind == K_BOOL ? CFG_KEY_BOOL :
	    k->kind == K_STRING ? CFG_KEY_STRING : CFG_KEY_LIST;
	w->fn(&i, w->arg);
}

void
CFG_ForEachKey(void (*fn)(const struct cfg_key_info *key, void *arg), void *arg)
{
	struct info_walk w = { .fn = fn, .arg = arg };

	for_each_key(info_key, &w);
}

void
CFG_Copy(struct config *dst, const struct config *src)
{
	*dst = *src;   /* the policy's and eviction.overrides' fixed arrays are copied by value */
	dst->events_path = src->events_path ? xstrdup(src->events_path) : NULL;
	dst->source = src->source ? xstrdup(src->source) : NULL;
	dst->metrics_listen = src->metrics_listen ? xstrdup(src->metrics_listen) : NULL;
	dst->metrics_textfile = src->metrics_textfile ? xstrdup(src->metrics_textfile) : NULL;
	dst->evidence_dir = src->evidence_dir ? xstrdup(src->evidence_dir) : NULL;
	dst->control_socket = src->control_socket ? xstrdup(src->control_socket) : NULL;
	dst->control_group = src->control_group ? xstrdup(src->control_group) : NULL;
	dst->user = src->user ? xstrdup(src->user) : NULL;
	dst->fastpath_pin_dir = src->fastpath_pin_dir ? xstrdup(src->fastpath_pin_dir) : NULL;
}

void
CFG_Free(struct config *cfg)
{
	free(cfg->events_path);
	cfg->events_path = NULL;
	free(cfg->fastpath_pin_dir);
	cfg->fastpath_pin_dir = NULL;
	free(cfg->source);
	cfg->source = NULL;
	free(cfg->metrics_listen);
	cfg->metrics_listen = NULL;
	free(cfg->metrics_textfile);
	cfg->metrics_textfile = NULL;
	free(cfg->evidence_dir);
	cfg->evidence_dir = NULL;
	free(cfg->control_socket);
	cfg->control_socket = NULL;
	free(cfg->control_group);
	cfg->control_group = NULL;
	free(cfg->user);
	cfg->user = NULL;
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

uint32_t
CFG_IdleTimeoutFor(const struct config *cfg, int family, const uint8_t *addr, uint16_t port)
{
	const struct config_timeout_override *best = NULL;

	for (unsigned i = 0; i < cfg->n_overrides && i < CFG_EVICTION_MAX_OVERRIDES; i++) {
		const struct config_timeout_override *o = &cfg->overrides[i];

		if ((o->port != 0 && o->port != port) || !CIDR_Match(&o->network, family, addr))
			continue;
		/* Longer prefix first; at the same prefix, a port beats none; else the first. */
		if (best == NULL || o->network.prefix > best->network.prefix ||
		    (o->network.prefix == best->network.prefix && o->port != 0 && best->port == 0))
			best = o;
	}
	return best != NULL ? best->idle_timeout : cfg->idle_timeout;
}

uint32_t
CFG_WatchMinGap(const struct config *cfg, uint32_t timeout_s)
{
	if (cfg->watch_min_gap != 0)
		return cfg->watch_min_gap;
	if (timeout_s == 0)
		return 30;
	return timeout_s / 4 > 0 ? timeout_s / 4 : 1;
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

static void cross_error_ov(const struct load_state *ld, enum field_id prefer, unsigned i,
	const char *file, struct config_errors *errs, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));

/* cross_error about eviction.overrides[i]: at setting prefer if the file has it, else at the
 * override's idle_timeout. */
static void
cross_error_ov(const struct load_state *ld, enum field_id prefer, unsigned i, const char *file,
	struct config_errors *errs, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (ld == NULL)
		add_verror(errs, file, 0, fmt, ap);
	else if (ld->line[prefer])
		add_verror(errs, ld->line_file[prefer] ? ld->line_file[prefer] : file,
		    ld->line[prefer], fmt, ap);
	else
		add_verror(errs, ld->ov_file[i] ? ld->ov_file[i] : file, ld->ov_line[i], fmt, ap);
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
	if (cfg->events_alert_burst < cfg->events_alert_rate &&
	    !cross_skip(ld, F_EVENTS_ALERT_RATE, F_EVENTS_ALERT_BURST))
		cross_error(ld, cross_at(ld, F_EVENTS_ALERT_BURST, F_EVENTS_ALERT_RATE), file, errs,
		    "events.alert_burst (%u) must be at least events.alert_rate (%u)",
		    cfg->events_alert_burst, cfg->events_alert_rate);

	if (cfg->keepalive && cfg->idle_timeout == 0 && cfg->n_overrides == 0 &&
	    !cross_skip(ld, F_KEEPALIVE, F_IDLE_TIMEOUT) && !cross_skip(ld, F_OVERRIDES, F_OVERRIDES))
		cross_error(ld, cross_at(ld, F_KEEPALIVE, F_IDLE_TIMEOUT), file, errs,
		    "eviction.keepalive needs eviction.idle_timeout or eviction.overrides");

	if (cfg->idle_timeout != 0 && cfg->idle_timeout >= cfg->timeout.established &&
	    !cross_skip(ld, F_IDLE_TIMEOUT, F_TIMEOUT_ESTABLISHED))
		cross_error(ld, cross_at(ld, F_TIMEOUT_ESTABLISHED, F_IDLE_TIMEOUT), file, errs,
		    "flows.timeout.established must be longer than eviction.idle_timeout");

	if (cfg->idle_timeout != 0 && cfg->probe_lead != 0 && cfg->probe_lead >= cfg->idle_timeout &&
	    !cross_skip(ld, F_PROBE_LEAD, F_IDLE_TIMEOUT))
		cross_error(ld, cross_at(ld, F_PROBE_LEAD, F_IDLE_TIMEOUT), file, errs,
		    "eviction.probe_lead (%u) must be shorter than eviction.idle_timeout (%u)",
		    cfg->probe_lead, cfg->idle_timeout);

	/* Removing the rules and unpinning the fast path at exit run as root (iptables binaries,
	 * the bpffs directory): a daemon that dropped to another user could not undo them. */
	if (cfg->user && cfg->user[0] && (cfg->rules_install || cfg->fastpath_enable) &&
	    !cross_skip(ld, F_USER, F_RULES_INSTALL) && !cross_skip(ld, F_USER, F_FASTPATH_ENABLE))
		cross_error(ld, cross_at(ld, F_USER, cfg->rules_install ? F_RULES_INSTALL : F_FASTPATH_ENABLE), file,
		    errs, "user cannot be combined with %s: undoing it at exit needs root (run those under "
		    "systemd's User= with the capabilities instead, see docs/fastpath.md)",
		    cfg->rules_install ? "rules.install (--install-rules)" : "fastpath.enable (--fast-path)");

	/* (A rejected overrides list is not stored: n_overrides is then 0.) */
	for (unsigned i = 0; i < cfg->n_overrides && i < CFG_EVICTION_MAX_OVERRIDES; i++) {
		uint32_t t = cfg->overrides[i].idle_timeout;

		if (t >= cfg->timeout.established && !cross_skip(ld, F_TIMEOUT_ESTABLISHED, F_OVERRIDES))
			cross_error_ov(ld, F_TIMEOUT_ESTABLISHED, i, file, errs,
			    "flows.timeout.established (%u) must be longer than "
			    "eviction.overrides[%u].idle_timeout (%u)", cfg->timeout.established, i, t);
		if (cfg->probe_lead != 0 && cfg->probe_lead >= t && !cross_skip(ld, F_PROBE_LEAD, F_OVERRIDES))
			cross_error_ov(ld, F_PROBE_LEAD, i, file, errs,
			    "eviction.probe_lead (%u) must be shorter than "
			    "eviction.overrides[%u].idle_timeout (%u)", cfg->probe_lead, i, t);
	}
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
static char *read_source(const char *path, size_t *lenp, const char **why);

static int
load_text(struct load_state *ld, const char *file)
{
	const char *why;

	if (ld->text_file != NULL && strcmp(ld->text_file, file) == 0)
		return ld->text ? 0 : -1;
	free(ld->text_file);
	free(ld->text);
	ld->text_file = xstrdup(file);
	ld->text_len = 0;
	ld->text = read_source(file, &ld->text_len, &why);
	return ld->text ? 0 : -1;
}

/* Skip white space and comments: #, // and C-style blocks, possibly over several lines. */
static const char *
skip_blank(const char *p)
{
	for (;;) {
		while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n' || *p == '\f')
			p++;
		if (*p == '#' || (p[0] == '/' && p[1] == '/')) {
			p += strcspn(p, "\n");
		} else if (p[0] == '/' && p[1] == '*') {
			const char *end = strstr(p + 2, "*/");

			if (end == NULL)
				return p + strlen(p);
			p = end + 2;
		} else {
			return p;
		}
	}
}

/*
 * Where the value of setting s (named name) starts in its source text: after "name =" or "name:"
 * on the setting's line, and any white space. NULL when it cannot be found.
 */
static const char *
value_text(struct load_state *ld, const config_setting_t *s, const char *name)
{
	const char *file = config_setting_source_file(s);
	int line = (int)config_setting_source_line(s);
	size_t nlen = strlen(name);
	const char *p, *eol;

	if (load_text(ld, file ? file : ld->file) < 0 || line < 1)
		return NULL;
	p = ld->text;
	for (int l = 1; l < line; l++) {
		if ((p = strchr(p, '\n')) == NULL)
			return NULL;
		p++;
	}
	if ((eol = strchr(p, '\n')) == NULL)
		eol = ld->text + ld->text_len;

	for (; p + nlen <= eol; p++) {
		const char *q = p + nlen;

		/* Do not look inside strings and comments: the name may appear there. */
		if (*p == '"') {
			for (p++; p < eol && *p != '"'; p++)
				if (*p == '\\' && p[1] != '\0')
					p++;
			continue;
		}
		if (*p == '#' || (p[0] == '/' && p[1] == '/'))
			return NULL;
		if (p[0] == '/' && p[1] == '*') {
			const char *end = strstr(p + 2, "*/");

			if (end == NULL || end >= eol)
				return NULL;
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
		return q;
	}
	return NULL;
}

/*
 * Read the integer literal at q (decimal or 0x hexadecimal, optional sign, optional L suffix).
 * Returns its length, 0 when there is none; *v is its value and *over is set when it does not
 * fit in a long long.
 */
static int
int_literal(const char *q, long long *v, int *over)
{
	const char *start = q;
	unsigned long long mag;
	int neg = 0, base = 10, digits = 0;

	*over = 0;
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
			*over = 1;
		else
			mag = mag * (unsigned)base + (unsigned)d;
	}
	if (digits == 0)
		return 0;
	while (*q == 'L')
		q++;
	if (mag > (unsigned long long)LLONG_MAX)
		*over = 1;
	*v = *over ? 0 : neg ? -(long long)mag : (long long)mag;
	return (int)(q - start);
}

/*
 * An integer setting s (path names it in messages) in lo..hi, or 0 when zero_note is set (0 then
 * means zero_note). lit is where its literal starts in the source text, NULL when unknown.
 *
 * libconfig 1.5 converts a decimal literal without the L suffix with atoi() and a hexadecimal one
 * with a cast to int, so "rcvbuf = 4294967296;" (4 GiB) arrives as 0 and would be accepted as
 * "kernel default", and 4295032832 as 65536. The literal read back from the source text is
 * compared with the value libconfig gave us; a literal that does not denote it is out of range.
 * (Best effort: what cannot be read is not rejected.)
 *
 * Returns 0 with *out set, -1 after reporting an error.
 */
static int
check_int(struct load_state *ld, const config_setting_t *s, const char *path, long long lo,
	long long hi, const char *zero_note, const char *lit, long long *out)
{
	int type = config_setting_type(s), over, litlen = 0;
	long long v, lv;

	if (type != CONFIG_TYPE_INT && type != CONFIG_TYPE_INT64) {
		setting_error(ld, s, "%s: expected an integer", path);
		return -1;
	}
	v = config_setting_get_int64(s);
	if (lit != NULL && (litlen = int_literal(lit, &lv, &over)) > 0 && (over || lv != v)) {
		if (zero_note != NULL)
			setting_error(ld, s, "%s: %.*s is out of range %lld..%lld (or 0 %s)",
			    path, litlen, lit, lo, hi, zero_note);
		else
			setting_error(ld, s, "%s: %.*s is out of range %lld..%lld",
			    path, litlen, lit, lo, hi);
		return -1;
	}
	if (v == 0 && zero_note != NULL) {
		*out = 0;
		return 0;
	}
	if (v < lo || v > hi) {
		if (zero_note != NULL)
			setting_error(ld, s, "%s: %lld is out of range %lld..%lld (or 0 %s)",
			    path, v, lo, hi, zero_note);
		else
			setting_error(ld, s, "%s: %lld is out of range %lld..%lld", path, v, lo, hi);
		return -1;
	}
	*out = v;
	return 0;
}

/*
 * Skip one value of a list: a scalar, strings (adjacent ones are concatenated), or a nested group
 * or list. Returns the ',' or closing bracket after it, NULL at the end of the text.
 */
static const char *
skip_value(const char *q)
{
	int depth = 0;

	for (;;) {
		switch (*q) {
		case '\0':
			return NULL;
		case '"':
			for (q++; *q != '\0' && *q != '"'; q++)
				if (*q == '\\' && q[1] != '\0')
					q++;
			if (*q == '\0')
				return NULL;
			q++;
			continue;
		case '#':
		case '/':
			if (*q == '#' || q[1] == '/' || q[1] == '*') {
				q = skip_blank(q);
				continue;
			}
			break;
		case '[':
		case '(':
		case '{':
			depth++;
			break;
		case ']':
		case ')':
		case '}':
			if (depth == 0)
				return q;
			depth--;
			break;
		case ',':
			if (depth == 0)
				return q;
			break;
		}
		q++;
	}
}

/*
 * Where element idx of list s (named name) starts in the source text: "name = [ a, b, ... ]" (or
 * ( )), comments skipped. NULL when it cannot be found. (libconfig gives an element the line of
 * the token after it, so an error is placed with this instead.)
 */
static const char *
elem_text(struct load_state *ld, const config_setting_t *s, const char *name, int idx)
{
	const char *q = value_text(ld, s, name);

	if (q == NULL || (*q != '[' && *q != '('))
		return NULL;
	q = skip_blank(q + 1);
	for (int i = 0; i < idx; i++) {
		if ((q = skip_value(q)) == NULL || *q != ',')
			return NULL;
		q = skip_blank(q + 1);
	}
	return *q != '\0' ? q : NULL;
}

static void elem_error(struct load_state *ld, const config_setting_t *list,
	const config_setting_t *e, const char *name, int idx, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));

/* An error at element idx of list (named name): the element's own line when its text is found. */
static void
elem_error(struct load_state *ld, const config_setting_t *list, const config_setting_t *e,
	const char *name, int idx, const char *fmt, ...)
{
	const char *file = config_setting_source_file(e);
	const char *q = elem_text(ld, list, name, idx);
	int line = (int)config_setting_source_line(e);
	va_list ap;

	if (q != NULL) {
		line = 1;
		for (const char *p = ld->text; p < q; p++)
			line += *p == '\n';
	}
	va_start(ap, fmt);
	add_verror(ld->errs, file ? file : ld->file, line, fmt, ap);
	va_end(ap);
}

/* Does the literal of element idx of list s (named name) denote v? (See check_int.) Returns 1
 * when it does not, with *lit and *litlen set to it; 0 when it does or cannot be found. */
static int
elem_literal_mismatch(struct load_state *ld, const config_setting_t *s, const char *name,
	int idx, long long v, const char **lit, int *litlen)
{
	const char *q = elem_text(ld, s, name, idx);
	long long lv;
	int over, len;

	if (q == NULL || (len = int_literal(q, &lv, &over)) == 0)
		return 0;
	*lit = q;
	*litlen = len;
	return over || lv != v;
}

#define NET_MSG_SIZE 512

/* What is wrong with network string str (rc from CIDR_Parse), into buf. */
static const char *
cidr_message(int rc, const char *str, char *buf, size_t size)
{
	if (rc == CIDR_PREFIX)
		snprintf(buf, size, "%.400s has a prefix longer than %d", str,
		    strchr(str, ':') ? 128 : 32);
	else if (rc == CIDR_HOST_BITS)
		snprintf(buf, size, "%.400s has host bits set", str);
	else
		snprintf(buf, size, "invalid value \"%.400s\" (expected an IPv4 or IPv6 address, "
		    "optionally with /prefix)", str);
	return buf;
}

/*
 * policy.protect, policy.exempt (K_NETS: CIDR strings) and policy.exempt_ports (K_PORTS: integers
 * in lo..hi): a list ( ) or an array [ ]. Every bad element is reported at its own line; a list
 * with any keeps its default. Returns 0 when stored, -1 after reporting errors.
 */
static int
load_list(struct load_state *ld, const struct cfg_key *k, const config_setting_t *s,
	const char *path)
{
	union {
		struct cidr net[CFG_POLICY_MAX_NETS];
		uint16_t port[CFG_POLICY_MAX_PORTS];
	} tmp;
	size_t elem = k->kind == K_NETS ? sizeof(tmp.net[0]) : sizeof(tmp.port[0]);
	unsigned cap = k->kind == K_NETS ? CFG_POLICY_MAX_NETS : CFG_POLICY_MAX_PORTS;
	unsigned n = 0, max = k->max < cap ? k->max : cap;
	int type = config_setting_type(s), len, bad = 0;

	if (type != CONFIG_TYPE_LIST && type != CONFIG_TYPE_ARRAY) {
		setting_error(ld, s, "%s: expected a list", path);
		return -1;
	}
	len = config_setting_length(s);
	for (int i = 0; i < len; i++) {
		const config_setting_t *e = config_setting_get_elem(s, (unsigned int)i);
		int et, rc, litlen;
		const char *str, *lit;
		struct cidr c;
		long long v;

#define ELEM_ERROR(...) elem_error(ld, s, e, k->name, i, __VA_ARGS__)
		if (e == NULL)
			continue;
		if ((unsigned)i == max) {
			/* The rest is not looked at: the list must be shortened anyway. */
			ELEM_ERROR("%s: more than %u %s", path, max,
			    k->kind == K_NETS ? "networks" : "ports");
			bad = 1;
			break;
		}
		et = config_setting_type(e);
		if (k->kind == K_NETS) {
			if (et != CONFIG_TYPE_STRING) {
				ELEM_ERROR("%s: element %d: expected a string", path, i + 1);
				bad = 1;
				continue;
			}
			str = config_setting_get_string(e);
			rc = CIDR_Parse(str, &c);
			if (rc != CIDR_OK) {
				char msg[NET_MSG_SIZE];

				ELEM_ERROR("%s: %s", path, cidr_message(rc, str, msg, sizeof(msg)));
				bad = 1;
			} else {
				tmp.net[n++] = c;
			}
			continue;
		}
		if (et != CONFIG_TYPE_INT && et != CONFIG_TYPE_INT64) {
			ELEM_ERROR("%s: element %d: expected an integer", path, i + 1);
			bad = 1;
			continue;
		}
		v = config_setting_get_int64(e);
		if (elem_literal_mismatch(ld, s, k->name, i, v, &lit, &litlen)) {
			ELEM_ERROR("%s: %.*s is out of range %lld..%lld", path, litlen, lit, k->lo,
			    k->hi);
			bad = 1;
		} else if (v < k->lo || v > k->hi) {
			ELEM_ERROR("%s: %lld is out of range %lld..%lld", path, v, k->lo, k->hi);
			bad = 1;
		} else {
			tmp.port[n++] = (uint16_t)v;
		}
#undef ELEM_ERROR
	}
	if (bad)
		return -1;
	memcpy((char *)ld->cfg + k->offset, &tmp, n * elem);
	memcpy((char *)ld->cfg + k->count_offset, &n, sizeof(n));
	return 0;
}

/*
 * Where the value of member name of the group whose text starts at brace ("{ name = value; ...
 * }") starts: after its '=' or ':' and any blank. Strings, comments and nested groups are skipped.
 * NULL when it cannot be found. (value_text looks at a whole line, where several groups of a
 * list may sit with the same member names.)
 */
static const char *
member_text(const char *brace, const char *name)
{
	size_t nlen = strlen(name);
	const char *p;
	int depth = 1;

	if (brace == NULL || *brace != '{')
		return NULL;
	for (p = brace + 1; *p != '\0';) {
		if (*p == '"') {
			for (p++; *p != '\0' && *p != '"'; p++)
				if (*p == '\\' && p[1] != '\0')
					p++;
			if (*p == '\0')
				return NULL;
			p++;
			continue;
		}
		if (*p == '#' || (p[0] == '/' && (p[1] == '/' || p[1] == '*'))) {
			p = skip_blank(p);
			continue;
		}
		if (*p == '{' || *p == '(' || *p == '[') {
			depth++;
		} else if (*p == '}' || *p == ')' || *p == ']') {
			if (--depth == 0)
				return NULL;
		} else if (depth == 1 && strncmp(p, name, nlen) == 0 &&
		    !is_name_char((unsigned char)p[-1]) && !is_name_char((unsigned char)p[nlen])) {
			const char *q = skip_blank(p + nlen);

			if (*q == '=' || *q == ':')
				return skip_blank(q + 1);
		}
		p++;
	}
	return NULL;
}

/* Do settings a and b come from the same file? */
static int
same_file(const config_setting_t *a, const config_setting_t *b)
{
	const char *fa = config_setting_source_file(a), *fb = config_setting_source_file(b);

	return fa == fb || (fa != NULL && fb != NULL && strcmp(fa, fb) == 0);
}

/*
 * Element idx of eviction.overrides (list, named name), a group { network = "CIDR"; port = N;
 * idle_timeout = N; } with port optional (0: any). epath names the element in messages. Returns
 * 0 with *out and the line of its idle_timeout set, -1 after reporting every problem.
 */
static int
load_override(struct load_state *ld, const config_setting_t *list, const config_setting_t *e,
	const char *name, int idx, const char *epath, struct config_timeout_override *out,
	int *to_line, const char **to_file)
{
	struct config_timeout_override o;
	int n = config_setting_length(e), bad = 0, have_net = 0, have_timeout = 0;

	memset(&o, 0, sizeof(o));
	for (int j = 0; j < n; j++) {
		const config_setting_t *m = config_setting_get_elem(e, (unsigned int)j);
		const char *mname, *lit;
		char mpath[192];
		long long v;

		if (m == NULL)
			continue;
		if ((mname = config_setting_name(m)) == NULL)
			mname = "";
		snprintf(mpath, sizeof(mpath), "%s.%s", epath, mname);
		if (strcmp(mname, "network") == 0) {
			const char *str;
			int rc;

			have_net = 1;
			if (config_setting_type(m) != CONFIG_TYPE_STRING) {
				setting_error(ld, m, "%s: expected a string", mpath);
				bad = 1;
				continue;
			}
			str = config_setting_get_string(m);
			if ((rc = CIDR_Parse(str, &o.network)) != CIDR_OK) {
				char msg[NET_MSG_SIZE];

				setting_error(ld, m, "%s: %s", mpath,
				    cidr_message(rc, str, msg, sizeof(msg)));
				bad = 1;
			}
			continue;
		}
		if (strcmp(mname, "port") != 0 && strcmp(mname, "idle_timeout") != 0) {
			setting_error(ld, m, "unknown key '%s'", mpath);
			bad = 1;
			continue;
		}
		/* The literal is looked for inside this element's braces (found anew each time:
		 * the text cache may have moved to another file meanwhile). */
		lit = same_file(list, m) ? member_text(elem_text(ld, list, name, idx), mname) : NULL;
		if (strcmp(mname, "port") == 0) {
			if (check_int(ld, m, mpath, 0, 65535, NULL, lit, &v) < 0)
				bad = 1;
			else
				o.port = (uint16_t)v;
		} else {
			have_timeout = 1;
			if (check_int(ld, m, mpath, 10, 86400, NULL, lit, &v) < 0) {
				bad = 1;
			} else {
				o.idle_timeout = (uint32_t)v;
				*to_line = (int)config_setting_source_line(m);
				*to_file = config_setting_source_file(m);
			}
		}
	}
	if (!have_net) {
		elem_error(ld, list, e, name, idx, "%s: network is required", epath);
		bad = 1;
	}
	if (!have_timeout) {
		elem_error(ld, list, e, name, idx, "%s: idle_timeout is required", epath);
		bad = 1;
	}
	if (bad)
		return -1;
	*out = o;
	return 0;
}

/*
 * eviction.overrides (K_OVERRIDES): a list ( ) of groups, at most CFG_EVICTION_MAX_OVERRIDES,
 * each checked strictly; two for the same network and port are an error (which would apply?).
 * Elements are named eviction.overrides[0], [1], ... in messages. Every problem is reported; a
 * list with any keeps its default (empty). Returns 0 when stored, -1 after reporting errors.
 */
static int
load_overrides(struct load_state *ld, const struct cfg_key *k, const config_setting_t *s,
	const char *path)
{
	struct config_timeout_override tmp[CFG_EVICTION_MAX_OVERRIDES];
	int idx[CFG_EVICTION_MAX_OVERRIDES], line[CFG_EVICTION_MAX_OVERRIDES];
	const char *lfile[CFG_EVICTION_MAX_OVERRIDES];
	int type = config_setting_type(s), len, bad = 0;
	unsigned n = 0;

	if (type != CONFIG_TYPE_LIST && type != CONFIG_TYPE_ARRAY) {
		setting_error(ld, s, "%s: expected a list", path);
		return -1;
	}
	len = config_setting_length(s);
	for (int i = 0; i < len; i++) {
		const config_setting_t *e = config_setting_get_elem(s, (unsigned int)i);
		char epath[160];

		if (e == NULL)
			continue;
		snprintf(epath, sizeof(epath), "%s[%d]", path, i);
		if (i == CFG_EVICTION_MAX_OVERRIDES) {
			/* The rest is not looked at: the list must be shortened anyway. */
			elem_error(ld, s, e, k->name, i, "%s: more than %d entries", path,
			    CFG_EVICTION_MAX_OVERRIDES);
			bad = 1;
			break;
		}
		if (config_setting_type(e) != CONFIG_TYPE_GROUP) {
			elem_error(ld, s, e, k->name, i,
			    "%s: expected a group { network = \"CIDR\"; port = N; idle_timeout = N; }",
			    epath);
			bad = 1;
			continue;
		}
		line[n] = 0;
		lfile[n] = NULL;
		if (load_override(ld, s, e, k->name, i, epath, &tmp[n], &line[n], &lfile[n]) < 0) {
			bad = 1;
			continue;
		}
		for (unsigned j = 0; j < n; j++) {
			if (tmp[j].port == tmp[n].port && CIDR_Equal(&tmp[j].network, &tmp[n].network)) {
				elem_error(ld, s, e, k->name, i,
				    "%s: the same network and port as %s[%d]", epath, path, idx[j]);
				bad = 1;
				break;
			}
		}
		idx[n] = i;
		n++;
	}
	if (bad)
		return -1;
	memcpy(ld->cfg->overrides, tmp, n * sizeof(tmp[0]));
	ld->cfg->n_overrides = n;
	memcpy(ld->ov_line, line, n * sizeof(line[0]));
	memcpy(ld->ov_file, lfile, n * sizeof(lfile[0]));
	return 0;
}

/* Returns 0 when the value was accepted and stored, -1 after reporting an error. */
static int
load_leaf(struct load_state *ld, const struct cfg_key *k, const config_setting_t *s,
	const char *path)
{
	int type = config_setting_type(s);
	const char *expect;
	long long v;
	int b;

	switch (k->kind) {
	case K_INT:
		if (check_int(ld, s, path, k->lo, k->hi, k->zero_note,
		    type == CONFIG_TYPE_INT || type == CONFIG_TYPE_INT64 ?
		    value_text(ld, s, k->name) : NULL, &v) < 0)
			return -1;
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
	case K_REJECT:
		setting_error(ld, s, "%s: %s", path, k->reject);
		return -1;
	case K_NETS:
	case K_PORTS:
		return load_list(ld, k, s, path);
	case K_OVERRIDES:
		return load_overrides(ld, k, s, path);
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

/*
 * @include targets, checked before libconfig sees the file. libconfig 1.5 opens an @include'd
 * name with fopen and hands the stream to its flex scanner, whose read error handler calls
 * exit(2): a directory (fopen succeeds, read fails with EISDIR) ends the whole process, and a
 * FIFO blocks it forever. This libconfig has no include hook (config_set_include_func came with
 * 1.7), so every file it would open is checked here first: the main file and, recursively, each
 * @include found the way libconfig's scanner finds it (at the start of a line, outside block
 * comments and strings). Each must be a readable regular file; nesting is limited to libconfig's
 * own depth and the total number of includes is capped (a file including itself twice per level
 * would otherwise take 2^depth parses). What remains is a race: a file swapped for a directory
 * between this check and libconfig's fopen.
 */
#define INC_MAX_DEPTH 10        /* libconfig 1.5's MAX_INCLUDE_DEPTH */
#define INC_MAX_FILES 256       /* @include directives followed in one load */

struct inc_scan {
	struct config_errors *errs;
	unsigned files;            /* @include directives followed so far */
	int failed;
};

static void scan_file(struct inc_scan *sc, const char *path, const char *from, int from_line,
	int depth);

/* Read path into a NUL-terminated heap buffer, refusing anything but a regular file without
 * blocking on it (O_NONBLOCK: a FIFO opens at once). NULL with *why set (a static string or
 * strerror) otherwise. */
static char *
read_source(const char *path, size_t *lenp, const char **why)
{
	struct stat st;
	char *buf = NULL;
	size_t len = 0, cap = 0;
	ssize_t n;
	int fd;

	if ((fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY)) < 0) {
		*why = strerror(errno);
		return NULL;
	}
	if (fstat(fd, &st) < 0) {
		*why = strerror(errno);
		close(fd);
		return NULL;
	}
	if (S_ISDIR(st.st_mode) || !S_ISREG(st.st_mode)) {
		*why = S_ISDIR(st.st_mode) ? strerror(EISDIR) : "not a regular file";
		close(fd);
		return NULL;
	}
	for (;;) {
		if (len == cap) {
			char *nb;

			cap = cap ? cap * 2 : 8192;
			if ((nb = realloc(buf, cap + 1)) == NULL)
				fatal("realloc");
			buf = nb;
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			*why = strerror(errno);
			free(buf);
			close(fd);
			return NULL;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	*lenp = len;
	return buf;
}

/* The name of an @include whose opening quote is at text[*i]: libconfig's rules (\\ and \" are
 * escapes, any other backslash is dropped), lines counted. NULL when the quote is not closed
 * (libconfig then opens nothing). */
static char *
include_name(const char *text, size_t len, size_t *i, int *line)
{
	char *name = malloc(len - *i + 1);
	size_t k = *i + 1, n = 0;

	if (name == NULL)
		fatal("malloc");
	while (k < len && text[k] != '"') {
		if (text[k] == '\\') {
			if (k + 1 < len && (text[k + 1] == '\\' || text[k + 1] == '"'))
				name[n++] = text[++k];
		} else {
			if (text[k] == '\n')
				(*line)++;
			name[n++] = text[k];
		}
		k++;
	}
	if (k >= len) {
		free(name);
		*i = len;
		return NULL;
	}
	name[n] = '\0';
	*i = k + 1;
	return name;
}

/* Follow every @include of one file's text (file is its name, for messages). */
static void
scan_text(struct inc_scan *sc, const char *file, const char *text, size_t len, int depth)
{
	size_t i = 0;
	int line = 1, bol = 1;

	while (i < len) {
		char c = text[i], d = i + 1 < len ? text[i + 1] : '\0';

		if (bol) {
			size_t j = i, k;

			bol = 0;
			while (j < len && (text[j] == ' ' || text[j] == '\t'))
				j++;
			k = j + 8;
			if (len - j > 8 && memcmp(text + j, "@include", 8) == 0 &&
			    (text[k] == ' ' || text[k] == '\t')) {
				while (k < len && (text[k] == ' ' || text[k] == '\t'))
					k++;
				if (k < len && text[k] == '"') {
					int at = line;
					char *name;

					i = k;
					if ((name = include_name(text, len, &i, &line)) != NULL) {
						scan_file(sc, name, file, at, depth + 1);
						free(name);
					}
					continue;
				}
			}
		}
		if (c == '\n') {
			line++;
			bol = 1;
			i++;
		} else if (c == '#' || (c == '/' && d == '/')) {
			while (i < len && text[i] != '\n')
				i++;
		} else if (c == '/' && d == '*') {
			for (i += 2; i < len && !(text[i] == '*' && i + 1 < len && text[i + 1] == '/');
			    i++)
				if (text[i] == '\n')
					line++;
			i = i < len ? i + 2 : len;
		} else if (c == '"') {
			for (i++; i < len && text[i] != '"'; i++) {
				if (text[i] == '\\' && i + 1 < len)
					i++;
				if (text[i] == '\n')
					line++;
			}
			i++;
		} else {
			i++;
		}
	}
}

/* Check one file libconfig would open: the main one (from NULL) or an @include at from:line. */
static void
scan_file(struct inc_scan *sc, const char *path, const char *from, int from_line, int depth)
{
	const char *why = NULL;
	size_t len = 0;
	char *text;

	if (from != NULL) {
		if (depth > INC_MAX_DEPTH) {
			CFG_AddError(sc->errs, from, from_line,
			    "@include \"%s\": includes nested deeper than %d", path, INC_MAX_DEPTH);
			sc->failed = 1;
			return;
		}
		if (++sc->files > INC_MAX_FILES) {
			if (sc->files == INC_MAX_FILES + 1)
				CFG_AddError(sc->errs, from, from_line,
				    "@include \"%s\": more than %d @include in all", path,
				    INC_MAX_FILES);
			sc->failed = 1;
			return;
		}
	}
	if ((text = read_source(path, &len, &why)) == NULL) {
		if (from == NULL)
			CFG_AddError(sc->errs, path, 0, "cannot read: %s", why);
		else
			CFG_AddError(sc->errs, from, from_line, "@include \"%s\": cannot read: %s",
			    path, why);
		sc->failed = 1;
		return;
	}
	scan_text(sc, path, text, len, depth);
	free(text);
}

/* Check file and everything it @includes before libconfig opens them; 0 when all are safe. */
static int
check_sources(const char *file, struct config_errors *errs)
{
	struct inc_scan sc = { .errs = errs };

	scan_file(&sc, file, NULL, 0, 0);
	return sc.failed ? -1 : 0;
}

int
CFG_Load(struct config *cfg, const char *file, struct config_errors *errs)
{
	struct load_state ld;
	size_t before = errs->count;
	config_t c;

	CFG_SetDefaults(cfg);
	replace_string(&cfg->source, file);

	if (check_sources(file, errs) < 0)
		return -1;
	config_init(&c);
	errno = 0;
	if (config_read_file(&c, file) != CONFIG_TRUE) {
		int saved = errno;

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
