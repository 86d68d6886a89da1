/* The control socket: a UNIX stream socket where rstguardctl (or any client allowed by the
 * socket's mode and group) sends one JSON request per line and reads one JSON answer per line.
 * Served by the control thread, never by a packet thread: questions about the flow table go to
 * the packet threads as queries they answer between batches (ENG_PostQuery). Requests are
 * hostile input: bounded size, bounded time, bounded number of clients. */
#ifndef RSTGUARD_CONTROL_H
#define RSTGUARD_CONTROL_H

#include <poll.h>
#include <stddef.h>
#include <sys/types.h>

#include "config.h"
#include "engine.h"
#include "json.h"
#include "stats.h"

#define CTL_MAX_CLIENTS 16
#define CTL_REQUEST_MAX 4096       /* bytes of one request line, newline included */
#define CTL_CLIENT_TIMEOUT_MS 5000 /* to send a request, and to read its answer */
#define CTL_ANSWER_MAX (1u << 20)  /* bytes of one answer */

/* What the control socket needs of the daemon; each is called on the control thread. */
struct ctl_hooks {
	void *ctx;
	/* Members of the status answer (version, uptime, mode, ...). */
	void (*status)(void *ctx, struct json *j);
	/* A snapshot of every counter. */
	void (*stats)(void *ctx, struct rg_stats *s);
	/* Reload as on SIGHUP; 0, or -1 with the reasons added as members ("error", "errors"). */
	int (*reload)(void *ctx, struct json *j);
	/* The engines of the running packet threads: up to max into out; returns how many. */
	unsigned (*engines)(void *ctx, struct engine **out, unsigned max);
	/* The Prometheus text exposition into buf (len bytes); returns its length, 0 when it did
	 * not fit, or (size_t)-1 when this build has no metrics. */
	size_t (*metrics)(void *ctx, char *buf, size_t len);
};

/* Create the socket at path (parent directory created if missing, mode 0660, group grp unless
 * empty); a stale socket left by a dead daemon is replaced, anything else at path is refused.
 * owner (-1: unchanged) is the user the daemon will run as: it gets the socket and a directory
 * created here, so that it can remove the socket at exit. path "" means no socket (returns 0).
 * Returns 0, or -1 (logged). */
int CTL_Open(const char *path, const char *grp, uid_t owner, const struct ctl_hooks *hooks);

/* Add the socket's descriptors to pfd (room for max); returns how many were added. */
unsigned CTL_PollFds(struct pollfd *pfd, unsigned max);

/* The longest the control loop may sleep (ms) while clients are being served. */
int CTL_PollTimeoutMs(int idle_ms);

/* Serve what ppoll found on the descriptors CTL_PollFds added (n of them, in the same order),
 * and move queries and timeouts along. */
void CTL_Serve(const struct pollfd *pfd, unsigned n);

/* Close the clients and the socket, and remove it. Call once the packet threads have ended
 * (a query they were answering is freed here). */
void CTL_Close(void);

/* Handle one request line (len bytes, without its newline) and write its answer into j: the
 * parsing and dispatch of everything but the flow-table questions (which need the packet
 * threads). Returns 1 when the request needs a query (flows, timeouts), 0 when j holds the
 * answer. Exposed for the fuzz target and tests. */
int CTL_HandleLine(const char *line, size_t len, struct json *j);

#endif
