/* ordo-cli: every command and query of the protocol from a shell, on top
 * of libordo. Readable output by default, the reply as compact JSON with
 * --json (one event per line for tail). Results go to stdout, errors to
 * stderr. Exit status: 0 done; 1 the engine refused (its code and message
 * on stderr); 2 usage; 3 no answer (timeout, transport, a reply that is
 * not one). The read side's queries (ordo-projector) live in
 * ordo_cli_projector.c: main hands their command words over to it. */
#include "ordo.h"
#include "ordo_cli.h"
#include "ordo_json.h"
#include "ordo_limits.h"
#include "ordo_number.h"
#include "ordo_time.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>


static volatile sig_atomic_t s_stop;

static void s_on_signal(int sig)
{
    (void)sig;
    s_stop = 1;
}

/* Options that only some commands take, as bits. */
enum {
    O_EXPECTED = 1 << 0,
    O_REQUEST_ID = 1 << 1,
    O_ACTOR = 1 << 2,
    O_CORRELATION = 1 << 3,
    O_META = 1 << 4,
    O_USER = 1 << 5,
    O_RESTAURANT = 1 << 6,
    O_ITEM = 1 << 7,
    O_ADDRESS = 1 << 8,
    O_MINUTES = 1 << 9,
    O_COURIER = 1 << 10,
    O_REASON = 1 << 11,
    O_AS_OF_VERSION = 1 << 12,
    O_AT = 1 << 13,
    O_FROM_VERSION = 1 << 14,
    O_LIMIT = 1 << 15,
    O_FROM = 1 << 16,
    O_TYPE = 1 << 17,
    O_COUNT = 1 << 18,
    O_CURRENCY = 1 << 19,
};
#define O_COMMAND (O_EXPECTED | O_REQUEST_ID | O_ACTOR | O_CORRELATION | O_META)

typedef struct {
    const char *name;  /* on the command line */
    const char *type;  /* on the wire; NULL for tail */
    bool order;        /* takes ORDER */
    unsigned options;  /* O_* it accepts */
} s_command_t;

static const s_command_t s_commands[] = {
    {"create", "CreateOrder", true,
     O_COMMAND | O_USER | O_RESTAURANT | O_ITEM | O_ADDRESS | O_CURRENCY},
    {"confirm", "ConfirmOrder", true, O_COMMAND},
    {"start-preparing", "StartPreparing", true, O_COMMAND | O_MINUTES},
    {"ready", "MarkReady", true, O_COMMAND},
    {"pick-up", "PickUp", true, O_COMMAND | O_COURIER},
    {"deliver", "Deliver", true, O_COMMAND},
    {"cancel", "CancelOrder", true, O_COMMAND | O_REASON},
    {"get", "GetOrder", true, O_AS_OF_VERSION | O_AT},
    {"history", "GetHistory", true, O_FROM_VERSION | O_LIMIT},
    {"tail", NULL, false, O_FROM | O_TYPE | O_COUNT},
    {"stats", "Stats", false, 0},
    {"ping", "Ping", false, 0},
    {"partitions", "Partitions", false, 0},
};

static const char *const s_option_names[] = {
    "expected-version", "request-id", "actor",   "correlation-id", "meta",  "user",
    "restaurant",       "item",       "address", "minutes",        "courier", "reason",
    "version",          "at",         "from-version", "limit",     "from",  "type",
    "count",            "currency",
};

typedef struct {
    const char *endpoint;
    const char *pub;
    bool route; /* through the partition map (several endpoints, or --route) */
    bool json;
    int timeout_ms;
    unsigned given; /* O_* seen */
    ordo_client_request_t req;
    ordo_client_item_t items[ORDO_ITEMS_MAX];
    ordo_client_meta_t meta[ORDO_META_CLIENT_MAX];
    char *owned[ORDO_ITEMS_MAX + ORDO_META_CLIENT_MAX]; /* strings split in place */
    size_t n_owned;
    int64_t from;
    const char *type_prefix;
    int64_t count;
    ordo_cli_curve_t curve;
} s_opts_t;

