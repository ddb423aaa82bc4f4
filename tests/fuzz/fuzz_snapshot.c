/* libFuzzer target: the snapshot reader, which trusts nothing in a file.
 * The input is written as snapshot-00000000000000000001.osnap in a temp
 * folder made once per process, opened and read to the end: never a
 * crash, leak or leaked descriptor. An accepted snapshot must give exactly
 * its header's record count, within its raw length, and the same records
 * written again must read back the same. Each input is tried as is, again
 * with its header's position, compressed length and CRC fixed (so that
 * mutations get past those checks into zstd), and with the bytes after the
 * header taken as the raw body, compressed here (so that they reach the
 * record walk). */
#include "ordo_crc32c.h"
#include "ordo_error.h"
#include "ordo_io.h"
#include "ordo_log.h"
#include "ordo_snapshot.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NAME "snapshot-00000000000000000001.osnap"
#define HEADER_SIZE 48
/* Round-trip only snapshots whose records fit in this many bytes. */
#define ROUND_TRIP_MAX (4u * 1024 * 1024)

static char s_dir[64];    /* the input file's folder */
static char s_path[128];  /* the input file */
static char s_rt_dir[96]; /* where the round trip writes */
static ordo_io_t s_fast_io;
static uint8_t *s_copy;   /* the accepted records, for the round trip */
static size_t s_copy_cap;

static int s_no_sync(void *ctx, int fd)
{
    (void)ctx;
    (void)fd;
    return 0;
}

static void s_rm_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        char p[512];
        if (snprintf(p, sizeof p, "%s/%s", dir, de->d_name) < (int)sizeof p)
            unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

static void s_cleanup(void)
{
    s_rm_dir(s_rt_dir);
    s_rm_dir(s_dir);
    free(s_copy);
}

static void s_setup(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(s_dir, sizeof s_dir, "%s/ordo-fuzz-snap-XXXXXX", tmp && *tmp && strlen(tmp) < 32 ? tmp : "/tmp");
    if (!mkdtemp(s_dir))
        abort();
    snprintf(s_path, sizeof s_path, "%s/%s", s_dir, NAME);
    snprintf(s_rt_dir, sizeof s_rt_dir, "%s/rt", s_dir);
    atexit(s_cleanup);
    /* Every invalid input logs a WARN line; only errors are worth seeing. */
    ordo_log_set_level(ORDO_LOG_ERROR);
    /* The round trip needs no durability: skip the fsyncs. */
    s_fast_io = *ordo_io_posix();
    s_fast_io.fsync = s_no_sync;
    s_fast_io.fdatasync = s_no_sync;
}

/* The lowest free descriptor: the same before and after an input unless
 * the input leaked one. */
static int s_lowest_free_fd(void)
{
    int fd = open("/dev/null", O_RDONLY);
    if (fd < 0)
        abort();
    close(fd);
    return fd;
}

static void s_write_file(const uint8_t *data, size_t size)
{
    int fd = open(s_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || (size && write(fd, data, size) != (ssize_t)size) || close(fd) != 0)
        abort();
}

