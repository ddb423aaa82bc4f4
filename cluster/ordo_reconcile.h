/* At start, before any command: the local log and the partition's stream
 * made to agree (docs/cluster.md).
 *
 *   - the stream ends where the log does, with the same frame: nothing to
 *     do;
 *   - the stream ends before the log (it is new, or frames were written
 *     while it was not acknowledging them): the log's later frames are
 *     published, byte for byte, after checking that the stream's last
 *     frame is the log's frame at that place;
 *   - the stream holds frames the log does not, or a frame of its differs
 *     from the log's: refused. The stream is the partition's history; an
 *     engine with another history must not write to it.
 * Progress is logged every few seconds on a long publish. */
#ifndef ORDO_RECONCILE_H
#define ORDO_RECONCILE_H

#include "ordo_replicator.h"

#include <stddef.h>
#include <stdint.h>

#include "ordo_wal.h"

/* The stream's last frame is not the log's frame at that place. */
#define ORDO_RECONCILE_DIFFER 2

/* `wal` is this engine's open log, read here through a reader of its own
 * up to ordo_wal_head(). 0; ORDO_RECONCILE_DIFFER with err set (the
 * histories differ where the stream ends); or -1 with err set. */
int ordo_reconcile(ordo_replicator_t *r, ordo_wal_t *wal, char *err, size_t errsize);

/* Where a standby starts following the stream, and whether its log and
 * the stream agree where both have frames, as far as the shorter one
 * goes: the log's frame ending there must be, byte for byte, the stream's
 * frame ending there (and so, the frames chaining each to the one before,
 * every frame before it). 1 they agree: *seq is that frame's message (1
 * when they share no frame yet) and *checked its last position (0: none),
 * the frames after it to be compared as they come; 0 they differ (err
 * says where: a deposed owner's log, see ordo_reconcile_tail_only); -1
 * with err (*seq 1, *checked 0: follow from the start, comparing every
 * frame). */
int ordo_reconcile_follow_point(ordo_replicator_t *r, ordo_wal_t *wal, uint64_t *seq,
                                uint64_t *checked, char *err, size_t errsize);

/* Whether the log and the stream differ only in the log's last frame: the
 * frame before it is, byte for byte, the stream's frame at that place (and
 * so, the frames chaining each to the one before, every earlier frame
 * too). That is what a deposed owner's log looks like: its writer stops at
 * the first frame JetStream does not acknowledge, so at most its last
 * frame was never acknowledged, and the new owner wrote other frames in
 * its place. Anything else is another history, and must not be set aside
 * silently; so is a log of a single frame, which shares nothing with the
 * stream to go by. 1 yes, 0 no (err says why), -1 with err. */
int ordo_reconcile_tail_only(ordo_replicator_t *r, ordo_wal_t *wal, char *err, size_t errsize);

#endif
