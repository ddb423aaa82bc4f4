/* Frame encoding and validation for the write-ahead log. The on-disk format,
 * byte by byte:
 *
 * LOG DIRECTORY
 *   Segment files named by the position of their first record, as 20
 *   decimal digits and ".wal": 00000000000000000001.wal, then e.g.
 *   00000000000000004097.wal. Other names are ignored. Segments are
 *   contiguous: each one's name is the previous segment's last position + 1.
 *   Only the last segment is ever written; a segment is fdatasync'ed before
 *   the next one is created, so only the last can end in a torn frame.
 *
 * SEGMENT FILE
 *   An identity frame (below), then a sequence of frames, back to back, no
 *   padding. Segments written before identities existed have no identity
 *   frame: their frames start at offset 0, and they are read as they are.
 *   A new
 *   segment starts when the next frame would take the current one past the
 *   configured segment size (a frame larger than a segment goes alone into
 *   a fresh one).
 *   Segments are preallocated with zeros past the data end: a new segment
 *   is created with fallocate mode 0 (space reserved AND file size set) to
 *   the segment size (or the size of the one frame bigger than that), and
 *   fdatasync'ed once before its first frame; the last segment is extended
 *   the same way at open. Appends then never change the file size, so
 *   their fdatasync has no size metadata to write. Where the file system
 *   cannot preallocate (EOPNOTSUPP), files simply grow with each frame.
 *   The data end is therefore never the file size: the data ends at the
 *   first 32-byte frame header of all zeros, or at end of file (fewer than
 *   32 zero bytes left also end it). Every byte after the data end must be
 *   zero; anything else there is damage (below).
 *
 * TORN TAIL (recovery, last segment only)
 *   Frames that do not check out at the end of the last segment, with no
 *   valid frame after them and nothing but zeros from the last non-zero
 *   byte on, are a torn write. They are removed durably and the
 *   preallocation is kept: ftruncate to the end of the last good frame,
 *   fallocate (mode 0) back to the old file size, fsync. The bytes
 *   reported as removed run from that end to the last non-zero byte
 *   (trailing zeros of a torn write look like preallocated space). Repair
 *   of mid-log corruption cuts the damaged segment the same way.
 *
 * FRAME HEADER: 32 bytes, integers little-endian
 *   offset size  field
 *        0    4  magic "OWAL" (4f 57 41 4c)
 *        4    2  format version, 1
 *        6    2  flags, 0
 *        8    8  first position: position of the first record; the first
 *                frame of a segment starts at the segment's name, every
 *                other at the previous frame's first + count
 *       16    4  count: records in the frame, 1 <= count <= raw length
 *       20    4  compressed length: bytes of body after the header,
 *                1 <= compressed length <= ZSTD_compressBound(raw length)
 *       24    4  raw length: bytes of the decompressed body,
 *                <= ORDO_WAL_FRAME_RAW_MAX (64 MiB)
 *       28    4  CRC32C (Castagnoli) of the 32 header bytes with this field
 *                set to zero, followed by the compressed body
 *
 * IDENTITY FRAME: the first 48 bytes of a segment
 *   A frame header with flags 0x0001 (log identity), count 0, compressed
 *   and raw length 16, first position = the segment's name, and the CRC32C
 *   as for any frame; then 16 bytes: the identity of the log, random,
 *   made when the log was created (or, for a log from before identities,
 *   when it was first opened by a version that has them). Every segment of
 *   a log names the same identity; a segment naming another one, or with
 *   data but no identity after segments that have one, is refused at open
 *   (repair does not apply). An identity frame that does not check out in
 *   an otherwise empty last segment (its creation was cut short) is a torn
 *   tail: cut, and written again. It holds no record and takes no
 *   position; data frames decode it as a bad frame (flags), so a reader
 *   never takes it for one.
 *
 * FRAME BODY: compressed length bytes
 *   zstd (one or more zstd frames; written as one, level 1 by default) of
 *   the raw body, which decompresses to exactly raw length bytes. Every
 *   frame written since PROTOCOL.md 1.1 is chained: its body starts with
 *   a zstd skippable frame (magic 0x184D2A50, length 4) holding the CRC32C
 *   field of the log's previous data frame (0 for the log's first), so a
 *   frame removed, replaced or moved breaks the chain at the next one
 *   (ordo-admin wal verify checks it; identity frames are not in it).
 *   zstd skips skippable frames, so the format is otherwise unchanged and
 *   an engine from before reads chained frames as plain ones.
 *
 * RAW BODY: raw length bytes
 *   `count` records back to back, each an unsigned LEB128 varint length (at
 *   most 5 bytes, value < 2^32) followed by that many record bytes. The
 *   records exactly fill the raw body. Records are opaque to the log (Ordo
 *   stores MessagePack-encoded events).
 *
 * Readers never allocate from an unchecked header field: lengths are
 * bounded above before any buffer is sized from them. */
