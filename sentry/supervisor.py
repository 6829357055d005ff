"""The notification loop: receive, dispatch by syscall number, answer.

Threads: `threads` workers (default 1) block in SECCOMP_IOCTL_NOTIF_RECV on
the same listener; the kernel hands every notification to exactly one of
them.  A worker runs the handler and answers itself: with SYNC_WAKE_UP the
target wakes the receiving worker on its own CPU and gets its answer from
that same worker, one round trip, no hand-off between supervisor threads.
One receiving thread is the fast case: every waiter in RECV is woken on
each notification (the losers go back to sleep in the kernel, but each costs
a context switch).  A call that blocks in its handler (opening a FIFO,
connecting a socket) holds only its worker; the stall monitor in wait()
starts another worker when all of them have been stuck in the same handler
for a tick (10 ms), up to max_threads.

End: when every task using the filter has exited, the listener reports
POLLHUP.  `wait()` blocks in poll() for it (events 0: a pending
notification does not bring that thread back to user space), and a worker
whose RECV fails checks for POLLHUP too.

Fail closed: a syscall number with no handler -> ENOSYS; a handler that
raises SysError -> its errno; any other exception -> ENOSYS and a logged
error; a foreign architecture never gets here (the filter kills it) and is
answered ENOSYS if it did.
"""

from __future__ import annotations

import errno
import os
import select
import sys
import threading
import time
TYPE_CHECKING = False  # typing's, without importing typing (docs/performance.md, Start-up)
if TYPE_CHECKING:
    from typing import Any, Callable, Optional

from .call import Call, Gone, Sandbox
from .errors import SysError
from .lookups import CHANGES, KEEPS, tree_kinds
from .lookups import TreeEpoch
from .platform.seccomp_notify import AUDIT_ARCH_X86_64, Channel, Listener, ListenerClosed
from .policy import DENY, EMULATE, NATIVE, NOTIFY, Entry, PolicyOptions, build_table, syscall_numbers
from runsc_py.log import get_logger

log = get_logger(__name__)

if TYPE_CHECKING:  # annotations only
    Handler = Callable[[Call], Optional[int]]
TABLE_SIZE = 512


def _missing(name: str) -> Handler:
    warned = []

    def handler(call: Call) -> int:
        if not warned:
            warned.append(True)
            log.warning("sentry: %s: no handler yet, answering ENOSYS", name)
        return -errno.ENOSYS

    handler.__name__ = f"missing_{name}"
    return handler


def _refused(e: Entry, emulate: Handler | None = None) -> Handler:
    """--strace (PolicyOptions.trace_refused): the answer the filter would
    give itself, by the table's reference semantics (Entry.decide); the
    arguments a native entry notifies go to its handler, EMULATE."""
    def handler(call: Call) -> int | None:
        action = e.decide(list(call.args))
        if action == NOTIFY and emulate is not None:
            return emulate(call)
        return -action if isinstance(action, int) else -errno.ENOSYS

    handler.__name__ = f"refused_{e.name}"
    return handler


def import_handlers() -> None:
    """Import every handler module the policy table names (ahead of
    build_dispatch, which then finds them loaded)."""
    for e in build_table(None).values():
        if e.handler:
            try:
                __import__(f"sentry.syscalls.{e.handler.rpartition('.')[0]}")
            except ImportError:
                pass  # build_dispatch answers ENOSYS for it, and says so


def build_dispatch(options: PolicyOptions | None = None) -> list[Handler | None]:
    """Syscall number -> handler, for every notified syscall of the policy."""
    numbers = syscall_numbers()
    table: list[Handler | None] = [None] * TABLE_SIZE
    trace = bool(options and options.trace_refused)
    for e in build_table(options).values():
        nr = numbers.get(e.name)
        if nr is None or nr >= TABLE_SIZE:
            continue
        handler = None
        if e.tier == EMULATE or (e.tier == NATIVE and e.handler):
            mod_name, _, func = e.handler.rpartition(".")
            try:
                __import__(f"sentry.syscalls.{mod_name}")  # (importlib's package: runsc_py/cli.py)
                mod = sys.modules[f"sentry.syscalls.{mod_name}"]
                handler = getattr(mod, func)
            except (ImportError, AttributeError):
                handler = _missing(e.name)
        if trace and (e.tier == DENY or (e.tier == NATIVE and e.rules)):
            table[nr] = _refused(e, handler)
        else:
            table[nr] = handler
    return table


