/* A connection to a NATS cluster with JetStream (see ordo_nats.h). */
#include "ordo_nats.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_SERVERS_MAX 16

bool ordo_nats_header_u64(natsMsg *m, const char *key, uint64_t *out)
{
    const char *v = NULL;
    if (natsMsgHeader_Get(m, key, &v) != NATS_OK || !v || !*v || v[0] == '-' || v[0] == '+')
        return false;
    char *end;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (*end || errno)
        return false;
    *out = n;
    return true;
}

int ordo_nats_fail(char *err, size_t errsize, const char *what, natsStatus s, jsErrCode jerr)
{
    const char *last = nats_GetLastError(NULL);
    if (jerr)
        snprintf(err, errsize, "%s: %s (JetStream error %d)%s%s", what, natsStatus_GetText(s),
                 (int)jerr, last ? ": " : "", last ? last : "");
    else
        snprintf(err, errsize, "%s: %s%s%s", what, natsStatus_GetText(s), last ? ": " : "",
                 last ? last : "");
    return -1;
}

int ordo_nats_connect(const char *servers, const char *name, int timeout_ms,
                      natsConnection **nc, jsCtx **js, char *err, size_t errsize)
{
    *nc = NULL;
    *js = NULL;
    char *list = servers ? strdup(servers) : NULL;
    const char *urls[S_SERVERS_MAX];
    int n = 0, rc = -1;
    natsOptions *no = NULL;
    if (!list) {
        snprintf(err, errsize, "out of memory");
        return -1;
    }
    for (char *save = NULL, *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (n == S_SERVERS_MAX) {
            snprintf(err, errsize, "--nats: at most %d servers", S_SERVERS_MAX);
            goto out;
        }
        urls[n++] = t;
    }
    if (n == 0) {
        snprintf(err, errsize, "--nats: no server");
        goto out;
    }
    natsStatus s;
    if ((s = natsOptions_Create(&no)) != NATS_OK ||
        (s = natsOptions_SetServers(no, urls, n)) != NATS_OK ||
        (s = natsOptions_SetName(no, name)) != NATS_OK ||
        (s = natsOptions_SetTimeout(no, timeout_ms)) != NATS_OK ||
        /* Another node of the cluster takes over when one goes: reconnect
         * for ever, quickly; requests wait for their answers. */
        (s = natsOptions_SetMaxReconnect(no, -1)) != NATS_OK ||
        (s = natsOptions_SetReconnectWait(no, 100)) != NATS_OK) {
        ordo_nats_fail(err, errsize, "NATS options", s, 0);
        goto out;
    }
    if ((s = natsConnection_Connect(nc, no)) != NATS_OK) {
        ordo_nats_fail(err, errsize, "connecting to NATS", s, 0);
        goto out;
    }
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = timeout_ms;
    if ((s = natsConnection_JetStream(js, *nc, &jo)) != NATS_OK) {
        ordo_nats_fail(err, errsize, "JetStream", s, 0);
        natsConnection_Destroy(*nc);
        *nc = NULL;
        goto out;
    }
    rc = 0;
out:
    natsOptions_Destroy(no);
    free(list);
    return rc;
}
