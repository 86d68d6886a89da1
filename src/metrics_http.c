/* The HTTP /metrics listener on libmicrohttpd (see metrics_http.h); built only with it. */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "log.h"
#include "metrics.h"
#include "metrics_http.h"

#if MHD_VERSION < 0x00097002
typedef int mhd_result;    /* before 0.9.71 the callbacks returned int */
#else
typedef enum MHD_Result mhd_result;
#endif

/* Bounds: Prometheus keeps one connection per target; a few more leave room for a person with
 * curl, and nothing a local user can do holds more than this many sockets and this much time. */
#define HTTP_CONNECTIONS 16
#define HTTP_CONNECTIONS_PER_IP 8
#define HTTP_TIMEOUT_S 10
#define HTTP_MEMORY_PER_CONNECTION 16384

#define CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

static struct MHD_Daemon *mhd;
static pthread_mutex_t snap_lock = PTHREAD_MUTEX_INITIALIZER;
static char *snap;
static size_t snap_len, snap_cap;
static int snap_ok;

static mhd_result
reply(struct MHD_Connection *c, unsigned code, const char *text)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(strlen(text), (void *)text,
								  MHD_RESPMEM_PERSISTENT);
	mhd_result ret;

	if (r == NULL)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
	if (code == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	ret = MHD_queue_response(c, code, r);
	MHD_destroy_response(r);
	return ret;
}

static mhd_result
answer(void *cls, struct MHD_Connection *c, const char *url, const char *method, const char *version,
       const char *upload_data, size_t *upload_data_size, void **con_cls)
{
	struct MHD_Response *r = NULL;
	mhd_result ret;
	int ready;

	(void)cls;
	(void)version;
	(void)upload_data;
	(void)con_cls;
	/* A request body is never wanted: answering at once makes the server discard it. */
	*upload_data_size = 0;
	if (strcmp(url, "/metrics") != 0)
		return reply(c, MHD_HTTP_NOT_FOUND, "not found: the metrics are at /metrics\n");
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n");
	pthread_mutex_lock(&snap_lock);
	ready = snap_ok;
	if (ready)
		r = MHD_create_response_from_buffer(snap_len, snap, MHD_RESPMEM_MUST_COPY);
	pthread_mutex_unlock(&snap_lock);
	if (!ready)
		return reply(c, MHD_HTTP_SERVICE_UNAVAILABLE, "no metrics yet\n");
	if (r == NULL)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, CONTENT_TYPE);
	ret = MHD_queue_response(c, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

static void
mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[256];

	(void)cls;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	msg[strcspn(msg, "\n")] = '\0';
	log_debug("metrics.listen: %s", msg);
}

int
MHTTP_Start(const char *addr)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ERROR_LOG;

	if (MET_ParseListen(addr, &ss, &sl) < 0) {
		log_warnx("metrics.listen: invalid address %s", addr);
		return -1;
	}
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	mhd = MHD_start_daemon(flags, 0, NULL, NULL, answer, NULL,
			       MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
			       MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
			       MHD_OPTION_CONNECTION_LIMIT, (unsigned)HTTP_CONNECTIONS,
			       MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)HTTP_CONNECTIONS_PER_IP,
			       MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HTTP_TIMEOUT_S,
			       MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTP_MEMORY_PER_CONNECTION,
			       MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned)1,
			       MHD_OPTION_END);
	if (mhd == NULL) {
		log_warnx("metrics.listen: cannot listen on %s (address in use or not local?)", addr);
		return -1;
	}
	log_info("metrics: serving http://%s/metrics", addr);
	return 0;
}

int
MHTTP_Publish(const char *text, size_t len)
{
	int rc = 0;

	pthread_mutex_lock(&snap_lock);
	if (len + 1 > snap_cap) {
		size_t cap = len + 1 + len / 4;
		char *p = realloc(snap, cap);

		if (p == NULL) {
			rc = -1;
			goto out;
		}
		snap = p;
		snap_cap = cap;
	}
	memcpy(snap, text, len);
	snap[len] = '\0';
	snap_len = len;
	snap_ok = 1;
out:
	pthread_mutex_unlock(&snap_lock);
	return rc;
}

void
MHTTP_Stop(void)
{
	if (mhd != NULL)
		MHD_stop_daemon(mhd);
	mhd = NULL;
	pthread_mutex_lock(&snap_lock);
	free(snap);
	snap = NULL;
	snap_len = snap_cap = 0;
	snap_ok = 0;
	pthread_mutex_unlock(&snap_lock);
}
