/* ordo_client_t: one ZeroMQ DEALER connection to the engine's ROUTER.
 *
 * libzmq directly, not czmq: a library must not touch its host process,
 * and czmq's first socket installs SIGINT/SIGTERM handlers and a global
 * context torn down at exit; here each client owns a private context and
 * sends one-frame messages, so nothing else is needed.
 *
 * Every request carries a request_id (the caller's, or "<random>-<n>",
 * unique across clients and restarts since the engine remembers request ids
 * per order for idempotency). Requests in flight wait in a hash table keyed
 * by request_id; a reply completes the oldest request with its id that is
 * still awaited. Each entry is pipelined (its completion goes to
 * ordo_client_recv), sync (an ordo_client_call is waiting for it) or
 * abandoned (its call timed out: a late reply is dropped). Completions of
 * pipelined requests that arrive while a call waits are queued, in arrival
 * order, for recv.
 *
 * Raw calls (ordo_client_call_raw) send a body the caller packed, for a
 * server whose requests the codec does not know (ordo-projector): the
 * request_id is read from the body, and the reply is matched by the one
 * it echoes without going through the engine's reply decoder, which
 * refuses the projector's error codes (lagging, unavailable, ...).
 *
 * Flow control: at most `window` requests await replies; a send beyond it
 * first reads replies (queueing them for recv). ordo-server drops replies
 * to a peer past its send high-water mark (16,384 messages, and ZeroMQ
 * learns of reads in steps of half that), and it holds at most 16,384
 * requests in flight over all its clients, so the default window (4,096)
 * never loses a reply and keeps a connection busy. */
#include "ordo_cert.h"
#include "ordo_client_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define S_HWM 100000 /* messages queued per direction before send waits */
#define S_WINDOW 4096 /* default flow-control window, see above */

enum { S_PIPELINED = 1, S_SYNC, S_RAW, S_ABANDONED };

typedef struct s_pending {
    struct s_pending *next; /* bucket chain, oldest first */
    uint32_t hash;
    uint8_t state;
    uint8_t len;
    char id[]; /* len bytes + NUL */
} s_pending_t;

typedef struct s_done {
    struct s_done *next;
    uint8_t *bytes; /* owned: the reply body */
    size_t len;
    ordo_reply_t reply; /* decoded over bytes */
} s_done_t;

struct ordo_client_t {
    void *ctx;             /* its ZeroMQ context */
    bool own_ctx;          /* made here (terminated with the client), or a router's */
    void *sock;            /* owned: DEALER connected to endpoint */
    char *endpoint;        /* owned copy */
    int send_timeout_ms;
    char id_prefix[20];    /* 16 random hex digits + '-' */
    uint64_t id_seq;
    s_pending_t **buckets; /* owned, with every entry; n_buckets a power of two */
    size_t n_buckets;
    size_t n_pending;      /* entries in the table, in any state */
    size_t n_abandoned;    /* of which abandoned */
    size_t window;         /* most requests awaiting replies; 0: no limit */
    size_t n_pipelined;    /* pipelined requests not yet returned by recv */
    s_done_t *done_head;   /* owned: completions kept for recv */
    s_done_t *done_tail;
    msgpack_sbuffer sbuf;  /* owned: request packing buffer */
    ordo_request_t req;    /* scratch: the request being packed */
};

const char *ordo_client_strerror(int rc)
{
    switch (rc) {
    case 0: return "success";
    case ORDO_E_PROTOCOL: return "the engine refused the request";
    case ORDO_E_TIMEOUT: return "no answer within the timeout";
    case ORDO_E_INVALID: return "invalid argument";
    case ORDO_E_NOMEM: return "out of memory";
    case ORDO_E_TRANSPORT: return "ZeroMQ transport error";
    case ORDO_E_BAD_REPLY: return "the answer is not a protocol reply";
    case ORDO_E_IDLE: return "no request in flight";
    default: return "unknown error";
    }
}

int64_t ordo_client_now_ms_(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint32_t s_hash(const char *s, size_t len)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < len; i++)
        h = (h ^ (uint8_t)s[i]) * 16777619u;
    return h;
}

/* ---- the table of requests in flight ---------------------------------- */

