/* Unit tests of the conntrack lookup module (src/nat.c, included to reach its statics): the
 * GET request it builds, and its parser of answers and events against hand-built ctnetlink
 * messages, good and bad (truncated at every length, wrong attribute lengths, missing tuples,
 * duplicates, wrong families, error answers, stale sequence numbers, trailing garbage, random
 * corruption). Every parse runs on an exact-size heap copy, so under ASan a read outside the
 * message is caught. No socket is opened. */
#include "nat.c"

#include <stdlib.h>

#include "tap.h"

#define BUFSZ 1024
#define PORTID 4242

/* ---- building answers ---- */

struct ctspec {
	uint16_t msg;              /* IPCTNL_MSG_CT_NEW (answer, NEW event) or _DELETE */
	int family;
	uint32_t seq, portid;
	struct nat_tuple orig, reply;
	uint8_t proto;             /* IPPROTO_TCP unless set */
	int zone;                  /* -1: no CTA_ZONE */
	uint32_t id, status;
	/* corruption knobs */
	int no_orig, no_reply, no_ports, no_proto, no_ip;
	int addr_len;              /* length of the source address attribute (0: right one) */
	int port_len;              /* length of the source port attribute (0: 2) */
	int zone_len;              /* length of CTA_ZONE (0: 2) */
	int id_len;                /* length of CTA_ID (0: 4) */
	int dup_status;            /* CTA_STATUS twice */
	int wrong_family_addrs;    /* IPv4 attributes in an IPv6 message and vice versa */
	int unknown_attr;          /* an attribute type above CTA_MAX (must be skipped) */
	int reply_first;           /* CTA_TUPLE_REPLY before CTA_TUPLE_ORIG */
};

static uint8_t v4_cli[16] = { 198, 18, 1, 2 };
static uint8_t v4_srv[16] = { 198, 18, 3, 2 };
static uint8_t v4_gw[16] = { 198, 18, 2, 1 };
static uint8_t v6_cli[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 1, [15] = 2 };
static uint8_t v6_srv[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 3, [15] = 2 };
static uint8_t v6_gw[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 2, [15] = 1 };

static void
put_tuple(struct nlmsghdr *nlh, int type, const struct ctspec *s, const struct nat_tuple *t)
{
	struct nlattr *nest, *ip, *pr;
	int v4 = (s->family == AF_INET) != (s->wrong_family_addrs != 0);
	int alen = v4 ? 4 : 16;
	uint8_t big[32] = { 0 };

	nest = mnl_attr_nest_start(nlh, type);
	if (!s->no_ip) {
		ip = mnl_attr_nest_start(nlh, CTA_TUPLE_IP);
		memcpy(big, t->src, 16);
		mnl_attr_put(nlh, v4 ? CTA_IP_V4_SRC : CTA_IP_V6_SRC,
			     s->addr_len ? (size_t)s->addr_len : (size_t)alen, big);
		mnl_attr_put(nlh, v4 ? CTA_IP_V4_DST : CTA_IP_V6_DST, alen, t->dst);
		mnl_attr_nest_end(nlh, ip);
	}
	pr = mnl_attr_nest_start(nlh, CTA_TUPLE_PROTO);
	if (!s->no_proto)
		mnl_attr_put_u8(nlh, CTA_PROTO_NUM, s->proto ? s->proto : IPPROTO_TCP);
	if (!s->no_ports) {
		uint8_t p[8] = { 0 };
		uint16_t sp = htons(t->sport);

		memcpy(p, &sp, 2);
		mnl_attr_put(nlh, CTA_PROTO_SRC_PORT, s->port_len ? (size_t)s->port_len : 2, p);
		mnl_attr_put_u16(nlh, CTA_PROTO_DST_PORT, htons(t->dport));
	}
	mnl_attr_nest_end(nlh, pr);
	mnl_attr_nest_end(nlh, nest);
}

