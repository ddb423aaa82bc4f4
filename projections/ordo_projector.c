/* ordo-projector: the read side (PROJECTIONS.md). The main thread is the
 * front end: it owns the ROUTER where clients send queries, decodes and
 * checks each one (ordo_pquery_decode), and passes it as a job to the
 * projection actor that answers it (ordo_pactor.c, one per read model), or
 * to all of them for ProjectionStatus and Ping, whose answers it joins.
 * Actors send their jobs back when answered; the front end sends the reply
 * with the client's envelope and frees the job. SIGTERM/SIGINT: every
 * actor saves its model with its checkpoint, jobs still waiting get
 * `unavailable`, exit 0. */
#include "ordo_io.h"
#include "ordo_log.h"
#include "ordo_pactor.h"
#include "ordo_auth.h"
#include "ordo_clock.h"
#include "ordo_conn_monitor.h"
#include "ordo_exposure.h"
#include "ordo_metrics_http.h"
#include "ordo_pconfig.h"
#include "ordo_pstream.h"
#include "ordo_pgsink.h"
#include "ordo_phttp.h"
#include "ordo_phub.h"
#include "ordo_pmetrics.h"
#include "ordo_peers.h"
#include "ordo_pquery.h"

#include <czmq.h>
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ORDO_PROJECTOR_VERSION "0.3.0"
#define S_JOBS_MAX 4096            /* queries in flight; beyond: overloaded */
#define S_HWM 16384                /* messages queued per peer */
#define S_MSG_MAX (16 * 1024 * 1024) /* peers sending more are disconnected */
#define S_SAVE_MS 1000             /* commit at least this often while events come */
#define S_CACHE_KIB 32768          /* SQLite page cache per read model */
#define S_COUNTED_REPLY 1024       /* replies from this size count against their connection */

static volatile sig_atomic_t s_stop;

static void s_on_signal(int sig)
{
    (void)sig;
    s_stop = 1;
}

static void s_usage(FILE *out)
{
    fprintf(out,
            "Usage: ordo-projector [OPTIONS]\n"
            "The read side of Ordo: projection actors that follow the engine's events\n"
            "(PUB, gaps filled with ReadAll) into read models, and answer queries on them.\n"
            "\n"
            "  --engine ENDPOINT      the engine's requests (default tcp://127.0.0.1:7700; "
            "ORDO_ENGINE)\n"
            "  --engine-pub ENDPOINT  the engine's events (default tcp://127.0.0.1:7701; "
            "ORDO_ENGINE_PUB)\n"
            "  --bind ENDPOINT        queries, ROUTER (default tcp://127.0.0.1:7702; "
            "ORDO_PROJECTOR_BIND)\n"
            "  --data-dir DIR         read models and checkpoints, created if missing\n"
            "                         (default ./projections; ORDO_PROJECTOR_DATA_DIR)\n"
            "  --save-every EVENTS    save each model with its checkpoint after this many\n"
            "                         events, and within a second once caught up\n"
            "                         (default 500000; ORDO_PROJECTOR_SAVE_EVERY)\n"
            "  --curve-server FILE    CURVE towards the engine: its public certificate\n"
            "                         (ORDO_CURVE_SERVER)\n"
            "  --curve-cert FILE      CURVE towards the engine: the projector's secret\n"
            "                         certificate (ORDO_CURVE_CERT)\n"
            "  --curve-secret FILE    CURVE on --bind: the projector's secret certificate\n"
            "                         (ORDO_PROJECTOR_CURVE_SECRET)\n"
            "  --curve-clients DIR    CURVE on --bind: the folder of client certificates let\n"
            "                         in, read at start (ORDO_PROJECTOR_CURVE_CLIENTS)\n"
            "  --insecure             bind beyond loopback without CURVE (refused otherwise)\n"
            "  --metrics HOST:PORT    serve Prometheus metrics at http://HOST:PORT/metrics\n"
            "                         (such as 127.0.0.1:9465; ORDO_PROJECTOR_METRICS)\n"
            "  --http HOST:PORT       serve the live page (a restaurant's board, analytics,\n"
            "                         status) and its JSON at http://HOST:PORT/\n"
            "                         (ORDO_PROJECTOR_HTTP; read-only, no authentication)\n"
            "  --postgres CONNINFO    also keep read-model tables in PostgreSQL: a libpq\n"
            "                         connection string or URI, such as \"host=db dbname=shop\"\n"
            "                         (ORDO_PROJECTOR_POSTGRES; a password is best left to\n"
            "                         PGPASSWORD or ~/.pgpass). See docs/postgres.md.\n"
            "  --postgres-schema NAME the PostgreSQL schema of those tables (default ordo;\n"
            "                         ORDO_PROJECTOR_POSTGRES_SCHEMA)\n"
            "  --postgres-batch N     events per transaction while catching up (default\n"
            "                         500000, about 130 MB; ORDO_PROJECTOR_POSTGRES_BATCH)\n"
            "  --nats URLS            read the events from a partition's stream in NATS\n"
            "                         JetStream (nats://HOST:PORT,...; ORDO_PROJECTOR_NATS) instead of\n"
            "                         from the engine: for a projector on another machine\n"
            "                         (docs/cluster.md). --engine and --engine-pub are unused\n"
            "  --partition K/P        with --nats: the stream of partition K (default 0/1;\n"
            "                         ORDO_PROJECTOR_PARTITION)\n"
            "  --nats-durable NAME    with --nats: the durable consumer, one per projector\n"
            "                         (default ordo-projector; ORDO_PROJECTOR_DURABLE)\n"
            "  --help, --version\n"
            "\n"
            "Read models: summary (GetOrderSummary, ListOrders), restaurant (RestaurantBoard),\n"
            "user (UserHistory), analytics (Analytics), timeline (OrdersAsOf); ProjectionStatus,\n"
            "Rebuild and Ping. See docs/projections.md.\n");
}

