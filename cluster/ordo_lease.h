/* Ownership of a partition: a lease in a JetStream key-value bucket
 * (docs/cluster.md). Bucket ORDO_LEASES, key p<k>, whose value names the
 * holder (its request endpoint and run token); the bucket's TTL makes a
 * value lapse unless its holder writes it again in time. Taking it is a
 * create (only if no live value) or a compare-and-set on an empty value
 * (a holder that let go); renewing is a compare-and-set on the holder's
 * own revision, so a holder that lapsed (frozen, cut off) finds out at its
 * next renewal and must step down. The revision the lease was taken or
 * renewed at names the ownership: frames carry it (Ordo-Lease).
 *
 * Thread-safe: once taken, a keeper thread renews it (ordo_lease_keep)
 * while the engine runs. */
#ifndef ORDO_LEASE_H
#define ORDO_LEASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ordo_lease ordo_lease_t;

typedef struct {
    const char *servers;   /* NATS URLs, comma-separated */
    uint32_t partition;    /* the key: p<partition> */
    int replicas;          /* of the bucket, when this makes it */
    int ttl_ms;            /* a lease lapses this long after its last write (when this
                            * makes the bucket; an existing bucket's TTL rules) */
    const char *holder;    /* who we are, for others to read */
} ordo_lease_options_t;

/* Connects and makes the bucket if missing. 0, or -1 with err. */
int ordo_lease_open(const ordo_lease_options_t *opts, ordo_lease_t **out, char *err,
                    size_t errsize);

/* Tries to take the lease. 0: ours (ordo_lease_revision says under which
 * revision); 1: another holds it (its value in `holder`); -1 with err
 * (JetStream did not answer: try again). */
int ordo_lease_acquire(ordo_lease_t *l, char *holder, size_t holder_size, char *err,
                       size_t errsize);

/* Starts the keeper: a thread renewing the lease every third of the
 * bucket's TTL, from now until release or close. 0, or -1 (no thread). */
int ordo_lease_keep(ordo_lease_t *l);

/* True once the keeper found the lease lost (lapsed, or taken by another
 * engine): the engine must step down. */
bool ordo_lease_lost(const ordo_lease_t *l);

/* Stops the keeper and lets go of the lease (an empty value, if it is
 * still ours), so a standby takes over at once rather than at the TTL. */
void ordo_lease_release(ordo_lease_t *l);

/* The revision of our last write (0 = not ours). */
uint64_t ordo_lease_revision(ordo_lease_t *l);

void ordo_lease_close(ordo_lease_t **l);

#endif
