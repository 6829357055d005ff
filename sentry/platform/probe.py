"""--platform=auto: which platform this machine, in this place, can run.

Once per `create`, in a short-lived child of the runtime (a filter cannot
be removed, so the probe installs its own in a process that then exits):

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
import os
import struct

from . import PTRACE, SECCOMP

_SYS_seccomp = 317
_SECCOMP_SET_MODE_FILTER = 1
_FLAG_NEW_LISTENER = 1 << 3
_PR_SET_NO_NEW_PRIVS = 38
_RET_ALLOW = 0x7FFF0000


class _Fprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def _probe_child() -> str:
    """In the child: "ok" or what failed (stage: errno name)."""
    from .seccomp_notify import (ADDFD_FLAG_SEND, IOCTL_NOTIF_ADDFD, IOCTL_NOTIF_SET_FLAGS,
                                 USER_NOTIF_FD_SYNC_WAKE_UP, SeccompNotifAddfd)
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.syscall.restype = ctypes.c_long
    prog_insn = ctypes.create_string_buffer(struct.pack("=HBBI", 0x06, 0, 0, _RET_ALLOW), 8)
    prog = _Fprog(1, ctypes.addressof(prog_insn))
    libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    fd = libc.syscall(ctypes.c_long(_SYS_seccomp), ctypes.c_ulong(_SECCOMP_SET_MODE_FILTER),
                      ctypes.c_ulong(_FLAG_NEW_LISTENER), ctypes.byref(prog))
    if fd < 0:
        return f"seccomp user notification refused: {errno.errorcode.get(ctypes.get_errno(), '?')}"
    ioctl = libc.ioctl
    ioctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p]
    if ioctl(fd, IOCTL_NOTIF_SET_FLAGS, USER_NOTIF_FD_SYNC_WAKE_UP) != 0:
        return f"no SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP: {errno.errorcode.get(ctypes.get_errno(), '?')}"
    add = SeccompNotifAddfd(id=(1 << 64) - 1, flags=ADDFD_FLAG_SEND, srcfd=0)
    if ioctl(fd, IOCTL_NOTIF_ADDFD, ctypes.addressof(add)) == 0 or ctypes.get_errno() != errno.ENOENT:
        return f"no SECCOMP_IOCTL_NOTIF_ADDFD with SEND: {errno.errorcode.get(ctypes.get_errno(), '?')}"
    return "ok"


def seccomp_notify() -> tuple[bool, str]:
    """(usable, why) for the seccomp platform, probed in a child."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            try:
                msg = _probe_child()
            except BaseException as e:
                msg = f"probe failed: {e}"
            os.write(w, msg.encode()[:512])
        finally:
            os._exit(0)
    os.close(w)
    try:
        msg = os.read(r, 512).decode(errors="replace") or "probe failed: no answer"
    finally:
        os.close(r)
        os.waitpid(pid, 0)
    if msg == "ok":
        return True, "seccomp user notification with ADDFD|SEND and sync wake-up"
    return False, msg


def ptrace_allowed() -> tuple[bool, str]:
    try:
        with open("/proc/sys/kernel/yama/ptrace_scope") as f:
            if f.read().strip() == "3":
                return False, "Yama ptrace_scope 3 forbids ptrace"
    except OSError:
        pass
    return True, ""


def choose() -> tuple[str, str]:
    """(platform, why)."""
    ok, why = seccomp_notify()
    if ok:
        return SECCOMP, why
    can, no = ptrace_allowed()
    if not can:
        return SECCOMP, f"{why}; and {no}: nothing better to choose"
    return PTRACE, f"{why}: falling back to ptrace"
