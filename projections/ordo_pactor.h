/* A projection actor (czmq zactor): one thread that owns one read model,
 * its database, its subscription to the engine and its checkpoint, and
 * answers the queries the front end passes it. Nothing else touches them.
 *
 * Pipe messages (front end -> actor): "JOB" + pointer to an ordo_pjob_t,
 * and czmq's "$TERM" (save, then exit). Actor -> front end: "DONE" +
 * the same pointer, once the job is answered. The front end owns every
 * job; the actor only fills in its part (`reply` for a job aimed at it,
 * its slot of `status` for a job asked of every actor) and never frees
 * one, so jobs still at an actor when it stops are freed by the front end.
 *
 * Generations: the model lives in `<name>.<gen>.db`. A Rebuild opens
 * gen+1 from position 1 beside the current one, fed by its own
 * subscription; queries are answered by the current one until the new one
 * has reached its position, then the actor switches between two queries
 * (no query sees a mix) and deletes the old file. A restart resumes either
 * from its file's checkpoint (meta `checkpoint`, committed with the model). */
#ifndef ORDO_PACTOR_H
#define ORDO_PACTOR_H

#include "ordo.h"
#include "ordo_pmetrics.h"
#include "ordo_pquery.h"

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct {
    ordo_proj_t proj;
    const char *data_dir;   /* exists */
    const char *engine;     /* the engine's request endpoint (ReadAll, Ping) */
    const char *engine_pub; /* the engine's PUB endpoint */
    const ordo_connect_options_t *engine_opts; /* CURVE towards the engine, or NULL */
    uint64_t save_every;    /* commit after this many events ... */
    int save_ms;            /* ... or this long after the first uncommitted one */
    int cache_kib;          /* SQLite page cache per database */
    ordo_pmetrics_t *metrics; /* where it publishes its figures (its slot, and saves) */
} ordo_pactor_config_t;

/* What one actor says of itself for ProjectionStatus and Ping. */
typedef struct {
    bool answered;       /* set by the actor */
    bool lagging;        /* min_position not reached within wait_ms */
    bool failed;         /* the current generation stopped on an error */
    bool rebuilding;     /* a new generation is being built */
    bool available;      /* a generation can answer queries */
    uint64_t position;   /* checkpoint of the generation answering */
    uint64_t head;       /* highest engine head this actor learned */
    uint64_t events_per_s;
    uint32_t generation; /* of the generation answering */
} ordo_pstatus_t;

typedef struct ordo_pjob {
    ordo_pquery_t q;  /* read-only for actors */
    /* a job for one actor: the whole reply body it packed (malloc'd; the
     * front end frees it) */
    uint8_t *reply;
    size_t reply_len;
    /* a job for every actor (ProjectionStatus, Ping): slot per projection */
    ordo_pstatus_t status[ORDO_PROJ_COUNT_];
    /* the front end's own */
    int pending;        /* actors yet to answer */
    void *peer;         /* the connection's ordo_peer_t (engine/ordo_peers.h), held */
    bool big;           /* admitted as a large query */
    zmsg_t *envelope;   /* owned: the frames before the body */
    uint64_t read_ns;   /* when it was read, for its latency */
    const char *error_code; /* set by the actor when `reply` is an error (static text) */
    struct ordo_pjob *prev, *next;
} ordo_pjob_t;

/* Starts the actor of cfg->proj; it opens or creates its generation and
 * starts following the engine before returning. The config's strings
 * must outlive the actor. NULL if the thread cannot start. */
zactor_t *ordo_pactor_new(const ordo_pactor_config_t *cfg);

#endif
