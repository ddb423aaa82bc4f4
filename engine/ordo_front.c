/* The front end (see ordo_front.h). Invariants: every request read gets
 * exactly one reply, through its tag's envelope; requests for one order go
 * to one shard, in the order read, so its replies come back in that order. */
#include "ordo_front.h"

#include "ordo_batch.h"
#include "ordo_clock.h"
#include "ordo_codec.h"
#include "ordo_limits.h"
#include "ordo_log.h"
#include "ordo_partition.h"
#include "ordo_peers.h"
#include "ordo_readall.h"
#include "ordo_registry.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define STOP_WAIT_MS 10000 /* how long stopping waits for requests in flight */

typedef struct {
    int nframes;
    uint32_t generation; /* part of its tag: changes each time the slot is freed */
    int64_t reserved;    /* bytes its reply reserved (ordo_peers_reserve), 0 = none */
    bool query;          /* not a command: its reply may become `overloaded` */
    bool typed;          /* its type was read: its latency counts as a command's or a query's */
    bool refused;        /* refused at admission: the shard answers (and counts) `overloaded` */
    uint64_t read_ns;    /* when it was read (the round's clock), for its latency */
    ordo_peer_t *peer;   /* the connection it came from (held) */
    size_t body_len;
    uint8_t rid_len; /* its request_id, for a reply made here */
    char rid[ORDO_REQUEST_ID_MAX];
    zmq_msg_t frames[ORDO_ENVELOPE_MAX];
} s_envelope_t;

struct ordo_front {
    void *router;
    void **pipes;     /* owned array of borrowed sockets: the shards', then the reader's */
    uint32_t nshards; /* shards: pipes[0 .. nshards-1] */
    uint32_t npipes;  /* nshards, + 1 with a reader (pipes[nshards]) */
    uint32_t next_shard;
    s_envelope_t *slots;  /* owned: ORDO_FRONT_INFLIGHT_MAX */
    uint32_t *free_slots; /* owned: stack of free slot indexes */
    uint32_t nfree;
    size_t bytes;          /* bodies in flight */
    ordo_batch_t **out;    /* owned: the batch being filled per shard */
    ordo_batch_t **stops;  /* owned: each shard's STOP, made at start (sending it cannot fail) */
    zmq_pollitem_t *items; /* owned: the shards' sockets, the ROUTER, the control socket */
    void *control;         /* borrowed: a message here means stop */
    ordo_peers_t *peers;   /* owned: what each connection holds of large replies */
    uint64_t rounds;
    uint64_t dropped;
    uint64_t now_ns;           /* the clock, read once per round of reads and per batch of replies */
    ordo_front_stats_t *stats; /* borrowed */
    ordo_request_t *req; /* scratch for replies made here */
    msgpack_sbuffer buf;
    msgpack_packer pk;
    /* The partition map's answers (ordo_front_set_partitions). */
    ordo_front_partitions_t parts;
    char self_endpoint[ORDO_PARTMAP_ENDPOINT_MAX], self_pub[ORDO_PARTMAP_ENDPOINT_MAX];
    ordo_partmap_owner_t *owners;  /* owned: [partitions] */
    ordo_partition_owner_t *views; /* owned: [partitions], into owners */
    uint64_t map_at_ns;            /* when owners were last filled (0: never) */
};

