"""Act with the target's credentials while doing its file operations.

The supervisor runs as root with every capability; a handler that opened or
stat'ed files with those credentials would let any workload uid read
anything in the root.  So the thread doing the operation takes the calling
task's fs credentials first:

- fsuid, fsgid, supplementary groups: read from /proc/TID/status (ids as
  seen from the supervisor's user namespace, i.e. the host ids the kernel
  checks); set per thread with the raw syscalls setfsuid/setfsgid/setgroups
  (glibc's wrappers of setgroups broadcast to every thread: not wanted).
- effective capabilities: the target's CapEff (plus CAP_SYS_PTRACE, needed
  to keep reading the target's memory), capset(2) on this thread only.
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
TYPE_CHECKING = False  # typing's, without importing typing (docs/performance.md, Start-up)
if TYPE_CHECKING:
    from typing import Any, Callable, Iterator

from runsc_py.record import Record

from . import hostcalls, ownproc
from .errors import SysError

_ESRCH = errno.ESRCH

_CAP_SYS_PTRACE = 19
# Kept while acting as the target: process_vm_readv/writev and /proc/TID/*
# need PTRACE_MODE_ATTACH over the target.  It grants no file permission,
# but it would let an emulated open of the container's /proc/PID/environ
# pass the ptrace check for another uid's process: /proc paths must get
# their own emulation before they reach openat2 (not done yet).
_KEEP = 1 << _CAP_SYS_PTRACE
# What Linux lets a task do to its OWN /proc/<pid> entries whatever its
# credentials (same thread group: proc_fd_permission, ptrace_may_access):
# search and list fd/ and fdinfo/, follow exe, cwd, root and fd/N.  A
# non-dumpable task's entries belong to root, so the sentry, acting with
# the task's fsuid, needs these two of its own for them (`lifted`).
SELF_PROC_CAPS = (1 << 2) | _KEEP  # CAP_DAC_READ_SEARCH, CAP_SYS_PTRACE
# Never carried into host file operations, whatever the spec grants: the
# sandbox, not the capability set, is the boundary.  CAP_SYSLOG makes the
# kernel print real addresses in files opened with it (/proc/kallsyms,
# /proc/modules, %pK in /proc and /sys: a KASLR leak); CAP_SYS_RAWIO opens
# /proc/kcore and /dev/mem; CAP_SYS_ADMIN and CAP_SYS_MODULE widen what
# /proc and /sys files allow.
_CAP_SYS_MODULE, _CAP_SYS_RAWIO, _CAP_SYS_ADMIN, _CAP_SYSLOG = 16, 17, 21, 34
_NEVER = (1 << _CAP_SYS_MODULE) | (1 << _CAP_SYS_RAWIO) | (1 << _CAP_SYS_ADMIN) | (1 << _CAP_SYSLOG)


class Creds(Record, frozen=True):
    ruid: int
    rgid: int
    fsuid: int
    fsgid: int
    groups: tuple[int, ...]
    cap_eff: int
    umask: int
    ns_tgid: int = 0  # the task's tgid/tid in its own (innermost) pid namespace
    ns_tid: int = 0
    euid: int = 0
    suid: int = 0
    egid: int = 0
    sgid: int = 0
    tgid: int = 0     # its tgid as the sentry sees it (its procfs's pid namespace)


def _status(tid: int) -> bytes:
    """/proc/TID/status, with a newline in front (every field is b"\\nName:")."""
    try:
        fd = ownproc.open_(f"{tid}/status", os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        raise SysError(_ESRCH, f"read creds of {tid}: {e.strerror}") from None
    try:
        # All of it: a long Groups line runs past 8 KiB.  The file is made
        # whole at the first read (seq_file, single_open) and handed out in
        # full up to the size asked: a shorter read is the end.
        first = os.read(fd, 16384)
        if len(first) < 16384:
            return b"\n" + first
        parts = [b"\n", first]
        while chunk := os.read(fd, 16384):
            parts.append(chunk)
        return b"".join(parts)
    finally:
        os.close(fd)


def _field(data: bytes, name: bytes, tid: int, default: list[bytes] | None = None) -> list[bytes]:
    """The values of field name (b"\\nUid:") of a status text; default (if
    given) when the kernel has no such field.  A field must end its line."""
    i = data.find(name)
    if i < 0:
        if default is not None:
            return default
        raise SysError(_ESRCH, f"read creds of {tid}: no {name[1:-1].decode()} in status")
    i += len(name)
    end = data.find(b"\n", i)
    if end < 0:
        raise SysError(_ESRCH, f"read creds of {tid}: {name[1:-1].decode()} cut short")
    return data[i:end].split()


# Fields older kernels (and other procfs implementations) do not have:
# Umask before 4.7, NStgid/NSpid before 4.1.
_UMASK_DEFAULT = [b"0022"]
_NS_DEFAULT = [b"0"]


def read_creds(tid: int) -> Creds:
    """The credentials of task tid (a TID in the supervisor's pid namespace)."""
    data = _status(tid)
    uid = _field(data, b"\nUid:", tid)
    gid = _field(data, b"\nGid:", tid)
    return Creds(int(uid[0]), int(gid[0]), int(uid[3]), int(gid[3]),
                 tuple(int(g) for g in _field(data, b"\nGroups:", tid)),
                 int(_field(data, b"\nCapEff:", tid)[0], 16),
                 int(_field(data, b"\nUmask:", tid, _UMASK_DEFAULT)[0], 8),
                 int(_field(data, b"\nNStgid:", tid, _NS_DEFAULT)[-1]),
                 int(_field(data, b"\nNSpid:", tid, _NS_DEFAULT)[-1]),
                 int(uid[1]), int(uid[2]), int(gid[1]), int(gid[2]),
                 int(_field(data, b"\nTgid:", tid)[0]))


def read_umask(tid: int) -> int:
    """The umask of task tid now (threads share it: never cached)."""
    return int(_field(_status(tid), b"\nUmask:", tid, _UMASK_DEFAULT)[0], 8)


# Nothing known to be in force (never equal to a real state).
_UNKNOWN: tuple[int, int, tuple[int, ...], int] = (-1, -1, (-1,), -1)
_NO_ID = 0xFFFFFFFF


def _check(r: int, what: str) -> None:
    if r < 0:
        raise SysError(-r, f"switch creds: {what}")


# The sentry's own credentials: (effective, permitted, inheritable caps,
# groups, euid, egid), as its first thread has them before any switch.
OwnCreds = tuple[int, int, int, tuple[int, ...], int, int]


def own_creds() -> OwnCreds:
    """This thread's credentials now: call it once, before any thread
    switches (sentry.call.Sandbox), and give the result to every ThreadCreds."""
    eff, perm, inh = hostcalls.capget_self()
    return (eff, perm, inh, tuple(os.getgroups()), os.geteuid(), os.getegid())


class _Scope:
    """`with` over a generator that yields once: its code up to the yield
    on entry, the rest on exit; an exception of the body is raised in it at
    the yield, so its finally blocks run either way.  contextlib's
    contextmanager for the three uses below, without contextlib (~0.8 ms
    of the sandbox's imports on its way to init, docs/performance.md)."""

    __slots__ = ("_gen",)

    def __init__(self, gen: Iterator[None]) -> None:
        self._gen = gen

    def __enter__(self) -> None:
        next(self._gen)

    def __exit__(self, typ: Any, val: BaseException | None, tb: Any) -> bool:
        if val is None:
            for _ in self._gen:
                raise RuntimeError("a credentials scope yielded twice")
            return False
        try:
            self._gen.throw(val)  # type: ignore[attr-defined]
        except StopIteration:
            return True  # the generator took the exception
        except BaseException as exc:
            if exc is val:
                return False
            raise
        raise RuntimeError("a credentials scope yielded after an exception")


def _scoped(fn: Callable[..., Iterator[None]]) -> Callable[..., _Scope]:
    def scope(*args: Any) -> _Scope:
        return _Scope(fn(*args))
    scope.__name__, scope.__qualname__, scope.__doc__ = fn.__name__, fn.__qualname__, fn.__doc__
    return scope


class ThreadCreds:
    """One supervisor thread's current fs credentials and how to change them."""

    def __init__(self, userns: bool = False, own: OwnCreds | None = None) -> None:
        """own: the sentry's own credentials (own_creds() of its first
        thread).  A thread inherits the credentials its creator had at that
        moment: a worker or tracer thread started by a thread acting as a
        caller would otherwise take that caller's for its own (no CAP_KILL:
        its wake-up signals EPERM).  So the thread's actual state is read
        and, where it differs, set to own."""
        self.userns = userns
        if own is None:
            own = own_creds()
        eff, perm, inh, groups, euid, egid = own
        self.own_eff, self.own_perm, self.own_inh = eff, perm, inh
        self.own_groups = groups
        self.own_euid, self.own_egid = euid, egid
        self.own: tuple[int, int, tuple[int, ...], int] = (euid, egid, groups, eff)
        self.thread = threading.get_ident()
        # The arguments of the last become() while still in force.
        self._last: tuple[Creds, bool, bool] | None = None
        now_eff = hostcalls.capget_self()[0]
        self.current = (hostcalls.setfsuid(_NO_ID), hostcalls.setfsgid(_NO_ID),
                        tuple(os.getgroups()), now_eff)
        if self.current != self.own:
            self.apply(self.own)

    def become(self, c: Creds, real: bool = False, keep_ptrace: bool = True) -> None:
        """Take c's fs credentials (or its real ids, for access(2)).

        keep_ptrace=False: exactly the target's capabilities, for operations
        on the container's procfs, whose ptrace checks (environ, fd links...)
        must see the target's privileges, not the sentry's CAP_SYS_PTRACE.
        Target memory can then not be written until `restore_ptrace()`.
        """
        last = (c, real, keep_ptrace)
        if last == self._last:
            return
        uid = c.ruid if real else c.fsuid
        gid = c.rgid if real else c.fsgid
        caps = 0 if self.userns else (c.cap_eff & self.own_perm & ~_NEVER)
        if keep_ptrace:
            caps |= _KEEP

        self.apply((uid, gid, c.groups, caps))
        self._last = last

    def apply(self, want: tuple[int, int, tuple[int, ...], int]) -> None:
        """Switch to (fsuid, fsgid, groups, effective caps); caps beyond our
        own permitted set are dropped (the gofer holds only file caps).

        Fail closed: what is in force is forgotten before anything changes,
        and a step that fails leaves the thread with NO effective
        capability (`_fail_closed`), so neither this call nor the next one
        for the same target acts with the sentry's own privileges."""
        uid, gid, groups, caps = want
        caps &= self.own_perm
        want = (uid, gid, groups, caps)
        if want == self.current:
            return
        prev = self.current
        self.current = _UNKNOWN
        self._last = None
        try:
            # Full caps first (setgroups needs CAP_SETGID), then ids, then caps.
            if prev[3] != self.own_eff:
                _check(hostcalls.capset_self(self.own_eff, self.own_perm, self.own_inh), "capset")
            if prev[2] != groups:
                _check(hostcalls.setgroups(groups), "setgroups")
            hostcalls.setfsgid(gid)
            hostcalls.setfsuid(uid)
            # setfsuid/setfsgid report no error: ask them back (an invalid
            # id changes nothing and returns the one in force).
            if hostcalls.setfsgid(_NO_ID) != gid or hostcalls.setfsuid(_NO_ID) != uid:
                raise SysError(errno.EPERM, "switch creds: setfsuid/setfsgid did not take")
            # setfsuid from 0 to non-0 drops the fs capabilities from the
            # effective set; capset makes the set exactly the target's.
            _check(hostcalls.capset_self(caps, self.own_perm, self.own_inh), "capset")
        except BaseException:
            self._fail_closed()
            raise
        self.current = want

    def use_caps(self, caps: int) -> None:
        """Make this thread's effective capabilities exactly caps (within
        our permitted set), keeping its ids; recorded, so a later become()
        or apply() starts from it (network calls: sentry/syscalls/net_socket.py)."""
        caps &= self.own_perm
        if caps == self.current[3]:
            return
        r = hostcalls.capset_self(caps, self.own_perm, self.own_inh)
        if r < 0:
            raise SysError(-r, "switch creds: capset")
        self._last = None
        uid, gid, groups, _ = self.current
        self.current = (uid, gid, groups, caps)

    @property
    def unknown(self) -> bool:
        """A switch failed: nothing is in force but no capability."""
        return self.current is _UNKNOWN

    def reset(self) -> None:
        """Back to the sentry's own credentials (after a failed switch)."""
        self.apply(self.own)

    def _fail_closed(self) -> None:
        """After a failed switch: no effective capability (dropping is
        always allowed), and nothing believed to be in force."""
        hostcalls.capset_self(0, self.own_perm, self.own_inh)
        self.current = _UNKNOWN
        self._last = None

    @property
    def ptrace_dropped(self) -> bool:
        return not self.current[3] & _KEEP

    def drop_ptrace(self) -> None:
        """Exactly the target's capabilities again (before a procfs
        operation), keeping the ids in force."""
        uid, gid, groups, caps = self.current
        if not caps & _KEEP:
            return
        self._last = None
        r = hostcalls.capset_self(caps & ~_KEEP, self.own_perm, self.own_inh)
        if r < 0:
            self._fail_closed()
            raise SysError(-r, "switch creds: capset")
        self.current = (uid, gid, groups, caps & ~_KEEP)

    @_scoped
    def as_peer(self, c: Creds) -> Iterator[None]:
        """`with as_peer(c):` this thread's effective uid and gid are also
        c's, for the one call after which the kernel records them as an
        AF_UNIX socket's peer credentials (connect, listen: SO_PEERCRED,
        SO_PEERGROUPS, what postgres' peer authentication and D-Bus read);
        fs ids, groups and capabilities are c's as with `become`.  Then our
        own again; a step that fails leaves no effective capability."""
        self.reset()
        self.current = _UNKNOWN
        self._last = None
        caps = 0 if self.userns else (c.cap_eff & self.own_perm & ~_NEVER)
        try:
            _check(hostcalls.setgroups(c.groups), "setgroups")
            # Leaving euid 0 clears the effective set, not the permitted one
            # (our real and saved uid stay 0): restored from it below.
            _check(hostcalls.set_effective_ids(c.euid, c.egid), "setresuid")
            if (c.fsuid, c.fsgid) != (c.euid, c.egid):
                _check(hostcalls.capset_self(self.own_eff, self.own_perm, self.own_inh), "capset")
                hostcalls.setfsgid(c.fsgid)
                hostcalls.setfsuid(c.fsuid)
            _check(hostcalls.capset_self(caps, self.own_perm, self.own_inh), "capset")
        except BaseException:
            self._fail_closed()
            self._own_ids()
            raise
        try:
            yield
        finally:
            self._own_ids()

    def _own_ids(self) -> None:
        """After `as_peer`: our effective ids and capabilities again."""
        r = hostcalls.capset_self(self.own_eff, self.own_perm, self.own_inh)
        if r == 0:
            r = hostcalls.set_effective_ids(self.own_euid, self.own_egid)
        if r < 0:
            self._fail_closed()
            raise SysError(-r, "switch creds: back to our own ids")
        self.current = _UNKNOWN
        self.reset()

    @_scoped
    def lifted(self, extra: int) -> Iterator[None]:
        """`with lifted(SELF_PROC_CAPS):` these capabilities of our own in
        force too (ids unchanged), then exactly the previous set again;
        only for an operation on the caller's own procfs entries, which the
        kernel grants any task on itself."""
        uid, gid, groups, caps = self.current
        want = (caps | extra) & self.own_perm
        if self.current is _UNKNOWN or want == caps:
            yield
            return
        self._last = None
        r = hostcalls.capset_self(want, self.own_perm, self.own_inh)
        if r < 0:
            self._fail_closed()
            raise SysError(-r, "switch creds: capset")
        self.current = (uid, gid, groups, want)
        try:
            yield
        finally:
            r = hostcalls.capset_self(caps, self.own_perm, self.own_inh)
            if r < 0:
                self._fail_closed()
            else:
                self.current = (uid, gid, groups, caps)

    @_scoped
    def own_for_now(self) -> Iterator[None]:
        """`with own_for_now():` the sentry's own credentials for the
        platform's own work inside a handler (the ptrace platform's fd
        injection writes the caller's /proc/TID/mem, root's 0600 inode once
        the caller is non-dumpable), then exactly what was in force again;
        no capability if that was unknown or cannot be restored."""
        prev, last = self.current, self._last
        if prev == self.own:
            yield
            return
        self.reset()
        try:
            yield
        finally:
            if prev is _UNKNOWN:
                self._fail_closed()
            else:
                self.apply(prev)
                self._last = last

    def restore_ptrace(self) -> None:
        """Add CAP_SYS_PTRACE back (after a procfs operation)."""
        uid, gid, groups, caps = self.current
        if caps & _KEEP:
            return
        caps |= _KEEP
        self._last = None
        r = hostcalls.capset_self(caps, self.own_perm, self.own_inh)
        if r < 0:
            self._fail_closed()
            raise SysError(-r, "switch creds: capset")
        self.current = (uid, gid, groups, caps)


_PIDFD_THREAD = os.O_EXCL  # 6.9+: a pidfd for one thread (not only leaders)
_O_MEM = os.O_RDWR | os.O_CLOEXEC


class CredsEpoch:
    """Bumped whenever some task may have changed its credentials (setuid
    family, capset): every worker's cache is then dropped before its next
    lookup.  forget() names the only tasks that may have changed (execve):
    only their entries are dropped.  Shared by the supervisor threads."""

    MAX_STALE = 4096

    def __init__(self) -> None:
        self.value = 0
        self.gen = 0
        # tid -> gen when it was last forgotten: an entry filled before
        # that is stale.  Read without the lock (one dict lookup, atomic).
        self.stale: dict[int, int] = {}
        # tid -> gen of its last forget when that was its own execve as its
        # thread group's leader (exec_of_leader): what is stale then is only
        # what an exec changes.  Read without the lock too.
        self.execs: dict[int, int] = {}
        self._lock = threading.Lock()

    def bump(self) -> None:
        with self._lock:
            self.value += 1

    def forget(self, *tids: int) -> None:
        """Entries of these tasks, in every worker's cache, are dropped
        before their next lookup (filled before now)."""
        with self._lock:
            self._next()
            for t in tids:
                self.stale[t] = self.gen

    def exec_of_leader(self, tid: int) -> None:
        """tid, the leader of its thread group, is making an execve: its
        entries are stale from now on, but only in its ids and capabilities
        (CredsCache._after_exec).  A later forget() of tid overrides this."""
        with self._lock:
            self._next()
            self.stale[tid] = self.gen
            self.execs[tid] = self.gen

    def _next(self) -> None:
        self.gen += 1
        if len(self.stale) >= self.MAX_STALE:  # all of them, rather than grow
            self.stale = {}
            self.execs = {}
            self.value += 1


class CredsCache:
    """tid -> (Creds, /proc/TID/mem fd), each entry pinned by a pidfd of
    that exact task.  One per supervisor thread: only its owner uses or
    closes the fds, so an fd number is never closed under another thread's
    read or write.

    Reading /proc/TID/status costs ~45 us from Python, more than the rest of
    a stat.  An entry is valid while its pidfd's task lives (pidfd_send_signal
    with signal 0: one syscall), so a reused tid is never served another
    task's credentials.  The pidfd is opened first, then the mem fd and the
    status; the pidfd is checked again after them, so all three named the
    same task.  A task changes its own credentials only through calls the
    sentry sees (setuid family, capset, execve: notified, see proc_creds.py);
    the setuid family and capset bump the shared epoch, which drops every
    entry; an execve forgets the caller's entry and its thread group
    leader's (a non-leader exec takes over the leader's tid, and a pidfd of
    that tid then names the exec'ing task; the other threads die, and
    their pidfds say so).  umask is not cached
    (fs_struct is shared between threads): read it with `read_creds` when
    creating files.

    The mem fd (sentry/memory.py) is bound to the address space the task had
    when it was opened, not to the tid.  The one way it can outlive that
    address space's owner is an exec racing a call of another thread of the
    same process: the entry is refilled between the execve notification and
    the exec, so it names the old address space.  That space is then freed
    (reads give 0: EFAULT) unless a CLONE_VM sibling still uses it, and such
    a sibling is memory the workload's own old program shared: no other
    domain's memory is reached.  -1 when the mem fd cannot be opened
    (memory.py then uses process_vm_readv/writev).  It is opened at the
    task's second call, not its first: a task that makes one call and then
    execs or exits (a shell's child: execve, then a first call from the new
    program) would pay the open and close of an fd it reads once
    (process_vm_readv costs ~3 us more per read than the fd, the open ~15).
    """

    MAX = 512

    def __init__(self, epoch: CredsEpoch) -> None:
        self._epoch = epoch
        self._seen = epoch.value
        # tid -> [pidfd, creds, mem fd or -1, epoch.gen when filled, lookups]
        self._d: dict[int, list] = {}
        self._task_ids = hostcalls.TaskIds()
        # True when the owner sees every exit of the tasks it asks about
        # and calls task_gone() for each before the tid can be reused: the
        # ptrace platform's tracer thread, which reaps its own tracees
        # (a traced task stays a zombie until its tracer has waited for
        # it) and only ever asks about the tracee stopped in front of it.
        # An entry then names its task without the pidfd check (one
        # system call per call); the pidfd is still taken when an entry is
        # filled, for the mem fd's own check.
        self.exits_seen = False

    def lookup(self, tid: int) -> tuple[Creds, int, bool]:
        """(creds, mem fd or -1, whether the entry was there before)."""
        epoch = self._epoch
        if self._seen != epoch.value:
            self.clear()
        e = self._d.get(tid)
        if e is not None:
            stale = epoch.stale.get(tid, -1)
            if stale <= e[3] and (self.exits_seen or hostcalls.pidfd_alive(e[0])):
                e[4] += 1
                if e[2] < 0 and e[4] == 2:
                    e[2] = self._open_mem(tid, e[0])
                return e[1], e[2], True
            if stale > e[3] and epoch.execs.get(tid) == stale:
                c = self._after_exec(tid, e)
                if c is not None:
                    return c, -1, False
            self._drop(tid)
        filled = epoch.gen
        pidfd = hostcalls.pidfd_open(tid, _PIDFD_THREAD)
        if pidfd < 0:
            return read_creds(tid), -1, False
        try:
            c = read_creds(tid)
            if not hostcalls.pidfd_alive(pidfd):
                raise SysError(_ESRCH, f"read creds of {tid}: task exited")
        except BaseException:
            os.close(pidfd)
            raise
        if len(self._d) >= self.MAX:
            self.clear()
        self._d[tid] = [pidfd, c, -1, filled, 1]
        return c, -1, False

    def _after_exec(self, tid: int, e: list) -> Creds | None:  # type: ignore[type-arg]
        """Entry e of a thread group leader after its own execve (or a
        failed one), refreshed in place; None: read it all again.

        An execve changes a task's user and group ids (a set-user-ID or
        set-group-ID program) and its capabilities (a program's file
        capabilities; the sets the kernel recomputes for a non-root user),
        never its supplementary groups, umask or pid, and a leader keeps its
        tid and tgid: those are kept, the ids come from PIDFD_GET_INFO on
        the entry's pidfd and the effective set from capget(2), exact
        either way, about a fifteenth of what reading /proc/TID/status costs
        for a task that has just exec'd.  capget names the task by number,
        so it comes first: PIDFD_GET_INFO after it fails (ESRCH) once the
        pidfd's task has been reaped, the moment its tid may name another
        task, so both answers are that task's (the check lookup() makes with
        pidfd_send_signal after its reads, in the same call).  The address
        space is new: the old mem fd goes, and the new one is opened at the
        task's next call, as for a new entry."""
        filled = self._epoch.gen
        task_ids = self._task_ids
        cap = task_ids.cap_effective(tid)
        ids = task_ids.ids(e[0]) if cap >= 0 else None
        if ids is None:
            return None
        old = e[1]
        c = Creds(ids.ruid, ids.rgid, ids.fsuid, ids.fsgid, old.groups, cap, old.umask,
                  old.ns_tgid, old.ns_tid, ids.euid, ids.suid, ids.egid, ids.sgid, old.tgid)
        if e[2] >= 0:
            os.close(e[2])
        e[1], e[2], e[3], e[4] = c, -1, filled, 1
        return c

    @staticmethod
    def _open_mem(tid: int, pidfd: int) -> int:
        """The mem fd of the task pidfd pins (checked alive after the open:
        the tid named that task), or -1."""
        try:
            memfd = ownproc.open_(f"{tid}/mem", _O_MEM)
        except OSError:
            return -1
        if not hostcalls.pidfd_alive(pidfd):
            os.close(memfd)
            return -1
        return memfd

    def pidfd(self, tid: int) -> int:
        """The pidfd kept with tid's entry (after a lookup), or -1."""
        e = self._d.get(tid)
        return e[0] if e is not None else -1

    def task_gone(self, tid: int) -> None:
        """The task tid named has exited (exits_seen: before its tid can
        name another task)."""
        self._drop(tid)

    def _drop(self, tid: int) -> None:
        e = self._d.pop(tid, None)
        if e is not None:
            os.close(e[0])
            if e[2] >= 0:
                os.close(e[2])

    def clear(self) -> None:
        self._seen = self._epoch.value
        for tid in list(self._d):
            self._drop(tid)
