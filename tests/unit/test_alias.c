/* The NAT alias table: find by the directional tuple, one alias per flow, the cap, removal with
 * backward shift under churn (checked against a plain model), stale flows. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "../../src/alias.h"
#include "tap.h"

static struct alias
mk(uint32_t i, uint32_t flow)
{
	struct alias a;

	memset(&a, 0, sizeof(a));
	a.family = AF_INET;
	a.src[0] = 198; a.src[1] = 18; a.src[2] = 2; a.src[3] = 2;     /* the server */
	a.dst[0] = 198; a.dst[1] = 18; a.dst[2] = 2; a.dst[3] = 1;     /* the gateway */
	a.sport = 80;
	a.dport = (uint16_t)(20000 + i % 10000);
	a.dst[3] = (uint8_t)(1 + i / 10000);
	a.osrc[0] = 198; a.osrc[1] = 18; a.osrc[2] = 1; a.osrc[3] = 2;
	memcpy(a.odst, a.src, 16);
	a.osport = (uint16_t)(40000 + i % 20000);
	a.odport = 80;
	a.flow_idx = flow;
	a.flow_start_cs = 100 + i;
	a.ct_id = i;
	return a;
}

static const struct alias *
find(const struct alias_table *t, const struct alias *a)
{
	return ALIAS_Find(t, a->family, a->src, a->sport, a->dst, a->dport);
}

int
main(void)
{
	uint8_t seed[16] = { 1, 2, 3 };
	struct alias_table *t = ALIAS_Create(4, 16, seed);
	struct alias a = mk(1, 3), b = mk(2, 5), c;
	const struct alias *r;

	TAP_OK(ALIAS_Create(0, 16, seed) == NULL && ALIAS_Create(4, 0, seed) == NULL, "create: zero sizes refused");
	TAP_OK(t != NULL, "create");
	TAP_OK(find(t, &a) == NULL, "empty: no alias");
	TAP_OK(ALIAS_Add(t, &a) == 1, "add");
	r = find(t, &a);
	TAP_OK(r && r->flow_idx == 3 && r->ct_id == 1 && r->in_use, "find by the reply tuple");
	TAP_OK(ALIAS_Find(t, AF_INET, a.dst, a.dport, a.src, a.sport) == NULL, "the reversed tuple is another key");
	TAP_OK(ALIAS_Find(t, AF_INET6, a.src, a.sport, a.dst, a.dport) == NULL, "another family is another key");
	TAP_OK(ALIAS_OfFlow(t, 3, a.flow_start_cs) == r, "of flow");
	TAP_OK(ALIAS_OfFlow(t, 3, a.flow_start_cs + 1) == NULL, "of flow: a reused record does not match");
	TAP_OK(ALIAS_OfFlow(t, 99, 0) == NULL, "of flow: out of range");
	c = a;
	c.flow_idx = 4;
	c.ct_id = 7;
	TAP_OK(ALIAS_Add(t, &c) == 1 && ALIAS_Count(t) == 1 && find(t, &a)->flow_idx == 4 &&
	       ALIAS_OfFlow(t, 3, a.flow_start_cs) == NULL, "same key again: replaced, the old flow loses it");
	c = b;
	c.flow_idx = 4;
	TAP_OK(ALIAS_Add(t, &c) == 1 && ALIAS_Count(t) == 1 && find(t, &a) == NULL && find(t, &b) != NULL,
	       "same flow, another key: replaced");
	ALIAS_DropFlow(t, 4);
	TAP_OK(ALIAS_Count(t) == 0 && find(t, &b) == NULL, "drop flow");
	ALIAS_DropFlow(t, 4);
	ALIAS_DropFlow(t, 1000);
	TAP_OK(ALIAS_Count(t) == 0, "drop flow without alias, out of range: nothing");
	for (uint32_t i = 0; i < 4; i++) {
		c = mk(i, i);
		ALIAS_Add(t, &c);
	}
	c = mk(9, 9);
	TAP_OK(ALIAS_Count(t) == 4 && ALIAS_Add(t, &c) == 0 && find(t, &c) == NULL, "full: refused, nothing evicted");
	c = mk(9, 99);
	TAP_OK(ALIAS_Add(t, &c) == 0, "flow index out of range refused");
	ALIAS_Destroy(t);
	ALIAS_Destroy(NULL);

	/* Churn against a model: 20000 operations on a table of 512 for 1024 flows. */
	{
		enum { CAP = 512, FLOWS = 1024 };
		int have[FLOWS] = { 0 };
		uint32_t key_of[FLOWS] = { 0 }, n = 0, bad = 0;

		t = ALIAS_Create(CAP, FLOWS, seed);
		srandom(7);
		for (int op = 0; op < 20000; op++) {
			uint32_t fl = (uint32_t)random() % FLOWS, k = (uint32_t)random() % 50000;

			if (have[fl] && random() % 2) {
				ALIAS_DropFlow(t, fl);
				have[fl] = 0;
				n--;
				continue;
			}
			if (have[fl] || n < CAP) {
				int dup = 0;

				for (uint32_t g = 0; g < FLOWS; g++)
					if (have[g] && key_of[g] == k && g != fl)
						dup = 1;
				if (dup)
					continue;
				c = mk(k, fl);
				if (ALIAS_Add(t, &c) != 1)
					bad++;
				if (!have[fl])
					n++;
				have[fl] = 1;
				key_of[fl] = k;
			}
		}
		for (uint32_t g = 0; g < FLOWS; g++) {
			c = mk(key_of[g], g);
			r = find(t, &c);
			if (have[g] ? (r == NULL || r->flow_idx != g || ALIAS_OfFlow(t, g, c.flow_start_cs) != r)
				    : (ALIAS_OfFlow(t, g, c.flow_start_cs) != NULL))
				bad++;
		}
		TAP_OK(bad == 0 && ALIAS_Count(t) == n, "churn: table agrees with the model (%u aliases)", n);
		TAP_OK(ALIAS_MemoryBytes(t) > 0 && ALIAS_Capacity(t) == CAP, "memory and capacity");
		ALIAS_Destroy(t);
	}
	return tap_done();
}
