/* The partition map (docs/cluster.md): who owns each partition of a
 * cluster, as the lease bucket says. Every owner's lease value names its
 * request and PUB endpoints; a watcher thread follows the bucket and keeps
 * the latest value of each key p<k>, so an engine can tell a client that
 * reached the wrong engine where to go (wrong_partition) and answer
 * Partitions. The map is a hint that is at most a moment old: a client
 * that finds an owner gone asks again. */
#ifndef ORDO_PARTMAP_H
#define ORDO_PARTMAP_H

#include <stddef.h>
#include <stdint.h>

#define ORDO_PARTMAP_ENDPOINT_MAX 256 /* with the NUL */

typedef struct ordo_partmap ordo_partmap_t;

/* One partition's owner: endpoint "" when none is known (its lease was
 * released, or not renewed within the lease's TTL). */
typedef struct {
    char endpoint[ORDO_PARTMAP_ENDPOINT_MAX];
    char pub[ORDO_PARTMAP_ENDPOINT_MAX];
    uint64_t revision; /* of the lease value, bucket-wide: a later owner's is higher */
} ordo_partmap_owner_t;

/* The lease value an owner writes: "ENDPOINT PUB (pid N)". The endpoints
 * must hold no space. 0, or -1 if it does not fit. */
int ordo_partmap_holder(char *buf, size_t size, const char *endpoint, const char *pub, long pid);

/* Reads a lease value back. 0, or -1 if it does not name two endpoints
 * (an empty value: a released lease). */
int ordo_partmap_parse_holder(const char *value, ordo_partmap_owner_t *out);

/* Starts following the lease bucket for `partitions` partitions (a value
 * lapses a TTL after it was last written: the bucket's, or ttl_ms until
 * it is read). 0, or -1 with err. */
int ordo_partmap_open(const char *servers, uint32_t partitions, int ttl_ms, ordo_partmap_t **out,
                      char *err, size_t errsize);

/* Copies the owners known now into owners[partitions]. Any thread. */
void ordo_partmap_get(ordo_partmap_t *pm, ordo_partmap_owner_t *owners);

/* Stops the watcher and closes the connection; sets *pm to NULL. */
void ordo_partmap_close(ordo_partmap_t **pm);

#endif
