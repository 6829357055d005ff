"""sendto(2) with an address, sendmsg(2), sendmmsg(2): sent by the sentry.

The destination of a sendmsg lies inside struct msghdr, which a BPF filter
cannot read, and CONTINUE after a check would let another thread rewrite it
(seccomp_unotify(2): "cannot be used to implement a security policy").  So
the sentry copies everything the kernel would read (msghdr, name, iovecs and
their data, control messages) ONCE, checks the name (sentry/netguard.py),
and makes the send itself on its pidfd_getfd copy of the workload's socket
(the same open file: its state, options, O_NONBLOCK and timeouts are the
workload's).  sendto with a NULL address (what send(2) is) stays native by
an argument rule; every sendmsg is notified, with or without a name, for the
same reason (the name pointer itself could be set after the check).

The send runs with the caller's effective capabilities less CAP_NET_ADMIN
(net_socket.NetCaps: a netlink message with a destination address is
checked against the sender's capabilities only, so no mutation passes).
What the kernel would check against the SENDER's credentials beyond those
is checked here against the caller's, since the kernel sees the sentry's:
- SCM_RIGHTS: each fd is taken from the caller (pidfd_getfd: EBADF if it
  holds no such fd) and the copies are sent;
- SCM_CREDENTIALS: the pid must be the caller's own (in its namespace; it
  is rewritten to the sentry's view of it), uid and gid one of its real,
  effective or saved ids unless it holds CAP_SETUID / CAP_SETGID (a pid of
  another process is refused even with CAP_SYS_ADMIN: EPERM);
- SO_MARK and SO_PRIORITY above 6 need CAP_NET_RAW or CAP_NET_ADMIN; the
  IPv6 hop-by-hop and destination options CAP_NET_RAW.
Refused outright (EPERM): control messages that steer a packet to another
first hop than its destination: IPv6 routing headers (IPV6_RTHDR) and IPv4
options (IP_RETOPTS: source routes).
Every other control message is passed as given.

AF_UNIX names with a path are resolved in the container root, as connect
does (sentry/syscalls/net_socket.py), and sent to our magic link of the
socket inode.  On an AF_UNIX socket the send runs with the caller's
effective uid, gid and groups (creds.as_peer), which a receiver with
SO_PASSCRED reads; the pid it reads is the sentry's (0 in the container)
unless the caller sent its own SCM_CREDENTIALS.

Limits: at most UIO_MAXIOV (1024) iovecs (else EMSGSIZE, as Linux) and
4 MiB of data per message: a stream socket then sends a prefix (a short
write), any other gets EMSGSIZE; control data up to 128 KiB (ENOBUFS).
A send that blocks holds its sentry worker (the supervisor starts another).
EPIPE without MSG_NOSIGNAL raises SIGPIPE in the caller's process (the
kernel would raise it in the sender's thread: the sentry's, which ignores it).
"""

from __future__ import annotations

import ctypes
import errno
import os
import _signal  # signal.py's C module: signal.py imports enum (runsc_py/signals.py)
import struct
TYPE_CHECKING = False  # typing's, without importing typing (docs/performance.md, Start-up)
if TYPE_CHECKING:
    from contextlib import AbstractContextManager

from .. import paths
from ..call import Call
from ..creds import _field, _status
from ..errors import SysError
from ..resolve import signed_fd
from .net_socket import AF_UNIX, SOCKADDR_STORAGE, NetCaps, check_name, take_fd, unix_path

_libc = ctypes.CDLL("libc.so.6", use_errno=True)
_sys = _libc.syscall
_sys.restype = ctypes.c_long
SYS_sendto, SYS_sendmsg, SYS_getsockopt = 44, 46, 55

UIO_MAXIOV = 1024
MAX_DATA = 4 << 20
MAX_CONTROL = 128 << 10
MSGHDR = struct.Struct("<QI4xQQQQi4x")  # name, namelen, iov, iovlen, control, controllen, flags
MMSGHDR_SIZE = 64                       # msghdr + unsigned msg_len + padding
IOVEC = struct.Struct("<QQ")
CMSGHDR = struct.Struct("<Qii")
SOL_SOCKET, SOL_IP, SOL_IPV6 = 1, 0, 41
SCM_RIGHTS, SCM_CREDENTIALS = 1, 2
SO_TYPE, SO_PRIORITY, SO_MARK, SO_DOMAIN = 3, 12, 36, 39
IP_RETOPTS = 7
IPV6_2292HOPOPTS, IPV6_2292DSTOPTS, IPV6_2292RTHDR, IPV6_2292PKTOPTIONS = 3, 4, 5, 6
IPV6_HOPOPTS, IPV6_RTHDRDSTOPTS, IPV6_RTHDR, IPV6_DSTOPTS = 54, 55, 57, 59
SOCK_STREAM = 1
CAP_SETGID, CAP_SETUID, CAP_NET_ADMIN, CAP_NET_RAW = 6, 7, 12, 13
_NET_PRIV = 1 << CAP_NET_ADMIN | 1 << CAP_NET_RAW


