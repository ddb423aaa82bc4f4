/* The data folder's partition (see ordo_folder_partition.h). */
#include "ordo_folder_partition.h"

#include "ordo_partition.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int ordo_folder_partition_check(const char *data_dir, uint32_t k, uint32_t p, char *why,
                                size_t why_size)
{
    char path[PATH_MAX + 16], text[64];
    snprintf(path, sizeof path, "%s/PARTITION", data_dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t n = read(fd, text, sizeof text - 1);
        close(fd);
        text[n > 0 ? n : 0] = '\0';
        text[strcspn(text, "\n")] = '\0';
        uint32_t fk, fp;
        if (ordo_partition_parse(text, &fk, &fp) != 0) {
            snprintf(why, why_size, "%s does not name a partition (\"%s\"): remove it only if "
                     "you know which partition the folder holds", path, text);
            return -1;
        }
        if (fk != k || fp != p) {
            snprintf(why, why_size,
                     "the data folder %s holds partition %u/%u, not %u/%u: start it with "
                     "--partition %u/%u, or give this partition a folder of its own",
                     data_dir, fk, fp, k, p, fk, fp);
            return -1;
        }
        return 0;
    }
    if (errno != ENOENT) {
        snprintf(why, why_size, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    int len = snprintf(text, sizeof text, "%u/%u\n", k, p);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0 || write(fd, text, (size_t)len) != len || fsync(fd) != 0) {
        snprintf(why, why_size, "cannot write %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    /* The new name too: a folder started again after a power cut still
     * says which partition it holds. */
    int dir = open(data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0 || fsync(dir) != 0) {
        snprintf(why, why_size, "cannot sync the data folder %s: %s", data_dir, strerror(errno));
        if (dir >= 0)
            close(dir);
        return -1;
    }
    close(dir);
    return 0;
}
