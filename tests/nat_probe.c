/* nat_probe: drive src/nat.c against the kernel's conntrack, for tests/e2e/nat_lookup.sh (run it
 * inside the gateway's network namespace, as root).
 *
 *   nat_probe [-t MS] [-z ZONE] lookup SRC SPORT DST DPORT
 *       one lookup of the tuple as seen; prints "found ..." (exit 0), "miss" (exit 1) or
 *       "error ..." (exit 2). The family follows the address.
 *   nat_probe [-z ZONE] bench N SRC SPORT DST DPORT
 *       N lookups on one socket: "bench n=.. hits=.. misses=.. errors=.. median_us=.. p99_us=..
 *       max_us=..", after one untimed warm-up lookup.
 *   nat_probe [-z ZONE] first N SRC SPORT DST DPORT
 *       N fresh sockets: the first GET of each (NAT_Open's check, timed in first_us; the very
 *       first of the process apart) and the lookup after it.
 *   nat_probe [-z ZONE] stale SRC SPORT DST DPORT OSRC OSPORT ODST ODPORT
 *       leaves the answers to three GETs of the other tuple (O...) unread, as a timed-out
 *       request would, then looks up the tuple: "stale found=.. stale_dropped=.. ..." both
 *       without and with the drain that follows an unsettled request.
 *   nat_probe events SECONDS
 *       subscribe to NEW and DESTROY events and print one line per TCP event for SECONDS.
 * Exit status 2 on usage or setup errors. */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libmnl/libmnl.h>

#include "nat.h"

struct tup {
	int family;
	uint8_t src[16], dst[16];
	uint16_t sport, dport;
};

static unsigned timeout_ms = 100;
static uint16_t zone;

static void
usage(void)
{
	fprintf(stderr, "usage: nat_probe [-t MS] [-z ZONE] lookup|bench N|first N|stale|events SECONDS ...\n");
	exit(2);
}

static int
parse_addr(const char *s, uint8_t *a)
{
	memset(a, 0, 16);
	if (inet_pton(AF_INET, s, a) == 1)
		return AF_INET;
	if (inet_pton(AF_INET6, s, a) == 1)
		return AF_INET6;
	fprintf(stderr, "nat_probe: bad address %s\n", s);
	exit(2);
}

static uint16_t
parse_port(const char *s)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (*end || v < 0 || v > 65535) {
		fprintf(stderr, "nat_probe: bad port %s\n", s);
		exit(2);
	}
	return (uint16_t)v;
}

/* argv[0..3]: SRC SPORT DST DPORT */
static void
parse_tup(char **argv, struct tup *t)
{
	t->family = parse_addr(argv[0], t->src);
	t->sport = parse_port(argv[1]);
	if (parse_addr(argv[2], t->dst) != t->family) {
		fprintf(stderr, "nat_probe: mixed families\n");
		exit(2);
	}
	t->dport = parse_port(argv[3]);
}

static void
open_or_die(struct nat_lookup *n)
{
	if (NAT_Open(n, timeout_ms) < 0) {
		printf("error open: %s\n", strerror(errno));
		exit(2);
	}
}

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int
lookup(struct nat_lookup *n, const struct tup *t, struct nat_map *m)
{
	return NAT_Lookup(n, t->family, t->src, t->sport, t->dst, t->dport, zone, m);
}

