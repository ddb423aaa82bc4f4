/* The log writer: open + recovery, append (one frame per call), sync policy,
 * segment rolling, sticky failure. Invariants: frames are written whole at
 * the data end of the last segment and only then counted in the index; a
 * segment is fdatasync'ed before the next is created, so only the last
 * segment can end in a torn frame; once a write or sync has failed nothing
 * is written again (the first error sticks). The last segment's file is
 * kept preallocated a few MiB ahead of its data (S_GROW_AHEAD), so the
 * data end is where the frames end (s_seg_t.end), never the file size, and
 * opening a log reads no more than that much of zeros after its data.
 * Format: ordo_wal_format.c. */
#include "ordo_wal.h"

#include "ordo_clock.h"
#include "ordo_error.h"
#include "ordo_log.h"
#include "ordo_uuid.h"
#include "ordo_wal_format.h"
#include "ordo_wal_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define S_SCAN_CHUNK (1u << 20)
#define S_GROW_AHEAD (4u << 20) /* the last segment's file reaches this far past its data */
#define S_END 1                 /* s_check_frame: end-of-data marker (zeros) */

typedef struct {
    uint64_t off;   /* byte offset of a frame in its segment */
    uint64_t first; /* that frame's first position */
} s_mark_t;

typedef struct {
    uint64_t first;  /* the segment's name: its first position */
    uint64_t end;    /* data end: bytes of complete frames, where the next
                      * frame goes; the file is usually longer (zeros) */
    uint64_t last;   /* last position stored in it; first - 1 when empty */
    uint64_t start;  /* where its frames start: after the identity frame, or 0 */
    s_mark_t *marks; /* owned: sparse index, a frame about every 64 KiB */
    size_t nmarks, capmarks;
} s_seg_t;

struct ordo_wal {
    char *dir;           /* owned */
    const ordo_io_t *io; /* borrowed from the options */
    uint64_t segment_bytes;
    ordo_sync_mode_t sync_mode;
    uint64_t sync_interval_ns;
    int zstd_level;

    pthread_mutex_t lock; /* guards segs/nsegs and every segment's fields */
    s_seg_t *segs;        /* owned; the last one is being appended to */
    size_t nsegs, capsegs;

    /* Writer thread only. */
    int fd;                    /* last segment, read-write; -1 when none */
    uint64_t allocated;        /* its file's size: preallocated up to here */
    uint64_t written;          /* last position handed to the OS */
    uint64_t last_sync_ns;     /* monotonic time of the last fdatasync */
    ZSTD_CCtx *cctx;           /* owned, reused for every frame */
    ZSTD_DCtx *dctx;           /* owned, made by the first ordo_wal_append_frame */
    ordo_wal_buf_t raw, frame; /* owned scratch buffers */
    size_t frame_len;          /* of the last frame appended, in `frame` */
    uint32_t last_crc;         /* CRC32C of the last data frame: the next one chains to it */
    ordo_wal_observer_t observer; /* metrics: told of each fdatasync and frame */

    /* Any thread. */
    _Atomic uint64_t head;   /* last position visible to readers */
    _Atomic uint64_t synced; /* last position fdatasync'ed */
    _Atomic int err;         /* first error, 0 if none */
    _Atomic uint64_t n_frames, n_fsyncs, n_bytes;
    uint8_t log_id[ORDO_WAL_LOG_ID_SIZE]; /* this log's identity, in every new segment */
    bool has_log_id;                      /* found in a segment, or made */
};

/* Recovery's view of one segment file: a cached window of its bytes. */
typedef struct {
    const ordo_io_t *io; /* borrowed */
    int fd;              /* borrowed */
    uint64_t size;
    ordo_wal_buf_t win; /* borrowed from the caller, reused across files */
    uint64_t win_off;
    size_t win_len;
    const char *name; /* borrowed, for messages */
} s_scan_t;

/* The outcome of scanning one segment. */
typedef struct {
    uint64_t end;                     /* end of the good frames: where a problem starts */
    uint64_t dirty;                   /* just past the last non-zero byte at or after `end`;
                                       * == end when only zeros (or nothing) follow */
    uint64_t next;                    /* position expected after the good frames */
    uint64_t frames;                  /* good frames */
    bool bad;                         /* something other than a clean end follows `end` */
    bool tornable;                    /* the problem could be a torn write */
    bool later;                       /* a valid frame follows the problem in this segment */
    uint64_t max_last;                /* highest last position of such later frames */
    bool hole;                        /* the problem is a zeroed frame header with frames
                                       * after it: a dropped write, as a power cut leaves */
    bool has_id;                      /* it starts with an identity frame ... */
    uint8_t id[ORDO_WAL_LOG_ID_SIZE]; /* ... naming this log */
    uint32_t last_crc;                /* the CRC32C of its last good frame (when frames) */
    char why[128];
} s_result_t;

static const char *s_errstr(int errnum, char *buf, size_t size)
{
    return strerror_r(errnum, buf, size);
}

void ordo_wal_segment_path(const ordo_wal_t *wal, uint64_t first, char *buf, size_t size)
{
    snprintf(buf, size, "%s/%020llu.wal", wal->dir, (unsigned long long)first);
}

static void s_segment_name(uint64_t first, char *buf, size_t size)
{
    snprintf(buf, size, "%020llu.wal", (unsigned long long)first);
}

/* Puts the log into the failed state (first error sticks) and logs why. */
static int s_fail(ordo_wal_t *wal, int errnum, const char *what, uint64_t seg_first, uint64_t off)
{
    int code = ordo_err_from_errno(errnum);
    int expected = 0;
    atomic_compare_exchange_strong(&wal->err, &expected, code);
    char path[PATH_MAX], ebuf[128];
    ordo_wal_segment_path(wal, seg_first, path, sizeof path);
    ordo_log_error("wal", "%s %s at offset %llu failed: %s; the log refuses further appends", what,
                   path, (unsigned long long)off, s_errstr(errnum, ebuf, sizeof ebuf));
    return code;
}

/* Adds an index entry for the frame at `off` if the last one is 64 KiB
 * back. Entries are hints: without them readers scan from offset 0. */
