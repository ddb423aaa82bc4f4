/* ordo-microbench: single-thread figures for the foundation, as medians of
 * several runs: the id hash (ordo_hash64: shards, partitions, event ids),
 * codec encode+decode of order events, log append with fsync
 * always at batch sizes 1, 64 and 1024 next to a bare write+fdatasync loop
 * of the same bytes, full replay (read + decompress + decode + apply), and
 * bytes per event on disk over whole order lifecycles. A program, not a
 * test: run it on a quiet machine. */
#include "ordo_clock.h"
#include "ordo_codec.h"
#include "ordo_error.h"
#include "ordo_hash.h"
#include "ordo_drive.h"
#include "ordo_engine.h"
#include "ordo_log.h"
#include "ordo_state.h"
#include "ordo_workload.h"

#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_RUNS 31

typedef struct {
    long events;
    int runs;
    const char *dir;
    bool json;
    bool keep;
    const char *only; /* NULL: everything; else codec, append or replay */
    bool uuid4;
} s_opts_t;

/* Encoded events of a generated log, back to back, with their ends. */
typedef struct {
    char *bytes;
    size_t *ends;
    size_t count;
} s_blobs_t;

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

static void s_rm_log(const char *dir)
{
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "ordo-microbench: could not remove %s\n", dir);
}

static ordo_wal_t *s_open(const char *dir, ordo_sync_mode_t mode)
{
    ordo_wal_options_t o = {.dir = dir, .sync_mode = mode};
    ordo_wal_recovery_t rep;
    ordo_wal_t *wal = NULL;
    int rc = ordo_wal_open(&o, &wal, &rep);
    if (rc != 0) {
        fprintf(stderr, "ordo-microbench: cannot open log %s: %s\n", dir, ordo_strerror(rc));
        exit(1);
    }
    return wal;
}

/* Generates a log through the engine itself (ordo_engine.h, in this
 * process; requests over inproc://, fsync never), into `data_dir`.
 * IN_FLIGHT orders interleave, as in a real day (at 116 events/s and
 * ~40-minute lives, some 50k orders are open at once), so one order's
 * events rarely share a frame. A warm-up of 6 commands per in-flight
 * order comes first, so the measured `events` have the steady mix of
 * whole lives; bytes are counted for those only. */
#define IN_FLIGHT 50000
static void s_generate(const char *data_dir, long events, bool uuid4, uint64_t *bytes_on_disk,
                       uint64_t *raw_bytes)
{
    s_rm_log(data_dir);
    ordo_engine_options_t eo = {0};
    ordo_config_defaults(&eo.cfg);
    snprintf(eo.cfg.data_dir, sizeof eo.cfg.data_dir, "%s", data_dir);
    snprintf(eo.cfg.bind, sizeof eo.cfg.bind, "inproc://ordo-microbench");
    snprintf(eo.cfg.pub, sizeof eo.cfg.pub, "inproc://ordo-microbench-events");
    eo.cfg.fsync_mode = ORDO_SYNC_NEVER;
    eo.cfg.snapshot_every = 0;
    ordo_engine_t *engine = NULL;
    ordo_workload_t *work = ordo_workload_new(42, IN_FLIGHT);
    if (!work || ordo_engine_start(&eo, &engine) != 0) {
        fprintf(stderr, "ordo-microbench: cannot start the engine in %s\n", data_dir);
        exit(1);
    }
    if (uuid4)
        ordo_workload_use_uuid4(work);
    ordo_drive_options_t d = {.zmq_ctx = ordo_engine_zmq_context(engine),
                              .endpoint = eo.cfg.bind,
                              .window = 4096,
                              .timeout_ms = 60000};
    long warmup = 6L * IN_FLIGHT, total = warmup + events, done = 0;
    uint64_t warm_bytes = 0, warm_head = 0;
    while (done < total) {
        long part = done < warmup ? warmup - done : total - done;
        part = part > 250000 ? 250000 : part;
        ordo_drive_report_t rep;
        if (ordo_drive(&d, work, (uint64_t)part, &rep) != 0 || rep.ok != rep.sent) {
            fprintf(stderr, "ordo-microbench: %llu of %llu workload commands refused\n",
                    (unsigned long long)(rep.sent - rep.ok), (unsigned long long)rep.sent);
            exit(1);
        }
        done += part;
        if (done == warmup) {
            ordo_engine_log_stats(engine, NULL, NULL, &warm_bytes);
            warm_head = ordo_engine_head(engine);
        }
        fprintf(stderr, "  generated %ld of %ld events\n", done, total);
    }
    ordo_engine_log_stats(engine, NULL, NULL, bytes_on_disk);
    *bytes_on_disk -= warm_bytes;
    if (ordo_engine_stop(engine) != 0)
        exit(1); /* the log line says why */
    ordo_engine_destroy(&engine);
    ordo_workload_destroy(&work);

    char wal_dir[1100];
    snprintf(wal_dir, sizeof wal_dir, "%s/wal", data_dir);
    ordo_wal_t *wal = s_open(wal_dir, ORDO_SYNC_NEVER);
    *raw_bytes = 0;
    ordo_wal_reader_t *rd;
    ordo_wal_reader_new(wal, warm_head + 1, &rd);
    uint64_t pos;
    const void *data;
    size_t len;
    while (ordo_wal_reader_next(rd, &pos, &data, &len) == 1)
        *raw_bytes += len;
    ordo_wal_reader_destroy(&rd);
    ordo_wal_destroy(&wal);
}

