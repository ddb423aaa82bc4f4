/* The Prometheus text format writer (see ordo_metrics_text.h). */
#include "ordo_metrics_text.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ordo_mtext_init(ordo_mtext_t *t)
{
    memset(t, 0, sizeof *t);
}

void ordo_mtext_free(ordo_mtext_t *t)
{
    free(t->data);
    memset(t, 0, sizeof *t);
}

static bool s_reserve(ordo_mtext_t *t, size_t more)
{
    if (t->failed)
        return false;
    if (t->len + more + 1 <= t->cap)
        return true;
    size_t cap = t->cap ? t->cap : 8192;
    while (cap < t->len + more + 1)
        cap *= 2;
    char *p = realloc(t->data, cap);
    if (!p) {
        t->failed = true;
        return false;
    }
    t->data = p;
    t->cap = cap;
    return true;
}

static void s_put(ordo_mtext_t *t, const char *s, size_t n)
{
    if (!s_reserve(t, n))
        return;
    memcpy(t->data + t->len, s, n);
    t->len += n;
    t->data[t->len] = '\0';
}

static void s_printf(ordo_mtext_t *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void s_printf(ordo_mtext_t *t, const char *fmt, ...)
{
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof line) { /* our names are short: a bug, not data */
        t->failed = true;
        return;
    }
    s_put(t, line, (size_t)n);
}

/* HELP text: backslash and newline escaped. */
static void s_help_text(ordo_mtext_t *t, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\')
            s_put(t, "\\\\", 2);
        else if (*s == '\n')
            s_put(t, "\\n", 2);
        else
            s_put(t, s, 1);
    }
}

/* A label value: backslash, double quote and newline escaped. */
static void s_label_value(ordo_mtext_t *t, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\')
            s_put(t, "\\\\", 2);
        else if (*s == '"')
            s_put(t, "\\\"", 2);
        else if (*s == '\n')
            s_put(t, "\\n", 2);
        else
            s_put(t, s, 1);
    }
}

void ordo_mtext_family(ordo_mtext_t *t, const char *name, const char *type, const char *help)
{
    s_printf(t, "# HELP %s ", name);
    s_help_text(t, help);
    s_printf(t, "\n# TYPE %s %s\n", name, type);
}

static void s_name(ordo_mtext_t *t, const char *name, const char *label, const char *value)
{
    s_put(t, name, strlen(name));
    if (label) {
        s_printf(t, "{%s=\"", label);
        s_label_value(t, value ? value : "");
        s_put(t, "\"}", 2);
    }
}

void ordo_mtext_uint(ordo_mtext_t *t, const char *name, const char *label, const char *value,
                     uint64_t v)
{
    s_name(t, name, label, value);
    s_printf(t, " %" PRIu64 "\n", v);
}

void ordo_mtext_int(ordo_mtext_t *t, const char *name, const char *label, const char *value,
                    int64_t v)
{
    s_name(t, name, label, value);
    s_printf(t, " %" PRId64 "\n", v);
}

void ordo_mtext_double(ordo_mtext_t *t, const char *name, const char *label, const char *value,
                       double v)
{
    s_name(t, name, label, value);
    if (isnan(v))
        s_put(t, " NaN\n", 5);
    else if (isinf(v))
        s_printf(t, " %s\n", v > 0 ? "+Inf" : "-Inf");
    else
        s_printf(t, " %.15g\n", v);
}

void ordo_mtext_histogram(ordo_mtext_t *t, const char *name, const char *help,
                          ordo_buckets_t *h, double scale)
{
    ordo_mtext_family(t, name, "histogram", help);
    /* One read of each bucket: the cumulative counts are then consistent
     * with each other and with _count, even while observations go on. */
    uint64_t counts[ORDO_BUCKETS_MAX + 1];
    for (uint32_t i = 0; i <= h->n; i++)
        counts[i] = atomic_load_explicit(&h->count[i], memory_order_relaxed);
    uint64_t sum = atomic_load_explicit(&h->sum, memory_order_relaxed);
    char bucket[128], le[32];
    snprintf(bucket, sizeof bucket, "%s_bucket", name);
    uint64_t cumulative = 0;
    for (uint32_t i = 0; i < h->n; i++) {
        cumulative += counts[i];
        snprintf(le, sizeof le, "%.9g", (double)h->bound[i] * scale);
        ordo_mtext_uint(t, bucket, "le", le, cumulative);
    }
    cumulative += counts[h->n];
    ordo_mtext_uint(t, bucket, "le", "+Inf", cumulative);
    char other[128];
    snprintf(other, sizeof other, "%s_sum", name);
    ordo_mtext_double(t, other, NULL, NULL, (double)sum * scale);
    snprintf(other, sizeof other, "%s_count", name);
    ordo_mtext_uint(t, other, NULL, NULL, cumulative);
}
