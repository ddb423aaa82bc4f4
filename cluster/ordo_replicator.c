/* A partition's log replicated through NATS JetStream (see
 * ordo_replicator.h): the connection, the stream, publishing a frame and
 * waiting for its acknowledgement. */
#include "ordo_replicator.h"

#include "ordo_clock.h"
#include "ordo_log.h"

#include <inttypes.h>
#include <nats/nats.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define S_SERVERS_MAX 16
#define S_TRIES 3 /* publishing one frame: a lost acknowledgement is asked again */

struct ordo_replicator {
    natsConnection *nc;
    jsCtx *js;
    char stream[32];
    char subject[48];
    char run[17]; /* this engine run's token: Nats-Msg-Id = <run>-<first> */
    ordo_replicator_end_t end;
    uint8_t *end_frame; /* the stream's last frame as read at open (owned) */
    size_t end_len;
    int timeout_ms;
    bool failed; /* a publish failed: its outcome is unknown */
};

/* Says what failed, with libnats' words. */
static int s_fail(char *err, size_t errsize, const char *what, natsStatus s, jsErrCode jerr)
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

/* A header's value as a whole number. False if missing or not one. */
static bool s_header_u64(natsMsg *m, const char *key, uint64_t *out)
{
    const char *v = NULL;
    if (natsMsgHeader_Get(m, key, &v) != NATS_OK || !v || !*v)
        return false;
    char *end;
    unsigned long long n = strtoull(v, &end, 10);
    if (*end || v[0] == '-')
        return false;
    *out = n;
    return true;
}

/* Reads the stream's last frame: its sequence and last position. */
static int s_read_end(ordo_replicator_t *r, char *err, size_t errsize)
{
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_GetStreamInfo(&si, r->js, r->stream, NULL, &jerr);
    if (s != NATS_OK)
        return s_fail(err, errsize, "reading the stream's state", s, jerr);
    uint64_t seq = si->State.LastSeq;
    jsStreamInfo_Destroy(si);
    r->end = (ordo_replicator_end_t){0, 0};
    if (seq == 0)
        return 0;
    natsMsg *m = NULL;
    s = js_GetMsg(&m, r->js, r->stream, seq, NULL, &jerr);
    if (s != NATS_OK)
        return s_fail(err, errsize, "reading the stream's last frame", s, jerr);
    uint64_t first = 0, count = 0;
    bool ok = s_header_u64(m, "Ordo-First", &first) && s_header_u64(m, "Ordo-Count", &count) &&
              first > 0 && count > 0 && count <= UINT32_MAX;
    int len = natsMsg_GetDataLength(m);
    free(r->end_frame);
    r->end_len = 0;
    if (ok && len > 0 && (r->end_frame = malloc((size_t)len)) != NULL) {
        memcpy(r->end_frame, natsMsg_GetData(m), (size_t)len);
        r->end_len = (size_t)len;
    }
    natsMsg_Destroy(m);
    if (ok && !r->end_frame) {
        snprintf(err, errsize, "out of memory reading the stream's last frame");
        return -1;
    }
    if (!ok) {
        snprintf(err, errsize,
                 "the last message of stream %s (sequence %" PRIu64
                 ") is not a frame of Ordo's (no Ordo-First and Ordo-Count headers)",
                 r->stream, seq);
        return -1;
    }
    r->end = (ordo_replicator_end_t){seq, first + count - 1};
    return 0;
}

