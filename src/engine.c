/* The per-packet path, top to bottom: parse, find the flow, analyse (RSTs), update the TCP state,
 * decide, report. Nothing here allocates, logs or makes a system call per packet; an event is
 * built only when something happened (a RST, a flow's end). */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "engine.h"
#include "eviction.h"
#include "flow.h"
#include "hold.h"
#include "keepalive.h"
#include "json.h"
#include "log.h"
#include "tcpstate.h"
#include "timer.h"

/* Flows examined per wheel per tick: bounds the expiry work done between two receive batches. */
#define EXPIRY_BUDGET 4096
/* Candidates looked at when the table is full. */
#define EVICT_CANDIDATES 32
/* Slots of the RST history (direct-mapped by flow and direction; a collision forgets). */
#define HISTORY_SLOTS 4096
/* Resumptions watched at once, and server networks whose idle timeout is learnt. */
#define WATCH_SLOTS 1024
#define LEARN_NETS 256
/* A watch ends after this long without an outcome. */
#define WATCH_MAX_MS 60000
/* Without a configured timeout, RSTs after this much silence with no trigger are evictions. */
#define WATCH_AUTO_MS 30000
/* Judged-genuine RSTs kept for a late revision (direct-mapped by flow and direction). */
#define TOMB_SLOTS 1024

enum wheel_id { WHEEL_SHORT = 0, WHEEL_EST = 1 };

struct engine {
	const struct config *cfg;
	struct flow_table *table;
	struct timer_wheel wheel[2];
	struct event_sink *sink;

	uint64_t base_mono_ns;
	struct engine_time now;
	uint32_t now_s, now_ms, now_us;   /* since the base; ms and us wrap, compared wrap-safe */

	struct rst_params par;
	struct hold_table holds;
	struct rst_history *hist;
	struct engine_verdict *decided;   /* held packets whose verdict is due */
	uint32_t ndecided;

	eng_rst_hook rst_hook;
	void *rst_hook_ctx;

	struct eviction evi;
	struct ka_sender ka;
	struct ka_flow *kaf;             /* per-flow probe state; allocated when keepalive is on */
	double probe_tokens;
	uint64_t probe_refill_ns;
	double confirm_tokens;
	uint64_t confirm_refill_ns;

	eng_send_fn send_fn;             /* probes go out through this, or the raw sockets */
	void *send_ctx;

	struct rst_signatures sig;
	struct pending_rst *tomb;        /* TOMB_SLOTS tombstones of judged-genuine RSTs */

	struct engine_stats st;
};

static const char *const reason_timeout = "timeout";
static const char *const reason_forced = "forced";
static const char *const reason_shutdown = "shutdown";
static const char *const reason_reused = "reused";

static inline enum wheel_id
wheel_for(const struct flow *f)
{
	return f->state == TCP_ESTABLISHED ? WHEEL_EST : WHEEL_SHORT;
}

static uint32_t keepalive_visit(struct engine *e, uint32_t idx, struct flow *f);

static void
timer_arm(struct engine *e, uint32_t idx, struct flow *f)
{
	enum wheel_id w = wheel_for(f);
	uint32_t deadline = e->now_s + TCP_StateTimeout(&e->cfg->timeout, f->state);

	/* With keepalive on, an established flow is also visited when its probe would be due. */
	if (e->cfg->keepalive && w == WHEEL_EST) {
		uint32_t k = keepalive_visit(e, idx, f);

		if (k && (int32_t)(k - deadline) < 0)
			deadline = k;
	}
	TIMER_Link(&e->wheel[w], e->table, idx, deadline);
	f->flags = (uint8_t)((f->flags & ~FL_WHEEL_EST) | (w == WHEEL_EST ? FL_WHEEL_EST : 0) | FL_LINKED);
}

static void
timer_disarm(struct engine *e, uint32_t idx, struct flow *f)
{
	if (!(f->flags & FL_LINKED))
		return;
	TIMER_Unlink(&e->wheel[(f->flags & FL_WHEEL_EST) ? WHEEL_EST : WHEEL_SHORT], e->table, idx);
	f->flags &= (uint8_t)~FL_LINKED;
}

/* ---- events ---- */

static void
put_common(struct json *j, uint64_t real_ns, uint64_t flow_id, const char *type, int family,
	   const uint8_t *src, uint16_t sport, const uint8_t *dst, uint16_t dport)
{
	char ts[40], a[48];

	EV_FormatTime(real_ns, ts, sizeof(ts));
	JSON_Str(j, "timestamp", ts);
	JSON_U64(j, "flow_id", flow_id);
	JSON_Str(j, "event_type", type);
	PKT_FormatAddr(family, src, a, sizeof(a));
	JSON_Str(j, "src_ip", a);
	JSON_U64(j, "src_port", sport);
	PKT_FormatAddr(family, dst, a, sizeof(a));
	JSON_Str(j, "dest_ip", a);
	JSON_U64(j, "dest_port", dport);
	JSON_Str(j, "proto", "TCP");
}

static void
submit(struct engine *e, struct json *j)
{
	size_t len = JSON_Finish(j);

	if (len > 0)
		EV_Submit(e->sink, j->buf, len);
}

static uint64_t
flow_real_ns(const struct engine *e, uint64_t mono_ns)
{
	return e->now.real_ns - (e->now.mono_ns - mono_ns);
}

static void
emit_flow(struct engine *e, const struct flow *f, const char *reason)
{
	char buf[EVENT_LINE_MAX], ts[40];
	struct json j;
	uint64_t start_mono, end_mono;
	int family = (f->flags & FL_IPV6) ? AF_INET6 : AF_INET;

	if (e->sink == NULL || !EV_Allow(e->sink, e->now.mono_ns))
		return;
	start_mono = e->base_mono_ns + (uint64_t)f->first_seen_cs * 10000000ULL;
	end_mono = e->now.mono_ns - (uint64_t)(uint32_t)(e->now_ms - f->last_seen_ms) * 1000000ULL;
	if (end_mono < start_mono)
		end_mono = start_mono;
	JSON_Init(&j, buf, sizeof(buf));
	put_common(&j, e->now.real_ns, FLOW_Id(e->table, f), "flow", family, f->cli, f->cport, f->srv, f->sport);
	JSON_ObjectOpen(&j, "flow");
	JSON_U64(&j, "pkts_toserver", f->dir[DIR_TOSERVER].pkts);
	JSON_U64(&j, "pkts_toclient", f->dir[DIR_TOCLIENT].pkts);
	JSON_U64(&j, "bytes_toserver", f->dir[DIR_TOSERVER].bytes);
	JSON_U64(&j, "bytes_toclient", f->dir[DIR_TOCLIENT].bytes);
	EV_FormatTime(flow_real_ns(e, start_mono), ts, sizeof(ts));
	JSON_Str(&j, "start", ts);
	EV_FormatTime(flow_real_ns(e, end_mono), ts, sizeof(ts));
	JSON_Str(&j, "end", ts);
	JSON_U64(&j, "age", (end_mono - start_mono) / 1000000000ULL);
	JSON_Str(&j, "state", FLOW_StateName((enum tcp_state)f->state));
	JSON_Str(&j, "reason", reason);
	JSON_Bool(&j, "midstream", (f->flags & FL_MIDSTREAM) != 0);
	if (f->rtt_10us[DIR_TOSERVER] && f->rtt_10us[DIR_TOCLIENT])
		JSON_Double(&j, "rtt_ms", (f->rtt_10us[DIR_TOSERVER] + f->rtt_10us[DIR_TOCLIENT]) / 100.0, 2);
	JSON_ObjectClose(&j);
	submit(e, &j);
}

