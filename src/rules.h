/* The queue rules: printed for the administrator (--print-rules), or added by rstguard itself in
 * a chain of its own at start and removed at exit (--install-rules, rules.install). */
#ifndef RSTGUARD_RULES_H
#define RSTGUARD_RULES_H

#include <stdio.h>

#include "config.h"

/* The chain rstguard owns, in the raw table of iptables and ip6tables. */
#define RULES_CHAIN "RSTGUARD"

/* Print the queue rules for the configured queues in iptables, ip6tables and nft syntax, without
 * and with the fast path (pin: the pinned selector program's path; NULL prints only the form
 * without it). Every rule carries --queue-bypass (nft: bypass). */
void RULES_Print(const struct config *cfg, const char *pin, FILE *out);

/* Add the queue rules (IPv4 and IPv6) in chain RSTGUARD of the raw table, jumped to from the
 * top of PREROUTING; a stale chain of a previous run is replaced. pin: the selector program to
 * match with (-m bpf --object-pinned), or NULL to queue every TCP packet. Runs the iptables
 * binaries with a fixed argument list (no shell). Returns 0, or -1 (logged; what was added is
 * removed again). */
int RULES_Install(const struct config *cfg, const char *pin);

/* Remove what RULES_Install added (the jump, then the chain), both families; quiet when there
 * is nothing to remove. */
void RULES_Remove(void);

#endif
