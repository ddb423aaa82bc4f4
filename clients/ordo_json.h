/* MessagePack to JSON, for ordo-cli's --json output: maps, arrays,
 * strings (escaped per RFC 8259), integers, booleans and nil; the other
 * MessagePack types do not occur in the protocol and print as null.
 * Compact: no spaces, so scripts can match exact text. */
#ifndef ORDO_JSON_H
#define ORDO_JSON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Writes the one value in buf as JSON. Returns 0, or -1 if buf is not one
 * well-formed MessagePack value (nothing sensible is written then). */
int ordo_json_write(FILE *out, const uint8_t *buf, size_t len);

/* `len` bytes as one JSON string, quoted and escaped per RFC 8259. */
void ordo_json_string(FILE *out, const char *s, size_t len);

#endif
