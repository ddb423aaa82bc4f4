/* The live page's files (projections/web/), compiled into ordo-projector
 * by projections/web/embed.cmake: no files to install or to find at run
 * time, and nothing fetched from elsewhere. */
#ifndef ORDO_WEB_H
#define ORDO_WEB_H

#include <stddef.h>

typedef struct {
    const char *path; /* "/", "/app.js", ... */
    const char *type; /* Content-Type */
    const unsigned char *data;
    size_t len;
} ordo_web_asset_t;

extern const ordo_web_asset_t ordo_web_assets[];
extern const size_t ordo_web_assets_n;

#endif
