/* ordo-admin is one program in a few files: ordo_admin.c (main, options,
 * output helpers), ordo_admin_wal.c (`wal info|verify|dump`) and
 * ordo_admin_snapshot.c (`snapshot info|verify`), ordo_admin_audit.c
 * (`audit`), ordo_admin_replay.c (`replay`), ordo_admin_index.c (`index
 * info`). What they share. Not
 * installed. */
#ifndef ORDO_ADMIN_H
#define ORDO_ADMIN_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "ordo_order.h"

#define ADMIN_OK 0        /* done; what was checked is sound */
#define ADMIN_DAMAGED 1   /* a check failed: the output names the file and offset */
#define ADMIN_USAGE 2     /* the command line is wrong */
#define ADMIN_CANNOT 3    /* the files cannot be read at all (missing folder, I/O error) */

typedef struct {
    const char *data_dir; /* --data-dir, ORDO_DATA_DIR, ./data */
    bool json;
    bool progress;        /* progress lines on stderr (a terminal, unless --quiet) */
    /* wal dump */
    bool has_from_pos, has_to_pos, has_from_time, has_to_time;
    uint64_t from_pos, to_pos;
    int64_t from_us, to_us;
    const char *order_id;
} admin_opts_t;

int admin_wal_info(const admin_opts_t *o);
int admin_wal_verify(const admin_opts_t *o);
int admin_wal_dump(const admin_opts_t *o);
int admin_snapshot_info(const admin_opts_t *o);
int admin_snapshot_verify(const admin_opts_t *o, const char *file);
int admin_index_info(const admin_opts_t *o);
/* order_id NULL: every order (--all). */
int admin_audit(const admin_opts_t *o, const char *order_id);
/* replay --all --check */
int admin_replay_check(const admin_opts_t *o);
/* to_version 0: every event. */
int admin_replay(const admin_opts_t *o, const char *order_id, uint32_t to_version,
                 bool has_until, int64_t until_us);

/* "ordo-admin: " + message to stderr. */
void admin_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Decodes a log record as an event whose order id can key a table of
 * orders (1 to 64 bytes): false for anything else, which the callers
 * report as damage at `position`. */
bool admin_decode_event(const void *data, size_t len, uint64_t position, ordo_event_t *event);

/* `len` bytes read from the log, to a terminal: printable ASCII as is,
 * anything else (control characters, escapes) as \xNN, so a hostile
 * record cannot drive the operator's terminal. */
void admin_print_text(FILE *out, const char *s, size_t len);

/* 1234567 -> "1,234,567" into buf. */
const char *admin_count(uint64_t n, char buf[32]);

/* A byte count as "12.3 MiB" into buf. */
const char *admin_bytes(uint64_t n, char buf[32]);

/* The log folder of the data folder into dir: ADMIN_OK, or ADMIN_CANNOT
 * after a message when it is not a folder. */
int admin_log_dir(const admin_opts_t *o, char *dir, size_t size);

/* The folders inside the data folder. */
void admin_wal_dir(const admin_opts_t *o, char *buf, size_t size);
void admin_snapshot_dir(const admin_opts_t *o, char *buf, size_t size);

#endif
