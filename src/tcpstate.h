/* TCP state as seen from the middle: per-direction sequence/ACK/window/TTL/IP ID tracking and
 * the connection state machine. Called once per tracked packet, after the RST analysis has read
 * the state as it was before this packet. */
#ifndef RSTGUARD_TCPSTATE_H
#define RSTGUARD_TCPSTATE_H

#include <stdint.h>

#include "config.h"
#include "flow.h"
#include "packet.h"

/* Serial-number comparisons (RFC 1982). */
#define SEQ_LT(a, b)  ((int32_t)((uint32_t)(a) - (uint32_t)(b)) < 0)
#define SEQ_LEQ(a, b) ((int32_t)((uint32_t)(a) - (uint32_t)(b)) <= 0)
#define SEQ_GT(a, b)  ((int32_t)((uint32_t)(a) - (uint32_t)(b)) > 0)
#define SEQ_GEQ(a, b) ((int32_t)((uint32_t)(a) - (uint32_t)(b)) >= 0)

/* Fill a new flow record from its first packet (f zeroed but for the key). A flow that does not
 * start with a SYN is marked FL_MIDSTREAM and starts established (or syn_recv for a SYN-ACK). */
void TCP_InitFlow(struct flow *f, const struct pkt *p, uint32_t now_cs, uint32_t now_us);

/* Update the flow with packet p travelling in direction dir. Returns the state before. */
enum tcp_state TCP_Update(struct flow *f, int dir, const struct pkt *p, uint32_t now_us);

/* Would the receiver accept this RST's sequence number? */
enum rst_seq_class {
	RST_SEQ_UNKNOWN = 0,  /* the receiver's expectations are not known (mid-stream, no traffic) */
	RST_SEQ_EXACT,        /* == the receiver's next expected sequence number: effective */
	RST_SEQ_IN_WINDOW,    /* inside the receive window: answered by a challenge ACK */
	RST_SEQ_OUT_OF_WINDOW /* ignored by the receiver */
};
enum rst_seq_class TCP_ClassifyRstSeq(const struct flow *f, int dir, const struct pkt *p);

/* Name of a sequence class ("exact", "in_window", "out_of_window", "unknown"). */
const char *TCP_RstSeqName(enum rst_seq_class c);

/* Idle timeout of a state, in seconds. */
uint32_t TCP_StateTimeout(const struct config_flow_timeouts *to, enum tcp_state s);

#endif
