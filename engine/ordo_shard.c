/* A shard's thread (see ordo_shard.h). Invariants: the registry holds
 * durable state only (an event is applied when the writer returns it as
 * durable); an order with an event at the writer is `busy`, and every
 * request on a busy order waits in the deferred list (its mailbox), in
 * arrival order, until the event is back; replies leave in the order they
 * were made, so requests on one order are answered in arrival order. */
#include "ordo_shard.h"

#include "ordo_batch.h"
#include "ordo_clock.h"
#include "ordo_codec.h"
#include "ordo_error.h"
#include "ordo_limits.h"
#include "ordo_log.h"
#include "ordo_readall.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <stdio.h>
#include <zmq.h>

/* A finished order in memory, and when it leaves. */
typedef struct {
    ordo_order_t *order;
    int64_t due_us;
} s_leaving_t;

struct ordo_shard {
    uint32_t index;
    ordo_registry_t *reg;             /* owned */
    ordo_wal_t *wal;                  /* borrowed: reads only */
    void *front, *writer, *snapshots; /* borrowed sockets, used by this thread only */
    ordo_engine_stats_t *stats;       /* borrowed */
    ordo_shard_stats_t *my;           /* stats->shard[index] */
    int failed;                       /* the log error that stopped commands, or 0 */
    bool fatal;                       /* a durable event could not be applied: answer nothing */
    bool stopped;
    ordo_batch_t *out_events;  /* to the writer, being filled */
    ordo_batch_t *out_replies; /* to the front end, being filled */
    msgpack_packer ev_pk;      /* packs into out_events->buf */
    msgpack_sbuffer deferred;  /* tagged request bodies waiting for a busy order */
    uint32_t deferred_count;
    msgpack_sbuffer buf; /* scratch for replies */
    ordo_sink_t sink;    /* buf, noting a failed write */
    msgpack_packer pk;   /* packs into sink */
    uint64_t lost;       /* replies that could not be made (out of memory) */
    ordo_request_t *req; /* owned scratch */
    ordo_event_t *ev;    /* owned scratch */
    char *rec;           /* owned: a record read back from the log */
    size_t rec_cap;
    ordo_wal_reader_t *reader; /* owned: for point reads, moved from one to the next */
    ordo_readall_t readall;    /* ReadAll pages, should one come here */
    /* the snapshot being packed: orders still to go, from the position */
    ordo_order_t **snap_orders;
    size_t snap_count, snap_next;
    uint64_t snap_position;
    bool snap_active, snap_failed;   /* failed: the snapshot must not be committed */
    uint64_t snap_t0, snap_pause_ns; /* for the log line: start, longest step */
    /* finished orders leaving memory (order_index NULL: none ever do) */
    ordo_index_t *order_index; /* borrowed */
    void *indexer;             /* borrowed PAIR to the indexer thread */
    int64_t retain_us;
    s_leaving_t *leaving; /* ring, oldest due first */
    size_t leave_head, leave_count, leave_cap;
    size_t leave_sent;      /* the first ones, at the indexer now */
    size_t leave_written;   /* the first ones, in the index, to drop after the snapshot */
    uint64_t indexed;       /* orders in memory that the index holds too */
    uint64_t index_count;   /* orders of this shard in the index */
    uint64_t last_evict_ns; /* when the last batch went to the indexer */
    bool index_failed;      /* the index could not be written: orders stay */
};

ordo_shard_t *ordo_shard_new(uint32_t index, ordo_registry_t **reg, ordo_wal_t *wal, void *front,
                             void *writer, void *snapshots, ordo_engine_stats_t *stats)
{
    ordo_shard_t *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->index = index;
    s->reg = *reg;
    *reg = NULL;
    s->wal = wal;
    s->front = front;
    s->writer = writer;
    s->snapshots = snapshots;
    s->stats = stats;
    s->my = &stats->shard[index];
    msgpack_sbuffer_init(&s->deferred);
    msgpack_sbuffer_init(&s->buf);
    s->sink = (ordo_sink_t){&s->buf, false};
    msgpack_packer_init(&s->pk, &s->sink, ordo_sink_write);
    s->req = malloc(sizeof *s->req);
    s->ev = malloc(sizeof *s->ev);
    if (ordo_readall_init(&s->readall, wal) != 0 || !s->req || !s->ev)
        ordo_shard_destroy(&s);
    else
        ordo_stat_set(&s->my->orders, ordo_registry_count(s->reg));
    return s;
}

void ordo_shard_destroy(ordo_shard_t **shard)
{
    if (!shard || !*shard)
        return;
    ordo_shard_t *s = *shard;
    ordo_batch_free(&s->out_events);
    ordo_batch_free(&s->out_replies);
    msgpack_sbuffer_destroy(&s->deferred);
    msgpack_sbuffer_destroy(&s->buf);
    free(s->req);
    free(s->ev);
    free(s->rec);
    ordo_wal_reader_destroy(&s->reader);
    ordo_readall_free(&s->readall);
    free(s->snap_orders);
    free(s->leaving);
    ordo_registry_destroy(&s->reg);
    free(s);
    *shard = NULL;
}

const ordo_registry_t *ordo_shard_registry(const ordo_shard_t *shard)
{
    return shard->reg;
}

/* ---- outgoing batches -------------------------------------------------- */

static void s_send_replies(ordo_shard_t *s)
{
    if (s->out_replies && s->out_replies->count > 0) {
        ordo_batch_send(s->front, s->out_replies);
        s->out_replies = NULL;
    }
}

static void s_send_events(ordo_shard_t *s)
{
    if (s->out_events && s->out_events->count > 0) {
        ordo_batch_send(s->writer, s->out_events);
        s->out_events = NULL;
    }
}

/* Empties s->buf for the next reply. */
static void s_clear(ordo_shard_t *s)
{
    msgpack_sbuffer_clear(&s->buf);
    s->sink.failed = false;
}

/* Queues s->buf as the reply under `tag`. A reply that could not be
 * packed whole or queued (out of memory) goes as a lost tag instead, which
 * the front end answers `unavailable`: every request gets its answer. */
