/* The engine's Prometheus metrics: the histograms' buckets, the log's
 * observer that fills two of them, and the rendering of every counter,
 * gauge and histogram the engine keeps (ordo_stats.h) for /metrics.
 * Rendering only reads atomics, on the metrics server's thread. */
#include "ordo_engine_metrics.h"

#include "ordo_order.h"

#include <stddef.h>
#include <stdio.h>

void ordo_engine_stats_init(ordo_engine_stats_t *st)
{
    ordo_buckets_init(&st->front.command_ns, ordo_buckets_latency_ns, ordo_buckets_latency_n);
    ordo_buckets_init(&st->front.query_ns, ordo_buckets_latency_ns, ordo_buckets_latency_n);
    ordo_buckets_init(&st->fsync_ns, ordo_buckets_latency_ns, ordo_buckets_latency_n);
    ordo_buckets_init(&st->frame_bytes, ordo_buckets_bytes, ordo_buckets_bytes_n);
    static const uint64_t events[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096};
    ordo_buckets_init(&st->frame_events, events, sizeof events / sizeof *events);
}

static void s_synced(void *ctx, uint64_t ns)
{
    ordo_engine_stats_t *st = ctx;
    ordo_buckets_observe(&st->fsync_ns, ns);
}

static void s_framed(void *ctx, size_t bytes, size_t events)
{
    ordo_engine_stats_t *st = ctx;
    ordo_buckets_observe(&st->frame_bytes, bytes);
    ordo_buckets_observe(&st->frame_events, events);
}

void ordo_engine_stats_observe(ordo_engine_stats_t *st, ordo_wal_t *wal)
{
    ordo_wal_observe(wal, &(ordo_wal_observer_t){.ctx = st, .synced = s_synced, .framed = s_framed});
}

/* Sums one counter over the shards and the reader: the one `offset`
 * bytes into ordo_shard_stats_t. */
static uint64_t s_sum(ordo_engine_stats_t *st, size_t offset)
{
    uint64_t sum = ordo_stat_get((_Atomic uint64_t *)((char *)&st->reader + offset));
    for (uint32_t i = 0; i < st->shards; i++)
        sum += ordo_stat_get((_Atomic uint64_t *)((char *)&st->shard[i] + offset));
    return sum;
}

#define S_SUM(st, field) s_sum((st), offsetof(ordo_shard_stats_t, field))
#define S_SUM_AT(st, array, i)                                                                     \
    s_sum((st), offsetof(ordo_shard_stats_t, array) + (size_t)(i) * sizeof(_Atomic uint64_t))

static void s_counter(ordo_mtext_t *t, const char *name, const char *help, uint64_t v)
{
    ordo_mtext_family(t, name, "counter", help);
    ordo_mtext_uint(t, name, NULL, NULL, v);
}

static void s_gauge(ordo_mtext_t *t, const char *name, const char *help, int64_t v)
{
    ordo_mtext_family(t, name, "gauge", help);
    ordo_mtext_int(t, name, NULL, NULL, v);
}

