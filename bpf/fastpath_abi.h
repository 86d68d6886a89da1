/* What the selector program (bpf/selector.bpf.c) and the daemon (src/fastpath.c) share: the maps'
 * keys and values. Fixed-size types only: this header is compiled for the BPF target and for the
 * host. */
#ifndef RSTGUARD_FASTPATH_ABI_H
#define RSTGUARD_FASTPATH_ABI_H

#ifdef __bpf__
#include <linux/types.h>
typedef __u8 fp_u8;
typedef __u16 fp_u16;
typedef __u32 fp_u32;
typedef __u64 fp_u64;
#else
#include <stdint.h>
typedef uint8_t fp_u8;
typedef uint16_t fp_u16;
typedef uint32_t fp_u32;
typedef uint64_t fp_u64;
#endif

/* Packets of an unknown flow direction queued before the kernel keeps its baselines alone: the
 * handshake's last ACK and the first data, from which the daemon learns RTT, TTL and IP ID
 * habits. */
#define FP_FIRST_PKTS 4

/* A direction's first packet after this much silence is queued: the daemon watches resumptions
 * after silence for middlebox evictions (it looks at gaps of a second or more). */
#define FP_SILENCE_NS 1000000000ULL

/* One direction of a flow: the sender's addresses and port first (network byte order; IPv4 in
 * src[0]/dst[0], the rest zero). */
struct fp_key {
	fp_u32 src[4];
	fp_u32 dst[4];
	fp_u16 sport, dport;
	fp_u8 family;              /* 4 or 6 */
	fp_u8 pad[3];
};

/* fp_dir.has */
#define FPD_ACK     0x01       /* last_ack is valid */
#define FPD_TS      0x02       /* tsval is valid */
#define FPD_DF      0x04       /* the last packet had DF (IPv4) */
#define FPD_CLOSING 0x08       /* a FIN or RST was seen in the flow: queue every packet */

/* What the kernel keeps of one direction (host byte order). A RST changes none of it (the
 * daemon judges a RST against what came before it); it marks the flow closing. */
struct fp_dir {
	fp_u64 last_ns;            /* bpf_ktime_get_ns() of the last packet (CLOCK_MONOTONIC) */
	fp_u64 prev_ns;            /* ... and of the one before it */
	fp_u64 data_ns;            /* ... of the last packet with payload (0: none yet) */
	fp_u64 bytes;              /* IP bytes */
	fp_u32 pkts;               /* packets (a GSO super-packet counts once) */
	fp_u32 next_seq;           /* highest seq + payload (+SYN/FIN) */
	fp_u32 last_ack;
	fp_u32 tsval;
	fp_u16 win;                /* raw window */
	fp_u16 ipid;
	fp_u8 ttl;                 /* TTL or hop limit of the last packet */
	fp_u8 tcpflags;            /* flags of the last packet */
	fp_u8 has;                 /* FPD_* */
	fp_u8 pad;
	fp_u16 prev_ipid;          /* IP ID of the packet before the last */
	fp_u16 pad2[3];
};

/* Counters, one array entry per CPU. */
struct fp_counters {
	fp_u64 seen;               /* packets the program ran on */
	fp_u64 queued;             /* matched (sent to the queue) */
	fp_u64 watched;            /* matched because the flow is under watch */
	fp_u64 unknown;            /* matched as the first packet of an unknown direction */
	fp_u64 unparsed;           /* matched because the program cannot parse it */
};

#endif
