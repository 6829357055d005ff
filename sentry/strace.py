"""--strace: log every call the sandbox answered, with decoded arguments.

Wraps the supervisor's dispatch table (number -> handler) so the hot path
pays nothing when tracing is off.  What is logged:

- every emulated call, with its result: a value or an errno, "= N (fd
  injected)" when the answer is a new fd installed in the caller (ADDFD;
  "= ? (fd injected)" when ptrace installs it after the handler returned),
  "= ? (run by the kernel)" when the handler let the kernel run the call
  after its checks (CONTINUE: exec, chdir, credential changes);
- every call the filter would refuse itself (deny entries, errnos of
  argument rules): in strace mode the filter sends those to the sentry
  too (policy.PolicyOptions.trace_refused), which answers the same errno.

Native calls are the kernel's: not seen, not logged.  Path arguments are
decoded from the target's memory (bounded, as the handlers do); others are
shown as numbers.  Lines go to the `sentry.strace` logger (the --log file):
text, or with --strace-format=json one JSON object per call
({"pid", "syscall", "args", "result", "errno", "how"}) for tools that
compare runs.
"""

from __future__ import annotations

import errno
import os
TYPE_CHECKING = False  # typing's, without importing typing (docs/performance.md, Start-up)
if TYPE_CHECKING:
    from typing import Callable, Optional

from runsc_py import jsonio

from .errors import SysError
from runsc_py.log import get_logger

log = get_logger("sentry.strace")

# syscall name -> indexes of its path arguments
PATH_ARGS: dict[str, tuple[int, ...]] = {
    "open": (0,), "openat": (1,), "openat2": (1,), "creat": (0,), "stat": (0,), "lstat": (0,),
    "newfstatat": (1,), "statx": (1,), "access": (0,), "faccessat": (1,), "faccessat2": (1,),
    "readlink": (0,), "readlinkat": (1,), "mkdir": (0,), "mkdirat": (1,), "rmdir": (0,),
    "unlink": (0,), "unlinkat": (1,), "rename": (0, 1), "renameat": (1, 3), "renameat2": (1, 3),
    "link": (0, 1), "linkat": (1, 3), "symlink": (0, 1), "symlinkat": (0, 2), "chmod": (0,),
    "fchmodat": (1,), "fchmodat2": (1,), "chown": (0,), "lchown": (0,), "fchownat": (1,),
    "utime": (0,), "utimes": (0,), "utimensat": (1,), "futimesat": (1,), "truncate": (0,),
    "statfs": (0,), "chdir": (0,), "chroot": (0,), "mknod": (0,), "mknodat": (1,), "execve": (0,),
    "execveat": (1,), "getxattr": (0,), "lgetxattr": (0,), "setxattr": (0,), "lsetxattr": (0,),
    "listxattr": (0,), "llistxattr": (0,), "removexattr": (0,), "lremovexattr": (0,),
    "getxattrat": (1,), "setxattrat": (1,), "listxattrat": (1,), "removexattrat": (1,),
    "inotify_add_watch": (1,), "mount": (0, 1), "umount2": (0,), "pivot_root": (0, 1),
    "swapon": (0,), "swapoff": (0,), "acct": (0,),
}

# *at calls: which arguments are directory fds (AT_FDCWD shown by name)
_DIRFD_ARGS: dict[str, tuple[int, ...]] = {
    n: ((0, 2) if n in ("renameat", "renameat2", "linkat") else (1,) if n == "symlinkat" else (0,))
    for n, idx in PATH_ARGS.items()
    if n.endswith("at") or n.endswith("at2") or n == "statx"
}

if TYPE_CHECKING:  # annotations only
    Handler = Callable[..., Optional[int]]


def wrap(dispatch: list[Optional[Handler]], names: dict[int, str],
         only: set[str] | None = None, fmt: str = "text") -> list[Optional[Handler]]:
    """Return a dispatch table whose handlers log each call (ONLY: a name
    filter; fmt: text or json)."""
    out = list(dispatch)
    for nr, handler in enumerate(dispatch):
        name = names.get(nr, f"syscall_{nr}")
        if handler is None or (only and name not in only):
            continue
        out[nr] = _traced(name, handler, fmt == "json")
    return out


def _args(call, name: str) -> list[str]:  # type: ignore[no-untyped-def]
    paths = PATH_ARGS.get(name, ())
    out = []
    for i, a in enumerate(call.args[:6]):
        if i in paths:
            try:
                out.append(repr(call.path(i).decode(errors="replace")))
            except Exception:
                out.append(f"{a:#x}")
        elif a & 0xFFFFFFFF == 0xFFFFFF9C and i in _DIRFD_ARGS.get(name, ()):
            out.append("AT_FDCWD")
        else:
            out.append(str(a) if a < 4096 else f"{a:#x}")
    return out


def _traced(name: str, handler: Handler, as_json: bool) -> Handler:
    def traced(call):  # type: ignore[no-untyped-def]
        args = _args(call, name)
        call.answer = None
        err = 0
        try:
            res = handler(call)
        except SysError as e:
            res, err = None, e.errno
            _emit(call.pid, name, args, -1, err, "", as_json)
            raise
        how = ""
        value = res
        if res is None:
            kind, n = call.answer or ("continue", 0)
            if kind == "fd":
                value, how = n, "fd injected"
            else:
                value, how = None, "run by the kernel"
        elif res < 0:
            value, err = -1, -res
        _emit(call.pid, name, args, value, err, how, as_json)
        return res

    traced.__name__ = f"strace_{name}"
    return traced


def _emit(pid: int, name: str, args: list[str], value: int | None, err: int, how: str,
          as_json: bool) -> None:
    if as_json:
        log.info("%s", jsonio.dumps({"pid": pid, "syscall": name, "args": args, "result": value,
                                   "errno": errno.errorcode.get(err, err) if err else None,
                                   "how": how or None}))
        return
    call_text = f"[{pid}] {name}({', '.join(args)})"
    if err:
        log.info("%s = -1 %s (%s)", call_text, errno.errorcode.get(err, err), os.strerror(err))
    elif value is None:
        log.info("%s = ? (%s)", call_text, how)
    elif how:
        log.info("%s = %d (%s)", call_text, value, how)
    else:
        log.info("%s = %d", call_text, value)


def json_lines() -> None:
    """--strace-format=json: the strace lines are written bare (one JSON
    object per line) into the log file, next to the log's own lines."""
    log.bare = True
