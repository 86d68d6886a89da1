/* Conntrack lookups and events over ctnetlink, with libmnl (see nat.h and docs/nat.md). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/netlink.h>
#include <netinet/in.h>

#include "nat.h"

#ifndef NETLINK_CAP_ACK
#define NETLINK_CAP_ACK 10
#endif

#define CT_MSG(type) ((NFNL_SUBSYS_CTNETLINK << 8) | (type))

/* Datagrams read per call when draining leftovers of an unsettled request. */
#define DRAIN_MAX 64

/* Event socket receive buffer asked for (SO_RCVBUFFORCE, else SO_RCVBUF and what the system
 * allows): conntrack bursts of new connections come faster than one read loop. */
#define EVENT_RCVBUF (4 << 20)

static unsigned
addr_len(int family)
{
	return family == AF_INET ? 4 : 16;
}

/* ---------------------------------------------------------------------------------------------
 * building the request */

size_t
NAT_BuildGet(void *buf, size_t len, uint32_t seq, int family, const uint8_t *src,
	     uint16_t sport, const uint8_t *dst, uint16_t dport, uint16_t zone)
{
	struct nlmsghdr *nlh;
	struct nfgenmsg *nfg;
	struct nlattr *tuple, *ip, *proto;

	if (len < NAT_REQ_MAX || (family != AF_INET && family != AF_INET6))
		return 0;
	memset(buf, 0, NAT_REQ_MAX);
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = CT_MSG(IPCTNL_MSG_CT_GET);
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	nlh->nlmsg_seq = seq;
	nfg = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfg));
	nfg->nfgen_family = (uint8_t)family;
	nfg->version = NFNETLINK_V0;
	nfg->res_id = 0;

	/* The tuple as seen, in CTA_TUPLE_ORIG: the kernel's hash lookup matches it against both
	 * directions of every entry (a reply-only GET is what libnetfilter_conntrack gets wrong). */
	tuple = mnl_attr_nest_start(nlh, CTA_TUPLE_ORIG);
	ip = mnl_attr_nest_start(nlh, CTA_TUPLE_IP);
	if (family == AF_INET) {
		mnl_attr_put(nlh, CTA_IP_V4_SRC, 4, src);
		mnl_attr_put(nlh, CTA_IP_V4_DST, 4, dst);
	} else {
		mnl_attr_put(nlh, CTA_IP_V6_SRC, 16, src);
		mnl_attr_put(nlh, CTA_IP_V6_DST, 16, dst);
	}
	mnl_attr_nest_end(nlh, ip);
	proto = mnl_attr_nest_start(nlh, CTA_TUPLE_PROTO);
	mnl_attr_put_u8(nlh, CTA_PROTO_NUM, IPPROTO_TCP);
	mnl_attr_put_u16(nlh, CTA_PROTO_SRC_PORT, htons(sport));
	mnl_attr_put_u16(nlh, CTA_PROTO_DST_PORT, htons(dport));
	mnl_attr_nest_end(nlh, proto);
	mnl_attr_nest_end(nlh, tuple);
	/* Zone 0 is what the kernel assumes without the attribute. */
	if (zone != 0)
		mnl_attr_put_u16(nlh, CTA_ZONE, htons(zone));
	return nlh->nlmsg_len;
}

/* ---------------------------------------------------------------------------------------------
 * parsing answers and events: every attribute is checked for type and length before use */

/* Attribute tables indexed by type; types above the max (newer kernels) are skipped. */
struct attr_tab {
	const struct nlattr **tb;
	unsigned max;
	const uint8_t *len;        /* expected payload length per type; 0 = any, 0xff = nested */
	int dup;                   /* set when a type appeared twice */
};

#define NESTED 0xff

static const uint8_t ct_len[CTA_MAX + 1] = {
	[CTA_TUPLE_ORIG] = NESTED,
	[CTA_TUPLE_REPLY] = NESTED,
	[CTA_STATUS] = 4,
	[CTA_ID] = 4,
	[CTA_ZONE] = 2,
};

static const uint8_t tuple_len[CTA_TUPLE_MAX + 1] = {
	[CTA_TUPLE_IP] = NESTED,
	[CTA_TUPLE_PROTO] = NESTED,
	[CTA_TUPLE_ZONE] = 2,
};

