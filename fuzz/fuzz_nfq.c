/* fuzz_nfq: NFQ_ParseBatch (src/nfq.c) on arbitrary bytes taken as one datagram of the NFQUEUE
 * netlink socket: a chain of netlink messages with nfqueue attributes, as the kernel sends them
 * (fuzz/corpus/nfq/ holds such datagrams, built by fuzz/mknfq.py). Every packet message handed
 * back must lie inside the datagram; its payload goes through the packet parser as the receive
 * loop would hand it to the engine. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "nfq.h"
#include "packet.h"

struct seen {
	const uint8_t *lo, *hi;
	uint32_t n;
};

static void
on_msg(const struct nfq_msg *m, void *arg)
{
	struct seen *s = arg;
	struct pkt p;
	volatile uint8_t sum = 0;

	s->n++;
	if (m->payload == NULL) {
		if (m->plen != 0)
			__builtin_trap();
		return;
	}
	if (m->payload < s->lo || m->payload + m->plen > s->hi)
		__builtin_trap();
	for (uint32_t i = 0; i < m->plen; i++)   /* ASan checks these reads too */
		sum ^= m->payload[i];
	(void)sum;
	memset(&p, 0, sizeof(p));
	(void)PKT_Parse(m->payload, m->plen, m->wirelen, &p);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct seen s;
	uint64_t bad = 0;
	void *buf;

	if (size > 1 << 20)
		return 0;
	/* A block of the datagram's length rounded up to 4, the padding zeroed (NFQ_ParseBatch's
	 * contract, as the receive loop's buffer keeps it): ASan sees any read beyond. */
	buf = calloc(1, ((size + 3) & ~(size_t)3) + (size ? 0 : 4));
	if (buf == NULL)
		return 0;
	memcpy(buf, data, size);
	s.lo = buf;
	s.hi = (const uint8_t *)buf + size;
	s.n = 0;
	(void)NFQ_ParseBatch(buf, size, 0, on_msg, &s, &bad);
	(void)NFQ_ParseBatch(buf, size, 1234, on_msg, &s, &bad);   /* a port id to match */
	free(buf);
	return 0;
}
