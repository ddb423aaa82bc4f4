/* Tests for clients/: libordo and ordo-cli against the real ordo-server
 * (ORDO_SERVER; ordo-cli is ORDO_CLI), started by each suite on free
 * loopback ports with a fresh temporary data folder and stopped with
 * SIGTERM at the suite's end, which must exit 0. The read-side suite also
 * runs the real ordo-projector (ORDO_PROJECTOR) on that server. Only the
 * public header is used. Waits are bounded polls; nothing sleeps to
 * synchronise. */
#include "ordo.h"
#include "ordo_test.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <msgpack.h>
#include <zmq.h>

#define CALL_MS 10000 /* generous: ASan builds on a shared machine */

/* ---- the server under test --------------------------------------------- */

typedef struct {
    pid_t pid;
    char dir[256];
    char bind[64];
    char pub[64];
} s_server_t;

static s_server_t s_srv;

/* ordo-projector following s_srv, for the read-side suite (pid 0: none). */
typedef struct {
    pid_t pid;
    char bind[64];
} s_projector_t;

static s_projector_t s_proj;

static int64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int s_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

/* Waits up to `ms` for the child to exit: its wait status, or -1. */
static int s_wait_child(pid_t pid, int ms)
{
    int64_t deadline = s_now_ms() + ms;
    for (;;) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return st;
        if (r < 0 || s_now_ms() > deadline)
            return -1;
        struct timespec ts = {0, 5 * 1000000};
        nanosleep(&ts, NULL); /* polling a child's exit, not synchronising */
    }
}

/* Starts ordo-server on s->dir's data (new ports) and polls Ping until it
 * answers (30 s at most). */
static int s_server_spawn(s_server_t *s)
{
    const char *bin = getenv("ORDO_SERVER");
    if (!bin || !*bin) {
        fprintf(stderr, "ORDO_SERVER is not set (run through ctest)\n");
        return -1;
    }
    snprintf(s->bind, sizeof s->bind, "tcp://127.0.0.1:%d", s_free_port());
    snprintf(s->pub, sizeof s->pub, "tcp://127.0.0.1:%d", s_free_port());
    char data[300], log[300];
    snprintf(data, sizeof data, "%s/d", s->dir);
    snprintf(log, sizeof log, "%s/server.log", s->dir);
    s->pid = fork();
    if (s->pid < 0)
        return -1;
    if (s->pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execl(bin, bin, "--data-dir", data, "--bind", s->bind, "--pub", s->pub, (char *)NULL);
        _exit(127);
    }
    ordo_client_t *c = ordo_client_new(s->bind);
    ordo_result_t res = ORDO_RESULT_INIT;
    int64_t deadline = s_now_ms() + 30000;
    int rc = -1;
    while (c && s_now_ms() < deadline) {
        if (waitpid(s->pid, NULL, WNOHANG) == s->pid) {
            s->pid = 0;
            break;
        }
        if (ordo_client_call(c, &(ordo_client_request_t){.type = "Ping"}, 200, &res) == 0) {
            rc = 0;
            break;
        }
    }
    ordo_result_clear(&res);
    ordo_client_destroy(&c);
    if (rc != 0)
        fprintf(stderr, "ordo-server did not answer Ping (log in %s)\n", log);
    return rc;
}

/* Starts ordo-server on a new temporary data folder. */
static int s_server_start(s_server_t *s)
{
    memset(s, 0, sizeof *s);
    if (!ordo_test_tmpdir(s->dir, sizeof s->dir))
        return -1;
    return s_server_spawn(s);
}

/* SIGTERM; the exit status if it exited within 60 s, else -1. */
static int s_server_stop(s_server_t *s)
{
    if (s->pid <= 0)
        return -1;
    kill(s->pid, SIGTERM);
    int st = s_wait_child(s->pid, 60000);
    if (st == -1) {
        kill(s->pid, SIGKILL);
        waitpid(s->pid, NULL, 0);
    }
    s->pid = 0;
    return st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int s_suite_init(void)
{
    return s_server_start(&s_srv) == 0 ? 0 : -1;
}

static int s_suite_clean(void)
{
    if (s_srv.pid > 0)
        s_server_stop(&s_srv);
    if (s_srv.dir[0])
        ordo_test_rm_rf(s_srv.dir);
    memset(&s_srv, 0, sizeof s_srv);
    return 0;
}

/* Each suite ends with this: SIGTERM must end the server with status 0. */
static void test_server_stops_cleanly(void)
{
    CU_ASSERT_EQUAL(s_server_stop(&s_srv), 0);
}

/* ---- helpers ----------------------------------------------------------- */

static const ordo_client_item_t s_items[] = {
    {"pz-1", "Margherita", 2, 1250},
    {"dr-9", "Lemonade", 1, 300},
};

static ordo_client_request_t s_create(const char *order_id)
{
    return (ordo_client_request_t){.type = "CreateOrder",
                                   .order_id = order_id,
                                   .user_id = 42,
                                   .restaurant_id = 7,
                                   .items = s_items,
                                   .n_items = 2,
                                   .delivery_address = "12 Baker Street"};
}

static const char *s_meta(const ordo_client_event_t *ev, const char *key)
{
    for (size_t i = 0; i < ev->n_meta; i++)
        if (strcmp(ev->meta[i].key, key) == 0)
            return ev->meta[i].is_int ? "(int)" : ev->meta[i].sval;
    return NULL;
}

/* ---- synchronous calls ------------------------------------------------- */

static void test_sync_lifecycle(void)
{
    ordo_client_t *c = ordo_client_new(s_srv.bind);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    ordo_result_t r = ORDO_RESULT_INIT;

    ordo_client_request_t req = s_create("s-1");
    req.request_id = "r-create-1";
    req.actor = "user:42";
    req.correlation_id = "flow-1";
    CU_ASSERT_EQUAL(ordo_client_call(c, &req, CALL_MS, &r), 0);
    CU_ASSERT(r.ok);
    CU_ASSERT_STRING_EQUAL(r.request_id, "r-create-1");
    CU_ASSERT_STRING_EQUAL(r.order_id, "s-1");
    CU_ASSERT_EQUAL(r.version, 1);
    CU_ASSERT(r.position >= 1);
    CU_ASSERT_FALSE(r.duplicate);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r.event);
    CU_ASSERT_STRING_EQUAL(r.event->type, "OrderCreated");
    CU_ASSERT_EQUAL(r.event->total_cents, 2800);
    CU_ASSERT_EQUAL(r.event->n_items, 2);
    CU_ASSERT_STRING_EQUAL(r.event->items[0].name, "Margherita");
    CU_ASSERT_STRING_EQUAL(r.event->delivery_address, "12 Baker Street");
    CU_ASSERT_EQUAL(strlen(r.event->event_id), 36);
    CU_ASSERT_EQUAL(r.event->event_id[14], '7');
    CU_ASSERT_STRING_EQUAL(s_meta(r.event, "actor"), "user:42");
    CU_ASSERT_STRING_EQUAL(s_meta(r.event, "correlation_id"), "flow-1");
    CU_ASSERT_STRING_EQUAL(s_meta(r.event, "command"), "CreateOrder");
    CU_ASSERT_STRING_EQUAL(s_meta(r.event, "request_id"), "r-create-1");
    CU_ASSERT(r.reply_len > 0 && r.event->raw_len > 0 && r.event->raw > r.reply);
    int64_t created_pos = r.position;

    /* The same request again: the original reply, marked duplicate. */
    CU_ASSERT_EQUAL(ordo_client_call(c, &req, CALL_MS, &r), 0);
    CU_ASSERT(r.duplicate);
    CU_ASSERT_EQUAL(r.position, created_pos);

    ordo_client_request_t confirm = {.type = "ConfirmOrder",
                                     .order_id = "s-1",
                                     .has_expected_version = true,
                                     .expected_version = 1};
    CU_ASSERT_EQUAL(ordo_client_call(c, &confirm, CALL_MS, &r), 0);
    CU_ASSERT_EQUAL(r.version, 2);
    CU_ASSERT_STRING_EQUAL(r.event->type, "OrderConfirmed");
    CU_ASSERT_EQUAL(r.event->restaurant_id, 7);
    CU_ASSERT(r.request_id[0] != '\0'); /* one was assigned */

    CU_ASSERT_EQUAL(
        ordo_client_call(c, &(ordo_client_request_t){.type = "GetOrder", .order_id = "s-1"},
                         CALL_MS, &r),
        0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r.order);
    CU_ASSERT_STRING_EQUAL(r.order->status, "Confirmed");
    CU_ASSERT_EQUAL(r.order->version, 2);
    CU_ASSERT_EQUAL(r.order->total_cents, 2800);
    CU_ASSERT_EQUAL(r.order->n_items, 2);
    CU_ASSERT_STRING_EQUAL(r.order->items[1].sku, "dr-9");
    CU_ASSERT_STRING_EQUAL(r.order->delivery_address, "12 Baker Street");
    CU_ASSERT_PTR_NULL(r.order->cancel_reason);

    CU_ASSERT_EQUAL(
        ordo_client_call(
            c, &(ordo_client_request_t){.type = "GetOrder", .order_id = "s-1", .as_of_version = 1},
            CALL_MS, &r),
        0);
    CU_ASSERT_STRING_EQUAL(r.order->status, "Created");

    CU_ASSERT_EQUAL(
        ordo_client_call(c, &(ordo_client_request_t){.type = "GetHistory", .order_id = "s-1"},
                         CALL_MS, &r),
        0);
    CU_ASSERT_EQUAL_FATAL(r.n_events, 2);
    CU_ASSERT_EQUAL(r.events[0].version, 1);
    CU_ASSERT_EQUAL(r.events[0].position, (uint64_t)created_pos);
    CU_ASSERT_STRING_EQUAL(r.events[1].type, "OrderConfirmed");
    CU_ASSERT(r.events[1].position > r.events[0].position);
    CU_ASSERT(r.events[1].timestamp_us >= r.events[0].timestamp_us);
    /* PROTOCOL.md 1.1: every event carries its chain hash. */
    CU_ASSERT_EQUAL(strlen(r.events[0].hash), 64);
    CU_ASSERT_EQUAL(strlen(r.events[1].hash), 64);
    CU_ASSERT(strcmp(r.events[0].hash, r.events[1].hash) != 0);
    char last_hash[65];
    snprintf(last_hash, sizeof last_hash, "%s", r.events[1].hash);
    CU_ASSERT_EQUAL(
        ordo_client_call(c, &(ordo_client_request_t){.type = "GetOrder", .order_id = "s-1"},
                         CALL_MS, &r),
        0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r.order);
    CU_ASSERT_STRING_EQUAL(r.order->head_hash, last_hash);

    /* A cancelled order carries its reason. */
    CU_ASSERT_EQUAL(ordo_client_call(c,
                                     &(ordo_client_request_t){.type = "CancelOrder",
                                                              .order_id = "s-1",
                                                              .reason = "changed mind"},
                                     CALL_MS, &r),
                    0);
    CU_ASSERT_STRING_EQUAL(r.event->reason, "changed mind");
    CU_ASSERT_STRING_EQUAL(r.event->previous_status, "Confirmed");
    CU_ASSERT_EQUAL(
        ordo_client_call(c, &(ordo_client_request_t){.type = "GetOrder", .order_id = "s-1"},
                         CALL_MS, &r),
        0);
    CU_ASSERT_STRING_EQUAL(r.order->status, "Cancelled");
    CU_ASSERT_STRING_EQUAL(r.order->cancel_reason, "changed mind");

    ordo_result_clear(&r);
    ordo_result_clear(&r); /* safe twice */
    ordo_client_destroy(&c);
    CU_ASSERT_PTR_NULL(c);
    ordo_client_destroy(&c);
}

