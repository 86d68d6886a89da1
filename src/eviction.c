/* Eviction detection: the watches of resumptions after a silence, the RSTs that end a silence,
 * and what each outcome teaches about a server network's idle timeout. Two small preallocated
 * tables, touched only when a flow resumes after a silence, when a RST comes, and once a second. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "eviction.h"
#include "log.h"
#include "tcpstate.h"

/* A watch ends after this long without an outcome. */
#define WATCH_MAX_MS 60000

int
EVI_Init(struct eviction *ev, const struct evi_ctx *ctx, uint32_t watch_cap, uint32_t net_cap)
{
	memset(ev, 0, sizeof(*ev));
	ev->ctx = *ctx;
	ev->watch = calloc(watch_cap, sizeof(*ev->watch));
	ev->nets = calloc(net_cap, sizeof(*ev->nets));
	if (ev->watch == NULL || ev->nets == NULL) {
		EVI_Fini(ev);
		return -1;
	}
	ev->wcap = watch_cap;
	ev->ncap = net_cap;
	return 0;
}

void
EVI_Fini(struct eviction *ev)
{
	free(ev->watch);
	free(ev->nets);
	memset(ev, 0, sizeof(*ev));
}

static inline int
flow_family(const struct flow *f)
{
	return (f->flags & FL_IPV6) ? AF_INET6 : AF_INET;
}

/* The middlebox idle timeout configured for the flow's server (0: none). */
static uint32_t
flow_timeout_s(const struct eviction *ev, const struct flow *f)
{
	return CFG_IdleTimeoutFor(ev->ctx.cfg, flow_family(f), f->srv, f->sport);
}

/* ---- the watch table ---- */

/* The watch of a flow, or NULL. */
static struct evict_watch *
watch_find(struct eviction *ev, uint32_t flow_idx, uint32_t flow_start_cs)
{
	for (uint32_t i = 0, seen = 0; i < ev->wcap && seen < ev->wused; i++) {
		struct evict_watch *w = &ev->watch[i];

		if (!w->in_use)
			continue;
		seen++;
		if (w->flow_idx == flow_idx && w->flow_start_cs == flow_start_cs)
			return w;
	}
	return NULL;
}

/* Start watching a resumption; NULL when the table is full. */
static struct evict_watch *
watch_start(struct eviction *ev, uint32_t flow_idx, uint32_t flow_start_cs)
{
	struct evict_watch *w = watch_find(ev, flow_idx, flow_start_cs);

	if (w)
		return w;
	if (ev->wused == ev->wcap)
		return NULL;
	for (uint32_t i = 0; i < ev->wcap; i++) {
		w = &ev->watch[i];
		if (!w->in_use) {
			memset(w, 0, sizeof(*w));
			w->in_use = 1;
			w->flow_idx = flow_idx;
			w->flow_start_cs = flow_start_cs;
			ev->wused++;
			return w;
		}
	}
	return NULL;
}

static void
watch_release(struct eviction *ev, struct evict_watch *w)
{
	if (w && w->in_use) {
		w->in_use = 0;
		ev->wused--;
	}
}

/* ---- learning ---- */

static void
net_of(int family, const uint8_t *addr, uint8_t *out)
{
	memset(out, 0, 16);
	if (family == AF_INET)
		memcpy(out, addr, 3);     /* /24 */
	else
		memcpy(out, addr, 8);     /* /64 */
}

/* Record an outcome for the server network of addr: silence gap_ms, evicted or survived.
 * Returns the network's entry (NULL if none could be kept). */
static const struct evict_net *
learn(struct eviction *ev, int family, const uint8_t *server, uint32_t gap_ms, int evicted)
{
	uint8_t net[16];
	struct evict_net *n = NULL, *oldest = NULL;

	net_of(family, server, net);
	for (uint32_t i = 0; i < ev->ncap; i++) {
		struct evict_net *c = &ev->nets[i];

		if (c->in_use && c->family == family && memcmp(c->addr, net, 16) == 0) {
			n = c;
			break;
		}
		if (!c->in_use && n == NULL && oldest == NULL)
			oldest = c;     /* the first free entry */
	}
	if (n == NULL) {
		if (oldest == NULL)
			return NULL;    /* full: the first networks seen keep their entries */
		n = oldest;
		memset(n, 0, sizeof(*n));
		n->in_use = 1;
		n->family = (uint8_t)family;
		memcpy(n->addr, net, 16);
	}
	if (evicted) {
		n->evicted++;
		if (n->min_evicted_ms == 0 || gap_ms < n->min_evicted_ms)
			n->min_evicted_ms = gap_ms;
	} else {
		n->survived++;
		if (gap_ms > n->max_survived_ms)
			n->max_survived_ms = gap_ms;
	}
	return n;
}