static size_t
build_ct(uint8_t *buf, const struct ctspec *s)
{
	struct nlmsghdr *nlh;
	struct nfgenmsg *nfg;
	uint8_t pad[8] = { 0 };

	memset(buf, 0, BUFSZ);
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = CT_MSG(s->msg ? s->msg : IPCTNL_MSG_CT_NEW);
	nlh->nlmsg_seq = s->seq;
	nlh->nlmsg_pid = s->portid;
	nfg = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfg));
	nfg->nfgen_family = (uint8_t)s->family;
	nfg->version = NFNETLINK_V0;
	if (s->reply_first && !s->no_reply)
		put_tuple(nlh, CTA_TUPLE_REPLY, s, &s->reply);
	if (!s->no_orig)
		put_tuple(nlh, CTA_TUPLE_ORIG, s, &s->orig);
	if (!s->reply_first && !s->no_reply)
		put_tuple(nlh, CTA_TUPLE_REPLY, s, &s->reply);
	mnl_attr_put_u32(nlh, CTA_STATUS, htonl(s->status));
	if (s->dup_status)
		mnl_attr_put_u32(nlh, CTA_STATUS, htonl(s->status));
	if (s->unknown_attr)
		mnl_attr_put_u32(nlh, CTA_MAX + 5, 0xdeadbeef);
	if (s->id_len) {
		mnl_attr_put(nlh, CTA_ID, (size_t)s->id_len, pad);
	} else {
		mnl_attr_put_u32(nlh, CTA_ID, htonl(s->id));
	}
	if (s->zone >= 0 || s->zone_len) {
		uint16_t z = htons((uint16_t)(s->zone < 0 ? 0 : s->zone));

		memcpy(pad, &z, 2);
		mnl_attr_put(nlh, CTA_ZONE, s->zone_len ? (size_t)s->zone_len : 2, pad);
	}
	return nlh->nlmsg_len;
}

static void
tuple(struct nat_tuple *t, const uint8_t *src, uint16_t sport, const uint8_t *dst, uint16_t dport)
{
	memset(t, 0, sizeof(*t));
	memcpy(t->src, src, 16);
	memcpy(t->dst, dst, 16);
	t->sport = sport;
	t->dport = dport;
}

/* A masqueraded connection: client 40001 -> server 80, answered to the gateway's port 20123. */
static void
spec_masq(struct ctspec *s, int family)
{
	memset(s, 0, sizeof(*s));
	s->family = family;
	s->seq = 77;
	s->portid = PORTID;
	s->zone = -1;
	s->id = 0x11223344;
	s->status = 0x1ba;   /* IPS_SEEN_REPLY|ASSURED|CONFIRMED|SRC_NAT|SRC_NAT_DONE|DST_NAT_DONE */
	if (family == AF_INET) {
		tuple(&s->orig, v4_cli, 40001, v4_srv, 80);
		tuple(&s->reply, v4_srv, 80, v4_gw, 20123);
	} else {
		tuple(&s->orig, v6_cli, 40001, v6_srv, 80);
		tuple(&s->reply, v6_srv, 80, v6_gw, 20123);
	}
}

/* NAT_ParseCt on an exact-size heap copy of len bytes. */
static int
parse_copy(const uint8_t *msg, size_t len, struct nat_map *m)
{
	uint8_t *copy = malloc(len ? len : 1);
	int r;

	if (!copy)
		abort();
	memcpy(copy, msg, len);
	memset(m, 0xa5, sizeof(*m));
	r = NAT_ParseCt(copy, len, m);
	free(copy);
	return r;
}

static int
parse_spec(const struct ctspec *s, struct nat_map *m)
{
	uint8_t buf[BUFSZ] __attribute__((aligned(8)));
	size_t len = build_ct(buf, s);

	return parse_copy(buf, len, m);
}

static int
tuple_is(const struct nat_tuple *t, const uint8_t *src, uint16_t sport, const uint8_t *dst,
	 uint16_t dport, int family)
{
	unsigned alen = family == AF_INET ? 4 : 16;

	return memcmp(t->src, src, alen) == 0 && memcmp(t->dst, dst, alen) == 0 &&
	       t->sport == sport && t->dport == dport;
}

/* ---- the request ---- */