#include "ordo_wal_format.h"

#include "ordo_crc32c.h"
#include "ordo_error.h"

#include <stdlib.h>
#include <string.h>

static void s_put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void s_put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void s_put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint16_t s_get16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t s_get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t s_get64(const uint8_t *p)
{
    return (uint64_t)s_get32(p) | (uint64_t)s_get32(p + 4) << 32;
}

static size_t s_varint_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

/* Reads a varint from [*off, len). 0 or -1 when it runs past the end,
 * takes more than 5 bytes or exceeds 32 bits. */
static int s_varint_get(const uint8_t *p, size_t len, size_t *off, uint64_t *out)
{
    uint64_t v = 0;
    for (int i = 0; i < 5; i++) {
        if (*off >= len)
            return -1;
        uint8_t b = p[(*off)++];
        v |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            if (v > UINT32_MAX)
                return -1;
            *out = v;
            return 0;
        }
    }
    return -1;
}

int ordo_wal_buf_reserve(ordo_wal_buf_t *buf, size_t size)
{
    if (size <= buf->cap)
        return 0;
    size_t cap = buf->cap ? buf->cap : 4096;
    while (cap < size)
        cap *= 2;
    uint8_t *p = realloc(buf->data, cap);
    if (!p)
        return ORDO_ERR_NOMEM;
    buf->data = p;
    buf->cap = cap;
    return 0;
}

void ordo_wal_buf_free(ordo_wal_buf_t *buf)
{
    free(buf->data);
    buf->data = NULL;
    buf->cap = 0;
}

void ordo_wal_hdr_encode(const ordo_wal_hdr_t *h, uint8_t out[ORDO_WAL_HEADER_SIZE])
{
    memcpy(out, ORDO_WAL_MAGIC, 4);
    s_put16(out + 4, h->version);
    s_put16(out + 6, h->flags);
    s_put64(out + 8, h->first);
    s_put32(out + 16, h->count);
    s_put32(out + 20, h->clen);
    s_put32(out + 24, h->rlen);
    s_put32(out + 28, h->crc);
}

int ordo_wal_hdr_decode(const uint8_t in[ORDO_WAL_HEADER_SIZE], ordo_wal_hdr_t *h, const char **why)
{
    const char *bad = NULL;
    h->version = s_get16(in + 4);
    h->flags = s_get16(in + 6);
    h->first = s_get64(in + 8);
    h->count = s_get32(in + 16);
    h->clen = s_get32(in + 20);
    h->rlen = s_get32(in + 24);
    h->crc = s_get32(in + 28);
    if (memcmp(in, ORDO_WAL_MAGIC, 4) != 0)
        bad = "bad magic";
    else if (h->version != ORDO_WAL_VERSION)
        bad = "unknown format version";
    else if (h->flags != 0)
        bad = "unknown flags";
    else if (h->rlen > ORDO_WAL_FRAME_RAW_MAX)
        bad = "raw length above limit";
    else if (h->count == 0 || h->count > h->rlen)
        bad = "bad record count";
    else if (h->clen == 0 || h->clen > ZSTD_compressBound(h->rlen) + ORDO_WAL_CHAIN_SIZE)
        bad = "bad compressed length";
    else if (h->first == 0 || h->first > UINT64_MAX - h->count)
        bad = "bad first position";
    if (why)
        *why = bad;
    return bad ? ORDO_ERR_CORRUPT : 0;
}

void ordo_wal_id_frame_encode(uint64_t first, const uint8_t id[ORDO_WAL_LOG_ID_SIZE],
                              uint8_t out[ORDO_WAL_ID_FRAME_SIZE])
{
    ordo_wal_hdr_t h = {.version = ORDO_WAL_VERSION,
                        .flags = ORDO_WAL_FLAG_LOG_ID,
                        .first = first,
                        .count = 0,
                        .clen = ORDO_WAL_LOG_ID_SIZE,
                        .rlen = ORDO_WAL_LOG_ID_SIZE};
    ordo_wal_hdr_encode(&h, out);
    memcpy(out + ORDO_WAL_HEADER_SIZE, id, ORDO_WAL_LOG_ID_SIZE);
    h.crc = ordo_wal_frame_crc(out, out + ORDO_WAL_HEADER_SIZE, ORDO_WAL_LOG_ID_SIZE);
    ordo_wal_hdr_encode(&h, out);
}

