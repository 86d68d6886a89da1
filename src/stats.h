/* The daemon's counters in one snapshot: what the packet threads' engines and queues count, the
 * event output's totals, and the kernel's own counters for each queue. One collection feeds
 * every way of showing them (the SIGUSR1 log, the control socket, the metrics), so they always
 * agree. */
#ifndef RSTGUARD_STATS_H
#define RSTGUARD_STATS_H

#include <stdint.h>

#include "engine.h"
#include "event.h"
#include "fastpath.h"
#include "nfq.h"

/* The most queues a daemon runs (queue.count's upper bound). */
#define STATS_QUEUES_MAX 64

/* One line of /proc/net/netfilter/nfnetlink_queue: the kernel's view of a bound queue. */
struct stats_kqueue {
	int present;              /* the kernel listed this queue */
	uint32_t portid;          /* netlink port of the process bound to it */
	uint64_t waiting;         /* packets queued, not yet given a verdict */
	uint64_t queue_dropped;   /* dropped (or passed, fail-open) because the queue was full */
	uint64_t user_dropped;    /* dropped because the socket buffer was full (ENOBUFS for us) */
	uint64_t id_sequence;     /* last packet id handed out */
};

/* What one packet thread exposes: its engine, its open queue (NULL once closed) or the counters
 * saved when the queue was closed. */
struct stats_worker {
	const struct engine *eng;
	const struct nfq *q;
	const struct nfq_stats *saved;
};

struct rg_stats {
	uint64_t real_ns;          /* when collected (wall clock) */
	uint64_t start_real_ns;    /* when the daemon started */
	uint16_t queue_first;
	unsigned nqueues;
	struct engine_stats eng;   /* summed over the packet threads */
	struct event_stats ev;
	struct nfq_stats q[STATS_QUEUES_MAX];
	struct stats_kqueue kq[STATS_QUEUES_MAX];
	int kq_ok;                 /* the kernel's table could be read */
	int fp_on;                 /* the kernel fast path runs (--fast-path) */
	struct fastpath_stats fp;  /* ... and its selector's counters (zero when off) */
};

/* Collect a snapshot from n packet threads serving queues queue_first.. (the kernel's counters
 * are read from /proc of the caller's network namespace). Counters are read without stopping
 * the threads: each is exact, the set is consistent to within a batch. */
void STATS_Collect(struct rg_stats *s, const struct stats_worker *w, unsigned n, uint16_t queue_first,
		   uint64_t start_real_ns);

/* Parse the kernel's queue table (the text of /proc/net/netfilter/nfnetlink_queue, len bytes)
 * for queues first..first+n-1 into out[0..n-1]. Lines that do not parse are skipped. Returns
 * the number of our queues found. Exposed for tests. */
unsigned STATS_ParseKernelQueues(const char *text, size_t len, uint16_t first, unsigned n,
				 struct stats_kqueue *out);

#endif
