/* Metrics in the Prometheus text format (see metrics.h). Runs on the control thread only. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "metrics.h"
#include "packet.h"
#include "rst.h"
#include "stats.h"

enum met_type { MT_COUNTER, MT_GAUGE, MT_HISTOGRAM };

/* Where a family's samples come from. */
enum met_src {
	SRC_ONE,        /* one uint64_t at off in struct rg_stats, no label */
	SRC_LABELS,     /* one sample per entry of labels[]: label=value, its uint64_t at entry.off */
	SRC_INDEXED,    /* uint64_t array at off, n entries, label values from name_of(i) */
	SRC_QUEUE,      /* per queue: uint64_t at off in struct nfq_stats (or per labels[] entry) */
	SRC_KQUEUE,     /* per queue the kernel listed: uint64_t at off in struct stats_kqueue */
	SRC_HOLD_HIST,  /* the hold-time histogram of held RSTs */
	SRC_START_TIME, /* start_real_ns as seconds */
	SRC_BUILD_INFO, /* 1, with the version as a label */
};

/* A fixed label value and the counter it labels. */
struct met_label {
	const char *value;
	size_t off;
};

/* One metric family: the single source of its name, type, help and value. */
struct met_def {
	const char *name;
	enum met_type type;
	enum met_src src;
	size_t off;
	const char *label;                 /* the label's name (SRC_LABELS, SRC_INDEXED; SRC_QUEUE
	                                    * with labels[]: the one beside queue) */
	const struct met_label *labels;    /* SRC_LABELS, SRC_QUEUE: ends with a NULL value */
	unsigned n;                        /* SRC_INDEXED */
	const char *(*name_of)(unsigned);  /* SRC_INDEXED */
	const char *help;
};

#define S(f) offsetof(struct rg_stats, f)
#define Q(f) offsetof(struct nfq_stats, f)
#define K(f) offsetof(struct stats_kqueue, f)
#define LABELS(...) (const struct met_label[]){ __VA_ARGS__, { NULL, 0 } }

static const char *
kind_name(unsigned i)
{
	return PKT_KindName((enum pkt_kind)i);
}

static const char *
cause_name(unsigned i)
{
	return RST_CauseName((enum rst_cause)i);
}

/* The table. Names follow Prometheus conventions: rstguard_ prefix, base units, _total on
 * counters; no label takes an unbounded value (no addresses, no ports). man/rstguard.8 lists
 * the same names (tests/metrics_sync.sh). */
