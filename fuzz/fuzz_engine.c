/* fuzz_engine: the whole engine on a sequence of packets, on a fake clock, with the probes it
 * would send swallowed (ENG_SetProbeSender), in detect or enforce mode. Asserted: every packet
 * the engine holds gets exactly one verdict, accept or drop, and none is left held after
 * ENG_Shutdown.
 *
 * Input: two bytes of configuration, then records of
 *   [clock step (1 byte)] [length (2 bytes, big-endian)] [IP packet (length bytes)]
 * A clock step s < 200 advances s milliseconds; 200..252 advance (s - 199) x 5 seconds; 253
 * advances three hours (every flow times out); 254 advances nothing but swaps the configuration
 * for the other mode (a reload while packets are held). The clock moves before the packet, and
 * ENG_Tick runs between packets as the packet threads do. A short last record takes what is left.
 *
 * Configuration byte 0: bit 0 enforce; bit 1 confirmation probes; bit 2 keepalive probes
 * (eviction.idle_timeout 30 s + byte 1); bit 3 hold every effective RST (hold_threshold 0);
 * bits 4-5 flow table size (16, 64, 256, 1024); bit 6 no late revision (revise_window 0); bit 7
 * the prepared (batch) path: ENG_Prepare, ENG_Prefetch, ENG_PacketPrepared. Byte 1: max_pending
 * 1 + (byte & 15), and the idle timeout. */
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "engine.h"
#include "event.h"
#include "fuzz.h"
#include "log.h"

#define MS 1000000ULL
#define SEC 1000000000ULL

enum { ST_NONE = 0, ST_HELD, ST_DECIDED };

struct run {
	struct engine *e;
	uint8_t *state;            /* per packet id */
	uint32_t npkts;
	uint64_t probes;
};

static int
noop_send(void *ctx, const struct flow *f, const uint8_t *buf, uint32_t len)
{
	struct run *r = ctx;

	(void)f;
	if (len > 0 && buf[0] == 0)   /* read the probe: it must lie in valid memory */
		r->probes++;
	r->probes++;
	return 0;                  /* "sent" */
}

static void
take(struct run *r)
{
	struct engine_verdict v[32];
	uint32_t n;

	while ((n = ENG_TakeVerdicts(r->e, v, 32)) > 0) {
		for (uint32_t i = 0; i < n; i++) {
			if (v[i].pkt_id >= r->npkts || r->state[v[i].pkt_id] != ST_HELD)
				__builtin_trap();   /* a verdict for a packet not held, or a second one */
			if (v[i].verdict != RG_ACCEPT && v[i].verdict != RG_DROP)
				__builtin_trap();
			r->state[v[i].pkt_id] = ST_DECIDED;
		}
	}
}

static void
set_config(struct config *cfg, uint8_t b0, uint8_t b1)
{
	CFG_SetDefaults(cfg);
	cfg->mode = (b0 & 1) ? RG_MODE_ENFORCE : RG_MODE_DETECT;
	cfg->confirm = (b0 >> 1) & 1;
	if (b0 & 4) {
		cfg->keepalive = 1;
		cfg->idle_timeout = 30 + b1;
	}
	if (b0 & 8)
		cfg->hold_threshold = 0;
	if (b0 & 64)
		cfg->revise_window = 0;
	cfg->max_pending = 1 + (b1 & 15);
	cfg->confirm_rate = 1000;
	cfg->probe_rate = 1000;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t seed[16] = "rstguard-fuzzing";
	struct config cfg[2];
	struct event_sink *sink;
	struct engine_time now = { 1000 * SEC, 1795608000ULL * SEC };
	struct run r = { 0 };
	int cur = 0, prepared;
	size_t off;
	uint8_t b0, b1;

	if (size < 2 || size > 200000)
		return 0;
	b0 = data[0];
	b1 = data[1];
	prepared = (b0 >> 7) & 1;
	LOG_SetLevel(LOG_LVL_ERR);
	set_config(&cfg[0], b0, b1);
	set_config(&cfg[1], b0 ^ 1, b1);

	/* Every record is at least 3 bytes: at most this many packets. */
	r.state = calloc(size / 3 + 1, 1);
	/* Events are formatted and written, to nowhere; no rate limit (as offline). */
	if (r.state == NULL || EV_Initialise("/dev/null", 1000000000u, 1000000000u) < 0 ||
	    (sink = EV_CreateSink(1u << 16)) == NULL) {
		EV_Finalise();
		free(r.state);
		CFG_Free(&cfg[0]);
		CFG_Free(&cfg[1]);
		return 0;
	}
	EV_SetSynchronous(1);
	r.e = ENG_Create(&cfg[0], 16u << (2 * ((b0 >> 4) & 3)), sink, seed, &now);
	if (r.e == NULL)
		__builtin_trap();
	ENG_SetProbeSender(r.e, noop_send, &r);

	off = 2;
	while (off < size) {
		uint8_t step = data[off++];
		size_t len = 0;
		enum rg_verdict v;
		uint32_t id = r.npkts++;

		if (off + 2 <= size)
			len = (size_t)data[off] << 8 | data[off + 1];
		off += 2;
		if (off > size)
			off = size;
		if (len > size - off)
			len = size - off;

		if (step < 200)
			now.mono_ns += step * MS;
		else if (step <= 252)
			now.mono_ns += (uint64_t)(step - 199) * 5 * SEC;
		else if (step == 253)
			now.mono_ns += 3 * 3600 * SEC;
		else {
			cur ^= 1;
			ENG_SetConfig(r.e, &cfg[cur]);
		}
		now.real_ns = 1795608000ULL * SEC + (now.mono_ns - 1000 * SEC);
		ENG_SetTime(r.e, &now);
		ENG_Tick(r.e);
		take(&r);
		(void)ENG_NextDueMs(r.e);

		if (prepared) {
			struct eng_prep pp;

			ENG_Prepare(r.e, data + off, (uint32_t)len, (uint32_t)len, &pp);
			ENG_Prefetch(r.e, &pp);
			v = ENG_PacketPrepared(r.e, &pp, id);
		} else {
			v = ENG_Packet(r.e, data + off, (uint32_t)len, (uint32_t)len, id);
		}
		if (v == RG_HOLD) {
			if (cfg[cur].mode != RG_MODE_ENFORCE)
				__builtin_trap();   /* only enforce mode holds */
			r.state[id] = ST_HELD;
		} else if (v != RG_ACCEPT && v != RG_DROP) {
			__builtin_trap();
		}
		take(&r);
		off += len;
	}

	ENG_Shutdown(r.e);
	take(&r);
	if (ENG_HeldCount(r.e) != 0)
		__builtin_trap();
	for (uint32_t i = 0; i < r.npkts; i++)
		if (r.state[i] == ST_HELD)
			__builtin_trap();   /* held, never decided */

	ENG_Destroy(r.e);
	EV_SetSynchronous(0);
	EV_Finalise();
	free(r.state);
	CFG_Free(&cfg[0]);
	CFG_Free(&cfg[1]);
	return 0;
}
