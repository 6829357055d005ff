"""Entering the ptrace platform: what a workload process does itself.

Run by the runtime's own code (the container's init, every `exec`) right
before it becomes the workload, in this order:

  1. its reserved socket: a socketpair, one end dup2'ed onto RESERVED_FD
     (not close-on-exec: it must outlive execve), the soft RLIMIT_NOFILE
     raised for that one dup2 when it is at or below the number;
  2. "trace me": its pidfd and the two ends the sandbox keeps, over the
     hand-off socket (sentry/handoff.py); the sandbox's tracer thread
     seizes it and says so;
  3. the guard filter (reserved.py), then the policy with TRACE
     (no_new_privs first when the spec asks for it; without it both need
     CAP_SYS_ADMIN, which the caller still holds).

After 3 every emulated call stops for the tracer, which is why 2 waits for
its answer: a TRACE rule with no tracer fails the call with ENOSYS.
"""

from __future__ import annotations

import errno
import os
import resource
from runsc_py import sockets  # socket's API without socket.py's enums (sockets.py)

from ..handoff import ATTACHED, send_attach
from ..install import PreparedFilter
from . import reserved

_ACK_TIMEOUT = 10.0


class PreparedTrace:
    """The ptrace platform's filters, built before any of the steps."""

    def __init__(self, policy: PreparedFilter, guard: bytes | None = None) -> None:
        """guard: the guard of RESERVED_FD already built (the runtime's
        filter cache, runsc_py/filtercache.py); None: built here."""
        self.policy = policy
        if guard is None:
            guard = reserved.build_bpf()
        else:
            # enter() may still build one, for a lower hard RLIMIT_NOFILE,
            # once the host's files are out of sight (after pivot_root, or
            # setns for an exec): its modules are loaded now.
            reserved.load_builder()
        self.guard = PreparedFilter(guard, listener=False)
        self.guard_fd = reserved.RESERVED_FD

    def enter(self, sock: sockets.socket, no_new_privs: bool = False) -> None:
        fd = reserved.number_for(_hard_nofile())
        if fd != self.guard_fd:
            # A hard RLIMIT_NOFILE below the usual number (the spec's
            # rlimits are in force by now): its own guard.
            self.guard = PreparedFilter(reserved.build_bpf(fd), listener=False)
            self.guard_fd = fd
        send_end, recv_end = install_reserved(fd)
        pidfd = os.pidfd_open(os.getpid())
        try:
            send_attach(sock, pidfd, send_end, recv_end, fd)
        finally:
            for fd in (pidfd, send_end, recv_end):
                os.close(fd)
        _wait_attached(sock)
        self.guard.install(no_new_privs)
        self.policy.install(False)


def _hard_nofile() -> int:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    return -1 if hard == resource.RLIM_INFINITY else hard


def install_reserved(fd: int) -> tuple[int, int]:
    """Step 1: (the sandbox's send end, a copy of the end now at fd)."""
    if fd < 3:
        raise OSError(errno.EMFILE, "ptrace platform: RLIMIT_NOFILE leaves no room for the "
                                    "reserved descriptor")
    a, b = sockets.socketpair(sockets.AF_UNIX, sockets.SOCK_DGRAM)  # close-on-exec
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    raise_soft = soft != resource.RLIM_INFINITY and soft <= fd
    if raise_soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (fd + 1, hard))
    try:
        os.dup2(a.fileno(), fd, inheritable=True)
    finally:
        if raise_soft:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    return b.detach(), a.detach()


def _wait_attached(sock: sockets.socket) -> None:
    old = sock.gettimeout()
    sock.settimeout(_ACK_TIMEOUT)
    try:
        got = b""
        while len(got) < len(ATTACHED):
            chunk = sock.recv(len(ATTACHED) - len(got))
            if not chunk:
                break
            got += chunk
    except OSError as e:
        raise OSError(e.errno or errno.EIO, f"ptrace platform: the sandbox did not attach: {e}") from None
    finally:
        sock.settimeout(old)
    if got != ATTACHED:
        raise OSError(errno.EPERM, "ptrace platform: the sandbox refused to attach")
