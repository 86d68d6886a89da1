/* Unit tests for the flow table (keyed open addressing, backward-shift deletion, cap) and the
 * timing wheel. Keys are built straight into struct pkt where the parser adds nothing. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "flow.h"
#include "packet.h"
#include "pktbuild.h"
#include "tap.h"
#include "timer.h"

static const uint8_t seed_a[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };
static const uint8_t seed_b[16] = { 0xa0, 0xb1, 0xc2, 0xd3, 0xe4, 0xf5, 0x06, 0x17,
				    0x28, 0x39, 0x4a, 0x5b, 0x6c, 0x7d, 0x8e, 0x9f };

/* xorshift64*: deterministic, so a failure reproduces. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t
rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dULL;
}

static void
mkpkt(struct pkt *p, int family, const uint8_t *src, uint16_t sport, const uint8_t *dst, uint16_t dport)
{
	memset(p, 0, sizeof(*p));
	p->family = (uint8_t)family;
	memcpy(p->src, src, 16);
	memcpy(p->dst, dst, 16);
	p->sport = sport;
	p->dport = dport;
}

/* The same packet travelling the other way. */
static void
reverse(struct pkt *r, const struct pkt *p)
{
	mkpkt(r, p->family, p->dst, p->dport, p->src, p->sport);
}

/* Key number k of a universe: IPv4 for even k, IPv6 for odd k, all distinct. */
static void
key_pkt(struct pkt *p, uint32_t k)
{
	uint8_t src[16] = { 0 }, dst[16] = { 0 };
	int v6 = k & 1;

	if (v6) {
		static const uint8_t pre[4] = { 0x20, 0x01, 0x0d, 0xb8 };

		memcpy(src, pre, 4);
		memcpy(dst, pre, 4);
		src[15] = 1;
		dst[15] = 2;
		src[13] = (uint8_t)(k >> 16);
	} else {
		src[0] = 198; src[1] = 18; src[2] = (uint8_t)(k >> 16); src[3] = 1;
		dst[0] = 198; dst[1] = 19; dst[2] = 0; dst[3] = 1;
	}
	mkpkt(p, v6 ? AF_INET6 : AF_INET, src, (uint16_t)(1024 + (k & 0xffff) / 2 + (k >> 17)), dst, 443);
}

static int
insert(struct flow_table *t, const struct pkt *p, struct flow_ref *ref)
{
	if (FLOW_Lookup(t, p, ref))
		return -1;  /* already there: a test bug */
	return FLOW_Insert(t, p, 1, ref);
}

static void
parse_built(struct pb_spec *s, struct pkt *p)
{
	uint8_t buf[256];
	size_t len = PB_Build(buf, sizeof(buf), s);

	if (len == 0 || PKT_Parse(buf, (uint32_t)len, (uint32_t)len, p) != PKT_TCP)
		abort();
	p->payload = NULL;  /* buf goes away */
}

