/* File-semantics probe: one fixed script of name and attribute changes in the
 * current directory, one line per step "<step> <ret> <errno> [facts]".  Run
 * natively (chrooted in a scratch root) and under the sentry (same scratch
 * root): the outputs must be identical.  No inode numbers, no times of now.
 * Raw syscalls so libc does not interfere.  Argument "proc": the /proc
 * checks instead (not comparable natively without a procfs: asserted). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/xattr.h>
#include <unistd.h>

#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452
#endif
#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE 1
#define RENAME_EXCHANGE 2
#endif

static void show(const char *what, long ret) {
    printf("%s %ld %d\n", what, ret < 0 ? -1 : ret, ret < 0 ? errno : 0);
    fflush(stdout);
}

static void st(const char *what, const char *path, int follow) {
    struct stat s;
    long r = follow ? syscall(SYS_stat, path, &s) : syscall(SYS_lstat, path, &s);
    if (r < 0) { show(what, r); return; }
    /* Only times the script set are comparable (not "now"). */
    long ms = s.st_mtim.tv_sec < 1700000000 ? (long)s.st_mtim.tv_sec : 0;
    long mn = s.st_mtim.tv_sec < 1700000000 ? (long)s.st_mtim.tv_nsec : 0;
    printf("%s 0 0 mode=%o size=%ld nlink=%ld uid=%d gid=%d mtime=%ld.%09ld rdev=%d:%d\n", what,
           s.st_mode, (long)s.st_size, (long)s.st_nlink, s.st_uid, s.st_gid,
           ms, mn, major(s.st_rdev), minor(s.st_rdev));
    fflush(stdout);
}

static void cat(const char *what, const char *path) {
    int fd = syscall(SYS_openat, AT_FDCWD, path, O_RDONLY);
    if (fd < 0) { show(what, fd); return; }
    char buf[256] = {0};
    long n = read(fd, buf, sizeof buf - 1);
    char *nl = strchr(buf, '\n');
    if (nl) *nl = 0;
    printf("%s %ld 0 %s\n", what, n, buf);
    fflush(stdout);
    close(fd);
}

static void rl(const char *what, const char *path) {
    char buf[512] = {0};
    long r = syscall(SYS_readlink, path, buf, sizeof buf - 1);
    if (r < 0) { show(what, r); return; }
    printf("%s %ld 0 %s\n", what, r, buf);
    fflush(stdout);
}

static int cmp(const void *a, const void *b) { return strcmp(*(char **)a, *(char **)b); }

static void ls(const char *what, const char *path) {
    int fd = syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_DIRECTORY);
    if (fd < 0) { show(what, fd); return; }
    char buf[8192];
    char *names[256];
    int k = 0;
    long n;
    while ((n = syscall(SYS_getdents64, fd, buf, sizeof buf)) > 0) {
        for (long off = 0; off < n;) {
            struct dirent64 *d = (struct dirent64 *)(buf + off);
            if (k < 256) names[k++] = strdup(d->d_name);
            off += d->d_reclen;
        }
    }
    close(fd);
    qsort(names, k, sizeof *names, cmp);
    printf("%s %d 0", what, k);
    for (int i = 0; i < k; i++) printf(" %s", names[i]);
    printf("\n");
    fflush(stdout);
}

