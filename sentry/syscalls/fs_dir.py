"""Names in directories: mkdir, rmdir, unlink, rename, link, symlink, mknod
(done by the sentry), and chdir, fchdir, getcwd (run by the kernel).

Name changes: the parent directory is resolved in the container root
(`paths.open_parent`, target credentials), then the host call is made on
(parent fd, last component) with the target's credentials, so the host
kernel applies its own rules to that single name: permissions, sticky
directories, trailing slashes, EEXIST/ENOTEMPTY/EXDEV.  The last component
is never followed (the calls do not follow it either) and "."/".." are
never passed to the host: the answer for them is the kernel's, from the
kind of the last component.

chdir/fchdir/getcwd: the cwd is kernel state of the target that the sentry
cannot set from outside, so the kernel runs them (CONTINUE), after the
sentry resolved the directory itself (a directory of the container, the
kernel's own errors).  That is not a security decision resting on the
pointer argument: the target could rewrite the path after our look, and
the kernel then resolves it in the target's own root and mount namespace,
where a magic link might lead out (the host's /proc bound into a
privileged container).  So every later path call that starts from the cwd
checks it is a directory of the container again (paths.contained), and
refuses (EACCES) if not.  getcwd prints the cwd relative to the target's
root: the kernel's answer is the right one.
"""

from __future__ import annotations

import errno
import os
import stat as _stat

from .. import ownproc, paths
from ..call import Call
from ..errors import SysError
from ..files import host_call
from ..hostcalls import AT_EMPTY_PATH, AT_REMOVEDIR, AT_SYMLINK_FOLLOW
from ..paths import LAST_DOT, LAST_DOTDOT, LAST_NORM, LAST_ROOT

RENAME_NOREPLACE, RENAME_EXCHANGE, RENAME_WHITEOUT = 1, 2, 4
_O_PATH = os.O_PATH | os.O_CLOEXEC


# --- mkdir -------------------------------------------------------------------
def _mkdir(call: Call, dirfd: int | None, path_idx: int, mode: int) -> int:
    path = call.path(path_idx)
    mode = mode & 0o1777 & ~call.umask()
    pfd, name, kind = paths.open_parent(call, dirfd, path)
    try:
        if kind != LAST_NORM:
            return -errno.EEXIST
        return call.fs.mkdirat(pfd, name, mode)
    finally:
        os.close(pfd)


def mkdir(call: Call) -> int:
    """Implements Linux syscall mkdir(2)."""
    return _mkdir(call, None, 0, call.args[1] & 0xFFFFFFFF)


def mkdirat(call: Call) -> int:
    """Implements Linux syscall mkdirat(2)."""
    a = call.args
    return _mkdir(call, a[0], 1, a[2] & 0xFFFFFFFF)


# --- rmdir, unlink ---------------------------------------------------------------
_RMDIR_ERR = {LAST_DOT: errno.EINVAL, LAST_DOTDOT: errno.ENOTEMPTY, LAST_ROOT: errno.EBUSY}


def _remove(call: Call, dirfd: int | None, path_idx: int, is_dir: bool) -> int:
    """rmdir/unlink.  Reports what it removed to the lookup caches itself
    (lookups.REPORTS_ITSELF): an unlinked file keeps directory lookups."""
    path = call.path(path_idx)
    pfd, name, kind = paths.open_parent(call, dirfd, path)
    try:
        if kind != LAST_NORM:
            return -(_RMDIR_ERR[kind] if is_dir else errno.EISDIR)
        mark = call.tree_mark()
        removed: bool | None = None  # None: not known (the call raised)
        try:
            r = call.fs.unlinkat(pfd, name, AT_REMOVEDIR if is_dir else 0)
            removed = r == 0
            return r
        finally:
            if removed is not False:
                call.name_removed(call.fs.unlinked_mode if removed and not is_dir else 0, mark)
    finally:
        os.close(pfd)