static void s_reply(ordo_shard_t *s, uint64_t tag)
{
    bool ok = !s->sink.failed;
    s->sink.failed = false;
    if (ok && !s->out_replies && !(s->out_replies = ordo_batch_new(ORDO_BATCH_REPLIES, s->index)))
        ok = false;
    if (ok && ordo_batch_add_tagged(&s->out_replies->buf, tag, s->buf.data, s->buf.size) == 0)
        s->out_replies->count++;
    else
        ok = false;
    if (!ok) {
        if (s->lost++ % 10000 == 0) /* a line per 10,000: an out-of-memory storm must not flood */
            ordo_log_error("shard",
                           "shard %u: out of memory making a reply; answered unavailable "
                           "(%llu so far)",
                           s->index, (unsigned long long)s->lost);
        s_send_replies(s); /* every reply made before it goes first */
        ordo_batch_send_lost(s->front, tag);
        return;
    }
    if (s->out_replies->buf.size >= ORDO_SHARD_REPLY_BYTES_MAX)
        s_send_replies(s); /* large replies (ReadAll) leave at once, not a batch's worth */
}

static void s_error(ordo_shard_t *s, uint64_t tag, ordo_str_t rid, const ordo_error_t *err)
{
    ordo_stat_add(&s->my->errors, 1);
    ordo_stat_add(&s->my->by_code[(unsigned)err->code < ORDO_CODE_COUNT_ ? err->code : 0], 1);
    s_clear(s);
    ordo_reply_pack_error(&s->pk, rid, err);
    s_reply(s, tag);
}

static void s_unavailable(ordo_shard_t *s, uint64_t tag, ordo_str_t rid, const char *why)
{
    ordo_error_t err;
    ordo_error_set(&err, ORDO_CODE_UNAVAILABLE, "%s", why);
    s_error(s, tag, rid, &err);
}

/* Appends a decided event to the batch for the writer: the log record
 * (its timestamp stamped later by the writer) and the wire form's two
 * parts that the writer joins around position, event id and timestamp. */
static int s_queue_event(ordo_shard_t *s, uint64_t tag, const ordo_request_t *req,
                         ordo_order_t *order, const ordo_event_t *ev, const ordo_apply_prep_t *prep)
{
    ordo_batch_t *b = s->out_events;
    if (b && (b->count >= ORDO_SHARD_EVENTS_MAX || b->buf.size >= ORDO_SHARD_EVENT_BYTES_MAX)) {
        s_send_events(s);
        b = NULL;
    }
    if (!b) {
        if (!(b = s->out_events = ordo_batch_new(ORDO_BATCH_EVENTS, s->index)))
            return -1;
        msgpack_packer_init(&s->ev_pk, &b->buf, msgpack_sbuffer_write);
    }
    size_t at = b->buf.size;
    ordo_event_entry_t h = {.tag = tag,
                            .order = order,
                            .prep = *prep,
                            .version = ev->version,
                            .type = (uint32_t)ev->type,
                            .order_id_len = (uint8_t)ev->order_id.len,
                            .request_id_len = (uint8_t)req->request_id.len};
    if (order->has_head_hash)
        memcpy(h.prev_hash, order->head_hash, sizeof h.prev_hash);
    if (msgpack_sbuffer_write(&b->buf, (const char *)&h, sizeof h) != 0 ||
        msgpack_sbuffer_write(&b->buf, ev->order_id.ptr, ev->order_id.len) != 0 ||
        (req->request_id.len &&
         msgpack_sbuffer_write(&b->buf, req->request_id.ptr, req->request_id.len) != 0))
        goto fail;
    size_t mark = b->buf.size;
    if (ordo_event_pack_record(&s->ev_pk, ev) != 0)
        goto fail;
    h.rec_len = (uint32_t)(b->buf.size - mark);
    mark = b->buf.size;
    if (ordo_event_pack_mid(&s->ev_pk, ev) != 0)
        goto fail;
    h.mid_len = (uint32_t)(b->buf.size - mark);
    mark = b->buf.size;
    if (ordo_event_pack_rest(&s->ev_pk, ev) != 0)
        goto fail;
    h.rest_len = (uint32_t)(b->buf.size - mark);
    memcpy(b->buf.data + at, &h, sizeof h);
    b->count++;
    return 0;
fail:
    b->buf.size = at; /* drop the partial entry */
    return -1;
}

/* ---- reading the log --------------------------------------------------- */

/* Reads the event at `pos` from the log into s->ev (views into s->rec),
 * with the shard's one reader for point reads; `whole`: all of it (for a
 * reply), else what applying it needs (ordo_event_decode_record_for_apply). */
static int s_read_event(ordo_shard_t *s, uint64_t pos, bool whole)
{
    int rc = s->reader ? ordo_wal_reader_seek(s->reader, pos)
                       : ordo_wal_reader_new(s->wal, pos, &s->reader);
    if (rc != 0)
        return rc;
    ordo_wal_reader_t *rd = s->reader;
    uint64_t at;
    const void *data;
    size_t len;
    rc = ordo_wal_reader_next(rd, &at, &data, &len);
    if (rc == 1 && at == pos) {
        if (len > s->rec_cap) {
            char *grown = realloc(s->rec, len);
            if (!grown)
                return ORDO_ERR_NOMEM;
            s->rec = grown;
            s->rec_cap = len;
        }
        memcpy(s->rec, data, len);
        rc = (whole ? ordo_event_decode_record(s->rec, len, pos, s->ev)
                    : ordo_event_decode_record_for_apply(s->rec, len, pos, s->ev)) == 0
                 ? 0
                 : ORDO_ERR_CORRUPT;
    } else {
        rc = rc < 0 ? rc : ORDO_ERR_NOT_FOUND;
    }
    if (rc < 0 && rc != ORDO_ERR_NOMEM)
        ordo_wal_reader_destroy(&s->reader); /* start afresh next time */
    return rc;
}

static void s_read_failed(ordo_shard_t *s, uint64_t tag, ordo_str_t rid, uint64_t pos, int rc)
{
    ordo_log_error("shard", "reading position %llu from the log failed: %s",
                   (unsigned long long)pos, ordo_strerror(rc));
    ordo_error_t e;
    ordo_error_set(&e, ORDO_CODE_UNAVAILABLE, "the log could not be read (%s)", ordo_strerror(rc));
    s_error(s, tag, rid, &e);
}

