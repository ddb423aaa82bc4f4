/* ordo-projector's metrics (see ordo_pmetrics.h). */
#include "ordo_pmetrics.h"

#include "ordo_clock.h"

#include <stddef.h>
#include <string.h>

static const char *const s_codes[ORDO_PCODE_COUNT] = {
    "bad_request", "unknown_type", "not_found", "lagging", "overloaded", "unavailable", "other"};

static uint64_t s_get(_Atomic uint64_t *v)
{
    return atomic_load_explicit(v, memory_order_relaxed);
}

void ordo_pmetrics_init(ordo_pmetrics_t *m)
{
    memset(m, 0, sizeof *m);
    m->start_us = ordo_now_us();
    ordo_buckets_init(&m->query_ns, ordo_buckets_latency_ns, ordo_buckets_latency_n);
    ordo_buckets_init(&m->save_ns, ordo_buckets_latency_ns, ordo_buckets_latency_n);
    ordo_buckets_init(&m->pg.batch_ns, ordo_buckets_latency_ns, ordo_buckets_latency_n);
    static const uint64_t events[] = {1, 10, 100, 1000, 10000, 50000, 100000, 500000};
    ordo_buckets_init(&m->pg.batch_events, events, sizeof events / sizeof *events);
}

static void s_pg(ordo_mtext_t *t, ordo_pmetrics_pg_t *pg)
{
    static const struct {
        const char *name, *type, *help;
        size_t offset;
    } rows[] = {
        {"ordo_postgres_connected", "gauge", "1 while the PostgreSQL writer holds a connection",
         offsetof(ordo_pmetrics_pg_t, connected)},
        {"ordo_postgres_position", "gauge",
         "The checkpoint of the PostgreSQL read models: the last event their tables hold",
         offsetof(ordo_pmetrics_pg_t, position)},
        {"ordo_postgres_events_applied_total", "counter", "Events committed into PostgreSQL",
         offsetof(ordo_pmetrics_pg_t, applied)},
        {"ordo_postgres_batches_total", "counter", "Transactions committed into PostgreSQL",
         offsetof(ordo_pmetrics_pg_t, batches)},
        {"ordo_postgres_failures_total", "counter",
         "Batches rolled back and connections lost or refused (each retried from the checkpoint)",
         offsetof(ordo_pmetrics_pg_t, failures)},
        {"ordo_postgres_generation", "gauge",
         "Generation of the PostgreSQL tables (1: the first build; each rebuild swapped in adds 1)",
         offsetof(ordo_pmetrics_pg_t, generation)},
        {"ordo_postgres_rebuilding", "gauge", "1 while a rebuild builds beside the tables",
         offsetof(ordo_pmetrics_pg_t, rebuilding)},
    };
    for (size_t i = 0; i < sizeof rows / sizeof *rows; i++) {
        ordo_mtext_family(t, rows[i].name, rows[i].type, rows[i].help);
        ordo_mtext_uint(t, rows[i].name, NULL, NULL,
                        s_get((_Atomic uint64_t *)((char *)pg + rows[i].offset)));
    }
    uint64_t head = s_get(&pg->head), pos = s_get(&pg->position);
    ordo_mtext_family(t, "ordo_postgres_lag_events", "gauge",
                      "Events between the engine head and the PostgreSQL checkpoint");
    ordo_mtext_uint(t, "ordo_postgres_lag_events", NULL, NULL, head > pos ? head - pos : 0);
    ordo_mtext_histogram(t, "ordo_postgres_batch_duration_seconds",
                         "Each batch's transaction: COPY, the fold, the checkpoint, COMMIT",
                         &pg->batch_ns, 1e-9);
    ordo_mtext_histogram(t, "ordo_postgres_batch_events", "Events per batch", &pg->batch_events,
                         1);
}

void ordo_pmetrics_error(ordo_pmetrics_t *m, const char *code)
{
    int i = 0;
    while (i < ORDO_PCODE_COUNT - 1 && (!code || strcmp(code, s_codes[i]) != 0))
        i++;
    atomic_fetch_add_explicit(&m->errors[i], 1, memory_order_relaxed);
}

/* One gauge or counter per projection, from the field `offset` bytes into
 * ordo_pmetrics_proj_t. */
static void s_per_projection(ordo_mtext_t *t, ordo_pmetrics_t *m, const char *name,
                             const char *type, const char *help, size_t offset)
{
    ordo_mtext_family(t, name, type, help);
    for (int p = 0; p < ORDO_PROJ_COUNT_; p++)
        ordo_mtext_uint(t, name, "projection", ordo_proj_name((ordo_proj_t)p),
                        s_get((_Atomic uint64_t *)((char *)&m->proj[p] + offset)));
}

