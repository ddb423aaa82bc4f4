/* Tests for wal/: round trip, torn tails at every byte, mid-log corruption
 * (refuse / repair), segment rolling, readers (mid-frame, tail, concurrent),
 * sync policies, preallocated segments (and file systems without
 * preallocation), injected write/sync/preallocation failures, bad options
 * and hostile frame headers. Faults come from an ordo_io_t wrapper below;
 * the log has no test hooks. Records are regenerated from their position,
 * so every read is checked byte for byte. Segments are preallocated (their
 * file size is the segment size), so frame offsets and data ends are found
 * by walking frame headers, never from the file size. */
#include "ordo_crc32c.h"
#include "ordo_error.h"
#include "ordo_io.h"
#include "ordo_log.h"
#include "ordo_test.h"
#include "ordo_wal.h"
#include "ordo_wal_format.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#define SMALL_SEG 65536

/* ---- log capture ------------------------------------------------------- */

static _Atomic int s_warns, s_errors;

static void s_sink(void *ctx, ordo_log_level_t level, const char *line)
{
    (void)ctx;
    (void)line;
    if (level == ORDO_LOG_WARN)
        s_warns++;
    else if (level == ORDO_LOG_ERROR)
        s_errors++;
}

/* ---- records: content is a function of the position ---------------------- */

static uint64_t s_huge_pos; /* this position gets a 100 KB incompressible record */

static uint64_t s_mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

static size_t s_record_len(uint64_t pos)
{
    if (pos == s_huge_pos)
        return 100000;
    if (pos % 13 == 0)
        return 0;
    return (size_t)(s_mix(pos) % 700);
}

/* Half pseudo-random bytes, half text: compresses somewhat. */
static void s_record_fill(uint64_t pos, uint8_t *buf, size_t len)
{
    uint64_t x = s_mix(pos + 0x9e3779b97f4a7c15ull);
    size_t half = pos == s_huge_pos ? len : len / 2;
    for (size_t i = 0; i < half; i++) {
        x = s_mix(x + i);
        buf[i] = (uint8_t)x;
    }
    for (size_t i = half; i < len; i++)
        buf[i] = (uint8_t)("order-event "[i % 12] + (pos % 3));
}

/* Appends `count` records at the next positions; checks the first one. */
static int s_append(ordo_wal_t *wal, size_t count, uint64_t *first_out)
{
    uint64_t first = ordo_wal_head(wal) + 1;
    size_t total = 0;
    for (size_t i = 0; i < count; i++)
        total += s_record_len(first + i);
    uint8_t *arena = malloc(total + 1);
    ordo_wal_rec_t *recs = calloc(count, sizeof *recs);
    if (!arena || !recs) {
        free(arena);
        free(recs);
        return ORDO_ERR_NOMEM;
    }
    size_t off = 0;
    for (size_t i = 0; i < count; i++) {
        size_t len = s_record_len(first + i);
        s_record_fill(first + i, arena + off, len);
        recs[i] = (ordo_wal_rec_t){.data = arena + off, .len = len};
        off += len;
    }
    uint64_t got = 0;
    int rc = ordo_wal_append(wal, recs, count, &got);
    if (rc == 0)
        CU_ASSERT_EQUAL(got, first);
    if (first_out)
        *first_out = got;
    free(arena);
    free(recs);
    return rc;
}

/* 1 if (pos, data, len) is the record that belongs at pos. */
static int s_record_ok(uint64_t pos, const void *data, size_t len)
{
    static _Thread_local uint8_t buf[100000];
    size_t want = s_record_len(pos);
    if (len != want)
        return 0;
    s_record_fill(pos, buf, want);
    return want == 0 || memcmp(buf, data, want) == 0;
}

/* Reads from `from` until "no more"; checks positions are consecutive and
 * every record's bytes. Returns the number read, -1 on any mismatch. */
static long long s_verify(ordo_wal_t *wal, uint64_t from)
{
    ordo_wal_reader_t *r = NULL;
    if (ordo_wal_reader_new(wal, from, &r) != 0)
        return -1;
    long long n = 0;
    uint64_t pos, expect = from ? from : 1;
    const void *data;
    size_t len;
    int rc;
    while ((rc = ordo_wal_reader_next(r, &pos, &data, &len)) == 1) {
        if (pos != expect || !s_record_ok(pos, data, len)) {
            n = -1;
            break;
        }
        expect++;
        n++;
    }
    if (rc < 0)
        n = -1;
    ordo_wal_reader_destroy(&r);
    CU_ASSERT_PTR_NULL(r);
    return n;
}

/* ---- files ------------------------------------------------------------- */

static ordo_wal_options_t s_opts(const char *dir, uint64_t seg, ordo_sync_mode_t mode)
{
    return (ordo_wal_options_t){.dir = dir, .segment_bytes = seg, .sync_mode = mode};
}

static int s_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Segment names (first positions) in `dir`, sorted. */
static size_t s_list(const char *dir, uint64_t *names, size_t max)
{
    size_t n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL && n < max) {
        unsigned long long v;
        char tail[8];
        if (strlen(de->d_name) == 24 && sscanf(de->d_name, "%20llu%7s", &v, tail) == 2 &&
            strcmp(tail, ".wal") == 0)
            names[n++] = v;
    }
    closedir(d);
    qsort(names, n, sizeof *names, s_cmp_u64);
    return n;
}

static void s_seg_path(const char *dir, uint64_t first, char *buf, size_t size)
{
    snprintf(buf, size, "%s/%020" PRIu64 ".wal", dir, first);
}

/* Where a segment file's frames end: just past its last non-zero byte
 * (what follows is preallocated zeros). */
static long long s_data_end(const char *path)
{
    FILE *f = fopen(path, "rb");
    long long end = 0, at = 0;
    int c;
    while (f && (c = fgetc(f)) != EOF) {
        at++;
        if (c != 0)
            end = at;
    }
    if (f)
        fclose(f);
    return end;
}

static void s_last_seg_path(const char *dir, char *buf, size_t size)
{
    uint64_t names[4096];
    size_t n = s_list(dir, names, 4096);
    s_seg_path(dir, n ? names[n - 1] : 0, buf, size);
}

static void s_copy_dir(const char *from, const char *to)
{
    uint64_t names[4096];
    size_t n = s_list(from, names, 4096);
    char a[512], b[512];
    for (size_t i = 0; i < n; i++) {
        s_seg_path(from, names[i], a, sizeof a);
        s_seg_path(to, names[i], b, sizeof b);
        CU_ASSERT_EQUAL(ordo_test_copy_file(a, b), 0);
    }
}

static int s_append_bytes(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "ab");
    if (!f)
        return -1;
    size_t w = fwrite(data, 1, len, f);
    return fclose(f) == 0 && w == len ? 0 : -1;
}

static uint8_t *s_read_file(const char *path, size_t *len)
{
    long long size = ordo_test_file_size(path);
    FILE *f = fopen(path, "rb");
    if (size < 0 || !f) {
        if (f)
            fclose(f);
        return NULL;
    }
    uint8_t *buf = malloc((size_t)size + 1);
    if (buf && fread(buf, 1, (size_t)size, f) != (size_t)size) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *len = (size_t)size;
    return buf;
}

static int s_write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t w = fwrite(data, 1, len, f);
    return fclose(f) == 0 && w == len ? 0 : -1;
}

/* Writes `len` bytes at `off` of an existing file (zeros when data is
 * NULL), leaving the rest of it as it is. 0 or -1. */
static int s_write_at(const char *path, long long off, const void *data, size_t len)
{
    static const uint8_t zeros[65536];
    int fd = open(path, O_WRONLY);
    if (fd < 0)
        return -1;
    int rc = 0;
    const uint8_t *p = data;
    while (len > 0 && rc == 0) {
        size_t n = data ? len : len < sizeof zeros ? len : sizeof zeros;
        ssize_t w = pwrite(fd, data ? (const void *)p : zeros, n, (off_t)off);
        if (w <= 0)
            rc = -1;
        else {
            len -= (size_t)w;
            off += w;
            p += data ? w : 0;
        }
    }
    return close(fd) == 0 ? rc : -1;
}

/* Reads `len` bytes at `off`. 0 or -1. */
static int s_read_at(const char *path, long long off, void *buf, size_t len)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -1;
    ssize_t r = pread(fd, buf, len, (off_t)off);
    close(fd);
    return r == (ssize_t)len ? 0 : -1;
}

/* Walks the frame headers of a segment from offset 0 (lengths only, no
 * checks) and returns its data end: the first all-zero header or the end
 * of file. Offsets of the first `max` frames go to offs (may be NULL),
 * their number to *count (may be NULL). -1 if unreadable. */
static long long s_walk(const char *path, long long *offs, int max, int *count)
{
    long long size = ordo_test_file_size(path);
    if (size < 0)
        return -1;
    long long off = 0;
    int n = 0;
    while (off + ORDO_WAL_HEADER_SIZE <= size) {
        uint8_t h[ORDO_WAL_HEADER_SIZE];
        if (s_read_at(path, off, h, sizeof h) != 0)
            return -1;
        if (ordo_wal_hdr_is_zero(h))
            break;
        if (off == 0 && (h[6] & ORDO_WAL_FLAG_LOG_ID)) { /* the segment's identity */
            off = ORDO_WAL_ID_FRAME_SIZE;
            continue;
        }
        if (offs && n < max)
            offs[n] = off;
        n++;
        uint32_t clen =
            (uint32_t)h[20] | (uint32_t)h[21] << 8 | (uint32_t)h[22] << 16 | (uint32_t)h[23] << 24;
        off += ORDO_WAL_HEADER_SIZE + (long long)clen;
    }
    if (count)
        *count = n;
    return off < size ? off : size;
}

/* 1 if every byte of `path` from `off` to its end is zero. */
static int s_zero_from(const char *path, long long off)
{
    long long size = ordo_test_file_size(path);
    uint8_t buf[65536];
    while (off < size) {
        size_t n = size - off < (long long)sizeof buf ? (size_t)(size - off) : sizeof buf;
        if (s_read_at(path, off, buf, n) != 0)
            return 0;
        for (size_t i = 0; i < n; i++)
            if (buf[i])
                return 0;
        off += (long long)n;
    }
    return 1;
}

/* Length of p[0..n) up to its last non-zero byte: what recovery reports as
 * torn (trailing zeros of a torn write look like preallocated space). */
static size_t s_nonzero_len(const uint8_t *p, size_t n)
{
    while (n > 0 && p[n - 1] == 0)
        n--;
    return n;
}

/* Whether the file system under `dir` preallocates with fallocate mode 0
 * (the log works either way; some assertions differ). */
static int s_prealloc_works(const char *dir)
{
    char path[512];
    snprintf(path, sizeof path, "%s/probe", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0644);
    if (fd < 0)
        return 0;
    int ok = fallocate(fd, 0, 0, 8192) == 0;
    close(fd);
    unlink(path);
    return ok;
}

/* A digest of every segment's name and bytes: "nothing changed on disk". */
static uint32_t s_dir_digest_from(const char *dir, size_t skip);

static uint32_t s_dir_digest(const char *dir)
{
    return s_dir_digest_from(dir, 0);
}

/* The same, each segment from byte `skip` on (past its identity frame:
 * each copy of a log has its own identity). */
static uint32_t s_dir_digest_from(const char *dir, size_t skip)
{
    uint64_t names[4096];
    size_t n = s_list(dir, names, 4096);
    uint32_t crc = 0;
    char path[512];
    for (size_t i = 0; i < n; i++) {
        crc = ordo_crc32c(crc, &names[i], sizeof names[i]);
        s_seg_path(dir, names[i], path, sizeof path);
        size_t len = 0;
        uint8_t *data = s_read_file(path, &len);
        crc = ordo_crc32c(crc, &len, sizeof len);
        if (data && len > skip)
            crc = ordo_crc32c(crc, data + skip, len - skip);
        free(data);
    }
    return crc;
}

/* ---- an ordo_io_t that counts calls and fails on demand ----------------- */

typedef struct {
    const ordo_io_t *real;
    _Atomic long fdatasyncs, fsyncs, fallocates;
    long long write_budget;       /* bytes pwrite may still write; -1 = unlimited */
    int fdatasync_errno;          /* fail every fdatasync with this, 0 = no */
    int fallocate_errno;          /* fail fallocate with this ... */
    long fallocate_ok;            /* ... after this many calls succeeded */
    int alloc_fd;                 /* preallocated and not synced since; -1 = none */
    long unsynced_writes;         /* pwrites into such a file: must stay 0 */
    _Atomic long long read_bytes; /* what pread returned, in all */
} s_fault_t;

static int f_open(void *c, const char *p, int fl, mode_t m)
{
    const ordo_io_t *r = ((s_fault_t *)c)->real;
    return r->open(r->ctx, p, fl, m);
}
static int f_close(void *c, int fd)
{
    s_fault_t *f = c;
    if (fd == f->alloc_fd)
        f->alloc_fd = -1; /* the number may be reused */
    return f->real->close(f->real->ctx, fd);
}
static ssize_t f_pread(void *c, int fd, void *b, size_t n, off_t o)
{
    s_fault_t *f = c;
    ssize_t got = f->real->pread(f->real->ctx, fd, b, n, o);
    if (got > 0)
        f->read_bytes += got;
    return got;
}
static ssize_t f_pwrite(void *c, int fd, const void *b, size_t n, off_t o)
{
    s_fault_t *f = c;
    if (fd == f->alloc_fd)
        f->unsynced_writes++;
    if (f->write_budget == 0) {
        errno = ENOSPC;
        return -1;
    }
    if (f->write_budget > 0 && (long long)n > f->write_budget)
        n = (size_t)f->write_budget; /* a partial write, then ENOSPC */
    ssize_t w = f->real->pwrite(f->real->ctx, fd, b, n, o);
    if (w > 0 && f->write_budget > 0)
        f->write_budget -= w;
    return w;
}
static int f_fdatasync(void *c, int fd)
{
    s_fault_t *f = c;
    f->fdatasyncs++;
    if (f->fdatasync_errno) {
        errno = f->fdatasync_errno;
        return -1;
    }
    int rc = f->real->fdatasync(f->real->ctx, fd);
    if (rc == 0 && fd == f->alloc_fd)
        f->alloc_fd = -1;
    return rc;
}
static int f_fsync(void *c, int fd)
{
    s_fault_t *f = c;
    f->fsyncs++;
    int rc = f->real->fsync(f->real->ctx, fd);
    if (rc == 0 && fd == f->alloc_fd)
        f->alloc_fd = -1;
    return rc;
}
static int f_ftruncate(void *c, int fd, off_t len)
{
    const ordo_io_t *r = ((s_fault_t *)c)->real;
    return r->ftruncate(r->ctx, fd, len);
}
static int f_fallocate(void *c, int fd, off_t off, off_t len)
{
    s_fault_t *f = c;
    if (f->fallocate_errno && f->fallocates++ >= f->fallocate_ok) {
        errno = f->fallocate_errno;
        return -1;
    }
    int rc = f->real->fallocate(f->real->ctx, fd, off, len);
    if (rc == 0)
        f->alloc_fd = fd;
    return rc;
}
static int f_rename(void *c, const char *a, const char *b)
{
    const ordo_io_t *r = ((s_fault_t *)c)->real;
    return r->rename(r->ctx, a, b);
}
static int f_unlink(void *c, const char *p)
{
    const ordo_io_t *r = ((s_fault_t *)c)->real;
    return r->unlink(r->ctx, p);
}
static off_t f_size(void *c, int fd)
{
    const ordo_io_t *r = ((s_fault_t *)c)->real;
    return r->size(r->ctx, fd);
}

