/* ordo-projector's live page (see ordo_phttp.h). */
#include "ordo_phttp.h"

#include "ordo_httpd.h"
#include "ordo_json.h"
#include "ordo_log.h"
#include "ordo_number.h"
#include "ordo_web.h"

#include <microhttpd.h>
#include <msgpack.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define S_CONNECTIONS_MAX 64
#define S_CONNECTIONS_PER_IP_MAX 40
#define S_TIMEOUT_S 30        /* idle connections; event streams send a comment every 15 s */
#define S_KEEPALIVE_MS 15000  /* an event stream's comment when nothing happens */
#define S_QUERY_WAIT_MS 15000 /* the projector's answer (min_position waits up to 1 s) */

struct ordo_phttp {
    ordo_phttp_config_t cfg;
    ordo_httpd_t *httpd;
    atomic_int streams;
    atomic_ullong serial; /* request ids */
    atomic_bool stopping; /* queries waiting for the projector give up */
};

typedef struct {
    ordo_phttp_t *srv;
    uint64_t after; /* position of the last event sent */
    bool greeted;
} s_stream_t;

/* ---- replies ------------------------------------------------------------ */

static enum MHD_Result s_send(struct MHD_Connection *c, unsigned status, const char *type,
                              void *body, size_t len, enum MHD_ResponseMemoryMode mode)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, mode);
    if (!r) {
        if (mode == MHD_RESPMEM_MUST_FREE)
            free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", type);
    MHD_add_response_header(r, "Cache-Control", "no-cache");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(r, "Allow", "GET");
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

/* {"ok":false,"error":{"code":...,"message":...}} with an HTTP status. */
static enum MHD_Result s_error(struct MHD_Connection *c, unsigned status, const char *code,
                               const char *message)
{
    char *body = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&body, &len);
    if (!f)
        return MHD_NO;
    fprintf(f, "{\"ok\":false,\"error\":{\"code\":\"%s\",\"message\":", code);
    ordo_json_string(f, message, strlen(message));
    fputs("}}", f);
    fclose(f);
    return s_send(c, status, "application/json", body, len, MHD_RESPMEM_MUST_FREE);
}

/* ---- queries to the projector ------------------------------------------ */

/* The reply's `ok` and error code (msgpack-c: the reply is the projector's
 * own, already checked by its encoder). */
static unsigned s_status_of(const char *data, size_t len)
{
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    unsigned status = MHD_HTTP_BAD_GATEWAY;
    if (msgpack_unpack_next(&u, data, len, NULL) == MSGPACK_UNPACK_SUCCESS &&
        u.data.type == MSGPACK_OBJECT_MAP) {
        const msgpack_object_map *m = &u.data.via.map;
        for (uint32_t i = 0; i < m->size; i++) {
            const msgpack_object *k = &m->ptr[i].key, *v = &m->ptr[i].val;
            if (k->type != MSGPACK_OBJECT_STR)
                continue;
            if (k->via.str.size == 2 && !memcmp(k->via.str.ptr, "ok", 2) &&
                v->type == MSGPACK_OBJECT_BOOLEAN && v->via.boolean)
                status = MHD_HTTP_OK;
            if (k->via.str.size == 5 && !memcmp(k->via.str.ptr, "error", 5) &&
                v->type == MSGPACK_OBJECT_MAP) {
                status = MHD_HTTP_SERVICE_UNAVAILABLE;
                for (uint32_t j = 0; j < v->via.map.size; j++) {
                    const msgpack_object *ek = &v->via.map.ptr[j].key,
                                         *ev = &v->via.map.ptr[j].val;
                    if (ek->type != MSGPACK_OBJECT_STR || ev->type != MSGPACK_OBJECT_STR ||
                        ek->via.str.size != 4 || memcmp(ek->via.str.ptr, "code", 4))
                        continue;
                    const char *code = ev->via.str.ptr;
                    uint32_t n = ev->via.str.size;
                    if ((n == 11 && !memcmp(code, "bad_request", 11)) ||
                        (n == 12 && !memcmp(code, "unknown_type", 12)))
                        status = MHD_HTTP_BAD_REQUEST;
                    else if (n == 9 && !memcmp(code, "not_found", 9))
                        status = MHD_HTTP_NOT_FOUND;
                }
            }
        }
    }
    msgpack_unpacked_destroy(&u);
    return status;
}