static void
test_lookup_both_dirs(void)
{
	struct flow_table *t = FLOW_CreateTable(64, seed_a);
	struct pb_spec s4 = PB_Default(AF_INET), s6 = PB_Default(AF_INET6);
	struct pkt c4, r4, c6, r6;
	struct flow_ref ref, ref2;
	uint32_t i4, i6;

	TAP_OK(t != NULL, "create: 64-flow table");
	TAP_OK(FLOW_CreateTable(0, seed_a) == NULL, "create: 0 flows refused");
	TAP_EQ_U(FLOW_Capacity(t), 64, "create: capacity");
	TAP_EQ_U(FLOW_Count(t), 0, "create: empty");

	s4.flags = TCPF_SYN;
	parse_built(&s4, &c4);
	reverse(&r4, &c4);
	TAP_OK(FLOW_Lookup(t, &c4, &ref) == 0, "v4: not found before insert");
	TAP_OK(FLOW_Insert(t, &c4, 1, &ref) == 1, "v4: insert");
	TAP_EQ_U(ref.dir, DIR_TOSERVER, "v4: insert ref dir is toserver for the client's packet");
	i4 = ref.index;
	TAP_OK(memcmp(ref.flow->cli, c4.src, 16) == 0 && memcmp(ref.flow->srv, c4.dst, 16) == 0 &&
	    ref.flow->cport == 40000 && ref.flow->sport == 80, "v4: key in client order");
	TAP_OK(ref.flow->state == TCP_NONE && ref.flow->dir[0].pkts == 0 && !(ref.flow->flags & FL_IPV6),
	    "v4: record zeroed but for key, not FL_IPV6");
	memset(&ref, 0, sizeof(ref));
	TAP_OK(FLOW_Lookup(t, &c4, &ref) == 1 && ref.index == i4 && ref.dir == DIR_TOSERVER &&
	    ref.flow == FLOW_Get(t, i4), "v4: lookup client->server: dir 0, same record");
	memset(&ref, 0, sizeof(ref));
	TAP_OK(FLOW_Lookup(t, &r4, &ref) == 1 && ref.index == i4 && ref.dir == DIR_TOCLIENT,
	    "v4: lookup server->client: dir 1, same record");

	/* Server side inserted first (a SYN-ACK seen first). */
	s6.flags = TCPF_SYN | TCPF_ACK;
	parse_built(&s6, &r6);
	reverse(&c6, &r6);
	TAP_OK(FLOW_Lookup(t, &r6, &ref) == 0 && FLOW_Insert(t, &r6, 0, &ref) == 1, "v6: insert with client = dst");
	i6 = ref.index;
	TAP_EQ_U(ref.dir, DIR_TOCLIENT, "v6: insert ref dir is toclient for the server's packet");
	TAP_OK(ref.flow->flags & FL_IPV6, "v6: FL_IPV6 set");
	TAP_OK(ref.flow->cport == 80 && ref.flow->sport == 40000 && memcmp(ref.flow->cli, r6.dst, 16) == 0,
	    "v6: client is the SYN-ACK's receiver");
	TAP_OK(FLOW_Lookup(t, &c6, &ref) == 1 && ref.index == i6 && ref.dir == DIR_TOSERVER,
	    "v6: lookup client->server: dir 0");
	TAP_OK(FLOW_Lookup(t, &r6, &ref) == 1 && ref.index == i6 && ref.dir == DIR_TOCLIENT,
	    "v6: lookup server->client: dir 1");
	TAP_OK(i4 != i6, "v4 and v6 flows have different records");
	TAP_EQ_U(FLOW_Count(t), 2, "count 2");

	/* Same 16 address bytes and ports, only the family differs: two flows. */
	{
		struct pkt x4, x6;
		struct flow_ref a, b;

		mkpkt(&x6, AF_INET6, c4.src, c4.sport, c4.dst, c4.dport);
		TAP_OK(FLOW_Lookup(t, &x6, &a) == 0, "family: v6 packet with the v4 flow's bytes not found");
		TAP_OK(FLOW_Insert(t, &x6, 1, &a) == 1 && a.index != i4, "family: inserted as its own flow");
		mkpkt(&x4, AF_INET, c4.src, c4.sport, c4.dst, c4.dport);
		TAP_OK(FLOW_Lookup(t, &x4, &b) == 1 && b.index == i4, "family: v4 lookup still finds the v4 flow");
		TAP_OK(FLOW_Lookup(t, &x6, &b) == 1 && b.index == a.index, "family: v6 lookup finds the v6 flow");
		FLOW_Remove(t, a.index);
		TAP_OK(FLOW_Lookup(t, &x6, &b) == 0 && FLOW_Lookup(t, &x4, &b) == 1 && b.index == i4,
		    "family: removing the v6 one leaves the v4 one");
	}

	/* Different port only: distinct. */
	{
		struct pkt o = c4;

		o.sport++;
		TAP_OK(FLOW_Lookup(t, &o, &ref2) == 0, "another source port is another flow");
	}

	FLOW_Remove(t, i4);
	TAP_OK(FLOW_Lookup(t, &c4, &ref) == 0 && FLOW_Lookup(t, &r4, &ref) == 0, "v4: gone after remove, both dirs");
	TAP_OK(FLOW_Lookup(t, &c6, &ref) == 1 && ref.index == i6, "v6: still there");
	TAP_EQ_U(FLOW_Count(t), 1, "count 1 after remove");
	TAP_EQ_S(FLOW_StateName(TCP_ESTABLISHED), "established", "state name established");
	TAP_EQ_S(FLOW_StateName(TCP_SYN_SENT), "syn_sent", "state name syn_sent");
	TAP_EQ_S(FLOW_StateName(TCP_STATE_MAX), "unknown", "state name out of range");
	TAP_OK(FLOW_StateIsEstablished(TCP_ESTABLISHED) && !FLOW_StateIsEstablished(TCP_FIN_WAIT),
	    "only established counts as established");
	FLOW_DestroyTable(t);
}

