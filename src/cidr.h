/* IPv4 and IPv6 networks: parsing "198.18.0.0/15" or "2001:db8::/32", and matching an address.
 * Used by the configuration (policy.protect, policy.exempt, eviction.overrides) and the policy. */
#ifndef RSTGUARD_CIDR_H
#define RSTGUARD_CIDR_H

#include <stdint.h>

/* An IPv4 or IPv6 network. */
struct cidr {
	uint8_t family;            /* AF_INET or AF_INET6 */
	uint8_t prefix;            /* 0..32 or 0..128 */
	uint8_t addr[16];          /* network address, host bits zero; IPv4 in the first 4 bytes */
};

/* Results of CIDR_Parse. */
#define CIDR_OK 0
#define CIDR_SYNTAX (-1)     /* not an IPv4 or IPv6 address, or a bad "/prefix" */
#define CIDR_PREFIX (-2)     /* prefix longer than 32 (IPv4) or 128 (IPv6) */
#define CIDR_HOST_BITS (-3)  /* the address has bits set beyond the prefix */

/* Parse "198.18.0.0/15", "2001:db8::/32" or a bare address (a /32 or /128) into *out. Returns
 * CIDR_OK, or one of the errors above with *out untouched. No allocation. */
int CIDR_Parse(const char *s, struct cidr *out);

/* Is addr (16 bytes, IPv4 in the first 4 as in struct pkt) of family (AF_INET, AF_INET6) inside
 * network c? Never across families. */
int CIDR_Match(const struct cidr *c, int family, const uint8_t *addr);

/* Are a and b the same network (family, prefix and address)? */
int CIDR_Equal(const struct cidr *a, const struct cidr *b);

#endif
