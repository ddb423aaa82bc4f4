/* MessagePack pull reader and validator (see ordo_mp.h). The format's
 * header bytes are decoded in one place, s_header(), which both the
 * validator and the readers use. */
#include "ordo_mp.h"

#include <string.h>

/* What a header byte (plus its length bytes) says about the value. */
typedef struct {
    ordo_mp_type_t type;
    uint32_t hdr;    /* bytes of header (type byte + length/value bytes) */
    uint64_t len;    /* str/bin/ext payload bytes (ext: + 1 type byte); array/map element count */
    uint64_t u;      /* integer bits (ints), bool value */
    bool negative;   /* int: value is negative (u holds it as int64 bits) */
} s_hdr_t;

static inline uint64_t s_be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/* Decodes the header at r->p. Returns false if it runs past the end or is
 * the never-used byte. Does not check that the payload fits. */
static bool s_header(const uint8_t *p, const uint8_t *end, s_hdr_t *h)
{
    if (p >= end)
        return false;
    size_t avail = (size_t)(end - p);
    uint8_t b = p[0];
    memset(h, 0, sizeof *h);
    h->hdr = 1;
    if (b <= 0x7f) {
        h->type = ORDO_MP_INT;
        h->u = b;
        return true;
    }
    if (b >= 0xe0) {
        h->type = ORDO_MP_INT;
        h->u = (uint64_t)(int64_t)(int8_t)b;
        h->negative = true;
        return true;
    }
    if ((b & 0xf0) == 0x80) {
        h->type = ORDO_MP_MAP;
        h->len = b & 0x0f;
        return true;
    }
    if ((b & 0xf0) == 0x90) {
        h->type = ORDO_MP_ARRAY;
        h->len = b & 0x0f;
        return true;
    }
    if ((b & 0xe0) == 0xa0) {
        h->type = ORDO_MP_STR;
        h->len = b & 0x1f;
        return true;
    }
    int n = 0; /* length bytes after the type byte */
    switch (b) {
    case 0xc0: h->type = ORDO_MP_NIL; return true;
    case 0xc2: h->type = ORDO_MP_BOOL; h->u = 0; return true;
    case 0xc3: h->type = ORDO_MP_BOOL; h->u = 1; return true;
    case 0xc4: case 0xc5: case 0xc6:
        h->type = ORDO_MP_BIN; n = 1 << (b - 0xc4); break;
    case 0xc7: case 0xc8: case 0xc9:
        h->type = ORDO_MP_EXT; n = 1 << (b - 0xc7); break;
    case 0xca: h->type = ORDO_MP_FLOAT; h->len = 4; return true;
    case 0xcb: h->type = ORDO_MP_FLOAT; h->len = 8; return true;
    case 0xcc: case 0xcd: case 0xce: case 0xcf:
        n = 1 << (b - 0xcc);
        if (avail < 1u + (unsigned)n)
            return false;
        h->type = ORDO_MP_INT;
        h->u = s_be(p + 1, n);
        h->hdr = 1 + (uint32_t)n;
        return true;
    case 0xd0: case 0xd1: case 0xd2: case 0xd3: {
        n = 1 << (b - 0xd0);
        if (avail < 1u + (unsigned)n)
            return false;
        uint64_t v = s_be(p + 1, n);
        int shift = 64 - 8 * n;
        int64_t sv = shift ? (int64_t)(v << shift) >> shift : (int64_t)v;
        h->type = ORDO_MP_INT;
        h->u = (uint64_t)sv;
        h->negative = sv < 0;
        h->hdr = 1 + (uint32_t)n;
        return true;
    }
    case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8:
        h->type = ORDO_MP_EXT;
        h->len = 1 + (1u << (b - 0xd4));
        return true;
    case 0xd9: case 0xda: case 0xdb:
        h->type = ORDO_MP_STR; n = 1 << (b - 0xd9); break;
    case 0xdc: case 0xdd:
        h->type = ORDO_MP_ARRAY; n = 2 << (b - 0xdc); break;
    case 0xde: case 0xdf:
        h->type = ORDO_MP_MAP; n = 2 << (b - 0xde); break;
    default: /* 0xc1 */
        return false;
    }
    if (avail < 1u + (unsigned)n)
        return false;
    h->len = s_be(p + 1, n);
    h->hdr = 1 + (uint32_t)n;
    if (h->type == ORDO_MP_EXT)
        h->len += 1; /* the ext type byte */
    return true;
}

