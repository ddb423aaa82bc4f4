/* The PostgreSQL writer (see ordo_pgsink.h). One "writer" is a connection,
 * a subscription, a batch and the checkpoint of one schema: connect,
 * migrate, read the checkpoint, subscribe after it, batch, commit; on any
 * failure start over from the checkpoint after a pause. The sink runs the
 * main writer, and during a rebuild a second one into "<schema>_rebuild"
 * from position 1.
 *
 * Invariant (each writer): `batch` holds the events after the checkpoint
 * committed (or read) last, in order, none skipped; it is committed whole
 * or dropped whole, and after a drop the subscription starts again from
 * the checkpoint that PostgreSQL holds.
 *
 * A rebuild ends in three steps. When it is within one batch of the main
 * writer, the main writer commits what it holds and stops at its
 * checkpoint M (it is "frozen"); the rebuild goes on to exactly M, builds
 * its query indexes, and ordo_pg_swap gives it the schema's name; then
 * the main writer goes on, on the new tables, from M. */
#include "ordo_pgsink.h"

#include "ordo_clock.h"
#include "ordo_log.h"
#include "ordo_pgbatch.h"
#include "ordo_pgschema.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_BYTES_MAX (256u << 20) /* a batch's memory: beyond, it is committed */
#define S_POLL_MS 100           /* ordo_sub wants a call this often */
#define S_CATCHUP_FLUSH_MS 1000 /* catching up slowly: commit at least this often */
#define S_RETRY_MIN_MS 100
#define S_RETRY_MAX_MS 5000
#define S_NO_LIMIT UINT64_MAX

typedef struct {
    const char *what; /* "postgres" or "postgres rebuild", for the log */
    char schema[ORDO_PG_SCHEMA_MAX + 16];
    bool fresh; /* drop the schema before the first connection (a rebuild) */
    PGconn *conn;
    ordo_sub_t *sub;
    ordo_pgbatch_t batch;
    uint64_t checkpoint; /* committed (or read) last */
    int64_t first_ms;    /* when the batch's first event came */
    int64_t retry_at_ms; /* not connected: when to try again */
    int retry_ms;        /* the pause before the next try */
    bool caught_up_logged;
    bool indexed; /* the query indexes are known to exist (this connection) */
} s_writer_t;

typedef struct {
    ordo_pgsink_config_t cfg;
    zsock_t *pipe;
    s_writer_t main;
    s_writer_t build; /* a rebuild, while `rebuilding` */
    bool rebuilding;
    bool frozen;       /* the main writer waits at its checkpoint for the swap */
    int64_t frozen_ms; /* since when */
    int64_t swap_after_ms; /* a swap that failed is tried again after this */
    bool drop_pending; /* "<schema>_old" is still to be dropped */
    int64_t drop_at_ms;
    bool terminated;
    int64_t rate_since_ms; /* events_per_s: since when, from how many applied */
    uint64_t rate_from;
    char err[1024];
} s_sink_t;

static int64_t s_now_ms(void)
{
    return (int64_t)(ordo_mono_ns() / 1000000);
}

static void s_quiet(void *arg, const char *message)
{
    (void)arg;
    (void)message; /* NOTICEs ("already exists, skipping") are not news */
}

/* PostgreSQL's messages span lines: one log line each, spaces between. */
static void s_one_line(char *text)
{
    char *w = text;
    for (const char *r = text; *r; r++) {
        char c = *r == '\n' || *r == '\t' || *r == '\r' ? ' ' : *r;
        if (c == ' ' && (w == text || w[-1] == ' '))
            continue;
        *w++ = c;
    }
    while (w > text && w[-1] == ' ')
        w--;
    *w = '\0';
}

static void s_writer_init(s_writer_t *w, const char *what, const char *schema, bool fresh)
{
    memset(w, 0, sizeof *w);
    w->what = what;
    snprintf(w->schema, sizeof w->schema, "%s", schema);
    w->fresh = fresh;
    w->retry_ms = S_RETRY_MIN_MS;
    ordo_pgbatch_init(&w->batch);
}

static void s_writer_close(s_writer_t *w)
{
    ordo_sub_destroy(&w->sub);
    PQfinish(w->conn);
    w->conn = NULL;
    ordo_pgbatch_free(&w->batch);
}

/* Drops the connection, the subscription and the batch, and schedules the
 * next try: everything not committed is read again from the checkpoint. */
