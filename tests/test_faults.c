/* The engine in this process (ordo_test_engine.h) under failures, in its
 * real threads: the log's writes failing (disk full), its fsync failing
 * (EIO), and allocations failing across the front end, shards, writer,
 * indexer and reader. Whatever fails, every request gets an answer (its
 * slot is freed), every acknowledged event is in the log after a restart,
 * nothing is acknowledged that the log lacks, and the engine starts again
 * clean on what it left. */
#include "ordo_error.h"
#include "ordo_failalloc.h"
#include "ordo_hash.h"
#include "ordo_io.h"
#include "ordo_log.h"
#include "ordo_test.h"
#include "ordo_test_engine.h"
#include "ordo_workload.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- a disk that fails on demand --------------------------------------- */

static atomic_int s_write_errno, s_sync_errno, s_create_errno, s_fallocate_errno, s_rename_errno;
static atomic_long s_syncs_called; /* fdatasync and fsync calls, failed ones included */

static ssize_t s_pwrite(void *ctx, int fd, const void *buf, size_t n, off_t off)
{
    (void)ctx;
    int e = atomic_load(&s_write_errno);
    if (e) {
        errno = e;
        return -1;
    }
    return ordo_io_posix()->pwrite(NULL, fd, buf, n, off);
}

static int s_fdatasync(void *ctx, int fd)
{
    (void)ctx;
    atomic_fetch_add(&s_syncs_called, 1);
    int e = atomic_load(&s_sync_errno);
    if (e) {
        errno = e;
        return -1;
    }
    return ordo_io_posix()->fdatasync(NULL, fd);
}

static int s_fsync(void *ctx, int fd)
{
    (void)ctx;
    atomic_fetch_add(&s_syncs_called, 1);
    return ordo_io_posix()->fsync(NULL, fd);
}

/* Creating a file fails (a new log segment, a snapshot's temporary file). */
static int s_open(void *ctx, const char *path, int flags, mode_t mode)
{
    (void)ctx;
    int e = atomic_load(&s_create_errno);
    if (e && (flags & O_CREAT)) {
        errno = e;
        return -1;
    }
    return ordo_io_posix()->open(NULL, path, flags, mode);
}

static int s_fallocate(void *ctx, int fd, off_t off, off_t len)
{
    (void)ctx;
    int e = atomic_load(&s_fallocate_errno);
    if (e) {
        errno = e;
        return -1;
    }
    return ordo_io_posix()->fallocate(NULL, fd, off, len);
}

static int s_rename(void *ctx, const char *from, const char *to)
{
    (void)ctx;
    int e = atomic_load(&s_rename_errno);
    if (e) {
        errno = e;
        return -1;
    }
    return ordo_io_posix()->rename(NULL, from, to);
}

static ordo_io_t s_failing_io(void)
{
    atomic_store(&s_write_errno, 0);
    atomic_store(&s_sync_errno, 0);
    atomic_store(&s_create_errno, 0);
    atomic_store(&s_fallocate_errno, 0);
    atomic_store(&s_rename_errno, 0);
    ordo_io_t io = *ordo_io_posix();
    io.pwrite = s_pwrite;
    io.fdatasync = s_fdatasync;
    io.fsync = s_fsync;
    io.open = s_open;
    io.fallocate = s_fallocate;
    io.rename = s_rename;
    return io;
}

/* ---- what was acknowledged --------------------------------------------- */

typedef struct {
    char id[64];
    uint32_t len;
    int64_t version;
} s_ack_t;

typedef struct {
    s_ack_t *acks;
    size_t n, cap;
    uint64_t bad_positions; /* acknowledged with no position */
    uint64_t no_request_id; /* replies that do not echo the request's id */
} s_acks_t;

