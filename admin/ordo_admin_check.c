/* ordo-admin's `replay --all --check`: rebuilds every order from the log
 * alone, with ordo_apply as the engine does at start-up, and compares each
 * with the newest valid snapshot (when the replay reaches the version the
 * snapshot holds) and with a second, independent replay. Any difference
 * is reported by order and version: a bug in apply, in the snapshot code,
 * or state that depends on more than the events (memory, time, order of
 * work). Memory: the orders themselves (about 0.5 KB each) and the
 * snapshot's bytes. */
#include "ordo_admin.h"
#include "ordo_admin_table.h"

#include "ordo_chain.h"
#include "ordo_codec.h"
#include "ordo_error.h"
#include "ordo_limits.h"
#include "ordo_snapshot.h"
#include "ordo_wal.h"

#include <inttypes.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define S_SHOWN 20 /* differences listed; the count covers them all */

typedef struct {
    ordo_order_t *order;              /* while replaying */
    uint8_t digest[ORDO_HASH_SIZE];   /* of the first replay's final state */
    bool has_digest;
} s_rebuilt_t;

typedef struct {
    uint32_t version;
    bool compared;
    uint8_t *rec; /* the snapshot's record of the order */
    size_t len;
} s_snap_t;

typedef struct {
    const admin_opts_t *o;
    admin_table_t *orders; /* of s_rebuilt_t, this pass */
    admin_table_t snap;    /* of s_snap_t; used by the first pass only */
    bool first_pass;
    ordo_event_t *ev;
    msgpack_sbuffer sbuf, snap_buf;
    uint64_t events, differences, snapshot_compared;
    bool failed, bad_record;
    uint64_t bad_position;
} s_check_t;

static void s_diff(s_check_t *c, const char *id, size_t len, uint32_t version, const char *what)
{
    c->differences++;
    if (c->differences <= S_SHOWN && !c->o->json) {
        fputs("DIFFERENT  order ", stdout);
        admin_print_text(stdout, id, len);
        printf(" at version %u: %s\n", version, what);
    }
}

/* The order's snapshot form (everything the engine keeps of it) into c->sbuf. */
static int s_pack(s_check_t *c, const ordo_order_t *o)
{
    msgpack_sbuffer_clear(&c->sbuf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &c->sbuf, msgpack_sbuffer_write);
    return ordo_order_pack_snapshot(&pk, o) == 0 ? 0 : ORDO_ERR_NOMEM;
}

static int s_on_record(void *ctx, uint64_t position, const void *data, size_t len)
{
    s_check_t *c = ctx;
    ordo_event_t *ev = c->ev;
    if (!admin_decode_event(data, len, position, ev)) {
        c->bad_record = true;
        c->bad_position = position;
        return 1;
    }
    c->events++;
    s_rebuilt_t *r = admin_table_get(c->orders, ev->order_id.ptr, ev->order_id.len, NULL);
    if (!r || (!r->order && !(r->order = calloc(1, sizeof *r->order))))
        return ORDO_ERR_NOMEM;
    if (ordo_apply(r->order, ev) != 0) {
        if (!c->o->json) {
            fputs("FAILED     order ", stdout);
            admin_print_text(stdout, ev->order_id.ptr, ev->order_id.len);
            printf(": the event at position %" PRIu64 " (version %u) does not follow its state\n",
                   position, ev->version);
        }
        c->failed = true;
        return 1;
    }
    if (!c->first_pass)
        return 0;
    s_snap_t *sn = admin_table_find(&c->snap, ev->order_id.ptr, ev->order_id.len);
    if (sn && !sn->compared && sn->version == ev->version) {
        sn->compared = true;
        c->snapshot_compared++;
        /* Both in today's form: a snapshot of an older format reads with
         * the defaults of its time (no head hash, US dollars). */
        ordo_order_t snap_order;
        memset(&snap_order, 0, sizeof snap_order);
        if (ordo_order_decode_snapshot(sn->rec, sn->len, &snap_order) != 0) {
            s_diff(c, ev->order_id.ptr, ev->order_id.len, ev->version,
                   "the snapshot's record of it does not decode");
            return 0;
        }
        msgpack_sbuffer_clear(&c->snap_buf);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &c->snap_buf, msgpack_sbuffer_write);
        int prc = ordo_order_pack_snapshot(&pk, &snap_order);
        ordo_order_clear(&snap_order);
        if (prc != 0 || s_pack(c, r->order) != 0)
            return ORDO_ERR_NOMEM;
        if (c->sbuf.size != c->snap_buf.size ||
            memcmp(c->sbuf.data, c->snap_buf.data, c->sbuf.size) != 0)
            s_diff(c, ev->order_id.ptr, ev->order_id.len, ev->version,
                   "the state rebuilt from the log is not the snapshot's");
    }
    return 0;
}

