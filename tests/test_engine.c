/* Tests for engine/: settings (defaults < environment < flags, refusals),
 * tags, and the engine itself in this process (ordo_test_engine.h) with
 * recovery (ordo_state): snapshot + tail and a full replay rebuild the
 * same state, a corrupt snapshot falls back, a snapshot of events the log
 * lost is never trusted, the protocol's rules hold across restarts,
 * timestamps never go below the log's. Failures are in test_faults.c. */
#include "ordo_batch.h"
#include "ordo_codec.h"
#include "ordo_config.h"
#include "ordo_error.h"
#include "ordo_folder_aside.h"
#include "ordo_log.h"
#include "ordo_snapshot.h"
#include "ordo_state.h"
#include "ordo_test.h"
#include "ordo_test_engine.h"
#include "ordo_workload.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void test_config_layers(void)
{
    ordo_config_t cfg;
    char err[256];
    ordo_config_defaults(&cfg);
    CU_ASSERT_STRING_EQUAL(cfg.data_dir, "./data");
    CU_ASSERT_STRING_EQUAL(cfg.bind, "tcp://127.0.0.1:7700");
    CU_ASSERT_STRING_EQUAL(cfg.pub, "tcp://127.0.0.1:7701");
    CU_ASSERT_EQUAL(cfg.fsync_mode, ORDO_SYNC_ALWAYS);
    CU_ASSERT(cfg.shards >= 1);
    setenv("ORDO_FSYNC", "batch:5", 1);
    setenv("ORDO_SEGMENT_BYTES", "65536", 1);
    CU_ASSERT_EQUAL(ordo_config_from_env(&cfg, err, sizeof err), 0);
    CU_ASSERT_EQUAL(cfg.fsync_mode, ORDO_SYNC_BATCH);
    CU_ASSERT_EQUAL(cfg.fsync_ms, 5);
    CU_ASSERT_EQUAL(cfg.segment_bytes, 65536);
    CU_ASSERT_EQUAL(cfg.retain_finished_s, 600);
    CU_ASSERT_EQUAL(ordo_config_set(&cfg, "retain-finished", "0", err, sizeof err), 0);
    CU_ASSERT_EQUAL(cfg.retain_finished_s, 0);
    /* a flag applied after the environment wins */
    CU_ASSERT_EQUAL(ordo_config_set(&cfg, "fsync", "never", err, sizeof err), 0);
    CU_ASSERT_EQUAL(cfg.fsync_mode, ORDO_SYNC_NEVER);
    setenv("ORDO_SEGMENT_BYTES", "1000", 1);
    CU_ASSERT_EQUAL(ordo_config_from_env(&cfg, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "ORDO_SEGMENT_BYTES"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "65536"));
    unsetenv("ORDO_FSYNC");
    unsetenv("ORDO_SEGMENT_BYTES");
    /* The flag helper: settings handled, other options left alone. */
    CU_ASSERT_EQUAL(ordo_config_option(&cfg, "fsync", "batch:7", err, sizeof err), 1);
    CU_ASSERT_EQUAL(cfg.fsync_ms, 7);
    CU_ASSERT_EQUAL(ordo_config_option(&cfg, "orders", "5", err, sizeof err), 0);
    CU_ASSERT_EQUAL(ordo_config_option(&cfg, "segment-bytes", "10", err, sizeof err), -1);
    /* Replication: the mode, the servers and the replicas, checked
     * together. */
    CU_ASSERT_EQUAL(cfg.nats_replicas, 3);
    CU_ASSERT_EQUAL(ordo_config_set(&cfg, "fsync", "replicated", err, sizeof err), 0);
    CU_ASSERT_EQUAL(cfg.fsync_mode, ORDO_SYNC_REPLICATED);
    char text[32];
    CU_ASSERT_STRING_EQUAL(ordo_config_fsync_text(&cfg, text, sizeof text), "replicated");
    CU_ASSERT_EQUAL(ordo_config_check(&cfg, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "needs --nats"));
    CU_ASSERT_EQUAL(ordo_config_set(&cfg, "nats", "nats://127.0.0.1:4222,nats://127.0.0.1:4223",
                                    err, sizeof err),
                    0);
    CU_ASSERT_EQUAL(ordo_config_check(&cfg, err, sizeof err), 0);
    CU_ASSERT_EQUAL(ordo_config_set(&cfg, "fsync", "always", err, sizeof err), 0);
    CU_ASSERT_EQUAL(ordo_config_check(&cfg, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "--nats needs --fsync replicated"));
    setenv("ORDO_NATS_REPLICAS", "5", 1);
    CU_ASSERT_EQUAL(ordo_config_from_env(&cfg, err, sizeof err), 0);
    CU_ASSERT_EQUAL(cfg.nats_replicas, 5);
    unsetenv("ORDO_NATS_REPLICAS");
    /* Partitions: K/P, which needs --nats; the advertised endpoints. */
    CU_ASSERT(cfg.partition == 0 && cfg.partitions == 1);
    CU_ASSERT_EQUAL(ordo_config_set(&cfg, "fsync", "replicated", err, sizeof err), 0);
    CU_ASSERT_EQUAL(ordo_config_set(&cfg, "partition", "3/8", err, sizeof err), 0);
    CU_ASSERT(cfg.partition == 3 && cfg.partitions == 8);
    CU_ASSERT_EQUAL(ordo_config_check(&cfg, err, sizeof err), 0);
    char nats[sizeof cfg.nats];
    memcpy(nats, cfg.nats, sizeof nats);
    cfg.nats[0] = '\0';
    CU_ASSERT_EQUAL(ordo_config_check(&cfg, err, sizeof err), -1); /* replicated, no --nats */
    CU_ASSERT_EQUAL(ordo_config_set(&cfg, "fsync", "always", err, sizeof err), 0);
    CU_ASSERT_EQUAL(ordo_config_check(&cfg, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "--partition 3/8 needs --nats"));
    memcpy(cfg.nats, nats, sizeof nats);
    char ep[300];
    ordo_config_advertised(&cfg, "tcp://127.0.0.1:7700", ep, sizeof ep);
    CU_ASSERT_STRING_EQUAL(ep, "tcp://127.0.0.1:7700"); /* a host: as bound */
    ordo_config_advertised(&cfg, "ipc:///tmp/x", ep, sizeof ep);
    CU_ASSERT_STRING_EQUAL(ep, "ipc:///tmp/x");
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    char want[300];
    snprintf(want, sizeof want, "tcp://%s:7700", host);
    ordo_config_advertised(&cfg, "tcp://*:7700", ep, sizeof ep);
    CU_ASSERT_STRING_EQUAL(ep, want); /* every interface: this machine's name */
    setenv("ORDO_ADVERTISE", "engine-3.example", 1);
    CU_ASSERT_EQUAL(ordo_config_from_env(&cfg, err, sizeof err), 0);
    unsetenv("ORDO_ADVERTISE");
    ordo_config_advertised(&cfg, "tcp://0.0.0.0:7701", ep, sizeof ep);
    CU_ASSERT_STRING_EQUAL(ep, "tcp://engine-3.example:7701");
    ordo_config_advertised(&cfg, "tcp://10.1.2.3:7700", ep, sizeof ep);
    CU_ASSERT_STRING_EQUAL(ep, "tcp://engine-3.example:7700"); /* --advertise wins */
    /* Only tcp://HOST:PORT is rewritten. */
    static const char *kept[] = {"ipc:///tmp/a:b.sock", "tcp://[::1]", "tcp://*:*",
                                 "tcp://h:", "inproc://x:1"};
    for (size_t i = 0; i < sizeof kept / sizeof kept[0]; i++) {
        ordo_config_advertised(&cfg, kept[i], ep, sizeof ep);
        CU_ASSERT_STRING_EQUAL(ep, kept[i]);
    }
    ordo_config_advertised(&cfg, "tcp://[::1]:7700", ep, sizeof ep);
    CU_ASSERT_STRING_EQUAL(ep, "tcp://engine-3.example:7700");
    CU_ASSERT_EQUAL(ordo_config_set(&cfg, "advertise", "[fd00::1]", err, sizeof err), 0);
    ordo_config_advertised(&cfg, "tcp://*:7701", ep, sizeof ep);
    CU_ASSERT_STRING_EQUAL(ep, "tcp://[fd00::1]:7701");
    cfg.nats[0] = '\0';
    static const char *bad[][2] = {{"nats", "127.0.0.1:4222"},
                                   {"nats", ""},
                                   {"nats-replicas", "0"},
                                   {"nats-replicas", "6"},
                                   {"partition", "2/2"},
                                   {"partition", "0"},
                                   {"partition", "1/0"},
                                   {"partition", "0/4097"},
                                   {"advertise", "host name"},
                                   {"advertise", "tcp://h"},
                                   {"advertise", "h:1"},
                                   {"advertise", ""},
                                   {"advertise", "a..b"},
                                   {"advertise", "-a"},
                                   {"advertise", "a."},
                                   {"advertise", "[::1"},
                                   {"advertise", "[x]"},
                                   {"segment-bytes", "65535"},
                                   {"segment-bytes", "-1"},
                                   {"fsync", "sometimes"},
                                   {"fsync", "batch:0"},
                                   {"fsync", "batch:"},
                                   {"shards", "0"},
                                   {"shards", "2x"},
                                   {"snapshot-every", "ten"},
                                   {"data-dir", ""},
                                   {"colour", "blue"},
                                   {"retain-finished", "-5"},
                                   {"retain-finished", "1h"},
                                   {"retain-finished", "99999999999"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        CU_ASSERT_EQUAL(ordo_config_set(&cfg, bad[i][0], bad[i][1], err, sizeof err), -1);
        CU_ASSERT(strlen(err) > 10);
    }
}

/* The front end's tags: index, generation and refusal come back apart,
 * and the tag without its refusal keeps index and generation. */
static void test_tags(void)
{
    uint64_t t = ordo_tag_for_slot(16383, 0xfffffffeu);
    CU_ASSERT_EQUAL(ordo_tag_index(t), 16383);
    CU_ASSERT_EQUAL(ordo_tag_generation(t), 0xfffffffeu);
    uint64_t r = ordo_tag_make(t, ORDO_REFUSE_OVERLOADED);
    CU_ASSERT_EQUAL(ordo_tag_refuse(r), ORDO_REFUSE_OVERLOADED);
    CU_ASSERT_EQUAL(ordo_tag_slot(r), t);
    CU_ASSERT_EQUAL(ordo_tag_refuse(t), ORDO_REFUSE_NONE);
    /* the same slot in its next generation is another tag */
    CU_ASSERT_NOT_EQUAL(ordo_tag_for_slot(7, 1), ordo_tag_for_slot(7, 2));
    CU_ASSERT_EQUAL(ordo_tag_index(ordo_tag_for_slot(7, 0xffffffffu)), 7);
}

/* Drives `n` workload commands through a running engine; all must be
 * carried out (the workload is valid). */
static void s_run(ordo_test_engine_t *t, ordo_workload_t *w, uint64_t n)
{
    ordo_drive_report_t rep;
    CU_ASSERT_EQUAL(ordo_test_engine_drive(t, w, n, &rep, NULL, NULL), 0);
    CU_ASSERT_EQUAL(rep.sent, n);
    CU_ASSERT_EQUAL(rep.ok, n);
}

/* Snapshot + tail and a full replay of the log give the same state. */
static void s_assert_recovers(ordo_test_engine_t *t, uint64_t snapshot_position,
                              uint64_t events_replayed)
{
    ordo_registry_t *full = NULL, *fast = NULL;
    ordo_state_recovery_t frep, rep;
    CU_ASSERT_EQUAL_FATAL(ordo_test_engine_recover(t, false, &full, &frep), 0);
    CU_ASSERT_EQUAL_FATAL(ordo_test_engine_recover(t, true, &fast, &rep), 0);
    CU_ASSERT_EQUAL(rep.snapshot_position, snapshot_position);
    CU_ASSERT_EQUAL(rep.events_replayed, events_replayed);
    CU_ASSERT_EQUAL(frep.events_replayed, frep.head_position);
    CU_ASSERT_EQUAL(ordo_test_registry_diff(full, fast), 0);
    ordo_registry_destroy(&full);
    ordo_registry_destroy(&fast);
}

/* Path of the snapshot at `position`. */
static void s_snapshot_path(const ordo_test_engine_t *t, uint64_t position, char *buf, size_t size)
{
    snprintf(buf, size, "%s/snapshot-%020llu.osnap", t->snap_dir, (unsigned long long)position);
}

static void test_recovery_matches_live_state(void)
{
    ordo_test_engine_t t;
    CU_ASSERT_EQUAL_FATAL(ordo_test_engine_init(&t, NULL), 0);
    ordo_workload_t *w = ordo_workload_new(7, 300);
    CU_ASSERT_EQUAL_FATAL(ordo_test_engine_start(&t), 0);
    s_run(&t, w, 3000); /* one command, one event */
    CU_ASSERT_EQUAL(ordo_engine_head(t.engine), 3000);
    CU_ASSERT_EQUAL(ordo_test_engine_stop(&t), 0); /* snapshot at 3000 */

    CU_ASSERT_EQUAL_FATAL(ordo_test_engine_start(&t), 0);
    CU_ASSERT_EQUAL(ordo_engine_recovery(t.engine)->snapshot_position, 3000);
    CU_ASSERT_EQUAL(ordo_engine_recovery(t.engine)->events_replayed, 0);
    s_run(&t, w, 2000);
    CU_ASSERT_EQUAL(ordo_test_engine_stop(&t), 0); /* snapshot at 5000 */
    s_assert_recovers(&t, 5000, 0);

    /* Without the newest snapshot: the one at 3000 plus the log's tail. */
    char path[400];
    s_snapshot_path(&t, 5000, path, sizeof path);
    CU_ASSERT_EQUAL(remove(path), 0);
    s_assert_recovers(&t, 3000, 2000);

    /* Started again from there, it carries on where it stopped. */
    CU_ASSERT_EQUAL_FATAL(ordo_test_engine_start(&t), 0);
    CU_ASSERT_EQUAL(ordo_engine_recovery(t.engine)->events_replayed, 2000);
    s_run(&t, w, 1000);
    CU_ASSERT_EQUAL(ordo_engine_head(t.engine), 6000);
    CU_ASSERT_EQUAL(ordo_test_engine_stop(&t), 0);
    s_assert_recovers(&t, 6000, 0);
    ordo_workload_destroy(&w);
    ordo_test_engine_cleanup(&t);
}

static void test_corrupt_snapshot_falls_back(void)
{
    ordo_test_engine_t t;
    CU_ASSERT_EQUAL_FATAL(ordo_test_engine_init(&t, NULL), 0);
    ordo_workload_t *w = ordo_workload_new(11, 100);
    CU_ASSERT_EQUAL_FATAL(ordo_test_engine_start(&t), 0);
    s_run(&t, w, 1000);
    CU_ASSERT_EQUAL(ordo_test_engine_stop(&t), 0);
    char path[400];
    s_snapshot_path(&t, 1000, path, sizeof path);
    long long size = ordo_test_file_size(path);
    CU_ASSERT_FATAL(size > 100);
    CU_ASSERT_EQUAL(ordo_test_flip_bit(path, size / 2, 3), 0);
    ordo_log_set_level(ORDO_LOG_ERROR); /* the skip is logged as a warning */
    s_assert_recovers(&t, 0, 1000);     /* never trusted: full replay */
    /* The engine starts on it the same way. */
    CU_ASSERT_EQUAL_FATAL(ordo_test_engine_start(&t), 0);
    ordo_log_set_level(ORDO_LOG_WARN);
    CU_ASSERT_EQUAL(ordo_engine_recovery(t.engine)->snapshot_position, 0);
    CU_ASSERT_EQUAL(ordo_engine_recovery(t.engine)->events_replayed, 1000);
    ordo_workload_destroy(&w);
    ordo_test_engine_cleanup(&t);
}

/* Replaces the log with its first `keep` events (what a power cut in
 * fsync never mode leaves). */
static void s_cut_log(ordo_test_engine_t *t, uint64_t keep)
{
    ordo_wal_options_t o = {.dir = t->wal_dir,
                            .sync_mode = ORDO_SYNC_NEVER,
                            .segment_bytes = t->opts.cfg.segment_bytes};
    char copy_dir[320], cmd[1200];
    snprintf(copy_dir, sizeof copy_dir, "%s/wal-copy", t->dir);
    ordo_wal_options_t c = o;
    c.dir = copy_dir;
    ordo_wal_t *wal, *dst;
    ordo_wal_recovery_t rep;
    ordo_wal_reader_t *rd;
    CU_ASSERT_EQUAL_FATAL(ordo_wal_open(&c, &dst, &rep), 0);
    CU_ASSERT_EQUAL_FATAL(ordo_wal_open(&o, &wal, &rep), 0);
    CU_ASSERT_EQUAL_FATAL(ordo_wal_reader_new(wal, 1, &rd), 0);
    uint64_t pos;
    const void *data;
    size_t len;
    while (ordo_wal_reader_next(rd, &pos, &data, &len) == 1 && pos <= keep) {
        ordo_wal_rec_t rec = {data, len};
        CU_ASSERT_EQUAL(ordo_wal_append(dst, &rec, 1, NULL), 0);
    }
    ordo_wal_reader_destroy(&rd);
    ordo_wal_destroy(&wal);
    ordo_wal_destroy(&dst);
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mv '%s' '%s'", t->wal_dir, copy_dir, t->wal_dir);
    CU_ASSERT_EQUAL_FATAL(system(cmd), 0);
}

/* The log loses its tail after a snapshot was taken at its end (power cut
 * in never mode): the snapshot must not be trusted, now or after new
 * events reuse those positions. */
static void s_snapshot_past_lost_tail(bool packed_while_running)
{
    ordo_test_engine_t t;
    CU_ASSERT_EQUAL_FATAL(ordo_test_engine_init(&t, NULL), 0);
    ordo_workload_t *w = ordo_workload_new(5, 50);
    CU_ASSERT_EQUAL_FATAL(ordo_test_engine_start(&t), 0);
    s_run(&t, w, 200);
    CU_ASSERT_EQUAL(ordo_test_engine_stop(&t), 0); /* snapshot at 200 */
    CU_ASSERT_EQUAL_FATAL(ordo_test_engine_start(&t), 0);
    s_run(&t, w, 100);
    CU_ASSERT_EQUAL(ordo_test_engine_stop(&t), 0); /* snapshot at 300 */
    uint64_t label = 300;
    if (packed_while_running) {
        /* A snapshot labelled 200 that holds events up to 300, as one
         * packed while commands ran can; the one at 300 is gone. */
        ordo_registry_t *at300 = NULL;
        ordo_state_recovery_t rep;
        CU_ASSERT_EQUAL_FATAL(ordo_test_engine_recover(&t, false, &at300, &rep), 0);
        char path[400];
        s_snapshot_path(&t, 300, path, sizeof path);
        CU_ASSERT_EQUAL(remove(path), 0);
        s_snapshot_path(&t, 200, path, sizeof path);
        CU_ASSERT_EQUAL(remove(path), 0);
        const ordo_registry_t *regs[] = {at300};
        CU_ASSERT_EQUAL_FATAL(ordo_state_snapshot(regs, 1, t.snap_dir, 200, 2, NULL), 0);
        ordo_registry_destroy(&at300);
        label = 200;
    } else {
        char path[400];
        s_snapshot_path(&t, 200, path, sizeof path);
        CU_ASSERT_EQUAL(remove(path), 0);
    }
    s_cut_log(&t, 200);

    ordo_log_set_level(ORDO_LOG_ERROR); /* the discard is a warning */
    CU_ASSERT_EQUAL_FATAL(ordo_test_engine_start(&t), 0);
    ordo_log_set_level(ORDO_LOG_WARN);
    const ordo_state_recovery_t *srep = ordo_engine_recovery(t.engine);
    CU_ASSERT_EQUAL(srep->head_position, 200);
    CU_ASSERT_EQUAL(srep->snapshot_position, 0);
    CU_ASSERT_EQUAL(srep->events_replayed, 200);
    char seg[400];
    s_snapshot_path(&t, label, seg, sizeof seg);
    CU_ASSERT_EQUAL(ordo_test_file_size(seg), -1); /* gone for good */
    /* New events take positions 201..: a restart still sees the log's
     * truth. (Commands for orders whose events were lost are refused.) */
    ordo_drive_report_t drep;
    CU_ASSERT_EQUAL(ordo_test_engine_drive(&t, w, 150, &drep, NULL, NULL), 0);
    CU_ASSERT(drep.ok > 50);
    CU_ASSERT_EQUAL(drep.ok + drep.refused, 150);
    uint64_t head = ordo_engine_head(t.engine);
    CU_ASSERT_EQUAL(head, 200 + drep.ok);
    CU_ASSERT_EQUAL(ordo_test_engine_stop(&t), 0);
    s_assert_recovers(&t, head, 0);
    ordo_workload_destroy(&w);
    ordo_test_engine_cleanup(&t);
}

static void test_snapshot_ahead_of_log_is_discarded(void)
{
    s_snapshot_past_lost_tail(false);
}

static void test_snapshot_with_lost_events_is_discarded(void)
{
    s_snapshot_past_lost_tail(true);
}

/* A snapshot packed while commands ran holds orders with events past its
 * position: recovery replays from the position and skips the events an
 * order already has, giving the live state exactly. */
static void test_snapshot_packed_while_running(void)
{
    ordo_test_engine_t t;
    CU_ASSERT_EQUAL_FATAL(ordo_test_engine_init(&t, NULL), 0);
    ordo_workload_t *w = ordo_workload_new(13, 300);
    t.opts.cfg.snapshot_every = 1000; /* the engine's own, packed while it runs */
    CU_ASSERT_EQUAL_FATAL(ordo_test_engine_start(&t), 0);
    s_run(&t, w, 4500);
    CU_ASSERT_EQUAL(ordo_test_engine_stop(&t), 0);
    /* Drop the snapshot made at the stop: the newest left was packed
     * while commands ran. */
    char path[400];
    s_snapshot_path(&t, 4500, path, sizeof path);
    CU_ASSERT_EQUAL(remove(path), 0);
    ordo_registry_t *full = NULL, *fast = NULL;
    ordo_state_recovery_t frep, rep;
    CU_ASSERT_EQUAL_FATAL(ordo_test_engine_recover(&t, false, &full, &frep), 0);
    CU_ASSERT_EQUAL_FATAL(ordo_test_engine_recover(&t, true, &fast, &rep), 0);
    CU_ASSERT(rep.snapshot_position >= 1000 && rep.snapshot_position < 4500);
    CU_ASSERT_EQUAL(rep.snapshot_position + rep.events_replayed, 4500);
    CU_ASSERT_EQUAL(ordo_test_registry_diff(full, fast), 0);
    ordo_registry_destroy(&full);
    ordo_registry_destroy(&fast);
    ordo_workload_destroy(&w);
    ordo_test_engine_cleanup(&t);
}

/* Opens the test engine's log, as the engine would, to write it directly. */
static ordo_wal_t *s_open_log(const ordo_test_engine_t *t)
{
    ordo_wal_options_t o = {.dir = t->wal_dir,
                            .sync_mode = ORDO_SYNC_ALWAYS,
                            .segment_bytes = t->opts.cfg.segment_bytes};
    ordo_wal_t *wal = NULL;
    ordo_wal_recovery_t wrep;
    CU_ASSERT_EQUAL(ordo_wal_open(&o, &wal, &wrep), 0);
    return wal;
}

/* Appends order `id`'s OrderCreated, at `position` and dated `ts`, to
 * `wal`, and applies it to `also` too (NULL: no registry). */
static void s_append_created(ordo_wal_t *wal, const char *id, uint64_t position, int64_t ts,
                             ordo_registry_t *also)
{
    static ordo_request_t req;
    static ordo_event_t ev;
    static ordo_order_t none;
    ordo_test_create_request(&req, id, id);
    uint32_t dup;
    ordo_error_t err;
    CU_ASSERT_EQUAL_FATAL(ordo_decide(&none, &req, &ev, &dup, &err), ORDO_DECIDE_EVENT);
    ev.position = position;
    ev.timestamp_us = ts;
    msgpack_sbuffer buf;
    msgpack_packer pk;
    msgpack_sbuffer_init(&buf);
    msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
    CU_ASSERT_EQUAL_FATAL(ordo_event_pack_record(&pk, &ev), 0);
    ordo_wal_rec_t rec = {buf.data, buf.size};
    CU_ASSERT_EQUAL(ordo_wal_append(wal, &rec, 1, NULL), 0);
    ordo_state_recovery_t applied = {0};
    if (also)
        CU_ASSERT_EQUAL(ordo_state_apply_record(also, buf.data, buf.size, position, &applied, NULL),
                        0);
    msgpack_sbuffer_destroy(&buf);
}

/* Timestamps never go below the latest in the log, whatever the clock:
 * a log whose last event is dated 2100 makes every new event 2100 or
 * later. */
static void test_clock_floor(void)
{
    ordo_test_engine_t t;
    CU_ASSERT_EQUAL_FATAL(ordo_test_engine_init(&t, NULL), 0);
    int64_t future = 4102444800000000; /* 2100-01-01 */
    ordo_wal_t *wal = s_open_log(&t);
    CU_ASSERT_PTR_NOT_NULL_FATAL(wal);
    s_append_created(wal, "o-future", 1, future, NULL);
    ordo_wal_destroy(&wal);
    CU_ASSERT_EQUAL_FATAL(ordo_test_engine_start(&t), 0);
    CU_ASSERT(ordo_engine_recovery(t.engine)->last_timestamp_us >= future);
    ordo_workload_t *w = ordo_workload_new(9, 10);
    s_run(&t, w, 20);
    CU_ASSERT_EQUAL(ordo_test_engine_stop(&t), 0);
    ordo_registry_t *r = NULL;
    ordo_state_recovery_t rep;
    CU_ASSERT_EQUAL_FATAL(ordo_test_engine_recover(&t, false, &r, &rep), 0);
    CU_ASSERT_EQUAL(rep.events_replayed, 21);
    size_t cursor = 0, seen = 0;
    const ordo_order_t *o;
    while ((o = ordo_registry_next(r, &cursor)) != NULL) {
        CU_ASSERT(o->created_at_us >= future);
        CU_ASSERT(o->updated_at_us >= future);
        seen++;
    }
    CU_ASSERT(seen > 1);
    ordo_registry_destroy(&r);
    ordo_workload_destroy(&w);
    ordo_test_engine_cleanup(&t);
}

/* The clock floor is the log's last event even when its order is in no
 * snapshot: it left memory (finished, in the order index) before the
 * snapshot at the head was written, as a standby's snapshot at stop
 * leaves it. Order o-a at position 1 (now), o-b at 2 (in 2100); the
 * snapshot at 2 holds o-a alone. */
static void test_clock_floor_from_the_log(void)
{
    ordo_test_engine_t t;
    CU_ASSERT_EQUAL_FATAL(ordo_test_engine_init(&t, NULL), 0);
    int64_t future = 4102444800000000; /* 2100-01-01 */
    ordo_wal_t *wal = s_open_log(&t);
    CU_ASSERT_PTR_NOT_NULL_FATAL(wal);
    ordo_registry_t *only_a = ordo_registry_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(only_a);
    s_append_created(wal, "o-a", 1, 1700000000000000, only_a);
    s_append_created(wal, "o-b", 2, future, NULL);
    ordo_wal_destroy(&wal);
    const ordo_registry_t *regs[1] = {only_a};
    CU_ASSERT_EQUAL_FATAL(ordo_state_snapshot(regs, 1, t.snap_dir, 2, 2, NULL), 0);
    ordo_registry_destroy(&only_a);
    ordo_registry_t *r = NULL;
    ordo_state_recovery_t rep;
    CU_ASSERT_EQUAL_FATAL(ordo_test_engine_recover(&t, true, &r, &rep), 0);
    CU_ASSERT_EQUAL(rep.snapshot_position, 2);
    CU_ASSERT_EQUAL(rep.events_replayed, 0);
    CU_ASSERT_EQUAL(ordo_registry_count(r), 1);
    CU_ASSERT(rep.last_timestamp_us >= future);
    ordo_registry_destroy(&r);
    ordo_test_engine_cleanup(&t);
}

static void test_rules_hold_through_the_engine(void)
{
    ordo_test_engine_t t;
    CU_ASSERT_EQUAL_FATAL(ordo_test_engine_init(&t, NULL), 0);
    CU_ASSERT_EQUAL_FATAL(ordo_test_engine_start(&t), 0);
    static ordo_request_t req;
    ordo_test_create_request(&req, "o-1", "r-1");
    const ordo_reply_t *r = ordo_test_engine_call(&t, &req);
    CU_ASSERT_FATAL(r && r->ok);
    CU_ASSERT_EQUAL(r->version, 1);
    CU_ASSERT_EQUAL(r->position, 1);
    /* The same request id again: a duplicate with the original answer. */
    r = ordo_test_engine_call(&t, &req);
    CU_ASSERT_FATAL(r && r->ok);
    CU_ASSERT(r->duplicate);
    CU_ASSERT_EQUAL(r->position, 1);
    req.request_id = ORDO_STR("r-2");
    r = ordo_test_engine_call(&t, &req);
    CU_ASSERT_FATAL(r && !r->ok);
    CU_ASSERT_EQUAL(r->error.code, ORDO_CODE_ALREADY_EXISTS);
    req.type = ORDO_REQ_MARK_READY;
    req.has_data = false;
    r = ordo_test_engine_call(&t, &req);
    CU_ASSERT_FATAL(r && !r->ok);
    CU_ASSERT_EQUAL(r->error.code, ORDO_CODE_INVALID_TRANSITION);
    req.type = ORDO_REQ_CONFIRM_ORDER;
    req.expected_version = 7;
    r = ordo_test_engine_call(&t, &req);
    CU_ASSERT_FATAL(r && !r->ok);
    CU_ASSERT_EQUAL(r->error.code, ORDO_CODE_CONFLICT);
    req.expected_version = -1;
    req.order_id = ORDO_STR("o-2");
    r = ordo_test_engine_call(&t, &req);
    CU_ASSERT_FATAL(r && !r->ok);
    CU_ASSERT_EQUAL(r->error.code, ORDO_CODE_NOT_FOUND);
    CU_ASSERT_EQUAL(ordo_engine_head(t.engine), 1); /* refusals write nothing */
    CU_ASSERT_EQUAL(ordo_test_engine_stop(&t), 0);

    /* After a restart the request id is still known, and o-2 is not. */
    CU_ASSERT_EQUAL_FATAL(ordo_test_engine_start(&t), 0);
    ordo_test_create_request(&req, "o-1", "r-1");
    r = ordo_test_engine_call(&t, &req);
    CU_ASSERT_FATAL(r && r->ok);
    CU_ASSERT(r->duplicate);
    CU_ASSERT_EQUAL(r->position, 1);
    ordo_request_init(&req);
    req.type = ORDO_REQ_GET_ORDER;
    req.order_id = ORDO_STR("o-2");
    req.request_id = ORDO_STR("r-3");
    r = ordo_test_engine_call(&t, &req);
    CU_ASSERT_FATAL(r && !r->ok);
    CU_ASSERT_EQUAL(r->error.code, ORDO_CODE_NOT_FOUND);
    req.order_id = ORDO_STR("o-1");
    r = ordo_test_engine_call(&t, &req);
    CU_ASSERT_FATAL(r && r->ok);
    ordo_mp_t mp;
    ordo_mp_init(&mp, r->order, r->order_len);
    static ordo_order_t order;
    CU_ASSERT_EQUAL_FATAL(ordo_order_read(&mp, &order), 0);
    CU_ASSERT_EQUAL(order.total_cents, 300);
    CU_ASSERT_EQUAL(order.version, 1);
    ordo_test_engine_cleanup(&t);
}

/* One engine per data folder: a second one on the same folder is refused
 * (before it touches anything) while the first runs, and starts once the
 * first has stopped. */
static void test_one_engine_per_folder(void)
{
    ordo_test_engine_t t;
    CU_ASSERT_EQUAL_FATAL(ordo_test_engine_init(&t, NULL), 0);
    CU_ASSERT_EQUAL_FATAL(ordo_test_engine_start(&t), 0);
    ordo_engine_options_t second = t.opts;
    snprintf(second.cfg.bind, sizeof second.cfg.bind, "inproc://ordo-test-second");
    snprintf(second.cfg.pub, sizeof second.cfg.pub, "inproc://ordo-test-second-events");
    ordo_engine_t *other = NULL;
    ordo_log_set_level(ORDO_LOG_ERROR + 1); /* the refusal is logged */
    CU_ASSERT_EQUAL(ordo_engine_start(&second, &other), -1);
    ordo_log_set_level(ORDO_LOG_WARN);
    CU_ASSERT_PTR_NULL(other);
    char path[400], text[32] = "";
    snprintf(path, sizeof path, "%s/LOCK", t.dir);
    FILE *f = fopen(path, "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_PTR_NOT_NULL(fgets(text, sizeof text, f));
    fclose(f);
    CU_ASSERT_EQUAL(atol(text), (long)getpid()); /* names its holder */
    CU_ASSERT_EQUAL(ordo_test_engine_stop(&t), 0);
    CU_ASSERT_EQUAL(ordo_engine_start(&second, &other), 0);
    CU_ASSERT_EQUAL(ordo_engine_stop(other), 0);
    ordo_engine_destroy(&other);
    ordo_test_engine_cleanup(&t);
}

/* A file `name` in folder `dir` holding `text`. */
static void s_put(const char *dir, const char *name, const char *text)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs(text, f);
    fclose(f);
}

static bool s_holds(const char *path, const char *text)
{
    char buf[64] = "";
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strcmp(buf, text) == 0;
}

/* ordo_folder_set_aside: the log, snapshots and index move whole into a
 * new folder; the rest of the data folder stays; a second time (the same
 * second) gets a folder of its own; a part that is missing is skipped. */
static void test_folder_aside(void)
{
    char data[256], sub[512], aside[1024], again[1024], path[1200], why[512];
    CU_ASSERT_PTR_NOT_NULL_FATAL(ordo_test_tmpdir(data, sizeof data));
    static const char *const parts[] = {"wal", "snapshots", "index"};
    for (int i = 0; i < 3; i++) {
        snprintf(sub, sizeof sub, "%s/%s", data, parts[i]);
        CU_ASSERT_EQUAL_FATAL(mkdir(sub, 0755), 0);
        s_put(sub, "f", parts[i]);
    }
    s_put(data, "PARTITION", "0/2\n");
    CU_ASSERT_EQUAL_FATAL(ordo_folder_set_aside(data, aside, sizeof aside, why, sizeof why), 0);
    CU_ASSERT(strncmp(aside, data, strlen(data)) == 0 && strstr(aside, "/diverged-") != NULL);
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s/f", aside, parts[i]);
        CU_ASSERT(s_holds(path, parts[i]));
        snprintf(path, sizeof path, "%s/%s", data, parts[i]);
        CU_ASSERT(access(path, F_OK) != 0);
    }
    snprintf(path, sizeof path, "%s/PARTITION", data);
    CU_ASSERT(s_holds(path, "0/2\n"));
    /* Again, with only a log: another folder, the first one untouched. */
    snprintf(sub, sizeof sub, "%s/wal", data);
    CU_ASSERT_EQUAL_FATAL(mkdir(sub, 0755), 0);
    s_put(sub, "f", "second");
    CU_ASSERT_EQUAL_FATAL(ordo_folder_set_aside(data, again, sizeof again, why, sizeof why), 0);
    CU_ASSERT(strcmp(again, aside) != 0);
    snprintf(path, sizeof path, "%s/wal/f", again);
    CU_ASSERT(s_holds(path, "second"));
    snprintf(path, sizeof path, "%s/wal/f", aside);
    CU_ASSERT(s_holds(path, "wal"));
    /* A data folder that cannot hold it: refused with a sentence. */
    snprintf(path, sizeof path, "%s/no-such-folder", data);
    CU_ASSERT_EQUAL(ordo_folder_set_aside(path, again, sizeof again, why, sizeof why), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "cannot create"));
    ordo_test_rm_rf(data);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    ordo_log_set_level(ORDO_LOG_WARN);
    CU_pSuite s = CU_add_suite("engine", NULL, NULL);
    CU_add_test(s, "config: defaults, environment, flags, refusals", test_config_layers);
    CU_add_test(s, "tags: slot index, generation, refusal", test_tags);
    CU_add_test(s, "recovery rebuilds the live state", test_recovery_matches_live_state);
    CU_add_test(s, "corrupt snapshot falls back to the log", test_corrupt_snapshot_falls_back);
    CU_add_test(s, "snapshot ahead of the log is discarded",
                test_snapshot_ahead_of_log_is_discarded);
    CU_add_test(s, "snapshot with events the log lost is discarded",
                test_snapshot_with_lost_events_is_discarded);
    CU_add_test(s, "snapshot packed while running", test_snapshot_packed_while_running);
    CU_add_test(s, "timestamps keep above the clock floor", test_clock_floor);
    CU_add_test(s, "the clock floor is the log's last event, not the snapshot's orders",
                test_clock_floor_from_the_log);
    CU_add_test(s, "protocol rules through the engine, across a restart",
                test_rules_hold_through_the_engine);
    CU_add_test(s, "one engine per data folder", test_one_engine_per_folder);
    CU_add_test(s, "a log set aside whole", test_folder_aside);
    return ordo_test_run();
}
