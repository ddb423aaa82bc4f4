/* A small pull reader for MessagePack bytes we did not write (requests,
 * replies, log records, snapshot records). It never allocates: strings and
 * binaries are views into the input, which must outlive them.
 *
 * Untrusted bytes go through ordo_mp_validate() first: it checks that the
 * input is exactly one well-formed value, that no array or map claims more
 * elements than bytes remain, that nesting stays within a bound, and that
 * every str is valid UTF-8. After that the typed readers below cannot run
 * past the end; they still check bounds, so they are safe on their own. */
#ifndef ORDO_MP_H
#define ORDO_MP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    const uint8_t *p;   /* next byte to read */
    const uint8_t *end; /* one past the last byte */
} ordo_mp_t;

typedef enum {
    ORDO_MP_END = 0, /* no bytes left */
    ORDO_MP_NIL,
    ORDO_MP_BOOL,
    ORDO_MP_INT, /* any integer format, signed or unsigned */
    ORDO_MP_FLOAT,
    ORDO_MP_STR,
    ORDO_MP_BIN,
    ORDO_MP_ARRAY,
    ORDO_MP_MAP,
    ORDO_MP_EXT,
    ORDO_MP_INVALID, /* 0xc1, the never-used byte */
} ordo_mp_type_t;

/* Result of ordo_mp_validate(). */
typedef enum {
    ORDO_MP_OK = 0,
    ORDO_MP_ERR_TRUNCATED,  /* a value runs past the end */
    ORDO_MP_ERR_MALFORMED,  /* 0xc1, or a count larger than the bytes left */
    ORDO_MP_ERR_TRAILING,   /* bytes after the one value */
    ORDO_MP_ERR_TOO_DEEP,   /* nesting beyond max_depth */
    ORDO_MP_ERR_UTF8,       /* a str that is not valid UTF-8 */
} ordo_mp_status_t;

static inline void ordo_mp_init(ordo_mp_t *r, const void *buf, size_t len)
{
    r->p = buf;
    r->end = r->p + len;
}

/* Checks that buf holds exactly one well-formed value whose containers
 * nest at most `max_depth` levels (the outermost array or map is level 1). */
ordo_mp_status_t ordo_mp_validate(const void *buf, size_t len, int max_depth);

/* A sentence describing a validation status. */
const char *ordo_mp_status_text(ordo_mp_status_t st);

/* True if `len` bytes are valid UTF-8 (no overlongs, surrogates, > U+10FFFF). */
bool ordo_utf8_valid(const uint8_t *s, size_t len);

/* Type of the next value without consuming it. */
ordo_mp_type_t ordo_mp_peek(const ordo_mp_t *r);

/* Reads 8 big-endian bytes (MessagePack's byte order). */
static inline uint64_t ordo_mp_be64(const uint8_t *p)
{
    uint64_t v;
    __builtin_memcpy(&v, p, 8);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

/* Typed readers: on success consume the value and return true; on a type
 * mismatch or truncation return false and consume nothing. The common
 * one-byte forms (fixint, fixstr, fixarray, fixmap, nil) are read inline;
 * the rest go through the *_any functions in ordo_mp.c. */
bool ordo_mp_read_nil_any(ordo_mp_t *r);
bool ordo_mp_read_bool(ordo_mp_t *r, bool *out);
bool ordo_mp_read_int_any(ordo_mp_t *r, int64_t *out);
bool ordo_mp_read_uint_any(ordo_mp_t *r, uint64_t *out);
bool ordo_mp_read_str_any(ordo_mp_t *r, const char **ptr, uint32_t *len);
bool ordo_mp_read_bin(ordo_mp_t *r, const uint8_t **ptr, uint32_t *len);
bool ordo_mp_read_ext(ordo_mp_t *r, int8_t *type, const uint8_t **ptr, uint32_t *len);
bool ordo_mp_read_array_any(ordo_mp_t *r, uint32_t *count);
bool ordo_mp_read_map_any(ordo_mp_t *r, uint32_t *count);

static inline bool ordo_mp_read_nil(ordo_mp_t *r)
{
    if (r->p < r->end && *r->p == 0xc0) {
        r->p++;
        return true;
    }
    return false;
}

/* Fails above INT64_MAX. */
static inline bool ordo_mp_read_int(ordo_mp_t *r, int64_t *out)
{
    if (r->p < r->end && (*r->p <= 0x7f || *r->p >= 0xe0)) {
        *out = (int8_t)*r->p++; /* positive and negative fixint */
        return true;
    }
    if (r->p < r->end && *r->p == 0xcf && r->end - r->p >= 9) { /* uint64: timestamps */
        uint64_t v = ordo_mp_be64(r->p + 1);
        if (v > (uint64_t)INT64_MAX)
            return false;
        *out = (int64_t)v;
        r->p += 9;
        return true;
    }
    return ordo_mp_read_int_any(r, out);
}

/* Fails below 0. */
static inline bool ordo_mp_read_uint(ordo_mp_t *r, uint64_t *out)
{
    if (r->p < r->end && *r->p <= 0x7f) {
        *out = *r->p++;
        return true;
    }
    if (r->p < r->end && *r->p == 0xcf && r->end - r->p >= 9) { /* uint64: timestamps */
        *out = ordo_mp_be64(r->p + 1);
        r->p += 9;
        return true;
    }
    return ordo_mp_read_uint_any(r, out);
}

static inline bool ordo_mp_read_str(ordo_mp_t *r, const char **ptr, uint32_t *len)
{
    if (r->p < r->end && (*r->p & 0xe0) == 0xa0) {
        uint32_t n = *r->p & 0x1f;
        if (n < (size_t)(r->end - r->p)) {
            *ptr = (const char *)r->p + 1;
            *len = n;
            r->p += 1 + n;
            return true;
        }
        return false;
    }
    return ordo_mp_read_str_any(r, ptr, len);
}

static inline bool ordo_mp_read_array(ordo_mp_t *r, uint32_t *count)
{
    if (r->p < r->end && (*r->p & 0xf0) == 0x90) {
        uint32_t n = *r->p & 0x0f;
        if (n < (size_t)(r->end - r->p)) {
            *count = n;
            r->p++;
            return true;
        }
        return false;
    }
    return ordo_mp_read_array_any(r, count);
}

static inline bool ordo_mp_read_map(ordo_mp_t *r, uint32_t *count)
{
    if (r->p < r->end && (*r->p & 0xf0) == 0x80) {
        uint32_t n = *r->p & 0x0f;
        if (2 * n < (size_t)(r->end - r->p)) {
            *count = n;
            r->p++;
            return true;
        }
        return false;
    }
    return ordo_mp_read_map_any(r, count);
}

/* Skips one whole value (with everything nested in it). Iterative, so
 * depth costs no stack. False if the input ends first. */
bool ordo_mp_skip(ordo_mp_t *r);

/* True when the key just read equals the C string `lit`. */
static inline bool ordo_mp_key_is(const char *key, uint32_t len, const char *lit, uint32_t lit_len)
{
    return len == lit_len && __builtin_memcmp(key, lit, len) == 0;
}
#define ORDO_MP_KEY_IS(key, len, lit) ordo_mp_key_is((key), (len), (lit), sizeof(lit) - 1)

#endif
