/* ordo-admin: looks inside an engine's data folder, offline and read-only
 * (it takes no lock and changes nothing, so it works beside a running
 * engine): the log's segments and frames (`wal info`), every frame and
 * record checked (`wal verify`), events as JSON lines (`wal dump`), and
 * the snapshots (`snapshot info|verify`), the orders' hash chains
 * (`audit`), the order index (`index info`). */
#include "ordo_admin.h"

#include "ordo_codec.h"
#include "ordo_log.h"
#include "ordo_time.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define VERSION "0.2.0"

static void s_usage(FILE *out)
{
    fprintf(out,
            "Usage: ordo-admin [OPTIONS] COMMAND\n"
            "Looks inside an Ordo data folder: read-only, without a lock, so also beside a\n"
            "running engine.\n"
            "\n"
            "Commands:\n"
            "  wal info              segments, frames, events, bytes, compression, time range\n"
            "  wal verify            checks every frame (header, checksum, chain, identity,\n"
            "                        position, decompression) and decodes every event; names the\n"
            "                        file and byte offset of the first fault\n"
            "  wal dump              events as JSON lines, in position order\n"
            "      --from P|TIME     from position P, or from the first event at or after TIME\n"
            "      --to P|TIME       up to position P, or up to TIME\n"
            "      --order ORDER     only this order's events\n"
            "  replay ORDER          the replay debugger: applies the order's events from the\n"
            "                        log one by one and prints what each changed\n"
            "      --to-version N    stop after version N\n"
            "      --until TIME      stop at the last event at or before TIME\n"
            "  replay --all --check  rebuilds every order from the log and compares it with\n"
            "                        the newest snapshot and with a second replay\n"
            "  audit ORDER | --all   recomputes each order's hash chain (PROTOCOL.md 1.1) from\n"
            "                        the log and names the first event that breaks it\n"
            "  snapshot info         every snapshot file: position, orders, size, valid or why not\n"
            "  snapshot verify [FILE]\n"
            "                        checks every snapshot (or FILE) whole and decodes every\n"
            "                        order in it\n"
            "  index info            the order index: how many orders left memory for it, its\n"
            "                        file's size\n"
            "\n"
            "Options:\n"
            "  --data-dir DIR        the engine's data folder (default ./data; ORDO_DATA_DIR)\n"
            "  --json                one JSON object (dump: one event per line) for scripts\n"
            "  --quiet               no progress lines on stderr\n"
            "  --help, --version\n"
            "\n"
            "TIME: ISO-8601 (2026-12-05T14:35:00Z, UTC unless it has an offset), HH:MM[:SS]\n"
            "today in UTC, or microseconds since the epoch.\n"
            "\n"
            "Exit status: 0 sound, 1 damage found (the output says where), 2 usage,\n"
            "3 the data folder cannot be read.\n");
}

void admin_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("ordo-admin: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

bool admin_decode_event(const void *data, size_t len, uint64_t position, ordo_event_t *event)
{
    return ordo_event_decode_record(data, len, position, event) == 0 && event->order_id.len >= 1 &&
           event->order_id.len <= ORDO_ORDER_ID_MAX;
}

void admin_print_text(FILE *out, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f && c != '\\')
            fputc(c, out);
        else
            fprintf(out, "\\x%02x", c);
    }
}

const char *admin_count(uint64_t n, char buf[32])
{
    char digits[24];
    int len = snprintf(digits, sizeof digits, "%" PRIu64, n), j = 0;
    for (int i = 0; i < len; i++) {
        if (i && (len - i) % 3 == 0)
            buf[j++] = ',';
        buf[j++] = digits[i];
    }
    buf[j] = '\0';
    return buf;
}

const char *admin_bytes(uint64_t n, char buf[32])
{
    static const char *const units[] = {"bytes", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)n;
    int u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(buf, 32, "%" PRIu64 " bytes", n);
    else
        snprintf(buf, 32, "%.1f %s", v, units[u]);
    return buf;
}

void admin_wal_dir(const admin_opts_t *o, char *buf, size_t size)
{
    snprintf(buf, size, "%s/wal", o->data_dir);
}

int admin_log_dir(const admin_opts_t *o, char *dir, size_t size)
{
    admin_wal_dir(o, dir, size);
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        admin_error("%s is not a log folder (is --data-dir right?)", dir);
        return ADMIN_CANNOT;
    }
    return ADMIN_OK;
}

void admin_snapshot_dir(const admin_opts_t *o, char *buf, size_t size)
{
    snprintf(buf, size, "%s/snapshots", o->data_dir);
}

/* --from / --to: a position (digits) or a TIME. */
static bool s_bound(const char *arg, bool *has_pos, uint64_t *pos, bool *has_time, int64_t *us)
{
    char *end;
    if (*arg >= '0' && *arg <= '9' && strlen(arg) <= 19) {
        unsigned long long v = strtoull(arg, &end, 10);
        if (*end == '\0') {
            *has_pos = true;
            *pos = v;
            return true;
        }
    }
    if (!ordo_time_parse(arg, us))
        return false;
    *has_time = true;
    return true;
}

/* Log lines from the libraries (a snapshot found invalid, ...) go to
 * stderr as usual, unless a command catches them. */