class _Iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


class _Msghdr(ctypes.Structure):
    _fields_ = [("name", ctypes.c_void_p), ("namelen", ctypes.c_uint32),
                ("iov", ctypes.POINTER(_Iovec)), ("iovlen", ctypes.c_size_t),
                ("control", ctypes.c_void_p), ("controllen", ctypes.c_size_t),
                ("flags", ctypes.c_int)]


def _cmsg_align(n: int) -> int:
    return (n + 7) & ~7


class _Message:
    """A private copy of one message, ready to send from the sentry: owns
    the fds it took from the caller (close())."""

    def __init__(self) -> None:
        self.name: bytes = b""
        self.data: list[bytes] = []
        self.control = b""
        self.fds: list[int] = []
        self.obj = -1  # an O_PATH fd of an AF_UNIX destination
        self.creds_given = False  # an SCM_CREDENTIALS control message

    def close(self) -> None:
        for fd in self.fds:
            os.close(fd)
        self.fds = []
        if self.obj >= 0:
            os.close(self.obj)
            self.obj = -1

    def send(self, sock: int, flags: int) -> int:
        if not self.control and len(self.data) <= 1:
            # One buffer, no control data: sendto(2) is the same send,
            # without building a msghdr (the common UDP case).
            data = self.data[0] if self.data else b""
            r = _sys(SYS_sendto, sock, data, len(data), ctypes.c_int(flags),
                     self.name or None, len(self.name))
            return int(r) if r >= 0 else -ctypes.get_errno()
        bufs = [ctypes.create_string_buffer(d, len(d)) for d in self.data]
        iov = (_Iovec * max(1, len(bufs)))()
        for i, b in enumerate(bufs):
            iov[i].base = ctypes.addressof(b)
            iov[i].len = len(self.data[i])
        name = ctypes.create_string_buffer(self.name, len(self.name)) if self.name else None
        ctl = ctypes.create_string_buffer(self.control, len(self.control)) if self.control else None
        m = _Msghdr(ctypes.addressof(name) if name is not None else None, len(self.name),
                    iov, len(bufs), ctypes.addressof(ctl) if ctl is not None else None,
                    len(self.control), 0)
        r = _sys(SYS_sendmsg, sock, ctypes.byref(m), ctypes.c_int(flags))
        return int(r) if r >= 0 else -ctypes.get_errno()


MSG_NOSIGNAL = 0x4000


def _sigpipe(call: Call, r: int, flags: int) -> int:
    """EPIPE raises SIGPIPE in the SENDER, here the sentry (which ignores
    it): raise it in the caller, as its own send would have (the caller is
    blocked in this very call, so its pid is still its own)."""
    if r == -errno.EPIPE and not flags & MSG_NOSIGNAL:
        try:
            os.kill(call.pid, _signal.SIGPIPE)
        except ProcessLookupError:
            pass
    return r


def _sender(call: Call, sock: int, msg: "_Message") -> AbstractContextManager[object]:
    """The credentials a send runs with: on an AF_UNIX socket the caller's
    effective ids (creds.as_peer: a receiver with SO_PASSCRED reads the
    sender's uid and gid), unless the caller gave its own SCM_CREDENTIALS;
    else its capabilities less CAP_NET_ADMIN (NetCaps)."""
    v = ctypes.c_int(0)
    n = ctypes.c_uint32(4)
    if not msg.creds_given and \
            _sys(SYS_getsockopt, sock, SOL_SOCKET, SO_DOMAIN, ctypes.byref(v), ctypes.byref(n)) == 0 \
            and v.value == AF_UNIX:
        return call.creds_state.as_peer(call.creds())
    return NetCaps(call)


def _sock_type(sock: int) -> int:
    v = ctypes.c_int(0)
    n = ctypes.c_uint32(4)
    if _sys(SYS_getsockopt, sock, SOL_SOCKET, SO_TYPE, ctypes.byref(v), ctypes.byref(n)) < 0:
        raise SysError(ctypes.get_errno(), "getsockopt SO_TYPE")
    return v.value