def rmdir(call: Call) -> int:
    """Implements Linux syscall rmdir(2)."""
    return _remove(call, None, 0, True)


def unlink(call: Call) -> int:
    """Implements Linux syscall unlink(2)."""
    return _remove(call, None, 0, False)


def unlinkat(call: Call) -> int:
    """Implements Linux syscall unlinkat(2)."""
    a = call.args
    flags = a[2] & 0xFFFFFFFF
    if flags & ~AT_REMOVEDIR:
        return -errno.EINVAL
    return _remove(call, a[0], 1, bool(flags & AT_REMOVEDIR))


# --- rename --------------------------------------------------------------------
def _rename(call: Call, olddir: int | None, old_idx: int, newdir: int | None, new_idx: int,
            flags: int) -> int:
    if flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE | RENAME_WHITEOUT):
        return -errno.EINVAL
    if flags & (RENAME_NOREPLACE | RENAME_WHITEOUT) and flags & RENAME_EXCHANGE:
        return -errno.EINVAL
    old = call.path(old_idx)
    new = call.path(new_idx)
    ofd, oname, okind = paths.open_parent(call, olddir, old)
    try:
        nfd, nname, nkind = paths.open_parent(call, newdir, new)
        try:
            if okind != LAST_NORM or nkind != LAST_NORM:
                return -errno.EBUSY
            return call.fs.renameat2(ofd, oname, nfd, nname, flags)
        finally:
            os.close(nfd)
    finally:
        os.close(ofd)


def rename(call: Call) -> int:
    """Implements Linux syscall rename(2)."""
    return _rename(call, None, 0, None, 1, 0)


def renameat(call: Call) -> int:
    """Implements Linux syscall renameat(2)."""
    a = call.args
    return _rename(call, a[0], 1, a[2], 3, 0)


def renameat2(call: Call) -> int:
    """Implements Linux syscall renameat2(2)."""
    a = call.args
    return _rename(call, a[0], 1, a[2], 3, a[4] & 0xFFFFFFFF)


# --- link, symlink -------------------------------------------------------------
_CAP_DAC_READ_SEARCH = 2


def _old_object(call: Call, olddir: int | None, old: bytes, flags: int) -> tuple[int, bytes | None]:
    """The source of a link: (O_PATH fd of the object, None) when it is
    followed or given by fd, else (parent fd, name)."""
    if not old:
        if not flags & AT_EMPTY_PATH or olddir is None:
            raise SysError(errno.ENOENT, "link: empty path")
        # The kernel wants CAP_DAC_READ_SEARCH for flink (or, since 6.10,
        # an fd the caller opened with its present credentials: not tracked).
        if not call.creds().cap_eff >> _CAP_DAC_READ_SEARCH & 1:
            raise SysError(errno.ENOENT, "link: AT_EMPTY_PATH")
        return paths.held_fd(call, olddir, paths.CHANGE), None
    if flags & AT_SYMLINK_FOLLOW:
        return paths.open_path(call, olddir, old, _O_PATH, intent=paths.CHANGE), None
    pfd, name, kind = paths.open_parent(call, olddir, old)
    if kind != LAST_NORM:
        os.close(pfd)
        raise SysError(errno.EPERM, "link: a directory")  # ".", "..", "/"
    return pfd, name


def _link(call: Call, olddir: int | None, old_idx: int, newdir: int | None, new_idx: int,
          flags: int) -> int:
    if flags & ~(AT_SYMLINK_FOLLOW | AT_EMPTY_PATH):
        return -errno.EINVAL
    old = call.path(old_idx)
    new = call.path(new_idx)
    ofd, oname = _old_object(call, olddir, old, flags)
    try:
        nfd, nname, nkind = paths.open_parent(call, newdir, new)
        try:
            if nkind != LAST_NORM:
                return -errno.EEXIST
            if oname is None:
                # Link the object itself: follow our own magic link to it.
                return host_call(os.link, ownproc.self_fd(ofd), nname, src_dir_fd=ownproc.dirfd(),
                                 dst_dir_fd=nfd, follow_symlinks=True)
            return call.fs.linkat(ofd, oname, nfd, nname, 0)
        finally:
            os.close(nfd)
    finally:
        os.close(ofd)


