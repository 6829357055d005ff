"""Thin, checked wrappers around the Linux system calls Python does not expose.

Every wrapper raises OSError with errno set and the failing call's context in
the message ("mount /proc: Operation not permitted"), so callers can wrap it
once more with their own context and never lose the errno.
"""

from __future__ import annotations

import ctypes
import os
import struct

_libc = ctypes.CDLL("libc.so.6", use_errno=True)  # find_library would fork ldconfig

# --- constants (x86-64) -------------------------------------------------------
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
CLONE_NEWTIME = 0x00000080

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_SYNCHRONOUS = 0x10
MS_REMOUNT = 0x20
MS_MANDLOCK = 0x40
MS_DIRSYNC = 0x80
MS_NOSYMFOLLOW = 0x100
MS_NOATIME = 0x400
MS_NODIRATIME = 0x800
MS_BIND = 0x1000
MS_MOVE = 0x2000
MS_REC = 0x4000
MS_SILENT = 0x8000
MS_UNBINDABLE = 1 << 17
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24
MS_LAZYTIME = 1 << 25

MNT_DETACH = 2

PR_SET_PDEATHSIG = 1
PR_GET_DUMPABLE = 3
PR_SET_DUMPABLE = 4
PR_SET_KEEPCAPS = 8
PR_SET_NAME = 15
PR_CAPBSET_READ = 23
PR_CAPBSET_DROP = 24
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
PR_GET_NO_NEW_PRIVS = 39
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_CLEAR_ALL = 4

SYS_pivot_root = 155
SYS_setns = 308
SYS_capget = 125
SYS_capset = 126
SYS_pidfd_open = 434
SYS_pidfd_send_signal = 424
SYS_move_mount = 429
SYS_fsopen = 430
SYS_fsconfig = 431
SYS_fsmount = 432

FSCONFIG_SET_STRING = 1
FSCONFIG_CMD_CREATE = 6
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NODEV = 0x4
MOUNT_ATTR_NOEXEC = 0x8
MOVE_MOUNT_F_EMPTY_PATH = 0x4
NS_GET_PARENT = 0xB702  # _IO(0xb7, 0x2)

_LINUX_CAPABILITY_VERSION_3 = 0x20080522


def _check(ret: int, what: str) -> int:
    if ret == -1:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return ret


def _b(s: str | bytes | None) -> bytes | None:
    if s is None:
        return None
    return s if isinstance(s, bytes) else os.fsencode(s)


def mount(source: str | None, target: str, fstype: str | None, flags: int = 0,
          data: str | None = None) -> None:
    _check(_libc.mount(_b(source), _b(target), _b(fstype), ctypes.c_ulong(flags), _b(data)),
           f"mount {source or fstype} on {target}")


def umount2(target: str, flags: int = 0) -> None:
    _check(_libc.umount2(_b(target), flags), f"umount {target}")


def pivot_root(new_root: str, put_old: str) -> None:
    _check(_libc.syscall(SYS_pivot_root, _b(new_root), _b(put_old)), f"pivot_root {new_root}")


SYS_clone = 56
_SIGCHLD = 17


def fork_with(flags: int) -> int:
    """fork(2) into new namespaces: clone(2) with FLAGS (CLONE_NEW* kinds) and
    SIGCHLD, no new stack (the child runs on a copy of ours, as after fork).
    Only the child is in them: unlike unshare(CLONE_NEWPID) first, our own
    later children stay in our pid namespace and we may still make
    threads.  Returns 0 in the child, its pid in the parent.

    What os.fork does around fork() is done here around the call: the
    interpreter's before-fork work (its locks, os.register_at_fork hooks),
    the call with the GIL held (a PyDLL function), then the after-fork work
    in each process.  For a single-threaded caller only: glibc's fork also
    takes malloc's locks for the other threads, a raw clone does not.  Nor
    does it refresh glibc's cached thread id in the child (fork has the
    kernel write it, CLONE_CHILD_SETTID, at an address glibc keeps to
    itself): in the child, raise(3) and pthread_kill(3) on itself would
    name the caller's tid and fail (ESRCH).  Nothing init runs before its
    execve uses them (it signals with kill(2)); the execve resets it all."""
    import sys
    if "threading" in sys.modules and sys.modules["threading"].active_count() > 1:
        raise RuntimeError("fork_with: the caller has threads")
    api = ctypes.pythonapi
    api.PyOS_BeforeFork()
    pid = _pylibc.syscall(ctypes.c_long(SYS_clone), ctypes.c_ulong(flags | _SIGCHLD),
                          None, None, None, ctypes.c_ulong(0))
    if pid == 0:
        api.PyOS_AfterFork_Child()
        return 0
    err = ctypes.get_errno()
    api.PyOS_AfterFork_Parent()
    if pid < 0:
        raise OSError(err, f"clone {flags:#x}: {os.strerror(err)}")
    return int(pid)


_pylibc = ctypes.PyDLL("libc.so.6", use_errno=True)  # keeps the GIL across the call (fork_with)
_pylibc.syscall.restype = ctypes.c_long


