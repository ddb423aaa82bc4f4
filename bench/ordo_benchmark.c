/* ordo-benchmark: the load generator. Drives the realistic workload
 * (bench/ordo_workload.h: orders through whole lives) into a running
 * engine, one it spawns, or a canned-reply stub, over TCP, and reports
 * events/s, latency percentiles (HDR-style histogram) and the engine's
 * fsyncs and events per fsync, as medians of runs. By default each run
 * drives the stub first (the generator's own ceiling on this machine),
 * then the engine. The client side is raw libzmq DEALER sockets and the
 * proto codec (not libordo): one thread polls every socket, encodes with
 * ordo_request_pack and reads replies with the ordo_mp pull reader.
 * Invariants: at most --window requests in flight per connection, and
 * never two commands of one order in flight at once (the next command of
 * a busy order waits, parked, for the previous reply). */
#include "ordo_cert.h"
#include "ordo_clock.h"
#include "ordo_codec.h"
#include "ordo_hash.h"
#include "ordo_histogram.h"
#include "ordo_stub.h"
#include "ordo_workload.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define VERSION "0.1.0"
#define MAX_RUNS 31
#define MAX_SERVER_ARGS 16
#define KEY_MAX 64              /* request and order ids the workload makes are shorter */
#define RECV_BURST 4096         /* replies read from one socket before the next */
#define DRAIN_NS 10000000000ull /* how long replies are awaited after a run */
#define READY_NS 15000000000ull /* how long a server has to answer its first Ping */
#define SEC 1000000000ull

static volatile sig_atomic_t s_interrupted;

static void s_on_signal(int sig)
{
    (void)sig;
    s_interrupted = 1;
}

typedef struct {
    const char *server; /* endpoint of a running engine */
    const char *spawn;  /* path of ordo-server to start, or NULL */
    const char *fsync;
    const char *dir; /* parent of the spawned server's temp folder */
    const char *server_args[MAX_SERVER_ARGS];
    int n_server_args;
    long connections, window;
    double duration, warmup, rate, tick_us;
    long runs;
    long in_flight_orders;
    long long orders; /* 0: no limit */
    long days;        /* --days: simulated days (0: the usual runs) */
    double day_events;
    unsigned long long seed;
    bool seed_given, uuid4, json, keep, stub_only, engine_only;
    const char *curve_server, *curve_cert; /* CURVE towards the engine */
    bool curve;
    uint8_t curve_server_key[ORDO_CURVE_KEY_SIZE];
    ordo_keypair_t curve_client;
} s_opts_t;

/* The figures of one run against one target. */
typedef struct {
    double seconds;                      /* measured part */
    double events_per_s;                 /* successful commands (one event each) per second */
    double requests_per_s;               /* replies per second, errors included */
    uint64_t events, errors, duplicates; /* in the measured part */
    double p50_us, p99_us, p999_us, max_us, mean_us;
    bool has_stats; /* the engine's Stats before and after */
    double fsyncs, frames, appended, events_per_fsync, fsyncs_per_s;
    double server_cpu_us;     /* per event, whole server process (spawned only; < 0 unknown) */
    double server_rss_mb;     /* at the end (spawned only) */
    double server_front_busy; /* share of the measured time its front-end thread ran */
    double gen_busy;          /* share of the measured time the generator's thread ran */
    double gen_cpu_us;        /* per event: the generator's thread */
    double proc_cpu_us;       /* per event: this process (generator + its I/O thread [+ stub]) */
    double stub_cpu_us;       /* per event: the stub's thread (stub only) */
    char first_error[300];
} s_result_t;

/* A command that waits for the reply to its order's previous one. */
typedef struct s_parked {
    struct s_parked *next;
    uint8_t rid_len, oid_len;
    char rid[KEY_MAX];
    char oid[KEY_MAX];
    size_t len;
    char bytes[]; /* the encoded request */
} s_parked_t;

/* A slot of the two tables: requests in flight, keyed by request id (with
 * their order id and send time), and busy orders, keyed by order id (with
 * the commands parked behind the one in flight). */
typedef struct {
    uint64_t h; /* 0: free */
    uint8_t klen, olen;
    char key[KEY_MAX];
    char oid[KEY_MAX];
    uint64_t t0;
    s_parked_t *head, *tail;
} s_slot_t;

typedef struct {
    s_slot_t *slots; /* owned */
    uint32_t mask, count;
    uint64_t seed;
} s_table_t;

typedef struct {
    void *sock;
    long in_flight;
    bool dirty; /* sent on, or replies left unread: read before waiting */
} s_conn_t;

typedef struct {
    int64_t fsyncs, frames, appended;
    bool have;
} s_stats_t;

typedef enum { PHASE_WARMUP, PHASE_MEASURE, PHASE_DRAIN } s_phase_t;

typedef struct {
    const s_opts_t *o;
    const char *label; /* "stub" or "engine" */
    int run;
    pid_t server_pid; /* spawned engine, or 0 */
    const ordo_stub_t *stub;
    void *ctx;
    s_conn_t *conns;    /* owned, o->connections */
    void *control;      /* Stats requests */
    struct pollfd *fds; /* owned: conns then control */
    ordo_workload_t *work;
    ordo_request_t *req;
    msgpack_sbuffer buf;
    msgpack_packer pk;
    s_table_t flights, busy;
    s_parked_t *ready, *ready_tail; /* parked commands whose order is free again */
    uint64_t parked, park_max;
    bool exhausted;
    long rr;       /* next connection to send on */
    uint64_t sent; /* requests sent (rate mode: the schedule's index) */
    uint64_t t_start, t_warm, t_end, t_stop;
    double period_ns;   /* rate mode: ns between sends; 0: as fast as possible */
    uint64_t tick_ns;   /* rate mode: least time between wake-ups to send */
    uint64_t next_fill; /* rate mode: no sending before this time */
    s_phase_t phase;
    bool more, control_dirty; /* see s_receive() */
    ordo_histogram_t *hist;
    uint64_t events, errors, duplicates, replies, stray, tick_replies, tick_max;
    uint64_t gen_cpu0, proc_cpu0, stub_cpu0, server_cpu0, server_front_cpu0;
    s_stats_t stats[2];
    int stats_pending;
    char first_error[300];
    s_result_t *res;
} s_bench_t;

/* ---- small helpers ------------------------------------------------------- */

static uint64_t s_cpu_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * SEC + (uint64_t)ts.tv_nsec;
}

/* utime + stime of a process, or of its thread named `thread` (NULL: the
 * whole process), in ns (from /proc, 10 ms ticks); 0 if unknown. */
static uint64_t s_proc_cpu_ns(pid_t pid, const char *thread)
{
    char path[400], line[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    if (thread) { /* the task whose comm is `thread` */
        char dir[64];
        snprintf(dir, sizeof dir, "/proc/%d/task", (int)pid);
        DIR *d = opendir(dir);
        struct dirent *de;
        bool found = false;
        while (d && !found && (de = readdir(d)) != NULL) {
            char comm[64] = "";
            snprintf(path, sizeof path, "%s/%s/comm", dir, de->d_name);
            FILE *c = fopen(path, "r");
            if (c && fgets(comm, sizeof comm, c)) {
                comm[strcspn(comm, "\n")] = '\0';
                found = strcmp(comm, thread) == 0;
            }
            if (c)
                fclose(c);
            if (found)
                snprintf(path, sizeof path, "%s/%s/stat", dir, de->d_name);
        }
        if (d)
            closedir(d);
        if (!found)
            return 0;
    }
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(line, 1, sizeof line - 1, f);
    fclose(f);
    line[n] = '\0';
    char *p = strrchr(line, ')');
    unsigned long long ut = 0, st = 0;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return 0;
    return (ut + st) * (SEC / (uint64_t)sysconf(_SC_CLK_TCK));
}

/* A line of /proc/PID/status in MiB ("VmRSS", "RssAnon", "RssFile"), or -1. */
static double s_proc_status_mb(pid_t pid, const char *name)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    double mb = -1;
    long kb;
    size_t n = strlen(name);
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, name, n) && line[n] == ':' && sscanf(line + n + 1, "%ld", &kb) == 1)
            mb = kb / 1024.0;
    if (f)
        fclose(f);
    return mb;
}

static double s_proc_rss_mb(pid_t pid)
{
    return s_proc_status_mb(pid, "VmRSS");
}

/* "1,234,567" (rotating static buffers: up to 8 in one printf). */
static const char *s_num(double v)
{
    static char bufs[8][32];
    static int next;
    char *out = bufs[next++ % 8], raw[32];
    snprintf(raw, sizeof raw, "%.0f", v < 0 ? -v : v);
    size_t n = strlen(raw), k = 0;
    if (v < 0)
        out[k++] = '-';
    for (size_t i = 0; i < n; i++) {
        if (i && (n - i) % 3 == 0)
            out[k++] = ',';
        out[k++] = raw[i];
    }
    out[k] = '\0';
    return out;
}

