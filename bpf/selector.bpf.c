/* rstguard's fast-path selector: a socket-filter program run by the iptables bpf match
 * (-m bpf --object-pinned) in front of the NFQUEUE target. It keeps the per-direction baselines
 * of every TCP flow (seq, ack, window, TTL, IP ID, TSval, flags, time, packets) in an LRU hash
 * and matches (sends to the queue) only what the daemon must see: SYN, FIN and RST and every
 * packet of a flow once either side closed, the first packets of a direction and the first after
 * a silence, what it cannot
 * parse (IP fragments, IPv6 extension headers, odd headers), and every packet of a flow under
 * watch until the watch expires. The program sees the packet from its network header. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "fastpath_abi.h"

#define IPPROTO_TCP_ 6
#define TH_FIN 0x01
#define TH_SYN 0x02
#define TH_RST 0x04
#define TH_ACK 0x10

/* Sizes are set by the daemon before loading (flows.max). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct fp_key);
	__type(value, struct fp_dir);
} flows SEC(".maps");

/* Directions under watch: the value is the CLOCK_MONOTONIC time (ns) the watch ends. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct fp_key);
	__type(value, __u64);
} watch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct fp_counters);
} counters SEC(".maps");

struct tcp20 {
	__u16 sport, dport;
	__u32 seq, ack;
	__u8 off, flags;
	__u16 win, csum, urg;
};

static __always_inline int
queue_it(struct fp_counters *c)
{
	if (c)
		c->queued++;
	return 1;
}

/* A RST or FIN ends the connection for both directions: from here on every packet of either
 * goes to the daemon (the closing handshake's ACKs decide TIME_WAIT). */
static __always_inline void
mark_closing(struct fp_dir *d, const struct fp_key *k)
{
	struct fp_key r = {};
	struct fp_dir *rd;

	d->has |= FPD_CLOSING;
	r.family = k->family;
	__builtin_memcpy(r.src, k->dst, 16);
	__builtin_memcpy(r.dst, k->src, 16);
	r.sport = k->dport;
	r.dport = k->sport;
	rd = bpf_map_lookup_elem(&flows, &r);
	if (rd)
		rd->has |= FPD_CLOSING;
}