static ordo_io_t s_fault_io(s_fault_t *f)
{
    memset(f, 0, sizeof *f);
    f->real = ordo_io_posix();
    f->write_budget = -1;
    f->alloc_fd = -1;
    return (ordo_io_t){.ctx = f,
                       .open = f_open,
                       .close = f_close,
                       .pread = f_pread,
                       .pwrite = f_pwrite,
                       .fdatasync = f_fdatasync,
                       .fsync = f_fsync,
                       .ftruncate = f_ftruncate,
                       .fallocate = f_fallocate,
                       .rename = f_rename,
                       .unlink = f_unlink,
                       .size = f_size};
}

/* ---- 1. round trip ------------------------------------------------------- */

static void test_round_trip(void)
{
    char dir[256];
    CU_ASSERT_PTR_NOT_NULL_FATAL(ordo_test_tmpdir(dir, sizeof dir));
    ordo_wal_options_t o = s_opts(dir, 0, ORDO_SYNC_NEVER);
    ordo_wal_recovery_t rep;
    ordo_wal_t *wal = NULL;
    CU_ASSERT_EQUAL_FATAL(ordo_wal_open(&o, &wal, &rep), 0);
    CU_ASSERT_EQUAL(rep.events, 0);
    CU_ASSERT_EQUAL(rep.first_position, 0);
    CU_ASSERT_EQUAL(rep.last_position, 0);
    CU_ASSERT_EQUAL(ordo_wal_head(wal), 0);
    CU_ASSERT_EQUAL(s_verify(wal, 1), 0);
    uint64_t events = 0;
    for (int i = 0; i < 200; i++) {
        size_t count = 1 + (size_t)(s_mix((uint64_t)i) % 17);
        CU_ASSERT_EQUAL(s_append(wal, count, NULL), 0);
        events += count;
    }
    CU_ASSERT_EQUAL(ordo_wal_head(wal), events);
    uint64_t frames, fsyncs, bytes;
    ordo_wal_stats(wal, &frames, &fsyncs, &bytes);
    CU_ASSERT_EQUAL(frames, 200);
    CU_ASSERT(bytes > 200 * 32);
    CU_ASSERT_EQUAL(s_verify(wal, 1), (long long)events);
    ordo_wal_destroy(&wal);
    CU_ASSERT_PTR_NULL(wal);
    ordo_wal_destroy(&wal); /* safe twice */

    CU_ASSERT_EQUAL_FATAL(ordo_wal_open(&o, &wal, &rep), 0);
    CU_ASSERT_EQUAL(rep.frames, 200);
    CU_ASSERT_EQUAL(rep.events, events);
    CU_ASSERT_EQUAL(rep.first_position, 1);
    CU_ASSERT_EQUAL(rep.last_position, events);
    CU_ASSERT_EQUAL(rep.torn_bytes_truncated, 0);
    CU_ASSERT_EQUAL(rep.segments, 1);
    CU_ASSERT_EQUAL(ordo_wal_head(wal), events);
    CU_ASSERT_EQUAL(ordo_wal_synced_head(wal), events);
    CU_ASSERT_EQUAL(s_verify(wal, 1), (long long)events);
    CU_ASSERT_EQUAL(s_verify(wal, 0), (long long)events); /* 0 = from the start */
    ordo_wal_destroy(&wal);
    ordo_test_rm_rf(dir);
}

/* ---- 2. torn tail at every byte ------------------------------------------ */

static int s_prealloc; /* the test folder's file system preallocates */

/* Copies `master`, tears its last frame at `cut` (the bytes from `cut` to
 * the frame's end read as zeros, as in a preallocated segment; or, with
 * `shorten`, the file ends at `cut`, as without preallocation), recovers,
 * checks and appends. Returns 0 if everything held. */
static int s_torn_case(const char *master, long long cut, long long last_start, long long last_end,
                       const uint8_t *last_frame, uint64_t frames_before, uint64_t events_before,
                       bool shorten)
{
    char dir[256], path[512];
    if (!ordo_test_tmpdir(dir, sizeof dir))
        return -1;
    s_copy_dir(master, dir);
    s_last_seg_path(dir, path, sizeof path);
    int bad = 0;
    if (shorten)
        bad |= ordo_test_truncate(path, cut) != 0;
    else
        bad |= s_write_at(path, cut, NULL, (size_t)(last_end - cut)) != 0;
    uint64_t torn = s_nonzero_len(last_frame, (size_t)(cut - last_start));
    int warns = s_warns;
    ordo_wal_options_t o = s_opts(dir, SMALL_SEG, ORDO_SYNC_NEVER);
    ordo_wal_recovery_t rep;
    ordo_wal_t *wal = NULL;
    if (bad || ordo_wal_open(&o, &wal, &rep) != 0) {
        ordo_test_rm_rf(dir);
        return -1;
    }
    bad |= rep.frames != frames_before;
    bad |= rep.last_position != events_before;
    bad |= rep.torn_bytes_truncated != torn;
    bad |= s_walk(path, NULL, 0, NULL) != last_start; /* the data ends where it did */
    bad |= !s_zero_from(path, last_start);            /* the torn bytes are gone */
    if (s_prealloc)
        bad |= ordo_test_file_size(path) != SMALL_SEG; /* preallocation kept or restored */
    bad |= (torn > 0) != (s_warns > warns);            /* a WARN line per removal */
    uint64_t first = 0;
    bad |= s_append(wal, 2, &first) != 0 || first != events_before + 1;
    bad |= s_verify(wal, 1) != (long long)events_before + 2;
    ordo_wal_destroy(&wal);
    /* And once more from disk. */
    if (ordo_wal_open(&o, &wal, &rep) != 0)
        bad = 1;
    else {
        bad |= rep.torn_bytes_truncated != 0 || rep.last_position != events_before + 2;
        bad |= s_verify(wal, 1) != (long long)events_before + 2;
        ordo_wal_destroy(&wal);
    }
    ordo_test_rm_rf(dir);
    return bad ? -1 : 0;
}

static void test_torn_tail(void)
{
    char master[256], path[512];
    CU_ASSERT_PTR_NOT_NULL_FATAL(ordo_test_tmpdir(master, sizeof master));
    s_prealloc = s_prealloc_works(master);
    ordo_wal_options_t o = s_opts(master, SMALL_SEG, ORDO_SYNC_NEVER);
    ordo_wal_t *wal = NULL;
    CU_ASSERT_EQUAL_FATAL(ordo_wal_open(&o, &wal, NULL), 0);
    const int n = 200;
    for (int i = 0; i < n - 1; i++)
        CU_ASSERT_EQUAL(s_append(wal, 1 + (size_t)(i % 5), NULL), 0);
    uint64_t events_before = ordo_wal_head(wal);
    CU_ASSERT_EQUAL(s_append(wal, 3, NULL), 0);
    uint64_t events = ordo_wal_head(wal);
    ordo_wal_destroy(&wal);
    s_last_seg_path(master, path, sizeof path);
    long long offs[512];
    int nframes = 0;
    long long last_end = s_walk(path, offs, 512, &nframes);
    CU_ASSERT_FATAL(nframes >= 2 && nframes <= 512);
    long long last_start = offs[nframes - 1];
    uint64_t names[64];
    CU_ASSERT(s_list(master, names, 64) >= 2); /* torn tail behind full segments */
    CU_ASSERT(last_end - last_start > 100);
    long long seg_size = ordo_test_file_size(path);
    if (s_prealloc)
        CU_ASSERT_EQUAL(seg_size, SMALL_SEG);
    uint8_t *last_frame = malloc((size_t)(last_end - last_start));
    CU_ASSERT_PTR_NOT_NULL_FATAL(last_frame);
    CU_ASSERT_EQUAL_FATAL(s_read_at(path, last_start, last_frame, (size_t)(last_end - last_start)),
                          0);

    int failures = 0;
    for (int shorten = 0; shorten < 2; shorten++)
        for (long long cut = last_start; cut < last_end; cut++)
            if (s_torn_case(master, cut, last_start, last_end, last_frame, (uint64_t)n - 1,
                            events_before, shorten) != 0 &&
                failures++ < 5)
                fprintf(stderr, "torn tail case failed at cut %lld (frame %lld..%lld)%s\n", cut,
                        last_start, last_end, shorten ? ", file cut there" : "");
    CU_ASSERT_EQUAL(failures, 0);
    free(last_frame);

    /* Non-zero garbage after the last frame is a torn tail too: plain bytes,
     * and bytes that start like a frame header, right after the last frame;
     * and plain bytes beyond the preallocated space. */
    static const char *garbage[] = {
        "\xa5\xa5\xa5\xa5\xa5\xa5\xa5\xa5\xa5\xa5\xa5\xa5\xa5\xa5\xa5",
        "OWAL\x01\x00\x00\x00\x07\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00"
        "\x00\x10\x00\x00\x00\x10\x00\x00\x00\xde\xad\xbe\xefjunkjunkjunk"};
    for (int g = 0; g < 3; g++) {
        char dir[256], seg[512];
        CU_ASSERT_PTR_NOT_NULL_FATAL(ordo_test_tmpdir(dir, sizeof dir));
        s_copy_dir(master, dir);
        s_last_seg_path(dir, seg, sizeof seg);
        size_t glen = g == 1 ? 44 : 15;
        uint64_t torn = glen;
        if (g < 2) {
            CU_ASSERT_EQUAL(s_write_at(seg, last_end, garbage[g], glen), 0);
        } else {
            CU_ASSERT_EQUAL(s_append_bytes(seg, garbage[0], glen), 0);
            torn = (uint64_t)(seg_size + (long long)glen - last_end);
        }
        long long size_before = ordo_test_file_size(seg);
        ordo_wal_options_t og = s_opts(dir, SMALL_SEG, ORDO_SYNC_NEVER);
        ordo_wal_recovery_t rep;
        CU_ASSERT_EQUAL_FATAL(ordo_wal_open(&og, &wal, &rep), 0);
        CU_ASSERT_EQUAL(rep.torn_bytes_truncated, torn);
        CU_ASSERT_EQUAL(rep.frames, (uint64_t)n);
        CU_ASSERT_EQUAL(rep.last_position, events);
        CU_ASSERT_EQUAL(s_walk(seg, NULL, 0, NULL), last_end);
        CU_ASSERT(s_zero_from(seg, last_end)); /* removed */
        if (s_prealloc)
            CU_ASSERT_EQUAL(ordo_test_file_size(seg), size_before); /* still preallocated */
        CU_ASSERT_EQUAL(s_append(wal, 1, NULL), 0);
        CU_ASSERT_EQUAL(s_verify(wal, 1), (long long)events + 1);
        ordo_wal_destroy(&wal);
        ordo_test_rm_rf(dir);
    }

    /* Zeros after the last frame, even past the segment size, are the end of
     * data, not damage: nothing is removed. */
    {
        char dir[256], seg[512];
        CU_ASSERT_PTR_NOT_NULL_FATAL(ordo_test_tmpdir(dir, sizeof dir));
        s_copy_dir(master, dir);
        s_last_seg_path(dir, seg, sizeof seg);
        static const uint8_t zeros[4096];
        CU_ASSERT_EQUAL(s_append_bytes(seg, zeros, sizeof zeros), 0);
        long long size_before = ordo_test_file_size(seg);
        ordo_wal_options_t oz = s_opts(dir, SMALL_SEG, ORDO_SYNC_NEVER);
        ordo_wal_recovery_t rep;
        CU_ASSERT_EQUAL_FATAL(ordo_wal_open(&oz, &wal, &rep), 0);
        CU_ASSERT_EQUAL(rep.torn_bytes_truncated, 0);
        CU_ASSERT_EQUAL(rep.last_position, events);
        CU_ASSERT_EQUAL(s_append(wal, 2, NULL), 0);
        ordo_wal_destroy(&wal);
        CU_ASSERT_EQUAL(ordo_test_file_size(seg), size_before);
        CU_ASSERT(s_walk(seg, NULL, 0, NULL) > last_end);
        CU_ASSERT_EQUAL_FATAL(ordo_wal_open(&oz, &wal, &rep), 0);
        CU_ASSERT_EQUAL(rep.last_position, events + 2);
        CU_ASSERT_EQUAL(s_verify(wal, 1), (long long)events + 2);
        ordo_wal_destroy(&wal);
        ordo_test_rm_rf(dir);
    }
    ordo_test_rm_rf(master);
}

/* ---- 3. mid-log corruption ---------------------------------------------- */

typedef struct {
    char dir[256];
    long long off[512];  /* offset of each frame in its segment */
    uint64_t first[512]; /* first position of each frame */
    int frames;
    uint64_t events;
} s_log_t;

/* Writes `frames` frames of up to 5 records, remembering where each went:
 * its offset is the bytes written (ordo_wal_stats) since its segment began. */
static void s_build_log(s_log_t *lg, uint64_t seg_bytes, int frames, uint64_t *frame_seg)
{
    CU_ASSERT_PTR_NOT_NULL_FATAL(ordo_test_tmpdir(lg->dir, sizeof lg->dir));
    ordo_wal_options_t o = s_opts(lg->dir, seg_bytes, ORDO_SYNC_NEVER);
    ordo_wal_t *wal = NULL;
    CU_ASSERT_EQUAL_FATAL(ordo_wal_open(&o, &wal, NULL), 0);
    uint64_t seg = 1, seg_start = 0;
    for (int i = 0; i < frames; i++) {
        uint64_t before = 0;
        ordo_wal_stats(wal, NULL, NULL, &before);
        CU_ASSERT_EQUAL(s_append(wal, 1 + (size_t)(i % 5), &lg->first[i]), 0);
        uint64_t names[64];
        size_t n = s_list(lg->dir, names, 64);
        if (names[n - 1] != seg) { /* this frame started a segment */
            seg = names[n - 1];
            seg_start = before;
            CU_ASSERT_EQUAL(seg, lg->first[i]);
        }
        frame_seg[i] = seg;
        lg->off[i] = (long long)(before - seg_start) + ORDO_WAL_ID_FRAME_SIZE;
    }
    lg->frames = frames;
    lg->events = ordo_wal_head(wal);
    ordo_wal_destroy(&wal);
    /* The same offsets, found by walking each segment's frames. */
    char path[512];
    long long offs[512];
    for (int i = 0; i < frames;) {
        int count = 0;
        s_seg_path(lg->dir, frame_seg[i], path, sizeof path);
        s_walk(path, offs, 512, &count);
        for (int j = 0; j < count && i < frames; j++, i++)
            CU_ASSERT(frame_seg[i] == frame_seg[i - j] && offs[j] == lg->off[i]);
        CU_ASSERT_FATAL(count > 0);
    }
}

