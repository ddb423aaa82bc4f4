/* The benchmark's stand-in engine: a ROUTER in its own thread that answers
 * every request at once with a canned reply, {ok: true, request_id} (the
 * request's id echoed), doing nothing else. Driving it with the same
 * workload measures what the load generator itself can do on this machine
 * (its ceiling), next to which the real engine's figures are read. */
#ifndef ORDO_STUB_H
#define ORDO_STUB_H

#include <stdint.h>

typedef struct ordo_stub ordo_stub_t;

/* Binds a ROUTER on `endpoint` (e.g. "tcp://127.0.0.1:*") and starts
 * answering in a new thread. NULL if the bind or the thread fails. */
ordo_stub_t *ordo_stub_new(const char *endpoint);

/* Stops the thread, closes the socket and nulls *stub. */
void ordo_stub_destroy(ordo_stub_t **stub);

/* The endpoint actually bound (the port resolved), to connect to. */
const char *ordo_stub_endpoint(const ordo_stub_t *stub);

/* The stub thread's CPU time so far, in nanoseconds (0 if unknown). */
uint64_t ordo_stub_cpu_ns(const ordo_stub_t *stub);

#endif