static int s_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double s_median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, s_cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* ---- the two tables (open addressing, linear probing) -------------------- */

static int s_table_init(s_table_t *t, uint64_t min_slots)
{
    uint32_t n = 64;
    while (n < 2 * min_slots)
        n *= 2;
    t->slots = calloc(n, sizeof *t->slots);
    t->mask = n - 1;
    t->count = 0;
    t->seed = ordo_process_seed();
    return t->slots ? 0 : -1;
}

static uint64_t s_hash(const s_table_t *t, const char *key, uint32_t len)
{
    uint64_t h = ordo_hash64(key, len, t->seed);
    return h ? h : 1;
}

/* The slot holding `key`, or NULL. */
static s_slot_t *s_table_find(s_table_t *t, const char *key, uint32_t len)
{
    uint64_t h = s_hash(t, key, len);
    for (uint32_t i = (uint32_t)h & t->mask;; i = (i + 1) & t->mask) {
        s_slot_t *s = &t->slots[i];
        if (!s->h)
            return NULL;
        if (s->h == h && s->klen == len && memcmp(s->key, key, len) == 0)
            return s;
    }
}

/* A new slot for `key` (not present; the table never fills: it is sized
 * for twice what can be in it). */
static s_slot_t *s_table_add(s_table_t *t, const char *key, uint32_t len)
{
    uint64_t h = s_hash(t, key, len);
    uint32_t i = (uint32_t)h & t->mask;
    while (t->slots[i].h)
        i = (i + 1) & t->mask;
    s_slot_t *s = &t->slots[i];
    s->h = h;
    s->klen = (uint8_t)len;
    memcpy(s->key, key, len);
    s->head = s->tail = NULL;
    t->count++;
    return s;
}

/* Frees a slot, shifting later slots of its probe run back into place. */
static void s_table_remove(s_table_t *t, s_slot_t *s)
{
    uint32_t i = (uint32_t)(s - t->slots), j = i;
    for (;;) {
        j = (j + 1) & t->mask;
        if (!t->slots[j].h)
            break;
        uint32_t home = (uint32_t)t->slots[j].h & t->mask;
        /* slot j may move to i unless its home lies cyclically in (i, j] */
        bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!stays) {
            t->slots[i] = t->slots[j];
            i = j;
        }
    }
    t->slots[i].h = 0;
    t->count--;
}

/* ---- requests and replies ------------------------------------------------ */

/* Reads `ok`, `request_id` and (on success) `duplicate` of a reply: the
 * engine puts them first, so the event after them is never read. False
 * if the bytes are not a map holding `ok` and `request_id`. */
static bool s_reply_head(const void *data, size_t len, bool *ok, bool *dup, const char **rid,
                         uint32_t *rid_len)
{
    ordo_mp_t r;
    uint32_t n;
    bool have_ok = false, have_rid = false, have_dup = false;
    *dup = false;
    ordo_mp_init(&r, data, len);
    if (!ordo_mp_read_map(&r, &n))
        return false;
    for (uint32_t i = 0; i < n && !(have_ok && have_rid && (have_dup || !*ok)); i++) {
        const char *k;
        uint32_t kl;
        if (!ordo_mp_read_str(&r, &k, &kl))
            return false;
        if (ORDO_MP_KEY_IS(k, kl, "ok")) {
            if (!(have_ok = ordo_mp_read_bool(&r, ok)))
                return false;
        } else if (ORDO_MP_KEY_IS(k, kl, "request_id")) {
            if (!(have_rid = ordo_mp_read_str(&r, rid, rid_len)))
                return false;
        } else if (ORDO_MP_KEY_IS(k, kl, "duplicate")) {
            if (!(have_dup = ordo_mp_read_bool(&r, dup)))
                return false;
        } else if (!ordo_mp_skip(&r)) {
            return false;
        }
    }
    return have_ok && have_rid;
}

/* Encodes a query with no fields but its type and request id into b->buf. */
static void s_pack_query(s_bench_t *b, ordo_request_type_t type, const char *rid)
{
    ordo_request_t q;
    ordo_request_init(&q);
    q.type = type;
    q.request_id = (ordo_str_t){rid, (uint32_t)strlen(rid)};
    msgpack_sbuffer_clear(&b->buf);
    ordo_request_pack(&b->pk, &q);
}

/* Sends a Stats request on the control socket: slot 0 before, 1 after. */
static void s_ask_stats(s_bench_t *b, int which)
{
    if (b->stub)
        return; /* the stub has no Stats */
    s_pack_query(b, ORDO_REQ_STATS, which ? "stats-after" : "stats-before");
    if (zmq_send(b->control, b->buf.data, b->buf.size, ZMQ_DONTWAIT) >= 0)
        b->stats_pending++;
    b->control_dirty = true;
}

/* The values of `names[i]` in a Stats reply into values[i] (-1 if
 * absent). 0, or -1 if the map does not decode. */
static int s_stats_pick(const ordo_reply_t *rep, const char *const *names, int64_t *values, int n)
{
    for (int j = 0; j < n; j++)
        values[j] = -1;
    ordo_mp_t r;
    uint32_t count;
    ordo_mp_init(&r, rep->stats, rep->stats_len);
    if (!ordo_mp_read_map(&r, &count))
        return -1;
    for (uint32_t i = 0; i < count; i++) {
        const char *k;
        uint32_t kl;
        int64_t v;
        if (!ordo_mp_read_str(&r, &k, &kl) || !ordo_mp_read_int(&r, &v))
            return -1;
        for (int j = 0; j < n; j++)
            if (strlen(names[j]) == kl && !memcmp(names[j], k, kl))
                values[j] = v;
    }
    return 0;
}

static void s_on_stats(s_bench_t *b, const void *data, size_t len)
{
    ordo_reply_t rep;
    b->stats_pending--; /* answered, if not always with Stats */
    if (ordo_reply_decode(data, len, &rep) != 0 || !rep.ok || !rep.stats_len)
        return;
    int which = ORDO_MP_KEY_IS(rep.request_id.ptr, rep.request_id.len, "stats-after");
    s_stats_t *st = &b->stats[which];
    static const char *const names[] = {"fsyncs", "frames", "events_appended"};
    int64_t v[3];
    if (s_stats_pick(&rep, names, v, 3) != 0)
        return;
    if (v[0] >= 0)
        st->fsyncs = v[0];
    if (v[1] >= 0)
        st->frames = v[1];
    if (v[2] >= 0)
        st->appended = v[2];
    st->have = true;
}

/* Sends b->buf on connection c and records it in flight. -1 if the socket
 * refuses (it cannot: its high-water mark is above the window). */
static int s_send(s_bench_t *b, s_conn_t *c, const char *rid, uint32_t rid_len, const char *oid,
                  uint32_t oid_len, const void *bytes, size_t len, uint64_t now)
{
    if (zmq_send(c->sock, bytes, len, ZMQ_DONTWAIT) < 0) {
        fprintf(stderr, "ordo-benchmark: send failed: %s\n", zmq_strerror(errno));
        return -1;
    }
    s_slot_t *f = s_table_add(&b->flights, rid, rid_len);
    f->olen = (uint8_t)oid_len;
    memcpy(f->oid, oid, oid_len);
    /* open loop: latency counts from when the request was due, so a
     * generator that falls behind shows it (no coordinated omission) */
    f->t0 = b->period_ns > 0 ? b->t_start + (uint64_t)((double)b->sent * b->period_ns) : now;
    b->sent++;
    c->in_flight++;
    c->dirty = true;
    return 0;
}

/* Sends the next command on connection c: a parked one whose order is
 * free again, else the workload's next. 1 sent, 0 nothing to send, -1 error. */
static int s_send_next(s_bench_t *b, s_conn_t *c, uint64_t now)
{
    s_parked_t *p = b->ready;
    if (p) {
        b->ready = p->next;
        if (!b->ready)
            b->ready_tail = NULL;
        int rc = s_send(b, c, p->rid, p->rid_len, p->oid, p->oid_len, p->bytes, p->len, now);
        b->parked--;
        free(p);
        return rc < 0 ? -1 : 1;
    }
    while (!b->exhausted && b->parked < b->park_max) {
        ordo_request_t *req = b->req;
        if (!ordo_workload_next(b->work, req)) {
            b->exhausted = true;
            break;
        }
        if (req->request_id.len >= KEY_MAX || req->order_id.len >= KEY_MAX) {
            fprintf(stderr, "ordo-benchmark: workload ids longer than %d bytes\n", KEY_MAX - 1);
            return -1;
        }
        msgpack_sbuffer_clear(&b->buf);
        if (ordo_request_pack(&b->pk, req) != 0) {
            fprintf(stderr, "ordo-benchmark: out of memory encoding a request\n");
            return -1;
        }
        s_slot_t *busy = s_table_find(&b->busy, req->order_id.ptr, req->order_id.len);
        if (!busy) {
            s_table_add(&b->busy, req->order_id.ptr, req->order_id.len);
            return s_send(b, c, req->request_id.ptr, req->request_id.len, req->order_id.ptr,
                          req->order_id.len, b->buf.data, b->buf.size, now) < 0
                       ? -1
                       : 1;
        }
        /* its order has a command in flight: park this one behind it */
        p = malloc(sizeof *p + b->buf.size);
        if (!p) {
            fprintf(stderr, "ordo-benchmark: out of memory parking a request\n");
            return -1;
        }
        p->next = NULL;
        p->rid_len = (uint8_t)req->request_id.len;
        memcpy(p->rid, req->request_id.ptr, req->request_id.len);
        p->oid_len = (uint8_t)req->order_id.len;
        memcpy(p->oid, req->order_id.ptr, req->order_id.len);
        p->len = b->buf.size;
        memcpy(p->bytes, b->buf.data, b->buf.size);
        if (busy->tail)
            busy->tail->next = p;
        else
            busy->head = p;
        busy->tail = p;
        b->parked++;
    }
    return 0;
}