static const struct met_def metrics[] = {
	{ "rstguard_build_info", MT_GAUGE, SRC_BUILD_INFO,
	  .help = "Always 1; the version of the running daemon as a label." },
	{ "rstguard_start_time_seconds", MT_GAUGE, SRC_START_TIME,
	  .help = "When the daemon started, in seconds since the epoch." },
	{ "rstguard_packets_total", MT_COUNTER, SRC_INDEXED, S(eng.kind), "kind",
	  .n = PKT_KIND_MAX, .name_of = kind_name,
	  .help = "Packets seen on the queues, by what the parser made of them." },
	{ "rstguard_untracked_packets_total", MT_COUNTER, SRC_ONE, S(eng.flows_untracked),
	  .help = "TCP packets that could not get a flow (table full)." },
	{ "rstguard_flows", MT_GAUGE, SRC_ONE, S(eng.flows_active),
	  .help = "Flows in the flow table." },
	{ "rstguard_flows_max", MT_GAUGE, SRC_ONE, S(eng.flows_capacity),
	  .help = "Capacity of the flow table (flows.max)." },
	{ "rstguard_flows_created_total", MT_COUNTER, SRC_ONE, S(eng.flows_created),
	  .help = "Flows created." },
	{ "rstguard_flows_midstream_total", MT_COUNTER, SRC_ONE, S(eng.flows_midstream),
	  .help = "Flows created without seeing their handshake." },
	{ "rstguard_flows_reused_total", MT_COUNTER, SRC_ONE, S(eng.flows_reused),
	  .help = "New connections on the tuple of a closed flow." },
	{ "rstguard_flows_ended_total", MT_COUNTER, SRC_LABELS, .label = "reason",
	  .labels = LABELS({ "expired", S(eng.flows_expired) }, { "evicted", S(eng.flows_evicted) }),
	  .help = "Flows removed from the table: expired (idle timeout) or evicted (table full)." },
	{ "rstguard_memory_bytes", MT_GAUGE, SRC_ONE, S(eng.memory_bytes),
	  .help = "Memory of the packet threads' tables." },
	{ "rstguard_rsts_total", MT_COUNTER, SRC_INDEXED, S(eng.rst_cause), "cause",
	  .n = RST_CAUSE_MAX, .name_of = cause_name,
	  .help = "RSTs judged, by the cause they were attributed to (the events' rst.cause)." },
	{ "rstguard_forged_rsts_total", MT_COUNTER, SRC_LABELS, .label = "action",
	  .labels = LABELS({ "detected", S(eng.rst_forged) }, { "revised", S(eng.rst_revised) },
			   { "would_drop", S(eng.rst_would_drop) }, { "dropped", S(eng.rst_dropped) }),
	  .help = "RSTs judged forged (detected), of which revised from genuine by their sender's "
		  "later traffic; RSTs the enforce policy drops (would_drop, in either mode) and "
		  "RSTs dropped." },
	{ "rstguard_held_rsts_total", MT_COUNTER, SRC_ONE, S(eng.rst_held),
	  .help = "RSTs held for judgement (enforce mode)." },
	{ "rstguard_rst_races_total", MT_COUNTER, SRC_ONE, S(eng.rst_race),
	  .help = "RSTs contradicted by their claimed sender's later traffic." },
	{ "rstguard_rst_hold_seconds", MT_HISTOGRAM, SRC_HOLD_HIST,
	  .help = "How long held RSTs were held before their verdict." },
	{ "rstguard_rsts_judged_at_once_total", MT_COUNTER, SRC_ONE, S(eng.pending_full),
	  .help = "RSTs judged at once instead of waiting or being held, because the pending table "
		  "(detector.max_pending) was full." },
	{ "rstguard_revisions_lost_total", MT_COUNTER, SRC_ONE, S(eng.tombstones_full),
	  .help = "RSTs judged genuine but not kept for revision (table full)." },
	{ "rstguard_confirm_probes_sent_total", MT_COUNTER, SRC_ONE, S(eng.confirm_sent),
	  .help = "Confirmation probes sent to the claimed sender of a held RST." },
	{ "rstguard_confirm_probes_total", MT_COUNTER, SRC_LABELS, .label = "outcome",
	  .labels = LABELS({ "ack", S(eng.confirm_ack) }, { "rst", S(eng.confirm_rst) },
			   { "unanswered", S(eng.confirm_timeout) }),
	  .help = "Confirmation probes by outcome: ack (a live socket: the RST was forged), rst "
		  "(the socket was gone: genuine), unanswered (the RST was delivered)." },
	{ "rstguard_confirm_probes_rate_limited_total", MT_COUNTER, SRC_ONE, S(eng.confirm_rate_limited),
	  .help = "Held RSTs not probed because detector.confirm_rate was used up." },
	{ "rstguard_evictions_total", MT_COUNTER, SRC_LABELS, .label = "kind",
	  .labels = LABELS({ "rst", S(eng.evictions_rst) }, { "blackhole", S(eng.evictions_blackhole) }),
	  .help = "Middlebox idle evictions detected: by a RST or as a black hole." },
	{ "rstguard_eviction_watches_lost_total", MT_COUNTER, SRC_ONE, S(eng.watch_full),
	  .help = "Resumptions after a silence not watched for an eviction (table full)." },
	{ "rstguard_keepalive_probes_sent_total", MT_COUNTER, SRC_ONE, S(eng.probes_sent),
	  .help = "Keepalive probes sent." },
	{ "rstguard_keepalive_probes_total", MT_COUNTER, SRC_LABELS, .label = "outcome",
	  .labels = LABELS({ "answered", S(eng.probes_answered) }, { "unanswered", S(eng.probes_unanswered) },
			   { "rst", S(eng.probes_rst) }, { "rate_limited", S(eng.probes_rate_limited) },
			   { "send_error", S(eng.probe_errors) }),
	  .help = "Keepalive probes by outcome (rst: the state was already lost; rate_limited: not "
		  "sent, eviction.probe_rate used up)." },
	{ "rstguard_nat_lookups_total", MT_COUNTER, SRC_LABELS, .label = "result",
	  .labels = LABELS({ "hit", S(eng.nat_hits) }, { "miss", S(eng.nat_misses) }, { "error", S(eng.nat_errors) }),
	  .help = "Conntrack lookups of unknown non-SYN tuples (nat.lookup), by result." },
	{ "rstguard_nat_lookups_skipped_total", MT_COUNTER, SRC_ONE, S(eng.nat_skipped),
	  .help = "Unknown tuples not looked up: nat.lookup_rate used up, or a recent miss." },
	{ "rstguard_nat_joins_total", MT_COUNTER, SRC_LABELS, .label = "result",
	  .labels = LABELS({ "joined", S(eng.nat_joined) }, { "other_half_unseen", S(eng.nat_unjoined) },
			   { "aliases_full", S(eng.nat_aliases_full) }),
	  .help = "Translated halves joined to their connection's flow; of which the other half "
		  "was not seen by this queue; not joined because the alias table was full." },
	{ "rstguard_nat_unmapped_total", MT_COUNTER, SRC_ONE, S(eng.nat_unmapped),
	  .help = "Unknown tuples whose translation could not be found: tracked as they are." },
	{ "rstguard_nat_aliases", MT_GAUGE, SRC_ONE, S(eng.nat_aliases),
	  .help = "Translated connections joined at present (alias table entries)." },
	{ "rstguard_fastpath_packets_total", MT_COUNTER, SRC_LABELS, .label = "result",
	  .labels = LABELS({ "seen", S(fp.seen) }, { "queued", S(fp.queued) }),
	  .help = "Packets the kernel fast path's selector ran on, and those it sent to the queue "
		  "(0 without --fast-path)." },
	{ "rstguard_fastpath_queued_total", MT_COUNTER, SRC_LABELS, .label = "reason",
	  .labels = LABELS({ "watched", S(fp.watched) }, { "unknown_flow", S(fp.unknown) },
			   { "unparsed", S(fp.unparsed) }),
	  .help = "Of the packets the selector queued: because their flow was watched, because their "
		  "direction was unknown to it, because it could not parse them." },
	{ "rstguard_evidence_files_total", MT_COUNTER, SRC_LABELS, .label = "result",
	  .labels = LABELS({ "written", S(eng.evidence_written) }, { "skipped", S(eng.evidence_skipped) },
			   { "error", S(eng.evidence_errors) }),
	  .help = "Evidence captures (evidence.dir): written, skipped (evidence.rate, or larger than "
		  "evidence.max_bytes), lost to write errors." },
	{ "rstguard_evidence_removed_bytes_total", MT_COUNTER, SRC_ONE, S(eng.evidence_removed_bytes),
	  .help = "Bytes of old evidence captures removed to stay under evidence.max_bytes." },
	{ "rstguard_events_written_total", MT_COUNTER, SRC_ONE, S(ev.written),
	  .help = "Events accepted for the event file." },
	{ "rstguard_events_rate_limited_total", MT_COUNTER, SRC_LABELS, .label = "kind",
	  .labels = LABELS({ "routine", S(ev.rate_dropped) }, { "alert", S(ev.alert_rate_dropped) }),
	  .help = "Events refused by the rate limits (events.rate, events.alert_rate)." },
	{ "rstguard_events_lost_total", MT_COUNTER, SRC_LABELS, .label = "reason",
	  .labels = LABELS({ "ring_full", S(ev.ring_dropped) }, { "write_error", S(ev.write_lost) }),
	  .help = "Events lost: a packet thread's ring was full, or writing the file failed." },
	{ "rstguard_queue_packets_total", MT_COUNTER, SRC_QUEUE, Q(packets),
	  .help = "Packets received from the queue." },
	{ "rstguard_queue_batches_total", MT_COUNTER, SRC_QUEUE, Q(batches),
	  .help = "Receive batches read from the queue." },
	{ "rstguard_queue_verdicts_total", MT_COUNTER, SRC_QUEUE, .label = "verdict",
	  .labels = LABELS({ "accept", Q(accepted) }, { "drop", Q(dropped) }),
	  .help = "Verdicts given for the queue's packets, by verdict." },
	{ "rstguard_queue_enobufs_total", MT_COUNTER, SRC_QUEUE, Q(enobufs),
	  .help = "Times the kernel could not queue to the daemon (ENOBUFS): packets dropped or, "
		  "fail-open, accepted unseen." },
	{ "rstguard_queue_errors_total", MT_COUNTER, SRC_QUEUE, .label = "kind",
	  .labels = LABELS({ "receive", Q(recv_errors) }, { "bad_message", Q(bad_messages) },
			   { "verdict", Q(verdict_errors) }),
	  .help = "Errors on the queue: receive errors, messages without a packet id, failed verdicts." },
	{ "rstguard_kernel_queue_waiting", MT_GAUGE, SRC_KQUEUE, K(waiting),
	  .help = "Packets the kernel holds for the queue, awaiting a verdict "
		  "(/proc/net/netfilter/nfnetlink_queue)." },
	{ "rstguard_kernel_queue_dropped_total", MT_COUNTER, SRC_KQUEUE, K(queue_dropped),
	  .help = "Packets the kernel dropped (or, fail-open, accepted) because the queue was full." },
	{ "rstguard_kernel_queue_user_dropped_total", MT_COUNTER, SRC_KQUEUE, K(user_dropped),
	  .help = "Packets the kernel dropped because the daemon's socket buffer was full." },
};