static void s_reset(s_sink_t *s, s_writer_t *w, const char *why)
{
    if (why) {
        char line[1400];
        snprintf(line, sizeof line, "%s", why);
        s_one_line(line);
        ordo_log_warn(w->what, "%s; starting again from position %" PRIu64 " in %d ms", line,
                      w->checkpoint, w->retry_ms);
    }
    atomic_fetch_add_explicit(&s->cfg.metrics->failures, 1, memory_order_relaxed);
    if (w == &s->main)
        atomic_store_explicit(&s->cfg.metrics->connected, 0, memory_order_relaxed);
    PQfinish(w->conn);
    w->conn = NULL;
    ordo_sub_destroy(&w->sub);
    ordo_pgbatch_clear(&w->batch);
    w->retry_at_ms = s_now_ms() + w->retry_ms;
    w->retry_ms = w->retry_ms * 2 > S_RETRY_MAX_MS ? S_RETRY_MAX_MS : w->retry_ms * 2;
    w->caught_up_logged = w->indexed = false;
}

/* Connects, migrates, reads the checkpoint and subscribes after it. */
static void s_connect(s_sink_t *s, s_writer_t *w)
{
    /* Our defaults first: the caller's connection string overrides them. */
    const char *keys[] = {"connect_timeout", "application_name", "keepalives_idle",
                          "keepalives_interval", "keepalives_count", "dbname", NULL};
    const char *values[] = {"10", "ordo-projector", "10", "5", "3", s->cfg.conninfo, NULL};
    w->conn = PQconnectdbParams(keys, values, 1);
    char why[1200];
    if (!w->conn || PQstatus(w->conn) != CONNECTION_OK) {
        snprintf(why, sizeof why, "cannot connect to PostgreSQL: %s",
                 w->conn ? PQerrorMessage(w->conn) : "out of memory");
        s_reset(s, w, why);
        return;
    }
    PQsetNoticeProcessor(w->conn, s_quiet, NULL);
    int applied = 0;
    char drop[128];
    snprintf(drop, sizeof drop, "DROP SCHEMA IF EXISTS \"%s\" CASCADE", w->schema);
    if ((w->fresh && ordo_pg_exec(w->conn, drop, s->err, sizeof s->err) != 0) ||
        ordo_pg_migrate(w->conn, w->schema, &applied, s->err, sizeof s->err) != 0 ||
        ordo_pgbatch_prepare(w->conn, s->err, sizeof s->err) != 0 ||
        ordo_pg_checkpoint(w->conn, w->schema, &w->checkpoint, s->err, sizeof s->err) != 0) {
        snprintf(why, sizeof why, "PostgreSQL schema \"%s\": %s", w->schema, s->err);
        s_reset(s, w, why);
        return;
    }
    w->fresh = false; /* a retry resumes what was committed */
    w->sub = ordo_sub_new_with(s->cfg.engine, s->cfg.engine_pub, "", w->checkpoint + 1,
                               s->cfg.engine_opts);
    if (!w->sub) {
        s_reset(s, w, "cannot subscribe to the engine (out of memory)");
        return;
    }
    ordo_log_info(w->what,
                  "connected to %s:%s/%s, schema \"%s\" (version %d, %d migrations applied now); "
                  "writing after position %" PRIu64,
                  PQhost(w->conn), PQport(w->conn), PQdb(w->conn), w->schema,
                  ordo_pg_schema_version(), applied, w->checkpoint);
    if (w == &s->main) {
        uint32_t generation = 1;
        if (ordo_pg_generation(w->conn, w->schema, &generation, s->err, sizeof s->err) == 0)
            atomic_store_explicit(&s->cfg.metrics->generation, generation, memory_order_relaxed);
        atomic_store_explicit(&s->cfg.metrics->connected, 1, memory_order_relaxed);
        atomic_store_explicit(&s->cfg.metrics->position, w->checkpoint, memory_order_relaxed);
    }
    w->retry_ms = S_RETRY_MIN_MS;
}

/* Commits the writer's batch. False if it failed (the writer was reset). */
static bool s_commit(s_sink_t *s, s_writer_t *w)
{
    if (w->batch.n == 0)
        return true;
    uint64_t t0 = ordo_mono_ns();
    int rc = ordo_pgbatch_apply(w->conn, w->schema, &w->batch, s->err, sizeof s->err);
    if (rc != 0) {
        char why[1400];
        snprintf(why, sizeof why, "batch of positions %" PRIu64 "..%" PRIu64 " not written: %s",
                 w->batch.first, w->batch.last,
                 rc == 1 ? "another writer moved the checkpoint (two projectors on one schema?)"
                         : s->err);
        s_reset(s, w, why);
        return false;
    }
    if (w == &s->main) {
        ordo_pmetrics_pg_t *m = s->cfg.metrics;
        ordo_buckets_observe(&m->batch_ns, ordo_mono_ns() - t0);
        ordo_buckets_observe(&m->batch_events, w->batch.n);
        atomic_fetch_add_explicit(&m->applied, w->batch.n, memory_order_relaxed);
        atomic_fetch_add_explicit(&m->batches, 1, memory_order_relaxed);
        atomic_store_explicit(&m->position, w->batch.last, memory_order_relaxed);
    }
    w->checkpoint = w->batch.last;
    ordo_pgbatch_clear(&w->batch);
    return true;
}

