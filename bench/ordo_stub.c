/* The canned-reply stub (see ordo_stub.h). As cheap as it can be: one
 * thread, its own ZeroMQ context, reads whatever waits and answers each
 * request as it reads it; the request is only scanned for its request_id
 * (ordo_mp pull reader, bounds-checked), never decoded. The owner's thread
 * and the stub's share nothing but an inproc pipe that says "stop". */
#include "ordo_stub.h"

#include "ordo_mp.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#define ENVELOPE_MAX 8 /* envelope frames kept per request, as the engine */
#define BURST 4096     /* requests answered before polling again */

struct ordo_stub {
    void *ctx;     /* owned */
    void *router;  /* owned; used only by the thread once it runs */
    void *pipe;    /* owned: our end of the stop pipe */
    void *pipe_in; /* owned: the thread's end */
    pthread_t thread;
    bool running;
    char endpoint[256];
};

/* Finds the request_id in a request body: a view, or len 0 if none. */
static void s_request_id(const void *body, size_t len, const char **rid, uint32_t *rid_len)
{
    ordo_mp_t r;
    uint32_t n;
    *rid_len = 0;
    ordo_mp_init(&r, body, len);
    if (!ordo_mp_read_map(&r, &n))
        return;
    for (uint32_t i = 0; i < n; i++) {
        const char *k;
        uint32_t kl;
        if (!ordo_mp_read_str(&r, &k, &kl))
            return;
        if (ORDO_MP_KEY_IS(k, kl, "request_id")) {
            if (!ordo_mp_read_str(&r, rid, rid_len))
                *rid_len = 0;
            return;
        }
        if (!ordo_mp_skip(&r))
            return;
    }
}

/* {ok: true, request_id?} into out (room for 16 + 255 bytes). */
static size_t s_canned(char *out, const char *rid, uint32_t rid_len)
{
    static const char ok[] = "\xa2ok\xc3";
    static const char key[] = "\xaarequest_id";
    size_t n = 0;
    if (rid_len > 255)
        rid_len = 0; /* not a valid id: leave it out */
    out[n++] = (char)(rid_len ? 0x82 : 0x81);
    memcpy(out + n, ok, sizeof ok - 1);
    n += sizeof ok - 1;
    if (rid_len) {
        memcpy(out + n, key, sizeof key - 1);
        n += sizeof key - 1;
        if (rid_len < 32) {
            out[n++] = (char)(0xa0 | rid_len);
        } else {
            out[n++] = (char)0xd9;
            out[n++] = (char)rid_len;
        }
        memcpy(out + n, rid, rid_len);
        n += rid_len;
    }
    return n;
}

/* Answers one waiting request. 1 if it did, 0 if none waits, -1 on error. */
static int s_answer(void *router)
{
    zmq_msg_t f[ENVELOPE_MAX + 1];
    int nf = 0;
    zmq_msg_init(&f[0]);
    if (zmq_msg_recv(&f[0], router, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&f[0]);
        return errno == EAGAIN ? 0 : -1;
    }
    nf = 1;
    bool dropped = false;
    while (zmq_msg_more(&f[nf - 1])) {
        if (nf == ENVELOPE_MAX + 1) { /* too long: read the rest, answer nothing */
            dropped = true;
            zmq_msg_close(&f[nf - 1]);
            nf--;
        }
        zmq_msg_init(&f[nf]);
        if (zmq_msg_recv(&f[nf], router, 0) < 0)
            break;
        nf++;
    }
    if (!dropped && nf >= 2) {
        const char *rid;
        uint32_t rid_len;
        char reply[16 + 256];
        s_request_id(zmq_msg_data(&f[nf - 1]), zmq_msg_size(&f[nf - 1]), &rid, &rid_len);
        size_t len = s_canned(reply, rid, rid_len);
        for (int i = 0; i < nf - 1; i++)
            zmq_msg_send(&f[i], router, ZMQ_SNDMORE | ZMQ_DONTWAIT);
        zmq_send(router, reply, len, ZMQ_DONTWAIT);
    }
    for (int i = 0; i < nf; i++)
        zmq_msg_close(&f[i]);
    return 1;
}

static void *s_run(void *arg)
{
    ordo_stub_t *self = arg;
    zmq_pollitem_t items[2] = {{self->router, 0, ZMQ_POLLIN, 0}, {self->pipe_in, 0, ZMQ_POLLIN, 0}};
    for (;;) {
        if (zmq_poll(items, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (items[1].revents & ZMQ_POLLIN)
            break; /* the owner says stop */
        for (int n = 0; n < BURST; n++)
            if (s_answer(self->router) <= 0)
                break;
    }
    return NULL;
}

ordo_stub_t *ordo_stub_new(const char *endpoint)
{
    ordo_stub_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    int linger = 0, hwm = 0;
    self->ctx = zmq_ctx_new();
    self->router = self->ctx ? zmq_socket(self->ctx, ZMQ_ROUTER) : NULL;
    self->pipe = self->ctx ? zmq_socket(self->ctx, ZMQ_PAIR) : NULL;
    self->pipe_in = self->ctx ? zmq_socket(self->ctx, ZMQ_PAIR) : NULL;
    if (!self->router || !self->pipe || !self->pipe_in)
        goto fail;
    zmq_setsockopt(self->router, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(self->router, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(self->router, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(self->pipe, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(self->pipe_in, ZMQ_LINGER, &linger, sizeof linger);
    char pipe_name[64];
    snprintf(pipe_name, sizeof pipe_name, "inproc://ordo-stub-%p", (void *)self);
    size_t size = sizeof self->endpoint;
    if (zmq_bind(self->router, endpoint) != 0 ||
        zmq_getsockopt(self->router, ZMQ_LAST_ENDPOINT, self->endpoint, &size) != 0 ||
        zmq_bind(self->pipe_in, pipe_name) != 0 || zmq_connect(self->pipe, pipe_name) != 0)
        goto fail;
    if (pthread_create(&self->thread, NULL, s_run, self) != 0)
        goto fail;
    self->running = true;
    return self;
fail:
    ordo_stub_destroy(&self);
    return NULL;
}

void ordo_stub_destroy(ordo_stub_t **stub)
{
    if (!stub || !*stub)
        return;
    ordo_stub_t *self = *stub;
    if (self->running) {
        zmq_send(self->pipe, "$TERM", 5, 0);
        pthread_join(self->thread, NULL);
    }
    if (self->router)
        zmq_close(self->router);
    if (self->pipe)
        zmq_close(self->pipe);
    if (self->pipe_in)
        zmq_close(self->pipe_in);
    if (self->ctx)
        zmq_ctx_term(self->ctx);
    free(self);
    *stub = NULL;
}

const char *ordo_stub_endpoint(const ordo_stub_t *stub)
{
    return stub->endpoint;
}

uint64_t ordo_stub_cpu_ns(const ordo_stub_t *stub)
{
    clockid_t id;
    struct timespec ts;
    if (!stub->running || pthread_getcpuclockid(stub->thread, &id) != 0 ||
        clock_gettime(id, &ts) != 0)
        return 0;
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
