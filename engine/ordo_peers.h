/* What each client connection (a ROUTER peer) holds of its server's
 * memory through replies: how many bytes of replies ZeroMQ still holds
 * for it (counted until ZeroMQ has written them to the socket), and
 * either how many bytes its large queries in flight may take (the
 * engine: ReadAll pages, by an estimate per event) or how many large
 * queries it has in flight (the projector). The front end admits such a
 * query only while these stay under a bound, per peer and in all, and
 * refuses the rest with `overloaded`; so a client that pipelines requests
 * faster than it reads the replies cannot make the server's memory grow
 * without bound. Front-end thread only, except the byte counts, which
 * ZeroMQ's I/O thread lowers. */
#ifndef ORDO_PEERS_H
#define ORDO_PEERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

#include "ordo_limits.h" /* ORDO_PEER(S)_*: the bounds below */

typedef struct ordo_peers ordo_peers_t;
typedef struct ordo_peer ordo_peer_t;

ordo_peers_t *ordo_peers_new(void);

/* Lets go of the table: it and its entries are freed once ZeroMQ has
 * freed every counted reply too (at once if none is left). */
void ordo_peers_destroy(ordo_peers_t **peers);

/* The peer with this routing id, found or added, held until
 * ordo_peers_release. NULL if out of memory (the request is then not
 * counted). */
ordo_peer_t *ordo_peers_acquire(ordo_peers_t *peers, const void *id, size_t len);
void ordo_peers_release(ordo_peers_t *peers, ordo_peer_t *peer);

/* Whether a large query from `peer` may go ahead now; if so it counts
 * until ordo_peers_big_done. A peer with nothing in flight and nothing
 * held is let through whatever the totals (PROTOCOL: a client with one
 * request in flight never gets `overloaded`). */
bool ordo_peers_admit_big(ordo_peers_t *peers, ordo_peer_t *peer);
void ordo_peers_big_done(ordo_peers_t *peers, ordo_peer_t *peer);

/* Whether `peer` holds less than its bound of reply bytes (replies not
 * yet written, plus reservations). */
bool ordo_peers_under_bytes(ordo_peer_t *peer);

/* Whether a query whose reply may take about `estimate` bytes (a ReadAll
 * page) may go ahead from `peer` now: while what the connection holds
 * (replies not yet written, plus the reservations of such queries in
 * flight) stays within ORDO_PEER_BYTES_MAX with it, and all connections'
 * within ORDO_PEERS_BYTES_MAX. A peer holding nothing is let through
 * whatever the totals. If so, the estimate counts until
 * ordo_peers_reserve_done. NULL peer: always, uncounted. */
bool ordo_peers_reserve(ordo_peers_t *peers, ordo_peer_t *peer, int64_t estimate);
void ordo_peers_reserve_done(ordo_peers_t *peers, ordo_peer_t *peer, int64_t estimate);

/* Makes *msg a copy of `bytes` that counts against `peer` (may be NULL)
 * until ZeroMQ has written it, or the message is closed unsent. 0, or -1
 * when out of memory (nothing counted, *msg untouched). */
int ordo_peers_counted_msg(ordo_peers_t *peers, ordo_peer_t *peer, const void *bytes, size_t len,
                           zmq_msg_t *msg);

/* Frees the entries of peers with nothing in flight and nothing held. */
void ordo_peers_sweep(ordo_peers_t *peers);

#endif
