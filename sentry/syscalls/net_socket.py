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
- IP addresses are checked first against the sandbox's network policy
  (sentry/netguard.py: connect the destination, bind the local address),
  then the call is made on our copy with the bytes that were checked, or
  answered EACCES.  listen(2) is notified too: the local address the socket
  is bound to (getsockname of our copy) is checked, and listen is made on
  our copy.

socket(2) for AF_NETLINK only (the other families stay native by argument
rules): NETLINK_ROUTE and NETLINK_SOCK_DIAG sockets are created by the
sentry, in the container's network namespace, while its thread's effective
capabilities exclude CAP_NET_ADMIN, and installed in the caller (ADDFD).
Netlink checks a mutating request's CAP_NET_ADMIN against the credentials
the socket FILE was opened with as well as the sender's
(__netlink_ns_capable: file_ns_capable(sk->sk_socket->file) && ns_capable),
so every RTM_NEW*/RTM_DEL*/RTM_SET* (links, addresses, routes, rules,
qdiscs) and SOCK_DESTROY gets EPERM from the kernel whatever the workload
holds, while dumps (`ip addr`, `ip route`, `ss`) work.  Other netlink
protocols: EPROTONOSUPPORT, as if not built into the kernel.

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
from ..netguard import destination
from ..paths import LAST_NORM
from ..resolve import signed_fd

_libc = ctypes.CDLL("libc.so.6", use_errno=True)
_sys = _libc.syscall
_sys.restype = ctypes.c_long
SYS_socket, SYS_connect, SYS_bind, SYS_listen, SYS_getsockname = 41, 42, 49, 50, 51
SYS_pidfd_getfd = 438
AF_UNIX, AF_NETLINK = 1, 16
SOCKADDR_STORAGE = 128
SOCKADDR_UN = 110
SOCK_DGRAM, SOCK_RAW = 2, 3
SOCK_NONBLOCK, SOCK_CLOEXEC = 0o4000, 0o2000000
NETLINK_ROUTE, NETLINK_SOCK_DIAG = 0, 4
NETLINK_PROTOCOLS = {NETLINK_ROUTE: "route: dumps only", NETLINK_SOCK_DIAG: "ss: dumps only"}
CAP_NET_ADMIN = 12


CAP_SYS_PTRACE = 19


class NetCaps:
    """`with NetCaps(call):` the network system call the sentry makes for
    the caller runs with the CALLER's effective capabilities, less
    CAP_NET_ADMIN (plus CAP_SYS_PTRACE, which no network check reads and
    the next pidfd_getfd needs).

    The kernel checks the current task's capabilities in these paths: a
    bind below ip_unprivileged_port_start (CAP_NET_BIND_SERVICE), and a
    netlink message sent WITH a destination address (sendto/sendmsg with a
    sockaddr_nl), which __netlink_ns_capable then checks against the
    sender only (NETLINK_SKB_DST skips the file's credentials).  Without
    CAP_NET_ADMIN every such mutation is EPERM, whatever the caller holds.
    The set stays in force after the call (ThreadCreds.use_caps records
    it): the next network call of the same caller needs no capset at all,
    and any other handler switches from it as from any caller's.
    """

    __slots__ = ()

    def __init__(self, call: Call) -> None:
        want = call.creds().cap_eff & ~(1 << CAP_NET_ADMIN) | 1 << CAP_SYS_PTRACE
        call.creds_state.use_caps(want)

    def __enter__(self) -> "NetCaps":
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def take_fd(call: Call, n: int) -> int:
    """Our copy of the caller's fd n: paths.held_fd, with the pidfd the
    thread's credentials cache keeps for the caller (no pidfd_open/close)."""
    call.creds()
    pidfd = call.creds_cache.pidfd(call.pid)
    if pidfd < 0:
        return paths.held_fd(call, n)
    if n < 0 or n > 0x7FFFFFFF:
        raise SysError(errno.EBADF, "target fd")
    cs = call.creds_state
    if cs.ptrace_dropped:
        cs.restore_ptrace()
    call.check_valid()
    r = _sys(SYS_pidfd_getfd, pidfd, n, 0)
    if r < 0:
        err = ctypes.get_errno()
        raise SysError(err, "pidfd_getfd")
    return int(r)


