/* ordo-admin's `audit [ORDER | --all]`: recomputes every order's hash
 * chain (PROTOCOL.md 1.1) from the log alone and names the first event
 * that breaks it. One walk of the log; per order it keeps the version and
 * hash it reached (about 112 bytes an order, ordo_admin_table.h). */
#include "ordo_admin.h"
#include "ordo_admin_table.h"

#include "ordo_json.h"

#include "ordo_chain.h"
#include "ordo_codec.h"
#include "ordo_error.h"
#include "ordo_hex.h"
#include "ordo_limits.h"
#include "ordo_wal.h"

#include <inttypes.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define S_BREAKS_SHOWN 20 /* broken orders listed; the count covers them all */

/* What the audit keeps of each order. */
typedef struct {
    uint8_t version;
    bool has_hash;
    bool broken; /* its first break was reported */
    uint8_t hash[ORDO_HASH_SIZE];
} s_order_t;

typedef struct {
    const admin_opts_t *o;
    const char *only; /* audit ORDER: just this one */
    admin_table_t orders; /* of s_order_t */
    ordo_event_t *ev;
    msgpack_sbuffer sbuf;
    char segment[32];
    uint64_t frame_offset;
    bool frame_chained; /* the frame being read was written since 1.1 */
    uint64_t events, hashed, unhashed, broken_orders;
    bool json_first;
    bool bad_record;
    uint64_t bad_position;
} s_audit_t;

static void s_report(s_audit_t *a, const char *why, const char *stored, const char *computed)
{
    const ordo_event_t *ev = a->ev;
    a->broken_orders++;
    if (a->broken_orders > S_BREAKS_SHOWN)
        return;
    if (a->o->json) {
        printf("%s{\"order_id\":", a->json_first ? "" : ",");
        ordo_json_string(stdout, ev->order_id.ptr, ev->order_id.len);
        printf(",\"version\":%u,\"position\":%" PRIu64 ",\"segment\":\"%s\",\"offset\":%" PRIu64
               ",\"why\":",
               ev->version, ev->position, a->segment, a->frame_offset);
        ordo_json_string(stdout, why, strlen(why));
        if (stored)
            printf(",\"stored\":\"%s\",\"computed\":\"%s\"", stored, computed);
        printf("}");
        a->json_first = false;
    } else {
        fputs("BROKEN     order ", stdout);
        admin_print_text(stdout, ev->order_id.ptr, ev->order_id.len);
        printf(" at version %u (position %" PRIu64 ", %s, frame at byte offset %" PRIu64 "): %s\n",
               ev->version, ev->position, a->segment, a->frame_offset, why);
        if (stored)
            printf("           stored   %s\n           computed %s\n", stored, computed);
    }
}

static int s_on_segment(void *ctx, const char *name, uint64_t first, uint64_t size)
{
    s_audit_t *a = ctx;
    (void)first, (void)size;
    snprintf(a->segment, sizeof a->segment, "%s", name);
    return 0;
}

static int s_on_frame(void *ctx, const ordo_wal_frame_info_t *f)
{
    ((s_audit_t *)ctx)->frame_offset = f->offset;
    ((s_audit_t *)ctx)->frame_chained = f->chained;
    return 0;
}

static int s_on_record(void *ctx, uint64_t position, const void *data, size_t len)
{
    s_audit_t *a = ctx;
    ordo_event_t *ev = a->ev;
    if (!admin_decode_event(data, len, position, ev)) {
        a->bad_record = true;
        a->bad_position = position;
        return 1; /* stops the walk: reported as damage */
    }
    if (a->only && (strlen(a->only) != ev->order_id.len ||
                    memcmp(a->only, ev->order_id.ptr, ev->order_id.len) != 0))
        return 0;
    a->events++;
    s_order_t *e = admin_table_get(&a->orders, ev->order_id.ptr, ev->order_id.len, NULL);
    if (!e)
        return ORDO_ERR_NOMEM;
    if (e->broken) { /* its first break is reported; follow on quietly */
        e->version = (uint8_t)ev->version;
        e->has_hash = ev->has_hash;
        memcpy(e->hash, ev->hash, sizeof e->hash);
        return 0;
    }
    if (ev->version != (uint32_t)e->version + 1) {
        char why[96];
        snprintf(why, sizeof why, "version %u follows version %u (an event missing or repeated)",
                 ev->version, e->version);
        s_report(a, why, NULL, NULL);
        e->broken = true;
    }
    e->version = (uint8_t)ev->version;
    if (!ev->has_hash) {
        /* Only events written before 1.1 have none, and those come in
         * frames of before, before any event of their order with one. */
        if (a->frame_chained || e->has_hash) {
            s_report(a,
                     a->frame_chained
                         ? "the event has no hash, in a frame written since 1.1 (one was removed)"
                         : "the event has no hash, after one of its order that has (one was "
                           "removed)",
                     NULL, NULL);
            e->broken = true;
        }
        a->unhashed++;
        e->has_hash = false; /* the next one chains from zeros */
        return 0;
    }
    a->hashed++;
    /* The canonical record: the wire form without `hash`. */
    ev->has_hash = false;
    msgpack_sbuffer_clear(&a->sbuf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &a->sbuf, msgpack_sbuffer_write);
    if (ordo_event_pack(&pk, ev) != 0)
        return ORDO_ERR_NOMEM;
    uint8_t computed[ORDO_HASH_SIZE];
    ordo_chain_hash(e->has_hash ? e->hash : NULL, a->sbuf.data, a->sbuf.size, computed);
    if (!e->broken && memcmp(computed, ev->hash, sizeof computed) != 0) {
        char stored_hex[65], computed_hex[65];
        ordo_hex_encode(ev->hash, sizeof ev->hash, stored_hex);
        ordo_hex_encode(computed, sizeof computed, computed_hex);
        s_report(a, "the stored hash does not follow from the previous one and this event",
                 stored_hex, computed_hex);
        e->broken = true;
    }
    e->has_hash = true;
    memcpy(e->hash, ev->hash, sizeof e->hash);
    return 0;
}

