/* Counts the connections of ZeroMQ sockets (a server's ROUTER, its PUB)
 * for the `connections` gauge: a thread reads each socket's monitor
 * (zmq_socket_monitor) and adds one per connection accepted, takes one
 * per connection gone. ZeroMQ's I/O thread sends those events and would
 * wait if nobody read them, so the thread reads until monitoring is
 * turned off by ordo_conn_monitor_stop. TCP and IPC connections count;
 * inproc ones do not (ZeroMQ reports none). */
#ifndef ORDO_CONN_MONITOR_H
#define ORDO_CONN_MONITOR_H

#include <stdatomic.h>
#include <stdint.h>

#define ORDO_CONN_MONITOR_MAX 4

typedef struct ordo_conn_monitor ordo_conn_monitor_t;

/* Watches sockets[0..n-1] of context `ctx`, counting into gauges[i]
 * (which must outlive the monitor). Call it while no other thread uses
 * the sockets, before they are bound. The thread inherits the caller's
 * signal mask. NULL on failure (logged): then nothing is watched. */
ordo_conn_monitor_t *ordo_conn_monitor_start(void *ctx, void *const *sockets,
                                             _Atomic int64_t *gauges, int n);

/* Turns monitoring off and joins the thread. Call it from the thread that
 * now owns the sockets (their users have stopped), before closing them.
 * Safe on NULL; nulls *monitor. */
void ordo_conn_monitor_stop(ordo_conn_monitor_t **monitor);

#endif