/* Makes the stream unless it exists (its settings are then kept). */
static int s_ensure_stream(ordo_replicator_t *r, int replicas, char *err, size_t errsize)
{
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_GetStreamInfo(&si, r->js, r->stream, NULL, &jerr);
    if (s == NATS_OK) {
        jsStreamInfo_Destroy(si);
        return 0;
    }
    if (s != NATS_NOT_FOUND)
        return s_fail(err, errsize, "looking the stream up", s, jerr);
    jsStreamConfig sc;
    jsStreamConfig_Init(&sc);
    const char *subjects[1] = {r->subject};
    sc.Name = r->stream;
    sc.Subjects = subjects;
    sc.SubjectsLen = 1;
    sc.Storage = js_FileStorage;
    sc.Replicas = replicas;
    sc.Retention = js_LimitsPolicy; /* kept until an operator trims it */
    sc.DenyDelete = true;
    s = js_AddStream(&si, r->js, &sc, NULL, &jerr);
    if (s != NATS_OK)
        return s_fail(err, errsize, "making the stream", s, jerr);
    jsStreamInfo_Destroy(si);
    ordo_log_info("replicator", "made stream %s (subject %s, %d replicas)", r->stream, r->subject,
                  replicas);
    return 0;
}

int ordo_replicator_open(const ordo_replicator_options_t *opts, ordo_replicator_t **out,
                         ordo_replicator_end_t *end, char *err, size_t errsize)
{
    *out = NULL;
    if (!opts->servers || !*opts->servers || opts->replicas < 1 || opts->replicas > 5 ||
        opts->timeout_ms < 1) {
        snprintf(err, errsize, "replicator: bad options");
        return -1;
    }
    ordo_replicator_t *r = calloc(1, sizeof *r);
    char *list = strdup(opts->servers);
    const char *servers[S_SERVERS_MAX];
    int n = 0;
    natsOptions *no = NULL;
    if (!r || !list) {
        snprintf(err, errsize, "out of memory");
        goto fail;
    }
    for (char *save = NULL, *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (n == S_SERVERS_MAX) {
            snprintf(err, errsize, "--nats: at most %d servers", S_SERVERS_MAX);
            goto fail;
        }
        servers[n++] = t;
    }
    if (n == 0) {
        snprintf(err, errsize, "--nats: no server");
        goto fail;
    }
    snprintf(r->stream, sizeof r->stream, "ORDO_P%" PRIu32, opts->partition);
    snprintf(r->subject, sizeof r->subject, "ordo.p%" PRIu32 ".frames", opts->partition);
    r->timeout_ms = opts->timeout_ms;
    uint64_t token = 0;
    if (getrandom(&token, sizeof token, 0) != (ssize_t)sizeof token)
        token = ordo_mono_ns() ^ (uint64_t)(uintptr_t)r;
    snprintf(r->run, sizeof r->run, "%016" PRIx64, token);

    natsStatus s;
    if ((s = natsOptions_Create(&no)) != NATS_OK ||
        (s = natsOptions_SetServers(no, servers, n)) != NATS_OK ||
        (s = natsOptions_SetName(no, "ordo-server")) != NATS_OK ||
        (s = natsOptions_SetTimeout(no, opts->timeout_ms)) != NATS_OK ||
        /* Another node of the cluster takes over when one goes: reconnect
         * for ever, quickly; publishes wait for their acknowledgement. */
        (s = natsOptions_SetMaxReconnect(no, -1)) != NATS_OK ||
        (s = natsOptions_SetReconnectWait(no, 100)) != NATS_OK) {
        s_fail(err, errsize, "NATS options", s, 0);
        goto fail;
    }
    if ((s = natsConnection_Connect(&r->nc, no)) != NATS_OK) {
        s_fail(err, errsize, "connecting to NATS", s, 0);
        goto fail;
    }
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = opts->timeout_ms;
    if ((s = natsConnection_JetStream(&r->js, r->nc, &jo)) != NATS_OK) {
        s_fail(err, errsize, "JetStream", s, 0);
        goto fail;
    }
    if (s_ensure_stream(r, opts->replicas, err, errsize) != 0 || s_read_end(r, err, errsize) != 0)
        goto fail;
    natsOptions_Destroy(no);
    free(list);
    *end = r->end;
    *out = r;
    return 0;
fail:
    natsOptions_Destroy(no);
    free(list);
    ordo_replicator_close(&r);
    return -1;
}

