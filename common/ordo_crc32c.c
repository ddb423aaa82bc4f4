/* CRC32C: hardware path (SSE4.2) chosen once at first use, table fallback.
 * Reflected polynomial 0x82F63B78, initial value and final xor 0xFFFFFFFF,
 * so ordo_crc32c(0, "123456789", 9) == 0xE3069283. */
#include "ordo_crc32c.h"

#include <string.h>

static uint32_t s_table[8][256];
static int s_ready; /* 0 = unknown, 1 = table, 2 = hardware */

static void s_build_table(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u)));
        s_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            s_table[t][i] = (s_table[t - 1][i] >> 8) ^ s_table[0][s_table[t - 1][i] & 0xFF];
}

static uint32_t s_crc_table(uint32_t crc, const uint8_t *p, size_t len)
{
    while (len >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        v ^= crc;
        crc = s_table[7][v & 0xFF] ^ s_table[6][(v >> 8) & 0xFF] ^ s_table[5][(v >> 16) & 0xFF] ^
              s_table[4][(v >> 24) & 0xFF] ^ s_table[3][(v >> 32) & 0xFF] ^
              s_table[2][(v >> 40) & 0xFF] ^ s_table[1][(v >> 48) & 0xFF] ^ s_table[0][v >> 56];
        p += 8;
        len -= 8;
    }
    while (len--)
        crc = (crc >> 8) ^ s_table[0][(crc ^ *p++) & 0xFF];
    return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t s_crc_hw(uint32_t crc, const uint8_t *p,
                                                           size_t len)
{
    uint64_t c = crc;
    while (len >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c = __builtin_ia32_crc32di(c, v);
        p += 8;
        len -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (len--)
        c32 = __builtin_ia32_crc32qi(c32, *p++);
    return c32;
}
#endif

uint32_t ordo_crc32c(uint32_t crc, const void *data, size_t len)
{
    int ready = __atomic_load_n(&s_ready, __ATOMIC_ACQUIRE);
    if (!ready) {
        s_build_table();
        ready = 1;
#if defined(__x86_64__)
        __builtin_cpu_init();
        if (__builtin_cpu_supports("sse4.2"))
            ready = 2;
#endif
        __atomic_store_n(&s_ready, ready, __ATOMIC_RELEASE);
    }
    crc = ~crc;
#if defined(__x86_64__)
    if (ready == 2)
        return ~s_crc_hw(crc, data, len);
#endif
    return ~s_crc_table(crc, data, len);
}
