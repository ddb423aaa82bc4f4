/* A standby engine (docs/cluster.md): while another engine holds the
 * partition's lease, this one follows the partition's stream, appending
 * each frame to its own log byte for byte (ordo_wal_append_frame checks
 * that it follows and chains) and applying its events to the orders it
 * keeps in memory. It asks for the lease every few hundred milliseconds;
 * once the lease is its own it catches up with the stream's last frame,
 * claims the stream (a lease marker: the old owner is fenced from then
 * on), and hands its state to the engine it becomes, which takes commands
 * from the next position on. */
#ifndef ORDO_STANDBY_H
#define ORDO_STANDBY_H

#include "ordo_config.h"
#include "ordo_engine.h"
#include "ordo_lease.h"

#include <stdbool.h>

/* Runs the standby in cfg's data folder (locked for as long as it runs):
 * every engine starts as one, recovering its log and following the
 * stream, and asks for the lease only once it has caught up (so that an
 * engine never holds the lease while it replays its log or reads the
 * stream, and a caught-up standby wins against one that restarted).
 * Once the lease is taken, its keeper thread renews it (ordo_lease_keep),
 * and it takes over. 0 with *state filled (the caller owns it, and the
 * lease, claimed: passes both to ordo_engine_start). 1 if stop(ctx) said
 * to stop first; -1 on a failure (logged: the log and the stream differ,
 * a frame does not follow, JetStream cannot be read). */
int ordo_standby_run(const ordo_config_t *cfg, ordo_lease_t *lease, bool (*stop)(void *ctx),
                     void *ctx, ordo_engine_state_t *state);

#endif
