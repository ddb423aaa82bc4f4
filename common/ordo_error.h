/* Run-time error codes shared by every Ordo library (log, snapshots, I/O).
 * Functions return 0 on success or a negative ordo_err_t; ordo_strerror
 * names the code. Protocol error codes (bad_request, conflict, ...) are a
 * separate enum in actors/ordo_order.h: those go on the wire, these do not. */
#ifndef ORDO_ERROR_H
#define ORDO_ERROR_H

typedef enum {
    ORDO_OK = 0,
    ORDO_ERR_IO = -1,        /* read, write, sync, rename failed (errno logged) */
    ORDO_ERR_NOSPACE = -2,   /* disk full (ENOSPC / EDQUOT) */
    ORDO_ERR_CORRUPT = -3,   /* checksum, magic or structure check failed */
    ORDO_ERR_NOMEM = -4,     /* allocation failed */
    ORDO_ERR_INVALID = -5,   /* caller passed an invalid argument */
    ORDO_ERR_NOT_FOUND = -6, /* no such file, position or snapshot */
    ORDO_ERR_FAILED = -7,    /* an earlier error made this object refuse work */
    ORDO_ERR_TOO_BIG = -8,   /* input above a fixed bound */
    ORDO_ERR_DIVERGED = -9,  /* a replica's frame does not follow this log: they differ */
} ordo_err_t;

/* Returns a static, human-readable name for an ordo_err_t. */
const char *ordo_strerror(int err);

/* Maps an errno value from a failed write or sync to ORDO_ERR_NOSPACE or
 * ORDO_ERR_IO. */
int ordo_err_from_errno(int errnum);

#endif
