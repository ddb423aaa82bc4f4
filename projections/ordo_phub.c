/* The live page's event feed (see ordo_phub.h). One thread writes the
 * ring; the HTTP threads of /api/events read it under the same mutex and
 * wait on its condition variable. */
#include "ordo_phub.h"

#include "ordo_log.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct ordo_phub {
    const char *engine, *engine_pub;
    const ordo_connect_options_t *opts;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t changed;
    bool stopping; /* under lock */
    bool started;  /* the engine's head at start is known */
    uint64_t last; /* position of the newest line (0: none yet) */
    char lines[ORDO_PHUB_RING][ORDO_PHUB_LINE_MAX]; /* line of position p at p % RING */
};

/* The engine's head now into *head; false if it does not answer (then
 * the feed must not start from 0: it would replay the whole log). */
static bool s_head(ordo_phub_t *h, uint64_t *head)
{
    ordo_client_t *c = ordo_client_new_with(h->engine, h->opts);
    ordo_result_t res = ORDO_RESULT_INIT;
    bool ok = c && ordo_client_call(c, &(ordo_client_request_t){.type = "Ping"}, 1000, &res) == 0;
    if (ok)
        *head = res.head_position > 0 ? (uint64_t)res.head_position : 0;
    ordo_result_clear(&res);
    ordo_client_destroy(&c);
    return ok;
}

/* A JSON string's body (no quotes): order ids are printable ASCII by the
 * protocol, but a line must stay JSON whatever comes. */
static void s_json_text(char *out, size_t cap, const char *s)
{
    size_t n = 0;
    for (; s && *s && n + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            out[n++] = '\\';
            out[n++] = (char)c;
        } else if (c < 0x20) {
            n += (size_t)snprintf(out + n, cap - n, "\\u%04x", c);
        } else {
            out[n++] = (char)c;
        }
    }
    out[n] = '\0';
}

static void s_publish(ordo_phub_t *h, const ordo_client_event_t *ev)
{
    char id[256], rest[48] = "";
    s_json_text(id, sizeof id, ev->order_id);
    if (ev->restaurant_id)
        snprintf(rest, sizeof rest, ",\"restaurant_id\":%" PRId64, ev->restaurant_id);
    pthread_mutex_lock(&h->lock);
    snprintf(h->lines[ev->position % ORDO_PHUB_RING], ORDO_PHUB_LINE_MAX,
             "{\"position\":%" PRIu64 ",\"order_id\":\"%s\",\"type\":\"%s\","
             "\"timestamp_us\":%" PRId64 "%s}",
             ev->position, id, ev->type, ev->timestamp_us, rest);
    h->last = ev->position;
    pthread_cond_broadcast(&h->changed);
    pthread_mutex_unlock(&h->lock);
}

static bool s_stopping(ordo_phub_t *h)
{
    pthread_mutex_lock(&h->lock);
    bool stop = h->stopping;
    pthread_mutex_unlock(&h->lock);
    return stop;
}

static void *s_run(void *arg)
{
    ordo_phub_t *h = arg;
    ordo_sub_t *sub = NULL;
    while (!s_stopping(h)) {
        if (!sub) {
            uint64_t head = 0;
            pthread_mutex_lock(&h->lock);
            bool started = h->last > 0 || h->started;
            pthread_mutex_unlock(&h->lock);
            if (!started && !s_head(h, &head))
                continue; /* the engine is not up yet: ask again (Ping waits 1 s) */
            pthread_mutex_lock(&h->lock);
            h->started = true;
            uint64_t from = h->last ? h->last + 1 : head + 1;
            if (!h->last)
                h->last = head; /* streams start after the head at start */
            pthread_mutex_unlock(&h->lock);
            if (!(sub = ordo_sub_new_with(h->engine, h->engine_pub, "", from, h->opts))) {
                struct timespec pause = {0, 200 * 1000 * 1000};
                nanosleep(&pause, NULL); /* out of memory: try again */
                continue;
            }
        }
        const ordo_client_event_t *ev;
        int rc = ordo_sub_next(sub, 100, &ev);
        if (rc == 0)
            s_publish(h, ev);
        else if (rc != ORDO_E_TIMEOUT)
            ordo_log_warn("http", "event feed: %s; retrying", ordo_client_strerror(rc));
    }
    ordo_sub_destroy(&sub);
    return NULL;
}

ordo_phub_t *ordo_phub_start(const char *engine, const char *engine_pub,
                             const ordo_connect_options_t *opts)
{
    ordo_phub_t *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->engine = engine;
    h->engine_pub = engine_pub;
    h->opts = opts;
    pthread_mutex_init(&h->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&h->changed, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&h->thread, NULL, s_run, h) != 0) {
        pthread_cond_destroy(&h->changed);
        pthread_mutex_destroy(&h->lock);
        free(h);
        return NULL;
    }
    pthread_setname_np(h->thread, "ordo-feed");
    return h;
}

void ordo_phub_stop(ordo_phub_t *h)
{
    if (!h)
        return;
    pthread_mutex_lock(&h->lock);
    bool joined = h->stopping;
    h->stopping = true;
    pthread_cond_broadcast(&h->changed);
    pthread_mutex_unlock(&h->lock);
    if (!joined)
        pthread_join(h->thread, NULL);
}

void ordo_phub_destroy(ordo_phub_t **hub)
{
    if (!hub || !*hub)
        return;
    ordo_phub_t *h = *hub;
    ordo_phub_stop(h);
    pthread_cond_destroy(&h->changed);
    pthread_mutex_destroy(&h->lock);
    free(h);
    *hub = NULL;
}

uint64_t ordo_phub_position(ordo_phub_t *h)
{
    pthread_mutex_lock(&h->lock);
    uint64_t p = h->last;
    pthread_mutex_unlock(&h->lock);
    return p;
}

int ordo_phub_wait(ordo_phub_t *h, uint64_t after, int timeout_ms, char *out, size_t cap,
                   uint64_t *position)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
    if (until.tv_nsec >= 1000000000) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&h->lock);
    int rc = 0;
    while (!h->stopping && h->last <= after) {
        if (pthread_cond_timedwait(&h->changed, &h->lock, &until) == ETIMEDOUT)
            break;
    }
    if (h->stopping) {
        rc = -1;
    } else if (h->last > after) {
        if (h->last - after > ORDO_PHUB_RING - 1) {
            rc = 2;
        } else {
            snprintf(out, cap, "%s", h->lines[(after + 1) % ORDO_PHUB_RING]);
            *position = after + 1;
            rc = 1;
        }
    }
    pthread_mutex_unlock(&h->lock);
    return rc;
}
