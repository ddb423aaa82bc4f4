/* A data folder's log, snapshots and order index moved aside whole, into
 * DATA/diverged-<UTC time>-<pid>: what a standby does with a deposed
 * owner's log that differs from its partition's stream (docs/cluster.md).
 * The folder set aside is kept for inspection (ordo-admin reads it) and
 * never deleted. */
#ifndef ORDO_FOLDER_ASIDE_H
#define ORDO_FOLDER_ASIDE_H

#include <stddef.h>

/* Makes a new folder DATA/diverged-<UTC time>-<pid> (-2, -3, ... after
 * it should that exist) and moves DATA/snapshots, DATA/index and DATA/wal
 * into it (the log last: should a move fail, the log stays where it was;
 * a part that does not exist is skipped), then syncs both folders. Its
 * path goes into `aside`. Call with the folder's lock held and nothing in
 * it open. 0, or -1 with a sentence in why. */
int ordo_folder_set_aside(const char *data_dir, char *aside, size_t aside_size, char *why,
                          size_t why_size);

#endif
