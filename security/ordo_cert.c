/* CURVE key files and socket options (see ordo_cert.h). The files are
 * czmq's certificates (zcert writes them, in ordo-keygen), read here with
 * plain libzmq: libordo uses this too, and czmq's zcert_load would start
 * czmq in the host (its context, and its signal handlers) on the first
 * parse error it logs. The reader is strict and bounded: certificate
 * files are input like any other. */
#include "ordo_cert.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

bool ordo_cert_curve_available(void)
{
    return zmq_has("curve") != 0;
}

/* 1 if `path` is a regular file small enough to be a certificate, 0 if it
 * does not exist, -1 (err) if it is something else. */
static int s_check_file(const char *path, char *err, size_t err_size)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        if (errno == ENOENT)
            return 0;
        snprintf(err, err_size, "cannot read certificate %s: %s", path, strerror(errno));
        return -1;
    }
    if (!S_ISREG(st.st_mode) || st.st_size > ORDO_CERT_FILE_MAX) {
        snprintf(err, err_size, "%s is not a certificate (not a file of at most %d bytes)", path,
                 ORDO_CERT_FILE_MAX);
        return -1;
    }
    return 1;
}

static bool s_zero(const uint8_t *key)
{
    uint8_t acc = 0;
    for (int i = 0; i < ORDO_CURVE_KEY_SIZE; i++)
        acc |= key[i];
    return acc == 0;
}

/* Reads the whole file into buf (`size` bytes: at most size - 1 of them
 * and a NUL). What is read is what was checked: opened once (never
 * blocking, as on a FIFO), then checked to be a regular file of at most
 * size - 1 bytes. Its length, or -1 (err). */
static long s_read(const char *path, char *buf, size_t size, char *err, size_t err_size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        snprintf(err, err_size, "cannot read certificate %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > size - 1) {
        snprintf(err, err_size, "%s is not a certificate (not a file of at most %zu bytes)", path,
                 size - 1);
        close(fd);
        return -1;
    }
    size_t n = 0;
    for (;;) {
        ssize_t got = read(fd, buf + n, size - 1 - n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            snprintf(err, err_size, "cannot read certificate %s: %s", path, strerror(errno));
            close(fd);
            return -1;
        }
        if (got == 0)
            break;
        n += (size_t)got;
        if (n == size - 1) { /* full: the file must end here */
            char extra;
            if (read(fd, &extra, 1) != 0) {
                snprintf(err, err_size, "%s is not a certificate (more than %zu bytes)", path,
                         size - 1);
                close(fd);
                return -1;
            }
            break;
        }
    }
    close(fd);
    buf[n] = '\0';
    return (long)n;
}

static bool s_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("$-_@.&+/", c) != NULL);
}

/* Decodes a 40-character Z85 value into key; false if it is not one. */
static bool s_z85_key(const char *value, size_t len, uint8_t key[ORDO_CURVE_KEY_SIZE])
{
    char text[41];
    if (len != 40)
        return false;
    memcpy(text, value, 40);
    text[40] = '\0';
    return zmq_z85_decode(key, text) != NULL;
}

/* ZPL (ZeroMQ RFC 4), the lines czmq writes: names indented four spaces
 * per level, `name = "value"` (or 'value', or unquoted), '#' comments. */
int ordo_cert_parse(const char *path, char *text, ordo_keypair_t *out, bool *has_public,
                    char *err, size_t err_size)
{
    char section[64] = "";
    int line_no = 0;
    *has_public = false;
    for (char *line = text, *next; line && *line; line = next) {
        line_no++;
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        size_t len = strlen(line);
        if (len && line[len - 1] == '\r')
            line[--len] = '\0';
        size_t indent = strspn(line, " ");
        char *p = line + indent;
        if (*p == '\0' || *p == '#')
            continue;
        if (indent % 4 || indent > 4 * 8 || !s_name_char(*p))
            goto bad;
        char *name = p;
        while (s_name_char(*p))
            p++;
        size_t name_len = (size_t)(p - name);
        p += strspn(p, " ");
        const char *value = NULL;
        size_t value_len = 0;
        if (*p == '=') {
            p++;
            p += strspn(p, " ");
            if (*p == '"' || *p == '\'') {
                char quote = *p++;
                char *close = strchr(p, quote);
                if (!close)
                    goto bad;
                value = p;
                value_len = (size_t)(close - p);
                p = close + 1;
            } else {
                value = p;
                while (*p && *p != ' ' && *p != '#')
                    p++;
                value_len = (size_t)(p - value);
            }
            p += strspn(p, " ");
        }
        if (*p != '\0' && *p != '#')
            goto bad;
        if (indent == 0) {
            if (name_len >= sizeof section)
                goto bad;
            memcpy(section, name, name_len);
            section[name_len] = '\0';
            continue;
        }
        if (indent != 4 || strcmp(section, "curve") != 0)
            continue;
        bool is_public = name_len == 10 && !memcmp(name, "public-key", 10);
        bool is_secret = name_len == 10 && !memcmp(name, "secret-key", 10);
        if (!is_public && !is_secret)
            continue;
        if (!value || !s_z85_key(value, value_len, is_public ? out->public_key : out->secret_key)) {
            snprintf(err, err_size, "%s, line %d: a key must be 40 characters of Z85", path,
                     line_no);
            return -1;
        }
        if (is_public)
            *has_public = true;
    }
    return 0;
bad:
    snprintf(err, err_size,
             "%s is not a CURVE certificate (czmq's format, as ordo-keygen writes it): line %d",
             path, line_no);
    return -1;
}

