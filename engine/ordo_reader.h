/* The reader: one thread that answers ReadAll, so that reading and packing
 * pages of up to 10,000 events never holds up a shard's commands. The
 * front end sends it ReadAll requests (tagged, with the refusal it must
 * give, if any) on its pipe, as it sends a shard its requests, and gets
 * the replies back the same way; STOP comes back as its last word. */
#ifndef ORDO_READER_H
#define ORDO_READER_H

#include "ordo_stats.h"
#include "ordo_wal.h"

typedef struct {
    ordo_wal_t *wal; /* borrowed: reads only */
    void *pipe;      /* borrowed PAIR socket to the front end */
    ordo_shard_stats_t *stats; /* its counters (requests, queries, errors) */
} ordo_reader_config_t;

/* The thread body (argument: ordo_reader_config_t *): runs until STOP. */
void *ordo_reader_run(void *cfg);

#endif
