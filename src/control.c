/* The control socket (control.h). One thread (the control thread) serves every client with
 * non-blocking sockets and ppoll: a client sends a line, gets a line, and may send another.
 * Flow-table questions become one query per packet thread (ENG_PostQuery), answered by the
 * threads themselves in bounded chunks; only one such question is open at a time, and other
 * clients asking one wait their turn. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "control.h"
#include "ctlreq.h"
#include "flow.h"
#include "log.h"
#include "packet.h"

#define QUERY_TIMEOUT_MS 10000
#define FLOWS_DEFAULT_LIMIT 100

enum client_state { C_FREE = 0, C_READ, C_QUERY, C_WRITE };

struct client {
	int fd;
	enum client_state state;
	uint64_t deadline_ms;
	char in[CTL_REQUEST_MAX];
	size_t inlen;
	char *out;
	size_t outlen, outoff;
	int close_after;              /* the request was refused: close once the answer is out */
	struct ctlreq req;            /* a flows or timeouts request waiting for its query */
	struct ucred cred;
};

/* The open flow-table question: one query per packet thread. */
struct query_run {
	int active;
	unsigned client;
	enum eng_query_kind kind;
	unsigned n;
	struct eng_query *q[STATS_QUEUES_MAX];
	uint64_t started_ms;
	int abandoned;                /* timed out: the queries stay allocated until CTL_Close */
};

static struct {
	int fd;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct ctl_hooks hooks;
	struct client c[CTL_MAX_CLIENTS];
	struct query_run qr;
} ctls = { .fd = -1 };

static uint64_t
now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000u + (uint64_t)t.tv_nsec / 1000000u;
}

/* ---- the socket ---- */

/* Is something listening at path? (A socket nobody listens on is a dead daemon's.) */
static int
socket_alive(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), alive;

	if (fd < 0)
		return 0;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	alive = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return alive;
}

static int
make_parent(const char *path, uid_t owner)
{
	char dir[sizeof(ctls.path)];
	char *slash;
	struct stat st;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash == NULL || slash == dir)
		return 0;
	*slash = '\0';
	if (lstat(dir, &st) == 0) {
		if (!S_ISDIR(st.st_mode)) {
			log_warnx("control: %s is not a directory", dir);
			return -1;
		}
		return 0;
	}
	/* Only the last level is created (as /run/rstguard), world-searchable: the socket's own
	 * mode and group say who may connect. */
	if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
		log_warn("control: mkdir %s", dir);
		return -1;
	}
	if (owner != (uid_t)-1 && chown(dir, owner, (gid_t)-1) < 0) {
		log_warn("control: chown %s", dir);
		return -1;
	}
	return 0;
}

int
CTL_Open(const char *path, const char *grp, uid_t owner, const struct ctl_hooks *hooks)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	gid_t gid = (gid_t)-1;
	mode_t old;
	int fd;

	ctls.hooks = *hooks;
	if (path == NULL || path[0] == '\0')
		return 0;
	if (strlen(path) >= sizeof(sa.sun_path)) {
		log_warnx("control: socket path too long: %s", path);
		return -1;
	}
	if (grp != NULL && grp[0] != '\0') {
		struct group *g = getgrnam(grp);

		if (g == NULL) {
			log_warnx("control: unknown group %s", grp);
			return -1;
		}
		gid = g->gr_gid;
	}
	if (make_parent(path, owner) < 0)
		return -1;
	if (lstat(path, &st) == 0) {
		/* Never follow a link or remove a file that is not a socket: the path may be
		 * mistyped into someone's data. */
		if (!S_ISSOCK(st.st_mode)) {
			log_warnx("control: %s exists and is not a socket: refusing to replace it", path);
			return -1;
		}
		if (socket_alive(path)) {
			log_warnx("control: %s is in use by a running daemon", path);
			return -1;
		}
		if (unlink(path) < 0) {
			log_warn("control: cannot remove the stale socket %s", path);
			return -1;
		}
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		log_warn("control: socket");
		return -1;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	old = umask(0117);   /* the socket is born 0660: no moment when others may connect */
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		umask(old);
		log_warn("control: bind %s", path);
		close(fd);
		return -1;
	}
	umask(old);
	if (((gid != (gid_t)-1 || owner != (uid_t)-1) && chown(path, owner, gid) < 0) || chmod(path, 0660) < 0 ||
	    listen(fd, CTL_MAX_CLIENTS) < 0) {
		log_warn("control: %s", path);
		unlink(path);
		close(fd);
		return -1;
	}
	ctls.fd = fd;
	snprintf(ctls.path, sizeof(ctls.path), "%s", path);
	log_info("control socket %s", path);
	return 0;
}

