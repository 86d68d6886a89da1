/* NFQUEUE transport. One socket per queue, one thread per socket. A receive batch blocks in
 * recv for the first message (in poll only while a held packet's judgement is due sooner than
 * the receive timeout), drains up to queue.batch more without blocking, hands each packet
 * to the engine, and then sends all the batch's verdicts in one sendmsg, in packet order: one
 * NFQNL_MSG_VERDICT_BATCH when everything is accepted, individual verdicts otherwise. Every
 * packet message that carries an id gets a verdict, whatever its bytes. */
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <libnetfilter_queue/libnetfilter_queue.h>

#include "log.h"
#include "nfq.h"

/* Room for the netlink and nfqueue headers and attributes around the copied packet bytes. */
#define NFQ_MSG_OVERHEAD 1024
#define POLL_MS 100

struct pending_verdict {
	uint32_t id;
	uint32_t verdict;
};

/* A received packet waiting for the batch's engine passes. */
struct queued_pkt {
	uint32_t id;
	uint64_t ts_real_ns;     /* when the kernel received it (NFQA_TIMESTAMP), 0 if unknown */
	const uint8_t *payload;  /* inside rbuf: valid until the next batch */
	uint32_t plen, wirelen;
	struct eng_prep prep;
};

struct nfq {
	struct mnl_socket *nl;
	uint16_t num;
	uint32_t portid;
	uint32_t seq;
	char *rbuf;              /* a batch's messages, packed one after the other */
	size_t rbuf_len;         /* room one receive asks for */
	size_t msg_max;          /* the most one packet message can take (copy range + attributes) */
	uint32_t rslot;          /* buffer the next datagram goes to */
	struct queued_pkt *msgs; /* packets of the current batch, before the engine sees them */
	uint32_t nmsgs;
	char *sbuf;
	size_t sbuf_len;
	uint32_t batch;
	struct pending_verdict *pending;
	uint32_t npending;
	uint32_t cap;            /* room in pending */
	struct engine *eng;      /* NULL while binding: packets are then accepted untouched */
	struct engine_time batch_now;  /* when the current batch was read */
	int tstamp_fd;           /* keeps kernel receive timestamps on (see NFQ_Open) */
	struct nfq_stats st;
};

void
NFQ_Now(struct engine_time *t)
{
	struct timespec m, r;

	clock_gettime(CLOCK_MONOTONIC, &m);
	clock_gettime(CLOCK_REALTIME, &r);
	t->mono_ns = (uint64_t)m.tv_sec * 1000000000ULL + (uint64_t)m.tv_nsec;
	t->real_ns = (uint64_t)r.tv_sec * 1000000000ULL + (uint64_t)r.tv_nsec;
}

static void send_verdicts_now(struct nfq *q);

/* Send the verdicts collected so far, with those of held packets that were decided. */
static void
send_verdicts(struct nfq *q)
{
	uint32_t i;

	if (q->eng) {
		/* Held packets decided since: their verdicts go out with this batch. */
		struct engine_verdict dv[64];
		uint32_t n;

		while ((n = ENG_TakeVerdicts(q->eng, dv, 64)) > 0) {
			for (i = 0; i < n; i++) {
				if (q->npending == q->cap)
					send_verdicts_now(q);
				q->pending[q->npending].id = dv[i].pkt_id;
				q->pending[q->npending].verdict = dv[i].verdict == RG_DROP ? NF_DROP : NF_ACCEPT;
				q->npending++;
			}
		}
	}
	send_verdicts_now(q);
}

static void
send_verdicts_now(struct nfq *q)
{
	struct nlmsghdr *nlh;
	size_t off = 0;
	uint32_t i, all_accept = 1, max_id = 0;

	if (q->npending == 0)
		return;
	/* A batch verdict covers every queued id up to max_id, held ones included: with packets
	 * on hold, verdicts go one by one (still in one sendmsg). */
	if (q->eng && ENG_HeldCount(q->eng) > 0)
		all_accept = 0;
	for (i = 0; i < q->npending; i++) {
		if (q->pending[i].verdict != NF_ACCEPT)
			all_accept = 0;
		if (q->pending[i].id > max_id)
			max_id = q->pending[i].id;
	}
	if (all_accept) {
		nlh = nfq_nlmsg_put(q->sbuf, NFQNL_MSG_VERDICT_BATCH, q->num);
		nfq_nlmsg_verdict_put(nlh, (int)max_id, NF_ACCEPT);
		off = nlh->nlmsg_len;
		q->st.accepted += q->npending;
	} else {
		for (i = 0; i < q->npending; i++) {
			nlh = nfq_nlmsg_put(q->sbuf + off, NFQNL_MSG_VERDICT, q->num);
			nfq_nlmsg_verdict_put(nlh, (int)q->pending[i].id, (int)q->pending[i].verdict);
			off += NLMSG_ALIGN(nlh->nlmsg_len);
			if (q->pending[i].verdict == NF_ACCEPT)
				q->st.accepted++;
			else
				q->st.dropped++;
		}
	}
	if (mnl_socket_sendto(q->nl, q->sbuf, off) < 0) {
		if (q->st.verdict_errors++ == 0)
			log_warn("queue %u: sending verdicts", q->num);
	}
	q->npending = 0;
}