/* Fills every connection's window, round robin, as far as the schedule
 * (rate mode) and the workload allow. 1 if it stopped because the next
 * request is not due yet, 0 if the windows are full or nothing is left to
 * send, -1 on error. */
static int s_fill(s_bench_t *b, uint64_t now)
{
    long n = b->o->connections, full = 0;
    uint64_t due = UINT64_MAX;
    if (b->period_ns > 0)
        due = (uint64_t)((double)(now - b->t_start) / b->period_ns) + 1;
    while (full < n) {
        s_conn_t *c = &b->conns[b->rr];
        b->rr = (b->rr + 1) % n;
        if (c->in_flight >= b->o->window) {
            full++;
            continue;
        }
        if (b->sent >= due)
            return 1;
        int rc = s_send_next(b, c, now);
        if (rc <= 0)
            return rc;
        full = 0;
    }
    return 0;
}

static void s_note_error(s_bench_t *b, const void *data, size_t len)
{
    if (b->first_error[0])
        return;
    ordo_reply_t rep;
    if (ordo_reply_decode(data, len, &rep) != 0)
        snprintf(b->first_error, sizeof b->first_error, "a reply that does not decode");
    else
        snprintf(b->first_error, sizeof b->first_error, "%.40s: %.250s",
                 ordo_code_name(rep.error.code), rep.error.message);
}

/* One reply on connection c. */
static void s_on_reply(s_bench_t *b, s_conn_t *c, const void *data, size_t len, uint64_t now)
{
    bool ok = false, dup = false;
    const char *rid = NULL;
    uint32_t rid_len = 0;
    s_slot_t *f = NULL;
    if (s_reply_head(data, len, &ok, &dup, &rid, &rid_len))
        f = s_table_find(&b->flights, rid, rid_len);
    if (!f) {
        b->stray++;
        s_note_error(b, data, len);
        return;
    }
    c->in_flight--;
    b->tick_replies++;
    if (now > f->t0 && now - f->t0 > b->tick_max)
        b->tick_max = now - f->t0;
    if (b->phase == PHASE_MEASURE) {
        ordo_histogram_record(b->hist, now > f->t0 ? now - f->t0 : 0);
        b->replies++;
        if (!ok)
            b->errors++;
        else if (dup)
            b->duplicates++; /* acknowledged, but no new event */
        else
            b->events++;
    }
    if (!ok)
        s_note_error(b, data, len);
    s_slot_t *busy = s_table_find(&b->busy, f->oid, f->olen);
    s_table_remove(&b->flights, f);
    if (!busy)
        return;
    s_parked_t *p = busy->head;
    if (!p) {
        s_table_remove(&b->busy, busy); /* the order is free */
        return;
    }
    busy->head = p->next; /* its next command may go now; the order stays busy */
    if (!busy->head)
        busy->tail = NULL;
    p->next = NULL;
    if (b->ready_tail)
        b->ready_tail->next = p;
    else
        b->ready = p;
    b->ready_tail = p;
}

/* Reads every reply waiting on the sockets that may have some: those
 * whose descriptor fired, that were sent on, or left with replies. A
 * socket read down to EAGAIN has processed its commands, so its ZMQ_FD
 * fires again when the next reply comes (ZeroMQ's edge-triggered rule);
 * a send may consume that signal, hence `dirty`. */
static void s_receive(s_bench_t *b)
{
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    uint64_t now = ordo_mono_ns();
    long n = b->o->connections;
    b->more = false;
    for (long i = 0; i < n; i++) {
        s_conn_t *c = &b->conns[i];
        if (!c->dirty && !(b->fds[i].revents & POLLIN))
            continue;
        int k = 0;
        for (; k < RECV_BURST && zmq_msg_recv(&msg, c->sock, ZMQ_DONTWAIT) >= 0; k++) {
            if ((k & 63) == 63)
                now = ordo_mono_ns();
            s_on_reply(b, c, zmq_msg_data(&msg), zmq_msg_size(&msg), now);
        }
        c->dirty = k == RECV_BURST;
        b->more |= c->dirty;
    }
    if (b->control_dirty || (b->fds[n].revents & POLLIN)) {
        while (zmq_msg_recv(&msg, b->control, ZMQ_DONTWAIT) >= 0)
            s_on_stats(b, zmq_msg_data(&msg), zmq_msg_size(&msg));
        b->control_dirty = false;
    }
    zmq_msg_close(&msg);
}

/* Learns which sockets' descriptors fired, waiting for one until
 * `deadline` unless a socket is known to have replies already. */
static void s_wait(s_bench_t *b, uint64_t deadline)
{
    long n = b->o->connections;
    bool dirty = b->more || b->control_dirty;
    for (long i = 0; i < n; i++)
        dirty |= b->conns[i].dirty;
    uint64_t now = ordo_mono_ns();
    uint64_t ns = dirty || deadline <= now ? 0 : deadline - now;
    struct timespec ts = {(time_t)(ns / SEC), (long)(ns % SEC)};
    if (ppoll(b->fds, (nfds_t)n + 1, &ts, NULL) <= 0)
        for (long i = 0; i <= n; i++)
            b->fds[i].revents = 0;
}

/* ---- one run ------------------------------------------------------------- */

static void *s_dealer(s_bench_t *b, const char *endpoint)
{
    void *s = zmq_socket(b->ctx, ZMQ_DEALER);
    int linger = 0, hwm = (int)b->o->window + 1000;
    if (!s)
        return NULL;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof hwm);
    if ((b->o->curve && ordo_cert_make_client(s, b->o->curve_server_key, &b->o->curve_client)) ||
        zmq_connect(s, endpoint) != 0) {
        fprintf(stderr, "ordo-benchmark: cannot connect to %s: %s\n", endpoint,
                zmq_strerror(errno));
        zmq_close(s);
        return NULL;
    }
    return s;
}

/* True while the spawned server (if any) runs. */
static bool s_server_alive(pid_t pid)
{
    int status;
    return pid <= 0 || waitpid(pid, &status, WNOHANG) == 0;
}

/* Pings on every socket until each has answered: the connections are up
 * and the target serves. -1 after READY_NS or if the server died. */
static int s_ping_all(s_bench_t *b)
{
    long n = b->o->connections;
    bool *seen = calloc((size_t)n + 1, sizeof *seen);
    zmq_pollitem_t *items = calloc((size_t)n + 1, sizeof *items);
    int rc = -1;
    if (!seen || !items)
        goto out;
    s_pack_query(b, ORDO_REQ_PING, "ping");
    for (long i = 0; i <= n; i++) {
        items[i].socket = i < n ? b->conns[i].sock : b->control;
        items[i].events = ZMQ_POLLIN;
        zmq_send(items[i].socket, b->buf.data, b->buf.size, ZMQ_DONTWAIT);
    }
    uint64_t until = ordo_mono_ns() + READY_NS;
    long left = n + 1;
    while (left > 0 && ordo_mono_ns() < until && !s_interrupted) {
        if (!s_server_alive(b->server_pid)) {
            fprintf(stderr, "ordo-benchmark: the spawned server exited\n");
            goto out;
        }
        if (zmq_poll(items, (int)n + 1, 100) <= 0)
            continue;
        for (long i = 0; i <= n; i++) {
            char reply[256];
            while ((items[i].revents & ZMQ_POLLIN) &&
                   zmq_recv(items[i].socket, reply, sizeof reply, ZMQ_DONTWAIT) >= 0) {
                if (!seen[i])
                    left--;
                seen[i] = true;
            }
        }
    }
    if (left == 0)
        rc = 0;
    else
        fprintf(stderr, "ordo-benchmark: %s did not answer Ping within %llu s\n", b->label,
                READY_NS / SEC);
out:
    free(seen);
    free(items);
    return rc;
}

