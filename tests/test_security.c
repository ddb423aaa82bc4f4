/* Tests for security/: which endpoints count as loopback, reading
 * certificates (good, public only, mismatched, missing, not one, too big),
 * the allow-list (repeats and strangers skipped), and a CURVE server
 * guarded by zauth answering a listed client over TCP. */
#include "ordo_auth.h"
#include "ordo_cert.h"
#include "ordo_exposure.h"
#include "ordo_test.h"

#include <czmq.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static void test_loopback_endpoints(void)
{
    const char *local[] = {"tcp://127.0.0.1:7700", "tcp://127.1.2.3:1",   "tcp://127.255.255.255:9",
                           "tcp://[::1]:7700",     "ipc:///tmp/ordo.sock", "inproc://ordo-test"};
    const char *exposed[] = {"tcp://0.0.0.0:7700",    "tcp://*:7700",         "tcp://eth0:7700",
                             "tcp://localhost:7700",  "tcp://10.0.0.1:7700",  "tcp://128.0.0.1:1",
                             "tcp://127.0.0:7700",    "tcp://127.0.0.1.5:1",  "tcp://127.0.0.256:1",
                             "tcp://127.0.0.01111:1", "tcp://127..0.1:1",     "tcp://127.0.0.1",
                             "tcp://[::]:7700",       "tcp://[::2]:7700",     "pgm://eth0;239.1.1.1:1",
                             "udp://127.0.0.1:1",     "tcp://1127.0.0.1:1",   "tcp://127.0.0.:1",
                             "",                      "tcp://",               NULL};
    for (size_t i = 0; i < sizeof local / sizeof *local; i++)
        CU_ASSERT_TRUE(ordo_endpoint_is_local(local[i]));
    for (size_t i = 0; i < sizeof exposed / sizeof *exposed; i++)
        CU_ASSERT_FALSE(ordo_endpoint_is_local(exposed[i]));
    /* HTTP servers' HOST:PORT (--metrics, --http). */
    CU_ASSERT_TRUE(ordo_hostport_is_local("127.0.0.1:9464"));
    CU_ASSERT_TRUE(ordo_hostport_is_local("[::1]:9464"));
    CU_ASSERT_FALSE(ordo_hostport_is_local("0.0.0.0:9464"));
    CU_ASSERT_FALSE(ordo_hostport_is_local("localhost:9464"));
    CU_ASSERT_FALSE(ordo_hostport_is_local("10.1.2.3:80"));
    CU_ASSERT_FALSE(ordo_hostport_is_local(NULL));
    char longer[400];
    memset(longer, '1', sizeof longer - 1);
    longer[sizeof longer - 1] = '\0';
    CU_ASSERT_FALSE(ordo_hostport_is_local(longer));
}

static char s_dir[256];

static void s_path(char *buf, size_t size, const char *name)
{
    snprintf(buf, size, "%s/%s", s_dir, name);
}

static void s_write(const char *name, const char *text)
{
    char path[512];
    s_path(path, sizeof path, name);
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs(text, f);
    fclose(f);
}

/* A certificate pair saved as NAME and NAME_secret; its key pair in *kp. */
static void s_keygen(const char *name, ordo_keypair_t *kp)
{
    char path[512];
    s_path(path, sizeof path, name);
    zcert_t *cert = zcert_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(cert);
    CU_ASSERT_EQUAL_FATAL(zcert_save(cert, path), 0);
    if (kp) {
        memcpy(kp->public_key, zcert_public_key(cert), 32);
        memcpy(kp->secret_key, zcert_secret_key(cert), 32);
    }
    zcert_destroy(&cert);
}