static const uint8_t ip_len[CTA_IP_MAX + 1] = {
	[CTA_IP_V4_SRC] = 4,
	[CTA_IP_V4_DST] = 4,
	[CTA_IP_V6_SRC] = 16,
	[CTA_IP_V6_DST] = 16,
};

static const uint8_t proto_len[CTA_PROTO_MAX + 1] = {
	[CTA_PROTO_NUM] = 1,
	[CTA_PROTO_SRC_PORT] = 2,
	[CTA_PROTO_DST_PORT] = 2,
};

static int
attr_cb(const struct nlattr *attr, void *data)
{
	struct attr_tab *t = data;
	unsigned type = mnl_attr_get_type(attr);
	uint8_t want;

	if (type > t->max)
		return MNL_CB_OK;
	want = t->len[type];
	if (want == NESTED) {
		if (mnl_attr_validate(attr, MNL_TYPE_NESTED) < 0)
			return MNL_CB_ERROR;
	} else if (want != 0) {
		if (mnl_attr_validate2(attr, MNL_TYPE_BINARY, want) < 0)
			return MNL_CB_ERROR;
	} else {
		return MNL_CB_OK;      /* an attribute we do not read: not checked */
	}
	if (t->tb[type])
		t->dup = 1;
	t->tb[type] = attr;
	return MNL_CB_OK;
}

/* Parse the nested attribute nest with table len[0..max] into tb. Returns 0 or -1. The nest's
 * own length was checked against its parent by mnl_attr_parse (mnl_attr_ok). */
static int
parse_nested(const struct nlattr *nest, const struct nlattr **tb, unsigned max, const uint8_t *len)
{
	struct attr_tab t = { tb, max, len, 0 };

	memset(tb, 0, (max + 1) * sizeof(*tb));
	if (mnl_attr_parse_nested(nest, attr_cb, &t) < 0 || t.dup)
		return -1;
	return 0;
}

/* Parse a CTA_TUPLE_* nest. Returns 1 (TCP, t filled), 0 (another protocol) or -1. */
static int
parse_tuple(const struct nlattr *nest, int family, struct nat_tuple *t)
{
	const struct nlattr *tb[CTA_TUPLE_MAX + 1], *ip[CTA_IP_MAX + 1], *pr[CTA_PROTO_MAX + 1];
	const struct nlattr *s, *d;
	unsigned alen = addr_len(family);

	if (parse_nested(nest, tb, CTA_TUPLE_MAX, tuple_len) < 0)
		return -1;
	if (!tb[CTA_TUPLE_IP] || !tb[CTA_TUPLE_PROTO])
		return -1;
	if (parse_nested(tb[CTA_TUPLE_IP], ip, CTA_IP_MAX, ip_len) < 0)
		return -1;
	if (parse_nested(tb[CTA_TUPLE_PROTO], pr, CTA_PROTO_MAX, proto_len) < 0)
		return -1;
	/* Addresses of the message's family and of no other. */
	if (family == AF_INET) {
		s = ip[CTA_IP_V4_SRC];
		d = ip[CTA_IP_V4_DST];
		if (ip[CTA_IP_V6_SRC] || ip[CTA_IP_V6_DST])
			return -1;
	} else {
		s = ip[CTA_IP_V6_SRC];
		d = ip[CTA_IP_V6_DST];
		if (ip[CTA_IP_V4_SRC] || ip[CTA_IP_V4_DST])
			return -1;
	}
	if (!s || !d || !pr[CTA_PROTO_NUM])
		return -1;
	if (mnl_attr_get_u8(pr[CTA_PROTO_NUM]) != IPPROTO_TCP)
		return 0;
	if (!pr[CTA_PROTO_SRC_PORT] || !pr[CTA_PROTO_DST_PORT])
		return -1;
	memset(t, 0, sizeof(*t));
	memcpy(t->src, mnl_attr_get_payload(s), alen);
	memcpy(t->dst, mnl_attr_get_payload(d), alen);
	t->sport = ntohs(mnl_attr_get_u16(pr[CTA_PROTO_SRC_PORT]));
	t->dport = ntohs(mnl_attr_get_u16(pr[CTA_PROTO_DST_PORT]));
	return 1;
}

