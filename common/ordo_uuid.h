/* Event ids: UUIDv7 (RFC 9562) derived from the event itself.
 *   48 bits  Unix milliseconds of the event's timestamp
 *    4 bits  version 7
 *   12 bits  the microseconds within that millisecond (0..999; RFC 9562
 *            section 6.2 method 3, extra clock precision)
 *    2 bits  variant 10
 *   62 bits  a 64-bit hash of (order_id, version, timestamp_us)
 * An event is identified by its order and version, so the id is unique
 * wherever order ids are (one engine, or engines partitioned by order id),
 * and it need not be stored: the log rebuilds it on every read, and a
 * replay reproduces the exact ids clients saw. On the wire it is the
 * lower-case canonical text (36 chars). */
#ifndef ORDO_UUID_H
#define ORDO_UUID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ORDO_UUID_TEXT_LEN 36

/* Computes the event id of version `version` of order `order_id` stamped
 * `timestamp_us` (microseconds since the Unix epoch, >= 0). */
void ordo_event_id(const char *order_id, size_t len, uint32_t version, int64_t timestamp_us,
                   uint8_t out[16]);

/* Writes the canonical lower-case text (36 chars, no NUL) into `text`. */
void ordo_uuid_format(const uint8_t uuid[16], char text[ORDO_UUID_TEXT_LEN]);

/* Parses canonical text; `lower_only` refuses upper-case hex digits (for
 * callers that must reproduce the text exactly). False if it is not one. */
bool ordo_uuid_parse(const char *text, size_t len, bool lower_only, uint8_t out[16]);

#endif
