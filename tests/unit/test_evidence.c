/* Evidence captures: the ring (wrap, snaplen), the flow filter, the pcap bytes, the directory's
 * size cap and rate limit, and what a full directory does. */
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "evidence.h"
#include "packet.h"
#include "pktbuild.h"
#include "tap.h"
#include "tmpfile.h"

static char dirpath[256];

/* Packet k of a flow: 198.18.1.2:sport <-> 198.18.3.2:80 (odd k from the server), payload of
 * plen bytes. */
static size_t
build(uint8_t *buf, uint16_t sport, uint32_t seq, uint8_t flags, uint32_t plen, int from_server)
{
	struct pb_spec s = PB_Default(AF_INET);

	s.sport = sport;
	s.seq = seq;
	s.ack = 1;
	s.flags = flags;
	s.payload_len = plen;
	if (from_server) {
		s.src = "198.18.3.2";
		s.dst = "198.18.1.2";
		s.sport = 80;
		s.dport = sport;
	}
	return PB_Build(buf, 2048, &s);
}

static void
record(struct evd_ring *r, uint16_t sport, uint32_t seq, uint8_t flags, uint32_t plen, int from_server,
       uint64_t ns)
{
	uint8_t buf[2048];
	size_t n = build(buf, sport, seq, flags, plen, from_server);

	EVD_Record(r, buf, (uint32_t)n, (uint32_t)n, ns);
}

static struct evd_flow
flow_of(uint16_t sport, uint64_t id, uint64_t ns, uint8_t *a, uint8_t *b)
{
	struct evd_flow fl = { .family = AF_INET, .a = a, .b = b, .aport = sport, .bport = 80,
			       .flow_id = id, .real_ns = ns };

	memset(a, 0, 16);
	memset(b, 0, 16);
	inet_pton(AF_INET, "198.18.1.2", a);
	inet_pton(AF_INET, "198.18.3.2", b);
	return fl;
}

static uint8_t *
slurp(const char *path, size_t *len)
{
	static uint8_t buf[1 << 20];
	int fd = open(path, O_RDONLY);
	ssize_t n;

	*len = 0;
	if (fd < 0)
		return NULL;
	n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n < 0)
		return NULL;
	*len = (size_t)n;
	return buf;
}

static uint32_t
get32(const uint8_t *b)
{
	uint32_t v;

	memcpy(&v, b, 4);
	return v;
}

/* Count the captures in the directory and their total size. */
static unsigned
dir_files(uint64_t *bytes)
{
	DIR *d = opendir(dirpath);
	struct dirent *de;
	unsigned n = 0;

	*bytes = 0;
	if (d == NULL)
		return 0;
	while ((de = readdir(d)) != NULL) {
		char p[600];
		struct stat st;

		if (strncmp(de->d_name, "rstguard-", 9) != 0)
			continue;
		snprintf(p, sizeof(p), "%s/%s", dirpath, de->d_name);
		if (stat(p, &st) == 0) {
			n++;
			*bytes += (uint64_t)st.st_size;
		}
	}
	closedir(d);
	return n;
}

static void
clean_dir(void)
{
	DIR *d = opendir(dirpath);
	struct dirent *de;

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		char p[600];

		if (de->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", dirpath, de->d_name);
		unlink(p);
	}
	closedir(d);
}