/* on_reply: keeps (order, version) of every acknowledged command. */
static void s_note(void *arg, const ordo_reply_t *r)
{
    s_acks_t *a = arg;
    if (r->request_id.len == 0) /* every workload command has one */
        a->no_request_id++;
    if (!r->ok || r->order_id.len == 0 || r->version <= 0)
        return;
    if (r->position <= 0)
        a->bad_positions++;
    if (a->n == a->cap) {
        a->cap = a->cap ? 2 * a->cap : 1024;
        a->acks = realloc(a->acks, a->cap * sizeof *a->acks);
    }
    s_ack_t *k = &a->acks[a->n++];
    k->len = r->order_id.len < sizeof k->id ? r->order_id.len : sizeof k->id - 1;
    memcpy(k->id, r->order_id.ptr, k->len);
    k->version = r->version;
}

/* Every acknowledged event is in the state the log rebuilds. Returns how
 * many are missing. */
static uint64_t s_missing(const s_acks_t *a, const ordo_registry_t *reg)
{
    uint64_t missing = 0;
    for (size_t i = 0; i < a->n; i++) {
        const ordo_order_t *o =
            ordo_registry_find((ordo_registry_t *)reg, (ordo_str_t){a->acks[i].id, a->acks[i].len});
        if (!o || o->version < a->acks[i].version)
            missing++;
    }
    return missing;
}

/* Restarts on the folder without faults: it must start, answer, and hold
 * every acknowledged event; snapshot + log agree with a full replay
 * (finished orders may have left memory before the snapshot). */
static void s_assert_restarts_clean(ordo_test_engine_t *t, const s_acks_t *acks)
{
    t->opts.io = NULL;
    CU_ASSERT_EQUAL_FATAL(ordo_test_engine_start(t), 0);
    static ordo_request_t req;
    ordo_test_create_request(&req, "after-restart", "after-restart-1");
    const ordo_reply_t *r = ordo_test_engine_call(t, &req);
    CU_ASSERT_FATAL(r != NULL);
    CU_ASSERT(r->ok);
    CU_ASSERT_EQUAL(ordo_test_engine_stop(t), 0);
    ordo_registry_t *full = NULL, *fast = NULL;
    ordo_state_recovery_t frep, rep;
    CU_ASSERT_EQUAL_FATAL(ordo_test_engine_recover(t, false, &full, &frep), 0);
    CU_ASSERT_EQUAL_FATAL(ordo_test_engine_recover(t, true, &fast, &rep), 0);
    CU_ASSERT_EQUAL(s_missing(acks, full), 0);
    CU_ASSERT_EQUAL(ordo_state_differences(fast, full), 0);
    ordo_registry_destroy(&full);
    ordo_registry_destroy(&fast);
}

/* After a run with faults (the engine stopped): every reply echoed its
 * request id, every acknowledgement named a position, and a restart
 * without faults holds every acknowledged event. Frees what the run made. */
static void s_finish(ordo_test_engine_t *t, s_acks_t *acks, ordo_workload_t **w)
{
    ordo_log_set_level(ORDO_LOG_WARN);
    fprintf(stderr, "\n    %zu acknowledged events checked after the restart\n", acks->n);
    CU_ASSERT_EQUAL(acks->bad_positions, 0);
    CU_ASSERT_EQUAL(acks->no_request_id, 0);
    s_assert_restarts_clean(t, acks);
    free(acks->acks);
    ordo_workload_destroy(w);
    ordo_test_engine_cleanup(t);
}

/* The log fails (`write` or `sync`, with `errnum`) while commands are in
 * flight: the ones before are acknowledged and durable, the ones after get
 * `unavailable`, every one gets an answer, and the engine refuses work
 * from then on (the log's failure is for good) until restarted. */
