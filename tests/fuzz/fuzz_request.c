/* libFuzzer target: the request decoder. Any bytes must give 0 or a
 * bad_request/unknown_type error, never a crash, leak or out-of-bounds
 * read; a decoded request must re-encode and decode to the same type. */
#include "ordo_codec.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static ordo_request_t req, again;
    ordo_error_t err;
    if (ordo_request_decode(data, size, &req, &err) != 0) {
        if (err.code != ORDO_CODE_BAD_REQUEST && err.code != ORDO_CODE_UNKNOWN_TYPE)
            abort();
        if (strlen(err.message) == 0)
            abort();
        return 0;
    }
    msgpack_sbuffer buf;
    msgpack_packer pk;
    msgpack_sbuffer_init(&buf);
    msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
    if (ordo_request_pack(&pk, &req) != 0)
        abort();
    if (ordo_request_decode(buf.data, buf.size, &again, &err) != 0 || again.type != req.type)
        abort();
    msgpack_sbuffer_destroy(&buf);
    return 0;
}
