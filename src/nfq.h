/* NFQUEUE through libmnl and libnetfilter_queue's nfq_nlmsg_* helpers: bind a queue, receive
 * packets in batches, give every packet a verdict. */
#ifndef RSTGUARD_NFQ_H
#define RSTGUARD_NFQ_H

#include <stdatomic.h>
#include <stdint.h>

#include "config.h"
#include "engine.h"

struct nfq;

struct nfq_stats {
	uint64_t packets;        /* packet messages received */
	uint64_t batches;        /* receive batches */
	uint64_t enobufs;        /* the kernel could not queue to us: it dropped or (fail-open) accepted */
	uint64_t recv_errors;    /* other receive errors */
	uint64_t bad_messages;   /* messages without a packet id (nothing to give a verdict to) */
	uint64_t verdict_errors; /* failed verdict sends, or errors the kernel returned for them */
	uint64_t accepted;
	uint64_t dropped;
	uint64_t stamped;        /* packets that carried the kernel's receive timestamp */
};

/* Open a netlink socket and bind queue num with the settings of cfg (copy range, GSO, fail-open,
 * queue length, receive buffer). Returns NULL on failure (logged). */
struct nfq *NFQ_Open(uint16_t num, const struct config *cfg);

/* What the control thread shares with every packet thread: the stop flag and the running
 * configuration with its generation (bumped at each swap). */
struct nfq_control {
	atomic_int stop;
	_Atomic(const struct config *) cfg;
	atomic_uint gen;
};

/* One packet thread's work: its queue, its engine, and the configuration generation it last
 * took from ctl (the control thread frees an old configuration once every thread took the new). */
struct nfq_worker {
	struct nfq *q;
	struct engine *eng;
	struct nfq_control *ctl;
	atomic_uint seen_gen;
};

/* Run w's receive loop, handing packets to its engine, until ctl->stop becomes non-zero.
 * ctl->gen is read between batches; when it differs from seen_gen, ctl->cfg is handed to the
 * engine and seen_gen is set to acknowledge it. */
void NFQ_Run(struct nfq_worker *w);

/* Unbind the queue and close the socket. */
void NFQ_Close(struct nfq *q);

/* Counters. */
void NFQ_GetStats(const struct nfq *q, struct nfq_stats *st);

/* One packet message of a received datagram, as NFQ_ParseBatch found it. The pointers lie
 * inside the datagram's buffer. */
struct nfq_msg {
	uint32_t id;             /* packet id, host order */
	const uint8_t *payload;  /* the copied packet bytes, NULL when the message carries none */
	uint32_t plen;           /* bytes at payload */
	uint32_t wirelen;        /* the packet's length on the wire (NFQA_CAP_LEN, else plen) */
	uint64_t ts_real_ns;     /* when the kernel received it (NFQA_TIMESTAMP), 0 if absent */
};

/* Called once per packet message that has a packet header (and so an id to answer). */
typedef void (*nfq_msg_fn)(const struct nfq_msg *m, void *arg);

/* Parse one received datagram, the chain of netlink messages the kernel sends, with no side
 * effect but the calls of fn and the count of messages without a packet header in *bad. Every
 * length is checked (libmnl, nfq_nlmsg_parse); portid 0 accepts any sender. Returns what
 * mnl_cb_run returns: -1 (errno set) for a netlink error message or a chain that does not
 * parse, 0 at an acknowledgement, 1 otherwise. buf must be readable up to NLMSG_ALIGN(len)
 * (libmnl reads attribute headers up to a message's aligned end); payloads handed to fn never
 * reach past len. Pure, so the fuzz target fuzz/fuzz_nfq.c feeds it whole datagrams. */
int NFQ_ParseBatch(const void *buf, size_t len, uint32_t portid, nfq_msg_fn fn, void *arg,
		   uint64_t *bad);

/* Monotonic and wall-clock time now. */
void NFQ_Now(struct engine_time *t);

#endif
