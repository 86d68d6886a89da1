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

/* Monotonic and wall-clock time now. */
void NFQ_Now(struct engine_time *t);

#endif
