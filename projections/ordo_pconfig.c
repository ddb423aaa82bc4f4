/* ordo-projector settings (see ordo_pconfig.h). */
#include "ordo_pconfig.h"

#include "ordo_exposure.h"
#include "ordo_metrics_addr.h"
#include "ordo_cluster_flags.h"
#include "ordo_pgschema.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ordo_pconfig_defaults(ordo_pconfig_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    snprintf(cfg->engine, sizeof cfg->engine, "tcp://127.0.0.1:7700");
    snprintf(cfg->engine_pub, sizeof cfg->engine_pub, "tcp://127.0.0.1:7701");
    snprintf(cfg->bind, sizeof cfg->bind, "tcp://127.0.0.1:7702");
    snprintf(cfg->data_dir, sizeof cfg->data_dir, "./projections");
    cfg->save_every = 500000;
    snprintf(cfg->postgres_schema, sizeof cfg->postgres_schema, "ordo");
    cfg->postgres_batch = 500000;
    cfg->partitions = 1;
    snprintf(cfg->nats_durable, sizeof cfg->nats_durable, "ordo-projector");
}

static int s_text(char *dst, size_t size, const char *name, const char *value, char *err,
                  size_t err_size)
{
    if (!*value || strlen(value) >= size) {
        snprintf(err, err_size, "--%s must be a non-empty value of at most %zu bytes", name,
                 size - 1);
        return -1;
    }
    memcpy(dst, value, strlen(value) + 1);
    return 1;
}

int ordo_pconfig_set(ordo_pconfig_t *cfg, const char *name, const char *value, char *err,
                     size_t err_size)
{
    if (!strcmp(name, "engine"))
        return s_text(cfg->engine, sizeof cfg->engine, name, value, err, err_size);
    if (!strcmp(name, "engine-pub"))
        return s_text(cfg->engine_pub, sizeof cfg->engine_pub, name, value, err, err_size);
    if (!strcmp(name, "bind"))
        return s_text(cfg->bind, sizeof cfg->bind, name, value, err, err_size);
    if (!strcmp(name, "data-dir"))
        return s_text(cfg->data_dir, sizeof cfg->data_dir, name, value, err, err_size);
    if (!strcmp(name, "postgres"))
        return s_text(cfg->postgres, sizeof cfg->postgres, name, value, err, err_size);
    if (!strcmp(name, "postgres-schema")) {
        if (!ordo_pg_schema_name_ok(value)) {
            snprintf(err, err_size,
                     "--postgres-schema must be 1 to %d of a-z, 0-9 and _, not starting with a "
                     "digit or pg_ and not ending in _old or _rebuild, not \"%s\"",
                     ORDO_PG_SCHEMA_MAX, value);
            return -1;
        }
        return s_text(cfg->postgres_schema, sizeof cfg->postgres_schema, name, value, err,
                      err_size);
    }
    if (!strcmp(name, "postgres-batch")) {
        char *end;
        errno = 0;
        unsigned long long v = value[0] >= '0' && value[0] <= '9' ? strtoull(value, &end, 10) : 0;
        if (value[0] < '0' || value[0] > '9' || errno || *end || v < 1 || v > 1000000ULL) {
            snprintf(err, err_size,
                     "--postgres-batch must be a whole number of events from 1 to 1000000, not "
                     "\"%s\"",
                     value);
            return -1;
        }
        cfg->postgres_batch = v;
        return 1;
    }
    if (!strcmp(name, "metrics") || !strcmp(name, "http")) {
        char why[400];
        if (ordo_metrics_addr_check(value, why, sizeof why) != 0) {
            snprintf(err, err_size, "--%s: %s", name, why);
            return -1;
        }
        return name[0] == 'm' ? s_text(cfg->metrics, sizeof cfg->metrics, name, value, err, err_size)
                              : s_text(cfg->http, sizeof cfg->http, name, value, err, err_size);
    }
    if (!strcmp(name, "nats")) {
        if (ordo_flag_nats(value, err, err_size) != 0)
            return -1;
        return s_text(cfg->nats, sizeof cfg->nats, name, value, err, err_size);
    }
    if (!strcmp(name, "partition"))
        return ordo_flag_partition(value, &cfg->partition, &cfg->partitions, err, err_size) == 0
                   ? 1
                   : -1;
    if (!strcmp(name, "nats-durable")) {
        /* A JetStream consumer name: no '.', '*', '>' or spaces. */
        if (!*value || strlen(value) >= sizeof cfg->nats_durable ||
            strspn(value, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") !=
                strlen(value)) {
            snprintf(err, err_size,
                     "--nats-durable must be 1 to %zu letters, digits, '_' and '-', not \"%s\"",
                     sizeof cfg->nats_durable - 1, value);
            return -1;
        }
        return s_text(cfg->nats_durable, sizeof cfg->nats_durable, name, value, err, err_size);
    }
    if (!strcmp(name, "save-every")) {
        char *end;
        errno = 0;
        unsigned long long v = value[0] >= '0' && value[0] <= '9' ? strtoull(value, &end, 10) : 0;
        if (value[0] < '0' || value[0] > '9' || errno || *end || v < 1 || v > 100000000ULL) {
            snprintf(err, err_size,
                     "--save-every must be a whole number of events from 1 to 100000000, not "
                     "\"%s\"",
                     value);
            return -1;
        }
        cfg->save_every = v;
        return 1;
    }
    static const struct {
        const char *name;
        size_t offset;
    } paths[] = {{"curve-server", offsetof(ordo_pconfig_t, curve_server)},
                 {"curve-cert", offsetof(ordo_pconfig_t, curve_cert)},
                 {"curve-secret", offsetof(ordo_pconfig_t, curve_secret)},
                 {"curve-clients", offsetof(ordo_pconfig_t, curve_clients)}};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++)
        if (!strcmp(name, paths[i].name))
            return s_text((char *)cfg + paths[i].offset, PATH_MAX, name, value, err, err_size);
    return 0;
}

