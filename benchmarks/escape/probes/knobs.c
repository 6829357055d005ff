/* Host-wide kernel knobs, written under every spelling of their path.
 *
 * A probe is KNOB (the direct path) or KNOB.SPELLING:
 *   symlink      a symlink the probe makes in a writable directory
 *   fd_reopen    /proc/self/fd/N of a read-only fd of the knob, opened for writing
 *   opath_reopen the same with an O_PATH fd
 *   thread_self  the same as fd_reopen through /proc/thread-self/fd/N
 *   self_root    /proc/self/root/... (the caller's root, a magic link)
 *   hostproc     the host's /proc bind-mounted at /hostproc (privileged
 *                profile): /hostproc/sys/... for a /proc knob, for the
 *                others the root of a host process (the harness's helper,
 *                $ESCAPE_HOST_PID: the host's init refuses even host root
 *                here), /hostproc/PID/root/sys/...
 *   dirfd        openat from a directory fd of the knob's tree (/proc/sys, /sys...)
 *   openat2      openat2(RESOLVE_BENEATH) from that directory fd
 *   cwd          a relative open from a cwd in the knob's directory
 *
 * What is written is the value already there, read through the same
 * spelling (release_agent and uevent_helper: "\n", which keeps them empty;
 * binfmt_misc's register: an empty rule, which its parser rejects with
 * EINVAL after every permission check; sysrq-trigger: 'h', help text to the
 * kernel log).  A write that gets through changes nothing, and the harness
 * compares and restores the host's values after each probe anyway. */
#include "common.h"
#include <dirent.h>
#include <linux/openat2.h>
#include <sys/mount.h>
#include <sys/syscall.h>

enum { DIRECT, SYMLINK, FD_REOPEN, OPATH_REOPEN, THREAD_SELF, SELF_ROOT, HOSTPROC, DIRFD, OPENAT2, CWD,
       NSPELLINGS };
static const char *const spelling_names[NSPELLINGS] = {
    "", "symlink", "fd_reopen", "opath_reopen", "thread_self", "self_root", "hostproc", "dirfd", "openat2",
    "cwd"};
#define ALL_SPELLINGS ((1u << NSPELLINGS) - 1)
#define ONLY(s) (1u << (s))

enum { REWRITE, REWRITE_EMPTY_NL, REGISTER, SYSRQ };

struct knob {
    const char *name;
    const char *path;               /* the host's path (and the container's, unless locate) */
    const char *top;                /* dirfd/openat2 start here (NULL: the file's directory) */
    const char *(*locate)(void);    /* the container's path, or NULL (why: in `located_why`) */
    int how;
    unsigned spellings;
};

static char located[256], located_why[256];

static int exists(const char *p) { struct stat st; return stat(p, &st) == 0; }

/* FILE in a cgroup v1 hierarchy of the container's cgroup mount (memory first). */
static const char *cgroup_file(const char *leaf) {
    snprintf(located, sizeof located, "/sys/fs/cgroup/memory/%s", leaf);
    if (exists(located)) return located;
    DIR *d = opendir("/sys/fs/cgroup");
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        snprintf(located, sizeof located, "/sys/fs/cgroup/%.100s/%s", e->d_name, leaf);
        if (exists(located)) { closedir(d); return located; }
    }
    if (d) closedir(d);
    snprintf(located_why, sizeof located_why, "no %s in the container's cgroup mount", leaf);
    return NULL;
}
static const char *locate_notify(void) { return cgroup_file("notify_on_release"); }

/* release_agent exists only at a v1 hierarchy's root: the container's cgroup
 * mount shows its own cgroup (a cgroup namespace); a new v1 mount (the 2019
 * "release_agent" escape) shows the root unless the namespace hides it. */
static const char *locate_release_agent(void) {
    if (cgroup_file("release_agent")) return located;
    const char *m = scratch("cgroup-v1");
    static const char *const ctrls[] = {"memory", "pids", "cpu", "devices", "freezer", "none,name=escape"};
    int err = 0;
    for (size_t i = 0; i < sizeof ctrls / sizeof ctrls[0]; i++) {
        if (mount("cgroup", m, "cgroup", 0, ctrls[i]) == 0) {
            snprintf(located, sizeof located, "%s/release_agent", m);
            if (exists(located)) return located;
            umount2(m, MNT_DETACH);
            snprintf(located_why, sizeof located_why,
                     "no release_agent in the container's cgroup mount nor in a new v1 mount (-o %s) "
                     "(a cgroup namespace: the hierarchy's root is hidden)", ctrls[i]);
            return NULL;
        }
        err = errno;
    }
    snprintf(located_why, sizeof located_why,
             "no release_agent in the container's cgroup mount; mount of a v1 hierarchy: %s", strerror(err));
    return NULL;
}