#define N_METRICS (sizeof(metrics) / sizeof(metrics[0]))

static const char *const type_names[] = { "counter", "gauge", "histogram" };

/* An output buffer that counts what it could not hold, like snprintf. */
struct out {
	char *buf;
	size_t len, off;
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;
	size_t room = o->off < o->len ? o->len - o->off : 0;

	va_start(ap, fmt);
	n = vsnprintf(room ? o->buf + o->off : NULL, room, fmt, ap);
	va_end(ap);
	if (n > 0)
		o->off += (size_t)n;
}

/* A label value with \, " and newline escaped (the format's only escapes). */
static void
put_label_value(struct out *o, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			put(o, "\\%c", *v);
		else if (*v == '\n')
			put(o, "\\n");
		else
			put(o, "%c", *v);
	}
}

static uint64_t
u64_at(const void *base, size_t off)
{
	uint64_t v;

	memcpy(&v, (const char *)base + off, sizeof(v));
	return v;
}

static void
put_hold_histogram(struct out *o, const char *name, const struct rg_stats *s)
{
	uint64_t cum = 0, sum = s->eng.hold_ms_sum;

	for (unsigned b = 0; b < ENG_HOLD_BUCKETS - 1; b++) {
		uint32_t ms = ENG_HoldBucketsMs[b];

		cum += s->eng.hold_ms_bucket[b];
		put(o, "%s_bucket{le=\"%u.%03u\"} %llu\n", name, ms / 1000, ms % 1000, (unsigned long long)cum);
	}
	cum += s->eng.hold_ms_bucket[ENG_HOLD_BUCKETS - 1];
	put(o, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)cum);
	put(o, "%s_sum %llu.%03llu\n", name, (unsigned long long)(sum / 1000), (unsigned long long)(sum % 1000));
	put(o, "%s_count %llu\n", name, (unsigned long long)cum);
}

