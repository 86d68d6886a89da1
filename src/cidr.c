/* IPv4 and IPv6 networks (CIDR notation): parsing and matching. */
#include <arpa/inet.h>
#include <string.h>
#include <sys/socket.h>

#include "cidr.h"

int
CIDR_Parse(const char *s, struct cidr *out)
{
	char buf[INET6_ADDRSTRLEN];
	const char *slash = strchr(s, '/');
	size_t alen = slash ? (size_t)(slash - s) : strlen(s);
	unsigned prefix, maxp, full;
	struct cidr c;

	if (alen == 0 || alen >= sizeof(buf))
		return CIDR_SYNTAX;
	memcpy(buf, s, alen);
	buf[alen] = '\0';
	memset(&c, 0, sizeof(c));
	c.family = memchr(buf, ':', alen) ? AF_INET6 : AF_INET;
	if (inet_pton(c.family, buf, c.addr) != 1)
		return CIDR_SYNTAX;
	maxp = c.family == AF_INET6 ? 128 : 32;
	prefix = maxp;
	if (slash != NULL) {
		const char *d = slash + 1;

		if (*d < '0' || *d > '9')
			return CIDR_SYNTAX;
		for (prefix = 0; *d >= '0' && *d <= '9'; d++)
			if ((prefix = prefix * 10 + (unsigned)(*d - '0')) > 1000)
				prefix = 1000;   /* saturate: still too long, never wraps */
		if (*d != '\0')
			return CIDR_SYNTAX;
		if (prefix > maxp)
			return CIDR_PREFIX;
	}
	c.prefix = (uint8_t)prefix;
	full = prefix / 8;
	if (prefix % 8 && (c.addr[full] & (uint8_t)(0xffu >> (prefix % 8))))
		return CIDR_HOST_BITS;
	for (unsigned i = full + (prefix % 8 ? 1 : 0); i < maxp / 8; i++)
		if (c.addr[i])
			return CIDR_HOST_BITS;
	*out = c;
	return CIDR_OK;
}

int
CIDR_Match(const struct cidr *c, int family, const uint8_t *addr)
{
	unsigned full = c->prefix / 8u, rem = c->prefix % 8u;

	if (c->family != family || full > 16)
		return 0;
	if (memcmp(c->addr, addr, full) != 0)
		return 0;
	return rem == 0 || ((c->addr[full] ^ addr[full]) & (uint8_t)(0xff00u >> rem)) == 0;
}

int
CIDR_Equal(const struct cidr *a, const struct cidr *b)
{
	return a->family == b->family && a->prefix == b->prefix &&
	    memcmp(a->addr, b->addr, sizeof(a->addr)) == 0;
}
