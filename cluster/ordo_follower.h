/* Following a partition's stream (docs/cluster.md): a standby reads every
 * message from a sequence on, as JetStream delivers them (an ordered
 * consumer: in order, none skipped, re-made by the library if a node
 * goes), frames and lease markers alike. */
#ifndef ORDO_FOLLOWER_H
#define ORDO_FOLLOWER_H

#include <stddef.h>
#include <stdint.h>

typedef struct ordo_follower ordo_follower_t;

/* One message of the stream. */
typedef struct {
    uint64_t seq;        /* its stream sequence */
    uint64_t first;      /* Ordo-First */
    uint32_t count;      /* Ordo-Count: 0 for a lease marker */
    uint64_t lease;      /* Ordo-Lease; 0 if none */
    const void *data;    /* the frame's bytes (valid until the next call) */
    size_t len;
} ordo_follower_msg_t;

/* Follows stream ORDO_P<partition> from sequence `from` (>= 1). 0, or -1
 * with err. */
int ordo_follower_open(const char *servers, uint32_t partition, uint64_t from,
                       ordo_follower_t **out, char *err, size_t errsize);

/* The next message, waiting up to timeout_ms. 1 with *m set; 0 if none
 * came; -1 with err (a message that is not Ordo's, or the subscription
 * failed). */
int ordo_follower_next(ordo_follower_t *f, int timeout_ms, ordo_follower_msg_t *m, char *err,
                       size_t errsize);

/* The stream's last sequence now (to know when a standby has caught up).
 * 0, or -1 with err. */
int ordo_follower_last_seq(ordo_follower_t *f, uint64_t *seq, char *err, size_t errsize);

void ordo_follower_close(ordo_follower_t **f);

#endif
