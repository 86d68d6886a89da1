/* Conntrack lookups for NAT gateways (issue 12): given a TCP packet's tuple as seen in raw
 * PREROUTING (before conntrack), ask the kernel through ctnetlink for the connection's original
 * and reply tuples, so that the two halves of a translated connection (the inside client's
 * packets and the server's answers to the NAT address) can be joined into one flow.
 *
 * One IPCTNL_MSG_CT_GET per lookup on a NETLINK_NETFILTER socket of our own (libmnl, no
 * libnetfilter_conntrack: its nfct_query cannot look up by the reply tuple alone). The kernel
 * matches the tuple we send against both directions of every entry. Answers are treated as
 * hostile input: every attribute's type and length is checked before use. Requests carry fresh
 * sequence numbers and answers to earlier requests (a late answer after a timeout, an ACK left
 * behind) are dropped, so one lost message never shifts later answers.
 *
 * Optionally, NFNLGRP_CONNTRACK_NEW and _DESTROY events on a second, non-blocking socket deliver
 * the same maps as connections are confirmed and destroyed: a shortcut (they arrive before the
 * SYN-ACK) but lossy under load, never the only source. See docs/nat.md. */
#ifndef RSTGUARD_NAT_H
#define RSTGUARD_NAT_H

#include <stddef.h>
#include <stdint.h>

/* One direction of a connection: addresses (IPv4 in the first 4 bytes, the rest zero, as in
 * struct pkt) and ports in host order. */
struct nat_tuple {
	uint8_t src[16], dst[16];
	uint16_t sport, dport;
};

/* Which of the entry's tuples the looked-up tuple is. */
#define NAT_DIR_ORIG  0     /* the packet went the way the connection's first packet went */
#define NAT_DIR_REPLY 1     /* the packet is an answer (as it arrives, after any translation) */
#define NAT_DIR_NONE  2     /* neither (events, or a tuple the kernel matched otherwise) */

/* What the kernel knows of one TCP connection. */
struct nat_map {
	struct nat_tuple orig;   /* how the client sent it (before any translation) */
	struct nat_tuple reply;  /* how the server's answer arrives (after translation) */
	uint32_t id;             /* conntrack id (CTA_ID; 0 if absent): stable for the entry's life */
	uint32_t status;         /* IPS_* bits (CTA_STATUS; 0 if absent), e.g. IPS_SRC_NAT */
	uint16_t zone;           /* conntrack zone (CTA_ZONE; 0 = the default zone) */
	uint8_t family;          /* AF_INET or AF_INET6 */
	uint8_t translated;      /* reply differs from the reversed original: NAT of some kind */
	uint8_t dir;             /* NAT_DIR_*: where the looked-up tuple sits (lookups only) */
	uint8_t event;           /* NAT_EV_* for events, 0 for lookups */
	uint8_t pad[2];
};

#define NAT_EV_NEW     1
#define NAT_EV_DESTROY 2

struct nat_stats {
	uint64_t lookups;        /* NAT_Lookup calls that sent a request */
	uint64_t hits;           /* ... answered with an entry */
	uint64_t misses;         /* ... answered ENOENT */
	uint64_t errors;         /* ... failed otherwise (send error, bad answer, other errno) */
	uint64_t timeouts;       /* ... not answered within the timeout */
	uint64_t stale;          /* messages dropped because they answered an earlier request */
	uint64_t events;         /* events delivered by NAT_ReadEvents */
	uint64_t overruns;       /* ENOBUFS on the event socket: the kernel dropped events */
	uint64_t bad_messages;   /* malformed messages (answers or events) ignored */
};

/* A lookup handle: the caller owns the memory (small but for the receive buffer). Not shared
 * between threads: one per packet thread. */
