/* The projector's events from a partition's stream (see ordo_pstream.h):
 * one thread answers Ping and ReadAll on the ROUTER from the stream's
 * frames, another publishes the durable consumer's frames on the PUB. */
#include "ordo_pstream.h"

#include "ordo_clock.h"
#include "ordo_codec.h"
#include "ordo_limits.h"
#include "ordo_log.h"
#include "ordo_nats.h"
#include "ordo_wal_format.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>
#include <zstd.h>

#define S_FETCH 64         /* frames per pull */
#define S_WAIT_MS 200      /* a pull's or a poll's wait */
#define S_BODY_MAX (1u << 20)
#define S_CACHE 128        /* decoded frames the reader keeps (about 25 MB under load) */
#define S_CACHE_BYTES (128u << 20) /* ... and at most this much of their buffers */
#define S_KNOWN_MAX (1u << 20)     /* messages remembered (24 MiB); thinned past it */
#define S_HEAD_EVERY_MS 200 /* a Ping or a ReadAll past the head asks the stream so often */
#define S_GET_WAIT_MS 2000  /* a message get's wait */

/* One stream message read and checked: a frame's records, or a marker. */
typedef struct {
    uint64_t seq;
    uint64_t first;
    uint32_t count; /* 0: a lease marker */
    ordo_wal_buf_t raw; /* the decompressed records (count > 0) */
    size_t raw_len;
    /* The reader's: the frame's events in wire form, back to back, made
     * once for every follower that reads them (packed: made). */
    bool packed;
    msgpack_sbuffer wire;
    size_t *ends; /* [count]: where each event ends in `wire` */
    size_t cap_ends;
} s_frame_t;

struct ordo_pstream {
    ordo_pstream_config_t cfg;
    char stream[32], subject[48], durable[128];
    char endpoint[64], pub_endpoint[64];
    void *zctx, *router, *pub;
    natsConnection *nc_read, *nc_feed;
    jsCtx *js_read, *js_feed;
    natsSubscription *sub; /* the durable pull consumer */
    pthread_t reader, feeder;
    bool reader_started, feeder_started;
    atomic_bool stop;
    atomic_uint_fast64_t head;
};

/* Checks a message's bytes as a frame of positions first .. first+count-1
 * and decompresses its records into f->raw. 0, or -1 with why. */
static int s_decode(ZSTD_DCtx *dctx, const void *data, size_t len, uint64_t first,
                    uint64_t count, s_frame_t *f, const char **why)
{
    ordo_wal_hdr_t h;
    *why = NULL;
    if (len < ORDO_WAL_HEADER_SIZE || ordo_wal_hdr_decode(data, &h, why) != 0)
        return *why ? -1 : (*why = "shorter than a frame header", -1);
    if ((uint64_t)len != ORDO_WAL_HEADER_SIZE + (uint64_t)h.clen) {
        *why = "its length is not its header's";
        return -1;
    }
    if (h.first != first || h.count != count) {
        *why = "its positions are not its headers' (Ordo-First, Ordo-Count)";
        return -1;
    }
    if (ordo_wal_frame_decode(dctx, data, &h, (const uint8_t *)data + ORDO_WAL_HEADER_SIZE,
                              &f->raw, why) != 0)
        return -1;
    f->first = first;
    f->count = (uint32_t)count;
    f->raw_len = h.rlen;
    return 0;
}

/* Reads a message's Ordo headers. False if it is not Ordo's. */
static bool s_headers(natsMsg *m, uint64_t *first, uint64_t *count)
{
    return ordo_nats_header_u64(m, "Ordo-First", first) &&
           ordo_nats_header_u64(m, "Ordo-Count", count) && *first >= 1 &&
           *count <= UINT32_MAX;
}

/* ---- the ROUTER: Ping and ReadAll --------------------------------------- */

/* What the reader knows of a message: its sequence and positions. */
typedef struct {
    uint64_t seq, first;
    uint32_t count;
} s_known_t;

