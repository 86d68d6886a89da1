/* nfq_accept: a minimal accept-all NFQUEUE consumer, the baseline of the network benchmark
 * (bench/run.sh). It binds a queue with the same settings as rstguard (GSO, fail-open, copy range
 * 256, queue length 4096, SO_RCVBUFFORCE 8 MB) and accepts every packet, in one of two shapes:
 *
 *   --per-packet  one blocking receive and one NFQNL_MSG_VERDICT per packet (the shape of
 *                 libnetfilter_queue's examples/nf-queue.c);
 *   --batched     block for the first message, drain up to BATCH-1 more with MSG_DONTWAIT, then
 *                 accept them all with one NFQNL_MSG_VERDICT_BATCH (what rstguard does when a
 *                 whole batch is accepted).
 *
 *   nfq_accept [-q NUM] [--per-packet | --batched] [-b BATCH]
 *
 * SIGUSR1 prints the counters on stderr ("nfq_accept: packets N batches B enobufs E ..."); SIGTERM
 * or SIGINT gives a verdict to whatever is still queued, unbinds and exits. */
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <libnetfilter_queue/libnetfilter_queue.h>

#define COPY_RANGE 256
#define QUEUE_MAXLEN 4096
#define RCVBUF (8 * 1024 * 1024)
#define RECV_TIMEOUT_MS 200   /* blocking receives wake up this often to see signals */

struct consumer {
	struct mnl_socket *nl;
	uint16_t num;
	uint32_t portid;
	int per_packet;
	/* the current batch */
	uint32_t nids, max_id;
	/* counters */
	unsigned long long packets, batches, enobufs, recv_errors, bad_messages, verdict_errors;
};

static volatile sig_atomic_t got_stop, got_usr1;

static void
on_signal(int sig)
{
	if (sig == SIGUSR1)
		got_usr1 = 1;
	else
		got_stop = 1;
}

static void
print_stats(const struct consumer *c)
{
	fprintf(stderr, "nfq_accept: packets %llu batches %llu enobufs %llu recv_errors %llu bad_messages %llu verdict_errors %llu\n",
		c->packets, c->batches, c->enobufs, c->recv_errors, c->bad_messages, c->verdict_errors);
	fflush(stderr);
}

static void
send_msg(struct consumer *c, const struct nlmsghdr *nlh)
{
	if (mnl_socket_sendto(c->nl, nlh, nlh->nlmsg_len) < 0)
		c->verdict_errors++;
}

/* One NFQNL_MSG_VERDICT for one packet. */
static void
verdict_one(struct consumer *c, uint32_t id)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = nfq_nlmsg_put(buf, NFQNL_MSG_VERDICT, c->num);

	nfq_nlmsg_verdict_put(nlh, (int)id, NF_ACCEPT);
	send_msg(c, nlh);
}

/* One NFQNL_MSG_VERDICT_BATCH: accept every queued id up to max_id. */
static void
verdict_batch(struct consumer *c)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh;

	if (c->nids == 0)
		return;
	nlh = nfq_nlmsg_put(buf, NFQNL_MSG_VERDICT_BATCH, c->num);
	nfq_nlmsg_verdict_put(nlh, (int)c->max_id, NF_ACCEPT);
	send_msg(c, nlh);
	c->batches++;
	c->nids = 0;
	c->max_id = 0;
}

static int
packet_cb(const struct nlmsghdr *nlh, void *data)
{
	struct consumer *c = data;
	struct nlattr *attr[NFQA_MAX + 1] = { 0 };
	struct nfqnl_msg_packet_hdr *ph;
	uint32_t id;

	if (nfq_nlmsg_parse(nlh, attr) < 0 || attr[NFQA_PACKET_HDR] == NULL) {
		c->bad_messages++;
		return MNL_CB_OK;
	}
	ph = mnl_attr_get_payload(attr[NFQA_PACKET_HDR]);
	id = ntohl(ph->packet_id);
	c->packets++;
	if (c->per_packet) {
		verdict_one(c, id);
		c->batches++;
	} else {
		if (id > c->max_id)
			c->max_id = id;
		c->nids++;
	}
	return MNL_CB_OK;
}

/* Handle one datagram; returns -1 for an error message whose sequence number is seq (a failed
 * configuration request), 1 for its acknowledgement, 0 otherwise. */
static int
handle(struct consumer *c, char *buf, size_t n, uint32_t seq)
{
	int ret = mnl_cb_run(buf, n, 0, c->portid, packet_cb, c);
	struct nlmsghdr *h = (struct nlmsghdr *)buf;

	if (seq && h->nlmsg_seq == seq) {
		if (ret < 0)
			return -1;
		if (ret == MNL_CB_STOP)
			return 1;
	}
	if (ret < 0)
		c->verdict_errors++;   /* the kernel refused a verdict */
	return 0;
}

/* Receive one datagram; wait (up to RECV_TIMEOUT_MS) unless dontwait. Returns the length, 0 when
 * there was nothing, -1 on a hard error. */
static ssize_t
receive(struct consumer *c, char *buf, size_t len, int dontwait)
{
	for (;;) {
		ssize_t n = recv(mnl_socket_get_fd(c->nl), buf, len, dontwait ? MSG_DONTWAIT : 0);

		if (n >= 0)
			return n;
		if (errno == ENOBUFS) {
			/* The socket overflowed: the kernel accepted (fail-open) what it could not
			 * queue to us. Count it and carry on. */
			c->enobufs++;
			continue;
		}
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return 0;
		c->recv_errors++;
		return -1;
	}
}

