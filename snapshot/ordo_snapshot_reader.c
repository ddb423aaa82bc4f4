/* Snapshot reader, finder and pruner. Nothing in a file is trusted: open
 * checks the header and size, checks the CRC in a streaming pass, then
 * walks every record once (the same code ordo_snapshot_next runs) before
 * handing the snapshot out; next re-checks structure and CRC as it streams.
 * Buffers are fixed-size, except the one assembling a record that spans
 * decompressed chunks, which grows only with bytes actually decoded, up to
 * the record limit. Format: see ordo_snapshot_writer.c. */
#include "ordo_snapshot.h"

#include "ordo_crc32c.h"
#include "ordo_error.h"
#include "ordo_log.h"
#include "ordo_snapshot_format.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#define READ_CHUNK (64 * 1024)

struct ordo_snapshot {
    const ordo_io_t *io; /* borrowed from the caller */
    char *path;          /* owned */
    int fd;              /* owned */
    uint64_t position;   /* header fields, checked against the file size */
    uint64_t count;
    uint64_t raw_len;
    uint64_t comp_len;
    uint32_t stored_crc; /* CRC field of the header */
    uint32_t header_crc; /* CRC32C of the header with the CRC field zeroed */
    uint32_t stream_crc; /* header_crc extended with the body bytes read so far */
    ZSTD_DCtx *dctx;     /* owned; window capped at 2^SNAP_WINDOW_LOG */
    uint8_t *zin;        /* owned; READ_CHUNK bytes of compressed input */
    ZSTD_inBuffer in;    /* view of zin */
    uint64_t file_off;   /* next compressed byte to read */
    uint8_t *raw;        /* owned; decompressed window, raw_cap bytes */
    size_t raw_cap;
    size_t raw_end;      /* valid bytes in raw */
    size_t raw_pos;      /* parse cursor in raw */
    uint8_t *rec;        /* owned; assembles records that span windows */
    size_t rec_cap;
    uint64_t records_read;
    uint64_t raw_read;   /* raw bytes consumed by records so far */
    int frame_done;      /* zstd reported the end of the frame */
    int done;            /* end verified */
    int err;             /* first error; sticks */
    char why[200];       /* what was wrong, for the log */
};

typedef struct {
    uint64_t position;
    int is_tmp;
} s_entry_t;

/* Marks the snapshot corrupt and records why. Returns ORDO_ERR_CORRUPT. */
__attribute__((format(printf, 2, 3))) static int s_corrupt(ordo_snapshot_t *s, const char *fmt,
                                                           ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->why, sizeof s->why, fmt, ap);
    va_end(ap);
    s->err = ORDO_ERR_CORRUPT;
    return s->err;
}

static int s_io_error(ordo_snapshot_t *s, const char *what)
{
    int e = errno;
    snprintf(s->why, sizeof s->why, "%s: %s", what, strerror(e));
    s->err = ordo_err_from_errno(e);
    return s->err;
}

/* Parses "snapshot-<20 digits>.osnap[.tmp]". 1 if it is one, else 0. */
static int s_parse_name(const char *name, uint64_t *position, int *is_tmp)
{
    size_t plen = strlen(SNAP_PREFIX);
    if (strncmp(name, SNAP_PREFIX, plen) != 0)
        return 0;
    const char *d = name + plen;
    uint64_t v = 0;
    for (int i = 0; i < SNAP_DIGITS; i++) {
        if (d[i] < '0' || d[i] > '9')
            return 0;
        unsigned digit = (unsigned)(d[i] - '0');
        if (v > (UINT64_MAX - digit) / 10)
            return 0;
        v = v * 10 + digit;
    }
    const char *rest = d + SNAP_DIGITS;
    if (strcmp(rest, SNAP_SUFFIX) == 0)
        *is_tmp = 0;
    else if (strcmp(rest, SNAP_TMP_SUFFIX) == 0)
        *is_tmp = 1;
    else
        return 0;
    *position = v;
    return 1;
}

static int s_entry_newest_first(const void *a, const void *b)
{
    const s_entry_t *x = a, *y = b;
    if (x->position != y->position)
        return x->position < y->position ? 1 : -1;
    return x->is_tmp - y->is_tmp;
}

