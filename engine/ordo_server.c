/* ordo-server: the engine's process. One event loop owns the ZeroMQ
 * ROUTER (requests) and PUB (events) sockets and the service: it reads
 * every request waiting on the socket (up to a batch), hands each to the
 * service, commits their events with one fsync (group commit), then sends
 * the replies in arrival order and publishes the durable events in
 * position order. SIGTERM/SIGINT stop it cleanly: requests already read
 * are answered (`unavailable` once stopping), the log is flushed and a
 * snapshot written, exit 0. */
#include "ordo_clock.h"
#include "ordo_config.h"
#include "ordo_error.h"
#include "ordo_log.h"
#include "ordo_service.h"
#include "ordo_state.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define ORDO_SERVER_VERSION "0.1.0"
#define ENVELOPE_MAX 8            /* envelope frames kept per request */
#define ENVELOPE_FRAME_MAX 256    /* bytes in one envelope frame (identities are 5) */
#define STOP_ROUNDS 16            /* rounds answered `unavailable` while stopping */
#define DRAIN_MAX 4096            /* requests read per round: the largest group commit */
#define MSG_MAX (16 * 1024 * 1024) /* peers sending more are disconnected */

static volatile sig_atomic_t s_stop;
static uint64_t s_dropped; /* messages dropped for their envelope */

static void s_on_signal(int sig)
{
    (void)sig;
    s_stop = 1;
}

typedef struct {
    int nframes;
    zmq_msg_t frames[ENVELOPE_MAX];
} s_envelope_t;

static void s_usage(FILE *out)
{
    fprintf(out,
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
            "  --repair              cut the log at mid-log corruption instead of refusing to start\n"
            "  --help, --version\n");
}

/* Receives one whole message without waiting. Returns 1 with the envelope
 * in *env and the body in *body (caller closes it), 0 if none waits, -1 on
 * a socket error. Messages with a longer envelope are dropped (1 + *body
 * empty is not possible: the last frame is always the body). */
