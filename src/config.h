/* Configuration: built-in defaults, a libconfig file with strict validation, command-line overrides. */
#ifndef RSTGUARD_CONFIG_H
#define RSTGUARD_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cidr.h"

enum rg_mode { RG_MODE_DETECT = 0, RG_MODE_ENFORCE = 1 };

#define CFG_POLICY_MAX_NETS 64     /* entries of policy.protect, of policy.exempt */
#define CFG_POLICY_MAX_PORTS 64    /* entries of policy.exempt_ports */

/* policy: which RSTs enforce mode drops. Fixed arrays: no allocation, copied by value. Only the
 * causes injected and invalid_seq can be dropped; every other cause is always accepted. */
struct config_policy {
	int drop_injected;         /* actions.injected: 1 "drop", 0 "accept" */
	int drop_invalid_seq;      /* actions.invalid_seq: 1 "drop", 0 "accept" */
	unsigned n_protect;        /* 0: every destination */
	unsigned n_exempt;
	unsigned n_exempt_ports;
	struct cidr protect[CFG_POLICY_MAX_NETS];  /* drop only RSTs whose destination is inside */
	struct cidr exempt[CFG_POLICY_MAX_NETS];   /* never drop RSTs from or to these */
	uint16_t exempt_ports[CFG_POLICY_MAX_PORTS]; /* never drop RSTs from or to these ports */
};

/* eviction: a middlebox idle timeout for flows toward some servers (destination network and
 * port), overriding eviction.idle_timeout. */
#define CFG_EVICTION_MAX_OVERRIDES 64
struct config_timeout_override {
	struct cidr network;       /* the server side of the flow */
	uint16_t port;             /* server port; 0: any */
	uint32_t idle_timeout;     /* seconds (10..86400) */
};

enum probe_side { PROBE_SERVER = 0, PROBE_CLIENT = 1, PROBE_BOTH = 2 };

/* Per-state idle timeouts of the flow table, in seconds. */
struct config_flow_timeouts {
	uint32_t syn;          /* handshake not complete (syn_sent, syn_recv) */
	uint32_t established;  /* established; must outlive middlebox timeouts to see evictions */
	uint32_t closing;      /* a FIN seen (fin_wait, close_wait, last_ack, closing) */
	uint32_t closed;       /* after a RST or the last ACK (closed, time_wait) */
};

struct config {
	enum rg_mode mode;

	/* queue: NFQUEUE binding */
	uint16_t queue_num;        /* first queue number */
	uint16_t queue_count;      /* number of queues (one thread each): num .. num+count-1 */
	uint32_t queue_maxlen;     /* NFQA_CFG_QUEUE_MAXLEN */
	uint32_t copy_range;       /* bytes of each packet copied to us */
	int fail_open;             /* NFQA_CFG_F_FAIL_OPEN: accept when the queue is full */
	uint32_t rcvbuf;           /* SO_RCVBUFFORCE bytes; 0 keeps the kernel default */
	uint32_t batch;            /* messages drained per receive batch */

	/* flows: the flow table */
	uint32_t flows_max;        /* hard cap over all queues */
	struct config_flow_timeouts timeout;

	/* events: JSON lines */
	char *events_path;         /* "-" for stdout */
	uint32_t events_rate;      /* sustained events per second (per daemon) */
	uint32_t events_burst;     /* token bucket depth */
	uint32_t events_alert_rate;  /* alerts (forged RSTs, evictions): their own budget */
	uint32_t events_alert_burst;

	/* log */
	int log_syslog;            /* 1: syslog, 0: stderr */
	int log_level;             /* enum log_level */

	/* eviction */
	uint32_t idle_timeout;     /* middlebox idle timeout in seconds; 0: not configured */
	int keepalive;             /* inject keepalive probes before idle_timeout */
	uint32_t probe_lead;       /* probe this many seconds before the timeout; 0: at 0.8 x the timeout */
	uint32_t max_idle;         /* flows idle longer than this (seconds) are no longer kept alive */
	uint32_t probe_rate;       /* probes per second, whole daemon */
	uint32_t probe_retries;    /* unanswered probes before the path is called a black hole */
	enum probe_side probe_side;/* which side is beyond the middlebox */
	uint32_t watch_min_gap;    /* resumption after this many seconds of silence is watched
	                            * (learning); 0: automatic, see CFG_WatchMinGap */
	unsigned n_overrides;      /* eviction.overrides: per server network/port timeouts */
	struct config_timeout_override overrides[CFG_EVICTION_MAX_OVERRIDES];

