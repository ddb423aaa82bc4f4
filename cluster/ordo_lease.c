/* Ownership of a partition as a lease in JetStream's key-value store (see
 * ordo_lease.h). */
#include "ordo_lease.h"

#include "ordo_clock.h"
#include "ordo_log.h"
#include "ordo_nats.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define S_BUCKET "ORDO_LEASES"

struct ordo_lease {
    natsConnection *nc;
    jsCtx *js;
    kvStore *kv;
    char key[16];
    char holder[512];
    int ttl_ms;   /* the bucket's (it may have been made by another engine) */
    uint64_t rev; /* of our last write; 0 = not ours (under mu) */
    pthread_mutex_t mu; /* one KV call at a time; rev */
    /* The keeper: renews from ordo_lease_keep until release or close. */
    pthread_t keeper;
    bool keeping, stop; /* under mu */
    pthread_cond_t wake;
    atomic_bool lost;
};

int ordo_lease_open(const ordo_lease_options_t *opts, ordo_lease_t **out, char *err,
                    size_t errsize)
{
    *out = NULL;
    if (opts->ttl_ms < 100 || !opts->holder || strlen(opts->holder) >= sizeof(((ordo_lease_t *)0)->holder)) {
        snprintf(err, errsize, "lease: bad options");
        return -1;
    }
    ordo_lease_t *l = calloc(1, sizeof *l);
    if (!l) {
        snprintf(err, errsize, "out of memory");
        return -1;
    }
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->wake, NULL);
    atomic_init(&l->lost, false);
    snprintf(l->key, sizeof l->key, "p%" PRIu32, opts->partition);
    snprintf(l->holder, sizeof l->holder, "%s", opts->holder);
    l->ttl_ms = opts->ttl_ms;
    if (ordo_nats_connect(opts->servers, "ordo-server lease", 2000, &l->nc, &l->js, err,
                          errsize) != 0)
        goto fail;
    /* A cluster that just started may take a while to make the bucket's
     * replicas: ask again for up to 30 s. */
    uint64_t deadline = ordo_mono_ns() + 30000000000ull;
    natsStatus s;
    for (;;) {
        s = js_KeyValue(&l->kv, l->js, S_BUCKET);
        if (s == NATS_NOT_FOUND) {
            kvConfig kc;
            kvConfig_Init(&kc);
            kc.Bucket = S_BUCKET;
            kc.History = 1;
            kc.TTL = (int64_t)opts->ttl_ms * 1000000; /* nanoseconds */
            kc.Replicas = opts->replicas;
            kc.StorageType = js_FileStorage;
            s = js_CreateKeyValue(&l->kv, l->js, &kc);
        }
        if (s == NATS_OK)
            break;
        if (ordo_mono_ns() >= deadline) {
            ordo_nats_fail(err, errsize, "the lease bucket " S_BUCKET, s, 0);
            goto fail;
        }
        nanosleep(&(struct timespec){0, 200000000}, NULL);
    }
    /* The bucket's TTL rules, whoever made it: renewals follow it. */
    kvStatus *st = NULL;
    if (kvStore_Status(&st, l->kv) == NATS_OK) {
        int64_t ttl_ms = kvStatus_TTL(st) / 1000000;
        if (ttl_ms >= 100 && ttl_ms != l->ttl_ms) {
            ordo_log_warn("lease",
                          "bucket " S_BUCKET " has a TTL of %lld ms, not the %d ms asked for: "
                          "leases lapse after %lld ms",
                          (long long)ttl_ms, l->ttl_ms, (long long)ttl_ms);
            l->ttl_ms = (int)ttl_ms;
        }
        kvStatus_Destroy(st);
    }
    *out = l;
    return 0;
fail:
    ordo_lease_close(&l);
    return -1;
}

static int s_acquire(ordo_lease_t *l, char *holder, size_t holder_size, char *err,
                     size_t errsize)
{
    uint64_t rev = 0;
    natsStatus s = kvStore_CreateString(&rev, l->kv, l->key, l->holder);
    if (s == NATS_OK) {
        l->rev = rev;
        return 0;
    }
    /* There is a value: a holder's, or an empty one (released). */
    kvEntry *e = NULL;
    s = kvStore_Get(&e, l->kv, l->key);
    if (s == NATS_NOT_FOUND) /* it lapsed in between: try again next time */
        return ordo_nats_fail(err, errsize, "taking the lease", s, 0);
    if (s != NATS_OK)
        return ordo_nats_fail(err, errsize, "reading the lease", s, 0);
    const char *v = kvEntry_ValueString(e);
    uint64_t their_rev = kvEntry_Revision(e);
    if (v && *v) {
        snprintf(holder, holder_size, "%s", v);
        kvEntry_Destroy(e);
        return 1;
    }
    kvEntry_Destroy(e);
    s = kvStore_UpdateString(&rev, l->kv, l->key, l->holder, their_rev);
    if (s != NATS_OK) /* another standby was quicker, or no answer */
        return ordo_nats_fail(err, errsize, "taking the released lease", s, 0);
    l->rev = rev;
    return 0;
}

int ordo_lease_acquire(ordo_lease_t *l, char *holder, size_t holder_size, char *err,
                       size_t errsize)
{
    pthread_mutex_lock(&l->mu);
    int rc = s_acquire(l, holder, holder_size, err, errsize);
    pthread_mutex_unlock(&l->mu);
    return rc;
}

