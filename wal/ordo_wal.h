/* Ordo's write-ahead log: an append-only sequence of opaque records, each
 * with a gap-free position starting at 1, stored in segment files of
 * zstd-compressed, checksummed frames. One append = one frame = one group
 * commit. The log is the source of truth; it never interprets records.
 *
 * Threads: one thread appends (append, sync, sync_if_due, destroy); readers
 * and head/synced_head/error/stats may be used from any thread. Readers must
 * be destroyed before the log. */
#ifndef ORDO_WAL_H
#define ORDO_WAL_H

#include "ordo_io.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ordo_limits.h" /* frame and segment sizes */

typedef struct ordo_wal ordo_wal_t;
typedef struct ordo_wal_reader ordo_wal_reader_t;

/* REPLICATED: fdatasync after every frame, as ALWAYS, but what is appended
 * stays invisible to readers (ordo_wal_head, ordo_wal_synced_head) until
 * ordo_wal_release says the replicas have it too. */
typedef enum {
    ORDO_SYNC_ALWAYS = 0,
    ORDO_SYNC_BATCH,
    ORDO_SYNC_NEVER,
    ORDO_SYNC_REPLICATED
} ordo_sync_mode_t;

typedef struct {
    const char *dir;        /* created with parents if missing (ordo_mkdir_p) */
    uint64_t segment_bytes; /* 0 = default 64 MiB; below 65536 -> ORDO_ERR_INVALID */
    ordo_sync_mode_t sync_mode;
    uint32_t sync_interval_ms; /* batch mode: sync at most this long after a write */
    bool repair;               /* truncate at mid-log corruption instead of refusing */
    int zstd_level;            /* 0 = default 1 */
    const ordo_io_t *io;       /* NULL = ordo_io_posix(); must outlive the log */
} ordo_wal_options_t;

typedef struct {
    uint32_t segments;
    uint64_t frames;
    uint64_t events;
    uint64_t first_position, last_position; /* 0,0 when empty */
    uint64_t torn_bytes_truncated;          /* torn tail removed: from the end of the
                                             * last good frame to the last non-zero
                                             * byte (the rest is zeros anyway) */
    uint64_t events_dropped;                /* by repair, or cut after a hole in the
                                             * unsynced tail (fsync batch, never) */
    /* On ORDO_ERR_CORRUPT: names segment file and byte offset and what is
     * wrong; also set on other open errors and after a repair. */
    char message[512];
} ordo_wal_recovery_t;

/* One record to append: `len` bytes at `data`, borrowed for the call. */
typedef struct {
    const void *data;
    size_t len;
} ordo_wal_rec_t;

/* Opens (or creates) the log in opts->dir and recovers it: removes a torn
 * tail of the last segment (keeping its preallocation; with sync_mode
 * batch or never also a hole in it followed by frames, as a power cut
 * leaves unsynced writes: report->events_dropped and ->message say what
 * was cut), refuses mid-log corruption with ORDO_ERR_CORRUPT (disk
 * unchanged, report->message says where) unless opts->repair. On success *out owns the log. `report` may be NULL. Returns 0,
 * ORDO_ERR_INVALID, ORDO_ERR_CORRUPT, ORDO_ERR_NOMEM, or ORDO_ERR_IO /
 * ORDO_ERR_NOSPACE when a file operation fails (preallocation included). */
int ordo_wal_open(const ordo_wal_options_t *opts, ordo_wal_t **out, ordo_wal_recovery_t *report);

/* Syncs (unless failed), closes, and sets *wal to NULL. Safe on NULL. */
void ordo_wal_destroy(ordo_wal_t **wal);

/* Appends `count` >= 1 records as ONE frame (one group-commit batch);
 * positions are head+1.. and *first_position (may be NULL) gets the first.
 * Syncs per policy before returning (always: fdatasync; batch: if
 * sync_interval elapsed since last sync; never: no). In ALWAYS mode the new
 * records become visible to readers (head) only once synced; otherwise once
 * written. Returns 0, ORDO_ERR_INVALID, ORDO_ERR_TOO_BIG (nothing written,
 * log still usable), or an I/O error (ORDO_ERR_IO, ORDO_ERR_NOSPACE) after
 * which every append returns ORDO_ERR_FAILED. */
