/* ordo-admin's `replay ORDER [--to-version N | --until TIME]`: the replay
 * debugger. It walks the log, applies one order's events with the
 * engine's own ordo_apply, and after each one prints the event and what
 * it changed in the order's state (each field of the GetOrder form,
 * before -> after; colored on a terminal). This is how "the order was
 * Ready at 14:35 but the courier saw Preparing" is reproduced: the state
 * at any version or instant, from the log alone. */
#include "ordo_admin.h"

#include "ordo_codec.h"
#include "ordo_error.h"
#include "ordo_json.h"
#include "ordo_time.h"
#include "ordo_wal.h"

#include <inttypes.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    const admin_opts_t *o;
    const char *order_id;
    uint32_t to_version; /* 0: all */
    bool has_until;
    int64_t until_us;
    bool color;
    ordo_order_t order;
    ordo_event_t *ev;
    msgpack_sbuffer before, after, event;
    uint32_t applied;
    bool failed; /* an event did not apply: reported */
    bool bad_record;
    uint64_t bad_position;
} s_replay_t;

/* The order's GetOrder form (an empty map before its first event). */
static int s_pack_order(const ordo_order_t *o, msgpack_sbuffer *buf)
{
    msgpack_sbuffer_clear(buf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, buf, msgpack_sbuffer_write);
    if (o->status == ORDO_STATUS_NONE)
        return msgpack_pack_map(&pk, 0);
    return ordo_order_pack(&pk, o);
}

/* The value of `key` in the packed map (its bytes), or NULL. */
static const uint8_t *s_value(const msgpack_sbuffer *m, const char *key, size_t *len)
{
    ordo_mp_t r;
    ordo_mp_init(&r, m->data, m->size);
    uint32_t n;
    if (!ordo_mp_read_map(&r, &n))
        return NULL;
    for (uint32_t i = 0; i < n; i++) {
        const char *k;
        uint32_t kl;
        if (!ordo_mp_read_str(&r, &k, &kl))
            return NULL;
        const uint8_t *start = r.p;
        if (!ordo_mp_skip(&r))
            return NULL;
        if (kl == strlen(key) && !memcmp(k, key, kl)) {
            *len = (size_t)(r.p - start);
            return start;
        }
    }
    return NULL;
}

static void s_json_value(FILE *out, const uint8_t *v, size_t len)
{
    if (!v)
        fputs("(none)", out);
    else if (ordo_json_write(out, v, len) != 0)
        fputs("?", out);
}

/* Prints (or, in JSON, lists) every field whose value changed. */
static void s_diff(s_replay_t *p)
{
    static const char *const fields[] = {
        "status",      "version",        "user_id",       "restaurant_id",     "items",
        "total_cents", "currency",       "delivery_address", "estimated_minutes", "courier_id",
        "cancel_reason", "created_at_us", "updated_at_us", "head_hash"};
    bool json = p->o->json, first = true;
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        size_t bl = 0, al = 0;
        const uint8_t *b = s_value(&p->before, fields[i], &bl);
        const uint8_t *a = s_value(&p->after, fields[i], &al);
        if ((!a && !b) || (a && b && al == bl && !memcmp(a, b, al)))
            continue;
        if (json) {
            printf("%s\"%s\"", first ? "" : ",", fields[i]);
            first = false;
            continue;
        }
        printf("    %-17s ", fields[i]);
        if (b) {
            fputs(p->color ? "\033[31m" : "", stdout);
            s_json_value(stdout, b, bl);
            fputs(p->color ? "\033[0m" : "", stdout);
            fputs(" -> ", stdout);
        }
        fputs(p->color ? "\033[32m" : "", stdout);
        s_json_value(stdout, a, al);
        fputs(p->color ? "\033[0m" : "", stdout);
        putchar('\n');
    }
}

static const char *s_meta_text(const ordo_event_t *ev, const char *key, char *buf, size_t size)
{
    for (uint32_t i = 0; i < ev->meta.count; i++) {
        const ordo_meta_entry_t *e = &ev->meta.entries[i];
        if (e->key.len == strlen(key) && !memcmp(e->key.ptr, key, e->key.len) && !e->is_int) {
            snprintf(buf, size, "%.*s", (int)e->sval.len, e->sval.ptr);
            return buf;
        }
    }
    return NULL;
}

