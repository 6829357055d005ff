/* Reads of host secrets: the kernel log, keys, timers, debugfs, firmware,
 * and the host's processes through its /proc bind-mounted at /hostproc (the
 * privileged profile).  Nothing is written; /proc/kmsg is opened, never
 * read (a read consumes the log for every other reader).  kcore and
 * kallsyms are in kernel.c. */
#include "common.h"
#include <dirent.h>
#include <poll.h>
#include <sys/mount.h>

/* Read up to N-1 bytes of PATH into BUF: count, or -1 with errno (DESC: which step). */
static ssize_t slurp(const char *path, char *buf, size_t n, const char **step) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) { *step = "open"; return -1; }
    size_t got = 0;
    while (got < n - 1) {
        ssize_t r = read(fd, buf + got, n - 1 - got);
        if (r < 0) { int e = errno; close(fd); errno = e; *step = "read"; return -1; }
        if (r == 0) break;
        got += (size_t)r;
    }
    close(fd);
    buf[got] = 0;
    return (ssize_t)got;
}

/* A host-wide file: any content read is host data. */
static int host_file(const char *name, const char *path, const char *what) {
    static char buf[65536];
    const char *step = "";
    ssize_t n = slurp(path, buf, sizeof buf, &step);
    if (n < 0) return BLOCKED("%s %s: %s", step, path, ERR);
    if (n == 0) return BLOCKED("%s reads empty (masked)", path);
    return ESCAPED("read %zd bytes of %s (%s)", n, path, what);
}
static int timer_list(const char *name) {
    return host_file(name, "/proc/timer_list", "every host CPU's timers, with host task names and pids");
}
static int timer_list_hostproc(const char *name) {
    return host_file(name, "/hostproc/timer_list", "the host's procfs: every CPU's timers, host task names");
}
static int sched_debug(const char *name) {
    return host_file(name, "/proc/sched_debug", "every host task's scheduling state");
}

/* /proc/kmsg: opening it passes the CAP_SYSLOG check of syslog(2); reading
 * would consume the log, so only poll says whether host log data waits. */
static int kmsg(const char *name) {
    int fd = open("/proc/kmsg", O_RDONLY | O_NONBLOCK);
    if (fd < 0) return BLOCKED("open /proc/kmsg: %s", ERR);
    struct stat st;
    fstat(fd, &st);
    if (!S_ISREG(st.st_mode)) { close(fd); return BLOCKED("/proc/kmsg is masked (mode %o)", st.st_mode); }
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int r = poll(&p, 1, 0);
    close(fd);
    return ESCAPED("opened the host kernel log /proc/kmsg (syslog permission check passed; %s; not read: "
                   "a read consumes it)", r > 0 ? "data waiting" : "nothing waiting");
}

/* The harness adds a key to its own process keyring (uid 0, user-viewable):
 * listed here means the container sees the host's keys. */
static int keys(const char *name) {
    FILE *f = fopen("/proc/keys", "r");
    if (!f) return BLOCKED("open /proc/keys: %s", ERR);
    const char *want = getenv("ESCAPE_HOST_KEY");
    char line[512];
    int lines = 0, host = 0;
    while (fgets(line, sizeof line, f)) {
        lines++;
        if (want && *want && strstr(line, want)) host = 1;
    }
    fclose(f);
    if (host) return ESCAPED("/proc/keys lists a key of a host process (the harness's %s, among %d)", want, lines);
    if (lines) return ALLOWED("/proc/keys lists %d keys, not the harness's", lines);
    return BLOCKED("/proc/keys lists nothing");
}