/* ---- answers ---- */

static void
answer_error(struct json *j, const char *msg)
{
	JSON_Bool(j, "ok", 0);
	JSON_Str(j, "error", msg);
}

static void
stats_json(struct json *j, const struct rg_stats *s)
{
	const struct engine_stats *e = &s->eng;

	JSON_U64(j, "packets", e->packets);
	JSON_ObjectOpen(j, "parse");
	JSON_U64(j, "tcp", e->kind[PKT_TCP]);
	JSON_U64(j, "not_tcp", e->kind[PKT_NOT_TCP]);
	JSON_U64(j, "fragment", e->kind[PKT_FRAGMENT]);
	JSON_U64(j, "truncated", e->kind[PKT_TRUNCATED]);
	JSON_U64(j, "malformed", e->kind[PKT_MALFORMED]);
	JSON_ObjectClose(j);
	JSON_ObjectOpen(j, "flows");
	JSON_U64(j, "created", e->flows_created);
	JSON_U64(j, "midstream", e->flows_midstream);
	JSON_U64(j, "expired", e->flows_expired);
	JSON_U64(j, "evicted", e->flows_evicted);
	JSON_U64(j, "reused", e->flows_reused);
	JSON_U64(j, "untracked_packets", e->flows_untracked);
	JSON_U64(j, "active", e->flows_active);
	JSON_U64(j, "capacity", e->flows_capacity);
	JSON_ObjectClose(j);
	JSON_ObjectOpen(j, "rst");
	JSON_U64(j, "total", e->rst);
	for (int c = 0; c < RST_CAUSE_MAX; c++)
		JSON_U64(j, RST_CauseName((enum rst_cause)c), e->rst_cause[c]);
	JSON_ObjectClose(j);
	JSON_ObjectOpen(j, "forged");
	JSON_U64(j, "detected", e->rst_forged);
	JSON_U64(j, "dropped", e->rst_dropped);
	JSON_U64(j, "would_drop", e->rst_would_drop);
	JSON_U64(j, "held", e->rst_held);
	JSON_U64(j, "races", e->rst_race);
	JSON_U64(j, "pending_full", e->pending_full);
	JSON_U64(j, "revised", e->rst_revised);
	JSON_U64(j, "tombstones_full", e->tombstones_full);
	JSON_ObjectClose(j);
	JSON_ObjectOpen(j, "hold_ms");   /* held RSTs by hold time: bucket upper bounds in ms */
	for (unsigned b = 0; b < ENG_HOLD_BUCKETS; b++) {
		char le[16];

		if (b < ENG_HOLD_BUCKETS - 1)
			snprintf(le, sizeof(le), "le_%u", ENG_HoldBucketsMs[b]);
		else
			snprintf(le, sizeof(le), "more");
		JSON_U64(j, le, e->hold_ms_bucket[b]);
	}
	JSON_U64(j, "sum", e->hold_ms_sum);
	JSON_ObjectClose(j);
	JSON_ObjectOpen(j, "confirm");
	JSON_U64(j, "sent", e->confirm_sent);
	JSON_U64(j, "answered_ack", e->confirm_ack);
	JSON_U64(j, "answered_rst", e->confirm_rst);
	JSON_U64(j, "unanswered", e->confirm_timeout);
	JSON_U64(j, "rate_limited", e->confirm_rate_limited);
	JSON_ObjectClose(j);
	JSON_ObjectOpen(j, "evictions");
	JSON_U64(j, "rst", e->evictions_rst);
	JSON_U64(j, "blackhole", e->evictions_blackhole);
	JSON_U64(j, "watch_full", e->watch_full);
	JSON_ObjectClose(j);
	JSON_ObjectOpen(j, "probes");
	JSON_U64(j, "sent", e->probes_sent);
	JSON_U64(j, "answered", e->probes_answered);
	JSON_U64(j, "unanswered", e->probes_unanswered);
	JSON_U64(j, "answered_rst", e->probes_rst);
	JSON_U64(j, "rate_limited", e->probes_rate_limited);
	JSON_U64(j, "errors", e->probe_errors);
	JSON_ObjectClose(j);
	JSON_ObjectOpen(j, "nat");
	JSON_U64(j, "lookups", e->nat_lookups);
	JSON_U64(j, "hits", e->nat_hits);
	JSON_U64(j, "misses", e->nat_misses);
	JSON_U64(j, "errors", e->nat_errors);
	JSON_U64(j, "skipped", e->nat_skipped);
	JSON_U64(j, "joined", e->nat_joined);
	JSON_U64(j, "other_half_unseen", e->nat_unjoined);
	JSON_U64(j, "unmapped", e->nat_unmapped);
	JSON_U64(j, "aliases", e->nat_aliases);
	JSON_U64(j, "aliases_full", e->nat_aliases_full);
	JSON_ObjectClose(j);
	if (s->fp_on) {
		JSON_ObjectOpen(j, "fast_path");
		JSON_U64(j, "seen", s->fp.seen);
		JSON_U64(j, "queued", s->fp.queued);
		JSON_U64(j, "watched", s->fp.watched);
		JSON_U64(j, "unknown_flow", s->fp.unknown);
		JSON_U64(j, "unparsed", s->fp.unparsed);
		JSON_ObjectClose(j);
	}
	JSON_ObjectOpen(j, "evidence");
	JSON_U64(j, "written", e->evidence_written);
	JSON_U64(j, "skipped", e->evidence_skipped);
	JSON_U64(j, "errors", e->evidence_errors);
	JSON_U64(j, "removed_bytes", e->evidence_removed_bytes);
	JSON_ObjectClose(j);
	JSON_ObjectOpen(j, "events");
	JSON_U64(j, "written", s->ev.written);
	JSON_U64(j, "rate_limited", s->ev.rate_dropped + s->ev.alert_rate_dropped);
	JSON_U64(j, "alerts_rate_limited", s->ev.alert_rate_dropped);
	JSON_U64(j, "ring_full", s->ev.ring_dropped);
	JSON_U64(j, "write_lost", s->ev.write_lost);
	JSON_ObjectClose(j);
	JSON_ArrayOpen(j, "queues");
	for (unsigned i = 0; i < s->nqueues && i < STATS_QUEUES_MAX; i++) {
		const struct nfq_stats *q = &s->q[i];

		JSON_ObjectOpen(j, NULL);
		JSON_U64(j, "queue", s->queue_first + i);
		JSON_U64(j, "packets", q->packets);
		JSON_U64(j, "batches", q->batches);
		JSON_U64(j, "accepted", q->accepted);
		JSON_U64(j, "dropped", q->dropped);
		JSON_U64(j, "enobufs", q->enobufs);
		JSON_U64(j, "recv_errors", q->recv_errors);
		JSON_U64(j, "bad_messages", q->bad_messages);
		JSON_U64(j, "verdict_errors", q->verdict_errors);
		JSON_U64(j, "stamped", q->stamped);
		if (s->kq_ok && s->kq[i].present) {
			JSON_U64(j, "kernel_waiting", s->kq[i].waiting);
			JSON_U64(j, "kernel_queue_dropped", s->kq[i].queue_dropped);
			JSON_U64(j, "kernel_user_dropped", s->kq[i].user_dropped);
		}
		JSON_ObjectClose(j);
	}
	JSON_ArrayClose(j);
}

