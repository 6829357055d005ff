"""Clock and CPU-time queries the sentry answers: time(2), times(2),
clock_getres(2).

Each reads only what the kernel shows the sentry too: the wall clock (no
namespace has its own), a task's CPU times in its /proc stat, a clock's
resolution.  Emulated, not native, to keep the host kernel surface small
(sentry/policy.py): glibc reaches time and clock_getres through the vDSO,
and times is rare.
"""

from __future__ import annotations

import ctypes
import errno
import struct
import time as _time

from .. import pids
from ..call import Call

_libc = ctypes.CDLL(None, use_errno=True)
_libc.times.restype = ctypes.c_long
_libc.syscall.restype = ctypes.c_long
SYS_clock_getres = 229


def time(call: Call) -> int:
    """Implements Linux syscall time(2)."""
    now = int(_time.time())
    if call.args[0]:
        call.mem.write(call.pid, call.args[0], struct.pack("q", now))
    return now


def times(call: Call) -> int:
    """Implements Linux syscall times(2): the caller's process and its
    waited-for children, in clock ticks (from /proc/<pid>/stat)."""
    ticks = _libc.times(None)  # clock ticks since boot: the same for everyone
    if call.args[0]:
        st = pids.status(call.pid) or {}
        tgid = int((st.get(b"Tgid") or [str(call.pid).encode()])[0])
        f = pids.stat_fields(tgid)
        if f is None:
            return -errno.ESRCH
        utime, stime, cutime, cstime = (int(x) for x in f[11:15])
        call.mem.write(call.pid, call.args[0], struct.pack("4q", utime, stime, cutime, cstime))
    return ticks


CPUCLOCK_PERTHREAD = 4


def clock_getres(call: Call) -> int:
    """Implements Linux syscall clock_getres(2).  A CPU clock of another
    process or thread names it by pid: mapped to the sentry's view."""
    clk = call.args[0] & 0xFFFFFFFF
    clk = clk - (1 << 32) if clk & 0x80000000 else clk
    if clk < 0:
        pid = ~(clk >> 3)
        if pid != 0:
            try:
                tid = pids.tid_of(call, pid)
            except Exception:
                return -errno.EINVAL  # the kernel's answer for a clock of no task
            clk = (~tid << 3) | (clk & 7)
    ts = ctypes.create_string_buffer(16)
    if _libc.syscall(SYS_clock_getres, clk, ts) < 0:
        return -ctypes.get_errno()
    if call.args[1]:
        call.mem.write(call.pid, call.args[1], ts.raw)
    return 0