	/* detector: forged-RST judgement and holds */
	uint32_t threshold;        /* score at which a RST is judged forged */
	uint32_t ttl_tolerance;    /* TTL difference allowed before the TTL signal fires */
	uint32_t min_rtt_ms;       /* the timing signal needs at least this RTT to the sender */
	uint32_t hold_threshold;   /* enforce: hold RSTs scoring at least this; 0 holds every effective one */
	uint32_t hold_min_ms;      /* a judgement waits at least this long for contradicting traffic */
	uint32_t hold_max_ms;      /* ... and at most this long (4 x the sender's RTT in between) */
	uint32_t max_pending;      /* RSTs awaiting judgement at once, per queue */
	uint32_t revise_window;    /* seconds a judged-genuine RST may still be revised by its sender's
	                            * later traffic; 0: never */
	int confirm;               /* enforce: probe the claimed sender of a held, inconclusive RST */
	uint32_t confirm_rate;     /* confirmation probes per second, whole daemon */

	/* policy: what enforce mode drops */
	struct config_policy policy;

	/* metrics: Prometheus exposition (metrics.c) */
	char *metrics_listen;      /* "ADDR:PORT" of the HTTP /metrics listener; "" off */
	char *metrics_textfile;    /* node_exporter textfile written every metrics_interval; "" off */
	uint32_t metrics_interval; /* seconds between textfile writes */
	/* evidence: pcap captures of forged RSTs (evidence.c) */
	char *evidence_dir;        /* "" (the default): no captures; at most EVIDENCE_DIR_MAX bytes */
	uint32_t evidence_max_bytes;  /* the directory's captures stay under this; oldest removed */
	uint32_t evidence_packets; /* per-queue ring of recent packets */
	uint32_t evidence_snaplen; /* bytes kept of each packet */
	uint32_t evidence_rate;    /* capture files per second at most, whole daemon */
	int evidence_evictions;    /* a capture for each detected eviction too */
	/* nat: joining the halves of translated connections (docs/nat.md) */
	int nat_lookup;            /* ask conntrack about unknown non-SYN tuples */
	uint32_t nat_lookup_rate;  /* lookups per second, whole daemon */
	uint32_t nat_zone;         /* conntrack zone of the lookups */
	uint32_t nat_max_aliases;  /* joined halves per queue */
	uint32_t nat_timeout_ms;   /* longest wait for conntrack's answer */
	/* rules: the queue rules rstguard adds itself */
	int rules_install;         /* add chain RSTGUARD at start, remove it at exit */

	/* fastpath: the eBPF selector in front of the queue (src/fastpath.h) */
	int fastpath_enable;
	char *fastpath_pin_dir;    /* where the program and its maps are pinned */

	/* Where the file was read from, for messages ("" when defaults only). */
	char *source;

	/* control: the UNIX socket rstguardctl talks to; privileges */
	char *control_socket;      /* "" = no socket */
	char *control_group;       /* "" = the daemon's own group */
	char *user;                /* "" = keep running as started */
};

/* Longest evidence.dir accepted (its captures' paths must fit EVD_PATH_MAX). */
#define EVIDENCE_DIR_MAX 1024

/* One validation error, with the place it was found. */
struct config_error {
	char *file;
	int line;                  /* 0 when not tied to a line */
	char *message;
};

struct config_errors {
	struct config_error *items;
	size_t count;
	size_t cap;
};

/* Fill cfg with the built-in defaults (no file needed), from the key table. Strings are heap
 * copies. */
void CFG_SetDefaults(struct config *cfg);

/* What a configuration key holds. */
enum cfg_key_type { CFG_KEY_INT, CFG_KEY_BOOL, CFG_KEY_STRING, CFG_KEY_LIST };

