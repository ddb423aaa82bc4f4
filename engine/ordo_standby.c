/* A standby engine following its partition's stream until it holds the
 * lease (see ordo_standby.h). */
#include "ordo_standby.h"

#include "ordo_clock.h"
#include "ordo_error.h"
#include "ordo_folder_aside.h"
#include "ordo_folder_partition.h"
#include "ordo_follower.h"
#include "ordo_lock.h"
#include "ordo_log.h"
#include "ordo_reconcile.h"
#include "ordo_replicator.h"
#include "ordo_standby_evict.h"
#include "ordo_state.h"
#include "ordo_wal_format.h"

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <time.h>
#include <string.h>
#include <zstd.h>

#define S_POLL_MS 100          /* a wait for the next message */
#define S_ASK_EVERY_MS 200     /* asking for the lease */
#define S_CATCH_UP_MS 30000    /* the lease is ours: the stream's end within this */

typedef struct {
    const ordo_config_t *cfg;
    ordo_lease_t *lease;
    ordo_follower_t *follower;
    ordo_engine_state_t *st;
    ZSTD_DCtx *dctx;
    ordo_wal_buf_t raw;
    uint64_t seen_seq; /* the last stream message read */
    uint64_t checked;  /* the log is the stream's up to this position */
    ordo_wal_reader_t *reader; /* the log's frames, to compare (made when needed) */
    ordo_standby_evict_t *evict; /* finished orders leaving memory for the index */
    uint64_t snapshot_at;   /* the newest snapshot's position */
    uint64_t next_snapshot; /* the next one is due at this head (--snapshot-every) */
    bool (*stop)(void *ctx);
    void *ctx;
    int set_aside; /* logs set aside this run (at most one) */
    bool taking_over; /* the lease is ours: no periodic snapshot holds up the take-over */
} s_standby_t;

/* Applies the records of a frame (already appended: it checked out). */
static int s_apply(s_standby_t *sb, const void *frame, size_t len)
{
    ordo_wal_hdr_t h;
    const char *why = NULL;
    if (len < ORDO_WAL_HEADER_SIZE || ordo_wal_hdr_decode(frame, &h, &why) != 0 ||
        ordo_wal_frame_decode(sb->dctx, frame, &h, (const uint8_t *)frame + ORDO_WAL_HEADER_SIZE,
                              &sb->raw, &why) != 0) {
        ordo_log_error("standby", "a frame does not decode: %s", why ? why : "?");
        return -1;
    }
    size_t off = 0;
    const void *rec;
    size_t rec_len;
    for (uint64_t pos = h.first; ordo_wal_body_next(sb->raw.data, h.rlen, &off, &rec, &rec_len) == 1;
         pos++) {
        ordo_order_t *o;
        if (ordo_state_apply_record(sb->st->orders, rec, rec_len, pos, &sb->st->recovery, &o) != 0)
            return -1;
        /* Out of memory to queue it: it stays in memory, which is correct. */
        (void)ordo_standby_evict_note(sb->evict, o);
    }
    return 0;
}

/* Connects to the partition's stream (ordo_replicator_open), to write
 * under lease revision `lease` (0: to read it). */
static int s_open_stream(const ordo_config_t *cfg, uint64_t lease, ordo_replicator_t **r,
                         ordo_replicator_end_t *end, char *err, size_t errsize)
{
    ordo_replicator_options_t ro = {.servers = cfg->nats,
                                    .partition = cfg->partition,
                                    .replicas = cfg->nats_replicas,
                                    .timeout_ms = 5000,
                                    .lease = lease};
    return ordo_replicator_open(&ro, r, end, err, errsize);
}

/* A snapshot of the orders in memory at the log's head, so that a restart
 * replays the log from here, as an owner's periodic snapshots do: every
 * --snapshot-every events, and when the standby stops. The log is synced
 * first: a snapshot must not hold an event the log could lose. A failure
 * is logged and changes nothing (the older snapshots stay). */
