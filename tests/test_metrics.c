/* Tests for metrics/: histogram buckets (bounds inclusive, overflow into
 * +Inf, sums), the Prometheus text writer (families, label escaping,
 * cumulative buckets, +Inf = _count, scaling), addresses, and the /metrics
 * server answering GET /metrics only (404, 405), on a port it chose. */
#include "ordo_buckets.h"
#include "ordo_metrics_addr.h"
#include "ordo_metrics_http.h"
#include "ordo_metrics_text.h"
#include "ordo_test.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void test_histogram_buckets(void)
{
    static const uint64_t bounds[] = {10, 100, 1000};
    ordo_buckets_t h;
    ordo_buckets_init(&h, bounds, 3);
    uint64_t values[] = {0, 10, 11, 100, 101, 1000, 1001, 5000000};
    for (size_t i = 0; i < sizeof values / sizeof *values; i++)
        ordo_buckets_observe(&h, values[i]);
    CU_ASSERT_EQUAL(h.count[0], 2); /* 0, 10: a bound is inclusive */
    CU_ASSERT_EQUAL(h.count[1], 2); /* 11, 100 */
    CU_ASSERT_EQUAL(h.count[2], 2); /* 101, 1000 */
    CU_ASSERT_EQUAL(h.count[3], 2); /* above the last: +Inf */
    CU_ASSERT_EQUAL(h.sum, 0 + 10 + 11 + 100 + 101 + 1000 + 1001 + 5000000);
    /* More bounds than it holds are cut, not overrun. */
    uint64_t many[ORDO_BUCKETS_MAX + 5];
    for (size_t i = 0; i < sizeof many / sizeof *many; i++)
        many[i] = i + 1;
    ordo_buckets_init(&h, many, sizeof many / sizeof *many);
    CU_ASSERT_EQUAL(h.n, ORDO_BUCKETS_MAX);
    ordo_buckets_observe(&h, 1000);
    CU_ASSERT_EQUAL(h.count[ORDO_BUCKETS_MAX], 1);
}

static void test_text_format(void)
{
    ordo_mtext_t t;
    ordo_mtext_init(&t);
    ordo_mtext_family(&t, "x_total", "counter", "Help with \\ and\nnewline");
    ordo_mtext_uint(&t, "x_total", "code", "a\"b\\c\nd", 7);
    ordo_mtext_int(&t, "y", NULL, NULL, -3);
    ordo_mtext_double(&t, "z", NULL, NULL, 0.25);
    CU_ASSERT_FALSE(t.failed);
    CU_ASSERT_STRING_EQUAL(t.data, "# HELP x_total Help with \\\\ and\\nnewline\n"
                                   "# TYPE x_total counter\n"
                                   "x_total{code=\"a\\\"b\\\\c\\nd\"} 7\n"
                                   "y -3\n"
                                   "z 0.25\n");
    ordo_mtext_free(&t);
}

static void test_text_histogram(void)
{
    static const uint64_t bounds[] = {1000000, 5000000}; /* 1 ms, 5 ms in ns */
    ordo_buckets_t h;
    ordo_buckets_init(&h, bounds, 2);
    ordo_buckets_observe(&h, 500000);
    ordo_buckets_observe(&h, 2000000);
    ordo_buckets_observe(&h, 2000000);
    ordo_buckets_observe(&h, 9000000);
    ordo_mtext_t t;
    ordo_mtext_init(&t);
    ordo_mtext_histogram(&t, "d_seconds", "Durations", &h, 1e-9);
    CU_ASSERT_FALSE(t.failed);
    CU_ASSERT_STRING_EQUAL(t.data, "# HELP d_seconds Durations\n"
                                   "# TYPE d_seconds histogram\n"
                                   "d_seconds_bucket{le=\"0.001\"} 1\n"
                                   "d_seconds_bucket{le=\"0.005\"} 3\n"
                                   "d_seconds_bucket{le=\"+Inf\"} 4\n"
                                   "d_seconds_sum 0.0135\n"
                                   "d_seconds_count 4\n");
    ordo_mtext_free(&t);
}