/* Damages frame `k` (bit flip at `delta` into it), checks the refusal, then
 * the repair. */
static void s_corrupt_case(const s_log_t *lg, const uint64_t *frame_seg, int k, long long delta,
                           const char *why)
{
    char dir[256], path[512], name[64], offtext[64];
    CU_ASSERT_PTR_NOT_NULL_FATAL(ordo_test_tmpdir(dir, sizeof dir));
    s_copy_dir(lg->dir, dir);
    s_seg_path(dir, frame_seg[k], path, sizeof path);
    CU_ASSERT_EQUAL(ordo_test_flip_bit(path, lg->off[k] + delta, 3), 0);
    uint32_t digest = s_dir_digest(dir);
    long long size_before = ordo_test_file_size(path);
    uint64_t names_before[64];
    size_t nseg = s_list(dir, names_before, 64);

    /* With fsync always every frame before the last was synced: damage
     * followed by frames is corruption, wherever it is. */
    ordo_wal_options_t o = s_opts(dir, SMALL_SEG, ORDO_SYNC_ALWAYS);
    ordo_wal_recovery_t rep;
    ordo_wal_t *wal = NULL;
    int errors = s_errors;
    CU_ASSERT_EQUAL(ordo_wal_open(&o, &wal, &rep), ORDO_ERR_CORRUPT);
    CU_ASSERT_PTR_NULL(wal);
    CU_ASSERT(s_errors > errors);
    snprintf(name, sizeof name, "%020" PRIu64 ".wal", frame_seg[k]);
    snprintf(offtext, sizeof offtext, "at offset %lld ", lg->off[k]);
    CU_ASSERT_PTR_NOT_NULL(strstr(rep.message, name));
    CU_ASSERT_PTR_NOT_NULL(strstr(rep.message, offtext));
    CU_ASSERT_PTR_NOT_NULL(strstr(rep.message, why));
    uint64_t dropped = lg->events - (lg->first[k] - 1);
    char droptext[64];
    snprintf(droptext, sizeof droptext, "dropping %" PRIu64 " later events", dropped);
    CU_ASSERT_PTR_NOT_NULL(strstr(rep.message, droptext));
    if (!strstr(rep.message, offtext) || !strstr(rep.message, why) ||
        !strstr(rep.message, droptext))
        fprintf(stderr, "message: %s\n", rep.message);
    CU_ASSERT_EQUAL(s_dir_digest(dir), digest); /* nothing changed on disk */

    o.repair = true;
    int warns = s_warns;
    CU_ASSERT_EQUAL_FATAL(ordo_wal_open(&o, &wal, &rep), 0);
    CU_ASSERT(s_warns > warns);
    CU_ASSERT_EQUAL(rep.events_dropped, dropped);
    CU_ASSERT_EQUAL(rep.last_position, lg->first[k] - 1);
    CU_ASSERT_EQUAL(s_walk(path, NULL, 0, NULL), lg->off[k]); /* cut at the damage */
    CU_ASSERT(s_zero_from(path, lg->off[k]));
    CU_ASSERT(ordo_test_file_size(path) >= size_before); /* preallocation kept */
    uint64_t names_after[64];
    size_t nafter = s_list(dir, names_after, 64);
    CU_ASSERT_EQUAL(names_after[nafter - 1], frame_seg[k]); /* later segments removed */
    CU_ASSERT(nafter <= nseg);
    uint64_t first = 0;
    CU_ASSERT_EQUAL(s_append(wal, 2, &first), 0);
    CU_ASSERT_EQUAL(first, lg->first[k]);
    CU_ASSERT_EQUAL(s_verify(wal, 1), (long long)lg->first[k] + 1);
    ordo_wal_destroy(&wal);
    o.repair = false;
    CU_ASSERT_EQUAL(ordo_wal_open(&o, &wal, &rep), 0); /* clean now */
    ordo_wal_destroy(&wal);
    ordo_test_rm_rf(dir);
}

static void test_corrupt_mid_log(void)
{
    static s_log_t one, many;
    static uint64_t seg_one[512], seg_many[512];
    /* One segment: damage frame 10 of 30, in the header and in the body.
     * (1 MiB segments: every case copies the preallocated file.) */
    s_build_log(&one, 1u << 20, 30, seg_one);
    CU_ASSERT_EQUAL(seg_one[29], 1);
    s_corrupt_case(&one, seg_one, 10, 9, "checksum mismatch"); /* first-position field */
    s_corrupt_case(&one, seg_one, 10, 0, "bad magic");
    s_corrupt_case(&one, seg_one, 10, 34, "checksum mismatch"); /* body */
    s_corrupt_case(&one, seg_one, 0, 34, "checksum mismatch");  /* very first frame */

    /* Several segments: the last frame of a full (non-last) segment is never
     * a torn tail, even with nothing after it in that segment. */
    s_build_log(&many, SMALL_SEG, 400, seg_many);
    int k = -1;
    for (int i = 0; i + 1 < many.frames; i++)
        if (seg_many[i] == 1 && seg_many[i + 1] != 1)
            k = i;
    CU_ASSERT_FATAL(k > 0);
    CU_ASSERT(seg_many[many.frames - 1] > seg_many[k + 1]); /* at least 3 segments */
    s_corrupt_case(&many, seg_many, k, 34, "checksum mismatch");
    s_corrupt_case(&many, seg_many, k + 1, 34, "checksum mismatch"); /* first frame of segment 2 */

    /* A missing middle segment is a position gap. */
    {
        char dir[256], path[512];
        CU_ASSERT_PTR_NOT_NULL_FATAL(ordo_test_tmpdir(dir, sizeof dir));
        s_copy_dir(many.dir, dir);
        s_seg_path(dir, seg_many[k + 1], path, sizeof path);
        CU_ASSERT_EQUAL(unlink(path), 0);
        uint32_t digest = s_dir_digest(dir);
        ordo_wal_options_t o = s_opts(dir, SMALL_SEG, ORDO_SYNC_NEVER);
        ordo_wal_recovery_t rep;
        ordo_wal_t *wal = NULL;
        CU_ASSERT_EQUAL(ordo_wal_open(&o, &wal, &rep), ORDO_ERR_CORRUPT);
        CU_ASSERT_PTR_NOT_NULL(strstr(rep.message, "position gap"));
        CU_ASSERT_EQUAL(s_dir_digest(dir), digest);
        o.repair = true;
        CU_ASSERT_EQUAL_FATAL(ordo_wal_open(&o, &wal, &rep), 0);
        CU_ASSERT_EQUAL(rep.last_position, many.first[k + 1] - 1);
        CU_ASSERT_EQUAL(rep.segments, 1);
        CU_ASSERT(rep.events_dropped > 0);
        CU_ASSERT_EQUAL(s_verify(wal, 1), (long long)many.first[k + 1] - 1);
        ordo_wal_destroy(&wal);
        ordo_test_rm_rf(dir);
    }

    /* A whole, valid frame repeated at the end (good checksum, wrong
     * position) is not a torn write: refused, not truncated. */
    {
        char dir[256], path[512];
        CU_ASSERT_PTR_NOT_NULL_FATAL(ordo_test_tmpdir(dir, sizeof dir));
        s_copy_dir(one.dir, dir);
        s_seg_path(dir, 1, path, sizeof path);
        size_t len = 0;
        uint8_t *data = s_read_file(path, &len);
        CU_ASSERT_PTR_NOT_NULL_FATAL(data);
        len = (size_t)s_walk(path, NULL, 0, NULL); /* the data end */
        size_t last = (size_t)one.off[one.frames - 1];
        CU_ASSERT_EQUAL(s_write_at(path, (long long)len, data + last, len - last), 0);
        free(data);
        uint32_t digest = s_dir_digest(dir);
        ordo_wal_options_t o = s_opts(dir, 0, ORDO_SYNC_NEVER);
        ordo_wal_recovery_t rep;
        ordo_wal_t *wal = NULL;
        CU_ASSERT_EQUAL(ordo_wal_open(&o, &wal, &rep), ORDO_ERR_CORRUPT);
        char text[128];
        snprintf(text, sizeof text,
                 "at offset %zu (frame starts at position %" PRIu64 ", expected %" PRIu64 ")", len,
                 one.first[one.frames - 1], one.events + 1);
        CU_ASSERT_PTR_NOT_NULL(strstr(rep.message, text));
        CU_ASSERT_EQUAL(s_dir_digest(dir), digest);
        ordo_test_rm_rf(dir);
    }

    /* Damage after open: a reader reports it instead of returning bad bytes. */
    {
        char dir[256], path[512];
        CU_ASSERT_PTR_NOT_NULL_FATAL(ordo_test_tmpdir(dir, sizeof dir));
        s_copy_dir(one.dir, dir);
        ordo_wal_options_t o = s_opts(dir, 0, ORDO_SYNC_NEVER);
        ordo_wal_t *wal = NULL;
        CU_ASSERT_EQUAL_FATAL(ordo_wal_open(&o, &wal, NULL), 0);
        s_seg_path(dir, 1, path, sizeof path);
        CU_ASSERT_EQUAL(ordo_test_flip_bit(path, one.off[3] + 34, 1), 0);
        ordo_wal_reader_t *r = NULL;
        CU_ASSERT_EQUAL_FATAL(ordo_wal_reader_new(wal, 1, &r), 0);
        uint64_t pos;
        const void *data;
        size_t len;
        int rc, n = 0;
        while ((rc = ordo_wal_reader_next(r, &pos, &data, &len)) == 1)
            n++;
        CU_ASSERT_EQUAL(rc, ORDO_ERR_CORRUPT);
        CU_ASSERT_EQUAL((uint64_t)n, one.first[3] - 1);
        CU_ASSERT_EQUAL(ordo_wal_reader_next(r, &pos, &data, &len), ORDO_ERR_CORRUPT); /* sticks */
        ordo_wal_reader_destroy(&r);
        ordo_wal_destroy(&wal);
        ordo_test_rm_rf(dir);
    }
    ordo_test_rm_rf(one.dir);
    ordo_test_rm_rf(many.dir);
}

/* ---- 4. segment roll ----------------------------------------------------- */

/* Frames chain (each names its predecessor's CRC32C) across segments and
 * across a reopen, and the read-only walk checks it: a frame whose chain
 * names another predecessor is named, even with its own checksum right. */
static void test_frame_chain(void)
{
    char dir[256];
    CU_ASSERT_PTR_NOT_NULL_FATAL(ordo_test_tmpdir(dir, sizeof dir));
    ordo_wal_options_t o = s_opts(dir, SMALL_SEG, ORDO_SYNC_NEVER);
    for (int round = 0; round < 2; round++) { /* the second one after a reopen */
        ordo_wal_t *wal = NULL;
        CU_ASSERT_EQUAL_FATAL(ordo_wal_open(&o, &wal, NULL), 0);
        for (int i = 0; i < 120; i++)
            CU_ASSERT_EQUAL(s_append(wal, 1 + (size_t)(i % 5), NULL), 0);
        ordo_wal_destroy(&wal);
    }
    ordo_wal_walk_t w;
    CU_ASSERT_EQUAL_FATAL(ordo_wal_walk(dir, NULL, NULL, &w), 0);
    CU_ASSERT_FALSE(w.damaged);
    CU_ASSERT(w.segments >= 3);
    CU_ASSERT_EQUAL(w.frames, 240);
    /* Break the chain of the second segment's first data frame, its own
     * checksum made right again. */
    uint64_t names[64];
    size_t n = s_list(dir, names, 64);
    CU_ASSERT_FATAL(n >= 3);
    char path[512];
    snprintf(path, sizeof path, "%s/%020llu.wal", dir, (unsigned long long)names[1]);
    uint8_t frame[ORDO_WAL_HEADER_SIZE + 4096];
    int fd = open(path, O_RDWR);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_EQUAL_FATAL(pread(fd, frame, ORDO_WAL_HEADER_SIZE, ORDO_WAL_ID_FRAME_SIZE),
                          ORDO_WAL_HEADER_SIZE);
    ordo_wal_hdr_t h;
    CU_ASSERT_EQUAL_FATAL(ordo_wal_hdr_decode(frame, &h, NULL), 0);
    CU_ASSERT_FATAL(h.flags == 0 && h.clen <= 4096); /* as before chaining: 0.2 reads it */
    CU_ASSERT_EQUAL_FATAL(
        pread(fd, frame + ORDO_WAL_HEADER_SIZE, h.clen, ORDO_WAL_ID_FRAME_SIZE + ORDO_WAL_HEADER_SIZE),
        (ssize_t)h.clen);
    uint32_t prev;
    CU_ASSERT_TRUE(ordo_wal_frame_prev(&h, frame + ORDO_WAL_HEADER_SIZE, &prev));
    frame[ORDO_WAL_HEADER_SIZE + 8] ^= 0x5a; /* the chain's CRC, in the skippable frame */
    uint32_t crc = ordo_wal_frame_crc(frame, frame + ORDO_WAL_HEADER_SIZE, h.clen);
    for (int i = 0; i < 4; i++)
        frame[28 + i] = (uint8_t)(crc >> (8 * i));
    CU_ASSERT_EQUAL(pwrite(fd, frame, ORDO_WAL_HEADER_SIZE + h.clen, ORDO_WAL_ID_FRAME_SIZE),
                    (ssize_t)(ORDO_WAL_HEADER_SIZE + h.clen));
    close(fd);
    CU_ASSERT_EQUAL_FATAL(ordo_wal_walk(dir, NULL, NULL, &w), 0);
    CU_ASSERT_TRUE(w.damaged);
    CU_ASSERT_EQUAL(w.fault_offset, ORDO_WAL_ID_FRAME_SIZE);
    CU_ASSERT_PTR_NOT_NULL(strstr(w.fault, "does not follow"));
    ordo_test_rm_rf(dir);
}