static void
flags_string(uint8_t flags, char *out)
{
	static const struct { uint8_t bit; char c; } map[] = {
		{ TCPF_SYN, 'S' }, { TCPF_FIN, 'F' }, { TCPF_RST, 'R' }, { TCPF_PSH, 'P' },
		{ TCPF_ACK, 'A' }, { TCPF_URG, 'U' }, { TCPF_ECE, 'E' }, { TCPF_CWR, 'C' },
	};
	int n = 0;

	for (unsigned i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (flags & map[i].bit)
			out[n++] = map[i].c;
	out[n] = '\0';
}

static void
emit_anomaly(struct engine *e, const struct pending_rst *pr)
{
	char buf[EVENT_LINE_MAX];
	struct json j;

	if (e->sink == NULL || !EV_AllowAlert(e->sink, e->now.mono_ns))
		return;
	JSON_Init(&j, buf, sizeof(buf));
	put_common(&j, pr->real_ns, pr->flow_id, "anomaly", pr->pkt.family, pr->pkt.src, pr->pkt.sport, pr->pkt.dst,
		   pr->pkt.dport);
	JSON_ObjectOpen(&j, "anomaly");
	JSON_Str(&j, "type", "stream");
	JSON_Str(&j, "event", "stream.suspected_rst_inject");
	JSON_ObjectClose(&j);
	submit(e, &j);
}

static void
emit_rst(struct engine *e, const struct pending_rst *pr, enum rg_verdict verdict, enum rg_verdict would)
{
	const struct pkt *p = &pr->pkt;
	const struct rst_result *r = &pr->res;
	char buf[EVENT_LINE_MAX], fl[10];
	struct json j;

	if (e->sink == NULL || !(r->forged ? EV_AllowAlert : EV_Allow)(e->sink, e->now.mono_ns))
		return;
	JSON_Init(&j, buf, sizeof(buf));
	/* A revision is stamped when it is made; first_seen keeps the RST's own time. */
	put_common(&j, pr->revised ? e->now.real_ns : pr->real_ns, pr->flow_id, "rst", p->family, p->src, p->sport,
		   p->dst, p->dport);
	JSON_Str(&j, "verdict", POLICY_VerdictName(verdict));
	JSON_ObjectOpen(&j, "rst");
	if (pr->revised) {
		char ts[40];

		JSON_Bool(&j, "revised", 1);
		EV_FormatTime(pr->real_ns, ts, sizeof(ts));
		JSON_Str(&j, "first_seen", ts);
	}
	JSON_Str(&j, "cause", RST_CauseName(r->cause));
	JSON_Bool(&j, "forged", r->forged);
	JSON_ArrayOpen(&j, "evidence");
	for (unsigned b = 0; b < RST_EV_COUNT; b++)
		if (r->evidence & (1u << b))
			JSON_ArrayStr(&j, RST_EvidenceName(b));
	JSON_ArrayClose(&j);
	JSON_U64(&j, "score", (uint64_t)r->score);
	if (r->forged)
		JSON_Str(&j, "apparent_cause", RST_CauseName(r->apparent));
	JSON_Bool(&j, "would_drop", would == RG_DROP);
	JSON_Bool(&j, "held", pr->held);
	if (pr->held)
		JSON_U64(&j, "held_ms", e->now_ms - pr->start_ms);
	if (HOLD_ConfirmName((enum hold_confirm)pr->confirm))
		JSON_Str(&j, "confirmed", HOLD_ConfirmName((enum hold_confirm)pr->confirm));
	JSON_Str(&j, "seq_check", TCP_RstSeqName(r->seq_class));
	JSON_Bool(&j, "effective", r->seq_class == RST_SEQ_EXACT && !r->discarded);
	JSON_Bool(&j, "challenge_ack", r->seq_class == RST_SEQ_IN_WINDOW);
	JSON_U64(&j, "ttl", p->ttl);
	if (pr->has_base)
		JSON_U64(&j, "ttl_baseline", pr->ttl_base);
	if (p->family == AF_INET) {
		JSON_U64(&j, "ipid", p->ipid);
		JSON_Bool(&j, "df", p->df);
	}
	JSON_U64(&j, "seq", p->seq);
	JSON_U64(&j, "ack", p->ack);
	flags_string(p->flags, fl);
	JSON_Str(&j, "flags", fl);
	JSON_U64(&j, "window", p->win);
	JSON_U64(&j, "payload_len", p->payload_len);
	if (pr->has_flow) {
		JSON_Str(&j, "state", FLOW_StateName((enum tcp_state)pr->prev_state));
		JSON_Str(&j, "direction", pr->dir == DIR_TOSERVER ? "toserver" : "toclient");
		JSON_Bool(&j, "midstream", pr->midstream);
		JSON_U64(&j, "idle_ms", pr->idle_ms);
	}
	JSON_ObjectClose(&j);
	submit(e, &j);
}

/* ---- flow lifetime ---- */

static void resolve_flow(struct engine *e, uint32_t idx, struct flow *f);
static void unwatch(struct engine *e, uint32_t idx, struct flow *f);

/* End a flow: report it and give its record back. */
static void
end_flow(struct engine *e, uint32_t idx, const char *reason)
{
	struct flow *f = FLOW_Get(e->table, idx);

	if (f->flags & FL_PENDING)
		resolve_flow(e, idx, f);
	unwatch(e, idx, f);
	emit_flow(e, f, reason);
	timer_disarm(e, idx, f);
	FLOW_Remove(e->table, idx);
	if (reason == reason_timeout)
		e->st.flows_expired++;
	else if (reason == reason_forced)
		e->st.flows_evicted++;
	else if (reason == reason_reused)
		e->st.flows_reused++;
}

/* Make room when the table is full. Order: flows that are not established (handshake, closing,
 * closed) nearest their expiry first; only if there are none, the established flow idle the
 * longest among the nearest candidates. */
static int
evict_one(struct engine *e)
{
	uint32_t cand[EVICT_CANDIDATES], n, victim = FLOW_NIL, best_idle = 0;

	n = TIMER_Soonest(&e->wheel[WHEEL_SHORT], e->table, cand, 1);
	if (n == 1) {
		end_flow(e, cand[0], reason_forced);
		return 1;
	}
	n = TIMER_Soonest(&e->wheel[WHEEL_EST], e->table, cand, EVICT_CANDIDATES);
	for (uint32_t i = 0; i < n; i++) {
		uint32_t idle = e->now_ms - FLOW_Get(e->table, cand[i])->last_seen_ms;

		if (victim == FLOW_NIL || idle > best_idle) {
			victim = cand[i];
			best_idle = idle;
		}
	}
	if (victim == FLOW_NIL)
		return 0;
	end_flow(e, victim, reason_forced);
	return 1;
}

/* Which end of a flow first seen at packet p is the client. */
static int
client_is_src(const struct pkt *p)
{
	if ((p->flags & (TCPF_SYN | TCPF_ACK)) == TCPF_SYN)
		return 1;
	if ((p->flags & (TCPF_SYN | TCPF_ACK)) == (TCPF_SYN | TCPF_ACK))
		return 0;
	/* Mid-stream: the ephemeral (higher) port is the client's. */
	return p->sport >= p->dport;
}

static struct flow *
new_flow(struct engine *e, const struct pkt *p, struct flow_ref *ref)
{
	struct flow *f;

	if (!FLOW_Insert(e->table, p, client_is_src(p), ref)) {
		if (!evict_one(e) || !FLOW_Insert(e->table, p, client_is_src(p), ref)) {
			e->st.flows_untracked++;
			return NULL;
		}
	}
	f = ref->flow;
	TCP_InitFlow(f, p, (uint32_t)((e->now.mono_ns - e->base_mono_ns) / 10000000ULL), e->now_us);
	f->last_seen_ms = e->now_ms;
	e->st.flows_created++;
	if (f->flags & FL_MIDSTREAM)
		e->st.flows_midstream++;
	timer_arm(e, ref->index, f);
	return f;
}

/* Re-file the flow's timer when its state (and so its timeout and wheel) changed. */
static inline void
state_changed(struct engine *e, uint32_t idx, struct flow *f, enum tcp_state prev)
{
	if (f->state != prev) {
		timer_disarm(e, idx, f);
		timer_arm(e, idx, f);
	}
}

/* ---- eviction and keepalive ---- */

static inline int
flow_family(const struct flow *f)
{
	return (f->flags & FL_IPV6) ? AF_INET6 : AF_INET;
}

/* The middlebox idle timeout configured for the flow's server (0: none). */
static uint32_t
flow_timeout_s(const struct engine *e, const struct flow *f)
{
	return CFG_IdleTimeoutFor(e->cfg, flow_family(f), f->srv, f->sport);
}

static uint32_t
watch_min_ms(const struct engine *e, uint32_t timeout_s)
{
	return CFG_WatchMinGap(e->cfg, timeout_s) * 1000;
}

static void
emit_eviction(struct engine *e, const struct flow *f, const char *kind, uint32_t gap_ms, uint32_t retrans,
	      uint32_t timeout_s, const char *by, const struct evict_net *net)
{
	char buf[EVENT_LINE_MAX], nb[64];
	struct json j;

	if (e->sink == NULL || !EV_AllowAlert(e->sink, e->now.mono_ns))
		return;
	JSON_Init(&j, buf, sizeof(buf));
	put_common(&j, e->now.real_ns, FLOW_Id(e->table, f), "eviction", flow_family(f), f->cli, f->cport,
		   f->srv, f->sport);
	JSON_ObjectOpen(&j, "eviction");
	JSON_Str(&j, "kind", kind);
	JSON_Double(&j, "idle", gap_ms / 1000.0, 3);
	if (retrans)
		JSON_U64(&j, "retransmits", retrans);
	if (timeout_s)
		JSON_U64(&j, "timeout", timeout_s);
	JSON_Str(&j, "detected_by", by);
	if (net) {
		EVI_FormatNet(net, nb, sizeof(nb));
		JSON_ObjectOpen(&j, "learned");
		JSON_Str(&j, "network", nb);
		JSON_Double(&j, "max_survived", net->max_survived_ms / 1000.0, 3);
		if (net->min_evicted_ms)
			JSON_Double(&j, "min_evicted", net->min_evicted_ms / 1000.0, 3);
		JSON_ObjectClose(&j);
	}
	JSON_ObjectClose(&j);
	submit(e, &j);
}

/* A middlebox forgot flow f after a silence of gap_ms: learn from it and report it, once. */
static void
eviction_found(struct engine *e, struct flow *f, const char *kind, uint32_t gap_ms, uint32_t retrans,
	       uint32_t timeout_s, const char *by)
{
	const struct evict_net *n;

	if (f->dir[DIR_TOSERVER].flags & FD_EVICTED)
		return;
	f->dir[DIR_TOSERVER].flags |= FD_EVICTED;
	n = EVI_Learn(&e->evi, flow_family(f), f->srv, gap_ms, 1);
	if (kind[0] == 'r')
		e->st.evictions_rst++;
	else
		e->st.evictions_blackhole++;
	emit_eviction(e, f, kind, gap_ms, retrans, timeout_s, by, n);
}

static void
unwatch(struct engine *e, uint32_t idx, struct flow *f)
{
	if (f->flags & FL_WATCH) {
		EVI_Release(&e->evi, EVI_Find(&e->evi, idx, f->first_seen_cs));
		f->flags &= (uint8_t)~FL_WATCH;
	}
}

/* A non-RST packet, before it updates the flow: a resumption after a silence starts a watch;
 * during a watch, the other side's answer means the path survived, and the resuming packet
 * sent again and again into silence means a black hole. */
static void
watch_packet(struct engine *e, uint32_t idx, struct flow *f, int dir, const struct pkt *p)
{
	uint32_t gap = e->now_ms - f->last_seen_ms, timeout;
	struct evict_watch *w;

	if (f->flags & FL_WATCH) {
		w = EVI_Find(&e->evi, idx, f->first_seen_cs);
		if (w == NULL) {
			f->flags &= (uint8_t)~FL_WATCH;
		} else if (dir != w->dir) {
			if (!w->reported)
				EVI_Learn(&e->evi, flow_family(f), f->srv, w->gap_ms, 0);
			EVI_Release(&e->evi, w);
			f->flags &= (uint8_t)~FL_WATCH;
		} else if (p->seq == w->seq && !(p->flags & TCPF_SYN)) {
			if (w->retrans < 255)
				w->retrans++;
			if (w->retrans >= 2 && !w->reported) {
				w->reported = 1;
				eviction_found(e, f, "blackhole", w->gap_ms, w->retrans, w->timeout_s, "traffic");
			}
		}
		return;
	}
	if (gap < 1000 || f->state != TCP_ESTABLISHED)
		return;
	timeout = flow_timeout_s(e, f);
	if (gap < watch_min_ms(e, timeout))
		return;
	w = EVI_Watch(&e->evi, idx, f->first_seen_cs);
	if (w == NULL) {
		e->st.watch_full++;
		return;
	}
	w->gap_ms = gap;
	w->start_ms = e->now_ms;
	w->seq = p->seq;
	w->timeout_s = timeout;
	w->dir = (uint8_t)dir;
	f->flags |= FL_WATCH;
}

/* Is this RST a middlebox's, after a silence the path did not survive? Sets *gap and *timeout
 * for the report; *by says how it was noticed. */
static int
rst_after_silence(struct engine *e, uint32_t idx, struct flow *f, int dir, uint32_t *gap, uint32_t *timeout,
		  const char **by)
{
	uint32_t idle = e->now_ms - f->last_seen_ms;

	*by = "traffic";
	if (f->dir[DIR_TOSERVER].flags & FD_EVICTED) {
		*gap = idle;
		return 1;           /* the rest of an eviction's RSTs */
	}
	if ((f->flags & FL_PROBING) && e->kaf && (e->kaf[idx].outstanding & (1u << !dir))) {
		e->st.probes_rst++;
		e->kaf[idx].gave_up = 1;
		*gap = idle;
		*timeout = flow_timeout_s(e, f);
		*by = "probe";
		return 1;           /* our probe found the state already lost */
	}
	if (f->flags & FL_WATCH) {
		struct evict_watch *w = EVI_Find(&e->evi, idx, f->first_seen_cs);

		/* A RST answering the resumption: the silence was long enough to be watched, so
		 * a middlebox with a shorter timeout than configured is caught too. */
		if (w && dir != w->dir) {
			*gap = w->gap_ms;
			*timeout = w->timeout_s;
			return 1;
		}
	}
	/* RSTs with no trigger, at the timeout (load balancers that reset both sides when they
	 * forget a flow). Only near a configured timeout: long after it, or on a flow our probes
	 * kept alive, an odd RST is judged like any other. */
	if (idle >= 1000 && (f->state == TCP_ESTABLISHED || f->state == TCP_FIN_WAIT)) {
		if ((f->flags & FL_PROBING) && e->kaf && (int32_t)(e->kaf[idx].refresh_ms - f->last_seen_ms) > 0)
			idle = e->now_ms - e->kaf[idx].refresh_ms;
		*timeout = flow_timeout_s(e, f);
		*gap = idle;
		return *timeout && idle >= *timeout * 1000 && idle <= *timeout * 2000;
	}
	return 0;
}

/* A token bucket of rate per second for the whole daemon (each queue's engine takes its share),
 * holding at most one second's worth. Returns 1 if a token was taken. */
static int
take_token(struct engine *e, double *tokens, uint64_t *refill_ns, uint32_t rate)
{
	uint32_t per_queue = rate / (e->cfg->queue_count ? e->cfg->queue_count : 1);

	if (per_queue == 0)
		per_queue = 1;
	if (e->now.mono_ns > *refill_ns) {
		*tokens += (double)(e->now.mono_ns - *refill_ns) * per_queue / 1e9;
		if (*tokens > per_queue)
			*tokens = per_queue;
		*refill_ns = e->now.mono_ns;
	}
	if (*tokens < 1.0)
		return 0;
	*tokens -= 1.0;
	return 1;
}

/* The raw sockets probes go out through, opened on first use. Returns 0, or -1 if unavailable. */
static int
probe_sockets(struct engine *e)
{
	if (e->send_fn)
		return 0;
	if (e->ka.fd4 == -2 || (e->ka.fd4 < 0 && KA_Open(&e->ka) < 0)) {
		e->ka.fd4 = -2;   /* do not try again */
		return -1;
	}
	return 0;
}

static int
probe_send(struct engine *e, const struct flow *f, const uint8_t *buf, uint32_t len)
{
	return e->send_fn ? e->send_fn(e->send_ctx, f, buf, len) : KA_Send(&e->ka, f, buf, len);
}

/* Keepalive: when flow idx is due, send probes if it is time; returns when to look again
 * (engine seconds), 0 for never in this idle period. */
static uint32_t
keepalive_visit(struct engine *e, uint32_t idx, struct flow *f)
{
	const struct config *c = e->cfg;
	uint32_t timeout, idle, interval_ms, base, sides, answer_wait_ms = 1000;
	struct ka_flow *k;
	uint8_t buf[128];

	if (!c->keepalive || f->state != TCP_ESTABLISHED)
		return 0;
	timeout = flow_timeout_s(e, f);
	if (timeout == 0)
		return 0;
	if (e->kaf == NULL) {
		/* First use (keepalive may have been switched on by a reload). */
		if (probe_sockets(e) < 0)
			return 0;
		e->kaf = calloc(FLOW_Capacity(e->table), sizeof(*e->kaf));
		if (e->kaf == NULL)
			return 0;
	}
	k = &e->kaf[idx];
	idle = e->now_ms - f->last_seen_ms;
	if (idle >= c->max_idle * 1000) {
		f->flags &= (uint8_t)~FL_PROBING;   /* abandoned: let the middlebox forget it */
		return 0;
	}
	if (!(f->flags & FL_PROBING))
		memset(k, 0, sizeof(*k));
	if (k->gave_up)
		return 0;
	/* Probe at timeout - lead; automatic lead: a fifth of the timeout (0.8 x, as in the research). */
	interval_ms = (c->probe_lead && c->probe_lead < timeout ? timeout - c->probe_lead : timeout * 4 / 5) * 1000;
	if (k->outstanding) {
		if (e->now_ms - k->probe_ms < answer_wait_ms)
			return e->now_s + 1;
		k->outstanding = 0;
		e->st.probes_unanswered++;
		if (++k->unanswered >= c->probe_retries) {
			k->gave_up = 1;
			eviction_found(e, f, "blackhole", idle, k->unanswered, timeout, "probe");
			return 0;
		}
	} else {
		base = f->last_seen_ms;
		if ((f->flags & FL_PROBING) && (int32_t)(k->refresh_ms - base) > 0)
			base = k->refresh_ms;
		if ((int32_t)(e->now_ms - (base + interval_ms)) < 0)
			return e->now_s + (base + interval_ms - e->now_ms + 999) / 1000;
	}
	/* Time to probe, toward the side(s) beyond the middlebox. */
	sides = c->probe_side == PROBE_BOTH ? 3u : c->probe_side == PROBE_CLIENT ? 1u << DIR_TOCLIENT : 1u << DIR_TOSERVER;
	for (int x = 0; x < 2; x++) {
		uint32_t len;

		if (!(sides & (1u << x)) || !KA_Eligible(f, x))
			continue;
		if (!take_token(e, &e->probe_tokens, &e->probe_refill_ns, c->probe_rate)) {
			e->st.probes_rate_limited++;
			return e->now_s + 1;
		}
		len = KA_Build(f, x, buf);
		if (probe_send(e, f, buf, len) < 0) {
			e->st.probe_errors++;
			continue;
		}
		e->st.probes_sent++;
		k->outstanding |= (uint8_t)(1u << x);
	}
	if (k->outstanding) {
		k->probe_ms = e->now_ms;
		f->flags |= FL_PROBING;
		return e->now_s + 1 + answer_wait_ms / 1000;
	}
	return e->now_s + interval_ms / 1000;   /* not eligible now (data in flight): later */
}

/* A packet of a flow being probed: the answer to our probe is taken out of the stream (the
 * endpoint never sent a probe, so it must never see an answer); real traffic ends the idle
 * period. Returns 1 if p was a probe's answer, 2 if it was our probe itself, 0 otherwise. */
static int
keepalive_packet(struct engine *e, uint32_t idx, struct flow *f, int dir, const struct pkt *p)
{
	struct ka_flow *k = &e->kaf[idx];
	int x = !dir;

	if ((k->outstanding & (1u << x)) && p->flags == TCPF_ACK && p->payload_len == 0 &&
	    p->seq == f->dir[dir].next_seq && p->ack == f->dir[x].next_seq) {
		k->outstanding &= (uint8_t)~(1u << x);
		k->unanswered = 0;
		k->refresh_ms = e->now_ms;
		e->st.probes_answered++;
		return 1;
	}
	/* Our own probe, queued again on its way out (a rule on OUTPUT): let it pass untouched. */
	if ((k->outstanding & (1u << dir)) && p->flags == TCPF_ACK && p->payload_len == 0 &&
	    p->seq == f->dir[dir].next_seq - 1)
		return 2;
	f->flags &= (uint8_t)~FL_PROBING;
	return 0;
}

void
ENG_LogLearned(const struct engine *e)
{
	char nb[64];

	for (uint32_t i = 0; i < e->evi.ncap; i++) {
		const struct evict_net *n = &e->evi.nets[i];

		if (!n->in_use)
			continue;
		EVI_FormatNet(n, nb, sizeof(nb));
		if (n->min_evicted_ms && n->survived)
			log_info("eviction: %s: idle timeout between %.1f s (longest survived, %u times) and %.1f s (shortest evicted, %u times)",
				 nb, n->max_survived_ms / 1000.0, n->survived, n->min_evicted_ms / 1000.0, n->evicted);
		else if (n->min_evicted_ms)
			log_info("eviction: %s: idle timeout at most %.1f s (shortest evicted, %u times; no silence survived yet)",
				 nb, n->min_evicted_ms / 1000.0, n->evicted);
		else
			log_info("eviction: %s: survived silences up to %.1f s (%u times), no eviction seen",
				 nb, n->max_survived_ms / 1000.0, n->survived);
	}
}

/* ---- RST judgement ---- */

static void
load_params(struct engine *e)
{
	e->par.ttl_tolerance = (uint8_t)e->cfg->ttl_tolerance;
	e->par.threshold = (uint16_t)e->cfg->threshold;
	e->par.min_rtt_us = e->cfg->min_rtt_ms * 1000;
}

static inline struct rst_history *
history_slot(struct engine *e, uint32_t idx, int dir)
{
	return &e->hist[((idx << 1) | (uint32_t)dir) & (HISTORY_SLOTS - 1)];
}

/* How long a judgement may wait for the sender's own traffic: 4 x the RTT to the sender,
 * within [hold_min_ms, hold_max_ms]. */
static uint32_t
wait_ms(const struct engine *e, const struct flow *f, int dir)
{
	uint32_t rtt_us = (uint32_t)f->rtt_10us[dir == DIR_TOCLIENT ? DIR_TOSERVER : DIR_TOCLIENT] * 10;
	uint32_t ms = rtt_us * 4 / 1000, lo = e->cfg->hold_min_ms, hi = e->cfg->hold_max_ms;

	if (lo > hi)
		lo = hi;
	return ms < lo ? lo : ms > hi ? hi : ms;
}

/* A RST reached its receiver: it is the flow's latest packet (idle times, timing signals) and
 * may end the connection. A RST that is dropped never reached anyone and changes nothing. */
static void
rst_delivered(struct engine *e, uint32_t idx, struct flow *f, int dir, const struct pkt *p)
{
	enum tcp_state prev;

	f->last_seen_ms = e->now_ms;
	f->dir[dir].flags |= FD_LAST;
	f->dir[!dir].flags &= (uint16_t)~FD_LAST;
	prev = TCP_Update(f, dir, p, e->now_us);
	state_changed(e, idx, f, prev);
}

/* ---- late evidence: tombstones of judged-genuine RSTs ---- */

static inline struct pending_rst *
tomb_slot(struct engine *e, uint32_t idx, int dir)
{
	return &e->tomb[((idx << 1) | (uint32_t)dir) & (TOMB_SLOTS - 1)];
}

/* Keep a RST judged genuine for detector.revise_window, in case its sender talks on. A slot
 * taken by another live flow is not overwritten: the newcomer goes uncovered, counted. */
static void
tomb_keep(struct engine *e, const struct flow *f, const struct pending_rst *pr)
{
	struct pending_rst *t;

	if (e->cfg->revise_window == 0 || e->tomb == NULL || !pr->has_flow || pr->res.eviction)
		return;
	t = tomb_slot(e, pr->flow_idx, pr->dir);
	if (t->in_use && (int32_t)(e->now_ms - t->deadline_ms) < 0 &&
	    (t->flow_idx != pr->flow_idx || t->flow_start_cs != pr->flow_start_cs || t->dir != pr->dir)) {
		e->st.tombstones_full++;
		return;
	}
	*t = *pr;
	t->in_use = 1;
	t->held = 0;
	t->deadline_ms = e->now_ms + e->cfg->revise_window * 1000;
	(void)f;
}

static enum rg_verdict conclude(struct engine *e, struct flow *f, struct pending_rst *pr);
static int flow_has_pending(const struct engine *e, uint32_t idx, const struct flow *f);

/* A packet from a side that sent a RST judged genuine: if that side talks on as a live socket
 * (new data, an advancing ACK, a FIN beyond the RST; a SYN-ACK after a RST that answered the
 * SYN), the RST was not its own after all: report it again, revised, as forged. */
static void
tomb_news(struct engine *e, uint32_t idx, struct flow *f, int dir, const struct pkt *p)
{
	struct pending_rst *t = tomb_slot(e, idx, dir);
	enum rst_cause was = t->res.cause;
	unsigned bit;

	if (!t->in_use || t->flow_idx != idx || t->flow_start_cs != f->first_seen_cs || t->dir != dir)
		return;
	if ((int32_t)(e->now_ms - t->deadline_ms) >= 0) {
		t->in_use = 0;
		return;
	}
	if (t->prev_state == TCP_SYN_SENT && dir == DIR_TOCLIENT && RST_IsLateSynAck(p))
		bit = RST_EV_SYNACK_LATE;
	else if (RST_IsRace(p, &t->pkt, t->ack_before))
		bit = RST_EV_RACE_LATE;
	else
		return;
	t->was_cause = (uint8_t)was;
	t->was_evidence = t->res.evidence;
	RST_AddEvidence(&t->res, bit, &e->par);
	if (!t->res.forged)
		return;
	t->revised = 1;
	e->st.rst_revised++;
	if (e->st.rst_cause[was] > 0)
		e->st.rst_cause[was]--;   /* counted again under its new cause */
	conclude(e, f, t);
	t->in_use = 0;
}

/* The final word on a RST: verdict, event, and what it does to the flow. pr->held says whether
 * the packet's verdict is still owed. Returns the verdict. */
static enum rg_verdict
conclude(struct engine *e, struct flow *f, struct pending_rst *pr)
{
	enum rg_verdict would = POLICY_WouldDo(e->cfg, &pr->pkt, &pr->res);
	enum rg_verdict verdict = POLICY_Decide(e->cfg, &pr->pkt, &pr->res);

	/* A RST that waited without being held has long passed: report what it got. */
	if ((pr->in_use && !pr->held) || pr->revised)
		verdict = RG_ACCEPT;
	if (pr->confirm == CONFIRM_SENT) {
		pr->confirm = CONFIRM_TIMEOUT;
		e->st.confirm_timeout++;
	}

	e->st.rst_cause[pr->res.cause]++;
	if (pr->res.forged)
		e->st.rst_forged++;
	if (would == RG_DROP)
		e->st.rst_would_drop++;
	if (verdict == RG_DROP)
		e->st.rst_dropped++;
	emit_rst(e, pr, verdict, would);
	if (e->rst_hook)
	{
		struct rst_result was = pr->res;

		was.cause = (enum rst_cause)pr->was_cause;
		was.evidence = pr->was_evidence;
		e->rst_hook(e->rst_hook_ctx, &pr->pkt, &pr->res, would, pr->revised ? &was : NULL);
	}
	if (pr->res.forged) {
		emit_anomaly(e, pr);
		if (f)
			f->dir[pr->dir].flags |= FD_FORGED;
	} else if (f) {
		tomb_keep(e, f, pr);
	}
	if (pr->held) {
		/* Room is guaranteed: a slot is taken only while used + ndecided < cap. */
		e->decided[e->ndecided].pkt_id = pr->pkt_id;
		e->decided[e->ndecided].verdict = verdict;
		e->ndecided++;
		/* A packet that was held and is now let through reaches the receiver only now. */
		if (f && verdict == RG_ACCEPT)
			rst_delivered(e, pr->flow_idx, f, pr->dir, &pr->pkt);
	}
	return verdict;
}

/* Judge every pending RST of flow idx now (its record is about to go, or it has news). */
static void
resolve_flow(struct engine *e, uint32_t idx, struct flow *f)
{
	for (uint32_t i = 0; i < e->holds.cap && e->holds.used; i++) {
		struct pending_rst *pr = &e->holds.slots[i];

		if (pr->in_use && pr->flow_idx == idx && pr->flow_start_cs == f->first_seen_cs) {
			conclude(e, f, pr);
			HOLD_Remove(&e->holds, pr);
		}
	}
	f->flags &= (uint8_t)~FL_PENDING;
}

/* The answers to a confirmation probe sent in the name of receiver x = !dir toward the RST's
 * claimed sender (dir): a live socket sends a duplicate ACK (seq = its SND.NXT, ack = x's
 * SND.NXT); a stack without the socket a bare RST at the probe's ACK (RFC 9293 3.10.7.1). */
static int
probe_ack_answer(const struct flow *f, int dir, const struct pkt *p)
{
	return p->flags == TCPF_ACK && p->payload_len == 0 && p->ack == f->dir[!dir].next_seq &&
	       SEQ_GEQ(p->seq, f->dir[dir].next_seq);
}

static int
probe_rst_answer(const struct flow *f, int dir, const struct pkt *p)
{
	return (p->flags & (TCPF_RST | TCPF_ACK | TCPF_SYN | TCPF_FIN)) == TCPF_RST && p->seq == f->dir[!dir].last_ack;
}

/* A packet of a flow with pending RSTs: from a RST's claimed sender, later traffic contradicts
 * it (the race), and so does an ACK answering our confirmation probe; a burst of further RSTs
 * adds its evidence to the earlier ones. Returns 1 if p answered our probe: the endpoint never
 * sent one, so the answer must not reach it. */
static int
pending_news(struct engine *e, uint32_t idx, struct flow *f, int dir, const struct pkt *p, uint32_t burst_bits)
{
	int left = 0, absorbed = 0;

	for (uint32_t i = 0; i < e->holds.cap && e->holds.used; i++) {
		struct pending_rst *pr = &e->holds.slots[i];

		if (!pr->in_use || pr->flow_idx != idx || pr->flow_start_cs != f->first_seen_cs)
			continue;
		if (pr->dir == dir) {
			if (burst_bits) {
				for (unsigned b = 0; b < RST_EV_COUNT; b++)
					if (burst_bits & (1u << b))
						RST_AddEvidence(&pr->res, b, &e->par);
			} else if (pr->confirm == CONFIRM_SENT && probe_ack_answer(f, dir, p)) {
				pr->confirm = CONFIRM_ACK;
				e->st.confirm_ack++;
				RST_AddEvidence(&pr->res, RST_EV_PROBE_ACK, &e->par);
				absorbed = 1;
			} else if (!(p->flags & TCPF_RST) && RST_IsRace(p, &pr->pkt, pr->ack_before)) {
				RST_AddEvidence(&pr->res, RST_EV_RACE, &e->par);
				e->st.rst_race++;
			}
		}
		if (pr->res.forged) {
			conclude(e, f, pr);
			HOLD_Remove(&e->holds, pr);
		} else {
			left = 1;
		}
	}
	if (!left)
		f->flags &= (uint8_t)~FL_PENDING;
	return absorbed;
}

/* A RST from a side whose earlier RST awaits our probe's answer: the answer of a stack without
 * the socket. The earlier RST was genuine: let it through now. Returns 1 if p was that answer:
 * it exists only because of our probe, so it is taken out of the stream and reported by the
 * held RST's "confirmed" field, not as a RST of its own. (A RST of that stack answering one of
 * the receiver's own segments looks the same; the receiver, reset by the first, loses nothing.) */
static int
pending_probe_rst(struct engine *e, uint32_t idx, struct flow *f, int dir, const struct pkt *p)
{
	int found = 0;

	if (!probe_rst_answer(f, dir, p))
		return 0;
	for (uint32_t i = 0; i < e->holds.cap && e->holds.used; i++) {
		struct pending_rst *pr = &e->holds.slots[i];

		if (!pr->in_use || pr->flow_idx != idx || pr->flow_start_cs != f->first_seen_cs || pr->dir != dir ||
		    pr->confirm != CONFIRM_SENT)
			continue;
		pr->confirm = CONFIRM_RST;
		e->st.confirm_rst++;
		conclude(e, f, pr);
		HOLD_Remove(&e->holds, pr);
		found = 1;
	}
	if (found && !flow_has_pending(e, idx, f))
		f->flags &= (uint8_t)~FL_PENDING;
	return found;
}

/* Ask the claimed sender of held RST pr whether its socket lives: a probe in the name of the
 * RST's receiver, built like a keepalive (seq = SND.NXT - 1, the last ACK and timestamps), so
 * that a live socket must answer with an ACK. Bounded by confirm_rate and by the pending table. */
static void
confirm_probe(struct engine *e, const struct flow *f, struct pending_rst *pr)
{
	const struct flow_dir *x = &f->dir[!pr->dir];
	uint8_t buf[128];
	uint32_t len;

	if (!e->cfg->confirm || !(x->flags & FD_SEEN) || !(x->flags & FD_ACK) ||
	    ((x->flags | f->dir[pr->dir].flags) & FD_MD5))
		return;
	if (!take_token(e, &e->confirm_tokens, &e->confirm_refill_ns, e->cfg->confirm_rate)) {
		e->st.confirm_rate_limited++;
		return;
	}
	if (probe_sockets(e) < 0)
		return;
	len = KA_Build(f, !pr->dir, buf);
	if (probe_send(e, f, buf, len) < 0) {
		e->st.probe_errors++;
		return;
	}
	pr->confirm = CONFIRM_SENT;
	e->st.confirm_sent++;
}

static enum rg_verdict
handle_rst(struct engine *e, struct flow_ref *ref, const struct pkt *p, uint32_t pkt_id)
{
	struct flow *f = ref ? ref->flow : NULL;
	int dir = ref ? ref->dir : DIR_TOSERVER;
	struct pending_rst now_pr, *pr = &now_pr;
	struct rst_context ctx = { 0 };
	struct rst_history *h = NULL;
	enum rg_verdict verdict;
	int wait = 0, hold = 0;
	uint32_t ev_gap = 0, ev_timeout = 0;
	const char *ev_by = "traffic";

	if (f && (f->flags & FL_PENDING) && pending_probe_rst(e, ref->index, f, dir, p))
		return RG_DROP;
	e->st.rst++;
	memset(&now_pr, 0, sizeof(now_pr));
	now_pr.real_ns = e->now.real_ns;
	if (f) {
		const struct flow_dir *s = &f->dir[dir];
		uint32_t host;

		memcpy(&host, p->src + (p->family == AF_INET6 ? 12 : 0), sizeof(host));
		ctx.signature = RST_SignatureSeen(&e->sig, p, host | 1u, s->ipid, e->now_ms);
		h = history_slot(e, ref->index, dir);
		ctx.now_ms = e->now_ms;
		uint64_t since_us = (uint64_t)(uint32_t)(e->now_ms - f->last_seen_ms) * 1000;

		ctx.since_last_us = since_us > UINT32_MAX ? UINT32_MAX : (uint32_t)since_us;
		ctx.last_from_receiver = (f->dir[!dir].flags & FD_LAST) != 0;
		if (h->key == ((ref->index << 1) | (uint32_t)dir) + 1 && h->flow_start_cs == f->first_seen_cs &&
		    e->now_ms - h->last_ms <= RST_BURST_WINDOW_MS)
			ctx.hist = h;
		ctx.eviction = rst_after_silence(e, ref->index, f, dir, &ev_gap, &ev_timeout, &ev_by);
		RST_Analyse(f, dir, p, &ctx, &e->par, &now_pr.res);
		if (now_pr.res.eviction) {
			eviction_found(e, f, "rst", ev_gap, 0, ev_timeout, ev_by);
			unwatch(e, ref->index, f);
		}
		RST_Remember(h, ((ref->index << 1) | (uint32_t)dir) + 1, f->first_seen_cs, p, e->now_ms);
		now_pr.has_flow = 1;
		now_pr.flow_idx = ref->index;
		now_pr.flow_start_cs = f->first_seen_cs;
		now_pr.flow_id = FLOW_Id(e->table, f);
		now_pr.dir = (uint8_t)dir;
		now_pr.prev_state = f->state;
		now_pr.idle_ms = e->now_ms - f->last_seen_ms;
		now_pr.midstream = (f->flags & FL_MIDSTREAM) != 0;
		now_pr.ack_before = s->last_ack;
		if (s->flags & FD_SEEN) {
			now_pr.has_base = 1;
			now_pr.ttl_base = s->ttl_base;
		}
		/* A burst makes the sender's earlier RSTs suspect too. */
		if (f->flags & FL_PENDING)
			pending_news(e, ref->index, f, dir, p, now_pr.res.evidence &
				     ((1u << RST_EV_SEQ_BURST) | (1u << RST_EV_TTL_BURST) | (1u << RST_EV_IDENTICAL)));
		/* Not yet conclusive, and its sender may still contradict it: wait for that. A RST
		 * the receiver ignores (out of window) needs no waiting. */
		wait = !now_pr.res.forged && !now_pr.res.eviction && now_pr.res.seq_class != RST_SEQ_OUT_OF_WINDOW &&
		       (f->state == TCP_ESTABLISHED || f->state == TCP_FIN_WAIT || f->state == TCP_CLOSING);
		hold = wait && e->cfg->mode == RG_MODE_ENFORCE && pkt_id != ENG_NO_ID &&
		       (uint32_t)now_pr.res.score >= e->cfg->hold_threshold && POLICY_Protects(e->cfg, p);
	} else {
		RST_Analyse(NULL, dir, p, &ctx, &e->par, &now_pr.res);
		now_pr.flow_id = FLOW_IdForPacket(e->table, p);
	}
	now_pr.pkt = *p;
	now_pr.pkt.payload = NULL;
	now_pr.pkt.payload_caplen = 0;

	if (wait) {
		/* Decided verdicts not yet collected keep their room: used + decided <= cap. */
		pr = e->holds.used + e->ndecided < e->holds.cap ? HOLD_Add(&e->holds) : NULL;
		if (pr == NULL) {
			e->st.pending_full++;
			pr = &now_pr;
			wait = hold = 0;
		} else {
			*pr = now_pr;
			pr->in_use = 1;
			pr->pkt_id = pkt_id;
			pr->start_ms = e->now_ms;
			pr->deadline_ms = e->now_ms + wait_ms(e, f, dir);
			f->flags |= FL_PENDING;
			if (hold) {
				pr->held = 1;
				e->holds.held++;
				e->st.rst_held++;
				confirm_probe(e, f, pr);
			}
		}
	}
	if (hold)
		return RG_HOLD;   /* the flow's state changes only if the RST is let through */
	verdict = wait ? POLICY_Decide(e->cfg, &pr->pkt, &pr->res) : conclude(e, f, pr);
	if (f && verdict == RG_ACCEPT)
		rst_delivered(e, ref->index, f, dir, p);
	return verdict;
}

void
ENG_Prepare(struct engine *e, const uint8_t *data, uint32_t caplen, uint32_t wirelen, struct eng_prep *pp)
{
	pp->kind = (uint8_t)PKT_Parse(data, caplen, wirelen, &pp->p);
	if (pp->kind == PKT_TCP) {
		pp->hash = FLOW_Hash(e->table, &pp->p);
		FLOW_PrefetchSlot(e->table, pp->hash);
	}
}

void
ENG_Prefetch(struct engine *e, const struct eng_prep *pp)
{
	if (pp->kind == PKT_TCP)
		FLOW_PrefetchRecord(e->table, pp->hash);
}

enum rg_verdict
ENG_Packet(struct engine *e, const uint8_t *data, uint32_t caplen, uint32_t wirelen, uint32_t pkt_id)
{
	struct eng_prep pp;

	pp.kind = (uint8_t)PKT_Parse(data, caplen, wirelen, &pp.p);
	if (pp.kind == PKT_TCP)
		pp.hash = FLOW_Hash(e->table, &pp.p);
	return ENG_PacketPrepared(e, &pp, pkt_id);
}

enum rg_verdict
ENG_PacketPrepared(struct engine *e, struct eng_prep *pp, uint32_t pkt_id)
{
	struct pkt *pk = &pp->p;
	struct flow_ref ref;
	struct flow *f;
	enum tcp_state prev;
	int found, probed;

	e->st.packets++;
	e->st.kind[pp->kind]++;
	if (pp->kind != PKT_TCP)
		return RG_ACCEPT;

	found = FLOW_LookupHashed(e->table, pk, pp->hash, &ref);
	if (pk->flags & TCPF_RST)
		return handle_rst(e, found ? &ref : NULL, pk, pkt_id);

	if (found) {
		f = ref.flow;
		/* A new connection on the tuple of a finished one starts a new flow. */
		if ((pk->flags & (TCPF_SYN | TCPF_ACK)) == TCPF_SYN &&
		    (f->state == TCP_TIME_WAIT || f->state == TCP_CLOSED)) {
			end_flow(e, ref.index, reason_reused);
			f = new_flow(e, pk, &ref);
		}
	} else {
		f = new_flow(e, pk, &ref);
	}
	if (f == NULL)
		return RG_ACCEPT;
	probed = (f->flags & FL_PROBING) != 0;
	if (probed && e->kaf) {
		switch (keepalive_packet(e, ref.index, f, ref.dir, pk)) {
		case 1:
			return RG_DROP;   /* our probe's answer: the endpoint must not see it */
		case 2:
			return RG_ACCEPT; /* our probe itself */
		default:
			break;
		}
	}
	if ((f->flags & FL_PENDING) && pending_news(e, ref.index, f, ref.dir, pk, 0))
		return RG_DROP;   /* our confirmation probe's answer */
	if (f->dir[ref.dir].flags & FD_RST)
		tomb_news(e, ref.index, f, ref.dir, pk);
	/* A silence our probes bridged says nothing about the middlebox's own timeout. */
	if ((f->flags & FL_WATCH) || (!probed && (uint32_t)(e->now_ms - f->last_seen_ms) >= 1000))
		watch_packet(e, ref.index, f, ref.dir, pk);

	f->last_seen_ms = e->now_ms;
	prev = TCP_Update(f, ref.dir, pk, e->now_us);
	state_changed(e, ref.index, f, prev);
	return RG_ACCEPT;
}

/* ---- time ---- */

static uint32_t
expiry_due(void *ctx, uint32_t idx, uint32_t due_s)
{
	struct engine *e = ctx;
	struct flow *f = FLOW_Get(e->table, idx);
	uint32_t idle_ms = e->now_ms - f->last_seen_ms, deadline;
	uint64_t timeout_ms = (uint64_t)TCP_StateTimeout(&e->cfg->timeout, f->state) * 1000;

	(void)due_s;
	f->flags &= (uint8_t)~FL_LINKED;  /* the wheel unlinked it */
	if (idle_ms >= timeout_ms) {
		end_flow(e, idx, reason_timeout);
		return 0;
	}
	f->flags |= FL_LINKED;  /* re-linked in the same wheel by the caller */
	deadline = e->now_s + (uint32_t)((timeout_ms - idle_ms + 999) / 1000);
	if (e->cfg->keepalive && f->state == TCP_ESTABLISHED) {
		uint32_t k = keepalive_visit(e, idx, f);

		if (k && (int32_t)(k - deadline) < 0)
			deadline = k;
	}
	return deadline;
}

void
ENG_SetTime(struct engine *e, const struct engine_time *now)
{
	uint64_t rel;

	/* Never go back (a capture's timestamps may): idle times are unsigned differences. */
	if (now->mono_ns < e->base_mono_ns || now->mono_ns < e->now.mono_ns)
		return;
	e->now = *now;
	rel = now->mono_ns - e->base_mono_ns;
	e->now_s = (uint32_t)(rel / 1000000000ULL);
	e->now_ms = (uint32_t)(rel / 1000000ULL);
	e->now_us = (uint32_t)(rel / 1000ULL);
}

/* Does flow idx (record f) still have a RST awaiting judgement? */
static int
flow_has_pending(const struct engine *e, uint32_t idx, const struct flow *f)
{
	for (uint32_t k = 0; k < e->holds.cap; k++) {
		const struct pending_rst *pr = &e->holds.slots[k];

		if (pr->in_use && pr->flow_idx == idx && pr->flow_start_cs == f->first_seen_cs)
			return 1;
	}
	return 0;
}

/* Judge the pending RSTs whose wait is over. */
static void
pending_due(struct engine *e)
{
	for (uint32_t i = 0; i < e->holds.cap && e->holds.used; i++) {
		struct pending_rst *pr = &e->holds.slots[i];
		struct flow *f;

		if (!pr->in_use || (int32_t)(e->now_ms - pr->deadline_ms) < 0)
			continue;
		f = FLOW_Get(e->table, pr->flow_idx);
		if (!(f->flags & FL_LINKED) || f->first_seen_cs != pr->flow_start_cs)
			f = NULL;  /* cannot happen: a flow's end judges its RSTs first */
		conclude(e, f, pr);
		HOLD_Remove(&e->holds, pr);
		if (f && !flow_has_pending(e, pr->flow_idx, f))
			f->flags &= (uint8_t)~FL_PENDING;
	}
}

uint32_t
ENG_TakeVerdicts(struct engine *e, struct engine_verdict *out, uint32_t max)
{
	uint32_t n = e->ndecided < max ? e->ndecided : max;

	memcpy(out, e->decided, n * sizeof(*out));
	memmove(e->decided, e->decided + n, (e->ndecided - n) * sizeof(*out));
	e->ndecided -= n;
	return n;
}

uint32_t
ENG_HeldCount(const struct engine *e)
{
	return e->holds.held;
}

int
ENG_NextDueMs(const struct engine *e)
{
	uint32_t d;
	int32_t left;

	if (!HOLD_NextDeadline(&e->holds, &d))
		return -1;
	left = (int32_t)(d - e->now_ms);
	return left < 0 ? 0 : left;
}

/* Watches that saw no outcome in time end without one. */
static void
watch_expire(struct engine *e)
{
	for (uint32_t i = 0; i < e->evi.wcap && e->evi.wused; i++) {
		struct evict_watch *w = &e->evi.watch[i];

		if (w->in_use && e->now_ms - w->start_ms > WATCH_MAX_MS) {
			struct flow *f = FLOW_Get(e->table, w->flow_idx);

			if ((f->flags & FL_LINKED) && f->first_seen_cs == w->flow_start_cs)
				f->flags &= (uint8_t)~FL_WATCH;
			EVI_Release(&e->evi, w);
		}
	}
}

void
ENG_Tick(struct engine *e)
{
	if (e->holds.used)
		pending_due(e);
	/* Once a second (the wheel has not yet been advanced to this second). */
	if (e->evi.wused && e->now_s != e->wheel[WHEEL_SHORT].now_s)
		watch_expire(e);
	TIMER_Advance(&e->wheel[WHEEL_SHORT], e->table, e->now_s, EXPIRY_BUDGET, expiry_due, e);
	TIMER_Advance(&e->wheel[WHEEL_EST], e->table, e->now_s, EXPIRY_BUDGET, expiry_due, e);
}

/* ---- lifetime ---- */

struct engine *
ENG_Create(const struct config *cfg, uint32_t max_flows, struct event_sink *sink, const uint8_t seed[16],
	   const struct engine_time *start)
{
	struct engine *e = calloc(1, sizeof(*e));

	if (e == NULL)
		return NULL;
	e->table = FLOW_CreateTable(max_flows, seed);
	if (e->table == NULL) {
		free(e);
		return NULL;
	}
	e->cfg = cfg;
	e->sink = sink;
	e->base_mono_ns = start->mono_ns;
	load_params(e);
	e->hist = calloc(HISTORY_SLOTS, sizeof(*e->hist));
	e->tomb = calloc(TOMB_SLOTS, sizeof(*e->tomb));
	e->decided = calloc(cfg->max_pending, sizeof(*e->decided));
	e->ka.fd4 = e->ka.fd6 = -1;
	if (e->hist == NULL || e->tomb == NULL || e->decided == NULL || HOLD_Init(&e->holds, cfg->max_pending) < 0 ||
	    EVI_Init(&e->evi, WATCH_SLOTS, LEARN_NETS) < 0) {
		ENG_Destroy(e);
		return NULL;
	}
	ENG_SetTime(e, start);
	TIMER_Init(&e->wheel[WHEEL_SHORT], 0);
	TIMER_Init(&e->wheel[WHEEL_EST], 0);
	return e;
}

void
ENG_SetConfig(struct engine *e, const struct config *cfg)
{
	/* The pending table keeps the size it was created with (max_pending needs a restart). */
	e->cfg = cfg;
	load_params(e);
}

void
ENG_Shutdown(struct engine *e)
{
	uint32_t cap = FLOW_Capacity(e->table);

	/* Every held packet gets its verdict before the queue goes away. */
	for (uint32_t i = 0; i < e->holds.cap && e->holds.used; i++) {
		struct pending_rst *pr = &e->holds.slots[i];

		if (pr->in_use)
			resolve_flow(e, pr->flow_idx, FLOW_Get(e->table, pr->flow_idx));
	}
	for (uint32_t i = 0; i < cap && FLOW_Count(e->table) > 0; i++) {
		struct flow *f = FLOW_Get(e->table, i);

		if (f->flags & FL_LINKED)
			end_flow(e, i, reason_shutdown);
	}
}

void
ENG_SetProbeSender(struct engine *e, eng_send_fn fn, void *ctx)
{
	e->send_fn = fn;
	e->send_ctx = ctx;
}

void
ENG_SetRstHook(struct engine *e, eng_rst_hook fn, void *ctx)
{
	e->rst_hook = fn;
	e->rst_hook_ctx = ctx;
}

void
ENG_GetStats(const struct engine *e, struct engine_stats *st)
{
	*st = e->st;
	st->flows_active = FLOW_Count(e->table);
	st->flows_capacity = FLOW_Capacity(e->table);
	st->memory_bytes = FLOW_MemoryBytes(e->table) + sizeof(*e);
}

void
ENG_AddStats(struct engine_stats *dst, const struct engine_stats *src)
{
	/* Every member is a uint64_t counter. */
	uint64_t *d = (uint64_t *)dst;
	const uint64_t *s = (const uint64_t *)src;

	for (size_t i = 0; i < sizeof(*dst) / sizeof(uint64_t); i++)
		d[i] += s[i];
}

void
ENG_Destroy(struct engine *e)
{
	if (e == NULL)
		return;
	FLOW_DestroyTable(e->table);
	HOLD_Fini(&e->holds);
	EVI_Fini(&e->evi);
	KA_Close(&e->ka);
	free(e->kaf);
	free(e->hist);
	free(e->tomb);
	free(e->decided);
	free(e);
}
