/* The local log and the partition's stream made to agree at start, and
 * compared where they overlap (see ordo_reconcile.h). Frames of the log are
 * found through its sparse index (ordo_wal_reader_frame), so the cost
 * follows the frames compared or published, not the log's length. */
#include "ordo_reconcile.h"

#include "ordo_clock.h"
#include "ordo_error.h"
#include "ordo_log.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A frame of the log, as ordo_wal_reader_frame gives it. */
typedef struct {
    const void *data;
    size_t len;
    uint64_t first, count;
} s_frame_t;

static uint64_t s_last(const s_frame_t *f)
{
    return f->first + f->count - 1;
}

/* The log's frame holding `position` (its bytes valid until the reader's
 * next call). 0, or -1 with err. */
static int s_frame_at(ordo_wal_reader_t *rd, uint64_t position, s_frame_t *f, char *err,
                      size_t errsize)
{
    int rc = ordo_wal_reader_frame(rd, position, &f->data, &f->len, &f->first, &f->count);
    if (rc == 0)
        return 0;
    snprintf(err, errsize, "reading this log's frame at position %" PRIu64 ": %s", position,
             ordo_strerror(rc));
    return -1;
}

/* Whether the log's frame `f` is, byte for byte, the stream's frame ending
 * where it ends (*seq: its message). 1 yes, 0 no, -1 with err. */
static int s_same_in_stream(ordo_replicator_t *r, const s_frame_t *f, uint64_t *seq, char *err,
                            size_t errsize)
{
    size_t theirs_len;
    uint8_t *theirs = NULL;
    int got = ordo_replicator_frame_ending_at(r, s_last(f), &theirs, &theirs_len, seq, err,
                                              errsize);
    int same = got < 0 ? -1 : got == 1 && theirs_len == f->len && !memcmp(theirs, f->data, f->len);
    free(theirs);
    return same;
}

static int s_reader(ordo_wal_t *wal, ordo_wal_reader_t **rd, char *err, size_t errsize)
{
    if (ordo_wal_reader_new(wal, 0, rd) == 0)
        return 0;
    snprintf(err, errsize, "out of memory reading this log");
    return -1;
}

int ordo_reconcile(ordo_replicator_t *r, ordo_wal_t *wal, char *err, size_t errsize)
{
    ordo_replicator_end_t end = ordo_replicator_end(r);
    uint64_t head = ordo_wal_head(wal);
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
    ordo_wal_reader_t *rd = NULL;
    if (s_reader(wal, &rd, err, errsize) != 0)
        return -1;
    int result = -1;
    s_frame_t f;
    uint64_t next = 1;
    if (end.last_position > 0) {
        if (s_frame_at(rd, end.last_position, &f, err, errsize) != 0)
            goto out;
        if (s_last(&f) != end.last_position) {
            snprintf(err, errsize,
                     "the stream's last frame ends at position %" PRIu64
                     ", where no frame of this log ends: the histories differ",
                     end.last_position);
            result = ORDO_RECONCILE_DIFFER;
            goto out;
        }
        if (!ordo_replicator_end_is(r, f.data, f.len)) {
            snprintf(err, errsize,
                     "the stream's last frame (positions %" PRIu64 "..%" PRIu64
                     ") differs from this log's: the histories differ",
                     f.first, end.last_position);
            result = ORDO_RECONCILE_DIFFER;
            goto out;
        }
        next = end.last_position + 1;
    }
    if (next <= head)
        ordo_log_info("replicator",
                      "the stream ends at position %" PRIu64 ", this log at %" PRIu64
                      ": publishing its frames after that",
                      end.last_position, head);
    for (uint64_t last_note = ordo_mono_ns(); next <= head; next = f.first + f.count) {
        if (s_frame_at(rd, next, &f, err, errsize) != 0)
            goto out;
        char why[512];
        if (ordo_replicator_publish(r, f.data, f.len, f.first, (uint32_t)f.count, why,
                                    sizeof why) != 0) {
            snprintf(err, errsize, "publishing the frame at position %" PRIu64 ": %s", f.first,
                     why);
            goto out;
        }
        if (ordo_mono_ns() - last_note > 5000000000ull) {
            last_note = ordo_mono_ns();
            ordo_log_info("replicator", "published up to position %" PRIu64 " of %" PRIu64,
                          s_last(&f), head);
        }
    }
    if (ordo_replicator_end(r).last_position != head) {
        snprintf(err, errsize, "the log's frames end at position %" PRIu64 ", its head is %" PRIu64,
                 ordo_replicator_end(r).last_position, head);
        goto out;
    }
    result = 0;
out:
    ordo_wal_reader_destroy(&rd);
    return result;
}

