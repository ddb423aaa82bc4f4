/* The engine's counters for the Stats query. Each thread adds to its own
 * counters only; any thread may read them all (relaxed atomics: monitoring
 * figures, not state anything decides on). Besides these, the threads
 * share only the log's atomic head and, between the front end and
 * ZeroMQ's I/O thread, the reply byte counts of ordo_peers.c. */
#ifndef ORDO_STATS_H
#define ORDO_STATS_H

#include <stdatomic.h>
#include <stdint.h>

#include "ordo_buckets.h"
#include "ordo_limits.h" /* ORDO_SHARDS_MAX */
#include "ordo_order.h"  /* ORDO_REQ_COUNT_, ORDO_CODE_COUNT_ */

typedef struct {
    _Atomic uint64_t requests, commands, queries, errors, duplicates, deferred;
    _Atomic uint64_t orders;  /* gauge: orders the shard holds in memory */
    _Atomic uint64_t indexed; /* gauge: of those, how many the order index holds too */
    _Atomic uint64_t known;   /* gauge: orders it knows, in memory or in the index */
    _Atomic uint64_t loaded;  /* orders loaded back from the index */
    _Atomic uint64_t evicted; /* finished orders that left memory */
    _Atomic uint64_t by_type[ORDO_REQ_COUNT_]; /* requests decoded, by type ([0]: undecodable) */
    _Atomic uint64_t by_code[ORDO_CODE_COUNT_]; /* error replies, by code */
} ordo_shard_stats_t;

/* The front end's: what it answers itself, and how long each request
 * took from being read off the ROUTER to its reply being handed back. */
typedef struct {
    _Atomic uint64_t by_code[ORDO_CODE_COUNT_]; /* error replies made here */
    _Atomic uint64_t dropped;                   /* messages dropped for their envelope */
    _Atomic uint64_t invalid;                   /* bodies too large to decode (bad_request) */
    /* Requests answered here, by type: Partitions, and any request on
     * another partition's order (wrong_partition). */
    _Atomic uint64_t by_type[ORDO_REQ_COUNT_];
    ordo_buckets_t command_ns, query_ns;
} ordo_front_stats_t;


typedef struct {
    uint32_t shards;
    ordo_shard_stats_t shard[ORDO_SHARDS_MAX];
    ordo_shard_stats_t reader; /* the reader thread's (ReadAll) */
    _Atomic uint64_t events_appended, batches, log_failed;
    _Atomic uint64_t snapshots, snapshot_position, snapshot_us;
    ordo_front_stats_t front;
    ordo_buckets_t fsync_ns;     /* the log writer's: each fdatasync */
    ordo_buckets_t frame_bytes;  /* each frame appended, compressed */
    ordo_buckets_t frame_events; /* events per frame (group commit) */
    _Atomic int64_t connections[2]; /* gauge: TCP/IPC peers of the ROUTER, of the PUB */
} ordo_engine_stats_t;

static inline void ordo_stat_add(_Atomic uint64_t *c, uint64_t n)
{
    atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

static inline void ordo_stat_set(_Atomic uint64_t *c, uint64_t v)
{
    atomic_store_explicit(c, v, memory_order_relaxed);
}

static inline uint64_t ordo_stat_get(_Atomic uint64_t *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

#endif
