/* Event composition: one JSON object per line, the common header first (timestamp, flow_id,
 * event_type, endpoints, proto), then an object named after the event type. */
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "evidence.h"
#include "alias.h"
#include "json.h"
#include "report.h"
#include "tcpstate.h"

/* The names of the enums of report.h, as the events spell them. */
static const char *const kind_names[REP_KIND_MAX] = {
	[REP_FLOW] = "flow",
	[REP_RST] = "rst",
	[REP_ANOMALY] = "anomaly",
	[REP_EVICTION] = "eviction",
};

static const char *const reason_names[REP_REASON_MAX] = {
	[REP_TIMEOUT] = "timeout",
	[REP_FORCED] = "forced",
	[REP_SHUTDOWN] = "shutdown",
	[REP_REUSED] = "reused",
};

static const char *const evict_kind_names[REP_EVICT_KIND_MAX] = {
	[REP_EVICT_RST] = "rst",
	[REP_EVICT_BLACKHOLE] = "blackhole",
};

static const char *const detector_names[REP_DETECTOR_MAX] = {
	[REP_BY_TRAFFIC] = "traffic",
	[REP_BY_PROBE] = "probe",
};

static int
flow_family(const struct flow *f)
{
	return (f->flags & FL_IPV6) ? AF_INET6 : AF_INET;
}

/* The NAT alias of a flow's record, or NULL. */
static const struct alias *
nat_of(const struct reporter *rep, uint32_t idx, uint32_t start_cs)
{
	return rep->alias ? ALIAS_OfFlow(rep->alias, idx, start_cs) : NULL;
}

static const struct alias *
nat_of_flow(const struct reporter *rep, const struct flow *f)
{
	return rep->alias ? nat_of(rep, FLOW_Index(rep->table, f), f->first_seen_cs) : NULL;
}

/* A joined connection's endpoints: the real ones at the top level (the client's own address, as
 * its original tuple carries it; the server's own, as its answers carry it: for a port forward
 * the inside server, not the forwarded address), and in a "nat" object the view from the
 * outside (the client as the server's answers are addressed to it: the masquerade address and
 * port; the server as the client addressed it: the forwarded address and port). Events are
 * oriented like their packet: src is the client's side or the server's. */
static void
put_nat(struct json *j, const struct alias *al, int family, int from_client)
{
	int snat = memcmp(al->dst, al->osrc, 16) != 0 || al->dport != al->osport;
	int dnat = memcmp(al->src, al->odst, 16) != 0 || al->sport != al->odport;
	char a[48];

	JSON_ObjectOpen(j, "nat");
	JSON_Str(j, "type", snat && dnat ? "snat+dnat" : dnat ? "dnat" : "snat");
	PKT_FormatAddr(family, from_client ? al->dst : al->odst, a, sizeof(a));
	JSON_Str(j, "src_ip", a);
	JSON_U64(j, "src_port", from_client ? al->dport : al->odport);
	PKT_FormatAddr(family, from_client ? al->odst : al->dst, a, sizeof(a));
	JSON_Str(j, "dest_ip", a);
	JSON_U64(j, "dest_port", from_client ? al->odport : al->dport);
	JSON_U64(j, "zone", al->zone);
	JSON_U64(j, "ct_id", al->ct_id);
	JSON_ObjectClose(j);
}

static void
put_common(struct json *j, uint64_t real_ns, uint64_t flow_id, enum rep_kind kind, int family,
	   const uint8_t *src, uint16_t sport, const uint8_t *dst, uint16_t dport, const struct alias *al)
{
	char ts[40], a[48];
	int from_client = 1;

	if (al && al->family != family)
		al = NULL;
	if (al) {
		/* The flow's key is the original tuple: its server end is the address the client
		 * sent to; the real server is where the answers come from. */
		from_client = memcmp(src, al->osrc, 16) == 0 && sport == al->osport;
		if (from_client) {
			dst = al->src;
			dport = al->sport;
		} else {
			src = al->src;
			sport = al->sport;
		}
	}
	EV_FormatTime(real_ns, ts, sizeof(ts));
	JSON_Str(j, "timestamp", ts);
	JSON_U64(j, "flow_id", flow_id);
	JSON_Str(j, "event_type", kind_names[kind]);
	PKT_FormatAddr(family, src, a, sizeof(a));
	JSON_Str(j, "src_ip", a);
	JSON_U64(j, "src_port", sport);
	PKT_FormatAddr(family, dst, a, sizeof(a));
	JSON_Str(j, "dest_ip", a);
	JSON_U64(j, "dest_port", dport);
	JSON_Str(j, "proto", "TCP");
	if (al)
		put_nat(j, al, family, from_client);
}

