/* Snapshot writer: streams records through zstd into a temp file, then
 * makes it durable and visible in one step (header, fsync, rename, fsync
 * the folder), so a crash leaves either the old set of snapshots or the new
 * one, plus at most a temp file that readers ignore and prune removes.
 * Memory stays bounded (one staging buffer, one output buffer, one zstd
 * context) whatever the number of records.
 *
 * FILE FORMAT (version 1)
 *
 * A snapshot lives in <dir>/snapshot-<position as 20 decimal digits>.osnap,
 * for example snapshot-00000000000000001234.osnap; while being written it is
 * <same name>.tmp. The file is a 48-byte header followed by the body.
 * Integers are little-endian.
 *
 *   offset size  field
 *        0    4  magic: the bytes 'O' 'S' 'N' 'P'
 *        4    2  format version: 1
 *        6    2  flags: 0 (readers refuse any other value)
 *        8    8  position: the snapshot covers log positions <= position;
 *                equal to the number in the file name
 *       16    8  record count
 *       24    8  raw length: bytes of the uncompressed body
 *       32    8  compressed length: bytes of the body; the file is exactly
 *                48 + compressed length bytes long
 *       40    4  CRC32C (Castagnoli, as ordo_crc32c) of the whole file with
 *                these 4 bytes taken as zero: header bytes 0..47, then the
 *                body
 *       44    4  reserved: 0 (readers refuse any other value)
 *       48    -  body: exactly one zstd frame (RFC 8878), window size at
 *                most 2^20 bytes, no dictionary; readers ignore its
 *                optional content size and checksum fields
 *
 * The uncompressed body is the records in order, each one
 *
 *     length   unsigned LEB128 varint (7 bits per byte, low group first,
 *              high bit set on every byte but the last), at most 5 bytes,
 *              value <= ORDO_SNAPSHOT_RECORD_MAX (16 MiB)
 *     bytes    `length` opaque bytes (0 allowed)
 *
 * with nothing after the last record. A file is valid only if all of this
 * holds: the size, magic, version, flags, reserved field and position
 * match, the CRC matches, the frame decodes within the window limit, every
 * length is in bounds, and the record count and raw length add up exactly.
 *
 * Writing order: a zeroed 48-byte placeholder, the body in chunks as
 * records come, then the real header at offset 0 (the CRC is the header's
 * CRC combined with the running body CRC), fsync, rename over the final
 * name, fsync the folder. */
#include "ordo_snapshot.h"

#include "ordo_crc32c.h"
#include "ordo_error.h"
#include "ordo_log.h"
#include "ordo_snapshot_format.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#define STAGE_SIZE (64 * 1024)

struct ordo_snapshot_writer {
    const ordo_io_t *io; /* borrowed from the caller */
    char *dir;           /* owned */
    char *tmp_path;      /* owned */
    char *final_path;    /* owned */
    int fd;              /* owned; -1 once closed */
    uint64_t position;
    uint64_t count;      /* records added */
    uint64_t raw_len;    /* uncompressed body bytes so far */
    uint64_t off;        /* next file offset: header + compressed bytes written */
    uint32_t body_crc;   /* CRC32C of the compressed bytes written */
    ZSTD_CCtx *cctx;     /* owned */
    uint8_t *stage;      /* owned; STAGE_SIZE bytes of raw data waiting for zstd */
    size_t stage_len;
    uint8_t *zbuf;       /* owned; compressed output waiting to be written */
    size_t zbuf_cap;
    int err;             /* first error; once set the writer refuses work */
};

char *ordo_snapshot_join(const char *dir, uint64_t position, int is_tmp)
{
    char name[64];
    snprintf(name, sizeof name, is_tmp ? SNAP_TMP_NAME_FMT : SNAP_NAME_FMT,
             (unsigned long long)position);
    size_t len = strlen(dir) + 1 + strlen(name) + 1;
    char *path = malloc(len);
    if (path)
        snprintf(path, len, "%s/%s", dir, name);
    return path;
}

/* Product of two polynomials modulo the CRC32C polynomial, bit-reflected
 * (zlib's multmodp). `a` must not be 0. */
static uint32_t s_multmodp(uint32_t a, uint32_t b)
{
    uint32_t m = 1u << 31, p = 0;
    for (;;) {
        if (a & m) {
            p ^= b;
            if ((a & (m - 1)) == 0)
                break;
        }
        m >>= 1;
        b = (b & 1) ? (b >> 1) ^ 0x82F63B78u : b >> 1;
    }
    return p;
}

/* CRC32C of A followed by B, from the CRCs of each and B's length: lets the
 * header, written last, come first in the checksummed bytes. */
static uint32_t s_crc32c_combine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b)
{
    uint32_t shift = 1u << 31; /* x^0 */
    uint32_t sq = 1u << 23;    /* x^8: one byte */
    for (; len_b; len_b >>= 1) {
        if (len_b & 1)
            shift = s_multmodp(sq, shift);
        sq = s_multmodp(sq, sq);
    }
    return s_multmodp(shift, crc_a) ^ crc_b;
}

