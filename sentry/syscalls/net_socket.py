"""bind(2) and connect(2): addresses read once, the call made by the sentry.

The decision depends on the address behind a pointer, so the call is never
CONTINUEd (another thread could rewrite a checked AF_UNIX path into a host
path).  The sentry takes the target's socket with pidfd_getfd(2) (the same
open file: state, flags, options are shared) and calls bind/connect on it
with its private copy of the address:

- AF_UNIX with a path, connect: the path is resolved in the container root
  (following symlinks, as the kernel does) to an O_PATH fd with the
  target's credentials, and the socket connected to "/proc/self/fd/<fd>":
  our magic link jumps to that very inode, and the kernel checks write
  permission on it with the target's credentials.
- AF_UNIX with a path, bind: the parent directory is resolved in the root
  and the socket bound with the caller's own string, which the sentry makes
  resolve to that directory through its own scratch tree and magic link
  (sentry/unixnames.py: getsockname then reports the caller's name); the
  kernel creates the one final name there, never following it.  Names that
  cannot be mirrored are bound as "/proc/self/fd/<dir fd>/<name>".
  The kernel applies the BINDER's umask, the sentry's 0, so the socket
  file's mode is then set to 0777 & ~target umask through an O_NOFOLLOW fd
  of what was created (a brief window with mode 0777).  The sentry's own
  filter forbids unshare(CLONE_FS), which would give a worker its own umask
  and cwd.  Unmirrored names longer than 108 - len("/proc/self/fd/N/")
  bytes: EINVAL (the kernel's answer for an over-long sun_path).
- abstract names, autobind (addrlen 2) and every other family: the call is
  made as given on our copy (abstract names and IP addresses are not paths:
  the socket's network namespace, the container's, confines them).

The kernel records the connecting task's effective ids as the peer
credentials a server reads (SO_PEERCRED, SO_PEERGROUPS): an AF_UNIX
connect runs with the caller's effective uid, gid and groups in force on
the sentry's thread (ThreadCreds.as_peer).  Known difference: the peer's
pid is the sentry's, outside the container's pid namespace, so a server
there reads pid 0.
"""

from __future__ import annotations

import ctypes
import errno
import os
import stat

from .. import ownproc, paths
from ..call import Call
from ..errors import SysError
from ..paths import LAST_NORM

_libc = ctypes.CDLL("libc.so.6", use_errno=True)
_sys = _libc.syscall
_sys.restype = ctypes.c_long
SYS_connect, SYS_bind = 42, 49
AF_UNIX = 1
SOCKADDR_STORAGE = 128
SOCKADDR_UN = 110


def _raw(nr: int, fd: int, addr: bytes) -> int:
    buf = ctypes.create_string_buffer(addr, max(len(addr), 1))
    r = _sys(nr, fd, buf if addr else None, len(addr))
    return 0 if r == 0 else -ctypes.get_errno()


def _read_addr(call: Call) -> bytes:
    a = call.args
    alen = a[2] & 0xFFFFFFFF
    if alen > 0x7FFFFFFF or alen > SOCKADDR_STORAGE:
        raise SysError(errno.EINVAL, "sockaddr length")
    return call.read(a[1], alen) if alen else b""


def _unix_path(addr: bytes) -> bytes | None:
    """The filesystem path of an AF_UNIX address, or None (abstract/autobind)."""
    if len(addr) < 2 or int.from_bytes(addr[:2], "little") != AF_UNIX:
        return None
    if len(addr) > SOCKADDR_UN:
        raise SysError(errno.EINVAL, "sockaddr_un length")
    sun = addr[2:]
    if not sun or sun[0] == 0:
        return None
    return sun.split(b"\0", 1)[0]


def _apply_umask(call: Call, pfd: int, name: bytes, umask: int) -> None:
    fd = paths.open_child(call, pfd, name, os.O_PATH | os.O_NOFOLLOW)
    if fd < 0:
        return
    try:
        if stat.S_ISSOCK(os.fstat(fd).st_mode):
            _sys(268, ownproc.dirfd(), ownproc.self_fd(fd), ctypes.c_uint(0o777 & ~umask))  # fchmodat
    except OSError:
        pass
    finally:
        os.close(fd)


def connect(call: Call) -> int:
    """Implements Linux syscall connect(2)."""
    addr = _read_addr(call)
    path = _unix_path(addr)
    sock = paths.held_fd(call, call.args[0])
    try:
        if path is None:
            call.check_valid()
            if addr[:2] != AF_UNIX.to_bytes(2, "little"):
                return _raw(SYS_connect, sock, addr)
            with call.creds_state.as_peer(call.creds()):
                return _raw(SYS_connect, sock, addr)
        obj = paths.open_path(call, None, path, os.O_PATH | os.O_CLOEXEC)
        try:
            via = b"/proc/self/fd/%d" % obj
            with call.creds_state.as_peer(call.creds()):
                return _raw(SYS_connect, sock, AF_UNIX.to_bytes(2, "little") + via + b"\0")
        finally:
            os.close(obj)
    finally:
        os.close(sock)


def bind(call: Call) -> int:
    """Implements Linux syscall bind(2)."""
    addr = _read_addr(call)
    path = _unix_path(addr)
    sock = paths.held_fd(call, call.args[0])
    try:
        if path is None:
            call.check_valid()
            return _raw(SYS_bind, sock, addr)
        umask = call.umask()
        pfd, name, kind = paths.open_parent(call, None, path)
        try:
            if kind != LAST_NORM:
                return -errno.EEXIST
            r = call.sb.names.bind(
                path, pfd, lambda p: _raw(SYS_bind, sock, AF_UNIX.to_bytes(2, "little") + p + b"\0"),
                call.creds_state.reset, call.act_as_target)
            if r is None:  # not mirrored (sentry/unixnames.py): our magic link's name
                via = b"/proc/self/fd/%d/%s" % (pfd, name)
                if len(via) >= SOCKADDR_UN - 2:
                    return -errno.EINVAL
                r = _raw(SYS_bind, sock, AF_UNIX.to_bytes(2, "little") + via + b"\0")
            if r == 0:
                _apply_umask(call, pfd, name.rstrip(b"/"), umask)
            return r
        finally:
            os.close(pfd)
    finally:
        os.close(sock)
