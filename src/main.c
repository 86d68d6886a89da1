/* rstguard: command line, start-up, the control thread (signals, reload, event output) and one
 * packet thread per queue. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "control.h"
#include "engine.h"
#include "event.h"
#include "evidence.h"
#include "fastpath.h"
#include "log.h"
#include "metrics.h"
#include "metrics_http.h"
#include "nfq.h"
#include "notify.h"
#include "offline.h"
#include "privdrop.h"
#include "stats.h"
#include "rules.h"

#define EVENT_RING_BYTES (1u << 20)
#define CONTROL_POLL_MS 200

/* Command-line settings; each overrides the file's value when given. */
struct cli {
	const char *config_file;
	int has_queue, has_mode, has_events, has_idle, keepalive;
	uint16_t queue;
	enum rg_mode mode;
	const char *events;
	uint32_t idle_timeout;
	int check_only;
	const char *read_file;           /* offline analysis of a capture */
	enum summary_format summary;
	int print_rules, install_rules, fast_path;
	const char *pin_dir;             /* --fast-path=DIR */
};

/* A packet thread, as the control thread sees it. */
struct worker {
	pthread_t thread;
	struct nfq_worker run;     /* its queue and engine, and the configuration it took */
	atomic_int done;
	pthread_mutex_t qlock;     /* the queue's closing vs. the control thread reading its counters */
	struct nfq_stats qstats;   /* saved when the queue is closed */
};

/* The running daemon, from start-up to shutdown. */
struct daemon {
	const struct cli *cli;
	struct config *cfg;        /* the running configuration */
	struct config *retired;    /* the one a reload replaced, until every thread took the new */
	struct worker *workers;
	unsigned n;                /* queues */
	unsigned started;          /* threads started */
	uint64_t start_real_ns;    /* when the daemon started (wall clock) */
	uint64_t reload_real_ns;   /* the last reload (0: none yet), and whether it was applied */
	int reload_ok;
	int rules_added;           /* chain RSTGUARD added (removed at exit) */
	struct fastpath *fp;       /* the kernel fast path, when on */
	sigset_t waitmask;         /* the signals the control thread takes, in ppoll */
};

static volatile sig_atomic_t got_term, got_hup, got_usr1;

/* Stop flag and configuration swaps, shared with the packet threads. */
static struct nfq_control ctl;

static void
on_signal(int sig)
{
	if (sig == SIGHUP)
		got_hup = 1;
	else if (sig == SIGUSR1)
		got_usr1 = 1;
	else
		got_term = 1;
}

static void
usage(FILE *out)
{
	fprintf(out,
		"usage: rstguard [-c FILE] [-q NUM] [-m detect|enforce] [-e PATH] [--idle-timeout SECONDS]\n"
		"                [--keepalive] [--install-rules] [--fast-path[=DIR]]\n"
		"                [-t|--check-config] [-V|--version] [-h|--help]\n"
		"       rstguard --print-rules [-c FILE] [-q NUM]\n"
		"       rstguard -r CAPTURE [--summary text|json] [-c FILE] [-m MODE] [-e PATH] ...\n"
		"\n"
		"  -c, --config FILE        libconfig file (default: built-in settings)\n"
		"  -q, --queue NUM          first NFQUEUE number\n"
		"  -m, --mode MODE          detect (never changes a verdict) or enforce (apply the policy)\n"
		"  -e, --events PATH        JSON-lines event file, - for standard output\n"
		"      --idle-timeout SECS  idle timeout of the middlebox beyond the gateway (0: none)\n"
		"      --keepalive          keep idle flows alive with keepalive probes\n"
		"      --print-rules        print the queue rules (iptables, ip6tables, nft) and exit\n"
		"      --install-rules      add the queue rules at start, remove them at exit\n"
		"      --fast-path[=DIR]    queue only what the daemon must see (eBPF selector pinned in DIR)\n"
		"  -r, --read FILE          analyse a pcap/pcapng capture (- for stdin) instead of a queue\n"
		"      --summary FORMAT     summary after -r on stderr: text (default) or json\n"
		"  -t, --check-config       check the configuration and exit\n"
		"      --list-metrics       list the Prometheus metrics (name, type, help) and exit\n"
		"  -V, --version            print the version and exit\n"
		"  -h, --help               print this help and exit\n");
}

