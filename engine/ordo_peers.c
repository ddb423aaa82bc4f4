/* Per-connection accounting of large replies (see ordo_peers.h). An entry
 * lives while the front end holds it (a request in flight) or ZeroMQ holds
 * a counted reply for it; the free callback's decrement is its last touch
 * of the entry, so the front end may free an entry it sees idle. The
 * table itself lives until the front end is done with it and ZeroMQ has
 * freed every counted reply (a client in the same context may still hold
 * some after the engine has stopped). */
#include "ordo_peers.h"

#include "ordo_hash.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define BUCKETS 1024

struct ordo_peer {
    ordo_peer_t *next;
    uint64_t hash;
    uint32_t holds;       /* requests in flight */
    uint32_t big;         /* large queries in flight */
    int64_t reserved;     /* estimated reply bytes of queries in flight (ordo_peers_reserve) */
    _Atomic int64_t held; /* bytes of counted replies ZeroMQ still holds */
    ordo_peers_t *owner;
    uint8_t id_len;
    uint8_t id[];
};

struct ordo_peers {
    ordo_peer_t *buckets[BUCKETS];
    uint32_t big;         /* large queries in flight, all peers */
    int64_t reserved;     /* reserved bytes, all peers */
    _Atomic int64_t held; /* counted bytes held, all peers */
    _Atomic int64_t refs; /* the front end's, plus one per counted reply */
};

/* Header before a counted reply's bytes, for the free callback. */
typedef struct {
    ordo_peer_t *peer;
    ordo_peers_t *peers;
    size_t len;
    uint64_t pad; /* keeps the bytes 16-aligned */
} s_counted_t;

ordo_peers_t *ordo_peers_new(void)
{
    ordo_peers_t *peers = calloc(1, sizeof(ordo_peers_t));
    if (peers)
        atomic_store(&peers->refs, 1);
    return peers;
}

/* Drops one reference; the last frees the table and its entries. */
static void s_unref(ordo_peers_t *peers)
{
    if (atomic_fetch_sub(&peers->refs, 1) != 1)
        return;
    for (size_t b = 0; b < BUCKETS; b++) {
        ordo_peer_t *p = peers->buckets[b];
        while (p) {
            ordo_peer_t *next = p->next;
            free(p);
            p = next;
        }
    }
    free(peers);
}

void ordo_peers_destroy(ordo_peers_t **peers)
{
    if (!peers || !*peers)
        return;
    s_unref(*peers);
    *peers = NULL;
}

ordo_peer_t *ordo_peers_acquire(ordo_peers_t *peers, const void *id, size_t len)
{
    if (len > 255)
        return NULL;
    uint64_t h = ordo_hash64(id, len, ordo_process_seed());
    ordo_peer_t **head = &peers->buckets[h % BUCKETS];
    for (ordo_peer_t *p = *head; p; p = p->next) {
        if (p->hash == h && p->id_len == len && memcmp(p->id, id, len) == 0) {
            p->holds++;
            return p;
        }
    }
    ordo_peer_t *p = calloc(1, sizeof *p + len);
    if (!p)
        return NULL;
    p->hash = h;
    p->id_len = (uint8_t)len;
    p->owner = peers;
    if (len)
        memcpy(p->id, id, len);
    p->holds = 1;
    p->next = *head;
    *head = p;
    return p;
}

static bool s_idle(ordo_peer_t *p)
{
    return p->holds == 0 && atomic_load(&p->held) == 0;
}

static void s_unlink(ordo_peers_t *peers, ordo_peer_t *peer)
{
    ordo_peer_t **pp = &peers->buckets[peer->hash % BUCKETS];
    while (*pp && *pp != peer)
        pp = &(*pp)->next;
    if (*pp)
        *pp = peer->next;
    free(peer);
}

void ordo_peers_release(ordo_peers_t *peers, ordo_peer_t *peer)
{
    if (!peer)
        return;
    peer->holds--;
    if (s_idle(peer))
        s_unlink(peers, peer);
}

bool ordo_peers_under_bytes(ordo_peer_t *peer)
{
    return !peer || atomic_load(&peer->held) + peer->reserved < ORDO_PEER_BYTES_MAX;
}

bool ordo_peers_reserve(ordo_peers_t *peers, ordo_peer_t *peer, int64_t estimate)
{
    if (!peer)
        return true; /* not counted (out of memory for its entry) */
    int64_t mine = atomic_load(&peer->held) + peer->reserved;
    bool idle = mine == 0;
    if (!idle && (mine + estimate > ORDO_PEER_BYTES_MAX ||
                  atomic_load(&peers->held) + peers->reserved + estimate > ORDO_PEERS_BYTES_MAX))
        return false;
    peer->reserved += estimate;
    peers->reserved += estimate;
    return true;
}

void ordo_peers_reserve_done(ordo_peers_t *peers, ordo_peer_t *peer, int64_t estimate)
{
    if (!peer)
        return;
    peer->reserved -= estimate;
    peers->reserved -= estimate;
}

bool ordo_peers_admit_big(ordo_peers_t *peers, ordo_peer_t *peer)
{
    bool idle = peer && peer->big == 0 && atomic_load(&peer->held) == 0;
    if (!idle &&
        (peers->big >= ORDO_PEERS_BIG_MAX || atomic_load(&peers->held) >= ORDO_PEERS_BYTES_MAX))
        return false;
    if (peer && (peer->big >= ORDO_PEER_BIG_MAX || !ordo_peers_under_bytes(peer)))
        return false;
    peers->big++;
    if (peer)
        peer->big++;
    return true;
}

void ordo_peers_big_done(ordo_peers_t *peers, ordo_peer_t *peer)
{
    peers->big--;
    if (peer)
        peer->big--;
}

/* ZeroMQ's I/O thread: the reply is written. */
static void s_written(void *data, void *hint)
{
    s_counted_t *c = hint;
    (void)data;
    atomic_fetch_sub(&c->peers->held, (int64_t)c->len);
    if (c->peer)
        atomic_fetch_sub(&c->peer->held, (int64_t)c->len); /* last touch of the entry */
    ordo_peers_t *peers = c->peers;
    free(c);
    s_unref(peers);
}

int ordo_peers_counted_msg(ordo_peers_t *peers, ordo_peer_t *peer, const void *bytes, size_t len,
                           zmq_msg_t *msg)
{
    s_counted_t *c = malloc(sizeof *c + len);
    if (!c)
        return -1;
    *c = (s_counted_t){.peer = peer, .peers = peers, .len = len};
    memcpy(c + 1, bytes, len);
    if (zmq_msg_init_data(msg, c + 1, len, s_written, c) != 0) {
        free(c);
        return -1;
    }
    atomic_fetch_add(&peers->refs, 1);
    atomic_fetch_add(&peers->held, (int64_t)len);
    if (peer)
        atomic_fetch_add(&peer->held, (int64_t)len);
    return 0;
}

void ordo_peers_sweep(ordo_peers_t *peers)
{
    for (size_t b = 0; b < BUCKETS; b++) {
        ordo_peer_t **pp = &peers->buckets[b];
        while (*pp) {
            ordo_peer_t *p = *pp;
            if (s_idle(p)) {
                *pp = p->next;
                free(p);
            } else {
                pp = &p->next;
            }
        }
    }
}
