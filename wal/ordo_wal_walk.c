/* A read-only walk of a whole log, frame by frame (see ordo_wal.h): the
 * ground ordo-admin's `wal info`, `verify` and `dump` stand on. It reads
 * with pread, holds one frame at a time, and changes nothing. */
#include "ordo_error.h"
#include "ordo_wal.h"
#include "ordo_wal_format.h"
#include "ordo_wal_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define S_CHUNK (1u << 20)

typedef struct {
    const ordo_wal_visitor_t *v;
    void *ctx;
    ordo_wal_walk_t *out;
    ZSTD_DCtx *dctx;
    ordo_wal_buf_t body, raw, chunk;
    int fd;
    uint64_t size;
    char name[32];
    bool chain_known;  /* last_crc holds the previous data frame's CRC32C */
    bool chained_seen; /* a chained frame was seen: every later one must be */
    uint32_t last_crc;
} s_walk_t;

static void s_fault(s_walk_t *w, uint64_t off, const char *what)
{
    ordo_wal_walk_t *o = w->out;
    o->damaged = true;
    snprintf(o->fault_segment, sizeof o->fault_segment, "%s", w->name);
    o->fault_offset = off;
    snprintf(o->fault, sizeof o->fault, "%s", what);
}

static int s_read(s_walk_t *w, void *buf, size_t len, uint64_t off)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = pread(w->fd, (uint8_t *)buf + done, len - done, (off_t)(off + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return ORDO_ERR_IO;
        done += (size_t)n;
    }
    return 0;
}

/* The offset just past the last non-zero byte of [off, size), or off. */
static int s_nonzero_end(s_walk_t *w, uint64_t off, uint64_t *end)
{
    int rc = ordo_wal_buf_reserve(&w->chunk, S_CHUNK);
    *end = off;
    for (uint64_t at = off; rc == 0 && at < w->size;) {
        size_t len = w->size - at > S_CHUNK ? S_CHUNK : (size_t)(w->size - at);
        if ((rc = s_read(w, w->chunk.data, len, at)) != 0)
            break;
        for (size_t i = len; i > 0; i--)
            if (w->chunk.data[i - 1]) {
                *end = at + i;
                break;
            }
        at += len;
    }
    return rc;
}

/* Whether a frame with a good header and checksum starts anywhere in
 * (off, end): candidates are found by their magic, a chunk at a time. */
static int s_frame_after(s_walk_t *w, uint64_t off, uint64_t end, bool *found)
{
    *found = false;
    int rc = ordo_wal_buf_reserve(&w->chunk, S_CHUNK);
    for (uint64_t at = off + 1; rc == 0 && at + ORDO_WAL_HEADER_SIZE <= end;) {
        size_t len = end - at > S_CHUNK ? S_CHUNK : (size_t)(end - at);
        if ((rc = s_read(w, w->chunk.data, len, at)) != 0)
            return rc;
        const uint8_t *p = w->chunk.data, *stop = p + len;
        while (p < stop) {
            const uint8_t *m = memmem(p, (size_t)(stop - p), ORDO_WAL_MAGIC, 4);
            if (!m)
                break;
            uint64_t cand = at + (uint64_t)(m - w->chunk.data);
            p = m + 1;
            uint8_t hdr[ORDO_WAL_HEADER_SIZE];
            ordo_wal_hdr_t h;
            const char *why;
            if (cand + sizeof hdr > w->size || s_read(w, hdr, sizeof hdr, cand) != 0 ||
                ordo_wal_hdr_decode(hdr, &h, &why) != 0 || h.clen > w->size - cand - sizeof hdr)
                continue;
            if ((rc = ordo_wal_buf_reserve(&w->body, h.clen + 1)) != 0 ||
                (rc = s_read(w, w->body.data, h.clen, cand + sizeof hdr)) != 0)
                return rc;
            if (ordo_wal_frame_crc(hdr, w->body.data, h.clen) == h.crc) {
                *found = true;
                return 0;
            }
        }
        at += len > 3 ? len - 3 : len; /* a magic may straddle two chunks */
    }
    return rc;
}

