/* Tests for snapshot/: round trips, newest-valid selection, corruption and
 * truncation fallback, crash leftovers and pruning, a failing disk through
 * the I/O table, and hand-made hostile files (with valid CRCs, so the
 * structure checks themselves are exercised). */
#include "ordo_crc32c.h"
#include "ordo_error.h"
#include "ordo_io.h"
#include "ordo_log.h"
#include "ordo_snapshot.h"
#include "ordo_test.h"

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#define HEADER 48

/* ---- deterministic records ---------------------------------------------- */

static uint64_t s_mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

/* Record `i` of a set: mostly 0..700 bytes (some empty), a few large ones,
 * half-compressible content. Writes into buf (RECORD_MAX bytes). */
static size_t s_record(uint64_t seed, uint64_t i, uint8_t *buf)
{
    uint64_t h = s_mix(seed * 1000003 + i);
    size_t len = (size_t)(h % 700);
    if (i % 97 == 0)
        len = 0;
    if (i == 777)
        len = 1024 * 1024 + 3;
    if (i == 1500)
        len = ORDO_SNAPSHOT_RECORD_MAX;
    for (size_t j = 0; j < len; j++)
        buf[j] = (j & 8) ? (uint8_t)(i + j) : (uint8_t)(s_mix(h + j / 8) >> (8 * (j % 8)));
    return len;
}

static uint8_t *s_buf(void)
{
    static uint8_t *buf;
    if (!buf)
        buf = malloc(ORDO_SNAPSHOT_RECORD_MAX);
    return buf;
}

/* Writes a snapshot of `n` records through `io`; returns commit's code. */
static int s_make_io(const char *dir, uint64_t position, uint64_t n, const ordo_io_t *io)
{
    ordo_snapshot_writer_t *w;
    int rc = ordo_snapshot_writer_new(dir, position, io, &w);
    if (rc != 0)
        return rc;
    for (uint64_t i = 0; i < n; i++) {
        size_t len = s_record(position, i, s_buf());
        rc = ordo_snapshot_writer_add(w, s_buf(), len);
        if (rc != 0)
            break;
    }
    int crc = ordo_snapshot_writer_commit(&w);
    CU_ASSERT_PTR_NULL(w);
    return crc;
}

static int s_make(const char *dir, uint64_t position, uint64_t n)
{
    return s_make_io(dir, position, n, NULL);
}

/* Reads every record of `s` and compares with what s_make wrote. */
static void s_check_content(ordo_snapshot_t *s, uint64_t n)
{
    uint64_t position = ordo_snapshot_position(s);
    CU_ASSERT_EQUAL(ordo_snapshot_record_count(s), n);
    uint8_t *expect = malloc(ORDO_SNAPSHOT_RECORD_MAX);
    CU_ASSERT_PTR_NOT_NULL_FATAL(expect);
    uint64_t i = 0, bad = 0;
    const void *rec;
    size_t len;
    int rc;
    while ((rc = ordo_snapshot_next(s, &rec, &len)) == 1) {
        size_t elen = s_record(position, i, expect);
        if (len != elen || (len && memcmp(rec, expect, len) != 0))
            bad++;
        i++;
    }
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_EQUAL(i, n);
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(ordo_snapshot_next(s, &rec, &len), 0); /* end stays end */
    free(expect);
}

static void s_path(char *buf, size_t size, const char *dir, uint64_t position, int tmp)
{
    snprintf(buf, size, "%s/snapshot-%020llu.osnap%s", dir, (unsigned long long)position,
             tmp ? ".tmp" : "");
}

/* Number of entries in `dir` whose name ends with `suffix`. */
static int s_count(const char *dir, const char *suffix)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int n = 0;
    size_t sl = strlen(suffix);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name);
        if (l >= sl && strcmp(de->d_name + l - sl, suffix) == 0)
            n++;
    }
    closedir(d);
    return n;
}

/* ---- log capture --------------------------------------------------------- */

static char s_warns[32768];

static void s_sink(void *ctx, ordo_log_level_t level, const char *line)
{
    (void)ctx;
    if (level >= ORDO_LOG_WARN && strlen(s_warns) + strlen(line) + 2 < sizeof s_warns) {
        strcat(s_warns, line);
        strcat(s_warns, "\n");
    }
}

static void s_capture(void)
{
    s_warns[0] = '\0';
    ordo_log_set_sink(s_sink, NULL);
}

/* ---- a disk that fails --------------------------------------------------- */

typedef struct {
    long long budget;  /* bytes pwrite may still write; then ENOSPC */
    int fsync_fail_at; /* the n-th fsync call fails with EIO (0 = never) */
    int fsyncs;
    int rename_fails;
} fault_t;

static fault_t s_fault;
static ordo_io_t s_fault_io;

