"""execve(2), execveat(2): checked by the sentry, then run by the kernel.

The sentry cannot replace a process image from outside, so after its own
checks the call is CONTINUEd.  That is not a security decision resting on
the pointer arguments: the filter stays installed across execve, and the
kernel resolves the path again in the target's own mount namespace and
root (the container's: the same mount table the gofer serves), with the
target's credentials, so no binary outside the container can be named
whatever the target writes into its memory after our check.  Privilege
gain through setuid bits or file capabilities is the kernel's to allow
inside the container (and refused when the spec sets noNewPrivileges).

The checks (through the same file interface as every other path call,
sentry/files.py: directfs or the gofer): the binary resolves in the root
(ENOENT, ENOTDIR, ELOOP as the kernel would say), is a regular file
(EACCES), is executable for the caller (EACCES); a "#!" script's
interpreter resolves in the root (ENOENT).  A refusal is answered directly,
without running the exec.
"""

from __future__ import annotations

import errno
import os
import stat as _stat

from .. import ownproc, paths
from ..call import Call
from ..errors import SysError
from ..hostcalls import AT_EMPTY_PATH, AT_SYMLINK_NOFOLLOW
from runsc_py.timeline import mark
from runsc_py.log import get_logger

log = get_logger(__name__)
_O_PATH = os.O_PATH | os.O_CLOEXEC


_NOT_A_SCRIPT = b""


def interpreter(call: Call, fd: int, st: os.stat_result) -> bytes | None:
    """The interpreter path of a "#!" file, if we may read its first line.

    Kept per sandbox by the file's identity and every stamp a write
    changes (device, inode, size, mtime, ctime: ctime moves with any change
    of the contents, and cannot be set back): a program exec'd again (every
    command of a shell loop) is not reopened and read each time.  Only
    what was read is kept, never a refusal: whether the caller may read
    the file depends on the caller."""
    key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    kept = call.sb.interpreters
    interp = kept.get(key)
    if interp is not None:
        return interp or None
    rfd = paths.reopen(fd, os.O_RDONLY | os.O_NONBLOCK)
    if rfd < 0:
        return None  # execute-only: the kernel reads it, we do not
    try:
        head = os.read(rfd, 256)
    except OSError:
        return None
    finally:
        os.close(rfd)
    interp = _NOT_A_SCRIPT
    if head.startswith(b"#!"):
        line = head[2:].split(b"\n", 1)[0].strip()
        interp = line.split(None, 1)[0] if line else _NOT_A_SCRIPT
    if len(kept) >= _MAX_KEPT:
        kept.clear()
    kept[key] = interp
    return interp or None


_MAX_KEPT = 512


def _check(call: Call, dirfd: int | None, path: bytes, flags: int) -> int | None:
    """-errno to refuse the exec, None to let the kernel run it."""
    try:
        if not path:
            if not flags & AT_EMPTY_PATH or dirfd is None:
                return -errno.ENOENT
            # fexecve: the fd's own object, which must be the container's.
            fd = paths.open_fd_object(call, dirfd, paths.CHANGE)
        else:
            # Lent by the lookup cache (no dup, no close): only read here.
            fd = paths.open_path(call, dirfd, path,
                                 _O_PATH | (os.O_NOFOLLOW if flags & AT_SYMLINK_NOFOLLOW else 0),
                                 lend=True)
            if fd < 0:
                return fd  # a kept ENOENT
    except SysError as e:
        return -e.errno
    try:
        st = os.fstat(fd)
        if _stat.S_ISLNK(st.st_mode):
            return -errno.ELOOP
        if not _stat.S_ISREG(st.st_mode):
            return -errno.EACCES
        r = call.fs.access(fd, os.X_OK)
        if r < 0:
            return r
        interp = interpreter(call, fd, st)
    finally:
        paths.release(call, fd)
    if interp is not None:
        try:
            ifd = paths.open_path(call, None, interp, _O_PATH, lend=True)
        except SysError as e:
            return -e.errno
        if ifd < 0:
            return ifd
        paths.release(call, ifd)
    return None


def _forget(call: Call) -> bool:
    """The exec may change the caller's credentials and changes its address
    space, and it takes over its thread group leader's tid: their cached
    credentials and mem fds go (sentry/creds.py).  Other tasks are
    untouched.

    The exec of a single-threaded process (its leader, alone: no other
    thread can exec in its place, nor start one while it waits here) keeps
    what an exec cannot change, its groups and its pid: only its ids and
    capabilities are read again, from the kernel (CredsEpoch.exec_of_leader).
    With other threads the task under the leader's tid afterwards may be
    any of them, with credentials of its own: everything is read again.
    True for the first case (a process of one thread)."""
    c = call.creds()
    if c.tgid == call.pid and _alone(call.pid):
        call.sb.creds_epoch.exec_of_leader(call.pid)
        return True
    call.sb.creds_epoch.forget(call.pid, c.tgid or call.pid)
    return False


def _alone(tgid: int) -> bool:
    """Thread group tgid has one thread (/proc/TGID/task's link count is 2
    plus its threads); False if that cannot be read."""
    try:
        return os.stat(f"{tgid}/task", dir_fd=ownproc.dirfd()).st_nlink == 3
    except OSError:
        return False


def execve(call: Call) -> int | None:
    """Implements Linux syscall execve(2)."""
    path = call.path(0)
    log.debug("execve pid=%d path=%r", call.pid, path)
    r = _check(call, None, path, 0)
    if r is not None:
        return r
    if _forget(call):
        call.keep_beside()
    mark("sentry.execve")
    call.reply_continue()
    return None


def execveat(call: Call) -> int | None:
    """Implements Linux syscall execveat(2)."""
    a = call.args
    path = call.path(1)
    flags = a[4] & 0xFFFFFFFF
    log.debug("execveat pid=%d path=%r", call.pid, path)
    if flags & ~(AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW):
        return -errno.EINVAL
    r = _check(call, a[0], path, flags)
    if r is not None:
        return r
    if _forget(call):
        call.keep_beside()
    call.reply_continue()
    return None