static int s_grow(ordo_client_t *c)
{
    size_t n = c->n_buckets * 2;
    s_pending_t **b = calloc(n, sizeof *b);
    if (!b)
        return ORDO_E_NOMEM;
    /* Walk old chains in order and append, so entries sharing an id keep
     * their send order. */
    for (size_t i = 0; i < c->n_buckets; i++) {
        s_pending_t *e = c->buckets[i];
        while (e) {
            s_pending_t *next = e->next, **tail = &b[e->hash & (n - 1)];
            while (*tail)
                tail = &(*tail)->next;
            e->next = NULL;
            *tail = e;
            e = next;
        }
    }
    free(c->buckets);
    c->buckets = b;
    c->n_buckets = n;
    return 0;
}

static s_pending_t *s_add(ordo_client_t *c, const char *id, size_t len, int state)
{
    if (c->n_pending >= c->n_buckets && s_grow(c) != 0)
        return NULL;
    s_pending_t *e = malloc(sizeof *e + len + 1);
    if (!e)
        return NULL;
    e->next = NULL;
    e->hash = s_hash(id, len);
    e->state = (uint8_t)state;
    e->len = (uint8_t)len;
    memcpy(e->id, id, len);
    e->id[len] = '\0';
    s_pending_t **tail = &c->buckets[e->hash & (c->n_buckets - 1)];
    while (*tail)
        tail = &(*tail)->next;
    *tail = e;
    c->n_pending++;
    return e;
}

/* The link to the oldest entry with this id that someone still waits
 * for, else to the oldest abandoned one, else NULL. Replies to one id
 * are interchangeable (the original, then duplicates of it), and a
 * retry after a timeout must not lose its answer to the abandoned
 * original when the original's reply never comes (lost with a crashed
 * connection). */
static s_pending_t **s_find(ordo_client_t *c, const char *id, size_t len)
{
    uint32_t h = s_hash(id, len);
    s_pending_t **found = NULL;
    for (s_pending_t **p = &c->buckets[h & (c->n_buckets - 1)]; *p; p = &(*p)->next) {
        s_pending_t *e = *p;
        if (e->hash == h && e->len == len && memcmp(e->id, id, len) == 0) {
            if (e->state != S_ABANDONED)
                return p;
            if (!found)
                found = p;
        }
    }
    return found;
}

/* Unlinks this very entry (another with the same id may be older). */
static void s_unlink(ordo_client_t *c, s_pending_t *e)
{
    for (s_pending_t **p = &c->buckets[e->hash & (c->n_buckets - 1)]; *p; p = &(*p)->next)
        if (*p == e) {
            *p = e->next;
            c->n_pending--;
            return;
        }
}

/* ---- life -------------------------------------------------------------- */

static void s_abandon(ordo_client_t *c, s_pending_t *e)
{
    if (e->state == S_PIPELINED)
        c->n_pipelined--;
    if (e->state != S_ABANDONED)
        c->n_abandoned++;
    e->state = S_ABANDONED;
}

void ordo_client_random_prefix_(char out[20])
{
    uint8_t r[8];
    if (getentropy(r, sizeof r) != 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^
                     ((uint64_t)getpid() << 40) ^ (uint64_t)(uintptr_t)out;
        memcpy(r, &x, sizeof r);
    }
    for (int i = 0; i < 8; i++)
        snprintf(out + 2 * i, 3, "%02x", r[i]);
    out[16] = '-';
    out[17] = '\0';
}

ordo_client_t *ordo_client_new(const char *endpoint)
{
    return ordo_client_new_with(endpoint, NULL);
}

int ordo_curve_load(ordo_curve_t *curve, const char *server_cert, const char *client_cert,
                    char *err, size_t err_size)
{
    char why[512];
    ordo_keypair_t server, client;
    memset(curve, 0, sizeof *curve);
    if (ordo_cert_load(server_cert, false, &server, why, sizeof why) != 0 ||
        ordo_cert_load(client_cert, true, &client, why, sizeof why) != 0) {
        if (err && err_size)
            snprintf(err, err_size, "%s", why);
        return ORDO_E_INVALID;
    }
    memcpy(curve->server_key, server.public_key, sizeof curve->server_key);
    memcpy(curve->public_key, client.public_key, sizeof curve->public_key);
    memcpy(curve->secret_key, client.secret_key, sizeof curve->secret_key);
    memset(&client, 0, sizeof client);
    return 0;
}

