/* The address the /metrics server listens on: "HOST:PORT", where HOST is
 * an IPv4 address, [IPv6] or a name such as localhost, and PORT 0-65535
 * (0: any free port). Checked with the other settings, before anything
 * starts. */
#ifndef ORDO_METRICS_ADDR_H
#define ORDO_METRICS_ADDR_H

#include <stddef.h>
#include <sys/socket.h>

/* 0, or -1 with `err` saying why. */
int ordo_metrics_addr_check(const char *addr, char *err, size_t errsize);

/* The socket address it names (the first the resolver gives). */
int ordo_metrics_addr_resolve(const char *addr, struct sockaddr_storage *out, socklen_t *outlen,
                              char *err, size_t errsize);

#endif
