/* Minimal TAP producer for the unit tests (automake's tap-driver.sh reads it). */
#ifndef RSTGUARD_TAP_H
#define RSTGUARD_TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int tap_n, tap_failed;

static void tap_ok(int cond, const char *fmt, ...) __attribute__((format(printf, 2, 3), unused));
static void
tap_ok(int cond, const char *fmt, ...)
{
	va_list ap;

	tap_n++;
	if (!cond)
		tap_failed++;
	printf("%s %d - ", cond ? "ok" : "not ok", tap_n);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

#define TAP_OK(cond, ...) tap_ok(!!(cond), __VA_ARGS__)
#define TAP_EQ_U(a, b, what) \
	do { unsigned long long _a = (a), _b = (b); \
	     tap_ok(_a == _b, "%s (got %llu, want %llu)", what, _a, _b); } while (0)
#define TAP_EQ_S(a, b, what) \
	do { const char *_a = (a), *_b = (b); \
	     tap_ok(_a && _b && strcmp(_a, _b) == 0, "%s (got \"%s\", want \"%s\")", what, _a ? _a : "(null)", _b); } while (0)

static int tap_done(void) __attribute__((unused));
static int
tap_done(void)
{
	printf("1..%d\n", tap_n);
	return tap_failed ? 1 : 0;
}

#endif