/* A network entry's prefix ("198.18.3.0/24") into buf (at least 52 bytes). */
static void
format_net(const struct evict_net *n, char *buf, unsigned len)
{
	char a[48];

	PKT_FormatAddr(n->family, n->addr, a, sizeof(a));
	snprintf(buf, len, "%s/%d", a, n->family == AF_INET ? 24 : 64);
}

void
EVI_LogLearned(const struct eviction *ev)
{
	char nb[64];

	for (uint32_t i = 0; i < ev->ncap; i++) {
		const struct evict_net *n = &ev->nets[i];

		if (!n->in_use)
			continue;
		format_net(n, nb, sizeof(nb));
		if (n->min_evicted_ms && n->survived)
			log_info("eviction: %s: idle timeout between %.1f s (longest survived, %u times) and %.1f s (shortest evicted, %u times)",
				 nb, n->max_survived_ms / 1000.0, n->survived, n->min_evicted_ms / 1000.0, n->evicted);
		else if (n->min_evicted_ms)
			log_info("eviction: %s: idle timeout at most %.1f s (shortest evicted, %u times; no silence survived yet)",
				 nb, n->min_evicted_ms / 1000.0, n->evicted);
		else
			log_info("eviction: %s: survived silences up to %.1f s (%u times), no eviction seen",
				 nb, n->max_survived_ms / 1000.0, n->survived);
	}
}

/* ---- detection ---- */

void
EVI_Found(struct eviction *ev, struct flow *f, const struct evi_seen *seen)
{
	struct rep_eviction r = {
		.f = f, .kind = seen->kind, .by = seen->by, .gap_ms = seen->gap_ms,
		.retrans = seen->retrans, .timeout_s = seen->timeout_s,
	};
	const struct evict_net *n;

	if (f->dir[DIR_TOSERVER].flags & FD_EVICTED)
		return;
	f->dir[DIR_TOSERVER].flags |= FD_EVICTED;
	n = learn(ev, flow_family(f), f->srv, seen->gap_ms, 1);
	if (seen->kind == REP_EVICT_RST)
		ev->st.evictions_rst++;
	else
		ev->st.evictions_blackhole++;
	if (ev->ctx.rep->sink == NULL)
		return;   /* no events */
	r.flow_id = FLOW_Id(ev->ctx.table, f);
	if (n) {
		format_net(n, r.network, sizeof(r.network));
		r.max_survived_ms = n->max_survived_ms;
		r.min_evicted_ms = n->min_evicted_ms;
	}
	REP_Eviction(ev->ctx.rep, &r);
}

void
EVI_Unwatch(struct eviction *ev, uint32_t idx, struct flow *f)
{
	if (f->flags & FL_WATCH) {
		watch_release(ev, watch_find(ev, idx, f->first_seen_cs));
		f->flags &= (uint8_t)~FL_WATCH;
	}
}

