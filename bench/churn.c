/* churn: the small TCP load generator of the network benchmark (bench/run.sh).
 *
 *   churn server  [-b ADDR] -p PORT[-LAST] [-T THREADS] [-P PROCESSES]
 *   churn client  -s SERVER -p PORT [-c CONCURRENCY] [-t SECONDS] [-B SRCADDR]... [--req N] [--resp N]
 *   churn latency -s SERVER -p PORT [-n ROUNDTRIPS] [-t SECONDS] [-B SRCADDR] [--req N] [--resp N]
 *                 [--slice-ms MS]
 *   churn preload -s SERVER -p PORT[-LAST] -n CONNECTIONS [-c INFLIGHT] [-B SRCADDR]... [-P PROCESSES]
 *
 * client:  CONCURRENCY connections in parallel, each in a loop for SECONDS: connect, send a small
 *          request, read the small response, close. The server closes first (it sends its FIN with
 *          the response), so the TIME_WAIT state lands on the server and the client never runs out
 *          of ports. Prints one line: "client conns=N seconds=T rate=R errors=E timeouts=O".
 * latency: one connection (TCP_NODELAY), request/response round trips, after a warm-up of 200.
 *          Prints "latency samples=N p50_us=.. p90_us=.. p99_us=.. max_us=.. p99_slice_median_us=..
 *          slices=K slice_ms=MS": the last is the median of the p99 of each MS-long slice of the
 *          run (500 ms by default), which one stall of a busy machine does not move.
 * preload: opens CONNECTIONS connections (spread over the ports and source addresses), does one
 *          request/response on each, keeps them all open and idle, prints
 *          "preload open=N errors=E seconds=T", then sleeps until SIGTERM/SIGINT. With -P, that
 *          many processes share the work (one line each): a process holds at most RLIMIT_NOFILE
 *          descriptors, and where that limit cannot be raised, 100k connections need several.
 * server:  answers every request (epoll, THREADS threads per process, PROCESSES processes, all
 *          with SO_REUSEPORT listeners); a request says how long it is, how long the answer is
 *          and whether to close after answering.
 *
 * Request header (then padding up to its length): type ('C' close after the answer, 'Q' keep the
 * connection), 0, request length (16 bits, big endian), response length (16 bits).
 * Multiple -B give the client several source addresses (one host pair each, for
 * --queue-balance); the kernel picks the port at connect time (IP_BIND_ADDRESS_NO_PORT). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE   /* accept4 */
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

#define HDR_LEN 6
#define MAX_MSG 16384
#define MAX_SRC 16
#define MAX_PORTS 64
#define CONN_TIMEOUT_NS (3ULL * 1000000000ULL)

struct opts {
	const char *server;
	const char *bind;
	uint16_t port, port_last;
	unsigned conc, threads, procs, slice_ms;
	double seconds;
	unsigned long count, extra;
	unsigned proc_index;
	unsigned req, resp;
	struct in_addr src[MAX_SRC];
	unsigned nsrc;
};

static volatile sig_atomic_t got_stop;

static void
on_signal(int sig)
{
	(void)sig;
	got_stop = 1;
}

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void
die(const char *what)
{
	fprintf(stderr, "churn: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* As many descriptors as allowed: the preload holds 100k+ sockets. */
static rlim_t
raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
		return rl.rlim_cur;
	}
	return 1024;
}

static void
fill_request(uint8_t *buf, char type, unsigned req, unsigned resp)
{
	memset(buf, 'x', req);
	buf[0] = (uint8_t)type;
	buf[1] = 0;
	buf[2] = (uint8_t)(req >> 8);
	buf[3] = (uint8_t)req;
	buf[4] = (uint8_t)(resp >> 8);
	buf[5] = (uint8_t)resp;
}

/* ------------------------------------------------------------------------------------------ */
/* server */

struct sconn {
	uint8_t hdr[HDR_LEN];
	uint32_t got;        /* bytes of the current request read */
	uint32_t req, resp;  /* from the header */
	uint32_t wpos;       /* bytes of the answer written; wpos < resp while writing */
	uint8_t writing, close_after;
};

