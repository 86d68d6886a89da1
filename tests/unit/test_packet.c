/* Unit tests for the packet parser. Every parse runs on an exact-size heap copy, so under
 * ASan any read past caplen is caught. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "packet.h"
#include "pktbuild.h"
#include "tap.h"

#define BUFSZ 2048

/* Parse a heap copy of exactly caplen bytes into a struct full of garbage; payload is
 * translated back into pkt. */
static enum pkt_kind
parse(const uint8_t *pkt, uint32_t caplen, uint32_t wirelen, struct pkt *p)
{
	uint8_t *copy = malloc(caplen ? caplen : 1);
	enum pkt_kind k;

	if (copy == NULL)
		abort();
	memcpy(copy, pkt, caplen);
	memset(p, 0xa5, sizeof(*p));    /* stale data the parser must overwrite or clear */
	k = PKT_Parse(copy, caplen, wirelen, p);
	if (p->payload)
		p->payload = pkt + (p->payload - copy);
	free(copy);
	return k;
}

static size_t
build(uint8_t *buf, const struct pb_spec *s)
{
	size_t n = PB_Build(buf, BUFSZ, s);

	if (n == 0)
		abort();
	return n;
}

/* A SYN as Linux sends it, with every option the builder knows. */
static struct pb_spec
syn_spec(int family)
{
	struct pb_spec s = PB_Default(family);

	s.seq = 0xdeadbeef;
	s.flags = TCPF_SYN;
	s.win = 64240;
	s.ttl = 57;
	s.ipid = 0x1234;
	s.mss = 1460;
	s.sackok = 1;
	s.ts = 1;
	s.tsval = 0x11223344;
	s.tsecr = 0;
	s.wscale = 7;
	return s;
}

/* IPv6 extension header for v6_chain. len is the header's length field; for the fragment
 * header frag is the offset/flags word. */
struct ext {
	uint8_t type, len;
	uint16_t frag;
};

static size_t
ext_size(const struct ext *e)
{
	if (e->type == 44)
		return 8;
	if (e->type == 51)
		return ((size_t)e->len + 2) * 4;
	return ((size_t)e->len + 1) * 8;
}

/* Build s as IPv6 and put the extension headers between the IPv6 and TCP headers; the last
 * one's next header is last_nh (6 for TCP). */
static size_t
v6_chain(uint8_t *buf, const struct pb_spec *s, const struct ext *e, int n, uint8_t last_nh)
{
	uint8_t tcp[BUFSZ];
	size_t len = build(buf, s), tl = len - 40, off = 40, sz;

	memcpy(tcp, buf + 40, tl);
	for (int i = 0; i < n; i++) {
		sz = ext_size(&e[i]);
		if (off + sz + tl > BUFSZ)
			abort();
		/* The previous header's next header field. */
		if (i == 0)
			buf[6] = e[i].type;
		memset(buf + off, 0, sz);
		buf[off + 1] = e[i].len;
		if (e[i].type == 44) {
			buf[off + 1] = 0;
			pb_put16(buf + off + 2, e[i].frag);
			pb_put32(buf + off + 4, 0x0badcafe);
		} else if (e[i].type == 0 || e[i].type == 60) {
			buf[off + 2] = 1;               /* PadN over the rest */
			buf[off + 3] = (uint8_t)(sz - 4);
		}
		buf[off] = i + 1 < n ? e[i + 1].type : last_nh;
		off += sz;
	}
	if (n == 0)
		buf[6] = last_nh;
	memcpy(buf + off, tcp, tl);
	pb_put16(buf + 4, (uint16_t)(off + tl - 40));
	return off + tl;
}

