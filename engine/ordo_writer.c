/* The log writer's thread (see ordo_writer.h). Invariants: positions are
 * given in frame order, so they are gap-free and follow the log; a batch
 * goes back to its shard only after the frame holding it is durable (or
 * failed); on each shard's socket, batches go back in the order they came,
 * and a SNAPSHOT marker follows every batch it covers. */
#include "ordo_writer.h"

#include "ordo_batch.h"
#include "ordo_chain.h"
#include "ordo_clock.h"
#include "ordo_codec.h"
#include "ordo_error.h"
#include "ordo_limits.h"
#include "ordo_log.h"
#include "ordo_order.h"
#include "ordo_uuid.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <pthread.h>
#include <stdio.h>
#include <zmq.h>

typedef struct {
    const char *topic;
    size_t offset, len; /* the event's bytes in its batch's replies */
} s_pub_t;

struct ordo_writer {
    ordo_writer_config_t cfg;
    ordo_batch_t **pending; /* batches taken for the next frame, in arrival order */
    size_t npending, cap_pending;
    ordo_wal_rec_t *recs; /* scratch: the frame's records */
    s_pub_t *pubs;        /* scratch: what to publish, per record */
    size_t cap_recs;
    int64_t last_ts;
    int failed;
    uint32_t next_shard; /* where the next round of taking batches starts */
    uint32_t stopped; /* shards that sent STOP */
    bool *shard_stopped;
    uint64_t next_snapshot; /* head at which the next snapshot is due */
    bool snapshot_running;
};

ordo_writer_t *ordo_writer_new(const ordo_writer_config_t *cfg)
{
    ordo_writer_t *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->cfg = *cfg;
    w->last_ts = cfg->clock_floor_us;
    w->shard_stopped = calloc(cfg->nshards, sizeof *w->shard_stopped);
    w->next_snapshot =
        cfg->snapshot_every ? ordo_wal_head(cfg->wal) + cfg->snapshot_every : UINT64_MAX;
    if (!w->shard_stopped)
        ordo_writer_destroy(&w);
    return w;
}

void ordo_writer_destroy(ordo_writer_t **writer)
{
    if (!writer || !*writer)
        return;
    ordo_writer_t *w = *writer;
    for (size_t i = 0; i < w->npending; i++)
        ordo_batch_free(&w->pending[i]);
    free(w->pending);
    free(w->recs);
    free(w->pubs);
    free(w->shard_stopped);
    free(w);
    *writer = NULL;
}

static int s_reserve(ordo_writer_t *w, size_t n)
{
    if (n <= w->cap_recs)
        return 0;
    size_t cap = w->cap_recs ? w->cap_recs : 1024;
    while (cap < n)
        cap *= 2;
    ordo_wal_rec_t *recs = realloc(w->recs, cap * sizeof *recs);
    if (recs)
        w->recs = recs;
    s_pub_t *pubs = realloc(w->pubs, cap * sizeof *pubs);
    if (pubs)
        w->pubs = pubs;
    if (!recs || !pubs)
        return -1;
    w->cap_recs = cap;
    return 0;
}

/* Fails a batch: its shard answers each of its events `unavailable`
 * (replies are made there, where a reply that cannot be made still frees
 * its slot). */
static void s_fail_batch(ordo_batch_t *b, int rc)
{
    msgpack_sbuffer_clear(&b->replies);
    b->error = rc;
}

/* Stamps the pending events, builds their replies (each holding the
 * event as published), appends them as one frame, publishes them. */
