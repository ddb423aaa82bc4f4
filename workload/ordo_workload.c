/* Realistic command generator (see ordo_workload.h). */
#include "ordo_workload.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char order_id[32];
    char correlation_id[37];
    int stage;     /* next command: 0 create, 1 confirm, ..., 5 deliver */
    int cancel_at; /* stage at which it is cancelled, or -1 */
    int64_t user_id, restaurant_id, courier_id;
    int n_items;
    char skus[4][12];
    int menu[4];
    int qty[4];
    int64_t price[4];
    char address[96];
} s_order_t;

struct ordo_workload {
    uint64_t rng;
    uint32_t in_flight; /* orders[0 .. in_flight) are live */
    s_order_t *orders;  /* owned */
    uint64_t created;
    uint64_t limit; /* no new orders past this many; 0 = no limit */
    bool uuid4;     /* ids are UUIDv4 rather than UUIDv7 */
    int64_t clock_ms;
    char request_id[37];
    char actor[32];
    char reason[64];
};

static const char *s_menu[] = {"Margherita pizza",
                               "Pepperoni pizza",
                               "Quattro formaggi",
                               "Caesar salad",
                               "Greek salad",
                               "Chicken tikka masala",
                               "Garlic naan",
                               "Pad thai",
                               "Green curry",
                               "Spring rolls",
                               "Cheeseburger",
                               "Veggie burger",
                               "Fries",
                               "Onion rings",
                               "Chocolate brownie",
                               "Tiramisu",
                               "Lemonade",
                               "Sparkling water",
                               "Iced tea",
                               "Salmon nigiri",
                               "California roll",
                               "Miso soup",
                               "Beef pho",
                               "Falafel wrap",
                               "Hummus plate",
                               "Burrito bowl",
                               "Tacos al pastor",
                               "Carbonara",
                               "Lasagne",
                               "Ramen tonkotsu"};
static const char *s_streets[] = {"Baker Street",   "Rue de Rivoli", "Main Street",
                                  "Kastanienallee", "Via Roma",      "Calle Mayor",
                                  "Elm Avenue",     "Queen Street",  "Market Square",
                                  "Harbour Road",   "Station Road",  "Park Lane"};
static const char *s_cities[] = {"London", "Paris",  "Springfield", "Berlin", "Rome",
                                 "Madrid", "Dublin", "Toronto",     "Lyon",   "Hamburg"};
static const char *s_reasons[] = {"customer changed their mind", "restaurant is out of stock",
                                  "payment failed", "delivery address unreachable",
                                  "duplicate order"};