typedef struct {
    ordo_pstream_t *ps;
    ZSTD_DCtx *dctx;
    /* Frames read lately, decoded: the followers read about the same
     * range, each in its own pages, so most pages find their frames here. */
    s_frame_t cache[S_CACHE];
    uint32_t clock; /* the next slot to reuse */
    /* Every message read, by sequence (so by position): where a position
     * is, without asking the stream. */
    s_known_t *known;
    size_t nknown, capknown;
    size_t cache_bytes;   /* the cache's buffers (capacities) */
    uint64_t head_asked;  /* when the stream's end was last read (monotonic ns) */
    jsOptions jo;         /* message gets: a short wait, so a stop is not held up */
    ordo_request_t *req;
    ordo_event_t *ev;
    msgpack_sbuffer out, events;
    msgpack_packer out_pk, events_pk;
} s_reader_t;

/* Remembers where a message's positions are (kept sorted by sequence). */
static void s_learn(s_reader_t *r, const s_frame_t *f)
{
    size_t lo = 0, hi = r->nknown;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (r->known[mid].seq < f->seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < r->nknown && r->known[lo].seq == f->seq)
        return;
    if (r->nknown == S_KNOWN_MAX) { /* keep every other: bisection fills the gaps */
        size_t k = 0;
        for (size_t i = 0; i < r->nknown; i += 2)
            r->known[k++] = r->known[i];
        r->nknown = k;
        s_learn(r, f);
        return;
    }
    if (r->nknown == r->capknown) {
        size_t cap = r->capknown ? 2 * r->capknown : 1024;
        s_known_t *grown = realloc(r->known, cap * sizeof *grown);
        if (!grown)
            return; /* only a hint */
        r->known = grown;
        r->capknown = cap;
    }
    memmove(&r->known[lo + 1], &r->known[lo], (r->nknown - lo) * sizeof *r->known);
    r->known[lo] = (s_known_t){f->seq, f->first, f->count};
    r->nknown++;
}

static size_t s_slot_bytes(const s_frame_t *f)
{
    return f->raw.cap + (f->wire.data ? f->wire.alloc : 0) + f->cap_ends * sizeof *f->ends;
}

static void s_slot_free(s_reader_t *r, s_frame_t *f)
{
    r->cache_bytes -= s_slot_bytes(f);
    ordo_wal_buf_free(&f->raw);
    if (f->wire.data)
        msgpack_sbuffer_destroy(&f->wire);
    memset(&f->wire, 0, sizeof f->wire);
    free(f->ends);
    f->ends = NULL;
    f->cap_ends = 0;
    f->seq = 0;
    f->packed = false;
}

/* Before slot `next` is filled again: its buffers go if they are large,
 * and other slots' too (oldest first) while the cache holds more than its
 * bytes' bound. A stream's frames may each decompress to tens of MB. */
static void s_trim(s_reader_t *r, s_frame_t *next)
{
    if (s_slot_bytes(next) > S_CACHE_BYTES / 16)
        s_slot_free(r, next);
    for (uint32_t i = 0, at = r->clock; i < S_CACHE && r->cache_bytes > S_CACHE_BYTES; i++) {
        s_frame_t *f = &r->cache[(at + i) % S_CACHE];
        if (f != next)
            s_slot_free(r, f);
    }
}

/* Message `seq` of the stream, checked and decoded (from the cache, or
 * read and kept there). 1 with *out set, 0 no such message (beyond the
 * end, or gone), -1 failed (why). */
static int s_read_seq(s_reader_t *r, uint64_t seq, s_frame_t **out, const char **why)
{
    for (uint32_t i = 0; i < S_CACHE; i++)
        if (r->cache[i].seq == seq) {
            *out = &r->cache[i];
            return 1;
        }
    natsMsg *m = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_GetMsg(&m, r->ps->js_read, r->ps->stream, seq, &r->jo, &jerr);
    if (s == NATS_NOT_FOUND || jerr == JSNoMessageFoundErr)
        return 0;
    if (s != NATS_OK) {
        *why = natsStatus_GetText(s);
        return -1;
    }
    s_frame_t *f = &r->cache[r->clock];
    r->clock = (r->clock + 1) % S_CACHE;
    s_trim(r, f);
    uint64_t first, count;
    int rc = 1;
    size_t before = s_slot_bytes(f);
    f->seq = 0;
    f->packed = false;
    if (!s_headers(m, &first, &count)) {
        *why = "a message of the stream is not a frame of Ordo's";
        rc = -1;
    } else if (count == 0) {
        f->first = first;
        f->count = 0;
    } else if (s_decode(r->dctx, natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), first,
                        count, f, why) != 0) {
        rc = -1;
    }
    natsMsg_Destroy(m);
    r->cache_bytes += s_slot_bytes(f) - before;
    if (rc == 1) {
        f->seq = seq;
        s_learn(r, f);
        *out = f;
    }
    return rc;
}

