/* RST analysis: why was this connection reset, by whom, and would the reset take effect? The
 * forged-RST detector judges each RST against what its claimed sender has shown so far (TTL,
 * IP ID habit, DF, sequence state, timing) and against the RSTs it sent just before; the race
 * signal (the claimed sender keeps talking after its own RST) is added later by the engine. */
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

/* Evidence signals, one bit each. A conclusive signal is one no genuine stack produces for its
 * own RST (the claimed sender contradicting it, a TTL off a stable path, inconsistent copies, an
 * injector's cross-flow signature); a corroborating one is odd but has a rare genuine source, so
 * it counts only beside a second one from another group (docs/detection.md). */
enum rst_evidence {
	RST_EV_TTL = 0,       /* TTL / hop limit off the sender's stable baseline */
	RST_EV_IPID,          /* IP ID a stack of the sender's IP ID policy never puts on a RST */
	RST_EV_DF,            /* DF clear although the sender sets it */
	RST_EV_SEQ_AHEAD,     /* seq beyond anything the sender has sent */
	RST_EV_SEQ_BURST,     /* another RST from the sender just before, with a different seq */
	RST_EV_TTL_BURST,     /* RSTs from the sender with different TTLs */
	RST_EV_IDENTICAL,     /* identical copies of one RST */
	RST_EV_RACE,          /* the sender kept sending after its RST */
	RST_EV_TOO_FAST,      /* arrived sooner than the sender could have answered */
	RST_EV_PAYLOAD,       /* data on the RST */
	RST_EV_WINDOW_COPY,   /* window copied from the other direction */
	RST_EV_ACK_INVALID,   /* acknowledges data never sent, or the SYN itself */
	RST_EV_WINDOW_FOREIGN,/* a window far above any the sender advertises */
	RST_EV_TS_ECHO,       /* TCP timestamp echoing a value the receiver never sent */
	RST_EV_SIGNED,        /* TCP-MD5/AO option on a connection that uses neither */
	RST_EV_IPID_SIGNATURE,/* IP ID and window shared by RSTs claimed by several unrelated hosts */
	RST_EV_RACE_LATE,     /* the sender talked on after the judgement (revised) */
	RST_EV_SYNACK_LATE,   /* the sender completed the handshake after "refusing" it (revised) */
	RST_EV_PROBE_ACK,     /* the sender's socket answered a confirmation probe: it is alive */
	RST_EV_COUNT
};
#define RST_EV_MAX RST_EV_COUNT

/* Detector settings (from the configuration). */
struct rst_params {
	uint8_t ttl_tolerance;      /* |dTTL| allowed before the TTL signal fires */
	uint16_t threshold;         /* score at which a RST is judged forged */
	uint32_t min_rtt_us;        /* the timing signal needs at least this RTT to be meaningful */
};

/* What the sender's previous RSTs looked like (kept per flow and direction by the engine). */
struct rst_history {
	uint32_t key;               /* (flow index << 1 | dir) + 1; 0 = empty */
	uint32_t flow_start_cs;     /* tells a recycled flow record apart */
	uint32_t last_ms;
	uint32_t last_seq, last_ack;
	uint8_t last_ttl;
	uint8_t count;              /* RSTs in the current burst (saturates) */
	uint8_t identical;          /* copies of the last one (saturates) */
};

/* Facts about the moment the RST arrived, supplied by the engine. */
struct rst_context {
	uint32_t now_ms;
	uint32_t since_last_us;     /* time since the flow's previous packet */
	int last_from_receiver;     /* that previous packet went the other way */
	const struct rst_history *hist;  /* the sender's previous RSTs within the burst window, or NULL */
	int peer_forged;            /* a forged RST claiming to be the other side was seen just before */
	int eviction;               /* it comes after a silence a middlebox may not have survived */
	int signature;              /* its IP ID and window match RSTs claimed by other hosts */
};

#define RST_BURST_WINDOW_MS 2000

/* What the analysis concluded about one RST. */
struct rst_result {
	enum rst_cause cause;
	enum rst_seq_class seq_class;
	int forged;                 /* score >= threshold, with a conclusive signal or two groups */
	uint32_t evidence;          /* bit set of RST_EV_* */
	int score;
	enum rst_cause apparent;    /* the cause the wire state suggests, had the RST been genuine */
	int eviction;               /* judged a middlebox's reset after an idle period */
	int discarded;              /* carries a signature the receiver cannot check: ignored */
};

/* Classify the RST p travelling in direction dir of flow f (NULL when unknown). f must still hold
 * the state from before this packet. */
void RST_Analyse(const struct flow *f, int dir, const struct pkt *p, const struct rst_context *ctx,
		 const struct rst_params *par, struct rst_result *out);

/* Add evidence found later (the race) and re-judge. */
void RST_AddEvidence(struct rst_result *r, unsigned bit, const struct rst_params *par);

/* Token of a cause for events ("refused", "abort", ...). */
const char *RST_CauseName(enum rst_cause c);

/* Name of evidence bit i ("ttl", "ipid", ...). */
const char *RST_EvidenceName(unsigned bit);

/* Does packet p, sent by the RST's claimed sender after the RST rst, contradict it? ack_before is
 * the sender's last ACK when the RST passed. */
int RST_IsRace(const struct pkt *p, const struct pkt *rst, uint32_t ack_before);

/* Does packet p from a RST's claimed sender, after a RST that answered its peer's SYN, finish the
 * handshake the RST refused (a SYN-ACK)? */
int RST_IsLateSynAck(const struct pkt *p);

/* RSTs recently seen with an IP ID their claimed sender does not use, by (IP ID, window, DF):
 * an injector that stamps one constant on all its packets shows up across unrelated hosts. */
#define RST_SIG_SLOTS 256
#define RST_SIG_WINDOW_MS 60000
#define RST_SIG_HOSTS 3
struct rst_sig_slot {
	uint32_t last_ms;
	uint16_t ipid, win;
	uint32_t hosts[RST_SIG_HOSTS];   /* hashes of distinct claimed senders; 0 = empty */
};
struct rst_signatures {
	struct rst_sig_slot slot[RST_SIG_SLOTS];
};

/* Record the RST p (claimed sender hash host, nonzero) and say whether its (IP ID, window) was
 * now seen on RSTs of RST_SIG_HOSTS distinct claimed senders within RST_SIG_WINDOW_MS. Only RSTs
 * without DF and with a nonzero IP ID that the sender's own last packet did not carry count:
 * genuine stacks put 0 with DF on their socketless RSTs, or a value of their own counter. */
int RST_SignatureSeen(struct rst_signatures *t, const struct pkt *p, uint32_t host, uint16_t sender_last_ipid,
		      uint32_t now_ms);

/* Record the RST in the sender's history (h is the slot for this flow and direction). */
void RST_Remember(struct rst_history *h, uint32_t key, uint32_t flow_start_cs, const struct pkt *p, uint32_t now_ms);

#endif
