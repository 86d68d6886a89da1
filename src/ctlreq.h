/* Control requests: one JSON object per line, flat (string, integer and boolean members only),
 * parsed strictly and within fixed bounds, because anyone allowed on the socket can send
 * anything. */
#ifndef RSTGUARD_CTLREQ_H
#define RSTGUARD_CTLREQ_H

#include <stddef.h>

#define CTLREQ_MAX_MEMBERS 8
#define CTLREQ_MAX_KEY 32      /* bytes, with the NUL */
#define CTLREQ_MAX_STRING 256  /* bytes, with the NUL */

enum ctlreq_type { CTLREQ_STRING, CTLREQ_NUMBER, CTLREQ_BOOL };

struct ctlreq_member {
	char key[CTLREQ_MAX_KEY];
	enum ctlreq_type type;
	char str[CTLREQ_MAX_STRING];   /* CTLREQ_STRING (no NUL inside: \u0000 is refused) */
	long long num;                 /* CTLREQ_NUMBER (an integer), CTLREQ_BOOL (0 or 1) */
};

struct ctlreq {
	struct ctlreq_member m[CTLREQ_MAX_MEMBERS];
	unsigned n;
};

/* Parse one request of len bytes (no NUL needed; surrounding blanks allowed). Returns 0, or -1
 * with *err naming what was wrong (a static string). Keys are unique. */
int CTLREQ_Parse(const char *buf, size_t len, struct ctlreq *r, const char **err);

/* The member named key, or NULL. */
const struct ctlreq_member *CTLREQ_Get(const struct ctlreq *r, const char *key);

#endif
