/* Unit tests of the CIDR module: parsing IPv4 and IPv6 networks (prefixes, host bits, syntax
 * errors leaving the output untouched) and matching addresses, never across families. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "cidr.h"
#include "tap.h"

static struct cidr
net(const char *s)
{
	struct cidr c;

	if (CIDR_Parse(s, &c) != CIDR_OK) {
		fprintf(stderr, "bad test network %s\n", s);
		exit(99);
	}
	return c;
}

/* Does network text n contain address text a? */
static int
contains(const char *n, const char *a)
{
	struct cidr c = net(n);
	uint8_t addr[16] = { 0 };
	int family = strchr(a, ':') ? AF_INET6 : AF_INET;

	if (inet_pton(family, a, addr) != 1) {
		fprintf(stderr, "bad test address %s\n", a);
		exit(99);
	}
	return CIDR_Match(&c, family, addr);
}

static void
test_cidr_parse(void)
{
	static const uint8_t v6[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 };
	static const struct { const char *s; int rc; } bad[] = {
		{ "198.18.0.0/33", CIDR_PREFIX },
		{ "2001:db8::/129", CIDR_PREFIX },
		{ "198.18.0.0/99999999999999999999", CIDR_PREFIX },
		{ "198.18.1.1/15", CIDR_HOST_BITS },
		{ "198.18.0.1/31", CIDR_HOST_BITS },
		{ "198.18.0.128/24", CIDR_HOST_BITS },
		{ "0.0.0.1/0", CIDR_HOST_BITS },
		{ "2001:db8::1/64", CIDR_HOST_BITS },
		{ "2001:db8:4000::/33", CIDR_HOST_BITS },
		{ "", CIDR_SYNTAX },
		{ "/24", CIDR_SYNTAX },
		{ "gateway", CIDR_SYNTAX },
		{ "198.18.0", CIDR_SYNTAX },
		{ "198.18.0.0.0", CIDR_SYNTAX },
		{ "198.18.0.256", CIDR_SYNTAX },
		{ " 198.18.0.0", CIDR_SYNTAX },
		{ "198.18.0.0/", CIDR_SYNTAX },
		{ "198.18.0.0/-1", CIDR_SYNTAX },
		{ "198.18.0.0/+8", CIDR_SYNTAX },
		{ "198.18.0.0/ 8", CIDR_SYNTAX },
		{ "198.18.0.0/8 ", CIDR_SYNTAX },
		{ "198.18.0.0/8x", CIDR_SYNTAX },
		{ "198.18.0.0/15/15", CIDR_SYNTAX },
		{ "2001:db8:::1", CIDR_SYNTAX },
		{ "fe80::1%eth0", CIDR_SYNTAX },
		{ "2001:0db8:0000:0000:0000:0000:0000:0000:0001/128", CIDR_SYNTAX },
	};
	struct cidr c, keep;

	TAP_OK(CIDR_Parse("198.18.0.0/15", &c) == CIDR_OK && c.family == AF_INET &&
	    c.prefix == 15 && c.addr[0] == 198 && c.addr[1] == 18 && c.addr[2] == 0 &&
	    c.addr[3] == 0, "parse 198.18.0.0/15");
	TAP_OK(CIDR_Parse("198.18.7.9", &c) == CIDR_OK && c.family == AF_INET &&
	    c.prefix == 32 && c.addr[3] == 9, "bare IPv4 address is a /32");
	TAP_OK(c.addr[4] == 0 && c.addr[15] == 0, "IPv4 uses the first 4 bytes, the rest zero");
	TAP_OK(CIDR_Parse("0.0.0.0/0", &c) == CIDR_OK && c.prefix == 0,
	    "parse 0.0.0.0/0");
	TAP_OK(CIDR_Parse("198.18.3.2/32", &c) == CIDR_OK && c.prefix == 32,
	    "parse a /32");
	TAP_OK(CIDR_Parse("198.18.0.0/015", &c) == CIDR_OK && c.prefix == 15,
	    "leading zero in the prefix");
	TAP_OK(CIDR_Parse("2001:db8::/32", &c) == CIDR_OK && c.family == AF_INET6 &&
	    c.prefix == 32 && c.addr[0] == 0x20 && c.addr[3] == 0xb8 && c.addr[4] == 0,
	    "parse 2001:db8::/32");
	TAP_OK(CIDR_Parse("2001:db8::1", &c) == CIDR_OK && c.prefix == 128 &&
	    memcmp(c.addr, v6, 16) == 0, "bare IPv6 address is a /128");
	TAP_OK(CIDR_Parse("::/0", &c) == CIDR_OK && c.family == AF_INET6 &&
	    c.prefix == 0, "parse ::/0");
	TAP_OK(CIDR_Parse("2001:db8:4000::/33", &c) == CIDR_HOST_BITS &&
	    CIDR_Parse("2001:db8:8000::/17", &c) == CIDR_HOST_BITS &&
	    CIDR_Parse("2001:db8:8000::/34", &c) == CIDR_OK && c.prefix == 34,
	    "IPv6 prefix inside a byte");
	TAP_OK(CIDR_Parse("::ffff:198.18.0.0/112", &c) == CIDR_OK &&
	    c.family == AF_INET6, "IPv4-mapped IPv6 network is IPv6");

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&keep, 0xa5, sizeof(keep));
		c = keep;
		TAP_OK(CIDR_Parse(bad[i].s, &c) == bad[i].rc && memcmp(&c, &keep, sizeof(c)) == 0,
		    "reject \"%s\" (%d), output untouched", bad[i].s, bad[i].rc);
	}
}

