/* Evidence captures. Recording is a memcpy into the engine's ring (evidence.h); this file writes
 * a flow's packets out as a pcap when something happened.
 *
 * The capture is written by the packet thread that judged the RST, synchronously. That is a
 * system call on the packet path, which the rest of the daemon avoids; it is accepted here
 * because it happens only on an alert (a forged RST, an eviction), at most evidence.rate files
 * per second over the whole daemon, each a few kilobytes into a local directory, and because
 * the packets it needs live in this thread's ring, which the next packets overwrite: handing
 * the copy to the control thread would cost a second bounded buffer for little gain.
 *
 * Files are named rstguard-TIMESTAMP_NS-FLOW_ID-KIND.pcap (numbers only, never packet bytes);
 * the directory's files of that pattern are ours: counted at start, removed oldest first to
 * keep the total under evidence.max_bytes. Anything else in the directory is left alone. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "evidence.h"
#include "log.h"
#include "packet.h"

#define PCAP_MAGIC_US 0xa1b2c3d4u
#define LINKTYPE_RAW 101u
#define PCAP_HDR_LEN 24u
#define PCAP_REC_LEN 16u
#define SCRATCH_BYTES 65536u

static const char *const kind_names[EVD_KIND_MAX] = {
	[EVD_RST] = "rst",
	[EVD_EVICTION] = "eviction",
};

/* One capture of ours in the directory. */
struct evd_file {
	uint64_t ts_ns, flow_id, size;
	uint8_t kind;
};

/* The directory, shared by every engine (the mutex: captures are rare, contention rarer). */
static struct {
	pthread_mutex_t mu;
	int fd;                    /* -1: captures off */
	char *path;
	uint64_t max_bytes, total;
	uint32_t rate, used;       /* files per second; taken in the current second */
	uint64_t second;
	struct evd_file *files;    /* FIFO, oldest at first */
	uint32_t first, count;
	int warned;                /* a write error was logged */
} dir = { .mu = PTHREAD_MUTEX_INITIALIZER, .fd = -1 };

static int
file_name(char *buf, size_t len, const struct evd_file *f)
{
	int n = snprintf(buf, len, "rstguard-%020" PRIu64 "-%" PRIu64 "-%s.pcap", f->ts_ns, f->flow_id,
			 kind_names[f->kind]);

	return n > 0 && (size_t)n < len ? 0 : -1;
}

/* Parse an unsigned decimal of 1..20 digits at *s; advances *s. */
static int
parse_u64(const char **s, uint64_t *v)
{
	const char *p = *s;
	uint64_t x = 0;

	if (*p < '0' || *p > '9')
		return -1;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (p - *s >= 20 || x > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
			return -1;
		x = x * 10 + (uint64_t)(*p - '0');
	}
	*s = p;
	*v = x;
	return 0;
}

/* Is name exactly one of ours (the name we would write for the numbers it holds)? */
static int
parse_name(const char *name, struct evd_file *f)
{
	const char *p = name;
	char again[128];

	if (strncmp(p, "rstguard-", 9) != 0)
		return -1;
	p += 9;
	if (parse_u64(&p, &f->ts_ns) < 0 || *p++ != '-' || parse_u64(&p, &f->flow_id) < 0 || *p++ != '-')
		return -1;
	for (f->kind = 0; f->kind < EVD_KIND_MAX; f->kind++) {
		size_t n = strlen(kind_names[f->kind]);

		if (strncmp(p, kind_names[f->kind], n) == 0 && strcmp(p + n, ".pcap") == 0)
			break;
	}
	if (f->kind == EVD_KIND_MAX || file_name(again, sizeof(again), f) < 0)
		return -1;
	return strcmp(again, name) == 0 ? 0 : -1;
}

static int
older(const void *a, const void *b)
{
	const struct evd_file *x = a, *y = b;

	if (x->ts_ns != y->ts_ns)
		return x->ts_ns < y->ts_ns ? -1 : 1;
	return x->flow_id < y->flow_id ? -1 : x->flow_id > y->flow_id;
}

/* Remove the oldest of our captures. Returns its size (0 if there was none). */
static uint64_t
remove_oldest(void)
{
	struct evd_file *f;
	char name[128];
	uint64_t size;

	if (dir.count == 0)
		return 0;
	f = &dir.files[dir.first];
	dir.first = (dir.first + 1) % EVD_MAX_FILES;
	dir.count--;
	size = f->size;
	dir.total -= size;
	if (file_name(name, sizeof(name), f) == 0 && unlinkat(dir.fd, name, 0) < 0 && errno != ENOENT)
		log_warn("evidence: cannot remove %s/%s", dir.path, name);
	return size;
}