static void s_free_cache(s_reader_t *r)
{
    for (uint32_t i = 0; i < S_CACHE; i++)
        s_slot_free(r, &r->cache[i]);
    free(r->known);
}

/* The stream's first and last sequences. 0 or -1. */
static int s_bounds(s_reader_t *r, uint64_t *first_seq, uint64_t *last_seq, const char **why)
{
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_GetStreamInfo(&si, r->ps->js_read, r->ps->stream, NULL, &jerr);
    if (s != NATS_OK) {
        *why = natsStatus_GetText(s);
        return -1;
    }
    *first_seq = si->State.FirstSeq;
    *last_seq = si->State.LastSeq;
    jsStreamInfo_Destroy(si);
    return 0;
}

/* The sequence to read position `from` from: the last message whose first
 * position is at most `from`. What was read before says where it is, or
 * narrows the bisection over the stream. 0 (*seq_out 0: the stream is
 * empty); -1 failed. */
static int s_find(s_reader_t *r, uint64_t from, uint64_t *seq_out, const char **why)
{
    /* The last known message starting at or before `from`. */
    size_t lo_i = 0, hi_i = r->nknown;
    while (lo_i < hi_i) {
        size_t mid = (lo_i + hi_i) / 2;
        if (r->known[mid].first <= from)
            lo_i = mid + 1;
        else
            hi_i = mid;
    }
    const s_known_t *at = lo_i > 0 ? &r->known[lo_i - 1] : NULL;
    const s_known_t *after = lo_i < r->nknown ? &r->known[lo_i] : NULL;
    if (at && at->count > 0 && from < at->first + at->count) {
        *seq_out = at->seq; /* inside a known frame */
        return 0;
    }
    if (at && after && after->seq == at->seq + 1) {
        *seq_out = after->seq; /* between two known neighbours: the later */
        return 0;
    }
    uint64_t lo, hi;
    if (s_bounds(r, &lo, &hi, why) != 0)
        return -1;
    if (hi == 0 || lo > hi) {
        *seq_out = 0;
        return 0;
    }
    if (at && at->seq > lo)
        lo = at->seq;
    if (after && after->seq > lo && after->seq - 1 < hi)
        hi = after->seq - 1;
    while (lo < hi) { /* invariant: first(lo) <= from, or lo is the stream's first */
        uint64_t mid = lo + (hi - lo + 1) / 2;
        s_frame_t *f = NULL;
        int rc = s_read_seq(r, mid, &f, why);
        if (rc < 0)
            return -1;
        if (rc == 0 || f->first > from)
            hi = mid - 1;
        else
            lo = mid;
    }
    *seq_out = lo;
    return 0;
}

/* The stream's last position, read from the stream itself at most every
 * S_HEAD_EVERY_MS: the feeder moves the head as it publishes, but if its
 * consumer is gone (deleted, or a NATS node lost it) Ping and ReadAll must
 * not stop at the last position it published. The head only grows. */
static uint64_t s_head_now(s_reader_t *r)
{
    uint64_t now = ordo_mono_ns(), head = atomic_load(&r->ps->head);
    if (now - r->head_asked < (uint64_t)S_HEAD_EVERY_MS * 1000000u)
        return head;
    r->head_asked = now;
    uint64_t lo, hi;
    const char *why = NULL;
    if (s_bounds(r, &lo, &hi, &why) != 0)
        return head;
    for (uint64_t seq = hi; seq >= lo && seq > 0 && hi - seq < 64; seq--) {
        s_frame_t *f = NULL;
        if (s_read_seq(r, seq, &f, &why) != 1)
            break;
        if (f->count > 0) {
            uint64_t last = f->first + f->count - 1, was = head;
            while (last > was && !atomic_compare_exchange_weak(&r->ps->head, &was, last)) {
            }
            return last > head ? last : head;
        }
    }
    return head;
}

