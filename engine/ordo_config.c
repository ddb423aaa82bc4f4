/* Settings parsing and checking (see ordo_config.h). */
#include "ordo_config.h"

#include "ordo_exposure.h"
#include "ordo_limits.h"
#include "ordo_metrics_addr.h"
#include "ordo_cluster_flags.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void ordo_config_defaults(ordo_config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    snprintf(cfg->data_dir, sizeof cfg->data_dir, "./data");
    snprintf(cfg->bind, sizeof cfg->bind, "tcp://127.0.0.1:7700");
    snprintf(cfg->pub, sizeof cfg->pub, "tcp://127.0.0.1:7701");
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    cfg->shards = cores > 0 ? (int)cores : 1;
    cfg->fsync_mode = ORDO_SYNC_ALWAYS;
    cfg->fsync_ms = 0;
    cfg->snapshot_every = 1000000;
    cfg->segment_bytes = ORDO_WAL_SEGMENT_DEFAULT;
    cfg->retain_finished_s = 600;
    cfg->nats_replicas = 3;
    cfg->lease_ms = 2000;
    cfg->partition = 0;
    cfg->partitions = 1;
}

/* Parses a whole decimal number in [min, max]. */
static int s_number(const char *text, unsigned long long min, unsigned long long max,
                    unsigned long long *out)
{
    if (!text || !*text || *text == '-' || *text == '+')
        return -1;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno || *end || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

static int s_copy(char *dst, size_t size, const char *name, const char *value, char *err,
                  size_t err_size)
{
    if (!*value || strlen(value) >= size) {
        snprintf(err, err_size, "--%s must be a non-empty value of at most %zu bytes", name,
                 size - 1);
        return -1;
    }
    memcpy(dst, value, strlen(value) + 1);
    return 0;
}

/* A host clients can reach: a name or IPv4 address (letters, digits, '.'
 * and '-', in labels that neither start nor end with '.' or '-'), or an
 * IPv6 address in brackets. */
static bool s_host_ok(const char *h)
{
    size_t n = strlen(h);
    if (n == 0)
        return false;
    if (h[0] == '[')
        return n >= 4 && h[n - 1] == ']' &&
               strspn(h + 1, "0123456789abcdefABCDEF:.") == n - 2;
    if (strspn(h, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") != n)
        return false;
    return h[0] != '.' && h[0] != '-' && h[n - 1] != '.' && h[n - 1] != '-' && !strstr(h, "..");
}

int ordo_config_set(ordo_config_t *cfg, const char *name, const char *value, char *err,
                    size_t err_size)
{
    unsigned long long v;
    if (!strcmp(name, "data-dir"))
        return s_copy(cfg->data_dir, sizeof cfg->data_dir, name, value, err, err_size);
    if (!strcmp(name, "bind"))
        return s_copy(cfg->bind, sizeof cfg->bind, name, value, err, err_size);
    if (!strcmp(name, "pub"))
        return s_copy(cfg->pub, sizeof cfg->pub, name, value, err, err_size);
    if (!strcmp(name, "shards")) {
        if (s_number(value, 1, ORDO_SHARDS_MAX, &v) != 0) {
            snprintf(err, err_size, "--shards must be a number from 1 to %d, not \"%s\"",
                     ORDO_SHARDS_MAX, value);
            return -1;
        }
        cfg->shards = (int)v;
        return 0;
    }
    if (!strcmp(name, "fsync")) {
        if (!strcmp(value, "always")) {
            cfg->fsync_mode = ORDO_SYNC_ALWAYS;
        } else if (!strcmp(value, "never")) {
            cfg->fsync_mode = ORDO_SYNC_NEVER;
        } else if (!strcmp(value, "replicated")) {
            cfg->fsync_mode = ORDO_SYNC_REPLICATED;
        } else if (!strncmp(value, "batch:", 6) && s_number(value + 6, 1, 60000, &v) == 0) {
            cfg->fsync_mode = ORDO_SYNC_BATCH;
            cfg->fsync_ms = (uint32_t)v;
        } else {
            snprintf(err, err_size,
                     "--fsync must be always, batch:MS (MS from 1 to 60000), never or "
                     "replicated, not \"%s\"",
                     value);
            return -1;
        }
        return 0;
    }
    if (!strcmp(name, "snapshot-every")) {
        if (s_number(value, 0, 1000000000000ull, &v) != 0) {
            snprintf(err, err_size,
                     "--snapshot-every must be a number of events (0 = only at "
                     "shutdown), not \"%s\"",
                     value);
            return -1;
        }
        cfg->snapshot_every = v;
        return 0;
    }
    if (!strcmp(name, "segment-bytes")) {
        if (s_number(value, 0, ORDO_WAL_SEGMENT_MAX, &v) != 0 || v < ORDO_WAL_SEGMENT_MIN) {
            snprintf(err, err_size,
                     "--segment-bytes must be a number of bytes from %llu to %llu, "
                     "not \"%s\"",
                     (unsigned long long)ORDO_WAL_SEGMENT_MIN,
                     (unsigned long long)ORDO_WAL_SEGMENT_MAX, value);
            return -1;
        }
        cfg->segment_bytes = v;
        return 0;
    }
    if (!strcmp(name, "retain-finished")) {
        if (s_number(value, 0, ORDO_RETAIN_FINISHED_MAX, &v) != 0) {
            snprintf(err, err_size,
                     "--retain-finished must be a number of seconds from 0 to %llu, not \"%s\"",
                     (unsigned long long)ORDO_RETAIN_FINISHED_MAX, value);
            return -1;
        }
        cfg->retain_finished_s = v;
        return 0;
    }
    if (!strcmp(name, "curve-secret"))
        return s_copy(cfg->curve_secret, sizeof cfg->curve_secret, name, value, err, err_size);
    if (!strcmp(name, "curve-clients"))
        return s_copy(cfg->curve_clients, sizeof cfg->curve_clients, name, value, err, err_size);
    if (!strcmp(name, "metrics")) {
        char why[400];
        if (ordo_metrics_addr_check(value, why, sizeof why) != 0) {
            snprintf(err, err_size, "--metrics: %s", why);
            return -1;
        }
        return s_copy(cfg->metrics, sizeof cfg->metrics, name, value, err, err_size);
    }
    if (!strcmp(name, "nats")) {
        if (ordo_flag_nats(value, err, err_size) != 0)
            return -1;
        return s_copy(cfg->nats, sizeof cfg->nats, name, value, err, err_size);
    }
    if (!strcmp(name, "nats-replicas")) {
        if (s_number(value, 1, 5, &v) != 0) {
            snprintf(err, err_size, "--nats-replicas must be a number from 1 to 5, not \"%s\"",
                     value);
            return -1;
        }
        cfg->nats_replicas = (int)v;
        return 0;
    }
    if (!strcmp(name, "lease-ms")) {
        if (s_number(value, 500, 60000, &v) != 0) {
            snprintf(err, err_size, "--lease-ms must be a number from 500 to 60000, not \"%s\"",
                     value);
            return -1;
        }
        cfg->lease_ms = (uint32_t)v;
        return 0;
    }
    if (!strcmp(name, "partition"))
        return ordo_flag_partition(value, &cfg->partition, &cfg->partitions, err, err_size) == 0
                   ? 0
                   : -1;
    if (!strcmp(name, "advertise")) {
        if (!s_host_ok(value) || strlen(value) >= sizeof cfg->advertise) {
            snprintf(err, err_size,
                     "--advertise must be a host name, an IPv4 address or an IPv6 address in "
                     "brackets (at most %zu bytes), not \"%s\"",
                     sizeof cfg->advertise - 1, value);
            return -1;
        }
        return s_copy(cfg->advertise, sizeof cfg->advertise, name, value, err, err_size);
    }
    snprintf(err, err_size, "unknown setting \"%s\"", name);
    return -1;
}

int ordo_config_check(const ordo_config_t *cfg, char *err, size_t err_size)
{
    bool secret = cfg->curve_secret[0] != '\0', clients = cfg->curve_clients[0] != '\0';
    if (secret != clients) {
        snprintf(err, err_size, "CURVE needs both --curve-secret and --curve-clients (%s is missing)",
                 secret ? "--curve-clients" : "--curve-secret");
        return -1;
    }
    bool replicated = cfg->fsync_mode == ORDO_SYNC_REPLICATED, nats = cfg->nats[0] != '\0';
    if (replicated != nats) {
        snprintf(err, err_size, "%s",
                 replicated ? "--fsync replicated needs --nats (the servers to replicate to)"
                            : "--nats needs --fsync replicated (a command is acknowledged once "
                              "the replicas have its events)");
        return -1;
    }
    if (cfg->partitions > 1 && !nats) {
        snprintf(err, err_size,
                 "--partition %u/%u needs --nats (the partitions' owners are leases in "
                 "JetStream)",
                 cfg->partition, cfg->partitions);
        return -1;
    }
    if (secret || cfg->insecure)
        return 0;
    const char *endpoints[] = {cfg->bind, cfg->pub};
    for (size_t i = 0; i < 2; i++)
        if (!ordo_endpoint_is_local(endpoints[i])) {
            snprintf(err, err_size,
                     "%s is reachable from other machines: give --curve-secret and "
                     "--curve-clients, or --insecure to bind it without authentication",
                     endpoints[i]);
            return -1;
        }
    return 0;
}

int ordo_config_option(ordo_config_t *cfg, const char *name, const char *value, char *err,
                       size_t err_size)
{
    static const char *const settings[] = {
        "data-dir",      "bind",            "pub",          "shards",       "fsync",
        "snapshot-every", "segment-bytes",  "retain-finished", "curve-secret", "curve-clients", "metrics",
        "nats",          "nats-replicas", "lease-ms", "partition", "advertise"};
    for (size_t i = 0; i < sizeof settings / sizeof settings[0]; i++)
        if (!strcmp(name, settings[i]))
            return ordo_config_set(cfg, name, value, err, err_size) == 0 ? 1 : -1;
    return 0;
}

int ordo_config_from_env(ordo_config_t *cfg, char *err, size_t err_size)
{
    static const struct {
        const char *env, *name;
    } vars[] = {{"ORDO_DATA_DIR", "data-dir"},
                {"ORDO_BIND", "bind"},
                {"ORDO_PUB", "pub"},
                {"ORDO_SHARDS", "shards"},
                {"ORDO_FSYNC", "fsync"},
                {"ORDO_SNAPSHOT_EVERY", "snapshot-every"},
                {"ORDO_SEGMENT_BYTES", "segment-bytes"},
                {"ORDO_RETAIN_FINISHED", "retain-finished"},
                {"ORDO_CURVE_SECRET", "curve-secret"},
                {"ORDO_CURVE_CLIENTS", "curve-clients"},
                {"ORDO_METRICS", "metrics"},
                {"ORDO_NATS", "nats"},
                {"ORDO_NATS_REPLICAS", "nats-replicas"},
                {"ORDO_LEASE_MS", "lease-ms"},
                {"ORDO_PARTITION", "partition"},
                {"ORDO_ADVERTISE", "advertise"}};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = getenv(vars[i].env);
        if (!v)
            continue;
        char inner[256];
        if (ordo_config_set(cfg, vars[i].name, v, inner, sizeof inner) != 0) {
            snprintf(err, err_size, "%s: %s", vars[i].env, inner);
            return -1;
        }
    }
    return 0;
}

const char *ordo_config_fsync_text(const ordo_config_t *cfg, char *buf, size_t size)
{
    switch (cfg->fsync_mode) {
    case ORDO_SYNC_ALWAYS: snprintf(buf, size, "always"); break;
    case ORDO_SYNC_NEVER: snprintf(buf, size, "never"); break;
    case ORDO_SYNC_REPLICATED: snprintf(buf, size, "replicated"); break;
    default: snprintf(buf, size, "batch:%u", cfg->fsync_ms); break;
    }
    return buf;
}

void ordo_config_advertised(const ordo_config_t *cfg, const char *endpoint, char *buf,
                            size_t size)
{
    /* Only tcp://HOST:PORT with a numeric port ([v6] hosts too) names a
     * host to replace; anything else (ipc://, a wildcard port) is kept. */
    const char *host = strncmp(endpoint, "tcp://", 6) == 0 ? endpoint + 6 : NULL;
    const char *port = host ? strrchr(host, ':') : NULL;
    if (!port || port == host || !port[1] || strspn(port + 1, "0123456789") != strlen(port + 1)) {
        snprintf(buf, size, "%s", endpoint);
        return;
    }
    size_t host_len = (size_t)(port - host);
    bool any = (host_len == 1 && host[0] == '*') || (host_len == 7 && !memcmp(host, "0.0.0.0", 7)) ||
               (host_len == 4 && !memcmp(host, "[::]", 4));
    char name[256] = "";
    if (cfg->advertise[0])
        snprintf(name, sizeof name, "%s", cfg->advertise);
    else if (any && gethostname(name, sizeof name - 1) != 0)
        snprintf(name, sizeof name, "localhost");
    if (!name[0]) {
        snprintf(buf, size, "%s", endpoint);
        return;
    }
    snprintf(buf, size, "tcp://%s%s", name, port);
}

void ordo_config_wal_dir(const ordo_config_t *cfg, char *buf, size_t size)
{
    snprintf(buf, size, "%s/wal", cfg->data_dir);
}

void ordo_config_snapshot_dir(const ordo_config_t *cfg, char *buf, size_t size)
{
    snprintf(buf, size, "%s/snapshots", cfg->data_dir);
}

uint32_t ordo_config_shard_count(const ordo_config_t *cfg)
{
    if (cfg->shards < 1)
        return 1;
    return cfg->shards > ORDO_SHARDS_MAX ? ORDO_SHARDS_MAX : (uint32_t)cfg->shards;
}

void ordo_config_index_dir(const ordo_config_t *cfg, char *buf, size_t size)
{
    snprintf(buf, size, "%s/index", cfg->data_dir);
}
