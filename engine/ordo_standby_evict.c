/* A standby's finished orders leaving memory for the order index (see
 * ordo_standby_evict.h). */
#include "ordo_standby_evict.h"

#include "ordo_clock.h"
#include "ordo_error.h"
#include "ordo_limits.h"
#include "ordo_log.h"

#include <limits.h>
#include <stdlib.h>

typedef struct {
    ordo_order_t *order;
    int64_t due_us;
} s_leaving_t;

struct ordo_standby_evict {
    ordo_index_t *index;
    ordo_wal_t *wal;
    ordo_registry_t *orders;
    uint32_t shards;  /* the engine's: the filters are per shard */
    int64_t retain_us;
    s_leaving_t *ring; /* oldest due first: events come in time order */
    size_t head, count, cap;
    uint64_t last_run_ns, evicted;
    bool failed;
};

static int s_push(ordo_standby_evict_t *ev, ordo_order_t *o, int64_t due_us)
{
    if (ev->count == ev->cap) {
        size_t cap = ev->cap ? ev->cap * 2 : 4096;
        s_leaving_t *ring = malloc(cap * sizeof *ring);
        if (!ring)
            return ORDO_ERR_NOMEM;
        for (size_t i = 0; i < ev->count; i++)
            ring[i] = ev->ring[(ev->head + i) % ev->cap];
        free(ev->ring);
        ev->ring = ring;
        ev->head = 0;
        ev->cap = cap;
    }
    ev->ring[(ev->head + ev->count++) % ev->cap] = (s_leaving_t){o, due_us};
    return 0;
}

static int s_by_due(const void *a, const void *b)
{
    int64_t x = ((const s_leaving_t *)a)->due_us, y = ((const s_leaving_t *)b)->due_us;
    return (x > y) - (x < y);
}

int ordo_standby_evict_open(const ordo_config_t *cfg, ordo_wal_t *wal, ordo_registry_t *orders,
                            ordo_standby_evict_t **out)
{
    *out = NULL;
    ordo_standby_evict_t *ev = calloc(1, sizeof *ev);
    if (!ev) {
        ordo_log_error("standby", "out of memory at start");
        return -1;
    }
    ev->wal = wal;
    ev->orders = orders;
    ev->shards = ordo_config_shard_count(cfg);
    ev->retain_us = (int64_t)cfg->retain_finished_s * 1000000;
    char dir[PATH_MAX + 16];
    ordo_config_index_dir(cfg, dir, sizeof dir);
    if (ordo_index_open(dir, ev->shards, cfg->fsync_mode != ORDO_SYNC_NEVER, ordo_wal_head(wal),
                        &ev->index) != 0) {
        free(ev);
        return -1; /* the log line says why */
    }
    /* The recovered finished orders, sorted by when they are due (the
     * index may hold some already: writing them again changes nothing). */
    size_t cursor = 0;
    ordo_order_t *o;
    while ((o = ordo_registry_next(orders, &cursor)) != NULL)
        if (ordo_status_is_final(o->status) &&
            s_push(ev, o, o->updated_at_us + ev->retain_us) != 0) {
            ordo_log_error("standby", "out of memory at start");
            ordo_standby_evict_close(&ev);
            return -1;
        }
    if (ev->count > 1)
        qsort(ev->ring, ev->count, sizeof *ev->ring, s_by_due);
    *out = ev;
    return 0;
}

int ordo_standby_evict_note(ordo_standby_evict_t *ev, ordo_order_t *o)
{
    if (!ev || ev->failed || !o || !ordo_status_is_final(o->status))
        return 0; /* after a failure nothing leaves: queue nothing more */
    return s_push(ev, o, o->updated_at_us + ev->retain_us);
}

void ordo_standby_evict_run(ordo_standby_evict_t *ev)
{
    if (!ev || ev->failed || ev->count == 0 ||
        ordo_mono_ns() - ev->last_run_ns < (uint64_t)ORDO_EVICT_EVERY_MS * 1000000u)
        return;
    ev->last_run_ns = ordo_mono_ns();
    /* Only orders whose events are all synced: an index entry must never
     * name a position the log may lose (the index is synced). */
    int64_t now = ordo_now_us();
    uint64_t synced = ordo_wal_synced_head(ev->wal);
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    size_t n = 0;
    int rc = 0;
    while (rc == 0 && n < ev->count && n < ORDO_EVICT_MAX) {
        const s_leaving_t *l = &ev->ring[(ev->head + n) % ev->cap];
        if (l->due_us > now || l->order->positions[l->order->version - 1] > synced)
            break;
        if ((rc = ordo_index_pack(&buf, l->order) == 0 ? 0 : ORDO_ERR_NOMEM) == 0)
            n++;
    }
    if (rc == 0 && n > 0)
        rc = ordo_index_write(ev->index, buf.data, buf.size, (uint32_t)n);
    msgpack_sbuffer_destroy(&buf);
    if (rc == ORDO_ERR_NOMEM)
        return; /* they stay, and go next time */
    if (rc != 0) {
        ev->failed = true;
        ordo_log_error("standby",
                       "the order index cannot be written (%s); finished orders stay in memory",
                       ordo_strerror(rc));
        return;
    }
    /* Each in its shard's filter (the engine's) before it leaves memory. */
    for (size_t i = 0; i < n; i++) {
        ordo_order_t *o = ev->ring[ev->head].order;
        ev->head = (ev->head + 1) % ev->cap;
        ev->count--;
        uint64_t hash = ordo_order_id_hash(o->order_id, o->order_id_len);
        ordo_index_note(ev->index, (uint32_t)ordo_shard_of(hash, ev->shards), hash);
        ordo_registry_remove(ev->orders, (ordo_str_t){o->order_id, o->order_id_len});
    }
    if (n == 0)
        return;
    ev->evicted += n;
    ordo_index_unmap_pages(ev->index);
}

uint64_t ordo_standby_evict_count(const ordo_standby_evict_t *ev)
{
    return ev ? ev->evicted : 0;
}

ordo_index_t *ordo_standby_evict_finish(ordo_standby_evict_t **evp)
{
    if (!evp || !*evp)
        return NULL;
    ordo_index_t *ix = (*evp)->index;
    free((*evp)->ring);
    free(*evp);
    *evp = NULL;
    return ix;
}

void ordo_standby_evict_close(ordo_standby_evict_t **evp)
{
    ordo_index_t *ix = ordo_standby_evict_finish(evp);
    ordo_index_destroy(&ix);
}
