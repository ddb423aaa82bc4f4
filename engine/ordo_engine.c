/* The engine's start and stop (see ordo_engine.h): recovery, the order
 * index, the sockets between the threads, the threads themselves, and the
 * snapshot at the end. The threads:
 *   front       ROUTER, routing by order, replies (ordo_front.c)
 *   shard x N   the order actors (ordo_shard.c)
 *   writer      the log's only appender, group commit, PUB (ordo_writer.c)
 *   snapshotter periodic snapshots, packed by the shards (ordo_snapshotter.c)
 *   indexer     finished orders into the order index (ordo_indexer.c)
 *   reader      ReadAll pages (ordo_reader.c)
 * They talk over inproc ZeroMQ PAIR (and PUSH/PULL) sockets, passing
 * batches. */
#include "ordo_engine.h"

#include "ordo_batch.h"
#include "ordo_chain.h"
#include "ordo_clock.h"
#include "ordo_conn_monitor.h"
#include "ordo_engine_metrics.h"
#include "ordo_error.h"
#include "ordo_front.h"
#include "ordo_index.h"
#include "ordo_indexer.h"
#include "ordo_limits.h"
#include "ordo_lock.h"
#include "ordo_log.h"
#include "ordo_reader.h"
#include "ordo_reconcile.h"
#include "ordo_replicator.h"
#include "ordo_shard.h"
#include "ordo_snapshotter.h"
#include "ordo_stats.h"
#include "ordo_writer.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

typedef struct {
    void *router, *pub;
    void **front_side, **shard_front;   /* front <-> shard i */
    void **writer_side, **shard_writer; /* writer <-> shard i */
    void **shard_snap;                  /* shard i -> snapshotter */
    void **index_side, **shard_index;   /* indexer <-> shard i */
    void *front_reader, *reader_side;   /* front end <-> reader */
    void *snap_in, *snap_done, *writer_done;
    void *control, *front_control; /* stop: engine -> front end */
} s_sockets_t;

struct ordo_engine {
    uint64_t serial; /* this process's engine number, in its inproc names */
    ordo_config_t cfg;
    const ordo_io_t *io;
    int lock_fd; /* the data folder's lock (ordo_lock.h) */
    char snap_dir[PATH_MAX + 16];
    uint32_t n;
    void *ctx;
    bool own_ctx;
    const ordo_auth_t *auth; /* CURVE on the ROUTER and the PUB; NULL = plain */
    s_sockets_t k;
    ordo_wal_t *wal;
    ordo_replicator_t *replicator; /* --nats: the log's copy in JetStream */
    ordo_partmap_t *partmap;       /* --nats: who owns each partition */
    uint64_t lease;                /* the lease revision it owns the stream under */
    bool claimed;                  /* reconciled and claimed before the start */
    ordo_engine_state_t given;     /* a standby's state, until s_prepare takes it */
    size_t frame_bytes_max;        /* what one frame may hold (0: the log's bound) */
    ordo_index_t *index;
    ordo_registry_t **regs;
    ordo_shard_t **shards;
    ordo_writer_t *writer;
    ordo_front_t *front;
    ordo_writer_config_t wcfg;
    ordo_indexer_config_t icfg;
    ordo_snapshotter_config_t scfg;
    ordo_reader_config_t rcfg;
    ordo_state_recovery_t recovery;
    ordo_engine_stats_t stats;
    int64_t start_us;
    ordo_conn_monitor_t *monitor; /* counts the ROUTER's and the PUB's connections */
    pthread_t front_thread, writer_thread, snap_thread, index_thread, reader_thread;
    pthread_t *shard_threads;
    bool running; /* every thread started */
    atomic_bool front_ended;
    int front_rc;
    int stop_rc;
};

/* An inproc socket with no high-water mark (the front end bounds the work
 * in flight, and a blocked send between threads could deadlock), bound or
 * connected to `name`. NULL on failure. */
