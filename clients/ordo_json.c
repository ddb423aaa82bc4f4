/* MessagePack to JSON over the project's validating reader (ordo_mp):
 * the input is validated first (nesting bounded), so the recursion below
 * is bounded too. */
#include "ordo_json.h"
#include "ordo_codec.h"

void ordo_json_string(FILE *out, const char *s, size_t len)
{
    fputc('"', out);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"': fputs("\\\"", out); break;
        case '\\': fputs("\\\\", out); break;
        case '\n': fputs("\\n", out); break;
        case '\r': fputs("\\r", out); break;
        case '\t': fputs("\\t", out); break;
        default:
            if (c < 0x20 || c == 0x7f)
                fprintf(out, "\\u%04x", c);
            else
                fputc(c, out);
        }
    }
    fputc('"', out);
}

static int s_value(FILE *out, ordo_mp_t *r)
{
    const char *s;
    uint32_t n;
    int64_t i;
    uint64_t u;
    bool b;
    switch (ordo_mp_peek(r)) {
    case ORDO_MP_NIL:
        ordo_mp_read_nil_any(r);
        fputs("null", out);
        return 0;
    case ORDO_MP_BOOL:
        ordo_mp_read_bool(r, &b);
        fputs(b ? "true" : "false", out);
        return 0;
    case ORDO_MP_INT:
        if (ordo_mp_read_int(r, &i))
            fprintf(out, "%lld", (long long)i);
        else if (ordo_mp_read_uint(r, &u))
            fprintf(out, "%llu", (unsigned long long)u);
        else
            return -1;
        return 0;
    case ORDO_MP_STR:
        if (!ordo_mp_read_str(r, &s, &n))
            return -1;
        ordo_json_string(out, s, n);
        return 0;
    case ORDO_MP_ARRAY:
        if (!ordo_mp_read_array(r, &n))
            return -1;
        fputc('[', out);
        for (uint32_t k = 0; k < n; k++) {
            if (k)
                fputc(',', out);
            if (s_value(out, r) != 0)
                return -1;
        }
        fputc(']', out);
        return 0;
    case ORDO_MP_MAP:
        if (!ordo_mp_read_map(r, &n))
            return -1;
        fputc('{', out);
        for (uint32_t k = 0; k < n; k++) {
            if (k)
                fputc(',', out);
            uint32_t kl;
            if (ordo_mp_read_str(r, &s, &kl)) {
                ordo_json_string(out, s, kl);
            } else if (ordo_mp_read_int(r, &i)) { /* JSON keys are strings */
                fprintf(out, "\"%lld\"", (long long)i);
            } else {
                if (!ordo_mp_skip(r))
                    return -1;
                fputs("\"\"", out);
            }
            fputc(':', out);
            if (s_value(out, r) != 0)
                return -1;
        }
        fputc('}', out);
        return 0;
    default:
        if (!ordo_mp_skip(r))
            return -1;
        fputs("null", out);
        return 0;
    }
}

int ordo_json_write(FILE *out, const uint8_t *buf, size_t len)
{
    if (ordo_mp_validate(buf, len, ORDO_NESTING_MAX + 2) != ORDO_MP_OK)
        return -1;
    ordo_mp_t r;
    ordo_mp_init(&r, buf, len);
    return s_value(out, &r);
}