/* Reads the newest valid snapshot into c->snap. Its position, or 0 if
 * there is none; -1 if it cannot be read. */
static int64_t s_load_snapshot(s_check_t *c, char *path, size_t path_size)
{
    char dir[4200];
    admin_snapshot_dir(c->o, dir, sizeof dir);
    ordo_snapshot_t *s = NULL;
    int rc = ordo_snapshot_open_newest(dir, NULL, &s);
    if (rc == ORDO_ERR_NOT_FOUND)
        return 0;
    if (rc != 0)
        return -1;
    snprintf(path, path_size, "%s", ordo_snapshot_path(s));
    int64_t position = (int64_t)ordo_snapshot_position(s);
    const void *rec;
    size_t len;
    ordo_order_t o;
    memset(&o, 0, sizeof o);
    while ((rc = ordo_snapshot_next(s, &rec, &len)) == 1) {
        if (ordo_order_decode_snapshot(rec, len, &o) != 0) {
            rc = ORDO_ERR_CORRUPT;
            break;
        }
        s_snap_t *sn = admin_table_get(&c->snap, o.order_id, o.order_id_len, NULL);
        if (sn)
            free(sn->rec); /* an order twice in a snapshot: the later record counts */
        if (!sn || !(sn->rec = malloc(len))) {
            rc = ORDO_ERR_NOMEM;
            break;
        }
        memcpy(sn->rec, rec, len);
        sn->len = len;
        sn->version = o.version;
        ordo_order_clear(&o);
    }
    ordo_order_clear(&o);
    ordo_snapshot_destroy(&s);
    return rc < 0 ? -1 : position;
}

/* Walks the log once into `orders`. 0, or ADMIN_* after a message. */
static int s_pass(s_check_t *c, admin_table_t *orders, bool first)
{
    char dir[4200];
    admin_wal_dir(c->o, dir, sizeof dir);
    c->orders = orders;
    c->first_pass = first;
    c->events = 0;
    ordo_wal_visitor_t v = {NULL, NULL, s_on_record};
    ordo_wal_walk_t w;
    int rc = ordo_wal_walk(dir, &v, c, &w);
    if (rc != 0 && rc != 1) {
        admin_error("cannot read the log in %s: %s", dir, ordo_strerror(rc));
        return ADMIN_CANNOT;
    }
    if (w.damaged) {
        admin_error("the log is damaged at %s, byte offset %" PRIu64 ": %s (see wal verify)",
                    w.fault_segment, w.fault_offset, w.fault);
        return ADMIN_DAMAGED;
    }
    if (c->bad_record) {
        admin_error("the event at position %" PRIu64 " does not decode", c->bad_position);
        return ADMIN_DAMAGED;
    }
    return c->failed ? ADMIN_DAMAGED : ADMIN_OK;
}

static void s_free_orders(admin_table_t *t)
{
    size_t i = 0;
    s_rebuilt_t *r;
    while ((r = admin_table_next(t, &i, NULL, NULL)) != NULL) {
        if (r->order)
            ordo_order_clear(r->order);
        free(r->order);
        r->order = NULL;
    }
}