static ssize_t s_fault_pwrite(void *ctx, int fd, const void *buf, size_t n, off_t off)
{
    fault_t *f = ctx;
    const ordo_io_t *p = ordo_io_posix();
    if (f->budget <= 0) {
        errno = ENOSPC;
        return -1;
    }
    if ((long long)n > f->budget)
        n = (size_t)f->budget; /* a short write first, then ENOSPC */
    ssize_t w = p->pwrite(p->ctx, fd, buf, n, off);
    if (w > 0)
        f->budget -= w;
    return w;
}

static int s_fault_fsync(void *ctx, int fd)
{
    fault_t *f = ctx;
    if (++f->fsyncs == f->fsync_fail_at) {
        errno = EIO;
        return -1;
    }
    return ordo_io_posix()->fsync(NULL, fd);
}

static int s_fault_rename(void *ctx, const char *from, const char *to)
{
    fault_t *f = ctx;
    if (f->rename_fails) {
        errno = EIO;
        return -1;
    }
    return ordo_io_posix()->rename(NULL, from, to);
}

static const ordo_io_t *s_faulty(long long budget, int fsync_fail_at, int rename_fails)
{
    s_fault = (fault_t){budget, fsync_fail_at, 0, rename_fails};
    s_fault_io = *ordo_io_posix();
    s_fault_io.ctx = &s_fault;
    s_fault_io.pwrite = s_fault_pwrite;
    s_fault_io.fsync = s_fault_fsync;
    s_fault_io.rename = s_fault_rename;
    return &s_fault_io;
}

/* ---- hand-made files ----------------------------------------------------- */

