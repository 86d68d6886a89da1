/* The kernel fast path: load and pin the selector, watch flows, read baselines and counters. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fastpath.h"
#include "log.h"

#ifdef HAVE_FASTPATH

#include <limits.h>
#include <stdarg.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "../bpf/fastpath_abi.h"
#include "alias.h"
#include "flow.h"

#ifndef BPF_FS_MAGIC
#define BPF_FS_MAGIC 0xcafe4a11
#endif

/* The selector object, compiled at build time (src/fastpath_obj.c, generated). */
extern const unsigned char FP_Object[];
extern const unsigned long FP_ObjectLen;

#define FP_WATCH_MAX (1u << 20)
#define SYS_BPF "/sys/fs/bpf"

struct fastpath {
	struct bpf_object *obj;
	int flows_fd, watch_fd, counters_fd;
	int ncpus;
	int mounted;                       /* FP_Open mounted a bpffs on dir */
	int mounted_sys;                   /* ... or on /sys/fs/bpf */
	char dir[PATH_MAX / 2];
	char prog_pin[PATH_MAX];
	char map_pin[3][PATH_MAX];
	struct fp_counters *percpu;        /* scratch for reading the counters */
};

static const char *const map_names[3] = { "flows", "watch", "counters" };

int
FP_Available(void)
{
	return 1;
}

static int
libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char buf[512];
	size_t n;

	if (level != LIBBPF_WARN)
		return 0;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	n = strlen(buf);
	while (n > 0 && buf[n - 1] == '\n')
		buf[--n] = '\0';
	log_warnx("libbpf: %s", buf);
	return 0;
}

/* mkdir -p, for a path of at most PATH_MAX / 2. */
static int
make_dirs(const char *path)
{
	char tmp[PATH_MAX / 2];

	if (strlen(path) >= sizeof(tmp))
		return -1;
	snprintf(tmp, sizeof(tmp), "%s", path);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0700) < 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	return (mkdir(tmp, 0700) < 0 && errno != EEXIST) ? -1 : 0;
}

/* The pin directory, on a bpffs: mounted there when it is not on one. */
static int
prepare_dir(struct fastpath *fp)
{
	struct statfs sf;

	if (make_dirs(fp->dir) < 0) {
		/* /sys/fs/bpf without its bpffs (ip netns exec remounts /sys): mount it there. */
		if (strncmp(fp->dir, SYS_BPF "/", sizeof(SYS_BPF)) == 0 &&
		    !(statfs(SYS_BPF, &sf) == 0 && (unsigned long)sf.f_type == (unsigned long)BPF_FS_MAGIC) &&
		    mount("bpf", SYS_BPF, "bpf", 0, "mode=0700") == 0)
			fp->mounted_sys = 1;
		if (!fp->mounted_sys || make_dirs(fp->dir) < 0) {
			log_warn("fast path: cannot create %s", fp->dir);
			return -1;
		}
	}
	if (statfs(fp->dir, &sf) == 0 && (unsigned long)sf.f_type == (unsigned long)BPF_FS_MAGIC)
		return 0;
	if (mount("bpf", fp->dir, "bpf", 0, "mode=0700") < 0) {
		log_warn("fast path: %s is not on a bpffs and mounting one there failed", fp->dir);
		return -1;
	}
	fp->mounted = 1;
	return 0;
}

