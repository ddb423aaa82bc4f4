/* The engine as a library: recovery, the order index, and the threads of
 * the command path (front end, shards, log writer, snapshotter, indexer,
 * reader), started and stopped as one. ordo-server runs it in its own
 * process; ordo-demo, the microbenchmark and the in-process tests run the
 * very same code in theirs, with requests over `inproc://` in the
 * engine's ZeroMQ context and, for the tests, a file I/O table that fails
 * on demand. There is no other command path. */
#ifndef ORDO_ENGINE_H
#define ORDO_ENGINE_H

#include "ordo_auth.h"
#include "ordo_config.h"
#include "ordo_index.h"
#include "ordo_io.h"
#include "ordo_metrics_text.h"
#include "ordo_state.h"

#include <stdbool.h>

typedef struct ordo_engine ordo_engine_t;

/* The state of a data folder, recovered and held: what a standby that
 * takes over hands to the engine it becomes (ordo_standby.h), instead of
 * the engine recovering it from the folder. */
typedef struct {
    int lock_fd;                    /* the data folder's lock, held (ordo_lock.h); -1 = none */
    ordo_wal_t *wal;                /* the log, open */
    ordo_registry_t *orders;        /* every order in memory */
    ordo_state_recovery_t recovery; /* head, latest time, what was replayed */
    ordo_index_t *index;            /* the order index, open with the engine's shards and
                                     * its filters filled; NULL = the engine opens it */
} ordo_engine_state_t;

/* Frees what a state holds (log, orders, index, lock) and empties it. */
void ordo_engine_state_free(ordo_engine_state_t *state);

typedef struct {
    ordo_config_t cfg;   /* data folder, endpoints (tcp://, ipc:// or inproc://), shards, ... */
    bool repair;         /* cut the log at mid-log corruption instead of refusing to start */
    const ordo_io_t *io; /* the log's and the snapshots' file I/O; NULL = POSIX. Must
                          * outlive the engine. */
    void *zmq_ctx;       /* a ZeroMQ context to share (for inproc:// clients); NULL =
                          * the engine makes its own */
    const ordo_auth_t *auth; /* CURVE: the ROUTER and the PUB become CURVE servers that
                              * let in only its clients; NULL = plain. The engine then
                              * runs in czmq's context (zmq_ctx must be NULL or that
                              * one), and auth must outlive the engine. */
    ordo_engine_state_t *state; /* taken over (emptied), success or not; NULL = recover
                                 * from the data folder */
    uint64_t lease;             /* --nats: the lease revision this engine owns the stream
                                 * under (it claims the stream with it); 0 = none */
    bool claimed;               /* the state's log and the stream were reconciled and the
                                 * stream claimed under `lease` already (ordo_standby.h) */
} ordo_engine_options_t;

/* Takes the data folder's lock (one engine per folder: a second one is
 * refused, naming the holder's pid), recovers the state (snapshot + log),
 * opens the order index, binds the endpoints and starts every thread. Returns 0 once the engine answers
 * requests, with *out owned by the caller; or -1 (the log lines say why)
 * with *out NULL and every thread stopped. The threads block SIGTERM and
 * SIGINT, so the caller's thread receives them. */
int ordo_engine_start(const ordo_engine_options_t *opts, ordo_engine_t **out);

/* Stops as ordo-server does on SIGTERM: requests in flight are finished,
 * new ones get `unavailable`, the log is synced, a snapshot is written.
 * 0, or -1 if the engine failed (the ROUTER, the log, or the final
 * snapshot). Safe to call twice. */
int ordo_engine_stop(ordo_engine_t *engine);

/* Stops it if it runs, then frees it. Sockets a caller made in the
 * engine's own context (ordo_engine_zmq_context) must be closed first:
 * ending the context waits for them. */
void ordo_engine_destroy(ordo_engine_t **engine);

/* Whether the front end stopped by itself (its ROUTER failed): then the
 * engine answers nothing more and should be stopped. Any thread. */
bool ordo_engine_failed(const ordo_engine_t *engine);

/* True once the log (or its replication) failed for good: commands get
 * `unavailable` until a restart. */
bool ordo_engine_log_failed(const ordo_engine_t *engine);

/* The ZeroMQ context its sockets live in (the one given, or its own). */
void *ordo_engine_zmq_context(const ordo_engine_t *engine);

/* What recovery found at start. */
const ordo_state_recovery_t *ordo_engine_recovery(const ordo_engine_t *engine);

/* The last position in the log (appended; synced per the fsync mode). */
uint64_t ordo_engine_head(const ordo_engine_t *engine);

/* The log's counters: frames written, fsyncs, bytes written (any may be
 * NULL). */
void ordo_engine_log_stats(const ordo_engine_t *engine, uint64_t *frames, uint64_t *fsyncs,
                           uint64_t *bytes);

/* Writes every metric in the Prometheus text format (an
 * ordo_metrics_render_fn, `engine` an ordo_engine_t). Any thread, while
 * the engine exists: it reads only atomic counters. */
void ordo_engine_metrics(void *engine, ordo_mtext_t *out);

#endif
