/* ordo-projbench: the read models' own speed, in-process, without the
 * engine or the network. It turns the realistic workload's commands into
 * the events the engine would publish (one every --spacing-us, a day's
 * 10M events by default), then feeds each read model on its own: first
 * apply() alone (what the models do per event in memory), then apply()
 * with flush() and a commit every --save-every events, and the query
 * indexes built at the end (what the projector does while catching up).
 * Figures are medians of --runs. */
#include "ordo.h"
#include "ordo_model.h"
#include "ordo_pgbatch.h"
#include "ordo_pgschema.h"
#include "ordo_pstore.h"
#include "ordo_workload.h"

#include <getopt.h>
#include <malloc.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct {
    ordo_client_event_t ev;
    char order_id[32];
    char reason[64];
    ordo_client_item_t items[4];
} s_event_t;

/* The workload's commands turned into events, one at a time. */
typedef struct {
    ordo_workload_t *w;
    int64_t t;
    int64_t spacing_us;
    uint64_t position;
    ordo_request_t req;
} s_gen_t;

static void s_gen_init(s_gen_t *g, int64_t spacing_us)
{
    memset(g, 0, sizeof *g);
    g->w = ordo_workload_new(42, 50000);
    if (!g->w) {
        fprintf(stderr, "ordo-projbench: out of memory\n");
        exit(1);
    }
    g->t = 1796400000000000; /* 2026-12-04 */
    g->spacing_us = spacing_us;
}

/* The next event into *e (its views point into *e). False at the end. */
static bool s_gen_next(s_gen_t *g, s_event_t *e)
{
    const ordo_request_t *req = &g->req;
    if (!ordo_workload_next(g->w, &g->req))
        return false;
    memset(e, 0, sizeof *e);
    ordo_client_event_t *ev = &e->ev;
    memcpy(e->order_id, req->order_id.ptr, req->order_id.len);
    ev->order_id = e->order_id;
    ev->position = ++g->position;
    ev->version = (uint32_t)req->expected_version + 1;
    ev->timestamp_us = g->t;
    g->t += g->spacing_us;
    ev->schema = 1;
    ev->type = ordo_event_type_name(ordo_event_type_for(req->type));
    const ordo_data_t *d = &req->data;
    if (req->type == ORDO_REQ_CREATE_ORDER) {
        ev->user_id = d->user_id;
        ev->restaurant_id = d->restaurant_id;
        ev->n_items = d->n_items;
        for (uint32_t k = 0; k < d->n_items && k < 4; k++) {
            e->items[k].qty = d->items[k].qty;
            e->items[k].price_cents = d->items[k].price_cents;
            ev->total_cents += d->items[k].qty * d->items[k].price_cents;
        }
        for (uint32_t k = 0; k < d->n_items && k < 4; k++) {
            e->items[k].sku = "sku-1";
            e->items[k].name = "Margherita";
        }
        ev->items = e->items;
        ev->delivery_address = "12 Baker Street";
        ev->currency = "USD";
    } else if (req->type == ORDO_REQ_PICK_UP) {
        ev->has_courier_id = (d->present & ORDO_F_COURIER_ID) != 0;
        ev->courier_id = d->courier_id;
    } else if (req->type == ORDO_REQ_CANCEL_ORDER) {
        snprintf(e->reason, sizeof e->reason, "%.*s", (int)d->reason.len, d->reason.ptr);
        ev->reason = e->reason;
        ev->previous_status = ordo_status_name((ordo_status_t)req->expected_version);
    }
    return true;
}

/* The events of `n` workload commands, as ordo_sub would hand them out. */
static s_event_t *s_make_events(size_t n, int64_t spacing_us)
{
    s_event_t *evs = calloc(n, sizeof *evs);
    if (!evs) {
        fprintf(stderr, "ordo-projbench: out of memory\n");
        exit(1);
    }
    s_gen_t g;
    s_gen_init(&g, spacing_us);
    for (size_t i = 0; i < n && s_gen_next(&g, &evs[i]); i++)
        ;
    ordo_workload_destroy(&g.w);
    return evs;
}

