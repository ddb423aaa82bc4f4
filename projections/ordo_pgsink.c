/* The PostgreSQL writer (see ordo_pgsink.h): connect, migrate, read the
 * checkpoint, subscribe from it, batch, commit; on any failure start over
 * from the checkpoint after a pause.
 *
 * Invariant: `batch` holds the events after the checkpoint committed (or
 * read) last, in order, none skipped; it is committed whole or dropped
 * whole, and after a drop the subscription starts again from the
 * checkpoint that PostgreSQL holds. */
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

typedef struct {
    ordo_pgsink_config_t cfg;
    zsock_t *pipe;
    PGconn *conn;
    ordo_sub_t *sub;
    ordo_pgbatch_t batch;
    uint64_t checkpoint;  /* committed (or read) last */
    int64_t first_ms;     /* when the batch's first event came */
    int64_t retry_at_ms;  /* not connected: when to try again */
    int retry_ms;         /* the pause before the next try */
    bool caught_up_logged;
    bool indexed; /* the query indexes are known to exist (this connection) */
    bool terminated;
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

/* Drops the connection, the subscription and the batch, and schedules the
 * next try: everything not committed is read again from the checkpoint. */
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

static void s_reset(s_sink_t *s, const char *why)
{
    if (why) {
        char line[1400];
        snprintf(line, sizeof line, "%s", why);
        s_one_line(line);
        ordo_log_warn("postgres", "%s; starting again from position %" PRIu64 " in %d ms", line,
                      s->checkpoint, s->retry_ms);
    }
    atomic_fetch_add_explicit(&s->cfg.metrics->failures, 1, memory_order_relaxed);
    atomic_store_explicit(&s->cfg.metrics->connected, 0, memory_order_relaxed);
    PQfinish(s->conn);
    s->conn = NULL;
    ordo_sub_destroy(&s->sub);
    ordo_pgbatch_clear(&s->batch);
    s->retry_at_ms = s_now_ms() + s->retry_ms;
    s->retry_ms = s->retry_ms * 2 > S_RETRY_MAX_MS ? S_RETRY_MAX_MS : s->retry_ms * 2;
    s->caught_up_logged = s->indexed = false;
}

/* Connects, migrates, reads the checkpoint and subscribes after it. */
static void s_connect(s_sink_t *s)
{
    /* Our defaults first: the caller's connection string overrides them. */
    const char *keys[] = {"connect_timeout", "application_name", "keepalives_idle",
                          "keepalives_interval", "keepalives_count", "dbname", NULL};
    const char *values[] = {"10", "ordo-projector", "10", "5", "3", s->cfg.conninfo, NULL};
    s->conn = PQconnectdbParams(keys, values, 1);
    if (!s->conn || PQstatus(s->conn) != CONNECTION_OK) {
        char why[600];
        snprintf(why, sizeof why, "cannot connect to PostgreSQL: %s",
                 s->conn ? PQerrorMessage(s->conn) : "out of memory");
        size_t n = strlen(why);
        while (n && why[n - 1] == '\n')
            why[--n] = '\0';
        s_reset(s, why);
        return;
    }
    PQsetNoticeProcessor(s->conn, s_quiet, NULL);
    int applied = 0;
    char why[1200];
    if (ordo_pg_migrate(s->conn, s->cfg.schema, &applied, s->err, sizeof s->err) != 0 ||
        ordo_pgbatch_prepare(s->conn, s->err, sizeof s->err) != 0 ||
        ordo_pg_checkpoint(s->conn, s->cfg.schema, &s->checkpoint, s->err, sizeof s->err) != 0) {
        snprintf(why, sizeof why, "PostgreSQL schema \"%s\": %s", s->cfg.schema, s->err);
        s_reset(s, why);
        return;
    }
    s->sub = ordo_sub_new_with(s->cfg.engine, s->cfg.engine_pub, "", s->checkpoint + 1,
                               s->cfg.engine_opts);
    if (!s->sub) {
        s_reset(s, "cannot subscribe to the engine (out of memory)");
        return;
    }
    ordo_log_info("postgres",
                  "connected to %s:%s/%s, schema \"%s\" (version %d, %d migrations applied now); "
                  "writing after position %" PRIu64,
                  PQhost(s->conn), PQport(s->conn), PQdb(s->conn), s->cfg.schema,
                  ordo_pg_schema_version(), applied, s->checkpoint);
    atomic_store_explicit(&s->cfg.metrics->connected, 1, memory_order_relaxed);
    atomic_store_explicit(&s->cfg.metrics->position, s->checkpoint, memory_order_relaxed);
    s->retry_ms = S_RETRY_MIN_MS;
}

/* Commits the batch. False if it failed (the sink was reset). */
static bool s_commit(s_sink_t *s)
{
    if (s->batch.n == 0)
        return true;
    uint64_t t0 = ordo_mono_ns();
    int rc = s->batch.failed ? -1
                             : ordo_pgbatch_apply(s->conn, s->cfg.schema, &s->batch, s->err,
                                                  sizeof s->err);
    if (rc != 0) {
        char why[1200];
        snprintf(why, sizeof why, "batch of positions %" PRIu64 "..%" PRIu64 " not written: %s",
                 s->batch.first, s->batch.last,
                 s->batch.failed ? "out of memory"
                 : rc == 1       ? "another writer moved the checkpoint (two projectors on one "
                                   "schema?)"
                                 : s->err);
        s_reset(s, why);
        return false;
    }
    ordo_pmetrics_pg_t *m = s->cfg.metrics;
    ordo_buckets_observe(&m->batch_ns, ordo_mono_ns() - t0);
    ordo_buckets_observe(&m->batch_events, s->batch.n);
    atomic_fetch_add_explicit(&m->applied, s->batch.n, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->batches, 1, memory_order_relaxed);
    s->checkpoint = s->batch.last;
    atomic_store_explicit(&m->position, s->checkpoint, memory_order_relaxed);
    ordo_pgbatch_clear(&s->batch);
    return true;
}

/* Caught up: makes the query indexes if they are missing (the first time
 * a schema catches up from position 1; ordo_pgschema.h). */
static void s_index(s_sink_t *s)
{
    int missing = 0;
    if (ordo_pg_indexes_missing(s->conn, s->cfg.schema, &missing, s->err, sizeof s->err) != 0) {
        char why[1200];
        snprintf(why, sizeof why, "cannot list the query indexes: %s", s->err);
        s_reset(s, why);
        return;
    }
    if (missing > 0) {
        ordo_log_info("postgres", "caught up at position %" PRIu64 ": building %d query indexes",
                      s->checkpoint, missing);
        uint64_t t0 = ordo_mono_ns();
        if (ordo_pg_build_indexes(s->conn, s->cfg.schema, s->err, sizeof s->err) != 0) {
            char why[1200];
            snprintf(why, sizeof why, "cannot build the query indexes: %s", s->err);
            s_reset(s, why);
            return;
        }
        ordo_log_info("postgres", "query indexes built in %.1f s",
                      (double)(ordo_mono_ns() - t0) / 1e9);
    }
    s->indexed = true;
}

/* Takes what the subscription has, up to a full batch. */
static void s_pull(s_sink_t *s)
{
    while (s->batch.n < s->cfg.batch_events && s->batch.bytes < S_BYTES_MAX) {
        const ordo_client_event_t *ev;
        int rc = ordo_sub_next(s->sub, 0, &ev);
        if (rc == ORDO_E_TIMEOUT)
            break;
        if (rc != 0) {
            ordo_log_warn("postgres", "subscription: %s; retrying", ordo_client_strerror(rc));
            break;
        }
        uint64_t expect = s->batch.n ? s->batch.last + 1 : s->checkpoint + 1;
        if (ev->position != expect) {
            char why[160];
            snprintf(why, sizeof why, "event at position %" PRIu64 " does not follow %" PRIu64,
                     ev->position, expect - 1);
            s_reset(s, why);
            return;
        }
        if (s->batch.n == 0)
            s->first_ms = s_now_ms();
        if (ordo_pgbatch_add(&s->batch, ev) != 0) {
            s_reset(s, "out of memory holding a batch");
            return;
        }
    }
    uint64_t head = ordo_sub_head(s->sub);
    if (head > atomic_load_explicit(&s->cfg.metrics->head, memory_order_relaxed))
        atomic_store_explicit(&s->cfg.metrics->head, head, memory_order_relaxed);
}

/* Milliseconds until the batch is due (<= 0: now); INT64_MAX when empty. */
static int64_t s_due_in(const s_sink_t *s, bool caught_up)
{
    if (s->batch.n == 0)
        return INT64_MAX;
    if (s->batch.n >= s->cfg.batch_events || s->batch.bytes >= S_BYTES_MAX)
        return 0;
    return s->first_ms + (caught_up ? s->cfg.flush_ms : S_CATCHUP_FLUSH_MS) - s_now_ms();
}

static bool s_caught_up(const s_sink_t *s)
{
    return s->sub && ordo_sub_position(s->sub) >= ordo_sub_head(s->sub);
}

static void s_read_pipe(s_sink_t *s)
{
    zmsg_t *msg = zmsg_recv_nowait(s->pipe);
    if (!msg)
        return;
    char *cmd = zmsg_popstr(msg);
    if (cmd && streq(cmd, "$TERM"))
        s->terminated = true;
    zstr_free(&cmd);
    zmsg_destroy(&msg);
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
    s->retry_ms = S_RETRY_MIN_MS;
    ordo_pgbatch_init(&s->batch);
    zsock_signal(pipe, 0);
    while (!s->terminated) {
        if (!s->conn && s_now_ms() >= s->retry_at_ms)
            s_connect(s);
        zmq_pollitem_t items[3] = {{zsock_resolve(pipe), 0, ZMQ_POLLIN, 0}};
        int n = 1;
        if (s->sub) {
            void *req, *sub;
            ordo_sub_sockets(s->sub, &req, &sub);
            items[n++] = (zmq_pollitem_t){req, 0, ZMQ_POLLIN, 0};
            items[n++] = (zmq_pollitem_t){sub, 0, ZMQ_POLLIN, 0};
        }
        int64_t now = s_now_ms();
        long timeout = S_POLL_MS;
        if (!s->conn && s->retry_at_ms - now < timeout)
            timeout = (long)(s->retry_at_ms - now);
        int64_t due = s_due_in(s, s_caught_up(s));
        if (due < timeout)
            timeout = (long)due;
        if (timeout < 0)
            timeout = 0;
        if (zmq_poll(items, n, timeout) < 0 && zmq_errno() != EINTR)
            break;
        s_read_pipe(s);
        if (!s->sub)
            continue;
        s_pull(s);
        if (!s->sub)
            continue; /* reset */
        bool caught_up = s_caught_up(s);
        if (s_due_in(s, caught_up) <= 0 && s_commit(s) && caught_up && !s->caught_up_logged &&
            s->batch.n == 0) {
            ordo_log_info("postgres", "caught up at position %" PRIu64, s->checkpoint);
            s->caught_up_logged = true;
        }
        if (caught_up && s->conn && !s->indexed && s->batch.n == 0)
            s_index(s);
        if (!caught_up)
            s->caught_up_logged = false;
    }
    if (s->conn && s_commit(s))
        ordo_log_info("postgres", "stopped at position %" PRIu64, s->checkpoint);
    ordo_sub_destroy(&s->sub);
    PQfinish(s->conn);
    ordo_pgbatch_free(&s->batch);
    atomic_store_explicit(&s->cfg.metrics->connected, 0, memory_order_relaxed);
    free(s);
}

zactor_t *ordo_pgsink_new(const ordo_pgsink_config_t *cfg)
{
    return zactor_new(s_actor, (void *)cfg);
}
