/* The partition map, followed from the lease bucket (see ordo_partmap.h). */
#include "ordo_partmap.h"

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

typedef struct {
    ordo_partmap_owner_t owner;
    uint64_t seen_ns; /* when its value came (monotonic); 0 = none */
} s_entry_t;

struct ordo_partmap {
    natsConnection *nc;
    jsCtx *js;
    uint32_t partitions;
    uint64_t ttl_ns;    /* the bucket's, once read (under mu) */
    pthread_mutex_t mu; /* entries, ttl_ns */
    s_entry_t *entries;
    pthread_t thread;
    bool started;
    atomic_bool stop;
};

int ordo_partmap_holder(char *buf, size_t size, const char *endpoint, const char *pub, long pid)
{
    if (strchr(endpoint, ' ') || strchr(pub, ' ') || !*endpoint ||
        strlen(endpoint) >= ORDO_PARTMAP_ENDPOINT_MAX || strlen(pub) >= ORDO_PARTMAP_ENDPOINT_MAX)
        return -1;
    int n = snprintf(buf, size, "%s %s (pid %ld)", endpoint, pub, pid);
    return n > 0 && (size_t)n < size ? 0 : -1;
}

/* Copies the word at *p (up to a space or the end) into out; -1 if empty
 * or too long. */
static int s_word(const char **p, char *out, size_t size)
{
    size_t n = strcspn(*p, " ");
    if (n == 0 || n >= size)
        return -1;
    memcpy(out, *p, n);
    out[n] = '\0';
    *p += n;
    *p += strspn(*p, " ");
    return 0;
}

int ordo_partmap_parse_holder(const char *value, ordo_partmap_owner_t *out)
{
    memset(out, 0, sizeof *out);
    const char *p = value ? value : "";
    if (s_word(&p, out->endpoint, sizeof out->endpoint) != 0 ||
        s_word(&p, out->pub, sizeof out->pub) != 0 || strncmp(p, "(pid ", 5) != 0) {
        memset(out, 0, sizeof *out);
        return -1;
    }
    return 0;
}

/* Takes one entry of the bucket: p<k> for a partition of ours. */
static void s_take(ordo_partmap_t *pm, kvEntry *e)
{
    const char *key = kvEntry_Key(e);
    char *end;
    if (!key || key[0] != 'p' || key[1] < '0' || key[1] > '9')
        return;
    unsigned long k = strtoul(key + 1, &end, 10);
    if (*end || k >= pm->partitions)
        return;
    ordo_partmap_owner_t o;
    bool put = kvEntry_Operation(e) == kvOp_Put &&
               ordo_partmap_parse_holder(kvEntry_ValueString(e), &o) == 0;
    pthread_mutex_lock(&pm->mu);
    s_entry_t *slot = &pm->entries[k];
    uint64_t rev = kvEntry_Revision(e);
    if (rev >= slot->owner.revision) { /* never back to an older value */
        if (put) {
            slot->owner = o;
            slot->seen_ns = ordo_mono_ns();
        } else {
            memset(&slot->owner, 0, sizeof slot->owner);
            slot->seen_ns = 0;
        }
        slot->owner.revision = rev;
    }
    pthread_mutex_unlock(&pm->mu);
}

/* Follows the bucket until stopped, making the watcher again when it
 * fails (the bucket not made yet, a node gone). */
