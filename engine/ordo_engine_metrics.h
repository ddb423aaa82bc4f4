/* The engine's Prometheus metrics (ordo_engine_metrics.c): set up the
 * histograms, hook the log, render them all. ordo_engine.c uses the first
 * two; ordo_engine_metrics() in ordo_engine.h renders. */
#ifndef ORDO_ENGINE_METRICS_H
#define ORDO_ENGINE_METRICS_H

#include "ordo_metrics_text.h"
#include "ordo_stats.h"
#include "ordo_wal.h"

/* What the render needs besides the counters. */
typedef struct {
    uint64_t head, synced, frames, fsyncs, bytes, indexed;
    int64_t start_us;
} ordo_engine_metrics_src_t;

/* Sets the histograms' buckets. Once, before the threads start. */
void ordo_engine_stats_init(ordo_engine_stats_t *stats);

/* Makes the log report each fdatasync and frame into the histograms. */
void ordo_engine_stats_observe(ordo_engine_stats_t *stats, ordo_wal_t *wal);

void ordo_engine_metrics_render(ordo_engine_stats_t *stats, const ordo_engine_metrics_src_t *src,
                                ordo_mtext_t *out);

#endif
