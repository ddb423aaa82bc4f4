/* A partition's log replicated through NATS JetStream (see
 * ordo_replicator.h): the connection, the stream, publishing a frame and
 * waiting for its acknowledgement. */
#include "ordo_replicator.h"

#include "ordo_clock.h"
#include "ordo_log.h"
#include "ordo_nats.h"

#include <inttypes.h>
#include <nats/nats.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define S_START_WAIT_S 30 /* at start, JetStream may take this long to answer */
#define S_TRIES 3 /* publishing waits this many timeouts at most, asking again */

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
    uint64_t lease; /* the lease revision frames are written under; 0 = none */
    bool failed;    /* a publish failed: its outcome is unknown */
};

/* Reads the stream's end: its last sequence, and its last frame, past
 * the lease markers after it (messages of no events). */
static int s_read_end(ordo_replicator_t *r, char *err, size_t errsize)
{
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_GetStreamInfo(&si, r->js, r->stream, NULL, &jerr);
    if (s != NATS_OK)
        return ordo_nats_fail(err, errsize, "reading the stream's state", s, jerr);
    uint64_t last_seq = si->State.LastSeq;
    jsStreamInfo_Destroy(si);
    free(r->end_frame);
    r->end_frame = NULL;
    r->end_len = 0;
    r->end = (ordo_replicator_end_t){last_seq, 0};
    for (uint64_t seq = last_seq; seq > 0; seq--) {
        natsMsg *m = NULL;
        if ((s = js_GetMsg(&m, r->js, r->stream, seq, NULL, &jerr)) != NATS_OK)
            return ordo_nats_fail(err, errsize, "reading the stream's last frame", s, jerr);
        uint64_t first = 0, count = 0;
        bool ours = ordo_nats_header_u64(m, "Ordo-First", &first) &&
                    ordo_nats_header_u64(m, "Ordo-Count", &count) && first > 0 && count <= UINT32_MAX;
        if (ours && count == 0) { /* a lease marker */
            natsMsg_Destroy(m);
            continue;
        }
        int len = natsMsg_GetDataLength(m);
        if (ours && len > 0 && (r->end_frame = malloc((size_t)len)) != NULL) {
            memcpy(r->end_frame, natsMsg_GetData(m), (size_t)len);
            r->end_len = (size_t)len;
        }
        natsMsg_Destroy(m);
        if (!ours) {
            snprintf(err, errsize,
                     "message %" PRIu64 " of stream %s is not a frame of Ordo's (no Ordo-First "
                     "and Ordo-Count headers)",
                     seq, r->stream);
            return -1;
        }
        if (!r->end_frame) {
            snprintf(err, errsize, "out of memory reading the stream's last frame");
            return -1;
        }
        r->end.last_position = first + count - 1;
        return 0;
    }
    return 0; /* no frame yet */
}

/* Message `seq`'s Ordo-First and Ordo-Count. 1, 0 none there, -1 err. */
static int s_positions(ordo_replicator_t *r, uint64_t seq, uint64_t *first, uint64_t *count,
                       natsMsg **keep, char *err, size_t errsize)
{
    natsMsg *m = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_GetMsg(&m, r->js, r->stream, seq, NULL, &jerr);
    if (s == NATS_NOT_FOUND || jerr == JSNoMessageFoundErr)
        return 0;
    if (s != NATS_OK)
        return ordo_nats_fail(err, errsize, "reading the stream", s, jerr);
    if (!ordo_nats_header_u64(m, "Ordo-First", first) ||
        !ordo_nats_header_u64(m, "Ordo-Count", count) || *first == 0 || *count > UINT32_MAX) {
        natsMsg_Destroy(m);
        snprintf(err, errsize, "message %" PRIu64 " of stream %s is not a frame of Ordo's", seq,
                 r->stream);
        return -1;
    }
    if (keep)
        *keep = m;
    else
        natsMsg_Destroy(m);
    return 1;
}

