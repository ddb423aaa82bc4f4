/* libFuzzer target: the log frame checks of wal/ordo_wal_format.h, which
 * recovery and readers run on bytes read from disk. The input is one frame
 * (32-byte header, then the body). A frame the checks accept must hold
 * exactly `count` records that fill the raw body, and re-encoding those
 * records must give a frame that decodes to the same records. Each input
 * is tried as is, again with its CRC fixed (so that mutations get past
 * the checksum into zstd), and with the bytes after the header taken as
 * the raw body, compressed here (so that they reach the record walk). */
#include "ordo_error.h"
#include "ordo_wal_format.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Reused across inputs (reachable, so not leaks); grown as needed. */
static ZSTD_DCtx *s_dctx;
static ZSTD_CCtx *s_cctx;
static ordo_wal_buf_t s_raw, s_raw2, s_out, s_raw3;
static ordo_wal_rec_t *s_recs;
static size_t s_recs_cap;

static void s_check_header(const ordo_wal_hdr_t *h)
{
    if (h->version != ORDO_WAL_VERSION || h->flags != 0 || h->rlen > ORDO_WAL_FRAME_RAW_MAX ||
        h->count == 0 || h->count > h->rlen || h->clen == 0 ||
        h->clen > ZSTD_compressBound(h->rlen) + ORDO_WAL_CHAIN_SIZE || h->first == 0 ||
        h->first > UINT64_MAX - h->count)
        abort();
}

/* Walks a raw body that ordo_wal_frame_decode accepted into s_recs;
 * returns the number of records, which must fill it exactly. */
static size_t s_walk(const uint8_t *raw, const ordo_wal_hdr_t *h)
{
    size_t off = 0, n = 0;
    const void *rec;
    size_t len;
    while (ordo_wal_body_next(raw, h->rlen, &off, &rec, &len) == 1) {
        if (n == s_recs_cap) {
            size_t cap = s_recs_cap ? s_recs_cap * 2 : 64;
            ordo_wal_rec_t *grown = realloc(s_recs, cap * sizeof *grown);
            if (!grown)
                abort();
            s_recs = grown;
            s_recs_cap = cap;
        }
        if ((const uint8_t *)rec < raw || (const uint8_t *)rec + len > raw + h->rlen)
            abort();
        s_recs[n].data = rec;
        s_recs[n].len = len;
        n++;
    }
    if (n != h->count || off != h->rlen)
        abort();
    return n;
}

/* The accepted records, written again as a frame, must decode to the same
 * records at the same first position. */
static void s_round_trip(const ordo_wal_hdr_t *h, size_t n)
{
    size_t frame_len;
    uint32_t prev = 0x9e3779b9u ^ (uint32_t)h->first, crc;
    if (ordo_wal_frame_encode(s_cctx, 1, h->first, s_recs, n, prev, &s_raw2, &s_out, &frame_len,
                              &crc) != 0)
        abort();
    ordo_wal_hdr_t h2;
    const char *why = NULL;
    if (ordo_wal_hdr_decode(s_out.data, &h2, &why) != 0)
        abort();
    /* rlen may shrink: the format allows non-minimal varint lengths, the
     * writer emits minimal ones. */
    if (h2.first != h->first || h2.count != h->count || h2.rlen > h->rlen ||
        frame_len != ORDO_WAL_HEADER_SIZE + h2.clen || h2.crc != crc || h2.flags != 0)
        abort();
    uint32_t named;
    if (!ordo_wal_frame_prev(&h2, s_out.data + ORDO_WAL_HEADER_SIZE, &named) || named != prev)
        abort();
    if (ordo_wal_frame_decode(s_dctx, s_out.data, &h2, s_out.data + ORDO_WAL_HEADER_SIZE, &s_raw3,
                              &why) != 0)
        abort();
    size_t off = 0;
    const void *rec;
    size_t len;
    for (size_t i = 0; i < n; i++) {
        if (ordo_wal_body_next(s_raw3.data, h2.rlen, &off, &rec, &len) != 1 ||
            len != s_recs[i].len || (len && memcmp(rec, s_recs[i].data, len) != 0))
            abort();
    }
    if (off != h2.rlen)
        abort();
}