void
EVI_Packet(struct eviction *ev, uint32_t idx, struct flow *f, int dir, const struct pkt *p)
{
	uint32_t now_ms = ev->ctx.now->ms, gap = now_ms - f->last_seen_ms, timeout;
	struct evict_watch *w;

	if (f->flags & FL_WATCH) {
		w = watch_find(ev, idx, f->first_seen_cs);
		if (w == NULL) {
			f->flags &= (uint8_t)~FL_WATCH;
		} else if (dir != w->dir) {
			if (!w->reported)
				learn(ev, flow_family(f), f->srv, w->gap_ms, 0);
			watch_release(ev, w);
			f->flags &= (uint8_t)~FL_WATCH;
		} else if (p->seq == w->seq && !(p->flags & TCPF_SYN)) {
			if (w->retrans < 255)
				w->retrans++;
			if (w->retrans >= 2 && !w->reported) {
				struct evi_seen seen = {
					.kind = REP_EVICT_BLACKHOLE, .by = REP_BY_TRAFFIC, .gap_ms = w->gap_ms,
					.retrans = w->retrans, .timeout_s = w->timeout_s,
				};

				w->reported = 1;
				EVI_Found(ev, f, &seen);
			}
		}
		return;
	}
	if (gap < 1000 || f->state != TCP_ESTABLISHED)
		return;
	timeout = flow_timeout_s(ev, f);
	if (gap < CFG_WatchMinGap(ev->ctx.cfg, timeout) * 1000)
		return;
	w = watch_start(ev, idx, f->first_seen_cs);
	if (w == NULL) {
		ev->st.watch_full++;
		return;
	}
	w->gap_ms = gap;
	w->start_ms = now_ms;
	w->seq = p->seq;
	w->timeout_s = timeout;
	w->dir = (uint8_t)dir;
	f->flags |= FL_WATCH;
}

int
EVI_RstAfterSilence(struct eviction *ev, uint32_t idx, struct flow *f, int dir, struct ka_flow *k,
		    struct evi_seen *seen)
{
	uint32_t now_ms = ev->ctx.now->ms, idle = now_ms - f->last_seen_ms;

	memset(seen, 0, sizeof(*seen));
	seen->kind = REP_EVICT_RST;
	seen->by = REP_BY_TRAFFIC;
	if (f->dir[DIR_TOSERVER].flags & FD_EVICTED) {
		seen->gap_ms = idle;
		return 1;           /* the rest of an eviction's RSTs */
	}
	if (k && (k->outstanding & (1u << !dir))) {
		ev->st.probes_rst++;
		k->gave_up = 1;
		seen->gap_ms = idle;
		seen->timeout_s = flow_timeout_s(ev, f);
		seen->by = REP_BY_PROBE;
		return 1;           /* our probe found the state already lost */
	}
	if (f->flags & FL_WATCH) {
		struct evict_watch *w = watch_find(ev, idx, f->first_seen_cs);

		/* A RST answering the resumption: the silence was long enough to be watched, so
		 * a middlebox with a shorter timeout than configured is caught too. */
		if (w && dir != w->dir) {
			seen->gap_ms = w->gap_ms;
			seen->timeout_s = w->timeout_s;
			return 1;
		}
	}
	/* RSTs with no trigger, at the timeout (load balancers that reset both sides when they
	 * forget a flow). Only near a configured timeout: long after it, or on a flow our probes
	 * kept alive, an odd RST is judged like any other. */
	if (idle >= 1000 && (f->state == TCP_ESTABLISHED || f->state == TCP_FIN_WAIT)) {
		if (k && (int32_t)(k->refresh_ms - f->last_seen_ms) > 0)
			idle = now_ms - k->refresh_ms;
		seen->timeout_s = flow_timeout_s(ev, f);
		seen->gap_ms = idle;
		return seen->timeout_s && idle >= seen->timeout_s * 1000 && idle <= seen->timeout_s * 2000;
	}
	return 0;
}

void
EVI_RstEvicted(struct eviction *ev, uint32_t idx, struct flow *f, const struct evi_seen *seen)
{
	EVI_Found(ev, f, seen);
	EVI_Unwatch(ev, idx, f);
}

void
EVI_Expire(struct eviction *ev)
{
	uint32_t now_ms = ev->ctx.now->ms;

	for (uint32_t i = 0; i < ev->wcap && ev->wused; i++) {
		struct evict_watch *w = &ev->watch[i];

		if (w->in_use && now_ms - w->start_ms > WATCH_MAX_MS) {
			struct flow *f = FLOW_Get(ev->ctx.table, w->flow_idx);

			if ((f->flags & FL_LINKED) && f->first_seen_cs == w->flow_start_cs)
				f->flags &= (uint8_t)~FL_WATCH;
			watch_release(ev, w);
		}
	}
}

uint32_t
EVI_Learned(const struct eviction *ev, struct evict_net *out, uint32_t max)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < ev->ncap && n < max; i++)
		if (ev->nets[i].in_use)
			out[n++] = ev->nets[i];
	return n;
}