int ordo_wal_append(ordo_wal_t *wal, const ordo_wal_rec_t *recs, size_t count,
                    uint64_t *first_position);

/* Appends a whole frame made by another log (a replica's copy: the
 * partition's stream, docs/cluster.md), byte for byte, after checking it
 * as recovery would: header, checksum, body, that it starts at the
 * position after the log's last, and that it chains to the log's last
 * frame. Syncs and publishes as ordo_wal_append. 0 (*first_position and
 * *count set; either may be NULL), ORDO_ERR_DIVERGED with *why (a sound
 * frame that does not chain to the log's last: the two logs differ),
 * ORDO_ERR_CORRUPT with *why (a frame that does not check out; nothing
 * written either way: the log stays usable), or ordo_wal_append's
 * errors. */
int ordo_wal_append_frame(ordo_wal_t *wal, const void *frame, size_t len, uint64_t *first_position,
                          uint32_t *count, const char **why);

/* fdatasync now if anything is unsynced. 0, ORDO_ERR_FAILED, or the error. */
int ordo_wal_sync(ordo_wal_t *wal);

/* Batch mode timer hook: sync if something is unsynced and the interval has
 * elapsed since the last sync. 0 or as ordo_wal_sync. */
int ordo_wal_sync_if_due(ordo_wal_t *wal);

/* Milliseconds until ordo_wal_sync_if_due has work (0 = now), or -1 when
 * nothing is unsynced. For the caller's timer. */
int64_t ordo_wal_sync_due_in_ms(const ordo_wal_t *wal);

/* Last appended (visible) position, 0 = empty. Atomic read, any thread. */
uint64_t ordo_wal_head(const ordo_wal_t *wal);

/* Last fdatasync'ed position. Atomic read, any thread. */
uint64_t ordo_wal_synced_head(const ordo_wal_t *wal);

/* The file I/O table the log uses (never NULL). */
const ordo_io_t *ordo_wal_io(const ordo_wal_t *wal);

/* Replicated mode: makes everything appended visible to readers (the
 * replicas acknowledged it). No-op in the other modes. */
void ordo_wal_release(ordo_wal_t *wal);

/* The bytes of the frame the last successful ordo_wal_append wrote,
 * exactly as in the segment file; valid until the next append. */
void ordo_wal_last_frame(const ordo_wal_t *wal, const void **data, size_t *len);

/* The first error that failed the log (e.g. ORDO_ERR_NOSPACE), 0 if none. */
int ordo_wal_error(const ordo_wal_t *wal);

/* Stats for benchmarks: frames written, fsyncs, bytes written. Any pointer
 * may be NULL. */
void ordo_wal_stats(const ordo_wal_t *wal, uint64_t *frames, uint64_t *fsyncs, uint64_t *bytes);

/* For metrics: functions the appending thread calls after each fdatasync
 * of the log (its duration) and each frame written (its size and events).
 * They must be quick and must not call into the log. */
typedef struct {
    void *ctx;
    void (*synced)(void *ctx, uint64_t ns);
    void (*framed)(void *ctx, size_t bytes, size_t events);
} ordo_wal_observer_t;

/* Sets (copies) the observer, or clears it with NULL. Before the
 * appending thread starts, or on it. */
void ordo_wal_observe(ordo_wal_t *wal, const ordo_wal_observer_t *observer);

/* A reader starting at `from_position` (0 = the first position). Readers may
 * run on other threads while one thread appends; they see records up to
 * ordo_wal_head() as of each frame fetch. Returns 0, ORDO_ERR_NOT_FOUND
 * (position before the log's start), ORDO_ERR_NOMEM. *out owns the reader. */
int ordo_wal_reader_new(ordo_wal_t *wal, uint64_t from_position, ordo_wal_reader_t **out);

