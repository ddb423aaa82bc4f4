/* ordo_router_t: requests routed to the owner of their order's partition
 * by the cluster's partition map, which it learns from any engine and
 * learns again when an owner is gone or moved (see ordo.h). */
#include "ordo_client_internal.h"
#include "ordo_partition.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#define S_SEEDS_MAX 64
#define S_TRY_MS 1000   /* a first try on an owner, before asking the map again;
                         * doubled after each try that timed out, up to */
#define S_TRY_MAX_MS 4000 /* (a gone owner stays in the map for up to a lease's TTL) */
#define S_ASK_MS 500    /* one engine's answer to Partitions */
#define S_PAUSE_MS 50   /* between rounds when no owner is known */
#define S_WATCH_MS 250  /* past a try's first second, how often the map is asked again */
#define ORDO_ROUTER_ENDPOINT_MAX 512

typedef struct {
    char *endpoint;
    ordo_client_t *client;
} s_conn_t;

typedef struct {
    char *endpoint; /* NULL: none known */
    uint64_t revision;
} s_owner_t;

struct ordo_router_t {
    char *seeds[S_SEEDS_MAX];
    size_t nseeds;
    ordo_connect_options_t opts;
    ordo_curve_t curve;
    uint32_t partitions; /* 0: no map yet */
    s_owner_t *owners;   /* [partitions] */
    s_conn_t *conns;     /* one client per engine, made when first needed */
    void *ctx;           /* the clients' ZeroMQ context (one I/O thread for all) */
    size_t nconns;
    char id_prefix[20];  /* request ids: this prefix and a count */
    uint64_t id_seq;
};

uint32_t ordo_partition_of_id(const char *order_id, uint32_t partitions)
{
    return order_id ? ordo_partition_of(order_id, strlen(order_id), partitions) : 0;
}

static void s_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

ordo_router_t *ordo_router_new(const char *endpoints, const ordo_connect_options_t *opts)
{
    ordo_router_t *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    if (opts && opts->curve) {
        r->curve = *opts->curve;
        r->opts.curve = &r->curve;
    }
    const char *p = endpoints ? endpoints : ORDO_DEFAULT_ENDPOINT;
    while (*p) {
        size_t n = strcspn(p, ",");
        if (n == 0 || r->nseeds == S_SEEDS_MAX || !(r->seeds[r->nseeds] = strndup(p, n))) {
            int err = n == 0 || r->nseeds == S_SEEDS_MAX ? EINVAL : ENOMEM;
            ordo_router_destroy(&r);
            errno = err;
            return NULL;
        }
        r->nseeds++;
        p += n;
        if (*p == ',' && *++p == '\0') { /* a trailing comma */
            ordo_router_destroy(&r);
            errno = EINVAL;
            return NULL;
        }
    }
    if (r->nseeds == 0) {
        ordo_router_destroy(&r);
        errno = EINVAL;
        return NULL;
    }
    ordo_client_random_prefix_(r->id_prefix);
    return r;
}

static void s_forget_map(ordo_router_t *r)
{
    for (uint32_t k = 0; k < r->partitions; k++)
        free(r->owners[k].endpoint);
    free(r->owners);
    r->owners = NULL;
    r->partitions = 0;
}

void ordo_router_destroy(ordo_router_t **p)
{
    ordo_router_t *r = p ? *p : NULL;
    if (!r)
        return;
    for (size_t i = 0; i < r->nseeds; i++)
        free(r->seeds[i]);
    for (size_t i = 0; i < r->nconns; i++) {
        free(r->conns[i].endpoint);
        ordo_client_destroy(&r->conns[i].client);
    }
    free(r->conns);
    if (r->ctx) /* after every client's socket is closed */
        zmq_ctx_term(r->ctx);
    s_forget_map(r);
    free(r);
    *p = NULL;
}

/* The client of an engine, made on first use. NULL: no memory or an
 * endpoint ZeroMQ refuses. */
static ordo_client_t *s_client(ordo_router_t *r, const char *endpoint)
{
    for (size_t i = 0; i < r->nconns; i++)
        if (strcmp(r->conns[i].endpoint, endpoint) == 0)
            return r->conns[i].client;
    s_conn_t *grown = realloc(r->conns, (r->nconns + 1) * sizeof *grown);
    if (!grown)
        return NULL;
    r->conns = grown;
    s_conn_t *c = &r->conns[r->nconns];
    c->endpoint = strdup(endpoint);
    if (!r->ctx)
        r->ctx = zmq_ctx_new();
    c->client = c->endpoint && r->ctx ? ordo_client_new_in_(r->ctx, endpoint, &r->opts) : NULL;
    if (!c->client) {
        free(c->endpoint);
        return NULL;
    }
    r->nconns++;
    return c->client;
}

