"""Attributes: chmod, chown, utimes, truncate, xattrs, inotify_add_watch.

The path is resolved in the container root to an O_PATH fd (following the
last symlink or not, as the call does), then the change is made on THAT
object with the target's credentials, never by path:

- *at(fd, "", AT_EMPTY_PATH) where the host call has it (fchownat,
  utimensat);
- otherwise through our own magic link /proc/self/fd/<fd> (chmod,
  truncate, xattrs, inotify): following it jumps to the very inode, and for an
  O_PATH|O_NOFOLLOW fd of a symlink it lands on the symlink itself, which
  is what the l* variants act on.

The fd-taking variants (fchmod, fchown, futimens, f*xattr) act on our pidfd_getfd(2)
copy of the target's fd: the same open file, so the kernel's own answers
(EBADF for O_PATH fds...) are the target's.
"""

from __future__ import annotations

import ctypes
import errno
import os
import stat as _stat
import struct

from .. import ownproc, paths
from ..call import Call
from ..errors import SysError
from ..hostcalls import AT_EMPTY_PATH, AT_SYMLINK_NOFOLLOW
from .fs_stat import _lookup

_libc = ctypes.CDLL("libc.so.6", use_errno=True)
_sys = _libc.syscall
_sys.restype = ctypes.c_long
SYS_fchownat = 260
SYS_fchmodat = 268
SYS_fchown = 93
SYS_utimensat = 280
_EMPTY = b""
_O_PATH = os.O_PATH | os.O_CLOEXEC
_O_PATH_NOFOLLOW = _O_PATH | os.O_NOFOLLOW


def _ret(r: int) -> int:
    return 0 if r == 0 else -ctypes.get_errno()


def _obj(call: Call, dirfd: int | None, path_idx: int, follow: bool,
         intent: int = paths.CHANGE) -> int:
    """The object a path call acts on (O_PATH), checked for what it does
    (sentry/kernobj.py: attribute changes by default)."""
    path = call.path(path_idx)
    return paths.open_path(call, dirfd, path, _O_PATH if follow else _O_PATH_NOFOLLOW,
                           intent=intent)


def _proc_self(fd: int) -> bytes:
    return b"/proc/self/fd/%d" % fd


def _held(call: Call, arg: int | None = None, intent: int = paths.CHANGE) -> int:
    """Our copy of the target's fd arg (default: argument 0), acting as the
    target: the same open file, so the kernel's answers (EBADF for an O_PATH
    fd...) are the target's own."""
    return paths.held_fd(call, call.args[0] if arg is None else arg, intent)


# --- chmod -----------------------------------------------------------------------
def _chmod_fd(fd: int, mode: int) -> int:
    # Through our magic link, not fchmodat2(AT_EMPTY_PATH): the sentry's own
    # filter (sentry/self_filter.py) has no fchmodat2.  A symlink fd lands on
    # the symlink: EOPNOTSUPP, as fchmodat2(AT_SYMLINK_NOFOLLOW) natively.
    try:
        return _ret(_sys(SYS_fchmodat, ownproc.dirfd(), ownproc.self_fd(fd), ctypes.c_uint(mode & 0o7777)))
    finally:
        os.close(fd)


def chmod(call: Call) -> int:
    """Implements Linux syscall chmod(2)."""
    return _chmod_fd(_obj(call, None, 0, True), call.args[1] & 0xFFFFFFFF)


def fchmodat(call: Call) -> int:
    """Implements Linux syscall fchmodat(2)."""
    a = call.args
    return _chmod_fd(_obj(call, a[0], 1, True), a[2] & 0xFFFFFFFF)


def fchmodat2(call: Call) -> int:
    """Implements Linux syscall fchmodat2(2)."""
    a = call.args
    flags = a[3] & 0xFFFFFFFF
    if flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH):
        return -errno.EINVAL
    return _chmod_fd(_lookup(call, a[0], 1, flags, intent=paths.CHANGE), a[2] & 0xFFFFFFFF)