static void files(void) {
    syscall(SYS_umask, 022);
    show("mkdir", syscall(SYS_mkdir, "d", 0777));
    st("mkdir-stat", "d", 1);
    show("mkdir-again", syscall(SYS_mkdir, "d", 0777));
    show("mkdir-slash", syscall(SYS_mkdir, "d2/", 0700));
    show("mkdir-dot", syscall(SYS_mkdir, ".", 0777));
    show("mkdir-dotdot", syscall(SYS_mkdir, "d/..", 0777));
    show("mkdir-noparent", syscall(SYS_mkdir, "nodir/x", 0777));
    show("mkdirat", syscall(SYS_mkdirat, AT_FDCWD, "d/sub", 0750));
    int fd = syscall(SYS_openat, AT_FDCWD, "f", O_CREAT | O_WRONLY | O_EXCL, 0666);
    show("creat", fd >= 0 ? 0 : -1);
    if (fd >= 0) { write(fd, "abc\n", 4); close(fd); }
    st("creat-stat", "f", 1);
    show("rename", syscall(SYS_rename, "f", "g"));
    show("rename-gone", syscall(SYS_rename, "f", "x"));
    show("rename-file-over-dir", syscall(SYS_rename, "g", "d"));
    show("rename-dir-over-file", syscall(SYS_rename, "d2", "g"));
    show("rename-into-self", syscall(SYS_rename, "d", "d/sub/d"));
    show("rename-dot", syscall(SYS_rename, "d/.", "e"));
    show("rename-trailing-file", syscall(SYS_rename, "g/", "h"));
    show("rename-trailing-dir", syscall(SYS_rename, "d2/", "d3/"));
    show("renameat2-noreplace", syscall(SYS_renameat2, AT_FDCWD, "g", AT_FDCWD, "d", RENAME_NOREPLACE));
    show("renameat2-exchange", syscall(SYS_renameat2, AT_FDCWD, "g", AT_FDCWD, "d3", RENAME_EXCHANGE));
    st("exchanged-g", "g", 1);
    st("exchanged-d3", "d3", 1);
    show("renameat2-exchange-back", syscall(SYS_renameat2, AT_FDCWD, "g", AT_FDCWD, "d3", RENAME_EXCHANGE));
    show("renameat2-badflags", syscall(SYS_renameat2, AT_FDCWD, "g", AT_FDCWD, "d3", RENAME_EXCHANGE | RENAME_NOREPLACE));
    show("renameat2-exchange-missing", syscall(SYS_renameat2, AT_FDCWD, "g", AT_FDCWD, "zz", RENAME_EXCHANGE));
    show("link", syscall(SYS_link, "g", "h"));
    st("link-stat", "g", 1);
    show("link-exists", syscall(SYS_link, "g", "h"));
    show("link-dir", syscall(SYS_link, "d", "dl"));
    show("link-dotdot", syscall(SYS_link, "d/..", "dl"));
    show("symlink", syscall(SYS_symlink, "g", "s"));
    show("symlink-abs", syscall(SYS_symlink, "/work/g", "sabs"));
    show("symlink-exists", syscall(SYS_symlink, "x", "g"));
    show("symlink-empty", syscall(SYS_symlink, "", "sempty"));
    show("linkat-nofollow", syscall(SYS_linkat, AT_FDCWD, "s", AT_FDCWD, "hs", 0));
    st("linkat-nofollow-stat", "hs", 0);
    show("linkat-follow", syscall(SYS_linkat, AT_FDCWD, "sabs", AT_FDCWD, "hf", AT_SYMLINK_FOLLOW));
    st("linkat-follow-stat", "hf", 0);
    show("linkat-badflags", syscall(SYS_linkat, AT_FDCWD, "g", AT_FDCWD, "hx", 0x8));
    rl("readlink", "s");
    rl("readlink-abs", "sabs");
    rl("readlink-file", "g");
    cat("cat-via-abs", "sabs");
    st("lstat-s", "s", 0);
    show("chmod", syscall(SYS_chmod, "g", 0640));
    st("chmod-stat", "g", 1);
    show("chmod-via-symlink", syscall(SYS_chmod, "s", 0604));
    st("chmod-via-symlink-stat", "g", 1);
    show("fchmodat2-nofollow-link", syscall(SYS_fchmodat2, AT_FDCWD, "s", 0600, AT_SYMLINK_NOFOLLOW));
    show("fchmodat-dir", syscall(SYS_fchmodat, AT_FDCWD, "d", 01777));
    st("fchmodat-dir-stat", "d", 1);
    show("chown", syscall(SYS_chown, "g", 1000, 1001));
    st("chown-stat", "g", 1);
    show("lchown", syscall(SYS_lchown, "s", 1002, -1));
    st("lchown-stat", "s", 0);
    show("fchownat-empty", syscall(SYS_fchownat, AT_FDCWD, "", 0, 0, 0));
    struct timeval tv[2] = {{1000000000, 5}, {1200000000, 7}};
    show("utimes", syscall(SYS_utimes, "g", tv));
    st("utimes-stat", "g", 1);
    struct timeval bad[2] = {{1, 1000000}, {1, 0}};
    show("utimes-badusec", syscall(SYS_utimes, "g", bad));
    struct timespec ts[2] = {{1300000000, 123}, {1300000001, 456789}};
    show("utimensat", syscall(SYS_utimensat, AT_FDCWD, "g", ts, 0));
    st("utimensat-stat", "g", 1);
    struct timespec omit[2] = {{0, UTIME_OMIT}, {1400000000, 0}};
    show("utimensat-nofollow", syscall(SYS_utimensat, AT_FDCWD, "s", omit, AT_SYMLINK_NOFOLLOW));
    st("utimensat-nofollow-stat", "s", 0);
    fd = syscall(SYS_openat, AT_FDCWD, "g", O_RDONLY);
    struct timespec fts[2] = {{1500000000, 0}, {1500000000, 42}};
    show("futimens", syscall(SYS_utimensat, fd, NULL, fts, 0));
    show("futimens-flags", syscall(SYS_utimensat, fd, NULL, fts, AT_SYMLINK_NOFOLLOW));
    st("futimens-stat", "g", 1);
    show("fchmod", syscall(SYS_fchmod, fd, 0644));
    show("fchown", syscall(SYS_fchown, fd, 0, 0));
    close(fd);
    struct utimbuf { long a, m; } ub = {1600000000, 1600000001};
    show("utime", syscall(SYS_utime, "g", &ub));
    st("utime-stat", "g", 1);
    show("truncate", syscall(SYS_truncate, "g", 10));
    st("truncate-stat", "g", 1);
    show("truncate-dir", syscall(SYS_truncate, "d", 0));
    show("truncate-neg", syscall(SYS_truncate, "g", -1));
    show("truncate-via-symlink", syscall(SYS_truncate, "s", 2));
    st("truncate-via-symlink-stat", "g", 1);
    show("setxattr", syscall(SYS_setxattr, "g", "user.k", "value", 5, 0));
    show("setxattr-create-exists", syscall(SYS_setxattr, "g", "user.k", "v", 1, XATTR_CREATE));
    show("setxattr-replace-missing", syscall(SYS_setxattr, "g", "user.z", "v", 1, XATTR_REPLACE));
    show("setxattr-badflags", syscall(SYS_setxattr, "g", "user.k", "v", 1, 8));
    show("setxattr-noname", syscall(SYS_setxattr, "g", "", "v", 1, 0));
    char xb[64] = {0};
    show("getxattr-size", syscall(SYS_getxattr, "g", "user.k", NULL, 0));
    long r = syscall(SYS_getxattr, "g", "user.k", xb, sizeof xb);
    printf("getxattr %ld %d %s\n", r, r < 0 ? errno : 0, r > 0 ? xb : "-");
    show("getxattr-small", syscall(SYS_getxattr, "g", "user.k", xb, 2));
    show("getxattr-missing", syscall(SYS_getxattr, "g", "user.nope", xb, sizeof xb));
    show("getxattr-via-symlink", syscall(SYS_getxattr, "s", "user.k", xb, sizeof xb));
    show("lgetxattr-symlink", syscall(SYS_lgetxattr, "s", "user.k", xb, sizeof xb));
    show("lsetxattr-symlink", syscall(SYS_lsetxattr, "s", "user.k", "v", 1, 0));
    memset(xb, 0, sizeof xb);
    r = syscall(SYS_listxattr, "g", xb, sizeof xb);
    printf("listxattr %ld %d %s\n", r, r < 0 ? errno : 0, r > 0 ? xb : "-");
    show("listxattr-size", syscall(SYS_listxattr, "g", NULL, 0));
    show("llistxattr", syscall(SYS_llistxattr, "s", NULL, 0));
    show("removexattr", syscall(SYS_removexattr, "g", "user.k"));
    show("removexattr-again", syscall(SYS_removexattr, "g", "user.k"));
    /* The fd variants (cp -a, tar and rsync use them). */
    int xfd = open("g", O_RDONLY | O_CLOEXEC);
    show("fsetxattr", syscall(SYS_fsetxattr, xfd, "user.f", "fval", 4, 0));
    show("fsetxattr-create-exists", syscall(SYS_fsetxattr, xfd, "user.f", "v", 1, XATTR_CREATE));
    memset(xb, 0, sizeof xb);
    r = syscall(SYS_fgetxattr, xfd, "user.f", xb, sizeof xb);
    printf("fgetxattr %ld %d %s\n", r, r < 0 ? errno : 0, r > 0 ? xb : "-");
    show("fgetxattr-small", syscall(SYS_fgetxattr, xfd, "user.f", xb, 2));
    show("fgetxattr-missing", syscall(SYS_fgetxattr, xfd, "user.nope", xb, sizeof xb));
    memset(xb, 0, sizeof xb);
    r = syscall(SYS_flistxattr, xfd, xb, sizeof xb);
    printf("flistxattr %ld %d %s\n", r, r < 0 ? errno : 0, r > 0 ? xb : "-");
    show("fremovexattr", syscall(SYS_fremovexattr, xfd, "user.f"));
    show("fremovexattr-again", syscall(SYS_fremovexattr, xfd, "user.f"));
    show("fgetxattr-badfd", syscall(SYS_fgetxattr, 999, "user.f", xb, sizeof xb));
    close(xfd);
    int xpath = open("g", O_PATH | O_CLOEXEC);
    show("fgetxattr-opath", syscall(SYS_fgetxattr, xpath, "user.f", xb, sizeof xb));
    close(xpath);
    show("mknod-fifo", syscall(SYS_mknod, "p", S_IFIFO | 0666, 0));
    st("mknod-fifo-stat", "p", 0);
    show("mknod-reg", syscall(SYS_mknod, "r", 0644, 0));
    st("mknod-reg-stat", "r", 0);
    show("mknod-sock", syscall(SYS_mknodat, AT_FDCWD, "so", S_IFSOCK | 0600, 0));
    show("mknod-chr-null", syscall(SYS_mknod, "null", S_IFCHR | 0666, makedev(1, 3)));
    st("mknod-chr-null-stat", "null", 0);
    show("mknod-exists", syscall(SYS_mknod, "p", S_IFIFO | 0666, 0));
    show("mknod-badtype", syscall(SYS_mknod, "bt", 0170000 | 0666, 0));
    int ifd = inotify_init1(IN_CLOEXEC);
    show("inotify_add_watch", syscall(SYS_inotify_add_watch, ifd, "d", IN_CREATE) > 0 ? 1 : -1);
    show("inotify_add_watch-onlydir", syscall(SYS_inotify_add_watch, ifd, "g", IN_CREATE | IN_ONLYDIR));
    show("inotify_add_watch-missing", syscall(SYS_inotify_add_watch, ifd, "missing", IN_CREATE));
    syscall(SYS_mkdir, "d/newdir", 0777);
    char ev[512];
    long n = read(ifd, ev, sizeof ev);
    printf("inotify-event %d %s\n", n > 0, n > 0 ? ((struct inotify_event *)ev)->name : "-");
    close(ifd);
    /* AF_UNIX by path */
    int srv = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un su = {.sun_family = AF_UNIX};
    strcpy(su.sun_path, "d/sock");
    show("bind", syscall(SYS_bind, srv, &su, sizeof su));
    st("bind-stat", "d/sock", 0);
    show("bind-again", syscall(SYS_bind, socket(AF_UNIX, SOCK_STREAM, 0), &su, sizeof su));
    show("listen", listen(srv, 4));
    int cli = socket(AF_UNIX, SOCK_STREAM, 0);
    show("symlink-sock", syscall(SYS_symlink, "d/sock", "sl"));
    strcpy(su.sun_path, "sl");
    show("connect-via-symlink", syscall(SYS_connect, cli, &su, sizeof su));
    int acc = accept(srv, NULL, NULL);
    write(cli, "ping", 4);
    char pb[8] = {0};
    read(acc, pb, 4);
    printf("unix-data %s\n", pb);
    strcpy(su.sun_path, "g");
    show("connect-not-socket", syscall(SYS_connect, socket(AF_UNIX, SOCK_STREAM, 0), &su, sizeof su));
    strcpy(su.sun_path, "missing");
    show("connect-missing", syscall(SYS_connect, socket(AF_UNIX, SOCK_STREAM, 0), &su, sizeof su));
    show("connect-badlen", syscall(SYS_connect, socket(AF_UNIX, SOCK_STREAM, 0), &su, 200));
    struct sockaddr_un ab = {.sun_family = AF_UNIX};
    strcpy(ab.sun_path + 1, "abstract-probe-sentry");
    int as = socket(AF_UNIX, SOCK_STREAM, 0);
    show("bind-abstract", syscall(SYS_bind, as, &ab, sizeof ab));
    /* escapes stay inside */
    show("symlink-escape", syscall(SYS_symlink, "../../../../../../../../etc/hostname", "esc"));
    cat("cat-escape", "esc");
    show("symlink-escape-abs", syscall(SYS_symlink, "/etc/hostname", "esca"));
    cat("cat-escape-abs", "esca");
    cat("cat-dotdot-storm", "../../../../../../../../../../etc/hostname");
    show("mkdir-escape", syscall(SYS_mkdir, "../../../../../../../tmp/sentry-escape-probe", 0777));
    show("rmdir-escape", syscall(SYS_rmdir, "../../../../../../../tmp/sentry-escape-probe"));
    show("chmod-escape", syscall(SYS_chmod, "esca", 0777));
    show("unlink-via-escape-dir", syscall(SYS_unlink, "../../../../../../etc/hostname"));
    cat("cat-root-secret", "/../../secret");
    /* removal */
    show("unlink", syscall(SYS_unlink, "h"));
    show("unlink-dir", syscall(SYS_unlink, "d"));
    show("unlink-trailing-file", syscall(SYS_unlink, "g/"));
    show("unlink-trailing-dir", syscall(SYS_unlink, "d/"));
    show("unlink-missing", syscall(SYS_unlink, "nope"));
    show("unlinkat-badflags", syscall(SYS_unlinkat, AT_FDCWD, "g", 0x100));
    show("rmdir-file", syscall(SYS_rmdir, "g"));
    show("rmdir-dot", syscall(SYS_rmdir, "d/."));
    show("rmdir-dotdot", syscall(SYS_rmdir, "d/sub/.."));
    show("rmdir-root", syscall(SYS_rmdir, "/"));
    show("rmdir-notempty", syscall(SYS_rmdir, "d"));
    show("unlinkat-removedir", syscall(SYS_unlinkat, AT_FDCWD, "d/sub", AT_REMOVEDIR));
    int dfd = syscall(SYS_openat, AT_FDCWD, "d", O_RDONLY | O_DIRECTORY);
    show("mkdirat-dirfd", syscall(SYS_mkdirat, dfd, "viafd", 0700));
    show("renameat-dirfd", syscall(SYS_renameat, dfd, "viafd", AT_FDCWD, "moved"));
    show("symlinkat-dirfd", syscall(SYS_symlinkat, "../g", dfd, "up"));
    cat("cat-dirfd-up", "d/up");
    show("linkat-empty-path", syscall(SYS_linkat, dfd, "", AT_FDCWD, "dlink", AT_EMPTY_PATH));
    close(dfd);
    ls("ls", ".");
    ls("ls-d", "d");
}