int ordo_cert_load(const char *path, bool need_secret, ordo_keypair_t *out, char *err,
                   size_t err_size)
{
    memset(out, 0, sizeof *out);
    if (!path || !*path || strlen(path) > ORDO_CERT_PATH_MAX) {
        snprintf(err, err_size, "a certificate's path must have 1 to %d bytes",
                 ORDO_CERT_PATH_MAX);
        return -1;
    }
    /* As czmq's zcert_load: PATH_secret (both keys) if it exists, else PATH. */
    char secret_path[ORDO_CERT_PATH_MAX + 8];
    snprintf(secret_path, sizeof secret_path, "%s_secret", path);
    int secret = s_check_file(secret_path, err, err_size);
    if (secret < 0)
        return -1;
    const char *file = secret ? secret_path : path;
    int plain = secret ? 1 : s_check_file(path, err, err_size);
    if (plain < 0)
        return -1;
    if (!plain) {
        snprintf(err, err_size, "cannot read certificate %s: no such file", path);
        return -1;
    }
    char *text = malloc(ORDO_CERT_FILE_MAX + 1);
    if (!text) {
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    bool has_public = false;
    int rc = s_read(file, text, ORDO_CERT_FILE_MAX + 1, err, err_size) < 0 ||
                     ordo_cert_parse(file, text, out, &has_public, err, err_size) != 0
                 ? -1
                 : 0;
    memset(text, 0, ORDO_CERT_FILE_MAX + 1); /* it may hold a secret key */
    free(text);
    if (rc == 0 && (!has_public || s_zero(out->public_key))) {
        snprintf(err, err_size,
                 "%s is not a CURVE certificate (czmq's format, as ordo-keygen writes it): it "
                 "has no public key",
                 file);
        rc = -1;
    }
    if (rc == 0 && need_secret && s_zero(out->secret_key)) {
        snprintf(err, err_size,
                 "%s holds no secret key: give the secret certificate (the PATH_secret file "
                 "ordo-keygen wrote)",
                 file);
        rc = -1;
    }
    if (rc == 0 && !s_zero(out->secret_key)) {
        /* The public key must be the one the secret key makes. */
        char secret_z85[41], derived[41], public_z85[41];
        zmq_z85_encode(secret_z85, out->secret_key, ORDO_CURVE_KEY_SIZE);
        zmq_z85_encode(public_z85, out->public_key, ORDO_CURVE_KEY_SIZE);
        if (zmq_curve_public(derived, secret_z85) != 0 || strcmp(derived, public_z85) != 0) {
            snprintf(err, err_size, "%s: the public key does not belong to the secret key", file);
            rc = -1;
        }
        memset(secret_z85, 0, sizeof secret_z85);
    }
    if (rc != 0)
        memset(out, 0, sizeof *out);
    return rc;
}

int ordo_cert_make_server(void *sock, const ordo_keypair_t *server)
{
    int on = 1;
    if (zmq_setsockopt(sock, ZMQ_CURVE_SERVER, &on, sizeof on) != 0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, server->secret_key, ORDO_CURVE_KEY_SIZE) != 0)
        return -1;
    /* A domain makes libzmq ask the ZAP handler about every peer. */
    return zmq_setsockopt(sock, ZMQ_ZAP_DOMAIN, "ordo", 4);
}

int ordo_cert_make_client(void *sock, const uint8_t server_key[ORDO_CURVE_KEY_SIZE],
                          const ordo_keypair_t *client)
{
    if (zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, server_key, ORDO_CURVE_KEY_SIZE) != 0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, client->public_key, ORDO_CURVE_KEY_SIZE) != 0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, client->secret_key, ORDO_CURVE_KEY_SIZE) != 0)
        return -1;
    return 0;
}
