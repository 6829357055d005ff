/* Device nodes the spec lists (linux.devices, the privileged profile, as
 * `docker run --privileged` does): the host disk holding the marker, the
 * host's memory, its kernel log.  Nothing is written. */
#include "common.h"
#include <sys/sysmacros.h>

/* The host's block device ($ESCAPE_BLOCKDEV_PATH, $ESCAPE_BLOCKDEV major:minor). */
static int blockdev_read(const char *name) {
    const char *path = getenv("ESCAPE_BLOCKDEV_PATH");
    if (!path) path = "/dev/vda";
    int fd = open(path, O_RDONLY);
    if (fd < 0) return BLOCKED("open %s: %s", path, ERR);
    struct stat st;
    fstat(fd, &st);
    unsigned char sb[1024];
    ssize_t n = pread(fd, sb, sizeof sb, 1024);      /* ext2/3/4 superblock */
    int e = errno;
    close(fd);
    if (n < 0) return BLOCKED("opened %s (%u:%u), read refused: %s", path, major(st.st_rdev), minor(st.st_rdev),
                              strerror(e));
    if (n >= 58 && sb[56] == 0x53 && sb[57] == 0xEF)
        return ESCAPED("read the host disk's ext4 superblock through %s (%u:%u)", path, major(st.st_rdev),
                       minor(st.st_rdev));
    if (n > 0) return ESCAPED("read %zd bytes of the host disk through %s", n, path);
    return BLOCKED("%s reads nothing", path);
}

static int dev_mem(const char *name) {
    int fd = open("/dev/mem", O_RDONLY);
    if (fd < 0) return BLOCKED("open /dev/mem: %s", ERR);
    unsigned char b[64];
    ssize_t n = pread(fd, b, sizeof b, 0);
    int e = errno;
    close(fd);
    if (n > 0) return ESCAPED("read %zd bytes of the host's physical memory (/dev/mem)", n);
    return BLOCKED("opened /dev/mem, read: %s", n < 0 ? strerror(e) : "nothing");
}

/* /dev/kmsg: each reader has its own position, so reading one record
 * consumes nothing of anyone else's. */
static int dev_kmsg(const char *name) {
    int fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK);
    if (fd < 0) return BLOCKED("open /dev/kmsg: %s", ERR);
    char b[8192];
    ssize_t n = read(fd, b, sizeof b);
    int e = errno;
    close(fd);
    if (n > 0) return ESCAPED("read a record of the host kernel log (/dev/kmsg, %zd bytes)", n);
    return BLOCKED("opened /dev/kmsg, read: %s", n < 0 ? strerror(e) : "nothing");
}

static const struct probe probes[] = {
    {"blockdev_read", blockdev_read}, {"dev_mem", dev_mem}, {"dev_kmsg", dev_kmsg},
};
PROBE_MAIN(probes)