static void s_usage(FILE *out)
{
    fprintf(out,
            "Usage: ordo-cli [OPTIONS] COMMAND [ORDER] [OPTIONS]\n"
            "Sends commands and queries to an Ordo engine, and queries to its projector.\n"
            "\n"
            "Commands:\n"
            "  create ORDER --user N --restaurant N --item SKU:NAME:QTY:PRICE_CENTS ...\n"
            "               --address TEXT [--currency EUR]   (default USD)\n"
            "  confirm ORDER\n"
            "  start-preparing ORDER [--minutes N]\n"
            "  ready ORDER\n"
            "  pick-up ORDER [--courier N]\n"
            "  deliver ORDER\n"
            "  cancel ORDER --reason TEXT\n"
            "  get ORDER [--version N | --at TIME]   state now, after version N, or at TIME\n"
            "                                        (ISO-8601 such as 2025-06-01T12:30:00.5Z,\n"
            "                                        UTC unless it has an offset; HH:MM[:SS]\n"
            "                                        today in UTC; or microseconds since the\n"
            "                                        epoch)\n"
            "  history ORDER [--from-version N] [--limit N]\n"
            "  tail [--from POSITION] [--type PREFIX] [--count N]\n"
            "                                        events from POSITION (default: new ones),\n"
            "                                        gap-filled; until --count events or Ctrl-C\n"
            "  stats\n"
            "  ping\n"
            "  partitions                            the cluster's map: each partition's owner\n"
            "\n");
    ordo_cli_projector_usage(out);
    fprintf(out,
            "\n"
            "Options of the seven commands:\n"
            "  --expected-version N   refuse unless the order is at version N (0: new)\n"
            "  --request-id ID        idempotency key (default: a fresh one)\n"
            "  --actor TEXT, --correlation-id TEXT, --meta KEY=VALUE   event metadata\n"
            "\n"
            "General options:\n"
            "  --endpoint ENDPOINT    requests (default tcp://127.0.0.1:7700; ORDO_ENDPOINT);\n"
            "                         several, separated by commas, route each request to its\n"
            "                         order's owner by the partition map (docs/cluster.md)\n"
            "  --route                route by the partition map from one ENDPOINT too\n"
            "  --pub ENDPOINT         events, for tail (default tcp://127.0.0.1:7701; ORDO_PUB)\n"
            "  --json                 print the reply as JSON (tail: one event per line)\n"
            "  --timeout MS           wait at most MS for an answer (default 5000)\n"
            "  --curve-server FILE    CURVE: the server's public certificate (ORDO_CURVE_SERVER)\n"
            "  --curve-cert FILE      CURVE: this client's secret certificate, whose public key\n"
            "                         the server lets in (ORDO_CURVE_CERT); a server that does\n"
            "                         not let it in answers nothing (exit 3)\n"
            "  --help, --version\n"
            "\n"
            "Exit status: 0 done, 1 the engine or the projector refused, 2 usage,\n"
            "3 no answer.\n");
}

void ordo_cli_curve_init(ordo_cli_curve_t *cv)
{
    memset(cv, 0, sizeof *cv);
    cv->server = getenv("ORDO_CURVE_SERVER");
    cv->cert = getenv("ORDO_CURVE_CERT");
}

int ordo_cli_curve_load(ordo_cli_curve_t *cv)
{
    bool server = cv->server && *cv->server, cert = cv->cert && *cv->cert;
    if (!server && !cert)
        return 0;
    if (server != cert)
        return ordo_cli_usage_error("CURVE needs both --curve-server and --curve-cert (%s is "
                                    "missing)",
                                    server ? "--curve-cert" : "--curve-server");
    char err[600];
    if (ordo_curve_load(&cv->keys, cv->server, cv->cert, err, sizeof err) != 0) {
        fprintf(stderr, "ordo-cli: %s\n", err);
        return EXIT_USAGE;
    }
    cv->opts.curve = &cv->keys;
    return 0;
}

int ordo_cli_usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("ordo-cli: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs("; try --help\n", stderr);
    va_end(ap);
    return EXIT_USAGE;
}


static const char *s_money(int64_t cents, char buf[32])
{
    const char *sign = cents < 0 ? "-" : "";
    uint64_t c = cents < 0 ? (uint64_t)0 - (uint64_t)cents : (uint64_t)cents;
    snprintf(buf, 32, "%s%" PRIu64 ".%02" PRIu64, sign, c / 100, c % 100);
    return buf;
}