static void test_segment_roll(void)
{
    char dir[256], path[512];
    CU_ASSERT_PTR_NOT_NULL_FATAL(ordo_test_tmpdir(dir, sizeof dir));
    ordo_wal_options_t o = s_opts(dir, SMALL_SEG, ORDO_SYNC_NEVER);
    ordo_wal_t *wal = NULL;
    CU_ASSERT_EQUAL_FATAL(ordo_wal_open(&o, &wal, NULL), 0);
    uint64_t firsts[400];
    int frames = 0;
    uint64_t huge_first = 0;
    for (int i = 0; i < 300; i++) {
        if (i == 100) { /* one frame bigger than a segment */
            s_huge_pos = ordo_wal_head(wal) + 2;
            CU_ASSERT_EQUAL(s_append(wal, 3, &huge_first), 0);
            firsts[frames++] = huge_first;
        }
        CU_ASSERT_EQUAL(s_append(wal, 1 + (size_t)(s_mix((uint64_t)i) % 9), &firsts[frames]), 0);
        frames++;
    }
    uint64_t events = ordo_wal_head(wal);
    ordo_wal_destroy(&wal);

    uint64_t names[256];
    size_t n = s_list(dir, names, 256);
    CU_ASSERT(n >= 5);
    size_t fi = 0, huge_seg = n;
    for (size_t i = 0; i < n; i++) {
        /* Every name is the first position of a frame, in order. */
        while (fi < (size_t)frames && firsts[fi] < names[i])
            fi++;
        CU_ASSERT(fi < (size_t)frames && firsts[fi] == names[i]);
        s_seg_path(dir, names[i], path, sizeof path);
        long long size = ordo_test_file_size(path);
        if (names[i] == huge_first) {
            huge_seg = i;
            CU_ASSERT(size > SMALL_SEG);
        } else {
            CU_ASSERT(size <= SMALL_SEG);
        }
    }
    /* The big frame went alone into a fresh segment. */
    CU_ASSERT_FATAL(huge_seg + 1 < n);
    CU_ASSERT_EQUAL(names[huge_seg + 1], huge_first + 3);

    ordo_wal_recovery_t rep;
    CU_ASSERT_EQUAL_FATAL(ordo_wal_open(&o, &wal, &rep), 0);
    CU_ASSERT_EQUAL(rep.segments, n);
    CU_ASSERT_EQUAL(rep.frames, (uint64_t)frames);
    CU_ASSERT_EQUAL(rep.last_position, events);
    CU_ASSERT_EQUAL(s_verify(wal, 1), (long long)events);
    int bad = 0;
    for (uint64_t p = 1; p <= events; p++) {
        ordo_wal_reader_t *r = NULL;
        uint64_t pos = 0;
        const void *data;
        size_t len;
        if (ordo_wal_reader_new(wal, p, &r) != 0 ||
            ordo_wal_reader_next(r, &pos, &data, &len) != 1 || pos != p ||
            !s_record_ok(pos, data, len))
            bad++;
        ordo_wal_reader_destroy(&r);
    }
    CU_ASSERT_EQUAL(bad, 0);
    ordo_wal_destroy(&wal);
    ordo_test_rm_rf(dir);

    /* A big first frame of a fresh log stays in segment 1; the next frame
     * starts segment 2. */
    CU_ASSERT_PTR_NOT_NULL_FATAL(ordo_test_tmpdir(dir, sizeof dir));
    CU_ASSERT_EQUAL_FATAL(ordo_wal_open(&o, &wal, NULL), 0);
    s_huge_pos = 1;
    CU_ASSERT_EQUAL(s_append(wal, 1, NULL), 0);
    CU_ASSERT_EQUAL(s_append(wal, 1, NULL), 0);
    CU_ASSERT_EQUAL(ordo_wal_error(wal), 0);
    CU_ASSERT_EQUAL(s_list(dir, names, 256), 2);
    CU_ASSERT_EQUAL(names[1], 2);
    CU_ASSERT_EQUAL(s_verify(wal, 1), 2);
    ordo_wal_destroy(&wal);
    s_huge_pos = 0;
    ordo_test_rm_rf(dir);
}

/* ---- 5. readers ------------------------------------------------------ */

static void test_reader_mid_frame_and_tail(void)
{
    char dir[256];
    CU_ASSERT_PTR_NOT_NULL_FATAL(ordo_test_tmpdir(dir, sizeof dir));
    ordo_wal_options_t o = s_opts(dir, 0, ORDO_SYNC_ALWAYS);
    ordo_wal_t *wal = NULL;
    CU_ASSERT_EQUAL_FATAL(ordo_wal_open(&o, &wal, NULL), 0);
    for (int i = 0; i < 5; i++)
        CU_ASSERT_EQUAL(s_append(wal, 10, NULL), 0);
    CU_ASSERT_EQUAL(ordo_wal_head(wal), 50);

    ordo_wal_reader_t *r = NULL;
    uint64_t pos = 0;
    const void *data;
    size_t len;
    CU_ASSERT_EQUAL_FATAL(ordo_wal_reader_new(wal, 15, &r), 0);
    CU_ASSERT_EQUAL(ordo_wal_reader_next(r, &pos, &data, &len), 1);
    CU_ASSERT_EQUAL(pos, 15);
    CU_ASSERT_TRUE(s_record_ok(pos, data, len));
    ordo_wal_reader_destroy(&r);
    CU_ASSERT_EQUAL(s_verify(wal, 15), 36);
    CU_ASSERT_EQUAL(s_verify(wal, 50), 1);

    /* At the tail: nothing now, the new record after an append. */
    CU_ASSERT_EQUAL_FATAL(ordo_wal_reader_new(wal, 51, &r), 0);
    CU_ASSERT_EQUAL(ordo_wal_reader_next(r, &pos, &data, &len), 0);
    CU_ASSERT_EQUAL(ordo_wal_reader_next(r, &pos, &data, &len), 0);
    CU_ASSERT_EQUAL(s_append(wal, 2, NULL), 0);
    CU_ASSERT_EQUAL(ordo_wal_reader_next(r, &pos, &data, &len), 1);
    CU_ASSERT_EQUAL(pos, 51);
    CU_ASSERT_TRUE(s_record_ok(pos, data, len));
    CU_ASSERT_EQUAL(ordo_wal_reader_next(r, &pos, &data, &len), 1);
    CU_ASSERT_EQUAL(pos, 52);
    CU_ASSERT_EQUAL(ordo_wal_reader_next(r, &pos, &data, &len), 0);
    ordo_wal_reader_destroy(&r);

    /* Far ahead: waits, then reads once the log gets there. */
    CU_ASSERT_EQUAL_FATAL(ordo_wal_reader_new(wal, 60, &r), 0);
    CU_ASSERT_EQUAL(ordo_wal_reader_next(r, &pos, &data, &len), 0);
    CU_ASSERT_EQUAL(s_append(wal, 10, NULL), 0);
    CU_ASSERT_EQUAL(ordo_wal_reader_next(r, &pos, &data, &len), 1);
    CU_ASSERT_EQUAL(pos, 60);
    ordo_wal_reader_destroy(&r);
    ordo_wal_destroy(&wal);
    ordo_test_rm_rf(dir);
}

/* One reader serves point reads all over the log: seeks forward, back,
 * inside the frame in hand and across segments, each read exact; a seek
 * before the log's start is refused and the reader goes on after it. */
static void test_reader_seek(void)
{
    char dir[256];
    CU_ASSERT_PTR_NOT_NULL_FATAL(ordo_test_tmpdir(dir, sizeof dir));
    ordo_wal_options_t o = s_opts(dir, ORDO_WAL_SEGMENT_MIN, ORDO_SYNC_NEVER);
    ordo_wal_t *wal = NULL;
    CU_ASSERT_EQUAL_FATAL(ordo_wal_open(&o, &wal, NULL), 0);
    for (int i = 0; i < 200; i++) /* frames of 1 to 25 records, several segments */
        CU_ASSERT_EQUAL_FATAL(s_append(wal, 1 + (size_t)(s_mix((uint64_t)i) % 25), NULL), 0);
    uint64_t head = ordo_wal_head(wal);
    uint64_t names[64];
    CU_ASSERT(s_list(dir, names, 64) >= 2);
    ordo_wal_reader_t *r = NULL;
    CU_ASSERT_EQUAL_FATAL(ordo_wal_reader_new(wal, 1, &r), 0);
    uint64_t pos;
    const void *data;
    size_t len;
    int bad = 0;
    for (uint64_t i = 0; i < 3000; i++) {
        /* mostly random, sometimes the next one or one in the same frame */
        uint64_t want = i % 3 == 0 ? 1 + s_mix(i) % head : i % 3 == 1 ? (pos % head) + 1 : pos;
        CU_ASSERT_EQUAL_FATAL(ordo_wal_reader_seek(r, want), 0);
        if (ordo_wal_reader_next(r, &pos, &data, &len) != 1 || pos != want ||
            !s_record_ok(pos, data, len))
            bad++;
    }
    CU_ASSERT_EQUAL(bad, 0);
    /* then reading on from a seek goes to the end in order */
    CU_ASSERT_EQUAL(ordo_wal_reader_seek(r, head - 30), 0);
    long long n = 0;
    while (ordo_wal_reader_next(r, &pos, &data, &len) == 1 && s_record_ok(pos, data, len))
        n++;
    CU_ASSERT_EQUAL(n, 31);
    CU_ASSERT_EQUAL(ordo_wal_reader_seek(r, 0), 0); /* 0: the first position */
    CU_ASSERT_EQUAL(ordo_wal_reader_next(r, &pos, &data, &len), 1);
    CU_ASSERT_EQUAL(pos, 1);
    CU_ASSERT_EQUAL(ordo_wal_reader_seek(NULL, 1), ORDO_ERR_INVALID);
    ordo_wal_reader_destroy(&r);
    ordo_wal_destroy(&wal);
    ordo_test_rm_rf(dir);
}

/* ordo_wal_reader_frame: the frame holding a position, byte for byte as
 * written, found anywhere in the log (after a reopen: from the files), and
 * the reader goes on after it. */
static void test_reader_frame(void)
{
    char dir[256];
    CU_ASSERT_PTR_NOT_NULL_FATAL(ordo_test_tmpdir(dir, sizeof dir));
    ordo_wal_options_t o = s_opts(dir, ORDO_WAL_SEGMENT_MIN, ORDO_SYNC_NEVER);
    ordo_wal_t *wal = NULL;
    CU_ASSERT_EQUAL_FATAL(ordo_wal_open(&o, &wal, NULL), 0);
    enum { FRAMES = 200 };
    uint8_t *copies[FRAMES];
    size_t lens[FRAMES];
    uint64_t firsts[FRAMES], counts[FRAMES];
    for (int i = 0; i < FRAMES; i++) { /* frames of 1 to 25 records, several segments */
        counts[i] = 1 + s_mix((uint64_t)i) % 25;
        CU_ASSERT_EQUAL_FATAL(s_append(wal, (size_t)counts[i], &firsts[i]), 0);
        const void *frame;
        ordo_wal_last_frame(wal, &frame, &lens[i]);
        CU_ASSERT_PTR_NOT_NULL_FATAL(copies[i] = malloc(lens[i]));
        memcpy(copies[i], frame, lens[i]);
    }
    uint64_t head = ordo_wal_head(wal);
    ordo_wal_destroy(&wal);
    uint64_t names[64];
    CU_ASSERT(s_list(dir, names, 64) >= 2);
    CU_ASSERT_EQUAL_FATAL(ordo_wal_open(&o, &wal, NULL), 0);
    ordo_wal_reader_t *r = NULL;
    CU_ASSERT_EQUAL_FATAL(ordo_wal_reader_new(wal, 1, &r), 0);
    const void *data;
    size_t len;
    uint64_t first, count;
    int bad = 0;
    for (uint64_t i = 0; i < 2000; i++) { /* anywhere, forwards and back */
        uint64_t want = 1 + s_mix(i + 7) % head;
        int k = 0;
        while (firsts[k] + counts[k] <= want)
            k++;
        if (ordo_wal_reader_frame(r, want, &data, &len, &first, &count) != 0 ||
            first != firsts[k] || count != counts[k] || len != lens[k] ||
            memcmp(data, copies[k], len) != 0)
            bad++;
    }
    CU_ASSERT_EQUAL(bad, 0);
    /* Frame after frame from the first, as reconcile publishes them. */
    int k = 0;
    for (uint64_t next = 1; next <= head; next = first + count, k++)
        if (ordo_wal_reader_frame(r, next, &data, &len, &first, &count) != 0 ||
            len != lens[k] || memcmp(data, copies[k], len) != 0)
            bad++;
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(k, FRAMES);
    /* The reader goes on after the frame: its next record is the next frame's first. */
    CU_ASSERT_EQUAL(ordo_wal_reader_frame(r, firsts[10] + 1, &data, &len, NULL, NULL), 0);
    uint64_t pos;
    CU_ASSERT_EQUAL(ordo_wal_reader_next(r, &pos, &data, &len), 1);
    CU_ASSERT_EQUAL(pos, firsts[11]);
    CU_ASSERT_EQUAL(ordo_wal_reader_frame(r, 0, &data, &len, NULL, NULL), ORDO_ERR_NOT_FOUND);
    CU_ASSERT_EQUAL(ordo_wal_reader_frame(r, head + 1, &data, &len, NULL, NULL),
                    ORDO_ERR_NOT_FOUND);
    CU_ASSERT_EQUAL(ordo_wal_reader_frame(NULL, 1, &data, &len, NULL, NULL), ORDO_ERR_INVALID);
    ordo_wal_reader_destroy(&r);
    ordo_wal_destroy(&wal);
    for (int i = 0; i < FRAMES; i++)
        free(copies[i]);
    ordo_test_rm_rf(dir);
}

typedef struct {
    ordo_wal_t *wal;
    uint64_t until;
    uint64_t from;
    long long read;
    int bad;
} s_reader_job_t;

static void *s_reader_thread(void *arg)
{
    s_reader_job_t *job = arg;
    ordo_wal_reader_t *r = NULL;
    if (ordo_wal_reader_new(job->wal, job->from, &r) != 0) {
        job->bad = 1;
        return NULL;
    }
    uint64_t expect = job->from, pos;
    const void *data;
    size_t len;
    while (expect <= job->until) {
        int rc = ordo_wal_reader_next(r, &pos, &data, &len);
        if (rc == 0) {
            sched_yield(); /* caught up with the writer: poll again */
            continue;
        }
        if (rc < 0 || pos != expect || !s_record_ok(pos, data, len)) {
            job->bad = 1;
            break;
        }
        expect++;
        job->read++;
    }
    ordo_wal_reader_destroy(&r);
    return NULL;
}

static void test_reader_concurrent(void)
{
    char dir[256];
    CU_ASSERT_PTR_NOT_NULL_FATAL(ordo_test_tmpdir(dir, sizeof dir));
    ordo_wal_options_t o = s_opts(dir, SMALL_SEG, ORDO_SYNC_NEVER);
    ordo_wal_t *wal = NULL;
    CU_ASSERT_EQUAL_FATAL(ordo_wal_open(&o, &wal, NULL), 0);
    /* Positions the writer will reach: frames of 1 + i % 7 records. */
    const int frames = 1500;
    uint64_t total = 0;
    for (int i = 0; i < frames; i++)
        total += 1 + (uint64_t)(i % 7);
    s_reader_job_t jobs[2] = {{.wal = wal, .until = total, .from = 1},
                              {.wal = wal, .until = total, .from = total / 2}};
    pthread_t th[2];
    for (int j = 0; j < 2; j++)
        CU_ASSERT_EQUAL_FATAL(pthread_create(&th[j], NULL, s_reader_thread, &jobs[j]), 0);
    int rc = 0;
    for (int i = 0; i < frames && rc == 0; i++)
        rc = s_append(wal, 1 + (size_t)(i % 7), NULL);
    CU_ASSERT_EQUAL(rc, 0);
    for (int j = 0; j < 2; j++)
        pthread_join(th[j], NULL);
    CU_ASSERT_EQUAL(jobs[0].bad, 0);
    CU_ASSERT_EQUAL(jobs[0].read, (long long)total);
    CU_ASSERT_EQUAL(jobs[1].bad, 0);
    CU_ASSERT_EQUAL(jobs[1].read, (long long)(total - total / 2 + 1));
    uint64_t names[256];
    CU_ASSERT(s_list(dir, names, 256) > 3); /* readers crossed segment rolls */
    ordo_wal_destroy(&wal);
    ordo_test_rm_rf(dir);
}

