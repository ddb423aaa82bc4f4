/* The /metrics HTTP server (see ordo_metrics_http.h), on libmicrohttpd:
 * a well-kept, bounded HTTP/1.1 parser we need not write. */
#include "ordo_metrics_http.h"

#include "ordo_clock.h"
#include "ordo_log.h"
#include "ordo_metrics_addr.h"

#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define S_CONNECTIONS_MAX 32        /* in all */
#define S_CONNECTIONS_PER_IP_MAX 8  /* from one address */
#define S_CONNECTION_MEMORY (32 * 1024) /* request line and headers: beyond, 431/414 */
#define S_TIMEOUT_S 5               /* a connection idle this long is closed */

struct ordo_metrics_http {
    struct MHD_Daemon *daemon;
    ordo_metrics_render_fn render;
    void *ctx;
    uint16_t port;
    uint64_t log_minute, log_lines, log_dropped; /* s_log's rate limit */
};

static enum MHD_Result s_queue_text(struct MHD_Connection *c, unsigned status, const char *text)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", "text/plain; charset=utf-8");
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(r, "Allow", "GET");
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result s_on_request(void *cls, struct MHD_Connection *c, const char *url,
                                    const char *method, const char *version,
                                    const char *upload_data, size_t *upload_data_size,
                                    void **state)
{
    (void)version;
    (void)upload_data;
    (void)upload_data_size;
    (void)state;
    ordo_metrics_http_t *s = cls;
    if (strcmp(url, "/metrics") != 0)
        return s_queue_text(c, MHD_HTTP_NOT_FOUND, "not found: only /metrics is served here\n");
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0)
        return s_queue_text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed: GET /metrics\n");
    ordo_mtext_t t;
    ordo_mtext_init(&t);
    s->render(s->ctx, &t);
    if (t.failed || !t.data) {
        ordo_mtext_free(&t);
        ordo_log_warn("metrics", "out of memory rendering the metrics; answered 500");
        return s_queue_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
    }
    struct MHD_Response *r = MHD_create_response_from_buffer(t.len, t.data, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        ordo_mtext_free(&t);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ret;
}

/* libmicrohttpd's messages (a request too large, the connection limit
 * reached), at most S_LOG_PER_MINUTE a minute: a flood must not flood the
 * log. Its thread only. */
#define S_LOG_PER_MINUTE 20
static void s_log(void *cls, const char *fmt, va_list ap)
{
    ordo_metrics_http_t *s = cls;
    uint64_t minute = ordo_mono_ns() / 60000000000ull;
    if (minute != s->log_minute) {
        if (s->log_dropped)
            ordo_log_warn("metrics", "%llu more such messages in the last minute",
                          (unsigned long long)s->log_dropped);
        s->log_minute = minute;
        s->log_lines = s->log_dropped = 0;
    }
    if (s->log_lines++ >= S_LOG_PER_MINUTE) {
        s->log_dropped++;
        return;
    }
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    ordo_log_warn("metrics", "%s", line);
}

ordo_metrics_http_t *ordo_metrics_http_start(const char *addr, ordo_metrics_render_fn render,
                                             void *ctx, char *err, size_t errsize)
{
    struct sockaddr_storage ss;
    socklen_t len;
    if (ordo_metrics_addr_resolve(addr, &ss, &len, err, errsize) != 0)
        return NULL;
    ordo_metrics_http_t *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errsize, "out of memory");
        return NULL;
    }
    s->render = render;
    s->ctx = ctx;
    /* ITC: stopping wakes the thread at once, even when it is not polling
     * the listening socket (at the connection limit). */
    unsigned flags =
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ITC | MHD_USE_ERROR_LOG;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    s->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, s_on_request, s, MHD_OPTION_EXTERNAL_LOGGER, s_log, s,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)S_CONNECTIONS_MAX,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)S_CONNECTIONS_PER_IP_MAX,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)S_CONNECTION_MEMORY,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)S_TIMEOUT_S, MHD_OPTION_END);
    if (!s->daemon) {
        snprintf(err, errsize, "cannot serve metrics on %s (in use, or not an address of this "
                 "machine?)", addr);
        free(s);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : 0;
    return s;
}

uint16_t ordo_metrics_http_port(const ordo_metrics_http_t *server)
{
    return server ? server->port : 0;
}

void ordo_metrics_http_stop(ordo_metrics_http_t **server)
{
    if (!server || !*server)
        return;
    MHD_stop_daemon((*server)->daemon);
    free(*server);
    *server = NULL;
}
