/* The per-packet path, top to bottom: parse, find the flow, analyse (RSTs), update the TCP state,
 * decide, report. Nothing here allocates, logs or makes a system call per packet; an event is
 * built only when something happened (a RST, a flow's end). */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "engine.h"
#include "flow.h"
#include "json.h"
#include "tcpstate.h"
#include "timer.h"

/* Flows examined per wheel per tick: bounds the expiry work done between two receive batches. */
#define EXPIRY_BUDGET 4096
/* Candidates looked at when the table is full. */
#define EVICT_CANDIDATES 32

enum wheel_id { WHEEL_SHORT = 0, WHEEL_EST = 1 };

struct engine {
	const struct config *cfg;
	struct flow_table *table;
	struct timer_wheel wheel[2];
	struct event_sink *sink;

	uint64_t base_mono_ns;
	struct engine_time now;
	uint32_t now_s, now_ms, now_us;   /* since the base; ms and us wrap, compared wrap-safe */

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

static void
timer_arm(struct engine *e, uint32_t idx, struct flow *f)
{
	enum wheel_id w = wheel_for(f);

	TIMER_Link(&e->wheel[w], e->table, idx, e->now_s + TCP_StateTimeout(&e->cfg->timeout, f->state));
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
put_common(struct engine *e, struct json *j, uint64_t flow_id, const char *type, int family,
	   const uint8_t *src, uint16_t sport, const uint8_t *dst, uint16_t dport)
{
	char ts[40], a[48];

	EV_FormatTime(e->now.real_ns, ts, sizeof(ts));
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
	put_common(e, &j, FLOW_Id(e->table, f), "flow", family, f->cli, f->cport, f->srv, f->sport);
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
emit_rst(struct engine *e, const struct flow *f, int dir, const struct pkt *p, const struct rst_result *r,
	 enum rg_verdict verdict, enum rg_verdict would)
{
	char buf[EVENT_LINE_MAX], fl[10];
	struct json j;

	if (e->sink == NULL || !EV_Allow(e->sink, e->now.mono_ns))
		return;
	JSON_Init(&j, buf, sizeof(buf));
	put_common(e, &j, f ? FLOW_Id(e->table, f) : FLOW_IdForPacket(e->table, p), "rst", p->family,
		   p->src, p->sport, p->dst, p->dport);
	JSON_Str(&j, "verdict", POLICY_VerdictName(verdict));
	JSON_ObjectOpen(&j, "rst");
	JSON_Str(&j, "cause", RST_CauseName(r->cause));
	JSON_Bool(&j, "forged", r->forged);
	JSON_ArrayOpen(&j, "evidence");
	for (unsigned b = 0; b < RST_EV_MAX; b++)
		if (r->evidence & (1u << b))
			JSON_ArrayStr(&j, RST_EvidenceName(b));
	JSON_ArrayClose(&j);
	JSON_Bool(&j, "would_drop", would == RG_DROP);
	JSON_Str(&j, "seq_check", TCP_RstSeqName(r->seq_class));
	JSON_U64(&j, "ttl", p->ttl);
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
	if (f) {
		const struct flow_dir *s = &f->dir[dir];

		JSON_Str(&j, "state", FLOW_StateName((enum tcp_state)f->state));
		JSON_Str(&j, "direction", dir == DIR_TOSERVER ? "toserver" : "toclient");
		JSON_Bool(&j, "midstream", (f->flags & FL_MIDSTREAM) != 0);
		if (s->flags & FD_SEEN)
			JSON_U64(&j, "ttl_baseline", s->ttl_base);
		JSON_U64(&j, "idle_ms", (uint32_t)(e->now_ms - f->last_seen_ms));
	}
	JSON_ObjectClose(&j);
	submit(e, &j);
}

/* ---- flow lifetime ---- */

/* End a flow: report it and give its record back. */
static void
end_flow(struct engine *e, uint32_t idx, const char *reason)
{
	struct flow *f = FLOW_Get(e->table, idx);

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

static enum rg_verdict
handle_rst(struct engine *e, struct flow_ref *ref, const struct pkt *p)
{
	struct flow *f = ref ? ref->flow : NULL;
	int dir = ref ? ref->dir : DIR_TOSERVER;
	struct rst_result r;
	enum rg_verdict verdict, would;

	e->st.rst++;
	RST_Analyse(f, dir, p, e->now_us, &r);
	would = POLICY_WouldDo(e->cfg, &r);
	verdict = POLICY_Decide(e->cfg, &r);
	e->st.rst_cause[r.cause]++;
	if (r.forged)
		e->st.rst_forged++;
	if (would == RG_DROP)
		e->st.rst_would_drop++;
	emit_rst(e, f, dir, p, &r, verdict, would);

	if (verdict == RG_DROP) {
		/* The receiver never sees it: the connection's state does not change. */
		e->st.rst_dropped++;
		return verdict;
	}
	if (f) {
		enum tcp_state prev;

		f->last_seen_ms = e->now_ms;
		prev = TCP_Update(f, dir, p, e->now_us);
		state_changed(e, ref->index, f, prev);
	}
	return verdict;
}

enum rg_verdict
ENG_Packet(struct engine *e, const uint8_t *data, uint32_t caplen, uint32_t wirelen)
{
	struct pkt p;
	struct flow_ref ref;
	struct flow *f;
	enum pkt_kind kind;
	enum tcp_state prev;
	int found;

	e->st.packets++;
	kind = PKT_Parse(data, caplen, wirelen, &p);
	e->st.kind[kind]++;
	if (kind != PKT_TCP)
		return RG_ACCEPT;

	found = FLOW_Lookup(e->table, &p, &ref);
	if (p.flags & TCPF_RST)
		return handle_rst(e, found ? &ref : NULL, &p);

	if (found) {
		f = ref.flow;
		/* A new connection on the tuple of a finished one starts a new flow. */
		if ((p.flags & (TCPF_SYN | TCPF_ACK)) == TCPF_SYN &&
		    (f->state == TCP_TIME_WAIT || f->state == TCP_CLOSED)) {
			end_flow(e, ref.index, reason_reused);
			f = new_flow(e, &p, &ref);
		}
	} else {
		f = new_flow(e, &p, &ref);
	}
	if (f == NULL)
		return RG_ACCEPT;

	f->last_seen_ms = e->now_ms;
	prev = TCP_Update(f, ref.dir, &p, e->now_us);
	state_changed(e, ref.index, f, prev);
	return RG_ACCEPT;
}

/* ---- time ---- */

static uint32_t
expiry_due(void *ctx, uint32_t idx, uint32_t due_s)
{
	struct engine *e = ctx;
	struct flow *f = FLOW_Get(e->table, idx);
	uint32_t idle_ms = e->now_ms - f->last_seen_ms;
	uint64_t timeout_ms = (uint64_t)TCP_StateTimeout(&e->cfg->timeout, f->state) * 1000;

	(void)due_s;
	f->flags &= (uint8_t)~FL_LINKED;  /* the wheel unlinked it */
	if (idle_ms >= timeout_ms) {
		end_flow(e, idx, reason_timeout);
		return 0;
	}
	f->flags |= FL_LINKED;  /* re-linked in the same wheel by the caller */
	return e->now_s + (uint32_t)((timeout_ms - idle_ms + 999) / 1000);
}

void
ENG_SetTime(struct engine *e, const struct engine_time *now)
{
	uint64_t rel;

	if (now->mono_ns < e->base_mono_ns)
		return;  /* never go back */
	e->now = *now;
	rel = now->mono_ns - e->base_mono_ns;
	e->now_s = (uint32_t)(rel / 1000000000ULL);
	e->now_ms = (uint32_t)(rel / 1000000ULL);
	e->now_us = (uint32_t)(rel / 1000ULL);
}

void
ENG_Tick(struct engine *e)
{
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
	ENG_SetTime(e, start);
	TIMER_Init(&e->wheel[WHEEL_SHORT], 0);
	TIMER_Init(&e->wheel[WHEEL_EST], 0);
	return e;
}

void
ENG_SetConfig(struct engine *e, const struct config *cfg)
{
	e->cfg = cfg;
}

void
ENG_Shutdown(struct engine *e)
{
	uint32_t cap = FLOW_Capacity(e->table);

	for (uint32_t i = 0; i < cap && FLOW_Count(e->table) > 0; i++) {
		struct flow *f = FLOW_Get(e->table, i);

		if (f->flags & FL_LINKED)
			end_flow(e, i, reason_shutdown);
	}
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
	free(e);
}