def check_name(call: Call, what: str, addr: bytes) -> int:
    """0, or -EACCES if the network policy refuses this sockaddr for WHAT."""
    net = call.sb.options.net
    return net.check(call.pid, what, addr) if net is not None else 0


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


def unix_path(addr: bytes) -> bytes | None:
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
    path = unix_path(addr)
    unix = addr[:2] == AF_UNIX.to_bytes(2, "little")
    if path is None and not unix:
        r = check_name(call, "connect", addr)
        if r:
            return r
    sock = take_fd(call, signed_fd(call.args[0]))
    try:
        if path is None:
            call.check_valid()
            if not unix:
                with NetCaps(call):
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
    path = unix_path(addr)
    if path is None and addr[:2] != AF_UNIX.to_bytes(2, "little"):
        r = check_name(call, "bind", addr)
        if r:
            return r
    sock = take_fd(call, signed_fd(call.args[0]))
    try:
        if path is None:
            with NetCaps(call):
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


def listen(call: Call) -> int:
    """Implements Linux syscall listen(2)."""
    sock = take_fd(call, signed_fd(call.args[0]))
    try:
        buf = ctypes.create_string_buffer(SOCKADDR_STORAGE)
        n = ctypes.c_uint32(SOCKADDR_STORAGE)
        name = buf.raw[:n.value] if _sys(SYS_getsockname, sock, buf, ctypes.byref(n)) == 0 else b""
        backlog = ctypes.c_int(call.args[1] & 0xFFFFFFFF)
        if name[:2] == AF_UNIX.to_bytes(2, "little"):
            # The kernel records the listener's effective ids as what its
            # clients read with SO_PEERCRED: the caller's (creds.as_peer).
            with call.creds_state.as_peer(call.creds()):
                r = _sys(SYS_listen, sock, backlog)
            return 0 if r == 0 else -ctypes.get_errno()
        if call.sb.options.net is not None and destination(name) is not None:
            r = check_name(call, "listen", name)
            if r:
                return r
        with NetCaps(call):
            r = _sys(SYS_listen, sock, backlog)
        return 0 if r == 0 else -ctypes.get_errno()
    finally:
        os.close(sock)


def socket(call: Call) -> int | None:
    """Implements Linux syscall socket(2) for AF_NETLINK."""
    a = call.args
    family, typ, proto = a[0] & 0xFFFFFFFF, a[1] & 0xFFFFFFFF, a[2] & 0xFFFFFFFF
    if family != AF_NETLINK:
        return -errno.EAFNOSUPPORT  # the filter notifies AF_NETLINK only
    if typ & ~(0xF | SOCK_NONBLOCK | SOCK_CLOEXEC):
        return -errno.EINVAL
    if typ & 0xF not in (SOCK_RAW, SOCK_DGRAM):
        return -errno.ESOCKTNOSUPPORT
    if proto not in NETLINK_PROTOCOLS:
        return -errno.EPROTONOSUPPORT
    fd = _netlink_socket(call, (typ & (0xF | SOCK_NONBLOCK)) | SOCK_CLOEXEC, proto)
    call.reply_fd(fd, bool(typ & SOCK_CLOEXEC))
    return None


def _netlink_socket(call: Call, typ: int, proto: int) -> int:
    """A netlink socket whose file credentials lack CAP_NET_ADMIN (module
    docstring): made with this thread's effective set cut (NetCaps)."""
    with NetCaps(call):
        fd = _sys(SYS_socket, AF_NETLINK, typ, proto)
        err = ctypes.get_errno()
    if fd < 0:
        raise SysError(err, "netlink socket")
    return int(fd)
