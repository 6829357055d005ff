"""Process ids as the workload names them -> tids the sentry can act on.

The workload names processes in the container's pid namespace; the sentry
sees them in the sandbox's (its procfs, sentry/ownproc.py).  A container
task's NSpid line in /proc/<tid>/status lists its id in every namespace
from the sentry's down: the last field is the container's.  The sandbox
process and the gofer have one field only: the workload cannot name them.

Used by the handlers of calls that take a pid and are answered by the
sentry (sched_getparam, getpriority, capget...): pid 0 and the caller's own
ids need no scan; any other id is looked up by scanning the sandbox's
tasks (there are few; these calls are rare).
"""

from __future__ import annotations

import errno
import os

from . import ownproc
from .errors import SysError

TYPE_CHECKING = False  # typing's, without importing typing (docs/performance.md, Start-up)

if TYPE_CHECKING:
    from .call import Call


def tid_of(call: "Call", pid: int) -> int:
    """The sentry's tid of the container task the caller names pid (0: the
    caller itself); SysError(ESRCH) when there is none."""
    if pid == 0:
        return call.pid
    if pid < 0:
        raise SysError(errno.ESRCH, f"pid {pid}")
    c = call.creds()
    if pid == c.ns_tid:
        return call.pid
    for tid, ns_ids in _tasks():
        if ns_ids[-1] == pid and len(ns_ids) >= 2:
            return tid
    raise SysError(errno.ESRCH, f"pid {pid}")


def container_tasks() -> list[tuple[int, dict[bytes, list[bytes]]]]:
    """(sentry tid, status fields) of every container task (not the sandbox
    process or the gofer)."""
    out = []
    for tid, _ids in _tasks():
        st = status(tid)
        if st is not None and len(st.get(b"NSpid", [])) >= 2:
            out.append((tid, st))
    return out


def status(tid: int) -> dict[bytes, list[bytes]] | None:
    """The fields of /proc/<tid>/status (None: the task is gone)."""
    try:
        fd = ownproc.open_(f"{tid}/status", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        data = b""
        while chunk := os.read(fd, 8192):
            data += chunk
    except OSError:
        return None
    finally:
        os.close(fd)
    out = {}
    for line in data.splitlines():
        k, _, v = line.partition(b":")
        out[k] = v.split()
    return out


def stat_fields(tid: int) -> list[bytes] | None:
    """The fields of /proc/<tid>/stat after the command name (field 3 on;
    None: the task is gone)."""
    try:
        fd = ownproc.open_(f"{tid}/stat", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        data = os.read(fd, 4096)
    except OSError:
        return None
    finally:
        os.close(fd)
    return data[data.rfind(b")") + 2:].split()


def _tasks() -> list[tuple[int, list[int]]]:
    """(sentry tid, NSpid ids) of every task the sentry's procfs shows."""
    out = []
    root = ownproc.dirfd()  # an O_PATH fd: listed through a real one
    try:
        d = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=root)
    except OSError:
        return out
    try:
        tgids = [int(n) for n in os.listdir(d) if n.isdigit()]
    except OSError:
        return out
    finally:
        os.close(d)
    for tgid in tgids:
        try:
            d = os.open(f"{tgid}/task", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=root)
        except OSError:
            continue
        try:
            tids = [int(n) for n in os.listdir(d) if n.isdigit()]
        except OSError:
            continue
        finally:
            os.close(d)
        for tid in tids:
            st = status(tid)
            if st is not None and b"NSpid" in st:
                out.append((tid, [int(x) for x in st[b"NSpid"]]))
    return out