SEC("socket")
int
selector(struct __sk_buff *skb)
{
	__u32 zero = 0;
	struct fp_counters *c = bpf_map_lookup_elem(&counters, &zero);
	struct fp_key k = {};
	struct tcp20 th;
	struct fp_dir *d;
	__u32 l3, plen, iplen, seq_end;
	struct {
		__u8 k0, k1, k2, k3;
		__u32 ts;           /* TSval when the options start NOP NOP TS */
	} opts;
	__u8 ttl;
	__u16 ipid = 0;
	int df = 0;
	__u64 now, *until;
	int silent;

	if (c)
		c->seen++;
	{
		__u8 v;

		if (bpf_skb_load_bytes(skb, 0, &v, 1) < 0)
			goto unparsed;
		if ((v >> 4) == 4) {
			struct {
				__u8 vhl, tos;
				__u16 len, id, frag;
				__u8 ttl, proto;
				__u16 sum;
				__u32 src, dst;
			} ip;

			if (bpf_skb_load_bytes(skb, 0, &ip, sizeof(ip)) < 0)
				goto unparsed;
			if (ip.proto != IPPROTO_TCP_ || (bpf_ntohs(ip.frag) & 0x3fff))
				goto unparsed;   /* a fragment, or not TCP: the daemon decides */
			l3 = (ip.vhl & 0x0f) * 4u;
			if (l3 < 20)
				goto unparsed;
			iplen = bpf_ntohs(ip.len);
			ttl = ip.ttl;
			ipid = bpf_ntohs(ip.id);
			df = (bpf_ntohs(ip.frag) & 0x4000) != 0;
			k.family = 4;
			k.src[0] = ip.src;
			k.dst[0] = ip.dst;
		} else if ((v >> 4) == 6) {
			struct {
				__u32 vtcfl;
				__u16 plen;
				__u8 nxt, hlim;
				__u32 src[4], dst[4];
			} ip6;

			if (bpf_skb_load_bytes(skb, 0, &ip6, sizeof(ip6)) < 0)
				goto unparsed;
			if (ip6.nxt != IPPROTO_TCP_)
				goto unparsed;   /* extension headers, fragments */
			l3 = 40;
			iplen = ip6.plen ? 40u + bpf_ntohs(ip6.plen) : 0;
			ttl = ip6.hlim;
			k.family = 6;
			__builtin_memcpy(k.src, ip6.src, 16);
			__builtin_memcpy(k.dst, ip6.dst, 16);
		} else {
			goto unparsed;
		}
	}
	if (iplen == 0 || iplen > skb->len)
		iplen = skb->len;   /* a big GSO packet's length field can be 0 */
	if (bpf_skb_load_bytes(skb, l3, &th, sizeof(th)) < 0)
		goto unparsed;
	{
		__u32 doff = (th.off >> 4) * 4u;

		if (doff < 20 || l3 + doff > iplen)
			goto unparsed;
		plen = iplen - l3 - doff;
		/* TSval from the usual layouts (NOP NOP TS, or TS first); others leave it unknown. */
		__builtin_memset(&opts, 0, sizeof(opts));
		if (doff >= 32)
			bpf_skb_load_bytes(skb, l3 + 20, &opts, sizeof(opts));
	}
	k.sport = th.sport;
	k.dport = th.dport;
	now = bpf_ktime_get_ns();
	seq_end = bpf_ntohl(th.seq) + plen + ((th.flags & (TH_SYN | TH_FIN)) ? 1 : 0);

	d = bpf_map_lookup_elem(&flows, &k);
	if (d == NULL) {
		struct fp_dir nd = {};

		nd.pkts = 1;
		nd.next_seq = seq_end;
		nd.last_ack = bpf_ntohl(th.ack);
		nd.win = bpf_ntohs(th.win);
		nd.ipid = ipid;
		nd.ttl = ttl;
		nd.tcpflags = th.flags;
		nd.has = (th.flags & TH_ACK ? FPD_ACK : 0) | (df ? FPD_DF : 0) |
			 (th.flags & (TH_FIN | TH_RST) ? FPD_CLOSING : 0);
		nd.last_ns = now;
		nd.prev_ns = now;
		nd.prev_ipid = ipid;
		nd.data_ns = plen ? now : 0;
		nd.bytes = iplen;
		bpf_map_update_elem(&flows, &k, &nd, BPF_ANY);
		if (c)
			c->unknown++;
		return queue_it(c);
	}
	if (th.flags & TH_RST) {
		/* Leave the baselines as they were before it; every later packet goes to the daemon. */
		mark_closing(d, &k);
		return queue_it(c);
	}
	silent = now - d->last_ns >= FP_SILENCE_NS;
	d->pkts++;
	d->bytes += iplen;
	d->prev_ns = d->last_ns;
	d->last_ns = now;
	d->prev_ipid = d->ipid;
	if (plen)
		d->data_ns = now;
	if ((__s32)(seq_end - d->next_seq) > 0 || (th.flags & TH_SYN))
		d->next_seq = seq_end;
	if (th.flags & TH_ACK) {
		d->last_ack = bpf_ntohl(th.ack);
		d->has |= FPD_ACK;
	}
	d->win = bpf_ntohs(th.win);
	d->ipid = ipid;
	d->ttl = ttl;
	d->tcpflags = th.flags;
	if (df)
		d->has |= FPD_DF;
	else
		d->has &= ~FPD_DF;
	if (opts.k0 == 1 && opts.k1 == 1 && opts.k2 == 8 && opts.k3 == 10) {
		d->tsval = bpf_ntohl(opts.ts);
		d->has |= FPD_TS;
	} else if (opts.k0 == 8 && opts.k1 == 10) {
		__u32 ts;

		if (bpf_skb_load_bytes(skb, l3 + 22, &ts, sizeof(ts)) == 0) {
			d->tsval = bpf_ntohl(ts);
			d->has |= FPD_TS;
		}
	}
	if (th.flags & (TH_SYN | TH_FIN)) {
		if (th.flags & TH_FIN) {
			/* The closing handshake's ACKs (from either side) decide TIME_WAIT. */
			mark_closing(d, &k);
		} else {
			d->has &= ~FPD_CLOSING;   /* a new connection on the same ports */
			d->pkts = 1;
		}
		return queue_it(c);
	}
	if (d->pkts <= FP_FIRST_PKTS || (d->has & FPD_CLOSING) || silent)
		return queue_it(c);
	until = bpf_map_lookup_elem(&watch, &k);
	if (until) {
		if (now < *until) {
			if (c)
				c->watched++;
			return queue_it(c);
		}
		bpf_map_delete_elem(&watch, &k);
	}
	return 0;

unparsed:
	if (c)
		c->unparsed++;
	return queue_it(c);
}

char LICENSE[] SEC("license") = "GPL";
