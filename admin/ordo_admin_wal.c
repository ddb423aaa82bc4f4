/* ordo-admin's `wal info`, `wal verify` and `wal dump`: one read-only walk
 * of the log (ordo_wal_walk), every record decoded as an event. */
#include "ordo_admin.h"

#include "ordo_clock.h"
#include "ordo_codec.h"
#include "ordo_error.h"
#include "ordo_hex.h"
#include "ordo_json.h"
#include "ordo_time.h"
#include "ordo_wal.h"

#include <dirent.h>
#include <inttypes.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct {
    const admin_opts_t *o;
    ordo_event_t *ev;            /* scratch, on the heap: it is large */
    ordo_wal_frame_info_t frame; /* the frame being read (its segment name copied) */
    char segment[32];
    /* the first record that does not decode: damage the frames cannot show */
    bool bad_record;
    uint64_t bad_position;
    char bad_segment[32];
    uint64_t bad_offset;
    /* time range of the events */
    int64_t min_ts, max_ts;
    uint64_t counts[ORDO_EVT_COUNT_];
    /* progress */
    uint64_t total_bytes, done_bytes, last_segment_size;
    uint64_t next_progress_ns;
    /* dump */
    msgpack_sbuffer sbuf;
    uint64_t dumped;
} s_ctx_t;

/* The segment files' total size, for progress. */
static uint64_t s_total_bytes(const char *dir)
{
    uint64_t total = 0;
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL) {
        char path[4608];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        if (strlen(de->d_name) == 24 && !strcmp(de->d_name + 20, ".wal") && stat(path, &st) == 0)
            total += (uint64_t)st.st_size;
    }
    if (d)
        closedir(d);
    return total;
}

static int s_on_segment(void *ctx, const char *name, uint64_t first, uint64_t size)
{
    s_ctx_t *c = ctx;
    (void)first;
    c->done_bytes += c->last_segment_size;
    c->last_segment_size = size;
    snprintf(c->segment, sizeof c->segment, "%s", name);
    return 0;
}

static int s_on_frame(void *ctx, const ordo_wal_frame_info_t *f)
{
    s_ctx_t *c = ctx;
    c->frame = *f;
    if (c->o->progress) {
        uint64_t now = ordo_mono_ns();
        if (now >= c->next_progress_ns) {
            double done = (double)(c->done_bytes + f->offset);
            fprintf(stderr, "\rordo-admin: at position %" PRIu64 " (%.0f%%) ", f->first,
                    c->total_bytes ? 100.0 * done / (double)c->total_bytes : 100.0);
            c->next_progress_ns = now + 1000000000ull;
        }
    }
    return 0;
}

/* Decodes the record into c->ev; on failure notes the first bad one. */
static bool s_decode(s_ctx_t *c, uint64_t position, const void *data, size_t len)
{
    if (ordo_event_decode_record(data, len, position, c->ev) == 0)
        return true;
    if (!c->bad_record) {
        c->bad_record = true;
        c->bad_position = position;
        snprintf(c->bad_segment, sizeof c->bad_segment, "%s", c->segment);
        c->bad_offset = c->frame.offset;
    }
    return false;
}

static int s_on_record(void *ctx, uint64_t position, const void *data, size_t len)
{
    s_ctx_t *c = ctx;
    if (!s_decode(c, position, data, len))
        return 0;
    int64_t ts = c->ev->timestamp_us;
    if (c->min_ts == 0 || ts < c->min_ts)
        c->min_ts = ts;
    if (ts > c->max_ts)
        c->max_ts = ts;
    if ((unsigned)c->ev->type < ORDO_EVT_COUNT_)
        c->counts[c->ev->type]++;
    return 0;
}

#define S_STOP 1 /* a visitor's "enough" */

static int s_on_dump(void *ctx, uint64_t position, const void *data, size_t len)
{
    s_ctx_t *c = ctx;
    const admin_opts_t *o = c->o;
    if (o->has_from_pos && position < o->from_pos)
        return 0;
    if (o->has_to_pos && position > o->to_pos)
        return S_STOP;
    if (!s_decode(c, position, data, len))
        return S_STOP; /* reported after the walk */
    const ordo_event_t *ev = c->ev;
    if (o->has_from_time && ev->timestamp_us < o->from_us)
        return 0;
    if (o->has_to_time && ev->timestamp_us > o->to_us)
        return 0;
    if (o->order_id && (strlen(o->order_id) != ev->order_id.len ||
                        memcmp(o->order_id, ev->order_id.ptr, ev->order_id.len) != 0))
        return 0;
    msgpack_sbuffer_clear(&c->sbuf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &c->sbuf, msgpack_sbuffer_write);
    if (ordo_event_pack(&pk, ev) != 0 ||
        ordo_json_write(stdout, (const uint8_t *)c->sbuf.data, c->sbuf.size) != 0)
        return ORDO_ERR_NOMEM;
    putchar('\n');
    c->dumped++;
    return ferror(stdout) ? ORDO_ERR_IO : 0;
}

