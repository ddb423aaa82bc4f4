/* ordo-admin's `index info`: the order index of the data folder (the
 * orders that left the engine's memory), read through LMDB's read-only
 * transaction, so it works beside a running engine or standby. */
#include "ordo_admin.h"

#include "ordo_error.h"
#include "ordo_index.h"
#include "ordo_json.h"

#include <inttypes.h>
#include <string.h>
#include <sys/stat.h>

int admin_index_info(const admin_opts_t *o)
{
    char dir[4200], err[4400], n1[32], b1[32], b2[32];
    struct stat st;
    if (stat(o->data_dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        admin_error("%s is not a data folder (is --data-dir right?)", o->data_dir);
        return ADMIN_CANNOT;
    }
    snprintf(dir, sizeof dir, "%s/index", o->data_dir);
    ordo_index_info_t info;
    int rc = ordo_index_info(dir, &info, err, sizeof err);
    if (rc != 0 && rc != ORDO_ERR_NOT_FOUND) {
        admin_error("%s", err);
        return ADMIN_CANNOT;
    }
    if (o->json) {
        printf("{\"index\":");
        ordo_json_string(stdout, dir, strlen(dir));
        printf(",\"exists\":%s,\"orders\":%" PRIu64 ",\"file_bytes\":%" PRIu64
               ",\"used_bytes\":%" PRIu64 "}\n",
               rc == 0 ? "true" : "false", info.orders, info.file_bytes, info.used_bytes);
    } else if (rc == ORDO_ERR_NOT_FOUND) {
        printf("%s: no order index yet (no order has left memory)\n", dir);
    } else {
        printf("%s: %s orders that left memory; file %s, %s in use\n", dir,
               admin_count(info.orders, n1), admin_bytes(info.file_bytes, b1),
               admin_bytes(info.used_bytes, b2));
    }
    return ADMIN_OK;
}