int ordo_client_secure_(void *sock, const ordo_connect_options_t *opts)
{
    if (!opts || !opts->curve)
        return 0;
    ordo_keypair_t kp;
    memcpy(kp.public_key, opts->curve->public_key, sizeof kp.public_key);
    memcpy(kp.secret_key, opts->curve->secret_key, sizeof kp.secret_key);
    int rc = ordo_cert_make_client(sock, opts->curve->server_key, &kp);
    memset(&kp, 0, sizeof kp);
    return rc;
}

ordo_client_t *ordo_client_new_with(const char *endpoint, const ordo_connect_options_t *opts)
{
    return ordo_client_new_in_(NULL, endpoint, opts);
}

ordo_client_t *ordo_client_new_in_(void *ctx, const char *endpoint,
                                   const ordo_connect_options_t *opts)
{
    if (!endpoint)
        endpoint = ORDO_DEFAULT_ENDPOINT;
    ordo_client_t *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    msgpack_sbuffer_init(&c->sbuf);
    c->send_timeout_ms = ORDO_DEFAULT_TIMEOUT_MS;
    c->window = S_WINDOW;
    c->n_buckets = 64;
    c->buckets = calloc(c->n_buckets, sizeof *c->buckets);
    c->endpoint = strdup(endpoint);
    c->own_ctx = ctx == NULL;
    c->ctx = ctx ? ctx : zmq_ctx_new();
    c->sock = c->ctx ? zmq_socket(c->ctx, ZMQ_DEALER) : NULL;
    if (!c->buckets || !c->endpoint || !c->sock) {
        ordo_client_destroy(&c);
        errno = ENOMEM;
        return NULL;
    }
    int linger = 0, hwm = S_HWM;
    zmq_setsockopt(c->sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(c->sock, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(c->sock, ZMQ_RCVHWM, &hwm, sizeof hwm);
    if (ordo_client_secure_(c->sock, opts) != 0 || zmq_connect(c->sock, endpoint) != 0) {
        int e = errno;
        ordo_client_destroy(&c);
        errno = e;
        return NULL;
    }
    ordo_client_random_prefix_(c->id_prefix);
    return c;
}

void ordo_client_destroy(ordo_client_t **p)
{
    if (!p || !*p)
        return;
    ordo_client_t *c = *p;
    if (c->sock)
        zmq_close(c->sock);
    if (c->ctx && c->own_ctx)
        zmq_ctx_term(c->ctx);
    for (size_t i = 0; c->buckets && i < c->n_buckets; i++) {
        s_pending_t *e = c->buckets[i];
        while (e) {
            s_pending_t *next = e->next;
            free(e);
            e = next;
        }
    }
    free(c->buckets);
    while (c->done_head) {
        s_done_t *d = c->done_head;
        c->done_head = d->next;
        free(d->bytes);
        free(d);
    }
    msgpack_sbuffer_destroy(&c->sbuf);
    free(c->endpoint);
    free(c);
    *p = NULL;
}

void ordo_client_set_send_timeout(ordo_client_t *c, int timeout_ms)
{
    c->send_timeout_ms = timeout_ms < 0 ? 0 : timeout_ms;
}

void ordo_client_set_window(ordo_client_t *c, size_t window)
{
    c->window = window;
}

size_t ordo_client_in_flight(const ordo_client_t *c)
{
    return c->n_pipelined;
}

const char *ordo_client_endpoint(const ordo_client_t *c)
{
    return c->endpoint;
}

void *ordo_client_context_(ordo_client_t *c)
{
    return c->ctx;
}

void *ordo_client_socket_(ordo_client_t *c)
{
    return c->sock;
}

void ordo_client_abandon_(ordo_client_t *c, const char *request_id)
{
    size_t len = strlen(request_id);
    uint32_t h = s_hash(request_id, len);
    for (s_pending_t *e = c->buckets[h & (c->n_buckets - 1)]; e; e = e->next)
        if (e->state == S_PIPELINED && e->len == len && memcmp(e->id, request_id, len) == 0) {
            s_abandon(c, e);
            return;
        }
}

/* ---- requests ---------------------------------------------------------- */

static ordo_str_t s_view(const char *s)
{
    if (!s)
        return (ordo_str_t){"", 0};
    size_t n = strlen(s);
    return (ordo_str_t){s, n > UINT32_MAX ? UINT32_MAX : (uint32_t)n};
}

/* Translates the public request into the codec's, views only. */
static int s_build(ordo_client_t *c, const ordo_client_request_t *in, const char *id)
{
    ordo_request_t *r = &c->req;
    ordo_request_init(r);
    if (!in || !in->type)
        return ORDO_E_INVALID;
    r->type = ordo_request_type_from_name(in->type, strlen(in->type));
    if (r->type == ORDO_REQ_NONE)
        return ORDO_E_INVALID;
    r->request_id = s_view(id);
    if (in->order_id)
        r->order_id = s_view(in->order_id);
    if (ordo_request_is_command(r->type)) {
        if (in->has_expected_version)
            r->expected_version = in->expected_version;
        ordo_data_t *d = &r->data;
        switch (r->type) {
        case ORDO_REQ_CREATE_ORDER:
            if (in->n_items > ORDO_ITEMS_MAX || (in->n_items && !in->items))
                return ORDO_E_INVALID;
            r->has_data = true;
            d->present = ORDO_F_USER_ID | ORDO_F_RESTAURANT_ID | ORDO_F_ITEMS;
            d->user_id = in->user_id;
            d->restaurant_id = in->restaurant_id;
            d->n_items = (uint32_t)in->n_items;
            for (size_t i = 0; i < in->n_items; i++) {
                d->items[i].sku = s_view(in->items[i].sku);
                d->items[i].name = s_view(in->items[i].name);
                d->items[i].qty = in->items[i].qty;
                d->items[i].price_cents = in->items[i].price_cents;
            }
            if (in->delivery_address) {
                d->present |= ORDO_F_DELIVERY_ADDRESS;
                d->delivery_address = s_view(in->delivery_address);
            }
            if (in->currency) {
                d->present |= ORDO_F_CURRENCY;
                d->currency = s_view(in->currency);
            }
            break;
        case ORDO_REQ_START_PREPARING:
            if (in->estimated_minutes != 0) {
                r->has_data = true;
                d->present = ORDO_F_ESTIMATED_MINUTES;
                d->estimated_minutes = in->estimated_minutes;
            }
            break;
        case ORDO_REQ_PICK_UP:
            if (in->has_courier_id) {
                r->has_data = true;
                d->present = ORDO_F_COURIER_ID;
                d->courier_id = in->courier_id;
            }
            break;
        case ORDO_REQ_CANCEL_ORDER:
            r->has_data = true;
            if (in->reason) {
                d->present = ORDO_F_REASON;
                d->reason = s_view(in->reason);
            }
            break;
        default:
            break;
        }
        size_t n_meta = (in->actor != NULL) + (in->correlation_id != NULL) + in->n_meta;
        if (n_meta > ORDO_META_MAX || (in->n_meta && !in->meta))
            return ORDO_E_INVALID;
        ordo_meta_t *m = &r->meta;
        if (in->actor)
            m->entries[m->count++] = (ordo_meta_entry_t){.key = ORDO_STR("actor"),
                                                         .sval = s_view(in->actor)};
        if (in->correlation_id)
            m->entries[m->count++] = (ordo_meta_entry_t){.key = ORDO_STR("correlation_id"),
                                                         .sval = s_view(in->correlation_id)};
        for (size_t i = 0; i < in->n_meta; i++) {
            if (!in->meta[i].key)
                return ORDO_E_INVALID;
            m->entries[m->count++] = (ordo_meta_entry_t){.key = s_view(in->meta[i].key),
                                                         .is_int = in->meta[i].is_int,
                                                         .ival = in->meta[i].ival,
                                                         .sval = s_view(in->meta[i].sval)};
        }
    }
    switch (r->type) {
    case ORDO_REQ_GET_ORDER:
        r->as_of_version = in->as_of_version > 0 ? in->as_of_version : 0;
        r->has_as_of_time = in->has_as_of_time;
        r->as_of_time_us = in->as_of_time_us;
        break;
    case ORDO_REQ_GET_HISTORY:
        r->from_version = in->from_version ? in->from_version : 1;
        r->limit = in->limit;
        break;
    case ORDO_REQ_READ_ALL:
        r->from_position = in->from_position ? in->from_position : 1;
        r->limit = in->limit;
        break;
    default:
        break;
    }
    return 0;
}

/* Waits until `sock` has `events` or the deadline passes. 1, 0 (timeout)
 * or -1 (error). Signals do not end the wait early. */
static int s_wait(void *sock, short events, int64_t deadline_ms)
{
    for (;;) {
        int64_t left = deadline_ms - ordo_client_now_ms_();
        zmq_pollitem_t it = {sock, 0, events, 0};
        int n = zmq_poll(&it, 1, left > 0 ? (long)left : 0);
        if (n > 0)
            return 1;
        if (n < 0 && errno != EINTR)
            return -1;
        if (left <= 0 && n == 0)
            return 0;
    }
}

/* ---- replies ----------------------------------------------------------- */

/* Reads one message without waiting; its last frame is the body, copied
 * into *bytes (caller frees). 1, 0 (nothing waiting) or -1. */
static int s_read(ordo_client_t *c, uint8_t **bytes, size_t *len)
{
    zmq_msg_t m;
    zmq_msg_init(&m);
    if (zmq_msg_recv(&m, c->sock, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&m);
        return errno == EAGAIN || errno == EINTR ? 0 : -1;
    }
    while (zmq_msg_more(&m)) {
        zmq_msg_close(&m);
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, c->sock, 0) < 0) {
            zmq_msg_close(&m);
            return -1;
        }
    }
    *len = zmq_msg_size(&m);
    *bytes = malloc(*len ? *len : 1);
    if (*bytes)
        memcpy(*bytes, zmq_msg_data(&m), *len);
    zmq_msg_close(&m);
    if (!*bytes) {
        errno = ENOMEM;
        return -1;
    }
    return 1;
}

