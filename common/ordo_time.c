/* Times as text (see ordo_time.h). */
#include "ordo_time.h"

#include "ordo_number.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>


/* Reads exactly `n` digits. */
static bool s_digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++, (*p)++) {
        if (**p < '0' || **p > '9')
            return false;
        v = v * 10 + (**p - '0');
    }
    *out = v;
    return true;
}

/* TIME: microseconds since the epoch, or ISO-8601
 * YYYY-MM-DD[(T| )hh:mm[:ss[.frac]]][Z|(+|-)hh[:mm]|(+|-)hhmm], UTC when no
 * offset is given, or the time alone, hh:mm[:ss[.frac]][offset], on
 * today's date in UTC. */
bool ordo_time_parse(const char *s, int64_t *us)
{
    int64_t v;
    if (s[0] >= '0' && s[0] <= '9' && s[1] >= '0' && s[1] <= '9' && s[2] == ':') {
        char today[64];
        time_t now = time(NULL);
        struct tm tm;
        if (strlen(s) > 32 || !gmtime_r(&now, &tm))
            return false;
        snprintf(today, sizeof today, "%04d-%02d-%02dT%s", tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday, s);
        return ordo_time_parse(today, us);
    }
    if (ordo_number_all_digits(s))
        return ordo_number_parse(s, 0, INT64_MAX, us);
    if (s[0] == '-' && ordo_number_all_digits(s + 1))
        return ordo_number_parse(s, INT64_MIN, INT64_MAX, &v) && (*us = v, true);
    const char *p = s;
    int Y, M, D, h = 0, m = 0, sec = 0, frac = 0;
    if (!s_digits(&p, 4, &Y) || *p++ != '-' || !s_digits(&p, 2, &M) || *p++ != '-' ||
        !s_digits(&p, 2, &D))
        return false;
    if (*p == 'T' || *p == 't' || *p == ' ') {
        p++;
        if (!s_digits(&p, 2, &h) || *p++ != ':' || !s_digits(&p, 2, &m))
            return false;
        if (*p == ':') {
            p++;
            if (!s_digits(&p, 2, &sec))
                return false;
            if (*p == '.' || *p == ',') {
                p++;
                int nd = 0;
                while (*p >= '0' && *p <= '9') {
                    if (nd < 6)
                        frac = frac * 10 + (*p - '0');
                    nd++;
                    p++;
                }
                if (nd == 0)
                    return false;
                for (; nd < 6; nd++)
                    frac *= 10;
            }
        }
    }
    int offset_min = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p++ == '-' ? -1 : 1, oh, om = 0;
        if (!s_digits(&p, 2, &oh))
            return false;
        if (*p == ':')
            p++;
        if (*p && !s_digits(&p, 2, &om))
            return false;
        if (oh > 23 || om > 59)
            return false;
        offset_min = sign * (oh * 60 + om);
    }
    if (*p || M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60)
        return false;
    struct tm tm = {.tm_year = Y - 1900, .tm_mon = M - 1, .tm_mday = D,
                    .tm_hour = h, .tm_min = m, .tm_sec = sec};
    time_t t = timegm(&tm);
    if (tm.tm_mday != D) /* 2025-02-30 */
        return false;
    *us = ((int64_t)t - (int64_t)offset_min * 60) * 1000000 + frac;
    return true;
}

/* ISO-8601 UTC with microseconds. */
const char *ordo_time_format(int64_t us, char buf[40])
{
    int64_t sec = us / 1000000, frac = us % 1000000;
    if (frac < 0) {
        frac += 1000000;
        sec--;
    }
    time_t t = (time_t)sec;
    struct tm tm;
    if (!gmtime_r(&t, &tm)) {
        snprintf(buf, 40, "%" PRId64 "us", us);
        return buf;
    }
    size_t n = strftime(buf, 40, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, 40 - n, ".%06dZ", (int)frac);
    return buf;
}