static void s_commit(ordo_writer_t *w)
{
    size_t n = 0;
    for (size_t i = 0; i < w->npending; i++)
        if (w->pending[i]->kind == ORDO_BATCH_EVENTS)
            n += w->pending[i]->count;
    if (n == 0)
        return;
    int rc = w->failed ? w->failed : s_reserve(w, n) == 0 ? 0 : ORDO_ERR_NOMEM;
    uint64_t head = ordo_wal_head(w->cfg.wal), pos = head + 1;
    msgpack_packer pk;
    size_t k = 0;
    for (size_t i = 0; rc == 0 && i < w->npending; i++) {
        ordo_batch_t *b = w->pending[i];
        if (b->kind != ORDO_BATCH_EVENTS)
            continue;
        msgpack_sbuffer_clear(&b->replies);
        msgpack_packer_init(&pk, &b->replies, msgpack_sbuffer_write);
        b->first_position = pos;
        size_t off = 0;
        ordo_event_view_t v;
        while (rc == 0 && ordo_batch_next_event(b, &off, &v)) {
            int64_t now = ordo_now_us();
            w->last_ts = now > w->last_ts ? now : w->last_ts;
            uint8_t id[16];
            ordo_event_id(v.order_id, v.head.order_id_len, v.head.version, w->last_ts, id);
            ordo_str_t oid = {v.order_id, v.head.order_id_len};
            long at = ordo_batch_begin_tagged(&b->replies, v.head.tag);
            if (at < 0 || ordo_event_record_stamp(v.rec, v.head.rec_len, w->last_ts) != 0 ||
                ordo_reply_pack_command_head_of(&pk,
                                                (ordo_str_t){v.request_id, v.head.request_id_len},
                                                oid, v.head.version, pos, false) != 0) {
                rc = ORDO_ERR_NOMEM;
                break;
            }
            size_t ev_at = b->replies.size;
            if (ordo_event_pack_joined(&pk, pos, id, w->last_ts, v.mid, v.head.mid_len, v.rest,
                                       v.head.rest_len) != 0) {
                rc = ORDO_ERR_NOMEM;
                break;
            }
            /* The chain (PROTOCOL.md 1.1): the 9 keys just packed are the
             * canonical record; its hash becomes the 10th key and goes
             * into the log record. */
            uint8_t hash[32];
            ordo_chain_hash(v.head.prev_hash, b->replies.data + ev_at, b->replies.size - ev_at,
                            hash);
            b->replies.data[ev_at] = (char)0x8a; /* fixmap of 10 keys, was 9 */
            if (ordo_event_pack_hash(&pk, hash) != 0 ||
                ordo_event_record_stamp_hash(v.rec, v.head.rec_len, hash) != 0) {
                rc = ORDO_ERR_NOMEM;
                break;
            }
            ordo_batch_end_tagged(&b->replies, at);
            w->recs[k] = (ordo_wal_rec_t){v.rec, v.head.rec_len};
            w->pubs[k] = (s_pub_t){ordo_event_type_name((ordo_event_type_t)v.head.type), ev_at,
                                   b->replies.size - ev_at};
            k++;
            pos++;
        }
    }
    uint64_t first = 0;
    if (rc == 0)
        rc = ordo_wal_append(w->cfg.wal, w->recs, k, &first);
    if (rc == 0 && first != head + 1)
        rc = ORDO_ERR_CORRUPT; /* someone else appended: the positions given are wrong */
    bool replication_failed = false;
    if (rc == 0 && w->cfg.replicator) {
        const void *frame;
        size_t len;
        char why[600];
        ordo_wal_last_frame(w->cfg.wal, &frame, &len);
        if (ordo_replicator_publish(w->cfg.replicator, frame, len, first, (uint32_t)k, why,
                                    sizeof why) == 0) {
            ordo_wal_release(w->cfg.wal);
        } else {
            /* On the local disk, maybe in the stream: unknown. Nothing
             * more is written until a restart reconciles the two. */
            rc = ORDO_ERR_FAILED;
            replication_failed = true;
            ordo_log_error("writer",
                           "replication of positions %llu..%llu failed: %s; commands now get "
                           "unavailable (restart the engine to reconcile its log with the "
                           "stream); queries go on",
                           (unsigned long long)first, (unsigned long long)(first + k - 1), why);
        }
    }
    if (rc != 0) {
        /* The log's own failure is for good (it is sticky), and so is a
         * failed replication; out of memory here, or a frame too big,
         * fails only these events. */
        bool for_good =
            ordo_wal_error(w->cfg.wal) != 0 || rc == ORDO_ERR_CORRUPT || replication_failed;
        if (for_good && !w->failed) {
            w->failed = rc;
            ordo_stat_set(&w->cfg.stats->log_failed, 1);
            if (!replication_failed)
                ordo_log_error("writer",
                               "the log cannot be written (%s) after position %llu: commands "
                               "now get unavailable; queries go on",
                               ordo_strerror(rc), (unsigned long long)ordo_wal_head(w->cfg.wal));
        }
        for (size_t i = 0; i < w->npending; i++) {
            if (w->pending[i]->kind == ORDO_BATCH_EVENTS) {
                s_fail_batch(w->pending[i], rc);
                w->pending[i]->for_good = w->failed != 0;
            }
        }
        return;
    }
    ordo_stat_add(&w->cfg.stats->events_appended, k);
    ordo_stat_add(&w->cfg.stats->batches, 1);
    /* Durable: publish in position order. */
    k = 0;
    for (size_t i = 0; i < w->npending; i++) {
        ordo_batch_t *b = w->pending[i];
        if (b->kind != ORDO_BATCH_EVENTS)
            continue;
        for (uint32_t e = 0; e < b->count; e++, k++) {
            const s_pub_t *p = &w->pubs[k];
            zmq_send(w->cfg.pub, p->topic, strlen(p->topic), ZMQ_SNDMORE | ZMQ_DONTWAIT);
            zmq_send(w->cfg.pub, b->replies.data + p->offset, p->len, ZMQ_DONTWAIT);
        }
    }
}

/* Sends every pending batch back to its shard, in order, then the
 * snapshot marker if one is due. */