ordo_front_t *ordo_front_new(void *router, void **shards, uint32_t nshards, void *reader,
                             void *control, ordo_front_stats_t *stats)
{
    ordo_front_t *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->router = router;
    f->stats = stats;
    f->nshards = nshards;
    f->npipes = nshards + (reader != NULL);
    if (!(f->pipes = calloc(f->npipes, sizeof *f->pipes))) {
        free(f);
        return NULL;
    }
    for (uint32_t i = 0; i < nshards; i++)
        f->pipes[i] = shards[i];
    if (reader)
        f->pipes[nshards] = reader;
    uint32_t np = f->npipes;
    f->slots = calloc(ORDO_FRONT_INFLIGHT_MAX, sizeof *f->slots);
    f->free_slots = malloc(ORDO_FRONT_INFLIGHT_MAX * sizeof *f->free_slots);
    f->out = calloc(np, sizeof *f->out);
    f->stops = calloc(np, sizeof *f->stops);
    f->items = calloc(np + 2, sizeof *f->items);
    f->req = malloc(sizeof *f->req);
    f->peers = ordo_peers_new();
    msgpack_sbuffer_init(&f->buf);
    msgpack_packer_init(&f->pk, &f->buf, msgpack_sbuffer_write);
    /* Room for any error reply made here, so that one never allocates. */
    static const char room[8192];
    msgpack_sbuffer_write(&f->buf, room, sizeof room);
    msgpack_sbuffer_clear(&f->buf);
    bool ok = f->buf.alloc >= sizeof room && f->slots && f->free_slots && f->out && f->stops &&
              f->items && f->req && f->peers;
    for (uint32_t i = 0; ok && i < np; i++) {
        ok = (f->stops[i] = ordo_batch_new(ORDO_BATCH_STOP, i)) != NULL;
        f->items[i] = (zmq_pollitem_t){f->pipes[i], 0, ZMQ_POLLIN, 0};
    }
    if (!ok) {
        ordo_front_destroy(&f);
        return NULL;
    }
    f->items[np] = (zmq_pollitem_t){router, 0, ZMQ_POLLIN, 0};
    f->items[np + 1] = (zmq_pollitem_t){control, 0, ZMQ_POLLIN, 0};
    f->control = control;
    for (uint32_t i = 0; i < ORDO_FRONT_INFLIGHT_MAX; i++)
        f->free_slots[i] = ORDO_FRONT_INFLIGHT_MAX - 1 - i;
    f->nfree = ORDO_FRONT_INFLIGHT_MAX;
    return f;
}

void ordo_front_destroy(ordo_front_t **front)
{
    if (!front || !*front)
        return;
    ordo_front_t *f = *front;
    if (f->slots)
        for (uint32_t i = 0; i < ORDO_FRONT_INFLIGHT_MAX; i++)
            for (int k = 0; k < f->slots[i].nframes; k++)
                zmq_msg_close(&f->slots[i].frames[k]);
    for (uint32_t i = 0; f->out && i < f->npipes; i++)
        ordo_batch_free(&f->out[i]);
    for (uint32_t i = 0; f->stops && i < f->npipes; i++)
        ordo_batch_free(&f->stops[i]);
    free(f->pipes);
    free(f->stops);
    free(f->items);
    ordo_peers_destroy(&f->peers);
    free(f->slots);
    free(f->free_slots);
    free(f->out);
    free(f->req);
    free(f->owners);
    free(f->views);
    msgpack_sbuffer_destroy(&f->buf);
    free(f);
    *front = NULL;
}

int ordo_front_set_partitions(ordo_front_t *f, const ordo_front_partitions_t *p)
{
    uint32_t n = p->partitions ? p->partitions : 1;
    free(f->owners);
    free(f->views);
    f->owners = calloc(n, sizeof *f->owners);
    f->views = calloc(n, sizeof *f->views);
    f->map_at_ns = 0;
    if (!f->owners || !f->views) {
        free(f->owners);
        free(f->views);
        f->owners = NULL;
        f->views = NULL;
        return -1;
    }
    f->parts = *p;
    f->parts.partitions = n;
    snprintf(f->self_endpoint, sizeof f->self_endpoint, "%s", p->endpoint ? p->endpoint : "");
    snprintf(f->self_pub, sizeof f->self_pub, "%s", p->pub ? p->pub : "");
    f->parts.endpoint = f->self_endpoint;
    f->parts.pub = f->self_pub;
    return 0;
}

/* The map as known now: the watched owners, and this engine for its own
 * partition (it holds the lease while it runs). Filled again at most
 * every 100 ms: with 4,096 partitions it is megabytes to copy. */
