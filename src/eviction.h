/* Silent evictions by middleboxes. A flow that resumes after a long silence is watched for a
 * moment: an answer from the other side means the path kept its state; a RST, or the resuming
 * packet retransmitted into silence, means a middlebox forgot the flow. Each outcome is also a
 * sample of the path's idle timeout: the longest silence a path survived and the shortest that
 * got a flow evicted, per server network, bracket the real value. Bounded tables, touched only
 * when a flow resumes after a silence or when a RST comes. */
#ifndef RSTGUARD_EVICTION_H
#define RSTGUARD_EVICTION_H

#include <stdint.h>

#include "config.h"
#include "flow.h"
#include "keepalive.h"
#include "report.h"
#include "timer.h"

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

/* What eviction detection sees of its engine: no more than this. */
struct evi_ctx {
	const struct config *cfg;       /* idle timeouts (the engine points it at a reloaded one) */
	const struct timer_clock *now;
	struct flow_table *table;       /* the flows watched, and their ids for events */
	const struct reporter *rep;     /* eviction events */
};

/* An eviction seen: how it showed, what noticed it, after what silence. */
struct evi_seen {
	enum rep_evict_kind kind;
	enum rep_detector by;
	uint32_t gap_ms;          /* the silence before */
	uint32_t retrans;         /* retransmissions into it (black holes) */
	uint32_t timeout_s;       /* the middlebox timeout configured for the flow (0: none) */
};

struct evi_stats {
	uint64_t evictions_rst;         /* middlebox evictions seen as a RST */
	uint64_t evictions_blackhole;   /* ... seen as retransmissions into silence */
	uint64_t watch_full;            /* resumptions not watched: table full */
	uint64_t probes_rst;            /* keepalive probes answered by a RST: the state was lost */
};

struct eviction {
	struct evi_ctx ctx;
	struct evict_watch *watch;
	uint32_t wcap, wused;
	struct evict_net *nets;
	uint32_t ncap;
	struct evi_stats st;
};

/* Allocate the tables: watch_cap resumptions watched at once, net_cap server networks learnt.
 * Returns 0 or -1. */
int EVI_Init(struct eviction *ev, const struct evi_ctx *ctx, uint32_t watch_cap, uint32_t net_cap);

/* Free the tables. */
void EVI_Fini(struct eviction *ev);

/* A packet other than a RST of flow idx (record f) from side dir, before it updates the flow:
 * a resumption after a silence starts a watch; during a watch, the other side's answer means
 * the path survived, the resuming packet sent again into silence a black hole (reported). */
void EVI_Packet(struct eviction *ev, uint32_t idx, struct flow *f, int dir, const struct pkt *p);

/* Is a RST from side dir of flow idx a middlebox's, after a silence the path did not survive?
 * k is the flow's keepalive state while our probes keep it (else NULL): a RST answering our
 * probe means the state was already lost. Fills *seen for EVI_RstEvicted. */
int EVI_RstAfterSilence(struct eviction *ev, uint32_t idx, struct flow *f, int dir, struct ka_flow *k,
			struct evi_seen *seen);

/* The analysis took the RST for an eviction: learn, report (once per flow), stop watching. */
void EVI_RstEvicted(struct eviction *ev, uint32_t idx, struct flow *f, const struct evi_seen *seen);

/* A middlebox forgot flow f: learn from it and report it, once per flow. */
void EVI_Found(struct eviction *ev, struct flow *f, const struct evi_seen *seen);

/* Flow idx (record f) ends: stop watching it. */
void EVI_Unwatch(struct eviction *ev, uint32_t idx, struct flow *f);

/* End the watches that saw no outcome in time (call about once a second). */
void EVI_Expire(struct eviction *ev);

/* Log what has been learnt of each server network's idle timeout. */
void EVI_LogLearned(const struct eviction *ev);

/* Copy up to max of the server networks learnt so far into out; returns how many. */
uint32_t EVI_Learned(const struct eviction *ev, struct evict_net *out, uint32_t max);

#endif