/* Records the first error, logs it with errno's text, returns it. */
static int s_fail(ordo_snapshot_writer_t *w, int err, const char *what, int errnum)
{
    if (w->err == 0) {
        w->err = err;
        ordo_log_error("snapshot", "%s %s: %s", what, w->tmp_path,
                       errnum ? strerror(errnum) : ordo_strerror(err));
    }
    return w->err;
}

static int s_write_out(ordo_snapshot_writer_t *w, size_t n)
{
    if (n == 0)
        return 0;
    if (ordo_io_pwrite_all(w->io, w->fd, w->zbuf, n, (off_t)w->off) != 0) {
        int e = errno;
        return s_fail(w, ordo_err_from_errno(e), "write", e);
    }
    w->body_crc = ordo_crc32c(w->body_crc, w->zbuf, n);
    w->off += n;
    return 0;
}

/* Feeds `len` raw bytes to zstd (ZSTD_e_continue) or finishes the frame
 * (ZSTD_e_end), writing the output whenever the buffer fills. */
static int s_compress(ordo_snapshot_writer_t *w, const void *src, size_t len, ZSTD_EndDirective op)
{
    ZSTD_inBuffer in = {src, len, 0};
    for (;;) {
        ZSTD_outBuffer out = {w->zbuf, w->zbuf_cap, 0};
        size_t left = ZSTD_compressStream2(w->cctx, &out, &in, op);
        if (ZSTD_isError(left))
            return s_fail(w, ORDO_ERR_IO, ZSTD_getErrorName(left), 0);
        int rc = s_write_out(w, out.pos);
        if (rc != 0)
            return rc;
        if (op == ZSTD_e_end ? left == 0 : in.pos == in.size)
            return 0;
    }
}

/* Adds raw bytes through the staging buffer: small records are batched,
 * big ones go straight to zstd. */
static int s_feed(ordo_snapshot_writer_t *w, const void *data, size_t len)
{
    if (len <= STAGE_SIZE - w->stage_len) {
        if (len)
            memcpy(w->stage + w->stage_len, data, len);
        w->stage_len += len;
        return 0;
    }
    int rc = s_compress(w, w->stage, w->stage_len, ZSTD_e_continue);
    w->stage_len = 0;
    if (rc != 0)
        return rc;
    if (len >= STAGE_SIZE)
        return s_compress(w, data, len, ZSTD_e_continue);
    memcpy(w->stage, data, len);
    w->stage_len = len;
    return 0;
}

/* Frees everything; closes and removes the temp file if still there. */
static void s_destroy(ordo_snapshot_writer_t **wp, int remove_tmp)
{
    ordo_snapshot_writer_t *w = *wp;
    if (!w)
        return;
    *wp = NULL;
    if (w->fd >= 0)
        w->io->close(w->io->ctx, w->fd);
    if (remove_tmp && w->tmp_path && w->io->unlink(w->io->ctx, w->tmp_path) != 0 &&
        errno != ENOENT)
        ordo_log_warn("snapshot", "cannot remove %s: %s", w->tmp_path, strerror(errno));
    ZSTD_freeCCtx(w->cctx);
    free(w->stage);
    free(w->zbuf);
    free(w->dir);
    free(w->tmp_path);
    free(w->final_path);
    free(w);
}

int ordo_snapshot_writer_new(const char *dir, uint64_t position, const ordo_io_t *io,
                             ordo_snapshot_writer_t **out)
{
    if (out)
        *out = NULL;
    if (!dir || !*dir || !out)
        return ORDO_ERR_INVALID;
    int rc = 0;
    ordo_snapshot_writer_t *w = calloc(1, sizeof *w);
    if (!w)
        return ORDO_ERR_NOMEM;
    w->io = io ? io : ordo_io_posix();
    w->fd = -1;
    w->position = position;
    w->zbuf_cap = ZSTD_CStreamOutSize();
    w->dir = strdup(dir);
    w->tmp_path = ordo_snapshot_join(dir, position, 1);
    w->final_path = ordo_snapshot_join(dir, position, 0);
    w->stage = malloc(STAGE_SIZE);
    w->zbuf = malloc(w->zbuf_cap);
    w->cctx = ZSTD_createCCtx();
    if (!w->dir || !w->tmp_path || !w->final_path || !w->stage || !w->zbuf || !w->cctx) {
        rc = ORDO_ERR_NOMEM;
        goto out;
    }
    if (ZSTD_isError(ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_compressionLevel, 1)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_windowLog, SNAP_WINDOW_LOG))) {
        rc = ORDO_ERR_INVALID;
        goto out;
    }
    if (ordo_mkdir_p(dir) != 0) {
        int e = errno;
        ordo_log_error("snapshot", "cannot create folder %s: %s", dir, strerror(e));
        rc = ordo_err_from_errno(e);
        goto out;
    }
    w->fd = w->io->open(w->io->ctx, w->tmp_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (w->fd < 0) {
        int e = errno;
        ordo_log_error("snapshot", "cannot create %s: %s", w->tmp_path, strerror(e));
        rc = ordo_err_from_errno(e);
        goto out;
    }
    /* Placeholder: a crash before commit leaves a temp file with no magic. */
    uint8_t zero[SNAP_HEADER_SIZE] = {0};
    if (ordo_io_pwrite_all(w->io, w->fd, zero, sizeof zero, 0) != 0) {
        int e = errno;
        rc = s_fail(w, ordo_err_from_errno(e), "write", e);
        goto out;
    }
    w->off = SNAP_HEADER_SIZE;
out:
    if (rc != 0)
        s_destroy(&w, w && w->fd >= 0);
    *out = w;
    return rc;
}

