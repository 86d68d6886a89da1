/* Metrics: the counters of a stats snapshot (stats.h) in the Prometheus text exposition format
 * 0.0.4, from one table of metric definitions (name, type, help, where the value comes from).
 * The same text goes everywhere: rstguardctl metrics, the node_exporter textfile
 * (metrics.textfile) and the HTTP listener (metrics.listen, metrics_http.h). */
#ifndef RSTGUARD_METRICS_H
#define RSTGUARD_METRICS_H

#include <stddef.h>
#include <sys/socket.h>

struct rg_stats;

/* Write the exposition of s into buf (len bytes, NUL-terminated when len > 0). Returns the
 * length of the whole text, like snprintf: when it is >= len the text was cut short (never
 * past len) and a buffer of the returned length + 1 holds it all. */
size_t MET_Format(const struct rg_stats *s, char *buf, size_t len);

/* Call fn for every metric family of the table, in exposition order: its name, its type
 * ("counter", "gauge" or "histogram") and its help text. */
void MET_ForEach(void (*fn)(const char *name, const char *type, const char *help, void *arg), void *arg);

/* Parse a listen address, "198.18.0.1:9471" or "[2001:db8::1]:9471" (numeric only, port
 * 1..65535). Returns 0 with *ss and *sslen set, or -1. */
int MET_ParseListen(const char *s, struct sockaddr_storage *ss, socklen_t *sslen);

/* Replace the file path with len bytes of text atomically: a temporary file in the same
 * directory (never following a symbolic link, mode 0644 whatever the umask), then rename.
 * Returns 0, or -1 with errno set (the old file, if any, stays). */
int MET_WriteTextfile(const char *path, const char *text, size_t len);

#endif