#define NAT_BUFSZ 8192
struct nat_lookup {
	struct mnl_socket *nl;   /* GET socket */
	struct mnl_socket *ev;   /* event socket (NAT_Subscribe), or NULL */
	uint32_t portid;
	uint32_t seq;            /* sequence number of the last request sent */
	unsigned timeout_ms;
	int unsettled;           /* the last request did not end cleanly: drain before the next */
	uint32_t first_us;       /* how long NAT_Open's first GET on the socket took */
	struct nat_stats st;
	uint8_t buf[NAT_BUFSZ] __attribute__((aligned(8)));
};

/* Callback for events: return 0 to go on, non-zero to stop reading. */
typedef int (*nat_event_fn)(const struct nat_map *m, void *ctx);

/* Open the GET socket and check with one GET (a miss) that ctnetlink answers; that first call
 * on the socket, the slowest, is timed in first_us. A lookup waits at most timeout_ms for its
 * answer (0: only what is already queued, which is enough in practice: the kernel answers a GET
 * within the send call). Counters start at zero. Returns 0, or -1 with errno set (EPERM: no
 * CAP_NET_ADMIN; EPROTONOSUPPORT, EOPNOTSUPP: no conntrack netlink in this kernel). */
int NAT_Open(struct nat_lookup *n, unsigned timeout_ms);

/* Close both sockets; n may be reopened afterwards. Safe on a closed or zeroed handle. */
void NAT_Close(struct nat_lookup *n);

/* Look up a TCP connection by one of its tuples as seen on the wire (src, dst: 4 bytes for
 * AF_INET, 16 for AF_INET6; ports in host order) in conntrack zone zone (0: the default).
 * Returns 1 and fills *out when the kernel has an entry, 0 when it has none, -1 on any other
 * failure with errno set (ETIMEDOUT: no answer in time; EBADMSG: a malformed answer). */
int NAT_Lookup(struct nat_lookup *n, int family, const uint8_t *src, uint16_t sport,
	       const uint8_t *dst, uint16_t dport, uint16_t zone, struct nat_map *out);

/* Join the NEW and DESTROY conntrack event groups on a second, non-blocking socket (receive
 * buffer enlarged when allowed). Returns 0, or -1 with errno set. */
int NAT_Subscribe(struct nat_lookup *n);

/* The event socket's descriptor for poll(), or -1 when not subscribed. */
int NAT_EventFd(const struct nat_lookup *n);

/* Deliver the pending TCP events to fn, reading at most max datagrams (one event each) and
 * never blocking. ENOBUFS (events lost) is counted in st.overruns and reading goes on. Returns
 * the number of events delivered, or -1 with errno set on a socket error. */
int NAT_ReadEvents(struct nat_lookup *n, nat_event_fn fn, void *ctx, unsigned max);

/* Build an IPCTNL_MSG_CT_GET request for the tuple into buf (at least NAT_REQ_MAX bytes).
 * Returns its length, or 0 for an unsupported family. Exposed for tests. */
#define NAT_REQ_MAX 256
size_t NAT_BuildGet(void *buf, size_t len, uint32_t seq, int family, const uint8_t *src,
		    uint16_t sport, const uint8_t *dst, uint16_t dport, uint16_t zone);

/* Parse one ctnetlink conntrack message (IPCTNL_MSG_CT_NEW or _DELETE, nlmsghdr included, of
 * len bytes at most) into *out. Returns 1 for a TCP entry, 0 for a well-formed entry of
 * another protocol, -1 (errno EBADMSG) when malformed. Never reads outside [msg, msg + len). */
int NAT_ParseCt(const void *msg, size_t len, struct nat_map *out);

/* Is t (in direction dir of some map) the reversed tuple of u? */
int NAT_TupleIsReverse(const struct nat_tuple *t, const struct nat_tuple *u, int family);

/* Format a tuple as "ADDR:PORT->ADDR:PORT" (IPv6 in brackets) into buf (at least
 * NAT_TUPLE_STRLEN bytes). */
#define NAT_TUPLE_STRLEN 112
void NAT_FormatTuple(int family, const struct nat_tuple *t, char *buf, size_t len);

#endif
