/* Following a partition's stream through an ordered consumer (see
 * ordo_follower.h). */
#include "ordo_follower.h"

#include "ordo_nats.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ordo_follower {
    natsConnection *nc;
    jsCtx *js;
    natsSubscription *sub;
    natsMsg *msg; /* the last one handed out */
    char stream[32];
};

int ordo_follower_open(const char *servers, uint32_t partition, uint64_t from,
                       ordo_follower_t **out, char *err, size_t errsize)
{
    *out = NULL;
    ordo_follower_t *f = calloc(1, sizeof *f);
    if (!f) {
        snprintf(err, errsize, "out of memory");
        return -1;
    }
    snprintf(f->stream, sizeof f->stream, "ORDO_P%" PRIu32, partition);
    char subject[48];
    snprintf(subject, sizeof subject, "ordo.p%" PRIu32 ".frames", partition);
    if (ordo_nats_connect(servers, "ordo-server standby", 5000, &f->nc, &f->js, err, errsize) !=
        0)
        goto fail;
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = f->stream;
    so.Ordered = true;
    so.Config.DeliverPolicy = js_DeliverByStartSequence;
    so.Config.OptStartSeq = from < 1 ? 1 : from;
    jsErrCode jerr = 0;
    natsStatus s = js_SubscribeSync(&f->sub, f->js, subject, NULL, &so, &jerr);
    if (s != NATS_OK) {
        ordo_nats_fail(err, errsize, "following the stream", s, jerr);
        goto fail;
    }
    *out = f;
    return 0;
fail:
    ordo_follower_close(&f);
    return -1;
}

int ordo_follower_next(ordo_follower_t *f, int timeout_ms, ordo_follower_msg_t *m, char *err,
                       size_t errsize)
{
    natsMsg_Destroy(f->msg);
    f->msg = NULL;
    natsStatus s = natsSubscription_NextMsg(&f->msg, f->sub, timeout_ms);
    if (s == NATS_TIMEOUT)
        return 0;
    if (s != NATS_OK)
        return ordo_nats_fail(err, errsize, "reading the stream", s, 0);
    jsMsgMetaData *meta = NULL;
    uint64_t first = 0, count = 0, lease = 0;
    if (natsMsg_GetMetaData(&meta, f->msg) != NATS_OK ||
        !ordo_nats_header_u64(f->msg, "Ordo-First", &first) ||
        !ordo_nats_header_u64(f->msg, "Ordo-Count", &count) || first == 0 || count > UINT32_MAX) {
        jsMsgMetaData_Destroy(meta);
        snprintf(err, errsize, "a message of stream %s is not Ordo's (no Ordo-First and "
                               "Ordo-Count headers)", f->stream);
        return -1;
    }
    ordo_nats_header_u64(f->msg, "Ordo-Lease", &lease);
    *m = (ordo_follower_msg_t){.seq = meta->Sequence.Stream,
                               .first = first,
                               .count = (uint32_t)count,
                               .lease = lease,
                               .data = natsMsg_GetData(f->msg),
                               .len = (size_t)natsMsg_GetDataLength(f->msg)};
    jsMsgMetaData_Destroy(meta);
    return 1;
}

int ordo_follower_last_seq(ordo_follower_t *f, uint64_t *seq, char *err, size_t errsize)
{
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_GetStreamInfo(&si, f->js, f->stream, NULL, &jerr);
    if (s != NATS_OK)
        return ordo_nats_fail(err, errsize, "reading the stream's state", s, jerr);
    *seq = si->State.LastSeq;
    jsStreamInfo_Destroy(si);
    return 0;
}

void ordo_follower_close(ordo_follower_t **fp)
{
    if (!fp || !*fp)
        return;
    ordo_follower_t *f = *fp;
    natsMsg_Destroy(f->msg);
    /* The connection closed first: an ordered consumer's subscription is
     * re-made by the library's own threads, and destroying it while the
     * connection still routes to it has crashed libnats in the field
     * (nats.c issue 924); once closed, nothing reaches it. */
    if (f->nc)
        natsConnection_Close(f->nc);
    natsSubscription_Destroy(f->sub);
    jsCtx_Destroy(f->js);
    natsConnection_Destroy(f->nc);
    free(f);
    *fp = NULL;
}