static void s_snapshot(s_standby_t *sb)
{
    const ordo_config_t *cfg = sb->cfg;
    uint64_t head = ordo_wal_head(sb->st->wal), t0 = ordo_mono_ns();
    sb->next_snapshot = cfg->snapshot_every ? head + cfg->snapshot_every : UINT64_MAX;
    if (head == sb->snapshot_at)
        return; /* nothing new since */
    char dir[PATH_MAX + 16];
    ordo_config_snapshot_dir(cfg, dir, sizeof dir);
    const ordo_registry_t *regs[1] = {sb->st->orders};
    int rc = ordo_wal_sync(sb->st->wal);
    if (rc == 0)
        rc = ordo_state_snapshot(regs, 1, dir, head, 2, NULL);
    if (rc != 0) {
        ordo_log_error("standby", "snapshot at position %" PRIu64 " failed: %s", head,
                       ordo_strerror(rc));
        return;
    }
    sb->snapshot_at = head;
    ordo_log_info("standby", "snapshot at position %" PRIu64 " in %.1f ms: %zu orders in memory",
                  head, (ordo_mono_ns() - t0) / 1e6, ordo_registry_count(sb->st->orders));
}

/* A stream frame of positions the log already holds (past sb->checked):
 * the log's frame there must be the same, byte for byte. 1 it is, -1
 * failed, -2 the log and the stream differ (logged). */
static int s_compare(s_standby_t *sb, const ordo_follower_msg_t *m)
{
    const void *mine;
    size_t len;
    uint64_t first, count;
    int rc = sb->reader ? 0 : ordo_wal_reader_new(sb->st->wal, 0, &sb->reader);
    if (rc == 0)
        rc = ordo_wal_reader_frame(sb->reader, m->first, &mine, &len, &first, &count);
    if (rc != 0) {
        ordo_log_error("standby", "reading this log's frame at position %" PRIu64 ": %s",
                       m->first, ordo_strerror(rc));
        return -1;
    }
    if (first != m->first || count != m->count || len != m->len || memcmp(mine, m->data, len)) {
        ordo_log_warn("standby",
                      "the stream's frame of positions %" PRIu64 "..%" PRIu64
                      " is not this log's frame there: the log and the stream differ (this "
                      "data folder wrote frames that were never acknowledged)",
                      m->first, m->first + m->count - 1);
        return -2;
    }
    sb->checked = m->first + m->count - 1;
    return 1;
}

/* Takes the next message if one comes within the wait: a frame past the
 * log's end is appended and applied; one the log holds is compared with
 * the log's. 1 a message, 0 none, -1 failed, -2 the log and the stream
 * differ (logged). */
static int s_step(s_standby_t *sb, int wait_ms)
{
    ordo_follower_msg_t m;
    char err[600];
    int rc = ordo_follower_next(sb->follower, wait_ms, &m, err, sizeof err);
    if (rc <= 0) {
        if (rc < 0)
            ordo_log_error("standby", "%s", err);
        return rc;
    }
    sb->seen_seq = m.seq;
    if (m.count == 0)
        return 1; /* a lease marker */
    uint64_t head = ordo_wal_head(sb->st->wal), last = m.first + m.count - 1;
    if (last <= sb->checked)
        return 1; /* the log has it, compared already */
    if (last <= head)
        return s_compare(sb, &m);
    if (m.first <= head) {
        ordo_log_warn("standby",
                      "the stream's frame of positions %" PRIu64 "..%" PRIu64
                      " straddles this log's end at %" PRIu64
                      ": the log and the stream differ (this data folder wrote frames that "
                      "were never acknowledged)",
                      m.first, last, head);
        return -2;
    }
    const char *why = NULL;
    int arc = ordo_wal_append_frame(sb->st->wal, m.data, m.len, NULL, NULL, &why);
    if (arc != 0) {
        /* Only a sound frame that does not chain to ours says the two
         * differ; a damaged or unknown frame is the stream's problem. */
        ordo_log(arc == ORDO_ERR_DIVERGED ? ORDO_LOG_WARN : ORDO_LOG_ERROR, "standby",
                 "the stream's frame at position %" PRIu64 " cannot follow this log: %s%s",
                 m.first, why ? why : ordo_strerror(arc),
                 arc == ORDO_ERR_DIVERGED ? " (the log and the stream differ)" : "");
        return arc == ORDO_ERR_DIVERGED ? -2 : -1;
    }
    ordo_wal_release(sb->st->wal);
    sb->checked = last;
    if (s_apply(sb, m.data, m.len) != 0)
        return -1;
    if (last >= sb->next_snapshot && !sb->taking_over)
        s_snapshot(sb);
    return 1;
}

