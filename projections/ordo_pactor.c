/* The projection actor (see ordo_pactor.h): its loop, its generations,
 * saving, and queries that wait for min_position.
 *
 * Invariants: a generation's `position` is the last event its model has
 * applied, and every event up to it has been applied exactly once (the
 * subscription hands out each position once, in order; a position that
 * does not follow fails the generation rather than skip or repeat);
 * `committed` is the checkpoint in its file, committed in the same SQLite
 * transaction as the model's rows, so a restart resumes exactly there. A
 * write transaction is always open between commits. */
#include "ordo_pactor.h"

#include "ordo.h"
#include "ordo_clock.h"
#include "ordo_log.h"
#include "ordo_model.h"
#include "ordo_pstore.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define S_BATCH 2048       /* events applied per generation per turn of the loop */
#define S_IDLE_POLL_MS 100 /* ordo_sub wants a call this often (Pings, retries) */
#define S_PARKED_MAX 4096  /* queries waiting for min_position at one actor */
#define S_SLOW_SAVE_MS 100 /* a save this long, once caught up, is logged */

typedef struct {
    uint32_t generation; /* 0: none */
    char path[PATH_MAX];
    sqlite3 *db;        /* owned */
    void *model;        /* owned, through ops */
    ordo_sub_t *sub;    /* owned */
    uint64_t position;  /* last event applied */
    uint64_t committed; /* checkpoint in the file */
    int64_t first_uncommitted_ms; /* when position first passed committed */
    bool caught_up; /* at the head its subscription knows */
    bool indexed;   /* its model's query indexes exist (meta `indexes` = 1) */
    bool failed;
} s_gen_t;

typedef struct {
    ordo_pjob_t *job;
    int64_t deadline_ms;
} s_parked_t;

typedef struct {
    ordo_pactor_config_t cfg;
    const ordo_model_ops_t *ops;
    const char *name;
    zsock_t *pipe; /* borrowed: zactor's */
    s_gen_t cur;   /* answers queries (db NULL: none can) */
    s_gen_t next;  /* a rebuild in progress (db NULL: none) */
    s_parked_t parked[S_PARKED_MAX];
    size_t n_parked;
    uint64_t head; /* highest engine head learned */
    int64_t rate_since_ms;
    uint64_t rate_count, events_per_s;
    bool terminated;
} s_actor_t;

static int64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- generations -------------------------------------------------------- */

static void s_gen_close(s_actor_t *a, s_gen_t *g)
{
    if (g->db)
        ordo_pstore_rollback(g->db); /* what was not committed is redone from the checkpoint */
    if (g->model)
        a->ops->close(&g->model);
    ordo_sub_destroy(&g->sub);
    ordo_pstore_close(&g->db);
    memset(g, 0, sizeof *g);
}

static void s_gen_fail(s_actor_t *a, s_gen_t *g, const char *what)
{
    if (!g->failed)
        ordo_log_error(a->name,
                       "generation %" PRIu32 " stopped at position %" PRIu64 ": %s; its last "
                       "committed state (position %" PRIu64 ") stays; Rebuild makes a new one",
                       g->generation, g->position, what, g->committed);
    g->failed = true;
    /* What was applied since the last commit may be half written: answer
     * from the last commit, and say so. The model is loaded again from
     * that commit, so what it keeps in memory matches its rows. */
    if (g->db)
        ordo_pstore_rollback(g->db);
    g->position = g->committed;
    if (g->model)
        a->ops->close(&g->model);
    if (g->db && !(g->model = a->ops->open(g->db)))
        ordo_log_error(a->name, "generation %" PRIu32 " cannot be read either; queries get "
                       "unavailable until a Rebuild", g->generation);
}

/* Opens generation `gen` (creating its file when `create`, as building
 * when `building`), loads its model and subscribes from its checkpoint. */
