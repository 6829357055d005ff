"""`Call`: what a handler sees of one intercepted call, and `Sandbox`: what
it knows of the container.

Handler signature (all of them): `handler(call: Call) -> Result` where
Result is an int (>= 0: the syscall's return value, < 0: -errno) or None
when the handler already answered (ADDFD|SEND, CONTINUE).  Handlers may
also raise SysError(errno).

One Call object per supervisor thread is reused for every call (its fields
are overwritten), together with that thread's channel to the platform
(sentry/platform/base.py: seccomp user notification or ptrace), Memory,
Scratch buffers and credentials state: no per-call allocation of those.
"""

from __future__ import annotations

import errno
import os
import stat as _stat
TYPE_CHECKING = False  # typing's, without importing typing (docs/performance.md, Start-up)
if TYPE_CHECKING:
    from typing import Optional

from runsc_py.record import Record

from .cpu import Pins
from .creds import Creds, CredsCache, CredsEpoch, ThreadCreds, own_creds, read_umask
from .hostcalls import Scratch
from .memory import Memory
from .platform.base import CallChannel
from .policy import PolicyOptions
from . import kernobj
from .files import FileOps
from .lookups import LookupCache, TreeEpoch
from .unixnames import NameMirror

if TYPE_CHECKING:
    from gofer.client import GoferFS

    from .files import DirectFS
    from .synth import Limits
    from .netguard import NetGuard

if TYPE_CHECKING:  # annotations only
    Result = Optional[int]

# (Path resolution lives in sentry/paths.py, the one guarded entry point.)


class SentryOptions(Record):
    """What the supervisor needs besides the listener.

    release, version: what an emulated uname(2) reports (only when the
    operator set a release: policy.PolicyOptions.uname_release).
    userns: the container has its own user namespace (capabilities are
    then not carried over to host file operations).
    container_pidns: the container's pid namespace as its ns link reads
    ("pid:[N]"): a procfs of another one is refused (sentry/procfs.py);
    None: not checked (an in-process sentry, whose targets share the host's).
    private_ns: which of the container's namespaces (net, uts, ipc, user)
    are its own, not the host's: their sysctls are writable
    (sentry/kernobj.py).
    """

    release: str = ""
    version: str = ""
    userns: bool = False
    policy: PolicyOptions = PolicyOptions()  # (immutable: one default for all)
    container_pidns: str | None = None
    private_ns: frozenset[str] = frozenset()
    net: "NetGuard | None" = None  # the network policy (sentry/netguard.py); None: none


class Sandbox:
    """Container-wide state shared by the supervisor threads."""

    def __init__(self, files: "DirectFS | GoferFS", options: SentryOptions | None = None,
                 limits: "Limits | None" = None, names: NameMirror | None = None) -> None:
        """files: how container files are reached (sentry/files.py).
        limits: the container's cgroup limits (sentry/synth.py), None: the
        host's files are shown as they are (an in-process sentry)."""
        self.options = options or SentryOptions()
        self.files = files
        self.limits = limits
        # AF_UNIX names bound as the caller wrote them (sentry/unixnames.py).
        self.names = names or NameMirror(-1)
        # The container's mount ids (sentry/paths.py `contained`).
        self.mount_ids: frozenset[int] = frozenset()
        self.creds_epoch = CredsEpoch()
        # The sentry's own credentials, taken here before any thread
        # switches (ThreadCreds of every supervisor thread starts from them).
        self.own_creds = own_creds()
        self.fs_kinds = kernobj.FsKinds()
        # Bumped by every call that may change the file tree; None: no
        # lookup cache (sentry/lookups.py).
        self.tree: TreeEpoch | None = TreeEpoch() if files.lookup_cache else None
        # Our fd of the container's procfs root, -1: none of its own, None:
        # not looked for yet (sentry/procfs.py own_exe_text).
        self.proc_root: int | None = None
        # A program's "#!" interpreter by its identity (syscalls/proc_exec.py).
        self.interpreters: dict[tuple[int, ...], bytes] = {}
        # Tasks the platform pinned beside the thread that serves them, and
        # the CPU mask each has as far as it knows (sentry/cpu.py).
        self.pins = Pins()