/* The reply to a request whose envelope (its routing id, and a REQ's
 * empty delimiter or a proxy's frames) is `env`: the same frames back,
 * then the reply. */
static void s_reply(s_reader_t *r, zmq_msg_t *env, int nframes)
{
    for (int i = 0; i < nframes; i++)
        zmq_msg_send(&env[i], r->ps->router, ZMQ_SNDMORE | ZMQ_DONTWAIT);
    zmq_send(r->ps->router, r->out.data, r->out.size, ZMQ_DONTWAIT);
}

static void s_error(s_reader_t *r, ordo_code_t code, const char *message)
{
    ordo_error_t err;
    ordo_error_set(&err, code, "%s", message);
    msgpack_sbuffer_clear(&r->out);
    ordo_reply_pack_error(&r->out_pk, r->req->request_id, &err);
}

/* Makes the frame's events in wire form, once. 0, or -1 (why). */
static int s_pack_frame_bytes(s_reader_t *r, s_frame_t *f, const char **why);

static int s_pack_frame(s_reader_t *r, s_frame_t *f, const char **why)
{
    if (f->packed)
        return 0;
    size_t before = s_slot_bytes(f);
    int rc = s_pack_frame_bytes(r, f, why);
    r->cache_bytes += s_slot_bytes(f) - before;
    return rc;
}

static int s_pack_frame_bytes(s_reader_t *r, s_frame_t *f, const char **why)
{
    if (f->cap_ends < f->count) {
        size_t *grown = realloc(f->ends, f->count * sizeof *grown);
        if (!grown) {
            *why = "out of memory";
            return -1;
        }
        f->ends = grown;
        f->cap_ends = f->count;
    }
    if (!f->wire.data)
        msgpack_sbuffer_init(&f->wire);
    msgpack_sbuffer_clear(&f->wire);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &f->wire, msgpack_sbuffer_write);
    size_t off = 0, i = 0;
    const void *rec;
    size_t rec_len;
    for (uint64_t pos = f->first;
         i < f->count && ordo_wal_body_next(f->raw.data, f->raw_len, &off, &rec, &rec_len) == 1;
         pos++, i++) {
        if (ordo_event_decode_record(rec, rec_len, pos, r->ev) != 0) {
            *why = "a record of the stream does not decode";
            return -1;
        }
        if (ordo_event_pack(&pk, r->ev) != 0) {
            *why = "out of memory";
            return -1;
        }
        f->ends[i] = f->wire.size;
    }
    if (i != f->count) {
        *why = "a frame holds fewer records than its header says";
        return -1;
    }
    f->packed = true;
    return 0;
}

/* A ReadAll page from the stream into r->out. */
static void s_read_all(s_reader_t *r)
{
    uint64_t from = (uint64_t)r->req->from_position, next = from, head;
    uint64_t limit = (uint64_t)r->req->limit;
    uint32_t n = 0;
    const char *why = NULL;
    msgpack_sbuffer_clear(&r->events);
    uint64_t seq = 0;
    head = atomic_load(&r->ps->head);
    if (from > head)
        head = s_head_now(r);
    if (from <= head && s_find(r, from, &seq, &why) != 0)
        goto failed;
    for (; seq && from <= head && n < limit; seq++) {
        s_frame_t *f = NULL;
        int rc = s_read_seq(r, seq, &f, &why);
        if (rc < 0)
            goto failed;
        if (rc == 0)
            break; /* the stream's end */
        if (f->count == 0 || f->first + f->count - 1 < next)
            continue; /* a lease marker, or before the page */
        if (f->first > next) {
            why = "a position is missing from the stream (its first messages are gone: "
                  "see the stream's limits)";
            goto failed;
        }
        if (s_pack_frame(r, f, &why) != 0)
            goto failed;
        uint64_t skip = next - f->first, take = f->count - skip;
        if (take > limit - n)
            take = limit - n;
        size_t start = skip ? f->ends[skip - 1] : 0, end = f->ends[skip + take - 1];
        if (msgpack_sbuffer_write(&r->events, f->wire.data + start, end - start) != 0) {
            why = "out of memory";
            goto failed;
        }
        n += (uint32_t)take;
        next += take;
    }
    if (n > 0 && next > head) /* the page went past what the feeder knew */
        head = next - 1;
    msgpack_sbuffer_clear(&r->out);
    ordo_reply_pack_read_all_head(&r->out_pk, r->req->request_id, next, head, n);
    msgpack_sbuffer_write(&r->out, r->events.data, r->events.size);
    return;
failed:
    ordo_log_error("pstream", "reading position %" PRIu64 " from stream %s: %s", next,
                   r->ps->stream, why ? why : "?");
    char message[300];
    snprintf(message, sizeof message, "the stream %s could not be read (%s)", r->ps->stream,
             why ? why : "?");
    s_error(r, ORDO_CODE_UNAVAILABLE, message);
}

