"""The ptrace platform: the workload's emulated calls as ptrace stops.

The workload runs under the same BPF policy as on the seccomp platform,
with SECCOMP_RET_TRACE where that one notifies (sentry/filter.py,
trace=True), plus the guard of the reserved descriptor (reserved.py).
Native calls never stop; an emulated call stops its thread
(PTRACE_EVENT_SECCOMP) and the sentry answers it with the same handlers.

Kernel facts relied on (ptrace(2), seccomp(2); ptrace.md):

- PTRACE_SEIZE with TRACESECCOMP|TRACECLONE|TRACEFORK|TRACEVFORK|TRACEEXEC|
  EXITKILL|TRACESYSGOOD: children are attached automatically with the same
  options (their first stop is PTRACE_EVENT_STOP/SIGTRAP); if the tracer
  thread exits for any reason, every tracee gets SIGKILL (fail closed).
- ptrace requests come from the tracer *thread*: one Tracer thread per
  attached process tree (init, each `exec`), waiting with
  waitpid(-1, __WALL|__WNOTHREAD): its own tracees only, threads included,
  blocking (the tracee's stop wakes it with a synchronous wake-up), never
  polling.
- Tids in waitpid and event messages are in the tracer's pid namespace (the
  sandbox's), as notification pids are on the seccomp platform.
- Group-stops arrive as PTRACE_EVENT_STOP with the stopping signal and are
  left stopped with PTRACE_LISTEN; other signals arrive as signal-delivery
  stops and are passed on (PTRACE_CONT with the signal).
- At PTRACE_EVENT_EXEC every other thread is gone and GETEVENTMSG gives the
  tid the exec'ing thread had: when it was not the leader, the leader's
  record is dropped here, its death is never reported (ptrace(2) BUGS).

An emulated call is answered by skipping it (orig_rax = -1, rax = value:
inject.Session.finish), never by letting it run with pointer arguments the
sentry checked: another thread could change them in between.  Handlers
that let the kernel run a call (exec, chdir, credential calls:
policy.CONTINUES) resume the stop unchanged; an exec is then verified at
its PTRACE_EVENT_EXEC (execcheck.py).  An fd answer is sent on the socket
at the caller's reserved descriptor and the stopped call turned into a
recvmsg on it (inject.py).

Who runs the handler: the tracer thread itself, unless the call may wait
for another task (`_may_block`): a tracer stuck in a FIFO open would stop
every other tracee, including the one that would open the other end.
Those calls are parked: the caller is made to wait in pause(2) with every
signal but SIGURG blocked (PTRACE_SETSIGMASK: held, as the seccomp
platform's WAIT_KILLABLE_RECV holds them), a worker thread runs the
handler and wakes the caller with SIGURG (pidfd_send_signal); its
signal-delivery stop brings the tracer back, which answers as above.
Opens (the common case) run on the tracer with O_NONBLOCK added: a FIFO or
a lease that would have made them wait is then finished on a worker
(`_open_nonblocking`).

Fail closed: an unexpected stop kills that tracee; an exception in the
tracer thread ends it, and EXITKILL kills every tracee it had.
"""

from __future__ import annotations

import ctypes
import errno
import itertools
import os
import queue
import select
from runsc_py import sockets  # socket's API without socket.py's enums (sockets.py)
import threading
import time
TYPE_CHECKING = False  # typing's, without importing typing (docs/performance.md, Start-up)
if TYPE_CHECKING:
    from typing import Any, Callable, Optional

from runsc_py.record import Record

from .. import paths
from ..cpu import Colocation
from ..call import Call, Sandbox
from ..lookups import CHANGES, KEEPS, tree_kinds
from ..supervisor import GONE, handler_names, invoke
from . import execcheck, inject
from . import ptrace_abi as abi
from .tracees import Channel, FdTable, AddressSpace, Park, Tracee, child_of
from runsc_py.log import get_logger

log = get_logger(__name__)

if TYPE_CHECKING:  # annotations only
    Handler = Callable[[Call], Optional[int]]

SIGKILL, SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU, SIGURG = 9, 19, 20, 21, 22, 23
_GROUP_STOPS = frozenset((SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU))
_OPTIONS = (abi.PTRACE_O_TRACESECCOMP | abi.PTRACE_O_TRACECLONE | abi.PTRACE_O_TRACEFORK
            | abi.PTRACE_O_TRACEVFORK | abi.PTRACE_O_TRACEEXEC | abi.PTRACE_O_EXITKILL
            | abi.PTRACE_O_TRACESYSGOOD)
U64 = inject.U64
_PARK_MASK = inject._ALL_BUT_URG
_REGS_SIZE = inject._REGS_SIZE

SYS_open, SYS_creat, SYS_openat, SYS_openat2 = 2, 85, 257, 437
SYS_connect, SYS_sync, SYS_syncfs = 42, 162, 306
SYS_sendto, SYS_sendmsg, SYS_sendmmsg = 44, 46, 307
SYS_dup2, SYS_recvmsg, SYS_dup3, SYS_close_range = 33, 47, 292, 436
SYS_pause, SYS_clone, SYS_fork, SYS_vfork = 34, 56, 57, 58
SYS_execve, SYS_execveat = execcheck.SYS_execve, execcheck.SYS_execveat
# Calls that lower (or otherwise change) the caller's credentials: a socket
# it shares with another fd table is replaced before they run (inject.py).
_CRED_CALLS = frozenset((105, 106, 113, 114, 117, 119, 116, 122, 123, 126))

