/* Silent evictions by middleboxes. A flow that resumes after a long silence is watched for a
 * moment: an answer from the other side means the path kept its state; a RST, or the resuming
 * packet retransmitted into silence, means a middlebox forgot the flow. Each outcome is also a
 * sample of the path's idle timeout: the longest silence a path survived and the shortest that
 * got a flow evicted, per server network, bracket the real value. Bounded tables, touched only
 * when a flow resumes after a silence or when a RST comes. */
#ifndef RSTGUARD_EVICTION_H
#define RSTGUARD_EVICTION_H

#include <stdint.h>

struct evict_watch {
	uint32_t flow_idx;
	uint32_t flow_start_cs;   /* tells a recycled flow record apart */
	uint32_t gap_ms;          /* the silence before the resumption */
	uint32_t start_ms;        /* when the resumption passed */
	uint32_t seq;             /* the resuming packet's sequence number */
	uint32_t timeout_s;       /* the configured middlebox timeout for the flow (0: none) */
	uint8_t dir;              /* the side that resumed */
	uint8_t retrans;          /* retransmissions of the resuming packet seen since */
	uint8_t reported;         /* an eviction was reported for this resumption */
	uint8_t in_use;
};

/* What has been learnt of one server network's idle timeout. */
struct evict_net {
	uint8_t family;
	uint8_t in_use;
	uint8_t addr[16];         /* the /24 (IPv4) or /64 (IPv6) of the servers */
	uint32_t max_survived_ms; /* longest silence after which the path still worked */
	uint32_t min_evicted_ms;  /* shortest silence after which a flow was evicted (0: none yet) */
	uint32_t survived, evicted;
};

struct eviction {
	struct evict_watch *watch;
	uint32_t wcap, wused;
	struct evict_net *nets;
	uint32_t ncap;
	uint64_t watch_full;      /* resumptions not watched: table full */
};

/* Allocate the tables. Returns 0 or -1. */
int EVI_Init(struct eviction *ev, uint32_t watch_cap, uint32_t net_cap);
void EVI_Fini(struct eviction *ev);

/* Start watching a resumption; NULL when the table is full. */
struct evict_watch *EVI_Watch(struct eviction *ev, uint32_t flow_idx, uint32_t flow_start_cs);

/* The watch of a flow, or NULL. */
struct evict_watch *EVI_Find(struct eviction *ev, uint32_t flow_idx, uint32_t flow_start_cs);

/* Stop watching. */
void EVI_Release(struct eviction *ev, struct evict_watch *w);

/* Record an outcome for the server network of addr: silence gap_ms, evicted or survived.
 * Returns the network's entry (NULL if none could be kept). */
const struct evict_net *EVI_Learn(struct eviction *ev, int family, const uint8_t *server, uint32_t gap_ms,
				  int evicted);

/* Format a network entry's prefix ("198.18.3.0/24") into buf (at least 52 bytes). */
void EVI_FormatNet(const struct evict_net *n, char *buf, unsigned len);

#endif