typedef struct {
    zsock_t *router;
    zactor_t *actors[ORDO_PROJ_COUNT_];
    zactor_t *pgsink; /* the PostgreSQL writer, with --postgres */
    ordo_pjob_t *jobs; /* owned: every job in flight, a doubly linked list */
    size_t n_jobs;
    ordo_peers_t *peers; /* owned: what each connection holds of reply memory */
    ordo_pmetrics_t *metrics;
} s_front_t;

/* Sends a reply: the envelope's frames, then the body. A body from
 * S_COUNTED_REPLY bytes on counts against `peer` until ZeroMQ has written
 * it (ordo_peers.h), so a client that does not read its replies is soon
 * refused with `overloaded` instead of filling the projector's memory. */
static void s_send(s_front_t *f, void *peer, zmsg_t **envelope, const void *body, size_t len)
{
    zmsg_t *env = *envelope;
    *envelope = NULL;
    zmq_msg_t msg;
    if (len < S_COUNTED_REPLY || ordo_peers_counted_msg(f->peers, peer, body, len, &msg) != 0) {
        if (zmq_msg_init_size(&msg, len) != 0) {
            zmsg_destroy(&env); /* out of memory: the reply is lost */
            return;
        }
        memcpy(zmq_msg_data(&msg), body, len);
    }
    void *sock = zsock_resolve(f->router);
    for (zframe_t *fr = env ? zmsg_first(env) : NULL; fr; fr = zmsg_next(env))
        zmq_send(sock, zframe_data(fr), zframe_size(fr), ZMQ_SNDMORE | ZMQ_DONTWAIT);
    if (zmq_msg_send(&msg, sock, ZMQ_DONTWAIT) < 0)
        zmq_msg_close(&msg); /* the peer is gone or its queue full: the reply is lost */
    zmsg_destroy(&env);
}

static void s_send_error(s_front_t *f, void *peer, zmsg_t **envelope, const ordo_pquery_t *q,
                         const ordo_perror_t *err)
{
    ordo_pmetrics_error(f->metrics, err->code);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    if (ordo_preply_pack_error(&pk, q, err) == 0)
        s_send(f, peer, envelope, sb.data, sb.size);
    else
        zmsg_destroy(envelope);
    msgpack_sbuffer_destroy(&sb);
}

