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

#include <execinfo.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ORDO_SERVER_VERSION "0.2.0"

#include "ordo_lease.h"
#include "ordo_partmap.h"
#include "ordo_standby.h"

#include <unistd.h>

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
        "                        copy of the log, stream ORDO_P<K> (ORDO_NATS; docs/cluster.md)\n"
        "  --partition K/P       with --nats: serve partition K of the cluster's P (default\n"
        "                        0/1; ORDO_PARTITION). An order belongs to one partition (a\n"
        "                        fixed hash of its id); requests on another's orders get\n"
        "                        wrong_partition with the map of owners\n"
        "  --advertise HOST      the host clients reach this engine at, for the partition map\n"
        "                        (default: --bind's host, or this machine's name when it\n"
        "                        binds every interface; ORDO_ADVERTISE)\n"
        "  --nats-replicas N     replicas of the stream when this engine makes it, 1 to 5\n"
        "                        (default 3; ORDO_NATS_REPLICAS)\n"
        "  --lease-ms MS         with --nats: the partition's owner holds a lease it renews;\n"
        "                        a standby takes over MS after the owner stops renewing it\n"
        "                        (500 to 60000, default 2000; ORDO_LEASE_MS). An engine\n"
        "                        started while another owns the partition stands by.\n"
        "  --repair              cut the log at mid-log corruption instead of refusing to start\n"
        "  --help, --version\n");
}

/* An abort (a failed check in a library, or ours) says so in the log, with
 * the stack, before the process dies: otherwise it only shows as exit
 * status -6. backtrace_symbols_fd writes without allocating. */
static void s_on_abort(int sig)
{
    static const char line[] = "ordo-server: aborted (SIGABRT); the stack:\n";
    if (write(2, line, sizeof line - 1) < 0) {
    }
    void *frames[64];
    int n = backtrace(frames, 64);
    backtrace_symbols_fd(frames, n, 2);
    signal(sig, SIG_DFL);
    raise(sig);
}

/* A stop signal has come (standby: checked between messages). */
static bool s_stop_asked(void *ctx)
{
    const struct timespec now = {0, 0};
    int sig = sigtimedwait((const sigset_t *)ctx, NULL, &now);
    if (sig > 0)
        ordo_log_info("server", "%s: stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    return sig > 0;
}

/* Runs as the standby (it recovers the log and follows the stream) until
 * it has caught up and the lease is free, then takes the lease, catches
 * up with the stream and claims it before the engine starts
 * (ordo_standby.h). 0: this engine owns the partition, with the state in
 * *given; 1: stopped by a signal while standby; -1: failed (logged). */
static int s_own_or_follow(const ordo_config_t *cfg, ordo_lease_t **lease,
                           ordo_engine_state_t *given, sigset_t *stop_signals)
{
    char holder[600], err[800], endpoint[ORDO_PARTMAP_ENDPOINT_MAX],
        pub[ORDO_PARTMAP_ENDPOINT_MAX];
    /* The lease value names where clients reach the owner: the map. */
    ordo_config_advertised(cfg, cfg->bind, endpoint, sizeof endpoint);
    ordo_config_advertised(cfg, cfg->pub, pub, sizeof pub);
    if (ordo_partmap_holder(holder, sizeof holder, endpoint, pub, (long)getpid()) != 0) {
        ordo_log_error("server", "the endpoints %s and %s cannot go in the partition map (a "
                       "space, or longer than %d bytes)", endpoint, pub,
                       ORDO_PARTMAP_ENDPOINT_MAX - 1);
        return -1;
    }
    ordo_lease_options_t lo = {.servers = cfg->nats,
                               .partition = cfg->partition,
                               .replicas = cfg->nats_replicas,
                               .ttl_ms = (int)cfg->lease_ms,
                               .holder = holder};
    if (ordo_lease_open(&lo, lease, err, sizeof err) != 0) {
        ordo_log_error("server", "the partition's lease: %s", err);
        return -1;
    }
    ordo_log_info("server", "partition %u of %u: following its stream, then asking for its "
                  "lease", cfg->partition, cfg->partitions);
    int rc = ordo_standby_run(cfg, *lease, s_stop_asked, stop_signals, given);
    if (rc != 0 && ordo_lease_revision(*lease))
        ordo_lease_release(*lease); /* taken but not used: free for another */
    return rc;
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
                                         {"lease-ms", required_argument, 0, 'S'},
                                         {"partition", required_argument, 0, 'S'},
                                         {"advertise", required_argument, 0, 'S'},
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
    void *warm[1];
    backtrace(warm, 1); /* loads libgcc now, not in the handler */
    signal(SIGABRT, s_on_abort);

    ordo_auth_t *auth = NULL;
    if (cfg.curve_secret[0] &&
        !(auth = ordo_auth_new(cfg.curve_secret, cfg.curve_clients, err, sizeof err))) {
        fprintf(stderr, "ordo-server: %s\n", err);
        return 2;
    }

    char fsync_text[32];
    ordo_config_fsync_text(&cfg, fsync_text, sizeof fsync_text);
    uint32_t n = ordo_config_shard_count(&cfg);
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
    /* --nats: the partition's lease says who owns it. Without it, this
     * engine is the standby until it takes the lease. */
    ordo_lease_t *lease = NULL;
    ordo_engine_state_t given = {.lock_fd = -1};
    if (cfg.nats[0]) {
        int rc = s_own_or_follow(&cfg, &lease, &given, &stop_signals);
        if (rc != 0) {
            ordo_lease_close(&lease);
            ordo_auth_destroy(&auth);
            return rc == 1 ? 0 : 1; /* stopped while standby, or failed (logged) */
        }
    }
    ordo_engine_options_t eopts = {.cfg = cfg,
                                   .repair = repair,
                                   .auth = auth,
                                   .state = lease ? &given : NULL,
                                   .lease = lease ? ordo_lease_revision(lease) : 0,
                                   .claimed = lease != NULL};
    ordo_engine_t *engine = NULL;
    if (ordo_engine_start(&eopts, &engine) != 0) {
        ordo_lease_release(lease); /* free for a standby at once */
        ordo_lease_close(&lease);
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

    /* Wait for a stop signal, or for the engine to fail by itself; with a
     * lease, renew it, and step down if it is lost. */
    const struct timespec tick = {0, 100 * 1000 * 1000};
    int sig = -1;
    bool deposed = false, failed = false;
    while (sig < 0 && !ordo_engine_failed(engine) && !deposed) {
        sig = sigtimedwait(&stop_signals, NULL, &tick);
        if (lease && ordo_lease_lost(lease)) { /* its keeper thread found out */
            ordo_log_error("server", "the partition's lease is lost: stepping down");
            deposed = true;
        }
        if (lease && !deposed && ordo_engine_log_failed(engine)) {
            /* It cannot write: let another engine own the partition. */
            ordo_log_error("server", "the log or its replication failed: stepping down");
            deposed = failed = true;
        }
    }
    if (sig > 0)
        ordo_log_info("server", "%s: stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    ordo_metrics_http_stop(&metrics); /* before the engine it reads */
    int rc = ordo_engine_stop(engine);
    ordo_engine_destroy(&engine);
    if (lease && (!deposed || failed))
        ordo_lease_release(lease); /* still ours: the standby takes over at once */
    ordo_lease_close(&lease);
    ordo_auth_destroy(&auth); /* after the sockets it guards are closed */
    return deposed ? 3 : rc == 0 ? 0 : 1;
}