static int s_recv(void *router, s_envelope_t *env, zmq_msg_t *body)
{
    env->nframes = 0;
    zmq_msg_init(body);
    if (zmq_msg_recv(body, router, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(body);
        return errno == EAGAIN ? 0 : -1;
    }
    bool dropped = false;
    while (zmq_msg_more(body)) {
        if (env->nframes < ENVELOPE_MAX && zmq_msg_size(body) <= ENVELOPE_FRAME_MAX) {
            zmq_msg_init(&env->frames[env->nframes]);
            zmq_msg_move(&env->frames[env->nframes++], body);
        } else {
            dropped = true;
        }
        zmq_msg_close(body);
        zmq_msg_init(body);
        if (zmq_msg_recv(body, router, 0) < 0) {
            zmq_msg_close(body);
            for (int i = 0; i < env->nframes; i++)
                zmq_msg_close(&env->frames[i]);
            return -1;
        }
    }
    if (dropped || env->nframes == 0) {
        if (s_dropped++ % 10000 == 0) /* one line per 10,000: a flood must not flood the log */
            ordo_log_warn("server",
                          "dropped a message whose envelope is over %d frames or a frame over "
                          "%d bytes (%llu so far)",
                          ENVELOPE_MAX, ENVELOPE_FRAME_MAX, (unsigned long long)s_dropped);
        for (int i = 0; i < env->nframes; i++)
            zmq_msg_close(&env->frames[i]);
        zmq_msg_close(body);
        return 2;
    }
    return 1;
}

static void s_send_replies(ordo_service_t *svc, void *router, s_envelope_t *envs)
{
    uint64_t tag;
    const void *bytes;
    size_t len;
    while (ordo_service_next_reply(svc, &tag, &bytes, &len)) {
        s_envelope_t *env = &envs[tag];
        for (int i = 0; i < env->nframes && len > 0; i++)
            zmq_msg_send(&env->frames[i], router, ZMQ_SNDMORE | ZMQ_DONTWAIT);
        if (len > 0) /* 0: the reply was lost to an out-of-memory */
            zmq_send(router, bytes, len, ZMQ_DONTWAIT);
        for (int i = 0; i < env->nframes; i++)
            zmq_msg_close(&env->frames[i]);
        env->nframes = 0;
    }
}

static void s_publish(ordo_service_t *svc, void *pub)
{
    const char *topic;
    const void *bytes;
    size_t len;
    while (ordo_service_next_event(svc, &topic, &bytes, &len)) {
        zmq_send(pub, topic, strlen(topic), ZMQ_SNDMORE | ZMQ_DONTWAIT);
        zmq_send(pub, bytes, len, ZMQ_DONTWAIT);
    }
}

/* Reads what waits (at most DRAIN_MAX), handles it, commits, answers. */
static int s_round(ordo_service_t *svc, void *router, void *pub, s_envelope_t *envs)
{
    int n = 0, reads = 0, failed = 0;
    while (n < DRAIN_MAX && reads++ < 4 * DRAIN_MAX) {
        zmq_msg_t body;
        int rc = s_recv(router, &envs[n], &body);
        if (rc == 0)
            break;
        if (rc < 0) {
            failed = 1; /* still answer what was read */
            break;
        }
        if (rc == 2)
            continue;
        ordo_service_request(svc, zmq_msg_data(&body), zmq_msg_size(&body), (uint64_t)n);
        zmq_msg_close(&body);
        n++;
    }
    ordo_service_flush(svc);
    s_send_replies(svc, router, envs);
    s_publish(svc, pub);
    return failed ? -1 : n;
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
    static const struct option opts[] = {
        {"data-dir", required_argument, 0, 'S'},       {"bind", required_argument, 0, 'S'},
        {"pub", required_argument, 0, 'S'},            {"shards", required_argument, 0, 'S'},
        {"fsync", required_argument, 0, 'S'},          {"snapshot-every", required_argument, 0, 'S'},
        {"segment-bytes", required_argument, 0, 'S'},  {"repair", no_argument, 0, 'r'},
        {"help", no_argument, 0, 'h'},                 {"version", no_argument, 0, 'V'},
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
    ordo_log_info("server", "ordo-server %s: data %s, requests %s, events %s, fsync %s",
                  ORDO_SERVER_VERSION, cfg.data_dir, cfg.bind, cfg.pub, fsync_text);

    ordo_wal_t *wal = NULL;
    ordo_registry_t *reg = NULL;
    ordo_state_recovery_t srep;
    if (ordo_state_open(&cfg, repair, &wal, &reg, &srep) != 0)
        return 1; /* the log line says why */
    ordo_service_t *svc = ordo_service_new(&reg, wal, snap_dir, cfg.snapshot_every, DRAIN_MAX,
                                           srep.last_timestamp_us);
    s_envelope_t *envs = calloc(DRAIN_MAX, sizeof *envs);
    void *ctx = zmq_ctx_new();
    void *router = ctx ? zmq_socket(ctx, ZMQ_ROUTER) : NULL;
    void *pub = ctx ? zmq_socket(ctx, ZMQ_PUB) : NULL;
    if (!svc || !envs || !router || !pub) {
        ordo_log_error("server", "out of memory at start");
        return 1;
    }
    int64_t maxmsg = MSG_MAX;
    /* High-water marks bound what one peer can make us hold. Inbound: one
     * round's worth. Outbound: room for several rounds of replies (a round
     * answers up to DRAIN_MAX requests at once, and ZeroMQ learns that a
     * peer has read only every half mark), so a client that reads gets
     * every reply; one that never reads loses those past the mark. */
    int rcv_hwm = DRAIN_MAX, snd_hwm = 4 * DRAIN_MAX, hwm = 1000, linger = 1000;
    zmq_setsockopt(router, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
    zmq_setsockopt(router, ZMQ_RCVHWM, &rcv_hwm, sizeof rcv_hwm);
    zmq_setsockopt(router, ZMQ_SNDHWM, &snd_hwm, sizeof snd_hwm);
    zmq_setsockopt(router, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(pub, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(pub, ZMQ_LINGER, &linger, sizeof linger);
    if (zmq_bind(router, cfg.bind) != 0) {
        ordo_log_error("server", "cannot bind %s: %s", cfg.bind, zmq_strerror(errno));
        return 1;
    }
    if (zmq_bind(pub, cfg.pub) != 0) {
        ordo_log_error("server", "cannot bind %s: %s", cfg.pub, zmq_strerror(errno));
        return 1;
    }
    if (cfg.shards != 1)
        ordo_log_info("server", "--shards %d: this version runs every order in one engine "
                                "thread; sharding comes next", cfg.shards);
    ordo_log_info("server", "ready: requests on %s, events on %s", cfg.bind, cfg.pub);

    zmq_pollitem_t items[] = {{router, 0, ZMQ_POLLIN, 0}};
    while (!s_stop) {
        long timeout = 1000;
        if (cfg.fsync_mode == ORDO_SYNC_BATCH) {
            int64_t due = ordo_wal_sync_due_in_ms(wal);
            if (due >= 0 && due < timeout)
                timeout = (long)due;
        }
        int n = zmq_poll(items, 1, timeout);
        if (n < 0 && errno != EINTR) {
            ordo_log_error("server", "poll: %s", zmq_strerror(errno));
            break;
        }
        if (cfg.fsync_mode == ORDO_SYNC_BATCH)
            ordo_wal_sync_if_due(wal);
        if (n > 0 && s_round(svc, router, pub, envs) < 0) {
            ordo_log_error("server", "receive: %s", zmq_strerror(errno));
            break;
        }
    }

    ordo_log_info("server", "stopping: answering what was read, flushing, snapshotting");
    ordo_service_stop(svc);
    /* Bounded: a client that keeps sending must not keep us alive. */
    for (int i = 0; i < STOP_ROUNDS && s_round(svc, router, pub, envs) > 0; i++)
        ;
    int rc = ordo_service_snapshot(svc);
    zmq_close(router);
    zmq_close(pub);
    zmq_ctx_term(ctx);
    ordo_service_destroy(&svc);
    free(envs);
    uint64_t head = ordo_wal_head(wal);
    ordo_wal_destroy(&wal);
    ordo_log_info("server", "stopped at position %llu", (unsigned long long)head);
    return rc == 0 ? 0 : 1;
}
