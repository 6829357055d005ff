"""The seccomp user-notification platform: the listener fd, receiving
notifications and answering them (sentry/platform/base.py: the interface).

Kernel facts this module relies on (Documentation/userspace-api/seccomp_filter.rst,
kernel/seccomp.c):

- SECCOMP_IOCTL_NOTIF_RECV blocks until a notification is pending and hands it
  to exactly one caller: several threads may block in RECV on the same
  listener, each notification wakes one of them (no thundering herd).  The
  struct passed in must be zeroed (the kernel returns EINVAL otherwise).
- SECCOMP_IOCTL_NOTIF_SEND answers; ENOENT means the notification is gone
  (the target died, or - without WAIT_KILLABLE_RECV - a signal interrupted the
  call).  That is not an error of ours: the answer simply has no recipient.
- SECCOMP_IOCTL_NOTIF_ID_VALID: after reading target memory or opening
  /proc/PID/..., the notification id proves the pid still names the task that
  made the call.  Two numbers exist (old _IOR, new _IOW); try the new first.
- SECCOMP_IOCTL_NOTIF_ADDFD with SECCOMP_ADDFD_FLAG_SEND installs one of our
  fds in the target AND answers the call with the new fd number, atomically.
- SECCOMP_IOCTL_NOTIF_SET_FLAGS(SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP): the
  argument is the integer 1, not a pointer.  The target's wake-up of the
  supervisor then happens synchronously on the same CPU: ~7 us instead of
  ~50 us per round trip from Python on this machine kind.
- ADDFD wakes the target with a plain complete(), not SYNC_WAKE_UP's
  same-CPU path: the scheduler sees our CPU busy (we are running) and puts
  the target on an idle one, and waking an idle vCPU costs ~100 us here
  (~25 us for the whole open when both share a CPU).  So `reply_fd` pins the
  target thread to the CPU we run on for the length of the ioctl (see
  Channel._addfd_here and sentry/cpu.py).
- When every task using the filter has exited, poll() reports POLLHUP.  A
  thread already blocked in RECV is not guaranteed to be woken, so the
  supervisor watches POLLHUP from one thread and treats it as "all targets
  gone".

Hot-path rule: each thread owns one `Channel` whose ctypes structs are
allocated once; a round trip allocates no ctypes objects.
"""

from __future__ import annotations

import ctypes
import errno
import os
import select

from ..cpu import Placement, current_cpu, several_cpus

_libc = ctypes.CDLL("libc.so.6", use_errno=True)  # find_library would fork ldconfig
_ioctl = _libc.ioctl
_ioctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p]
_ioctl.restype = ctypes.c_int
# The same call without releasing the GIL (~0.1-0.4 us less per call): only
# for ioctls that never block (SEND, ADDFD, ID_VALID).  RECV blocks: _ioctl.
_ioctl_nb = ctypes.PyDLL("libc.so.6", use_errno=True).ioctl
_ioctl_nb.argtypes = _ioctl.argtypes
_ioctl_nb.restype = ctypes.c_int


def _ioc(direction: int, nr: int, size: int) -> int:
    return (direction << 30) | (size << 16) | (ord("!") << 8) | nr


_IOC_WRITE = 1
_IOC_READ = 2


class SeccompData(ctypes.Structure):
    _fields_ = [
        ("nr", ctypes.c_int32),
        ("arch", ctypes.c_uint32),
        ("instruction_pointer", ctypes.c_uint64),
        ("args", ctypes.c_uint64 * 6),
    ]


class SeccompNotif(ctypes.Structure):
    _fields_ = [
        ("id", ctypes.c_uint64),
        ("pid", ctypes.c_uint32),
        ("flags", ctypes.c_uint32),
        ("data", SeccompData),
    ]


class SeccompNotifResp(ctypes.Structure):
    _fields_ = [
        ("id", ctypes.c_uint64),
        ("val", ctypes.c_int64),
        ("error", ctypes.c_int32),
        ("flags", ctypes.c_uint32),
    ]


class SeccompNotifAddfd(ctypes.Structure):
    _fields_ = [
        ("id", ctypes.c_uint64),
        ("flags", ctypes.c_uint32),
        ("srcfd", ctypes.c_uint32),
        ("newfd", ctypes.c_uint32),
        ("newfd_flags", ctypes.c_uint32),
    ]


assert ctypes.sizeof(SeccompNotif) == 80
assert ctypes.sizeof(SeccompNotifResp) == 24
assert ctypes.sizeof(SeccompNotifAddfd) == 24

