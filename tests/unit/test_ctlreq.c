/* The control request parser: what it accepts, and that it refuses the rest with a reason. */
#include <string.h>

#include "../../src/ctlreq.h"
#include "tap.h"

static int
parses(const char *s, struct ctlreq *r)
{
	const char *err = NULL;

	return CTLREQ_Parse(s, strlen(s), r, &err) == 0 && err == NULL;
}

static int
refused(const char *s)
{
	struct ctlreq r;
	const char *err = NULL;

	return CTLREQ_Parse(s, strlen(s), &r, &err) == -1 && err != NULL && r.n == 0;
}

int
main(void)
{
	struct ctlreq r;
	const struct ctlreq_member *m;
	char big[600];
	static const char *bad[] = {
		"", "   ", "[]", "\"command\"", "{", "{\"command\"}", "{\"command\":}",
		"{\"command\":\"stats\",}", "{\"command\":\"stats\"} x", "{\"command\":\"stats\"}{}",
		"{'command':'stats'}", "{command:\"stats\"}", "{\"a\":{}}", "{\"a\":[1]}", "{\"a\":null}",
		"{\"a\":1.5}", "{\"a\":1e3}", "{\"a\":01}", "{\"a\":-}", "{\"a\":1234567890123456789}",
		"{\"a\":tru}", "{\"a\":\"\\x\"}", "{\"a\":\"\\u0000\"}", "{\"a\":\"\\u00e9\"}",
		"{\"a\":\"\\u12\"}", "{\"a\":\"x\ty\"}", "{\"a\":1,\"a\":2}", "{\"a\" 1}", "{\"a\":\"unterminated}",
		"{\"a\":1 \"b\":2}",
	};

	TAP_OK(parses("{\"command\":\"stats\"}", &r) && r.n == 1, "a plain request");
	m = CTLREQ_Get(&r, "command");
	TAP_OK(m && m->type == CTLREQ_STRING && strcmp(m->str, "stats") == 0, "its command member");
	TAP_OK(parses(" \t{ }\r\n", &r) && r.n == 0, "an empty object with blanks around");
	TAP_OK(parses("{\"command\":\"flows\", \"ip\":\"198.18.0.1\", \"port\":443, \"limit\":-0, \"all\":true, \"x\":false}", &r) &&
	       r.n == 6, "several members of every type");
	m = CTLREQ_Get(&r, "port");
	TAP_OK(m && m->type == CTLREQ_NUMBER && m->num == 443, "an integer");
	m = CTLREQ_Get(&r, "all");
	TAP_OK(m && m->type == CTLREQ_BOOL && m->num == 1, "true");
	m = CTLREQ_Get(&r, "x");
	TAP_OK(m && m->type == CTLREQ_BOOL && m->num == 0, "false");
	TAP_OK(CTLREQ_Get(&r, "nope") == NULL, "a missing member");
	TAP_OK(parses("{\"s\":\"a\\\"b\\\\c\\/d\\n\\u0041\"}", &r) && strcmp(r.m[0].str, "a\"b\\c/d\nA") == 0,
	       "escapes are decoded");
	TAP_OK(parses("{\"n\":-123456789012345678}", &r) && r.m[0].num == -123456789012345678LL, "18 digits");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		TAP_OK(refused(bad[i]), "refused: %s", bad[i]);
	TAP_OK(refused("{\"a\":1,\"b\":2,\"c\":3,\"d\":4,\"e\":5,\"f\":6,\"g\":7,\"h\":8,\"i\":9}"), "nine members");
	TAP_OK(parses("{\"a\":1,\"b\":2,\"c\":3,\"d\":4,\"e\":5,\"f\":6,\"g\":7,\"h\":8}", &r) && r.n == 8, "eight members");
	memset(big, 'k', sizeof(big));
	memcpy(big, "{\"", 2);
	memcpy(big + 2 + 31, "\":1}", 5);
	TAP_OK(parses(big, &r), "a 31-byte key");
	memset(big, 'k', sizeof(big));
	memcpy(big, "{\"", 2);
	memcpy(big + 2 + 32, "\":1}", 5);
	TAP_OK(refused(big), "a 32-byte key");
	memset(big, 'v', sizeof(big));
	memcpy(big, "{\"a\":\"", 6);
	memcpy(big + 6 + 256, "\"}", 3);
	TAP_OK(refused(big), "a 256-byte string");
	big[6 + 255] = '"';
	big[6 + 256] = '}';
	big[6 + 257] = '\0';
	TAP_OK(parses(big, &r) && strlen(r.m[0].str) == 255, "a 255-byte string");
	/* Bytes are counted, not NUL-terminated: a NUL inside the buffer is an error. */
	{
		const char with_nul[] = "{\"a\":1}\0";
		const char *err = NULL;

		TAP_OK(CTLREQ_Parse(with_nul, sizeof(with_nul), &r, &err) == -1, "a NUL after the object");
		TAP_OK(CTLREQ_Parse(with_nul, 4, &r, &err) == -1, "a truncated buffer");
	}
	return tap_done();
}
