"""The listener handoff: container init -> supervisor, one message each way.

    container init                         supervisor (sentry process)
    --------------                         ---------------------------
    install_filter()  -> listener fd N
    send(HANDOFF_MAGIC + N)  ------------>  receive_listener(sock, pid)
                                            checks magic; pidfd_getfd(pid, N);
                                            the fd is "seccomp notify"
    recv() <-------------------------------  ack (1 byte)
    close(listener)
    execve(user program)  (notified, answered by the supervisor)

The fd is taken, not sent with SCM_RIGHTS: under the filter sendmsg is
notified (its destination is in memory) and nobody serves the listener yet.
send(2) is sendto without an address, native by an argument rule.  The
sender's pid: given by the caller (the init it forked), else the one the
kernel recorded with the message (SO_PASSCRED: SCM_CREDENTIALS, in our pid
namespace).  The
supervisor treats the peer as untrusted: a message with the wrong payload
or an fd that is not a seccomp listener is refused.
"""

from __future__ import annotations

import os
from runsc_py import sockets  # socket's API without socket.py's enums (sockets.py)
import struct

from . import ownproc
from .install import HANDOFF_MAGIC


class HandoffError(Exception):
    pass


def receive_listener(sock: sockets.socket, pid: int = 0) -> int:
    """Take the listener announced by `install.send_listener` from PID (0:
    the socket's peer) and acknowledge it."""
    if not pid:
        sock.setsockopt(sockets.SOL_SOCKET, sockets.SO_PASSCRED, 1)
    msg, anc, _flags, _addr = sock.recvmsg(len(HANDOFF_MAGIC) + 16, sockets.CMSG_SPACE(12))
    if len(msg) != len(HANDOFF_MAGIC) + 4 or not msg.startswith(HANDOFF_MAGIC):
        raise HandoffError(f"receive listener: bad message {msg[:32]!r}")
    num = int.from_bytes(msg[len(HANDOFF_MAGIC):], "little")
    if not pid:
        # The sender as the kernel recorded it with the message (its tgid
        # in our pid namespace): the process that installed the filter,
        # not whoever connected the socket (`exec` connects before forking).
        for level, typ, data in anc:
            if level == sockets.SOL_SOCKET and typ == sockets.SCM_CREDENTIALS and len(data) >= 12:
                pid = struct.unpack_from("i", data)[0]
    fd = _take(pid, num)
    try:
        kind = ownproc.readlink(ownproc.self_fd(fd))
        if kind != "anon_inode:seccomp notify":
            raise HandoffError(f"receive listener: fd is {kind!r}, not a seccomp listener")
        sock.send(b"\x01")
    except BaseException:
        os.close(fd)
        raise
    return fd


def _take(pid: int, num: int) -> int:
    """Our copy (close-on-exec) of fd NUM of process PID."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    if pid <= 0 or num < 0 or num > 0x7FFFFFFF:
        raise HandoffError(f"receive listener: bad pid {pid} or fd {num}")
    pidfd = libc.syscall(434, pid, 0)  # pidfd_open
    if pidfd < 0:
        raise HandoffError(f"receive listener: pidfd_open {pid}: {os.strerror(ctypes.get_errno())}")
    try:
        fd = libc.syscall(438, pidfd, num, 0)  # pidfd_getfd (close-on-exec)
        if fd < 0:
            raise HandoffError(f"receive listener: pidfd_getfd {pid} {num}: "
                               f"{os.strerror(ctypes.get_errno())}")
        return int(fd)
    finally:
        os.close(int(pidfd))


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


def send_attach(sock: sockets.socket, pidfd: int, send_end: int, recv_end: int, reserved: int) -> None:
    sockets.send_fds(sock, [ATTACH_MAGIC + _RESERVED.pack(reserved)], [pidfd, send_end, recv_end])


class Attach:
    """A received request: the process (pidfd and its pid as we number it)
    and the sandbox's ends of its reserved socket pair."""

    def __init__(self, pidfd: int, pid: int, send: sockets.socket, drain: sockets.socket,
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


def receive_attach(sock: sockets.socket) -> Attach:
    """Receive what `send_attach` sent, checked: a pidfd of a live process
    and two AF_UNIX datagram sockets."""
    # Room for the fds and for credentials (a socket with SO_PASSCRED, as
    # sentry.sock's are, gets them with every message).
    msg, anc, mflags, _addr = sock.recvmsg(len(ATTACH_MAGIC) + 16,
                                           sockets.CMSG_SPACE(4 * 4) + sockets.CMSG_SPACE(12))
    fds: list[int] = []
    for level, typ, data in anc:
        if level == sockets.SOL_SOCKET and typ == sockets.SCM_RIGHTS:
            fds += [fd for (fd,) in struct.iter_unpack("i", data[:len(data) - len(data) % 4])]
    try:
        if mflags & sockets.MSG_CTRUNC:
            raise HandoffError("receive attach: control data cut short")
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
            s = sockets.socket(fileno=os.dup(fd))
            socks.append(s)
            if s.family != sockets.AF_UNIX or s.type != sockets.SOCK_DGRAM:
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