def _read_data(call: Call, sock: int, iovs: list[tuple[int, int]], msg: _Message) -> None:
    total = 0
    for base, length in iovs:
        if length > 0x7FFFFFFF:
            raise SysError(errno.EINVAL, "iovec length")
        total += length
    if total > MAX_DATA:
        if _sock_type(sock) != SOCK_STREAM:
            raise SysError(errno.EMSGSIZE, "message larger than the sentry sends")
    room = MAX_DATA
    for base, length in iovs:
        n = min(length, room)
        if n:
            msg.data.append(call.read(base, n))
            room -= n
        if not room:
            break


def _ucred(call: Call, data: bytes) -> bytes:
    """An SCM_CREDENTIALS payload checked as the kernel checks the sender's,
    with the pid rewritten to the sentry's view of the caller."""
    if len(data) < 12:
        raise SysError(errno.EINVAL, "SCM_CREDENTIALS length")
    pid, uid, gid = struct.unpack_from("<iII", data)
    creds = call.creds()
    status = _status(call.pid)
    uids = {int(x) for x in _field(status, b"\nUid:", call.pid)[:3]}
    gids = {int(x) for x in _field(status, b"\nGid:", call.pid)[:3]}
    if pid != creds.ns_tgid:
        raise SysError(errno.EPERM, "SCM_CREDENTIALS pid")
    if uid not in uids and not creds.cap_eff >> CAP_SETUID & 1:
        raise SysError(errno.EPERM, "SCM_CREDENTIALS uid")
    if gid not in gids and not creds.cap_eff >> CAP_SETGID & 1:
        raise SysError(errno.EPERM, "SCM_CREDENTIALS gid")
    tgid = int(_field(status, b"\nTgid:", call.pid)[0])
    return struct.pack("<iII", tgid, uid, gid) + data[12:]


