/* The simulated disk of the power-cut tests (see ordo_simdisk.h). Each
 * file's unsynced changes are kept as a list of operations, each with the
 * bytes it wrote and the bytes (and size) it replaced. At the cut, every
 * file is rolled back to its last sync (undoing its list from the end),
 * then the changes the seed lets survive are done again in their order,
 * the torn one only in part. */
#include "ordo_simdisk.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SECTOR 512
#define MAX_FD 4096

typedef enum { S_WRITE, S_SIZE } s_kind_t;

typedef struct {
    s_kind_t kind;
    uint64_t off, len;  /* S_WRITE: the range written */
    uint8_t *new_bytes; /* S_WRITE: what was written (len bytes) */
    uint64_t old_size;  /* the file's size before */
    uint64_t new_size;  /* the file's size after */
    uint8_t *old_bytes; /* what [off, off + len) held before, up to old_size
                         * (S_SIZE: [new_size, old_size) when it shrank) */
    uint64_t old_len;   /* bytes in old_bytes */
} s_op_t;

typedef struct {
    char *path;
    s_op_t *ops;
    size_t n, cap;
} s_file_t;

/* A change of a directory's entries not yet made durable by an fsync of
 * the directory. */
typedef enum { S_CREATE, S_RENAME, S_UNLINK } s_ns_kind_t;

typedef struct {
    s_ns_kind_t kind;
    char *dir;    /* the directory whose fsync makes it durable */
    char *path;   /* CREATE: the file; RENAME: from; UNLINK: the file */
    char *to;     /* RENAME: to */
    char *backup; /* UNLINK: the file, kept under this name; RENAME: what `to`
                   * held before (NULL: nothing) */
} s_ns_t;

struct ordo_simdisk {
    ordo_io_t io;
    pthread_mutex_t lock;
    uint64_t rng;
    uint64_t crash_after;
    uint64_t ops;
    atomic_bool crashed;
    char *fd_path[MAX_FD];
    s_file_t *files;
    size_t nfiles, capfiles;
    s_ns_t *ns; /* directory changes not synced, in order */
    size_t nns, capns;
    uint64_t backups; /* names made for kept copies */
};

