/* Dropping root: a daemon started as root with `user` set runs as that user, keeping only the
 * two capabilities it uses for its whole life: CAP_NET_ADMIN (nfnetlink checks it on every
 * verdict message, and conntrack lookups need it) and CAP_NET_RAW (probes go out through raw
 * sockets opened when first needed). */
#ifndef RSTGUARD_PRIVDROP_H
#define RSTGUARD_PRIVDROP_H

#include <sys/types.h>

/* Look user up. Returns 0 with its uid and primary gid, or -1 (logged). */
int PRIV_Lookup(const char *user, uid_t *uid, gid_t *gid);

/* Become uid/gid (no supplementary groups) with only CAP_NET_ADMIN and CAP_NET_RAW, effective
 * and permitted, and an empty bounding set. Capabilities are per thread: call it before any
 * other thread starts. Returns 0, or -1 (logged). */
int PRIV_Drop(uid_t uid, gid_t gid);

#endif