static void s_unlink(s_front_t *f, ordo_pjob_t *job)
{
    if (job->prev)
        job->prev->next = job->next;
    else
        f->jobs = job->next;
    if (job->next)
        job->next->prev = job->prev;
    f->n_jobs--;
}

static void s_free_job(s_front_t *f, ordo_pjob_t *job)
{
    if (job->big)
        ordo_peers_big_done(f->peers, job->peer);
    if (job->peer)
        ordo_peers_release(f->peers, job->peer);
    zmsg_destroy(&job->envelope);
    free(job->reply);
    free(job);
}

/* One entry of ProjectionStatus' `projections`. */
static int s_pack_status(msgpack_packer *pk, const char *name, uint64_t position, uint64_t lag,
                         const char *state, uint64_t events_per_s, uint32_t generation)
{
    int rc = msgpack_pack_map(pk, 6);
    rc |= msgpack_pack_str_with_body(pk, "name", 4);
    rc |= msgpack_pack_str_with_body(pk, name, strlen(name));
    rc |= msgpack_pack_str_with_body(pk, "position", 8);
    rc |= msgpack_pack_uint64(pk, position);
    rc |= msgpack_pack_str_with_body(pk, "lag_events", 10);
    rc |= msgpack_pack_uint64(pk, lag);
    rc |= msgpack_pack_str_with_body(pk, "state", 5);
    rc |= msgpack_pack_str_with_body(pk, state, strlen(state));
    rc |= msgpack_pack_str_with_body(pk, "events_per_s", 12);
    rc |= msgpack_pack_uint64(pk, events_per_s);
    rc |= msgpack_pack_str_with_body(pk, "generation", 10);
    rc |= msgpack_pack_uint32(pk, generation);
    return rc;
}

/* Rebuild of "postgres": asks the PostgreSQL writer; the reply is at once
 * (ordo_pgsink_rebuild): {projection, generation: the one being built}. */
static void s_rebuild_postgres(s_front_t *f, void *peer, zmsg_t **envelope, const ordo_pquery_t *q)
{
    ordo_perror_t err;
    if (!f->pgsink) {
        ordo_perror_field(&err, "projection",
                          "postgres names the PostgreSQL tables, which this projector does not "
                          "keep (no --postgres)");
        s_send_error(f, peer, envelope, q, &err);
        return;
    }
    ordo_pgsink_rebuild(f->pgsink);
    ordo_pmetrics_pg_t *pg = &f->metrics->pg;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    int rc = ordo_preply_pack_ok(&pk, q, atomic_load_explicit(&pg->position, memory_order_relaxed),
                                 2);
    rc |= msgpack_pack_str_with_body(&pk, "projection", 10);
    rc |= msgpack_pack_str_with_body(&pk, "postgres", 8);
    rc |= msgpack_pack_str_with_body(&pk, "generation", 10);
    rc |= msgpack_pack_uint32(
        &pk, (uint32_t)atomic_load_explicit(&pg->generation, memory_order_relaxed) + 1);
    if (rc == 0) {
        s_send(f, peer, envelope, sb.data, sb.size);
    } else {
        ordo_perror_set(&err, "unavailable", "out of memory");
        s_send_error(f, peer, envelope, q, &err);
    }
    msgpack_sbuffer_destroy(&sb);
}

