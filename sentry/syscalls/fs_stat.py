"""stat(2) family, access(2) family, readlink(2), statfs(2): the path is
resolved in the container root with O_PATH (through the lookup cache,
sentry/lookups.py), the call made on that fd, and the result written back
to the target's memory (sentry/memory.py)."""

from __future__ import annotations

import errno
import os

from .. import paths, procfs
from ..call import Call
from ..creds import SELF_PROC_CAPS
from ..errors import SysError
from ..hostcalls import (AT_EACCESS, AT_EMPTY_PATH, AT_NO_AUTOMOUNT, AT_STATX_SYNC_TYPE,
                         AT_SYMLINK_NOFOLLOW, STAT_SIZE, STATFS_SIZE, STATX_SIZE)

_O_PATH = os.O_PATH | os.O_CLOEXEC
_O_PATH_NOFOLLOW = _O_PATH | os.O_NOFOLLOW


def _lookup(call: Call, dirfd_arg: int | None, path_idx: int, flags: int,
            real_ids: bool = False, lend: bool = False, intent: int = paths.LOOKUP) -> int:
    """O_PATH fd for a stat-like call: honours AT_EMPTY_PATH, AT_SYMLINK_NOFOLLOW.
    Ours to close; with lend (calls that only read the object), maybe the
    lookup cache's: give it back with paths.release(), and a kept ENOENT
    comes back as -ENOENT (other failures raise).  intent: what the caller
    will do with the object (sentry/kernobj.py)."""
    path = call.path(path_idx)
    if not path:
        if flags & AT_EMPTY_PATH and dirfd_arg is not None:
            return paths.open_fd_object(call, dirfd_arg, intent)
        raise SysError(errno.ENOENT, "empty path")
    oflags = _O_PATH_NOFOLLOW if flags & AT_SYMLINK_NOFOLLOW else _O_PATH
    return paths.open_path(call, dirfd_arg, path, oflags, 0, real_ids=real_ids, lend=lend,
                           intent=intent)


def _stat_out(call: Call, fd: int, buf: int) -> int:
    if fd < 0:
        return fd
    try:
        r = 0 if call.stat_of == fd else call.scratch.fstat_into(fd)
    finally:
        call.stat_of = -1
        paths.release(call, fd)
    if r < 0:
        return r
    call.mem.write_from(call.pid, buf, call.scratch.stat, STAT_SIZE)  # (no copy made)
    return 0


def stat(call: Call) -> int:
    """Implements Linux syscall stat(2)."""
    return _stat_out(call, _lookup(call, None, 0, 0, lend=True), call.args[1])


def lstat(call: Call) -> int:
    """Implements Linux syscall lstat(2)."""
    return _stat_out(call, _lookup(call, None, 0, AT_SYMLINK_NOFOLLOW, lend=True), call.args[1])


def newfstatat(call: Call) -> int:
    """Implements Linux syscall newfstatat(2)."""
    a = call.args
    flags = a[3] & 0xFFFFFFFF
    if flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH | AT_NO_AUTOMOUNT):
        return -errno.EINVAL
    return _stat_out(call, _lookup(call, a[0], 1, flags, lend=True), a[2])


STATX_RESERVED = 0x80000000


def statx(call: Call) -> int:
    """Implements Linux syscall statx(2)."""
    a = call.args
    flags, mask, buf = a[2] & 0xFFFFFFFF, a[3] & 0xFFFFFFFF, a[4]
    if flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH | AT_NO_AUTOMOUNT | AT_STATX_SYNC_TYPE) \
            or mask & STATX_RESERVED or flags & AT_STATX_SYNC_TYPE == AT_STATX_SYNC_TYPE:
        return -errno.EINVAL
    fd = _lookup(call, a[0], 1, flags, lend=True)
    if fd < 0:
        return fd
    try:
        r = call.scratch.fstatx_into(fd, flags, mask)
    finally:
        paths.release(call, fd)
    if r < 0:
        return r
    call.mem.write_from(call.pid, buf, call.scratch.stat, STATX_SIZE)
    return 0


