/* Which endpoints only this machine can reach. A server binds anything
 * else only with CURVE, or when told --insecure (DESIGN.md). */
#ifndef ORDO_EXPOSURE_H
#define ORDO_EXPOSURE_H

#include <stdbool.h>

/* True for tcp:// on a 127.x.x.x address or [::1], ipc:// and inproc://;
 * false for anything else (a wildcard, an interface name, a host name, a
 * public address, other transports). */
bool ordo_endpoint_is_local(const char *endpoint);

/* The same for an HTTP server's "HOST:PORT" (--metrics, --http). */
bool ordo_hostport_is_local(const char *hostport);

#endif