static long s_rss_kib(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, rss = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
            rss = 0;
        fclose(f);
    }
    return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

/* Every read model, each in its own database under dir, as the projector
 * keeps them: opened in a write transaction, saved together, closed. */
typedef struct {
    const ordo_model_ops_t *ops[ORDO_PROJ_COUNT_];
    sqlite3 *db[ORDO_PROJ_COUNT_];
    void *m[ORDO_PROJ_COUNT_];
} s_all_t;

/* Fresh databases `<dir>/<name>.<tag>.db`. 0 or -1. */
static int s_all_open(s_all_t *a, const char *dir, const char *tag)
{
    memset(a, 0, sizeof *a);
    for (int p = 0; p < ORDO_PROJ_COUNT_; p++) {
        char path[512];
        a->ops[p] = ordo_model_for((ordo_proj_t)p);
        snprintf(path, sizeof path, "%s/%s.%s.db", dir, a->ops[p]->name, tag);
        ordo_pstore_remove(path);
        if (!(a->db[p] = ordo_pstore_open(path, 32768)) || ordo_pstore_begin(a->db[p]) != 0 ||
            !(a->m[p] = a->ops[p]->open(a->db[p])) ||
            ordo_model_build_indexes(a->ops[p], a->db[p]) != 0)
            return -1;
    }
    return 0;
}

static int s_all_apply(s_all_t *a, const ordo_client_event_t *ev)
{
    for (int p = 0; p < ORDO_PROJ_COUNT_; p++)
        if (a->ops[p]->apply(a->m[p], ev) != 0)
            return -1;
    return 0;
}

/* Flush and commit every model, and open the next transaction. */
static int s_all_save(s_all_t *a)
{
    for (int p = 0; p < ORDO_PROJ_COUNT_; p++)
        if (a->ops[p]->flush(a->m[p]) != 0 || ordo_pstore_commit(a->db[p]) != 0 ||
            ordo_pstore_begin(a->db[p]) != 0)
            return -1;
    return 0;
}

static void s_all_close(s_all_t *a)
{
    for (int p = 0; p < ORDO_PROJ_COUNT_; p++) {
        if (a->m[p])
            a->ops[p]->close(&a->m[p]);
        if (a->db[p])
            ordo_pstore_rollback(a->db[p]);
        ordo_pstore_close(&a->db[p]);
    }
}

/* --memory N: RSS per order in progress and per finished order, every
 * model together: N orders created (all in progress, in memory), then
 * every one of them driven to Delivered (finished: on disk only). */
