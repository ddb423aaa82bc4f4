/* Tests for engine/: settings (defaults < environment < flags, refusals),
 * single-threaded group commit (ordo_local), and recovery (ordo_state):
 * full replay and snapshot + tail rebuild exactly the live state, a
 * corrupt snapshot falls back, idempotency survives, a failed log makes
 * the core refuse work. */
#include "ordo_batch.h"
#include "ordo_codec.h"
#include "ordo_config.h"
#include "ordo_error.h"
#include "ordo_local.h"
#include "ordo_log.h"
#include "ordo_snapshot.h"
#include "ordo_state.h"
#include "ordo_test.h"
#include "ordo_workload.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    static const char *bad[][2] = {{"segment-bytes", "65535"}, {"segment-bytes", "-1"},
                                   {"fsync", "sometimes"},     {"fsync", "batch:0"},
                                   {"fsync", "batch:"},        {"shards", "0"},
                                   {"shards", "2x"},           {"snapshot-every", "ten"},
                                   {"data-dir", ""},           {"colour", "blue"},
                                   {"retain-finished", "-5"},  {"retain-finished", "1h"},
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

typedef struct {
    char dir[256], wal_dir[300], snap_dir[300];
    ordo_wal_t *wal;
    ordo_registry_t *reg;
    ordo_local_t *local;
} s_env_t;

static void s_env_open(s_env_t *e, bool fresh)
{
    if (fresh) {
        CU_ASSERT_PTR_NOT_NULL_FATAL(ordo_test_tmpdir(e->dir, sizeof e->dir));
        snprintf(e->wal_dir, sizeof e->wal_dir, "%s/wal", e->dir);
        snprintf(e->snap_dir, sizeof e->snap_dir, "%s/snapshots", e->dir);
    }
    ordo_wal_options_t o = {
        .dir = e->wal_dir, .sync_mode = ORDO_SYNC_NEVER, .segment_bytes = 65536};
    ordo_wal_recovery_t rep;
    CU_ASSERT_EQUAL_FATAL(ordo_wal_open(&o, &e->wal, &rep), 0);
    e->reg = ordo_registry_new();
    e->local = ordo_local_new(e->reg, e->wal, 64);
    CU_ASSERT_PTR_NOT_NULL_FATAL(e->local);
}

static void s_env_close(s_env_t *e)
{
    ordo_local_destroy(&e->local);
    ordo_registry_destroy(&e->reg);
    ordo_wal_destroy(&e->wal);
}

/* Runs `n` workload commands; returns how many were refused. */
static int s_run(s_env_t *e, ordo_workload_t *w, int n)
{
    static ordo_request_t req;
    int refused = 0;
    for (int i = 0; i < n; i++) {
        ordo_workload_next(w, &req);
        ordo_error_t err;
        refused += ordo_local_submit(e->local, &req, &err) != ORDO_DECIDE_EVENT;
    }
    CU_ASSERT_EQUAL(ordo_local_flush(e->local), 0);
    return refused;
}

/* Number of orders that differ between two registries (both ways). */
static int s_diff(const ordo_registry_t *a, const ordo_registry_t *b)
{
    int diff = ordo_registry_count(a) != ordo_registry_count(b);
    size_t cursor = 0;
    const ordo_order_t *x;
    while ((x = ordo_registry_next(a, &cursor)) != NULL) {
        const ordo_order_t *y = ordo_registry_find(b, (ordo_str_t){x->order_id, x->order_id_len});
        if (!y || y->version != x->version || y->status != x->status ||
            y->total_cents != x->total_cents || y->created_at_us != x->created_at_us ||
            y->updated_at_us != x->updated_at_us || y->n_items != x->n_items ||
            y->has_courier_id != x->has_courier_id ||
            y->cancel_reason.len != x->cancel_reason.len ||
            y->delivery_address.len != x->delivery_address.len)
            diff++;
        else
            for (int v = 0; v < x->version; v++)
                if (x->positions[v] != y->positions[v] ||
                    x->request_ids[v].len != y->request_ids[v].len ||
                    memcmp(x->request_ids[v].ptr, y->request_ids[v].ptr, x->request_ids[v].len))
                    diff++;
    }
    return diff;
}

