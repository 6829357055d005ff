"""Root filesystem set-up inside the container's mount namespace.

Runs in the container init before pivot_root.  Mount destinations are
resolved inside the rootfs by the kernel (openat2 RESOLVE_IN_ROOT), then
mounted through /proc/self/fd/N of the resolved O_PATH fd, so a symlink in the
image cannot redirect a mount onto the host (CVE-2021-30465 class).
"""

from __future__ import annotations

import errno
import os
import stat
TYPE_CHECKING = False  # typing's, without importing typing (docs/performance.md, Start-up)
if TYPE_CHECKING:
    from typing import Any

from .. import libc
from ..errors import RuntimeFailure
from . import _openat2
from runsc_py.log import get_logger

log = get_logger(__name__)

# option -> (set flags, clear flags)
_FLAGS: dict[str, tuple[int, int]] = {
    "ro": (libc.MS_RDONLY, 0), "rw": (0, libc.MS_RDONLY),
    "nosuid": (libc.MS_NOSUID, 0), "suid": (0, libc.MS_NOSUID),
    "nodev": (libc.MS_NODEV, 0), "dev": (0, libc.MS_NODEV),
    "noexec": (libc.MS_NOEXEC, 0), "exec": (0, libc.MS_NOEXEC),
    "sync": (libc.MS_SYNCHRONOUS, 0), "async": (0, libc.MS_SYNCHRONOUS),
    "dirsync": (libc.MS_DIRSYNC, 0), "remount": (libc.MS_REMOUNT, 0),
    "mand": (libc.MS_MANDLOCK, 0), "nomand": (0, libc.MS_MANDLOCK),
    "atime": (0, libc.MS_NOATIME), "noatime": (libc.MS_NOATIME, 0),
    "diratime": (0, libc.MS_NODIRATIME), "nodiratime": (libc.MS_NODIRATIME, 0),
    "relatime": (libc.MS_RELATIME, 0), "norelatime": (0, libc.MS_RELATIME),
    "strictatime": (libc.MS_STRICTATIME, 0), "nostrictatime": (0, libc.MS_STRICTATIME),
    "lazytime": (libc.MS_LAZYTIME, 0), "nolazytime": (0, libc.MS_LAZYTIME),
    "bind": (libc.MS_BIND, 0), "rbind": (libc.MS_BIND | libc.MS_REC, 0),
    "nosymfollow": (libc.MS_NOSYMFOLLOW, 0), "symfollow": (0, libc.MS_NOSYMFOLLOW),
}
_PROPAGATION = {
    "private": libc.MS_PRIVATE, "rprivate": libc.MS_PRIVATE | libc.MS_REC,
    "shared": libc.MS_SHARED, "rshared": libc.MS_SHARED | libc.MS_REC,
    "slave": libc.MS_SLAVE, "rslave": libc.MS_SLAVE | libc.MS_REC,
    "unbindable": libc.MS_UNBINDABLE, "runbindable": libc.MS_UNBINDABLE | libc.MS_REC,
}
# Options the kernel takes as flags but that are not filesystem data.
_IGNORED = {"defaults", "newinstance-not-data", "tmpcopyup", "idmap", "ridmap"}

DEFAULT_DEVICES = [
    # path, type, major, minor, mode
    ("/dev/null", "c", 1, 3, 0o666),
    ("/dev/zero", "c", 1, 5, 0o666),
    ("/dev/full", "c", 1, 7, 0o666),
    ("/dev/random", "c", 1, 8, 0o666),
    ("/dev/urandom", "c", 1, 9, 0o666),
    ("/dev/tty", "c", 5, 0, 0o666),
]
DEV_SYMLINKS = [
    ("/proc/self/fd", "/dev/fd"), ("/proc/self/fd/0", "/dev/stdin"),
    ("/proc/self/fd/1", "/dev/stdout"), ("/proc/self/fd/2", "/dev/stderr"),
]


def parse_options(options: list[str]) -> tuple[int, int, list[str]]:
    """Split mount options into (flags, propagation flags, data options)."""
    flags = 0
    prop = 0
    data: list[str] = []
    for opt in options:
        if opt in _FLAGS:
            set_, clear = _FLAGS[opt]
            flags = (flags | set_) & ~clear
        elif opt in _PROPAGATION:
            prop |= _PROPAGATION[opt]
        elif opt in _IGNORED:
            continue
        else:
            data.append(opt)
    return flags, prop, data


def set_root_propagation(propagation: str | None) -> None:
    """Stop mount events leaking between host and container (rslave default)."""
    flag = _PROPAGATION.get(propagation or "rslave", libc.MS_SLAVE | libc.MS_REC)
    libc.mount(None, "/", None, flag | libc.MS_REC if flag & libc.MS_REC else flag)


