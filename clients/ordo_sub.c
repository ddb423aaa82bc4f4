/* ordo_sub_t: every event from a checkpoint, exactly once, in position
 * order (PROTOCOL.md, Guarantees 2 and 3). `next` is the position wanted
 * next; the subscription is either
 *   filling: ReadAll pages from `next` until a page reaches head_position;
 *   live:    reading PUB; position < next is a duplicate (dropped),
 *            position == next is handed out, position > next is a gap:
 *            back to filling (the event itself comes again with ReadAll,
 *            since nothing is published before it is durable).
 * The SUB socket is connected before the first ReadAll and not read while
 * filling, so what PUB sends meanwhile waits in its queue and shows up as
 * duplicates afterwards; what overflowed the queue shows up as a gap.
 * When PUB is quiet for S_IDLE_MS, a Ping checks head_position: that
 * catches events published before the SUB connection was up, and a
 * dropped last event that no later event would reveal.
 *
 * The type filter is applied here, not as a ZeroMQ subscription: positions
 * are global, so a filtered stream could not tell an event of another
 * type from a dropped one. Nothing blocks: ReadAll and Ping go out with
 * ordo_client_send and both sockets are polled together. */
#include "ordo_client_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

/* ReadAll limit. 5,000 rather than the protocol's default of 1,000: a fresh
 * ordo-projector (five subscriptions) caught up 8% faster (98.4k / 98.7k ->
 * 107.7k / 105.1k events/s over 10M events, alternating runs); 10,000
 * gave no more (107.5k / 106.3k against 105.9k / 106.0k). The page held
 * is a few MB. */
#define S_PAGE 5000
#define S_IDLE_MS 500    /* PUB quiet this long: Ping */
#define S_RETRY_MS 5000  /* no answer to ReadAll or Ping this long: ask again */
#define S_BACKOFF_MS 100 /* after an error reply (overloaded, unavailable) */

struct ordo_sub_t {
    ordo_client_t *client; /* owned: ReadAll and Ping */
    void *sub;             /* owned: SUB socket in the client's context */
    char *prefix;          /* owned: type filter, "" for all */
    size_t prefix_len;
    uint64_t next;         /* next position wanted */
    bool live;
    char rid[ORDO_ID_SIZE]; /* ReadAll or Ping in flight, "" if none */
    bool rid_is_ping;
    int64_t sent_ms;       /* when rid went out */
    int64_t quiet_since_ms; /* last PUB message or Ping answer */
    int64_t not_before_ms; /* backoff after an error reply */
    ordo_result_t batch;   /* owned: the last ReadAll page */
    size_t batch_i;        /* next event of the page to look at */
    bool batch_reaches_head;
    ordo_result_t one;     /* owned: the last PUB event */
    ordo_result_t tmp;     /* owned: scratch reply */
    uint64_t head;         /* highest head position learned */
    uint64_t from_read_all, from_pub, duplicates, gaps;
};

ordo_sub_t *ordo_sub_new(const char *endpoint, const char *pub_endpoint, const char *type_prefix,
                         uint64_t from_position)
{
    return ordo_sub_new_with(endpoint, pub_endpoint, type_prefix, from_position, NULL);
}

ordo_sub_t *ordo_sub_new_with(const char *endpoint, const char *pub_endpoint,
                              const char *type_prefix, uint64_t from_position,
                              const ordo_connect_options_t *opts)
{
    if (from_position < 1) {
        errno = EINVAL;
        return NULL;
    }
    ordo_sub_t *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->next = from_position;
    s->prefix = strdup(type_prefix ? type_prefix : "");
    s->client = ordo_client_new_with(endpoint, opts);
    if (!s->prefix || !s->client) {
        int e = errno;
        ordo_sub_destroy(&s);
        errno = e;
        return NULL;
    }
    s->prefix_len = strlen(s->prefix);
    ordo_client_set_send_timeout(s->client, 0); /* never block in next() */
    s->sub = zmq_socket(ordo_client_context_(s->client), ZMQ_SUB);
    int linger = 0, hwm = 100000;
    if (!s->sub || zmq_setsockopt(s->sub, ZMQ_LINGER, &linger, sizeof linger) != 0 ||
        zmq_setsockopt(s->sub, ZMQ_RCVHWM, &hwm, sizeof hwm) != 0 ||
        zmq_setsockopt(s->sub, ZMQ_SUBSCRIBE, "", 0) != 0 || ordo_client_secure_(s->sub, opts) != 0 ||
        zmq_connect(s->sub, pub_endpoint ? pub_endpoint : ORDO_DEFAULT_PUB_ENDPOINT) != 0) {
        int e = errno;
        ordo_sub_destroy(&s);
        errno = e;
        return NULL;
    }
    s->quiet_since_ms = ordo_client_now_ms_();
    return s;
}