/* Follows the stream from message `from`, asking again for up to 30 s
 * (a stream just made may still be electing its leader: making the
 * consumer then times out). 0, 1 stopped, -1 failed (logged). */
static int s_follow_from(s_standby_t *sb, uint64_t from)
{
    char err[800];
    ordo_follower_close(&sb->follower);
    sb->seen_seq = from - 1;
    for (uint64_t until = ordo_mono_ns() + 30000000000ull;;) {
        if (ordo_follower_open(sb->cfg->nats, sb->cfg->partition, from, &sb->follower, err,
                               sizeof err) == 0)
            return 0;
        if (sb->stop && sb->stop(sb->ctx))
            return 1;
        if (ordo_mono_ns() >= until) {
            ordo_log_error("standby", "%s", err);
            return -1;
        }
        ordo_log_warn("standby", "%s: trying again", err);
        nanosleep(&(struct timespec){0, 200000000}, NULL);
    }
}

/* The log differs from the stream. If only in its last frame, written by
 * an owner that was deposed (or killed) before JetStream acknowledged it
 * while another owner wrote another frame in its place (checked:
 * ordo_reconcile_tail_only), nothing acknowledged is lost by leaving it:
 * a command is acknowledged only once the stream has its frame. The log,
 * snapshots and order index are moved aside whole
 * (ordo_folder_set_aside), and the standby starts again from an empty
 * log, following the stream from its start. Once per run: a second
 * divergence means the stream itself changed under us. 0, 1 stopped, -1
 * failed (logged). */
static int s_set_aside(s_standby_t *sb)
{
    const ordo_config_t *cfg = sb->cfg;
    ordo_engine_state_t *st = sb->st;
    if (sb->set_aside++) {
        ordo_log_error("standby", "the log differs from the stream again after being set "
                                  "aside: the stream changed; stopping");
        return -1;
    }
    /* Only a deposed owner's last frame may go: anything more is another
     * history, which an operator must look at. */
    char err[1200];
    ordo_replicator_t *r = NULL;
    ordo_replicator_end_t end;
    int only = s_open_stream(cfg, 0, &r, &end, err, sizeof err) == 0
                   ? ordo_reconcile_tail_only(r, st->wal, err, sizeof err)
                   : -1;
    ordo_replicator_close(&r);
    if (only != 1) {
        ordo_log_error("standby", "%s%s", err,
                       only == 0 ? "; start this engine on an empty data folder (or the folder "
                                   "of another engine of this partition) once you know which "
                                   "history is the partition's"
                                 : "");
        return -1;
    }
    uint64_t head = ordo_wal_head(st->wal);
    ordo_wal_reader_destroy(&sb->reader);
    ordo_standby_evict_close(&sb->evict); /* the index moves aside too */
    ordo_wal_destroy(&st->wal);
    ordo_registry_destroy(&st->orders);
    char aside[PATH_MAX + 64];
    if (ordo_folder_set_aside(cfg->data_dir, aside, sizeof aside, err, sizeof err) != 0) {
        ordo_log_error("standby", "setting this data folder's log aside: %s", err);
        return -1;
    }
    ordo_log_warn("standby",
                  "this data folder's log (to position %" PRIu64 ") differs from the stream, "
                  "past what JetStream acknowledged: moved aside to %s, with its snapshots and "
                  "index; following the stream from its start",
                  head, aside);
    if (ordo_state_open(cfg, false, NULL, &st->wal, &st->orders, &st->recovery) != 0 ||
        ordo_standby_evict_open(cfg, st->wal, st->orders, &sb->evict) != 0)
        return -1; /* the log line says why */
    ordo_wal_release(st->wal);
    sb->checked = 0;
    sb->snapshot_at = 0;
    sb->next_snapshot = cfg->snapshot_every ? cfg->snapshot_every : UINT64_MAX;
    return s_follow_from(sb, 1);
}

/* The lease is ours (its keeper renews it): reads the stream to its end,
 * checks that the stream's last frame is this log's (ordo_reconcile.h,
 * which also publishes frames this folder wrote as owner before and never
 * had acknowledged), then claims the stream (a lease marker), again if
 * another engine wrote after the end we read. 0 or -1. */
