/* The connection counter (see ordo_conn_monitor.h). */
#include "ordo_conn_monitor.h"

#include "ordo_log.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

struct ordo_conn_monitor {
    int n;
    void *watched[ORDO_CONN_MONITOR_MAX]; /* borrowed */
    void *pair[ORDO_CONN_MONITOR_MAX];    /* owned: the monitor ends we read */
    _Atomic int64_t *gauge[ORDO_CONN_MONITOR_MAX];
    pthread_t thread;
    bool started;
};

/* Reads one event (two frames: 16-bit event and 32-bit value, then the
 * endpoint). Returns the event, or 0 if the message was not one. */
static uint16_t s_read_event(void *pair)
{
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    uint16_t event = 0;
    if (zmq_msg_recv(&msg, pair, 0) >= 0 && zmq_msg_size(&msg) >= 6)
        memcpy(&event, zmq_msg_data(&msg), sizeof event);
    while (zmq_msg_more(&msg)) {
        zmq_msg_close(&msg);
        zmq_msg_init(&msg);
        if (zmq_msg_recv(&msg, pair, 0) < 0)
            break;
    }
    zmq_msg_close(&msg);
    return event;
}

static void *s_run(void *arg)
{
    ordo_conn_monitor_t *m = arg;
    zmq_pollitem_t items[ORDO_CONN_MONITOR_MAX];
    int live = m->n;
    for (int i = 0; i < m->n; i++)
        items[i] = (zmq_pollitem_t){m->pair[i], 0, ZMQ_POLLIN, 0};
    while (live > 0) {
        if (zmq_poll(items, m->n, -1) < 0) {
            if (zmq_errno() == EINTR)
                continue;
            ordo_log_error("metrics", "connection monitor: %s", zmq_strerror(zmq_errno()));
            break;
        }
        for (int i = 0; i < m->n; i++) {
            if (!(items[i].revents & ZMQ_POLLIN))
                continue;
            uint16_t ev = s_read_event(m->pair[i]);
            if (ev == ZMQ_EVENT_ACCEPTED) {
                atomic_fetch_add_explicit(m->gauge[i], 1, memory_order_relaxed);
            } else if (ev == ZMQ_EVENT_DISCONNECTED) {
                atomic_fetch_sub_explicit(m->gauge[i], 1, memory_order_relaxed);
            } else if (ev == ZMQ_EVENT_MONITOR_STOPPED) {
                items[i].events = 0; /* nothing more comes */
                live--;
            }
        }
    }
    return NULL;
}

ordo_conn_monitor_t *ordo_conn_monitor_start(void *ctx, void *const *sockets,
                                             _Atomic int64_t *gauges, int n)
{
    if (n < 1 || n > ORDO_CONN_MONITOR_MAX)
        return NULL;
    ordo_conn_monitor_t *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    /* Named by a counter, not an address: libzmq unbinds an old name
     * later, in its own thread, and malloc may hand out the same address. */
    static atomic_ullong monitors;
    unsigned long long serial = atomic_fetch_add(&monitors, 1) + 1;
    for (int i = 0; i < n; i++) {
        char name[96];
        snprintf(name, sizeof name, "inproc://ordo-conn-monitor-%llu-%d", serial, i);
        int zero = 0;
        if (zmq_socket_monitor(sockets[i], name,
                               ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED |
                                   ZMQ_EVENT_MONITOR_STOPPED) != 0 ||
            !(m->pair[i] = zmq_socket(ctx, ZMQ_PAIR)) ||
            zmq_setsockopt(m->pair[i], ZMQ_LINGER, &zero, sizeof zero) != 0 ||
            zmq_connect(m->pair[i], name) != 0) {
            ordo_log_error("metrics", "cannot count connections: %s", zmq_strerror(zmq_errno()));
            m->watched[i] = sockets[i]; /* turned off below */
            m->n = i + 1;
            ordo_conn_monitor_stop(&m);
            return NULL;
        }
        m->watched[i] = sockets[i];
        m->gauge[i] = &gauges[i];
        atomic_store(gauges + i, 0);
        m->n = i + 1;
    }
    if (pthread_create(&m->thread, NULL, s_run, m) != 0) {
        ordo_log_error("metrics", "cannot start the connection monitor's thread");
        ordo_conn_monitor_stop(&m);
        return NULL;
    }
    pthread_setname_np(m->thread, "ordo-monitor");
    m->started = true;
    return m;
}

void ordo_conn_monitor_stop(ordo_conn_monitor_t **monitor)
{
    if (!monitor || !*monitor)
        return;
    ordo_conn_monitor_t *m = *monitor;
    /* Each sends MONITOR_STOPPED and closes its end; the thread ends
     * once it has read all of them. */
    for (int i = 0; i < m->n; i++)
        if (m->watched[i])
            zmq_socket_monitor(m->watched[i], NULL, 0);
    if (m->started)
        pthread_join(m->thread, NULL);
    for (int i = 0; i < m->n; i++)
        if (m->pair[i])
            zmq_close(m->pair[i]);
    free(m);
    *monitor = NULL;
}
