/* Bytes as lower-case hex text and back: how hashes (PROTOCOL.md 1.1
 * `hash`, `head_hash`) cross the wire. */
#ifndef ORDO_HEX_H
#define ORDO_HEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Writes 2 * n lower-case hex digits and a NUL into out. */
void ordo_hex_encode(const uint8_t *bytes, size_t n, char *out);

/* Reads exactly 2 * n lower-case hex digits (len must be 2 * n) into
 * bytes. False on anything else (upper case included: one spelling). */
bool ordo_hex_decode(const char *text, size_t len, uint8_t *bytes, size_t n);

#endif