static void s_le(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* Writes header + body with a correct CRC, whatever the fields claim. */
static int s_craft(const char *path, uint64_t position, uint64_t count, uint64_t raw_len,
                   uint64_t comp_len, const void *body, size_t body_len)
{
    uint8_t h[HEADER] = {'O', 'S', 'N', 'P'};
    s_le(h + 4, 1, 2);
    s_le(h + 8, position, 8);
    s_le(h + 16, count, 8);
    s_le(h + 24, raw_len, 8);
    s_le(h + 32, comp_len, 8);
    uint32_t crc = ordo_crc32c(ordo_crc32c(0, h, HEADER), body, body_len);
    s_le(h + 40, crc, 4);
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    int rc = fwrite(h, 1, HEADER, f) == HEADER && fwrite(body, 1, body_len, f) == body_len;
    return (fclose(f) == 0 && rc) ? 0 : -1;
}

/* Compresses raw bytes into one zstd frame; window_log 0 = the format's 20. */
static size_t s_zstd(const void *raw, size_t len, uint8_t *out, size_t cap, int window_log)
{
    ZSTD_CCtx *c = ZSTD_createCCtx();
    ZSTD_CCtx_setParameter(c, ZSTD_c_windowLog, window_log ? window_log : 20);
    ZSTD_outBuffer o = {out, cap, 0};
    ZSTD_inBuffer in = {raw, len, 0};
    /* A first "continue" call keeps the content size unknown, so the frame
     * header declares the full window. */
    ZSTD_compressStream2(c, &o, &in, ZSTD_e_continue);
    size_t r = ZSTD_compressStream2(c, &o, &in, ZSTD_e_end);
    ZSTD_freeCCtx(c);
    return (ZSTD_isError(r) || r != 0) ? 0 : o.pos;
}

/* Crafts a file from raw data and the given header claims, and opens it. */
static int s_open_crafted(const char *dir, const void *raw, size_t raw_size, uint64_t count,
                          uint64_t raw_len, int window_log, ordo_snapshot_t **out)
{
    static uint8_t z[1 << 16];
    size_t zlen = s_zstd(raw, raw_size, z, sizeof z, window_log);
    CU_ASSERT_FATAL(zlen > 0);
    char path[512];
    s_path(path, sizeof path, dir, 7, 0);
    CU_ASSERT_EQUAL_FATAL(s_craft(path, 7, count, raw_len, zlen, z, zlen), 0);
    return ordo_snapshot_open(path, NULL, out);
}

/* ---- tests ---------------------------------------------------------------- */

static void test_round_trip(void)
{
    char dir[256];
    CU_ASSERT_PTR_NOT_NULL_FATAL(ordo_test_tmpdir(dir, sizeof dir));
    CU_ASSERT_PTR_NOT_NULL_FATAL(s_buf());
    ordo_snapshot_t *s = NULL;

    /* 0 records */
    CU_ASSERT_EQUAL(s_make(dir, 5, 0), 0);
    CU_ASSERT_EQUAL_FATAL(ordo_snapshot_open_newest(dir, NULL, &s), 0);
    CU_ASSERT_EQUAL(ordo_snapshot_position(s), 5);
    s_check_content(s, 0);
    ordo_snapshot_destroy(&s);
    CU_ASSERT_PTR_NULL(s);
    ordo_snapshot_destroy(&s); /* twice is fine */

    /* 1 record, written by hand */
    ordo_snapshot_writer_t *w;
    CU_ASSERT_EQUAL_FATAL(ordo_snapshot_writer_new(dir, 6, NULL, &w), 0);
    CU_ASSERT_EQUAL(ordo_snapshot_writer_add(w, "hello", 5), 0);
    CU_ASSERT_EQUAL(ordo_snapshot_writer_add(w, s_buf(), ORDO_SNAPSHOT_RECORD_MAX + 1),
                    ORDO_ERR_TOO_BIG);
    CU_ASSERT_EQUAL(ordo_snapshot_writer_commit(&w), 0);
    CU_ASSERT_PTR_NULL(w);
    CU_ASSERT_EQUAL_FATAL(ordo_snapshot_open_newest(dir, NULL, &s), 0);
    CU_ASSERT_EQUAL(ordo_snapshot_position(s), 6);
    CU_ASSERT_EQUAL(ordo_snapshot_record_count(s), 1);
    const void *rec;
    size_t len;
    CU_ASSERT_EQUAL(ordo_snapshot_next(s, &rec, &len), 1);
    CU_ASSERT_EQUAL(len, 5);
    CU_ASSERT_EQUAL(memcmp(rec, "hello", 5), 0);
    CU_ASSERT_EQUAL(ordo_snapshot_next(s, &rec, &len), 0);
    ordo_snapshot_destroy(&s);

    /* 100k records of varying sizes, including empty, 1 MiB and 16 MiB */
    CU_ASSERT_EQUAL(s_make(dir, UINT64_MAX, 100000), 0);
    CU_ASSERT_EQUAL_FATAL(ordo_snapshot_open_newest(dir, NULL, &s), 0);
    CU_ASSERT_EQUAL(ordo_snapshot_position(s), UINT64_MAX);
    CU_ASSERT_PTR_NOT_NULL(strstr(ordo_snapshot_path(s), "snapshot-18446744073709551615.osnap"));
    s_check_content(s, 100000);
    ordo_snapshot_destroy(&s);
    CU_ASSERT_EQUAL(s_count(dir, ".tmp"), 0);
    ordo_test_rm_rf(dir);
}

static void test_newest_wins(void)
{
    char dir[256];
    CU_ASSERT_PTR_NOT_NULL_FATAL(ordo_test_tmpdir(dir, sizeof dir));
    char sub[300];
    snprintf(sub, sizeof sub, "%s/a/b", dir); /* created by the writer */
    CU_ASSERT_EQUAL(s_make(sub, 20, 10), 0);
    CU_ASSERT_EQUAL(s_make(sub, 30, 20), 0);
    CU_ASSERT_EQUAL(s_make(sub, 10, 30), 0);
    ordo_snapshot_t *s = NULL;
    CU_ASSERT_EQUAL_FATAL(ordo_snapshot_open_newest(sub, NULL, &s), 0);
    CU_ASSERT_EQUAL(ordo_snapshot_position(s), 30);
    s_check_content(s, 20);
    ordo_snapshot_destroy(&s);
    ordo_test_rm_rf(dir);
}

static void test_corrupt_newest_falls_back(void)
{
    char dir[256], newest[512];
    CU_ASSERT_PTR_NOT_NULL_FATAL(ordo_test_tmpdir(dir, sizeof dir));
    CU_ASSERT_EQUAL_FATAL(s_make(dir, 10, 50), 0);
    s_path(newest, sizeof newest, dir, 20, 0);
    char pristine[512];
    snprintf(pristine, sizeof pristine, "%s/pristine", dir);
    CU_ASSERT_EQUAL_FATAL(s_make(dir, 20, 3000), 0);
    CU_ASSERT_EQUAL_FATAL(ordo_test_copy_file(newest, pristine), 0);
    long long size = ordo_test_file_size(newest);
    CU_ASSERT_FATAL(size > 1000);
    long long offsets[] = {0, 5, 8, 16, 24, 32, 40, 44, 47, HEADER, HEADER + 1, size / 2,
                           size - 2, size - 1};
    for (size_t i = 0; i < sizeof offsets / sizeof offsets[0]; i++) {
        CU_ASSERT_EQUAL_FATAL(ordo_test_copy_file(pristine, newest), 0);
        CU_ASSERT_EQUAL_FATAL(ordo_test_flip_bit(newest, offsets[i], (int)(i % 8)), 0);
        s_capture();
        ordo_snapshot_t *s = NULL;
        int rc = ordo_snapshot_open_newest(dir, NULL, &s);
        ordo_log_set_sink(NULL, NULL);
        CU_ASSERT_EQUAL(rc, 0);
        if (rc != 0) {
            fprintf(stderr, "offset %lld: %s\n", offsets[i], ordo_strerror(rc));
            continue;
        }
        CU_ASSERT_EQUAL(ordo_snapshot_position(s), 10);
        s_check_content(s, 50);
        ordo_snapshot_destroy(&s);
        CU_ASSERT_PTR_NOT_NULL(strstr(s_warns, "snapshot-00000000000000000020.osnap"));
        CU_ASSERT_PTR_NOT_NULL(strstr(s_warns, "WARN"));
        /* The CRC pass runs before any decompression. */
        if (offsets[i] >= HEADER || offsets[i] == 40)
            CU_ASSERT_PTR_NOT_NULL(strstr(s_warns, "checksum mismatch (stored"));
    }
    /* Restored, it wins again: the flips were the only problem. */
    CU_ASSERT_EQUAL_FATAL(ordo_test_copy_file(pristine, newest), 0);
    ordo_snapshot_t *s = NULL;
    CU_ASSERT_EQUAL_FATAL(ordo_snapshot_open_newest(dir, NULL, &s), 0);
    CU_ASSERT_EQUAL(ordo_snapshot_position(s), 20);
    ordo_snapshot_destroy(&s);
    ordo_test_rm_rf(dir);
}

static void test_changed_after_open(void)
{
    char dir[256], path[512];
    CU_ASSERT_PTR_NOT_NULL_FATAL(ordo_test_tmpdir(dir, sizeof dir));
    CU_ASSERT_EQUAL_FATAL(s_make(dir, 10, 3000), 0);
    s_path(path, sizeof path, dir, 10, 0);
    ordo_snapshot_t *s = NULL;
    CU_ASSERT_EQUAL_FATAL(ordo_snapshot_open(path, NULL, &s), 0);
    /* The file is rewritten under the open snapshot: streaming must not end
     * cleanly (the CRC is re-checked while streaming). */
    CU_ASSERT_EQUAL_FATAL(ordo_test_flip_bit(path, ordo_test_file_size(path) - 3, 2), 0);
    s_capture();
    const void *rec;
    size_t len;
    int rc;
    while ((rc = ordo_snapshot_next(s, &rec, &len)) == 1)
        ;
    ordo_log_set_sink(NULL, NULL);
    CU_ASSERT_EQUAL(rc, ORDO_ERR_CORRUPT);
    CU_ASSERT_EQUAL(ordo_snapshot_next(s, &rec, &len), ORDO_ERR_CORRUPT); /* sticks */
    CU_ASSERT_PTR_NOT_NULL(strstr(s_warns, "snapshot-00000000000000000010.osnap"));
    ordo_snapshot_destroy(&s);

    /* Random bytes are stored as a raw zstd block: a flipped bit there
     * decodes fine, so only the CRC re-checked at the end can catch it. */
    static uint8_t noise[100000];
    for (size_t i = 0; i < sizeof noise; i++)
        noise[i] = (uint8_t)(s_mix(i / 8) >> (8 * (i % 8)));
    ordo_snapshot_writer_t *w;
    CU_ASSERT_EQUAL_FATAL(ordo_snapshot_writer_new(dir, 11, NULL, &w), 0);
    CU_ASSERT_EQUAL(ordo_snapshot_writer_add(w, noise, sizeof noise), 0);
    CU_ASSERT_EQUAL_FATAL(ordo_snapshot_writer_commit(&w), 0);
    s_path(path, sizeof path, dir, 11, 0);
    CU_ASSERT_EQUAL_FATAL(ordo_snapshot_open(path, NULL, &s), 0);
    CU_ASSERT_EQUAL_FATAL(ordo_test_flip_bit(path, ordo_test_file_size(path) / 2, 4), 0);
    s_capture();
    CU_ASSERT_EQUAL(ordo_snapshot_next(s, &rec, &len), 1);
    CU_ASSERT_EQUAL(len, sizeof noise);
    CU_ASSERT_EQUAL(ordo_snapshot_next(s, &rec, &len), ORDO_ERR_CORRUPT);
    ordo_log_set_sink(NULL, NULL);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_warns, "checksum mismatch while streaming"));
    ordo_snapshot_destroy(&s);
    ordo_test_rm_rf(dir);
}