static int s_take_over(s_standby_t *sb)
{
    char err[1200];
    uint64_t deadline = ordo_mono_ns() + (uint64_t)S_CATCH_UP_MS * 1000000u;
    sb->taking_over = true;
    uint64_t lease = ordo_lease_revision(sb->lease);
    while (ordo_mono_ns() < deadline) {
        if (ordo_lease_lost(sb->lease)) {
            ordo_log_error("standby", "lost the lease while catching up");
            return -1;
        }
        uint64_t last_seq;
        if (ordo_follower_last_seq(sb->follower, &last_seq, err, sizeof err) != 0) {
            ordo_log_warn("standby", "%s", err);
            nanosleep(&(struct timespec){0, S_POLL_MS * 1000000L}, NULL);
            continue;
        }
        bool again = false;
        while (!again && sb->seen_seq < last_seq && ordo_mono_ns() < deadline) {
            ordo_standby_evict_run(sb->evict);
            int got = s_step(sb, S_POLL_MS);
            if (got == -2 && s_set_aside(sb) == 0)
                again = true; /* read the stream from its start */
            else if (got < 0)
                return -1;
        }
        if (again)
            continue;
        ordo_replicator_t *r = NULL;
        ordo_replicator_end_t end;
        if (s_open_stream(sb->cfg, lease, &r, &end, err, sizeof err) != 0) {
            ordo_log_error("standby", "%s", err);
            return -1;
        }
        int rc = 1; /* the stream went on: follow on */
        uint64_t head = ordo_wal_head(sb->st->wal);
        if (end.last_position <= head) {
            rc = ordo_reconcile(r, sb->st->wal, err, sizeof err);
            if (rc == 0)
                rc = ordo_replicator_claim(r, err, sizeof err);
            else
                ordo_log_warn("standby", "%s", err);
        }
        ordo_replicator_close(&r);
        if (rc == ORDO_RECONCILE_DIFFER) {
            if (s_set_aside(sb) != 0)
                return -1;
            continue;
        }
        if (rc == 0)
            return 0;
        if (rc < 0) {
            ordo_log_error("standby", "claiming the stream: %s", err);
            return -1;
        }
    }
    ordo_log_error("standby", "the stream's end was not reached in %d s", S_CATCH_UP_MS / 1000);
    return -1;
}