/* Recovers into a new registry (from `snap_dir`, or the log alone if
 * NULL) and checks it starts where expected and equals the live state. */
static void s_assert_recovers(const s_env_t *e, const char *snap_dir, uint64_t snapshot_position,
                              uint64_t events_replayed)
{
    ordo_registry_t *r = ordo_registry_new();
    ordo_state_recovery_t rep;
    CU_ASSERT_EQUAL(ordo_state_recover(r, e->wal, snap_dir, &rep), 0);
    CU_ASSERT_EQUAL(rep.snapshot_position, snapshot_position);
    CU_ASSERT_EQUAL(rep.events_replayed, events_replayed);
    CU_ASSERT_EQUAL(s_diff(e->reg, r), 0);
    ordo_registry_destroy(&r);
}

static void test_recovery_matches_live_state(void)
{
    s_env_t e;
    s_env_open(&e, true);
    ordo_workload_t *w = ordo_workload_new(7, 300);
    CU_ASSERT_EQUAL(s_run(&e, w, 3000), 0); /* the workload is valid: nothing refused */
    uint64_t snap_pos = ordo_wal_head(e.wal);
    CU_ASSERT_EQUAL(snap_pos, 3000);
    CU_ASSERT_EQUAL_FATAL(
        ordo_state_snapshot((const ordo_registry_t *const[]){e.reg}, 1, e.snap_dir, snap_pos, 2),
        0);
    CU_ASSERT_EQUAL(s_run(&e, w, 2000), 0);

    s_assert_recovers(&e, NULL, 0, 5000);              /* full replay */
    s_assert_recovers(&e, e.snap_dir, snap_pos, 2000); /* snapshot + tail */
    ordo_state_recovery_t rep;

    /* Restart the process: a new log object over the same files. */
    s_env_close(&e);
    s_env_open(&e, false);
    CU_ASSERT_EQUAL(ordo_state_recover(e.reg, e.wal, e.snap_dir, &rep), 0);
    CU_ASSERT_EQUAL(rep.head_position, 5000);
    CU_ASSERT_EQUAL(s_run(&e, w, 1000), 0); /* continues where it stopped */
    CU_ASSERT_EQUAL(ordo_wal_head(e.wal), 6000);
    ordo_workload_destroy(&w);
    s_env_close(&e);
    ordo_test_rm_rf(e.dir);
}

static void test_corrupt_snapshot_falls_back(void)
{
    s_env_t e;
    s_env_open(&e, true);
    ordo_workload_t *w = ordo_workload_new(11, 100);
    s_run(&e, w, 500);
    CU_ASSERT_EQUAL_FATAL(ordo_state_snapshot((const ordo_registry_t *const[]){e.reg}, 1,
                                              e.snap_dir, ordo_wal_head(e.wal), 2),
                          0);
    s_run(&e, w, 500);
    char path[400];
    snprintf(path, sizeof path, "%s/snapshot-%020llu.osnap", e.snap_dir, 500ULL);
    long long size = ordo_test_file_size(path);
    CU_ASSERT_FATAL(size > 100);
    CU_ASSERT_EQUAL(ordo_test_flip_bit(path, size / 2, 3), 0);
    ordo_log_set_level(ORDO_LOG_ERROR); /* the skip is logged as a warning */
    ordo_registry_t *r = ordo_registry_new();
    ordo_state_recovery_t rep;
    CU_ASSERT_EQUAL(ordo_state_recover(r, e.wal, e.snap_dir, &rep), 0);
    ordo_log_set_level(ORDO_LOG_INFO);
    CU_ASSERT_EQUAL(rep.snapshot_position, 0); /* never trusted: full replay */
    CU_ASSERT_EQUAL(rep.events_replayed, 1000);
    CU_ASSERT_EQUAL(s_diff(e.reg, r), 0);
    ordo_registry_destroy(&r);
    ordo_workload_destroy(&w);
    s_env_close(&e);
    ordo_test_rm_rf(e.dir);
}

