/* Request handling and group commit for the engine (see ordo_service.h).
 * Invariants: outbox entries leave in the order their requests came;
 * an entry that waits for a flush (a command's reply) blocks the ones
 * after it; queries, duplicates and history reads run only when nothing
 * is queued, so they see durable state; after a log failure the registry
 * is rebuilt from the log, so it never shows an event the log lacks. */
#include "ordo_service.h"

#include "ordo_clock.h"
#include "ordo_codec.h"
#include "ordo_error.h"
#include "ordo_local.h"
#include "ordo_log.h"
#include "ordo_state.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    uint64_t tag;
    char *bytes; /* owned: the reply */
    size_t len;
    bool waits;  /* a command reply: released by the next flush */
    bool after_pending; /* decided while events were not yet durable */
    uint64_t position;  /* a command reply: its event's position */
    uint8_t rid_len;
    char rid[ORDO_REQUEST_ID_MAX]; /* to answer `unavailable` if the flush fails */
} s_reply_t;

typedef struct {
    uint64_t position;
    const char *topic; /* static event type name */
    char *bytes;       /* owned: the wire-form event */
    size_t len;
} s_pub_t;

typedef struct {
    void *items;
    size_t count, cap, next; /* next: first not yet taken */
} s_vec_t;

struct ordo_service {
    ordo_registry_t *reg; /* owned */
    ordo_wal_t *wal;      /* borrowed */
    ordo_local_t *local;  /* owned */
    char *snapshot_dir;   /* owned */
    uint64_t snapshot_every, next_snapshot;
    bool stopped, failed;
    s_vec_t replies;      /* s_reply_t */
    size_t released;      /* replies[0 .. released) may leave */
    s_vec_t pubs;         /* s_pub_t; pubs[0 .. pubs_released) may leave */
    size_t pubs_released;
    ordo_request_t *req;  /* owned scratch */
    ordo_event_t *ev;     /* owned scratch */
    char *rec;            /* owned: copy of a record read from the log */
    size_t rec_cap;
    msgpack_sbuffer buf, side;
    msgpack_packer pk, side_pk;
    char *taken;          /* owned: the bytes last handed out */
    /* counters for Stats */
    uint64_t requests, commands, queries, errors, duplicates, flushes;
};

static void *s_vec_push(s_vec_t *v, size_t size)
{
    if (v->count == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 64;
        void *grown = realloc(v->items, cap * size);
        if (!grown)
            return NULL;
        v->items = grown;
        v->cap = cap;
    }
    return (char *)v->items + size * v->count++;
}

ordo_service_t *ordo_service_new(ordo_registry_t **reg, ordo_wal_t *wal, const char *snapshot_dir,
                                 uint64_t snapshot_every, uint32_t batch_max,
                                 int64_t clock_floor_us)
{
    ordo_service_t *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->reg = *reg;
    *reg = NULL;
    s->wal = wal;
    s->snapshot_every = snapshot_every;
    s->next_snapshot = snapshot_every ? ordo_wal_head(wal) + snapshot_every : UINT64_MAX;
    s->snapshot_dir = snapshot_dir ? strdup(snapshot_dir) : NULL;
    s->local = ordo_local_new(s->reg, wal, batch_max);
    s->req = malloc(sizeof *s->req);
    s->ev = malloc(sizeof *s->ev);
    msgpack_sbuffer_init(&s->buf);
    msgpack_packer_init(&s->pk, &s->buf, msgpack_sbuffer_write);
    msgpack_sbuffer_init(&s->side);
    msgpack_packer_init(&s->side_pk, &s->side, msgpack_sbuffer_write);
    if (!s->local || !s->req || !s->ev || (snapshot_dir && !s->snapshot_dir))
        ordo_service_destroy(&s);
    else
        ordo_local_set_clock_floor(s->local, clock_floor_us);
    return s;
}

void ordo_service_destroy(ordo_service_t **svc)
{
    if (!svc || !*svc)
        return;
    ordo_service_t *s = *svc;
    s_reply_t *r = s->replies.items;
    for (size_t i = 0; i < s->replies.count; i++)
        free(r[i].bytes);
    s_pub_t *p = s->pubs.items;
    for (size_t i = 0; i < s->pubs.count; i++)
        free(p[i].bytes);
    free(s->replies.items);
    free(s->pubs.items);
    free(s->taken);
    free(s->rec);
    free(s->req);
    free(s->ev);
    free(s->snapshot_dir);
    msgpack_sbuffer_destroy(&s->buf);
    msgpack_sbuffer_destroy(&s->side);
    ordo_local_destroy(&s->local);
    ordo_registry_destroy(&s->reg);
    free(s);
    *svc = NULL;
}

