/* fuzz_packet: PKT_Parse on arbitrary bytes, as an IP packet (its caplen the input's length and
 * its wire length either unknown or taken from the first two bytes), and the parsed result used
 * the way the engine uses it (payload bytes read, addresses formatted). */
#include <string.h>
#include <sys/socket.h>

#include "fuzz.h"
#include "packet.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pkt p;
	uint32_t wirelen = 0;
	char buf[64];
	enum pkt_kind k;

	if (size > 70000)
		return 0;
	if (size >= 2 && (data[0] & 0x80) == 0)
		wirelen = 0;  /* unknown: taken as caplen */
	else if (size >= 2)
		wirelen = (uint32_t)size + data[1];   /* cut by a snap length */

	memset(&p, 0, sizeof(p));
	k = PKT_Parse(data, (uint32_t)size, wirelen, &p);
	if (k >= PKT_KIND_MAX || PKT_KindName(k) == NULL)
		__builtin_trap();
	if (k == PKT_TCP) {
		volatile uint8_t sum = 0;

		/* The payload must lie inside the input: ASan checks these reads. */
		if (p.payload_caplen > p.payload_len)
			__builtin_trap();
		for (uint32_t i = 0; i < p.payload_caplen; i++)
			sum ^= p.payload[i];
		(void)sum;
		if (p.family != AF_INET && p.family != AF_INET6)
			__builtin_trap();
		PKT_FormatAddr(p.family, p.src, buf, sizeof(buf));
		PKT_FormatAddr(p.family, p.dst, buf, sizeof(buf));
	}
	return 0;
}