# Calls whose handler may wait for another task: always run on a worker.
# creat and openat2 too (their flags cannot be made O_NONBLOCK here: creat
# has none, openat2's are in the caller's memory).
# Sends too: an emulated sendmsg on a full socket waits for its reader.
_MAY_BLOCK = frozenset((SYS_creat, SYS_openat2, SYS_connect, SYS_sync, SYS_syncfs,
                        SYS_sendto, SYS_sendmsg, SYS_sendmmsg))
_OPEN_FLAGS_ARG = {SYS_open: 1, SYS_openat: 2}
_NO_WAIT = os.O_NONBLOCK | os.O_PATH
_RESERVED_NRS = frozenset((SYS_recvmsg, SYS_dup2, SYS_dup3, SYS_close_range))

# The wait status of a PTRACE_EVENT_SECCOMP stop.
_SECCOMP_STOP = ((abi.SIGTRAP | abi.PTRACE_EVENT_SECCOMP << 8) << 8) | 0x7F

# How the inline channel was answered.
VALUE, CONTINUE, FD, REOPEN = range(4)
_monotonic_ns = time.monotonic_ns


class PtraceChannel:
    """A sentry thread's CallChannel on this platform (base.py).

    On the tracer thread (`inline`) the caller is stopped at its seccomp
    stop for the whole handler: nothing can reap it meanwhile (only this
    thread waits for it), so its tid names it throughout and id_valid is
    True.  An fd is installed right away (inject.install_fd).  On a worker
    the caller is parked: id_valid asks its pidfd, and the answer is kept
    in the Park for the tracer."""

    __slots__ = ("args", "inline", "tracer", "call", "t", "nr", "kind", "value", "session",
                 "park", "nonblock_added", "open_flags")

    def __init__(self, tracer: "Tracer | None") -> None:
        self.args: list[int] = [0] * 6  # filled in place (a Call binds it once)
        self.inline = tracer is not None
        self.tracer = tracer
        self.call: TracedCall | None = None
        self.t: Tracee | None = None
        self.nr = 0
        self.kind = VALUE
        self.value = 0
        self.session: inject.Session | None = None
        self.park: Park | None = None
        self.nonblock_added = False
        self.open_flags = 0

    def id_valid(self, nid: int) -> bool:
        if self.inline:
            return True
        t = self.t
        return t is not None and t.pidfd >= 0 and abi.pidfd_signal(t.pidfd, 0) in (0, -errno.EPERM)

    def reply(self, nid: int, val: int) -> bool:
        self.kind, self.value = VALUE, val
        return True

    def reply_continue(self, nid: int) -> bool:
        self.kind = CONTINUE
        if not self.inline:
            return True  # the tracer makes the call again and lets it run (Tracer._wake)
        if self.nr in (SYS_execve, SYS_execveat) and self.call is not None and self.t is not None:
            path = self.call.read_paths.get(0 if self.nr == SYS_execve else 1)
            self.t.pending_exec = execcheck.expected(self.call, self.nr, path)
        return True

    def keep_beside(self, tid: int) -> None:
        """base.CallChannel: beside the tracer (on a worker: left as it is)."""
        if self.inline and self.tracer is not None:
            self.tracer.col.exec_pin(tid)

    def reply_fd(self, nid: int, srcfd: int, cloexec: bool = False, newfd: int = -1) -> int | None:
        if newfd >= 0:
            self.kind, self.value = VALUE, -errno.ENOSYS  # no handler places fds (yet)
            return -errno.ENOSYS
        if not self.inline:
            park = self.park
            assert park is not None
            park.fd = os.dup(srcfd)
            park.cloexec = cloexec
            self.kind = FD
            return None
        if self.nonblock_added:
            # We opened it with O_NONBLOCK the caller did not ask for.  Its
            # mode: from the fstat paths._guard just made of it, if it did.
            call = self.call
            if call is not None and call.stat_of == srcfd:
                mode = call.scratch.stat_mode.value
            else:
                mode = os.fstat(srcfd).st_mode
            if (mode & 0o170000) == 0o010000 and self.open_flags & os.O_ACCMODE != os.O_RDWR:
                # A FIFO: the caller's open waits for the other end.  A
                # worker finishes it (a blocking reopen of this very FIFO).
                self.kind = REOPEN
                self.value = os.dup(srcfd)
                return None
            os.set_blocking(srcfd, True)  # the open file description: what the caller gets
        assert self.tracer is not None and self.t is not None
        if self.session is None:
            self.session = self.tracer.session(self.t)
        r = self.tracer.install(self.session, srcfd, cloexec)
        self.kind, self.value = VALUE, r
        return r


class TracedCall(Call):
    """A Call that keeps the path strings its handler read (execcheck.py
    resolves the very bytes the exec handler checked: an exec handler reads
    its path before it lets the call run)."""

    __slots__ = ("read_paths",)

    def __init__(self, chan: PtraceChannel, sb: Sandbox) -> None:
        super().__init__(chan, sb)
        self.read_paths: dict[int, bytes] = {}
        chan.call = self

    def path(self, i: int) -> bytes:
        p = super().path(i)
        self.read_paths[i] = p
        return p


