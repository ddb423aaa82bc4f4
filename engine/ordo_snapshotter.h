/* The snapshotter: one thread that writes periodic snapshots without
 * holding up the shards. When the writer says a snapshot is due, each
 * shard sends its orders here in chunks (packed between its requests);
 * this thread compresses and writes them into one snapshot file and,
 * once every shard has sent its last chunk, commits it (fsync, rename),
 * prunes older ones and tells the writer. */
#ifndef ORDO_SNAPSHOTTER_H
#define ORDO_SNAPSHOTTER_H

#include "ordo_io.h"
#include "ordo_stats.h"

#include <stdint.h>

typedef struct {
    const char *dir; /* snapshot folder */
    const ordo_io_t *io; /* file I/O (NULL: POSIX) */
    uint32_t nshards;
    void *in;   /* borrowed PULL socket: chunks and STOPs from the shards */
    void *done; /* borrowed PAIR socket to the writer: u64 position per snapshot */
    ordo_engine_stats_t *stats;
} ordo_snapshotter_config_t;

/* The thread body (argument: ordo_snapshotter_config_t *): runs until
 * every shard has sent STOP. */
void *ordo_snapshotter_run(void *cfg);

#endif