static void
print_map(const char *what, const struct nat_map *m)
{
	char o[NAT_TUPLE_STRLEN], r[NAT_TUPLE_STRLEN];

	NAT_FormatTuple(m->family, &m->orig, o, sizeof(o));
	NAT_FormatTuple(m->family, &m->reply, r, sizeof(r));
	printf("%s orig=%s reply=%s translated=%u dir=%s zone=%u id=%u status=0x%x\n", what, o, r,
	       m->translated, m->dir == NAT_DIR_ORIG ? "orig" : m->dir == NAT_DIR_REPLY ? "reply" : "none",
	       m->zone, m->id, m->status);
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Percentile p (0-100) of n sorted samples, in microseconds. */
static double
pct_us(const uint64_t *v, unsigned n, double p)
{
	unsigned i = (unsigned)(p / 100.0 * (n - 1) + 0.5);

	return v[i < n ? i : n - 1] / 1000.0;
}

static int
cmd_lookup(char **argv)
{
	struct nat_lookup *n = calloc(1, sizeof(*n));
	struct nat_map m;
	struct tup t;
	int r;

	parse_tup(argv, &t);
	open_or_die(n);
	r = lookup(n, &t, &m);
	if (r == 1)
		print_map("found", &m);
	else if (r == 0)
		printf("miss\n");
	else
		printf("error %s\n", strerror(errno));
	NAT_Close(n);
	free(n);
	return r == 1 ? 0 : r == 0 ? 1 : 2;
}

static int
cmd_bench(unsigned count, char **argv)
{
	struct nat_lookup *n = calloc(1, sizeof(*n));
	uint64_t *v = calloc(count, sizeof(*v)), t0;
	struct nat_map m;
	struct tup t;
	unsigned i;

	parse_tup(argv, &t);
	open_or_die(n);   /* its first GET (the slowest) is not timed here: see "first" */
	for (i = 0; i < count; i++) {
		t0 = now_ns();
		(void)lookup(n, &t, &m);
		v[i] = now_ns() - t0;
	}
	qsort(v, count, sizeof(*v), cmp_u64);
	printf("bench n=%u hits=%llu misses=%llu errors=%llu timeouts=%llu median_us=%.1f p99_us=%.1f "
	       "max_us=%.1f\n", count, (unsigned long long)n->st.hits, (unsigned long long)n->st.misses,
	       (unsigned long long)n->st.errors, (unsigned long long)n->st.timeouts,
	       pct_us(v, count, 50), pct_us(v, count, 99), v[count - 1] / 1000.0);
	NAT_Close(n);
	free(n);
	free(v);
	return 0;
}

static int
cmd_first(unsigned count, char **argv)
{
	struct nat_lookup *n = calloc(1, sizeof(*n));
	uint64_t *w = calloc(count, sizeof(*w)), *f = calloc(count, sizeof(*f)), t0, cold;
	struct nat_map m;
	struct tup t;
	unsigned i;

	parse_tup(argv, &t);
	for (i = 0; i < count; i++) {
		open_or_die(n);
		w[i] = (uint64_t)n->first_us * 1000;   /* NAT_Open's GET: the socket's first */
		t0 = now_ns();
		(void)lookup(n, &t, &m);
		f[i] = now_ns() - t0;
		NAT_Close(n);
	}
	cold = w[0];
	qsort(w, count, sizeof(*w), cmp_u64);
	qsort(f, count, sizeof(*f), cmp_u64);
	printf("first n=%u process_first_us=%.1f socket_first_median_us=%.1f socket_first_max_us=%.1f "
	       "next_median_us=%.1f\n", count, cold / 1000.0, pct_us(w, count, 50),
	       w[count - 1] / 1000.0, pct_us(f, count, 50));
	free(n);
	free(w);
	free(f);
	return 0;
}

/* Three GETs of tuple o sent behind the module's back and never read: their answers wait in
 * the socket like those of requests that timed out. */
static void
leave_stale(struct nat_lookup *n, const struct tup *o)
{
	uint8_t req[NAT_REQ_MAX] __attribute__((aligned(4)));
	unsigned i;
	size_t len;

	for (i = 0; i < 3; i++) {
		/* Sequence numbers the module already used (it counts up). */
		len = NAT_BuildGet(req, sizeof(req), n->seq - i, o->family, o->src, o->sport, o->dst,
				   o->dport, zone);
		if (len == 0 || mnl_socket_sendto(n->nl, req, len) < 0) {
			printf("error send: %s\n", strerror(errno));
			exit(2);
		}
	}
}

static int
cmd_stale(char **argv)
{
	struct nat_lookup *n = calloc(1, sizeof(*n));
	struct nat_map m;
	struct tup t, o;
	int r, pass, bad = 0;

	parse_tup(argv, &t);
	parse_tup(argv + 4, &o);
	for (pass = 0; pass < 2; pass++) {
		open_or_die(n);
		(void)lookup(n, &t, &m);
		leave_stale(n, &o);
		/* pass 0: the lookup itself must skip them; pass 1: the drain does (as after a
		 * timeout, when the module knows the socket is unsettled). */
		n->unsettled = pass;
		n->st.stale = 0;
		memset(&m, 0, sizeof(m));
		r = lookup(n, &t, &m);
		printf("stale pass=%s result=%d stale_dropped=%llu ", pass ? "drain" : "inline", r,
		       (unsigned long long)n->st.stale);
		if (r == 1)
			print_map("found", &m);
		else
			printf("%s\n", r == 0 ? "miss" : strerror(errno));
		/* The next lookup is clean. */
		n->st.stale = 0;
		r = lookup(n, &t, &m);
		printf("stale pass=%s next=%d stale_dropped=%llu\n", pass ? "drain" : "inline", r,
		       (unsigned long long)n->st.stale);
		NAT_Close(n);
	}
	free(n);
	return bad;
}

static int
print_event(const struct nat_map *m, void *ctx)
{
	(void)ctx;
	print_map(m->event == NAT_EV_NEW ? "event new" : "event destroy", m);
	fflush(stdout);
	return 0;
}

static int
cmd_events(unsigned seconds)
{
	struct nat_lookup *n = calloc(1, sizeof(*n));
	uint64_t end = now_ns() + (uint64_t)seconds * 1000000000u;
	struct pollfd p;

	open_or_die(n);
	if (NAT_Subscribe(n) < 0) {
		printf("error subscribe: %s\n", strerror(errno));
		return 2;
	}
	printf("subscribed\n");
	fflush(stdout);
	p.fd = NAT_EventFd(n);
	p.events = POLLIN;
	while (now_ns() < end) {
		if (poll(&p, 1, 100) > 0 && NAT_ReadEvents(n, print_event, NULL, 64) < 0) {
			printf("error read: %s\n", strerror(errno));
			return 2;
		}
	}
	printf("events total=%llu overruns=%llu bad=%llu\n", (unsigned long long)n->st.events,
	       (unsigned long long)n->st.overruns, (unsigned long long)n->st.bad_messages);
	NAT_Close(n);
	free(n);
	return 0;
}

static unsigned
parse_count(const char *s)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (*end || v <= 0 || v > 10000000)
		usage();
	return (unsigned)v;
}

int
main(int argc, char **argv)
{
	int c;

	setvbuf(stdout, NULL, _IOLBF, 0);
	while ((c = getopt(argc, argv, "t:z:")) != -1) {
		switch (c) {
		case 't':
			timeout_ms = (unsigned)atoi(optarg);
			break;
		case 'z':
			zone = parse_port(optarg);
			break;
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1)
		usage();
	if (strcmp(argv[0], "lookup") == 0 && argc == 5)
		return cmd_lookup(argv + 1);
	if (strcmp(argv[0], "bench") == 0 && argc == 6)
		return cmd_bench(parse_count(argv[1]), argv + 2);
	if (strcmp(argv[0], "first") == 0 && argc == 6)
		return cmd_first(parse_count(argv[1]), argv + 2);
	if (strcmp(argv[0], "stale") == 0 && argc == 9)
		return cmd_stale(argv + 1);
	if (strcmp(argv[0], "events") == 0 && argc == 2)
		return cmd_events(parse_count(argv[1]));
	usage();
	return 2;
}