/* SKU:NAME:QTY:PRICE_CENTS; NAME may hold colons. */
static bool s_parse_item(s_opts_t *o, const char *arg)
{
    char *s = strdup(arg);
    if (!s)
        return false;
    o->owned[o->n_owned++] = s;
    char *first = strchr(s, ':'), *last = strrchr(s, ':');
    if (!first || last == first)
        return false;
    *last = '\0';
    char *qty = strrchr(s, ':');
    if (qty == first)
        return false;
    *first = '\0';
    *qty = '\0';
    ordo_client_item_t *it = &o->items[o->req.n_items];
    it->sku = s;
    it->name = first + 1;
    if (!ordo_number_parse(qty + 1, INT64_MIN, INT64_MAX, &it->qty) ||
        !ordo_number_parse(last + 1, INT64_MIN, INT64_MAX, &it->price_cents))
        return false;
    o->req.n_items++;
    return true;
}

static bool s_parse_meta(s_opts_t *o, const char *arg)
{
    char *s = strdup(arg);
    if (!s)
        return false;
    o->owned[o->n_owned++] = s;
    char *eq = strchr(s, '=');
    if (!eq || eq == s)
        return false;
    *eq = '\0';
    o->meta[o->req.n_meta++] = (ordo_client_meta_t){.key = s, .sval = eq + 1};
    return true;
}

bool ordo_cli_int(const char *s, int64_t min, int64_t max, int64_t *out)
{
    return ordo_number_parse(s, min, max, out);
}

bool ordo_cli_parse_time(const char *s, int64_t *us)
{
    return ordo_time_parse(s, us);
}

const char *ordo_cli_time(int64_t us, char buf[40])
{
    return ordo_time_format(us, buf);
}

const char *ordo_cli_money(int64_t cents, char buf[32])
{
    return s_money(cents, buf);
}

void ordo_cli_usage(FILE *out)
{
    s_usage(out);
}

/* ---- readable output --------------------------------------------------- */

static const char *s_meta_str(const ordo_client_event_t *ev, const char *key)
{
    for (size_t i = 0; i < ev->n_meta; i++)
        if (!ev->meta[i].is_int && strcmp(ev->meta[i].key, key) == 0)
            return ev->meta[i].sval;
    return NULL;
}

static void s_print_details(const ordo_client_event_t *ev)
{
    char money[32], d[1024] = "";
    size_t n = 0;
    const char *t = ev->type;
#define ADD(...) (n += (size_t)snprintf(d + n, n < sizeof d ? sizeof d - n : 0, __VA_ARGS__))
    if (strcmp(t, "OrderCreated") == 0)
        ADD("user %" PRId64 ", restaurant %" PRId64 ", %zu item%s, total %s, to \"%s\"",
            ev->user_id, ev->restaurant_id, ev->n_items, ev->n_items == 1 ? "" : "s",
            s_money(ev->total_cents, money), ev->delivery_address ? ev->delivery_address : "");
    else if (strcmp(t, "OrderConfirmed") == 0)
        ADD("restaurant %" PRId64, ev->restaurant_id);
    else if (ev->has_estimated_minutes)
        ADD("ready in %" PRId64 " min", ev->estimated_minutes);
    else if (ev->has_courier_id)
        ADD("courier %" PRId64, ev->courier_id);
    else if (strcmp(t, "OrderCancelled") == 0)
        ADD("was %s: \"%s\"", ev->previous_status ? ev->previous_status : "?",
            ev->reason ? ev->reason : "");
    const char *actor = s_meta_str(ev, "actor");
    if (actor)
        ADD("%sby %s", n ? ", " : "", actor);
#undef ADD
    fputs(d, stdout);
}

/* One event per line: position, time, [order,] version, type, details. */
static void s_print_event(const ordo_client_event_t *ev, bool with_order)
{
    char when[40];
    printf("%-6" PRIu64 " %s  ", ev->position, ordo_time_format(ev->timestamp_us, when));
    if (with_order)
        printf("%s ", ev->order_id);
    printf("v%-2u %-20s ", ev->version, ev->type);
    s_print_details(ev);
    putchar('\n');
}