struct req_view {
	const struct nlattr *ct[CTA_MAX + 1], *tup[CTA_TUPLE_MAX + 1], *ip[CTA_IP_MAX + 1],
		*pr[CTA_PROTO_MAX + 1];
};

static int
view_cb(const struct nlattr *a, void *data)
{
	const struct nlattr **tb = data;

	tb[mnl_attr_get_type(a)] = a;    /* the request has no type above the maxima */
	return MNL_CB_OK;
}

static void
test_request(void)
{
	uint8_t buf[NAT_REQ_MAX] __attribute__((aligned(4)));
	struct nlmsghdr *nlh = (struct nlmsghdr *)buf;
	struct nfgenmsg *nfg;
	struct req_view v;
	size_t len;
	int ok;

	len = NAT_BuildGet(buf, sizeof(buf), 1234, AF_INET, v4_srv, 80, v4_gw, 20123, 0);
	TAP_OK(len > 0 && len <= NAT_REQ_MAX && len == nlh->nlmsg_len && len % 4 == 0,
	       "IPv4 request built, %zu bytes, aligned", len);
	TAP_EQ_U(nlh->nlmsg_type, (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET,
		 "request type: ctnetlink GET");
	TAP_EQ_U(nlh->nlmsg_flags, NLM_F_REQUEST | NLM_F_ACK, "request flags: REQUEST|ACK");
	TAP_EQ_U(nlh->nlmsg_seq, 1234, "request sequence number");
	nfg = mnl_nlmsg_get_payload(nlh);
	TAP_OK(nfg->nfgen_family == AF_INET && nfg->version == NFNETLINK_V0, "nfgenmsg: AF_INET, v0");

	memset(&v, 0, sizeof(v));
	mnl_attr_parse(nlh, sizeof(*nfg), view_cb, v.ct);
	TAP_OK(v.ct[CTA_TUPLE_ORIG] && !v.ct[CTA_TUPLE_REPLY] && !v.ct[CTA_ZONE],
	       "the tuple goes in CTA_TUPLE_ORIG; no CTA_ZONE for zone 0");
	ok = 0;
	if (v.ct[CTA_TUPLE_ORIG]) {
		mnl_attr_parse_nested(v.ct[CTA_TUPLE_ORIG], view_cb, v.tup);
		if (v.tup[CTA_TUPLE_IP] && v.tup[CTA_TUPLE_PROTO]) {
			mnl_attr_parse_nested(v.tup[CTA_TUPLE_IP], view_cb, v.ip);
			mnl_attr_parse_nested(v.tup[CTA_TUPLE_PROTO], view_cb, v.pr);
			ok = v.ip[CTA_IP_V4_SRC] && mnl_attr_get_payload_len(v.ip[CTA_IP_V4_SRC]) == 4 &&
			     memcmp(mnl_attr_get_payload(v.ip[CTA_IP_V4_SRC]), v4_srv, 4) == 0 &&
			     v.ip[CTA_IP_V4_DST] &&
			     memcmp(mnl_attr_get_payload(v.ip[CTA_IP_V4_DST]), v4_gw, 4) == 0 &&
			     !v.ip[CTA_IP_V6_SRC] &&
			     v.pr[CTA_PROTO_NUM] && mnl_attr_get_u8(v.pr[CTA_PROTO_NUM]) == IPPROTO_TCP &&
			     v.pr[CTA_PROTO_SRC_PORT] &&
			     ntohs(mnl_attr_get_u16(v.pr[CTA_PROTO_SRC_PORT])) == 80 &&
			     v.pr[CTA_PROTO_DST_PORT] &&
			     ntohs(mnl_attr_get_u16(v.pr[CTA_PROTO_DST_PORT])) == 20123;
		}
	}
	TAP_OK(ok, "IPv4 tuple: addresses, TCP, ports in network order");

	len = NAT_BuildGet(buf, sizeof(buf), 9, AF_INET6, v6_srv, 443, v6_gw, 29999, 7);
	TAP_OK(len > 0 && len <= NAT_REQ_MAX && len % 4 == 0, "IPv6 request with a zone built (%zu bytes)", len);
	memset(&v, 0, sizeof(v));
	mnl_attr_parse(nlh, sizeof(*nfg), view_cb, v.ct);
	ok = 0;
	if (v.ct[CTA_TUPLE_ORIG]) {
		mnl_attr_parse_nested(v.ct[CTA_TUPLE_ORIG], view_cb, v.tup);
		if (v.tup[CTA_TUPLE_IP]) {
			mnl_attr_parse_nested(v.tup[CTA_TUPLE_IP], view_cb, v.ip);
			ok = v.ip[CTA_IP_V6_SRC] && mnl_attr_get_payload_len(v.ip[CTA_IP_V6_SRC]) == 16 &&
			     memcmp(mnl_attr_get_payload(v.ip[CTA_IP_V6_SRC]), v6_srv, 16) == 0 &&
			     v.ip[CTA_IP_V6_DST] &&
			     memcmp(mnl_attr_get_payload(v.ip[CTA_IP_V6_DST]), v6_gw, 16) == 0 &&
			     !v.ip[CTA_IP_V4_SRC];
		}
	}
	TAP_OK(ok && nfg->nfgen_family == AF_INET6, "IPv6 tuple: 16-byte addresses, AF_INET6");
	TAP_OK(v.ct[CTA_ZONE] && mnl_attr_get_payload_len(v.ct[CTA_ZONE]) == 2 &&
	       ntohs(mnl_attr_get_u16(v.ct[CTA_ZONE])) == 7, "CTA_ZONE 7, network order");

	TAP_EQ_U(NAT_BuildGet(buf, sizeof(buf), 1, AF_UNIX, v4_srv, 1, v4_gw, 2, 0), 0,
		 "another family: nothing built");
	TAP_EQ_U(NAT_BuildGet(buf, NAT_REQ_MAX - 1, 1, AF_INET, v4_srv, 1, v4_gw, 2, 0), 0,
		 "a buffer under NAT_REQ_MAX: nothing built");
}

/* ---- answers ---- */

static void
test_good(void)
{
	struct ctspec s;
	struct nat_map m;
	char a[NAT_TUPLE_STRLEN], b[NAT_TUPLE_STRLEN];
	int r;

	spec_masq(&s, AF_INET);
	r = parse_spec(&s, &m);
	TAP_EQ_U(r, 1, "IPv4 masqueraded answer parsed");
	TAP_OK(r == 1 && m.family == AF_INET && tuple_is(&m.orig, v4_cli, 40001, v4_srv, 80, AF_INET) &&
	       tuple_is(&m.reply, v4_srv, 80, v4_gw, 20123, AF_INET),
	       "IPv4: original = client as it sent, reply = server to the NAT address and port");
	TAP_OK(r == 1 && m.translated == 1 && m.id == 0x11223344 && m.status == 0x1ba && m.zone == 0 &&
	       m.dir == NAT_DIR_NONE && m.event == 0, "IPv4: translated, id, status, zone 0");
	NAT_FormatTuple(AF_INET, &m.orig, a, sizeof(a));
	NAT_FormatTuple(AF_INET, &m.reply, b, sizeof(b));
	TAP_EQ_S(a, "198.18.1.2:40001->198.18.3.2:80", "format of the IPv4 original tuple");
	TAP_EQ_S(b, "198.18.3.2:80->198.18.2.1:20123", "format of the IPv4 reply tuple");

	spec_masq(&s, AF_INET6);
	s.zone = 513;
	r = parse_spec(&s, &m);
	TAP_EQ_U(r, 1, "IPv6 answer with CTA_ZONE parsed");
	TAP_OK(r == 1 && m.family == AF_INET6 && tuple_is(&m.orig, v6_cli, 40001, v6_srv, 80, AF_INET6) &&
	       tuple_is(&m.reply, v6_srv, 80, v6_gw, 20123, AF_INET6) && m.translated && m.zone == 513,
	       "IPv6: both tuples, translated, zone 513");
	NAT_FormatTuple(AF_INET6, &m.reply, b, sizeof(b));
	TAP_EQ_S(b, "[2001:db8:3::2]:80->[2001:db8:2::1]:20123", "format of an IPv6 tuple");

	/* Not translated: the reply is the reversed original. */
	spec_masq(&s, AF_INET);
	tuple(&s.reply, v4_srv, 80, v4_cli, 40001);
	r = parse_spec(&s, &m);
	TAP_OK(r == 1 && m.translated == 0, "untranslated entry: translated = 0");
	/* Only the port changed (e.g. MASQUERADE --to-ports on the same address). */
	tuple(&s.reply, v4_srv, 80, v4_cli, 40002);
	r = parse_spec(&s, &m);
	TAP_OK(r == 1 && m.translated == 1, "only the port translated: translated = 1");

	/* A DNAT port forward: the client asked for the gateway's 8080, the inside server answers. */
	spec_masq(&s, AF_INET);
	tuple(&s.orig, v4_srv, 51000, v4_gw, 8080);
	tuple(&s.reply, v4_cli, 80, v4_srv, 51000);
	r = parse_spec(&s, &m);
	TAP_OK(r == 1 && m.translated && tuple_is(&m.reply, v4_cli, 80, v4_srv, 51000, AF_INET),
	       "DNAT answer: the reply tuple is the inside server's");

	spec_masq(&s, AF_INET);
	s.reply_first = 1;
	s.unknown_attr = 1;
	r = parse_spec(&s, &m);
	TAP_OK(r == 1 && tuple_is(&m.orig, v4_cli, 40001, v4_srv, 80, AF_INET),
	       "attribute order does not matter; an unknown newer attribute is skipped");

	spec_masq(&s, AF_INET);
	s.msg = IPCTNL_MSG_CT_DELETE;
	TAP_EQ_U(parse_spec(&s, &m), 1, "a DELETE (destroy event) message parses too");

	spec_masq(&s, AF_INET);
	s.proto = IPPROTO_UDP;
	TAP_EQ_U(parse_spec(&s, &m), 0, "a UDP entry: 0 (well-formed, not TCP)");
}

static void
test_bad(void)
{
	struct ctspec s;
	struct nat_map m;
	uint8_t buf[BUFSZ] __attribute__((aligned(8)));
	size_t len, cut;
	int r, bad_results = 0, cuts = 0, ones = 0;

#define BAD(desc, ...) do { spec_masq(&s, AF_INET); __VA_ARGS__; errno = 0; \
		r = parse_spec(&s, &m); \
		TAP_OK(r == -1 && errno == EBADMSG, "rejected: %s", desc); } while (0)

	BAD("no CTA_TUPLE_ORIG", s.no_orig = 1);
	BAD("no CTA_TUPLE_REPLY", s.no_reply = 1);
	BAD("no ports", s.no_ports = 1);
	BAD("no protocol number", s.no_proto = 1);
	BAD("no CTA_TUPLE_IP", s.no_ip = 1);
	BAD("a 5-byte IPv4 address", s.addr_len = 5);
	BAD("a 3-byte IPv4 address", s.addr_len = 3);
	BAD("IPv6 addresses in an IPv4 message", s.wrong_family_addrs = 1);
	BAD("a 4-byte port", s.port_len = 4);
	BAD("a 1-byte port", s.port_len = 1);
	BAD("a 4-byte CTA_ZONE", s.zone_len = 4);
	BAD("a 2-byte CTA_ID", s.id_len = 2);
	BAD("CTA_STATUS twice", s.dup_status = 1);
	BAD("a message type other than CT_NEW/CT_DELETE", s.msg = IPCTNL_MSG_CT_GET);
	BAD("nfgen_family AF_UNSPEC", s.family = AF_UNSPEC);
	spec_masq(&s, AF_INET6);
	s.addr_len = 4;
	TAP_OK(parse_spec(&s, &m) == -1, "rejected: a 4-byte address in an IPv6 message");
	spec_masq(&s, AF_INET6);
	s.wrong_family_addrs = 1;
	TAP_OK(parse_spec(&s, &m) == -1, "rejected: IPv4 addresses in an IPv6 message");

	/* The buffer is shorter than the message says. */
	spec_masq(&s, AF_INET);
	len = build_ct(buf, &s);
	TAP_OK(parse_copy(buf, len - 1, &m) == -1, "rejected: nlmsg_len beyond the buffer");
	TAP_OK(parse_copy(buf, 10, &m) == -1, "rejected: less than a netlink header");
	TAP_OK(parse_copy(buf, 0, &m) == -1, "rejected: empty");

	/* Truncated at every length, the header's length following the cut (the attribute cut in
	 * the middle then claims more than remains). Every result is -1 or, when only trailing
	 * optional attributes were lost, 1. ASan checks that nothing is read past the cut. */
	for (cut = 0; cut <= len; cut++) {
		uint8_t copy[BUFSZ] __attribute__((aligned(8)));

		memcpy(copy, buf, len);
		if (cut >= sizeof(struct nlmsghdr))
			((struct nlmsghdr *)copy)->nlmsg_len = (uint32_t)cut;
		r = parse_copy(copy, cut, &m);
		if (r == 1)
			ones++;
		else if (r != -1)
			bad_results++;
		cuts++;
	}
	TAP_OK(bad_results == 0 && ones > 0 && ones < (int)len / 2,
	       "all %d truncations parsed safely (%d kept the tuples)", cuts, ones);

	/* An inner attribute whose length runs past its nest: the nest is parsed on its own
	 * bounds. Find the CTA_TUPLE_ORIG nest and grow the length of its first inner attribute. */
	spec_masq(&s, AF_INET);
	len = build_ct(buf, &s);
	{
		struct nlattr *orig = (struct nlattr *)(buf + MNL_NLMSG_HDRLEN + MNL_ALIGN(sizeof(struct nfgenmsg)));
		struct nlattr *ip = (struct nlattr *)((uint8_t *)orig + MNL_ATTR_HDRLEN);

		TAP_OK((orig->nla_type & NLA_TYPE_MASK) == CTA_TUPLE_ORIG &&
		       (ip->nla_type & NLA_TYPE_MASK) == CTA_TUPLE_IP, "layout of the hand-built answer");
		ip->nla_len = (uint16_t)(orig->nla_len + 8);
		TAP_OK(parse_copy(buf, len, &m) == -1, "rejected: an inner attribute longer than its nest");
		ip->nla_len = 2;
		TAP_OK(parse_copy(buf, len, &m) == -1, "rejected: an attribute shorter than its header");
	}
#undef BAD
}