/* Check that r has no member but "command" and those named in allowed (NULL-terminated). */
static const char *
unknown_member(const struct ctlreq *r, const char *const *allowed)
{
	for (unsigned i = 0; i < r->n; i++) {
		int ok = strcmp(r->m[i].key, "command") == 0;

		for (const char *const *a = allowed; !ok && *a; a++)
			ok = strcmp(r->m[i].key, *a) == 0;
		if (!ok)
			return r->m[i].key;
	}
	return NULL;
}

/* Validate a flows request into q's filters. Returns NULL or what is wrong. */
static const char *
flows_filters(const struct ctlreq *r, struct eng_query *q)
{
	const struct ctlreq_member *m;

	q->kind = ENG_Q_FLOWS;
	q->ip_family = 0;
	q->port = 0;
	q->state = -1;
	q->limit = FLOWS_DEFAULT_LIMIT;
	if ((m = CTLREQ_Get(r, "ip")) != NULL) {
		if (m->type != CTLREQ_STRING)
			return "ip: an IPv4 or IPv6 address";
		memset(q->ip, 0, sizeof(q->ip));
		if (inet_pton(AF_INET, m->str, q->ip) == 1)
			q->ip_family = AF_INET;
		else if (inet_pton(AF_INET6, m->str, q->ip) == 1)
			q->ip_family = AF_INET6;
		else
			return "ip: an IPv4 or IPv6 address";
	}
	if ((m = CTLREQ_Get(r, "port")) != NULL) {
		if (m->type != CTLREQ_NUMBER || m->num < 1 || m->num > 65535)
			return "port: 1..65535";
		q->port = (uint32_t)m->num;
	}
	if ((m = CTLREQ_Get(r, "state")) != NULL) {
		if (m->type != CTLREQ_STRING)
			return "state: a TCP state name";
		for (int s = TCP_NONE + 1; s < TCP_STATE_MAX; s++)
			if (strcmp(m->str, FLOW_StateName((enum tcp_state)s)) == 0)
				q->state = s;
		if (q->state < 0)
			return "state: one of syn_sent, syn_recv, established, fin_wait, closing, time_wait, closed";
	}
	if ((m = CTLREQ_Get(r, "limit")) != NULL) {
		if (m->type != CTLREQ_NUMBER || m->num < 1 || m->num > ENG_QUERY_MAX_FLOWS)
			return "limit: 1..1000";
		q->limit = (uint32_t)m->num;
	}
	return NULL;
}

