/* ordo-demo: the foundation end to end, until ordo-server exists. It opens
 * (and recovers) the log in the data folder, rebuilds state from the newest
 * snapshot plus the log, drives new orders through their whole lives with
 * group commit, takes snapshots, then proves recovery: a full replay of the
 * log from position 1 must rebuild exactly the state it holds. */
#include "ordo_clock.h"
#include "ordo_config.h"
#include "ordo_error.h"
#include "ordo_local.h"
#include "ordo_log.h"
#include "ordo_state.h"
#include "ordo_workload.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ORDO_DEMO_VERSION "0.1.0"

static void s_usage(FILE *out)
{
    fprintf(out,
            "Usage: ordo-demo [OPTIONS]\n"
            "Writes order lifecycles to Ordo's log, snapshots, and proves recovery.\n"
            "\n"
            "  --data-dir DIR         data folder (default ./data; ORDO_DATA_DIR)\n"
            "  --orders N             new orders to drive through their lives (default 20000)\n"
            "  --batch N              events per group commit (default 256)\n"
            "  --fsync MODE           always | batch:MS | never (default always; ORDO_FSYNC)\n"
            "  --snapshot-every N     events between snapshots (default 1000000; 0 = only at\n"
            "                         the end; ORDO_SNAPSHOT_EVERY)\n"
            "  --segment-bytes N      log segment size, >= 65536 (default 64 MiB;\n"
            "                         ORDO_SEGMENT_BYTES)\n"
            "  --repair               truncate the log at mid-log corruption instead of refusing\n"
            "  --json                 print the summary as one JSON object\n"
            "  --help, --version\n");
}

