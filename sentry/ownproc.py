"""The sentry's way into its procfs: one directory fd, never AT_FDCWD.

The sentry's own seccomp filter (sentry/self_filter.py) lets the *at family
through only with a real directory fd: a dirfd of AT_FDCWD (or any negative
value) is EPERM, like gVisor's directfs filter.  What the sentry reaches by
name is the container's files, through the fds the gofer donated, and the
procfs of the sandbox's pid namespace (/proc/TID/mem and status of its
targets, its own /proc/self/fd magic links): the latter through the fd
kept here, opened by the sandbox process right before it installs the
filter (`reset`), after its root became an empty tmpfs holding only /proc.

An in-process sentry (the tests' harness) has no such step: the first use
opens the host's /proc.
"""

from __future__ import annotations

import os
import threading

_O_PROC = os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC


class _ProcDir:
    """The one directory fd (set once per process, read by every thread)."""

    def __init__(self) -> None:
        self.fd = -1
        self._lock = threading.Lock()

    def get(self) -> int:
        fd = self.fd
        if fd >= 0:
            return fd
        with self._lock:
            if self.fd < 0:
                self.fd = os.open("/proc", _O_PROC)
            return self.fd

    def reset(self, path: str = "/proc") -> None:
        # Closes the old fd: only while no other thread may be using it
        # (the sandbox process calls it before its first worker thread).
        assert threading.active_count() == 1, "ownproc.reset with threads running"
        with self._lock:
            old, self.fd = self.fd, os.open(path, _O_PROC)
        if old >= 0:
            os.close(old)


_PROC = _ProcDir()


def reset(path: str = "/proc") -> None:
    """(Re)open the procfs the sentry will use from now on."""
    _PROC.reset(path)


def dirfd() -> int:
    """The procfs directory fd, for a call's dir_fd argument."""
    return _PROC.get()


def open_(rel: str | bytes, flags: int, mode: int = 0o777) -> int:
    """openat(procfs, rel): rel is relative ("123/mem", "self/fd/4")."""
    return os.open(rel, flags, mode, dir_fd=_PROC.get())


def readlink(rel: str | bytes) -> str:
    return os.fsdecode(os.readlink(rel, dir_fd=_PROC.get()))


def self_fd(fd: int) -> bytes:
    """Our own magic link of fd, relative to the procfs fd."""
    return b"self/fd/%d" % fd