static void
test_v4_syn(void)
{
	uint8_t buf[BUFSZ];
	struct pb_spec s = syn_spec(AF_INET);
	size_t len = build(buf, &s);
	static const uint8_t src[16] = { 198, 18, 1, 2 }, dst[16] = { 198, 18, 3, 2 };
	struct pkt p;

	buf[1] = 0x28;  /* a TOS, to see it come through */
	TAP_EQ_U(parse(buf, (uint32_t)len, (uint32_t)len, &p), PKT_TCP, "v4 SYN: kind");
	TAP_EQ_U(p.family, AF_INET, "v4 SYN: family");
	TAP_EQ_U(p.ttl, 57, "v4 SYN: ttl");
	TAP_EQ_U(p.tos, 0x28, "v4 SYN: tos");
	TAP_EQ_U(p.df, 1, "v4 SYN: df");
	TAP_EQ_U(p.ipid, 0x1234, "v4 SYN: ipid");
	TAP_OK(memcmp(p.src, src, 16) == 0, "v4 SYN: src, rest zero");
	TAP_OK(memcmp(p.dst, dst, 16) == 0, "v4 SYN: dst, rest zero");
	TAP_EQ_U(p.l3_len, 20, "v4 SYN: l3_len");
	TAP_EQ_U(p.ip_len, len, "v4 SYN: ip_len");
	TAP_EQ_U(p.sport, 40000, "v4 SYN: sport");
	TAP_EQ_U(p.dport, 80, "v4 SYN: dport");
	TAP_EQ_U(p.seq, 0xdeadbeef, "v4 SYN: seq");
	TAP_EQ_U(p.ack, 0, "v4 SYN: ack");
	TAP_EQ_U(p.flags, TCPF_SYN, "v4 SYN: flags");
	TAP_EQ_U(p.doff, 40, "v4 SYN: doff (MSS+SACKOK+TS+WS+pad)");
	TAP_EQ_U(p.win, 64240, "v4 SYN: win");
	TAP_EQ_U(p.payload_len, 0, "v4 SYN: payload_len");
	TAP_EQ_U(p.payload_caplen, 0, "v4 SYN: payload_caplen");
	TAP_OK(p.payload == buf + 60, "v4 SYN: payload points after the TCP header");
	TAP_EQ_U(p.opts, TCPOPT_HAS_MSS | TCPOPT_HAS_SACKOK | TCPOPT_HAS_TS | TCPOPT_HAS_WSCALE,
	    "v4 SYN: option flags");
	TAP_EQ_U(p.mss, 1460, "v4 SYN: mss");
	TAP_EQ_U(p.wscale, 7, "v4 SYN: wscale");
	TAP_EQ_U(p.tsval, 0x11223344, "v4 SYN: tsval");
	TAP_EQ_U(p.tsecr, 0, "v4 SYN: tsecr");

	/* Unknown wirelen is the capture length. */
	TAP_EQ_U(parse(buf, (uint32_t)len, 0, &p), PKT_TCP, "v4 SYN: wirelen 0");

	/* No DF, clamped window scale, data with ACK. */
	s.df = 0;
	s.wscale = 200;
	s.flags = TCPF_ACK | TCPF_PSH;
	s.ack = 0x01020304;
	s.payload_len = 100;
	s.ts = 1;
	s.tsecr = 0xfeedf00d;
	len = build(buf, &s);
	TAP_EQ_U(parse(buf, (uint32_t)len, (uint32_t)len, &p), PKT_TCP, "v4 data: kind");
	TAP_EQ_U(p.df, 0, "v4 data: df 0");
	TAP_EQ_U(p.wscale, 14, "v4 data: wscale clamped to 14");
	TAP_EQ_U(p.ack, 0x01020304, "v4 data: ack");
	TAP_EQ_U(p.flags, TCPF_ACK | TCPF_PSH, "v4 data: flags");
	TAP_EQ_U(p.tsecr, 0xfeedf00d, "v4 data: tsecr");
	TAP_EQ_U(p.payload_len, 100, "v4 data: payload_len");
	TAP_EQ_U(p.payload_caplen, 100, "v4 data: payload_caplen");
	TAP_OK(p.payload == buf + 60 && p.payload[0] == 'a' && p.payload[99] == pb_pattern(99),
	    "v4 data: payload bytes");

	/* Bare header: no options at all. */
	s = PB_Default(AF_INET);
	s.flags = TCPF_RST;
	len = build(buf, &s);
	TAP_EQ_U(parse(buf, (uint32_t)len, (uint32_t)len, &p), PKT_TCP, "v4 RST: kind");
	TAP_OK(p.doff == 20 && p.opts == 0 && p.flags == TCPF_RST, "v4 RST: doff 20, no options");
	TAP_OK(p.mss == 0 && p.wscale == 0 && p.tsval == 0 && p.tsecr == 0 && p.payload_len == 0 &&
	    p.payload_caplen == 0 && p.ipid == 0 && p.ack == 0, "v4 RST: absent values are zero");
}

static void
test_v6_basic(void)
{
	uint8_t buf[BUFSZ];
	struct pb_spec s = syn_spec(AF_INET6);
	size_t len = build(buf, &s);
	uint8_t src[16], dst[16];
	struct pkt p;

	inet_pton(AF_INET6, "2001:db8:1::2", src);
	inet_pton(AF_INET6, "2001:db8:3::2", dst);
	buf[0] = 0x6a;  /* traffic class 0xab, flow label 0xcdef0 */
	buf[1] = 0xbc;
	buf[2] = 0xde;
	buf[3] = 0xf0;
	TAP_EQ_U(parse(buf, (uint32_t)len, (uint32_t)len, &p), PKT_TCP, "v6 SYN: kind");
	TAP_EQ_U(p.family, AF_INET6, "v6 SYN: family");
	TAP_EQ_U(p.ttl, 57, "v6 SYN: hop limit");
	TAP_EQ_U(p.tos, 0xab, "v6 SYN: traffic class");
	TAP_EQ_U(p.df, 1, "v6 SYN: df (packet.h: 1 for IPv6)");
	TAP_EQ_U(p.ipid, 0, "v6 SYN: ipid 0");
	TAP_OK(memcmp(p.src, src, 16) == 0 && memcmp(p.dst, dst, 16) == 0, "v6 SYN: addresses");
	TAP_EQ_U(p.l3_len, 40, "v6 SYN: l3_len");
	TAP_EQ_U(p.ip_len, len, "v6 SYN: ip_len");
	TAP_OK(p.sport == 40000 && p.dport == 80 && p.seq == 0xdeadbeef && p.win == 64240,
	    "v6 SYN: ports, seq, win");
	TAP_OK(p.opts == (TCPOPT_HAS_MSS | TCPOPT_HAS_SACKOK | TCPOPT_HAS_TS | TCPOPT_HAS_WSCALE) &&
	    p.mss == 1460 && p.wscale == 7 && p.tsval == 0x11223344, "v6 SYN: options");
}

