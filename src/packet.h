/* Bounds-checked parsing of IPv4/IPv6 + TCP headers. Packet bytes are hostile input. */
#ifndef RSTGUARD_PACKET_H
#define RSTGUARD_PACKET_H

#include <stdint.h>

/* TCP flag bits as on the wire. */
#define TCPF_FIN 0x01
#define TCPF_SYN 0x02
#define TCPF_RST 0x04
#define TCPF_PSH 0x08
#define TCPF_ACK 0x10
#define TCPF_URG 0x20
#define TCPF_ECE 0x40
#define TCPF_CWR 0x80

/* What the parser made of a packet. Only PKT_TCP packets are tracked; the rest are accepted
 * and counted under their kind. */
enum pkt_kind {
	PKT_TCP = 0,
	PKT_NOT_TCP,       /* another transport protocol (or ICMP) */
	PKT_FRAGMENT,      /* IPv4/IPv6 fragment: no reliable TCP header */
	PKT_TRUNCATED,     /* headers cut short (capture or packet) */
	PKT_MALFORMED,     /* inconsistent lengths, bad IHL / data offset, bad version */
	PKT_KIND_MAX
};

/* Parsed TCP option values; flags say which were present. */
#define TCPOPT_HAS_MSS    0x01
#define TCPOPT_HAS_WSCALE 0x02
#define TCPOPT_HAS_SACKOK 0x04
#define TCPOPT_HAS_TS     0x08
#define TCPOPT_HAS_SACK   0x10
#define TCPOPT_HAS_MD5    0x20  /* TCP-MD5 (19) */
#define TCPOPT_HAS_AO     0x40  /* TCP-AO (29) */
#define TCPOPT_BAD        0x80  /* option list malformed (length runs past the header) */

struct pkt {
	/* network layer */
	uint8_t family;            /* AF_INET or AF_INET6 */
	uint8_t ttl;               /* TTL or hop limit */
	uint8_t tos;               /* TOS / traffic class */
	uint8_t df;                /* IPv4 DF bit (IPv6: 1, never fragmented en route) */
	uint16_t ipid;             /* IPv4 identification (IPv6: 0) */
	uint8_t src[16];           /* IPv4 addresses use the first 4 bytes, the rest zero */
	uint8_t dst[16];
	uint16_t l3_len;           /* IP header length including IPv6 extension headers */
	uint32_t ip_len;           /* IP datagram length on the wire (from the header, or wire length) */

	/* transport */
	uint16_t sport, dport;     /* host order */
	uint32_t seq, ack;         /* host order */
	uint8_t flags;             /* TCPF_* */
	uint8_t doff;              /* TCP header length in bytes */
	uint16_t win;              /* raw 16-bit window, unscaled */
	uint32_t payload_len;      /* TCP payload bytes on the wire (not only what was captured) */
	const uint8_t *payload;    /* captured part of the payload (may be shorter than payload_len) */
	uint32_t payload_caplen;   /* bytes of payload available at *payload */

	/* options */
	uint8_t opts;              /* TCPOPT_HAS_* */
	uint8_t wscale;
	uint16_t mss;
	uint32_t tsval, tsecr;
};

/* Parse an IP packet (starting at the IP header). caplen is the number of bytes available at
 * data; wirelen the packet's real length (>= caplen; 0 if unknown, taken as caplen). Returns the
 * kind; p is fully filled only for PKT_TCP. Never reads outside data[0..caplen). */
enum pkt_kind PKT_Parse(const uint8_t *data, uint32_t caplen, uint32_t wirelen, struct pkt *p);

/* Name of a kind for counters ("tcp", "not_tcp", "fragment", "truncated", "malformed"). */
const char *PKT_KindName(enum pkt_kind kind);

/* Format p's address (src or dst) into buf (at least 46 bytes). */
void PKT_FormatAddr(int family, const uint8_t *addr, char *buf, unsigned buflen);

#endif
