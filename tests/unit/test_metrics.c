/* Unit tests of the metrics: the exposition of a filled snapshot (every family with HELP and
 * TYPE, counters named *_total, labelled samples, the histogram cumulative), MET_Format never
 * writing past its buffer at any length, listen addresses, and the atomic textfile.
 * With RG_METRICS_SAMPLE=PATH it also writes the sample exposition there (tests/metrics_sync.sh
 * runs promtool on it). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "metrics.h"
#include "stats.h"
#include "tap.h"
#include "tmpfile.h"

static struct rg_stats st;

static void
fill(struct rg_stats *s)
{
	memset(s, 0, sizeof(*s));
	s->start_real_ns = 1764960000123456789ULL;
	s->queue_first = 7;
	s->nqueues = 2;
	s->eng.kind[PKT_TCP] = 1000;
	s->eng.kind[PKT_FRAGMENT] = 3;
	s->eng.rst_cause[RST_CAUSE_REFUSED] = 5;
	s->eng.rst_cause[RST_CAUSE_INJECTED] = 4;
	s->eng.rst_forged = 4;
	s->eng.rst_dropped = 2;
	s->eng.rst_would_drop = 4;
	s->eng.flows_active = 12;
	s->eng.flows_capacity = 262144;
	s->eng.evictions_blackhole = 1;
	s->eng.hold_ms_bucket[0] = 1;
	s->eng.hold_ms_bucket[3] = 2;
	s->eng.hold_ms_bucket[ENG_HOLD_BUCKETS - 1] = 1;
	s->eng.hold_ms_sum = 2345;
	s->ev.alert_rate_dropped = 6;
	s->q[0].accepted = 900;
	s->q[1].dropped = 2;
	s->kq_ok = 1;
	s->kq[1].present = 1;
	s->kq[1].user_dropped = 17;
}

static int
has_line(const char *text, const char *line)
{
	size_t n = strlen(line);

	for (const char *p = text; (p = strstr(p, line)) != NULL; p++)
		if ((p == text || p[-1] == '\n') && p[n] == '\n')
			return 1;
	return 0;
}

struct names {
	unsigned n, bad_prefix, bad_counter, dup;
	char seen[128][96];
	const char *text;
	unsigned missing;
};

static void
check_name(const char *name, const char *type, const char *help, void *arg)
{
	struct names *nm = arg;
	char want[256];
	size_t len = strlen(name);

	if (strncmp(name, "rstguard_", 9) != 0)
		nm->bad_prefix++;
	if ((strcmp(type, "counter") == 0) != (len > 6 && strcmp(name + len - 6, "_total") == 0))
		nm->bad_counter++;
	for (unsigned i = 0; i < nm->n; i++)
		if (strcmp(nm->seen[i], name) == 0)
			nm->dup++;
	if (nm->n < 128)
		snprintf(nm->seen[nm->n++], sizeof(nm->seen[0]), "%s", name);
	snprintf(want, sizeof(want), "# TYPE %s %s", name, type);
	if (!has_line(nm->text, want) || help[0] == '\0')
		nm->missing++;
}

int
main(void)
{
	static char buf[262144], small[4096 + 64];
	struct names nm = { 0 };
	struct sockaddr_storage ss;
	socklen_t sl;
	size_t n, m;
	const char *sample = getenv("RG_METRICS_SAMPLE");

	fill(&st);
	n = MET_Format(&st, buf, sizeof(buf));
	TAP_OK(n > 0 && n < sizeof(buf) && strlen(buf) == n, "the exposition fits and is NUL-terminated (%zu bytes)", n);
	TAP_OK(buf[n - 1] == '\n', "it ends with a newline");
	if (sample) {
		FILE *f = fopen(sample, "w");

		if (f == NULL || fwrite(buf, 1, n, f) != n || fclose(f) != 0) {
			perror(sample);
			return 99;
		}
	}

	nm.text = buf;
	MET_ForEach(check_name, &nm);
	TAP_OK(nm.n >= 30, "the table has its families (%u)", nm.n);
	TAP_EQ_U(nm.bad_prefix, 0, "every name starts with rstguard_");
	TAP_EQ_U(nm.bad_counter, 0, "counters, and only counters, end in _total");
	TAP_EQ_U(nm.dup, 0, "no name twice");
	TAP_EQ_U(nm.missing, 0, "every family has its HELP and TYPE lines");

	TAP_OK(has_line(buf, "rstguard_rsts_total{cause=\"refused\"} 5"), "RSTs by cause");
	TAP_OK(has_line(buf, "rstguard_rsts_total{cause=\"injected\"} 4"), "injected RSTs");
	TAP_OK(has_line(buf, "rstguard_rsts_total{cause=\"abort\"} 0"), "a cause never seen is 0, not absent");
	TAP_OK(has_line(buf, "rstguard_forged_rsts_total{action=\"dropped\"} 2"), "forged RSTs dropped");
	TAP_OK(has_line(buf, "rstguard_forged_rsts_total{action=\"detected\"} 4"), "forged RSTs detected");
	TAP_OK(has_line(buf, "rstguard_packets_total{kind=\"fragment\"} 3"), "packets by kind");
	TAP_OK(has_line(buf, "rstguard_flows 12"), "flows gauge");
	TAP_OK(has_line(buf, "rstguard_evictions_total{kind=\"blackhole\"} 1"), "evictions by kind");
	TAP_OK(has_line(buf, "rstguard_events_rate_limited_total{kind=\"alert\"} 6"), "alerts rate-limited");
	TAP_OK(has_line(buf, "rstguard_queue_verdicts_total{queue=\"7\",verdict=\"accept\"} 900"), "queue 7 verdicts");
	TAP_OK(has_line(buf, "rstguard_queue_verdicts_total{queue=\"8\",verdict=\"drop\"} 2"), "queue 8 verdicts");
	TAP_OK(has_line(buf, "rstguard_kernel_queue_user_dropped_total{queue=\"8\"} 17"), "the kernel's counters of a queue it lists");
	TAP_OK(strstr(buf, "rstguard_kernel_queue_user_dropped_total{queue=\"7\"}") == NULL,
	       "no kernel sample for a queue the kernel did not list");
	TAP_OK(has_line(buf, "rstguard_rst_hold_seconds_bucket{le=\"0.005\"} 1"), "histogram: first bucket");
	TAP_OK(has_line(buf, "rstguard_rst_hold_seconds_bucket{le=\"0.050\"} 3"), "histogram: buckets are cumulative");
	TAP_OK(has_line(buf, "rstguard_rst_hold_seconds_bucket{le=\"+Inf\"} 4"), "histogram: +Inf holds all");
	TAP_OK(has_line(buf, "rstguard_rst_hold_seconds_sum 2.345"), "histogram: sum in seconds");
	TAP_OK(has_line(buf, "rstguard_rst_hold_seconds_count 4"), "histogram: count");
	TAP_OK(has_line(buf, "rstguard_start_time_seconds 1764960000.123"), "start time in seconds");
	TAP_OK(has_line(buf, "rstguard_build_info{version=\"" PACKAGE_VERSION "\"} 1"), "build info");

	/* Every buffer length, with a guard zone after it: the text is a prefix, never an overflow. */
	{
		int ok = 1;

		for (size_t len = 0; len <= 4096 && ok; len++) {
			memset(small, 'Z', sizeof(small));
			m = MET_Format(&st, small, len);
			if (m != n || (len > 0 && (small[len - 1] != '\0' || strncmp(small, buf, len - 1) != 0)))
				ok = 0;
			for (size_t i = len; i < sizeof(small) && ok; i++)
				if (small[i] != 'Z')
					ok = 0;
		}
		TAP_OK(ok, "MET_Format at lengths 0..4096: same length returned, a NUL-terminated prefix, nothing past the buffer");
	}
	/* The most queues there can be still fits in what a caller sizes by the returned length. */
	st.nqueues = STATS_QUEUES_MAX;
	for (unsigned i = 0; i < STATS_QUEUES_MAX; i++)
		st.kq[i].present = 1;
	m = MET_Format(&st, NULL, 0);
	TAP_OK(m > n && m < sizeof(buf), "64 queues: %zu bytes", m);
	fill(&st);

	TAP_OK(MET_ParseListen("127.0.0.1:9471", &ss, &sl) == 0 && ss.ss_family == AF_INET &&
	       ntohs(((struct sockaddr_in *)&ss)->sin_port) == 9471 && sl == sizeof(struct sockaddr_in),
	       "listen 127.0.0.1:9471");
	TAP_OK(MET_ParseListen("[2001:db8::1]:80", &ss, &sl) == 0 && ss.ss_family == AF_INET6 &&
	       ntohs(((struct sockaddr_in6 *)&ss)->sin6_port) == 80, "listen [2001:db8::1]:80");
	{
		static const char *const bad[] = {
			"", ":9471", "127.0.0.1", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:65536",
			"127.0.0.1:94710", "127.0.0.1:+80", "127.0.0.1:80x", "localhost:9471", "::1:9471",
			"[::1]9471", "[::1]", "[127.0.0.1]:80", "[::1:80", "1.2.3:80", "[]:80",
			"[0000:0000:0000:0000:0000:0000:0000:0000:0000]:80",
		};
		unsigned rejected = 0;

		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
			rejected += MET_ParseListen(bad[i], &ss, &sl) < 0;
		TAP_EQ_U(rejected, sizeof(bad) / sizeof(bad[0]), "malformed listen addresses rejected");
	}

	/* The textfile: replaced atomically, 0644 whatever the umask, no symbolic link followed. */
	{
		char dir[128], path[192], tmp[224], link[192];
		struct stat sb;
		int fd;
		mode_t old = umask(077);

		tmp_template(dir, sizeof(dir), "rg-test-metrics-");
		if (mkdtemp(dir) == NULL) {
			perror("mkdtemp");
			return 99;
		}
		snprintf(path, sizeof(path), "%s/rstguard.prom", dir);
		TAP_OK(MET_WriteTextfile(path, "a 1\n", 4) == 0 && MET_WriteTextfile(path, buf, n) == 0,
		       "textfile written twice");
		TAP_OK(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0644 && (size_t)sb.st_size == n,
		       "textfile: mode 0644 under umask 077, the whole text");
		snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", path, (long)getpid());
		TAP_OK(access(tmp, F_OK) < 0, "no temporary file left");
		/* A symbolic link planted where the temporary file goes is removed, not followed. */
		snprintf(link, sizeof(link), "%s/target", dir);
		fd = open(link, O_WRONLY | O_CREAT, 0600);
		if (fd >= 0)
			close(fd);
		TAP_OK(symlink(link, tmp) == 0 && MET_WriteTextfile(path, "b 2\n", 4) == 0 &&
		       stat(link, &sb) == 0 && sb.st_size == 0, "a planted link is not followed");
		snprintf(link, sizeof(link), "%s/nodir/rstguard.prom", dir);
		errno = 0;
		TAP_OK(MET_WriteTextfile(link, "c 3\n", 4) < 0 && errno == ENOENT, "a missing directory is an error");
		unlink(path);
		snprintf(link, sizeof(link), "%s/target", dir);
		unlink(link);
		unlink(tmp);
		rmdir(dir);
		umask(old);
	}
	return tap_done();
}
