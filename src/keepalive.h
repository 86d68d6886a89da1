/* Keepalive probes that keep a middlebox's state for an idle flow alive, invisibly to the
 * endpoints: the gateway impersonates one side (X) with a probe built like Linux's own
 * (tcp_xmit_probe_skb: seq = X's SND.NXT - 1, no data, X's last ACK, window and TSval), sends it
 * toward the other side (Y) through the middlebox, and drops Y's answer (a duplicate ACK) before
 * it reaches X. The probe and the answer refresh the middlebox in both directions. */
#ifndef RSTGUARD_KEEPALIVE_H
#define RSTGUARD_KEEPALIVE_H

#include <stdint.h>

#include "config.h"
#include "flow.h"
#include "timer.h"

struct alias_table;

/* Sends a built probe; returns 0 when it went out (tests and benchmarks stand in for the raw
 * sockets with one). */
typedef int (*ka_send_fn)(void *ctx, const struct flow *f, const uint8_t *buf, uint32_t len);

/* Where an engine's probes (keepalive, confirmation) go out: raw sockets opened on first use
 * (IPPROTO_RAW: we write the IP header), or fn when set. */
struct ka_sender {
	int fd4, fd6;             /* -1: not opened yet; fd4 -2: cannot be opened */
	ka_send_fn fn;
	void *fn_ctx;
	uint64_t errors;          /* failed sends */
};

/* A token bucket: rate per second for the whole daemon, each queue's engine taking its share. */
struct ka_bucket {
	double tokens;
	uint64_t refill_ns;
};

/* Per-flow probe state, kept only when keepalive is on (an array indexed like the flow table). */
struct ka_flow {
	uint32_t probe_ms;        /* when the last probe went out (engine ms) */
	uint32_t refresh_ms;      /* when an answer last proved the path alive */
	uint8_t outstanding;      /* bit x: a probe impersonating side x awaits its answer */
	uint8_t unanswered;       /* probes in a row without an answer */
	uint8_t gave_up;          /* stopped probing this idle period (black hole, RST) */
	uint8_t pad;
};

/* What keepalive sees of its engine: no more than this. */
struct ka_ctx {
	const struct config *cfg;       /* the engine points it at a reloaded one */
	const struct timer_clock *now;
	struct ka_sender *sender;
	uint32_t flows_cap;             /* the flow table's capacity: probe state is indexed like it */
	const struct alias_table *alias;/* NAT aliases (probes go out as seen), or NULL */
};

struct ka_stats {
	uint64_t sent;
	uint64_t answered;
	uint64_t unanswered;
	uint64_t rate_limited;
};

struct keepalive {
	struct ka_ctx ctx;
	struct ka_flow *kaf;            /* per-flow probe state, allocated on first use */
	struct ka_bucket bucket;        /* keepalive.probe_rate */
	struct ka_stats st;
};

/* A flow given up because its probes went unanswered: a black hole. */
struct ka_lost {
	uint32_t unanswered;            /* probes in a row (0: nothing lost) */
	uint32_t idle_ms;
	uint32_t timeout_s;             /* the middlebox timeout configured for the flow */
};

/* What a packet of a probed flow is to keepalive. */
enum ka_packet { KA_TRAFFIC = 0, KA_ANSWER, KA_OWN_PROBE };

/* Bind keepalive to its engine; nothing is allocated until a flow is first probed. */
void KA_Init(struct keepalive *ka, const struct ka_ctx *ctx);

/* Free the probe state. */
void KA_Fini(struct keepalive *ka);

/* Flow idx (record f) is due: send its probes if it is time. Returns when to look again (engine
 * seconds), 0 for never in this idle period; *lost says when the flow was just given up. */
uint32_t KA_Visit(struct keepalive *ka, uint32_t idx, struct flow *f, struct ka_lost *lost);

/* A packet of flow idx from side dir while the flow is probed (FL_PROBING): the answer to our
 * probe (to be dropped: the endpoint never sent a probe), our probe itself seen again on
 * OUTPUT (to be let through), or traffic, which ends the idle period. */
enum ka_packet KA_Packet(struct keepalive *ka, uint32_t idx, struct flow *f, int dir, const struct pkt *p);

/* The probe state of flow idx while probes keep it (FL_PROBING), else NULL. */
struct ka_flow *KA_Probing(struct keepalive *ka, uint32_t idx, const struct flow *f);

/* The sender with no socket yet. */
void KA_SenderInit(struct ka_sender *s);

/* Close the sender's sockets. */
void KA_SenderFini(struct ka_sender *s);

/* Make sure probes can go out, opening the raw sockets on first use. Returns 0, or -1 if they
 * cannot be had (logged once: CAP_NET_RAW). */
int KA_SenderReady(struct ka_sender *s);

/* Send a built probe toward its destination. Returns 0, or -1 (counted in s->errors). */
int KA_SendProbe(struct ka_sender *s, const struct flow *f, const uint8_t *buf, uint32_t len);

/* Take a token from bucket b of rate per second shared by queues engines, holding at most one
 * second's worth. Returns 1 if a token was taken. */
int KA_TakeToken(struct ka_bucket *b, uint64_t now_ns, uint32_t rate, uint32_t queues);

/* Build the probe from side x of flow f into buf (at least 100 bytes); returns its length. */
uint32_t KA_Build(const struct flow *f, int x, uint8_t *buf);

/* The same through a NAT: a probe must leave as rstguard saw the packets of the side it imitates
 * (the client's inside tuple; the server's answers as they arrive, to the gateway's outside
 * address and NAT port), so that conntrack applies the connection's own translation. With an
 * alias a (NULL: none), side x's packets of the reply half take a's tuple. */
struct alias;
uint32_t KA_BuildSeen(const struct flow *f, int x, const struct alias *a, uint8_t *buf);

#endif
