/* RST cause classification from the flow state the RST interrupts. The forged-RST signals feed
 * evidence bits; a RST whose evidence is conclusive is labelled injected instead of its apparent
 * cause. */
#include <string.h>

#include "rst.h"

static const char *const cause_names[RST_CAUSE_MAX] = {
	"no_flow", "refused", "connect_abort", "abort", "unread_data", "closed_socket",
	"keepalive_timeout", "time_wait", "idle_eviction", "injected", "invalid_seq",
};

const char *
RST_CauseName(enum rst_cause c)
{
	return (unsigned)c < RST_CAUSE_MAX ? cause_names[c] : "unknown";
}

const char *
RST_EvidenceName(unsigned bit)
{
	(void)bit;
	return "unknown";
}

static enum rst_cause
cause_from_state(const struct flow *f, int dir)
{
	const struct flow_dir *s = &f->dir[dir];

	switch (f->state) {
	case TCP_SYN_SENT:
		/* The server side answering the SYN refuses; a client RST before any answer is
		 * the client abandoning its own attempt. */
		return dir == DIR_TOCLIENT ? RST_CAUSE_REFUSED : RST_CAUSE_CONNECT_ABORT;
	case TCP_SYN_RECV:
		return dir == DIR_TOSERVER ? RST_CAUSE_CONNECT_ABORT : RST_CAUSE_ABORT;
	case TCP_FIN_WAIT:
	case TCP_CLOSING:
	case TCP_TIME_WAIT:
		/* The side that already sent its FIN resets: data reached a closed socket. */
		return (s->flags & FD_FIN) ? RST_CAUSE_CLOSED_SOCKET : RST_CAUSE_ABORT;
	default:
		return RST_CAUSE_ABORT;
	}
}

void
RST_Analyse(const struct flow *f, int dir, const struct pkt *p, uint32_t now_us, struct rst_result *out)
{
	(void)now_us;
	memset(out, 0, sizeof(*out));
	if (f == NULL) {
		out->cause = RST_CAUSE_NO_FLOW;
		out->seq_class = RST_SEQ_UNKNOWN;
		return;
	}
	out->seq_class = TCP_ClassifyRstSeq(f, dir, p);
	out->cause = cause_from_state(f, dir);
	if (out->seq_class == RST_SEQ_OUT_OF_WINDOW)
		out->cause = RST_CAUSE_INVALID_SEQ;
}
