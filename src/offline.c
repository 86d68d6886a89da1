/* Offline analysis. The same engine as inline: one engine, the capture's timestamps as its clock
 * (so timers and judgements behave as they would have, and a second run gives the same events),
 * no packet is ever held (there is nothing to hold), verdicts are reported as what they would
 * have been. */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <pcap/pcap.h>

#include "engine.h"
#include "event.h"
#include "flow.h"
#include "json.h"
#include "log.h"
#include "offline.h"
#include "siphash.h"

#ifndef DLT_LINUX_SLL2
#define DLT_LINUX_SLL2 276
#endif
#ifndef DLT_IPV4
#define DLT_IPV4 228
#endif
#ifndef DLT_IPV6
#define DLT_IPV6 229
#endif
#ifndef DLT_NFLOG
#define DLT_NFLOG 239
#endif
#ifndef DLT_PPP_SERIAL
#define DLT_PPP_SERIAL 50
#endif
#ifndef DLT_PPP_ETHER
#define DLT_PPP_ETHER 51
#endif
#ifndef DLT_C_HDLC
#define DLT_C_HDLC 104
#endif

#define ETH_IPV4 0x0800
#define ETH_IPV6 0x86dd
#define ETH_8021Q 0x8100
#define ETH_8021AD 0x88a8
#define ETH_QINQ 0x9100
#define ETH_PPPOE_SESSION 0x8864
#define MAX_VLAN_TAGS 4

#define PPP_IPV4 0x0021
#define PPP_IPV6 0x0057

#define NFLOG_HDR_LEN 4
#define NFLOG_TLV_LEN 4
#define NFULA_TIMESTAMP 3
#define NFULA_PAYLOAD 9
#define NLA_TYPE_MASK 0x3fff     /* the netlink attribute flags (nested, byte order) stripped */

/* Host pairs ranked by RSTs: a bounded table, so a capture full of scanners cannot grow it. */
#define PAIR_SLOTS 4096
#define TOP_PAIRS 10

struct pair_count {
	uint8_t family;
	uint8_t a[16], b[16];
	uint64_t rsts;
	uint64_t forged;
};

struct summary {
	uint64_t rst_by_cause[RST_CAUSE_MAX];
	uint64_t forged;
	uint64_t revised;          /* of which first judged genuine, then forged by late evidence */
	uint64_t evidence[RST_EV_COUNT];
	uint64_t would_drop;
	struct pair_count *pairs;
	uint64_t pairs_lost;       /* RSTs of pairs that found no slot */
	uint8_t key[16];
};

