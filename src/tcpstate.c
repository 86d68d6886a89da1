/* TCP tracking from the middle of the path. Everything learnt here comes from packets that are
 * not RSTs: a RST may be forged, so it never moves a sender's sequence, ACK, TTL or IP ID
 * baseline; it only changes the connection state once the engine has let it through. */
#include <stdlib.h>
#include <sys/socket.h>

#include "tcpstate.h"

/* Sequence space a segment occupies (payload, plus one each for SYN and FIN). */
static inline uint32_t
seg_len(const struct pkt *p)
{
	return p->payload_len + ((p->flags & TCPF_SYN) ? 1 : 0) + ((p->flags & TCPF_FIN) ? 1 : 0);
}

static inline uint16_t
rtt_units(uint32_t from_us, uint32_t to_us)
{
	uint32_t d = (to_us - from_us) / 10;

	if (d == 0)
		d = 1;  /* measured, just very short (namespaces, LANs) */
	return d > 65535 ? 65535 : (uint16_t)d;
}

void
TCP_InitFlow(struct flow *f, const struct pkt *p, uint32_t now_cs, uint32_t now_us)
{
	f->first_seen_cs = now_cs;
	f->hs_us = now_us;
	if ((p->flags & (TCPF_SYN | TCPF_ACK)) == TCPF_SYN) {
		f->state = TCP_SYN_SENT;
	} else if ((p->flags & (TCPF_SYN | TCPF_ACK)) == (TCPF_SYN | TCPF_ACK)) {
		f->state = TCP_SYN_RECV;
		f->flags |= FL_MIDSTREAM;
	} else {
		f->state = TCP_ESTABLISHED;
		f->flags |= FL_MIDSTREAM;
	}
}

/* IP ID habit of a sender, with hysteresis so that one odd packet does not flip it. */
static void
learn_ipid(struct flow_dir *d, const struct pkt *p)
{
	uint8_t vote;
	uint16_t delta;

	if (p->family != AF_INET)
		return;
	if (d->flags & FD_SEEN) {
		delta = (uint16_t)(p->ipid - d->ipid);
		if (p->ipid == d->ipid)
			vote = IPID_CONSTANT;
		else if (delta >= 1 && delta <= 1024)
			vote = IPID_INCREMENTING;  /* GSO packets advance it by their segment count */
		else
			vote = IPID_RANDOM;
		if (vote == d->ipid_habit) {
			if (d->ipid_samples < IPID_SAMPLES_MAX)
				d->ipid_samples++;
		} else if (d->ipid_samples > 1) {
			d->ipid_samples -= 2;
		} else {
			d->ipid_habit = vote;
			d->ipid_samples = 1;
		}
	}
	d->ipid = p->ipid;
}

static void
update_close_state(struct flow *f)
{
	const struct flow_dir *c = &f->dir[DIR_TOSERVER], *s = &f->dir[DIR_TOCLIENT];
	int fins = ((c->flags & FD_FIN) != 0) + ((s->flags & FD_FIN) != 0);
	int acked = ((c->flags & FD_FIN_ACKED) != 0) + ((s->flags & FD_FIN_ACKED) != 0);

	if (fins == 0)
		return;
	if (acked == 2)
		f->state = TCP_TIME_WAIT;
	else if (fins == 2)
		f->state = TCP_CLOSING;
	else
		f->state = TCP_FIN_WAIT;
}

