/* The per-packet engine: parse, find the flow, analyse, update state, decide. One engine per
 * packet thread (inline) or per capture (offline); engines share nothing. */
#ifndef RSTGUARD_ENGINE_H
#define RSTGUARD_ENGINE_H

#include <stdatomic.h>
#include <stdint.h>

#include "config.h"
#include "event.h"
#include "packet.h"
#include "policy.h"
#include "rst.h"

struct engine;

/* A moment: monotonic time drives timers, wall-clock time stamps events. Offline, both come
 * from the capture. */
struct engine_time {
	uint64_t mono_ns;
	uint64_t real_ns;
};

/* The hold time of held RSTs, as a histogram: ENG_HoldBucketsMs[i] is the upper bound
 * (milliseconds, inclusive) of bucket i; the last bucket holds everything longer. */
#define ENG_HOLD_BUCKETS 9
extern const uint32_t ENG_HoldBucketsMs[ENG_HOLD_BUCKETS - 1];

/* Every member is a uint64_t counter (ENG_AddStats sums them as an array). */
struct engine_stats {
	uint64_t packets;
	uint64_t kind[PKT_KIND_MAX];      /* by parse result; kind[PKT_TCP] are tracked TCP packets */
	uint64_t flows_created;
	uint64_t flows_midstream;         /* created without seeing the handshake */
	uint64_t flows_expired;           /* idle timeout */
	uint64_t flows_evicted;           /* forced out because the table was full */
	uint64_t flows_reused;            /* a new SYN on a closed flow's tuple */
	uint64_t flows_untracked;         /* packets that could not get a flow */
	uint64_t rst;
	uint64_t rst_cause[RST_CAUSE_MAX];
	uint64_t rst_forged;
	uint64_t rst_dropped;
	uint64_t rst_would_drop;
	uint64_t rst_held;                /* packets held for judgement */
	uint64_t rst_race;                /* RSTs contradicted by their sender's later traffic */
	uint64_t pending_full;            /* RSTs judged at once because the pending table was full */
	uint64_t rst_revised;             /* judged genuine, then shown forged by their sender's traffic */
	uint64_t tombstones_full;         /* judged-genuine RSTs not kept for revision: table full */
	uint64_t confirm_sent;            /* confirmation probes sent for held RSTs */
	uint64_t confirm_ack;             /* ... answered by a live socket: the RST was forged */
	uint64_t confirm_rst;             /* ... answered by a RST: the socket was gone, genuine */
	uint64_t confirm_timeout;         /* ... unanswered when the hold ended: delivered */
	uint64_t confirm_rate_limited;    /* held RSTs not probed: confirm_rate exhausted */
	uint64_t evictions_rst;           /* middlebox evictions seen as a RST */
	uint64_t evictions_blackhole;     /* ... seen as retransmissions into silence */
	uint64_t watch_full;              /* resumptions not watched: table full */
	uint64_t probes_sent;
	uint64_t probes_answered;
	uint64_t probes_unanswered;
	uint64_t probes_rst;              /* answered by a RST: the state was already lost */
	uint64_t probes_rate_limited;
	uint64_t probe_errors;            /* raw socket send failures */
	uint64_t flows_active;
	uint64_t flows_capacity;
	uint64_t memory_bytes;
	uint64_t hold_ms_bucket[ENG_HOLD_BUCKETS]; /* held RSTs by hold time (not cumulative) */
	uint64_t hold_ms_sum;             /* their hold times added up, in milliseconds */
	uint64_t evidence_written;        /* evidence captures written (evidence.dir) */
	uint64_t evidence_skipped;        /* ... not written: evidence.rate, or larger than the cap */
	uint64_t evidence_errors;         /* ... lost to write errors (a full disk) */
	uint64_t evidence_removed_bytes;  /* old captures removed to stay under evidence.max_bytes */
	uint64_t nat_lookups;             /* conntrack lookups made (unknown non-SYN tuples) */
	uint64_t nat_hits;                /* ... answered with an entry */
	uint64_t nat_misses;              /* ... answered: no such entry */
	uint64_t nat_errors;              /* ... failed (timeout, socket, malformed answer) */
	uint64_t nat_skipped;             /* not looked up: nat.lookup_rate or a recent miss */
	uint64_t nat_joined;              /* translated halves joined to their connection's flow */
	uint64_t nat_unjoined;            /* ... whose other half this queue had not seen (a pickup, or
					   * the other half went to another queue: see docs/nat.md) */
	uint64_t nat_unmapped;            /* tuples whose mapping could not be found: tracked as is */
	uint64_t nat_aliases_full;        /* translated halves not joined: alias table full */
	uint64_t nat_aliases;             /* aliases in use */
};

