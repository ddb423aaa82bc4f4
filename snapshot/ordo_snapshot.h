/* Snapshot files: the log position a snapshot covers plus a sequence of
 * opaque records (the engine stores one MessagePack order per record).
 * Writing is durable file replacement (temp file, fsync, rename, fsync dir);
 * reading trusts nothing: a snapshot is returned only after its size,
 * checksum and whole record structure have been verified, and an invalid
 * one is skipped for an older one. The byte format is in
 * ordo_snapshot_writer.c. All file I/O goes through an ordo_io_t table. */
#ifndef ORDO_SNAPSHOT_H
#define ORDO_SNAPSHOT_H

#include "ordo_io.h"

#include <stddef.h>
#include <stdint.h>

#include "ordo_limits.h" /* ORDO_SNAPSHOT_RECORD_MAX: the largest record accepted */

typedef struct ordo_snapshot_writer ordo_snapshot_writer_t;
typedef struct ordo_snapshot ordo_snapshot_t;

/* Starts a snapshot covering log positions <= `position` in `dir` (created,
 * parents included, if missing); records go to a temporary file until
 * commit. `io` NULL means POSIX; it is borrowed and must outlive the writer.
 * Returns 0 and sets *out, or a negative ordo_err_t and sets *out to NULL. */
int ordo_snapshot_writer_new(const char *dir, uint64_t position, const ordo_io_t *io,
                             ordo_snapshot_writer_t **out);

/* Appends one record of `len` bytes (copied; 0 allowed). Returns 0,
 * ORDO_ERR_TOO_BIG above ORDO_SNAPSHOT_RECORD_MAX (the writer stays usable),
 * or an I/O error, after which the writer refuses further work and commit
 * returns that first error. */
int ordo_snapshot_writer_add(ordo_snapshot_writer_t *w, const void *record, size_t len);

/* Finishes the snapshot: header, fsync, rename to its final name, fsync the
 * folder. Always destroys *w and nulls it. Returns 0, or a negative
 * ordo_err_t (the temp file is then removed and any existing snapshot is
 * left as it was; if only the final folder fsync failed, the new file is
 * complete but may not survive a power cut). */
int ordo_snapshot_writer_commit(ordo_snapshot_writer_t **w);

/* Drops the snapshot being written: removes the temp file, destroys *w and
 * nulls it. Safe on NULL. */
void ordo_snapshot_writer_abort(ordo_snapshot_writer_t **w);

/* Opens the newest valid snapshot in `dir`. Invalid snapshots are skipped
 * (one WARN line each, naming the file and why); temp files are ignored.
 * Returns 0 and sets *out (owned by the caller, free with
 * ordo_snapshot_destroy), ORDO_ERR_NOT_FOUND if there is none, or another
 * negative ordo_err_t (then *out is NULL). */
int ordo_snapshot_open_newest(const char *dir, const ordo_io_t *io, ordo_snapshot_t **out);

/* Same, among snapshots whose position is <= max_position: lets the engine
 * fall back to an older snapshot when a newer one proves unusable. */
int ordo_snapshot_open_newest_before(const char *dir, uint64_t max_position,
                                     const ordo_io_t *io, ordo_snapshot_t **out);

/* Opens and verifies one snapshot file. If its name is a snapshot name, the
 * header position must match it. Returns 0, ORDO_ERR_CORRUPT (with a WARN
 * line saying why), ORDO_ERR_NOT_FOUND, ORDO_ERR_IO or ORDO_ERR_NOMEM. */
int ordo_snapshot_open(const char *path, const ordo_io_t *io, ordo_snapshot_t **out);

/* Log position covered, number of records and file path (owned by `s`). */
uint64_t ordo_snapshot_position(const ordo_snapshot_t *s);
uint64_t ordo_snapshot_record_count(const ordo_snapshot_t *s);
const char *ordo_snapshot_path(const ordo_snapshot_t *s);

/* Reads the next record. Returns 1 with *record / *len set (the bytes are
 * owned by `s` and valid until the next call), 0 at the verified end, or a
 * negative ordo_err_t (ORDO_ERR_CORRUPT if the file changed or lies), which
 * then sticks. */
int ordo_snapshot_next(ordo_snapshot_t *s, const void **record, size_t *len);

/* Closes the snapshot, frees it and nulls *s. Safe on NULL. */
void ordo_snapshot_destroy(ordo_snapshot_t **s);

/* Deletes every snapshot except the newest `keep` valid ones (invalid ones
 * are deleted too) and every temp file. Must not run while a writer is open
 * on `dir`. Returns the number of files removed, or a negative ordo_err_t
 * (an I/O error while checking a snapshot stops the prune before anything
 * is deleted). */
int ordo_snapshot_prune(const char *dir, unsigned keep, const ordo_io_t *io);

/* Deletes every snapshot covering a position beyond `position` (the end of
 * the log), then fsyncs the folder. A log that lost its tail (power cut in
 * batch or never mode, or repair) must not later meet a snapshot of events
 * it no longer has: new events would reuse those positions. Returns the
 * number removed (0 if the folder is missing) or a negative ordo_err_t. */
int ordo_snapshot_discard_after(const char *dir, uint64_t position, const ordo_io_t *io);

#endif