/* What any reply must be, whoever sent it: one well-formed MessagePack
 * map with a boolean `ok`. Gives `ok` and the echoed request_id (len 0:
 * none). */
static bool s_reply_head(const uint8_t *bytes, size_t len, bool *ok, ordo_str_t *id)
{
    *id = (ordo_str_t){"", 0};
    if (ordo_mp_validate(bytes, len, ORDO_NESTING_MAX + 2) != ORDO_MP_OK)
        return false;
    ordo_mp_t r;
    ordo_mp_init(&r, bytes, len);
    uint32_t n;
    if (!ordo_mp_read_map(&r, &n))
        return false;
    bool has_ok = false;
    for (uint32_t i = 0; i < n; i++) {
        const char *k;
        uint32_t kl;
        bool good;
        if (!ordo_mp_read_str(&r, &k, &kl))
            good = ordo_mp_skip(&r) && ordo_mp_skip(&r);
        else if (ORDO_MP_KEY_IS(k, kl, "ok"))
            good = has_ok = ordo_mp_read_bool(&r, ok);
        else if (ORDO_MP_KEY_IS(k, kl, "request_id"))
            good = ordo_mp_read_str(&r, &id->ptr, &id->len) || ordo_mp_skip(&r);
        else
            good = ordo_mp_skip(&r);
        if (!good)
            return false;
    }
    return has_ok;
}