/* One request: [identity, body] (a DEALER's), or more frames (a REQ's
 * envelope) with the body last. */
static void s_request(s_reader_t *r)
{
    /* As the engine's front end does: an envelope of at most
     * ORDO_ENVELOPE_MAX frames of at most ORDO_ENVELOPE_FRAME_MAX bytes
     * each, or the message is dropped. */
    zmq_msg_t env[ORDO_ENVELOPE_MAX], body;
    int nframes = 0;
    bool dropped = false;
    zmq_msg_init(&body);
    if (zmq_msg_recv(&body, r->ps->router, ZMQ_DONTWAIT) < 0)
        goto out;
    while (zmq_msg_more(&body)) {
        if (nframes < ORDO_ENVELOPE_MAX && zmq_msg_size(&body) <= ORDO_ENVELOPE_FRAME_MAX) {
            zmq_msg_init(&env[nframes]);
            zmq_msg_move(&env[nframes++], &body);
        } else {
            dropped = true;
        }
        zmq_msg_close(&body);
        zmq_msg_init(&body);
        if (zmq_msg_recv(&body, r->ps->router, 0) < 0) {
            dropped = true;
            break;
        }
    }
    if (dropped || nframes == 0)
        goto out;
    ordo_error_t err;
    if (ordo_request_decode(zmq_msg_data(&body), zmq_msg_size(&body), r->req, &err) != 0) {
        msgpack_sbuffer_clear(&r->out);
        ordo_reply_pack_error(&r->out_pk, r->req->request_id, &err);
    } else if (r->req->type == ORDO_REQ_PING) {
        msgpack_sbuffer_clear(&r->out);
        ordo_reply_pack_ping(&r->out_pk, r->req->request_id, s_head_now(r));
    } else if (r->req->type == ORDO_REQ_READ_ALL) {
        s_read_all(r);
    } else {
        s_error(r, ORDO_CODE_UNKNOWN_TYPE,
                "the projector's stream gateway answers only Ping and ReadAll");
    }
    s_reply(r, env, nframes);
out:
    for (int i = 0; i < nframes; i++)
        zmq_msg_close(&env[i]);
    zmq_msg_close(&body);
}

static void *s_reader_main(void *arg)
{
    ordo_pstream_t *ps = arg;
    s_reader_t r = {.ps = ps};
    r.dctx = ordo_wal_dctx_new();
    r.req = malloc(sizeof *r.req);
    r.ev = malloc(sizeof *r.ev);
    msgpack_sbuffer_init(&r.out);
    msgpack_sbuffer_init(&r.events);
    msgpack_packer_init(&r.out_pk, &r.out, msgpack_sbuffer_write);
    msgpack_packer_init(&r.events_pk, &r.events, msgpack_sbuffer_write);
    jsOptions_Init(&r.jo);
    r.jo.Wait = S_GET_WAIT_MS;
    if (!r.dctx || !r.req || !r.ev) {
        ordo_log_error("pstream", "out of memory");
        goto out;
    }
    while (!atomic_load(&ps->stop)) {
        zmq_pollitem_t item = {ps->router, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&item, 1, S_WAIT_MS) < 0 && errno != EINTR)
            break;
        for (int i = 0; i < 64 && !atomic_load(&ps->stop) && zmq_poll(&item, 1, 0) > 0; i++)
            s_request(&r);
    }
