"""Act with the target's credentials while doing its file operations.

The supervisor runs as root with every capability; a handler that opened or
stat'ed files with those credentials would let any workload uid read
anything in the root.  So the thread doing the operation takes the calling
task's fs credentials first:

- fsuid, fsgid, supplementary groups: read from /proc/TID/status (ids as
  seen from the supervisor's user namespace, i.e. the host ids the kernel
  checks); set per thread with the raw syscalls setfsuid/setfsgid/setgroups
  (glibc's wrappers of setgroups broadcast to every thread: not wanted).
- effective capabilities: the target's CapEff, capset(2) on this thread only.
  If the container runs in its own user namespace (`userns=True`) the
  target's capabilities are relative to that namespace and are NOT carried
  over (the supervisor would otherwise hold them over every inode).
- umask: the kernel applies the caller's umask to O_CREAT/mkdir; the
  supervisor's umask is 0 and handlers apply the target's (`Creds.umask`).

Credentials are per thread in Linux, so each supervisor thread switches its
own.  A thread keeps whatever it switched to until the next call needs other
credentials (no switch back when the next call has the same ones: common).
"""

from __future__ import annotations

import errno
import os
import threading
from dataclasses import dataclass

from . import hostcalls
from .errors import SysError

_ESRCH = errno.ESRCH

_CAP_SETGID = 6
_CAP_SETUID = 7


@dataclass(frozen=True)
class Creds:
    ruid: int
    rgid: int
    fsuid: int
    fsgid: int
    groups: tuple[int, ...]
    cap_eff: int
    umask: int


def read_creds(tid: int) -> Creds:
    """The credentials of task tid (a TID in the supervisor's pid namespace)."""
    try:
        fd = os.open(f"/proc/{tid}/status", os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        raise SysError(_ESRCH, f"read creds of {tid}: {e.strerror}") from None
    try:
        data = os.read(fd, 8192)
    finally:
        os.close(fd)
    uid = gid = None
    groups: tuple[int, ...] = ()
    cap_eff = 0
    umask = 0o022
    for line in data.split(b"\n"):
        if line.startswith(b"Uid:"):
            uid = line.split()[1:]
        elif line.startswith(b"Gid:"):
            gid = line.split()[1:]
        elif line.startswith(b"Groups:"):
            groups = tuple(int(g) for g in line.split()[1:])
        elif line.startswith(b"CapEff:"):
            cap_eff = int(line.split()[1], 16)
        elif line.startswith(b"Umask:"):
            umask = int(line.split()[1], 8)
    if uid is None or gid is None:
        raise SysError(_ESRCH, f"read creds of {tid}: no Uid/Gid in status")
    return Creds(int(uid[0]), int(gid[0]), int(uid[3]), int(gid[3]), groups, cap_eff, umask)


class ThreadCreds:
    """One supervisor thread's current fs credentials and how to change them."""

    def __init__(self, userns: bool = False) -> None:
        self.userns = userns
        eff, perm, inh = hostcalls.capget_self()
        self.own_eff, self.own_perm, self.own_inh = eff, perm, inh
        self.own_groups = tuple(os.getgroups())
        self.current: tuple[int, int, tuple[int, ...], int] = (
            os.geteuid(), os.getegid(), self.own_groups, eff)
        self.thread = threading.get_ident()

    def become(self, c: Creds, real: bool = False) -> None:
        """Take c's fs credentials (or its real ids, for access(2))."""
        uid = c.ruid if real else c.fsuid
        gid = c.rgid if real else c.fsgid
        caps = 0 if self.userns else (c.cap_eff & self.own_perm)
        want = (uid, gid, c.groups, caps)
        if want == self.current:
            return
        # Full caps first (setgroups needs CAP_SETGID), then ids, then caps.
        if self.current[3] != self.own_eff:
            hostcalls.capset_self(self.own_eff, self.own_perm, self.own_inh)
        if self.current[2] != c.groups:
            r = hostcalls.setgroups(c.groups)
            if r < 0:
                raise SysError(-r, "switch creds: setgroups")
        hostcalls.setfsgid(gid)
        hostcalls.setfsuid(uid)
        # setfsuid from 0 to non-0 drops the fs capabilities from the
        # effective set; capset makes the set exactly the target's.
        r = hostcalls.capset_self(caps, self.own_perm, self.own_inh)
        if r < 0:
            raise SysError(-r, "switch creds: capset")
        self.current = want
