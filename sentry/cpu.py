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

The ptrace platform has no SYNC_WAKE_UP at all: both wake-ups of each stop
are plain.  There the pin lasts (`Colocation`: the tracer thread and the
tracees that keep stopping for it on one CPU), and `Pins` keeps each
pinned task's own view of its mask (sched_getaffinity answers it).
"""

from __future__ import annotations

import ctypes
import errno
import os
import threading
import time

from runsc_py.log import get_logger

log = get_logger(__name__)

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
_CPUCLOCK_SCHED = 2  # a process CPU clock's id: (~pid << 3) | CPUCLOCK_SCHED (posix-timers.h)
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


def _process_cpu_ns(tgid: int) -> int:
    """The CPU time of process tgid so far (its process CPU clock, which
    needs no permission and no /proc read; OSError once it is gone)."""
    return time.clock_gettime_ns(((~tgid) << 3) | _CPUCLOCK_SCHED)


class Pins:
    """Tasks the platform keeps on a CPU of its choosing, and the CPU mask
    each would have otherwise: the one it has as far as it knows.

    Shared by a sandbox's threads (sentry/call.py Sandbox.pins): the
    platform pins and unpins (Colocation), and sched_getaffinity(2) answers
    the kept mask while sched_setaffinity(2) replaces it and ends the pin
    (syscalls/proc_sched.py).  Empty on the seccomp platform.  The lock
    orders a pin's read-then-set against the workload's own set."""

    __slots__ = ("masks", "ended", "lock")

    def __init__(self) -> None:
        self.masks: dict[int, frozenset[int]] = {}
        # Pins the watch thread ended, with the mask given back: a fork
        # made before the end but reported after it (Colocation.forked).
        self.ended: dict[int, frozenset[int]] = {}
        self.lock = threading.Lock()

    def mask_of(self, tid: int) -> frozenset[int] | None:
        """The mask tid would have unpinned; None: not pinned (its real mask)."""
        return self.masks.get(tid)

    def set_by_task(self, tid: int, cpus: set[int]) -> None:
        """A sched_setaffinity(2) of the workload's for tid: set, and any
        pin of ours on tid ends (raises OSError as the kernel refuses)."""
        with self.lock:
            os.sched_setaffinity(tid, cpus)
            self.masks.pop(tid, None)
            self.ended.pop(tid, None)


class Colocation:
    """The ptrace platform's tracer thread, and the tracees that keep
    stopping for it, on one CPU.

    A seccomp stop wakes the tracer and PTRACE_CONT wakes the tracee, each
    with a plain wake-up: the woken thread lands on the idle vCPU, ~20 us
    each on these VMs (the seccomp platform's SYNC_WAKE_UP keeps its round
    trip on one CPU).  gVisor's ptrace platform binds each stub thread to
    the CPU of the sentry thread that serves it; here the tracer thread is
    pinned to the CPU it starts on, and a tracee whose emulated calls come
    less than PIN_GAP_NS apart (it waits on the tracer more than it runs)
    is pinned beside it.  The pin ends at a stop after more than
    UNPIN_GAP_NS without one, or when the watch thread sees the task's
    process busy on its own (> BUSY of a CPU over WATCH_S: a compute
    phase, which must not share the CPU with other pinned tasks) or idle
    for IDLE_ROUNDS checks.  A child inherits its parent's pin, as the
    kernel copies the mask (a fork+exec stays beside the tracer).

    The tracee's own view is kept: its mask before the pin is in Pins,
    which sched_getaffinity(2) answers, and a pin is only made inside that
    mask.  Placement only, never a security decision; best effort (a mask
    that cannot be read or set is left as it is)."""

    PIN_GAP_NS = 1_000_000
    UNPIN_GAP_NS = 20_000_000
    WATCH_S = 0.02
    BUSY = 0.6
    IDLE_ROUNDS = 100
    RETRY_NS = 1_000_000_000  # after a refused pin (the CPU is outside the task's mask)

    def __init__(self, pins: Pins) -> None:
        self.pins = pins
        self.masks = pins.masks
        self.cpu = -1
        self._tgids: dict[int, int] = {}   # pinned tid -> its thread group
        # tgid -> (its CPU time, when, idle rounds) at the last look: the
        # first look is the pin's own, so that a process that computes is
        # unpinned at the next round already.
        self._seen: dict[int, tuple[int, int, int]] = {}
        self._wake = threading.Event()
        self._closed = False
        self._watch: threading.Thread | None = None

    def start(self, tid: int) -> None:
        """In the tracer thread: pin it to its CPU, or the first CPU tid may
        use if it may not use that one.  A single-CPU machine gains nothing."""
        try:
            if not several_cpus():
                return
            allowed = os.sched_getaffinity(tid)
        except OSError:
            return
        cpu = current_cpu()
        if cpu not in allowed:
            cpu = min(allowed)
        try:
            os.sched_setaffinity(0, {cpu})
        except OSError:
            return
        self.cpu = cpu

    def stopped(self, tid: int, tgid: int, gap: int) -> bool:
        """A seccomp stop of tid, gap ns after its previous one: pin or
        unpin it.  False if a pin was refused (retry after RETRY_NS)."""
        if gap < self.PIN_GAP_NS:
            if tid not in self.masks:
                return self._pin(tid, tgid)
        elif gap > self.UNPIN_GAP_NS and tid in self.masks:
            self.unpin(tid)
        return True

    def exec_pin(self, tid: int) -> None:
        """tid, a process of one thread, is about to exec: keep it beside
        the tracer, so that the kernel's exec balancing does not move the
        new program to the other (idle) CPU, where its first calls and its
        exit would wake the tracer and its parent from afar (a shell's
        fork+exec of each command).  A program that then computes, or
        waits, is unpinned by the watch thread."""
        if self.cpu >= 0 and tid not in self.masks:
            self._pin(tid, tid)

    def _pin(self, tid: int, tgid: int) -> bool:
        cpu = self.cpu
        with self.pins.lock:
            try:
                mask = os.sched_getaffinity(tid)
                if cpu not in mask:
                    return False
                if len(mask) > 1:
                    os.sched_setaffinity(tid, {cpu})
            except OSError:
                return False
            self.masks[tid] = frozenset(mask)
            self._tgids[tid] = tgid
            if tgid not in self._seen:
                try:
                    self._seen[tgid] = (_process_cpu_ns(tgid), time.monotonic_ns(), 0)
                except OSError:
                    pass
        if self._watch is None:
            self._watch = threading.Thread(target=self._watching, name="sentry-colocation",
                                           daemon=True)
            self._watch.start()
        self._wake.set()
        return True

    def unpin(self, tid: int) -> None:
        """Give tid its own mask back (every CPU if its cpuset no longer
        meets it: never left on ours)."""
        with self.pins.lock:
            mask = self.masks.pop(tid, None)
            self._tgids.pop(tid, None)
            if mask is None:
                return
            ended = self.pins.ended
            if len(ended) >= 1024:
                ended.clear()
            ended[tid] = mask
            try:
                os.sched_setaffinity(tid, mask)
            except OSError as e:
                if e.errno == errno.EINVAL:
                    try:
                        os.sched_setaffinity(tid, range(CPUSET_BYTES * 8))
                    except OSError:
                        pass

    def forked(self, parent: int, child: int, tgid: int) -> None:
        """child was made by parent: it has parent's mask, our pin if
        parent had one when it forked.  That pin may have ended between
        the fork and its event (the watch thread): then the child gets the
        mask parent got back."""
        with self.pins.lock:
            mask = self.masks.get(parent)
            if mask is not None:
                self.masks[child] = mask
                self._tgids[child] = tgid
                return
            ended = self.pins.ended.get(parent)
            if ended is None:
                return
            try:
                if os.sched_getaffinity(child) == {self.cpu}:
                    os.sched_setaffinity(child, ended)
            except OSError:
                pass

    def gone(self, tid: int) -> None:
        """tid exited (or an exec moved its thread to the leader's tid)."""
        self.pins.ended.pop(tid, None)
        if tid in self.masks:
            with self.pins.lock:
                self.masks.pop(tid, None)
                self._tgids.pop(tid, None)

    def moved(self, old: int, new: int) -> None:
        """A non-leader thread exec'd: it is new (the leader's tid) now."""
        with self.pins.lock:
            self.masks.pop(new, None)
            self._tgids.pop(new, None)
            mask = self.masks.pop(old, None)
            if mask is not None:
                self.masks[new] = mask
                self._tgids[new] = new

    def close(self) -> None:
        self._closed = True
        self._wake.set()

    def _watching(self) -> None:
        """While anything is pinned: every WATCH_S, the CPU time of each
        pinned task's process (its process CPU clock: no permission needed,
        no /proc read); a process busy on its own, or idle for IDLE_ROUNDS,
        is unpinned."""
        try:
            self._watch_loop()
        except BaseException:
            log.exception("colocation: the watch thread failed; pins stay until their tasks stop")

    def _watch_loop(self) -> None:
        seen = self._seen
        while not self._closed:
            self._wake.wait()
            self._wake.clear()
            while self._tgids and not self._closed:
                time.sleep(self.WATCH_S)
                now = time.monotonic_ns()
                groups: dict[int, list[int]] = {}
                for tid, tgid in list(self._tgids.items()):
                    groups.setdefault(tgid, []).append(tid)
                for tgid, tids in groups.items():
                    try:
                        used = _process_cpu_ns(tgid)
                    except OSError:
                        seen.pop(tgid, None)
                        continue  # gone: its exit event forgets it
                    prev = seen.get(tgid)
                    idle = 0
                    if prev is not None:
                        ran = used - prev[0]
                        idle = prev[2] + 1 if ran < (now - prev[1]) // 100 else 0
                        if ran > self.BUSY * (now - prev[1]) or idle >= self.IDLE_ROUNDS:
                            log.debug("colocation: process %d %s: unpinned", tgid,
                                      "idle" if idle else "busy on its own")
                            for tid in tids:
                                self.unpin(tid)
                            seen.pop(tgid, None)
                            continue
                    seen[tgid] = (used, now, idle)
                for tgid in [g for g in list(seen) if g not in groups]:
                    seen.pop(tgid, None)