static void s_mark(s_seg_t *seg, uint64_t off, uint64_t first)
{
    if (seg->nmarks > 0 && off - seg->marks[seg->nmarks - 1].off < ORDO_WAL_INDEX_EVERY)
        return;
    if (seg->nmarks == seg->capmarks) {
        size_t cap = seg->capmarks ? seg->capmarks * 2 : 16;
        s_mark_t *m = realloc(seg->marks, cap * sizeof *m);
        if (!m)
            return;
        seg->marks = m;
        seg->capmarks = cap;
    }
    seg->marks[seg->nmarks++] = (s_mark_t){.off = off, .first = first};
}

/* Makes room for one more segment entry. 0 or ORDO_ERR_NOMEM. */
static int s_segs_reserve(ordo_wal_t *wal)
{
    if (wal->nsegs < wal->capsegs)
        return 0;
    size_t cap = wal->capsegs ? wal->capsegs * 2 : 16;
    s_seg_t *s = realloc(wal->segs, cap * sizeof *s);
    if (!s)
        return ORDO_ERR_NOMEM;
    wal->segs = s;
    wal->capsegs = cap;
    return 0;
}

static void s_segs_push(ordo_wal_t *wal, uint64_t first)
{
    wal->segs[wal->nsegs++] = (s_seg_t){.first = first, .last = first - 1};
}

uint64_t ordo_wal_first_position(ordo_wal_t *wal)
{
    pthread_mutex_lock(&wal->lock);
    uint64_t first = wal->nsegs ? wal->segs[0].first : 1;
    pthread_mutex_unlock(&wal->lock);
    return first;
}

int ordo_wal_locate(ordo_wal_t *wal, uint64_t pos, uint64_t *seg_first, uint64_t *off,
                    uint64_t *off_first)
{
    pthread_mutex_lock(&wal->lock);
    if (wal->nsegs == 0 || pos < wal->segs[0].first) {
        pthread_mutex_unlock(&wal->lock);
        return ORDO_ERR_NOT_FOUND;
    }
    size_t lo = 0, hi = wal->nsegs - 1; /* last segment with first <= pos */
    while (lo < hi) {
        size_t mid = lo + (hi - lo + 1) / 2;
        if (wal->segs[mid].first <= pos)
            lo = mid;
        else
            hi = mid - 1;
    }
    const s_seg_t *seg = &wal->segs[lo];
    *seg_first = seg->first;
    *off = seg->start;
    *off_first = seg->first;
    if (seg->nmarks > 0 && seg->marks[0].first <= pos) {
        size_t a = 0, b = seg->nmarks - 1; /* last mark with first <= pos */
        while (a < b) {
            size_t mid = a + (b - a + 1) / 2;
            if (seg->marks[mid].first <= pos)
                a = mid;
            else
                b = mid - 1;
        }
        *off = seg->marks[a].off;
        *off_first = seg->marks[a].first;
    }
    pthread_mutex_unlock(&wal->lock);
    return 0;
}

/* ---- recovery ---------------------------------------------------------- */

/* Makes bytes [off, off+len) of the segment available at *p; the caller
 * guarantees len <= size - off. */
static int s_window(s_scan_t *sc, uint64_t off, size_t len, const uint8_t **p)
{
    if (off >= sc->win_off && off + len <= sc->win_off + sc->win_len) {
        *p = sc->win.data + (off - sc->win_off);
        return 0;
    }
    size_t want = len > S_SCAN_CHUNK ? len : S_SCAN_CHUNK;
    if (want > sc->size - off)
        want = (size_t)(sc->size - off);
    int rc = ordo_wal_buf_reserve(&sc->win, want + 1);
    if (rc)
        return rc;
    sc->win_len = 0;
    if (want > 0 && ordo_io_pread_all(sc->io, sc->fd, sc->win.data, want, (off_t)off) != 0) {
        char ebuf[128];
        int e = errno;
        ordo_log_error("wal", "reading segment %s at offset %llu failed: %s", sc->name,
                       (unsigned long long)off, s_errstr(e, ebuf, sizeof ebuf));
        return ordo_err_from_errno(e);
    }
    sc->win_off = off;
    sc->win_len = want;
    *p = sc->win.data;
    return 0;
}

/* Checks the frame at `off`: 0 = valid (header and checksum), S_END = zeros
 * (end of data), ORDO_ERR_CORRUPT with *why, or an I/O error. */
static int s_check_frame(s_scan_t *sc, uint64_t off, ordo_wal_hdr_t *h, const char **why)
{
    uint64_t rem = sc->size - off;
    const uint8_t *p;
    int rc;
    if (rem < ORDO_WAL_HEADER_SIZE) {
        if ((rc = s_window(sc, off, (size_t)rem, &p)) != 0)
            return rc;
        for (uint64_t i = 0; i < rem; i++)
            if (p[i]) {
                *why = "frame header cut short";
                return ORDO_ERR_CORRUPT;
            }
        return S_END;
    }
    if ((rc = s_window(sc, off, ORDO_WAL_HEADER_SIZE, &p)) != 0)
        return rc;
    if (ordo_wal_hdr_is_zero(p))
        return S_END;
    if (ordo_wal_hdr_decode(p, h, why) != 0)
        return ORDO_ERR_CORRUPT;
    if (h->clen > rem - ORDO_WAL_HEADER_SIZE) {
        *why = "frame extends past end of file";
        return ORDO_ERR_CORRUPT;
    }
    if ((rc = s_window(sc, off, ORDO_WAL_HEADER_SIZE + (size_t)h->clen, &p)) != 0)
        return rc;
    if (ordo_wal_frame_crc(p, p + ORDO_WAL_HEADER_SIZE, h->clen) != h->crc) {
        *why = "checksum mismatch";
        return ORDO_ERR_CORRUPT;
    }
    return 0;
}

/* Sets *end just past the last non-zero byte in [off, end of file), or to
 * `off` when those bytes are all zero (preallocated space). 0 or an I/O
 * error. Reads the whole range: up to a segment of zeros at open. */