def handler_names(dispatch: list[Handler | None]) -> dict[Handler, str]:
    """handler -> "module.function" (its name in sentry/lookups.py's lists)."""
    return {h: f"{h.__module__.rpartition('.')[2]}.{h.__name__}" for h in dispatch if h is not None}


GONE = object()  # invoke(): the caller went away, nothing to answer


def invoke(handler: Handler, call: Call, tree: TreeEpoch | None, kind: str) -> int | None | object:
    """Run one handler the way every platform does: a SysError is its errno,
    any other failure ENOSYS (logged), Gone is GONE; the lookup caches are
    told before the answer (sentry/lookups.py).  Returns the value to
    answer, None (the handler answered itself) or GONE."""
    if kind != KEEPS:
        tree.begin()  # type: ignore[union-attr]
    try:
        return handler(call)
    except SysError as e:
        return -e.errno
    except Gone:
        return GONE
    except Exception:
        log.exception("sentry: handler %s failed", getattr(handler, "__name__", "?"))
        return -errno.ENOSYS
    finally:
        # Before the reply: once the call returns, no lookup may answer
        # from before it (sentry/lookups.py).
        if kind != KEEPS:
            tree.end(kind)  # type: ignore[union-attr]


class ReadyThread(threading.Thread):
    """A thread started ahead of its work, which it waits for: starting a
    thread (its clone, its first run, the handshake of Thread.start) costs
    0.5-1 ms on these VMs, off the workload's path when it is made while
    the sandbox waits for init's hand-over (runsc_py/sandbox.py).

    setup() runs first in the thread when its work comes (what a thread
    inherits from its creator, a network namespace, it must take itself).
    hand(None) ends it without work."""

    def __init__(self, name: str, setup: Callable[[], bool] | None = None) -> None:
        super().__init__(name=name, daemon=True)
        self._setup = setup
        self._work: Callable[[], Any] | None = None
        self._given = threading.Event()
        self.start()

    def hand(self, work: Callable[[], Any] | None) -> None:
        self._work = work
        self._given.set()

    def run(self) -> None:
        self._given.wait()
        work = self._work
        if work is not None and (self._setup is None or self._setup()):
            work()


