/* The kernel fast path (--fast-path): rstguard's eBPF selector program (bpf/selector.bpf.c),
 * loaded and pinned with its maps, so that an iptables bpf match in front of the queue rule sends
 * the daemon only the packets it must see, while the kernel keeps every flow's per-direction
 * baselines. This module loads and pins it, puts flows under watch, reads a flow's baselines
 * back into its record and reads the program's counters. Without libbpf at build time it only
 * says it is unavailable. Thread-safe: map operations are system calls on shared descriptors. */
#ifndef RSTGUARD_FASTPATH_H
#define RSTGUARD_FASTPATH_H

#include <stdint.h>

struct flow;
struct alias;
struct fastpath;

/* The selector program's counters, summed over CPUs. */
struct fastpath_stats {
	uint64_t seen;             /* packets the program ran on */
	uint64_t queued;           /* sent to the queue */
	uint64_t watched;          /* of which: the flow was under watch */
	uint64_t unknown;          /* of which: the first packet of an unknown direction */
	uint64_t unparsed;         /* of which: fragments, IPv6 extension headers, odd headers */
};

/* 1 when this build has the fast path (clang and libbpf were found), 0 otherwise. */
int FP_Available(void);

/* Load the selector with room for max_flows flows (two map entries each) and pin the program
 * and its maps under pin_dir (created; a bpffs is mounted there when the directory is not on
 * one), replacing the pins of an earlier run. Returns NULL (logged) on failure. */
struct fastpath *FP_Open(const char *pin_dir, uint32_t max_flows);

/* Path of the pinned program, for the rule's -m bpf --object-pinned. */
const char *FP_ProgPin(const struct fastpath *fp);

/* Unpin, unmount what FP_Open mounted, close. A rule still using the program keeps it alive
 * until the rule goes. NULL is a no-op. */
void FP_Close(struct fastpath *fp);

/* Queue every packet of flow f, both directions, until CLOCK_MONOTONIC until_ns. Returns 0, or
 * -1 when the watch map is full. */
int FP_Watch(struct fastpath *fp, const struct flow *f, const struct alias *seen, uint64_t until_ns);

/* End a watch on f early (quiet when there is none). */
void FP_Unwatch(struct fastpath *fp, const struct flow *f, const struct alias *seen);

/* Bring f up to date with what the kernel saw of it and did not queue (sequence and
 * acknowledgement numbers, window, TTL, IP ID, TSval, packets, bytes, and last_seen_ms, counted
 * in milliseconds from base_ns, never later than now_ns, the engine's clock: packets that came
 * in since it was read must not make idle times negative). pkt_dir: the direction of the packet the daemon is about to
 * process (the kernel has already counted it unless it is a RST: is_rst), or -1 from a timer.
 * Cheap when the daemon saw every packet of the flow so far (no system call then). */
void FP_SyncFlow(struct fastpath *fp, struct flow *f, const struct alias *seen, int pkt_dir, int is_rst, uint64_t base_ns,
		 uint64_t now_ns);

/* Keep the kernel queueing every packet of f while the daemon needs to see them all (a RST
 * awaiting judgement, keepalive probes in flight, a resumption being watched): sets or renews a
 * watch that ends FP_WATCH_NS after now_ns. before: f->flags before the packet (0 from a timer,
 * which renews). */
void FP_Track(struct fastpath *fp, const struct flow *f, const struct alias *seen, uint8_t before, uint64_t now_ns);

/* How long a watch lasts unless renewed (by a packet of the flow or its timer). */
#define FP_WATCH_NS (120ULL * 1000000000ULL)

/* The program's counters. */
void FP_GetStats(struct fastpath *fp, struct fastpath_stats *st);

#endif
