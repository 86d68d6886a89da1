/* RST analysis: why was this connection reset, by whom, and would the reset take effect? */
#ifndef RSTGUARD_RST_H
#define RSTGUARD_RST_H

#include <stdint.h>

#include "flow.h"
#include "packet.h"
#include "tcpstate.h"

enum rst_cause {
	RST_CAUSE_NO_FLOW = 0,      /* the flow is unknown to the table */
	RST_CAUSE_REFUSED,          /* answer to a SYN: no listener (or a firewall's REJECT) */
	RST_CAUSE_CONNECT_ABORT,    /* the client gave up during the handshake */
	RST_CAUSE_ABORT,            /* endpoint abort of an established flow */
	RST_CAUSE_UNREAD_DATA,      /* close with unread received data */
	RST_CAUSE_CLOSED_SOCKET,    /* answer to data sent after that side's FIN / full close */
	RST_CAUSE_KEEPALIVE_TIMEOUT,/* after unanswered keepalive probes */
	RST_CAUSE_TIME_WAIT,        /* SYN-to-TIME_WAIT / PAWS exchange */
	RST_CAUSE_IDLE_EVICTION,    /* a middlebox forgot the idle flow */
	RST_CAUSE_INJECTED,         /* forged by a third party */
	RST_CAUSE_INVALID_SEQ,      /* stale or out of window: the receiver ignores it */
	RST_CAUSE_MAX
};

/* What the analysis concluded about one RST. */
struct rst_result {
	enum rst_cause cause;
	enum rst_seq_class seq_class;
	int forged;                 /* judged injected by a third party */
	uint32_t evidence;          /* bit set of signals that fired (RST_EV_*) */
	int score;
};

/* Classify the RST p travelling in direction dir of flow f (NULL when unknown). f must still hold
 * the state from before this packet. */
void RST_Analyse(const struct flow *f, int dir, const struct pkt *p, uint32_t now_us, struct rst_result *out);

/* Token of a cause for events ("refused", "abort", ...). */
const char *RST_CauseName(enum rst_cause c);

/* Number of evidence names and the name of evidence bit i. */
#define RST_EV_MAX 16
const char *RST_EvidenceName(unsigned bit);

#endif
