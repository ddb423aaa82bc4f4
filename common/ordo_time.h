/* Times as text, the same for every program: TIME read from an argument
 * (ISO-8601, a time of day, or microseconds) and written as ISO-8601 UTC
 * with microseconds. */
#ifndef ORDO_TIME_H
#define ORDO_TIME_H

#include <stdbool.h>
#include <stdint.h>

/* TIME: microseconds since the epoch, or ISO-8601
 * YYYY-MM-DD[(T| )hh:mm[:ss[.frac]]][Z|(+|-)hh[:mm]|(+|-)hhmm], UTC when no
 * offset is given, or the time alone, hh:mm[:ss[.frac]][offset], on
 * today's date in UTC. False if it is none of these. */
bool ordo_time_parse(const char *s, int64_t *us);

/* "2025-06-01T12:30:00.000000Z" into buf; returns buf. */
const char *ordo_time_format(int64_t us, char buf[40]);

#endif