static int s_gen_open(s_actor_t *a, s_gen_t *g, uint32_t gen, bool create, bool building)
{
    memset(g, 0, sizeof *g);
    g->generation = gen;
    ordo_pstore_path(g->path, sizeof g->path, a->cfg.data_dir, a->name, gen);
    int64_t format = 0, checkpoint = 0, state = 0;
    if (!(g->db = ordo_pstore_open(g->path, a->cfg.cache_kib)))
        goto fail;
    if (create) {
        if (ordo_pstore_begin(g->db) != 0 ||
            ordo_pstore_meta_set(g->db, "format", ORDO_PSTORE_FORMAT) != 0 ||
            ordo_pstore_meta_set(g->db, "checkpoint", 0) != 0 ||
            ordo_pstore_meta_set(g->db, "current", building ? 0 : 1) != 0 ||
            ordo_pstore_meta_set(g->db, "indexes", 0) != 0 ||
            !(g->model = a->ops->open(g->db)) || ordo_pstore_commit(g->db) != 0)
            goto fail;
    } else {
        if (ordo_pstore_meta_get(g->db, "format", &format) != 1 ||
            ordo_pstore_meta_get(g->db, "checkpoint", &checkpoint) != 1 || checkpoint < 0) {
            ordo_log_error(a->name, "%s is not a projection file of this version", g->path);
            goto fail;
        }
        if (format != ORDO_PSTORE_FORMAT) {
            ordo_log_error(a->name, "%s has format %" PRId64 ", this projector reads %d", g->path,
                           format, ORDO_PSTORE_FORMAT);
            goto fail;
        }
        (void)state;
        /* A file without the key predates query indexes built late: it has
         * them. One that has them gets any a newer version added. */
        int64_t indexes = 1;
        if (ordo_pstore_meta_get(g->db, "indexes", &indexes) < 0 ||
            ordo_pstore_begin(g->db) != 0 || !(g->model = a->ops->open(g->db)) ||
            (indexes == 1 && ordo_model_build_indexes(a->ops, g->db) != 0) ||
            ordo_pstore_commit(g->db) != 0)
            goto fail;
        g->indexed = indexes == 1;
    }
    g->position = g->committed = (uint64_t)checkpoint;
    if (ordo_pstore_begin(g->db) != 0)
        goto fail;
    if (!(g->sub = ordo_sub_new_with(a->cfg.engine, a->cfg.engine_pub, "", g->position + 1,
                                    a->cfg.engine_opts))) {
        ordo_log_error(a->name, "cannot subscribe to %s / %s: %s", a->cfg.engine,
                       a->cfg.engine_pub, strerror(errno));
        goto fail;
    }
    return 0;
fail:
    ordo_log_error(a->name, "cannot open generation %" PRIu32 " (%s)", gen, g->path);
    s_gen_close(a, g);
    return -1;
}

/* Commits the model with its checkpoint and opens the next transaction. */
static int s_gen_save(s_actor_t *a, s_gen_t *g)
{
    if (g->failed || !g->db || g->position == g->committed)
        return 0;
    int64_t t0 = s_now_ms();
    uint64_t t0_ns = ordo_mono_ns();
    if (a->ops->flush(g->model) != 0)
        goto fail;
    int64_t t1 = s_now_ms();
    if (ordo_pstore_meta_set(g->db, "checkpoint", (int64_t)g->position) != 0 ||
        ordo_pstore_commit(g->db) != 0)
        goto fail;
    int64_t t2 = s_now_ms();
    if (g->caught_up && t2 - t0 >= S_SLOW_SAVE_MS)
        ordo_log_warn(a->name,
                      "a save of %" PRIu64 " events took %" PRId64 " ms (writing the rows %" PRId64
                      " ms, commit %" PRId64 " ms): queries and events waited that long",
                      g->position - g->committed, t2 - t0, t1 - t0, t2 - t1);
    g->committed = g->position;
    atomic_fetch_add_explicit(&a->cfg.metrics->proj[a->cfg.proj].saves, 1, memory_order_relaxed);
    ordo_buckets_observe(&a->cfg.metrics->save_ns, ordo_mono_ns() - t0_ns);
    if (ordo_pstore_begin(g->db) != 0) {
        s_gen_fail(a, g, "cannot start a transaction");
        return -1;
    }
    return 0;
fail:
    s_gen_fail(a, g, "cannot save");
    return -1;
}

/* Creates the model's query indexes if the generation went without them
 * (see ordo_model.h), in its open transaction: the next save commits them
 * with meta `indexes` = 1. 0, or -1 with the generation failed. */