static void *s_inproc(void *ctx, int type, const char *name, bool bind)
{
    void *sock = zmq_socket(ctx, type);
    int zero = 0;
    if (!sock)
        return NULL;
    zmq_setsockopt(sock, ZMQ_SNDHWM, &zero, sizeof zero);
    zmq_setsockopt(sock, ZMQ_RCVHWM, &zero, sizeof zero);
    zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof zero);
    if ((bind ? zmq_bind(sock, name) : zmq_connect(sock, name)) != 0) {
        ordo_log_error("engine", "inproc %s: %s", name, zmq_strerror(errno));
        zmq_close(sock);
        return NULL;
    }
    return sock;
}

/* A bound and a connected end of one inproc pipe, named after this engine
 * (several may share a context). */
static int s_pipe(ordo_engine_t *e, int bound_type, int connected_type, const char *what,
                  uint32_t i, void **bound, void **connected)
{
    char name[96];
    snprintf(name, sizeof name, "inproc://ordo-%llu-%s-%u", (unsigned long long)e->serial, what, i);
    if (bound && !(*bound = s_inproc(e->ctx, bound_type, name, true)))
        return -1;
    if (connected && !(*connected = s_inproc(e->ctx, connected_type, name, false)))
        return -1;
    return 0;
}

/* Blocks SIGTERM and SIGINT in the calling thread (so in the threads it
 * starts), keeping the old mask in *old. */
static void s_block_stop_signals(sigset_t *old)
{
    sigset_t block;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    pthread_sigmask(SIG_BLOCK, &block, old);
}