/* ---- finished orders leave memory -------------------------------------- */

static void s_set_gauges(ordo_shard_t *s)
{
    uint64_t in_memory = ordo_registry_count(s->reg);
    ordo_stat_set(&s->my->orders, in_memory);
    ordo_stat_set(&s->my->indexed, s->indexed);
    /* one figure from one thread, so Stats never counts an order twice */
    ordo_stat_set(&s->my->known, in_memory + s->index_count - s->indexed);
}

/* Queues a finished order to leave memory at `due_us`. Out of memory: it
 * stays in memory (correct, only bigger). */
static void s_leave_push(ordo_shard_t *s, ordo_order_t *o, int64_t due_us)
{
    if (s->leave_count == s->leave_cap) {
        size_t cap = s->leave_cap ? s->leave_cap * 2 : 4096;
        s_leaving_t *ring = malloc(cap * sizeof *ring);
        if (!ring) {
            ordo_log_warn("shard", "out of memory: a finished order stays in memory");
            return;
        }
        for (size_t i = 0; i < s->leave_count; i++)
            ring[i] = s->leaving[(s->leave_head + i) % s->leave_cap];
        free(s->leaving);
        s->leaving = ring;
        s->leave_head = 0;
        s->leave_cap = cap;
    }
    s->leaving[(s->leave_head + s->leave_count++) % s->leave_cap] = (s_leaving_t){o, due_us};
}

/* Milliseconds until the next eviction is due (-1: none is waiting). */
static long s_evict_wait_ms(const ordo_shard_t *s)
{
    if (!s->order_index || s->leave_count == 0 || s->index_failed || s->leave_sent ||
        s->leave_written)
        return -1; /* nothing to send, or an answer from the indexer comes first */
    int64_t due = s->leaving[s->leave_head].due_us, now = ordo_now_us();
    int64_t wait_ms = due > now ? (due - now + 999) / 1000 : 0;
    int64_t since_ms = (int64_t)((ordo_mono_ns() - s->last_evict_ns) / 1000000);
    if (since_ms < ORDO_EVICT_EVERY_MS && wait_ms < ORDO_EVICT_EVERY_MS - since_ms)
        wait_ms = ORDO_EVICT_EVERY_MS - since_ms;
    return (long)wait_ms;
}

/* Finished orders whose time has come go to the indexer in one batch;
 * they stay in memory (and answer from there) until it has written them. */
static void s_evict(ordo_shard_t *s)
{
    if (s_evict_wait_ms(s) != 0)
        return;
    s->last_evict_ns = ordo_mono_ns();
    int64_t now = ordo_now_us();
    /* Only orders whose events are all synced: with --fsync batch or
     * never, an event is applied once written, and a crash could still
     * take it back; an index entry must never name a position the log
     * may lose (the index is synced). The rest wait for the next round. */
    uint64_t synced = ordo_wal_synced_head(s->wal);
    ordo_batch_t *b = NULL;
    size_t n = 0;
    while (n < s->leave_count && n < ORDO_EVICT_MAX) {
        const s_leaving_t *l = &s->leaving[(s->leave_head + n) % s->leave_cap];
        if (l->due_us > now || l->order->positions[l->order->version - 1] > synced)
            break;
        if ((!b && !(b = ordo_batch_new(ORDO_BATCH_INDEX, s->index))) ||
            ordo_index_pack(&b->buf, l->order) != 0) {
            ordo_batch_free(&b); /* out of memory: they stay, and go next time */
            return;
        }
        n++;
    }
    if (n == 0)
        return;
    b->count = (uint32_t)n;
    s->leave_sent = n;
    if (ordo_batch_send(s->indexer, b) != 0) { /* the indexer is gone: they stay */
        s->leave_sent = 0;
        s->index_failed = true;
        ordo_log_error("shard",
                       "shard %u: the indexer thread is gone; finished orders stay in "
                       "memory until a restart",
                       s->index);
    }
}

/* Drops the orders the indexer has written from memory, once no snapshot
 * is being packed (it holds pointers to them). Each is in its shard's
 * filter before it goes, so a request for it finds it in the index. */
static void s_drop_written(ordo_shard_t *s)
{
    if (s->snap_active || s->leave_written == 0)
        return;
    size_t n = s->leave_written;
    for (size_t i = 0; i < n; i++) {
        ordo_order_t *o = s->leaving[s->leave_head].order;
        s->leave_head = (s->leave_head + 1) % s->leave_cap;
        s->leave_count--;
        if (o->indexed)
            s->indexed--;
        ordo_str_t id = {o->order_id, o->order_id_len};
        ordo_index_note(s->order_index, s->index, ordo_order_id_hash(id.ptr, id.len));
        ordo_registry_remove(s->reg, id);
    }
    s->leave_written = 0;
    ordo_stat_add(&s->my->evicted, n);
    s_set_gauges(s);
}

/* The indexer's answer to the batch in flight. */
static void s_index_back(ordo_shard_t *s, ordo_batch_t *b)
{
    size_t n = s->leave_sent;
    s->leave_sent = 0;
    if (b->error != 0) {
        /* The orders stay in memory, which is always correct; trying again
         * would only fail again, so eviction stops until a restart. */
        s->index_failed = true;
        ordo_log_error("shard",
                       "shard %u: the order index cannot be written (%s); finished orders stay "
                       "in memory until a restart",
                       s->index, ordo_strerror(b->error));
    } else {
        /* In the index now (Stats counts each order once), and they leave
         * as soon as no snapshot is being packed. */
        for (size_t i = 0; i < n; i++) {
            ordo_order_t *o = s->leaving[(s->leave_head + i) % s->leave_cap].order;
            if (!o->indexed) { /* a new entry (an order loaded back was rewritten) */
                o->indexed = true;
                s->indexed++;
                s->index_count++;
            }
        }
        s->leave_written = n;
        s_drop_written(s);
        s_set_gauges(s);
    }
    ordo_batch_free(&b);
}

