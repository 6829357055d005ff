"""System information: uname(2) (when the operator sets the release),
sysinfo(2), and the obsolete sysfs(2), ustat(2), and lsm_list_modules(2):
what the kernel says is the same for the sentry, or is the container's own
(sentry/synth.py)."""

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


_libc.syscall.restype = ctypes.c_long
SYS_sysfs, SYS_ustat, SYS_lsm_list_modules = 139, 136, 461


def sysfs(call: Call) -> int:
    """Implements Linux syscall sysfs(2): filesystem type names (obsolete),
    the same on every side of the sandbox."""
    a = call.args
    option = a[0] & 0xFFFFFFFF
    if option == 1:
        name = call.mem.read_cstring(call.pid, a[1], 256)
        r = _libc.syscall(SYS_sysfs, 1, name)
        return int(r) if r >= 0 else -ctypes.get_errno()
    if option == 2:
        buf = ctypes.create_string_buffer(256)
        r = _libc.syscall(SYS_sysfs, 2, ctypes.c_uint(a[1] & 0xFFFFFFFF), buf)
        if r < 0:
            return -ctypes.get_errno()
        call.mem.write(call.pid, a[2], buf.value + b"\0")
        return 0
    if option == 3:
        r = _libc.syscall(SYS_sysfs, 3)
        return int(r) if r >= 0 else -ctypes.get_errno()
    return -errno.EINVAL


def ustat(call: Call) -> int:
    """Implements Linux syscall ustat(2) (obsolete): free space of the
    filesystem on a device number."""
    buf = ctypes.create_string_buffer(32)
    r = _libc.syscall(SYS_ustat, ctypes.c_uint(call.args[0] & 0xFFFFFFFF), buf)
    if r < 0:
        return -ctypes.get_errno()
    call.mem.write(call.pid, call.args[1], buf.raw)
    return 0


def lsm_list_modules(call: Call) -> int:
    """Implements Linux syscall lsm_list_modules(2): which LSMs the kernel
    runs, the same for everyone."""
    a = call.args
    size = int.from_bytes(call.read(a[1], 4), "little")
    if a[2] & 0xFFFFFFFF:
        return -errno.EINVAL
    n = ctypes.c_uint32(min(size, 4096))
    ids = ctypes.create_string_buffer(max(n.value, 8))
    r = _libc.syscall(SYS_lsm_list_modules, ids, ctypes.byref(n), 0)
    call.mem.write(call.pid, a[1], n.value.to_bytes(4, "little"))
    if r < 0:
        return -ctypes.get_errno()
    call.mem.write(call.pid, a[0], ids.raw[:r * 8])
    return int(r)