/* Lists snapshot and temp files in `dir`, newest first. *out is owned by
 * the caller. A missing folder is an empty list. */
static int s_list(const char *dir, s_entry_t **out, size_t *count)
{
    *out = NULL;
    *count = 0;
    DIR *d = opendir(dir);
    if (!d) {
        if (errno == ENOENT)
            return 0;
        ordo_log_error("snapshot", "cannot list %s: %s", dir, strerror(errno));
        return ORDO_ERR_IO;
    }
    int rc = 0;
    s_entry_t *list = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    errno = 0;
    while ((de = readdir(d)) != NULL) {
        s_entry_t e;
        if (!s_parse_name(de->d_name, &e.position, &e.is_tmp))
            continue;
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            s_entry_t *grown = realloc(list, ncap * sizeof *grown);
            if (!grown) {
                rc = ORDO_ERR_NOMEM;
                goto out;
            }
            list = grown;
            cap = ncap;
        }
        list[n++] = e;
        errno = 0;
    }
    if (errno != 0) {
        ordo_log_error("snapshot", "cannot list %s: %s", dir, strerror(errno));
        rc = ORDO_ERR_IO;
        goto out;
    }
    if (n > 1)
        qsort(list, n, sizeof *list, s_entry_newest_first);
out:
    closedir(d);
    if (rc != 0) {
        free(list);
        return rc;
    }
    *out = list;
    *count = n;
    return 0;
}

/* Decompresses the next window into s->raw. 1 = bytes available, 0 = no
 * more raw data (the frame may still be incomplete), <0 = error. */
static int s_fill(ordo_snapshot_t *s)
{
    s->raw_pos = s->raw_end = 0;
    for (;;) {
        uint64_t left = SNAP_HEADER_SIZE + s->comp_len - s->file_off;
        if (s->in.pos == s->in.size) {
            if (left > 0) {
                size_t n = left < READ_CHUNK ? (size_t)left : READ_CHUNK;
                if (ordo_io_pread_all(s->io, s->fd, s->zin, n, (off_t)s->file_off) != 0)
                    return s_io_error(s, "read");
                s->stream_crc = ordo_crc32c(s->stream_crc, s->zin, n);
                s->file_off += n;
                s->in.size = n;
                s->in.pos = 0;
                left -= n;
            } else if (s->frame_done) {
                return 0;
            }
            /* else: no input left, but zstd may still hold output. */
        }
        if (s->frame_done)
            return s_corrupt(s, "data after the end of the zstd frame");
        ZSTD_outBuffer out = {s->raw, s->raw_cap, 0};
        size_t r = ZSTD_decompressStream(s->dctx, &out, &s->in);
        if (ZSTD_isError(r))
            return s_corrupt(s, "zstd: %s", ZSTD_getErrorName(r));
        if (r == 0)
            s->frame_done = 1;
        if (out.pos > 0) {
            s->raw_end = out.pos;
            return 1;
        }
        if (s->in.pos == s->in.size && left == 0)
            return 0; /* nothing more can come out */
    }
}

/* Reads one raw byte. 1 = got it, 0 = end of raw data, <0 = error. */
static int s_byte(ordo_snapshot_t *s, uint8_t *b)
{
    if (s->raw_pos == s->raw_end) {
        int rc = s_fill(s);
        if (rc <= 0)
            return rc;
    }
    *b = s->raw[s->raw_pos++];
    return 1;
}

/* Grows the record buffer to hold `need` bytes (need <= RECORD_MAX). */
static int s_reserve(ordo_snapshot_t *s, size_t need)
{
    if (need <= s->rec_cap)
        return 0;
    size_t cap = s->rec_cap ? s->rec_cap : 4096;
    while (cap < need)
        cap *= 2;
    if (cap > ORDO_SNAPSHOT_RECORD_MAX)
        cap = ORDO_SNAPSHOT_RECORD_MAX;
    uint8_t *grown = realloc(s->rec, cap);
    if (!grown) {
        snprintf(s->why, sizeof s->why, "out of memory");
        return s->err = ORDO_ERR_NOMEM;
    }
    s->rec = grown;
    s->rec_cap = cap;
    return 0;
}

