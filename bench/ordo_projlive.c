/* ordo-projlive: the projector under live load, measured from outside.
 * Run it beside ordo-benchmark (which loads the engine) against a running
 * ordo-server and ordo-projector. For --duration seconds it measures
 *   lag:     a command of its own every --probe-ms, then GetOrderSummary
 *            of that order with min_position = the command's position:
 *            the time from the engine's acknowledgement to the projector's
 *            answer is how long the event took to be applied (plus one
 *            query round trip);
 *   queries: an open-loop stream of --qps queries spread over the six
 *            query types, each timed from when it was due (so a stall
 *            counts in full, not only for the one query it delayed);
 * then, once the load has stopped (or at the end), how long until every
 * projection reports lag_events 0.
 * Replies are read with the project's validating MessagePack reader. */
#include "ordo.h"
#include "ordo_histogram.h"
#include "ordo_mp.h"

#include <getopt.h>
#include <pthread.h>
#include <inttypes.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#define S_TYPES 6
#define S_LIVE_POLL_NS 10000000 /* ProjectionStatus every 10 ms until every projection is live */
static const char *const s_types[S_TYPES] = {"GetOrderSummary", "ListOrders", "RestaurantBoard",
                                             "UserHistory",     "Analytics",  "OrdersAsOf"};

static int64_t s_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t s_wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Packs query `t` (with request id `seq`) into sb. */
static void s_pack_query(msgpack_sbuffer *sb, int t, uint64_t seq, const char *order_id)
{
    msgpack_packer pk;
    msgpack_sbuffer_clear(sb);
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    int64_t now = s_wall_us();
    int n = t == 4 ? 5 : t == 5 ? 4 : 3; /* type, request_id and the query's fields */
    msgpack_pack_map(&pk, (size_t)n);
    msgpack_pack_str_with_body(&pk, "type", 4);
    msgpack_pack_str_with_body(&pk, s_types[t], strlen(s_types[t]));
    char rid[32];
    int rl = snprintf(rid, sizeof rid, "q%" PRIu64, seq);
    msgpack_pack_str_with_body(&pk, "request_id", 10);
    msgpack_pack_str_with_body(&pk, rid, (size_t)rl);
    switch (t) {
    case 0:
        msgpack_pack_str_with_body(&pk, "order_id", 8);
        msgpack_pack_str_with_body(&pk, order_id, strlen(order_id));
        break;
    case 1:
        msgpack_pack_str_with_body(&pk, "status", 6);
        msgpack_pack_str_with_body(&pk, "Preparing", 9);
        break;
    case 2:
        msgpack_pack_str_with_body(&pk, "restaurant_id", 13);
        msgpack_pack_int64(&pk, (int64_t)(seq % 500) + 1);
        break;
    case 3:
        msgpack_pack_str_with_body(&pk, "user_id", 7);
        msgpack_pack_int64(&pk, (int64_t)(seq % 100000) + 1);
        break;
    case 4: /* the last hour by minute */
        msgpack_pack_str_with_body(&pk, "from_us", 7);
        msgpack_pack_int64(&pk, now - 3600LL * 1000000);
        msgpack_pack_str_with_body(&pk, "to_us", 5);
        msgpack_pack_int64(&pk, now);
        msgpack_pack_str_with_body(&pk, "bucket", 6);
        msgpack_pack_str_with_body(&pk, "minute", 6);
        break;
    default: /* which orders were out for delivery ten seconds ago */
        msgpack_pack_str_with_body(&pk, "at_us", 5);
        msgpack_pack_int64(&pk, now - 10LL * 1000000);
        msgpack_pack_str_with_body(&pk, "status", 6);
        msgpack_pack_str_with_body(&pk, "OutForDelivery", 14);
        break;
    }
}

/* The request id "qN" of a reply, and whether it is ok. */
static bool s_read_reply(const void *buf, size_t len, uint64_t *seq, bool *ok)
{
    if (ordo_mp_validate(buf, len, 32) != ORDO_MP_OK)
        return false;
    ordo_mp_t r;
    ordo_mp_init(&r, buf, len);
    uint32_t n;
    if (!ordo_mp_read_map(&r, &n))
        return false;
    bool have = false;
    *ok = false;
    for (uint32_t i = 0; i < n; i++) {
        const char *k, *s;
        uint32_t kl, sl;
        if (!ordo_mp_read_str(&r, &k, &kl))
            return false;
        if (ORDO_MP_KEY_IS(k, kl, "ok") && ordo_mp_read_bool(&r, ok))
            continue;
        if (ORDO_MP_KEY_IS(k, kl, "request_id") && ordo_mp_read_str(&r, &s, &sl) && sl > 1 &&
            s[0] == 'q') {
            *seq = strtoull(s + 1, NULL, 10);
            have = true;
            continue;
        }
        ordo_mp_skip(&r);
    }
    return have;
}