static uint64_t s_get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static size_t s_varint_size(size_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

/* Writes the `count` records held back to back in s_copy (lengths in
 * `lens`) as a new snapshot and checks they read back the same. */
static void s_round_trip(const size_t *lens, uint64_t count)
{
    ordo_snapshot_writer_t *w;
    if (ordo_snapshot_writer_new(s_rt_dir, 1, &s_fast_io, &w) != 0)
        abort();
    size_t off = 0;
    for (uint64_t i = 0; i < count; i++) {
        if (ordo_snapshot_writer_add(w, s_copy + off, lens[i]) != 0)
            abort();
        off += lens[i];
    }
    if (ordo_snapshot_writer_commit(&w) != 0 || w)
        abort();
    char path[160];
    snprintf(path, sizeof path, "%s/%s", s_rt_dir, NAME);
    ordo_snapshot_t *s;
    if (ordo_snapshot_open(path, NULL, &s) != 0)
        abort();
    if (ordo_snapshot_position(s) != 1 || ordo_snapshot_record_count(s) != count)
        abort();
    off = 0;
    for (uint64_t i = 0; i < count; i++) {
        const void *rec;
        size_t len;
        if (ordo_snapshot_next(s, &rec, &len) != 1 || len != lens[i] ||
            (len && memcmp(rec, s_copy + off, len) != 0))
            abort();
        off += len;
    }
    const void *rec;
    size_t len;
    if (ordo_snapshot_next(s, &rec, &len) != 0)
        abort();
    ordo_snapshot_destroy(&s);
}

/* Opens the file now holding `data` and reads every record. */
static void s_try(const uint8_t *data, size_t size)
{
    s_write_file(data, size);
    ordo_snapshot_t *s = NULL;
    int rc = ordo_snapshot_open(s_path, NULL, &s);
    if (rc != 0) {
        if (s || (rc != ORDO_ERR_CORRUPT && rc != ORDO_ERR_NOMEM))
            abort();
        return;
    }
    /* Accepted: the header was whole and says what we read. */
    if (!s || size < HEADER_SIZE || ordo_snapshot_position(s) != 1)
        abort();
    uint64_t count = s_get64(data + 16), raw_len = s_get64(data + 24);
    if (ordo_snapshot_record_count(s) != count || strcmp(ordo_snapshot_path(s), s_path) != 0)
        abort();
    /* Lengths and bytes of the records are kept for the round trip while
     * they fit; a bomb of a billion empty records is only counted. */
    size_t *lens = NULL, lens_cap = 0;
    uint64_t n = 0, min_raw = 0, copied = 0;
    int keep = 1;
    const void *rec;
    size_t len;
    while ((rc = ordo_snapshot_next(s, &rec, &len)) == 1) {
        if (n == count || len > ORDO_SNAPSHOT_RECORD_MAX)
            abort();
        n++;
        min_raw += s_varint_size(len) + len;
        if (min_raw > raw_len)
            abort();
        keep = keep && n <= ROUND_TRIP_MAX / 8 && copied + len <= ROUND_TRIP_MAX;
        if (!keep)
            continue;
        if (n > lens_cap) {
            lens_cap = lens_cap ? lens_cap * 2 : 64;
            size_t *grown = realloc(lens, lens_cap * sizeof *grown);
            if (!grown)
                abort();
            lens = grown;
        }
        lens[n - 1] = len;
        if (copied + len > s_copy_cap) {
            size_t cap = s_copy_cap ? s_copy_cap : 4096;
            while (cap < copied + len)
                cap *= 2;
            uint8_t *grown = realloc(s_copy, cap);
            if (!grown)
                abort();
            s_copy = grown;
            s_copy_cap = cap;
        }
        if (len)
            memcpy(s_copy + copied, rec, len);
        copied += len;
    }
    /* The open pass verified everything: reading cannot fail now (the
     * file does not change under us). */
    if (rc != 0 || n != count)
        abort();
    /* The end sticks. */
    if (ordo_snapshot_next(s, &rec, &len) != 0)
        abort();
    ordo_snapshot_destroy(&s);
    if (s)
        abort();
    if (keep)
        s_round_trip(lens, count);
    free(lens);
}

/* Sets position 1 (as the name says), the compressed length to what
 * follows the header, and a matching CRC, in place. */
static void s_fix_header(uint8_t *file, size_t size)
{
    uint64_t clen = size - HEADER_SIZE;
    for (int i = 0; i < 8; i++) {
        file[8 + i] = (uint8_t)(i == 0);
        file[32 + i] = (uint8_t)(clen >> (8 * i));
        if (i < 4)
            file[40 + i] = 0;
    }
    uint32_t crc = ordo_crc32c(0, file, size);
    for (int i = 0; i < 4; i++)
        file[40 + i] = (uint8_t)(crc >> (8 * i));
}

/* The bytes after the header taken as the raw body instead: compressed
 * here into one zstd frame, raw length set to match, so the record walk
 * sees arbitrary varints and lengths that zstd mutations rarely reach. */
static void s_try_raw(const uint8_t *data, size_t size)
{
    size_t rlen = size - HEADER_SIZE, bound = ZSTD_compressBound(rlen);
    uint8_t *file = malloc(HEADER_SIZE + bound);
    if (!file)
        abort();
    static ZSTD_CCtx *cctx;
    if (!cctx && !(cctx = ZSTD_createCCtx()))
        abort();
    size_t clen = ZSTD_compressCCtx(cctx, file + HEADER_SIZE, bound, data + HEADER_SIZE, rlen, 1);
    if (ZSTD_isError(clen))
        abort();
    memcpy(file, data, HEADER_SIZE);
    for (int i = 0; i < 8; i++)
        file[24 + i] = (uint8_t)((uint64_t)rlen >> (8 * i));
    s_fix_header(file, HEADER_SIZE + clen);
    s_try(file, HEADER_SIZE + clen);
    free(file);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!s_dir[0])
        s_setup();
    int free_fd = s_lowest_free_fd();
    s_try(data, size);
    if (size >= HEADER_SIZE) {
        uint8_t *fixed = malloc(size);
        if (!fixed)
            abort();
        memcpy(fixed, data, size);
        s_fix_header(fixed, size);
        if (memcmp(fixed, data, size) != 0)
            s_try(fixed, size);
        free(fixed);
        s_try_raw(data, size);
    }
    if (s_lowest_free_fd() != free_fd)
        abort(); /* a descriptor was left open */
    return 0;
}