/* Checks that nothing follows the last record and the frame is complete. */
static int s_finish(ordo_snapshot_t *s)
{
    if (s->raw_read != s->raw_len)
        return s_corrupt(s, "records hold %llu bytes, header says %llu",
                         (unsigned long long)s->raw_read, (unsigned long long)s->raw_len);
    int rc = s->raw_pos < s->raw_end ? 1 : s_fill(s);
    if (rc < 0)
        return rc;
    if (rc > 0)
        return s_corrupt(s, "data after the last of %llu records",
                         (unsigned long long)s->count);
    if (!s->frame_done)
        return s_corrupt(s, "zstd frame is incomplete");
    /* The open-time CRC pass read the file once; this read may differ. */
    if (s->stream_crc != s->stored_crc)
        return s_corrupt(s, "checksum mismatch while streaming (file changed since open?)");
    s->done = 1;
    return 0;
}

/* ordo_snapshot_next without logging. */
static int s_next(ordo_snapshot_t *s, const void **record, size_t *len)
{
    if (s->err)
        return s->err;
    if (s->done)
        return 0;
    if (s->records_read == s->count)
        return s_finish(s);

    uint64_t v = 0;
    size_t nbytes = 0;
    for (;;) {
        uint8_t b;
        int rc = s_byte(s, &b);
        if (rc < 0)
            return rc;
        if (rc == 0)
            return s_corrupt(s, "data ends inside record %llu of %llu",
                             (unsigned long long)s->records_read + 1,
                             (unsigned long long)s->count);
        v |= (uint64_t)(b & 0x7F) << (7 * nbytes);
        nbytes++;
        if (!(b & 0x80))
            break;
        if (nbytes == SNAP_VARINT_MAX)
            return s_corrupt(s, "record %llu: length varint longer than %d bytes",
                             (unsigned long long)s->records_read + 1, SNAP_VARINT_MAX);
    }
    if (v > ORDO_SNAPSHOT_RECORD_MAX)
        return s_corrupt(s, "record %llu: length %llu above the %u-byte limit",
                         (unsigned long long)s->records_read + 1, (unsigned long long)v,
                         ORDO_SNAPSHOT_RECORD_MAX);
    if (nbytes + v > s->raw_len - s->raw_read)
        return s_corrupt(s, "record %llu: length %llu goes past the %llu raw bytes in the header",
                         (unsigned long long)s->records_read + 1, (unsigned long long)v,
                         (unsigned long long)s->raw_len);
    size_t n = (size_t)v;

    if (s->raw_end - s->raw_pos >= n) {
        *record = s->raw + s->raw_pos; /* zero-copy: whole record in the window */
        s->raw_pos += n;
    } else {
        size_t got = 0;
        while (got < n) {
            if (s->raw_pos == s->raw_end) {
                int rc = s_fill(s);
                if (rc < 0)
                    return rc;
                if (rc == 0)
                    return s_corrupt(s, "data ends inside record %llu of %llu",
                                     (unsigned long long)s->records_read + 1,
                                     (unsigned long long)s->count);
            }
            size_t take = s->raw_end - s->raw_pos;
            if (take > n - got)
                take = n - got;
            int rc = s_reserve(s, got + take);
            if (rc != 0)
                return rc;
            memcpy(s->rec + got, s->raw + s->raw_pos, take);
            s->raw_pos += take;
            got += take;
        }
        *record = s->rec;
    }
    *len = n;
    s->raw_read += nbytes + n;
    s->records_read++;
    return 1;
}

/* Positions the stream at the first record. */
static int s_rewind(ordo_snapshot_t *s)
{
    if (ZSTD_isError(ZSTD_DCtx_reset(s->dctx, ZSTD_reset_session_only)))
        return s_corrupt(s, "zstd reset failed");
    s->in.src = s->zin;
    s->in.size = s->in.pos = 0;
    s->file_off = SNAP_HEADER_SIZE;
    s->stream_crc = s->header_crc;
    s->raw_end = s->raw_pos = 0;
    s->records_read = s->raw_read = 0;
    s->frame_done = s->done = 0;
    return 0;
}