/* Compares two registries order by order: same orders, versions, states. */
static uint64_t s_differences(const ordo_registry_t *a, const ordo_registry_t *b)
{
    uint64_t diff = ordo_registry_count(a) > ordo_registry_count(b)
                        ? ordo_registry_count(a) - ordo_registry_count(b)
                        : ordo_registry_count(b) - ordo_registry_count(a);
    size_t cursor = 0;
    const ordo_order_t *x;
    while ((x = ordo_registry_next(a, &cursor)) != NULL) {
        const ordo_order_t *y = ordo_registry_find(b, (ordo_str_t){x->order_id, x->order_id_len});
        if (!y || y->version != x->version || y->status != x->status ||
            y->total_cents != x->total_cents || y->updated_at_us != x->updated_at_us ||
            y->n_items != x->n_items)
            diff++;
    }
    return diff;
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
                                         {"batch", required_argument, 0, 'b'},
                                         {"fsync", required_argument, 0, 'S'},
                                         {"snapshot-every", required_argument, 0, 'S'},
                                         {"segment-bytes", required_argument, 0, 'S'},
                                         {"repair", no_argument, 0, 'r'},
                                         {"json", no_argument, 0, 'j'},
                                         {"help", no_argument, 0, 'h'},
                                         {"version", no_argument, 0, 'V'},
                                         {0, 0, 0, 0}};
    long orders = 20000, batch = 256;
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
                        c == 'o' ? "orders" : "batch");
                return 2;
            }
            *(c == 'o' ? &orders : &batch) = v;
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

    char snap_dir[PATH_MAX + 16], fsync_text[32];
    ordo_config_snapshot_dir(&cfg, snap_dir, sizeof snap_dir);
    ordo_wal_t *wal = NULL;
    ordo_registry_t *live = NULL;
    ordo_state_recovery_t srep;
    int rc = ordo_state_open(&cfg, repair, &wal, &live, &srep);
    if (rc != 0) {
        fprintf(stderr, "ordo-demo: cannot start: %s (see the log line above)\n",
                ordo_strerror(rc));
        return 1;
    }

    /* Drive new orders through their lives. */
    ordo_local_t *local = ordo_local_new(live, wal, (uint32_t)batch);
    if (local)
        ordo_local_set_clock_floor(local, srep.last_timestamp_us);
    ordo_workload_t *work = ordo_workload_new(ordo_mono_ns() ^ (uint64_t)ordo_now_us(),
                                              orders < 1000 ? (uint32_t)orders : 1000);
    ordo_request_t *req = malloc(sizeof *req);
    if (!local || !work || !req) {
        fprintf(stderr, "ordo-demo: out of memory\n");
        return 1;
    }
    uint64_t start_head = ordo_wal_head(wal), t0 = ordo_mono_ns(), errors = 0, snapshots = 0;
    uint64_t next_snapshot = cfg.snapshot_every ? start_head + cfg.snapshot_every : UINT64_MAX;
    uint64_t next_progress = 100000;
    ordo_workload_limit(work, (uint64_t)orders);
    while (ordo_workload_next(work, req)) {
        ordo_error_t e;
        if (ordo_local_submit(local, req, &e) == ORDO_DECIDE_ERROR) {
            if (e.code == ORDO_CODE_UNAVAILABLE) {
                fprintf(stderr, "ordo-demo: %s\n", e.message);
                return 1;
            }
            errors++;
        }
        if (ordo_wal_head(wal) >= next_snapshot) {
            if (ordo_local_flush(local) == 0 && ordo_wal_sync(wal) == 0 &&
                ordo_state_snapshot((const ordo_registry_t *const[]){live}, 1, snap_dir,
                                    ordo_wal_synced_head(wal), 2) == 0)
                snapshots++;
            next_snapshot = ordo_wal_head(wal) + cfg.snapshot_every;
        }
        if (ordo_local_events(local) >= next_progress) {
            ordo_log_info("demo", "%llu events appended", (unsigned long long)next_progress);
            next_progress += 100000;
        }
    }
    if (ordo_local_flush(local) != 0) {
        fprintf(stderr, "ordo-demo: the log cannot be written: %s\n",
                ordo_strerror(ordo_wal_error(wal)));
        return 1;
    }
    double secs = (double)(ordo_mono_ns() - t0) / 1e9;
    uint64_t appended = ordo_wal_head(wal) - start_head, frames, fsyncs, bytes;
    ordo_wal_stats(wal, &frames, &fsyncs, &bytes);
    if (ordo_wal_sync(wal) == 0 && ordo_state_snapshot((const ordo_registry_t *const[]){live}, 1,
                                                       snap_dir, ordo_wal_synced_head(wal), 2) == 0)
        snapshots++;

    /* Prove recovery: full replay from position 1 must give the same state. */
    ordo_registry_t *replayed = ordo_registry_new();
    ordo_state_recovery_t full;
    rc = ordo_state_recover(replayed, wal, NULL, &full);
    uint64_t diff = rc == 0 ? s_differences(live, replayed) : UINT64_MAX;
    ordo_registry_t *from_snap = ordo_registry_new();
    ordo_state_recovery_t fast;
    int rc2 = ordo_state_recover(from_snap, wal, snap_dir, &fast);
    uint64_t diff2 = rc2 == 0 ? s_differences(live, from_snap) : UINT64_MAX;

    fsync_text[0] = '\0';
    ordo_config_fsync_text(&cfg, fsync_text, sizeof fsync_text);
    if (json) {
        printf("{\"data_dir\":\"%s\",\"fsync\":\"%s\",\"orders\":%zu,\"head_position\":%llu,"
               "\"events_appended\":%llu,\"rejected_commands\":%llu,\"seconds\":%.3f,"
               "\"events_per_second\":%.0f,\"frames\":%llu,\"fsyncs\":%llu,\"bytes_written\":%llu,"
               "\"snapshots\":%llu,\"full_replay_ms\":%.1f,\"snapshot_recovery_ms\":%.1f,"
               "\"state_matches\":%s}\n",
               cfg.data_dir, fsync_text, ordo_registry_count(live),
               (unsigned long long)ordo_wal_head(wal), (unsigned long long)appended,
               (unsigned long long)errors, secs, appended / secs, (unsigned long long)frames,
               (unsigned long long)fsyncs, (unsigned long long)bytes, (unsigned long long)snapshots,
               full.elapsed_us / 1000.0, fast.elapsed_us / 1000.0,
               diff == 0 && diff2 == 0 ? "true" : "false");
    } else {
        printf("Ordo demo (data folder %s, fsync %s)\n", cfg.data_dir, fsync_text);
        printf(
            "  appended        %llu events in %.2f s (%.0f events/s), %llu frames, %llu fsyncs\n",
            (unsigned long long)appended, secs, appended / secs, (unsigned long long)frames,
            (unsigned long long)fsyncs);
        printf("  on disk         %llu bytes this run (%.1f bytes/event)\n",
               (unsigned long long)bytes, appended ? (double)bytes / (double)appended : 0.0);
        printf("  state           %zu orders, log head at position %llu\n",
               ordo_registry_count(live), (unsigned long long)ordo_wal_head(wal));
        printf("  full replay     %llu events in %.1f ms: %s\n",
               (unsigned long long)full.events_replayed, full.elapsed_us / 1000.0,
               diff == 0 ? "same state" : "STATE DIFFERS");
        printf("  from snapshot   position %llu + %llu events in %.1f ms: %s\n",
               (unsigned long long)fast.snapshot_position, (unsigned long long)fast.events_replayed,
               fast.elapsed_us / 1000.0, diff2 == 0 ? "same state" : "STATE DIFFERS");
        printf("Run it again: it recovers what is there and adds more.\n");
    }
    free(req);
    ordo_workload_destroy(&work);
    ordo_local_destroy(&local);
    ordo_registry_destroy(&live);
    ordo_registry_destroy(&replayed);
    ordo_registry_destroy(&from_snap);
    ordo_wal_destroy(&wal);
    return diff == 0 && diff2 == 0 ? 0 : 1;
}