/* Queues s->buf as the reply under `tag`; `position` is the event of a
 * command reply (it waits for the flush), 0 for any other reply. */
static void s_queue(ordo_service_t *s, uint64_t tag, uint64_t position, ordo_str_t rid)
{
    bool waits = position != 0;
    bool after_pending = s->released < s->replies.count || ordo_local_queued(s->local) > 0;
    s_reply_t *r = s_vec_push(&s->replies, sizeof *r);
    char *bytes = malloc(s->buf.size ? s->buf.size : 1);
    if (!r || !bytes) {
        /* Out of memory: the reply is lost; the client's request times
         * out. Logged so it is not silent. */
        if (r)
            s->replies.count--;
        free(bytes);
        ordo_log_error("service", "out of memory queueing a reply");
        return;
    }
    memcpy(bytes, s->buf.data, s->buf.size);
    *r = (s_reply_t){.tag = tag,
                     .bytes = bytes,
                     .len = s->buf.size,
                     .waits = waits,
                     .after_pending = after_pending,
                     .position = position};
    r->rid_len = (uint8_t)(rid.len > ORDO_REQUEST_ID_MAX ? 0 : rid.len);
    if (r->rid_len)
        memcpy(r->rid, rid.ptr, r->rid_len);
    if (!waits && s->released == s->replies.count - 1 && ordo_local_queued(s->local) == 0)
        s->released = s->replies.count; /* nothing ahead of it waits */
}

static void s_error(ordo_service_t *s, uint64_t tag, ordo_str_t rid, const ordo_error_t *err)
{
    s->errors++;
    msgpack_sbuffer_clear(&s->buf);
    ordo_reply_pack_error(&s->pk, rid, err);
    s_queue(s, tag, 0, rid);
}

/* The log failed. Replies not yet released are settled by what the log
 * holds: a command whose event made it (an earlier frame of this round)
 * keeps its reply and its event is published; a command whose event did
 * not, and any answer decided while such events were pending (it may rest
 * on them), becomes `unavailable`. Then the state is rebuilt from the log,
 * so it shows nothing the log lacks. */
static void s_log_failed(ordo_service_t *s, int rc)
{
    if (s->failed)
        return;
    s->failed = true;
    uint64_t durable = ordo_wal_head(s->wal);
    ordo_log_error("service",
                   "the log cannot be written (%s) after position %llu: commands now get "
                   "unavailable; queries go on",
                   ordo_strerror(rc), (unsigned long long)durable);
    s_reply_t *r = s->replies.items;
    for (size_t i = s->released; i < s->replies.count; i++) {
        bool lost = r[i].position ? r[i].position > durable : r[i].after_pending;
        r[i].waits = false;
        if (!lost)
            continue;
        ordo_error_t e;
        ordo_error_set(&e, ORDO_CODE_UNAVAILABLE,
                       "the log could not be written (%s); the command may not have been "
                       "applied: retry it with the same request_id",
                       ordo_strerror(rc));
        msgpack_sbuffer_clear(&s->buf);
        ordo_reply_pack_error(&s->pk, (ordo_str_t){r[i].rid, r[i].rid_len}, &e);
        char *bytes = malloc(s->buf.size);
        if (bytes)
            memcpy(bytes, s->buf.data, s->buf.size);
        free(r[i].bytes);
        r[i].bytes = bytes; /* NULL (out of memory): no reply rather than a false one */
        r[i].len = bytes ? s->buf.size : 0;
        s->errors++;
    }
    s_pub_t *p = s->pubs.items;
    size_t keep = s->pubs_released;
    while (keep < s->pubs.count && p[keep].position <= durable)
        keep++;
    for (size_t i = keep; i < s->pubs.count; i++)
        free(p[i].bytes);
    s->pubs.count = s->pubs_released = keep;
    ordo_registry_clear(s->reg);
    ordo_state_recovery_t rep;
    int rrc = ordo_state_recover(s->reg, s->wal, s->snapshot_dir, &rep);
    if (rrc != 0)
        ordo_log_error("service", "rebuilding the state from the log failed: %s", ordo_strerror(rrc));
    else
        ordo_log_info("service", "state rebuilt from the log: %zu orders, head %llu",
                      ordo_registry_count(s->reg), (unsigned long long)rep.head_position);
}

