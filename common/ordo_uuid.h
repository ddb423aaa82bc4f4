/* UUIDv7 (RFC 9562) event ids: 48-bit Unix milliseconds, version 7,
 * 12 bits of sub-millisecond counter, variant 10, 62 random bits.
 * Held as 16 bytes; on the wire as lower-case canonical text (36 chars). */
#ifndef ORDO_UUID_H
#define ORDO_UUID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ORDO_UUID_TEXT_LEN 36

typedef struct {
    uint64_t state[2]; /* xorshift128+ state, seeded from getrandom(2) */
    int64_t last_ms;   /* milliseconds of the last id made */
    uint32_t counter;  /* 12-bit counter within last_ms, keeps ids increasing */
} ordo_uuid_gen_t;

/* Seeds a generator from the OS entropy pool. Returns 0 or ORDO_ERR_IO. */
int ordo_uuid_gen_init(ordo_uuid_gen_t *gen);

/* Makes a new UUIDv7 for time `unix_us` into `out`. Ids made by one
 * generator are strictly increasing as bytes. */
void ordo_uuid7_make(ordo_uuid_gen_t *gen, int64_t unix_us, uint8_t out[16]);

/* Writes the canonical lower-case text (36 chars, no NUL) into `text`. */
void ordo_uuid_format(const uint8_t uuid[16], char text[ORDO_UUID_TEXT_LEN]);

/* Parses canonical text (either case); returns false if it is not one. */
bool ordo_uuid_parse(const char *text, size_t len, uint8_t out[16]);

#endif
