/* What the writer (ordo_wal.c) shares with readers (ordo_wal_reader.c):
 * the in-memory segment index, looked up under the log's mutex. Internal to
 * wal/. */
#ifndef ORDO_WAL_INTERNAL_H
#define ORDO_WAL_INTERNAL_H

#include "ordo_wal.h"

#include <stddef.h>
#include <stdint.h>

/* Path of the segment whose first position is `first`. */
void ordo_wal_segment_path(const ordo_wal_t *wal, uint64_t first, char *buf, size_t size);

/* First position the log holds (its first segment's name). */
uint64_t ordo_wal_first_position(ordo_wal_t *wal);

/* For `pos` <= ordo_wal_head(): the segment holding it (*seg_first) and the
 * offset of a frame in that segment starting at or before `pos`
 * (*off, whose first position is *off_first), from the sparse index.
 * Returns 0 or ORDO_ERR_NOT_FOUND (pos before the log's first position). */
int ordo_wal_locate(ordo_wal_t *wal, uint64_t pos, uint64_t *seg_first, uint64_t *off,
                    uint64_t *off_first);

/* Parses a segment's file name, "NNNNNNNNNNNNNNNNNNNN.wal" (20 digits, its
 * first position). 1 = a segment name (*first set), 0 = not one. */
int ordo_wal_parse_segment_name(const char *name, uint64_t *first);

/* The first positions of the segment files in `dir`, ascending, into
 * *names (malloc'd; the caller frees) and *count. 0, or an ORDO_ERR_*
 * (logged) when the folder cannot be read. */
int ordo_wal_list_segments(const char *dir, uint64_t **names, size_t *count);

#endif
