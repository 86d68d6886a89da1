/* Event output. Packet threads never touch the file: each one appends finished lines to its own
 * single-producer ring; the control thread drains the rings into the file. A full ring or an
 * exhausted rate limit drops the event and counts it, so a RST flood can neither block the
 * packet path nor fill the disk. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "event.h"
#include "log.h"

#define MAX_SINKS 72

struct event_sink {
	char *ring;
	size_t size;                    /* power of two */
	_Atomic size_t head;            /* producer position */
	_Atomic size_t tail;            /* consumer position */
	_Atomic uint64_t written, ring_dropped;
};

struct bucket {
	double tokens;
	double rate, burst;
	uint64_t last_ns;
	uint64_t dropped;               /* events refused by this bucket */
	int used;                       /* a token was asked for: no longer starts full */
};

static struct {
	int fd;
	char *path;
	int is_stdout;
	int synchronous;
	int wake_fd;
	struct event_sink *sinks[MAX_SINKS];
	_Atomic int nsinks;
	uint64_t write_lost;            /* events lost to failed or short writes */
	int failing;                    /* the last write failed (logged once until it works) */
	int torn;                       /* a partial line could not be cut off: end it first */

	/* Token buckets shared by all threads, one for routine events and one for alerts (so a
	 * flood of routine events cannot starve them); taken only when an event is about to be
	 * written. */
	pthread_mutex_t rate_lock;
	struct bucket routine, alert;
} ev = { .fd = -1, .wake_fd = -1, .rate_lock = PTHREAD_MUTEX_INITIALIZER };

static int
open_output(const char *path)
{
	int fd;

	if (strcmp(path, "-") == 0)
		return STDOUT_FILENO;
	/* O_NOFOLLOW: run as root, a symlink planted where the event file goes would make rstguard
	 * append to (or create) whatever file it points to. */
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0640);
	if (fd < 0 && errno == ELOOP)
		log_warnx("cannot open event file %s: it is a symbolic link (refused; name the file "
		    "itself)", path);
	else if (fd < 0)
		log_warn("cannot open event file %s", path);
	return fd;
}

int
EV_Initialise(const char *path, uint32_t rate, uint32_t burst)
{
	ev.fd = open_output(path);
	if (ev.fd < 0)
		return -1;
	ev.is_stdout = (ev.fd == STDOUT_FILENO);
	ev.path = strdup(path);
	ev.wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (ev.path == NULL || ev.wake_fd < 0) {
		log_warn("event output setup");
		return -1;
	}
	ev.routine.used = 0;           /* both buckets start full */
	ev.alert.used = 0;
	EV_SetRate(rate, burst);
	EV_SetAlertRate(rate, burst);
	return 0;
}

static void
bucket_set(struct bucket *b, uint32_t rate, uint32_t burst)
{
	pthread_mutex_lock(&ev.rate_lock);
	b->rate = rate;
	b->burst = burst;
	if (b->tokens > burst || !b->used)
		b->tokens = burst;
	pthread_mutex_unlock(&ev.rate_lock);
}

void
EV_SetRate(uint32_t rate, uint32_t burst)
{
	bucket_set(&ev.routine, rate, burst);
}

void
EV_SetAlertRate(uint32_t rate, uint32_t burst)
{
	bucket_set(&ev.alert, rate, burst);
}

struct event_sink *
EV_CreateSink(size_t ring_bytes)
{
	struct event_sink *s;
	size_t size = 4096;
	int n = atomic_load(&ev.nsinks);

	if (n >= MAX_SINKS)
		return NULL;
	while (size < ring_bytes)
		size <<= 1;
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return NULL;
	s->ring = malloc(size);
	if (s->ring == NULL) {
		free(s);
		return NULL;
	}
	s->size = size;
	ev.sinks[n] = s;
	atomic_store(&ev.nsinks, n + 1);
	return s;
}

