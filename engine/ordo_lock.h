/* One engine per data folder: an exclusive lock (flock) on DATA/LOCK,
 * held while the engine runs. The file holds the holder's pid, so a
 * second engine can say who has the folder. The lock goes with its holder
 * (kill -9 included); the file stays, harmless. */
#ifndef ORDO_LOCK_H
#define ORDO_LOCK_H

#include <stddef.h>

/* Creates `data_dir` if missing and takes its lock. Returns an open file
 * descriptor to pass to ordo_lock_release, or -1 with `why` saying in a
 * sentence which folder is held by which process (or what failed). */
int ordo_lock_acquire(const char *data_dir, char *why, size_t why_size);

/* Lets the folder go; *fd becomes -1. */
void ordo_lock_release(int *fd);

#endif