int ordo_replicator_publish(ordo_replicator_t *r, const void *frame, size_t len, uint64_t first,
                            uint32_t count, char *err, size_t errsize)
{
    if (r->failed) {
        snprintf(err, errsize, "an earlier frame's replication failed");
        return -1;
    }
    if (first != r->end.last_position + 1 || count == 0 || len > INT32_MAX) {
        snprintf(err, errsize,
                 "frame of positions %" PRIu64 "..%" PRIu64 " does not follow the stream's %" PRIu64,
                 first, first + count - 1, r->end.last_position);
        r->failed = true;
        return -1;
    }
    char first_text[24], count_text[16], expect[24], id[48];
    snprintf(first_text, sizeof first_text, "%" PRIu64, first);
    snprintf(count_text, sizeof count_text, "%" PRIu32, count);
    snprintf(expect, sizeof expect, "%" PRIu64, r->end.seq);
    snprintf(id, sizeof id, "%s-%" PRIu64, r->run, first);
    natsMsg *m = NULL;
    natsStatus s = natsMsg_Create(&m, r->subject, NULL, frame, (int)len);
    if (s == NATS_OK)
        s = natsMsgHeader_Set(m, "Ordo-First", first_text);
    if (s == NATS_OK)
        s = natsMsgHeader_Set(m, "Ordo-Count", count_text);
    /* The stream must end where we think it does (set by hand: libnats
     * leaves out an expected sequence of 0, an empty stream). */
    if (s == NATS_OK)
        s = natsMsgHeader_Set(m, "Nats-Expected-Last-Sequence", expect);
    /* A retry after a lost acknowledgement is recognised, not stored
     * twice: JetStream answers it as a duplicate with the sequence it
     * has. The run token keeps another engine's frame at the same
     * position from looking like ours. */
    if (s == NATS_OK)
        s = natsMsgHeader_Set(m, "Nats-Msg-Id", id);
    if (s != NATS_OK) {
        natsMsg_Destroy(m);
        r->failed = true;
        return s_fail(err, errsize, "making the message", s, 0);
    }
    jsErrCode jerr = 0;
    jsPubAck *ack = NULL;
    for (int attempt = 1; attempt <= S_TRIES; attempt++) {
        jerr = 0;
        s = js_PublishMsg(&ack, r->js, m, NULL, &jerr);
        if (s == NATS_OK || jerr != 0)
            break; /* acknowledged, or JetStream said no: final */
        ordo_log_warn("replicator", "frame at %" PRIu64 ": %s (try %d of %d)", first,
                      natsStatus_GetText(s), attempt, S_TRIES);
    }
    natsMsg_Destroy(m);
    if (s != NATS_OK) {
        r->failed = true;
        return s_fail(err, errsize,
                      jerr == JSStreamWrongLastSequenceErr
                          ? "the stream moved on without this engine (another owner?)"
                          : "publishing the frame",
                      s, jerr);
    }
    uint64_t seq = ack->Sequence;
    jsPubAck_Destroy(ack);
    if (seq != r->end.seq + 1) {
        r->failed = true;
        snprintf(err, errsize, "the stream stored the frame at sequence %" PRIu64 ", not %" PRIu64,
                 seq, r->end.seq + 1);
        return -1;
    }
    r->end = (ordo_replicator_end_t){seq, first + count - 1};
    return 0;
}

bool ordo_replicator_end_is(const ordo_replicator_t *r, const void *frame, size_t len)
{
    return r->end_frame && r->end_len == len && memcmp(r->end_frame, frame, len) == 0;
}

size_t ordo_replicator_max_frame(const ordo_replicator_t *r)
{
    int64_t n = natsConnection_GetMaxPayload(r->nc);
    return n > 1024 ? (size_t)n - 1024 : 0; /* room for the headers */
}

ordo_replicator_end_t ordo_replicator_end(const ordo_replicator_t *r)
{
    return r->end;
}

void ordo_replicator_close(ordo_replicator_t **rp)
{
    if (!rp || !*rp)
        return;
    ordo_replicator_t *r = *rp;
    jsCtx_Destroy(r->js);
    natsConnection_Destroy(r->nc);
    free(r->end_frame);
    free(r);
    *rp = NULL;
}