int ordo_replicator_frame_ending_at(ordo_replicator_t *r, uint64_t position, uint8_t **frame,
                                    size_t *len, uint64_t *seq_out, char *err, size_t errsize)
{
    if (frame)
        *frame = NULL;
    *len = 0;
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_GetStreamInfo(&si, r->js, r->stream, NULL, &jerr);
    if (s != NATS_OK)
        return ordo_nats_fail(err, errsize, "reading the stream's state", s, jerr);
    uint64_t lo = si->State.FirstSeq, hi = si->State.LastSeq, first = 0, count = 0;
    jsStreamInfo_Destroy(si);
    if (hi == 0 || lo > hi || position == 0)
        return 0;
    /* The last message whose first position is at most `position`. */
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo + 1) / 2;
        int rc = s_positions(r, mid, &first, &count, NULL, err, errsize);
        if (rc < 0)
            return -1;
        if (rc == 0 || first > position)
            hi = mid - 1;
        else
            lo = mid;
    }
    /* Lease markers share the next frame's first position: step back to
     * the data frame. */
    for (uint64_t seq = lo; seq >= 1; seq--) {
        natsMsg *m = NULL;
        int rc = s_positions(r, seq, &first, &count, &m, err, errsize);
        if (rc < 0)
            return -1;
        if (rc == 0)
            return 0;
        if (count == 0) {
            natsMsg_Destroy(m);
            continue;
        }
        int found = first <= position && first + count - 1 == position;
        int n = natsMsg_GetDataLength(m);
        if (found && frame && n > 0 && (*frame = malloc((size_t)n)) != NULL)
            memcpy(*frame, natsMsg_GetData(m), (size_t)n);
        *len = found && n > 0 ? (size_t)n : 0;
        natsMsg_Destroy(m);
        if (found && frame && !*frame) {
            snprintf(err, errsize, "out of memory reading a frame of the stream");
            return -1;
        }
        if (found && seq_out)
            *seq_out = seq;
        return found;
    }
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
        return ordo_nats_fail(err, errsize, "looking the stream up", s, jerr);
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
        return ordo_nats_fail(err, errsize, "making the stream", s, jerr);
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
    if (!r) {
        snprintf(err, errsize, "out of memory");
        return -1;
    }
    snprintf(r->stream, sizeof r->stream, "ORDO_P%" PRIu32, opts->partition);
    snprintf(r->subject, sizeof r->subject, "ordo.p%" PRIu32 ".frames", opts->partition);
    r->timeout_ms = opts->timeout_ms;
    r->lease = opts->lease;
    uint64_t token = 0;
    if (getrandom(&token, sizeof token, 0) != (ssize_t)sizeof token)
        token = ordo_mono_ns() ^ (uint64_t)(uintptr_t)r;
    snprintf(r->run, sizeof r->run, "%016" PRIx64, token);
    if (ordo_nats_connect(opts->servers, "ordo-server", opts->timeout_ms, &r->nc, &r->js, err,
                          errsize) != 0)
        goto fail;
    /* A cluster that just started may not have elected the stream's
     * leader yet ("temporarily unavailable"): ask again for a while. */
    uint64_t deadline = ordo_mono_ns() + S_START_WAIT_S * 1000000000ull;
    int tries = 0;
    while (s_ensure_stream(r, opts->replicas, err, errsize) != 0 ||
           s_read_end(r, err, errsize) != 0) {
        if (ordo_mono_ns() >= deadline)
            goto fail;
        if (++tries == 1 || tries % 10 == 0)
            ordo_log_warn("replicator", "waiting for JetStream (%s)", err);
        nanosleep(&(struct timespec){0, 200000000}, NULL);
    }
    *end = r->end;
    *out = r;
    return 0;
fail:
    ordo_replicator_close(&r);
    return -1;
}

/* Publishes a message after the stream's end: a frame of positions
 * first .. first + count - 1, or (count 0, no data) a lease marker.
 * 0; 1 when JetStream refused it because the stream moved on; -1 with
 * err on any other failure (the outcome is then unknown). */
