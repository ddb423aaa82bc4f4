/* Private to snapshot/: constants and byte helpers shared by the writer and
 * the reader. The format itself is documented at the top of
 * ordo_snapshot_writer.c; change both together. */
#ifndef ORDO_SNAPSHOT_FORMAT_H
#define ORDO_SNAPSHOT_FORMAT_H

#include <stdint.h>
#include <string.h>

#define SNAP_MAGIC "OSNP"
#define SNAP_VERSION 1
#define SNAP_HEADER_SIZE 48
#define SNAP_OFF_VERSION 4
#define SNAP_OFF_FLAGS 6
#define SNAP_OFF_POSITION 8
#define SNAP_OFF_COUNT 16
#define SNAP_OFF_RAW_LEN 24
#define SNAP_OFF_COMP_LEN 32
#define SNAP_OFF_CRC 40
#define SNAP_OFF_RESERVED 44

/* zstd window: the writer sets it, the reader refuses anything larger, so
 * decompression memory is bounded whatever the file says. */
#define SNAP_WINDOW_LOG 20

/* A length <= 16 MiB takes at most 4 LEB128 bytes; 5 leaves room to report
 * an oversized length instead of a malformed one. */
#define SNAP_VARINT_MAX 5

/* "snapshot-" + 20 digits + ".osnap" (+ ".tmp"), e.g.
 * snapshot-00000000000000000042.osnap */
#define SNAP_PREFIX "snapshot-"
#define SNAP_SUFFIX ".osnap"
#define SNAP_TMP_SUFFIX ".osnap.tmp"
#define SNAP_NAME_FMT SNAP_PREFIX "%020llu" SNAP_SUFFIX
#define SNAP_TMP_NAME_FMT SNAP_PREFIX "%020llu" SNAP_TMP_SUFFIX
#define SNAP_DIGITS 20

static inline void snap_put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static inline void snap_put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline void snap_put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint16_t snap_get16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static inline uint32_t snap_get32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static inline uint64_t snap_get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* "dir/snapshot-<position>.osnap" (or the temp name), malloc'd; NULL if
 * out of memory. Defined in ordo_snapshot_writer.c. */
char *ordo_snapshot_join(const char *dir, uint64_t position, int is_tmp);

#endif