struct fastpath *
FP_Open(const char *pin_dir, uint32_t max_flows)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts, .object_name = "rstguard_selector");
	struct fastpath *fp = calloc(1, sizeof(*fp));
	struct bpf_program *prog;
	struct bpf_map *maps[3];
	uint64_t dirs = (uint64_t)max_flows * 2;

	if (fp == NULL)
		return NULL;
	fp->flows_fd = fp->watch_fd = fp->counters_fd = -1;
	libbpf_set_print(libbpf_print);
	if (strlen(pin_dir) >= sizeof(fp->dir) - 16 || pin_dir[0] != '/') {
		log_warnx("fast path: pin directory '%s' must be an absolute path shorter than %zu",
			  pin_dir, sizeof(fp->dir) - 16);
		free(fp);
		return NULL;
	}
	snprintf(fp->dir, sizeof(fp->dir), "%s", pin_dir);
	snprintf(fp->prog_pin, sizeof(fp->prog_pin), "%s/selector", fp->dir);
	for (int i = 0; i < 3; i++)
		snprintf(fp->map_pin[i], sizeof(fp->map_pin[i]), "%s/%s", fp->dir, map_names[i]);
	fp->ncpus = libbpf_num_possible_cpus();
	if (fp->ncpus <= 0)
		goto fail;
	fp->percpu = calloc((size_t)fp->ncpus, sizeof(*fp->percpu));
	if (fp->percpu == NULL)
		goto fail;
	if (prepare_dir(fp) < 0)
		goto fail;
	fp->obj = bpf_object__open_mem(FP_Object, FP_ObjectLen, &opts);
	if (fp->obj == NULL) {
		log_warnx("fast path: cannot open the selector object");
		goto fail;
	}
	for (int i = 0; i < 3; i++) {
		maps[i] = bpf_object__find_map_by_name(fp->obj, map_names[i]);
		if (maps[i] == NULL) {
			log_warnx("fast path: the selector has no map %s", map_names[i]);
			goto fail;
		}
	}
	/* flows.max bounds the kernel map as it bounds the flow table: one entry per direction. */
	if (bpf_map__set_max_entries(maps[0], (uint32_t)dirs) < 0 ||
	    bpf_map__set_max_entries(maps[1], (uint32_t)(dirs < FP_WATCH_MAX ? dirs : FP_WATCH_MAX)) < 0)
		goto fail;
	if (bpf_object__load(fp->obj) < 0) {
		log_warnx("fast path: loading the selector failed (needs CAP_BPF or CAP_SYS_ADMIN)");
		goto fail;
	}
	prog = bpf_object__find_program_by_name(fp->obj, "selector");
	if (prog == NULL)
		goto fail;
	/* Pins of a run that did not exit cleanly are replaced. */
	unlink(fp->prog_pin);
	for (int i = 0; i < 3; i++)
		unlink(fp->map_pin[i]);
	if (bpf_program__pin(prog, fp->prog_pin) < 0) {
		log_warnx("fast path: cannot pin the program at %s", fp->prog_pin);
		goto fail;
	}
	for (int i = 0; i < 3; i++) {
		if (bpf_map__pin(maps[i], fp->map_pin[i]) < 0) {
			log_warnx("fast path: cannot pin map %s at %s", map_names[i], fp->map_pin[i]);
			goto fail;
		}
	}
	fp->flows_fd = bpf_map__fd(maps[0]);
	fp->watch_fd = bpf_map__fd(maps[1]);
	fp->counters_fd = bpf_map__fd(maps[2]);
	log_info("fast path: selector pinned at %s (room for %llu flow directions)", fp->prog_pin,
		 (unsigned long long)dirs);
	return fp;
fail:
	FP_Close(fp);
	return NULL;
}

const char *
FP_ProgPin(const struct fastpath *fp)
{
	return fp->prog_pin;
}

void
FP_Close(struct fastpath *fp)
{
	if (fp == NULL)
		return;
	if (fp->dir[0]) {
		unlink(fp->prog_pin);
		for (int i = 0; i < 3; i++)
			unlink(fp->map_pin[i]);
	}
	bpf_object__close(fp->obj);
	if (fp->mounted && umount2(fp->dir, MNT_DETACH) < 0)
		log_warn("fast path: cannot unmount %s", fp->dir);
	if (fp->mounted_sys && umount2(SYS_BPF, MNT_DETACH) < 0)
		log_warn("fast path: cannot unmount %s", SYS_BPF);
	free(fp->percpu);
	free(fp);
}

/* The kernel key of direction dir of f (the sender's side first): the tuple as the program sees
 * that direction's packets, which for the server's half of a translated connection is the reply
 * tuple of its NAT alias (seen), not the flow's own key. */