/* A frame that does not check out at `off`: in the last segment with no
 * good frame after it, an unfinished tail; else damage. */
static int s_bad_frame(s_walk_t *w, uint64_t off, bool last, const char *why)
{
    uint64_t end;
    int rc = s_nonzero_end(w, off, &end);
    bool later = false;
    if (rc == 0 && last)
        rc = s_frame_after(w, off, end, &later);
    if (rc)
        return rc;
    if (last && !later) {
        w->out->tail_offset = off;
        w->out->tail_bytes = end - off;
        return 0;
    }
    s_fault(w, off, why);
    return 0;
}

/* Walks one segment whose name says it starts at *expect. */
static int s_segment(s_walk_t *w, uint64_t first, bool last, uint64_t *expect)
{
    ordo_wal_walk_t *o = w->out;
    if (first != *expect) {
        char d[96];
        snprintf(d, sizeof d, "the segment starts at position %" PRIu64 ", expected %" PRIu64
                              " (a segment is missing, or one is left over)",
                 first, *expect);
        s_fault(w, 0, d);
        return 0;
    }
    struct stat st;
    if (fstat(w->fd, &st) != 0)
        return ordo_err_from_errno(errno);
    w->size = (uint64_t)st.st_size;
    o->segments++;
    o->file_bytes += w->size;
    if (w->v && w->v->segment) {
        int rc = w->v->segment(w->ctx, w->name, first, w->size);
        if (rc)
            return rc;
    }
    uint64_t off = 0;
    if (w->size >= ORDO_WAL_HEADER_SIZE) {
        uint8_t idf[ORDO_WAL_ID_FRAME_SIZE];
        size_t n = w->size >= sizeof idf ? sizeof idf : (size_t)w->size;
        uint8_t id[ORDO_WAL_LOG_ID_SIZE];
        const char *why = NULL;
        int rc = s_read(w, idf, n, 0);
        if (rc)
            return rc;
        int r = ordo_wal_id_frame_decode(idf, n, first, id, &why);
        if (r == 1) {
            if (o->has_id && memcmp(o->id, id, sizeof id) != 0) {
                s_fault(w, 0, "the segment belongs to another log (its identity frame names another)");
                return 0;
            }
            memcpy(o->id, id, sizeof id);
            o->has_id = true;
            off = ORDO_WAL_ID_FRAME_SIZE;
            o->data_bytes += ORDO_WAL_ID_FRAME_SIZE;
        } else if (r != 0 && !last) {
            char d[160];
            snprintf(d, sizeof d, "identity frame: %s", why ? why : "bad");
            s_fault(w, 0, d);
            return 0;
        }
    }
    while (off < w->size) {
        uint8_t hdr[ORDO_WAL_HEADER_SIZE];
        int rc;
        size_t n = w->size - off < sizeof hdr ? (size_t)(w->size - off) : sizeof hdr;
        memset(hdr, 0, sizeof hdr);
        if ((rc = s_read(w, hdr, n, off)) != 0)
            return rc;
        if (ordo_wal_hdr_is_zero(hdr)) { /* end of data: zeros must follow */
            uint64_t end;
            if ((rc = s_nonzero_end(w, off, &end)) != 0)
                return rc;
            if (end != off)
                s_fault(w, off, "a zeroed frame header with data after it (a hole)");
            return 0;
        }
        if (n < sizeof hdr)
            return s_bad_frame(w, off, last, "a frame header cut short");
        ordo_wal_hdr_t h;
        const char *why = NULL;
        if (ordo_wal_hdr_decode(hdr, &h, &why) != 0)
            return s_bad_frame(w, off, last, why);
        if (h.clen > w->size - off - sizeof hdr)
            return s_bad_frame(w, off, last, "the frame extends past the end of the file");
        if ((rc = ordo_wal_buf_reserve(&w->body, h.clen + 1)) != 0 ||
            (rc = s_read(w, w->body.data, h.clen, off + sizeof hdr)) != 0)
            return rc;
        rc = ordo_wal_frame_decode(w->dctx, hdr, &h, w->body.data, &w->raw, &why);
        if (rc == ORDO_ERR_CORRUPT)
            return s_bad_frame(w, off, last, why);
        if (rc)
            return rc;
        /* The chain: a chained frame names its predecessor's checksum (the
         * log's first frame: 0). It catches a frame removed, replaced by
         * one of another copy of the log, or moved, where positions alone
         * might still run on. */
        uint32_t prev = 0;
        bool chained = ordo_wal_frame_prev(&h, w->body.data, &prev);
        if (chained && (w->chain_known || h.first == 1) &&
            prev != (w->chain_known ? w->last_crc : 0)) {
            s_fault(w, off, "the frame does not follow the previous one (it chains to another "
                            "frame: one removed, replaced or moved)");
            return 0;
        }
        if (!chained && w->chained_seen) { /* frames are chained since 1.1, never unchained */
            s_fault(w, off, "an unchained frame after chained ones (frames written since 1.1 "
                            "are all chained: this one was replaced)");
            return 0;
        }
        w->chained_seen = w->chained_seen || chained;
        if (h.first != *expect) {
            char d[96];
            snprintf(d, sizeof d, "the frame starts at position %" PRIu64 ", expected %" PRIu64,
                     h.first, *expect);
            s_fault(w, off, d);
            return 0;
        }
        ordo_wal_frame_info_t fi = {w->name, off, h.first, h.count, h.clen, h.rlen, chained};
        if (w->v && w->v->frame && (rc = w->v->frame(w->ctx, &fi)) != 0)
            return rc;
        size_t roff = 0;
        const void *data;
        size_t len;
        uint64_t pos = h.first;
        while (ordo_wal_body_next(w->raw.data, h.rlen, &roff, &data, &len) == 1) {
            if (w->v && w->v->record && (rc = w->v->record(w->ctx, pos, data, len)) != 0)
                return rc;
            pos++;
        }
        if (o->events == 0)
            o->first_position = h.first;
        o->frames++;
        o->events += h.count;
        o->data_bytes += sizeof hdr + h.clen;
        o->raw_bytes += h.rlen;
        o->last_position = h.first + h.count - 1;
        w->last_crc = h.crc;
        w->chain_known = true;
        *expect = h.first + h.count;
        off += sizeof hdr + h.clen;
    }
    return 0;
}