static uint64_t s_rand(ordo_workload_t *w)
{
    /* splitmix64: fast, deterministic, good enough for test data */
    uint64_t z = (w->rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static int s_below(ordo_workload_t *w, int n)
{
    return (int)(s_rand(w) % (uint64_t)n);
}

/* A UUID in canonical text: v4 (random) or v7 (Unix ms time, then random). */
static void s_uuid(ordo_workload_t *w, char out[37])
{
    static const char hex[] = "0123456789abcdef";
    uint8_t b[16];
    uint64_t a = s_rand(w), c = s_rand(w);
    memcpy(b, &a, 8);
    memcpy(b + 8, &c, 8);
    if (w->uuid4) {
        b[6] = (uint8_t)(0x40 | (b[6] & 0x0F));
    } else {
        for (int i = 0; i < 6; i++)
            b[i] = (uint8_t)((uint64_t)w->clock_ms >> (40 - 8 * i));
        b[6] = (uint8_t)(0x70 | (b[6] & 0x0F));
    }
    b[8] = (uint8_t)(0x80 | (b[8] & 0x3F));
    int k = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[k++] = '-';
        out[k++] = hex[b[i] >> 4];
        out[k++] = hex[b[i] & 0xF];
    }
    out[36] = '\0';
}

/* "ord_" + 26 Crockford base32 chars: 48-bit ms time, then 80 random bits. */
static void s_ulid(ordo_workload_t *w, char out[32])
{
    static const char b32[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    memcpy(out, "ord_", 4);
    uint64_t t = (uint64_t)w->clock_ms;
    for (int i = 9; i >= 0; i--) {
        out[4 + i] = b32[t & 31];
        t >>= 5;
    }
    uint64_t r1 = s_rand(w), r2 = s_rand(w);
    for (int i = 0; i < 16; i++) {
        uint64_t src = i < 12 ? r1 : r2;
        out[14 + i] = b32[(src >> (5 * (i % 12))) & 31];
    }
    out[30] = '\0';
}

static void s_new_order(ordo_workload_t *w, s_order_t *o)
{
    memset(o, 0, sizeof *o);
    s_ulid(w, o->order_id);
    s_uuid(w, o->correlation_id);
    o->cancel_at = s_below(w, 100) < 15 ? 1 + s_below(w, 3) : -1; /* after Created..Preparing */
    o->user_id = 100000 + s_below(w, 900000);
    o->restaurant_id = 1 + s_below(w, 5000);
    o->courier_id = 1 + s_below(w, 20000);
    o->n_items = 1 + s_below(w, 4);
    for (int i = 0; i < o->n_items; i++) {
        o->menu[i] = s_below(w, (int)(sizeof s_menu / sizeof *s_menu));
        snprintf(o->skus[i], sizeof o->skus[i], "SKU-%05d",
                 (int)(o->restaurant_id * 31 + o->menu[i]) % 100000);
        o->qty[i] = 1 + s_below(w, 3);
        o->price[i] = 299 + s_below(w, 2700);
    }
    snprintf(o->address, sizeof o->address, "%d %s, %s %05d", 1 + s_below(w, 250),
             s_streets[s_below(w, (int)(sizeof s_streets / sizeof *s_streets))],
             s_cities[s_below(w, (int)(sizeof s_cities / sizeof *s_cities))], s_below(w, 100000));
    w->created++;
}

ordo_workload_t *ordo_workload_new(uint64_t seed, uint32_t in_flight)
{
    ordo_workload_t *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->in_flight = in_flight ? in_flight : 1;
    w->limit = 0;
    w->orders = calloc(w->in_flight, sizeof *w->orders);
    if (!w->orders) {
        free(w);
        return NULL;
    }
    w->rng = seed;
    w->clock_ms = 1764115200000; /* 2025-11-26T00:00:00Z */
    for (uint32_t i = 0; i < w->in_flight; i++)
        s_new_order(w, &w->orders[i]);
    return w;
}

void ordo_workload_destroy(ordo_workload_t **w)
{
    if (!w || !*w)
        return;
    free((*w)->orders);
    free(*w);
    *w = NULL;
}

uint64_t ordo_workload_orders(const ordo_workload_t *w)
{
    return w->created;
}

void ordo_workload_use_uuid4(ordo_workload_t *w)
{
    w->uuid4 = true;
}

void ordo_workload_limit(ordo_workload_t *w, uint64_t orders)
{
    w->limit = orders;
}

static void s_meta(ordo_workload_t *w, ordo_request_t *req, const char *role, int64_t id,
                   const s_order_t *o)
{
    snprintf(w->actor, sizeof w->actor, "%s:%lld", role, (long long)id);
    req->meta.count = 2;
    req->meta.entries[0] = (ordo_meta_entry_t){.key = ORDO_STR("actor"),
                                               .sval = {w->actor, (uint32_t)strlen(w->actor)}};
    req->meta.entries[1] =
        (ordo_meta_entry_t){.key = ORDO_STR("correlation_id"), .sval = {o->correlation_id, 36}};
}

bool ordo_workload_next(ordo_workload_t *w, ordo_request_t *req)
{
    w->clock_ms += s_below(w, 2); /* ~1,000 commands a second of simulated time */
    s_order_t *o;
    for (;;) {
        if (w->in_flight == 0)
            return false;
        o = &w->orders[s_rand(w) % w->in_flight];
        if (o->stage >= 0 && o->stage <= 5)
            break;
        if (!w->limit || w->created < w->limit) {
            s_new_order(w, o);
            break;
        }
        *o = w->orders[--w->in_flight]; /* finished, and no more orders: retire it */
    }
    memset(req, 0, offsetof(ordo_request_t, data));
    memset(&req->data, 0, offsetof(ordo_data_t, items));
    req->expected_version = -1;
    req->from_version = req->from_position = 1;
    req->order_id = (ordo_str_t){o->order_id, 30};
    s_uuid(w, w->request_id);
    req->request_id = (ordo_str_t){w->request_id, 36};
    req->expected_version = o->stage; /* version before this command */
    ordo_data_t *d = &req->data;
    if (o->cancel_at == o->stage) {
        req->type = ORDO_REQ_CANCEL_ORDER;
        const char *reason = s_reasons[s_below(w, (int)(sizeof s_reasons / sizeof *s_reasons))];
        snprintf(w->reason, sizeof w->reason, "%s", reason);
        req->has_data = true;
        d->present = ORDO_F_REASON;
        d->reason = (ordo_str_t){w->reason, (uint32_t)strlen(w->reason)};
        s_meta(w, req, "user", o->user_id, o);
        o->stage = -1;
        return true;
    }
    switch (o->stage) {
    case 0:
        req->type = ORDO_REQ_CREATE_ORDER;
        req->has_data = true;
        d->present = ORDO_F_USER_ID | ORDO_F_RESTAURANT_ID | ORDO_F_ITEMS | ORDO_F_DELIVERY_ADDRESS;
        d->user_id = o->user_id;
        d->restaurant_id = o->restaurant_id;
        d->n_items = (uint32_t)o->n_items;
        for (int i = 0; i < o->n_items; i++) {
            d->items[i].sku = (ordo_str_t){o->skus[i], (uint32_t)strlen(o->skus[i])};
            const char *name = s_menu[o->menu[i]];
            d->items[i].name = (ordo_str_t){name, (uint32_t)strlen(name)};
            d->items[i].qty = o->qty[i];
            d->items[i].price_cents = o->price[i];
        }
        d->delivery_address = (ordo_str_t){o->address, (uint32_t)strlen(o->address)};
        s_meta(w, req, "user", o->user_id, o);
        break;
    case 1:
        req->type = ORDO_REQ_CONFIRM_ORDER;
        s_meta(w, req, "restaurant", o->restaurant_id, o);
        break;
    case 2:
        req->type = ORDO_REQ_START_PREPARING;
        req->has_data = true;
        d->present = ORDO_F_ESTIMATED_MINUTES;
        d->estimated_minutes = 10 + s_below(w, 40);
        s_meta(w, req, "restaurant", o->restaurant_id, o);
        break;
    case 3:
        req->type = ORDO_REQ_MARK_READY;
        s_meta(w, req, "restaurant", o->restaurant_id, o);
        break;
    case 4:
        req->type = ORDO_REQ_PICK_UP;
        req->has_data = true;
        d->present = ORDO_F_COURIER_ID;
        d->courier_id = o->courier_id;
        s_meta(w, req, "courier", o->courier_id, o);
        break;
    default:
        req->type = ORDO_REQ_DELIVER;
        s_meta(w, req, "courier", o->courier_id, o);
        break;
    }
    o->stage++;
    return true;
}