static int s_gen_index(s_actor_t *a, s_gen_t *g)
{
    if (g->indexed || g->failed || !g->db)
        return 0;
    int64_t t0 = s_now_ms();
    if (ordo_model_build_indexes(a->ops, g->db) != 0 ||
        ordo_pstore_meta_set(g->db, "indexes", 1) != 0) {
        s_gen_fail(a, g, "cannot build its query indexes");
        return -1;
    }
    g->indexed = true;
    if (a->ops->query_indexes)
        ordo_log_info(a->name,
                      "generation %" PRIu32 ": query indexes built over positions 1..%" PRIu64
                      " in %" PRId64 " ms",
                      g->generation, g->position, s_now_ms() - t0);
    return 0;
}

/* Applies up to S_BATCH events. Returns how many. */
static size_t s_gen_pull(s_actor_t *a, s_gen_t *g, bool count_rate)
{
    if (!g->db || g->failed)
        return 0;
    size_t n = 0;
    while (n < S_BATCH) {
        const ordo_client_event_t *ev;
        int rc = ordo_sub_next(g->sub, 0, &ev);
        if (rc == ORDO_E_TIMEOUT)
            break;
        if (rc != 0) {
            ordo_log_warn(a->name, "subscription: %s; retrying", ordo_client_strerror(rc));
            break;
        }
        if (ev->position != g->position + 1) {
            char what[128];
            snprintf(what, sizeof what, "event at position %" PRIu64 " does not follow %" PRIu64,
                     ev->position, g->position);
            s_gen_fail(a, g, what);
            break;
        }
        if (a->ops->apply(g->model, ev) != 0) {
            s_gen_fail(a, g, "cannot apply an event (out of memory or a database error)");
            break;
        }
        if (g->position == g->committed)
            g->first_uncommitted_ms = s_now_ms();
        g->position = ev->position;
        n++;
    }
    uint64_t head = ordo_sub_head(g->sub);
    if (head > a->head)
        a->head = head;
    if (count_rate)
        a->rate_count += n;
    /* Catching up, a save comes every save_every events: each save writes
     * the orders changed since the last one, so saving often would write
     * an order once per event. Caught up, a save also comes save_ms after
     * the first unsaved event, so a restart has little to redo. */
    g->caught_up = ordo_sub_position(g->sub) >= head;
    if (g->caught_up && head > 0 && !g->indexed)
        s_gen_index(a, g);
    if (g->position - g->committed >= a->cfg.save_every ||
        (g->caught_up && g->position > g->committed &&
         s_now_ms() - g->first_uncommitted_ms >= a->cfg.save_ms))
        s_gen_save(a, g);
    return n;
}

/* The newest generation number among files and open generations. */
static uint32_t s_newest_generation(s_actor_t *a)
{
    uint32_t gens[64];
    int n = ordo_pstore_generations(a->cfg.data_dir, a->name, gens, 64);
    uint32_t g = n > 0 ? gens[n - 1] : 0;
    if (a->cur.generation > g)
        g = a->cur.generation;
    if (a->next.generation > g)
        g = a->next.generation;
    return g;
}

/* At start: the newest generation marked current answers; a newer one
 * being built goes on building; every other file is left over from a
 * switch or a rebuild that was interrupted, and is deleted. */
static void s_open_generations(s_actor_t *a)
{
    uint32_t gens[64];
    int n = ordo_pstore_generations(a->cfg.data_dir, a->name, gens, 64);
    uint32_t cur = 0, next = 0;
    for (int i = n - 1; i >= 0; i--) {
        char path[PATH_MAX];
        ordo_pstore_path(path, sizeof path, a->cfg.data_dir, a->name, gens[i]);
        sqlite3 *db = ordo_pstore_open(path, 256);
        int64_t current = 0;
        int found = db ? ordo_pstore_meta_get(db, "current", &current) : -1;
        ordo_pstore_close(&db);
        if (found == 1 && current == 1 && !cur)
            cur = gens[i];
        else if (found == 1 && current == 0 && !cur && !next)
            next = gens[i];
    }
    for (int i = 0; i < n; i++) {
        if (gens[i] == cur || gens[i] == next)
            continue;
        char path[PATH_MAX];
        ordo_pstore_path(path, sizeof path, a->cfg.data_dir, a->name, gens[i]);
        ordo_log_info(a->name, "removing %s (left over from an earlier generation)", path);
        ordo_pstore_remove(path);
    }
    if (cur && s_gen_open(a, &a->cur, cur, false, false) != 0) {
        a->cur.generation = cur; /* no database: queries get unavailable until a Rebuild */
        s_gen_fail(a, &a->cur, "its file cannot be opened");
    }
    if (next && s_gen_open(a, &a->next, next, false, true) != 0)
        ordo_log_error(a->name, "the rebuild in generation %" PRIu32 " cannot go on", next);
    if (!cur && !next && s_gen_open(a, &a->cur, 1, true, false) != 0)
        ordo_log_error(a->name, "cannot create its first generation");
    if (a->cur.db)
        ordo_log_info(a->name, "generation %" PRIu32 " resumes after position %" PRIu64,
                      a->cur.generation, a->cur.position);
    if (a->next.db)
        ordo_log_info(a->name, "rebuild in generation %" PRIu32 " resumes after position %" PRIu64,
                      a->next.generation, a->next.position);
}

