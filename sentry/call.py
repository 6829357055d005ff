"""`Call`: what a handler sees of one notification, and `Sandbox`: what it
knows of the container.

Handler signature (all of them): `handler(call: Call) -> Result` where
Result is an int (>= 0: the syscall's return value, < 0: -errno) or None
when the handler already answered (ADDFD|SEND, CONTINUE).  Handlers may
also raise SysError(errno).

One Call object per supervisor thread is reused for every notification (its
fields are overwritten), together with that thread's Channel, Memory,
Scratch buffers and credentials state: no per-call allocation of those.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass, field
from typing import Optional

from .creds import Creds, CredsCache, ThreadCreds, read_creds
from .errors import SysError
from .hostcalls import Scratch
from .memory import Memory
from .notify import Channel
from .policy import PolicyOptions
from .resolve import Resolver, open_start_dir, signed_fd

Result = Optional[int]


@dataclass
class SentryOptions:
    """What the supervisor needs besides the listener.

    hostname: what uname(2) reports.  release: the kernel release reported
    (gVisor reports 4.4.0).  userns: the container has its own user namespace
    (capabilities are then not carried over to host file operations).
    """

    hostname: str = "sandbox"
    domainname: str = "(none)"
    release: str = "4.4.0"
    version: str = "#1 SMP Sun Jan 10 15:06:54 PST 2016"
    userns: bool = False
    policy: PolicyOptions = field(default_factory=PolicyOptions)


class Sandbox:
    """Container-wide state shared by the supervisor threads."""

    def __init__(self, root_fd: int, options: SentryOptions | None = None) -> None:
        self.options = options or SentryOptions()
        self.root_fd = root_fd
        self.resolver = Resolver(root_fd)
        self.creds_cache = CredsCache()


class Gone(Exception):
    """The notification is no longer valid: nothing to answer."""


class Call:
    __slots__ = ("chan", "mem", "scratch", "sb", "creds_state", "id", "pid", "nr", "args",
                 "_creds")

    def __init__(self, chan: Channel, sb: Sandbox) -> None:
        self.chan = chan
        self.mem = Memory()
        self.scratch = Scratch()
        self.sb = sb
        self.creds_state = ThreadCreds(sb.options.userns)
        self.id = 0
        self.pid = 0
        self.nr = 0
        self.args = chan.args
        self._creds: Creds | None = None

    def load(self) -> None:
        """Take the fields of the channel's current notification."""
        n = self.chan.notif
        self.id = n.id
        self.pid = n.pid
        self.nr = n.data.nr
        self._creds = None

    # --- reading the target ------------------------------------------------
    def path(self, i: int) -> bytes:
        """The path string argument i (EFAULT / ENAMETOOLONG fail closed)."""
        return self.mem.read_cstring(self.pid, self.args[i])

    def read(self, addr: int, size: int) -> bytes:
        return self.mem.read(self.pid, addr, size)

    def check_valid(self) -> None:
        """After reading target memory or /proc: is pid still our caller?"""
        if not self.chan.id_valid(self.id):
            raise Gone()

    def creds(self) -> Creds:
        """The caller's credentials (cached per task; umask may be stale)."""
        if self._creds is None:
            self._creds = self.sb.creds_cache.get(self.pid)
        return self._creds

    def umask(self) -> int:
        """The caller's current umask (not cached: threads share it)."""
        return read_creds(self.pid).umask

    def act_as_target(self, real: bool = False) -> None:
        """Switch this thread's fs credentials to the caller's."""
        self.creds_state.become(self.creds(), real)

    # --- paths -------------------------------------------------------------
    def open_path(self, dirfd_arg: int | None, path: bytes, flags: int, mode: int = 0,
                  real_ids: bool = False) -> int:
        """Resolve and open path for the target; returns our fd or raises.

        dirfd_arg None means AT_FDCWD.  Order: start dir from /proc (our
        creds), ID_VALID check, then switch creds and open.
        """
        if not path:
            raise SysError(errno.ENOENT, "empty path")
        start = -1
        if path[0] != 0x2F:
            dfd = -100 if dirfd_arg is None else signed_fd(dirfd_arg)
            start = open_start_dir(self.pid, dfd)
        try:
            creds = self.creds()
            self.check_valid()
            self.creds_state.become(creds, real_ids)
            fd = self.sb.resolver.open(self.scratch, start, path, flags | os.O_CLOEXEC, mode)
        finally:
            if start >= 0:
                os.close(start)
        if fd < 0:
            raise SysError(-fd)
        return fd

    # --- answering ---------------------------------------------------------
    def reply_fd(self, fd: int, cloexec: bool) -> None:
        """Give our fd to the target as the call's result (and close ours)."""
        try:
            r = self.chan.reply_fd(self.id, fd, cloexec)
        finally:
            os.close(fd)
        if r < 0 and r != -errno.ENOENT:
            # ADDFD failed (EMFILE in the target...): answer the error.
            self.chan.reply(self.id, r)

    def reply_continue(self) -> None:
        self.chan.reply_continue(self.id)