/* Every projection's lag_events is 0 (ProjectionStatus over a raw call). */
static int s_all_live(ordo_client_t *p)
{
    char rid[ORDO_ID_SIZE];
    ordo_client_new_request_id(p, rid);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 2);
    msgpack_pack_str_with_body(&pk, "type", 4);
    msgpack_pack_str_with_body(&pk, "ProjectionStatus", 16);
    msgpack_pack_str_with_body(&pk, "request_id", 10);
    msgpack_pack_str_with_body(&pk, rid, strlen(rid));
    uint8_t *reply = NULL;
    size_t len = 0;
    int rc = ordo_client_call_raw(p, sb.data, sb.size, 5000, &reply, &len);
    msgpack_sbuffer_destroy(&sb);
    if (rc != 0)
        return -1;
    /* count "lag_events" keys whose value is not 0: scan the bytes */
    int lagging = 0;
    for (size_t i = 0; i + 11 < len; i++)
        if (memcmp(reply + i, "\xaalag_events", 11) == 0 && reply[i + 11] != 0x00)
            lagging++;
    free(reply);
    return lagging == 0;
}

static void s_report(const char *name, ordo_histogram_t *h, bool json, bool *first)
{
    double ms = 1e6;
    if (json)
        printf("%s\"%s\":{\"n\":%" PRIu64 ",\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"max_ms\":%.3f}",
               *first ? "" : ",", name, ordo_histogram_count(h),
               (double)ordo_histogram_percentile(h, 50) / ms,
               (double)ordo_histogram_percentile(h, 99) / ms, (double)ordo_histogram_max(h) / ms);
    else
        printf("  %-22s n %8" PRIu64 "   p50 %8.3f ms   p99 %8.3f ms   max %8.3f ms\n", name,
               ordo_histogram_count(h), (double)ordo_histogram_percentile(h, 50) / ms,
               (double)ordo_histogram_percentile(h, 99) / ms, (double)ordo_histogram_max(h) / ms);
    *first = false;
}

/* The lag probes, on their own thread so their waits never hold up the
 * query stream: a command, then GetOrderSummary of it with min_position
 * = its position; the time from acknowledgement to answer. */
typedef struct {
    const char *engine, *projector;
    int64_t end_ns;
    int probe_ms;
    int64_t tag;
    ordo_histogram_t *lag; /* owned by main; written here until joined */
    uint64_t probes;
} s_probe_t;

static void *s_probe(void *arg)
{
    s_probe_t *pr = arg;
    ordo_client_t *eng = ordo_client_new(pr->engine), *proj = ordo_client_new(pr->projector);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    for (uint64_t n = 0; eng && proj && s_now_ns() < pr->end_ns; n++) {
        int64_t next = s_now_ns() + (int64_t)pr->probe_ms * 1000000;
        char probe_id[64];
        snprintf(probe_id, sizeof probe_id, "lp-%" PRId64 "-%" PRIu64, pr->tag, n);
        ordo_client_item_t item = {"sku-1", "Probe", 1, 100};
        ordo_client_request_t req = {.type = "CreateOrder",
                                     .order_id = probe_id,
                                     .user_id = 1,
                                     .restaurant_id = 1,
                                     .items = &item,
                                     .n_items = 1,
                                     .delivery_address = "1 Probe Street"};
        ordo_result_t res = ORDO_RESULT_INIT;
        if (ordo_client_call(eng, &req, 10000, &res) == 0) {
            int64_t acked = s_now_ns();
            char rid[ORDO_ID_SIZE];
            ordo_client_new_request_id(proj, rid);
            msgpack_packer pk;
            msgpack_sbuffer_clear(&sb);
            msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
            msgpack_pack_map(&pk, 5);
            msgpack_pack_str_with_body(&pk, "type", 4);
            msgpack_pack_str_with_body(&pk, "GetOrderSummary", 15);
            msgpack_pack_str_with_body(&pk, "request_id", 10);
            msgpack_pack_str_with_body(&pk, rid, strlen(rid));
            msgpack_pack_str_with_body(&pk, "order_id", 8);
            msgpack_pack_str_with_body(&pk, probe_id, strlen(probe_id));
            msgpack_pack_str_with_body(&pk, "min_position", 12);
            msgpack_pack_int64(&pk, res.position);
            msgpack_pack_str_with_body(&pk, "wait_ms", 7);
            msgpack_pack_int64(&pk, 10000);
            uint8_t *reply = NULL;
            size_t rl = 0;
            if (ordo_client_call_raw(proj, sb.data, sb.size, 15000, &reply, &rl) == 0) {
                ordo_histogram_record(pr->lag, (uint64_t)(s_now_ns() - acked));
                pr->probes++;
            }
            free(reply);
        }
        ordo_result_clear(&res);
        int64_t left = next - s_now_ns();
        if (left > 0) {
            struct timespec ts = {left / 1000000000, left % 1000000000};
            nanosleep(&ts, NULL); /* pacing, not synchronisation */
        }
    }
    msgpack_sbuffer_destroy(&sb);
    ordo_client_destroy(&eng);
    ordo_client_destroy(&proj);
    return NULL;
}