/* Walks the log with the visitor. Returns ADMIN_OK (walked: see *walk and
 * c->bad_record), or ADMIN_CANNOT after a message. */
static int s_walk(s_ctx_t *c, const ordo_wal_visitor_t *v, ordo_wal_walk_t *walk)
{
    char dir[4200];
    if (admin_log_dir(c->o, dir, sizeof dir) != ADMIN_OK)
        return ADMIN_CANNOT;
    c->ev = malloc(sizeof *c->ev);
    if (!c->ev) {
        admin_error("out of memory");
        return ADMIN_CANNOT;
    }
    c->total_bytes = c->o->progress ? s_total_bytes(dir) : 0;
    int rc = ordo_wal_walk(dir, v, c, walk);
    if (c->o->progress && c->next_progress_ns)
        fputs("\r\033[K", stderr);
    free(c->ev);
    c->ev = NULL;
    if (rc != 0 && rc != S_STOP) {
        admin_error("cannot read the log in %s: %s", dir, ordo_strerror(rc));
        return ADMIN_CANNOT;
    }
    return ADMIN_OK;
}

/* The verdict line(s) and the exit status. */
static int s_verdict(const s_ctx_t *c, const ordo_wal_walk_t *w, bool json)
{
    char n1[32];
    if (w->damaged) {
        if (json)
            printf("\"state\":\"damaged\",\"fault\":{\"segment\":\"%s\",\"offset\":%" PRIu64
                   ",\"why\":",
                   w->fault_segment, w->fault_offset);
        else
            printf("DAMAGED    %s, byte offset %" PRIu64 ": %s\n", w->fault_segment,
                   w->fault_offset, w->fault);
        if (json) {
            ordo_json_string(stdout, w->fault, strlen(w->fault));
            printf("}");
        }
        return ADMIN_DAMAGED;
    }
    if (c->bad_record) {
        if (json)
            printf("\"state\":\"damaged\",\"fault\":{\"segment\":\"%s\",\"offset\":%" PRIu64
                   ",\"why\":\"the event at position %" PRIu64 " does not decode\"}",
                   c->bad_segment, c->bad_offset, c->bad_position);
        else
            printf("DAMAGED    %s, frame at byte offset %" PRIu64
                   ": the event at position %" PRIu64 " does not decode\n",
                   c->bad_segment, c->bad_offset, c->bad_position);
        return ADMIN_DAMAGED;
    }
    if (w->tail_bytes) {
        if (json)
            printf("\"state\":\"good\",\"tail\":{\"offset\":%" PRIu64 ",\"bytes\":%" PRIu64 "}",
                   w->tail_offset, w->tail_bytes);
        else
            printf("state      good, then %s bytes at offset %" PRIu64
                   " of the last segment that are not a whole frame (a write in progress, "
                   "or a torn write the engine cuts when it starts)\n",
                   admin_count(w->tail_bytes, n1), w->tail_offset);
        return ADMIN_OK;
    }
    if (json)
        printf("\"state\":\"good\"");
    else
        printf("state      good\n");
    return ADMIN_OK;
}

/* The walk of info and verify: every record decoded, its figures kept. */
static int s_walk_all(s_ctx_t *c, ordo_wal_walk_t *w)
{
    ordo_wal_visitor_t v = {s_on_segment, s_on_frame, s_on_record};
    return s_walk(c, &v, w);
}