static int s_nonzero_end(s_scan_t *sc, uint64_t off, uint64_t *end)
{
    static const uint8_t zeros[4096];
    *end = off;
    while (off < sc->size) {
        size_t len = sc->size - off > S_SCAN_CHUNK ? S_SCAN_CHUNK : (size_t)(sc->size - off);
        const uint8_t *p;
        int rc = s_window(sc, off, len, &p);
        if (rc)
            return rc;
        /* Last non-zero byte of the chunk: blocks from the end, memcmp'ed. */
        for (size_t b = len; b > 0;) {
            size_t bl = b % sizeof zeros ? b % sizeof zeros : sizeof zeros;
            b -= bl;
            if (memcmp(p + b, zeros, bl) == 0)
                continue;
            size_t i = b + bl;
            while (p[i - 1] == 0)
                i--;
            *end = off + i;
            break;
        }
        off += len;
    }
    return 0;
}

/* Looks for valid frames (magic, sane header, good checksum, first position
 * above `after`) starting in [from, limit). Returns 1 if any, 0 if none,
 * or an I/O error; raises *max_last to the highest last position seen. */
static int s_search_valid(s_scan_t *sc, uint64_t from, uint64_t limit, uint64_t after,
                          uint64_t *max_last)
{
    int found = 0;
    uint64_t off = from;
    while (off < limit && sc->size - off >= ORDO_WAL_HEADER_SIZE) {
        size_t len = sc->size - off > S_SCAN_CHUNK ? S_SCAN_CHUNK : (size_t)(sc->size - off);
        const uint8_t *p = NULL;
        int rc = s_window(sc, off, len, &p);
        if (rc)
            return rc;
        const uint8_t *m = memmem(p, len, ORDO_WAL_MAGIC, 4);
        if (!m) {
            off += len - 3; /* len >= 32: the magic may straddle chunks */
            continue;
        }
        uint64_t cand = off + (uint64_t)(m - p);
        ordo_wal_hdr_t h;
        const char *why;
        rc = s_check_frame(sc, cand, &h, &why);
        if (rc < 0 && rc != ORDO_ERR_CORRUPT)
            return rc;
        if (rc == 0 && h.first > after) {
            found = 1;
            if (h.first + h.count - 1 > *max_last)
                *max_last = h.first + h.count - 1;
            off = cand + ORDO_WAL_HEADER_SIZE + h.clen;
        } else {
            off = cand + 1;
        }
    }
    return found;
}

/* Scans the frames of one segment from offset 0, expecting positions from
 * `expect`, indexing good frames into `seg`. Fills *res; returns 0 or an
 * I/O error. */
static int s_scan_segment(s_scan_t *sc, s_seg_t *seg, uint64_t expect, s_result_t *res)
{
    memset(res, 0, sizeof *res);
    uint64_t off = 0;
    int rc = 0;
    /* The identity frame, if the segment has one. One that does not check
     * out is left to the loop below, where it is a bad frame at offset 0
     * (a torn tail if nothing valid follows: its segment's creation was
     * cut short). */
    if (sc->size >= ORDO_WAL_HEADER_SIZE) {
        size_t n = sc->size >= ORDO_WAL_ID_FRAME_SIZE ? ORDO_WAL_ID_FRAME_SIZE : (size_t)sc->size;
        const uint8_t *p;
        const char *why = NULL;
        if ((rc = s_window(sc, 0, n, &p)) != 0)
            return rc;
        if (ordo_wal_id_frame_decode(p, n, expect, res->id, &why) == 1) {
            res->has_id = true;
            off = ORDO_WAL_ID_FRAME_SIZE;
        }
    }
    while (off < sc->size) {
        ordo_wal_hdr_t h;
        const char *why = NULL;
        rc = s_check_frame(sc, off, &h, &why);
        res->tornable = true;
        if (rc == 0 && h.first != expect) {
            snprintf(res->why, sizeof res->why, "frame starts at position %llu, expected %llu",
                     (unsigned long long)h.first, (unsigned long long)expect);
            res->tornable = false; /* a whole frame: not a torn write */
            rc = ORDO_ERR_CORRUPT;
        } else if (rc == ORDO_ERR_CORRUPT) {
            snprintf(res->why, sizeof res->why, "%s", why);
        }
        if (rc == 0) {
            s_mark(seg, off, h.first);
            res->frames++;
            res->last_crc = h.crc;
            expect += h.count;
            off += ORDO_WAL_HEADER_SIZE + h.clen;
            continue;
        }
        if (rc != S_END && rc != ORDO_ERR_CORRUPT)
            return rc;
        int zrc = s_nonzero_end(sc, off, &res->dirty);
        if (zrc)
            return zrc;
        if (rc == S_END && res->dirty == off)
            break; /* clean end: zeros (preallocated space) up to end of file */
        /* A frame has a non-zero magic, so none starts in the zeros after
         * res->dirty. */
        int later = s_search_valid(sc, off + 1, res->dirty, expect - 1, &res->max_last);
        if (later < 0)
            return later;
        if (rc == S_END)
            snprintf(res->why, sizeof res->why, "%s",
                     later ? "zeroed frame header" : "non-zero bytes after end of data");
        res->hole = rc == S_END && later;
        res->bad = true;
        res->later = later != 0;
        break;
    }
    res->end = off;
    if (!res->bad)
        res->dirty = off;
    res->next = expect;
    return 0;
}

static int s_max_last_in(ordo_wal_t *wal, uint64_t first, uint64_t after, ordo_wal_buf_t *win,
                         uint64_t *max_last)
{
    char path[PATH_MAX], name[32];
    ordo_wal_segment_path(wal, first, path, sizeof path);
    s_segment_name(first, name, sizeof name);
    int fd = wal->io->open(wal->io->ctx, path, O_RDONLY, 0);
    if (fd < 0)
        return 0; /* best effort: only used to count what repair drops */
    off_t size = wal->io->size(wal->io->ctx, fd);
    int rc = 0;
    if (size > 0) {
        s_scan_t sc = {.io = wal->io, .fd = fd, .size = (uint64_t)size, .win = *win, .name = name};
        rc = s_search_valid(&sc, 0, (uint64_t)size, after, max_last);
        *win = sc.win;
    }
    wal->io->close(wal->io->ctx, fd);
    return rc < 0 ? rc : 0;
}

/* Reserves [off, off+len) of a segment, extending its size (zeros). 0, or
 * -1 with errno; EOPNOTSUPP (the file system cannot preallocate) counts as
 * success: the file then grows with every frame. */
