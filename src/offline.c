/* Offline analysis. The same engine as inline: one engine, the capture's timestamps as its clock
 * (so timers and judgements behave as they would have, and a second run gives the same events),
 * no packet is ever held (there is nothing to hold), verdicts are reported as what they would
 * have been. */
#include <arpa/inet.h>
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

#define ETH_IPV4 0x0800
#define ETH_IPV6 0x86dd
#define ETH_8021Q 0x8100
#define ETH_8021AD 0x88a8
#define ETH_QINQ 0x9100
#define MAX_VLAN_TAGS 4

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

/* Is the link type one ip_offset understands? */
static int
link_type_supported(int linktype)
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

/* Find the IP header in a link-layer frame: returns its offset, or -1 for frames that carry no
 * IPv4/IPv6 packet. Handles Ethernet with 802.1Q/802.1ad tags, Linux cooked captures (SLL,
 * SLL2), raw IP and the BSD loopback header. */
static int
ip_offset(int linktype, const unsigned char *f, unsigned caplen)
{
	unsigned off;
	uint16_t type;

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
		return ethertype_ip(type) ? (int)off : -1;
	case DLT_LINUX_SLL:
		/* 16 bytes: packet type, ARPHRD, address length, 8 address bytes, protocol. */
		if (caplen < 16)
			return -1;
		return ethertype_ip(get16(f + 14)) ? 16 : -1;
	case DLT_LINUX_SLL2:
		/* 20 bytes: protocol first, then reserved, ifindex, ARPHRD, type, address. */
		if (caplen < 20)
			return -1;
		return ethertype_ip(get16(f)) ? 20 : -1;
	case DLT_NULL:
	case DLT_LOOP:
		/* A 4-byte address family, in host order (NULL) or network order (LOOP). */
		if (caplen < 5)
			return -1;
		return ((f[4] >> 4) == 4 || (f[4] >> 4) == 6) ? 4 : -1;
	default:
		/* Raw IP: the version nibble tells IPv4 from IPv6. */
		if (caplen < 1)
			return -1;
		return ((f[0] >> 4) == 4 || (f[0] >> 4) == 6) ? 0 : -1;
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

int
OFF_Run(const struct config *cfg, const char *path, enum summary_format fmt)
{
	char errbuf[PCAP_ERRBUF_SIZE] = "";
	struct config ocfg;
	struct summary sum = { 0 };
	struct engine *eng = NULL;
	struct engine_stats st = { 0 };
	struct event_sink *sink;
	struct pcap_pkthdr *hdr;
	const unsigned char *data;
	uint64_t frames = 0, non_ip = 0;
	uint8_t seed[16] = { 0 };
	pcap_t *pc;
	int linktype, rc = 0, r;

	/* A capture is history: never send probes about its flows onto the network. */
	CFG_Copy(&ocfg, cfg);
	ocfg.keepalive = 0;
	cfg = &ocfg;

	pc = pcap_open_offline_with_tstamp_precision(path, PCAP_TSTAMP_PRECISION_NANO, errbuf);
	if (pc == NULL) {
		log_warnx("%s: %s", path, errbuf);
		CFG_Free(&ocfg);
		return 1;
	}
	linktype = pcap_datalink(pc);
	if (!link_type_supported(linktype)) {
		log_warnx("%s: packet 1: unsupported link type %d (%s)", path, linktype,
			  pcap_datalink_val_to_name(linktype) ? pcap_datalink_val_to_name(linktype) : "unknown");
		pcap_close(pc);
		CFG_Free(&ocfg);
		return 1;
	}
	sum.pairs = calloc(PAIR_SLOTS, sizeof(*sum.pairs));
	sink = EV_CreateSink(1u << 20);
	if (sum.pairs == NULL || sink == NULL) {
		log_warnx("out of memory");
		pcap_close(pc);
		free(sum.pairs);
		CFG_Free(&ocfg);
		return 1;
	}
	EV_SetSynchronous(1);
	/* A fixed hash key: flow ids and results are the same from run to run. */
	memcpy(sum.key, "rstguard-offline", 16);
	memcpy(seed, "rstguard-capture", 16);

	while ((r = pcap_next_ex(pc, &hdr, &data)) == 1) {
		struct engine_time t;
		int off;

		frames++;
		t.real_ns = (uint64_t)hdr->ts.tv_sec * 1000000000ULL + (uint64_t)hdr->ts.tv_usec;  /* nano precision */
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
		off = ip_offset(linktype, data, hdr->caplen);
		if (off < 0) {
			non_ip++;
		} else {
			/* The capture's snap length may have cut the packet: the engine is told both. */
			uint32_t wire = hdr->len > (unsigned)off ? hdr->len - (unsigned)off : 0;

			ENG_Packet(eng, data + off, hdr->caplen - (unsigned)off, wire, ENG_NO_ID);
		}
	}
	if (r == PCAP_ERROR) {
		log_warnx("%s: packet %" PRIu64 ": %s", path, frames + 1, pcap_geterr(pc));
		rc = 1;
	}
	if (eng) {
		ENG_Shutdown(eng);
		ENG_GetStats(eng, &st);
	}
	EV_Flush();
	print_summary(stderr, fmt, path, frames, non_ip, &st, &sum);
	ENG_Destroy(eng);
	pcap_close(pc);
	free(sum.pairs);
	CFG_Free(&ocfg);
	return rc;
}