void ordo_sub_destroy(ordo_sub_t **p)
{
    if (!p || !*p)
        return;
    ordo_sub_t *s = *p;
    if (s->sub)
        zmq_close(s->sub); /* before the client ends the context */
    ordo_client_destroy(&s->client);
    ordo_result_clear(&s->batch);
    ordo_result_clear(&s->one);
    ordo_result_clear(&s->tmp);
    free(s->prefix);
    free(s);
    *p = NULL;
}

uint64_t ordo_sub_position(const ordo_sub_t *s)
{
    return s->next - 1;
}

uint64_t ordo_sub_head(const ordo_sub_t *s)
{
    return s->head > s->next - 1 ? s->head : s->next - 1;
}

void ordo_sub_sockets(ordo_sub_t *s, void **request_socket, void **sub_socket)
{
    if (request_socket)
        *request_socket = ordo_client_socket_(s->client);
    if (sub_socket)
        *sub_socket = s->sub;
}

void ordo_sub_counters(const ordo_sub_t *s, uint64_t *from_read_all, uint64_t *from_pub,
                       uint64_t *duplicates, uint64_t *gaps)
{
    if (from_read_all)
        *from_read_all = s->from_read_all;
    if (from_pub)
        *from_pub = s->from_pub;
    if (duplicates)
        *duplicates = s->duplicates;
    if (gaps)
        *gaps = s->gaps;
}

static bool s_wanted(const ordo_sub_t *s, const ordo_client_event_t *ev)
{
    return strncmp(ev->type, s->prefix, s->prefix_len) == 0;
}

/* Sends ReadAll (filling) or Ping (live and quiet) when nothing is in
 * flight; gives up on a request unanswered for S_RETRY_MS. */
static int s_ask(ordo_sub_t *s, int64_t now)
{
    if (s->rid[0] && now - s->sent_ms >= S_RETRY_MS) {
        ordo_client_abandon_(s->client, s->rid);
        s->rid[0] = '\0';
    }
    if (s->rid[0] || now < s->not_before_ms)
        return 0;
    ordo_client_request_t req = {.type = "Ping"};
    if (!s->live) {
        req = (ordo_client_request_t){.type = "ReadAll",
                                      .from_position = (int64_t)s->next,
                                      .limit = S_PAGE};
    } else if (now - s->quiet_since_ms < S_IDLE_MS) {
        return 0;
    }
    int rc = ordo_client_send(s->client, &req, s->rid);
    if (rc == ORDO_E_TIMEOUT) { /* no room to queue it: try again shortly */
        s->rid[0] = '\0';
        s->not_before_ms = now + S_BACKOFF_MS;
        return 0;
    }
    if (rc != 0) {
        s->rid[0] = '\0';
        return rc;
    }
    s->rid_is_ping = s->live;
    s->sent_ms = now;
    return 0;
}

/* Takes the answer to our ReadAll or Ping, if one came. */
static int s_take_reply(ordo_sub_t *s, int64_t now)
{
    int rc = ordo_client_recv(s->client, 0, &s->tmp);
    if (rc == ORDO_E_TIMEOUT || rc == ORDO_E_IDLE || rc == ORDO_E_BAD_REPLY)
        return 0;
    if (rc != 0)
        return rc;
    if (strcmp(s->tmp.request_id, s->rid) != 0)
        return 0; /* an answer to a request we gave up on */
    s->rid[0] = '\0';
    if (!s->tmp.ok) {
        s->not_before_ms = now + S_BACKOFF_MS;
        return 0;
    }
    if (s->tmp.head_position > 0 && (uint64_t)s->tmp.head_position > s->head)
        s->head = (uint64_t)s->tmp.head_position;
    if (s->rid_is_ping) {
        s->quiet_since_ms = now;
        if (s->tmp.head_position >= (int64_t)s->next)
            s->live = false;
        return 0;
    }
    /* A ReadAll page: keep it (what was handed out of the old page is no
     * longer needed: we are in a later call). */
    ordo_result_t t = s->batch;
    s->batch = s->tmp;
    s->tmp = t;
    s->batch_i = 0;
    s->batch_reaches_head = s->batch.n_events < S_PAGE ||
                            s->batch.next_position > s->batch.head_position;
    return 0;
}