/* Whether s is one of the first n of list. */
static bool s_listed(char *const *list, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i], s) == 0)
            return true;
    return false;
}

/* Closes the clients of engines that are neither seeds nor owners in the
 * map now (engines gone, or asked once for the map), so a changing map
 * does not pile up connections. */
static void s_prune(ordo_router_t *r, const char *in_use)
{
    size_t kept = 0;
    for (size_t i = 0; i < r->nconns; i++) {
        s_conn_t *c = &r->conns[i];
        bool keep = s_listed(r->seeds, r->nseeds, c->endpoint) ||
                    (in_use && strcmp(in_use, c->endpoint) == 0);
        for (uint32_t k = 0; !keep && k < r->partitions; k++)
            keep = r->owners[k].endpoint && strcmp(r->owners[k].endpoint, c->endpoint) == 0;
        if (keep) {
            r->conns[kept++] = *c;
        } else {
            free(c->endpoint);
            ordo_client_destroy(&c->client);
        }
    }
    r->nconns = kept;
}

/* Takes what a reply's map says: an owner with a higher revision than the
 * one known, or one where none is known. A map of another size replaces
 * ours. Returns whether anything changed. */
static bool s_merge(ordo_router_t *r, const ordo_result_t *res)
{
    if (res->partitions == 0 || !res->owners)
        return false;
    bool changed = false;
    if (res->partitions != r->partitions) {
        s_owner_t *owners = calloc(res->partitions, sizeof *owners);
        if (!owners)
            return false;
        s_forget_map(r);
        r->owners = owners;
        r->partitions = res->partitions;
        changed = true;
    }
    for (uint32_t k = 0; k < r->partitions; k++) {
        const ordo_client_owner_t *in = &res->owners[k];
        s_owner_t *o = &r->owners[k];
        if (!in->endpoint || (o->endpoint && in->revision <= o->revision))
            continue;
        char *copy = strdup(in->endpoint);
        if (!copy)
            continue;
        free(o->endpoint);
        o->endpoint = copy;
        o->revision = in->revision;
        changed = true;
    }
    return changed;
}

/* Asks one engine for the map. 0 if it answered one. */
static int s_ask(ordo_router_t *r, const char *endpoint, int timeout_ms)
{
    ordo_client_t *c = s_client(r, endpoint);
    if (!c)
        return ORDO_E_NOMEM;
    ordo_result_t res = ORDO_RESULT_INIT;
    int rc = ordo_client_call(c, &(ordo_client_request_t){.type = "Partitions"}, timeout_ms, &res);
    if (rc == 0) {
        s_merge(r, &res);
    } else if (rc == ORDO_E_PROTOCOL && strcmp(res.code, "unknown_type") == 0) {
        /* An engine from before partitions: it is the whole cluster. */
        ordo_client_owner_t self = {.endpoint = endpoint, .pub = "", .revision = 0};
        ordo_result_t one = {.partitions = 1, .owners = &self};
        s_merge(r, &one);
        rc = 0;
    }
    ordo_result_clear(&res);
    return rc;
}

/* Asks the owners it knows, then the seeds, each once, skipping `avoid`
 * (an engine that just failed) unless nothing else answers, until one
 * answers with an owner for every partition or the time is up. 0 if any
 * answered. The clients of engines no longer named are closed, but for
 * `in_use`'s. */