static void
push_verdict(struct nfq *q, uint32_t id, uint32_t verdict)
{
	if (q->npending == q->cap)
		send_verdicts_now(q);
	q->pending[q->npending].id = id;
	q->pending[q->npending].verdict = verdict;
	q->npending++;
}

/* NFQ_ParseBatch's state while it walks one datagram. */
struct parse_ctx {
	nfq_msg_fn fn;
	void *arg;
	uint64_t *bad;
	const uint8_t *end;   /* the datagram's end */
};

static int
parse_cb(const struct nlmsghdr *nlh, void *data)
{
	struct parse_ctx *c = data;
	struct nlattr *attr[NFQA_MAX + 1] = { 0 };
	struct nfqnl_msg_packet_hdr *ph;
	struct nfq_msg m = { 0 };

	if (nfq_nlmsg_parse(nlh, attr) < 0 || attr[NFQA_PACKET_HDR] == NULL) {
		(*c->bad)++;
		return MNL_CB_OK;
	}
	ph = mnl_attr_get_payload(attr[NFQA_PACKET_HDR]);
	m.id = ntohl(ph->packet_id);
	if (attr[NFQA_PAYLOAD]) {
		m.payload = mnl_attr_get_payload(attr[NFQA_PAYLOAD]);
		m.plen = mnl_attr_get_payload_len(attr[NFQA_PAYLOAD]);
		/* libmnl lets attributes run to the message's aligned end, up to 3 bytes past an
		 * unaligned last message: only the datagram's bytes are the packet's. The message
		 * keeps its verdict. */
		if (m.payload >= c->end) {
			m.payload = NULL;
			m.plen = 0;
			(*c->bad)++;
		} else if (m.plen > (size_t)(c->end - m.payload)) {
			m.plen = (uint32_t)(c->end - m.payload);
			(*c->bad)++;
		}
	}
	m.wirelen = attr[NFQA_CAP_LEN] ? ntohl(mnl_attr_get_u32(attr[NFQA_CAP_LEN])) : m.plen;
	if (attr[NFQA_TIMESTAMP]) {
		uint64_t ts[2];   /* sec, usec; netlink attributes are only 4-byte aligned */

		memcpy(ts, mnl_attr_get_payload(attr[NFQA_TIMESTAMP]), sizeof(ts));
		m.ts_real_ns = be64toh(ts[0]) * 1000000000ULL + be64toh(ts[1]) * 1000ULL;
	}
	c->fn(&m, c->arg);
	return MNL_CB_OK;
}

int
NFQ_ParseBatch(const void *buf, size_t len, uint32_t portid, nfq_msg_fn fn, void *arg, uint64_t *bad)
{
	struct parse_ctx c = { fn, arg, bad, (const uint8_t *)buf + len };
	size_t ok = 0;

	/* Only whole messages go to libmnl: its mnl_nlmsg_ok (1.0.4) compares nlmsg_len as an int,
	 * so a length of 2^31 or more passes and the walk leaves the buffer. The kernel sends no
	 * such message, but these bytes are checked like any others. (The last message may end
	 * unaligned: the kernel does not pad the payload attribute.) */
	while (len - ok >= sizeof(struct nlmsghdr)) {
		const struct nlmsghdr *h = (const struct nlmsghdr *)((const char *)buf + ok);

		if (h->nlmsg_len < sizeof(*h) || h->nlmsg_len > len - ok)
			break;
		if (NLMSG_ALIGN(h->nlmsg_len) >= len - ok) {
			ok = len;
			break;
		}
		ok += NLMSG_ALIGN(h->nlmsg_len);
	}
	if (ok < len)
		(*bad)++;   /* a cut or malformed tail, skipped */
	return mnl_cb_run(buf, ok, 0, portid, parse_cb, &c);
}