static void s_progress(s_bench_t *b, uint64_t now)
{
    double at = (double)(now - b->t_start) / 1e9;
    fprintf(stderr, "  [%s %d/%ld] %4.0f s: %s replies/s, latency max %.1f ms, %s in flight%s\n",
            b->label, b->run + 1, b->o->runs, at, s_num((double)b->tick_replies),
            (double)b->tick_max / 1e6, s_num((double)b->flights.count),
            b->phase == PHASE_WARMUP  ? " (warm-up)"
            : b->phase == PHASE_DRAIN ? " (draining)"
                                      : "");
    b->tick_replies = 0;
    b->tick_max = 0;
}

static void s_measure_begin(s_bench_t *b, uint64_t now)
{
    b->phase = PHASE_MEASURE;
    b->t_warm = now;
    b->events = b->errors = b->duplicates = b->replies = 0;
    ordo_histogram_reset(b->hist);
    s_ask_stats(b, 0);
    b->gen_cpu0 = s_cpu_ns(CLOCK_THREAD_CPUTIME_ID);
    b->proc_cpu0 = s_cpu_ns(CLOCK_PROCESS_CPUTIME_ID);
    b->stub_cpu0 = b->stub ? ordo_stub_cpu_ns(b->stub) : 0;
    b->server_cpu0 = b->server_pid > 0 ? s_proc_cpu_ns(b->server_pid, NULL) : 0;
    b->server_front_cpu0 = b->server_pid > 0 ? s_proc_cpu_ns(b->server_pid, "ordo-front") : 0;
}

static void s_measure_end(s_bench_t *b, uint64_t now)
{
    s_result_t *r = b->res;
    b->phase = PHASE_DRAIN;
    b->t_stop = now;
    s_ask_stats(b, 1);
    r->seconds = (double)(now - b->t_warm) / 1e9;
    r->events = b->events;
    r->errors = b->errors;
    r->duplicates = b->duplicates;
    double per = b->events ? 1e-3 / (double)b->events : 0; /* ns in total -> us per event */
    r->events_per_s = r->seconds > 0 ? (double)b->events / r->seconds : 0;
    r->requests_per_s = r->seconds > 0 ? (double)b->replies / r->seconds : 0;
    double gen_ns = (double)(s_cpu_ns(CLOCK_THREAD_CPUTIME_ID) - b->gen_cpu0);
    r->gen_cpu_us = gen_ns * per;
    r->gen_busy = r->seconds > 0 ? gen_ns / 1e9 / r->seconds : 0;
    r->server_front_busy = -1;
    r->proc_cpu_us = (double)(s_cpu_ns(CLOCK_PROCESS_CPUTIME_ID) - b->proc_cpu0) * per;
    r->stub_cpu_us = b->stub ? (double)(ordo_stub_cpu_ns(b->stub) - b->stub_cpu0) * per : -1;
    r->server_cpu_us = -1;
    r->server_rss_mb = -1;
    if (b->server_pid > 0) {
        uint64_t cpu = s_proc_cpu_ns(b->server_pid, NULL);
        uint64_t front_cpu = s_proc_cpu_ns(b->server_pid, "ordo-front");
        if (cpu)
            r->server_cpu_us = (double)(cpu - b->server_cpu0) * per;
        if (front_cpu && r->seconds > 0)
            r->server_front_busy = (double)(front_cpu - b->server_front_cpu0) / 1e9 / r->seconds;
        r->server_rss_mb = s_proc_rss_mb(b->server_pid);
    }
    ordo_histogram_t *h = b->hist;
    r->p50_us = (double)ordo_histogram_percentile(h, 50) / 1e3;
    r->p99_us = (double)ordo_histogram_percentile(h, 99) / 1e3;
    r->p999_us = (double)ordo_histogram_percentile(h, 99.9) / 1e3;
    r->max_us = (double)ordo_histogram_max(h) / 1e3;
    r->mean_us = ordo_histogram_mean(h) / 1e3;
}

/* Drives the workload for warm-up + duration. 0, or -1 if the run failed. */
static int s_drive(s_bench_t *b)
{
    const s_opts_t *o = b->o;
    uint64_t now = ordo_mono_ns();
    b->t_start = now;
    b->t_warm = now + (uint64_t)(o->warmup * 1e9);
    b->t_end = b->t_warm + (uint64_t)(o->duration * 1e9);
    b->phase = PHASE_WARMUP;
    uint64_t next_tick = now + SEC;
    if (o->warmup == 0)
        s_measure_begin(b, now);
    for (;;) {
        now = ordo_mono_ns();
        if (b->phase == PHASE_WARMUP && now >= b->t_warm)
            s_measure_begin(b, now);
        bool finished = b->exhausted && b->flights.count == 0 && b->parked == 0;
        if (b->phase == PHASE_MEASURE && (now >= b->t_end || finished || s_interrupted))
            s_measure_end(b, now < b->t_end ? now : b->t_end);
        if (b->phase == PHASE_DRAIN) {
            if (b->flights.count == 0 && b->stats_pending <= 0)
                break;
            if (now > b->t_stop + DRAIN_NS) {
                fprintf(stderr, "ordo-benchmark: %u replies never came\n", b->flights.count);
                break;
            }
        }
        if (b->phase == PHASE_WARMUP && finished) {
            fprintf(stderr, "ordo-benchmark: the workload ended during the warm-up; "
                            "raise --orders or lower --warmup\n");
            return -1;
        }
        int waiting = 0; /* 1: the next request is not due yet */
        if (b->phase != PHASE_DRAIN && now >= b->next_fill) {
            if ((waiting = s_fill(b, now)) < 0)
                return -1;
            if (b->period_ns > 0) /* open loop: send in ticks, whatever wakes us */
                b->next_fill = now + b->tick_ns;
        } else if (b->phase != PHASE_DRAIN) {
            waiting = 1;
        }
        if (now >= next_tick) {
            s_progress(b, now);
            next_tick += SEC;
            if (!s_server_alive(b->server_pid)) {
                fprintf(stderr, "ordo-benchmark: the spawned server exited during the run\n");
                return -1;
            }
        }
        uint64_t deadline = next_tick;
        if (b->phase == PHASE_WARMUP && b->t_warm < deadline)
            deadline = b->t_warm;
        if (b->phase == PHASE_MEASURE && b->t_end < deadline)
            deadline = b->t_end;
        if (waiting == 1) {
            /* wake for the next request due, but not before the next
             * tick: fewer wake-ups leave the cores to the server */
            uint64_t next_send = b->t_start + (uint64_t)((double)b->sent * b->period_ns);
            if (next_send < b->next_fill)
                next_send = b->next_fill;
            if (next_send < deadline)
                deadline = next_send;
        }
        s_wait(b, deadline);
        s_receive(b);
    }
    s_result_t *r = b->res;
    if (b->stats[0].have && b->stats[1].have) {
        r->has_stats = true;
        r->fsyncs = (double)(b->stats[1].fsyncs - b->stats[0].fsyncs);
        r->frames = (double)(b->stats[1].frames - b->stats[0].frames);
        r->appended = (double)(b->stats[1].appended - b->stats[0].appended);
        r->events_per_fsync = r->fsyncs > 0 ? r->appended / r->fsyncs : 0;
        r->fsyncs_per_s = r->seconds > 0 ? r->fsyncs / r->seconds : 0;
    }
    snprintf(r->first_error, sizeof r->first_error, "%s", b->first_error);
    if (b->stray)
        fprintf(stderr, "ordo-benchmark: %llu replies matched no request in flight\n",
                (unsigned long long)b->stray);
    fprintf(stderr, "  [%s %d/%ld] %.1f s measured: %s events/s, p99 %.3f ms, %s errors\n",
            b->label, b->run + 1, o->runs, r->seconds, s_num(r->events_per_s), r->p99_us / 1e3,
            s_num((double)r->errors));
    return 0;
}

static void s_free_parked(s_parked_t *p)
{
    while (p) {
        s_parked_t *next = p->next;
        free(p);
        p = next;
    }
}

