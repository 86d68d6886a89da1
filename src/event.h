/* Events: JSON lines (Suricata EVE style) from the packet threads to one output file.
 * Each packet thread owns a sink (a lock-free single-producer ring plus a token bucket); the
 * control thread drains all sinks into the file, so the packet path never does file I/O. */
#ifndef RSTGUARD_EVENT_H
#define RSTGUARD_EVENT_H

#include <stddef.h>
#include <stdint.h>

struct event_sink;

/* Largest event line. */
#define EVENT_LINE_MAX 2048

/* Open the event output: path "-" is stdout, anything else a file opened for append.
 * rate/burst bound the events per second over the whole daemon. Returns 0 or -1 (logged). */
int EV_Initialise(const char *path, uint32_t rate, uint32_t burst);

/* Flush everything, close the output, free the sinks. */
void EV_Finalise(void);

/* Create a sink for one producer thread. ring_bytes is rounded up to a power of two. */
struct event_sink *EV_CreateSink(size_t ring_bytes);

/* Take one token for a routine event at time now_ns (monotonic). Returns 1 if the event may be
 * written, 0 if the rate limit says drop (counted). Call before building the line. */
int EV_Allow(struct event_sink *s, uint64_t now_ns);

/* The same for an alert (a forged RST's rst and anomaly events, an eviction or black hole): a
 * budget of its own, so routine events cannot use it up. */
int EV_AllowAlert(struct event_sink *s, uint64_t now_ns);

/* Queue a complete line (with its newline). Returns 0, or -1 if the ring was full (counted). */
int EV_Submit(struct event_sink *s, const char *line, size_t len);

/* Single-threaded use (offline analysis): a submit that finds its ring full writes the rings out
 * first instead of dropping the line. */
void EV_SetSynchronous(int on);

/* Control thread: write out whatever the sinks hold. Returns bytes written. */
size_t EV_Flush(void);

/* Control thread: reopen the output file (after logrotate). Returns 0 or -1 (logged, old kept). */
int EV_Reopen(void);

/* Change the rate limit of routine events (reload). */
void EV_SetRate(uint32_t rate, uint32_t burst);

/* Change the rate limit of alerts (start, reload); EV_Initialise gives them rate/burst too. */
void EV_SetAlertRate(uint32_t rate, uint32_t burst);

/* Totals over all sinks. */
struct event_stats {
	uint64_t written;       /* lines accepted into a ring */
	uint64_t rate_dropped;  /* routine events refused by the rate limit */
	uint64_t alert_rate_dropped;  /* alerts refused by the alert rate limit */
	uint64_t ring_dropped;  /* ring full: the writer could not keep up */
	uint64_t write_lost;    /* events lost to failed or short writes (a full disk) */
};
void EV_GetStats(struct event_stats *st);

/* Format a wall-clock time (ns since the epoch) the EVE way: 2026-11-25T12:00:00.123456+0000.
 * buf must hold at least 32 bytes. */
void EV_FormatTime(uint64_t real_ns, char *buf, size_t buflen);

/* A descriptor that becomes readable when a sink is filling up (for the control loop's poll). */
int EV_WakeFd(void);

#endif
