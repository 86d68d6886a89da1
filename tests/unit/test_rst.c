/* Unit tests of the RST analysis, driven through the real engine: crafted packet sequences of
 * realistic connections (a client 0.5 ms from the gateway, a server 10 ms away behind one router),
 * then genuine and forged RSTs. Each scenario checks the cause, the forged verdict, the evidence
 * names, and in enforce mode the packet's verdict (at once or through ENG_TakeVerdicts). The
 * false-positive traps (kernel RSTs with IP ID 0, several genuine RSTs answering in-flight
 * segments, the far end's genuine RST after an injection, mid-stream pickups) are here too.
 *
 * Facts used (docs/detection.md, with the sources): a passive Linux RST (no socket) has seq = the trigger's
 * ack and no ACK flag, IP ID 0 with DF; an active RST (abort, close with unread data, keepalive
 * timeout) is RST|ACK with seq = SND.NXT and the socket's next IP ID; a SYN-ACK from a listener
 * carries IP ID 0 with DF, the established socket then counts up from a random start. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "engine.h"
#include "event.h"
#include "packet.h"
#include "pktbuild.h"
#include "tap.h"

#define MONO0_NS (1000ULL * 1000000000ULL)
#define REAL0_NS (1795608000ULL * 1000000000ULL)   /* 2026-11-25T12:00:00Z */
#define MS 1000ULL                                  /* microseconds */
#define MAXLOG 256
#define BUFSZ 2048

enum { DETECT = 0, ENFORCE = 1 };

static char ev_path[64];
static struct event_sink *sink;
static const uint8_t seed[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };

/* ---- driving the engine ---- */

struct sent {
	uint32_t id;
	uint64_t real_ns;
	enum rg_verdict first;      /* what ENG_Packet returned */
	enum rg_verdict final;      /* the later verdict of a held packet (RG_HOLD while owed) */
};

struct sim {
	char name[64];
	int enforce;
	struct config cfg;
	struct engine *e;
	uint64_t now_us;
	uint32_t next_id;
	long ev_start;
	struct sent log[MAXLOG];
	int n;
	int stray;                  /* verdicts for packets that were not owed one */
	int batch;                  /* set: do not take verdicts after each packet (one receive batch) */
};

static void
sim_time(struct sim *s)
{
	struct engine_time t = { MONO0_NS + s->now_us * 1000, REAL0_NS + s->now_us * 1000 };

	ENG_SetTime(s->e, &t);
}

static void
collect(struct sim *s)
{
	struct engine_verdict v[64];
	uint32_t n;

	while ((n = ENG_TakeVerdicts(s->e, v, 64)) > 0) {
		for (uint32_t i = 0; i < n; i++) {
			int found = 0;

			for (int k = 0; k < s->n; k++) {
				if (s->log[k].id == v[i].pkt_id && s->log[k].first == RG_HOLD &&
				    s->log[k].final == RG_HOLD) {
					s->log[k].final = v[i].verdict;
					found = 1;
					break;
				}
			}
			if (!found)
				s->stray++;
		}
	}
}

static void
sim_start(struct sim *s, const char *name, int enforce, unsigned hold_threshold)
{
	struct engine_time t0 = { MONO0_NS, REAL0_NS };
	struct stat st;

	memset(s, 0, sizeof(*s));
	snprintf(s->name, sizeof(s->name), "%s[%s%s]", name, enforce ? "enforce" : "detect",
		 enforce ? (hold_threshold == 0 ? "/hold-all" : "/hold>=1") : "");
	s->enforce = enforce;
	CFG_SetDefaults(&s->cfg);
	s->cfg.hold_min_ms = 20;   /* the windows below are computed for a 20 ms minimum */
	s->cfg.mode = enforce ? RG_MODE_ENFORCE : RG_MODE_DETECT;
	s->cfg.hold_threshold = hold_threshold;
	s->cfg.confirm = 0;        /* confirmation probes: their own scenarios, with a fake sender */
	EV_Flush();
	s->ev_start = stat(ev_path, &st) == 0 ? (long)st.st_size : 0;
	s->e = ENG_Create(&s->cfg, 4096, sink, seed, &t0);
	if (s->e == NULL)
		abort();
}

/* Advance the clock by dt_us (at least 1 us, so that every packet has its own timestamp), run
 * the timers as the daemon does between receive batches, and hand the packet to the engine. */
static int
tx_id(struct sim *s, const struct pb_spec *p, uint64_t dt_us, uint32_t id)
{
	uint8_t buf[BUFSZ];
	size_t len = PB_Build(buf, sizeof(buf), p);
	struct sent *l;

	if (len == 0 || s->n >= MAXLOG)
		abort();
	s->now_us += dt_us ? dt_us : 1;
	sim_time(s);
	if (!s->batch) {
		ENG_Tick(s->e);
		collect(s);
	}
	l = &s->log[s->n];
	l->id = id;
	l->real_ns = REAL0_NS + s->now_us * 1000;
	l->first = ENG_Packet(s->e, buf, (uint32_t)len, (uint32_t)len, id);
	l->final = RG_HOLD;
	if (!s->batch)
		collect(s);
	return s->n++;
}

static int
tx(struct sim *s, const struct pb_spec *p, uint64_t dt_us)
{
	return tx_id(s, p, dt_us, ++s->next_id);
}

/* Let time pass (no traffic) and run the timers. */
static void
settle(struct sim *s, uint64_t us)
{
	s->now_us += us;
	sim_time(s);
	ENG_Tick(s->e);
	collect(s);
}

static enum rg_verdict
verdict_of(const struct sim *s, int h)
{
	return s->log[h].first != RG_HOLD ? s->log[h].first : s->log[h].final;
}

static const char *
vname(enum rg_verdict v)
{
	return v == RG_ACCEPT ? "accept" : v == RG_DROP ? "drop" : "still held";
}

/* Shutdown: every held packet gets its verdict, nothing stays held. */
static void
sim_end(struct sim *s)
{
	int owed = 0;

	ENG_Shutdown(s->e);
	collect(s);
	if (s->enforce) {
		for (int i = 0; i < s->n; i++)
			owed += s->log[i].first == RG_HOLD && s->log[i].final == RG_HOLD;
		TAP_EQ_U(ENG_HeldCount(s->e), 0, "nothing held after ENG_Shutdown");
		tap_ok(owed == 0 && s->stray == 0, "%s: every held packet got exactly one verdict (%d owed, %d stray)",
		       s->name, owed, s->stray);
	}
	ENG_Destroy(s->e);
	CFG_Free(&s->cfg);
}

/* ---- events ---- */

static char *
read_events(const struct sim *s)
{
	FILE *fp;
	long size;
	char *buf;

	EV_Flush();
	fp = fopen(ev_path, "r");
	if (fp == NULL)
		abort();
	fseek(fp, 0, SEEK_END);
	size = ftell(fp) - s->ev_start;
	if (size < 0)
		size = 0;
	buf = malloc((size_t)size + 1);
	if (buf == NULL)
		abort();
	fseek(fp, s->ev_start, SEEK_SET);
	size = (long)fread(buf, 1, (size_t)size, fp);
	buf[size] = '\0';
	fclose(fp);
	return buf;
}