static void s_fill_map(ordo_front_t *f)
{
    uint32_t n = f->parts.partitions, self = f->parts.partition;
    if (f->map_at_ns && f->now_ns - f->map_at_ns < 100000000u)
        return;
    f->map_at_ns = f->now_ns ? f->now_ns : 1;
    if (f->parts.map)
        ordo_partmap_get(f->parts.map, f->owners);
    ordo_partmap_owner_t *me = &f->owners[self];
    uint64_t rev = strcmp(me->endpoint, f->self_endpoint) == 0 &&
                           me->revision > f->parts.revision
                       ? me->revision
                       : f->parts.revision;
    snprintf(me->endpoint, sizeof me->endpoint, "%s", f->self_endpoint);
    snprintf(me->pub, sizeof me->pub, "%s", f->self_pub);
    me->revision = rev;
    for (uint32_t k = 0; k < n; k++)
        f->views[k] = (ordo_partition_owner_t){
            .endpoint = {f->owners[k].endpoint, (uint32_t)strlen(f->owners[k].endpoint)},
            .pub = {f->owners[k].pub, (uint32_t)strlen(f->owners[k].pub)},
            .revision = f->owners[k].revision};
}

_Static_assert(ORDO_FRONT_INFLIGHT_MAX <= (1u << ORDO_TAG_INDEX_BITS),
               "slot indexes must fit in a tag");

/* Sends a reply with the envelope of `tag` and frees the slot. A tag
 * whose slot waits for nothing, or whose generation is not the slot's
 * (a reply come late: the slot serves another request now), is dropped. */
static void s_send_reply(ordo_front_t *f, uint64_t tag, const void *bytes, size_t len)
{
    uint32_t index = ordo_tag_index(tag);
    if (tag > ordo_tag_slot(tag) || index >= ORDO_FRONT_INFLIGHT_MAX ||
        f->slots[index].nframes == 0 || f->slots[index].generation != ordo_tag_generation(tag)) {
        ordo_log_error("front",
                       "a reply for no waiting request (slot %u, generation %u) was "
                       "dropped",
                       index, ordo_tag_generation(tag));
        return;
    }
    s_envelope_t *env = &f->slots[index];
    if (env->typed)
        ordo_buckets_observe(env->query ? &f->stats->query_ns : &f->stats->command_ns,
                             f->now_ns - env->read_ns);
    /* The body first, so a failure cannot leave a message half sent. It
     * counts against its connection until written (ordo_peers.h); out of
     * memory for that, a plain copy is the fallback. */
    zmq_msg_t body;
    if (ordo_peers_counted_msg(f->peers, env->peer, bytes, len, &body) != 0) {
        if (zmq_msg_init_size(&body, len) == 0)
            memcpy(zmq_msg_data(&body), bytes, len);
        else
            zmq_msg_init(&body); /* out of memory: an empty reply rather than none */
    }
    for (int i = 0; i < env->nframes; i++)
        zmq_msg_send(&env->frames[i], f->router, ZMQ_SNDMORE | ZMQ_DONTWAIT);
    if (zmq_msg_send(&body, f->router, ZMQ_DONTWAIT) < 0)
        zmq_msg_close(&body);
    for (int i = 0; i < env->nframes; i++)
        zmq_msg_close(&env->frames[i]);
    env->nframes = 0;
    if (env->reserved)
        ordo_peers_reserve_done(f->peers, env->peer, env->reserved);
    ordo_peers_release(f->peers, env->peer);
    env->reserved = 0;
    env->peer = NULL;
    f->bytes -= env->body_len;
    env->generation++; /* 32 bits, as in the tag: wraps around */
    f->free_slots[f->nfree++] = index;
}

/* Answers a request here, without a shard (too large, or stopped). */
static void s_send_error_uncounted(ordo_front_t *f, uint64_t tag, ordo_str_t rid,
                                   const ordo_error_t *err)
{
    msgpack_sbuffer_clear(&f->buf);
    ordo_reply_pack_error(&f->pk, rid, err);
    s_send_reply(f, tag, f->buf.data, f->buf.size);
}

static void s_send_error(ordo_front_t *f, uint64_t tag, ordo_str_t rid, const ordo_error_t *err)
{
    ordo_stat_add(&f->stats->by_code[(unsigned)err->code < ORDO_CODE_COUNT_ ? err->code : 0], 1);
    s_send_error_uncounted(f, tag, rid, err);
}

