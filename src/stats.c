/* One snapshot of every counter (see stats.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stats.h"

#define KQUEUE_PATH "/proc/net/netfilter/nfnetlink_queue"
/* One line per bound queue, about 60 bytes each: 64 queues fit many times over. */
#define KQUEUE_TEXT_MAX 16384

/* Parse one unsigned decimal field; advances *p past it and the blanks after it. */
static int
field(const char **p, const char *end, uint64_t *out)
{
	const char *s = *p;
	uint64_t v = 0;

	while (s < end && (*s == ' ' || *s == '\t'))
		s++;
	if (s >= end || *s < '0' || *s > '9')
		return -1;
	for (; s < end && *s >= '0' && *s <= '9'; s++) {
		if (v > (UINT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*p = s;
	*out = v;
	return 0;
}

unsigned
STATS_ParseKernelQueues(const char *text, size_t len, uint16_t first, unsigned n, struct stats_kqueue *out)
{
	const char *p = text, *end = text + len;
	unsigned found = 0;

	memset(out, 0, n * sizeof(*out));
	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		const char *q = p;
		/* queue_num portid waiting copy_mode copy_range queue_dropped user_dropped id_sequence 1 */
		uint64_t v[8];
		int ok = 1;

		if (eol == NULL)
			eol = end;
		for (int i = 0; i < 8 && ok; i++)
			ok = field(&q, eol, &v[i]) == 0;
		if (ok && v[0] >= first && v[0] < (uint64_t)first + n) {
			struct stats_kqueue *k = &out[v[0] - first];

			if (!k->present)
				found++;
			k->present = 1;
			k->portid = (uint32_t)v[1];
			k->waiting = v[2];
			k->queue_dropped = v[5];
			k->user_dropped = v[6];
			k->id_sequence = v[7];
		}
		p = eol + 1;
	}
	return found;
}

/* The kernel's table; 0 when read (possibly without our queues), -1 when not readable. */
static int
read_kernel_queues(uint16_t first, unsigned n, struct stats_kqueue *out)
{
	char buf[KQUEUE_TEXT_MAX];
	size_t len = 0;
	ssize_t r;
	int fd = open(KQUEUE_PATH, O_RDONLY | O_CLOEXEC);

	memset(out, 0, n * sizeof(*out));
	if (fd < 0)
		return -1;
	while (len < sizeof(buf) && (r = read(fd, buf + len, sizeof(buf) - len)) != 0) {
		if (r < 0) {
			if (errno == EINTR)
				continue;
			close(fd);
			return -1;
		}
		len += (size_t)r;
	}
	close(fd);
	STATS_ParseKernelQueues(buf, len, first, n, out);
	return 0;
}

void
STATS_Collect(struct rg_stats *s, const struct stats_worker *w, unsigned n, uint16_t queue_first,
	      uint64_t start_real_ns)
{
	struct engine_time now;

	memset(s, 0, sizeof(*s));
	if (n > STATS_QUEUES_MAX)
		n = STATS_QUEUES_MAX;
	NFQ_Now(&now);
	s->real_ns = now.real_ns;
	s->start_real_ns = start_real_ns;
	s->queue_first = queue_first;
	s->nqueues = n;
	for (unsigned i = 0; i < n; i++) {
		struct engine_stats one;

		if (w[i].eng) {
			ENG_GetStats(w[i].eng, &one);
			ENG_AddStats(&s->eng, &one);
		}
		if (w[i].q)
			NFQ_GetStats(w[i].q, &s->q[i]);
		else if (w[i].saved)
			s->q[i] = *w[i].saved;
	}
	EV_GetStats(&s->ev);
	s->kq_ok = read_kernel_queues(queue_first, n, s->kq) == 0;
}