int ordo_pconfig_check(const ordo_pconfig_t *cfg, char *err, size_t err_size)
{
    bool server = cfg->curve_server[0], cert = cfg->curve_cert[0];
    bool secret = cfg->curve_secret[0], clients = cfg->curve_clients[0];
    if (server != cert) {
        snprintf(err, err_size,
                 "CURVE towards the engine needs both --curve-server and --curve-cert (%s is "
                 "missing)",
                 server ? "--curve-cert" : "--curve-server");
        return -1;
    }
    if (secret != clients) {
        snprintf(err, err_size,
                 "CURVE on --bind needs both --curve-secret and --curve-clients (%s is missing)",
                 secret ? "--curve-clients" : "--curve-secret");
        return -1;
    }
    if (cfg->nats[0] && server) {
        snprintf(err, err_size,
                 "--nats reads the events from JetStream, not from the engine: "
                 "--curve-server and --curve-cert do not apply");
        return -1;
    }
    if (!secret && !cfg->insecure && !ordo_endpoint_is_local(cfg->bind)) {
        snprintf(err, err_size,
                 "%s is reachable from other machines: give --curve-secret and "
                 "--curve-clients, or --insecure to bind it without authentication",
                 cfg->bind);
        return -1;
    }
    return 0;
}

int ordo_pconfig_from_env(ordo_pconfig_t *cfg, char *err, size_t err_size)
{
    static const char *const vars[][2] = {
        {"ORDO_ENGINE", "engine"},
        {"ORDO_ENGINE_PUB", "engine-pub"},
        {"ORDO_PROJECTOR_BIND", "bind"},
        {"ORDO_PROJECTOR_DATA_DIR", "data-dir"},
        {"ORDO_PROJECTOR_SAVE_EVERY", "save-every"},
        {"ORDO_CURVE_SERVER", "curve-server"},
        {"ORDO_CURVE_CERT", "curve-cert"},
        {"ORDO_PROJECTOR_CURVE_SECRET", "curve-secret"},
        {"ORDO_PROJECTOR_CURVE_CLIENTS", "curve-clients"},
        {"ORDO_PROJECTOR_METRICS", "metrics"},
        {"ORDO_PROJECTOR_HTTP", "http"},
        {"ORDO_PROJECTOR_POSTGRES", "postgres"},
        {"ORDO_PROJECTOR_POSTGRES_SCHEMA", "postgres-schema"},
        {"ORDO_PROJECTOR_POSTGRES_BATCH", "postgres-batch"},
        {"ORDO_PROJECTOR_NATS", "nats"},
        {"ORDO_PROJECTOR_PARTITION", "partition"},
        {"ORDO_PROJECTOR_DURABLE", "nats-durable"},
    };
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = getenv(vars[i][0]);
        if (v && ordo_pconfig_set(cfg, vars[i][1], v, err, err_size) < 0) {
            size_t n = strlen(err);
            snprintf(err + n, err_size - n, " (from %s)", vars[i][0]);
            return -1;
        }
    }
    return 0;
}