/* One run against `endpoint`. 0, or -1 with a message on stderr. */
static int s_run(const s_opts_t *o, const char *label, int run, const char *endpoint,
                 pid_t server_pid, const ordo_stub_t *stub, s_result_t *res)
{
    s_bench_t b = {
        .o = o, .label = label, .run = run, .server_pid = server_pid, .stub = stub, .res = res};
    int rc = -1;
    memset(res, 0, sizeof *res);
    uint64_t total = (uint64_t)o->connections * (uint64_t)o->window;
    b.park_max = total;
    b.period_ns = o->rate > 0 ? 1e9 / o->rate : 0;
    b.tick_ns = (uint64_t)(o->tick_us * 1e3);
    msgpack_sbuffer_init(&b.buf);
    msgpack_packer_init(&b.pk, &b.buf, msgpack_sbuffer_write);
    b.ctx = zmq_ctx_new();
    b.conns = calloc((size_t)o->connections, sizeof *b.conns);
    b.fds = calloc((size_t)o->connections + 1, sizeof *b.fds);
    b.req = malloc(sizeof *b.req);
    b.hist = ordo_histogram_new();
    long interleave =
        o->orders > 0 && o->orders < o->in_flight_orders ? (long)o->orders : o->in_flight_orders;
    b.work = ordo_workload_new(o->seed + (uint64_t)run * 2 + (stub ? 0 : 1), (uint32_t)interleave);
    if (!b.ctx || !b.conns || !b.fds || !b.req || !b.hist || !b.work ||
        s_table_init(&b.flights, total) != 0 || s_table_init(&b.busy, 2 * total) != 0) {
        fprintf(stderr, "ordo-benchmark: out of memory\n");
        goto out;
    }
    if (o->uuid4)
        ordo_workload_use_uuid4(b.work);
    if (o->orders > 0)
        ordo_workload_limit(b.work, (uint64_t)o->orders);
    for (long i = 0; i <= o->connections; i++) {
        void *sock = s_dealer(&b, endpoint);
        if (!sock)
            goto out;
        if (i < o->connections)
            b.conns[i].sock = sock;
        else
            b.control = sock;
        size_t size = sizeof b.fds[i].fd;
        zmq_getsockopt(sock, ZMQ_FD, &b.fds[i].fd, &size);
        b.fds[i].events = POLLIN;
    }
    if (s_ping_all(&b) != 0)
        goto out;
    for (long i = 0; i < o->connections; i++)
        b.conns[i].dirty = true;
    b.control_dirty = true;
    rc = s_drive(&b);
out:
    if (b.conns)
        for (long i = 0; i < o->connections; i++)
            if (b.conns[i].sock)
                zmq_close(b.conns[i].sock);
    if (b.control)
        zmq_close(b.control);
    if (b.ctx)
        zmq_ctx_term(b.ctx);
    for (uint32_t i = 0; b.busy.slots && i <= b.busy.mask; i++)
        if (b.busy.slots[i].h)
            s_free_parked(b.busy.slots[i].head);
    s_free_parked(b.ready);
    free(b.busy.slots);
    free(b.flights.slots);
    free(b.conns);
    free(b.fds);
    free(b.req);
    ordo_histogram_destroy(&b.hist);
    ordo_workload_destroy(&b.work);
    msgpack_sbuffer_destroy(&b.buf);
    return rc;
}

/* ---- a spawned server ---------------------------------------------------- */

typedef struct {
    pid_t pid;
    char dir[PATH_MAX];
    char endpoint[64];
} s_server_t;

/* Two distinct free TCP ports on 127.0.0.1 (free when asked; the server
 * binds them right after). */
static int s_free_ports(int *a, int *b)
{
    int fds[2] = {-1, -1}, ports[2] = {0, 0}, rc = -1;
    for (int i = 0; i < 2; i++) {
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
        socklen_t len = sizeof sa;
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        if (fds[i] < 0 || bind(fds[i], (struct sockaddr *)&sa, sizeof sa) != 0 ||
            getsockname(fds[i], (struct sockaddr *)&sa, &len) != 0)
            goto out;
        ports[i] = ntohs(sa.sin_port);
    }
    *a = ports[0];
    *b = ports[1];
    rc = 0;
out:
    for (int i = 0; i < 2; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    return rc;
}

static void s_rm_dir(const char *dir)
{
    char cmd[PATH_MAX + 32];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "ordo-benchmark: could not remove %s\n", dir);
}

static void s_print_log(const s_server_t *srv)
{
    char path[PATH_MAX + 16], line[512];
    snprintf(path, sizeof path, "%s/server.log", srv->dir);
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    fprintf(stderr, "ordo-benchmark: the server's log (%s):\n", path);
    while (fgets(line, sizeof line, f))
        fprintf(stderr, "  | %s", line);
    fclose(f);
}

/* Starts ordo-server on free ports with a fresh data folder. 0 or -1. */
static int s_spawn(const s_opts_t *o, s_server_t *srv)
{
    int req_port, pub_port;
    memset(srv, 0, sizeof *srv);
    snprintf(srv->dir, sizeof srv->dir, "%s/ordo-bench-XXXXXX", o->dir);
    if (!mkdtemp(srv->dir)) {
        fprintf(stderr, "ordo-benchmark: cannot make a folder in %s: %s\n", o->dir,
                strerror(errno));
        return -1;
    }
    if (s_free_ports(&req_port, &pub_port) != 0) {
        fprintf(stderr, "ordo-benchmark: no free TCP port: %s\n", strerror(errno));
        return -1;
    }
    char data[PATH_MAX + 8], log[PATH_MAX + 16], bind_ep[64], pub_ep[64];
    snprintf(data, sizeof data, "%s/data", srv->dir);
    snprintf(log, sizeof log, "%s/server.log", srv->dir);
    snprintf(bind_ep, sizeof bind_ep, "tcp://127.0.0.1:%d", req_port);
    snprintf(pub_ep, sizeof pub_ep, "tcp://127.0.0.1:%d", pub_port);
    snprintf(srv->endpoint, sizeof srv->endpoint, "%s", bind_ep);
    const char *argv[16 + MAX_SERVER_ARGS];
    int n = 0;
    argv[n++] = o->spawn;
    argv[n++] = "--data-dir";
    argv[n++] = data;
    argv[n++] = "--bind";
    argv[n++] = bind_ep;
    argv[n++] = "--pub";
    argv[n++] = pub_ep;
    argv[n++] = "--fsync";
    argv[n++] = o->fsync;
    for (int i = 0; i < o->n_server_args; i++)
        argv[n++] = o->server_args[i];
    argv[n] = NULL;
    fflush(NULL);
    srv->pid = fork();
    if (srv->pid < 0) {
        fprintf(stderr, "ordo-benchmark: fork: %s\n", strerror(errno));
        return -1;
    }
    if (srv->pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        signal(SIGINT, SIG_IGN); /* the benchmark stops it with SIGTERM */
        execv(o->spawn, (char *const *)argv);
        fprintf(stderr, "cannot run %s: %s\n", o->spawn, strerror(errno));
        _exit(127);
    }
    fprintf(stderr, "ordo-benchmark: spawned %s, pid %d, on %s, data in %s\n", o->spawn,
            (int)srv->pid, bind_ep, srv->dir);
    return 0;
}

/* SIGTERM, wait for a clean exit (SIGKILL after 60 s), remove the folder. */
static int s_stop_server(const s_opts_t *o, s_server_t *srv)
{
    int status = 0, rc = -1;
    if (srv->pid > 0) {
        kill(srv->pid, SIGTERM);
        uint64_t until = ordo_mono_ns() + 60 * SEC;
        pid_t w;
        while ((w = waitpid(srv->pid, &status, WNOHANG)) == 0 && ordo_mono_ns() < until)
            usleep(10000);
        if (w == 0) {
            fprintf(stderr, "ordo-benchmark: the server did not stop within 60 s; killing it\n");
            kill(srv->pid, SIGKILL);
            waitpid(srv->pid, &status, 0);
        } else if (w > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
            rc = 0;
        }
        if (rc != 0) {
            fprintf(stderr, "ordo-benchmark: the server did not exit cleanly (status 0x%x)\n",
                    status);
            s_print_log(srv);
        }
        srv->pid = 0;
    }
    if (srv->dir[0] && !o->keep)
        s_rm_dir(srv->dir);
    else if (srv->dir[0])
        fprintf(stderr, "ordo-benchmark: kept %s\n", srv->dir);
    return rc;
}

/* ---- report -------------------------------------------------------------- */

/* The median of every figure over `n` runs. */
static s_result_t s_median_result(const s_result_t *runs, int n)
{
    s_result_t m = runs[0];
    double v[MAX_RUNS];
#define MED(field)                                                                                 \
    do {                                                                                           \
        for (int i = 0; i < n; i++)                                                                \
            v[i] = (double)runs[i].field;                                                          \
        m.field = s_median(v, n);                                                                  \
    } while (0)
    MED(seconds);
    MED(events_per_s);
    MED(requests_per_s);
    MED(p50_us);
    MED(p99_us);
    MED(p999_us);
    MED(max_us);
    MED(mean_us);
    MED(fsyncs);
    MED(frames);
    MED(appended);
    MED(events_per_fsync);
    MED(fsyncs_per_s);
    MED(server_cpu_us);
    MED(server_rss_mb);
    MED(gen_cpu_us);
    MED(server_front_busy);
    MED(gen_busy);
    MED(proc_cpu_us);
    MED(stub_cpu_us);
#undef MED
    uint64_t errors = 0, events = 0, dups = 0;
    for (int i = 0; i < n; i++) {
        errors += runs[i].errors;
        dups += runs[i].duplicates;
        events += runs[i].events;
        if (!m.first_error[0] && runs[i].first_error[0])
            snprintf(m.first_error, sizeof m.first_error, "%s", runs[i].first_error);
        m.has_stats = m.has_stats && runs[i].has_stats;
    }
    m.errors = errors; /* totals over the runs */
    m.duplicates = dups;
    m.events = events;
    return m;
}

/* A JSON string's contents: quotes and backslashes escaped, controls dropped. */
static void s_json_text(const char *text)
{
    for (const char *p = text; *p; p++)
        if (*p == '"' || *p == '\\')
            printf("\\%c", *p);
        else if ((unsigned char)*p >= 0x20)
            putchar(*p);
}