/* binfmt_misc: the container's /proc/sys/fs/binfmt_misc if mounted there,
 * else a new mount (the host's instance: the container is in the host's
 * user namespace). */
static const char *locate_binfmt(void) {
    const char *reg = "/proc/sys/fs/binfmt_misc/register";
    if (exists(reg)) return reg;
    const char *m = scratch("binfmt");
    if (mount("binfmt_misc", m, "binfmt_misc", 0, NULL) < 0) {
        snprintf(located_why, sizeof located_why, "no %s; mount binfmt_misc: %s", reg, ERR);
        return NULL;
    }
    snprintf(located, sizeof located, "%s/register", m);
    return located;
}

static const struct knob knobs[] = {
    {"core_pattern", "/proc/sys/kernel/core_pattern", "/proc/sys", NULL, REWRITE, ALL_SPELLINGS},
    {"vm_dirty_ratio", "/proc/sys/vm/dirty_ratio", "/proc/sys", NULL, REWRITE, ALL_SPELLINGS},
    {"sysrq_trigger", "/proc/sysrq-trigger", "/proc", NULL, SYSRQ, ONLY(DIRECT) | ONLY(HOSTPROC)},
    {"uevent_helper", "/sys/kernel/uevent_helper", "/sys", NULL, REWRITE_EMPTY_NL, ONLY(DIRECT)},
    {"ksm_pages_to_scan", "/sys/kernel/mm/ksm/pages_to_scan", "/sys", NULL, REWRITE, ALL_SPELLINGS},
    {"printk_time", "/sys/module/printk/parameters/time", "/sys", NULL, REWRITE, ALL_SPELLINGS},
    {"notify_on_release", "/sys/fs/cgroup/memory/notify_on_release", "/sys/fs/cgroup", locate_notify,
     REWRITE, ALL_SPELLINGS},
    {"release_agent", "/sys/fs/cgroup/memory/release_agent", NULL, locate_release_agent,
     REWRITE_EMPTY_NL, ONLY(DIRECT) | ONLY(FD_REOPEN) | ONLY(HOSTPROC)},
    {"binfmt_misc", "/proc/sys/fs/binfmt_misc/register", NULL, locate_binfmt, REGISTER,
     ONLY(DIRECT) | ONLY(HOSTPROC)},
};

static void split_dir(const char *path, const char *top, char *dir, size_t dn, const char **rel) {
    size_t tl = top ? strlen(top) : 0;
    if (top && strncmp(path, top, tl) == 0 && path[tl] == '/') {
        snprintf(dir, dn, "%s", top);
        *rel = path + tl + 1;
        return;
    }
    const char *slash = strrchr(path, '/');
    snprintf(dir, dn, "%.*s", (int)(slash - path), path);
    if (!dir[0]) snprintf(dir, dn, "/");
    *rel = slash + 1;
}