/* 1 = a record (data valid until the next call), 0 = no more records now,
 * <0 = error (ORDO_ERR_CORRUPT etc.; the reader then keeps failing). */
int ordo_wal_reader_next(ordo_wal_reader_t *r, uint64_t *position, const void **data, size_t *len);

/* Moves the reader to `position` (0 = the first), forwards or back, so
 * one reader serves many point reads: its segment stays open and a
 * position in the frame it holds costs no read. Clears an earlier error.
 * 0, or ORDO_ERR_NOT_FOUND (before the log's start). */
int ordo_wal_reader_seek(ordo_wal_reader_t *r, uint64_t position);

/* The frame holding `position` (1..ordo_wal_head()), checked as
 * ordo_wal_reader_next checks it, with its bytes exactly as in its segment
 * file (header and compressed body: what replication sends) in
 * *data and *len, valid until the reader's next call; *first and *count (each
 * may be NULL) its positions. The reader goes on after the frame. 0,
 * ORDO_ERR_NOT_FOUND (outside the log), or an error as
 * ordo_wal_reader_next's. */
int ordo_wal_reader_frame(ordo_wal_reader_t *r, uint64_t position, const void **data, size_t *len,
                          uint64_t *first, uint64_t *count);

/* Closes the reader and sets *r to NULL. Safe on NULL. */
void ordo_wal_reader_destroy(ordo_wal_reader_t **r);

/* ---- walking a log read-only (ordo-admin) -------------------------------- */

/* One frame, as the walk found it. */
typedef struct {
    const char *segment; /* the segment's file name */
    uint64_t offset;     /* of the frame's header in that file */
    uint64_t first;      /* position of its first record */
    uint32_t count;      /* records */
    uint32_t clen, rlen; /* compressed and raw body bytes */
    bool chained;        /* written since PROTOCOL.md 1.1: it names its predecessor */
} ordo_wal_frame_info_t;

/* What the walk calls; any may be NULL. A non-zero return stops the walk,
 * which returns it. */
typedef struct {
    int (*segment)(void *ctx, const char *name, uint64_t first, uint64_t size);
    int (*frame)(void *ctx, const ordo_wal_frame_info_t *frame);
    int (*record)(void *ctx, uint64_t position, const void *data, size_t len);
} ordo_wal_visitor_t;

/* What the walk saw. */
typedef struct {
    uint32_t segments;
    uint64_t frames, events;
    uint64_t file_bytes; /* the segment files' sizes (preallocated zeros included) */
    uint64_t data_bytes; /* frames, headers and identity frames included */
    uint64_t raw_bytes;  /* the frames' bodies, decompressed */
    uint64_t first_position, last_position; /* 0, 0 when no event */
    bool has_id;
    uint8_t id[16]; /* the log's identity, from its segments' identity frames */
    /* The first fault, if any: damage a crash cannot explain (a bad frame
     * with data after it, a frame out of place, a segment missing or of
     * another log). The walk stops there. */
    bool damaged;
    char fault_segment[32];
    uint64_t fault_offset;
    char fault[256];
    /* Bytes at the end of the last segment that are not a whole frame and
     * have no frame after them: a write in progress (the engine runs), or
     * a torn write that the engine cuts when it starts. Not damage. */
    uint64_t tail_bytes;
    uint64_t tail_offset;
} ordo_wal_walk_t;

/* Walks every segment and frame of the log in `dir`, read-only (no lock,
 * nothing changed: safe beside a running engine), checking each frame as
 * recovery does and more: header, checksum, identity, position, and its
 * body decompressed and split into exactly its records, which are handed
 * to the visitor in position order. Returns 0 when the walk ended (see
 * *out: damaged or not), ORDO_ERR_IO / ORDO_ERR_NOT_FOUND when the folder
 * or a file cannot be read, ORDO_ERR_NOMEM, or the visitor's non-zero
 * value. */
int ordo_wal_walk(const char *dir, const ordo_wal_visitor_t *visitor, void *ctx,
                  ordo_wal_walk_t *out);

#endif
