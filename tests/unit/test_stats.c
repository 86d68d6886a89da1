/* Unit tests of the counter snapshot: the kernel's queue table parser (our queues picked out of
 * the kernel's lines, malformed lines and overflowing numbers skipped, never read past the text)
 * and the hold-time histogram's bounds. */
#include <stdlib.h>
#include <string.h>

#include "stats.h"
#include "tap.h"

int
main(void)
{
	/* Lines as kernel 6.x prints them: queue portid waiting copy_mode copy_range q_dropped
	 * u_dropped id_sequence 1. */
	const char *t = "    0  12345     3 2   256     0     7   1000  1\n"
			"    1  12346     0 2   256    11     0     42  1\n"
			"    9  99999     5 2   256     1     1      1  1\n";
	struct stats_kqueue kq[4];
	unsigned n;

	n = STATS_ParseKernelQueues(t, strlen(t), 0, 2, kq);
	TAP_EQ_U(n, 2, "both of our queues found, the other process's queue ignored");
	TAP_OK(kq[0].present && kq[1].present, "present flags set");
	TAP_EQ_U(kq[0].portid, 12345, "queue 0 portid");
	TAP_EQ_U(kq[0].waiting, 3, "queue 0 waiting");
	TAP_EQ_U(kq[0].user_dropped, 7, "queue 0 user dropped");
	TAP_EQ_U(kq[0].id_sequence, 1000, "queue 0 id sequence");
	TAP_EQ_U(kq[1].queue_dropped, 11, "queue 1 queue dropped");

	n = STATS_ParseKernelQueues(t, strlen(t), 8, 4, kq);
	TAP_EQ_U(n, 1, "queues 8..11: only 9 is there");
	TAP_OK(!kq[0].present && kq[1].present && kq[1].portid == 99999, "queue 9 lands in slot 1");

	/* Malformed: short lines, letters, a number beyond 64 bits, no final newline. */
	const char *bad = "0 1 2\nx 1 2 3 4 5 6 7 1\n1 2 3 4 5 6 99999999999999999999999 8 1\n2 7 0 2 256 0 0 5 1";
	n = STATS_ParseKernelQueues(bad, strlen(bad), 0, 3, kq);
	TAP_EQ_U(n, 1, "only the well-formed last line (without newline) counts");
	TAP_OK(!kq[0].present && !kq[1].present && kq[2].present && kq[2].id_sequence == 5, "its values");

	/* A text cut anywhere never reads past its end (ASan checks the copies). */
	for (size_t len = 0; len <= strlen(t); len++) {
		char *copy = malloc(len ? len : 1);

		memcpy(copy, t, len);
		STATS_ParseKernelQueues(copy, len, 0, 2, kq);
		free(copy);
	}
	TAP_OK(1, "every prefix of the table parsed within bounds");

	int sorted = 1;
	for (unsigned i = 1; i < ENG_HOLD_BUCKETS - 1; i++)
		sorted &= ENG_HoldBucketsMs[i] > ENG_HoldBucketsMs[i - 1];
	TAP_OK(sorted, "hold-time bucket bounds strictly increase");
	TAP_OK(ENG_HoldBucketsMs[ENG_HOLD_BUCKETS - 2] >= 1000, "the last bound covers detector.hold_max_ms's maximum (1000 ms)");
	return tap_done();
}
