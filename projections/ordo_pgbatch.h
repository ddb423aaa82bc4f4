/* A batch of events for the PostgreSQL read models (ordo_pgschema.h): the
 * events as rows of COPY's text format, then one transaction that copies
 * them into a temporary table and folds them into the tables with a few
 * set-based statements (orders inserted and updated, status intervals
 * closed and opened, hourly counts added), and moves the checkpoint from
 * the batch's first position - 1 to its last. Either all of it commits or
 * none: after a crash of the projector, of PostgreSQL or of the engine,
 * the tables hold each event exactly once. The checkpoint moves only from
 * where the batch begins, so a second writer on the same schema is
 * refused rather than counted twice. */
#ifndef ORDO_PGBATCH_H
#define ORDO_PGBATCH_H

#include "ordo.h"

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    char *data; /* owned: COPY text, one line per event */
    size_t len, cap;
    size_t n;             /* events */
    uint64_t first, last; /* their positions */
    bool failed;          /* out of memory: the batch must be dropped */
} ordo_pgbatch_t;

void ordo_pgbatch_init(ordo_pgbatch_t *b);
void ordo_pgbatch_free(ordo_pgbatch_t *b);

/* Empties it, keeping its memory. */
void ordo_pgbatch_clear(ordo_pgbatch_t *b);

/* Appends an event, which must follow the last one (position + 1). 0, or
 * -1: out of memory (b->failed), or not the next position. */
int ordo_pgbatch_add(ordo_pgbatch_t *b, const ordo_client_event_t *ev);

/* Makes the session's temporary table. Once per connection. */
int ordo_pgbatch_prepare(PGconn *c, char *err, size_t errsize);

/* Applies the batch in one transaction (see above). 0; 1 if the
 * checkpoint was not at b->first - 1 (nothing changed: read it again);
 * -1 on an error (rolled back; err says why). */
int ordo_pgbatch_apply(PGconn *c, const char *schema, const ordo_pgbatch_t *b, char *err,
                       size_t errsize);

#endif
