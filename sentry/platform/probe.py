"""--platform=auto: which platform this machine, in this place, can run.

Once per `create`, in a short-lived thread of the runtime (a filter cannot
be removed, but it belongs to the thread that installs it, and goes with
it; so does no_new_privs), three questions:

  1. seccomp(SET_MODE_FILTER, NEW_LISTENER) of an allow-all program.
     Refused when the kernel is older than 5.0, when seccomp is off, or
     when a filter of the chain already has a listener (EBUSY: only one per
     chain: runsc-py inside another sandbox, or a parent that forbids it).
  2. SECCOMP_IOCTL_NOTIF_SET_FLAGS(SYNC_WAKE_UP) (6.6): without it every
     notification costs a cross-CPU wake-up (~50 us instead of ~7 here).
  3. SECCOMP_IOCTL_NOTIF_ADDFD with ADDFD_FLAG_SEND (5.14) for a call id
     that does not exist: ENOENT means the ioctl and the flag are known
     (EINVAL or ENOTTY: they are not).

All three: seccomp.  Otherwise ptrace, unless Yama forbids it
(ptrace_scope 3), in which case seccomp is kept and `create` will say
what failed.  The choice and its reason are logged by the caller.
"""

from __future__ import annotations

import ctypes
import errno
import struct
import threading

from . import PTRACE, SECCOMP

_SYS_seccomp = 317
_SECCOMP_SET_MODE_FILTER = 1
_FLAG_NEW_LISTENER = 1 << 3
_PR_SET_NO_NEW_PRIVS = 38
_RET_ALLOW = 0x7FFF0000
# ioctl numbers and flags (include/uapi/linux/seccomp.h; seccomp_notify.py)
_IOCTL_NOTIF_SET_FLAGS = 0x40082104
_IOCTL_NOTIF_ADDFD = 0x40182103
_SYNC_WAKE_UP = 1
_ADDFD_FLAG_SEND = 2
_ADDFD = struct.Struct("=QIIII")  # struct seccomp_notif_addfd


class _Fprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def _name(err: int) -> str:
    return errno.errorcode.get(err, str(err))


def _probe(out: list[str]) -> None:
    """In the probing thread: "ok" or what failed, into out."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.syscall.restype = ctypes.c_long
    insn = ctypes.create_string_buffer(struct.pack("=HBBI", 0x06, 0, 0, _RET_ALLOW), 8)
    prog = _Fprog(1, ctypes.addressof(insn))
    libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)  # this thread only
    fd = libc.syscall(ctypes.c_long(_SYS_seccomp), ctypes.c_ulong(_SECCOMP_SET_MODE_FILTER),
                      ctypes.c_ulong(_FLAG_NEW_LISTENER), ctypes.byref(prog))
    if fd < 0:
        out.append(f"seccomp user notification refused: {_name(ctypes.get_errno())}")
        return
    ioctl = libc.ioctl
    ioctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p]
    try:
        if ioctl(fd, _IOCTL_NOTIF_SET_FLAGS, _SYNC_WAKE_UP) != 0:
            out.append(f"no SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP: {_name(ctypes.get_errno())}")
            return
        add = ctypes.create_string_buffer(_ADDFD.pack((1 << 64) - 1, _ADDFD_FLAG_SEND, 0, 0, 0),
                                          _ADDFD.size)
        if ioctl(fd, _IOCTL_NOTIF_ADDFD, ctypes.addressof(add)) == 0 or ctypes.get_errno() != errno.ENOENT:
            out.append(f"no SECCOMP_IOCTL_NOTIF_ADDFD with SEND: {_name(ctypes.get_errno())}")
            return
        out.append("ok")
    finally:
        libc.close(fd)


class Probing:
    """The probe under way in a thread of its own, which then ends (with
    its filter): started ahead of the answer (launch.py), so that create
    goes on meanwhile; result() waits for it."""

    def __init__(self) -> None:
        self._out: list[str] = []
        self._thread = threading.Thread(target=self._run, name="platform-probe", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            _probe(self._out)
        except BaseException as e:  # an answer whatever happens
            self._out.append(f"probe failed: {e}")

    def result(self) -> tuple[bool, str]:
        """(usable, why) for the seccomp platform."""
        self._thread.join()
        msg = self._out[0] if self._out else "probe failed: no answer"
        if msg == "ok":
            return True, "seccomp user notification with ADDFD|SEND and sync wake-up"
        return False, msg


def seccomp_notify() -> tuple[bool, str]:
    """(usable, why) for the seccomp platform, probed now."""
    return Probing().result()


def ptrace_allowed() -> tuple[bool, str]:
    try:
        with open("/proc/sys/kernel/yama/ptrace_scope") as f:
            if f.read().strip() == "3":
                return False, "Yama ptrace_scope 3 forbids ptrace"
    except OSError:
        pass
    return True, ""


def choose(probing: Probing | None = None) -> tuple[str, str]:
    """(platform, why); probing: the probe started already."""
    ok, why = (probing or Probing()).result()
    if ok:
        return SECCOMP, why
    can, no = ptrace_allowed()
    if not can:
        return SECCOMP, f"{why}; and {no}: nothing better to choose"
    return PTRACE, f"{why}: falling back to ptrace"