/* Makes queued events durable and releases every queued reply. */
static int s_commit(ordo_service_t *s)
{
    int rc = ordo_local_flush(s->local);
    s->flushes++;
    if (rc != 0) {
        s_log_failed(s, rc);
    } else {
        s_reply_t *r = s->replies.items;
        for (size_t i = s->released; i < s->replies.count; i++)
            r[i].waits = false;
        s->pubs_released = s->pubs.count;
    }
    s->released = s->replies.count;
    return rc;
}

/* Reads the event at `pos` from the log into s->ev (views into s->rec). */
static int s_read_event(ordo_service_t *s, uint64_t pos)
{
    ordo_wal_reader_t *rd = NULL;
    int rc = ordo_wal_reader_new(s->wal, pos, &rd);
    if (rc != 0)
        return rc;
    uint64_t at;
    const void *data;
    size_t len;
    rc = ordo_wal_reader_next(rd, &at, &data, &len);
    if (rc == 1 && at == pos) {
        if (len > s->rec_cap) {
            char *grown = realloc(s->rec, len);
            if (!grown) {
                ordo_wal_reader_destroy(&rd);
                return ORDO_ERR_NOMEM;
            }
            s->rec = grown;
            s->rec_cap = len;
        }
        memcpy(s->rec, data, len);
        rc = ordo_event_decode_record(s->rec, len, pos, s->ev) == 0 ? 0 : ORDO_ERR_CORRUPT;
    } else {
        rc = rc < 0 ? rc : ORDO_ERR_NOT_FOUND;
    }
    ordo_wal_reader_destroy(&rd);
    return rc;
}

static void s_read_failed(ordo_service_t *s, uint64_t tag, ordo_str_t rid, uint64_t pos, int rc)
{
    ordo_log_error("service", "reading position %llu from the log failed: %s",
                   (unsigned long long)pos, ordo_strerror(rc));
    ordo_error_t e;
    ordo_error_set(&e, ORDO_CODE_UNAVAILABLE, "the log could not be read (%s)", ordo_strerror(rc));
    s_error(s, tag, rid, &e);
}

static void s_command(ordo_service_t *s, const ordo_request_t *req, uint64_t tag)
{
    ordo_error_t err;
    s->commands++;
    ordo_decision_t d = ordo_local_submit(s->local, req, &err);
    if (d == ORDO_DECIDE_EVENT) {
        const ordo_event_t *ev = ordo_local_last_event(s->local);
        /* The event is packed once: it is the reply's `event` and what PUB sends. */
        msgpack_sbuffer_clear(&s->side);
        ordo_event_pack(&s->side_pk, ev);
        msgpack_sbuffer_clear(&s->buf);
        ordo_reply_pack_command_head(&s->pk, req->request_id, ev, false);
        msgpack_sbuffer_write(&s->buf, s->side.data, s->side.size);
        s_queue(s, tag, ev->position, req->request_id);
        s_pub_t *p = s_vec_push(&s->pubs, sizeof *p);
        if (p && s->side.size > 0 && (p->bytes = malloc(s->side.size))) {
            memcpy(p->bytes, s->side.data, s->side.size);
            p->len = s->side.size;
            p->position = ev->position;
            p->topic = ordo_event_type_name(ev->type);
        } else if (p) {
            s->pubs.count--; /* subscribers fill the gap with ReadAll */
        }
        return;
    }
    if (d == ORDO_DECIDE_ERROR) {
        if (ordo_local_failed(s->local) && !s->failed)
            s_log_failed(s, ordo_local_failed(s->local));
        s_error(s, tag, req->request_id, &err);
        return;
    }
    /* Duplicate: the original reply, read back from the log. */
    s->duplicates++;
    if (ordo_local_queued(s->local) > 0)
        s_commit(s);
    const ordo_order_t *o = ordo_registry_find(s->reg, req->order_id);
    uint32_t v = o ? ordo_order_find_request(o, req->request_id) : 0;
    if (!o || v == 0) { /* the flush failed and took it away */
        ordo_error_set(&err, ORDO_CODE_UNAVAILABLE, "the log cannot be written");
        s_error(s, tag, req->request_id, &err);
        return;
    }
    int rc = s_read_event(s, o->positions[v - 1]);
    if (rc != 0) {
        s_read_failed(s, tag, req->request_id, o->positions[v - 1], rc);
        return;
    }
    msgpack_sbuffer_clear(&s->buf);
    ordo_reply_pack_command(&s->pk, req->request_id, s->ev, true);
    s_queue(s, tag, 0, req->request_id);
}