static void s_json_result(const char *name, const s_result_t *r, const double *eps, int n)
{
    printf("\"%s\":{\"events_per_s\":%.0f,\"events_per_s_runs\":[", name, r->events_per_s);
    for (int i = 0; i < n; i++)
        printf("%s%.0f", i ? "," : "", eps[i]);
    printf("],\"requests_per_s\":%.0f,\"measured_s\":%.2f,\"events\":%llu,\"errors\":%llu,"
           "\"duplicates\":%llu,"
           "\"latency_us\":{\"p50\":%.1f,\"p99\":%.1f,\"p99_9\":%.1f,\"max\":%.1f,\"mean\":%.1f},",
           r->requests_per_s, r->seconds, (unsigned long long)r->events,
           (unsigned long long)r->errors, (unsigned long long)r->duplicates, r->p50_us, r->p99_us,
           r->p999_us, r->max_us, r->mean_us);
    if (r->has_stats)
        printf("\"fsyncs\":%.0f,\"frames\":%.0f,\"events_appended\":%.0f,"
               "\"events_per_fsync\":%.1f,\"fsyncs_per_s\":%.0f,",
               r->fsyncs, r->frames, r->appended, r->events_per_fsync, r->fsyncs_per_s);
    if (r->server_cpu_us >= 0)
        printf("\"server_cpu_us_per_event\":%.2f,\"server_front_thread_busy\":%.2f,"
               "\"server_rss_mb\":%.0f,",
               r->server_cpu_us, r->server_front_busy, r->server_rss_mb);
    if (r->stub_cpu_us >= 0)
        printf("\"stub_cpu_us_per_event\":%.2f,", r->stub_cpu_us);
    printf("\"generator_thread_cpu_us_per_event\":%.2f,\"generator_thread_busy\":%.2f,"
           "\"process_cpu_us_per_event\":%.2f,\"first_error\":\"",
           r->gen_cpu_us, r->gen_busy, r->proc_cpu_us);
    s_json_text(r->first_error);
    printf("\"}");
}

static void s_report(const s_opts_t *o, const char *target, const s_result_t *stub_runs,
                     const s_result_t *eng_runs, int n)
{
    bool has_stub = !o->engine_only, has_eng = !o->stub_only;
    s_result_t s = has_stub ? s_median_result(stub_runs, n) : (s_result_t){0};
    s_result_t e = has_eng ? s_median_result(eng_runs, n) : (s_result_t){0};
    double seps[MAX_RUNS], eeps[MAX_RUNS];
    for (int i = 0; i < n; i++) {
        seps[i] = has_stub ? stub_runs[i].events_per_s : 0;
        eeps[i] = has_eng ? eng_runs[i].events_per_s : 0;
    }
    double share = has_stub && has_eng && s.events_per_s > 0 ? e.events_per_s / s.events_per_s : 0;
    if (o->json) {
        printf("{\"version\":\"%s\",\"client\":\"libzmq DEALER + ordo proto codec, one thread\","
               "\"target\":\"",
               VERSION);
        s_json_text(target);
        printf("\",\"fsync\":\"%s\",\"connections\":%ld,\"window\":%ld,"
               "\"duration_s\":%g,\"warmup_s\":%g,\"rate\":%.0f,\"tick_us\":%g,\"runs\":%d,"
               "\"orders_in_flight\":%ld,\"seed\":%llu,",
               has_eng ? o->fsync : "n/a", o->connections, o->window, o->duration, o->warmup,
               o->rate, o->tick_us, n, o->in_flight_orders, o->seed);
        if (has_stub)
            s_json_result("stub", &s, seps, n);
        if (has_stub && has_eng)
            printf(",");
        if (has_eng)
            s_json_result("engine", &e, eeps, n);
        if (has_stub && has_eng)
            printf(",\"engine_share_of_ceiling\":%.3f", share);
        printf("}\n");
        return;
    }
    printf("ordo-benchmark %s: %s, fsync %s\n", VERSION, target, has_eng ? o->fsync : "n/a");
    printf("  %ld connections x window %ld, %.1f s measured after %g s warm-up, %s, "
           "median of %d run%s\n",
           o->connections, o->window, has_eng ? e.seconds : s.seconds, o->warmup,
           o->rate > 0 ? "open loop" : "as fast as possible", n, n > 1 ? "s" : "");
    if (o->rate > 0)
        printf("  target rate %s requests/s\n", s_num(o->rate));
    printf("  client: raw libzmq DEALER sockets + the proto codec, one thread (not libordo)\n\n");
    printf("  %-36s %16s %16s\n", "", has_stub ? "stub (ceiling)" : "", has_eng ? "engine" : "");
    char a[64], z[64];
#define CELL(buf, ok, ...)                                                                         \
    ((ok) ? snprintf(buf, sizeof buf, __VA_ARGS__) : snprintf(buf, sizeof buf, "-"))
#define ROW(label, ok_s, ok_e, fmt, fs, fe)                                                        \
    do {                                                                                           \
        CELL(a, has_stub && (ok_s), fmt, fs);                                                      \
        CELL(z, has_eng && (ok_e), fmt, fe);                                                       \
        printf("  %-36s %16s %16s\n", label, has_stub ? a : "", has_eng ? z : "");                 \
    } while (0)
    ROW("events/s", true, true, "%s", s_num(s.events_per_s), s_num(e.events_per_s));
    ROW("latency p50 (ms)", true, true, "%.3f", s.p50_us / 1e3, e.p50_us / 1e3);
    ROW("latency p99 (ms)", true, true, "%.3f", s.p99_us / 1e3, e.p99_us / 1e3);
    ROW("latency p99.9 (ms)", true, true, "%.3f", s.p999_us / 1e3, e.p999_us / 1e3);
    ROW("latency max (ms)", true, true, "%.3f", s.max_us / 1e3, e.max_us / 1e3);
    ROW("errors (all runs)", true, true, "%s", s_num((double)s.errors), s_num((double)e.errors));
    if (s.duplicates || e.duplicates)
        ROW("duplicate replies (all runs)", true, true, "%s", s_num((double)s.duplicates),
            s_num((double)e.duplicates));
    ROW("fsyncs", false, e.has_stats, "%s", "", s_num(e.fsyncs));
    ROW("fsyncs/s", false, e.has_stats, "%s", "", s_num(e.fsyncs_per_s));
    ROW("events per fsync (avg)", false, e.has_stats, "%.1f", 0.0, e.events_per_fsync);
    ROW("log frames", false, e.has_stats, "%s", "", s_num(e.frames));
    ROW("server (stub: thread) CPU us/event", s.stub_cpu_us >= 0, e.server_cpu_us >= 0, "%.2f",
        s.stub_cpu_us, e.server_cpu_us);
    ROW("server front-end thread busy (%)", false, e.server_front_busy >= 0, "%.0f", 0.0,
        100 * e.server_front_busy);
    ROW("server RSS at end (MiB)", false, e.server_rss_mb >= 0, "%.0f", 0.0, e.server_rss_mb);
    ROW("generator thread CPU us/event", true, true, "%.2f", s.gen_cpu_us, e.gen_cpu_us);
    ROW("generator thread busy (%)", true, true, "%.0f", 100 * s.gen_busy, 100 * e.gen_busy);
    ROW("this process CPU us/event", true, true, "%.2f", s.proc_cpu_us, e.proc_cpu_us);
#undef ROW
#undef CELL
    if (n > 1) {
        printf("\n  events/s per run:");
        for (int i = 0; i < n; i++)
            printf("%s%s", i ? ", " : " stub ", has_stub ? s_num(seps[i]) : "-");
        for (int i = 0; i < n; i++)
            printf("%s%s", i ? ", " : "; engine ", has_eng ? s_num(eeps[i]) : "-");
        printf("\n");
    }
    if (has_stub && has_eng)
        printf("\n  the engine reaches %.0f%% of the generator's ceiling\n", 100 * share);
    if (s.first_error[0])
        printf("  stub: first error: %s\n", s.first_error);
    if (e.first_error[0])
        printf("  engine: first error: %s\n", e.first_error);
}

/* ---- main ---------------------------------------------------------------- */