static void
make_key(const struct flow *f, const struct alias *seen, int dir, struct fp_key *k)
{
	const uint8_t *src = dir == DIR_TOSERVER ? f->cli : f->srv;
	const uint8_t *dst = dir == DIR_TOSERVER ? f->srv : f->cli;
	uint16_t sp = dir == DIR_TOSERVER ? f->cport : f->sport;
	uint16_t dp = dir == DIR_TOSERVER ? f->sport : f->cport;
	int v6 = (f->flags & FL_IPV6) != 0;

	if (seen && dir == DIR_TOCLIENT) {
		src = seen->src;
		dst = seen->dst;
		sp = seen->sport;
		dp = seen->dport;
	}

	memset(k, 0, sizeof(*k));
	k->family = v6 ? 6 : 4;
	memcpy(k->src, src, v6 ? 16 : 4);
	memcpy(k->dst, dst, v6 ? 16 : 4);
	k->sport = (uint16_t)((sp >> 8) | (sp << 8));   /* network order, as the program reads it */
	k->dport = (uint16_t)((dp >> 8) | (dp << 8));
}

int
FP_Watch(struct fastpath *fp, const struct flow *f, const struct alias *seen, uint64_t until_ns)
{
	int rc = 0;

	for (int d = 0; d < 2; d++) {
		struct fp_key k;

		make_key(f, seen, d, &k);
		if (bpf_map_update_elem(fp->watch_fd, &k, &until_ns, BPF_ANY) < 0)
			rc = -1;
	}
	return rc;
}

void
FP_Unwatch(struct fastpath *fp, const struct flow *f, const struct alias *seen)
{
	for (int d = 0; d < 2; d++) {
		struct fp_key k;

		make_key(f, seen, d, &k);
		bpf_map_delete_elem(fp->watch_fd, &k);
	}
}

void
FP_SyncFlow(struct fastpath *fp, struct flow *f, const struct alias *seen, int pkt_dir, int is_rst,
	    uint64_t base_ns, uint64_t now_ns)
{
	uint64_t last = 0, at[2] = { 0, 0 }, data[2] = { 0, 0 };
	int both = 0;

	/* The kernel queues the first FP_FIRST_PKTS packets of each direction: until then the
	 * daemon has seen everything. */
	if (pkt_dir >= 0 && f->dir[0].pkts < FP_FIRST_PKTS && f->dir[1].pkts < FP_FIRST_PKTS)
		return;
	for (int d = 0; d < 2; d++) {
		struct flow_dir *fd = &f->dir[d];
		int cur = d == pkt_dir && !is_rst;   /* the kernel's latest is the packet at hand */
		struct fp_key k;
		struct fp_dir kd;
		uint64_t t;

		make_key(f, seen, d, &k);
		if (bpf_map_lookup_elem(fp->flows_fd, &k, &kd) < 0)
			continue;
		t = cur ? kd.prev_ns : kd.last_ns;
		if (cur && kd.pkts <= 1)
			t = 0;
		if (t > last)
			last = t;
		at[d] = t;
		data[d] = kd.data_ns;
		both++;
		if (!(fd->flags & FD_SEEN))
			continue;   /* the daemon's own record decides what a direction is */
		if (cur) {
			/* Only what the packet at hand does not itself bring: it is processed next. */
			if (!(f->flags & FL_IPV6))
				fd->ipid = kd.prev_ipid;
			if (kd.pkts - 1 > fd->pkts)
				fd->pkts = kd.pkts - 1;
			continue;
		}
		if ((int32_t)(kd.next_seq - fd->next_seq) > 0)
			fd->next_seq = kd.next_seq;
		if (kd.has & FPD_ACK) {
			fd->last_ack = kd.last_ack;
			fd->flags |= FD_ACK;
		}
		fd->win = kd.win;
		fd->ttl_last = kd.ttl;
		if (!(f->flags & FL_IPV6)) {
			fd->ipid = kd.ipid;
			if (kd.has & FPD_DF)
				fd->flags |= FD_DF;
			else
				fd->flags &= (uint16_t)~FD_DF;
		}
		if ((kd.has & FPD_TS) && (fd->flags & FD_TS))
			fd->tsval = kd.tsval;
		/* The kernel did not count RSTs; the daemon did. */
		if (kd.pkts + ((fd->flags & FD_RST) ? 1u : 0u) > fd->pkts)
			fd->pkts = kd.pkts + ((fd->flags & FD_RST) ? 1u : 0u);
		if (kd.bytes > fd->bytes)
			fd->bytes = kd.bytes;
	}
	/* Who sent the flow's latest packet, and its latest payload (the causes of a RST depend on
	 * it); the packet at hand, if any, sets its own. */
	if (both == 2 && (f->dir[0].flags & FD_SEEN) && (f->dir[1].flags & FD_SEEN)) {
		int l = at[1] > at[0];

		if (at[l]) {
			f->dir[l].flags |= FD_LAST;
			f->dir[!l].flags &= (uint16_t)~FD_LAST;
		}
		l = data[1] > data[0];
		if (data[l]) {
			f->dir[l].flags |= FD_LASTDATA;
			f->dir[!l].flags &= (uint16_t)~FD_LASTDATA;
		}
	}
	if (last > now_ns)
		last = now_ns;
	if (last > base_ns) {
		uint32_t ms = (uint32_t)((last - base_ns) / 1000000ULL);

		if ((int32_t)(ms - f->last_seen_ms) > 0)
			f->last_seen_ms = ms;
	}
}