static void test_addresses(void)
{
    char err[256];
    const char *good[] = {"127.0.0.1:9464", "[::1]:9464", "localhost:0", "0.0.0.0:65535"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        CU_ASSERT_EQUAL(ordo_metrics_addr_check(good[i], err, sizeof err), 0);
    const char *bad[] = {"",          "9464",         "127.0.0.1",     "127.0.0.1:",
                         ":9464",     "127.0.0.1:x",  "127.0.0.1:65536", "127.0.0.1:123456",
                         "::1:9464",  "[::1]9464",    "[::1",          "127.0.0.1:-1"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        err[0] = '\0';
        CU_ASSERT_EQUAL(ordo_metrics_addr_check(bad[i], err, sizeof err), -1);
        CU_ASSERT(err[0] != '\0');
    }
    char longer[400];
    memset(longer, 'a', sizeof longer - 1);
    longer[sizeof longer - 1] = '\0';
    CU_ASSERT_EQUAL(ordo_metrics_addr_check(longer, err, sizeof err), -1);
}

static int s_renders;
static void s_render(void *ctx, ordo_mtext_t *out)
{
    (void)ctx;
    s_renders++;
    ordo_mtext_family(out, "t_total", "counter", "A test counter");
    ordo_mtext_uint(out, "t_total", NULL, NULL, 42);
}

/* Sends `request` to 127.0.0.1:port and returns the status code (0 if
 * none); `body` gets what follows the headers. */
static int s_http(uint16_t port, const char *request, char *body, size_t size)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        if (fd >= 0)
            close(fd);
        return 0;
    }
    (void)!write(fd, request, strlen(request));
    char buf[8192];
    size_t got = 0;
    ssize_t n;
    while (got < sizeof buf - 1 && (n = read(fd, buf + got, sizeof buf - 1 - got)) > 0)
        got += (size_t)n;
    buf[got] = '\0';
    close(fd);
    int status = 0;
    sscanf(buf, "HTTP/1.%*d %d", &status);
    const char *start = strstr(buf, "\r\n\r\n");
    snprintf(body, size, "%s", start ? start + 4 : "");
    return status;
}

static void test_http_server(void)
{
    char err[256], body[4096];
    ordo_metrics_http_t *srv = ordo_metrics_http_start("127.0.0.1:0", s_render, NULL, err,
                                                       sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(srv);
    uint16_t port = ordo_metrics_http_port(srv);
    CU_ASSERT(port != 0);
    const char *close_hdr = "Host: x\r\nConnection: close\r\n\r\n";
    char req[256];
    snprintf(req, sizeof req, "GET /metrics HTTP/1.1\r\n%s", close_hdr);
    CU_ASSERT_EQUAL(s_http(port, req, body, sizeof body), 200);
    CU_ASSERT_PTR_NOT_NULL(strstr(body, "t_total 42\n"));
    CU_ASSERT_EQUAL(s_renders, 1);
    snprintf(req, sizeof req, "GET / HTTP/1.1\r\n%s", close_hdr);
    CU_ASSERT_EQUAL(s_http(port, req, body, sizeof body), 404);
    snprintf(req, sizeof req, "POST /metrics HTTP/1.1\r\nContent-Length: 3\r\n%sabc", close_hdr);
    CU_ASSERT_EQUAL(s_http(port, req, body, sizeof body), 405);
    snprintf(req, sizeof req, "DELETE /metrics HTTP/1.1\r\n%s", close_hdr);
    CU_ASSERT_EQUAL(s_http(port, req, body, sizeof body), 405);
    CU_ASSERT_EQUAL(s_renders, 1); /* nothing but GET /metrics renders */
    /* A second server cannot take the same port. */
    char addr[32];
    snprintf(addr, sizeof addr, "127.0.0.1:%u", port);
    CU_ASSERT_PTR_NULL(ordo_metrics_http_start(addr, s_render, NULL, err, sizeof err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "cannot serve metrics"));
    ordo_metrics_http_stop(&srv);
    CU_ASSERT_PTR_NULL(srv);
    ordo_metrics_http_stop(&srv); /* safe twice */
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("metrics", NULL, NULL);
    CU_add_test(s, "histogram buckets", test_histogram_buckets);
    CU_add_test(s, "text format", test_text_format);
    CU_add_test(s, "text histogram", test_text_histogram);
    CU_add_test(s, "addresses", test_addresses);
    CU_add_test(s, "http server", test_http_server);
    return ordo_test_run();
}