/* What a reply turned out to be. */
enum { S_DROPPED, S_UNDECODABLE, S_MATCHED };

/* Decodes a reply and finds its request, which it unlinks into *entry
 * (caller frees). An engine request's reply must decode (else it stays in
 * flight); a raw call's needs only s_reply_head, and so does one that is
 * dropped because its call was abandoned. */
static int s_match(ordo_client_t *c, const uint8_t *bytes, size_t len, ordo_reply_t *reply,
                   s_pending_t **entry)
{
    bool decoded = ordo_reply_decode(bytes, len, reply) == 0;
    bool ok;
    ordo_str_t id = reply->request_id;
    if (!decoded && !s_reply_head(bytes, len, &ok, &id))
        return S_UNDECODABLE;
    s_pending_t **link = id.len ? s_find(c, id.ptr, id.len) : NULL;
    if (!link) /* not ours, or sent before a timeout gave up on it */
        return decoded ? S_DROPPED : S_UNDECODABLE;
    s_pending_t *e = *link;
    if (!decoded && e->state != S_RAW && e->state != S_ABANDONED)
        return S_UNDECODABLE;
    *link = e->next;
    c->n_pending--;
    if (e->state == S_ABANDONED) {
        c->n_abandoned--;
        free(e);
        return S_DROPPED;
    }
    *entry = e;
    return S_MATCHED;
}

