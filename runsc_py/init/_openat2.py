"""Resolve (and create) paths inside a root directory with openat2(2).

RESOLVE_IN_ROOT makes the kernel treat the root fd as "/" for the whole walk:
absolute symlinks and ".." stay inside, so a hostile image cannot point a
mount destination at the host.  Missing components are created one level at
a time and the full path is re-resolved after each creation.
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct

from ..libc import _libc

SYS_openat2 = 437
RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10
O_PATH = 0o10000000


def openat2(dirfd: int, path: str, flags: int, resolve: int, mode: int = 0) -> int:
    how = struct.pack("QQQ", flags | os.O_CLOEXEC, mode, resolve)
    buf = ctypes.create_string_buffer(how, len(how))
    while True:
        fd = _libc.syscall(SYS_openat2, dirfd, os.fsencode(path), buf, len(how))
        if fd >= 0:
            return fd
        err = ctypes.get_errno()
        if err not in (errno.EAGAIN, errno.EINTR):
            raise OSError(err, os.strerror(err), path)


def resolve_in_root(root_fd: int, path: str, flags: int = O_PATH) -> int:
    return openat2(root_fd, path, flags, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)


def ensure(rootfs: str, path: str, directory: bool) -> int:
    """Return an O_PATH fd of ROOTFS/PATH resolved in root, creating it if missing."""
    root_fd = os.open(rootfs, os.O_DIRECTORY | os.O_PATH | os.O_CLOEXEC)
    try:
        return _ensure(root_fd, os.path.normpath("/" + path), directory, depth=0)
    finally:
        os.close(root_fd)


def _ensure(root_fd: int, path: str, directory: bool, depth: int) -> int:
    if depth > 255:
        raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), path)
    try:
        return resolve_in_root(root_fd, path)
    except FileNotFoundError:
        pass
    parent, name = os.path.split(path)
    parent_fd = _ensure(root_fd, parent, True, depth + 1)
    try:
        if directory:
            os.mkdir(name, 0o755, dir_fd=parent_fd)
        else:
            os.close(os.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW,
                             0o644, dir_fd=parent_fd))
    except FileExistsError:
        # Raced, or a dangling symlink: create what it points to, inside the
        # root (the target is re-resolved with RESOLVE_IN_ROOT), as runc does.
        try:
            target = os.readlink(name, dir_fd=parent_fd)
        except OSError:
            target = None
        if target is not None:
            os.close(parent_fd)
            parent_fd = -1
            nxt = os.path.normpath(target if target.startswith("/") else os.path.join(parent, target))
            return _ensure(root_fd, "/" + nxt.lstrip("/"), directory, depth + 1)
    finally:
        if parent_fd >= 0:
            os.close(parent_fd)
    return resolve_in_root(root_fd, path)
