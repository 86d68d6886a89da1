/* The pending-RST table: a small preallocated array. It is scanned only when a flow with a
 * pending RST sees a packet or when a deadline comes, and holds at most a few hundred entries. */
#include <stdlib.h>
#include <string.h>

#include "hold.h"

int
HOLD_Init(struct hold_table *h, uint32_t cap)
{
	memset(h, 0, sizeof(*h));
	h->slots = calloc(cap, sizeof(*h->slots));
	if (h->slots == NULL)
		return -1;
	h->cap = cap;
	return 0;
}

void
HOLD_Fini(struct hold_table *h)
{
	free(h->slots);
	memset(h, 0, sizeof(*h));
}

struct pending_rst *
HOLD_Add(struct hold_table *h)
{
	if (h->used == h->cap)
		return NULL;
	for (uint32_t i = 0; i < h->cap; i++) {
		if (!h->slots[i].in_use) {
			memset(&h->slots[i], 0, sizeof(h->slots[i]));
			h->slots[i].in_use = 1;
			h->used++;
			return &h->slots[i];
		}
	}
	return NULL;
}

void
HOLD_Remove(struct hold_table *h, struct pending_rst *p)
{
	if (!p->in_use)
		return;
	if (p->held)
		h->held--;
	p->in_use = 0;
	p->held = 0;
	h->used--;
}

int
HOLD_NextDeadline(const struct hold_table *h, uint32_t *deadline)
{
	int found = 0;

	if (h->used == 0)
		return 0;
	for (uint32_t i = 0; i < h->cap; i++) {
		const struct pending_rst *p = &h->slots[i];

		if (p->in_use && (!found || (int32_t)(p->deadline_ms - *deadline) < 0)) {
			*deadline = p->deadline_ms;
			found = 1;
		}
	}
	return found;
}

const char *
HOLD_ConfirmName(enum hold_confirm c)
{
	switch (c) {
	case CONFIRM_ACK:
		return "probe_ack";
	case CONFIRM_RST:
		return "probe_rst";
	case CONFIRM_SENT:
	case CONFIRM_TIMEOUT:
		return "timeout";
	default:
		return NULL;
	}
}