int
CTL_HandleLine(const char *line, size_t len, struct json *j)
{
	static const char *const none[] = { NULL };
	static const char *const flow_args[] = { "ip", "port", "state", "limit", NULL };
	struct ctlreq r;
	const struct ctlreq_member *cmd;
	const char *err, *bad;
	char msg[96];

	if (CTLREQ_Parse(line, len, &r, &err) < 0) {
		snprintf(msg, sizeof(msg), "malformed request: %s", err);
		answer_error(j, msg);
		return 0;
	}
	cmd = CTLREQ_Get(&r, "command");
	if (cmd == NULL || cmd->type != CTLREQ_STRING) {
		answer_error(j, "no command");
		return 0;
	}
	bad = unknown_member(&r, strcmp(cmd->str, "flows") == 0 ? flow_args : none);
	if (bad != NULL) {
		snprintf(msg, sizeof(msg), "unknown argument '%.40s' for %.20s", bad, cmd->str);
		answer_error(j, msg);
		return 0;
	}
	if (strcmp(cmd->str, "flows") == 0) {
		struct eng_query probe;

		err = flows_filters(&r, &probe);
		if (err != NULL) {
			answer_error(j, err);
			return 0;
		}
		return 1;
	}
	if (strcmp(cmd->str, "timeouts") == 0)
		return 1;
	if (strcmp(cmd->str, "status") == 0) {
		JSON_Bool(j, "ok", 1);
		if (ctls.hooks.status)
			ctls.hooks.status(ctls.hooks.ctx, j);
		return 0;
	}
	if (strcmp(cmd->str, "stats") == 0) {
		struct rg_stats *s = calloc(1, sizeof(*s));

		if (s == NULL) {
			answer_error(j, "out of memory");
			return 0;
		}
		if (ctls.hooks.stats)
			ctls.hooks.stats(ctls.hooks.ctx, s);
		JSON_Bool(j, "ok", 1);
		stats_json(j, s);
		free(s);
		return 0;
	}
	if (strcmp(cmd->str, "reload") == 0) {
		if (ctls.hooks.reload == NULL) {
			answer_error(j, "reload not available");
		} else if (ctls.hooks.reload(ctls.hooks.ctx, j) == 0) {
			JSON_Bool(j, "ok", 1);
		}
		return 0;
	}
	if (strcmp(cmd->str, "metrics") == 0) {
		char *buf = ctls.hooks.metrics ? malloc(CTL_ANSWER_MAX / 2) : NULL;
		size_t n = buf ? ctls.hooks.metrics(ctls.hooks.ctx, buf, CTL_ANSWER_MAX / 2) : (size_t)-1;

		if (n == (size_t)-1)
			answer_error(j, "metrics not available in this build");
		else if (n == 0)
			answer_error(j, "metrics too large");
		else {
			JSON_Bool(j, "ok", 1);
			JSON_StrN(j, "metrics", buf, n);
		}
		free(buf);
		return 0;
	}
	snprintf(msg, sizeof(msg), "unknown command '%.40s'", cmd->str);
	answer_error(j, msg);
	return 0;
}

