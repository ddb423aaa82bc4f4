/* Every limit of Ordo in one place: what the protocol allows a client,
 * what each part of the engine holds at most, and how the limits relate.
 * A limit that must stay above or below another is tied to it with a
 * _Static_assert here, so changing one cannot silently break the other.
 * (Tuning constants private to one algorithm, such as the Bloom filter's
 * bits per key, stay in their file.) */
#ifndef ORDO_LIMITS_H
#define ORDO_LIMITS_H

/* ---- PROTOCOL.md: what a request may hold --------------------------------- */
#define ORDO_ORDER_ID_MAX 64
#define ORDO_REQUEST_ID_MAX 128
#define ORDO_ITEMS_MAX 100
#define ORDO_ITEM_QTY_MAX 1000
#define ORDO_PRICE_CENTS_MAX 100000000LL
#define ORDO_SKU_MAX 128
#define ORDO_NAME_MAX 128
#define ORDO_ADDRESS_MAX 512
#define ORDO_REASON_MAX 256
#define ORDO_ESTIMATED_MINUTES_MAX 1440
#define ORDO_META_CLIENT_MAX 16 /* keys a client may send */
#define ORDO_META_KEY_MAX 64
#define ORDO_META_VALUE_MAX 256
#define ORDO_META_MAX (ORDO_META_CLIENT_MAX + 2) /* + command, request_id */
#define ORDO_HISTORY_LIMIT_MAX 1000
#define ORDO_READALL_LIMIT_DEFAULT 1000
#define ORDO_READALL_LIMIT_MAX 10000
#define ORDO_MAX_VERSION 6 /* events of one order: Created .. Delivered */

/* ---- the wire ------------------------------------------------------------ */
#define ORDO_BODY_MAX (1024 * 1024)        /* largest request body accepted */
#define ORDO_NESTING_MAX 16                /* deepest container nesting accepted */
#define ORDO_MSG_MAX (16 * 1024 * 1024)    /* a peer sending more is disconnected */
#define ORDO_RCV_HWM 4096                  /* requests queued per peer before ZeroMQ waits */
#define ORDO_SND_HWM 16384                 /* replies queued per peer */

/* ---- front end: requests between read and reply --------------------------- */
#define ORDO_FRONT_INFLIGHT_MAX 16384             /* requests */
#define ORDO_FRONT_INFLIGHT_BYTES_MAX (64u << 20) /* their bodies' bytes */
#define ORDO_FRONT_DRAIN_MAX 4096                 /* requests read per round */
#define ORDO_ENVELOPE_MAX 8                       /* envelope frames kept per request */
#define ORDO_ENVELOPE_FRAME_MAX 256               /* bytes in one envelope frame */
#define ORDO_PEER_BIG_MAX 4                       /* projector: large queries in flight per peer */
#define ORDO_PEER_BYTES_MAX (64ll << 20)          /* reply bytes held (and reserved) per peer */
#define ORDO_PEERS_BIG_MAX 16                     /* projector: large queries in flight in all */
#define ORDO_PEERS_BYTES_MAX (1024ll << 20)       /* reply bytes held (and reserved) in all */
#define ORDO_READALL_EVENT_ESTIMATE 1024          /* bytes reserved per event a ReadAll asks */

/* ---- shards ----------------------------------------------------------------- */
#define ORDO_SHARDS_MAX 256                      /* --shards */
#define ORDO_SHARD_EVENTS_MAX 4096               /* events per batch to the writer */
#define ORDO_SHARD_EVENT_BYTES_MAX (16u << 20)   /* bytes per batch to the writer */
#define ORDO_SHARD_REPLY_BYTES_MAX (256u << 10)  /* a reply batch leaves once this big */
#define ORDO_SNAPSHOT_CHUNK 512                  /* orders packed per turn of a shard's loop */
#define ORDO_SNAPSHOT_PACE_US 5000               /* a busy shard packs a chunk at most this often */
#define ORDO_EVICT_MAX 4096                      /* finished orders per index transaction */
#define ORDO_EVICT_EVERY_MS 100                  /* at most one such transaction per this long */
#define ORDO_RETAIN_FINISHED_MAX (10ull * 366 * 86400) /* --retain-finished: ten years */

/* ---- log writer and log ----------------------------------------------------- */
#define ORDO_WAL_FRAME_RAW_MAX (64u * 1024 * 1024) /* raw body of one frame */
#define ORDO_FRAME_EVENTS_MAX 16384                /* events per frame */
#define ORDO_FRAME_BYTES_MAX (ORDO_WAL_FRAME_RAW_MAX / 2) /* record bytes per frame */
#define ORDO_WAL_SEGMENT_DEFAULT (64ull * 1024 * 1024)
#define ORDO_WAL_SEGMENT_MIN 65536ull
#define ORDO_WAL_SEGMENT_MAX (1ull << 40)

/* ---- snapshots -------------------------------------------------------------- */
#define ORDO_SNAPSHOT_RECORD_MAX (16u * 1024 * 1024) /* one packed order */

/* ---- how they relate ---------------------------------------------------------- */
_Static_assert(ORDO_BODY_MAX <= ORDO_MSG_MAX, "a body the decoder takes must reach it");
_Static_assert(ORDO_FRONT_DRAIN_MAX <= ORDO_FRONT_INFLIGHT_MAX,
               "a round reads no more than the front end can hold");
_Static_assert(ORDO_FRONT_INFLIGHT_BYTES_MAX >= ORDO_BODY_MAX,
               "the largest request must fit in the front end");
_Static_assert(ORDO_PEER_BIG_MAX <= ORDO_PEERS_BIG_MAX && ORDO_PEER_BYTES_MAX <= ORDO_PEERS_BYTES_MAX,
               "one connection's bound is within the bound of all");
_Static_assert(ORDO_SHARD_EVENTS_MAX <= ORDO_FRAME_EVENTS_MAX &&
                   ORDO_SHARD_EVENT_BYTES_MAX <= ORDO_FRAME_BYTES_MAX,
               "a shard's batch fits in one frame");
_Static_assert((long long)ORDO_BODY_MAX * 2 <= ORDO_SHARD_EVENT_BYTES_MAX,
               "the largest event (its record and wire parts) fits in a shard's batch");
_Static_assert(ORDO_FRAME_BYTES_MAX < ORDO_WAL_FRAME_RAW_MAX,
               "record bytes plus their length prefixes fit in a frame's raw body");
_Static_assert((long long)ORDO_BODY_MAX * ORDO_MAX_VERSION <= ORDO_SNAPSHOT_RECORD_MAX,
               "an order of the largest events packs into one snapshot record");
_Static_assert(ORDO_WAL_SEGMENT_MIN <= ORDO_WAL_SEGMENT_DEFAULT &&
                   ORDO_WAL_SEGMENT_DEFAULT <= ORDO_WAL_SEGMENT_MAX,
               "the default segment size is allowed");
_Static_assert(ORDO_META_MAX * (ORDO_META_KEY_MAX + ORDO_META_VALUE_MAX) < ORDO_BODY_MAX,
               "the largest meta fits in a body");
_Static_assert(ORDO_EVICT_MAX >= 1 && ORDO_SNAPSHOT_CHUNK >= 1, "work moves on");

#endif
