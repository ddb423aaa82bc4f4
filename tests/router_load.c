/* router_load: clients of a partitioned cluster for e2e_partitions.py.
 * THREADS threads, each with its own ordo_router_t seeded with ENDPOINTS,
 * create orders PREFIX-<thread>-<i> (i < COUNT) one after another, each
 * with a request_id of its own, routed by the partition map. Every
 * acknowledgement is printed as one JSON line
 *   {"order_id": ..., "position": N, "partition": K, "owner": ENDPOINT}
 * (`owner`: whom the router sent it to last, i.e. who acknowledged it).
 * A command not acknowledged within TIMEOUT_MS ends the run with exit 1.
 * Usage: router_load ENDPOINTS PREFIX THREADS COUNT TIMEOUT_MS */
#include "ordo.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    const char *endpoints, *prefix;
    int thread, count, timeout_ms;
    int failed;
} s_job_t;

static pthread_mutex_t s_out = PTHREAD_MUTEX_INITIALIZER;

static void *s_run(void *arg)
{
    s_job_t *j = arg;
    ordo_router_t *r = ordo_router_new(j->endpoints, NULL);
    if (!r) {
        j->failed = 1;
        return NULL;
    }
    ordo_client_item_t item = {.sku = "s", .name = "soup", .qty = 1, .price_cents = 450};
    ordo_result_t res = ORDO_RESULT_INIT;
    for (int i = 0; i < j->count && !j->failed; i++) {
        char id[64], rid[80];
        snprintf(id, sizeof id, "%s-%d-%d", j->prefix, j->thread, i);
        snprintf(rid, sizeof rid, "rid-%s", id);
        ordo_client_request_t req = {.type = "CreateOrder", .order_id = id, .request_id = rid,
                                     .user_id = 1, .restaurant_id = 2, .items = &item,
                                     .n_items = 1, .delivery_address = "1 Main St"};
        int rc = ordo_router_call(r, &req, j->timeout_ms, &res);
        if (rc != 0) {
            pthread_mutex_lock(&s_out);
            fprintf(stderr, "router_load: %s: %s %s %s\n", id, ordo_client_strerror(rc), res.code,
                    res.message);
            pthread_mutex_unlock(&s_out);
            j->failed = 1;
            break;
        }
        uint32_t k = ordo_partition_of_id(id, ordo_router_partitions(r));
        const char *owner = ordo_router_owner(r, k);
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        pthread_mutex_lock(&s_out);
        printf("{\"order_id\": \"%s\", \"position\": %lld, \"partition\": %u, \"owner\": "
               "\"%s\", \"t_ms\": %.3f}\n",
               id, (long long)res.position, k, owner ? owner : "",
               (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6);
        fflush(stdout);
        pthread_mutex_unlock(&s_out);
    }
    ordo_result_clear(&res);
    ordo_router_destroy(&r);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "Usage: router_load ENDPOINTS PREFIX THREADS COUNT TIMEOUT_MS\n");
        return 2;
    }
    int threads = atoi(argv[3]);
    if (threads < 1 || threads > 64)
        return 2;
    s_job_t jobs[64];
    pthread_t t[64];
    for (int i = 0; i < threads; i++) {
        jobs[i] = (s_job_t){.endpoints = argv[1], .prefix = argv[2], .thread = i,
                            .count = atoi(argv[4]), .timeout_ms = atoi(argv[5])};
        if (pthread_create(&t[i], NULL, s_run, &jobs[i]) != 0)
            return 1;
    }
    int failed = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(t[i], NULL);
        failed |= jobs[i].failed;
    }
    return failed ? 1 : 0;
}