static void
test_cidr_match(void)
{
	struct cidr c;
	uint8_t z[16] = { 0 };

	TAP_OK(contains("198.18.0.0/15", "198.18.0.0"), "/15 contains its first address");
	TAP_OK(contains("198.18.0.0/15", "198.19.255.255"), "/15 contains its last address");
	TAP_OK(!contains("198.18.0.0/15", "198.17.255.255"), "/15 excludes the address below");
	TAP_OK(!contains("198.18.0.0/15", "198.20.0.0"), "/15 excludes the address above");
	TAP_OK(contains("198.18.3.0/24", "198.18.3.255") && !contains("198.18.3.0/24", "198.18.4.0"),
	    "/24 edges");
	TAP_OK(contains("198.18.3.2/31", "198.18.3.3") && !contains("198.18.3.2/31", "198.18.3.1"),
	    "/31 edges");
	TAP_OK(contains("198.18.3.2", "198.18.3.2") && !contains("198.18.3.2", "198.18.3.3"),
	    "/32 is exactly one address");
	TAP_OK(contains("0.0.0.0/0", "0.0.0.0") && contains("0.0.0.0/0", "255.255.255.255"),
	    "0.0.0.0/0 contains every IPv4 address");
	TAP_OK(contains("128.0.0.0/1", "198.18.0.1") && !contains("128.0.0.0/1", "127.255.255.255"),
	    "/1 edges");
	TAP_OK(contains("2001:db8::/32", "2001:db8::") &&
	    contains("2001:db8::/32", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"),
	    "IPv6 /32 contains its first and last addresses");
	TAP_OK(!contains("2001:db8::/32", "2001:db7:ffff:ffff:ffff:ffff:ffff:ffff") &&
	    !contains("2001:db8::/32", "2001:db9::"), "IPv6 /32 excludes its neighbours");
	TAP_OK(contains("2001:db8:4000::/34", "2001:db8:7fff::1") &&
	    !contains("2001:db8:4000::/34", "2001:db8:8000::"), "IPv6 /34 (inside a byte) edges");
	TAP_OK(contains("2001:db8::1", "2001:db8::1") && !contains("2001:db8::1", "2001:db8::2"),
	    "/128 is exactly one address");
	TAP_OK(contains("::/0", "2001:db8::1") && contains("::/0", "::"),
	    "::/0 contains every IPv6 address");

	/* Families never match across: same bytes, other family. */
	c = net("0.0.0.0/0");
	TAP_OK(!CIDR_Match(&c, AF_INET6, z), "0.0.0.0/0 does not contain ::");
	c = net("::/0");
	TAP_OK(!CIDR_Match(&c, AF_INET, z), ":: /0 does not contain 0.0.0.0");
	TAP_OK(!contains("::ffff:198.18.0.0/112", "198.18.0.1"),
	    "an IPv4-mapped IPv6 network does not contain the IPv4 address");
	c = net("198.18.0.0/15");
	{
		uint8_t a[16] = { 198, 18, 0, 1 };

		TAP_OK(CIDR_Match(&c, AF_INET, a) && !CIDR_Match(&c, AF_INET6, a),
		    "the same bytes match only in the network's family");
	}
}

static void
test_cidr_equal(void)
{
	struct cidr a = net("198.18.3.0/24"), b = net("198.18.3.0/24");

	TAP_OK(CIDR_Equal(&a, &b), "the same network is equal");
	b = net("198.18.3.0/25");
	TAP_OK(!CIDR_Equal(&a, &b), "another prefix is another network");
	b = net("198.18.4.0/24");
	TAP_OK(!CIDR_Equal(&a, &b), "another address is another network");
	a = net("::/0");
	b = net("0.0.0.0/0");
	TAP_OK(!CIDR_Equal(&a, &b), "::/0 and 0.0.0.0/0 differ by family");
}

int
main(void)
{
	test_cidr_parse();
	test_cidr_match();
	test_cidr_equal();
	return tap_done();
}