def fchmod(call: Call) -> int:
    """Implements Linux syscall fchmod(2)."""
    a = call.args
    fd = _held(call, a[0])
    try:
        os.fchmod(fd, a[1] & 0o7777)
    except OSError as e:
        return -(e.errno or errno.EIO)
    finally:
        os.close(fd)
    return 0


# --- chown -----------------------------------------------------------------------
def _chown_fd(fd: int, uid: int, gid: int) -> int:
    try:
        return _ret(_sys(SYS_fchownat, fd, _EMPTY, ctypes.c_uint(uid), ctypes.c_uint(gid),
                         AT_EMPTY_PATH))
    finally:
        os.close(fd)


def chown(call: Call) -> int:
    """Implements Linux syscall chown(2)."""
    a = call.args
    return _chown_fd(_obj(call, None, 0, True), a[1] & 0xFFFFFFFF, a[2] & 0xFFFFFFFF)


def lchown(call: Call) -> int:
    """Implements Linux syscall lchown(2)."""
    a = call.args
    return _chown_fd(_obj(call, None, 0, False), a[1] & 0xFFFFFFFF, a[2] & 0xFFFFFFFF)


def fchownat(call: Call) -> int:
    """Implements Linux syscall fchownat(2)."""
    a = call.args
    flags = a[4] & 0xFFFFFFFF
    if flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH):
        return -errno.EINVAL
    return _chown_fd(_lookup(call, a[0], 1, flags, intent=paths.CHANGE), a[2] & 0xFFFFFFFF,
                     a[3] & 0xFFFFFFFF)


def fchown(call: Call) -> int:
    """Implements Linux syscall fchown(2)."""
    a = call.args
    fd = _held(call, a[0])
    try:
        # fchown(2) itself, not fchownat(AT_EMPTY_PATH): O_PATH fds are EBADF.
        return _ret(_sys(SYS_fchown, fd, ctypes.c_uint(a[1] & 0xFFFFFFFF),
                         ctypes.c_uint(a[2] & 0xFFFFFFFF)))
    finally:
        os.close(fd)


# --- truncate --------------------------------------------------------------------
def truncate(call: Call) -> int:
    """Implements Linux syscall truncate(2)."""
    a = call.args
    length = a[1] - (1 << 64) if a[1] >> 63 else a[1]
    if length < 0:
        return -errno.EINVAL
    fd = _obj(call, None, 0, True, paths.WRITE)
    try:
        if _stat.S_ISDIR(os.fstat(fd).st_mode):
            return -errno.EISDIR
        # truncate(2) itself, on our magic link (an open for writing and
        # ftruncate would differ: EACCES before EROFS, inotify open/close
        # events, lease breaks).
        os.truncate(_proc_self(fd), length)
    except OSError as e:
        return -(e.errno or errno.EIO)
    finally:
        os.close(fd)
    return 0


# --- utimes family -----------------------------------------------------------------
class _Timespec2(ctypes.Structure):
    _fields_ = [("a_sec", ctypes.c_long), ("a_nsec", ctypes.c_long),
                ("m_sec", ctypes.c_long), ("m_nsec", ctypes.c_long)]


def _utimens(call: Call, fd: int, ts: _Timespec2 | None) -> int:
    try:
        return _ret(_sys(SYS_utimensat, fd, _EMPTY, ctypes.byref(ts) if ts is not None else None,
                         AT_EMPTY_PATH))
    finally:
        os.close(fd)


def _timevals(call: Call, addr: int) -> _Timespec2 | None:
    if not addr:
        return None
    asec, ausec, msec, musec = struct.unpack("qqqq", call.read(addr, 32))
    if not (0 <= ausec < 1000000 and 0 <= musec < 1000000):
        raise SysError(errno.EINVAL, "utimes: tv_usec")
    return _Timespec2(asec, ausec * 1000, msec, musec * 1000)