static void s_not_found(ordo_service_t *s, const ordo_request_t *req, uint64_t tag)
{
    ordo_error_t err;
    ordo_error_set(&err, ORDO_CODE_NOT_FOUND, "order %.*s does not exist", (int)req->order_id.len,
                   req->order_id.ptr);
    s_error(s, tag, req->request_id, &err);
}

static void s_get_order(ordo_service_t *s, const ordo_request_t *req, uint64_t tag)
{
    const ordo_order_t *o = ordo_registry_find(s->reg, req->order_id);
    if (!o || o->status == ORDO_STATUS_NONE) {
        s_not_found(s, req, tag);
        return;
    }
    bool past = (req->as_of_version > 0 && req->as_of_version < o->version) ||
                (req->has_as_of_time && req->as_of_time_us < o->updated_at_us);
    if (!past) {
        msgpack_sbuffer_clear(&s->buf);
        ordo_reply_pack_order(&s->pk, req->request_id, o);
        s_queue(s, tag, 0, req->request_id);
        return;
    }
    /* A past state: apply the order's events up to that version or time. */
    ordo_order_t then;
    memset(&then, 0, sizeof then);
    for (uint32_t v = 1; v <= o->version; v++) {
        if (req->as_of_version > 0 && v > (uint64_t)req->as_of_version)
            break;
        int rc = s_read_event(s, o->positions[v - 1]);
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
        msgpack_sbuffer_clear(&s->buf);
        ordo_reply_pack_order(&s->pk, req->request_id, &then);
        s_queue(s, tag, 0, req->request_id);
    }
    ordo_order_clear(&then);
}

static void s_get_history(ordo_service_t *s, const ordo_request_t *req, uint64_t tag)
{
    const ordo_order_t *o = ordo_registry_find(s->reg, req->order_id);
    if (!o || o->status == ORDO_STATUS_NONE) {
        s_not_found(s, req, tag);
        return;
    }
    uint64_t first = (uint64_t)req->from_version, last = o->version;
    if (first + (uint64_t)req->limit - 1 < last)
        last = first + (uint64_t)req->limit - 1;
    uint32_t n = first <= last ? (uint32_t)(last - first + 1) : 0;
    msgpack_sbuffer_clear(&s->buf);
    ordo_reply_pack_history_head(&s->pk, req->request_id, req->order_id, n);
    for (uint64_t v = first; v <= last; v++) {
        int rc = s_read_event(s, o->positions[v - 1]);
        if (rc != 0) {
            s_read_failed(s, tag, req->request_id, o->positions[v - 1], rc);
            return;
        }
        ordo_event_pack(&s->pk, s->ev);
    }
    s_queue(s, tag, 0, req->request_id);
}

static void s_read_all(ordo_service_t *s, const ordo_request_t *req, uint64_t tag)
{
    uint64_t head = ordo_wal_head(s->wal), from = (uint64_t)req->from_position, next = from;
    uint32_t n = 0;
    msgpack_sbuffer_clear(&s->side);
    if (from <= head) {
        ordo_wal_reader_t *rd = NULL;
        int rc = ordo_wal_reader_new(s->wal, from, &rd);
        uint64_t pos;
        const void *data;
        size_t len;
        while (rc == 0 && n < (uint64_t)req->limit &&
               (rc = ordo_wal_reader_next(rd, &pos, &data, &len)) == 1) {
            if (pos > head)
                break;
            if (ordo_event_decode_record(data, len, pos, s->ev) != 0) {
                rc = ORDO_ERR_CORRUPT;
                break;
            }
            ordo_event_pack(&s->side_pk, s->ev);
            n++;
            next = pos + 1;
            rc = 0;
        }
        ordo_wal_reader_destroy(&rd);
        if (rc < 0) {
            s_read_failed(s, tag, req->request_id, next, rc);
            return;
        }
    }
    msgpack_sbuffer_clear(&s->buf);
    ordo_reply_pack_read_all_head(&s->pk, req->request_id, next, head, n);
    msgpack_sbuffer_write(&s->buf, s->side.data, s->side.size);
    s_queue(s, tag, 0, req->request_id);
}

static void s_stats(ordo_service_t *s, const ordo_request_t *req, uint64_t tag)
{
    uint64_t frames, fsyncs, bytes;
    ordo_wal_stats(s->wal, &frames, &fsyncs, &bytes);
    const char *names[] = {"head_position", "orders",   "events_appended", "commands",
                           "queries",       "errors",   "duplicates",      "requests",
                           "frames",        "fsyncs",   "log_bytes",       "log_failed"};
    int64_t values[] = {(int64_t)ordo_wal_head(s->wal), (int64_t)ordo_registry_count(s->reg),
                        (int64_t)ordo_local_events(s->local), (int64_t)s->commands,
                        (int64_t)s->queries, (int64_t)s->errors, (int64_t)s->duplicates,
                        (int64_t)s->requests, (int64_t)frames, (int64_t)fsyncs, (int64_t)bytes,
                        s->failed ? 1 : 0};
    msgpack_sbuffer_clear(&s->buf);
    ordo_reply_pack_stats(&s->pk, req->request_id, names, values, sizeof values / sizeof *values);
    s_queue(s, tag, 0, req->request_id);
}

