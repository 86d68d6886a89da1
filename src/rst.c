/* RST analysis. Two questions per RST: what the wire state says caused it (the cause a genuine
 * RST at this point would have), and whether its claimed sender really sent it (the forged-RST
 * signals of Weaver, Sommer and Paxson, NDSS 2009, and the injector signatures documented since).
 * Signals are weighted so that one weak oddity never makes a RST forged, while a TTL or IP ID that
 * contradicts the sender, or the sender talking on after its own RST, does. */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "rst.h"

static const char *const cause_names[RST_CAUSE_MAX] = {
	"no_flow", "refused", "connect_abort", "abort", "unread_data", "closed_socket",
	"keepalive_timeout", "time_wait", "idle_eviction", "injected", "invalid_seq",
};

/* Weights. The threshold (60 by default) is the lightest conclusive signal. Corroborating signals
 * about how the RST was built (IP header, ACK, window, timestamp, options) weigh 30, so two of
 * different groups reach it; those that an incomplete view of the flow or plain timing can raise
 * on a genuine RST (a gateway that missed packets sees seq_ahead; a spontaneous abort during a
 * download lands within half an RTT of a client ACK; RFC 9293 3.10.7.1 allows data on a RST; some
 * stacks repeat a RST) weigh 20 or less and need two companions. docs/detection.md */
static const struct {
	const char *name;
	int weight;
	int conclusive;
	const char *group;
} evidence[RST_EV_COUNT] = {
	[RST_EV_TTL] = { "ttl", 60, 1, "ttl" },
	[RST_EV_IPID] = { "ipid", 30, 0, "ip" },
	[RST_EV_DF] = { "df", 30, 0, "ip" },
	[RST_EV_SEQ_AHEAD] = { "seq_ahead", 20, 0, "seq" },
	[RST_EV_SEQ_BURST] = { "seq_burst", 60, 1, "burst" },
	[RST_EV_TTL_BURST] = { "ttl_burst", 30, 0, "ttl" },
	[RST_EV_IDENTICAL] = { "identical_copies", 10, 0, "copies" },
	[RST_EV_RACE] = { "race", 100, 1, "race" },
	[RST_EV_TOO_FAST] = { "too_fast", 20, 0, "timing" },
	[RST_EV_PAYLOAD] = { "payload", 20, 0, "payload" },
	[RST_EV_WINDOW_COPY] = { "window_copy", 30, 0, "window" },
	[RST_EV_ACK_INVALID] = { "ack_invalid", 30, 0, "ack" },
	[RST_EV_WINDOW_FOREIGN] = { "window_foreign", 30, 0, "window" },
	[RST_EV_TS_ECHO] = { "ts_echo", 30, 0, "timestamp" },
	[RST_EV_SIGNED] = { "signed", 30, 0, "option" },
	[RST_EV_IPID_SIGNATURE] = { "ipid_signature", 60, 1, "signature" },
	[RST_EV_RACE_LATE] = { "race_late", 100, 1, "race" },
	[RST_EV_SYNACK_LATE] = { "synack_late", 100, 1, "race" },
	[RST_EV_PROBE_ACK] = { "probe_ack", 100, 1, "probe" },
};

const char *
RST_CauseName(enum rst_cause c)
{
	return (unsigned)c < RST_CAUSE_MAX ? cause_names[c] : "unknown";
}

const char *
RST_EvidenceName(unsigned bit)
{
	return bit < RST_EV_COUNT ? evidence[bit].name : "unknown";
}

/* Conclusive, or two corroborating signals of different groups. */
static int
convincing(uint32_t bits)
{
	const char *first = NULL;

	for (unsigned b = 0; b < RST_EV_COUNT; b++) {
		if (!(bits & (1u << b)))
			continue;
		if (evidence[b].conclusive)
			return 1;
		if (first == NULL)
			first = evidence[b].group;
		else if (strcmp(first, evidence[b].group) != 0)
			return 1;
	}
	return 0;
}