static void
test_v4_ip_options(void)
{
	uint8_t base[BUFSZ], buf[BUFSZ];
	struct pb_spec s = PB_Default(AF_INET);
	size_t len, blen;
	struct pkt p;
	int good = 0;

	s.flags = TCPF_ACK;
	s.payload_len = 33;
	blen = build(base, &s);
	for (unsigned ihl = 6; ihl <= 15; ihl++) {
		unsigned hl = ihl * 4;

		memcpy(buf, base, 20);
		memset(buf + 20, 1, hl - 20);   /* NOP options */
		buf[20] = 7;                    /* a record route looking option, skipped by IHL */
		memcpy(buf + hl, base + 20, blen - 20);
		len = blen + hl - 20;
		buf[0] = (uint8_t)(0x40 | ihl);
		pb_put16(buf + 2, (uint16_t)len);
		if (parse(buf, (uint32_t)len, (uint32_t)len, &p) == PKT_TCP && p.l3_len == hl &&
		    p.sport == 40000 && p.dport == 80 && p.doff == 20 && p.payload_len == 33 &&
		    p.payload_caplen == 33 && p.payload == buf + hl + 20)
			good++;
	}
	TAP_EQ_U(good, 10, "v4 IP options: IHL 6..15 skipped");
}

static void
test_v6_ext(void)
{
	uint8_t buf[BUFSZ];
	struct pb_spec s = PB_Default(AF_INET6);
	struct pkt p;
	size_t len;

	s.flags = TCPF_ACK;
	s.payload_len = 10;
	{
		const struct ext e[] = { { 0, 0, 0 }, { 60, 1, 0 }, { 43, 2, 0 }, { 60, 0, 0 } };

		len = v6_chain(buf, &s, e, 4, 6);
		TAP_EQ_U(parse(buf, (uint32_t)len, (uint32_t)len, &p), PKT_TCP,
		    "v6 hop-by-hop + dstopts + routing + dstopts: kind");
		TAP_EQ_U(p.l3_len, 40 + 8 + 16 + 24 + 8, "v6 ext chain: l3_len");
		TAP_OK(p.sport == 40000 && p.dport == 80 && p.payload_len == 10 &&
		    p.payload_caplen == 10 && p.payload == buf + 96 + 20, "v6 ext chain: TCP fields");
	}
	{
		const struct ext e[] = { { 0, 0, 0 }, { 51, 4, 0 } };

		len = v6_chain(buf, &s, e, 2, 6);
		TAP_EQ_U(parse(buf, (uint32_t)len, (uint32_t)len, &p), PKT_TCP, "v6 hop-by-hop + AH: kind");
		TAP_EQ_U(p.l3_len, 40 + 8 + 24, "v6 AH: l3_len uses (len+2)*4");
	}
	{
		const struct ext e[] = { { 44, 0, 0 } };

		len = v6_chain(buf, &s, e, 1, 6);
		TAP_EQ_U(parse(buf, (uint32_t)len, (uint32_t)len, &p), PKT_TCP, "v6 atomic fragment: kind");
		TAP_EQ_U(p.l3_len, 48, "v6 atomic fragment: l3_len");
	}
	{
		const struct ext e[] = { { 44, 0, 185 << 3 } };

		len = v6_chain(buf, &s, e, 1, 6);
		TAP_EQ_U(parse(buf, (uint32_t)len, (uint32_t)len, &p), PKT_FRAGMENT,
		    "v6 non-first fragment");
	}
	{
		const struct ext e[] = { { 0, 0, 0 }, { 44, 0, 1 } };

		len = v6_chain(buf, &s, e, 2, 6);
		TAP_EQ_U(parse(buf, (uint32_t)len, (uint32_t)len, &p), PKT_FRAGMENT,
		    "v6 first fragment (M flag) after hop-by-hop");
	}
	{
		const struct ext e[] = { { 44, 0, 6 } };        /* reserved bits only */

		len = v6_chain(buf, &s, e, 1, 6);
		TAP_EQ_U(parse(buf, (uint32_t)len, (uint32_t)len, &p), PKT_TCP,
		    "v6 fragment header, reserved bits set: still atomic");
	}
	{
		struct ext e[9];

		for (int i = 0; i < 9; i++)
			e[i] = (struct ext){ 60, 0, 0 };
		len = v6_chain(buf, &s, e, 8, 6);
		TAP_EQ_U(parse(buf, (uint32_t)len, (uint32_t)len, &p), PKT_TCP, "v6 8 extension headers");
		TAP_EQ_U(p.l3_len, 40 + 64, "v6 8 extension headers: l3_len");
		len = v6_chain(buf, &s, e, 9, 6);
		TAP_EQ_U(parse(buf, (uint32_t)len, (uint32_t)len, &p), PKT_MALFORMED,
		    "v6 9 extension headers: malformed");
	}
	{
		const struct ext e[] = { { 0, 0, 0 }, { 60, 10, 0 } };

		len = v6_chain(buf, &s, e, 2, 6);
		TAP_EQ_U(parse(buf, 40 + 8 + 40, (uint32_t)len, &p), PKT_TRUNCATED,
		    "v6 ext header running past caplen: truncated");
		TAP_EQ_U(parse(buf, 40 + 8 + 1, (uint32_t)len, &p), PKT_TRUNCATED,
		    "v6 ext header length byte not captured: truncated");
		buf[48 + 1] = 255;              /* 2048 bytes: past the payload length */
		TAP_EQ_U(parse(buf, (uint32_t)len, (uint32_t)len, &p), PKT_MALFORMED,
		    "v6 ext header running past payload length: malformed");
		buf[48 + 1] = 10;
		pb_put16(buf + 4, 8 + 40);      /* payload ends inside the dstopts header */
		TAP_EQ_U(parse(buf, (uint32_t)len, (uint32_t)len, &p), PKT_MALFORMED,
		    "v6 payload length shorter than the ext chain: malformed");
		pb_put16(buf + 4, 8 + 88);      /* payload ends right after it: no room for TCP */
		TAP_EQ_U(parse(buf, (uint32_t)len, (uint32_t)len, &p), PKT_MALFORMED,
		    "v6 no room for the TCP header: malformed");
	}
	{
		const struct ext e[] = { { 0, 0, 0 } };

		len = v6_chain(buf, &s, e, 0, 50);
		TAP_EQ_U(parse(buf, (uint32_t)len, (uint32_t)len, &p), PKT_NOT_TCP, "v6 ESP: not_tcp");
		len = v6_chain(buf, &s, e, 1, 50);
		TAP_EQ_U(parse(buf, (uint32_t)len, (uint32_t)len, &p), PKT_NOT_TCP,
		    "v6 hop-by-hop then ESP: not_tcp");
		len = v6_chain(buf, &s, e, 1, 59);
		TAP_EQ_U(parse(buf, (uint32_t)len, (uint32_t)len, &p), PKT_NOT_TCP,
		    "v6 no next header: not_tcp");
		len = v6_chain(buf, &s, e, 0, 17);
		TAP_EQ_U(parse(buf, (uint32_t)len, (uint32_t)len, &p), PKT_NOT_TCP, "v6 UDP: not_tcp");
		len = v6_chain(buf, &s, e, 0, 58);
		TAP_EQ_U(parse(buf, (uint32_t)len, (uint32_t)len, &p), PKT_NOT_TCP, "v6 ICMPv6: not_tcp");
	}
}

