/* Engine settings: embedded defaults, then ORDO_* environment variables,
 * then command-line flags (flags win). Every value is checked; an invalid
 * one is refused with a message naming the setting. Shared by ordo-server
 * and ordo-demo so they read their settings the same way. */
#ifndef ORDO_CONFIG_H
#define ORDO_CONFIG_H

#include "ordo_wal.h"

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct {
    char data_dir[PATH_MAX];
    char bind[256];
    char pub[256];
    int shards;
    ordo_sync_mode_t fsync_mode;
    uint32_t fsync_ms;       /* batch:MS */
    uint64_t snapshot_every; /* events between snapshots; 0 = only at shutdown */
    uint64_t segment_bytes;
    uint64_t retain_finished_s; /* a finished order leaves memory this long after its last event */
    char curve_secret[PATH_MAX];  /* the server's secret certificate; "" = no CURVE */
    char curve_clients[PATH_MAX]; /* the folder of client certificates let in */
    bool insecure;                /* allow binding beyond loopback without CURVE */
    char metrics[256];            /* HOST:PORT serving /metrics; "" = none */
    char nats[1024];              /* NATS servers for replication; "" = none */
    int nats_replicas;            /* replicas of a stream this engine makes */
    uint32_t lease_ms;            /* the partition's lease lapses this long unrenewed */
    uint32_t partition;           /* the partition this engine serves (--partition K/P) */
    uint32_t partitions;          /* of the cluster; 1 = not partitioned */
    char advertise[200];          /* the host clients reach this engine at; "" = the bind's */
} ordo_config_t;

/* Embedded defaults: ./data, tcp://127.0.0.1:7700 and :7701, one shard per
 * core, fsync always, a snapshot every 1,000,000 events, 64 MiB segments,
 * finished orders kept in memory for 600 s. */
void ordo_config_defaults(ordo_config_t *cfg);

/* Sets one setting by name ("data-dir", "bind", "pub", "shards", "fsync",
 * "snapshot-every", "segment-bytes", "retain-finished", "curve-secret",
 * "curve-clients", "metrics", "nats", "nats-replicas", "lease-ms", "partition",
 * "advertise") from text. Returns 0, or -1 with a
 * sentence in err (e.g. "--segment-bytes must be at least 65536"). */
int ordo_config_set(ordo_config_t *cfg, const char *name, const char *value, char *err,
                    size_t err_size);

/* Handles a command-line option if it names a setting (the long option's
 * name, e.g. "fsync"): 1 = handled, 0 = not a setting, -1 = invalid value
 * (err says why). Lets every program share the settings' flags. */
int ordo_config_option(ordo_config_t *cfg, const char *name, const char *value, char *err,
                       size_t err_size);

/* Applies every ORDO_* variable that is set. 0, or -1 with err. */
int ordo_config_from_env(ordo_config_t *cfg, char *err, size_t err_size);

/* Checks the settings together, once all are read: CURVE needs both
 * --curve-secret and --curve-clients, and without CURVE only loopback
 * endpoints are bound unless `insecure`; --fsync replicated and --nats
 * go together, and more than one partition needs --nats (the partition
 * map lives in JetStream). 0, or -1 with err. */
int ordo_config_check(const ordo_config_t *cfg, char *err, size_t err_size);

/* The endpoint (cfg->bind or cfg->pub) as clients reach it, for the
 * partition map: its host replaced by --advertise, or, when it binds every
 * interface (*, 0.0.0.0, [::]) and no --advertise is given, by this
 * machine's host name. */
void ordo_config_advertised(const ordo_config_t *cfg, const char *endpoint, char *buf,
                            size_t size);

/* "always", "batch:5", "never", "replicated". */
const char *ordo_config_fsync_text(const ordo_config_t *cfg, char *buf, size_t size);

/* The shards an engine runs: cfg->shards, held to 1 .. ORDO_SHARDS_MAX
 * (the order index's filters are per shard, so a standby that fills them
 * must count as the engine does). */
uint32_t ordo_config_shard_count(const ordo_config_t *cfg);

/* Folders inside data_dir for the log, the snapshots and the order index. */
void ordo_config_wal_dir(const ordo_config_t *cfg, char *buf, size_t size);
void ordo_config_snapshot_dir(const ordo_config_t *cfg, char *buf, size_t size);
void ordo_config_index_dir(const ordo_config_t *cfg, char *buf, size_t size);

#endif