/* The evidence capture of a flow (a forged RST's, an eviction's), written whether or not the
 * event itself passes its rate limit. Returns its path, or NULL when none was written. */
static const char *
capture(const struct reporter *rep, int family, const uint8_t *a, uint16_t aport, const uint8_t *b,
	uint16_t bport, uint64_t flow_id, uint64_t real_ns, enum evd_kind kind, char *path, size_t len)
{
	struct evd_flow fl = {
		.family = family, .a = a, .b = b, .aport = aport, .bport = bport,
		.flow_id = flow_id, .real_ns = real_ns,
	};

	return EVD_Capture(rep->evd, &fl, kind, rep->now->mono_ns, path, len) == 0 ? path : NULL;
}

static void
submit(const struct reporter *rep, struct json *j)
{
	size_t len = JSON_Finish(j);

	if (len > 0)
		EV_Submit(rep->sink, j->buf, len);
}

void
REP_FlowEnd(const struct reporter *rep, const struct rep_flow_end *r)
{
	const struct flow *f = r->f;
	char buf[EVENT_LINE_MAX], ts[40];
	struct json j;

	if (rep->sink == NULL || !EV_Allow(rep->sink, rep->now->mono_ns))
		return;
	JSON_Init(&j, buf, sizeof(buf));
	put_common(&j, rep->now->real_ns, r->flow_id, REP_FLOW, flow_family(f), f->cli, f->cport, f->srv, f->sport,
		   nat_of_flow(rep, f));
	JSON_ObjectOpen(&j, "flow");
	JSON_U64(&j, "pkts_toserver", f->dir[DIR_TOSERVER].pkts);
	JSON_U64(&j, "pkts_toclient", f->dir[DIR_TOCLIENT].pkts);
	JSON_U64(&j, "bytes_toserver", f->dir[DIR_TOSERVER].bytes);
	JSON_U64(&j, "bytes_toclient", f->dir[DIR_TOCLIENT].bytes);
	EV_FormatTime(r->start_ns, ts, sizeof(ts));
	JSON_Str(&j, "start", ts);
	EV_FormatTime(r->end_ns, ts, sizeof(ts));
	JSON_Str(&j, "end", ts);
	JSON_U64(&j, "age", r->age_s);
	JSON_Str(&j, "state", FLOW_StateName((enum tcp_state)f->state));
	JSON_Str(&j, "reason", reason_names[r->reason]);
	JSON_Bool(&j, "midstream", (f->flags & FL_MIDSTREAM) != 0);
	if (f->rtt_10us[DIR_TOSERVER] && f->rtt_10us[DIR_TOCLIENT])
		JSON_Double(&j, "rtt_ms", (f->rtt_10us[DIR_TOSERVER] + f->rtt_10us[DIR_TOCLIENT]) / 100.0, 2);
	JSON_ObjectClose(&j);
	submit(rep, &j);
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

void
REP_Rst(const struct reporter *rep, const struct pending_rst *pr, enum rg_verdict verdict, enum rg_verdict would)
{
	const struct pkt *p = &pr->pkt;
	const struct rst_result *r = &pr->res;
	const char *confirmed = HOLD_ConfirmName((enum hold_confirm)pr->confirm);
	char buf[EVENT_LINE_MAX], fl[10], path[EVD_PATH_MAX];
	const char *evidence = NULL;
	struct json j;

	if (rep->evd && r->forged)
		evidence = capture(rep, p->family, p->src, p->sport, p->dst, p->dport, pr->flow_id,
				   pr->revised ? rep->now->real_ns : pr->real_ns, EVD_RST, path, sizeof(path));
	if (rep->sink == NULL || !(r->forged ? EV_AllowAlert : EV_Allow)(rep->sink, rep->now->mono_ns))
		return;
	JSON_Init(&j, buf, sizeof(buf));
	/* A revision is stamped when it is made; first_seen keeps the RST's own time. */
	put_common(&j, pr->revised ? rep->now->real_ns : pr->real_ns, pr->flow_id, REP_RST, p->family, p->src,
		   p->sport, p->dst, p->dport, pr->has_flow ? nat_of(rep, pr->flow_idx, pr->flow_start_cs) : NULL);
	JSON_Str(&j, "verdict", POLICY_VerdictName(verdict));
	if (evidence)
		JSON_Str(&j, "evidence", evidence);
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
		JSON_U64(&j, "held_ms", rep->now->ms - pr->start_ms);
	if (confirmed)
		JSON_Str(&j, "confirmed", confirmed);
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
	submit(rep, &j);
}

void
REP_Anomaly(const struct reporter *rep, const struct pending_rst *pr)
{
	char buf[EVENT_LINE_MAX];
	struct json j;

	if (rep->sink == NULL || !EV_AllowAlert(rep->sink, rep->now->mono_ns))
		return;
	JSON_Init(&j, buf, sizeof(buf));
	put_common(&j, pr->real_ns, pr->flow_id, REP_ANOMALY, pr->pkt.family, pr->pkt.src, pr->pkt.sport,
		   pr->pkt.dst, pr->pkt.dport, pr->has_flow ? nat_of(rep, pr->flow_idx, pr->flow_start_cs) : NULL);
	JSON_ObjectOpen(&j, "anomaly");
	JSON_Str(&j, "type", "stream");
	JSON_Str(&j, "event", "stream.suspected_rst_inject");
	JSON_ObjectClose(&j);
	submit(rep, &j);
}

void
REP_Eviction(const struct reporter *rep, const struct rep_eviction *r)
{
	const struct flow *f = r->f;
	char buf[EVENT_LINE_MAX], path[EVD_PATH_MAX];
	const char *evidence = NULL;
	struct json j;

	if (rep->evd && rep->evd_evictions)
		evidence = capture(rep, flow_family(f), f->cli, f->cport, f->srv, f->sport, r->flow_id,
				   rep->now->real_ns, EVD_EVICTION, path, sizeof(path));
	if (rep->sink == NULL || !EV_AllowAlert(rep->sink, rep->now->mono_ns))
		return;
	JSON_Init(&j, buf, sizeof(buf));
	put_common(&j, rep->now->real_ns, r->flow_id, REP_EVICTION, flow_family(f), f->cli, f->cport, f->srv,
		   f->sport, nat_of_flow(rep, f));
	if (evidence)
		JSON_Str(&j, "evidence", evidence);
	JSON_ObjectOpen(&j, "eviction");
	JSON_Str(&j, "kind", evict_kind_names[r->kind]);
	JSON_Double(&j, "idle", r->gap_ms / 1000.0, 3);
	if (r->retrans)
		JSON_U64(&j, "retransmits", r->retrans);
	if (r->timeout_s)
		JSON_U64(&j, "timeout", r->timeout_s);
	JSON_Str(&j, "detected_by", detector_names[r->by]);
	if (r->network[0]) {
		JSON_ObjectOpen(&j, "learned");
		JSON_Str(&j, "network", r->network);
		JSON_Double(&j, "max_survived", r->max_survived_ms / 1000.0, 3);
		if (r->min_evicted_ms)
			JSON_Double(&j, "min_evicted", r->min_evicted_ms / 1000.0, 3);
		JSON_ObjectClose(&j);
	}
	JSON_ObjectClose(&j);
	submit(rep, &j);
}
