/* ordo-server: the engine's process. It recovers the state (snapshot +
 * log), splits the orders among the shards, and starts the threads:
 *   main        the front end: ROUTER, routing by order, replies
 *   shard x N   the order actors (ordo_shard.c)
 *   writer      the log's only appender, group commit, PUB (ordo_writer.c)
 *   snapshotter periodic snapshots, packed by the shards (ordo_snapshotter.c)
 * They talk over inproc ZeroMQ PAIR (and PUSH/PULL) sockets, passing
 * batches. SIGTERM/SIGINT stop it cleanly: requests in flight are
 * finished, new ones get `unavailable`, the log is synced, a snapshot is
 * written, exit 0. */
#include "ordo_batch.h"
#include "ordo_clock.h"
#include "ordo_config.h"
#include "ordo_error.h"
#include "ordo_front.h"
#include "ordo_indexer.h"
#include "ordo_limits.h"
#include "ordo_log.h"
#include "ordo_reader.h"
#include "ordo_shard.h"
#include "ordo_snapshotter.h"
#include "ordo_state.h"
#include "ordo_stats.h"
#include "ordo_writer.h"

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define ORDO_SERVER_VERSION "0.2.0"

static volatile sig_atomic_t s_stop;

static void s_on_signal(int sig)
{
    (void)sig;
    s_stop = 1;
}

static void s_usage(FILE *out)
{
    fprintf(
        out,
        "Usage: ordo-server [OPTIONS]\n"
        "The Ordo engine: orders as event-sourced actors over ZeroMQ.\n"
        "\n"
        "  --data-dir DIR        data folder, created if missing (default ./data; ORDO_DATA_DIR)\n"
        "  --bind ENDPOINT       requests, ROUTER (default tcp://127.0.0.1:7700; ORDO_BIND)\n"
        "  --pub ENDPOINT        events, PUB (default tcp://127.0.0.1:7701; ORDO_PUB)\n"
        "  --shards N            shard threads (default: cores; ORDO_SHARDS)\n"
        "  --fsync MODE          always | batch:MS | never (default always; ORDO_FSYNC)\n"
        "  --snapshot-every N    events between snapshots; 0 = only at shutdown\n"
        "                        (default 1000000; ORDO_SNAPSHOT_EVERY)\n"
        "  --segment-bytes N     log segment size, >= 65536 (default 64 MiB; ORDO_SEGMENT_BYTES)\n"
        "  --retain-finished S   a Delivered or Cancelled order leaves memory S seconds after\n"
        "                        its last event, for the order index on disk; 0 = once\n"
        "                        durable (default 600; ORDO_RETAIN_FINISHED)\n"
        "  --repair              cut the log at mid-log corruption instead of refusing to start\n"
        "  --help, --version\n");
}

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
        ordo_log_error("server", "inproc %s: %s", name, zmq_strerror(errno));
        zmq_close(sock);
        return NULL;
    }
    return sock;
}

typedef struct {
    void *ctx, *router, *pub;
    uint32_t n;
    void **front_side, **shard_front;   /* front <-> shard i */
    void **writer_side, **shard_writer; /* writer <-> shard i */
    void **shard_snap;                  /* shard i -> snapshotter */
    void **index_side, **shard_index;   /* indexer <-> shard i */
    void *front_reader, *reader_side;   /* front end <-> reader */
    void *snap_in, *snap_done, *writer_done;
} s_sockets_t;

