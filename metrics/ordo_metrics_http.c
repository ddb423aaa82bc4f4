/* The /metrics HTTP server (see ordo_metrics_http.h), on libmicrohttpd:
 * a well-kept, bounded HTTP/1.1 parser we need not write. */
#include "ordo_metrics_http.h"

#include "ordo_httpd.h"
#include "ordo_log.h"

#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define S_CONNECTIONS_MAX 32        /* in all */
#define S_CONNECTIONS_PER_IP_MAX 8  /* from one address */
#define S_TIMEOUT_S 5               /* a connection idle this long is closed */

struct ordo_metrics_http {
    ordo_httpd_t *httpd;
    ordo_metrics_render_fn render;
    void *ctx;
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

ordo_metrics_http_t *ordo_metrics_http_start(const char *addr, ordo_metrics_render_fn render,
                                             void *ctx, char *err, size_t errsize)
{
    ordo_metrics_http_t *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errsize, "out of memory");
        return NULL;
    }
    s->render = render;
    s->ctx = ctx;
    ordo_httpd_config_t cfg = {.addr = addr,
                               .what = "metrics",
                               .log_module = "metrics",
                               .connections = S_CONNECTIONS_MAX,
                               .per_ip = S_CONNECTIONS_PER_IP_MAX,
                               .timeout_s = S_TIMEOUT_S,
                               .handler = s_on_request,
                               .cls = s};
    if (!(s->httpd = ordo_httpd_start(&cfg, err, errsize))) {
        free(s);
        return NULL;
    }
    return s;
}

uint16_t ordo_metrics_http_port(const ordo_metrics_http_t *server)
{
    return server ? ordo_httpd_port(server->httpd) : 0;
}

void ordo_metrics_http_stop(ordo_metrics_http_t **server)
{
    if (!server || !*server)
        return;
    ordo_httpd_stop(&(*server)->httpd);
    free(*server);
    *server = NULL;
}
