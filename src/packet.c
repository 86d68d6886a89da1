/* Bounds-checked parsing of IPv4/IPv6 + TCP headers. Runs once per queued packet on hostile
 * bytes: no allocation, no syscalls, no logging. Every read is preceded by a length check
 * against caplen; every length taken from the packet is checked against the IP lengths. */
#include <arpa/inet.h>
#include <string.h>
#include <sys/socket.h>

#include "packet.h"

#define IPV4_HDR_MIN   20
#define IPV6_HDR_LEN   40
#define TCP_HDR_MIN    20
#define IPV6_MAX_EXT   8       /* more extension headers than this is an attack, not a packet */
#define TCP_WSCALE_MAX 14      /* RFC 7323 2.3: larger shifts are treated as 14 */

#define IPPROTO_NUM_HOPOPTS  0
#define IPPROTO_NUM_TCP      6
#define IPPROTO_NUM_ROUTING  43
#define IPPROTO_NUM_FRAGMENT 44
#define IPPROTO_NUM_AH       51
#define IPPROTO_NUM_DSTOPTS  60

/* Byte-wise big-endian loads: no alignment assumption, and gcc/clang turn them into a load
 * plus bswap. */
static inline uint16_t
be16(const uint8_t *b)
{
	return (uint16_t)(b[0] << 8 | b[1]);
}

