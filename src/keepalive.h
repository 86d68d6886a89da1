/* Keepalive probes that keep a middlebox's state for an idle flow alive, invisibly to the
 * endpoints: the gateway impersonates one side (X) with a probe built like Linux's own
 * (tcp_xmit_probe_skb: seq = X's SND.NXT - 1, no data, X's last ACK, window and TSval), sends it
 * toward the other side (Y) through the middlebox, and drops Y's answer (a duplicate ACK) before
 * it reaches X. The probe and the answer refresh the middlebox in both directions. */
#ifndef RSTGUARD_KEEPALIVE_H
#define RSTGUARD_KEEPALIVE_H

#include <stdint.h>

#include "flow.h"

struct ka_sender {
	int fd4, fd6;             /* raw sockets (IPPROTO_RAW: we write the IP header) */
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

/* Open the raw sockets. Returns 0, or -1 (logged) if they cannot be had (CAP_NET_RAW). */
int KA_Open(struct ka_sender *ks);
void KA_Close(struct ka_sender *ks);

/* Build the probe from side x of flow f into buf (at least 100 bytes); returns its length. */
uint32_t KA_Build(const struct flow *f, int x, uint8_t *buf);

/* Send a built probe toward its destination. Returns 0 or -1. */
int KA_Send(struct ka_sender *ks, const struct flow *f, const uint8_t *buf, uint32_t len);

/* May side x of f be probed now? Established, fully acknowledged both ways, no FIN or RST, no
 * TCP-MD5/AO. */
int KA_Eligible(const struct flow *f, int x);

#endif
