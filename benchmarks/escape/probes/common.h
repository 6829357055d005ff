/* Shared by every escape probe: one static multi-call binary per family.
 * `BIN --list` prints its probe names; `BIN NAME` runs one attempt and prints
 * exactly one line "VERDICT NAME BLOCKED|ALLOWED|ESCAPED detail" on stdout.
 * Probes never print the host marker's content (the harness greps for it). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct probe { const char *name; int (*fn)(const char *name); };

static int verdict(const char *name, const char *v, const char *fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    for (char *p = buf; *p; p++) if (*p == '\n') *p = ' ';
    printf("VERDICT %s %s %s\n", name, v, buf);
    fflush(stdout);
    return 0;
}
#define BLOCKED(...) verdict(name, "BLOCKED", __VA_ARGS__)
#define ALLOWED(...) verdict(name, "ALLOWED", __VA_ARGS__)
#define ESCAPED(...) verdict(name, "ESCAPED", __VA_ARGS__)
#define ERR strerror(errno)

/* 1 if the marker file (host path in $ESCAPE_MARKER_PATH, relative to DIRFD
 * when dirfd >= 0) can be read and holds $ESCAPE_MARKER_CONTENT. */
static int read_marker_at(int dirfd, const char *path) {
    const char *want = getenv("ESCAPE_MARKER_CONTENT");
    if (!path || !want) return 0;
    int fd = dirfd >= 0 ? openat(dirfd, path[0] == '/' ? path + 1 : path, O_RDONLY)
                        : open(path, O_RDONLY);
    if (fd < 0) return 0;
    char buf[256] = {0};
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    return n > 0 && strncmp(buf, want, strlen(want)) == 0;
}
__attribute__((unused)) static int read_marker(void) { return read_marker_at(-1, getenv("ESCAPE_MARKER_PATH")); }

/* Write back what a file already holds (never changes host state even if the
 * write reaches the host).  Returns 0 on success, -1 with errno. */
__attribute__((unused)) static int rewrite_same(const char *path, char *old, size_t oldsz) {
    int fd = open(path, O_RDONLY);
    ssize_t n = fd >= 0 ? read(fd, old, oldsz - 1) : -1;
    if (fd >= 0) close(fd);
    if (n < 0) n = 0;
    old[n] = 0;
    fd = open(path, O_WRONLY);
    if (fd < 0) return -1;
    if (n == 0) { close(fd); return 0; }   /* nothing known to write back: stop at open */
    ssize_t w = write(fd, old, (size_t)n);
    int e = errno;
    close(fd);
    errno = e;
    return w < 0 ? -1 : 0;
}

/* A writable scratch directory: /tmp/LEAF, or /dev/LEAF where the rootfs is
 * read-only (/dev is a tmpfs in every runtime). */
__attribute__((unused)) static const char *scratch(const char *leaf) {
    static char buf[128];
    snprintf(buf, sizeof buf, "/tmp/%s", leaf);
    if (mkdir(buf, 0755) < 0 && errno != EEXIST) {
        snprintf(buf, sizeof buf, "/dev/%s", leaf);
        mkdir(buf, 0755);
    }
    return buf;
}

#define PROBE_MAIN(table)                                                       \
int main(int argc, char **argv) {                                               \
    size_t n = sizeof(table) / sizeof(table[0]);                                \
    if (argc == 2 && strcmp(argv[1], "--list") == 0) {                          \
        for (size_t i = 0; i < n; i++) puts(table[i].name);                     \
        return 0;                                                               \
    }                                                                           \
    for (size_t i = 0; argc == 2 && i < n; i++)                                 \
        if (strcmp(argv[1], table[i].name) == 0) return table[i].fn(table[i].name); \
    fprintf(stderr, "usage: %s --list | PROBE\n", argv[0]);                     \
    return 2;                                                                   \
}