static void s_print_order(const ordo_client_order_t *o)
{
    char money[32], when[40];
    printf("order        %s\n", o->order_id);
    printf("status       %s\n", o->status);
    printf("version      %u\n", o->version);
    printf("user         %" PRId64 "\n", o->user_id);
    printf("restaurant   %" PRId64 "\n", o->restaurant_id);
    for (size_t i = 0; i < o->n_items; i++) {
        const ordo_client_item_t *it = &o->items[i];
        printf("%s %" PRId64 " x %s (%s) at ", i == 0 ? "items       " : "            ",
               it->qty, it->name, it->sku);
        printf("%s\n", s_money(it->price_cents, money));
    }
    printf("total        %s %s\n", s_money(o->total_cents, money), o->currency);
    printf("address      %s\n", o->delivery_address);
    if (o->has_estimated_minutes)
        printf("ready in     %" PRId64 " min\n", o->estimated_minutes);
    if (o->has_courier_id)
        printf("courier      %" PRId64 "\n", o->courier_id);
    if (o->cancel_reason)
        printf("cancelled    %s\n", o->cancel_reason);
    printf("created      %s\n", ordo_time_format(o->created_at_us, when));
    printf("updated      %s\n", ordo_time_format(o->updated_at_us, when));
    if (o->head_hash[0])
        printf("head hash    %s\n", o->head_hash);
}

static void s_print_result(const s_command_t *cmd, const ordo_result_t *res, int64_t rtt_us)
{
    if (res->event && cmd->order) { /* a command */
        printf("%s %s: version %" PRId64 ", position %" PRId64 "%s\n", res->order_id,
               res->event->type, res->version, res->position,
               res->duplicate ? " (duplicate request: the original reply)" : "");
    } else if (res->order) {
        s_print_order(res->order);
    } else if (strcmp(cmd->name, "history") == 0) {
        for (size_t i = 0; i < res->n_events; i++)
            s_print_event(&res->events[i], false);
    } else if (strcmp(cmd->name, "stats") == 0) {
        for (size_t i = 0; i < res->n_stats; i++)
            printf("%-28s %" PRId64 "\n", res->stats[i].name, res->stats[i].value);
    } else if (strcmp(cmd->name, "ping") == 0) {
        printf("pong: head position %" PRId64 ", round trip %.3f ms\n", res->head_position,
               rtt_us / 1000.0);
    } else if (strcmp(cmd->name, "partitions") == 0) {
        for (uint32_t k = 0; k < res->partitions; k++) {
            const ordo_client_owner_t *o = &res->owners[k];
            if (o->endpoint)
                printf("partition %u of %u: %s (events %s, lease revision %" PRIu64 ")%s\n", k,
                       res->partitions, o->endpoint, o->pub[0] ? o->pub : "-", o->revision,
                       k == res->partition ? "  <- answered" : "");
            else
                printf("partition %u of %u: no owner now\n", k, res->partitions);
        }
    }
}

static void s_print_error(const ordo_result_t *res)
{
    fprintf(stderr, "ordo-cli: %s: %s", res->code, res->message);
    if (res->field[0] && !strstr(res->message, res->field))
        fprintf(stderr, " (field %s)", res->field);
    fputc('\n', stderr);
}

static int s_no_answer(const s_opts_t *o, int rc)
{
    if (rc == ORDO_E_TIMEOUT)
        fprintf(stderr, "ordo-cli: no answer from %s within %d ms\n", o->endpoint, o->timeout_ms);
    else
        fprintf(stderr, "ordo-cli: %s (%s)\n", ordo_client_strerror(rc), o->endpoint);
    return rc == ORDO_E_INVALID ? EXIT_USAGE : EXIT_NO_ANSWER;
}

static int64_t s_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- commands ---------------------------------------------------------- */

/* Prints a call's outcome (the reply, the engine's error, or no answer),
 * clears the result and returns the exit status. */
