/* Control queries answered by the engine (ENG_PostQuery / ENG_ServeQuery): the filters, the
 * limit keeping the most recent flows, bounded chunks, the learnt-timeouts copy; and what one
 * chunk costs on a large table (printed, not asserted: machines differ). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "engine.h"
#include "flow.h"
#include "pktbuild.h"
#include "tap.h"

#define MS 1000000ULL

static const uint8_t seed[16] = { 7 };

/* A SYN from 198.18.1.x:sport to 198.18.3.2:port at t ms. */
static void
syn(struct engine *e, uint64_t base, uint64_t t_ms, unsigned host, uint16_t sport, uint16_t port)
{
	struct engine_time now = { base + t_ms * MS, 1800000000ULL * 1000000000ULL + t_ms * MS };
	struct pb_spec s = PB_Default(AF_INET);
	char src[32];
	uint8_t buf[128];
	size_t len;

	snprintf(src, sizeof(src), "198.18.1.%u", host);
	s.src = src;
	s.sport = sport;
	s.dport = port;
	s.flags = TCPF_SYN;
	s.seq = 1000;
	len = PB_Build(buf, sizeof(buf), &s);
	ENG_SetTime(e, &now);
	ENG_Packet(e, buf, (uint32_t)len, (uint32_t)len, ENG_NO_ID);
}

/* Serve q until done; returns the number of calls. */
static uint64_t total_ns;
static uint64_t call_ns[1 << 17];
static unsigned ncall;

static int
by_ns(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* The 99th percentile of the last serve's calls (scheduling noise on a shared machine makes
 * the maximum meaningless). */
static double
p99_us(void)
{
	qsort(call_ns, ncall, sizeof(call_ns[0]), by_ns);
	return ncall ? call_ns[ncall * 99 / 100] / 1000.0 : 0;
}

static unsigned
serve(struct engine *e, struct eng_query *q, uint64_t *max_ns)
{
	unsigned calls = 0;

	total_ns = 0;
	ncall = 0;
	*max_ns = 0;
	while (!atomic_load(&q->done) && calls < 100000) {
		struct timespec a, b;
		uint64_t ns;

		clock_gettime(CLOCK_MONOTONIC, &a);
		ENG_ServeQuery(e);
		clock_gettime(CLOCK_MONOTONIC, &b);
		ns = (uint64_t)(b.tv_sec - a.tv_sec) * 1000000000ULL + (uint64_t)(b.tv_nsec - a.tv_nsec);
		if (ns > *max_ns)
			*max_ns = ns;
		total_ns += ns;
		if (ncall < sizeof(call_ns) / sizeof(call_ns[0]))
			call_ns[ncall++] = ns;
		calls++;
	}
	return calls;
}

static void
query_flows(struct eng_query *q, uint32_t limit)
{
	memset(q, 0, sizeof(*q));
	q->kind = ENG_Q_FLOWS;
	q->state = -1;
	q->limit = limit;
}

