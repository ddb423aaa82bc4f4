/* CURVE allow-list and czmq's zauth (see ordo_auth.h).
 *
 * zauth gets a certificate store we fill ourselves rather than a folder:
 * czmq's own folder loader aborts the process on two files with the same
 * key (zcertstore_insert asserts), and copies each certificate's metadata
 * into a fixed 512-byte buffer on every connection. Ours keeps the keys
 * only and skips repeats. */
#include "ordo_auth.h"

#include "ordo_log.h"

#include <czmq.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

struct ordo_auth {
    ordo_keypair_t keys;
    zactor_t *zauth;
    size_t clients;
};

void *ordo_auth_context(void)
{
    zsys_handler_set(NULL); /* the programs handle their own signals */
    return zsys_init();
}

static bool s_ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

/* Fills `store` with the public keys of the certificates under `dir`;
 * returns how many. */
static size_t s_load_clients(zcertstore_t *store, const char *dir)
{
    zdir_t *d = zdir_new(dir, NULL);
    zfile_t **files = d ? zdir_flatten(d) : NULL;
    size_t n = 0;
    for (size_t i = 0; files && files[i]; i++) {
        const char *name = zfile_filename(files[i], NULL);
        if (!zfile_is_regular(files[i]) || s_ends_with(name, "_secret"))
            continue;
        ordo_keypair_t kp;
        char why[512];
        if (ordo_cert_load(name, false, &kp, why, sizeof why) != 0) {
            ordo_log_warn("auth", "allow-list: %s: skipped", why);
            continue;
        }
        zcert_t *cert = zcert_new_from(kp.public_key, (const byte[ORDO_CURVE_KEY_SIZE]){0});
        if (!cert)
            continue;
        if (zcertstore_lookup(store, zcert_public_txt(cert))) {
            ordo_log_warn("auth", "allow-list: %s repeats key %s: skipped", name,
                          zcert_public_txt(cert));
            zcert_destroy(&cert);
            continue;
        }
        zcertstore_insert(store, &cert);
        n++;
    }
    zdir_flatten_free(&files);
    zdir_destroy(&d);
    return n;
}

ordo_auth_t *ordo_auth_new(const char *secret_cert, const char *clients_dir, char *err,
                           size_t err_size)
{
    if (!ordo_cert_curve_available()) {
        snprintf(err, err_size, "this libzmq was built without CURVE (libsodium)");
        return NULL;
    }
    ordo_auth_t *a = calloc(1, sizeof *a);
    if (!a) {
        snprintf(err, err_size, "out of memory");
        return NULL;
    }
    char why[512];
    if (ordo_cert_load(secret_cert, true, &a->keys, why, sizeof why) != 0) {
        snprintf(err, err_size, "--curve-secret: %s", why);
        free(a);
        return NULL;
    }
    struct stat st;
    if (!clients_dir || !*clients_dir) {
        snprintf(err, err_size, "--curve-clients: no folder of client certificates given");
        free(a);
        return NULL;
    }
    if (stat(clients_dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(err, err_size, "--curve-clients: %s is not a folder of client certificates",
                 clients_dir);
        free(a);
        return NULL;
    }
    ordo_auth_context();
    zcertstore_t *store = zcertstore_new(NULL); /* in memory: no loader */
    if (!store) {
        snprintf(err, err_size, "out of memory");
        free(a);
        return NULL;
    }
    a->clients = s_load_clients(store, clients_dir);
    /* zauth's thread takes no signal: they are the host's to handle. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    a->zauth = zactor_new(zauth, store); /* takes the store */
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (!a->zauth) {
        zcertstore_destroy(&store);
        snprintf(err, err_size, "cannot start zauth");
        free(a);
        return NULL;
    }
    if (a->clients == 0)
        ordo_log_warn("auth", "allow-list %s holds no client certificate: nobody gets in",
                      clients_dir);
    return a;
}

int ordo_auth_guard(const ordo_auth_t *a, void *sock)
{
    return ordo_cert_make_server(sock, &a->keys);
}

size_t ordo_auth_clients(const ordo_auth_t *a)
{
    return a->clients;
}

void ordo_auth_public_text(const ordo_auth_t *a, char out[41])
{
    zmq_z85_encode(out, a->keys.public_key, ORDO_CURVE_KEY_SIZE);
}

void ordo_auth_destroy(ordo_auth_t **p)
{
    if (!p || !*p)
        return;
    ordo_auth_t *a = *p;
    zactor_destroy(&a->zauth);
    memset(&a->keys, 0, sizeof a->keys);
    free(a);
    *p = NULL;
}