static void *s_watch(void *arg)
{
    ordo_partmap_t *pm = arg;
    kvStore *kv = NULL;
    kvWatcher *w = NULL;
    int failures = 0;
    while (!atomic_load(&pm->stop)) {
        natsStatus s = NATS_OK;
        if (!kv && (s = js_KeyValue(&kv, pm->js, S_BUCKET)) == NATS_OK) {
            /* The bucket's TTL rules, whoever made it (as in ordo_lease.c). */
            kvStatus *st = NULL;
            if (kvStore_Status(&st, kv) == NATS_OK) {
                int64_t ttl = kvStatus_TTL(st);
                if (ttl >= 100000000) {
                    pthread_mutex_lock(&pm->mu);
                    pm->ttl_ns = (uint64_t)ttl;
                    pthread_mutex_unlock(&pm->mu);
                }
                kvStatus_Destroy(st);
            }
        }
        if (s == NATS_OK && !w)
            s = kvStore_WatchAll(&w, kv, NULL);
        if (s != NATS_OK) {
            if (failures++ % 50 == 0)
                ordo_log_warn("partmap", "following bucket " S_BUCKET ": %s",
                              natsStatus_GetText(s));
            if (kv && s != NATS_TIMEOUT) {
                kvStore_Destroy(kv);
                kv = NULL;
            }
            nanosleep(&(struct timespec){0, 200000000}, NULL);
            continue;
        }
        kvEntry *e = NULL;
        s = kvWatcher_Next(&e, w, 200);
        if (s == NATS_OK && e) {
            s_take(pm, e);
            kvEntry_Destroy(e);
            failures = 0;
        } else if (s != NATS_OK && s != NATS_TIMEOUT) {
            if (failures++ % 50 == 0)
                ordo_log_warn("partmap", "following bucket " S_BUCKET ": %s",
                              natsStatus_GetText(s));
            kvWatcher_Destroy(w);
            w = NULL;
            nanosleep(&(struct timespec){0, 200000000}, NULL);
        }
    }
    kvWatcher_Destroy(w);
    kvStore_Destroy(kv);
    return NULL;
}

int ordo_partmap_open(const char *servers, uint32_t partitions, int ttl_ms, ordo_partmap_t **out,
                      char *err, size_t errsize)
{
    *out = NULL;
    ordo_partmap_t *pm = calloc(1, sizeof *pm);
    if (!pm || partitions == 0 || !(pm->entries = calloc(partitions, sizeof *pm->entries))) {
        free(pm);
        snprintf(err, errsize, "partition map: out of memory");
        return -1;
    }
    pm->partitions = partitions;
    pm->ttl_ns = (uint64_t)ttl_ms * 1000000u;
    pthread_mutex_init(&pm->mu, NULL);
    atomic_init(&pm->stop, false);
    if (ordo_nats_connect(servers, "ordo-server partition map", 2000, &pm->nc, &pm->js, err,
                          errsize) != 0) {
        ordo_partmap_close(&pm);
        return -1;
    }
    if (pthread_create(&pm->thread, NULL, s_watch, pm) != 0) {
        snprintf(err, errsize, "partition map: no thread");
        ordo_partmap_close(&pm);
        return -1;
    }
    pm->started = true;
    *out = pm;
    return 0;
}

void ordo_partmap_get(ordo_partmap_t *pm, ordo_partmap_owner_t *owners)
{
    uint64_t now = ordo_mono_ns();
    pthread_mutex_lock(&pm->mu);
    for (uint32_t k = 0; k < pm->partitions; k++) {
        const s_entry_t *e = &pm->entries[k];
        owners[k] = e->owner;
        /* Renewed every third of the TTL: one not heard of for a whole
         * TTL has lapsed. */
        if (!e->seen_ns || now - e->seen_ns > pm->ttl_ns) {
            owners[k].endpoint[0] = owners[k].pub[0] = '\0';
        }
    }
    pthread_mutex_unlock(&pm->mu);
}

void ordo_partmap_close(ordo_partmap_t **p)
{
    ordo_partmap_t *pm = *p;
    if (!pm)
        return;
    *p = NULL;
    atomic_store(&pm->stop, true);
    if (pm->started)
        pthread_join(pm->thread, NULL);
    jsCtx_Destroy(pm->js);
    natsConnection_Destroy(pm->nc);
    pthread_mutex_destroy(&pm->mu);
    free(pm->entries);
    free(pm);
}