def utime(call: Call) -> int:
    """Implements Linux syscall utime(2)."""
    a = call.args
    ts = None
    if a[1]:
        asec, msec = struct.unpack("qq", call.read(a[1], 16))
        ts = _Timespec2(asec, 0, msec, 0)
    return _utimens(call, _obj(call, None, 0, True), ts)


def utimes(call: Call) -> int:
    """Implements Linux syscall utimes(2)."""
    a = call.args
    ts = _timevals(call, a[1])
    return _utimens(call, _obj(call, None, 0, True), ts)


def futimesat(call: Call) -> int:
    """Implements Linux syscall futimesat(2)."""
    a = call.args
    ts = _timevals(call, a[2])
    if not a[1]:
        return _futimens(call, a[0], ts)
    return _utimens(call, _obj(call, a[0], 1, True), ts)


def utimensat(call: Call) -> int:
    """Implements Linux syscall utimensat(2)."""
    a = call.args
    flags = a[3] & 0xFFFFFFFF
    if flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH):
        return -errno.EINVAL
    ts = None
    if a[2]:
        ts = _Timespec2()
        call.mem.read_into(call.pid, a[2], ts)
    if not a[1]:
        # futimens(2): the fd itself; no flags allowed with a NULL path.
        if flags:
            return -errno.EINVAL
        return _futimens(call, a[0], ts)
    return _utimens(call, _lookup(call, a[0], 1, flags, intent=paths.CHANGE), ts)


def _futimens(call: Call, dirfd: int, ts: _Timespec2 | None) -> int:
    fd = _held(call, dirfd)
    try:
        return _ret(_sys(SYS_utimensat, fd, None, ctypes.byref(ts) if ts is not None else None, 0))
    finally:
        os.close(fd)


# --- xattrs ------------------------------------------------------------------------
XATTR_NAME_MAX = 255
XATTR_SIZE_MAX = 65536
XATTR_LIST_MAX = 65536
XATTR_CREATE, XATTR_REPLACE = 1, 2
for _n in ("getxattr", "setxattr", "listxattr", "removexattr"):
    for _f in (_n, "f" + _n):
        getattr(_libc, _f).restype = ctypes.c_ssize_t if _n in ("getxattr", "listxattr") else ctypes.c_int


def _xname(call: Call, idx: int) -> bytes:
    name = call.mem.read_cstring(call.pid, call.args[idx], XATTR_NAME_MAX + 1)
    if not name or len(name) > XATTR_NAME_MAX:
        raise SysError(errno.ERANGE, "xattr name")
    return name


def _getxattr(call: Call, follow: bool | None) -> int:
    """follow None: fgetxattr, on our copy of the target's fd."""
    a = call.args
    name = _xname(call, 1)
    size = min(a[3], XATTR_SIZE_MAX)
    fd = _held(call, intent=paths.LOOKUP) if follow is None \
        else _obj(call, None, 0, follow, paths.LOOKUP)
    buf = ctypes.create_string_buffer(max(size, 1))
    try:
        if follow is None:
            r = _libc.fgetxattr(fd, name, buf if size else None, ctypes.c_size_t(size))
        else:
            r = _libc.getxattr(_proc_self(fd), name, buf if size else None, ctypes.c_size_t(size))
        if r < 0:
            err = ctypes.get_errno()
            return -(errno.E2BIG if err == errno.ERANGE and size == XATTR_SIZE_MAX else err)
    finally:
        os.close(fd)
    if size and r:
        call.mem.write(call.pid, a[2], buf.raw[:r])
    return r


def getxattr(call: Call) -> int:
    """Implements Linux syscall getxattr(2)."""
    return _getxattr(call, True)


def lgetxattr(call: Call) -> int:
    """Implements Linux syscall lgetxattr(2)."""
    return _getxattr(call, False)


