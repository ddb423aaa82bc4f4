/* Schema evolution (see ordo_order.h): the schema each event type is
 * written in, and the steps that bring an event stored in an older one up
 * to date. To add a step: raise the type's entry in s_current, write the
 * function from the previous schema, add it to s_steps, and keep a
 * fixture written before the change (tests/fixtures/) with a test that
 * reads it through every read path (docs/architecture.md, "Schema
 * evolution"). */
#include "ordo_order.h"

#include <string.h>

static const uint32_t s_current[ORDO_EVT_COUNT_] = {
    [ORDO_EVT_ORDER_CREATED] = 2,   [ORDO_EVT_ORDER_CONFIRMED] = 1,
    [ORDO_EVT_ORDER_PREPARING] = 1, [ORDO_EVT_ORDER_READY] = 1,
    [ORDO_EVT_ORDER_OUT_FOR_DELIVERY] = 1, [ORDO_EVT_ORDER_DELIVERED] = 1,
    [ORDO_EVT_ORDER_CANCELLED] = 1,
};

/* OrderCreated 1 -> 2: `currency` was added, and every order before it
 * was in US dollars. */
static void s_order_created_1_to_2(ordo_event_t *ev)
{
    ev->data.currency = ORDO_STR(ORDO_CURRENCY_DEFAULT);
    ev->data.present |= ORDO_F_CURRENCY;
}

static const struct {
    ordo_event_type_t type;
    uint32_t from; /* the step goes from this schema to the next */
    void (*step)(ordo_event_t *ev);
} s_steps[] = {
    {ORDO_EVT_ORDER_CREATED, 1, s_order_created_1_to_2},
};

uint32_t ordo_event_schema_current(ordo_event_type_t type)
{
    return (unsigned)type < ORDO_EVT_COUNT_ ? s_current[type] : 0;
}

int ordo_event_upcast(ordo_event_t *ev)
{
    uint32_t current = ordo_event_schema_current(ev->type);
    if (ev->schema < 1 || ev->schema > current)
        return -1;
    while (ev->schema < current) {
        size_t i = 0, n = sizeof s_steps / sizeof s_steps[0];
        while (i < n && !(s_steps[i].type == ev->type && s_steps[i].from == ev->schema))
            i++;
        if (i == n)
            return -1; /* a gap in the steps: a bug, caught by the tests */
        s_steps[i].step(ev);
        ev->schema++;
    }
    return 0;
}
