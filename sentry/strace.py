"""--strace: log every intercepted syscall with decoded arguments and result.

Wraps the supervisor's dispatch table (number -> handler) so the hot path
pays nothing when tracing is off.  Path arguments are decoded from the
target's memory (bounded, as the handlers do); other arguments are shown
as numbers.  Lines go to the `sentry.strace` logger (the --log file).
"""

from __future__ import annotations

import errno
import logging
import os
from typing import Callable, Optional

from .errors import SysError

log = logging.getLogger("sentry.strace")

# syscall name -> indexes of its path arguments
PATH_ARGS: dict[str, tuple[int, ...]] = {
    "open": (0,), "openat": (1,), "openat2": (1,), "creat": (0,), "stat": (0,), "lstat": (0,),
    "newfstatat": (1,), "statx": (1,), "access": (0,), "faccessat": (1,), "faccessat2": (1,),
    "readlink": (0,), "readlinkat": (1,), "mkdir": (0,), "mkdirat": (1,), "rmdir": (0,),
    "unlink": (0,), "unlinkat": (1,), "rename": (0, 1), "renameat": (1, 3), "renameat2": (1, 3),
    "link": (0, 1), "linkat": (1, 3), "symlink": (0, 1), "symlinkat": (0, 2), "chmod": (0,),
    "fchmodat": (1,), "chown": (0,), "lchown": (0,), "fchownat": (1,), "utime": (0,),
    "utimes": (0,), "utimensat": (1,), "futimesat": (1,), "truncate": (0,), "statfs": (0,),
    "chdir": (0,), "chroot": (0,), "mknod": (0,), "mknodat": (1,), "execve": (0,),
    "execveat": (1,), "getxattr": (0,), "lgetxattr": (0,), "setxattr": (0,), "lsetxattr": (0,),
    "listxattr": (0,), "llistxattr": (0,), "removexattr": (0,), "lremovexattr": (0,),
    "inotify_add_watch": (1,),
}

# *at calls: which arguments are directory fds (AT_FDCWD shown by name)
_DIRFD_ARGS: dict[str, tuple[int, ...]] = {
    n: ((0, 2) if n in ("renameat", "renameat2", "linkat") else (1,) if n == "symlinkat" else (0,))
    for n, idx in PATH_ARGS.items() if n.endswith("at") or n.endswith("at2") or n == "statx"
}

Handler = Callable[..., Optional[int]]


def wrap(dispatch: list[Optional[Handler]], names: dict[int, str],
         only: set[str] | None = None) -> list[Optional[Handler]]:
    """Return a dispatch table whose handlers log each call (ONLY: a name filter)."""
    out = list(dispatch)
    for nr, handler in enumerate(dispatch):
        name = names.get(nr, f"syscall_{nr}")
        if handler is None or (only and name not in only):
            continue
        out[nr] = _traced(name, handler)
    return out


def _traced(name: str, handler: Handler) -> Handler:
    paths = PATH_ARGS.get(name, ())

    def traced(call):  # type: ignore[no-untyped-def]
        args = []
        for i, a in enumerate(call.args[:6]):
            if i in paths:
                try:
                    args.append(repr(call.path(i).decode(errors="replace")))
                except Exception:
                    args.append(f"{a:#x}")
            elif a & 0xFFFFFFFF == 0xFFFFFF9C and i in _DIRFD_ARGS.get(name, ()):
                args.append("AT_FDCWD")
            else:
                args.append(str(a) if a < 4096 else f"{a:#x}")
        try:
            res = handler(call)
        except SysError as e:
            log.info("[%d] %s(%s) = -1 %s", call.pid, name, ", ".join(args),
                     errno.errorcode.get(e.errno, e.errno))
            raise
        if res is None:
            log.info("[%d] %s(%s) = (continued in the kernel)", call.pid, name, ", ".join(args))
        elif res < 0:
            log.info("[%d] %s(%s) = -1 %s (%s)", call.pid, name, ", ".join(args),
                     errno.errorcode.get(-res, -res), os.strerror(-res))
        else:
            log.info("[%d] %s(%s) = %d", call.pid, name, ", ".join(args), res)
        return res

    traced.__name__ = f"strace_{name}"
    return traced
