/* ordo-server: the engine's process. It reads its settings, starts the
 * engine (ordo_engine.h: recovery, then the front end, shard, writer,
 * snapshotter, indexer and reader threads) and waits for SIGTERM/SIGINT,
 * which stop it cleanly: requests in flight are finished, new ones get
 * `unavailable`, the log is synced, a snapshot is written, exit 0. */
#include "ordo_auth.h"
#include "ordo_config.h"
#include "ordo_engine.h"
#include "ordo_exposure.h"
#include "ordo_limits.h"
#include "ordo_log.h"
#include "ordo_metrics_http.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ORDO_SERVER_VERSION "0.2.0"

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
        "  --fsync MODE          always | batch:MS | never | replicated (default always;\n"
        "                        ORDO_FSYNC). replicated: acknowledged once on the local\n"
        "                        disk and in NATS JetStream (needs --nats)\n"
        "  --snapshot-every N    events between snapshots; 0 = only at shutdown\n"
        "                        (default 1000000; ORDO_SNAPSHOT_EVERY)\n"
        "  --segment-bytes N     log segment size, >= 65536 (default 64 MiB; ORDO_SEGMENT_BYTES)\n"
        "  --retain-finished S   a Delivered or Cancelled order leaves memory S seconds after\n"
        "                        its last event, for the order index on disk; 0 = once\n"
        "                        durable (default 600; ORDO_RETAIN_FINISHED)\n"
        "  --curve-secret FILE   CURVE: the server's secret certificate (ordo-keygen's\n"
        "                        PATH_secret; ORDO_CURVE_SECRET)\n"
        "  --curve-clients DIR   CURVE: the folder of client certificates let in, read at\n"
        "                        start (ORDO_CURVE_CLIENTS). With both, requests and events\n"
        "                        are encrypted and any other peer gets nothing.\n"
        "  --insecure            bind beyond loopback without CURVE (refused otherwise)\n"
        "  --metrics HOST:PORT   serve Prometheus metrics at http://HOST:PORT/metrics (such as\n"
        "                        127.0.0.1:9464; ORDO_METRICS). Read-only counters, no\n"
        "                        authentication: keep it on loopback or a trusted network.\n"
        "  --nats URLS           NATS servers (nats://HOST:PORT,...) whose JetStream keeps a\n"
        "                        copy of the log, stream ORDO_P0 (ORDO_NATS; docs/cluster.md)\n"
        "  --nats-replicas N     replicas of the stream when this engine makes it, 1 to 5\n"
        "                        (default 3; ORDO_NATS_REPLICAS)\n"
        "  --repair              cut the log at mid-log corruption instead of refusing to start\n"
        "  --help, --version\n");
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
                                         {"curve-secret", required_argument, 0, 'S'},
                                         {"curve-clients", required_argument, 0, 'S'},
                                         {"metrics", required_argument, 0, 'S'},
                                         {"nats", required_argument, 0, 'S'},
                                         {"nats-replicas", required_argument, 0, 'S'},
                                         {"insecure", no_argument, 0, 'i'},
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
        case 'i': cfg.insecure = true; break;
        case 'h': s_usage(stdout); return 0;
        case 'V': printf("ordo-server %s\n", ORDO_SERVER_VERSION); return 0;
        default: fprintf(stderr, "ordo-server: unknown option; try --help\n"); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "ordo-server: unexpected argument \"%s\"; try --help\n", argv[optind]);
        return 2;
    }
    if (ordo_config_check(&cfg, err, sizeof err) != 0) {
        fprintf(stderr, "ordo-server: %s\n", err);
        return 2;
    }
    /* The stop signals are taken by sigtimedwait below, never delivered;
     * blocked before any thread starts (czmq's zauth included), so every
     * thread inherits the mask. */
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
    signal(SIGPIPE, SIG_IGN);

    ordo_auth_t *auth = NULL;
    if (cfg.curve_secret[0] &&
        !(auth = ordo_auth_new(cfg.curve_secret, cfg.curve_clients, err, sizeof err))) {
        fprintf(stderr, "ordo-server: %s\n", err);
        return 2;
    }

    char fsync_text[32];
    ordo_config_fsync_text(&cfg, fsync_text, sizeof fsync_text);
    uint32_t n = (uint32_t)cfg.shards;
    if (n > ORDO_SHARDS_MAX)
        n = ORDO_SHARDS_MAX;
    ordo_log_info("server",
                  "ordo-server %s: data %s, requests %s, events %s, fsync %s, %u shards, "
                  "finished orders leave memory after %llu s",
                  ORDO_SERVER_VERSION, cfg.data_dir, cfg.bind, cfg.pub, fsync_text, n,
                  (unsigned long long)cfg.retain_finished_s);
    if (auth) {
        char key[41];
        ordo_auth_public_text(auth, key);
        ordo_log_info("server", "CURVE: server key %s, %zu client keys let in from %s", key,
                      ordo_auth_clients(auth), cfg.curve_clients);
    } else if (cfg.insecure) {
        ordo_log_warn("server", "--insecure: anyone who reaches %s and %s may send commands",
                      cfg.bind, cfg.pub);
    }
    ordo_engine_options_t eopts = {.cfg = cfg, .repair = repair, .auth = auth};
    ordo_engine_t *engine = NULL;
    if (ordo_engine_start(&eopts, &engine) != 0) {
        ordo_auth_destroy(&auth);
        return 1; /* the log lines say why */
    }
    ordo_metrics_http_t *metrics = NULL;
    if (cfg.metrics[0]) { /* after the engine: it renders the engine's counters */
        if (!(metrics = ordo_metrics_http_start(cfg.metrics, ordo_engine_metrics, engine, err,
                                                sizeof err))) {
            ordo_log_error("server", "%s", err);
            ordo_engine_stop(engine);
            ordo_engine_destroy(&engine);
            ordo_auth_destroy(&auth);
            return 1;
        }
        if (!ordo_hostport_is_local(cfg.metrics))
            ordo_log_warn("server", "metrics on %s are readable by anyone who reaches it",
                          cfg.metrics);
        ordo_log_info("server", "metrics on http://%s/metrics (port %u)", cfg.metrics,
                      (unsigned)ordo_metrics_http_port(metrics));
    }
    ordo_log_info("server", "ready: requests on %s, events on %s", cfg.bind, cfg.pub);

    /* Wait for a stop signal, or for the engine to fail by itself. */
    const struct timespec tick = {0, 200 * 1000 * 1000};
    int sig = -1;
    while (sig < 0 && !ordo_engine_failed(engine))
        sig = sigtimedwait(&stop_signals, NULL, &tick);
    if (sig > 0)
        ordo_log_info("server", "%s: stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    ordo_metrics_http_stop(&metrics); /* before the engine it reads */
    int rc = ordo_engine_stop(engine);
    ordo_engine_destroy(&engine);
    ordo_auth_destroy(&auth); /* after the sockets it guards are closed */
    return rc == 0 ? 0 : 1;
}
