/* Namespaces, sockets, the terminal, other processes, the runtime binary, UTS. */
#include "common.h"
#include <arpa/inet.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <termios.h>

static int userns(const char *name) {
    if (unshare(CLONE_NEWUSER) < 0) return BLOCKED("unshare(CLONE_NEWUSER): %s", ERR);
    return ALLOWED("created a user namespace (kernel attack surface, no host data)");
}

static int sock(const char *name, int dom, int type, int proto, const char *what) {
    int fd = socket(dom, type, proto);
    if (fd < 0) return BLOCKED("socket(%s): %s", what, ERR);
    close(fd);
    return ALLOWED("socket(%s) created", what);
}
static int af_packet(const char *name) { return sock(name, AF_PACKET, SOCK_RAW, htons(3), "AF_PACKET, SOCK_RAW"); }
static int raw_inet(const char *name) { return sock(name, AF_INET, SOCK_RAW, 1, "AF_INET, SOCK_RAW, ICMP"); }
static int af_alg(const char *name) { return sock(name, 38, SOCK_SEQPACKET, 0, "AF_ALG"); }
static int af_vsock(const char *name) { return sock(name, 40, SOCK_STREAM, 0, "AF_VSOCK"); }

/* The harness gives the container a host pty as stdin and reads back what
 * was injected (ESCAPED if the bytes reached the host side). */
static int tiocsti(const char *name) {
    int ok = 0, err = 0;
    const char *s = "#escape-probe-injected\n";
    for (const char *p = s; *p; p++) {
        if (ioctl(0, TIOCSTI, p) < 0) { err = errno; break; }
        ok++;
    }
    if (!ok) return BLOCKED("ioctl(0, TIOCSTI): %s (isatty=%d)", strerror(err), isatty(0));
    return ALLOWED("injected %d bytes into fd 0 (harness checks the host side)", ok);
}

static volatile unsigned long secret = 0x5ec12e7;
static int with_child(const char *name, int (*fn)(const char *name)) {
    /* Fork: the child attacks pid 1 (the probe's parent under runc; the
     * container's init in any case). */
    fflush(stdout);
    pid_t c = fork();
    if (c < 0) return BLOCKED("fork: %s", ERR);
    if (c == 0) _exit(fn(name));
    int st;
    waitpid(c, &st, 0);
    return 0;
}
static int ptrace_child(const char *name) {
    if (ptrace(PTRACE_ATTACH, 1, 0, 0) < 0) return BLOCKED("ptrace(PTRACE_ATTACH, 1): %s", ERR);
    int st;
    waitpid(1, &st, __WALL);
    ptrace(PTRACE_DETACH, 1, 0, 0);
    char exe[256] = "";
    ssize_t n = readlink("/proc/1/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = 0;
    return ALLOWED("attached to the container's pid 1 (%s)", exe);
}
static int vm_child(const char *name) {
    unsigned long got = 0;
    struct iovec l = {&got, sizeof got}, r = {(void *)&secret, sizeof secret};
    if (process_vm_readv(1, &l, 1, &r, 1, 0) < 0) return BLOCKED("process_vm_readv(1): %s", ERR);
    return ALLOWED("read pid 1's memory (%s)", got == secret ? "the container's own pid 1" : "another image");
}
static int ptrace_pid1(const char *name) { return with_child(name, ptrace_child); }
static int process_vm_readv_pid1(const char *name) { return with_child(name, vm_child); }

/* CVE-2019-5736: open the runtime's binary for writing through /proc/PID/exe.
 * Only opens (O_WRONLY, no O_TRUNC): nothing is ever written. */
static int exe_write(const char *name, const char *path) {
    int fd = open(path, O_WRONLY);
    if (fd < 0) {
        char link[256] = "";
        ssize_t n = readlink(path, link, sizeof link - 1);
        link[n > 0 ? n : 0] = 0;
        return BLOCKED("open(%s -> %s, O_WRONLY): %s", path, link, ERR);
    }
    struct stat a, b;
    fstat(fd, &a);
    close(fd);
    const char *self = getenv("ESCAPE_PROBE_SELF");
    if (self && stat(self, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino)
        return ALLOWED("%s is the probe's own binary in the container rootfs (writable rootfs)", path);
    return ESCAPED("%s opened for writing and it is not a container file (runtime binary?)", path);
}
static int proc_self_exe(const char *name) { return exe_write(name, "/proc/self/exe"); }
static int proc1_exe_child(const char *name) { return exe_write(name, "/proc/1/exe"); }

static int sethostname_(const char *name) {
    if (sethostname("escape-probe", 12) < 0) return BLOCKED("sethostname: %s", ERR);
    return ALLOWED("hostname changed in the container's UTS namespace (harness checks the host)");
}

static int proc1_exe_w(const char *name) { return with_child(name, proc1_exe_child); }

static const struct probe probes[] = {
    {"userns", userns}, {"af_packet", af_packet}, {"raw_inet", raw_inet}, {"af_alg", af_alg},
    {"af_vsock", af_vsock}, {"tiocsti", tiocsti}, {"ptrace_pid1", ptrace_pid1},
    {"process_vm_readv_pid1", process_vm_readv_pid1}, {"proc_self_exe_write", proc_self_exe},
    {"proc1_exe_write", proc1_exe_w}, {"sethostname", sethostname_},
};
PROBE_MAIN(probes)