static int s_publish(ordo_replicator_t *r, const void *data, size_t len, uint64_t first,
                     uint32_t count, char *err, size_t errsize)
{
    char first_text[24], count_text[16], expect[24], id[64], lease[24];
    snprintf(first_text, sizeof first_text, "%" PRIu64, first);
    snprintf(count_text, sizeof count_text, "%" PRIu32, count);
    snprintf(expect, sizeof expect, "%" PRIu64, r->end.seq);
    snprintf(id, sizeof id, "%s-%" PRIu64 "-%" PRIu64, r->run, first, r->end.seq);
    snprintf(lease, sizeof lease, "%" PRIu64, r->lease);
    natsMsg *m = NULL;
    natsStatus s = natsMsg_Create(&m, r->subject, NULL, data, (int)len);
    if (s == NATS_OK)
        s = natsMsgHeader_Set(m, "Ordo-First", first_text);
    if (s == NATS_OK)
        s = natsMsgHeader_Set(m, "Ordo-Count", count_text);
    if (s == NATS_OK && r->lease) /* the lease it was written under */
        s = natsMsgHeader_Set(m, "Ordo-Lease", lease);
    /* The stream must end where we think it does (set by hand: libnats
     * leaves out an expected sequence of 0, an empty stream). */
    if (s == NATS_OK)
        s = natsMsgHeader_Set(m, "Nats-Expected-Last-Sequence", expect);
    /* A retry after a lost acknowledgement is recognised, not stored
     * twice: JetStream answers it as a duplicate with the sequence it
     * has. The run token keeps another engine's message at the same
     * place from looking like ours. */
    if (s == NATS_OK)
        s = natsMsgHeader_Set(m, "Nats-Msg-Id", id);
    if (s != NATS_OK) {
        natsMsg_Destroy(m);
        return ordo_nats_fail(err, errsize, "making the message", s, 0);
    }
    /* Until acknowledged or refused for good, within S_TRIES timeouts:
     * a node lost, a stream leader being elected, a connection moving to
     * another node all pass. */
    jsErrCode jerr = 0;
    jsPubAck *ack = NULL;
    uint64_t deadline = ordo_mono_ns() + (uint64_t)S_TRIES * (uint64_t)r->timeout_ms * 1000000u;
    for (int attempt = 1;; attempt++) {
        jerr = 0;
        uint64_t t0 = ordo_mono_ns();
        s = js_PublishMsg(&ack, r->js, m, NULL, &jerr);
        if (s == NATS_OK || jerr == JSStreamWrongLastSequenceErr || ordo_mono_ns() >= deadline)
            break;
        ordo_log_warn("replicator", "message at position %" PRIu64 ": %s%s (try %d)", first,
                      natsStatus_GetText(s), jerr ? ", JetStream refused it for now" : "",
                      attempt);
        if (ordo_mono_ns() - t0 < 100000000u) /* a quick "no": pause before asking again */
            nanosleep(&(struct timespec){0, 100000000}, NULL);
    }
    natsMsg_Destroy(m);
    if (s != NATS_OK && jerr == JSStreamWrongLastSequenceErr) {
        snprintf(err, errsize,
                 "the stream moved on past sequence %" PRIu64 " without this engine (another "
                 "owner wrote to it)",
                 r->end.seq);
        return 1;
    }
    if (s != NATS_OK)
        return ordo_nats_fail(err, errsize, "publishing to the stream", s, jerr);
    uint64_t seq = ack->Sequence;
    jsPubAck_Destroy(ack);
    if (seq != r->end.seq + 1) {
        snprintf(err, errsize, "the stream stored the message at sequence %" PRIu64 ", not %" PRIu64,
                 seq, r->end.seq + 1);
        return -1;
    }
    r->end.seq = seq;
    if (count)
        r->end.last_position = first + count - 1;
    return 0;
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
    if (s_publish(r, frame, len, first, count, err, errsize) != 0) {
        r->failed = true;
        return -1;
    }
    return 0;
}

int ordo_replicator_claim(ordo_replicator_t *r, char *err, size_t errsize)
{
    if (r->failed || !r->lease) {
        snprintf(err, errsize, "%s", r->failed ? "an earlier message's replication failed"
                                               : "no lease to claim the stream under");
        return -1;
    }
    int rc = s_publish(r, NULL, 0, r->end.last_position + 1, 0, err, errsize);
    if (rc < 0)
        r->failed = true;
    return rc;
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