def _signed(v: int) -> int:
    return v - (1 << 64) if v & (1 << 63) else v


class _Job(Record):
    """Work for a worker thread: run a handler for a parked caller, or finish
    a FIFO open (reopen our fd of it, blocking, as the caller)."""

    tracer: "Tracer"
    t: Tracee
    park: Park
    nr: int
    args: tuple[int, ...]
    handler: Handler | None = None
    reopen_fd: int = -1
    reopen_flags: int = 0


class Workers:
    """Threads that run parked calls; one more is started whenever a job
    finds none idle (up to max_threads), so a blocked one holds only its
    own caller."""

    def __init__(self, sup: "PtraceSupervisor", max_threads: int = 16) -> None:
        self.sup = sup
        self.max_threads = max_threads
        self.jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0
        self._threads: list[threading.Thread] = []

    def submit(self, job: _Job) -> None:
        with self._lock:
            if self._idle == 0 and len(self._threads) < self.max_threads:
                t = threading.Thread(target=self._run, name=f"sentry-worker-{len(self._threads)}",
                                     daemon=True)
                self._threads.append(t)
                self._idle += 1
                t.start()
            self._idle -= 1
        self.jobs.put(job)

    def stop(self) -> None:
        for _ in self._threads:
            self.jobs.put(None)

    def _run(self) -> None:
        chan = PtraceChannel(None)
        call = TracedCall(chan, self.sup.sandbox)
        try:
            while True:
                job = self.jobs.get()
                if job is None:
                    return
                try:
                    self._one(call, chan, job)
                except Exception:
                    log.exception("ptrace: worker failed on a parked call")
                    _complete(job, -errno.ENOSYS)
                finally:
                    with self._lock:
                        self._idle += 1
        finally:
            call.close()

    def _one(self, call: TracedCall, chan: PtraceChannel, job: _Job) -> None:
        chan.t, chan.park, chan.nr = job.t, job.park, job.nr
        chan.kind, chan.value = VALUE, -errno.ENOSYS
        chan.args[:] = job.args
        call.load(job.park.ticket, job.t.tid, job.nr)
        if job.handler is None:
            res: Any = _reopen(call, job.reopen_fd, job.reopen_flags)
        else:
            res = self.sup.invoke(job.handler, call)
        # Back to our own credentials: the wake-up is a signal, which the
        # caller's may not send.
        call.creds_state.reset()
        if res is GONE:
            _complete(job, -errno.ESRCH)
        elif res is not None:
            _complete(job, res)
        elif chan.kind == FD:
            _complete(job, 0, fd=True)
        elif chan.kind == CONTINUE:
            _complete(job, 0, cont=True)
        else:
            _complete(job, chan.value)
        self.sup.handled += 1


def _reopen(call: TracedCall, fd: int, flags: int) -> int | None:
    """Open the FIFO behind our fd again, as the caller asked (blocking until
    the other end is there), and answer with it.

    Our fd is the tracer's O_NONBLOCK open made for the caller, and since
    it was made it has counted as the caller's end, as a caller blocked in
    open(2) counts natively: a writer's open may have returned, written
    and closed before this worker got the job.  The kernel lets a blocked
    reader's open return once a writer has come since it started; a new
    blocking open waits for the next writer, for ever if there is none
    (the writer then waits for us).  So a writer already seen (data in the
    pipe, or its hang-up) answers with our fd itself, checked as late as
    can be, right before the blocking open.  What is left: a writer that
    opens, writes and closes between that check and the open's own start
    (a few microseconds: tests/sentry/test_ptrace.py's FIFO test, which hung
    one run in 10-25 under load before this check, then passed 270 in a row
    under the same load)."""
    cloexec = bool(flags & os.O_CLOEXEC)
    try:
        call.act_as_target()
        if flags & os.O_ACCMODE == os.O_RDONLY and _writer_came(fd):
            os.set_blocking(fd, True)  # the open file description the caller gets
            new, fd = fd, -1
        else:
            new = paths.reopen(fd, flags & ~(os.O_CREAT | os.O_EXCL | os.O_TRUNC | os.O_CLOEXEC))
    finally:
        if fd >= 0:
            os.close(fd)
    if new < 0:
        return new
    call.reply_fd(new, cloexec)  # closes new
    return None


def _writer_came(fd: int) -> bool:
    """Has a writer opened the FIFO of our read-only fd since it was made?
    Its data is there (POLLIN), or it has gone again (POLLHUP: no writer
    now, and the pipe's count of writer opens moved since our open)."""
    p = select.poll()
    p.register(fd, select.POLLIN)
    return any(ev & (select.POLLIN | select.POLLHUP) for _fd, ev in p.poll(0))