int ordo_snapshot_writer_add(ordo_snapshot_writer_t *w, const void *record, size_t len)
{
    if (!w || (!record && len))
        return ORDO_ERR_INVALID;
    if (w->err)
        return ORDO_ERR_FAILED;
    if (len > ORDO_SNAPSHOT_RECORD_MAX)
        return ORDO_ERR_TOO_BIG;
    uint8_t varint[SNAP_VARINT_MAX];
    size_t n = 0;
    size_t v = len;
    do {
        varint[n++] = (uint8_t)((v & 0x7F) | (v > 0x7F ? 0x80 : 0));
        v >>= 7;
    } while (v);
    int rc = s_feed(w, varint, n);
    if (rc == 0)
        rc = s_feed(w, record, len);
    if (rc != 0)
        return rc;
    w->count++;
    w->raw_len += n + len;
    return 0;
}

int ordo_snapshot_writer_commit(ordo_snapshot_writer_t **wp)
{
    if (!wp || !*wp)
        return ORDO_ERR_INVALID;
    ordo_snapshot_writer_t *w = *wp;
    *wp = NULL;
    int rc = w->err;
    if (rc != 0)
        goto out;
    if ((rc = s_compress(w, w->stage, w->stage_len, ZSTD_e_end)) != 0)
        goto out;
    w->stage_len = 0;

    uint8_t h[SNAP_HEADER_SIZE] = {0};
    memcpy(h, SNAP_MAGIC, 4);
    snap_put16(h + SNAP_OFF_VERSION, SNAP_VERSION);
    snap_put16(h + SNAP_OFF_FLAGS, 0);
    snap_put64(h + SNAP_OFF_POSITION, w->position);
    snap_put64(h + SNAP_OFF_COUNT, w->count);
    snap_put64(h + SNAP_OFF_RAW_LEN, w->raw_len);
    snap_put64(h + SNAP_OFF_COMP_LEN, w->off - SNAP_HEADER_SIZE);
    uint32_t crc = s_crc32c_combine(ordo_crc32c(0, h, sizeof h), w->body_crc,
                                    w->off - SNAP_HEADER_SIZE);
    snap_put32(h + SNAP_OFF_CRC, crc);
    if (ordo_io_pwrite_all(w->io, w->fd, h, sizeof h, 0) != 0) {
        int e = errno;
        rc = s_fail(w, ordo_err_from_errno(e), "write header of", e);
        goto out;
    }
    /* A failed fsync is never retried: the page cache may have dropped the
     * dirty pages, so the file is abandoned. */
    if (w->io->fsync(w->io->ctx, w->fd) != 0) {
        int e = errno;
        rc = s_fail(w, ordo_err_from_errno(e), "fsync", e);
        goto out;
    }
    int fd = w->fd;
    w->fd = -1;
    if (w->io->close(w->io->ctx, fd) != 0) {
        int e = errno;
        rc = s_fail(w, ordo_err_from_errno(e), "close", e);
        goto out;
    }
    if (w->io->rename(w->io->ctx, w->tmp_path, w->final_path) != 0) {
        int e = errno;
        rc = s_fail(w, ordo_err_from_errno(e), "rename", e);
        goto out;
    }
    if (ordo_io_fsync_dir(w->io, w->dir) != 0) {
        int e = errno;
        ordo_log_error("snapshot", "fsync folder %s after writing %s: %s", w->dir,
                       w->final_path, strerror(e));
        rc = ordo_err_from_errno(e);
        goto out;
    }
    ordo_log_info("snapshot", "wrote %s: %llu records, %llu bytes (%llu raw)", w->final_path,
                  (unsigned long long)w->count, (unsigned long long)w->off,
                  (unsigned long long)w->raw_len);
out:
    s_destroy(&w, rc != 0);
    return rc;
}

void ordo_snapshot_writer_abort(ordo_snapshot_writer_t **wp)
{
    if (wp)
        s_destroy(wp, 1);
}