/* Sends the query packed in `sb` to the projector and answers the HTTP
 * request with its reply as JSON. */
static enum MHD_Result s_query(ordo_phttp_t *srv, struct MHD_Connection *c, msgpack_sbuffer *sb)
{
    void *dealer = zmq_socket(srv->cfg.zmq_ctx, ZMQ_DEALER);
    int zero = 0;
    if (!dealer || zmq_setsockopt(dealer, ZMQ_LINGER, &zero, sizeof zero) != 0 ||
        zmq_connect(dealer, srv->cfg.queries) != 0 ||
        zmq_send(dealer, sb->data, sb->size, 0) < 0) {
        if (dealer)
            zmq_close(dealer);
        return s_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "unavailable",
                       "the projector cannot be asked now");
    }
    zmq_pollitem_t item = {dealer, 0, ZMQ_POLLIN, 0};
    zmq_msg_t reply;
    zmq_msg_init(&reply);
    enum MHD_Result ret;
    /* In slices, so that stopping does not wait for the projector (which
     * stops answering first). */
    int ready = 0;
    for (int waited = 0; ready == 0 && waited < S_QUERY_WAIT_MS && !atomic_load(&srv->stopping);
         waited += 100)
        ready = zmq_poll(&item, 1, 100);
    if (ready == 1 && zmq_msg_recv(&reply, dealer, 0) >= 0) {
        char *body = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&body, &len);
        int bad = !f || ordo_json_write(f, zmq_msg_data(&reply), zmq_msg_size(&reply)) != 0;
        if (f)
            fclose(f);
        if (bad) {
            free(body);
            ret = s_error(c, MHD_HTTP_BAD_GATEWAY, "unavailable", "the answer could not be read");
        } else {
            ret = s_send(c, s_status_of(zmq_msg_data(&reply), zmq_msg_size(&reply)),
                         "application/json", body, len, MHD_RESPMEM_MUST_FREE);
        }
    } else {
        ret = s_error(c, MHD_HTTP_GATEWAY_TIMEOUT, "unavailable",
                      "the projector did not answer in time");
    }
    zmq_msg_close(&reply);
    zmq_close(dealer);
    return ret;
}

static void s_pack_str(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str_with_body(pk, s, strlen(s));
}

/* An integer argument: absent (false, *present false), or a whole number
 * in [min, max] (true); anything else false with *present true. */
static bool s_int_arg(struct MHD_Connection *c, const char *name, int64_t min, int64_t max,
                      int64_t *out, bool *present)
{
    const char *v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, name);
    *present = v != NULL;
    return v && ordo_number_parse(v, min, max, out);
}