/* Random corruption of good answers: any result, but never a read outside the copy. */
static void
test_fuzz(void)
{
	uint8_t buf[BUFSZ] __attribute__((aligned(8)));
	uint32_t x = 12345;
	struct ctspec s;
	struct nat_map m;
	int i, k, counts[3] = { 0, 0, 0 };
	size_t len;

	for (i = 0; i < 20000; i++) {
		spec_masq(&s, (i & 1) ? AF_INET6 : AF_INET);
		s.zone = (i & 2) ? 3 : -1;
		len = build_ct(buf, &s);
		for (k = 0; k < 1 + (i % 4); k++) {
			x = x * 1103515245u + 12345u;
			buf[4 + (x >> 8) % (len - 4)] ^= (uint8_t)(1u << ((x >> 4) & 7));
		}
		if (i % 3 == 0) {
			x = x * 1103515245u + 12345u;
			len -= (x >> 8) % len;
		}
		counts[parse_copy(buf, len, &m) + 1]++;
	}
	TAP_OK(counts[0] + counts[1] + counts[2] == 20000,
	       "20000 corrupted answers parsed safely (%d rejected, %d not TCP, %d accepted)",
	       counts[0], counts[1], counts[2]);
}

/* ---- exchanges: the answer, the ACK, errors and stale messages ---- */

