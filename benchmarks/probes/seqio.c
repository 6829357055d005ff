/*
 * Sequential file I/O, run inside a container by benchmarks/run.py.
 *
 *   seqio PATH MIB
 *
 * Writes MIB MiB to PATH in 1 MiB write(2)s (then fsync + close), reads it
 * back in 1 MiB read(2)s (page-cache hot: this measures the syscall and copy
 * path, not the disk), unlinks it.  Prints one JSON object:
 * {"mib": 100, "write_s": 0.05, "fsync_s": 0.2, "read_s": 0.02}
 * or {"error": "..."}.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (1 << 20)

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int fail(const char *what, const char *path) {
    printf("{\"error\": \"%s %s: %s (errno %d)\"}\n", what, path, strerror(errno), errno);
    unlink(path);
    return 1;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s PATH MIB\n", argv[0]);
        return 2;
    }
    const char *path = argv[1];
    long mib = atol(argv[2]);
    char *buf = malloc(CHUNK);
    if (!buf) return fail("malloc", path);
    memset(buf, 'z', CHUNK);

    double t0 = now();
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return fail("open", path);
    for (long i = 0; i < mib; i++) {
        ssize_t off = 0;
        while (off < CHUNK) {
            ssize_t n = write(fd, buf + off, CHUNK - off);
            if (n <= 0) return fail("write", path);
            off += n;
        }
    }
    double t1 = now();
    if (fsync(fd) < 0 && errno != EINVAL) return fail("fsync", path);
    if (close(fd) < 0) return fail("close", path);
    double t2 = now();

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return fail("open", path);
    long total = 0;
    for (;;) {
        ssize_t n = read(fd, buf, CHUNK);
        if (n < 0) return fail("read", path);
        if (n == 0) break;
        total += n;
    }
    close(fd);
    double t3 = now();
    if (total != mib * CHUNK) {
        errno = EIO;
        return fail("short read", path);
    }
    if (unlink(path) < 0) return fail("unlink", path);
    printf("{\"mib\": %ld, \"write_s\": %.6f, \"fsync_s\": %.6f, \"read_s\": %.6f}\n",
           mib, t1 - t0, t2 - t1, t3 - t2);
    return 0;
}