/* Makes the query indexes if they are missing (the first time a schema
 * catches up from position 1; ordo_pgschema.h). False if it failed. */
static bool s_index(s_sink_t *s, s_writer_t *w)
{
    int missing = 0;
    char why[1200];
    if (ordo_pg_indexes_missing(w->conn, w->schema, &missing, s->err, sizeof s->err) != 0) {
        snprintf(why, sizeof why, "cannot list the query indexes: %s", s->err);
        s_reset(s, w, why);
        return false;
    }
    if (missing > 0) {
        ordo_log_info(w->what, "at position %" PRIu64 ": building %d query indexes",
                      w->checkpoint, missing);
        uint64_t t0 = ordo_mono_ns();
        if (ordo_pg_build_indexes(w->conn, w->schema, s->err, sizeof s->err) != 0) {
            snprintf(why, sizeof why, "cannot build the query indexes: %s", s->err);
            s_reset(s, w, why);
            return false;
        }
        ordo_log_info(w->what, "query indexes built in %.1f s",
                      (double)(ordo_mono_ns() - t0) / 1e9);
    }
    w->indexed = true;
    return true;
}

/* Takes what the subscription has, up to a full batch and up to position
 * `limit`. */
static void s_pull(s_sink_t *s, s_writer_t *w, uint64_t limit)
{
    while (w->batch.n < s->cfg.batch_events && w->batch.bytes < S_BYTES_MAX &&
           (w->batch.n ? w->batch.last : w->checkpoint) < limit) {
        const ordo_client_event_t *ev;
        int rc = ordo_sub_next(w->sub, 0, &ev);
        if (rc == ORDO_E_TIMEOUT)
            break;
        if (rc != 0) {
            ordo_log_warn(w->what, "subscription: %s; retrying", ordo_client_strerror(rc));
            break;
        }
        uint64_t expect = w->batch.n ? w->batch.last + 1 : w->checkpoint + 1;
        if (ev->position != expect) {
            char why[160];
            snprintf(why, sizeof why, "event at position %" PRIu64 " does not follow %" PRIu64,
                     ev->position, expect - 1);
            s_reset(s, w, why);
            return;
        }
        if (w->batch.n == 0)
            w->first_ms = s_now_ms();
        if (ordo_pgbatch_add(&w->batch, ev) != 0) {
            char why[200];
            snprintf(why, sizeof why, "%s the event at position %" PRIu64 " (%s)",
                     w->batch.failed ? "out of memory holding" : "cannot fold", ev->position,
                     ev->type ? ev->type : "no type");
            s_reset(s, w, why);
            return;
        }
    }
    if (w == &s->main) {
        uint64_t head = ordo_sub_head(w->sub);
        if (head > atomic_load_explicit(&s->cfg.metrics->head, memory_order_relaxed))
            atomic_store_explicit(&s->cfg.metrics->head, head, memory_order_relaxed);
    }
}

/* At the head the engine gave (a subscription that has not heard from the
 * engine yet knows no head, and is not caught up). */
static bool s_caught_up(const s_writer_t *w)
{
    return w->sub && ordo_sub_head(w->sub) > 0 &&
           ordo_sub_position(w->sub) >= ordo_sub_head(w->sub);
}

/* Milliseconds until the writer's batch is due (<= 0: now); INT64_MAX
 * when empty. A batch that reached `limit` is due at once. */
static int64_t s_due_in(const s_sink_t *s, const s_writer_t *w, uint64_t limit)
{
    if (w->batch.n == 0)
        return INT64_MAX;
    if (w->batch.n >= s->cfg.batch_events || w->batch.bytes >= S_BYTES_MAX ||
        w->batch.last >= limit)
        return 0;
    return w->first_ms + (s_caught_up(w) ? s->cfg.flush_ms : S_CATCHUP_FLUSH_MS) - s_now_ms();
}

