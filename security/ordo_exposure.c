/* Loopback endpoints (see ordo_exposure.h). */
#include "ordo_exposure.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "127.d.d.d", each part a number of 1 to 3 digits up to 255. */
static bool s_loopback_v4(const char *host, size_t len)
{
    int parts = 0;
    size_t i = 0;
    while (i < len) {
        size_t start = i;
        unsigned value = 0;
        while (i < len && host[i] >= '0' && host[i] <= '9' && i - start < 3)
            value = value * 10 + (unsigned)(host[i++] - '0');
        if (i == start || value > 255 || (parts == 0 && value != 127))
            return false;
        parts++;
        if (i < len) {
            if (host[i] != '.' || parts == 4)
                return false;
            i++;
            if (i == len)
                return false;
        }
    }
    return parts == 4;
}

bool ordo_endpoint_is_local(const char *endpoint)
{
    if (!endpoint)
        return false;
    if (!strncmp(endpoint, "ipc://", 6) || !strncmp(endpoint, "inproc://", 9))
        return true;
    if (strncmp(endpoint, "tcp://", 6) != 0)
        return false;
    const char *host = endpoint + 6;
    const char *colon = strrchr(host, ':');
    if (!colon)
        return false;
    size_t len = (size_t)(colon - host);
    if (len == 5 && !memcmp(host, "[::1]", 5))
        return true;
    return s_loopback_v4(host, len);
}

bool ordo_hostport_is_local(const char *hostport)
{
    char endpoint[320];
    if (!hostport || strlen(hostport) > sizeof endpoint - 7)
        return false;
    snprintf(endpoint, sizeof endpoint, "tcp://%s", hostport);
    return ordo_endpoint_is_local(endpoint);
}
