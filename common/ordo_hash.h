/* A fast 64-bit hash for short keys (order ids, event ids): 8 bytes per
 * step with a multiply-xorshift mix, then a final avalanche. Not
 * cryptographic; stable across runs and machines of the same endianness
 * (event ids depend on it, so it must never change). */
#ifndef ORDO_HASH_H
#define ORDO_HASH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline uint64_t ordo_hash_mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static inline uint64_t ordo_hash64(const void *data, size_t len, uint64_t seed)
{
    const unsigned char *p = data;
    uint64_t h = seed ^ (0x9e3779b97f4a7c15ull * (len + 1));
    while (len >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        h = (h ^ ordo_hash_mix(v)) * 0x100000001b3ull;
        p += 8;
        len -= 8;
    }
    uint64_t tail = 0;
    if (len > 0) /* p may be NULL for an empty input */
        memcpy(&tail, p, len);
    h ^= ordo_hash_mix(tail ^ ((uint64_t)len << 56));
    return ordo_hash_mix(h);
}

/* A random 64-bit value chosen once per process (from getrandom), for
 * hash tables keyed by client-chosen strings: nobody outside can predict
 * which ids collide. Thread-safe. */
uint64_t ordo_process_seed(void);

#endif
