/* Human-readable logging: start, stop, errors and counters, to stderr or syslog. */
#ifndef RSTGUARD_LOG_H
#define RSTGUARD_LOG_H

#include <stdarg.h>

enum log_level { LOG_LVL_ERR = 0, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

/* Start logging: to syslog (ident "rstguard", facility daemon) when use_syslog is set,
 * otherwise to stderr. Messages above max_level are discarded. */
void LOG_Initialise(int use_syslog, enum log_level max_level);

/* Change the level or target after a reload. */
void LOG_SetLevel(enum log_level max_level);

/* Close syslog if it was opened. */
void LOG_Finalise(void);

/* Parse "error", "warning", "info" or "debug"; returns -1 for anything else. */
int LOG_ParseLevel(const char *name);

/* OpenBSD-style: the _warn/fatal variants append strerror(errno), the x variants do not. */
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