/* The cause a genuine RST would have at this point of the connection. */
static enum rst_cause
apparent_cause(const struct flow *f, int dir, const struct pkt *p)
{
	const struct flow_dir *s = &f->dir[dir], *r = &f->dir[!dir];

	switch (f->state) {
	case TCP_SYN_SENT:
		if (dir == DIR_TOCLIENT)
			return RST_CAUSE_REFUSED;
		/* The server answered the SYN with a bare ACK: it holds the tuple in TIME_WAIT,
		 * and the client resets that old state before trying again. */
		if ((r->flags & FD_SEEN) && !(r->flags & FD_SYN))
			return RST_CAUSE_TIME_WAIT;
		return RST_CAUSE_CONNECT_ABORT;
	case TCP_SYN_RECV:
		/* Client: gave up (connect or receive timeout) when the SYN-ACK came. Server: it
		 * sent its SYN-ACK, then refused (accept queue overflow with abort_on_overflow). */
		return dir == DIR_TOSERVER ? RST_CAUSE_CONNECT_ABORT : RST_CAUSE_REFUSED;
	default:
		break;
	}
	/* The other side was reset by a forged RST: this side's socket is gone, so its stack
	 * answers our next segments with genuine RSTs. */
	if (r->flags & FD_FORGED)
		return RST_CAUSE_CLOSED_SOCKET;
	/* The sender had closed (FIN) and still received data, or it answers without an ACK:
	 * the format of a stack with no socket for the segment. */
	if ((s->flags & FD_FIN) && (r->flags & FD_LASTDATA))
		return RST_CAUSE_CLOSED_SOCKET;
	if (!(p->flags & TCPF_ACK))
		return RST_CAUSE_CLOSED_SOCKET;
	if (s->ka_probes >= 2)
		return RST_CAUSE_KEEPALIVE_TIMEOUT;
	if (s->flags & FD_FIN)
		return RST_CAUSE_CLOSED_SOCKET;
	/* The sender's first reaction to data it had just received is a RST that acknowledges it:
	 * the application closed with that data unread. On the wire this is the same as an
	 * application aborting right after reading, which is why abort is kept for the rest. */
	if ((r->flags & FD_LASTDATA) && (r->flags & FD_SEEN) && p->ack == r->next_seq && !(s->flags & FD_LASTDATA))
		return RST_CAUSE_UNREAD_DATA;
	return RST_CAUSE_ABORT;
}

static void
add(struct rst_result *r, unsigned bit)
{
	if (!(r->evidence & (1u << bit))) {
		r->evidence |= 1u << bit;
		r->score += evidence[bit].weight;
	}
}

static int
ttl_off(uint8_t a, uint8_t b, uint8_t tol)
{
	return abs((int)a - (int)b) > tol;
}

/* IP ID and DF (IPv4). Stacks draw a RST sent without a socket from another source than the
 * connection's packets: 0 with DF (Linux, FreeBSD, XNU), a per-destination or host-wide counter
 * (Linux before 2018, Windows, Solaris), a random value (OpenBSD). So an ID far from the
 * connection's own counter says nothing; only values that no source of a stack with the sender's
 * habit yields are evidence (docs/detection.md, research/ip-id-and-ttl-by-stack.md). */
static void
judge_ip(const struct flow_dir *s, const struct flow_dir *r, const struct pkt *p, struct rst_result *out)
{
	int seen = (s->flags & FD_SEEN) != 0;

	if (p->family != AF_INET)
		return;
	/* A sender that stamps 0 on every DF packet (FreeBSD, XNU with rfc6864) does so on its
	 * RSTs too, socket or not. */
	if (seen && s->ipid_habit == IPID_CONSTANT && s->ipid == 0 && s->ipid_samples >= 3 && (s->flags & FD_DF) &&
	    p->df && p->ipid != 0)
		add(out, RST_EV_IPID);
	/* A counter never gives the same value twice in a row: a copy of the sender's last ID. */
	else if (seen && s->ipid_habit == IPID_INCREMENTING && s->ipid_samples >= 3 && p->ipid != 0 &&
		 p->ipid == s->ipid)
		add(out, RST_EV_IPID);
	/* The other side's last ID (the SYN's, for an answer to a SYN): copied by an injector
	 * that built its RST from what it saw. */
	else if (p->ipid != 0 && (r->flags & FD_SEEN) && p->ipid == r->ipid &&
		 (!seen || (uint16_t)(p->ipid - s->ipid) > 1024))
		add(out, RST_EV_IPID);
	if (seen && (s->flags & FD_DF) && !p->df)
		add(out, RST_EV_DF);
}

