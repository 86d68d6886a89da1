#!/usr/bin/env bash
# bench/offline_bench.sh: offline analysis throughput, `rstguard -r CAPTURE` on one core.
#
#   bench/offline_bench.sh [-n PACKETS] [-f FLOWS] [-s SNAPLEN] [-r REPS] [--keep] [--capture FILE]
#
# Generates a synthetic capture (default 5,000,000 packets; a small C generator, compiled here,
# that writes pcap records straight from header templates: scapy would take hours), then runs
# `taskset -c 0 rstguard -r CAPTURE -e /dev/null --summary json` REPS times (default 3, after
# one warm-up run that brings the file into the page cache) and prints packets per second of
# the best and the median run. The target is at least 1,000,000 packets/s.
#
# The capture is what a header capture of a busy gateway looks like (tcpdump -s 128 by default,
# real wire lengths): FLOWS (default 20000) connections open at once, packets of random flows
# interleaved; each connection does a handshake (with MSS, SACK-permitted, timestamps, window
# scale), a request, 4-400 data segments of 1448 bytes from the server with an ACK for every
# second one, then mostly a FIN close, sometimes a RST abort from the server or from the client;
# 2 % of the connections are refused (SYN, RST/ACK). 10 % IPv6. Timestamps advance 1 us a
# packet. Data and ACKs are over 95 % of the packets, as in real traffic.
#
# --capture FILE analyses an existing capture instead (no generation).
# Environment: RSTGUARD (default ./src/rstguard of the build), RG_BUILDDIR, CC (cc), TMPDIR.
set -u
export LC_ALL=C

SRCDIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILDDIR=${RG_BUILDDIR:-$SRCDIR}
RSTGUARD=${RSTGUARD:-$BUILDDIR/src/rstguard}
CC=${CC:-cc}

PACKETS=5000000
FLOWS=20000
SNAPLEN=128
REPS=3
KEEP=0
CAPTURE=""
TARGET=1000000

while [ $# -gt 0 ]; do
	case $1 in
	-n) PACKETS=$2; shift 2 ;;
	-f) FLOWS=$2; shift 2 ;;
	-s) SNAPLEN=$2; shift 2 ;;
	-r) REPS=$2; shift 2 ;;
	--keep) KEEP=1; shift ;;
	--capture) CAPTURE=$2; shift 2 ;;
	-h | --help) sed -n '2,22p' "$0"; exit 0 ;;
	*) echo "offline_bench: unknown argument $1" >&2; exit 2 ;;
	esac
done

