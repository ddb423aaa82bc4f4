/* ordo-demo: the engine end to end in one process. It starts the engine
 * (ordo_engine.h: the same recovery, threads and command path as
 * ordo-server) on the data folder, with requests over inproc://, drives
 * new orders through their whole lives through it, stops it (log synced,
 * snapshot written), then proves recovery: the newest snapshot plus the
 * log, and a full replay of the log from position 1, must rebuild the same
 * state. */
#include "ordo_clock.h"
#include "ordo_config.h"
#include "ordo_error.h"
#include "ordo_drive.h"
#include "ordo_engine.h"
#include "ordo_log.h"
#include "ordo_state.h"
#include "ordo_workload.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ORDO_DEMO_VERSION "0.2.0"

static void s_usage(FILE *out)
{
    fprintf(out,
            "Usage: ordo-demo [OPTIONS]\n"
            "Runs the engine in this process, drives orders through their lives, stops it\n"
            "and proves recovery.\n"
            "\n"
            "  --data-dir DIR         data folder (default ./data; ORDO_DATA_DIR)\n"
            "  --orders N             new orders to drive through their lives (default 20000)\n"
            "  --window N             requests in flight (default 256)\n"
            "  --shards N             shard threads (default: cores; ORDO_SHARDS)\n"
            "  --fsync MODE           always | batch:MS | never (default always; ORDO_FSYNC)\n"
            "  --snapshot-every N     events between snapshots (default 1000000; 0 = only at\n"
            "                         the end; ORDO_SNAPSHOT_EVERY)\n"
            "  --segment-bytes N      log segment size, >= 65536 (default 64 MiB;\n"
            "                         ORDO_SEGMENT_BYTES)\n"
            "  --repair               truncate the log at mid-log corruption instead of refusing\n"
            "  --json                 print the summary as one JSON object\n"
            "  --help, --version\n");
}