/* The reply to ProjectionStatus or Ping from every actor's slot. */
static void s_send_joined(s_front_t *f, ordo_pjob_t *job)
{
    uint64_t head = 0, low = UINT64_MAX;
    bool lagging = false;
    for (int p = 0; p < ORDO_PROJ_COUNT_; p++) {
        const ordo_pstatus_t *st = &job->status[p];
        if (st->head > head)
            head = st->head;
        if (st->position < low)
            low = st->position;
        lagging |= st->lagging;
    }
    if (lagging) {
        ordo_perror_t err;
        ordo_perror_set(&err, "lagging",
                        "not every projection is at position %" PRId64 " yet (the lowest is at "
                        "%" PRIu64 "); ask again later",
                        job->q.min_position, low);
        err.has_positions = true;
        err.position = (int64_t)low;
        err.min_position = job->q.min_position;
        s_send_error(f, job->peer, &job->envelope, &job->q, &err);
        return;
    }
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    bool status = job->q.type == ORDO_PQ_PROJECTION_STATUS;
    int rc = ordo_preply_pack_ok(&pk, &job->q, low, status ? 2 : 1);
    rc |= msgpack_pack_str_with_body(&pk, "engine_head", 11);
    rc |= msgpack_pack_uint64(&pk, head);
    if (status) {
        rc |= msgpack_pack_str_with_body(&pk, "projections", 11);
        ordo_pmetrics_pg_t *pg = &f->metrics->pg;
        rc |= msgpack_pack_array(&pk, ORDO_PROJ_COUNT_ + (pg->enabled ? 1 : 0));
        for (int p = 0; p < ORDO_PROJ_COUNT_; p++) {
            const ordo_pstatus_t *st = &job->status[p];
            uint64_t lag = head > st->position ? head - st->position : 0;
            const char *state = !st->available || st->failed ? "failed"
                                : st->rebuilding            ? "rebuilding"
                                : lag == 0                  ? "live"
                                                            : "catching_up";
            rc |= s_pack_status(&pk, ordo_proj_name((ordo_proj_t)p), st->position, lag, state,
                                st->events_per_s, st->generation);
        }
        if (pg->enabled) { /* the PostgreSQL tables (--postgres), from the writer's figures */
            uint64_t pos = atomic_load_explicit(&pg->position, memory_order_relaxed);
            uint64_t lag = head > pos ? head - pos : 0;
            const char *state =
                !atomic_load_explicit(&pg->connected, memory_order_relaxed) ? "failed"
                : atomic_load_explicit(&pg->rebuilding, memory_order_relaxed) ? "rebuilding"
                : lag == 0                                                    ? "live"
                                                                              : "catching_up";
            rc |= s_pack_status(&pk, "postgres", pos, lag, state,
                                atomic_load_explicit(&pg->events_per_s, memory_order_relaxed),
                                (uint32_t)atomic_load_explicit(&pg->generation,
                                                               memory_order_relaxed));
        }
    }
    if (rc == 0) {
        s_send(f, job->peer, &job->envelope, sb.data, sb.size);
    } else {
        ordo_perror_t err;
        ordo_perror_set(&err, "unavailable", "out of memory");
        s_send_error(f, job->peer, &job->envelope, &job->q, &err);
    }
    msgpack_sbuffer_destroy(&sb);
}

/* A job came back from an actor: reply once every actor asked has answered. */
static void s_job_done(s_front_t *f, ordo_pjob_t *job)
{
    if (--job->pending > 0)
        return;
    if (job->reply && job->error_code) /* an error the actor made */
        ordo_pmetrics_error(f->metrics, job->error_code);
    /* Counted before the reply leaves: a client that then scrapes sees it. */
    ordo_buckets_observe(&f->metrics->query_ns, ordo_mono_ns() - job->read_ns);
    if (ordo_pq_projection(job->q.type) < 0 && job->q.type != ORDO_PQ_REBUILD) {
        s_send_joined(f, job);
    } else if (job->reply) {
        s_send(f, job->peer, &job->envelope, job->reply, job->reply_len);
    } else {
        ordo_perror_t err;
        ordo_perror_set(&err, "unavailable", "the answer could not be made (out of memory)");
        s_send_error(f, job->peer, &job->envelope, &job->q, &err);
    }
    s_unlink(f, job);
    s_free_job(f, job);
}

