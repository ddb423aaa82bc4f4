/* The table of read models, and what every model needs of an event. */
#include "ordo_model.h"

#include "ordo_pstore.h"

#include <string.h>

const ordo_model_ops_t *ordo_model_for(ordo_proj_t p)
{
    static const ordo_model_ops_t *const models[ORDO_PROJ_COUNT_] = {
        [ORDO_PROJ_SUMMARY] = &ordo_model_summary,     [ORDO_PROJ_RESTAURANT] = &ordo_model_restaurant,
        [ORDO_PROJ_USER] = &ordo_model_user,           [ORDO_PROJ_ANALYTICS] = &ordo_model_analytics,
        [ORDO_PROJ_TIMELINE] = &ordo_model_timeline,
    };
    return p >= 0 && p < ORDO_PROJ_COUNT_ ? models[p] : NULL;
}

int ordo_model_build_indexes(const ordo_model_ops_t *m, sqlite3 *db)
{
    for (size_t i = 0; m->query_indexes && m->query_indexes[i]; i++)
        if (ordo_pstore_exec(db, m->query_indexes[i]) != 0)
            return -1;
    return 0;
}

ordo_event_type_t ordo_model_event_type(const ordo_client_event_t *ev)
{
    return ev->type ? ordo_event_type_from_name(ev->type, strlen(ev->type)) : ORDO_EVT_NONE;
}
