/* Rebuilding and saving the state of all orders: snapshot + log replay on
 * start-up, and writing a snapshot of a registry at a log position. Used by
 * the engine at start-up and shutdown, by ordo-demo and by the benchmarks. */
#ifndef ORDO_STATE_H
#define ORDO_STATE_H

#include "ordo_config.h"
#include "ordo_registry.h"
#include "ordo_wal.h"

#include <stdint.h>

typedef struct {
    uint64_t snapshot_position; /* 0: started without a snapshot */
    uint64_t snapshot_orders;   /* orders loaded from it */
    uint64_t events_replayed;   /* log events applied after it */
    uint64_t head_position;     /* last position in the log */
    int64_t last_timestamp_us;  /* latest event time seen: new events must not go below */
    uint64_t elapsed_us;
} ordo_state_recovery_t;

/* Fills the empty registry `reg` from the newest usable snapshot in
 * `snapshot_dir` (NULL: none) and the log events after it. Snapshots of
 * positions the log does not have (it lost its tail) are deleted first. A
 * snapshot whose records do not decode is skipped for an older one (WARN
 * line). Returns 0,
 * or ORDO_ERR_CORRUPT if a log event does not decode or does not follow its
 * order's history (the log is the truth; the message names the position). */
int ordo_state_recover(ordo_registry_t *reg, ordo_wal_t *wal, const char *snapshot_dir,
                       ordo_state_recovery_t *report);

/* Applies one log record at `position` to its order in `reg`, as replay
 * does, and moves the report's head, event count and latest time on (a
 * standby applying the frames it follows, docs/cluster.md); *applied (may
 * be NULL) is the order. 0, ORDO_ERR_CORRUPT (logged: it does not decode
 * or does not follow its order's history) or ORDO_ERR_NOMEM. */
int ordo_state_apply_record(ordo_registry_t *reg, const void *rec, size_t len, uint64_t position,
                            ordo_state_recovery_t *report, ordo_order_t **applied);

/* Writes every order of the `nregs` registries into a new snapshot
 * covering `position` in `snapshot_dir`, then prunes all but the newest
 * `keep` snapshots, through `io` (NULL: POSIX). The orders must hold no event past `position` that
 * could be lost (ordo_wal_synced_head), or recovery drops the snapshot.
 * A snapshot may hold orders with events past `position` (the engine packs
 * them while it runs): replay from `position` skips the events an order
 * already has, by version and log position. */
int ordo_state_snapshot(const ordo_registry_t *const *regs, size_t nregs, const char *snapshot_dir,
                        uint64_t position, unsigned keep, const ordo_io_t *io);

/* Orders that differ between `recovered` (a snapshot plus the log after
 * it) and `replayed` (the whole log): each order `recovered` holds must be
 * the same in both (version, status, total, update time, items); an order
 * only `replayed` holds counts unless it is finished, Delivered or
 * Cancelled (it left memory for the order index before the snapshot). */
uint64_t ordo_state_differences(const ordo_registry_t *recovered, const ordo_registry_t *replayed);

/* Opens the log in cfg's data folder through `io` (NULL: POSIX; snapshots
 * are read through the same table), recovering a torn tail (`repair` as
 * in ordo_wal_options_t) and rebuilds the state from the newest usable
 * snapshot plus the log. Logs what it recovered, or why it could not (for
 * corruption: the segment file and offset). Returns 0 with *wal and *reg
 * owned by the caller, or a negative ordo_err_t with both NULL. */
int ordo_state_open(const ordo_config_t *cfg, bool repair, const ordo_io_t *io, ordo_wal_t **wal,
                    ordo_registry_t **reg, ordo_state_recovery_t *report);

#endif
