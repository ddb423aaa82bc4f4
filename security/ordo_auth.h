/* The server side of CURVE: the server's key pair and czmq's zauth actor
 * holding the allow-list of client keys, read from a folder of public
 * certificates. zauth answers ZeroMQ's authentication requests (ZAP) for
 * every socket of czmq's context (zsys), so the sockets it guards must
 * live there: ordo_auth_context(). Started before the guarded sockets
 * bind and stopped after they close: without a ZAP handler, libzmq would
 * let any CURVE client in. */
#ifndef ORDO_AUTH_H
#define ORDO_AUTH_H

#include "ordo_cert.h"

#include <stddef.h>

typedef struct ordo_auth ordo_auth_t;

/* Reads the server's secret certificate and the allow-list folder (every
 * regular file not ending in `_secret`, subfolders included, as czmq's
 * zcertstore reads it; files that are not certificates and repeated keys
 * are skipped with a warning) and starts zauth with it. The list is read
 * once: a change takes a restart. NULL with a sentence in err when
 * CURVE is missing from libzmq, the certificate is not a secret one, or
 * the folder is missing. */
ordo_auth_t *ordo_auth_new(const char *secret_cert, const char *clients_dir, char *err,
                           size_t err_size);

/* czmq's ZeroMQ context, where zauth runs. */
void *ordo_auth_context(void);

/* Makes `sock` (in ordo_auth_context(), not yet bound) a CURVE server
 * with the server's key. 0 or -1 (errno). */
int ordo_auth_guard(const ordo_auth_t *auth, void *sock);

/* The number of client keys let in. */
size_t ordo_auth_clients(const ordo_auth_t *auth);

/* The server's public key as Z85 text (40 characters and a NUL). */
void ordo_auth_public_text(const ordo_auth_t *auth, char out[41]);

/* Stops zauth and frees. Nulls *p; safe on NULL. */
void ordo_auth_destroy(ordo_auth_t **p);

#endif
