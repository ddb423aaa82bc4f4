/* libFuzzer target: what a client does with a reply from a server it
 * cannot trust, libordo's whole path: ordo_reply_decode, then the public
 * result (event, order, events, stats and the partition map). Any bytes
 * must give a result or ORDO_E_BAD_REPLY, never a crash, leak or
 * out-of-bounds read; a map in a result has exactly `partitions` owners,
 * each with an endpoint of 1 to 255 bytes or none. */
#include "ordo_client_internal.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ordo_reply_t reply;
    if (ordo_reply_decode(data, size, &reply) != 0)
        return 0;
    if (reply.partitions > 4096 || (reply.partitions && reply.partition >= reply.partitions))
        abort();
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    /* The result owns its bytes: decode again over the copy it keeps. */
    if (ordo_reply_decode(copy, size, &reply) != 0)
        abort();
    ordo_result_t res = ORDO_RESULT_INIT;
    int rc = ordo_result_take_reply(&res, &copy, size, &reply);
    if (rc != 0 && rc != ORDO_E_BAD_REPLY && rc != ORDO_E_NOMEM)
        abort();
    if (copy) /* taken in every case */
        abort();
    if (rc == 0 && reply.partitions) {
        if (res.partitions != reply.partitions || !res.owners)
            abort();
        for (uint32_t k = 0; k < res.partitions; k++) {
            const ordo_client_owner_t *o = &res.owners[k];
            if (o->endpoint && (strlen(o->endpoint) < 1 || strlen(o->endpoint) > 255))
                abort();
            if (!o->pub || strlen(o->pub) > 255)
                abort();
        }
    }
    ordo_result_clear(&res);
    return 0;
}