static int
configure(struct consumer *c, char *buf, size_t len)
{
	char sbuf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = nfq_nlmsg_put(sbuf, NFQNL_MSG_CONFIG, c->num);
	uint32_t seq = 1;

	/* Bind and configure in one message, as rstguard does. */
	nfq_nlmsg_cfg_put_cmd(nlh, AF_UNSPEC, NFQNL_CFG_CMD_BIND);
	nfq_nlmsg_cfg_put_params(nlh, NFQNL_COPY_PACKET, COPY_RANGE);
	nfq_nlmsg_cfg_put_qmaxlen(nlh, QUEUE_MAXLEN);
	mnl_attr_put_u32(nlh, NFQA_CFG_FLAGS, htonl(NFQA_CFG_F_GSO | NFQA_CFG_F_FAIL_OPEN));
	mnl_attr_put_u32(nlh, NFQA_CFG_MASK, htonl(NFQA_CFG_F_GSO | NFQA_CFG_F_FAIL_OPEN));
	nlh->nlmsg_flags |= NLM_F_ACK;
	nlh->nlmsg_seq = seq;
	if (mnl_socket_sendto(c->nl, nlh, nlh->nlmsg_len) < 0)
		return -1;
	for (int tries = 0; tries < 50; tries++) {
		ssize_t n = receive(c, buf, len, 0);
		int r;

		if (n < 0)
			return -1;
		if (n == 0)
			continue;
		r = handle(c, buf, (size_t)n, seq);
		verdict_batch(c);   /* packets that arrived meanwhile */
		if (r < 0)
			return -1;
		if (r > 0)
			return 0;
	}
	errno = ETIMEDOUT;
	return -1;
}

static void
usage(FILE *out)
{
	fprintf(out, "usage: nfq_accept [-q NUM] [--per-packet | --batched] [-b BATCH]\n");
}

int
main(int argc, char **argv)
{
	struct consumer c = { .num = 0, .per_packet = 0 };
	struct sigaction sa;
	struct timeval tv = { .tv_sec = 0, .tv_usec = RECV_TIMEOUT_MS * 1000 };
	size_t len = MNL_SOCKET_BUFFER_SIZE > COPY_RANGE + 1024 ? MNL_SOCKET_BUFFER_SIZE : COPY_RANGE + 1024;
	char *buf;
	unsigned batch = 64;
	int sz = RCVBUF, mode_set = 0;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--per-packet") == 0) {
			c.per_packet = 1;
			mode_set++;
		} else if (strcmp(argv[i], "--batched") == 0) {
			c.per_packet = 0;
			mode_set++;
		} else if (strcmp(argv[i], "-q") == 0 && i + 1 < argc) {
			c.num = (uint16_t)strtoul(argv[++i], NULL, 10);
		} else if (strcmp(argv[i], "-b") == 0 && i + 1 < argc) {
			batch = (unsigned)strtoul(argv[++i], NULL, 10);
			if (batch < 1 || batch > 1024) {
				fprintf(stderr, "nfq_accept: batch 1..1024\n");
				return 2;
			}
		} else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return 0;
		} else {
			usage(stderr);
			return 2;
		}
	}
	if (mode_set > 1) {
		usage(stderr);
		return 2;
	}

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;   /* no SA_RESTART: a blocked receive returns EINTR */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);

	buf = malloc(len);
	c.nl = mnl_socket_open(NETLINK_NETFILTER);
	if (buf == NULL || c.nl == NULL) {
		perror("nfq_accept: netlink socket");
		return 1;
	}
	if (mnl_socket_bind(c.nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		perror("nfq_accept: netlink bind");
		return 1;
	}
	c.portid = mnl_socket_get_portid(c.nl);
	if (setsockopt(mnl_socket_get_fd(c.nl), SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz)) < 0)
		perror("nfq_accept: SO_RCVBUFFORCE");
	if (setsockopt(mnl_socket_get_fd(c.nl), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0)
		perror("nfq_accept: SO_RCVTIMEO");
	if (configure(&c, buf, len) < 0) {
		fprintf(stderr, "nfq_accept: binding queue %u: %s\n", c.num, strerror(errno));
		return 1;
	}
	fprintf(stderr, "nfq_accept: queue %u bound, %s\n", c.num,
		c.per_packet ? "one verdict per packet" : "batch verdicts");
	fflush(stderr);

	while (!got_stop) {
		ssize_t n;

		if (got_usr1) {
			got_usr1 = 0;
			print_stats(&c);
		}
		/* Block (bounded by SO_RCVTIMEO) for the first message. */
		n = receive(&c, buf, len, 0);
		if (n < 0)
			break;
		if (n == 0)
			continue;
		handle(&c, buf, (size_t)n, 0);
		if (c.per_packet)
			continue;   /* already accepted, one verdict message per packet */
		/* Drain without blocking, then one batch verdict for all of them. */
		for (unsigned got = 1; got < batch; got++) {
			n = receive(&c, buf, len, 1);
			if (n <= 0)
				break;
			handle(&c, buf, (size_t)n, 0);
		}
		verdict_batch(&c);
	}
	/* Accept what is still queued to us before unbinding (the kernel drops it otherwise). */
	for (int rounds = 0; rounds < 4096; rounds++) {
		ssize_t n = receive(&c, buf, len, 1);

		if (n <= 0)
			break;
		handle(&c, buf, (size_t)n, 0);
		if (c.nids >= batch)
			verdict_batch(&c);
	}
	verdict_batch(&c);
	{
		char sbuf[MNL_SOCKET_BUFFER_SIZE];
		struct nlmsghdr *nlh = nfq_nlmsg_put(sbuf, NFQNL_MSG_CONFIG, c.num);

		nfq_nlmsg_cfg_put_cmd(nlh, AF_UNSPEC, NFQNL_CFG_CMD_UNBIND);
		send_msg(&c, nlh);
	}
	print_stats(&c);
	mnl_socket_close(c.nl);
	free(buf);
	return 0;
}
