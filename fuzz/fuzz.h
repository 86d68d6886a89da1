/* Shared by the fuzz targets of fuzz/ and the replay driver (fuzz/replay.c). Each target defines
 * LLVMFuzzerTestOneInput; built with clang -fsanitize=fuzzer it is a libFuzzer program, linked
 * with replay.c (any compiler, no fuzzer runtime) it replays a corpus. docs/fuzzing.md. */
#ifndef RSTGUARD_FUZZ_H
#define RSTGUARD_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A fresh temporary file holding data[0..size): 0 and its name in path (size >= 64), or -1. The
 * caller unlinks it. */
int fuzz_tmpfile(char *path, size_t pathlen, const char *stem, const void *data, size_t size);

#endif
