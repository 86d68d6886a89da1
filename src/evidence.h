/* Evidence captures: a bounded ring of each engine's recent packets (headers plus the first
 * bytes of payload), and, when a RST is called forged (or an eviction is detected), a small pcap
 * of that flow's packets from the ring written into evidence.dir. The directory is shared by
 * every engine: a size cap (oldest files removed first) and a rate limit bound the disk work. */
#ifndef RSTGUARD_EVIDENCE_H
#define RSTGUARD_EVIDENCE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Room for a capture's path: evidence.dir, '/', and the file name. */
#define EVD_PATH_MAX 1200

/* Files of our own naming kept track of (the size cap removes the oldest); beyond this many,
 * the oldest go too. */
#define EVD_MAX_FILES 8192

/* What a capture is about: its name ends in it. */
enum evd_kind { EVD_RST = 0, EVD_EVICTION, EVD_KIND_MAX };

/* One engine's ring: slots of snaplen bytes, written round and round. */
struct evd_slot {
	uint64_t real_ns;          /* wall-clock time of the packet */
	uint32_t wirelen;          /* its length on the wire */
	uint32_t caplen;           /* bytes kept (<= snaplen) */
};

struct evd_ring {
	struct evd_slot *slot;
	uint8_t *data;             /* cap x snaplen */
	uint32_t cap, snaplen;
	uint64_t head;             /* packets recorded so far */
	uint32_t next;             /* the slot the next one goes to (head % cap, without a division) */
	uint8_t *scratch;          /* the capture file is assembled here, then written out */
	size_t scratch_len;
	/* counters (this engine's share) */
	uint64_t written, skipped, errors, removed_bytes;
};

/* Counters of the evidence captures, over every engine. */
struct evd_stats {
	uint64_t written;          /* capture files written */
	uint64_t skipped;          /* not written: evidence.rate exhausted, or larger than the cap */
	uint64_t errors;           /* files lost to write errors (a full disk) */
	uint64_t removed_bytes;    /* bytes of old captures removed to keep under evidence.max_bytes */
};

/* Open (creating it 0750 if missing, never through a symlink) the evidence directory dir for
 * the whole process, take stock of the captures of our naming already there and remove the
 * oldest beyond max_bytes. rate: capture files per second at most. Returns 0, or -1 (logged). */
int EVD_Open(const char *dir, uint64_t max_bytes, uint32_t rate);

/* Close the directory (after every engine is gone). */
void EVD_Close(void);

/* Is the directory open (evidence captures on)? */
int EVD_Enabled(void);

/* A ring of packets slots of snaplen bytes each, allocated once; NULL if out of memory. */
struct evd_ring *EVD_CreateRing(uint32_t packets, uint32_t snaplen);

/* Free a ring (NULL is fine). */
void EVD_DestroyRing(struct evd_ring *r);

/* Keep a copy of one IP packet (at most snaplen bytes of it): a memcpy, no allocation, no
 * system call. */
static inline void
EVD_Record(struct evd_ring *r, const uint8_t *data, uint32_t caplen, uint32_t wirelen, uint64_t real_ns)
{
	uint32_t i = r->next;
	uint32_t n = caplen < r->snaplen ? caplen : r->snaplen;

	r->next = i + 1 == r->cap ? 0 : i + 1;
	r->head++;
	r->slot[i].real_ns = real_ns;
	r->slot[i].wirelen = wirelen > caplen ? wirelen : caplen;
	r->slot[i].caplen = n;
	memcpy(r->data + (size_t)i * r->snaplen, data, n);
}

/* The flow a capture is about: its two endpoints (either order), addresses as in struct pkt. */
struct evd_flow {
	int family;                /* AF_INET or AF_INET6 */
	const uint8_t *a, *b;      /* 16 bytes each, IPv4 in the first 4 */
	uint16_t aport, bport;
	uint64_t flow_id;          /* names the file */
	uint64_t real_ns;          /* the event's time: names the file */
};

/* Write the capture of flow fl from ring r: its packets in the ring since its latest SYN (all
 * of them if no SYN is left), in a classic pcap (LINKTYPE_RAW, snaplen recorded). mono_ns is
 * the engine's clock for the rate limit. Returns 0 and the file's path in path (pathlen bytes),
 * or -1 (nothing written: off, rate-limited, no packet, too big, or an error; counted). */
int EVD_Capture(struct evd_ring *r, const struct evd_flow *fl, enum evd_kind kind, uint64_t mono_ns, char *path,
		size_t pathlen);

/* Add ring r's counters to st (r may be NULL). */
void EVD_AddStats(const struct evd_ring *r, struct evd_stats *st);

/* The directory's current total of our captures, in bytes, and their number. */
void EVD_DirUsage(uint64_t *bytes, uint32_t *files);

#endif
