/* Eviction watch and timeout learning: two small preallocated tables. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "eviction.h"
#include "packet.h"

int
EVI_Init(struct eviction *ev, uint32_t watch_cap, uint32_t net_cap)
{
	memset(ev, 0, sizeof(*ev));
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

struct evict_watch *
EVI_Watch(struct eviction *ev, uint32_t flow_idx, uint32_t flow_start_cs)
{
	struct evict_watch *w = EVI_Find(ev, flow_idx, flow_start_cs);

	if (w)
		return w;
	if (ev->wused == ev->wcap) {
		ev->watch_full++;
		return NULL;
	}
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

struct evict_watch *
EVI_Find(struct eviction *ev, uint32_t flow_idx, uint32_t flow_start_cs)
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

void
EVI_Release(struct eviction *ev, struct evict_watch *w)
{
	if (w && w->in_use) {
		w->in_use = 0;
		ev->wused--;
	}
}

static void
net_of(int family, const uint8_t *addr, uint8_t *out)
{
	memset(out, 0, 16);
	if (family == AF_INET)
		memcpy(out, addr, 3);     /* /24 */
	else
		memcpy(out, addr, 8);     /* /64 */
}

const struct evict_net *
EVI_Learn(struct eviction *ev, int family, const uint8_t *server, uint32_t gap_ms, int evicted)
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

void
EVI_FormatNet(const struct evict_net *n, char *buf, unsigned len)
{
	char a[48];

	PKT_FormatAddr(n->family, n->addr, a, sizeof(a));
	snprintf(buf, len, "%s/%d", a, n->family == AF_INET ? 24 : 64);
}
