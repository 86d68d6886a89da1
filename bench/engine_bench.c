/* Engine benchmark: the daemon's own per-packet path (parse -> flow lookup/update -> analysis ->
 * decision) without the kernel, on synthetic packet streams over many concurrent flows.
 * Reports nanoseconds per packet and bytes per flow, and how both grow with the flow count.
 *
 *   bench/engine_bench [-f FLOWS]... [-p PACKETS] [-6 PERCENT] [-r ROUNDS] [-e EVIDENCE_DIR]
 *
 * -e: evidence captures on (evidence.dir, default ring), to measure the per-packet recording.
 *
 * Each run opens FLOWS connections (three-way handshakes), then sends PACKETS data/ACK packets to
 * flows picked at random (the steady state a gateway sees), then churns: closes (FIN or RST) and
 * replaces flows. Steady-state packets are generated ahead, untimed; the timed loop copies each
 * batch into a receive buffer (measured alone and subtracted) and hands it to the engine. */
#include <arpa/inet.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>

#include "config.h"
#include "engine.h"
#include "flow.h"
#include "event.h"
#include "evidence.h"

#define PKT_LEN 72   /* IPv4 20 + TCP 20 + 12 bytes of options + 20 bytes of payload; IPv6 is longer */

struct gen {
	uint8_t v4[128], v6[128];
	uint32_t len4, len6;
	uint64_t rng;
	int v6_percent;
};

static inline uint64_t
rnd(struct gen *g)
{
	/* xorshift64*: fast and good enough to pick flows */
	g->rng ^= g->rng >> 12;
	g->rng ^= g->rng << 25;
	g->rng ^= g->rng >> 27;
	return g->rng * 2685821657736338717ULL;
}

static uint16_t
csum_dummy(void)
{
	return 0;  /* the engine never checks checksums (GSO packets do not have them) */
}

/* Templates: a TCP segment with the timestamps option and 20 bytes of payload. */
static void
make_templates(struct gen *g)
{
	uint8_t *p = g->v4;

	memset(g->v4, 0, sizeof(g->v4));
	p[0] = 0x45; p[6] = 0x40; p[8] = 64; p[9] = 6;
	g->len4 = 20 + 32 + 20;
	p[2] = (uint8_t)(g->len4 >> 8); p[3] = (uint8_t)g->len4;
	p[12] = 198; p[13] = 18; p[16] = 198; p[17] = 19;
	p[20 + 12] = 8 << 4;                   /* data offset 32 bytes */
	p[20 + 14] = 0xff; p[20 + 15] = 0xff;  /* window */
	p[20 + 20] = 1; p[20 + 21] = 1; p[20 + 22] = 8; p[20 + 23] = 10;  /* NOP NOP TS */
	(void)csum_dummy();

	p = g->v6;
	memset(g->v6, 0, sizeof(g->v6));
	p[0] = 0x60;
	g->len6 = 40 + 32 + 20;
	p[4] = 0; p[5] = (uint8_t)(32 + 20);
	p[6] = 6; p[7] = 64;
	p[8] = 0x20; p[9] = 0x01; p[10] = 0x0d; p[11] = 0xb8;
	p[24] = 0x20; p[25] = 0x01; p[26] = 0x0d; p[27] = 0xb8; p[39] = 1;
	p[40 + 12] = 8 << 4;
	p[40 + 14] = 0xff; p[40 + 15] = 0xff;
	p[40 + 20] = 1; p[40 + 21] = 1; p[40 + 22] = 8; p[40 + 23] = 10;
}

static inline void
put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}

