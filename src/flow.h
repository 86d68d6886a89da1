/* The flow table: preallocated flow records, an open-addressing index under a keyed hash so that
 * both directions of a connection find the same record, and a hard cap with a defined eviction
 * order. One table per packet thread; nothing here is shared between threads. */
#ifndef RSTGUARD_FLOW_H
#define RSTGUARD_FLOW_H

#include <stddef.h>
#include <stdint.h>

#include "packet.h"

/* Direction index: 0 = client to server (the SYN's sender, or the higher port when picked up
 * mid-stream), 1 = server to client. */
#define DIR_TOSERVER 0
#define DIR_TOCLIENT 1

enum tcp_state {
	TCP_NONE = 0,
	TCP_SYN_SENT,      /* SYN seen */
	TCP_SYN_RECV,      /* SYN-ACK seen */
	TCP_ESTABLISHED,   /* handshake completed, or picked up mid-stream */
	TCP_FIN_WAIT,      /* one side sent FIN */
	TCP_CLOSING,       /* both sides sent FIN, not both acknowledged */
	TCP_TIME_WAIT,     /* both FINs acknowledged */
	TCP_CLOSED,        /* a RST was accepted */
	TCP_STATE_MAX
};

/* IP ID policy learnt per sender within a flow (IPv4): a counter (per connection, per
 * destination or host-wide: all count up within one flow), one constant value (0 for FreeBSD and
 * XNU on DF packets; some embedded stacks use another), or random (OpenBSD). */
enum ipid_habit { IPID_UNKNOWN = 0, IPID_INCREMENTING, IPID_CONSTANT, IPID_RANDOM };
#define IPID_SAMPLES_MAX 63

/* Per-direction flags. */
#define FD_SEEN       0x0001  /* a packet was seen in this direction */
#define FD_SYN        0x0002  /* sent SYN */
#define FD_FIN        0x0004  /* sent FIN */
#define FD_RST        0x0008  /* sent RST */
#define FD_TS         0x0010  /* timestamps in use */
#define FD_SACKOK     0x0020
#define FD_WSCALE     0x0040
#define FD_DF         0x0080  /* last non-RST packet had DF */
#define FD_ISN        0x0100  /* isn is known (SYN seen) */
#define FD_FIN_ACKED  0x0200  /* the peer acknowledged our FIN */
#define FD_MD5        0x0400  /* TCP-MD5 or TCP-AO in use: never inject for this flow */
#define FD_ACK        0x0800  /* last_ack is known */
#define FD_LAST       0x1000  /* sent the flow's most recent packet */
#define FD_LASTDATA   0x2000  /* sent the flow's most recent payload */
#define FD_FORGED     0x4000  /* a forged RST claimed to come from this side */
#define FD_EVICTED    0x8000  /* (dir[0] only) a middlebox eviction was seen on this flow */

/* What one side of the connection has shown, as seen at the gateway. */
struct flow_dir {
	uint64_t bytes;         /* IP bytes (first: keeps the record free of padding) */
	uint32_t isn;           /* initial sequence number (FD_ISN) */
	uint32_t next_seq;      /* highest seq + len (+SYN/FIN) sent */
	uint32_t last_ack;      /* last cumulative ACK sent */
	uint32_t tsval;         /* last TSval sent (its TSecr is the peer's tsval) */
	uint32_t pkts;
	uint16_t win;           /* last raw window */
	uint16_t ipid;          /* last IP ID (IPv4) */
	uint16_t flags;         /* FD_* */
	uint8_t wscale;
	uint8_t ttl_base;       /* TTL/hop limit baseline (SYN or first packet) */
	uint8_t ttl_last;
	uint8_t ipid_habit : 2;   /* enum ipid_habit */
	uint8_t ipid_samples : 6; /* consecutive observations supporting ipid_habit (saturates) */
	uint8_t ttl_spread;     /* largest |TTL - ttl_base| of the sender's packets (saturates) */
	uint8_t ka_probes;      /* keepalive-like probes sent since the peer last answered */
};

/* Flow flags. */
#define FL_MIDSTREAM   0x01   /* picked up without seeing the handshake */
#define FL_IPV6        0x02
#define FL_RST_SEEN    0x04
#define FL_WHEEL_EST   0x08   /* linked in the established wheel (else the short one) */
#define FL_LINKED      0x10   /* linked in a wheel */
#define FL_PENDING     0x20   /* a RST of this flow awaits judgement (see hold.h) */
#define FL_WATCH       0x40   /* a resumption after silence is being watched (see eviction.h) */
#define FL_PROBING     0x80   /* keepalive probes are being sent for this flow (see keepalive.h) */