int ordo_standby_run(const ordo_config_t *cfg, ordo_lease_t *lease, bool (*stop)(void *ctx),
                     void *ctx, ordo_engine_state_t *state)
{
    *state = (ordo_engine_state_t){.lock_fd = -1};
    s_standby_t sb = {.cfg = cfg, .lease = lease, .st = state,
                      .stop = stop, .ctx = ctx};
    char why[PATH_MAX + 160];
    int result = -1;
    if ((state->lock_fd = ordo_lock_acquire(cfg->data_dir, why, sizeof why)) < 0) {
        ordo_log_error("standby", "%s", why);
        return -1;
    }
    if (ordo_folder_partition_check(cfg->data_dir, cfg->partition, cfg->partitions, why,
                                    sizeof why) != 0) {
        ordo_log_error("standby", "%s", why);
        goto out;
    }
    if (ordo_state_open(cfg, false, NULL, &state->wal, &state->orders, &state->recovery) != 0)
        goto out; /* the log line says why */
    ordo_wal_release(state->wal); /* replicated mode holds nothing back here */
    sb.snapshot_at = state->recovery.snapshot_position;
    sb.next_snapshot = cfg->snapshot_every ? ordo_wal_head(state->wal) + cfg->snapshot_every
                                           : UINT64_MAX;
    if (!(sb.dctx = ordo_wal_dctx_new())) {
        ordo_log_error("standby", "out of memory");
        goto out;
    }
    char err[800];
    /* The stream exists from here on (the first engine of a cluster makes
     * it), so that there is something to follow. */
    ordo_replicator_t *made = NULL;
    ordo_replicator_end_t end;
    if (s_open_stream(cfg, 0, &made, &end, err, sizeof err) != 0) {
        ordo_log_error("standby", "%s", err);
        goto out;
    }
    /* Where to follow from: the message of the last frame the log and the
     * stream both have, once checked to be the same (so a restart does not
     * read the whole stream again). A log that differs from the stream (a
     * deposed owner's) is found here, before following, not when it
     * takes over. */
    uint64_t from = 1;
    int agree = ordo_reconcile_follow_point(made, state->wal, &from, &sb.checked, err, sizeof err);
    ordo_replicator_close(&made);
    if (agree < 0)
        ordo_log_warn("standby", "%s; reading the stream from its start, comparing its frames "
                                 "with this log's", err);
    else if (agree == 0)
        ordo_log_warn("standby", "%s", err);
    int followed = agree == 0 ? s_set_aside(&sb) : s_follow_from(&sb, from);
    if (followed != 0) {
        result = followed;
        goto out;
    }
    /* The index is opened once the log is known to be the stream's (a
     * log set aside takes its index along, untouched; s_set_aside opens
     * the new one). */
    if (!sb.evict && ordo_standby_evict_open(cfg, state->wal, state->orders, &sb.evict) != 0)
        goto out; /* the log line says why */
    ordo_log_info("standby",
                  "following stream ORDO_P%" PRIu32 " from this log's position %" PRIu64
                  " (message %" PRIu64 ")",
                  cfg->partition, ordo_wal_head(state->wal), from);
    char holder[512] = "", was[512] = "";
    uint64_t next_ask = 0, next_warn = 0;
    for (;;) {
        if (stop && stop(ctx)) {
            result = 1;
            goto out;
        }
        ordo_standby_evict_run(sb.evict);
        int got = s_step(&sb, S_POLL_MS);
        if (got == -2) {
            int rc = s_set_aside(&sb);
            if (rc != 0) {
                result = rc;
                goto out;
            }
            continue;
        }
        if (got < 0)
            goto out;
        /* Ask for the lease only when caught up (nothing came within the
         * wait): a standby far behind would hold it while it reads. */
        if (got > 0 || ordo_mono_ns() < next_ask)
            continue;
        next_ask = ordo_mono_ns() + (uint64_t)S_ASK_EVERY_MS * 1000000u;
        int rc = ordo_lease_acquire(lease, holder, sizeof holder, err, sizeof err);
        if (rc == 1 && strcmp(holder, was) != 0) {
            ordo_log_info("standby", "the partition's owner is %s: standing by, at position %" PRIu64,
                          holder, ordo_wal_head(state->wal));
            snprintf(was, sizeof was, "%s", holder);
        }
        if (rc < 0 && ordo_mono_ns() >= next_warn) {
            ordo_log_warn("standby", "asking for the partition's lease: %s; asking again", err);
            next_warn = ordo_mono_ns() + 10000000000ull;
        }
        if (rc != 0)
            continue; /* held, or no answer: ask again */
        if (ordo_lease_keep(lease) != 0) {
            ordo_log_error("standby", "cannot start the lease's keeper thread");
            goto out;
        }
        uint64_t t0 = ordo_mono_ns();
        ordo_log_info("standby", "the lease is ours (revision %" PRIu64 "): catching up from %" PRIu64,
                      ordo_lease_revision(lease), ordo_wal_head(state->wal));
        if (s_take_over(&sb) != 0)
            goto out;
        ordo_log_info("standby",
                      "took over at position %" PRIu64 " in %.1f ms; %zu orders in memory, "
                      "%" PRIu64 " left it for the order index while standing by",
                      ordo_wal_head(state->wal), (ordo_mono_ns() - t0) / 1e6,
                      ordo_registry_count(state->orders), ordo_standby_evict_count(sb.evict));
        result = 0;
        goto out;
    }
out:
    if (result == 1 && state->wal && state->orders)
        s_snapshot(&sb); /* stopped while standing by */
    ordo_wal_reader_destroy(&sb.reader);
    if (result == 0)
        state->index = ordo_standby_evict_finish(&sb.evict); /* the engine's now */
    ordo_standby_evict_close(&sb.evict);
    ordo_follower_close(&sb.follower);
    ZSTD_freeDCtx(sb.dctx);
    ordo_wal_buf_free(&sb.raw);
    if (result != 0)
        ordo_engine_state_free(state);
    return result;
}
