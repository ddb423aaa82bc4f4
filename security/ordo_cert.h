/* CURVE key files: reading the czmq certificates (zcert) that ordo-keygen
 * writes, and making a ZeroMQ socket a CURVE server or client with their
 * keys. Shared by ordo-server, ordo-projector, ordo-benchmark and libordo;
 * plain libzmq, no czmq (libordo must not start czmq in its host). */
#ifndef ORDO_CERT_H
#define ORDO_CERT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ORDO_CURVE_KEY_SIZE 32
#define ORDO_CERT_FILE_MAX 65536 /* a certificate is a few hundred bytes */
#define ORDO_CERT_PATH_MAX 200   /* czmq adds "_secret" in a 256-byte buffer */

typedef struct {
    uint8_t public_key[ORDO_CURVE_KEY_SIZE];
    uint8_t secret_key[ORDO_CURVE_KEY_SIZE]; /* all zero when only the public file was read */
} ordo_keypair_t;

/* Whether this libzmq was built with CURVE (libsodium). */
bool ordo_cert_curve_available(void);

/* Reads the certificate at `path` the way czmq's zcert_load does: PATH_secret
 * if it exists, else PATH. With need_secret the secret key must be there
 * and must match the public key. 0, or -1 with a sentence naming the file
 * in err (missing, too large, not a certificate, no secret key). */
int ordo_cert_load(const char *path, bool need_secret, ordo_keypair_t *out, char *err,
                   size_t err_size);

/* The keys in a certificate's text (NUL-terminated; the parse writes into
 * it), czmq's format: "curve" at the top level with "public-key" and
 * "secret-key" beneath it, each 40 characters of Z85. Every line's shape
 * is checked; other sections (metadata) are skipped. *has_public says
 * whether a public key was there; a missing secret key stays zero. 0, or
 * -1 with the line at fault in err (`name` names the file). */
int ordo_cert_parse(const char *name, char *text, ordo_keypair_t *out, bool *has_public,
                    char *err, size_t err_size);

/* Makes `sock` (not yet bound) a CURVE server with this key pair; clients
 * are then checked by the ZAP handler of its context (ordo_auth.h). 0 or
 * -1 (errno). */
int ordo_cert_make_server(void *sock, const ordo_keypair_t *server);

/* Makes `sock` (not yet connected) a CURVE client of the server whose
 * public key is `server_key`, with the client's key pair. 0 or -1. */
int ordo_cert_make_client(void *sock, const uint8_t server_key[ORDO_CURVE_KEY_SIZE],
                          const ordo_keypair_t *client);

#endif