static void s_on_query(s_front_t *f)
{
    zmsg_t *msg = zmsg_recv(f->router);
    if (!msg)
        return;
    uint64_t read_ns = ordo_mono_ns();
    zframe_t *body = zmsg_last(msg);
    if (!body || zmsg_size(msg) < 2) { /* a ROUTER message always has the peer's id */
        zmsg_destroy(&msg);
        return;
    }
    zmsg_remove(msg, body);
    zframe_t *id = zmsg_first(msg); /* the ROUTER's routing id of the connection */
    void *peer = ordo_peers_acquire(f->peers, zframe_data(id), zframe_size(id));
    ordo_pjob_t *job = calloc(1, sizeof *job);
    ordo_perror_t err;
    int decoded = job ? ordo_pquery_decode(zframe_data(body), zframe_size(body), &job->q, &err) : -1;
    bool admitted = job && decoded == 0 && f->n_jobs < S_JOBS_MAX &&
                    (ordo_pquery_is_large(&job->q)
                         ? (job->big = ordo_peers_admit_big(f->peers, peer))
                         : !peer || ordo_peers_under_bytes(peer));
    if (job) /* by type; [0]: not decoded */
        atomic_fetch_add_explicit(
            &f->metrics->queries[decoded == 0 && (unsigned)job->q.type < ORDO_PQ_COUNT_ ? job->q.type
                                                                                      : 0],
            1, memory_order_relaxed);
    if (!admitted) /* answered at once, below; counted before the reply leaves */
        ordo_buckets_observe(&f->metrics->query_ns, ordo_mono_ns() - read_ns);
    if (!job) {
        ordo_perror_set(&err, "unavailable", "out of memory");
        s_send_error(f, peer, &msg, NULL, &err);
    } else if (decoded != 0) {
        s_send_error(f, peer, &msg, &job->q, &err);
    } else if (job->q.type == ORDO_PQ_REBUILD &&
               job->q.projection == ORDO_PQ_PROJECTION_POSTGRES) {
        if (admitted) /* (not counted above: answered here, not by an actor) */
            ordo_buckets_observe(&f->metrics->query_ns, ordo_mono_ns() - read_ns);
        s_rebuild_postgres(f, peer, &msg, &job->q);
    } else if (!admitted) {
        ordo_perror_set(&err, "overloaded",
                        "the projector holds as many queries, or as many bytes of replies not "
                        "yet read, as it allows%s; read the replies, then retry",
                        f->n_jobs >= S_JOBS_MAX ? "" : " for this connection");
        s_send_error(f, peer, &msg, &job->q, &err);
    } else {
        job->peer = peer;
        job->read_ns = read_ns;
        peer = NULL; /* the job holds it now */
        job->envelope = msg;
        msg = NULL;
        job->next = f->jobs;
        if (f->jobs)
            f->jobs->prev = job;
        f->jobs = job;
        f->n_jobs++;
        int p = job->q.type == ORDO_PQ_REBUILD ? job->q.projection
                                               : ordo_pq_projection(job->q.type);
        if (p >= 0) {
            job->pending = 1;
            zsock_send(f->actors[p], "sp", "JOB", job);
        } else {
            job->pending = ORDO_PROJ_COUNT_;
            for (int i = 0; i < ORDO_PROJ_COUNT_; i++)
                zsock_send(f->actors[i], "sp", "JOB", job);
        }
        job = NULL;
    }
    if (job && job->big)
        ordo_peers_big_done(f->peers, peer);
    free(job);
    if (peer)
        ordo_peers_release(f->peers, peer);
    zmsg_destroy(&msg);
    zframe_destroy(&body);
}

static void s_on_actor(s_front_t *f, zactor_t *actor)
{
    char *cmd = NULL;
    void *ptr = NULL;
    if (zsock_recv(actor, "sp", &cmd, &ptr) == 0 && cmd && streq(cmd, "DONE") && ptr)
        s_job_done(f, ptr);
    zstr_free(&cmd);
}

