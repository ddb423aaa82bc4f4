/* The request-type table (see ordo_request_info_t in ordo_order.h): every
 * request of PROTOCOL.md, what it carries and where it goes. */
#include "ordo_order.h"

#define S_DATA_CREATE                                                                              \
    (ORDO_F_USER_ID | ORDO_F_RESTAURANT_ID | ORDO_F_ITEMS | ORDO_F_DELIVERY_ADDRESS |        \
     ORDO_F_CURRENCY)

const ordo_request_info_t ordo_request_table[ORDO_REQ_COUNT_] = {
    [ORDO_REQ_NONE] = {.name = ""},
    [ORDO_REQ_CREATE_ORDER] = {.name = "CreateOrder", .command = true, .on_order = true,
                               .event = ORDO_EVT_ORDER_CREATED, .data_fields = S_DATA_CREATE},
    [ORDO_REQ_CONFIRM_ORDER] = {.name = "ConfirmOrder", .command = true, .on_order = true,
                                .event = ORDO_EVT_ORDER_CONFIRMED},
    [ORDO_REQ_START_PREPARING] = {.name = "StartPreparing", .command = true, .on_order = true,
                                  .event = ORDO_EVT_ORDER_PREPARING,
                                  .data_fields = ORDO_F_ESTIMATED_MINUTES},
    [ORDO_REQ_MARK_READY] = {.name = "MarkReady", .command = true, .on_order = true,
                             .event = ORDO_EVT_ORDER_READY},
    [ORDO_REQ_PICK_UP] = {.name = "PickUp", .command = true, .on_order = true,
                          .event = ORDO_EVT_ORDER_OUT_FOR_DELIVERY,
                          .data_fields = ORDO_F_COURIER_ID},
    [ORDO_REQ_DELIVER] = {.name = "Deliver", .command = true, .on_order = true,
                          .event = ORDO_EVT_ORDER_DELIVERED},
    [ORDO_REQ_CANCEL_ORDER] = {.name = "CancelOrder", .command = true, .on_order = true,
                               .event = ORDO_EVT_ORDER_CANCELLED, .data_fields = ORDO_F_REASON},
    [ORDO_REQ_GET_ORDER] = {.name = "GetOrder", .on_order = true,
                            .query_fields = ORDO_Q_AS_OF_VERSION | ORDO_Q_AS_OF_TIME},
    [ORDO_REQ_GET_HISTORY] = {.name = "GetHistory", .on_order = true,
                              .query_fields = ORDO_Q_FROM_VERSION | ORDO_Q_LIMIT,
                              .limit_default = ORDO_HISTORY_LIMIT_MAX,
                              .limit_max = ORDO_HISTORY_LIMIT_MAX},
    [ORDO_REQ_READ_ALL] = {.name = "ReadAll", .paged = true,
                           .query_fields = ORDO_Q_FROM_POSITION | ORDO_Q_LIMIT,
                           .limit_default = ORDO_READALL_LIMIT_DEFAULT,
                           .limit_max = ORDO_READALL_LIMIT_MAX},
    [ORDO_REQ_STATS] = {.name = "Stats"},
    [ORDO_REQ_PING] = {.name = "Ping"},
    /* The partition map (docs/cluster.md), which the front end keeps. */
    [ORDO_REQ_PARTITIONS] = {.name = "Partitions", .front = true},
};