static int s_preallocate(ordo_wal_t *wal, int fd, uint64_t off, uint64_t len)
{
    if (len == 0)
        return 0;
    if (wal->io->fallocate(wal->io->ctx, fd, (off_t)off, (off_t)len) == 0 || errno == EOPNOTSUPP)
        return 0;
    return -1;
}

/* Writes the identity frame at the start of the segment `first`. 0 or -1
 * with errno. */
static int s_write_identity(ordo_wal_t *wal, int fd, uint64_t first)
{
    uint8_t frame[ORDO_WAL_ID_FRAME_SIZE];
    ordo_wal_id_frame_encode(first, wal->log_id, frame);
    return ordo_io_pwrite_all(wal->io, fd, frame, sizeof frame, 0);
}

/* fdatasync of `fd`, counted and timed for the observer. 0 or -1 (errno). */
static int s_datasync(ordo_wal_t *wal, int fd)
{
    uint64_t t0 = ordo_mono_ns();
    if (wal->io->fdatasync(wal->io->ctx, fd) != 0)
        return -1;
    atomic_fetch_add_explicit(&wal->n_fsyncs, 1, memory_order_relaxed);
    if (wal->observer.synced)
        wal->observer.synced(wal->observer.ctx, ordo_mono_ns() - t0);
    return 0;
}

/* Makes the last segment's file reach S_GROW_AHEAD past `need` (its
 * data's end, the next frame included), never past the segment's size
 * unless one frame needs it; a file already that long is left alone.
 * `sync`: fdatasync the new size at once, so that the fdatasyncs of the
 * frames written into it sync data only (as after a roll). 0, or -1 with
 * errno. */
static int s_grow(ordo_wal_t *wal, uint64_t need, bool sync)
{
    uint64_t want = need + S_GROW_AHEAD;
    if (want > wal->segment_bytes)
        want = need > wal->segment_bytes ? need : wal->segment_bytes;
    if (want <= wal->allocated)
        return 0;
    if (s_preallocate(wal, wal->fd, wal->allocated, want - wal->allocated) != 0)
        return -1;
    wal->allocated = want;
    if (sync && s_datasync(wal, wal->fd) != 0)
        return -1;
    return 0;
}

/* Durably removes everything from `good_end` on (a torn tail, or what a
 * repair drops) and keeps the segment's preallocation: cuts the file at
 * good_end, reserves [good_end, size) again (reads as zeros; nothing to
 * do on EOPNOTSUPP, the file then just ends at good_end), and fsyncs, as
 * the file size changed. A crash in between leaves either the old tail
 * (removed again at the next open) or a shorter file: both valid. */
static int s_cut_tail(ordo_wal_t *wal, int fd, const char *name, uint64_t good_end, uint64_t size)
{
    const char *what = "truncating";
    if (wal->io->ftruncate(wal->io->ctx, fd, (off_t)good_end) != 0)
        goto fail;
    what = "preallocating";
    if (size > good_end && s_preallocate(wal, fd, good_end, size - good_end) != 0)
        goto fail;
    what = "fsync of";
    if (wal->io->fsync(wal->io->ctx, fd) != 0)
        goto fail;
    return 0;
fail:;
    char ebuf[128];
    int e = errno;
    ordo_log_error("wal", "removing the tail of segment %s/%s from offset %llu: %s failed: %s",
                   wal->dir, name, (unsigned long long)good_end, what,
                   s_errstr(e, ebuf, sizeof ebuf));
    return ordo_err_from_errno(e);
}

/* Deletes segments names[from..n) and makes that durable. */
static int s_unlink_from(ordo_wal_t *wal, const uint64_t *names, size_t from, size_t n)
{
    char path[PATH_MAX], ebuf[128];
    for (size_t i = from; i < n; i++) {
        ordo_wal_segment_path(wal, names[i], path, sizeof path);
        if (wal->io->unlink(wal->io->ctx, path) != 0) {
            int e = errno;
            ordo_log_error("wal", "removing %s failed: %s", path, s_errstr(e, ebuf, sizeof ebuf));
            return ordo_err_from_errno(e);
        }
    }
    if (ordo_io_fsync_dir(wal->io, wal->dir) != 0) {
        int e = errno;
        ordo_log_error("wal", "fsync of directory %s failed: %s", wal->dir,
                       s_errstr(e, ebuf, sizeof ebuf));
        return ordo_err_from_errno(e);
    }
    return 0;
}

/* Creates an empty segment file and makes its name durable. Returns an open
 * read-write fd, or -1 with errno. */
static int s_create_segment(ordo_wal_t *wal, uint64_t first)
{
    char path[PATH_MAX];
    ordo_wal_segment_path(wal, first, path, sizeof path);
    int fd = wal->io->open(wal->io->ctx, path, O_RDWR | O_CREAT | O_EXCL, 0644);
    if (fd < 0)
        return -1;
    if (ordo_io_fsync_dir(wal->io, wal->dir) != 0) {
        int e = errno;
        wal->io->close(wal->io->ctx, fd);
        errno = e;
        return -1;
    }
    return fd;
}

/* Every segment that has an identity names the same log (the first one
 * found sets it); a segment with data but none, after segments that have
 * one, is not part of this log either. 0, or ORDO_ERR_CORRUPT with the
 * message in rep (repair does not apply: the segment is someone else's). */
static int s_check_identity(ordo_wal_t *wal, const char *name, const s_result_t *res,
                            ordo_wal_recovery_t *rep)
{
    char mine[ORDO_UUID_TEXT_LEN + 1], theirs[ORDO_UUID_TEXT_LEN + 1];
    if (res->has_id && !wal->has_log_id) {
        memcpy(wal->log_id, res->id, sizeof wal->log_id);
        wal->has_log_id = true;
        return 0;
    }
    if (res->has_id && memcmp(res->id, wal->log_id, sizeof wal->log_id) == 0)
        return 0;
    if (!res->has_id && (!wal->has_log_id || res->end == 0))
        return 0; /* from before identities, or empty */
    ordo_uuid_format(wal->log_id, mine);
    mine[ORDO_UUID_TEXT_LEN] = '\0';
    if (res->has_id) {
        ordo_uuid_format(res->id, theirs);
        theirs[ORDO_UUID_TEXT_LEN] = '\0';
    }
    snprintf(rep->message, sizeof rep->message,
             "wal: segment %s in %s %s%s, but this log is %s; refusing to start (move the "
             "segment away if it is not this log's)",
             name, wal->dir, res->has_id ? "belongs to log " : "carries no log identity",
             res->has_id ? theirs : "", mine);
    ordo_log_error("wal", "%s", rep->message + 5);
    return ORDO_ERR_CORRUPT;
}

