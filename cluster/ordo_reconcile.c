/* The local log and the partition's stream made to agree at start (see
 * ordo_reconcile.h). */
#include "ordo_reconcile.h"

#include "ordo_clock.h"
#include "ordo_error.h"
#include "ordo_log.h"
#include "ordo_wal.h"
#include "ordo_wal_format.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A frame of the local log: where it is. */
typedef struct {
    char segment[32];
    uint64_t offset, first;
    uint32_t count, clen;
} s_frame_t;

typedef struct {
    uint64_t from;  /* frames ending at or after this position are kept */
    s_frame_t *frames;
    size_t n, cap;
    bool nomem;
} s_list_t;

static int s_on_frame(void *ctx, const ordo_wal_frame_info_t *f)
{
    s_list_t *l = ctx;
    if (f->first + f->count - 1 < l->from)
        return 0;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 256;
        s_frame_t *p = realloc(l->frames, cap * sizeof *p);
        if (!p) {
            l->nomem = true;
            return ORDO_ERR_NOMEM;
        }
        l->frames = p;
        l->cap = cap;
    }
    s_frame_t *fr = &l->frames[l->n++];
    snprintf(fr->segment, sizeof fr->segment, "%s", f->segment);
    fr->offset = f->offset;
    fr->first = f->first;
    fr->count = f->count;
    fr->clen = f->clen;
    return 0;
}

