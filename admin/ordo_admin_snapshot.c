/* ordo-admin's `snapshot info` and `snapshot verify`: every snapshot file
 * of the data folder opened (size, checksum, structure: the snapshot
 * module's checks) and, for verify, every order in it decoded. */
#include "ordo_admin.h"

#include "ordo_json.h"

#include "ordo_codec.h"
#include "ordo_error.h"
#include "ordo_log.h"
#include "ordo_snapshot.h"

#include <dirent.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* The last WARN/ERROR line of the libraries: why a snapshot was refused. */
static char s_why[512];

static void s_catch(void *ctx, ordo_log_level_t level, const char *line)
{
    (void)ctx;
    if (level >= ORDO_LOG_WARN)
        snprintf(s_why, sizeof s_why, "%s", line);
}

/* What one file holds, or why it is refused. */
typedef struct {
    char name[256];
    uint64_t size;
    bool valid;
    uint64_t position, records, orders, events;
    char why[512];
} s_file_t;

static int s_cmp_name(const void *a, const void *b)
{
    return strcmp(((const s_file_t *)a)->name, ((const s_file_t *)b)->name);
}

/* Opens `path` and, with decode, reads every record as an order. */
static void s_check(const char *path, bool decode, s_file_t *f)
{
    struct stat st;
    f->size = stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
    s_why[0] = '\0';
    ordo_snapshot_t *s = NULL;
    int rc = ordo_snapshot_open(path, NULL, &s);
    if (rc != 0) {
        snprintf(f->why, sizeof f->why, "%s", *s_why ? s_why : ordo_strerror(rc));
        return;
    }
    f->position = ordo_snapshot_position(s);
    f->records = ordo_snapshot_record_count(s);
    const void *rec;
    size_t len;
    ordo_order_t order;
    memset(&order, 0, sizeof order);
    uint64_t i = 0;
    while (decode && (rc = ordo_snapshot_next(s, &rec, &len)) == 1) {
        i++;
        if (ordo_order_decode_snapshot(rec, len, &order) != 0) {
            snprintf(f->why, sizeof f->why, "record %" PRIu64 " is not an order", i);
            ordo_order_clear(&order);
            ordo_snapshot_destroy(&s);
            return;
        }
        f->orders++;
        f->events += order.version;
        ordo_order_clear(&order);
    }
    if (decode && rc < 0) {
        snprintf(f->why, sizeof f->why, "%s", *s_why ? s_why : ordo_strerror(rc));
        ordo_snapshot_destroy(&s);
        return;
    }
    f->valid = true;
    ordo_snapshot_destroy(&s);
}

/* The snapshot files of the folder (or the one file), checked. */
static int s_scan(const admin_opts_t *o, const char *file, bool decode, s_file_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    ordo_log_set_sink(s_catch, NULL);
    if (file) {
        s_file_t *f = calloc(1, sizeof *f);
        if (!f)
            return ADMIN_CANNOT;
        snprintf(f->name, sizeof f->name, "%s", file);
        s_check(file, decode, f);
        *out = f;
        *n = 1;
        return ADMIN_OK;
    }
    char dir[4200];
    admin_snapshot_dir(o, dir, sizeof dir);
    DIR *d = opendir(dir);
    if (!d) {
        admin_error("%s cannot be read (is --data-dir right?)", dir);
        return ADMIN_CANNOT;
    }
    size_t cap = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        if (len < 6 || strcmp(de->d_name + len - 6, ".osnap") != 0 || len >= 256)
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 8;
            s_file_t *p = realloc(*out, cap * sizeof *p);
            if (!p) {
                closedir(d);
                return ADMIN_CANNOT;
            }
            *out = p;
        }
        s_file_t *f = &(*out)[(*n)++];
        memset(f, 0, sizeof *f);
        snprintf(f->name, sizeof f->name, "%s", de->d_name);
    }
    closedir(d);
    if (*n > 1)
        qsort(*out, *n, sizeof **out, s_cmp_name);
    for (size_t i = 0; i < *n; i++) {
        char path[4500];
        snprintf(path, sizeof path, "%s/%s", dir, (*out)[i].name);
        s_check(path, decode, &(*out)[i]);
    }
    return ADMIN_OK;
}

static int s_report(const admin_opts_t *o, const s_file_t *files, size_t n, bool decoded)
{
    char b1[32], n1[32], n2[32], n3[32];
    size_t newest = n;
    bool bad = false;
    for (size_t i = 0; i < n; i++) {
        if (files[i].valid)
            newest = i; /* names sort by position */
        else
            bad = true;
    }
    if (o->json) {
        printf("{\"snapshots\":[");
        for (size_t i = 0; i < n; i++) {
            const s_file_t *f = &files[i];
            printf("%s{\"file\":", i ? "," : "");
            ordo_json_string(stdout, f->name, strlen(f->name));
            printf(",\"bytes\":%" PRIu64 ",\"valid\":%s", f->size, f->valid ? "true" : "false");
            if (f->valid)
                printf(",\"position\":%" PRIu64 ",\"orders\":%" PRIu64, f->position,
                       f->records);
            if (f->valid && decoded)
                printf(",\"events\":%" PRIu64, f->events);
            if (!f->valid) {
                printf(",\"why\":");
                ordo_json_string(stdout, f->why, strlen(f->why));
            }
            printf(",\"newest\":%s}", i == newest ? "true" : "false");
        }
        printf("],\"state\":\"%s\"}\n", bad ? "damaged" : "good");
    } else {
        if (n == 0)
            printf("no snapshot (the engine starts from the log alone)\n");
        for (size_t i = 0; i < n; i++) {
            const s_file_t *f = &files[i];
            if (f->valid)
                printf("%s  position %s, %s orders%s%s%s, %s%s\n", f->name,
                       admin_count(f->position, n1), admin_count(f->records, n2),
                       decoded ? " (" : "", decoded ? admin_count(f->events, n3) : "",
                       decoded ? " events)" : "", admin_bytes(f->size, b1),
                       i == newest ? "  <- newest valid: the engine starts from it" : "");
            else
                printf("%s  INVALID: %s\n", f->name, f->why);
        }
    }
    return bad ? ADMIN_DAMAGED : ADMIN_OK;
}

int admin_snapshot_info(const admin_opts_t *o)
{
    s_file_t *files;
    size_t n;
    int rc = s_scan(o, NULL, false, &files, &n);
    if (rc == ADMIN_OK)
        rc = s_report(o, files, n, false);
    free(files);
    return rc;
}

int admin_snapshot_verify(const admin_opts_t *o, const char *file)
{
    s_file_t *files;
    size_t n;
    int rc = s_scan(o, file, true, &files, &n);
    if (rc == ADMIN_OK)
        rc = s_report(o, files, n, true);
    free(files);
    return rc;
}
