/* Unit tests of the event output: the two token buckets (routine events and alerts) and their
 * counters. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <fcntl.h>
#include <sys/stat.h>

#include "event.h"
#include "tap.h"
#include "tmpfile.h"

#define SEC 1000000000ULL

static char path[64];

static void
start(uint32_t rate, uint32_t burst)
{
	int fd;

	tmp_template(path, sizeof(path), "rg-test-event-");
	if ((fd = mkstemp(path)) < 0 || EV_Initialise(path, rate, burst) < 0) {
		perror("event file");
		exit(99);
	}
	close(fd);
}

static void
stop(void)
{
	EV_Finalise();
	unlink(path);
}

static unsigned
allow_n(int (*allow)(struct event_sink *, uint64_t), struct event_sink *s, uint64_t now, unsigned n)
{
	unsigned ok = 0;

	for (unsigned i = 0; i < n; i++)
		ok += (unsigned)allow(s, now);
	return ok;
}

/* A burst of routine events must not use up the alerts' budget (issue 14: a forged RST's event
 * following a burst of refused connections was rate-limited away). */
static void
test_separate_budgets(void)
{
	struct event_sink *s;
	struct event_stats st0, st;

	start(10, 10);
	EV_SetAlertRate(5, 5);
	s = EV_CreateSink(4096);
	EV_GetStats(&st0);
	TAP_EQ_U(allow_n(EV_Allow, s, 1 * SEC, 1000), 10, "routine: 1000 at once, the burst of 10 allowed");
	TAP_EQ_U(allow_n(EV_AllowAlert, s, 1 * SEC, 1), 1, "alert after the routine budget is spent: allowed");
	TAP_EQ_U(allow_n(EV_AllowAlert, s, 1 * SEC, 100), 4, "alerts: the rest of their burst of 5");
	TAP_EQ_U(allow_n(EV_Allow, s, 1 * SEC, 1), 0, "routine: still exhausted (alerts took none of it)");
	EV_GetStats(&st);
	TAP_EQ_U(st.rate_dropped - st0.rate_dropped, 991, "routine rate-limited counted apart");
	TAP_EQ_U(st.alert_rate_dropped - st0.alert_rate_dropped, 96, "alerts rate-limited counted apart");
	/* One second later: 10 routine tokens, 5 alert tokens. */
	TAP_EQ_U(allow_n(EV_Allow, s, 2 * SEC, 100), 10, "routine refilled at its rate");
	TAP_EQ_U(allow_n(EV_AllowAlert, s, 2 * SEC, 100), 5, "alerts refilled at theirs");
	/* A reload lowering the alert budget clamps what is left. */
	EV_SetAlertRate(2, 2);
	TAP_EQ_U(allow_n(EV_AllowAlert, s, 3 * SEC, 100), 2, "alert burst lowered on reload");
	stop();
}

/* By default (EV_Initialise alone, as offline analysis does) alerts get the same budget. */
static void
test_default_alert_budget(void)
{
	struct event_sink *s;

	start(3, 7);
	s = EV_CreateSink(4096);
	TAP_EQ_U(allow_n(EV_AllowAlert, s, 5 * SEC, 100), 7, "alert budget defaults to rate/burst");
	TAP_EQ_U(allow_n(EV_Allow, s, 5 * SEC, 100), 7, "routine budget is its own");
	stop();
	/* A larger alert burst set before any event starts full. */
	start(1, 1);
	EV_SetAlertRate(50, 500);
	s = EV_CreateSink(4096);
	TAP_EQ_U(allow_n(EV_AllowAlert, s, 1 * SEC, 1000), 500, "alert bucket starts at its own burst");
	stop();
}

/* The event file is opened O_NOFOLLOW: a symlink planted at events.path is refused, and the
 * file it points to is neither written nor created. */
static void
test_symlink_refused(void)
{
	char dir[64], target[96], link_path[96], missing[96], dangling[96];
	struct stat st;

	tmp_template(dir, sizeof(dir), "rg-test-evlink");
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		exit(99);
	}
	snprintf(target, sizeof(target), "%s/target", dir);
	snprintf(link_path, sizeof(link_path), "%s/events.json", dir);
	snprintf(missing, sizeof(missing), "%s/missing", dir);
	snprintf(dangling, sizeof(dangling), "%s/dangling.json", dir);
	if (close(open(target, O_WRONLY | O_CREAT, 0600)) < 0 || symlink(target, link_path) < 0 ||
	    symlink(missing, dangling) < 0) {
		perror("symlink");
		exit(99);
	}
	TAP_OK(EV_Initialise(link_path, 10, 10) == -1, "a symlink to a file is refused");
	EV_Finalise();
	TAP_OK(EV_Initialise(dangling, 10, 10) == -1, "a dangling symlink is refused");
	EV_Finalise();
	TAP_OK(stat(missing, &st) < 0, "the dangling symlink's target was not created");
	TAP_OK(stat(target, &st) == 0 && st.st_size == 0, "the target file is untouched");
	TAP_OK(EV_Initialise(target, 10, 10) == 0, "the file itself opens");
	EV_Finalise();
	unlink(link_path);
	unlink(dangling);
	unlink(target);
	rmdir(dir);
}

int
main(void)
{
	test_symlink_refused();
	test_separate_budgets();
	test_default_alert_budget();
	return tap_done();
}