struct server {
	const struct opts *o;
	int ep;
	int lfd[MAX_PORTS];
	unsigned nl;
	struct sconn *conns;  /* by descriptor */
	rlim_t maxfd;
};

static uint8_t zeros[MAX_MSG];

static void
srv_close(struct server *s, int fd)
{
	epoll_ctl(s->ep, EPOLL_CTL_DEL, fd, NULL);
	close(fd);
}

/* Write (the rest of) the answer; returns 1 when done, 0 when the socket is full, -1 on error. */
static int
srv_write(struct server *s, int fd, struct sconn *c)
{
	while (c->wpos < c->resp) {
		ssize_t n = send(fd, zeros, c->resp - c->wpos, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT, .data.fd = fd };

				epoll_ctl(s->ep, EPOLL_CTL_MOD, fd, &ev);
				return 0;
			}
			if (errno == EINTR)
				continue;
			return -1;
		}
		c->wpos += (uint32_t)n;
	}
	return 1;
}

static void
srv_readable(struct server *s, int fd)
{
	struct sconn *c = &s->conns[fd];
	uint8_t buf[MAX_MSG];

	for (;;) {
		ssize_t n;
		size_t off = 0;

		if (c->writing)
			return;   /* one request at a time: the client waits for the answer */
		n = recv(fd, buf, sizeof(buf), 0);
		if (n == 0) {
			srv_close(s, fd);
			return;
		}
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			if (errno == EINTR)
				continue;
			srv_close(s, fd);
			return;
		}
		while (off < (size_t)n) {
			if (c->got >= HDR_LEN && c->got >= c->req)
				break;   /* one request at a time: nothing follows it */
			if (c->got < HDR_LEN) {
				c->hdr[c->got++] = buf[off++];
				if (c->got == HDR_LEN) {
					c->req = (uint32_t)c->hdr[2] << 8 | c->hdr[3];
					c->resp = (uint32_t)c->hdr[4] << 8 | c->hdr[5];
					if (c->req < HDR_LEN)
						c->req = HDR_LEN;
					if (c->resp > MAX_MSG)
						c->resp = MAX_MSG;
				}
				continue;
			}
			size_t take = (size_t)n - off;

			if (take > c->req - c->got)
				take = c->req - c->got;
			c->got += (uint32_t)take;
			off += take;
		}
		if (c->got >= HDR_LEN && c->got >= c->req) {
			int r;

			c->close_after = c->hdr[0] == 'C';
			c->writing = 1;
			c->wpos = 0;
			r = srv_write(s, fd, c);
			if (r < 0) {
				srv_close(s, fd);
				return;
			}
			if (r == 0)
				return;
			c->writing = 0;
			c->got = 0;
			if (c->close_after) {
				srv_close(s, fd);   /* the FIN goes out right behind the answer */
				return;
			}
		}
	}
}

static void
srv_writable(struct server *s, int fd)
{
	struct sconn *c = &s->conns[fd];
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };
	int r = srv_write(s, fd, c);

	if (r < 0) {
		srv_close(s, fd);
		return;
	}
	if (r == 0)
		return;
	c->writing = 0;
	c->got = 0;
	if (c->close_after) {
		srv_close(s, fd);
		return;
	}
	epoll_ctl(s->ep, EPOLL_CTL_MOD, fd, &ev);
	srv_readable(s, fd);
}

static void
srv_accept(struct server *s, int lfd)
{
	for (;;) {
		int one = 1;
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
		struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };

		if (fd < 0)
			return;   /* EAGAIN, or out of descriptors (counted by the client as a timeout) */
		if ((rlim_t)fd >= s->maxfd) {
			close(fd);
			continue;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		memset(&s->conns[fd], 0, sizeof(s->conns[fd]));
		epoll_ctl(s->ep, EPOLL_CTL_ADD, fd, &ev);
	}
}

static int
is_listener(const struct server *s, int fd)
{
	for (unsigned i = 0; i < s->nl; i++)
		if (s->lfd[i] == fd)
			return 1;
	return 0;
}

static void *
server_thread(void *arg)
{
	struct server *s = arg;
	struct epoll_event evs[256];

	while (!got_stop) {
		int n = epoll_wait(s->ep, evs, 256, 200);

		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;

			if (is_listener(s, fd))
				srv_accept(s, fd);
			else if (evs[i].events & EPOLLOUT)
				srv_writable(s, fd);
			else
				srv_readable(s, fd);
		}
	}
	return NULL;
}