/* A request for an order this shard does not hold: if the index has it,
 * it is read back from the log into the registry (and leaves again like
 * any finished order). Returns the order, or NULL if the index does not
 * have it; *failed when it could not be loaded (the reply is sent). */
static ordo_order_t *s_load_back(ordo_shard_t *s, const ordo_request_t *req, uint64_t tag,
                                 uint64_t hash, bool *failed)
{
    *failed = false;
    ordo_index_entry_t e;
    int rc = ordo_index_get(s->order_index, s->index, req->order_id, hash, &e);
    if (rc == 0)
        return NULL;
    if (rc < 0) {
        ordo_error_t err;
        ordo_error_set(&err, ORDO_CODE_UNAVAILABLE, "the order index could not be read (%s)",
                       ordo_strerror(rc));
        s_error(s, tag, req->request_id, &err);
        *failed = true;
        return NULL;
    }
    ordo_order_t *o = ordo_registry_get_or_add_hashed(s->reg, req->order_id, hash);
    if (!o) {
        s_unavailable(s, tag, req->request_id, "out of memory");
        *failed = true;
        return NULL;
    }
    for (uint32_t v = 0; v < e.version; v++) {
        rc = s_read_event(s, e.positions[v], false);
        if (rc == 0 && (s->ev->order_id.len != req->order_id.len ||
                        memcmp(s->ev->order_id.ptr, req->order_id.ptr, req->order_id.len) != 0 ||
                        ordo_apply(o, s->ev) != 0))
            rc = ORDO_ERR_CORRUPT;
        if (rc != 0) {
            ordo_registry_remove(s->reg, req->order_id);
            s_read_failed(s, tag, req->request_id, e.positions[v], rc);
            *failed = true;
            return NULL;
        }
    }
    o->indexed = true;
    s->indexed++;
    ordo_stat_add(&s->my->loaded, 1);
    if (ordo_status_is_final(o->status))
        s_leave_push(s, o, ordo_now_us() + s->retain_us);
    s_set_gauges(s);
    return o;
}

static int s_by_due(const void *a, const void *b)
{
    int64_t x = ((const s_leaving_t *)a)->due_us, y = ((const s_leaving_t *)b)->due_us;
    return (x > y) - (x < y);
}

int ordo_shard_retain(ordo_shard_t *s, ordo_index_t *index, void *indexer, int64_t retain_us)
{
    s->order_index = index;
    s->indexer = indexer;
    s->retain_us = retain_us;
    s->index_count = ordo_index_shard_count(index, s->index);
    size_t n = ordo_registry_count(s->reg), k = 0, cursor = 0, cap = 4096;
    while (cap < n)
        cap *= 2;
    if (!(s->leaving = malloc(cap * sizeof *s->leaving))) {
        ordo_log_error("shard", "out of memory at start");
        return -1;
    }
    s->leave_cap = cap;
    /* The recovered finished orders leave in the order they finished,
     * sorted here by when they are due (the ring's own order); the index
     * may hold some already (they left before the last snapshot was taken,
     * or after it, and the log brought them back). */
    ordo_order_t *o;
    while ((o = ordo_registry_next(s->reg, &cursor)) != NULL) {
        if (!ordo_status_is_final(o->status))
            continue;
        ordo_index_entry_t e;
        int rc = ordo_index_get(index, s->index, (ordo_str_t){o->order_id, o->order_id_len},
                                ordo_order_id_hash(o->order_id, o->order_id_len), &e);
        if (rc < 0)
            return -1;
        if (rc == 1) {
            o->indexed = true;
            s->indexed++;
        }
        s->leaving[k++] = (s_leaving_t){o, o->updated_at_us + retain_us};
    }
    qsort(s->leaving, k, sizeof *s->leaving, s_by_due);
    s->leave_head = 0;
    s->leave_count = k;
    s_set_gauges(s);
    return 0;
}

/* ---- commands ---------------------------------------------------------- */

/* A command on `order` (NULL: not in the registry yet; `hash` is its
 * id's hash). */
static void s_command(ordo_shard_t *s, const ordo_request_t *req, uint64_t tag, ordo_order_t *order,
                      uint64_t hash)
{
    ordo_stat_add(&s->my->commands, 1);
    if (s->failed) {
        ordo_error_t err;
        ordo_error_set(&err, ORDO_CODE_UNAVAILABLE, "the log cannot be written (%s); retry later",
                       ordo_strerror(s->failed));
        s_error(s, tag, req->request_id, &err);
        return;
    }
    static const ordo_order_t none; /* decides for an order that does not exist */
    if (!order && req->type != ORDO_REQ_CREATE_ORDER) {
        ordo_error_t nf;
        uint32_t unused;
        ordo_decide(&none, req, s->ev, &unused, &nf); /* not_found, as PROTOCOL words it */
        s_error(s, tag, req->request_id, &nf);
        return;
    }
    if (!order)
        order = ordo_registry_get_or_add_hashed(s->reg, req->order_id, hash);
    if (!order) {
        s_unavailable(s, tag, req->request_id, "out of memory");
        return;
    }
    ordo_error_t err;
    uint32_t dup;
    ordo_decision_t d = ordo_decide(order, req, s->ev, &dup, &err);
    if (d == ORDO_DECIDE_EVENT) {
        s->ev->timestamp_us = 0; /* the writer stamps it, and the hash */
        s->ev->has_hash = true;
        memset(s->ev->hash, 0, sizeof s->ev->hash);
        /* Everything applying it will need, allocated before it is written:
         * once durable, applying it cannot fail. */
        ordo_apply_prep_t prep;
        bool prepared = ordo_apply_prepare(order, s->ev, &prep) == 0;
        if (!prepared || s_queue_event(s, tag, req, order, s->ev, &prep) != 0) {
            if (prepared)
                ordo_apply_prep_free(&prep);
            if (order->status == ORDO_STATUS_NONE)
                ordo_registry_remove(s->reg, req->order_id);
            s_unavailable(s, tag, req->request_id, "out of memory");
            return;
        }
        order->busy = true;
        return;
    }
    if (d == ORDO_DECIDE_ERROR) {
        if (order->status == ORDO_STATUS_NONE)
            ordo_registry_remove(s->reg, req->order_id); /* a refused create leaves nothing */
        s_error(s, tag, req->request_id, &err);
        return;
    }
    /* A duplicate: the original reply, read back from the log. */
    ordo_stat_add(&s->my->duplicates, 1);
    uint64_t pos = order->positions[dup - 1];
    int rc = s_read_event(s, pos, true);
    if (rc != 0) {
        s_read_failed(s, tag, req->request_id, pos, rc);
        return;
    }
    s_clear(s);
    ordo_reply_pack_command(&s->pk, req->request_id, s->ev, true);
    s_reply(s, tag);
}

