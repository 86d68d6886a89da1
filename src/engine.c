/* The per-packet path, top to bottom: parse, find the flow, update its state, analyse (RSTs),
 * decide, give the verdict. The engine owns the flow table, the timers and the RST judgement;
 * keepalive (keepalive.c) and eviction detection (eviction.c) are its parts, each behind a
 * narrow context, and events are composed in report.c from records filled in here. Nothing here
 * allocates, logs or makes a system call per packet. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "alias.h"
#include "engine.h"
#include "evidence.h"
#include "eviction.h"
#include "fastpath.h"
#include "flow.h"
#include "hold.h"
#include "keepalive.h"
#include "nat.h"
#include "report.h"
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
/* Judged-genuine RSTs kept for a late revision (direct-mapped by flow and direction). */
#define TOMB_SLOTS 1024
/* NAT lookups that missed, remembered (direct-mapped by the flow hash) so that a repeated stray
 * packet does not cost a lookup each. */
#define NAT_NEG_SLOTS 64
#define NAT_NEG_MS 2000

const uint32_t ENG_HoldBucketsMs[ENG_HOLD_BUCKETS - 1] = { 5, 10, 25, 50, 100, 200, 500, 1000 };

enum wheel_id { WHEEL_SHORT = 0, WHEEL_EST = 1 };

struct engine {
	const struct config *cfg;
	struct flow_table *table;
	struct timer_wheel wheel[2];
	struct reporter rep;              /* events: the sink and this clock */

	uint64_t base_mono_ns;
	struct timer_clock now;

	struct rst_params par;
	struct hold_table holds;
	struct rst_history *hist;
	struct engine_verdict *decided;   /* held packets whose verdict is due */
	uint32_t ndecided;
	struct rst_signatures sig;
	struct pending_rst *tomb;         /* TOMB_SLOTS tombstones of judged-genuine RSTs */
	struct ka_bucket confirm_bucket;  /* detector.confirm_rate */

	eng_rst_hook rst_hook;
	void *rst_hook_ctx;

	struct eviction evi;
	struct keepalive ka;
	struct ka_sender probes;          /* keepalive and confirmation probes go out here */

	/* NAT (ENG_SetNat): lookups on flow-table misses, and the aliases they made */
	eng_nat_fn nat_fn;
	void *nat_ctx;
	struct nat_lookup *nat_own;       /* ENG_OpenNat's socket */
	struct alias_table *alias;
	struct ka_bucket nat_bucket;      /* nat.lookup_rate */
	struct { uint32_t hash, until_ms; } nat_neg[NAT_NEG_SLOTS];
	uint8_t seed[16];

	struct engine_stats st;
	_Atomic(struct eng_query *) query;   /* posted by the control thread (ENG_PostQuery) */
	struct fastpath *fp;              /* the kernel fast path, or NULL */
};

static inline enum wheel_id
wheel_for(const struct flow *f)
{
	return f->state == TCP_ESTABLISHED ? WHEEL_EST : WHEEL_SHORT;
}

/* ---- timers ---- */

/* Keepalive: when flow idx is next due for a probe, if sooner than deadline; a flow given up
 * because its probes went unanswered is a black hole. */
static uint32_t
keepalive_due(struct engine *e, uint32_t idx, struct flow *f, uint32_t deadline)
{
	struct ka_lost lost;
	uint32_t k = KA_Visit(&e->ka, idx, f, &lost);

	if (lost.unanswered) {
		struct evi_seen seen = {
			.kind = REP_EVICT_BLACKHOLE, .by = REP_BY_PROBE, .gap_ms = lost.idle_ms,
			.retrans = lost.unanswered, .timeout_s = lost.timeout_s,
		};

		EVI_Found(&e->evi, f, &seen);
	}
	return k && (int32_t)(k - deadline) < 0 ? k : deadline;
}

