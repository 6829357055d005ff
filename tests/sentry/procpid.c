/* Another uid's /proc/PID files through every open form (tests/test_proc_access.py).
 *
 * `procpid PID` runs as a non-root user; PID is a process of another uid
 * (root: the container's init).  For each target (that process as
 * /proc/PID and /proc/PID/task/PID, and the probe itself as /proc/self and
 * /proc/<own pid>), each file (environ, mem read-only and read-write, the
 * fd/ directory, the fd/0, cwd, root and exe magic links) and each open
 * form, it prints one line
 *
 *     FORM TARGET FILE RESULT
 *
 * RESULT is the errno name of the open, or "ok" and what a read (getdents
 * for a directory) then gave.  The lines name nothing that differs between
 * runtimes (no pids, no fd numbers), so runc's and the sandbox's outputs
 * compare line by line.  O_PATH is not used: the sandbox cannot hand an
 * O_PATH fd to the workload (seccomp's ADDFD refuses one: EBADF), a known
 * difference that is not about permissions. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

struct file { const char *label, *name; int flags; };
static const struct file files[] = {
    {"environ", "environ", O_RDONLY},
    {"mem", "mem", O_RDONLY},
    {"mem-rw", "mem", O_RDWR},
    {"fd-dir", "fd", O_RDONLY | O_DIRECTORY},
    {"fd-0", "fd/0", O_RDONLY},
    {"cwd", "cwd", O_RDONLY | O_DIRECTORY},
    {"root", "root", O_RDONLY | O_DIRECTORY},
    {"exe", "exe", O_RDONLY},
};

static const struct { const char *label; unsigned long long resolve; } resolves[] = {
    {"none", 0},
    {"beneath", RESOLVE_BENEATH},
    {"in-root", RESOLVE_IN_ROOT},
    {"no-magiclinks", RESOLVE_NO_MAGICLINKS},
    {"no-symlinks", RESOLVE_NO_SYMLINKS},
    {"no-xdev", RESOLVE_NO_XDEV},
    {"beneath+no-magiclinks", RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS},
    {"in-root+no-symlinks", RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS},
    {"in-root+no-xdev", RESOLVE_IN_ROOT | RESOLVE_NO_XDEV},
};

static const char *target_label;

static long openat2_(int dirfd, const char *path, int flags, unsigned long long resolve) {
    struct open_how how = {.flags = (unsigned long long)flags, .resolve = resolve};
    return syscall(SYS_openat2, dirfd, path, &how, sizeof how);
}

/* Print the line for an open that returned FD (errno if < 0); closes it. */
static void report(const char *form, const struct file *f, long fd) {
    char res[64];
    if (fd < 0) {
        snprintf(res, sizeof res, "%s", strerrorname_np(errno) ?: "?");
    } else {
        struct stat st;
        char buf[4096];
        long n;
        fstat((int)fd, &st);
        if (S_ISDIR(st.st_mode)) n = syscall(SYS_getdents64, (int)fd, buf, sizeof buf);
        else n = read((int)fd, buf, sizeof buf);
        if (n > 0) snprintf(res, sizeof res, "ok read");
        else if (n == 0) snprintf(res, sizeof res, "ok empty");
        else snprintf(res, sizeof res, "ok read-%s", strerrorname_np(errno) ?: "?");
        close((int)fd);
    }
    printf("%s %s %s %s\n", form, target_label, f->label, res);
}

/* Every form for files below DIR (e.g. "/proc/1"). */
static void forms(const char *dir) {
    char path[256], p2[512], form[96];
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        const struct file *f = &files[i];
        snprintf(path, sizeof path, "%s/%s", dir, f->name);
        report("open", f, open(path, f->flags));
        report("openat-cwd", f, openat(AT_FDCWD, path, f->flags));
        /* creat (O_CREAT|O_WRONLY|O_TRUNC: the names exist, nothing is
         * created) of the files; a directory opened for writing. */
        if (strcmp(f->name, "environ") == 0 || strcmp(f->name, "mem") == 0)
            report("creat", f, creat(path, 0600));
        else if (f->flags & O_DIRECTORY)
            report("open-wronly", f, open(path, O_WRONLY));
        int d = open(dir, O_RDONLY | O_DIRECTORY);
        report("openat-dirfd", f, d < 0 ? -1 : openat(d, f->name, f->flags));
        for (size_t r = 0; r < sizeof resolves / sizeof resolves[0]; r++) {
            snprintf(form, sizeof form, "openat2-dirfd-%s", resolves[r].label);
            report(form, f, d < 0 ? -1 : openat2_(d, f->name, f->flags, resolves[r].resolve));
            snprintf(form, sizeof form, "openat2-abs-%s", resolves[r].label);
            report(form, f, openat2_(AT_FDCWD, path, f->flags, resolves[r].resolve));
        }
        /* The same files through a magic link of the probe's own fd of DIR. */
        snprintf(p2, sizeof p2, "/proc/self/fd/%d/%s", d, f->name);
        report("self-fd", f, d < 0 ? -1 : open(p2, f->flags));
        snprintf(p2, sizeof p2, "/proc/thread-self/fd/%d/%s", d, f->name);
        report("thread-self-fd", f, d < 0 ? -1 : open(p2, f->flags));
        snprintf(p2, sizeof p2, "/dev/fd/%d/%s", d, f->name);
        report("dev-fd", f, d < 0 ? -1 : open(p2, f->flags));
        snprintf(p2, sizeof p2, "/proc/self/root%s", path);
        report("self-root", f, open(p2, f->flags));
        if (d >= 0) close(d);
        /* A symlink the probe makes, to the file. */
        snprintf(p2, sizeof p2, "/tmp/procpid-link");
        unlink(p2);
        if (symlink(path, p2) == 0) {
            report("symlink", f, open(p2, f->flags));
            unlink(p2);
        } else {
            report("symlink", f, -1);
        }
        /* A cwd of DIR. */
        if (chdir(dir) == 0) {
            report("cwd-open", f, open(f->name, f->flags));
            report("cwd-openat", f, openat(AT_FDCWD, f->name, f->flags));
            report("cwd-openat2-beneath", f, openat2_(AT_FDCWD, f->name, f->flags, RESOLVE_BENEATH));
            report("cwd-openat2-in-root", f, openat2_(AT_FDCWD, f->name, f->flags, RESOLVE_IN_ROOT));
            if (chdir("/") < 0) perror("chdir /");
        } else {
            report("cwd-open", f, -1);
        }
        /* readlink (of the magic links; the others say EINVAL). */
        char l[256];
        ssize_t n = readlink(path, l, sizeof l);
        printf("readlink %s %s %s\n", target_label, f->label,
               n >= 0 ? "ok" : strerrorname_np(errno) ?: "?");
    }
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s PID (a process of another uid)\n", argv[0]);
        return 2;
    }
    char dir[64];
    printf("uid %d euid %d\n", getuid(), geteuid());
    target_label = "other";
    snprintf(dir, sizeof dir, "/proc/%s", argv[1]);
    forms(dir);
    target_label = "other-task";
    snprintf(dir, sizeof dir, "/proc/%s/task/%s", argv[1], argv[1]);
    forms(dir);
    target_label = "self";
    forms("/proc/self");
    target_label = "own-pid";
    snprintf(dir, sizeof dir, "/proc/%d", getpid());
    forms(dir);
    target_label = "thread-self";
    forms("/proc/thread-self");
    fflush(stdout);
    return 0;
}
