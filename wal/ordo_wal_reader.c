/* Log readers: iterate records from a position, on any thread, while one
 * thread appends. Each frame fetch reads the visible head first and never
 * goes past it, so a reader only touches frames that were completely
 * written. A frame is found by binary search over segments and their sparse
 * index, then by reading frame headers forward; bodies are checked (CRC,
 * bounded decompression, record structure) before any record is returned. */
#include "ordo_error.h"
#include "ordo_log.h"
#include "ordo_wal.h"
#include "ordo_wal_format.h"
#include "ordo_wal_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* Walking frame headers forward from a sparse-index entry (64 KiB apart)
 * reads them this many bytes at a time, not one pread per header. */
#define S_SCAN_BYTES (64u << 10)

struct ordo_wal_reader {
    ordo_wal_t *wal;          /* borrowed; outlives the reader */
    ZSTD_DCtx *dctx;          /* owned */
    ordo_wal_buf_t body, raw; /* owned: the current frame as on disk (header and compressed
                               * body), and its raw body */
    int fd;                   /* owned: open segment, -1 when none */
    uint64_t seg_first;       /* name of the open segment */
    uint64_t next;            /* next position to return */
    uint64_t hint_off;        /* offset in the open segment of the frame after */
    uint64_t hint_first;      /*   the current one, and its first position (0 = none) */
    bool have_frame;          /* raw holds a checked frame with records still to return */
    bool frame_valid;         /* raw holds the checked frame frame_first.. +frame_count */
    uint64_t frame_first, frame_count;
    size_t frame_len;         /* bytes of the frame in body */
    uint64_t frame_pos;       /* position of the record at raw_off */
    uint8_t *scan;            /* owned: S_SCAN_BYTES of frame headers, read in one call */
    uint64_t scan_off;        /* where scan starts in the open segment */
    size_t scan_len;          /* bytes in scan; 0 = none (reset at every fetch) */
    size_t raw_len, raw_off;
    int err; /* sticky error */
};

int ordo_wal_reader_new(ordo_wal_t *wal, uint64_t from_position, ordo_wal_reader_t **out)
{
    if (!wal || !out)
        return ORDO_ERR_INVALID;
    *out = NULL;
    uint64_t first = ordo_wal_first_position(wal);
    if (from_position == 0)
        from_position = first;
    if (from_position < first)
        return ORDO_ERR_NOT_FOUND;
    ordo_wal_reader_t *r = calloc(1, sizeof *r);
    if (!r)
        return ORDO_ERR_NOMEM;
    r->dctx = ordo_wal_dctx_new();
    if (!r->dctx) {
        free(r);
        return ORDO_ERR_NOMEM;
    }
    r->wal = wal;
    r->fd = -1;
    r->next = from_position;
    *out = r;
    return 0;
}

void ordo_wal_reader_destroy(ordo_wal_reader_t **rp)
{
    if (!rp || !*rp)
        return;
    ordo_wal_reader_t *r = *rp;
    const ordo_io_t *io = ordo_wal_io(r->wal);
    if (r->fd >= 0)
        io->close(io->ctx, r->fd);
    ZSTD_freeDCtx(r->dctx);
    ordo_wal_buf_free(&r->body);
    ordo_wal_buf_free(&r->raw);
    free(r->scan);
    free(r);
    *rp = NULL;
}

static int s_corrupt(ordo_wal_reader_t *r, uint64_t off, const char *why)
{
    char path[PATH_MAX];
    ordo_wal_segment_path(r->wal, r->seg_first, path, sizeof path);
    ordo_log_error(
        "wal", "reader: corrupt frame in %s at offset %llu (%s) while looking for position %llu",
        path, (unsigned long long)off, why, (unsigned long long)r->next);
    return ORDO_ERR_CORRUPT;
}