/* Strict unsigned parse: digits only, no sign, no trailing text, within [lo, hi]. */
static int
parse_uint(const char *s, unsigned long lo, unsigned long hi, uint32_t *out)
{
	char *end;
	unsigned long v;

	if (s == NULL || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < lo || v > hi)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

/* --list-metrics: one line per metric family. */
static void
print_metric(const char *name, const char *type, const char *help, void *arg)
{
	(void)arg;
	printf("%s %s %s\n", name, type, help);
}

static void
parse_args(int argc, char **argv, struct cli *cli)
{
	enum { OPT_IDLE = 256, OPT_KEEPALIVE, OPT_SUMMARY, OPT_LIST_METRICS, OPT_PRINT_RULES, OPT_INSTALL_RULES,
	       OPT_FAST_PATH };
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "queue", required_argument, NULL, 'q' },
		{ "mode", required_argument, NULL, 'm' },
		{ "events", required_argument, NULL, 'e' },
		{ "idle-timeout", required_argument, NULL, OPT_IDLE },
		{ "keepalive", no_argument, NULL, OPT_KEEPALIVE },
		{ "check-config", no_argument, NULL, 't' },
		{ "read", required_argument, NULL, 'r' },
		{ "summary", required_argument, NULL, OPT_SUMMARY },
		{ "list-metrics", no_argument, NULL, OPT_LIST_METRICS },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ "print-rules", no_argument, NULL, OPT_PRINT_RULES },
		{ "install-rules", no_argument, NULL, OPT_INSTALL_RULES },
		{ "fast-path", optional_argument, NULL, OPT_FAST_PATH },
		{ NULL, 0, NULL, 0 },
	};
	uint32_t v;
	int c, m;

	while ((c = getopt_long(argc, argv, "c:q:m:e:r:tVh", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			cli->config_file = optarg;
			break;
		case 'q':
			if (parse_uint(optarg, 0, 65535, &v) < 0) {
				fprintf(stderr, "rstguard: invalid queue number '%s' (0..65535)\n", optarg);
				exit(2);
			}
			cli->has_queue = 1;
			cli->queue = (uint16_t)v;
			break;
		case 'm':
			m = CFG_ParseMode(optarg);
			if (m < 0) {
				fprintf(stderr, "rstguard: invalid mode '%s' (detect or enforce)\n", optarg);
				exit(2);
			}
			cli->has_mode = 1;
			cli->mode = (enum rg_mode)m;
			break;
		case 'e':
			if (optarg[0] == '\0') {
				fprintf(stderr, "rstguard: empty event path\n");
				exit(2);
			}
			cli->has_events = 1;
			cli->events = optarg;
			break;
		case OPT_IDLE:
			if (parse_uint(optarg, 0, 86400, &v) < 0 || (v > 0 && v < 10)) {
				fprintf(stderr, "rstguard: invalid idle timeout '%s' (0, or 10..86400 seconds)\n", optarg);
				exit(2);
			}
			cli->has_idle = 1;
			cli->idle_timeout = v;
			break;
		case OPT_KEEPALIVE:
			cli->keepalive = 1;
			break;
		case 't':
			cli->check_only = 1;
			break;
		case 'r':
			cli->read_file = optarg;
			break;
		case OPT_SUMMARY:
			if (strcmp(optarg, "text") == 0) {
				cli->summary = SUMMARY_TEXT;
			} else if (strcmp(optarg, "json") == 0) {
				cli->summary = SUMMARY_JSON;
			} else {
				fprintf(stderr, "rstguard: invalid summary format '%s' (text or json)\n", optarg);
				exit(2);
			}
			break;
		case OPT_LIST_METRICS:
			MET_ForEach(print_metric, NULL);
			exit(0);
		case OPT_PRINT_RULES:
			cli->print_rules = 1;
			break;
		case OPT_INSTALL_RULES:
			cli->install_rules = 1;
			break;
		case OPT_FAST_PATH:
			cli->fast_path = 1;
			if (optarg && optarg[0] != '/') {
				fprintf(stderr, "rstguard: --fast-path=DIR needs an absolute directory\n");
				exit(2);
			}
			cli->pin_dir = optarg;
			break;
		case 'V':
			printf("rstguard %s\n", PACKAGE_VERSION);
			exit(0);
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			exit(2);
		}
	}
	if (optind < argc) {
		fprintf(stderr, "rstguard: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		exit(2);
	}
}

/* Build a configuration: the file (or the defaults), then the command line on top. Returns 0,
 * or -1 with errs filled. */
static int
build_config(const struct cli *cli, struct config *cfg, struct config_errors *errs)
{
	int rc = 0;

	if (cli->config_file)
		rc = CFG_Load(cfg, cli->config_file, errs);
	else
		CFG_SetDefaults(cfg);
	if (cli->has_queue)
		cfg->queue_num = cli->queue;
	if (cli->has_mode)
		cfg->mode = cli->mode;
	if (cli->has_events) {
		free(cfg->events_path);
		cfg->events_path = strdup(cli->events);
	}
	if (cli->has_idle)
		cfg->idle_timeout = cli->idle_timeout;
	if (cli->keepalive)
		cfg->keepalive = 1;
	if (cli->install_rules)
		cfg->rules_install = 1;
	if (cli->fast_path)
		cfg->fastpath_enable = 1;
	if (cli->pin_dir) {
		free(cfg->fastpath_pin_dir);
		cfg->fastpath_pin_dir = strdup(cli->pin_dir);
	}
	if (rc == 0 && CFG_Validate(cfg, errs) != 0)
		rc = -1;
	return errs->count ? -1 : rc;
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;

	NFQ_Run(&w->run);
	pthread_mutex_lock(&w->qlock);
	NFQ_GetStats(w->run.q, &w->qstats);
	NFQ_Close(w->run.q);
	w->run.q = NULL;
	pthread_mutex_unlock(&w->qlock);
	atomic_store(&w->done, 1);
	return NULL;
}

static int
all_acked(struct worker *w, unsigned n, unsigned gen)
{
	for (unsigned i = 0; i < n; i++)
		if (atomic_load(&w[i].run.seen_gen) != gen && !atomic_load(&w[i].done))
			return 0;
	return 1;
}

/* SIGHUP (or rstguardctl reload): parse into a new configuration and swap it in only if it is
 * valid; reopen the event file either way (logrotate). Returns 0 when applied, -1 otherwise;
 * with j, the reasons are added to it as "error" and "errors" members. */
static int
reload(struct daemon *d, struct json *j)
{
	const struct cli *cli = d->cli;
	struct config **cur = &d->cfg, **retired = &d->retired;
	struct worker *w = d->workers;
	unsigned n = d->started;
	struct config *nc = calloc(1, sizeof(*nc));
	struct config_errors errs = { 0 };
	struct engine_time t;
	int rc = -1;

	NOTIFY_Reloading();
	/* The previous swap must be acknowledged before its old config can be freed. */
	for (int i = 0; *retired && i < 50 && !all_acked(w, n, atomic_load(&ctl.gen)); i++)
		usleep(20000);
	if (*retired && all_acked(w, n, atomic_load(&ctl.gen))) {
		CFG_Free(*retired);
		free(*retired);
		*retired = NULL;
	}
	if (nc == NULL) {
		log_warnx("reload: out of memory");
		if (j) {
			JSON_Bool(j, "ok", 0);
			JSON_Str(j, "error", "out of memory");
		}
	} else if (*retired) {
		log_warnx("reload: the previous reload is still being applied; try again");
		if (j) {
			JSON_Bool(j, "ok", 0);
			JSON_Str(j, "error", "the previous reload is still being applied; try again");
		}
		free(nc);
	} else if (build_config(cli, nc, &errs) < 0) {
		if (j) {
			JSON_Bool(j, "ok", 0);
			JSON_Str(j, "error", "configuration rejected: keeping the running configuration");
			JSON_ArrayOpen(j, "errors");
		}
		for (size_t i = 0; i < errs.count; i++) {
			char line[512];

			if (errs.items[i].line > 0)
				snprintf(line, sizeof(line), "%s:%d: %s", errs.items[i].file, errs.items[i].line, errs.items[i].message);
			else
				snprintf(line, sizeof(line), "%s: %s", errs.items[i].file, errs.items[i].message);
			log_warnx("%s", line);
			if (j)
				JSON_ArrayStr(j, line);
		}
		if (j)
			JSON_ArrayClose(j);
		log_warnx("reload failed: keeping the running configuration");
		CFG_Free(nc);
		free(nc);
	} else {
		CFG_KeepRestartOnly(nc, *cur);   /* settings bound at start-up keep their values */
		LOG_SetLevel((enum log_level)nc->log_level);
		EV_SetRate(nc->events_rate, nc->events_burst);
		EV_SetAlertRate(nc->events_alert_rate, nc->events_alert_burst);
		atomic_store(&ctl.cfg, nc);
		atomic_fetch_add(&ctl.gen, 1);
		*retired = *cur;
		*cur = nc;
		log_info("configuration reloaded (mode %s)", CFG_ModeName(nc->mode));
		rc = 0;
	}
	CFG_FreeErrors(&errs);
	EV_Reopen();
	NOTIFY_Send("READY=1");
	NFQ_Now(&t);
	d->reload_real_ns = t.real_ns;
	d->reload_ok = rc == 0;
	return rc;
}

/* A snapshot of every counter of the running daemon (stats.h). */
static void
collect_stats(const struct daemon *d, struct rg_stats *s)
{
	struct stats_worker sw[STATS_QUEUES_MAX];
	struct nfq_stats qs[STATS_QUEUES_MAX];
	unsigned n = d->started < STATS_QUEUES_MAX ? d->started : STATS_QUEUES_MAX;

	for (unsigned i = 0; i < n; i++) {
		struct worker *w = &d->workers[i];

		/* A thread that ended closed its queue and saved its counters. */
		pthread_mutex_lock(&w->qlock);
		if (w->run.q)
			NFQ_GetStats(w->run.q, &qs[i]);
		else
			qs[i] = w->qstats;
		pthread_mutex_unlock(&w->qlock);
		sw[i].eng = w->run.eng;
		sw[i].q = NULL;
		sw[i].saved = &qs[i];
	}
	STATS_Collect(s, sw, n, (uint16_t)d->cfg->queue_num, d->start_real_ns);
	if (d->fp) {
		s->fp_on = 1;
		FP_GetStats(d->fp, &s->fp);
	}
}

static void
log_stats(const struct daemon *d)
{
	struct rg_stats *s = malloc(sizeof(*s));
	const struct engine_stats *e;
	char causes[512];
	size_t off = 0;

	if (s == NULL)
		return;
	collect_stats(d, s);
	e = &s->eng;
	log_info("packets %llu: tcp %llu, not_tcp %llu, fragment %llu, truncated %llu, malformed %llu",
		 (unsigned long long)e->packets, (unsigned long long)e->kind[PKT_TCP],
		 (unsigned long long)e->kind[PKT_NOT_TCP], (unsigned long long)e->kind[PKT_FRAGMENT],
		 (unsigned long long)e->kind[PKT_TRUNCATED], (unsigned long long)e->kind[PKT_MALFORMED]);
	log_info("flows: created %llu (midstream %llu), expired %llu, evicted %llu, reused %llu, untracked packets %llu, active %llu of %llu",
		 (unsigned long long)e->flows_created, (unsigned long long)e->flows_midstream,
		 (unsigned long long)e->flows_expired, (unsigned long long)e->flows_evicted,
		 (unsigned long long)e->flows_reused, (unsigned long long)e->flows_untracked,
		 (unsigned long long)e->flows_active, (unsigned long long)e->flows_capacity);
	snprintf(causes, sizeof(causes), "%s", e->rst ? "" : " none");
	for (int c = 0; c < RST_CAUSE_MAX; c++)
		if (e->rst_cause[c] && off < sizeof(causes))
			off += (size_t)snprintf(causes + off, sizeof(causes) - off, " %s=%llu",
						RST_CauseName((enum rst_cause)c), (unsigned long long)e->rst_cause[c]);
	log_info("rst %llu:%s; forged %llu, dropped %llu, would drop %llu, held %llu, races %llu, judged at once (pending full) %llu",
		 (unsigned long long)e->rst, causes, (unsigned long long)e->rst_forged,
		 (unsigned long long)e->rst_dropped, (unsigned long long)e->rst_would_drop,
		 (unsigned long long)e->rst_held, (unsigned long long)e->rst_race,
		 (unsigned long long)e->pending_full);
	log_info("late evidence: revised %llu, not kept (tombstones full) %llu; confirmation probes: sent %llu, answered by ack (forged) %llu, by rst (genuine) %llu, unanswered %llu, rate-limited %llu",
		 (unsigned long long)e->rst_revised, (unsigned long long)e->tombstones_full,
		 (unsigned long long)e->confirm_sent, (unsigned long long)e->confirm_ack,
		 (unsigned long long)e->confirm_rst, (unsigned long long)e->confirm_timeout,
		 (unsigned long long)e->confirm_rate_limited);
	log_info("evictions: rst %llu, black hole %llu (resumptions not watched: %llu); keepalive probes: sent %llu, answered %llu, unanswered %llu, answered by rst %llu, rate-limited %llu, send errors %llu",
		 (unsigned long long)e->evictions_rst, (unsigned long long)e->evictions_blackhole,
		 (unsigned long long)e->watch_full, (unsigned long long)e->probes_sent,
		 (unsigned long long)e->probes_answered, (unsigned long long)e->probes_unanswered,
		 (unsigned long long)e->probes_rst, (unsigned long long)e->probes_rate_limited,
		 (unsigned long long)e->probe_errors);
	log_info("nat: lookups %llu, hits %llu, misses %llu, errors %llu, skipped %llu; joined %llu (other half unseen %llu), unmapped %llu, aliases %llu (full %llu)",
		 (unsigned long long)e->nat_lookups, (unsigned long long)e->nat_hits,
		 (unsigned long long)e->nat_misses, (unsigned long long)e->nat_errors,
		 (unsigned long long)e->nat_skipped, (unsigned long long)e->nat_joined,
		 (unsigned long long)e->nat_unjoined,
		 (unsigned long long)e->nat_unmapped, (unsigned long long)e->nat_aliases,
		 (unsigned long long)e->nat_aliases_full);
	log_info("events: written %llu, rate-limited %llu (alerts %llu), ring full %llu, lost to write errors %llu",
		 (unsigned long long)s->ev.written,
		 (unsigned long long)(s->ev.rate_dropped + s->ev.alert_rate_dropped),
		 (unsigned long long)s->ev.alert_rate_dropped,
		 (unsigned long long)s->ev.ring_dropped, (unsigned long long)s->ev.write_lost);
	for (unsigned i = 0; s->kq_ok && i < s->nqueues; i++)
		if (s->kq[i].present)
			log_info("queue %u (kernel): waiting %llu, queue dropped %llu, user dropped %llu",
				 s->queue_first + i, (unsigned long long)s->kq[i].waiting,
				 (unsigned long long)s->kq[i].queue_dropped, (unsigned long long)s->kq[i].user_dropped);
	if (EVD_Enabled()) {
		uint64_t bytes;
		uint32_t files;

		EVD_DirUsage(&bytes, &files);
		log_info("evidence: written %llu, skipped (rate or size) %llu, lost to write errors %llu, old removed %llu bytes; directory %u files, %llu bytes",
			 (unsigned long long)e->evidence_written, (unsigned long long)e->evidence_skipped,
			 (unsigned long long)e->evidence_errors, (unsigned long long)e->evidence_removed_bytes,
			 files, (unsigned long long)bytes);
	}
	if (s->fp_on)
		log_info("fast path: seen %llu, queued %llu (watched %llu, unknown flow %llu, unparsed %llu)",
			 (unsigned long long)s->fp.seen, (unsigned long long)s->fp.queued,
			 (unsigned long long)s->fp.watched, (unsigned long long)s->fp.unknown,
			 (unsigned long long)s->fp.unparsed);
	free(s);
}

static void
log_queue_stats(const struct nfq_stats *qs, unsigned num)
{
	log_info("queue %u: packets %llu in %llu batches (kernel-timestamped %llu), accepted %llu, dropped %llu, enobufs %llu, receive errors %llu, bad messages %llu, verdict errors %llu",
		 num, (unsigned long long)qs->packets, (unsigned long long)qs->batches,
		 (unsigned long long)qs->stamped,
		 (unsigned long long)qs->accepted, (unsigned long long)qs->dropped,
		 (unsigned long long)qs->enobufs, (unsigned long long)qs->recv_errors,
		 (unsigned long long)qs->bad_messages, (unsigned long long)qs->verdict_errors);
}

/* Metrics output (metrics.c): the control thread's snapshot, text buffer and timers. */
#define METRICS_HTTP_REFRESH_NS 1000000000ULL   /* the HTTP snapshot is at most 1 s old */
static struct {
	struct rg_stats *s;
	char *buf;
	size_t cap;
	uint64_t next_http_ns, next_file_ns;
	int file_failing;          /* the last textfile write failed (logged once) */
} met;

static uint64_t
mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* Refresh what is due (force: both): the HTTP listener's snapshot every second, the textfile
 * every metrics.interval seconds. Control thread only. */
static void
metrics_tick(struct daemon *d, int force)
{
	const struct config *cfg = d->cfg;
	uint64_t now = mono_ns();
	int http = cfg->metrics_listen[0] != '\0' && (force || now >= met.next_http_ns);
	int file = cfg->metrics_textfile[0] != '\0' && (force || now >= met.next_file_ns);
	size_t n;

	if (!http && !file)
		return;
	if (met.s == NULL && (met.s = malloc(sizeof(*met.s))) == NULL)
		return;
	collect_stats(d, met.s);
	n = MET_Format(met.s, met.buf, met.cap);
	if (n >= met.cap) {
		size_t cap = n + 1 + n / 4;   /* room for a few more samples */
		char *p = realloc(met.buf, cap);

		if (p == NULL)
			return;
		met.buf = p;
		met.cap = cap;
		n = MET_Format(met.s, met.buf, met.cap);
	}
	if (http) {
		MHTTP_Publish(met.buf, n);
		met.next_http_ns = now + METRICS_HTTP_REFRESH_NS;
	}
	if (file) {
		if (MET_WriteTextfile(cfg->metrics_textfile, met.buf, n) < 0) {
			if (!met.file_failing)
				log_warn("metrics.textfile: cannot write %s", cfg->metrics_textfile);
			met.file_failing = 1;
		} else if (met.file_failing) {
			log_info("metrics.textfile: %s written again", cfg->metrics_textfile);
			met.file_failing = 0;
		}
		met.next_file_ns = now + (uint64_t)cfg->metrics_interval * 1000000000ULL;
	}
}

/* ---- the control socket's view of the daemon (control.h) ---- */

static void
hook_status(void *ctx, struct json *j)
{
	const struct daemon *d = ctx;
	struct rg_stats *s = calloc(1, sizeof(*s));
	struct engine_time now;
	char t[40];

	NFQ_Now(&now);
	JSON_Str(j, "version", PACKAGE_VERSION);
	JSON_U64(j, "pid", (uint64_t)getpid());
	JSON_U64(j, "uptime_s", (now.real_ns - d->start_real_ns) / 1000000000ULL);
	JSON_Str(j, "mode", CFG_ModeName(d->cfg->mode));
	JSON_U64(j, "queue_first", d->cfg->queue_num);
	JSON_U64(j, "queue_count", d->n);
	JSON_U64(j, "threads_running", d->started);
	if (s != NULL) {
		collect_stats(d, s);
		JSON_U64(j, "flows", s->eng.flows_active);
		free(s);
	}
	JSON_U64(j, "flows_max", d->cfg->flows_max);
	JSON_Str(j, "config_file", d->cli->config_file ? d->cli->config_file : "(built-in defaults)");
	if (d->reload_real_ns) {
		EV_FormatTime(d->reload_real_ns, t, sizeof(t));
		JSON_Str(j, "last_reload", t);
		JSON_Str(j, "last_reload_result", d->reload_ok ? "applied" : "rejected");
	} else {
		JSON_Str(j, "last_reload", "never");
	}
	JSON_U64(j, "uid", (uint64_t)geteuid());
}

static void
hook_stats(void *ctx, struct rg_stats *s)
{
	collect_stats(ctx, s);
}

static int
hook_reload(void *ctx, struct json *j)
{
	return reload(ctx, j);
}

static unsigned
hook_engines(void *ctx, struct engine **out, unsigned max)
{
	const struct daemon *d = ctx;
	unsigned n = 0;

	for (unsigned i = 0; i < d->started && n < max; i++)
		if (!atomic_load(&d->workers[i].done))
			out[n++] = d->workers[i].run.eng;
	return n;
}

/* rstguardctl metrics: exactly the text of the textfile and the HTTP listener. */
static size_t
hook_metrics(void *ctx, char *buf, size_t len)
{
	struct rg_stats *s = calloc(1, sizeof(*s));
	size_t n;

	if (s == NULL)
		return 0;
	collect_stats(ctx, s);
	n = MET_Format(s, buf, len);
	free(s);
	return n < len ? n : 0;
}

/* The control socket, then the privilege drop (cfg->user). Returns 0, or 1 (logged). */
static int
open_control(struct daemon *d)
{
	const struct config *cfg = d->cfg;
	struct ctl_hooks h = {
		.ctx = d, .status = hook_status, .stats = hook_stats, .reload = hook_reload,
		.engines = hook_engines, .metrics = hook_metrics,
	};
	uid_t uid = (uid_t)-1;
	gid_t gid = (gid_t)-1;
	int drop = cfg->user && cfg->user[0] != '\0';

	if (drop && PRIV_Lookup(cfg->user, &uid, &gid) < 0)
		return 1;
	if (drop && geteuid() != 0) {
		if (geteuid() == uid)
			drop = 0;   /* already that user (systemd's User=) */
		else {
			log_warnx("user %s is set but rstguard was not started as root or as that user", cfg->user);
			return 1;
		}
	}
	/* The packet path matters more than the socket: without it the daemon still guards the
	 * traffic (another daemon may hold the default path, in tests or a second instance). */
	if (CTL_Open(cfg->control_socket, cfg->control_group, drop ? uid : (uid_t)-1, &h) < 0)
		log_warnx("control socket %s not available: running without it", cfg->control_socket);
	if (drop && PRIV_Drop(uid, gid) < 0)
		return 1;
	return 0;
}

/* Start-up of the daemon proper: signals, one engine and queue per packet thread, the threads.
 * Returns 0, or 1 when a queue or a thread could not be had (what started is shut down). */
static int
start_up(struct daemon *d, const uint8_t seed[16])
{
	struct config *cfg = d->cfg;
	struct engine_time start;
	struct sigaction sa;
	sigset_t all;
	int rc = 0;

	EV_SetAlertRate(cfg->events_alert_rate, cfg->events_alert_burst);
	atomic_store(&ctl.cfg, cfg);

	/* Threads inherit a fully blocked mask; only the control thread takes signals. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	sigfillset(&d->waitmask);
	sigdelset(&d->waitmask, SIGTERM);
	sigdelset(&d->waitmask, SIGINT);
	sigdelset(&d->waitmask, SIGHUP);
	sigdelset(&d->waitmask, SIGUSR1);

	/* The program is pinned before the queues are bound: a build or a system without it binds
	 * nothing. */
	if (cfg->fastpath_enable) {
		d->fp = FP_Open(cfg->fastpath_pin_dir, cfg->flows_max);
		if (d->fp == NULL)
			return 1;
	}
	d->n = cfg->queue_count;
	d->workers = calloc(d->n, sizeof(*d->workers));
	if (d->workers == NULL)
		fatalx("out of memory");
	NFQ_Now(&start);
	d->start_real_ns = start.real_ns;
	for (unsigned i = 0; i < d->n; i++)
		pthread_mutex_init(&d->workers[i].qlock, NULL);
	for (unsigned i = 0; i < d->n; i++) {
		struct nfq_worker *w = &d->workers[i].run;
		struct event_sink *sink = EV_CreateSink(EVENT_RING_BYTES);

		w->ctl = &ctl;
		w->eng = ENG_Create(cfg, cfg->flows_max / d->n, sink, seed, &start);
		if (sink == NULL || w->eng == NULL) {
			log_warnx("cannot allocate the flow table (flows.max %u)", cfg->flows_max);
			rc = 1;
			break;
		}
		/* NAT lookups (docs/nat.md): never fatal, off when conntrack cannot be asked. */
		if (cfg->nat_lookup && ENG_OpenNat(w->eng) < 0 && i == 0)
			log_warnx("nat.lookup: cannot open ctnetlink (%s): translated connections stay two flows",
				  strerror(errno));
		w->q = NFQ_Open((uint16_t)(cfg->queue_num + i), cfg);
		if (w->q == NULL) {
			rc = 1;
			break;
		}
	}
	/* The rules go in once the queues are bound: with --queue-bypass, a packet matched before
	 * that would pass unseen. */
	for (unsigned i = 0; rc == 0 && d->fp && i < d->n; i++)
		ENG_SetFastPath(d->workers[i].run.eng, d->fp);
	if (rc == 0 && cfg->rules_install) {
		if (RULES_Install(cfg, d->fp ? FP_ProgPin(d->fp) : NULL) < 0)
			rc = 1;
		else
			d->rules_added = 1;
	}
	/* The control socket, then the drop to cfg->user: after everything that needs root, before
	 * the packet threads start (capabilities are per thread). */
	if (rc == 0)
		rc = open_control(d);
	for (unsigned i = 0; rc == 0 && i < d->n; i++) {
		if (pthread_create(&d->workers[i].thread, NULL, worker_main, &d->workers[i]) != 0) {
			log_warnx("cannot start the thread of queue %u", cfg->queue_num + i);
			rc = 1;
			break;
		}
		d->started++;
	}
	/* The listener's thread inherits the fully blocked signal mask. */
	if (rc == 0 && cfg->metrics_listen[0] != '\0' && MHTTP_Start(cfg->metrics_listen) < 0)
		rc = 1;
	if (rc == 0)
		metrics_tick(d, 1);
	if (rc == 0) {
		log_info("started: mode %s, queue %u..%u, flows.max %u, events %s",
			 CFG_ModeName(cfg->mode), cfg->queue_num, cfg->queue_num + d->n - 1, cfg->flows_max,
			 cfg->events_path);
		NOTIFY_Send("READY=1");
	}
	return rc;
}

/* The control thread until SIGTERM or SIGINT: reloads, counters, event output. */
static void
control_loop(struct daemon *d)
{
	while (!got_term) {
		struct pollfd pfd[1 + 1 + CTL_MAX_CLIENTS] = { { .fd = EV_WakeFd(), .events = POLLIN } };
		unsigned nc = CTL_PollFds(pfd + 1, 1 + CTL_MAX_CLIENTS);
		int ms = CTL_PollTimeoutMs(CONTROL_POLL_MS);
		struct timespec to = { .tv_sec = 0, .tv_nsec = ms * 1000000L };

		if (ppoll(pfd, 1 + nc, &to, &d->waitmask) < 0)
			for (unsigned i = 0; i < 1 + nc; i++)
				pfd[i].revents = 0;   /* a signal: nothing to read */
		CTL_Serve(pfd + 1, nc);
		if (got_hup) {
			got_hup = 0;
			reload(d, NULL);
		}
		if (got_usr1) {
			got_usr1 = 0;
			log_stats(d);
		}
		EV_Flush();
		metrics_tick(d, 0);
	}
}

/* Stop the packet threads (each judges its held RSTs and ends its flows), write the last
 * events and the counters, and free everything. */
static void
shut_down(struct daemon *d)
{
	NOTIFY_Send("STOPPING=1");
	MHTTP_Stop();
	/* No new packets reach the queues once the rules are gone. */
	if (d->rules_added) {
		RULES_Remove();
		log_info("rules: removed chain %s", RULES_CHAIN);
	}
	atomic_store(&ctl.stop, 1);
	/* Keep draining events while the threads give their last verdicts and end their flows. */
	for (;;) {
		unsigned done = 0;
		struct timespec to = { .tv_sec = 0, .tv_nsec = 20 * 1000000L };

		for (unsigned i = 0; i < d->started; i++)
			done += (unsigned)atomic_load(&d->workers[i].done);
		EV_Flush();
		if (done == d->started)
			break;
		ppoll(NULL, 0, &to, &d->waitmask);
	}
	for (unsigned i = 0; i < d->started; i++)
		pthread_join(d->workers[i].thread, NULL);
	EV_Flush();
	if (d->started)
		log_stats(d);
	for (unsigned i = 0; i < d->started; i++)
		ENG_LogLearned(d->workers[i].run.eng);
	FP_Close(d->fp);
	for (unsigned i = 0; i < d->n; i++) {
		if (i < d->started)
			log_queue_stats(&d->workers[i].qstats, d->cfg->queue_num + i);
		NFQ_Close(d->workers[i].run.q);  /* only those of threads that never started remain */
		ENG_Destroy(d->workers[i].run.eng);
		pthread_mutex_destroy(&d->workers[i].qlock);
	}
	free(d->workers);
	free(met.s);
	free(met.buf);
	memset(&met, 0, sizeof(met));
	EVD_Close();
	EV_Finalise();
	log_info("stopped");
	LOG_Finalise();
	if (d->retired) {
		CFG_Free(d->retired);
		free(d->retired);
	}
	CFG_Free(d->cfg);
	free(d->cfg);
}

/* evidence.dir: open it (and take stock of it) before the engines, which then get their rings.
 * Returns 0 (also when captures are off) or -1 (logged). */
static int
open_evidence(const struct config *cfg)
{
	if (cfg->evidence_dir == NULL || cfg->evidence_dir[0] == '\0')
		return 0;
	if (EVD_Open(cfg->evidence_dir, cfg->evidence_max_bytes, cfg->evidence_rate) < 0)
		return -1;
	log_info("evidence captures in %s (at most %u bytes, %u files per second)", cfg->evidence_dir,
		 cfg->evidence_max_bytes, cfg->evidence_rate);
	return 0;
}

/* -r: analyse a capture with the configuration cfg (freed here). */
static int
run_offline(const struct cli *cli, struct config *cfg)
{
	int rc;

	/* Offline, every event is written: the rate limit protects a live disk from a RST flood,
	 * while a capture's analysis must be complete and reproducible. */
	if (EV_Initialise(cfg->events_path, 1000000000u, 1000000000u) < 0) {
		log_warnx("cannot open the event output %s", cfg->events_path);
		rc = 1;
	} else if (open_evidence(cfg) < 0) {
		rc = 1;
	} else {
		rc = OFF_Run(cfg, cli->read_file, cli->summary);
	}
	EVD_Close();
	EV_Finalise();
	LOG_Finalise();
	CFG_Free(cfg);
	free(cfg);
	return rc;
}

/* The daemon on its queues, with the configuration cfg (freed here). */
static int
run_daemon(const struct cli *cli, struct config *cfg)
{
	struct daemon d = { .cli = cli, .cfg = cfg };
	uint8_t seed[16];
	int rc;

	if (getrandom(seed, sizeof(seed), 0) != (ssize_t)sizeof(seed))
		fatal("getrandom");
	if (EV_Initialise(cfg->events_path, cfg->events_rate, cfg->events_burst) < 0 || open_evidence(cfg) < 0) {
		/* Not fatalx: the configuration is released first (no leak at exit). */
		log_warnx("cannot open the event output %s or the evidence directory", cfg->events_path);
		EVD_Close();
		EV_Finalise();
		LOG_Finalise();
		CFG_Free(cfg);
		free(cfg);
		return 1;
	}
	rc = start_up(&d, seed);
	if (rc == 0)
		control_loop(&d);
	shut_down(&d);
	CTL_Close();   /* after the packet threads: a query they held is freed now */
	return rc;
}

int
main(int argc, char **argv)
{
	struct cli cli = { 0 };
	struct config *cfg = calloc(1, sizeof(*cfg));
	struct config_errors errs = { 0 };

	if (cfg == NULL)
		return 1;
	parse_args(argc, argv, &cli);
	if (build_config(&cli, cfg, &errs) < 0) {
		CFG_PrintErrors(&errs, stderr);
		CFG_FreeErrors(&errs);
		CFG_Free(cfg);
		free(cfg);
		return 1;
	}
	CFG_FreeErrors(&errs);
	if (cli.print_rules) {
		char pin[1100];

		snprintf(pin, sizeof(pin), "%s/selector", cfg->fastpath_pin_dir);
		RULES_Print(cfg, pin, stdout);
		CFG_Free(cfg);
		free(cfg);
		return 0;
	}
	if (cli.check_only) {
		printf("configuration OK\n");
		CFG_Free(cfg);
		free(cfg);
		return 0;
	}
	LOG_Initialise(cfg->log_syslog, (enum log_level)cfg->log_level);
	if (cli.read_file)
		return run_offline(&cli, cfg);
	return run_daemon(&cli, cfg);
}
