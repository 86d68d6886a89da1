/* fuzz_config: CFG_Load on the input as a configuration file, with a second file it may
 * @include, then the cross-field checks, a copy and a diff as a reload makes them.
 *
 * Input: the main file's text, optionally followed by "\n%%\n" and the included file's text.
 * Every "@@" in the main text is replaced by the included file's path, so
 *   @include "@@"
 * includes it (and the included text may include itself through "@@" too: a cycle the loader
 * must refuse). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "fuzz.h"
#include "log.h"

static const char SEP[] = "\n%%\n";

/* libconfig 1.5 (Debian 1.5-0.4) leaks the string token a syntax error follows (`x = 1; y "s"`,
 * `e ""`): its grammar has no destructor for values dropped by error recovery. Reproduced with
 * libconfig alone (config_read_file, config_destroy); not rstguard's to fix, and rstguard keeps
 * nothing libconfig allocates past config_destroy, so LeakSanitizer is told to ignore allocations
 * made inside libconfig (the inputs: fuzz/corpus/config/leak-libconfig-*). */
const char *__lsan_default_suppressions(void);
const char *
__lsan_default_suppressions(void)
{
	return "leak:libconfig.so\n";
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config cfg, copy, def;
	struct config_errors errs = { 0 };
	char main_path[256], inc_path[256];
	const uint8_t *sep = NULL;
	size_t main_len = size, inc_len = 0, plen, n = 0;
	char *text;

	if (size > 100000)
		return 0;
	for (size_t i = 0; i + sizeof(SEP) - 1 <= size; i++)
		if (memcmp(data + i, SEP, sizeof(SEP) - 1) == 0) {
			sep = data + i;
			break;
		}
	if (sep) {
		main_len = (size_t)(sep - data);
		inc_len = size - main_len - (sizeof(SEP) - 1);
	}
	if (fuzz_tmpfile(inc_path, sizeof(inc_path), "rg-fuzz-inc-", sep ? sep + sizeof(SEP) - 1 : data,
	    inc_len) < 0)
		return 0;
	/* The main text with each "@@" replaced by the included file's path. */
	plen = strlen(inc_path);
	text = malloc(main_len * (plen / 2 + 1) + 1);
	if (text == NULL) {
		unlink(inc_path);
		return 0;
	}
	for (size_t i = 0; i < main_len; i++) {
		if (i + 1 < main_len && data[i] == '@' && data[i + 1] == '@') {
			memcpy(text + n, inc_path, plen);
			n += plen;
			i++;
		} else {
			text[n++] = (char)data[i];
		}
	}
	if (fuzz_tmpfile(main_path, sizeof(main_path), "rg-fuzz-conf-", text, n) < 0) {
		free(text);
		unlink(inc_path);
		return 0;
	}
	free(text);

	LOG_SetLevel(LOG_LVL_ERR);
	if (CFG_Load(&cfg, main_path, &errs) == 0) {
		(void)CFG_Validate(&cfg, &errs);
		CFG_Copy(&copy, &cfg);
		if (CFG_Diff(&cfg, &copy) != NULL)
			__builtin_trap();   /* a copy differs from its original */
		CFG_SetDefaults(&def);
		(void)CFG_Diff(&def, &cfg);
		(void)CFG_KeepRestartOnly(&copy, &def);
		CFG_Free(&def);
		CFG_Free(&copy);
	}
	/* Every error names a file and a message (the daemon prints them). */
	for (size_t i = 0; i < errs.count; i++)
		if (errs.items[i].message == NULL)
			__builtin_trap();
	CFG_Free(&cfg);
	CFG_FreeErrors(&errs);
	unlink(main_path);
	unlink(inc_path);
	return 0;
}