static void
test_cap(void)
{
	const uint32_t n = 100;
	struct flow_table *t = FLOW_CreateTable(n, seed_a);
	struct flow_ref ref;
	struct pkt p;
	uint32_t ok = 0, idx[100];

	for (uint32_t k = 0; k < n; k++) {
		key_pkt(&p, k);
		if (insert(t, &p, &ref) == 1) {
			idx[k] = ref.index;
			ok++;
		}
	}
	TAP_EQ_U(ok, n, "cap: exactly N inserts accepted");
	TAP_EQ_U(FLOW_Count(t), n, "cap: count N");
	key_pkt(&p, n);
	TAP_OK(insert(t, &p, &ref) == 0, "cap: insert N+1 returns 0");
	TAP_EQ_U(FLOW_Count(t), n, "cap: count still N");
	FLOW_Remove(t, idx[37]);
	TAP_OK(insert(t, &p, &ref) == 1, "cap: after one remove, insert succeeds");
	TAP_EQ_U(ref.index, idx[37], "cap: the freed record is reused");
	key_pkt(&p, 37);
	TAP_OK(insert(t, &p, &ref) == 0, "cap: full again");
	FLOW_DestroyTable(t);
}

/* Random insert/remove against a reference: proves backward-shift deletion never loses a key
 * that probed past a hole, and never leaves a removed one findable. */
static void
test_churn(void)
{
	enum { CAP = 4096, UNIVERSE = 2 * CAP, OPS = 200000 };
	struct flow_table *t = FLOW_CreateTable(CAP, seed_b);
	static int32_t live[UNIVERSE];
	uint32_t nlive = 0, bad_found = 0, bad_missing = 0, bad_full = 0, inserts = 0, removes = 0, fulls = 0;
	struct flow_ref ref;
	struct pkt p, r;

	for (uint32_t k = 0; k < UNIVERSE; k++)
		live[k] = -1;
	for (uint32_t op = 0; op < OPS; op++) {
		uint32_t k = (uint32_t)(rnd() % UNIVERSE);

		key_pkt(&p, k);
		if (live[k] >= 0) {
			/* A live key: found from either side, then removed. */
			reverse(&r, &p);
			if (!FLOW_Lookup(t, (op & 1) ? &r : &p, &ref) || ref.index != (uint32_t)live[k] ||
			    ref.dir != (int)(op & 1))
				bad_missing++;
			FLOW_Remove(t, (uint32_t)live[k]);
			live[k] = -1;
			nlive--;
			removes++;
			if (FLOW_Lookup(t, &p, &ref) || FLOW_Lookup(t, &r, &ref))
				bad_found++;
		} else {
			if (FLOW_Lookup(t, &p, &ref)) {
				bad_found++;
			} else if (FLOW_Insert(t, &p, 1, &ref)) {
				if (nlive == CAP)
					bad_full++;
				live[k] = (int32_t)ref.index;
				nlive++;
				inserts++;
			} else {
				if (nlive != CAP)
					bad_full++;
				fulls++;
			}
		}
		/* A few random probes per op; a full sweep now and then. */
		{
			uint32_t q = (uint32_t)(rnd() % UNIVERSE);
			int f;

			key_pkt(&p, q);
			f = FLOW_Lookup(t, &p, &ref);
			if (live[q] >= 0 && (!f || ref.index != (uint32_t)live[q]))
				bad_missing++;
			if (live[q] < 0 && f)
				bad_found++;
		}
		if (op % 20000 == 19999) {
			for (uint32_t q = 0; q < UNIVERSE; q++) {
				int f;

				key_pkt(&p, q);
				f = FLOW_Lookup(t, &p, &ref);
				if (live[q] >= 0 && (!f || ref.index != (uint32_t)live[q]))
					bad_missing++;
				if (live[q] < 0 && f)
					bad_found++;
			}
			if (FLOW_Count(t) != nlive)
				bad_full++;
		}
	}
	printf("# churn: %u inserts, %u removes, %u refused when full, %u live, max probe %u\n",
	    inserts, removes, fulls, nlive, FLOW_MaxProbe(t));
	TAP_OK(inserts > 50000 && removes > 50000 && fulls > 0, "churn: both operations and the full table were exercised");
	TAP_EQ_U(bad_missing, 0, "churn: every live flow found, at its record, with the right dir");
	TAP_EQ_U(bad_found, 0, "churn: no removed or never-inserted flow found");
	TAP_EQ_U(bad_full, 0, "churn: insert refused exactly when the table is full; count matches");
	TAP_EQ_U(FLOW_Count(t), nlive, "churn: FLOW_Count matches the reference");

	/* Empty it completely: nothing is left behind in the index. */
	for (uint32_t k = 0; k < UNIVERSE; k++)
		if (live[k] >= 0) {
			FLOW_Remove(t, (uint32_t)live[k]);
			live[k] = -1;
		}
	TAP_EQ_U(FLOW_Count(t), 0, "churn: empty after removing all");
	{
		uint32_t found = 0;

		for (uint32_t k = 0; k < UNIVERSE; k++) {
			key_pkt(&p, k);
			found += (uint32_t)FLOW_Lookup(t, &p, &ref);
		}
		TAP_EQ_U(found, 0, "churn: no key found in the emptied table");
	}
	/* And it fills to the cap again. */
	{
		uint32_t ok = 0;

		for (uint32_t k = 0; k < CAP; k++) {
			key_pkt(&p, k);
			ok += (uint32_t)(insert(t, &p, &ref) == 1);
		}
		TAP_EQ_U(ok, CAP, "churn: refills to the cap (free list intact)");
	}
	FLOW_DestroyTable(t);
}

