/* Offline analysis: the inline engine run over a capture file (pcap or pcapng), with timers on
 * packet timestamps so that results are reproducible, and a summary at the end. */
#ifndef RSTGUARD_OFFLINE_H
#define RSTGUARD_OFFLINE_H

#include "config.h"

enum summary_format { SUMMARY_TEXT = 0, SUMMARY_JSON = 1 };

/* Read path ("-" for standard input) through the engine with cfg; events go where cfg says.
 * Prints the summary to stderr. Returns 0, or 1 on an unreadable or damaged capture (the error
 * names the packet number). */
int OFF_Run(const struct config *cfg, const char *path, enum summary_format fmt);

#endif
