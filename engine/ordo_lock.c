/* The data folder's lock (see ordo_lock.h). */
#include "ordo_lock.h"

#include "ordo_io.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

int ordo_lock_acquire(const char *data_dir, char *why, size_t why_size)
{
    char path[PATH_MAX + 8];
    snprintf(path, sizeof path, "%s/LOCK", data_dir);
    if (ordo_mkdir_p(data_dir) != 0) {
        snprintf(why, why_size, "cannot create the data folder %s: %s", data_dir, strerror(errno));
        return -1;
    }
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(why, why_size, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int err = errno;
        char text[32] = "";
        ssize_t n = pread(fd, text, sizeof text - 1, 0);
        text[n > 0 ? n : 0] = '\0';
        text[strcspn(text, "\n")] = '\0';
        close(fd);
        if (err == EWOULDBLOCK)
            snprintf(why, why_size,
                     "the data folder %s is in use by another engine (process %s); one engine "
                     "per folder",
                     data_dir, text[0] ? text : "unknown");
        else
            snprintf(why, why_size, "cannot lock %s: %s", path, strerror(err));
        return -1;
    }
    char text[32];
    int len = snprintf(text, sizeof text, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, text, (size_t)len, 0) != len) {
        snprintf(why, why_size, "cannot write %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

void ordo_lock_release(int *fd)
{
    if (fd && *fd >= 0) {
        close(*fd); /* closing drops the flock */
        *fd = -1;
    }
}