static int
bucket_take(struct bucket *b, uint64_t now_ns)
{
	int ok;

	pthread_mutex_lock(&ev.rate_lock);
	b->used = 1;
	if (now_ns > b->last_ns) {
		b->tokens += (double)(now_ns - b->last_ns) * b->rate / 1e9;
		if (b->tokens > b->burst)
			b->tokens = b->burst;
		b->last_ns = now_ns;
	}
	ok = b->tokens >= 1.0;
	if (ok)
		b->tokens -= 1.0;
	else
		b->dropped++;
	pthread_mutex_unlock(&ev.rate_lock);
	return ok;
}

int
EV_Allow(struct event_sink *s, uint64_t now_ns)
{
	(void)s;
	return bucket_take(&ev.routine, now_ns);
}

int
EV_AllowAlert(struct event_sink *s, uint64_t now_ns)
{
	(void)s;
	return bucket_take(&ev.alert, now_ns);
}

int
EV_Submit(struct event_sink *s, const char *line, size_t len)
{
	size_t head = atomic_load_explicit(&s->head, memory_order_relaxed);
	size_t tail = atomic_load_explicit(&s->tail, memory_order_acquire);
	size_t off, first;

	if (len > s->size - (head - tail) && ev.synchronous) {
		EV_Flush();
		tail = atomic_load_explicit(&s->tail, memory_order_acquire);
	}
	if (len > s->size - (head - tail)) {
		atomic_fetch_add_explicit(&s->ring_dropped, 1, memory_order_relaxed);
		return -1;
	}
	off = head & (s->size - 1);
	first = s->size - off < len ? s->size - off : len;
	memcpy(s->ring + off, line, first);
	memcpy(s->ring, line + first, len - first);
	atomic_store_explicit(&s->head, head + len, memory_order_release);
	atomic_fetch_add_explicit(&s->written, 1, memory_order_relaxed);

	/* Wake the writer early when the ring crosses half full; otherwise its periodic drain
	 * suffices. One write per crossing keeps this off the common path. */
	if (head - tail <= s->size / 2 && head + len - tail > s->size / 2) {
		uint64_t one = 1;

		if (write(ev.wake_fd, &one, sizeof(one)) < 0) {
			/* counter saturated: the writer is already due */
		}
	}
	return 0;
}

/* Write up to n bytes; returns how many were written (short on error, *err set). */
static size_t
write_some(const char *p, size_t n, int *err)
{
	size_t done = 0;

	while (done < n) {
		ssize_t w = write(ev.fd, p + done, n - done);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			*err = w < 0 ? errno : EIO;   /* EAGAIN too: a non-blocking stdout */
			break;
		}
		done += (size_t)w;
	}
	return done;
}

/* Byte i of the pending region of s starting at tail. */
static char
ring_byte(const struct event_sink *s, size_t tail, size_t i)
{
	return s->ring[(tail + i) & (s->size - 1)];
}

/* Newlines (events) in bytes [from, to) of the pending region starting at tail. */
static uint64_t
ring_lines(const struct event_sink *s, size_t tail, size_t from, size_t to)
{
	uint64_t n = 0;

	for (size_t i = from; i < to; i++)
		n += ring_byte(s, tail, i) == '\n';
	return n;
}

/*
 * Write the pending bytes [tail, tail + len) of s, whole lines or none: the ring only ever holds
 * complete lines, and a short write (a full disk) would leave the start of a line that the next
 * successful write completes with another event, a line that is not JSON. So after a short write
 * the file is cut back (ftruncate) to the end of the last whole line written, and the events not
 * written are counted as lost. When the output cannot be cut (a pipe), the torn line is ended
 * with a newline before anything else is written. The first failure and the recovery are each
 * logged once.
 */