static int s_read(ordo_wal_reader_t *r, void *buf, size_t n, uint64_t off)
{
    const ordo_io_t *io = ordo_wal_io(r->wal);
    if (ordo_io_pread_all(io, r->fd, buf, n, (off_t)off) == 0)
        return 0;
    int e = errno;
    char path[PATH_MAX];
    ordo_wal_segment_path(r->wal, r->seg_first, path, sizeof path);
    char ebuf[128];
    ordo_log_error(
        "wal", "reader: reading %s at offset %llu failed: %s", path, (unsigned long long)off,
        e == EIO ? "I/O error or unexpected end of file" : strerror_r(e, ebuf, sizeof ebuf));
    return ordo_err_from_errno(e);
}

/* The header at `off` of the open segment, read with the ones after it
 * into r->scan. Only frames up to the one this fetch looks for are known
 * to be complete, and no fetch goes past that one, so a window is only
 * trusted within the fetch that read it. */
static int s_read_header(ordo_wal_reader_t *r, uint8_t *hdr, uint64_t off)
{
    if (r->scan_len && off >= r->scan_off && off - r->scan_off + ORDO_WAL_HEADER_SIZE <= r->scan_len) {
        memcpy(hdr, r->scan + (off - r->scan_off), ORDO_WAL_HEADER_SIZE);
        return 0;
    }
    r->scan_len = 0;
    if (!r->scan && !(r->scan = malloc(S_SCAN_BYTES)))
        return s_read(r, hdr, ORDO_WAL_HEADER_SIZE, off);
    const ordo_io_t *io = ordo_wal_io(r->wal);
    ssize_t n;
    do
        n = io->pread(io->ctx, r->fd, r->scan, S_SCAN_BYTES, (off_t)off);
    while (n < 0 && errno == EINTR);
    if (n < (ssize_t)ORDO_WAL_HEADER_SIZE) /* near the file's end, or an error: read exactly */
        return s_read(r, hdr, ORDO_WAL_HEADER_SIZE, off);
    r->scan_off = off;
    r->scan_len = (size_t)n;
    memcpy(hdr, r->scan, ORDO_WAL_HEADER_SIZE);
    return 0;
}

/* Loads and checks the frame holding r->next (which is <= head). */
static int s_fetch(ordo_wal_reader_t *r)
{
    uint64_t seg_first, off, off_first;
    r->frame_valid = false; /* raw is about to be overwritten */
    r->scan_len = 0;        /* frames may have been written since */
    int rc = ordo_wal_locate(r->wal, r->next, &seg_first, &off, &off_first);
    if (rc)
        return rc;
    const ordo_io_t *io = ordo_wal_io(r->wal);
    if (r->fd < 0 || r->seg_first != seg_first) {
        if (r->fd >= 0)
            io->close(io->ctx, r->fd);
        r->hint_first = 0;
        r->seg_first = seg_first;
        char path[PATH_MAX];
        ordo_wal_segment_path(r->wal, seg_first, path, sizeof path);
        r->fd = io->open(io->ctx, path, O_RDONLY, 0);
        if (r->fd < 0) {
            int e = errno;
            char ebuf[128];
            ordo_log_error("wal", "reader: opening %s failed: %s", path,
                           strerror_r(e, ebuf, sizeof ebuf));
            return e == ENOENT ? ORDO_ERR_NOT_FOUND : ordo_err_from_errno(e);
        }
    }
    /* Sequential reading: continue after the previous frame when that is
     * further along than the index entry. */
    if (r->hint_first && r->hint_first <= r->next && r->hint_off > off) {
        off = r->hint_off;
        off_first = r->hint_first;
    }
    for (bool first = true;; first = false) {
        uint8_t hdr[ORDO_WAL_HEADER_SIZE];
        ordo_wal_hdr_t h;
        const char *why = NULL;
        /* The first header alone (reading on, it is the frame wanted);
         * walking past frames, a window of them at a time. */
        if ((rc = first ? s_read(r, hdr, sizeof hdr, off) : s_read_header(r, hdr, off)) != 0)
            return rc;
        if (ordo_wal_hdr_decode(hdr, &h, &why) != 0)
            return s_corrupt(r, off, why);
        if (h.first != off_first)
            return s_corrupt(r, off, "frame position out of sequence");
        if (r->next >= h.first + h.count) {
            off += ORDO_WAL_HEADER_SIZE + (uint64_t)h.clen;
            off_first = h.first + h.count;
            continue;
        }
        /* h.clen is bounded by the header check (<= compressBound(64 MiB)).
         * The frame is kept whole, header first (ordo_wal_reader_frame). */
        size_t len = ORDO_WAL_HEADER_SIZE + (size_t)h.clen;
        if ((rc = ordo_wal_buf_reserve(&r->body, len)) != 0)
            return rc;
        memcpy(r->body.data, hdr, ORDO_WAL_HEADER_SIZE);
        uint8_t *body = (uint8_t *)r->body.data + ORDO_WAL_HEADER_SIZE;
        if ((rc = s_read(r, body, h.clen, off + ORDO_WAL_HEADER_SIZE)) != 0)
            return rc;
        rc = ordo_wal_frame_decode(r->dctx, hdr, &h, body, &r->raw, &why);
        if (rc == ORDO_ERR_CORRUPT)
            return s_corrupt(r, off, why);
        if (rc)
            return rc;
        r->have_frame = true;
        r->frame_valid = true;
        r->frame_first = h.first;
        r->frame_count = h.count;
        r->frame_len = len;
        r->frame_pos = h.first;
        r->raw_len = h.rlen;
        r->raw_off = 0;
        r->hint_off = off + ORDO_WAL_HEADER_SIZE + h.clen;
        r->hint_first = h.first + h.count;
        return 0;
    }
}

