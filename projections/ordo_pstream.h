/* The projector's events from a partition's stream in NATS JetStream, for
 * a projector on a machine of its own (docs/cluster.md, "Projectors on
 * the streams"). A gateway inside the projector's process speaks the part
 * of the engine's protocol that event followers use, on loopback
 * endpoints of its own:
 *   - a ROUTER answering Ping ({ok, head_position}) and ReadAll (pages of
 *     events from any position, read from the stream's frames by sequence
 *     with JetStream's message get), anything else `unknown_type`;
 *   - a PUB of every new event ([type, event] as the engine sends them),
 *     fed by a durable pull consumer on the stream, which acknowledges
 *     each frame once its events are published.
 * The projector's followers (libordo subscriptions) connect to these as
 * they would to an engine: they fill from ReadAll, follow PUB, and fill
 * any gap from ReadAll again, so nothing depends on what the durable
 * consumer delivered. The consumer's state in JetStream shows how far the
 * projector has read (`nats consumer info`), and where its live feed
 * resumes after a restart.
 *
 * Frames are checked (header, length, checksum, decompression, positions
 * against their headers) before any event is served; the stream is not
 * trusted more than a file. */
#ifndef ORDO_PSTREAM_H
#define ORDO_PSTREAM_H

#include <stddef.h>
#include <stdint.h>

typedef struct ordo_pstream ordo_pstream_t;

typedef struct {
    const char *servers;   /* NATS URLs, comma-separated */
    uint32_t partition;    /* the stream: ORDO_P<partition> */
    const char *durable;   /* the consumer's name (one per projector) */
} ordo_pstream_config_t;

/* Connects, makes or binds the durable consumer, binds the endpoints and
 * starts the two threads. 0, or -1 with err. */
int ordo_pstream_start(const ordo_pstream_config_t *cfg, ordo_pstream_t **out, char *err,
                       size_t errsize);

/* The endpoints to follow, as an engine's --bind and --pub. */
const char *ordo_pstream_endpoint(const ordo_pstream_t *ps);
const char *ordo_pstream_pub_endpoint(const ordo_pstream_t *ps);

/* The last position the gateway knows the stream holds. */
uint64_t ordo_pstream_head(const ordo_pstream_t *ps);

/* Stops the threads and closes everything; sets *ps to NULL. */
void ordo_pstream_stop(ordo_pstream_t **ps);

#endif