/* Take stock of the captures already there (a previous run's), oldest first, and trim. */
static int
scan_dir(void)
{
	int fd = dup(dir.fd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;
	struct evd_file *all = NULL;
	size_t n = 0, cap = 0;

	if (d == NULL) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		struct evd_file f;
		struct stat st;

		if (parse_name(de->d_name, &f) < 0 ||
		    fstatat(dir.fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
			continue;
		f.size = (uint64_t)st.st_size;
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 256;
			struct evd_file *p = realloc(all, ncap * sizeof(*all));

			if (p == NULL)
				break;
			all = p;
			cap = ncap;
		}
		all[n++] = f;
	}
	closedir(d);
	if (n)
		qsort(all, n, sizeof(*all), older);
	for (size_t i = 0; i < n; i++) {
		if (dir.count == EVD_MAX_FILES)
			remove_oldest();
		dir.files[(dir.first + dir.count) % EVD_MAX_FILES] = all[i];
		dir.count++;
		dir.total += all[i].size;
	}
	free(all);
	while (dir.total > dir.max_bytes && dir.count)
		remove_oldest();
	return 0;
}

int
EVD_Open(const char *path, uint64_t max_bytes, uint32_t rate)
{
	pthread_mutex_lock(&dir.mu);
	if (mkdir(path, 0750) < 0 && errno != EEXIST) {
		log_warn("evidence: cannot create %s", path);
		goto fail;
	}
	dir.fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dir.fd < 0) {
		log_warn("evidence: cannot open the directory %s", path);
		goto fail;
	}
	dir.files = calloc(EVD_MAX_FILES, sizeof(*dir.files));
	dir.path = strdup(path);
	if (dir.files == NULL || dir.path == NULL) {
		log_warnx("evidence: out of memory");
		goto fail;
	}
	dir.max_bytes = max_bytes;
	dir.rate = rate;
	dir.used = 0;
	dir.second = UINT64_MAX;
	dir.first = dir.count = 0;
	dir.total = 0;
	dir.warned = 0;
	if (scan_dir() < 0) {
		log_warn("evidence: cannot read the directory %s", path);
		goto fail;
	}
	pthread_mutex_unlock(&dir.mu);
	return 0;
fail:
	pthread_mutex_unlock(&dir.mu);
	EVD_Close();
	return -1;
}

void
EVD_Close(void)
{
	pthread_mutex_lock(&dir.mu);
	if (dir.fd >= 0)
		close(dir.fd);
	dir.fd = -1;
	free(dir.files);
	dir.files = NULL;
	free(dir.path);
	dir.path = NULL;
	dir.count = dir.first = 0;
	dir.total = 0;
	pthread_mutex_unlock(&dir.mu);
}

int
EVD_Enabled(void)
{
	return dir.fd >= 0;
}

struct evd_ring *
EVD_CreateRing(uint32_t packets, uint32_t snaplen)
{
	struct evd_ring *r;

	if (packets == 0 || snaplen == 0)
		return NULL;
	r = calloc(1, sizeof(*r));
	if (r == NULL)
		return NULL;
	r->cap = packets;
	r->snaplen = snaplen;
	r->slot = calloc(packets, sizeof(*r->slot));
	r->data = malloc((size_t)packets * snaplen);
	r->scratch_len = SCRATCH_BYTES > PCAP_REC_LEN + snaplen ? SCRATCH_BYTES : PCAP_REC_LEN + snaplen;
	r->scratch = malloc(r->scratch_len);
	if (r->slot == NULL || r->data == NULL || r->scratch == NULL) {
		EVD_DestroyRing(r);
		return NULL;
	}
	return r;
}

void
EVD_DestroyRing(struct evd_ring *r)
{
	if (r == NULL)
		return;
	free(r->slot);
	free(r->data);
	free(r->scratch);
	free(r);
}

/* Does packet p belong to flow fl (either direction)? */
static int
same_flow(const struct pkt *p, const struct evd_flow *fl)
{
	size_t alen = fl->family == AF_INET6 ? 16 : 4;

	if (p->family != fl->family)
		return 0;
	if (p->sport == fl->aport && p->dport == fl->bport && memcmp(p->src, fl->a, alen) == 0 &&
	    memcmp(p->dst, fl->b, alen) == 0)
		return 1;
	return p->sport == fl->bport && p->dport == fl->aport && memcmp(p->src, fl->b, alen) == 0 &&
	       memcmp(p->dst, fl->a, alen) == 0;
}

/* Is ring packet number k (absolute) one of fl's? Fills *p. */
static int
ring_match(const struct evd_ring *r, uint64_t k, const struct evd_flow *fl, struct pkt *p)
{
	const struct evd_slot *s = &r->slot[k % r->cap];

	return PKT_Parse(r->data + (k % r->cap) * r->snaplen, s->caplen, s->wirelen, p) == PKT_TCP &&
	       same_flow(p, fl);
}

static void
put32(uint8_t *b, uint32_t v)
{
	memcpy(b, &v, sizeof(v));   /* pcap is written in host order; readers tell by the magic */
}