/* The frame's bytes from its segment file into *buf (grown). */
static int s_read_frame(const char *wal_dir, const s_frame_t *f, uint8_t **buf, size_t *cap,
                        size_t *len, char *err, size_t errsize)
{
    size_t n = ORDO_WAL_HEADER_SIZE + (size_t)f->clen;
    if (n > *cap) {
        uint8_t *p = realloc(*buf, n);
        if (!p) {
            snprintf(err, errsize, "out of memory reading a frame of %zu bytes", n);
            return -1;
        }
        *buf = p;
        *cap = n;
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", wal_dir, f->segment);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t got = fd < 0 ? -1 : pread(fd, *buf, n, (off_t)f->offset);
    if (fd >= 0)
        close(fd);
    if (got != (ssize_t)n) {
        snprintf(err, errsize, "cannot read the frame at position %" PRIu64 " from %s", f->first,
                 path);
        return -1;
    }
    *len = n;
    return 0;
}

/* Lists the log's frames from l->from on (l->frames, freed on failure). 0,
 * or -1 with err. */
static int s_list_frames(const char *wal_dir, s_list_t *l, char *err, size_t errsize)
{
    ordo_wal_walk_t walk;
    int rc = ordo_wal_walk(wal_dir, &(ordo_wal_visitor_t){.frame = s_on_frame}, l, &walk);
    if (rc == 0 && !walk.damaged)
        return 0;
    snprintf(err, errsize, "reading the log to compare it with the stream: %s",
             rc ? ordo_strerror(rc) : walk.fault);
    free(l->frames);
    l->frames = NULL;
    return -1;
}

/* Whether the log's frame `f` is, byte for byte, the stream's frame ending
 * where it ends. 1 yes, 0 no, -1 with err. */
static int s_same_in_stream(ordo_replicator_t *r, const char *wal_dir, const s_frame_t *f,
                            uint8_t **mine, size_t *cap, char *err, size_t errsize)
{
    size_t mine_len, theirs_len;
    uint8_t *theirs = NULL;
    if (s_read_frame(wal_dir, f, mine, cap, &mine_len, err, errsize) != 0)
        return -1;
    int got = ordo_replicator_frame_ending_at(r, f->first + f->count - 1, &theirs, &theirs_len,
                                              NULL, err, errsize);
    int same = got < 0 ? -1
                       : got == 1 && theirs_len == mine_len && !memcmp(theirs, *mine, mine_len);
    free(theirs);
    return same;
}

int ordo_reconcile(ordo_replicator_t *r, const char *wal_dir, uint64_t head, char *err,
                   size_t errsize)
{
    ordo_replicator_end_t end = ordo_replicator_end(r);
    if (end.last_position > head) {
        snprintf(err, errsize,
                 "the stream holds positions up to %" PRIu64 " and this log only up to %" PRIu64
                 ": the stream has a history this engine's data folder does not (another "
                 "engine wrote it). Start from a copy of that engine's data folder, or give "
                 "this engine a stream of its own",
                 end.last_position, head);
        return -1;
    }
    if (end.last_position == head && head == 0)
        return 0;
    /* The frames from the one the stream ends with (to compare) on. */
    s_list_t l = {.from = end.last_position ? end.last_position : 1};
    if (s_list_frames(wal_dir, &l, err, errsize) != 0)
        return -1;
    uint8_t *buf = NULL;
    size_t cap = 0, len = 0, i = 0;
    int result = -1;
    if (end.last_position > 0) {
        if (l.n == 0 || l.frames[0].first + l.frames[0].count - 1 != end.last_position) {
            snprintf(err, errsize,
                     "the stream's last frame ends at position %" PRIu64
                     ", where no frame of this log ends: the histories differ",
                     end.last_position);
            result = ORDO_RECONCILE_DIFFER;
            goto out;
        }
        if (s_read_frame(wal_dir, &l.frames[0], &buf, &cap, &len, err, errsize) != 0)
            goto out;
        if (!ordo_replicator_end_is(r, buf, len)) {
            snprintf(err, errsize,
                     "the stream's last frame (positions %" PRIu64 "..%" PRIu64
                     ") differs from this log's: the histories differ",
                     l.frames[0].first, end.last_position);
            result = ORDO_RECONCILE_DIFFER;
            goto out;
        }
        i = 1;
    }
    if (i < l.n)
        ordo_log_info("replicator",
                      "the stream ends at position %" PRIu64 ", this log at %" PRIu64
                      ": publishing %zu frames",
                      end.last_position, head, l.n - i);
    uint64_t last_note = ordo_mono_ns();
    for (size_t k = i; k < l.n; k++) {
        const s_frame_t *f = &l.frames[k];
        if (s_read_frame(wal_dir, f, &buf, &cap, &len, err, errsize) != 0)
            goto out;
        char why[512];
        if (ordo_replicator_publish(r, buf, len, f->first, f->count, why, sizeof why) != 0) {
            snprintf(err, errsize, "publishing the frame at position %" PRIu64 ": %s", f->first,
                     why);
            goto out;
        }
        if (ordo_mono_ns() - last_note > 5000000000ull) {
            last_note = ordo_mono_ns();
            ordo_log_info("replicator", "published up to position %" PRIu64 " of %" PRIu64,
                          f->first + f->count - 1, head);
        }
    }
    if (ordo_replicator_end(r).last_position != head) {
        snprintf(err, errsize, "the log's frames end at position %" PRIu64 ", its head is %" PRIu64,
                 ordo_replicator_end(r).last_position, head);
        goto out;
    }
    result = 0;
out:
    free(buf);
    free(l.frames);
    return result;
}

int ordo_reconcile_tail_only(ordo_replicator_t *r, const char *wal_dir, char *err,
                             size_t errsize)
{
    s_list_t l = {.from = 1};
    if (s_list_frames(wal_dir, &l, err, errsize) != 0)
        return -1;
    uint8_t *mine = NULL;
    size_t cap = 0;
    int result = l.n == 0 ? 0
                          : s_same_in_stream(r, wal_dir, &l.frames[l.n - 1], &mine, &cap, err,
                                             errsize);
    if (result == 1) {
        /* Its last frame is the stream's own: nothing differs (a frame
         * after it that would not follow is damaged, not another owner's). */
        snprintf(err, errsize, "this log's last frame is the stream's own: the log does not "
                               "differ from the stream (a frame after it does not check out)");
        result = 0;
    } else if (result == 0 && l.n <= 1) {
        /* A log of one frame shares nothing with the stream to go by: a
         * deposed owner's first frame and another history look alike. */
        snprintf(err, errsize, "this log has a single frame and it differs from the stream: "
                               "nothing shows it is a deposed owner's last frame");
    } else if (result == 0) {
        const s_frame_t *before = &l.frames[l.n - 2];
        result = s_same_in_stream(r, wal_dir, before, &mine, &cap, err, errsize);
        if (result == 0)
            snprintf(err, errsize,
                     "this log and the stream differ before its last frame (at or before "
                     "position %" PRIu64 "): another history, not a deposed owner's last frame",
                     before->first + before->count - 1);
    }
    free(mine);
    free(l.frames);
    return result;
}