/* ---- queries ----------------------------------------------------------- */

static void s_not_found(ordo_shard_t *s, const ordo_request_t *req, uint64_t tag)
{
    ordo_error_t err;
    ordo_error_set(&err, ORDO_CODE_NOT_FOUND, "order %.*s does not exist", (int)req->order_id.len,
                   req->order_id.ptr);
    s_error(s, tag, req->request_id, &err);
}

static void s_get_order(ordo_shard_t *s, const ordo_request_t *req, uint64_t tag,
                        const ordo_order_t *o)
{
    if (!o || o->status == ORDO_STATUS_NONE) {
        s_not_found(s, req, tag);
        return;
    }
    bool past = (req->as_of_version > 0 && req->as_of_version < o->version) ||
                (req->has_as_of_time && req->as_of_time_us < o->updated_at_us);
    if (!past) {
        s_clear(s);
        ordo_reply_pack_order(&s->pk, req->request_id, o);
        s_reply(s, tag);
        return;
    }
    /* A past state: apply the order's events up to that version or time. */
    ordo_order_t then;
    memset(&then, 0, sizeof then);
    for (uint32_t v = 1; v <= o->version; v++) {
        if (req->as_of_version > 0 && v > (uint64_t)req->as_of_version)
            break;
        int rc = s_read_event(s, o->positions[v - 1], false);
        if (rc != 0) {
            ordo_order_clear(&then);
            s_read_failed(s, tag, req->request_id, o->positions[v - 1], rc);
            return;
        }
        if (req->has_as_of_time && s->ev->timestamp_us > req->as_of_time_us)
            break;
        if (ordo_apply(&then, s->ev) != 0) {
            ordo_order_clear(&then);
            s_read_failed(s, tag, req->request_id, o->positions[v - 1], ORDO_ERR_CORRUPT);
            return;
        }
    }
    if (then.status == ORDO_STATUS_NONE) {
        s_not_found(s, req, tag); /* it did not exist yet */
    } else {
        s_clear(s);
        ordo_reply_pack_order(&s->pk, req->request_id, &then);
        s_reply(s, tag);
    }
    ordo_order_clear(&then);
}

static void s_get_history(ordo_shard_t *s, const ordo_request_t *req, uint64_t tag,
                          const ordo_order_t *o)
{
    if (!o || o->status == ORDO_STATUS_NONE) {
        s_not_found(s, req, tag);
        return;
    }
    uint64_t first = (uint64_t)req->from_version, last = o->version;
    if (first + (uint64_t)req->limit - 1 < last)
        last = first + (uint64_t)req->limit - 1;
    uint32_t n = first <= last ? (uint32_t)(last - first + 1) : 0;
    s_clear(s);
    ordo_reply_pack_history_head(&s->pk, req->request_id, req->order_id, n);
    for (uint64_t v = first; v <= last; v++) {
        int rc = s_read_event(s, o->positions[v - 1], true);
        if (rc != 0) {
            s_read_failed(s, tag, req->request_id, o->positions[v - 1], rc);
            return;
        }
        ordo_event_pack(&s->pk, s->ev);
    }
    s_reply(s, tag);
}

/* ReadAll goes to the engine's reader thread; a shard answers one only if
 * it is sent one (the same page, with its own reader). */
static void s_read_all(ordo_shard_t *s, const ordo_request_t *req, uint64_t tag,
                       const ordo_order_t *o)
{
    (void)o;
    s_clear(s);
    ordo_readall_page(&s->readall, req, &s->pk);
    s_reply(s, tag);
}

static void s_stats(ordo_shard_t *s, const ordo_request_t *req, uint64_t tag, const ordo_order_t *o)
{
    (void)o;
    ordo_engine_stats_t *st = s->stats;
    uint64_t sum[7] = {0}, indexed = 0, loaded = 0, evicted = 0;
    for (uint32_t i = 0; i <= st->shards; i++) { /* the shards, then the reader */
        ordo_shard_stats_t *c = i < st->shards ? &st->shard[i] : &st->reader;
        sum[0] += ordo_stat_get(&c->orders);
        indexed += ordo_stat_get(&c->indexed);
        loaded += ordo_stat_get(&c->loaded);
        evicted += ordo_stat_get(&c->evicted);
        sum[1] += ordo_stat_get(&c->commands);
        sum[2] += ordo_stat_get(&c->queries);
        sum[3] += ordo_stat_get(&c->errors);
        sum[4] += ordo_stat_get(&c->duplicates);
        sum[5] += ordo_stat_get(&c->requests);
        sum[6] += ordo_stat_get(&c->deferred);
    }
    /* What the front end answered itself (Partitions, wrong_partition). */
    for (int type = 0; type < ORDO_REQ_COUNT_; type++) {
        uint64_t n = ordo_stat_get(&st->front.by_type[type]);
        sum[5] += n;
        if (type != ORDO_REQ_NONE)
            sum[ordo_request_is_command((ordo_request_type_t)type) ? 1 : 2] += n;
    }
    uint64_t frames, fsyncs, bytes;
    ordo_wal_stats(s->wal, &frames, &fsyncs, &bytes);
    const char *names[] = {
        "head_position", "orders",           "events_appended", "commands",
        "queries",       "errors",           "duplicates",      "requests",
        "deferred",      "frames",           "fsyncs",          "log_bytes",
        "log_failed",    "shards",           "snapshots",       "snapshot_position",
        "snapshot_us",   "orders_in_memory", "orders_indexed",  "orders_loaded",
        "orders_evicted"};
    /* Known orders: each shard's, in memory or in the index. */
    uint64_t known = 0;
    for (uint32_t i = 0; i < st->shards; i++)
        known += ordo_stat_get(&st->shard[i].known);
    int64_t values[] = {(int64_t)ordo_wal_head(s->wal),
                        (int64_t)known,
                        (int64_t)ordo_stat_get(&st->events_appended),
                        (int64_t)sum[1],
                        (int64_t)sum[2],
                        (int64_t)sum[3],
                        (int64_t)sum[4],
                        (int64_t)sum[5],
                        (int64_t)sum[6],
                        (int64_t)frames,
                        (int64_t)fsyncs,
                        (int64_t)bytes,
                        (int64_t)ordo_stat_get(&st->log_failed),
                        (int64_t)st->shards,
                        (int64_t)ordo_stat_get(&st->snapshots),
                        (int64_t)ordo_stat_get(&st->snapshot_position),
                        (int64_t)ordo_stat_get(&st->snapshot_us),
                        (int64_t)sum[0],
                        (int64_t)(s->order_index ? ordo_index_count(s->order_index) : 0),
                        (int64_t)loaded,
                        (int64_t)evicted};
    s_clear(s);
    ordo_reply_pack_stats(&s->pk, req->request_id, names, values, sizeof values / sizeof *values);
    s_reply(s, tag);
}