def link(call: Call) -> int:
    """Implements Linux syscall link(2)."""
    return _link(call, None, 0, None, 1, 0)


def linkat(call: Call) -> int:
    """Implements Linux syscall linkat(2)."""
    a = call.args
    return _link(call, a[0], 1, a[2], 3, a[4] & 0xFFFFFFFF)


def _symlink(call: Call, target_idx: int, newdir: int | None, new_idx: int) -> int:
    target = call.path(target_idx)
    new = call.path(new_idx)
    if not target:
        return -errno.ENOENT
    pfd, name, kind = paths.open_parent(call, newdir, new)
    try:
        if kind != LAST_NORM:
            return -errno.EEXIST
        # The text is stored, never followed by the sentry's host calls.
        return call.fs.symlinkat(target, pfd, name)
    finally:
        os.close(pfd)


def symlink(call: Call) -> int:
    """Implements Linux syscall symlink(2)."""
    return _symlink(call, 0, None, 1)


def symlinkat(call: Call) -> int:
    """Implements Linux syscall symlinkat(2)."""
    a = call.args
    return _symlink(call, 0, a[1], 2)


# --- mknod ---------------------------------------------------------------------
def _mknod(call: Call, dirfd: int | None, path_idx: int, mode: int, dev: int) -> int:
    path = call.path(path_idx)
    fmt = _stat.S_IFMT(mode)
    if fmt == 0:
        mode |= _stat.S_IFREG
    elif fmt == _stat.S_IFDIR:
        return -errno.EPERM
    elif fmt == _stat.S_IFBLK:
        # Block devices: refused (a container has no business with host disks).
        return -errno.EPERM
    elif fmt not in (_stat.S_IFREG, _stat.S_IFCHR, _stat.S_IFIFO, _stat.S_IFSOCK):
        return -errno.EINVAL
    mode = _stat.S_IFMT(mode) | (mode & 0o7777 & ~call.umask())
    pfd, name, kind = paths.open_parent(call, dirfd, path)
    try:
        if kind != LAST_NORM:
            return -errno.EEXIST
        # Character devices: the kernel checks CAP_MKNOD (the target's) and
        # the container's device cgroup, which the sandbox process is in.
        return call.fs.mknodat(pfd, name, mode, dev)
    finally:
        os.close(pfd)


def mknod(call: Call) -> int:
    """Implements Linux syscall mknod(2)."""
    a = call.args
    return _mknod(call, None, 0, a[1] & 0xFFFFFFFF, a[2] & 0xFFFFFFFF)


def mknodat(call: Call) -> int:
    """Implements Linux syscall mknodat(2)."""
    a = call.args
    return _mknod(call, a[0], 1, a[2] & 0xFFFFFFFF, a[3] & 0xFFFFFFFF)


# --- cwd: run by the kernel (see the module docstring) ---------------------------
def chdir(call: Call) -> int | None:
    """Implements Linux syscall chdir(2): resolved by the sentry first (a
    directory of the container, reached as the kernel would: errors are its
    own), then run by the kernel.  What it resolves after our answer is
    checked again at every use of the cwd (paths.contained)."""
    fd = paths.open_path(call, None, call.path(0), os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        paths.contained(call, fd)
    finally:
        os.close(fd)
    call.reply_continue()
    return None


def fchdir(call: Call) -> int | None:
    """Implements Linux syscall fchdir(2): the fd's directory must be the
    container's, then the kernel runs it."""
    fd = paths.open_fd_object(call, call.args[0])
    try:
        if not _stat.S_ISDIR(os.fstat(fd).st_mode):
            return -errno.ENOTDIR
        paths.contained(call, fd)
    finally:
        os.close(fd)
    call.reply_continue()
    return None