static inline uint32_t
be32(const uint8_t *b)
{
	return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

/* Walk the TCP options in o[TCP_HDR_MIN..end). A bad option list does not make the packet
 * unusable (the fixed header is fine), so it only sets TCPOPT_BAD. */
static void
parse_options(const uint8_t *o, unsigned end, struct pkt *p)
{
	unsigned i = TCP_HDR_MIN;

	while (i < end) {
		unsigned kind = o[i], len;

		if (kind == 0)          /* EOL */
			break;
		if (kind == 1) {        /* NOP */
			i++;
			continue;
		}
		if (i + 1 >= end)
			goto bad;
		len = o[i + 1];
		if (len < 2 || i + len > end)
			goto bad;

		switch (kind) {
		case 2:                 /* MSS */
			if (len != 4)
				goto bad_one;
			p->mss = be16(o + i + 2);
			p->opts |= TCPOPT_HAS_MSS;
			break;
		case 3:                 /* window scale */
			if (len != 3)
				goto bad_one;
			p->wscale = o[i + 2] > TCP_WSCALE_MAX ? TCP_WSCALE_MAX : o[i + 2];
			p->opts |= TCPOPT_HAS_WSCALE;
			break;
		case 4:                 /* SACK permitted */
			if (len != 2)
				goto bad_one;
			p->opts |= TCPOPT_HAS_SACKOK;
			break;
		case 5:                 /* SACK: 1..4 blocks of 8 bytes */
			if (len < 10 || (len - 2) % 8 != 0)
				goto bad_one;
			p->opts |= TCPOPT_HAS_SACK;
			break;
		case 8:                 /* timestamps */
			if (len != 10)
				goto bad_one;
			p->tsval = be32(o + i + 2);
			p->tsecr = be32(o + i + 6);
			p->opts |= TCPOPT_HAS_TS;
			break;
		case 19:                /* TCP-MD5 signature (RFC 2385): 16-byte digest */
			if (len != 18)
				goto bad_one;
			p->opts |= TCPOPT_HAS_MD5;
			break;
		case 29:                /* TCP-AO (RFC 5925): KeyID, RNextKeyID, MAC */
			if (len < 4)
				goto bad_one;
			p->opts |= TCPOPT_HAS_AO;
			break;
		default:
			break;
		}
		i += len;
		continue;
bad_one:
		/* Right kind, wrong length: the length byte still lets us skip it. */
		p->opts |= TCPOPT_BAD;
		i += len;
	}
	return;
bad:
	p->opts |= TCPOPT_BAD;
}

/* IPv4 header at data (caplen >= 1 checked by the caller). Sets l3_len, ip_len and the IP
 * fields; returns PKT_TCP if a TCP header should follow. */
static enum pkt_kind
parse_ipv4(const uint8_t *data, uint32_t caplen, uint32_t wirelen, struct pkt *p)
{
	unsigned hl = (data[0] & 0x0fu) * 4;
	uint32_t tot;
	uint16_t frag;

	if (hl < IPV4_HDR_MIN)
		return PKT_MALFORMED;
	if (hl > caplen)
		return PKT_TRUNCATED;

	tot = be16(data + 2);
	if (tot == 0 && wirelen > 65535) {
		/* BIG TCP / GSO: the kernel leaves tot_len 0 when the length does not fit. */
		tot = wirelen;
	} else if (tot < hl || tot > wirelen) {
		return PKT_MALFORMED;
	}

	p->family = AF_INET;
	p->tos = data[1];
	p->ipid = be16(data + 4);
	frag = be16(data + 6);
	p->df = (frag & 0x4000) != 0;
	p->ttl = data[8];
	memcpy(p->src, data + 12, 4);
	memset(p->src + 4, 0, 12);
	memcpy(p->dst, data + 16, 4);
	memset(p->dst + 4, 0, 12);
	p->l3_len = (uint16_t)hl;
	p->ip_len = tot;

	if (frag & 0x3fff)      /* MF or a fragment offset */
		return PKT_FRAGMENT;
	if (data[9] != IPPROTO_NUM_TCP)
		return PKT_NOT_TCP;
	return PKT_TCP;
}

/* IPv6 header and extension header chain. */
static enum pkt_kind
parse_ipv6(const uint8_t *data, uint32_t caplen, uint32_t wirelen, struct pkt *p)
{
	uint32_t tot, off = IPV6_HDR_LEN, len;
	unsigned nh, n;

	if (caplen < IPV6_HDR_LEN)
		return PKT_TRUNCATED;

	tot = be16(data + 4);
	if (tot == 0 && wirelen > 65535 + IPV6_HDR_LEN) {
		/* Jumbogram / BIG TCP: the payload length field cannot hold it. */
		tot = wirelen;
	} else {
		tot += IPV6_HDR_LEN;
		if (tot > wirelen)
			return PKT_MALFORMED;
	}

	p->family = AF_INET6;
	p->tos = (uint8_t)(be16(data) >> 4);
	p->ttl = data[7];
	p->df = 1;              /* see packet.h: routers never fragment IPv6 */
	p->ipid = 0;
	memcpy(p->src, data + 8, 16);
	memcpy(p->dst, data + 24, 16);
	p->ip_len = tot;

	/* Each extension header is at least 8 bytes, so the walk always advances; the count
	 * bounds it further (and keeps l3_len well inside 16 bits). */
	nh = data[6];
	for (n = 0;; n++) {
		if (nh == IPPROTO_NUM_TCP)
			break;
		if (nh != IPPROTO_NUM_HOPOPTS && nh != IPPROTO_NUM_ROUTING &&
		    nh != IPPROTO_NUM_DSTOPTS && nh != IPPROTO_NUM_FRAGMENT && nh != IPPROTO_NUM_AH)
			return PKT_NOT_TCP;     /* ESP (opaque), no next header, UDP, ICMPv6, ... */
		if (n == IPV6_MAX_EXT)
			return PKT_MALFORMED;
		/* All of these start with next header and a length byte. */
		if (off + 2 > tot)
			return PKT_MALFORMED;
		if (off + 2 > caplen)
			return PKT_TRUNCATED;
		if (nh == IPPROTO_NUM_FRAGMENT)
			len = 8;
		else if (nh == IPPROTO_NUM_AH)
			len = ((uint32_t)data[off + 1] + 2) * 4;
		else
			len = ((uint32_t)data[off + 1] + 1) * 8;
		if (off + len > tot)
			return PKT_MALFORMED;
		if (off + len > caplen)
			return PKT_TRUNCATED;
		/* Offset or M flag: not the whole datagram. An atomic fragment (both zero) is. */
		if (nh == IPPROTO_NUM_FRAGMENT && (be16(data + off + 2) & 0xfff9))
			return PKT_FRAGMENT;
		nh = data[off];
		off += len;
	}
	p->l3_len = (uint16_t)off;
	return PKT_TCP;
}

/* The TCP path sets every field of p itself; PKT_Parse clears p for the other kinds. */
static inline enum pkt_kind
parse(const uint8_t *data, uint32_t caplen, uint32_t wirelen, struct pkt *p)
{
	const uint8_t *t;
	enum pkt_kind k;
	uint32_t l3, ippay, cap, hdr_end;
	unsigned doff;

	if (caplen == 0)
		return PKT_TRUNCATED;
	/* The captured bytes exist, so the wire length is at least that (also covers 0). */
	if (wirelen < caplen)
		wirelen = caplen;

	switch (data[0] >> 4) {
	case 4:
		k = parse_ipv4(data, caplen, wirelen, p);
		break;
	case 6:
		k = parse_ipv6(data, caplen, wirelen, p);
		break;
	default:
		return PKT_MALFORMED;
	}
	if (k != PKT_TCP)
		return k;

	/* Bytes past the IP datagram (padding) are not payload. */
	cap = caplen < p->ip_len ? caplen : p->ip_len;
	l3 = p->l3_len;
	ippay = p->ip_len - l3;
	if (ippay < TCP_HDR_MIN)
		return PKT_MALFORMED;
	if (l3 + TCP_HDR_MIN > cap)
		return PKT_TRUNCATED;

	t = data + l3;
	doff = (t[12] >> 4) * 4u;
	if (doff < TCP_HDR_MIN || doff > ippay)
		return PKT_MALFORMED;
	hdr_end = l3 + doff;
	if (hdr_end > cap)
		return PKT_TRUNCATED;

	p->sport = be16(t);
	p->dport = be16(t + 2);
	p->seq = be32(t + 4);
	p->ack = be32(t + 8);
	p->flags = t[13];
	p->win = be16(t + 14);
	p->doff = (uint8_t)doff;
	p->payload_len = ippay - doff;
	p->payload = data + hdr_end;
	p->payload_caplen = cap - hdr_end;      /* <= payload_len since cap <= ip_len */

	p->opts = 0;
	p->wscale = 0;
	p->mss = 0;
	p->tsval = 0;
	p->tsecr = 0;
	if (doff > TCP_HDR_MIN)
		parse_options(t, doff, p);
	return PKT_TCP;
}

enum pkt_kind
PKT_Parse(const uint8_t *data, uint32_t caplen, uint32_t wirelen, struct pkt *p)
{
	enum pkt_kind k = parse(data, caplen, wirelen, p);

	/* Setting each field on the TCP path is measurably cheaper than clearing the whole
	 * struct up front (gcc emits rep stosq for it); other kinds get no stale data. */
	if (__builtin_expect(k != PKT_TCP, 0))
		memset(p, 0, sizeof(*p));
	return k;
}

const char *
PKT_KindName(enum pkt_kind kind)
{
	static const char *const names[PKT_KIND_MAX] = {
		[PKT_TCP] = "tcp",
		[PKT_NOT_TCP] = "not_tcp",
		[PKT_FRAGMENT] = "fragment",
		[PKT_TRUNCATED] = "truncated",
		[PKT_MALFORMED] = "malformed",
	};

	if ((unsigned)kind >= PKT_KIND_MAX)
		return "unknown";
	return names[kind];
}

void
PKT_FormatAddr(int family, const uint8_t *addr, char *buf, unsigned buflen)
{
	if (buflen == 0)
		return;
	if ((family != AF_INET && family != AF_INET6) ||
	    inet_ntop(family, addr, buf, buflen) == NULL) {
		/* Never leave the caller with an unterminated buffer. */
		buf[0] = buflen > 1 ? '?' : '\0';
		if (buflen > 1)
			buf[1] = '\0';
	}
}
