"""The notification loop: receive, dispatch by syscall number, answer.

Threads: `threads` workers (elastic up to `max_threads`) each block in
SECCOMP_IOCTL_NOTIF_RECV on the same listener; the kernel hands every
notification to exactly one of them.  A worker runs the handler and answers
itself, so a call that blocks in its handler (opening a FIFO, connecting a
socket) holds only that worker: when a worker takes a notification and no
other worker is left waiting, a new one is started (up to max_threads).
With SYNC_WAKE_UP the target wakes the receiving worker on its own CPU, and
the answer is sent from that same worker: one round trip, no hand-off
between supervisor threads on the hot path.

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
import importlib
import logging
import os
import select
import threading
from typing import Callable, Optional

from .call import Call, Gone, Sandbox
from .errors import SysError
from .notify import AUDIT_ARCH_X86_64, Channel, Listener, ListenerClosed
from .policy import EMULATE, NATIVE, PolicyOptions, build_table, syscall_numbers

log = logging.getLogger(__name__)

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


def build_dispatch(options: PolicyOptions | None = None) -> list[Handler | None]:
    """Syscall number -> handler, for every notified syscall of the policy."""
    numbers = syscall_numbers()
    table: list[Handler | None] = [None] * TABLE_SIZE
    for e in build_table(options).values():
        if e.tier != EMULATE and not (e.tier == NATIVE and e.handler):
            continue
        nr = numbers.get(e.name)
        if nr is None or nr >= TABLE_SIZE:
            continue
        mod_name, _, func = e.handler.rpartition(".")
        try:
            mod = importlib.import_module(f"sentry.syscalls.{mod_name}")
            table[nr] = getattr(mod, func)
        except (ImportError, AttributeError):
            table[nr] = _missing(e.name)
    return table


class Supervisor:
    """Serves one listener for one sandbox."""

    def __init__(self, listener_fd: int, sandbox: Sandbox, *, threads: int = 2,
                 max_threads: int = 32, sync_wakeup: bool = True) -> None:
        self.listener = Listener(listener_fd)
        self.sandbox = sandbox
        self.sync_wakeup = self.listener.set_sync_wakeup() if sync_wakeup else False
        self.dispatch = build_dispatch(sandbox.options.policy)
        self.min_threads = max(1, threads)
        self.max_threads = max(self.min_threads, max_threads)
        self._lock = threading.Lock()
        self._idle = 0
        self._workers: list[threading.Thread] = []
        self._done = threading.Event()
        self.handled = 0

    # --- lifecycle ---------------------------------------------------------
    def start(self) -> None:
        # Files the sentry creates for the target get the target's umask
        # applied by the handlers, not ours.
        os.umask(0)
        for _ in range(self.min_threads):
            self._spawn()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until every target is gone (POLLHUP); True if so."""
        if self._done.is_set():
            return True
        if self.listener.fd < 0 or self.listener.wait_hangup(timeout):
            self._done.set()
        return self._done.is_set()

    def serve(self) -> None:
        """start(), wait for the end, close."""
        self.start()
        try:
            self.wait()
        finally:
            self.close()

    def close(self) -> None:
        """Stop answering.  Workers blocked in RECV are daemon threads: they
        return when the kernel wakes them on hang-up, or die with the process."""
        self._done.set()
        for t in self._workers:
            t.join(timeout=0.5)
        alive = [t for t in self._workers if t.is_alive()]
        if not alive:
            self.listener.close()
        else:
            log.debug("sentry: %d workers still in RECV; listener left open", len(alive))

    # --- workers -----------------------------------------------------------
    def _spawn(self) -> None:
        with self._lock:
            if len([t for t in self._workers if t.is_alive()]) >= self.max_threads:
                return
            t = threading.Thread(target=self._worker, name="sentry-worker", daemon=True)
            self._workers.append(t)
        t.start()

    def _hung_up(self) -> bool:
        if self.listener.fd < 0:
            return True
        p = select.poll()
        p.register(self.listener.fd, 0)
        for _fd, ev in p.poll(0):
            if ev & (select.POLLHUP | select.POLLERR | select.POLLNVAL):
                return True
        return False

    def _worker(self) -> None:
        chan = Channel(self.listener)
        call = Call(chan, self.sandbox)
        notif = chan.notif
        data = notif.data
        dispatch = self.dispatch
        size = len(dispatch)
        lock = self._lock
        done = self._done
        while not done.is_set():
            with lock:
                self._idle += 1
            try:
                got = chan.recv()
            except ListenerClosed:
                got = False
                done.set()
            finally:
                with lock:
                    self._idle -= 1
                    idle = self._idle
            if not got:
                if self._hung_up():
                    done.set()
                continue
            if idle == 0:
                self._spawn()
            nr = data.nr
            handler = dispatch[nr] if 0 <= nr < size else None
            if handler is None or data.arch != AUDIT_ARCH_X86_64:
                chan.reply(notif.id, -errno.ENOSYS)
                continue
            call.load()
            try:
                res = handler(call)
            except SysError as e:
                res = -e.errno
            except Gone:
                continue
            except Exception:
                log.exception("sentry: handler %s failed", getattr(handler, "__name__", "?"))
                res = -errno.ENOSYS
            if res is not None:
                chan.reply(call.id, res)
            self.handled += 1
