/* The PostgreSQL batch pipe (see ordo_pgpipe.h): a thread, a batch in
 * flight, a spare one, a mutex and a condition variable. */
#include "ordo_pgpipe.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ordo_pgpipe {
    PGconn *conn;
    const char *schema;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool pending; /* `flight` waits to be applied */
    bool done;    /* `flight` was applied: rc and err hold the result */
    bool stop;
    ordo_pgbatch_t flight, spare;
    int rc;
    char err[1024];
};

static void *s_run(void *arg)
{
    ordo_pgpipe_t *p = arg;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (!p->pending && !p->stop)
            pthread_cond_wait(&p->cond, &p->lock);
        if (!p->pending)
            break;
        pthread_mutex_unlock(&p->lock);
        char err[1024] = "";
        int rc = ordo_pgbatch_apply(p->conn, p->schema, &p->flight, err, sizeof err);
        pthread_mutex_lock(&p->lock);
        p->rc = rc;
        memcpy(p->err, err, sizeof err);
        p->pending = false;
        p->done = true;
        pthread_cond_broadcast(&p->cond);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

ordo_pgpipe_t *ordo_pgpipe_new(PGconn *c, const char *schema)
{
    ordo_pgpipe_t *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->conn = c;
    p->schema = schema;
    ordo_pgbatch_init(&p->flight);
    ordo_pgbatch_init(&p->spare);
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->cond, NULL);
    if (pthread_create(&p->thread, NULL, s_run, p) != 0) {
        pthread_cond_destroy(&p->cond);
        pthread_mutex_destroy(&p->lock);
        free(p);
        return NULL;
    }
    pthread_setname_np(p->thread, "ordo-pgpipe");
    return p;
}

void ordo_pgpipe_submit(ordo_pgpipe_t *p, ordo_pgbatch_t *b)
{
    pthread_mutex_lock(&p->lock);
    /* The batch applied last becomes the spare; the spare goes back. */
    ordo_pgbatch_t applied = p->flight;
    ordo_pgbatch_clear(&applied);
    p->flight = *b;
    *b = p->spare;
    p->spare = applied;
    p->pending = true;
    p->done = false;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
}

bool ordo_pgpipe_busy(ordo_pgpipe_t *p)
{
    pthread_mutex_lock(&p->lock);
    bool busy = p->pending || p->done;
    pthread_mutex_unlock(&p->lock);
    return busy;
}

int ordo_pgpipe_wait(ordo_pgpipe_t *p, uint64_t *first, uint64_t *last, size_t *n, char *err,
                     size_t errsize)
{
    pthread_mutex_lock(&p->lock);
    if (!p->pending && !p->done) {
        pthread_mutex_unlock(&p->lock);
        return 2;
    }
    while (p->pending)
        pthread_cond_wait(&p->cond, &p->lock);
    p->done = false;
    int rc = p->rc;
    if (first)
        *first = p->flight.first;
    if (last)
        *last = p->flight.last;
    if (n)
        *n = p->flight.n;
    if (rc != 0 && err && errsize)
        snprintf(err, errsize, "%s", p->err);
    pthread_mutex_unlock(&p->lock);
    return rc;
}

void ordo_pgpipe_destroy(ordo_pgpipe_t **pp)
{
    if (!pp || !*pp)
        return;
    ordo_pgpipe_t *p = *pp;
    pthread_mutex_lock(&p->lock);
    p->stop = true;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
    pthread_join(p->thread, NULL); /* after the batch in flight, if any */
    ordo_pgbatch_free(&p->flight);
    ordo_pgbatch_free(&p->spare);
    pthread_cond_destroy(&p->cond);
    pthread_mutex_destroy(&p->lock);
    free(p);
    *pp = NULL;
}