out:
    ZSTD_freeDCtx(r.dctx);
    s_free_cache(&r);
    free(r.req);
    free(r.ev);
    msgpack_sbuffer_destroy(&r.out);
    msgpack_sbuffer_destroy(&r.events);
    return NULL;
}

/* Makes or binds the durable consumer: made at the stream's end the first
 * time (the followers read what came before through ReadAll), resumed
 * where it stopped afterwards. 0, or -1 with err. */
static int s_bind_consumer(ordo_pstream_t *ps, char *err, size_t errsize)
{
    natsSubscription_Destroy(ps->sub);
    ps->sub = NULL;
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = ps->stream;
    so.Config.Durable = ps->durable;
    so.Config.AckPolicy = js_AckExplicit;
    so.Config.DeliverPolicy = js_DeliverNew;
    so.Config.MaxAckPending = 4 * S_FETCH;
    jsErrCode jerr = 0;
    natsStatus s = js_PullSubscribe(&ps->sub, ps->js_feed, ps->subject, ps->durable, NULL, &so,
                                    &jerr);
    if (s != NATS_OK)
        return ordo_nats_fail(err, errsize, "the durable consumer", s, jerr);
    return 0;
}

/* ---- the PUB: the durable consumer's frames ----------------------------- */

/* Publishes a frame's events; 0, or -1 (why) if the frame is not one. */
static int s_publish(ordo_pstream_t *ps, ZSTD_DCtx *dctx, s_frame_t *f, ordo_event_t *ev,
                     msgpack_sbuffer *buf, natsMsg *m, const char **why)
{
    uint64_t first, count;
    if (!s_headers(m, &first, &count)) {
        *why = "a message of the stream is not a frame of Ordo's";
        return -1;
    }
    if (count == 0)
        return 0; /* a lease marker */
    if (s_decode(dctx, natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), first, count, f,
                 why) != 0)
        return -1;
    msgpack_packer pk;
    msgpack_packer_init(&pk, buf, msgpack_sbuffer_write);
    size_t off = 0;
    const void *rec;
    size_t rec_len;
    for (uint64_t pos = first;
         ordo_wal_body_next(f->raw.data, f->raw_len, &off, &rec, &rec_len) == 1; pos++) {
        msgpack_sbuffer_clear(buf);
        if (ordo_event_decode_record(rec, rec_len, pos, ev) != 0 || ordo_event_pack(&pk, ev) != 0) {
            *why = "a record of the stream does not decode";
            return -1;
        }
        const char *topic = ordo_event_type_name(ev->type);
        zmq_send(ps->pub, topic, strlen(topic), ZMQ_SNDMORE | ZMQ_DONTWAIT);
        zmq_send(ps->pub, buf->data, buf->size, ZMQ_DONTWAIT);
    }
    uint64_t last = first + count - 1, was = atomic_load(&ps->head);
    while (last > was && !atomic_compare_exchange_weak(&ps->head, &was, last)) {
    }
    return 0;
}

