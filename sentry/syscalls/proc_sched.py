"""Scheduling calls the sentry answers: sched_getaffinity(2) with a CPU
limit (the CPUs /proc/cpuinfo and /sys/devices/system/cpu/online show:
sentry/synth.py).  Without a limit it is native (sentry/policy.py)."""

from __future__ import annotations

import errno
import os

from ..call import Call

_LONG = 8


def _view(call: Call) -> set[int]:
    """The caller's real CPU mask, cut to the CPUs the container counts."""
    real = os.sched_getaffinity(call.pid)
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
    try:
        cpus = _view(call)
    except OSError as e:
        return -(e.errno or errno.ESRCH)
    mask = bytearray(need)
    for c in cpus:
        if c < need * 8:
            mask[c // 8] |= 1 << (c % 8)
    call.check_valid()
    call.mem.write(call.pid, a[2], bytes(mask))
    return need