static size_t
build_err(uint8_t *buf, uint32_t seq, uint32_t portid, int error, size_t payload)
{
	struct nlmsghdr *nlh;
	struct nlmsgerr *e;

	memset(buf, 0, BUFSZ);
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = NLMSG_ERROR;
	nlh->nlmsg_seq = seq;
	nlh->nlmsg_pid = portid;
	e = mnl_nlmsg_put_extra_header(nlh, payload);
	if (payload >= sizeof(int))
		e->error = -error;
	return nlh->nlmsg_len;
}

static void
feed(struct nat_lookup *n, const uint8_t *msg, size_t len, struct exchange *x)
{
	uint8_t *copy = malloc(len ? len : 1);

	if (!copy)
		abort();
	memcpy(copy, msg, len);
	process_answer(n, copy, len, x);
	free(copy);
}

static void
xchg_init(struct exchange *x, uint32_t seq, struct nat_map *out)
{
	memset(x, 0, sizeof(*x));
	x->seq = seq;
	x->out = out;
	memset(out, 0, sizeof(*out));
}

static void
test_exchange(void)
{
	static struct nat_lookup n;
	uint8_t buf[BUFSZ] __attribute__((aligned(8)));
	uint8_t two[2 * BUFSZ] __attribute__((aligned(8)));
	struct exchange x;
	struct nat_map m;
	struct ctspec s;
	size_t len, len2;

	memset(&n, 0, sizeof(n));
	n.portid = PORTID;

	/* Answer, then ACK: found and done. */
	xchg_init(&x, 77, &m);
	spec_masq(&s, AF_INET);
	len = build_ct(buf, &s);
	feed(&n, buf, len, &x);
	TAP_OK(x.found && !x.done && tuple_is(&m.reply, v4_srv, 80, v4_gw, 20123, AF_INET),
	       "answer for our sequence number: taken, exchange not over");
	len = build_err(buf, 77, PORTID, 0, sizeof(struct nlmsgerr));
	feed(&n, buf, len, &x);
	TAP_OK(x.done && x.err == 0 && x.found, "then the ACK: done");

	/* ENOENT: a miss. */
	xchg_init(&x, 78, &m);
	len = build_err(buf, 78, PORTID, ENOENT, sizeof(struct nlmsgerr));
	feed(&n, buf, len, &x);
	TAP_OK(x.done && x.err == ENOENT && !x.found, "error answer ENOENT: done, not found");
	xchg_init(&x, 79, &m);
	len = build_err(buf, 79, PORTID, EPERM, sizeof(struct nlmsgerr));
	feed(&n, buf, len, &x);
	TAP_OK(x.done && x.err == EPERM, "error answer EPERM is kept");

	/* A truncated error message: not taken as an ACK. */
	xchg_init(&x, 80, &m);
	n.st.bad_messages = 0;
	len = build_err(buf, 80, PORTID, 0, 2);
	feed(&n, buf, len, &x);
	TAP_OK(!x.done && x.bad && n.st.bad_messages == 1, "an error message too short for nlmsgerr: ignored, counted");

	/* Stale: the late answer and ACK of request 76 while we wait for 81 (one datagram each,
	 * then both in one datagram), then a message with another port id. */
	xchg_init(&x, 81, &m);
	n.st.stale = 0;
	spec_masq(&s, AF_INET);
	s.seq = 76;
	tuple(&s.reply, v4_srv, 80, v4_gw, 20999);
	len = build_ct(buf, &s);
	feed(&n, buf, len, &x);
	TAP_OK(!x.found && !x.done && n.st.stale == 1, "a late answer to an earlier request: dropped, counted stale");
	len = build_err(buf, 76, PORTID, 0, sizeof(struct nlmsgerr));
	feed(&n, buf, len, &x);
	TAP_OK(!x.done && n.st.stale == 2, "its late ACK: dropped, not taken for ours");
	len = build_ct(two, &s);
	len2 = build_err(buf, 76, PORTID, ENOENT, sizeof(struct nlmsgerr));
	memcpy(two + len, buf, len2);
	feed(&n, two, len + len2, &x);
	TAP_OK(!x.done && !x.found && n.st.stale == 4, "stale answer + error in one datagram: both dropped");
	s.seq = 81;
	s.portid = PORTID + 1;
	len = build_ct(buf, &s);
	feed(&n, buf, len, &x);
	TAP_OK(!x.found && n.st.stale == 5, "our sequence number but another port id: dropped");
	/* Then ours, answer and ACK in one datagram. */
	spec_masq(&s, AF_INET);
	s.seq = 81;
	len = build_ct(two, &s);
	len2 = build_err(buf, 81, PORTID, 0, sizeof(struct nlmsgerr));
	memcpy(two + len, buf, len2);
	feed(&n, two, len + len2, &x);
	TAP_OK(x.found && x.done && x.err == 0 && tuple_is(&m.reply, v4_srv, 80, v4_gw, 20123, AF_INET),
	       "then our own answer and ACK: the right entry");

	/* A malformed answer with our sequence number: bad, not found. */
	xchg_init(&x, 82, &m);
	spec_masq(&s, AF_INET);
	s.seq = 82;
	s.no_reply = 1;
	len = build_ct(buf, &s);
	feed(&n, buf, len, &x);
	len = build_err(buf, 82, PORTID, 0, sizeof(struct nlmsgerr));
	feed(&n, buf, len, &x);
	TAP_OK(x.done && !x.found && x.bad, "a malformed answer then the ACK: done, bad, nothing found");

	/* Trailing bytes after the last message. */
	xchg_init(&x, 83, &m);
	n.st.bad_messages = 0;
	len = build_err(two, 83, PORTID, ENOENT, sizeof(struct nlmsgerr));
	memset(two + len, 0x5a, 7);
	feed(&n, two, len + 7, &x);
	TAP_OK(x.done && x.err == ENOENT, "error then trailing garbage: the error is taken");
	xchg_init(&x, 84, &m);
	feed(&n, two + len, 7, &x);
	TAP_OK(!x.done && n.st.bad_messages >= 1, "a datagram of garbage: nothing taken, counted");
}