/* Queues a pipelined completion for recv, taking `bytes`. */
static void s_keep(ordo_client_t *c, uint8_t *bytes, size_t len, const ordo_reply_t *reply)
{
    s_done_t *d = malloc(sizeof *d);
    if (!d) { /* the completion is lost; recv must not wait for it */
        free(bytes);
        c->n_pipelined--;
        return;
    }
    d->next = NULL;
    d->bytes = bytes;
    d->len = len;
    d->reply = *reply;
    if (c->done_tail)
        c->done_tail->next = d;
    else
        c->done_head = d;
    c->done_tail = d;
}

/* Reads replies into the done queue until fewer than `window` requests
 * await one. 0, ORDO_E_TIMEOUT or ORDO_E_TRANSPORT. */
static int s_make_room(ordo_client_t *c, int64_t deadline)
{
    while (c->window && c->n_pending - c->n_abandoned >= c->window) {
        uint8_t *bytes = NULL;
        size_t len;
        int r = s_read(c, &bytes, &len);
        if (r < 0)
            return ORDO_E_TRANSPORT;
        if (r == 0) {
            int w = s_wait(c->sock, ZMQ_POLLIN, deadline);
            if (w <= 0)
                return w == 0 ? ORDO_E_TIMEOUT : ORDO_E_TRANSPORT;
            continue;
        }
        ordo_reply_t reply;
        s_pending_t *e = NULL;
        if (s_match(c, bytes, len, &reply, &e) == S_MATCHED) {
            free(e); /* no call is waiting while we send: it is pipelined */
            s_keep(c, bytes, len, &reply);
        } else {
            free(bytes);
        }
    }
    return 0;
}

/* Sends a packed body as an entry in `state` with request id `id` (len
 * bytes, already checked); *entry_out gets the entry. */
static int s_transmit(ordo_client_t *c, const void *body, size_t size, const char *id, size_t len,
                      int state, int64_t deadline, s_pending_t **entry_out)
{
    int rc = s_make_room(c, deadline);
    if (rc != 0)
        return rc;
    /* Room in the table first, so a sent request is always tracked. */
    s_pending_t *e = s_add(c, id, len, state);
    if (!e)
        return ORDO_E_NOMEM;
    for (;;) {
        if (zmq_send(c->sock, body, size, ZMQ_DONTWAIT) >= 0)
            break;
        int err = errno;
        if (err == EAGAIN || err == EINTR) {
            int w = s_wait(c->sock, ZMQ_POLLOUT, deadline);
            if (w > 0)
                continue;
            err = w == 0 ? EAGAIN : errno;
        }
        s_unlink(c, e);
        free(e);
        errno = err;
        return err == EAGAIN ? ORDO_E_TIMEOUT : ORDO_E_TRANSPORT;
    }
    if (state == S_PIPELINED)
        c->n_pipelined++;
    if (entry_out)
        *entry_out = e;
    return 0;
}

void ordo_client_new_request_id(ordo_client_t *c, char out[ORDO_ID_SIZE])
{
    snprintf(out, ORDO_ID_SIZE, "%s%llu", c->id_prefix, (unsigned long long)++c->id_seq);
}

