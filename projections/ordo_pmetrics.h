/* ordo-projector's Prometheus metrics: what each projection actor
 * publishes of itself after each turn of its loop (position, checkpoint,
 * the engine head it learned, events applied, saves), what the front end
 * counts (queries by type, errors by code, each query's latency), and the
 * rendering of all of it for /metrics. Writers and the reader share only
 * relaxed atomics. */
#ifndef ORDO_PMETRICS_H
#define ORDO_PMETRICS_H

#include "ordo_buckets.h"
#include "ordo_metrics_text.h"
#include "ordo_pquery.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* PROJECTIONS.md's error codes, and one slot for any other. */
#define ORDO_PCODE_COUNT 7

typedef struct {
    _Atomic uint64_t applied;    /* events applied, by every generation */
    _Atomic uint64_t position;   /* of the generation answering queries */
    _Atomic uint64_t committed;  /* its checkpoint on disk */
    _Atomic uint64_t head;       /* the highest engine head it learned */
    _Atomic uint64_t generation; /* the generation answering */
    _Atomic uint64_t failed;     /* 1: it stopped on an error (a Rebuild makes a new one) */
    _Atomic uint64_t rebuilding; /* 1: a new generation is being built */
    _Atomic uint64_t saves;      /* commits of the model with its checkpoint */
} ordo_pmetrics_proj_t;

/* The PostgreSQL read models' writer (ordo_pgsink.h), when --postgres. */
typedef struct {
    bool enabled;
    _Atomic uint64_t connected;  /* 1 while it holds a connection */
    _Atomic uint64_t position;   /* the checkpoint it last committed or read */
    _Atomic uint64_t head;       /* the highest engine head it learned */
    _Atomic uint64_t applied;    /* events committed */
    _Atomic uint64_t batches;    /* transactions committed */
    _Atomic uint64_t failures;   /* batches rolled back, connections lost or refused */
    _Atomic uint64_t generation; /* of the tables readers use (1: the first build) */
    _Atomic uint64_t rebuilding; /* 1 while a rebuild builds beside them */
    _Atomic uint64_t events_per_s; /* committed, over the last second */
    ordo_buckets_t batch_ns;     /* each batch's transaction */
    ordo_buckets_t batch_events; /* events per batch */
} ordo_pmetrics_pg_t;

typedef struct {
    int64_t start_us;
    ordo_pmetrics_pg_t pg;
    ordo_pmetrics_proj_t proj[ORDO_PROJ_COUNT_];
    ordo_buckets_t save_ns; /* every projection's saves */
    _Atomic uint64_t queries[ORDO_PQ_COUNT_]; /* decoded, by type; [0]: not decoded */
    _Atomic uint64_t errors[ORDO_PCODE_COUNT]; /* error replies, by code */
    ordo_buckets_t query_ns; /* read off the socket to reply sent */
    _Atomic int64_t connections[1]; /* the ROUTER's */
} ordo_pmetrics_t;

/* Zeroes it and sets the histograms' buckets. Before any thread uses it. */
void ordo_pmetrics_init(ordo_pmetrics_t *m);

/* Counts an error reply by its code (a PROJECTIONS.md code, or other). */
void ordo_pmetrics_error(ordo_pmetrics_t *m, const char *code);

/* Renders every metric (an ordo_metrics_render_fn; ctx an ordo_pmetrics_t). */
void ordo_pmetrics_render(void *ctx, ordo_mtext_t *out);

#endif