def _complete(job: _Job, value: int, fd: bool = False, cont: bool = False) -> None:
    """The worker's answer: into the Park, then wake the caller (SIGURG), or
    dropped if the caller died meanwhile."""
    park = job.park
    with park.lock:
        if park.abandoned:
            if park.fd >= 0:
                os.close(park.fd)
                park.fd = -1
            return
        if not fd:
            if park.fd >= 0:
                os.close(park.fd)
                park.fd = -1
            park.value = value
        park.cont = cont
        park.done = True
        # Under the lock: the tracer closes the pidfd only after marking the
        # park abandoned, so this is still the caller's pidfd.
        r = abi.pidfd_signal(job.t.pidfd, SIGURG)
        if r < 0 and r != -errno.ESRCH:
            # The caller would wait in pause(2) for ever.
            log.error("ptrace: waking %d for its parked call: %s", job.t.tid, os.strerror(-r))


class Tracer:
    """One attached process tree, served by its own thread."""

    def __init__(self, sup: "PtraceSupervisor", pid: int, chan: Channel, reserved: int,
                 watch: bool) -> None:
        self.sup = sup
        self.pid = pid
        self.first_chan = chan
        self.reserved = reserved
        self.watch = watch
        self.tracees: dict[int, Tracee] = {}
        self.stash: dict[int, int] = {}  # tid -> status of a child seen before its parent's event
        self.deferred: list[tuple[int, int]] = []  # stops seen while waiting for one tracee
        self.regs = abi.UserRegs()
        self.regs_p = ctypes.addressof(self.regs)
        self._session_saved = abi.UserRegs()  # session(): lent, one at a time
        self._session_saved_p = ctypes.addressof(self._session_saved)
        self._session_work = abi.UserRegs()
        self.status = ctypes.c_int()
        self.status_p = ctypes.addressof(self.status)
        self.msg = ctypes.c_ulong()
        self.msg_p = ctypes.addressof(self.msg)
        self.attached = threading.Event()
        self.error: str | None = None
        self.thread = threading.Thread(target=self._main, name=f"sentry-tracer-{pid}", daemon=True)
        self.chan: PtraceChannel | None = None
        self.call: TracedCall | None = None
        # Busy tracees on this thread's CPU (sentry/cpu.py).
        self.col = Colocation(sup.sandbox.pins)

    # --- lifecycle ---------------------------------------------------------------
    def start(self, timeout: float = 10.0) -> None:
        """Start the thread; returns once the process is seized (raises if not)."""
        self.thread.start()
        if not self.attached.wait(timeout):
            raise OSError(errno.ETIMEDOUT, f"ptrace: attach to {self.pid}: no answer")
        if self.error:
            raise OSError(errno.EPERM, self.error)

    def _main(self) -> None:
        try:
            setup = self.sup.thread_setup
            if setup is not None and not setup():
                self.error = f"ptrace: the tracer of {self.pid} could not be set up"
                self.first_chan.send.close()
                self.first_chan.drain.close()
                self.attached.set()
                return
            if not self._seize():
                return
            self.col.start(self.pid)
            self.chan = PtraceChannel(self)
            self.call = TracedCall(self.chan, self.sup.sandbox)
            # This thread reaps its tracees and tells the cache of each exit
            # (_exited, _exec): its entries need no pidfd check per call.
            self.call.creds_cache.exits_seen = True
            self._loop()
        except BaseException:
            # Fail closed: this thread's exit kills every tracee (EXITKILL).
            log.critical("ptrace: tracer of %d failed; its tracees are killed", self.pid,
                         exc_info=True)
            for tid in list(self.tracees):
                try:
                    os.kill(tid, SIGKILL)
                except OSError:
                    pass
        finally:
            self.col.close()
            if self.call is not None:
                self.call.close()
            for t in self.tracees.values():
                t.drop()
            self.tracees.clear()
            self.sup._tracer_done(self)

    def _seize(self) -> bool:
        try:
            abi.ptrace_checked(abi.PTRACE_SEIZE, self.pid, 0, _OPTIONS)  # python-ptrace's
        except abi.PtraceError as e:
            self.error = f"ptrace: seize {self.pid}: {os.strerror(e.errno or errno.EPERM)}"
            self.first_chan.send.close()
            self.first_chan.drain.close()
            self.attached.set()
            return False
        t = Tracee(self.pid, self.pid, FdTable(self.first_chan, self.reserved), AddressSpace())
        t.watched = self.watch
        self.tracees[self.pid] = t
        self.attached.set()
        log.debug("ptrace: tracing %d", self.pid)
        return True

    # --- the event loop --------------------------------------------------------
    def _loop(self) -> None:
        status = self.status
        sp = self.status_p
        flags = abi.WALL | abi.WNOTHREAD
        tracees = self.tracees
        waitpid = abi.waitpid
        seccomp = self._seccomp
        gone = inject.TraceeGone
        deferred = self.deferred
        while tracees:
            if deferred:
                self._event(*deferred.pop(0))
                continue
            tid = waitpid(-1, sp, flags)
            if tid < 0:
                err = abi.get_errno()
                if err == errno.EINTR:
                    continue
                if err == errno.ECHILD:
                    break
                raise OSError(err, f"ptrace: waitpid: {os.strerror(err)}")
            st = status.value
            if st == _SECCOMP_STOP:  # the hot path
                t = tracees.get(tid)
                if t is not None:
                    try:
                        seccomp(t)
                    except gone:
                        pass
                    continue
            self._event(tid, st)

    def wait_tid(self, tid: int) -> int:
        """inject.Waiter: the next status of tid (its exit handled here).

        Waits for any of our tracees, not for tid alone: a thread-group
        leader's exit is reported only once its other threads are reaped,
        and an exec in its process waits for those too.  Their exits are
        handled now; their stops are kept (they stay stopped) for the loop."""
        while True:
            r = abi.waitpid(-1, self.status_p, abi.WALL | abi.WNOTHREAD)
            if r < 0:
                if abi.get_errno() == errno.EINTR:
                    continue
                raise inject.TraceeGone(tid)
            st = self.status.value
            if os.WIFEXITED(st) or os.WIFSIGNALED(st):
                t = self.tracees.get(r)
                if t is not None:
                    self._exited(t, st)
                if r == tid:
                    raise inject.TraceeGone(tid)
                continue
            if r == tid:
                return st
            self.deferred.append((r, st))

    def _event(self, tid: int, st: int) -> None:
        t = self.tracees.get(tid)
        if t is None:
            if os.WIFSTOPPED(st):
                self.stash[tid] = st  # a new child; its parent's event will name it
            return
        if os.WIFEXITED(st) or os.WIFSIGNALED(st):
            self._exited(t, st)
            return
        sig = (st >> 8) & 0xFF
        event = st >> 16
        try:
            if event == abi.PTRACE_EVENT_SECCOMP:
                self._seccomp(t)
            elif event == 0:
                if sig == abi.SYSCALL_STOP:
                    self._kill(t, "a syscall stop nobody asked for")
                elif sig == SIGURG and t.park is not None:
                    self._wake(t)
                else:
                    self._resume(t, sig)  # signal-delivery stop: pass it on
            elif event == abi.PTRACE_EVENT_STOP:
                if sig in _GROUP_STOPS and t.started:
                    self._request(abi.PTRACE_LISTEN, t)
                else:
                    t.started = True
                    self._resume(t, 0)
            elif event in (abi.PTRACE_EVENT_FORK, abi.PTRACE_EVENT_VFORK, abi.PTRACE_EVENT_CLONE):
                self._fork(t)
            elif event == abi.PTRACE_EVENT_EXEC:
                self._exec(t)
            else:
                self._kill(t, f"unexpected stop {st:#x}")
        except inject.TraceeGone:
            pass

    # --- requests ------------------------------------------------------------------
    def _request(self, req: int, t: Tracee, data: int = 0) -> None:
        if abi.ptrace(req, t.tid, 0, data) != 0:
            err = abi.get_errno()
            if err == errno.ESRCH:
                raise inject.TraceeGone(t.tid)
            raise OSError(err, f"ptrace request {req:#x} {t.tid}: {os.strerror(err)}")

    def _resume(self, t: Tracee, sig: int) -> None:
        self._request(abi.PTRACE_CONT, t, sig)

    def _kill(self, t: Tracee, why: str) -> None:
        log.error("ptrace: %s in %d: killed", why, t.tid)
        try:
            os.kill(t.tid, SIGKILL)
        except OSError:
            pass
        try:
            self._resume(t, 0)
        except inject.TraceeGone:
            pass

    def install(self, s: inject.Session, fd: int, cloexec: bool) -> int:
        """An fd for the tracee of session s (inject.install_fd, with our
        own credentials for the tracer's own procfs use, then the caller's
        again: a handler may go on after it).

        Only the first injection into an address space or fd table needs
        them: opening its /proc/TID/mem (root's 0600 inode once the caller
        is non-dumpable), a reserved socket of its own (pidfd_getfd).
        After that an injection is ptrace requests (the tracer's own
        right), sendmsg on our socket, the mem fd (checked when it was
        opened) and kcmp, which the caller's credentials pass while they
        keep our CAP_SYS_PTRACE (creds.py _KEEP); the switch there and
        back (ten system calls) is then skipped."""
        cs = self.call.creds_state if self.call is not None else None
        t = s.t
        try:
            if cs is None or (t.mm.mem >= 0 and t.mm.scratch and not t.table.private_needed
                              and not cs.unknown and not cs.ptrace_dropped):
                return inject.install_fd(s, fd, cloexec, next(self.sup.tickets))
            with cs.own_for_now():
                return inject.install_fd(s, fd, cloexec, next(self.sup.tickets))
        except OSError as e:
            log.warning("ptrace: installing an fd in %d: %s", s.t.tid, e)
            return -(e.errno or errno.EIO)

    def _own_reach(self) -> None:
        """The sentry's own credentials for the tracer's own procfs use
        after a handler (/proc/TID/mem and exe of a task that may be
        non-dumpable: root's inodes); the next handler's become() takes
        the caller's again."""
        cs = self.call.creds_state if self.call is not None else None
        if cs is not None and cs.current != cs.own:
            cs.reset()

    # --- exits, forks, execs ----------------------------------------------------
    def _exited(self, t: Tracee, st: int) -> None:
        self.tracees.pop(t.tid, None)
        self.col.gone(t.tid)
        self._gone(t.tid)
        self._abandon(t)
        if t.watched:
            self.sup._exit_status(t.tid, st)
        t.drop()

    def _gone(self, tid: int) -> None:
        """tid no longer names the task it named (exited, or an exec moved
        that thread to its leader's tid): forget what was kept for it
        (CredsCache.exits_seen)."""
        if self.call is not None:
            self.call.creds_cache.task_gone(tid)

    def _abandon(self, t: Tracee) -> None:
        """t's parked call will never be answered (t is gone)."""
        park = t.park
        if park is None:
            return
        with park.lock:
            park.abandoned = True
            if park.fd >= 0:
                os.close(park.fd)
                park.fd = -1
        t.park = None

    def _fork(self, t: Tracee) -> None:
        self._request(abi.PTRACE_GETEVENTMSG, t, self.msg_p)
        child = self.msg.value
        self._request(abi.PTRACE_GETREGS, t, self.regs_p)
        nr = self.regs.orig_rax
        flags = self.regs.rdi if nr == SYS_clone else (0x4100 if nr == SYS_vfork else 0)
        c = child_of(t, child, flags)
        c.started = False
        self.tracees[child] = c
        self.col.forked(t.tid, child, c.tgid)
        self._resume(t, 0)
        st = self.stash.pop(child, None)
        if st is not None:
            self._event(child, st)

    def _exec(self, t: Tracee) -> None:
        self._request(abi.PTRACE_GETEVENTMSG, t, self.msg_p)
        old = self.msg.value
        if old != t.tid:
            # A thread exec'd: it now has the leader's tid (t is the old
            # leader's record), and the leader's death is never reported.
            was = self.tracees.pop(old, None)
            self._gone(old)
            self.col.moved(old, t.tid)
            self._abandon(t)
            t.pending_exec = was.pending_exec if was is not None else None
            if was is not None:
                was.drop()
        epoch = self.sup.sandbox.creds_epoch
        if old != t.tid:
            # Another thread's credentials under the leader's tid now.
            self._gone(t.tid)
            epoch.forget(t.tid, old)
        else:
            # The leader itself: the exec changed its ids and capabilities
            # at most, and its address space (CredsCache._after_exec reads
            # the first two again and drops its mem fd at its next call).
            epoch.exec_of_leader(t.tid)
        self._own_reach()
        allowed = t.pending_exec or frozenset()
        t.pending_exec = None
        ran = execcheck.executed(t.tid)
        if ran is None or ran not in allowed:
            self._kill(t, f"exec of a file that was not checked ({ran})")
            return
        # A new address space, and the fd table is the process's own now.
        t.set_mm(AddressSpace())
        table = FdTable(t.table.chan, t.table.reserved)
        table.private_needed = t.table.private_needed or execcheck.secure_exec(t.tid)
        t.set_table(table)
        self._resume(t, 0)

    # --- a stopped call ------------------------------------------------------------
    def _seccomp(self, t: Tracee) -> None:
        regs = self.regs
        tid = t.tid
        col = self.col
        if col.cpu >= 0:
            now = _monotonic_ns()
            last, t.last_stop = t.last_stop, now
            # (A task's first stop decides nothing: a child keeps the pin it
            # inherited, and its exec may be about to ask for one.)
            if last and now >= t.pin_after and not col.stopped(tid, t.tgid, now - last):
                t.pin_after = now + col.RETRY_NS
        if abi.ptrace(abi.PTRACE_GETREGS, tid, 0, self.regs_p) != 0:
            raise inject.TraceeGone(tid)
        nr = regs.orig_rax
        args = (regs.rdi, regs.rsi, regs.rdx, regs.r10, regs.r8, regs.r9)
        if t.bypass is not None:
            # A parked call its handler let run, made again (_wake).
            same = t.bypass == (nr, *args)
            t.bypass = None
            if same:
                self._resume(t, 0)
                return
        if nr in _RESERVED_NRS:
            self._reserved(t, nr, args)
            return
        sup = self.sup
        dispatch = sup.dispatch
        handler = dispatch[nr] if nr < len(dispatch) else None
        if handler is None:
            self._answer(t, -errno.ENOSYS)
            return
        if nr in _MAY_BLOCK:
            self._park(t, nr, args, handler)
            return
        chan = self.chan
        call = self.call
        assert chan is not None and call is not None
        cargs = chan.args
        cargs[:] = args
        chan.t = t
        chan.nr = nr
        chan.kind = VALUE
        chan.session = None
        chan.nonblock_added = False  # (_nonblocking sets it for an open)
        call.load(next(sup.tickets), tid, nr)
        tree = sup.sandbox.tree
        res = invoke(handler, call, tree, KEEPS if tree is None else sup.tree_kinds.get(handler, CHANGES))
        sup.handled += 1
        if res is GONE:
            res = -errno.ENOSYS  # it is still stopped here: it gets an answer
        s, chan.session = chan.session, None
        if res is None:
            if chan.kind == CONTINUE:
                self._continue(t, nr)
                return
            if chan.kind == REOPEN:
                self._park(t, nr, args, None, reopen=(chan.value, chan.open_flags))
                return
            res = chan.value
        elif chan.nonblock_added and res in (-errno.ENXIO, -errno.EAGAIN):
            # O_NONBLOCK we added made the open fail where it would have
            # waited (a FIFO without a reader, a lease): run it for real.
            self._park(t, nr, args, handler)
            return
        if s is not None:
            self._finish(s, res)  # registers as saved, after an injection
        else:
            self._answer(t, res)

    def session(self, t: Tracee) -> inject.Session:
        """A Session from t's current seccomp stop (self.regs); signals are
        blocked if it makes more than one call (the first fd into an
        address space maps the scratch page, maybe a reserved socket of
        its own: a signal sent then was dropped, asyncio's
        test_subprocess_send_signal hung)."""
        # One session at a time comes from here (the call in front of the
        # tracer, finished before the next stop is taken): its buffers are
        # the tracer's own, not allocated per fd.
        ctypes.memmove(self._session_saved_p, self.regs_p, _REGS_SIZE)
        return inject.Session(self, t, self._session_saved, at_seccomp=True, block_later=True,
                              work=self._session_work)

    def _answer(self, t: Tracee, value: int) -> None:
        """Skip the stopped call (self.regs its registers): value is its result."""
        regs = self.regs
        regs.orig_rax = U64
        regs.rax = value & U64
        if (abi.ptrace(abi.PTRACE_SETREGS, t.tid, 0, self.regs_p) != 0
                or abi.ptrace(abi.PTRACE_CONT, t.tid, 0, 0) != 0):
            raise inject.TraceeGone(t.tid)

    def _finish(self, s: inject.Session, value: int) -> None:
        s.finish(value)
        self._resume(s.t, 0)

    def _continue(self, t: Tracee, nr: int) -> None:
        """Let the call run (policy.CONTINUES).  A credential call by a task
        whose reserved socket another fd table also holds first gets a
        socket of its own (the other holder could take its fds once its
        credentials differ), then is made again."""
        if nr in _CRED_CALLS and t.table.chan.holders > 1:
            self._own_reach()
            saved = abi.UserRegs()
            ctypes.memmove(ctypes.addressof(saved), self.regs_p, ctypes.sizeof(saved))
            s = inject.Session(self, t, saved, at_seccomp=True, block=True)
            try:
                inject.private_channel(s)
                s.restart()
            except OSError as e:
                log.error("ptrace: a reserved socket of its own for %d: %s", t.tid, e)
                self._kill(t, "no reserved socket of its own before a credential change")
                return
            self._resume(t, 0)
            return
        self._resume(t, 0)

    def _reserved(self, t: Tracee, nr: int, args: tuple[int, ...]) -> None:
        """A call the guard filter stopped because it names the reserved
        descriptor (reserved.py): refused as if it were not open, except a
        close_range around it, which closes the rest."""
        if nr != SYS_close_range:
            self._answer(t, -errno.EBADF)
            return
        first, last, flags = args[0] & 0xFFFFFFFF, args[1] & 0xFFFFFFFF, args[2] & 0xFFFFFFFF
        if not first <= t.table.reserved <= last:
            self._resume(t, 0)  # the re-run filter lets it through
            return
        saved = abi.UserRegs()
        ctypes.memmove(ctypes.addressof(saved), self.regs_p, ctypes.sizeof(saved))
        s = inject.Session(self, t, saved, at_seccomp=True, block=True)
        self._finish(s, inject.split_close_range(s, first, last, flags))

    # --- parked calls -------------------------------------------------------------
    def _park(self, t: Tracee, nr: int, args: tuple[int, ...], handler: Handler | None,
              reopen: tuple[int, int] | None = None) -> None:
        """Hand the call to a worker; the caller waits in pause(2)."""
        if t.pidfd < 0:
            t.pidfd = abi.pidfd_open_thread(t.tid)
            if t.pidfd < 0:
                if reopen is not None:
                    os.close(reopen[0])
                self._answer(t, -errno.ESRCH)
                return
        saved = abi.UserRegs()
        ctypes.memmove(ctypes.addressof(saved), self.regs_p, ctypes.sizeof(saved))
        mask = ctypes.c_uint64()
        if abi.ptrace(abi.PTRACE_GETSIGMASK, t.tid, 8, ctypes.addressof(mask)) != 0:
            raise inject.TraceeGone(t.tid)
        park = Park(next(self.sup.tickets), saved, mask.value)
        block = ctypes.c_uint64(_PARK_MASK)
        abi.ptrace(abi.PTRACE_SETSIGMASK, t.tid, 8, ctypes.addressof(block))
        self.regs.orig_rax = SYS_pause
        self._request(abi.PTRACE_SETREGS, t, self.regs_p)
        t.park = park
        job = _Job(self, t, park, nr, args, handler)
        if reopen is not None:
            job.reopen_fd, job.reopen_flags = reopen
        self.sup.workers.submit(job)
        self._resume(t, 0)

    def _wake(self, t: Tracee) -> None:
        """SIGURG stopped a parked caller: its answer, if it is in."""
        park = t.park
        assert park is not None
        with park.lock:
            done = park.done
            if not done:
                park.held_urg = True  # the workload's own SIGURG: delivered after
        if not done:
            self._resume(t, 0)  # pause(2) restarts: still parked
            return
        t.park = None
        self._own_reach()
        s = inject.Session(self, t, park.saved, at_seccomp=False)
        if park.cont:
            # The handler lets the call run: make it again; its next seccomp
            # stop (the same call, the same registers) is let through
            # unanswered, as CONTINUE does on the seccomp platform.
            p = park.saved
            t.bypass = (p.orig_rax, p.rdi, p.rsi, p.rdx, p.r10, p.r8, p.r9)
            s.restart()
            m = ctypes.c_uint64(park.mask)
            abi.ptrace(abi.PTRACE_SETSIGMASK, t.tid, 8, ctypes.addressof(m))
            self._resume(t, 0)
            if park.held_urg and t.pidfd >= 0:
                abi.pidfd_signal(t.pidfd, SIGURG)
            return
        value = park.value
        if park.fd >= 0:
            try:
                value = self.install(s, park.fd, park.cloexec)
            finally:
                os.close(park.fd)
                park.fd = -1
        s.finish(value)
        m = ctypes.c_uint64(park.mask)
        abi.ptrace(abi.PTRACE_SETSIGMASK, t.tid, 8, ctypes.addressof(m))
        self._resume(t, 0)
        if park.held_urg and t.pidfd >= 0:
            abi.pidfd_signal(t.pidfd, SIGURG)