def bind_rootfs(rootfs: str) -> None:
    """Make the rootfs a mount point of its own, as pivot_root requires.

    Its parent mount is made private first, so the bind is not shared
    either (pivot_root refuses shared mounts; rootfsPropagation=shared).
    """
    try:
        _parent_mount_private(rootfs)
    except OSError as e:
        raise RuntimeFailure(f"make parent mount of {rootfs} private: {e.strerror}") from None
    libc.mount(rootfs, rootfs, None, libc.MS_BIND | libc.MS_REC)


def mount_entry(rootfs: str, m: dict[str, Any], cgroup_mounts: list[tuple[str, str]],
                in_userns: bool, cgroup_dirs: dict[str, str] | None = None) -> None:
    """Mount one `mounts[]` entry of the spec under the rootfs."""
    dest = m["destination"]
    mtype = m.get("type") or ""
    source = m.get("source") or mtype or "none"
    flags, prop, data = parse_options(m.get("options") or [])
    is_bind = bool(flags & libc.MS_BIND) or mtype == "bind"
    if is_bind:
        flags |= libc.MS_BIND
        try:
            st = os.stat(source)
        except OSError as e:
            raise RuntimeFailure(f"mount {dest}: source {source}: {e.strerror}") from None
        target_fd = _openat2.ensure(rootfs, dest, directory=stat.S_ISDIR(st.st_mode))
    elif mtype == "cgroup":
        target_fd = _openat2.ensure(rootfs, dest, directory=True)
        try:
            _mount_cgroup(rootfs, dest, target_fd, flags, cgroup_mounts, cgroup_dirs)
        finally:
            os.close(target_fd)
        return
    else:
        target_fd = _openat2.ensure(rootfs, dest, directory=True)
    target = f"/proc/self/fd/{target_fd}"
    try:
        if mtype == "sysfs" and in_userns:
            # A user namespace cannot mount sysfs without owning a network
            # namespace; runc falls back to a recursive bind of the host's.
            _try_mount("sysfs", target, "sysfs", flags, data, fallback_bind="/sys")
        elif mtype == "mqueue" and in_userns:
            _try_mount("mqueue", target, "mqueue", flags, data, fallback_bind="/dev/mqueue")
        else:
            libc.mount(source, target, mtype if not is_bind else None,
                       flags & ~libc.MS_RDONLY if is_bind else flags, ",".join(data) or None)
        remount = flags & ~(libc.MS_REC | libc.MS_REMOUNT)
        if (is_bind and remount & ~libc.MS_BIND) or prop:
            # The fd still names the directory under the new mount: reopen it
            # to reach the mount itself.
            os.close(target_fd)
            target_fd = _openat2.ensure(rootfs, dest, directory=True if not is_bind else
                                        stat.S_ISDIR(os.stat(source).st_mode))
            target = f"/proc/self/fd/{target_fd}"
            if is_bind and remount & ~libc.MS_BIND:
                # A bind mount ignores the other flags on creation: remount them in.
                _remount_bind(target, remount, dest)
            if prop:
                libc.mount(None, target, None, prop)
    except OSError as e:
        raise RuntimeFailure(f"mount {source} to {dest}: {e.strerror}") from None
    finally:
        os.close(target_fd)


def _try_mount(source: str, target: str, fstype: str, flags: int, data: list[str],
               fallback_bind: str) -> None:
    try:
        libc.mount(source, target, fstype, flags, ",".join(data) or None)
    except OSError as e:
        if e.errno not in (errno.EPERM, errno.EBUSY):
            raise
        libc.mount(fallback_bind, target, None, libc.MS_BIND | libc.MS_REC)
        _remount_bind(target, flags | libc.MS_BIND, fallback_bind)


def _remount_bind(target: str, flags: int, what: str) -> None:
    """Apply ro/nosuid/nodev/noexec to a bind mount, keeping locked flags.

    In a user namespace the kernel refuses to clear flags it locked on the
    source mount (EPERM), so those are carried over from statvfs.
    """
    flags = flags | libc.MS_BIND | libc.MS_REMOUNT
    try:
        libc.mount(None, target, None, flags)
    except OSError as e:
        if e.errno != errno.EPERM:
            raise
        sv = os.statvfs(target)
        locked = 0
        for st_flag, ms_flag in ((os.ST_RDONLY, libc.MS_RDONLY), (os.ST_NOSUID, libc.MS_NOSUID),
                                 (os.ST_NODEV, libc.MS_NODEV), (os.ST_NOEXEC, libc.MS_NOEXEC)):
            if sv.f_flag & st_flag:
                locked |= ms_flag
        libc.mount(None, target, None, flags | locked)


