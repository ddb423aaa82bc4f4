/* The blocked, scalable Bloom filter (see ordo_bloom.h). A key sets k
 * bits of one 512-bit block, picked from its hash remixed per stage.
 * Every stage is probed, so their false-positive rates add up: each
 * stage gets 2 more bits per key and one more bit set than the one
 * before (about 1%, 0.3%, 0.1%, ... at capacity), so the sum stays near
 * 1.5% however many stages there are. */
#include "ordo_bloom.h"

#include "ordo_hash.h"

#include <stdlib.h>
#include <string.h>

#define S_K0 7             /* bits set per key in the first stage */
#define S_K_MAX 12
#define S_BITS_PER_KEY0 10 /* bits of filter per key in the first stage */
#define S_BITS_PER_KEY_MAX 20
#define S_WORDS 8          /* words per block */

static int s_k(size_t stage)
{
    return S_K0 + (int)stage < S_K_MAX ? S_K0 + (int)stage : S_K_MAX;
}

void ordo_bloom_init(ordo_bloom_t *b, size_t first_capacity)
{
    memset(b, 0, sizeof *b);
    b->first_capacity = first_capacity < 1024 ? 1024 : first_capacity;
}

void ordo_bloom_free(ordo_bloom_t *b)
{
    for (size_t i = 0; i < b->stages; i++)
        free(b->stage[i].bits);
    size_t first = b->first_capacity;
    ordo_bloom_init(b, first);
}

/* A full filter (out of memory earlier): every answer is "maybe". */
static bool s_saturated(const ordo_bloom_t *b)
{
    return b->stages == 0 && b->first_capacity == 0;
}

static int s_grow(ordo_bloom_t *b)
{
    if (b->stages == ORDO_BLOOM_STAGES_MAX)
        return -1;
    size_t cap = b->stages ? b->stage[b->stages - 1].capacity * 2 : b->first_capacity;
    size_t per_key = S_BITS_PER_KEY0 + 2 * b->stages;
    if (per_key > S_BITS_PER_KEY_MAX)
        per_key = S_BITS_PER_KEY_MAX;
    size_t blocks = (cap * per_key + 511) / 512;
    uint64_t *bits = calloc(blocks * S_WORDS, sizeof *bits);
    if (!bits)
        return -1;
    b->stage[b->stages++] = (ordo_bloom_stage_t){bits, blocks, cap, 0};
    return 0;
}

static void s_probe(const ordo_bloom_stage_t *st, size_t index, uint64_t hash, uint64_t **block,
                    uint64_t mask[S_WORDS])
{
    uint64_t h = ordo_hash_mix(hash + 0x9e3779b97f4a7c15ull * (index + 1));
    *block = st->bits + (size_t)((h >> 32) * st->blocks >> 32) * S_WORDS;
    memset(mask, 0, S_WORDS * sizeof *mask);
    uint64_t g = ordo_hash_mix(h); /* 9 bits per key bit: 7 from each mix */
    for (int i = 0, k = s_k(index); i < k; i++, g >>= 9) {
        if (i == 7)
            g = ordo_hash_mix(g ^ h);
        mask[(g >> 6) & 7] |= 1ull << (g & 63);
    }
}

int ordo_bloom_add(ordo_bloom_t *b, uint64_t hash)
{
    if (s_saturated(b))
        return -1;
    if ((b->stages == 0 || b->stage[b->stages - 1].count >= b->stage[b->stages - 1].capacity) &&
        s_grow(b) != 0) {
        ordo_bloom_free(b);
        b->first_capacity = 0; /* saturated: "maybe" from now on */
        return -1;
    }
    ordo_bloom_stage_t *st = &b->stage[b->stages - 1];
    uint64_t *block, mask[S_WORDS];
    s_probe(st, b->stages - 1, hash, &block, mask);
    for (int w = 0; w < S_WORDS; w++)
        block[w] |= mask[w];
    st->count++;
    return 0;
}

bool ordo_bloom_maybe(const ordo_bloom_t *b, uint64_t hash)
{
    if (s_saturated(b))
        return true;
    for (size_t i = 0; i < b->stages; i++) {
        uint64_t *block, mask[S_WORDS];
        s_probe(&b->stage[i], i, hash, &block, mask);
        bool all = true;
        for (int w = 0; w < S_WORDS; w++)
            all &= (block[w] & mask[w]) == mask[w];
        if (all)
            return true;
    }
    return false;
}

size_t ordo_bloom_bytes(const ordo_bloom_t *b)
{
    size_t n = 0;
    for (size_t i = 0; i < b->stages; i++)
        n += b->stage[i].blocks * S_WORDS * sizeof(uint64_t);
    return n;
}