static void test_truncated_newest_falls_back(void)
{
    char dir[256], newest[512], oldest[512], pristine[512];
    CU_ASSERT_PTR_NOT_NULL_FATAL(ordo_test_tmpdir(dir, sizeof dir));
    CU_ASSERT_EQUAL_FATAL(s_make(dir, 10, 50), 0);
    CU_ASSERT_EQUAL_FATAL(s_make(dir, 20, 3000), 0);
    s_path(oldest, sizeof oldest, dir, 10, 0);
    s_path(newest, sizeof newest, dir, 20, 0);
    snprintf(pristine, sizeof pristine, "%s/pristine", dir);
    CU_ASSERT_EQUAL_FATAL(ordo_test_copy_file(newest, pristine), 0);
    long long size = ordo_test_file_size(newest);
    long long sizes[] = {0, 1, 4, HEADER - 1, HEADER, HEADER + 1, HEADER + 9, size / 2, size - 1};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        CU_ASSERT_EQUAL_FATAL(ordo_test_copy_file(pristine, newest), 0);
        CU_ASSERT_EQUAL_FATAL(ordo_test_truncate(newest, sizes[i]), 0);
        s_capture();
        ordo_snapshot_t *s = NULL;
        int rc = ordo_snapshot_open_newest(dir, NULL, &s);
        ordo_log_set_sink(NULL, NULL);
        CU_ASSERT_EQUAL(rc, 0);
        if (rc == 0) {
            CU_ASSERT_EQUAL(ordo_snapshot_position(s), 10);
            s_check_content(s, 50);
        }
        ordo_snapshot_destroy(&s);
        CU_ASSERT_PTR_NOT_NULL(strstr(s_warns, "snapshot-00000000000000000020.osnap"));
    }
    /* Every snapshot invalid: not found, nothing half-opened. */
    CU_ASSERT_EQUAL_FATAL(ordo_test_truncate(oldest, HEADER), 0);
    ordo_snapshot_t *s = (ordo_snapshot_t *)1;
    s_capture();
    CU_ASSERT_EQUAL(ordo_snapshot_open_newest(dir, NULL, &s), ORDO_ERR_NOT_FOUND);
    ordo_log_set_sink(NULL, NULL);
    CU_ASSERT_PTR_NULL(s);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_warns, "snapshot-00000000000000000010.osnap"));
    /* A missing folder is "none" too. */
    char missing[300];
    snprintf(missing, sizeof missing, "%s/nope", dir);
    CU_ASSERT_EQUAL(ordo_snapshot_open_newest(missing, NULL, &s), ORDO_ERR_NOT_FOUND);
    ordo_test_rm_rf(dir);
}