def unshare(flags: int) -> None:
    _check(_libc.unshare(flags), f"unshare {flags:#x}")


def setns(fd: int, nstype: int = 0) -> None:
    _check(_libc.syscall(SYS_setns, fd, nstype), "setns")


def sethostname(name: str) -> None:
    b = name.encode()
    _check(_libc.sethostname(b, len(b)), f"sethostname {name}")


def setdomainname(name: str) -> None:
    b = name.encode()
    _check(_libc.setdomainname(b, len(b)), f"setdomainname {name}")


# prctl with integer arguments, as its own function object (set_name passes
# a buffer): ctypes converts them itself, no c_ulong made per call (init
# drops ~27 bounding capabilities one prctl each).
_prctl = _libc["prctl"]
_prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
_prctl.restype = ctypes.c_int


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    r = _prctl(option, arg2, arg3, arg4, arg5)
    if r == -1:
        _check(r, f"prctl {option}")
    return r


SYS_close_range = 436
CLOSE_RANGE_CLOEXEC = 1 << 2


def cloexec_from(first: int) -> bool:
    """Mark every fd from FIRST up close-on-exec in one call (close_range(2)
    with CLOSE_RANGE_CLOEXEC, Linux 5.11); False where the kernel lacks it."""
    return _libc.syscall(SYS_close_range, ctypes.c_uint(first), ctypes.c_uint(0xFFFFFFFF),
                         ctypes.c_uint(CLOSE_RANGE_CLOEXEC)) == 0


def set_name(name: str) -> None:
    """Set the calling thread's comm (what ps shows), at most 15 bytes."""
    buf = ctypes.create_string_buffer(name.encode()[:15])
    _libc.prctl(PR_SET_NAME, buf, 0, 0, 0)


def capset(effective: int, permitted: int, inheritable: int) -> None:
    """capset(2) for the calling thread with 64-bit sets (two 32-bit words)."""
    header = struct.pack("Ii", _LINUX_CAPABILITY_VERSION_3, 0)
    data = struct.pack("IIIIII",
                       effective & 0xFFFFFFFF, permitted & 0xFFFFFFFF, inheritable & 0xFFFFFFFF,
                       effective >> 32, permitted >> 32, inheritable >> 32)
    hbuf = ctypes.create_string_buffer(header, len(header))
    dbuf = ctypes.create_string_buffer(data, len(data))
    _check(_libc.syscall(SYS_capset, hbuf, dbuf), "capset")


def pidfd_open(pid: int) -> int:
    return _check(_libc.syscall(SYS_pidfd_open, pid, 0), f"pidfd_open {pid}")


def pidfd_send_signal(pidfd: int, sig: int) -> None:
    _check(_libc.syscall(SYS_pidfd_send_signal, pidfd, sig, None, 0), "pidfd_send_signal")


def fsmount_new(fstype: str, options: dict[str, str], attrs: int) -> int:
    """A new, detached mount of FSTYPE (fsopen, fsconfig, fsmount): an fd
    that move_mount() attaches later, in whatever mount namespace the caller
    is in by then.  The superblock is made with the caller's rights now."""
    fs = _check(_libc.syscall(SYS_fsopen, _b(fstype), 1), f"fsopen {fstype}")  # FSOPEN_CLOEXEC
    try:
        for key, value in options.items():
            _check(_libc.syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING, _b(key), _b(value), 0),
                   f"fsconfig {fstype} {key}={value}")
        _check(_libc.syscall(SYS_fsconfig, fs, FSCONFIG_CMD_CREATE, None, None, 0),
               f"fsconfig {fstype}: create")
        return _check(_libc.syscall(SYS_fsmount, fs, 1, attrs), f"fsmount {fstype}")  # FSMOUNT_CLOEXEC
    finally:
        os.close(fs)


def move_mount(fd: int, target: str) -> None:
    """Attach the detached mount FD (fsmount_new) on TARGET."""
    _check(_libc.syscall(SYS_move_mount, fd, b"", -100, _b(target), MOVE_MOUNT_F_EMPTY_PATH),
           f"move_mount on {target}")


def ns_parent(fd: int) -> int:
    """An fd of the parent of the pid (or user) namespace FD (NS_GET_PARENT)."""
    return _check(_libc.ioctl(fd, NS_GET_PARENT), "ioctl NS_GET_PARENT")


class _Utsname(ctypes.Structure):
    _fields_ = [(name, ctypes.c_char * 65) for name in
                ("sysname", "nodename", "release", "version", "machine", "domainname")]


def domainname() -> str:
    """The NIS domain name of our UTS namespace (os.uname() omits it)."""
    u = _Utsname()
    _check(_libc.uname(ctypes.byref(u)), "uname")
    return u.domainname.decode(errors="replace")


def malloc_trim() -> None:
    """Give the heap's free pages back to the kernel (glibc malloc_trim(0))."""
    _libc.malloc_trim(0)