int admin_wal_info(const admin_opts_t *o)
{
    s_ctx_t c = {.o = o};
    ordo_wal_walk_t w;
    int rc = s_walk_all(&c, &w);
    if (rc != ADMIN_OK)
        return rc;
    char dir[4200], id[40] = "", t1[40], t2[40], n1[32], n2[32], n3[32], b1[32], b2[32], b3[32];
    admin_wal_dir(o, dir, sizeof dir);
    if (w.has_id)
        ordo_hex_encode(w.id, sizeof w.id, id);
    double ratio = w.data_bytes ? (double)w.raw_bytes / (double)w.data_bytes : 0;
    if (o->json) {
        printf("{\"log\":");
        ordo_json_string(stdout, dir, strlen(dir));
        printf(",\"identity\":\"%s\",\"segments\":%u,\"frames\":%" PRIu64 ",\"events\":%" PRIu64
               ",\"first_position\":%" PRIu64 ",\"last_position\":%" PRIu64
               ",\"file_bytes\":%" PRIu64 ",\"data_bytes\":%" PRIu64 ",\"raw_bytes\":%" PRIu64
               ",\"compression\":%.2f,\"first_timestamp_us\":%" PRId64
               ",\"last_timestamp_us\":%" PRId64 ",\"events_by_type\":{",
               id, w.segments, w.frames, w.events, w.first_position, w.last_position,
               w.file_bytes, w.data_bytes, w.raw_bytes, ratio, c.min_ts, c.max_ts);
        for (int t = 1; t < ORDO_EVT_COUNT_; t++)
            printf("%s\"%s\":%" PRIu64, t > 1 ? "," : "",
                   ordo_event_type_name((ordo_event_type_t)t), c.counts[t]);
        printf("},");
        rc = s_verdict(&c, &w, true);
        printf("}\n");
        return rc;
    }
    printf("log        %s%s%s%s\n", dir, *id ? " (identity " : "", id, *id ? ")" : "");
    printf("segments   %u, %s on disk (preallocated space included)\n", w.segments,
           admin_bytes(w.file_bytes, b1));
    printf("frames     %s\n", admin_count(w.frames, n1));
    if (w.events)
        printf("events     %s, positions %s to %s\n", admin_count(w.events, n1),
               admin_count(w.first_position, n2), admin_count(w.last_position, n3));
    else
        printf("events     none\n");
    printf("bytes      %s written, %s raw: compression %.2fx\n", admin_bytes(w.data_bytes, b2),
           admin_bytes(w.raw_bytes, b3), ratio);
    if (w.events)
        printf("time       %s to %s\n", ordo_time_format(c.min_ts, t1),
               ordo_time_format(c.max_ts, t2));
    for (int t = 1; t < ORDO_EVT_COUNT_; t++)
        if (c.counts[t])
            printf("  %-16s %s\n", ordo_event_type_name((ordo_event_type_t)t),
                   admin_count(c.counts[t], n1));
    return s_verdict(&c, &w, false);
}

int admin_wal_verify(const admin_opts_t *o)
{
    s_ctx_t c = {.o = o};
    ordo_wal_walk_t w;
    int rc = s_walk_all(&c, &w);
    if (rc != ADMIN_OK)
        return rc;
    char n1[32], n2[32];
    if (o->json) {
        printf("{\"segments\":%u,\"frames\":%" PRIu64 ",\"events\":%" PRIu64
               ",\"last_position\":%" PRIu64 ",",
               w.segments, w.frames, w.events, w.last_position);
        rc = s_verdict(&c, &w, true);
        printf("}\n");
        return rc;
    }
    printf("checked    %u segments, %s frames, %s events\n", w.segments,
           admin_count(w.frames, n1), admin_count(w.events, n2));
    return s_verdict(&c, &w, false);
}

int admin_wal_dump(const admin_opts_t *o)
{
    s_ctx_t c = {.o = o};
    msgpack_sbuffer_init(&c.sbuf);
    ordo_wal_visitor_t v = {s_on_segment, s_on_frame, s_on_dump};
    ordo_wal_walk_t w;
    int rc = s_walk(&c, &v, &w);
    msgpack_sbuffer_destroy(&c.sbuf);
    if (rc != ADMIN_OK)
        return rc;
    if (fflush(stdout) != 0) {
        admin_error("cannot write the output");
        return ADMIN_CANNOT;
    }
    /* Damage before what was asked for stops the dump: say so. */
    if (w.damaged) {
        admin_error("the log is damaged at %s, byte offset %" PRIu64 ": %s (events after it "
                    "were not dumped)",
                    w.fault_segment, w.fault_offset, w.fault);
        return ADMIN_DAMAGED;
    }
    if (c.bad_record) {
        admin_error("the event at position %" PRIu64 " (%s, frame at byte offset %" PRIu64
                    ") does not decode: the dump stops there",
                    c.bad_position, c.bad_segment, c.bad_offset);
        return ADMIN_DAMAGED;
    }
    return ADMIN_OK;
}
