/* libFuzzer target: the projector's query decoder. Any bytes must give 0
 * or an error with a code, never a crash, leak or out-of-bounds read; a
 * decoded query keeps every field within its bounds; the reply the
 * projector would send (error, or a success header) is valid MessagePack;
 * a cursor it decoded encodes back to the same text. */
#include "ordo_mp.h"
#include "ordo_pquery.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void s_check_valid(msgpack_sbuffer *sb)
{
    if (ordo_mp_validate(sb->data, sb->size, ORDO_PQ_NESTING_MAX) != ORDO_MP_OK)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ordo_pquery_t q;
    ordo_perror_t err;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    if (ordo_pquery_decode(data, size, &q, &err) != 0) {
        if (!err.code || !err.message[0])
            abort();
        if (ordo_preply_pack_error(&pk, &q, &err) != 0)
            abort();
        s_check_valid(&sb);
    } else {
        if (q.type <= ORDO_PQ_NONE || q.type >= ORDO_PQ_COUNT_ || q.limit < 1 ||
            q.limit > ORDO_PQ_LIMIT_MAX || q.wait_ms < 0 || q.wait_ms > ORDO_PQ_WAIT_MS_MAX ||
            (q.has_min_position && q.min_position < 0) ||
            (q.type == ORDO_PQ_ANALYTICS && q.from_us >= q.to_us) ||
            (q.type == ORDO_PQ_REBUILD && (q.projection < 0 || q.projection >= ORDO_PROJ_COUNT_)))
            abort();
        if (q.has_cursor) {
            char c[ORDO_PCURSOR_MAX];
            ordo_pcursor_encode(c, q.type, q.cursor_key, q.cursor_order_id);
            /* the decoder takes only the exact lower-case form, so the
             * cursor it decoded is in the input as written */
            if (strlen(c) >= ORDO_PCURSOR_MAX || !memmem(data, size, c, strlen(c)))
                abort();
        }
        if (ordo_preply_pack_ok(&pk, &q, 1, 0) != 0)
            abort();
        s_check_valid(&sb);
    }
    msgpack_sbuffer_destroy(&sb);
    return 0;
}
