/* A growing Bloom filter over 64-bit key hashes: "certainly absent" or
 * "maybe present", so the engine answers CreateOrder for a new id without
 * a read of the order index. Blocked (each key's bits lie in one 64-byte
 * cache line, so a probe costs one cache miss per stage) and scalable
 * (a full stage is followed by one of twice its capacity, so probes grow
 * with the logarithm of the keys: 7 stages hold 127x the first). Each
 * stage is sized for a false-positive rate of about 1% at capacity.
 * Not thread-safe: one filter per shard thread. */
#ifndef ORDO_BLOOM_H
#define ORDO_BLOOM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ORDO_BLOOM_STAGES_MAX 24

typedef struct {
    uint64_t *bits; /* owned: blocks of 8 words */
    size_t blocks;
    size_t capacity, count;
} ordo_bloom_stage_t;

typedef struct {
    ordo_bloom_stage_t stage[ORDO_BLOOM_STAGES_MAX];
    size_t stages;
    size_t first_capacity;
} ordo_bloom_t;

/* An empty filter whose first stage holds `first_capacity` keys (>= 1024). */
void ordo_bloom_init(ordo_bloom_t *b, size_t first_capacity);

/* Frees every stage. */
void ordo_bloom_free(ordo_bloom_t *b);

/* Adds a key's hash. 0, or -1 if out of memory (or out of stages): the
 * filter then answers "maybe" for every key, which stays correct. */
int ordo_bloom_add(ordo_bloom_t *b, uint64_t hash);

/* False: no key with this hash was ever added. True: maybe. */
bool ordo_bloom_maybe(const ordo_bloom_t *b, uint64_t hash);

/* Bytes the filter holds. */
size_t ordo_bloom_bytes(const ordo_bloom_t *b);

#endif
