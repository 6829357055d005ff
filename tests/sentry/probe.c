/* Static probe run under the sentry's filter.  Each argument is one check;
 * each prints one line "<check> <ret> <errno>" (or a figure).  Compiled at
 * test time with gcc -static -O2.  Raw syscalls so libc does not interfere. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static void show(const char *what, long ret) {
    printf("%s %ld %d\n", what, ret, ret < 0 ? errno : 0);
    fflush(stdout);
}

/* sys=LABEL,NR[,ARG...]: one raw syscall, up to six arguments (any base
 * strtoull reads; "buf" is a pointer to a zeroed 4 KiB buffer); prints
 * "LABEL ret errno".  Lets tests list their cases as data. */
static char scratch[4096];

static void raw_syscall(char *spec) {
    char *label = strtok(spec, ",");
    char *tok = strtok(NULL, ",");
    if (!label || !tok) {
        printf("bad-sys-spec\n");
        return;
    }
    long nr = strtol(tok, NULL, 0);
    unsigned long a[6] = {0};
    for (int k = 0; k < 6 && (tok = strtok(NULL, ",")); k++)
        a[k] = strcmp(tok, "buf") ? strtoull(tok, NULL, 0) : (unsigned long)scratch;
    memset(scratch, 0, sizeof scratch);
    errno = 0;
    show(label, syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]));
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        char *a = argv[i];
        errno = 0;
        if (!strncmp(a, "sys=", 4)) {
            raw_syscall(a + 4);
        } else if (!strcmp(a, "getpid")) {
            show(a, syscall(SYS_getpid));
        } else if (!strncmp(a, "loop-getppid=", 13)) {
            long n = atol(a + 13);
            double t0 = now_us();
            for (long k = 0; k < n; k++) syscall(SYS_getppid);
            printf("%s us/op %.3f\n", a, (now_us() - t0) / n);
            fflush(stdout);
        } else if (!strncmp(a, "loop-stat=", 10)) {
            /* loop-stat=N:PATH */
            long n = atol(a + 10);
            char *path = strchr(a, ':') + 1;
            struct stat st;
            long bad = 0;
            double t0 = now_us();
            for (long k = 0; k < n; k++)
                if (syscall(SYS_stat, path, &st) != 0) bad++;
            printf("%s us/op %.3f bad %ld\n", "loop-stat", (now_us() - t0) / n, bad);
            fflush(stdout);
        } else if (!strncmp(a, "loop-open=", 10)) {
            long n = atol(a + 10);
            char *path = strchr(a, ':') + 1;
            long bad = 0;
            double t0 = now_us();
            for (long k = 0; k < n; k++) {
                int fd = syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
                if (fd < 0) bad++; else close(fd);
            }
            printf("%s us/op %.3f bad %ld\n", "loop-open", (now_us() - t0) / n, bad);
            fflush(stdout);
        } else if (!strcmp(a, "uname")) {
            struct utsname u;
            long r = syscall(SYS_uname, &u);
            printf("uname %ld %s %s %s\n", r, u.nodename, u.release, u.machine);
            fflush(stdout);
        } else if (!strncmp(a, "cat=", 4)) {
            /* open (openat AT_FDCWD) and print the first line of the file */
            int fd = syscall(SYS_openat, AT_FDCWD, a + 4, O_RDONLY);
            if (fd < 0) { show("cat", fd); continue; }
            char buf[256] = {0};
            long n = read(fd, buf, sizeof buf - 1);
            char *nl = strchr(buf, '\n');
            if (nl) *nl = 0;
            printf("cat %d %ld %s\n", fd >= 0, n, buf);
            fflush(stdout);
            close(fd);
        } else if (!strncmp(a, "open=", 5)) {
            show("open", syscall(SYS_open, a + 5, O_RDONLY));
        } else if (!strncmp(a, "stat=", 5)) {
            struct stat st;
            long r = syscall(SYS_stat, a + 5, &st);
            printf("stat %ld %d size=%ld mode=%o ino=%lu\n", r, r < 0 ? errno : 0,
                   (long)st.st_size, st.st_mode, (unsigned long)st.st_ino);
            fflush(stdout);
        } else if (!strncmp(a, "lstat=", 6)) {
            struct stat st;
            long r = syscall(SYS_lstat, a + 6, &st);
            printf("lstat %ld %d islnk=%d\n", r, r < 0 ? errno : 0, S_ISLNK(st.st_mode));
            fflush(stdout);
        } else if (!strncmp(a, "access=", 7)) {
            show("access", syscall(SYS_access, a + 7, R_OK));
        } else if (!strncmp(a, "readlink=", 9)) {
            char buf[256] = {0};
            long r = syscall(SYS_readlink, a + 9, buf, sizeof buf - 1);
            printf("readlink %ld %d %s\n", r, r < 0 ? errno : 0, r > 0 ? buf : "-");
            fflush(stdout);
        } else if (!strncmp(a, "chdir=", 6)) {
            /* chdir is emulated but has no handler yet: use fchdir on an fd */
            int fd = syscall(SYS_openat, AT_FDCWD, a + 6, O_RDONLY | O_DIRECTORY);
            show("chdir-open", fd);
            if (fd >= 0) show("fchdir", syscall(SYS_fchdir, fd));
        } else if (!strcmp(a, "badptr")) {
            show("badptr", syscall(SYS_open, (char *)8, O_RDONLY));
        } else if (!strcmp(a, "longpath")) {
            char *p = malloc(8192);
            memset(p, 'a', 8191);
            p[8191] = 0;
            show("longpath", syscall(SYS_open, p, O_RDONLY));
        } else if (!strcmp(a, "bpf")) {
            show(a, syscall(SYS_bpf, 0, 0, 0));
        } else if (!strcmp(a, "keyctl")) {
            show(a, syscall(SYS_keyctl, 0, 0, 0));
        } else if (!strcmp(a, "mount")) {
            show(a, syscall(SYS_mount, "none", "/", "tmpfs", 0, 0));
        } else if (!strcmp(a, "io_uring_setup")) {
            show(a, syscall(SYS_io_uring_setup, 1, 0));
        } else if (!strcmp(a, "clone3")) {
            show(a, syscall(SYS_clone3, 0, 0));
        } else if (!strcmp(a, "unknown")) {
            show(a, syscall(999));
        } else if (!strcmp(a, "clone-newuts")) {
            show(a, syscall(SYS_clone, CLONE_NEWUTS | SIGCHLD, 0, 0, 0, 0));
        } else if (!strcmp(a, "fork")) {
            long r = syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0);
            if (r == 0) _exit(0);
            int st;
            show(a, r > 0 && waitpid(r, &st, 0) == r ? 1 : r);
        } else if (!strcmp(a, "tiocsti")) {
            char c = 'x';
            show(a, syscall(SYS_ioctl, 0, 0x5412, &c));
        } else if (!strcmp(a, "tcgets-high")) {
            char buf[64];
            /* high bits set: must be compared on the low 32 bits -> allowed */
            show(a, syscall(SYS_ioctl, 0, 0x100005401UL, buf));
        } else if (!strcmp(a, "x32")) {
            show(a, syscall(0x40000000 | SYS_getpid));
        } else if (!strcmp(a, "i386")) {
            long r;
            __asm__ volatile("int $0x80" : "=a"(r) : "a"(20) : "memory");
            show(a, r);
        } else {
            printf("unknown-check %s\n", a);
        }
    }
    return 0;
}