static void s_log_fails(atomic_int *fault, int errnum)
{
    ordo_io_t io = s_failing_io();
    ordo_test_engine_t t;
    CU_ASSERT_EQUAL_FATAL(ordo_test_engine_init(&t, &io), 0);
    t.opts.cfg.segment_bytes = 65536; /* segments roll every few hundred events */
    ordo_workload_t *w = ordo_workload_new(3, 100);
    s_acks_t acks = {0};
    ordo_drive_report_t rep;
    CU_ASSERT_EQUAL_FATAL(ordo_test_engine_start(&t), 0);
    CU_ASSERT_EQUAL(ordo_test_engine_drive(&t, w, 500, &rep, s_note, &acks), 0);
    CU_ASSERT_EQUAL(rep.ok, 500);
    uint64_t head = ordo_engine_head(t.engine);

    ordo_log_set_level(ORDO_LOG_ERROR); /* the failure is logged as an error */
    atomic_store(fault, errnum);
    CU_ASSERT_EQUAL(ordo_test_engine_drive(&t, w, 2000, &rep, s_note, &acks), 0);
    CU_ASSERT_EQUAL(rep.unanswered, 0);
    CU_ASSERT(rep.unavailable > 0);
    CU_ASSERT_EQUAL(rep.bad, 0);
    /* A write or fsync fails at once; a segment is created or grown only
     * when one fills, so some commands may still be acknowledged first. */
    if (fault == &s_write_errno || fault == &s_sync_errno)
        CU_ASSERT_EQUAL(rep.ok, 0);
    long syncs_after_failure = atomic_load(&s_syncs_called);
    atomic_store(fault, 0);
    /* Queries go on, from what is durable. */
    static ordo_request_t get;
    ordo_request_init(&get);
    get.type = ORDO_REQ_GET_ORDER;
    get.order_id = (ordo_str_t){acks.acks[0].id, acks.acks[0].len};
    get.request_id = ORDO_STR("get-after-failure");
    const ordo_reply_t *g = ordo_test_engine_call(&t, &get);
    CU_ASSERT_FATAL(g != NULL);
    CU_ASSERT(g->ok);
    /* The disk is back, but the log's failure sticks: still unavailable. */
    CU_ASSERT_EQUAL(ordo_test_engine_drive(&t, w, 50, &rep, s_note, &acks), 0);
    CU_ASSERT_EQUAL(rep.ok, 0);
    CU_ASSERT_EQUAL(rep.unanswered, 0);
    CU_ASSERT_EQUAL(ordo_engine_head(t.engine) >= head, 1);
    CU_ASSERT_EQUAL(ordo_test_engine_stop(&t), -1); /* it says it failed */
    /* A failed log is never synced again (an fsync that failed is not
     * retried: the kernel may have dropped the pages it could not write). */
    CU_ASSERT_EQUAL(atomic_load(&s_syncs_called), syncs_after_failure);
    s_finish(&t, &acks, &w);
}

static void test_disk_full(void)
{
    s_log_fails(&s_write_errno, ENOSPC);
}

static void test_write_error(void)
{
    s_log_fails(&s_write_errno, EIO);
}

static void test_fsync_error(void)
{
    s_log_fails(&s_sync_errno, EIO);
}

static void test_segment_creation_error(void)
{
    s_log_fails(&s_create_errno, EIO);
}

static void test_segment_preallocation_full(void)
{
    s_log_fails(&s_fallocate_errno, ENOSPC);
}

/* A snapshot that cannot be committed (its rename fails) is only a
 * snapshot lost: commands go on, the engine stops cleanly, and a restart
 * replays the log. */
static void test_snapshot_rename_error(void)
{
    ordo_io_t io = s_failing_io();
    ordo_test_engine_t t;
    CU_ASSERT_EQUAL_FATAL(ordo_test_engine_init(&t, &io), 0);
    t.opts.cfg.snapshot_every = 500;
    ordo_workload_t *w = ordo_workload_new(23, 100);
    s_acks_t acks = {0};
    ordo_drive_report_t rep;
    CU_ASSERT_EQUAL_FATAL(ordo_test_engine_start(&t), 0);
    ordo_log_set_level(ORDO_LOG_ERROR + 1); /* each failed snapshot is logged */
    atomic_store(&s_rename_errno, EIO);
    CU_ASSERT_EQUAL(ordo_test_engine_drive(&t, w, 3000, &rep, s_note, &acks), 0);
    CU_ASSERT_EQUAL(rep.ok, 3000);
    CU_ASSERT_EQUAL(ordo_test_engine_stop(&t), -1); /* its last snapshot failed too */
    atomic_store(&s_rename_errno, 0);
    ordo_log_set_level(ORDO_LOG_WARN);
    ordo_test_engine_t *pt = &t;
    s_assert_restarts_clean(pt, &acks);
    free(acks.acks);
    ordo_workload_destroy(&w);
    ordo_test_engine_cleanup(&t);
}