/* Next wanted event of the page, or NULL when the page is used up. */
static const ordo_client_event_t *s_from_batch(ordo_sub_t *s)
{
    while (s->batch_i < s->batch.n_events) {
        const ordo_client_event_t *ev = &s->batch.events[s->batch_i++];
        if (ev->position < s->next)
            continue;
        s->next = ev->position + 1; /* pages are gap-free */
        if (s_wanted(s, ev)) {
            s->from_read_all++;
            return ev;
        }
    }
    if (s->batch.reply && s->batch_reaches_head) {
        s->live = true;
        s->quiet_since_ms = ordo_client_now_ms_();
    }
    if (s->batch.reply)
        ordo_result_clear(&s->batch);
    return NULL;
}

/* Reads PUB while live. 1 with *event set, 0 if nothing (more) to hand
 * out now, negative on error. */
static int s_from_pub(ordo_sub_t *s, const ordo_client_event_t **event)
{
    while (s->live) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, s->sub, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&m);
            return errno == EAGAIN || errno == EINTR ? 0 : ORDO_E_TRANSPORT;
        }
        while (zmq_msg_more(&m)) { /* [topic, body]: keep the body */
            zmq_msg_close(&m);
            zmq_msg_init(&m);
            if (zmq_msg_recv(&m, s->sub, 0) < 0) {
                zmq_msg_close(&m);
                return ORDO_E_TRANSPORT;
            }
        }
        s->quiet_since_ms = ordo_client_now_ms_();
        size_t len = zmq_msg_size(&m);
        uint8_t *bytes = malloc(len ? len : 1);
        if (!bytes) {
            zmq_msg_close(&m);
            return ORDO_E_NOMEM;
        }
        memcpy(bytes, zmq_msg_data(&m), len);
        zmq_msg_close(&m);
        int rc = ordo_result_take_event(&s->one, &bytes, len);
        if (rc == ORDO_E_NOMEM)
            return rc;
        if (rc != 0)
            continue; /* not an event: ignore it */
        const ordo_client_event_t *ev = s->one.event;
        if (ev->position > s->head)
            s->head = ev->position;
        if (ev->position < s->next) {
            s->duplicates++;
            continue;
        }
        if (ev->position > s->next) {
            s->gaps++;
            s->live = false; /* fill from ReadAll; this event comes again */
            return 0;
        }
        s->next++;
        if (s_wanted(s, ev)) {
            s->from_pub++;
            *event = ev;
            return 1;
        }
    }
    return 0;
}

int ordo_sub_next(ordo_sub_t *s, int timeout_ms, const ordo_client_event_t **event)
{
    *event = NULL;
    if (timeout_ms < 0)
        return ORDO_E_INVALID;
    int64_t deadline = ordo_client_now_ms_() + timeout_ms;
    for (;;) {
        if ((*event = s_from_batch(s)) != NULL)
            return 0;
        int rc = s_from_pub(s, event);
        if (rc != 0)
            return rc > 0 ? 0 : rc;
        int64_t now = ordo_client_now_ms_();
        if ((rc = s_ask(s, now)) != 0)
            return rc;
        int64_t left = deadline - now;
        /* Wake for whichever comes first: the deadline, the idle Ping,
         * the retry of an unanswered request, the end of a backoff. Past
         * the deadline, one poll without waiting still takes a reply that
         * is there (a caller polling with timeout 0 must make progress). */
        int64_t wait = left;
        if (s->rid[0] && s->sent_ms + S_RETRY_MS - now < wait)
            wait = s->sent_ms + S_RETRY_MS - now;
        if (!s->rid[0] && s->live && s->quiet_since_ms + S_IDLE_MS - now < wait)
            wait = s->quiet_since_ms + S_IDLE_MS - now;
        if (!s->rid[0] && s->not_before_ms > now && s->not_before_ms - now < wait)
            wait = s->not_before_ms - now;
        if (wait < 0)
            wait = 0;
        zmq_pollitem_t items[2] = {{ordo_client_socket_(s->client), 0, ZMQ_POLLIN, 0},
                                   {s->sub, 0, ZMQ_POLLIN, 0}};
        int n = zmq_poll(items, s->live ? 2 : 1, (long)wait);
        if (n < 0 && errno != EINTR)
            return ORDO_E_TRANSPORT;
        bool took = false;
        if (n > 0 && (items[0].revents & ZMQ_POLLIN)) {
            char before[ORDO_ID_SIZE];
            memcpy(before, s->rid, sizeof before);
            if ((rc = s_take_reply(s, ordo_client_now_ms_())) != 0)
                return rc;
            took = strcmp(before, s->rid) != 0; /* our request was answered */
        }
        bool pub_ready = n > 0 && s->live && (items[1].revents & ZMQ_POLLIN);
        if (left <= 0 && !took && !pub_ready)
            return ORDO_E_TIMEOUT;
    }
}
