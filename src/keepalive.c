/* Keepalive probe construction and injection through raw sockets. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "keepalive.h"
#include "log.h"
#include "tcpstate.h"

int
KA_Open(struct ka_sender *ks)
{
	ks->fd4 = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
	ks->fd6 = socket(AF_INET6, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
	if (ks->fd4 < 0 || ks->fd6 < 0) {
		log_warn("keepalive: raw socket (CAP_NET_RAW is needed)");
		KA_Close(ks);
		return -1;
	}
	return 0;
}

void
KA_Close(struct ka_sender *ks)
{
	if (ks->fd4 >= 0)
		close(ks->fd4);
	if (ks->fd6 >= 0)
		close(ks->fd6);
	ks->fd4 = ks->fd6 = -1;
}

int
KA_Eligible(const struct flow *f, int x)
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
	const struct flow_dir *a = &f->dir[x], *b = &f->dir[!x];
	int v6 = (f->flags & FL_IPV6) != 0;
	const uint8_t *src = x == DIR_TOSERVER ? f->cli : f->srv;
	const uint8_t *dst = x == DIR_TOSERVER ? f->srv : f->cli;
	uint16_t sport = x == DIR_TOSERVER ? f->cport : f->sport;
	uint16_t dport = x == DIR_TOSERVER ? f->sport : f->cport;
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

int
KA_Send(struct ka_sender *ks, const struct flow *f, const uint8_t *buf, uint32_t len)
{
	ssize_t n;

	if (f->flags & FL_IPV6) {
		struct sockaddr_in6 sa = { .sin6_family = AF_INET6 };

		memcpy(&sa.sin6_addr, buf + 24, 16);
		n = sendto(ks->fd6, buf, len, 0, (struct sockaddr *)&sa, sizeof(sa));
	} else {
		struct sockaddr_in sa = { .sin_family = AF_INET };

		memcpy(&sa.sin_addr, buf + 16, 4);
		n = sendto(ks->fd4, buf, len, 0, (struct sockaddr *)&sa, sizeof(sa));
	}
	return n == (ssize_t)len ? 0 : -1;
}
