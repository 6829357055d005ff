"""Raw host syscalls the handlers need, via ctypes, returning -errno.

Conventions: every function returns the syscall's result (>= 0) or -errno;
none raises and none allocates beyond what the caller passes, so handlers
stay cheap.  Buffers are the caller's (per-thread scratch in `Scratch`).
"""

from __future__ import annotations

import ctypes
import errno

_libc = ctypes.CDLL("libc.so.6", use_errno=True)  # find_library would fork ldconfig
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long
# Without releasing the GIL, for calls that never block (pidfd_send_signal).
_syscall_nb = ctypes.PyDLL("libc.so.6", use_errno=True).syscall
_syscall_nb.restype = ctypes.c_long
_get_errno = ctypes.get_errno

SYS_newfstatat = 262
SYS_readlinkat = 267
SYS_statx = 332
SYS_openat2 = 437
SYS_faccessat2 = 439
SYS_setfsuid = 122
SYS_setfsgid = 123
SYS_setgroups = 116
SYS_setresuid = 117
SYS_setresgid = 119
SYS_capset = 126
SYS_capget = 125
SYS_statfs = 137
SYS_fstatfs = 138

AT_FDCWD = -100
AT_SYMLINK_NOFOLLOW = 0x100
AT_EACCESS = 0x200
AT_REMOVEDIR = 0x200
AT_SYMLINK_FOLLOW = 0x400
AT_NO_AUTOMOUNT = 0x800
AT_EMPTY_PATH = 0x1000
AT_STATX_SYNC_TYPE = 0x6000

RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10
_EAGAIN_RETRIES = 64  # a scoped openat2 that keeps meeting renames or mounts: EAGAIN

STAT_SIZE = 144
STATX_SIZE = 256
STATFS_SIZE = 120


class OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


class Scratch:
    """Per-thread buffers for the host calls."""

    def __init__(self) -> None:
        self.how = OpenHow()
        self.how_ref = ctypes.byref(self.how)
        self.stat = ctypes.create_string_buffer(STATX_SIZE)
        self.stat_dev = ctypes.c_uint64.from_buffer(self.stat)  # st_dev of fstat_into
        self.stat_mode = ctypes.c_uint32.from_buffer(self.stat, 24)  # its st_mode
        self.statfs = ctypes.create_string_buffer(STATFS_SIZE)
        self.link = ctypes.create_string_buffer(4096)
        self.empty = ctypes.c_char_p(b"")

    def openat2(self, dirfd: int, path: bytes, flags: int, mode: int, resolve: int) -> int:
        """openat2(2); our fd or -errno.  A scoped lookup (BENEATH,
        IN_ROOT) fails with EAGAIN when any rename or mount on the host
        happened while it walked "..": retried, as openat2(2) asks (the
        walk stops there, before the last component is created)."""
        how = self.how
        how.flags = flags
        how.mode = mode
        how.resolve = resolve
        for _ in range(_EAGAIN_RETRIES):
            r = _syscall(SYS_openat2, dirfd, path, self.how_ref, ctypes.sizeof(OpenHow))
            if r >= 0:
                return r
            err = _get_errno()
            if err != errno.EAGAIN or not resolve & (RESOLVE_BENEATH | RESOLVE_IN_ROOT):
                return -err
        return -errno.EAGAIN

    def fstat_into(self, fd: int) -> int:
        """newfstatat(fd, "", buf, AT_EMPTY_PATH) into self.stat."""
        r = _syscall(SYS_newfstatat, fd, self.empty, self.stat, AT_EMPTY_PATH)
        return r if r >= 0 else -_get_errno()

    def fstatx_into(self, fd: int, flags: int, mask: int) -> int:
        r = _syscall(SYS_statx, fd, self.empty, (flags & AT_STATX_SYNC_TYPE) | AT_EMPTY_PATH,
                     ctypes.c_uint(mask), self.stat)
        return r if r >= 0 else -_get_errno()

    def fstatfs_into(self, fd: int) -> int:
        """fstatfs(fd) into self.statfs (its own buffer: is_proc runs between
        an fstat_into and the use of its result)."""
        r = _syscall(SYS_fstatfs, fd, self.statfs)
        return r if r >= 0 else -_get_errno()

    def readlink_fd(self, fd: int) -> int:
        """readlinkat(fd, "") of an O_PATH|O_NOFOLLOW symlink fd into self.link."""
        r = _syscall(SYS_readlinkat, fd, self.empty, self.link, ctypes.c_size_t(4096))
        return r if r >= 0 else -_get_errno()

    def faccess_fd(self, fd: int, mode: int) -> int:
        """faccessat2(fd, "", mode, AT_EMPTY_PATH|AT_EACCESS): current fs creds."""
        r = _syscall(SYS_faccessat2, fd, self.empty, mode, AT_EMPTY_PATH | AT_EACCESS)
        return r if r >= 0 else -_get_errno()


def setfsuid(uid: int) -> int:
    """Per-thread (raw syscall: glibc's setxid broadcast is not wanted)."""
    return int(_syscall(SYS_setfsuid, ctypes.c_uint(uid)))


def setfsgid(gid: int) -> int:
    return int(_syscall(SYS_setfsgid, ctypes.c_uint(gid)))


