/* Single-threaded command execution with group commit (see ordo_local.h). */
#include "ordo_local.h"

#include "ordo_clock.h"
#include "ordo_codec.h"
#include "ordo_error.h"
#include "ordo_uuid.h"

#include <stdlib.h>
#include <string.h>

struct ordo_local {
    ordo_registry_t *reg; /* borrowed */
    ordo_wal_t *wal;      /* borrowed */
    uint32_t batch_max;
    uint32_t queued;
    size_t *ends;         /* owned: end offset of each queued record in buf */
    int failed;           /* first log error; sticky */
    ordo_wal_rec_t *recs; /* owned: scratch for the append */
    msgpack_sbuffer buf;  /* owned: the queued records, back to back */
    msgpack_packer pk;
    ordo_event_t *ev; /* owned: scratch event (large) */
    int64_t last_ts;
    uint64_t events;
};

ordo_local_t *ordo_local_new(ordo_registry_t *reg, ordo_wal_t *wal, uint32_t batch_max)
{
    ordo_local_t *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->reg = reg;
    l->wal = wal;
    l->batch_max = batch_max ? batch_max : 1;
    l->ends = calloc(l->batch_max, sizeof *l->ends);
    l->recs = calloc(l->batch_max, sizeof *l->recs);
    l->ev = malloc(sizeof *l->ev);
    msgpack_sbuffer_init(&l->buf);
    msgpack_packer_init(&l->pk, &l->buf, msgpack_sbuffer_write);
    if (!l->ends || !l->recs || !l->ev)
        ordo_local_destroy(&l);
    return l;
}

void ordo_local_destroy(ordo_local_t **local)
{
    if (!local || !*local)
        return;
    ordo_local_t *l = *local;
    free(l->ends);
    free(l->recs);
    free(l->ev);
    msgpack_sbuffer_destroy(&l->buf);
    free(l);
    *local = NULL;
}

uint64_t ordo_local_events(const ordo_local_t *local)
{
    return local->events;
}

const ordo_event_t *ordo_local_last_event(const ordo_local_t *local)
{
    return local->ev;
}

int ordo_local_failed(const ordo_local_t *local)
{
    return local->failed;
}

uint32_t ordo_local_queued(const ordo_local_t *local)
{
    return local->queued;
}

void ordo_local_set_clock_floor(ordo_local_t *local, int64_t timestamp_us)
{
    if (timestamp_us > local->last_ts)
        local->last_ts = timestamp_us;
}

int ordo_local_flush(ordo_local_t *l)
{
    if (l->failed)
        return l->failed;
    if (l->queued == 0)
        return 0;
    size_t start = 0;
    for (uint32_t i = 0; i < l->queued; i++) {
        l->recs[i] = (ordo_wal_rec_t){l->buf.data + start, l->ends[i] - start};
        start = l->ends[i];
    }
    uint64_t first, expected = ordo_wal_head(l->wal) + 1;
    int rc = ordo_wal_append(l->wal, l->recs, l->queued, &first);
    if (rc == 0 && first != expected)
        rc = ORDO_ERR_CORRUPT; /* someone else appended: positions given out are wrong */
    if (rc == 0)
        l->events += l->queued;
    else
        l->failed = rc;
    l->queued = 0;
    msgpack_sbuffer_clear(&l->buf);
    return rc;
}

ordo_decision_t ordo_local_submit(ordo_local_t *l, const ordo_request_t *cmd, ordo_error_t *err)
{
    bool full = l->queued == l->batch_max || l->buf.size > ORDO_WAL_FRAME_RAW_MAX / 2;
    if ((full && ordo_local_flush(l) != 0) || l->failed) {
        ordo_error_set(err, ORDO_CODE_UNAVAILABLE, "the log cannot be written: %s",
                       ordo_strerror(l->failed));
        return ORDO_DECIDE_ERROR;
    }
    ordo_order_t *order = ordo_registry_get_or_add(l->reg, cmd->order_id);
    if (!order) {
        ordo_error_set(err, ORDO_CODE_UNAVAILABLE, "out of memory");
        return ORDO_DECIDE_ERROR;
    }
    uint32_t dup;
    ordo_decision_t d = ordo_decide(order, cmd, l->ev, &dup, err);
    if (d != ORDO_DECIDE_EVENT) {
        if (order->status == ORDO_STATUS_NONE)
            ordo_registry_remove(l->reg, cmd->order_id); /* refused create leaves nothing */
        return d;
    }
    int64_t now = ordo_now_us();
    l->last_ts = now > l->last_ts ? now : l->last_ts;
    l->ev->timestamp_us = l->last_ts;
    /* This thread is the log's only writer, so the position is known now. */
    l->ev->position = ordo_wal_head(l->wal) + l->queued + 1;
    ordo_event_id(l->ev->order_id.ptr, l->ev->order_id.len, l->ev->version, l->last_ts,
                  l->ev->event_id);
    if (ordo_event_pack_record(&l->pk, l->ev) != 0 || ordo_apply(order, l->ev) != 0) {
        ordo_error_set(err, ORDO_CODE_UNAVAILABLE, "out of memory");
        l->failed = ORDO_ERR_NOMEM;
        return ORDO_DECIDE_ERROR;
    }
    l->ends[l->queued++] = l->buf.size;
    return ORDO_DECIDE_EVENT;
}
