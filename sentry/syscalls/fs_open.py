"""open(2), openat(2), openat2(2), creat(2): resolved in the container root
by the sentry, the resulting fd installed in the target with ADDFD|SEND."""

from __future__ import annotations

import ctypes
import errno
import os

from .. import paths
from ..call import Call
from ..hostcalls import (RESOLVE_BENEATH, RESOLVE_IN_ROOT, RESOLVE_NO_MAGICLINKS,
                         RESOLVE_NO_SYMLINKS, RESOLVE_NO_XDEV)

O_TMPFILE = 0o20000000 | os.O_DIRECTORY
# The kernel's VALID_OPEN_FLAGS: open/openat ignore other bits, openat2 refuses them.
VALID_OPEN_FLAGS = (0o3 | os.O_CREAT | os.O_EXCL | os.O_NOCTTY | os.O_TRUNC | os.O_APPEND
                    | os.O_NONBLOCK | os.O_SYNC | os.O_DSYNC | os.O_ASYNC | os.O_DIRECT
                    | 0o100000 | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_NOATIME | os.O_CLOEXEC
                    | os.O_PATH | O_TMPFILE)
O_PATH_KEEPS = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
RESOLVE_ALL = (RESOLVE_NO_XDEV | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_SYMLINKS
               | RESOLVE_BENEATH | RESOLVE_IN_ROOT)


def _flags_mode(call: Call, flags: int, mode: int) -> tuple[int, int]:
    """open()'s leniency: drop unknown bits, mode only with O_CREAT/O_TMPFILE."""
    flags &= VALID_OPEN_FLAGS
    if flags & os.O_PATH:
        flags &= O_PATH_KEEPS
    if flags & os.O_CREAT or (flags & O_TMPFILE) == O_TMPFILE:
        mode = mode & 0o7777 & ~call.umask()
    else:
        mode = 0
    return flags, mode


def _opened(call: Call, dirfd: int | None, path_arg: int, flags: int, mode: int,
            resolve: int = 0) -> tuple[int, int]:
    """(our fd of the resolved object, the flags in force)."""
    path = call.path(path_arg)
    flags, mode = _flags_mode(call, flags, mode)
    try:
        fd = paths.open_path(call, dirfd, path, flags, mode, resolve=resolve)
    finally:
        if flags & os.O_CREAT:
            # Before the caller can see the new name; also when the open
            # failed after creating it (O_DIRECTORY on some kernels, an LSM).
            call.names_added()
    return fd, flags


def _do_open(call: Call, dirfd: int | None, path_arg: int, flags: int, mode: int,
             resolve: int = 0) -> None:
    fd, flags = _opened(call, dirfd, path_arg, flags, mode, resolve)
    if flags & os.O_PATH:
        _continue_o_path(call, fd)
        return
    call.reply_fd(fd, bool(flags & os.O_CLOEXEC))


def _continue_o_path(call: Call, fd: int) -> None:
    """An O_PATH open the sentry resolved (the errors above are its own)
    is then run by the kernel in the caller: SECCOMP_IOCTL_NOTIF_ADDFD
    refuses O_PATH files (it takes its source with fget(), which skips
    them), and only the kernel can give the caller one.  Not a decision
    resting on the path: the flags are a value in the notification (O_PATH:
    no access to contents, no side effect of an open), and the kernel
    resolves the path again in the caller's root and mount namespace; every
    later use of the fd by the sentry checks its object is the container's
    (paths.contained for a dirfd or cwd, paths.held_inside for a change,
    the procfs walk for a reopen)."""
    os.close(fd)
    call.reply_continue()


def open_(call: Call) -> None:
    """Implements Linux syscall open(2)."""
    a = call.args
    _do_open(call, None, 0, a[1] & 0xFFFFFFFF, a[2] & 0xFFFFFFFF)


def openat(call: Call) -> None:
    """Implements Linux syscall openat(2)."""
    a = call.args
    _do_open(call, a[0], 1, a[2] & 0xFFFFFFFF, a[3] & 0xFFFFFFFF)


def creat(call: Call) -> None:
    """Implements Linux syscall creat(2)."""
    fd, _flags = _opened(call, None, 0, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, call.args[1] & 0xFFFFFFFF)
    call.reply_fd(fd, False)


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


def openat2(call: Call) -> int | None:
    """Implements Linux syscall openat2(2)."""
    a = call.args
    size = a[3]
    if size < ctypes.sizeof(_OpenHow):
        return -errno.EINVAL
    if size > 4096:
        return -errno.E2BIG
    how = _OpenHow()
    call.mem.read_into(call.pid, a[2], how)
    if size > ctypes.sizeof(_OpenHow) and call.read(a[2] + 24, size - 24).strip(b"\0"):
        return -errno.E2BIG
    flags, mode, resolve = how.flags, how.mode, how.resolve
    if flags & ~VALID_OPEN_FLAGS or resolve & ~RESOLVE_ALL or mode & ~0o7777:
        return -errno.EINVAL
    if mode and not (flags & os.O_CREAT or (flags & O_TMPFILE) == O_TMPFILE):
        return -errno.EINVAL
    if resolve & RESOLVE_IN_ROOT and resolve & RESOLVE_BENEATH:
        return -errno.EINVAL  # both scopes: the kernel refuses the pair
    # openat2 is strict where open(2) is lenient: no flag is dropped (the
    # checks above refused unknown bits), and O_PATH keeps only its own.
    if flags & os.O_PATH and flags & ~O_PATH_KEEPS:
        return -errno.EINVAL
    _do_open(call, a[0], 1, flags, mode, resolve)
    return None
