/* Start-up recovery (snapshot + replay) and snapshot writing; see
 * ordo_state.h. Replay applies each event through ordo_apply(), the same
 * code that applies live events, so a replayed order equals the live one. */
#include "ordo_state.h"

#include "ordo_clock.h"
#include "ordo_codec.h"
#include "ordo_error.h"
#include "ordo_log.h"
#include "ordo_snapshot.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Loads one snapshot into reg. 0; -1 if a record does not decode; -2 if
 * it shows an event past the end of the log (it can never be used: new
 * events will take those positions). */
static int s_load_snapshot(ordo_registry_t *reg, ordo_snapshot_t *snap, uint64_t head,
                           uint64_t *orders, int64_t *last_ts)
{
    const void *rec;
    size_t len;
    int rc;
    ordo_order_t tmp;
    while ((rc = ordo_snapshot_next(snap, &rec, &len)) == 1) {
        memset(&tmp, 0, sizeof tmp);
        if (ordo_order_decode_snapshot(rec, len, &tmp) != 0) {
            ordo_log_warn("state", "snapshot %s: order record %llu does not decode",
                          ordo_snapshot_path(snap), (unsigned long long)*orders + 1);
            return -1;
        }
        ordo_order_t *o =
            ordo_registry_get_or_add(reg, (ordo_str_t){tmp.order_id, tmp.order_id_len});
        if (!o || o->status != ORDO_STATUS_NONE) {
            ordo_order_clear(&tmp);
            ordo_log_warn("state", "snapshot %s: %s", ordo_snapshot_path(snap),
                          o ? "the same order appears twice" : "out of memory");
            return -1;
        }
        if (tmp.version > 0 && tmp.positions[tmp.version - 1] > head) {
            /* Packed while running, the order holds events past the
             * snapshot's position; the log lost this one (a power cut in
             * batch or never mode), so the snapshot shows what never was. */
            ordo_log_warn("state",
                          "snapshot %s: order %.*s has an event at position %llu, "
                          "past the end of the log (%llu)",
                          ordo_snapshot_path(snap), (int)tmp.order_id_len, tmp.order_id,
                          (unsigned long long)tmp.positions[tmp.version - 1],
                          (unsigned long long)head);
            ordo_order_clear(&tmp);
            ordo_registry_remove(reg, (ordo_str_t){o->order_id, o->order_id_len});
            return -2;
        }
        *o = tmp; /* moves ownership of tmp's memory into the registry */
        if (o->updated_at_us > *last_ts)
            *last_ts = o->updated_at_us;
        (*orders)++;
    }
    return rc == 0 ? 0 : -1;
}

/* Replay keeps LOOKAHEAD records decoded ahead of the one it applies, and
 * asks the registry to start loading their slots (and, halfway, their
 * orders) into the cache: with many orders a lookup is a trip to memory,
 * and this way the trips overlap instead of queueing. */
#define LOOKAHEAD 8

typedef struct {
    uint64_t hash;
    size_t cap;       /* bytes allocated at `bytes` */
    char *bytes;      /* owned: the record (the event's views point here) */
    ordo_event_t *ev; /* owned */
} s_ahead_t;

/* Reads and decodes the next record into *a. 1, 0 at the end, or <0. */
static int s_read_ahead(ordo_wal_reader_t *rd, s_ahead_t *a)
{
    uint64_t pos;
    const void *data;
    size_t len;
    int rc = ordo_wal_reader_next(rd, &pos, &data, &len);
    if (rc != 1)
        return rc;
    if (len > a->cap) {
        char *grown = realloc(a->bytes, len);
        if (!grown)
            return ORDO_ERR_NOMEM;
        a->bytes = grown;
        a->cap = len;
    }
    memcpy(a->bytes, data, len);
    if (ordo_event_decode_record_for_apply(a->bytes, len, pos, a->ev) != 0) {
        ordo_log_error("state", "log event at position %llu does not decode",
                       (unsigned long long)pos);
        return ORDO_ERR_CORRUPT;
    }
    a->hash = ordo_order_id_hash(a->ev->order_id.ptr, a->ev->order_id.len);
    return 1;
}