static void test_temp_files_and_prune(void)
{
    char dir[256], path[512], saved[512];
    CU_ASSERT_PTR_NOT_NULL_FATAL(ordo_test_tmpdir(dir, sizeof dir));
    CU_ASSERT_EQUAL_FATAL(s_make(dir, 10, 5), 0);
    CU_ASSERT_EQUAL_FATAL(s_make(dir, 20, 6), 0);
    CU_ASSERT_EQUAL_FATAL(s_make(dir, 30, 7), 0);

    /* Crash mid-write: keep a copy of the temp file as the writer left it. */
    ordo_snapshot_writer_t *w;
    CU_ASSERT_EQUAL_FATAL(ordo_snapshot_writer_new(dir, 40, NULL, &w), 0);
    for (int i = 0; i < 2000; i++)
        CU_ASSERT_EQUAL(ordo_snapshot_writer_add(w, s_buf(), s_record(40, (uint64_t)i, s_buf())),
                        0);
    s_path(path, sizeof path, dir, 40, 1);
    snprintf(saved, sizeof saved, "%s/saved", dir);
    CU_ASSERT_EQUAL_FATAL(ordo_test_copy_file(path, saved), 0);
    ordo_snapshot_writer_abort(&w);
    CU_ASSERT_PTR_NULL(w);
    CU_ASSERT_EQUAL(ordo_test_file_size(path), -1); /* abort removed it */
    CU_ASSERT_EQUAL_FATAL(ordo_test_copy_file(saved, path), 0);
    remove(saved);
    /* Crash after writing, before the rename: a complete file, temp name. */
    char done[512], tmp50[512];
    s_path(done, sizeof done, dir, 30, 0);
    s_path(tmp50, sizeof tmp50, dir, 50, 1);
    CU_ASSERT_EQUAL_FATAL(ordo_test_copy_file(done, tmp50), 0);

    ordo_snapshot_t *s = NULL;
    CU_ASSERT_EQUAL_FATAL(ordo_snapshot_open_newest(dir, NULL, &s), 0);
    CU_ASSERT_EQUAL(ordo_snapshot_position(s), 30);
    s_check_content(s, 7);
    ordo_snapshot_destroy(&s);

    CU_ASSERT_EQUAL(ordo_snapshot_prune(dir, 2, NULL), 3); /* 10 and two temps */
    CU_ASSERT_EQUAL(s_count(dir, ".tmp"), 0);
    CU_ASSERT_EQUAL(s_count(dir, ".osnap"), 2);
    s_path(path, sizeof path, dir, 10, 0);
    CU_ASSERT_EQUAL(ordo_test_file_size(path), -1);
    CU_ASSERT_EQUAL(ordo_snapshot_prune(dir, 2, NULL), 0);
    CU_ASSERT_EQUAL_FATAL(ordo_snapshot_open_newest(dir, NULL, &s), 0);
    CU_ASSERT_EQUAL(ordo_snapshot_position(s), 30);
    ordo_snapshot_destroy(&s);

    /* Invalid snapshots do not count toward `keep`. */
    CU_ASSERT_EQUAL_FATAL(s_make(dir, 40, 8), 0);
    s_path(path, sizeof path, dir, 40, 0);
    CU_ASSERT_EQUAL_FATAL(ordo_test_flip_bit(path, HEADER + 2, 0), 0);
    s_capture();
    CU_ASSERT_EQUAL(ordo_snapshot_prune(dir, 1, NULL), 2); /* 40 (corrupt) and 20 */
    ordo_log_set_sink(NULL, NULL);
    CU_ASSERT_EQUAL(s_count(dir, ".osnap"), 1);
    CU_ASSERT_EQUAL_FATAL(ordo_snapshot_open_newest(dir, NULL, &s), 0);
    CU_ASSERT_EQUAL(ordo_snapshot_position(s), 30);
    ordo_snapshot_destroy(&s);
    CU_ASSERT_EQUAL(ordo_snapshot_prune(dir, 0, NULL), 1);
    CU_ASSERT_EQUAL(ordo_snapshot_open_newest(dir, NULL, &s), ORDO_ERR_NOT_FOUND);
    ordo_test_rm_rf(dir);
}

