/* fuzz_offline: the offline reader (OFF_Run, as `rstguard -r FILE`) on the input as a capture
 * file: classic pcap (either byte order, micro- or nanosecond) or pcapng, of any link type the
 * file names, through the engine to the summary. Events go to /dev/null; the summary and the
 * reader's errors go to stderr (run libFuzzer with -close_fd_mask=2 to silence them). */
#include <unistd.h>

#include "config.h"
#include "event.h"
#include "fuzz.h"
#include "log.h"
#include "offline.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config cfg;
	char path[256];

	if (size > 1000000)
		return 0;
	if (fuzz_tmpfile(path, sizeof(path), "rg-fuzz-offline-", data, size) < 0)
		return 0;
	LOG_SetLevel(LOG_LVL_ERR);
	CFG_SetDefaults(&cfg);
	cfg.flows_max = 1024;      /* the default's table (262144 flows) would dominate each run */
	if (EV_Initialise("/dev/null", 1000000000u, 1000000000u) == 0)
		(void)OFF_Run(&cfg, path, (size & 1) ? SUMMARY_JSON : SUMMARY_TEXT);
	EV_SetSynchronous(0);
	EV_Finalise();
	CFG_Free(&cfg);
	unlink(path);
	return 0;
}