int
NAT_TupleIsReverse(const struct nat_tuple *t, const struct nat_tuple *u, int family)
{
	unsigned alen = addr_len(family);

	return memcmp(t->src, u->dst, alen) == 0 && memcmp(t->dst, u->src, alen) == 0 &&
	       t->sport == u->dport && t->dport == u->sport;
}

static int
tuple_equal(const struct nat_tuple *t, const struct nat_tuple *u, int family)
{
	unsigned alen = addr_len(family);

	return memcmp(t->src, u->src, alen) == 0 && memcmp(t->dst, u->dst, alen) == 0 &&
	       t->sport == u->sport && t->dport == u->dport;
}

static int
bad(void)
{
	errno = EBADMSG;
	return -1;
}

int
NAT_ParseCt(const void *msg, size_t len, struct nat_map *out)
{
	const struct nlmsghdr *nlh = msg;
	const struct nfgenmsg *nfg;
	const struct nlattr *tb[CTA_MAX + 1];
	struct attr_tab t = { tb, CTA_MAX, ct_len, 0 };
	struct nat_map m;
	unsigned type;
	int family, r;

	/* libmnl walks attributes up to the aligned end of the message: that must be inside
	 * the buffer too (the kernel's messages are always aligned). */
	if (len < sizeof(*nlh) || nlh->nlmsg_len < sizeof(*nlh) + sizeof(*nfg) ||
	    MNL_ALIGN(nlh->nlmsg_len) > len)
		return bad();
	type = nlh->nlmsg_type;
	if (type != CT_MSG(IPCTNL_MSG_CT_NEW) && type != CT_MSG(IPCTNL_MSG_CT_DELETE))
		return bad();
	nfg = mnl_nlmsg_get_payload(nlh);
	family = nfg->nfgen_family;
	if (family != AF_INET && family != AF_INET6)
		return bad();

	memset(tb, 0, sizeof(tb));
	/* mnl_attr_parse stops at the first attribute whose length runs past nlmsg_len; a
	 * truncated tuple is then missing below. */
	if (mnl_attr_parse(nlh, sizeof(*nfg), attr_cb, &t) < 0 || t.dup)
		return bad();
	if (!tb[CTA_TUPLE_ORIG] || !tb[CTA_TUPLE_REPLY])
		return bad();

	memset(&m, 0, sizeof(m));
	m.family = (uint8_t)family;
	m.dir = NAT_DIR_NONE;
	r = parse_tuple(tb[CTA_TUPLE_ORIG], family, &m.orig);
	if (r < 0)
		return bad();
	if (r == 0)
		return 0;
	r = parse_tuple(tb[CTA_TUPLE_REPLY], family, &m.reply);
	if (r <= 0)
		return bad();     /* a TCP original with a non-TCP reply is nonsense */
	if (tb[CTA_ID])
		m.id = ntohl(mnl_attr_get_u32(tb[CTA_ID]));
	if (tb[CTA_STATUS])
		m.status = ntohl(mnl_attr_get_u32(tb[CTA_STATUS]));
	if (tb[CTA_ZONE])
		m.zone = ntohs(mnl_attr_get_u16(tb[CTA_ZONE]));
	m.translated = !NAT_TupleIsReverse(&m.reply, &m.orig, family);
	*out = m;
	return 1;
}

void
NAT_FormatTuple(int family, const struct nat_tuple *t, char *buf, size_t len)
{
	char s[INET6_ADDRSTRLEN], d[INET6_ADDRSTRLEN];

	if (!inet_ntop(family, t->src, s, sizeof(s)))
		strcpy(s, "?");
	if (!inet_ntop(family, t->dst, d, sizeof(d)))
		strcpy(d, "?");
	if (family == AF_INET6)
		snprintf(buf, len, "[%s]:%u->[%s]:%u", s, t->sport, d, t->dport);
	else
		snprintf(buf, len, "%s:%u->%s:%u", s, t->sport, d, t->dport);
}

/* ---------------------------------------------------------------------------------------------
 * one request/answer exchange */