/* After a failed commit: the old snapshot is still the one opened, no temp
 * file is left, and position 20 does not exist. */
static void s_assert_old_survives(const char *dir)
{
    ordo_snapshot_t *s = NULL;
    CU_ASSERT_EQUAL(ordo_snapshot_open_newest(dir, NULL, &s), 0);
    if (s) {
        CU_ASSERT_EQUAL(ordo_snapshot_position(s), 10);
        s_check_content(s, 40);
    }
    ordo_snapshot_destroy(&s);
    CU_ASSERT_EQUAL(s_count(dir, ".tmp"), 0);
    CU_ASSERT_EQUAL(s_count(dir, ".osnap"), 1);
}

static void test_failing_io(void)
{
    char dir[256];
    CU_ASSERT_PTR_NOT_NULL_FATAL(ordo_test_tmpdir(dir, sizeof dir));
    CU_ASSERT_EQUAL_FATAL(s_make(dir, 10, 40), 0);
    s_capture(); /* the expected ERROR lines go to s_warns */

    /* Disk full after K bytes: in new, in add or in commit. */
    long long budgets[] = {0, 20, HEADER, HEADER + 30, 5000, 100000, 400000};
    for (size_t i = 0; i < sizeof budgets / sizeof budgets[0]; i++) {
        const ordo_io_t *io = s_faulty(budgets[i], 0, 0);
        ordo_snapshot_writer_t *w = NULL;
        int rc = ordo_snapshot_writer_new(dir, 20, io, &w);
        if (rc != 0) {
            CU_ASSERT_EQUAL(rc, ORDO_ERR_NOSPACE);
            CU_ASSERT_PTR_NULL(w);
        } else {
            int first = 0;
            for (uint64_t r = 0; r < 3000; r++) {
                int a = ordo_snapshot_writer_add(w, s_buf(), s_record(20, r, s_buf()));
                if (first == 0)
                    first = a;
                else
                    CU_ASSERT_EQUAL(a, ORDO_ERR_FAILED); /* refuses after a failure */
            }
            CU_ASSERT(first == 0 || first == ORDO_ERR_NOSPACE);
            CU_ASSERT_EQUAL(ordo_snapshot_writer_commit(&w), ORDO_ERR_NOSPACE);
            CU_ASSERT_PTR_NULL(w);
        }
        s_assert_old_survives(dir);
    }
    CU_ASSERT_PTR_NOT_NULL(strstr(s_warns, "No space left on device"));
    /* The snapshot really is bigger than the largest budget. */
    CU_ASSERT_EQUAL(s_make_io(dir, 20, 3000, s_faulty(1LL << 40, 0, 0)), 0);
    char p20[512];
    s_path(p20, sizeof p20, dir, 20, 0);
    CU_ASSERT(ordo_test_file_size(p20) > 400000);
    CU_ASSERT_EQUAL(remove(p20), 0);

    /* fsync of the file fails: never retried, nothing replaced. */
    CU_ASSERT_EQUAL(s_make_io(dir, 20, 3000, s_faulty(1LL << 40, 1, 0)), ORDO_ERR_IO);
    CU_ASSERT_EQUAL(s_fault.fsyncs, 1);
    s_assert_old_survives(dir);
    /* rename fails. */
    CU_ASSERT_EQUAL(s_make_io(dir, 20, 3000, s_faulty(1LL << 40, 0, 1)), ORDO_ERR_IO);
    s_assert_old_survives(dir);
    /* Same position rewritten, disk full: the existing file is untouched. */
    CU_ASSERT_EQUAL(s_make_io(dir, 10, 3000, s_faulty(1000, 0, 0)), ORDO_ERR_NOSPACE);
    s_assert_old_survives(dir);
    /* The folder fsync fails after the rename: reported; the file is whole. */
    CU_ASSERT_EQUAL(s_make_io(dir, 20, 30, s_faulty(1LL << 40, 2, 0)), ORDO_ERR_IO);
    CU_ASSERT_EQUAL(s_fault.fsyncs, 2);
    ordo_snapshot_t *s = NULL;
    CU_ASSERT_EQUAL_FATAL(ordo_snapshot_open_newest(dir, NULL, &s), 0);
    CU_ASSERT_EQUAL(ordo_snapshot_position(s), 20);
    s_check_content(s, 30);
    ordo_snapshot_destroy(&s);
    ordo_log_set_sink(NULL, NULL);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_warns, "fsync folder"));
    ordo_test_rm_rf(dir);
}