/* Scans every segment, fixes a torn tail, refuses or repairs corruption.
 * Leaves wal->segs describing the good log and *head its last position. */
static int s_recover(ordo_wal_t *wal, bool repair, ordo_wal_recovery_t *rep, uint64_t *head)
{
    uint64_t *names = NULL;
    size_t n = 0;
    ordo_wal_buf_t win = {0};
    int fd = -1;
    char path[PATH_MAX], name[32];
    int rc = ordo_wal_list_segments(wal->dir, &names, &n);
    if (rc)
        goto out;
    if (n == 0) {
        if ((rc = s_segs_reserve(wal)) != 0)
            goto out;
        fd = s_create_segment(wal, 1);
        if (fd < 0) {
            char ebuf[128];
            int e = errno;
            ordo_log_error("wal", "creating the first segment in %s failed: %s", wal->dir,
                           s_errstr(e, ebuf, sizeof ebuf));
            rc = ordo_err_from_errno(e);
            goto out;
        }
        s_segs_push(wal, 1);
        *head = 0;
        goto out;
    }
    if (names[0] == 0) {
        snprintf(rep->message, sizeof rep->message,
                 "wal: bad segment name 00000000000000000000.wal in %s (positions start at 1); "
                 "refusing to start",
                 wal->dir);
        ordo_log_error("wal", "%s", rep->message + 5);
        rc = ORDO_ERR_CORRUPT;
        goto out;
    }
    uint64_t expect = names[0];
    for (size_t i = 0; i < n; i++) {
        s_segment_name(names[i], name, sizeof name);
        ordo_wal_segment_path(wal, names[i], path, sizeof path);
        s_result_t res;
        size_t drop_from; /* first segment to delete on repair */
        const char *what;
        uint64_t seg_size = 0; /* file size of segment i (not its data end) */
        if (i > 0 && names[i] != expect) {
            memset(&res, 0, sizeof res);
            res.next = expect;
            snprintf(res.why, sizeof res.why, "segment starts at position %llu, expected %llu",
                     (unsigned long long)names[i], (unsigned long long)expect);
            drop_from = i;
            what = "position gap";
        } else {
            if ((rc = s_segs_reserve(wal)) != 0)
                goto out;
            fd = wal->io->open(wal->io->ctx, path, O_RDWR, 0);
            off_t size = fd < 0 ? -1 : wal->io->size(wal->io->ctx, fd);
            if (size < 0) {
                char ebuf[128];
                int e = errno;
                ordo_log_error("wal", "opening %s failed: %s", path,
                               s_errstr(e, ebuf, sizeof ebuf));
                rc = ordo_err_from_errno(e);
                goto out;
            }
            seg_size = (uint64_t)size;
            s_segs_push(wal, names[i]);
            s_seg_t *seg = &wal->segs[wal->nsegs - 1];
            s_scan_t sc = {
                .io = wal->io, .fd = fd, .size = (uint64_t)size, .win = win, .name = name};
            rc = s_scan_segment(&sc, seg, expect, &res);
            if (rc == 0 && res.frames)
                wal->last_crc = res.last_crc; /* the next frame written chains to it */
            win = sc.win;
            if (rc)
                goto out;
            if ((rc = s_check_identity(wal, name, &res, rep)) != 0)
                goto out;
            seg->end = res.end;
            seg->start = res.has_id ? ORDO_WAL_ID_FRAME_SIZE : 0;
            seg->last = res.next - 1;
            /* A torn tail of the last segment is what a crash leaves: cut it.
             * Valid frames after it are a hole in synced data, refused, unless
             * the log is not synced at every append (batch, never) and the
             * hole is zeros (a write that never reached the disk): then a
             * power cut kept later unsynced writes and dropped an earlier one,
             * and the log keeps its gap-free prefix and says what it cut. A
             * damaged frame (bad checksum, garbage) with frames after it is
             * refused in every mode: that is damage, not a power cut. */
            bool unsynced_tail = wal->sync_mode != ORDO_SYNC_ALWAYS &&
                                 wal->sync_mode != ORDO_SYNC_REPLICATED && res.hole;
            if (res.bad && i == n - 1 && res.tornable && (!res.later || unsynced_tail)) {
                uint64_t cut_events =
                    res.max_last > res.next - 1 ? res.max_last - (res.next - 1) : 0;
                if ((rc = s_cut_tail(wal, fd, name, res.end, seg_size)) != 0)
                    goto out;
                rep->torn_bytes_truncated = res.dirty - res.end;
                if (res.later) {
                    rep->events_dropped = cut_events;
                    snprintf(rep->message, sizeof rep->message,
                             "wal: the unsynced tail of segment %s had a hole at offset %llu (%s), "
                             "as a power cut leaves with fsync %s: cut there, dropping %llu later "
                             "events (%llu bytes)",
                             name, (unsigned long long)res.end, res.why,
                             wal->sync_mode == ORDO_SYNC_BATCH ? "batch" : "never",
                             (unsigned long long)cut_events,
                             (unsigned long long)rep->torn_bytes_truncated);
                    ordo_log_warn("wal", "%s", rep->message + 5);
                } else {
                    ordo_log_warn("wal",
                                  "torn tail in segment %s at offset %llu (%s): removed %llu bytes",
                                  name, (unsigned long long)res.end, res.why,
                                  (unsigned long long)rep->torn_bytes_truncated);
                }
                res.bad = false;
            }
            if (!res.bad) {
                rep->frames += res.frames;
                expect = res.next;
                wal->io->close(wal->io->ctx, fd);
                fd = -1;
                continue;
            }
            rep->frames += res.frames;
            drop_from = i + 1;
            what = "corrupt frame";
        }
        /* Mid-log corruption at (segment i, res.end): count what lies after. */
        uint64_t good_last = res.next - 1, max_last = res.max_last;
        for (size_t j = i + (drop_from == i ? 0 : 1); j < n; j++)
            if ((rc = s_max_last_in(wal, names[j], good_last, &win, &max_last)) != 0)
                goto out;
        uint64_t dropped = max_last > good_last ? max_last - good_last : 0;
        if (!repair) {
            snprintf(rep->message, sizeof rep->message,
                     "wal: %s in segment %s at offset %llu (%s); refusing to start (use repair to "
                     "truncate here, dropping %llu later events)",
                     what, name, (unsigned long long)res.end, res.why, (unsigned long long)dropped);
            ordo_log_error("wal", "%s", rep->message + 5);
            rc = ORDO_ERR_CORRUPT;
            goto out;
        }
        if (fd >= 0 && (rc = s_cut_tail(wal, fd, name, res.end, seg_size)) != 0)
            goto out;
        if ((rc = s_unlink_from(wal, names, drop_from, n)) != 0)
            goto out;
        rep->events_dropped = dropped;
        snprintf(
            rep->message, sizeof rep->message,
            "wal: %s in segment %s at offset %llu (%s); repaired: truncated there, removed %zu "
            "later segments, dropped %llu events",
            what, name, (unsigned long long)res.end, res.why, n - drop_from,
            (unsigned long long)dropped);
        ordo_log_warn("wal", "%s", rep->message + 5);
        expect = res.next;
        break;
    }
    *head = expect - 1;
out:
    if (fd >= 0)
        wal->io->close(wal->io->ctx, fd);
    ordo_wal_buf_free(&win);
    free(names);
    return rc;
}