int ordo_wal_walk(const char *dir, const ordo_wal_visitor_t *visitor, void *ctx,
                  ordo_wal_walk_t *out)
{
    memset(out, 0, sizeof *out);
    uint64_t *names = NULL;
    size_t n = 0;
    int rc = ordo_wal_list_segments(dir, &names, &n);
    if (rc)
        return rc;
    s_walk_t w = {.v = visitor, .ctx = ctx, .out = out, .fd = -1};
    if (!(w.dctx = ordo_wal_dctx_new())) {
        free(names);
        return ORDO_ERR_NOMEM;
    }
    uint64_t expect = n ? names[0] : 1;
    for (size_t i = 0; rc == 0 && i < n && !out->damaged && out->tail_bytes == 0; i++) {
        char path[4096];
        snprintf(w.name, sizeof w.name, "%020" PRIu64 ".wal", names[i]);
        snprintf(path, sizeof path, "%s/%s", dir, w.name);
        if ((w.fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
            rc = ordo_err_from_errno(errno);
            break;
        }
        rc = s_segment(&w, names[i], i + 1 == n, &expect);
        close(w.fd);
        w.fd = -1;
    }
    ZSTD_freeDCtx(w.dctx);
    ordo_wal_buf_free(&w.body);
    ordo_wal_buf_free(&w.raw);
    ordo_wal_buf_free(&w.chunk);
    free(names);
    return rc;
}