static int s_open_sockets(ordo_engine_t *e)
{
    s_sockets_t *k = &e->k;
    uint32_t n = e->n;
    k->front_side = calloc(n, sizeof(void *));
    k->shard_front = calloc(n, sizeof(void *));
    k->writer_side = calloc(n, sizeof(void *));
    k->shard_writer = calloc(n, sizeof(void *));
    k->shard_snap = calloc(n, sizeof(void *));
    k->index_side = calloc(n, sizeof(void *));
    k->shard_index = calloc(n, sizeof(void *));
    if (!k->front_side || !k->shard_front || !k->writer_side || !k->shard_writer ||
        !k->shard_snap || !k->index_side || !k->shard_index) {
        ordo_log_error("engine", "out of memory at start");
        return -1;
    }
    k->router = zmq_socket(e->ctx, ZMQ_ROUTER);
    k->pub = zmq_socket(e->ctx, ZMQ_PUB);
    if (!k->router || !k->pub)
        return -1;
    int64_t maxmsg = ORDO_MSG_MAX;
    /* High-water marks bound what one peer can make us hold. Outbound:
     * room for several rounds of replies (ZeroMQ learns that a peer has
     * read only every half mark), so a client that reads gets every reply;
     * one that never reads loses those past the mark. */
    int rcv_hwm = ORDO_RCV_HWM, snd_hwm = ORDO_SND_HWM, pub_hwm = 1000, linger = 1000;
    zmq_setsockopt(k->router, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
    zmq_setsockopt(k->router, ZMQ_RCVHWM, &rcv_hwm, sizeof rcv_hwm);
    zmq_setsockopt(k->router, ZMQ_SNDHWM, &snd_hwm, sizeof snd_hwm);
    zmq_setsockopt(k->router, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(k->pub, ZMQ_SNDHWM, &pub_hwm, sizeof pub_hwm);
    zmq_setsockopt(k->pub, ZMQ_LINGER, &linger, sizeof linger);
    if (e->auth && (ordo_auth_guard(e->auth, k->router) != 0 ||
                    ordo_auth_guard(e->auth, k->pub) != 0)) {
        ordo_log_error("engine", "cannot set CURVE: %s", zmq_strerror(errno));
        return -1;
    }
    /* Counted from before the first connection can come. Without it the
     * engine runs; the gauge stays at 0 (logged). */
    sigset_t old;
    s_block_stop_signals(&old);
    e->monitor = ordo_conn_monitor_start(e->ctx, (void *[]){k->router, k->pub},
                                         e->stats.connections, 2);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (zmq_bind(k->router, e->cfg.bind) != 0) {
        ordo_log_error("engine", "cannot bind %s: %s", e->cfg.bind, zmq_strerror(errno));
        return -1;
    }
    if (zmq_bind(k->pub, e->cfg.pub) != 0) {
        ordo_log_error("engine", "cannot bind %s: %s", e->cfg.pub, zmq_strerror(errno));
        return -1;
    }
    if (s_pipe(e, ZMQ_PAIR, ZMQ_PAIR, "reader", 0, &k->front_reader, &k->reader_side) != 0 ||
        s_pipe(e, ZMQ_PAIR, ZMQ_PAIR, "control", 0, &k->front_control, &k->control) != 0 ||
        s_pipe(e, ZMQ_PULL, 0, "snapshots", 0, &k->snap_in, NULL) != 0 ||
        s_pipe(e, ZMQ_PAIR, ZMQ_PAIR, "snapshot-done", 0, &k->snap_done, &k->writer_done) != 0)
        return -1;
    for (uint32_t i = 0; i < n; i++) {
        char name[96];
        snprintf(name, sizeof name, "inproc://ordo-%llu-snapshots-0",
                 (unsigned long long)e->serial);
        if (s_pipe(e, ZMQ_PAIR, ZMQ_PAIR, "front", i, &k->front_side[i], &k->shard_front[i]) ||
            s_pipe(e, ZMQ_PAIR, ZMQ_PAIR, "writer", i, &k->writer_side[i], &k->shard_writer[i]) ||
            s_pipe(e, ZMQ_PAIR, ZMQ_PAIR, "index", i, &k->index_side[i], &k->shard_index[i]) ||
            !(k->shard_snap[i] = s_inproc(e->ctx, ZMQ_PUSH, name, false)))
            return -1;
    }
    return 0;
}

static void s_close_all(void **socks, uint32_t n)
{
    for (uint32_t i = 0; socks && i < n; i++)
        if (socks[i])
            zmq_close(socks[i]);
    free(socks);
}

static void s_close_sockets(ordo_engine_t *e)
{
    s_sockets_t *k = &e->k;
    s_close_all(k->front_side, e->n);
    s_close_all(k->shard_front, e->n);
    s_close_all(k->writer_side, e->n);
    s_close_all(k->shard_writer, e->n);
    s_close_all(k->shard_snap, e->n);
    s_close_all(k->index_side, e->n);
    s_close_all(k->shard_index, e->n);
    void *single[] = {k->router,       k->pub,         k->snap_in, k->snap_done,    k->writer_done,
                      k->front_reader, k->reader_side, k->control, k->front_control};
    for (size_t i = 0; i < sizeof single / sizeof *single; i++)
        if (single[i])
            zmq_close(single[i]);
    memset(k, 0, sizeof *k);
}

static void *s_front_main(void *arg)
{
    ordo_engine_t *e = arg;
    e->front_rc = ordo_front_run(e->front);
    atomic_store(&e->front_ended, true);
    return NULL;
}

/* Starts a thread named `name` (shown by top -H and in debuggers). */
static bool s_thread(pthread_t *t, void *(*fn)(void *), void *arg, const char *name)
{
    if (pthread_create(t, NULL, fn, arg) != 0)
        return false;
    pthread_setname_np(*t, name);
    return true;
}

/* --nats: connects to JetStream, makes the log and the partition's stream
 * agree (ordo_reconcile.h), and bounds a frame by what a message may
 * hold. 0 or -1 (logged). */
static int s_replicate(ordo_engine_t *e)
{
    char err[1024];
    ordo_replicator_end_t end;
    ordo_replicator_options_t o = {.servers = e->cfg.nats,
                                   .partition = e->cfg.partition,
                                   .replicas = e->cfg.nats_replicas,
                                   .timeout_ms = 5000,
                                   .lease = e->lease};
    if (ordo_replicator_open(&o, &e->replicator, &end, err, sizeof err) != 0) {
        ordo_log_error("engine", "replication: %s", err);
        return -1;
    }
    /* A frame's bytes: its records, their compression's worst case, their
     * length prefixes, header and chain, and the message's headers. */
    size_t max = ordo_replicator_max_frame(e->replicator);
    size_t room = max > (256u << 10) ? (max - (256u << 10)) / 256 * 255 : 0;
    /* The writer stops taking batches once a frame reaches its bound, so a
     * frame holds at most the bound plus one shard's batch. */
    if (room < 2 * (size_t)ORDO_SHARD_EVENT_BYTES_MAX) {
        ordo_log_error("engine",
                       "replication: the NATS servers take messages of at most %zu bytes "
                       "(max_payload); a frame may need %u MiB: set max_payload to 64MB in "
                       "their configuration",
                       max, (unsigned)(2 * (ORDO_SHARD_EVENT_BYTES_MAX >> 20) + 1));
        return -1;
    }
    room -= ORDO_SHARD_EVENT_BYTES_MAX;
    e->frame_bytes_max = room < ORDO_FRAME_BYTES_MAX ? room : ORDO_FRAME_BYTES_MAX;
    uint64_t head = ordo_wal_head(e->wal);
    if (e->claimed) { /* a standby did both: the stream must still end here */
        if (end.last_position != head) {
            ordo_log_error("engine",
                           "replication: the stream ends at position %llu, the log at %llu, "
                           "after the claim",
                           (unsigned long long)end.last_position, (unsigned long long)head);
            return -1;
        }
    } else if (ordo_reconcile(e->replicator, e->wal, err, sizeof err) != 0) {
        ordo_log_error("engine", "replication: %s", err);
        return -1;
    }
    /* Claim the stream under our lease: whoever wrote before is fenced. */
    if (e->lease && !e->claimed && ordo_replicator_claim(e->replicator, err, sizeof err) != 0) {
        ordo_log_error("engine", "replication: claiming the stream: %s", err);
        return -1;
    }
    ordo_log_info("engine",
                  "replicating to %s: stream ORDO_P%u at position %llu (sequence %llu), the "
                  "same as the log; a command is acknowledged once JetStream has its frame",
                  e->cfg.nats, e->cfg.partition, (unsigned long long)head,
                  (unsigned long long)ordo_replicator_end(e->replicator).seq);
    return 0;
}

/* The partition map the front end answers with: this engine's partition
 * and endpoints, and with --nats the other owners, followed from the
 * lease bucket. 0 or -1 (logged). */
static int s_partitions(ordo_engine_t *e)
{
    char err[512], endpoint[ORDO_PARTMAP_ENDPOINT_MAX], pub[ORDO_PARTMAP_ENDPOINT_MAX];
    ordo_config_advertised(&e->cfg, e->cfg.bind, endpoint, sizeof endpoint);
    ordo_config_advertised(&e->cfg, e->cfg.pub, pub, sizeof pub);
    if (e->cfg.nats[0] && ordo_partmap_open(e->cfg.nats, e->cfg.partitions, (int)e->cfg.lease_ms,
                                            &e->partmap, err, sizeof err) != 0) {
        ordo_log_error("engine", "the partition map: %s", err);
        return -1;
    }
    ordo_front_partitions_t p = {.partition = e->cfg.partition,
                                 .partitions = e->cfg.partitions,
                                 .endpoint = endpoint,
                                 .pub = pub,
                                 .revision = e->lease,
                                 .map = e->partmap};
    if (ordo_front_set_partitions(e->front, &p) != 0) {
        ordo_log_error("engine", "out of memory at start");
        return -1;
    }
    return 0;
}

/* Recovery, the index, the shards' state and every object the threads
 * run on. 0 or -1 (logged). */
static int s_prepare(ordo_engine_t *e, bool repair)
{
    ordo_registry_t *all = NULL;
    ordo_engine_stats_init(&e->stats);
    if (e->given.wal) { /* a standby's: recovered and followed already */
        e->wal = e->given.wal;
        all = e->given.orders;
        e->recovery = e->given.recovery;
        e->index = e->given.index;
        e->given = (ordo_engine_state_t){.lock_fd = -1};
    } else if (ordo_state_open(&e->cfg, repair, e->io, &e->wal, &all, &e->recovery) != 0) {
        return -1; /* the log line says why */
    }
    ordo_engine_stats_observe(&e->stats, e->wal);
    if (e->cfg.nats[0] && s_replicate(e) != 0) {
        ordo_registry_destroy(&all);
        return -1; /* the log line says why */
    }
    e->stats.shards = e->n;
    e->regs = calloc(e->n, sizeof *e->regs);
    e->shards = calloc(e->n, sizeof *e->shards);
    e->shard_threads = calloc(e->n, sizeof *e->shard_threads);
    bool ok = e->regs && e->shards && e->shard_threads;
    for (uint32_t i = 0; ok && i < e->n; i++)
        ok = (e->regs[i] = ordo_registry_new()) != NULL;
    if (!ok || ordo_registry_split(all, e->regs, e->n) != 0) {
        ordo_registry_destroy(&all);
        ordo_log_error("engine", "out of memory at start");
        return -1;
    }
    ordo_registry_destroy(&all);

    char index_dir[PATH_MAX + 16];
    ordo_config_index_dir(&e->cfg, index_dir, sizeof index_dir);
    uint64_t t_index = ordo_mono_ns();
    if (e->index) /* a standby's, kept up to date while it followed */
        ordo_log_info("engine", "order index %s: %llu orders, kept open from standing by",
                      index_dir, (unsigned long long)ordo_index_count(e->index));
    else if (ordo_index_open(index_dir, e->n, e->cfg.fsync_mode != ORDO_SYNC_NEVER,
                             ordo_wal_head(e->wal), &e->index) != 0)
        return -1; /* the log line says why */
    else
        ordo_log_info("engine", "order index %s: %llu orders, read in %.1f ms", index_dir,
                      (unsigned long long)ordo_index_count(e->index),
                      (ordo_mono_ns() - t_index) / 1e6);

    if (s_open_sockets(e) != 0)
        return -1;
    s_sockets_t *k = &e->k;
    for (uint32_t i = 0; ok && i < e->n; i++)
        ok = (e->shards[i] = ordo_shard_new(i, &e->regs[i], e->wal, k->shard_front[i],
                                            k->shard_writer[i], k->shard_snap[i], &e->stats)) !=
                 NULL &&
             ordo_shard_retain(e->shards[i], e->index, k->shard_index[i],
                               (int64_t)e->cfg.retain_finished_s * 1000000) == 0;
    e->wcfg = (ordo_writer_config_t){.wal = e->wal,
                                     .shards = k->writer_side,
                                     .nshards = e->n,
                                     .pub = k->pub,
                                     .snapshot_done = k->writer_done,
                                     .snapshot_every = e->cfg.snapshot_every,
                                     .clock_floor_us = e->recovery.last_timestamp_us,
                                     .stats = &e->stats,
                                     .replicator = e->replicator,
                                     .frame_bytes_max = e->frame_bytes_max};
    e->icfg = (ordo_indexer_config_t){.index = e->index, .nshards = e->n, .pipes = k->index_side};
    e->scfg = (ordo_snapshotter_config_t){.dir = e->snap_dir,
                                          .io = e->io,
                                          .nshards = e->n,
                                          .in = k->snap_in,
                                          .done = k->snap_done,
                                          .stats = &e->stats};
    e->rcfg =
        (ordo_reader_config_t){.wal = e->wal, .pipe = k->reader_side, .stats = &e->stats.reader};
    e->writer = ok ? ordo_writer_new(&e->wcfg) : NULL;
    e->front =
        ok ? ordo_front_new(k->router, k->front_side, e->n, k->front_reader, k->front_control,
                             &e->stats.front)
           : NULL;
    if (!ok || !e->writer || !e->front) {
        ordo_log_error("engine", "out of memory at start");
        return -1;
    }
    return s_partitions(e);
}

/* Starts every thread; they block the stop signals, so these reach the
 * caller's thread. Threads that started wait for each other to stop, so
 * one that cannot start (the system is out of threads) ends the process. */
static void s_start_threads(ordo_engine_t *e)
{
    sigset_t old;
    s_block_stop_signals(&old);
    bool ok = s_thread(&e->writer_thread, ordo_writer_run, e->writer, "ordo-writer") &&
              s_thread(&e->snap_thread, ordo_snapshotter_run, &e->scfg, "ordo-snapshot") &&
              s_thread(&e->index_thread, ordo_indexer_run, &e->icfg, "ordo-indexer") &&
              s_thread(&e->reader_thread, ordo_reader_run, &e->rcfg, "ordo-reader");
    for (uint32_t i = 0; ok && i < e->n; i++) {
        char name[16];
        snprintf(name, sizeof name, "ordo-shard-%u", i % 1000u);
        ok = s_thread(&e->shard_threads[i], ordo_shard_run, e->shards[i], name);
    }
    ok = ok && s_thread(&e->front_thread, s_front_main, e, "ordo-front");
    e->running = true;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (!ok) {
        ordo_log_error("engine", "cannot start threads: %s", strerror(errno));
        abort();
    }
}

void ordo_engine_state_free(ordo_engine_state_t *st)
{
    if (!st)
        return;
    ordo_registry_destroy(&st->orders);
    ordo_index_destroy(&st->index);
    ordo_wal_destroy(&st->wal);
    if (st->lock_fd >= 0)
        ordo_lock_release(&st->lock_fd);
    st->lock_fd = -1;
}

int ordo_engine_start(const ordo_engine_options_t *opts, ordo_engine_t **out)
{
    *out = NULL;
    ordo_engine_t *e = calloc(1, sizeof *e);
    if (!e) {
        ordo_log_error("engine", "out of memory at start");
        ordo_engine_state_free(opts->state);
        return -1;
    }
    if (opts->state) { /* taken over: freed with the engine from here on */
        e->given = *opts->state;
        *opts->state = (ordo_engine_state_t){.lock_fd = -1};
    } else {
        e->given.lock_fd = -1;
    }
    e->lease = opts->lease;
    e->claimed = opts->claimed;
    static atomic_ullong engines;
    e->serial = atomic_fetch_add(&engines, 1) + 1;
    e->start_us = ordo_now_us();
    if (ordo_chain_init() != 0) {
        ordo_log_error("engine", "libsodium cannot start (the events' hash chain needs it)");
        ordo_engine_state_free(&e->given);
        free(e);
        return -1;
    }
    e->cfg = opts->cfg;
    e->io = opts->io ? opts->io : ordo_io_posix();
    if ((e->cfg.fsync_mode == ORDO_SYNC_REPLICATED) != (e->cfg.nats[0] != '\0')) {
        ordo_log_error("engine", "--fsync replicated and --nats go together");
        ordo_engine_state_free(&e->given);
        free(e);
        return -1;
    }
    char why[PATH_MAX + 160];
    if (e->given.lock_fd >= 0) {
        e->lock_fd = e->given.lock_fd;
        e->given.lock_fd = -1;
    } else if ((e->lock_fd = ordo_lock_acquire(e->cfg.data_dir, why, sizeof why)) < 0) {
        ordo_log_error("engine", "%s", why);
        ordo_engine_state_free(&e->given);
        free(e);
        return -1;
    }
    e->n = ordo_config_shard_count(&e->cfg);
    e->auth = opts->auth;
    if (e->auth) { /* zauth answers for czmq's context only */
        void *czmq_ctx = ordo_auth_context();
        if (opts->zmq_ctx && opts->zmq_ctx != czmq_ctx) {
            ordo_log_error("engine", "CURVE needs the engine in czmq's ZeroMQ context");
            ordo_lock_release(&e->lock_fd);
            ordo_engine_state_free(&e->given);
            free(e);
            return -1;
        }
        e->ctx = czmq_ctx;
        e->own_ctx = false;
    } else {
        e->own_ctx = opts->zmq_ctx == NULL;
        e->ctx = opts->zmq_ctx ? opts->zmq_ctx : zmq_ctx_new();
    }
    ordo_config_snapshot_dir(&e->cfg, e->snap_dir, sizeof e->snap_dir);
    if (!e->ctx || s_prepare(e, opts->repair) != 0) {
        ordo_engine_destroy(&e); /* nothing runs: it only frees */
        return -1;
    }
    s_start_threads(e);
    *out = e;
    return 0;
}

/* Writes the snapshot at shutdown: every order in memory, at the synced
 * head. 0 or -1 (logged). */
static int s_final_snapshot(ordo_engine_t *e)
{
    const ordo_registry_t **regs = calloc(e->n, sizeof *regs);
    for (uint32_t i = 0; regs && i < e->n; i++)
        regs[i] = ordo_shard_registry(e->shards[i]);
    uint64_t t0 = ordo_mono_ns(), pos = ordo_wal_synced_head(e->wal);
    int rc = regs ? ordo_state_snapshot(regs, e->n, e->snap_dir, pos, 2, e->io) : ORDO_ERR_NOMEM;
    free(regs);
    if (rc != 0) {
        ordo_log_error("engine", "snapshot failed: %s", ordo_strerror(rc));
        return -1;
    }
    ordo_log_info("engine", "snapshot at position %llu in %.1f ms", (unsigned long long)pos,
                  (ordo_mono_ns() - t0) / 1e6);
    return 0;
}

int ordo_engine_stop(ordo_engine_t *e)
{
    if (!e || !e->running)
        return e ? e->stop_rc : 0;
    e->running = false;
    zmq_send(e->k.control, "stop", 4, ZMQ_DONTWAIT);
    pthread_join(e->front_thread, NULL);
    /* The front end's STOP ends each shard, which passes it to the writer,
     * the snapshotter and the indexer; the reader gets its own. */
    for (uint32_t i = 0; i < e->n; i++)
        pthread_join(e->shard_threads[i], NULL);
    pthread_join(e->writer_thread, NULL);
    pthread_join(e->snap_thread, NULL);
    pthread_join(e->index_thread, NULL);
    pthread_join(e->reader_thread, NULL);
    ordo_conn_monitor_stop(&e->monitor); /* no thread uses the ROUTER and the PUB now */
    int rc = e->front_rc == 0 ? 0 : -1;
    if (ordo_wal_error(e->wal) != 0 || s_final_snapshot(e) != 0)
        rc = -1;
    ordo_log_info("engine", "stopped at position %llu", (unsigned long long)ordo_wal_head(e->wal));
    e->stop_rc = rc;
    return rc;
}

void ordo_engine_destroy(ordo_engine_t **engine)
{
    if (!engine || !*engine)
        return;
    ordo_engine_t *e = *engine;
    ordo_engine_stop(e);
    ordo_writer_destroy(&e->writer);
    ordo_replicator_close(&e->replicator); /* no writer thread uses it now */
    ordo_conn_monitor_stop(&e->monitor); /* (a start that failed) */
    s_close_sockets(e);
    if (e->own_ctx && e->ctx)
        zmq_ctx_term(e->ctx);
    ordo_front_destroy(&e->front); /* its counted replies free themselves (ordo_peers.h) */
    ordo_partmap_close(&e->partmap);
    for (uint32_t i = 0; e->shards && i < e->n; i++)
        ordo_shard_destroy(&e->shards[i]);
    for (uint32_t i = 0; e->regs && i < e->n; i++)
        ordo_registry_destroy(&e->regs[i]); /* those no shard took */
    free(e->shards);
    free(e->regs);
    free(e->shard_threads);
    ordo_index_destroy(&e->index);
    ordo_wal_destroy(&e->wal);
    ordo_engine_state_free(&e->given); /* (a start that failed before taking it) */
    ordo_lock_release(&e->lock_fd); /* last: the folder is free only when all is closed */
    free(e);
    *engine = NULL;
}

bool ordo_engine_failed(const ordo_engine_t *e)
{
    return atomic_load(&e->front_ended);
}

bool ordo_engine_log_failed(const ordo_engine_t *e)
{
    return atomic_load_explicit(&e->stats.log_failed, memory_order_relaxed) != 0;
}

void *ordo_engine_zmq_context(const ordo_engine_t *e)
{
    return e->ctx;
}

const ordo_state_recovery_t *ordo_engine_recovery(const ordo_engine_t *e)
{
    return &e->recovery;
}

uint64_t ordo_engine_head(const ordo_engine_t *e)
{
    return ordo_wal_head(e->wal);
}

void ordo_engine_log_stats(const ordo_engine_t *e, uint64_t *frames, uint64_t *fsyncs,
                           uint64_t *bytes)
{
    ordo_wal_stats(e->wal, frames, fsyncs, bytes);
}

void ordo_engine_metrics(void *engine, ordo_mtext_t *out)
{
    ordo_engine_t *e = engine;
    ordo_engine_metrics_src_t src = {.head = ordo_wal_head(e->wal),
                                     .synced = ordo_wal_synced_head(e->wal),
                                     .indexed = e->index ? ordo_index_count(e->index) : 0,
                                     .start_us = e->start_us};
    ordo_wal_stats(e->wal, &src.frames, &src.fsyncs, &src.bytes);
    ordo_engine_metrics_render(&e->stats, &src, out);
}