/* ---- flow-table questions ---- */

static const char *
habit_name(unsigned h)
{
	static const char *const names[] = { "unknown", "incrementing", "constant", "random" };

	return h < 4 ? names[h] : "unknown";
}

static int
by_recent(const void *a, const void *b)
{
	const struct eng_flow_info *x = *(const struct eng_flow_info *const *)a;
	const struct eng_flow_info *y = *(const struct eng_flow_info *const *)b;

	return x->last_mono_ms < y->last_mono_ms ? 1 : x->last_mono_ms > y->last_mono_ms ? -1 : 0;
}

static void
side_json(struct json *j, const char *key, const struct eng_flow_side *d, int v4)
{
	JSON_ObjectOpen(j, key);
	JSON_U64(j, "pkts", d->pkts);
	JSON_U64(j, "bytes", d->bytes);
	JSON_U64(j, "ttl_base", d->ttl_base);
	JSON_U64(j, "ttl_last", d->ttl_last);
	JSON_U64(j, "ttl_spread", d->ttl_spread);
	if (v4) {
		JSON_Str(j, "ipid_habit", habit_name(d->ipid_habit));
		JSON_U64(j, "ipid_last", d->ipid);
	}
	JSON_ObjectClose(j);
}

static void
flows_answer(struct json *j, struct query_run *qr)
{
	const struct eng_flow_info **all;
	uint32_t total = 0, matched = 0, limit = qr->q[0]->limit;
	uint64_t now = now_ms();

	for (unsigned i = 0; i < qr->n; i++) {
		total += qr->q[i]->n;
		matched += qr->q[i]->matched;
	}
	all = calloc(total ? total : 1, sizeof(*all));
	if (all == NULL) {
		answer_error(j, "out of memory");
		return;
	}
	total = 0;
	for (unsigned i = 0; i < qr->n; i++)
		for (uint32_t k = 0; k < qr->q[i]->n; k++)
			all[total++] = &qr->q[i]->flows[k];
	qsort(all, total, sizeof(*all), by_recent);
	JSON_Bool(j, "ok", 1);
	JSON_U64(j, "matched", matched);
	JSON_U64(j, "listed", total < limit ? total : limit);
	JSON_ArrayOpen(j, "flows");
	for (uint32_t i = 0; i < total && i < limit; i++) {
		const struct eng_flow_info *f = all[i];
		char a[48];

		JSON_ObjectOpen(j, NULL);
		JSON_U64(j, "flow_id", f->flow_id);
		PKT_FormatAddr(f->family, f->cli, a, sizeof(a));
		JSON_Str(j, "src_ip", a);
		JSON_U64(j, "src_port", f->cport);
		PKT_FormatAddr(f->family, f->srv, a, sizeof(a));
		JSON_Str(j, "dest_ip", a);
		JSON_U64(j, "dest_port", f->sport);
		JSON_Str(j, "state", FLOW_StateName((enum tcp_state)f->state));
		JSON_Bool(j, "midstream", f->midstream);
		JSON_U64(j, "idle_ms", now > f->last_mono_ms ? now - f->last_mono_ms : 0);
		JSON_U64(j, "age_s", f->age_s);
		side_json(j, "toserver", &f->dir[0], f->family == AF_INET);
		side_json(j, "toclient", &f->dir[1], f->family == AF_INET);
		JSON_ObjectClose(j);
	}
	JSON_ArrayClose(j);
	free(all);
}

