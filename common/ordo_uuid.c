/* Event ids (UUIDv7 derived from order, version and time), formatting and
 * parsing; see ordo_uuid.h. */
#include "ordo_uuid.h"

#include <string.h>

static uint64_t s_mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void ordo_event_id(const char *order_id, size_t len, uint32_t version, int64_t timestamp_us,
                   uint8_t out[16])
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a over the id, then mixed */
    for (size_t i = 0; i < len; i++)
        h = (h ^ (uint8_t)order_id[i]) * 0x100000001b3ull;
    h = s_mix(h ^ s_mix(((uint64_t)version << 32) ^ 0x6f72646f /* "ordo" */));
    h = s_mix(h ^ (uint64_t)timestamp_us);
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
    size_t o = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            text[o++] = '-';
        text[o++] = hex[uuid[i] >> 4];
        text[o++] = hex[uuid[i] & 0xF];
    }
}

static int s_hexval(char c, bool lower_only)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (!lower_only && c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

bool ordo_uuid_parse(const char *text, size_t len, bool lower_only, uint8_t out[16])
{
    if (len != ORDO_UUID_TEXT_LEN)
        return false;
    size_t i = 0;
    for (int b = 0; b < 16; b++) {
        if (b == 4 || b == 6 || b == 8 || b == 10) {
            if (text[i++] != '-')
                return false;
        }
        int hi = s_hexval(text[i++], lower_only);
        int lo = s_hexval(text[i++], lower_only);
        if (hi < 0 || lo < 0)
            return false;
        out[b] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}
