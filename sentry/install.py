"""Install the workload's filter in the container's init, just before execve.

The ordering is the whole point of this module:

  1. prepare_filter(): build the BPF with libseccomp, copy it into a ctypes
     sock_fprog, resolve every libc function and create every Python object
     the remaining steps need.  Nothing after this step imports or may
     trigger a syscall of the emulate tier.
  2. PreparedFilter.install(): prctl(PR_SET_NO_NEW_PRIVS) (needed without
     CAP_SYS_ADMIN, and wanted anyway: no setuid gain across exec), then
     seccomp(SECCOMP_SET_MODE_FILTER, NEW_LISTENER|WAIT_KILLABLE_RECV, prog).
     From here on every emulate-tier syscall of THIS process blocks until a
     supervisor answers it.
  3. send_listener(): the listener's number to the supervisor, which takes it (pidfd_getfd)
     (sendmsg is native) and close(listener) (native).  The workload must
     never hold its own listener: it could answer its own notifications.
  4. the caller calls os.execve(): execve is notified; the supervisor that
     received the listener in step 3 answers it.

`install_and_send(options, sock)` does 1-3 in that order; the container init
then calls os.execve.  If the init needs to run anything between 3 and 4, it
must only use native-tier syscalls (see `runsc-py policy`).

libseccomp 2.5.4's load() cannot set SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV,
so the exported BPF is loaded with seccomp(2) directly.  TSYNC is not used:
the init is single-threaded when it calls this.
"""

from __future__ import annotations

import ctypes
import errno
import os
from runsc_py import sockets  # socket's API without socket.py's enums (sockets.py)
TYPE_CHECKING = False  # typing's, without importing typing (docs/performance.md, Start-up)
if TYPE_CHECKING:
    from typing import Any

from .policy import PolicyOptions
from runsc_py.log import get_logger

log = get_logger(__name__)

SYS_seccomp = 317
SECCOMP_SET_MODE_FILTER = 1
SECCOMP_FILTER_FLAG_TSYNC = 1 << 0
SECCOMP_FILTER_FLAG_NEW_LISTENER = 1 << 3
SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV = 1 << 5
PR_SET_NO_NEW_PRIVS = 38

HANDOFF_MAGIC = b"RUNSC-PY-SECCOMP-LISTENER\0"


class SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8),
                ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32)]


class SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(SockFilter))]


