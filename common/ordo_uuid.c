/* Event ids (UUIDv7 derived from order, version and time), formatting and
 * parsing; see ordo_uuid.h. */
#include "ordo_uuid.h"
#include "ordo_hash.h"

#include <string.h>

void ordo_event_id(const char *order_id, size_t len, uint32_t version, int64_t timestamp_us,
                   uint8_t out[16])
{
    uint64_t h = ordo_hash64(order_id, len, 0x6f72646f /* "ordo" */);
    h = ordo_hash_mix(h ^ ((uint64_t)version << 48) ^ (uint64_t)timestamp_us);
    uint64_t us = timestamp_us < 0 ? 0 : (uint64_t)timestamp_us;
    uint64_t ms = us / 1000;
    uint32_t sub = (uint32_t)(us % 1000);
    for (int i = 0; i < 6; i++)
        out[i] = (uint8_t)(ms >> (40 - 8 * i));
    out[6] = (uint8_t)(0x70 | (sub >> 8));
    out[7] = (uint8_t)(sub & 0xFF);
    out[8] = (uint8_t)(0x80 | ((h >> 56) & 0x3F));
    for (int i = 9; i < 16; i++)
        out[i] = (uint8_t)(h >> (8 * (15 - i)));
}

void ordo_uuid_format(const uint8_t uuid[16], char text[ORDO_UUID_TEXT_LEN])
{
    static const char hex[] = "0123456789abcdef";
    /* Byte i of the UUID goes to text[at[i]], text[at[i] + 1]. */
    static const uint8_t at[16] = {0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34};
    for (int i = 0; i < 16; i++) {
        text[at[i]] = hex[uuid[i] >> 4];
        text[at[i] + 1] = hex[uuid[i] & 0xF];
    }
    text[8] = text[13] = text[18] = text[23] = '-';
}

/* Hex digit values; 0xFF = not a digit, 0xFE = an upper-case digit. */
static const uint8_t *s_hex_table(void)
{
    static uint8_t table[256];
    static int ready;
    if (!__atomic_load_n(&ready, __ATOMIC_ACQUIRE)) {
        uint8_t t[256];
        memset(t, 0xFF, sizeof t);
        for (int c = 0; c < 10; c++)
            t['0' + c] = (uint8_t)c;
        for (int c = 0; c < 6; c++) {
            t['a' + c] = (uint8_t)(10 + c);
            t['A' + c] = 0xFE;
        }
        memcpy(table, t, sizeof t);
        __atomic_store_n(&ready, 1, __ATOMIC_RELEASE);
    }
    return table;
}

bool ordo_uuid_parse(const char *text, size_t len, bool lower_only, uint8_t out[16])
{
    if (len != ORDO_UUID_TEXT_LEN || text[8] != '-' || text[13] != '-' || text[18] != '-' ||
        text[23] != '-')
        return false;
    static const uint8_t starts[16] = {0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34};
    const uint8_t *t = s_hex_table();
    for (int b = 0; b < 16; b++) {
        uint8_t c1 = (uint8_t)text[starts[b]], c2 = (uint8_t)text[starts[b] + 1];
        uint8_t hi = t[c1], lo = t[c2];
        if ((hi | lo) >= 0xFE) {
            if (lower_only || hi == 0xFF || lo == 0xFF)
                return false;
            hi = hi == 0xFE ? (uint8_t)(c1 - 'A' + 10) : hi;
            lo = lo == 0xFE ? (uint8_t)(c2 - 'A' + 10) : lo;
        }
        out[b] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}