/* The rebuilt generation takes over once it has reached the current one. */
static void s_maybe_switch(s_actor_t *a)
{
    s_gen_t *n = &a->next;
    if (!n->db || n->failed)
        return;
    if (a->cur.db && n->position < a->cur.position)
        return; /* the current one answers until then (a failed one from what it has) */
    if (s_gen_index(a, n) != 0)
        return;
    if (a->ops->flush(n->model) != 0 ||
        ordo_pstore_meta_set(n->db, "checkpoint", (int64_t)n->position) != 0 ||
        ordo_pstore_meta_set(n->db, "current", 1) != 0 || ordo_pstore_commit(n->db) != 0 ||
        ordo_pstore_begin(n->db) != 0) {
        s_gen_fail(a, n, "cannot take over");
        return;
    }
    n->committed = n->position;
    char old[PATH_MAX] = "";
    uint32_t old_gen = a->cur.generation;
    if (a->cur.db || a->cur.generation) {
        snprintf(old, sizeof old, "%s", a->cur.path);
        s_gen_close(a, &a->cur);
    }
    a->cur = *n;
    memset(n, 0, sizeof *n);
    ordo_log_info(a->name, "generation %" PRIu32 " answers from position %" PRIu64
                  " (replacing %" PRIu32 ")", a->cur.generation, a->cur.position, old_gen);
    if (old[0])
        ordo_pstore_remove(old);
}

/* ---- queries ------------------------------------------------------------ */

static void s_done(s_actor_t *a, ordo_pjob_t *job)
{
    zsock_send(a->pipe, "sp", "DONE", job);
}

static void s_reply_error(ordo_pjob_t *job, const ordo_perror_t *err)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    if (ordo_preply_pack_error(&pk, &job->q, err) == 0) {
        job->error_code = err->code;
        job->reply = (uint8_t *)sb.data;
        job->reply_len = sb.size;
        return;
    }
    msgpack_sbuffer_destroy(&sb); /* the front end answers unavailable */
}

static void s_status(s_actor_t *a, ordo_pstatus_t *st, bool lagging)
{
    st->lagging = lagging;
    st->failed = a->cur.failed;
    st->rebuilding = a->next.db != NULL;
    st->available = a->cur.db != NULL;
    st->position = a->cur.position;
    st->head = a->head;
    st->events_per_s = a->events_per_s;
    st->generation = a->cur.generation;
    st->answered = true;
}