static void *s_feeder_main(void *arg)
{
    ordo_pstream_t *ps = arg;
    ZSTD_DCtx *dctx = ordo_wal_dctx_new();
    ordo_event_t *ev = malloc(sizeof *ev);
    s_frame_t f = {0};
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    uint64_t failures = 0;
    while (dctx && ev && !atomic_load(&ps->stop)) {
        natsMsgList list = {0};
        jsErrCode jerr = 0;
        natsStatus s = ps->sub ? natsSubscription_Fetch(&list, ps->sub, S_FETCH, S_WAIT_MS, &jerr)
                               : NATS_INVALID_SUBSCRIPTION;
        if (s == NATS_TIMEOUT)
            continue;
        if (s != NATS_OK) {
            if (failures++ % 50 == 0)
                ordo_log_warn("pstream", "pulling from stream %s: %s (retrying)", ps->stream,
                              natsStatus_GetText(s));
            /* The consumer may be gone (deleted, or lost with a node):
             * bind it again, which makes it if it is missing. Meanwhile
             * Ping and ReadAll read the stream's end themselves, so the
             * followers go on. */
            char err[600];
            if (s_bind_consumer(ps, err, sizeof err) != 0) {
                if (failures % 50 == 1)
                    ordo_log_warn("pstream", "%s", err);
            } else {
                ordo_log_info("pstream", "bound durable consumer %s of stream %s again",
                              ps->durable, ps->stream);
            }
            nanosleep(&(struct timespec){0, S_WAIT_MS * 1000000L}, NULL);
            continue;
        }
        failures = 0;
        for (int i = 0; i < list.Count; i++) {
            const char *why = NULL;
            if (s_publish(ps, dctx, &f, ev, &buf, list.Msgs[i], &why) != 0)
                /* Not published: followers find the gap and read these
                 * positions through ReadAll, which says what is wrong. */
                ordo_log_error("pstream", "a frame of stream %s: %s", ps->stream, why);
            natsMsg_Ack(list.Msgs[i], NULL);
        }
        natsMsgList_Destroy(&list);
    }
    if (!dctx || !ev)
        ordo_log_error("pstream", "out of memory");
    ZSTD_freeDCtx(dctx);
    free(ev);
    ordo_wal_buf_free(&f.raw);
    msgpack_sbuffer_destroy(&buf);
    return NULL;
}

/* ---- start and stop ------------------------------------------------------ */

/* The stream's last position now: its last frame's, walking back past
 * lease markers. 0 or -1 (err). */
static int s_initial_head(ordo_pstream_t *ps, char *err, size_t errsize)
{
    s_reader_t r = {.ps = ps};
    jsOptions_Init(&r.jo);
    r.jo.Wait = S_GET_WAIT_MS;
    const char *why = NULL;
    uint64_t lo, hi;
    int rc = -1;
    if (!(r.dctx = ordo_wal_dctx_new())) {
        snprintf(err, errsize, "out of memory");
        return -1;
    }
    /* A cluster that just started may be electing: ask for up to 30 s. */
    uint64_t deadline = ordo_mono_ns() + 30000000000ull;
    while (s_bounds(&r, &lo, &hi, &why) != 0) {
        if (ordo_mono_ns() >= deadline) {
            snprintf(err, errsize, "stream %s: %s (does the engine of partition %u run with "
                     "--nats?)", ps->stream, why, ps->cfg.partition);
            goto out;
        }
        nanosleep(&(struct timespec){0, 200000000}, NULL);
    }
    for (uint64_t seq = hi; seq >= lo && seq > 0; seq--) {
        s_frame_t *f = NULL;
        int got = s_read_seq(&r, seq, &f, &why);
        if (got < 0) {
            snprintf(err, errsize, "stream %s, message %" PRIu64 ": %s", ps->stream, seq, why);
            goto out;
        }
        if (got == 1 && f->count > 0) {
            atomic_store(&ps->head, f->first + f->count - 1);
            break;
        }
    }
    rc = 0;
out:
    ZSTD_freeDCtx(r.dctx);
    s_free_cache(&r);
    return rc;
}

/* Binds a socket to a loopback port of the system's choosing. */
static int s_bind_any(void *sock, char *endpoint, size_t size)
{
    size_t len = size;
    if (zmq_bind(sock, "tcp://127.0.0.1:*") != 0 ||
        zmq_getsockopt(sock, ZMQ_LAST_ENDPOINT, endpoint, &len) != 0)
        return -1;
    return 0;
}