static void s_send_lost(ordo_front_t *f, uint64_t tag);
static void s_send_overloaded(ordo_front_t *f, uint64_t tag);

/* Partitions: the map. */
static void s_send_partitions(ordo_front_t *f, uint64_t tag, ordo_str_t rid)
{
    msgpack_sbuffer_clear(&f->buf);
    if (!f->owners) { /* not set: one engine, no map of its own */
        ordo_front_partitions_t one = {.partition = 0, .partitions = 1};
        if (ordo_front_set_partitions(f, &one) != 0) {
            s_send_lost(f, tag);
            return;
        }
    }
    s_fill_map(f);
    if (ordo_reply_pack_partitions(&f->pk, rid, f->parts.partition, f->parts.partitions,
                                   f->views) != 0) {
        s_send_lost(f, tag);
        return;
    }
    s_send_reply(f, tag, f->buf.data, f->buf.size);
}

/* wrong_partition: the order is partition k's, with the map. */
static void s_send_wrong_partition(ordo_front_t *f, uint64_t tag, ordo_str_t rid, ordo_str_t id,
                                   uint32_t k)
{
    ordo_stat_add(&f->stats->by_code[ORDO_CODE_WRONG_PARTITION], 1);
    s_fill_map(f);
    char message[600]; /* ordo_error_t's 256 bytes are not used here */
    if (f->views[k].endpoint.len)
        snprintf(message, sizeof message,
                 "order %.*s belongs to partition %u of %u, owned by %s; this engine serves "
                 "partition %u",
                 (int)id.len, id.ptr, k, f->parts.partitions, f->owners[k].endpoint,
                 f->parts.partition);
    else
        snprintf(message, sizeof message,
                 "order %.*s belongs to partition %u of %u, which has no owner now (retry "
                 "soon); this engine serves partition %u",
                 (int)id.len, id.ptr, k, f->parts.partitions, f->parts.partition);
    msgpack_sbuffer_clear(&f->buf);
    if (ordo_reply_pack_wrong_partition(&f->pk, rid, message, k, f->parts.partitions,
                                        f->views) != 0) {
        s_send_lost(f, tag);
        return;
    }
    s_send_reply(f, tag, f->buf.data, f->buf.size);
}

/* Answers `unavailable` for a request whose reply could not be made (out
 * of memory, here or in a shard), echoing its request_id. */
static void s_send_lost(ordo_front_t *f, uint64_t tag)
{
    uint32_t index = ordo_tag_index(tag);
    if (index >= ORDO_FRONT_INFLIGHT_MAX)
        return;
    const s_envelope_t *env = &f->slots[index];
    ordo_error_t err;
    ordo_error_set(&err, ORDO_CODE_UNAVAILABLE,
                   "the engine ran out of memory answering this request; retry it (a command "
                   "with the same request_id)");
    s_send_error(f, tag, (ordo_str_t){env->rid, env->rid_len}, &err);
}

/* Whether the reply to a query must become `overloaded`: its connection
 * holds its bound of replies not yet written (a client that does not read
 * them). Requests are admitted long before their replies exist, so the
 * bound is kept here too; a command's reply always goes (its event is
 * written), and a ReadAll page was admitted against its reservation. */
static bool s_over_budget(const ordo_front_t *f, uint64_t tag)
{
    uint32_t index = ordo_tag_index(tag);
    if (index >= ORDO_FRONT_INFLIGHT_MAX)
        return false;
    const s_envelope_t *env = &f->slots[index];
    return env->nframes > 0 && env->query && env->reserved == 0 &&
           !ordo_peers_under_bytes(env->peer);
}

static void s_send_overloaded(ordo_front_t *f, uint64_t tag)
{
    const s_envelope_t *env = &f->slots[ordo_tag_index(tag)];
    ordo_error_t err;
    ordo_readall_overloaded(&err);
    if (env->refused) /* the shard answered `overloaded` already, and counted it */
        s_send_error_uncounted(f, tag, (ordo_str_t){env->rid, env->rid_len}, &err);
    else
        s_send_error(f, tag, (ordo_str_t){env->rid, env->rid_len}, &err);
}

