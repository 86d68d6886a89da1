/* Unit tests of the fast path's selector program (bpf/selector.bpf.c) and src/fastpath.c, on the
 * real kernel: the program is loaded and pinned by FP_Open (in a bpffs mounted on a temp dir) and
 * run on crafted packets with BPF_PROG_TEST_RUN; what it matches (queues), what it keeps in its
 * maps and what FP_SyncFlow reads back are checked. Needs root (CAP_BPF, CAP_SYS_ADMIN for the
 * mount); a build without the fast path only checks that it says so. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fastpath.h"
#include "flow.h"
#include "packet.h"
#include "tap.h"
#include "pktbuild.h"

#ifdef HAVE_FASTPATH
#include <bpf/bpf.h>

static int prog_fd;
static unsigned runs;

/* Run the program on the IP packet of spec s (mutate: change the built bytes first); its
 * return value (1: queued), or -1. */
static int
run(const struct pb_spec *s, void (*mutate)(uint8_t *ip))
{
	uint8_t buf[14 + 2048];
	size_t n;
	LIBBPF_OPTS(bpf_test_run_opts, o);

	memset(buf, 0, 14);
	buf[12] = s->family == AF_INET6 ? 0x86 : 0x08;   /* the test run starts at an Ethernet header */
	buf[13] = s->family == AF_INET6 ? 0xdd : 0x00;
	n = PB_Build(buf + 14, sizeof(buf) - 14, s);
	if (n == 0)
		return -1;
	if (mutate)
		mutate(buf + 14);
	o.data_in = buf;
	o.data_size_in = (uint32_t)(n + 14);
	o.repeat = 1;
	if (bpf_prog_test_run_opts(prog_fd, &o) < 0)
		return -1;
	runs++;
	return (int)o.retval;
}

static void
more_fragments(uint8_t *ip)
{
	ip[6] |= 0x20;
}

static void
hop_by_hop(uint8_t *ip)
{
	ip[6] = 0;   /* next header: hop-by-hop options */
}

static uint64_t
mono_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000ULL + (uint64_t)t.tv_nsec;
}

/* A flow record as the engine would hold it for s's endpoints (s's sender the client). */
static void
flow_for(const struct pb_spec *s, struct flow *f)
{
	memset(f, 0, sizeof(*f));
	inet_pton(s->family, s->src, f->cli);
	inet_pton(s->family, s->dst, f->srv);
	f->cport = s->sport;
	f->sport = s->dport;
	if (s->family == AF_INET6)
		f->flags |= FL_IPV6;
	f->dir[0].flags = FD_SEEN | FD_TS;
	f->dir[1].flags = FD_SEEN;
}