def _control(call: Call, raw: bytes, msg: _Message) -> bytes:
    """Our copy of the control messages (module docstring)."""
    out = []
    off = 0
    while off + CMSGHDR.size <= len(raw):
        clen, level, typ = CMSGHDR.unpack_from(raw, off)
        if clen < CMSGHDR.size or clen > len(raw) - off:
            raise SysError(errno.EINVAL, "cmsg length")
        data = raw[off + CMSGHDR.size:off + clen]
        if level == SOL_SOCKET and typ == SCM_RIGHTS:
            nums = struct.unpack(f"<{len(data) // 4}i", data[:len(data) // 4 * 4])
            ours = []
            for n in nums:
                fd = take_fd(call, n)
                msg.fds.append(fd)
                ours.append(fd)
            data = struct.pack(f"<{len(ours)}i", *ours)
        elif level == SOL_SOCKET and typ == SCM_CREDENTIALS:
            data = _ucred(call, data)
            msg.creds_given = True
        elif level == SOL_SOCKET and typ in (SO_MARK, SO_PRIORITY):
            prio = int.from_bytes(data[:4], "little") if len(data) >= 4 else 0
            if (typ == SO_MARK or prio > 6) and not call.creds().cap_eff & _NET_PRIV:
                raise SysError(errno.EPERM, "cmsg needs CAP_NET_ADMIN")
        elif level == SOL_IPV6 and typ in (IPV6_RTHDR, IPV6_2292RTHDR, IPV6_2292PKTOPTIONS):
            raise SysError(errno.EPERM, "routing header: refused by the network policy")
        elif level == SOL_IPV6 and typ in (IPV6_HOPOPTS, IPV6_RTHDRDSTOPTS, IPV6_DSTOPTS,
                                           IPV6_2292HOPOPTS, IPV6_2292DSTOPTS):
            if not call.creds().cap_eff >> CAP_NET_RAW & 1:
                raise SysError(errno.EPERM, "IPv6 options need CAP_NET_RAW")
        elif level == SOL_IP and typ == IP_RETOPTS:
            raise SysError(errno.EPERM, "IP options: refused by the network policy")
        hdr = CMSGHDR.pack(CMSGHDR.size + len(data), level, typ)
        out.append(hdr + data + bytes(_cmsg_align(len(data)) - len(data)))
        off += _cmsg_align(clen)
    return b"".join(out)


def _read_msghdr(call: Call, sock: int, addr: int, msg: _Message) -> int:
    """Copy the message at addr into msg; returns its flags field."""
    name_p, namelen, iov_p, iovlen, ctl_p, ctllen, _flags = MSGHDR.unpack(call.read(addr, MSGHDR.size))
    if iovlen > UIO_MAXIOV:
        raise SysError(errno.EMSGSIZE, "msg_iovlen")
    if namelen > 0x7FFFFFFF:
        raise SysError(errno.EINVAL, "msg_namelen")
    nlen = min(namelen, SOCKADDR_STORAGE) if name_p else 0
    ilen = iovlen * IOVEC.size
    lo, hi = min(name_p, iov_p), max(name_p + nlen, iov_p + ilen)
    if nlen and ilen and hi - lo <= 4096:
        # name and iovec side by side (both on the caller's stack, as a
        # rule): one read of the span between them.
        span = call.read(lo, hi - lo)
        msg.name = span[name_p - lo:name_p - lo + nlen]
        raw_iov = span[iov_p - lo:iov_p - lo + ilen]
    else:
        if nlen:
            msg.name = call.read(name_p, nlen)
        raw_iov = call.read(iov_p, ilen) if ilen else b""
    iovs = [IOVEC.unpack_from(raw_iov, i * IOVEC.size) for i in range(iovlen)]
    if ctllen > 0x7FFFFFFF or ctllen > MAX_CONTROL:
        raise SysError(errno.ENOBUFS, "msg_controllen")
    if ctl_p and ctllen:
        msg.control = _control(call, call.read(ctl_p, ctllen), msg)
    _read_data(call, sock, iovs, msg)
    return _flags


def _name_ok(call: Call, what: str, msg: _Message) -> int:
    """Check msg.name; an AF_UNIX path is resolved for the caller."""
    if not msg.name:
        return 0
    path = unix_path(msg.name)
    if path is None:
        return check_name(call, what, msg.name)
    msg.obj = paths.open_path(call, None, path, os.O_PATH | os.O_CLOEXEC)
    msg.name = AF_UNIX.to_bytes(2, "little") + b"/proc/self/fd/%d\0" % msg.obj
    return 0


def sendto(call: Call) -> int:
    """Implements Linux syscall sendto(2) (with an address; without one it is native)."""
    a = call.args
    alen = a[5] & 0xFFFFFFFF
    if alen > SOCKADDR_STORAGE:
        return -errno.EINVAL
    msg = _Message()
    try:
        msg.name = call.read(a[4], alen) if a[4] and alen else b""
        length = a[2] if a[2] <= MAX_DATA else None
        sock = take_fd(call, signed_fd(a[0]))
        try:
            if length is None:
                _read_data(call, sock, [(a[1], a[2] & 0x7FFFFFFF)], msg)
            elif length:
                msg.data.append(call.read(a[1], length))
            if a[4] and not alen:
                with _sender(call, sock, msg):
                    return _send_empty_name(sock, msg, a[3])
            r = _name_ok(call, "sendto", msg)
            if r:
                return r
            with _sender(call, sock, msg):
                return _sigpipe(call, msg.send(sock, a[3] & 0xFFFFFFFF), a[3])
        finally:
            os.close(sock)
    finally:
        msg.close()


def _send_empty_name(sock: int, msg: _Message, flags: int) -> int:
    """sendto with a non-NULL address of length 0: as the kernel, whose
    protocols then see a name too short (EINVAL) or none."""
    data = b"".join(msg.data)
    buf = ctypes.create_string_buffer(data, max(1, len(data)))
    dummy = ctypes.create_string_buffer(1)
    r = _sys(SYS_sendto, sock, buf, len(data), ctypes.c_int(flags & 0xFFFFFFFF), dummy, 0)
    return int(r) if r >= 0 else -ctypes.get_errno()


def sendmsg(call: Call) -> int:
    """Implements Linux syscall sendmsg(2)."""
    a = call.args
    msg = _Message()
    try:
        sock = take_fd(call, signed_fd(a[0]))
        try:
            _read_msghdr(call, sock, a[1], msg)
            r = _name_ok(call, "sendmsg", msg)
            if r:
                return r
            with _sender(call, sock, msg):
                return _sigpipe(call, msg.send(sock, a[2] & 0xFFFFFFFF), a[2])
        finally:
            os.close(sock)
    finally:
        msg.close()


def sendmmsg(call: Call) -> int:
    """Implements Linux syscall sendmmsg(2)."""
    a = call.args
    vlen = min(a[2] & 0xFFFFFFFF, UIO_MAXIOV)
    flags = a[3] & 0xFFFFFFFF
    sock = take_fd(call, signed_fd(a[0]))
    sent = 0
    try:
        for i in range(vlen):
            entry = a[1] + i * MMSGHDR_SIZE
            msg = _Message()
            try:
                try:
                    _read_msghdr(call, sock, entry, msg)
                    r = _name_ok(call, "sendmmsg", msg)
                    if r == 0:
                        with _sender(call, sock, msg):
                            r = _sigpipe(call, msg.send(sock, flags), flags)
                except SysError as e:
                    r = -e.errno
            finally:
                msg.close()
            if r < 0:
                return r if sent == 0 else sent
            call.mem.write(call.pid, entry + MSGHDR.size, struct.pack("<I", r))
            sent += 1
        return sent
    finally:
        os.close(sock)