int ordo_wal_id_frame_decode(const uint8_t *in, size_t len, uint64_t first,
                             uint8_t id[ORDO_WAL_LOG_ID_SIZE], const char **why)
{
    if (len < ORDO_WAL_HEADER_SIZE || memcmp(in, ORDO_WAL_MAGIC, 4) != 0 ||
        (s_get16(in + 6) & ORDO_WAL_FLAG_LOG_ID) == 0)
        return 0; /* no identity: zeros, or a data frame first */
    const char *bad = NULL;
    if (len < ORDO_WAL_ID_FRAME_SIZE)
        bad = "identity frame cut short";
    else if (s_get16(in + 4) != ORDO_WAL_VERSION || s_get16(in + 6) != ORDO_WAL_FLAG_LOG_ID ||
             s_get32(in + 16) != 0 || s_get32(in + 20) != ORDO_WAL_LOG_ID_SIZE ||
             s_get32(in + 24) != ORDO_WAL_LOG_ID_SIZE)
        bad = "malformed identity frame";
    else if (s_get64(in + 8) != first)
        bad = "identity frame of another segment";
    else if (ordo_wal_frame_crc(in, in + ORDO_WAL_HEADER_SIZE, ORDO_WAL_LOG_ID_SIZE) !=
             s_get32(in + 28))
        bad = "identity frame checksum mismatch";
    if (bad) {
        *why = bad;
        return ORDO_ERR_CORRUPT;
    }
    memcpy(id, in + ORDO_WAL_HEADER_SIZE, ORDO_WAL_LOG_ID_SIZE);
    return 1;
}

bool ordo_wal_hdr_is_zero(const uint8_t in[ORDO_WAL_HEADER_SIZE])
{
    for (int i = 0; i < ORDO_WAL_HEADER_SIZE; i++)
        if (in[i])
            return false;
    return true;
}

uint32_t ordo_wal_frame_crc(const uint8_t hdr[ORDO_WAL_HEADER_SIZE], const void *body, size_t clen)
{
    static const uint8_t zero[4] = {0};
    uint32_t crc = ordo_crc32c(0, hdr, ORDO_WAL_HEADER_SIZE - 4);
    crc = ordo_crc32c(crc, zero, sizeof zero);
    return ordo_crc32c(crc, body, clen);
}

int ordo_wal_frame_encode(ZSTD_CCtx *cctx, int level, uint64_t first, const ordo_wal_rec_t *recs,
                          size_t count, uint32_t prev_crc, ordo_wal_buf_t *raw, ordo_wal_buf_t *out,
                          size_t *frame_len, uint32_t *crc_out)
{
    if (!recs || count == 0 || first == 0)
        return ORDO_ERR_INVALID;
    if (count > UINT32_MAX || first > UINT64_MAX - count)
        return ORDO_ERR_TOO_BIG;
    size_t rlen = 0;
    for (size_t i = 0; i < count; i++) {
        if (recs[i].len && !recs[i].data)
            return ORDO_ERR_INVALID;
        if (recs[i].len > ORDO_WAL_FRAME_RAW_MAX)
            return ORDO_ERR_TOO_BIG;
        rlen += s_varint_size(recs[i].len) + recs[i].len;
        if (rlen > ORDO_WAL_FRAME_RAW_MAX)
            return ORDO_ERR_TOO_BIG;
    }
    int rc = ordo_wal_buf_reserve(raw, rlen);
    if (rc)
        return rc;
    size_t off = 0;
    for (size_t i = 0; i < count; i++) {
        uint64_t v = recs[i].len;
        while (v >= 0x80) {
            raw->data[off++] = (uint8_t)(v | 0x80);
            v >>= 7;
        }
        raw->data[off++] = (uint8_t)v;
        if (recs[i].len)
            memcpy(raw->data + off, recs[i].data, recs[i].len);
        off += recs[i].len;
    }
    size_t bound = ZSTD_compressBound(rlen);
    rc = ordo_wal_buf_reserve(out, ORDO_WAL_HEADER_SIZE + ORDO_WAL_CHAIN_SIZE + bound);
    if (rc)
        return rc;
    s_put32(out->data + ORDO_WAL_HEADER_SIZE, ORDO_WAL_CHAIN_MAGIC); /* the chain */
    s_put32(out->data + ORDO_WAL_HEADER_SIZE + 4, 4);
    s_put32(out->data + ORDO_WAL_HEADER_SIZE + 8, prev_crc);
    size_t clen = ZSTD_compressCCtx(cctx, out->data + ORDO_WAL_HEADER_SIZE + ORDO_WAL_CHAIN_SIZE,
                                    bound, raw->data, rlen, level);
    if (ZSTD_isError(clen))
        return ORDO_ERR_NOMEM; /* the only failure with a bound-sized output */
    clen += ORDO_WAL_CHAIN_SIZE;
    ordo_wal_hdr_t h = {
        .version = ORDO_WAL_VERSION,
        .flags = 0,
        .first = first,
        .count = (uint32_t)count,
        .clen = (uint32_t)clen,
        .rlen = (uint32_t)rlen,
        .crc = 0,
    };
    ordo_wal_hdr_encode(&h, out->data);
    h.crc = ordo_wal_frame_crc(out->data, out->data + ORDO_WAL_HEADER_SIZE, clen);
    s_put32(out->data + 28, h.crc);
    *frame_len = ORDO_WAL_HEADER_SIZE + clen;
    if (crc_out)
        *crc_out = h.crc;
    return 0;
}