/* The crafted-looking pattern: one destination, sequential source ports over a few sources. */
static void
seq_pkt(struct pkt *p, uint32_t i)
{
	uint8_t src[16] = { 198, 18, 0, 0 }, dst[16] = { 198, 19, 255, 1 };

	src[2] = (uint8_t)(i / 50000);
	src[3] = 1;
	mkpkt(p, AF_INET, src, (uint16_t)(10000 + i % 50000), dst, 443);
}

static uint32_t
fill_seq(struct flow_table *t, uint32_t n)
{
	struct flow_ref ref;
	struct pkt p;
	uint32_t ok = 0;

	for (uint32_t i = 0; i < n; i++) {
		seq_pkt(&p, i);
		ok += (uint32_t)(insert(t, &p, &ref) == 1);
	}
	return ok;
}

static void
test_keyed_hash(void)
{
	enum { N = 100000 };
	struct flow_table *a = FLOW_CreateTable(N, seed_a), *b = FLOW_CreateTable(N, seed_b);
	uint32_t same_id = 0, diff_fp = 0;
	struct flow_ref ra, rb;
	struct pkt p;

	TAP_EQ_U(fill_seq(a, N), N, "hash: 100k sequential flows inserted (seed A)");
	TAP_EQ_U(fill_seq(b, N), N, "hash: 100k sequential flows inserted (seed B)");
	printf("# max probe at 100k sequential flows: seed A %u, seed B %u\n", FLOW_MaxProbe(a), FLOW_MaxProbe(b));
	/* The table is full, at the 0.7 load factor: a uniform hash gives a longest run of about
	 * 80-100 slots there; a hash that sequential addresses could steer would give thousands. */
	TAP_OK(FLOW_MaxProbe(a) < 160 && FLOW_MaxProbe(b) < 160, "hash: max probe < 160 for 100k sequential flows (full table)");
	for (uint32_t i = 0; i < N; i++) {
		seq_pkt(&p, i);
		if (FLOW_Lookup(a, &p, &ra) && FLOW_Lookup(b, &p, &rb) &&
		    FLOW_Id(a, ra.flow) == FLOW_Id(b, rb.flow))
			same_id++;
	}
	TAP_EQ_U(same_id, 0, "hash: flow ids differ between seeds");
	FLOW_DestroyTable(a);
	FLOW_DestroyTable(b);

	/* Slot layout: insert the same keys into many small tables at ~0.7 load; the max probe
	 * after each batch is a fingerprint of where the keys landed. */
	for (uint32_t set = 0; set < 64; set++) {
		struct flow_table *x = FLOW_CreateTable(11, seed_a), *y = FLOW_CreateTable(11, seed_b);

		for (uint32_t i = 0; i < 11; i++) {
			seq_pkt(&p, set * 11 + i);
			insert(x, &p, &ra);
			insert(y, &p, &rb);
		}
		diff_fp += FLOW_MaxProbe(x) != FLOW_MaxProbe(y);
		FLOW_DestroyTable(x);
		FLOW_DestroyTable(y);
	}
	printf("# small tables whose max probe differs between seeds: %u of 64\n", diff_fp);
	TAP_OK(diff_fp > 0, "hash: the seed changes the slot layout");

	/* At the worst load the sizing allows (0.7), probes stay short too. */
	{
		uint32_t n7 = 91750;  /* 91750 * 10 / 7 + 1 = 131072: exactly 0.7 of the index */
		struct flow_table *w = FLOW_CreateTable(n7, seed_a);

		TAP_EQ_U(fill_seq(w, n7), n7, "hash: table at 0.7 load filled");
		/* Random hashing gives about 90-130 here: only a degenerate hash goes far past. */
		printf("# max probe at 0.7 load (%u flows): %u\n", n7, FLOW_MaxProbe(w));
		TAP_OK(FLOW_MaxProbe(w) < 256, "hash: max probe < 256 at 0.7 load");
		FLOW_DestroyTable(w);
	}
}