static void s_return(ordo_writer_t *w)
{
    for (size_t i = 0; i < w->npending; i++) {
        ordo_batch_t *b = w->pending[i];
        ordo_batch_send(w->cfg.shards[b->shard], b);
    }
    w->npending = 0;
    uint64_t head = ordo_wal_head(w->cfg.wal);
    if (w->failed || w->snapshot_running || head < w->next_snapshot || w->stopped > 0)
        return;
    /* In batch and never modes the head may not be synced yet; the
     * snapshot then covers unsynced events, and recovery drops it if a
     * power cut takes them (it checks the orders' positions against the
     * log). */
    /* All markers or none: a snapshot some shards never heard of could
     * not complete. */
    uint32_t n = w->cfg.nshards, made = 0;
    ordo_batch_t **marks = calloc(n, sizeof *marks);
    while (marks && made < n && (marks[made] = ordo_batch_new(ORDO_BATCH_SNAPSHOT, made)))
        made++;
    if (made < n) {
        while (marks && made > 0)
            ordo_batch_free(&marks[--made]);
        free(marks);
        ordo_log_error("writer", "out of memory starting a snapshot; trying later");
        return;
    }
    for (uint32_t i = 0; i < n; i++) {
        marks[i]->first_position = head;
        ordo_batch_send(w->cfg.shards[i], marks[i]);
    }
    free(marks);
    w->snapshot_running = true;
    w->next_snapshot = head + w->cfg.snapshot_every;
}

/* Makes room for one more pending batch. 0 or -1 (out of memory). */
static int s_room(ordo_writer_t *w)
{
    if (w->npending == w->cap_pending) {
        size_t cap = w->cap_pending ? w->cap_pending * 2 : 64;
        ordo_batch_t **grown = realloc(w->pending, cap * sizeof *grown);
        if (!grown)
            return -1;
        w->pending = grown;
        w->cap_pending = cap;
    }
    return 0;
}

void *ordo_writer_run(void *arg)
{
    ordo_writer_t *w = arg;
    pthread_setname_np(pthread_self(), "ordo-writer");
    uint32_t n = w->cfg.nshards;
    zmq_pollitem_t *items = calloc(n + 1, sizeof *items);
    if (!items) {
        ordo_log_error("writer", "out of memory at start");
        return NULL;
    }
    for (uint32_t i = 0; i < n; i++)
        items[i] = (zmq_pollitem_t){w->cfg.shards[i], 0, ZMQ_POLLIN, 0};
    items[n] = (zmq_pollitem_t){w->cfg.snapshot_done, 0, ZMQ_POLLIN, 0};
    size_t frame_bytes_max = w->cfg.frame_bytes_max && w->cfg.frame_bytes_max < ORDO_FRAME_BYTES_MAX
                                 ? w->cfg.frame_bytes_max
                                 : ORDO_FRAME_BYTES_MAX;
    while (w->stopped < n) {
        long timeout = -1;
        int64_t due = ordo_wal_sync_due_in_ms(w->cfg.wal);
        if (due >= 0)
            timeout = (long)due;
        if (zmq_poll(items, (int)n + 1, timeout) < 0 && zmq_errno() != EINTR) {
            /* Cannot happen while the sockets live; keep going (the shards
             * wait for their STOP back), but do not spin. */
            ordo_log_error("writer", "poll: %s", zmq_strerror(zmq_errno()));
            nanosleep(&(struct timespec){0, 10000000}, NULL);
        }
        uint64_t done;
        while (zmq_recv(w->cfg.snapshot_done, &done, sizeof done, ZMQ_DONTWAIT) == sizeof done)
            w->snapshot_running = false;
        /* Take what waits, shard by shard, up to a frame's worth. */
        size_t events = 0, bytes = 0;
        bool more = true;
        while (more && events < ORDO_FRAME_EVENTS_MAX && bytes < frame_bytes_max) {
            more = false;
            /* Shard by shard, from a different one each round, until the
             * frame is full: one batch past the bounds at most. */
            uint32_t first = w->next_shard++ % n;
            for (uint32_t k = 0; k < n && events < ORDO_FRAME_EVENTS_MAX &&
                                 bytes < frame_bytes_max;
                 k++) {
                uint32_t i = (first + k) % n;
                if (w->shard_stopped[i])
                    continue;
                if (s_room(w) != 0)
                    break; /* out of memory for the list: commit what we have */
                ordo_batch_t *b = ordo_batch_recv(w->cfg.shards[i], ZMQ_DONTWAIT);
                if (!b)
                    continue;
                w->pending[w->npending++] = b;
                more = true;
                if (b->kind == ORDO_BATCH_STOP) {
                    w->shard_stopped[i] = true;
                    w->stopped++;
                } else {
                    events += b->count;
                    bytes += b->buf.size;
                }
            }
        }
        s_commit(w);
        s_return(w);
        ordo_wal_sync_if_due(w->cfg.wal);
    }
    free(items);
    ordo_wal_sync(w->cfg.wal);
    return NULL;
}