/* Create an engine tracking at most max_flows flows; events go to sink (may be NULL: none).
 * cfg must stay valid until the next ENG_SetConfig or ENG_Destroy. start is the time base. */
struct engine *ENG_Create(const struct config *cfg, uint32_t max_flows, struct event_sink *sink,
			  const uint8_t seed[16], const struct engine_time *start);

/* Use another configuration (after a reload). */
void ENG_SetConfig(struct engine *e, const struct config *cfg);

/* Set the current time for the packets that follow (once per receive batch inline; per packet
 * offline). */
void ENG_SetTime(struct engine *e, const struct engine_time *now);

/* Process one IP packet and return its verdict. Never fails: whatever the bytes, a verdict.
 * RG_HOLD (enforce mode only, and only when pkt_id is not ENG_NO_ID) means the verdict for
 * pkt_id comes later through ENG_TakeVerdicts. */
#define ENG_NO_ID UINT32_MAX
enum rg_verdict ENG_Packet(struct engine *e, const uint8_t *data, uint32_t caplen, uint32_t wirelen,
			   uint32_t pkt_id);

/* A batch of packets in three steps, so that their flows' memory is fetched in parallel rather
 * than one cache miss after another: ENG_Prepare each packet (parse, hash, prefetch the index
 * slot), then ENG_Prefetch each (prefetch the flow record), then ENG_PacketPrepared each, in
 * order. The result is the same as ENG_Packet on each. */
struct eng_prep {
	struct pkt p;
	uint32_t hash;
	uint8_t kind;              /* enum pkt_kind */
	const uint8_t *data;       /* the packet itself (evidence captures copy it) */
	uint32_t caplen, wirelen;
};
void ENG_Prepare(struct engine *e, const uint8_t *data, uint32_t caplen, uint32_t wirelen, struct eng_prep *pp);
void ENG_Prefetch(struct engine *e, const struct eng_prep *pp);
enum rg_verdict ENG_PacketPrepared(struct engine *e, struct eng_prep *pp, uint32_t pkt_id);

/* A verdict that was held and is now decided. */
struct engine_verdict {
	uint32_t pkt_id;
	enum rg_verdict verdict;
};

/* Collect up to max decided verdicts of held packets; returns how many. */
uint32_t ENG_TakeVerdicts(struct engine *e, struct engine_verdict *out, uint32_t max);

/* Packets currently held (their verdicts are owed). */
uint32_t ENG_HeldCount(const struct engine *e);

/* Milliseconds until the next pending judgement is due (0: due now), or -1 if none. */
int ENG_NextDueMs(const struct engine *e);

/* Expire idle flows up to the current time, with bounded work per call. */
void ENG_Tick(struct engine *e);

/* Judge every pending RST now (held packets get their verdicts) and end every flow (flow events
 * with reason "shutdown"). */
void ENG_Shutdown(struct engine *e);

/* Called once for every RST when it is judged (offline summaries), and again if a late
 * contradiction revises it: then was holds the first judgement's cause and evidence. */
typedef void (*eng_rst_hook)(void *ctx, const struct pkt *p, const struct rst_result *r, enum rg_verdict would,
			     const struct rst_result *was);
void ENG_SetRstHook(struct engine *e, eng_rst_hook fn, void *ctx);

/* Send the engine's probes (keepalive, confirmation) through fn instead of raw sockets (tests,
 * benchmarks). fn returns 0 when the packet went out. */
struct flow;
typedef int (*eng_send_fn)(void *ctx, const struct flow *f, const uint8_t *buf, uint32_t len);
void ENG_SetProbeSender(struct engine *e, eng_send_fn fn, void *ctx);

/* NAT (docs/nat.md): on a flow-table miss for a packet that is not a bare SYN, ask fn for the
 * connection of p's tuple (as NAT_Lookup does: 1 found, 0 none, -1 error) and join a translated
 * half to its flow through an alias table of cfg nat.max_aliases. fn NULL: no lookups. Tests and
 * benchmarks stand in for conntrack with their own fn. Returns 0, or -1 when the alias table
 * cannot be had. */
struct nat_map;
typedef int (*eng_nat_fn)(void *ctx, const struct pkt *p, uint16_t zone, struct nat_map *out);
int ENG_SetNat(struct engine *e, eng_nat_fn fn, void *ctx);