/* One turn of a writer: connect if due, pull, commit if due. */
static void s_turn(s_sink_t *s, s_writer_t *w, uint64_t limit)
{
    if (!w->conn) {
        if (s_now_ms() >= w->retry_at_ms)
            s_connect(s, w);
        return;
    }
    s_pull(s, w, limit);
    if (!w->sub)
        return; /* reset */
    if (s_due_in(s, w, limit) <= 0)
        s_commit(s, w);
}

static void s_start_rebuild(s_sink_t *s)
{
    if (s->rebuilding)
        return; /* one at a time: the one under way answers for it */
    char schema[ORDO_PG_SCHEMA_MAX + 16];
    snprintf(schema, sizeof schema, "%s_rebuild", s->cfg.schema);
    s_writer_init(&s->build, "postgres rebuild", schema, true);
    s->rebuilding = true;
    atomic_store_explicit(&s->cfg.metrics->rebuilding, 1, memory_order_relaxed);
    ordo_log_info("postgres", "rebuild: schema \"%s\" builds from position 1 beside \"%s\"",
                  schema, s->cfg.schema);
}

static void s_end_rebuild(s_sink_t *s)
{
    s_writer_close(&s->build);
    s->rebuilding = s->frozen = false;
    atomic_store_explicit(&s->cfg.metrics->rebuilding, 0, memory_order_relaxed);
}

#define S_FREEZE_MAX_MS 30000 /* a freeze the swap does not end is given up (tried again) */

static void s_unfreeze(s_sink_t *s, const char *why)
{
    if (!s->frozen)
        return;
    s->frozen = false;
    s->swap_after_ms = s_now_ms() + 1000;
    ordo_log_warn("postgres", "rebuild: %s; the live tables go on, the swap is tried again", why);
}

/* The rebuild's progress. It never passes the live tables' checkpoint M;
 * once it is within a batch of M it builds its query indexes (the live
 * writer goes on), then the live writer commits what it holds and waits
 * at M while the rebuild reaches M, and the swap gives it the name. */
static void s_rebuild_step(s_sink_t *s)
{
    s_writer_t *m = &s->main, *b = &s->build;
    if (!b->conn || !m->conn || b->batch.n > 0)
        return;
    bool close = b->checkpoint + s->cfg.batch_events >= m->checkpoint;
    if (!close)
        return;
    if (!b->indexed) {
        s_index(s, b); /* (a failure resets the rebuild writer: it goes on later) */
        return;
    }
    if (s->drop_pending || s_now_ms() < s->swap_after_ms)
        return; /* the name "<schema>_old" is still taken, or a swap just failed */
    if (!s->frozen) {
        if (!s_commit(s, m))
            return;
        s->frozen = true; /* the live writer stays at m->checkpoint until the swap */
        s->frozen_ms = s_now_ms();
        return;
    }
    if (b->checkpoint != m->checkpoint) {
        if (s_now_ms() - s->frozen_ms > S_FREEZE_MAX_MS)
            s_unfreeze(s, "the rebuild did not reach the live tables within 30 s");
        return;
    }
    if (ordo_pg_swap(b->conn, s->cfg.schema, b->schema, m->checkpoint, s->err, sizeof s->err) !=
        0) {
        char why[1200];
        snprintf(why, sizeof why, "the swap failed (%s)", s->err);
        s_one_line(why);
        s_unfreeze(s, why);
        return;
    }
    uint32_t generation = (uint32_t)atomic_load_explicit(&s->cfg.metrics->generation,
                                                         memory_order_relaxed) + 1;
    ordo_pg_generation(m->conn, s->cfg.schema, &generation, s->err, sizeof s->err);
    atomic_store_explicit(&s->cfg.metrics->generation, generation, memory_order_relaxed);
    ordo_log_info("postgres", "rebuild: generation %u answers from position %" PRIu64,
                  generation, m->checkpoint);
    s->drop_pending = true; /* the old tables go once no reader is on them */
    s->drop_at_ms = 0;
    s_end_rebuild(s); /* the live writer goes on, on the new tables */
}

/* Drops the tables a swap replaced, once readers have left them. */
static void s_drop_old(s_sink_t *s)
{
    if (!s->drop_pending || !s->main.conn || s_now_ms() < s->drop_at_ms)
        return;
    if (ordo_pg_drop_old(s->main.conn, s->cfg.schema, s->err, sizeof s->err) == 0) {
        s->drop_pending = false;
        ordo_log_info("postgres", "rebuild: the replaced tables are dropped");
    } else {
        s->drop_at_ms = s_now_ms() + 1000; /* a reader is still on them */
    }
}