static void s_usage(FILE *out)
{
    fprintf(out,
            "Usage: ordo-benchmark [OPTIONS]\n"
            "Load generator: drives orders through their whole lives into the engine over\n"
            "ZeroMQ (raw DEALER sockets, one thread) and reports events/s, latency\n"
            "percentiles and the engine's fsyncs, next to the same workload against a\n"
            "built-in stub that answers at once (the generator's own ceiling).\n"
            "\n"
            "Target (default: the stub, then the engine at --server):\n"
            "  --server ENDPOINT   a running engine (default tcp://127.0.0.1:7700)\n"
            "  --curve-server FILE, --curve-cert FILE\n"
            "                      CURVE towards the engine: its public certificate and this\n"
            "                      client's secret one (the stub is then left out)\n"
            "  --spawn PATH        start PATH (ordo-server) on free ports with a temp data\n"
            "                      folder and --fsync, once per run; SIGTERM it afterwards\n"
            "  --fsync MODE        always | batch:MS | never | replicated (give --server-arg\n"
            "                      --nats ...), passed to a spawned server and\n"
            "                      recorded in the report (default always)\n"
            "  --server-arg ARG    one more argument for the spawned server (repeatable)\n"
            "  --dir DIR           where the spawned server's temp folder goes (default /tmp)\n"
            "  --keep              keep the spawned server's folder\n"
            "  --stub              only the stub\n"
            "  --no-stub           only the engine\n"
            "Load:\n"
            "  --connections N     DEALER connections (default 4)\n"
            "  --window W          requests in flight per connection (default 256)\n"
            "  --rate R            open loop at R requests/s (one event each); latency counts\n"
            "                      from when each request was due (default: as fast as possible)\n"
            "  --tick US           open loop: wake to send at most every US microseconds, the\n"
            "                      requests due by then going out together (default 100)\n"
            "  --duration S        seconds measured (default 10)\n"
            "  --warmup S          seconds run first and not measured (default 3)\n"
            "  --runs N            runs; figures are medians (default 1, max 31)\n"
            "  --orders-in-flight N  orders the workload interleaves (default 50000)\n"
            "  --orders N          create at most N orders; a run ends when they are done\n"
            "  --seed N            workload seed (default: from the clock)\n"
            "  --uuid4             request and correlation ids are UUIDv4 (default UUIDv7)\n"
            "Days in fast forward (instead of the runs above):\n"
            "  --days D            one engine through D simulated days, each a night (5,000\n"
            "                      orders in flight), a lunch peak (50,000), an afternoon\n"
            "                      (10,000) and a dinner peak (50,000) holding 10%%, 35%%, 20%%\n"
            "                      and 35%% of its events, as fast as the engine goes; a line\n"
            "                      per day: time, events/s, worst p99, the server's RSS (with\n"
            "                      --spawn) and its orders in all and in memory. Give the\n"
            "                      spawned server a short --retain-finished with --server-arg\n"
            "  --day-events N      events per day (default 10,000,000)\n"
            "Output:\n"
            "  --json              print the figures as one JSON object\n"
            "  --help, --version\n"
            "Progress goes to stderr once a second.\n");
}

static int s_number(const char *flag, const char *text, double min, double max, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || end == text || *end || !(v >= min && v <= max)) {
        fprintf(stderr, "ordo-benchmark: --%s must be a number from %g to %g, not \"%s\"\n", flag,
                min, max, text);
        return -1;
    }
    *out = v;
    return 0;
}

static bool s_fsync_valid(const char *m)
{
    if (!strcmp(m, "always") || !strcmp(m, "never") || !strcmp(m, "replicated"))
        return true;
    if (strncmp(m, "batch:", 6) != 0 || !m[6])
        return false;
    for (const char *p = m + 6; *p; p++)
        if (*p < '0' || *p > '9')
            return false;
    return true;
}

/* The engine's Stats values `names[i]` into values[i] (-1 if absent).
 * 0, or -1 if it did not answer. */
static int s_fetch_stats(const s_opts_t *o, const char *endpoint, const char *const *names,
                         int64_t *values, int n)
{
    for (int i = 0; i < n; i++)
        values[i] = -1;
    void *ctx = zmq_ctx_new(), *sock = ctx ? zmq_socket(ctx, ZMQ_DEALER) : NULL;
    int rc = -1, linger = 0;
    if (sock && zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger) == 0 &&
        (!o->curve || ordo_cert_make_client(sock, o->curve_server_key, &o->curve_client) == 0) &&
        zmq_connect(sock, endpoint) == 0) {
        ordo_request_t q;
        ordo_request_init(&q);
        q.type = ORDO_REQ_STATS;
        msgpack_sbuffer buf;
        msgpack_sbuffer_init(&buf);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
        ordo_request_pack(&pk, &q);
        zmq_pollitem_t it = {sock, 0, ZMQ_POLLIN, 0};
        zmq_msg_t m;
        zmq_msg_init(&m);
        ordo_reply_t rep;
        if (zmq_send(sock, buf.data, buf.size, 0) >= 0 && zmq_poll(&it, 1, 10000) == 1 &&
            zmq_msg_recv(&m, sock, 0) >= 0 &&
            ordo_reply_decode(zmq_msg_data(&m), zmq_msg_size(&m), &rep) == 0 && rep.ok &&
            rep.stats_len)
            rc = s_stats_pick(&rep, names, values, n);
        zmq_msg_close(&m);
        msgpack_sbuffer_destroy(&buf);
    }
    if (sock)
        zmq_close(sock);
    if (ctx)
        zmq_ctx_term(ctx);
    return rc;
}

/* A simulated day in fast forward: its parts, each run to its last order
 * as fast as the engine goes, with the orders in flight of the hour. */
static const struct {
    const char *name;
    double share;   /* of the day's events */
    long in_flight; /* orders interleaved */
} s_day_parts[] = {
    {"night", 0.10, 5000},
    {"lunch", 0.35, 50000},
    {"afternoon", 0.20, 10000},
    {"dinner", 0.35, 50000},
};

/* --days: one engine through o->days days of o->day_events events each;
 * a line per day (time, events/s, the worst p99 of its parts, the
 * server's memory and orders at its end). Exit status. */
static int s_days(const s_opts_t *o)
{
    s_server_t srv = {0};
    const char *endpoint = o->server;
    if (o->spawn) {
        if (s_spawn(o, &srv) != 0) {
            s_stop_server(o, &srv);
            return 1;
        }
        endpoint = srv.endpoint;
    }
    static const char *const names[] = {"orders", "orders_in_memory", "head_position"};
    int status = 0;
    if (o->json)
        printf("{\"version\":\"%s\",\"days\":[", VERSION);
    else
        printf("%-4s %9s %10s %13s %10s %10s %10s %12s %16s\n", "day", "seconds", "events",
               "events/s", "p99 ms", "RSS MiB", "anon MiB", "orders", "orders in memory");
    for (long d = 0; d < o->days && !s_interrupted && status == 0; d++) {
        double secs = 0, events = 0, p99 = 0;
        for (size_t p = 0; p < sizeof s_day_parts / sizeof *s_day_parts && !s_interrupted; p++) {
            s_opts_t part = *o;
            part.orders = (long long)(o->day_events * s_day_parts[p].share / 6);
            part.in_flight_orders = s_day_parts[p].in_flight;
            part.warmup = 0;
            part.duration = 86400;
            part.runs = o->days;
            part.seed = o->seed + (unsigned long long)(d * 16 + (long)p) * 1000003ull;
            fprintf(stderr, "ordo-benchmark: day %ld, %s: %lld orders, %ld in flight\n", d + 1,
                    s_day_parts[p].name, part.orders, part.in_flight_orders);
            s_result_t r;
            char label[32];
            snprintf(label, sizeof label, "day %ld %s", d + 1, s_day_parts[p].name);
            if (s_run(&part, label, (int)d, endpoint, srv.pid, NULL, &r) != 0 || r.errors > 0) {
                if (r.errors > 0)
                    fprintf(stderr, "ordo-benchmark: %s: %llu errors (first: %s)\n", label,
                            (unsigned long long)r.errors, r.first_error);
                status = 1;
                break;
            }
            secs += r.seconds;
            events += (double)r.events;
            if (r.p99_us > p99)
                p99 = r.p99_us;
        }
        if (status || s_interrupted)
            break;
        int64_t st[3];
        s_fetch_stats(o, endpoint, names, st, 3);
        double rss = srv.pid ? s_proc_status_mb(srv.pid, "VmRSS") : -1;
        double anon = srv.pid ? s_proc_status_mb(srv.pid, "RssAnon") : -1;
        if (o->json)
            printf("%s{\"day\":%ld,\"seconds\":%.1f,\"events\":%.0f,\"events_per_s\":%.0f,"
                   "\"p99_ms\":%.3f,\"server_rss_mb\":%.0f,\"server_anon_mb\":%.0f,"
                   "\"orders\":%lld,\"orders_in_memory\":%lld,\"head_position\":%lld}",
                   d ? "," : "", d + 1, secs, events, secs > 0 ? events / secs : 0, p99 / 1e3, rss,
                   anon, (long long)st[0], (long long)st[1], (long long)st[2]);
        else
            printf("%-4ld %9.1f %10s %13s %10.2f %10.0f %10.0f %12s %16s\n", d + 1, secs,
                   s_num(events), s_num(secs > 0 ? events / secs : 0), p99 / 1e3, rss, anon,
                   s_num((double)st[0]), s_num((double)st[1]));
        fflush(stdout);
    }
    if (o->json)
        printf("]}\n");
    if (o->spawn && s_stop_server(o, &srv) != 0)
        status = 1;
    return status ? 1 : s_interrupted ? 1 : 0;
}