static int
run_server(const struct opts *o)
{
	rlim_t maxfd = raise_nofile();
	struct sconn *conns = calloc(maxfd, sizeof(*conns));
	pthread_t th[64];
	struct server *srv = calloc(o->threads, sizeof(*srv));

	if (conns == NULL || srv == NULL)
		die("calloc");
	for (unsigned t = 0; t < o->threads; t++) {
		struct server *s = &srv[t];

		s->o = o;
		s->conns = conns;   /* descriptors are unique over the process */
		s->maxfd = maxfd;
		s->ep = epoll_create1(0);
		if (s->ep < 0)
			die("epoll_create1");
		for (unsigned p = o->port; p <= o->port_last; p++) {
			struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)p) };
			struct epoll_event ev = { .events = EPOLLIN };
			int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);

			if (fd < 0)
				die("socket");
			setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
			setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
			if (inet_pton(AF_INET, o->bind ? o->bind : "0.0.0.0", &sa.sin_addr) != 1) {
				fprintf(stderr, "churn: bad address %s\n", o->bind);
				return 2;
			}
			if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
				die("bind");
			if (listen(fd, 65535) < 0)
				die("listen");
			ev.data.fd = fd;
			epoll_ctl(s->ep, EPOLL_CTL_ADD, fd, &ev);
			s->lfd[s->nl++] = fd;
		}
	}
	printf("server listening ports=%u-%u process=%u threads=%u maxfd=%llu\n", o->port,
	       o->port_last, o->proc_index, o->threads, (unsigned long long)maxfd);
	fflush(stdout);
	for (unsigned t = 1; t < o->threads; t++)
		pthread_create(&th[t], NULL, server_thread, &srv[t]);
	server_thread(&srv[0]);
	for (unsigned t = 1; t < o->threads; t++)
		pthread_join(th[t], NULL);
	for (unsigned t = 0; t < o->threads; t++) {
		for (unsigned i = 0; i < srv[t].nl; i++)
			close(srv[t].lfd[i]);
		close(srv[t].ep);
	}
	free(conns);
	free(srv);
	return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* clients */

enum cstate { C_IDLE, C_CONNECTING, C_WAIT_RESP, C_WAIT_EOF, C_HELD };

struct cconn {
	int fd;
	enum cstate st;
	uint32_t got;
	uint64_t t0;
};

struct client {
	const struct opts *o;
	int ep;
	struct cconn *c;
	unsigned n;
	uint8_t req[MAX_MSG];
	unsigned long next;        /* connections started: picks the source address and port */
	unsigned long done, errors, timeouts;
	int keep;                  /* preload: keep connections open after the answer */
};

static int
start_conn(struct client *cl, unsigned i)
{
	const struct opts *o = cl->o;
	struct cconn *c = &cl->c[i];
	unsigned nports = (unsigned)(o->port_last - o->port) + 1;
	unsigned long k = cl->next++;
	struct sockaddr_in dst = { .sin_family = AF_INET };
	struct epoll_event ev = { .events = EPOLLOUT, .data.u32 = i };
	int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);

	if (fd < 0)
		return -1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (o->nsrc) {
		struct sockaddr_in src = { .sin_family = AF_INET, .sin_addr = o->src[k % o->nsrc] };

		setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
		if (bind(fd, (struct sockaddr *)&src, sizeof(src)) < 0) {
			close(fd);
			return -1;
		}
	}
	inet_pton(AF_INET, o->server, &dst.sin_addr);
	dst.sin_port = htons((uint16_t)(o->port + (k / (o->nsrc ? o->nsrc : 1)) % nports));
	if (connect(fd, (struct sockaddr *)&dst, sizeof(dst)) < 0 && errno != EINPROGRESS) {
		close(fd);
		return -1;
	}
	c->fd = fd;
	c->st = C_CONNECTING;
	c->got = 0;
	c->t0 = now_ns();
	epoll_ctl(cl->ep, EPOLL_CTL_ADD, fd, &ev);
	return 0;
}

