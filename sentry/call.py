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
import stat as _stat
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Optional

from .creds import Creds, CredsCache, CredsEpoch, ThreadCreds, read_umask
from .errors import SysError
from .hostcalls import Scratch
from .memory import Memory
from .notify import Channel
from .policy import PolicyOptions
from . import procfs
from .files import ENOENT_VIA_LINK, FileOps
from .lookups import LookupCache, TreeEpoch
from .resolve import open_start_dir, signed_fd

if TYPE_CHECKING:
    from gofer.client import GoferFS

    from .files import DirectFS
    from .netguard import NetGuard

Result = Optional[int]

LAST_NORM, LAST_ROOT, LAST_DOT, LAST_DOTDOT = range(4)
_O_PATH_DIR = os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC


def split_last(path: bytes) -> tuple[bytes, bytes, int]:
    """(directory part, last component with its trailing slashes, kind).

    "a/b/c//" -> (b"a/b/", b"c//", LAST_NORM); "x" -> (b"", b"x", LAST_NORM);
    "/" -> (b"/", b"", LAST_ROOT); "a/.." -> (b"a/", b"..", LAST_DOTDOT).
    """
    stripped = path.rstrip(b"/")
    if not stripped:
        return b"/", b"", LAST_ROOT
    i = stripped.rfind(b"/")
    base = stripped[i + 1:]
    kind = LAST_DOT if base == b"." else LAST_DOTDOT if base == b".." else LAST_NORM
    return stripped[:i + 1], path[i + 1:], kind


@dataclass
class SentryOptions:
    """What the supervisor needs besides the listener.

    hostname: what uname(2) reports.  release: the kernel release reported
    (gVisor reports 4.4.0).  userns: the container has its own user namespace
    (capabilities are then not carried over to host file operations).
    host_mounts: the mount ids of the host's mount namespace, read before
    the sentry's /proc stopped showing the host (procfs._inside); None: read
    them from /proc/1/mountinfo at each check (an in-process sentry, whose
    /proc is the host's).
    """

    hostname: str = "sandbox"
    domainname: str = "(none)"
    release: str = "4.4.0"
    version: str = "#1 SMP Sun Jan 10 15:06:54 PST 2016"
    userns: bool = False
    policy: PolicyOptions = field(default_factory=PolicyOptions)
    host_mounts: frozenset[int] | None = None
    net: "NetGuard | None" = None  # the network policy (sentry/netguard.py); None: none


class Sandbox:
    """Container-wide state shared by the supervisor threads."""

    def __init__(self, files: "DirectFS | GoferFS", options: SentryOptions | None = None) -> None:
        """files: how container files are reached (sentry/files.py)."""
        self.options = options or SentryOptions()
        self.files = files
        self.creds_epoch = CredsEpoch()
        self.proc_devs = procfs.ProcDevs()
        # Bumped by every call that may change the file tree; None: no
        # lookup cache (sentry/lookups.py).
        self.tree: TreeEpoch | None = TreeEpoch() if files.lookup_cache else None


class Gone(Exception):
    """The notification is no longer valid: nothing to answer."""


