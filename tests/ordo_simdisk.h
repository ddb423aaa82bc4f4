/* A simulated disk for power-cut tests, behind the pluggable file I/O
 * table (common/ordo_io.h). Files are real files in a real folder, so the
 * engine reads what it wrote as it would from the page cache; the disk also
 * remembers, per file, every write and size change since that file's last
 * fdatasync/fsync, with the bytes it replaced.
 *
 * Seeded and deterministic. After `crash_after` operations that change
 * files (writes, syncs, size changes, creates, renames, unlinks), the power
 * goes: every later operation fails with EIO. ordo_simdisk_power_cut()
 * then leaves on the files what a real disk might have kept: the writes
 * synced before the cut, plus, chosen by the seed, for each file a prefix
 * of its unsynced writes (the write after it torn at 512-byte sectors: a
 * prefix kept, the rest zeroed or garbled), or any subset of them
 * (reordered). Creates, renames and unlinks are durable only once their
 * directory is fsync'ed: of those that are not at the cut, a prefix
 * survives (as a journaling file system commits them in order), the rest
 * are undone (an unlinked file comes back, a renamed one goes back, a
 * created one disappears with its data). The folder can then be opened as
 * after a reboot. */
#ifndef ORDO_SIMDISK_H
#define ORDO_SIMDISK_H

#include "ordo_io.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct ordo_simdisk ordo_simdisk_t;

typedef struct {
    uint64_t ops;         /* operations done before the cut */
    uint64_t unsynced;    /* writes and size changes not synced at the cut */
    uint64_t kept;        /* of those, kept whole */
    uint64_t torn;        /* kept in part (a sector prefix) */
    uint64_t garbled;     /* of the torn ones, the rest garbled rather than zeroed */
    uint64_t dropped;     /* undone */
    uint64_t dir_changes; /* creates, renames, unlinks not made durable by a
                           * directory fsync at the cut */
    uint64_t dir_undone;  /* of those, undone */
} ordo_simdisk_report_t;

/* crash_after 0: the power never goes (until ordo_simdisk_cut_now). */
ordo_simdisk_t *ordo_simdisk_new(uint64_t seed, uint64_t crash_after);
void ordo_simdisk_destroy(ordo_simdisk_t **disk);

/* The I/O table to give the engine; valid while the disk lives. */
const ordo_io_t *ordo_simdisk_io(ordo_simdisk_t *disk);

/* Whether the power has gone. Any thread. */
bool ordo_simdisk_crashed(const ordo_simdisk_t *disk);

/* Makes the power go now. */
void ordo_simdisk_cut_now(ordo_simdisk_t *disk);

/* Operations that changed files so far. */
uint64_t ordo_simdisk_ops(const ordo_simdisk_t *disk);

/* After the cut, once nothing uses the files: rewrites them as the disk
 * kept them (see above). 0, or -1 if a file could not be rewritten. */
int ordo_simdisk_power_cut(ordo_simdisk_t *disk, ordo_simdisk_report_t *report);

#endif