static void
timer_arm(struct engine *e, uint32_t idx, struct flow *f)
{
	enum wheel_id w = wheel_for(f);
	uint32_t deadline = e->now.s + TCP_StateTimeout(&e->cfg->timeout, f->state);

	/* With keepalive on, an established flow is also visited when its probe would be due. */
	if (e->cfg->keepalive && w == WHEEL_EST)
		deadline = keepalive_due(e, idx, f, deadline);
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

/* ---- event records ---- */

static uint64_t
flow_real_ns(const struct engine *e, uint64_t mono_ns)
{
	return e->now.real_ns - (e->now.mono_ns - mono_ns);
}

/* The flow event of flow f, ending now. */
static void
report_flow_end(struct engine *e, const struct flow *f, enum rep_reason reason)
{
	struct rep_flow_end r = { .f = f, .reason = reason };
	uint64_t start_mono, end_mono;

	if (e->rep.sink == NULL)
		return;   /* no events */
	start_mono = e->base_mono_ns + (uint64_t)f->first_seen_cs * 10000000ULL;
	end_mono = e->now.mono_ns - (uint64_t)(uint32_t)(e->now.ms - f->last_seen_ms) * 1000000ULL;
	if (end_mono < start_mono)
		end_mono = start_mono;
	r.flow_id = FLOW_Id(e->table, f);
	r.start_ns = flow_real_ns(e, start_mono);
	r.end_ns = flow_real_ns(e, end_mono);
	r.age_s = (end_mono - start_mono) / 1000000000ULL;
	REP_FlowEnd(&e->rep, &r);
}

/* ---- flow lifetime ---- */

static void resolve_flow(struct engine *e, uint32_t idx, struct flow *f);

/* How the kernel's fast path sees flow idx's server half: through its NAT alias, if any. */
static inline const struct alias *
fp_seen(const struct engine *e, uint32_t idx, const struct flow *f)
{
	return ALIAS_OfFlow(e->alias, idx, f->first_seen_cs);
}

/* End a flow: report it and give its record back. */
static void
end_flow(struct engine *e, uint32_t idx, enum rep_reason reason)
{
	struct flow *f = FLOW_Get(e->table, idx);

	if (e->fp)
		FP_SyncFlow(e->fp, f, fp_seen(e, idx, f), -1, 0, e->base_mono_ns, e->now.mono_ns);
	if (f->flags & FL_PENDING)
		resolve_flow(e, idx, f);
	EVI_Unwatch(&e->evi, idx, f);
	report_flow_end(e, f, reason);
	timer_disarm(e, idx, f);
	FLOW_Remove(e->table, idx);
	ALIAS_DropFlow(e->alias, idx);
	if (reason == REP_TIMEOUT)
		e->st.flows_expired++;
	else if (reason == REP_FORCED)
		e->st.flows_evicted++;
	else if (reason == REP_REUSED)
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
		end_flow(e, cand[0], REP_FORCED);
		return 1;
	}
	n = TIMER_Soonest(&e->wheel[WHEEL_EST], e->table, cand, EVICT_CANDIDATES);
	for (uint32_t i = 0; i < n; i++) {
		uint32_t idle = e->now.ms - FLOW_Get(e->table, cand[i])->last_seen_ms;

		if (victim == FLOW_NIL || idle > best_idle) {
			victim = cand[i];
			best_idle = idle;
		}
	}
	if (victim == FLOW_NIL)
		return 0;
	end_flow(e, victim, REP_FORCED);
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

/* A new flow for p; cis says whether p's sender is the client (-1: guess, client_is_src). */
static struct flow *
new_flow(struct engine *e, const struct pkt *p, struct flow_ref *ref, int cis)
{
	struct flow *f;

	if (cis < 0)
		cis = client_is_src(p);
	if (!FLOW_Insert(e->table, p, cis, ref)) {
		if (!evict_one(e) || !FLOW_Insert(e->table, p, cis, ref)) {
			e->st.flows_untracked++;
			return NULL;
		}
	}
	f = ref->flow;
	TCP_InitFlow(f, p, (uint32_t)((e->now.mono_ns - e->base_mono_ns) / 10000000ULL), e->now.us);
	f->last_seen_ms = e->now.ms;
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

	f->last_seen_ms = e->now.ms;
	f->dir[dir].flags |= FD_LAST;
	f->dir[!dir].flags &= (uint16_t)~FD_LAST;
	prev = TCP_Update(f, dir, p, e->now.us);
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
tomb_keep(struct engine *e, const struct pending_rst *pr)
{
	struct pending_rst *t;

	if (e->cfg->revise_window == 0 || e->tomb == NULL || !pr->has_flow || pr->res.eviction)
		return;
	t = tomb_slot(e, pr->flow_idx, pr->dir);
	if (t->in_use && (int32_t)(e->now.ms - t->deadline_ms) < 0 &&
	    (t->flow_idx != pr->flow_idx || t->flow_start_cs != pr->flow_start_cs || t->dir != pr->dir)) {
		e->st.tombstones_full++;
		return;
	}
	*t = *pr;
	t->in_use = 1;
	t->held = 0;
	t->deadline_ms = e->now.ms + e->cfg->revise_window * 1000;
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

static enum rg_verdict conclude(struct engine *e, struct flow *f, struct pending_rst *pr);

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
	if ((int32_t)(e->now.ms - t->deadline_ms) >= 0) {
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
	REP_Rst(&e->rep, pr, verdict, would);
	if (e->rst_hook)
	{
		struct rst_result was = pr->res;

		was.cause = (enum rst_cause)pr->was_cause;
		was.evidence = pr->was_evidence;
		e->rst_hook(e->rst_hook_ctx, &pr->pkt, &pr->res, would, pr->revised ? &was : NULL);
	}
	if (pr->res.forged) {
		REP_Anomaly(&e->rep, pr);
		if (f)
			f->dir[pr->dir].flags |= FD_FORGED;
	} else if (f) {
		tomb_keep(e, pr);
	}
	if (pr->held) {
		uint32_t held_ms = e->now.ms - pr->start_ms;
		unsigned b = 0;

		while (b < ENG_HOLD_BUCKETS - 1 && held_ms > ENG_HoldBucketsMs[b])
			b++;
		e->st.hold_ms_bucket[b]++;
		e->st.hold_ms_sum += held_ms;
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
	if (!KA_TakeToken(&e->confirm_bucket, e->now.mono_ns, e->cfg->confirm_rate, e->cfg->queue_count)) {
		e->st.confirm_rate_limited++;
		return;
	}
	if (KA_SenderReady(&e->probes) < 0)
		return;
	len = KA_BuildSeen(f, !pr->dir, ALIAS_OfFlow(e->alias, pr->flow_idx, pr->flow_start_cs), buf);
	if (KA_SendProbe(&e->probes, f, buf, len) < 0)
		return;
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
	struct evi_seen silence;
	int wait = 0, hold = 0;

	if (f && (f->flags & FL_PENDING) && pending_probe_rst(e, ref->index, f, dir, p))
		return RG_DROP;
	e->st.rst++;
	memset(&now_pr, 0, sizeof(now_pr));
	now_pr.real_ns = e->now.real_ns;
	if (f) {
		const struct flow_dir *s = &f->dir[dir];
		uint32_t host;

		memcpy(&host, p->src + (p->family == AF_INET6 ? 12 : 0), sizeof(host));
		ctx.signature = RST_SignatureSeen(&e->sig, p, host | 1u, s->ipid, e->now.ms);
		h = history_slot(e, ref->index, dir);
		ctx.now_ms = e->now.ms;
		uint64_t since_us = (uint64_t)(uint32_t)(e->now.ms - f->last_seen_ms) * 1000;

		ctx.since_last_us = since_us > UINT32_MAX ? UINT32_MAX : (uint32_t)since_us;
		ctx.last_from_receiver = (f->dir[!dir].flags & FD_LAST) != 0;
		if (h->key == ((ref->index << 1) | (uint32_t)dir) + 1 && h->flow_start_cs == f->first_seen_cs &&
		    e->now.ms - h->last_ms <= RST_BURST_WINDOW_MS)
			ctx.hist = h;
		ctx.eviction = EVI_RstAfterSilence(&e->evi, ref->index, f, dir, KA_Probing(&e->ka, ref->index, f),
						   &silence);
		RST_Analyse(f, dir, p, &ctx, &e->par, &now_pr.res);
		if (now_pr.res.eviction)
			EVI_RstEvicted(&e->evi, ref->index, f, &silence);
		RST_Remember(h, ((ref->index << 1) | (uint32_t)dir) + 1, f->first_seen_cs, p, e->now.ms);
		now_pr.has_flow = 1;
		now_pr.flow_idx = ref->index;
		now_pr.flow_start_cs = f->first_seen_cs;
		now_pr.flow_id = FLOW_Id(e->table, f);
		now_pr.dir = (uint8_t)dir;
		now_pr.prev_state = f->state;
		now_pr.idle_ms = e->now.ms - f->last_seen_ms;
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
			pr->start_ms = e->now.ms;
			pr->deadline_ms = e->now.ms + wait_ms(e, f, dir);
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

/* ---- NAT: joining the halves of translated connections ---- */

/* Make p look as the connection's original tuple carries it in the reply direction: from the
 * original destination to the original source (the server's answer before translation). */
static void
nat_as_orig(struct pkt *p, const uint8_t *osrc, uint16_t osport, const uint8_t *odst, uint16_t odport)
{
	memcpy(p->src, odst, 16);
	p->sport = odport;
	memcpy(p->dst, osrc, 16);
	p->dport = osport;
}

/* Join the alias for the reply tuple of map m to flow ref. */
static void
nat_add_alias(struct engine *e, const struct nat_map *m, const struct flow_ref *ref)
{
	struct alias a;

	memset(&a, 0, sizeof(a));
	memcpy(a.src, m->reply.src, 16);
	memcpy(a.dst, m->reply.dst, 16);
	a.sport = m->reply.sport;
	a.dport = m->reply.dport;
	memcpy(a.osrc, m->orig.src, 16);
	memcpy(a.odst, m->orig.dst, 16);
	a.osport = m->orig.sport;
	a.odport = m->orig.dport;
	a.flow_idx = ref->index;
	a.flow_start_cs = ref->flow->first_seen_cs;
	a.ct_id = m->id;
	a.status = m->status;
	a.zone = m->zone;
	a.family = m->family;
	if (ALIAS_Add(e->alias, &a))
		e->st.nat_joined++;
	else
		e->st.nat_aliases_full++;
}

/* What a flow-table miss becomes through the NAT. */
struct nat_join {
	int cis;                 /* the client side when a new flow is made: 1 p's sender, 0 its
				  * receiver, -1 unknown (guess) */
	int add;                 /* a new flow for p must get an alias for map */
	struct nat_map map;
};

/* A packet whose tuple matched no flow: a known alias (the reply half of a joined connection),
 * or, unless it is a bare SYN (whose NAT port does not exist yet), one budgeted conntrack
 * lookup. p is rewritten to the original tuple when it travels on the reply half, so that
 * everything after this (flow, analysis, events) sees the connection as the client and the real
 * server do. Returns 1 and fills ref when the connection's flow exists. */
static int
nat_join(struct engine *e, struct eng_prep *pp, struct flow_ref *ref, struct nat_join *nj)
{
	struct pkt *p = &pp->p;
	const struct alias *a = ALIAS_Find(e->alias, p->family, p->src, p->sport, p->dst, p->dport);
	uint32_t slot = pp->hash % NAT_NEG_SLOTS;
	struct nat_map *m = &nj->map;
	int r;

	if (a) {
		nat_as_orig(p, a->osrc, a->osport, a->odst, a->odport);
		pp->hash = FLOW_Hash(e->table, p);
		return FLOW_LookupHashed(e->table, p, pp->hash, ref);
	}
	if (e->nat_fn == NULL || !e->cfg->nat_lookup || (p->flags & (TCPF_SYN | TCPF_ACK)) == TCPF_SYN)
		return 0;
	if (e->nat_neg[slot].hash == pp->hash && (int32_t)(e->now.ms - e->nat_neg[slot].until_ms) < 0) {
		e->st.nat_skipped++;
		return 0;
	}
	if (!KA_TakeToken(&e->nat_bucket, e->now.mono_ns, e->cfg->nat_lookup_rate, e->cfg->queue_count)) {
		e->st.nat_skipped++;
		return 0;
	}
	e->st.nat_lookups++;
	r = e->nat_fn(e->nat_ctx, p, (uint16_t)e->cfg->nat_zone, m);
	if (r < 0)
		e->st.nat_errors++;
	else if (r == 0 || m->dir == NAT_DIR_NONE || m->family != p->family)
		e->st.nat_misses++;
	else
		e->st.nat_hits++;
	if (r != 1 || m->dir == NAT_DIR_NONE || m->family != p->family) {
		e->st.nat_unmapped++;
		e->nat_neg[slot].hash = pp->hash;
		e->nat_neg[slot].until_ms = e->now.ms + NAT_NEG_MS;
		return 0;
	}
	/* Conntrack knows who opened the connection: better than the higher-port guess. */
	nj->cis = m->dir == NAT_DIR_ORIG;
	if (!m->translated)
		return 0;
	if (m->dir == NAT_DIR_REPLY) {
		nat_as_orig(p, m->orig.src, m->orig.sport, m->orig.dst, m->orig.dport);
		nj->cis = 0;
		pp->hash = FLOW_Hash(e->table, p);
		if (FLOW_LookupHashed(e->table, p, pp->hash, ref)) {
			nat_add_alias(e, m, ref);
			return 1;
		}
	}
	/* The other half was never seen here: the flow made for p gets the alias. */
	e->st.nat_unjoined++;
	nj->add = 1;
	return 0;
}

/* ---- the per-packet path ---- */

void
ENG_Prepare(struct engine *e, const uint8_t *data, uint32_t caplen, uint32_t wirelen, struct eng_prep *pp)
{
	pp->kind = (uint8_t)PKT_Parse(data, caplen, wirelen, &pp->p);
	pp->data = data;
	pp->caplen = caplen;
	pp->wirelen = wirelen;
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
	pp.data = data;
	pp.caplen = caplen;
	pp.wirelen = wirelen;
	if (pp.kind == PKT_TCP)
		pp.hash = FLOW_Hash(e->table, &pp.p);
	return ENG_PacketPrepared(e, &pp, pkt_id);
}

enum rg_verdict
ENG_PacketPrepared(struct engine *e, struct eng_prep *pp, uint32_t pkt_id)
{
	struct pkt *pk = &pp->p;
	struct nat_join nj;
	struct flow_ref ref;
	struct flow *f;
	enum tcp_state prev;
	int found, probed;
	uint8_t before;

	e->st.packets++;
	e->st.kind[pp->kind]++;
	if (pp->kind != PKT_TCP)
		return RG_ACCEPT;
	if (e->rep.evd)   /* evidence.dir: keep a copy for captures (a memcpy) */
		EVD_Record(e->rep.evd, pp->data, pp->caplen, pp->wirelen, e->now.real_ns);

	found = FLOW_LookupHashed(e->table, pk, pp->hash, &ref);
	nj.cis = -1;
	nj.add = 0;
	if (!found && e->alias)
		found = nat_join(e, pp, &ref, &nj);
	if (found && e->fp)
		FP_SyncFlow(e->fp, ref.flow, fp_seen(e, ref.index, ref.flow), ref.dir, (pk->flags & TCPF_RST) != 0,
			    e->base_mono_ns, e->now.mono_ns);
	before = found ? ref.flow->flags : 0;
	if (pk->flags & TCPF_RST)
		return handle_rst(e, found ? &ref : NULL, pk, pkt_id);

	if (found) {
		f = ref.flow;
		/* A new connection on the tuple of a finished one starts a new flow. */
		if ((pk->flags & (TCPF_SYN | TCPF_ACK)) == TCPF_SYN &&
		    (f->state == TCP_TIME_WAIT || f->state == TCP_CLOSED)) {
			end_flow(e, ref.index, REP_REUSED);
			f = new_flow(e, pk, &ref, -1);
		}
	} else {
		f = new_flow(e, pk, &ref, nj.cis);
		if (f && nj.add)
			nat_add_alias(e, &nj.map, &ref);
	}
	if (f == NULL)
		return RG_ACCEPT;
	probed = (f->flags & FL_PROBING) != 0;
	if (probed) {
		switch (KA_Packet(&e->ka, ref.index, f, ref.dir, pk)) {
		case KA_ANSWER:
			return RG_DROP;   /* our probe's answer: the endpoint must not see it */
		case KA_OWN_PROBE:
			return RG_ACCEPT; /* our probe itself */
		case KA_TRAFFIC:
			break;
		}
	}
	if ((f->flags & FL_PENDING) && pending_news(e, ref.index, f, ref.dir, pk, 0))
		return RG_DROP;   /* our confirmation probe's answer */
	if (f->dir[ref.dir].flags & FD_RST)
		tomb_news(e, ref.index, f, ref.dir, pk);
	/* A silence our probes bridged says nothing about the middlebox's own timeout. */
	if ((f->flags & FL_WATCH) || (!probed && (uint32_t)(e->now.ms - f->last_seen_ms) >= 1000))
		EVI_Packet(&e->evi, ref.index, f, ref.dir, pk);

	f->last_seen_ms = e->now.ms;
	prev = TCP_Update(f, ref.dir, pk, e->now.us);
	state_changed(e, ref.index, f, prev);
	if (e->fp)
		FP_Track(e->fp, f, fp_seen(e, ref.index, f), before, e->now.mono_ns);
	return RG_ACCEPT;
}

/* ---- time ---- */

static uint32_t
expiry_due(void *ctx, uint32_t idx, uint32_t due_s)
{
	struct engine *e = ctx;
	struct flow *f = FLOW_Get(e->table, idx);
	int synced = e->fp ? (FP_SyncFlow(e->fp, f, fp_seen(e, idx, f), -1, 0, e->base_mono_ns, e->now.mono_ns), 1) : 0;
	uint32_t idle_ms = e->now.ms - f->last_seen_ms, deadline;
	uint64_t timeout_ms = (uint64_t)TCP_StateTimeout(&e->cfg->timeout, f->state) * 1000;

	(void)due_s;
	f->flags &= (uint8_t)~FL_LINKED;  /* the wheel unlinked it */
	if (idle_ms >= timeout_ms) {
		end_flow(e, idx, REP_TIMEOUT);
		return 0;
	}
	f->flags |= FL_LINKED;  /* re-linked in the same wheel by the caller */
	deadline = e->now.s + (uint32_t)((timeout_ms - idle_ms + 999) / 1000);
	if (e->cfg->keepalive && f->state == TCP_ESTABLISHED)
		deadline = keepalive_due(e, idx, f, deadline);
	if (synced)
		FP_Track(e->fp, f, fp_seen(e, idx, f), 0, e->now.mono_ns);
	return deadline;
}

void
ENG_SetTime(struct engine *e, const struct engine_time *now)
{
	uint64_t rel;

	/* Never go back (a capture's timestamps may): idle times are unsigned differences. */
	if (now->mono_ns < e->base_mono_ns || now->mono_ns < e->now.mono_ns)
		return;
	e->now.mono_ns = now->mono_ns;
	e->now.real_ns = now->real_ns;
	rel = now->mono_ns - e->base_mono_ns;
	e->now.s = (uint32_t)(rel / 1000000000ULL);
	e->now.ms = (uint32_t)(rel / 1000000ULL);
	e->now.us = (uint32_t)(rel / 1000ULL);
}

/* Judge the pending RSTs whose wait is over. */
static void
pending_due(struct engine *e)
{
	for (uint32_t i = 0; i < e->holds.cap && e->holds.used; i++) {
		struct pending_rst *pr = &e->holds.slots[i];
		struct flow *f;

		if (!pr->in_use || (int32_t)(e->now.ms - pr->deadline_ms) < 0)
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

	if (atomic_load_explicit(&((struct engine *)e)->query, memory_order_relaxed) != NULL)
		return 0;   /* a control query is being answered: come back at once */
	if (!HOLD_NextDeadline(&e->holds, &d))
		return -1;
	left = (int32_t)(d - e->now.ms);
	return left < 0 ? 0 : left;
}

void
ENG_Tick(struct engine *e)
{
	if (e->holds.used)
		pending_due(e);
	/* Once a second (the wheel has not yet been advanced to this second). */
	if (e->now.s != e->wheel[WHEEL_SHORT].now_s)
		EVI_Expire(&e->evi);
	TIMER_Advance(&e->wheel[WHEEL_SHORT], e->table, e->now.s, EXPIRY_BUDGET, expiry_due, e);
	TIMER_Advance(&e->wheel[WHEEL_EST], e->table, e->now.s, EXPIRY_BUDGET, expiry_due, e);
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
	memcpy(e->seed, seed, sizeof(e->seed));
	e->rep.sink = sink;
	e->rep.now = &e->now;
	e->rep.evd_evictions = cfg->evidence_evictions;
	e->rep.table = e->table;
	e->base_mono_ns = start->mono_ns;
	load_params(e);
	KA_SenderInit(&e->probes);
	KA_Init(&e->ka, &(struct ka_ctx){ .cfg = cfg, .now = &e->now, .sender = &e->probes,
					   .flows_cap = FLOW_Capacity(e->table) });
	e->hist = calloc(HISTORY_SLOTS, sizeof(*e->hist));
	e->tomb = calloc(TOMB_SLOTS, sizeof(*e->tomb));
	e->decided = calloc(cfg->max_pending, sizeof(*e->decided));
	if (e->hist == NULL || e->tomb == NULL || e->decided == NULL || HOLD_Init(&e->holds, cfg->max_pending) < 0 ||
	    EVI_Init(&e->evi, &(struct evi_ctx){ .cfg = cfg, .now = &e->now, .table = e->table, .rep = &e->rep },
		     WATCH_SLOTS, LEARN_NETS) < 0) {
		ENG_Destroy(e);
		return NULL;
	}
	/* evidence.dir: the ring is allocated once, here (EVD_Open has opened the directory). */
	if (EVD_Enabled() && cfg->evidence_dir && cfg->evidence_dir[0] &&
	    (e->rep.evd = EVD_CreateRing(cfg->evidence_packets, cfg->evidence_snaplen)) == NULL) {
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
	e->evi.ctx.cfg = cfg;
	e->ka.ctx.cfg = cfg;
	e->rep.evd_evictions = cfg->evidence_evictions;
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
			end_flow(e, i, REP_SHUTDOWN);
	}
}

int
ENG_SetNat(struct engine *e, eng_nat_fn fn, void *ctx)
{
	if (fn && e->alias == NULL) {
		e->alias = ALIAS_Create(e->cfg->nat_max_aliases, FLOW_Capacity(e->table), e->seed);
		if (e->alias == NULL)
			return -1;
		e->rep.alias = e->alias;
		e->ka.ctx.alias = e->alias;
	}
	e->nat_fn = fn;
	e->nat_ctx = ctx;
	return 0;
}

/* The lookup of ENG_OpenNat: conntrack through ctnetlink. */
static int
nat_conntrack(void *ctx, const struct pkt *p, uint16_t zone, struct nat_map *out)
{
	return NAT_Lookup(ctx, p->family, p->src, p->sport, p->dst, p->dport, zone, out);
}

int
ENG_OpenNat(struct engine *e)
{
	struct nat_lookup *n = calloc(1, sizeof(*n));

	if (n == NULL) {
		errno = ENOMEM;
		return -1;
	}
	if (NAT_Open(n, e->cfg->nat_timeout_ms) < 0) {
		int err = errno;

		free(n);
		errno = err;
		return -1;
	}
	if (ENG_SetNat(e, nat_conntrack, n) < 0) {
		NAT_Close(n);
		free(n);
		errno = ENOMEM;
		return -1;
	}
	e->nat_own = n;
	return 0;
}

void
ENG_LogLearned(const struct engine *e)
{
	EVI_LogLearned(&e->evi);
}

void
ENG_SetProbeSender(struct engine *e, eng_send_fn fn, void *ctx)
{
	e->probes.fn = fn;
	e->probes.fn_ctx = ctx;
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
	st->evictions_rst = e->evi.st.evictions_rst;
	st->evictions_blackhole = e->evi.st.evictions_blackhole;
	st->watch_full = e->evi.st.watch_full;
	st->probes_rst = e->evi.st.probes_rst;
	st->probes_sent = e->ka.st.sent;
	st->probes_answered = e->ka.st.answered;
	st->probes_unanswered = e->ka.st.unanswered;
	st->probes_rate_limited = e->ka.st.rate_limited;
	st->probe_errors = e->probes.errors;
	st->flows_active = FLOW_Count(e->table);
	st->flows_capacity = FLOW_Capacity(e->table);
	st->memory_bytes = FLOW_MemoryBytes(e->table) + sizeof(*e) + ALIAS_MemoryBytes(e->alias);
	st->nat_aliases = ALIAS_Count(e->alias);
	if (e->rep.evd) {
		struct evd_stats es = { 0 };

		EVD_AddStats(e->rep.evd, &es);
		st->evidence_written = es.written;
		st->evidence_skipped = es.skipped;
		st->evidence_errors = es.errors;
		st->evidence_removed_bytes = es.removed_bytes;
		st->memory_bytes += (uint64_t)e->rep.evd->cap * (e->rep.evd->snaplen + sizeof(struct evd_slot)) +
				    e->rep.evd->scratch_len;
	}
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
ENG_SetFastPath(struct engine *e, struct fastpath *fp)
{
	e->fp = fp;
}

void
ENG_Destroy(struct engine *e)
{
	if (e == NULL)
		return;
	FLOW_DestroyTable(e->table);
	ALIAS_Destroy(e->alias);
	if (e->nat_own) {
		NAT_Close(e->nat_own);
		free(e->nat_own);
	}
	HOLD_Fini(&e->holds);
	EVI_Fini(&e->evi);
	KA_Fini(&e->ka);
	KA_SenderFini(&e->probes);
	free(e->hist);
	free(e->tomb);
	free(e->decided);
	EVD_DestroyRing(e->rep.evd);
	free(e);
}

/* ---- questions from the control thread ---- */

void
ENG_PostQuery(struct engine *e, struct eng_query *q)
{
	atomic_store_explicit(&q->done, 0, memory_order_relaxed);
	q->cursor = 0;
	q->matched = 0;
	q->n = 0;
	q->nnets = 0;
	atomic_store_explicit(&e->query, q, memory_order_release);
}

static int
query_match(const struct eng_query *q, const struct flow *f)
{
	uint8_t fam = (f->flags & FL_IPV6) ? AF_INET6 : AF_INET;
	size_t alen = fam == AF_INET ? 4 : 16;

	if (q->state >= 0 && f->state != q->state)
		return 0;
	if (q->port && f->cport != q->port && f->sport != q->port)
		return 0;
	if (q->ip_family && (q->ip_family != fam ||
			     (memcmp(f->cli, q->ip, alen) != 0 && memcmp(f->srv, q->ip, alen) != 0)))
		return 0;
	return 1;
}

/* The listed flows' keys form a heap with the least recent on top, so that keeping the most
 * recent `limit` flows costs O(log limit) moves of 16 bytes per flow, and a flow older than
 * all those kept is passed over before anything is copied. */
static void
heap_sift_down(struct eng_query *q, uint32_t i)
{
	for (;;) {
		uint32_t l = 2 * i + 1, r = l + 1, m = i;

		if (l < q->n && q->heap[l].last_mono_ms < q->heap[m].last_mono_ms)
			m = l;
		if (r < q->n && q->heap[r].last_mono_ms < q->heap[m].last_mono_ms)
			m = r;
		if (m == i)
			return;
		{
			__typeof__(q->heap[0]) t = q->heap[i];

			q->heap[i] = q->heap[m];
			q->heap[m] = t;
		}
		i = m;
	}
}

static void
heap_sift_up(struct eng_query *q, uint32_t i)
{
	while (i > 0 && q->heap[(i - 1) / 2].last_mono_ms > q->heap[i].last_mono_ms) {
		__typeof__(q->heap[0]) t = q->heap[i];

		q->heap[i] = q->heap[(i - 1) / 2];
		q->heap[(i - 1) / 2] = t;
		i = (i - 1) / 2;
	}
}

static void
flow_info(const struct engine *e, const struct flow *f, struct eng_flow_info *x)
{
	uint64_t now_ms = e->now.mono_ns / 1000000ULL;
	uint64_t start = e->base_mono_ns + (uint64_t)f->first_seen_cs * 10000000ULL;

	memset(x, 0, sizeof(*x));
	x->flow_id = FLOW_Id(e->table, f);
	x->last_mono_ms = now_ms - (uint32_t)(e->now.ms - f->last_seen_ms);
	x->age_s = e->now.mono_ns > start ? (uint32_t)((e->now.mono_ns - start) / 1000000000ULL) : 0;
	x->family = (f->flags & FL_IPV6) ? AF_INET6 : AF_INET;
	memcpy(x->cli, f->cli, 16);
	memcpy(x->srv, f->srv, 16);
	x->cport = f->cport;
	x->sport = f->sport;
	x->state = f->state;
	x->midstream = (f->flags & FL_MIDSTREAM) != 0;
	for (int d = 0; d < 2; d++) {
		const struct flow_dir *fd = &f->dir[d];

		x->dir[d].pkts = fd->pkts;
		x->dir[d].bytes = fd->bytes;
		x->dir[d].ttl_base = fd->ttl_base;
		x->dir[d].ttl_last = fd->ttl_last;
		x->dir[d].ttl_spread = fd->ttl_spread;
		x->dir[d].ipid_habit = fd->ipid_habit;
		x->dir[d].ipid = fd->ipid;
	}
}

static void
serve_timeouts(const struct engine *e, struct eng_query *q)
{
	struct evict_net nets[ENG_QUERY_MAX_NETS];
	uint32_t n = EVI_Learned(&e->evi, nets, ENG_QUERY_MAX_NETS);

	for (uint32_t i = 0; i < n; i++) {
		struct eng_timeout_info *t = &q->nets[i];

		t->family = nets[i].family;
		t->prefix = nets[i].family == AF_INET ? 24 : 64;
		memcpy(t->addr, nets[i].addr, 16);
		t->max_survived_ms = nets[i].max_survived_ms;
		t->min_evicted_ms = nets[i].min_evicted_ms;
		t->survived = nets[i].survived;
		t->evicted = nets[i].evicted;
	}
	q->nnets = n;
}

void
ENG_ServeQuery(struct engine *e)
{
	struct eng_query *q = atomic_load_explicit(&e->query, memory_order_acquire);

	if (q == NULL)
		return;
	if (q->kind == ENG_Q_FLOWS) {
		uint32_t cap = FLOW_Capacity(e->table);
		uint32_t end = q->cursor + ENG_QUERY_CHUNK < cap ? q->cursor + ENG_QUERY_CHUNK : cap;
		uint32_t limit = q->limit >= 1 && q->limit <= ENG_QUERY_MAX_FLOWS ? q->limit : ENG_QUERY_MAX_FLOWS;

		uint64_t now_ms = e->now.mono_ns / 1000000ULL;
		uint32_t copies = 0, i;

		for (i = q->cursor; i < end && copies < ENG_QUERY_COPIES; i++) {
			const struct flow *f = FLOW_Get(e->table, i);
			uint64_t last;
			uint32_t slot;

			if (i + 8 < end)
				__builtin_prefetch(FLOW_Get(e->table, i + 8));
			if (f->state == TCP_NONE || !query_match(q, f))
				continue;
			q->matched++;
			last = now_ms - (uint32_t)(e->now.ms - f->last_seen_ms);
			if (q->n < limit) {
				slot = q->n++;
				q->heap[slot].last_mono_ms = last;
				q->heap[slot].slot = slot;
				flow_info(e, f, &q->flows[slot]);
				heap_sift_up(q, slot);
				copies++;
			} else if (last > q->heap[0].last_mono_ms) {
				slot = q->heap[0].slot;   /* the least recent kept makes room */
				q->heap[0].last_mono_ms = last;
				flow_info(e, f, &q->flows[slot]);
				heap_sift_down(q, 0);
				copies++;
			}
		}
		q->cursor = i;
		if (i < cap)
			return;
	} else if (q->kind == ENG_Q_TIMEOUTS) {
		serve_timeouts(e, q);
	}
	atomic_store_explicit(&e->query, NULL, memory_order_relaxed);
	atomic_store_explicit(&q->done, 1, memory_order_release);
}