/* Packet `kind` of flow number n, client->server when to_server. Returns the buffer. */
static const uint8_t *
build_into(struct gen *g, uint8_t *out, uint32_t n, int to_server, uint8_t flags, uint32_t seq, uint32_t ack,
	   int payload, uint32_t *len)
{
	int v6 = (int)(n % 100) < g->v6_percent;
	uint8_t *p = out ? out : v6 ? g->v6 : g->v4;
	uint32_t l3 = v6 ? 40 : 20, total = l3 + 32 + (payload ? 20 : 0);
	uint8_t *cli, *srv, *t = p + l3;
	uint16_t cport = (uint16_t)(1024 + (n & 0xffff) % 60000), sport = 80;
	uint32_t host = n / 60000;   /* spread flows over client addresses */

	if (out)
		memcpy(out, v6 ? g->v6 : g->v4, v6 ? g->len6 : g->len4);

	if (v6) {
		p[4] = (uint8_t)((total - 40) >> 8); p[5] = (uint8_t)(total - 40);
		cli = to_server ? p + 8 : p + 24;
		srv = to_server ? p + 24 : p + 8;
		memset(cli, 0, 16); cli[0] = 0x20; cli[1] = 0x01; cli[2] = 0x0d; cli[3] = 0xb8;
		put32(cli + 12, host + 1);
		memset(srv, 0, 16); srv[0] = 0x20; srv[1] = 0x01; srv[2] = 0x0d; srv[3] = 0xb8; srv[4] = 3; srv[15] = 2;
	} else {
		p[2] = (uint8_t)(total >> 8); p[3] = (uint8_t)total;
		cli = to_server ? p + 12 : p + 16;
		srv = to_server ? p + 16 : p + 12;
		cli[0] = 198; cli[1] = 18; cli[2] = (uint8_t)(host >> 8); cli[3] = (uint8_t)host;
		srv[0] = 198; srv[1] = 19; srv[2] = 3; srv[3] = 2;
		p[4] = (uint8_t)(seq >> 8); p[5] = (uint8_t)seq;   /* IP ID moves like a counter */
	}
	t[0] = (uint8_t)((to_server ? cport : sport) >> 8); t[1] = (uint8_t)(to_server ? cport : sport);
	t[2] = (uint8_t)((to_server ? sport : cport) >> 8); t[3] = (uint8_t)(to_server ? sport : cport);
	put32(t + 4, seq);
	put32(t + 8, ack);
	t[13] = flags;
	put32(t + 24, seq);   /* TSval */
	*len = total;
	return p;
}

static const uint8_t *
build(struct gen *g, uint32_t n, int to_server, uint8_t flags, uint32_t seq, uint32_t ack, int payload, uint32_t *len)
{
	return build_into(g, NULL, n, to_server, flags, seq, ack, payload, len);
}

/* The daemon's default receive batch (queue.batch). */
#define BATCH 64

/* Per-flow sequence numbers of the generator, both directions in one 8-byte entry. */
struct seqpair {
	uint32_t c, s;
};

/* Packets are generated ahead, a chunk at a time and untimed, into a stream that the timed loop
 * then delivers batch by batch: at millions of flows the generator's own cache misses (its
 * per-flow state) would otherwise overlap with the engine's and could not be subtracted. */
#define CHUNK (1u << 14)
#define SLOT 128

struct stream {
	uint8_t *pkts;          /* CHUNK packets of at most SLOT bytes */
	uint32_t *lens;
};

static void
generate(struct gen *g, uint32_t flows, struct seqpair *seq, struct stream *st, uint32_t count)
{
	for (uint32_t i = 0; i + 1 < count; i += 2) {
		uint32_t n = (uint32_t)(rnd(g) % flows);
		struct seqpair *q = &seq[n];

		build_into(g, st->pkts + (size_t)i * SLOT, n, 1, 0x18, q->c, q->s, 1, &st->lens[i]);
		q->c += 20;
		build_into(g, st->pkts + (size_t)(i + 1) * SLOT, n, 0, 0x10, q->s, q->c, 0, &st->lens[i + 1]);
	}
}

/* Deliver one batch of the stream at first: copy it into the receive buffer, as the kernel does
 * into the daemon's, then mode 0: nothing more (the delivery's own cost); 1: the engine one
 * packet at a time; 2: the engine's three-step batch API, as the daemon uses it. */
