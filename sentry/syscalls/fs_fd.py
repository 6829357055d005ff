"""New fds the sentry makes for the workload, and queries on held ones.

epoll_create, epoll_create1, eventfd, eventfd2, signalfd, signalfd4,
timerfd_create, pidfd_open: the sentry creates the object (an anonymous
inode: nothing is named by path) and installs it in the caller (ADDFD),
exactly as if the caller had; pidfd_open names a container process
(sentry/pids.py).  signalfd on an existing fd changes that fd's mask
through our copy of it (the same open file).  timerfd_gettime and
inotify_rm_watch act on our copy of the caller's fd.

Why not native: they are rare (once per event loop) and cheap to do here,
and each one emulated keeps the host kernel surface the workload reaches
smaller (sentry/policy.py).  The objects behave the same whoever made
them: an epoll, eventfd or timerfd has no owner, a signalfd reads the
signals of the task that reads it, a pidfd names its process.
"""

from __future__ import annotations

import ctypes
import errno
import os

from .. import paths, pids
from ..call import Call

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
SYS_signalfd4, SYS_timerfd_create, SYS_timerfd_gettime, SYS_eventfd2 = 289, 283, 287, 290
SYS_epoll_create1 = 291
SYS_inotify_rm_watch, SYS_pidfd_open = 255, 434
O_CLOEXEC, O_NONBLOCK = os.O_CLOEXEC, os.O_NONBLOCK


def _answer(call: Call, r: int, cloexec: bool) -> int | None:
    """Install our new fd r (or answer its errno)."""
    if r < 0:
        return -ctypes.get_errno()
    call.reply_fd(r, cloexec)
    return None


def epoll_create(call: Call) -> int | None:
    """Implements Linux syscall epoll_create(2)."""
    size = call.args[0] & 0xFFFFFFFF
    if size == 0 or size & 0x80000000:
        return -errno.EINVAL
    return _answer(call, _libc.syscall(SYS_epoll_create1, O_CLOEXEC), False)


def epoll_create1(call: Call) -> int | None:
    """Implements Linux syscall epoll_create1(2)."""
    flags = call.args[0] & 0xFFFFFFFF
    if flags & ~O_CLOEXEC:
        return -errno.EINVAL
    return _answer(call, _libc.syscall(SYS_epoll_create1, O_CLOEXEC), bool(flags & O_CLOEXEC))


def _eventfd(call: Call, count: int, flags: int) -> int | None:
    if flags & ~(O_CLOEXEC | O_NONBLOCK | 1):  # EFD_SEMAPHORE
        return -errno.EINVAL
    r = _libc.syscall(SYS_eventfd2, ctypes.c_uint(count), (flags & ~O_CLOEXEC) | O_CLOEXEC)
    return _answer(call, r, bool(flags & O_CLOEXEC))


def eventfd(call: Call) -> int | None:
    """Implements Linux syscall eventfd(2)."""
    return _eventfd(call, call.args[0] & 0xFFFFFFFF, 0)


def eventfd2(call: Call) -> int | None:
    """Implements Linux syscall eventfd2(2)."""
    return _eventfd(call, call.args[0] & 0xFFFFFFFF, call.args[1] & 0xFFFFFFFF)


def timerfd_create(call: Call) -> int | None:
    """Implements Linux syscall timerfd_create(2)."""
    clock, flags = call.args[0] & 0xFFFFFFFF, call.args[1] & 0xFFFFFFFF
    if flags & ~(O_CLOEXEC | O_NONBLOCK):
        return -errno.EINVAL
    r = _libc.syscall(SYS_timerfd_create, clock, flags | O_CLOEXEC)
    return _answer(call, r, bool(flags & O_CLOEXEC))


def _signalfd(call: Call, flags: int) -> int | None:
    a = call.args
    if flags & ~(O_CLOEXEC | O_NONBLOCK):
        return -errno.EINVAL
    if a[2] != 8:
        return -errno.EINVAL
    mask = call.read(a[1], 8)
    fd = a[0] & 0xFFFFFFFF
    if fd == 0xFFFFFFFF:  # -1: a new one
        r = _libc.syscall(SYS_signalfd4, -1, mask, 8, flags | O_CLOEXEC)
        return _answer(call, r, bool(flags & O_CLOEXEC))
    held = paths.held_fd(call, a[0])
    try:
        if _libc.syscall(SYS_signalfd4, held, mask, 8, 0) < 0:
            return -ctypes.get_errno()
    finally:
        os.close(held)
    return fd