/* ---- open / close ------------------------------------------------------ */

/* Returns 0 or ORDO_ERR_INVALID with a reason in `msg`. */
static int s_check_options(const ordo_wal_options_t *opts, char *msg, size_t size)
{
    const char *bad = NULL;
    if (!opts || !opts->dir || !*opts->dir)
        bad = "a log directory is required";
    else if (strlen(opts->dir) > PATH_MAX - 64)
        bad = "log directory path too long";
    else if (opts->segment_bytes != 0 && (opts->segment_bytes < ORDO_WAL_SEGMENT_MIN ||
                                          opts->segment_bytes > ORDO_WAL_SEGMENT_MAX))
        bad = "segment size must be at least 65536 bytes and at most 1 TiB";
    else if (opts->sync_mode != ORDO_SYNC_ALWAYS && opts->sync_mode != ORDO_SYNC_BATCH &&
             opts->sync_mode != ORDO_SYNC_NEVER && opts->sync_mode != ORDO_SYNC_REPLICATED)
        bad = "unknown sync mode";
    else if (opts->zstd_level != 0 &&
             (opts->zstd_level < ZSTD_minCLevel() || opts->zstd_level > ZSTD_maxCLevel()))
        bad = "zstd level out of range";
    if (!bad)
        return 0;
    snprintf(msg, size, "wal: invalid options: %s", bad);
    return ORDO_ERR_INVALID;
}

static void s_free(ordo_wal_t *wal)
{
    if (wal->fd >= 0)
        wal->io->close(wal->io->ctx, wal->fd);
    for (size_t i = 0; i < wal->nsegs; i++)
        free(wal->segs[i].marks);
    free(wal->segs);
    ZSTD_freeCCtx(wal->cctx);
    ZSTD_freeDCtx(wal->dctx);
    ordo_wal_buf_free(&wal->raw);
    ordo_wal_buf_free(&wal->frame);
    pthread_mutex_destroy(&wal->lock);
    free(wal->dir);
    free(wal);
}

/* Reports a failed call on `path` during open (errno holds the cause). */
static int s_open_failed(ordo_wal_recovery_t *rep, const char *what, const char *path)
{
    int e = errno;
    char ebuf[128];
    snprintf(rep->message, sizeof rep->message, "wal: %s %.400s failed: %s", what, path,
             s_errstr(e, ebuf, sizeof ebuf));
    ordo_log_error("wal", "%s", rep->message + 5);
    return ordo_err_from_errno(e);
}