/* The log loses its tail after a snapshot was taken at its end (power cut
 * in never mode): the snapshot must not be trusted, now or after new
 * events reuse those positions. */
static void s_snapshot_past_lost_tail(bool packed_while_running)
{
    s_env_t e;
    s_env_open(&e, true);
    ordo_workload_t *w = ordo_workload_new(5, 50);
    s_run(&e, w, 200);
    uint64_t tail_start = ordo_wal_head(e.wal);
    char seg[400];
    s_run(&e, w, 100);
    /* Packed while running, a snapshot from position 200 holds events up
     * to 300; otherwise it is a snapshot at 300. */
    uint64_t label = packed_while_running ? tail_start : ordo_wal_head(e.wal);
    const ordo_registry_t *regs[] = {e.reg};
    CU_ASSERT_EQUAL_FATAL(ordo_state_snapshot(regs, 1, e.snap_dir, label, 2), 0);
    s_env_close(&e);
    ordo_wal_options_t o = {.dir = e.wal_dir, .sync_mode = ORDO_SYNC_NEVER, .segment_bytes = 65536};
    ordo_wal_t *wal;
    ordo_wal_recovery_t rep;
    ordo_wal_reader_t *rd;
    /* The log loses everything after tail_start: rebuild it from a copy of
     * the first tail_start events. */
    char copy_dir[320], cmd[1200];
    snprintf(copy_dir, sizeof copy_dir, "%s/wal-copy", e.dir);
    ordo_wal_options_t c = {.dir = copy_dir, .sync_mode = ORDO_SYNC_NEVER, .segment_bytes = 65536};
    ordo_wal_t *dst;
    CU_ASSERT_EQUAL_FATAL(ordo_wal_open(&c, &dst, &rep), 0);
    CU_ASSERT_EQUAL_FATAL(ordo_wal_open(&o, &wal, &rep), 0);
    CU_ASSERT_EQUAL_FATAL(ordo_wal_reader_new(wal, 1, &rd), 0);
    uint64_t pos;
    const void *data;
    size_t len;
    while (ordo_wal_reader_next(rd, &pos, &data, &len) == 1 && pos <= tail_start) {
        ordo_wal_rec_t rec = {data, len};
        uint64_t first;
        CU_ASSERT_EQUAL(ordo_wal_append(dst, &rec, 1, &first), 0);
    }
    ordo_wal_reader_destroy(&rd);
    ordo_wal_destroy(&wal);
    ordo_wal_destroy(&dst);
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mv '%s' '%s'", e.wal_dir, copy_dir, e.wal_dir);
    CU_ASSERT_EQUAL_FATAL(system(cmd), 0);

    s_env_open(&e, false);
    ordo_log_set_level(ORDO_LOG_ERROR); /* the discard is a warning */
    ordo_state_recovery_t srep;
    CU_ASSERT_EQUAL(ordo_state_recover(e.reg, e.wal, e.snap_dir, &srep), 0);
    ordo_log_set_level(ORDO_LOG_WARN);
    CU_ASSERT_EQUAL(srep.head_position, tail_start);
    CU_ASSERT_EQUAL(srep.snapshot_position, 0);
    CU_ASSERT_EQUAL(srep.events_replayed, tail_start);
    snprintf(seg, sizeof seg, "%s/snapshot-%020llu.osnap", e.snap_dir, (unsigned long long)label);
    CU_ASSERT_EQUAL(ordo_test_file_size(seg), -1); /* gone for good */
    /* New events take positions 201..: a restart still sees the log's truth. */
    s_run(&e, w, 150);
    ordo_registry_t *again = ordo_registry_new();
    CU_ASSERT_EQUAL(ordo_state_recover(again, e.wal, e.snap_dir, &srep), 0);
    CU_ASSERT_EQUAL(s_diff(e.reg, again), 0);
    ordo_registry_destroy(&again);
    ordo_workload_destroy(&w);
    s_env_close(&e);
    ordo_test_rm_rf(e.dir);
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
    s_env_t e;
    s_env_open(&e, true);
    ordo_workload_t *w = ordo_workload_new(13, 300);
    CU_ASSERT_EQUAL(s_run(&e, w, 3000), 0);
    uint64_t from = ordo_wal_head(e.wal);
    CU_ASSERT_EQUAL(s_run(&e, w, 1500), 0);
    const ordo_registry_t *regs[] = {e.reg};
    CU_ASSERT_EQUAL_FATAL(ordo_state_snapshot(regs, 1, e.snap_dir, from, 2), 0);
    CU_ASSERT_EQUAL(s_run(&e, w, 500), 0);
    s_assert_recovers(&e, e.snap_dir, from, 2000);
    ordo_workload_destroy(&w);
    s_env_close(&e);
    ordo_test_rm_rf(e.dir);
}

