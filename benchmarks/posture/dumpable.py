"""Is a process dumpable?  Read from outside, without touching the process.

/proc/PID/status has no dumpable line and PR_GET_DUMPABLE answers only for
the caller, so two kernel behaviours are used:

1. owner: task_dump_owner() (fs/proc/base.c) makes the files under /proc/PID
   of a non-dumpable process owned by root of the process's user namespace
   (global root when unmapped), and otherwise by its euid/egid.  Decisive
   when euid/egid differ from that root (e.g. gVisor's sandbox runs as
   65534): owner == euid/egid -> dumpable, owner == root -> not.
2. access: __ptrace_may_access() (kernel/ptrace.c) refuses PTRACE_MODE_READ
   of a non-dumpable process to a caller without CAP_SYS_PTRACE even when
   uids match.  A forked child takes on the target's uids/gids and exactly
   the target's permitted capabilities (so commoncap's "caller's caps are a
   superset" check passes) and opens /proc/PID/environ: success -> dumpable,
   EACCES/EPERM -> not.  Valid only when the target lacks CAP_SYS_PTRACE (a
   reader holding it skips the dumpable check) and lives in this tool's user
   namespace.  The method is calibrated at start on two control processes.

Otherwise the answer is "unknown", with the reason: for a root process that
holds CAP_SYS_PTRACE (runsc-py's sandbox) neither behaviour can tell from
outside, since its /proc files are root's either way and every reader that
passes the ptrace check holds CAP_SYS_PTRACE.
"""

from __future__ import annotations

import errno
import os
import signal
import time
from dataclasses import dataclass

from benchmarks.posture import caps, procfs


@dataclass(frozen=True)
class Dumpable:
    value: str      # "yes", "no", "unknown"
    method: str     # how it was decided, or why it could not be

    def cell(self) -> str:
        return self.value


def _triple(status: dict[str, str], key: str) -> tuple[int, ...]:
    return tuple(int(x) for x in status[key].split()[:4])


def by_owner(pid: int, status: dict[str, str]) -> Dumpable | None:
    euid = _triple(status, "Uid")[1]
    egid = _triple(status, "Gid")[1]
    roots = {(0, 0), procfs.uid_map_root(pid)}
    if (euid, egid) in roots:
        return None
    st = os.stat(f"/proc/{pid}/environ")
    owner = (st.st_uid, st.st_gid)
    if owner == (euid, egid):
        return Dumpable("yes", f"owner: /proc/{pid}/environ is owned by its euid/egid {euid}:{egid}")
    if owner in roots:
        return Dumpable("no", f"owner: /proc/{pid}/environ is owned by root {owner[0]}:{owner[1]},"
                              f" not by its euid/egid {euid}:{egid}")
    return Dumpable("unknown", f"owner {owner} is neither its euid/egid nor root")


def _probe_child(target: int, uid: int, gid: int, capmask: int) -> None:
    """In a forked child: become a same-uid reader with the target's caps; exit code says."""
    try:
        os.setgroups([])
        os.setresgid(gid, gid, gid)
        caps.prctl(caps.PR_SET_KEEPCAPS, 1)
        os.setresuid(uid, uid, uid)
        caps.capset(capmask, capmask)
    except OSError:
        os._exit(3)
    try:
        fd = os.open(f"/proc/{target}/environ", os.O_RDONLY)
        os.close(fd)
        os._exit(0)
    except OSError as e:
        os._exit(1 if e.errno in (errno.EACCES, errno.EPERM) else 2)


def by_access(pid: int, status: dict[str, str], own_userns: int) -> Dumpable:
    uids, gids = _triple(status, "Uid"), _triple(status, "Gid")
    prm = int(status["CapPrm"], 16)
    if prm >> caps.CAP_SYS_PTRACE & 1:
        return Dumpable("unknown", "holds CAP_SYS_PTRACE: its /proc files are root's either way "
                                   "and any reader passing the ptrace check holds CAP_SYS_PTRACE, "
                                   "which skips the dumpable check")
    if procfs.namespaces(pid).get("user") != own_userns:
        return Dumpable("unknown", "in another user namespace: the ptrace check then needs "
                                   "CAP_SYS_PTRACE there, which skips the dumpable check")
    if len(set(uids)) != 1 or len(set(gids)) != 1:
        return Dumpable("unknown", f"mixed uids {uids} / gids {gids}: no single same-uid reader")
    child = os.fork()
    if child == 0:
        _probe_child(pid, uids[0], gids[0], prm)
        os._exit(4)
    _, wst = os.waitpid(child, 0)
    code = os.waitstatus_to_exitcode(wst)
    how = (f"access: a reader with uid {uids[0]}, gid {gids[0]} and its permitted caps, "
           f"without CAP_SYS_PTRACE, opening /proc/{pid}/environ")
    if code == 0:
        return Dumpable("yes", how + " succeeded")
    if code == 1:
        return Dumpable("no", how + " was refused (EACCES/EPERM)")
    if code == 3:
        return Dumpable("unknown", "cannot take on its uid/gid/capabilities (it holds "
                                   "capabilities this tool lacks?)")
    return Dumpable("unknown", f"probe exit {code}")


def check(pid: int, status: dict[str, str], own_userns: int) -> Dumpable:
    if status.get("State", "").startswith(("Z", "X")):
        return Dumpable("unknown", "zombie: no memory map")
    try:
        return by_owner(pid, status) or by_access(pid, status, own_userns)
    except (OSError, procfs.Gone) as e:
        return Dumpable("unknown", f"{e}")


# -- calibration -------------------------------------------------------------------

_CONTROL_CAPS = (1 << caps.NAMES.index("KILL")) | (1 << caps.NAMES.index("AUDIT_WRITE")) \
    | (1 << caps.NAMES.index("NET_BIND_SERVICE"))


def _control(dumpable: bool, uid: int) -> int:
    """Fork a sleeping control process with runc's default caps, UID and dumpability."""
    r, w = os.pipe()
    child = os.fork()
    if child == 0:
        try:
            os.close(r)
            os.setgroups([])
            os.setresgid(uid, uid, uid)
            caps.prctl(caps.PR_SET_KEEPCAPS, 1)
            os.setresuid(uid, uid, uid)
            caps.capset(_CONTROL_CAPS, _CONTROL_CAPS)
            caps.prctl(caps.PR_SET_DUMPABLE, 1 if dumpable else 0)
            os.write(w, b"k")
            os.close(w)
            while True:
                signal.pause()
        finally:
            os._exit(1)
    os.close(w)
    try:
        if os.read(r, 1) != b"k":
            raise RuntimeError("dumpable calibration: control process failed to set itself up")
    finally:
        os.close(r)
    return child


def calibrate() -> tuple[bool, str]:
    """Run both methods on known controls; (ok, one-line summary)."""
    own_userns = procfs.namespaces(os.getpid())["user"]
    results = []
    ok = True
    for dumpable, uid in ((True, 0), (False, 0), (True, 65534), (False, 65534)):
        pid = _control(dumpable, uid)
        try:
            time.sleep(0)
            got = check(pid, procfs.status(pid), own_userns)
        finally:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        want = "yes" if dumpable else "no"
        ok &= got.value == want
        results.append(f"uid {uid} {'dumpable' if dumpable else 'non-dumpable'}: "
                       f"{got.value} by {got.method.split(':')[0]}")
    return ok, "; ".join(results)