/* Reads up to `max` records of the log, in the log form (record = true)
 * or converted to the wire form. */
static void s_load(const char *dir, size_t max, bool record, s_blobs_t *out)
{
    ordo_wal_t *wal = s_open(dir, ORDO_SYNC_NEVER);
    ordo_wal_reader_t *rd;
    ordo_wal_reader_new(wal, 1, &rd);
    msgpack_sbuffer buf;
    msgpack_packer pk;
    msgpack_sbuffer_init(&buf);
    msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
    out->ends = malloc(max * sizeof *out->ends);
    out->count = 0;
    ordo_event_t *ev = malloc(sizeof *ev);
    uint64_t pos;
    const void *data;
    size_t len;
    while (out->count < max && ordo_wal_reader_next(rd, &pos, &data, &len) == 1) {
        if (record) {
            msgpack_sbuffer_write(&buf, data, len);
        } else {
            ordo_event_decode_record(data, len, pos, ev);
            ordo_event_pack(&pk, ev);
        }
        out->ends[out->count++] = buf.size;
    }
    out->bytes = msgpack_sbuffer_release(&buf);
    msgpack_sbuffer_destroy(&buf);
    free(ev);
    ordo_wal_reader_destroy(&rd);
    ordo_wal_destroy(&wal);
}

/* Decodes and re-encodes every blob; returns events/s. */
static double s_codec_run(const s_blobs_t *b, bool record)
{
    ordo_event_t *ev = malloc(sizeof *ev);
    msgpack_sbuffer buf;
    msgpack_packer pk;
    msgpack_sbuffer_init(&buf);
    msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
    uint64_t t0 = ordo_mono_ns();
    size_t start = 0, bad = 0;
    for (size_t i = 0; i < b->count; i++) {
        const char *p = b->bytes + start;
        size_t n = b->ends[i] - start;
        start = b->ends[i];
        int rc = record ? ordo_event_decode_record(p, n, i + 1, ev) : ordo_event_decode(p, n, ev);
        bad += rc != 0;
        msgpack_sbuffer_clear(&buf);
        if (record)
            ordo_event_pack_record(&pk, ev);
        else
            ordo_event_pack(&pk, ev);
    }
    double secs = (double)(ordo_mono_ns() - t0) / 1e9;
    msgpack_sbuffer_destroy(&buf);
    free(ev);
    if (bad) {
        fprintf(stderr, "ordo-microbench: %zu events failed to decode\n", bad);
        exit(1);
    }
    return (double)b->count / secs;
}

typedef struct {
    double events_per_s, fsyncs_per_s, bare_events_per_s, bytes_per_frame;
} s_append_t;

/* Appends `frames` frames of `batch` records with fsync always, then
 * writes the same bytes with a bare pwrite+fdatasync loop. */