static void
put_family(struct out *o, const struct met_def *m, const struct rg_stats *s)
{
	unsigned nq = s->nqueues < STATS_QUEUES_MAX ? s->nqueues : STATS_QUEUES_MAX;

	put(o, "# HELP %s %s\n# TYPE %s %s\n", m->name, m->help, m->name, type_names[m->type]);
	switch (m->src) {
	case SRC_ONE:
		put(o, "%s %llu\n", m->name, (unsigned long long)u64_at(s, m->off));
		break;
	case SRC_LABELS:
		for (const struct met_label *l = m->labels; l->value; l++)
			put(o, "%s{%s=\"%s\"} %llu\n", m->name, m->label, l->value,
			    (unsigned long long)u64_at(s, l->off));
		break;
	case SRC_INDEXED:
		for (unsigned i = 0; i < m->n; i++)
			put(o, "%s{%s=\"%s\"} %llu\n", m->name, m->label, m->name_of(i),
			    (unsigned long long)u64_at(s, m->off + i * sizeof(uint64_t)));
		break;
	case SRC_QUEUE:
		for (unsigned i = 0; i < nq; i++) {
			unsigned num = (unsigned)s->queue_first + i;

			if (m->labels == NULL) {
				put(o, "%s{queue=\"%u\"} %llu\n", m->name, num,
				    (unsigned long long)u64_at(&s->q[i], m->off));
				continue;
			}
			for (const struct met_label *l = m->labels; l->value; l++)
				put(o, "%s{queue=\"%u\",%s=\"%s\"} %llu\n", m->name, num, m->label,
				    l->value, (unsigned long long)u64_at(&s->q[i], l->off));
		}
		break;
	case SRC_KQUEUE:
		for (unsigned i = 0; s->kq_ok && i < nq; i++)
			if (s->kq[i].present)
				put(o, "%s{queue=\"%u\"} %llu\n", m->name, (unsigned)s->queue_first + i,
				    (unsigned long long)u64_at(&s->kq[i], m->off));
		break;
	case SRC_HOLD_HIST:
		put_hold_histogram(o, m->name, s);
		break;
	case SRC_START_TIME:
		put(o, "%s %llu.%03llu\n", m->name, (unsigned long long)(s->start_real_ns / 1000000000u),
		    (unsigned long long)(s->start_real_ns % 1000000000u / 1000000u));
		break;
	case SRC_BUILD_INFO:
		put(o, "%s{version=\"", m->name);
		put_label_value(o, PACKAGE_VERSION);
		put(o, "\"} 1\n");
		break;
	}
}