static void
test_v4_fragments(void)
{
	uint8_t buf[BUFSZ];
	struct pb_spec s = PB_Default(AF_INET);
	size_t len;
	struct pkt p;

	s.payload_len = 64;
	len = build(buf, &s);
	pb_put16(buf + 6, 0x2000);      /* MF */
	TAP_EQ_U(parse(buf, (uint32_t)len, (uint32_t)len, &p), PKT_FRAGMENT, "v4 MF: fragment");
	pb_put16(buf + 6, 100);         /* offset 800, last fragment */
	TAP_EQ_U(parse(buf, (uint32_t)len, (uint32_t)len, &p), PKT_FRAGMENT, "v4 offset: fragment");
	pb_put16(buf + 6, 0x4000 | 0x2000 | 1);
	TAP_EQ_U(parse(buf, (uint32_t)len, (uint32_t)len, &p), PKT_FRAGMENT, "v4 DF+MF+offset: fragment");
	pb_put16(buf + 6, 0x8000);      /* the evil bit is not a fragment */
	TAP_EQ_U(parse(buf, (uint32_t)len, (uint32_t)len, &p), PKT_TCP, "v4 reserved flag: tcp");
}

/* Cut a valid packet at every length: TRUNCATED until the TCP header is complete, then TCP
 * with the captured payload growing one byte at a time. */
static void
trunc_loop(const uint8_t *buf, size_t len, uint32_t hdr_end, const char *what)
{
	struct pkt p;
	unsigned bad = 0, other = 0;

	for (uint32_t cap = 0; cap <= len; cap++) {
		enum pkt_kind k = parse(buf, cap, (uint32_t)len, &p);

		if (cap < hdr_end) {
			if (k != PKT_TRUNCATED)
				bad++;
		} else if (k != PKT_TCP || p.payload_len != len - hdr_end ||
		    p.payload_caplen != cap - hdr_end || p.payload != buf + hdr_end) {
			bad++;
		}
		/* Unknown wire length: any kind, but never a crash or a read past cap. */
		if (parse(buf, cap, 0, &p) >= PKT_KIND_MAX)
			other++;
	}
	TAP_OK(bad == 0 && other == 0, "%s: truncated at every length 0..%zu (%u wrong)", what, len,
	    bad + other);
}