int ordo_wal_reader_seek(ordo_wal_reader_t *r, uint64_t position)
{
    if (!r)
        return ORDO_ERR_INVALID;
    if (position == 0)
        position = ordo_wal_first_position(r->wal);
    if (position < ordo_wal_first_position(r->wal))
        return ORDO_ERR_NOT_FOUND;
    r->err = 0; /* a new attempt: an error at the old place may not be one here */
    r->next = position;
    /* Within the frame in hand: read it again from its start (no read, no
     * decompression); elsewhere the next call finds the frame. */
    r->have_frame = r->frame_valid && position >= r->frame_first &&
                    position < r->frame_first + r->frame_count;
    if (r->have_frame) {
        r->raw_off = 0;
        r->frame_pos = r->frame_first;
    }
    return 0;
}

int ordo_wal_reader_next(ordo_wal_reader_t *r, uint64_t *position, const void **data, size_t *len)
{
    if (!r)
        return ORDO_ERR_INVALID;
    if (r->err)
        return r->err;
    for (;;) {
        if (r->have_frame) {
            const void *d;
            size_t n;
            if (ordo_wal_body_next(r->raw.data, r->raw_len, &r->raw_off, &d, &n)) {
                uint64_t pos = r->frame_pos++;
                if (pos < r->next)
                    continue; /* started in the middle of this frame */
                r->next = pos + 1;
                if (position)
                    *position = pos;
                if (data)
                    *data = d;
                if (len)
                    *len = n;
                return 1;
            }
            r->have_frame = false;
        }
        if (r->next > ordo_wal_head(r->wal))
            return 0;
        int rc = s_fetch(r);
        if (rc) {
            r->err = rc;
            return rc;
        }
    }
}

int ordo_wal_reader_frame(ordo_wal_reader_t *r, uint64_t position, const void **data, size_t *len,
                          uint64_t *first, uint64_t *count)
{
    if (!r || !data || !len)
        return ORDO_ERR_INVALID;
    if (position == 0 || position > ordo_wal_head(r->wal))
        return ORDO_ERR_NOT_FOUND;
    int rc = ordo_wal_reader_seek(r, position);
    if (rc)
        return rc;
    if (!r->have_frame && (rc = s_fetch(r)) != 0) {
        r->err = rc;
        return rc;
    }
    *data = r->body.data;
    *len = r->frame_len;
    if (first)
        *first = r->frame_first;
    if (count)
        *count = r->frame_count;
    /* On to the frame after it: its records were not returned. */
    r->next = r->frame_first + r->frame_count;
    r->have_frame = false;
    return 0;
}