/* Packs and sends a request as an entry in `state`; *entry_out gets it. */
static int s_send(ordo_client_t *c, const ordo_client_request_t *req, int state, int64_t deadline,
                  char *id_out, s_pending_t **entry_out)
{
    char gen[ORDO_ID_SIZE];
    const char *id = req ? req->request_id : NULL;
    if (id) {
        size_t n = strlen(id);
        if (n < 1 || n > ORDO_REQUEST_ID_MAX || !ordo_utf8_valid((const uint8_t *)id, n))
            return ORDO_E_INVALID;
    } else {
        ordo_client_new_request_id(c, gen);
        id = gen;
    }
    int rc = s_build(c, req, id);
    if (rc != 0)
        return rc;
    msgpack_sbuffer_clear(&c->sbuf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &c->sbuf, msgpack_sbuffer_write);
    if (ordo_request_pack(&pk, &c->req) != 0)
        return ORDO_E_NOMEM;
    if (c->sbuf.size > ORDO_BODY_MAX)
        return ORDO_E_INVALID;
    size_t len = strlen(id);
    if ((rc = s_transmit(c, c->sbuf.data, c->sbuf.size, id, len, state, deadline, entry_out)) != 0)
        return rc;
    if (id_out)
        memcpy(id_out, id, len + 1);
    return 0;
}

int ordo_client_send(ordo_client_t *c, const ordo_client_request_t *req, char *request_id_out)
{
    return s_send(c, req, S_PIPELINED, ordo_client_now_ms_() + c->send_timeout_ms,
                  request_id_out, NULL);
}

static int s_deliver(ordo_client_t *c, ordo_result_t *res, uint8_t **bytes, size_t len,
                     const ordo_reply_t *reply)
{
    c->n_pipelined--;
    return ordo_result_take_reply(res, bytes, len, reply);
}

int ordo_client_recv(ordo_client_t *c, int timeout_ms, ordo_result_t *res)
{
    ordo_result_clear(res);
    if (timeout_ms < 0)
        return ORDO_E_INVALID;
    if (c->done_head) {
        s_done_t *d = c->done_head;
        c->done_head = d->next;
        if (!c->done_head)
            c->done_tail = NULL;
        int rc = s_deliver(c, res, &d->bytes, d->len, &d->reply);
        free(d);
        return rc == ORDO_E_NOMEM ? rc : 0;
    }
    if (c->n_pipelined == 0) {
        /* Nothing can complete, but drop late answers to calls that timed
         * out, so a caller polling the socket does not see it readable. */
        uint8_t *bytes;
        size_t len;
        while (s_read(c, &bytes, &len) > 0) {
            ordo_reply_t reply;
            s_pending_t *e = NULL;
            if (s_match(c, bytes, len, &reply, &e) == S_MATCHED)
                free(e); /* a pipelined entry cannot exist here */
            free(bytes);
        }
        return ORDO_E_IDLE;
    }
    int64_t deadline = ordo_client_now_ms_() + timeout_ms;
    for (;;) {
        uint8_t *bytes = NULL;
        size_t len;
        int r = s_read(c, &bytes, &len);
        if (r < 0)
            return errno == ENOMEM ? ORDO_E_NOMEM : ORDO_E_TRANSPORT;
        if (r == 0) {
            int w = s_wait(c->sock, ZMQ_POLLIN, deadline);
            if (w < 0)
                return ORDO_E_TRANSPORT;
            if (w == 0)
                return ORDO_E_TIMEOUT;
            continue;
        }
        ordo_reply_t reply;
        s_pending_t *e = NULL;
        int m = s_match(c, bytes, len, &reply, &e);
        if (m != S_MATCHED) {
            free(bytes);
            if (m == S_UNDECODABLE)
                return ORDO_E_BAD_REPLY;
            continue;
        }
        free(e); /* pipelined: no call is in progress while recv runs */
        int rc = s_deliver(c, res, &bytes, len, &reply);
        return rc == ORDO_E_NOMEM ? rc : 0;
    }
}

/* Waits until `deadline` for the reply to `mine` (a sync or raw entry),
 * keeping pipelined completions for recv. Returns 0 with the reply in
 * *bytes (caller frees) and, for a sync entry, decoded in *reply; else an
 * error, with `mine` abandoned. */
