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
import socket
import struct

from . import ownproc
from .install import HANDOFF_MAGIC


class HandoffError(Exception):
    pass


def receive_listener(sock: socket.socket, pid: int = 0) -> int:
    """Take the listener announced by `install.send_listener` from PID (0:
    the socket's peer) and acknowledge it."""
    if not pid:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    msg, anc, _flags, _addr = sock.recvmsg(len(HANDOFF_MAGIC) + 16, socket.CMSG_SPACE(12))
    if len(msg) != len(HANDOFF_MAGIC) + 4 or not msg.startswith(HANDOFF_MAGIC):
        raise HandoffError(f"receive listener: bad message {msg[:32]!r}")
    num = int.from_bytes(msg[len(HANDOFF_MAGIC):], "little")
    if not pid:
        # The sender as the kernel recorded it with the message (its tgid
        # in our pid namespace): the process that installed the filter,
        # not whoever connected the socket (`exec` connects before forking).
        for level, typ, data in anc:
            if level == socket.SOL_SOCKET and typ == socket.SCM_CREDENTIALS and len(data) >= 12:
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
