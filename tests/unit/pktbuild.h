/* Header-only IPv4/IPv6 + TCP packet builder for the unit tests. Addresses come from the
 * benchmarking ranges 198.18.0.0/15 and 2001:db8::/32 (documentation) only. */
#ifndef RSTGUARD_PKTBUILD_H
#define RSTGUARD_PKTBUILD_H

#include <arpa/inet.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

struct pb_spec {
	int family;                /* AF_INET or AF_INET6 */
	const char *src, *dst;     /* numeric addresses */
	uint16_t sport, dport;
	uint32_t seq, ack;
	uint8_t flags;             /* TCPF_* */
	uint16_t win;
	uint8_t ttl;               /* TTL or hop limit */
	uint16_t ipid;             /* IPv4 only */
	int df;                    /* IPv4 only */
	uint32_t payload_len;
	const uint8_t *payload;    /* NULL: a recognisable pattern */
	uint16_t mss;              /* 0: no MSS option */
	int wscale;                /* -1: no window scale option */
	int sackok;
	int ts;
	uint32_t tsval, tsecr;
};

static void pb_put16(uint8_t *b, uint16_t v) __attribute__((unused));
static void
pb_put16(uint8_t *b, uint16_t v)
{
	b[0] = (uint8_t)(v >> 8);
	b[1] = (uint8_t)v;
}

static void pb_put32(uint8_t *b, uint32_t v) __attribute__((unused));
static void
pb_put32(uint8_t *b, uint32_t v)
{
	b[0] = (uint8_t)(v >> 24);
	b[1] = (uint8_t)(v >> 16);
	b[2] = (uint8_t)(v >> 8);
	b[3] = (uint8_t)v;
}

/* One's complement sum for the Internet checksum. */
static uint32_t pb_sum(uint32_t sum, const uint8_t *b, size_t len) __attribute__((unused));
static uint32_t
pb_sum(uint32_t sum, const uint8_t *b, size_t len)
{
	for (; len > 1; b += 2, len -= 2)
		sum += (uint32_t)(b[0] << 8 | b[1]);
	if (len)
		sum += (uint32_t)b[0] << 8;
	return sum;
}

static uint16_t pb_fold(uint32_t sum) __attribute__((unused));
static uint16_t
pb_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* The payload pattern used when spec->payload is NULL. */
static uint8_t pb_pattern(uint32_t i) __attribute__((unused));
static uint8_t
pb_pattern(uint32_t i)
{
	return (uint8_t)('a' + i % 26);
}

static struct pb_spec PB_Default(int family) __attribute__((unused));
static struct pb_spec
PB_Default(int family)
{
	struct pb_spec s;

	memset(&s, 0, sizeof(s));
	s.family = family;
	if (family == AF_INET6) {
		s.src = "2001:db8:1::2";
		s.dst = "2001:db8:3::2";
	} else {
		s.src = "198.18.1.2";
		s.dst = "198.18.3.2";
	}
	s.sport = 40000;
	s.dport = 80;
	s.ttl = 64;
	s.win = 65535;
	s.df = 1;
	s.wscale = -1;
	return s;
}

/* Build the packet into buf (starting at the IP header, as NFQUEUE delivers it) with correct
 * lengths and checksums. Options go in the order MSS, SACK-permitted, timestamps, window
 * scale, then NOPs up to a 4-byte multiple. Returns the length, or 0 if it does not fit in
 * cap, in the IP length field, or an address does not parse. */
static size_t PB_Build(uint8_t *buf, size_t cap, const struct pb_spec *s) __attribute__((unused));
static size_t
PB_Build(uint8_t *buf, size_t cap, const struct pb_spec *s)
{
	uint8_t opt[40], *ip = buf, *tcp;
	size_t l3 = s->family == AF_INET6 ? 40 : 20, olen = 0, thl, total;
	uint32_t sum;

	if (s->mss) {
		opt[olen++] = 2;
		opt[olen++] = 4;
		pb_put16(opt + olen, s->mss);
		olen += 2;
	}
	if (s->sackok) {
		opt[olen++] = 4;
		opt[olen++] = 2;
	}
	if (s->ts) {
		opt[olen++] = 8;
		opt[olen++] = 10;
		pb_put32(opt + olen, s->tsval);
		pb_put32(opt + olen + 4, s->tsecr);
		olen += 8;
	}
	if (s->wscale >= 0) {
		opt[olen++] = 3;
		opt[olen++] = 3;
		opt[olen++] = (uint8_t)s->wscale;
	}
	while (olen % 4)
		opt[olen++] = 1;
	thl = 20 + olen;
	total = l3 + thl + s->payload_len;
	if (total > cap || total - (s->family == AF_INET6 ? 40 : 0) > 65535)
		return 0;

	memset(buf, 0, l3 + thl);
	if (s->family == AF_INET6) {
		ip[0] = 0x60;
		pb_put16(ip + 4, (uint16_t)(total - 40));
		ip[6] = 6;
		ip[7] = s->ttl;
		if (inet_pton(AF_INET6, s->src, ip + 8) != 1 || inet_pton(AF_INET6, s->dst, ip + 24) != 1)
			return 0;
	} else {
		ip[0] = 0x45;
		pb_put16(ip + 2, (uint16_t)total);
		pb_put16(ip + 4, s->ipid);
		pb_put16(ip + 6, s->df ? 0x4000 : 0);
		ip[8] = s->ttl;
		ip[9] = 6;
		if (inet_pton(AF_INET, s->src, ip + 12) != 1 || inet_pton(AF_INET, s->dst, ip + 16) != 1)
			return 0;
		pb_put16(ip + 10, pb_fold(pb_sum(0, ip, 20)));
	}

	tcp = buf + l3;
	pb_put16(tcp, s->sport);
	pb_put16(tcp + 2, s->dport);
	pb_put32(tcp + 4, s->seq);
	pb_put32(tcp + 8, s->ack);
	tcp[12] = (uint8_t)(thl / 4) << 4;
	tcp[13] = s->flags;
	pb_put16(tcp + 14, s->win);
	memcpy(tcp + 20, opt, olen);
	for (uint32_t i = 0; i < s->payload_len; i++)
		tcp[thl + i] = s->payload ? s->payload[i] : pb_pattern(i);

	/* Pseudo-header: addresses, protocol, TCP length. */
	if (s->family == AF_INET6)
		sum = pb_sum(0, ip + 8, 32);
	else
		sum = pb_sum(0, ip + 12, 8);
	sum += 6 + (uint32_t)(thl + s->payload_len);
	pb_put16(tcp + 16, pb_fold(pb_sum(sum, tcp, thl + s->payload_len)));
	return total;
}

#endif