static void
write_lines(struct event_sink *s, size_t tail, size_t len)
{
	size_t off = tail & (s->size - 1);
	size_t first = s->size - off < len ? s->size - off : len;
	size_t done, keep;
	int err = 0;

	if (ev.torn) {
		if (write_some("\n", 1, &err) == 1)
			ev.torn = 0;
		else
			goto lost;
	}
	done = write_some(s->ring + off, first, &err);
	if (done == first && len > first)
		done += write_some(s->ring, len - first, &err);
	if (done == len) {
		if (ev.failing) {
			log_info("writing events to %s again (%llu events lost so far)", ev.path,
			    (unsigned long long)ev.write_lost);
			ev.failing = 0;
		}
		return;
	}
	/* Keep the whole lines written, cut the partial one. */
	keep = done;
	while (keep > 0 && ring_byte(s, tail, keep - 1) != '\n')
		keep--;
	if (keep < done) {
		off_t end = lseek(ev.fd, 0, SEEK_CUR);

		if (end < 0 || ftruncate(ev.fd, end - (off_t)(done - keep)) < 0)
			ev.torn = 1;
	}
	ev.write_lost += ring_lines(s, tail, keep, len);
	if (!ev.failing) {
		ev.failing = 1;
		errno = err;
		log_warn("writing events to %s (events are lost until it works again)", ev.path);
	}
	return;
lost:
	ev.write_lost += ring_lines(s, tail, 0, len);
	if (!ev.failing) {
		ev.failing = 1;
		errno = err;
		log_warn("writing events to %s (events are lost until it works again)", ev.path);
	}
}

void
EV_SetSynchronous(int on)
{
	ev.synchronous = on;
}

size_t
EV_Flush(void)
{
	size_t total = 0;
	int n = atomic_load(&ev.nsinks);
	uint64_t junk;

	if (ev.wake_fd >= 0 && read(ev.wake_fd, &junk, sizeof(junk)) < 0) {
		/* nothing pending */
	}
	for (int i = 0; i < n; i++) {
		struct event_sink *s = ev.sinks[i];
		size_t tail = atomic_load_explicit(&s->tail, memory_order_relaxed);
		size_t head = atomic_load_explicit(&s->head, memory_order_acquire);

		if (tail != head) {
			if (ev.fd >= 0)
				write_lines(s, tail, head - tail);
			total += head - tail;
			atomic_store_explicit(&s->tail, head, memory_order_release);
		}
	}
	return total;
}

int
EV_Reopen(void)
{
	int fd;

	if (ev.path == NULL || ev.is_stdout)
		return 0;
	EV_Flush();
	fd = open_output(ev.path);
	if (fd < 0)
		return -1;
	close(ev.fd);
	ev.fd = fd;
	log_info("reopened event file %s", ev.path);
	return 0;
}

void
EV_Finalise(void)
{
	int n = atomic_load(&ev.nsinks);

	EV_Flush();
	if (ev.fd >= 0 && !ev.is_stdout)
		close(ev.fd);
	ev.fd = -1;
	for (int i = 0; i < n; i++) {
		free(ev.sinks[i]->ring);
		free(ev.sinks[i]);
		ev.sinks[i] = NULL;
	}
	atomic_store(&ev.nsinks, 0);
	if (ev.wake_fd >= 0)
		close(ev.wake_fd);
	ev.wake_fd = -1;
	free(ev.path);
	ev.path = NULL;
}

void
EV_GetStats(struct event_stats *st)
{
	int n = atomic_load(&ev.nsinks);

	memset(st, 0, sizeof(*st));
	for (int i = 0; i < n; i++) {
		st->written += atomic_load(&ev.sinks[i]->written);
		st->ring_dropped += atomic_load(&ev.sinks[i]->ring_dropped);
	}
	pthread_mutex_lock(&ev.rate_lock);
	st->rate_dropped = ev.routine.dropped;
	st->alert_rate_dropped = ev.alert.dropped;
	pthread_mutex_unlock(&ev.rate_lock);
	st->write_lost = ev.write_lost;
}

void
EV_FormatTime(uint64_t real_ns, char *buf, size_t buflen)
{
	time_t secs = (time_t)(real_ns / 1000000000ULL);
	unsigned usec = (unsigned)((real_ns % 1000000000ULL) / 1000);
	struct tm tm;
	char base[24];

	gmtime_r(&secs, &tm);
	strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, buflen, "%s.%06u+0000", base, usec);
}

int
EV_WakeFd(void)
{
	return ev.wake_fd;
}