/* ---- requests ---------------------------------------------------------- */

/* Puts a request aside until its order's event in flight is applied;
 * `again`: it was deferred before (counted then). */
static void s_defer(ordo_shard_t *s, uint64_t full_tag, const void *body, size_t len, bool again)
{
    if (ordo_batch_add_tagged(&s->deferred, full_tag, body, len) != 0) {
        s_unavailable(s, ordo_tag_slot(full_tag), s->req->request_id, "out of memory");
        return;
    }
    s->deferred_count++;
    if (!again)
        ordo_stat_add(&s->my->deferred, 1);
}

/* The refusal the front end asked for (ORDO_REFUSE_OVERLOADED). */
static void s_refuse(ordo_shard_t *s, uint64_t tag, ordo_str_t rid)
{
    ordo_error_t err;
    ordo_readall_overloaded(&err);
    s_error(s, tag, rid, &err);
}

static void s_ping(ordo_shard_t *s, const ordo_request_t *req, uint64_t tag, const ordo_order_t *o)
{
    (void)o;
    s_clear(s);
    ordo_reply_pack_ping(&s->pk, req->request_id, ordo_wal_head(s->wal));
    s_reply(s, tag);
}

/* The shard's handler of each query of the request-type table (commands
 * all go through s_command: decide, write, apply). `o` is the order a
 * query on an order names (NULL if it does not exist). */
typedef void (*s_query_fn)(ordo_shard_t *s, const ordo_request_t *req, uint64_t tag,
                           const ordo_order_t *o);
static const s_query_fn s_queries[ORDO_REQ_COUNT_] = {
    [ORDO_REQ_GET_ORDER] = s_get_order, [ORDO_REQ_GET_HISTORY] = s_get_history,
    [ORDO_REQ_READ_ALL] = s_read_all,   [ORDO_REQ_STATS] = s_stats,
    [ORDO_REQ_PING] = s_ping,
};

/* Handles one request body. `again`: it was deferred before (already
 * counted). */
static void s_request(ordo_shard_t *s, uint64_t full_tag, const void *body, size_t len, bool again)
{
    ordo_error_t err;
    ordo_request_t *req = s->req;
    unsigned refuse = ordo_tag_refuse(full_tag);
    uint64_t tag = ordo_tag_slot(full_tag);
    if (!again)
        ordo_stat_add(&s->my->requests, 1);
    int decoded = ordo_request_decode(body, len, req, &err);
    if (!again) /* by type; [ORDO_REQ_NONE]: not a request this engine knows */
        ordo_stat_add(&s->my->by_type[decoded == 0 && (unsigned)req->type < ORDO_REQ_COUNT_
                                          ? req->type
                                          : ORDO_REQ_NONE],
                      1);
    if (decoded != 0) { /* tied to no order: answered at once */
        if (refuse)
            s_refuse(s, tag, req->request_id);
        else
            s_error(s, tag, req->request_id, &err);
        return;
    }
    bool on_order = ordo_request_info(req->type)->on_order;
    ordo_order_t *o = NULL;
    uint64_t hash = 0;
    if (on_order) {
        hash = ordo_order_id_hash(req->order_id.ptr, req->order_id.len);
        if (ordo_shard_of(hash, s->stats->shards) != s->index) {
            /* The front end's peek and the decoder disagree on the order:
             * never touch an order another shard owns. */
            ordo_log_error("shard", "shard %u got a request for order %.*s, which it does not own",
                           s->index, (int)req->order_id.len, req->order_id.ptr);
            s_unavailable(s, tag, req->request_id, "internal routing error; please report it");
            return;
        }
        o = ordo_registry_find_hashed(s->reg, req->order_id, hash);
        if (!o && s->order_index && !refuse) {
            bool failed;
            o = s_load_back(s, req, tag, hash, &failed);
            if (failed)
                return;
        }
        if (o && o->busy) { /* its mailbox: after the event in flight */
            s_defer(s, full_tag, body, len, again);
            return;
        }
    }
    if (refuse) {
        s_refuse(s, tag, req->request_id);
        return;
    }
    if (s->fatal) {
        s_unavailable(s, tag, req->request_id,
                      "this shard stopped after it could not apply a durable event; the "
                      "engine must be restarted");
        return;
    }
    if (ordo_request_is_command(req->type)) {
        s_command(s, req, tag, o, hash);
        return;
    }
    if (!again)
        ordo_stat_add(&s->my->queries, 1);
    s_query_fn handler = s_queries[req->type];
    if (handler) {
        handler(s, req, tag, o);
    } else { /* a row of the request-type table without its handler here */
        ordo_log_error("shard", "no handler for %s", ordo_request_type_name(req->type));
        s_unavailable(s, tag, req->request_id, "this engine cannot answer that request type");
    }
}

