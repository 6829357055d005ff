"""The listener handoff: container init -> supervisor, one message.

    container init                         supervisor (sentry process)
    --------------                         ---------------------------
    install_filter()  -> listener fd
    sendmsg(HANDOFF_MAGIC, SCM_RIGHTS=[listener])  ---->  receive_listener()
    close(listener)                                       checks magic, 1 fd,
    execve(user program)  (notified, answered by ---->    fd is "seccomp notify"
                           the supervisor)

The socket is any connected AF_UNIX socket (a socketpair made before the
init forked is simplest).  The supervisor treats the peer as untrusted: a
message with the wrong payload, no fd, several fds, or an fd that is not a
seccomp listener is refused and every received fd closed.
"""

from __future__ import annotations

import os
import socket
import struct

from . import ownproc
from .install import HANDOFF_MAGIC


class HandoffError(Exception):
    pass


def receive_listener(sock: socket.socket) -> int:
    """Receive the listener fd sent by `install.send_listener`."""
    msg, fds, _flags, _addr = socket.recv_fds(sock, len(HANDOFF_MAGIC) + 16, 4)
    try:
        if msg != HANDOFF_MAGIC:
            raise HandoffError(f"receive listener: bad message {msg[:32]!r}")
        if len(fds) != 1:
            raise HandoffError(f"receive listener: expected 1 fd, got {len(fds)}")
        kind = ownproc.readlink(ownproc.self_fd(fds[0]))
        if kind != "anon_inode:seccomp notify":
            raise HandoffError(f"receive listener: fd is {kind!r}, not a seccomp listener")
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise
    os.set_inheritable(fds[0], False)
    return fds[0]


# --- the ptrace platform: "trace me" instead of a listener -------------------------
#
#     workload process (runtime code)            sandbox process
#     socketpair(DGRAM) -> a at RESERVED_FD, b
#     sendmsg(ATTACH_MAGIC, [pidfd(self), b, a]) ---->  receive_attach(): pidfd,
#                                                      2 AF_UNIX datagram sockets;
#                                                      a tracer thread seizes it
#     recv() <---------------------------------------  ATTACHED
#     install the guard and policy filters, execve (stops at its TRACE rule)
#
# Nothing may stop at a TRACE rule before the tracer is there: with no
# tracer, such a call fails with ENOSYS.  Hence the acknowledgement.

ATTACH_MAGIC = b"RUNSC-PY-PTRACE-ATTACH\0"
ATTACHED = b"attached"
_RESERVED = struct.Struct("=i")  # after the magic: the reserved descriptor's number


def send_attach(sock: socket.socket, pidfd: int, send_end: int, recv_end: int, reserved: int) -> None:
    socket.send_fds(sock, [ATTACH_MAGIC + _RESERVED.pack(reserved)], [pidfd, send_end, recv_end])


class Attach:
    """A received request: the process (pidfd and its pid as we number it)
    and the sandbox's ends of its reserved socket pair."""

    def __init__(self, pidfd: int, pid: int, send: socket.socket, drain: socket.socket,
                 reserved: int) -> None:
        self.pidfd = pidfd
        self.pid = pid
        self.send = send
        self.drain = drain
        self.reserved = reserved

    def close(self) -> None:
        os.close(self.pidfd)
        self.send.close()
        self.drain.close()


def receive_attach(sock: socket.socket) -> Attach:
    """Receive what `send_attach` sent, checked: a pidfd of a live process
    and two AF_UNIX datagram sockets."""
    msg, fds, _flags, _addr = socket.recv_fds(sock, len(ATTACH_MAGIC) + 16, 4)
    try:
        if len(msg) != len(ATTACH_MAGIC) + _RESERVED.size or not msg.startswith(ATTACH_MAGIC):
            raise HandoffError(f"receive attach: bad message {msg[:32]!r}")
        (reserved,) = _RESERVED.unpack_from(msg, len(ATTACH_MAGIC))
        if not 3 <= reserved <= 1 << 20:
            raise HandoffError(f"receive attach: reserved descriptor {reserved}")
        if len(fds) != 3:
            raise HandoffError(f"receive attach: expected 3 fds, got {len(fds)}")
        kind = ownproc.readlink(ownproc.self_fd(fds[0]))
        if kind != "anon_inode:[pidfd]":
            raise HandoffError(f"receive attach: fd is {kind!r}, not a pidfd")
        pid = _pidfd_pid(fds[0])
        socks = []
        for fd in fds[1:]:
            s = socket.socket(fileno=os.dup(fd))
            socks.append(s)
            if s.family != socket.AF_UNIX or s.type != socket.SOCK_DGRAM:
                raise HandoffError("receive attach: not an AF_UNIX datagram socket")
    except BaseException:
        for fd in fds:
            os.close(fd)
        for s in locals().get("socks", []):
            s.close()
        raise
    for fd in fds[1:]:
        os.close(fd)
    return Attach(fds[0], pid, socks[0], socks[1], reserved)


def _pidfd_pid(pidfd: int) -> int:
    """The pid of a pidfd's process in our pid namespace (its fdinfo)."""
    fd = ownproc.open_(f"self/fdinfo/{pidfd}", os.O_RDONLY | os.O_CLOEXEC)
    try:
        data = os.read(fd, 4096)
    finally:
        os.close(fd)
    for line in data.splitlines():
        if line.startswith(b"Pid:"):
            pid = int(line.split()[1])
            if pid > 0:
                return pid
    raise HandoffError("receive attach: the process is gone (or not in our pid namespace)")