static int s_on_record(void *ctx, uint64_t position, const void *data, size_t len)
{
    s_replay_t *p = ctx;
    ordo_event_t *ev = p->ev;
    if (ordo_event_decode_record(data, len, position, ev) != 0) {
        p->bad_record = true;
        p->bad_position = position;
        return 1;
    }
    if (strlen(p->order_id) != ev->order_id.len ||
        memcmp(p->order_id, ev->order_id.ptr, ev->order_id.len) != 0)
        return 0;
    if (p->to_version && ev->version > p->to_version)
        return 1; /* enough */
    if (p->has_until && ev->timestamp_us > p->until_us)
        return 1;
    if (s_pack_order(&p->order, &p->before) != 0)
        return ORDO_ERR_NOMEM;
    if (ordo_apply(&p->order, ev) != 0) {
        p->failed = true;
        if (p->o->json)
            printf("{\"error\":\"the event at position %" PRIu64
                   " does not follow the order's state\"}\n",
                   position);
        else
            printf("FAILED     the event at position %" PRIu64 " (version %u, %s) does not "
                   "follow the order's state: the log and the engine's rules disagree\n",
                   position, ev->version, ordo_event_type_name(ev->type));
        return 1;
    }
    p->applied++;
    if (s_pack_order(&p->order, &p->after) != 0)
        return ORDO_ERR_NOMEM;
    if (p->o->json) {
        msgpack_sbuffer_clear(&p->event);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &p->event, msgpack_sbuffer_write);
        if (ordo_event_pack(&pk, ev) != 0)
            return ORDO_ERR_NOMEM;
        printf("{\"event\":");
        ordo_json_write(stdout, (const uint8_t *)p->event.data, p->event.size);
        printf(",\"changed\":[");
        s_diff(p);
        printf("],\"state\":");
        ordo_json_write(stdout, (const uint8_t *)p->after.data, p->after.size);
        printf("}\n");
    } else {
        char when[40], who[160];
        printf("%sv%u %s%s  position %" PRIu64 "  %s", p->color ? "\033[1m" : "", ev->version,
               ordo_event_type_name(ev->type), p->color ? "\033[0m" : "", position,
               ordo_time_format(ev->timestamp_us, when));
        if (s_meta_text(ev, "actor", who, sizeof who)) {
            fputs("  by ", stdout);
            admin_print_text(stdout, who, strlen(who)); /* a client's words: no escapes */
        }
        putchar('\n');
        s_diff(p);
    }
    return 0;
}

int admin_replay(const admin_opts_t *o, const char *order_id, uint32_t to_version,
                 bool has_until, int64_t until_us)
{
    char dir[4200];
    if (admin_log_dir(o, dir, sizeof dir) != ADMIN_OK)
        return ADMIN_CANNOT;
    s_replay_t p = {.o = o,
                    .order_id = order_id,
                    .to_version = to_version,
                    .has_until = has_until,
                    .until_us = until_us,
                    .color = !o->json && isatty(STDOUT_FILENO) && !getenv("NO_COLOR")};
    p.ev = malloc(sizeof *p.ev);
    if (!p.ev) {
        admin_error("out of memory");
        return ADMIN_CANNOT;
    }
    msgpack_sbuffer_init(&p.before);
    msgpack_sbuffer_init(&p.after);
    msgpack_sbuffer_init(&p.event);
    ordo_wal_visitor_t v = {NULL, NULL, s_on_record};
    ordo_wal_walk_t w;
    int rc = ordo_wal_walk(dir, &v, &p, &w), status = ADMIN_OK;
    if (rc != 0 && rc != 1) {
        admin_error("cannot read the log in %s: %s", dir, ordo_strerror(rc));
        status = ADMIN_CANNOT;
    } else if (p.failed || w.damaged || p.bad_record) {
        if (w.damaged)
            admin_error("the log is damaged at %s, byte offset %" PRIu64 ": %s (the replay "
                        "stopped there)",
                        w.fault_segment, w.fault_offset, w.fault);
        if (p.bad_record)
            admin_error("the event at position %" PRIu64 " does not decode (the replay stopped "
                        "there)",
                        p.bad_position);
        status = ADMIN_DAMAGED;
    } else if (p.applied == 0) {
        admin_error("order %s has no event in the log%s", order_id,
                    to_version || has_until ? " up to that point" : "");
        status = ADMIN_DAMAGED;
    } else if (!o->json) {
        char when[40];
        printf("state after version %u (%s):\n", p.order.version,
               ordo_time_format(p.order.updated_at_us, when));
        ordo_json_write(stdout, (const uint8_t *)p.after.data, p.after.size);
        putchar('\n');
    }
    ordo_order_clear(&p.order);
    free(p.ev);
    msgpack_sbuffer_destroy(&p.before);
    msgpack_sbuffer_destroy(&p.after);
    msgpack_sbuffer_destroy(&p.event);
    return status;
}