static int s_run(const ordo_pconfig_t *cfg, const ordo_connect_options_t *engine_opts,
                 ordo_auth_t **auth)
{
    s_front_t f = {0};
    ordo_pactor_config_t acfg[ORDO_PROJ_COUNT_];
    ordo_pmetrics_t metrics;
    ordo_pmetrics_init(&metrics);
    f.metrics = &metrics;
    ordo_conn_monitor_t *monitor = NULL;
    ordo_metrics_http_t *http = NULL;
    ordo_phub_t *hub = NULL;
    ordo_phttp_t *page = NULL;
    static const char page_queries[] = "inproc://ordo-projector-page";
    /* The threads started here (the connection counter, the metrics
     * server) leave the stop signals to the main thread. */
    sigset_t stop_signals, old_mask;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    int rc = 1;
    if (ordo_mkdir_p(cfg->data_dir) != 0) {
        ordo_log_error("projector", "cannot create the data folder %s: %s", cfg->data_dir,
                       strerror(errno));
        ordo_auth_destroy(auth);
        return 1;
    }
    f.router = zsock_new(ZMQ_ROUTER);
    f.peers = ordo_peers_new();
    if (!f.router || !f.peers)
        goto out;
    zsock_set_sndhwm(f.router, S_HWM);
    zsock_set_rcvhwm(f.router, S_HWM);
    zsock_set_maxmsgsize(f.router, S_MSG_MAX);
    zsock_set_linger(f.router, 1000);
    if (*auth && ordo_auth_guard(*auth, zsock_resolve(f.router)) != 0) {
        ordo_log_error("projector", "cannot set CURVE: %s", zmq_strerror(errno));
        goto out;
    }
    pthread_sigmask(SIG_BLOCK, &stop_signals, &old_mask);
    monitor = ordo_conn_monitor_start(zsys_init(), (void *[]){zsock_resolve(f.router)},
                                      metrics.connections, 1);
    pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
    if (zsock_bind(f.router, "%s", cfg->bind) < 0) {
        ordo_log_error("projector", "cannot bind %s: %s", cfg->bind, zmq_strerror(errno));
        goto out;
    }
    /* The live page asks as a client would, over inproc (no CURVE there:
     * it is this process). */
    if (cfg->http[0] && zsock_bind(f.router, "%s", page_queries) < 0) {
        ordo_log_error("projector", "cannot bind %s: %s", page_queries, zmq_strerror(errno));
        goto out;
    }
    for (int p = 0; p < ORDO_PROJ_COUNT_; p++) {
        acfg[p] = (ordo_pactor_config_t){.proj = (ordo_proj_t)p,
                                         .data_dir = cfg->data_dir,
                                         .engine = cfg->engine,
                                         .engine_pub = cfg->engine_pub,
                                         .engine_opts = engine_opts,
                                         .save_every = cfg->save_every,
                                         .save_ms = S_SAVE_MS,
                                         .cache_kib = S_CACHE_KIB,
                                         .metrics = &metrics};
        if (!(f.actors[p] = ordo_pactor_new(&acfg[p]))) {
            ordo_log_error("projector", "cannot start the %s actor",
                           ordo_proj_name((ordo_proj_t)p));
            goto out;
        }
    }
    ordo_pgsink_config_t pgcfg = {.conninfo = cfg->postgres,
                                  .schema = cfg->postgres_schema,
                                  .engine = cfg->engine,
                                  .engine_pub = cfg->engine_pub,
                                  .engine_opts = engine_opts,
                                  .batch_events = (size_t)cfg->postgres_batch,
                                  .flush_ms = 50,
                                  .metrics = &metrics.pg};
    if (cfg->postgres[0]) {
        metrics.pg.enabled = true;
        if (!(f.pgsink = ordo_pgsink_new(&pgcfg))) {
            ordo_log_error("projector", "cannot start the PostgreSQL writer");
            goto out;
        }
    }
    ordo_log_info("projector",
                  "queries on %s; following %s (events %s); data in %s; saving every %" PRIu64
                  " events",
                  cfg->bind, cfg->engine, cfg->engine_pub, cfg->data_dir, cfg->save_every);
    if (cfg->metrics[0]) {
        char err[512];
        pthread_sigmask(SIG_BLOCK, &stop_signals, &old_mask);
        http = ordo_metrics_http_start(cfg->metrics, ordo_pmetrics_render, &metrics, err,
                                       sizeof err);
        pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
        if (!http) {
            ordo_log_error("projector", "%s", err);
            goto out;
        }
        if (!ordo_hostport_is_local(cfg->metrics))
            ordo_log_warn("projector", "metrics on %s are readable by anyone who reaches it",
                          cfg->metrics);
        ordo_log_info("projector", "metrics on http://%s/metrics (port %u)", cfg->metrics,
                      (unsigned)ordo_metrics_http_port(http));
    }
    if (cfg->http[0]) {
        char err[512];
        pthread_sigmask(SIG_BLOCK, &stop_signals, &old_mask);
        hub = ordo_phub_start(cfg->engine, cfg->engine_pub, engine_opts);
        ordo_phttp_config_t pcfg = {.addr = cfg->http, .queries = page_queries,
                                    .zmq_ctx = zsys_init(), .hub = hub};
        page = hub ? ordo_phttp_start(&pcfg, err, sizeof err) : NULL;
        pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
        if (!page) {
            ordo_log_error("projector", "%s", hub ? err : "cannot start the event feed");
            goto out;
        }
        if (!ordo_hostport_is_local(cfg->http))
            ordo_log_warn("projector", "the live page on %s is readable by anyone who reaches it",
                          cfg->http);
        ordo_log_info("projector", "live page on http://%s/ (port %u)", cfg->http,
                      (unsigned)ordo_phttp_port(page));
    }
    int64_t swept = zclock_mono();
    while (!s_stop) {
        if (zclock_mono() - swept >= 1000) {
            ordo_peers_sweep(f.peers); /* entries of connections long gone */
            swept = zclock_mono();
        }
        zmq_pollitem_t items[1 + ORDO_PROJ_COUNT_] = {
            {zsock_resolve(f.router), 0, ZMQ_POLLIN, 0}};
        for (int p = 0; p < ORDO_PROJ_COUNT_; p++)
            items[1 + p] = (zmq_pollitem_t){zsock_resolve(f.actors[p]), 0, ZMQ_POLLIN, 0};
        if (zmq_poll(items, 1 + ORDO_PROJ_COUNT_, 500) < 0) {
            if (errno == EINTR)
                continue;
            ordo_log_error("projector", "poll: %s", zmq_strerror(errno));
            goto out;
        }
        for (int p = 0; p < ORDO_PROJ_COUNT_; p++)
            while (zsock_events(f.actors[p]) & ZMQ_POLLIN)
                s_on_actor(&f, f.actors[p]);
        for (int i = 0; i < 256 && (zsock_events(f.router) & ZMQ_POLLIN); i++)
            s_on_query(&f);
    }
    ordo_log_info("projector", "stopping: saving every projection");
    rc = 0;
out:
    ordo_phub_stop(hub);        /* open event streams end */
    ordo_phttp_stop(&page);     /* every page connection closes */
    ordo_phub_destroy(&hub);
    ordo_metrics_http_stop(&http);
    zactor_destroy(&f.pgsink); /* commits what it holds */
    for (int p = 0; p < ORDO_PROJ_COUNT_; p++)
        zactor_destroy(&f.actors[p]); /* each saves its model before it ends */
    while (f.jobs) {
        ordo_pjob_t *job = f.jobs;
        ordo_perror_t err;
        ordo_perror_set(&err, "unavailable", "the projector is shutting down");
        s_send_error(&f, job->peer, &job->envelope, &job->q, &err);
        s_unlink(&f, job);
        s_free_job(&f, job);
    }
    ordo_conn_monitor_stop(&monitor); /* before the socket it watches is closed */
    zsock_destroy(&f.router);
    ordo_auth_destroy(auth); /* after the socket it guards */
    zsys_shutdown(); /* czmq's context, which may still hold counted replies, before the table */
    ordo_peers_destroy(&f.peers);
    return rc;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"engine", required_argument, NULL, 0},   {"engine-pub", required_argument, NULL, 0},
        {"bind", required_argument, NULL, 0},     {"data-dir", required_argument, NULL, 0},
        {"save-every", required_argument, NULL, 0}, {"curve-server", required_argument, NULL, 0},
        {"curve-cert", required_argument, NULL, 0}, {"curve-secret", required_argument, NULL, 0},
        {"curve-clients", required_argument, NULL, 0}, {"insecure", no_argument, NULL, 'i'},
        {"metrics", required_argument, NULL, 0},  {"postgres", required_argument, NULL, 0},
        {"http", required_argument, NULL, 0},
        {"postgres-schema", required_argument, NULL, 0},
        {"postgres-batch", required_argument, NULL, 0},
        {"nats", required_argument, NULL, 0},
        {"partition", required_argument, NULL, 0},
        {"nats-durable", required_argument, NULL, 0},
        {"help", no_argument, NULL, 'h'},          {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    ordo_pconfig_t cfg;
    char err[640];
    ordo_pconfig_defaults(&cfg);
    if (ordo_pconfig_from_env(&cfg, err, sizeof err) != 0) {
        fprintf(stderr, "ordo-projector: %s\n", err);
        return 2;
    }
    int c, idx;
    while ((c = getopt_long(argc, argv, "", opts, &idx)) != -1) {
        if (c == 'h') {
            s_usage(stdout);
            return 0;
        }
        if (c == 'V') {
            printf("ordo-projector %s\n", ORDO_PROJECTOR_VERSION);
            return 0;
        }
        if (c == 'i') {
            cfg.insecure = true;
            continue;
        }
        if (c != 0) {
            fprintf(stderr, "ordo-projector: see --help for the options\n");
            return 2;
        }
        if (ordo_pconfig_set(&cfg, opts[idx].name, optarg, err, sizeof err) < 0) {
            fprintf(stderr, "ordo-projector: %s\n", err);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "ordo-projector: unexpected argument \"%s\"; see --help\n", argv[optind]);
        return 2;
    }
    if (ordo_pconfig_check(&cfg, err, sizeof err) != 0) {
        fprintf(stderr, "ordo-projector: %s\n", err);
        return 2;
    }
    ordo_curve_t engine_keys;
    ordo_connect_options_t engine_opts = {0};
    if (cfg.curve_server[0]) {
        if (ordo_curve_load(&engine_keys, cfg.curve_server, cfg.curve_cert, err, sizeof err) != 0) {
            fprintf(stderr, "ordo-projector: %s\n", err);
            return 2;
        }
        engine_opts.curve = &engine_keys;
    }
    /* czmq would install its own SIGINT/SIGTERM handlers: main owns signals. */
    zsys_handler_set(NULL);
    struct sigaction sa = {.sa_handler = s_on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    ordo_auth_t *auth = NULL;
    if (cfg.curve_secret[0] &&
        !(auth = ordo_auth_new(cfg.curve_secret, cfg.curve_clients, err, sizeof err))) {
        fprintf(stderr, "ordo-projector: %s\n", err);
        return 2;
    }
    if (auth)
        ordo_log_info("projector", "CURVE on %s: %zu client keys let in from %s", cfg.bind,
                      ordo_auth_clients(auth), cfg.curve_clients);
    /* --nats: the events come from the partition's stream, through a
     * gateway in this process that the followers reach as an engine. */
    ordo_pstream_t *stream = NULL;
    if (cfg.nats[0]) {
        ordo_pstream_config_t sc = {
            .servers = cfg.nats, .partition = cfg.partition, .durable = cfg.nats_durable};
        if (ordo_pstream_start(&sc, &stream, err, sizeof err) != 0) {
            fprintf(stderr, "ordo-projector: %s\n", err);
            ordo_auth_destroy(&auth);
            return 1;
        }
        snprintf(cfg.engine, sizeof cfg.engine, "%s", ordo_pstream_endpoint(stream));
        snprintf(cfg.engine_pub, sizeof cfg.engine_pub, "%s", ordo_pstream_pub_endpoint(stream));
    }
    int rc = s_run(&cfg, &engine_opts, &auth);
    ordo_pstream_stop(&stream);
    ordo_log_info("projector", "stopped");
    return rc;
}
