/* flood: spoofed TCP floods for rstguard's flood tests (tests/e2e/flood.sh). Raw IPv4 socket,
 * sendmmsg in batches of 64, paced to a packet rate.
 *
 *   flood syn    -d DST -p PORT -n COUNT [-r PPS] [-b BASE]
 *   flood rst    -d DST -p PORT -n COUNT [-r PPS] [-b BASE]
 *   flood rst-at -d DST -p PORT -s SRC -S SPORT --seq SEQ [--ack ACK] [--step N] -n COUNT
 *                [-r PPS] [--ttl T] [--df] [--win W]
 *
 * syn:    COUNT SYNs, each from a distinct source: address BASE + (i mod 65536), port
 *         1024 + i / 65536 (BASE a /16, default 198.19.0.0: 64k addresses x 64k ports, so up to
 *         4 billion distinct flows), random sequence numbers.
 * rst:    the same tuples, RST instead of SYN: RSTs for flows nobody has seen.
 * rst-at: COUNT RSTs forged at one connection, claiming SRC:SPORT, sequence numbers SEQ,
 *         SEQ + STEP, ... (STEP default 1: all in the receiver's window when COUNT is small),
 *         with ACK (RST/ACK) when given, TTL T (default 64), DF when --df, window W (default
 *         8192), IP ID random.
 * Prints "sent N seconds S pps R" at the end. Needs CAP_NET_RAW. Only for test networks. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE   /* sendmmsg */
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64
#define PKT_LEN 40

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint32_t rng = 2463534242u;
static uint32_t
xorshift(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 17;
	rng ^= rng << 5;
	return rng;
}

static uint16_t
csum_fold(uint32_t s)
{
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

static uint32_t
csum_add(uint32_t s, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i + 1 < n; i += 2)
		s += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (n & 1)
		s += (uint32_t)(p[n - 1] << 8);
	return s;
}

static void
put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void
put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)(v >> 16));
	put16(p + 2, (uint16_t)v);
}

/* One IPv4 + TCP header (no options, no payload) with correct checksums. */
static void
build(uint8_t *b, uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport, uint32_t seq,
      uint32_t ack, uint8_t flags, uint8_t ttl, int df, uint16_t win)
{
	uint8_t ph[12];
	uint32_t s;

	memset(b, 0, PKT_LEN);
	b[0] = 0x45;
	put16(b + 2, PKT_LEN);
	put16(b + 4, (uint16_t)xorshift());
	put16(b + 6, df ? 0x4000 : 0);
	b[8] = ttl;
	b[9] = IPPROTO_TCP;
	put32(b + 12, src);
	put32(b + 16, dst);
	put16(b + 10, csum_fold(csum_add(0, b, 20)));
	put16(b + 20, sport);
	put16(b + 22, dport);
	put32(b + 24, seq);
	put32(b + 28, ack);
	b[32] = 5 << 4;
	b[33] = flags;
	put16(b + 34, win);
	put32(ph, src);
	put32(ph + 4, dst);
	ph[8] = 0;
	ph[9] = IPPROTO_TCP;
	put16(ph + 10, 20);
	s = csum_add(0, ph, sizeof(ph));
	put16(b + 36, csum_fold(csum_add(s, b + 20, 20)));
}

static int
usage(void)
{
	fprintf(stderr,
		"usage: flood syn|rst -d DST -p PORT -n COUNT [-r PPS] [-b BASE]\n"
		"       flood rst-at -d DST -p PORT -s SRC -S SPORT --seq SEQ [--ack ACK] [--step N]\n"
		"                    -n COUNT [-r PPS] [--ttl T] [--df] [--win W]\n");
	return 2;
}

