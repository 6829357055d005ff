"""exec on the ptrace platform: what was checked is what runs.

The execve handler (sentry/syscalls/proc_exec.py, shared by both platforms)
checks the binary and a "#!" interpreter in the container root, then lets
the kernel run the call.  Between that check and the kernel's own reading
of the path, another thread of the caller can rewrite the path in memory.
On this platform the tracer sees the result: at PTRACE_EVENT_EXEC the new
program is in place and has not run one instruction, and /proc/PID/exe
names the file the kernel executed (for a script: its interpreter).  So
when the handler lets an exec run, the identities (st_dev, st_ino) of the
file the checked path names now, and of its interpreters, are kept; at the
exec event the executed file must be one of them, or the task is killed
before it runs (the tracer's `exec` step).

Resolution here is the handlers' own (sentry/paths.py, with the caller's
credentials): the path bytes are those the handler read (TracedCall keeps
them), never read again from the caller's memory.  Interpreters are
followed as binfmt_script does, up to 4 levels; a script we may not read
contributes only itself (its interpreter then fails the comparison: the
exec is refused by killing, fail closed).
"""

from __future__ import annotations

import os
TYPE_CHECKING = False  # typing's, without importing typing (docs/performance.md, Start-up)

from .. import paths
from ..errors import SysError
from ..hostcalls import AT_EMPTY_PATH, AT_SYMLINK_NOFOLLOW
from ..syscalls.proc_exec import interpreter

if TYPE_CHECKING:
    from ..call import Call

SYS_execve, SYS_execveat = 59, 322
_O_PATH = os.O_PATH | os.O_CLOEXEC
_MAX_INTERP = 4  # BINPRM_MAX_RECURSION


def expected(call: "Call", nr: int, path: bytes | None) -> frozenset[tuple[int, int]]:
    """What an exec the handler let run may execute: the (dev, ino) of the
    binary path names now and of its interpreters.  Empty: nothing (any
    exec event is then refused)."""
    a = call.args
    if path is None:
        return frozenset()
    dirfd: int | None = None
    flags = 0
    if nr == SYS_execveat:
        dirfd, flags = a[0], a[4] & 0xFFFFFFFF
    try:
        if not path and flags & AT_EMPTY_PATH and dirfd is not None:
            fd = paths.held_fd(call, dirfd)
        else:
            fd = paths.open_path(call, dirfd, path,
                                 _O_PATH | (os.O_NOFOLLOW if flags & AT_SYMLINK_NOFOLLOW else 0))
    except SysError:
        return frozenset()
    ids = set()
    try:
        for _ in range(_MAX_INTERP + 1):
            st = os.fstat(fd)
            ids.add((st.st_dev, st.st_ino))
            interp = interpreter(call, fd, st)  # the exec handler's, kept by file identity
            if interp is None:
                break
            os.close(fd)
            fd = -1
            try:
                fd = paths.open_path(call, None, interp, _O_PATH)
            except SysError:
                break
    finally:
        if fd >= 0:
            os.close(fd)
    return frozenset(ids)


def executed(tid: int) -> tuple[int, int] | None:
    """(dev, ino) of the file task tid runs now (its /proc/TID/exe)."""
    from .. import ownproc
    try:
        st = os.stat(f"{tid}/exe", dir_fd=ownproc.dirfd())
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


_AT_SECURE = 23


def secure_exec(tid: int) -> bool:
    """Whether tid's new program runs with more privileges than its caller
    had (AT_SECURE in its auxiliary vector: setuid, setgid, file
    capabilities).  Unreadable: assumed so (fail closed)."""
    from .. import ownproc
    import struct
    try:
        fd = ownproc.open_(f"{tid}/auxv", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return True
    try:
        data = os.read(fd, 4096)
    finally:
        os.close(fd)
    for i in range(0, len(data) - 15, 16):
        key, value = struct.unpack_from("=QQ", data, i)
        if key == _AT_SECURE:
            return value != 0
        if key == 0:
            break
    return True