static void s_usage(FILE *out)
{
    fprintf(out,
            "Usage: ordo-projlive [OPTIONS]\n"
            "The projector under live load: event lag (engine acknowledgement to applied, by\n"
            "read-your-write probes) and query latency at an open-loop rate, then the time\n"
            "until every projection is live again. Load the engine with ordo-benchmark meanwhile.\n"
            "  --engine ENDPOINT     (default tcp://127.0.0.1:7700)\n"
            "  --projector ENDPOINT  (default tcp://127.0.0.1:7702)\n"
            "  --duration S          seconds measured (default 10)\n"
            "  --qps N               queries per second, open loop (default 1000)\n"
            "  --probe-ms MS         one lag probe every MS (default 10)\n"
            "  --types LIST          the query types to send, comma-separated (default all six)\n"
            "  --json                one JSON object on stdout\n"
            "  --help\n");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"engine", required_argument, NULL, 'e'}, {"projector", required_argument, NULL, 'p'},
        {"duration", required_argument, NULL, 'd'}, {"qps", required_argument, NULL, 'q'},
        {"probe-ms", required_argument, NULL, 'b'}, {"json", no_argument, NULL, 'j'},
        {"types", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    const char *engine = ORDO_DEFAULT_ENDPOINT, *projector = ORDO_DEFAULT_PROJECTOR_ENDPOINT;
    int duration = 10, qps = 1000, probe_ms = 10;
    bool json = false;
    bool use[S_TYPES] = {true, true, true, true, true, true};
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'e': engine = optarg; break;
        case 'p': projector = optarg; break;
        case 'd': duration = atoi(optarg); break;
        case 'q': qps = atoi(optarg); break;
        case 'b': probe_ms = atoi(optarg); break;
        case 'j': json = true; break;
        case 't':
            for (int t = 0; t < S_TYPES; t++)
                use[t] = strstr(optarg, s_types[t]) != NULL;
            break;
        case 'h': s_usage(stdout); return 0;
        default: s_usage(stderr); return 2;
        }
    }
    if (duration < 1 || qps < 1 || probe_ms < 1) {
        fprintf(stderr, "ordo-projlive: --duration, --qps and --probe-ms must be >= 1\n");
        return 2;
    }
    ordo_client_t *proj = ordo_client_new(projector);
    void *ctx = zmq_ctx_new();
    void *qs = zmq_socket(ctx, ZMQ_DEALER);
    int zero = 0;
    zmq_setsockopt(qs, ZMQ_LINGER, &zero, sizeof zero);
    if (!proj || zmq_connect(qs, projector) != 0) {
        fprintf(stderr, "ordo-projlive: cannot connect\n");
        return 1;
    }
    ordo_histogram_t *lag = ordo_histogram_new(), *lat[S_TYPES];
    for (int t = 0; t < S_TYPES; t++)
        lat[t] = ordo_histogram_new();
    int64_t *due = calloc((size_t)qps * (size_t)duration + 1, sizeof *due);
    uint8_t *qtype = calloc((size_t)qps * (size_t)duration + 1, 1);
    bool any = false;
    for (int t = 0; t < S_TYPES; t++)
        any |= use[t];
    if (!due || !qtype || !any) {
        fprintf(stderr, "ordo-projlive: out of memory, or --types names no query type\n");
        return 2;
    }
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    int64_t tag = s_wall_us();
    char seen_id[64]; /* the first probe's order: GetOrderSummary asks for it */
    snprintf(seen_id, sizeof seen_id, "lp-%" PRId64 "-0", tag);
    uint64_t sent = 0, answered = 0, errors = 0;
    int64_t t0 = s_now_ns(), end = t0 + (int64_t)duration * 1000000000;
    int64_t gap = 1000000000 / qps, next_q = t0;
    s_probe_t pr = {engine, projector, end, probe_ms, tag, lag, 0};
    pthread_t probe_thread;
    if (pthread_create(&probe_thread, NULL, s_probe, &pr) != 0) {
        fprintf(stderr, "ordo-projlive: cannot start the probe thread\n");
        return 1;
    }
    fprintf(stderr, "ordo-projlive: %d s at %d queries/s, a probe every %d ms\n", duration, qps,
            probe_ms);
    while (s_now_ns() < end || answered + errors < sent) {
        int64_t now = s_now_ns();
        if (now > end + 30LL * 1000000000)
            break; /* replies that never came */
        while (now < end && next_q <= now) {
            int type = (int)(sent % S_TYPES);
            while (!use[type]) /* the next type asked for (at least one is) */
                type = (type + 1) % S_TYPES;
            s_pack_query(&sb, type, sent, seen_id);
            qtype[sent] = (uint8_t)type;
            due[sent] = next_q;
            zmq_send(qs, sb.data, sb.size, 0);
            sent++;
            next_q += gap;
        }
        zmq_pollitem_t item = {qs, 0, ZMQ_POLLIN, 0};
        long wait_ms = 1;
        zmq_poll(&item, 1, wait_ms);
        zmq_msg_t m;
        zmq_msg_init(&m);
        while (zmq_msg_recv(&m, qs, ZMQ_DONTWAIT) >= 0) {
            uint64_t seq = 0;
            bool ok;
            if (s_read_reply(zmq_msg_data(&m), zmq_msg_size(&m), &seq, &ok) && seq < sent) {
                if (ok) {
                    ordo_histogram_record(lat[qtype[seq]], (uint64_t)(s_now_ns() - due[seq]));
                    answered++;
                } else {
                    errors++;
                }
            }
        }
        zmq_msg_close(&m);
    }
    pthread_join(probe_thread, NULL);
    uint64_t probes = pr.probes;
    /* back to live */
    int64_t stop = s_now_ns(), live_ns = -1;
    while (s_now_ns() - stop < 60LL * 1000000000) {
        if (s_all_live(proj) == 1) {
            live_ns = s_now_ns() - stop;
            break;
        }
        /* a bounded poll: asking without a pause kept the projector's
         * front end and all five actors busy answering ProjectionStatus */
        nanosleep(&(struct timespec){0, S_LIVE_POLL_NS}, NULL);
    }
    bool first = true;
    if (json) {
        printf("{\"queries_sent\":%" PRIu64 ",\"answered\":%" PRIu64 ",\"errors\":%" PRIu64
               ",\"probes\":%" PRIu64 ",\"live_again_ms\":%.1f,\"latency\":{",
               sent, answered, errors, probes, live_ns < 0 ? -1.0 : (double)live_ns / 1e6);
        s_report("lag", lag, true, &first);
        for (int t = 0; t < S_TYPES; t++)
            if (use[t])
                s_report(s_types[t], lat[t], true, &first);
        printf("}}\n");
    } else {
        printf("queries sent %" PRIu64 ", answered %" PRIu64 ", errors %" PRIu64 "; probes %" PRIu64
               "\n",
               sent, answered, errors, probes);
        s_report("lag (ack to applied)", lag, false, &first);
        for (int t = 0; t < S_TYPES; t++)
            if (use[t])
                s_report(s_types[t], lat[t], false, &first);
        if (live_ns < 0)
            printf("not every projection was live within 60 s of the end\n");
        else
            printf("every projection live %.1f ms after the end\n", (double)live_ns / 1e6);
    }
    msgpack_sbuffer_destroy(&sb);
    free(due);
    free(qtype);
    for (int t = 0; t < S_TYPES; t++)
        ordo_histogram_destroy(&lat[t]);
    ordo_histogram_destroy(&lag);
    zmq_close(qs);
    zmq_ctx_term(ctx);
    ordo_client_destroy(&proj);
    return 0;
}
