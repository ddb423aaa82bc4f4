/* A read model: the table of functions a projection actor drives. The
 * actor owns the database and its transaction, the subscription and the
 * checkpoint; the model owns its tables in that database and whatever it
 * keeps in memory to apply events fast.
 *
 * Contract:
 *   - apply() is called once per event, in position order, each position
 *     exactly once (the actor filters duplicates and fills gaps). It may
 *     only change memory and mark it dirty, or write to the database.
 *   - flush() writes every pending change into the database, inside the
 *     actor's open transaction, and drops from memory what need not stay
 *     there (finished orders). The actor calls it before every query and
 *     before every commit, so a query always sees every applied event and a
 *     commit saves the model with the checkpoint of the last applied event.
 *   - query() reads only the database (flush() came first), packs the
 *     reply's own keys and returns how many, or -1 with *err set.
 *   - Memory held between calls is bounded by live orders (not finished
 *     ones) and by fixed-size buffers; a query allocates at most one page.
 *   - query_indexes are the indexes only queries read. open() does not
 *     create them and apply(), flush() and open() work without them (a
 *     plan without an index is a scan, never an error). The actor creates
 *     them (ordo_model_build_indexes) before the first query a generation
 *     answers; one building from position 1 goes without them until it has
 *     caught up, because one CREATE INDEX over the rows in place costs far
 *     less than keeping the index in order through millions of inserts. */
#ifndef ORDO_MODEL_H
#define ORDO_MODEL_H

#include "ordo.h"
#include "ordo_order.h"
#include "ordo_pquery.h"

#include <msgpack.h>
#include <sqlite3.h>

typedef struct {
    const char *name; /* the projection's name, e.g. "summary" */
    /* Creates the model's tables in db if they are missing and loads the
     * state it keeps in memory. Returns the model's state, or NULL (logged). */
    void *(*open)(sqlite3 *db);
    /* Frees the state (finalizing its statements); nulls *state. */
    void (*close)(void **state);
    /* Applies one event. 0, or -1 (logged): the generation then fails. */
    int (*apply)(void *state, const ordo_client_event_t *ev);
    /* Writes pending changes into the database. 0 or -1 (logged). */
    int (*flush)(void *state);
    /* Answers a query of a type this model serves: packs its keys into pk
     * and returns their number, or -1 with *err (not_found, bad_request,
     * unavailable on a database error). */
    int (*query)(void *state, const ordo_pquery_t *q, msgpack_packer *pk, ordo_perror_t *err);
    /* CREATE INDEX IF NOT EXISTS statements, NULL-terminated; NULL: none. */
    const char *const *query_indexes;
} ordo_model_ops_t;

extern const ordo_model_ops_t ordo_model_summary;
extern const ordo_model_ops_t ordo_model_restaurant;
extern const ordo_model_ops_t ordo_model_user;
extern const ordo_model_ops_t ordo_model_analytics;
extern const ordo_model_ops_t ordo_model_timeline;

/* The model of each ordo_proj_t. */
const ordo_model_ops_t *ordo_model_for(ordo_proj_t p);

/* Creates the model's query indexes in db (those missing). 0 or -1 (logged). */
int ordo_model_build_indexes(const ordo_model_ops_t *m, sqlite3 *db);

/* The event's type and the status it leaves the order in (ORDO_EVT_NONE /
 * ORDO_STATUS_NONE for a type this version does not know). */
ordo_event_type_t ordo_model_event_type(const ordo_client_event_t *ev);

#endif