static void
test_flow_id(void)
{
	struct flow_table *t = FLOW_CreateTable(1000, seed_a);
	struct flow_ref ref, ref2;
	struct pkt p, r;
	uint64_t id, max = 0;
	uint32_t dup = 0, zero = 0;
	static uint64_t ids[1000];

	key_pkt(&p, 5);
	reverse(&r, &p);
	insert(t, &p, &ref);
	id = FLOW_Id(t, ref.flow);
	FLOW_Lookup(t, &r, &ref2);
	TAP_OK(ref2.index == ref.index && FLOW_Id(t, ref2.flow) == id, "id: the reply's lookup gives the same id");
	TAP_OK(FLOW_IdForPacket(t, &p) == FLOW_IdForPacket(t, &r), "id for packet: same both directions");
	TAP_OK(FLOW_IdForPacket(t, &p) == id, "id for packet: equals the id of the flow started at time 0");
	ref.flow->first_seen_cs = 12345;
	TAP_OK(FLOW_Id(t, ref.flow) != id, "id: a later start of the same tuple is another id");
	FLOW_Remove(t, ref.index);

	for (uint32_t k = 0; k < 1000; k++) {
		key_pkt(&p, k);
		insert(t, &p, &ref);
		ids[k] = FLOW_Id(t, ref.flow);
		if (ids[k] > max)
			max = ids[k];
		zero += ids[k] == 0;
	}
	for (uint32_t i = 0; i < 1000; i++)
		for (uint32_t j = i + 1; j < 1000; j++)
			dup += ids[i] == ids[j];
	TAP_OK(max < (1ULL << 51), "id: below 2^51 (max seen %llu)", (unsigned long long)max);
	TAP_OK(max >= (1ULL << 45), "id: uses the upper bits too");
	TAP_EQ_U(zero, 0, "id: never 0");
	TAP_EQ_U(dup, 0, "id: 1000 flows, 1000 distinct ids");
	FLOW_DestroyTable(t);
}

/* Budget: 160 bytes per flow at any cap (records plus the index). */
static void
test_memory(void)
{
	static const uint32_t sizes[] = { 1024, 10000, 12274, 100000, 262144, 1126024 };

	for (unsigned i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		struct flow_table *t = FLOW_CreateTable(sizes[i], seed_a);
		size_t per = FLOW_MemoryBytes(t) / FLOW_Capacity(t);

		printf("# bytes per flow: %zu (%u flows; record %zu, index %zu)\n", per, sizes[i],
		    sizeof(struct flow), per - sizeof(struct flow));
		TAP_OK(per <= 160, "memory: %zu bytes per flow at %u flows, want <= 160", per, sizes[i]);
		FLOW_DestroyTable(t);
	}
}

/* ---- timing wheel ---- */

struct tctx {
	struct flow_table *t;
	uint32_t deadline[32];      /* the flow's real deadline */
	uint32_t fired[32];         /* when it expired, 0 if not */
	uint32_t seen[32];          /* times examined */
	uint32_t last_seen_at[32];  /* due time of the last examination */
};