struct exchange {
	uint32_t seq;
	int done;               /* the ACK or the error for seq arrived */
	int err;                /* its errno (0: ACK) */
	int found;              /* an answer for seq was parsed into *out */
	int bad;                /* an answer for seq was malformed */
	struct nat_map *out;
};

/* Process one received datagram of len bytes for exchange x. Messages of other sequence
 * numbers (answers or ACKs of earlier requests) are counted and dropped. */
static void
process_answer(struct nat_lookup *n, const void *buf, size_t len, struct exchange *x)
{
	const struct nlmsghdr *nlh = buf;
	int rem = (int)len;

	for (; mnl_nlmsg_ok(nlh, rem); nlh = mnl_nlmsg_next(nlh, &rem)) {
		if (nlh->nlmsg_seq != x->seq || nlh->nlmsg_pid != n->portid) {
			n->st.stale++;
			continue;
		}
		if (nlh->nlmsg_type == NLMSG_ERROR) {
			const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);

			if (mnl_nlmsg_get_payload_len(nlh) < sizeof(*e)) {
				n->st.bad_messages++;
				x->bad = 1;
				continue;
			}
			x->done = 1;
			x->err = e->error < 0 ? -e->error : e->error;
			return;   /* the last message of the exchange */
		}
		if (nlh->nlmsg_type == NLMSG_NOOP || nlh->nlmsg_type == NLMSG_OVERRUN)
			continue;
		if (nlh->nlmsg_type == NLMSG_DONE) {
			x->done = 1;
			return;
		}
		if (nlh->nlmsg_type == CT_MSG(IPCTNL_MSG_CT_NEW) && !x->found) {
			struct nat_map m;

			if (NAT_ParseCt(nlh, (size_t)rem, &m) == 1) {
				*x->out = m;
				x->found = 1;
				continue;
			}
		}
		n->st.bad_messages++;
		x->bad = 1;
	}
	if (rem > 0)
		n->st.bad_messages++;   /* trailing bytes that are no message */
}

/* Receive one datagram without blocking. Returns its length, -1 with errno (EAGAIN when none),
 * or -2 for a datagram to ignore (truncated, or not sent by the kernel). */
static ssize_t
recv_one(int fd, void *buf, size_t len)
{
	struct sockaddr_nl sa;
	struct iovec iov = { buf, len };
	struct msghdr msg;
	ssize_t r;

	memset(&msg, 0, sizeof(msg));
	memset(&sa, 0, sizeof(sa));
	msg.msg_name = &sa;
	msg.msg_namelen = sizeof(sa);
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	r = recvmsg(fd, &msg, MSG_DONTWAIT);
	if (r < 0)
		return -1;
	if ((msg.msg_flags & MSG_TRUNC) || msg.msg_namelen != sizeof(sa) || sa.nl_pid != 0)
		return -2;
	return r;
}

/* Read and drop whatever is queued (late answers to an unsettled request). */
static void
drain(struct nat_lookup *n)
{
	int fd = mnl_socket_get_fd(n->nl), i;
	struct exchange x;
	struct nat_map m;
	ssize_t r;

	/* seq + 1 is never in flight: every queued message counts as stale. */
	memset(&x, 0, sizeof(x));
	x.seq = n->seq + 1;
	x.out = &m;
	for (i = 0; i < DRAIN_MAX; i++) {
		r = recv_one(fd, n->buf, sizeof(n->buf));
		if (r == -2) {
			n->st.bad_messages++;
			continue;
		}
		if (r < 0) {
			if (errno == EINTR || errno == ENOBUFS)
				continue;
			break;
		}
		process_answer(n, n->buf, (size_t)r, &x);
	}
}

static int64_t
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t
now_ms(void)
{
	return now_us() / 1000;
}

