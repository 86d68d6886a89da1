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

/* Find the IP header in a link-layer frame: returns its offset and sets *is_ip, or returns -1
 * for frames that carry no IPv4/IPv6 packet. Handles Ethernet with 802.1Q/802.1ad tags, Linux
 * cooked captures (SLL, SLL2), raw IP and the BSD loopback header. */
int OFF_IpOffset(int linktype, const unsigned char *frame, unsigned caplen);

/* Is the link type one OFF_IpOffset understands? */
int OFF_LinkTypeSupported(int linktype);

#endif