int ordo_wal_open(const ordo_wal_options_t *opts, ordo_wal_t **out, ordo_wal_recovery_t *report)
{
    ordo_wal_recovery_t local;
    ordo_wal_recovery_t *rep = report ? report : &local;
    memset(rep, 0, sizeof *rep);
    if (!out)
        return ORDO_ERR_INVALID;
    *out = NULL;
    int rc = s_check_options(opts, rep->message, sizeof rep->message);
    if (rc)
        return rc;
    uint64_t t0 = ordo_mono_ns();
    ordo_wal_t *wal = calloc(1, sizeof *wal);
    if (!wal)
        return ORDO_ERR_NOMEM;
    wal->fd = -1;
    pthread_mutex_init(&wal->lock, NULL);
    wal->io = opts->io ? opts->io : ordo_io_posix();
    wal->segment_bytes = opts->segment_bytes ? opts->segment_bytes : ORDO_WAL_SEGMENT_DEFAULT;
    wal->sync_mode = opts->sync_mode;
    wal->sync_interval_ns = (uint64_t)opts->sync_interval_ms * 1000000u;
    wal->zstd_level = opts->zstd_level ? opts->zstd_level : 1;
    wal->dir = strdup(opts->dir);
    wal->cctx = ZSTD_createCCtx();
    if (!wal->dir || !wal->cctx) {
        rc = ORDO_ERR_NOMEM;
        goto out;
    }
    if (ordo_mkdir_p(wal->dir) != 0) {
        rc = s_open_failed(rep, "creating log directory", wal->dir);
        goto out;
    }
    uint64_t head = 0;
    if ((rc = s_recover(wal, opts->repair, rep, &head)) != 0)
        goto out;
    /* The last segment takes the appends: open it, preallocate the rest of
     * it, and make what recovery found durable before trusting it. */
    s_seg_t *cur = &wal->segs[wal->nsegs - 1];
    char path[PATH_MAX];
    ordo_wal_segment_path(wal, cur->first, path, sizeof path);
    wal->fd = wal->io->open(wal->io->ctx, path, O_RDWR, 0);
    if (wal->fd < 0) {
        rc = s_open_failed(rep, "open", path);
        goto out;
    }
    if (!wal->has_log_id) { /* a new log, or one from before identities */
        if (getrandom(wal->log_id, sizeof wal->log_id, 0) != (ssize_t)sizeof wal->log_id) {
            rc = s_open_failed(rep, "making an identity for", wal->dir);
            goto out;
        }
        wal->has_log_id = true;
    }
    if (cur->end == 0) { /* an empty last segment gets the identity first */
        if (s_write_identity(wal, wal->fd, cur->first) != 0) {
            rc = s_open_failed(rep, "writing the identity frame of", path);
            goto out;
        }
        cur->end = cur->start = ORDO_WAL_ID_FRAME_SIZE;
    }
    off_t have = wal->io->size(wal->io->ctx, wal->fd);
    wal->allocated = have > 0 ? (uint64_t)have : 0;
    if (s_grow(wal, cur->end, false) != 0) {
        rc = s_open_failed(rep, "preallocating", path);
        goto out;
    }
    if (wal->io->fdatasync(wal->io->ctx, wal->fd) != 0) {
        rc = s_open_failed(rep, "fdatasync of", path);
        goto out;
    }
    atomic_fetch_add(&wal->n_fsyncs, 1);
    wal->written = head;
    atomic_store(&wal->head, head);
    atomic_store(&wal->synced, head);
    wal->last_sync_ns = ordo_mono_ns();

    uint64_t first = wal->segs[0].first;
    rep->segments = (uint32_t)wal->nsegs;
    rep->events = head >= first ? head - first + 1 : 0;
    rep->first_position = rep->events ? first : 0;
    rep->last_position = rep->events ? head : 0;
    ordo_log_info(
        "wal", "opened %s: %u segments, %llu frames, %llu events, last position %llu, %.1f ms",
        wal->dir, rep->segments, (unsigned long long)rep->frames, (unsigned long long)rep->events,
        (unsigned long long)head, (double)(ordo_mono_ns() - t0) / 1e6);
    *out = wal;
    return 0;
out:
    s_free(wal);
    return rc;
}

/* fdatasyncs the last segment if anything is unsynced, then publishes. */
static int s_sync(ordo_wal_t *wal)
{
    if (atomic_load(&wal->err))
        return ORDO_ERR_FAILED;
    if (wal->written == atomic_load(&wal->synced))
        return 0;
    if (s_datasync(wal, wal->fd) != 0) {
        s_seg_t *cur = &wal->segs[wal->nsegs - 1];
        return s_fail(wal, errno, "fdatasync of", cur->first, cur->end);
    }
    wal->last_sync_ns = ordo_mono_ns();
    atomic_store(&wal->synced, wal->written);
    if (wal->sync_mode != ORDO_SYNC_REPLICATED)
        atomic_store(&wal->head, wal->written);
    return 0;
}

void ordo_wal_destroy(ordo_wal_t **walp)
{
    if (!walp || !*walp)
        return;
    ordo_wal_t *wal = *walp;
    if (!atomic_load(&wal->err))
        s_sync(wal);
    s_free(wal);
    *walp = NULL;
}

/* Starts a new segment named `first` for a frame of `frame_len` bytes:
 * makes the old one durable, creates and preallocates the new one, and
 * fdatasyncs it once so that the allocation (and file size) is durable
 * before the first frame's fdatasync, which then writes data only. */
static int s_roll(ordo_wal_t *wal, uint64_t first, size_t frame_len)
{
    int rc = s_sync(wal);
    if (rc)
        return rc;
    pthread_mutex_lock(&wal->lock);
    rc = s_segs_reserve(wal);
    pthread_mutex_unlock(&wal->lock);
    if (rc)
        return rc;
    int fd = s_create_segment(wal, first);
    if (fd < 0)
        return s_fail(wal, errno, "creating segment", first, 0);
    wal->io->close(wal->io->ctx, wal->fd);
    wal->fd = fd;
    pthread_mutex_lock(&wal->lock);
    s_segs_push(wal, first);
    pthread_mutex_unlock(&wal->lock);
    if (s_write_identity(wal, fd, first) != 0)
        return s_fail(wal, errno, "writing the identity frame of", first, 0);
    pthread_mutex_lock(&wal->lock);
    wal->segs[wal->nsegs - 1].end = wal->segs[wal->nsegs - 1].start = ORDO_WAL_ID_FRAME_SIZE;
    pthread_mutex_unlock(&wal->lock);
    wal->allocated = ORDO_WAL_ID_FRAME_SIZE;
    if (s_grow(wal, ORDO_WAL_ID_FRAME_SIZE + frame_len, false) != 0)
        return s_fail(wal, errno, "preallocating", first, 0);
    if (s_datasync(wal, fd) != 0)
        return s_fail(wal, errno, "fdatasync of", first, 0);
    return 0;
}

static bool s_sync_due(const ordo_wal_t *wal)
{
    return wal->written != atomic_load(&wal->synced) &&
           ordo_mono_ns() - wal->last_sync_ns >= wal->sync_interval_ns;
}

/* Writes a whole frame (already made, checked and chained) holding
 * positions first .. first + count - 1 at the end of the log, rolling to
 * a new segment when due, and syncs per the mode. */
static int s_write_frame(ordo_wal_t *wal, const void *frame, size_t len, uint64_t first,
                         size_t count, uint32_t crc)
{
    int rc;
    s_seg_t *cur = &wal->segs[wal->nsegs - 1];
    if (cur->last >= cur->first && cur->end + len > wal->segment_bytes) {
        if ((rc = s_roll(wal, first, len)) != 0)
            return rc;
        cur = &wal->segs[wal->nsegs - 1];
    }
    uint64_t off = cur->end;
    if (off + len > wal->allocated && s_grow(wal, off + len, true) != 0)
        return s_fail(wal, errno, "preallocating", cur->first, off);
    if (ordo_io_pwrite_all(wal->io, wal->fd, frame, len, (off_t)off) != 0)
        return s_fail(wal, errno, "write to", cur->first, off);
    wal->last_crc = crc;
    pthread_mutex_lock(&wal->lock);
    s_mark(cur, off, first);
    cur->end = off + len;
    cur->last = first + count - 1;
    pthread_mutex_unlock(&wal->lock);
    wal->written = first + count - 1;
    atomic_fetch_add_explicit(&wal->n_frames, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&wal->n_bytes, len, memory_order_relaxed);
    if (wal->observer.framed)
        wal->observer.framed(wal->observer.ctx, len, count);
    if (wal->sync_mode == ORDO_SYNC_ALWAYS || wal->sync_mode == ORDO_SYNC_REPLICATED ||
        (wal->sync_mode == ORDO_SYNC_BATCH && s_sync_due(wal))) {
        if ((rc = s_sync(wal)) != 0)
            return rc;
    }
    if (wal->sync_mode != ORDO_SYNC_REPLICATED)
        atomic_store(&wal->head, wal->written);
    return 0;
}