static int
count_ev(const struct nat_map *m, void *ctx)
{
	int *c = ctx;

	c[m->event == NAT_EV_DESTROY]++;
	return c[0] + c[1] >= c[2];   /* c[2]: stop after this many */
}

static void
test_events(void)
{
	static struct nat_lookup n;
	uint8_t dg[4 * BUFSZ] __attribute__((aligned(8)));
	uint8_t buf[BUFSZ] __attribute__((aligned(8)));
	struct ctspec s;
	size_t len = 0, l;
	int delivered = 0, c[3] = { 0, 0, 100 }, stop;

	memset(&n, 0, sizeof(n));
	spec_masq(&s, AF_INET);
	s.seq = 0;
	s.portid = 0;
	l = build_ct(buf, &s);
	memcpy(dg + len, buf, l);
	len += l;
	s.proto = IPPROTO_UDP;
	l = build_ct(buf, &s);
	memcpy(dg + len, buf, l);
	len += l;
	spec_masq(&s, AF_INET6);
	s.portid = 0;
	s.no_reply = 1;
	l = build_ct(buf, &s);
	memcpy(dg + len, buf, l);
	len += l;
	spec_masq(&s, AF_INET6);
	s.portid = 0;
	s.msg = IPCTNL_MSG_CT_DELETE;
	l = build_ct(buf, &s);
	memcpy(dg + len, buf, l);
	len += l;

	stop = process_events(&n, dg, len, count_ev, c, &delivered);
	TAP_OK(!stop && delivered == 2 && c[0] == 1 && c[1] == 1 && n.st.events == 2 &&
	       n.st.bad_messages == 1,
	       "events: NEW and DESTROY delivered, UDP skipped, malformed counted (%d delivered)", delivered);
	c[0] = c[1] = 0;
	c[2] = 1;
	delivered = 0;
	stop = process_events(&n, dg, len, count_ev, c, &delivered);
	TAP_OK(stop && delivered == 1, "the callback can stop the delivery");
}

int
main(void)
{
	test_request();
	test_good();
	test_bad();
	test_fuzz();
	test_exchange();
	test_events();
	return tap_done();
}