def _mount_cgroup(rootfs: str, dest: str, target_fd: int, flags: int,
                  cgroup_mounts: list[tuple[str, str]], cgroup_dirs: dict[str, str] | None) -> None:
    """cgroup mounts: v2 as one cgroup2 mount; v1 as a tmpfs of per-controller mounts.

    cgroup_mounts lists (subdir name, mount options) of the host's hierarchies,
    e.g. [("memory", "memory"), ("cpu", "cpu"), ("unified", "cgroup2")].  With a
    cgroup namespace each mount shows the container's own cgroup as its root;
    without one (cgroup_dirs given: controller -> the container's host
    directory) the container's own directories are bind-mounted, as runc does,
    so the container never sees the host's hierarchy.
    """
    target = f"/proc/self/fd/{target_fd}"
    ro = flags & libc.MS_RDONLY
    base = flags & (libc.MS_NOSUID | libc.MS_NODEV | libc.MS_NOEXEC | libc.MS_RELATIME)

    def one(path: str, opts: str) -> None:
        fd = _openat2.ensure(rootfs, path, directory=True)
        try:
            tgt = f"/proc/self/fd/{fd}"
            if cgroup_dirs is None:
                if opts == "cgroup2":
                    libc.mount("cgroup2", tgt, "cgroup2", base | ro)
                else:
                    libc.mount("cgroup", tgt, "cgroup", base | ro, opts)
                return
            src = cgroup_dirs.get("unified" if opts == "cgroup2" else opts.split(",")[0])
            if not src:
                return
            libc.mount(src, tgt, None, libc.MS_BIND | libc.MS_REC)
        finally:
            os.close(fd)
        top = _openat2.ensure(rootfs, path, directory=True)  # the new mount itself
        try:
            _remount_bind(f"/proc/self/fd/{top}", base | ro | libc.MS_BIND, src)
        finally:
            os.close(top)

    if len(cgroup_mounts) == 1 and cgroup_mounts[0][1] == "cgroup2":
        one(dest, "cgroup2")
        return
    libc.mount("tmpfs", target, "tmpfs", base, "mode=755")
    for name, opts in cgroup_mounts:
        one(os.path.join(dest, name), opts)
    if ro:
        top = _openat2.ensure(rootfs, dest, directory=True)
        try:
            _remount_bind(f"/proc/self/fd/{top}", base | libc.MS_RDONLY, dest)
        finally:
            os.close(top)


def create_devices(rootfs: str, devices: list[dict[str, Any]], defaults: bool,
                   in_userns: bool) -> None:
    """Create the default devices and linux.devices under rootfs/dev.

    In a user namespace mknod is not allowed: bind the host's device instead
    (as runc does).
    """
    entries: list[dict[str, Any]] = []
    if defaults:
        entries += [{"path": p, "type": t, "major": ma, "minor": mi, "fileMode": mode, "uid": 0, "gid": 0}
                    for p, t, ma, mi, mode in DEFAULT_DEVICES]
    entries += devices
    for d in entries:
        _create_device(rootfs, d, in_userns)


def _create_device(rootfs: str, d: dict[str, Any], in_userns: bool) -> None:
    path = d["path"]
    parent_fd = _openat2.ensure(rootfs, os.path.dirname(path), directory=True)
    name = os.path.basename(path)
    try:
        try:
            os.unlink(name, dir_fd=parent_fd)
        except FileNotFoundError:
            pass
        kind = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}[d["type"]]
        mode = d.get("fileMode", 0o666) & 0o7777
        if in_userns:
            fd = os.open(name, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o000, dir_fd=parent_fd)
            os.close(fd)
            libc.mount(path, f"/proc/self/fd/{parent_fd}/{name}", None, libc.MS_BIND)
            return
        dev = os.makedev(d.get("major", 0), d.get("minor", 0)) if d["type"] != "p" else 0
        os.mknod(name, kind | mode, dev, dir_fd=parent_fd)
        os.chmod(f"/proc/self/fd/{parent_fd}/{name}", mode)
        os.chown(name, d.get("uid", 0), d.get("gid", 0), dir_fd=parent_fd, follow_symlinks=False)
    except OSError as e:
        raise RuntimeFailure(f"create device {path}: {e.strerror}") from None
    finally:
        os.close(parent_fd)


