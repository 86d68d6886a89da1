/* Human-readable logging to stderr or syslog. Never called per packet unless something happened. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include "log.h"

static int log_to_syslog;
static enum log_level log_max = LOG_LVL_INFO;

void
LOG_Initialise(int use_syslog, enum log_level max_level)
{
	log_to_syslog = use_syslog;
	log_max = max_level;
	if (use_syslog)
		openlog("rstguard", LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

void
LOG_SetLevel(enum log_level max_level)
{
	log_max = max_level;
}

void
LOG_Finalise(void)
{
	if (log_to_syslog)
		closelog();
	log_to_syslog = 0;
}

int
LOG_ParseLevel(const char *name)
{
	static const char *const names[] = { "error", "warning", "info", "debug" };

	for (int i = 0; i < 4; i++)
		if (strcmp(name, names[i]) == 0)
			return i;
	return -1;
}

/* Copy msg into out (size >= 4 * strlen(msg) + 1) with every byte that is not printable ASCII,
 * and the backslash, written as \xNN: file names and packet-derived strings reach the log, and
 * a newline or a terminal escape sequence in one must not forge log lines or reach a terminal.
 * Done here, at the sink, so no caller can forget. */
static void
escape(const char *msg, char *out)
{
	static const char hex[] = "0123456789abcdef";

	for (const unsigned char *p = (const unsigned char *)msg; *p; p++) {
		if (*p >= 0x20 && *p < 0x7f && *p != '\\') {
			*out++ = (char)*p;
		} else {
			*out++ = '\\';
			*out++ = 'x';
			*out++ = hex[*p >> 4];
			*out++ = hex[*p & 15];
		}
	}
	*out = '\0';
}

static void vlog(enum log_level lvl, int with_errno, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));

static void
vlog(enum log_level lvl, int with_errno, const char *fmt, va_list ap)
{
	static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
	static const char *const tag[] = { "error", "warning", "info", "debug" };
	int saved = errno;
	char msg[1024], safe[4 * sizeof(msg)];
	int n;

	if (lvl > log_max)
		return;
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	if (n < 0)
		return;
	if (with_errno && (size_t)n < sizeof(msg))
		snprintf(msg + n, sizeof(msg) - (size_t)n, ": %s", strerror(saved));
	escape(msg, safe);
	if (log_to_syslog) {
		syslog(prio[lvl], "%s", safe);
	} else {
		/* systemd's journal adds its own timestamps; a terminal user wants the level. */
		fprintf(stderr, "rstguard: %s: %s\n", tag[lvl], safe);
	}
	errno = saved;
}

void
log_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_LVL_WARN, 1, fmt, ap);
	va_end(ap);
}

void
log_warnx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_LVL_WARN, 0, fmt, ap);
	va_end(ap);
}

void
log_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_LVL_INFO, 0, fmt, ap);
	va_end(ap);
}

void
log_debug(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_LVL_DEBUG, 0, fmt, ap);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_LVL_ERR, 1, fmt, ap);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_LVL_ERR, 0, fmt, ap);
	va_end(ap);
	exit(1);
}