static void test_open_newest_before(void)
{
    char dir[256];
    CU_ASSERT_PTR_NOT_NULL_FATAL(ordo_test_tmpdir(dir, sizeof dir));
    CU_ASSERT_EQUAL_FATAL(s_make(dir, 10, 1), 0);
    CU_ASSERT_EQUAL_FATAL(s_make(dir, 20, 2), 0);
    CU_ASSERT_EQUAL_FATAL(s_make(dir, 30, 3), 0);
    struct {
        uint64_t max, want;
    } cases[] = {{UINT64_MAX, 30}, {30, 30}, {29, 20}, {25, 20}, {20, 20}, {19, 10}, {10, 10}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ordo_snapshot_t *s = NULL;
        CU_ASSERT_EQUAL(ordo_snapshot_open_newest_before(dir, cases[i].max, NULL, &s), 0);
        if (!s)
            continue;
        CU_ASSERT_EQUAL(ordo_snapshot_position(s), cases[i].want);
        s_check_content(s, cases[i].want / 10);
        ordo_snapshot_destroy(&s);
    }
    ordo_snapshot_t *s = NULL;
    CU_ASSERT_EQUAL(ordo_snapshot_open_newest_before(dir, 9, NULL, &s), ORDO_ERR_NOT_FOUND);
    CU_ASSERT_PTR_NULL(s);
    /* Corrupt 20: asking for <= 25 falls back to 10. */
    char p20[512];
    s_path(p20, sizeof p20, dir, 20, 0);
    CU_ASSERT_EQUAL_FATAL(ordo_test_flip_bit(p20, HEADER + 3, 5), 0);
    s_capture();
    CU_ASSERT_EQUAL_FATAL(ordo_snapshot_open_newest_before(dir, 25, NULL, &s), 0);
    ordo_log_set_sink(NULL, NULL);
    CU_ASSERT_EQUAL(ordo_snapshot_position(s), 10);
    ordo_snapshot_destroy(&s);
    ordo_test_rm_rf(dir);
}

