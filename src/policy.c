/* Verdict policy. Genuine RSTs are never dropped: only a RST judged forged (or, if configured, an
 * invalid one the receiver would ignore anyway) can be, and only toward protected networks. */
#include "cidr.h"
#include "policy.h"

static int
in_nets(const struct cidr *nets, unsigned n, int family, const uint8_t *addr)
{
	for (unsigned i = 0; i < n; i++)
		if (CIDR_Match(&nets[i], family, addr))
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
