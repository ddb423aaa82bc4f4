/* What Ordo's two HTTP servers (/metrics, the projector's live page)
 * share: libmicrohttpd started on a HOST:PORT with bounds on connections
 * (in all, per address, in memory and idle time), its own messages logged
 * at most 20 a minute, the port it took, and a stop that wakes its
 * threads at once. */
#ifndef ORDO_HTTPD_H
#define ORDO_HTTPD_H

#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ordo_httpd ordo_httpd_t;

typedef struct {
    const char *addr;       /* HOST:PORT (ordo_metrics_addr.h) */
    const char *what;       /* for the error: "metrics", "the page" */
    const char *log_module; /* the log lines' module */
    bool thread_per_connection; /* else one thread polls every connection */
    unsigned connections, per_ip, timeout_s;
    MHD_AccessHandlerCallback handler;
    void *cls;
} ordo_httpd_config_t;

/* Starts serving; the thread(s) inherit the caller's signal mask. NULL with
 * err filled if the address is bad or cannot be bound. */
ordo_httpd_t *ordo_httpd_start(const ordo_httpd_config_t *cfg, char *err, size_t errsize);

uint16_t ordo_httpd_port(const ordo_httpd_t *h);

/* Stops every thread and connection; safe on NULL; nulls *h. */
void ordo_httpd_stop(ordo_httpd_t **h);

#endif