def _nonblocking(handler: Handler, fi: int) -> Handler:
    """open/openat run on the tracer thread with O_NONBLOCK added (argument
    fi): an open that would wait (a FIFO without its other end, a lease)
    then fails or returns at once, and the tracer finishes it on a worker
    (PtraceChannel.reply_fd, Tracer._seccomp).  Inside any --strace
    wrapper, which shows the caller's own flags."""
    def h(call: Call) -> int | None:
        chan = call.chan
        a = call.args
        f = a[fi]
        if chan.inline and not f & _NO_WAIT:  # type: ignore[attr-defined]
            chan.nonblock_added = True  # type: ignore[attr-defined]
            chan.open_flags = f & 0xFFFFFFFF  # type: ignore[attr-defined]
            a[fi] = f | os.O_NONBLOCK  # type: ignore[index]
        return handler(call)

    h.__name__ = handler.__name__
    h.__module__ = handler.__module__
    return h


def platform_dispatch(dispatch: list[Handler | None]) -> list[Handler | None]:
    """The dispatch table as this platform runs it (before any --strace
    wrapping): opens made non-blocking on the tracer (_nonblocking)."""
    out = list(dispatch)
    for nr, fi in _OPEN_FLAGS_ARG.items():
        if out[nr] is not None:
            out[nr] = _nonblocking(out[nr], fi)  # type: ignore[arg-type]
    return out