static void
test_truncation(void)
{
	uint8_t buf[BUFSZ];
	struct pb_spec s = syn_spec(AF_INET);
	size_t len;

	s.payload_len = 25;
	len = build(buf, &s);
	trunc_loop(buf, len, 20 + 40, "v4 SYN with options");

	s = syn_spec(AF_INET6);
	s.payload_len = 25;
	{
		const struct ext e[] = { { 0, 0, 0 }, { 44, 0, 0 }, { 43, 1, 0 }, { 51, 2, 0 } };

		len = v6_chain(buf, &s, e, 4, 6);
		trunc_loop(buf, len, 40 + 8 + 8 + 16 + 16 + 40, "v6 ext chain, SYN with options");
	}
}

static void
test_v4_bad_lengths(void)
{
	uint8_t base[BUFSZ], buf[BUFSZ];
	struct pb_spec s = syn_spec(AF_INET);
	size_t len = build(base, &s);
	struct pkt p;

#define RESET() memcpy(buf, base, len)
	RESET();
	buf[0] = 0x44;
	TAP_EQ_U(parse(buf, (uint32_t)len, (uint32_t)len, &p), PKT_MALFORMED, "v4 IHL 4: malformed");
	buf[0] = 0x40;
	TAP_EQ_U(parse(buf, (uint32_t)len, (uint32_t)len, &p), PKT_MALFORMED, "v4 IHL 0: malformed");
	TAP_EQ_U(parse(buf, 1, (uint32_t)len, &p), PKT_MALFORMED, "v4 IHL 0, 1 byte captured: malformed");

	RESET();
	buf[0] = 0x46;
	TAP_EQ_U(parse(buf, 22, (uint32_t)len, &p), PKT_TRUNCATED, "v4 IHL 6 beyond caplen 22: truncated");
	buf[0] = 0x4f;
	TAP_EQ_U(parse(buf, 59, (uint32_t)len, &p), PKT_TRUNCATED, "v4 IHL 15 beyond caplen 59: truncated");
	TAP_EQ_U(parse(buf, 19, (uint32_t)len, &p), PKT_TRUNCATED, "v4 caplen 19: truncated");

	RESET();
	pb_put16(buf + 2, 19);
	TAP_EQ_U(parse(buf, (uint32_t)len, (uint32_t)len, &p), PKT_MALFORMED, "v4 tot_len < IHL*4: malformed");
	pb_put16(buf + 2, 0);
	TAP_EQ_U(parse(buf, (uint32_t)len, (uint32_t)len, &p), PKT_MALFORMED,
	    "v4 tot_len 0 without a big wire length: malformed");
	pb_put16(buf + 2, (uint16_t)(len + 1));
	TAP_EQ_U(parse(buf, (uint32_t)len, (uint32_t)len, &p), PKT_MALFORMED, "v4 tot_len > wirelen: malformed");
	TAP_EQ_U(parse(buf, (uint32_t)len, 0, &p), PKT_MALFORMED, "v4 tot_len > caplen, wirelen unknown: malformed");
	pb_put16(buf + 2, 20 + 19);
	TAP_EQ_U(parse(buf, (uint32_t)len, (uint32_t)len, &p), PKT_MALFORMED,
	    "v4 IP payload shorter than a TCP header: malformed");
	pb_put16(buf + 2, 20 + 24);     /* room for 24 bytes of TCP, doff says 40 */
	TAP_EQ_U(parse(buf, (uint32_t)len, (uint32_t)len, &p), PKT_MALFORMED,
	    "v4 data offset beyond the IP payload: malformed");
	TAP_EQ_U(parse(buf, 30, (uint32_t)len, &p), PKT_TRUNCATED,
	    "v4 TCP header not captured: truncated");

	RESET();
	buf[32] = 0x40;
	TAP_EQ_U(parse(buf, (uint32_t)len, (uint32_t)len, &p), PKT_MALFORMED, "v4 data offset 4: malformed");
	buf[32] = 0x00;
	TAP_EQ_U(parse(buf, (uint32_t)len, (uint32_t)len, &p), PKT_MALFORMED, "v4 data offset 0: malformed");
	buf[32] = 0xf0;
	TAP_EQ_U(parse(buf, (uint32_t)len, (uint32_t)len, &p), PKT_MALFORMED,
	    "v4 data offset 15 beyond the IP payload: malformed");
	TAP_EQ_U(parse(buf, (uint32_t)len, 200, &p), PKT_MALFORMED,
	    "v4 data offset 15, bigger wire length (tot_len rules): malformed");

	RESET();
	buf[9] = 17;
	TAP_EQ_U(parse(buf, (uint32_t)len, (uint32_t)len, &p), PKT_NOT_TCP, "v4 UDP: not_tcp");
	buf[9] = 1;
	TAP_EQ_U(parse(buf, 20, (uint32_t)len, &p), PKT_NOT_TCP, "v4 ICMP, IP header only: not_tcp");
	{
		static const struct pkt zero;

		TAP_OK(memcmp(&p, &zero, sizeof(p)) == 0, "v4 not_tcp: struct pkt cleared");
	}

	RESET();
	buf[0] = 0x55;
	TAP_EQ_U(parse(buf, (uint32_t)len, (uint32_t)len, &p), PKT_MALFORMED, "version 5: malformed");
	buf[0] = 0x05;
	TAP_EQ_U(parse(buf, (uint32_t)len, (uint32_t)len, &p), PKT_MALFORMED, "version 0: malformed");
	TAP_EQ_U(parse(buf, 0, 0, &p), PKT_TRUNCATED, "caplen 0: truncated");
#undef RESET
}