/* Open PATH with FLAGS under spelling SP; DESC says how.  fd, or -1 with errno. */
static int spelled_open(int sp, const struct knob *k, const char *path, int flags, char *desc, size_t dn) {
    char p[512], dir[256];
    const char *rel;
    int fd, e;
    switch (sp) {
    case SYMLINK:
        snprintf(p, sizeof p, "%s/%s", scratch("links"), k->name);
        unlink(p);
        if (symlink(path, p) < 0) {
            e = errno;
            snprintf(desc, dn, "%s -> %s (symlink not made: %s)", p, path, strerror(e));
            errno = e;
            return -1;
        }
        snprintf(desc, dn, "%s -> %s", p, path);
        fd = open(p, flags);
        e = errno;
        unlink(p);
        errno = e;
        return fd;
    case FD_REOPEN:
    case OPATH_REOPEN:
    case THREAD_SELF: {
        int r = open(path, sp == OPATH_REOPEN ? O_PATH : O_RDONLY);
        if (r < 0) {
            snprintf(desc, dn, "%s (%s, to reopen)", path, sp == OPATH_REOPEN ? "O_PATH" : "read-only");
            return -1;
        }
        snprintf(p, sizeof p, sp == THREAD_SELF ? "/proc/thread-self/fd/%d" : "/proc/self/fd/%d", r);
        snprintf(desc, dn, "%s (%s fd of %s)", p, sp == OPATH_REOPEN ? "an O_PATH" : "a read-only", path);
        fd = open(p, flags);
        e = errno;
        close(r);
        errno = e;
        return fd;
    }
    case SELF_ROOT:
        snprintf(p, sizeof p, "/proc/self/root%s", path);
        snprintf(desc, dn, "%s", p);
        return open(p, flags);
    case HOSTPROC:
        if (strncmp(path, "/proc/", 6) == 0) snprintf(p, sizeof p, "/hostproc/%s", path + 6);
        else snprintf(p, sizeof p, "/hostproc/%s/root%s", getenv("ESCAPE_HOST_PID") ?: "1", path);
        snprintf(desc, dn, "%s", p);
        return open(p, flags);
    case DIRFD:
    case OPENAT2: {
        split_dir(path, k->top, dir, sizeof dir, &rel);
        int d = open(dir, O_RDONLY | O_DIRECTORY);
        if (d < 0) {
            snprintf(desc, dn, "directory %s (for %s)", dir, sp == DIRFD ? "openat" : "openat2");
            return -1;
        }
        if (sp == DIRFD) {
            snprintf(desc, dn, "openat(fd of %s, \"%s\")", dir, rel);
            fd = openat(d, rel, flags);
        } else {
            struct open_how how = {.flags = (unsigned)flags, .resolve = RESOLVE_BENEATH};
            snprintf(desc, dn, "openat2(fd of %s, \"%s\", RESOLVE_BENEATH)", dir, rel);
            fd = (int)syscall(SYS_openat2, d, rel, &how, sizeof how);
        }
        e = errno;
        close(d);
        errno = e;
        return fd;
    }
    case CWD:
        split_dir(path, NULL, dir, sizeof dir, &rel);
        if (chdir(dir) < 0) {
            snprintf(desc, dn, "chdir %s", dir);
            return -1;
        }
        snprintf(desc, dn, "\"%s\" from cwd %s", rel, dir);
        fd = open(rel, flags);
        e = errno;
        if (chdir("/") < 0) { /* the probe ends here anyway */ }
        errno = e;
        return fd;
    default:
        snprintf(desc, dn, "%s", path);
        return open(path, flags);
    }
}

static int attempt(const char *name, const struct knob *k, int sp) {
    char desc[1200], old[4096];
    const char *path = k->path;
    if (sp != HOSTPROC && k->locate && !(path = k->locate())) return BLOCKED("%s", located_why);
    /* The value there now, read through the same spelling. */
    ssize_t n = -1;
    int rfd = spelled_open(sp, k, path, O_RDONLY, desc, sizeof desc);
    if (rfd >= 0) {
        n = read(rfd, old, sizeof old - 1);
        close(rfd);
    }
    int fd = spelled_open(sp, k, path, O_WRONLY, desc, sizeof desc);
    if (fd < 0) return BLOCKED("open %s for writing: %s", desc, ERR);
    const char *buf = old;
    size_t len = n > 0 ? (size_t)n : 0;
    if (k->how == REGISTER) buf = "\n", len = 1;
    else if (k->how == SYSRQ) buf = "h", len = 1;
    else if (k->how == REWRITE_EMPTY_NL && n >= 0 && len <= 1) buf = "\n", len = 1;
    else if (n <= 0) {
        close(fd);
        return ALLOWED("opened %s for writing; nothing written (the old value %s)", desc,
                       n < 0 ? "could not be read" : "is empty");
    }
    ssize_t w = write(fd, buf, len);
    int e = errno;
    close(fd);
    if (w >= 0)
        return ESCAPED("wrote %s (host-wide; %s)", desc,
                       k->how == SYSRQ ? "'h': help text to the host's kernel log" : "the value already there");
    if (k->how == REGISTER && e == EINVAL)
        return ESCAPED("the write to %s reached the rule parser (EINVAL on an empty rule): a valid rule "
                       "registers an interpreter for every exec on the host", desc);
    return BLOCKED("opened %s for writing, the write was refused: %s", desc, strerror(e));
}

int main(int argc, char **argv) {
    char probe[128];
    size_t nk = sizeof knobs / sizeof knobs[0];
    for (size_t i = 0; i < nk; i++)
        for (int sp = 0; sp < NSPELLINGS; sp++) {
            if (!(knobs[i].spellings & (1u << sp))) continue;
            snprintf(probe, sizeof probe, "%s%s%s", knobs[i].name, sp ? "." : "", spelling_names[sp]);
            if (argc == 2 && strcmp(argv[1], "--list") == 0) puts(probe);
            else if (argc == 2 && strcmp(argv[1], probe) == 0) return attempt(probe, &knobs[i], sp);
        }
    if (argc == 2 && strcmp(argv[1], "--list") == 0) return 0;
    fprintf(stderr, "usage: %s --list | PROBE\n", argv[0]);
    return 2;
}
