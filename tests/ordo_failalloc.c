/* Allocation failures on demand (see ordo_failalloc.h), through the
 * linker's --wrap: our code's malloc is __wrap_malloc, the real one
 * __real_malloc. */
#include "ordo_failalloc.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);

static atomic_uint s_every;
static atomic_ullong s_count, s_failed;
static _Thread_local bool s_engine_thread; /* known once seen: names are set after start */

void ordo_failalloc_arm(unsigned every)
{
    atomic_store(&s_count, 0);
    atomic_store(&s_every, every);
}

uint64_t ordo_failalloc_failed(void)
{
    return atomic_load(&s_failed);
}

/* Whether this allocation is to fail. */
static bool s_fail(void)
{
    unsigned every = atomic_load(&s_every);
    if (every == 0)
        return false;
    if (!s_engine_thread) {
        char name[16] = "";
        pthread_getname_np(pthread_self(), name, sizeof name);
        if (strncmp(name, "ordo-", 5) != 0)
            return false;
        s_engine_thread = true;
    }
    if ((atomic_fetch_add(&s_count, 1) + 1) % every != 0)
        return false;
    atomic_fetch_add(&s_failed, 1);
    errno = ENOMEM;
    return true;
}

void *__wrap_malloc(size_t n)
{
    return s_fail() ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t size)
{
    return s_fail() ? NULL : __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t n)
{
    return s_fail() ? NULL : __real_realloc(p, n);
}