/* One packet message of the receive loop's datagram: into the batch, or judged at once. */
static void
on_packet(const struct nfq_msg *pm, void *data)
{
	struct nfq *q = data;
	uint32_t verdict = NF_ACCEPT;

	q->st.packets++;
	if (q->eng && pm->payload && q->nmsgs < q->batch) {
		/* Judged with the rest of the batch (process_batch), in arrival order. */
		struct queued_pkt *m = &q->msgs[q->nmsgs++];

		m->ts_real_ns = pm->ts_real_ns;
		if (pm->ts_real_ns)
			q->st.stamped++;
		m->id = pm->id;
		m->payload = pm->payload;
		m->plen = pm->plen;
		m->wirelen = pm->wirelen;
		return;
	}
	if (q->eng && pm->payload) {
		enum rg_verdict v = ENG_Packet(q->eng, pm->payload, pm->plen, pm->wirelen, pm->id);

		if (v == RG_HOLD)
			return;  /* the engine owes this packet its verdict */
		verdict = v == RG_DROP ? NF_DROP : NF_ACCEPT;
	}
	push_verdict(q, pm->id, verdict);
}

/* The batch's packets through the engine in three passes (parse and prefetch the index, prefetch
 * the flow records, then judge), so their cache misses overlap instead of adding up. */
static void
process_batch(struct nfq *q)
{
	uint32_t i;

	for (i = 0; i < q->nmsgs; i++)
		ENG_Prepare(q->eng, q->msgs[i].payload, q->msgs[i].plen, q->msgs[i].wirelen, &q->msgs[i].prep);
	for (i = 0; i < q->nmsgs; i++)
		ENG_Prefetch(q->eng, &q->msgs[i].prep);
	for (i = 0; i < q->nmsgs; i++) {
		struct queued_pkt *m = &q->msgs[i];
		struct engine_time t = q->batch_now;
		enum rg_verdict v;

		/* The time the packet reached the host, not when we got to it: queueing delay under
		 * load would otherwise stretch RTTs and shrink reaction times. */
		if (m->ts_real_ns && m->ts_real_ns <= t.real_ns) {
			t.mono_ns -= t.real_ns - m->ts_real_ns;
			t.real_ns = m->ts_real_ns;
		}
		ENG_SetTime(q->eng, &t);
		v = ENG_PacketPrepared(q->eng, &m->prep, m->id);

		if (v != RG_HOLD)  /* a held packet's verdict is owed by the engine */
			push_verdict(q, q->msgs[i].id, v == RG_DROP ? NF_DROP : NF_ACCEPT);
	}
	q->nmsgs = 0;
}

/* Handle one received datagram. */
static void
handle_datagram(struct nfq *q, const char *buf, size_t n)
{
	if (NFQ_ParseBatch(buf, n, q->portid, on_packet, q, &q->st.bad_messages) < 0) {
		/* An NLMSG_ERROR from the kernel, e.g. for a verdict on an id it no longer holds. */
		if (q->st.verdict_errors++ == 0)
			log_warn("queue %u: netlink error", q->num);
	}
}

/* Send a configuration message and wait (bounded) for the kernel's acknowledgement. Packet
 * messages that arrive meanwhile are accepted, so none is left without a verdict. */
static int
config_request(struct nfq *q, struct nlmsghdr *nlh)
{
	int fd = mnl_socket_get_fd(q->nl);
	uint32_t seq = ++q->seq;

	nlh->nlmsg_flags |= NLM_F_ACK;
	nlh->nlmsg_seq = seq;
	if (mnl_socket_sendto(q->nl, nlh, nlh->nlmsg_len) < 0)
		return -1;
	for (int tries = 0; tries < 1000; tries++) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t n;
		int ret;

		if (poll(&pfd, 1, 2000) <= 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		n = recv(fd, q->rbuf, q->rbuf_len, MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN || errno == ENOBUFS)
				continue;
			return -1;
		}
		ret = NFQ_ParseBatch(q->rbuf, (size_t)n, q->portid, on_packet, q, &q->st.bad_messages);
		send_verdicts(q);
		if (ret < 0) {
			struct nlmsghdr *h = (struct nlmsghdr *)q->rbuf;

			if (h->nlmsg_seq == seq)
				return -1;   /* errno set from the kernel's error */
			continue;
		}
		/* An ACK is an NLMSG_ERROR with error 0, which mnl_cb_run reports as MNL_CB_STOP. */
		if (ret == MNL_CB_STOP && ((struct nlmsghdr *)q->rbuf)->nlmsg_seq == seq)
			return 0;
	}
	errno = ETIMEDOUT;
	return -1;
}