static uint64_t
deliver_batch(struct engine *e, const struct stream *st, uint32_t first, int mode)
{
	static uint8_t rbuf[BATCH * SLOT];
	static struct eng_prep pp[BATCH];
	const uint32_t *lens = st->lens + first;
	uint64_t sink = 0;

	memcpy(rbuf, st->pkts + (size_t)first * SLOT, sizeof(rbuf));
	if (mode == 0) {
		for (int b = 0; b < BATCH; b++)
			sink += rbuf[b * SLOT + lens[b] - 1];
	} else if (mode == 1) {
		for (int b = 0; b < BATCH; b++)
			sink += ENG_Packet(e, rbuf + b * SLOT, lens[b], lens[b], ENG_NO_ID);
	} else {
		for (int b = 0; b < BATCH; b++)
			ENG_Prepare(e, rbuf + b * SLOT, lens[b], lens[b], &pp[b]);
		for (int b = 0; b < BATCH; b++)
			ENG_Prefetch(e, &pp[b]);
		for (int b = 0; b < BATCH; b++)
			sink += ENG_PacketPrepared(e, &pp[b], ENG_NO_ID);
	}
	return sink;
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

struct result {
	uint32_t flows;
	double ns_open, ns_steady, ns_batch, ns_churn, ns_delivery;
	double batch_min, batch_max;
	double bytes_per_flow;
	uint64_t packets;
};

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double
median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

#define MAX_ROUNDS 15

static void
run(uint32_t flows, uint64_t packets, int v6_percent, int rounds, struct result *res)
{
	struct config cfg;
	struct engine *e;
	struct engine_time t = { .mono_ns = 1000000000000ULL, .real_ns = 1764072000000000000ULL };
	struct engine_stats st;
	struct gen g = { .rng = 0x9e3779b97f4a7c15ULL, .v6_percent = v6_percent };
	struct stream stream;
	uint64_t ticks = 0;
	uint8_t seed[16] = "bench-seed-12345";
	uint32_t len;
	struct seqpair *seq;
	double t0, t1, ns[3][MAX_ROUNDS], net[MAX_ROUNDS];
	uint64_t sink = 0, per_round = packets / (uint64_t)rounds;

	CFG_SetDefaults(&cfg);
	cfg.flows_max = flows + flows / 8 + 1024;
	if (EVD_Enabled()) {
		free(cfg.evidence_dir);
		cfg.evidence_dir = strdup("bench");   /* any non-empty name: the ring is made */
	}
	make_templates(&g);
	seq = calloc(flows, sizeof(*seq));
	stream.pkts = malloc((size_t)CHUNK * SLOT);
	stream.lens = malloc(CHUNK * sizeof(uint32_t));
	e = ENG_Create(&cfg, cfg.flows_max, NULL, seed, &t);
	if (e == NULL || seq == NULL || stream.pkts == NULL || stream.lens == NULL) {
		fprintf(stderr, "cannot allocate %u flows\n", flows);
		exit(1);
	}

	/* Open every flow: SYN, SYN-ACK, ACK. */
	t0 = now_s();
	for (uint32_t n = 0; n < flows; n++) {
		const uint8_t *p;

		seq[n].c = (uint32_t)rnd(&g);
		seq[n].s = (uint32_t)rnd(&g);
		p = build(&g, n, 1, 0x02, seq[n].c, 0, 0, &len);
		sink += ENG_Packet(e, p, len, len, ENG_NO_ID);
		p = build(&g, n, 0, 0x12, seq[n].s, seq[n].c + 1, 0, &len);
		sink += ENG_Packet(e, p, len, len, ENG_NO_ID);
		seq[n].c++; seq[n].s++;
		p = build(&g, n, 1, 0x10, seq[n].c, seq[n].s, 0, &len);
		sink += ENG_Packet(e, p, len, len, ENG_NO_ID);
	}
	t1 = now_s();
	res->ns_open = (t1 - t0) * 1e9 / (3.0 * flows);

	/* Steady state: data one way, ACK the other, flows picked at random, delivered in batches
	 * as a receive batch brings them. Each round times the delivery alone, the engine one
	 * packet at a time and the engine through the batch API, back to back, on fresh packets of
	 * the same stream, so that the three see the same machine; the medians over the rounds
	 * are reported, the delivery's cost subtracted. */
	for (int r = 0; r < rounds; r++) {
		for (int mode = 0; mode < 3; mode++) {
			double spent = 0;

			for (uint64_t done = 0; done < per_round; done += CHUNK) {
				uint32_t count = per_round - done < CHUNK ? (uint32_t)(per_round - done) : CHUNK;

				count -= count % BATCH;
				generate(&g, flows, seq, &stream, count);
				t0 = now_s();
				for (uint32_t i = 0; i < count; i += BATCH) {
					sink += deliver_batch(e, &stream, i, mode);
					if (((ticks += BATCH) & 0xffff) == 0) {
						t.mono_ns += 1000000;
						t.real_ns += 1000000;
						ENG_SetTime(e, &t);
						ENG_Tick(e);
					}
				}
				spent += now_s() - t0;
			}
			ns[mode][r] = spent * 1e9 / (double)(per_round - per_round % BATCH);
		}
		net[r] = ns[2][r] - ns[0][r];
	}
	res->ns_delivery = median(ns[0], rounds);
	res->ns_steady = median(ns[1], rounds) - res->ns_delivery;
	res->ns_batch = median(net, rounds);
	res->batch_min = net[0];
	res->batch_max = net[rounds - 1];   /* net is sorted by median() */

	/* Churn: one flow in 8 ends (half by FIN, half by RST) and a new one opens. */
	t0 = now_s();
	for (uint32_t k = 0; k < flows / 8; k++) {
		uint32_t n = (uint32_t)(rnd(&g) % flows);
		const uint8_t *p;

		if (k & 1) {
			p = build(&g, n, 0, 0x14, seq[n].s, seq[n].c, 0, &len);   /* RST/ACK from the server */
			sink += ENG_Packet(e, p, len, len, ENG_NO_ID);
		} else {
			p = build(&g, n, 1, 0x11, seq[n].c, seq[n].s, 0, &len);   /* FIN/ACK */
			sink += ENG_Packet(e, p, len, len, ENG_NO_ID);
			p = build(&g, n, 0, 0x11, seq[n].s, seq[n].c + 1, 0, &len);
			sink += ENG_Packet(e, p, len, len, ENG_NO_ID);
		}
		n = flows + k;   /* a new flow beyond the first set */
		p = build(&g, n, 1, 0x02, 1000, 0, 0, &len);
		sink += ENG_Packet(e, p, len, len, ENG_NO_ID);
		p = build(&g, n, 0, 0x12, 5000, 1001, 0, &len);
		sink += ENG_Packet(e, p, len, len, ENG_NO_ID);
	}
	t1 = now_s();
	res->ns_churn = (t1 - t0) * 1e9 / (flows / 8 * 3.5);

	ENG_GetStats(e, &st);
	res->flows = flows;
	res->packets = st.packets;
	res->bytes_per_flow = (double)st.memory_bytes / (double)cfg.flows_max;
	ENG_Destroy(e);
	free(seq);
	free(stream.pkts);
	free(stream.lens);
	CFG_Free(&cfg);
	if (sink == 42)
		puts("");
}

/* The machine's floor for the engine's memory pattern at a table size: per packet, one random
 * 8-byte index slot and one random flow record (read and written), in batches of 64 prefetched
 * before they are touched, with no computation at all. What the engine costs above this at
 * millions of flows is its own work; below 1-2 MB everything is in cache anyway. Returns
 * nanoseconds per packet, or -1. */
static double
memory_floor(uint32_t max_flows, uint64_t packets)
{
	size_t rec = sizeof(struct flow), nslots = (size_t)max_flows * 10 / 7 + 1;
	size_t len = (size_t)max_flows * rec + nslots * 8, huge = 2u << 20;
	uint8_t *recs, *slots;
	uint64_t rng = 0x2545f4914f6cdd1dULL, sink = 0;
	size_t idx[BATCH], sl[BATCH];
	double t0, t1;

	len = (len + huge - 1) & ~(huge - 1);
	recs = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (recs == MAP_FAILED)
		return -1;
	madvise(recs, len, MADV_HUGEPAGE);
	memset(recs, 1, len);
	slots = recs + (size_t)max_flows * rec;
	t0 = now_s();
	for (uint64_t i = 0; i < packets; i += BATCH) {
		for (int b = 0; b < BATCH; b++) {
			rng ^= rng >> 12; rng ^= rng << 25; rng ^= rng >> 27;
			sl[b] = (size_t)((rng * 2685821657736338717ULL) % nslots) * 8;
			idx[b] = (size_t)((rng >> 32) % max_flows) * rec;
			__builtin_prefetch(slots + sl[b], 1);
			__builtin_prefetch(recs + idx[b], 1);
			__builtin_prefetch(recs + idx[b] + 64, 1);
			__builtin_prefetch(recs + idx[b] + rec - 1, 1);
		}
		for (int b = 0; b < BATCH; b++) {
			sink += slots[sl[b]]++;
			recs[idx[b]]++;
			recs[idx[b] + 64]++;
			recs[idx[b] + rec - 1]++;
		}
	}
	t1 = now_s();
	munmap(recs, len);
	return sink == 42 ? -1 : (t1 - t0) * 1e9 / (double)packets;
}

int
main(int argc, char **argv)
{
	uint32_t flows[16] = { 0 };
	unsigned nflows = 0;
	uint64_t packets = 20000000;
	int v6 = 20, rounds = 5;
	struct result r[16];

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-f") == 0 && i + 1 < argc && nflows < 16)
			flows[nflows++] = (uint32_t)strtoul(argv[++i], NULL, 0);
		else if (strcmp(argv[i], "-p") == 0 && i + 1 < argc)
			packets = strtoull(argv[++i], NULL, 0);
		else if (strcmp(argv[i], "-6") == 0 && i + 1 < argc)
			v6 = atoi(argv[++i]);
		else if (strcmp(argv[i], "-r") == 0 && i + 1 < argc && atoi(argv[i + 1]) >= 1 &&
			 atoi(argv[i + 1]) <= MAX_ROUNDS)
			rounds = atoi(argv[++i]);
		else if (strcmp(argv[i], "-e") == 0 && i + 1 < argc) {
			if (EVD_Open(argv[++i], 104857600, 10) < 0)
				return 1;
		} else {
			fprintf(stderr, "usage: %s [-f FLOWS]... [-p PACKETS] [-6 PERCENT_IPV6] [-r ROUNDS (1-%d)] [-e EVIDENCE_DIR]\n", argv[0], MAX_ROUNDS);
			return 2;
		}
	}
	if (nflows == 0) {
		flows[0] = 10000; flows[1] = 1000000; flows[2] = 4000000;
		nflows = 3;
	}
	EV_Initialise("/dev/null", 1000, 1000);
	printf("%10s %12s %13s %12s %12s %12s %12s %12s %10s\n", "flows", "ns/pkt", "(min-max)", "ns/pkt", "ns/pkt",
	       "ns/pkt", "bytes/flow", "vs first", "delivery");
	printf("%10s %12s %13s %12s %12s %12s %12s %12s %10s\n", "", "batched", "", "one by one", "handshake", "churn",
	       "all-in", "(batched)", "ns/pkt");
	for (unsigned i = 0; i < nflows; i++) {
		char range[32];

		run(flows[i], packets, v6, rounds, &r[i]);
		snprintf(range, sizeof(range), "%.1f-%.1f", r[i].batch_min, r[i].batch_max);
		printf("%10u %12.1f %13s %12.1f %12.1f %12.1f %12.1f %11.2fx %10.1f\n", r[i].flows, r[i].ns_batch, range,
		       r[i].ns_steady, r[i].ns_open, r[i].ns_churn, r[i].bytes_per_flow, r[i].ns_batch / r[0].ns_batch,
		       r[i].ns_delivery);
		fflush(stdout);
	}
	{
		uint32_t biggest = 0;

		for (unsigned i = 0; i < nflows; i++)
			if (flows[i] > biggest)
				biggest = flows[i];
		biggest += biggest / 8 + 1024;
		printf("memory floor at %u flows (no computation: one random index slot and one random %zu-byte "
		       "record per packet, read and written, prefetched in batches of %d): %.1f ns/pkt\n",
		       biggest, sizeof(struct flow), BATCH, memory_floor(biggest, packets / (uint64_t)rounds));
	}
	printf("(steady state: random data/ACK packets over the open flows, %" PRIu64 " packets in %d rounds, %d%% IPv6, "
	       "batches of %d, generated ahead and untimed; medians over the rounds; the delivery (copying a batch "
	       "into the receive buffer) measured in each round and subtracted)\n", packets, rounds, v6, BATCH);
	EV_Finalise();
	return 0;
}