/* ---- 6. sync policies ------------------------------------------------- */

static void test_sync_modes(void)
{
    char dir[256];
    s_fault_t f;
    ordo_io_t io = s_fault_io(&f);
    ordo_wal_t *wal = NULL;

    /* ALWAYS: one fdatasync per append, synced before it returns. */
    CU_ASSERT_PTR_NOT_NULL_FATAL(ordo_test_tmpdir(dir, sizeof dir));
    ordo_wal_options_t o = s_opts(dir, 0, ORDO_SYNC_ALWAYS);
    o.io = &io;
    CU_ASSERT_EQUAL_FATAL(ordo_wal_open(&o, &wal, NULL), 0);
    long c0 = f.fdatasyncs;
    for (int i = 0; i < 10; i++) {
        CU_ASSERT_EQUAL(s_append(wal, 3, NULL), 0);
        CU_ASSERT_EQUAL(f.fdatasyncs, c0 + i + 1);
        CU_ASSERT_EQUAL(ordo_wal_synced_head(wal), ordo_wal_head(wal));
    }
    CU_ASSERT_EQUAL(ordo_wal_sync(wal), 0); /* nothing unsynced: no call */
    CU_ASSERT_EQUAL(f.fdatasyncs, c0 + 10);
    uint64_t fsyncs;
    ordo_wal_stats(wal, NULL, &fsyncs, NULL);
    CU_ASSERT_EQUAL((long)fsyncs, f.fdatasyncs);
    ordo_wal_destroy(&wal);
    CU_ASSERT_EQUAL(f.fdatasyncs, c0 + 10);
    ordo_test_rm_rf(dir);

    /* NEVER: none until sync or destroy. */
    CU_ASSERT_PTR_NOT_NULL_FATAL(ordo_test_tmpdir(dir, sizeof dir));
    o = s_opts(dir, 0, ORDO_SYNC_NEVER);
    o.io = &io;
    CU_ASSERT_EQUAL_FATAL(ordo_wal_open(&o, &wal, NULL), 0);
    c0 = f.fdatasyncs;
    for (int i = 0; i < 10; i++)
        CU_ASSERT_EQUAL(s_append(wal, 3, NULL), 0);
    CU_ASSERT_EQUAL(f.fdatasyncs, c0);
    CU_ASSERT_EQUAL(ordo_wal_head(wal), 30);
    CU_ASSERT_EQUAL(ordo_wal_synced_head(wal), 0);
    CU_ASSERT_EQUAL(ordo_wal_sync_due_in_ms(wal), 0); /* interval 0: due */
    CU_ASSERT_EQUAL(ordo_wal_sync(wal), 0);
    CU_ASSERT_EQUAL(f.fdatasyncs, c0 + 1);
    CU_ASSERT_EQUAL(ordo_wal_synced_head(wal), 30);
    CU_ASSERT_EQUAL(ordo_wal_sync_due_in_ms(wal), -1);
    CU_ASSERT_EQUAL(ordo_wal_sync(wal), 0);
    CU_ASSERT_EQUAL(f.fdatasyncs, c0 + 1);
    CU_ASSERT_EQUAL(s_append(wal, 1, NULL), 0);
    CU_ASSERT_EQUAL(f.fdatasyncs, c0 + 1);
    ordo_wal_destroy(&wal);
    CU_ASSERT_EQUAL(f.fdatasyncs, c0 + 2);
    ordo_test_rm_rf(dir);

    /* BATCH with a long interval: writes stay unsynced until it elapses. */
    CU_ASSERT_PTR_NOT_NULL_FATAL(ordo_test_tmpdir(dir, sizeof dir));
    o = s_opts(dir, 0, ORDO_SYNC_BATCH);
    o.sync_interval_ms = 3600 * 1000;
    o.io = &io;
    CU_ASSERT_EQUAL_FATAL(ordo_wal_open(&o, &wal, NULL), 0);
    c0 = f.fdatasyncs;
    for (int i = 0; i < 5; i++)
        CU_ASSERT_EQUAL(s_append(wal, 2, NULL), 0);
    CU_ASSERT_EQUAL(f.fdatasyncs, c0);
    CU_ASSERT_EQUAL(ordo_wal_head(wal), 10); /* visible once written */
    CU_ASSERT(ordo_wal_sync_due_in_ms(wal) > 1000);
    CU_ASSERT_EQUAL(ordo_wal_sync_if_due(wal), 0);
    CU_ASSERT_EQUAL(f.fdatasyncs, c0);
    CU_ASSERT_EQUAL(ordo_wal_sync(wal), 0);
    CU_ASSERT_EQUAL(f.fdatasyncs, c0 + 1);
    ordo_wal_destroy(&wal);
    ordo_test_rm_rf(dir);

    /* REPLICATED: synced like ALWAYS, but nothing is visible to readers
     * (head, synced head, a reader) until released; the last frame's
     * bytes are the file's. */
    CU_ASSERT_PTR_NOT_NULL_FATAL(ordo_test_tmpdir(dir, sizeof dir));
    o = s_opts(dir, 0, ORDO_SYNC_REPLICATED);
    o.io = &io;
    CU_ASSERT_EQUAL_FATAL(ordo_wal_open(&o, &wal, NULL), 0);
    c0 = f.fdatasyncs;
    CU_ASSERT_EQUAL(s_append(wal, 3, NULL), 0);
    CU_ASSERT_EQUAL(f.fdatasyncs, c0 + 1);
    CU_ASSERT_EQUAL(ordo_wal_head(wal), 0);
    CU_ASSERT_EQUAL(ordo_wal_synced_head(wal), 0);
    ordo_wal_reader_t *rd = NULL;
    CU_ASSERT_EQUAL_FATAL(ordo_wal_reader_new(wal, 1, &rd), 0);
    uint64_t pos;
    const void *rec;
    size_t rec_len;
    CU_ASSERT_EQUAL(ordo_wal_reader_next(rd, &pos, &rec, &rec_len), 0); /* nothing yet */
    const void *frame;
    size_t frame_len;
    ordo_wal_last_frame(wal, &frame, &frame_len);
    CU_ASSERT(frame_len > ORDO_WAL_HEADER_SIZE);
    CU_ASSERT_EQUAL(memcmp(frame, "OWAL", 4), 0);
    ordo_wal_release(wal);
    CU_ASSERT_EQUAL(ordo_wal_head(wal), 3);
    CU_ASSERT_EQUAL(ordo_wal_synced_head(wal), 3);
    CU_ASSERT_EQUAL(ordo_wal_reader_next(rd, &pos, &rec, &rec_len), 1);
    CU_ASSERT_EQUAL(pos, 1);
    ordo_wal_reader_destroy(&rd);
    /* The frame's bytes are in the segment, right after its identity. */
    uint8_t *copy = malloc(frame_len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(copy);
    memcpy(copy, frame, frame_len);
    CU_ASSERT_EQUAL(s_append(wal, 2, NULL), 0); /* a second frame, held */
    CU_ASSERT_EQUAL(ordo_wal_head(wal), 3);
    ordo_wal_destroy(&wal);
    char path[512];
    s_seg_path(dir, 1, path, sizeof path);
    int fd = open(path, O_RDONLY);
    uint8_t *disk = malloc(frame_len);
    CU_ASSERT_FATAL(fd >= 0 && disk != NULL);
    CU_ASSERT_EQUAL(pread(fd, disk, frame_len, ORDO_WAL_ID_FRAME_SIZE), (ssize_t)frame_len);
    CU_ASSERT_EQUAL(memcmp(disk, copy, frame_len), 0);
    close(fd);
    free(disk);
    free(copy);
    /* Both frames are durable: a reopening finds them. */
    CU_ASSERT_EQUAL_FATAL(ordo_wal_open(&o, &wal, NULL), 0);
    CU_ASSERT_EQUAL(ordo_wal_head(wal), 5);
    ordo_wal_destroy(&wal);
    ordo_test_rm_rf(dir);

    /* BATCH with interval 0: every append is due. */
    CU_ASSERT_PTR_NOT_NULL_FATAL(ordo_test_tmpdir(dir, sizeof dir));
    o = s_opts(dir, 0, ORDO_SYNC_BATCH);
    o.io = &io;
    CU_ASSERT_EQUAL_FATAL(ordo_wal_open(&o, &wal, NULL), 0);
    c0 = f.fdatasyncs;
    for (int i = 0; i < 4; i++)
        CU_ASSERT_EQUAL(s_append(wal, 2, NULL), 0);
    CU_ASSERT_EQUAL(f.fdatasyncs, c0 + 4);
    ordo_wal_destroy(&wal);
    ordo_test_rm_rf(dir);
}

/* A replica: log B takes log A's frames byte for byte (ordo_wal_append_frame),
 * across segment rolls, reads back every record, and ends with A's bytes; a
 * frame out of place, of another log's chain, or damaged is refused and
 * changes nothing. */
static void test_append_frame(void)
{
    char da[256], db[256], dc[256];
    CU_ASSERT_PTR_NOT_NULL_FATAL(ordo_test_tmpdir(da, sizeof da));
    CU_ASSERT_PTR_NOT_NULL_FATAL(ordo_test_tmpdir(db, sizeof db));
    CU_ASSERT_PTR_NOT_NULL_FATAL(ordo_test_tmpdir(dc, sizeof dc));
    ordo_wal_options_t oa = s_opts(da, SMALL_SEG, ORDO_SYNC_NEVER);
    ordo_wal_options_t ob = s_opts(db, SMALL_SEG, ORDO_SYNC_NEVER);
    ordo_wal_options_t oc = s_opts(dc, SMALL_SEG, ORDO_SYNC_NEVER);
    ordo_wal_t *a = NULL, *b = NULL, *c = NULL;
    CU_ASSERT_EQUAL_FATAL(ordo_wal_open(&oa, &a, NULL), 0);
    CU_ASSERT_EQUAL_FATAL(ordo_wal_open(&ob, &b, NULL), 0);
    CU_ASSERT_EQUAL_FATAL(ordo_wal_open(&oc, &c, NULL), 0);
    const char *why;
    uint64_t first;
    uint32_t count;
    uint8_t *held = NULL;
    size_t held_len = 0;
    for (int i = 0; i < 200; i++) {
        CU_ASSERT_EQUAL_FATAL(s_append(a, 1 + (size_t)i % 7, NULL), 0);
        const void *frame;
        size_t len;
        ordo_wal_last_frame(a, &frame, &len);
        uint8_t *copy = malloc(len);
        CU_ASSERT_PTR_NOT_NULL_FATAL(copy);
        memcpy(copy, frame, len);
        if (i == 100) { /* damaged: one body byte flipped */
            copy[len - 1] ^= 0x40;
            CU_ASSERT_EQUAL(ordo_wal_append_frame(b, copy, len, NULL, NULL, &why),
                            ORDO_ERR_CORRUPT);
            CU_ASSERT_PTR_NOT_NULL(why);
            copy[len - 1] ^= 0x40;
            /* cut short */
            CU_ASSERT_EQUAL(ordo_wal_append_frame(b, copy, len - 1, NULL, NULL, &why),
                            ORDO_ERR_CORRUPT);
        }
        if (i == 150) /* the frame before again: out of place */
            CU_ASSERT_EQUAL(ordo_wal_append_frame(b, held, held_len, NULL, NULL, &why),
                            ORDO_ERR_CORRUPT);
        CU_ASSERT_EQUAL(ordo_wal_append_frame(b, copy, len, &first, &count, &why), 0);
        CU_ASSERT_EQUAL(first + count - 1, ordo_wal_head(a));
        free(held);
        held = copy;
        held_len = len;
    }
    CU_ASSERT_EQUAL(ordo_wal_head(b), ordo_wal_head(a));
    CU_ASSERT_EQUAL(s_verify(b, 1), (long long)ordo_wal_head(a));
    /* Log C has its own history: A's next frame does not chain to it even
     * where the positions line up. */
    CU_ASSERT_EQUAL(s_append(c, (size_t)ordo_wal_head(a), NULL), 0);
    CU_ASSERT_EQUAL(s_append(a, 3, NULL), 0);
    const void *frame;
    size_t len;
    ordo_wal_last_frame(a, &frame, &len);
    CU_ASSERT_EQUAL(ordo_wal_append_frame(c, frame, len, NULL, NULL, &why), ORDO_ERR_DIVERGED);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "chain"));
    CU_ASSERT_EQUAL(ordo_wal_error(c), 0); /* refused, not failed */
    CU_ASSERT_EQUAL(ordo_wal_append_frame(b, frame, len, NULL, NULL, &why), 0);
    free(held);
    ordo_wal_destroy(&a);
    ordo_wal_destroy(&b);
    ordo_wal_destroy(&c);
    /* Same segments, same bytes after each one's identity. */
    CU_ASSERT_EQUAL(s_dir_digest_from(da, ORDO_WAL_ID_FRAME_SIZE),
                    s_dir_digest_from(db, ORDO_WAL_ID_FRAME_SIZE));
    CU_ASSERT_NOT_EQUAL(s_dir_digest(da), s_dir_digest(db));
    CU_ASSERT_EQUAL_FATAL(ordo_wal_open(&ob, &b, NULL), 0);
    CU_ASSERT_EQUAL(s_verify(b, 1), (long long)ordo_wal_head(b));
    ordo_wal_destroy(&b);
    ordo_test_rm_rf(da);
    ordo_test_rm_rf(db);
    ordo_test_rm_rf(dc);
}

/* ---- 7. preallocated segments ---------------------------------------------- */

/* File size of every segment in `dir` equals `size`: 1, else 0. */
static int s_all_sized(const char *dir, long long size)
{
    uint64_t names[256];
    size_t n = s_list(dir, names, 256);
    char path[512];
    for (size_t i = 0; i < n; i++) {
        s_seg_path(dir, names[i], path, sizeof path);
        if (ordo_test_file_size(path) != size)
            return 0;
    }
    return n > 0;
}

/* With the real POSIX io, a segment is segment_bytes long (and allocated)
 * from its creation on, and appends never change that. */