int
main(void)
{
	char dir[] = "/tmp/rgfpXXXXXX";
	struct fastpath *fp;
	struct fastpath_stats st;
	struct pb_spec c, sv, c6;
	struct flow f, f6;
	int r;

	TAP_OK(FP_Available(), "this build has the fast path");
	if (geteuid() != 0) {
		printf("1..0 # SKIP needs root (loading an eBPF program)\n");
		return 0;
	}
	if (mkdtemp(dir) == NULL)
		return 1;
	fp = FP_Open(dir, 1024);
	TAP_OK(fp != NULL, "FP_Open loads and pins the selector in a bpffs mounted on %s", dir);
	if (fp == NULL) {
		rmdir(dir);
		return tap_done();
	}
	prog_fd = bpf_obj_get(FP_ProgPin(fp));
	TAP_OK(prog_fd >= 0, "the program is pinned at %s", FP_ProgPin(fp));

	/* IPv4: handshake and first packets go to the queue, then no more. */
	c = PB_Default(AF_INET);
	c.seq = 1000;
	c.flags = TCPF_SYN;
	sv = PB_Default(AF_INET);
	sv.src = c.dst;
	sv.dst = c.src;
	sv.sport = c.dport;
	sv.dport = c.sport;
	TAP_EQ_U(run(&c, NULL), 1, "SYN: queued");
	sv.seq = 5000;
	sv.ack = 1001;
	sv.flags = TCPF_SYN | TCPF_ACK;
	TAP_EQ_U(run(&sv, NULL), 1, "SYN-ACK: queued");
	c.flags = TCPF_ACK;
	c.seq = 1001;
	c.ack = 5001;
	c.ts = 1;
	c.tsval = 700;
	TAP_EQ_U(run(&c, NULL), 1, "handshake ACK (2nd packet of the direction): queued");
	c.payload_len = 100;
	TAP_EQ_U(run(&c, NULL), 1, "first data (3rd): queued");
	c.seq += 100;
	TAP_EQ_U(run(&c, NULL), 1, "4th packet: queued");
	c.seq += 100;
	TAP_EQ_U(run(&c, NULL), 0, "5th packet: not queued (the kernel keeps its numbers)");
	c.seq += 100;
	c.ipid = 77;
	c.ttl = 61;
	c.tsval = 900;
	c.ack = 5301;
	TAP_EQ_U(run(&c, NULL), 0, "6th packet: not queued");

	/* What the daemon reads back. */
	flow_for(&c, &f);
	f.dir[0].next_seq = 1201;
	f.dir[0].pkts = 4;
	f.dir[1].next_seq = 5001;
	f.dir[1].pkts = 1;
	FP_SyncFlow(fp, &f, NULL, -1, 0, 0, mono_ns());
	TAP_EQ_U(f.dir[0].next_seq, 1401, "sync: next_seq covers the unqueued data");
	TAP_EQ_U(f.dir[0].last_ack, 5301, "sync: last ACK");
	TAP_EQ_U(f.dir[0].ttl_last, 61, "sync: TTL of the last packet");
	TAP_EQ_U(f.dir[0].ipid, 77, "sync: IP ID of the last packet");
	TAP_EQ_U(f.dir[0].tsval, 900, "sync: TSval of the last packet");
	TAP_EQ_U(f.dir[0].pkts, 6, "sync: packets");
	TAP_OK(f.last_seen_ms > 0, "sync: last_seen_ms from the kernel's time");
	TAP_OK(f.dir[0].flags & FD_LASTDATA, "sync: the client sent the latest payload");

	/* A watch queues every packet until it expires. */
	TAP_EQ_U(FP_Watch(fp, &f, NULL, mono_ns() + 10000000000ULL), 0, "FP_Watch");
	c.seq += 100;
	TAP_EQ_U(run(&c, NULL), 1, "watched flow: queued");
	FP_Unwatch(fp, &f, NULL);
	c.seq += 100;
	TAP_EQ_U(run(&c, NULL), 0, "after FP_Unwatch: not queued");
	FP_Watch(fp, &f, NULL, 1);
	c.seq += 100;
	TAP_EQ_U(run(&c, NULL), 0, "an expired watch: not queued");

	/* A FIN: every later packet of the flow, both directions, is queued. */
	for (int i = 0; i < 4; i++) {
		sv.flags = TCPF_ACK;
		sv.seq = 5001;
		sv.ack = c.seq;
		run(&sv, NULL);
	}
	sv.seq = 5001;
	TAP_EQ_U(run(&sv, NULL), 0, "server's 6th packet: not queued");
	c.flags = TCPF_FIN | TCPF_ACK;
	c.payload_len = 0;
	TAP_EQ_U(run(&c, NULL), 1, "FIN: queued");
	TAP_EQ_U(run(&sv, NULL), 1, "after a FIN, the peer's ACK: queued");

	/* IPv6: a RST leaves the baselines as they were and closes the flow. */
	c6 = PB_Default(AF_INET6);
	c6.flags = TCPF_SYN;
	c6.seq = 100;
	run(&c6, NULL);
	c6.flags = TCPF_ACK;
	c6.seq = 101;
	c6.payload_len = 10;
	for (int i = 0; i < 5; i++) {
		r = run(&c6, NULL);
		c6.seq += 10;
	}
	TAP_EQ_U(r, 0, "IPv6: 6th packet not queued");
	c6.flags = TCPF_RST;
	c6.payload_len = 0;
	c6.seq = 999999;
	TAP_EQ_U(run(&c6, NULL), 1, "IPv6 RST: queued");
	flow_for(&c6, &f6);
	f6.dir[0].pkts = 4;
	FP_SyncFlow(fp, &f6, NULL, -1, 0, 0, mono_ns());
	TAP_EQ_U(f6.dir[0].next_seq, 151, "the RST did not move the sender's next_seq");
	c6.flags = TCPF_ACK;
	c6.seq = 151;
	TAP_EQ_U(run(&c6, NULL), 1, "after a RST: queued");

	/* What the program cannot parse goes to the daemon. */
	c.flags = TCPF_ACK;
	TAP_EQ_U(run(&c, more_fragments), 1, "IPv4 fragment: queued");
	c6.payload_len = 0;
	TAP_EQ_U(run(&c6, hop_by_hop), 1, "IPv6 extension header: queued");

	FP_GetStats(fp, &st);
	TAP_EQ_U(st.seen, runs, "counters: seen = packets run");
	TAP_EQ_U(st.unparsed, 2, "counters: unparsed");
	TAP_EQ_U(st.watched, 1, "counters: watched");
	TAP_EQ_U(st.unknown, 3, "counters: unknown (first packet of three directions)");
	TAP_OK(st.queued < st.seen && st.queued >= st.watched + st.unparsed + st.unknown,
	       "counters: queued (%llu) between its parts and seen", (unsigned long long)st.queued);

	close(prog_fd);
	FP_Close(fp);
	r = rmdir(dir);
	TAP_OK(r == 0, "FP_Close unpins and unmounts (the temp dir is empty: %s)",
	       r == 0 ? "removed" : strerror(errno));
	return tap_done();
}

#else

int
main(void)
{
	TAP_OK(!FP_Available(), "a build without the fast path says so");
	TAP_OK(FP_Open("/sys/fs/bpf/rstguard", 1024) == NULL, "FP_Open fails");
	return tap_done();
}

#endif
