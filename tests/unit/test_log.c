/* Unit tests of the human log: whatever a message carries (file names, packet-derived strings),
 * what reaches the log is one line of printable ASCII, non-printable bytes written as \xNN. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "tap.h"
#include "tmpfile.h"

static char path[64];

/* Run one log call with stderr redirected to a file; return what was written. */
static const char *
logged(void (*fn)(const char *, ...), const char *arg)
{
	static char buf[8192];
	int fd, saved;
	ssize_t n;

	tmp_template(path, sizeof(path), "rg-test-log-");
	if ((fd = mkstemp(path)) < 0 || (saved = dup(STDERR_FILENO)) < 0) {
		perror("log file");
		exit(99);
	}
	fflush(stderr);
	dup2(fd, STDERR_FILENO);
	fn("name %s end", arg);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	n = pread(fd, buf, sizeof(buf) - 1, 0);
	buf[n > 0 ? n : 0] = '\0';
	close(fd);
	unlink(path);
	return buf;
}

int
main(void)
{
	LOG_Initialise(0, LOG_LVL_DEBUG);
	TAP_EQ_S(logged(log_warnx, "plain.conf"), "rstguard: warning: name plain.conf end\n",
	    "printable text is unchanged");
	TAP_EQ_S(logged(log_warnx, "a\nrstguard: error: forged"),
	    "rstguard: warning: name a\\x0arstguard: error: forged end\n",
	    "a newline cannot start a forged log line");
	TAP_EQ_S(logged(log_info, "\x1b[31mred\x1b[0m"),
	    "rstguard: info: name \\x1b[31mred\\x1b[0m end\n", "terminal escape sequences escaped");
	TAP_EQ_S(logged(log_warnx, "tab\there\r\x7f"),
	    "rstguard: warning: name tab\\x09here\\x0d\\x7f end\n", "tab, CR and DEL escaped");
	TAP_EQ_S(logged(log_warnx, "\xc2\x9b\xff"),
	    "rstguard: warning: name \\xc2\\x9b\\xff end\n", "bytes above 0x7e escaped (C1 controls)");
	TAP_EQ_S(logged(log_warnx, "back\\x41slash"),
	    "rstguard: warning: name back\\x5cx41slash end\n",
	    "a backslash is escaped too, so an escape cannot be faked");
	TAP_EQ_S(logged(log_debug, "dbg\n"), "rstguard: debug: name dbg\\x0a end\n", "debug level too");
	LOG_Finalise();
	return tap_done();
}