static void
test_v6_bad_lengths(void)
{
	uint8_t buf[BUFSZ];
	struct pb_spec s = PB_Default(AF_INET6);
	size_t len = build(buf, &s);
	struct pkt p;

	TAP_EQ_U(parse(buf, 39, (uint32_t)len, &p), PKT_TRUNCATED, "v6 caplen 39: truncated");
	pb_put16(buf + 4, (uint16_t)(len - 40 + 1));
	TAP_EQ_U(parse(buf, (uint32_t)len, (uint32_t)len, &p), PKT_MALFORMED,
	    "v6 payload length > wirelen: malformed");
	pb_put16(buf + 4, 0);
	TAP_EQ_U(parse(buf, (uint32_t)len, (uint32_t)len, &p), PKT_MALFORMED,
	    "v6 payload length 0, small wire length: malformed");
	pb_put16(buf + 4, 16);
	TAP_EQ_U(parse(buf, (uint32_t)len, (uint32_t)len, &p), PKT_MALFORMED,
	    "v6 payload shorter than a TCP header: malformed");
}

/* TCP options: a 20-byte header plus the given option bytes (a multiple of 4). */
static enum pkt_kind
parse_opts(const uint8_t *o, size_t olen, struct pkt *p)
{
	uint8_t buf[BUFSZ];
	struct pb_spec s = PB_Default(AF_INET);
	size_t len;

	s.payload_len = 8;
	len = build(buf, &s);
	memmove(buf + 40 + olen, buf + 40, len - 40);
	memcpy(buf + 40, o, olen);
	len += olen;
	buf[32] = (uint8_t)((20 + olen) / 4) << 4;
	pb_put16(buf + 2, (uint16_t)len);
	return parse(buf, (uint32_t)len, (uint32_t)len, p);
}

static void
test_tcp_options(void)
{
	struct pkt p;
	enum pkt_kind k;

#define OPT(what, want_opts, ...) do { \
		static const uint8_t o[] = { __VA_ARGS__ }; \
		k = parse_opts(o, sizeof(o), &p); \
		tap_ok(k == PKT_TCP && p.opts == (want_opts) && p.payload_len == 8, \
		    "options %s (kind %d, opts 0x%02x, want 0x%02x)", what, k, p.opts, (unsigned)(want_opts)); \
	} while (0)

	OPT("length 0", TCPOPT_BAD, 2, 0, 5, 0xb4);
	OPT("length 1", TCPOPT_BAD, 2, 1, 5, 0xb4);
	OPT("length overruns the header", TCPOPT_BAD, 1, 1, 8, 10);
	OPT("kind in the last byte, no length", TCPOPT_BAD, 1, 1, 1, 2);
	OPT("valid MSS then length 0", TCPOPT_HAS_MSS | TCPOPT_BAD, 2, 4, 5, 0xb4, 1, 1, 30, 0);
	OPT("MSS with length 3", TCPOPT_BAD, 2, 3, 5, 1);
	OPT("bad SACKOK length skipped, then WS", TCPOPT_BAD | TCPOPT_HAS_WSCALE, 4, 3, 0, 3, 3, 5, 1, 1);
	OPT("TS with length 8", TCPOPT_BAD, 8, 8, 0, 0, 0, 0, 0, 0);
	OPT("EOL stops the walk", 0, 0, 2, 0, 0);
	OPT("unknown kinds skipped", TCPOPT_HAS_SACKOK, 30, 4, 0, 0, 254, 2, 4, 2);
	OPT("SACK one block", TCPOPT_HAS_SACK, 1, 1, 5, 10, 0, 0, 0, 1, 0, 0, 0, 2);
	OPT("SACK bad length", TCPOPT_BAD, 1, 1, 5, 6, 0, 0, 0, 1);
	OPT("MD5", TCPOPT_HAS_MD5, 1, 1, 19, 18, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16);
	OPT("AO", TCPOPT_HAS_AO, 29, 8, 1, 2, 3, 4, 5, 6);
	OPT("AO too short", TCPOPT_BAD, 29, 3, 0, 1);
#undef OPT

	{
		static const uint8_t o[] = { 3, 3, 15, 2, 4, 0x05, 0xb4, 1 };

		k = parse_opts(o, sizeof(o), &p);
		TAP_OK(k == PKT_TCP && p.wscale == 14 && p.mss == 1460 &&
		    p.opts == (TCPOPT_HAS_WSCALE | TCPOPT_HAS_MSS), "options: wscale 15 clamped, MSS after it");
	}
}