static int s_refresh_keeping(ordo_router_t *r, const char *avoid, int64_t deadline,
                             const char *in_use)
{
    char *ask[S_SEEDS_MAX * 2];
    size_t n = 0; /* at most S_SEEDS_MAX owners, then the seeds */
    for (uint32_t k = 0; k < r->partitions && n < S_SEEDS_MAX; k++)
        if (r->owners[k].endpoint && !s_listed(ask, n, r->owners[k].endpoint))
            ask[n++] = r->owners[k].endpoint;
    for (size_t i = 0; i < r->nseeds; i++)
        if (!s_listed(ask, n, r->seeds[i]))
            ask[n++] = r->seeds[i];
    /* Copies: an answer may replace the owners' strings; `avoid` last. */
    char *copies[S_SEEDS_MAX * 2 + 1];
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (!avoid || strcmp(ask[i], avoid) != 0)
            if ((copies[m] = strdup(ask[i])))
                m++;
    if (avoid && (copies[m] = strdup(avoid)))
        m++; /* last */
    int rc = ORDO_E_TIMEOUT;
    for (size_t i = 0; i < m; i++) {
        int64_t left = deadline - ordo_client_now_ms_();
        if (left <= 0)
            break;
        if (s_ask(r, copies[i], left < S_ASK_MS ? (int)left : S_ASK_MS) != 0)
            continue;
        rc = 0;
        bool whole = r->partitions > 0;
        for (uint32_t k = 0; whole && k < r->partitions; k++)
            whole = r->owners[k].endpoint != NULL;
        if (whole)
            break;
    }
    for (size_t i = 0; i < m; i++)
        free(copies[i]);
    s_prune(r, in_use);
    return rc;
}

static int s_refresh(ordo_router_t *r, const char *avoid, int64_t deadline)
{
    return s_refresh_keeping(r, avoid, deadline, NULL);
}

int ordo_router_refresh(ordo_router_t *r, int timeout_ms)
{
    if (!r || timeout_ms < 0)
        return ORDO_E_INVALID;
    return s_refresh(r, NULL, ordo_client_now_ms_() + timeout_ms);
}

uint32_t ordo_router_partitions(const ordo_router_t *r)
{
    return r ? r->partitions : 0;
}

const char *ordo_router_owner(const ordo_router_t *r, uint32_t partition)
{
    return r && partition < r->partitions ? r->owners[partition].endpoint : NULL;
}

/* One try on `target`, the owner of partition k as the map says: sends
 * the request and waits up to try_ms for its reply. Past `patience` ms
 * (the first try on an owner: S_TRY_MS; a later one, after a try that got
 * no answer: none) it asks the other engines for the map every
 * S_WATCH_MS, and gives up at once when the map names another owner (this
 * one is gone: a standby took over). Returns as ordo_client_call;
 * ORDO_E_TIMEOUT also when it gave up early. */
static int s_try(ordo_router_t *r, ordo_client_t *c, const char *target, uint32_t k,
                 const ordo_client_request_t *req, int64_t try_ms, int64_t patience,
                 ordo_result_t *res)
{
    char id[ORDO_ID_SIZE];
    int rc = ordo_client_send(c, req, id);
    if (rc != 0)
        return rc;
    int64_t t0 = ordo_client_now_ms_(), end = t0 + try_ms, watch = t0 + patience;
    for (;;) {
        int64_t now = ordo_client_now_ms_();
        if (now >= end) {
            ordo_client_abandon_(c, id);
            return ORDO_E_TIMEOUT;
        }
        int64_t wait = end - now < S_WATCH_MS ? end - now : S_WATCH_MS;
        rc = ordo_client_recv(c, (int)wait, res);
        if (rc == 0 && strcmp(res->request_id, id) == 0)
            return res->ok ? 0 : ORDO_E_PROTOCOL;
        if (rc == 0 || rc == ORDO_E_BAD_REPLY)
            continue; /* not our reply (ours stays in flight) */
        if (rc != ORDO_E_TIMEOUT) {
            ordo_client_abandon_(c, id);
            return rc;
        }
        now = ordo_client_now_ms_();
        if (now < watch)
            continue;
        watch = now + S_WATCH_MS;
        s_refresh_keeping(r, target, now + S_ASK_MS, target);
        if (k < r->partitions && r->owners[k].endpoint &&
            strcmp(r->owners[k].endpoint, target) != 0) {
            ordo_client_abandon_(c, id);
            return ORDO_E_TIMEOUT;
        }
    }
}

/* Sends to the owner of a partition (by_order: the order's) until an
 * answer that is not about the map, or the deadline. */
