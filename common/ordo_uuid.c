/* UUIDv7 generation, formatting and parsing (see ordo_uuid.h). */
#include "ordo_uuid.h"
#include "ordo_error.h"

#include <string.h>
#include <sys/random.h>

int ordo_uuid_gen_init(ordo_uuid_gen_t *gen)
{
    memset(gen, 0, sizeof *gen);
    if (getrandom(gen->state, sizeof gen->state, 0) != (ssize_t)sizeof gen->state)
        return ORDO_ERR_IO;
    if (gen->state[0] == 0 && gen->state[1] == 0)
        gen->state[0] = 1;
    gen->last_ms = -1;
    return ORDO_OK;
}

static uint64_t s_next(ordo_uuid_gen_t *gen)
{
    uint64_t s1 = gen->state[0];
    const uint64_t s0 = gen->state[1];
    gen->state[0] = s0;
    s1 ^= s1 << 23;
    gen->state[1] = s1 ^ s0 ^ (s1 >> 17) ^ (s0 >> 26);
    return gen->state[1] + s0;
}

void ordo_uuid7_make(ordo_uuid_gen_t *gen, int64_t unix_us, uint8_t out[16])
{
    int64_t ms = unix_us / 1000;
    if (ms <= gen->last_ms) {
        /* Same (or earlier) millisecond: count up; on overflow borrow the
         * next millisecond so ids stay strictly increasing. */
        ms = gen->last_ms;
        if (++gen->counter > 0xFFF) {
            ms++;
            gen->counter = 0;
        }
    } else {
        gen->counter = 0;
    }
    gen->last_ms = ms;
    uint64_t r = s_next(gen);
    for (int i = 0; i < 6; i++)
        out[i] = (uint8_t)((uint64_t)ms >> (40 - 8 * i));
    out[6] = (uint8_t)(0x70 | ((gen->counter >> 8) & 0x0F));
    out[7] = (uint8_t)(gen->counter & 0xFF);
    out[8] = (uint8_t)(0x80 | ((r >> 56) & 0x3F));
    for (int i = 9; i < 16; i++)
        out[i] = (uint8_t)(r >> (8 * (15 - i)));
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

static int s_hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

bool ordo_uuid_parse(const char *text, size_t len, uint8_t out[16])
{
    if (len != ORDO_UUID_TEXT_LEN)
        return false;
    size_t i = 0;
    for (int b = 0; b < 16; b++) {
        if (b == 4 || b == 6 || b == 8 || b == 10) {
            if (text[i++] != '-')
                return false;
        }
        int hi = s_hexval(text[i++]);
        int lo = s_hexval(text[i++]);
        if (hi < 0 || lo < 0)
            return false;
        out[b] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}
