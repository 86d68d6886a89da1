/* The verdict policy: detection-only never changes a verdict; enforce drops what the policy says. */
#ifndef RSTGUARD_POLICY_H
#define RSTGUARD_POLICY_H

#include <stdint.h>

#include "config.h"
#include "packet.h"
#include "rst.h"

/* RG_HOLD: the verdict comes later (enforce mode holding a suspicious RST). */
enum rg_verdict { RG_ACCEPT = 0, RG_DROP = 1, RG_HOLD = 2 };

/* What enforce mode would do with this RST (independent of the configured mode): RG_DROP only
 * when the action for its cause is "drop" (only injected and invalid_seq can have one; injected
 * also needs r->forged), its destination is inside policy.protect (or that list is empty), and
 * neither its addresses nor its ports are exempt. No allocation, no system call. */
enum rg_verdict POLICY_WouldDo(const struct config *cfg, const struct pkt *p, const struct rst_result *r);

/* The verdict to give: POLICY_WouldDo in enforce mode, always RG_ACCEPT in detect mode. */
enum rg_verdict POLICY_Decide(const struct config *cfg, const struct pkt *p, const struct rst_result *r);

/* Would a forged RST toward p's destination be dropped (protected, not exempt)? Only such RSTs
 * are worth holding for judgement. */
int POLICY_Protects(const struct config *cfg, const struct pkt *p);

/* "accept" or "drop". */
const char *POLICY_VerdictName(enum rg_verdict v);

#endif