/* The per-signal judgement against the claimed sender's baseline. */
static void
judge(const struct flow *f, int dir, const struct pkt *p, const struct rst_context *ctx,
      const struct rst_params *par, struct rst_result *out)
{
	const struct flow_dir *s = &f->dir[dir], *r = &f->dir[!dir];
	const struct rst_history *h = ctx->hist;
	uint32_t rtt_us;

	judge_ip(s, r, p, out);
	if (s->flags & FD_SEEN) {
		/* TTL: both the first and the latest packet disagree, and the sender's own packets
		 * kept to one path (a route that moves makes the TTL no evidence). */
		if (s->pkts >= 2 && s->ttl_spread <= par->ttl_tolerance &&
		    ttl_off(p->ttl, s->ttl_base, par->ttl_tolerance) && ttl_off(p->ttl, s->ttl_last, par->ttl_tolerance))
			add(out, RST_EV_TTL);
		/* A stack's RST carries SND.NXT at most: beyond it, the sender never sent those bytes. */
		if (f->state >= TCP_ESTABLISHED && SEQ_GT(p->seq, s->next_seq))
			add(out, RST_EV_SEQ_AHEAD);
		/* A stack's RST has window 0 (no socket) or its socket's current receive window,
		 * which grows beyond the last one advertised only as the application reads: not
		 * by 4x within a second of traffic. An injector writes a constant of its own. */
		if (p->win != 0 && s->win != 0 && (uint32_t)p->win > 4u * s->win + 1024u && p->win != r->win &&
		    ctx->since_last_us < 1000000)
			add(out, RST_EV_WINDOW_FOREIGN);
	}
	if (p->win != 0 && (r->flags & FD_SEEN) && p->win == r->win && (!(s->flags & FD_SEEN) || p->win != s->win))
		add(out, RST_EV_WINDOW_COPY);
	if ((p->flags & TCPF_ACK) && (r->flags & FD_SEEN)) {
		if (SEQ_GT(p->ack, r->next_seq))
			add(out, RST_EV_ACK_INVALID);   /* acknowledges data never sent */
		else if ((r->flags & FD_ISN) && p->ack == r->isn)
			add(out, RST_EV_ACK_INVALID);   /* acknowledges the SYN's seq instead of seq + 1 */
	}
	/* Timestamps only grow: an echo above the receiver's latest TSval was never sent. */
	if ((p->opts & TCPOPT_HAS_TS) && p->tsecr != 0 && (r->flags & FD_TS) && SEQ_GT(p->tsecr, r->tsval))
		add(out, RST_EV_TS_ECHO);
	/* A signature the receiver has no key for: it discards the segment (Linux
	 * tcp_inbound_hash). Injectors use it to reach a middlebox but not the endpoint. */
	if ((p->opts & (TCPOPT_HAS_MD5 | TCPOPT_HAS_AO)) && !(s->flags & FD_MD5) && !(r->flags & FD_MD5)) {
		add(out, RST_EV_SIGNED);
		out->discarded = 1;
	}
	if (p->payload_len > 0)
		add(out, RST_EV_PAYLOAD);
	if (ctx->signature)
		add(out, RST_EV_IPID_SIGNATURE);

	if (h) {
		if (p->seq != h->last_seq && SEQ_GT(p->seq, s->next_seq) && (s->flags & FD_SEEN))
			add(out, RST_EV_SEQ_BURST);
		/* Copies with different TTLs (injectors that vary it), unless this one carries the
		 * sender's own TTL, first or latest: then it is the genuine RST after an injected
		 * one, or after a route change. */
		if (ttl_off(p->ttl, h->last_ttl, par->ttl_tolerance) &&
		    (!(s->flags & FD_SEEN) || (ttl_off(p->ttl, s->ttl_base, par->ttl_tolerance) &&
					       ttl_off(p->ttl, s->ttl_last, par->ttl_tolerance))))
			add(out, RST_EV_TTL_BURST);
		if (p->seq == h->last_seq && p->ack == h->last_ack && p->ttl == h->last_ttl && h->identical >= 1)
			add(out, RST_EV_IDENTICAL);
	}

	/* Faster than the sender could answer what the receiver last sent. */
	rtt_us = (uint32_t)f->rtt_10us[dir == DIR_TOCLIENT ? DIR_TOSERVER : DIR_TOCLIENT] * 10;
	if (ctx->last_from_receiver && rtt_us >= par->min_rtt_us && ctx->since_last_us < rtt_us / 2)
		add(out, RST_EV_TOO_FAST);
}

void
RST_Analyse(const struct flow *f, int dir, const struct pkt *p, const struct rst_context *ctx,
	    const struct rst_params *par, struct rst_result *out)
{
	memset(out, 0, sizeof(*out));
	if (f == NULL) {
		out->cause = out->apparent = RST_CAUSE_NO_FLOW;
		out->seq_class = RST_SEQ_UNKNOWN;
		return;
	}
	out->seq_class = TCP_ClassifyRstSeq(f, dir, p);
	out->apparent = apparent_cause(f, dir, p);
	/* A flow picked up mid-stream has no trustworthy baseline yet: judge nothing. */
	if (!(f->flags & FL_MIDSTREAM) || (f->dir[dir].pkts >= 4 && f->dir[!dir].pkts >= 4))
		judge(f, dir, p, ctx, par, out);
	/* After a silence the path may not have survived, a RST that is not the endpoint's own
	 * socket speaking (RST/ACK at exactly its SND.NXT, nothing odd about it) is the middlebox
	 * that forgot the flow, or the endpoint's stack answering a flow it never heard of again:
	 * an eviction, whatever else it looks like. It is never forged-and-dropped. */
	if (ctx->eviction) {
		const struct flow_dir *s = &f->dir[dir];
		int from_socket = (p->flags & TCPF_ACK) && (s->flags & FD_SEEN) && p->seq == s->next_seq &&
				  out->score == 0 && !(p->family == AF_INET && p->ipid == 0 && p->df);

		out->eviction = !from_socket;
	}
	RST_AddEvidence(out, RST_EV_COUNT, par);
}