void
FP_Track(struct fastpath *fp, const struct flow *f, const struct alias *seen, uint8_t before, uint64_t now_ns)
{
	const uint8_t want = FL_PENDING | FL_WATCH | FL_PROBING;

	if ((f->flags & want) && (before == 0 || !(before & want)))
		FP_Watch(fp, f, seen, now_ns + FP_WATCH_NS);
	else if (!(f->flags & want) && (before & want))
		FP_Unwatch(fp, f, seen);
}

void
FP_GetStats(struct fastpath *fp, struct fastpath_stats *st)
{
	uint32_t zero = 0;

	memset(st, 0, sizeof(*st));
	if (bpf_map_lookup_elem(fp->counters_fd, &zero, fp->percpu) < 0)
		return;
	for (int i = 0; i < fp->ncpus; i++) {
		st->seen += fp->percpu[i].seen;
		st->queued += fp->percpu[i].queued;
		st->watched += fp->percpu[i].watched;
		st->unknown += fp->percpu[i].unknown;
		st->unparsed += fp->percpu[i].unparsed;
	}
}

#else /* !HAVE_FASTPATH */

int
FP_Available(void)
{
	return 0;
}

struct fastpath *
FP_Open(const char *pin_dir, uint32_t max_flows)
{
	(void)pin_dir;
	(void)max_flows;
	log_warnx("fast path not available in this build (configured without clang and libbpf, or with --disable-fastpath)");
	return NULL;
}

const char *
FP_ProgPin(const struct fastpath *fp)
{
	(void)fp;
	return "";
}

void
FP_Close(struct fastpath *fp)
{
	(void)fp;
}

int
FP_Watch(struct fastpath *fp, const struct flow *f, const struct alias *seen, uint64_t until_ns)
{
	(void)fp;
	(void)f;
	(void)until_ns;
	return -1;
}

void
FP_Unwatch(struct fastpath *fp, const struct flow *f, const struct alias *seen)
{
	(void)fp;
	(void)f;
}

void
FP_SyncFlow(struct fastpath *fp, struct flow *f, const struct alias *seen, int pkt_dir, int is_rst,
	    uint64_t base_ns, uint64_t now_ns)
{
	(void)fp;
	(void)f;
	(void)pkt_dir;
	(void)is_rst;
	(void)base_ns;
	(void)now_ns;
}

void
FP_Track(struct fastpath *fp, const struct flow *f, const struct alias *seen, uint8_t before, uint64_t now_ns)
{
	(void)fp;
	(void)f;
	(void)before;
	(void)now_ns;
}

void
FP_GetStats(struct fastpath *fp, struct fastpath_stats *st)
{
	(void)fp;
	memset(st, 0, sizeof(*st));
}

#endif