static int s_replay(ordo_registry_t *reg, ordo_wal_t *wal, uint64_t from, uint64_t *applied,
                    int64_t *last_ts)
{
    ordo_wal_reader_t *rd = NULL;
    int rc = ordo_wal_reader_new(wal, from, &rd);
    if (rc != 0)
        return rc;
    s_ahead_t ring[LOOKAHEAD];
    memset(ring, 0, sizeof ring);
    for (int k = 0; k < LOOKAHEAD; k++) {
        if (!(ring[k].ev = malloc(sizeof *ring[k].ev))) {
            rc = ORDO_ERR_NOMEM;
            goto out;
        }
    }
    /* Fill the window. */
    int filled = 0;
    while (filled < LOOKAHEAD && (rc = s_read_ahead(rd, &ring[filled])) == 1)
        ordo_registry_prefetch_slot(reg, ring[filled++].hash);
    if (rc < 0)
        goto out;
    bool ended = filled < LOOKAHEAD;
    for (uint64_t i = 0; filled > 0; i++) {
        s_ahead_t *a = &ring[i % LOOKAHEAD];
        ordo_registry_prefetch_order(reg, ring[(i + LOOKAHEAD / 2) % LOOKAHEAD].hash);
        ordo_event_t *ev = a->ev;
        ordo_order_t *o = ordo_registry_get_or_add_hashed(reg, ev->order_id, a->hash);
        if (!o) {
            rc = ORDO_ERR_NOMEM;
            goto out;
        }
        if (ev->version <= o->version && o->positions[ev->version - 1] == ev->position) {
            /* Already in the snapshot: it was packed after this event. */
        } else if (ordo_apply(o, ev) != 0) {
            ordo_log_error("state",
                           "log event at position %llu (%s version %u of order %.*s) does not "
                           "follow the order's history",
                           (unsigned long long)ev->position, ordo_event_type_name(ev->type),
                           ev->version, (int)ev->order_id.len, ev->order_id.ptr);
            rc = ORDO_ERR_CORRUPT;
            goto out;
        }
        if (ev->timestamp_us > *last_ts)
            *last_ts = ev->timestamp_us;
        (*applied)++;
        filled--;
        /* Refill this slot; once the log has ended, the rest of the window
         * still sits in order in the slots after it. */
        rc = ended ? 0 : s_read_ahead(rd, a);
        if (rc < 0)
            goto out;
        if (rc == 1) {
            filled++;
            ordo_registry_prefetch_slot(reg, a->hash);
        } else {
            ended = true;
        }
    }
    rc = 0;
out:
    for (int k = 0; k < LOOKAHEAD; k++) {
        free(ring[k].bytes);
        free(ring[k].ev);
    }
    ordo_wal_reader_destroy(&rd);
    return rc;
}

int ordo_state_apply_record(ordo_registry_t *reg, const void *rec, size_t len, uint64_t position,
                            ordo_state_recovery_t *report, ordo_order_t **applied)
{
    ordo_event_t ev;
    if (ordo_event_decode_record_for_apply(rec, len, position, &ev) != 0) {
        ordo_log_error("state", "event at position %llu does not decode",
                       (unsigned long long)position);
        return ORDO_ERR_CORRUPT;
    }
    ordo_order_t *o = ordo_registry_get_or_add(reg, ev.order_id);
    if (!o)
        return ORDO_ERR_NOMEM;
    if (ordo_apply(o, &ev) != 0) {
        ordo_log_error("state",
                       "event at position %llu (%s version %u of order %.*s) does not follow "
                       "the order's history",
                       (unsigned long long)position, ordo_event_type_name(ev.type), ev.version,
                       (int)ev.order_id.len, ev.order_id.ptr);
        return ORDO_ERR_CORRUPT;
    }
    if (ev.timestamp_us > report->last_timestamp_us)
        report->last_timestamp_us = ev.timestamp_us;
    report->head_position = position;
    report->events_replayed++;
    if (applied)
        *applied = o;
    return 0;
}