IOCTL_NOTIF_RECV = _ioc(_IOC_READ | _IOC_WRITE, 0, ctypes.sizeof(SeccompNotif))
IOCTL_NOTIF_SEND = _ioc(_IOC_READ | _IOC_WRITE, 1, ctypes.sizeof(SeccompNotifResp))
IOCTL_NOTIF_ID_VALID = _ioc(_IOC_WRITE, 2, 8)
IOCTL_NOTIF_ID_VALID_OLD = _ioc(_IOC_READ, 2, 8)
IOCTL_NOTIF_ADDFD = _ioc(_IOC_WRITE, 3, ctypes.sizeof(SeccompNotifAddfd))
IOCTL_NOTIF_SET_FLAGS = _ioc(_IOC_WRITE, 4, 8)
assert IOCTL_NOTIF_SET_FLAGS == 0x40082104

USER_NOTIF_FLAG_CONTINUE = 1
USER_NOTIF_FD_SYNC_WAKE_UP = 1
ADDFD_FLAG_SETFD = 1
ADDFD_FLAG_SEND = 2

AUDIT_ARCH_X86_64 = 0xC000003E


class ListenerClosed(Exception):
    """Every task using the filter is gone (POLLHUP), or the fd was closed."""


class Listener:
    """Owns a seccomp listener fd (closed by close())."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._id_valid_req = IOCTL_NOTIF_ID_VALID
        self.sync_wakeup = False
        # Pin the target to our CPU during ADDFD (only useful, and only
        # turned on, with SYNC_WAKE_UP: then we run where the target slept).
        self.inject_here = False

    def close(self) -> None:
        if self.fd >= 0:
            fd, self.fd = self.fd, -1
            os.close(fd)

    def __enter__(self) -> Listener:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def set_sync_wakeup(self) -> bool:
        """Ask for synchronous same-CPU wake-ups (6.6+); False if unsupported."""
        if _ioctl(self.fd, IOCTL_NOTIF_SET_FLAGS, USER_NOTIF_FD_SYNC_WAKE_UP) == 0:
            self.sync_wakeup = True
            self.inject_here = several_cpus()
            return True
        err = ctypes.get_errno()
        if err in (errno.EINVAL, errno.ENOTTY):
            return False
        raise OSError(err, f"seccomp set_flags sync_wake_up: {os.strerror(err)}")

    def wait_hangup(self, timeout: float | None = None) -> bool:
        """Block until POLLHUP (all targets gone); True if it came.

        Events 0: poll still reports POLLHUP/POLLERR, and a pending
        notification (POLLIN) does not wake us up to user space.
        """
        p = select.poll()
        p.register(self.fd, 0)
        ms = None if timeout is None else int(timeout * 1000)
        for _fd, ev in p.poll(ms):
            if ev & (select.POLLHUP | select.POLLERR | select.POLLNVAL):
                return True
        return False

    def readable(self, timeout: float = 0.0) -> int:
        """poll() the listener: returns the revents (0 on timeout)."""
        p = select.poll()
        p.register(self.fd, select.POLLIN)
        for _fd, ev in p.poll(int(timeout * 1000)):
            return ev
        return 0

    def channel(self) -> Channel:
        return Channel(self)


class Channel:
    """One thread's preallocated buffers for RECV/SEND/ADDFD/ID_VALID.

    The seccomp platform's `CallChannel` (sentry/platform/base.py)."""

    __slots__ = ("listener", "fd", "notif", "resp", "addfd", "_id", "_notif_p",
                 "_resp_p", "_addfd_p", "_id_p", "_notif_size", "args", "data",
                 "placement", "_notif_view", "_zero")

    def __init__(self, listener: Listener) -> None:
        self.listener = listener
        self.fd = listener.fd
        self.notif = SeccompNotif()
        self.resp = SeccompNotifResp()
        self.addfd = SeccompNotifAddfd()
        self._id = ctypes.c_uint64()
        self._notif_p = ctypes.addressof(self.notif)
        self._resp_p = ctypes.addressof(self.resp)
        self._addfd_p = ctypes.addressof(self.addfd)
        self._id_p = ctypes.addressof(self._id)
        self._notif_size = ctypes.sizeof(SeccompNotif)
        self._notif_view = memoryview(self.notif).cast("B")
        self._zero = bytes(self._notif_size)
        self.data = self.notif.data
        self.args = self.notif.data.args
        self.placement = Placement()

    def recv(self) -> bool:
        """Receive one notification into self.notif.

        Returns False when the call should be retried (EINTR, or ENOENT: the
        target went away between wake-up and copy).  Raises ListenerClosed
        when the fd is gone.
        """
        self._notif_view[:] = self._zero  # RECV wants it zeroed (EINVAL otherwise)
        if _ioctl(self.fd, IOCTL_NOTIF_RECV, self._notif_p) == 0:
            return True
        err = ctypes.get_errno()
        if err in (errno.EINTR, errno.ENOENT):
            return False
        if err in (errno.EBADF, errno.EINVAL):
            raise ListenerClosed(f"seccomp recv: {os.strerror(err)}")
        raise OSError(err, f"seccomp recv: {os.strerror(err)}")

    def _send(self) -> bool:
        if _ioctl_nb(self.fd, IOCTL_NOTIF_SEND, self._resp_p) == 0:
            return True
        err = ctypes.get_errno()
        if err == errno.ENOENT:
            return False  # target gone or call interrupted: nobody to answer
        raise OSError(err, f"seccomp send: {os.strerror(err)}")

    def reply(self, nid: int, val: int) -> bool:
        """Answer notification nid with a return value (>= 0) or -errno.

        Returns False if the notification no longer exists.
        """
        r = self.resp
        r.id = nid
        r.flags = 0
        if val < 0:
            r.val = 0
            r.error = val
        else:
            r.val = val
            r.error = 0
        return self._send()

    def keep_beside(self, tid: int) -> None:
        """base.CallChannel: nothing to do.  With SYNC_WAKE_UP the serving
        thread already runs on the caller's CPU; pinning an exec'ing task
        there as well, until its first calls were served, did not make a
        fork+exec faster here (docs/performance.md, The ptrace platform)."""

    def reply_continue(self, nid: int) -> bool:
        """Let the kernel run the call itself.  Never a security decision."""
        r = self.resp
        r.id = nid
        r.val = 0
        r.error = 0
        r.flags = USER_NOTIF_FLAG_CONTINUE
        return self._send()

    def reply_fd(self, nid: int, srcfd: int, cloexec: bool = False, newfd: int = -1) -> int:
        """Install srcfd in the target and answer with its number (ADDFD|SEND).

        newfd >= 0 places it at that number (dup2 semantics).  Returns the fd
        number in the target, or -errno (-ENOENT: notification gone).
        """
        a = self.addfd
        a.id = nid
        a.srcfd = srcfd
        a.newfd_flags = os.O_CLOEXEC if cloexec else 0
        if newfd >= 0:
            a.flags = ADDFD_FLAG_SEND | ADDFD_FLAG_SETFD
            a.newfd = newfd
        else:
            a.flags = ADDFD_FLAG_SEND
            a.newfd = 0
        if self.listener.inject_here:
            return self._addfd_here()
        ret = _ioctl_nb(self.fd, IOCTL_NOTIF_ADDFD, self._addfd_p)
        if ret >= 0:
            return ret
        return -ctypes.get_errno()

    def _addfd_here(self) -> int:
        """ADDFD, then SEND, with the target thread pinned to our CPU meanwhile.

        With SYNC_WAKE_UP the target's notification woke us on the CPU it
        slept on.  ADDFD wakes it with a plain completion while we are
        running there, so the scheduler queues it on the idle CPU, which a
        VM pays ~100 us to wake.  Pinned to our CPU, it is queued here and
        runs the moment we block.  (Pinning ourselves too, for its wake-up
        of us, measured slower: 45-72 us per open against 39-42.)
        The pin must end before the call does: a fork right after it would
        hand the pinned mask to the child for good.  So the fd goes in
        without SEND (the target installs it and waits for our answer
        again), its mask is put back, and then SEND answers with the fd
        number, itself a same-CPU wake-up.  Another of its threads reading
        its mask meanwhile is the only way to see the pin.  Best effort: no
        pin (one ADDFD|SEND) when the mask cannot be read or set (EPERM for
        another uid), when our CPU is outside it, or when it is exactly our
        CPU.  Placement only, never a security decision.
        """
        pid = self.notif.pid
        pl = self.placement
        cpu = current_cpu()
        if not pl.pin_target(pid, cpu):
            ret = _ioctl_nb(self.fd, IOCTL_NOTIF_ADDFD, self._addfd_p)
            return ret if ret >= 0 else -ctypes.get_errno()
        self.addfd.flags &= ~ADDFD_FLAG_SEND
        ret = _ioctl_nb(self.fd, IOCTL_NOTIF_ADDFD, self._addfd_p)
        err = ctypes.get_errno()
        pl.restore_target(pid)
        if ret < 0:
            return -err
        # The fd is in the target: answer with its number (ENOENT: the
        # target died meanwhile, and its fd table with it).
        return ret if self.reply(self.addfd.id, ret) else -errno.ENOENT

    def id_valid(self, nid: int) -> bool:
        """True while notification nid is still pending (the pid is its task)."""
        self._id.value = nid
        lst = self.listener
        if _ioctl_nb(self.fd, lst._id_valid_req, self._id_p) == 0:
            return True
        err = ctypes.get_errno()
        if err in (errno.ENOTTY, errno.EINVAL) and lst._id_valid_req == IOCTL_NOTIF_ID_VALID:
            lst._id_valid_req = IOCTL_NOTIF_ID_VALID_OLD
            return self.id_valid(nid)
        return False
