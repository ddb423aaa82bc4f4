/* ordo-projector settings: embedded defaults, then ORDO_* environment
 * variables, then flags (flags win), each checked; an invalid one is
 * refused with a sentence naming it (PROJECTIONS.md "Program"). */
#ifndef ORDO_PCONFIG_H
#define ORDO_PCONFIG_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    char engine[256];     /* --engine, ORDO_ENGINE */
    char engine_pub[256]; /* --engine-pub, ORDO_ENGINE_PUB */
    char bind[256];       /* --bind, ORDO_PROJECTOR_BIND */
    char data_dir[PATH_MAX]; /* --data-dir, ORDO_PROJECTOR_DATA_DIR */
    uint64_t save_every;  /* --save-every, ORDO_PROJECTOR_SAVE_EVERY: events between saves */
    /* CURVE towards the engine: --curve-server, --curve-cert (ORDO_CURVE_SERVER,
     * ORDO_CURVE_CERT); "" = plain. */
    char curve_server[PATH_MAX];
    char curve_cert[PATH_MAX];
    /* CURVE on its own ROUTER: --curve-secret, --curve-clients
     * (ORDO_PROJECTOR_CURVE_SECRET, ORDO_PROJECTOR_CURVE_CLIENTS). */
    char curve_secret[PATH_MAX];
    char curve_clients[PATH_MAX];
    bool insecure; /* --insecure: bind beyond loopback without CURVE */
    char metrics[256]; /* --metrics, ORDO_PROJECTOR_METRICS: HOST:PORT for /metrics; "" = none */
    /* The PostgreSQL read models: --postgres CONNINFO (ORDO_PROJECTOR_POSTGRES;
     * "" = none), --postgres-schema (ORDO_PROJECTOR_POSTGRES_SCHEMA, default
     * "ordo"), --postgres-batch (events per transaction catching up). */
    char http[256];    /* --http, ORDO_PROJECTOR_HTTP: HOST:PORT for the live page; "" = none */
    char postgres[1024];
    char postgres_schema[64];
    uint64_t postgres_batch;
    /* Events from a partition's stream in NATS JetStream instead of the
     * engine (docs/cluster.md): --nats URLS (ORDO_PROJECTOR_NATS; "" = from
     * the engine), --partition K/P (ORDO_PROJECTOR_PARTITION: the stream
     * ORDO_P<K>),
     * --nats-durable NAME (ORDO_PROJECTOR_DURABLE, default
     * ordo-projector: the durable consumer, one per projector). */
    char nats[1024];
    uint32_t partition, partitions;
    char nats_durable[128];
} ordo_pconfig_t;

/* tcp://127.0.0.1:7700, :7701, :7702, ./projections, 500,000 events. */
void ordo_pconfig_defaults(ordo_pconfig_t *cfg);

/* Sets a setting by its flag's name ("engine", "engine-pub", "bind",
 * "data-dir", "save-every", "curve-server", "curve-cert", "curve-secret",
 * "curve-clients", "metrics", "http", "postgres", "postgres-schema", "postgres-batch",
 * "nats", "partition", "nats-durable"): 1 set, 0
 * not a setting, -1 invalid (err). */
int ordo_pconfig_set(ordo_pconfig_t *cfg, const char *name, const char *value, char *err,
                     size_t err_size);

/* Checks the settings together once all are read: each CURVE pair whole,
 * and a bind beyond loopback only with CURVE or --insecure. 0 or -1 (err). */
int ordo_pconfig_check(const ordo_pconfig_t *cfg, char *err, size_t err_size);

/* Applies every ORDO_* variable of the projector that is set. 0 or -1 (err). */
int ordo_pconfig_from_env(ordo_pconfig_t *cfg, char *err, size_t err_size);

#endif