int ordo_reconcile_follow_point(ordo_replicator_t *r, ordo_wal_t *wal, uint64_t *seq,
                                uint64_t *checked, char *err, size_t errsize)
{
    uint64_t head = ordo_wal_head(wal), stream = ordo_replicator_end(r).last_position;
    uint64_t probe = stream < head ? stream : head;
    *seq = 1;
    *checked = 0;
    if (probe == 0)
        return 1; /* nothing in common yet: the log is empty or the stream has no frame */
    ordo_wal_reader_t *rd = NULL;
    if (s_reader(wal, &rd, err, errsize) != 0)
        return -1;
    s_frame_t f;
    int result = s_frame_at(rd, probe, &f, err, errsize) != 0 ? -1
                 : s_last(&f) != probe                      ? 0
                                         : s_same_in_stream(r, &f, seq, err, errsize);
    if (result == 1) {
        *checked = probe;
    } else if (result == 0) {
        *seq = 1;
        snprintf(err, errsize,
                 "this log (to position %" PRIu64 ") and the stream (to position %" PRIu64
                 ") differ at position %" PRIu64 ": no frame of the stream is this log's frame "
                 "ending there",
                 head, stream, probe);
    }
    ordo_wal_reader_destroy(&rd);
    return result;
}

int ordo_reconcile_tail_only(ordo_replicator_t *r, ordo_wal_t *wal, char *err, size_t errsize)
{
    uint64_t head = ordo_wal_head(wal);
    if (head == 0) {
        snprintf(err, errsize, "this log is empty: it does not differ from the stream");
        return 0;
    }
    ordo_wal_reader_t *rd = NULL;
    if (s_reader(wal, &rd, err, errsize) != 0)
        return -1;
    s_frame_t last, before;
    int result = s_frame_at(rd, head, &last, err, errsize) != 0
                     ? -1
                     : s_same_in_stream(r, &last, NULL, err, errsize);
    /* The frame before the last, if the log has one. */
    int had = result != 0 || last.first == 1
                  ? ORDO_ERR_NOT_FOUND
                  : ordo_wal_reader_frame(rd, last.first - 1, &before.data, &before.len,
                                          &before.first, &before.count);
    if (result == 1) {
        /* Its last frame is the stream's own: nothing differs (a frame
         * after it that would not follow is damaged, not another owner's). */
        snprintf(err, errsize, "this log's last frame is the stream's own: the log does not "
                               "differ from the stream (a frame after it does not check out)");
        result = 0;
    } else if (result == 0 && had == ORDO_ERR_NOT_FOUND) {
        /* A log of one frame shares nothing with the stream to go by: a
         * deposed owner's first frame and another history look alike. */
        snprintf(err, errsize, "this log has a single frame and it differs from the stream: "
                               "the histories differ, and nothing shows it is a deposed "
                               "owner's last frame");
    } else if (result == 0 && had != 0) {
        snprintf(err, errsize, "reading this log's frame at position %" PRIu64 ": %s",
                 last.first - 1, ordo_strerror(had));
        result = -1;
    } else if (result == 0) {
        result = s_same_in_stream(r, &before, NULL, err, errsize);
        if (result == 0)
            snprintf(err, errsize,
                     "this log and the stream differ before its last frame (at or before "
                     "position %" PRIu64 "): the histories differ (not only in a deposed "
                     "owner's last frame)",
                     last.first - 1);
    }
    ordo_wal_reader_destroy(&rd);
    return result;
}
