/* The log writer: one thread, the log's only appender. It takes the
 * event batches the shards send, gives each event its timestamp (never
 * below the last one) and, by its place in the frame, its position; it
 * writes everything that arrived while the last fsync ran as one frame
 * (group commit, synced per --fsync), and only then builds the replies,
 * publishes the events on PUB in position order and returns each batch
 * to its shard. With a replicator, a frame counts as written once JetStream
 * has acknowledged it too (ordo_replicator.h). If the log fails, the events of that frame and every
 * later one come back failed, with `unavailable` replies. It also says
 * when a periodic snapshot is due (a SNAPSHOT message to every shard,
 * after every batch up to its position). */
#ifndef ORDO_WRITER_H
#define ORDO_WRITER_H

#include "ordo_replicator.h"
#include "ordo_stats.h"
#include "ordo_wal.h"

#include <stdint.h>

typedef struct ordo_writer ordo_writer_t;

typedef struct {
    ordo_wal_t *wal; /* borrowed; this thread appends and syncs */
    void **shards;   /* borrowed PAIR sockets, one per shard */
    uint32_t nshards;
    void *pub;               /* borrowed PUB socket */
    void *snapshot_done;     /* borrowed PAIR: the snapshotter reports a finished snapshot */
    uint64_t snapshot_every; /* events between snapshots; 0 = none while running */
    int64_t clock_floor_us;  /* the latest timestamp in the log */
    ordo_engine_stats_t *stats;
    /* --fsync replicated: each frame also goes to the partition's stream,
     * and is released to readers and acknowledged once JetStream has it
     * (borrowed; NULL = no replication). */
    ordo_replicator_t *replicator;
    size_t frame_bytes_max; /* record bytes per frame; 0 = ORDO_FRAME_BYTES_MAX */
} ordo_writer_config_t;

/* NULL if out of memory. */
ordo_writer_t *ordo_writer_new(const ordo_writer_config_t *cfg);

/* The thread body: runs until every shard has passed on its STOP, then
 * syncs the log and returns. */
void *ordo_writer_run(void *writer);

void ordo_writer_destroy(ordo_writer_t **writer);

#endif
