/* A fast 64-bit hash for short keys (order ids, event ids): 8 bytes per
 * step (read as little-endian words) with a multiply-xorshift mix, then a
 * final avalanche. Not cryptographic; stable across runs and machines
 * (event ids and the partition of an order depend on it, so it must never
 * change; docs/protocol.md spells it out for clients in other
 * languages). */
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

/* n (<= 8) bytes as a little-endian number, whatever the machine. */
static inline uint64_t ordo_hash_le(const unsigned char *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static inline uint64_t ordo_hash64(const void *data, size_t len, uint64_t seed)
{
    const unsigned char *p = data;
    uint64_t h = seed ^ (0x9e3779b97f4a7c15ull * (len + 1));
    while (len >= 8) {
        h = (h ^ ordo_hash_mix(ordo_hash_le(p, 8))) * 0x100000001b3ull;
        p += 8;
        len -= 8;
    }
    uint64_t tail = len > 0 ? ordo_hash_le(p, len) : 0; /* p may be NULL for an empty input */
    h ^= ordo_hash_mix(tail ^ ((uint64_t)len << 56));
    return ordo_hash_mix(h);
}

/* A random 64-bit value chosen once per process (from getrandom), for
 * hash tables keyed by client-chosen strings: nobody outside can predict
 * which ids collide. Thread-safe. */
uint64_t ordo_process_seed(void);

#endif