static void
test_partial_capture(void)
{
	uint8_t buf[BUFSZ];
	struct pb_spec s = PB_Default(AF_INET);
	size_t len;
	struct pkt p;

	s.flags = TCPF_ACK;
	s.ts = 1;
	s.payload_len = 1400;
	len = build(buf, &s);
	TAP_EQ_U(parse(buf, 20 + 32 + 100, (uint32_t)len, &p), PKT_TCP, "v4 partial capture: kind");
	TAP_OK(p.payload_len == 1400 && p.payload_caplen == 100 && p.payload == buf + 52,
	    "v4 partial capture: payload_len %u, payload_caplen %u", p.payload_len, p.payload_caplen);
	TAP_EQ_U(p.ip_len, len, "v4 partial capture: ip_len from the header");

	/* Link-layer padding after the datagram is not payload. */
	s.ts = 0;
	s.payload_len = 2;
	len = build(buf, &s);
	memset(buf + len, 0, 16);
	TAP_EQ_U(parse(buf, (uint32_t)len + 16, (uint32_t)len + 16, &p), PKT_TCP, "v4 trailing padding: kind");
	TAP_OK(p.payload_len == 2 && p.payload_caplen == 2, "v4 trailing padding: not payload (%u/%u)",
	    p.payload_len, p.payload_caplen);

	s = PB_Default(AF_INET6);
	s.payload_len = 1400;
	len = build(buf, &s);
	TAP_EQ_U(parse(buf, 128, (uint32_t)len, &p), PKT_TCP, "v6 partial capture: kind");
	TAP_OK(p.payload_len == 1400 && p.payload_caplen == 128 - 60,
	    "v6 partial capture: payload_len %u, payload_caplen %u", p.payload_len, p.payload_caplen);
}

static void
test_big_tcp(void)
{
	uint8_t buf[BUFSZ];
	struct pb_spec s = PB_Default(AF_INET);
	size_t len;
	struct pkt p;

	s.flags = TCPF_ACK;
	s.payload_len = 200;
	len = build(buf, &s);
	pb_put16(buf + 2, 0);
	TAP_EQ_U(parse(buf, (uint32_t)len, 70000, &p), PKT_TCP, "v4 BIG TCP tot_len 0: kind");
	TAP_OK(p.ip_len == 70000 && p.payload_len == 70000 - 40 && p.payload_caplen == 200,
	    "v4 BIG TCP: ip_len %u, payload_len %u, payload_caplen %u", p.ip_len, p.payload_len,
	    p.payload_caplen);
	TAP_EQ_U(parse(buf, (uint32_t)len, 65535, &p), PKT_MALFORMED, "v4 tot_len 0, wirelen 65535: malformed");

	s = PB_Default(AF_INET6);
	s.payload_len = 200;
	len = build(buf, &s);
	pb_put16(buf + 4, 0);
	TAP_EQ_U(parse(buf, (uint32_t)len, 100000, &p), PKT_TCP, "v6 BIG TCP payload length 0: kind");
	TAP_OK(p.ip_len == 100000 && p.payload_len == 100000 - 60 && p.payload_caplen == 200,
	    "v6 BIG TCP: ip_len %u, payload_len %u", p.ip_len, p.payload_len);
	TAP_EQ_U(parse(buf, (uint32_t)len, 65575, &p), PKT_MALFORMED,
	    "v6 payload length 0, wirelen 65575: malformed");
}

static void
test_names(void)
{
	char b[64];
	uint8_t a[16];

	TAP_EQ_S(PKT_KindName(PKT_TCP), "tcp", "kind name tcp");
	TAP_EQ_S(PKT_KindName(PKT_NOT_TCP), "not_tcp", "kind name not_tcp");
	TAP_EQ_S(PKT_KindName(PKT_FRAGMENT), "fragment", "kind name fragment");
	TAP_EQ_S(PKT_KindName(PKT_TRUNCATED), "truncated", "kind name truncated");
	TAP_EQ_S(PKT_KindName(PKT_MALFORMED), "malformed", "kind name malformed");
	TAP_EQ_S(PKT_KindName(PKT_KIND_MAX), "unknown", "kind name out of range");

	inet_pton(AF_INET, "198.18.3.2", a);
	PKT_FormatAddr(AF_INET, a, b, sizeof(b));
	TAP_EQ_S(b, "198.18.3.2", "format IPv4 address");
	inet_pton(AF_INET6, "2001:db8:3::2", a);
	PKT_FormatAddr(AF_INET6, a, b, sizeof(b));
	TAP_EQ_S(b, "2001:db8:3::2", "format IPv6 address");
	PKT_FormatAddr(AF_INET6, a, b, 4);
	TAP_EQ_S(b, "?", "format into a short buffer");
	PKT_FormatAddr(99, a, b, sizeof(b));
	TAP_EQ_S(b, "?", "format unknown family");
}