static uint32_t
due_cb(void *ctx, uint32_t idx, uint32_t now_s)
{
	struct tctx *c = ctx;

	c->seen[idx]++;
	c->last_seen_at[idx] = now_s;
	if ((int32_t)(c->deadline[idx] - now_s) <= 0) {
		c->fired[idx] = now_s;
		FLOW_Remove(c->t, idx);  /* as the engine does: expired means gone */
		return 0;
	}
	return c->deadline[idx];
}

static uint32_t
tnew(struct tctx *c, uint32_t k)
{
	struct flow_ref ref;
	struct pkt p;

	key_pkt(&p, k);
	if (insert(c->t, &p, &ref) != 1)
		abort();
	c->deadline[ref.index] = 0;
	c->fired[ref.index] = 0;
	c->seen[ref.index] = 0;
	return ref.index;
}

static void
tlink(struct tctx *c, struct timer_wheel *w, uint32_t i, uint32_t deadline)
{
	c->deadline[i] = deadline;
	TIMER_Link(w, c->t, i, deadline);
}

static void
test_wheel_deadlines(void)
{
	static struct timer_wheel w;
	struct tctx c;
	uint32_t a, b, x, n;

	memset(&c, 0, sizeof(c));
	c.t = FLOW_CreateTable(32, seed_a);
	TIMER_Init(&w, 0);
	a = tnew(&c, 1);
	b = tnew(&c, 2);
	x = tnew(&c, 3);
	tlink(&c, &w, a, 1);
	tlink(&c, &w, b, 5);
	tlink(&c, &w, x, 2000);  /* beyond one turn */
	TAP_EQ_U(w.linked, 3, "wheel: 3 linked");

	n = TIMER_Advance(&w, c.t, 1, 100, due_cb, &c);
	TAP_OK(n == 1 && c.fired[a] == 1 && !c.fired[b] && !c.fired[x], "wheel: at 1 s only the 1-s flow expires");
	TAP_EQ_U(w.now_s, 1, "wheel: now 1");
	n = TIMER_Advance(&w, c.t, 4, 100, due_cb, &c);
	TAP_OK(n == 0 && !c.fired[b], "wheel: nothing due at 2..4 s");
	TIMER_Advance(&w, c.t, 5, 100, due_cb, &c);
	TAP_OK(c.fired[b] == 5 && c.seen[b] == 1, "wheel: 5-s flow expires at 5 s, examined once");
	TIMER_Advance(&w, c.t, 1022, 100, due_cb, &c);
	TAP_OK(c.seen[x] == 0, "wheel: 2000-s flow untouched until its clamped slot");
	TIMER_Advance(&w, c.t, 1023, 100, due_cb, &c);
	TAP_OK(c.seen[x] == 1 && c.last_seen_at[x] == 1023 && !c.fired[x] && w.linked == 1,
	    "wheel: 2000-s flow examined once at 1023 s and re-linked");
	TIMER_Advance(&w, c.t, 1999, 100, due_cb, &c);
	TAP_OK(!c.fired[x] && c.seen[x] == 1, "wheel: not due at 1999 s");
	TIMER_Advance(&w, c.t, 2000, 100, due_cb, &c);
	TAP_OK(c.fired[x] == 2000 && c.seen[x] == 2, "wheel: 2000-s flow expires at 2000 s");
	TAP_EQ_U(w.linked, 0, "wheel: nothing linked at the end");
	TAP_EQ_U(FLOW_Count(c.t), 0, "wheel: the callback removed every expired flow");

	/* A deadline in the past goes to the next slot; a large jump with nothing linked is free. */
	a = tnew(&c, 4);
	tlink(&c, &w, a, 10);
	n = TIMER_Advance(&w, c.t, 2001, 100, due_cb, &c);
	TAP_OK(n == 1 && c.fired[a] == 2001, "wheel: a past deadline expires on the next second");
	n = TIMER_Advance(&w, c.t, 500000, 100, due_cb, &c);
	TAP_OK(n == 0 && w.now_s == 500000, "wheel: empty wheel jumps over idle time");

	/* Jumping far ahead with a flow linked visits each second up to it, once. */
	a = tnew(&c, 5);
	tlink(&c, &w, a, 500000 + 3000);
	n = TIMER_Advance(&w, c.t, 500000 + 5000, 100, due_cb, &c);
	TAP_OK(c.fired[a] == 503000 && n == c.seen[a] && c.seen[a] <= 4,
	    "wheel: a long jump expires a 3000-s deadline at its second (%u examinations)", c.seen[a]);

	/* Unlink from the middle of a slot's list. */
	a = tnew(&c, 6);
	b = tnew(&c, 7);
	x = tnew(&c, 8);
	tlink(&c, &w, a, w.now_s + 7);
	tlink(&c, &w, b, w.now_s + 7);
	tlink(&c, &w, x, w.now_s + 7);
	TIMER_Unlink(&w, c.t, b);
	TAP_EQ_U(w.linked, 2, "wheel: unlink leaves 2");
	TIMER_Advance(&w, c.t, w.now_s + 7, 100, due_cb, &c);
	TAP_OK(c.fired[a] && c.fired[x] && !c.fired[b] && c.seen[b] == 0, "wheel: unlinked flow never examined");
	TAP_EQ_U(w.linked, 0, "wheel: empty again");
	FLOW_DestroyTable(c.t);
}