static void
test_ring_and_format(void)
{
	struct evd_ring *r = EVD_CreateRing(8, 64);
	uint8_t a[16], b[16], *f;
	char path[EVD_PATH_MAX];
	struct evd_flow fl;
	size_t len, off;
	unsigned n;
	struct pkt p;

	TAP_OK(r != NULL, "ring of 8 x 64 bytes");
	/* An older connection on the same tuple, another flow, then ours from its SYN. */
	record(r, 40000, 500, TCPF_ACK, 0, 0, 1000000000ULL);
	record(r, 40001, 1, TCPF_SYN, 0, 0, 1100000000ULL);          /* another flow */
	record(r, 40000, 1000, TCPF_SYN, 0, 0, 2000000000ULL);
	record(r, 40000, 7000, TCPF_SYN | TCPF_ACK, 0, 1, 2000500000ULL);
	record(r, 40000, 1001, TCPF_ACK | TCPF_PSH, 200, 0, 2001000000ULL); /* longer than snaplen */
	record(r, 40001, 2, TCPF_ACK, 0, 0, 2002000000ULL);          /* another flow */
	record(r, 40000, 1000, TCPF_SYN, 0, 0, 2002500000ULL);       /* a retransmitted SYN: same flow */
	record(r, 40000, 7001, TCPF_RST, 0, 1, 2003000000ULL);
	TAP_EQ_U(r->head, 8, "8 packets recorded");

	TAP_OK(EVD_Open(dirpath, 1 << 20, 100) == 0, "directory opened");
	fl = flow_of(40000, 42, 2003000000ULL, a, b);
	TAP_OK(EVD_Capture(r, &fl, EVD_RST, 5000000000ULL, path, sizeof(path)) == 0, "capture written");
	TAP_OK(strstr(path, "/rstguard-00000000002003000000-42-rst.pcap") != NULL, "named by time and flow id: %s",
	       path);
	f = slurp(path, &len);
	TAP_OK(f != NULL, "capture readable");
	if (f == NULL)
		return;
	TAP_EQ_U(get32(f), 0xa1b2c3d4u, "pcap magic");
	TAP_EQ_U(f[4] | f[5] << 8, 2, "major version 2");
	TAP_EQ_U(f[6] | f[7] << 8, 4, "minor version 4");
	TAP_EQ_U(get32(f + 16), 64, "snaplen recorded");
	TAP_EQ_U(get32(f + 20), 101, "LINKTYPE_RAW");
	/* The flow since its SYN: SYN, SYN-ACK, data, retransmitted SYN, RST. */
	n = 0;
	for (off = 24; off + 16 <= len; n++) {
		uint32_t incl = get32(f + off + 8), orig = get32(f + off + 12);

		if (off + 16 + incl > len)
			break;
		if (n == 0) {
			TAP_EQ_U(get32(f + off), 2, "first record: seconds of the SYN");
			TAP_EQ_U(get32(f + off + 4), 0, "first record: microseconds");
		}
		if (n == 2) {
			TAP_EQ_U(incl, 64, "data packet cut at snaplen");
			TAP_EQ_U(orig, 20 + 20 + 200, "its wire length kept");
		}
		if (n == 4) {
			TAP_OK(PKT_Parse(f + off + 16, incl, orig, &p) == PKT_TCP && (p.flags & TCPF_RST),
			       "last record is the RST");
			TAP_EQ_U(get32(f + off + 4), 3000, "RST timestamp microseconds");
			TAP_EQ_U(get32(f + off), 2, "RST timestamp seconds");
		}
		off += 16 + incl;
	}
	TAP_EQ_U(n, 5, "five packets of the flow, none of the other or the older connection");
	TAP_EQ_U(off, len, "file ends after the last record");

	/* Wrap: 8 more of the other flow push ours out; a capture then has nothing. */
	for (int i = 0; i < 8; i++)
		record(r, 40001, 10 + (uint32_t)i, TCPF_ACK, 0, 0, 3000000000ULL);
	fl.real_ns = 4000000000ULL;
	TAP_OK(EVD_Capture(r, &fl, EVD_RST, 5000000000ULL, path, sizeof(path)) < 0, "after the wrap: nothing of the flow left");
	TAP_EQ_U(r->skipped, 1, "counted as skipped");
	EVD_Close();
	EVD_DestroyRing(r);
}

static void
test_cap_and_rate(void)
{
	struct evd_ring *r = EVD_CreateRing(64, 128);
	uint8_t a[16], b[16];
	char path[EVD_PATH_MAX];
	struct evd_flow fl;
	uint64_t bytes, dbytes;
	uint32_t files;
	int ok = 0;

	clean_dir();
	/* Captures of 24 + 3 x (16 + 40) = 192 bytes; the cap holds five of them. */
	TAP_OK(EVD_Open(dirpath, 1000, 3) == 0, "directory opened, cap 1000 bytes, 3 files a second");
	for (int i = 0; i < 20; i++) {
		uint16_t port = (uint16_t)(41000 + i);

		record(r, port, 1, TCPF_SYN, 0, 0, 1000000000ULL * (uint64_t)(i + 1));
		record(r, port, 9, TCPF_SYN | TCPF_ACK, 0, 1, 1000000000ULL * (uint64_t)(i + 1));
		record(r, port, 9, TCPF_RST, 0, 1, 1000000000ULL * (uint64_t)(i + 1));
		fl = flow_of(port, (uint64_t)i, 1000000000ULL * (uint64_t)(i + 1), a, b);
		/* two captures a second: under the rate */
		ok += EVD_Capture(r, &fl, EVD_RST, 500000000ULL * (uint64_t)i, path, sizeof(path)) == 0;
	}
	TAP_EQ_U(ok, 20, "20 captures written");
	EVD_DirUsage(&bytes, &files);
	TAP_EQ_U(files, 5, "five kept under the cap");
	TAP_OK(bytes <= 1000, "directory total %llu <= 1000", (unsigned long long)bytes);
	TAP_EQ_U(dir_files(&dbytes), 5, "five files on disk");
	TAP_EQ_U(dbytes, bytes, "on disk as accounted");
	TAP_EQ_U(r->removed_bytes, 15 * 192, "the 15 oldest removed");
	TAP_OK(strstr(path, "-19-rst.pcap") != NULL && access(path, F_OK) == 0, "the newest kept");

	/* Rate: the fourth in the same second is skipped. */
	ok = 0;
	for (int i = 0; i < 4; i++) {
		fl.real_ns = 100000000000ULL + (uint64_t)i;
		ok += EVD_Capture(r, &fl, EVD_EVICTION, 100000000000ULL, path, sizeof(path)) == 0;
	}
	TAP_EQ_U(ok, 3, "3 of 4 captures in one second");
	TAP_EQ_U(r->skipped, 1, "the fourth skipped, counted");
	EVD_Close();

	/* A restart takes stock of the files there, and a smaller cap trims the oldest. */
	TAP_OK(EVD_Open(dirpath, 400, 3) == 0, "reopened with cap 400");
	EVD_DirUsage(&bytes, &files);
	TAP_EQ_U(files, 2, "two newest kept at start");
	TAP_EQ_U(dir_files(&dbytes), 2, "two on disk");
	EVD_Close();
	EVD_DestroyRing(r);
}