static void
end_conn(struct client *cl, unsigned i)
{
	struct cconn *c = &cl->c[i];

	if (c->fd >= 0) {
		epoll_ctl(cl->ep, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
	}
	c->fd = -1;
	c->st = C_IDLE;
}

static void
conn_event(struct client *cl, unsigned i, uint32_t events)
{
	struct cconn *c = &cl->c[i];
	uint8_t buf[MAX_MSG];
	ssize_t n;

	switch (c->st) {
	case C_CONNECTING: {
		int err = 0;
		socklen_t len = sizeof(err);
		struct epoll_event ev = { .events = EPOLLIN, .data.u32 = i };

		getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
		if (err != 0 || (events & (EPOLLERR | EPOLLHUP))) {
			cl->errors++;
			end_conn(cl, i);
			return;
		}
		if (send(c->fd, cl->req, cl->o->req, MSG_NOSIGNAL) != (ssize_t)cl->o->req) {
			cl->errors++;
			end_conn(cl, i);
			return;
		}
		c->st = C_WAIT_RESP;
		epoll_ctl(cl->ep, EPOLL_CTL_MOD, c->fd, &ev);
		return;
	}
	case C_WAIT_RESP:
	case C_WAIT_EOF:
		for (;;) {
			n = recv(c->fd, buf, sizeof(buf), 0);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
				return;
			if (n < 0) {
				cl->errors++;
				end_conn(cl, i);
				return;
			}
			if (n == 0) {
				/* The server closed after its answer: done, and no TIME_WAIT here. */
				if (c->st == C_WAIT_EOF)
					cl->done++;
				else
					cl->errors++;
				end_conn(cl, i);
				return;
			}
			c->got += (uint32_t)n;
			if (c->got >= cl->o->resp) {
				if (cl->keep) {
					/* preload: keep it, idle, out of the event set */
					epoll_ctl(cl->ep, EPOLL_CTL_DEL, c->fd, NULL);
					c->st = C_HELD;
					cl->done++;
					return;
				}
				c->st = C_WAIT_EOF;
			}
		}
	default:
		return;
	}
}

/* Expire connections stuck longer than CONN_TIMEOUT_NS (a lost SYN costs a 1 s retransmit). */
static void
expire(struct client *cl, uint64_t now)
{
	for (unsigned i = 0; i < cl->n; i++) {
		struct cconn *c = &cl->c[i];

		if (c->st != C_IDLE && c->st != C_HELD && now - c->t0 > CONN_TIMEOUT_NS) {
			cl->timeouts++;
			end_conn(cl, i);
		}
	}
}

static int
run_client(const struct opts *o)
{
	struct client cl = { .o = o };
	struct epoll_event evs[256];
	uint64_t t0, t_end, last_expire;

	raise_nofile();
	cl.ep = epoll_create1(0);
	cl.n = o->conc;
	cl.c = calloc(cl.n, sizeof(*cl.c));
	if (cl.ep < 0 || cl.c == NULL)
		die("client setup");
	fill_request(cl.req, 'C', o->req, o->resp);
	for (unsigned i = 0; i < cl.n; i++)
		cl.c[i].fd = -1;
	t0 = now_ns();
	t_end = t0 + (uint64_t)(o->seconds * 1e9);
	last_expire = t0;
	for (unsigned i = 0; i < cl.n; i++)
		if (start_conn(&cl, i) < 0)
			cl.errors++;
	while (!got_stop) {
		uint64_t now = now_ns();
		int n;

		if (now >= t_end)
			break;
		n = epoll_wait(cl.ep, evs, 256, 20);
		for (int k = 0; k < n; k++)
			conn_event(&cl, evs[k].data.u32, evs[k].events);
		now = now_ns();
		if (now - last_expire > 100000000ULL) {
			expire(&cl, now);
			last_expire = now;
		}
		for (unsigned i = 0; i < cl.n && now < t_end; i++)
			if (cl.c[i].st == C_IDLE && start_conn(&cl, i) < 0) {
				cl.errors++;
				if (cl.errors > 1000000)
					break;
			}
	}
	{
		double secs = (double)(now_ns() - t0) / 1e9;

		for (unsigned i = 0; i < cl.n; i++)
			end_conn(&cl, i);
		printf("client conns=%lu seconds=%.3f rate=%.1f errors=%lu timeouts=%lu concurrency=%u sources=%u\n",
		       cl.done, secs, (double)cl.done / secs, cl.errors, cl.timeouts, cl.n,
		       o->nsrc ? o->nsrc : 1);
		fflush(stdout);
	}
	close(cl.ep);
	free(cl.c);
	return 0;
}

static int
run_preload(const struct opts *o)
{
	struct client cl = { .o = o, .keep = 1 };
	struct epoll_event evs[256];
	rlim_t maxfd = raise_nofile();
	unsigned long started = 0;
	uint64_t t0 = now_ns(), last_expire = t0, deadline = t0 + 300ULL * 1000000000ULL;
	unsigned inflight = o->conc;

	if (maxfd < o->count + 64) {
		fprintf(stderr, "churn: preload of %lu needs more descriptors (limit %llu; ulimit -n)\n",
			o->count, (unsigned long long)maxfd);
		return 1;
	}
	cl.ep = epoll_create1(0);
	cl.n = (unsigned)o->count;
	cl.c = calloc(cl.n, sizeof(*cl.c));
	if (cl.ep < 0 || cl.c == NULL)
		die("preload setup");
	fill_request(cl.req, 'Q', o->req, o->resp);
	cl.next = o->proc_index;   /* processes start on different sources and ports */
	for (unsigned i = 0; i < cl.n; i++)
		cl.c[i].fd = -1;
	/* Keep up to INFLIGHT handshakes going; retry failures until everything is open. */
	while (!got_stop && cl.done < o->count && now_ns() < deadline) {
		unsigned long busy = 0;
		uint64_t now;
		int n;

		for (unsigned i = 0; i < cl.n; i++)
			if (cl.c[i].st == C_CONNECTING || cl.c[i].st == C_WAIT_RESP)
				busy++;
		for (unsigned i = 0; i < cl.n && busy < inflight; i++) {
			if (cl.c[i].st != C_IDLE)
				continue;
			if (start_conn(&cl, i) < 0) {
				cl.errors++;
				break;
			}
			started++;
			busy++;
		}
		n = epoll_wait(cl.ep, evs, 256, 20);
		for (int k = 0; k < n; k++)
			conn_event(&cl, evs[k].data.u32, evs[k].events);
		now = now_ns();
		if (now - last_expire > 500000000ULL) {
			expire(&cl, now);
			last_expire = now;
		}
	}
	printf("preload open=%lu errors=%lu timeouts=%lu started=%lu seconds=%.3f process=%u\n",
	       cl.done, cl.errors, cl.timeouts, started, (double)(now_ns() - t0) / 1e9, o->proc_index);
	fflush(stdout);
	while (!got_stop)
		pause();
	for (unsigned i = 0; i < cl.n; i++)
		if (cl.c[i].fd >= 0)
			close(cl.c[i].fd);
	close(cl.ep);
	free(cl.c);
	return 0;
}

/* Run fn in PROCS processes (each has its own descriptor table, so each can hold up to the
 * RLIMIT_NOFILE that cannot be raised here); the parent forwards SIGTERM/SIGINT and reaps them. */
static int
run_procs(struct opts *o, int (*fn)(const struct opts *))
{
	pid_t pids[64];
	int rc = 0;

	if (o->procs <= 1)
		return fn(o);
	fflush(stdout);
	for (unsigned i = 0; i < o->procs; i++) {
		pids[i] = fork();
		if (pids[i] < 0)
			die("fork");
		if (pids[i] == 0) {
			o->proc_index = i;
			if (i < o->extra)
				o->count++;
			exit(fn(o));
		}
	}
	while (!got_stop) {
		int st;
		pid_t p = waitpid(-1, &st, 0);

		if (p < 0 && errno == ECHILD)
			break;
		if (p > 0 && (!WIFEXITED(st) || WEXITSTATUS(st) != 0))
			rc = 1;
	}
	for (unsigned i = 0; i < o->procs; i++)
		kill(pids[i], SIGTERM);
	for (unsigned i = 0; i < o->procs; i++) {
		int st;

		if (waitpid(pids[i], &st, 0) == pids[i] && (!WIFEXITED(st) || WEXITSTATUS(st) != 0))
			rc = 1;
	}
	return rc;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int
read_full(int fd, uint8_t *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = recv(fd, buf + got, len - got, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		got += (size_t)n;
	}
	return 0;
}

static int
run_latency(const struct opts *o)
{
	struct sockaddr_in dst = { .sin_family = AF_INET, .sin_port = htons(o->port) };
	uint8_t req[MAX_MSG], resp[MAX_MSG];
	unsigned long max = o->count ? o->count : 10000000UL, n = 0;
	uint64_t *lat = malloc(max * sizeof(*lat)), t_end, slice_ns = (uint64_t)o->slice_ms * 1000000ULL;
	unsigned long bounds[4096];   /* first sample of each time slice */
	double p99s[4096];
	unsigned nb = 0, np = 0;
	uint64_t slice_end;
	struct timeval tv = { .tv_sec = 2, .tv_usec = 0 };
	int one = 1, fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0 || lat == NULL)
		die("latency setup");
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (o->nsrc) {
		struct sockaddr_in src = { .sin_family = AF_INET, .sin_addr = o->src[0] };

		if (bind(fd, (struct sockaddr *)&src, sizeof(src)) < 0)
			die("bind");
	}
	inet_pton(AF_INET, o->server, &dst.sin_addr);
	if (connect(fd, (struct sockaddr *)&dst, sizeof(dst)) < 0)
		die("connect");
	fill_request(req, 'Q', o->req, o->resp);
	for (int w = 0; w < 200; w++)
		if (send(fd, req, o->req, MSG_NOSIGNAL) != (ssize_t)o->req || read_full(fd, resp, o->resp) < 0)
			die("warm-up round trip");
	t_end = now_ns() + (uint64_t)(o->seconds * 1e9);
	slice_end = now_ns() + slice_ns;
	bounds[nb++] = 0;
	while (!got_stop && n < max && (o->count || now_ns() < t_end)) {
		uint64_t t = now_ns();

		if (t >= slice_end && nb < 4095) {
			bounds[nb++] = n;
			slice_end = t + slice_ns;
		}
		if (send(fd, req, o->req, MSG_NOSIGNAL) != (ssize_t)o->req || read_full(fd, resp, o->resp) < 0)
			die("round trip");
		lat[n++] = now_ns() - t;
	}
	close(fd);
	if (n == 0) {
		fprintf(stderr, "churn: no samples\n");
		return 1;
	}
	/* p99 of each time slice (of at least 100 samples), then their median: one stall of the
	 * machine spoils one slice instead of the whole run's p99. */
	bounds[nb] = n;
	for (unsigned i = 0; i < nb; i++) {
		unsigned long a = bounds[i], k = bounds[i + 1] - a;

		if (k < 100)
			continue;
		qsort(lat + a, k, sizeof(*lat), cmp_u64);
		p99s[np++] = (double)lat[a + k * 99 / 100] / 1e3;
	}
	qsort(lat, n, sizeof(*lat), cmp_u64);
	printf("latency samples=%lu p50_us=%.1f p90_us=%.1f p99_us=%.1f max_us=%.1f", n,
	       (double)lat[n / 2] / 1e3, (double)lat[n * 90 / 100] / 1e3,
	       (double)lat[n * 99 / 100] / 1e3, (double)lat[n - 1] / 1e3);
	if (np > 0) {
		/* sort the slice p99s (few: insertion sort) */
		for (unsigned i = 1; i < np; i++)
			for (unsigned j = i; j > 0 && p99s[j - 1] > p99s[j]; j--) {
				double x = p99s[j];

				p99s[j] = p99s[j - 1];
				p99s[j - 1] = x;
			}
		printf(" p99_slice_median_us=%.1f slices=%u slice_ms=%u",
		       np % 2 ? p99s[np / 2] : (p99s[np / 2 - 1] + p99s[np / 2]) / 2, np, o->slice_ms);
	}
	printf("\n");
	fflush(stdout);
	free(lat);
	return 0;
}

/* ------------------------------------------------------------------------------------------ */

static void
usage(FILE *out)
{
	fprintf(out,
		"usage: churn server  [-b ADDR] -p PORT[-LAST] [-T THREADS] [-P PROCESSES]\n"
		"       churn client  -s SERVER -p PORT[-LAST] [-c CONCURRENCY] [-t SECONDS] [-B SRCADDR]... [--req N] [--resp N]\n"
		"       churn latency -s SERVER -p PORT [-n ROUNDTRIPS] [-t SECONDS] [-B SRCADDR] [--req N] [--resp N] [--slice-ms MS]\n"
		"       churn preload -s SERVER -p PORT[-LAST] -n CONNECTIONS [-c INFLIGHT] [-B SRCADDR]... [-P PROCESSES]\n");
}

int
main(int argc, char **argv)
{
	struct opts o = { .conc = 32, .threads = 1, .procs = 1, .slice_ms = 500, .seconds = 5, .req = 64,
			  .resp = 128 };
	struct sigaction sa;
	const char *mode;
	unsigned long share, extra;

	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	mode = argv[1];
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (v == NULL) {
			usage(stderr);
			return 2;
		}
		i++;
		if (strcmp(a, "-s") == 0) {
			o.server = v;
		} else if (strcmp(a, "-b") == 0) {
			o.bind = v;
		} else if (strcmp(a, "-p") == 0) {
			char *end;
			unsigned long p = strtoul(v, &end, 10), q = p;

			if (*end == '-')
				q = strtoul(end + 1, &end, 10);
			if (*end != '\0' || p == 0 || p > 65535 || q < p || q > 65535 || q - p >= MAX_PORTS) {
				fprintf(stderr, "churn: bad port range %s\n", v);
				return 2;
			}
			o.port = (uint16_t)p;
			o.port_last = (uint16_t)q;
		} else if (strcmp(a, "-c") == 0) {
			o.conc = (unsigned)strtoul(v, NULL, 10);
		} else if (strcmp(a, "-P") == 0) {
			o.procs = (unsigned)strtoul(v, NULL, 10);
		} else if (strcmp(a, "--slice-ms") == 0) {
			o.slice_ms = (unsigned)strtoul(v, NULL, 10);
		} else if (strcmp(a, "-T") == 0) {
			o.threads = (unsigned)strtoul(v, NULL, 10);
		} else if (strcmp(a, "-t") == 0) {
			o.seconds = strtod(v, NULL);
		} else if (strcmp(a, "-n") == 0) {
			o.count = strtoul(v, NULL, 10);
		} else if (strcmp(a, "--req") == 0) {
			o.req = (unsigned)strtoul(v, NULL, 10);
		} else if (strcmp(a, "--resp") == 0) {
			o.resp = (unsigned)strtoul(v, NULL, 10);
		} else if (strcmp(a, "-B") == 0) {
			if (o.nsrc == MAX_SRC || inet_pton(AF_INET, v, &o.src[o.nsrc]) != 1) {
				fprintf(stderr, "churn: bad or too many source addresses (%s)\n", v);
				return 2;
			}
			o.nsrc++;
		} else {
			usage(stderr);
			return 2;
		}
	}
	if (o.port == 0 || o.conc == 0 || o.threads == 0 || o.threads > 64 || o.procs == 0 ||
	    o.procs > 64 || o.seconds <= 0 || o.slice_ms == 0 ||
	    o.req < HDR_LEN || o.req > MAX_MSG || o.resp < 1 || o.resp > MAX_MSG) {
		usage(stderr);
		return 2;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (strcmp(mode, "server") == 0)
		return run_procs(&o, run_server);
	if (o.server == NULL) {
		usage(stderr);
		return 2;
	}
	if (strcmp(mode, "client") == 0)
		return run_client(&o);
	if (strcmp(mode, "latency") == 0)
		return run_latency(&o);
	if (strcmp(mode, "preload") == 0) {
		if (o.count == 0) {
			usage(stderr);
			return 2;
		}
		if (o.count < o.procs)
			o.procs = (unsigned)o.count;
		share = o.count / o.procs;
		extra = o.count % o.procs;
		o.count = share;  /* each process opens its share, the first ones one more */
		o.extra = extra;
		return run_procs(&o, run_preload);
	}
	usage(stderr);
	return 2;
}