static void test_protocol_errors(void)
{
    ordo_client_t *c = ordo_client_new(s_srv.bind);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    ordo_result_t r = ORDO_RESULT_INIT;

    ordo_client_request_t req = {.type = "ConfirmOrder", .order_id = "nope", .request_id = "e-1"};
    CU_ASSERT_EQUAL(ordo_client_call(c, &req, CALL_MS, &r), ORDO_E_PROTOCOL);
    CU_ASSERT_FALSE(r.ok);
    CU_ASSERT_STRING_EQUAL(r.code, "not_found");
    CU_ASSERT(strlen(r.message) > 10);
    CU_ASSERT_STRING_EQUAL(r.request_id, "e-1"); /* echoed on errors too */

    req = s_create("e-1");
    CU_ASSERT_EQUAL(ordo_client_call(c, &req, CALL_MS, &r), 0);
    CU_ASSERT_EQUAL(ordo_client_call(c, &req, CALL_MS, &r), ORDO_E_PROTOCOL);
    CU_ASSERT_STRING_EQUAL(r.code, "already_exists");
    CU_ASSERT_EQUAL(r.current_version, 1);

    req = (ordo_client_request_t){.type = "Deliver", .order_id = "e-1"};
    CU_ASSERT_EQUAL(ordo_client_call(c, &req, CALL_MS, &r), ORDO_E_PROTOCOL);
    CU_ASSERT_STRING_EQUAL(r.code, "invalid_transition");
    CU_ASSERT_STRING_EQUAL(r.status, "Created");
    CU_ASSERT_PTR_NOT_NULL(strstr(r.message, "Deliver"));

    req = (ordo_client_request_t){.type = "ConfirmOrder",
                                  .order_id = "e-1",
                                  .has_expected_version = true,
                                  .expected_version = 5};
    CU_ASSERT_EQUAL(ordo_client_call(c, &req, CALL_MS, &r), ORDO_E_PROTOCOL);
    CU_ASSERT_STRING_EQUAL(r.code, "conflict");
    CU_ASSERT_EQUAL(r.expected_version, 5);
    CU_ASSERT_EQUAL(r.current_version, 1);

    ordo_client_item_t bad_items[] = {{"a", "A", 1, 100}, {"b", "B", 0, 100}};
    req = s_create("e-2");
    req.items = bad_items;
    CU_ASSERT_EQUAL(ordo_client_call(c, &req, CALL_MS, &r), ORDO_E_PROTOCOL);
    CU_ASSERT_STRING_EQUAL(r.code, "bad_request");
    CU_ASSERT_STRING_EQUAL(r.field, "data.items.1.qty");

    req = s_create("has space");
    CU_ASSERT_EQUAL(ordo_client_call(c, &req, CALL_MS, &r), ORDO_E_PROTOCOL);
    CU_ASSERT_STRING_EQUAL(r.code, "bad_request");
    CU_ASSERT_STRING_EQUAL(r.field, "order_id");

    req = (ordo_client_request_t){.type = "CancelOrder", .order_id = "e-1"};
    CU_ASSERT_EQUAL(ordo_client_call(c, &req, CALL_MS, &r), ORDO_E_PROTOCOL);
    CU_ASSERT_STRING_EQUAL(r.field, "data.reason");

    req = (ordo_client_request_t){.type = "GetOrder",
                                  .order_id = "e-1",
                                  .as_of_version = 1,
                                  .has_as_of_time = true,
                                  .as_of_time_us = 1};
    CU_ASSERT_EQUAL(ordo_client_call(c, &req, CALL_MS, &r), ORDO_E_PROTOCOL);
    CU_ASSERT_STRING_EQUAL(r.field, "as_of_time_us");

    /* Refused before sending: nothing the engine could answer usefully. */
    char long_id[200];
    memset(long_id, 'x', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';
    CU_ASSERT_EQUAL(ordo_client_call(c, &(ordo_client_request_t){.type = "Shout"}, CALL_MS, &r),
                    ORDO_E_INVALID);
    CU_ASSERT_EQUAL(ordo_client_call(c, &(ordo_client_request_t){.type = NULL}, CALL_MS, &r),
                    ORDO_E_INVALID);
    CU_ASSERT_EQUAL(ordo_client_call(c, &(ordo_client_request_t){.type = "Ping", .request_id = ""},
                                     CALL_MS, &r),
                    ORDO_E_INVALID);
    CU_ASSERT_EQUAL(
        ordo_client_call(c, &(ordo_client_request_t){.type = "Ping", .request_id = long_id},
                         CALL_MS, &r),
        ORDO_E_INVALID);
    req = s_create("e-3");
    req.n_items = 101;
    CU_ASSERT_EQUAL(ordo_client_call(c, &req, CALL_MS, &r), ORDO_E_INVALID);
    CU_ASSERT_EQUAL(ordo_client_call(c, &(ordo_client_request_t){.type = "Ping"}, -1, &r),
                    ORDO_E_INVALID);
    CU_ASSERT_STRING_EQUAL(ordo_client_strerror(ORDO_E_TIMEOUT), "no answer within the timeout");

    ordo_result_clear(&r);
    ordo_client_destroy(&c);
}

static void test_stats_and_ping(void)
{
    ordo_client_t *c = ordo_client_new(s_srv.bind);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    ordo_result_t r = ORDO_RESULT_INIT;
    CU_ASSERT_EQUAL(ordo_client_call(c, &(ordo_client_request_t){.type = "Ping"}, CALL_MS, &r), 0);
    int64_t head = r.head_position;
    CU_ASSERT(head >= 1);
    CU_ASSERT_EQUAL(ordo_client_call(c, &(ordo_client_request_t){.type = "Stats"}, CALL_MS, &r), 0);
    CU_ASSERT(r.n_stats >= 5);
    CU_ASSERT_EQUAL(ordo_result_stat(&r, "head_position", -1), head);
    CU_ASSERT(ordo_result_stat(&r, "orders", -1) >= 1);
    CU_ASSERT(ordo_result_stat(&r, "errors", -1) >= 1);
    CU_ASSERT_EQUAL(ordo_result_stat(&r, "no such stat", -7), -7);
    CU_ASSERT_EQUAL(ordo_client_call(
                        c,
                        &(ordo_client_request_t){.type = "ReadAll", .from_position = 1, .limit = 2},
                        CALL_MS, &r),
                    0);
    CU_ASSERT_EQUAL(r.n_events, 2);
    CU_ASSERT_EQUAL(r.next_position, 3);
    CU_ASSERT_EQUAL(r.head_position, head);
    ordo_result_clear(&r);
    ordo_client_destroy(&c);
}

/* The router with one engine and no partitions: Partitions names it; a
 * dead seed before it costs one short wait; one request_id for every
 * try; a refusal is returned, not retried; bad arguments. */
static void test_router_one_engine(void)
{
    char dead[64], seeds[160];
    snprintf(dead, sizeof dead, "tcp://127.0.0.1:%d", s_free_port());
    snprintf(seeds, sizeof seeds, "%s,%s", dead, s_srv.bind);
    ordo_client_t *c = ordo_client_new(s_srv.bind);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    ordo_result_t r = ORDO_RESULT_INIT;
    CU_ASSERT_EQUAL(
        ordo_client_call(c, &(ordo_client_request_t){.type = "Partitions"}, CALL_MS, &r), 0);
    CU_ASSERT_EQUAL(r.partition, 0);
    CU_ASSERT_EQUAL_FATAL(r.partitions, 1);
    CU_ASSERT_STRING_EQUAL(r.owners[0].endpoint, s_srv.bind);
    CU_ASSERT_STRING_EQUAL(r.owners[0].pub, s_srv.pub);
    CU_ASSERT_EQUAL(r.owners[0].revision, 0);
    ordo_client_destroy(&c);

    ordo_router_t *rt = ordo_router_new(seeds, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(rt);
    CU_ASSERT_EQUAL(ordo_router_partitions(rt), 0); /* nothing asked yet */
    ordo_client_request_t req = s_create("rt-1");
    CU_ASSERT_EQUAL(ordo_router_call(rt, &req, CALL_MS, &r), 0);
    CU_ASSERT_EQUAL(r.version, 1);
    CU_ASSERT_EQUAL(ordo_router_partitions(rt), 1);
    CU_ASSERT_STRING_EQUAL(ordo_router_owner(rt, 0), s_srv.bind);
    CU_ASSERT_PTR_NULL(ordo_router_owner(rt, 1));
    /* A retry with the caller's request_id is the same command. */
    req.request_id = "rt-rid";
    req.order_id = "rt-2";
    CU_ASSERT_EQUAL(ordo_router_call(rt, &req, CALL_MS, &r), 0);
    CU_ASSERT_FALSE(r.duplicate);
    CU_ASSERT_EQUAL(ordo_router_call(rt, &req, CALL_MS, &r), 0);
    CU_ASSERT_TRUE(r.duplicate);
    /* The engine's no comes back at once. */
    int64_t t0 = s_now_ms();
    req.request_id = NULL;
    CU_ASSERT_EQUAL(ordo_router_call(rt, &req, CALL_MS, &r), ORDO_E_PROTOCOL);
    CU_ASSERT_STRING_EQUAL(r.code, "already_exists");
    CU_ASSERT(s_now_ms() - t0 < 2000);
    /* Queries without an order go to partition 0's owner. */
    CU_ASSERT_EQUAL(ordo_router_call(rt, &(ordo_client_request_t){.type = "Ping"}, CALL_MS, &r),
                    0);
    CU_ASSERT(r.head_position >= 2);
    CU_ASSERT_EQUAL(ordo_router_call_on(rt, 0, &(ordo_client_request_t){.type = "Stats"}, CALL_MS,
                                        &r),
                    0);
    CU_ASSERT_EQUAL(ordo_router_call_on(rt, 5, &(ordo_client_request_t){.type = "Stats"}, 300, &r),
                    ORDO_E_INVALID);
    CU_ASSERT_EQUAL(ordo_router_call_on(rt, 0, NULL, 300, &r), ORDO_E_INVALID);
    CU_ASSERT_EQUAL(ordo_router_refresh(rt, CALL_MS), 0);
    ordo_router_destroy(&rt);
    CU_ASSERT_PTR_NULL(rt);

    /* Only dead seeds: the call ends at its timeout. */
    rt = ordo_router_new(dead, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(rt);
    t0 = s_now_ms();
    req.order_id = "rt-3";
    CU_ASSERT_EQUAL(ordo_router_call(rt, &req, 700, &r), ORDO_E_TIMEOUT);
    int64_t took = s_now_ms() - t0;
    CU_ASSERT(took >= 650 && took < 3000);
    CU_ASSERT_EQUAL(ordo_router_refresh(rt, 200), ORDO_E_TIMEOUT);
    ordo_router_destroy(&rt);
    ordo_router_destroy(&rt); /* safe twice */

    CU_ASSERT_PTR_NULL(ordo_router_new("", NULL));
    CU_ASSERT_PTR_NULL(ordo_router_new("tcp://127.0.0.1:1,", NULL));
    CU_ASSERT_PTR_NULL(ordo_router_new(",tcp://127.0.0.1:1", NULL));
    /* The partition function is the engine's (test_cluster pins it). */
    CU_ASSERT_EQUAL(ordo_partition_of_id("anything", 1), 0);
    CU_ASSERT(ordo_partition_of_id("order-1", 7) < 7);
    ordo_result_clear(&r);
}

/* A call keeps pipelined completions for recv, and drops the late reply
 * to a call that timed out. */
static void test_call_among_pipelined(void)
{
    ordo_client_t *c = ordo_client_new(s_srv.bind);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    ordo_result_t r = ORDO_RESULT_INIT;
    char ids[3][ORDO_ID_SIZE];
    ordo_client_request_t create = s_create("m-1");
    CU_ASSERT_EQUAL(ordo_client_send(c, &create, ids[0]), 0);
    CU_ASSERT_EQUAL(
        ordo_client_send(c, &(ordo_client_request_t){.type = "ConfirmOrder", .order_id = "m-1"},
                         ids[1]),
        0);
    CU_ASSERT_EQUAL(
        ordo_client_send(
            c,
            &(ordo_client_request_t){.type = "GetOrder", .order_id = "m-1", .request_id = "mine-q"},
            ids[2]),
        0);
    CU_ASSERT_STRING_EQUAL(ids[2], "mine-q");
    CU_ASSERT_STRING_NOT_EQUAL(ids[0], ids[1]);
    CU_ASSERT_EQUAL(ordo_client_in_flight(c), 3);
    /* Same order, so the call's reply comes after the three above. */
    CU_ASSERT_EQUAL(
        ordo_client_call(c, &(ordo_client_request_t){.type = "GetHistory", .order_id = "m-1"},
                         CALL_MS, &r),
        0);
    CU_ASSERT_EQUAL(r.n_events, 2);
    CU_ASSERT_EQUAL(ordo_client_in_flight(c), 3);
    for (int i = 0; i < 3; i++) {
        CU_ASSERT_EQUAL_FATAL(ordo_client_recv(c, CALL_MS, &r), 0);
        CU_ASSERT_STRING_EQUAL(r.request_id, ids[i]);
        CU_ASSERT(r.ok);
    }
    CU_ASSERT_EQUAL(r.order->version, 2);
    CU_ASSERT_EQUAL(ordo_client_in_flight(c), 0);
    CU_ASSERT_EQUAL(ordo_client_recv(c, 100, &r), ORDO_E_IDLE);

    /* A call that times out at once; its reply arrives later and must not
     * be taken for the next call's, nor show up in recv. */
    int rc = ordo_client_call(
        c, &(ordo_client_request_t){.type = "GetOrder", .order_id = "m-1", .as_of_version = 1}, 0,
        &r);
    CU_ASSERT(rc == ORDO_E_TIMEOUT || rc == 0);
    CU_ASSERT_EQUAL(
        ordo_client_call(c, &(ordo_client_request_t){.type = "GetOrder", .order_id = "m-1"},
                         CALL_MS, &r),
        0);
    CU_ASSERT_EQUAL(r.order->version, 2);
    CU_ASSERT_EQUAL(ordo_client_recv(c, 100, &r), ORDO_E_IDLE);

    /* The retry pattern: a command times out, the same request_id again
     * gets an answer (the original's or its duplicate), and the two
     * replies do not spill into later calls. */
    ordo_client_request_t again = s_create("m-2");
    again.request_id = "retry-1";
    rc = ordo_client_call(c, &again, 0, &r);
    CU_ASSERT(rc == ORDO_E_TIMEOUT || rc == 0);
    CU_ASSERT_EQUAL(ordo_client_call(c, &again, CALL_MS, &r), 0);
    CU_ASSERT_EQUAL(r.version, 1);
    CU_ASSERT_STRING_EQUAL(r.request_id, "retry-1");
    CU_ASSERT_EQUAL(
        ordo_client_call(c, &(ordo_client_request_t){.type = "ConfirmOrder", .order_id = "m-2"},
                         CALL_MS, &r),
        0);
    CU_ASSERT_EQUAL(r.version, 2);
    CU_ASSERT_EQUAL(ordo_client_recv(c, 100, &r), ORDO_E_IDLE);
    ordo_result_clear(&r);
    ordo_client_destroy(&c);
}

/* ---- pipelining -------------------------------------------------------- */

#define P_ORDERS 200
#define P_STEPS 10

/* Per order: 6 commands and 4 queries, so 2000 requests. */
static const char *const s_steps[P_STEPS] = {
    "CreateOrder", "GetOrder", "ConfirmOrder", "StartPreparing", "GetOrder",
    "MarkReady",   "PickUp",   "GetOrder",     "Deliver",        "GetHistory"};
static const int s_versions_before[P_STEPS] = {0, 1, 1, 2, 3, 3, 4, 5, 5, 6};

static int s_cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void test_pipelined_2000(void)
{
    ordo_client_t *c = ordo_client_new(s_srv.bind);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    ordo_result_t r = ORDO_RESULT_INIT;
    CU_ASSERT_EQUAL_FATAL(
        ordo_client_call(c, &(ordo_client_request_t){.type = "Ping"}, CALL_MS, &r), 0);
    int64_t head0 = r.head_position;

    static char ids[P_ORDERS * P_STEPS][ORDO_ID_SIZE];
    static char order_ids[P_ORDERS][16];
    int last_step[P_ORDERS];
    for (int o = 0; o < P_ORDERS; o++) {
        snprintf(order_ids[o], sizeof order_ids[o], "p-%d", o);
        last_step[o] = -1;
    }
    /* Interleaved: step s of every order, then step s + 1. */
    int sent = 0;
    for (int s = 0; s < P_STEPS; s++)
        for (int o = 0; o < P_ORDERS; o++) {
            ordo_client_request_t req = {.type = s_steps[s], .order_id = order_ids[o]};
            if (s == 0)
                req = s_create(order_ids[o]);
            if (s == 3)
                req.estimated_minutes = 20;
            if (s == 6) {
                req.has_courier_id = true;
                req.courier_id = o;
            }
            if (ordo_client_send(c, &req, ids[s * P_ORDERS + o]) == 0)
                sent++;
        }
    CU_ASSERT_EQUAL_FATAL(sent, P_ORDERS * P_STEPS);
    CU_ASSERT_EQUAL(ordo_client_in_flight(c), (size_t)sent);

    int64_t positions[P_ORDERS * 6];
    int n_pos = 0, done = 0, bad = 0;
    while (done < sent) {
        int rc = ordo_client_recv(c, 30000, &r);
        CU_ASSERT_EQUAL_FATAL(rc, 0);
        int k = -1;
        for (int i = 0; i < sent; i++)
            if (strcmp(ids[i], r.request_id) == 0) {
                k = i;
                break;
            }
        CU_ASSERT_FATAL(k >= 0);
        ids[k][0] = '\0'; /* each completes once */
        int s = k / P_ORDERS, o = k % P_ORDERS;
        if (!r.ok || s <= last_step[o]) /* per order: in send order */
            bad++;
        last_step[o] = s;
        if (strcmp(s_steps[s], "GetOrder") == 0) {
            if (!r.order || r.order->version != (uint32_t)s_versions_before[s])
                bad++;
        } else if (strcmp(s_steps[s], "GetHistory") == 0) {
            if (r.n_events != 6 || strcmp(r.events[5].type, "OrderDelivered") != 0)
                bad++;
        } else {
            if (r.version != s_versions_before[s] + 1 || !r.event)
                bad++;
            positions[n_pos++] = r.position;
        }
        done++;
    }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(ordo_client_in_flight(c), 0);
    CU_ASSERT_EQUAL(ordo_client_recv(c, 0, &r), ORDO_E_IDLE);
    /* The 1200 commands took positions head0+1 .. head0+1200, once each. */
    CU_ASSERT_EQUAL_FATAL(n_pos, P_ORDERS * 6);
    qsort(positions, (size_t)n_pos, sizeof positions[0], s_cmp_i64);
    int contiguous = 1;
    for (int i = 0; i < n_pos; i++)
        if (positions[i] != head0 + 1 + i)
            contiguous = 0;
    CU_ASSERT(contiguous);
    ordo_result_clear(&r);
    ordo_client_destroy(&c);
}

/* ---- timeouts ---------------------------------------------------------- */

static void test_timeouts_without_server(void)
{
    char ep[64], pub[64];
    snprintf(ep, sizeof ep, "tcp://127.0.0.1:%d", s_free_port());
    snprintf(pub, sizeof pub, "tcp://127.0.0.1:%d", s_free_port());
    CU_ASSERT_PTR_NULL(ordo_client_new("no-such-transport://x"));

    ordo_client_t *c = ordo_client_new(ep);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_STRING_EQUAL(ordo_client_endpoint(c), ep);
    ordo_result_t r = ORDO_RESULT_INIT;
    int64_t t0 = s_now_ms();
    CU_ASSERT_EQUAL(ordo_client_call(c, &(ordo_client_request_t){.type = "Ping"}, 300, &r),
                    ORDO_E_TIMEOUT);
    int64_t took = s_now_ms() - t0;
    CU_ASSERT(took >= 290 && took < 3000);
    CU_ASSERT_FALSE(r.ok);

    CU_ASSERT_EQUAL(ordo_client_send(c, &(ordo_client_request_t){.type = "Ping"}, NULL), 0);
    t0 = s_now_ms();
    CU_ASSERT_EQUAL(ordo_client_recv(c, 200, &r), ORDO_E_TIMEOUT);
    took = s_now_ms() - t0;
    CU_ASSERT(took >= 190 && took < 3000);
    CU_ASSERT_EQUAL(ordo_client_in_flight(c), 1);
    CU_ASSERT_EQUAL(ordo_client_recv(c, 0, &r), ORDO_E_TIMEOUT);
    ordo_client_destroy(&c);

    ordo_sub_t *s = ordo_sub_new(ep, pub, NULL, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    const ordo_client_event_t *ev = (const void *)&r;
    t0 = s_now_ms();
    CU_ASSERT_EQUAL(ordo_sub_next(s, 300, &ev), ORDO_E_TIMEOUT);
    took = s_now_ms() - t0;
    CU_ASSERT(took >= 290 && took < 3000);
    CU_ASSERT_PTR_NULL(ev);
    CU_ASSERT_EQUAL(ordo_sub_position(s), 0);
    ordo_sub_destroy(&s);
    CU_ASSERT_PTR_NULL(s);
    CU_ASSERT_PTR_NULL(ordo_sub_new(ep, pub, NULL, 0));
}

/* ---- subscription ------------------------------------------------------ */

/* Runs `n` orders through their lives (6 events each, every 4th one
 * cancelled after confirmation: 3 events), pipelined. Returns events made. */
static int s_make_events(ordo_client_t *c, const char *prefix, int n)
{
    ordo_result_t r = ORDO_RESULT_INIT;
    static const char *const steps[] = {"CreateOrder", "ConfirmOrder", "StartPreparing",
                                        "MarkReady",   "PickUp",       "Deliver"};
    int made = 0;
    for (int s = 0; s < 6; s++)
        for (int o = 0; o < n; o++) {
            char id[32];
            snprintf(id, sizeof id, "%s-%d", prefix, o);
            ordo_client_request_t req = {.type = steps[s], .order_id = id};
            if (s == 0)
                req = s_create(id);
            if (o % 4 == 3 && s == 2)
                req = (ordo_client_request_t){
                    .type = "CancelOrder", .order_id = id, .reason = "test"};
            else if (o % 4 == 3 && s > 2)
                continue;
            if (ordo_client_send(c, &req, NULL) == 0)
                made++;
        }
    int ok = 0;
    while (ordo_client_recv(c, 30000, &r) == 0)
        ok += r.ok;
    ordo_result_clear(&r);
    return ok == made ? made : -1;
}

/* Reads events until position `until`; checks each comes once, in order,
 * no position skipped. Returns how many came, or -1 on a fault. */
static int s_read_until(ordo_sub_t *s, uint64_t first, uint64_t until, const char *prefix)
{
    uint64_t expect = first;
    int n = 0;
    int64_t deadline = s_now_ms() + 30000;
    while (ordo_sub_position(s) < until && s_now_ms() < deadline) {
        const ordo_client_event_t *ev;
        int rc = ordo_sub_next(s, 1000, &ev);
        if (rc == ORDO_E_TIMEOUT)
            continue;
        if (rc != 0)
            return -1;
        if (prefix) {
            if (strncmp(ev->type, prefix, strlen(prefix)) != 0 || ev->position < expect)
                return -1;
            expect = ev->position + 1;
        } else {
            if (ev->position != expect)
                return -1;
            expect++;
        }
        n++;
    }
    return ordo_sub_position(s) == until && (prefix || expect == until + 1) ? n : -1;
}

static void test_sub_late_subscriber(void)
{
    ordo_client_t *c = ordo_client_new(s_srv.bind);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    int made = s_make_events(c, "late", 40);
    CU_ASSERT_FATAL(made > 0);
    ordo_result_t r = ORDO_RESULT_INIT;
    CU_ASSERT_EQUAL_FATAL(
        ordo_client_call(c, &(ordo_client_request_t){.type = "Ping"}, CALL_MS, &r), 0);
    uint64_t head = (uint64_t)r.head_position;

    /* Subscribes after all of that: it must come from ReadAll. */
    ordo_sub_t *s = ordo_sub_new(s_srv.bind, s_srv.pub, NULL, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    const ordo_client_event_t *ev;
    CU_ASSERT_EQUAL_FATAL(ordo_sub_next(s, CALL_MS, &ev), 0);
    CU_ASSERT_EQUAL(ev->position, 1);
    CU_ASSERT_STRING_EQUAL(ev->type, "OrderCreated");
    CU_ASSERT_EQUAL((uint64_t)s_read_until(s, 2, head, NULL), head - 1);
    CU_ASSERT_EQUAL(ordo_sub_position(s), head);
    uint64_t from_read_all, from_pub;
    ordo_sub_counters(s, &from_read_all, &from_pub, NULL, NULL);
    CU_ASSERT_EQUAL(from_read_all, head);

    /* Caught up: new events while it reads, live from PUB (or filled). */
    int more = s_make_events(c, "live", 20);
    CU_ASSERT_FATAL(more > 0);
    CU_ASSERT_EQUAL(s_read_until(s, head + 1, head + (uint64_t)more, NULL), more);
    CU_ASSERT_EQUAL(ordo_sub_position(s), head + (uint64_t)more);
    ordo_sub_counters(s, &from_read_all, &from_pub, NULL, NULL);
    CU_ASSERT_EQUAL(from_read_all + from_pub, head + (uint64_t)more);

    /* Nothing more: a timeout, and no event twice. */
    CU_ASSERT_EQUAL(ordo_sub_next(s, 300, &ev), ORDO_E_TIMEOUT);
    ordo_sub_destroy(&s);

    /* From the middle, with a type filter. */
    s = ordo_sub_new(s_srv.bind, s_srv.pub, "OrderCancelled", 5);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_EQUAL_FATAL(
        ordo_client_call(
            c, &(ordo_client_request_t){.type = "ReadAll", .from_position = 5, .limit = 10000},
            CALL_MS, &r),
        0);
    int cancelled = 0;
    for (size_t i = 0; i < r.n_events; i++)
        cancelled += strcmp(r.events[i].type, "OrderCancelled") == 0;
    CU_ASSERT(cancelled >= 10);
    uint64_t end = (uint64_t)r.head_position;
    CU_ASSERT_EQUAL(s_read_until(s, 5, end, "OrderCancelled"), cancelled);
    ordo_sub_destroy(&s);
    ordo_result_clear(&r);
    ordo_client_destroy(&c);
}

/* PUB from a stand-in socket that drops, repeats and reorders: the
 * subscription fills from the real engine's ReadAll and hands out every
 * event once, in order. */
static void test_sub_gaps_and_duplicates(void)
{
    ordo_client_t *c = ordo_client_new(s_srv.bind);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    ordo_result_t r = ORDO_RESULT_INIT, all = ORDO_RESULT_INIT;
    CU_ASSERT_EQUAL_FATAL(
        ordo_client_call(c, &(ordo_client_request_t){.type = "Ping"}, CALL_MS, &r), 0);
    uint64_t head = (uint64_t)r.head_position;
    CU_ASSERT_FATAL(head >= 10);

    char fake[64];
    snprintf(fake, sizeof fake, "tcp://127.0.0.1:%d", s_free_port());
    void *ctx = zmq_ctx_new();
    void *pub = zmq_socket(ctx, ZMQ_PUB);
    int linger = 0;
    zmq_setsockopt(pub, ZMQ_LINGER, &linger, sizeof linger);
    CU_ASSERT_EQUAL_FATAL(zmq_bind(pub, fake), 0);

    ordo_sub_t *s = ordo_sub_new(s_srv.bind, fake, NULL, head - 4);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_EQUAL_FATAL(s_read_until(s, head - 4, head, NULL), 5);

    /* The raw event at `head`, to publish as a duplicate until the SUB
     * connection is up (the duplicate counter moves). */
    CU_ASSERT_EQUAL_FATAL(ordo_client_call(c,
                                           &(ordo_client_request_t){.type = "ReadAll",
                                                                    .from_position = (int64_t)head},
                                           CALL_MS, &all),
                          0);
    const ordo_client_event_t *old = &all.events[0];
    uint64_t dups = 0;
    const ordo_client_event_t *ev;
    int64_t deadline = s_now_ms() + 30000;
    while (dups == 0 && s_now_ms() < deadline) {
        zmq_send(pub, old->type, strlen(old->type), ZMQ_SNDMORE);
        zmq_send(pub, old->raw, old->raw_len, 0);
        CU_ASSERT_EQUAL(ordo_sub_next(s, 20, &ev), ORDO_E_TIMEOUT);
        ordo_sub_counters(s, NULL, NULL, &dups, NULL);
    }
    CU_ASSERT_FATAL(dups > 0);

    /* 20 new events in the engine; keep PUB busy meanwhile so the
     * subscription does not go looking on its own. */
    for (int i = 0; i < 20; i++) {
        char id[32];
        snprintf(id, sizeof id, "gap-%d", i);
        ordo_client_request_t req = s_create(id);
        CU_ASSERT_EQUAL(ordo_client_call(c, &req, CALL_MS, &r), 0);
        zmq_send(pub, old->type, strlen(old->type), ZMQ_SNDMORE);
        zmq_send(pub, old->raw, old->raw_len, 0);
        CU_ASSERT_EQUAL(ordo_sub_next(s, 0, &ev), ORDO_E_TIMEOUT);
    }
    CU_ASSERT_EQUAL_FATAL(
        ordo_client_call(
            c, &(ordo_client_request_t){.type = "ReadAll", .from_position = (int64_t)head + 1},
            CALL_MS, &r),
        0);
    CU_ASSERT_EQUAL_FATAL(r.n_events, 20);
    /* Positions head+1 ..: 1, 2, 2, 5, 6, old, 7, 10, then 11 .. 20. */
    static const int order[] = {1, 2, 2, 5, 6, 0, 7, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20};
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
        const ordo_client_event_t *e = order[i] ? &r.events[order[i] - 1] : old;
        zmq_send(pub, e->type, strlen(e->type), ZMQ_SNDMORE);
        zmq_send(pub, e->raw, e->raw_len, 0);
    }
    CU_ASSERT_EQUAL(s_read_until(s, head + 1, head + 20, NULL), 20);
    uint64_t from_read_all, from_pub, gaps;
    ordo_sub_counters(s, &from_read_all, &from_pub, &dups, &gaps);
    CU_ASSERT(gaps >= 1);
    CU_ASSERT(from_pub >= 1);
    CU_ASSERT_EQUAL(from_read_all + from_pub, 25);
    CU_ASSERT_EQUAL(ordo_sub_next(s, 300, &ev), ORDO_E_TIMEOUT);
    ordo_sub_destroy(&s);
    zmq_close(pub);
    zmq_ctx_term(ctx);
    ordo_result_clear(&r);
    ordo_result_clear(&all);
    ordo_client_destroy(&c);
}

/* ---- ordo-cli ---------------------------------------------------------- */

typedef struct {
    int status; /* exit status, or -1 */
    char out[65536];
    char err[8192];
} s_run_t;

static void s_slurp(const char *path, char *buf, size_t size)
{
    buf[0] = '\0';
    FILE *f = fopen(path, "rb");
    if (!f)
        return;
    size_t n = fread(buf, 1, size - 1, f);
    buf[n] = '\0';
    fclose(f);
}

/* Runs ordo-cli with `args` (NULL-terminated) against the suite's server. */
static s_run_t *s_cli(const char *const *args)
{
    static s_run_t run;
    const char *bin = getenv("ORDO_CLI");
    memset(&run, 0, sizeof run);
    run.status = -1;
    if (!bin)
        return &run;
    char out[300], err[300];
    snprintf(out, sizeof out, "%s/cli.out", s_srv.dir);
    snprintf(err, sizeof err, "%s/cli.err", s_srv.dir);
    const char *argv[40] = {bin};
    int n = 1;
    for (; args[n - 1] && n < 38; n++)
        argv[n] = args[n - 1];
    argv[n] = NULL;
    pid_t pid = fork();
    if (pid == 0) {
        int fo = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int fe = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fo, 1);
        dup2(fe, 2);
        setenv("ORDO_ENDPOINT", s_srv.bind, 1);
        setenv("ORDO_PUB", s_srv.pub, 1);
        if (s_proj.bind[0])
            setenv("ORDO_PROJECTOR", s_proj.bind, 1);
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    int st = pid > 0 ? s_wait_child(pid, 60000) : -1;
    if (st == -1 && pid > 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    run.status = st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    s_slurp(out, run.out, sizeof run.out);
    s_slurp(err, run.err, sizeof run.err);
    return &run;
}

#define CLI(...) s_cli((const char *const[]){__VA_ARGS__, NULL})

static int s_count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
        n++;
    return n;
}

static void test_cli_order_life(void)
{
    s_run_t *r = CLI("--json", "create", "c-1", "--user", "42", "--restaurant", "7", "--item",
                     "pz-1:Margherita:2:1250", "--item", "dr-9:Lemonade:1:300", "--address",
                     "12 Baker Street", "--actor", "user:42", "--request-id", "cli-create-1");
    CU_ASSERT_EQUAL(r->status, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(r->out, "\"ok\":true"));
    CU_ASSERT_PTR_NOT_NULL(strstr(r->out, "\"request_id\":\"cli-create-1\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(r->out, "\"version\":1"));
    CU_ASSERT_PTR_NOT_NULL(strstr(r->out, "\"total_cents\":2800"));
    CU_ASSERT_PTR_NOT_NULL(strstr(r->out, "\"actor\":\"user:42\""));
    CU_ASSERT_STRING_EQUAL(r->err, "");

    r = CLI("confirm", "c-1", "--expected-version", "1", "--json");
    CU_ASSERT_EQUAL(r->status, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(r->out, "\"type\":\"OrderConfirmed\""));
    r = CLI("start-preparing", "c-1", "--minutes", "25", "--json");
    CU_ASSERT_EQUAL(r->status, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(r->out, "\"estimated_minutes\":25"));
    r = CLI("ready", "c-1", "--json");
    CU_ASSERT_EQUAL(r->status, 0);
    r = CLI("pick-up", "c-1", "--courier", "99", "--json");
    CU_ASSERT_EQUAL(r->status, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(r->out, "\"courier_id\":99"));
    r = CLI("deliver", "c-1");
    CU_ASSERT_EQUAL(r->status, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(r->out, "c-1 OrderDelivered: version 6"));

    /* The same create again: the original reply, marked duplicate. */
    r = CLI("--json", "create", "c-1", "--user", "42", "--restaurant", "7", "--item",
            "pz-1:Margherita:2:1250", "--address", "x", "--request-id", "cli-create-1");
    CU_ASSERT_EQUAL(r->status, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(r->out, "\"duplicate\":true"));

    r = CLI("get", "c-1", "--json");
    CU_ASSERT_EQUAL(r->status, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(r->out, "\"status\":\"Delivered\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(r->out, "\"version\":6"));
    r = CLI("get", "c-1");
    CU_ASSERT_EQUAL(r->status, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(r->out, "status       Delivered"));
    CU_ASSERT_PTR_NOT_NULL(strstr(r->out, "total        28.00"));
    r = CLI("get", "c-1", "--version", "3", "--json");
    CU_ASSERT_EQUAL(r->status, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(r->out, "\"status\":\"Preparing\""));

    r = CLI("history", "c-1", "--json");
    CU_ASSERT_EQUAL(r->status, 0);
    CU_ASSERT_EQUAL(s_count(r->out, "\"event_id\""), 6);
    r = CLI("history", "c-1");
    CU_ASSERT_EQUAL(r->status, 0);
    CU_ASSERT_EQUAL(s_count(r->out, "\n"), 6);
    CU_ASSERT_PTR_NOT_NULL(strstr(r->out, "OrderOutForDelivery"));

    /* Refused by the engine: exit 1, the message on stderr, nothing on stdout. */
    r = CLI("cancel", "c-1", "--reason", "too late", "--json");
    CU_ASSERT_EQUAL(r->status, 1);
    CU_ASSERT_STRING_EQUAL(r->out, "");
    CU_ASSERT_PTR_NOT_NULL(strstr(r->err, "invalid_transition"));
    CU_ASSERT_PTR_NOT_NULL(strstr(r->err, "CancelOrder is not allowed"));
    r = CLI("get", "nope");
    CU_ASSERT_EQUAL(r->status, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(r->err, "not_found"));
    r = CLI("create", "c-2", "--user", "1", "--restaurant", "1", "--item", "a:A:0:1", "--address",
            "x");
    CU_ASSERT_EQUAL(r->status, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(r->err, "bad_request: data.items.0.qty"));

    r = CLI("stats", "--json");
    CU_ASSERT_EQUAL(r->status, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(r->out, "\"head_position\":"));
    r = CLI("ping");
    CU_ASSERT_EQUAL(r->status, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(r->out, "pong: head position 6"));
}

/* ISO-8601 of `us` with the given offset from UTC in minutes. */
static void s_iso(int64_t us, int offset_min, char *buf, size_t size)
{
    time_t t = (time_t)(us / 1000000) + offset_min * 60;
    struct tm tm;
    gmtime_r(&t, &tm);
    size_t n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
    n += (size_t)snprintf(buf + n, size - n, ".%06d", (int)(us % 1000000));
    if (offset_min == 0)
        snprintf(buf + n, size - n, "Z");
    else
        snprintf(buf + n, size - n, "%c%02d:%02d", offset_min < 0 ? '-' : '+', abs(offset_min) / 60,
                 abs(offset_min) % 60);
}

static void test_cli_get_at_time(void)
{
    ordo_client_t *c = ordo_client_new(s_srv.bind);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    ordo_result_t h = ORDO_RESULT_INIT;
    CU_ASSERT_EQUAL_FATAL(
        ordo_client_call(c, &(ordo_client_request_t){.type = "GetHistory", .order_id = "c-1"},
                         CALL_MS, &h),
        0);
    CU_ASSERT_EQUAL_FATAL(h.n_events, 6);
    char iso[64], num[32];
    /* The instant of version 2: the state then was Confirmed. */
    int64_t t2 = h.events[1].timestamp_us;
    s_iso(t2, 0, iso, sizeof iso);
    s_run_t *r = CLI("get", "c-1", "--at", iso, "--json");
    CU_ASSERT_EQUAL(r->status, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(r->out, "\"status\":\"Confirmed\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(r->out, "\"version\":2"));
    s_iso(t2, 150, iso, sizeof iso); /* the same instant, at +02:30 */
    r = CLI("get", "c-1", "--at", iso, "--json");
    CU_ASSERT_EQUAL(r->status, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(r->out, "\"version\":2"));
    s_iso(t2, -300, iso, sizeof iso);
    r = CLI("get", "c-1", "--at", iso, "--json");
    CU_ASSERT_PTR_NOT_NULL(strstr(r->out, "\"version\":2"));
    snprintf(num, sizeof num, "%" PRId64, h.events[4].timestamp_us);
    r = CLI("get", "c-1", "--at", num, "--json");
    CU_ASSERT_EQUAL(r->status, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(r->out, "\"status\":\"OutForDelivery\""));
    /* Before it existed: not found. */
    s_iso(h.events[0].timestamp_us - 1, 0, iso, sizeof iso);
    r = CLI("get", "c-1", "--at", iso);
    CU_ASSERT_EQUAL(r->status, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(r->err, "not_found"));
    r = CLI("get", "c-1", "--at", "2025-13-01T00:00:00Z");
    CU_ASSERT_EQUAL(r->status, 2);
    ordo_result_clear(&h);
    ordo_client_destroy(&c);
}

/* kill -9 under pipelined load through libordo, at two moments: after the
 * restart every acknowledged event is in the log with the same position
 * and bytes, positions are gap-free, and the engine goes on from there. */
#define K_SENT 1500
static void test_kill9_under_load(void)
{
    s_server_t srv;
    CU_ASSERT_EQUAL_FATAL(s_server_start(&srv), 0);
    static struct {
        int64_t position;
        uint8_t raw[2048];
        size_t len;
    } acked[2 * K_SENT];
    size_t n_acked = 0;
    ordo_result_t r = ORDO_RESULT_INIT;
    const int kill_after[] = {60, 1100};
    for (int round = 0; round < 2; round++) {
        ordo_client_t *c = ordo_client_new(srv.bind);
        CU_ASSERT_PTR_NOT_NULL_FATAL(c);
        char oid[32];
        for (int i = 0; i < K_SENT; i++) {
            snprintf(oid, sizeof oid, "k9-%d-%d", round, i);
            ordo_client_request_t req = s_create(oid);
            CU_ASSERT_EQUAL_FATAL(ordo_client_send(c, &req, NULL), 0);
        }
        for (int got = 0; got < kill_after[round]; got++) {
            CU_ASSERT_EQUAL_FATAL(ordo_client_recv(c, 30000, &r), 0);
            CU_ASSERT_FATAL(r.ok && r.event && r.event->raw_len <= sizeof acked[0].raw);
            acked[n_acked].position = r.position;
            acked[n_acked].len = r.event->raw_len;
            memcpy(acked[n_acked].raw, r.event->raw, r.event->raw_len);
            n_acked++;
        }
        kill(srv.pid, SIGKILL);
        waitpid(srv.pid, NULL, 0);
        ordo_client_destroy(&c);
        CU_ASSERT_EQUAL_FATAL(s_server_spawn(&srv), 0);
        c = ordo_client_new(srv.bind);
        CU_ASSERT_EQUAL_FATAL(
            ordo_client_call(c, &(ordo_client_request_t){.type = "Ping"}, 10000, &r), 0);
        int64_t head = r.head_position, next = 1;
        CU_ASSERT_FATAL(head >= acked[n_acked - 1].position);
        static uint8_t seen[2 * K_SENT + 8]; /* every request sent, and one more per round */
        CU_ASSERT_FATAL(head < (int64_t)sizeof seen);
        memset(seen, 0, sizeof seen);
        while (next <= head) {
            ordo_client_request_t page = {.type = "ReadAll", .from_position = next, .limit = 10000};
            CU_ASSERT_EQUAL_FATAL(ordo_client_call(c, &page, 10000, &r), 0);
            CU_ASSERT_FATAL(r.n_events > 0);
            for (size_t e = 0; e < r.n_events; e++) {
                const ordo_client_event_t *ev = &r.events[e];
                CU_ASSERT_EQUAL_FATAL((int64_t)ev->position, next); /* gap-free */
                for (size_t a = 0; a < n_acked; a++)
                    if (acked[a].position == next)
                        CU_ASSERT(ev->raw_len == acked[a].len &&
                                  memcmp(ev->raw, acked[a].raw, acked[a].len) == 0);
                seen[next] = 1;
                next++;
            }
        }
        for (size_t a = 0; a < n_acked; a++)
            CU_ASSERT(acked[a].position <= head && seen[acked[a].position]);
        snprintf(oid, sizeof oid, "k9-after-%d", round);
        ordo_client_request_t more = s_create(oid);
        CU_ASSERT_EQUAL(ordo_client_call(c, &more, 10000, &r), 0);
        CU_ASSERT_EQUAL(r.position, head + 1); /* goes on from there */
        ordo_client_destroy(&c);
    }
    ordo_result_clear(&r);
    CU_ASSERT_EQUAL(s_server_stop(&srv), 0);
    ordo_test_rm_rf(srv.dir);
}

static void test_cli_tail(void)
{
    s_run_t *r = CLI("tail", "--from", "1", "--count", "6", "--json");
    CU_ASSERT_EQUAL(r->status, 0);
    CU_ASSERT_EQUAL(s_count(r->out, "\n"), 6);
    CU_ASSERT_EQUAL(strncmp(r->out, "{\"position\":1,", 14), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(r->out, "{\"position\":6,"));
    r = CLI("tail", "--from", "2", "--count", "1", "--type", "OrderPrep");
    CU_ASSERT_EQUAL(r->status, 0);
    CU_ASSERT_EQUAL(s_count(r->out, "\n"), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(r->out, "c-1 v3  OrderPreparing"));
}

static void test_cli_usage_and_no_server(void)
{
    s_run_t *r = CLI("--help");
    CU_ASSERT_EQUAL(r->status, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(r->out, "Usage: ordo-cli"));
    r = CLI("--version");
    CU_ASSERT_EQUAL(r->status, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(r->out, "ordo-cli "));
    r = CLI("launch", "x");
    CU_ASSERT_EQUAL(r->status, 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(r->err, "unknown command"));
    CU_ASSERT_STRING_EQUAL(r->out, "");
    r = CLI("create", "x", "--user", "1");
    CU_ASSERT_EQUAL(r->status, 2);
    r = CLI("confirm");
    CU_ASSERT_EQUAL(r->status, 2);
    r = CLI("confirm", "x", "--reason", "no");
    CU_ASSERT_EQUAL(r->status, 2);
    r = CLI("ping", "--bogus");
    CU_ASSERT_EQUAL(r->status, 2);
    r = CLI("get", "x", "--version", "two");
    CU_ASSERT_EQUAL(r->status, 2);
    char ep[64];
    snprintf(ep, sizeof ep, "tcp://127.0.0.1:%d", s_free_port());
    r = CLI("ping", "--endpoint", ep, "--timeout", "200");
    CU_ASSERT_EQUAL(r->status, 3);
    CU_ASSERT_PTR_NOT_NULL(strstr(r->err, "no answer"));
    CU_ASSERT_STRING_EQUAL(r->out, "");
}

/* ---- the read side: raw calls and ordo-cli against ordo-projector ------- */

static void s_pack_cstr(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str(pk, strlen(s));
    msgpack_pack_str_body(pk, s, strlen(s));
}

/* A query body, packed with msgpack-c into *sb (initialised here):
 * {type, request_id?, order_id?, min_position?, wait_ms?}; NULL and
 * negative values are left out. */
static void s_pack_query(msgpack_sbuffer *sb, const char *type, const char *request_id,
                         const char *order_id, int64_t min_position, int64_t wait_ms)
{
    msgpack_sbuffer_init(sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 1 + (request_id != NULL) + (order_id != NULL) + (min_position >= 0) +
                              (wait_ms >= 0));
    s_pack_cstr(&pk, "type");
    s_pack_cstr(&pk, type);
    if (request_id) {
        s_pack_cstr(&pk, "request_id");
        s_pack_cstr(&pk, request_id);
    }
    if (order_id) {
        s_pack_cstr(&pk, "order_id");
        s_pack_cstr(&pk, order_id);
    }
    if (min_position >= 0) {
        s_pack_cstr(&pk, "min_position");
        msgpack_pack_int64(&pk, min_position);
    }
    if (wait_ms >= 0) {
        s_pack_cstr(&pk, "wait_ms");
        msgpack_pack_int64(&pk, wait_ms);
    }
}

/* Starts ordo-projector on s_srv (data in its folder, a new port) and
 * polls ProjectionStatus until it answers (30 s at most). */
static int s_projector_start(s_projector_t *p)
{
    const char *bin = getenv("ORDO_PROJECTOR");
    if (!bin || !*bin) {
        fprintf(stderr, "ORDO_PROJECTOR is not set (run through ctest)\n");
        return -1;
    }
    snprintf(p->bind, sizeof p->bind, "tcp://127.0.0.1:%d", s_free_port());
    char data[300], log[300];
    snprintf(data, sizeof data, "%s/projections", s_srv.dir);
    snprintf(log, sizeof log, "%s/projector.log", s_srv.dir);
    p->pid = fork();
    if (p->pid < 0)
        return -1;
    if (p->pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execl(bin, bin, "--engine", s_srv.bind, "--engine-pub", s_srv.pub, "--bind", p->bind,
              "--data-dir", data, (char *)NULL);
        _exit(127);
    }
    ordo_client_t *c = ordo_client_new(p->bind);
    int64_t deadline = s_now_ms() + 30000;
    int rc = -1;
    while (c && s_now_ms() < deadline) {
        if (waitpid(p->pid, NULL, WNOHANG) == p->pid) {
            p->pid = 0;
            break;
        }
        char id[ORDO_ID_SIZE];
        ordo_client_new_request_id(c, id);
        msgpack_sbuffer sb;
        s_pack_query(&sb, "ProjectionStatus", id, NULL, -1, -1);
        uint8_t *reply = NULL;
        size_t len = 0;
        int r = ordo_client_call_raw(c, sb.data, sb.size, 200, &reply, &len);
        msgpack_sbuffer_destroy(&sb);
        free(reply);
        if (r == 0) {
            rc = 0;
            break;
        }
    }
    ordo_client_destroy(&c);
    if (rc != 0)
        fprintf(stderr, "ordo-projector did not answer ProjectionStatus (log in %s)\n", log);
    return rc;
}

/* SIGTERM; the exit status if it exited within 60 s, else -1. */
static int s_projector_stop(s_projector_t *p)
{
    if (p->pid <= 0)
        return -1;
    kill(p->pid, SIGTERM);
    int st = s_wait_child(p->pid, 60000);
    if (st == -1) {
        kill(p->pid, SIGKILL);
        waitpid(p->pid, NULL, 0);
    }
    p->pid = 0;
    return st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int s_read_side_init(void)
{
    memset(&s_proj, 0, sizeof s_proj);
    if (s_suite_init() != 0)
        return -1;
    return s_projector_start(&s_proj) == 0 ? 0 : -1;
}

static int s_read_side_clean(void)
{
    if (s_proj.pid > 0)
        s_projector_stop(&s_proj);
    memset(&s_proj, 0, sizeof s_proj);
    return s_suite_clean();
}

static void test_projector_stops_cleanly(void)
{
    CU_ASSERT_EQUAL(s_projector_stop(&s_proj), 0);
}

static bool s_has(const uint8_t *reply, size_t len, const char *text)
{
    return reply && memmem(reply, len, text, strlen(text)) != NULL;
}

static void test_raw_calls(void)
{
    ordo_client_t *c = ordo_client_new(s_proj.bind);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    msgpack_sbuffer sb;
    uint8_t *reply = NULL;
    size_t len = 0;
    char id[ORDO_ID_SIZE], id2[ORDO_ID_SIZE];
    ordo_client_new_request_id(c, id);
    ordo_client_new_request_id(c, id2);
    CU_ASSERT(strcmp(id, id2) != 0);

    s_pack_query(&sb, "ProjectionStatus", id, NULL, -1, -1);
    CU_ASSERT_EQUAL(ordo_client_call_raw(c, sb.data, sb.size, CALL_MS, &reply, &len), 0);
    CU_ASSERT(s_has(reply, len, "engine_head") && s_has(reply, len, id));
    free(reply);
    msgpack_sbuffer_destroy(&sb);

    /* The projector's errors: ORDO_E_PROTOCOL, the reply handed over. */
    s_pack_query(&sb, "GetOrderSummary", "raw-2", "nope", -1, -1);
    CU_ASSERT_EQUAL(ordo_client_call_raw(c, sb.data, sb.size, CALL_MS, &reply, &len),
                    ORDO_E_PROTOCOL);
    CU_ASSERT(s_has(reply, len, "not_found") && s_has(reply, len, "raw-2"));
    free(reply);
    msgpack_sbuffer_destroy(&sb);

    /* Bodies refused before sending: no request_id, not a map, trailing
     * bytes. */
    s_pack_query(&sb, "ProjectionStatus", NULL, NULL, -1, -1);
    reply = (uint8_t *)"x";
    CU_ASSERT_EQUAL(ordo_client_call_raw(c, sb.data, sb.size, CALL_MS, &reply, &len),
                    ORDO_E_INVALID);
    CU_ASSERT_PTR_NULL(reply);
    msgpack_sbuffer_destroy(&sb);
    static const uint8_t array[] = {0x91, 0x01};
    CU_ASSERT_EQUAL(ordo_client_call_raw(c, array, sizeof array, CALL_MS, &reply, &len),
                    ORDO_E_INVALID);
    s_pack_query(&sb, "ProjectionStatus", "raw-3", NULL, -1, -1);
    msgpack_sbuffer_write(&sb, "\xc0", 1);
    CU_ASSERT_EQUAL(ordo_client_call_raw(c, sb.data, sb.size, CALL_MS, &reply, &len),
                    ORDO_E_INVALID);
    msgpack_sbuffer_destroy(&sb);

    /* A call that timed out: its late answer (lagging, a code the engine's
     * reply decoder does not know) comes during the next call, which drops
     * it, and leaves nothing for recv. */
    s_pack_query(&sb, "GetOrderSummary", "raw-late", "nope", 1000000000, 300);
    CU_ASSERT_EQUAL(ordo_client_call_raw(c, sb.data, sb.size, 50, &reply, &len), ORDO_E_TIMEOUT);
    CU_ASSERT_PTR_NULL(reply);
    msgpack_sbuffer_destroy(&sb);
    s_pack_query(&sb, "GetOrderSummary", "raw-wait", "nope", 1000000000, 600);
    CU_ASSERT_EQUAL(ordo_client_call_raw(c, sb.data, sb.size, CALL_MS, &reply, &len),
                    ORDO_E_PROTOCOL);
    CU_ASSERT(s_has(reply, len, "lagging") && s_has(reply, len, "raw-wait"));
    free(reply);
    msgpack_sbuffer_destroy(&sb);
    ordo_result_t r = ORDO_RESULT_INIT;
    CU_ASSERT_EQUAL(ordo_client_recv(c, 0, &r), ORDO_E_IDLE);
    ordo_client_destroy(&c);

    /* Beside pipelined requests on the engine: the raw call takes its own
     * reply, the pipelined one waits for recv. */
    c = ordo_client_new(s_srv.bind);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    char sent[ORDO_ID_SIZE];
    CU_ASSERT_EQUAL(
        ordo_client_send(c, &(ordo_client_request_t){.type = "GetOrder", .order_id = "nope"}, sent),
        0);
    ordo_client_new_request_id(c, id);
    s_pack_query(&sb, "Ping", id, NULL, -1, -1);
    CU_ASSERT_EQUAL(ordo_client_call_raw(c, sb.data, sb.size, CALL_MS, &reply, &len), 0);
    CU_ASSERT(s_has(reply, len, "head_position") && s_has(reply, len, id));
    free(reply);
    msgpack_sbuffer_destroy(&sb);
    CU_ASSERT_EQUAL(ordo_client_in_flight(c), 1);
    CU_ASSERT_EQUAL(ordo_client_recv(c, CALL_MS, &r), 0);
    CU_ASSERT_STRING_EQUAL(r.request_id, sent);
    CU_ASSERT_STRING_EQUAL(r.code, "not_found");
    ordo_result_clear(&r);
    ordo_client_destroy(&c);
}

/* Calls and checks a command on the engine; returns the reply's position. */
static int64_t s_do(ordo_client_t *c, ordo_client_request_t req, ordo_result_t *r)
{
    int rc = ordo_client_call(c, &req, CALL_MS, r);
    CU_ASSERT_EQUAL(rc, 0);
    return rc == 0 ? r->position : -1;
}

/* Where `needle` starts in `hay`, or -1. */
static long s_at(const char *hay, const char *needle)
{
    const char *p = strstr(hay, needle);
    return p ? (long)(p - hay) : -1;
}

static void test_cli_read_side(void)
{
    /* p-1 delivered (courier 99); p-2 cancelled (user 43); p-3 preparing
     * at restaurant 9; p-4 created. Users 42 but p-2; restaurant 7 but p-3. */
    ordo_client_t *c = ordo_client_new(s_srv.bind);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    ordo_result_t r = ORDO_RESULT_INIT;
    s_do(c, s_create("p-1"), &r);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r.event);
    int64_t created_us = r.event->timestamp_us;
    int64_t confirmed =
        s_do(c, (ordo_client_request_t){.type = "ConfirmOrder", .order_id = "p-1"}, &r);
    s_do(c, (ordo_client_request_t){.type = "StartPreparing", .order_id = "p-1"}, &r);
    s_do(c, (ordo_client_request_t){.type = "MarkReady", .order_id = "p-1"}, &r);
    s_do(c, (ordo_client_request_t){.type = "PickUp", .order_id = "p-1", .has_courier_id = true,
                                    .courier_id = 99}, &r);
    s_do(c, (ordo_client_request_t){.type = "Deliver", .order_id = "p-1"}, &r);
    ordo_client_request_t req = s_create("p-2");
    req.user_id = 43;
    s_do(c, req, &r);
    s_do(c, (ordo_client_request_t){.type = "CancelOrder", .order_id = "p-2",
                                    .reason = "changed mind"}, &r);
    req = s_create("p-3");
    req.restaurant_id = 9;
    s_do(c, req, &r);
    s_do(c, (ordo_client_request_t){.type = "ConfirmOrder", .order_id = "p-3"}, &r);
    s_do(c, (ordo_client_request_t){.type = "StartPreparing", .order_id = "p-3"}, &r);
    int64_t head = s_do(c, s_create("p-4"), &r);
    ordo_result_clear(&r);
    ordo_client_destroy(&c);
    char pos[32], conf[32], from[32], to[32], iso[64];
    snprintf(pos, sizeof pos, "%" PRId64, head);
    snprintf(conf, sizeof conf, "%" PRId64, confirmed);

    /* Every first read of a model waits for our writes: --min-position. */
    s_run_t *o = CLI("summary", "p-1", "--min-position", pos, "--json");
    CU_ASSERT_EQUAL(o->status, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(o->out, "\"status\":\"Delivered\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(o->out, "\"courier_id\":99"));
    CU_ASSERT_PTR_NOT_NULL(strstr(o->out, "\"item_count\":3"));
    CU_ASSERT_STRING_EQUAL(o->err, "");
    o = CLI("summary", "p-2", "--min-position", pos);
    CU_ASSERT_EQUAL(o->status, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(o->out, "status       Cancelled\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(o->out, "total        28.00\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(o->out, "cancelled    changed mind (was Created)\n"));
    o = CLI("summary", "nope", "--json");
    CU_ASSERT_EQUAL(o->status, 1);
    CU_ASSERT_STRING_EQUAL(o->out, "");
    CU_ASSERT_PTR_NOT_NULL(strstr(o->err, "ordo-cli: not_found: "));

    /* Listings: oldest first, filters, pages, --all. */
    o = CLI("orders", "--min-position", pos);
    CU_ASSERT_EQUAL(o->status, 0);
    CU_ASSERT_EQUAL(strncmp(o->out, "ORDER ", 6), 0);
    CU_ASSERT_EQUAL(s_count(o->out, "\n"), 6);
    CU_ASSERT_PTR_NOT_NULL(strstr(o->out, "\n4 orders (position "));
    CU_ASSERT(s_at(o->out, "p-1") < s_at(o->out, "p-2") &&
              s_at(o->out, "p-3") < s_at(o->out, "p-4"));
    o = CLI("orders", "--status", "Created,Preparing", "--json");
    CU_ASSERT_EQUAL(o->status, 0);
    CU_ASSERT_EQUAL(s_count(o->out, "\"order_id\""), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(o->out, "\"p-3\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(o->out, "\"p-4\""));
    o = CLI("orders", "--restaurant", "7", "--user", "42", "--json");
    CU_ASSERT_EQUAL(s_count(o->out, "\"order_id\""), 2);
    o = CLI("orders", "--limit", "1");
    CU_ASSERT_EQUAL(o->status, 0);
    const char *more = strstr(o->out, "; more with --cursor ");
    CU_ASSERT_PTR_NOT_NULL_FATAL(more);
    char cursor[256];
    snprintf(cursor, sizeof cursor, "%s", more + strlen("; more with --cursor "));
    cursor[strcspn(cursor, "\n")] = '\0';
    o = CLI("orders", "--limit", "1", "--cursor", cursor, "--json");
    CU_ASSERT_EQUAL(o->status, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(o->out, "\"order_id\":\"p-2\""));
    o = CLI("orders", "--limit", "1", "--all");
    CU_ASSERT_EQUAL(o->status, 0);
    CU_ASSERT_EQUAL(s_count(o->out, "\n"), 6); /* one heading, four rows, one total */
    CU_ASSERT_PTR_NOT_NULL(strstr(o->out, "\n4 orders (position"));
    CU_ASSERT_PTR_NULL(strstr(o->out, "more with"));
    o = CLI("orders", "--limit", "1", "--all", "--json");
    CU_ASSERT_EQUAL(s_count(o->out, "\n"), 4); /* one reply per line */
    CU_ASSERT_EQUAL(s_count(o->out, "\"next_cursor\":null"), 1);

    /* The restaurant's board and a user's history. */
    o = CLI("board", "7", "--min-position", pos, "--json");
    CU_ASSERT_EQUAL(o->status, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(o->out, "\"Delivered\":1"));
    CU_ASSERT_PTR_NOT_NULL(strstr(o->out, "\"Cancelled\":1"));
    CU_ASSERT_PTR_NOT_NULL(strstr(o->out, "\"Created\":1"));
    CU_ASSERT_EQUAL(s_count(o->out, "\"order_id\""), 1);
    o = CLI("board", "7");
    CU_ASSERT_EQUAL(o->status, 0);
    CU_ASSERT_EQUAL(strncmp(o->out, "restaurant 7 (position ", 23), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(o->out, "\n1 active order:\nORDER "));
    CU_ASSERT_PTR_NOT_NULL(strstr(o->out, "\np-4 "));
    o = CLI("user", "42", "--min-position", pos, "--json");
    CU_ASSERT_EQUAL(o->status, 0);
    CU_ASSERT_EQUAL(s_count(o->out, "\"order_id\""), 3);
    CU_ASSERT(s_at(o->out, "p-4") < s_at(o->out, "p-3") &&
              s_at(o->out, "p-3") < s_at(o->out, "p-1"));
    o = CLI("user", "42", "--limit", "2", "--all");
    CU_ASSERT_PTR_NOT_NULL(strstr(o->out, "\n3 orders (position"));

    /* Analytics: the day of the orders, restaurant 7 (p-1, p-2, p-4). */
    const int64_t day_us = 86400000000;
    int64_t day = created_us - created_us % day_us;
    snprintf(from, sizeof from, "%" PRId64, day);
    snprintf(to, sizeof to, "%" PRId64, day + day_us);
    o = CLI("analytics", "--from", from, "--to", to, "--bucket", "day", "--restaurant", "7",
            "--min-position", pos, "--json");
    CU_ASSERT_EQUAL(o->status, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(o->out, "\"created\":3,\"confirmed\":1,\"delivered\":1,"
                                          "\"cancelled\":1,\"revenue_cents\":2800"));
    o = CLI("analytics", "--from", from, "--to", to, "--bucket", "day", "--restaurant", "7");
    CU_ASSERT_EQUAL(o->status, 0);
    CU_ASSERT_EQUAL(strncmp(o->out, "BUCKET ", 7), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(o->out, "28.00"));
    CU_ASSERT_PTR_NOT_NULL(strstr(o->out, "\n1 bucket; "));

    /* The past: by position (p-1 just confirmed) and by time (p-1 just
     * created, nothing else yet). */
    o = CLI("as-of", "--position", conf, "--min-position", pos, "--json");
    CU_ASSERT_EQUAL(o->status, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(o->out, "\"status\":\"Confirmed\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(o->out, "\"total\":1"));
    s_iso(created_us, 0, iso, sizeof iso);
    o = CLI("as-of", iso);
    CU_ASSERT_EQUAL(o->status, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(o->out, "\np-1 "));
    CU_ASSERT_PTR_NOT_NULL(strstr(o->out, "\n1 of 1 order as of "));
    o = CLI("as-of", "--position", pos, "--status", "Preparing,Cancelled", "--limit", "1",
            "--all");
    CU_ASSERT_EQUAL(o->status, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(o->out, "\n2 of 2 orders as of position "));

    /* The models, a rebuild, and a model that has not got there yet. */
    o = CLI("projections");
    CU_ASSERT_EQUAL(o->status, 0);
    CU_ASSERT_EQUAL(strncmp(o->out, "NAME ", 5), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(o->out, "\ntimeline "));
    CU_ASSERT_PTR_NOT_NULL(strstr(o->out, "\nengine head "));
    o = CLI("rebuild", "user");
    CU_ASSERT_EQUAL(o->status, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(o->out, "user: rebuilding"));
    o = CLI("user", "42", "--min-position", pos, "--json");
    CU_ASSERT_EQUAL(o->status, 0);
    CU_ASSERT_EQUAL(s_count(o->out, "\"order_id\""), 3);
    o = CLI("rebuild", "nosuch");
    CU_ASSERT_EQUAL(o->status, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(o->err, "bad_request"));
    o = CLI("summary", "p-1", "--min-position", "1000000000", "--wait-ms", "100");
    CU_ASSERT_EQUAL(o->status, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(o->err, "ordo-cli: lagging: "));
    CU_ASSERT_STRING_EQUAL(o->out, "");

    /* Usage errors, and no projector. */
    CU_ASSERT_EQUAL(CLI("as-of")->status, 2);
    CU_ASSERT_EQUAL(CLI("as-of", iso, "--position", "3")->status, 2);
    CU_ASSERT_EQUAL(CLI("board", "seven")->status, 2);
    CU_ASSERT_EQUAL(CLI("orders", "--bucket", "day")->status, 2);
    CU_ASSERT_EQUAL(CLI("analytics", "--from", from)->status, 2);
    CU_ASSERT_EQUAL(CLI("orders", "--wait-ms", "10001")->status, 2);
    o = CLI("--help");
    CU_ASSERT_PTR_NOT_NULL(strstr(o->out, "  board RESTAURANT "));
    char ep[64];
    snprintf(ep, sizeof ep, "tcp://127.0.0.1:%d", s_free_port());
    o = CLI("projections", "--projector", ep, "--timeout", "200");
    CU_ASSERT_EQUAL(o->status, 3);
    CU_ASSERT_PTR_NOT_NULL(strstr(o->err, "no answer"));
    CU_ASSERT_STRING_EQUAL(o->out, "");
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("client: synchronous calls", s_suite_init, s_suite_clean);
    CU_add_test(s, "create, confirm, get, history, cancel", test_sync_lifecycle);
    CU_add_test(s, "protocol errors as values", test_protocol_errors);
    CU_add_test(s, "stats, ping, read all", test_stats_and_ping);
    CU_add_test(s, "a call among pipelined requests", test_call_among_pipelined);
    CU_add_test(s, "routing by the partition map, one engine", test_router_one_engine);
    CU_add_test(s, "server stops with status 0", test_server_stops_cleanly);

    s = CU_add_suite("client: pipelining", s_suite_init, s_suite_clean);
    CU_add_test(s, "2000 requests on 200 orders", test_pipelined_2000);
    CU_add_test(s, "server stops with status 0", test_server_stops_cleanly);

    s = CU_add_suite("client: crash", NULL, NULL);
    CU_add_test(s, "kill -9 under pipelined load, twice", test_kill9_under_load);

    s = CU_add_suite("client: timeouts", NULL, NULL);
    CU_add_test(s, "no server: every wait ends", test_timeouts_without_server);

    s = CU_add_suite("client: subscription", s_suite_init, s_suite_clean);
    CU_add_test(s, "late subscriber, live events, filter", test_sub_late_subscriber);
    CU_add_test(s, "gaps and duplicates on PUB", test_sub_gaps_and_duplicates);
    CU_add_test(s, "server stops with status 0", test_server_stops_cleanly);

    s = CU_add_suite("ordo-cli", s_suite_init, s_suite_clean);
    CU_add_test(s, "an order's whole life", test_cli_order_life);
    CU_add_test(s, "get --at", test_cli_get_at_time);
    CU_add_test(s, "tail", test_cli_tail);
    CU_add_test(s, "usage errors and no server", test_cli_usage_and_no_server);
    CU_add_test(s, "server stops with status 0", test_server_stops_cleanly);

    s = CU_add_suite("read side: ordo-projector", s_read_side_init, s_read_side_clean);
    CU_add_test(s, "raw calls", test_raw_calls);
    CU_add_test(s, "ordo-cli's queries", test_cli_read_side);
    CU_add_test(s, "projector stops with status 0", test_projector_stops_cleanly);
    CU_add_test(s, "server stops with status 0", test_server_stops_cleanly);
    return ordo_test_run();
}
