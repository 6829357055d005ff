/* Writes (of the value already there) to a host-wide kernel knob under
 * every spelling the sandbox must refuse, and reads of host secrets.
 * One line per attempt: "NAME OK" or "NAME ERRNO-NAME".  Never changes
 * host state: a write that gets through writes back what it read.
 * Usage: knobprobe KNOB (a path below /proc/sys, e.g. kernel/core_pattern) */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static char old[4096];
static ssize_t oldn;

static void report(const char *name, int ok) {
    if (ok) printf("%s OK\n", name);
    else printf("%s %s\n", name, strerrorname_np(errno));
    fflush(stdout);
}

/* Write the old value back through fd; 1 if it went through. */
static int write_back(int fd) {
    if (fd < 0) return 0;
    ssize_t w = write(fd, old, oldn > 0 ? (size_t)oldn : 0);
    int e = errno;
    close(fd);
    errno = e;
    return w >= 0;
}

static int read_fd(int fd) {
    if (fd < 0) return 0;
    char b[64];
    ssize_t n = read(fd, b, sizeof b);
    int e = errno;
    close(fd);
    errno = e;
    return n >= 0;
}

static long o2(int dirfd, const char *path, int flags, unsigned long long resolve) {
    struct open_how how = {.flags = (unsigned long long)flags, .resolve = resolve};
    return syscall(SYS_openat2, dirfd, path, &how, sizeof how);
}

int main(int argc, char **argv) {
    if (argc != 2) return 2;
    char path[512], rel[512], tmp[600];
    snprintf(path, sizeof path, "/proc/sys/%s", argv[1]);
    snprintf(rel, sizeof rel, "%s", argv[1]);
    int rfd = open(path, O_RDONLY);
    oldn = rfd >= 0 ? read(rfd, old, sizeof old) : -1;
    if (rfd >= 0) close(rfd);
    report("read", oldn >= 0);

    report("direct", write_back(open(path, O_WRONLY)));
    /* a read-only fd reopened for writing through its magic link */
    int ro = open(path, O_RDONLY);
    snprintf(tmp, sizeof tmp, "/proc/self/fd/%d", ro);
    report("self-fd", write_back(open(tmp, O_WRONLY)));
    snprintf(tmp, sizeof tmp, "/proc/thread-self/fd/%d", ro);
    report("thread-self-fd", write_back(open(tmp, O_WRONLY)));
    snprintf(tmp, sizeof tmp, "/dev/fd/%d", ro);
    report("dev-fd", write_back(open(tmp, O_WRONLY)));
    close(ro);
    /* an O_PATH fd reopened */
    int op = open(path, O_PATH);
    snprintf(tmp, sizeof tmp, "/proc/self/fd/%d", op);
    report("o-path-reopen", write_back(open(tmp, O_WRONLY)));
    close(op);
    snprintf(tmp, sizeof tmp, "/proc/thread-self/../../sys/%s", rel);
    report("thread-self-path", write_back(open(tmp, O_WRONLY)));
    snprintf(tmp, sizeof tmp, "/proc/self/root/proc/sys/%s", rel);
    report("self-root", write_back(open(tmp, O_WRONLY)));
    /* through a symlink of our own */
    unlink("/tmp/knob-link");
    if (symlink(path, "/tmp/knob-link") == 0) {
        report("symlink", write_back(open("/tmp/knob-link", O_WRONLY)));
        unlink("/tmp/knob-link");
    } else report("symlink", 0);
    /* from a directory fd of /proc/sys */
    int dfd = open("/proc/sys", O_RDONLY | O_DIRECTORY);
    report("openat-dirfd", write_back(openat(dfd, rel, O_WRONLY)));
    report("openat2-beneath", write_back((int)o2(dfd, rel, O_WRONLY, RESOLVE_BENEATH)));
    report("openat2-in-root", write_back((int)o2(dfd, rel, O_WRONLY, RESOLVE_IN_ROOT)));
    report("openat2-plain", write_back((int)o2(dfd, rel, O_WRONLY, 0)));
    report("cwd-relative", fchdir(dfd) == 0 && write_back(open(rel, O_WRONLY)));
    close(dfd);
    chdir("/");
    /* the host's /proc bound into the rootfs at /hostproc */
    snprintf(tmp, sizeof tmp, "/hostproc/sys/%s", rel);
    report("host-proc-bind", write_back(open(tmp, O_WRONLY)));
    report("host-proc-environ", read_fd(open("/hostproc/1/environ", O_RDONLY)));
    report("timer_list", read_fd(open("/proc/timer_list", O_RDONLY)));
    report("sched_debug", read_fd(open("/proc/sched_debug", O_RDONLY)));
    report("sys-firmware", read_fd(open("/sys/firmware", O_RDONLY | O_DIRECTORY)));
    /* sysfs: opening for writing is the step the sandbox refuses (nothing written) */
    int sfd = open("/sys/kernel/mm/transparent_hugepage/enabled", O_WRONLY);
    report("sys-open-write", sfd >= 0);
    if (sfd >= 0) close(sfd);
    return 0;
}