/* Answers a job now (min_position reached, or lagging when late). */
static void s_answer(s_actor_t *a, ordo_pjob_t *job, bool late)
{
    const ordo_pquery_t *q = &job->q;
    if (q->type == ORDO_PQ_PROJECTION_STATUS || q->type == ORDO_PQ_PING) {
        s_status(a, &job->status[a->cfg.proj], late);
        s_done(a, job);
        return;
    }
    ordo_perror_t err;
    if (late) {
        ordo_perror_set(&err, "lagging",
                        "the %s projection is at position %" PRIu64 ", not yet at %" PRId64
                        " after %" PRId64 " ms; ask again later",
                        a->name, a->cur.position, q->min_position, q->wait_ms);
        err.has_positions = true;
        err.position = (int64_t)a->cur.position;
        err.min_position = q->min_position;
        s_reply_error(job, &err);
        s_done(a, job);
        return;
    }
    if (q->type == ORDO_PQ_REBUILD) {
        if (!a->next.db) {
            uint32_t gen = s_newest_generation(a) + 1;
            if (s_gen_open(a, &a->next, gen, true, true) != 0) {
                ordo_perror_set(&err, "unavailable", "cannot start a new generation; see the log");
                s_reply_error(job, &err);
                s_done(a, job);
                return;
            }
            ordo_log_info(a->name, "rebuild: generation %" PRIu32 " builds from position 1", gen);
        }
    }
    s_gen_t *g = &a->cur;
    if (q->type != ORDO_PQ_REBUILD &&
        (!g->db || !g->model ||
         (!g->failed && (s_gen_index(a, g) != 0 || a->ops->flush(g->model) != 0)))) {
        if (g->db && !g->failed) /* (a failed index build failed it already) */
            s_gen_fail(a, g, "cannot write its changes");
        ordo_perror_set(&err, "unavailable",
                        "the %s projection has no generation to answer from; see "
                        "ProjectionStatus",
                        a->name);
        s_reply_error(job, &err);
        s_done(a, job);
        return;
    }
    msgpack_sbuffer body;
    msgpack_sbuffer_init(&body);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &body, msgpack_sbuffer_write);
    int n;
    if (q->type == ORDO_PQ_REBUILD) {
        n = 2;
        if (msgpack_pack_str_with_body(&pk, "projection", 10) != 0 ||
            msgpack_pack_str_with_body(&pk, a->name, strlen(a->name)) != 0 ||
            msgpack_pack_str_with_body(&pk, "generation", 10) != 0 ||
            msgpack_pack_uint32(&pk, a->next.generation) != 0)
            n = -1;
        if (n < 0)
            ordo_perror_set(&err, "unavailable", "out of memory");
    } else {
        n = a->ops->query(g->model, q, &pk, &err);
    }
    if (n < 0) {
        msgpack_sbuffer_destroy(&body);
        s_reply_error(job, &err);
        s_done(a, job);
        return;
    }
    msgpack_sbuffer reply;
    msgpack_sbuffer_init(&reply);
    msgpack_packer rp;
    msgpack_packer_init(&rp, &reply, msgpack_sbuffer_write);
    if (ordo_preply_pack_ok(&rp, q, g->position, (uint32_t)n) == 0 &&
        msgpack_sbuffer_write(&reply, body.data, body.size) == 0) {
        job->reply = (uint8_t *)reply.data;
        job->reply_len = reply.size;
    } else {
        msgpack_sbuffer_destroy(&reply); /* the front end answers unavailable */
    }
    msgpack_sbuffer_destroy(&body);
    s_done(a, job);
}

static void s_take_job(s_actor_t *a, ordo_pjob_t *job)
{
    const ordo_pquery_t *q = &job->q;
    if (q->has_min_position && a->cur.position < (uint64_t)q->min_position &&
        q->type != ORDO_PQ_REBUILD) {
        if (q->wait_ms > 0 && a->n_parked < S_PARKED_MAX) {
            a->parked[a->n_parked++] = (s_parked_t){job, s_now_ms() + q->wait_ms};
            return;
        }
        s_answer(a, job, true);
        return;
    }
    s_answer(a, job, false);
}

/* Answers parked jobs whose position came, and those whose time is up. */
static void s_unpark(s_actor_t *a)
{
    int64_t now = s_now_ms();
    size_t keep = 0;
    for (size_t i = 0; i < a->n_parked; i++) {
        s_parked_t p = a->parked[i];
        if (a->cur.position >= (uint64_t)p.job->q.min_position)
            s_answer(a, p.job, false);
        else if (now >= p.deadline_ms)
            s_answer(a, p.job, true);
        else
            a->parked[keep++] = p;
    }
    a->n_parked = keep;
}

/* ---- the loop ----------------------------------------------------------- */

static void s_read_pipe(s_actor_t *a)
{
    while (!a->terminated && (zsock_events(a->pipe) & ZMQ_POLLIN)) {
        char *cmd = NULL;
        void *ptr = NULL;
        if (zsock_recv(a->pipe, "sp", &cmd, &ptr) != 0) {
            a->terminated = true; /* interrupted: stop */
            break;
        }
        if (cmd && streq(cmd, "$TERM"))
            a->terminated = true;
        else if (cmd && streq(cmd, "JOB") && ptr)
            s_take_job(a, ptr);
        zstr_free(&cmd);
    }
}