def _access(call: Call, dirfd_arg: int | None, path_idx: int, mode: int, flags: int) -> int:
    if mode & ~7:
        return -errno.EINVAL
    if flags & ~(AT_EACCESS | AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH):
        return -errno.EINVAL
    # access(2) checks with the real ids unless AT_EACCESS (walk included).
    fd = _lookup(call, dirfd_arg, path_idx, flags, real_ids=not flags & AT_EACCESS, lend=True)
    if fd < 0:
        return fd
    try:
        if mode == 0:
            return 0
        return call.fs.access(fd, mode)
    finally:
        paths.release(call, fd)


def access(call: Call) -> int:
    """Implements Linux syscall access(2)."""
    return _access(call, None, 0, call.args[1] & 0xFFFFFFFF, 0)


def faccessat(call: Call) -> int:
    """Implements Linux syscall faccessat(2)."""
    a = call.args
    return _access(call, a[0], 1, a[2] & 0xFFFFFFFF, 0)


def faccessat2(call: Call) -> int:
    """Implements Linux syscall faccessat2(2)."""
    a = call.args
    return _access(call, a[0], 1, a[2] & 0xFFFFFFFF, a[3] & 0xFFFFFFFF)


def _readlink(call: Call, dirfd_arg: int | None, path_idx: int, buf: int, size: int) -> int:
    if size <= 0 or size > 0x7FFFFFFF:
        return -errno.EINVAL
    path = call.path(path_idx)
    if not path:
        return -errno.ENOENT
    text = procfs.self_link_text(call, path)
    if text is None:
        text = procfs.own_exe_text(call, path)
    if text is None:
        fd = paths.open_path(call, dirfd_arg, path, _O_PATH_NOFOLLOW)
        try:
            n = call.scratch.readlink_fd(fd)
            if n in (-errno.EACCES, -errno.EPERM) and call.on_proc \
                    and procfs.self_only(call, call.proc_rel):
                # Its own exe, cwd, root, fd/N: Linux's same-thread-group
                # rule, whatever the caller's credentials.
                with call.creds_state.lifted(SELF_PROC_CAPS):
                    n = call.scratch.readlink_fd(fd)
            if n >= 0 and call.on_proc:
                # On procfs: a magic
                # link's text is relative to OUR root; give the target's.
                text = procfs.container_view(call, call.scratch.link.raw[:n])
        finally:
            os.close(fd)
        if n == -errno.ENOENT:
            return -errno.EINVAL  # resolved, but not a symlink
        if n < 0:
            return n
        if text is None:
            text = call.scratch.link.raw[:n]
    text = text[:size]
    call.mem.write(call.pid, buf, text)
    return len(text)


def readlink(call: Call) -> int:
    """Implements Linux syscall readlink(2)."""
    a = call.args
    return _readlink(call, None, 0, a[1], a[2] & 0xFFFFFFFF)


def readlinkat(call: Call) -> int:
    """Implements Linux syscall readlinkat(2)."""
    a = call.args
    return _readlink(call, a[0], 1, a[2], a[3] & 0xFFFFFFFF)


def statfs(call: Call) -> int:
    """Implements Linux syscall statfs(2)."""
    return _statfs_of(call, _lookup(call, None, 0, 0, lend=True))


def fstatfs(call: Call) -> int:
    """Implements Linux syscall fstatfs(2)."""
    return _statfs_of(call, paths.open_fd_object(call, call.args[0]))


def _statfs_of(call: Call, fd: int) -> int:
    """fstatfs our fd (released here) and write the result to args[1]."""
    if fd < 0:
        return fd
    try:
        r = call.scratch.fstatfs_into(fd)
    finally:
        paths.release(call, fd)
    if r < 0:
        return r
    call.mem.write_from(call.pid, call.args[1], call.scratch.statfs, STATFS_SIZE)
    return 0
