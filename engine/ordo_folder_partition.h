/* Which partition a data folder holds (docs/cluster.md): DATA/PARTITION
 * says "K/P" from the first start with --nats on, so that a folder is
 * never started as another partition's (its log would be published to
 * the wrong stream) or with another partition count. */
#ifndef ORDO_FOLDER_PARTITION_H
#define ORDO_FOLDER_PARTITION_H

#include <stddef.h>
#include <stdint.h>

/* Writes the file if missing (and syncs it), else checks it names
 * partition k of p. 0, or -1 with a sentence in why. Call with the
 * folder's lock held. */
int ordo_folder_partition_check(const char *data_dir, uint32_t k, uint32_t p, char *why,
                                size_t why_size);

#endif