/* The event of type type about packet h (events carry the RST's own timestamp). */
static int
event_for(const struct sim *s, int h, const char *type, char *out, size_t cap)
{
	char ts[48], want_ts[80], want_type[48];
	char *all = read_events(s), *line, *save = NULL;
	int found = 0;

	EV_FormatTime(s->log[h].real_ns, ts, sizeof(ts));
	snprintf(want_ts, sizeof(want_ts), "\"timestamp\":\"%s\"", ts);
	snprintf(want_type, sizeof(want_type), "\"event_type\":\"%s\"", type);
	for (line = strtok_r(all, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (strstr(line, want_ts) && strstr(line, want_type)) {
			snprintf(out, cap, "%s", line);
			found = 1;
			break;
		}
	}
	free(all);
	return found;
}

/* The revised rst event about packet h (stamped when revised, first_seen = the RST's time). */
static int
revised_for(const struct sim *s, int h, char *out, size_t cap)
{
	char ts[48], want[96];
	char *all = read_events(s), *line, *save = NULL;
	int found = 0;

	EV_FormatTime(s->log[h].real_ns, ts, sizeof(ts));
	snprintf(want, sizeof(want), "\"revised\":true,\"first_seen\":\"%s\"", ts);
	for (line = strtok_r(all, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (strstr(line, want)) {
			snprintf(out, cap, "%s", line);
			found = 1;
			break;
		}
	}
	free(all);
	return found;
}

static int
count_events(const struct sim *s, const char *type)
{
	char want[48], *all = read_events(s), *p = all;
	int n = 0;

	snprintf(want, sizeof(want), "\"event_type\":\"%s\"", type);
	while ((p = strstr(p, want)) != NULL) {
		n++;
		p += strlen(want);
	}
	free(all);
	return n;
}

/* The text of a field's value: a string without its quotes, an array with its brackets, or a
 * bare number/boolean. */
static int
field(const char *line, const char *key, char *out, size_t cap)
{
	char pat[64];
	const char *v, *end;
	size_t n;

	snprintf(pat, sizeof(pat), "\"%s\":", key);
	out[0] = '\0';
	v = strstr(line, pat);
	if (v == NULL)
		return 0;
	v += strlen(pat);
	if (*v == '"') {
		v++;
		end = strchr(v, '"');
	} else if (*v == '[') {
		end = strchr(v, ']');
		if (end)
			end++;
	} else {
		end = v + strcspn(v, ",}");
	}
	if (end == NULL)
		end = v + strlen(v);
	n = (size_t)(end - v) < cap - 1 ? (size_t)(end - v) : cap - 1;
	memcpy(out, v, n);
	out[n] = '\0';
	return 1;
}

/* "ttl,ipid" -> ["ttl","ipid"] */
static void
evidence_json(const char *list, char *out, size_t cap)
{
	char tmp[256], *tok, *save = NULL;
	size_t n = 0;

	snprintf(tmp, sizeof(tmp), "%s", list);
	n += (size_t)snprintf(out + n, cap - n, "[");
	for (tok = strtok_r(tmp, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
		n += (size_t)snprintf(out + n, cap - n, "%s\"%s\"", n > 1 ? "," : "", tok);
	snprintf(out + n, cap - n, "]");
}

static void
diag_line(const char *line)
{
	printf("#   event: %s\n", line);
}

/* Check the rst event of packet h: cause (NULL: any), forged (-1: any), the exact evidence list
 * (NULL: any; "" for none). */
static void
expect_rst(const struct sim *s, int h, const char *what, const char *cause, int forged, const char *evidence)
{
	char line[EVENT_LINE_MAX + 1], v[512], want[512];
	int bad = 0;

	if (!event_for(s, h, "rst", line, sizeof(line))) {
		tap_ok(0, "%s: %s: rst event present", s->name, what);
		return;
	}
	if (cause) {
		field(line, "cause", v, sizeof(v));
		bad |= strcmp(v, cause) != 0;
		tap_ok(strcmp(v, cause) == 0, "%s: %s: cause %s (got %s)", s->name, what, cause, v);
	}
	if (forged >= 0) {
		field(line, "forged", v, sizeof(v));
		bad |= strcmp(v, forged ? "true" : "false") != 0;
		tap_ok(strcmp(v, forged ? "true" : "false") == 0, "%s: %s: forged %s (got %s)", s->name, what,
		       forged ? "true" : "false", v);
	}
	if (evidence) {
		evidence_json(evidence, want, sizeof(want));
		field(line, "evidence", v, sizeof(v));
		bad |= strcmp(v, want) != 0;
		tap_ok(strcmp(v, want) == 0, "%s: %s: evidence %s (got %s)", s->name, what, want, v);
	}
	if (bad)
		diag_line(line);
}

static void
expect_field(const struct sim *s, int h, const char *what, const char *key, const char *want)
{
	char line[EVENT_LINE_MAX + 1], v[512];

	if (!event_for(s, h, "rst", line, sizeof(line))) {
		tap_ok(0, "%s: %s: rst event present", s->name, what);
		return;
	}
	field(line, key, v, sizeof(v));
	tap_ok(strcmp(v, want) == 0, "%s: %s: %s = %s (got %s)", s->name, what, key, want, v);
	if (strcmp(v, want) != 0)
		diag_line(line);
}

/* Is evidence name among the rst event's evidence? present: 1 must be, 0 must not be. */
static void
expect_ev(const struct sim *s, int h, const char *what, const char *name, int present)
{
	char line[EVENT_LINE_MAX + 1], v[512], q[64];
	int has;

	if (!event_for(s, h, "rst", line, sizeof(line))) {
		tap_ok(0, "%s: %s: rst event present", s->name, what);
		return;
	}
	field(line, "evidence", v, sizeof(v));
	snprintf(q, sizeof(q), "\"%s\"", name);
	has = strstr(v, q) != NULL;
	tap_ok(has == present, "%s: %s: evidence %s \"%s\" (got %s)", s->name, what, present ? "has" : "lacks",
	       name, v);
	if (has != present)
		diag_line(line);
}

static void
expect_no_event_yet(const struct sim *s, int h, const char *what)
{
	char line[EVENT_LINE_MAX + 1];

	tap_ok(!event_for(s, h, "rst", line, sizeof(line)), "%s: %s: not judged yet (waits for its sender)",
	       s->name, what);
}

static void
expect_anomaly(const struct sim *s, int h, const char *what, int present)
{
	char line[EVENT_LINE_MAX + 1];
	int has = event_for(s, h, "anomaly", line, sizeof(line));

	tap_ok(has == present, "%s: %s: %s stream.suspected_rst_inject anomaly", s->name, what,
	       present ? "an" : "no");
}

/* A revised rst event for packet h: forged, cause injected, with the late signal among its
 * evidence (or none expected: present == 0). */
static void
expect_revised(const struct sim *s, int h, const char *what, const char *late, int present)
{
	char line[EVENT_LINE_MAX + 1];
	int has = revised_for(s, h, line, sizeof(line));

	tap_ok(has == present, "%s: %s: %s revised rst event", s->name, what, present ? "a" : "no");
	if (!has || !present)
		return;
	tap_ok(strstr(line, "\"cause\":\"injected\"") && strstr(line, "\"forged\":true") && strstr(line, late),
	       "%s: %s: revised as injected, forged, with %s (%s)", s->name, what, late, line);
}

static void
expect_verdict(const struct sim *s, int h, const char *what, enum rg_verdict want)
{
	enum rg_verdict got = verdict_of(s, h);

	tap_ok(got == want, "%s: %s: packet verdict %s (got %s)", s->name, what, vname(want), vname(got));
}

static void
expect_first(const struct sim *s, int h, const char *what, enum rg_verdict want)
{
	tap_ok(s->log[h].first == want, "%s: %s: ENG_Packet returned %s (got %s)", s->name, what,
	       want == RG_HOLD ? "hold" : vname(want), s->log[h].first == RG_HOLD ? "hold" : vname(s->log[h].first));
}

/* ---- connections ---- */

enum ipid_mode { IPID_COUNT = 0, IPID_RAND, IPID_ZEROS, IPID_CONST };

struct side {
	const char *addr;
	uint16_t port;
	uint32_t isn, nxt;
	uint16_t ipid;              /* next IP ID (counter), or last one (random) */
	enum ipid_mode ipid_mode;
	uint32_t lcg;
	uint8_t ttl;
	uint16_t win;
};

struct conn {
	int family;
	struct side c, s;
	uint64_t rtt_s_us, rtt_c_us;   /* gateway <-> server, gateway <-> client round trips */
	uint16_t c_syn_ipid;
};

static struct conn
conn_new(int family, uint16_t cport)
{
	struct conn k;

	memset(&k, 0, sizeof(k));
	k.family = family;
	k.c.addr = family == AF_INET6 ? "2001:db8:1::2" : "198.18.1.2";
	k.s.addr = family == AF_INET6 ? "2001:db8:3::2" : "198.18.3.2";
	k.c.port = cport;
	k.s.port = 80;
	k.c.isn = k.c.nxt = 0x1a2b3c4du + (uint32_t)cport * 7919u;
	k.s.isn = k.s.nxt = 0x7e00a000u ^ ((uint32_t)cport << 12);
	k.c.ipid = 0x4d21;
	k.s.ipid = 0x3a10;
	k.c.ttl = 64;                 /* the client is on the gateway's LAN */
	k.s.ttl = 63;                 /* the server's 64 crossed one router */
	k.c.win = 64240;
	k.s.win = 65160;
	k.c.lcg = 12345;
	k.s.lcg = 67890;
	k.rtt_s_us = 10 * MS;
	k.rtt_c_us = 500;
	return k;
}

static uint16_t
next_ipid(struct side *a)
{
	switch (a->ipid_mode) {
	case IPID_RAND:
		/* Every step at least 2000 away: a random-ID sender never looks like a counter. */
		a->lcg = a->lcg * 1103515245u + 12345u;
		a->ipid = (uint16_t)(a->ipid + 2000 + (a->lcg >> 8) % 60000);
		return a->ipid;
	case IPID_ZEROS:
		return 0;
	case IPID_CONST:
		return a->ipid;
	default:
		return a->ipid++;
	}
}

/* The last IP ID a side used (for copies) and the next one its socket will use. */
static uint16_t
next_ipid_peek(const struct side *a)
{
	return a->ipid_mode == IPID_ZEROS ? 0 : a->ipid;
}

/* A segment as the side's stack sends it: seq = SND.NXT, ack = RCV.NXT, its TTL, window, DF and
 * next IP ID. Advances SND.NXT. */
static struct pb_spec
seg(struct conn *k, int from_server, uint8_t flags, uint32_t len)
{
	struct side *a = from_server ? &k->s : &k->c, *b = from_server ? &k->c : &k->s;
	struct pb_spec p = PB_Default(k->family);

	p.src = a->addr;
	p.dst = b->addr;
	p.sport = a->port;
	p.dport = b->port;
	p.seq = a->nxt;
	p.ack = (flags & TCPF_ACK) ? b->nxt : 0;
	p.flags = flags;
	p.win = a->win;
	p.ttl = a->ttl;
	p.ipid = next_ipid(a);
	p.df = 1;
	p.payload_len = len;
	a->nxt += len + ((flags & TCPF_SYN) ? 1 : 0) + ((flags & TCPF_FIN) ? 1 : 0);
	return p;
}

static int
send_seg(struct sim *s, struct conn *k, int from_server, uint8_t flags, uint32_t len, uint64_t dt_us)
{
	struct pb_spec p = seg(k, from_server, flags, len);

	return tx(s, &p, dt_us);
}

/* A RST claiming to come from one side, built as that side's stack would build an active reset:
 * seq = SND.NXT, ack = RCV.NXT if flags has ACK, its TTL, DF, its next IP ID (not consumed),
 * window 0. Callers tweak it into an injection or a passive reset. */
static struct pb_spec
rst_like(const struct conn *k, int from_server, uint8_t flags)
{
	const struct side *a = from_server ? &k->s : &k->c, *b = from_server ? &k->c : &k->s;
	struct pb_spec p = PB_Default(k->family);

	p.src = a->addr;
	p.dst = b->addr;
	p.sport = a->port;
	p.dport = b->port;
	p.seq = a->nxt;
	p.ack = (flags & TCPF_ACK) ? b->nxt : 0;
	p.flags = flags;
	p.win = 0;
	p.ttl = a->ttl;
	p.ipid = next_ipid_peek(a);
	p.df = 1;
	return p;
}

/* A genuine active reset (abort, unread data, keepalive timeout): consumes the socket's IP ID. */
static int
send_active_rst(struct sim *s, struct conn *k, int from_server, uint64_t dt_us)
{
	struct pb_spec p = rst_like(k, from_server, TCPF_RST | TCPF_ACK);

	p.ipid = next_ipid(from_server ? &k->s : &k->c);
	return tx(s, &p, dt_us);
}

/* A genuine passive reset from a stack with no socket for the segment: seq = the segment's ack,
 * no ACK flag, IP ID 0, DF. */
static int
send_passive_rst(struct sim *s, struct conn *k, int from_server, uint64_t dt_us)
{
	struct pb_spec p = rst_like(k, from_server, TCPF_RST);

	p.ipid = 0;
	return tx(s, &p, dt_us);
}

static void
handshake(struct sim *s, struct conn *k)
{
	struct pb_spec p;

	p = seg(k, 0, TCPF_SYN, 0);
	p.mss = 1460;
	p.sackok = 1;
	p.wscale = 7;
	k->c_syn_ipid = p.ipid;
	tx(s, &p, 1 * MS);
	p = seg(k, 1, TCPF_SYN | TCPF_ACK, 0);
	p.mss = 1460;
	p.sackok = 1;
	p.wscale = 7;
	if (k->s.ipid_mode == IPID_COUNT) {
		/* A listener's SYN-ACK has no socket yet: IP ID 0 with DF. */
		k->s.ipid--;
		p.ipid = 0;
	}
	tx(s, &p, k->rtt_s_us);
	k->c.win = 502;                /* scaled by 2^7 from now on */
	k->s.win = 509;
	send_seg(s, k, 0, TCPF_ACK, 0, k->rtt_c_us);
}

/* A request and a 3896-byte response; the client's ACK is the last packet. Afterwards the server
 * has shown 4 packets counting up from its socket's IP ID (habit established). */
static void
exchange(struct sim *s, struct conn *k)
{
	send_seg(s, k, 0, TCPF_PSH | TCPF_ACK, 200, 100);
	send_seg(s, k, 1, TCPF_ACK, 0, k->rtt_s_us);
	send_seg(s, k, 1, TCPF_ACK, 1448, 1 * MS);
	send_seg(s, k, 1, TCPF_ACK, 1448, 100);
	send_seg(s, k, 0, TCPF_ACK, 0, k->rtt_c_us);
	send_seg(s, k, 1, TCPF_PSH | TCPF_ACK, 1000, 100);
	send_seg(s, k, 0, TCPF_ACK, 0, k->rtt_c_us);
}

static void
baseline(struct sim *s, struct conn *k)
{
	handshake(s, k);
	exchange(s, k);
}

#define SETTLE (300 * MS)   /* longer than hold_max_ms */

/* ---- forged: TTL ---- */

static void
test_ttl_injector(int enforce)
{
	struct sim s;
	struct conn k = conn_new(AF_INET, 40000);
	struct pb_spec p;
	int h, g;

	sim_start(&s, "ttl injector", enforce, 1);
	baseline(&s, &k);
	p = rst_like(&k, 1, TCPF_RST | TCPF_ACK);
	p.ttl = 40;
	h = tx(&s, &p, 20 * MS);
	expect_first(&s, h, "RST/ACK TTL 40 (server 63), exact seq", enforce ? RG_DROP : RG_ACCEPT);
	/* Conclusive at once: the event is there without any waiting. */
	expect_rst(&s, h, "TTL 40 vs 63", "injected", 1, "ttl");
	expect_field(&s, h, "TTL 40 vs 63", "apparent_cause", "abort");
	expect_field(&s, h, "TTL 40 vs 63", "ttl_baseline", "63");
	expect_field(&s, h, "TTL 40 vs 63", "would_drop", "true");
	expect_field(&s, h, "TTL 40 vs 63", "verdict", enforce ? "drop" : "accept");
	expect_field(&s, h, "TTL 40 vs 63", "seq_check", "exact");
	expect_field(&s, h, "TTL 40 vs 63", "held", "false");
	expect_anomaly(&s, h, "TTL 40 vs 63", 1);
	TAP_EQ_U(ENG_HeldCount(s.e), 0, "ttl injector: nothing held");
	if (enforce) {
		/* Dropped: the connection lives on; the server's own RST later is genuine. */
		send_seg(&s, &k, 1, TCPF_PSH | TCPF_ACK, 500, 5 * MS);
		send_seg(&s, &k, 0, TCPF_ACK, 0, k.rtt_c_us);
		g = send_active_rst(&s, &k, 1, 30 * MS);
		settle(&s, SETTLE);
		expect_rst(&s, g, "server's genuine abort after a dropped injection", "abort", 0, NULL);
		expect_field(&s, g, "genuine abort after a dropped injection", "state", "established");
		expect_verdict(&s, g, "genuine abort after a dropped injection", RG_ACCEPT);
		/* The TTL difference is the injected RST's, not this one's (its TTL is the baseline). */
		expect_ev(&s, g, "genuine abort after a dropped injection", "ttl_burst", 0);
	}
	sim_end(&s);
}

static void
test_ttl_tolerance(void)
{
	struct sim s;
	struct conn a = conn_new(AF_INET, 40001), b = conn_new(AF_INET, 40002), c = conn_new(AF_INET, 40003);
	struct pb_spec p;
	int h;

	sim_start(&s, "ttl tolerance", DETECT, 1);

	baseline(&s, &a);
	p = rst_like(&a, 1, TCPF_RST | TCPF_ACK);
	p.ttl = 62;
	a.s.ipid++;
	h = tx(&s, &p, 20 * MS);
	expect_no_event_yet(&s, h, "TTL 62 vs 63");
	TAP_EQ_U(ENG_NextDueMs(s.e), 40, "ttl tolerance: judgement waits 4 x the 10 ms RTT to the server");
	settle(&s, 39 * MS);
	expect_no_event_yet(&s, h, "TTL 62 vs 63, 1 ms before the deadline");
	settle(&s, 2 * MS);
	expect_rst(&s, h, "TTL 62 vs 63", "abort", 0, "");
	expect_anomaly(&s, h, "TTL 62 vs 63", 0);

	baseline(&s, &b);
	p = rst_like(&b, 1, TCPF_RST | TCPF_ACK);
	p.ttl = 64;
	b.s.ipid++;
	h = tx(&s, &p, 20 * MS);
	settle(&s, SETTLE);
	expect_rst(&s, h, "TTL 64 vs 63", "abort", 0, "");

	/* A route change: every later packet of the server arrives with TTL 60; so does its RST. */
	baseline(&s, &c);
	c.s.ttl = 60;
	send_seg(&s, &c, 1, TCPF_ACK, 1448, 5 * MS);
	send_seg(&s, &c, 1, TCPF_PSH | TCPF_ACK, 700, 100);
	send_seg(&s, &c, 0, TCPF_ACK, 0, c.rtt_c_us);
	h = send_active_rst(&s, &c, 1, 20 * MS);
	settle(&s, SETTLE);
	expect_rst(&s, h, "TTL 60 after a route change (baseline 63, latest 60)", "abort", 0, "");
	sim_end(&s);
}

/* ---- forged: IP ID ---- */

static void
test_ipid(int enforce)
{
	struct sim s;
	struct conn a = conn_new(AF_INET, 40100), b = conn_new(AF_INET, 40101), c = conn_new(AF_INET, 40102);
	struct conn d = conn_new(AF_INET, 40103), e = conn_new(AF_INET, 40104);
	struct pb_spec p;
	int h;

	sim_start(&s, "ipid", enforce, 1);

	/* TRAP: far from the server's counter. Stacks draw a RST sent without the socket from
	 * another counter (Linux before 2018 and Windows: per-destination or host-wide; the real
	 * capture tls13draft16-ff52 shows it), so this is no evidence at all. */
	baseline(&s, &a);
	p = rst_like(&a, 1, TCPF_RST | TCPF_ACK);
	p.ipid = (uint16_t)(p.ipid + 30000);
	h = tx(&s, &p, 20 * MS);
	expect_first(&s, h, "IP ID counter+30000", RG_ACCEPT);
	settle(&s, SETTLE);
	expect_rst(&s, h, "IP ID counter+30000 (another counter of the stack)", "abort", 0, "");
	expect_anomaly(&s, h, "IP ID counter+30000", 0);

	/* TRAP: the server's socket is gone; the kernel answers the client's data with IP ID 0, DF. */
	baseline(&s, &b);
	send_seg(&s, &b, 0, TCPF_PSH | TCPF_ACK, 300, 20 * MS);
	h = send_passive_rst(&s, &b, 1, b.rtt_s_us);
	settle(&s, SETTLE);
	expect_rst(&s, h, "kernel RST IP ID 0 + DF", "closed_socket", 0, "");
	expect_verdict(&s, h, "kernel RST IP ID 0 + DF", RG_ACCEPT);
	expect_anomaly(&s, h, "kernel RST IP ID 0 + DF", 0);

	/* Genuine active RST: the socket's next IP ID. */
	baseline(&s, &c);
	h = send_active_rst(&s, &c, 1, 20 * MS);
	settle(&s, SETTLE);
	expect_rst(&s, h, "active RST IP ID last+1", "abort", 0, "");
	expect_verdict(&s, h, "active RST IP ID last+1", RG_ACCEPT);

	/* GFW type I (S&P 2025): bare RST, IP ID 0 with DF clear, far TTL. */
	baseline(&s, &d);
	p = rst_like(&d, 1, TCPF_RST);
	p.ipid = 0;
	p.df = 0;
	p.ttl = 100;
	h = tx(&s, &p, 20 * MS);
	expect_rst(&s, h, "GFW type I signature (IP ID 0, no DF, TTL 100)", "injected", 1, "ttl,df");
	expect_verdict(&s, h, "GFW type I signature", enforce ? RG_DROP : RG_ACCEPT);

	/* GFW type III: RST/ACK, IP ID 0x9916-0x9933, TTL 248, no DF. */
	baseline(&s, &e);
	p = rst_like(&e, 1, TCPF_RST | TCPF_ACK);
	p.ipid = 0x9920;
	p.df = 0;
	p.ttl = 248;
	h = tx(&s, &p, 20 * MS);
	expect_rst(&s, h, "GFW type III signature", "injected", 1, "ttl,df");
	expect_verdict(&s, h, "GFW type III signature", enforce ? RG_DROP : RG_ACCEPT);
	sim_end(&s);
}

/* Senders with other IP ID habits, and the hysteresis of the habit. */
static void
test_ipid_habits(void)
{
	struct sim s;
	struct conn a = conn_new(AF_INET, 40110), b = conn_new(AF_INET, 40111), c = conn_new(AF_INET, 40112);
	struct conn d = conn_new(AF_INET, 40113);
	struct pb_spec p, pa, pb2;
	int h;

	sim_start(&s, "ipid habits", DETECT, 1);

	/* A random-ID server: another random IP ID on its RST is normal. */
	a.s.ipid_mode = IPID_RAND;
	baseline(&s, &a);
	send_seg(&s, &a, 1, TCPF_ACK, 1448, 5 * MS);
	send_seg(&s, &a, 0, TCPF_ACK, 0, a.rtt_c_us);
	p = rst_like(&a, 1, TCPF_RST | TCPF_ACK);
	p.ipid = next_ipid(&a.s);
	h = tx(&s, &p, 20 * MS);
	settle(&s, SETTLE);
	expect_rst(&s, h, "random-ID server, random IP ID on its RST", "abort", 0, "");

	/* The same server, but the RST's IP ID is copied from the client's last packet. */
	b.s.ipid_mode = IPID_RAND;
	baseline(&s, &b);
	send_seg(&s, &b, 1, TCPF_ACK, 1448, 5 * MS);
	send_seg(&s, &b, 0, TCPF_ACK, 0, b.rtt_c_us);
	p = rst_like(&b, 1, TCPF_RST | TCPF_ACK);
	p.ipid = (uint16_t)(b.c.ipid - 1);
	h = tx(&s, &p, 20 * MS);
	settle(&s, SETTLE);
	expect_ev(&s, h, "random-ID server, IP ID copied from the client", "ipid", 1);
	expect_rst(&s, h, "random-ID server, IP ID copied from the client (corroborating alone)", "abort", 0, "ipid");

	/* A server whose every IP ID is 0 (DF): a non-zero IP ID breaks the habit... */
	c.s.ipid_mode = IPID_ZEROS;
	baseline(&s, &c);
	p = rst_like(&c, 1, TCPF_RST | TCPF_ACK);
	p.ipid = 0x1234;
	h = tx(&s, &p, 20 * MS);
	settle(&s, SETTLE);
	expect_rst(&s, h, "zero-ID server, IP ID 0x1234 (corroborating alone)", "abort", 0, "ipid");
	/* ...and the genuine one carries 0 (a fresh flow of the same kind). */
	{
		struct conn c2 = conn_new(AF_INET, 40114);

		c2.s.ipid_mode = IPID_ZEROS;
		baseline(&s, &c2);
		h = send_active_rst(&s, &c2, 1, 20 * MS);
		settle(&s, SETTLE);
		expect_rst(&s, h, "zero-ID server, IP ID 0", "abort", 0, "");
	}

	/* Hysteresis: two server segments swapped on the way do not flip the counting habit. */
	baseline(&s, &d);
	pa = seg(&d, 1, TCPF_ACK, 1448);
	pb2 = seg(&d, 1, TCPF_ACK, 1448);
	tx(&s, &pb2, 5 * MS);
	tx(&s, &pa, 100);
	send_seg(&s, &d, 1, TCPF_PSH | TCPF_ACK, 300, 100);
	send_seg(&s, &d, 0, TCPF_ACK, 0, d.rtt_c_us);
	p = rst_like(&d, 1, TCPF_RST | TCPF_ACK);
	p.ipid = (uint16_t)(p.ipid + 30000);
	h = tx(&s, &p, 20 * MS);
	settle(&s, SETTLE);
	expect_rst(&s, h, "IP ID counter+30000 after one reordered pair", "abort", 0, "");
	sim_end(&s);
}

/* ---- weak signals alone ---- */

static void
test_df(void)
{
	struct sim s;
	struct conn k = conn_new(AF_INET, 40200);
	struct pb_spec p;
	int h;

	sim_start(&s, "df", DETECT, 1);
	baseline(&s, &k);
	p = rst_like(&k, 1, TCPF_RST | TCPF_ACK);
	p.df = 0;
	k.s.ipid++;
	h = tx(&s, &p, 20 * MS);
	settle(&s, SETTLE);
	expect_rst(&s, h, "DF clear from a DF sender (weak alone)", "abort", 0, "df");
	expect_field(&s, h, "DF clear from a DF sender", "score", "30");
	expect_anomaly(&s, h, "DF clear from a DF sender", 0);
	sim_end(&s);
}

/* One RST beyond anything the server sent, inside the client's window: a challenge ACK, no
 * reset; seq_ahead alone is not enough. */
static void
test_seq_ahead(void)
{
	struct sim s;
	struct conn k = conn_new(AF_INET, 40250);
	struct pb_spec p;
	int h;

	sim_start(&s, "seq_ahead", DETECT, 1);
	baseline(&s, &k);
	p = rst_like(&k, 1, TCPF_RST | TCPF_ACK);
	p.seq += 3000;
	k.s.ipid++;
	h = tx(&s, &p, 20 * MS);
	settle(&s, SETTLE);
	expect_rst(&s, h, "RST 3000 bytes beyond SND.NXT, in window (weak alone)", "abort", 0, "seq_ahead");
	expect_field(&s, h, "RST beyond SND.NXT", "seq_check", "in_window");
	expect_field(&s, h, "RST beyond SND.NXT", "challenge_ack", "true");
	sim_end(&s);
}

static void
test_payload_window(int enforce)
{
	struct sim s;
	struct conn a = conn_new(AF_INET, 40300), b = conn_new(AF_INET, 40301), c = conn_new(AF_INET, 40302);
	static const uint8_t henan[10] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 0 };
	struct pb_spec p;
	int h;

	sim_start(&s, "payload/window", enforce, 1);

	baseline(&s, &a);
	p = rst_like(&a, 1, TCPF_RST | TCPF_ACK);
	p.payload_len = 10;
	a.s.ipid++;
	h = tx(&s, &p, 20 * MS);
	settle(&s, SETTLE);
	expect_rst(&s, h, "10 bytes on the RST (weak alone)", "abort", 0, "payload");
	expect_field(&s, h, "10 bytes on the RST", "payload_len", "10");
	expect_verdict(&s, h, "10 bytes on the RST", RG_ACCEPT);

	baseline(&s, &b);
	p = rst_like(&b, 1, TCPF_RST | TCPF_ACK);
	p.win = b.c.win;    /* the client's 502, not the server's 509 */
	b.s.ipid++;
	h = tx(&s, &p, 20 * MS);
	settle(&s, SETTLE);
	expect_rst(&s, h, "window copied from the client (weak alone)", "abort", 0, "window_copy");
	expect_verdict(&s, h, "window copied from the client", RG_ACCEPT);

	/* The Henan firewall: RST/ACK toward the client 2.6 ms after its request, TTL 58, IP ID 1,
	 * no DF, 01 02 .. 09 00. */
	baseline(&s, &c);
	send_seg(&s, &c, 0, TCPF_PSH | TCPF_ACK, 300, 20 * MS);
	p = rst_like(&c, 1, TCPF_RST | TCPF_ACK);
	p.ttl = 58;
	p.ipid = 1;
	p.df = 0;
	p.payload = henan;
	p.payload_len = sizeof(henan);
	h = tx(&s, &p, 2600);
	expect_rst(&s, h, "Henan firewall signature", "injected", 1, NULL);
	expect_ev(&s, h, "Henan firewall signature", "ttl", 1);
	expect_ev(&s, h, "Henan firewall signature", "df", 1);
	expect_ev(&s, h, "Henan firewall signature", "payload", 1);
	expect_verdict(&s, h, "Henan firewall signature", enforce ? RG_DROP : RG_ACCEPT);
	sim_end(&s);
}

static void
test_ack_invalid(int enforce)
{
	struct sim s;
	struct conn a = conn_new(AF_INET, 40400), b = conn_new(AF_INET, 40401), c = conn_new(AF_INET, 40402);
	struct pb_spec p;
	int h;

	sim_start(&s, "ack_invalid", enforce, 1);

	baseline(&s, &a);
	p = rst_like(&a, 1, TCPF_RST | TCPF_ACK);
	p.ack = a.c.nxt + 1000;    /* data the client never sent */
	a.s.ipid++;
	h = tx(&s, &p, 20 * MS);
	settle(&s, SETTLE);
	expect_rst(&s, h, "ack beyond the client's data", NULL, 0, "ack_invalid");
	expect_verdict(&s, h, "ack beyond the client's data", RG_ACCEPT);

	baseline(&s, &b);
	p = rst_like(&b, 1, TCPF_RST | TCPF_ACK);
	p.ack = b.c.isn;           /* the SYN's seq instead of seq + 1 */
	b.s.ipid++;
	h = tx(&s, &p, 20 * MS);
	settle(&s, SETTLE);
	expect_rst(&s, h, "ack == the client's ISN", NULL, 0, "ack_invalid");
	expect_verdict(&s, h, "ack == the client's ISN", RG_ACCEPT);

	/* Zeek's rst-inject-rae trace: TTL 3 below the server's, IP ID and window from the client's
	 * SYN, ack = the SYN's seq. */
	baseline(&s, &c);
	p = rst_like(&c, 1, TCPF_RST | TCPF_ACK);
	p.ttl = 60;
	p.ipid = c.c_syn_ipid;
	p.win = 64240;
	p.ack = c.c.isn;
	h = tx(&s, &p, 20 * MS);
	expect_rst(&s, h, "Zeek rst-inject-rae pattern", "injected", 1, NULL);
	expect_ev(&s, h, "Zeek rst-inject-rae pattern", "ttl", 1);
	expect_ev(&s, h, "Zeek rst-inject-rae pattern", "ack_invalid", 1);
	expect_verdict(&s, h, "Zeek rst-inject-rae pattern", enforce ? RG_DROP : RG_ACCEPT);
	sim_end(&s);
}

/* ---- bursts ---- */

/* GFW 2006 (Clayton et al.): three RST/ACKs at seq, +1460, +4380, TTL and IP ID mimicked. */
static void
test_gfw2006(int enforce, unsigned ht)
{
	struct sim s;
	struct conn k = conn_new(AF_INET, 40500);
	struct pb_spec p;
	uint32_t base;
	uint16_t id;
	int r1, r2, r3;

	sim_start(&s, "gfw2006 burst", enforce, ht);
	baseline(&s, &k);
	base = k.s.nxt;
	id = k.s.ipid;
	p = rst_like(&k, 1, TCPF_RST | TCPF_ACK);
	r1 = tx(&s, &p, 20 * MS);
	p.seq = base + 1460;
	p.ipid = (uint16_t)(id + 1);
	r2 = tx(&s, &p, 100);
	p.seq = base + 4380;
	p.ipid = (uint16_t)(id + 2);
	r3 = tx(&s, &p, 100);

	expect_rst(&s, r2, "burst RST 2 (seq +1460)", "injected", 1, NULL);
	expect_ev(&s, r2, "burst RST 2", "seq_ahead", 1);
	expect_ev(&s, r2, "burst RST 2", "seq_burst", 1);
	expect_rst(&s, r3, "burst RST 3 (seq +4380)", "injected", 1, NULL);
	expect_ev(&s, r3, "burst RST 3", "seq_ahead", 1);
	expect_ev(&s, r3, "burst RST 3", "seq_burst", 1);
	if (enforce) {
		expect_first(&s, r2, "burst RST 2", RG_DROP);
		expect_first(&s, r3, "burst RST 3", RG_DROP);
		if (ht == 0)
			expect_first(&s, r1, "burst RST 1 (exact seq, mimicked)", RG_HOLD);
	}
	settle(&s, SETTLE);
	/* The first RST of the burst belongs to it: judged with it. */
	expect_rst(&s, r1, "burst RST 1 (exact seq) judged with its burst", "injected", 1, NULL);
	expect_ev(&s, r1, "burst RST 1", "seq_burst", 1);
	if (enforce && ht == 0)
		expect_verdict(&s, r1, "burst RST 1 (held), after the burst", RG_DROP);
	sim_end(&s);
}

/* GFW type II (S&P 2025): three identical RST/ACKs. */
static void
test_identical(void)
{
	struct sim s;
	struct conn k = conn_new(AF_INET, 40600);
	struct pb_spec p;
	int r1, r2, r3;

	sim_start(&s, "identical copies", DETECT, 1);
	baseline(&s, &k);
	p = rst_like(&k, 1, TCPF_RST | TCPF_ACK);
	r1 = tx(&s, &p, 20 * MS);
	r2 = tx(&s, &p, 6 * MS);
	r3 = tx(&s, &p, 6 * MS);
	expect_ev(&s, r2, "second copy", "identical_copies", 0);
	expect_rst(&s, r3, "third identical copy (weak alone)", NULL, 0, "identical_copies");
	settle(&s, SETTLE);
	expect_rst(&s, r1, "first copy", "abort", 0, NULL);
	expect_rst(&s, r2, "second copy", NULL, 0, NULL);
	tap_ok(count_events(&s, "anomaly") == 0, "%s: no anomaly for mimicking identical copies", s.name);
	sim_end(&s);
}

/* GFW type II with its own TTL: every copy is forged, not only the first. */
static void
test_identical_ttl(int enforce)
{
	struct sim s;
	struct conn k = conn_new(AF_INET, 40601);
	struct pb_spec p;
	int r[3];

	sim_start(&s, "gfw II copies, TTL 45", enforce, 1);
	baseline(&s, &k);
	p = rst_like(&k, 1, TCPF_RST | TCPF_ACK);
	p.ttl = 45;         /* only the TTL gives them away: IP ID, DF and seq are mimicked */
	for (int i = 0; i < 3; i++)
		r[i] = tx(&s, &p, i == 0 ? 20 * MS : 100);
	for (int i = 0; i < 3; i++) {
		char what[48];

		snprintf(what, sizeof(what), "copy %d of 3 (TTL 45 vs 63)", i + 1);
		expect_rst(&s, r[i], what, "injected", 1, NULL);
		expect_ev(&s, r[i], what, "ttl", 1);
		expect_verdict(&s, r[i], what, enforce ? RG_DROP : RG_ACCEPT);
	}
	sim_end(&s);
}

/* INTANG: RSTs from one claimed sender with different TTLs within 2 s. */
static void
test_ttl_burst(void)
{
	struct sim s;
	struct conn a = conn_new(AF_INET, 40602), b = conn_new(AF_INET, 40603), c = conn_new(AF_INET, 40604);
	struct pb_spec p;
	int r1, r2;

	sim_start(&s, "ttl burst", DETECT, 1);

	/* An injector varying its TTL: both far from the server's 63, 5 apart. */
	baseline(&s, &a);
	p = rst_like(&a, 1, TCPF_RST | TCPF_ACK);
	p.ttl = 50;
	r1 = tx(&s, &p, 20 * MS);
	p.ttl = 45;
	r2 = tx(&s, &p, 6 * MS);
	expect_rst(&s, r1, "TTL 50", "injected", 1, "ttl");
	expect_rst(&s, r2, "TTL 45 after TTL 50", "injected", 1, "ttl,ttl_burst");

	/* After a route change (first packets 63, latest 59) the sender's TTL is ambiguous: RSTs
	 * at 63 then 59 disagree with each other; weak alone. */
	baseline(&s, &b);
	b.s.ttl = 59;
	send_seg(&s, &b, 1, TCPF_ACK, 1448, 5 * MS);
	send_seg(&s, &b, 0, TCPF_ACK, 0, b.rtt_c_us);
	p = rst_like(&b, 1, TCPF_RST | TCPF_ACK);
	p.ttl = 63;
	r1 = tx(&s, &p, 20 * MS);
	p.ttl = 59;
	r2 = tx(&s, &p, 6 * MS);
	expect_rst(&s, r2, "TTL 63 then 59 after a route change 63 -> 59 (the sender's latest TTL)", NULL, 0, "");
	settle(&s, SETTLE);
	expect_rst(&s, r1, "TTL 63 after a route change 63 -> 59", NULL, 0, NULL);

	/* TRAP: RSTs that each carry the sender's own TTL (61 and 65 against 63, within the
	 * tolerance) are not evidence against each other. */
	baseline(&s, &c);
	p = rst_like(&c, 1, TCPF_RST | TCPF_ACK);
	p.ttl = 61;
	r1 = tx(&s, &p, 20 * MS);
	p.ttl = 65;
	r2 = tx(&s, &p, 6 * MS);
	settle(&s, SETTLE);
	expect_rst(&s, r1, "TTL 61 (baseline 63)", NULL, 0, "");
	expect_rst(&s, r2, "TTL 65 after 61 (baseline 63)", NULL, 0, "");
	sim_end(&s);
}

/* ---- race ---- */

static void
test_race(int enforce, unsigned ht)
{
	struct sim s;
	struct conn a = conn_new(AF_INET, 40700), b = conn_new(AF_INET, 40701);
	struct pb_spec p;
	int h;

	sim_start(&s, "race", enforce, ht);

	/* A perfect mimic (TTL 63, IP ID last+1, DF, exact seq), then the server's own new data. */
	baseline(&s, &a);
	p = rst_like(&a, 1, TCPF_RST | TCPF_ACK);
	h = tx(&s, &p, 20 * MS);
	if (enforce && ht == 0)
		expect_first(&s, h, "mimicking RST", RG_HOLD);
	else
		expect_first(&s, h, "mimicking RST (score 0, not held)", RG_ACCEPT);
	expect_no_event_yet(&s, h, "mimicking RST");
	send_seg(&s, &a, 1, TCPF_ACK, 1448, 5 * MS);
	/* Contradicted: judged at once, no need to wait for the deadline. */
	expect_rst(&s, h, "mimicking RST, then server data at seq >= RST.seq", "injected", 1, "race");
	expect_anomaly(&s, h, "race", 1);
	if (enforce && ht == 0) {
		expect_verdict(&s, h, "held mimicking RST contradicted by its sender", RG_DROP);
		expect_field(&s, h, "held mimicking RST", "verdict", "drop");
	} else {
		/* It passed when it came: the event must not claim a drop that never happened. */
		expect_field(&s, h, "mimicking RST that already passed", "verdict", "accept");
		expect_field(&s, h, "mimicking RST that already passed", "would_drop", "true");
	}

	/* The server acknowledges client data sent after its "RST": its stack is alive. */
	baseline(&s, &b);
	p = rst_like(&b, 1, TCPF_RST | TCPF_ACK);
	h = tx(&s, &p, 20 * MS);
	send_seg(&s, &b, 0, TCPF_PSH | TCPF_ACK, 300, 2 * MS);
	send_seg(&s, &b, 1, TCPF_ACK, 0, b.rtt_s_us);
	expect_rst(&s, h, "mimicking RST, then the server ACKs new client data", "injected", 1, "race");
	if (enforce && ht == 0)
		expect_verdict(&s, h, "held RST, server ACKs later", RG_DROP);
	/* The server's FIN after its "RST", at seq >= RST.seq: sent after it, so the stack lives. */
	{
		struct conn c = conn_new(AF_INET, 40702);

		baseline(&s, &c);
		p = rst_like(&c, 1, TCPF_RST | TCPF_ACK);
		h = tx(&s, &p, 20 * MS);
		send_seg(&s, &c, 1, TCPF_FIN | TCPF_ACK, 0, 5 * MS);
		settle(&s, SETTLE);
		expect_rst(&s, h, "mimicking RST, then the server's FIN at seq >= RST.seq", "injected", 1, "race");
		if (enforce && ht == 0)
			expect_verdict(&s, h, "held RST, then the server's FIN", RG_DROP);
	}
	settle(&s, SETTLE);
	if (enforce) {
		struct engine_stats st;

		ENG_GetStats(s.e, &st);
		TAP_EQ_U(st.rst_dropped, ht == 0 ? 3 : 0, "race: rst_dropped counts only packets really dropped");
		TAP_EQ_U(st.rst_race, 3, "race: rst_race");
	}
	sim_end(&s);
}

static void
test_race_traps(int enforce, unsigned ht)
{
	struct sim s;
	struct conn a = conn_new(AF_INET, 40710), b = conn_new(AF_INET, 40711), c = conn_new(AF_INET, 40712);
	struct conn d = conn_new(AF_INET, 40713);
	struct pb_spec p, sa, sb;
	int h, h2;

	sim_start(&s, "race traps", enforce, ht);

	/* Data from the OTHER side (the client's, in flight) after a server RST is no race. */
	baseline(&s, &a);
	h = send_active_rst(&s, &a, 1, 20 * MS);
	send_seg(&s, &a, 0, TCPF_PSH | TCPF_ACK, 300, 3 * MS);
	settle(&s, SETTLE);
	expect_rst(&s, h, "server RST, then client data", "abort", 0, "");
	expect_verdict(&s, h, "server RST, then client data", RG_ACCEPT);

	/* A reordered older server segment (seq < RST.seq) arriving after the RST is no race. */
	baseline(&s, &b);
	sa = seg(&b, 1, TCPF_ACK, 1448);
	sb = seg(&b, 1, TCPF_PSH | TCPF_ACK, 1000);
	tx(&s, &sb, 5 * MS);
	h = send_active_rst(&s, &b, 1, 1 * MS);
	tx(&s, &sa, 2 * MS);
	settle(&s, SETTLE);
	expect_rst(&s, h, "server RST, then its older reordered segment", "abort", 0, "");
	expect_verdict(&s, h, "server RST, then its older reordered segment", RG_ACCEPT);

	/* A genuine RST with nothing after it is released after the wait, not before. */
	baseline(&s, &c);
	h = send_active_rst(&s, &c, 1, 20 * MS);
	if (enforce && ht == 0) {
		expect_first(&s, h, "genuine abort", RG_HOLD);
		TAP_EQ_U(ENG_HeldCount(s.e), 1, "race traps: one packet held");
	}
	settle(&s, 39 * MS);
	expect_no_event_yet(&s, h, "genuine abort, 1 ms before its deadline");
	if (enforce && ht == 0)
		expect_verdict(&s, h, "genuine abort, before the deadline", RG_HOLD);
	settle(&s, 2 * MS);
	expect_rst(&s, h, "genuine abort, after the wait", "abort", 0, "");
	expect_verdict(&s, h, "genuine abort, after the wait", RG_ACCEPT);
	TAP_EQ_U(ENG_HeldCount(s.e), 0, "race traps: released");

	/* A genuine abort; the client's data in flight then draws a passive RST from the server. */
	baseline(&s, &d);
	h = send_active_rst(&s, &d, 1, 20 * MS);
	send_seg(&s, &d, 0, TCPF_PSH | TCPF_ACK, 300, 2 * MS);
	h2 = send_passive_rst(&s, &d, 1, d.rtt_s_us);
	settle(&s, SETTLE);
	expect_rst(&s, h, "abort followed by a passive RST", "abort", 0, "");
	expect_rst(&s, h2, "passive RST answering data in flight after an abort", "closed_socket", 0, "");
	expect_verdict(&s, h, "abort followed by a passive RST", RG_ACCEPT);
	expect_verdict(&s, h2, "passive RST after an abort", RG_ACCEPT);
	tap_ok(count_events(&s, "anomaly") == 0, "%s: no anomaly", s.name);

	/* A packet that cannot be held (ENG_NO_ID) passes, and its judgement still waits. */
	{
		struct conn e = conn_new(AF_INET, 40714);

		baseline(&s, &e);
		p = rst_like(&e, 1, TCPF_RST | TCPF_ACK);
		e.s.ipid++;
		h = tx_id(&s, &p, 20 * MS, ENG_NO_ID);
		expect_first(&s, h, "RST without a packet id", RG_ACCEPT);
		settle(&s, SETTLE);
		expect_rst(&s, h, "RST without a packet id", "abort", 0, "");
	}
	sim_end(&s);
}

/* ---- too fast ---- */

static void
test_too_fast(void)
{
	struct sim s;
	struct conn a = conn_new(AF_INET, 40800), b = conn_new(AF_INET, 40801), c = conn_new(AF_INET, 40802);
	struct pb_spec p;
	int h;

	sim_start(&s, "too fast", DETECT, 1);

	/* 40 ms to the server; its "answer" comes 1 ms after the client's data. */
	a.rtt_s_us = 40 * MS;
	baseline(&s, &a);
	send_seg(&s, &a, 0, TCPF_PSH | TCPF_ACK, 300, 50 * MS);
	p = rst_like(&a, 1, TCPF_RST | TCPF_ACK);
	h = tx(&s, &p, 1 * MS);
	settle(&s, SETTLE);
	expect_rst(&s, h, "server RST 1 ms after client data, RTT 40 ms (weak alone)", "unread_data", 0, "too_fast");

	/* Same path, 30 ms: possible (more than half the RTT). */
	b.rtt_s_us = 40 * MS;
	baseline(&s, &b);
	send_seg(&s, &b, 0, TCPF_PSH | TCPF_ACK, 300, 50 * MS);
	h = send_active_rst(&s, &b, 1, 30 * MS);
	settle(&s, SETTLE);
	expect_rst(&s, h, "server RST 30 ms after client data, RTT 40 ms", "unread_data", 0, "");

	/* A namespace-like path (RTT 0.05 ms, below min_rtt_ms): the signal never fires. */
	c.rtt_s_us = 50;
	c.rtt_c_us = 20;
	baseline(&s, &c);
	send_seg(&s, &c, 0, TCPF_PSH | TCPF_ACK, 300, 50 * MS);
	h = send_active_rst(&s, &c, 1, 1);
	settle(&s, SETTLE);
	expect_rst(&s, h, "RST 1 us after data, RTT 0.05 ms", "unread_data", 0, "");
	sim_end(&s);
}

/* ---- traps ---- */

/* The server's socket is gone; the client has three segments in flight; the server's stack
 * answers each with a passive RST (seq = the segment's ack, no ACK flag, IP ID 0, DF). */
static void
test_inflight(int enforce, unsigned ht)
{
	struct sim s;
	struct conn k = conn_new(AF_INET, 40900);
	int r[3];

	sim_start(&s, "in-flight RSTs", enforce, ht);
	baseline(&s, &k);
	send_seg(&s, &k, 0, TCPF_ACK, 1448, 30 * MS);
	send_seg(&s, &k, 0, TCPF_ACK, 1448, 100);
	send_seg(&s, &k, 0, TCPF_PSH | TCPF_ACK, 1448, 100);
	r[0] = send_passive_rst(&s, &k, 1, k.rtt_s_us - 200);
	r[1] = send_passive_rst(&s, &k, 1, 100);
	r[2] = send_passive_rst(&s, &k, 1, 100);
	settle(&s, SETTLE);
	for (int i = 0; i < 3; i++) {
		char what[64];

		snprintf(what, sizeof(what), "passive RST %d of 3 answering in-flight data", i + 1);
		expect_rst(&s, r[i], what, "closed_socket", 0, NULL);
		expect_verdict(&s, r[i], what, RG_ACCEPT);
		/* Each answers a client segment sent a full RTT before it; the previous packet of the
		 * flow is the server's own RST, not the client's data. */
		expect_ev(&s, r[i], what, "too_fast", 0);
	}
	tap_ok(count_events(&s, "anomaly") == 0, "%s: no anomaly", s.name);
	sim_end(&s);
}

/* After a forged RST toward the client (judged forged, but passed: detect mode), the client's
 * stack has no socket and answers the server's next data with a genuine RST. */
static void
test_genuine_after_forged(void)
{
	struct sim s;
	struct conn k = conn_new(AF_INET, 41000);
	struct pb_spec p;
	int f, g;

	sim_start(&s, "genuine after forged", DETECT, 1);
	baseline(&s, &k);
	p = rst_like(&k, 1, TCPF_RST | TCPF_ACK);
	p.ttl = 40;
	f = tx(&s, &p, 20 * MS);
	expect_rst(&s, f, "forged RST toward the client", "injected", 1, "ttl");
	send_seg(&s, &k, 1, TCPF_PSH | TCPF_ACK, 1448, 5 * MS);
	g = send_passive_rst(&s, &k, 0, k.rtt_c_us);
	settle(&s, SETTLE);
	expect_rst(&s, g, "client's genuine RST after the forged one", "closed_socket", 0, "");
	expect_anomaly(&s, g, "client's genuine RST after the forged one", 0);
	sim_end(&s);
}

/* The injector resets both ends. The gateway drops the copy toward its client; the server's
 * copy reaches it beyond the gateway, so the server's stack answers the client's three segments
 * in flight with genuine passive RSTs: those must never be dropped. */
static void
test_both_ends(unsigned ht)
{
	struct sim s;
	struct conn k = conn_new(AF_INET, 41010);
	struct pb_spec p;
	int f, r[3];

	sim_start(&s, "injection at both ends", ENFORCE, ht);
	baseline(&s, &k);
	send_seg(&s, &k, 0, TCPF_PSH | TCPF_ACK, 300, 30 * MS);
	p = rst_like(&k, 1, TCPF_RST | TCPF_ACK);
	p.ttl = 40;
	p.ipid = 0x1a2b;
	f = tx(&s, &p, 3 * MS);
	expect_first(&s, f, "injected RST toward the client", RG_DROP);
	send_seg(&s, &k, 0, TCPF_ACK, 1448, 5 * MS);
	send_seg(&s, &k, 0, TCPF_ACK, 1448, 100);
	send_seg(&s, &k, 0, TCPF_PSH | TCPF_ACK, 1448, 100);
	r[0] = send_passive_rst(&s, &k, 1, k.rtt_s_us - 200);
	r[1] = send_passive_rst(&s, &k, 1, 100);
	r[2] = send_passive_rst(&s, &k, 1, 100);
	settle(&s, SETTLE);
	for (int i = 0; i < 3; i++) {
		char what[64];

		snprintf(what, sizeof(what), "server's genuine RST %d of 3 after the injection", i + 1);
		expect_rst(&s, r[i], what, "closed_socket", 0, NULL);
		expect_verdict(&s, r[i], what, RG_ACCEPT);
	}
	sim_end(&s);
}

/* A flow picked up mid-stream: no baseline, so nothing to judge by. The RST's seq and ack lie
 * beyond what the gateway saw (it missed earlier packets), which is no evidence here. */
static void
test_midstream(int enforce)
{
	struct sim s;
	struct conn a = conn_new(AF_INET, 41100), b = conn_new(AF_INET, 41101);
	struct pb_spec p;
	int h;

	sim_start(&s, "mid-stream", enforce, 1);

	/* One server packet, then its RST. */
	a.s.ipid = 5000;
	send_seg(&s, &a, 1, TCPF_PSH | TCPF_ACK, 1448, 1 * MS);
	p = rst_like(&a, 1, TCPF_RST | TCPF_ACK);
	p.seq += 2896;
	p.ipid = (uint16_t)(p.ipid + 6);
	p.ack += 500;
	h = tx(&s, &p, 15 * MS);
	settle(&s, SETTLE);
	expect_rst(&s, h, "RST after 1 packet of a mid-stream flow", NULL, 0, "");
	expect_field(&s, h, "mid-stream", "midstream", "true");
	expect_anomaly(&s, h, "mid-stream", 0);
	expect_verdict(&s, h, "mid-stream", RG_ACCEPT);

	/* Client data, server ACK, then an odd RST/ACK. */
	b.s.ipid = 7000;
	send_seg(&s, &b, 0, TCPF_PSH | TCPF_ACK, 200, 1 * MS);
	send_seg(&s, &b, 1, TCPF_ACK, 0, b.rtt_s_us);
	p = rst_like(&b, 1, TCPF_RST | TCPF_ACK);
	p.seq += 4000;
	p.ack += 1000;
	p.ipid = 0;
	p.df = 0;
	p.win = b.c.win;
	h = tx(&s, &p, 1 * MS);
	settle(&s, SETTLE);
	expect_rst(&s, h, "RST after 2 packets of a mid-stream flow", NULL, 0, "");
	expect_anomaly(&s, h, "mid-stream, 2 packets", 0);
	expect_verdict(&s, h, "mid-stream, 2 packets", RG_ACCEPT);
	sim_end(&s);
}

/* ---- causes (genuine RSTs: never forged, never dropped) ---- */

struct mode {
	int enforce;
	unsigned ht;
};

static const struct mode modes[] = { { DETECT, 1 }, { ENFORCE, 1 }, { ENFORCE, 0 } };

/* In hold-all enforce mode an effective RST of an established (or closing) flow is held, then
 * released; RSTs of the handshake, out of window or of no flow are judged at once. */
static void
expect_held(const struct sim *s, const struct mode *m, int h, const char *what, int established)
{
	expect_first(s, h, what, m->enforce && m->ht == 0 && established ? RG_HOLD : RG_ACCEPT);
}

static void
cause_done(struct sim *s, int h, const char *what, const char *cause)
{
	settle(s, SETTLE);
	expect_rst(s, h, what, cause, 0, NULL);
	expect_verdict(s, h, what, RG_ACCEPT);
	expect_anomaly(s, h, what, 0);
	if (s->enforce)
		TAP_EQ_U(ENG_HeldCount(s->e), 0, "held count back to 0");
	sim_end(s);
}

static void
cause_refused(const struct mode *m, int family)
{
	struct sim s;
	struct conn k = conn_new(family, 42000);
	struct pb_spec p;
	int h;

	sim_start(&s, family == AF_INET6 ? "refused v6" : "refused", m->enforce, m->ht);
	p = seg(&k, 0, TCPF_SYN, 0);
	p.mss = 1460;
	tx(&s, &p, 1 * MS);
	/* No listener: RST/ACK, seq 0, ack ISN + 1, window 0, IP ID 0 with DF. */
	p = rst_like(&k, 1, TCPF_RST | TCPF_ACK);
	p.seq = 0;
	p.ipid = 0;
	h = tx(&s, &p, k.rtt_s_us);
	expect_field(&s, h, "refused", "seq_check", "exact");
	expect_held(&s, m, h, "refused", 0);
	cause_done(&s, h, "RST/ACK answering a SYN", "refused");
}

static void
cause_connect_abort(const struct mode *m)
{
	struct sim s;
	struct conn k = conn_new(AF_INET, 42001);
	struct pb_spec p;
	int h;

	sim_start(&s, "connect_abort", m->enforce, m->ht);
	p = seg(&k, 0, TCPF_SYN, 0);
	tx(&s, &p, 1 * MS);
	p.ipid = k.c.ipid++;
	tx(&s, &p, 1000 * MS);    /* SYN retransmitted after 1 s */
	send_seg(&s, &k, 1, TCPF_SYN | TCPF_ACK, 0, 900 * MS);  /* late SYN-ACK */
	/* The client gave up: no socket, so a passive RST: seq = the SYN-ACK's ack = ISN + 1. */
	h = send_passive_rst(&s, &k, 0, k.rtt_c_us);
	expect_held(&s, m, h, "connect_abort", 0);
	cause_done(&s, h, "client RST after a late SYN-ACK", "connect_abort");
}

static void
cause_abort(const struct mode *m, int family)
{
	struct sim s;
	struct conn k = conn_new(family, 42002);
	int h;

	sim_start(&s, family == AF_INET6 ? "abort v6" : "abort", m->enforce, m->ht);
	baseline(&s, &k);
	/* After its own reply, the server aborts (SO_LINGER 0): RST/ACK seq = SND.NXT. */
	h = send_active_rst(&s, &k, 1, 50 * MS);
	expect_held(&s, m, h, "abort", 1);
	cause_done(&s, h, "server RST/ACK after its reply", "abort");
}

static void
cause_unread_data(const struct mode *m)
{
	struct sim s;
	struct conn k = conn_new(AF_INET, 42003);
	int h;

	sim_start(&s, "unread_data", m->enforce, m->ht);
	baseline(&s, &k);
	/* The client sends 5000 bytes; the server ACKs them, then closes having read 4096. */
	send_seg(&s, &k, 0, TCPF_ACK, 1448, 40 * MS);
	send_seg(&s, &k, 0, TCPF_ACK, 1448, 100);
	send_seg(&s, &k, 0, TCPF_ACK, 1448, 100);
	send_seg(&s, &k, 0, TCPF_PSH | TCPF_ACK, 656, 100);
	send_seg(&s, &k, 1, TCPF_ACK, 0, k.rtt_s_us);
	h = send_active_rst(&s, &k, 1, 2 * MS);
	expect_held(&s, m, h, "unread_data", 1);
	cause_done(&s, h, "server RST/ACK acknowledging unread data", "unread_data");
}

static void
cause_closed_socket(const struct mode *m)
{
	struct sim s;
	struct conn k = conn_new(AF_INET, 42004);
	int h;

	sim_start(&s, "closed_socket", m->enforce, m->ht);
	baseline(&s, &k);
	send_seg(&s, &k, 1, TCPF_FIN | TCPF_ACK, 0, 5 * MS);
	send_seg(&s, &k, 0, TCPF_ACK, 0, k.rtt_c_us);
	send_seg(&s, &k, 0, TCPF_PSH | TCPF_ACK, 100, 2 * MS);
	h = send_passive_rst(&s, &k, 1, k.rtt_s_us);
	expect_held(&s, m, h, "closed_socket (fin_wait)", 1);
	cause_done(&s, h, "server RST (no ACK) answering data after its FIN", "closed_socket");
}

static void
cause_keepalive(const struct mode *m)
{
	struct sim s;
	struct conn k = conn_new(AF_INET, 42005);
	struct pb_spec p;
	int h;

	sim_start(&s, "keepalive_timeout", m->enforce, m->ht);
	baseline(&s, &k);
	/* TCP_KEEPIDLE 60, TCP_KEEPINTVL 10, TCP_KEEPCNT 3; the server has vanished. */
	for (int i = 0; i < 3; i++) {
		p = seg(&k, 0, TCPF_ACK, 0);
		p.seq = k.c.nxt - 1;
		tx(&s, &p, i == 0 ? 60000 * MS : 10000 * MS);
	}
	h = send_active_rst(&s, &k, 0, 10000 * MS);
	expect_held(&s, m, h, "keepalive_timeout", 1);
	cause_done(&s, h, "client RST/ACK after 3 unanswered keepalive probes", "keepalive_timeout");
}

static void
cause_time_wait(const struct mode *m)
{
	struct sim s;
	struct conn k = conn_new(AF_INET, 42006), n;
	struct pb_spec p;
	int h;

	sim_start(&s, "time_wait", m->enforce, m->ht);
	baseline(&s, &k);
	/* The server closes first and sits in TIME_WAIT. */
	send_seg(&s, &k, 1, TCPF_FIN | TCPF_ACK, 0, 5 * MS);
	send_seg(&s, &k, 0, TCPF_ACK, 0, k.rtt_c_us);
	send_seg(&s, &k, 0, TCPF_FIN | TCPF_ACK, 0, 1 * MS);
	send_seg(&s, &k, 1, TCPF_ACK, 0, k.rtt_s_us);
	/* 2 s later the client reuses its port with a lower ISN: the server's TIME_WAIT answers
	 * with a bare ACK of the old numbers (IP ID 0, no socket), the client resets it (passive:
	 * seq = that ack) and retries 1 s later. */
	n = k;
	n.c.isn = n.c.nxt = k.c.isn - 100000;
	n.c.ipid = 0x7777;
	p = seg(&n, 0, TCPF_SYN, 0);
	tx(&s, &p, 2000 * MS);
	p = rst_like(&k, 1, TCPF_ACK);
	p.ipid = 0;
	p.win = 509;
	tx(&s, &p, k.rtt_s_us);
	p = rst_like(&n, 0, TCPF_RST);
	p.seq = k.c.nxt;
	p.ipid = 0;
	h = tx(&s, &p, k.rtt_c_us);
	expect_held(&s, m, h, "time_wait", 0);
	expect_rst(&s, h, "client RST after a bare ACK to its SYN (judged at once)", "time_wait", 0, "");
	p = seg(&n, 0, TCPF_SYN, 0);
	p.seq = n.c.isn;
	tx(&s, &p, 1000 * MS);
	cause_done(&s, h, "client RST after a bare ACK to its SYN", "time_wait");
}

static void
cause_invalid_seq(const struct mode *m)
{
	struct sim s;
	struct conn k = conn_new(AF_INET, 42007);
	struct pb_spec p;
	int h, g;

	sim_start(&s, "invalid_seq", m->enforce, m->ht);
	baseline(&s, &k);
	/* A stale RST far below the window: ignored by the client. */
	p = rst_like(&k, 1, TCPF_RST | TCPF_ACK);
	p.seq -= 3000000;
	k.s.ipid++;
	h = tx(&s, &p, 20 * MS);
	expect_first(&s, h, "stale RST (judged at once, never held)", RG_ACCEPT);
	expect_rst(&s, h, "stale out-of-window RST", "invalid_seq", 0, "");
	expect_field(&s, h, "stale out-of-window RST", "seq_check", "out_of_window");
	expect_field(&s, h, "stale out-of-window RST", "effective", "false");
	/* The flow stays open: the server goes on, and its later abort is judged as established. */
	send_seg(&s, &k, 1, TCPF_PSH | TCPF_ACK, 700, 5 * MS);
	send_seg(&s, &k, 0, TCPF_ACK, 0, k.rtt_c_us);
	g = send_active_rst(&s, &k, 1, 20 * MS);
	expect_held(&s, m, g, "abort after the stale RST", 1);
	settle(&s, SETTLE);
	expect_field(&s, g, "abort after the stale RST", "state", "established");
	expect_verdict(&s, g, "abort after the stale RST", RG_ACCEPT);
	expect_rst(&s, g, "abort after the stale RST", "abort", 0, NULL);
	/* The server talked on after "its" RST: an ineffective injection, reported late. */
	expect_rst(&s, h, "stale out-of-window RST", "invalid_seq", 0, NULL);
	expect_revised(&s, h, "stale RST, then its sender's data", "race_late", 1);
	expect_anomaly(&s, h, "stale RST, revised", 1);
	if (s.enforce)
		TAP_EQ_U(ENG_HeldCount(s.e), 0, "held count back to 0");
	sim_end(&s);
}

static void
cause_no_flow(const struct mode *m)
{
	struct sim s;
	struct conn k = conn_new(AF_INET, 42008);
	struct pb_spec p;
	int h;

	sim_start(&s, "no_flow", m->enforce, m->ht);
	p = rst_like(&k, 1, TCPF_RST | TCPF_ACK);
	h = tx(&s, &p, 1 * MS);
	expect_first(&s, h, "RST of an unknown flow", RG_ACCEPT);
	expect_rst(&s, h, "RST of an unknown flow", "no_flow", 0, "");
	cause_done(&s, h, "RST of an unknown flow", "no_flow");
}

/* ---- IPv6 ---- */

static void
test_v6_hoplimit(int enforce)
{
	struct sim s;
	struct conn k = conn_new(AF_INET6, 43000);
	struct pb_spec p;
	int h, g;

	sim_start(&s, "v6 hop limit injector", enforce, 1);
	baseline(&s, &k);
	p = rst_like(&k, 1, TCPF_RST | TCPF_ACK);
	p.ttl = 40;
	h = tx(&s, &p, 20 * MS);
	expect_first(&s, h, "v6 RST/ACK hop limit 40 (server 63)", enforce ? RG_DROP : RG_ACCEPT);
	expect_rst(&s, h, "v6 hop limit 40 vs 63", "injected", 1, "ttl");
	expect_anomaly(&s, h, "v6 hop limit 40 vs 63", 1);
	if (enforce) {
		send_seg(&s, &k, 1, TCPF_PSH | TCPF_ACK, 500, 5 * MS);
		send_seg(&s, &k, 0, TCPF_ACK, 0, k.rtt_c_us);
		/* Within tolerance: genuine. Far enough from the injection not to share its burst. */
		g = send_active_rst(&s, &k, 1, 3000 * MS);
		settle(&s, SETTLE);
		expect_rst(&s, g, "v6 genuine abort, hop limit 63", "abort", 0, "");
		expect_verdict(&s, g, "v6 genuine abort", RG_ACCEPT);
	}
	sim_end(&s);
}

/* ---- enforce: shutdown with a RST held ---- */

static void
test_shutdown_held(void)
{
	struct sim s;
	struct conn k = conn_new(AF_INET, 44000);
	int h;

	sim_start(&s, "shutdown", ENFORCE, 0);
	baseline(&s, &k);
	h = send_active_rst(&s, &k, 1, 20 * MS);
	expect_first(&s, h, "abort held", RG_HOLD);
	TAP_EQ_U(ENG_HeldCount(s.e), 1, "shutdown: one held");
	ENG_Shutdown(s.e);
	collect(&s);
	expect_verdict(&s, h, "held abort at shutdown", RG_ACCEPT);
	expect_rst(&s, h, "held abort at shutdown", "abort", 0, "");
	TAP_EQ_U(ENG_HeldCount(s.e), 0, "shutdown: nothing held");
	sim_end(&s);
}

/* ---- enforce: the pending table's bounds ---- */

static void
test_pending_full(void)
{
	struct sim s;
	struct conn a = conn_new(AF_INET, 45000), b = conn_new(AF_INET, 45001);
	struct engine_stats st;
	struct engine_time t0 = { MONO0_NS, REAL0_NS };
	int ha, hb;

	sim_start(&s, "pending full", ENFORCE, 0);
	ENG_Destroy(s.e);
	s.cfg.max_pending = 1;
	s.e = ENG_Create(&s.cfg, 4096, sink, seed, &t0);
	if (s.e == NULL)
		abort();
	baseline(&s, &a);
	baseline(&s, &b);
	ha = send_active_rst(&s, &a, 1, 20 * MS);
	hb = send_active_rst(&s, &b, 1, 1 * MS);
	expect_first(&s, ha, "first RST (fills the table)", RG_HOLD);
	expect_first(&s, hb, "second RST (table full: judged at once)", RG_ACCEPT);
	expect_rst(&s, hb, "second RST, table full", "abort", 0, "");
	ENG_GetStats(s.e, &st);
	TAP_EQ_U(st.pending_full, 1, "pending full: counted");
	settle(&s, SETTLE);
	expect_verdict(&s, ha, "first RST released", RG_ACCEPT);
	sim_end(&s);
}

/* Two held RSTs decided within one receive batch (no ENG_TakeVerdicts in between), with a
 * pending table of one: both verdicts must come out, or the second packet stays queued. */
static void
test_verdicts_one_batch(void)
{
	struct sim s;
	struct conn a = conn_new(AF_INET, 45010), b = conn_new(AF_INET, 45011);
	struct engine_time t0 = { MONO0_NS, REAL0_NS };
	struct pb_spec p;
	int ha, hb;

	sim_start(&s, "verdicts in one batch", ENFORCE, 0);
	ENG_Destroy(s.e);
	s.cfg.max_pending = 1;
	s.e = ENG_Create(&s.cfg, 4096, sink, seed, &t0);
	if (s.e == NULL)
		abort();
	baseline(&s, &a);
	baseline(&s, &b);
	s.batch = 1;
	p = rst_like(&a, 1, TCPF_RST | TCPF_ACK);
	ha = tx(&s, &p, 20 * MS);
	send_seg(&s, &a, 1, TCPF_ACK, 1448, 100);       /* race: decided */
	p = rst_like(&b, 1, TCPF_RST | TCPF_ACK);
	hb = tx(&s, &p, 100);
	send_seg(&s, &b, 1, TCPF_ACK, 1448, 100);       /* race: decided */
	s.batch = 0;
	collect(&s);
	expect_first(&s, ha, "first mimicking RST", RG_HOLD);
	expect_verdict(&s, ha, "first RST, raced", RG_DROP);
	/* The second may be held (then it must come out dropped) or judged at once if the engine
	 * has no room to owe another verdict; what must never happen is a verdict that is lost. */
	tap_ok(verdict_of(&s, hb) != RG_HOLD, "%s: second RST (slot freed by the first's verdict): a verdict (got %s)",
	       s.name, vname(verdict_of(&s, hb)));
	if (s.log[hb].first == RG_HOLD)
		expect_verdict(&s, hb, "second RST, held and raced in the same batch", RG_DROP);
	sim_end(&s);
}

/* ---- late evidence and active confirmation ---- */

struct fake_sender {
	int sent;
	uint8_t last[128];
	uint32_t len;
};

static int
fake_send(void *ctx, const struct flow *f, const uint8_t *buf, uint32_t len)
{
	struct fake_sender *fs = ctx;

	(void)f;
	fs->sent++;
	fs->len = len < sizeof(fs->last) ? len : (uint32_t)sizeof(fs->last);
	memcpy(fs->last, buf, fs->len);
	return 0;
}

static uint32_t
get32(const uint8_t *b)
{
	return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

/* Detect mode: a RST judged genuine is revised when its sender talks on after the wait. */
static void
test_revised(void)
{
	struct sim s;
	struct conn a = conn_new(AF_INET, 40800), b = conn_new(AF_INET, 40801), c = conn_new(AF_INET, 40802);
	struct pb_spec p, old;
	int h;

	sim_start(&s, "revised", DETECT, 1);
	/* A perfect mimic; the server stays silent for 1 s (longer than any wait), then sends. */
	baseline(&s, &a);
	p = rst_like(&a, 1, TCPF_RST | TCPF_ACK);
	h = tx(&s, &p, 20 * MS);
	settle(&s, SETTLE);
	expect_rst(&s, h, "perfect mimic, its sender silent past the wait", "abort", 0, "");
	expect_revised(&s, h, "perfect mimic, nothing more yet", "race_late", 0);
	send_seg(&s, &a, 1, TCPF_ACK, 1448, 1000 * MS);
	expect_revised(&s, h, "perfect mimic, then the server's new data 1 s later", "\"race_late\"", 1);
	expect_anomaly(&s, h, "revised mimic", 1);
	{
		char line[EVENT_LINE_MAX + 1];

		tap_ok(revised_for(&s, h, line, sizeof(line)) && strstr(line, "\"flow_id\"") &&
		       strstr(line, "\"verdict\":\"accept\""),
		       "%s: the revision keeps flow_id and says the RST passed", s.name);
	}

	/* TRAP: a genuine abort, then a segment the server sent before it (reordered, below
	 * the RST's seq): no revision. */
	baseline(&s, &b);
	old = seg(&b, 1, TCPF_ACK, 1448);
	h = send_active_rst(&s, &b, 1, 1 * MS);
	tx(&s, &old, 200);
	settle(&s, SETTLE);
	expect_rst(&s, h, "genuine abort, then an older segment", "abort", 0, NULL);
	expect_revised(&s, h, "genuine abort, then an older segment", "race_late", 0);

	/* TRAP: the sender talks on only after revise_window (a new life of the tuple's peer). */
	baseline(&s, &c);
	p = rst_like(&c, 1, TCPF_RST | TCPF_ACK);
	h = tx(&s, &p, 20 * MS);
	settle(&s, SETTLE);
	send_seg(&s, &c, 1, TCPF_ACK, 1448, (uint64_t)(s.cfg.revise_window + 1) * 1000 * MS);
	expect_revised(&s, h, "sender talks on after revise_window", "race_late", 0);
	sim_end(&s);
}

/* Injections answering the SYN: caught at once with two corroborating signals, or revised when
 * the real SYN-ACK comes. */
static void
test_handshake(int enforce)
{
	struct sim s;
	struct conn a = conn_new(AF_INET, 40850), b = conn_new(AF_INET, 40851);
	struct pb_spec p, r;
	int h;

	sim_start(&s, "handshake", enforce, 0);
	/* ack = the client's ISN (not ISN + 1), IP ID copied from the SYN. */
	p = seg(&a, 0, TCPF_SYN, 0);
	h = tx(&s, &p, 1 * MS);
	r = rst_like(&a, 1, TCPF_RST | TCPF_ACK);
	r.ack = a.c.isn;
	r.ipid = p.ipid;
	r.ttl = 60;
	h = tx(&s, &r, 3 * MS);
	expect_rst(&s, h, "RST/ACK to the SYN, ack = ISN, IP ID of the SYN", "injected", 1, "ipid,ack_invalid");
	expect_field(&s, h, "RST to the SYN, ack = ISN", "effective", "false");
	expect_verdict(&s, h, "RST to the SYN, ack = ISN", enforce ? RG_DROP : RG_ACCEPT);

	/* ack = ISN + 1 (effective), a timestamp echo the client never sent: one signal only;
	 * the server's real SYN-ACK 30 ms later revises it. */
	p = seg(&b, 0, TCPF_SYN, 0);
	p.ts = 1;
	p.tsval = 1000;
	tx(&s, &p, 1 * MS);
	r = rst_like(&b, 1, TCPF_RST | TCPF_ACK);
	r.ts = 1;
	r.tsval = 777;
	r.tsecr = 5000;
	h = tx(&s, &r, 3 * MS);
	expect_rst(&s, h, "RST/ACK to the SYN echoing a TSval never sent", "refused", 0, "ts_echo");
	expect_verdict(&s, h, "RST to the SYN, one signal", RG_ACCEPT);
	p = seg(&b, 1, TCPF_SYN | TCPF_ACK, 0);
	p.ipid = 0;
	tx(&s, &p, 30 * MS);
	expect_revised(&s, h, "RST to the SYN, then the server's SYN-ACK", "\"synack_late\"", 1);
	sim_end(&s);
}

/* Enforce mode: a held RST's claimed sender is asked with a probe in the receiver's name. */
static void
test_confirm(void)
{
	struct sim s;
	struct conn a = conn_new(AF_INET, 40870), b = conn_new(AF_INET, 40871), c = conn_new(AF_INET, 40872);
	struct fake_sender fs = { 0 };
	struct pb_spec p;
	int h, g;

	sim_start(&s, "confirm", ENFORCE, 0);
	s.cfg.confirm = 1;
	ENG_SetProbeSender(s.e, fake_send, &fs);

	/* A perfect mimic: the server's live socket answers the probe with a duplicate ACK. */
	baseline(&s, &a);
	p = rst_like(&a, 1, TCPF_RST | TCPF_ACK);
	h = tx(&s, &p, 20 * MS);
	expect_first(&s, h, "perfect mimic", RG_HOLD);
	tap_ok(fs.sent == 1, "%s: one probe sent (got %d)", s.name, fs.sent);
	tap_ok(fs.len >= 40 && get32(fs.last + 24) == a.c.nxt - 1 && get32(fs.last + 28) == a.s.nxt,
	       "%s: probe in the client's name: seq = its SND.NXT - 1, ack = its RCV.NXT", s.name);
	p = seg(&a, 1, TCPF_ACK, 0);
	g = tx(&s, &p, a.rtt_s_us);
	expect_first(&s, g, "the server's answer to the probe (absorbed)", RG_DROP);
	expect_verdict(&s, h, "perfect mimic, the server's socket alive", RG_DROP);
	expect_rst(&s, h, "perfect mimic, probe answered by an ACK", "injected", 1, "probe_ack");
	expect_field(&s, h, "perfect mimic", "confirmed", "probe_ack");

	/* A genuine abort: the server's stack has no socket and answers the probe with a RST. */
	baseline(&s, &b);
	h = send_active_rst(&s, &b, 1, 20 * MS);
	expect_first(&s, h, "genuine abort", RG_HOLD);
	tap_ok(fs.sent == 2, "%s: a probe for the genuine abort (got %d)", s.name, fs.sent);
	g = send_passive_rst(&s, &b, 1, b.rtt_s_us);
	expect_verdict(&s, h, "genuine abort, probe answered by a RST", RG_ACCEPT);
	expect_rst(&s, h, "genuine abort, probe answered by a RST", "abort", 0, NULL);
	expect_field(&s, h, "genuine abort", "confirmed", "probe_rst");
	expect_first(&s, g, "the stack's RST answering the probe (absorbed: rstguard caused it)", RG_DROP);
	tap_ok(!event_for(&s, g, "rst", (char[EVENT_LINE_MAX + 1]){ 0 }, EVENT_LINE_MAX + 1),
	       "%s: no rst event of its own for the probe's answer", s.name);

	/* A genuine abort whose sender is gone silent: delivered when the hold ends. */
	baseline(&s, &c);
	h = send_active_rst(&s, &c, 1, 20 * MS);
	settle(&s, SETTLE);
	expect_verdict(&s, h, "genuine abort, probe unanswered", RG_ACCEPT);
	expect_field(&s, h, "genuine abort, probe unanswered", "confirmed", "timeout");
	TAP_EQ_U(ENG_HeldCount(s.e), 0, "held count back to 0");
	sim_end(&s);
}

/* One constant IP ID and window on RSTs claimed by several unrelated hosts: an injector's stamp. */
static void
test_signature(void)
{
	static const char *const servers[] = { "198.18.3.11", "198.18.3.12", "198.18.3.13" };
	static const char *const fleet[] = { "198.18.3.21", "198.18.3.22", "198.18.3.23" };
	struct sim s;
	struct pb_spec p;
	int h[3];

	sim_start(&s, "signature", DETECT, 1);
	for (int i = 0; i < 3; i++) {
		struct conn k = conn_new(AF_INET, (uint16_t)(40900 + i));

		k.s.addr = servers[i];
		baseline(&s, &k);
		p = rst_like(&k, 1, TCPF_RST | TCPF_ACK);
		p.ipid = 0x3412;
		p.df = 0;
		p.win = 1024;
		h[i] = tx(&s, &p, 20 * MS);
	}
	settle(&s, SETTLE);
	expect_rst(&s, h[0], "first host's RST with IP ID 0x3412, window 1024, no DF", NULL, 0, "df");
	expect_rst(&s, h[2], "third host's RST with the same IP ID and window", "injected", 1, "df,ipid_signature");

	/* TRAP: a fleet of devices whose every packet carries one constant IP ID: their own
	 * RSTs carry it too, and that is their habit, not an injector's stamp. */
	for (int i = 0; i < 3; i++) {
		struct conn k = conn_new(AF_INET, (uint16_t)(40910 + i));

		k.s.addr = fleet[i];
		k.s.ipid_mode = IPID_CONST;
		k.s.ipid = 0x2222;
		baseline(&s, &k);
		p = rst_like(&k, 1, TCPF_RST | TCPF_ACK);
		p.df = 0;
		p.win = 1024;
		h[i] = tx(&s, &p, 20 * MS);
	}
	settle(&s, SETTLE);
	expect_rst(&s, h[2], "third device of a constant-ID fleet", NULL, 0, "df");
	sim_end(&s);
}

int
main(void)
{
	int fd;

	snprintf(ev_path, sizeof(ev_path), "/tmp/rg-test-rst-XXXXXX");
	fd = mkstemp(ev_path);
	if (fd < 0)
		return 99;
	close(fd);
	if (EV_Initialise(ev_path, 100000, 100000) < 0)
		return 99;
	sink = EV_CreateSink(1 << 20);
	if (sink == NULL)
		return 99;

	test_ttl_injector(DETECT);
	test_ttl_injector(ENFORCE);
	test_ttl_tolerance();
	test_ipid(DETECT);
	test_ipid(ENFORCE);
	test_ipid_habits();
	test_df();
	test_seq_ahead();
	test_payload_window(DETECT);
	test_payload_window(ENFORCE);
	test_ack_invalid(DETECT);
	test_ack_invalid(ENFORCE);
	test_gfw2006(DETECT, 1);
	test_gfw2006(ENFORCE, 0);
	test_gfw2006(ENFORCE, 1);
	test_identical();
	test_identical_ttl(DETECT);
	test_identical_ttl(ENFORCE);
	test_ttl_burst();
	test_race(DETECT, 1);
	test_race(ENFORCE, 0);
	test_race(ENFORCE, 1);
	test_race_traps(DETECT, 1);
	test_race_traps(ENFORCE, 0);
	test_race_traps(ENFORCE, 1);
	test_too_fast();
	test_inflight(DETECT, 1);
	test_inflight(ENFORCE, 1);
	test_inflight(ENFORCE, 0);
	test_genuine_after_forged();
	test_both_ends(1);
	test_both_ends(0);
	test_midstream(DETECT);
	test_midstream(ENFORCE);
	test_revised();
	test_handshake(DETECT);
	test_handshake(ENFORCE);
	test_confirm();
	test_signature();
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		const struct mode *m = &modes[i];

		cause_refused(m, AF_INET);
		cause_connect_abort(m);
		cause_abort(m, AF_INET);
		cause_unread_data(m);
		cause_closed_socket(m);
		cause_keepalive(m);
		cause_time_wait(m);
		cause_invalid_seq(m);
		cause_no_flow(m);
		cause_refused(m, AF_INET6);
		cause_abort(m, AF_INET6);
	}
	test_v6_hoplimit(DETECT);
	test_v6_hoplimit(ENFORCE);
	test_shutdown_held();
	test_pending_full();
	test_verdicts_one_batch();

	EV_Finalise();
	unlink(ev_path);
	return tap_done();
}