static s_append_t s_append_run(const char *dir, const s_blobs_t *recs, size_t batch, size_t frames)
{
    s_append_t r = {0};
    s_rm_log(dir);
    ordo_wal_t *wal = s_open(dir, ORDO_SYNC_ALWAYS);
    ordo_wal_rec_t *rv = malloc(batch * sizeof *rv);
    size_t next = 0;
    uint64_t t0 = ordo_mono_ns();
    for (size_t f = 0; f < frames; f++) {
        for (size_t i = 0; i < batch; i++, next = (next + 1) % recs->count) {
            size_t start = next ? recs->ends[next - 1] : 0;
            rv[i] = (ordo_wal_rec_t){recs->bytes + start, recs->ends[next] - start};
        }
        uint64_t first;
        if (ordo_wal_append(wal, rv, batch, &first) != 0) {
            fprintf(stderr, "ordo-microbench: append failed\n");
            exit(1);
        }
    }
    double secs = (double)(ordo_mono_ns() - t0) / 1e9;
    uint64_t nframes, fsyncs, bytes;
    ordo_wal_stats(wal, &nframes, &fsyncs, &bytes);
    r.events_per_s = (double)(batch * frames) / secs;
    r.fsyncs_per_s = (double)fsyncs / secs;
    r.bytes_per_frame = (double)bytes / (double)nframes;
    ordo_wal_destroy(&wal);
    free(rv);

    /* The same bytes, frame by frame, into a preallocated file. */
    char path[1100];
    snprintf(path, sizeof path, "%s/bare.dat", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    size_t chunk = (size_t)r.bytes_per_frame;
    char *junk = malloc(chunk);
    for (size_t i = 0; i < chunk; i++)
        junk[i] = (char)(i * 131);
    if (fd < 0 || fallocate(fd, 0, 0, (off_t)(chunk * frames + 4096)) != 0)
        fprintf(stderr, "ordo-microbench: bare file %s not preallocated\n", path);
    fdatasync(fd);
    t0 = ordo_mono_ns();
    for (size_t f = 0; f < frames; f++) {
        if (pwrite(fd, junk, chunk, (off_t)(f * chunk)) != (ssize_t)chunk || fdatasync(fd) != 0) {
            fprintf(stderr, "ordo-microbench: bare write failed\n");
            exit(1);
        }
    }
    secs = (double)(ordo_mono_ns() - t0) / 1e9;
    r.bare_events_per_s = (double)(batch * frames) / secs;
    close(fd);
    free(junk);
    s_rm_log(dir);
    return r;
}

/* Full replay of the generated log into a fresh registry; events/s. */
static double s_replay_run(const char *dir, uint64_t *events)
{
    ordo_wal_t *wal = s_open(dir, ORDO_SYNC_NEVER);
    ordo_registry_t *reg = ordo_registry_new();
    ordo_state_recovery_t rep;
    if (ordo_state_recover(reg, wal, NULL, &rep) != 0) {
        fprintf(stderr, "ordo-microbench: replay failed\n");
        exit(1);
    }
    *events = rep.events_replayed;
    ordo_registry_destroy(&reg);
    ordo_wal_destroy(&wal);
    return (double)rep.events_replayed / ((double)rep.elapsed_us / 1e6);
}

/* Nanoseconds per ordo_hash64 of an order id (1M ids of 10 to 36 bytes,
 * hashed 20 times over). */
static double s_hash_run(void)
{
    enum { N = 1000000, ROUNDS = 20 };
    char *ids = malloc((size_t)N * 40);
    uint8_t *lens = malloc(N);
    if (!ids || !lens) {
        fprintf(stderr, "ordo-microbench: out of memory\n");
        exit(1);
    }
    for (int i = 0; i < N; i++) {
        int n = snprintf(ids + (size_t)i * 40, 40, "ord-%0*d", 6 + i % 27, i);
        lens[i] = (uint8_t)(n < 40 ? n : 39);
    }
    uint64_t sink = 0, t0 = ordo_mono_ns();
    for (int r = 0; r < ROUNDS; r++)
        for (int i = 0; i < N; i++)
            sink += ordo_hash64(ids + (size_t)i * 40, lens[i], (uint64_t)r);
    uint64_t took = ordo_mono_ns() - t0;
    free(ids);
    free(lens);
    if (sink == 42) /* keeps the loop */
        fprintf(stderr, " ");
    return (double)took / ((double)N * ROUNDS);
}

static void s_usage(FILE *out)
{
    fprintf(out, "Usage: ordo-microbench [OPTIONS]\n"
                 "Single-thread benchmarks of Ordo's codec, log and replay (medians of runs).\n"
                 "\n"
                 "  --events N   events in the generated log (default 1000000)\n"
                 "  --runs N     runs per figure, median reported (default 5, max 31)\n"
                 "  --dir DIR    scratch folder on the disk to measure (default ./bench-data)\n"
                 "  --json       print the figures as one JSON object\n"
                 "  --keep       keep the generated data folder in DIR/replay-data (its log in wal/)\n"
                 "  --only PART  run only hash, codec, append or replay (after generating the log)\n"
                 "  --uuid4      request and correlation ids are UUIDv4 (default UUIDv7)\n"
                 "  --help, --version\n");
}

int main(int argc, char **argv)
{
    s_opts_t o = {.events = 1000000, .runs = 5, .dir = "./bench-data", .json = false};
    static const struct option lopts[] = {
        {"events", required_argument, 0, 'e'}, {"runs", required_argument, 0, 'r'},
        {"dir", required_argument, 0, 'd'},    {"json", no_argument, 0, 'j'},
        {"keep", no_argument, 0, 'k'},         {"only", required_argument, 0, 'o'},
        {"uuid4", no_argument, 0, 'u'},        {"help", no_argument, 0, 'h'},
        {"version", no_argument, 0, 'V'},      {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", lopts, NULL)) != -1) {
        switch (c) {
        case 'e': o.events = atol(optarg); break;
        case 'r': o.runs = atoi(optarg); break;
        case 'd': o.dir = optarg; break;
        case 'j': o.json = true; break;
        case 'k': o.keep = true; break;
        case 'o': o.only = optarg; break;
        case 'u': o.uuid4 = true; break;
        case 'h': s_usage(stdout); return 0;
        case 'V': printf("ordo-microbench 0.1.0\n"); return 0;
        default: fprintf(stderr, "ordo-microbench: unknown option; try --help\n"); return 2;
        }
    }
    if (o.events < 10000 || o.runs < 1 || o.runs > MAX_RUNS) {
        fprintf(stderr, "ordo-microbench: --events must be >= 10000 and --runs 1..%d\n", MAX_RUNS);
        return 2;
    }
    ordo_log_set_level(ORDO_LOG_WARN);
    double v_hash[MAX_RUNS];
    char gen_data[1024], gen_dir[1100], app_dir[1024];
    snprintf(gen_data, sizeof gen_data, "%s/replay-data", o.dir);
    snprintf(gen_dir, sizeof gen_dir, "%s/wal", gen_data);
    snprintf(app_dir, sizeof app_dir, "%s/append-log", o.dir);

    fprintf(stderr, "generating %ld events of order lifecycles...\n", o.events);
    uint64_t disk_bytes, raw_bytes;
    s_generate(gen_data, o.events, o.uuid4, &disk_bytes, &raw_bytes);

    if (o.only && strcmp(o.only, "codec") && strcmp(o.only, "append") &&
        strcmp(o.only, "replay") && strcmp(o.only, "hash")) {
        fprintf(stderr, "ordo-microbench: --only takes hash, codec, append or replay\n");
        return 2;
    }
#define RUN(part) (!o.only || !strcmp(o.only, part))
    double hash_ns = 0;
    if (RUN("hash")) {
        fprintf(stderr, "hash...\n");
        for (int i = 0; i < o.runs; i++)
            v_hash[i] = s_hash_run();
        hash_ns = s_median(v_hash, o.runs);
    }
    s_blobs_t wire, rec;
    size_t codec_n = o.events < 200000 ? (size_t)o.events : 200000;
    s_load(gen_dir, codec_n, false, &wire);
    s_load(gen_dir, codec_n, true, &rec);
    double v[MAX_RUNS], codec_wire = 0, codec_rec = 0;
    if (RUN("codec")) {
        fprintf(stderr, "codec...\n");
        for (int i = 0; i < o.runs; i++)
            v[i] = s_codec_run(&wire, false);
        codec_wire = s_median(v, o.runs);
        for (int i = 0; i < o.runs; i++)
            v[i] = s_codec_run(&rec, true);
        codec_rec = s_median(v, o.runs);
    }

    static const size_t batches[3] = {1, 64, 1024};
    static const size_t frames[3] = {2000, 400, 60};
    s_append_t app[3] = {{0}};
    for (int b = 0; b < 3 && RUN("append"); b++) {
        fprintf(stderr, "append, batch %zu...\n", batches[b]);
        double e[MAX_RUNS], f[MAX_RUNS], bare[MAX_RUNS], ratio[MAX_RUNS];
        for (int i = 0; i < o.runs; i++) {
            s_append_t r = s_append_run(app_dir, &rec, batches[b], frames[b]);
            e[i] = r.events_per_s;
            f[i] = r.fsyncs_per_s;
            bare[i] = r.bare_events_per_s;
            ratio[i] = r.bare_events_per_s / r.events_per_s;
            app[b].bytes_per_frame = r.bytes_per_frame;
        }
        app[b].events_per_s = s_median(e, o.runs);
        app[b].fsyncs_per_s = s_median(f, o.runs);
        app[b].bare_events_per_s = s_median(bare, o.runs);
        (void)ratio;
    }

    uint64_t replayed = 0;
    double replay = 0;
    if (RUN("replay")) {
        fprintf(stderr, "replay...\n");
        for (int i = 0; i < o.runs; i++)
            v[i] = s_replay_run(gen_dir, &replayed);
        replay = s_median(v, o.runs);
    }
    double per_event = (double)disk_bytes / (double)o.events;
    double raw_per_event = (double)raw_bytes / (double)o.events;

    if (o.json) {
        printf("{\"events\":%ld,\"runs\":%d,\"hash_ns\":%.2f,\"codec_wire_events_per_s\":%.0f,"
               "\"codec_log_events_per_s\":%.0f,",
               o.events, o.runs, hash_ns, codec_wire, codec_rec);
        for (int b = 0; b < 3; b++)
            printf("\"append_batch_%zu\":{\"events_per_s\":%.0f,\"fsyncs_per_s\":%.0f,"
                   "\"bare_events_per_s\":%.0f,\"bytes_per_frame\":%.0f},",
                   batches[b], app[b].events_per_s, app[b].fsyncs_per_s, app[b].bare_events_per_s,
                   app[b].bytes_per_frame);
        printf("\"replay_events_per_s\":%.0f,\"bytes_per_event\":%.1f,"
               "\"raw_bytes_per_event\":%.1f}\n",
               replay, per_event, raw_per_event);
    } else {
        printf("ordo-microbench: %ld events, median of %d runs\n", o.events, o.runs);
        if (RUN("hash"))
            printf("  id hash (ordo_hash64)            %12.2f ns per id of 10-36 bytes\n",
                   hash_ns);
        if (RUN("codec")) {
            printf("  codec encode+decode, wire form   %12.0f events/s\n", codec_wire);
            printf("  codec encode+decode, log form    %12.0f events/s\n", codec_rec);
        }
        for (int b = 0; b < 3; b++)
            if (app[b].events_per_s > 0)
                printf("  append fsync=always batch %-5zu  %12.0f events/s %8.0f fsyncs/s"
                       "  (bare write+fdatasync %.0f events/s, %.2fx)\n",
                       batches[b], app[b].events_per_s, app[b].fsyncs_per_s,
                       app[b].bare_events_per_s, app[b].bare_events_per_s / app[b].events_per_s);
        if (RUN("replay"))
            printf("  full replay                      %12.0f events/s (%llu events)\n", replay,
                   (unsigned long long)replayed);
        printf("  on disk                          %12.1f bytes/event (%.1f raw MessagePack)\n",
               per_event, raw_per_event);
    }
    free(wire.bytes);
    free(wire.ends);
    free(rec.bytes);
    free(rec.ends);
    if (!o.keep)
        s_rm_log(o.dir);
    return 0;
}
