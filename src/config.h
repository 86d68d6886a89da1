/* Configuration: built-in defaults, a libconfig file with strict validation, command-line overrides. */
#ifndef RSTGUARD_CONFIG_H
#define RSTGUARD_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum rg_mode { RG_MODE_DETECT = 0, RG_MODE_ENFORCE = 1 };

/* Per-state idle timeouts of the flow table, in seconds. */
struct config_flow_timeouts {
	uint32_t syn;          /* handshake not complete (syn_sent, syn_recv) */
	uint32_t established;  /* established; must outlive middlebox timeouts to see evictions */
	uint32_t closing;      /* a FIN seen (fin_wait, close_wait, last_ack, closing) */
	uint32_t closed;       /* after a RST or the last ACK (closed, time_wait) */
};

struct config {
	enum rg_mode mode;

	/* queue: NFQUEUE binding */
	uint16_t queue_num;        /* first queue number */
	uint16_t queue_count;      /* number of queues (one thread each): num .. num+count-1 */
	uint32_t queue_maxlen;     /* NFQA_CFG_QUEUE_MAXLEN */
	uint32_t copy_range;       /* bytes of each packet copied to us */
	int fail_open;             /* NFQA_CFG_F_FAIL_OPEN: accept when the queue is full */
	uint32_t rcvbuf;           /* SO_RCVBUFFORCE bytes; 0 keeps the kernel default */
	uint32_t batch;            /* messages drained per receive batch */

	/* flows: the flow table */
	uint32_t flows_max;        /* hard cap over all queues */
	struct config_flow_timeouts timeout;

	/* events: JSON lines */
	char *events_path;         /* "-" for stdout */
	uint32_t events_rate;      /* sustained events per second (per daemon) */
	uint32_t events_burst;     /* token bucket depth */

	/* log */
	int log_syslog;            /* 1: syslog, 0: stderr */
	int log_level;             /* enum log_level */

	/* eviction */
	uint32_t idle_timeout;     /* middlebox idle timeout in seconds; 0: not configured */
	int keepalive;             /* inject keepalive probes before idle_timeout */

	/* Where the file was read from, for messages ("" when defaults only). */
	char *source;
};

/* One validation error, with the place it was found. */
struct config_error {
	char *file;
	int line;                  /* 0 when not tied to a line */
	char *message;
};

struct config_errors {
	struct config_error *items;
	size_t count;
	size_t cap;
};

/* Fill cfg with the built-in defaults (no file needed). Strings are heap copies. */
void CFG_SetDefaults(struct config *cfg);

/* Load FILE on top of the defaults into cfg. Every problem found (syntax error, unknown key,
 * wrong type, out-of-range value) is appended to errs as FILE:LINE: message; returns 0 when there
 * were none, -1 otherwise. On error cfg still holds defaults plus whatever was valid. */
int CFG_Load(struct config *cfg, const char *file, struct config_errors *errs);

/* Re-run the cross-field checks (events.burst >= events.rate, eviction.keepalive needs
 * eviction.idle_timeout, eviction.idle_timeout < flows.timeout.established, queue.num +
 * queue.count - 1 <= 65535) on a final config, after the command-line overrides. Errors are
 * appended with file "command line" and line 0; returns 0 when there were none, -1 otherwise. */
int CFG_Validate(const struct config *cfg, struct config_errors *errs);

/* Deep copy of src into dst (strings duplicated). */
void CFG_Copy(struct config *dst, const struct config *src);

/* Release the strings held by cfg. */
void CFG_Free(struct config *cfg);

/* Parse "detect" or "enforce"; -1 otherwise. */
int CFG_ParseMode(const char *s);

/* Name of a mode ("detect", "enforce"). */
const char *CFG_ModeName(enum rg_mode mode);

/* Record one error (printf-style message). */
void CFG_AddError(struct config_errors *errs, const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Print every error as FILE:LINE: message (or FILE: message), one per line. */
void CFG_PrintErrors(const struct config_errors *errs, FILE *out);

/* Release an error list. */
void CFG_FreeErrors(struct config_errors *errs);

#endif
