/* ordo-keygen: writes a CURVE key pair as czmq certificates, PATH (the
 * public certificate, to hand out) and PATH_secret (mode 0600, to keep),
 * for --curve-secret / --curve-clients on a server and --curve-server /
 * --curve-cert on a client. Never overwrites a file. */
#include "ordo_cert.h"
#include "ordo_json.h"

#include <czmq.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void s_usage(FILE *out)
{
    fprintf(out,
            "Usage: ordo-keygen [--name NAME] PATH\n"
            "Writes a new CURVE key pair as czmq certificates:\n"
            "  PATH          the public certificate (mode 0644): give it to the other side.\n"
            "                A server's goes to its clients (--curve-server); a client's goes\n"
            "                into the server's allow-list folder (--curve-clients).\n"
            "  PATH_secret   the secret certificate (mode 0600): keep it. A server reads it\n"
            "                with --curve-secret, a client with --curve-cert.\n"
            "Refuses to overwrite either file.\n"
            "\n"
            "  --name NAME   a name kept in the certificates' metadata (default: PATH's base)\n"
            "  --json        print the paths and the public key as JSON\n"
            "  --help, --version\n");
}

/* Creates `path` empty with `mode`, failing if it exists: claims the name
 * before czmq writes into it. */
static int s_claim(const char *path, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0)
        return -1;
    fchmod(fd, mode); /* whatever the umask */
    close(fd);
    return 0;
}

int main(int argc, char **argv)
{
    const char *path = NULL, *name = NULL;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            s_usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--version")) {
            printf("ordo-keygen 0.2.0\n");
            return 0;
        } else if (!strcmp(argv[i], "--json")) {
            json = true;
        } else if (!strcmp(argv[i], "--name") && i + 1 < argc) {
            name = argv[++i];
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "ordo-keygen: unknown option %s; try --help\n", argv[i]);
            return 2;
        } else if (!path) {
            path = argv[i];
        } else {
            fprintf(stderr, "ordo-keygen: one PATH only; try --help\n");
            return 2;
        }
    }
    if (!path || !*path) {
        fprintf(stderr, "ordo-keygen: PATH missing; try --help\n");
        return 2;
    }
    if (strlen(path) > ORDO_CERT_PATH_MAX) {
        fprintf(stderr, "ordo-keygen: PATH must have at most %d bytes\n", ORDO_CERT_PATH_MAX);
        return 2;
    }
    if (!ordo_cert_curve_available()) {
        fprintf(stderr, "ordo-keygen: this libzmq was built without CURVE (libsodium)\n");
        return 1;
    }
    char secret_path[ORDO_CERT_PATH_MAX + 8];
    snprintf(secret_path, sizeof secret_path, "%s_secret", path);
    if (s_claim(secret_path, 0600) != 0) {
        fprintf(stderr, "ordo-keygen: cannot create %s: %s\n", secret_path, strerror(errno));
        return 1;
    }
    if (s_claim(path, 0644) != 0) {
        fprintf(stderr, "ordo-keygen: cannot create %s: %s\n", path, strerror(errno));
        unlink(secret_path);
        return 1;
    }
    zsys_handler_set(NULL);
    zcert_t *cert = zcert_new();
    if (!cert) {
        fprintf(stderr, "ordo-keygen: cannot make a key pair\n");
        unlink(path);
        unlink(secret_path);
        return 1;
    }
    const char *base = strrchr(path, '/');
    zcert_set_meta(cert, "name", "%s", name ? name : base ? base + 1 : path);
    if (zcert_save(cert, path) != 0) {
        fprintf(stderr, "ordo-keygen: cannot write %s: %s\n", path, strerror(errno));
        zcert_destroy(&cert);
        unlink(path);
        unlink(secret_path);
        return 1;
    }
    if (json) {
        printf("{\"public\":");
        ordo_json_string(stdout, path, strlen(path));
        printf(",\"secret\":");
        ordo_json_string(stdout, secret_path, strlen(secret_path));
        printf(",\"public_key\":\"%s\"}\n", zcert_public_txt(cert)); /* Z85 needs no escape */
    } else
        printf("public certificate %s\nsecret certificate %s (keep it: mode 0600)\n"
               "public key %s\n",
               path, secret_path, zcert_public_txt(cert));
    zcert_destroy(&cert);
    return 0;
}