/* Write the pcap of ring packets [from, r->head) of flow fl to fd. Returns 0 or -1 (errno). */
static int
write_pcap(struct evd_ring *r, int fd, uint64_t from, const struct evd_flow *fl)
{
	size_t used;
	struct pkt p;
	uint16_t major = 2, minor = 4;

	put32(r->scratch, PCAP_MAGIC_US);
	memcpy(r->scratch + 4, &major, 2);
	memcpy(r->scratch + 6, &minor, 2);
	put32(r->scratch + 8, 0);              /* thiszone */
	put32(r->scratch + 12, 0);             /* sigfigs */
	put32(r->scratch + 16, r->snaplen);
	put32(r->scratch + 20, LINKTYPE_RAW);
	used = PCAP_HDR_LEN;
	for (uint64_t k = from; k < r->head; k++) {
		const struct evd_slot *s = &r->slot[k % r->cap];

		if (!ring_match(r, k, fl, &p))
			continue;
		if (used + PCAP_REC_LEN + s->caplen > r->scratch_len) {
			if (write(fd, r->scratch, used) != (ssize_t)used) {
				if (errno == 0)
					errno = ENOSPC;
				return -1;
			}
			used = 0;
		}
		put32(r->scratch + used, (uint32_t)(s->real_ns / 1000000000ULL));
		put32(r->scratch + used + 4, (uint32_t)(s->real_ns % 1000000000ULL / 1000));
		put32(r->scratch + used + 8, s->caplen);
		put32(r->scratch + used + 12, s->wirelen);
		memcpy(r->scratch + used + PCAP_REC_LEN, r->data + (k % r->cap) * r->snaplen, s->caplen);
		used += PCAP_REC_LEN + s->caplen;
	}
	errno = 0;
	if (used && write(fd, r->scratch, used) != (ssize_t)used) {
		if (errno == 0)
			errno = ENOSPC;   /* a short write: the disk is full */
		return -1;
	}
	return 0;
}

int
EVD_Capture(struct evd_ring *r, const struct evd_flow *fl, enum evd_kind kind, uint64_t mono_ns, char *path,
	    size_t pathlen)
{
	uint64_t oldest = r->head > r->cap ? r->head - r->cap : 0, from = oldest, size = PCAP_HDR_LEN;
	uint32_t syn_seq = 0, npkts = 0;
	int have_syn = 0, fd, rc = -1;
	struct evd_file f = { .ts_ns = fl->real_ns, .flow_id = fl->flow_id, .kind = (uint8_t)kind };
	char name[128];
	struct pkt p;

	if (dir.fd < 0)
		return -1;
	/* The flow's packets since its latest SYN: earlier ones belong to an older connection on the
	 * same tuple. A retransmitted SYN (same sequence number) does not start a new one. */
	for (uint64_t k = oldest; k < r->head; k++) {
		if (!ring_match(r, k, fl, &p))
			continue;
		if ((p.flags & (TCPF_SYN | TCPF_ACK)) == TCPF_SYN && (!have_syn || p.seq != syn_seq)) {
			have_syn = 1;
			syn_seq = p.seq;
			from = k;
			npkts = 0;
			size = PCAP_HDR_LEN;
		}
		npkts++;
		size += PCAP_REC_LEN + r->slot[k % r->cap].caplen;
	}

	pthread_mutex_lock(&dir.mu);
	if (dir.fd < 0)
		goto out;
	if (dir.second != mono_ns / 1000000000ULL) {
		dir.second = mono_ns / 1000000000ULL;
		dir.used = 0;
	}
	if (npkts == 0 || size > dir.max_bytes || dir.used >= dir.rate) {
		r->skipped++;
		goto out;
	}
	dir.used++;
	while (dir.count && (dir.total + size > dir.max_bytes || dir.count == EVD_MAX_FILES))
		r->removed_bytes += remove_oldest();
	if (file_name(name, sizeof(name), &f) < 0 ||
	    (size_t)snprintf(path, pathlen, "%s/%s", dir.path, name) >= pathlen) {
		r->errors++;
		goto out;
	}
	fd = openat(dir.fd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0640);
	if (fd >= 0) {
		int wrc = write_pcap(r, fd, from, fl), err = errno;

		if (close(fd) < 0 && wrc == 0) {
			wrc = -1;
			err = errno;
		}
		if (wrc < 0) {
			unlinkat(dir.fd, name, 0);   /* a partial capture proves nothing */
			errno = err;
			fd = -1;
		}
	}
	if (fd < 0) {
		int err = errno;

		r->errors++;
		if (!dir.warned) {
			dir.warned = 1;
			errno = err;
			log_warn("evidence: cannot write %s (captures are lost until it works again; counted)", path);
		}
		goto out;
	}
	f.size = size;
	dir.files[(dir.first + dir.count) % EVD_MAX_FILES] = f;
	dir.count++;
	dir.total += size;
	dir.warned = 0;
	r->written++;
	rc = 0;
out:
	pthread_mutex_unlock(&dir.mu);
	return rc;
}

void
EVD_AddStats(const struct evd_ring *r, struct evd_stats *st)
{
	if (r == NULL)
		return;
	st->written += r->written;
	st->skipped += r->skipped;
	st->errors += r->errors;
	st->removed_bytes += r->removed_bytes;
}

void
EVD_DirUsage(uint64_t *bytes, uint32_t *files)
{
	pthread_mutex_lock(&dir.mu);
	*bytes = dir.total;
	*files = dir.count;
	pthread_mutex_unlock(&dir.mu);
}
