"""Hints and flushes on held fds, done by the sentry on its copy of the fd:
fadvise64(2), readahead(2), sync_file_range(2), syncfs(2), cachestat(2),
and sync(2).

The copy (pidfd_getfd) is the same open file, so the kernel's answers are
the caller's own (ESPIPE for a pipe, EBADF for a write-only fd where it
matters); nothing is named by path.  Emulated to keep the host kernel
surface small (sentry/policy.py): they are advisory and rare (cp calls
fadvise once per file).
"""

from __future__ import annotations

import ctypes
import os

from .. import paths
from ..call import Call

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
SYS_fadvise64, SYS_readahead, SYS_sync_file_range, SYS_syncfs, SYS_cachestat = 221, 187, 277, 306, 451


def _on_held(call: Call, nr: int, *rest: object) -> int:
    """syscall nr on our copy of the caller's fd (argument 0), then rest."""
    held = paths.held_fd(call, call.args[0])
    try:
        r = _libc.syscall(nr, held, *rest)
        return int(r) if r >= 0 else -ctypes.get_errno()
    finally:
        os.close(held)


def fadvise64(call: Call) -> int:
    """Implements Linux syscall fadvise64(2)."""
    a = call.args
    return _on_held(call, SYS_fadvise64, ctypes.c_long(a[1]), ctypes.c_long(a[2]), ctypes.c_int(a[3] & 0xFFFFFFFF))


def readahead(call: Call) -> int:
    """Implements Linux syscall readahead(2)."""
    a = call.args
    return _on_held(call, SYS_readahead, ctypes.c_long(a[1]), ctypes.c_size_t(a[2]))


def sync_file_range(call: Call) -> int:
    """Implements Linux syscall sync_file_range(2)."""
    a = call.args
    return _on_held(call, SYS_sync_file_range, ctypes.c_long(a[1]), ctypes.c_long(a[2]),
                    ctypes.c_uint(a[3] & 0xFFFFFFFF))


def syncfs(call: Call) -> int:
    """Implements Linux syscall syncfs(2)."""
    return _on_held(call, SYS_syncfs)


def sync(call: Call) -> int:
    """Implements Linux syscall sync(2)."""
    os.sync()
    return 0


def cachestat(call: Call) -> int:
    """Implements Linux syscall cachestat(2)."""
    a = call.args
    flags = a[3] & 0xFFFFFFFF
    rng = ctypes.create_string_buffer(call.read(a[1], 16), 16)
    out = ctypes.create_string_buffer(40)
    r = _on_held(call, SYS_cachestat, rng, out, ctypes.c_uint(flags))
    if r < 0:
        return r
    call.mem.write(call.pid, a[2], out.raw)
    return 0
