/* Names for ordo_err_t codes. */
#include "ordo_error.h"

#include <errno.h>

const char *ordo_strerror(int err)
{
    switch (err) {
    case ORDO_OK: return "success";
    case ORDO_ERR_IO: return "I/O error";
    case ORDO_ERR_NOSPACE: return "no space left on device";
    case ORDO_ERR_CORRUPT: return "data is corrupt";
    case ORDO_ERR_NOMEM: return "out of memory";
    case ORDO_ERR_INVALID: return "invalid argument";
    case ORDO_ERR_NOT_FOUND: return "not found";
    case ORDO_ERR_FAILED: return "refused after an earlier failure";
    case ORDO_ERR_TOO_BIG: return "too big";
    case ORDO_ERR_DIVERGED: return "the log and its replica differ";
    default: return "unknown error";
    }
}

int ordo_err_from_errno(int errnum)
{
    return (errnum == ENOSPC || errnum == EDQUOT) ? ORDO_ERR_NOSPACE : ORDO_ERR_IO;
}