class PreparedFilter:
    """A built filter plus everything needed to load it without allocating.

    listener: load it with NEW_LISTENER (the seccomp platform's policy);
    without, install() returns -1 (the ptrace platform's two filters)."""

    def __init__(self, bpf: bytes, listener: bool = True) -> None:
        self.listener = listener
        n = len(bpf) // 8
        if n == 0 or n > 4096:
            raise ValueError(f"install: filter of {n} instructions")
        self.insns = (SockFilter * n).from_buffer_copy(bpf)
        self.prog = SockFprog(n, ctypes.cast(self.insns, ctypes.POINTER(SockFilter)))
        libc = ctypes.CDLL("libc.so.6", use_errno=True)  # find_library would fork ldconfig
        self._syscall = libc.syscall
        self._syscall.restype = ctypes.c_long
        self._prctl = libc.prctl
        self._prctl.restype = ctypes.c_int
        self._get_errno = ctypes.get_errno
        self._prog_ref = ctypes.byref(self.prog)
        self._args_nnp = (ctypes.c_int(PR_SET_NO_NEW_PRIVS), ctypes.c_ulong(1), ctypes.c_ulong(0),
                          ctypes.c_ulong(0), ctypes.c_ulong(0))
        self.flags_used = 0

    def load_allowlist(self) -> None:
        """Load a filter without NOTIFY actions (the sandbox's and the
        gofer's own allowlists) exactly as libseccomp 2.5's load() does with
        the attributes they use (CTL_NNP=1; no TSYNC, LOG or SPEC_ALLOW;
        no listener without NOTIFY actions): prctl(PR_SET_NO_NEW_PRIVS),
        then seccomp(SECCOMP_SET_MODE_FILTER, 0, prog)."""
        if self._prctl(*self._args_nnp) != 0:
            err = self._get_errno()
            raise OSError(err, f"load filter: prctl no_new_privs: {os.strerror(err)}")
        r = self._syscall(ctypes.c_long(SYS_seccomp), ctypes.c_ulong(SECCOMP_SET_MODE_FILTER),
                          ctypes.c_ulong(0), self._prog_ref)
        if r != 0:
            err = self._get_errno()
            raise OSError(err, f"load filter: seccomp set_mode_filter: {os.strerror(err)}")

    def install(self, no_new_privs: bool = True) -> int:
        """[no_new_privs +] seccomp(2); returns the listener fd (O_CLOEXEC).

        no_new_privs=False needs CAP_SYS_ADMIN in the caller's user namespace
        (the container's init before it drops its capabilities)."""
        if no_new_privs and self._prctl(*self._args_nnp) != 0:
            err = self._get_errno()
            raise OSError(err, f"install filter: prctl no_new_privs: {os.strerror(err)}")
        flags = (SECCOMP_FILTER_FLAG_NEW_LISTENER | SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
                 if self.listener else 0)
        fd = self._syscall(ctypes.c_long(SYS_seccomp), ctypes.c_ulong(SECCOMP_SET_MODE_FILTER),
                           ctypes.c_ulong(flags), self._prog_ref)
        if fd < 0 and self._get_errno() == errno.EINVAL and self.listener:
            # Kernel < 5.19: no WAIT_KILLABLE_RECV.  A signal may then
            # interrupt an emulated call (the answer gets ENOENT, handled).
            flags = SECCOMP_FILTER_FLAG_NEW_LISTENER
            fd = self._syscall(ctypes.c_long(SYS_seccomp), ctypes.c_ulong(SECCOMP_SET_MODE_FILTER),
                               ctypes.c_ulong(flags), self._prog_ref)
        if fd < 0:
            err = self._get_errno()
            raise OSError(err, f"install filter: seccomp set_mode_filter: {os.strerror(err)}")
        self.flags_used = flags
        return int(fd) if self.listener else -1

    def enter(self, sock: sockets.socket, no_new_privs: bool = False) -> None:
        """Steps 2-3: install, hand the listener over."""
        send_listener(sock, self.install(no_new_privs))


def prepare_filter(options: PolicyOptions | None = None, platform: str = "seccomp",
                   bpf: bytes | None = None, guard: bytes | None = None) -> "PreparedFilter | Any":
    """Step 1: build the BPF (imports libseccomp; allocates).  On the ptrace
    platform: its two filters and its hand-off (platform/ptrace_entry.py).
    bpf: the policy's program already built for these options and this
    platform (the runtime's cache, runsc_py/filtercache.py): not rebuilt;
    guard: the same for the ptrace platform's guard of RESERVED_FD."""
    if bpf is None:
        from .filter import build_bpf
        bpf = build_bpf(options, trace=platform == "ptrace")
    if platform == "ptrace":
        from .platform.ptrace_entry import PreparedTrace
        return PreparedTrace(PreparedFilter(bpf, listener=False), guard)
    return PreparedFilter(bpf)


def install_filter(options: PolicyOptions | None = None) -> int:
    """Build and load the workload filter; returns the listener fd.

    After it returns, only native-tier syscalls may run until the listener
    is in the supervisor's hands (see the module docstring).
    """
    return prepare_filter(options).install()


def send_listener(sock: sockets.socket, listener_fd: int) -> None:
    """Step 3: hand the listener to the supervisor, then close our copy.

    We are under the filter already, where sendmsg is notified (its
    destination lies in memory: sentry/syscalls/net_send.py), so the fd
    cannot travel by SCM_RIGHTS: its NUMBER goes by send(2) (sendto without
    an address: native), the supervisor takes it with pidfd_getfd(2) and
    acknowledges; only then is our copy closed."""
    try:
        sock.send(HANDOFF_MAGIC + listener_fd.to_bytes(4, "little"))
        if sock.recv(1) != b"\x01":
            raise OSError(errno.EPROTO, "hand the listener over: no acknowledgement")
    finally:
        os.close(listener_fd)


def install_and_send(options: PolicyOptions | None, sock: sockets.socket) -> None:
    """Steps 1-3 for the container init; the caller then calls os.execve.

    sock: a connected AF_UNIX socket whose peer is the supervisor process,
    which calls `sentry.handoff.receive_listener` on the other end.
    """
    prepared = prepare_filter(options)
    fd = prepared.install()
    send_listener(sock, fd)