def dev_symlinks(rootfs: str) -> None:
    links = list(DEV_SYMLINKS)
    if os.path.exists("/proc/kcore"):
        links.append(("/proc/kcore", "/dev/core"))
    dev_fd = _openat2.ensure(rootfs, "/dev", directory=True)
    try:
        for target, link in links:
            try:
                os.symlink(target, os.path.basename(link), dir_fd=dev_fd)
            except FileExistsError:
                pass
        # /dev/ptmx -> pts/ptmx so a devpts newinstance is used.
        try:
            os.unlink("ptmx", dir_fd=dev_fd)
        except FileNotFoundError:
            pass
        os.symlink("pts/ptmx", "ptmx", dir_fd=dev_fd)
    except OSError as e:
        raise RuntimeFailure(f"create /dev symlinks: {e.strerror}") from None
    finally:
        os.close(dev_fd)


def _parent_mount_private(rootfs: str) -> None:
    """pivot_root refuses a new root whose parent mount is shared: with
    rootfsPropagation shared, make the mount holding the rootfs's parent
    private (runc's rootfsParentMountPrivate)."""
    parent = os.path.dirname(rootfs.rstrip("/")) or "/"
    best = "/"
    shared = False
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            mnt = fields[4].replace("\\040", " ")
            if (parent == mnt or parent.startswith(mnt.rstrip("/") + "/")) and len(mnt) >= len(best):
                best = mnt
                shared = any(o.startswith("shared:") for o in fields[6:fields.index("-")])
    if shared:
        libc.mount(None, best, None, libc.MS_PRIVATE)


def pivot(rootfs: str) -> None:
    """pivot_root into rootfs and detach the old root (runc's "." "." trick)."""
    old = os.open("/", os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
    new = os.open(rootfs, os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fchdir(new)
        libc.pivot_root(".", ".")
        os.fchdir(old)
        # Make the old root a slave so unmounting it does not propagate to the host.
        libc.mount(None, ".", None, libc.MS_SLAVE | libc.MS_REC)
        libc.umount2(".", libc.MNT_DETACH)
        os.chdir("/")
    except OSError as e:
        raise RuntimeFailure(f"pivot_root {rootfs}: {e.strerror}") from None
    finally:
        os.close(old)
        os.close(new)


def move_root(rootfs: str) -> None:
    """--no-pivot: MS_MOVE the rootfs onto / and chroot (weaker than pivot_root)."""
    try:
        os.chdir(rootfs)
        libc.mount(rootfs, "/", None, libc.MS_MOVE)
        os.chroot(".")
        os.chdir("/")
    except OSError as e:
        raise RuntimeFailure(f"move root {rootfs}: {e.strerror}") from None


def readonly_path(path: str) -> None:
    try:
        libc.mount(path, path, None, libc.MS_BIND | libc.MS_REC)
    except FileNotFoundError:
        return
    except OSError as e:
        raise RuntimeFailure(f"readonly path {path}: {e.strerror}") from None
    try:
        _remount_bind(path, libc.MS_RDONLY | libc.MS_REC | libc.MS_NOSUID | libc.MS_NODEV
                      | libc.MS_NOEXEC, path)
    except OSError:
        try:
            _remount_bind(path, libc.MS_RDONLY | libc.MS_REC, path)
        except OSError as e:
            raise RuntimeFailure(f"readonly path {path}: {e.strerror}") from None


def mask_path(path: str) -> None:
    """Hide PATH: /dev/null over a file, an empty read-only tmpfs over a directory."""
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            libc.mount("tmpfs", path, "tmpfs", libc.MS_RDONLY, "size=0k,mode=0755")
        else:
            libc.mount("/dev/null", path, None, libc.MS_BIND)
    except FileNotFoundError:
        return
    except OSError as e:
        if e.errno in (errno.ENOENT, errno.ENOTDIR):
            return
        raise RuntimeFailure(f"mask path {path}: {e.strerror}") from None


def remount_root_readonly() -> None:
    try:
        libc.mount(None, "/", None, libc.MS_BIND | libc.MS_REMOUNT | libc.MS_RDONLY)
    except OSError as e:
        if e.errno != errno.EPERM:
            raise RuntimeFailure(f"remount / read-only: {e.strerror}") from None
        sv = os.statvfs("/")
        locked = (libc.MS_NOSUID if sv.f_flag & os.ST_NOSUID else 0) | \
                 (libc.MS_NODEV if sv.f_flag & os.ST_NODEV else 0) | \
                 (libc.MS_NOEXEC if sv.f_flag & os.ST_NOEXEC else 0)
        libc.mount(None, "/", None, libc.MS_BIND | libc.MS_REMOUNT | libc.MS_RDONLY | locked)