/* Checks the header against the file size and `expect_position` (unless
 * it is NULL), then the CRC over the whole file. */
static int s_check_file(ordo_snapshot_t *s, const uint64_t *expect_position)
{
    off_t size = s->io->size(s->io->ctx, s->fd);
    if (size < 0)
        return s_io_error(s, "size");
    if (size < SNAP_HEADER_SIZE)
        return s_corrupt(s, "file is %lld bytes, shorter than the %d-byte header",
                         (long long)size, SNAP_HEADER_SIZE);
    uint8_t h[SNAP_HEADER_SIZE];
    if (ordo_io_pread_all(s->io, s->fd, h, sizeof h, 0) != 0)
        return s_io_error(s, "read header");
    if (memcmp(h, SNAP_MAGIC, 4) != 0)
        return s_corrupt(s, "bad magic");
    if (snap_get16(h + SNAP_OFF_VERSION) != SNAP_VERSION)
        return s_corrupt(s, "unsupported format version %u", snap_get16(h + SNAP_OFF_VERSION));
    if (snap_get16(h + SNAP_OFF_FLAGS) != 0)
        return s_corrupt(s, "unknown flags 0x%x", snap_get16(h + SNAP_OFF_FLAGS));
    if (snap_get32(h + SNAP_OFF_RESERVED) != 0)
        return s_corrupt(s, "reserved field is not zero");
    s->position = snap_get64(h + SNAP_OFF_POSITION);
    s->count = snap_get64(h + SNAP_OFF_COUNT);
    s->raw_len = snap_get64(h + SNAP_OFF_RAW_LEN);
    s->comp_len = snap_get64(h + SNAP_OFF_COMP_LEN);
    s->stored_crc = snap_get32(h + SNAP_OFF_CRC);
    if (expect_position && s->position != *expect_position)
        return s_corrupt(s, "header position %llu does not match the name",
                         (unsigned long long)s->position);
    if (s->comp_len != (uint64_t)size - SNAP_HEADER_SIZE)
        return s_corrupt(s, "file is %lld bytes, header says %d + %llu", (long long)size,
                         SNAP_HEADER_SIZE, (unsigned long long)s->comp_len);
    if (s->count > s->raw_len)
        return s_corrupt(s, "%llu records cannot fit in %llu raw bytes",
                         (unsigned long long)s->count, (unsigned long long)s->raw_len);

    snap_put32(h + SNAP_OFF_CRC, 0);
    s->header_crc = ordo_crc32c(0, h, sizeof h);
    uint32_t crc = s->header_crc;
    for (uint64_t off = SNAP_HEADER_SIZE; off < (uint64_t)size;) {
        uint64_t left = (uint64_t)size - off;
        size_t n = left < READ_CHUNK ? (size_t)left : READ_CHUNK;
        if (ordo_io_pread_all(s->io, s->fd, s->zin, n, (off_t)off) != 0)
            return s_io_error(s, "read");
        crc = ordo_crc32c(crc, s->zin, n);
        off += n;
    }
    if (crc != s->stored_crc)
        return s_corrupt(s, "checksum mismatch (stored 0x%08x, computed 0x%08x)", s->stored_crc,
                         crc);
    return 0;
}

/* Opens `path` and verifies all of it; on failure *why says what was wrong.
 * `expect_position` NULL skips the name check. */