static void
timeouts_answer(struct json *j, struct query_run *qr)
{
	static struct eng_timeout_info m[ENG_QUERY_MAX_NETS];
	unsigned n = 0;

	/* Each packet thread learns on its own: a network seen by several is merged. */
	for (unsigned i = 0; i < qr->n; i++) {
		for (uint32_t k = 0; k < qr->q[i]->nnets; k++) {
			const struct eng_timeout_info *t = &qr->q[i]->nets[k];
			unsigned x;

			for (x = 0; x < n; x++)
				if (m[x].family == t->family && memcmp(m[x].addr, t->addr, 16) == 0)
					break;
			if (x == n) {
				if (n == ENG_QUERY_MAX_NETS)
					continue;
				m[n++] = *t;
				continue;
			}
			if (t->max_survived_ms > m[x].max_survived_ms)
				m[x].max_survived_ms = t->max_survived_ms;
			if (t->min_evicted_ms && (!m[x].min_evicted_ms || t->min_evicted_ms < m[x].min_evicted_ms))
				m[x].min_evicted_ms = t->min_evicted_ms;
			m[x].survived += t->survived;
			m[x].evicted += t->evicted;
		}
	}
	JSON_Bool(j, "ok", 1);
	JSON_ArrayOpen(j, "networks");
	for (unsigned i = 0; i < n; i++) {
		char a[48], net[64];

		PKT_FormatAddr(m[i].family, m[i].addr, a, sizeof(a));
		snprintf(net, sizeof(net), "%s/%u", a, m[i].prefix);
		JSON_ObjectOpen(j, NULL);
		JSON_Str(j, "network", net);
		JSON_Double(j, "longest_survived_s", m[i].max_survived_ms / 1000.0, 1);
		JSON_U64(j, "survived", m[i].survived);
		if (m[i].min_evicted_ms)
			JSON_Double(j, "shortest_evicted_s", m[i].min_evicted_ms / 1000.0, 1);
		JSON_U64(j, "evicted", m[i].evicted);
		JSON_ObjectClose(j);
	}
	JSON_ArrayClose(j);
}

/* ---- clients ---- */

static void
client_close(unsigned i)
{
	struct client *c = &ctls.c[i];

	close(c->fd);
	free(c->out);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
	c->state = C_FREE;
}

/* Queue the answer j holds for client i. */
static void
client_answer(unsigned i, struct json *j, char *buf)
{
	struct client *c = &ctls.c[i];
	size_t n = JSON_Finish(j);

	if (n == 0) {
		/* Too large to write whole: say so rather than cut a line in the middle. */
		n = (size_t)snprintf(buf, CTL_ANSWER_MAX, "{\"ok\":false,\"error\":\"answer too large\"}\n");
	}
	free(c->out);
	c->out = buf;
	c->outlen = n;
	c->outoff = 0;
	c->state = C_WRITE;
	c->deadline_ms = now_ms() + CTL_CLIENT_TIMEOUT_MS;
}

/* Answer client i with an error and close it once written (refused requests). */
static void
client_refuse(unsigned i, const char *why)
{
	struct client *c = &ctls.c[i];
	char *buf = malloc(256);
	struct json j;

	log_debug("control: refused a request from pid %ld uid %ld: %s", (long)c->cred.pid,
		  (long)c->cred.uid, why);
	if (buf == NULL) {
		client_close(i);
		return;
	}
	JSON_Init(&j, buf, 256);
	answer_error(&j, why);
	client_answer(i, &j, buf);
	c->close_after = 1;
}

static void
start_query(unsigned i)
{
	struct client *c = &ctls.c[i];
	struct query_run *qr = &ctls.qr;
	struct engine *eng[STATS_QUEUES_MAX];
	const struct ctlreq_member *cmd = CTLREQ_Get(&c->req, "command");
	unsigned n = ctls.hooks.engines ? ctls.hooks.engines(ctls.hooks.ctx, eng, STATS_QUEUES_MAX) : 0;

	if (n == 0) {
		client_refuse(i, "no packet thread is running");
		c->close_after = 0;
		return;
	}
	memset(qr, 0, sizeof(*qr));
	qr->kind = strcmp(cmd->str, "flows") == 0 ? ENG_Q_FLOWS : ENG_Q_TIMEOUTS;
	for (unsigned k = 0; k < n; k++) {
		qr->q[k] = malloc(sizeof(*qr->q[k]));
		if (qr->q[k] == NULL) {
			for (unsigned x = 0; x < k; x++)
				free(qr->q[x]);
			client_refuse(i, "out of memory");
			return;
		}
		qr->q[k]->kind = qr->kind;
		if (qr->kind == ENG_Q_FLOWS)
			flows_filters(&c->req, qr->q[k]);
	}
	qr->n = n;
	qr->client = i;
	qr->active = 1;
	qr->started_ms = now_ms();
	for (unsigned k = 0; k < n; k++)
		ENG_PostQuery(eng[k], qr->q[k]);
}

