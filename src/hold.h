/* RSTs awaiting judgement. A RST that is not conclusive when it arrives waits a short time
 * (about the sender's RTT) for its claimed sender's own traffic, which would contradict it. In
 * enforce mode a suspicious RST's packet waits too (a delayed NFQUEUE verdict); in detection-only
 * mode the packet has passed and only its event waits. Bounded in number and in time. */
#ifndef RSTGUARD_HOLD_H
#define RSTGUARD_HOLD_H

#include <stdint.h>

#include "packet.h"
#include "rst.h"

/* Active confirmation of a held RST: a probe toward its claimed sender in the name of its
 * receiver. A live socket answers with an ACK, a stack without one with a RST. */
enum hold_confirm { CONFIRM_NONE = 0, CONFIRM_SENT, CONFIRM_ACK, CONFIRM_RST, CONFIRM_TIMEOUT };

/* Name of a confirmation outcome for events ("probe_ack", ...), NULL for none. */
const char *HOLD_ConfirmName(enum hold_confirm c);

struct pending_rst {
	uint32_t flow_idx;
	uint32_t flow_start_cs;   /* tells a recycled flow record apart */
	uint64_t flow_id;
	uint32_t pkt_id;          /* NFQUEUE packet id (held packets) */
	uint32_t deadline_ms;
	uint32_t start_ms;        /* when the RST came (engine ms) */
	uint64_t real_ns;         /* when the RST passed (the event's timestamp) */
	uint32_t ack_before;      /* the sender's last ACK when the RST passed */
	uint32_t idle_ms;         /* the flow's idle time when the RST came */
	uint8_t dir;
	uint8_t held;             /* the packet's verdict is still owed */
	uint8_t prev_state;
	uint8_t in_use;
	uint8_t has_flow;         /* 0 for a RST of a flow the table does not hold */
	uint8_t midstream;
	uint8_t ttl_base;         /* the sender's TTL baseline, if has_base */
	uint8_t has_base;
	uint8_t confirm;          /* enum hold_confirm: the active confirmation's outcome */
	uint8_t revised;          /* a late contradiction turned a genuine verdict into forged */
	uint8_t was_cause;        /* (revised) the cause it was first reported with */
	uint32_t was_evidence;    /* (revised) and the evidence */
	struct pkt pkt;           /* the RST's headers (payload pointer cleared) */
	struct rst_result res;
};

struct hold_table {
	struct pending_rst *slots;
	uint32_t cap;
	uint32_t used;
	uint32_t held;            /* of which packets are held */
};

/* Allocate room for cap pending RSTs. Returns 0 or -1. */
int HOLD_Init(struct hold_table *h, uint32_t cap);

/* Free the table. */
void HOLD_Fini(struct hold_table *h);

/* A free slot, or NULL when full (the caller judges at once). */
struct pending_rst *HOLD_Add(struct hold_table *h);

/* Release a slot. */
void HOLD_Remove(struct hold_table *h, struct pending_rst *p);

/* Earliest deadline among the pending (ms, wrap-safe), in *deadline; returns 0 if none. */
int HOLD_NextDeadline(const struct hold_table *h, uint32_t *deadline);

#endif