int
main(void)
{
	struct config cfg;
	struct engine *e;
	struct engine_time start = { 5 * 1000000000ULL, 1800000000ULL * 1000000000ULL };
	struct eng_query *q = calloc(1, sizeof(*q));
	uint64_t max_ns;
	unsigned calls, n = 3000;
	int ordered = 1;

	CFG_SetDefaults(&cfg);
	e = ENG_Create(&cfg, 4096, NULL, seed, &start);
	if (e == NULL || q == NULL)
		return 1;
	/* n flows, one per ms: flow i from host 1 + i % 200, port 10000 + i, to port 80 (443 for the
	 * last one). */
	for (unsigned i = 0; i < n; i++)
		syn(e, start.mono_ns, i, 1 + i % 200, (uint16_t)(10000 + i), i == n - 1 ? 443 : 80);
	TAP_EQ_U(ENG_NextDueMs(e) == 0, 0, "no query: nothing due");

	query_flows(q, 10);
	ENG_PostQuery(e, q);
	TAP_EQ_U(ENG_NextDueMs(e), 0, "a posted query makes the engine due at once");
	calls = serve(e, q, &max_ns);
	/* n flows to examine, each newer than the last: every one is copied (ENG_QUERY_COPIES a
	 * call); then the empty rest of the table, ENG_QUERY_CHUNK records a call. */
	TAP_OK(calls >= (n + ENG_QUERY_COPIES - 1) / ENG_QUERY_COPIES &&
	       calls <= (n + ENG_QUERY_COPIES - 1) / ENG_QUERY_COPIES + (4096 - n + ENG_QUERY_CHUNK - 1) / ENG_QUERY_CHUNK + 1,
	       "the table is examined in bounded chunks (records and copies): %u calls", calls);
	TAP_EQ_U(q->matched, n, "every flow matched");
	TAP_EQ_U(q->n, 10, "limit 10: 10 listed");
	/* The 10 most recent are ports 10000 + n - 10 .. 10000 + n - 1, in any order in the heap. */
	for (uint32_t i = 0; i < q->n; i++)
		if (q->flows[i].cport < 10000 + n - 10)
			ordered = 0;
	TAP_OK(ordered, "the 10 listed are the 10 most recent");
	TAP_OK(ENG_NextDueMs(e) != 0, "an answered query is no longer due");
	ENG_ServeQuery(e);   /* nothing posted: harmless */

	query_flows(q, 1000);
	q->port = 443;
	ENG_PostQuery(e, q);
	serve(e, q, &max_ns);
	TAP_OK(q->matched == 1 && q->n == 1 && q->flows[0].sport == 443 && q->flows[0].cport == 10000 + n - 1,
	       "port filter (either end)");
	TAP_OK(q->flows[0].state == TCP_SYN_SENT && q->flows[0].dir[0].ttl_base == 64 && q->flows[0].dir[0].pkts == 1,
	       "a listed flow's state, TTL baseline and packets");

	query_flows(q, 1000);
	q->ip_family = AF_INET;
	inet_pton(AF_INET, "198.18.1.7", q->ip);
	ENG_PostQuery(e, q);
	serve(e, q, &max_ns);
	TAP_EQ_U(q->matched, n / 200, "address filter: the flows of one host");
	query_flows(q, 1000);
	q->ip_family = AF_INET6;
	inet_pton(AF_INET6, "2001:db8:1::2", q->ip);
	ENG_PostQuery(e, q);
	serve(e, q, &max_ns);
	TAP_EQ_U(q->matched, 0, "an IPv6 address matches no IPv4 flow");
	query_flows(q, 1000);
	q->state = TCP_ESTABLISHED;
	ENG_PostQuery(e, q);
	serve(e, q, &max_ns);
	TAP_EQ_U(q->matched, 0, "state filter: no established flow");

	memset(q, 0, sizeof(*q));
	q->kind = ENG_Q_TIMEOUTS;
	ENG_PostQuery(e, q);
	TAP_EQ_U(serve(e, q, &max_ns), 1, "timeouts are answered in one call");
	TAP_EQ_U(q->nnets, 0, "nothing learnt yet");
	ENG_Destroy(e);

	/* A large table: the cost of one chunk. */
	e = ENG_Create(&cfg, 262144, NULL, seed, &start);
	for (unsigned i = 0; i < 200000; i++)
		syn(e, start.mono_ns, 1000 + i / 100, 1 + i % 250, (uint16_t)(1024 + i / 250), (uint16_t)(80 + i % 7));
	query_flows(q, 1000);
	ENG_PostQuery(e, q);
	calls = serve(e, q, &max_ns);
	TAP_OK(q->matched >= 190000 && q->n == 1000, "200000 flows: 1000 most recent listed (%u matched)", q->matched);
	printf("# 262144-record table, 200000 flows, limit 1000: %u calls, %.1f us each on average, 99th percentile %.1f us\n",
	       calls, total_ns / 1000.0 / calls, p99_us());
	query_flows(q, 1000);
	ENG_PostQuery(e, q);
	calls = serve(e, q, &max_ns);
	printf("# again (memory warm): %u calls, %.1f us each on average, 99th percentile %.1f us\n",
	       calls, total_ns / 1000.0 / calls, p99_us());
	query_flows(q, 10);
	q->port = 443;
	ENG_PostQuery(e, q);
	calls = serve(e, q, &max_ns);
	printf("# a filter that matches nothing: %u calls, %.1f us each on average, 99th percentile %.1f us\n",
	       calls, total_ns / 1000.0 / calls, p99_us());
	ENG_Destroy(e);
	CFG_Free(&cfg);
	free(q);
	return tap_done();
}