static enum MHD_Result s_api(ordo_phttp_t *srv, struct MHD_Connection *c, const char *url)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    char rid[32];
    snprintf(rid, sizeof rid, "http-%llu",
             (unsigned long long)atomic_fetch_add(&srv->serial, 1));
    int64_t restaurant = 0, min_position = 0, from = 0, to = 0;
    bool has_restaurant, has_min, has_from, has_to;
    bool restaurant_ok = s_int_arg(c, "restaurant", 0, INT64_MAX, &restaurant, &has_restaurant);
    bool min_ok = s_int_arg(c, "min_position", 0, INT64_MAX, &min_position, &has_min);
    const char *bad = NULL;
    if (has_min && !min_ok)
        bad = "min_position must be a whole number >= 0";
    if (!strcmp(url, "/api/status")) {
        msgpack_pack_map(&pk, 2);
        s_pack_str(&pk, "type");
        s_pack_str(&pk, "ProjectionStatus");
    } else if (!strcmp(url, "/api/board")) {
        if (!restaurant_ok)
            bad = "restaurant must be a whole number >= 0";
        msgpack_pack_map(&pk, has_min ? 5 : 3);
        s_pack_str(&pk, "type");
        s_pack_str(&pk, "RestaurantBoard");
        s_pack_str(&pk, "restaurant_id");
        msgpack_pack_int64(&pk, restaurant);
        if (has_min) {
            s_pack_str(&pk, "min_position");
            msgpack_pack_int64(&pk, min_position);
            s_pack_str(&pk, "wait_ms");
            msgpack_pack_int64(&pk, 1000);
        }
    } else if (!strcmp(url, "/api/analytics")) {
        bool from_ok = s_int_arg(c, "from_us", INT64_MIN, INT64_MAX, &from, &has_from);
        bool to_ok = s_int_arg(c, "to_us", INT64_MIN, INT64_MAX, &to, &has_to);
        const char *bucket = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "bucket");
        if (!from_ok || !to_ok)
            bad = "from_us and to_us must be whole numbers (microseconds since the epoch)";
        else if (has_restaurant && !restaurant_ok)
            bad = "restaurant must be a whole number >= 0";
        else if (bucket && strcmp(bucket, "minute") && strcmp(bucket, "hour") &&
                 strcmp(bucket, "day"))
            bad = "bucket must be minute, hour or day";
        msgpack_pack_map(&pk, 4 + (bucket != NULL) + has_restaurant);
        s_pack_str(&pk, "type");
        s_pack_str(&pk, "Analytics");
        s_pack_str(&pk, "from_us");
        msgpack_pack_int64(&pk, from);
        s_pack_str(&pk, "to_us");
        msgpack_pack_int64(&pk, to);
        if (bucket) {
            s_pack_str(&pk, "bucket");
            s_pack_str(&pk, bad ? "hour" : bucket);
        }
        if (has_restaurant) {
            s_pack_str(&pk, "restaurant_id");
            msgpack_pack_int64(&pk, restaurant);
        }
    } else {
        msgpack_sbuffer_destroy(&sb);
        return s_error(c, MHD_HTTP_NOT_FOUND, "not_found", "no such page");
    }
    s_pack_str(&pk, "request_id");
    s_pack_str(&pk, rid);
    enum MHD_Result ret = bad ? s_error(c, MHD_HTTP_BAD_REQUEST, "bad_request", bad)
                              : s_query(srv, c, &sb);
    msgpack_sbuffer_destroy(&sb);
    return ret;
}

/* ---- the event stream ---------------------------------------------------- */

static ssize_t s_stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    s_stream_t *st = cls;
    int n;
    if (!st->greeted) {
        st->greeted = true;
        n = snprintf(buf, max, "retry: 1000\nevent: hello\ndata: {\"position\":%llu}\n\n",
                     (unsigned long long)st->after);
        return n > 0 && (size_t)n < max ? n : 0;
    }
    char line[ORDO_PHUB_LINE_MAX];
    uint64_t p = 0;
    int rc = ordo_phub_wait(st->srv->cfg.hub, st->after, S_KEEPALIVE_MS, line, sizeof line, &p);
    if (rc < 0)
        return MHD_CONTENT_READER_END_OF_STREAM;
    if (rc == 0) {
        n = snprintf(buf, max, ": keepalive\n\n");
    } else if (rc == 2) { /* fell behind the ring: the page reloads what it shows */
        st->after = ordo_phub_position(st->srv->cfg.hub);
        n = snprintf(buf, max, "event: reload\ndata: {\"position\":%llu}\n\n",
                     (unsigned long long)st->after);
    } else {
        st->after = p;
        n = snprintf(buf, max, "id: %llu\nevent: change\ndata: %s\n\n", (unsigned long long)p,
                     line);
    }
    return n > 0 && (size_t)n < max ? n : MHD_CONTENT_READER_END_WITH_ERROR;
}

