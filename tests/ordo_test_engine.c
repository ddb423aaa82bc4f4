/* The in-process engine of the tests (see ordo_test_engine.h). */
#include "ordo_test_engine.h"

#include "ordo_test.h"
#include "ordo_wal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

int ordo_test_engine_init(ordo_test_engine_t *t, const ordo_io_t *io)
{
    memset(t, 0, sizeof *t);
    if (!ordo_test_tmpdir(t->dir, sizeof t->dir))
        return -1;
    snprintf(t->snap_dir, sizeof t->snap_dir, "%s/snapshots", t->dir);
    snprintf(t->wal_dir, sizeof t->wal_dir, "%s/wal", t->dir);
    ordo_config_defaults(&t->opts.cfg);
    snprintf(t->opts.cfg.data_dir, sizeof t->opts.cfg.data_dir, "%s", t->dir);
    snprintf(t->opts.cfg.bind, sizeof t->opts.cfg.bind, "inproc://ordo-test");
    snprintf(t->opts.cfg.pub, sizeof t->opts.cfg.pub, "inproc://ordo-test-events");
    t->opts.cfg.shards = 2;
    t->opts.cfg.snapshot_every = 0;
    t->opts.cfg.segment_bytes = 1 << 20;
    t->opts.io = io;
    msgpack_sbuffer_init(&t->buf);
    msgpack_packer_init(&t->pk, &t->buf, msgpack_sbuffer_write);
    return 0;
}

int ordo_test_engine_start(ordo_test_engine_t *t)
{
    if (ordo_engine_start(&t->opts, &t->engine) != 0)
        return -1;
    int zero = 0;
    t->sock = zmq_socket(ordo_engine_zmq_context(t->engine), ZMQ_DEALER);
    if (!t->sock || zmq_setsockopt(t->sock, ZMQ_LINGER, &zero, sizeof zero) != 0 ||
        zmq_connect(t->sock, t->opts.cfg.bind) != 0)
        return -1;
    return 0;
}

int ordo_test_engine_stop(ordo_test_engine_t *t)
{
    if (t->sock)
        zmq_close(t->sock);
    t->sock = NULL;
    free(t->reply_bytes);
    t->reply_bytes = NULL;
    if (!t->engine)
        return 0;
    int rc = ordo_engine_stop(t->engine);
    ordo_engine_destroy(&t->engine);
    return rc;
}

void ordo_test_engine_cleanup(ordo_test_engine_t *t)
{
    ordo_test_engine_stop(t);
    msgpack_sbuffer_destroy(&t->buf);
    ordo_test_rm_rf(t->dir);
}

const ordo_reply_t *ordo_test_engine_call(ordo_test_engine_t *t, const ordo_request_t *req)
{
    msgpack_sbuffer_clear(&t->buf);
    if (ordo_request_pack(&t->pk, req) != 0 ||
        zmq_send(t->sock, t->buf.data, t->buf.size, 0) != (int)t->buf.size)
        return NULL;
    zmq_pollitem_t it = {t->sock, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&it, 1, 10000) != 1)
        return NULL;
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    if (zmq_msg_recv(&msg, t->sock, 0) < 0) {
        zmq_msg_close(&msg);
        return NULL;
    }
    free(t->reply_bytes);
    t->reply_bytes = malloc(zmq_msg_size(&msg) + 1);
    if (t->reply_bytes)
        memcpy(t->reply_bytes, zmq_msg_data(&msg), zmq_msg_size(&msg));
    size_t len = zmq_msg_size(&msg);
    zmq_msg_close(&msg);
    if (!t->reply_bytes || ordo_reply_decode(t->reply_bytes, len, &t->reply) != 0)
        return NULL;
    return &t->reply;
}

int ordo_test_engine_drive(ordo_test_engine_t *t, ordo_workload_t *w, uint64_t n,
                           ordo_drive_report_t *rep, void (*on_reply)(void *, const ordo_reply_t *),
                           void *arg)
{
    ordo_drive_options_t d = {.zmq_ctx = ordo_engine_zmq_context(t->engine),
                              .endpoint = t->opts.cfg.bind,
                              .window = 256,
                              .timeout_ms = 20000,
                              .on_reply = on_reply,
                              .arg = arg};
    return ordo_drive(&d, w, n, rep);
}

int ordo_test_engine_recover(ordo_test_engine_t *t, bool with_snapshot, ordo_registry_t **reg,
                             ordo_state_recovery_t *rep)
{
    ordo_wal_options_t o = {.dir = t->wal_dir,
                            .sync_mode = ORDO_SYNC_NEVER,
                            .segment_bytes = t->opts.cfg.segment_bytes};
    ordo_wal_recovery_t wrep;
    ordo_wal_t *wal = NULL;
    *reg = ordo_registry_new();
    int rc = *reg ? ordo_wal_open(&o, &wal, &wrep) : -1;
    if (rc == 0)
        rc = ordo_state_recover(*reg, wal, with_snapshot ? t->snap_dir : NULL, rep);
    ordo_wal_destroy(&wal);
    if (rc != 0)
        ordo_registry_destroy(reg);
    return rc == 0 ? 0 : -1;
}

uint64_t ordo_test_registry_diff(const ordo_registry_t *a, const ordo_registry_t *b)
{
    uint64_t diff = ordo_registry_count(a) > ordo_registry_count(b)
                        ? ordo_registry_count(a) - ordo_registry_count(b)
                        : ordo_registry_count(b) - ordo_registry_count(a);
    size_t cursor = 0;
    const ordo_order_t *x;
    while ((x = ordo_registry_next(a, &cursor)) != NULL) {
        const ordo_order_t *y = ordo_registry_find(b, (ordo_str_t){x->order_id, x->order_id_len});
        if (!y || y->version != x->version || y->status != x->status ||
            y->total_cents != x->total_cents || y->updated_at_us != x->updated_at_us ||
            y->n_items != x->n_items)
            diff++;
    }
    return diff;
}

void ordo_test_create_request(ordo_request_t *req, const char *order_id, const char *request_id)
{
    ordo_request_init(req);
    req->type = ORDO_REQ_CREATE_ORDER;
    req->order_id = (ordo_str_t){order_id, (uint32_t)strlen(order_id)};
    req->request_id = (ordo_str_t){request_id, (uint32_t)strlen(request_id)};
    req->has_data = true;
    req->data.present =
        ORDO_F_USER_ID | ORDO_F_RESTAURANT_ID | ORDO_F_ITEMS | ORDO_F_DELIVERY_ADDRESS;
    req->data.user_id = 1;
    req->data.restaurant_id = 1;
    req->data.n_items = 1;
    req->data.items[0] = (ordo_item_t){ORDO_STR("s"), ORDO_STR("n"), 2, 150};
    req->data.delivery_address = ORDO_STR("a");
}