/* Raises *last_ts to the timestamp of the log's event at `head`: the
 * latest in the log (timestamps never decrease along it), which the orders
 * in memory may not show when that event's order left memory before the
 * snapshot (a finished order, in the index). 0 or an ordo_err_t. */
static int s_head_timestamp(ordo_wal_t *wal, uint64_t head, int64_t *last_ts)
{
    ordo_wal_reader_t *rd = NULL;
    const void *data;
    size_t len;
    uint64_t pos;
    ordo_event_t *ev = malloc(sizeof *ev);
    int rc = ev ? ordo_wal_reader_new(wal, head, &rd) : ORDO_ERR_NOMEM;
    if (rc == 0 && (rc = ordo_wal_reader_next(rd, &pos, &data, &len)) == 1) {
        rc = ordo_event_decode_record_for_apply(data, len, pos, ev) == 0 ? 0 : ORDO_ERR_CORRUPT;
        if (rc == 0 && ev->timestamp_us > *last_ts)
            *last_ts = ev->timestamp_us;
    }
    ordo_wal_reader_destroy(&rd);
    free(ev);
    return rc;
}

int ordo_state_recover(ordo_registry_t *reg, ordo_wal_t *wal, const char *snapshot_dir,
                       ordo_state_recovery_t *report)
{
    uint64_t t0 = ordo_mono_ns();
    memset(report, 0, sizeof *report);
    uint64_t head = ordo_wal_head(wal);
    uint64_t limit = head;
    if (snapshot_dir) {
        int rc = ordo_snapshot_discard_after(snapshot_dir, head, ordo_wal_io(wal));
        if (rc < 0)
            return rc;
    }
    while (snapshot_dir) {
        ordo_snapshot_t *snap = NULL;
        int rc = ordo_snapshot_open_newest_before(snapshot_dir, limit, ordo_wal_io(wal), &snap);
        if (rc != 0)
            break; /* none usable: full replay */
        uint64_t pos = ordo_snapshot_position(snap);
        uint64_t orders = 0;
        report->last_timestamp_us = 0;
        int lrc = s_load_snapshot(reg, snap, head, &orders, &report->last_timestamp_us);
        if (lrc == 0) {
            report->snapshot_position = pos;
            report->snapshot_orders = orders;
            ordo_snapshot_destroy(&snap);
            break;
        }
        if (lrc == -2 && remove(ordo_snapshot_path(snap)) != 0)
            ordo_log_warn("state", "cannot delete %s: %s", ordo_snapshot_path(snap),
                          strerror(errno));
        ordo_snapshot_destroy(&snap);
        ordo_registry_clear(reg); /* unusable half-way: start over */
        if (pos == 0)
            break;
        limit = pos - 1; /* try an older one */
    }

    int rc = s_replay(reg, wal, report->snapshot_position + 1, &report->events_replayed,
                      &report->last_timestamp_us);
    if (rc == 0 && head > 0)
        rc = s_head_timestamp(wal, head, &report->last_timestamp_us);
    report->head_position = head;
    report->elapsed_us = (ordo_mono_ns() - t0) / 1000;
    return rc;
}

