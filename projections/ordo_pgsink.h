/* The PostgreSQL writer of ordo-projector (--postgres): an actor (czmq
 * zactor, its own thread) that follows the engine's events from the
 * checkpoint stored in PostgreSQL and writes them into the read-model
 * tables of ordo_pgschema.h in batches, one transaction each
 * (ordo_pgbatch.h), so the tables hold every event exactly once.
 *
 * It starts without PostgreSQL being up: it connects, migrates the schema,
 * reads the checkpoint and subscribes from there, and does all of that
 * again (with a growing pause, 0.1 to 5 s) whenever a connection or a
 * batch fails: what was not committed is simply read again from the
 * engine. Catching up, a batch holds up to batch_events events (or about
 * 256 MiB of memory); once caught up, a batch is committed flush_ms after
 * its first event. On $TERM it commits what it holds, then stops. */
#ifndef ORDO_PGSINK_H
#define ORDO_PGSINK_H

#include "ordo.h"
#include "ordo_pmetrics.h"

#include <czmq.h>
#include <stddef.h>

typedef struct {
    const char *conninfo;   /* libpq connection string or URI */
    const char *schema;     /* checked by ordo_pg_schema_name_ok */
    const char *engine;     /* the engine's request endpoint (ReadAll, Ping) */
    const char *engine_pub; /* its PUB endpoint */
    const ordo_connect_options_t *engine_opts; /* CURVE towards the engine, or NULL */
    size_t batch_events;    /* events per transaction while catching up */
    int flush_ms;           /* caught up: commit this long after a batch's first event */
    ordo_pmetrics_pg_t *metrics;
} ordo_pgsink_config_t;

/* Starts the actor; the config's strings must outlive it. NULL if the
 * thread cannot start. */
zactor_t *ordo_pgsink_new(const ordo_pgsink_config_t *cfg);

/* Starts a rebuild (if none is under way): the tables are built again from
 * position 1 in "<schema>_rebuild" beside the ones readers use, which are
 * kept up meanwhile; once the rebuild has reached them, it takes their
 * name in one transaction (ordo_pg_swap) and they are dropped. */
void ordo_pgsink_rebuild(zactor_t *sink);

#endif