/* Timestamps never go below the latest in the log, whatever the clock. */
static void test_clock_floor(void)
{
    s_env_t e;
    s_env_open(&e, true);
    int64_t future = 4102444800000000; /* 2100-01-01 */
    ordo_local_set_clock_floor(e.local, future);
    ordo_workload_t *w = ordo_workload_new(9, 10);
    s_run(&e, w, 20);
    ordo_registry_t *r = ordo_registry_new();
    ordo_state_recovery_t rep;
    CU_ASSERT_EQUAL(ordo_state_recover(r, e.wal, NULL, &rep), 0);
    CU_ASSERT(rep.last_timestamp_us >= future);
    size_t cursor = 0;
    const ordo_order_t *o;
    while ((o = ordo_registry_next(r, &cursor)) != NULL)
        CU_ASSERT(o->created_at_us >= future);
    ordo_registry_destroy(&r);
    ordo_workload_destroy(&w);
    s_env_close(&e);
    ordo_test_rm_rf(e.dir);
}

static void test_rules_hold_through_the_core(void)
{
    s_env_t e;
    s_env_open(&e, true);
    ordo_request_t req;
    ordo_request_init(&req);
    memset(&req.data, 0, offsetof(ordo_data_t, items));
    req.type = ORDO_REQ_CREATE_ORDER;
    req.order_id = ORDO_STR("o-1");
    req.request_id = ORDO_STR("r-1");
    req.has_data = true;
    req.data.present =
        ORDO_F_USER_ID | ORDO_F_RESTAURANT_ID | ORDO_F_ITEMS | ORDO_F_DELIVERY_ADDRESS;
    req.data.n_items = 1;
    req.data.items[0] = (ordo_item_t){ORDO_STR("s"), ORDO_STR("n"), 2, 150};
    req.data.delivery_address = ORDO_STR("a");
    ordo_error_t err;
    CU_ASSERT_EQUAL(ordo_local_submit(e.local, &req, &err), ORDO_DECIDE_EVENT);
    /* Same request id again in the same batch: a duplicate, nothing appended. */
    CU_ASSERT_EQUAL(ordo_local_submit(e.local, &req, &err), ORDO_DECIDE_DUPLICATE);
    req.request_id = ORDO_STR("r-2");
    CU_ASSERT_EQUAL(ordo_local_submit(e.local, &req, &err), ORDO_DECIDE_ERROR);
    CU_ASSERT_EQUAL(err.code, ORDO_CODE_ALREADY_EXISTS);
    req.type = ORDO_REQ_MARK_READY;
    CU_ASSERT_EQUAL(ordo_local_submit(e.local, &req, &err), ORDO_DECIDE_ERROR);
    CU_ASSERT_EQUAL(err.code, ORDO_CODE_INVALID_TRANSITION);
    req.type = ORDO_REQ_CONFIRM_ORDER;
    req.order_id = ORDO_STR("o-2");
    CU_ASSERT_EQUAL(ordo_local_submit(e.local, &req, &err), ORDO_DECIDE_ERROR);
    CU_ASSERT_EQUAL(err.code, ORDO_CODE_NOT_FOUND);
    CU_ASSERT_PTR_NULL(ordo_registry_find(e.reg, ORDO_STR("o-2"))); /* no trace left */
    CU_ASSERT_EQUAL(ordo_local_flush(e.local), 0);
    CU_ASSERT_EQUAL(ordo_wal_head(e.wal), 1);

    /* After a restart the request id is still known. */
    s_env_close(&e);
    s_env_open(&e, false);
    ordo_state_recovery_t rep;
    CU_ASSERT_EQUAL(ordo_state_recover(e.reg, e.wal, NULL, &rep), 0);
    req.type = ORDO_REQ_CREATE_ORDER;
    req.order_id = ORDO_STR("o-1");
    req.request_id = ORDO_STR("r-1");
    CU_ASSERT_EQUAL(ordo_local_submit(e.local, &req, &err), ORDO_DECIDE_DUPLICATE);
    ordo_order_t *o = ordo_registry_find(e.reg, ORDO_STR("o-1"));
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    CU_ASSERT_EQUAL(o->total_cents, 300);
    s_env_close(&e);
    ordo_test_rm_rf(e.dir);
}