/* splitmix64: a seeded sequence, the same on every machine. */
static uint64_t s_rand(ordo_simdisk_t *d)
{
    uint64_t z = (d->rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Makes room for one more item in a growing array. false if out of memory. */
static bool s_room(void **items, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return true;
    size_t grown_cap = *cap ? 2 * *cap : 16;
    void *grown = realloc(*items, grown_cap * size);
    if (!grown)
        return false;
    *items = grown;
    *cap = grown_cap;
    return true;
}

static s_file_t *s_file(ordo_simdisk_t *d, const char *path, bool add)
{
    for (size_t i = 0; i < d->nfiles; i++)
        if (strcmp(d->files[i].path, path) == 0)
            return &d->files[i];
    if (!add)
        return NULL;
    if (!s_room((void **)&d->files, &d->capfiles, d->nfiles, sizeof *d->files))
        return NULL;
    s_file_t *f = &d->files[d->nfiles];
    *f = (s_file_t){.path = strdup(path)};
    if (!f->path)
        return NULL;
    d->nfiles++;
    return f;
}

static void s_op_free(s_op_t *op)
{
    free(op->new_bytes);
    free(op->old_bytes);
}

static void s_forget(s_file_t *f)
{
    for (size_t i = 0; i < f->n; i++)
        s_op_free(&f->ops[i]);
    f->n = 0;
}

static s_op_t *s_push(s_file_t *f)
{
    if (!s_room((void **)&f->ops, &f->cap, f->n, sizeof *f->ops))
        return NULL;
    s_op_t *op = &f->ops[f->n++];
    memset(op, 0, sizeof *op);
    return op;
}

static uint64_t s_size_of(int fd)
{
    struct stat st;
    return fstat(fd, &st) == 0 ? (uint64_t)st.st_size : 0;
}

/* Reads [off, off + len) clipped to `size` into a new buffer, through fd,
 * or through `path` when fd is open for writing only. */
static uint8_t *s_read_range(int fd, const char *path, uint64_t off, uint64_t len, uint64_t size,
                             uint64_t *got)
{
    *got = off >= size ? 0 : (size - off < len ? size - off : len);
    uint8_t *b = malloc(*got ? *got : 1);
    if (!b || !*got)
        return b;
    ssize_t n = pread(fd, b, *got, (off_t)off);
    if (n < 0 && errno == EBADF) {
        int rfd = open(path, O_RDONLY);
        n = rfd < 0 ? -1 : pread(rfd, b, *got, (off_t)off);
        if (rfd >= 0)
            close(rfd);
    }
    if (n != (ssize_t)*got) {
        free(b);
        return NULL;
    }
    return b;
}

/* Counts an operation that changes files; false once the power is gone
 * (this one included: the operation at the cut never happens). */
static bool s_tick(ordo_simdisk_t *d)
{
    if (atomic_load(&d->crashed))
        return false;
    d->ops++;
    if (d->crash_after && d->ops >= d->crash_after) {
        atomic_store(&d->crashed, true);
        return false;
    }
    return true;
}

static int s_eio(void)
{
    errno = EIO;
    return -1;
}

static char *s_dirname(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? strndup(path, (size_t)(slash - path)) : strdup(".");
}

static void s_ns_free(s_ns_t *e)
{
    free(e->dir);
    free(e->path);
    free(e->to);
    free(e->backup);
}

/* Records a directory change; false if out of memory. */
static bool s_ns_push(ordo_simdisk_t *d, s_ns_kind_t kind, const char *path, const char *to,
                      char *backup)
{
    if (!s_room((void **)&d->ns, &d->capns, d->nns, sizeof *d->ns))
        return false;
    s_ns_t *e = &d->ns[d->nns];
    *e = (s_ns_t){.kind = kind,
                  .dir = s_dirname(path),
                  .path = strdup(path),
                  .to = to ? strdup(to) : NULL,
                  .backup = backup};
    if (!e->dir || !e->path || (to && !e->to)) {
        s_ns_free(e);
        return false;
    }
    d->nns++;
    return true;
}

/* Keeps what `path` names now under a new name (a hard link), for a
 * change that may have to be undone. NULL if there is nothing there. */
static char *s_keep_copy(ordo_simdisk_t *d, const char *path)
{
    char name[4200];
    snprintf(name, sizeof name, "%s.simdisk-%llu", path, (unsigned long long)++d->backups);
    if (link(path, name) != 0)
        return NULL;
    return strdup(name);
}

/* An fsync of directory `dir`: its changes so far are durable. */
static void s_dir_synced(ordo_simdisk_t *d, const char *dir)
{
    size_t keep = 0;
    for (size_t i = 0; i < d->nns; i++) {
        if (strcmp(d->ns[i].dir, dir) == 0) {
            if (d->ns[i].backup)
                unlink(d->ns[i].backup);
            s_ns_free(&d->ns[i]);
        } else {
            d->ns[keep++] = d->ns[i];
        }
    }
    d->nns = keep;
}

/* ---- the I/O table ------------------------------------------------------ */

static int d_open(void *ctx, const char *path, int flags, mode_t mode)
{
    ordo_simdisk_t *d = ctx;
    pthread_mutex_lock(&d->lock);
    bool changes = (flags & (O_CREAT | O_TRUNC)) != 0;
    if ((changes && !s_tick(d)) || atomic_load(&d->crashed)) {
        pthread_mutex_unlock(&d->lock);
        return s_eio();
    }
    bool existed = access(path, F_OK) == 0;
    int fd = ordo_io_posix()->open(NULL, path, flags, mode);
    if (fd >= 0 && (flags & O_CREAT) && !existed)
        s_ns_push(d, S_CREATE, path, NULL, NULL);
    if (fd >= 0 && fd < MAX_FD) {
        free(d->fd_path[fd]);
        d->fd_path[fd] = strdup(path);
    }
    pthread_mutex_unlock(&d->lock);
    return fd;
}

static int d_close(void *ctx, int fd)
{
    ordo_simdisk_t *d = ctx;
    pthread_mutex_lock(&d->lock);
    if (fd >= 0 && fd < MAX_FD) {
        free(d->fd_path[fd]);
        d->fd_path[fd] = NULL;
    }
    pthread_mutex_unlock(&d->lock);
    return ordo_io_posix()->close(NULL, fd);
}

static ssize_t d_pread(void *ctx, int fd, void *buf, size_t n, off_t off)
{
    ordo_simdisk_t *d = ctx;
    if (atomic_load(&d->crashed))
        return s_eio();
    return ordo_io_posix()->pread(NULL, fd, buf, n, off);
}

/* Starts the record of a change to the file open as `fd` (under the
 * lock): its entry, with the file's size now in old_size, or NULL with
 * errno (EIO once the power is gone, ENOMEM). */
static s_op_t *s_begin(ordo_simdisk_t *d, int fd, s_kind_t kind, s_file_t **file)
{
    s_file_t *f = fd >= 0 && fd < MAX_FD && d->fd_path[fd] ? s_file(d, d->fd_path[fd], true) : NULL;
    if (!s_tick(d)) {
        errno = EIO;
        return NULL;
    }
    s_op_t *op = f ? s_push(f) : NULL;
    if (!op) {
        errno = ENOMEM;
        return NULL;
    }
    op->kind = kind;
    op->old_size = s_size_of(fd);
    *file = f;
    return op;
}

/* Drops the entry s_begin made, its bytes not all kept (out of memory). */
static void s_abandon(s_file_t *f, s_op_t *op)
{
    s_op_free(op);
    f->n--;
    errno = ENOMEM;
}

static ssize_t d_pwrite(void *ctx, int fd, const void *buf, size_t n, off_t off)
{
    ordo_simdisk_t *d = ctx;
    pthread_mutex_lock(&d->lock);
    ssize_t rc = -1;
    s_file_t *f;
    s_op_t *op = s_begin(d, fd, S_WRITE, &f);
    if (op) {
        uint64_t size = op->old_size;
        op->off = (uint64_t)off;
        op->len = n;
        op->new_size = (uint64_t)off + n > size ? (uint64_t)off + n : size;
        op->old_bytes = s_read_range(fd, f->path, op->off, n, size, &op->old_len);
        op->new_bytes = malloc(n ? n : 1);
        if (op->new_bytes)
            memcpy(op->new_bytes, buf, n);
        if (!op->old_bytes || !op->new_bytes) {
            s_abandon(f, op);
        } else {
            rc = ordo_io_posix()->pwrite(NULL, fd, buf, n, off);
            if (rc != (ssize_t)n) /* a short write: keep the books exact */
                op->len = rc > 0 ? (uint64_t)rc : 0;
        }
    }
    pthread_mutex_unlock(&d->lock);
    return rc;
}

static int d_sync(ordo_simdisk_t *d, int fd, bool data_only)
{
    pthread_mutex_lock(&d->lock);
    int rc = -1;
    if (!s_tick(d)) {
        errno = EIO;
    } else {
        rc = data_only ? ordo_io_posix()->fdatasync(NULL, fd) : ordo_io_posix()->fsync(NULL, fd);
        struct stat st;
        const char *path = fd >= 0 && fd < MAX_FD ? d->fd_path[fd] : NULL;
        if (rc == 0 && path && fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
            s_dir_synced(d, path); /* its entries are durable now */
        } else {
            s_file_t *f = rc == 0 && path ? s_file(d, path, false) : NULL;
            if (f)
                s_forget(f); /* durable now */
        }
    }
    pthread_mutex_unlock(&d->lock);
    return rc;
}

static int d_fdatasync(void *ctx, int fd)
{
    return d_sync(ctx, fd, true);
}

static int d_fsync(void *ctx, int fd)
{
    return d_sync(ctx, fd, false);
}

/* A size change (ftruncate, fallocate): `grow_only` never shrinks. */
static int d_resize(ordo_simdisk_t *d, int fd, uint64_t new_size, bool grow_only)
{
    pthread_mutex_lock(&d->lock);
    int rc = -1;
    s_file_t *f;
    s_op_t *op = s_begin(d, fd, S_SIZE, &f);
    if (op) {
        uint64_t size = op->old_size;
        if (grow_only && new_size < size)
            new_size = size;
        op->new_size = new_size;
        op->off = new_size;
        op->old_bytes = s_read_range(fd, f->path, new_size, size > new_size ? size - new_size : 0,
                                     size, &op->old_len);
        if (!op->old_bytes)
            s_abandon(f, op);
        else
            rc = ordo_io_posix()->ftruncate(NULL, fd, (off_t)new_size);
    }
    pthread_mutex_unlock(&d->lock);
    return rc;
}

static int d_ftruncate(void *ctx, int fd, off_t len)
{
    return d_resize(ctx, fd, (uint64_t)len, false);
}

static int d_fallocate(void *ctx, int fd, off_t off, off_t len)
{
    return d_resize(ctx, fd, (uint64_t)off + (uint64_t)len, true);
}

/* A rename or an unlink, keeping what it replaces or removes (a hard
 * link) so that the cut can undo it. 0 or -1 with errno. */
static int s_ns_change(ordo_simdisk_t *d, s_ns_kind_t kind, const char *path, const char *to)
{
    char *kept = s_keep_copy(d, kind == S_RENAME ? to : path);
    int rc = kind == S_RENAME ? ordo_io_posix()->rename(NULL, path, to)
                              : ordo_io_posix()->unlink(NULL, path);
    if (rc != 0) {
        if (kept)
            unlink(kept);
        free(kept);
    } else {
        s_ns_push(d, kind, path, to, kept);
    }
    return rc;
}

static int d_rename(void *ctx, const char *from, const char *to)
{
    ordo_simdisk_t *d = ctx;
    pthread_mutex_lock(&d->lock);
    int rc = -1;
    if (!s_tick(d))
        errno = EIO;
    else
        rc = s_ns_change(d, S_RENAME, from, to);
    if (rc == 0) {
        s_file_t *old = s_file(d, to, false);
        if (old)
            s_forget(old); /* replaced */
        s_file_t *f = s_file(d, from, false);
        if (f) {
            char *p = strdup(to);
            if (p) {
                free(f->path);
                f->path = p;
            }
        }
    }
    pthread_mutex_unlock(&d->lock);
    return rc;
}

static int d_unlink(void *ctx, const char *path)
{
    ordo_simdisk_t *d = ctx;
    pthread_mutex_lock(&d->lock);
    int rc = -1;
    if (!s_tick(d)) {
        errno = EIO;
    } else if ((rc = s_ns_change(d, S_UNLINK, path, NULL)) == 0) {
        s_file_t *f = s_file(d, path, false);
        if (f)
            s_forget(f);
    }
    pthread_mutex_unlock(&d->lock);
    return rc;
}

static off_t d_size(void *ctx, int fd)
{
    ordo_simdisk_t *d = ctx;
    if (atomic_load(&d->crashed))
        return s_eio();
    return ordo_io_posix()->size(NULL, fd);
}

/* ---- life and the cut --------------------------------------------------- */

ordo_simdisk_t *ordo_simdisk_new(uint64_t seed, uint64_t crash_after)
{
    ordo_simdisk_t *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    pthread_mutex_init(&d->lock, NULL);
    d->rng = seed;
    d->crash_after = crash_after;
    d->io = (ordo_io_t){.ctx = d,
                        .open = d_open,
                        .close = d_close,
                        .pread = d_pread,
                        .pwrite = d_pwrite,
                        .fdatasync = d_fdatasync,
                        .fsync = d_fsync,
                        .ftruncate = d_ftruncate,
                        .fallocate = d_fallocate,
                        .rename = d_rename,
                        .unlink = d_unlink,
                        .size = d_size};
    return d;
}

void ordo_simdisk_destroy(ordo_simdisk_t **disk)
{
    if (!disk || !*disk)
        return;
    ordo_simdisk_t *d = *disk;
    for (size_t i = 0; i < d->nfiles; i++) {
        s_forget(&d->files[i]);
        free(d->files[i].ops);
        free(d->files[i].path);
    }
    free(d->files);
    for (size_t i = 0; i < d->nns; i++) {
        if (d->ns[i].backup)
            unlink(d->ns[i].backup);
        s_ns_free(&d->ns[i]);
    }
    free(d->ns);
    for (int i = 0; i < MAX_FD; i++)
        free(d->fd_path[i]);
    pthread_mutex_destroy(&d->lock);
    free(d);
    *disk = NULL;
}

const ordo_io_t *ordo_simdisk_io(ordo_simdisk_t *disk)
{
    return &disk->io;
}

bool ordo_simdisk_crashed(const ordo_simdisk_t *disk)
{
    return atomic_load(&disk->crashed);
}

void ordo_simdisk_cut_now(ordo_simdisk_t *disk)
{
    atomic_store(&disk->crashed, true);
}

uint64_t ordo_simdisk_ops(const ordo_simdisk_t *disk)
{
    return disk->ops;
}

/* Sets the file's size to `size` (truncating or extending with zeros). */
static int s_set_size(int fd, uint64_t size)
{
    return ftruncate(fd, (off_t)size);
}

/* Rolls one file back to its last sync, then does again what survives. */
static int s_cut_file(ordo_simdisk_t *d, s_file_t *f, ordo_simdisk_report_t *rep)
{
    if (f->n == 0)
        return 0;
    int fd = open(f->path, O_RDWR);
    if (fd < 0)
        return errno == ENOENT ? 0 : -1; /* unlinked since: nothing to do */
    int rc = 0;
    /* Back to the last sync: undo from the end. */
    for (size_t i = f->n; rc == 0 && i-- > 0;) {
        s_op_t *op = &f->ops[i];
        if (op->kind == S_WRITE) {
            if (op->old_len &&
                pwrite(fd, op->old_bytes, op->old_len, (off_t)op->off) != (ssize_t)op->old_len)
                rc = -1;
            if (rc == 0 && s_set_size(fd, op->old_size) != 0)
                rc = -1;
        } else {
            if (s_set_size(fd, op->old_size) != 0 ||
                (op->old_len &&
                 pwrite(fd, op->old_bytes, op->old_len, (off_t)op->off) != (ssize_t)op->old_len))
                rc = -1;
        }
    }
    /* What survives: a prefix (in order, the next one torn), or any subset
     * (reordered writes), as the seed says. */
    uint64_t mode = s_rand(d) % 4;
    size_t prefix = (size_t)(s_rand(d) % (f->n + 1));
    for (size_t i = 0; rc == 0 && i < f->n; i++) {
        s_op_t *op = &f->ops[i];
        bool keep = mode == 3 ? (s_rand(d) & 1) : i < prefix;
        bool tear = mode != 3 && mode != 0 && i == prefix && op->kind == S_WRITE && op->len > 0;
        rep->unsynced++;
        if (!keep && !tear) {
            rep->dropped++;
            continue;
        }
        if (op->kind == S_SIZE) {
            if (s_set_size(fd, op->new_size) != 0)
                rc = -1;
            rep->kept++;
            continue;
        }
        uint64_t len = op->len;
        if (tear) { /* a prefix of whole sectors, then zeros or garbage */
            uint64_t sectors = (len + SECTOR - 1) / SECTOR;
            uint64_t keep_sectors = s_rand(d) % sectors;
            len = keep_sectors * SECTOR;
            bool garble = mode == 2;
            uint64_t rest = op->len - len;
            uint8_t *junk = calloc(1, rest ? rest : 1);
            if (!junk)
                return -1;
            if (garble)
                for (uint64_t k = 0; k < rest; k++)
                    junk[k] = (uint8_t)s_rand(d);
            if (pwrite(fd, junk, rest, (off_t)(op->off + len)) != (ssize_t)rest)
                rc = -1;
            free(junk);
            rep->torn++;
            rep->garbled += garble;
        } else {
            rep->kept++;
        }
        if (rc == 0 && len && pwrite(fd, op->new_bytes, len, (off_t)op->off) != (ssize_t)len)
            rc = -1;
    }
    if (rc == 0 && fsync(fd) != 0)
        rc = -1;
    close(fd);
    s_forget(f);
    return rc;
}

int ordo_simdisk_power_cut(ordo_simdisk_t *d, ordo_simdisk_report_t *report)
{
    memset(report, 0, sizeof *report);
    atomic_store(&d->crashed, true);
    pthread_mutex_lock(&d->lock);
    report->ops = d->ops;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < d->nfiles; i++)
        rc = s_cut_file(d, &d->files[i], report);
    /* Directory changes not synced: a prefix of them survives (a file
     * system journals them in order); the rest are undone, last first. */
    size_t keep = d->nns ? (size_t)(s_rand(d) % (d->nns + 1)) : 0;
    report->dir_changes = d->nns;
    report->dir_undone = d->nns - keep;
    for (size_t i = d->nns; i-- > keep;) {
        s_ns_t *e = &d->ns[i];
        if (e->kind == S_CREATE) {
            unlink(e->path);
        } else if (e->kind == S_RENAME) {
            if (rename(e->to, e->path) != 0 && errno != ENOENT)
                rc = -1;
            if (e->backup && rename(e->backup, e->to) != 0)
                rc = -1;
            free(e->backup);
            e->backup = NULL;
        } else if (e->backup) {
            if (rename(e->backup, e->path) != 0)
                rc = -1;
            free(e->backup);
            e->backup = NULL;
        }
    }
    for (size_t i = 0; i < d->nns; i++) {
        if (d->ns[i].backup)
            unlink(d->ns[i].backup);
        s_ns_free(&d->ns[i]);
    }
    d->nns = 0;
    pthread_mutex_unlock(&d->lock);
    return rc;
}
