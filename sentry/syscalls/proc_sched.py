"""Scheduling queries the sentry answers: the getters of sched_*(2),
getpriority(2), ioprio_get(2), and sched_getaffinity(2).

They only read the scheduling state of container tasks, which the sentry
reads the same way (the kernel calls on the task's tid in the sentry's pid
namespace, sentry/pids.py).  They are emulated, not native, to keep the host
kernel surface the workload reaches small (sentry/policy.py): they are rare
and cheap to answer.  The setters stay native: the kernel checks the
caller's CAP_SYS_NICE and ownership, which the sentry could only imitate.

sched_getaffinity answers the CPUs the container counts: its CPU quota and
cpuset (sentry/synth.py), as /proc/cpuinfo and nproc say.
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct

from .. import pids
from ..call import Call
from ..errors import SysError

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_LONG = 8
SYS_sched_getattr = 315
SYS_ioprio_get = 252
SCHED_ATTR_MAX = 4096


def _pid(call: Call, i: int, negative: int = errno.EINVAL) -> int:
    """Argument i as a pid_t: negative is EINVAL (the sched_* rule; the
    affinity calls look it up like any other pid: ESRCH)."""
    v = call.args[i] & 0xFFFFFFFF
    v = v - (1 << 32) if v & 0x80000000 else v
    if v < 0:
        raise SysError(negative, "pid")
    return pids.tid_of(call, v)


def _oserr(e: OSError) -> int:
    return -(e.errno or errno.ESRCH)


def sched_getparam(call: Call) -> int:
    """Implements Linux syscall sched_getparam(2)."""
    if not call.args[1]:
        return -errno.EINVAL
    tid = _pid(call, 0)
    try:
        prio = os.sched_getparam(tid).sched_priority
    except OSError as e:
        return _oserr(e)
    call.mem.write(call.pid, call.args[1], struct.pack("i", prio))
    return 0


def sched_getscheduler(call: Call) -> int:
    """Implements Linux syscall sched_getscheduler(2)."""
    tid = _pid(call, 0)
    try:
        return os.sched_getscheduler(tid)
    except OSError as e:
        return _oserr(e)


def sched_getattr(call: Call) -> int:
    """Implements Linux syscall sched_getattr(2)."""
    a = call.args
    size, flags = a[2] & 0xFFFFFFFF, a[3] & 0xFFFFFFFF
    if not a[1] or size > SCHED_ATTR_MAX or size < 48 or flags:
        return -errno.EINVAL
    tid = _pid(call, 0)
    buf = ctypes.create_string_buffer(size)
    r = _libc.syscall(SYS_sched_getattr, tid, buf, size, 0)
    if r < 0:
        return -ctypes.get_errno()
    written = min(size, struct.unpack_from("I", buf.raw)[0] or size)
    call.mem.write(call.pid, a[1], buf.raw[:written])
    return 0


def sched_rr_get_interval(call: Call) -> int:
    """Implements Linux syscall sched_rr_get_interval(2)."""
    tid = _pid(call, 0)
    try:
        interval = os.sched_rr_get_interval(tid)
    except OSError as e:
        return _oserr(e)
    sec = int(interval)
    call.mem.write(call.pid, call.args[1], struct.pack("qq", sec, round((interval - sec) * 1e9)))
    return 0


def sched_get_priority_max(call: Call) -> int:
    """Implements Linux syscall sched_get_priority_max(2)."""
    try:
        return os.sched_get_priority_max(call.args[0] & 0xFFFFFFFF)
    except OSError as e:
        return -(e.errno or errno.EINVAL)


def sched_get_priority_min(call: Call) -> int:
    """Implements Linux syscall sched_get_priority_min(2)."""
    try:
        return os.sched_get_priority_min(call.args[0] & 0xFFFFFFFF)
    except OSError as e:
        return -(e.errno or errno.EINVAL)


# --- getpriority, ioprio_get: a process, a process group, or a user's -----------
PRIO_PROCESS, PRIO_PGRP, PRIO_USER = 0, 1, 2
IOPRIO_WHO_PROCESS, IOPRIO_WHO_PGRP, IOPRIO_WHO_USER = 1, 2, 3


def _members(call: Call, which: int, who: int) -> list[int]:
    """The sentry tids of the container processes named by (which, who),
    PRIO_* numbering (a group or a user: every member)."""
    if which == PRIO_PROCESS:
        return [pids.tid_of(call, who)]
    if which == PRIO_PGRP:
        if who == 0:
            st = pids.status(call.pid) or {}
            who = int((st.get(b"NSpgid") or [b"0"])[-1])
        return [t for t, st in pids.container_tasks() if int((st.get(b"NSpgid") or [b"-1"])[-1]) == who]
    if which == PRIO_USER:
        if who == 0:
            who = call.creds().ruid
        return [t for t, st in pids.container_tasks() if int((st.get(b"Uid") or [b"-1"])[0]) == who]
    raise SysError(errno.EINVAL, "which")


def getpriority(call: Call) -> int:
    """Implements Linux syscall getpriority(2): 20 - the lowest nice value."""
    which = call.args[0] & 0xFFFFFFFF
    who = call.args[1] & 0xFFFFFFFF
    try:
        tids = _members(call, which, who)
    except SysError as e:
        return -e.errno
    best = None
    for t in tids:
        try:
            nice = os.getpriority(os.PRIO_PROCESS, t)
        except OSError:
            continue
        best = nice if best is None else min(best, nice)
    return -errno.ESRCH if best is None else 20 - best


def ioprio_get(call: Call) -> int:
    """Implements Linux syscall ioprio_get(2): the best of the tasks named."""
    which = call.args[0] & 0xFFFFFFFF
    who = call.args[1] & 0xFFFFFFFF
    if which not in (IOPRIO_WHO_PROCESS, IOPRIO_WHO_PGRP, IOPRIO_WHO_USER):
        return -errno.EINVAL
    try:
        tids = _members(call, which - 1, who)
    except SysError as e:
        return -e.errno
    best = None
    for t in tids:
        r = _libc.syscall(SYS_ioprio_get, IOPRIO_WHO_PROCESS, t)
        if r < 0:
            continue
        best = r if best is None else _ioprio_best(best, r)
    return -errno.ESRCH if best is None else best


def _ioprio_best(a: int, b: int) -> int:
    """The kernel's ioprio_best: the lower class wins, then the lower level
    (a task with no class set counts as best-effort level 4)."""
    def key(p: int) -> tuple[int, int]:
        cls, level = p >> 13, p & 0x1FFF
        return (cls or 2, level if cls else 4)
    return a if key(a) <= key(b) else b


# --- sched_getaffinity -------------------------------------------------------------
def _view(call: Call, tid: int) -> set[int]:
    """The task's CPU mask (the one it would have if the platform had not
    pinned it beside its tracer: sentry/cpu.py), cut to the CPUs the
    container counts."""
    real = call.sb.pins.mask_of(tid) or os.sched_getaffinity(tid)
    lim = call.sb.limits
    if lim is None:
        return real
    counted = lim.cpu_list()
    return {c for c in real if c in counted} or set(counted[:1])


def sched_getaffinity(call: Call) -> int:
    """Implements Linux syscall sched_getaffinity(2)."""
    a = call.args
    size = a[1] & 0xFFFFFFFF
    lim = call.sb.limits
    nr = lim.nr_cpu_ids if lim is not None else (os.cpu_count() or 1)
    need = (nr + 63) // 64 * _LONG  # the kernel's cpumask_size()
    if size * 8 < nr or size & (_LONG - 1):
        return -errno.EINVAL
    tid = _pid(call, 0, errno.ESRCH)
    try:
        cpus = _view(call, tid)
    except OSError as e:
        return _oserr(e)
    mask = bytearray(need)
    for c in cpus:
        if c < need * 8:
            mask[c // 8] |= 1 << (c % 8)
    call.check_valid()
    call.mem.write(call.pid, a[2], bytes(mask))
    return need


_CAP_SYS_NICE = 23


def sched_setaffinity(call: Call) -> int:
    """Implements Linux syscall sched_setaffinity(2): the kernel's rule for
    another task (the same owner, or CAP_SYS_NICE) is checked here, then the
    sentry sets the mask; the kernel keeps it within the task's cpuset."""
    a = call.args
    size = a[1] & 0xFFFFFFFF
    tid = _pid(call, 0, errno.ESRCH)
    if tid != call.pid:
        me = call.creds()
        st = pids.status(tid)
        if st is None:
            return -errno.ESRCH
        uids = [int(x) for x in st.get(b"Uid", [])[:2]]
        if me.euid not in uids and not me.cap_eff >> _CAP_SYS_NICE & 1:
            return -errno.EPERM
    raw = call.read(a[2], min(size, 1024))
    cpus = {i * 8 + b for i, byte in enumerate(raw) for b in range(8) if byte >> b & 1}
    try:
        call.sb.pins.set_by_task(tid, cpus)
    except OSError as e:
        return -(e.errno or errno.EINVAL)
    return 0


def getcpu(call: Call) -> int:
    """Implements Linux syscall getcpu(2): the CPU the caller made the call
    on (its /proc stat), and that CPU's NUMA node."""
    a = call.args
    f = pids.stat_fields(call.pid)
    if f is None:
        return -errno.ESRCH
    cpu = int(f[36])
    lim = call.sb.limits
    node = lim.cpu_node.get(cpu, 0) if lim is not None else 0
    if a[0]:
        call.mem.write(call.pid, a[0], struct.pack("I", cpu))
    if a[1]:
        call.mem.write(call.pid, a[1], struct.pack("I", node))
    return 0