int ordo_state_snapshot(const ordo_registry_t *const *regs, size_t nregs, const char *snapshot_dir,
                        uint64_t position, unsigned keep, const ordo_io_t *io)
{
    ordo_snapshot_writer_t *w = NULL;
    int rc = ordo_snapshot_writer_new(snapshot_dir, position, io, &w);
    if (rc != 0)
        return rc;
    msgpack_sbuffer buf;
    msgpack_packer pk;
    msgpack_sbuffer_init(&buf);
    msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
    for (size_t r = 0; rc == 0 && r < nregs; r++) {
        size_t cursor = 0;
        const ordo_order_t *o;
        while ((o = ordo_registry_next(regs[r], &cursor)) != NULL) {
            if (o->status == ORDO_STATUS_NONE)
                continue;
            msgpack_sbuffer_clear(&buf);
            if (ordo_order_pack_snapshot(&pk, o) != 0) {
                rc = ORDO_ERR_NOMEM;
                break;
            }
            rc = ordo_snapshot_writer_add(w, buf.data, buf.size);
            if (rc != 0)
                break;
        }
    }
    msgpack_sbuffer_destroy(&buf);
    if (rc != 0) {
        ordo_snapshot_writer_abort(&w);
        return rc;
    }
    rc = ordo_snapshot_writer_commit(&w);
    if (rc == 0 && keep > 0)
        ordo_snapshot_prune(snapshot_dir, keep, io);
    return rc;
}

int ordo_state_open(const ordo_config_t *cfg, bool repair, const ordo_io_t *io, ordo_wal_t **wal,
                    ordo_registry_t **reg, ordo_state_recovery_t *report)
{
    char wal_dir[PATH_MAX + 8], snap_dir[PATH_MAX + 16];
    ordo_config_wal_dir(cfg, wal_dir, sizeof wal_dir);
    ordo_config_snapshot_dir(cfg, snap_dir, sizeof snap_dir);
    ordo_wal_options_t opts = {.dir = wal_dir,
                               .segment_bytes = cfg->segment_bytes,
                               .sync_mode = cfg->fsync_mode,
                               .sync_interval_ms = cfg->fsync_ms,
                               .repair = repair,
                               .io = io};
    ordo_wal_recovery_t wrep;
    *reg = NULL;
    int rc = ordo_wal_open(&opts, wal, &wrep);
    if (rc != 0) {
        ordo_log_error("state", "cannot open the log in %s: %s", wal_dir,
                       rc == ORDO_ERR_CORRUPT ? wrep.message : ordo_strerror(rc));
        return rc;
    }
    *reg = ordo_registry_new();
    rc = *reg ? ordo_state_recover(*reg, *wal, snap_dir, report) : ORDO_ERR_NOMEM;
    if (rc != 0) {
        ordo_log_error("state", "recovery failed: %s", ordo_strerror(rc));
        ordo_registry_destroy(reg);
        ordo_wal_destroy(wal);
        return rc;
    }
    ordo_log_info("state",
                  "recovered %zu orders in %.1f ms: snapshot at position %llu + %llu events, "
                  "head at %llu",
                  ordo_registry_count(*reg), report->elapsed_us / 1000.0,
                  (unsigned long long)report->snapshot_position,
                  (unsigned long long)report->events_replayed,
                  (unsigned long long)report->head_position);
    return 0;
}

uint64_t ordo_state_differences(const ordo_registry_t *recovered, const ordo_registry_t *replayed)
{
    uint64_t diff = 0;
    size_t cursor = 0;
    const ordo_order_t *x;
    while ((x = ordo_registry_next(recovered, &cursor)) != NULL) {
        const ordo_order_t *y =
            ordo_registry_find(replayed, (ordo_str_t){x->order_id, x->order_id_len});
        if (!y || y->version != x->version || y->status != x->status ||
            y->total_cents != x->total_cents || y->updated_at_us != x->updated_at_us ||
            y->n_items != x->n_items)
            diff++;
    }
    cursor = 0;
    while ((x = ordo_registry_next(replayed, &cursor)) != NULL)
        if (!ordo_registry_find(recovered, (ordo_str_t){x->order_id, x->order_id_len}) &&
            !ordo_status_is_final(x->status))
            diff++;
    return diff;
}