def fgetxattr(call: Call) -> int:
    """Implements Linux syscall fgetxattr(2)."""
    return _getxattr(call, None)


def _setxattr(call: Call, follow: bool | None) -> int:
    a = call.args
    size, flags = a[3], a[4] & 0xFFFFFFFF
    if flags & ~(XATTR_CREATE | XATTR_REPLACE):
        return -errno.EINVAL
    name = _xname(call, 1)
    if size > XATTR_SIZE_MAX:
        return -errno.E2BIG
    value = call.read(a[2], size) if size else b""
    fd = _held(call) if follow is None else _obj(call, None, 0, follow)
    try:
        if follow is None:
            return _ret(_libc.fsetxattr(fd, name, value, ctypes.c_size_t(size), flags))
        return _ret(_libc.setxattr(_proc_self(fd), name, value, ctypes.c_size_t(size), flags))
    finally:
        os.close(fd)


def setxattr(call: Call) -> int:
    """Implements Linux syscall setxattr(2)."""
    return _setxattr(call, True)


def lsetxattr(call: Call) -> int:
    """Implements Linux syscall lsetxattr(2)."""
    return _setxattr(call, False)


def fsetxattr(call: Call) -> int:
    """Implements Linux syscall fsetxattr(2)."""
    return _setxattr(call, None)


def _listxattr(call: Call, follow: bool | None) -> int:
    a = call.args
    fd = _held(call, intent=paths.LOOKUP) if follow is None \
        else _obj(call, None, 0, follow, paths.LOOKUP)
    return _list_names(call, fd, follow is None, a[1], a[2])


def _list_names(call: Call, fd: int, held: bool, out: int, size: int) -> int:
    """List fd's attribute names into the caller's buffer at out (size
    bytes; 0: just the length); closes fd.  held: fd is the caller's own
    (flistxattr on it), else one we resolved (listxattr on its magic link)."""
    size = min(size, XATTR_LIST_MAX)
    buf = ctypes.create_string_buffer(max(size, 1))
    try:
        if held:
            r = _libc.flistxattr(fd, buf if size else None, ctypes.c_size_t(size))
        else:
            r = _libc.listxattr(_proc_self(fd), buf if size else None, ctypes.c_size_t(size))
        if r < 0:
            err = ctypes.get_errno()
            return -(errno.E2BIG if err == errno.ERANGE and size == XATTR_LIST_MAX else err)
    finally:
        os.close(fd)
    if size and r:
        call.mem.write(call.pid, out, buf.raw[:r])
    return r


def listxattr(call: Call) -> int:
    """Implements Linux syscall listxattr(2)."""
    return _listxattr(call, True)


def llistxattr(call: Call) -> int:
    """Implements Linux syscall llistxattr(2)."""
    return _listxattr(call, False)


def flistxattr(call: Call) -> int:
    """Implements Linux syscall flistxattr(2)."""
    return _listxattr(call, None)


def _removexattr(call: Call, follow: bool | None) -> int:
    name = _xname(call, 1)
    fd = _held(call) if follow is None else _obj(call, None, 0, follow)
    try:
        if follow is None:
            return _ret(_libc.fremovexattr(fd, name))
        return _ret(_libc.removexattr(_proc_self(fd), name))
    finally:
        os.close(fd)


def removexattr(call: Call) -> int:
    """Implements Linux syscall removexattr(2)."""
    return _removexattr(call, True)


def lremovexattr(call: Call) -> int:
    """Implements Linux syscall lremovexattr(2)."""
    return _removexattr(call, False)


def fremovexattr(call: Call) -> int:
    """Implements Linux syscall fremovexattr(2)."""
    return _removexattr(call, None)


# --- inotify -----------------------------------------------------------------------
IN_DONT_FOLLOW = 0x02000000
IN_ONLYDIR = 0x01000000
_libc.inotify_add_watch.restype = ctypes.c_int


