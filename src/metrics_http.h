/* The HTTP /metrics listener (metrics.listen), on libmicrohttpd's own thread. It serves a
 * snapshot the control thread refreshes (MHTTP_Publish); the packet threads never touch it.
 * Built without libmicrohttpd, MHTTP_AVAILABLE is 0 and the configuration refuses the key. */
#ifndef RSTGUARD_METRICS_HTTP_H
#define RSTGUARD_METRICS_HTTP_H

#include <stddef.h>

#ifdef HAVE_MICROHTTPD
#define MHTTP_AVAILABLE 1

/* Listen on addr ("198.18.0.1:9471", "[2001:db8::1]:9471") and serve GET /metrics from the
 * published snapshot (503 until the first one). Call with every signal blocked: the server's
 * thread inherits the mask. Returns 0, or -1 (logged). */
int MHTTP_Start(const char *addr);

/* Replace the served snapshot with len bytes of text (copied). Returns 0, or -1 when out of
 * memory (the previous snapshot stays). */
int MHTTP_Publish(const char *text, size_t len);

/* Stop the server (waits for its thread) and free the snapshot. Harmless when not started. */
void MHTTP_Stop(void);

#else
#define MHTTP_AVAILABLE 0

static inline int MHTTP_Start(const char *addr) { (void)addr; return -1; }
static inline int MHTTP_Publish(const char *text, size_t len) { (void)text; (void)len; return 0; }
static inline void MHTTP_Stop(void) { }
#endif

#endif