int main(int argc, char **argv)
{
    admin_opts_t o = {.data_dir = getenv("ORDO_DATA_DIR")};
    if (!o.data_dir || !*o.data_dir)
        o.data_dir = "./data";
    o.progress = isatty(STDERR_FILENO);
    static const struct option opts[] = {{"data-dir", required_argument, 0, 'd'},
                                         {"json", no_argument, 0, 'j'},
                                         {"quiet", no_argument, 0, 'q'},
                                         {"from", required_argument, 0, 'f'},
                                         {"to", required_argument, 0, 't'},
                                         {"order", required_argument, 0, 'o'},
                                         {"all", no_argument, 0, 'a'},
                                         {"to-version", required_argument, 0, 'v'},
                                         {"until", required_argument, 0, 'u'},
                                         {"check", no_argument, 0, 'c'},
                                         {"help", no_argument, 0, 'h'},
                                         {"version", no_argument, 0, 'V'},
                                         {0, 0, 0, 0}};
    int c;
    opterr = 0;
    bool dump_opts = false, all = false, replay_opts = false, has_until = false, check = false;
    int64_t until_us = 0;
    uint32_t to_version = 0;
    while ((c = getopt_long(argc, argv, ":hj", opts, NULL)) != -1) {
        switch (c) {
        case 'd': o.data_dir = optarg; break;
        case 'j': o.json = true; break;
        case 'q': o.progress = false; break;
        case 'f':
        case 't':
            dump_opts = true;
            if (!(c == 'f' ? s_bound(optarg, &o.has_from_pos, &o.from_pos, &o.has_from_time,
                                     &o.from_us)
                           : s_bound(optarg, &o.has_to_pos, &o.to_pos, &o.has_to_time,
                                     &o.to_us))) {
                admin_error("--%s wants a position or a TIME, not \"%s\"; try --help",
                            c == 'f' ? "from" : "to", optarg);
                return ADMIN_USAGE;
            }
            break;
        case 'o':
            dump_opts = true;
            o.order_id = optarg;
            break;
        case 'a': all = true; break;
        case 'c': check = true; break;
        case 'v': {
            char *end;
            unsigned long v = strtoul(optarg, &end, 10);
            if (*optarg < '1' || *optarg > '9' || *end || v > 255) {
                admin_error("--to-version wants a version from 1, not \"%s\"", optarg);
                return ADMIN_USAGE;
            }
            to_version = (uint32_t)v;
            replay_opts = true;
            break;
        }
        case 'u':
            if (!ordo_time_parse(optarg, &until_us)) {
                admin_error("--until wants a TIME, not \"%s\"; try --help", optarg);
                return ADMIN_USAGE;
            }
            has_until = replay_opts = true;
            break;
        case 'h': s_usage(stdout); return 0;
        case 'V': printf("ordo-admin %s\n", VERSION); return 0;
        case ':': admin_error("%s needs a value; try --help", argv[optind - 1]); return ADMIN_USAGE;
        default: admin_error("unknown option \"%s\"; try --help", argv[optind - 1]); return ADMIN_USAGE;
        }
    }
    if (optind < argc && !strcmp(argv[optind], "replay") && (all || check)) {
        if (!all || !check || replay_opts || dump_opts || argc - optind != 1) {
            admin_error("replay --all goes with --check alone; try --help");
            return ADMIN_USAGE;
        }
        return admin_replay_check(&o);
    }
    if (check) {
        admin_error("--check goes with replay --all; try --help");
        return ADMIN_USAGE;
    }
    if (optind < argc && !strcmp(argv[optind], "replay")) {
        if (dump_opts || all || argc - optind != 2 || (to_version && has_until)) {
            admin_error("replay takes one ORDER, and --to-version N or --until TIME; try --help");
            return ADMIN_USAGE;
        }
        return admin_replay(&o, argv[optind + 1], to_version, has_until, until_us);
    }
    if (replay_opts) {
        admin_error("--to-version and --until go with replay; try --help");
        return ADMIN_USAGE;
    }
    if (optind < argc && !strcmp(argv[optind], "audit")) {
        int rest = argc - optind - 1;
        if (dump_opts || (all ? rest != 0 : rest != 1)) {
            admin_error("audit takes one ORDER or --all; try --help");
            return ADMIN_USAGE;
        }
        return admin_audit(&o, all ? NULL : argv[optind + 1]);
    }
    if (all) {
        admin_error("--all goes with audit; try --help");
        return ADMIN_USAGE;
    }
    if (argc - optind < 2) {
        admin_error("missing command; try --help");
        return ADMIN_USAGE;
    }
    const char *what = argv[optind], *verb = argv[optind + 1];
    const char *file = argc - optind == 3 ? argv[optind + 2] : NULL;
    bool dump = !strcmp(what, "wal") && !strcmp(verb, "dump");
    bool snap_verify = !strcmp(what, "snapshot") && !strcmp(verb, "verify");
    if (argc - optind > (snap_verify ? 3 : 2)) {
        admin_error("unexpected argument \"%s\"; try --help", argv[argc - 1]);
        return ADMIN_USAGE;
    }
    if (dump_opts && !dump) {
        admin_error("--from, --to and --order go with wal dump; try --help");
        return ADMIN_USAGE;
    }
    if (!strcmp(what, "wal")) {
        if (!strcmp(verb, "info"))
            return admin_wal_info(&o);
        if (!strcmp(verb, "verify"))
            return admin_wal_verify(&o);
        if (dump)
            return admin_wal_dump(&o);
    } else if (!strcmp(what, "snapshot")) {
        if (!strcmp(verb, "info"))
            return admin_snapshot_info(&o);
        if (snap_verify)
            return admin_snapshot_verify(&o, file);
    } else if (!strcmp(what, "index") && !strcmp(verb, "info")) {
        return admin_index_info(&o);
    }
    admin_error("unknown command \"%s %s\"; try --help", what, verb);
    return ADMIN_USAGE;
}
