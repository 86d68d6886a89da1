/* The NAT alias table (issue 12): on a gateway that translates, the server's answers reach raw
 * PREROUTING with a tuple that is not the reverse of the client's (masquerade: to the gateway's
 * outside address and NAT port). Once a conntrack lookup has told which connection such a tuple
 * belongs to, an alias maps it to the flow of the connection's original tuple, so that the
 * half's later packets join that flow without another lookup. Separate from struct flow:
 * untranslated traffic never touches it, and the flow record keeps its size. Bounded (a full
 * table means no join, never an eviction); one per engine, nothing shared. */
#ifndef RSTGUARD_ALIAS_H
#define RSTGUARD_ALIAS_H

#include <stddef.h>
#include <stdint.h>

/* One translated connection. Addresses as in struct pkt (IPv4 in the first 4 bytes, the rest
 * zero), ports in host order. */
struct alias {
	uint8_t src[16], dst[16];     /* the key: the reply tuple as its packets arrive */
	uint8_t osrc[16], odst[16];   /* the original tuple, as the client sent it */
	uint16_t sport, dport;
	uint16_t osport, odport;
	uint32_t flow_idx;            /* the flow of the original tuple */
	uint32_t flow_start_cs;       /* ... and its first_seen_cs (a reused record does not match) */
	uint32_t ct_id;               /* conntrack id */
	uint32_t status;              /* IPS_* bits */
	uint16_t zone;
	uint8_t family;               /* AF_INET or AF_INET6 */
	uint8_t in_use;
};

struct alias_table;

/* A table of at most cap aliases for a flow table of flows_cap records; seed keys the hash.
 * Returns NULL when cap or flows_cap is 0 or too large, or memory is short. */
struct alias_table *ALIAS_Create(uint32_t cap, uint32_t flows_cap, const uint8_t seed[16]);

/* Free the table (NULL is fine). */
void ALIAS_Destroy(struct alias_table *t);

/* The alias whose key is the tuple src:sport -> dst:dport (directional), or NULL. */
const struct alias *ALIAS_Find(const struct alias_table *t, int family, const uint8_t *src, uint16_t sport,
			       const uint8_t *dst, uint16_t dport);

/* Add a (in_use is set here). An alias already on the same key, or already held by the same
 * flow, is replaced. Returns 1, or 0 when the table is full or a's flow index is out of range. */
int ALIAS_Add(struct alias_table *t, const struct alias *a);

/* The alias of flow flow_idx started at start_cs, or NULL. */
const struct alias *ALIAS_OfFlow(const struct alias_table *t, uint32_t flow_idx, uint32_t start_cs);

/* Remove the alias of flow flow_idx, if any (the flow ends). */
void ALIAS_DropFlow(struct alias_table *t, uint32_t flow_idx);

/* Aliases in use, and the cap. */
uint32_t ALIAS_Count(const struct alias_table *t);
uint32_t ALIAS_Capacity(const struct alias_table *t);

/* Bytes of memory the table holds. */
size_t ALIAS_MemoryBytes(const struct alias_table *t);

#endif
