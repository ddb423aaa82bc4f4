/* The on-disk frame of the write-ahead log: header encode/decode, the raw
 * body (varint-prefixed records) and its zstd compression. Shared by the
 * writer, recovery and readers so there is one definition of a valid frame.
 * The byte-exact format is described at the top of ordo_wal_format.c.
 * Internal to wal/: not part of the public API. */
#ifndef ORDO_WAL_FORMAT_H
#define ORDO_WAL_FORMAT_H

#include "ordo_wal.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zstd.h>

#define ORDO_WAL_MAGIC "OWAL"
#define ORDO_WAL_VERSION 1
#define ORDO_WAL_HEADER_SIZE 32
/* Decompression never needs a window bigger than a whole frame body. */
#define ORDO_WAL_WINDOW_LOG_MAX 27
/* Recovery and readers keep an index entry about every this many bytes. */
#define ORDO_WAL_INDEX_EVERY (64u * 1024)

typedef struct {
    uint16_t version;
    uint16_t flags;
    uint64_t first; /* position of the first record in the frame */
    uint32_t count; /* records in the frame, >= 1 */
    uint32_t clen;  /* compressed body bytes following the header */
    uint32_t rlen;  /* raw body bytes after decompression */
    uint32_t crc;   /* CRC32C of header (crc zeroed) + compressed body */
} ordo_wal_hdr_t;

/* A growable byte buffer; `data` is owned by whoever holds the struct. */
typedef struct {
    uint8_t *data;
    size_t cap;
} ordo_wal_buf_t;

/* Makes sure `buf` holds at least `size` bytes. 0 or ORDO_ERR_NOMEM. */
int ordo_wal_buf_reserve(ordo_wal_buf_t *buf, size_t size);
void ordo_wal_buf_free(ordo_wal_buf_t *buf);

/* Writes `h` (magic included) into 32 bytes, crc field as given. */
void ordo_wal_hdr_encode(const ordo_wal_hdr_t *h, uint8_t out[ORDO_WAL_HEADER_SIZE]);

/* Parses and bounds-checks 32 header bytes. Returns 0, or ORDO_ERR_CORRUPT
 * with *why set to a static reason. Checks magic, version, flags, count,
 * lengths and position overflow; not the checksum. */
int ordo_wal_hdr_decode(const uint8_t in[ORDO_WAL_HEADER_SIZE], ordo_wal_hdr_t *h,
                        const char **why);

/* A segment's identity frame: its first 48 bytes, naming the log it
 * belongs to (a random id made when the log was created). A frame header
 * with flags ORDO_WAL_FLAG_LOG_ID, count 0, both lengths 16, the
 * segment's first position, and the 16-byte id as its (raw) body. */
#define ORDO_WAL_FLAG_LOG_ID 0x0001
/* A chained data frame's body starts with a zstd skippable frame holding
 * the CRC32C of the log's previous data frame: magic 0x184D2A50, length
 * 4, the CRC (12 bytes, little-endian), then the zstd data. zstd skips it,
 * so an engine from before chaining reads these frames as it always did. */
#define ORDO_WAL_CHAIN_MAGIC 0x184D2A50u
#define ORDO_WAL_CHAIN_SIZE 12
#define ORDO_WAL_LOG_ID_SIZE 16
#define ORDO_WAL_ID_FRAME_SIZE (ORDO_WAL_HEADER_SIZE + ORDO_WAL_LOG_ID_SIZE)

void ordo_wal_id_frame_encode(uint64_t first, const uint8_t id[ORDO_WAL_LOG_ID_SIZE],
                              uint8_t out[ORDO_WAL_ID_FRAME_SIZE]);

/* Reads the start of a segment whose first position is `first` (`len`
 * bytes at `in`): 1 = an identity frame (its id into `id`), 0 = none (a
 * data frame, zeros: a segment from before identities, or an empty one),
 * ORDO_ERR_CORRUPT = one that does not check out (*why says how). */
int ordo_wal_id_frame_decode(const uint8_t *in, size_t len, uint64_t first,
                             uint8_t id[ORDO_WAL_LOG_ID_SIZE], const char **why);

/* True if all 32 bytes are zero: the end-of-data marker. */
bool ordo_wal_hdr_is_zero(const uint8_t in[ORDO_WAL_HEADER_SIZE]);

/* CRC32C over the header with its crc field zeroed, then the body. */
uint32_t ordo_wal_frame_crc(const uint8_t hdr[ORDO_WAL_HEADER_SIZE], const void *body, size_t clen);

/* Builds a whole frame (header + body) for `count` records starting at
 * `first` into `out`, chained to the previous data frame's CRC32C
 * `prev_crc`; *frame_len gets its size and *crc_out (may be NULL) its own
 * CRC32C, which the next frame chains to. `raw` is a scratch buffer.
 * Returns 0, ORDO_ERR_INVALID, ORDO_ERR_TOO_BIG (raw body above
 * ORDO_WAL_FRAME_RAW_MAX) or ORDO_ERR_NOMEM. */
int ordo_wal_frame_encode(ZSTD_CCtx *cctx, int level, uint64_t first, const ordo_wal_rec_t *recs,
                          size_t count, uint32_t prev_crc, ordo_wal_buf_t *raw,
                          ordo_wal_buf_t *out, size_t *frame_len, uint32_t *crc_out);

/* Whether the frame whose body (h->clen bytes) is `body` is chained, and
 * if so the CRC32C it names as its predecessor's into *prev. */
bool ordo_wal_frame_prev(const ordo_wal_hdr_t *h, const void *body, uint32_t *prev);

/* Checks the body of a frame whose header `hdr` decoded to `h`: checksum,
 * decompression to exactly h->rlen bytes into `raw`, and that exactly
 * h->count records fill it. Returns 0, ORDO_ERR_CORRUPT (*why set) or
 * ORDO_ERR_NOMEM. */
int ordo_wal_frame_decode(ZSTD_DCtx *dctx, const uint8_t hdr[ORDO_WAL_HEADER_SIZE],
                          const ordo_wal_hdr_t *h, const void *body, ordo_wal_buf_t *raw,
                          const char **why);

/* Reads the record at *off of a raw body already checked by
 * ordo_wal_frame_decode and advances *off. 1 = record, 0 = end. */
int ordo_wal_body_next(const uint8_t *raw, size_t len, size_t *off, const void **data,
                       size_t *rec_len);

/* A decompression context with the window capped. NULL when out of memory. */
ZSTD_DCtx *ordo_wal_dctx_new(void);

#endif
