/* Whole numbers from text, checked: what every program reads from its
 * command line. */
#ifndef ORDO_NUMBER_H
#define ORDO_NUMBER_H

#include <stdbool.h>
#include <stdint.h>

/* A whole decimal integer in [min, max] (all of s, nothing else). */
bool ordo_number_parse(const char *s, int64_t min, int64_t max, int64_t *out);

/* True if s is one or more decimal digits and nothing else. */
bool ordo_number_all_digits(const char *s);

#endif
