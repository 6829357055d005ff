"""The socket API the runtime, the sandbox, init and the gofer use, without
the `socket` module.

socket.py wraps CPython's `_socket` in enums (AddressFamily, SocketKind,
MsgFlag, AddressInfo: its import builds them, and imports enum, selectors
and with them functools' and collections' users): ~5 ms of CPU with
signal.py's, on the runtime's path before the sandbox's fork.  What this
product uses of it is `_socket`'s own socket type, plus what socket.py adds
to it: the context manager, accept() returning one of ours, socketpair(),
send_fds() and recv_fds().  Family, type and flags are plain ints (an
IntEnum compares equal to its int: nothing that compares them changes).
"""

from __future__ import annotations

import _socket
import array
from _socket import (AF_INET, AF_INET6, AF_NETLINK, AF_UNIX, AF_UNSPEC, CMSG_LEN, CMSG_SPACE,  # noqa: F401
                     MSG_CMSG_CLOEXEC, MSG_CTRUNC, MSG_DONTWAIT, MSG_PEEK, MSG_TRUNC, SCM_CREDENTIALS,
                     SCM_RIGHTS, SHUT_RD, SHUT_RDWR, SHUT_WR, SO_PASSCRED, SO_PEERCRED, SO_RCVBUF,
                     SO_SNDBUF, SOCK_CLOEXEC, SOCK_DGRAM, SOCK_NONBLOCK, SOCK_RAW, SOCK_SEQPACKET,
                     SOCK_STREAM, SOL_SOCKET)

TYPE_CHECKING = False  # typing's, without importing typing (docs/performance.md, Start-up)
if TYPE_CHECKING:
    from typing import Any

timeout = TimeoutError  # socket.timeout


class socket(_socket.socket):  # noqa: N801 (socket.socket's name)
    """_socket's socket with what socket.socket adds that we use."""

    __slots__ = ()

    def __enter__(self) -> "socket":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def accept(self) -> tuple["socket", Any]:
        fd, addr = self._accept()
        sock = socket(self.family, self.type, self.proto, fileno=fd)
        if _socket.getdefaulttimeout() is None and self.gettimeout():
            sock.setblocking(True)  # as socket.socket.accept
        return sock, addr


def socketpair(family: int = AF_UNIX, type: int = SOCK_STREAM, proto: int = 0) -> tuple[socket, socket]:
    a, b = _socket.socketpair(family, type, proto)
    return socket(family, type, proto, a.detach()), socket(family, type, proto, b.detach())


def send_fds(sock: Any, buffers: list[bytes], fds: list[int], flags: int = 0, address: Any = None) -> int:
    """socket.send_fds: the fds with SCM_RIGHTS."""
    return sock.sendmsg(buffers, [(SOL_SOCKET, SCM_RIGHTS, array.array("i", fds))], flags, *((address,) if address else ()))


def recv_fds(sock: Any, bufsize: int, maxfds: int, flags: int = 0) -> tuple[bytes, list[int], int, Any]:
    """socket.recv_fds: the data, the fds received with SCM_RIGHTS, the flags, the address."""
    fds = array.array("i")
    msg, ancdata, flags, addr = sock.recvmsg(bufsize, CMSG_LEN(maxfds * fds.itemsize), flags)
    for level, kind, data in ancdata:
        if level == SOL_SOCKET and kind == SCM_RIGHTS:
            fds.frombytes(data[:len(data) - (len(data) % fds.itemsize)])
    return msg, list(fds), flags, addr