static void
finish_query(void)
{
	struct query_run *qr = &ctls.qr;
	char *buf;
	struct json j;

	for (unsigned k = 0; k < qr->n; k++)
		if (!atomic_load_explicit(&qr->q[k]->done, memory_order_acquire)) {
			if (now_ms() - qr->started_ms < QUERY_TIMEOUT_MS)
				return;
			/* A packet thread that no longer answers (it ended): the queries may still be
			 * referenced by it, so they are kept until CTL_Close. */
			qr->abandoned = 1;
			qr->active = 0;
			client_refuse(qr->client, "a packet thread did not answer in time");
			return;
		}
	buf = malloc(CTL_ANSWER_MAX);
	if (buf == NULL) {
		client_refuse(qr->client, "out of memory");
	} else {
		JSON_Init(&j, buf, CTL_ANSWER_MAX);
		if (qr->kind == ENG_Q_FLOWS)
			flows_answer(&j, qr);
		else
			timeouts_answer(&j, qr);
		client_answer(qr->client, &j, buf);
	}
	for (unsigned k = 0; k < qr->n; k++)
		free(qr->q[k]);
	memset(qr, 0, sizeof(*qr));
}

/* A complete line is in client i's buffer (len bytes before its newline): answer it. */
static void
client_line(unsigned i, size_t len)
{
	struct client *c = &ctls.c[i];
	char *buf = malloc(CTL_ANSWER_MAX);
	struct json j;

	if (buf == NULL) {
		client_close(i);
		return;
	}
	JSON_Init(&j, buf, CTL_ANSWER_MAX);
	if (CTL_HandleLine(c->in, len, &j) == 1) {
		const char *err;

		free(buf);
		/* Parsed once more into the client, for the query it waits for. */
		CTLREQ_Parse(c->in, len, &c->req, &err);
		c->state = C_QUERY;
	} else {
		client_answer(i, &j, buf);
	}
	c->inlen -= len + 1;
	memmove(c->in, c->in + len + 1, c->inlen);
}

static void
client_read(unsigned i)
{
	struct client *c = &ctls.c[i];
	ssize_t n = recv(c->fd, c->in + c->inlen, sizeof(c->in) - c->inlen, 0);
	char *nl;

	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
		client_close(i);
		return;
	}
	if (n < 0)
		return;
	c->inlen += (size_t)n;
	nl = memchr(c->in, '\n', c->inlen);
	if (nl != NULL)
		client_line(i, (size_t)(nl - c->in));
	else if (c->inlen == sizeof(c->in))
		client_refuse(i, "request too long");
}

static void
client_write(unsigned i)
{
	struct client *c = &ctls.c[i];
	ssize_t n = send(c->fd, c->out + c->outoff, c->outlen - c->outoff, MSG_NOSIGNAL);

	if (n < 0) {
		if (errno != EAGAIN && errno != EINTR)
			client_close(i);
		return;
	}
	c->outoff += (size_t)n;
	if (c->outoff < c->outlen)
		return;
	if (c->close_after) {
		client_close(i);
		return;
	}
	free(c->out);
	c->out = NULL;
	c->state = C_READ;
	c->deadline_ms = now_ms() + CTL_CLIENT_TIMEOUT_MS;
	/* A request that came in with the previous one. */
	{
		char *nl = memchr(c->in, '\n', c->inlen);

		if (nl != NULL)
			client_line(i, (size_t)(nl - c->in));
	}
}