def signalfd(call: Call) -> int | None:
    """Implements Linux syscall signalfd(2)."""
    return _signalfd(call, 0)


def signalfd4(call: Call) -> int | None:
    """Implements Linux syscall signalfd4(2)."""
    return _signalfd(call, call.args[3] & 0xFFFFFFFF)


PIDFD_THREAD = os.O_EXCL


def pidfd_open(call: Call) -> int | None:
    """Implements Linux syscall pidfd_open(2)."""
    a = call.args
    pid, flags = a[0] & 0xFFFFFFFF, a[1] & 0xFFFFFFFF
    if flags & ~(PIDFD_THREAD | O_NONBLOCK) or pid == 0 or pid & 0x80000000:
        return -errno.EINVAL
    tid = pids.tid_of(call, pid)
    return _answer(call, _libc.syscall(SYS_pidfd_open, tid, flags), True)  # pidfds are O_CLOEXEC


def timerfd_gettime(call: Call) -> int:
    """Implements Linux syscall timerfd_gettime(2)."""
    held = paths.held_fd(call, call.args[0])
    buf = ctypes.create_string_buffer(32)
    try:
        if _libc.syscall(SYS_timerfd_gettime, held, buf) < 0:
            return -ctypes.get_errno()
    finally:
        os.close(held)
    call.mem.write(call.pid, call.args[1], buf.raw)
    return 0


def inotify_rm_watch(call: Call) -> int:
    """Implements Linux syscall inotify_rm_watch(2)."""
    held = paths.held_fd(call, call.args[0])
    try:
        r = _libc.syscall(SYS_inotify_rm_watch, held, ctypes.c_int(call.args[1] & 0xFFFFFFFF))
        return 0 if r == 0 else -ctypes.get_errno()
    finally:
        os.close(held)




SYS_memfd_create, SYS_memfd_secret, SYS_mq_getsetattr = 319, 447, 245
MFD_CLOEXEC = 1


def memfd_create(call: Call) -> int | None:
    """Implements Linux syscall memfd_create(2): the name is only a label."""
    name = call.mem.read_cstring(call.pid, call.args[0], 250)
    flags = call.args[1] & 0xFFFFFFFF
    r = _libc.syscall(SYS_memfd_create, name, ctypes.c_uint(flags | MFD_CLOEXEC))
    return _answer(call, r, bool(flags & MFD_CLOEXEC))


def memfd_secret(call: Call) -> int | None:
    """Implements Linux syscall memfd_secret(2)."""
    flags = call.args[0] & 0xFFFFFFFF
    if flags & ~O_CLOEXEC:
        return -errno.EINVAL
    r = _libc.syscall(SYS_memfd_secret, ctypes.c_uint(flags | O_CLOEXEC))
    return _answer(call, r, bool(flags & O_CLOEXEC))


def mq_getsetattr(call: Call) -> int:
    """Implements Linux syscall mq_getsetattr(2), on our copy of the queue fd."""
    a = call.args
    new = ctypes.create_string_buffer(call.read(a[1], 64), 64) if a[1] else None
    old = ctypes.create_string_buffer(64)
    held = paths.held_fd(call, a[0])
    try:
        if _libc.syscall(SYS_mq_getsetattr, held, new, old) < 0:
            return -ctypes.get_errno()
    finally:
        os.close(held)
    if a[2]:
        call.mem.write(call.pid, a[2], old.raw)
    return 0


SYS_mq_unlink = 241
NAME_MAX = 255


def mq_unlink(call: Call) -> int:
    """Implements Linux syscall mq_unlink(2): a name in the container's IPC
    namespace (which the sentry shares), removed with the caller's
    credentials."""
    name = call.mem.read_cstring(call.pid, call.args[0], NAME_MAX + 2)
    if len(name) > NAME_MAX:
        return -errno.ENAMETOOLONG
    call.act_as_target()
    r = _libc.syscall(SYS_mq_unlink, name)
    return 0 if r == 0 else -ctypes.get_errno()
