/* A single-level timing wheel for idle expiry (Varghese & Lauck). The packet path never touches
 * it: flows are linked at a deadline once and only re-examined when their slot comes due. */
#include "timer.h"

void
TIMER_Init(struct timer_wheel *w, uint32_t now_s)
{
	for (uint32_t i = 0; i < TIMER_SLOTS; i++)
		w->head[i] = FLOW_NIL;
	w->now_s = now_s;
	w->linked = 0;
}

void
TIMER_Link(struct timer_wheel *w, struct flow_table *t, uint32_t i, uint32_t deadline_s)
{
	struct flow *f = FLOW_Get(t, i);
	uint32_t slot;

	/* Never the slot being processed, never more than one turn ahead. */
	if ((int32_t)(deadline_s - w->now_s) < 1)
		deadline_s = w->now_s + 1;
	else if (deadline_s - w->now_s > TIMER_SLOTS - 1)
		deadline_s = w->now_s + TIMER_SLOTS - 1;
	slot = deadline_s % TIMER_SLOTS;
	f->timer_slot = (uint16_t)slot;
	f->timer_prev = FLOW_NIL;
	f->timer_next = w->head[slot];
	if (f->timer_next != FLOW_NIL)
		FLOW_Get(t, f->timer_next)->timer_prev = i;
	w->head[slot] = i;
	w->linked++;
}

void
TIMER_Unlink(struct timer_wheel *w, struct flow_table *t, uint32_t i)
{
	struct flow *f = FLOW_Get(t, i);

	if (f->timer_prev != FLOW_NIL)
		FLOW_Get(t, f->timer_prev)->timer_next = f->timer_next;
	else
		w->head[f->timer_slot] = f->timer_next;
	if (f->timer_next != FLOW_NIL)
		FLOW_Get(t, f->timer_next)->timer_prev = f->timer_prev;
	f->timer_next = f->timer_prev = FLOW_NIL;
	w->linked--;
}

uint32_t
TIMER_Advance(struct timer_wheel *w, struct flow_table *t, uint32_t now_s, uint32_t budget,
	      timer_due_fn fn, void *ctx)
{
	uint32_t examined = 0;

	while ((int32_t)(now_s - w->now_s) > 0) {
		uint32_t due = w->now_s + 1;
		uint32_t slot = due % TIMER_SLOTS;

		if (w->linked == 0) {
			w->now_s = now_s;  /* nothing to visit: jump over idle time */
			break;
		}
		while (w->head[slot] != FLOW_NIL) {
			uint32_t i = w->head[slot], deadline;

			if (examined == budget)
				return examined;  /* resume this slot on the next call */
			examined++;
			TIMER_Unlink(w, t, i);
			deadline = fn(ctx, i, due);
			if ((int32_t)(deadline - due) > 0)
				TIMER_Link(w, t, i, deadline);
		}
		w->now_s = due;
	}
	return examined;
}

uint32_t
TIMER_Soonest(const struct timer_wheel *w, const struct flow_table *t, uint32_t *out, uint32_t max)
{
	uint32_t n = 0;

	for (uint32_t k = 1; k <= TIMER_SLOTS && n < max; k++) {
		uint32_t i = w->head[(w->now_s + k) % TIMER_SLOTS];

		while (i != FLOW_NIL && n < max) {
			out[n++] = i;
			i = FLOW_Get((struct flow_table *)t, i)->timer_next;
		}
	}
	return n;
}