int
NAT_Lookup(struct nat_lookup *n, int family, const uint8_t *src, uint16_t sport,
	   const uint8_t *dst, uint16_t dport, uint16_t zone, struct nat_map *out)
{
	uint8_t req[NAT_REQ_MAX] __attribute__((aligned(4)));
	struct nat_tuple q;
	struct exchange x;
	int64_t deadline = 0;
	size_t len;
	ssize_t r;
	int fd;

	if (!n->nl) {
		errno = EBADF;
		return -1;
	}
	fd = mnl_socket_get_fd(n->nl);
	if (n->unsettled)
		drain(n);
	n->seq++;
	len = NAT_BuildGet(req, sizeof(req), n->seq, family, src, sport, dst, dport, zone);
	if (len == 0) {
		errno = EAFNOSUPPORT;
		return -1;
	}
	n->st.lookups++;
	if (mnl_socket_sendto(n->nl, req, len) < 0) {
		n->st.errors++;
		return -1;
	}
	n->unsettled = 1;

	memset(&x, 0, sizeof(x));
	x.seq = n->seq;
	x.out = out;
	/* The kernel answers within sendto: the answer and the ACK are normally queued already,
	 * and the clock is only read if they are not. */
	while (!x.done) {
		r = recv_one(fd, n->buf, sizeof(n->buf));
		if (r == -2) {
			n->st.bad_messages++;
			continue;
		}
		if (r < 0) {
			struct pollfd p = { fd, POLLIN, 0 };
			int64_t left;

			if (errno == EINTR || errno == ENOBUFS)
				continue;      /* ENOBUFS: something was lost, maybe ours: wait on */
			if (errno != EAGAIN && errno != EWOULDBLOCK) {
				int e = errno;

				n->st.errors++;
				errno = e;
				return -1;
			}
			if (deadline == 0)
				deadline = now_ms() + n->timeout_ms;
			left = deadline - now_ms();
			if (left <= 0)
				break;
			if (poll(&p, 1, (int)left) < 0 && errno != EINTR) {
				int e = errno;

				n->st.errors++;
				errno = e;
				return -1;
			}
			continue;
		}
		process_answer(n, n->buf, (size_t)r, &x);
	}

	if (!x.done) {
		/* Timed out. An answer without its ACK is still the answer (the late ACK will be
		 * dropped as stale); the socket stays unsettled either way. */
		if (!x.found) {
			n->st.timeouts++;
			errno = ETIMEDOUT;
			return -1;
		}
	} else {
		n->unsettled = 0;
		if (x.err == ENOENT) {
			n->st.misses++;
			return 0;
		}
		if (x.err != 0) {
			n->st.errors++;
			errno = x.err;
			return -1;
		}
		if (!x.found) {
			n->st.errors++;
			errno = x.bad ? EBADMSG : EPROTO;
			return -1;
		}
	}

	/* Where does the tuple we asked for sit in the entry? Anywhere else means the answer is
	 * not about our packet. */
	memset(&q, 0, sizeof(q));
	memcpy(q.src, src, addr_len(family));
	memcpy(q.dst, dst, addr_len(family));
	q.sport = sport;
	q.dport = dport;
	if (out->family != family) {
		out->dir = NAT_DIR_NONE;
	} else if (tuple_equal(&q, &out->orig, family)) {
		out->dir = NAT_DIR_ORIG;
	} else if (tuple_equal(&q, &out->reply, family)) {
		out->dir = NAT_DIR_REPLY;
	} else {
		out->dir = NAT_DIR_NONE;
	}
	if (out->dir == NAT_DIR_NONE) {
		n->st.errors++;
		errno = EPROTO;
		return -1;
	}
	n->st.hits++;
	return 1;
}

/* ---------------------------------------------------------------------------------------------
 * sockets */

static int
set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -1;
	return 0;
}

int
NAT_Open(struct nat_lookup *n, unsigned timeout_ms)
{
	static const uint8_t zero[16];
	struct nat_map m;
	int64_t t0;
	int one = 1, e, r;

	memset(n, 0, offsetof(struct nat_lookup, buf));
	n->nl = mnl_socket_open(NETLINK_NETFILTER);
	if (!n->nl)
		return -1;
	if (mnl_socket_bind(n->nl, 0, MNL_SOCKET_AUTOPID) < 0)
		goto fail;
	if (set_nonblock(mnl_socket_get_fd(n->nl)) < 0)
		goto fail;
	/* Errors need not echo our request back (older kernels: ignored). */
	(void)mnl_socket_setsockopt(n->nl, NETLINK_CAP_ACK, &one, sizeof(one));
	n->portid = mnl_socket_get_portid(n->nl);
	n->seq = (uint32_t)time(NULL);
	n->timeout_ms = timeout_ms;

	/* One GET of a tuple no connection has (0.0.0.0:0 both ways) proves that ctnetlink
	 * answers us (EPERM without CAP_NET_ADMIN, EPROTONOSUPPORT without conntrack) and takes
	 * the cost of the first call (cold code and kernel paths) here rather than on a packet. */
	t0 = now_us();
	r = NAT_Lookup(n, AF_INET, zero, 0, zero, 0, 0, &m);
	n->first_us = (uint32_t)(now_us() - t0);
	if (r < 0) {
		e = errno;
		NAT_Close(n);
		errno = e;
		return -1;
	}
	memset(&n->st, 0, sizeof(n->st));
	return 0;
fail:
	e = errno;
	mnl_socket_close(n->nl);
	n->nl = NULL;
	errno = e;
	return -1;
}

