/* Shared CUnit runner and file helpers (see ordo_test.h). */
#define _XOPEN_SOURCE 700
#include "ordo_test.h"

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

int ordo_test_run(void)
{
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_ErrorCode rc = CU_basic_run_tests();
    unsigned failures = CU_get_number_of_failures();
    unsigned run = CU_get_number_of_tests_run();
    CU_cleanup_registry();
    if (rc != CUE_SUCCESS) {
        fprintf(stderr, "CUnit framework error %d\n", (int)rc);
        return 1;
    }
    if (run == 0) {
        fprintf(stderr, "no test ran\n");
        return 1;
    }
    return failures != 0;
}

char *ordo_test_tmpdir(char *buf, size_t size)
{
    const char *base = getenv("TMPDIR");
    if (!base || !*base)
        base = "/tmp";
    if ((size_t)snprintf(buf, size, "%s/ordo-test-XXXXXX", base) >= size)
        return NULL;
    return mkdtemp(buf);
}

static int s_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void ordo_test_rm_rf(const char *path)
{
    nftw(path, s_rm, 16, FTW_DEPTH | FTW_PHYS);
}

long long ordo_test_file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

int ordo_test_flip_bit(const char *path, long long offset, int bit)
{
    int fd = open(path, O_RDWR);
    if (fd < 0)
        return -1;
    unsigned char c;
    int rc = -1;
    if (pread(fd, &c, 1, offset) == 1) {
        c ^= (unsigned char)(1u << bit);
        rc = pwrite(fd, &c, 1, offset) == 1 ? 0 : -1;
    }
    close(fd);
    return rc;
}

int ordo_test_truncate(const char *path, long long size)
{
    return truncate(path, size);
}

int ordo_test_copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb");
    if (!in)
        return -1;
    FILE *out = fopen(to, "wb");
    if (!out) {
        fclose(in);
        return -1;
    }
    char buf[65536];
    size_t n;
    int rc = 0;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        if (fwrite(buf, 1, n, out) != n)
            rc = -1;
    fclose(in);
    if (fclose(out) != 0)
        rc = -1;
    return rc;
}
