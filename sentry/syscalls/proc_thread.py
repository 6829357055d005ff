"""get_robust_list(2): the caller's robust futex list, read by the sentry
(emulated to keep the host kernel surface small: only glibc's own start-up
sets it, and debuggers read it)."""

from __future__ import annotations

import ctypes
import errno

from .. import pids
from ..call import Call

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
SYS_get_robust_list = 274


def get_robust_list(call: Call) -> int:
    """Implements Linux syscall get_robust_list(2): the caller's own (or a
    container thread's it may ptrace: refused here, EPERM, for any other)."""
    a = call.args
    pid = a[0] & 0xFFFFFFFF
    if pid != 0 and pids.tid_of(call, pid) != call.pid:
        return -errno.EPERM
    head, length = ctypes.c_uint64(), ctypes.c_uint64()
    if _libc.syscall(SYS_get_robust_list, call.pid, ctypes.byref(head), ctypes.byref(length)) < 0:
        return -ctypes.get_errno()
    call.mem.write(call.pid, a[1], head.value.to_bytes(8, "little"))
    call.mem.write(call.pid, a[2], length.value.to_bytes(8, "little"))
    return 0