static void test_preallocated_segments(void)
{
    char dir[256], path[512];
    CU_ASSERT_PTR_NOT_NULL_FATAL(ordo_test_tmpdir(dir, sizeof dir));
    if (!s_prealloc_works(dir)) {
        fprintf(stderr, "(file system under %s cannot preallocate: skipped) ", dir);
        ordo_test_rm_rf(dir);
        return;
    }
    ordo_wal_options_t o = s_opts(dir, SMALL_SEG, ORDO_SYNC_ALWAYS);
    ordo_wal_recovery_t rep;
    ordo_wal_t *wal = NULL;
    CU_ASSERT_EQUAL_FATAL(ordo_wal_open(&o, &wal, NULL), 0);
    s_seg_path(dir, 1, path, sizeof path);
    CU_ASSERT_EQUAL(ordo_test_file_size(path), SMALL_SEG); /* right after open */
    struct stat st;
    CU_ASSERT(stat(path, &st) == 0 && (long long)st.st_blocks * 512 >= SMALL_SEG); /* not sparse */
    CU_ASSERT_EQUAL(s_walk(path, NULL, 0, NULL), ORDO_WAL_ID_FRAME_SIZE); /* its identity only */
    int bad = 0, frames = 0;
    uint64_t names[256], seg = 1, seg_start = 0;
    while (s_list(dir, names, 256) < 3) {
        uint64_t before = 0, after = 0;
        ordo_wal_stats(wal, NULL, NULL, &before);
        CU_ASSERT_EQUAL_FATAL(s_append(wal, 1 + (size_t)(frames % 4), NULL), 0);
        frames++;
        ordo_wal_stats(wal, NULL, NULL, &after);
        size_t n = s_list(dir, names, 256);
        if (names[n - 1] != seg) {
            seg = names[n - 1];
            seg_start = before;
        }
        s_seg_path(dir, seg, path, sizeof path);
        /* No growth; the data end is where the frames end. */
        bad += ordo_test_file_size(path) != SMALL_SEG;
        bad +=
            s_walk(path, NULL, 0, NULL) != (long long)(after - seg_start) + ORDO_WAL_ID_FRAME_SIZE;
    }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT(s_all_sized(dir, SMALL_SEG));
    uint64_t head = ordo_wal_head(wal);
    ordo_wal_destroy(&wal);
    CU_ASSERT(s_all_sized(dir, SMALL_SEG)); /* closing changes nothing */
    CU_ASSERT_EQUAL_FATAL(ordo_wal_open(&o, &wal, &rep), 0);
    CU_ASSERT_EQUAL(rep.torn_bytes_truncated, 0);
    CU_ASSERT_EQUAL(rep.frames, (uint64_t)frames);
    CU_ASSERT_EQUAL(rep.last_position, head);
    CU_ASSERT_EQUAL(s_verify(wal, 1), (long long)head);
    CU_ASSERT_EQUAL(s_append(wal, 2, NULL), 0);
    ordo_wal_destroy(&wal);
    CU_ASSERT(s_all_sized(dir, SMALL_SEG));
    ordo_test_rm_rf(dir);

    /* Every preallocation (the first segment at open, each roll) is synced
     * before a frame goes into it, and a roll costs one fdatasync of the new
     * segment on top of the old one's. */
    CU_ASSERT_PTR_NOT_NULL_FATAL(ordo_test_tmpdir(dir, sizeof dir));
    s_fault_t f;
    ordo_io_t io = s_fault_io(&f);
    o = s_opts(dir, SMALL_SEG, ORDO_SYNC_NEVER);
    o.io = &io;
    CU_ASSERT_EQUAL_FATAL(ordo_wal_open(&o, &wal, NULL), 0);
    int rolls = 0;
    while (rolls < 3) {
        size_t n0 = s_list(dir, names, 256);
        long syncs = f.fdatasyncs;
        CU_ASSERT_EQUAL_FATAL(s_append(wal, 5, NULL), 0);
        if (s_list(dir, names, 256) != n0) {
            rolls++;
            CU_ASSERT_EQUAL(f.fdatasyncs, syncs + 2);
        } else {
            CU_ASSERT_EQUAL(f.fdatasyncs, syncs); /* NEVER: none in a segment */
        }
    }
    CU_ASSERT_EQUAL(f.unsynced_writes, 0);
    uint64_t fsyncs = 0;
    ordo_wal_stats(wal, NULL, &fsyncs, NULL);
    CU_ASSERT_EQUAL((long)fsyncs, f.fdatasyncs); /* the stats count them all */
    ordo_wal_destroy(&wal);
    CU_ASSERT(s_all_sized(dir, SMALL_SEG));
    ordo_test_rm_rf(dir);
}

/* No preallocation support (EOPNOTSUPP, through an io wrapper) is not an
 * error: segments grow frame by frame, torn tails are cut, all works. */
static void test_no_preallocation(void)
{
    char dir[256], path[512];
    CU_ASSERT_PTR_NOT_NULL_FATAL(ordo_test_tmpdir(dir, sizeof dir));
    s_fault_t f;
    ordo_io_t io = s_fault_io(&f);
    f.fallocate_errno = EOPNOTSUPP;
    ordo_wal_options_t o = s_opts(dir, SMALL_SEG, ORDO_SYNC_NEVER);
    o.io = &io;
    ordo_wal_t *wal = NULL;
    ordo_wal_recovery_t rep;
    CU_ASSERT_EQUAL_FATAL(ordo_wal_open(&o, &wal, NULL), 0);
    s_seg_path(dir, 1, path, sizeof path);
    CU_ASSERT_EQUAL(ordo_test_file_size(path), ORDO_WAL_ID_FRAME_SIZE); /* its identity */
    int bad = 0;
    uint64_t names[256], seg = 1, seg_start = 0;
    for (int i = 0; i < 200; i++) {
        uint64_t before = 0, after = 0;
        ordo_wal_stats(wal, NULL, NULL, &before);
        CU_ASSERT_EQUAL(s_append(wal, 5, NULL), 0);
        ordo_wal_stats(wal, NULL, NULL, &after);
        size_t n = s_list(dir, names, 256);
        if (names[n - 1] != seg) {
            seg = names[n - 1];
            seg_start = before;
        }
        s_seg_path(dir, seg, path, sizeof path);
        bad += ordo_test_file_size(path) !=
               (long long)(after - seg_start) + ORDO_WAL_ID_FRAME_SIZE; /* grows */
    }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT(f.fallocates > 2); /* it was asked at every roll */
    CU_ASSERT(s_list(dir, names, 256) > 2);
    CU_ASSERT_EQUAL(ordo_wal_error(wal), 0);
    CU_ASSERT_EQUAL(s_verify(wal, 1), 1000);
    ordo_wal_destroy(&wal);

    /* A torn last frame: cut off, the file ends at the last good frame. */
    s_last_seg_path(dir, path, sizeof path);
    long long offs[512];
    int count = 0;
    long long end = s_walk(path, offs, 512, &count);
    CU_ASSERT_FATAL(count >= 2 && count <= 512 && end == ordo_test_file_size(path));
    long long cut = offs[count - 1] + (end - offs[count - 1]) / 2;
    uint8_t *torn = malloc((size_t)(cut - offs[count - 1]));
    CU_ASSERT_PTR_NOT_NULL_FATAL(torn);
    CU_ASSERT_EQUAL(s_read_at(path, offs[count - 1], torn, (size_t)(cut - offs[count - 1])), 0);
    CU_ASSERT_EQUAL(ordo_test_truncate(path, cut), 0);
    CU_ASSERT_EQUAL_FATAL(ordo_wal_open(&o, &wal, &rep), 0);
    CU_ASSERT_EQUAL(rep.torn_bytes_truncated, s_nonzero_len(torn, (size_t)(cut - offs[count - 1])));
    CU_ASSERT_EQUAL(rep.last_position, 995);
    CU_ASSERT_EQUAL(ordo_test_file_size(path), offs[count - 1]);
    CU_ASSERT_EQUAL(s_append(wal, 5, NULL), 0);
    CU_ASSERT_EQUAL(s_verify(wal, 1), 1000);
    ordo_wal_destroy(&wal);
    free(torn);
    /* The same log on a file system that preallocates: it just works. */
    o.io = NULL;
    CU_ASSERT_EQUAL_FATAL(ordo_wal_open(&o, &wal, &rep), 0);
    CU_ASSERT_EQUAL(rep.last_position, 1000);
    CU_ASSERT_EQUAL(rep.torn_bytes_truncated, 0);
    CU_ASSERT_EQUAL(s_append(wal, 5, NULL), 0);
    CU_ASSERT_EQUAL(s_verify(wal, 1), 1005);
    ordo_wal_destroy(&wal);
    ordo_test_rm_rf(dir);
}

/* ---- 8. failure injection ------------------------------------------------ */

static void s_check_failed(ordo_wal_t *wal, int first_error, uint64_t head, s_fault_t *f)
{
    long syncs = f->fdatasyncs;
    CU_ASSERT_EQUAL(ordo_wal_error(wal), first_error);
    CU_ASSERT_EQUAL(ordo_wal_head(wal), head);
    CU_ASSERT_EQUAL(s_append(wal, 1, NULL), ORDO_ERR_FAILED);
    CU_ASSERT_EQUAL(s_append(wal, 1, NULL), ORDO_ERR_FAILED);
    CU_ASSERT_EQUAL(ordo_wal_sync(wal), ORDO_ERR_FAILED);
    CU_ASSERT_EQUAL(ordo_wal_sync_if_due(wal), ORDO_ERR_FAILED);
    CU_ASSERT_EQUAL(ordo_wal_error(wal), first_error); /* the first error sticks */
    CU_ASSERT_EQUAL(ordo_wal_head(wal), head);
    CU_ASSERT_EQUAL(s_verify(wal, 1), (long long)head); /* old records still readable */
    CU_ASSERT_EQUAL(f->fdatasyncs, syncs);              /* a failed log never syncs again */
}

static void test_failure_injection(void)
{
    char dir[256], path[512];
    s_fault_t f;
    ordo_io_t io = s_fault_io(&f);
    ordo_wal_t *wal = NULL;
    ordo_wal_recovery_t rep;

    /* Disk full in the middle of a frame. */
    CU_ASSERT_PTR_NOT_NULL_FATAL(ordo_test_tmpdir(dir, sizeof dir));
    ordo_wal_options_t o = s_opts(dir, 0, ORDO_SYNC_ALWAYS);
    o.io = &io;
    CU_ASSERT_EQUAL_FATAL(ordo_wal_open(&o, &wal, NULL), 0);
    for (int i = 0; i < 5; i++)
        CU_ASSERT_EQUAL(s_append(wal, 4, NULL), 0);
    s_seg_path(dir, 1, path, sizeof path);
    long long good_end = s_walk(path, NULL, 0, NULL);
    long long size = ordo_test_file_size(path);
    f.write_budget = 10;
    int errors = s_errors;
    CU_ASSERT_EQUAL(s_append(wal, 4, NULL), ORDO_ERR_NOSPACE);
    CU_ASSERT(s_errors > errors);
    uint8_t partial[32];
    CU_ASSERT_EQUAL(s_read_at(path, good_end, partial, sizeof partial), 0);
    CU_ASSERT_EQUAL(memcmp(partial, ORDO_WAL_MAGIC, 4), 0);               /* the partial write */
    CU_ASSERT_EQUAL(s_nonzero_len(partial + 10, sizeof partial - 10), 0); /* only 10 bytes */
    CU_ASSERT_EQUAL(ordo_test_file_size(path), size); /* within the preallocation */
    s_check_failed(wal, ORDO_ERR_NOSPACE, 20, &f);
    long syncs = f.fdatasyncs;
    ordo_wal_destroy(&wal);
    CU_ASSERT_EQUAL(f.fdatasyncs, syncs); /* no sync at close either */
    o.io = NULL;
    CU_ASSERT_EQUAL_FATAL(ordo_wal_open(&o, &wal, &rep), 0);
    CU_ASSERT_EQUAL(rep.torn_bytes_truncated, s_nonzero_len(partial, 10));
    CU_ASSERT_EQUAL(rep.last_position, 20);
    CU_ASSERT(s_zero_from(path, good_end));
    CU_ASSERT_EQUAL(s_append(wal, 4, NULL), 0);
    CU_ASSERT_EQUAL(s_verify(wal, 1), 24);
    ordo_wal_destroy(&wal);
    ordo_test_rm_rf(dir);

    /* A failing fdatasync: the frame is not made visible, never retried. */
    CU_ASSERT_PTR_NOT_NULL_FATAL(ordo_test_tmpdir(dir, sizeof dir));
    io = s_fault_io(&f);
    o = s_opts(dir, 0, ORDO_SYNC_ALWAYS);
    o.io = &io;
    CU_ASSERT_EQUAL_FATAL(ordo_wal_open(&o, &wal, NULL), 0);
    for (int i = 0; i < 3; i++)
        CU_ASSERT_EQUAL(s_append(wal, 4, NULL), 0);
    f.fdatasync_errno = EIO;
    syncs = f.fdatasyncs;
    CU_ASSERT_EQUAL(s_append(wal, 4, NULL), ORDO_ERR_IO);
    CU_ASSERT_EQUAL(f.fdatasyncs, syncs + 1);
    CU_ASSERT_EQUAL(ordo_wal_synced_head(wal), 12);
    s_check_failed(wal, ORDO_ERR_IO, 12, &f);
    ordo_wal_destroy(&wal);
    CU_ASSERT_EQUAL(f.fdatasyncs, syncs + 1);
    o.io = NULL;
    CU_ASSERT_EQUAL_FATAL(ordo_wal_open(&o, &wal, &rep), 0);
    /* The unsynced frame's fate is unknown after a failed fsync: it may or
     * may not be there (here the page cache kept it), never half. */
    CU_ASSERT(rep.last_position == 12 || rep.last_position == 16);
    CU_ASSERT_EQUAL(rep.torn_bytes_truncated, 0);
    CU_ASSERT_EQUAL(s_verify(wal, 1), (long long)rep.last_position);
    ordo_wal_destroy(&wal);
    ordo_test_rm_rf(dir);

    /* Preallocating a new segment fails (disk full at a roll). */
    CU_ASSERT_PTR_NOT_NULL_FATAL(ordo_test_tmpdir(dir, sizeof dir));
    io = s_fault_io(&f);
    f.fallocate_errno = ENOSPC;
    f.fallocate_ok = 1; /* the one at open */
    o = s_opts(dir, SMALL_SEG, ORDO_SYNC_NEVER);
    o.io = &io;
    CU_ASSERT_EQUAL_FATAL(ordo_wal_open(&o, &wal, NULL), 0);
    int rc = 0, i = 0;
    uint64_t head = 0;
    while (rc == 0 && i++ < 1000) {
        head = ordo_wal_head(wal);
        rc = s_append(wal, 5, NULL);
    }
    CU_ASSERT_EQUAL(rc, ORDO_ERR_NOSPACE);
    CU_ASSERT(head > 0);
    s_check_failed(wal, ORDO_ERR_NOSPACE, head, &f);
    ordo_wal_destroy(&wal);
    o.io = NULL;
    CU_ASSERT_EQUAL_FATAL(ordo_wal_open(&o, &wal, &rep), 0);
    CU_ASSERT_EQUAL(rep.last_position, head);
    CU_ASSERT_EQUAL(rep.segments, 2); /* the new, empty segment is kept and used */
    CU_ASSERT_EQUAL(s_append(wal, 5, NULL), 0);
    CU_ASSERT_EQUAL(s_verify(wal, 1), (long long)head + 5);
    ordo_wal_destroy(&wal);

    /* ... and at open, when the last segment has no room ahead of its
     * data, where it refuses to start with the cause. */
    char last[400];
    s_last_seg_path(dir, last, sizeof last);
    CU_ASSERT_EQUAL_FATAL(ordo_test_truncate(last, s_data_end(last)), 0);
    io = s_fault_io(&f);
    f.fallocate_errno = ENOSPC;
    o.io = &io;
    CU_ASSERT_EQUAL(ordo_wal_open(&o, &wal, &rep), ORDO_ERR_NOSPACE);
    CU_ASSERT_PTR_NULL(wal);
    CU_ASSERT_PTR_NOT_NULL(strstr(rep.message, "preallocating"));
    ordo_test_rm_rf(dir);
}