int admin_audit(const admin_opts_t *o, const char *order_id)
{
    char dir[4200];
    if (admin_log_dir(o, dir, sizeof dir) != ADMIN_OK)
        return ADMIN_CANNOT;
    if (ordo_chain_init() != 0) {
        admin_error("libsodium cannot start");
        return ADMIN_CANNOT;
    }
    s_audit_t a = {.o = o, .only = order_id, .json_first = true};
    a.ev = malloc(sizeof *a.ev);
    msgpack_sbuffer_init(&a.sbuf);
    admin_table_init(&a.orders, sizeof(s_order_t));
    if (!a.ev) {
        free(a.ev);
        admin_error("out of memory");
        return ADMIN_CANNOT;
    }
    if (o->json)
        printf("{\"broken\":[");
    ordo_wal_visitor_t v = {s_on_segment, s_on_frame, s_on_record};
    ordo_wal_walk_t w;
    int rc = ordo_wal_walk(dir, &v, &a, &w);
    int status = ADMIN_OK;
    char n1[32], n2[32], n3[32], n4[32];
    if (rc != 0 && rc != 1) {
        if (o->json)
            printf("]}\n");
        admin_error("cannot read the log in %s: %s", dir, ordo_strerror(rc));
        status = ADMIN_CANNOT;
    } else {
        bool damaged = w.damaged || a.bad_record;
        if (a.broken_orders || damaged)
            status = ADMIN_DAMAGED;
        if (o->json) {
            printf("],\"orders\":%zu,\"events\":%" PRIu64 ",\"hashed\":%" PRIu64
                   ",\"without_hash\":%" PRIu64 ",\"broken_orders\":%" PRIu64
                   ",\"log_damaged\":%s,\"state\":\"%s\"}\n",
                   a.orders.used, a.events, a.hashed, a.unhashed, a.broken_orders,
                   damaged ? "true" : "false", status == ADMIN_OK ? "intact" : "broken");
        } else {
            if (a.broken_orders > S_BREAKS_SHOWN)
                printf("           ... and %s more broken orders\n",
                       admin_count(a.broken_orders - S_BREAKS_SHOWN, n1));
            if (order_id && a.events == 0)
                printf("order %s has no event in the log\n", order_id);
            printf("audited    %s orders, %s events: %s with a hash, %s from before hashes\n",
                   admin_count(a.orders.used, n1), admin_count(a.events, n2), admin_count(a.hashed, n3),
                   admin_count(a.unhashed, n4));
            if (w.damaged)
                printf("DAMAGED    the log, at %s, byte offset %" PRIu64
                       ": %s (the audit stopped there; see wal verify)\n",
                       w.fault_segment, w.fault_offset, w.fault);
            if (a.bad_record)
                printf("DAMAGED    the event at position %" PRIu64
                       " does not decode (the audit stopped there)\n",
                       a.bad_position);
            if (w.tail_bytes)
                printf("tail       %s bytes at the end of the last segment are not a whole "
                       "frame (a write in progress, or a torn write): not audited\n",
                       admin_count(w.tail_bytes, n1));
            printf("state      %s\n",
                   status != ADMIN_OK ? (a.broken_orders ? "broken: see above" : "log damaged")
                   : a.hashed          ? "every chain intact"
                                       : "nothing to verify: no event carries a hash (all "
                                         "written before PROTOCOL.md 1.1)");
        }
        if (order_id && a.events == 0 && status == ADMIN_OK)
            status = ADMIN_DAMAGED; /* nothing to vouch for: say so in the status too */
    }
    admin_table_free(&a.orders);
    free(a.ev);
    msgpack_sbuffer_destroy(&a.sbuf);
    return status;
}
