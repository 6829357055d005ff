"""Keeping a hand-off between two threads on one CPU.

On this machine kind a wake-up that lands on an idle vCPU costs ~100 us (the
host has to run the halted vCPU again); one that stays on the waker's CPU
costs a context switch.  SYNC_WAKE_UP gives the notification round trip the
second kind.  Two other hand-offs do not have it:

- SECCOMP_IOCTL_NOTIF_ADDFD wakes the target with a plain completion while
  we run on its CPU, so the scheduler picks the idle one (sentry/platform/seccomp_notify.py);
- a gofer request wakes the gofer's channel thread, and its reply wakes us,
  each seen from a busy CPU (gofer/client.py).

Pinning the woken thread to the waker's CPU for the length of the exchange
makes the scheduler queue it there; it runs as soon as the waker blocks.
This is placement only, never a security decision, and always best effort:
a mask that cannot be read or set is left alone.

A `Placement` holds one thread's preallocated cpu_set_t buffers (no ctypes
allocation per call), like notify.Channel.
"""

from __future__ import annotations

import ctypes
import errno
import os

_libc = ctypes.CDLL("libc.so.6", use_errno=True)
_getaffinity = _libc.sched_getaffinity
_getaffinity.argtypes = [ctypes.c_int, ctypes.c_size_t, ctypes.c_void_p]
_getaffinity.restype = ctypes.c_int
_setaffinity = _libc.sched_setaffinity
_setaffinity.argtypes = [ctypes.c_int, ctypes.c_size_t, ctypes.c_void_p]
_setaffinity.restype = ctypes.c_int
current_cpu = _libc.sched_getcpu  # vDSO getcpu: no system call
current_cpu.argtypes = []
current_cpu.restype = ctypes.c_int

CPUSET_BYTES = 128  # glibc's cpu_set_t: 1024 CPUs
_Mask = ctypes.c_uint8 * CPUSET_BYTES


def several_cpus() -> bool:
    """More than one CPU to run on.  Not os.cpu_count(): glibc reads
    /sys/devices/system/cpu/online by path, which the sentry cannot (its
    filter refuses AT_FDCWD; its root holds only /proc)."""
    return len(os.sched_getaffinity(0)) > 1


class Placement:
    """One thread's affinity buffers and the pins it has in force."""

    __slots__ = ("_saved", "_one", "_own", "_saved_p", "_one_p", "_own_p", "_own_ok",
                 "peer_cpu")

    def __init__(self) -> None:
        self._saved = _Mask()
        self._one = _Mask()
        self._own = _Mask()
        self._saved_p = ctypes.addressof(self._saved)
        self._one_p = ctypes.addressof(self._one)
        self._own_p = ctypes.addressof(self._own)
        # Our own mask, read once: put back after each self-pin.
        self._own_ok = _getaffinity(0, CPUSET_BYTES, self._own_p) == 0
        self.peer_cpu = -1  # where the peer thread of place_peer() is pinned

    def _only(self, cpu: int) -> bool:
        """Fill the one-CPU mask; False if cpu is out of range."""
        if not 0 <= cpu < CPUSET_BYTES * 8:
            return False
        ctypes.memset(self._one_p, 0, CPUSET_BYTES)
        self._one[cpu >> 3] = 1 << (cpu & 7)
        return True

    def pin_target(self, tid: int, cpu: int) -> bool:
        """Pin tid to cpu until restore_target(tid); True if pinned.

        Only inside tid's own mask (never onto a CPU it excluded), and not
        when its mask is that CPU already.
        """
        if not self._only(cpu) or _getaffinity(tid, CPUSET_BYTES, self._saved_p) != 0:
            return False
        saved = self._saved
        if not saved[cpu >> 3] & (1 << (cpu & 7)) or bytes(saved) == bytes(self._one):
            return False
        return _setaffinity(tid, CPUSET_BYTES, self._one_p) == 0

    def restore_target(self, tid: int) -> None:
        """Put back the mask pin_target() found (ESRCH: the task is gone).

        If the cpuset changed meanwhile and no longer meets that mask
        (EINVAL), every CPU: the kernel narrows it to the cpuset, and the
        task is never left on the one CPU of the pin."""
        if _setaffinity(tid, CPUSET_BYTES, self._saved_p) != 0 and ctypes.get_errno() == errno.EINVAL:
            ctypes.memset(self._one_p, 0xFF, CPUSET_BYTES)
            _setaffinity(tid, CPUSET_BYTES, self._one_p)

    def pin_self(self, cpu: int) -> bool:
        """Pin the calling thread to cpu until unpin_self()."""
        return self._own_ok and self._only(cpu) and _setaffinity(0, CPUSET_BYTES, self._one_p) == 0

    def unpin_self(self) -> None:
        _setaffinity(0, CPUSET_BYTES, self._own_p)

    def place_peer(self, tid: int, cpu: int) -> None:
        """Keep a helper thread of ours (a gofer channel thread) on cpu.

        The pin stays until the next call with another CPU; our own threads
        have no affinity of their own to preserve.
        """
        if cpu != self.peer_cpu and self._only(cpu):
            if _setaffinity(tid, CPUSET_BYTES, self._one_p) == 0:
                self.peer_cpu = cpu
