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