void
RST_AddEvidence(struct rst_result *r, unsigned bit, const struct rst_params *par)
{
	if (bit < RST_EV_COUNT)
		add(r, bit);
	r->forged = !r->eviction && r->score >= par->threshold && convincing(r->evidence);
	if (r->eviction)
		r->cause = RST_CAUSE_IDLE_EVICTION;
	else if (r->forged)
		r->cause = RST_CAUSE_INJECTED;
	else if (r->seq_class == RST_SEQ_OUT_OF_WINDOW)
		r->cause = RST_CAUSE_INVALID_SEQ;
	else
		r->cause = r->apparent;
}

int
RST_IsRace(const struct pkt *p, const struct pkt *rst, uint32_t ack_before)
{
	if (p->flags & (TCPF_RST | TCPF_SYN))
		return 0;
	/* A FIN at or beyond the RST's sequence: the sender's socket is still there, closing. */
	if ((p->flags & TCPF_FIN) && SEQ_GEQ(p->seq, rst->seq))
		return 1;
	/* New data at or beyond the RST's own sequence number: sent after it. Older data is a
	 * reordered segment, not a contradiction. */
	if (p->payload_len > 0 && SEQ_GEQ(p->seq, rst->seq))
		return 1;
	/* An ACK that moves forward: the sender's stack is still receiving. At or beyond the
	 * RST's seq, beyond what the gateway saw it acknowledge before; at any seq (a RST far out
	 * of window), beyond what the RST/ACK itself acknowledged. */
	if (!(p->flags & TCPF_ACK))
		return 0;
	if (SEQ_GEQ(p->seq, rst->seq) && SEQ_GT(p->ack, ack_before))
		return 1;
	return (rst->flags & TCPF_ACK) && SEQ_GT(p->ack, rst->ack) && SEQ_GT(p->ack, ack_before);
}

int
RST_IsLateSynAck(const struct pkt *p)
{
	return (p->flags & (TCPF_SYN | TCPF_ACK | TCPF_RST)) == (TCPF_SYN | TCPF_ACK);
}

int
RST_SignatureSeen(struct rst_signatures *t, const struct pkt *p, uint32_t host, uint16_t sender_last_ipid,
		  uint32_t now_ms)
{
	struct rst_sig_slot *sl;
	unsigned n = 0, i, free_i = RST_SIG_HOSTS;

	if (p->family != AF_INET || p->df || p->ipid == 0 || p->ipid == sender_last_ipid || host == 0)
		return 0;
	sl = &t->slot[(p->ipid * 31u + p->win) % RST_SIG_SLOTS];
	if (sl->ipid != p->ipid || sl->win != p->win || now_ms - sl->last_ms > RST_SIG_WINDOW_MS) {
		memset(sl, 0, sizeof(*sl));
		sl->ipid = p->ipid;
		sl->win = p->win;
	}
	sl->last_ms = now_ms;
	for (i = 0; i < RST_SIG_HOSTS; i++) {
		if (sl->hosts[i] == host)
			free_i = RST_SIG_HOSTS + 1;   /* already counted */
		else if (sl->hosts[i] == 0 && free_i == RST_SIG_HOSTS)
			free_i = i;
	}
	if (free_i < RST_SIG_HOSTS)
		sl->hosts[free_i] = host;
	for (i = 0; i < RST_SIG_HOSTS; i++)
		n += sl->hosts[i] != 0;
	return n >= RST_SIG_HOSTS;
}

void
RST_Remember(struct rst_history *h, uint32_t key, uint32_t flow_start_cs, const struct pkt *p, uint32_t now_ms)
{
	if (h->key == key && h->flow_start_cs == flow_start_cs && now_ms - h->last_ms <= RST_BURST_WINDOW_MS) {
		if (h->count < 255)
			h->count++;
		if (p->seq == h->last_seq && p->ack == h->last_ack && p->ttl == h->last_ttl) {
			if (h->identical < 255)
				h->identical++;
		} else {
			h->identical = 0;
		}
	} else {
		h->key = key;
		h->flow_start_cs = flow_start_cs;
		h->count = 1;
		h->identical = 0;
	}
	h->last_ms = now_ms;
	h->last_seq = p->seq;
	h->last_ack = p->ack;
	h->last_ttl = p->ttl;
}
