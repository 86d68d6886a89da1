/* The alias table: records in one array with a free list, an open-addressing index of
 * {hash32, record + 1} slots (power-of-two size, load factor at most 0.5, linear probing,
 * backward-shift deletion as in flow.c) keyed by SipHash over the directional tuple, and a
 * per-flow array giving each flow's alias, so that ending a flow removes its alias in O(1). */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "alias.h"
#include "siphash.h"

#define NIL UINT32_MAX

struct alias_table {
	struct alias *rec;
	uint64_t *slots;          /* 0 = empty; else (hash32 << 32) | (record + 1) */
	uint32_t *by_flow;        /* record + 1 of each flow's alias, 0 = none */
	uint32_t nslots, cap, count, flows_cap, free_head;
	uint8_t key[16];
};

static uint32_t
tuple_hash(const struct alias_table *t, int family, const uint8_t *src, uint16_t sport, const uint8_t *dst,
	   uint16_t dport)
{
	uint8_t b[37];
	size_t alen = family == AF_INET6 ? 16 : 4;

	memcpy(b, src, alen);
	memcpy(b + alen, dst, alen);
	memcpy(b + 2 * alen, &sport, 2);
	memcpy(b + 2 * alen + 2, &dport, 2);
	b[2 * alen + 4] = (uint8_t)family;
	return (uint32_t)SIP_Hash13(t->key, b, 2 * alen + 5);
}

static int
same_key(const struct alias *a, int family, const uint8_t *src, uint16_t sport, const uint8_t *dst,
	 uint16_t dport)
{
	return a->family == family && a->sport == sport && a->dport == dport && memcmp(a->src, src, 16) == 0 &&
	       memcmp(a->dst, dst, 16) == 0;
}

struct alias_table *
ALIAS_Create(uint32_t cap, uint32_t flows_cap, const uint8_t seed[16])
{
	struct alias_table *t;
	uint32_t n = 16;

	if (cap == 0 || flows_cap == 0 || cap > (1u << 26) || flows_cap > (1u << 28))
		return NULL;
	while (n < 2 * cap)
		n <<= 1;
	t = calloc(1, sizeof(*t));
	if (t == NULL)
		return NULL;
	/* Written through now (malloc + memset, not calloc): a page first touched on the packet
	 * path would cost a fault there. */
	t->rec = malloc((size_t)cap * sizeof(*t->rec));
	t->slots = malloc((size_t)n * sizeof(*t->slots));
	t->by_flow = malloc((size_t)flows_cap * sizeof(*t->by_flow));
	if (t->rec == NULL || t->slots == NULL || t->by_flow == NULL) {
		ALIAS_Destroy(t);
		return NULL;
	}
	memset(t->rec, 0, (size_t)cap * sizeof(*t->rec));
	memset(t->slots, 0, (size_t)n * sizeof(*t->slots));
	memset(t->by_flow, 0, (size_t)flows_cap * sizeof(*t->by_flow));
	t->nslots = n;
	t->cap = cap;
	t->flows_cap = flows_cap;
	for (uint32_t i = 0; i < 16; i++)
		t->key[i] = seed[i] ^ 0xa5;
	/* Free list through flow_idx, lowest record first. */
	for (uint32_t i = 0; i < cap; i++)
		t->rec[i].flow_idx = i + 1 < cap ? i + 1 : NIL;
	t->free_head = 0;
	return t;
}

void
ALIAS_Destroy(struct alias_table *t)
{
	if (t == NULL)
		return;
	free(t->rec);
	free(t->slots);
	free(t->by_flow);
	free(t);
}

/* The index slot holding record r's entry, or NIL. */
static uint32_t
find_slot(const struct alias_table *t, int family, const uint8_t *src, uint16_t sport, const uint8_t *dst,
	  uint16_t dport)
{
	uint32_t h = tuple_hash(t, family, src, sport, dst, dport), mask = t->nslots - 1;

	/* At most half the slots are used: the run ends at an empty slot well before a full turn. */
	for (uint32_t pos = h & mask, n = 0; n < t->nslots; pos = (pos + 1) & mask, n++) {
		uint64_t s = t->slots[pos];

		if (s == 0)
			return NIL;
		if ((uint32_t)(s >> 32) == h && same_key(&t->rec[(uint32_t)s - 1], family, src, sport, dst, dport))
			return pos;
	}
	return NIL;
}