def setgroups(groups: tuple[int, ...]) -> int:
    arr = (ctypes.c_uint * max(1, len(groups)))(*groups)
    r = _syscall(SYS_setgroups, len(groups), arr)
    return r if r >= 0 else -_get_errno()


def set_effective_ids(uid: int, gid: int) -> int:
    """setresgid(-1, gid, -1) then setresuid(-1, uid, -1), this thread only
    (raw syscalls); 0 or -errno.  The kernel also sets the fs ids to them."""
    keep = ctypes.c_uint(0xFFFFFFFF)
    if _syscall(SYS_setresgid, keep, ctypes.c_uint(gid), keep) < 0:
        return -_get_errno()
    if _syscall(SYS_setresuid, keep, ctypes.c_uint(uid), keep) < 0:
        return -_get_errno()
    return 0


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


_CAP_V3 = 0x20080522


def capget_self() -> tuple[int, int, int]:
    hdr = _CapHeader(_CAP_V3, 0)
    data = (_CapData * 2)()
    if _syscall(SYS_capget, ctypes.byref(hdr), data) != 0:
        err = _get_errno()
        raise OSError(err, "capget")
    return (data[0].effective | data[1].effective << 32,
            data[0].permitted | data[1].permitted << 32,
            data[0].inheritable | data[1].inheritable << 32)


def capset_self(effective: int, permitted: int, inheritable: int) -> int:
    """capset(2) for the calling thread only (capabilities are per thread)."""
    hdr = _CapHeader(_CAP_V3, 0)
    data = (_CapData * 2)()
    data[0].effective, data[1].effective = effective & 0xFFFFFFFF, effective >> 32
    data[0].permitted, data[1].permitted = permitted & 0xFFFFFFFF, permitted >> 32
    data[0].inheritable, data[1].inheritable = inheritable & 0xFFFFFFFF, inheritable >> 32
    r = _syscall(SYS_capset, ctypes.byref(hdr), data)
    return r if r >= 0 else -_get_errno()


SYS_pidfd_send_signal = 424
SYS_pidfd_open = 434


# What an execve may change of a task's credentials, asked of the kernel
# directly (creds.CredsCache: a thread group leader after its own exec).
# PIDFD_GET_INFO (Linux 6.13) on a pidfd: its ids as our user namespace
# maps them, with no task lookup by number; struct pidfd_info as first
# published (PIDFD_INFO_SIZE_VER0), which later kernels still accept.
_PIDFD_GET_INFO = 0xC040FF0B  # _IOWR(PIDFS_IOCTL_MAGIC 0xFF, 11, 64 bytes)
PIDFD_INFO_CREDS = 1 << 1
_ioctl = _libc["ioctl"]  # its own function object: argtypes of its own
_ioctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p]
_ioctl.restype = ctypes.c_int


class PidfdInfo(ctypes.Structure):
    _fields_ = [("mask", ctypes.c_uint64), ("cgroupid", ctypes.c_uint64),
                ("pid", ctypes.c_uint32), ("tgid", ctypes.c_uint32), ("ppid", ctypes.c_uint32),
                ("ruid", ctypes.c_uint32), ("rgid", ctypes.c_uint32),
                ("euid", ctypes.c_uint32), ("egid", ctypes.c_uint32),
                ("suid", ctypes.c_uint32), ("sgid", ctypes.c_uint32),
                ("fsuid", ctypes.c_uint32), ("fsgid", ctypes.c_uint32),
                ("spare0", ctypes.c_uint32)]


class TaskIds:
    """One thread's buffers for reading another task's ids and capabilities."""

    def __init__(self) -> None:
        self.info = PidfdInfo()
        self._info_p = ctypes.addressof(self.info)
        self._hdr = _CapHeader(_CAP_V3, 0)
        self._hdr_ref = ctypes.byref(self._hdr)
        self._data = (_CapData * 2)()

    def ids(self, pidfd: int) -> PidfdInfo | None:
        """The ids of pidfd's task (self.info), or None: an older kernel
        (ENOTTY, EINVAL), the task gone (ESRCH)."""
        info = self.info
        info.mask = PIDFD_INFO_CREDS
        if _ioctl(pidfd, _PIDFD_GET_INFO, self._info_p) != 0 or not info.mask & PIDFD_INFO_CREDS:
            return None
        return info

    def cap_effective(self, tid: int) -> int:
        """capget(2) of task tid (in our pid namespace): its effective
        set, or -1."""
        hdr = self._hdr
        hdr.version = _CAP_V3  # capget rewrites it when it does not know it
        hdr.pid = tid
        data = self._data
        if _syscall(SYS_capget, self._hdr_ref, data) != 0:
            return -1
        return data[0].effective | data[1].effective << 32


def pidfd_open(pid: int, flags: int = 0) -> int:
    r = _syscall(SYS_pidfd_open, pid, flags)
    return r if r >= 0 else -_get_errno()


def pidfd_alive(pidfd: int) -> bool:
    """True while the pidfd's task has not exited (signal 0: no signal sent).

    EPERM means it exists: the permission check comes after the exit check,
    and a thread acting as another uid holds no CAP_KILL."""
    return _syscall_nb(SYS_pidfd_send_signal, pidfd, 0, None, 0) == 0 or _get_errno() == errno.EPERM