int admin_replay_check(const admin_opts_t *o)
{
    char dir[4200];
    if (admin_log_dir(o, dir, sizeof dir) != ADMIN_OK)
        return ADMIN_CANNOT;
    if (ordo_chain_init() != 0) {
        admin_error("libsodium cannot start");
        return ADMIN_CANNOT;
    }
    s_check_t c = {.o = o};
    admin_table_t first, second;
    admin_table_init(&first, sizeof(s_rebuilt_t));
    admin_table_init(&second, sizeof(s_rebuilt_t));
    admin_table_init(&c.snap, sizeof(s_snap_t));
    msgpack_sbuffer_init(&c.sbuf);
    msgpack_sbuffer_init(&c.snap_buf);
    c.ev = malloc(sizeof *c.ev);
    char snap_path[4400] = "";
    int64_t snap_pos = c.ev ? s_load_snapshot(&c, snap_path, sizeof snap_path) : -1;
    int status = ADMIN_OK;
    if (!c.ev || snap_pos < 0) {
        admin_error("cannot read the newest snapshot (see snapshot verify)");
        status = ADMIN_CANNOT;
        goto out;
    }
    if ((status = s_pass(&c, &first, true)) != ADMIN_OK)
        goto out;
    uint64_t events = c.events;
    /* The first replay's final states, as digests. */
    size_t i = 0;
    s_rebuilt_t *r;
    while ((r = admin_table_next(&first, &i, NULL, NULL)) != NULL) {
        if (s_pack(&c, r->order) != 0) {
            status = ADMIN_CANNOT;
            goto out;
        }
        ordo_chain_hash(NULL, c.sbuf.data, c.sbuf.size, r->digest);
        r->has_digest = true;
    }
    s_free_orders(&first);
    /* Snapshot orders the log never brought to the snapshot's version. */
    uint64_t snap_orders = c.snap.used;
    i = 0;
    s_snap_t *sn;
    const char *id;
    size_t id_len;
    while ((sn = admin_table_next(&c.snap, &i, &id, &id_len)) != NULL)
        if (!sn->compared)
            s_diff(&c, id, id_len, sn->version,
                   "the snapshot holds this version; the log never gets there");
    /* The second replay, from scratch. */
    if ((status = s_pass(&c, &second, false)) != ADMIN_OK)
        goto out;
    i = 0;
    while ((r = admin_table_next(&second, &i, &id, &id_len)) != NULL) {
        const s_rebuilt_t *f = admin_table_find(&first, id, id_len);
        uint8_t digest[ORDO_HASH_SIZE];
        if (s_pack(&c, r->order) != 0) {
            status = ADMIN_CANNOT;
            goto out;
        }
        ordo_chain_hash(NULL, c.sbuf.data, c.sbuf.size, digest);
        if (!f || !f->has_digest || memcmp(f->digest, digest, sizeof digest) != 0)
            s_diff(&c, id, id_len, r->order->version,
                   "a second replay of the same log gives another state");
    }
    if (c.differences)
        status = ADMIN_DAMAGED;
    char n1[32], n2[32], n3[32], n4[32];
    if (o->json) {
        printf("{\"orders\":%zu,\"events\":%" PRIu64 ",\"snapshot\":", first.used, events);
        if (snap_pos > 0)
            printf("{\"position\":%" PRId64 ",\"orders\":%" PRIu64 ",\"compared\":%" PRIu64 "}",
                   snap_pos, snap_orders, c.snapshot_compared);
        else
            printf("null");
        printf(",\"differences\":%" PRIu64 ",\"state\":\"%s\"}\n", c.differences,
               c.differences ? "different" : "same");
    } else {
        if (c.differences > S_SHOWN)
            printf("           ... and %s more\n", admin_count(c.differences - S_SHOWN, n1));
        printf("replayed   %s orders from %s events, twice\n", admin_count(first.used, n1),
               admin_count(events, n2));
        if (snap_pos > 0)
            printf("snapshot   %s (position %s): %s of its %s orders compared when the replay "
                   "reached their version\n",
                   snap_path, admin_count((uint64_t)snap_pos, n3),
                   admin_count(c.snapshot_compared, n1), admin_count(snap_orders, n4));
        else
            printf("snapshot   none to compare with\n");
        printf("state      %s\n", c.differences ? "DIFFERENT: see above"
                                                : "every order the same: snapshot, first and "
                                                  "second replay");
    }
out:
    s_free_orders(&first);
    s_free_orders(&second);
    i = 0;
    while ((sn = admin_table_next(&c.snap, &i, NULL, NULL)) != NULL)
        free(sn->rec);
    admin_table_free(&first);
    admin_table_free(&second);
    admin_table_free(&c.snap);
    msgpack_sbuffer_destroy(&c.sbuf);
    msgpack_sbuffer_destroy(&c.snap_buf);
    free(c.ev);
    return status;
}
