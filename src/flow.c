/* The flow table. Records are preallocated in one array and recycled through a free list; the
 * index is an open-addressing array of 8-byte slots {low 32 bits of the hash, record index + 1}
 * with linear probing at a load factor of at most 0.7 and backward-shift deletion, so lookups
 * touch one or two cache lines and no tombstones build up. The index has exactly the slots that
 * load factor needs: a hash is mapped to its slot by multiplication rather than by a power-of-two
 * mask, which could nearly double the index. The hash is SipHash-1-3 under a random key over the
 * endpoints in canonical order, so both directions meet in one record and crafted addresses
 * cannot be aimed at one bucket. */
#include <endian.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include "flow.h"
#include "siphash.h"

struct flow_table {
	struct flow *flows;
	uint64_t *slots;        /* 0 = empty; else (hash32 << 32) | (index + 1) */
	uint32_t nslots;
	uint32_t cap;
	uint32_t count;
	uint32_t free_head;
	uint32_t max_probe;
	uint8_t key[16];
	uint8_t id_key[16];
	size_t flows_mapped, slots_mapped;
};

/* Canonical key: the lower (address, port) endpoint first, so both directions hash alike. An
 * IPv4 key is packed into its first 13 bytes (addresses, ports, family), so that it costs two
 * SipHash blocks instead of five. */
#define KEY_MAX 37
struct canon_key {
	uint8_t b[KEY_MAX + 4];   /* room for a start time appended by make_id */
	size_t len;
};

/* Addresses compared inline, a word at a time: these run for every packet, and a call to the
 * library's memcmp costs more than the comparison itself. */
static inline uint64_t
load_be64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return be64toh(v);
}

static inline int
addr16_eq(const uint8_t *a, const uint8_t *b)
{
	uint64_t a0, a1, b0, b1;

	memcpy(&a0, a, 8); memcpy(&a1, a + 8, 8);
	memcpy(&b0, b, 8); memcpy(&b1, b + 8, 8);
	return ((a0 ^ b0) | (a1 ^ b1)) == 0;
}

/* Order of two endpoints: addresses as unsigned big-endian numbers, then ports. */
static inline int
endpoint_cmp(const uint8_t *a, uint16_t pa, const uint8_t *b, uint16_t pb, size_t alen)
{
	uint64_t x, y;

	if (alen == 16) {
		x = load_be64(a);
		y = load_be64(b);
		if (x == y) {
			x = load_be64(a + 8);
			y = load_be64(b + 8);
		}
	} else {
		uint32_t u, v;

		memcpy(&u, a, 4);
		memcpy(&v, b, 4);
		x = be32toh(u);
		y = be32toh(v);
	}
	if (x != y)
		return x < y ? -1 : 1;
	return (int)pa - (int)pb;
}

static inline void
make_key(struct canon_key *k, const uint8_t *src, uint16_t sp, const uint8_t *dst, uint16_t dp, uint8_t family)
{
	size_t alen = family == AF_INET6 ? 16 : 4;
	uint8_t *o = k->b;

	if (endpoint_cmp(src, sp, dst, dp, alen) > 0) {
		const uint8_t *ta = src;
		uint16_t tp = sp;

		src = dst; sp = dp;
		dst = ta; dp = tp;
	}
	memcpy(o, src, alen);
	memcpy(o + alen, dst, alen);
	o += 2 * alen;
	memcpy(o, &sp, 2);
	memcpy(o + 2, &dp, 2);
	o[4] = family;
	k->len = 2 * alen + 5;
}

/* Zeroed memory for the big arrays, on huge pages where the kernel allows: a lookup then costs
 * cache misses but no TLB misses, which is most of the difference at millions of flows. */