/* ENG_SetNat with the kernel's conntrack table through a ctnetlink socket of the engine's own
 * (closed with the engine). Returns 0, or -1 with errno set (EPERM, EPROTONOSUPPORT, ENOMEM). */
int ENG_OpenNat(struct engine *e);

/* Log what has been learnt of each server network's idle timeout. */
void ENG_LogLearned(const struct engine *e);

/* Counters. */
void ENG_GetStats(const struct engine *e, struct engine_stats *st);

/* Add src's counters to dst. */
void ENG_AddStats(struct engine_stats *dst, const struct engine_stats *src);

struct fastpath;

/* Run behind the kernel fast path fp (src/fastpath.h): the engine then reads a flow's kernel
 * baselines before it uses them and has the kernel queue all of a flow it needs to see. NULL:
 * every packet is queued (the default). */
void ENG_SetFastPath(struct engine *e, struct fastpath *fp);

/* Free the engine. */
void ENG_Destroy(struct engine *e);

/* ---- questions from the control thread (rstguardctl flows, timeouts) ----
 * The control thread posts a query to each engine; the engine's packet thread answers it itself
 * between receive batches (ENG_ServeQuery), a bounded chunk of the flow table at a time, so an
 * answer never stops the packet path for long, and nothing is shared while packets flow. */

#define ENG_QUERY_MAX_FLOWS 1000   /* most flows one answer lists */
#define ENG_QUERY_MAX_NETS 256     /* most server networks whose timeouts are listed */
#define ENG_QUERY_CHUNK 128        /* flow records examined per call, at most */
#define ENG_QUERY_COPIES 32        /* ... and flows copied into the answer (a few microseconds) */

enum eng_query_kind { ENG_Q_FLOWS = 1, ENG_Q_TIMEOUTS };

/* One side of a listed flow. */
struct eng_flow_side {
	uint64_t pkts, bytes;
	uint8_t ttl_base, ttl_last, ttl_spread;
	uint8_t ipid_habit;              /* enum ipid_habit */
	uint16_t ipid;                   /* last IP ID (IPv4) */
};

/* One listed flow, as its packet thread saw it when it was examined. */
struct eng_flow_info {
	uint64_t flow_id;
	uint64_t last_mono_ms;           /* when its last packet passed (CLOCK_MONOTONIC, ms) */
	uint32_t age_s;
	uint16_t cport, sport;
	uint8_t family;                  /* AF_INET or AF_INET6 */
	uint8_t cli[16], srv[16];
	uint8_t state;                   /* enum tcp_state */
	uint8_t midstream;
	struct eng_flow_side dir[2];     /* [0] client to server, [1] server to client */
};

/* What one server network's silences have taught (see eviction.h). */
struct eng_timeout_info {
	uint8_t family;
	uint8_t prefix;                  /* 24 or 64 */
	uint8_t addr[16];
	uint32_t max_survived_ms, min_evicted_ms, survived, evicted;
};

struct eng_query {
	atomic_int done;                 /* set by the packet thread when the answer is complete */
	enum eng_query_kind kind;
	/* flows: filters (0 / -1: any) and the most flows wanted */
	uint8_t ip_family;               /* 0: any address */
	uint8_t ip[16];
	uint32_t port;
	int state;                       /* enum tcp_state, or -1 */
	uint32_t limit;                  /* 1..ENG_QUERY_MAX_FLOWS */
	/* the answer */
	uint32_t cursor;                 /* next flow record to examine */
	uint32_t matched;                /* flows that matched, listed or not */
	uint32_t n;                      /* flows listed in flows[], in no particular order */
	struct eng_flow_info flows[ENG_QUERY_MAX_FLOWS];
	struct {                         /* the listed flows by recency, the least recent on top */
		uint64_t last_mono_ms;
		uint32_t slot;           /* in flows[] */
	} heap[ENG_QUERY_MAX_FLOWS];
	uint32_t nnets;
	struct eng_timeout_info nets[ENG_QUERY_MAX_NETS];
};

/* Control thread: hand q (filled in, done = 0) to e's packet thread. One query per engine at a
 * time; q must stay valid until q->done. */
void ENG_PostQuery(struct engine *e, struct eng_query *q);

/* Packet thread, between receive batches: work on the posted query, if any, for at most
 * ENG_QUERY_CHUNK flow records and ENG_QUERY_COPIES copies; set its done flag when it is
 * answered. While a query is open
 * ENG_NextDueMs says 0, so an idle thread keeps coming back without waiting in recv. */
void ENG_ServeQuery(struct engine *e);

#endif