int main(int argc, char **argv)
{
    ordo_config_t cfg;
    char err[512];
    ordo_config_defaults(&cfg);
    if (ordo_config_from_env(&cfg, err, sizeof err) != 0) {
        fprintf(stderr, "ordo-demo: %s\n", err);
        return 2;
    }
    static const struct option opts[] = {{"data-dir", required_argument, 0, 'S'},
                                         {"orders", required_argument, 0, 'o'},
                                         {"window", required_argument, 0, 'b'},
                                         {"shards", required_argument, 0, 'S'},
                                         {"fsync", required_argument, 0, 'S'},
                                         {"snapshot-every", required_argument, 0, 'S'},
                                         {"segment-bytes", required_argument, 0, 'S'},
                                         {"repair", no_argument, 0, 'r'},
                                         {"json", no_argument, 0, 'j'},
                                         {"help", no_argument, 0, 'h'},
                                         {"version", no_argument, 0, 'V'},
                                         {0, 0, 0, 0}};
    long orders = 20000, window = 256;
    bool json = false, repair = false;
    int c, idx = 0;
    while ((c = getopt_long(argc, argv, "", opts, &idx)) != -1) {
        switch (c) {
        case 'S': /* a setting shared with ordo-server */
            if (ordo_config_option(&cfg, opts[idx].name, optarg, err, sizeof err) < 0) {
                fprintf(stderr, "ordo-demo: %s\n", err);
                return 2;
            }
            continue;
        case 'o':
        case 'b': {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*end || v < 1 || v > 100000000) {
                fprintf(stderr, "ordo-demo: --%s must be a number from 1 to 100000000\n",
                        c == 'o' ? "orders" : "window");
                return 2;
            }
            *(c == 'o' ? &orders : &window) = v;
            continue;
        }
        case 'r': repair = true; continue;
        case 'j': json = true; continue;
        case 'h': s_usage(stdout); return 0;
        case 'V': printf("ordo-demo %s\n", ORDO_DEMO_VERSION); return 0;
        default: fprintf(stderr, "ordo-demo: unknown option; try --help\n"); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "ordo-demo: unexpected argument \"%s\"; try --help\n", argv[optind]);
        return 2;
    }

    /* Requests go over inproc:// in the engine's own context. */
    snprintf(cfg.bind, sizeof cfg.bind, "inproc://ordo-demo");
    snprintf(cfg.pub, sizeof cfg.pub, "inproc://ordo-demo-events");
    char snap_dir[PATH_MAX + 16], fsync_text[32];
    ordo_config_snapshot_dir(&cfg, snap_dir, sizeof snap_dir);
    ordo_engine_options_t eopts = {.cfg = cfg, .repair = repair};
    ordo_engine_t *engine = NULL;
    if (ordo_engine_start(&eopts, &engine) != 0) {
        fprintf(stderr, "ordo-demo: cannot start the engine (see the log lines above)\n");
        return 1;
    }

    /* Drive new orders through their lives. */
    ordo_workload_t *work = ordo_workload_new(ordo_mono_ns() ^ (uint64_t)ordo_now_us(),
                                              orders < 1000 ? (uint32_t)orders : 1000);
    if (!work) {
        fprintf(stderr, "ordo-demo: out of memory\n");
        return 1;
    }
    ordo_workload_limit(work, (uint64_t)orders);
    ordo_drive_options_t dopts = {.zmq_ctx = ordo_engine_zmq_context(engine),
                                  .endpoint = cfg.bind,
                                  .window = (uint32_t)window,
                                  .timeout_ms = 30000};
    uint64_t start_head = ordo_engine_head(engine), t0 = ordo_mono_ns();
    ordo_drive_report_t total = {0}, part;
    int drc = 0;
    do { /* in parts of 100,000 commands, for a progress line each */
        drc = ordo_drive(&dopts, work, 100000, &part);
        total.sent += part.sent;
        total.ok += part.ok;
        total.refused += part.refused;
        total.unavailable += part.unavailable + part.bad + part.unanswered;
        if (part.sent == 100000)
            ordo_log_info("demo", "%llu commands, %llu events appended",
                          (unsigned long long)total.sent,
                          (unsigned long long)(ordo_engine_head(engine) - start_head));
    } while (drc == 0 && part.sent == 100000 && part.unavailable == 0);
    double secs = (double)(ordo_mono_ns() - t0) / 1e9;
    uint64_t head = ordo_engine_head(engine), appended = head - start_head;
    int src = ordo_engine_stop(engine);
    ordo_engine_destroy(&engine);
    ordo_workload_destroy(&work);
    if (drc != 0 || total.unavailable > 0 || src != 0) {
        fprintf(stderr,
                "ordo-demo: the engine failed: %llu commands not carried out "
                "(see the log lines above)\n",
                (unsigned long long)total.unavailable);
        return 1;
    }

    /* Prove recovery: the snapshot plus the log, and a full replay from
     * position 1, must give the same state. */
    ordo_wal_t *wal = NULL;
    ordo_registry_t *from_snap = NULL;
    ordo_state_recovery_t fast;
    if (ordo_state_open(&cfg, false, NULL, &wal, &from_snap, &fast) != 0) {
        fprintf(stderr, "ordo-demo: cannot reopen the data folder (see the log line above)\n");
        return 1;
    }
    ordo_registry_t *replayed = ordo_registry_new();
    ordo_state_recovery_t full;
    int rc = replayed ? ordo_state_recover(replayed, wal, NULL, &full) : ORDO_ERR_NOMEM;
    uint64_t diff = rc == 0 ? ordo_state_differences(from_snap, replayed) : UINT64_MAX;

    fsync_text[0] = '\0';
    ordo_config_fsync_text(&cfg, fsync_text, sizeof fsync_text);
    if (json) {
        printf("{\"data_dir\":\"%s\",\"fsync\":\"%s\",\"orders\":%zu,\"head_position\":%llu,"
               "\"events_appended\":%llu,\"rejected_commands\":%llu,\"seconds\":%.3f,"
               "\"events_per_second\":%.0f,\"snapshot_position\":%llu,\"full_replay_ms\":%.1f,"
               "\"snapshot_recovery_ms\":%.1f,\"state_matches\":%s}\n",
               cfg.data_dir, fsync_text, ordo_registry_count(replayed), (unsigned long long)head,
               (unsigned long long)appended, (unsigned long long)total.refused, secs,
               appended / secs, (unsigned long long)fast.snapshot_position,
               full.elapsed_us / 1000.0, fast.elapsed_us / 1000.0, diff == 0 ? "true" : "false");
    } else {
        printf("Ordo demo (data folder %s, fsync %s)\n", cfg.data_dir, fsync_text);
        printf("  appended        %llu events in %.2f s (%.0f events/s), %llu commands "
               "refused\n",
               (unsigned long long)appended, secs, appended / secs,
               (unsigned long long)total.refused);
        printf("  state           %zu orders, log head at position %llu\n",
               ordo_registry_count(replayed), (unsigned long long)head);
        printf("  from snapshot   position %llu + %llu events in %.1f ms\n",
               (unsigned long long)fast.snapshot_position, (unsigned long long)fast.events_replayed,
               fast.elapsed_us / 1000.0);
        printf("  full replay     %llu events in %.1f ms: %s\n",
               (unsigned long long)full.events_replayed, full.elapsed_us / 1000.0,
               diff == 0 ? "same state" : "STATE DIFFERS");
        printf("Run it again: it recovers what is there and adds more.\n");
    }
    ordo_registry_destroy(&replayed);
    ordo_registry_destroy(&from_snap);
    ordo_wal_destroy(&wal);
    return diff == 0 ? 0 : 1;
}
