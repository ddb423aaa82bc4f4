/* Pieces shared between the codec's files (not part of its public API). */
#ifndef ORDO_CODEC_INTERNAL_H
#define ORDO_CODEC_INTERNAL_H

#include "ordo_codec.h"

#define ORDO_F_ALL_ 0x3FFu /* every ORDO_F_* bit */

/* Packs with a msgpack-c call and returns -1 from the enclosing function
 * if it failed (out of memory). */
#define P(expr)                                                                                   \
    do {                                                                                          \
        if ((expr) != 0)                                                                          \
            return -1;                                                                            \
    } while (0)


int ordo_data_pack(msgpack_packer *pk, const ordo_data_t *d);
int ordo_items_pack(msgpack_packer *pk, const ordo_item_t *items, uint32_t n);
int ordo_meta_pack(msgpack_packer *pk, const ordo_meta_t *m);
int ordo_data_read(ordo_mp_t *r, ordo_data_t *d);
int ordo_items_read(ordo_mp_t *r, ordo_item_t *items, uint32_t *n_items);
int ordo_meta_read(ordo_mp_t *r, ordo_meta_t *m);

#endif
