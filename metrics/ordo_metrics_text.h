/* Writes the Prometheus text exposition format (version 0.0.4) into a
 * growing buffer: a family's HELP and TYPE lines, then its samples, with
 * label values escaped. Out of memory marks the buffer failed; every
 * later call then does nothing and the scrape answers 500. */
#ifndef ORDO_METRICS_TEXT_H
#define ORDO_METRICS_TEXT_H

#include "ordo_buckets.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    char *data; /* owned, NUL-terminated while not failed */
    size_t len, cap;
    bool failed;
} ordo_mtext_t;

void ordo_mtext_init(ordo_mtext_t *t);
void ordo_mtext_free(ordo_mtext_t *t);

/* "# HELP name help" and "# TYPE name type" (counter, gauge, histogram). */
void ordo_mtext_family(ordo_mtext_t *t, const char *name, const char *type, const char *help);

/* One sample: name{label="value"} v. `label` NULL: no label. */
void ordo_mtext_uint(ordo_mtext_t *t, const char *name, const char *label, const char *value,
                     uint64_t v);
void ordo_mtext_int(ordo_mtext_t *t, const char *name, const char *label, const char *value,
                    int64_t v);
void ordo_mtext_double(ordo_mtext_t *t, const char *name, const char *label, const char *value,
                       double v);

/* A whole histogram family: _bucket{le=...} (cumulative), _sum, _count,
 * with bounds and sum multiplied by `scale` (1e-9: nanoseconds as
 * seconds). */
void ordo_mtext_histogram(ordo_mtext_t *t, const char *name, const char *help,
                          ordo_buckets_t *h, double scale);

#endif