/* An I/O table whose writes fail with ENOSPC once armed. */
static int s_full;
static ssize_t s_pwrite_full(void *ctx, int fd, const void *buf, size_t n, off_t off)
{
    (void)ctx;
    if (s_full) {
        errno = ENOSPC;
        return -1;
    }
    return ordo_io_posix()->pwrite(NULL, fd, buf, n, off);
}

static void test_failed_log_stops_the_core(void)
{
    char dir[256], wal_dir[300];
    CU_ASSERT_PTR_NOT_NULL_FATAL(ordo_test_tmpdir(dir, sizeof dir));
    snprintf(wal_dir, sizeof wal_dir, "%s/wal", dir);
    ordo_io_t io = *ordo_io_posix();
    io.pwrite = s_pwrite_full;
    s_full = 0;
    ordo_wal_options_t o = {.dir = wal_dir, .sync_mode = ORDO_SYNC_ALWAYS, .io = &io};
    ordo_wal_recovery_t rep;
    ordo_wal_t *wal = NULL;
    CU_ASSERT_EQUAL_FATAL(ordo_wal_open(&o, &wal, &rep), 0);
    ordo_registry_t *reg = ordo_registry_new();
    ordo_local_t *local = ordo_local_new(reg, wal, 8);
    ordo_workload_t *w = ordo_workload_new(3, 10);
    static ordo_request_t req;
    ordo_error_t err;
    for (int i = 0; i < 8; i++) {
        ordo_workload_next(w, &req);
        ordo_local_submit(local, &req, &err);
    }
    CU_ASSERT_EQUAL(ordo_local_flush(local), 0);
    s_full = 1;
    ordo_workload_next(w, &req);
    CU_ASSERT_EQUAL(ordo_local_submit(local, &req, &err), ORDO_DECIDE_EVENT); /* queued */
    CU_ASSERT_EQUAL(ordo_local_flush(local), ORDO_ERR_NOSPACE);
    ordo_workload_next(w, &req);
    CU_ASSERT_EQUAL(ordo_local_submit(local, &req, &err), ORDO_DECIDE_ERROR);
    CU_ASSERT_EQUAL(err.code, ORDO_CODE_UNAVAILABLE);
    CU_ASSERT_EQUAL(ordo_wal_head(wal), 8);
    ordo_workload_destroy(&w);
    ordo_local_destroy(&local);
    ordo_registry_destroy(&reg);
    ordo_wal_destroy(&wal);
    /* The log restarts clean, with the 8 acknowledged events. */
    o.io = NULL;
    CU_ASSERT_EQUAL_FATAL(ordo_wal_open(&o, &wal, &rep), 0);
    CU_ASSERT_EQUAL(rep.last_position, 8);
    ordo_wal_destroy(&wal);
    ordo_test_rm_rf(dir);
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
    CU_add_test(s, "protocol rules through the core", test_rules_hold_through_the_core);
    CU_add_test(s, "failed log stops the core", test_failed_log_stops_the_core);
    return ordo_test_run();
}
