"""Kernel ABI of the ptrace platform: python-ptrace's binding, extended.

python-ptrace (ptrace.binding) is used as a binding only: its request and
option constants, its `user_regs_struct` (ctypes, x86-64 layout with
orig_rax) and its `ptrace()` wrapper for the rare requests (SEIZE,
SETOPTIONS).  Its debugger loop is not used (it polls every pid with
growing sleeps and does not know PTRACE_EVENT_SECCOMP).  What it lacks is
declared here, from include/uapi/linux/ptrace.h: SEIZE, INTERRUPT, LISTEN
(3.4), GETSIGMASK/SETSIGMASK (3.11), GET_SYSCALL_INFO (5.3), the options
TRACESECCOMP (3.5) and EXITKILL (3.8), the events SECCOMP and STOP.

The per-stop calls (ptrace: GETREGS, SETREGS, CONT, SYSCALL...; waitpid)
go through cffi's out-of-line ABI mode (_ptrace_cffi.py, made by
ptrace_cffi_build.py, where the measurements are): ~0.4 us less per call
than ctypes here.  Their pointer arguments are integers (ctypes.addressof
of python-ptrace's structures, 0 for NULL); errno after them is
`get_errno()`.  python-ptrace's own `ptrace()` wrapper (a Python frame and
an exception per error) serves the once-per-process SEIZE.
"""

from __future__ import annotations

import ctypes
import sys
import types

from runsc_py.bare_package import register


def _preload_libc() -> None:
    """python-ptrace's ptrace.ctypes_libc finds libc with
    ctypes.util.find_library("c"), which runs ldconfig in a subprocess
    (~80-300 ms here, and a confined sandbox may not exec at all): hand it
    the libc the sentry loads by name, before anything imports it."""
    if "ptrace.ctypes_libc" in sys.modules:
        return
    m = types.ModuleType("ptrace.ctypes_libc")
    m.LIBC_FILENAME = "libc.so.6"  # type: ignore[attr-defined]
    m.libc = ctypes.CDLL("libc.so.6", use_errno=True)  # type: ignore[attr-defined]
    sys.modules["ptrace.ctypes_libc"] = m


class _BindingError(Exception):
    """python-ptrace's PtraceError, as its binding uses it (ptrace/error.py:
    a message, and the errno and pid attributes, None when unknown)."""

    def __init__(self, message: str, errno: int | None = None, pid: int | None = None) -> None:
        Exception.__init__(self, message)
        self.errno = errno
        self.pid = pid


def _bare_package() -> None:
    """Register python-ptrace's package without running its __init__
    (runsc_py/bare_package.py, as for pyroute2).

    That __init__ imports what its debugger and its error helpers use
    (ptrace.error: logging, traceback, datetime; ptrace.signames: signal,
    enum): ~15 ms of CPU on the sandbox's path to its first call on this
    platform, for none of what the binding needs.  The one name the
    binding takes from the package itself, PtraceError (func.py raises it),
    is _BindingError: the same contract.  If the real package is loaded
    already (a process that imported python-ptrace first), it is used."""
    register("ptrace", "python-ptrace", PtraceError=_BindingError)


_preload_libc()
_bare_package()

from ptrace import PtraceError  # noqa: E402,F401  (what ptrace_checked raises)
from ptrace.binding import func as _pt  # noqa: E402
from ptrace.binding.linux_struct import user_regs_struct  # noqa: E402

UserRegs = user_regs_struct
assert ctypes.sizeof(UserRegs) == 27 * 8, "user_regs_struct: not the x86-64 layout"