/* Runs the deferred requests again, in order; those whose order is still
 * busy go back into the list, keeping their order. */
static void s_run_deferred(ordo_shard_t *s)
{
    if (s->deferred_count == 0)
        return;
    msgpack_sbuffer list = s->deferred;
    msgpack_sbuffer_init(&s->deferred);
    s->deferred_count = 0;
    size_t off = 0;
    uint64_t tag;
    const void *body;
    size_t len;
    while (ordo_batch_next_tagged(&list, &off, &tag, &body, &len))
        s_request(s, tag, body, len, true);
    msgpack_sbuffer_destroy(&list);
}

/* ---- the writer's answers ---------------------------------------------- */

/* A durable event could not be applied: the order would answer from
 * before its log. Every request on this shard gets unavailable from now
 * on; a restart rebuilds the state from the log. */
static void s_fatal(ordo_shard_t *s, uint64_t pos, ordo_str_t id)
{
    if (!s->fatal)
        ordo_log_error("shard",
                       "shard %u: the durable event at position %llu (order %.*s) could not be "
                       "applied; this shard answers unavailable from now on: restart the engine "
                       "to rebuild its state from the log",
                       s->index, (unsigned long long)pos, (int)id.len, id.ptr);
    s->fatal = true;
}

/* The writer returned a batch of this shard's events: durable (apply them;
 * their replies, built by the writer, go to the front end after every
 * reply made before) or failed (forget them and answer each
 * `unavailable`; if the log failed for good, every later command too). */
static void s_events_back(ordo_shard_t *s, ordo_batch_t *b)
{
    size_t off = 0;
    ordo_event_view_t v;
    uint64_t pos = b->first_position;
    while (ordo_batch_next_event(b, &off, &v)) {
        ordo_str_t id = {v.order_id, v.head.order_id_len};
        ordo_order_t *o = v.head.order; /* busy until now, so still in the registry */
        o->busy = false;
        if (b->error == 0) {
            /* Our own record, encoded moments ago: it decodes. Were it not
             * to, the order would fall behind its log, so the shard stops
             * for good (as LMDB does on MDB_FATAL_ERROR). */
            if (ordo_event_decode_record_for_apply(v.rec, v.head.rec_len, pos, s->ev) != 0) {
                ordo_apply_prep_free(&v.head.prep);
                s_fatal(s, pos, id);
            } else {
                ordo_apply_commit(o, s->ev, &v.head.prep);
                if (s->order_index && ordo_status_is_final(o->status))
                    s_leave_push(s, o, o->updated_at_us + s->retain_us);
            }
            pos++;
        } else {
            ordo_apply_prep_free(&v.head.prep);
            if (o->status == ORDO_STATUS_NONE)
                ordo_registry_remove(s->reg, id); /* its create never reached the log */
        }
    }
    if (b->error != 0 && b->for_good && !s->failed) { /* the log failed for good */
        s->failed = b->error;
        ordo_log_error("shard",
                       "shard %u: the log failed (%s); commands now get unavailable, "
                       "queries go on",
                       s->index, ordo_strerror(b->error));
    }
    s_set_gauges(s);
    if (b->error == 0) {
        s_send_replies(s); /* every reply made before these */
        b->kind = ORDO_BATCH_REPLIES;
        msgpack_sbuffer tmp = b->buf;
        b->buf = b->replies;
        b->replies = tmp;
        msgpack_sbuffer_clear(&b->replies);
        ordo_batch_send(s->front, b);
    } else {
        ordo_error_t err;
        ordo_error_set(&err, ORDO_CODE_UNAVAILABLE,
                       "the log could not be written (%s); the command may not have been "
                       "applied: retry it with the same request_id",
                       ordo_strerror(b->error));
        off = 0;
        while (ordo_batch_next_event(b, &off, &v))
            s_error(s, v.head.tag, (ordo_str_t){v.request_id, v.head.request_id_len}, &err);
        b->kind = ORDO_BATCH_REPLIES; /* its preparations are freed above */
        ordo_batch_free(&b);
        s_send_replies(s);
    }
    s_run_deferred(s);
}

/* ---- snapshots --------------------------------------------------------- */

/* The writer says a snapshot is due at `position`: every event up to it is
 * applied here (the writer sent their batches back before this message).
 * The shard lists its orders now and packs them a chunk per turn of its
 * loop, so requests keep flowing; an order may change before it is packed
 * (it then holds events past `position`; recovery skips those when it
 * replays from there, by version and position). */
static void s_snapshot_start(ordo_shard_t *s, uint64_t position)
{
    if (!s->snapshots)
        return;
    uint64_t t0 = ordo_mono_ns();
    size_t n = ordo_registry_count(s->reg), cursor = 0, k = 0;
    ordo_order_t **list = realloc(s->snap_orders, (n ? n : 1) * sizeof *list);
    if (list) {
        s->snap_orders = list;
        ordo_order_t *o;
        while ((o = ordo_registry_next(s->reg, &cursor)) != NULL)
            if (o->status != ORDO_STATUS_NONE)
                list[k++] = o;
    } else {
        ordo_log_error("shard", "out of memory starting a snapshot; it will not be committed");
    }
    s->snap_failed = list == NULL;
    s->snap_count = k;
    s->snap_next = 0;
    s->snap_position = position;
    s->snap_active = true;
    s->snap_t0 = t0;
    s->snap_pause_ns = ordo_mono_ns() - t0;
}

/* Packs the next chunk of the snapshot (all of it if `all`) and sends it
 * to the snapshotter; the last chunk says so. An order that cannot be
 * packed (out of memory) fails the whole snapshot: the chunk is marked
 * with the error and the snapshotter drops the file. */