const struct alias *
ALIAS_Find(const struct alias_table *t, int family, const uint8_t *src, uint16_t sport, const uint8_t *dst,
	   uint16_t dport)
{
	uint32_t pos;

	if (t == NULL || t->count == 0)
		return NULL;
	pos = find_slot(t, family, src, sport, dst, dport);
	return pos == NIL ? NULL : &t->rec[(uint32_t)t->slots[pos] - 1];
}

/* Take record r out of the index, the per-flow array and use. */
static void
remove_record(struct alias_table *t, uint32_t r)
{
	struct alias *a = &t->rec[r];
	uint32_t pos = find_slot(t, a->family, a->src, a->sport, a->dst, a->dport), mask = t->nslots - 1, next;

	if (pos != NIL) {
		for (next = (pos + 1) & mask; t->slots[next] != 0; next = (next + 1) & mask) {
			uint32_t home = (uint32_t)(t->slots[next] >> 32) & mask;

			if (((next - home) & mask) >= ((next - pos) & mask)) {
				t->slots[pos] = t->slots[next];
				pos = next;
			}
		}
		t->slots[pos] = 0;
	}
	if (a->flow_idx < t->flows_cap && t->by_flow[a->flow_idx] == r + 1)
		t->by_flow[a->flow_idx] = 0;
	memset(a, 0, sizeof(*a));
	a->flow_idx = t->free_head;
	t->free_head = r;
	t->count--;
}

int
ALIAS_Add(struct alias_table *t, const struct alias *a)
{
	uint32_t pos, r, h, mask;

	if (t == NULL || a->flow_idx >= t->flows_cap)
		return 0;
	pos = find_slot(t, a->family, a->src, a->sport, a->dst, a->dport);
	if (pos != NIL)
		remove_record(t, (uint32_t)t->slots[pos] - 1);
	if (t->by_flow[a->flow_idx])
		remove_record(t, t->by_flow[a->flow_idx] - 1);
	if (t->free_head == NIL)
		return 0;
	r = t->free_head;
	t->free_head = t->rec[r].flow_idx;
	t->rec[r] = *a;
	t->rec[r].in_use = 1;
	h = tuple_hash(t, a->family, a->src, a->sport, a->dst, a->dport);
	mask = t->nslots - 1;
	for (pos = h & mask; t->slots[pos] != 0; pos = (pos + 1) & mask)
		;
	t->slots[pos] = ((uint64_t)h << 32) | (r + 1);
	t->by_flow[a->flow_idx] = r + 1;
	t->count++;
	return 1;
}

const struct alias *
ALIAS_OfFlow(const struct alias_table *t, uint32_t flow_idx, uint32_t start_cs)
{
	const struct alias *a;

	if (t == NULL || flow_idx >= t->flows_cap || t->by_flow[flow_idx] == 0)
		return NULL;
	a = &t->rec[t->by_flow[flow_idx] - 1];
	return a->flow_start_cs == start_cs ? a : NULL;
}

void
ALIAS_DropFlow(struct alias_table *t, uint32_t flow_idx)
{
	if (t != NULL && flow_idx < t->flows_cap && t->by_flow[flow_idx])
		remove_record(t, t->by_flow[flow_idx] - 1);
}

uint32_t
ALIAS_Count(const struct alias_table *t)
{
	return t ? t->count : 0;
}

uint32_t
ALIAS_Capacity(const struct alias_table *t)
{
	return t ? t->cap : 0;
}

size_t
ALIAS_MemoryBytes(const struct alias_table *t)
{
	if (t == NULL)
		return 0;
	return sizeof(*t) + (size_t)t->cap * sizeof(*t->rec) + (size_t)t->nslots * sizeof(*t->slots) +
	       (size_t)t->flows_cap * sizeof(*t->by_flow);
}
