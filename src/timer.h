/* Idle timers: a single-level timing wheel of one-second slots with lazy re-arming. The packet
 * path only writes a flow's last_seen; when a slot comes due, each flow in it is either expired
 * or re-linked at its real deadline. Start, stop and per-packet cost are O(1); the work per tick
 * is bounded. Deadlines beyond the wheel's span simply take more than one turn. */
#ifndef RSTGUARD_TIMER_H
#define RSTGUARD_TIMER_H

#include <stdint.h>

#include "flow.h"

#define TIMER_SLOTS 1024u        /* one turn = 1024 s */

/* An engine's clock, set before each packet (or batch): monotonic and wall-clock time now, and
 * the monotonic time since the engine's start in seconds, milliseconds and microseconds (ms and
 * us wrap: compare them wrap-safe). The engine's parts read it; only the engine sets it. */
struct timer_clock {
	uint64_t mono_ns;
	uint64_t real_ns;
	uint32_t s, ms, us;
};

struct timer_wheel {
	uint32_t head[TIMER_SLOTS];  /* first flow index of each slot, FLOW_NIL when empty */
	uint32_t now_s;              /* the slot time processed up to (seconds since the base) */
	uint32_t linked;             /* flows linked */
};

/* Empty wheel starting at time now_s. */
void TIMER_Init(struct timer_wheel *w, uint32_t now_s);

/* Link flow index i (record f) to expire at deadline_s (absolute seconds). */
void TIMER_Link(struct timer_wheel *w, struct flow_table *t, uint32_t i, uint32_t deadline_s);

/* Unlink flow index i. */
void TIMER_Unlink(struct timer_wheel *w, struct flow_table *t, uint32_t i);

/* Callback for due flows: return the flow's real deadline in seconds; if it is <= now the flow is
 * unlinked and the callback is expected to have removed it (return 0 after removal), otherwise
 * the flow is re-linked at that deadline. */
typedef uint32_t (*timer_due_fn)(void *ctx, uint32_t index, uint32_t now_s);

/* Advance to now_s, handing due flows to fn; at most budget flows are examined per call (the rest
 * on the next call). Returns the number examined. */
uint32_t TIMER_Advance(struct timer_wheel *w, struct flow_table *t, uint32_t now_s, uint32_t budget,
		       timer_due_fn fn, void *ctx);

/* Walk the wheel from the soonest slot on and return up to max candidate flow indices (for
 * eviction when the table is full). Returns the number written to out. */
uint32_t TIMER_Soonest(const struct timer_wheel *w, const struct flow_table *t, uint32_t *out, uint32_t max);

#endif
