/* A batch of events for the PostgreSQL read models (ordo_pgschema.h).
 *
 * The batch is folded here, in memory, as events are added: per order, its
 * state after its last event in the batch (and, if its OrderCreated is in
 * the batch, the whole new row); per event, the status interval it begins
 * and where that ends if the order moves on within the batch; per hour,
 * what counts in the hourly analytics (summed by restaurant for the orders
 * created in the batch; per order for older ones, whose restaurant is in
 * the table). Applying it is one
 * transaction of a few COPYs and three set-based statements:
 *   - the checkpoint moves from the batch's first position - 1 to its last
 *     (a checkpoint elsewhere means another writer: nothing is changed);
 *   - new orders are copied in as the batch leaves them, and older ones
 *     are updated to it, each order written once;
 *   - the interval an older order was in ends where its first event in
 *     the batch begins, and every event's interval is copied in;
 *   - the hourly counts are added to.
 * Either all of it commits or none: after a crash of the projector, of
 * PostgreSQL or of the engine, the tables hold each event exactly once.
 * Memory is about 150 bytes per event and 300 per order of the batch. */
#ifndef ORDO_PGBATCH_H
#define ORDO_PGBATCH_H

#include "ordo.h"

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ordo_pgbatch_state ordo_pgbatch_state_t;

typedef struct {
    size_t n;             /* events */
    uint64_t first, last; /* their positions */
    size_t bytes;         /* memory it holds, about */
    bool failed;          /* out of memory: the batch must be dropped */
    ordo_pgbatch_state_t *st; /* owned */
} ordo_pgbatch_t;

void ordo_pgbatch_init(ordo_pgbatch_t *b);
void ordo_pgbatch_free(ordo_pgbatch_t *b);

/* Empties it, keeping its memory for the next. */
void ordo_pgbatch_clear(ordo_pgbatch_t *b);

/* Adds an event, which must follow the last one (position + 1), of a type
 * the schema knows. 0, or -1: out of memory (b->failed), not the next
 * position, or an event that cannot be folded (an unknown type, an order
 * whose OrderCreated is missing is fine: it is in the tables). */
int ordo_pgbatch_add(ordo_pgbatch_t *b, const ordo_client_event_t *ev);

/* Sets the session up (work memory, temporary tables). Once per
 * connection. */
int ordo_pgbatch_prepare(PGconn *c, char *err, size_t errsize);

/* Applies the batch in one transaction (see above). The batch is not
 * changed, but its scratch buffer for the COPY data is: one thread per
 * batch. 0; 1 if the
 * checkpoint was not at b->first - 1 (nothing changed: read it again);
 * -1 on an error (rolled back; err says why). */
int ordo_pgbatch_apply(PGconn *c, const char *schema, const ordo_pgbatch_t *b, char *err,
                       size_t errsize);

#endif