bool ordo_wal_frame_prev(const ordo_wal_hdr_t *h, const void *body, uint32_t *prev)
{
    const uint8_t *b = body;
    if (h->clen < ORDO_WAL_CHAIN_SIZE || s_get32(b) != ORDO_WAL_CHAIN_MAGIC || s_get32(b + 4) != 4)
        return false;
    *prev = s_get32(b + 8);
    return true;
}

int ordo_wal_frame_decode(ZSTD_DCtx *dctx, const uint8_t hdr[ORDO_WAL_HEADER_SIZE],
                          const ordo_wal_hdr_t *h, const void *body, ordo_wal_buf_t *raw,
                          const char **why)
{
    if (ordo_wal_frame_crc(hdr, body, h->clen) != h->crc) {
        *why = "checksum mismatch";
        return ORDO_ERR_CORRUPT;
    }
    /* h->rlen was bounded by ordo_wal_hdr_decode; +1 so that an empty body
     * still gets a buffer. */
    int rc = ordo_wal_buf_reserve(raw, (size_t)h->rlen + 1);
    if (rc)
        return rc;
    size_t n = ZSTD_decompressDCtx(dctx, raw->data, h->rlen, body, h->clen); /* skips the chain */
    if (ZSTD_isError(n)) {
        *why = "body does not decompress";
        return ORDO_ERR_CORRUPT;
    }
    if (n != h->rlen) {
        *why = "decompressed size differs from raw length";
        return ORDO_ERR_CORRUPT;
    }
    size_t off = 0;
    for (uint32_t i = 0; i < h->count; i++) {
        uint64_t len;
        if (s_varint_get(raw->data, n, &off, &len) != 0 || len > n - off) {
            *why = "record runs past the end of the body";
            return ORDO_ERR_CORRUPT;
        }
        off += (size_t)len;
    }
    if (off != n) {
        *why = "records do not fill the body";
        return ORDO_ERR_CORRUPT;
    }
    return 0;
}

int ordo_wal_body_next(const uint8_t *raw, size_t len, size_t *off, const void **data,
                       size_t *rec_len)
{
    uint64_t v;
    if (*off >= len || s_varint_get(raw, len, off, &v) != 0 || v > len - *off)
        return 0;
    *data = raw + *off;
    *rec_len = (size_t)v;
    *off += (size_t)v;
    return 1;
}

ZSTD_DCtx *ordo_wal_dctx_new(void)
{
    ZSTD_DCtx *dctx = ZSTD_createDCtx();
    if (dctx &&
        ZSTD_isError(ZSTD_DCtx_setParameter(dctx, ZSTD_d_windowLogMax, ORDO_WAL_WINDOW_LOG_MAX))) {
        ZSTD_freeDCtx(dctx);
        return NULL;
    }
    return dctx;
}