static void test_hostile_files(void)
{
    char dir[256], path[512];
    CU_ASSERT_PTR_NOT_NULL_FATAL(ordo_test_tmpdir(dir, sizeof dir));
    ordo_snapshot_t *s = NULL;
    const void *rec;
    size_t len;
    const uint64_t huge = 1ULL << 63;

    /* The crafting helper makes valid files: the cases below fail for the
     * field they change, not for the CRC. */
    CU_ASSERT_EQUAL_FATAL(s_open_crafted(dir, "\x03" "abc", 4, 1, 4, 0, &s), 0);
    CU_ASSERT_EQUAL(ordo_snapshot_next(s, &rec, &len), 1);
    CU_ASSERT_EQUAL(len, 3);
    CU_ASSERT_EQUAL(ordo_snapshot_next(s, &rec, &len), 0);
    ordo_snapshot_destroy(&s);

    ordo_log_set_level(ORDO_LOG_ERROR); /* the expected WARN lines are noise */
    /* Count and raw length claiming 2^63: no allocation from them (ASan would
     * abort), just corrupt. */
    CU_ASSERT_EQUAL(s_open_crafted(dir, "\x03" "abc", 4, huge, huge, 0, &s), ORDO_ERR_CORRUPT);
    CU_ASSERT_PTR_NULL(s);
    CU_ASSERT_EQUAL(s_open_crafted(dir, "\x03" "abc", 4, 1, huge, 0, &s), ORDO_ERR_CORRUPT);
    CU_ASSERT_EQUAL(s_open_crafted(dir, "\x03" "abc", 4, 2, 4, 0, &s), ORDO_ERR_CORRUPT);
    CU_ASSERT_EQUAL(s_open_crafted(dir, "\x03" "abc", 4, 0, 0, 0, &s), ORDO_ERR_CORRUPT);
    CU_ASSERT_EQUAL(s_open_crafted(dir, "\x03" "abc", 4, 5, 4, 0, &s), ORDO_ERR_CORRUPT);
    /* A record length of 1 GiB, even with a raw length that would allow it. */
    s_capture();
    ordo_log_set_level(ORDO_LOG_INFO);
    CU_ASSERT_EQUAL(s_open_crafted(dir, "\x80\x80\x80\x80\x04" "abc", 8, 1, huge, 0, &s),
                    ORDO_ERR_CORRUPT);
    ordo_log_set_sink(NULL, NULL);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_warns, "1073741824"));
    CU_ASSERT_PTR_NOT_NULL(strstr(s_warns, "snapshot-00000000000000000007.osnap"));
    ordo_log_set_level(ORDO_LOG_ERROR);
    /* 1 MiB claimed (allowed) but only 3 bytes there. */
    CU_ASSERT_EQUAL(s_open_crafted(dir, "\x80\x80\x40" "abc", 6, 1, huge, 0, &s),
                    ORDO_ERR_CORRUPT);
    /* A varint that never ends. */
    CU_ASSERT_EQUAL(s_open_crafted(dir, "\x80\x80\x80\x80\x80\x80\x01", 7, 1, 7, 0, &s),
                    ORDO_ERR_CORRUPT);
    /* Data after the last record. */
    CU_ASSERT_EQUAL(s_open_crafted(dir, "\x01" "a" "\x01" "b", 4, 1, 2, 0, &s),
                    ORDO_ERR_CORRUPT);
    CU_ASSERT_EQUAL(s_open_crafted(dir, "\x01" "a" "\x01" "b", 4, 1, 4, 0, &s),
                    ORDO_ERR_CORRUPT);
    /* A frame that asks for a 128 MiB window. */
    CU_ASSERT_EQUAL(s_open_crafted(dir, "\x03" "abc", 4, 1, 4, 27, &s), ORDO_ERR_CORRUPT);
    /* Two frames back to back. */
    uint8_t body[256];
    size_t a = s_zstd("\x01" "a", 2, body, sizeof body, 0);
    size_t b = s_zstd("\x01" "b", 2, body + a, sizeof body - a, 0);
    CU_ASSERT_FATAL(a > 0 && b > 0);
    s_path(path, sizeof path, dir, 7, 0);
    CU_ASSERT_EQUAL_FATAL(s_craft(path, 7, 2, 4, a + b, body, a + b), 0);
    CU_ASSERT_EQUAL(ordo_snapshot_open(path, NULL, &s), ORDO_ERR_CORRUPT);
    /* Compressed length claiming 2^63, or one byte off. */
    CU_ASSERT_EQUAL_FATAL(s_craft(path, 7, 1, 2, huge, body, a), 0);
    CU_ASSERT_EQUAL(ordo_snapshot_open(path, NULL, &s), ORDO_ERR_CORRUPT);
    CU_ASSERT_EQUAL_FATAL(s_craft(path, 7, 1, 2, a - 1, body, a), 0);
    CU_ASSERT_EQUAL(ordo_snapshot_open(path, NULL, &s), ORDO_ERR_CORRUPT);
    /* Valid bytes under a name with another position. */
    CU_ASSERT_EQUAL_FATAL(s_craft(path, 8, 1, 2, a, body, a), 0);
    CU_ASSERT_EQUAL(ordo_snapshot_open(path, NULL, &s), ORDO_ERR_CORRUPT);
    CU_ASSERT_EQUAL(ordo_snapshot_open_newest(dir, NULL, &s), ORDO_ERR_NOT_FOUND);
    ordo_log_set_level(ORDO_LOG_INFO);
    ordo_test_rm_rf(dir);
}

static void test_misuse(void)
{
    ordo_snapshot_writer_t *w = (ordo_snapshot_writer_t *)1;
    CU_ASSERT_EQUAL(ordo_snapshot_writer_new(NULL, 1, NULL, &w), ORDO_ERR_INVALID);
    CU_ASSERT_PTR_NULL(w);
    CU_ASSERT_EQUAL(ordo_snapshot_writer_add(NULL, "x", 1), ORDO_ERR_INVALID);
    CU_ASSERT_EQUAL(ordo_snapshot_writer_commit(&w), ORDO_ERR_INVALID);
    ordo_snapshot_writer_abort(&w);
    ordo_snapshot_writer_abort(NULL);
    ordo_snapshot_t *s = NULL;
    CU_ASSERT_EQUAL(ordo_snapshot_open_newest(NULL, NULL, &s), ORDO_ERR_INVALID);
    CU_ASSERT_EQUAL(ordo_snapshot_open("/nonexistent/snapshot-00000000000000000001.osnap",
                                       NULL, &s),
                    ORDO_ERR_NOT_FOUND);
    ordo_snapshot_destroy(NULL);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite suite = CU_add_suite("snapshot", NULL, NULL);
    CU_add_test(suite, "round trip 0, 1, 100k records", test_round_trip);
    CU_add_test(suite, "newest wins", test_newest_wins);
    CU_add_test(suite, "corrupt newest falls back", test_corrupt_newest_falls_back);
    CU_add_test(suite, "file changed after open", test_changed_after_open);
    CU_add_test(suite, "truncated newest falls back", test_truncated_newest_falls_back);
    CU_add_test(suite, "temp files ignored, prune", test_temp_files_and_prune);
    CU_add_test(suite, "failing io keeps old snapshot", test_failing_io);
    CU_add_test(suite, "open newest before", test_open_newest_before);
    CU_add_test(suite, "hostile files", test_hostile_files);
    CU_add_test(suite, "misuse", test_misuse);
    int rc = ordo_test_run();
    free(s_buf());
    return rc;
}