void ordo_service_request(ordo_service_t *s, const void *body, size_t len, uint64_t tag)
{
    ordo_error_t err;
    s->requests++;
    int decoded = ordo_request_decode(body, len, s->req, &err);
    if (s->stopped) {
        ordo_error_set(&err, ORDO_CODE_UNAVAILABLE, "the engine is shutting down; retry later");
        s_error(s, tag, s->req->request_id, &err);
        return;
    }
    if (decoded != 0) {
        s_error(s, tag, s->req->request_id, &err);
        return;
    }
    const ordo_request_t *req = s->req;
    if (ordo_request_is_command(req->type)) {
        s_command(s, req, tag);
        return;
    }
    /* Queries see durable state only, and every earlier write. */
    s->queries++;
    if (ordo_local_queued(s->local) > 0)
        s_commit(s);
    switch (req->type) {
    case ORDO_REQ_GET_ORDER: s_get_order(s, req, tag); break;
    case ORDO_REQ_GET_HISTORY: s_get_history(s, req, tag); break;
    case ORDO_REQ_READ_ALL: s_read_all(s, req, tag); break;
    case ORDO_REQ_STATS: s_stats(s, req, tag); break;
    default:
        msgpack_sbuffer_clear(&s->buf);
        ordo_reply_pack_ping(&s->pk, req->request_id, ordo_wal_head(s->wal));
        s_queue(s, tag, 0, req->request_id);
        break;
    }
}

int ordo_service_flush(ordo_service_t *s)
{
    int rc = s_commit(s);
    if (rc == 0 && !s->failed && ordo_wal_head(s->wal) >= s->next_snapshot) {
        ordo_service_snapshot(s);
        s->next_snapshot = ordo_wal_head(s->wal) + s->snapshot_every;
    }
    return rc;
}

bool ordo_service_next_reply(ordo_service_t *s, uint64_t *tag, const void **bytes, size_t *len)
{
    s_reply_t *r = s->replies.items;
    free(s->taken);
    s->taken = NULL;
    if (s->replies.next >= s->released) {
        if (s->replies.next == s->replies.count) { /* all out: start over */
            s->replies.count = s->replies.next = s->released = 0;
        }
        return false;
    }
    s_reply_t *e = &r[s->replies.next++];
    *tag = e->tag;
    *bytes = s->taken = e->bytes;
    *len = e->len;
    e->bytes = NULL;
    return true;
}

bool ordo_service_next_event(ordo_service_t *s, const char **topic, const void **bytes,
                             size_t *len)
{
    s_pub_t *p = s->pubs.items;
    free(s->taken);
    s->taken = NULL;
    if (s->pubs.next >= s->pubs_released) {
        if (s->pubs.next == s->pubs.count)
            s->pubs.count = s->pubs.next = s->pubs_released = 0;
        return false;
    }
    s_pub_t *e = &p[s->pubs.next++];
    *topic = e->topic;
    *bytes = s->taken = e->bytes;
    *len = e->len;
    e->bytes = NULL;
    return true;
}

void ordo_service_stop(ordo_service_t *s)
{
    s->stopped = true;
}

int ordo_service_snapshot(ordo_service_t *s)
{
    if (!s->snapshot_dir || s->failed)
        return 0;
    if (ordo_local_queued(s->local) > 0)
        s_commit(s);
    int rc = ordo_wal_sync(s->wal);
    if (rc == 0) {
        uint64_t t0 = ordo_mono_ns();
        rc = ordo_state_snapshot(s->reg, s->snapshot_dir, ordo_wal_synced_head(s->wal), 2);
        if (rc == 0)
            ordo_log_info("service", "snapshot at position %llu: %zu orders in %.1f ms",
                          (unsigned long long)ordo_wal_synced_head(s->wal),
                          ordo_registry_count(s->reg), (ordo_mono_ns() - t0) / 1e6);
    }
    if (rc != 0)
        ordo_log_error("service", "snapshot failed: %s", ordo_strerror(rc));
    return rc;
}