/* Publishes its figures for /metrics (ordo_pmetrics.h). */
static void s_publish(s_actor_t *a, size_t applied)
{
    ordo_pmetrics_proj_t *m = &a->cfg.metrics->proj[a->cfg.proj];
    if (applied)
        atomic_fetch_add_explicit(&m->applied, applied, memory_order_relaxed);
    atomic_store_explicit(&m->position, a->cur.position, memory_order_relaxed);
    atomic_store_explicit(&m->committed, a->cur.committed, memory_order_relaxed);
    atomic_store_explicit(&m->head, a->head, memory_order_relaxed);
    atomic_store_explicit(&m->generation, a->cur.generation, memory_order_relaxed);
    atomic_store_explicit(&m->failed, a->cur.failed || !a->cur.db, memory_order_relaxed);
    atomic_store_explicit(&m->rebuilding, a->next.db != NULL, memory_order_relaxed);
}

static int s_add_sub(zmq_pollitem_t *items, int n, ordo_sub_t *sub)
{
    if (!sub)
        return n;
    void *req, *s;
    ordo_sub_sockets(sub, &req, &s);
    items[n++] = (zmq_pollitem_t){req, 0, ZMQ_POLLIN, 0};
    items[n++] = (zmq_pollitem_t){s, 0, ZMQ_POLLIN, 0};
    return n;
}

static void s_actor(zsock_t *pipe, void *args)
{
    s_actor_t *a = calloc(1, sizeof *a);
    if (!a) {
        zsock_signal(pipe, 1);
        return;
    }
    a->cfg = *(const ordo_pactor_config_t *)args;
    a->ops = ordo_model_for(a->cfg.proj);
    a->name = a->ops->name;
    a->pipe = pipe;
    a->rate_since_ms = s_now_ms();
    s_open_generations(a);
    s_publish(a, 0);
    zsock_signal(pipe, 0);
    bool busy = true;
    while (!a->terminated) {
        zmq_pollitem_t items[5] = {{zsock_resolve(pipe), 0, ZMQ_POLLIN, 0}};
        int n = s_add_sub(items, 1, a->cur.failed ? NULL : a->cur.sub);
        n = s_add_sub(items, n, a->next.failed ? NULL : a->next.sub);
        long timeout = S_IDLE_POLL_MS;
        int64_t now = s_now_ms();
        for (size_t i = 0; i < a->n_parked; i++)
            if (a->parked[i].deadline_ms - now < timeout)
                timeout = (long)(a->parked[i].deadline_ms - now);
        for (s_gen_t *g = &a->cur; g <= &a->next; g++)
            if (g->db && g->caught_up && g->position > g->committed &&
                g->first_uncommitted_ms + a->cfg.save_ms - now < timeout)
                timeout = (long)(g->first_uncommitted_ms + a->cfg.save_ms - now);
        if (busy || timeout < 0)
            timeout = 0;
        if (zmq_poll(items, n, timeout) < 0 && errno != EINTR)
            break;
        s_read_pipe(a);
        size_t done = s_gen_pull(a, &a->cur, true);
        done += s_gen_pull(a, &a->next, !a->cur.db);
        busy = done > 0;
        s_maybe_switch(a);
        s_unpark(a);
        s_publish(a, done);
        now = s_now_ms();
        if (now - a->rate_since_ms >= 1000) {
            a->events_per_s = a->rate_count * 1000 / (uint64_t)(now - a->rate_since_ms);
            a->rate_count = 0;
            a->rate_since_ms = now;
        }
    }
    /* Stopping: save what was applied; the front end answers parked jobs. */
    s_gen_save(a, &a->cur);
    s_gen_save(a, &a->next);
    ordo_log_info(a->name, "saved at position %" PRIu64 " (generation %" PRIu32 ")",
                  a->cur.position, a->cur.generation);
    s_gen_close(a, &a->cur);
    s_gen_close(a, &a->next);
    free(a);
}

zactor_t *ordo_pactor_new(const ordo_pactor_config_t *cfg)
{
    return zactor_new(s_actor, (void *)cfg);
}
