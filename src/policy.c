/* Verdict policy. Genuine RSTs are never dropped: only a RST judged forged (or, if configured, an
 * invalid one the receiver would ignore anyway) can be, and only toward protected networks. */
#include <arpa/inet.h>
#include <string.h>
#include <sys/socket.h>

#include "policy.h"

int
POLICY_CidrParse(const char *s, struct cidr *out)
{
	char buf[INET6_ADDRSTRLEN];
	const char *slash = strchr(s, '/');
	size_t alen = slash ? (size_t)(slash - s) : strlen(s);
	unsigned prefix, maxp, full;
	struct cidr c;

	if (alen == 0 || alen >= sizeof(buf))
		return POLICY_CIDR_SYNTAX;
	memcpy(buf, s, alen);
	buf[alen] = '\0';
	memset(&c, 0, sizeof(c));
	c.family = memchr(buf, ':', alen) ? AF_INET6 : AF_INET;
	if (inet_pton(c.family, buf, c.addr) != 1)
		return POLICY_CIDR_SYNTAX;
	maxp = c.family == AF_INET6 ? 128 : 32;
	prefix = maxp;
	if (slash != NULL) {
		const char *d = slash + 1;

		if (*d < '0' || *d > '9')
			return POLICY_CIDR_SYNTAX;
		for (prefix = 0; *d >= '0' && *d <= '9'; d++)
			if ((prefix = prefix * 10 + (unsigned)(*d - '0')) > 1000)
				prefix = 1000;   /* saturate: still too long, never wraps */
		if (*d != '\0')
			return POLICY_CIDR_SYNTAX;
		if (prefix > maxp)
			return POLICY_CIDR_PREFIX;
	}
	c.prefix = (uint8_t)prefix;
	full = prefix / 8;
	if (prefix % 8 && (c.addr[full] & (uint8_t)(0xffu >> (prefix % 8))))
		return POLICY_CIDR_HOST_BITS;
	for (unsigned i = full + (prefix % 8 ? 1 : 0); i < maxp / 8; i++)
		if (c.addr[i])
			return POLICY_CIDR_HOST_BITS;
	*out = c;
	return POLICY_CIDR_OK;
}

int
POLICY_CidrMatch(const struct cidr *c, int family, const uint8_t *addr)
{
	unsigned full = c->prefix / 8u, rem = c->prefix % 8u;

	if (c->family != family || full > 16)
		return 0;
	if (memcmp(c->addr, addr, full) != 0)
		return 0;
	return rem == 0 || ((c->addr[full] ^ addr[full]) & (uint8_t)(0xff00u >> rem)) == 0;
}

static int
in_nets(const struct cidr *nets, unsigned n, int family, const uint8_t *addr)
{
	for (unsigned i = 0; i < n; i++)
		if (POLICY_CidrMatch(&nets[i], family, addr))
			return 1;
	return 0;
}

static int
in_ports(const uint16_t *ports, unsigned n, uint16_t port)
{
	for (unsigned i = 0; i < n; i++)
		if (ports[i] == port)
			return 1;
	return 0;
}

enum rg_verdict
POLICY_WouldDo(const struct config *cfg, const struct pkt *p, const struct rst_result *r)
{
	const struct config_policy *pol = &cfg->policy;
	int drop;

	switch (r->cause) {
	case RST_CAUSE_INJECTED:
		drop = pol->drop_injected && r->forged;
		break;
	case RST_CAUSE_INVALID_SEQ:
		drop = pol->drop_invalid_seq;
		break;
	default:
		/* Genuine, an eviction (dropping it only makes the client hang), or untracked. */
		drop = 0;
		break;
	}
	if (!drop)
		return RG_ACCEPT;
	/* The destination is the host the RST would reset. */
	if (pol->n_protect > 0 && !in_nets(pol->protect, pol->n_protect, p->family, p->dst))
		return RG_ACCEPT;
	if (in_nets(pol->exempt, pol->n_exempt, p->family, p->src) ||
	    in_nets(pol->exempt, pol->n_exempt, p->family, p->dst))
		return RG_ACCEPT;
	if (in_ports(pol->exempt_ports, pol->n_exempt_ports, p->sport) ||
	    in_ports(pol->exempt_ports, pol->n_exempt_ports, p->dport))
		return RG_ACCEPT;
	return RG_DROP;
}

enum rg_verdict
POLICY_Decide(const struct config *cfg, const struct pkt *p, const struct rst_result *r)
{
	if (cfg->mode != RG_MODE_ENFORCE)
		return RG_ACCEPT;
	return POLICY_WouldDo(cfg, p, r);
}

int
POLICY_Protects(const struct config *cfg, const struct pkt *p)
{
	struct rst_result forged = { .cause = RST_CAUSE_INJECTED, .forged = 1 };

	return POLICY_WouldDo(cfg, p, &forged) == RG_DROP;
}

const char *
POLICY_VerdictName(enum rg_verdict v)
{
	return v == RG_DROP ? "drop" : "accept";
}