static void
test_wheel_budget(void)
{
	static struct timer_wheel w;
	struct tctx c;
	uint32_t n, fired = 0;

	memset(&c, 0, sizeof(c));
	c.t = FLOW_CreateTable(32, seed_a);
	TIMER_Init(&w, 0);
	for (uint32_t k = 0; k < 10; k++)
		tlink(&c, &w, tnew(&c, k), 3);
	n = TIMER_Advance(&w, c.t, 3, 4, due_cb, &c);
	TAP_OK(n == 4 && w.now_s == 2 && FLOW_Count(c.t) == 6, "budget: 4 of 10 examined, slot 3 not finished");
	n = TIMER_Advance(&w, c.t, 3, 4, due_cb, &c);
	TAP_OK(n == 4 && w.now_s == 2 && FLOW_Count(c.t) == 2, "budget: next call resumes, 4 more");
	n = TIMER_Advance(&w, c.t, 3, 4, due_cb, &c);
	TAP_OK(n == 2 && w.now_s == 3 && FLOW_Count(c.t) == 0, "budget: last 2, slot done");
	for (uint32_t i = 0; i < 32; i++)
		fired += c.fired[i] == 3;
	TAP_EQ_U(fired, 10, "budget: all 10 expired at 3 s");

	/* Across slots: 3 at 5 s and 3 at 6 s, budget 4. */
	memset(c.fired, 0, sizeof(c.fired));
	for (uint32_t k = 0; k < 3; k++)
		tlink(&c, &w, tnew(&c, 100 + k), 5);
	for (uint32_t k = 0; k < 3; k++)
		tlink(&c, &w, tnew(&c, 200 + k), 6);
	n = TIMER_Advance(&w, c.t, 8, 4, due_cb, &c);
	TAP_OK(n == 4 && w.now_s == 5 && FLOW_Count(c.t) == 2, "budget: slot 5 done, one of slot 6, stops there");
	n = TIMER_Advance(&w, c.t, 8, 4, due_cb, &c);
	TAP_OK(n == 2 && w.now_s == 8 && FLOW_Count(c.t) == 0, "budget: the rest on the next call, caught up to 8 s");
	fired = 0;
	for (uint32_t i = 0; i < 32; i++)
		fired += c.fired[i] == 5 || c.fired[i] == 6;
	TAP_EQ_U(fired, 6, "budget: every flow expired at its own second");
	FLOW_DestroyTable(c.t);
}