static int s_memory(size_t n, const char *dir, bool json)
{
    s_all_t all;
    if (s_all_open(&all, dir, "mem") != 0)
        return 1;
    static const char *const steps[] = {"OrderCreated",   "OrderConfirmed",      "OrderPreparing",
                                        "OrderReady",     "OrderOutForDelivery", "OrderDelivered"};
    long rss[7] = {0};
    size_t heap[7] = {0}; /* bytes malloc has handed out and not had back */
    uint64_t pos = 0;
    int64_t t = 1796400000000000;
    ordo_client_item_t item = {"sku-1", "Margherita", 2, 1250};
    /* the SQLite caches fill first (a warm-up of 100,000 orders' lives), so
     * what follows measures the models' own memory */
    for (int phase = 0; phase < 2; phase++) {
        size_t count = phase == 0 ? 100000 : n;
        for (int step = 0; step < 6; step++) {
            for (size_t i = 0; i < count; i++) {
                char id[32];
                snprintf(id, sizeof id, "ord_%d_%012zu", phase, i);
                ordo_client_event_t ev = {.position = ++pos, .order_id = id,
                                          .version = (uint32_t)step + 1, .type = steps[step],
                                          .timestamp_us = t += 100, .schema = 1,
                                          .user_id = (int64_t)(i % 100000),
                                          .restaurant_id = (int64_t)(i % 1000),
                                          .total_cents = 2500, .items = &item, .n_items = 1};
                if (s_all_apply(&all, &ev) != 0)
                    return 1;
            }
            if (s_all_save(&all) != 0)
                return 1;
            if (phase == 1) {
                rss[step + 1] = s_rss_kib();
                heap[step + 1] = mallinfo2().uordblks;
            }
        }
        if (phase == 0) {
            rss[0] = s_rss_kib();
            heap[0] = mallinfo2().uordblks;
        }
    }
    /* [0]: warm, nothing in progress; [1]: n orders in progress (created);
     * [6]: the same n finished. Per order from the heap in use (RSS keeps
     * what malloc has been given back but not returned to the system). */
    double active = ((double)heap[1] - (double)heap[0]) / (double)n;
    double finished = ((double)heap[6] - (double)heap[0]) / (double)n;
    if (json)
        printf("{\"orders\":%zu,\"rss_warm_kib\":%ld,\"rss_in_progress_kib\":%ld,"
               "\"rss_finished_kib\":%ld,\"bytes_per_order_in_progress\":%.0f,"
               "\"bytes_per_finished_order\":%.0f}\n",
               n, rss[0], rss[1], rss[6], active, finished);
    else
        printf("heap in use: warm %zu MiB; %zu orders in progress %zu MiB (%.0f bytes each, all "
               "five models); the same finished %zu MiB (%.0f bytes each)\nRSS: %ld, %ld, %ld MiB\n",
               heap[0] >> 20, n, heap[1] >> 20, active, heap[6] >> 20, finished, rss[0] / 1024,
               rss[1] / 1024, rss[6] / 1024);
    s_all_close(&all);
    return 0;
}

/* --days: every model on one stream of `days` x `per_day` events, saving
 * every save_every, as the projector does; RSS at the end of each day. */
static int s_days(int days, size_t per_day, int64_t spacing_us, uint64_t save_every,
                  const char *dir, bool json)
{
    s_all_t all;
    if (s_all_open(&all, dir, "days") != 0)
        return 1;
    s_gen_t g;
    s_gen_init(&g, spacing_us);
    s_event_t e;
    long rss[64] = {0};
    long start = s_rss_kib();
    double t0 = s_now();
    for (int d = 0; d < days && d < 64; d++) {
        for (size_t i = 0; i < per_day; i++) {
            if (!s_gen_next(&g, &e))
                return 1;
            if (s_all_apply(&all, &e.ev) != 0 ||
                (g.position % save_every == 0 && s_all_save(&all) != 0))
                return 1;
            if (g.position % 1000000 == 0)
                fprintf(stderr, "ordo-projbench: day %d, %" PRIu64 " events, %.0f events/s, "
                        "RSS %ld MiB\n", d + 1, g.position, (double)g.position / (s_now() - t0),
                        s_rss_kib() / 1024);
        }
        rss[d] = s_rss_kib();
    }
    double dt = s_now() - t0;
    if (json) {
        printf("{\"days\":%d,\"events_per_day\":%zu,\"events_per_s\":%.0f,\"rss_start_kib\":%ld,"
               "\"rss_kib\":[", days, per_day, (double)g.position / dt, start);
        for (int d = 0; d < days; d++)
            printf("%s%ld", d ? "," : "", rss[d]);
        printf("]}\n");
    } else {
        printf("%d days of %zu events, all five models, %.0f events/s\n", days, per_day,
               (double)g.position / dt);
        printf("RSS at start %ld MiB\n", start / 1024);
        for (int d = 0; d < days; d++)
            printf("RSS after day %d: %ld MiB (%+.1f%% on day 1)\n", d + 1, rss[d] / 1024,
                   100.0 * (double)(rss[d] - rss[0]) / (double)rss[0]);
    }
    s_all_close(&all);
    ordo_workload_destroy(&g.w);
    return 0;
}