/* A log of 64 MiB segments: the last segment's file reaches a few MiB
 * past its data, not its full size, and opening the log reads no more of
 * zeros than that, wherever the data ends; appends grow the file ahead,
 * each growth synced before frames are written into it. */
static void test_open_reads_little_past_the_data(void)
{
    char dir[256], last[400];
    CU_ASSERT_PTR_NOT_NULL_FATAL(ordo_test_tmpdir(dir, sizeof dir));
    s_fault_t f;
    ordo_io_t io = s_fault_io(&f);
    ordo_wal_options_t o = s_opts(dir, 64u << 20, ORDO_SYNC_ALWAYS);
    o.io = &io;
    ordo_wal_t *wal = NULL;
    CU_ASSERT_EQUAL_FATAL(ordo_wal_open(&o, &wal, NULL), 0);
    for (int i = 0; i < 300; i++) /* ~6 MiB: the file grows at least once */
        CU_ASSERT_EQUAL(s_append(wal, 100, NULL), 0);
    CU_ASSERT_EQUAL(f.unsynced_writes, 0); /* grown space synced before use */
    ordo_wal_destroy(&wal);
    s_last_seg_path(dir, last, sizeof last);
    long long data = s_data_end(last), size = ordo_test_file_size(last);
    CU_ASSERT(data > (4 << 20));
    CU_ASSERT(size >= data && size <= data + (8 << 20));
    CU_ASSERT(size < (64 << 20));
    f.read_bytes = 0;
    ordo_wal_recovery_t rep;
    CU_ASSERT_EQUAL_FATAL(ordo_wal_open(&o, &wal, &rep), 0);
    CU_ASSERT_EQUAL(rep.last_position, 30000);
    CU_ASSERT(f.read_bytes <= data + (8 << 20)); /* not 64 MiB */
    CU_ASSERT_EQUAL(s_append(wal, 5, NULL), 0);
    ordo_wal_destroy(&wal);
    ordo_test_rm_rf(dir);
}

/* With fsync batch or never, a power cut may keep later unsynced writes of
 * the last segment and drop earlier ones: a hole followed by frames there
 * is cut without repair, and reported; the same hole in an earlier segment
 * (synced when the next one began) is still refused. */
static void test_hole_in_unsynced_tail(void)
{
    for (int mode = 0; mode < 2; mode++) {
        char dir[256], path[400];
        CU_ASSERT_PTR_NOT_NULL_FATAL(ordo_test_tmpdir(dir, sizeof dir));
        ordo_sync_mode_t sync = mode ? ORDO_SYNC_BATCH : ORDO_SYNC_NEVER;
        ordo_wal_options_t o = s_opts(dir, 64u << 20, sync);
        o.sync_interval_ms = 1000;
        ordo_wal_t *wal = NULL;
        CU_ASSERT_EQUAL_FATAL(ordo_wal_open(&o, &wal, NULL), 0);
        uint64_t firsts[6];
        long long offs[6];
        for (int i = 0; i < 6; i++) {
            uint64_t before = 0;
            ordo_wal_stats(wal, NULL, NULL, &before);
            offs[i] = (long long)before + ORDO_WAL_ID_FRAME_SIZE;
            CU_ASSERT_EQUAL(s_append(wal, 3, &firsts[i]), 0);
        }
        ordo_wal_destroy(&wal);
        /* Frame 3 never reached the disk; 4 and 5 did. */
        s_last_seg_path(dir, path, sizeof path);
        FILE *f = fopen(path, "r+b");
        CU_ASSERT_PTR_NOT_NULL_FATAL(f);
        static char zeros[1 << 16];
        CU_ASSERT_EQUAL(fseek(f, offs[3], SEEK_SET), 0);
        CU_ASSERT_EQUAL(fwrite(zeros, 1, (size_t)(offs[4] - offs[3]), f),
                        (size_t)(offs[4] - offs[3]));
        fclose(f);
        ordo_wal_recovery_t rep;
        /* Under fsync always the same hole is corruption: refused. */
        ordo_wal_options_t strict = o;
        strict.sync_mode = ORDO_SYNC_ALWAYS;
        int errors = s_errors;
        CU_ASSERT_EQUAL(ordo_wal_open(&strict, &wal, &rep), ORDO_ERR_CORRUPT);
        CU_ASSERT(s_errors > errors);
        int warns = s_warns;
        CU_ASSERT_EQUAL_FATAL(ordo_wal_open(&o, &wal, &rep), 0);
        CU_ASSERT(s_warns > warns);
        CU_ASSERT_EQUAL(rep.last_position, firsts[3] - 1); /* the gap-free prefix */
        CU_ASSERT_EQUAL(rep.events_dropped, 9); /* positions past the prefix: frames 3-5 */
        CU_ASSERT_PTR_NOT_NULL(strstr(rep.message, "hole"));
        uint64_t first = 0;
        CU_ASSERT_EQUAL(s_append(wal, 1, &first), 0);
        CU_ASSERT_EQUAL(first, firsts[3]);
        CU_ASSERT_EQUAL(s_verify(wal, 1), (long long)firsts[3]);
        ordo_wal_destroy(&wal);
        /* Damage that is not a dropped write (a flipped bit in frame 1,
         * frames after it) is refused in these modes too. */
        CU_ASSERT_EQUAL(ordo_test_flip_bit(path, offs[1] + 40, 2), 0);
        errors = s_errors;
        CU_ASSERT_EQUAL(ordo_wal_open(&o, &wal, &rep), ORDO_ERR_CORRUPT);
        CU_ASSERT(s_errors > errors);
        CU_ASSERT_PTR_NULL(wal);
        ordo_test_rm_rf(dir);
    }
}

/* Writes a log of `appends` appends of 3 records in `dir` (small segments). */
static void s_small_log(const char *dir, int appends)
{
    ordo_wal_options_t o = s_opts(dir, SMALL_SEG, ORDO_SYNC_NEVER);
    ordo_wal_t *wal = NULL;
    CU_ASSERT_EQUAL_FATAL(ordo_wal_open(&o, &wal, NULL), 0);
    for (int i = 0; i < appends; i++)
        CU_ASSERT_EQUAL(s_append(wal, 3, NULL), 0);
    ordo_wal_destroy(&wal);
}

/* Every segment names its log: a segment of another log put in its place
 * is refused, naming both; a log from before identities opens as it is and
 * its new segments get one; an identity frame torn in an empty last
 * segment is written again. */
static void test_log_identity(void)
{
    char a[256], b[256], path[512], other[512];
    CU_ASSERT_PTR_NOT_NULL_FATAL(ordo_test_tmpdir(a, sizeof a));
    CU_ASSERT_PTR_NOT_NULL_FATAL(ordo_test_tmpdir(b, sizeof b));
    s_small_log(a, 400);
    s_small_log(b, 400); /* the same records: the same segment names */
    uint64_t names[64];
    size_t n = s_list(a, names, 64);
    CU_ASSERT_FATAL(n >= 3);
    CU_ASSERT_EQUAL(s_list(b, names, 64), n);
    uint8_t id_a[ORDO_WAL_ID_FRAME_SIZE], id_b[ORDO_WAL_ID_FRAME_SIZE];
    s_seg_path(a, names[1], path, sizeof path);
    s_seg_path(b, names[1], other, sizeof other);
    CU_ASSERT_EQUAL(s_read_at(path, 0, id_a, sizeof id_a), 0);
    CU_ASSERT_EQUAL(s_read_at(other, 0, id_b, sizeof id_b), 0);
    CU_ASSERT(id_a[6] & ORDO_WAL_FLAG_LOG_ID);
    CU_ASSERT(memcmp(id_a + ORDO_WAL_HEADER_SIZE, id_b + ORDO_WAL_HEADER_SIZE,
                     ORDO_WAL_LOG_ID_SIZE) != 0); /* two logs, two identities */
    /* b's middle segment in a's place: refused, with or without repair. */
    CU_ASSERT_EQUAL(ordo_test_copy_file(other, path), 0);
    ordo_wal_options_t o = s_opts(a, SMALL_SEG, ORDO_SYNC_NEVER);
    ordo_wal_recovery_t rep;
    ordo_wal_t *wal = NULL;
    int errors = s_errors;
    CU_ASSERT_EQUAL(ordo_wal_open(&o, &wal, &rep), ORDO_ERR_CORRUPT);
    CU_ASSERT(s_errors > errors);
    CU_ASSERT_PTR_NOT_NULL(strstr(rep.message, "belongs to log"));
    o.repair = true;
    CU_ASSERT_EQUAL(ordo_wal_open(&o, &wal, &rep), ORDO_ERR_CORRUPT);
    CU_ASSERT_PTR_NULL(wal);
    ordo_test_rm_rf(a);

    /* A log from before identities: b without its identity frames. */
    for (size_t i = 0; i < n; i++) {
        s_seg_path(b, names[i], path, sizeof path);
        long long size = ordo_test_file_size(path);
        uint8_t *img = malloc((size_t)size);
        CU_ASSERT_PTR_NOT_NULL_FATAL(img);
        CU_ASSERT_EQUAL(s_read_at(path, 0, img, (size_t)size), 0);
        CU_ASSERT_EQUAL(
            s_write_file(path, img + ORDO_WAL_ID_FRAME_SIZE, (size_t)size - ORDO_WAL_ID_FRAME_SIZE),
            0);
        free(img);
    }
    o = s_opts(b, SMALL_SEG, ORDO_SYNC_NEVER);
    CU_ASSERT_EQUAL_FATAL(ordo_wal_open(&o, &wal, &rep), 0);
    CU_ASSERT_EQUAL(rep.last_position, 1200);
    CU_ASSERT_EQUAL(s_verify(wal, 1), 1200);
    while (s_list(b, names, 64) == n) /* until a new segment */
        CU_ASSERT_EQUAL_FATAL(s_append(wal, 3, NULL), 0);
    ordo_wal_destroy(&wal);
    size_t m = s_list(b, names, 64);
    s_seg_path(b, names[m - 1], path, sizeof path);
    uint8_t head[ORDO_WAL_ID_FRAME_SIZE];
    CU_ASSERT_EQUAL(s_read_at(path, 0, head, sizeof head), 0);
    CU_ASSERT(head[6] & ORDO_WAL_FLAG_LOG_ID); /* the new segment names the log */
    CU_ASSERT_EQUAL_FATAL(ordo_wal_open(&o, &wal, &rep), 0);
    uint64_t last = rep.last_position;
    /* Its creation cut short: the identity of the empty last segment torn. */
    while (s_list(b, names, 64) == m)
        CU_ASSERT_EQUAL_FATAL(s_append(wal, 3, NULL), 0);
    /* the segment that just began holds one frame: drop it, and tear the identity */
    m = s_list(b, names, 64);
    last = names[m - 1] - 1;
    ordo_wal_destroy(&wal);
    s_seg_path(b, names[m - 1], path, sizeof path);
    CU_ASSERT_EQUAL(ordo_test_truncate(path, 20), 0);
    CU_ASSERT_EQUAL_FATAL(ordo_wal_open(&o, &wal, &rep), 0);
    CU_ASSERT_EQUAL(rep.last_position, last);
    CU_ASSERT_EQUAL(s_append(wal, 1, NULL), 0);
    ordo_wal_destroy(&wal);
    CU_ASSERT_EQUAL(s_read_at(path, 0, head, sizeof head), 0);
    CU_ASSERT(head[6] & ORDO_WAL_FLAG_LOG_ID); /* written again */
    CU_ASSERT_EQUAL_FATAL(ordo_wal_open(&o, &wal, &rep), 0);
    CU_ASSERT_EQUAL(rep.last_position, last + 1);
    ordo_wal_destroy(&wal);
    ordo_test_rm_rf(b);
}

/* ---- 9. options and arguments -------------------------------------------- */

static void test_invalid_options(void)
{
    char dir[256];
    CU_ASSERT_PTR_NOT_NULL_FATAL(ordo_test_tmpdir(dir, sizeof dir));
    ordo_wal_t *wal = (ordo_wal_t *)1;
    ordo_wal_recovery_t rep;
    ordo_wal_options_t o = s_opts(dir, 1000, ORDO_SYNC_ALWAYS);
    CU_ASSERT_EQUAL(ordo_wal_open(&o, &wal, &rep), ORDO_ERR_INVALID);
    CU_ASSERT_PTR_NULL(wal);
    CU_ASSERT_PTR_NOT_NULL(strstr(rep.message, "segment size must be at least 65536"));
    o.segment_bytes = 65535;
    CU_ASSERT_EQUAL(ordo_wal_open(&o, &wal, &rep), ORDO_ERR_INVALID);
    o = s_opts(NULL, 0, ORDO_SYNC_ALWAYS);
    CU_ASSERT_EQUAL(ordo_wal_open(&o, &wal, &rep), ORDO_ERR_INVALID);
    o = s_opts(dir, 0, (ordo_sync_mode_t)7);
    CU_ASSERT_EQUAL(ordo_wal_open(&o, &wal, &rep), ORDO_ERR_INVALID);
    o = s_opts(dir, 0, ORDO_SYNC_ALWAYS);
    o.zstd_level = 1000;
    CU_ASSERT_EQUAL(ordo_wal_open(&o, &wal, &rep), ORDO_ERR_INVALID);
    CU_ASSERT_EQUAL(ordo_wal_open(NULL, &wal, &rep), ORDO_ERR_INVALID);
    uint64_t names[4];
    CU_ASSERT_EQUAL(s_list(dir, names, 4), 0); /* refused options touch nothing */

    /* A missing folder is created, parents included; 65536 is allowed. */
    char deep[512];
    snprintf(deep, sizeof deep, "%s/a/b/wal", dir);
    o = s_opts(deep, 65536, ORDO_SYNC_ALWAYS);
    CU_ASSERT_EQUAL_FATAL(ordo_wal_open(&o, &wal, &rep), 0);
    CU_ASSERT_EQUAL(s_list(deep, names, 4), 1);
    ordo_wal_rec_t rec = {.data = "x", .len = 1};
    CU_ASSERT_EQUAL(ordo_wal_append(wal, &rec, 0, NULL), ORDO_ERR_INVALID);
    CU_ASSERT_EQUAL(ordo_wal_append(wal, NULL, 1, NULL), ORDO_ERR_INVALID);
    ordo_wal_rec_t huge = {.data = "x", .len = (size_t)ORDO_WAL_FRAME_RAW_MAX + 1}; /* never read */
    CU_ASSERT_EQUAL(ordo_wal_append(wal, &huge, 1, NULL), ORDO_ERR_TOO_BIG);
    CU_ASSERT_EQUAL(ordo_wal_error(wal), 0); /* refused input does not fail the log */
    uint64_t first = 0;
    CU_ASSERT_EQUAL(ordo_wal_append(wal, &rec, 1, &first), 0);
    CU_ASSERT_EQUAL(first, 1);
    ordo_wal_reader_t *r = NULL;
    CU_ASSERT_EQUAL(ordo_wal_reader_new(NULL, 1, &r), ORDO_ERR_INVALID);
    ordo_wal_destroy(&wal);
    ordo_test_rm_rf(dir);
}