static int s_renew(ordo_lease_t *l, char *err, size_t errsize)
{
    if (!l->rev) {
        snprintf(err, errsize, "the lease is not ours");
        return 1;
    }
    uint64_t rev = 0;
    natsStatus s = kvStore_UpdateString(&rev, l->kv, l->key, l->holder, l->rev);
    if (s == NATS_OK) {
        l->rev = rev;
        return 0;
    }
    /* Did the revision move (lapsed or taken: final), or did JetStream
     * not answer (not final: the lease lapses at its TTL all the same)? */
    char why[256];
    ordo_nats_fail(why, sizeof why, "renewing the lease", s, 0);
    kvEntry *e = NULL;
    natsStatus g = kvStore_Get(&e, l->kv, l->key);
    if (g == NATS_OK && kvEntry_Revision(e) != l->rev && kvEntry_ValueString(e) &&
        !strcmp(kvEntry_ValueString(e), l->holder)) {
        /* Our own write, whose answer was lost (the holder names this
         * process: its endpoint and pid). */
        l->rev = kvEntry_Revision(e);
        kvEntry_Destroy(e);
        return 0;
    }
    if (g == NATS_NOT_FOUND) {
        /* It lapsed while JetStream did not answer, and nobody took it:
         * take it again. (Had a standby taken it and claimed the stream,
         * the stream would refuse this engine's next frame all the same.) */
        uint64_t again = 0;
        if (kvStore_CreateString(&again, l->kv, l->key, l->holder) == NATS_OK) {
            ordo_log_warn("lease", "the lease lapsed while JetStream did not answer; nobody took "
                                   "it: taken again (revision %" PRIu64 ")",
                          again);
            l->rev = again;
            return 0;
        }
    }
    if (g == NATS_NOT_FOUND || (g == NATS_OK && kvEntry_Revision(e) != l->rev)) {
        snprintf(err, errsize, "the lease %s",
                 g == NATS_NOT_FOUND ? "lapsed" : "was taken by another engine");
        kvEntry_Destroy(e);
        l->rev = 0;
        return 1;
    }
    kvEntry_Destroy(e);
    snprintf(err, errsize, "%s", why);
    return -1;
}

/* The keeper: a renewal every third of the TTL; a renewal with no answer
 * is tried again in a twelfth (the lease lapses at the TTL all the same,
 * and a standby that takes it then fences this engine in the stream). */
static void *s_keeper(void *arg)
{
    ordo_lease_t *l = arg;
    pthread_mutex_lock(&l->mu);
    int wait_ms = l->ttl_ms / 3;
    while (!l->stop) {
        struct timespec at;
        clock_gettime(CLOCK_REALTIME, &at);
        at.tv_sec += wait_ms / 1000;
        at.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
        if (at.tv_nsec >= 1000000000L) {
            at.tv_sec++;
            at.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&l->wake, &l->mu, &at);
        if (l->stop)
            break;
        char err[600];
        int rc = s_renew(l, err, sizeof err);
        if (rc == 1) {
            ordo_log_error("lease", "%s", err);
            atomic_store(&l->lost, true);
            break;
        }
        if (rc < 0)
            ordo_log_warn("lease", "%s; trying again", err);
        wait_ms = rc == 0 ? l->ttl_ms / 3 : l->ttl_ms / 12;
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

int ordo_lease_keep(ordo_lease_t *l)
{
    pthread_mutex_lock(&l->mu);
    int rc = 0;
    if (!l->keeping) {
        l->stop = false;
        rc = pthread_create(&l->keeper, NULL, s_keeper, l) == 0 ? 0 : -1;
        l->keeping = rc == 0;
    }
    pthread_mutex_unlock(&l->mu);
    return rc;
}

bool ordo_lease_lost(const ordo_lease_t *l)
{
    return atomic_load(&l->lost);
}

static void s_stop_keeper(ordo_lease_t *l)
{
    pthread_mutex_lock(&l->mu);
    bool keeping = l->keeping;
    l->stop = true;
    l->keeping = false;
    pthread_cond_signal(&l->wake);
    pthread_mutex_unlock(&l->mu);
    if (keeping)
        pthread_join(l->keeper, NULL);
}

void ordo_lease_release(ordo_lease_t *l)
{
    if (!l)
        return;
    s_stop_keeper(l);
    pthread_mutex_lock(&l->mu);
    if (l->rev && kvStore_UpdateString(NULL, l->kv, l->key, "", l->rev) == NATS_OK)
        l->rev = 0;
    pthread_mutex_unlock(&l->mu);
}

uint64_t ordo_lease_revision(ordo_lease_t *l)
{
    pthread_mutex_lock(&l->mu);
    uint64_t rev = l->rev;
    pthread_mutex_unlock(&l->mu);
    return rev;
}

void ordo_lease_close(ordo_lease_t **lp)
{
    if (!lp || !*lp)
        return;
    ordo_lease_t *l = *lp;
    s_stop_keeper(l);
    kvStore_Destroy(l->kv);
    jsCtx_Destroy(l->js);
    natsConnection_Destroy(l->nc);
    pthread_cond_destroy(&l->wake);
    pthread_mutex_destroy(&l->mu);
    free(l);
    *lp = NULL;
}