/* Bytes of payload that follow the header (0 for containers). */
static inline uint64_t s_payload(const s_hdr_t *h)
{
    switch (h->type) {
    case ORDO_MP_STR: case ORDO_MP_BIN: case ORDO_MP_EXT: case ORDO_MP_FLOAT: return h->len;
    default: return 0;
    }
}

bool ordo_utf8_valid(const uint8_t *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        /* Fast path: eight ASCII bytes at a time. */
        if (i + 8 <= len) {
            uint64_t v;
            memcpy(&v, s + i, 8);
            if ((v & 0x8080808080808080ull) == 0) {
                i += 8;
                continue;
            }
        }
        uint8_t c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t n;
        uint32_t cp;
        if (c >= 0xc2 && c <= 0xdf) {
            n = 2;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 3;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 4;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (len - i < n)
            return false;
        for (size_t k = 1; k < n; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += n;
    }
    return true;
}

/* Recursive validation; depth is bounded by max_depth, so is the stack. */
static ordo_mp_status_t s_validate(const uint8_t **pp, const uint8_t *end, int depth,
                                   int max_depth)
{
    s_hdr_t h;
    const uint8_t *p = *pp;
    if (p >= end)
        return ORDO_MP_ERR_TRUNCATED;
    if (!s_header(p, end, &h))
        return p[0] == 0xc1 ? ORDO_MP_ERR_MALFORMED : ORDO_MP_ERR_TRUNCATED;
    p += h.hdr;
    size_t left = (size_t)(end - p);
    uint64_t payload = s_payload(&h);
    if (payload > left)
        return ORDO_MP_ERR_TRUNCATED;
    if (h.type == ORDO_MP_STR && !ordo_utf8_valid(p, (size_t)payload))
        return ORDO_MP_ERR_UTF8;
    p += payload;
    if (h.type == ORDO_MP_ARRAY || h.type == ORDO_MP_MAP) {
        uint64_t items = h.type == ORDO_MP_MAP ? h.len * 2 : h.len;
        if (items > left)
            return ORDO_MP_ERR_MALFORMED; /* every element takes at least one byte */
        if (depth + 1 > max_depth) /* this container sits at level depth + 1 */
            return ORDO_MP_ERR_TOO_DEEP;
        for (uint64_t i = 0; i < items; i++) {
            ordo_mp_status_t st = s_validate(&p, end, depth + 1, max_depth);
            if (st != ORDO_MP_OK)
                return st;
        }
    }
    *pp = p;
    return ORDO_MP_OK;
}

ordo_mp_status_t ordo_mp_validate(const void *buf, size_t len, int max_depth)
{
    const uint8_t *p = buf, *end = p + len;
    ordo_mp_status_t st = s_validate(&p, end, 0, max_depth);
    if (st == ORDO_MP_OK && p != end)
        st = ORDO_MP_ERR_TRAILING;
    return st;
}

const char *ordo_mp_status_text(ordo_mp_status_t st)
{
    switch (st) {
    case ORDO_MP_OK: return "valid MessagePack";
    case ORDO_MP_ERR_TRUNCATED: return "the body is not valid MessagePack (it ends inside a value)";
    case ORDO_MP_ERR_MALFORMED: return "the body is not valid MessagePack (bad type byte or element count)";
    case ORDO_MP_ERR_TRAILING: return "the body must be exactly one MessagePack value, but bytes follow it";
    case ORDO_MP_ERR_TOO_DEEP: return "the body nests deeper than 16 levels";
    case ORDO_MP_ERR_UTF8: return "the body contains a string that is not valid UTF-8";
    }
    return "invalid MessagePack";
}

ordo_mp_type_t ordo_mp_peek(const ordo_mp_t *r)
{
    s_hdr_t h;
    if (r->p >= r->end)
        return ORDO_MP_END;
    if (!s_header(r->p, r->end, &h))
        return ORDO_MP_INVALID;
    return h.type;
}

/* Reads a header of type `want` whose payload fits; advances past header. */
static bool s_take(ordo_mp_t *r, ordo_mp_type_t want, s_hdr_t *h)
{
    if (!s_header(r->p, r->end, h) || h->type != want)
        return false;
    if (s_payload(h) > (uint64_t)(r->end - r->p) - h->hdr)
        return false;
    r->p += h->hdr;
    return true;
}

bool ordo_mp_read_nil_any(ordo_mp_t *r)
{
    s_hdr_t h;
    return s_take(r, ORDO_MP_NIL, &h);
}

bool ordo_mp_read_bool(ordo_mp_t *r, bool *out)
{
    s_hdr_t h;
    if (!s_take(r, ORDO_MP_BOOL, &h))
        return false;
    *out = h.u != 0;
    return true;
}

bool ordo_mp_read_int_any(ordo_mp_t *r, int64_t *out)
{
    s_hdr_t h;
    if (!s_header(r->p, r->end, &h) || h.type != ORDO_MP_INT)
        return false;
    if (!h.negative && h.u > (uint64_t)INT64_MAX)
        return false;
    r->p += h.hdr;
    *out = (int64_t)h.u;
    return true;
}

bool ordo_mp_read_uint_any(ordo_mp_t *r, uint64_t *out)
{
    s_hdr_t h;
    if (!s_header(r->p, r->end, &h) || h.type != ORDO_MP_INT || h.negative)
        return false;
    r->p += h.hdr;
    *out = h.u;
    return true;
}

bool ordo_mp_read_str_any(ordo_mp_t *r, const char **ptr, uint32_t *len)
{
    s_hdr_t h;
    if (!s_take(r, ORDO_MP_STR, &h))
        return false;
    *ptr = (const char *)r->p;
    *len = (uint32_t)h.len;
    r->p += h.len;
    return true;
}

bool ordo_mp_read_bin(ordo_mp_t *r, const uint8_t **ptr, uint32_t *len)
{
    s_hdr_t h;
    if (!s_take(r, ORDO_MP_BIN, &h))
        return false;
    *ptr = r->p;
    *len = (uint32_t)h.len;
    r->p += h.len;
    return true;
}

bool ordo_mp_read_ext(ordo_mp_t *r, int8_t *type, const uint8_t **ptr, uint32_t *len)
{
    s_hdr_t h;
    if (!s_take(r, ORDO_MP_EXT, &h))
        return false;
    *type = (int8_t)r->p[0]; /* h.len counts the type byte */
    *ptr = r->p + 1;
    *len = (uint32_t)(h.len - 1);
    r->p += h.len;
    return true;
}

/* Reads an array or map header whose elements could fit in what is left. */
static bool s_take_container(ordo_mp_t *r, ordo_mp_type_t want, uint32_t *count)
{
    s_hdr_t h;
    if (!s_header(r->p, r->end, &h) || h.type != want)
        return false;
    uint64_t items = want == ORDO_MP_MAP ? h.len * 2 : h.len;
    if (items > (uint64_t)(r->end - r->p) - h.hdr)
        return false;
    r->p += h.hdr;
    *count = (uint32_t)h.len;
    return true;
}

bool ordo_mp_read_array_any(ordo_mp_t *r, uint32_t *count)
{
    return s_take_container(r, ORDO_MP_ARRAY, count);
}

bool ordo_mp_read_map_any(ordo_mp_t *r, uint32_t *count)
{
    return s_take_container(r, ORDO_MP_MAP, count);
}

bool ordo_mp_skip(ordo_mp_t *r)
{
    const uint8_t *p = r->p;
    uint64_t pending = 1;
    while (pending > 0) {
        s_hdr_t h;
        if (!s_header(p, r->end, &h))
            return false;
        p += h.hdr;
        uint64_t payload = s_payload(&h);
        if (payload > (uint64_t)(r->end - p))
            return false;
        p += payload;
        pending--;
        if (h.type == ORDO_MP_ARRAY)
            pending += h.len;
        else if (h.type == ORDO_MP_MAP)
            pending += h.len * 2;
        if (pending > (uint64_t)(r->end - p))
            return false;
    }
    r->p = p;
    return true;
}
