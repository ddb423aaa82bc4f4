/* Helpers shared by the CUnit suites: a runner whose exit status is the
 * truth (CUnit's own return value is not the failure count), temporary
 * folders, and small file utilities. */
#ifndef ORDO_TEST_H
#define ORDO_TEST_H

#include <CUnit/Basic.h>
#include <stddef.h>

/* Runs every registered suite verbosely, cleans the registry, and returns
 * the process exit status: 0 only if nothing failed. */
int ordo_test_run(void);

/* Makes a fresh temporary directory; writes its path into `buf` (at least
 * 64 bytes). Returns `buf`, or NULL. */
char *ordo_test_tmpdir(char *buf, size_t size);

/* Removes a directory tree (best effort). */
void ordo_test_rm_rf(const char *path);

/* Size of a file in bytes, or -1. */
long long ordo_test_file_size(const char *path);

/* Flips bit `bit` of the byte at `offset` in `path`. 0 or -1. */
int ordo_test_flip_bit(const char *path, long long offset, int bit);

/* Truncates `path` to `size` bytes. 0 or -1. */
int ordo_test_truncate(const char *path, long long size);

/* Copies a file. 0 or -1. */
int ordo_test_copy_file(const char *from, const char *to);

#endif