static void
nfq_free(struct nfq *q)
{
	if (q->nl)
		mnl_socket_close(q->nl);
	if (q->tstamp_fd > 0)
		close(q->tstamp_fd);
	free(q->rbuf);
	free(q->msgs);
	free(q->sbuf);
	free(q->pending);
	free(q);
}

struct nfq *
NFQ_Open(uint16_t num, const struct config *cfg)
{
	struct nfq *q = calloc(1, sizeof(*q));
	struct nlmsghdr *nlh;

	uint32_t flags;
	int fd, sz;

	if (q == NULL)
		return NULL;
	q->num = num;
	q->batch = cfg->batch;
	q->msg_max = cfg->copy_range + NFQ_MSG_OVERHEAD;
	q->rbuf_len = q->msg_max;
	if (q->rbuf_len < (size_t)MNL_SOCKET_BUFFER_SIZE)
		q->rbuf_len = (size_t)MNL_SOCKET_BUFFER_SIZE;
	q->cap = q->batch + 64;
	q->sbuf_len = (size_t)q->cap * 64 + (size_t)MNL_SOCKET_BUFFER_SIZE;
	/* Messages are packed, so a batch touches a few dozen kilobytes, not batch x 8 KB. */
	q->rbuf = malloc(q->msg_max * q->batch + q->rbuf_len + 4);  /* + 4: NFQ_ParseBatch */
	q->msgs = calloc(q->batch, sizeof(*q->msgs));
	q->sbuf = malloc(q->sbuf_len);
	q->pending = calloc(q->cap, sizeof(*q->pending));
	if (q->rbuf == NULL || q->msgs == NULL || q->sbuf == NULL || q->pending == NULL) {
		log_warnx("queue %u: out of memory", num);
		goto fail;
	}
	q->nl = mnl_socket_open(NETLINK_NETFILTER);
	if (q->nl == NULL) {
		log_warn("queue %u: netlink socket", num);
		goto fail;
	}
	if (mnl_socket_bind(q->nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		log_warn("queue %u: netlink bind", num);
		goto fail;
	}
	q->portid = mnl_socket_get_portid(q->nl);
	/* Any socket asking for receive timestamps makes the kernel stamp every packet on arrival,
	 * and NFQUEUE then passes the stamp (NFQA_TIMESTAMP) along. */
	q->tstamp_fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (q->tstamp_fd >= 0) {
		int one = 1;

		if (setsockopt(q->tstamp_fd, SOL_SOCKET, SO_TIMESTAMP, &one, sizeof(one)) < 0)
			log_warn("queue %u: receive timestamps", num);
	}
	fd = mnl_socket_get_fd(q->nl);
	if (cfg->rcvbuf > 0) {
		sz = (int)cfg->rcvbuf;
		/* FORCE goes past net.core.rmem_max; it needs CAP_NET_ADMIN, which we have. */
		if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz)) < 0 &&
		    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz)) < 0)
			log_warn("queue %u: receive buffer of %d bytes", num, sz);
	}

	{
		/* The packet loop waits in recv; the timeout bounds how late it sees the stop flag
		 * and the once-a-second housekeeping. */
		struct timeval tv = { .tv_sec = 0, .tv_usec = POLL_MS * 1000 };

		if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0) {
			log_warn("queue %u: receive timeout", num);
			goto fail;
		}
	}

	/* Bind and configure in one message: the kernel applies the command first, then the
	 * parameters, so no packet is ever copied with the defaults. */
	nlh = nfq_nlmsg_put(q->sbuf, NFQNL_MSG_CONFIG, num);
	nfq_nlmsg_cfg_put_cmd(nlh, AF_UNSPEC, NFQNL_CFG_CMD_BIND);
	nfq_nlmsg_cfg_put_params(nlh, NFQNL_COPY_PACKET, (int)cfg->copy_range);
	nfq_nlmsg_cfg_put_qmaxlen(nlh, cfg->queue_maxlen);
	flags = NFQA_CFG_F_GSO | (cfg->fail_open ? NFQA_CFG_F_FAIL_OPEN : 0);
	mnl_attr_put_u32(nlh, NFQA_CFG_FLAGS, htonl(flags));
	mnl_attr_put_u32(nlh, NFQA_CFG_MASK, htonl(NFQA_CFG_F_GSO | NFQA_CFG_F_FAIL_OPEN));
	if (config_request(q, nlh) < 0) {
		if (errno == EBUSY)
			log_warnx("queue %u: already bound by another program", num);
		else if (errno == EPERM)
			log_warnx("queue %u: permission denied (CAP_NET_ADMIN is needed)", num);
		else
			log_warn("queue %u: bind", num);
		goto fail;
	}
	return q;