/* Allocations fail on the engine's threads, one in `every`, while a
 * pipelined workload runs and finished orders leave memory at once (so
 * the indexer and the loads back are in play too). */
static void s_allocations_fail(unsigned every)
{
    ordo_test_engine_t t;
    CU_ASSERT_EQUAL_FATAL(ordo_test_engine_init(&t, NULL), 0);
    t.opts.cfg.retain_finished_s = 0;
    ordo_workload_t *w = ordo_workload_new(17, 200);
    s_acks_t acks = {0};
    ordo_drive_report_t rep;
    CU_ASSERT_EQUAL_FATAL(ordo_test_engine_start(&t), 0);
    CU_ASSERT_EQUAL(ordo_test_engine_drive(&t, w, 1000, &rep, s_note, &acks), 0);
    CU_ASSERT_EQUAL(rep.ok, 1000);

    ordo_log_set_level(ORDO_LOG_ERROR); /* each failure is logged */
    uint64_t failed_before = ordo_failalloc_failed();
    ordo_failalloc_arm(every);
    CU_ASSERT_EQUAL(ordo_test_engine_drive(&t, w, 3000, &rep, s_note, &acks), 0);
    ordo_failalloc_arm(0);
    CU_ASSERT(ordo_failalloc_failed() > failed_before);
    CU_ASSERT_EQUAL(rep.unanswered, 0); /* every request got its answer */
    CU_ASSERT(rep.ok + rep.refused + rep.unavailable + rep.bad == 3000);
    fprintf(stderr,
            "\n    1 in %u allocations failed (%llu): %llu ok, %llu refused, %llu unavailable, "
            "%llu not replies\n",
            every, (unsigned long long)(ordo_failalloc_failed() - failed_before),
            (unsigned long long)rep.ok, (unsigned long long)rep.refused,
            (unsigned long long)rep.unavailable, (unsigned long long)rep.bad);
    /* Faults off: it answers every request again (or refuses all, if a
     * failure stopped it for good). */
    CU_ASSERT_EQUAL(ordo_test_engine_drive(&t, w, 500, &rep, s_note, &acks), 0);
    CU_ASSERT_EQUAL(rep.unanswered, 0);
    CU_ASSERT_EQUAL(rep.bad, 0);
    ordo_test_engine_stop(&t);
    s_finish(&t, &acks, &w);
}

static void test_allocations_fail_rarely(void)
{
    s_allocations_fail(97);
}

static void test_allocations_fail_often(void)
{
    s_allocations_fail(7);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    ordo_log_set_level(ORDO_LOG_WARN);
    CU_pSuite s = CU_add_suite("faults", NULL, NULL);
    CU_add_test(s, "disk full while commands are in flight", test_disk_full);
    CU_add_test(s, "write error while commands are in flight", test_write_error);
    CU_add_test(s, "fsync error while commands are in flight", test_fsync_error);
    CU_add_test(s, "a new segment cannot be created", test_segment_creation_error);
    CU_add_test(s, "a new segment cannot be preallocated (disk full)",
                test_segment_preallocation_full);
    CU_add_test(s, "snapshots cannot be committed (rename fails)", test_snapshot_rename_error);
    CU_add_test(s, "one allocation in 97 fails", test_allocations_fail_rarely);
    CU_add_test(s, "one allocation in 7 fails", test_allocations_fail_often);
    return ordo_test_run();
}