class PtraceSupervisor:
    """The ptrace platform for one sandbox: tracers, workers, handlers.

    dispatch: the table to run, made by platform_dispatch() (and then
    maybe wrapped for --strace)."""

    def __init__(self, sandbox: Sandbox, dispatch: list[Handler | None], *,
                 max_workers: int = 16, thread_setup: Callable[[], bool] | None = None) -> None:
        """thread_setup: run first by each tracer thread (the workers it
        starts inherit what it set: a network namespace); False: that
        thread serves nothing (its tracee is never attached)."""
        self.sandbox = sandbox
        self.dispatch = dispatch
        self.thread_setup = thread_setup
        # Files the sentry creates for a tracee get the tracee's umask
        # applied by the handlers, not ours (as the seccomp supervisor's
        # start does: the umask is the process's).
        os.umask(0)
        self.tree_kinds = tree_kinds(handler_names(dispatch))
        self.workers = Workers(self, max_workers)
        self.tickets = itertools.count(1)
        self.handled = 0
        self._lock = threading.Lock()
        self._tracers: list[Tracer] = []
        self._exits: dict[int, int] = {}
        self._exit_cv = threading.Condition(self._lock)

    def invoke(self, handler: Handler, call: Call) -> Any:
        tree = self.sandbox.tree
        kind = KEEPS if tree is None else self.tree_kinds.get(handler, CHANGES)
        return invoke(handler, call, tree, kind)

    def attach(self, pid: int, send: sockets.socket, drain: sockets.socket, reserved: int, *,
               watch: bool = False) -> None:
        """Trace pid (and everything it will create) from a new tracer
        thread; returns once it is seized.  send/drain: the sandbox's ends
        of its reserved socket (now the tracer's), at descriptor `reserved`
        in pid."""
        tr = Tracer(self, pid, Channel(send, drain), reserved, watch)
        with self._lock:
            self._tracers.append(tr)
        tr.start()

    def exit_status(self, pid: int, timeout: float | None = None) -> int | None:
        """The wait status of a watched tracee once it has exited."""
        with self._exit_cv:
            self._exit_cv.wait_for(lambda: pid in self._exits, timeout)
            return self._exits.get(pid)

    def _exit_status(self, pid: int, st: int) -> None:
        with self._exit_cv:
            self._exits[pid] = st
            self._exit_cv.notify_all()

    def _tracer_done(self, tr: Tracer) -> None:
        with self._lock:
            if tr in self._tracers:
                self._tracers.remove(tr)

    @property
    def tracing(self) -> bool:
        with self._lock:
            return bool(self._tracers)

    def drain(self, timeout: float = 1.0) -> None:
        import time
        deadline = time.monotonic() + timeout
        for tr in list(self._tracers):
            tr.thread.join(max(0.0, deadline - time.monotonic()))

    def close(self) -> None:
        self.workers.stop()

