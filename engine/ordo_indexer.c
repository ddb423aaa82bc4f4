/* The indexer's thread (see ordo_indexer.h). */
#include "ordo_indexer.h"

#include "ordo_batch.h"
#include "ordo_log.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <zmq.h>

void *ordo_indexer_run(void *arg)
{
    const ordo_indexer_config_t *cfg = arg;
    pthread_setname_np(pthread_self(), "ordo-indexer");
    zmq_pollitem_t *items = calloc(cfg->nshards, sizeof *items);
    if (!items) {
        ordo_log_error("indexer", "out of memory at start");
        return NULL;
    }
    for (uint32_t i = 0; i < cfg->nshards; i++)
        items[i] = (zmq_pollitem_t){cfg->pipes[i], 0, ZMQ_POLLIN, 0};
    uint32_t stopped = 0;
    while (stopped < cfg->nshards) {
        int ready = zmq_poll(items, (int)cfg->nshards, 1000);
        if (ready < 0) {
            if (zmq_errno() == EINTR)
                continue;
            ordo_log_error("indexer", "poll: %s", zmq_strerror(zmq_errno()));
            break;
        }
        if (ready == 0) {
            /* A quiet second: the shards' reads (orders loaded back, ids
             * the filters let through) touched index pages too. */
            ordo_index_unmap_pages(cfg->index);
            continue;
        }
        for (uint32_t i = 0; i < cfg->nshards; i++) {
            if (!(items[i].revents & ZMQ_POLLIN))
                continue;
            ordo_batch_t *b = ordo_batch_recv(cfg->pipes[i], ZMQ_DONTWAIT);
            if (!b)
                continue;
            if (b->kind == ORDO_BATCH_STOP) {
                stopped++;
                items[i].events = 0; /* nothing more comes from it */
                ordo_batch_free(&b);
                continue;
            }
            b->error = ordo_index_write(cfg->index, b->buf.data, b->buf.size, b->count);
            ordo_batch_send(cfg->pipes[i], b);
            /* A write touches pages all over the file: let them go, so the
             * engine's resident memory follows its orders, not the index. */
            ordo_index_unmap_pages(cfg->index);
        }
    }
    free(items);
    return NULL;
}