/* One key of the file as the key table of config.c describes it. */
struct cfg_key_info {
	const char *path;          /* dotted name, "flows.timeout.syn" (valid during the call) */
	enum cfg_key_type type;
	long long def;             /* CFG_KEY_INT, CFG_KEY_BOOL: the default */
	const char *def_str;       /* CFG_KEY_STRING: the default as written in the file */
	long long lo, hi;          /* CFG_KEY_INT, and the integers of a list: the accepted range */
	int zero_ok;               /* CFG_KEY_INT: 0 is accepted too (it means "off" or "automatic") */
	const char *restart;       /* NULL: a reload applies it; else a reload keeps the running
	                            * value and warns "reload: RESTART changed: requires restart" */
	const char *doc;           /* one line */
};

/* Call fn for every key of the file (not groups, not the names refused under policy.actions),
 * in the order of the key table. */
void CFG_ForEachKey(void (*fn)(const struct cfg_key_info *key, void *arg), void *arg);

/* The dotted name of the first key whose value differs between a and b, or NULL when they hold
 * the same settings (the source is not compared). The name is valid until the next call from
 * the same thread. */
const char *CFG_Diff(const struct config *a, const struct config *b);

/* For a reload: give nc the running values (from old) of the settings that cannot change while
 * running (queue.*, flows.max, events.path, log.target, detector.max_pending), logging
 * "reload: WHAT changed: requires restart" once for each that differed. Returns the number of
 * warnings. */
int CFG_KeepRestartOnly(struct config *nc, const struct config *old);

/* Load FILE on top of the defaults into cfg. Every problem found (syntax error, unknown key,
 * wrong type, out-of-range value) is appended to errs as FILE:LINE: message; returns 0 when there
 * were none, -1 otherwise. On error cfg still holds defaults plus whatever was valid. */
int CFG_Load(struct config *cfg, const char *file, struct config_errors *errs);

/* Re-run the cross-field checks (events.burst >= events.rate, events.alert_burst >=
 * events.alert_rate, eviction.keepalive needs
 * eviction.idle_timeout or eviction.overrides, eviction.idle_timeout and every override's
 * idle_timeout < flows.timeout.established, eviction.probe_lead (when set) < each of those timeouts,
 * queue.num + queue.count - 1 <= 65535) on a final config, after the command-line overrides.
 * Errors are appended with file "command line" and line 0; returns 0 when there were none, -1
 * otherwise. */
int CFG_Validate(const struct config *cfg, struct config_errors *errs);

/* Deep copy of src into dst (strings duplicated). */
void CFG_Copy(struct config *dst, const struct config *src);

/* Release the strings held by cfg. */
void CFG_Free(struct config *cfg);

/* The middlebox idle timeout for flows toward server address addr (family) and port: the most
 * specific override (longest prefix; an override with a port beats one without at the same
 * prefix), else eviction.idle_timeout; 0 when none applies. addr is 16 bytes, IPv4 in the first
 * 4 (as in struct pkt); IPv4 and IPv6 never match each other. No allocation. */
uint32_t CFG_IdleTimeoutFor(const struct config *cfg, int family, const uint8_t *addr,
	uint16_t port);

/* eviction.watch_min_gap in effect for a flow whose middlebox timeout is timeout_s (from
 * CFG_IdleTimeoutFor; 0: none): the configured value, or when it is 0 (automatic) a quarter of
 * the flow's timeout, at least 1, or 30 when the flow has no timeout. In seconds. */
uint32_t CFG_WatchMinGap(const struct config *cfg, uint32_t timeout_s);

/* Parse "detect" or "enforce"; -1 otherwise. */
int CFG_ParseMode(const char *s);

/* Name of a mode ("detect", "enforce"). */
const char *CFG_ModeName(enum rg_mode mode);

/* Record one error (printf-style message). */
void CFG_AddError(struct config_errors *errs, const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Print every error as FILE:LINE: message (or FILE: message), one per line. */
void CFG_PrintErrors(const struct config_errors *errs, FILE *out);

/* Release an error list. */
void CFG_FreeErrors(struct config_errors *errs);

#endif
