/* fuzz_control: a control socket request line, as a client sends it: the strict request parser
 * (CTLREQ_Parse) and the dispatch that answers it (CTL_HandleLine, with no daemon behind it:
 * status and stats answer from empty counters, reload and metrics say they are unavailable,
 * flows and timeouts stop at their validated query).
 *
 * Input: the bytes of one request (without its newline; any bytes, NULs included). */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "control.h"
#include "ctlreq.h"
#include "fuzz.h"
#include "json.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char buf[1u << 16];
	struct ctlreq r;
	const char *err = NULL;
	struct json j;
	size_t n;
	int rc;

	if (size > CTL_REQUEST_MAX)
		return 0;   /* the socket refuses longer lines before parsing */
	rc = CTLREQ_Parse((const char *)data, size, &r, &err);
	if (rc == 0) {
		assert(r.n <= CTLREQ_MAX_MEMBERS);
		for (unsigned i = 0; i < r.n; i++) {
			assert(strlen(r.m[i].key) < CTLREQ_MAX_KEY);
			assert(r.m[i].type != CTLREQ_STRING || strlen(r.m[i].str) < CTLREQ_MAX_STRING);
			assert(r.m[i].type != CTLREQ_BOOL || r.m[i].num == 0 || r.m[i].num == 1);
			for (unsigned k = 0; k < i; k++)
				assert(strcmp(r.m[i].key, r.m[k].key) != 0);
			assert(CTLREQ_Get(&r, r.m[i].key) == &r.m[i]);
		}
	} else {
		assert(rc == -1 && err != NULL && r.n == 0);
	}

	JSON_Init(&j, buf, sizeof(buf));
	rc = CTL_HandleLine((const char *)data, size, &j);
	n = JSON_Finish(&j);
	if (rc == 1) {
		/* A flows or timeouts query: only a valid request gets there. */
		const struct ctlreq_member *cmd;

		assert(CTLREQ_Parse((const char *)data, size, &r, &err) == 0);
		cmd = CTLREQ_Get(&r, "command");
		assert(cmd && (strcmp(cmd->str, "flows") == 0 || strcmp(cmd->str, "timeouts") == 0));
	} else {
		/* One answer line, {"ok":...}, nothing after its newline. */
		assert(rc == 0 && n > 8 && n < sizeof(buf));
		assert(memcmp(buf, "{\"ok\":", 6) == 0);
		assert(buf[n - 1] == '\n' && buf[n - 2] == '}');
		assert(memchr(buf, '\n', n - 1) == NULL);
	}
	return 0;
}