static int s_await(ordo_client_t *c, s_pending_t *mine, int64_t deadline, uint8_t **out,
                   size_t *out_len, ordo_reply_t *out_reply)
{
    for (;;) {
        uint8_t *bytes = NULL;
        size_t len;
        int r = s_read(c, &bytes, &len);
        if (r < 0) {
            s_abandon(c, mine);
            return errno == ENOMEM ? ORDO_E_NOMEM : ORDO_E_TRANSPORT;
        }
        if (r == 0) {
            int w = s_wait(c->sock, ZMQ_POLLIN, deadline);
            if (w <= 0) {
                s_abandon(c, mine);
                return w == 0 ? ORDO_E_TIMEOUT : ORDO_E_TRANSPORT;
            }
            continue;
        }
        ordo_reply_t reply;
        s_pending_t *e = NULL;
        int m = s_match(c, bytes, len, &reply, &e);
        if (m == S_UNDECODABLE && c->n_pending - c->n_abandoned == 1) {
            /* Only this call is in flight: the garbage is its answer. */
            free(bytes);
            s_abandon(c, mine);
            return ORDO_E_BAD_REPLY;
        }
        if (m != S_MATCHED) {
            free(bytes);
            continue;
        }
        if (e == mine) {
            free(e);
            *out = bytes;
            *out_len = len;
            *out_reply = reply;
            return 0;
        }
        free(e); /* a pipelined request's completion: keep it for recv */
        s_keep(c, bytes, len, &reply);
    }
}

int ordo_client_call(ordo_client_t *c, const ordo_client_request_t *req, int timeout_ms,
                     ordo_result_t *res)
{
    ordo_result_clear(res);
    if (timeout_ms < 0)
        return ORDO_E_INVALID;
    int64_t deadline = ordo_client_now_ms_() + timeout_ms;
    s_pending_t *mine = NULL;
    int rc = s_send(c, req, S_SYNC, deadline, NULL, &mine);
    if (rc != 0)
        return rc;
    uint8_t *bytes = NULL;
    size_t len = 0;
    ordo_reply_t reply;
    if ((rc = s_await(c, mine, deadline, &bytes, &len, &reply)) != 0)
        return rc;
    if ((rc = ordo_result_take_reply(res, &bytes, len, &reply)) != 0)
        return rc;
    return res->ok ? 0 : ORDO_E_PROTOCOL;
}

/* The request_id of a raw body: one well-formed map (nesting as the
 * protocol allows) with exactly one `request_id`, a string of
 * 1..ORDO_REQUEST_ID_MAX bytes (UTF-8, which validation checked). */
static bool s_body_id(const void *body, size_t len, ordo_str_t *id)
{
    if (ordo_mp_validate(body, len, ORDO_NESTING_MAX) != ORDO_MP_OK)
        return false;
    ordo_mp_t r;
    ordo_mp_init(&r, body, len);
    uint32_t n;
    if (!ordo_mp_read_map(&r, &n))
        return false;
    id->len = 0;
    int seen = 0;
    for (uint32_t i = 0; i < n; i++) {
        const char *k;
        uint32_t kl;
        if (ordo_mp_read_str(&r, &k, &kl) && ORDO_MP_KEY_IS(k, kl, "request_id")) {
            if (++seen > 1 || !ordo_mp_read_str(&r, &id->ptr, &id->len))
                return false;
        } else if (!ordo_mp_skip(&r)) {
            return false;
        }
    }
    return id->len >= 1 && id->len <= ORDO_REQUEST_ID_MAX;
}

int ordo_client_call_raw(ordo_client_t *c, const void *body, size_t len, int timeout_ms,
                         uint8_t **reply, size_t *reply_len)
{
    if (reply)
        *reply = NULL;
    if (reply_len)
        *reply_len = 0;
    ordo_str_t id;
    if (!c || !body || !reply || !reply_len || timeout_ms < 0 || len > ORDO_BODY_MAX ||
        !s_body_id(body, len, &id))
        return ORDO_E_INVALID;
    int64_t deadline = ordo_client_now_ms_() + timeout_ms;
    s_pending_t *mine = NULL;
    int rc = s_transmit(c, body, len, id.ptr, id.len, S_RAW, deadline, &mine);
    if (rc != 0)
        return rc;
    uint8_t *bytes = NULL;
    size_t n = 0;
    ordo_reply_t unused;
    if ((rc = s_await(c, mine, deadline, &bytes, &n, &unused)) != 0)
        return rc;
    bool ok = false;
    ordo_str_t echoed;
    s_reply_head(bytes, n, &ok, &echoed); /* true: s_match checked it */
    *reply = bytes;
    *reply_len = n;
    return ok ? 0 : ORDO_E_PROTOCOL;
}