static void s_stream_free(void *cls)
{
    s_stream_t *st = cls;
    atomic_fetch_sub(&st->srv->streams, 1);
    free(st);
}

static enum MHD_Result s_events(ordo_phttp_t *srv, struct MHD_Connection *c)
{
    if (atomic_fetch_add(&srv->streams, 1) >= ORDO_PHTTP_STREAMS_MAX) {
        atomic_fetch_sub(&srv->streams, 1);
        return s_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "overloaded",
                       "too many event streams are open; try again later");
    }
    s_stream_t *st = calloc(1, sizeof *st);
    if (!st) {
        atomic_fetch_sub(&srv->streams, 1);
        return MHD_NO;
    }
    st->srv = srv;
    st->after = ordo_phub_position(srv->cfg.hub);
    struct MHD_Response *r =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 1024, s_stream_read, st,
                                          s_stream_free);
    if (!r) {
        s_stream_free(st);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", "text/event-stream");
    MHD_add_response_header(r, "Cache-Control", "no-cache");
    enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ret;
}

/* ---- the server ---------------------------------------------------------- */

static enum MHD_Result s_on_request(void *cls, struct MHD_Connection *c, const char *url,
                                    const char *method, const char *version,
                                    const char *upload_data, size_t *upload_data_size,
                                    void **state)
{
    (void)version;
    (void)upload_data;
    (void)upload_data_size;
    ordo_phttp_t *srv = cls;
    /* Each request is handled once: a second call (when a response could
     * not be queued, as while stopping) is refused. */
    if (*state)
        return MHD_NO;
    *state = srv;
    if (atomic_load(&srv->stopping))
        return MHD_NO;
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0)
        return s_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, "bad_request", "only GET is served here");
    for (size_t i = 0; i < ordo_web_assets_n; i++)
        if (!strcmp(url, ordo_web_assets[i].path))
            return s_send(c, MHD_HTTP_OK, ordo_web_assets[i].type,
                          (void *)ordo_web_assets[i].data, ordo_web_assets[i].len,
                          MHD_RESPMEM_PERSISTENT);
    if (!strcmp(url, "/api/events"))
        return s_events(srv, c);
    if (!strncmp(url, "/api/", 5))
        return s_api(srv, c, url);
    return s_error(c, MHD_HTTP_NOT_FOUND, "not_found", "no such page");
}

ordo_phttp_t *ordo_phttp_start(const ordo_phttp_config_t *cfg, char *err, size_t errsize)
{
    ordo_phttp_t *srv = calloc(1, sizeof *srv);
    if (!srv) {
        snprintf(err, errsize, "out of memory");
        return NULL;
    }
    srv->cfg = *cfg;
    ordo_httpd_config_t hcfg = {.addr = cfg->addr,
                                .what = "the page",
                                .log_module = "http",
                                .thread_per_connection = true, /* event streams wait */
                                .connections = S_CONNECTIONS_MAX,
                                .per_ip = S_CONNECTIONS_PER_IP_MAX,
                                .timeout_s = S_TIMEOUT_S,
                                .handler = s_on_request,
                                .cls = srv};
    if (!(srv->httpd = ordo_httpd_start(&hcfg, err, errsize))) {
        free(srv);
        return NULL;
    }
    return srv;
}

uint16_t ordo_phttp_port(const ordo_phttp_t *srv)
{
    return srv ? ordo_httpd_port(srv->httpd) : 0;
}

void ordo_phttp_stop(ordo_phttp_t **server)
{
    if (!server || !*server)
        return;
    atomic_store(&(*server)->stopping, true);
    ordo_httpd_stop(&(*server)->httpd);
    free(*server);
    *server = NULL;
}