def warm_thread_types() -> None:
    """Make, and drop, one of each of the per-thread buffers a Call and its
    channel hold: the ctypes types of their buffers are made at their
    first use (~60-80 us each on these VMs, several times that in a
    sandbox just forked), which this moves off the workload's way to its
    first call (the sandbox calls it while it waits for init's hand-over)."""
    Memory()
    Scratch()
    CredsCache(CredsEpoch())


class Gone(Exception):
    """The call is no longer valid (its caller is gone): nothing to answer."""


class Call:
    __slots__ = ("chan", "mem", "scratch", "sb", "creds_state", "fs", "lookups", "id", "pid", "nr",
                 "args", "_creds", "creds_hit", "creds_cache", "on_proc", "stat_of", "lent", "proc_rel",
                 "answer")

    def __init__(self, chan: CallChannel, sb: Sandbox) -> None:
        self.chan = chan
        self.mem = Memory()
        self.scratch = Scratch()
        self.sb = sb
        self.creds_state = ThreadCreds(sb.options.userns, sb.own_creds)
        self.fs: FileOps = sb.files.for_thread(self.scratch, self.creds_state)
        # This thread's own lookup cache (sentry/lookups.py), or None.
        self.lookups: LookupCache | None = (
            LookupCache(sb.tree, sb.files.root_id[0]) if sb.tree is not None else None)
        self.id = 0
        self.pid = 0
        self.nr = 0
        self.args = chan.args
        self._creds: Creds | None = None
        self.creds_hit = False  # the credentials came from this thread's cache
        self.creds_cache = CredsCache(sb.creds_epoch)  # this thread's own
        # Per resolution (sentry/paths.py): the result was walked on a procfs;
        # scratch.stat holds fstat(stat_of); the fd lent from the lookup
        # cache (paths.release keeps it); where the walk ended below its
        # procfs root.
        self.on_proc = False
        self.stat_of = -1
        self.lent = -1
        self.proc_rel: list[bytes] | None = None
        # How a handler that returned None answered (--strace reads it):
        # ("fd", number or None: not known yet) or ("continue", 0).
        self.answer: tuple[str, int | None] | None = None
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

    def load(self, nid: int, pid: int, nr: int) -> None:
        """Start a new call: its id on the channel, the caller's tid (as the
        sentry's pid namespace numbers it) and the syscall number; the
        channel's args hold its arguments."""
        self.id = nid
        self.pid = pid
        self.nr = nr
        self._creds = None
        self.mem.fd_pid = 0
        self.on_proc = False
        self.stat_of = -1
        self.lent = -1
        self.proc_rel = None
        if self.creds_state.unknown:
            self.creds_state.reset()  # a switch failed last time (creds.py)
        elif self.creds_state.ptrace_dropped:
            # The last call worked in procfs: the sentry's reach into target
            # memory and /proc/TID/* comes back before anything else.
            self.creds_state.restore_ptrace()

    # --- reading the target ------------------------------------------------
    def path(self, i: int) -> bytes:
        """The path string argument i (EFAULT / ENAMETOOLONG fail closed)."""
        if self._creds is None:
            self.creds()  # the caller's mem fd comes with its credentials (_mem_fd)
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
            self._creds, self.mem.fd, self.creds_hit = self.creds_cache.lookup(self.pid)
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

    # --- answering ---------------------------------------------------------
    def reply_fd(self, fd: int, cloexec: bool) -> None:
        """Give our fd to the target as the call's result (and close ours).

        answer: ("fd", number), or ("fd", None) when the platform installs
        it after the handler returns (ptrace, a call run off the tracer)."""
        try:
            r = self.chan.reply_fd(self.id, fd, cloexec)
        finally:
            os.close(fd)
        self.answer = ("fd", r)
        if r is not None and r < 0 and r != -errno.ENOENT:
            # Installing failed (EMFILE in the target...): answer the error.
            self.chan.reply(self.id, r)

    def reply_continue(self) -> None:
        self.answer = ("continue", 0)
        self.chan.reply_continue(self.id)

    def keep_beside(self) -> None:
        """The caller (one thread) is about to exec: keep it on the CPU that
        serves it (placement only: sentry/cpu.py)."""
        self.chan.keep_beside(self.pid)