static void
accept_clients(void)
{
	for (;;) {
		int fd = accept4(ctls.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		socklen_t len = sizeof(struct ucred);
		unsigned i;

		if (fd < 0)
			return;
		for (i = 0; i < CTL_MAX_CLIENTS && ctls.c[i].state != C_FREE; i++)
			;
		if (i == CTL_MAX_CLIENTS) {
			static const char busy[] = "{\"ok\":false,\"error\":\"too many clients\"}\n";

			if (send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
				log_debug("control: too many clients");
			close(fd);
			continue;
		}
		memset(&ctls.c[i], 0, sizeof(ctls.c[i]));
		ctls.c[i].fd = fd;
		ctls.c[i].state = C_READ;
		ctls.c[i].deadline_ms = now_ms() + CTL_CLIENT_TIMEOUT_MS;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &ctls.c[i].cred, &len) < 0)
			memset(&ctls.c[i].cred, 0, sizeof(ctls.c[i].cred));
	}
}

unsigned
CTL_PollFds(struct pollfd *pfd, unsigned max)
{
	unsigned n = 0;

	if (ctls.fd < 0 || max < 1 + CTL_MAX_CLIENTS)
		return 0;
	pfd[n++] = (struct pollfd){ .fd = ctls.fd, .events = POLLIN };
	for (unsigned i = 0; i < CTL_MAX_CLIENTS; i++) {
		const struct client *c = &ctls.c[i];
		short ev = c->state == C_READ ? POLLIN : c->state == C_WRITE ? POLLOUT : 0;

		/* Every slot has its place, so CTL_Serve finds client i at 1 + i. */
		pfd[n++] = (struct pollfd){ .fd = c->state == C_FREE ? -1 : c->fd, .events = ev };
	}
	return n;
}

int
CTL_PollTimeoutMs(int idle_ms)
{
	if (ctls.qr.active)
		return 5;   /* the packet threads answer within ~100 ms; look often */
	for (unsigned i = 0; i < CTL_MAX_CLIENTS; i++)
		if (ctls.c[i].state != C_FREE)
			return idle_ms < 100 ? idle_ms : 100;
	return idle_ms;
}

void
CTL_Serve(const struct pollfd *pfd, unsigned n)
{
	uint64_t now;

	if (ctls.fd < 0 || n != 1 + CTL_MAX_CLIENTS)
		return;
	for (unsigned i = 0; i < CTL_MAX_CLIENTS; i++) {
		short re = pfd[1 + i].revents;

		if (pfd[1 + i].fd < 0 || ctls.c[i].fd != pfd[1 + i].fd || re == 0)
			continue;
		if (ctls.c[i].state == C_READ && (re & (POLLIN | POLLHUP | POLLERR)))
			client_read(i);
		else if (ctls.c[i].state == C_WRITE && (re & (POLLOUT | POLLHUP | POLLERR)))
			client_write(i);
	}
	if (pfd[0].revents & POLLIN)
		accept_clients();
	if (ctls.qr.active)
		finish_query();
	if (!ctls.qr.active && !ctls.qr.abandoned) {
		for (unsigned i = 0; i < CTL_MAX_CLIENTS; i++)
			if (ctls.c[i].state == C_QUERY) {
				start_query(i);
				break;
			}
	}
	now = now_ms();
	for (unsigned i = 0; i < CTL_MAX_CLIENTS; i++) {
		struct client *c = &ctls.c[i];

		if (c->state == C_QUERY && ctls.qr.abandoned) {
			client_refuse(i, "a packet thread did not answer in time");
		} else if (c->state == C_READ && now >= c->deadline_ms) {
			if (c->inlen)
				client_refuse(i, "request timeout");
			else
				client_close(i);   /* an idle connection */
		} else if (c->state == C_WRITE && now >= c->deadline_ms) {
			client_close(i);   /* a client that does not read its answer */
		}
	}
}

void
CTL_Close(void)
{
	for (unsigned i = 0; i < CTL_MAX_CLIENTS; i++)
		if (ctls.c[i].state != C_FREE)
			client_close(i);
	for (unsigned k = 0; k < ctls.qr.n; k++)
		free(ctls.qr.q[k]);
	memset(&ctls.qr, 0, sizeof(ctls.qr));
	if (ctls.fd >= 0) {
		close(ctls.fd);
		unlink(ctls.path);
		ctls.fd = -1;
	}
}