int main(int argc, char **argv)
{
    s_opts_t o = {.server = "tcp://127.0.0.1:7700",
                  .fsync = "always",
                  .dir = "/tmp",
                  .connections = 4,
                  .window = 256,
                  .duration = 10,
                  .warmup = 3,
                  .runs = 1,
                  .in_flight_orders = 50000,
                  .day_events = 10000000,
                  .tick_us = 100};
    static const struct option lopts[] = {{"server", required_argument, 0, 'S'},
                                          {"spawn", required_argument, 0, 'P'},
                                          {"fsync", required_argument, 0, 'f'},
                                          {"server-arg", required_argument, 0, 'A'},
                                          {"dir", required_argument, 0, 'd'},
                                          {"keep", no_argument, 0, 'k'},
                                          {"stub", no_argument, 0, 's'},
                                          {"no-stub", no_argument, 0, 'n'},
                                          {"connections", required_argument, 0, 'c'},
                                          {"window", required_argument, 0, 'w'},
                                          {"rate", required_argument, 0, 'r'},
                                          {"duration", required_argument, 0, 't'},
                                          {"warmup", required_argument, 0, 'W'},
                                          {"runs", required_argument, 0, 'R'},
                                          {"orders-in-flight", required_argument, 0, 'i'},
                                          {"orders", required_argument, 0, 'o'},
                                          {"seed", required_argument, 0, 'x'},
                                          {"uuid4", no_argument, 0, 'u'},
                                          {"json", no_argument, 0, 'j'},
                                          {"tick", required_argument, 0, 'T'},
                                          {"days", required_argument, 0, 'D'},
                                          {"day-events", required_argument, 0, 'E'},
                                          {"curve-server", required_argument, 0, 'K'},
                                          {"curve-cert", required_argument, 0, 'C'},
                                          {"help", no_argument, 0, 'h'},
                                          {"version", no_argument, 0, 'V'},
                                          {0, 0, 0, 0}};
    int c;
    double v;
    opterr = 0; /* one line of our own for a usage error */
    while ((c = getopt_long(argc, argv, "", lopts, NULL)) != -1) {
        switch (c) {
        case 'S': o.server = optarg; break;
        case 'P': o.spawn = optarg; break;
        case 'f': o.fsync = optarg; break;
        case 'A':
            if (o.n_server_args == MAX_SERVER_ARGS) {
                fprintf(stderr, "ordo-benchmark: at most %d --server-arg\n", MAX_SERVER_ARGS);
                return 2;
            }
            o.server_args[o.n_server_args++] = optarg;
            break;
        case 'd': o.dir = optarg; break;
        case 'k': o.keep = true; break;
        case 's': o.stub_only = true; break;
        case 'n': o.engine_only = true; break;
        case 'c':
            if (s_number("connections", optarg, 1, 256, &v) != 0)
                return 2;
            o.connections = (long)v;
            break;
        case 'w':
            if (s_number("window", optarg, 1, 100000, &v) != 0)
                return 2;
            o.window = (long)v;
            break;
        case 'r':
            if (s_number("rate", optarg, 1, 1e8, &o.rate) != 0)
                return 2;
            break;
        case 't':
            if (s_number("duration", optarg, 0.1, 86400, &o.duration) != 0)
                return 2;
            break;
        case 'W':
            if (s_number("warmup", optarg, 0, 3600, &o.warmup) != 0)
                return 2;
            break;
        case 'R':
            if (s_number("runs", optarg, 1, MAX_RUNS, &v) != 0)
                return 2;
            o.runs = (long)v;
            break;
        case 'i':
            if (s_number("orders-in-flight", optarg, 1, 10000000, &v) != 0)
                return 2;
            o.in_flight_orders = (long)v;
            break;
        case 'o':
            if (s_number("orders", optarg, 1, 1e15, &v) != 0)
                return 2;
            o.orders = (long long)v;
            break;
        case 'x':
            if (s_number("seed", optarg, 0, 1.8e19, &v) != 0)
                return 2;
            o.seed = strtoull(optarg, NULL, 10);
            o.seed_given = true;
            break;
        case 'u': o.uuid4 = true; break;
        case 'T':
            if (s_number("tick", optarg, 0, 100000, &o.tick_us) != 0)
                return 2;
            break;
        case 'D':
            if (s_number("days", optarg, 1, 365, &v) != 0)
                return 2;
            o.days = (long)v;
            break;
        case 'E':
            if (s_number("day-events", optarg, 1000, 1e10, &o.day_events) != 0)
                return 2;
            break;
        case 'j': o.json = true; break;
        case 'K': o.curve_server = optarg; break;
        case 'C': o.curve_cert = optarg; break;
        case 'h': s_usage(stdout); return 0;
        case 'V': printf("ordo-benchmark %s\n", VERSION); return 0;
        default:
            fprintf(stderr,
                    "ordo-benchmark: unknown option or missing value in \"%s\"; try --help\n",
                    argv[optind - 1]);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "ordo-benchmark: unexpected argument \"%s\"; try --help\n", argv[optind]);
        return 2;
    }
    if (o.stub_only && o.engine_only) {
        fprintf(stderr, "ordo-benchmark: --stub and --no-stub exclude each other\n");
        return 2;
    }
    if (!o.curve_server != !o.curve_cert) {
        fprintf(stderr, "ordo-benchmark: CURVE needs both --curve-server and --curve-cert\n");
        return 2;
    }
    if (o.curve_server) {
        char err[600];
        ordo_keypair_t server;
        if (ordo_cert_load(o.curve_server, false, &server, err, sizeof err) != 0 ||
            ordo_cert_load(o.curve_cert, true, &o.curve_client, err, sizeof err) != 0) {
            fprintf(stderr, "ordo-benchmark: %s\n", err);
            return 2;
        }
        if (o.stub_only) {
            fprintf(stderr, "ordo-benchmark: the stub does not speak CURVE\n");
            return 2;
        }
        memcpy(o.curve_server_key, server.public_key, sizeof o.curve_server_key);
        o.curve = true;
        o.engine_only = true;
    }
    if (!s_fsync_valid(o.fsync)) {
        fprintf(stderr, "ordo-benchmark: --fsync must be always, batch:MS, never or replicated, not \"%s\"\n",
                o.fsync);
        return 2;
    }
    if (o.spawn && access(o.spawn, X_OK) != 0) {
        fprintf(stderr, "ordo-benchmark: --spawn %s: not an executable file\n", o.spawn);
        return 2;
    }
    if (o.n_server_args && !o.spawn) {
        fprintf(stderr, "ordo-benchmark: --server-arg needs --spawn\n");
        return 2;
    }
    if (!o.seed_given)
        o.seed = (unsigned long long)ordo_now_us();

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (o.days > 0) {
        if (o.stub_only) {
            fprintf(stderr, "ordo-benchmark: --days drives the engine, not the stub\n");
            return 2;
        }
        return s_days(&o);
    }

    char target[PATH_MAX + 64];
    if (o.stub_only)
        snprintf(target, sizeof target, "stub only");
    else if (o.spawn)
        snprintf(target, sizeof target, "engine spawned (%s)", o.spawn);
    else
        snprintf(target, sizeof target, "engine at %s (fsync as stated, not checked)", o.server);

    s_result_t stub_runs[MAX_RUNS], eng_runs[MAX_RUNS];
    int status = 0, done = 0;
    for (int run = 0; run < o.runs && !s_interrupted; run++) {
        if (!o.engine_only) {
            ordo_stub_t *stub = ordo_stub_new("tcp://127.0.0.1:*");
            if (!stub) {
                fprintf(stderr, "ordo-benchmark: cannot start the stub: %s\n", zmq_strerror(errno));
                return 1;
            }
            int rc = s_run(&o, "stub", run, ordo_stub_endpoint(stub), 0, stub, &stub_runs[run]);
            ordo_stub_destroy(&stub);
            if (rc != 0) {
                status = 1;
                break;
            }
        }
        if (!o.stub_only && !s_interrupted) {
            s_server_t srv = {0};
            const char *endpoint = o.server;
            if (o.spawn) {
                if (s_spawn(&o, &srv) != 0) {
                    s_stop_server(&o, &srv);
                    status = 1;
                    break;
                }
                endpoint = srv.endpoint;
            }
            int rc = s_run(&o, "engine", run, endpoint, srv.pid, NULL, &eng_runs[run]);
            if (o.spawn && s_stop_server(&o, &srv) != 0)
                rc = -1;
            if (rc != 0) {
                status = 1;
                break;
            }
        }
        if (s_interrupted)
            break; /* a run cut short is not reported */
        done++;
    }
    if (s_interrupted && !status)
        fprintf(stderr, "ordo-benchmark: interrupted; %s\n",
                done ? "reporting the runs completed" : "no run completed");
    if (done > 0)
        s_report(&o, target, stub_runs, eng_runs, done);
    return status ? 1 : s_interrupted ? 1 : 0;
}
