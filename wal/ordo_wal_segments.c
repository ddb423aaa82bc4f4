/* The segment files of a log folder, by name (see ordo_wal_internal.h). */
#include "ordo_error.h"
#include "ordo_log.h"
#include "ordo_wal_internal.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Parses "NNNNNNNNNNNNNNNNNNNN.wal" (20 digits). 1 = a segment name. */
int ordo_wal_parse_segment_name(const char *name, uint64_t *first)
{
    if (strlen(name) != 24 || strcmp(name + 20, ".wal") != 0)
        return 0;
    uint64_t v = 0;
    for (int i = 0; i < 20; i++) {
        if (name[i] < '0' || name[i] > '9')
            return 0;
        unsigned d = (unsigned)(name[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return 0;
        v = v * 10 + d;
    }
    *first = v;
    return 1;
}

static int s_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Lists segment names in `dir`, sorted. *names is owned by the caller. */
int ordo_wal_list_segments(const char *dir, uint64_t **names, size_t *count)
{
    int rc = 0;
    size_t n = 0, cap = 0;
    uint64_t *v = NULL;
    DIR *d = opendir(dir);
    if (!d) {
        char ebuf[128];
        int e = errno;
        ordo_log_error("wal", "cannot list %s: %s", dir, strerror_r(e, ebuf, sizeof ebuf));
        return ordo_err_from_errno(e);
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        uint64_t first;
        if (!ordo_wal_parse_segment_name(de->d_name, &first))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            uint64_t *p = realloc(v, cap * sizeof *p);
            if (!p) {
                rc = ORDO_ERR_NOMEM;
                goto out;
            }
            v = p;
        }
        v[n++] = first;
    }
    if (n > 1)
        qsort(v, n, sizeof *v, s_cmp_u64);
out:
    closedir(d);
    if (rc) {
        free(v);
        return rc;
    }
    *names = v;
    *count = n;
    return 0;
}

/* Highest last position of valid frames above `after` in segment `first`. */