class Call:
    __slots__ = ("chan", "mem", "scratch", "sb", "creds_state", "fs", "lookups", "id", "pid", "nr",
                 "args", "_creds", "_hit", "creds_cache", "on_proc", "stat_of", "_lent")

    def __init__(self, chan: Channel, sb: Sandbox) -> None:
        self.chan = chan
        self.mem = Memory()
        self.scratch = Scratch()
        self.sb = sb
        self.creds_state = ThreadCreds(sb.options.userns)
        self.fs: FileOps = sb.files.for_thread(self.scratch, self.creds_state)
        # This thread's own lookup cache (sentry/lookups.py), or None.
        self.lookups: LookupCache | None = (
            LookupCache(sb.tree, sb.files.root_id[0]) if sb.tree is not None else None)
        self.id = 0
        self.pid = 0
        self.nr = 0
        self.args = chan.args
        self._creds: Creds | None = None
        self._hit = False
        self.creds_cache = CredsCache(sb.creds_epoch)  # this thread's own
        self.on_proc = False  # the last open_path result is on a procfs
        # scratch.stat holds fstat(stat_of): open_path's procfs check made it.
        self.stat_of = -1
        # The fd open_path(lend=True) lent from the lookup cache (release() keeps it).
        self._lent = -1
        self.mem.before_write = self._before_write
        self.mem.mem_fd = self._mem_fd

    def close(self) -> None:
        """Close this thread's cached pidfds, mem fds and lookups."""
        self.creds_cache.clear()
        if self.lookups is not None:
            self.lookups.close()

    def _before_write(self) -> None:
        if self.creds_state.ptrace_dropped:
            self.creds_state.restore_ptrace()

    def load(self) -> None:
        """Take the fields of the channel's current notification."""
        n = self.chan.notif
        self.id = n.id
        self.pid = n.pid
        self.nr = n.data.nr
        self._creds = None
        self.mem.fd_pid = 0
        self.on_proc = False
        self.stat_of = -1
        self._lent = -1
        if self.creds_state.ptrace_dropped:
            # The last call worked in procfs: the sentry's reach into target
            # memory and /proc/TID/* comes back before anything else.
            self.creds_state.restore_ptrace()

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
            self._creds, self.mem.fd, self._hit = self.creds_cache.lookup(self.pid)
            self.mem.fd_pid = self.pid
        return self._creds

    def _mem_fd(self, pid: int) -> int:
        """Memory's way to the caller's address space: its /proc/TID/mem fd
        (cached with its credentials), or -1 (process_vm_readv/writev)."""
        if pid != self.pid:
            return -1
        if self._creds is None:
            self.creds()
        return self.mem.fd

    def names_added(self) -> None:
        """This call only added a name (O_CREAT): the lookup caches' kept
        ENOENTs are stale, nothing else (sentry/lookups.py)."""
        if self.sb.tree is not None:
            self.sb.tree.names_added()

    def tree_mark(self) -> tuple[int, int] | None:
        """Before a change this (REPORTS_ITSELF) call will report: a mark
        if no other tree-changing call is in progress (sentry/lookups.py)."""
        return self.sb.tree.alone() if self.sb.tree is not None else None

    def name_removed(self, mode: int, mark: tuple[int, int] | None) -> None:
        """This call removed one name, which had st_mode mode (0: not known)
        when it was looked at after tree_mark(): a file that is neither a
        directory nor a symlink, with no other tree-changing call since,
        makes only lookups of non-directories stale; anything else, all."""
        tree = self.sb.tree
        if tree is None:
            return
        if mode and not _stat.S_ISDIR(mode) and not _stat.S_ISLNK(mode):
            tree.file_removed(mark)
        else:
            tree.bump()

    def umask(self) -> int:
        """The caller's current umask (not cached: threads share it)."""
        return read_umask(self.pid)

    def act_as_target(self, real: bool = False) -> None:
        """Switch this thread's fs credentials to the caller's."""
        self.creds_state.become(self.creds(), real)

    # --- paths -------------------------------------------------------------
    def open_path(self, dirfd_arg: int | None, path: bytes, flags: int, mode: int = 0,
                  real_ids: bool = False, lend: bool = False) -> int:
        """Resolve and open path for the target; returns our fd or raises.

        An absolute O_PATH lookup goes through this thread's lookup cache
        (sentry/lookups.py).  lend: the caller only reads the fd and gives
        it back with release(), so a cached fd is lent, not duplicated, and
        a kept ENOENT comes back as -ENOENT, not raised (stat's hot path:
        the exception cost more than the rest of the answer).

        dirfd_arg None means AT_FDCWD.  Order: start dir from /proc (our
        creds), ID_VALID check, then switch creds and open.  A leading
        /proc/self is the target's, not ours (sentry/procfs.py); the fast
        openat2 failing on a magic link (ELOOP) or a dangling procfs self
        link (ENOENT behind a symlink) takes the slow, component-wise walk.
        A result on procfs leaves this thread with exactly the target's
        capabilities (no CAP_SYS_PTRACE) for the operation that follows.
        """
        if not path:
            raise SysError(errno.ENOENT, "empty path")
        creds = self.creds()
        start = -1
        if path[0] != 0x2F:
            dfd = -100 if dirfd_arg is None else signed_fd(dirfd_arg)
            start = open_start_dir(self.pid, dfd)
        elif path.startswith(b"/proc/"):
            path = procfs.translate_abs(path, creds.ns_tgid, creds.ns_tid)
        try:
            if start >= 0 or not self._hit or self.mem.fd < 0:
                self.check_valid()
            # else: nothing here was read by pid.  The creds and the mem fd
            # come from this thread's cache, filled before the notification
            # was received and checked alive (pidfd) after it: a task that
            # held the tid before the caller would be dead, so they are the
            # caller's, and the path was read from its address space.
            self.creds_state.become(creds, real_ids)
            lookups = self.lookups
            if lookups is not None and start < 0 and flags & os.O_PATH \
                    and not path.startswith(b"/proc/"):
                fd = self._cached_lookup(lookups, path, flags, creds, real_ids)
                if fd < 0:
                    if lend:
                        return fd
                    raise SysError(-fd)
                if fd == self._lent and not lend:
                    self._lent = -1
                    fd = os.dup(fd)  # close-on-exec: os.dup makes it non-inheritable
                return fd
            fd = self._walk_if_needed(self.fs.resolve_probed(start, path, flags, mode),
                                      start, path, flags, mode)
        finally:
            if start >= 0:
                os.close(start)
        if fd < 0:
            raise SysError(-fd)
        return self._proc_guard(fd, creds, real_ids, dirfd_arg, path, flags, mode)

    def _walk_if_needed(self, fd: int, start: int, path: bytes, flags: int, mode: int) -> int:
        """The fast resolution's result, or the procfs walk's where the fast
        one stopped at a procfs link (sentry/procfs.py)."""
        if fd == ENOENT_VIA_LINK or fd == -errno.ELOOP or (
                fd == -errno.EACCES and self.sb.files.mode == "gofer"):
            # (The gofer holds no CAP_SYS_PTRACE: the kernel's access
            # check on a procfs magic link comes before the ELOOP of
            # RESOLVE_NO_MAGICLINKS, so there it reads EACCES.)
            return procfs.walk(self, start, path, flags | os.O_CLOEXEC, mode)
        return fd

    def _cached_lookup(self, lookups: LookupCache, path: bytes, flags: int, creds: Creds,
                       real_ids: bool) -> int:
        """open_path of an absolute O_PATH lookup through the lookup cache
        (sentry/lookups.py); creds are in force.  A hit is lent (_lent); a
        kept ENOENT is returned as -ENOENT."""
        key = (path, flags, self.creds_state.current)
        hit = lookups.get(key)
        if hit is not None:
            if hit < 0:
                return hit
            self.stat_of = -1
            self._lent = hit
            return hit
        since = lookups.since()
        fs = self.fs
        fd = fs.resolve_probed(-1, path, flags, 0)
        if fd == -errno.ENOENT and fs.missing_dev(path) == lookups.root_dev:
            lookups.put(key, fd, since)  # missing in a directory of the root's filesystem
        if fd < 0:
            # The procfs walk's answers are never kept: they depend on the
            # calling process (its pid, cwd, fds, exe), which the key is not.
            fd = self._walk_if_needed(fd, -1, path, flags, 0)
            if fd < 0:
                raise SysError(-fd)
            return self._proc_guard(fd, creds, real_ids, None, path, flags, 0)
        fd = self._proc_guard(fd, creds, real_ids, None, path, flags, 0)
        s = self.scratch
        if self.stat_of == fd and s.stat_dev.value == lookups.root_dev:
            # the kernel's own resolution, not on procfs, on the root's filesystem
            lookups.put(key, fd, since, _stat.S_ISDIR(s.stat_mode.value))
        return fd

    def release(self, fd: int) -> None:
        """Give back an fd of open_path(..., lend=True): closed unless lent
        (a lent fd stays the lookup cache's)."""
        if fd == self._lent:
            self._lent = -1
        else:
            os.close(fd)

    def _proc_guard(self, fd: int, creds: Creds, real_ids: bool, dirfd_arg: int | None,
                    path: bytes, flags: int, mode: int) -> int:
        """A result on a procfs is never the fast path's: the kernel may have
        followed a procfs "self" link for the SENTRY (a procfs that can see
        it), so the object could be the sentry's own /proc/<pid>/mem.  Redo
        it with the walk (sentry/procfs.py), with exactly the target's
        capabilities, which stay in force for the operation that follows."""
        self.stat_of = -1
        s = self.scratch
        r = s.fstat_into(fd)
        if r < 0:
            os.close(fd)
            raise SysError(-r, "fstat")
        if not self.sb.proc_devs.is_proc(s, fd, s.stat_dev.value):
            self.stat_of = fd  # stat(2) and friends reuse it
            return fd
        os.close(fd)
        self.on_proc = True
        cs = self.creds_state
        if cs.ptrace_dropped:
            cs.restore_ptrace()
        start = -1
        if path[0] != 0x2F:
            dfd = -100 if dirfd_arg is None else signed_fd(dirfd_arg)
            start = open_start_dir(self.pid, dfd)
        try:
            self.check_valid()
            cs.become(creds, real_ids, keep_ptrace=False)
            fd = procfs.walk(self, start, path, flags | os.O_CLOEXEC, mode)
        finally:
            if start >= 0:
                os.close(start)
        if fd < 0:
            raise SysError(-fd)
        return fd

    def open_parent(self, dirfd_arg: int | None, path: bytes) -> tuple[int, bytes, int]:
        """(our O_PATH fd of the parent directory, last component, its kind).

        The last component keeps its trailing slashes (the host kernel then
        applies the same trailing-slash rules as for the target) and is
        never followed; "." and ".." are never handed to the host (the
        handler answers from the kind: LAST_DOT, LAST_DOTDOT, LAST_ROOT).
        """
        if not path:
            raise SysError(errno.ENOENT, "empty path")
        head, name, kind = split_last(path)
        if head:
            return self.open_path(dirfd_arg, head, _O_PATH_DIR), name, kind
        dfd = -100 if dirfd_arg is None else signed_fd(dirfd_arg)
        start = open_start_dir(self.pid, dfd)
        try:
            creds = self.creds()
            self.check_valid()
            self.creds_state.become(creds)
        except BaseException:
            os.close(start)
            raise
        if kind == LAST_NORM and name[:4] in (b"self", b"thre"):
            return self._proc_parent(start, name, kind)
        return start, name, kind

    def _proc_parent(self, start: int, name: bytes, kind: int) -> tuple[int, bytes, int]:
        """Relative "self"/"thread-self" from the procfs root: name the target's."""
        st = os.fstat(start)
        if st.st_ino != procfs.PROC_ROOT_INO or not self.sb.proc_devs.is_proc(self.scratch, start, st.st_dev):
            return start, name, kind
        c = self.creds()
        base = name.rstrip(b"/")
        if base == b"self":
            return start, b"%d" % c.ns_tgid + name[4:], kind
        if base == b"thread-self":
            os.close(start)
            return self.open_path(None, b"/proc/%d/task" % c.ns_tgid, _O_PATH_DIR), \
                b"%d" % c.ns_tid + name[11:], kind
        return start, name, kind

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