def inotify_add_watch(call: Call) -> int:
    """Implements Linux syscall inotify_add_watch(2)."""
    a = call.args
    mask = a[2] & 0xFFFFFFFF
    ifd = paths.held_fd(call, a[0])
    try:
        obj = _obj(call, None, 1, not mask & IN_DONT_FOLLOW, paths.LOOKUP)
        try:
            # Our magic link is followed whatever the mask says: it lands on
            # the object resolved above (the symlink itself for DONT_FOLLOW).
            r = _libc.inotify_add_watch(ifd, _proc_self(obj), ctypes.c_uint32(mask & ~IN_DONT_FOLLOW))
            return r if r >= 0 else -ctypes.get_errno()
        finally:
            os.close(obj)
    finally:
        os.close(ifd)


# --- the *xattrat family (Linux 6.13): dirfd, path, AT_* flags ----------------------
_AT_XATTR = AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH
XATTR_ARGS_SIZE_VER0 = 16
PAGE_SIZE = 4096


def _xat_object(call: Call, intent: int) -> int:
    a = call.args
    flags = a[2] & 0xFFFFFFFF
    if flags & ~_AT_XATTR:
        raise SysError(errno.EINVAL, "xattrat flags")
    return _lookup(call, a[0], 1, flags, intent=intent)


def _xattr_args(call: Call) -> tuple[int, int, int]:
    """(value address, size, flags) of struct xattr_args at args[4] of size args[5]."""
    a = call.args
    usize = a[5]
    if usize < XATTR_ARGS_SIZE_VER0:
        raise SysError(errno.EINVAL, "xattr_args size")
    if usize > PAGE_SIZE:
        raise SysError(errno.E2BIG, "xattr_args size")
    raw = call.read(a[4], usize)
    if raw[XATTR_ARGS_SIZE_VER0:].strip(b"\0"):
        raise SysError(errno.E2BIG, "xattr_args: unknown fields")
    value, size, flags = struct.unpack_from("QII", raw)
    return value, size, flags


def getxattrat(call: Call) -> int:
    """Implements Linux syscall getxattrat(2)."""
    name = _xname(call, 3)
    value, size, flags = _xattr_args(call)
    if flags:
        return -errno.EINVAL
    size = min(size, XATTR_SIZE_MAX)
    fd = _xat_object(call, paths.LOOKUP)
    buf = ctypes.create_string_buffer(max(size, 1))
    try:
        r = _libc.getxattr(_proc_self(fd), name, buf if size else None, ctypes.c_size_t(size))
        if r < 0:
            err = ctypes.get_errno()
            return -(errno.E2BIG if err == errno.ERANGE and size == XATTR_SIZE_MAX else err)
    finally:
        os.close(fd)
    if size and r:
        call.mem.write(call.pid, value, buf.raw[:r])
    return r


def setxattrat(call: Call) -> int:
    """Implements Linux syscall setxattrat(2)."""
    name = _xname(call, 3)
    value, size, flags = _xattr_args(call)
    if flags & ~(XATTR_CREATE | XATTR_REPLACE):
        return -errno.EINVAL
    if size > XATTR_SIZE_MAX:
        return -errno.E2BIG
    data = call.read(value, size) if size else b""
    fd = _xat_object(call, paths.CHANGE)
    try:
        return _ret(_libc.setxattr(_proc_self(fd), name, data, ctypes.c_size_t(size), flags))
    finally:
        os.close(fd)


def listxattrat(call: Call) -> int:
    """Implements Linux syscall listxattrat(2)."""
    a = call.args
    return _list_names(call, _xat_object(call, paths.LOOKUP), False, a[3], a[4])


def removexattrat(call: Call) -> int:
    """Implements Linux syscall removexattrat(2)."""
    name = _xname(call, 3)
    fd = _xat_object(call, paths.CHANGE)
    try:
        return _ret(_libc.removexattr(_proc_self(fd), name))
    finally:
        os.close(fd)