static int s_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* One run of one model: seconds spent, or < 0 on failure. Saving, the
 * model's query indexes are built after the last event, inside the time,
 * as a generation catching up from position 1 does; with indexes_first
 * they are there from the start, as in a generation that answers queries. */
static double s_run(const ordo_model_ops_t *ops, const s_event_t *evs, size_t n, bool save,
                    uint64_t save_every, bool indexes_first, int cache_kib, const char *dir)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s.bench.db", dir, ops->name);
    ordo_pstore_remove(path);
    sqlite3 *db = ordo_pstore_open(path, cache_kib);
    if (!db || ordo_pstore_begin(db) != 0)
        return -1;
    void *m = ops->open(db);
    if (!m || (indexes_first && ordo_model_build_indexes(ops, db) != 0))
        return -1;
    double t0 = s_now();
    for (size_t i = 0; i < n; i++) {
        if (ops->apply(m, &evs[i].ev) != 0)
            return -1;
        if (save && (i + 1) % save_every == 0) {
            if (ops->flush(m) != 0 || ordo_pstore_meta_set(db, "checkpoint", (int64_t)i + 1) ||
                ordo_pstore_commit(db) != 0 || ordo_pstore_begin(db) != 0)
                return -1;
        }
    }
    if (save && (ops->flush(m) != 0 || ordo_model_build_indexes(ops, db) != 0 ||
                 ordo_pstore_commit(db) != 0))
        return -1;
    double dt = s_now() - t0;
    if (!save)
        ordo_pstore_rollback(db);
    ops->close(&m);
    ordo_pstore_close(&db);
    ordo_pstore_remove(path);
    return dt;
}

/* The PostgreSQL writer's part, in-process: the events in batches of
 * `batch`, each one transaction (ordo_pgbatch.h), into a fresh schema
 * "ordo_bench". Seconds spent, or < 0 on failure. */
static double s_run_pg(const char *conninfo, const s_event_t *evs, size_t n, size_t batch,
                       bool indexes_first)
{
    PGconn *c = PQconnectdb(conninfo);
    char err[1024];
    int applied;
    double dt = -1;
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "ordo-projbench: PostgreSQL: %s", PQerrorMessage(c));
        PQfinish(c);
        return -1;
    }
    ordo_pgbatch_t b;
    ordo_pgbatch_init(&b);
    if (ordo_pg_exec(c, "DROP SCHEMA IF EXISTS ordo_bench CASCADE", err, sizeof err) != 0 ||
        ordo_pg_migrate(c, "ordo_bench", &applied, err, sizeof err) != 0 ||
        ordo_pgbatch_prepare(c, err, sizeof err) != 0 ||
        (indexes_first && ordo_pg_build_indexes(c, "ordo_bench", err, sizeof err) != 0))
        goto out;
    double t0 = s_now(), applying = 0, clearing = 0;
    for (size_t i = 0; i < n; i++) {
        if (ordo_pgbatch_add(&b, &evs[i].ev) != 0) {
            snprintf(err, sizeof err, "out of memory");
            goto out;
        }
        if (b.n == batch || i + 1 == n) {
            double ta = s_now();
            if (ordo_pgbatch_apply(c, "ordo_bench", &b, err, sizeof err) != 0)
                goto out;
            double tc = s_now();
            ordo_pgbatch_clear(&b);
            applying += tc - ta;
            clearing += s_now() - tc;
        }
    }
    double t1 = s_now();
    fprintf(stderr, "ordo-projbench: postgres: %.1f s adding events, %.1f s applying, %.1f s"
            " clearing\n", t1 - t0 - applying - clearing, applying, clearing);
    if (ordo_pg_build_indexes(c, "ordo_bench", err, sizeof err) != 0)
        goto out;
    dt = s_now() - t0;
    fprintf(stderr, "ordo-projbench: postgres: %.1f s of batches, %.1f s of query indexes\n",
            t1 - t0, s_now() - t1);