static int count_entries(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

/* debugfs: /sys/kernel/debug if something is mounted there, else a new mount. */
static int debugfs(const char *name) {
    const char *dir = "/sys/kernel/debug";
    int n = count_entries(dir), opened = n >= 0, mounted = 0;
    int open_err = errno;
    if (n <= 0) {
        dir = scratch("debugfs");
        if (mount("debugfs", dir, "debugfs", 0, NULL) < 0) {
            if (!opened) return BLOCKED("open /sys/kernel/debug: %s; mount debugfs: %s", strerror(open_err), ERR);
            return BLOCKED("/sys/kernel/debug is empty; mount debugfs: %s", ERR);
        }
        mounted = 1;
        n = count_entries(dir);
    }
    char p[256], buf[256];
    const char *step = "";
    snprintf(p, sizeof p, "%s/sched/debug", dir);
    ssize_t r = slurp(p, buf, sizeof buf, &step);
    if (mounted) umount2(dir, MNT_DETACH);
    if (r > 0) return ESCAPED("%sdebugfs: %d entries, read sched/debug (every host task)", mounted ? "mounted " : "", n);
    if (n > 0) return ESCAPED("%sdebugfs: %d entries of host kernel internals listed", mounted ? "mounted " : "", n);
    return BLOCKED("debugfs shows nothing");
}

static int firmware(const char *name) {
    char buf[256];
    const char *step = "";
    ssize_t n = slurp("/sys/firmware/acpi/tables/DSDT", buf, 5, &step);
    if (n == 4 && memcmp(buf, "DSDT", 4) == 0) return ESCAPED("read the host's ACPI DSDT table (/sys/firmware)");
    int e = errno;
    n = slurp("/sys/firmware/memmap/0/type", buf, sizeof buf, &step);
    if (n > 0) return ESCAPED("read the host's firmware memory map (/sys/firmware/memmap/0/type)");
    return BLOCKED("/sys/firmware/acpi/tables/DSDT: %s; /sys/firmware/memmap/0/type: %s",
                   n == 0 ? "empty" : strerror(e), n == 0 ? "empty" : ERR);
}

/* A host process (the harness's helper, $ESCAPE_HOST_PID, whose command
 * line and environment hold the marker) through the host's /proc. */
static int hostproc_file(const char *name, const char *leaf, const char *what) {
    static char buf[65536];
    char p[128];
    const char *pid = getenv("ESCAPE_HOST_PID"), *want = getenv("ESCAPE_MARKER_CONTENT"), *step = "";
    snprintf(p, sizeof p, "/hostproc/%s/%s", pid ? pid : "1", leaf);
    ssize_t n = slurp(p, buf, sizeof buf, &step);
    if (n < 0) return BLOCKED("%s %s: %s", step, p, ERR);
    if (want && memmem(buf, (size_t)n, want, strlen(want)))
        return ESCAPED("read a host process's %s through %s (the marker)", what, p);
    if (n > 0) return ESCAPED("read %zd bytes of %s (a host process's %s)", n, p, what);
    return BLOCKED("%s reads empty", p);
}
static int hostproc_environ(const char *name) { return hostproc_file(name, "environ", "environment"); }
static int hostproc_cmdline(const char *name) { return hostproc_file(name, "cmdline", "command line"); }
static int hostproc_root(const char *name) {
    char p[128];
    const char *pid = getenv("ESCAPE_HOST_PID");
    snprintf(p, sizeof p, "/hostproc/%s/root", pid ? pid : "1");
    int d = open(p, O_RDONLY | O_DIRECTORY);
    if (d < 0) return BLOCKED("open %s: %s", p, ERR);
    int got = read_marker_at(d, getenv("ESCAPE_MARKER_PATH"));
    int e = errno;
    close(d);
    if (got) return ESCAPED("read the host marker through %s (a host process's root)", p);
    return ALLOWED("opened %s, the marker is not there (%s)", p, strerror(e));
}

static const struct probe probes[] = {
    {"kmsg", kmsg}, {"keys", keys}, {"timer_list", timer_list}, {"timer_list.hostproc", timer_list_hostproc},
    {"sched_debug", sched_debug}, {"debugfs", debugfs}, {"firmware", firmware},
    {"hostproc_environ", hostproc_environ}, {"hostproc_cmdline", hostproc_cmdline},
    {"hostproc_root", hostproc_root},
};
PROBE_MAIN(probes)
