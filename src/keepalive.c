/* Keepalive: when each idle flow is due for a probe, the probes' answers taken out of the
 * stream, the probe sender (raw sockets) and its rate limit, and the probes' construction. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "alias.h"
#include "keepalive.h"
#include "log.h"
#include "tcpstate.h"

/* Open the raw sockets. Returns 0, or -1 (logged) if they cannot be had (CAP_NET_RAW). */
static int
sender_open(struct ka_sender *s)
{
	s->fd4 = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
	s->fd6 = socket(AF_INET6, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
	if (s->fd4 < 0 || s->fd6 < 0) {
		log_warn("keepalive: raw socket (CAP_NET_RAW is needed)");
		KA_SenderFini(s);
		return -1;
	}
	return 0;
}

void
KA_SenderInit(struct ka_sender *s)
{
	memset(s, 0, sizeof(*s));
	s->fd4 = s->fd6 = -1;
}

void
KA_SenderFini(struct ka_sender *s)
{
	if (s->fd4 >= 0)
		close(s->fd4);
	if (s->fd6 >= 0)
		close(s->fd6);
	s->fd4 = s->fd6 = -1;
}

int
KA_SenderReady(struct ka_sender *s)
{
	if (s->fn)
		return 0;
	if (s->fd4 == -2 || (s->fd4 < 0 && sender_open(s) < 0)) {
		s->fd4 = -2;   /* do not try again */
		return -1;
	}
	return 0;
}

/* Send a built probe through the raw socket of its family. Returns 0 or -1. */
static int
raw_send(const struct ka_sender *s, const struct flow *f, const uint8_t *buf, uint32_t len)
{
	ssize_t n;

	if (f->flags & FL_IPV6) {
		struct sockaddr_in6 sa = { .sin6_family = AF_INET6 };

		memcpy(&sa.sin6_addr, buf + 24, 16);
		n = sendto(s->fd6, buf, len, 0, (struct sockaddr *)&sa, sizeof(sa));
	} else {
		struct sockaddr_in sa = { .sin_family = AF_INET };

		memcpy(&sa.sin_addr, buf + 16, 4);
		n = sendto(s->fd4, buf, len, 0, (struct sockaddr *)&sa, sizeof(sa));
	}
	return n == (ssize_t)len ? 0 : -1;
}

int
KA_SendProbe(struct ka_sender *s, const struct flow *f, const uint8_t *buf, uint32_t len)
{
	if ((s->fn ? s->fn(s->fn_ctx, f, buf, len) : raw_send(s, f, buf, len)) < 0) {
		s->errors++;
		return -1;
	}
	return 0;
}

int
KA_TakeToken(struct ka_bucket *b, uint64_t now_ns, uint32_t rate, uint32_t queues)
{
	uint32_t per_queue = rate / (queues ? queues : 1);

	if (per_queue == 0)
		per_queue = 1;
	if (now_ns > b->refill_ns) {
		b->tokens += (double)(now_ns - b->refill_ns) * per_queue / 1e9;
		if (b->tokens > per_queue)
			b->tokens = per_queue;
		b->refill_ns = now_ns;
	}
	if (b->tokens < 1.0)
		return 0;
	b->tokens -= 1.0;
	return 1;
}

/* May side x of f be probed now? Established, fully acknowledged both ways, no FIN or RST, no
 * TCP-MD5/AO. */
static int
eligible(const struct flow *f, int x)
{
	const struct flow_dir *a = &f->dir[x], *b = &f->dir[!x];

	if (f->state != TCP_ESTABLISHED)
		return 0;
	if (((a->flags | b->flags) & (FD_FIN | FD_RST | FD_MD5)) != 0)
		return 0;
	if (!(a->flags & FD_SEEN) || !(b->flags & FD_SEEN) || !(a->flags & FD_ACK) || !(b->flags & FD_ACK))
		return 0;
	/* Nothing in flight either way: every byte sent has been acknowledged. */
	return b->last_ack == a->next_seq && a->last_ack == b->next_seq;
}

static uint32_t
sum16(const uint8_t *p, uint32_t len, uint32_t sum)
{
	for (uint32_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (len & 1)
		sum += (uint32_t)(p[len - 1] << 8);
	return sum;
}

static uint16_t
fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static void
put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void
put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

uint32_t
KA_Build(const struct flow *f, int x, uint8_t *buf)
{
	return KA_BuildSeen(f, x, NULL, buf);
}

uint32_t
KA_BuildSeen(const struct flow *f, int x, const struct alias *al, uint8_t *buf)
{
	const struct flow_dir *a = &f->dir[x], *b = &f->dir[!x];
	int v6 = (f->flags & FL_IPV6) != 0;
	const uint8_t *src = x == DIR_TOSERVER ? f->cli : f->srv;
	const uint8_t *dst = x == DIR_TOSERVER ? f->srv : f->cli;
	uint16_t sport = x == DIR_TOSERVER ? f->cport : f->sport;
	uint16_t dport = x == DIR_TOSERVER ? f->sport : f->cport;
	/* The reply half runs from the original tuple's destination to its source. */
	int reply_dir = al && memcmp(f->cli, al->osrc, 16) == 0 && f->cport == al->osport ? DIR_TOCLIENT
											 : DIR_TOSERVER;

	if (al && x == reply_dir) {
		src = al->src;
		dst = al->dst;
		sport = al->sport;
		dport = al->dport;
	}
	uint32_t l3 = v6 ? 40 : 20, tcplen = (a->flags & FD_TS) ? 32 : 20, sum;
	/* As if forwarded by the gateway: one hop less than X's packets have on arrival. */
	uint8_t ttl = a->ttl_last > 1 ? (uint8_t)(a->ttl_last - 1) : 64;
	uint8_t *t = buf + l3;

	memset(buf, 0, l3 + tcplen);
	if (v6) {
		buf[0] = 0x60;
		put16(buf + 4, (uint16_t)tcplen);
		buf[6] = IPPROTO_TCP;
		buf[7] = ttl;
		memcpy(buf + 8, src, 16);
		memcpy(buf + 24, dst, 16);
	} else {
		buf[0] = 0x45;
		put16(buf + 2, (uint16_t)(l3 + tcplen));
		put16(buf + 4, (uint16_t)(a->ipid + 1));
		if (a->flags & FD_DF)
			buf[6] = 0x40;
		buf[8] = ttl;
		buf[9] = IPPROTO_TCP;
		memcpy(buf + 12, src, 4);
		memcpy(buf + 16, dst, 4);
		put16(buf + 10, fold(sum16(buf, 20, 0)));
	}
	put16(t, sport);
	put16(t + 2, dport);
	put32(t + 4, a->next_seq - 1);      /* one below SND.NXT: the receiver must answer */
	put32(t + 8, a->last_ack);
	t[12] = (uint8_t)((tcplen / 4) << 4);
	t[13] = TCPF_ACK;
	put16(t + 14, a->win);              /* the raw window, never shrunk */
	if (a->flags & FD_TS) {
		/* TSval exactly X's last: a higher one would be a lie, a lower one fails PAWS. */
		t[20] = 1;
		t[21] = 1;
		t[22] = 8;
		t[23] = 10;
		put32(t + 24, a->tsval);
		put32(t + 28, b->tsval);
	}
	/* TCP checksum over the pseudo-header. */
	if (v6) {
		sum = sum16(src, 16, 0);
		sum = sum16(dst, 16, sum);
		sum += tcplen + IPPROTO_TCP;
	} else {
		sum = sum16(src, 4, 0);
		sum = sum16(dst, 4, sum);
		sum += tcplen + IPPROTO_TCP;
	}
	put16(t + 16, fold(sum16(t, tcplen, sum)));
	return l3 + tcplen;
}

/* ---- scheduling ---- */

void
KA_Init(struct keepalive *ka, const struct ka_ctx *ctx)
{
	memset(ka, 0, sizeof(*ka));
	ka->ctx = *ctx;
}

void
KA_Fini(struct keepalive *ka)
{
	free(ka->kaf);
	ka->kaf = NULL;
}

struct ka_flow *
KA_Probing(struct keepalive *ka, uint32_t idx, const struct flow *f)
{
	return (f->flags & FL_PROBING) && ka->kaf ? &ka->kaf[idx] : NULL;
}

uint32_t
KA_Visit(struct keepalive *ka, uint32_t idx, struct flow *f, struct ka_lost *lost)
{
	const struct config *c = ka->ctx.cfg;
	const struct timer_clock *now = ka->ctx.now;
	uint32_t timeout, idle, interval_ms, base, sides, answer_wait_ms = 1000;
	struct ka_flow *k;
	uint8_t buf[128];

	lost->unanswered = 0;
	if (!c->keepalive || f->state != TCP_ESTABLISHED)
		return 0;
	timeout = CFG_IdleTimeoutFor(c, (f->flags & FL_IPV6) ? AF_INET6 : AF_INET, f->srv, f->sport);
	if (timeout == 0)
		return 0;
	if (ka->kaf == NULL) {
		/* First use (keepalive may have been switched on by a reload). */
		if (KA_SenderReady(ka->ctx.sender) < 0)
			return 0;
		ka->kaf = calloc(ka->ctx.flows_cap, sizeof(*ka->kaf));
		if (ka->kaf == NULL)
			return 0;
	}
	k = &ka->kaf[idx];
	idle = now->ms - f->last_seen_ms;
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
		if (now->ms - k->probe_ms < answer_wait_ms)
			return now->s + 1;
		k->outstanding = 0;
		ka->st.unanswered++;
		if (++k->unanswered >= c->probe_retries) {
			k->gave_up = 1;
			lost->unanswered = k->unanswered;
			lost->idle_ms = idle;
			lost->timeout_s = timeout;
			return 0;
		}
	} else {
		base = f->last_seen_ms;
		if ((f->flags & FL_PROBING) && (int32_t)(k->refresh_ms - base) > 0)
			base = k->refresh_ms;
		if ((int32_t)(now->ms - (base + interval_ms)) < 0)
			return now->s + (base + interval_ms - now->ms + 999) / 1000;
	}
	/* Time to probe, toward the side(s) beyond the middlebox. */
	sides = c->probe_side == PROBE_BOTH ? 3u : c->probe_side == PROBE_CLIENT ? 1u << DIR_TOCLIENT : 1u << DIR_TOSERVER;
	for (int x = 0; x < 2; x++) {
		uint32_t len;

		if (!(sides & (1u << x)) || !eligible(f, x))
			continue;
		if (!KA_TakeToken(&ka->bucket, now->mono_ns, c->probe_rate, c->queue_count)) {
			ka->st.rate_limited++;
			return now->s + 1;
		}
		len = KA_BuildSeen(f, x, ALIAS_OfFlow(ka->ctx.alias, idx, f->first_seen_cs), buf);
		if (KA_SendProbe(ka->ctx.sender, f, buf, len) < 0)
			continue;
		ka->st.sent++;
		k->outstanding |= (uint8_t)(1u << x);
	}
	if (k->outstanding) {
		k->probe_ms = now->ms;
		f->flags |= FL_PROBING;
		return now->s + 1 + answer_wait_ms / 1000;
	}
	return now->s + interval_ms / 1000;   /* not eligible now (data in flight): later */
}

enum ka_packet
KA_Packet(struct keepalive *ka, uint32_t idx, struct flow *f, int dir, const struct pkt *p)
{
	struct ka_flow *k;
	int x = !dir;

	if (ka->kaf == NULL)
		return KA_TRAFFIC;
	k = &ka->kaf[idx];
	if ((k->outstanding & (1u << x)) && p->flags == TCPF_ACK && p->payload_len == 0 &&
	    p->seq == f->dir[dir].next_seq && p->ack == f->dir[x].next_seq) {
		k->outstanding &= (uint8_t)~(1u << x);
		k->unanswered = 0;
		k->refresh_ms = ka->ctx.now->ms;
		ka->st.answered++;
		return KA_ANSWER;
	}
	/* Our own probe, queued again on its way out (a rule on OUTPUT): let it pass untouched. */
	if ((k->outstanding & (1u << dir)) && p->flags == TCPF_ACK && p->payload_len == 0 &&
	    p->seq == f->dir[dir].next_seq - 1)
		return KA_OWN_PROBE;
	f->flags &= (uint8_t)~FL_PROBING;
	return KA_TRAFFIC;
}
