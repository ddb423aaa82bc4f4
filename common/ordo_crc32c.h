/* CRC32C (Castagnoli), the checksum of log frames and snapshot files.
 * Uses the SSE4.2 crc32 instruction when the CPU has it, a table otherwise;
 * both give the same value. */
#ifndef ORDO_CRC32C_H
#define ORDO_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Extends `crc` (0 to start) with `len` bytes; returns the new CRC. */
uint32_t ordo_crc32c(uint32_t crc, const void *data, size_t len);

#endif