/* Deterministic xorshift: the same mutations on every run. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint32_t
rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)(rng_state >> 16);
}

static void
test_fuzz(void)
{
	static const uint8_t interesting[] = { 0, 1, 2, 3, 4, 5, 6, 8, 0x0f, 0x10, 0x3f, 0x40, 0x45,
		0x4f, 0x50, 0x60, 0x7f, 0x80, 0xff, 17, 43, 44, 50, 51, 59, 60 };
	uint8_t bases[6][BUFSZ], buf[BUFSZ];
	size_t blen[6];
	static const struct pkt zero;
	unsigned counts[PKT_KIND_MAX] = { 0 }, bad = 0;
	const int iters = 200000;
	struct pb_spec s;

	s = syn_spec(AF_INET);
	blen[0] = build(bases[0], &s);
	s = syn_spec(AF_INET6);
	blen[1] = build(bases[1], &s);
	s = PB_Default(AF_INET);
	s.ts = 1;
	s.payload_len = 40;
	blen[2] = build(bases[2], &s);
	s = PB_Default(AF_INET6);
	s.payload_len = 40;
	{
		const struct ext e[] = { { 0, 0, 0 }, { 60, 1, 0 }, { 44, 0, 0 }, { 51, 1, 0 } };

		blen[3] = v6_chain(bases[3], &s, e, 4, 6);
	}
	{
		const struct ext e[] = { { 43, 0, 0 } };

		s = syn_spec(AF_INET6);
		blen[4] = v6_chain(bases[4], &s, e, 1, 6);
	}
	/* IPv4 with IP options (IHL 8) and TCP options. */
	s = syn_spec(AF_INET);
	blen[5] = build(buf, &s);
	memcpy(bases[5], buf, 20);
	memset(bases[5] + 20, 1, 12);
	memcpy(bases[5] + 32, buf + 20, blen[5] - 20);
	blen[5] += 12;
	bases[5][0] = 0x48;
	pb_put16(bases[5] + 2, (uint16_t)blen[5]);

	for (int it = 0; it < iters; it++) {
		int b = (int)(rnd() % 6), nmut = 1 + (int)(rnd() % 4);
		uint32_t len = (uint32_t)blen[b], cap, wire;
		struct pkt p;
		enum pkt_kind k;

		memcpy(buf, bases[b], len);
		for (int m = 0; m < nmut; m++) {
			/* Mostly the headers: that is where the lengths are. */
			uint32_t pos = rnd() % (rnd() % 4 ? (len < 120 ? len : 120) : len);

			switch (rnd() % 4) {
			case 0:
				buf[pos] ^= (uint8_t)(1u << (rnd() % 8));
				break;
			case 1:
				buf[pos] = (uint8_t)rnd();
				break;
			case 2:
				buf[pos] = interesting[rnd() % sizeof(interesting)];
				break;
			default:        /* a 16-bit length field candidate */
				if (pos + 1 < len)
					pb_put16(buf + pos, (uint16_t)(rnd() % 3 ? rnd() % (len + 64) : rnd()));
				break;
			}
		}
		switch (rnd() % 4) {
		case 0:
			cap = rnd() % (len + 1);
			break;
		case 1:
			cap = len - rnd() % 8;  /* len is always > 8 */
			break;
		default:
			cap = len;
			break;
		}
		switch (rnd() % 4) {
		case 0:
			wire = 0;
			break;
		case 1:
			wire = cap + rnd() % 200000;
			break;
		default:
			wire = len;
			break;
		}

		{
			/* Exact-size copy, parsed in place so payload can be checked against it. */
			uint8_t *copy = malloc(cap ? cap : 1);

			if (copy == NULL)
				abort();
			memcpy(copy, buf, cap);
			memset(&p, 0xa5, sizeof(p));
			k = PKT_Parse(copy, cap, wire, &p);
			if ((unsigned)k >= PKT_KIND_MAX)
				bad++;
			else
				counts[k]++;
			if (k == PKT_TCP && ((uint32_t)p.l3_len + p.doff > cap || p.doff < 20 ||
			    p.payload < copy || p.payload + p.payload_caplen > copy + cap ||
			    p.payload_caplen > p.payload_len))
				bad++;
			if (k != PKT_TCP && memcmp(&p, &zero, sizeof(p)) != 0)
				bad++;
			free(copy);
		}
	}
	printf("# fuzz: tcp %u, not_tcp %u, fragment %u, truncated %u, malformed %u\n",
	    counts[PKT_TCP], counts[PKT_NOT_TCP], counts[PKT_FRAGMENT], counts[PKT_TRUNCATED],
	    counts[PKT_MALFORMED]);
	TAP_OK(bad == 0, "fuzz: %d mutated packets, %u inconsistent results", iters, bad);
	TAP_OK(counts[PKT_TCP] && counts[PKT_NOT_TCP] && counts[PKT_FRAGMENT] &&
	    counts[PKT_TRUNCATED] && counts[PKT_MALFORMED], "fuzz: every kind was reached");
}

int
main(void)
{
	test_v4_syn();
	test_v6_basic();
	test_v4_ip_options();
	test_v6_ext();
	test_v4_fragments();
	test_truncation();
	test_v4_bad_lengths();
	test_v6_bad_lengths();
	test_tcp_options();
	test_partial_capture();
	test_big_tcp();
	test_names();
	test_fuzz();
	return tap_done();
}