static int s_open_sockets(s_sockets_t *k, const ordo_config_t *cfg, uint32_t n)
{
    k->n = n;
    k->ctx = zmq_ctx_new();
    k->front_side = calloc(n, sizeof(void *));
    k->shard_front = calloc(n, sizeof(void *));
    k->writer_side = calloc(n, sizeof(void *));
    k->shard_writer = calloc(n, sizeof(void *));
    k->shard_snap = calloc(n, sizeof(void *));
    k->index_side = calloc(n, sizeof(void *));
    k->shard_index = calloc(n, sizeof(void *));
    if (!k->ctx || !k->front_side || !k->shard_front || !k->writer_side || !k->shard_writer ||
        !k->shard_snap || !k->index_side || !k->shard_index) {
        ordo_log_error("server", "out of memory at start");
        return -1;
    }
    k->router = zmq_socket(k->ctx, ZMQ_ROUTER);
    k->pub = zmq_socket(k->ctx, ZMQ_PUB);
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
    if (zmq_bind(k->router, cfg->bind) != 0) {
        ordo_log_error("server", "cannot bind %s: %s", cfg->bind, zmq_strerror(errno));
        return -1;
    }
    if (zmq_bind(k->pub, cfg->pub) != 0) {
        ordo_log_error("server", "cannot bind %s: %s", cfg->pub, zmq_strerror(errno));
        return -1;
    }
    char name[64];
    if (!(k->front_reader = s_inproc(k->ctx, ZMQ_PAIR, "inproc://ordo-reader", true)) ||
        !(k->reader_side = s_inproc(k->ctx, ZMQ_PAIR, "inproc://ordo-reader", false)))
        return -1;
    if (!(k->snap_in = s_inproc(k->ctx, ZMQ_PULL, "inproc://ordo-snapshots", true)) ||
        !(k->snap_done = s_inproc(k->ctx, ZMQ_PAIR, "inproc://ordo-snapshot-done", true)) ||
        !(k->writer_done = s_inproc(k->ctx, ZMQ_PAIR, "inproc://ordo-snapshot-done", false)))
        return -1;
    for (uint32_t i = 0; i < n; i++) {
        snprintf(name, sizeof name, "inproc://ordo-front-%u", i);
        if (!(k->front_side[i] = s_inproc(k->ctx, ZMQ_PAIR, name, true)) ||
            !(k->shard_front[i] = s_inproc(k->ctx, ZMQ_PAIR, name, false)))
            return -1;
        snprintf(name, sizeof name, "inproc://ordo-writer-%u", i);
        if (!(k->writer_side[i] = s_inproc(k->ctx, ZMQ_PAIR, name, true)) ||
            !(k->shard_writer[i] = s_inproc(k->ctx, ZMQ_PAIR, name, false)) ||
            !(k->shard_snap[i] = s_inproc(k->ctx, ZMQ_PUSH, "inproc://ordo-snapshots", false)))
            return -1;
        snprintf(name, sizeof name, "inproc://ordo-index-%u", i);
        if (!(k->index_side[i] = s_inproc(k->ctx, ZMQ_PAIR, name, true)) ||
            !(k->shard_index[i] = s_inproc(k->ctx, ZMQ_PAIR, name, false)))
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

static void s_close_sockets(s_sockets_t *k)
{
    s_close_all(k->front_side, k->n);
    s_close_all(k->shard_front, k->n);
    s_close_all(k->writer_side, k->n);
    s_close_all(k->shard_writer, k->n);
    s_close_all(k->shard_snap, k->n);
    s_close_all(k->index_side, k->n);
    s_close_all(k->shard_index, k->n);
    void *single[] = {k->router,   k->pub,          k->snap_in,    k->snap_done,
                      k->writer_done, k->front_reader, k->reader_side};
    for (size_t i = 0; i < sizeof single / sizeof *single; i++)
        if (single[i])
            zmq_close(single[i]);
    if (k->ctx)
        zmq_ctx_term(k->ctx);
}

int main(int argc, char **argv)
{
    ordo_config_t cfg;
    char err[512];
    ordo_config_defaults(&cfg);
    if (ordo_config_from_env(&cfg, err, sizeof err) != 0) {
        fprintf(stderr, "ordo-server: %s\n", err);
        return 2;
    }
    static const struct option opts[] = {{"data-dir", required_argument, 0, 'S'},
                                         {"bind", required_argument, 0, 'S'},
                                         {"pub", required_argument, 0, 'S'},
                                         {"shards", required_argument, 0, 'S'},
                                         {"fsync", required_argument, 0, 'S'},
                                         {"snapshot-every", required_argument, 0, 'S'},
                                         {"segment-bytes", required_argument, 0, 'S'},
                                         {"retain-finished", required_argument, 0, 'S'},
                                         {"repair", no_argument, 0, 'r'},
                                         {"help", no_argument, 0, 'h'},
                                         {"version", no_argument, 0, 'V'},
                                         {0, 0, 0, 0}};
    bool repair = false;
    int c, idx = 0;
    while ((c = getopt_long(argc, argv, "", opts, &idx)) != -1) {
        switch (c) {
        case 'S': /* a setting: defaults < ORDO_* < flags */
            if (ordo_config_option(&cfg, opts[idx].name, optarg, err, sizeof err) < 0) {
                fprintf(stderr, "ordo-server: %s\n", err);
                return 2;
            }
            break;
        case 'r': repair = true; break;
        case 'h': s_usage(stdout); return 0;
        case 'V': printf("ordo-server %s\n", ORDO_SERVER_VERSION); return 0;
        default: fprintf(stderr, "ordo-server: unknown option; try --help\n"); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "ordo-server: unexpected argument \"%s\"; try --help\n", argv[optind]);
        return 2;
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    char snap_dir[PATH_MAX + 16], fsync_text[32];
    ordo_config_snapshot_dir(&cfg, snap_dir, sizeof snap_dir);
    ordo_config_fsync_text(&cfg, fsync_text, sizeof fsync_text);
    uint32_t n = (uint32_t)cfg.shards;
    if (n > ORDO_SHARDS_MAX)
        n = ORDO_SHARDS_MAX;
    ordo_log_info("server",
                  "ordo-server %s: data %s, requests %s, events %s, fsync %s, %u shards, "
                  "finished orders leave memory after %llu s",
                  ORDO_SERVER_VERSION, cfg.data_dir, cfg.bind, cfg.pub, fsync_text, n,
                  (unsigned long long)cfg.retain_finished_s);

    ordo_wal_t *wal = NULL;
    ordo_registry_t *all = NULL;
    ordo_state_recovery_t srep;
    if (ordo_state_open(&cfg, repair, &wal, &all, &srep) != 0)
        return 1; /* the log line says why */

    static ordo_engine_stats_t stats;
    stats.shards = n;
    ordo_registry_t **regs = calloc(n, sizeof *regs);
    ordo_shard_t **shards = calloc(n, sizeof *shards);
    pthread_t *shard_threads = calloc(n, sizeof *shard_threads);
    bool ok = regs && shards && shard_threads;
    for (uint32_t i = 0; ok && i < n; i++)
        ok = (regs[i] = ordo_registry_new()) != NULL;
    if (!ok || ordo_registry_split(all, regs, n) != 0) {
        ordo_log_error("server", "out of memory at start");
        return 1;
    }
    ordo_registry_destroy(&all);

    char index_dir[PATH_MAX + 16];
    ordo_config_index_dir(&cfg, index_dir, sizeof index_dir);
    ordo_index_t *index = NULL;
    uint64_t t_index = ordo_mono_ns();
    if (ordo_index_open(index_dir, n, cfg.fsync_mode != ORDO_SYNC_NEVER, ordo_wal_head(wal),
                        &index) != 0)
        return 1; /* the log line says why */
    ordo_log_info("server", "order index %s: %llu orders, read in %.1f ms", index_dir,
                  (unsigned long long)ordo_index_count(index), (ordo_mono_ns() - t_index) / 1e6);

    s_sockets_t k = {0};
    if (s_open_sockets(&k, &cfg, n) != 0) {
        s_close_sockets(&k);
        return 1;
    }
    for (uint32_t i = 0; ok && i < n; i++)
        ok = (shards[i] = ordo_shard_new(i, &regs[i], wal, k.shard_front[i], k.shard_writer[i],
                                         k.shard_snap[i], &stats)) != NULL &&
             ordo_shard_retain(shards[i], index, k.shard_index[i],
                               (int64_t)cfg.retain_finished_s * 1000000) == 0;
    ordo_writer_config_t wcfg = {.wal = wal,
                                 .shards = k.writer_side,
                                 .nshards = n,
                                 .pub = k.pub,
                                 .snapshot_done = k.writer_done,
                                 .snapshot_every = cfg.snapshot_every,
                                 .clock_floor_us = srep.last_timestamp_us,
                                 .stats = &stats};
    ordo_indexer_config_t icfg = {.index = index, .nshards = n, .pipes = k.index_side};
    ordo_snapshotter_config_t scfg = {
        .dir = snap_dir, .nshards = n, .in = k.snap_in, .done = k.snap_done, .stats = &stats};
    ordo_writer_t *writer = ordo_writer_new(&wcfg);
    ordo_front_t *front = ordo_front_new(k.router, k.front_side, n, k.front_reader);
    ordo_reader_config_t rcfg = {.wal = wal, .pipe = k.reader_side, .stats = &stats.reader};
    if (!ok || !writer || !front) {
        ordo_log_error("server", "out of memory at start");
        return 1;
    }

    /* The threads block the stop signals, so they reach the main thread. */
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    pthread_t writer_thread, snap_thread, index_thread, reader_thread;
    int started = pthread_create(&writer_thread, NULL, ordo_writer_run, writer) == 0 &&
                  pthread_create(&snap_thread, NULL, ordo_snapshotter_run, &scfg) == 0 &&
                  pthread_create(&index_thread, NULL, ordo_indexer_run, &icfg) == 0 &&
                  pthread_create(&reader_thread, NULL, ordo_reader_run, &rcfg) == 0;
    for (uint32_t i = 0; started && i < n; i++)
        started = pthread_create(&shard_threads[i], NULL, ordo_shard_run, shards[i]) == 0;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (!started) {
        ordo_log_error("server", "cannot start threads: %s", strerror(errno));
        return 1;
    }
    ordo_log_info("server", "ready: requests on %s, events on %s", cfg.bind, cfg.pub);

    int rc = ordo_front_run(front, &s_stop);
    for (uint32_t i = 0; i < n; i++)
        pthread_join(shard_threads[i], NULL);
    pthread_join(writer_thread, NULL);
    pthread_join(snap_thread, NULL);
    pthread_join(index_thread, NULL);
    pthread_join(reader_thread, NULL);

    if (ordo_wal_error(wal) == 0) {
        const ordo_registry_t **all_regs = calloc(n, sizeof *all_regs);
        for (uint32_t i = 0; all_regs && i < n; i++)
            all_regs[i] = ordo_shard_registry(shards[i]);
        uint64_t t0 = ordo_mono_ns(), pos = ordo_wal_synced_head(wal);
        int src = all_regs ? ordo_state_snapshot(all_regs, n, snap_dir, pos, 2) : ORDO_ERR_NOMEM;
        if (src == 0)
            ordo_log_info("server", "snapshot at position %llu in %.1f ms", (unsigned long long)pos,
                          (ordo_mono_ns() - t0) / 1e6);
        else
            ordo_log_error("server", "snapshot failed: %s", ordo_strerror(src));
        free(all_regs);
        if (src != 0)
            rc = -1;
    }
    ordo_writer_destroy(&writer);
    s_close_sockets(&k);
    ordo_front_destroy(&front); /* after the context: it may hold counted replies */
    for (uint32_t i = 0; i < n; i++)
        ordo_shard_destroy(&shards[i]);
    free(shards);
    free(regs);
    free(shard_threads);
    ordo_index_destroy(&index);
    uint64_t head = ordo_wal_head(wal);
    ordo_wal_destroy(&wal);
    ordo_log_info("server", "stopped at position %llu", (unsigned long long)head);
    return rc == 0 ? 0 : 1;
}