static uint16_t
get16(const unsigned char *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

int
OFF_LinkTypeSupported(int linktype)
{
	switch (linktype) {
	case DLT_EN10MB:
	case DLT_LINUX_SLL:
	case DLT_LINUX_SLL2:
	case DLT_RAW:
	case DLT_IPV4:
	case DLT_IPV6:
	case DLT_NULL:
	case DLT_LOOP:
	case DLT_NFLOG:
	case DLT_PPP:
	case DLT_PPP_SERIAL:
	case DLT_PPP_ETHER:
	case DLT_C_HDLC:
		return 1;
	default:
		return linktype == 101 || linktype == 12 || linktype == 14;  /* raw IP's other numbers */
	}
}

static int
ethertype_ip(uint16_t t)
{
	return t == ETH_IPV4 || t == ETH_IPV6;
}

/* The IP packet starts at f + off: check that it is one and fill *ip, the lengths cut to at most
 * limit bytes (a length the link layer gives for its payload). */
static int
ip_at(const unsigned char *f, unsigned caplen, unsigned wirelen, unsigned off, unsigned limit,
      struct off_ip *ip)
{
	unsigned v;

	if (caplen <= off)
		return -1;
	v = f[off] >> 4;
	if (v != 4 && v != 6)
		return -1;
	ip->data = f + off;
	ip->caplen = caplen - off;
	ip->wirelen = wirelen > off ? wirelen - off : 0;
	if (ip->caplen > limit)
		ip->caplen = limit;
	if (ip->wirelen > limit)
		ip->wirelen = limit;
	return 0;
}

/* A PPP protocol field at f[*off] (two bytes, or one when compressed: RFC 1661 section 6.5, an
 * odd first byte); moves *off past it. Returns the protocol or -1. */
static int
ppp_protocol(const unsigned char *f, unsigned caplen, unsigned *off)
{
	if (caplen <= *off)
		return -1;
	if (f[*off] & 1)
		return f[(*off)++];
	if (caplen - *off < 2)
		return -1;
	*off += 2;
	return get16(f + *off - 2);
}

/* PPP from f[off]: an optional ff 03 address and control (HDLC-like framing, RFC 1662), then the
 * protocol. */
static int
ppp_ip(const unsigned char *f, unsigned caplen, unsigned wirelen, unsigned off, unsigned limit,
       struct off_ip *ip)
{
	unsigned start = off;
	int proto;

	if (caplen - off >= 2 && f[off] == 0xff && f[off + 1] == 0x03)
		off += 2;
	proto = ppp_protocol(f, caplen, &off);
	if (proto != PPP_IPV4 && proto != PPP_IPV6)
		return -1;
	if (limit != UINT32_MAX) {
		/* limit counted from start: what the protocol field and framing took is not IP */
		if (limit < off - start)
			return -1;
		limit -= off - start;
	}
	return ip_at(f, caplen, wirelen, off, limit, ip);
}

/* A PPPoE session header (RFC 2516: version and type 0x11, code 0, session, length) at f[off],
 * then PPP. The length field bounds the PPP frame (Ethernet may pad it). */
static int
pppoe_ip(const unsigned char *f, unsigned caplen, unsigned wirelen, unsigned off, struct off_ip *ip)
{
	unsigned len;

	if (caplen < off || caplen - off < 6)
		return -1;
	if (f[off] != 0x11 || f[off + 1] != 0x00)
		return -1;
	len = get16(f + off + 4);
	return ppp_ip(f, caplen, wirelen, off + 6, len, ip);
}

/* NFLOG (libpcap's pcap/nflog.h; https://www.tcpdump.org/linktypes/LINKTYPE_NFLOG.html): a
 * 4-byte header (family, version 0, resource id), then TLVs whose length (header included, the
 * value's padding to 4 bytes not) and type are in the byte order of the host that wrote the
 * capture; libpcap turns them into ours when it reads a capture of the other byte order, the
 * pcapng reader here passes swapped. The packet is the value of NFULA_PAYLOAD, starting at its
 * network header. The record's lengths are the TLVs', so the packet's wire length is the
 * payload's, or what its IP header claims when the kernel copied less (the rule's
 * --nflog-size, or the copy range, which libpcap sets to its snap length). The record's
 * timestamp is when the capturing program read the message (the kernel sends them in batches,
 * up to a second late): NFULA_TIMESTAMP, when the kernel added it (a big-endian second and
 * microsecond, before the payload), is when the packet arrived. */
static int
nflog_ip(const unsigned char *f, unsigned caplen, unsigned wirelen, int swapped, struct off_ip *ip)
{
	unsigned off = NFLOG_HDR_LEN;
	uint64_t ts_ns = 0;

	if (caplen < NFLOG_HDR_LEN || f[1] != 0)
		return -1;
	if (wirelen < caplen)
		wirelen = caplen;
	while (caplen - off >= NFLOG_TLV_LEN) {
		uint16_t tlen, ttype;
		unsigned step;

		memcpy(&tlen, f + off, 2);
		memcpy(&ttype, f + off + 2, 2);
		if (swapped) {
			tlen = (uint16_t)((tlen >> 8) | (tlen << 8));
			ttype = (uint16_t)((ttype >> 8) | (ttype << 8));
		}
		if (tlen < NFLOG_TLV_LEN)
			return -1;               /* zero or short: the rest cannot be walked */
		ttype &= NLA_TYPE_MASK;
		if (ttype == NFULA_PAYLOAD) {
			unsigned vlen = tlen - NFLOG_TLV_LEN, wire;

			/* The payload may be cut by the snap length, not claim more than the record. */
			if (wirelen - off - NFLOG_TLV_LEN < vlen)
				return -1;
			if (ip_at(f, caplen, off + NFLOG_TLV_LEN + vlen, off + NFLOG_TLV_LEN, vlen, ip) < 0)
				return -1;
			wire = vlen;
			if (ip->data[0] >> 4 == 4 && ip->caplen >= 4) {
				wire = get16(ip->data + 2);
			} else if (ip->data[0] >> 4 == 6 && ip->caplen >= 6) {
				wire = 40u + get16(ip->data + 4);
			}
			if (wire > ip->wirelen)
				ip->wirelen = wire;
			ip->ts_ns = ts_ns;
			return 0;
		}
		step = (tlen + 3u) & ~3u;
		if (caplen - off < step)
			return -1;               /* runs past the captured bytes, before any payload */
		if (ttype == NFULA_TIMESTAMP && tlen == NFLOG_TLV_LEN + 16) {
			uint64_t sec = 0, usec = 0;

			for (unsigned i = 0; i < 8; i++) {
				sec = sec << 8 | f[off + 4 + i];
				usec = usec << 8 | f[off + 12 + i];
			}
			/* only a plausible one: after 1970, before 2262, microseconds below a million */
			if (sec > 0 && sec < UINT64_MAX / 1000000000ULL - 1 && usec < 1000000)
				ts_ns = sec * 1000000000ULL + usec * 1000;
		}
		off += step;
	}
	return -1;
}

int
OFF_IpFrame(int linktype, const unsigned char *f, unsigned caplen, unsigned wirelen, int swapped,
	    struct off_ip *ip)
{
	unsigned off;
	uint16_t type;

	if (wirelen < caplen)
		wirelen = caplen;
	ip->ts_ns = 0;
	switch (linktype) {
	case DLT_EN10MB:
		if (caplen < 14)
			return -1;
		off = 12;
		type = get16(f + off);
		/* 802.1ad / 802.1Q tags, stacked (QinQ): each adds 4 bytes before the real type. */
		for (int tags = 0; (type == ETH_8021Q || type == ETH_8021AD || type == ETH_QINQ) && tags < MAX_VLAN_TAGS; tags++) {
			off += 4;
			if (caplen < off + 2)
				return -1;
			type = get16(f + off);
		}
		off += 2;
		if (type == ETH_PPPOE_SESSION)
			return pppoe_ip(f, caplen, wirelen, off, ip);
		return ethertype_ip(type) ? ip_at(f, caplen, wirelen, off, UINT32_MAX, ip) : -1;
	case DLT_LINUX_SLL:
		/* 16 bytes: packet type, ARPHRD, address length, 8 address bytes, protocol. */
		if (caplen < 16)
			return -1;
		return ethertype_ip(get16(f + 14)) ? ip_at(f, caplen, wirelen, 16, UINT32_MAX, ip) : -1;
	case DLT_LINUX_SLL2:
		/* 20 bytes: protocol first, then reserved, ifindex, ARPHRD, type, address. */
		if (caplen < 20)
			return -1;
		return ethertype_ip(get16(f)) ? ip_at(f, caplen, wirelen, 20, UINT32_MAX, ip) : -1;
	case DLT_NULL:
	case DLT_LOOP:
		/* A 4-byte address family, in host order (NULL) or network order (LOOP). */
		return ip_at(f, caplen, wirelen, 4, UINT32_MAX, ip);
	case DLT_NFLOG:
		return nflog_ip(f, caplen, wirelen, swapped, ip);
	case DLT_PPP:
		/* With or without the ff 03 of HDLC-like framing, as libpcap documents. */
		return ppp_ip(f, caplen, wirelen, 0, UINT32_MAX, ip);
	case DLT_PPP_SERIAL:
	case DLT_C_HDLC:
		/* PPP in HDLC-like framing (ff 03), or Cisco HDLC: address 0f or 8f, control 00, an
		 * Ethernet type (RFC 1547 section 4.3.1). */
		if (caplen < 4)
			return -1;
		if ((f[0] == 0x0f || f[0] == 0x8f) && f[1] == 0x00)
			return ethertype_ip(get16(f + 2)) ? ip_at(f, caplen, wirelen, 4, UINT32_MAX, ip) : -1;
		if (linktype == DLT_C_HDLC || f[0] != 0xff)
			return -1;
		return ppp_ip(f, caplen, wirelen, 0, UINT32_MAX, ip);
	case DLT_PPP_ETHER:
		return pppoe_ip(f, caplen, wirelen, 0, ip);
	default:
		/* Raw IP: the version nibble tells IPv4 from IPv6. */
		if (!OFF_LinkTypeSupported(linktype))
			return -1;
		return ip_at(f, caplen, wirelen, 0, UINT32_MAX, ip);
	}
}

static struct pair_count *
pair_slot(struct summary *s, const struct pkt *p)
{
	const uint8_t *a = p->src, *b = p->dst;
	uint8_t k[33];
	uint64_t h;

	/* Both directions of a host pair count together. */
	if (memcmp(a, b, 16) > 0) {
		a = p->dst;
		b = p->src;
	}
	memcpy(k, a, 16);
	memcpy(k + 16, b, 16);
	k[32] = p->family;
	h = SIP_Hash13(s->key, k, sizeof(k));
	for (unsigned probe = 0; probe < 16; probe++) {
		struct pair_count *pc = &s->pairs[(h + probe) & (PAIR_SLOTS - 1)];

		if (pc->rsts == 0) {
			pc->family = p->family;
			memcpy(pc->a, a, 16);
			memcpy(pc->b, b, 16);
			return pc;
		}
		if (pc->family == p->family && memcmp(pc->a, a, 16) == 0 && memcmp(pc->b, b, 16) == 0)
			return pc;
	}
	return NULL;
}

static void
count_rst(void *ctx, const struct pkt *p, const struct rst_result *r, enum rg_verdict would,
	  const struct rst_result *was)
{
	struct summary *s = ctx;
	struct pair_count *pc;
	uint32_t new_bits = r->evidence;

	/* A revision: the same RST, counted once, under its new judgement. */
	if (was) {
		s->rst_by_cause[was->cause]--;
		new_bits &= ~was->evidence;
		s->revised++;
	}
	s->rst_by_cause[r->cause]++;
	if (r->forged)
		s->forged++;
	for (unsigned b = 0; b < RST_EV_COUNT; b++)
		if (new_bits & (1u << b))
			s->evidence[b]++;
	if (would == RG_DROP)
		s->would_drop++;
	pc = pair_slot(s, p);
	if (pc == NULL) {
		s->pairs_lost++;
		return;
	}
	if (!was)
		pc->rsts++;
	if (r->forged)
		pc->forged++;
}

static int
pair_cmp(const void *x, const void *y)
{
	const struct pair_count *a = x, *b = y;

	return a->rsts < b->rsts ? 1 : a->rsts > b->rsts ? -1 : 0;
}

static void
print_summary(FILE *out, enum summary_format fmt, const char *path, uint64_t frames, uint64_t non_ip,
	      const struct engine_stats *st, struct summary *s)
{
	struct pair_count top[TOP_PAIRS];
	unsigned ntop = 0;
	char a[48], b[48];

	qsort(s->pairs, PAIR_SLOTS, sizeof(*s->pairs), pair_cmp);
	for (unsigned i = 0; i < PAIR_SLOTS && ntop < TOP_PAIRS && s->pairs[i].rsts; i++)
		top[ntop++] = s->pairs[i];

	if (fmt == SUMMARY_JSON) {
		char buf[16384];
		struct json j;
		size_t len;

		JSON_Init(&j, buf, sizeof(buf));
		JSON_Str(&j, "capture", path);
		JSON_U64(&j, "packets", frames);
		JSON_U64(&j, "not_ip", non_ip);
		JSON_U64(&j, "tcp", st->kind[PKT_TCP]);
		JSON_U64(&j, "not_tcp", st->kind[PKT_NOT_TCP]);
		JSON_U64(&j, "fragments", st->kind[PKT_FRAGMENT]);
		JSON_U64(&j, "truncated", st->kind[PKT_TRUNCATED]);
		JSON_U64(&j, "malformed", st->kind[PKT_MALFORMED]);
		JSON_ObjectOpen(&j, "flows");
		JSON_U64(&j, "total", st->flows_created);
		JSON_U64(&j, "midstream", st->flows_midstream);
		JSON_U64(&j, "evicted", st->flows_evicted);
		JSON_ObjectClose(&j);
		JSON_U64(&j, "rst", st->rst);
		JSON_ObjectOpen(&j, "rst_by_cause");
		for (int c = 0; c < RST_CAUSE_MAX; c++)
			if (s->rst_by_cause[c])
				JSON_U64(&j, RST_CauseName((enum rst_cause)c), s->rst_by_cause[c]);
		JSON_ObjectClose(&j);
		JSON_U64(&j, "forged", s->forged);
		JSON_U64(&j, "revised", s->revised);
		JSON_ObjectOpen(&j, "forged_evidence");
		for (unsigned e = 0; e < RST_EV_COUNT; e++)
			if (s->evidence[e])
				JSON_U64(&j, RST_EvidenceName(e), s->evidence[e]);
		JSON_ObjectClose(&j);
		JSON_U64(&j, "would_drop", s->would_drop);
		JSON_U64(&j, "evictions", s->rst_by_cause[RST_CAUSE_IDLE_EVICTION]);
		JSON_ArrayOpen(&j, "top_pairs");
		for (unsigned i = 0; i < ntop; i++) {
			PKT_FormatAddr(top[i].family, top[i].a, a, sizeof(a));
			PKT_FormatAddr(top[i].family, top[i].b, b, sizeof(b));
			JSON_ObjectOpen(&j, NULL);
			JSON_Str(&j, "a", a);
			JSON_Str(&j, "b", b);
			JSON_U64(&j, "rst", top[i].rsts);
			JSON_U64(&j, "forged", top[i].forged);
			JSON_ObjectClose(&j);
		}
		JSON_ArrayClose(&j);
		len = JSON_Finish(&j);
		if (len > 0)
			fwrite(buf, 1, len, out);
		return;
	}
	fprintf(out, "capture %s\n", path);
	fprintf(out, "  packets %" PRIu64 ": tcp %" PRIu64 ", not ip %" PRIu64 ", not tcp %" PRIu64
		", fragments %" PRIu64 ", truncated %" PRIu64 ", malformed %" PRIu64 "\n",
		frames, st->kind[PKT_TCP], non_ip, st->kind[PKT_NOT_TCP], st->kind[PKT_FRAGMENT],
		st->kind[PKT_TRUNCATED], st->kind[PKT_MALFORMED]);
	fprintf(out, "  flows %" PRIu64 " (picked up mid-stream %" PRIu64 ", evicted %" PRIu64 ")\n",
		st->flows_created, st->flows_midstream, st->flows_evicted);
	fprintf(out, "  rst %" PRIu64 ", by cause:\n", st->rst);
	for (int c = 0; c < RST_CAUSE_MAX; c++)
		if (s->rst_by_cause[c])
			fprintf(out, "    %-18s %" PRIu64 "\n", RST_CauseName((enum rst_cause)c), s->rst_by_cause[c]);
	fprintf(out, "  forged %" PRIu64 " (revised late %" PRIu64 ", would drop %" PRIu64 "), evidence:", s->forged,
		s->revised, s->would_drop);
	for (unsigned e = 0; e < RST_EV_COUNT; e++)
		if (s->evidence[e])
			fprintf(out, " %s=%" PRIu64, RST_EvidenceName(e), s->evidence[e]);
	fprintf(out, "\n  evictions %" PRIu64 "\n", s->rst_by_cause[RST_CAUSE_IDLE_EVICTION]);
	if (ntop)
		fprintf(out, "  top host pairs by rst:\n");
	for (unsigned i = 0; i < ntop; i++) {
		PKT_FormatAddr(top[i].family, top[i].a, a, sizeof(a));
		PKT_FormatAddr(top[i].family, top[i].b, b, sizeof(b));
		fprintf(out, "    %s <-> %s: %" PRIu64 " rst (%" PRIu64 " forged)\n", a, b, top[i].rsts, top[i].forged);
	}
}

/* ---------------------------------------------------------------------------------------------
 * Input. Classic pcap goes to libpcap. pcapng comes here: libpcap (1.10) refuses a file whose
 * interfaces differ in link type or snap length ("an interface has a type N different from the
 * type of the first interface"), which is what a capture of several interfaces of a gateway is
 * (dumpcap -i eth0 -i nflog:5, tcpdump -i any next to ppp0), so the blocks are read here, each
 * packet with its own interface's link type. Every length is checked before it is used; a block
 * is at most NG_MAX_BLOCK bytes and a section at most NG_MAX_IFS interfaces. */

#define NG_SHB 0x0A0D0D0Au
#define NG_IDB 1u
#define NG_PB 2u                  /* obsolete Packet Block */
#define NG_SPB 3u
#define NG_EPB 6u
#define NG_BOM 0x1A2B3C4Du
#define NG_MAX_BLOCK (16u << 20)
#define NG_MAX_IFS 4096u
#define NG_OPT_TSRESOL 9
#define NG_OPT_TSOFFSET 14

struct ng_if {
	int linktype;
	uint32_t snaplen;
	uint64_t per_sec;          /* timestamp units per second */
	int64_t offset_s;          /* if_tsoffset */
};

struct input {
	const char *path;
	FILE *f;
	pcap_t *pc;                /* classic pcap: libpcap's */
	/* pcapng */
	int swapped;               /* this section's byte order is not ours */
	struct ng_if *ifs;
	unsigned nifs;
	unsigned char *buf;
	uint64_t last_ns;
	char err[160];
	/* the classic file's first bytes, read to tell the formats apart, given back to libpcap */
	unsigned char head[4];
	size_t head_len, head_pos;
};

struct record {
	const unsigned char *data;
	uint32_t caplen, len;
	uint64_t ns;
	int linktype;
	unsigned ifid;
	int swapped;
};

static uint16_t
ng16(const struct input *in, const unsigned char *p)
{
	uint16_t v;

	memcpy(&v, p, 2);
	return in->swapped ? (uint16_t)((v >> 8) | (v << 8)) : v;
}

static uint32_t
ng32(const struct input *in, const unsigned char *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return in->swapped ? __builtin_bswap32(v) : v;
}

static uint64_t
ng64(const struct input *in, const unsigned char *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return in->swapped ? __builtin_bswap64(v) : v;
}

static uint64_t
ng_ns(const struct ng_if *ifc, uint64_t ts)
{
	unsigned __int128 ns = (unsigned __int128)ts * 1000000000u / ifc->per_sec;
	__int128 r = (__int128)ns + (__int128)ifc->offset_s * 1000000000;

	if (r < 0)
		return 0;
	return r > (__int128)UINT64_MAX ? UINT64_MAX : (uint64_t)r;
}

/* Read exactly n bytes (first those read to recognise the format); returns n, or how many there
 * were before the end (a read error sets err). */
static size_t
ng_read(struct input *in, void *p, size_t n)
{
	unsigned char *q = p;
	size_t got = 0;

	while (got < n && in->head_pos < in->head_len)
		q[got++] = in->head[in->head_pos++];
	if (got < n)
		got += fread(q + got, 1, n - got, in->f);
	if (got < n && ferror(in->f))
		snprintf(in->err, sizeof(in->err), "read error: %s", strerror(errno));
	return got;
}

/* An Interface Description Block's body (after type and length, before the trailing length). */
static int
ng_idb(struct input *in, const unsigned char *b, uint32_t n)
{
	struct ng_if ifc = { 0 };
	uint32_t off = 8;

	if (n < 8) {
		snprintf(in->err, sizeof(in->err), "interface description block too short (%u bytes)", n + 12);
		return -1;
	}
	if (in->nifs >= NG_MAX_IFS) {
		snprintf(in->err, sizeof(in->err), "more than %u interfaces in a section", NG_MAX_IFS);
		return -1;
	}
	ifc.linktype = ng16(in, b);
	ifc.snaplen = ng32(in, b + 4);
	ifc.per_sec = 1000000;
	while (n - off >= 4) {
		uint16_t code = ng16(in, b + off), len = ng16(in, b + off + 2);
		uint32_t step = ((uint32_t)len + 3u) & ~3u;

		if (code == 0)
			break;
		if (n - off - 4 < step) {
			snprintf(in->err, sizeof(in->err), "interface %u: option %u runs past its block", in->nifs, code);
			return -1;
		}
		if (code == NG_OPT_TSRESOL && len == 1) {
			unsigned v = b[off + 4] & 0x7f;

			/* 10^-v or 2^-v seconds: per_sec must fit 64 bits */
			if ((b[off + 4] & 0x80) ? v > 63 : v > 19) {
				snprintf(in->err, sizeof(in->err), "interface %u: if_tsresol 0x%02x not supported", in->nifs, b[off + 4]);
				return -1;
			}
			ifc.per_sec = 1;
			for (unsigned i = 0; i < v; i++)
				ifc.per_sec *= (b[off + 4] & 0x80) ? 2 : 10;
		} else if (code == NG_OPT_TSOFFSET && len == 8) {
			ifc.offset_s = (int64_t)ng64(in, b + off + 4);
			if (ifc.offset_s > INT64_MAX / 2000000000 || ifc.offset_s < -(INT64_MAX / 2000000000))
				ifc.offset_s = 0;
		}
		off += 4 + step;
	}
	in->ifs[in->nifs++] = ifc;
	return 0;
}

/* The next packet of a pcapng file: 1 and *r, 0 at the end, -1 with in->err. */
static int
ng_next(struct input *in, struct record *r)
{
	for (;;) {
		unsigned char h[12];
		uint32_t type, total, n, trail;
		size_t got;
		unsigned char *b;

		got = ng_read(in, h, 8);
		if (got == 0 && !in->err[0])
			return 0;
		if (got < 8) {
			if (!in->err[0])
				snprintf(in->err, sizeof(in->err), "truncated: the file ends inside a block header");
			return -1;
		}
		memcpy(&type, h, 4);
		if (type == NG_SHB) {
			uint32_t bom;

			if (ng_read(in, h + 8, 4) < 4) {
				if (!in->err[0])
					snprintf(in->err, sizeof(in->err), "truncated: the file ends inside a section header");
				return -1;
			}
			memcpy(&bom, h + 8, 4);
			if (bom == NG_BOM)
				in->swapped = 0;
			else if (bom == __builtin_bswap32(NG_BOM))
				in->swapped = 1;
			else {
				snprintf(in->err, sizeof(in->err), "section header with a bad byte-order magic 0x%08x", bom);
				return -1;
			}
		} else {
			type = ng32(in, h);
		}
		total = ng32(in, h + 4);
		if (total < 12 || total % 4 || total > NG_MAX_BLOCK || (type == NG_SHB && total < 28)) {
			snprintf(in->err, sizeof(in->err), "block of type 0x%x with an impossible length %u", type, total);
			return -1;
		}
		n = total - 12;          /* the body */
		b = in->buf;
		if (type == NG_SHB) {
			memcpy(b, h + 8, 4);
			got = 4 + ng_read(in, b + 4, n + 4 - 4);
		} else {
			got = ng_read(in, b, n + 4);
		}
		if (got < n + 4) {
			if (!in->err[0])
				snprintf(in->err, sizeof(in->err), "truncated: the file ends inside a block of %u bytes", total);
			return -1;
		}
		trail = ng32(in, b + n);
		if (trail != total) {
			snprintf(in->err, sizeof(in->err), "block of type 0x%x: length %u at its start, %u at its end", type, total, trail);
			return -1;
		}
		switch (type) {
		case NG_SHB:
			if (ng16(in, b + 4) != 1) {
				snprintf(in->err, sizeof(in->err), "pcapng version %u.%u not supported", ng16(in, b + 4), ng16(in, b + 6));
				return -1;
			}
			in->nifs = 0;    /* interfaces are numbered per section */
			break;
		case NG_IDB:
			if (ng_idb(in, b, n) < 0)
				return -1;
			break;
		case NG_EPB:
		case NG_PB: {
			uint32_t ifid, cap;

			if (n < 20) {
				snprintf(in->err, sizeof(in->err), "packet block too short (%u bytes)", total);
				return -1;
			}
			ifid = type == NG_EPB ? ng32(in, b) : ng16(in, b);
			cap = ng32(in, b + 12);
			if (ifid >= in->nifs) {
				snprintf(in->err, sizeof(in->err), "packet of interface %u, which the section has not described", ifid);
				return -1;
			}
			if (cap > n - 20) {
				snprintf(in->err, sizeof(in->err), "captured length %u runs past its block", cap);
				return -1;
			}
			r->data = b + 20;
			r->caplen = cap;
			r->len = ng32(in, b + 16);
			r->ifid = ifid;
			r->ns = ng_ns(&in->ifs[ifid], ((uint64_t)ng32(in, b + 4) << 32) | ng32(in, b + 8));
			in->last_ns = r->ns;
			r->linktype = in->ifs[ifid].linktype;
			r->swapped = in->swapped;
			return 1;
		}
		case NG_SPB:
			/* No interface id (the first) and no timestamp (the previous packet's). */
			if (n < 4 || in->nifs == 0) {
				snprintf(in->err, sizeof(in->err), n < 4 ? "simple packet block too short" :
					 "simple packet block before any interface");
				return -1;
			}
			r->data = b + 4;
			r->len = ng32(in, b);
			r->caplen = r->len < n - 4 ? r->len : n - 4;
			if (in->ifs[0].snaplen && r->caplen > in->ifs[0].snaplen)
				r->caplen = in->ifs[0].snaplen;
			r->ifid = 0;
			r->ns = in->last_ns;
			r->linktype = in->ifs[0].linktype;
			r->swapped = in->swapped;
			return 1;
		default:
			break;           /* statistics, name resolution, custom blocks: not needed */
		}
	}
}

/* A stream that gives back the bytes read to recognise the format, then the file's. */
static ssize_t
head_read(void *cookie, char *buf, size_t size)
{
	struct input *in = cookie;
	size_t n = 0;

	while (n < size && in->head_pos < in->head_len)
		buf[n++] = (char)in->head[in->head_pos++];
	if (n < size)
		n += fread(buf + n, 1, size - n, in->f);
	if (n == 0 && ferror(in->f))
		return -1;
	return (ssize_t)n;
}

static int
head_close(void *cookie)
{
	struct input *in = cookie;

	if (in->f && in->f != stdin)
		fclose(in->f);
	in->f = NULL;
	return 0;
}

static void
input_close(struct input *in)
{
	if (in->pc)
		pcap_close(in->pc);     /* closes the head stream, which closes the file */
	else if (in->f && in->f != stdin)
		fclose(in->f);
	in->pc = NULL;
	in->f = NULL;
	free(in->ifs);
	free(in->buf);
	in->ifs = NULL;
	in->buf = NULL;
}

/* Open path ("-": standard input) as pcap or pcapng; 0, or -1 with the error logged. */
static int
input_open(struct input *in, const char *path)
{
	char errbuf[PCAP_ERRBUF_SIZE] = "";
	static const cookie_io_functions_t head_io = { .read = head_read, .close = head_close };
	uint32_t magic = 0;
	FILE *hs;

	memset(in, 0, sizeof(*in));
	in->path = path;
	in->f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	if (in->f == NULL) {
		log_warnx("%s: %s", path, strerror(errno));
		return -1;
	}
	in->head_len = fread(in->head, 1, sizeof(in->head), in->f);
	if (in->head_len == 4)
		memcpy(&magic, in->head, 4);
	if (magic == NG_SHB) {
		in->ifs = calloc(NG_MAX_IFS, sizeof(*in->ifs));
		in->buf = malloc(NG_MAX_BLOCK);
		if (in->ifs == NULL || in->buf == NULL) {
			log_warnx("out of memory");
			input_close(in);
			return -1;
		}
		return 0;        /* ng_read starts with the magic already read */
	}
	hs = fopencookie(in, "r", head_io);
	if (hs == NULL) {
		log_warnx("%s: %s", path, strerror(errno));
		input_close(in);
		return -1;
	}
	in->pc = pcap_fopen_offline_with_tstamp_precision(hs, PCAP_TSTAMP_PRECISION_NANO, errbuf);
	if (in->pc == NULL) {
		log_warnx("%s: %s", path, errbuf);
		fclose(hs);
		input_close(in);
		return -1;
	}
	return 0;
}

/* The next packet: 1, 0 at the end, -1 on an error (logged, naming the packet). */
static int
input_next(struct input *in, struct record *r, uint64_t number)
{
	int rc;

	if (in->pc) {
		struct pcap_pkthdr *hdr;

		rc = pcap_next_ex(in->pc, &hdr, &r->data);
		if (rc == 1) {
			r->caplen = hdr->caplen;
			r->len = hdr->len;
			/* nano precision: tv_usec holds nanoseconds */
			r->ns = (uint64_t)hdr->ts.tv_sec * 1000000000ULL + (uint64_t)hdr->ts.tv_usec;
			r->linktype = pcap_datalink(in->pc);
			r->ifid = 0;
			r->swapped = 0;   /* libpcap has already put NFLOG's TLV headers in our order */
			return 1;
		}
		if (rc == PCAP_ERROR_BREAK)
			return 0;
		log_warnx("%s: packet %" PRIu64 ": %s", in->path, number, pcap_geterr(in->pc));
		return -1;
	}
	rc = ng_next(in, r);
	if (rc < 0)
		log_warnx("%s: packet %" PRIu64 ": %s", in->path, number, in->err);
	return rc;
}

static void
log_unsupported(const char *path, uint64_t number, const char *where, int linktype)
{
	const char *name = pcap_datalink_val_to_name(linktype);
	char user[16];

	/* libpcap has no names for the private-use link types */
	if (name == NULL && linktype >= 147 && linktype <= 162) {
		snprintf(user, sizeof(user), "USER%d", linktype - 147);
		name = user;
	}
	log_warnx("%s: packet %" PRIu64 ": %sunsupported link type %d (%s)", path, number, where, linktype,
		  name ? name : "unknown");
}

int
OFF_Run(const struct config *cfg, const char *path, enum summary_format fmt)
{
	struct config ocfg;
	struct summary sum = { 0 };
	struct engine *eng = NULL;
	struct engine_stats st = { 0 };
	struct event_sink *sink;
	struct input in;
	struct record rec;
	uint64_t frames = 0, non_ip = 0, nflog_untimed = 0;
	uint8_t seed[16] = { 0 };
	int rc = 0, r;

	/* A capture is history: never send probes about its flows onto the network. */
	CFG_Copy(&ocfg, cfg);
	ocfg.keepalive = 0;
	cfg = &ocfg;

	if (input_open(&in, path) < 0) {
		CFG_Free(&ocfg);
		return 1;
	}
	/* A classic pcap has one link type: refuse it before reading. */
	if (in.pc && !OFF_LinkTypeSupported(pcap_datalink(in.pc))) {
		log_unsupported(path, 1, "", pcap_datalink(in.pc));
		input_close(&in);
		CFG_Free(&ocfg);
		return 1;
	}
	sum.pairs = calloc(PAIR_SLOTS, sizeof(*sum.pairs));
	sink = EV_CreateSink(1u << 20);
	if (sum.pairs == NULL || sink == NULL) {
		log_warnx("out of memory");
		input_close(&in);
		free(sum.pairs);
		CFG_Free(&ocfg);
		return 1;
	}
	EV_SetSynchronous(1);
	/* A fixed hash key: flow ids and results are the same from run to run. */
	memcpy(sum.key, "rstguard-offline", 16);
	memcpy(seed, "rstguard-capture", 16);

	while ((r = input_next(&in, &rec, frames + 1)) == 1) {
		struct engine_time t;
		struct off_ip ip;

		if (!OFF_LinkTypeSupported(rec.linktype)) {
			char where[32];

			/* pcapng: an interface of another link type (found at its first packet) */
			snprintf(where, sizeof(where), "interface %u: ", rec.ifid);
			log_unsupported(path, frames + 1, where, rec.linktype);
			rc = 1;
			break;
		}
		frames++;
		if (OFF_IpFrame(rec.linktype, rec.data, rec.caplen, rec.len, rec.swapped, &ip) < 0) {
			non_ip++;
			ip.data = NULL;
		}
		if (rec.linktype == DLT_NFLOG && ip.data && ip.ts_ns == 0)
			nflog_untimed++;
		/* The packet's own time when the link layer has it (NFLOG), else the record's (the
		 * engine ignores a step back). */
		t.real_ns = ip.data && ip.ts_ns ? ip.ts_ns : rec.ns;
		t.mono_ns = t.real_ns;
		if (eng == NULL) {
			eng = ENG_Create(cfg, cfg->flows_max, sink, seed, &t);
			if (eng == NULL) {
				log_warnx("cannot allocate the flow table (flows.max %u)", cfg->flows_max);
				rc = 1;
				break;
			}
			ENG_SetRstHook(eng, count_rst, &sum);
		}
		ENG_SetTime(eng, &t);
		/* Judgements whose wait ended before this packet are made before it, as inline. */
		ENG_Tick(eng);
		/* The capture's snap length may have cut the packet: the engine is told both. */
		if (ip.data)
			ENG_Packet(eng, ip.data, ip.caplen, ip.wirelen, ENG_NO_ID);
	}
	if (r < 0)
		rc = 1;
	if (nflog_untimed)
		log_warnx("%s: %" PRIu64 " NFLOG packets without NFULA_TIMESTAMP: their times are when the "
			  "capturing program read them (the kernel delivers NFLOG in batches, up to a second "
			  "late), so waits and round trips are distorted", path, nflog_untimed);
	if (eng) {
		ENG_Shutdown(eng);
		ENG_GetStats(eng, &st);
	}
	EV_Flush();
	print_summary(stderr, fmt, path, frames, non_ip, &st, &sum);
	ENG_Destroy(eng);
	input_close(&in);
	free(sum.pairs);
	CFG_Free(&ocfg);
	return rc;
}