/* One attempt with the header bytes `hdr` (possibly CRC-fixed). */
static void s_try(const uint8_t hdr[ORDO_WAL_HEADER_SIZE], const ordo_wal_hdr_t *h,
                  const uint8_t *body)
{
    const char *why = NULL;
    int rc = ordo_wal_frame_decode(s_dctx, hdr, h, body, &s_raw, &why);
    if (rc == ORDO_ERR_CORRUPT) {
        if (!why || !*why)
            abort();
        return;
    }
    if (rc != 0)
        abort();
    s_round_trip(h, s_walk(s_raw.data, h));
}

/* The bytes after the header taken as a raw body instead: compressed and
 * framed with the input's first position and count, so the record walk
 * sees arbitrary varints and lengths that zstd mutations rarely reach. */
static void s_try_raw(const uint8_t *data, size_t size)
{
    static ordo_wal_buf_t zbody;
    size_t rlen = size - ORDO_WAL_HEADER_SIZE;
    if (ordo_wal_buf_reserve(&zbody, ZSTD_compressBound(rlen)) != 0)
        abort();
    size_t clen = ZSTD_compressCCtx(s_cctx, zbody.data, zbody.cap,
                                    data + ORDO_WAL_HEADER_SIZE, rlen, 1);
    if (ZSTD_isError(clen))
        abort();
    ordo_wal_hdr_t h;
    const char *why = NULL;
    if (ordo_wal_hdr_decode(data, &h, &why) != 0 && !why)
        abort();
    h = (ordo_wal_hdr_t){.version = ORDO_WAL_VERSION, .first = h.first, .count = h.count,
                         .clen = (uint32_t)clen, .rlen = (uint32_t)rlen};
    uint8_t hdr[ORDO_WAL_HEADER_SIZE];
    ordo_wal_hdr_encode(&h, hdr);
    h.crc = ordo_wal_frame_crc(hdr, zbody.data, clen);
    ordo_wal_hdr_encode(&h, hdr);
    ordo_wal_hdr_t back;
    if (ordo_wal_hdr_decode(hdr, &back, &why) != 0)
        return; /* count or first out of range for this body */
    if (back.clen != h.clen || back.rlen != h.rlen || back.crc != h.crc)
        abort();
    s_try(hdr, &back, zbody.data);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!s_dctx) {
        s_dctx = ordo_wal_dctx_new();
        s_cctx = ZSTD_createCCtx();
        if (!s_dctx || !s_cctx)
            abort();
    }
    if (size < ORDO_WAL_HEADER_SIZE || ordo_wal_hdr_is_zero(data))
        return 0;
    s_try_raw(data, size);
    ordo_wal_hdr_t h;
    const char *why = NULL;
    if (ordo_wal_hdr_decode(data, &h, &why) != 0) {
        if (!why || !*why)
            abort();
        return 0;
    }
    if (why)
        abort();
    s_check_header(&h);
    /* A body shorter than the header says is a torn tail: readers stop
     * before handing it to the frame checks. */
    if (size - ORDO_WAL_HEADER_SIZE < h.clen)
        return 0;
    /* Copy the body so ASan sees any read past clen. */
    uint8_t *body = malloc(h.clen);
    if (!body)
        abort();
    memcpy(body, data + ORDO_WAL_HEADER_SIZE, h.clen);
    uint8_t hdr[ORDO_WAL_HEADER_SIZE];
    memcpy(hdr, data, sizeof hdr);
    s_try(hdr, &h, body);
    uint32_t crc = ordo_wal_frame_crc(hdr, body, h.clen);
    if (crc != h.crc) {
        for (int i = 0; i < 4; i++)
            hdr[28 + i] = (uint8_t)(crc >> (8 * i));
        ordo_wal_hdr_t fixed;
        if (ordo_wal_hdr_decode(hdr, &fixed, &why) != 0 || fixed.crc != crc)
            abort();
        s_try(hdr, &fixed, body);
    }
    free(body);
    return 0;
}