out:
    if (dt < 0)
        fprintf(stderr, "ordo-projbench: PostgreSQL: %s\n", err);
    ordo_pgbatch_free(&b);
    PQfinish(c);
    return dt;
}

static void s_usage(FILE *out)
{
    fprintf(out,
            "Usage: ordo-projbench [OPTIONS]\n"
            "Speed of each read model of ordo-projector, in-process: apply() alone, then\n"
            "apply + flush + commit every --save-every events, on the realistic workload.\n"
            "  --events N        events (default 1000000)\n"
            "  --spacing-us US   time between events (default 8640: 10M events a day)\n"
            "  --save-every N    events between commits (default 500000)\n"
            "  --indexes-first   the query indexes exist from the start (a generation that\n"
            "                    answers queries, as once live), not built after the last\n"
            "                    event (a generation catching up from position 1)\n"
            "  --runs N          runs, medians reported (default 3)\n"
            "  --cache-kib N     SQLite page cache per model (default 32768, the\n"
            "                    projector's); a small one models tables far larger than\n"
            "                    their cache, as after days of live operation\n"
            "  --only NAME       one model (summary, restaurant, user, analytics, timeline,\n"
            "                    postgres)\n"
            "  --postgres CONNINFO  also the PostgreSQL read models (ordo-projector\n"
            "                    --postgres), in a schema ordo_bench made afresh each run\n"
            "  --postgres-batch N   events per transaction (default 500000)\n"
            "  --dir DIR         where the databases go (default /tmp)\n"
            "  --memory N        instead: RSS per order in progress and per finished order\n"
            "                    (N orders created, then finished; every model)\n"
            "  --days D          instead: every model on one stream of D days of --events\n"
            "                    events each, saving as the projector does; RSS each day\n"
            "  --json            one JSON object on stdout\n"
            "  --help\n");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"events", required_argument, NULL, 'n'}, {"spacing-us", required_argument, NULL, 's'},
        {"save-every", required_argument, NULL, 'e'}, {"runs", required_argument, NULL, 'r'},
        {"only", required_argument, NULL, 'o'},   {"dir", required_argument, NULL, 'd'},
        {"json", no_argument, NULL, 'j'},         {"help", no_argument, NULL, 'h'},
        {"days", required_argument, NULL, 'D'},   {"memory", required_argument, NULL, 'M'},
        {"indexes-first", no_argument, NULL, 'I'}, {"cache-kib", required_argument, NULL, 'c'},
        {"postgres", required_argument, NULL, 'P'}, {"postgres-batch", required_argument, NULL, 'B'},
        {NULL, 0, NULL, 0},
    };
    size_t n = 1000000;
    int64_t spacing = 8640;
    uint64_t save_every = 500000;
    int runs = 3;
    const char *only = NULL, *dir = "/tmp", *postgres = NULL;
    size_t pg_batch = 500000;
    bool json = false, indexes_first = false;
    int c, days = 0, cache_kib = 32768;
    size_t memory = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'n': n = strtoull(optarg, NULL, 10); break;
        case 's': spacing = strtoll(optarg, NULL, 10); break;
        case 'e': save_every = strtoull(optarg, NULL, 10); break;
        case 'r': runs = atoi(optarg); break;
        case 'o': only = optarg; break;
        case 'd': dir = optarg; break;
        case 'j': json = true; break;
        case 'D': days = atoi(optarg); break;
        case 'M': memory = strtoull(optarg, NULL, 10); break;
        case 'I': indexes_first = true; break;
        case 'c': cache_kib = atoi(optarg); break;
        case 'P': postgres = optarg; break;
        case 'B': pg_batch = strtoull(optarg, NULL, 10); break;
        case 'h': s_usage(stdout); return 0;
        default: s_usage(stderr); return 2;
        }
    }
    if (n < 1 || save_every < 1 || runs < 1 || runs > 31 || spacing < 0 || cache_kib < 64 ||
        pg_batch < 1) {
        fprintf(stderr, "ordo-projbench: --events, --save-every and --runs (1..31) must be >= 1,"
                        " --cache-kib >= 64\n");
        return 2;
    }
    if (memory > 0)
        return s_memory(memory, dir, json);
    if (days > 0)
        return s_days(days > 64 ? 64 : days, n, spacing, save_every, dir, json);
    fprintf(stderr, "ordo-projbench: making %zu events...\n", n);
    s_event_t *evs = s_make_events(n, spacing);
    double sum_apply = 0, sum_save = 0;
    if (json)
        printf("{\"events\":%zu,\"save_every\":%" PRIu64 ",\"indexes_first\":%s,\"models\":{", n,
               save_every, indexes_first ? "true" : "false");
    else
        printf("%-11s %16s %22s\n", "model", "apply events/s", "apply+save events/s");
    bool first = true;
    for (int p = 0; p < ORDO_PROJ_COUNT_; p++) {
        const ordo_model_ops_t *ops = ordo_model_for((ordo_proj_t)p);
        if (only && strcmp(only, ops->name) != 0)
            continue;
        double ta[31], ts[31];
        for (int r = 0; r < runs; r++) {
            fprintf(stderr, "ordo-projbench: %s run %d/%d\n", ops->name, r + 1, runs);
            ta[r] = s_run(ops, evs, n, false, save_every, indexes_first, cache_kib, dir);
            ts[r] = s_run(ops, evs, n, true, save_every, indexes_first, cache_kib, dir);
            if (ta[r] < 0 || ts[r] < 0) {
                fprintf(stderr, "ordo-projbench: %s failed (see the log above)\n", ops->name);
                return 1;
            }
        }
        qsort(ta, (size_t)runs, sizeof ta[0], s_cmp);
        qsort(ts, (size_t)runs, sizeof ts[0], s_cmp);
        double a = ta[runs / 2], s = ts[runs / 2];
        sum_apply += a;
        sum_save += s;
        if (json)
            printf("%s\"%s\":{\"apply_per_s\":%.0f,\"apply_save_per_s\":%.0f}", first ? "" : ",",
                   ops->name, (double)n / a, (double)n / s);
        else
            printf("%-11s %16.0f %22.0f\n", ops->name, (double)n / a, (double)n / s);
        first = false;
    }
    double pg = 0;
    if (postgres && (!only || !strcmp(only, "postgres"))) {
        double tp[31];
        for (int r = 0; r < runs; r++) {
            fprintf(stderr, "ordo-projbench: postgres run %d/%d\n", r + 1, runs);
            if ((tp[r] = s_run_pg(postgres, evs, n, pg_batch, indexes_first)) < 0)
                return 1;
        }
        qsort(tp, (size_t)runs, sizeof tp[0], s_cmp);
        pg = tp[runs / 2];
    }
    if (json) {
        printf("},\"all_apply_per_s\":%.0f,\"all_apply_save_per_s\":%.0f",
               sum_apply > 0 ? (double)n / sum_apply : 0, sum_save > 0 ? (double)n / sum_save : 0);
        if (pg > 0)
            printf(",\"postgres_per_s\":%.0f,\"postgres_batch\":%zu", (double)n / pg, pg_batch);
        printf("}\n");
    } else {
        if (sum_apply > 0)
            printf("%-11s %16.0f %22.0f   (every model in turn, one core)\n", "all",
                   (double)n / sum_apply, (double)n / sum_save);
        if (pg > 0)
            printf("%-11s %16s %22.0f   (PostgreSQL, %zu events per transaction)\n", "postgres",
                   "-", (double)n / pg, pg_batch);
    }
    free(evs);
    return 0;
}