static int s_report(const s_opts_t *o, const s_command_t *cmd, int rc, ordo_result_t *res,
                    int64_t rtt_us)
{
    int status = 0;
    if (rc == 0 && o->json) {
        ordo_json_write(stdout, res->reply, res->reply_len);
        putchar('\n');
    } else if (rc == 0) {
        s_print_result(cmd, res, rtt_us);
    } else if (rc == ORDO_E_PROTOCOL) {
        s_print_error(res);
        status = EXIT_REFUSED;
    } else {
        status = s_no_answer(o, rc);
    }
    ordo_result_clear(res);
    if (fflush(stdout) != 0 && status == 0) {
        fprintf(stderr, "ordo-cli: cannot write the output: %s\n", strerror(errno));
        status = EXIT_NO_ANSWER;
    }
    return status;
}

/* `partitions` with several endpoints: the map from the first that
 * answers (any engine of the cluster has it), each given an even share
 * of the timeout. */
static int s_partitions_any(const s_opts_t *o, const s_command_t *cmd)
{
    size_t n = 1;
    for (const char *p = o->endpoint; *p; p++)
        n += *p == ',';
    int share = o->timeout_ms / (int)n > 200 ? o->timeout_ms / (int)n : 200;
    const char *p = o->endpoint;
    while (*p) {
        size_t len = strcspn(p, ",");
        char endpoint[512];
        snprintf(endpoint, sizeof endpoint, "%.*s", (int)len, p);
        p += len + (p[len] == ',');
        ordo_client_t *c = ordo_client_new_with(endpoint, &o->curve.opts);
        if (!c)
            continue;
        ordo_result_t res = ORDO_RESULT_INIT;
        int rc = ordo_client_call(c, &o->req, share, &res);
        ordo_client_destroy(&c);
        if (rc == 0 || rc == ORDO_E_PROTOCOL)
            return s_report(o, cmd, rc, &res, 0);
        ordo_result_clear(&res);
    }
    return s_no_answer(o, ORDO_E_TIMEOUT);
}

/* Sends the request to the owner of its order's partition (any other to
 * partition 0's). */
static int s_route(const s_opts_t *o, const s_command_t *cmd)
{
    if (strcmp(cmd->name, "partitions") == 0)
        return s_partitions_any(o, cmd);
    ordo_router_t *r = ordo_router_new(o->endpoint, &o->curve.opts);
    if (!r) {
        fprintf(stderr, "ordo-cli: cannot use endpoints \"%s\": %s\n", o->endpoint,
                strerror(errno));
        return EXIT_USAGE;
    }
    ordo_result_t res = ORDO_RESULT_INIT;
    int64_t t0 = s_now_us();
    int rc = ordo_router_call(r, &o->req, o->timeout_ms, &res);
    int status = s_report(o, cmd, rc, &res, s_now_us() - t0);
    ordo_router_destroy(&r);
    return status;
}

static int s_call(const s_opts_t *o, const s_command_t *cmd)
{
    if (o->route)
        return s_route(o, cmd);
    ordo_client_t *c = ordo_client_new_with(o->endpoint, &o->curve.opts);
    if (!c) {
        fprintf(stderr, "ordo-cli: cannot use endpoint \"%s\": %s\n", o->endpoint,
                strerror(errno));
        return EXIT_USAGE;
    }
    ordo_client_set_send_timeout(c, o->timeout_ms);
    ordo_result_t res = ORDO_RESULT_INIT;
    int64_t t0 = s_now_us();
    int rc = ordo_client_call(c, &o->req, o->timeout_ms, &res);
    int status = s_report(o, cmd, rc, &res, s_now_us() - t0);
    ordo_client_destroy(&c);
    return status;
}