static void s_read_pipe(s_sink_t *s)
{
    zmsg_t *msg = zmsg_recv_nowait(s->pipe);
    if (!msg)
        return;
    char *cmd = zmsg_popstr(msg);
    if (cmd && streq(cmd, "$TERM"))
        s->terminated = true;
    else if (cmd && streq(cmd, "REBUILD"))
        s_start_rebuild(s);
    zstr_free(&cmd);
    zmsg_destroy(&msg);
}

/* The poll items of a writer's subscription. */
static int s_items(const s_writer_t *w, zmq_pollitem_t *items, int n)
{
    if (w->sub) {
        void *req, *sub;
        ordo_sub_sockets(w->sub, &req, &sub);
        items[n++] = (zmq_pollitem_t){req, 0, ZMQ_POLLIN, 0};
        items[n++] = (zmq_pollitem_t){sub, 0, ZMQ_POLLIN, 0};
    }
    return n;
}

static long s_timeout(const s_sink_t *s, const s_writer_t *w, uint64_t limit, long timeout)
{
    int64_t now = s_now_ms();
    if (!w->conn && w->retry_at_ms - now < timeout)
        timeout = (long)(w->retry_at_ms - now);
    int64_t due = s_due_in(s, w, limit);
    if (due < timeout)
        timeout = (long)due;
    return timeout < 0 ? 0 : timeout;
}

static void s_actor(zsock_t *pipe, void *args)
{
    s_sink_t *s = calloc(1, sizeof *s);
    if (!s) {
        zsock_signal(pipe, 1);
        return;
    }
    s->cfg = *(const ordo_pgsink_config_t *)args;
    s->pipe = pipe;
    s_writer_init(&s->main, "postgres", s->cfg.schema, false);
    s->rate_since_ms = s_now_ms();
    zsock_signal(pipe, 0);
    while (!s->terminated) {
        s_writer_t *m = &s->main;
        uint64_t main_limit = s->frozen ? m->checkpoint : S_NO_LIMIT;
        uint64_t build_limit = m->checkpoint; /* a rebuild never passes the live tables */
        zmq_pollitem_t items[5] = {{zsock_resolve(pipe), 0, ZMQ_POLLIN, 0}};
        int n = s_items(m, items, 1);
        if (s->rebuilding)
            n = s_items(&s->build, items, n);
        long timeout = s_timeout(s, m, main_limit, S_POLL_MS);
        if (s->rebuilding)
            timeout = s_timeout(s, &s->build, build_limit, timeout);
        if (zmq_poll(items, n, timeout) < 0 && zmq_errno() != EINTR)
            break;
        s_read_pipe(s);
        bool was_connected = m->conn != NULL;
        s_turn(s, m, main_limit);
        if (was_connected && !m->conn && s->frozen)
            s->frozen = false; /* reset: the rebuild goes on, and freezes it again */
        if (m->sub) {
            bool caught_up = s_caught_up(m);
            if (caught_up && m->batch.n == 0 && !m->caught_up_logged) {
                ordo_log_info("postgres", "caught up at position %" PRIu64, m->checkpoint);
                m->caught_up_logged = true;
            }
            if (!caught_up)
                m->caught_up_logged = false;
            if (caught_up && m->conn && !m->indexed && m->batch.n == 0)
                s_index(s, m);
        }
        if (s->rebuilding) {
            s_turn(s, &s->build, build_limit);
            s_rebuild_step(s);
        }
        s_drop_old(s);
        int64_t now = s_now_ms();
        if (now - s->rate_since_ms >= 1000) {
            uint64_t applied = atomic_load_explicit(&s->cfg.metrics->applied, memory_order_relaxed);
            atomic_store_explicit(&s->cfg.metrics->events_per_s,
                                  (applied - s->rate_from) * 1000 /
                                      (uint64_t)(now - s->rate_since_ms),
                                  memory_order_relaxed);
            s->rate_from = applied;
            s->rate_since_ms = now;
        }
    }
    if (s->main.conn && s_commit(s, &s->main))
        ordo_log_info("postgres", "stopped at position %" PRIu64, s->main.checkpoint);
    if (s->rebuilding) {
        s_commit(s, &s->build); /* a restart does not resume it: Rebuild again */
        s_end_rebuild(s);
    }
    s_writer_close(&s->main);
    atomic_store_explicit(&s->cfg.metrics->connected, 0, memory_order_relaxed);
    free(s);
}

zactor_t *ordo_pgsink_new(const ordo_pgsink_config_t *cfg)
{
    return zactor_new(s_actor, (void *)cfg);
}

void ordo_pgsink_rebuild(zactor_t *sink)
{
    zstr_send(sink, "REBUILD");
}