static void proc(void) {
    cat("cat-self-status", "/proc/self/status");
    char want[64];
    snprintf(want, sizeof want, "%ld", (long)syscall(SYS_getpid));
    rl("readlink-self", "/proc/self");
    printf("own-pid %s\n", want);
    rl("readlink-self-exe", "/proc/self/exe");
    rl("readlink-self-cwd", "/proc/self/cwd");
    rl("readlink-self-root", "/proc/self/root");
    int fd = syscall(SYS_openat, AT_FDCWD, "/etc/hello", O_RDONLY);
    char p[64];
    snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
    rl("readlink-self-fd", p);
    cat("cat-self-fd", p);
    snprintf(p, sizeof p, "/proc/thread-self/fd/%d", fd);
    cat("cat-thread-self-fd", p);
    snprintf(p, sizeof p, "/dev/fd/%d", fd);
    cat("cat-dev-fd", p);
    int wfd = syscall(SYS_openat, AT_FDCWD, p, O_WRONLY);
    show("open-self-fd-write-ro-file", wfd);
    cat("cat-self-root-etc", "/proc/self/root/etc/hello");
    cat("cat-self-root-escape", "/proc/self/root/../../../../etc/hostname");
    cat("cat-self-cwd", "/proc/self/cwd/hello");
    cat("cat-self-exe", "/proc/self/exe");
    cat("cat-mtab", "/etc/mtab");
    cat("cat-one-exe", "/proc/1/exe");
    cat("cat-one-root", "/proc/1/root/etc/hello");
    syscall(SYS_chdir, "/proc");
    cat("cat-rel-self-status", "self/status");
    ls("ls-self-fd", "/proc/self/fd");
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "proc")) proc();
    else files();
    return 0;
}