class Supervisor:
    """Serves one listener for one sandbox."""

    def __init__(self, listener_fd: int, sandbox: Sandbox, *, threads: int = 1,
                 max_threads: int = 16, sync_wakeup: bool = True,
                 stall_tick: float = 0.01, idle_tick: float = 0.2,
                 dispatch: list[Handler | None] | None = None,
                 kinds: dict[object, int] | None = None) -> None:
        """kinds: tree_kinds of dispatch, if made already (~0.4 ms in a
        sandbox: made while it waits for init's hand-over)."""
        self.listener = Listener(listener_fd)
        self.sandbox = sandbox
        self.sync_wakeup = self.listener.set_sync_wakeup() if sync_wakeup else False
        # A sandbox serving several listeners (init, every exec) builds it once.
        self.dispatch = dispatch if dispatch is not None else build_dispatch(sandbox.options.policy)
        # What a handler's call may do to the file tree, for the lookup
        # caches (sentry/lookups.py): KEEPS, ADDS, REPORTS, or CHANGES.
        self.tree_kinds = kinds if kinds is not None else tree_kinds(handler_names(self.dispatch))
        self.min_threads = max(1, threads)
        self.max_threads = max(self.min_threads, max_threads)
        self.stall_tick = stall_tick
        self.idle_tick = max(stall_tick, idle_tick)
        self._lock = threading.Lock()
        self._workers: list[threading.Thread] = []
        # Per worker: 0 while waiting in RECV, else the id of the notification
        # it is handling.  Written on the hot path without a lock (one list
        # store); read by the stall monitor in wait().
        self._states: list[int] = []
        self._done = threading.Event()
        self.handled = 0

    # --- lifecycle ---------------------------------------------------------
    def start(self, first: ReadyThread | None = None) -> None:
        """Start the workers; first: a thread started ahead of the listener
        (ReadyThread) to be the first of them."""
        # Files the sentry creates for the target get the target's umask
        # applied by the handlers, not ours.
        os.umask(0)
        for _ in range(self.min_threads):
            self._spawn(first)
            first = None

    def wait(self, timeout: float | None = None) -> bool:
        """Block until every target is gone (POLLHUP); True if so.

        Meanwhile, every stall_tick: if every worker has been inside the same
        handler since the last tick (blocking calls: FIFO opens, connects),
        start one more worker, up to max_threads.  While every worker waits
        in RECV the tick doubles, up to idle_tick: an idle sandbox (most of
        them, most of the time) wakes five times a second, not a hundred
        (each wake-up takes the GIL: ~8 ms of CPU a second per sandbox).  A
        handler that blocks after an idle spell is seen within idle_tick.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        prev: list[int] = []
        tick = self.stall_tick
        while not self._done.wait(tick):
            if self.listener.fd < 0:
                self._done.set()
                break
            snap = list(self._states)
            if snap and all(snap) and snap == prev:
                log.debug("sentry: all %d workers blocked in handlers: adding one", len(snap))
                self._spawn()
                snap = list(self._states)
            prev = snap
            tick = self.stall_tick if any(snap) else min(tick * 2, self.idle_tick)
            if deadline is not None and time.monotonic() >= deadline:
                break
        return self._done.is_set()

    def serve(self, first: ReadyThread | None = None) -> None:
        """start(), wait for the end, close."""
        self.start(first)
        try:
            self.wait()
        finally:
            self.close()

    def close(self) -> None:
        """Stop answering.  Workers in RECV are woken by the kernel on hang-up
        (ENOENT); any still blocked is a daemon thread and dies with us."""
        self._done.set()
        for t in self._workers:
            t.join(timeout=0.5)
        if not any(t.is_alive() for t in self._workers):
            self.listener.close()
        else:
            log.debug("sentry: workers still in RECV; listener left open")

    @property
    def workers(self) -> int:
        return len(self._workers)

    # --- workers -----------------------------------------------------------
    def _spawn(self, ready: ReadyThread | None = None) -> None:
        with self._lock:
            if len(self._workers) >= self.max_threads:
                if ready is not None:
                    ready.hand(None)
                return
            slot = len(self._states)
            self._states.append(0)
            t: threading.Thread
            if ready is None:
                t = threading.Thread(target=self._worker, args=(slot,), name=f"sentry-{slot}",
                                     daemon=True)
            else:
                t = ready
            self._workers.append(t)
        if ready is None:
            t.start()
        else:
            ready.hand(lambda: self._worker(slot))

    def _hung_up(self) -> bool:
        if self.listener.fd < 0:
            return True
        p = select.poll()
        p.register(self.listener.fd, 0)
        for _fd, ev in p.poll(0):
            if ev & (select.POLLHUP | select.POLLERR | select.POLLNVAL):
                return True
        return False

    def _worker(self, slot: int) -> None:
        """Serve notifications until the end.  A failure outside a handler
        (a bug here) stops the whole supervisor: the listener is closed, and
        the kernel fails every pending and later notified call with ENOSYS,
        rather than leaving the workload blocked on a dead worker."""
        try:
            self._serve_notifications(slot)
        except BaseException:
            log.critical("sentry: worker %d failed; closing the listener", slot, exc_info=True)
            self._done.set()

    def _serve_notifications(self, slot: int) -> None:
        chan = Channel(self.listener)
        call = Call(chan, self.sandbox)
        notif = chan.notif
        data = notif.data
        dispatch = self.dispatch
        size = len(dispatch)
        states = self._states
        done = self._done
        recv = chan.recv
        reply = chan.reply
        tree = self.sandbox.tree
        kinds = self.tree_kinds
        try:
            while not done.is_set():
                states[slot] = 0
                try:
                    got = recv()
                except ListenerClosed:
                    done.set()
                    break
                if not got:
                    if self._hung_up():
                        done.set()
                    continue
                nid = notif.id
                states[slot] = nid
                nr = data.nr
                handler = dispatch[nr] if 0 <= nr < size else None
                if handler is None or data.arch != AUDIT_ARCH_X86_64:
                    reply(nid, -errno.ENOSYS)
                    continue
                call.load(nid, notif.pid, nr)
                res = invoke(handler, call, tree, KEEPS if tree is None else kinds.get(handler, CHANGES))
                if res is GONE:
                    continue
                if res is not None:
                    reply(nid, res)  # type: ignore[arg-type]
                self.handled += 1
        finally:
            call.close()
