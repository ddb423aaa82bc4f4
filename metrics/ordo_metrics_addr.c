/* The metrics server's address (see ordo_metrics_addr.h). */
#include "ordo_metrics_addr.h"

#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_ADDR_MAX 300

/* Splits "HOST:PORT" / "[V6]:PORT" and resolves it (numeric port; the
 * host by the resolver, so "localhost" works). 0, or -1 with err. */
int ordo_metrics_addr_resolve(const char *addr, struct sockaddr_storage *out, socklen_t *outlen,
                              char *err, size_t errsize)
{
    size_t n = addr ? strlen(addr) : 0;
    if (n == 0 || n >= S_ADDR_MAX) {
        snprintf(err, errsize, "metrics address must be HOST:PORT (such as 127.0.0.1:9464)");
        return -1;
    }
    char host[S_ADDR_MAX];
    const char *colon = strrchr(addr, ':');
    const char *port = colon ? colon + 1 : NULL;
    if (addr[0] == '[') {
        const char *close = strchr(addr, ']');
        if (!close || close[1] != ':') {
            snprintf(err, errsize, "metrics address \"%s\": an IPv6 address is written [ADDR]:PORT",
                     addr);
            return -1;
        }
        memcpy(host, addr + 1, (size_t)(close - addr - 1));
        host[close - addr - 1] = '\0';
        port = close + 2;
    } else if (colon) {
        memcpy(host, addr, (size_t)(colon - addr));
        host[colon - addr] = '\0';
        if (strchr(host, ':')) {
            snprintf(err, errsize, "metrics address \"%s\": an IPv6 address is written [ADDR]:PORT",
                     addr);
            return -1;
        }
    }
    if (!port || !host[0] || !*port || strspn(port, "0123456789") != strlen(port) ||
        strlen(port) > 5 || atoi(port) > 65535) {
        snprintf(err, errsize, "metrics address \"%s\" must be HOST:PORT with PORT 0-65535 "
                 "(such as 127.0.0.1:9464)", addr);
        return -1;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0 || !res) {
        snprintf(err, errsize, "metrics address \"%s\": %s", addr, gai_strerror(rc));
        return -1;
    }
    memcpy(out, res->ai_addr, res->ai_addrlen);
    *outlen = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

int ordo_metrics_addr_check(const char *addr, char *err, size_t errsize)
{
    struct sockaddr_storage ss;
    socklen_t len;
    return ordo_metrics_addr_resolve(addr, &ss, &len, err, errsize);
}
