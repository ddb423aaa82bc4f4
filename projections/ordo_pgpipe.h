/* Applies PostgreSQL batches (ordo_pgbatch.h) on a thread of its own, one
 * at a time, so that the next batch is folded in memory while PostgreSQL
 * applies the previous one: the two cores work at once. The pipe borrows
 * the connection; while a batch is in flight nobody else may use it. */
#ifndef ORDO_PGPIPE_H
#define ORDO_PGPIPE_H

#include "ordo_pgbatch.h"

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ordo_pgpipe ordo_pgpipe_t;

/* A pipe applying into `schema` over `c` (both must outlive it). NULL if
 * the thread cannot start. */
ordo_pgpipe_t *ordo_pgpipe_new(PGconn *c, const char *schema);

/* Hands *b over to be applied and gives back an empty batch in its place
 * (the memory of an earlier one). Only when nothing is in flight (after
 * ordo_pgpipe_wait). */
void ordo_pgpipe_submit(ordo_pgpipe_t *p, ordo_pgbatch_t *b);

/* Whether a batch is in flight. */
bool ordo_pgpipe_busy(ordo_pgpipe_t *p);

/* Waits for the batch in flight, as ordo_pgbatch_apply returns: 0 (its
 * first and last positions and size in *first, *last, *n; any may be
 * NULL), 1 (the checkpoint had moved) or -1 (err says why); 2 if nothing
 * was in flight. */
int ordo_pgpipe_wait(ordo_pgpipe_t *p, uint64_t *first, uint64_t *last, size_t *n, char *err,
                     size_t errsize);

/* Waits for what is in flight, stops the thread, frees it. Safe on NULL;
 * nulls *p. */
void ordo_pgpipe_destroy(ordo_pgpipe_t **p);

#endif