static int s_route(ordo_router_t *r, bool by_order, uint32_t partition,
                   const ordo_client_request_t *req, int timeout_ms, ordo_result_t *res)
{
    if (!r || !req || !req->type || timeout_ms < 0 || (by_order && !req->order_id))
        return ORDO_E_INVALID;
    int64_t deadline = ordo_client_now_ms_() + timeout_ms;
    ordo_client_request_t once = *req;
    char rid[ORDO_ID_SIZE];
    if (!once.request_id) { /* one id for every try: a retry is a duplicate */
        snprintf(rid, sizeof rid, "%s%llu", r->id_prefix, (unsigned long long)++r->id_seq);
        once.request_id = rid;
    }
    int rc = ORDO_E_TIMEOUT;
    int64_t try_ms = S_TRY_MS;
    char last_target[ORDO_ROUTER_ENDPOINT_MAX] = "";
    ordo_result_clear(res);
    for (;;) {
        int64_t left = deadline - ordo_client_now_ms_();
        if (left <= 0)
            return rc;
        if (r->partitions == 0)
            s_refresh(r, NULL, deadline);
        uint32_t k = by_order ? ordo_partition_of_id(req->order_id, r->partitions) : partition;
        const char *owner = k < r->partitions ? r->owners[k].endpoint : NULL;
        if (!owner) {
            if (r->partitions > 0)
                s_refresh(r, NULL, deadline);
            if (k >= r->partitions || !r->owners[k].endpoint) {
                left = deadline - ordo_client_now_ms_();
                if (left > 0)
                    s_sleep_ms(left < S_PAUSE_MS ? (int)left : S_PAUSE_MS);
                if (r->partitions > 0 && !by_order && partition >= r->partitions)
                    return ORDO_E_INVALID; /* no such partition */
            }
            continue;
        }
        char *target = strdup(owner);
        ordo_client_t *c = target ? s_client(r, target) : NULL;
        if (!c) {
            free(target);
            return ORDO_E_NOMEM;
        }
        if (strcmp(last_target, target) != 0) { /* another owner: a short try first */
            snprintf(last_target, sizeof last_target, "%s", target);
            try_ms = S_TRY_MS;
        }
        left = deadline - ordo_client_now_ms_();
        rc = s_try(r, c, target, k, &once, left < try_ms ? (left > 0 ? left : 0) : try_ms,
                   try_ms == S_TRY_MS ? S_TRY_MS : 0, res);
        bool again = false;
        if (rc == ORDO_E_TIMEOUT && try_ms < S_TRY_MAX_MS)
            try_ms *= 2; /* the owner may be slow rather than gone */
        if (rc == ORDO_E_PROTOCOL && strcmp(res->code, "wrong_partition") == 0) {
            /* Another engine owns it now: its map says who. */
            if (!s_merge(r, res))
                s_refresh(r, target, deadline);
            again = true;
            /* A map that still sends us back there (engines that disagree,
             * or no owner yet): forget it and wait a moment. */
            if (k < r->partitions && (!r->owners[k].endpoint ||
                                      strcmp(r->owners[k].endpoint, target) == 0)) {
                free(r->owners[k].endpoint);
                r->owners[k].endpoint = NULL;
                left = deadline - ordo_client_now_ms_();
                if (left > 0)
                    s_sleep_ms(left < S_PAUSE_MS ? (int)left : S_PAUSE_MS);
            }
        } else if (rc == ORDO_E_TIMEOUT ||
                   (rc == ORDO_E_PROTOCOL && strcmp(res->code, "unavailable") == 0)) {
            /* Gone, stepping down, or cut off: forget it as the owner
             * (a later answer may name it again) and ask the others. */
            if (k < r->partitions && r->owners[k].endpoint &&
                strcmp(r->owners[k].endpoint, target) == 0) {
                free(r->owners[k].endpoint);
                r->owners[k].endpoint = NULL;
            }
            s_refresh(r, target, deadline);
            again = true;
            if (rc == ORDO_E_PROTOCOL) {
                left = deadline - ordo_client_now_ms_();
                if (left > 0)
                    s_sleep_ms(left < S_PAUSE_MS ? (int)left : S_PAUSE_MS);
            }
        }
        free(target);
        if (!again)
            return rc;
    }
}

int ordo_router_call(ordo_router_t *r, const ordo_client_request_t *req, int timeout_ms,
                     ordo_result_t *res)
{
    if (req && !req->order_id)
        return s_route(r, false, 0, req, timeout_ms, res);
    return s_route(r, true, 0, req, timeout_ms, res);
}

int ordo_router_call_on(ordo_router_t *r, uint32_t partition, const ordo_client_request_t *req,
                        int timeout_ms, ordo_result_t *res)
{
    return s_route(r, false, partition, req, timeout_ms, res);
}