static void test_cert_load(void)
{
    char path[512], err[600];
    ordo_keypair_t want, got;
    s_keygen("server", &want);

    /* PATH and PATH_secret both give the pair; a public read is enough for a peer. */
    s_path(path, sizeof path, "server");
    CU_ASSERT_EQUAL(ordo_cert_load(path, true, &got, err, sizeof err), 0);
    CU_ASSERT_EQUAL(memcmp(&got, &want, sizeof got), 0);
    s_path(path, sizeof path, "server_secret");
    CU_ASSERT_EQUAL(ordo_cert_load(path, true, &got, err, sizeof err), 0);
    CU_ASSERT_EQUAL(memcmp(&got, &want, sizeof got), 0);

    /* A public certificate alone: fine for a peer's key, not as our own. */
    char from[512], to[512];
    s_path(from, sizeof from, "server");
    s_path(to, sizeof to, "public-only");
    CU_ASSERT_EQUAL_FATAL(ordo_test_copy_file(from, to), 0);
    CU_ASSERT_EQUAL(ordo_cert_load(to, false, &got, err, sizeof err), 0);
    CU_ASSERT_EQUAL(memcmp(got.public_key, want.public_key, 32), 0);
    CU_ASSERT_EQUAL(ordo_cert_load(to, true, &got, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "no secret key"));

    /* A secret key that is not the public key's. */
    ordo_keypair_t other;
    s_keygen("other", &other);
    char secret_z85[41], public_z85[41], text[512];
    zmq_z85_encode(secret_z85, other.secret_key, 32);
    zmq_z85_encode(public_z85, want.public_key, 32);
    snprintf(text, sizeof text, "curve\n    public-key = \"%s\"\n    secret-key = \"%s\"\n",
             public_z85, secret_z85);
    s_write("mixed_secret", text);
    s_path(path, sizeof path, "mixed_secret");
    CU_ASSERT_EQUAL(ordo_cert_load(path, true, &got, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "does not belong"));

    /* Missing, not a certificate, too big, a folder, a path too long. */
    s_path(path, sizeof path, "missing");
    CU_ASSERT_EQUAL(ordo_cert_load(path, false, &got, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "no such file"));
    s_write("junk", "curve\n    public-key = \"short\"\n");
    s_path(path, sizeof path, "junk");
    CU_ASSERT_EQUAL(ordo_cert_load(path, false, &got, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "line 2: a key must be 40 characters of Z85"));
    s_write("text", "Dear operator,\nplease let me in.\n");
    s_path(path, sizeof path, "text");
    CU_ASSERT_EQUAL(ordo_cert_load(path, false, &got, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "not a CURVE certificate"));
    s_path(path, sizeof path, "big");
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    for (int i = 0; i < ORDO_CERT_FILE_MAX / 8 + 1; i++)
        fputs("#comment", f);
    fclose(f);
    CU_ASSERT_EQUAL(ordo_cert_load(path, false, &got, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "not a certificate"));
    /* Exactly the limit is fine. */
    char key_text[41], head[128];
    zmq_z85_encode(key_text, want.public_key, 32);
    int hl = snprintf(head, sizeof head, "curve\n    public-key = \"%s\"\n", key_text);
    s_path(path, sizeof path, "at-limit");
    f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs(head, f);
    for (int i = hl; i < ORDO_CERT_FILE_MAX; i++)
        fputc(i % 64 == 63 ? '\n' : (i % 64 == 0 ? '#' : 'x'), f);
    fclose(f);
    CU_ASSERT_EQUAL(ordo_test_file_size(path), ORDO_CERT_FILE_MAX);
    CU_ASSERT_EQUAL(ordo_cert_load(path, false, &got, err, sizeof err), 0);
    CU_ASSERT_EQUAL(memcmp(got.public_key, want.public_key, 32), 0);
    /* A FIFO is not a certificate, and reading it does not block. */
    s_path(path, sizeof path, "fifo");
    CU_ASSERT_EQUAL_FATAL(mkfifo(path, 0600), 0);
    CU_ASSERT_EQUAL(ordo_cert_load(path, false, &got, err, sizeof err), -1);
    CU_ASSERT_EQUAL(ordo_cert_load(s_dir, false, &got, err, sizeof err), -1);
    char longer[ORDO_CERT_PATH_MAX + 20];
    memset(longer, 'a', sizeof longer - 1);
    longer[sizeof longer - 1] = '\0';
    CU_ASSERT_EQUAL(ordo_cert_load(longer, false, &got, err, sizeof err), -1);
}

/* fmt with '@' replaced by the key and '?' by its first 39 characters. */
static void s_fill(char *out, size_t size, const char *fmt, const char *key)
{
    size_t n = 0;
    for (const char *p = fmt; *p && n + 41 < size; p++) {
        if (*p == '@' || *p == '?') {
            size_t len = *p == '@' ? 40 : 39;
            memcpy(out + n, key, len);
            n += len;
        } else {
            out[n++] = *p;
        }
    }
    out[n] = '\0';
}

