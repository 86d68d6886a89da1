/* Verdict policy. Genuine RSTs are never dropped: only a RST judged forged can be. */
#include "policy.h"

enum rg_verdict
POLICY_WouldDo(const struct config *cfg, const struct rst_result *r)
{
	(void)cfg;
	if (r->forged && r->cause == RST_CAUSE_INJECTED)
		return RG_DROP;
	return RG_ACCEPT;
}

enum rg_verdict
POLICY_Decide(const struct config *cfg, const struct rst_result *r)
{
	if (cfg->mode != RG_MODE_ENFORCE)
		return RG_ACCEPT;
	return POLICY_WouldDo(cfg, r);
}

const char *
POLICY_VerdictName(enum rg_verdict v)
{
	return v == RG_DROP ? "drop" : "accept";
}