/* Answers without a shard: too large (bad_request, counted as not
 * decoded) or stopping (unavailable). */
static void s_reply_here(ordo_front_t *f, uint64_t tag, const void *body, size_t len, bool stopping)
{
    if (!stopping)
        ordo_stat_add(&f->stats->invalid, 1);
    ordo_error_t err;
    int rc = ordo_request_decode(body, len, f->req, &err);
    if (stopping || rc == 0)
        ordo_error_set(&err, ORDO_CODE_UNAVAILABLE, "the engine is shutting down; retry later");
    s_send_error(f, tag, f->req->request_id, &err);
}

/* Receives one whole message without waiting into a free slot. Returns 1
 * with the body in *body (caller closes it) and *tag, 0 if none waits, 2
 * if it was dropped for its envelope, -1 on a socket error. */
static int s_recv(ordo_front_t *f, uint64_t *tag, zmq_msg_t *body)
{
    uint32_t slot = f->free_slots[f->nfree - 1];
    s_envelope_t *env = &f->slots[slot];
    env->nframes = 0;
    zmq_msg_init(body);
    if (zmq_msg_recv(body, f->router, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(body);
        return errno == EAGAIN ? 0 : -1;
    }
    bool dropped = false;
    while (zmq_msg_more(body)) {
        if (env->nframes < ORDO_ENVELOPE_MAX && zmq_msg_size(body) <= ORDO_ENVELOPE_FRAME_MAX) {
            zmq_msg_init(&env->frames[env->nframes]);
            zmq_msg_move(&env->frames[env->nframes++], body);
        } else {
            dropped = true;
        }
        zmq_msg_close(body);
        zmq_msg_init(body);
        if (zmq_msg_recv(body, f->router, 0) < 0) {
            zmq_msg_close(body);
            dropped = true;
            break;
        }
    }
    if (dropped || env->nframes == 0) {
        ordo_stat_add(&f->stats->dropped, 1);
        if (f->dropped++ % 10000 == 0) /* one line per 10,000: a flood must not flood the log */
            ordo_log_warn("front",
                          "dropped a message whose envelope is over %d frames or a frame over "
                          "%d bytes (%llu so far)",
                          ORDO_ENVELOPE_MAX, ORDO_ENVELOPE_FRAME_MAX,
                          (unsigned long long)f->dropped);
        for (int i = 0; i < env->nframes; i++)
            zmq_msg_close(&env->frames[i]);
        env->nframes = 0;
        zmq_msg_close(body);
        return 2;
    }
    f->nfree--;
    /* The first frame is the peer's routing id (ROUTER puts it there). */
    env->peer =
        ordo_peers_acquire(f->peers, zmq_msg_data(&env->frames[0]), zmq_msg_size(&env->frames[0]));
    env->reserved = 0;
    env->query = env->typed = env->refused = false; /* until its type is read */
    env->read_ns = f->now_ns;
    env->body_len = zmq_msg_size(body);
    f->bytes += env->body_len;
    *tag = ordo_tag_for_slot(slot, env->generation);
    return 1;
}

/* Reads what waits (bounded) and sends each shard its batch; `local`:
 * answer here instead (`unavailable`: the shards have stopped). Returns
 * how many were read, or -1 if the ROUTER failed. */
static int s_read_requests(ordo_front_t *f, bool local)
{
    int failed = 0, n = 0;
    f->now_ns = ordo_mono_ns();
    for (int reads = 0; n < ORDO_FRONT_DRAIN_MAX && reads < 4 * ORDO_FRONT_DRAIN_MAX &&
                        f->nfree > 0 && f->bytes < ORDO_FRONT_INFLIGHT_BYTES_MAX;
         reads++) {
        uint64_t tag;
        zmq_msg_t body;
        int rc = s_recv(f, &tag, &body);
        if (rc == 0)
            break;
        if (rc < 0) {
            failed = -1;
            break;
        }
        if (rc == 2)
            continue;
        n++;
        const void *data = zmq_msg_data(&body);
        size_t len = zmq_msg_size(&body);
        ordo_request_peek_t peek;
        if (local || len > ORDO_BODY_MAX) {
            s_reply_here(f, tag, data, len, local);
        } else {
            ordo_request_peek(data, len, &peek);
            s_envelope_t *held = &f->slots[ordo_tag_index(tag)];
            held->rid_len = (uint8_t)peek.request_id.len;
            if (held->rid_len)
                memcpy(held->rid, peek.request_id.ptr, held->rid_len);
            const ordo_request_info_t *info = ordo_request_info(peek.type);
            /* The partition map's requests are answered here: Partitions,
             * and any on an order of another partition (a valid id: an
             * invalid one gets its bad_request from the shard). Both are
             * decoded whole first (a bad request is bad_request) and count
             * against their connection like any query. */
            uint32_t k = 0;
            bool misrouted = info->on_order && peek.has_order_id && f->parts.partitions > 1 &&
                             ordo_order_id_valid(peek.order_id) &&
                             (k = ordo_partition_of(peek.order_id.ptr, peek.order_id.len,
                                                    f->parts.partitions)) != f->parts.partition;
            if (info->front || misrouted) {
                s_envelope_t *env = &f->slots[ordo_tag_index(tag)];
                env->query = env->typed = true;
                ordo_error_t err;
                bool decoded = ordo_request_decode(data, len, f->req, &err) == 0;
                /* Counted as the shards count theirs: by type once decoded. */
                ordo_stat_add(&f->stats->by_type[decoded && (unsigned)f->req->type <
                                                                 ORDO_REQ_COUNT_
                                                     ? f->req->type
                                                     : ORDO_REQ_NONE],
                              1);
                if (!ordo_peers_under_bytes(env->peer))
                    s_send_overloaded(f, tag);
                else if (!decoded)
                    s_send_error(f, tag, peek.request_id, &err);
                else if (info->front)
                    s_send_partitions(f, tag, peek.request_id);
                else
                    s_send_wrong_partition(f, tag, peek.request_id, peek.order_id, k);
                zmq_msg_close(&body);
                continue;
            }
            /* Pages to the reader (they never hold up a shard), then by
             * order, then round the shards. */
            uint32_t shard =
                info->paged && f->npipes > f->nshards ? f->nshards
                : peek.has_order_id
                    ? (uint32_t)ordo_shard_of(
                          ordo_order_id_hash(peek.order_id.ptr, peek.order_id.len), f->nshards)
                    : f->next_shard++ % f->nshards;
            /* Every reply counts against its connection until written. A
             * paged query (ReadAll, up to 10,000 events) reserves its page's
             * bytes by an estimate per event until its reply is made; any
             * other request needs its connection under its bound. */
            unsigned why = ORDO_REFUSE_NONE;
            s_envelope_t *env = &f->slots[ordo_tag_index(tag)];
            env->query = !info->command;
            env->typed = true;
            if (info->paged) {
                int64_t events = peek.limit >= 1 && peek.limit <= info->limit_max
                                     ? peek.limit
                                     : info->limit_default;
                int64_t estimate = events * ORDO_READALL_EVENT_ESTIMATE;
                if (ordo_peers_reserve(f->peers, env->peer, estimate))
                    env->reserved = env->peer ? estimate : 0;
                else
                    why = ORDO_REFUSE_OVERLOADED;
            } else if (!ordo_peers_under_bytes(env->peer)) {
                why = ORDO_REFUSE_OVERLOADED;
            }
            env->refused = why != ORDO_REFUSE_NONE;
            ordo_batch_t **b = &f->out[shard];
            if (!*b)
                *b = ordo_batch_new(ORDO_BATCH_REQUESTS, shard);
            if (*b && ordo_batch_add_tagged(&(*b)->buf, ordo_tag_make(tag, why), data, len) == 0)
                (*b)->count++;
            else
                s_send_lost(f, tag);
        }
        zmq_msg_close(&body);
    }
    for (uint32_t i = 0; i < f->npipes; i++) {
        if (f->out[i] && f->out[i]->count > 0) {
            ordo_batch_send(f->pipes[i], f->out[i]);
            f->out[i] = NULL;
        }
    }
    return failed ? failed : n;
}

/* Sends the replies in every batch the shards returned. Returns how many
 * shards said their last word (STOP). */
static uint32_t s_read_replies(ordo_front_t *f)
{
    uint32_t stops = 0;
    for (uint32_t i = 0; i < f->npipes; i++) {
        f->now_ns = ordo_mono_ns();
        ordo_batch_t *b;
        uint64_t lost_tag;
        int got;
        while ((got = ordo_batch_recv_any(f->pipes[i], ZMQ_DONTWAIT, &b, &lost_tag)) != 0) {
            if (got == 2) {
                s_send_lost(f, lost_tag);
                continue;
            }
            if (b->kind == ORDO_BATCH_STOP) {
                stops++;
            } else {
                size_t off = 0;
                uint64_t tag;
                const void *bytes;
                size_t len;
                while (ordo_batch_next_tagged(&b->buf, &off, &tag, &bytes, &len))
                    if (s_over_budget(f, tag))
                        s_send_overloaded(f, tag);
                    else
                        s_send_reply(f, tag, bytes, len);
            }
            ordo_batch_free(&b);
        }
    }
    return stops;
}

int ordo_front_run(ordo_front_t *f)
{
    uint32_t n = f->npipes, stops = 0;
    zmq_pollitem_t *items = f->items;
    bool stopping = false, stop_sent = false, stop = false;
    uint64_t deadline = 0;
    int rc = 0;
    while (stops < n) {
        if (stop && !stopping) {
            stopping = true;
            deadline = ordo_mono_ns() + STOP_WAIT_MS * 1000000ull;
            ordo_log_info("front", "stopping: %u requests in flight; new ones get unavailable",
                          ORDO_FRONT_INFLIGHT_MAX - f->nfree);
        }
        if (stopping && !stop_sent &&
            (f->nfree == ORDO_FRONT_INFLIGHT_MAX || ordo_mono_ns() > deadline || rc < 0)) {
            if (f->nfree != ORDO_FRONT_INFLIGHT_MAX)
                ordo_log_warn("front", "stopping with %u requests still in flight",
                              ORDO_FRONT_INFLIGHT_MAX - f->nfree);
            for (uint32_t i = 0; i < n; i++) {
                ordo_batch_send(f->pipes[i], f->stops[i]);
                f->stops[i] = NULL;
            }
            stop_sent = true;
        }
        /* Stopping reads nothing new until the shards have stopped (then
         * every earlier request has its reply, and the rest are refused
         * below without overtaking any). */
        bool can_read =
            rc == 0 && !stopping && f->nfree > 0 && f->bytes < ORDO_FRONT_INFLIGHT_BYTES_MAX;
        items[n].events = can_read ? ZMQ_POLLIN : 0;
        if (zmq_poll(items, (int)n + 2, stopping ? 50 : 1000) < 0 && zmq_errno() != EINTR) {
            if (rc == 0)
                ordo_log_error("front", "poll: %s", zmq_strerror(zmq_errno()));
            rc = -1;
            stop = true;
            /* The shards' STOPs must still be counted: read what they sent. */
            stops += s_read_replies(f);
            continue;
        }
        if (items[n + 1].revents & ZMQ_POLLIN) {
            char word[8];
            zmq_recv(f->control, word, sizeof word, ZMQ_DONTWAIT);
            stop = true;
        }
        stops += s_read_replies(f);
        if ((++f->rounds & 4095) == 0)
            ordo_peers_sweep(f->peers); /* entries of connections long gone */
        if (can_read && (items[n].revents & ZMQ_POLLIN) && s_read_requests(f, false) < 0) {
            ordo_log_error("front", "receive: %s", zmq_strerror(zmq_errno()));
            rc = -1;
            stop = true;
        }
    }
    /* Requests that reached the ROUTER meanwhile get their `unavailable`
     * too (bounded: a client that keeps sending must not keep us up). */
    for (int round = 0; rc == 0 && round < 16 && s_read_requests(f, true) > 0; round++)
        ;
    return rc;
}
