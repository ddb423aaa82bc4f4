/* libFuzzer target: ordo-admin's walk of a log (wal/ordo_wal_walk.c) over a
 * hostile segment file. The input is written as the one segment of a
 * folder made once per process, walked, and every record decoded as an
 * event, as `ordo-admin wal verify` does: never a crash, a leak or a
 * leaked descriptor. Whatever it reports, its counts must agree. */
#include "ordo_codec.h"
#include "ordo_log.h"
#include "ordo_wal.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char s_dir[64];
static ordo_event_t s_ev;

static void s_quiet(void *ctx, ordo_log_level_t level, const char *line)
{
    (void)ctx, (void)level, (void)line;
}

static int s_record(void *ctx, uint64_t position, const void *rec, size_t len)
{
    uint64_t *n = ctx;
    (*n)++;
    ordo_event_decode_record(rec, len, position, &s_ev);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!s_dir[0]) {
        ordo_log_set_sink(s_quiet, NULL);
        snprintf(s_dir, sizeof s_dir, "/tmp/ordo-fuzz-walk-XXXXXX");
        if (!mkdtemp(s_dir))
            abort();
    }
    char path[128];
    snprintf(path, sizeof path, "%s/00000000000000000001.wal", s_dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || (size && write(fd, data, size) != (ssize_t)size))
        abort();
    close(fd);
    uint64_t records = 0;
    ordo_wal_visitor_t v = {NULL, NULL, s_record};
    ordo_wal_walk_t w;
    if (ordo_wal_walk(s_dir, &v, &records, &w) == 0) {
        if (records != w.events || (w.events && w.last_position != w.first_position + w.events - 1))
            abort();
    }
    return 0;
}