void ordo_engine_metrics_render(ordo_engine_stats_t *st, const ordo_engine_metrics_src_t *src,
                                ordo_mtext_t *t)
{
    /* Requests by type: commands, then queries; and those not decoded. */
    for (int pass = 0; pass < 2; pass++) {
        const char *name = pass == 0 ? "ordo_commands_total" : "ordo_queries_total";
        ordo_mtext_family(t, name, "counter",
                          pass == 0 ? "Commands received, by type (refused ones included)"
                                    : "Queries received, by type");
        for (int type = 1; type < ORDO_REQ_COUNT_; type++) {
            if (ordo_request_is_command((ordo_request_type_t)type) != (pass == 0))
                continue;
            ordo_mtext_uint(t, name, "type", ordo_request_type_name((ordo_request_type_t)type),
                            S_SUM_AT(st, by_type, type) +
                                ordo_stat_get(&st->front.by_type[type]));
        }
    }
    s_counter(t, "ordo_requests_invalid_total",
              "Requests that could not be decoded (answered bad_request or unknown_type)",
              S_SUM_AT(st, by_type, ORDO_REQ_NONE) + ordo_stat_get(&st->front.invalid));
    ordo_mtext_family(t, "ordo_errors_total", "counter", "Error replies, by code");
    for (int code = 1; code < ORDO_CODE_COUNT_; code++)
        ordo_mtext_uint(t, "ordo_errors_total", "code", ordo_code_name((ordo_code_t)code),
                        S_SUM_AT(st, by_code, code) + ordo_stat_get(&st->front.by_code[code]));
    s_counter(t, "ordo_duplicates_total",
              "Commands recognised as retries (request_id seen): answered with the original reply",
              S_SUM(st, duplicates));
    s_counter(t, "ordo_requests_deferred_total",
              "Requests that waited for an event of their order in flight", S_SUM(st, deferred));
    s_counter(t, "ordo_messages_dropped_total",
              "Messages dropped unanswered for their envelope (too many or too large frames)",
              ordo_stat_get(&st->front.dropped));

    s_counter(t, "ordo_events_appended_total", "Events appended to the log",
              ordo_stat_get(&st->events_appended));
    s_counter(t, "ordo_log_frames_total", "Frames (group commits) written to the log",
              src->frames);
    s_counter(t, "ordo_fsyncs_total", "fdatasync calls on the log", src->fsyncs);
    s_counter(t, "ordo_log_bytes_written_total", "Bytes written to the log (compressed frames)",
              src->bytes);
    s_gauge(t, "ordo_log_failed", "1 once the log could not be written (commands get unavailable)",
            (int64_t)ordo_stat_get(&st->log_failed));
    s_gauge(t, "ordo_head_position", "Position of the last event in the log",
            (int64_t)src->head);
    s_gauge(t, "ordo_synced_position", "Position of the last event known to be on disk",
            (int64_t)src->synced);

    s_counter(t, "ordo_snapshots_total", "Snapshots written", ordo_stat_get(&st->snapshots));
    s_gauge(t, "ordo_snapshot_position", "Position the newest snapshot covers",
            (int64_t)ordo_stat_get(&st->snapshot_position));
    ordo_mtext_family(t, "ordo_snapshot_duration_seconds", "gauge",
                      "How long the newest snapshot took to write");
    ordo_mtext_double(t, "ordo_snapshot_duration_seconds", NULL, NULL,
                      (double)ordo_stat_get(&st->snapshot_us) / 1e6);

    s_gauge(t, "ordo_orders_in_memory", "Orders held in memory by the shards",
            (int64_t)S_SUM(st, orders));
    uint64_t known = 0;
    for (uint32_t i = 0; i < st->shards; i++)
        known += ordo_stat_get(&st->shard[i].known);
    s_gauge(t, "ordo_orders_known", "Orders the engine knows, in memory or in the order index",
            (int64_t)known);
    s_gauge(t, "ordo_orders_indexed", "Orders in the order index on disk", (int64_t)src->indexed);
    s_counter(t, "ordo_orders_loaded_total", "Orders loaded back from the order index",
              S_SUM(st, loaded));
    s_counter(t, "ordo_orders_evicted_total", "Finished orders that left memory",
              S_SUM(st, evicted));
    s_gauge(t, "ordo_shards", "Shard threads", (int64_t)st->shards);

    ordo_mtext_family(t, "ordo_connections", "gauge",
                      "Open client connections (TCP and IPC), by socket");
    ordo_mtext_int(t, "ordo_connections", "socket", "requests",
                   atomic_load_explicit(&st->connections[0], memory_order_relaxed));
    ordo_mtext_int(t, "ordo_connections", "socket", "events",
                   atomic_load_explicit(&st->connections[1], memory_order_relaxed));
    ordo_mtext_family(t, "ordo_start_time_seconds", "gauge",
                      "When the engine started, seconds since the Unix epoch");
    ordo_mtext_double(t, "ordo_start_time_seconds", NULL, NULL, (double)src->start_us / 1e6);

    ordo_mtext_histogram(t, "ordo_command_duration_seconds",
                         "Commands, from being read off the socket to the reply handed back (the "
                         "event durable per the fsync mode)",
                         &st->front.command_ns, 1e-9);
    ordo_mtext_histogram(t, "ordo_query_duration_seconds",
                         "Queries, from being read off the socket to the reply handed back",
                         &st->front.query_ns, 1e-9);
    ordo_mtext_histogram(t, "ordo_fsync_duration_seconds", "Each fdatasync of the log",
                         &st->fsync_ns, 1e-9);
    ordo_mtext_histogram(t, "ordo_frame_size_bytes", "Each frame written to the log, compressed",
                         &st->frame_bytes, 1);
    ordo_mtext_histogram(t, "ordo_frame_events", "Events per frame (the group commit's size)",
                         &st->frame_events, 1);
}
