/* A container's first look into /proc, by a program that makes no other
 * call before it: no libc (a static glibc program reads /proc/self/exe at
 * start, a walk into /proc that hid the bug tests/test_proc_access.py
 * checks).  Prints "stat /proc: ok dir" (or the errno), then whether
 * /proc lists entries, as Linux answers. */
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>

static long sc(long n, long a, long b, long c, long d) {
    long r;
    register long r10 __asm__("r10") = d;
    __asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10) : "rcx", "r11", "memory");
    return r;
}

static void put(const char *s) {
    long n = 0;
    while (s[n]) n++;
    sc(SYS_write, 1, (long)s, n, 0);
}

static void put_err(long r) {
    char buf[8];
    int i = 7;
    unsigned long v = (unsigned long)-r;
    buf[i] = 0;
    do { buf[--i] = (char)('0' + v % 10); v /= 10; } while (v && i > 0);
    put("errno ");
    put(buf + i);
}

void _start(void) {
    struct stat st;
    char dents[4096];
    long r = sc(SYS_newfstatat, AT_FDCWD, (long)"/proc", (long)&st, 0);
    put("stat /proc: ");
    if (r < 0) put_err(r); else put(S_ISDIR(st.st_mode) ? "ok dir" : "ok not-dir");
    put("\n");
    long fd = sc(SYS_openat, AT_FDCWD, (long)"/proc", O_RDONLY | O_DIRECTORY, 0);
    put("list /proc: ");
    if (fd < 0) {
        put_err(fd);
    } else {
        r = sc(SYS_getdents64, fd, (long)dents, sizeof dents, 0);
        if (r < 0) put_err(r); else put(r > 0 ? "ok entries" : "ok empty");
    }
    put("\n");
    sc(SYS_exit_group, 0, 0, 0, 0);
}
