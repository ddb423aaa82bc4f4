/* libFuzzer target: the certificate reader (security/ordo_cert.c), which
 * reads key files as hostile text. Never a crash or a read past the text;
 * a certificate it accepts with a public key must give that key back when
 * written again the way czmq writes it. */
#include "ordo_cert.h"

#include <stdlib.h>
#include <string.h>
#include <zmq.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > ORDO_CERT_FILE_MAX)
        return 0;
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0'; /* a NUL inside ends the text, as in a file read */
    ordo_keypair_t kp;
    memset(&kp, 0, sizeof kp);
    bool has_public = false;
    char err[300];
    if (ordo_cert_parse("fuzz", text, &kp, &has_public, err, sizeof err) == 0 && has_public) {
        char key[41], again[200];
        zmq_z85_encode(key, kp.public_key, 32);
        strcpy(again, "curve\n    public-key = \"");
        strcat(again, key);
        strcat(again, "\"\n");
        ordo_keypair_t kp2;
        memset(&kp2, 0, sizeof kp2);
        bool has2 = false;
        if (ordo_cert_parse("again", again, &kp2, &has2, err, sizeof err) != 0 || !has2 ||
            memcmp(kp.public_key, kp2.public_key, 32) != 0)
            abort();
    }
    free(text);
    return 0;
}