# From python-ptrace.
PTRACE_CONT = _pt.PTRACE_CONT
PTRACE_GETREGS = _pt.PTRACE_GETREGS
PTRACE_SETREGS = _pt.PTRACE_SETREGS
PTRACE_SYSCALL = _pt.PTRACE_SYSCALL
PTRACE_SETOPTIONS = _pt.PTRACE_SETOPTIONS
PTRACE_GETEVENTMSG = _pt.PTRACE_GETEVENTMSG
PTRACE_GETSIGINFO = _pt.PTRACE_GETSIGINFO
PTRACE_O_TRACESYSGOOD = _pt.PTRACE_O_TRACESYSGOOD
PTRACE_O_TRACEFORK = _pt.PTRACE_O_TRACEFORK
PTRACE_O_TRACEVFORK = _pt.PTRACE_O_TRACEVFORK
PTRACE_O_TRACECLONE = _pt.PTRACE_O_TRACECLONE
PTRACE_O_TRACEEXEC = _pt.PTRACE_O_TRACEEXEC
PTRACE_EVENT_FORK = _pt.PTRACE_EVENT_FORK
PTRACE_EVENT_VFORK = _pt.PTRACE_EVENT_VFORK
PTRACE_EVENT_CLONE = _pt.PTRACE_EVENT_CLONE
PTRACE_EVENT_EXEC = _pt.PTRACE_EVENT_EXEC
ptrace_checked = _pt.ptrace  # raises ptrace.error.PtraceError (cold requests)

# Missing from python-ptrace 0.9.9 (include/uapi/linux/ptrace.h).
PTRACE_SEIZE = 0x4206
PTRACE_INTERRUPT = 0x4207
PTRACE_LISTEN = 0x4208
PTRACE_GETSIGMASK = 0x420A
PTRACE_SETSIGMASK = 0x420B
PTRACE_GET_SYSCALL_INFO = 0x420E
PTRACE_O_TRACESECCOMP = 0x80
PTRACE_O_EXITKILL = 0x100000
PTRACE_EVENT_SECCOMP = 7
PTRACE_EVENT_STOP = 128

# wait(2) flags.
WNOHANG = 1
WALL = 0x40000000       # __WALL: threads (clone children) too
WNOTHREAD = 0x20000000  # __WNOTHREAD: only this thread's tracees and children

SIGTRAP = 5
SYSCALL_STOP = SIGTRAP | 0x80  # a syscall-stop's WSTOPSIG with TRACESYSGOOD

from ._ptrace_cffi import ffi as _ffi  # noqa: E402

_cffi_libc = _ffi.dlopen("libc.so.6")
ptrace = _cffi_libc.ptrace     # (request, pid, addr: int, data: int) -> long
waitpid = _cffi_libc.waitpid   # (pid, status address: int, options) -> int


def get_errno() -> int:
    """errno after ptrace() or waitpid() (cffi keeps its own copy)."""
    return int(_ffi.errno)


_libc = ctypes.PyDLL("libc.so.6", use_errno=True)   # keeps the GIL: never blocks
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long

SYS_kcmp = 312
SYS_pidfd_open = 434
SYS_pidfd_send_signal = 424
SYS_pidfd_getfd = 438
KCMP_FILE = 0
PIDFD_THREAD = 0o200  # O_EXCL: a pidfd of one thread (6.9)


def kcmp_file(pid1: int, pid2: int, fd1: int, fd2: int) -> int:
    """0 when fd1 of pid1 and fd2 of pid2 are the same open file (kcmp(2)
    KCMP_FILE), 1 or 2 when not, -errno."""
    r = _syscall(SYS_kcmp, pid1, pid2, KCMP_FILE, fd1, fd2)
    return int(r) if r >= 0 else -get_errno()


def pidfd_open_thread(tid: int) -> int:
    r = _syscall(SYS_pidfd_open, tid, PIDFD_THREAD)
    return int(r) if r >= 0 else -get_errno()


def pidfd_signal(pidfd: int, sig: int) -> int:
    """Thread-directed for a PIDFD_THREAD pidfd; 0 or -errno."""
    r = _syscall(SYS_pidfd_send_signal, pidfd, sig, None, 0)
    return 0 if r == 0 else -get_errno()


def pidfd_getfd(pidfd: int, fd: int) -> int:
    r = _syscall(SYS_pidfd_getfd, pidfd, fd, 0)
    return int(r) if r >= 0 else -get_errno()


def sigmask_of(sigs: tuple[int, ...]) -> int:
    m = 0
    for s in sigs:
        m |= 1 << (s - 1)
    return m