void
NAT_Close(struct nat_lookup *n)
{
	if (n->nl)
		mnl_socket_close(n->nl);
	if (n->ev)
		mnl_socket_close(n->ev);
	n->nl = NULL;
	n->ev = NULL;
}

int
NAT_Subscribe(struct nat_lookup *n)
{
	unsigned groups = (1u << (NFNLGRP_CONNTRACK_NEW - 1)) | (1u << (NFNLGRP_CONNTRACK_DESTROY - 1));
	int size = EVENT_RCVBUF, fd, e;

	if (n->ev)
		return 0;
	n->ev = mnl_socket_open(NETLINK_NETFILTER);
	if (!n->ev)
		return -1;
	fd = mnl_socket_get_fd(n->ev);
	if (set_nonblock(fd) < 0 || mnl_socket_bind(n->ev, groups, MNL_SOCKET_AUTOPID) < 0)
		goto fail;
	/* A bigger buffer if we may (CAP_NET_ADMIN), else what rmem_max allows. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) < 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	return 0;
fail:
	e = errno;
	mnl_socket_close(n->ev);
	n->ev = NULL;
	errno = e;
	return -1;
}

int
NAT_EventFd(const struct nat_lookup *n)
{
	return n->ev ? mnl_socket_get_fd(n->ev) : -1;
}

/* Deliver the events of one datagram. Returns 1 when fn asked to stop. */
static int
process_events(struct nat_lookup *n, const void *buf, size_t len, nat_event_fn fn, void *ctx,
	       int *delivered)
{
	const struct nlmsghdr *nlh = buf;
	int rem = (int)len, r;
	struct nat_map m;

	for (; mnl_nlmsg_ok(nlh, rem); nlh = mnl_nlmsg_next(nlh, &rem)) {
		if (nlh->nlmsg_type == NLMSG_NOOP || nlh->nlmsg_type == NLMSG_DONE ||
		    nlh->nlmsg_type == NLMSG_OVERRUN)
			continue;
		r = NAT_ParseCt(nlh, (size_t)rem, &m);
		if (r < 0) {
			n->st.bad_messages++;
			continue;
		}
		if (r == 0)
			continue;    /* not TCP */
		m.event = nlh->nlmsg_type == CT_MSG(IPCTNL_MSG_CT_DELETE) ? NAT_EV_DESTROY : NAT_EV_NEW;
		n->st.events++;
		(*delivered)++;
		if (fn && fn(&m, ctx))
			return 1;
	}
	if (rem > 0)
		n->st.bad_messages++;
	return 0;
}

int
NAT_ReadEvents(struct nat_lookup *n, nat_event_fn fn, void *ctx, unsigned max)
{
	int fd, delivered = 0;
	unsigned i;
	ssize_t r;

	if (!n->ev) {
		errno = EBADF;
		return -1;
	}
	fd = mnl_socket_get_fd(n->ev);
	for (i = 0; i < max; i++) {
		r = recv_one(fd, n->buf, sizeof(n->buf));
		if (r == -2) {
			n->st.bad_messages++;
			continue;
		}
		if (r < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			if (errno == ENOBUFS) {
				/* The kernel dropped events; the socket itself is fine. */
				n->st.overruns++;
				continue;
			}
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (process_events(n, n->buf, (size_t)r, fn, ctx, &delivered))
			break;
	}
	return delivered;
}