/* The text reader: what czmq may write, and what it must refuse. */
static void test_cert_parse(void)
{
    char key[41], text[512], err[300];
    uint8_t raw[32];
    for (int i = 0; i < 32; i++)
        raw[i] = (uint8_t)(i * 7 + 1);
    zmq_z85_encode(key, raw, 32);
    struct {
        const char *fmt;
        int rc;
        bool has_public;
    } cases[] = {
        {"curve\n    public-key = \"@\"\n", 0, true},
        {"# comment\n\nmetadata\n    name = \"x\"\ncurve\n    public-key = \"@\"\n", 0, true},
        {"curve\r\n    public-key = '@'\r\n", 0, true},            /* CRLF, single quotes */
        {"curve\n    public-key = @   # unquoted, then a comment\n", 0, true},
        {"curve\n    other = 1\n        deeper = 2\n    public-key = \"@\"\n", 0, true},
        {"metadata\n    public-key = \"@\"\n", 0, false},           /* not under curve */
        {"curve\n\tpublic-key = \"@\"\n", -1, false},             /* a tab */
        {"curve\n  public-key = \"@\"\n", -1, false},              /* two spaces */
        {"curve\n    public-key = \"@\n", -1, false},               /* unclosed quote */
        {"curve\n    public-key = \"@\" trailing\n", -1, false},
        {"curve\n    public-key = \"?\"\n", -1, false},         /* 39 characters */
        {"curve\n    public-key = \"@\"\n    secret-key = \"~~~~\"\n", -1, true},
        {"=curve\n@\n", -1, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        s_fill(text, sizeof text, cases[i].fmt, key);
        ordo_keypair_t kp;
        bool has_public = false;
        memset(&kp, 0, sizeof kp);
        int rc = ordo_cert_parse("t", text, &kp, &has_public, err, sizeof err);
        CU_ASSERT_EQUAL(rc, cases[i].rc);
        if (rc == 0) {
            CU_ASSERT_EQUAL(has_public, cases[i].has_public);
            if (cases[i].has_public)
                CU_ASSERT_EQUAL(memcmp(kp.public_key, raw, 32), 0);
        }
        if (rc != 0 && rc != cases[i].rc)
            fprintf(stderr, "case %zu: %s\n", i, err);
    }
}

/* One request to `endpoint` as a CURVE client; true if it was echoed. */
static bool s_echoed(const char *endpoint, const ordo_keypair_t *server, const ordo_keypair_t *me,
                     zsock_t *router)
{
    void *ctx = zmq_ctx_new();
    void *dealer = zmq_socket(ctx, ZMQ_DEALER);
    int linger = 0;
    zmq_setsockopt(dealer, ZMQ_LINGER, &linger, sizeof linger);
    CU_ASSERT_EQUAL(ordo_cert_make_client(dealer, server->public_key, me), 0);
    CU_ASSERT_EQUAL(zmq_connect(dealer, endpoint), 0);
    zmq_send(dealer, "ping", 4, 0);
    /* The server echoes what arrives; bounded waits on both sides. */
    bool echoed = false;
    zpoller_t *poller = zpoller_new(router, NULL);
    if (zpoller_wait(poller, 5000) == router) {
        zmsg_t *msg = zmsg_recv(router);
        zmsg_send(&msg, router);
        zmq_pollitem_t it = {dealer, 0, ZMQ_POLLIN, 0};
        char buf[8];
        echoed = zmq_poll(&it, 1, 5000) == 1 && zmq_recv(dealer, buf, sizeof buf, 0) == 4 &&
                 !memcmp(buf, "ping", 4);
    }
    zpoller_destroy(&poller);
    zmq_close(dealer);
    zmq_ctx_term(ctx);
    return echoed;
}

static void test_auth_allow_list(void)
{
    char clients[512], path[512], err[600];
    ordo_keypair_t server, alice;
    s_keygen("srv", &server);
    s_path(clients, sizeof clients, "clients");
    CU_ASSERT_EQUAL_FATAL(mkdir(clients, 0700), 0);
    s_keygen("clients/alice", &alice);
    char from[512], to[512];
    s_path(from, sizeof from, "clients/alice");
    s_path(to, sizeof to, "clients/alice-copy"); /* the same key twice: czmq's loader aborts */
    CU_ASSERT_EQUAL_FATAL(ordo_test_copy_file(from, to), 0);
    s_write("clients/notes.txt", "not a certificate\n");

    /* Refused: a public certificate as the server's, a missing folder. */
    s_path(from, sizeof from, "srv");
    s_path(path, sizeof path, "srv-public");
    CU_ASSERT_EQUAL_FATAL(ordo_test_copy_file(from, path), 0);
    CU_ASSERT_PTR_NULL(ordo_auth_new(path, clients, err, sizeof err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "no secret key"));
    s_path(path, sizeof path, "srv_secret");
    CU_ASSERT_PTR_NULL(ordo_auth_new(path, "/nonexistent/ordo", err, sizeof err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "--curve-clients"));

    ordo_auth_t *auth = ordo_auth_new(path, clients, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(auth);
    CU_ASSERT_EQUAL(ordo_auth_clients(auth), 1);
    char key[41], want[41];
    ordo_auth_public_text(auth, key);
    zmq_z85_encode(want, server.public_key, 32);
    CU_ASSERT_STRING_EQUAL(key, want);

    zsock_t *router = zsock_new(ZMQ_ROUTER);
    CU_ASSERT_PTR_NOT_NULL_FATAL(router);
    CU_ASSERT_EQUAL(ordo_auth_guard(auth, zsock_resolve(router)), 0);
    int port = zsock_bind(router, "tcp://127.0.0.1:*");
    CU_ASSERT_FATAL(port > 0);
    char endpoint[64];
    snprintf(endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", port);
    CU_ASSERT_TRUE(s_echoed(endpoint, &server, &alice, router));
    zsock_destroy(&router);
    ordo_auth_destroy(&auth);
    CU_ASSERT_PTR_NULL(auth);
    ordo_auth_destroy(&auth); /* safe on NULL */
}

int main(void)
{
    if (!ordo_cert_curve_available()) {
        fprintf(stderr, "libzmq without CURVE\n");
        return 1;
    }
    if (!ordo_test_tmpdir(s_dir, sizeof s_dir))
        return 1;
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("security", NULL, NULL);
    CU_add_test(s, "loopback endpoints", test_loopback_endpoints);
    CU_add_test(s, "certificates", test_cert_load);
    CU_add_test(s, "certificate text", test_cert_parse);
    CU_add_test(s, "allow-list and a guarded ROUTER", test_auth_allow_list);
    int rc = ordo_test_run();
    ordo_test_rm_rf(s_dir);
    zsys_shutdown();
    return rc;
}
