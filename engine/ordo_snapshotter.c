/* The snapshotter's thread (see ordo_snapshotter.h). Each shard's chunks
 * come in order on its pipe, so a shard's last chunk follows all its
 * others; a chunk for a newer position than the snapshot being written
 * means that one can no longer complete, and it is dropped. */
#include "ordo_snapshotter.h"

#include "ordo_batch.h"
#include "ordo_clock.h"
#include "ordo_error.h"
#include "ordo_log.h"
#include "ordo_snapshot.h"

#include <errno.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <stdio.h>
#include <zmq.h>

typedef struct {
    ordo_snapshot_writer_t *file;
    uint64_t position;
    uint32_t parts_done;
    uint64_t orders;
    int error;
    uint64_t t0;
} s_current_t;

static void s_finish(const ordo_snapshotter_config_t *cfg, s_current_t *cur)
{
    int rc = cur->error ? cur->error : ordo_snapshot_writer_commit(&cur->file);
    ordo_snapshot_writer_abort(&cur->file); /* no-op after a commit */
    uint64_t us = (ordo_mono_ns() - cur->t0) / 1000;
    if (rc == 0) {
        ordo_snapshot_prune(cfg->dir, 2, cfg->io);
        ordo_stat_add(&cfg->stats->snapshots, 1);
        ordo_stat_set(&cfg->stats->snapshot_position, cur->position);
        ordo_stat_set(&cfg->stats->snapshot_us, us);
        ordo_log_info("snapshot", "snapshot from position %llu: %llu orders in %.1f ms",
                      (unsigned long long)cur->position, (unsigned long long)cur->orders, us / 1e3);
    } else {
        ordo_log_error("snapshot", "snapshot from position %llu failed: %s",
                       (unsigned long long)cur->position, ordo_strerror(rc));
    }
    zmq_send(cfg->done, &cur->position, sizeof cur->position, ZMQ_DONTWAIT);
}

static void s_chunk(const ordo_snapshotter_config_t *cfg, s_current_t *cur, ordo_batch_t *b)
{
    if (cur->parts_done == 0 && !cur->file && !cur->error) {
        cur->position = b->first_position;
        cur->orders = 0;
        cur->t0 = ordo_mono_ns();
        cur->error = ordo_snapshot_writer_new(cfg->dir, cur->position, cfg->io, &cur->file);
    } else if (b->first_position != cur->position) {
        ordo_log_warn("snapshot", "dropping the unfinished snapshot from position %llu",
                      (unsigned long long)cur->position);
        ordo_snapshot_writer_abort(&cur->file);
        *cur = (s_current_t){0};
        s_chunk(cfg, cur, b);
        return;
    }
    size_t off = 0;
    uint64_t tag;
    const void *rec;
    size_t len;
    while (!cur->error && ordo_batch_next_tagged(&b->buf, &off, &tag, &rec, &len)) {
        cur->error = ordo_snapshot_writer_add(cur->file, rec, len);
        cur->orders++;
    }
    if (b->error && !cur->error)
        cur->error = b->error;
    if (b->last && ++cur->parts_done == cfg->nshards) {
        s_finish(cfg, cur);
        *cur = (s_current_t){0};
    }
}

void *ordo_snapshotter_run(void *arg)
{
    const ordo_snapshotter_config_t *cfg = arg;
    pthread_setname_np(pthread_self(), "ordo-snapshot");
    /* Background work: compressing a snapshot must not take the cores the
     * shards and the writer need to answer (Linux: nice is per thread). */
    setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 10);
    s_current_t cur = {0};
    uint32_t stops = 0;
    while (stops < cfg->nshards) {
        ordo_batch_t *b = ordo_batch_recv(cfg->in, 0);
        if (!b) {
            if (zmq_errno() == EINTR)
                continue;
            ordo_log_error("snapshot", "receive: %s", zmq_strerror(zmq_errno()));
            break;
        }
        if (b->kind == ORDO_BATCH_STOP)
            stops++;
        else if (b->kind == ORDO_BATCH_SNAPSHOT)
            s_chunk(cfg, &cur, b);
        ordo_batch_free(&b);
    }
    ordo_snapshot_writer_abort(&cur.file); /* an unfinished one */
    return NULL;
}