[ -x "$RSTGUARD" ] || { echo "offline_bench: $RSTGUARD not built" >&2; exit 1; }
command -v taskset >/dev/null 2>&1 || { echo "offline_bench: taskset (util-linux) missing" >&2; exit 1; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/rg-offbench.XXXXXX") || exit 1
cleanup() {
	if [ "$KEEP" = 1 ]; then
		echo "kept $TMP"
	else
		rm -rf -- "$TMP"
	fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# ----------------------------------------------------------------------------------------------
# the generator

cat >"$TMP/pcapgen.c" <<'EOF'
/* pcapgen OUT PACKETS FLOWS SNAPLEN: a synthetic gateway capture (see offline_bench.sh). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { F_FIN = 1, F_SYN = 2, F_RST = 4, F_PSH = 8, F_ACK = 16 };
enum { END_FIN, END_SRV_RST, END_CLI_RST, END_REFUSED };
enum { ST_SYN, ST_SYNACK, ST_ACK, ST_REQ, ST_DATA, ST_CLOSE1, ST_CLOSE2, ST_CLOSE3, ST_DONE };

struct flow {
	int v6, end, state, segs, sent, unacked;
	uint32_t cip, sip;             /* IPv4, or the low 32 bits of the IPv6 host part */
	uint16_t cport, sport, cid, sid;
	uint32_t cseq, sseq;           /* next sequence number of each side */
	uint32_t ts;
};

static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static uint64_t
rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static uint8_t mac_c[6] = { 0x02, 0, 0, 0, 0, 1 }, mac_g[6] = { 0x02, 0, 0, 0, 0, 2 };
static FILE *out;
static uint64_t now_us = 1795600000ULL * 1000000ULL;
static unsigned snaplen;
static uint64_t written;

static void
put16(uint8_t *p, unsigned v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void
put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void
new_flow(struct flow *f, uint32_t n)
{
	uint64_t r = rnd();

	memset(f, 0, sizeof(*f));
	f->v6 = r % 10 == 0;
	f->cip = 0xC6120000u | (uint32_t)(1 + (n * 7919u) % 0xFFFE);        /* 198.18.x.y */
	f->sip = 0xC6130000u | (uint32_t)(1 + (r >> 8) % 200);              /* 198.19.0.x */
	f->cport = (uint16_t)(32768 + (n * 31u + (uint32_t)(r >> 20)) % 28000);
	f->sport = (r >> 40) % 3 == 0 ? 80 : 443;
	f->cseq = (uint32_t)rnd();
	f->sseq = (uint32_t)rnd();
	f->cid = (uint16_t)rnd();
	f->sid = (uint16_t)rnd();
	f->ts = (uint32_t)rnd();
	f->segs = 4 + (int)(rnd() % 397);
	r = rnd() % 100;
	f->end = r < 2 ? END_REFUSED : r < 5 ? END_SRV_RST : r < 7 ? END_CLI_RST : END_FIN;
	f->state = ST_SYN;
}

/* One packet of flow f from the client (toserver) or the server. */
static void
emit(struct flow *f, int toserver, unsigned flags, uint32_t ack, unsigned payload)
{
	uint8_t b[256];
	unsigned l3 = f->v6 ? 40 : 20, optlen = (flags & F_SYN) ? 20 : (flags & F_RST) ? 0 : 12;
	unsigned tcp = 20 + optlen, hdr = 14 + l3 + tcp, wire = hdr + payload, cap;
	uint32_t seq = toserver ? f->cseq : f->sseq;
	uint8_t *ip = b + 14, *t = b + 14 + l3;
	uint8_t hdrrec[16];

	memcpy(b, toserver ? mac_g : mac_c, 6);
	memcpy(b + 6, toserver ? mac_c : mac_g, 6);
	if (f->v6) {
		put16(b + 12, 0x86dd);
		memset(ip, 0, 40);
		ip[0] = 0x60;
		put16(ip + 4, tcp + payload);
		ip[6] = 6;
		ip[7] = toserver ? 64 : 57;
		/* 2001:db8:1::/48 clients, 2001:db8:2::/48 servers */
		put32(ip + 8, 0x20010db8);
		put32(ip + 12, toserver ? 0x00010000 : 0x00020000);
		put32(ip + 20, toserver ? f->cip : f->sip);
		put32(ip + 24, 0x20010db8);
		put32(ip + 28, toserver ? 0x00020000 : 0x00010000);
		put32(ip + 36, toserver ? f->sip : f->cip);
	} else {
		uint32_t sum = 0;

		put16(b + 12, 0x0800);
		ip[0] = 0x45;
		ip[1] = 0;
		put16(ip + 2, l3 + tcp + payload);
		put16(ip + 4, toserver ? f->cid++ : f->sid++);
		put16(ip + 6, 0x4000);   /* DF */
		ip[8] = toserver ? 64 : 57;
		ip[9] = 6;
		put16(ip + 10, 0);
		put32(ip + 12, toserver ? f->cip : f->sip);
		put32(ip + 16, toserver ? f->sip : f->cip);
		for (int i = 0; i < 20; i += 2)
			sum += (uint32_t)(ip[i] << 8 | ip[i + 1]);
		while (sum >> 16)
			sum = (sum & 0xFFFF) + (sum >> 16);
		put16(ip + 10, ~sum & 0xFFFF);
	}
	put16(t, toserver ? f->cport : f->sport);
	put16(t + 2, toserver ? f->sport : f->cport);
	put32(t + 4, seq);
	put32(t + 8, (flags & F_ACK) ? ack : 0);
	t[12] = (uint8_t)((tcp / 4) << 4);
	t[13] = (uint8_t)flags;
	put16(t + 14, (flags & F_SYN) ? 64240 : (flags & F_RST) ? 0 : 502);
	put32(t + 16, 0);   /* checksum (not checked) and urgent pointer */
	if (optlen == 20) {
		uint8_t o[20] = { 2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 0, 0, 0, 0, 0, 1, 3, 3, 7 };

		put32(o + 8, f->ts);
		memcpy(t + 20, o, 20);
	} else if (optlen == 12) {
		uint8_t o[12] = { 1, 1, 8, 10 };

		put32(o + 4, f->ts + (uint32_t)(now_us / 1000));
		put32(o + 8, f->ts);
		memcpy(t + 20, o, 12);
	}
	cap = wire < snaplen ? wire : snaplen;
	if (cap > hdr)
		memset(b + hdr, 'x', cap - hdr);
	/* little-endian record header */
	{
		uint32_t v[4] = { (uint32_t)(now_us / 1000000), (uint32_t)(now_us % 1000000), cap, wire };

		for (int i = 0; i < 4; i++)
			for (int k = 0; k < 4; k++)
				hdrrec[i * 4 + k] = (uint8_t)(v[i] >> (8 * k));
	}
	fwrite(hdrrec, 1, 16, out);
	fwrite(b, 1, cap, out);
	now_us++;
	written++;
	if (toserver)
		f->cseq += payload + ((flags & (F_SYN | F_FIN)) ? 1 : 0);
	else
		f->sseq += payload + ((flags & (F_SYN | F_FIN)) ? 1 : 0);
}

/* The next packet of flow f; returns 0 when the flow is finished. */
static int
step(struct flow *f)
{
	switch (f->state) {
	case ST_SYN:
		emit(f, 1, F_SYN, 0, 0);
		f->state = ST_SYNACK;
		return 1;
	case ST_SYNACK:
		if (f->end == END_REFUSED) {
			f->sseq = 0;
			emit(f, 0, F_RST | F_ACK, f->cseq, 0);
			return 0;
		}
		emit(f, 0, F_SYN | F_ACK, f->cseq, 0);
		f->state = ST_ACK;
		return 1;
	case ST_ACK:
		emit(f, 1, F_ACK, f->sseq, 0);
		f->state = ST_REQ;
		return 1;
	case ST_REQ:
		emit(f, 1, F_PSH | F_ACK, f->sseq, 180);
		f->state = ST_DATA;
		return 1;
	case ST_DATA:
		if (f->unacked >= 2) {
			emit(f, 1, F_ACK, f->sseq, 0);
			f->unacked = 0;
			return 1;
		}
		if (f->sent >= f->segs) {
			if (f->end == END_SRV_RST) {
				emit(f, 0, F_RST | F_ACK, f->cseq, 0);
				return 0;
			}
			if (f->end == END_CLI_RST) {
				emit(f, 1, F_RST | F_ACK, f->sseq, 0);
				return 0;
			}
			f->state = ST_CLOSE1;
			return step(f);
		}
		emit(f, 0, F_ACK | (f->sent + 1 == f->segs ? F_PSH : 0), f->cseq, 1448);
		f->sent++;
		f->unacked++;
		return 1;
	case ST_CLOSE1:
		emit(f, 0, F_FIN | F_ACK, f->cseq, 0);
		f->state = ST_CLOSE2;
		return 1;
	case ST_CLOSE2:
		emit(f, 1, F_FIN | F_ACK, f->sseq, 0);
		f->state = ST_CLOSE3;
		return 1;
	case ST_CLOSE3:
		emit(f, 0, F_ACK, f->cseq, 0);
		return 0;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	uint64_t packets;
	uint32_t nflows, serial = 0;
	struct flow *fl;
	static char obuf[1 << 20];
	uint8_t gh[24] = { 0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0 };

	if (argc != 5) {
		fprintf(stderr, "usage: pcapgen OUT PACKETS FLOWS SNAPLEN\n");
		return 2;
	}
	packets = strtoull(argv[2], NULL, 10);
	nflows = (uint32_t)strtoul(argv[3], NULL, 10);
	snaplen = (unsigned)strtoul(argv[4], NULL, 10);
	if (snaplen < 96 || snaplen > 256 || nflows == 0) {
		fprintf(stderr, "pcapgen: SNAPLEN 96..256, FLOWS > 0\n");
		return 2;
	}
	out = fopen(argv[1], "wb");
	if (out == NULL) {
		perror(argv[1]);
		return 1;
	}
	setvbuf(out, obuf, _IOFBF, sizeof(obuf));
	gh[16] = (uint8_t)snaplen;
	gh[17] = (uint8_t)(snaplen >> 8);
	gh[20] = 1;  /* DLT_EN10MB */
	fwrite(gh, 1, 24, out);
	fl = calloc(nflows, sizeof(*fl));
	if (fl == NULL)
		return 1;
	for (uint32_t i = 0; i < nflows; i++)
		new_flow(&fl[i], serial++);
	while (written < packets) {
		struct flow *f = &fl[rnd() % nflows];

		if (!step(f))
			new_flow(f, serial++);
	}
	if (fclose(out) != 0) {
		perror(argv[1]);
		return 1;
	}
	printf("%llu packets, %u connections started\n", (unsigned long long)written, serial);
	return 0;
}
EOF

if [ -z "$CAPTURE" ]; then
	"$CC" -O2 -std=c11 -Wall -o "$TMP/pcapgen" "$TMP/pcapgen.c" || exit 1
	CAPTURE=$TMP/bench.pcap
	t0=$(date +%s%N)
	"$TMP/pcapgen" "$CAPTURE" "$PACKETS" "$FLOWS" "$SNAPLEN" || exit 1
	t1=$(date +%s%N)
	echo "generated $CAPTURE: $(du -h "$CAPTURE" | cut -f1), snaplen $SNAPLEN, $FLOWS flows at once, in $(((t1 - t0) / 1000000)) ms"
fi

# ----------------------------------------------------------------------------------------------
# the runs

run_once() {
	local t0 t1
	t0=$(date +%s%N)
	taskset -c 0 "$RSTGUARD" -r "$CAPTURE" -e /dev/null --summary json 2>"$TMP/summary.json" ||
		{ echo "offline_bench: rstguard -r failed:" >&2; cat "$TMP/summary.json" >&2; exit 1; }
	t1=$(date +%s%N)
	echo $(((t1 - t0) / 1000))
}

run_once >/dev/null   # page cache, first-touch of the binary
npk=$(sed -n 's/.*"packets":\([0-9]*\).*/\1/p' "$TMP/summary.json")
echo "summary: $(cut -c1-400 "$TMP/summary.json")"
times=()
for i in $(seq 1 "$REPS"); do
	us=$(run_once)
	times+=("$us")
	printf 'run %d: %d packets in %d.%03d s: %d packets/s\n' "$i" "$npk" $((us / 1000000)) \
		$(((us / 1000) % 1000)) $((npk * 1000000 / us))
done
sorted=$(printf '%s\n' "${times[@]}" | sort -n)
best=$(head -n 1 <<<"$sorted")
median=$(sed -n "$(((REPS + 1) / 2))p" <<<"$sorted")
best_pps=$((npk * 1000000 / best))
median_pps=$((npk * 1000000 / median))
echo "rstguard -r on one core (taskset -c 0): best $best_pps packets/s, median $median_pps packets/s ($REPS runs, $npk packets)"
if [ "$median_pps" -ge "$TARGET" ]; then
	echo "target >= $TARGET packets/s: met"
else
	echo "target >= $TARGET packets/s: NOT met"
	exit 3
fi
