/* The per-process hash seed (see ordo_hash.h). */
#include "ordo_hash.h"

#include <pthread.h>
#include <sys/random.h>
#include <time.h>

static uint64_t s_seed;
static pthread_once_t s_once = PTHREAD_ONCE_INIT;

static void s_init(void)
{
    if (getrandom(&s_seed, sizeof s_seed, 0) != (ssize_t)sizeof s_seed) {
        struct timespec ts; /* no entropy: still differs per run */
        clock_gettime(CLOCK_MONOTONIC, &ts);
        s_seed = ordo_hash_mix((uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32));
    }
}

uint64_t ordo_process_seed(void)
{
    pthread_once(&s_once, s_init);
    return s_seed;
}