int ordo_wal_append(ordo_wal_t *wal, const ordo_wal_rec_t *recs, size_t count,
                    uint64_t *first_position)
{
    if (!wal || !recs || count == 0)
        return ORDO_ERR_INVALID;
    if (atomic_load(&wal->err))
        return ORDO_ERR_FAILED;
    uint64_t first = wal->written + 1;
    size_t len = 0;
    uint32_t crc;
    int rc = ordo_wal_frame_encode(wal->cctx, wal->zstd_level, first, recs, count, wal->last_crc,
                                   &wal->raw, &wal->frame, &len, &crc);
    if (rc)
        return rc; /* nothing written: the log stays usable */
    if ((rc = s_write_frame(wal, wal->frame.data, len, first, count, crc)) != 0)
        return rc;
    wal->frame_len = len; /* ordo_wal_last_frame: this one's bytes (not a replica's) */
    if (first_position)
        *first_position = first;
    return 0;
}

int ordo_wal_append_frame(ordo_wal_t *wal, const void *frame, size_t len, uint64_t *first_position,
                          uint32_t *count, const char **why)
{
    *why = NULL;
    if (!wal || !frame)
        return ORDO_ERR_INVALID;
    if (atomic_load(&wal->err))
        return ORDO_ERR_FAILED;
    ordo_wal_hdr_t h;
    if (len < ORDO_WAL_HEADER_SIZE || ordo_wal_hdr_decode(frame, &h, why) != 0) {
        *why = *why ? *why : "shorter than a frame header";
        return ORDO_ERR_CORRUPT;
    }
    const uint8_t *body = (const uint8_t *)frame + ORDO_WAL_HEADER_SIZE;
    uint32_t prev = 0;
    if (len != ORDO_WAL_HEADER_SIZE + (size_t)h.clen) {
        *why = "its length is not its header's";
        return ORDO_ERR_CORRUPT;
    }
    if (h.first != wal->written + 1) {
        *why = "it does not start at the position after the log's last";
        return ORDO_ERR_CORRUPT;
    }
    if (!wal->dctx && !(wal->dctx = ordo_wal_dctx_new()))
        return ORDO_ERR_NOMEM;
    int rc = ordo_wal_frame_decode(wal->dctx, frame, &h, body, &wal->raw, why);
    if (rc)
        return rc;
    if (!ordo_wal_frame_prev(&h, body, &prev) || prev != wal->last_crc) {
        *why = "it does not chain to the log's last frame";
        return ORDO_ERR_DIVERGED;
    }
    if ((rc = s_write_frame(wal, frame, len, h.first, h.count, ordo_wal_frame_crc(frame, body,
                                                                                  h.clen))) != 0)
        return rc;
    if (first_position)
        *first_position = h.first;
    if (count)
        *count = h.count;
    return 0;
}

int ordo_wal_sync(ordo_wal_t *wal)
{
    if (!wal)
        return ORDO_ERR_INVALID;
    return s_sync(wal);
}

int ordo_wal_sync_if_due(ordo_wal_t *wal)
{
    if (!wal)
        return ORDO_ERR_INVALID;
    if (atomic_load(&wal->err))
        return ORDO_ERR_FAILED;
    return s_sync_due(wal) ? s_sync(wal) : 0;
}

int64_t ordo_wal_sync_due_in_ms(const ordo_wal_t *wal)
{
    if (wal->written == atomic_load(&wal->synced))
        return -1;
    uint64_t since = ordo_mono_ns() - wal->last_sync_ns;
    if (since >= wal->sync_interval_ns)
        return 0;
    return (int64_t)((wal->sync_interval_ns - since + 999999) / 1000000);
}

uint64_t ordo_wal_head(const ordo_wal_t *wal)
{
    return atomic_load(&wal->head);
}

uint64_t ordo_wal_synced_head(const ordo_wal_t *wal)
{
    uint64_t synced = atomic_load(&wal->synced);
    if (wal->sync_mode == ORDO_SYNC_REPLICATED) { /* not yet released: not there */
        uint64_t head = atomic_load(&wal->head);
        return head < synced ? head : synced;
    }
    return synced;
}

void ordo_wal_release(ordo_wal_t *wal)
{
    if (wal->sync_mode == ORDO_SYNC_REPLICATED && !atomic_load(&wal->err))
        atomic_store(&wal->head, wal->written);
}

void ordo_wal_last_frame(const ordo_wal_t *wal, const void **data, size_t *len)
{
    *data = wal->frame.data;
    *len = wal->frame_len;
}

const ordo_io_t *ordo_wal_io(const ordo_wal_t *wal)
{
    return wal->io;
}

int ordo_wal_error(const ordo_wal_t *wal)
{
    return atomic_load(&wal->err);
}

void ordo_wal_stats(const ordo_wal_t *wal, uint64_t *frames, uint64_t *fsyncs, uint64_t *bytes)
{
    if (frames)
        *frames = atomic_load_explicit(&wal->n_frames, memory_order_relaxed);
    if (fsyncs)
        *fsyncs = atomic_load_explicit(&wal->n_fsyncs, memory_order_relaxed);
    if (bytes)
        *bytes = atomic_load_explicit(&wal->n_bytes, memory_order_relaxed);
}

void ordo_wal_observe(ordo_wal_t *wal, const ordo_wal_observer_t *observer)
{
    if (wal)
        wal->observer = observer ? *observer : (ordo_wal_observer_t){0};
}