static int s_open(const char *path, const uint64_t *expect_position, const ordo_io_t *io,
                  ordo_snapshot_t **out, char *why, size_t why_size)
{
    *out = NULL;
    why[0] = '\0';
    int rc = 0;
    ordo_snapshot_t *s = calloc(1, sizeof *s);
    if (!s)
        return ORDO_ERR_NOMEM;
    s->io = io;
    s->fd = -1;
    s->raw_cap = ZSTD_DStreamOutSize();
    s->path = strdup(path);
    s->zin = malloc(READ_CHUNK);
    s->raw = malloc(s->raw_cap);
    s->dctx = ZSTD_createDCtx();
    if (!s->path || !s->zin || !s->raw || !s->dctx) {
        snprintf(why, why_size, "out of memory");
        rc = ORDO_ERR_NOMEM;
        goto out;
    }
    if (ZSTD_isError(ZSTD_DCtx_setParameter(s->dctx, ZSTD_d_windowLogMax, SNAP_WINDOW_LOG))) {
        snprintf(why, why_size, "cannot cap the zstd window");
        rc = ORDO_ERR_INVALID;
        goto out;
    }
    s->fd = io->open(io->ctx, path, O_RDONLY, 0);
    if (s->fd < 0) {
        int gone = errno == ENOENT;
        rc = s_io_error(s, "open");
        if (gone)
            rc = ORDO_ERR_NOT_FOUND;
        goto out;
    }
    if ((rc = s_check_file(s, expect_position)) != 0)
        goto out;
    /* Structure pass: every record, exactly as next will see them. */
    if ((rc = s_rewind(s)) != 0)
        goto out;
    const void *rec;
    size_t len;
    while ((rc = s_next(s, &rec, &len)) == 1)
        ;
    if (rc != 0)
        goto out;
    rc = s_rewind(s);
out:
    if (rc != 0) {
        if (s->why[0])
            snprintf(why, why_size, "%s", s->why);
        ordo_snapshot_destroy(&s);
    }
    *out = s;
    return rc;
}

int ordo_snapshot_open(const char *path, const ordo_io_t *io, ordo_snapshot_t **out)
{
    if (out)
        *out = NULL;
    if (!path || !out)
        return ORDO_ERR_INVALID;
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    uint64_t named;
    int is_tmp;
    int has_name = s_parse_name(base, &named, &is_tmp);
    char why[200];
    int rc = s_open(path, has_name ? &named : NULL, io ? io : ordo_io_posix(), out, why,
                    sizeof why);
    if (rc == ORDO_ERR_CORRUPT)
        ordo_log_warn("snapshot", "invalid snapshot %s: %s", path, why);
    return rc;
}

int ordo_snapshot_open_newest_before(const char *dir, uint64_t max_position,
                                     const ordo_io_t *io, ordo_snapshot_t **out)
{
    if (out)
        *out = NULL;
    if (!dir || !out)
        return ORDO_ERR_INVALID;
    io = io ? io : ordo_io_posix();
    s_entry_t *list;
    size_t n;
    int rc = s_list(dir, &list, &n);
    if (rc != 0)
        return rc;
    rc = ORDO_ERR_NOT_FOUND;
    for (size_t i = 0; i < n; i++) {
        if (list[i].is_tmp || list[i].position > max_position)
            continue;
        char *path = ordo_snapshot_join(dir, list[i].position, 0);
        if (!path) {
            rc = ORDO_ERR_NOMEM;
            break;
        }
        char why[200];
        int r = s_open(path, &list[i].position, io, out, why, sizeof why);
        if (r == 0 || r == ORDO_ERR_NOMEM) {
            free(path);
            rc = r;
            break;
        }
        /* Corrupt, unreadable or gone since the listing: try an older one. */
        ordo_log_warn("snapshot", "skipping snapshot %s: %s", path, why);
        free(path);
    }
    free(list);
    return rc;
}

int ordo_snapshot_open_newest(const char *dir, const ordo_io_t *io, ordo_snapshot_t **out)
{
    return ordo_snapshot_open_newest_before(dir, UINT64_MAX, io, out);
}

uint64_t ordo_snapshot_position(const ordo_snapshot_t *s)
{
    return s->position;
}

uint64_t ordo_snapshot_record_count(const ordo_snapshot_t *s)
{
    return s->count;
}

const char *ordo_snapshot_path(const ordo_snapshot_t *s)
{
    return s->path;
}

int ordo_snapshot_next(ordo_snapshot_t *s, const void **record, size_t *len)
{
    if (!s || !record || !len)
        return ORDO_ERR_INVALID;
    int had_err = s->err;
    int rc = s_next(s, record, len);
    if (rc < 0 && !had_err)
        ordo_log_warn("snapshot", "reading %s: %s", s->path, s->why);
    return rc;
}