/* ---- 10. hostile headers ---------------------------------------------------- */

/* Caps the address space a little above what the process uses, so that a
 * big allocation from a header field would fail instead of passing
 * unnoticed. Not under ASan, which reserves terabytes of shadow memory. */
static void s_cap_memory(struct rlimit *saved)
{
    getrlimit(RLIMIT_AS, saved);
#if !defined(__SANITIZE_ADDRESS__)
    unsigned long long pages = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%llu", &pages) != 1)
            pages = 0;
        fclose(f);
    }
    if (pages) {
        struct rlimit lim = *saved;
        lim.rlim_cur = (rlim_t)(pages * 4096 + (256ull << 20));
        setrlimit(RLIMIT_AS, &lim);
    }
#endif
}

static void s_uncap_memory(const struct rlimit *saved)
{
    setrlimit(RLIMIT_AS, saved);
}

static void s_put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* A frame with a correct checksum whose header claims what it likes. */
static size_t s_hostile_frame(uint8_t *out, uint64_t first, uint32_t count, uint32_t clen_claim,
                              uint32_t rlen, size_t body_len)
{
    ordo_wal_hdr_t h = {.version = ORDO_WAL_VERSION,
                        .first = first,
                        .count = count,
                        .clen = clen_claim,
                        .rlen = rlen};
    ordo_wal_hdr_encode(&h, out);
    for (size_t i = 0; i < body_len; i++)
        out[32 + i] = (uint8_t)(0x5a ^ i);
    s_put32(out + 28, ordo_wal_frame_crc(out, out + 32, body_len));
    return 32 + body_len;
}

/* A real zstd frame around an arbitrary raw body, claiming `count`. */
static size_t s_crafted_frame(uint8_t *out, size_t cap, uint64_t first, uint32_t count,
                              const void *raw, size_t rlen)
{
    size_t clen = ZSTD_compress(out + 32, cap - 32, raw, rlen, 1);
    if (ZSTD_isError(clen))
        return 0;
    ordo_wal_hdr_t h = {.version = ORDO_WAL_VERSION,
                        .first = first,
                        .count = count,
                        .clen = (uint32_t)clen,
                        .rlen = (uint32_t)rlen};
    ordo_wal_hdr_encode(&h, out);
    s_put32(out + 28, ordo_wal_frame_crc(out, out + 32, clen));
    return 32 + clen;
}

/* Bodies that pass the checksum but lie about their records. */
static void test_hostile_bodies(void)
{
    static const uint8_t raw[] = {3, 'a', 'b', 'c', 2, 'd', 'e'};
    static const uint8_t long_varint[] = {0xff, 0xff, 0xff, 0xff, 0x7f, 'x'};
    struct {
        const uint8_t *raw;
        size_t rlen;
        uint32_t count;
        const char *why; /* NULL = valid */
    } cases[] = {
        {raw, sizeof raw, 2, NULL},
        {raw, sizeof raw, 1, "records do not fill the body"},
        {raw, sizeof raw, 3, "record runs past the end of the body"},
        {raw, 6, 2, "record runs past the end of the body"},
        {long_varint, sizeof long_varint, 1, "record runs past the end of the body"},
    };
    ZSTD_DCtx *dctx = ordo_wal_dctx_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(dctx);
    ordo_wal_buf_t out = {0};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        uint8_t frame[256];
        size_t flen =
            s_crafted_frame(frame, sizeof frame, 1, cases[c].count, cases[c].raw, cases[c].rlen);
        CU_ASSERT_FATAL(flen > 32);
        ordo_wal_hdr_t h;
        const char *why = NULL;
        CU_ASSERT_EQUAL_FATAL(ordo_wal_hdr_decode(frame, &h, &why), 0);
        int rc = ordo_wal_frame_decode(dctx, frame, &h, frame + 32, &out, &why);
        if (!cases[c].why) {
            CU_ASSERT_EQUAL(rc, 0);
        } else {
            CU_ASSERT_EQUAL(rc, ORDO_ERR_CORRUPT);
            CU_ASSERT_STRING_EQUAL(rc ? why : "", cases[c].why);
        }
    }
    /* Decompressing to more or less than the raw length is refused too. */
    uint8_t frame[256];
    size_t flen = s_crafted_frame(frame, sizeof frame, 1, 2, raw, sizeof raw);
    for (int delta = -1; delta <= 1; delta += 2) {
        ordo_wal_hdr_t h;
        const char *why = NULL;
        s_put32(frame + 24, (uint32_t)((int)sizeof raw + delta));
        s_put32(frame + 28, ordo_wal_frame_crc(frame, frame + 32, flen - 32));
        CU_ASSERT_EQUAL_FATAL(ordo_wal_hdr_decode(frame, &h, &why), 0);
        CU_ASSERT_EQUAL(ordo_wal_frame_decode(dctx, frame, &h, frame + 32, &out, &why),
                        ORDO_ERR_CORRUPT);
    }
    ordo_wal_buf_free(&out);
    ZSTD_freeDCtx(dctx);
}

static void test_hostile_headers(void)
{
    /* Header checks alone. */
    uint8_t buf[256];
    ordo_wal_hdr_t h;
    const char *why = NULL;
    s_hostile_frame(buf, 1, UINT32_MAX, 16, UINT32_MAX, 16);
    CU_ASSERT_EQUAL(ordo_wal_hdr_decode(buf, &h, &why), ORDO_ERR_CORRUPT);
    CU_ASSERT_STRING_EQUAL(why ? why : "", "raw length above limit");
    s_hostile_frame(buf, 1, UINT32_MAX, 16, ORDO_WAL_FRAME_RAW_MAX, 16);
    CU_ASSERT_EQUAL(ordo_wal_hdr_decode(buf, &h, &why), ORDO_ERR_CORRUPT);
    CU_ASSERT_STRING_EQUAL(why ? why : "", "bad record count");
    s_hostile_frame(buf, 1, 1, UINT32_MAX, ORDO_WAL_FRAME_RAW_MAX, 16);
    CU_ASSERT_EQUAL(ordo_wal_hdr_decode(buf, &h, &why), ORDO_ERR_CORRUPT);
    CU_ASSERT_STRING_EQUAL(why ? why : "", "bad compressed length");
    s_hostile_frame(buf, UINT64_MAX, 2, 16, 100, 16);
    CU_ASSERT_EQUAL(ordo_wal_hdr_decode(buf, &h, &why), ORDO_ERR_CORRUPT);

    /* In a log: four good frames; a hostile one goes in before the fourth. */
    s_log_t *lg = calloc(1, sizeof *lg);
    uint64_t segs[8];
    CU_ASSERT_PTR_NOT_NULL_FATAL(lg);
    s_build_log(lg, SMALL_SEG, 4, segs);
    char src[512];
    s_seg_path(lg->dir, 1, src, sizeof src);
    size_t len = 0;
    uint8_t *orig = s_read_file(src, &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(orig);
    len = (size_t)s_walk(src, NULL, 0, NULL); /* the four frames, not the zeros after */
    CU_ASSERT_FATAL(len > (size_t)lg->off[3]);
    size_t cut = (size_t)lg->off[3];
    uint64_t pos4 = lg->first[3];
    struct {
        uint32_t count, clen, rlen;
        const char *why;
    } cases[] = {
        {UINT32_MAX, 16, UINT32_MAX, "raw length above limit"},
        {UINT32_MAX, 16, ORDO_WAL_FRAME_RAW_MAX, "bad record count"},
        {1, UINT32_MAX, ORDO_WAL_FRAME_RAW_MAX, "bad compressed length"},
        {1, 1u << 30, ORDO_WAL_FRAME_RAW_MAX, "bad compressed length"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char dir[256], path[512], offtext[64];
        CU_ASSERT_PTR_NOT_NULL_FATAL(ordo_test_tmpdir(dir, sizeof dir));
        s_seg_path(dir, 1, path, sizeof path);
        uint8_t *img = malloc(len + 64);
        CU_ASSERT_PTR_NOT_NULL_FATAL(img);
        memcpy(img, orig, cut);
        size_t hl =
            s_hostile_frame(img + cut, pos4, cases[c].count, cases[c].clen, cases[c].rlen, 16);
        memcpy(img + cut + hl, orig + cut, len - cut);
        CU_ASSERT_EQUAL(s_write_file(path, img, len + hl), 0);
        ordo_wal_options_t o = s_opts(dir, 0, ORDO_SYNC_ALWAYS);
        ordo_wal_recovery_t rep;
        ordo_wal_t *wal = NULL;
        struct rlimit saved;
        s_cap_memory(&saved);
        int rc = ordo_wal_open(&o, &wal, &rep);
        s_uncap_memory(&saved);
        CU_ASSERT_EQUAL(rc, ORDO_ERR_CORRUPT);
        snprintf(offtext, sizeof offtext, "at offset %zu ", cut);
        CU_ASSERT_PTR_NOT_NULL(strstr(rep.message, offtext));
        CU_ASSERT_PTR_NOT_NULL(strstr(rep.message, cases[c].why));
        CU_ASSERT_PTR_NOT_NULL(strstr(rep.message, "dropping"));
        if (wal)
            ordo_wal_destroy(&wal);
        /* The same frame as the last thing in the log is a torn tail. */
        CU_ASSERT_EQUAL(s_write_file(path, img, cut + hl), 0);
        s_cap_memory(&saved);
        rc = ordo_wal_open(&o, &wal, &rep);
        s_uncap_memory(&saved);
        CU_ASSERT_EQUAL_FATAL(rc, 0);
        CU_ASSERT_EQUAL(rep.torn_bytes_truncated, hl);
        CU_ASSERT_EQUAL(rep.last_position, pos4 - 1);
        ordo_wal_destroy(&wal);
        free(img);
        ordo_test_rm_rf(dir);
    }

    /* A frame within every bound and with a good checksum, whose body is not
     * what the header says: recovery checks checksums only, the reader
     * decompresses into a bounded buffer and refuses it. */
    {
        char dir[256], path[512];
        CU_ASSERT_PTR_NOT_NULL_FATAL(ordo_test_tmpdir(dir, sizeof dir));
        s_seg_path(dir, 1, path, sizeof path);
        uint8_t *img = malloc(len + 64);
        CU_ASSERT_PTR_NOT_NULL_FATAL(img);
        memcpy(img, orig, cut);
        size_t hl = s_hostile_frame(img + cut, pos4, 1, 16, ORDO_WAL_FRAME_RAW_MAX, 16);
        CU_ASSERT_EQUAL(s_write_file(path, img, cut + hl), 0);
        ordo_wal_options_t o = s_opts(dir, 0, ORDO_SYNC_NEVER);
        ordo_wal_recovery_t rep;
        ordo_wal_t *wal = NULL;
        CU_ASSERT_EQUAL_FATAL(ordo_wal_open(&o, &wal, &rep), 0);
        CU_ASSERT_EQUAL(rep.last_position, pos4);
        ordo_wal_reader_t *r = NULL;
        CU_ASSERT_EQUAL_FATAL(ordo_wal_reader_new(wal, pos4 - 1, &r), 0);
        uint64_t pos;
        const void *data;
        size_t rlen;
        CU_ASSERT_EQUAL(ordo_wal_reader_next(r, &pos, &data, &rlen), 1);
        CU_ASSERT_EQUAL(pos, pos4 - 1);
        struct rlimit saved;
        s_cap_memory(&saved);
        int rc = ordo_wal_reader_next(r, &pos, &data, &rlen);
        s_uncap_memory(&saved);
        CU_ASSERT_EQUAL(rc, ORDO_ERR_CORRUPT);
        ordo_wal_reader_destroy(&r);
        ordo_wal_destroy(&wal);
        free(img);
        ordo_test_rm_rf(dir);
    }
    free(orig);
    ordo_test_rm_rf(lg->dir);
    free(lg);
}

int main(void)
{
    ordo_log_set_sink(s_sink, NULL);
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("wal", NULL, NULL);
    CU_add_test(s, "reader: seek forward, back, in the frame, across segments", test_reader_seek);
    CU_add_test(s, "reader: a frame byte for byte, anywhere", test_reader_frame);
    CU_add_test(s, "round trip", test_round_trip);
    CU_add_test(s, "torn tail at every byte", test_torn_tail);
    CU_add_test(s, "mid-log corruption: refuse, repair", test_corrupt_mid_log);
    CU_add_test(s, "segment roll", test_segment_roll);
    CU_add_test(s, "frames chain across segments and reopens; the walk checks it", test_frame_chain);
    CU_add_test(s, "reader mid-frame and at the tail", test_reader_mid_frame_and_tail);
    CU_add_test(s, "readers on other threads", test_reader_concurrent);
    CU_add_test(s, "sync modes (replicated: held until released)", test_sync_modes);
    CU_add_test(s, "preallocated segments do not grow", test_preallocated_segments);
    CU_add_test(s, "no preallocation support: files grow", test_no_preallocation);
    CU_add_test(s, "failure injection", test_failure_injection);
    CU_add_test(s, "open reads little past the data", test_open_reads_little_past_the_data);
    CU_add_test(s, "every segment names its log", test_log_identity);
    CU_add_test(s, "batch, never: a hole in the unsynced tail is cut", test_hole_in_unsynced_tail);
    CU_add_test(s, "a replica's frames appended byte for byte", test_append_frame);
    CU_add_test(s, "invalid options", test_invalid_options);
    CU_add_test(s, "hostile headers", test_hostile_headers);
    CU_add_test(s, "hostile bodies", test_hostile_bodies);
    return ordo_test_run();
}
