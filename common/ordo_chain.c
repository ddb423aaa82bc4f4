/* The events' hash chain with libsodium's BLAKE2b (see ordo_chain.h). */
#include "ordo_chain.h"

#include <sodium.h>

int ordo_chain_init(void)
{
    return sodium_init() < 0 ? -1 : 0;
}

void ordo_chain_hash(const uint8_t prev[ORDO_HASH_SIZE], const void *record, size_t len,
                     uint8_t out[ORDO_HASH_SIZE])
{
    static const uint8_t zeros[ORDO_HASH_SIZE];
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, ORDO_HASH_SIZE);
    crypto_generichash_update(&st, prev ? prev : zeros, ORDO_HASH_SIZE);
    crypto_generichash_update(&st, record, len);
    crypto_generichash_final(&st, out, ORDO_HASH_SIZE);
}