fail:
	nfq_free(q);
	return NULL;
}

/* Receive up to one batch; the first receive waits (up to the socket's POLL_MS receive timeout)
 * when wait_first is set, the others never do. Returns the number of datagrams handled. */
static uint32_t
receive_batch(struct nfq *q, int fd, int wait_first)
{
	uint32_t got = 0;
	size_t off = 0, room = q->msg_max * q->batch + q->rbuf_len;

	/* Each receive needs rbuf_len bytes of room; messages are packed after each other. */
	while (got < q->batch && off + q->rbuf_len <= room) {
		char *buf = q->rbuf + off;
		ssize_t n = recv(fd, buf, q->rbuf_len, got == 0 && wait_first ? 0 : MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EINTR) {
				if (got == 0 && wait_first)
					break;   /* a signal: let the caller look at the stop flag */
				continue;
			}
			if (errno == ENOBUFS) {
				/* The kernel dropped (or, fail-open, accepted) packets it could not
				 * queue to us. Count it and carry on: the socket is still good. */
				q->st.enobufs++;
				continue;
			}
			if (errno != EAGAIN && errno != EWOULDBLOCK && q->st.recv_errors++ == 0)
				log_warn("queue %u: receive", q->num);
			break;
		}
		handle_datagram(q, buf, (size_t)n);
		got++;
		off += NLMSG_ALIGN((size_t)n);
	}
	if (got > 0)
		NFQ_Now(&q->batch_now);   /* after the wait, not before it */
	if (q->nmsgs)
		process_batch(q);
	return got;
}

void
NFQ_Run(struct nfq_worker *w)
{
	struct nfq *q = w->q;
	struct engine *eng = w->eng;
	struct nfq_control *ctl = w->ctl;
	int fd = mnl_socket_get_fd(q->nl);
	struct engine_time now;
	unsigned gen = atomic_load(&w->seen_gen);

	q->eng = eng;
	while (!atomic_load_explicit(&ctl->stop, memory_order_relaxed)) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		unsigned g = atomic_load_explicit(&ctl->gen, memory_order_acquire);
		uint32_t got;
		int due;

		if (g != gen) {
			ENG_SetConfig(eng, atomic_load(&ctl->cfg));
			gen = g;
			atomic_store(&w->seen_gen, g);
		}
		due = ENG_NextDueMs(eng);
		if (due >= 0 && due < POLL_MS) {
			/* A held RST's judgement is due before the receive timeout: wait no longer. */
			int ready = poll(&pfd, 1, due);

			if (ready < 0 && errno != EINTR && q->st.recv_errors++ == 0)
				log_warn("queue %u: poll", q->num);
			got = ready > 0 ? receive_batch(q, fd, 0) : 0;
		} else {
			/* Wait in the receive itself: one system call per batch fewer than poll. */
			got = receive_batch(q, fd, 1);
		}
		if (got > 0) {
			q->st.batches++;
			send_verdicts(q);   /* the batch's packets go on before any housekeeping */
		}
		if (got > 0)
			now = q->batch_now;
		else
			NFQ_Now(&now);
		ENG_SetTime(eng, &now);
		ENG_Tick(eng);
		ENG_ServeQuery(eng);   /* rstguardctl flows, timeouts: a bounded chunk */
		send_verdicts(q);   /* held packets whose wait ended in the tick */
	}
	/* Give a verdict to everything already delivered to us before unbinding: the kernel drops
	 * whatever is still queued when the queue goes away. */
	for (int rounds = 0; rounds < 64; rounds++) {
		if (receive_batch(q, fd, 0) == 0)
			break;
		send_verdicts(q);
	}
	/* Held packets are judged now rather than dropped with the queue. */
	ENG_Shutdown(eng);
	send_verdicts(q);
}

void
NFQ_Close(struct nfq *q)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh;

	if (q == NULL)
		return;
	nlh = nfq_nlmsg_put(buf, NFQNL_MSG_CONFIG, q->num);
	nfq_nlmsg_cfg_put_cmd(nlh, AF_UNSPEC, NFQNL_CFG_CMD_UNBIND);
	if (mnl_socket_sendto(q->nl, nlh, nlh->nlmsg_len) < 0)
		log_warn("queue %u: unbind", q->num);
	nfq_free(q);
}

void
NFQ_GetStats(const struct nfq *q, struct nfq_stats *st)
{
	*st = q->st;
}
