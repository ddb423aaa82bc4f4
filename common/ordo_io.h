/* Pluggable file I/O for the log and snapshots. Everything that touches
 * durable files goes through one table of functions, so tests can swap in
 * a disk that fails, fills up or loses power (Redis rio.h, SQLite's VFS).
 * Each function behaves like its POSIX namesake: -1 with errno on failure. */
#ifndef ORDO_IO_H
#define ORDO_IO_H

#include <stddef.h>
#include <sys/types.h>

typedef struct ordo_io ordo_io_t;
struct ordo_io {
    void *ctx; /* passed back to every function; owned by whoever built the table */
    int (*open)(void *ctx, const char *path, int flags, mode_t mode);
    int (*close)(void *ctx, int fd);
    ssize_t (*pread)(void *ctx, int fd, void *buf, size_t n, off_t off);
    ssize_t (*pwrite)(void *ctx, int fd, const void *buf, size_t n, off_t off);
    int (*fdatasync)(void *ctx, int fd);
    int (*fsync)(void *ctx, int fd);
    int (*ftruncate)(void *ctx, int fd, off_t len);
    /* Reserves [off, off+len) and extends the file size to at least off+len
     * (new bytes read as zeros; never shrinks). May fail with EOPNOTSUPP,
     * which callers treat as "not preallocated": files then grow by writes. */
    int (*fallocate)(void *ctx, int fd, off_t off, off_t len);
    int (*rename)(void *ctx, const char *from, const char *to);
    int (*unlink)(void *ctx, const char *path);
    /* Size of an open file in bytes, or -1. */
    off_t (*size)(void *ctx, int fd);
};

/* The real thing: POSIX calls, retried on EINTR. Static, never freed. */
const ordo_io_t *ordo_io_posix(void);

/* Writes all `n` bytes at `off`, looping on short writes. 0 or -1/errno. */
int ordo_io_pwrite_all(const ordo_io_t *io, int fd, const void *buf, size_t n, off_t off);

/* Reads exactly `n` bytes at `off`. Returns 0, or -1 with errno (EIO set
 * by us when the file ends first). */
int ordo_io_pread_all(const ordo_io_t *io, int fd, void *buf, size_t n, off_t off);

/* fsyncs a directory so that creates, renames and unlinks in it are durable. */
int ordo_io_fsync_dir(const ordo_io_t *io, const char *dir);

/* Creates `dir` and its missing parents (mode 0755). 0 or -1/errno. */
int ordo_mkdir_p(const char *dir);

#endif