void ordo_pmetrics_render(void *ctx, ordo_mtext_t *t)
{
    ordo_pmetrics_t *m = ctx;
    ordo_mtext_family(t, "ordo_projector_queries_total", "counter", "Queries received, by type");
    for (int q = 1; q < ORDO_PQ_COUNT_; q++)
        ordo_mtext_uint(t, "ordo_projector_queries_total", "type",
                        ordo_pq_type_name((ordo_pq_type_t)q), s_get(&m->queries[q]));
    ordo_mtext_family(t, "ordo_projector_queries_invalid_total", "counter",
                      "Queries that could not be decoded (bad_request or unknown_type)");
    ordo_mtext_uint(t, "ordo_projector_queries_invalid_total", NULL, NULL, s_get(&m->queries[0]));
    ordo_mtext_family(t, "ordo_projector_errors_total", "counter", "Error replies, by code");
    for (int c = 0; c < ORDO_PCODE_COUNT; c++)
        ordo_mtext_uint(t, "ordo_projector_errors_total", "code", s_codes[c], s_get(&m->errors[c]));

    uint64_t head = 0;
    for (int p = 0; p < ORDO_PROJ_COUNT_; p++)
        if (s_get(&m->proj[p].head) > head)
            head = s_get(&m->proj[p].head);
    ordo_mtext_family(t, "ordo_projector_engine_head_position", "gauge",
                      "The highest engine head position the projections learned");
    ordo_mtext_uint(t, "ordo_projector_engine_head_position", NULL, NULL, head);
    s_per_projection(t, m, "ordo_projection_position", "gauge",
                     "Last event applied by the generation answering queries",
                     offsetof(ordo_pmetrics_proj_t, position));
    ordo_mtext_family(t, "ordo_projection_lag_events", "gauge",
                      "Events between the engine head and the projection's position");
    for (int p = 0; p < ORDO_PROJ_COUNT_; p++) {
        uint64_t pos = s_get(&m->proj[p].position);
        ordo_mtext_uint(t, "ordo_projection_lag_events", "projection",
                        ordo_proj_name((ordo_proj_t)p), head > pos ? head - pos : 0);
    }
    s_per_projection(t, m, "ordo_projection_checkpoint_position", "gauge",
                     "Position saved with the read model (a restart resumes after it)",
                     offsetof(ordo_pmetrics_proj_t, committed));
    s_per_projection(t, m, "ordo_projection_events_applied_total", "counter",
                     "Events applied, by every generation (a rebuild applies them again)",
                     offsetof(ordo_pmetrics_proj_t, applied));
    s_per_projection(t, m, "ordo_projection_saves_total", "counter",
                     "Saves: the read model committed with its checkpoint",
                     offsetof(ordo_pmetrics_proj_t, saves));
    s_per_projection(t, m, "ordo_projection_generation", "gauge",
                     "The generation answering queries", offsetof(ordo_pmetrics_proj_t, generation));
    s_per_projection(t, m, "ordo_projection_failed", "gauge",
                     "1 when the projection stopped on an error (Rebuild makes a new generation)",
                     offsetof(ordo_pmetrics_proj_t, failed));
    s_per_projection(t, m, "ordo_projection_rebuilding", "gauge",
                     "1 while a new generation is being built",
                     offsetof(ordo_pmetrics_proj_t, rebuilding));

    ordo_mtext_family(t, "ordo_projector_connections", "gauge",
                      "Open client connections to the query socket (TCP and IPC)");
    ordo_mtext_int(t, "ordo_projector_connections", NULL, NULL,
                   atomic_load_explicit(&m->connections[0], memory_order_relaxed));
    ordo_mtext_family(t, "ordo_projector_start_time_seconds", "gauge",
                      "When the projector started, seconds since the Unix epoch");
    ordo_mtext_double(t, "ordo_projector_start_time_seconds", NULL, NULL,
                      (double)m->start_us / 1e6);
    ordo_mtext_histogram(t, "ordo_projector_query_duration_seconds",
                         "Queries, from being read off the socket to the reply sent (waits for "
                         "min_position included)",
                         &m->query_ns, 1e-9);
    ordo_mtext_histogram(t, "ordo_projection_save_duration_seconds",
                         "Each save of a read model with its checkpoint (all projections)",
                         &m->save_ns, 1e-9);
    if (m->pg.enabled)
        s_pg(t, &m->pg);
}
