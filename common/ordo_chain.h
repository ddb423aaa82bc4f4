/* The hash chain of an order's events (PROTOCOL.md 1.1, "Tamper-evident
 * history"): hash = BLAKE2b-256(previous hash || the event's record, as
 * MessagePack in its canonical form, without `hash`), with libsodium's
 * crypto_generichash. The previous hash is 32 zero bytes for an order's
 * first event, or when the previous event has none (written before 1.1). */
#ifndef ORDO_CHAIN_H
#define ORDO_CHAIN_H

#include <stddef.h>
#include <stdint.h>

#define ORDO_HASH_SIZE 32
#define ORDO_HASH_HEX_LEN 64

/* Prepares libsodium (picks its fastest code for this CPU); any thread,
 * any number of times. 0, or -1 if libsodium cannot start. */
int ordo_chain_init(void);

/* out = BLAKE2b-256(prev || record[0..len)). prev NULL means 32 zeros. */
void ordo_chain_hash(const uint8_t prev[ORDO_HASH_SIZE], const void *record, size_t len,
                     uint8_t out[ORDO_HASH_SIZE]);

#endif
