/* Drives a workload's commands into an engine over one ZeroMQ DEALER
 * socket, as a client does: encoded per PROTOCOL.md, pipelined (up to
 * `window` in flight), every reply decoded and counted. For ordo-demo,
 * the microbenchmark and the in-process tests, which run the engine in
 * their own process (ordo_engine.h) and reach it over inproc://. */
#ifndef ORDO_DRIVE_H
#define ORDO_DRIVE_H

#include "ordo_codec.h"
#include "ordo_workload.h"

#include <stdint.h>

typedef struct {
    uint64_t sent;
    uint64_t ok;          /* `ok` true (duplicates included) */
    uint64_t refused;     /* `ok` false, other than `unavailable` */
    uint64_t unavailable; /* `ok` false with code unavailable */
    uint64_t bad;         /* answers that are not replies */
    uint64_t unanswered;  /* still in flight when the wait ran out */
} ordo_drive_report_t;

typedef struct {
    void *zmq_ctx;        /* the engine's context for inproc://, or any */
    const char *endpoint; /* the engine's request endpoint */
    uint32_t window;      /* requests in flight at most (>= 1) */
    int timeout_ms;       /* how long to wait, at most, when no reply comes */
    /* Called with every decoded reply (may be NULL). */
    void (*on_reply)(void *arg, const ordo_reply_t *reply);
    void *arg;
} ordo_drive_options_t;

/* Sends up to `commands` of the workload's next commands (fewer if it
 * ends) and waits for their replies. 0 if every command was answered,
 * -1 if the socket failed or a wait ran out (rep->unanswered says how
 * many were not answered). */
int ordo_drive(const ordo_drive_options_t *opts, ordo_workload_t *w, uint64_t commands,
               ordo_drive_report_t *rep);

#endif
