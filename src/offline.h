/* Offline analysis: the inline engine run over a capture file (pcap or pcapng), with timers on
 * packet timestamps so that results are reproducible, and a summary at the end. */
#ifndef RSTGUARD_OFFLINE_H
#define RSTGUARD_OFFLINE_H

#include <stdint.h>

#include "config.h"

enum summary_format { SUMMARY_TEXT = 0, SUMMARY_JSON = 1 };

/* Read path ("-" for standard input) through the engine with cfg; events go where cfg says.
 * Prints the summary to stderr. Returns 0, or 1 on an unreadable or damaged capture (the error
 * names the packet number). */
int OFF_Run(const struct config *cfg, const char *path, enum summary_format fmt);

/* The IP packet a link-layer frame carries, and its captured and wire lengths. */
struct off_ip {
	const unsigned char *data;
	unsigned caplen;
	unsigned wirelen;
	uint64_t ts_ns;            /* the packet's own time, when the link layer has it (NFLOG) */
};

/* Find the IP packet in a link-layer frame of caplen captured bytes (wirelen on the wire): fill
 * *ip and return 0, or return -1 for a frame that carries no IPv4/IPv6 packet, or whose link
 * header is damaged; never reads outside f[0..caplen). Handles Ethernet with 802.1Q/802.1ad tags
 * and PPPoE sessions, Linux cooked captures (SLL, SLL2), raw IP, the BSD loopback header, NFLOG
 * (swapped: its TLV headers are in the other byte order), PPP (bare, HDLC-like framing, Cisco
 * HDLC) and PPPoE. */
int OFF_IpFrame(int linktype, const unsigned char *f, unsigned caplen, unsigned wirelen, int swapped,
		struct off_ip *ip);

/* Is the link type one OFF_IpFrame understands? */
int OFF_LinkTypeSupported(int linktype);

#endif