int ordo_pstream_start(const ordo_pstream_config_t *cfg, ordo_pstream_t **out, char *err,
                       size_t errsize)
{
    *out = NULL;
    ordo_pstream_t *ps = calloc(1, sizeof *ps);
    if (!ps) {
        snprintf(err, errsize, "out of memory");
        return -1;
    }
    ps->cfg = *cfg;
    atomic_init(&ps->stop, false);
    atomic_init(&ps->head, 0);
    snprintf(ps->stream, sizeof ps->stream, "ORDO_P%" PRIu32, cfg->partition);
    snprintf(ps->subject, sizeof ps->subject, "ordo.p%" PRIu32 ".frames", cfg->partition);
    snprintf(ps->durable, sizeof ps->durable, "%s", cfg->durable);
    ps->cfg.durable = ps->durable;
    if (ordo_nats_connect(cfg->servers, "ordo-projector reader", 5000, &ps->nc_read, &ps->js_read,
                          err, errsize) != 0 ||
        ordo_nats_connect(cfg->servers, "ordo-projector feed", 5000, &ps->nc_feed, &ps->js_feed,
                          err, errsize) != 0)
        goto fail;
    if (s_initial_head(ps, err, errsize) != 0)
        goto fail;
    if (s_bind_consumer(ps, err, errsize) != 0)
        goto fail;
    if (!(ps->zctx = zmq_ctx_new()) || !(ps->router = zmq_socket(ps->zctx, ZMQ_ROUTER)) ||
        !(ps->pub = zmq_socket(ps->zctx, ZMQ_PUB))) {
        snprintf(err, errsize, "ZeroMQ: %s", zmq_strerror(errno));
        goto fail;
    }
    int linger = 0, hwm = 100000;
    int64_t max = S_BODY_MAX + 4096;
    zmq_setsockopt(ps->router, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(ps->router, ZMQ_MAXMSGSIZE, &max, sizeof max);
    zmq_setsockopt(ps->pub, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(ps->pub, ZMQ_SNDHWM, &hwm, sizeof hwm);
    if (s_bind_any(ps->router, ps->endpoint, sizeof ps->endpoint) != 0 ||
        s_bind_any(ps->pub, ps->pub_endpoint, sizeof ps->pub_endpoint) != 0) {
        snprintf(err, errsize, "cannot bind the stream gateway on loopback: %s",
                 zmq_strerror(errno));
        goto fail;
    }
    /* The threads leave the stop signals to the program's main thread. */
    sigset_t stop_signals, old_mask;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_signals, &old_mask);
    ps->reader_started = pthread_create(&ps->reader, NULL, s_reader_main, ps) == 0;
    ps->feeder_started =
        ps->reader_started && pthread_create(&ps->feeder, NULL, s_feeder_main, ps) == 0;
    pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
    if (!ps->feeder_started) {
        snprintf(err, errsize, "no thread");
        goto fail;
    }
    pthread_setname_np(ps->reader, "ordo-pstream-rd");
    pthread_setname_np(ps->feeder, "ordo-pstream-pub");
    ordo_log_info("pstream",
                  "reading stream %s through durable consumer %s: at position %" PRIu64
                  "; serving it on %s (events %s)",
                  ps->stream, ps->durable, (uint64_t)atomic_load(&ps->head), ps->endpoint,
                  ps->pub_endpoint);
    *out = ps;
    return 0;
fail:
    ordo_pstream_stop(&ps);
    return -1;
}

const char *ordo_pstream_endpoint(const ordo_pstream_t *ps)
{
    return ps->endpoint;
}

const char *ordo_pstream_pub_endpoint(const ordo_pstream_t *ps)
{
    return ps->pub_endpoint;
}

uint64_t ordo_pstream_head(const ordo_pstream_t *ps)
{
    return atomic_load(&((ordo_pstream_t *)ps)->head);
}

void ordo_pstream_stop(ordo_pstream_t **p)
{
    ordo_pstream_t *ps = p ? *p : NULL;
    if (!ps)
        return;
    *p = NULL;
    atomic_store(&ps->stop, true);
    if (ps->reader_started)
        pthread_join(ps->reader, NULL);
    if (ps->feeder_started)
        pthread_join(ps->feeder, NULL);
    if (ps->router)
        zmq_close(ps->router);
    if (ps->pub)
        zmq_close(ps->pub);
    if (ps->zctx)
        zmq_ctx_term(ps->zctx);
    if (ps->nc_feed) /* closed first, as in ordo_follower_close */
        natsConnection_Close(ps->nc_feed);
    natsSubscription_Destroy(ps->sub); /* the durable consumer stays in JetStream */
    jsCtx_Destroy(ps->js_read);
    jsCtx_Destroy(ps->js_feed);
    natsConnection_Destroy(ps->nc_read);
    natsConnection_Destroy(ps->nc_feed);
    free(ps);
}
