/* An engine for the in-process tests: the real one (ordo_engine.h: front
 * end, shards, writer, snapshotter, indexer, reader), on a temporary data
 * folder, with requests over inproc:// from a DEALER in its context, and
 * optionally a file I/O table that fails on demand. Tests start it, send
 * requests (one at a time, or a workload pipelined), stop it, start it
 * again on the same folder, and read the log's truth by replaying it. */
#ifndef ORDO_TEST_ENGINE_H
#define ORDO_TEST_ENGINE_H

#include "ordo_codec.h"
#include "ordo_drive.h"
#include "ordo_engine.h"
#include "ordo_registry.h"

typedef struct {
    char dir[256];      /* the data folder */
    char snap_dir[300]; /* its snapshot folder */
    char wal_dir[300];  /* its log folder */
    ordo_engine_options_t opts;
    ordo_engine_t *engine;
    void *sock; /* DEALER to the engine */
    msgpack_sbuffer buf;
    msgpack_packer pk;
    void *reply_bytes; /* owned: the last reply's bytes */
    ordo_reply_t reply;
} ordo_test_engine_t;

/* A fresh folder and the settings: 2 shards, fsync always, snapshots only
 * at stop, finished orders kept in memory; `io` (may be NULL) for the log
 * and snapshots. The caller may change t->opts.cfg before starting. 0/-1. */
int ordo_test_engine_init(ordo_test_engine_t *t, const ordo_io_t *io);

/* Starts the engine and connects. 0, or -1 if it did not start. */
int ordo_test_engine_start(ordo_test_engine_t *t);

/* Stops it (as SIGTERM does) and frees it. ordo_engine_stop's result. */
int ordo_test_engine_stop(ordo_test_engine_t *t);

/* Stops it if it runs and removes the folder. */
void ordo_test_engine_cleanup(ordo_test_engine_t *t);

/* Sends one request and waits (10 s at most) for its reply, decoded into
 * t->reply (valid until the next call). NULL on timeout or a reply that
 * does not decode. */
const ordo_reply_t *ordo_test_engine_call(ordo_test_engine_t *t, const ordo_request_t *req);

/* Drives `n` workload commands through it, up to 256 in flight;
 * `on_reply` (may be NULL) sees every reply. ordo_drive's result. */
int ordo_test_engine_drive(ordo_test_engine_t *t, ordo_workload_t *w, uint64_t n,
                           ordo_drive_report_t *rep, void (*on_reply)(void *, const ordo_reply_t *),
                           void *arg);

/* Rebuilds the state from the folder (the engine must be stopped): from
 * the newest usable snapshot plus the log if `with_snapshot`, else by
 * replaying the whole log. The registry is the caller's. 0 or -1. */
int ordo_test_engine_recover(ordo_test_engine_t *t, bool with_snapshot, ordo_registry_t **reg,
                             ordo_state_recovery_t *rep);

/* Orders that differ between two registries (missing from either, or
 * another version, status, total, update time or item count). */
uint64_t ordo_test_registry_diff(const ordo_registry_t *a, const ordo_registry_t *b);

/* A CreateOrder for `order_id` with request id `request_id` (views into
 * static strings the caller keeps), one item of 2 x 150 cents. */
void ordo_test_create_request(ordo_request_t *req, const char *order_id, const char *request_id);

#endif