void ordo_snapshot_destroy(ordo_snapshot_t **sp)
{
    if (!sp || !*sp)
        return;
    ordo_snapshot_t *s = *sp;
    *sp = NULL;
    if (s->fd >= 0)
        s->io->close(s->io->ctx, s->fd);
    ZSTD_freeDCtx(s->dctx);
    free(s->zin);
    free(s->raw);
    free(s->rec);
    free(s->path);
    free(s);
}

int ordo_snapshot_prune(const char *dir, unsigned keep, const ordo_io_t *io)
{
    if (!dir)
        return ORDO_ERR_INVALID;
    io = io ? io : ordo_io_posix();
    s_entry_t *list;
    size_t n;
    int rc = s_list(dir, &list, &n);
    if (rc != 0)
        return rc;
    /* First decide, deleting nothing: an I/O error must not make a good
     * snapshot look invalid and get it removed. */
    char **doomed = calloc(n ? n : 1, sizeof *doomed);
    size_t ndoomed = 0;
    unsigned kept = 0;
    int removed = 0;
    if (!doomed) {
        rc = ORDO_ERR_NOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        char *path = ordo_snapshot_join(dir, list[i].position, list[i].is_tmp);
        if (!path) {
            rc = ORDO_ERR_NOMEM;
            goto out;
        }
        if (!list[i].is_tmp && kept < keep) {
            ordo_snapshot_t *s;
            char why[200];
            int r = s_open(path, &list[i].position, io, &s, why, sizeof why);
            ordo_snapshot_destroy(&s);
            if (r == 0) {
                kept++;
                free(path);
                continue;
            }
            if (r == ORDO_ERR_NOT_FOUND) { /* removed since the listing */
                free(path);
                continue;
            }
            if (r != ORDO_ERR_CORRUPT) {
                ordo_log_error("snapshot", "prune stopped: %s: %s", path, why);
                free(path);
                rc = r;
                goto out;
            }
            ordo_log_warn("snapshot", "pruning invalid snapshot %s: %s", path, why);
        }
        doomed[ndoomed++] = path;
    }
    for (size_t i = 0; i < ndoomed; i++) {
        if (io->unlink(io->ctx, doomed[i]) == 0) {
            removed++;
        } else if (errno != ENOENT) {
            ordo_log_error("snapshot", "cannot remove %s: %s", doomed[i], strerror(errno));
            rc = ordo_err_from_errno(errno);
        }
    }
    if (removed > 0 && ordo_io_fsync_dir(io, dir) != 0) {
        ordo_log_error("snapshot", "fsync folder %s: %s", dir, strerror(errno));
        if (rc == 0)
            rc = ordo_err_from_errno(errno);
    }
    if (rc == 0)
        rc = removed;
out:
    for (size_t i = 0; doomed && i < ndoomed; i++)
        free(doomed[i]);
    free(doomed);
    free(list);
    return rc;
}

int ordo_snapshot_discard_after(const char *dir, uint64_t position, const ordo_io_t *io)
{
    if (!dir)
        return ORDO_ERR_INVALID;
    io = io ? io : ordo_io_posix();
    s_entry_t *list;
    size_t n;
    int rc = s_list(dir, &list, &n); /* a missing folder lists as empty */
    if (rc != 0)
        return rc;
    int removed = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (list[i].is_tmp || list[i].position <= position)
            continue;
        char *path = ordo_snapshot_join(dir, list[i].position, 0);
        if (!path) {
            rc = ORDO_ERR_NOMEM;
            break;
        }
        ordo_log_warn("snapshot",
                      "discarding %s: it covers position %llu but the log ends at %llu",
                      path, (unsigned long long)list[i].position, (unsigned long long)position);
        if (io->unlink(io->ctx, path) == 0)
            removed++;
        else if (errno != ENOENT)
            rc = ordo_err_from_errno(errno);
        free(path);
    }
    if (removed > 0 && ordo_io_fsync_dir(io, dir) != 0 && rc == 0)
        rc = ordo_err_from_errno(errno);
    free(list);
    return rc == 0 ? removed : rc;
}
