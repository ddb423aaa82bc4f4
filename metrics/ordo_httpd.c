/* libmicrohttpd started and stopped the same way for every Ordo HTTP
 * server (see ordo_httpd.h). */
#include "ordo_httpd.h"

#include "ordo_clock.h"
#include "ordo_log.h"
#include "ordo_metrics_addr.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define S_CONNECTION_MEMORY (32 * 1024) /* request line and headers: beyond, 431/414 */
#define S_LOG_PER_MINUTE 20

struct ordo_httpd {
    struct MHD_Daemon *daemon;
    const char *log_module;
    uint16_t port;
    uint64_t log_minute, log_lines, log_dropped; /* s_log's rate limit */
};

/* libmicrohttpd's messages (a request too large, the connection limit
 * reached), at most S_LOG_PER_MINUTE a minute: a flood must not flood the
 * log. MHD calls it from its threads. */
static void s_log(void *cls, const char *fmt, va_list ap)
{
    ordo_httpd_t *h = cls;
    uint64_t minute = ordo_mono_ns() / 60000000000ull;
    if (minute != h->log_minute) {
        if (h->log_dropped)
            ordo_log_warn(h->log_module, "%llu more such messages in the last minute",
                          (unsigned long long)h->log_dropped);
        h->log_minute = minute;
        h->log_lines = h->log_dropped = 0;
    }
    if (h->log_lines++ >= S_LOG_PER_MINUTE) {
        h->log_dropped++;
        return;
    }
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    ordo_log_warn(h->log_module, "%s", line);
}

ordo_httpd_t *ordo_httpd_start(const ordo_httpd_config_t *cfg, char *err, size_t errsize)
{
    struct sockaddr_storage ss;
    socklen_t len;
    if (ordo_metrics_addr_resolve(cfg->addr, &ss, &len, err, errsize) != 0)
        return NULL;
    ordo_httpd_t *h = calloc(1, sizeof *h);
    if (!h) {
        snprintf(err, errsize, "out of memory");
        return NULL;
    }
    h->log_module = cfg->log_module;
    /* ITC: stopping wakes the threads at once, even one that is not
     * polling the listening socket (at the connection limit). */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ITC |
                     MHD_USE_ERROR_LOG |
                     (cfg->thread_per_connection ? MHD_USE_THREAD_PER_CONNECTION : 0);
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    h->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, cfg->handler, cfg->cls, MHD_OPTION_EXTERNAL_LOGGER, s_log, h,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss, MHD_OPTION_CONNECTION_LIMIT,
        cfg->connections, MHD_OPTION_PER_IP_CONNECTION_LIMIT, cfg->per_ip,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)S_CONNECTION_MEMORY,
        MHD_OPTION_CONNECTION_TIMEOUT, cfg->timeout_s, MHD_OPTION_END);
    if (!h->daemon) {
        snprintf(err, errsize, "cannot serve %s on %s (in use, or not an address of this "
                 "machine?)", cfg->what, cfg->addr);
        free(h);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info ? info->port : 0;
    return h;
}

uint16_t ordo_httpd_port(const ordo_httpd_t *h)
{
    return h ? h->port : 0;
}

void ordo_httpd_stop(ordo_httpd_t **hp)
{
    if (!hp || !*hp)
        return;
    MHD_stop_daemon((*hp)->daemon);
    free(*hp);
    *hp = NULL;
}