static void s_snapshot_step(ordo_shard_t *s, bool all)
{
    uint64_t t0 = ordo_mono_ns();
    ordo_batch_t *b = ordo_batch_new(ORDO_BATCH_SNAPSHOT, s->index);
    if (!b) {
        ordo_log_error("shard", "out of memory packing a snapshot");
        return; /* tried again next turn */
    }
    b->first_position = s->snap_position;
    if (s->snap_failed)
        b->error = ORDO_ERR_NOMEM; /* a snapshot without this shard's orders must not be used */
    size_t end = all ? s->snap_count : s->snap_next + ORDO_SNAPSHOT_CHUNK;
    if (end > s->snap_count)
        end = s->snap_count;
    for (; s->snap_next < end; s->snap_next++) {
        s_clear(s);
        if (ordo_order_pack_snapshot(&s->pk, s->snap_orders[s->snap_next]) != 0 ||
            ordo_batch_add_tagged(&b->buf, 0, s->buf.data, s->buf.size) != 0) {
            b->error = ORDO_ERR_NOMEM;
            s->snap_next = s->snap_count;
            break;
        }
        b->count++;
    }
    b->last = s->snap_next == s->snap_count;
    ordo_batch_send(s->snapshots, b); /* b is the snapshotter's now */
    uint64_t took = ordo_mono_ns() - t0;
    if (took > s->snap_pause_ns)
        s->snap_pause_ns = took;
    if (s->snap_next == s->snap_count) {
        s->snap_active = false;
        s_drop_written(s);
        ordo_log_info("shard",
                      "shard %u packed %zu orders for the snapshot from position %llu in %.1f ms; "
                      "longest pause %.2f ms",
                      s->index, s->snap_count, (unsigned long long)s->snap_position,
                      (ordo_mono_ns() - s->snap_t0) / 1e6, s->snap_pause_ns / 1e6);
    }
}

/* ---- the loop ---------------------------------------------------------- */

static void s_from_front(ordo_shard_t *s, ordo_batch_t *b)
{
    if (b->kind == ORDO_BATCH_STOP) {
        /* Everything from the front end is in; pass the stop on, then
         * keep taking the writer's answers until it passes it back. */
        s_send_events(s);
        ordo_batch_send(s->writer, b);
        return;
    }
    size_t off = 0;
    uint64_t tag;
    const void *body;
    size_t len;
    while (ordo_batch_next_tagged(&b->buf, &off, &tag, &body, &len))
        s_request(s, tag, body, len, false);
    ordo_batch_free(&b);
}

static void s_from_writer(ordo_shard_t *s, ordo_batch_t *b)
{
    switch (b->kind) {
    case ORDO_BATCH_EVENTS: s_events_back(s, b); return;
    case ORDO_BATCH_SNAPSHOT:
        s_snapshot_start(s, b->first_position);
        ordo_batch_free(&b);
        return;
    case ORDO_BATCH_STOP:
        s->stopped = true;
        if (s->snap_active)
            s_snapshot_step(s, true); /* finish it: the snapshotter waits for it */
        if (s->indexer) {
            ordo_batch_t *ib;
            zmq_pollitem_t it = {s->indexer, 0, ZMQ_POLLIN, 0};
            if (s->leave_sent && zmq_poll(&it, 1, 10000) == 1 &&
                (ib = ordo_batch_recv(s->indexer, ZMQ_DONTWAIT)) != NULL)
                s_index_back(s, ib); /* the batch in flight: its orders may go */
            else if (s->leave_sent)
                ordo_log_error("shard",
                               "shard %u: the indexer did not answer; its orders stay "
                               "in the final snapshot",
                               s->index);
            if ((ib = ordo_batch_new(ORDO_BATCH_STOP, s->index)) != NULL)
                ordo_batch_send(s->indexer, ib);
        }
        if (s->snapshots) {
            ordo_batch_t *stop = ordo_batch_new(ORDO_BATCH_STOP, s->index);
            if (stop)
                ordo_batch_send(s->snapshots, stop);
        }
        s_send_replies(s);
        ordo_batch_send(s->front, b); /* the front end's last word from this shard */
        return;
    default: ordo_batch_free(&b); return;
    }
}

void *ordo_shard_run(void *arg)
{
    ordo_shard_t *s = arg;
    char name[16];
    snprintf(name, sizeof name, "ordo-shard-%u", s->index);
    pthread_setname_np(pthread_self(), name); /* for top -H, perf, gdb */
    zmq_pollitem_t items[] = {{s->writer, 0, ZMQ_POLLIN, 0},
                              {s->front, 0, ZMQ_POLLIN, 0},
                              {s->indexer, 0, ZMQ_POLLIN, 0}};
    uint64_t snap_next_ns = 0; /* no chunk of a snapshot before this, unless idle */
    while (!s->stopped) {
        long wait_ms = s_evict_wait_ms(s);
        if (s->snap_active) {
            uint64_t now = ordo_mono_ns();
            long pace = now >= snap_next_ns ? 0 : (long)((snap_next_ns - now + 999999) / 1000000);
            wait_ms = wait_ms < 0 || pace < wait_ms ? pace : wait_ms;
        }
        int ready = zmq_poll(items, s->indexer ? 3 : 2, wait_ms);
        if (ready < 0) {
            if (zmq_errno() == EINTR)
                continue;
            ordo_log_error("shard", "poll: %s", zmq_strerror(zmq_errno()));
            break;
        }
        ordo_batch_t *b;
        /* The writer's answers first: they free busy orders. */
        while (!s->stopped && (b = ordo_batch_recv(s->writer, ZMQ_DONTWAIT)) != NULL)
            s_from_writer(s, b);
        if (s->stopped)
            break;
        if (s->indexer && (b = ordo_batch_recv(s->indexer, ZMQ_DONTWAIT)) != NULL)
            s_index_back(s, b);
        if ((b = ordo_batch_recv(s->front, ZMQ_DONTWAIT)) != NULL)
            s_from_front(s, b);
        /* Packing a snapshot is background work: a chunk whenever the shard
         * is idle, and while it is busy, one every ORDO_SNAPSHOT_PACE_US,
         * so a snapshot never piles up a queue of requests. */
        if (s->snap_active && (ready == 0 || ordo_mono_ns() >= snap_next_ns)) {
            s_snapshot_step(s, false);
            snap_next_ns = ordo_mono_ns() + ORDO_SNAPSHOT_PACE_US * 1000ull;
        }
        s_evict(s);
        s_send_events(s);
        s_send_replies(s);
    }
    return NULL;
}