size_t
MET_Format(const struct rg_stats *s, char *buf, size_t len)
{
	struct out o = { .buf = buf, .len = len, .off = 0 };

	if (len > 0)
		buf[0] = '\0';
	for (size_t i = 0; i < N_METRICS; i++)
		put_family(&o, &metrics[i], s);
	return o.off;
}

void
MET_ForEach(void (*fn)(const char *name, const char *type, const char *help, void *arg), void *arg)
{
	for (size_t i = 0; i < N_METRICS; i++)
		fn(metrics[i].name, type_names[metrics[i].type], metrics[i].help, arg);
}

int
MET_ParseListen(const char *s, struct sockaddr_storage *ss, socklen_t *sslen)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *colon, *hs = s, *he;
	unsigned long port = 0;
	size_t hl;

	memset(ss, 0, sizeof(*ss));
	if (s[0] == '[') {
		hs = s + 1;
		he = strchr(hs, ']');
		if (he == NULL || he[1] != ':')
			return -1;
		colon = he + 1;
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL || memchr(s, ':', (size_t)(colon - s)) != NULL)
			return -1;   /* an IPv6 address needs its brackets */
		he = colon;
	}
	hl = (size_t)(he - hs);
	if (hl == 0 || hl >= sizeof(host))
		return -1;
	memcpy(host, hs, hl);
	host[hl] = '\0';
	/* The port: 1..65535, digits only. */
	if (colon[1] == '\0' || strlen(colon + 1) > 5)
		return -1;
	for (const char *p = colon + 1; *p; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		port = port * 10 + (unsigned long)(*p - '0');
	}
	if (port < 1 || port > 65535)
		return -1;
	if (s[0] == '[') {
		struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;

		if (inet_pton(AF_INET6, host, &a6->sin6_addr) != 1)
			return -1;
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)port);
		*sslen = sizeof(*a6);
	} else {
		struct sockaddr_in *a4 = (struct sockaddr_in *)ss;

		if (inet_pton(AF_INET, host, &a4->sin_addr) != 1)
			return -1;
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)port);
		*sslen = sizeof(*a4);
	}
	return 0;
}

int
MET_WriteTextfile(const char *path, const char *text, size_t len)
{
	char tmp[PATH_MAX];
	size_t done = 0;
	int fd, err;

	/* Not named *.prom, so node_exporter never reads a half-written file. */
	if (snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", path, (long)getpid()) >= (int)sizeof(tmp)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	(void)unlink(tmp);   /* left by a crash; O_EXCL below refuses anything that appears */
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	/* The umask (UMask=0077 under the unit) must not hide it from node_exporter. */
	if (fchmod(fd, 0644) < 0)
		goto fail;
	while (done < len) {
		ssize_t w = write(fd, text + done, len - done);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			if (w == 0)
				errno = EIO;
			goto fail;
		}
		done += (size_t)w;
	}
	if (close(fd) < 0) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) < 0)
		goto fail;
	return 0;
fail:
	err = errno;
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	errno = err;
	return -1;
}
