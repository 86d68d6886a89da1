/* Events: what the engine saw, composed into one JSON line each (Suricata EVE style) and handed
 * to the packet thread's event ring. Fed with plain records that the packet path fills in; the
 * rate limits are taken here, so a record costs nothing to compose when it is not written. */
#ifndef RSTGUARD_REPORT_H
#define RSTGUARD_REPORT_H

#include <stdint.h>

#include "event.h"
#include "flow.h"
#include "hold.h"
#include "policy.h"
#include "timer.h"

/* Event kinds: the event_type of each line. */
enum rep_kind { REP_FLOW = 0, REP_RST, REP_ANOMALY, REP_EVICTION, REP_KIND_MAX };

/* Why a flow ended (flow.reason). */
enum rep_reason { REP_TIMEOUT = 0, REP_FORCED, REP_SHUTDOWN, REP_REUSED, REP_REASON_MAX };

/* How an eviction showed (eviction.kind), and what noticed it (eviction.detected_by). */
enum rep_evict_kind { REP_EVICT_RST = 0, REP_EVICT_BLACKHOLE, REP_EVICT_KIND_MAX };
enum rep_detector { REP_BY_TRAFFIC = 0, REP_BY_PROBE, REP_DETECTOR_MAX };

/* Where one packet thread's events go: its ring (NULL: no events) and its engine's clock (the
 * rate limits and the timestamps of events about now). */
struct evd_ring;
struct reporter {
	struct event_sink *sink;
	const struct timer_clock *now;
	struct evd_ring *evd;     /* evidence captures of forged RSTs (NULL: off) */
	int evd_evictions;        /* ... and of evictions */
};

/* A flow that ended. */
struct rep_flow_end {
	const struct flow *f;     /* endpoints, counters, state, RTTs */
	uint64_t flow_id;
	uint64_t start_ns;        /* wall-clock: its first packet */
	uint64_t end_ns;          /* ... and its last */
	uint64_t age_s;
	enum rep_reason reason;
};

/* A middlebox forgot a flow. */
struct rep_eviction {
	const struct flow *f;     /* endpoints */
	uint64_t flow_id;
	enum rep_evict_kind kind;
	enum rep_detector by;
	uint32_t gap_ms;          /* the silence before */
	uint32_t retrans;         /* retransmissions into the silence (0: not reported) */
	uint32_t timeout_s;       /* the configured idle timeout (0: none, not reported) */
	char network[52];         /* what was learnt of its server network ("": nothing) */
	uint32_t max_survived_ms, min_evicted_ms;
};

/* A flow event (rate-limited as an ordinary event). */
void REP_FlowEnd(const struct reporter *rep, const struct rep_flow_end *r);

/* A RST's judgement: the RST and its analysis, the verdict it got and the one the policy would
 * give (an alert when forged, else an ordinary event). */
void REP_Rst(const struct reporter *rep, const struct pending_rst *rst, enum rg_verdict verdict,
	     enum rg_verdict would);

/* The anomaly that accompanies a forged RST (an alert). */
void REP_Anomaly(const struct reporter *rep, const struct pending_rst *rst);

/* An eviction (an alert). */
void REP_Eviction(const struct reporter *rep, const struct rep_eviction *r);

#endif