static void *
big_alloc(size_t size, size_t *mapped)
{
	size_t huge = 2u << 20;
	void *p;

	*mapped = (size + huge - 1) & ~(huge - 1);
	p = mmap(NULL, *mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
#ifdef MADV_HUGEPAGE
	madvise(p, *mapped, MADV_HUGEPAGE);
#endif
	return p;
}

static void
big_free(void *p, size_t mapped)
{
	if (p)
		munmap(p, mapped);
}

struct flow_table *
FLOW_CreateTable(uint32_t max_flows, const uint8_t seed[16])
{
	struct flow_table *t;
	uint64_t want = (uint64_t)max_flows * 10 / 7 + 1;
	uint32_t size = want < 16 ? 16 : (uint32_t)want;

	if (max_flows == 0 || max_flows > (1u << 28))
		return NULL;
	t = calloc(1, sizeof(*t));
	if (t == NULL)
		return NULL;
	t->flows = big_alloc((size_t)max_flows * sizeof(struct flow), &t->flows_mapped);
	t->slots = big_alloc((size_t)size * sizeof(uint64_t), &t->slots_mapped);
	if (t->flows == NULL || t->slots == NULL) {
		FLOW_DestroyTable(t);
		return NULL;
	}
	t->nslots = size;
	t->cap = max_flows;
	memcpy(t->key, seed, 16);
	for (int i = 0; i < 16; i++)
		t->id_key[i] = seed[i] ^ 0x5a;
	/* Free list through timer_next, lowest index first. */
	for (uint32_t i = 0; i < max_flows; i++)
		t->flows[i].timer_next = i + 1 < max_flows ? i + 1 : FLOW_NIL;
	t->free_head = 0;
	return t;
}

void
FLOW_DestroyTable(struct flow_table *t)
{
	if (t == NULL)
		return;
	big_free(t->flows, t->flows_mapped);
	big_free(t->slots, t->slots_mapped);
	free(t);
}

static inline int
same_family(const struct flow *f, const struct pkt *p)
{
	return ((f->flags & FL_IPV6) != 0) == (p->family == AF_INET6);
}

/* The home slot of a hash: the hash scaled to [0, nslots) (Lemire's multiply-shift). */
static inline uint32_t
home_slot(const struct flow_table *t, uint32_t hash)
{
	return (uint32_t)(((uint64_t)hash * t->nslots) >> 32);
}

static inline uint32_t
next_slot(const struct flow_table *t, uint32_t pos)
{
	return pos + 1 == t->nslots ? 0 : pos + 1;
}

/* Distance from slot a forward to slot b, around the end of the index. */
static inline uint32_t
slot_distance(const struct flow_table *t, uint32_t a, uint32_t b)
{
	return b >= a ? b - a : b + t->nslots - a;
}

uint32_t
FLOW_Hash(const struct flow_table *t, const struct pkt *p)
{
	struct canon_key k;

	make_key(&k, p->src, p->sport, p->dst, p->dport, p->family);
	return (uint32_t)SIP_Hash13(t->key, k.b, k.len);
}

void
FLOW_PrefetchSlot(const struct flow_table *t, uint32_t hash)
{
	uint32_t home = home_slot(t, hash);

	__builtin_prefetch(&t->slots[home]);
	/* A flow's slot can lie a few after its home (linear probing): from the last slots of a
	 * line, the run is likely to go on into the next one. */
	if ((((uintptr_t)&t->slots[home]) & 63) >= 48 && home + 2 < t->nslots)
		__builtin_prefetch(&t->slots[home + 2]);
}

/* Slots of a probe run that the record prefetch looks at: the home slot's line and the next
 * hold them in nearly every case at a load of 0.7 or less. */
#define PREFETCH_RUN 8

void
FLOW_PrefetchRecord(const struct flow_table *t, uint32_t hash)
{
	uint32_t pos = home_slot(t, hash);

	/* At a load of 0.6-0.7 a large share of the flows are not in their home slot: follow the
	 * run (a few slots, all in cache) rather than leave their records to a cache miss later. */
	for (int i = 0; i < PREFETCH_RUN; i++) {
		uint64_t s = t->slots[pos];

		if (s == 0)
			return;   /* not in the table: a new flow */
		if ((uint32_t)(s >> 32) == hash) {
			const char *r = (const char *)&t->flows[(uint32_t)s - 1];

			/* A record spans three cache lines: the key, and the two directions' state. */
			__builtin_prefetch(r);
			__builtin_prefetch(r + 64);
			__builtin_prefetch(r + sizeof(struct flow) - 1);
			return;
		}
		pos = next_slot(t, pos);
	}
}

int
FLOW_Lookup(struct flow_table *t, const struct pkt *p, struct flow_ref *ref)
{
	return FLOW_LookupHashed(t, p, FLOW_Hash(t, p), ref);
}

int
FLOW_LookupHashed(struct flow_table *t, const struct pkt *p, uint32_t h, struct flow_ref *ref)
{
	uint32_t pos;

	ref->hash = h;
	for (pos = home_slot(t, h);; pos = next_slot(t, pos)) {
		uint64_t s = t->slots[pos];
		struct flow *f;
		uint32_t idx;

		if (s == 0)
			return 0;
		if ((uint32_t)(s >> 32) != h)
			continue;
		idx = (uint32_t)s - 1;
		f = &t->flows[idx];
		if (!same_family(f, p))
			continue;
		if (p->sport == f->cport && p->dport == f->sport &&
		    addr16_eq(p->src, f->cli) && addr16_eq(p->dst, f->srv)) {
			ref->dir = DIR_TOSERVER;
		} else if (p->sport == f->sport && p->dport == f->cport &&
			   addr16_eq(p->src, f->srv) && addr16_eq(p->dst, f->cli)) {
			ref->dir = DIR_TOCLIENT;
		} else {
			continue;
		}
		ref->flow = f;
		ref->index = idx;
		return 1;
	}
}

int
FLOW_Insert(struct flow_table *t, const struct pkt *p, int client_is_src, struct flow_ref *ref)
{
	uint32_t idx, pos, probe = 0;
	struct flow *f;

	if (t->free_head == FLOW_NIL)
		return 0;
	idx = t->free_head;
	f = &t->flows[idx];
	t->free_head = f->timer_next;
	memset(f, 0, sizeof(*f));
	if (client_is_src) {
		memcpy(f->cli, p->src, 16); memcpy(f->srv, p->dst, 16);
		f->cport = p->sport; f->sport = p->dport;
		ref->dir = DIR_TOSERVER;
	} else {
		memcpy(f->cli, p->dst, 16); memcpy(f->srv, p->src, 16);
		f->cport = p->dport; f->sport = p->sport;
		ref->dir = DIR_TOCLIENT;
	}
	if (p->family == AF_INET6)
		f->flags |= FL_IPV6;
	f->timer_next = f->timer_prev = FLOW_NIL;

	for (pos = home_slot(t, ref->hash); t->slots[pos] != 0; pos = next_slot(t, pos))
		probe++;
	t->slots[pos] = ((uint64_t)ref->hash << 32) | (idx + 1);
	if (probe > t->max_probe)
		t->max_probe = probe;
	t->count++;
	ref->flow = f;
	ref->index = idx;
	return 1;
}

void
FLOW_Remove(struct flow_table *t, uint32_t index)
{
	struct flow *f = &t->flows[index];
	struct canon_key k;
	uint32_t h, pos, next;

	make_key(&k, f->cli, f->cport, f->srv, f->sport, (f->flags & FL_IPV6) ? AF_INET6 : AF_INET);
	h = (uint32_t)SIP_Hash13(t->key, k.b, k.len);
	for (pos = home_slot(t, h); (uint32_t)t->slots[pos] != index + 1; pos = next_slot(t, pos)) {
		if (t->slots[pos] == 0)
			return;  /* not indexed: nothing to undo */
	}
	/* Backward-shift deletion: pull later members of the probe run into the hole when their
	 * home slot does not lie between the hole and their current slot. */
	for (next = next_slot(t, pos); t->slots[next] != 0; next = next_slot(t, next)) {
		uint32_t home = home_slot(t, (uint32_t)(t->slots[next] >> 32));

		if (slot_distance(t, home, next) >= slot_distance(t, pos, next)) {
			t->slots[pos] = t->slots[next];
			pos = next;
		}
	}
	t->slots[pos] = 0;
	f->state = TCP_NONE;
	f->timer_next = t->free_head;
	t->free_head = index;
	t->count--;
}

struct flow *
FLOW_Get(struct flow_table *t, uint32_t index)
{
	return &t->flows[index];
}

uint32_t
FLOW_Index(const struct flow_table *t, const struct flow *f)
{
	return (uint32_t)(f - t->flows);
}

uint32_t
FLOW_Count(const struct flow_table *t)
{
	return t->count;
}

uint32_t
FLOW_Capacity(const struct flow_table *t)
{
	return t->cap;
}

size_t
FLOW_MemoryBytes(const struct flow_table *t)
{
	return sizeof(*t) + (size_t)t->cap * sizeof(struct flow) + (size_t)t->nslots * sizeof(uint64_t);
}

static uint64_t
make_id(const struct flow_table *t, const uint8_t *a, uint16_t pa, const uint8_t *b, uint16_t pb,
	uint8_t family, uint32_t start)
{
	struct canon_key k;
	uint64_t id;

	make_key(&k, a, pa, b, pb, family);
	memcpy(k.b + k.len, &start, 4);
	/* 51 bits: JSON consumers that read numbers as doubles keep it exact. */
	id = SIP_Hash13(t->id_key, k.b, k.len + 4) & ((1ULL << 51) - 1);
	return id ? id : 1;
}

uint64_t
FLOW_Id(const struct flow_table *t, const struct flow *f)
{
	return make_id(t, f->cli, f->cport, f->srv, f->sport, (f->flags & FL_IPV6) ? AF_INET6 : AF_INET,
		       f->first_seen_cs);
}

uint64_t
FLOW_IdForPacket(const struct flow_table *t, const struct pkt *p)
{
	return make_id(t, p->src, p->sport, p->dst, p->dport, p->family, 0);
}

uint32_t
FLOW_MaxProbe(const struct flow_table *t)
{
	return t->max_probe;
}

const char *
FLOW_StateName(enum tcp_state s)
{
	static const char *const names[TCP_STATE_MAX] = {
		"none", "syn_sent", "syn_recv", "established", "fin_wait", "closing", "time_wait", "closed",
	};

	return (unsigned)s < TCP_STATE_MAX ? names[s] : "unknown";
}

int
FLOW_StateIsEstablished(enum tcp_state s)
{
	return s == TCP_ESTABLISHED;
}
