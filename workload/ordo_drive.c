/* Pipelined commands over a DEALER socket (see ordo_drive.h). */
#include "ordo_drive.h"

#include <stdlib.h>
#include <string.h>
#include <zmq.h>

/* Reads one reply, waiting up to timeout_ms. 1, 0 on timeout, -1 on error. */
static int s_read_one(void *sock, const ordo_drive_options_t *o, ordo_drive_report_t *rep)
{
    zmq_pollitem_t it = {sock, 0, ZMQ_POLLIN, 0};
    int n = zmq_poll(&it, 1, o->timeout_ms);
    if (n <= 0)
        return n;
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    if (zmq_msg_recv(&msg, sock, 0) < 0) {
        zmq_msg_close(&msg);
        return -1;
    }
    ordo_reply_t reply;
    bool decoded = ordo_reply_decode(zmq_msg_data(&msg), zmq_msg_size(&msg), &reply) == 0;
    if (!decoded)
        rep->bad++;
    else if (reply.ok)
        rep->ok++;
    else if (reply.error.code == ORDO_CODE_UNAVAILABLE)
        rep->unavailable++;
    else
        rep->refused++;
    if (o->on_reply && decoded)
        o->on_reply(o->arg, &reply);
    zmq_msg_close(&msg);
    return 1;
}

int ordo_drive(const ordo_drive_options_t *o, ordo_workload_t *w, uint64_t commands,
               ordo_drive_report_t *rep)
{
    memset(rep, 0, sizeof *rep);
    void *sock = zmq_socket(o->zmq_ctx, ZMQ_DEALER);
    ordo_request_t *req = malloc(sizeof *req);
    msgpack_sbuffer buf;
    msgpack_packer pk;
    msgpack_sbuffer_init(&buf);
    msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
    int zero = 0, rc = 0;
    if (!sock || !req || zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof zero) != 0 ||
        zmq_setsockopt(sock, ZMQ_SNDHWM, &zero, sizeof zero) != 0 ||
        zmq_setsockopt(sock, ZMQ_RCVHWM, &zero, sizeof zero) != 0 ||
        zmq_connect(sock, o->endpoint) != 0)
        rc = -1;
    uint32_t window = o->window ? o->window : 1;
    while (rc == 0 && rep->sent < commands && ordo_workload_next(w, req)) {
        while (rc == 0 &&
               rep->sent - (rep->ok + rep->refused + rep->unavailable + rep->bad) >= window)
            rc = s_read_one(sock, o, rep) == 1 ? 0 : -1;
        msgpack_sbuffer_clear(&buf);
        if (rc == 0 && (ordo_request_pack(&pk, req) != 0 ||
                        zmq_send(sock, buf.data, buf.size, 0) != (int)buf.size))
            rc = -1;
        if (rc == 0)
            rep->sent++;
    }
    while (rc == 0 && rep->sent > rep->ok + rep->refused + rep->unavailable + rep->bad)
        rc = s_read_one(sock, o, rep) == 1 ? 0 : -1;
    rep->unanswered = rep->sent - (rep->ok + rep->refused + rep->unavailable + rep->bad);
    msgpack_sbuffer_destroy(&buf);
    free(req);
    if (sock)
        zmq_close(sock);
    return rc;
}
