/* Runs a fuzz target over files given on the command line (the saved
 * corpus and every crash the fuzzer found), so CTest keeps them as
 * regression tests in every build, with or without libFuzzer. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int main(int argc, char **argv)
{
    int files = 0;
    for (int i = 1; i < argc; i++) {
        FILE *f = fopen(argv[i], "rb");
        if (!f) {
            fprintf(stderr, "cannot open %s\n", argv[i]);
            return 1;
        }
        uint8_t *buf = malloc(2u << 20);
        size_t n = buf ? fread(buf, 1, 2u << 20, f) : 0;
        fclose(f);
        if (!buf)
            return 1;
        LLVMFuzzerTestOneInput(buf, n);
        free(buf);
        files++;
    }
    printf("%d inputs replayed, 0 failed\n", files);
    return files > 0 ? 0 : 1;
}
