/* The POSIX implementation of ordo_io_t and helpers built on any table. */
#include "ordo_io.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int s_open(void *ctx, const char *path, int flags, mode_t mode)
{
    (void)ctx;
    int fd;
    do
        fd = open(path, flags | O_CLOEXEC, mode);
    while (fd < 0 && errno == EINTR);
    return fd;
}

static int s_close(void *ctx, int fd)
{
    (void)ctx;
    return close(fd);
}

static ssize_t s_pread(void *ctx, int fd, void *buf, size_t n, off_t off)
{
    (void)ctx;
    ssize_t r;
    do
        r = pread(fd, buf, n, off);
    while (r < 0 && errno == EINTR);
    return r;
}

static ssize_t s_pwrite(void *ctx, int fd, const void *buf, size_t n, off_t off)
{
    (void)ctx;
    ssize_t r;
    do
        r = pwrite(fd, buf, n, off);
    while (r < 0 && errno == EINTR);
    return r;
}

static int s_fdatasync(void *ctx, int fd)
{
    (void)ctx;
    return fdatasync(fd);
}

static int s_fsync(void *ctx, int fd)
{
    (void)ctx;
    return fsync(fd);
}

static int s_ftruncate(void *ctx, int fd, off_t len)
{
    (void)ctx;
    int r;
    do
        r = ftruncate(fd, len);
    while (r < 0 && errno == EINTR);
    return r;
}

static int s_fallocate(void *ctx, int fd, off_t off, off_t len)
{
    (void)ctx;
    /* Mode 0: reserve and extend the size, so that writes into the range
     * leave the size alone and their fdatasync has no metadata to write. */
    int r;
    do
        r = fallocate(fd, 0, off, len);
    while (r < 0 && errno == EINTR);
    return r;
}

static int s_rename(void *ctx, const char *from, const char *to)
{
    (void)ctx;
    return rename(from, to);
}

static int s_unlink(void *ctx, const char *path)
{
    (void)ctx;
    return unlink(path);
}

static off_t s_size(void *ctx, int fd)
{
    (void)ctx;
    struct stat st;
    return fstat(fd, &st) == 0 ? st.st_size : -1;
}

const ordo_io_t *ordo_io_posix(void)
{
    static const ordo_io_t posix = {
        .ctx = NULL,
        .open = s_open,
        .close = s_close,
        .pread = s_pread,
        .pwrite = s_pwrite,
        .fdatasync = s_fdatasync,
        .fsync = s_fsync,
        .ftruncate = s_ftruncate,
        .fallocate = s_fallocate,
        .rename = s_rename,
        .unlink = s_unlink,
        .size = s_size,
    };
    return &posix;
}

int ordo_io_pwrite_all(const ordo_io_t *io, int fd, const void *buf, size_t n, off_t off)
{
    const char *p = buf;
    while (n > 0) {
        ssize_t w = io->pwrite(io->ctx, fd, p, n, off);
        if (w < 0)
            return -1;
        if (w == 0) {
            errno = EIO;
            return -1;
        }
        p += w;
        n -= (size_t)w;
        off += w;
    }
    return 0;
}

int ordo_io_pread_all(const ordo_io_t *io, int fd, void *buf, size_t n, off_t off)
{
    char *p = buf;
    while (n > 0) {
        ssize_t r = io->pread(io->ctx, fd, p, n, off);
        if (r < 0)
            return -1;
        if (r == 0) {
            errno = EIO;
            return -1;
        }
        p += r;
        n -= (size_t)r;
        off += r;
    }
    return 0;
}

int ordo_io_fsync_dir(const ordo_io_t *io, const char *dir)
{
    int fd = io->open(io->ctx, dir, O_RDONLY | O_DIRECTORY, 0);
    if (fd < 0)
        return -1;
    int rc = io->fsync(io->ctx, fd);
    int saved = errno;
    io->close(io->ctx, fd);
    errno = saved;
    return rc;
}

int ordo_mkdir_p(const char *dir)
{
    char path[PATH_MAX];
    size_t len = strlen(dir);
    if (len == 0 || len >= sizeof path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(path, dir, len + 1);
    for (size_t i = 1; i <= len; i++) {
        if (path[i] != '/' && path[i] != '\0')
            continue;
        char saved = path[i];
        path[i] = '\0';
        if (mkdir(path, 0755) != 0 && errno != EEXIST)
            return -1;
        path[i] = saved;
    }
    struct stat st;
    if (stat(dir, &st) != 0)
        return -1;
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    return 0;
}