static int s_tail(s_opts_t *o)
{
    /* Check the engine answers (and learn the head) before following. */
    ordo_client_t *c = ordo_client_new_with(o->endpoint, &o->curve.opts);
    if (!c) {
        fprintf(stderr, "ordo-cli: cannot use endpoint \"%s\": %s\n", o->endpoint,
                strerror(errno));
        return EXIT_USAGE;
    }
    ordo_result_t res = ORDO_RESULT_INIT;
    int rc = ordo_client_call(c, &(ordo_client_request_t){.type = "Ping"}, o->timeout_ms, &res);
    int64_t head = res.head_position;
    if (rc == ORDO_E_PROTOCOL)
        s_print_error(&res);
    ordo_result_clear(&res);
    ordo_client_destroy(&c);
    if (rc == ORDO_E_PROTOCOL)
        return EXIT_REFUSED;
    if (rc != 0)
        return s_no_answer(o, rc);
    uint64_t from = o->given & O_FROM ? (uint64_t)o->from : (uint64_t)head + 1;
    ordo_sub_t *sub = ordo_sub_new_with(o->endpoint, o->pub, o->type_prefix, from, &o->curve.opts);
    if (!sub) {
        fprintf(stderr, "ordo-cli: cannot subscribe to \"%s\": %s\n", o->pub, strerror(errno));
        return EXIT_USAGE;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    int status = 0;
    int64_t seen = 0;
    while (!s_stop && (!(o->given & O_COUNT) || seen < o->count)) {
        const ordo_client_event_t *ev;
        rc = ordo_sub_next(sub, 200, &ev);
        if (rc == ORDO_E_TIMEOUT)
            continue;
        if (rc != 0) {
            status = s_no_answer(o, rc);
            break;
        }
        seen++;
        if (o->json) {
            ordo_json_write(stdout, ev->raw, ev->raw_len);
            putchar('\n');
        } else {
            s_print_event(ev, true);
        }
        if (ferror(stdout)) {
            status = EXIT_NO_ANSWER;
            break;
        }
    }
    ordo_sub_destroy(&sub);
    return status;
}

static int s_main(int argc, char **argv, s_opts_t *o)
{
    o->endpoint = getenv("ORDO_ENDPOINT");
    if (!o->endpoint || !*o->endpoint)
        o->endpoint = ORDO_DEFAULT_ENDPOINT;
    o->pub = getenv("ORDO_PUB");
    if (!o->pub || !*o->pub)
        o->pub = ORDO_DEFAULT_PUB_ENDPOINT;
    o->timeout_ms = ORDO_DEFAULT_TIMEOUT_MS;
    o->req.items = o->items;
    o->req.meta = o->meta;
    ordo_cli_curve_init(&o->curve);

    enum { OPT_BASE = 256 }; /* option codes: OPT_BASE + bit index */
    static const struct option opts[] = {
        {"endpoint", required_argument, 0, 'E'},
        {"route", no_argument, 0, 'R'},
        {"pub", required_argument, 0, 'P'},
        {"json", no_argument, 0, 'j'},
        {"timeout", required_argument, 0, 'T'},
        {"curve-server", required_argument, 0, 'k'},
        {"curve-cert", required_argument, 0, 'c'},
        {"help", no_argument, 0, 'h'},
        {"version", optional_argument, 0, 'V'},
        {"as-of-version", required_argument, 0, OPT_BASE + 12},
        {"expected-version", required_argument, 0, OPT_BASE + 0},
        {"request-id", required_argument, 0, OPT_BASE + 1},
        {"actor", required_argument, 0, OPT_BASE + 2},
        {"correlation-id", required_argument, 0, OPT_BASE + 3},
        {"meta", required_argument, 0, OPT_BASE + 4},
        {"user", required_argument, 0, OPT_BASE + 5},
        {"restaurant", required_argument, 0, OPT_BASE + 6},
        {"item", required_argument, 0, OPT_BASE + 7},
        {"address", required_argument, 0, OPT_BASE + 8},
        {"minutes", required_argument, 0, OPT_BASE + 9},
        {"courier", required_argument, 0, OPT_BASE + 10},
        {"reason", required_argument, 0, OPT_BASE + 11},
        {"at", required_argument, 0, OPT_BASE + 13},
        {"from-version", required_argument, 0, OPT_BASE + 14},
        {"limit", required_argument, 0, OPT_BASE + 15},
        {"from", required_argument, 0, OPT_BASE + 16},
        {"type", required_argument, 0, OPT_BASE + 17},
        {"count", required_argument, 0, OPT_BASE + 18},
        {"currency", required_argument, 0, OPT_BASE + 19},
        {0, 0, 0, 0}};
    bool print_version = false;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":hj", opts, NULL)) != -1) {
        int64_t v;
        const char *arg = optarg;
        switch (c) {
        case 'E': o->endpoint = arg; continue;
        case 'R': o->route = true; continue;
        case 'P': o->pub = arg; continue;
        case 'k': o->curve.server = arg; continue;
        case 'c': o->curve.cert = arg; continue;
        case 'j': o->json = true; continue;
        case 'T':
            if (!ordo_number_parse(arg, 0, 3600 * 1000, &v))
                return ordo_cli_usage_error("--timeout wants milliseconds, not \"%s\"", arg);
            o->timeout_ms = (int)v;
            continue;
        case 'h': s_usage(stdout); return 0;
        case 'V':
            /* --version alone: this program's; --version N (get): a past state. */
            if (!arg && optind < argc && ordo_number_all_digits(argv[optind]))
                arg = argv[optind++];
            if (!arg) {
                print_version = true;
                continue;
            }
            c = OPT_BASE + 12;
            break;
        case ':': return ordo_cli_usage_error("%s needs a value", argv[optind - 1]);
        case '?': return ordo_cli_usage_error("unknown option \"%s\"", argv[optind - 1]);
        default: break;
        }
        if (c < OPT_BASE)
            return ordo_cli_usage_error("unknown option \"%s\"", argv[optind - 1]);
        int bit = c - OPT_BASE;
        o->given |= 1u << bit;
        const char *name = s_option_names[bit];
        bool ok = true;
        switch (1u << bit) {
        case O_EXPECTED:
            ok = ordo_number_parse(arg, -1, INT64_MAX, &v);
            o->req.has_expected_version = true;
            o->req.expected_version = v;
            break;
        case O_REQUEST_ID: o->req.request_id = arg; break;
        case O_ACTOR: o->req.actor = arg; break;
        case O_CORRELATION: o->req.correlation_id = arg; break;
        case O_META:
            if (o->req.n_meta >= ORDO_META_CLIENT_MAX)
                return ordo_cli_usage_error("at most 16 --meta");
            ok = s_parse_meta(o, arg);
            break;
        case O_USER: ok = ordo_number_parse(arg, INT64_MIN, INT64_MAX, &o->req.user_id); break;
        case O_RESTAURANT: ok = ordo_number_parse(arg, INT64_MIN, INT64_MAX, &o->req.restaurant_id); break;
        case O_ITEM:
            if (o->req.n_items >= ORDO_ITEMS_MAX)
                return ordo_cli_usage_error("at most 100 --item");
            if (!s_parse_item(o, arg))
                return ordo_cli_usage_error("--item wants SKU:NAME:QTY:PRICE_CENTS, not \"%s\"", arg);
            break;
        case O_ADDRESS: o->req.delivery_address = arg; break;
        case O_MINUTES:
            ok = ordo_number_parse(arg, INT64_MIN, INT64_MAX, &o->req.estimated_minutes) &&
                 o->req.estimated_minutes != 0;
            break;
        case O_COURIER:
            ok = ordo_number_parse(arg, INT64_MIN, INT64_MAX, &o->req.courier_id);
            o->req.has_courier_id = true;
            break;
        case O_REASON: o->req.reason = arg; break;
        case O_AS_OF_VERSION: ok = ordo_number_parse(arg, 1, INT64_MAX, &o->req.as_of_version); break;
        case O_AT:
            if (!ordo_time_parse(arg, &o->req.as_of_time_us))
                return ordo_cli_usage_error("--at wants an ISO-8601 time or microseconds, not \"%s\"",
                                     arg);
            o->req.has_as_of_time = true;
            break;
        case O_FROM_VERSION: ok = ordo_number_parse(arg, 1, INT64_MAX, &o->req.from_version); break;
        case O_LIMIT: ok = ordo_number_parse(arg, 1, INT64_MAX, &o->req.limit); break;
        case O_FROM: ok = ordo_number_parse(arg, 1, INT64_MAX, &o->from); break;
        case O_TYPE: o->type_prefix = arg; break;
        case O_COUNT: ok = ordo_number_parse(arg, 1, INT64_MAX, &o->count); break;
        case O_CURRENCY: o->req.currency = arg; break; /* the engine checks it */
        default: break;
        }
        if (!ok) {
            fprintf(stderr, "ordo-cli: --%s: \"%s\" is not a valid value; try --help\n", name,
                    arg);
            return EXIT_USAGE;
        }
    }
    if (print_version && optind >= argc) {
        printf("ordo-cli %s (libordo %s)\n", ORDO_CLIENT_VERSION, ORDO_CLIENT_VERSION);
        return 0;
    }
    if (print_version)
        return ordo_cli_usage_error("--version takes a version number with get, or stands alone");
    if (optind >= argc)
        return ordo_cli_usage_error("missing command");
    const char *word = argv[optind++];
    const s_command_t *cmd = NULL;
    for (size_t i = 0; i < sizeof s_commands / sizeof s_commands[0]; i++)
        if (strcmp(word, s_commands[i].name) == 0)
            cmd = &s_commands[i];
    if (!cmd)
        return ordo_cli_usage_error("unknown command \"%s\"", word);
    if (cmd->order) {
        if (optind >= argc)
            return ordo_cli_usage_error("%s needs an ORDER", cmd->name);
        o->req.order_id = argv[optind++];
    }
    if (optind < argc)
        return ordo_cli_usage_error("unexpected argument \"%s\"", argv[optind]);
    for (int bit = 0; bit < (int)(sizeof s_option_names / sizeof s_option_names[0]); bit++)
        if ((o->given & (1u << bit)) && !(cmd->options & (1u << bit))) {
            fprintf(stderr, "ordo-cli: %s does not take --%s; try --help\n", cmd->name,
                    s_option_names[bit]);
            return EXIT_USAGE;
        }
    if (strcmp(cmd->name, "create") == 0) {
        const char *missing = !(o->given & O_USER)         ? "--user"
                              : !(o->given & O_RESTAURANT) ? "--restaurant"
                              : !(o->given & O_ITEM)       ? "--item"
                              : !(o->given & O_ADDRESS)    ? "--address"
                                                          : NULL;
        if (missing)
            return ordo_cli_usage_error("create needs %s", missing);
    }
    if (strcmp(cmd->name, "cancel") == 0 && !(o->given & O_REASON))
        return ordo_cli_usage_error("cancel needs %s", "--reason");
    if ((o->given & O_AS_OF_VERSION) && (o->given & O_AT))
        return ordo_cli_usage_error("get takes --version or --at, not both");
    o->req.type = cmd->type;
    int curve_rc = ordo_cli_curve_load(&o->curve);
    if (curve_rc != 0)
        return curve_rc;

    if (strchr(o->endpoint, ','))
        o->route = true;
    if (cmd->type)
        return s_call(o, cmd);
    if (o->route)
        return ordo_cli_usage_error("tail follows one engine: give its --endpoint and --pub");
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    return s_tail(o);
}

