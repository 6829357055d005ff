"""setrlimit(2), prlimit64(2) with a new limit: done by the sentry with
prlimit on the caller, after checking what the kernel would check against
the caller's (not the sentry's) capabilities."""

from __future__ import annotations

import ctypes
import errno
import struct

from ..call import Call

_libc = ctypes.CDLL(None, use_errno=True)
_RLIM_NLIMITS = 16
_CAP_SYS_RESOURCE = 24
RLIMIT_NOFILE = 7
_NR_OPEN = 1 << 20


def _prlimit(pid: int, resource: int, new: bytes | None) -> tuple[int, bytes]:
    old = ctypes.create_string_buffer(16)
    newbuf = ctypes.create_string_buffer(new, 16) if new is not None else None
    r = _libc.syscall(302, pid, resource, newbuf, old)
    if r != 0:
        return -ctypes.get_errno(), b""
    return 0, old.raw


def _set(call: Call, resource: int, new_addr: int, old_addr: int) -> int:
    if resource >= _RLIM_NLIMITS:
        return -errno.EINVAL
    new = call.read(new_addr, 16) if new_addr else None
    r, old = _prlimit(call.pid, resource, None)
    if r < 0:
        return r
    if new is not None:
        cur, hard = struct.unpack("QQ", new)
        _, old_hard = struct.unpack("QQ", old)
        if cur > hard:
            return -errno.EINVAL
        if hard > old_hard and not call.creds().cap_eff >> _CAP_SYS_RESOURCE & 1:
            return -errno.EPERM
        if resource == RLIMIT_NOFILE and hard > _NR_OPEN:
            return -errno.EPERM
        call.check_valid()
        r, old = _prlimit(call.pid, resource, new)
        if r < 0:
            return r
    if old_addr:
        call.check_valid()
        call.mem.write(call.pid, old_addr, old)
    return 0


def setrlimit(call: Call) -> int:
    """Implements Linux syscall setrlimit(2)."""
    a = call.args
    if not a[1]:
        return -errno.EFAULT
    return _set(call, a[0] & 0xFFFFFFFF, a[1], 0)


def prlimit64(call: Call) -> int:
    """Implements Linux syscall prlimit64(2) (new limit given; own process only)."""
    a = call.args
    pid = a[0] & 0xFFFFFFFF
    if pid != 0:
        # Another process named in the target's pid namespace: not mapped yet.
        return -errno.EPERM
    return _set(call, a[1] & 0xFFFFFFFF, a[2], a[3])