int
main(int argc, char **argv)
{
	const char *mode, *dst_s = NULL, *src_s = NULL, *base_s = "198.19.0.0";
	unsigned long count = 0, pps = 0, seq = 0, ack = 0, step = 1;
	unsigned dport = 0, sport = 0, ttl = 64, win = 8192;
	int df = 0, has_ack = 0, has_seq = 0, fd;
	struct in_addr a;
	uint32_t dst, src = 0, base;
	static uint8_t pkts[BATCH][PKT_LEN];
	struct mmsghdr msgs[BATCH];
	struct iovec iov[BATCH];
	struct sockaddr_in to;
	unsigned long sent = 0;
	uint64_t t0, t;

	if (argc < 2)
		return usage();
	mode = argv[1];
	for (int i = 2; i < argc; i++) {
		const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(o, "--df")) {
			df = 1;
			continue;
		}
		if (!v)
			return usage();
		i++;
		if (!strcmp(o, "-d"))
			dst_s = v;
		else if (!strcmp(o, "-s"))
			src_s = v;
		else if (!strcmp(o, "-b"))
			base_s = v;
		else if (!strcmp(o, "-p"))
			dport = (unsigned)strtoul(v, NULL, 0);
		else if (!strcmp(o, "-S"))
			sport = (unsigned)strtoul(v, NULL, 0);
		else if (!strcmp(o, "-n"))
			count = strtoul(v, NULL, 0);
		else if (!strcmp(o, "-r"))
			pps = strtoul(v, NULL, 0);
		else if (!strcmp(o, "--seq")) {
			seq = strtoul(v, NULL, 0);
			has_seq = 1;
		} else if (!strcmp(o, "--ack")) {
			ack = strtoul(v, NULL, 0);
			has_ack = 1;
		} else if (!strcmp(o, "--step"))
			step = strtoul(v, NULL, 0);
		else if (!strcmp(o, "--ttl"))
			ttl = (unsigned)strtoul(v, NULL, 0);
		else if (!strcmp(o, "--win"))
			win = (unsigned)strtoul(v, NULL, 0);
		else
			return usage();
	}
	if (!dst_s || !dport || dport > 65535 || !count || ttl > 255 || win > 65535 ||
	    inet_pton(AF_INET, dst_s, &a) != 1)
		return usage();
	dst = ntohl(a.s_addr);
	if (inet_pton(AF_INET, base_s, &a) != 1)
		return usage();
	base = ntohl(a.s_addr) & 0xffff0000u;
	if (!strcmp(mode, "rst-at")) {
		if (!src_s || !sport || sport > 65535 || !has_seq || inet_pton(AF_INET, src_s, &a) != 1)
			return usage();
		src = ntohl(a.s_addr);
	} else if (strcmp(mode, "syn") && strcmp(mode, "rst")) {
		return usage();
	}

	fd = socket(AF_INET, SOCK_RAW, IPPROTO_RAW);
	if (fd < 0) {
		perror("flood: socket");
		return 1;
	}
	memset(&to, 0, sizeof(to));
	to.sin_family = AF_INET;
	to.sin_addr.s_addr = htonl(dst);
	memset(msgs, 0, sizeof(msgs));
	for (int i = 0; i < BATCH; i++) {
		iov[i].iov_base = pkts[i];
		iov[i].iov_len = PKT_LEN;
		msgs[i].msg_hdr.msg_iov = &iov[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
		msgs[i].msg_hdr.msg_name = &to;
		msgs[i].msg_hdr.msg_namelen = sizeof(to);
	}

	t0 = now_ns();
	while (sent < count) {
		unsigned n = count - sent < BATCH ? (unsigned)(count - sent) : BATCH;
		int r;

		for (unsigned i = 0; i < n; i++) {
			unsigned long k = sent + i;

			if (!strcmp(mode, "rst-at"))
				build(pkts[i], src, dst, (uint16_t)sport, (uint16_t)dport,
				      (uint32_t)(seq + k * step), (uint32_t)ack,
				      has_ack ? 0x14 : 0x04, (uint8_t)ttl, df, (uint16_t)win);
			else
				build(pkts[i], base | (uint32_t)(k & 0xffff), dst,
				      (uint16_t)(1024 + (k >> 16) % 64512), (uint16_t)dport, xorshift(), 0,
				      mode[0] == 's' ? 0x02 : 0x04, 64, 1, 64240);
		}
		r = sendmmsg(fd, msgs, n, 0);
		if (r < 0) {
			if (errno == ENOBUFS || errno == EAGAIN || errno == EINTR) {
				usleep(100);
				continue;
			}
			perror("flood: sendmmsg");
			return 1;
		}
		sent += (unsigned long)r;
		if (pps) {
			/* Pace: sleep until the time the packets sent so far are due. */
			uint64_t due = t0 + (uint64_t)((double)sent * 1e9 / (double)pps);

			t = now_ns();
			if (due > t) {
				struct timespec ts = { (time_t)((due - t) / 1000000000ull),
						       (long)((due - t) % 1000000000ull) };
				nanosleep(&ts, NULL);
			}
		}
	}
	t = now_ns() - t0;
	printf("sent %lu seconds %.2f pps %.0f\n", sent, (double)t / 1e9, (double)sent * 1e9 / (double)(t ? t : 1));
	close(fd);
	return 0;
}