/* The command word, found before options are parsed, since the read
 * side's commands take options of their own: the first argument that is
 * not an option or an option's value. Every long option takes a value
 * except --json, --help, --version, --all and --route (getopt_long also takes
 * their unambiguous prefixes); -h and -j take none. */
static const char *s_command_word(int argc, char **argv)
{
    static const char *const flags[] = {"json", "help", "version", "all", "route"};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0)
            return i + 1 < argc ? argv[i + 1] : NULL;
        if (a[0] != '-' || a[1] == '\0')
            return a;
        if (a[1] != '-' || strchr(a, '='))
            continue;
        bool flag = false;
        for (size_t k = 0; k < sizeof flags / sizeof flags[0]; k++)
            flag |= strncmp(flags[k], a + 2, strlen(a + 2)) == 0;
        if (!flag)
            i++; /* its value */
    }
    return NULL;
}

int main(int argc, char **argv)
{
    const char *word = s_command_word(argc, argv);
    if (word && ordo_cli_projector_command(word))
        return ordo_cli_projector_main(argc, argv);
    s_opts_t *o = calloc(1, sizeof *o);
    if (!o) {
        fputs("ordo-cli: out of memory\n", stderr);
        return EXIT_NO_ANSWER;
    }
    int status = s_main(argc, argv, o);
    for (size_t i = 0; i < o->n_owned; i++)
        free(o->owned[i]);
    free(o);
    return status;
}