struct flow {
	/* key: addresses and ports in the direction of the client */
	uint8_t cli[16], srv[16];
	uint16_t cport, sport;

	uint8_t state;          /* enum tcp_state */
	uint8_t flags;          /* FL_* */
	uint16_t timer_slot;    /* timing wheel slot this flow is linked in */
	uint32_t timer_next;    /* wheel list links (flow indices, FLOW_NIL terminates) */
	uint32_t timer_prev;

	uint32_t first_seen_cs; /* centiseconds since the time base (wraps after 497 days) */
	uint32_t last_seen_ms;  /* milliseconds since the time base; compare with wrap-safe math */
	uint32_t hs_us;         /* time of the last handshake packet (microseconds, wrap-safe) */
	uint16_t rtt_10us[2];   /* handshake RTT from the gateway to each side, in 10 us units;
				 * [DIR_TOSERVER]: SYN -> SYN-ACK (gateway to server and back),
				 * [DIR_TOCLIENT]: SYN-ACK -> ACK; 0 unknown, saturates at 65535 */

	struct flow_dir dir[2];
};

#define FLOW_NIL UINT32_MAX

/* Result of a lookup. */
struct flow_ref {
	struct flow *flow;
	uint32_t index;
	int dir;               /* direction of the packet within the flow */
	uint32_t hash;         /* set by FLOW_Lookup, reused by FLOW_Insert */
};

struct flow_table;
struct timer_wheel;

/* Allocate a table for at most max_flows flows, all memory up front. seed keys the hash. */
struct flow_table *FLOW_CreateTable(uint32_t max_flows, const uint8_t seed[16]);

/* Free the table. */
void FLOW_DestroyTable(struct flow_table *t);

/* Find the flow of a packet. Returns 1 and fills ref when found, 0 otherwise. */
int FLOW_Lookup(struct flow_table *t, const struct pkt *p, struct flow_ref *ref);

/* The same in steps, so that a batch of packets can have its memory fetched in parallel:
 * the keyed hash of p's endpoints, a prefetch of its index slot, then (once the slot is likely
 * in cache) a prefetch of the record it points to, then the lookup itself. */
uint32_t FLOW_Hash(const struct flow_table *t, const struct pkt *p);
void FLOW_PrefetchSlot(const struct flow_table *t, uint32_t hash);
void FLOW_PrefetchRecord(const struct flow_table *t, uint32_t hash);
int FLOW_LookupHashed(struct flow_table *t, const struct pkt *p, uint32_t hash, struct flow_ref *ref);

/* Insert a new flow for p after a failed FLOW_Lookup on the same ref, with p's sender as the
 * client when client_is_src is set. The record is zeroed but for its key. Returns 1 and fills
 * ref, or 0 if the table is full (the caller evicts a flow first). */
int FLOW_Insert(struct flow_table *t, const struct pkt *p, int client_is_src, struct flow_ref *ref);

/* Remove a flow by index (its timer link must already be gone). */
void FLOW_Remove(struct flow_table *t, uint32_t index);

/* Record by index. */
struct flow *FLOW_Get(struct flow_table *t, uint32_t index);

/* Index of record f (a pointer FLOW_Get returned). */
uint32_t FLOW_Index(const struct flow_table *t, const struct flow *f);

/* Number of flows in use, and the cap. */
uint32_t FLOW_Count(const struct flow_table *t);
uint32_t FLOW_Capacity(const struct flow_table *t);

/* Bytes of memory the table holds (records + index). */
size_t FLOW_MemoryBytes(const struct flow_table *t);

/* A stable 51-bit identifier for a flow (the same for every event of it). */
uint64_t FLOW_Id(const struct flow_table *t, const struct flow *f);

/* The identifier FLOW_Id would give a flow of p's endpoints that started at time 0 (for events
 * about packets of flows the table does not hold). */
uint64_t FLOW_IdForPacket(const struct flow_table *t, const struct pkt *p);

/* Longest probe sequence seen in the index (for tests and stats). */
uint32_t FLOW_MaxProbe(const struct flow_table *t);

/* Name of a TCP state for events ("syn_sent", "established", ...). */
const char *FLOW_StateName(enum tcp_state s);

/* Is the flow established (the state whose flows are evicted last)? */
int FLOW_StateIsEstablished(enum tcp_state s);

#endif
