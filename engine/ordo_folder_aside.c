/* A data folder's log, snapshots and order index moved aside whole (see
 * ordo_folder_aside.h). */
#include "ordo_folder_aside.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int ordo_folder_set_aside(const char *data_dir, char *aside, size_t aside_size, char *why,
                          size_t why_size)
{
    char stamp[32], base[PATH_MAX], from[PATH_MAX + 32], to[PATH_MAX + 32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
    int n = snprintf(base, sizeof base, "%s/diverged-%s-%ld", data_dir, stamp, (long)getpid());
    if (n < 0 || (size_t)n + 16 >= sizeof base || (size_t)n + 16 >= aside_size) {
        snprintf(why, why_size, "the data folder's path is too long: %s", data_dir);
        return -1;
    }
    snprintf(aside, aside_size, "%s", base);
    for (int k = 2; mkdir(aside, 0755) != 0; k++) {
        if (errno != EEXIST || k > 1000) {
            snprintf(why, why_size, "cannot create %s: %s", aside, strerror(errno));
            return -1;
        }
        snprintf(aside, aside_size, "%s-%d", base, k);
    }
    static const char *const parts[] = {"snapshots", "index", "wal"};
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        snprintf(from, sizeof from, "%s/%s", data_dir, parts[i]);
        snprintf(to, sizeof to, "%s/%s", aside, parts[i]);
        if (rename(from, to) != 0 && errno != ENOENT) {
            snprintf(why, why_size, "cannot move %s to %s: %s", from, to, strerror(errno));
            return -1;
        }
    }
    const char *const dirs[] = {data_dir, aside};
    for (size_t i = 0; i < 2; i++) {
        int fd = open(dirs[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        int rc = fd >= 0 ? fsync(fd) : -1;
        int e = errno;
        if (fd >= 0)
            close(fd);
        if (rc != 0) {
            snprintf(why, why_size, "cannot sync %s: %s", dirs[i], strerror(e));
            return -1;
        }
    }
    return 0;
}
