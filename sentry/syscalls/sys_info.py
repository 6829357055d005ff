"""System information: uname(2), sysinfo(2), getrusage(2), personality(2)."""

from __future__ import annotations

import ctypes
import errno

from ..call import Call

_FIELD = 65


class _Utsname(ctypes.Structure):
    _fields_ = [(n, ctypes.c_char * _FIELD) for n in
                ("sysname", "nodename", "release", "version", "machine", "domainname")]


def uname(call: Call) -> int:
    """Implements Linux syscall uname(2), emulated only when the operator
    set another release (policy.PolicyOptions.uname_release): the names
    are the UTS namespace's, which the sentry shares with the container,
    read now (the workload may have changed its host name)."""
    u = _Utsname()
    if _libc.uname(ctypes.byref(u)) != 0:
        return -ctypes.get_errno()
    o = call.sb.options
    u.release = o.release.encode()[:_FIELD - 1]
    if o.version:
        u.version = o.version.encode()[:_FIELD - 1]
    call.check_valid()
    call.mem.write_from(call.pid, call.args[0], u)
    return 0


class _Sysinfo(ctypes.Structure):
    _fields_ = [("uptime", ctypes.c_long), ("loads", ctypes.c_ulong * 3),
                ("totalram", ctypes.c_ulong), ("freeram", ctypes.c_ulong),
                ("sharedram", ctypes.c_ulong), ("bufferram", ctypes.c_ulong),
                ("totalswap", ctypes.c_ulong), ("freeswap", ctypes.c_ulong),
                ("procs", ctypes.c_ushort), ("pad", ctypes.c_ushort),
                ("totalhigh", ctypes.c_ulong), ("freehigh", ctypes.c_ulong),
                ("mem_unit", ctypes.c_uint), ("_f", ctypes.c_char * 4)]


_libc = ctypes.CDLL(None, use_errno=True)


def sysinfo(call: Call) -> int:
    """Implements Linux syscall sysinfo(2): the container's memory, age and
    tasks, as /proc/meminfo, /proc/uptime and /proc/loadavg show them
    (sentry/synth.py)."""
    buf = call.args[0]
    info = _Sysinfo()
    if _libc.sysinfo(ctypes.byref(info)) != 0:
        return -ctypes.get_errno()
    lim = call.sb.limits
    if lim is None:
        info.procs = 1  # do not reveal the host's process count
    else:
        m = lim.memory()
        info.mem_unit = 1
        info.totalram, info.freeram = m["total"], m["total"] - m["used"]
        info.sharedram, info.bufferram = m["shmem"], 0
        info.totalswap, info.freeswap = m["swap_total"], m["swap_total"] - m["swap_used"]
        info.totalhigh = info.freehigh = 0
        info.uptime = int(lim.age())
        info.loads[0] = info.loads[1] = info.loads[2] = 0
        info.procs = min(len(lim.tasks()), 0xFFFF)
    call.check_valid()
    call.mem.write_from(call.pid, buf, info)
    return 0


def getrusage(call: Call) -> None:
    """Implements Linux syscall getrusage(2): the kernel runs it.

    It only reads the caller's own counters (no path, no other process):
    notified solely to keep the native tier small, so CONTINUE decides
    nothing.
    """
    call.reply_continue()


PER_LINUX = 0
_PER_QUERY = 0xFFFFFFFF


def personality(call: Call) -> int | None:
    """Implements Linux syscall personality(2): query and PER_LINUX only.

    Linux lets any process pick any persona; the sandbox refuses the
    execution-domain flags (READ_IMPLIES_EXEC, ADDR_NO_RANDOMIZE, ...) with
    EINVAL, the error personality(2) documents and gVisor returns.  The
    argument is a value in the notification, not memory the workload could
    change afterwards, so continuing the allowed values decides nothing the
    kernel does not see too: the kernel reads the same low 32 bits.
    """
    persona = call.args[0] & 0xFFFFFFFF
    if persona not in (PER_LINUX, _PER_QUERY):
        return -errno.EINVAL
    call.reply_continue()
    return None
