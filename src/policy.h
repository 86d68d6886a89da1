/* The verdict policy: detection-only never changes a verdict; enforce drops what the policy says. */
#ifndef RSTGUARD_POLICY_H
#define RSTGUARD_POLICY_H

#include "config.h"
#include "rst.h"

enum rg_verdict { RG_ACCEPT = 0, RG_DROP = 1 };

/* What enforce mode would do with this RST (independent of the configured mode). */
enum rg_verdict POLICY_WouldDo(const struct config *cfg, const struct rst_result *r);

/* The verdict to give: POLICY_WouldDo in enforce mode, always RG_ACCEPT in detect mode. */
enum rg_verdict POLICY_Decide(const struct config *cfg, const struct rst_result *r);

/* "accept" or "drop". */
const char *POLICY_VerdictName(enum rg_verdict v);

#endif