enum tcp_state
TCP_Update(struct flow *f, int dir, const struct pkt *p, uint32_t now_us)
{
	struct flow_dir *d = &f->dir[dir], *o = &f->dir[!dir];
	enum tcp_state prev = (enum tcp_state)f->state;
	uint32_t end;

	d->pkts++;
	d->bytes += p->ip_len;

	if (p->flags & TCPF_RST) {
		enum rst_seq_class c = TCP_ClassifyRstSeq(f, dir, p);

		d->flags |= FD_RST;
		f->flags |= FL_RST_SEEN;
		/* Only a RST the receiver takes ends the connection; an in-window one draws a
		 * challenge ACK and an out-of-window one is ignored. */
		if (c == RST_SEQ_EXACT || c == RST_SEQ_UNKNOWN)
			f->state = TCP_CLOSED;
		return prev;
	}

	if (!(d->flags & FD_SEEN) || (p->flags & TCPF_SYN)) {
		d->ttl_base = p->ttl;
		d->ttl_spread = 0;
	} else if (p->ttl != d->ttl_last) {   /* the same TTL as the last one: already counted */
		int off = abs((int)p->ttl - (int)d->ttl_base);

		if (off > d->ttl_spread)
			d->ttl_spread = (uint8_t)(off > 255 ? 255 : off);
	}
	d->ttl_last = p->ttl;
	if (p->df)
		d->flags |= FD_DF;
	else
		d->flags &= (uint16_t)~FD_DF;
	learn_ipid(d, p);

	end = p->seq + seg_len(p);
	if (!(d->flags & FD_SEEN) || SEQ_GT(end, d->next_seq))
		d->next_seq = end;
	if (p->flags & TCPF_ACK) {
		if (!(d->flags & FD_ACK) || SEQ_GT(p->ack, d->last_ack))
			d->last_ack = p->ack;
		d->flags |= FD_ACK;
		if ((o->flags & FD_FIN) && SEQ_GEQ(p->ack, o->next_seq))
			o->flags |= FD_FIN_ACKED;
	}
	d->win = p->win;
	if (p->opts & TCPOPT_HAS_TS) {
		d->tsval = p->tsval;
		if (!(p->flags & TCPF_SYN))
			d->flags |= FD_TS;
	}
	if (p->opts & (TCPOPT_HAS_MD5 | TCPOPT_HAS_AO))
		d->flags |= FD_MD5;
	if (p->flags & TCPF_SYN) {
		d->isn = p->seq;
		d->flags |= FD_ISN | FD_SYN;
		if (p->opts & TCPOPT_HAS_WSCALE) {
			d->wscale = p->wscale;
			d->flags |= FD_WSCALE;
		}
		if (p->opts & TCPOPT_HAS_SACKOK)
			d->flags |= FD_SACKOK;
		if (p->opts & TCPOPT_HAS_TS)
			d->flags |= FD_TS;
	}
	if (p->flags & TCPF_FIN)
		d->flags |= FD_FIN;

	/* Keepalive probes (RFC 1122: seq = SND.NXT - 1, no or one garbage byte) until answered. */
	if (SEQ_LT(p->seq, d->next_seq) && p->seq + 1 == d->next_seq && p->payload_len <= 1 &&
	    !(p->flags & (TCPF_SYN | TCPF_FIN))) {
		if (d->ka_probes < 255)
			d->ka_probes++;
	} else if (p->payload_len > 0) {
		d->ka_probes = 0;
	}
	o->ka_probes = 0;  /* the peer hears from us: its probes are answered */
	if (p->payload_len > 0) {
		d->flags |= FD_LASTDATA;
		o->flags &= (uint16_t)~FD_LASTDATA;
	}
	d->flags |= FD_SEEN | FD_LAST;
	o->flags &= (uint16_t)~FD_LAST;

	switch (f->state) {
	case TCP_SYN_SENT:
		if (dir == DIR_TOCLIENT && (p->flags & (TCPF_SYN | TCPF_ACK)) == (TCPF_SYN | TCPF_ACK)) {
			f->state = TCP_SYN_RECV;
			f->rtt_10us[DIR_TOSERVER] = rtt_units(f->hs_us, now_us);
			f->hs_us = now_us;
		}
		break;
	case TCP_SYN_RECV:
		if (dir == DIR_TOSERVER && !(p->flags & TCPF_SYN) && (p->flags & TCPF_ACK)) {
			f->state = TCP_ESTABLISHED;
			if (!(f->flags & FL_MIDSTREAM))
				f->rtt_10us[DIR_TOCLIENT] = rtt_units(f->hs_us, now_us);
		}
		break;
	case TCP_ESTABLISHED:
	case TCP_FIN_WAIT:
	case TCP_CLOSING:
		update_close_state(f);
		break;
	default:
		break;
	}
	return prev;
}

enum rst_seq_class
TCP_ClassifyRstSeq(const struct flow *f, int dir, const struct pkt *p)
{
	const struct flow_dir *s = &f->dir[dir], *r = &f->dir[!dir];
	uint32_t win, lo;

	/* A RST answering a SYN is valid only if it acknowledges exactly the SYN (RFC 9293 3.10.7.3). */
	if (f->state == TCP_SYN_SENT && dir == DIR_TOCLIENT) {
		if ((p->flags & TCPF_ACK) && (r->flags & FD_SEEN) && p->ack == r->next_seq)
			return RST_SEQ_EXACT;
		return RST_SEQ_OUT_OF_WINDOW;
	}
	/* The receiver's RCV.NXT lies between what it has acknowledged and what the sender has
	 * sent; any value in that range is taken as exact (a delayed ACK may be in flight). */
	if (r->flags & FD_ACK) {
		lo = r->last_ack;
		if ((s->flags & FD_SEEN) && SEQ_GEQ(s->next_seq, lo)) {
			if (SEQ_GEQ(p->seq, lo) && SEQ_LEQ(p->seq, s->next_seq))
				return RST_SEQ_EXACT;
		} else if (p->seq == lo) {
			return RST_SEQ_EXACT;
		}
		win = (uint32_t)r->win << ((r->flags & FD_WSCALE) && (s->flags & FD_WSCALE) ? r->wscale : 0);
		if (win < 1)
			win = 1;
		if (SEQ_GEQ(p->seq, lo) && SEQ_LT(p->seq, lo + win))
			return RST_SEQ_IN_WINDOW;
		return RST_SEQ_OUT_OF_WINDOW;
	}
	if ((s->flags & FD_SEEN) && p->seq == s->next_seq)
		return RST_SEQ_EXACT;
	return RST_SEQ_UNKNOWN;
}

const char *
TCP_RstSeqName(enum rst_seq_class c)
{
	static const char *const names[] = { "unknown", "exact", "in_window", "out_of_window" };

	return (unsigned)c < 4 ? names[c] : "unknown";
}

uint32_t
TCP_StateTimeout(const struct config_flow_timeouts *to, enum tcp_state s)
{
	switch (s) {
	case TCP_SYN_SENT:
	case TCP_SYN_RECV:
		return to->syn;
	case TCP_ESTABLISHED:
		return to->established;
	case TCP_FIN_WAIT:
	case TCP_CLOSING:
		return to->closing;
	default:
		return to->closed;
	}
}