static void
test_foreign_and_symlink(void)
{
	char p[600], q[600];
	uint64_t bytes;
	uint32_t files;

	clean_dir();
	/* A file not of our naming is never counted nor removed; a symlink of our naming neither. */
	snprintf(p, sizeof(p), "%s/keep.pcap", dirpath);
	tmp_template(q, sizeof(q), "rgevtarget");
	TAP_OK(mkstemp(q) >= 0, "a target file");
	close(open(p, O_CREAT | O_WRONLY, 0600));
	snprintf(p, sizeof(p), "%s/rstguard-00000000000000000001-1-rst.pcap", dirpath);
	TAP_OK(symlink(q, p) == 0, "a symlink of our naming");
	snprintf(p, sizeof(p), "%s/rstguard-1-1-rst.pcap", dirpath);
	close(open(p, O_CREAT | O_WRONLY, 0600));
	TAP_OK(EVD_Open(dirpath, 65536, 3) == 0, "opened");
	EVD_DirUsage(&bytes, &files);
	TAP_EQ_U(files, 0, "neither a symlink nor a near-miss name is ours");
	snprintf(p, sizeof(p), "%s/keep.pcap", dirpath);
	TAP_OK(access(p, F_OK) == 0, "a foreign file is left alone");
	EVD_Close();
	unlink(q);
	clean_dir();

	/* The directory itself must not be a symlink. */
	snprintf(p, sizeof(p), "%s/link", dirpath);
	TAP_OK(symlink("/tmp", p) == 0, "a symlinked directory");
	TAP_OK(EVD_Open(p, 65536, 3) < 0, "refused");
	unlink(p);
	/* A missing one is created 0750. */
	snprintf(p, sizeof(p), "%s/sub", dirpath);
	TAP_OK(EVD_Open(p, 65536, 3) == 0, "a missing directory is created");
	{
		struct stat st;

		TAP_OK(stat(p, &st) == 0 && (st.st_mode & 0777 & ~0750u) == 0, "mode at most 0750");
	}
	EVD_Close();
	rmdir(p);
}

static void
test_write_error(void)
{
	struct evd_ring *r = EVD_CreateRing(16, 128);
	uint8_t a[16], b[16];
	char path[EVD_PATH_MAX];
	struct evd_flow fl;

	clean_dir();
	record(r, 42000, 1, TCPF_SYN, 0, 0, 1000000000ULL);
	TAP_OK(EVD_Open(dirpath, 65536, 10) == 0, "opened");
	fl = flow_of(42000, 7, 1000000000ULL, a, b);
	TAP_OK(EVD_Capture(r, &fl, EVD_RST, 0, path, sizeof(path)) == 0, "first written");
	/* The same name again: O_EXCL refuses it; an error, counted, nothing else harmed. */
	TAP_OK(EVD_Capture(r, &fl, EVD_RST, 0, path, sizeof(path)) < 0, "an existing name is not overwritten");
	TAP_EQ_U(r->errors, 1, "counted as an error");
	TAP_EQ_U(r->written, 1, "one written");
	EVD_Close();
	TAP_OK(EVD_Capture(r, &fl, EVD_RST, 0, path, sizeof(path)) < 0, "closed: nothing written");
	EVD_DestroyRing(r);
	clean_dir();
}

int
main(void)
{
	tmp_template(dirpath, sizeof(dirpath), "rgevidence");
	if (mkdtemp(dirpath) == NULL) {
		perror("mkdtemp");
		return 99;
	}
	test_ring_and_format();
	test_cap_and_rate();
	test_foreign_and_symlink();
	test_write_error();
	clean_dir();
	rmdir(dirpath);
	return tap_done();
}
