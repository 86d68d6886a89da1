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

static const struct {
	const char *name;
	int weight;
} evidence[RST_EV_COUNT] = {
	[RST_EV_TTL] = { "ttl", 60 },
	[RST_EV_IPID] = { "ipid", 60 },
	[RST_EV_DF] = { "df", 30 },
	[RST_EV_SEQ_AHEAD] = { "seq_ahead", 40 },
	[RST_EV_SEQ_BURST] = { "seq_burst", 60 },
	[RST_EV_TTL_BURST] = { "ttl_burst", 50 },
	[RST_EV_IDENTICAL] = { "identical_copies", 10 },
	[RST_EV_RACE] = { "race", 100 },
	[RST_EV_TOO_FAST] = { "too_fast", 40 },
	[RST_EV_PAYLOAD] = { "payload", 20 },
	[RST_EV_WINDOW_COPY] = { "window_copy", 20 },
	[RST_EV_ACK_INVALID] = { "ack_invalid", 40 },
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

int
RST_EvidenceWeight(unsigned bit)
{
	return bit < RST_EV_COUNT ? evidence[bit].weight : 0;
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

/* The per-signal judgement against the claimed sender's baseline. */
static void
judge(const struct flow *f, int dir, const struct pkt *p, const struct rst_context *ctx,
      const struct rst_params *par, struct rst_result *out)
{
	const struct flow_dir *s = &f->dir[dir], *r = &f->dir[!dir];
	const struct rst_history *h = ctx->hist;
	uint32_t rtt_us;

	if (s->flags & FD_SEEN) {
		/* TTL: both the first and the latest packet must disagree (route changes move it). */
		if (ttl_off(p->ttl, s->ttl_base, par->ttl_tolerance) && ttl_off(p->ttl, s->ttl_last, par->ttl_tolerance))
			add(out, RST_EV_TTL);

		if (p->family == AF_INET) {
			uint16_t delta = (uint16_t)(p->ipid - s->ipid);

			/* Linux sends RSTs that have no socket with IP ID 0 and DF: never evidence. */
			int kernel_reply = p->ipid == 0 && p->df;

			if (s->ipid_habit == IPID_INCREMENTING && s->ipid_samples >= 3 && !kernel_reply &&
			    (delta == 0 || delta > 1024))
				add(out, RST_EV_IPID);
			else if (s->ipid_habit == IPID_ZERO && s->ipid_samples >= 3 && p->ipid != 0)
				add(out, RST_EV_IPID);
			else if (p->ipid != 0 && (r->flags & FD_SEEN) && p->ipid == r->ipid &&
				 s->ipid_habit != IPID_UNKNOWN && delta > 1024)
				add(out, RST_EV_IPID);  /* copied from the other direction */
			if ((s->flags & FD_DF) && !p->df)
				add(out, RST_EV_DF);
		}
		/* A stack's RST carries SND.NXT at most: beyond it, the sender never sent those bytes. */
		if (f->state >= TCP_ESTABLISHED && SEQ_GT(p->seq, s->next_seq))
			add(out, RST_EV_SEQ_AHEAD);
		if (p->win != 0 && (r->flags & FD_SEEN) && p->win == r->win && p->win != s->win)
			add(out, RST_EV_WINDOW_COPY);
	}
	if ((p->flags & TCPF_ACK) && (r->flags & FD_SEEN)) {
		if (SEQ_GT(p->ack, r->next_seq))
			add(out, RST_EV_ACK_INVALID);   /* acknowledges data never sent */
		else if ((r->flags & FD_ISN) && p->ack == r->isn)
			add(out, RST_EV_ACK_INVALID);   /* acknowledges the SYN's seq instead of seq + 1 */
	}
	if (p->payload_len > 0)
		add(out, RST_EV_PAYLOAD);

	if (h) {
		if (p->seq != h->last_seq && SEQ_GT(p->seq, s->next_seq) && (s->flags & FD_SEEN))
			add(out, RST_EV_SEQ_BURST);
		/* Copies with different TTLs (injectors that vary it), unless this one carries the
		 * sender's own TTL: then it is the genuine RST after an injected one. */
		if (ttl_off(p->ttl, h->last_ttl, par->ttl_tolerance) &&
		    (!(s->flags & FD_SEEN) || ttl_off(p->ttl, s->ttl_base, par->ttl_tolerance)))
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
	r->forged = !r->eviction && r->score >= par->threshold;
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
RST_IsRace(const struct pkt *p, uint32_t rst_seq, uint32_t ack_before)
{
	if (p->flags & (TCPF_RST | TCPF_SYN))
		return 0;
	/* A FIN at or beyond the RST's sequence: the sender's socket is still there, closing. */
	if ((p->flags & TCPF_FIN) && SEQ_GEQ(p->seq, rst_seq))
		return 1;
	/* New data at or beyond the RST's own sequence number: sent after it. Older data is a
	 * reordered segment, not a contradiction. */
	if (p->payload_len > 0 && SEQ_GEQ(p->seq, rst_seq))
		return 1;
	/* An ACK that moves forward: the sender's stack is still receiving. */
	if ((p->flags & TCPF_ACK) && SEQ_GEQ(p->seq, rst_seq) && SEQ_GT(p->ack, ack_before))
		return 1;
	return 0;
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