static void
test_wheel_soonest(void)
{
	static struct timer_wheel w;
	static const uint32_t dl[] = { 1010, 2000, 1500, 1001, 1010, 1700, 1022, 1023, 1024, 1025 };
	enum { N = sizeof(dl) / sizeof(dl[0]) };
	struct tctx c;
	uint32_t out[32], n, ordered = 1;

	memset(&c, 0, sizeof(c));
	c.t = FLOW_CreateTable(32, seed_a);
	TIMER_Init(&w, 1000);  /* slots wrap past 1023 within the span */
	for (uint32_t k = 0; k < N; k++)
		tlink(&c, &w, tnew(&c, k), dl[k]);
	n = TIMER_Soonest(&w, c.t, out, 32);
	TAP_EQ_U(n, N, "soonest: every linked flow returned");
	for (uint32_t i = 1; i < n; i++)
		if (c.deadline[out[i]] < c.deadline[out[i - 1]])
			ordered = 0;
	TAP_OK(ordered, "soonest: in deadline order across slots and the wrap");
	TAP_EQ_U(c.deadline[out[0]], 1001, "soonest: first is the 1001-s flow");
	TAP_EQ_U(c.deadline[out[n - 1]], 2000, "soonest: last is the 2000-s flow");
	n = TIMER_Soonest(&w, c.t, out, 3);
	TAP_OK(n == 3 && c.deadline[out[0]] == 1001 && c.deadline[out[1]] == 1010 && c.deadline[out[2]] == 1010,
	    "soonest: max bounds the output, still the soonest");
	TIMER_Advance(&w, c.t, 1010, 100, due_cb, &c);
	n = TIMER_Soonest(&w, c.t, out, 32);
	TAP_OK(n == N - 3 && c.deadline[out[0]] == 1022, "soonest: after advancing, starts after now");
	FLOW_DestroyTable(c.t);
}

/* Issue 14: addresses crafted to collide. An attacker who knew the key could pick tuples whose
 * home slots all fall in a few slots and turn every lookup into a long scan. Here 1000 tuples
 * are searched (by brute force) whose home slot under seed A lies in the first 32 of the index
 * of a 65536-flow table: in that table the longest run is then about 1000 slots (the attack
 * works against a known key). The daemon's key is random per start, so the attacker's tuples
 * meet another key: inserted into a table with seed B they scatter, the longest probe stays
 * short (a 1 % load gives runs of a few slots; the bound is 32, a thirtieth of the attack's). */
static void
test_crafted_collisions(void)
{
	enum { CAP = 65536, K = 1000, WIN = 32 };
	struct flow_table *a = FLOW_CreateTable(CAP, seed_a), *b = FLOW_CreateTable(CAP, seed_b);
	static struct pkt crafted[K];
	const uint8_t dst[16] = { 198, 18, 3, 2 };
	uint32_t found = 0, nslots = CAP * 10 / 7 + 1;
	uint64_t tries = 0;
	struct flow_ref r;

	while (found < K && tries < 200000000ULL) {
		uint64_t x = rnd();
		uint8_t src[16] = { 198, 19, (uint8_t)(x >> 8), (uint8_t)x };
		struct pkt p;

		mkpkt(&p, AF_INET, src, (uint16_t)(1024 + (x >> 16) % 64000), dst, 443);
		tries++;
		if ((uint32_t)(((uint64_t)FLOW_Hash(a, &p) * nslots) >> 32) < WIN)
			crafted[found++] = p;
	}
	printf("# crafted %u colliding tuples for seed A in %llu tries\n", found, (unsigned long long)tries);
	TAP_EQ_U(found, K, "collisions: 1000 tuples crafted to share 32 home slots under seed A");
	for (uint32_t i = 0; i < found; i++) {
		insert(a, &crafted[i], &r);
		insert(b, &crafted[i], &r);
	}
	printf("# max probe for the crafted tuples: seed A (known to the attacker) %u, seed B %u\n",
	       FLOW_MaxProbe(a), FLOW_MaxProbe(b));
	TAP_OK(FLOW_MaxProbe(a) > K - WIN - 1, "collisions: under the key they were crafted for, one long run");
	TAP_OK(FLOW_MaxProbe(b) < 32, "collisions: under another key the crafted tuples scatter (max probe < 32)");
	{
		uint32_t again = 0;

		for (uint32_t i = 0; i < found; i++)
			again += FLOW_Lookup(b, &crafted[i], &r) != 0;
		TAP_EQ_U(again, found, "collisions: every crafted tuple found again under seed B");
	}
	FLOW_DestroyTable(a);
	FLOW_DestroyTable(b);
}

int
main(void)
{
	test_lookup_both_dirs();
	test_cap();
	test_churn();
	test_keyed_hash();
	test_flow_id();
	test_memory();
	test_wheel_deadlines();
	test_wheel_budget();
	test_wheel_soonest();
	test_crafted_collisions();
	return tap_done();
}
