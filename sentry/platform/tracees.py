"""What the tracer knows of each traced task, its fd table and address space.

Threads of one process share an fd table and an address space; fork copies
both; clone shares what its flags say; execve gets a new address space
(and a private fd table).  The tracer keeps one record of each and follows
those events (PTRACE_EVENT_FORK/VFORK/CLONE: the parent's registers still
hold the clone flags; PTRACE_EVENT_EXEC), so that:

- an fd is always sent on the socket held at the reserved descriptor of
  the *fd table* that will receive it (`Channel`), and
- the scratch page where an injected recvmsg finds its msghdr belongs to
  the *address space* of the task it runs in (`AddressSpace`).

A record dies with its last task.
"""

from __future__ import annotations

import os
from runsc_py import sockets  # socket's API without socket.py's enums (sockets.py)
import threading
TYPE_CHECKING = False  # typing's, without importing typing (docs/performance.md, Start-up)
if TYPE_CHECKING:
    from typing import Any

from runsc_py.record import Record, factory

CLONE_VM = 0x00000100
CLONE_FILES = 0x00000400
CLONE_THREAD = 0x00010000


class Channel:
    """The sandbox's ends of one reserved socket pair: `send` (where fds go
    out) and `drain` (a copy of the end the workload holds at the reserved
    descriptor: what a failed injection left behind is read off it).
    holders: fd tables whose reserved descriptor is this socket (fork
    shares it).  dirty: an injection failed; drain before the next send."""

    __slots__ = ("send", "drain", "holders", "dirty")

    def __init__(self, send: sockets.socket, drain: sockets.socket) -> None:
        self.send = send
        self.drain = drain
        self.holders = 0
        self.dirty = False

    def release(self) -> None:
        self.holders -= 1
        if self.holders <= 0:
            self.send.close()
            self.drain.close()


class FdTable:
    """One fd table of the workload.  reserved: the number of its reserved
    descriptor (reserved.py).  private_needed: the socket there must be
    replaced by one of its own before the next fd is sent (inject.py: after
    an exec that raised privileges)."""

    __slots__ = ("chan", "reserved", "tasks", "private_needed")

    def __init__(self, chan: Channel, reserved: int) -> None:
        self.chan = chan
        chan.holders += 1
        self.reserved = reserved
        self.tasks = 0
        self.private_needed = False

    def set_channel(self, chan: Channel) -> None:
        old, self.chan = self.chan, chan
        chan.holders += 1
        old.release()

    def unref(self) -> None:
        self.tasks -= 1
        if self.tasks <= 0:
            self.chan.release()


class AddressSpace:
    """One address space: where its scratch page is (mapped by the tracer
    on the first injection; fork copies it at the same address), and a
    /proc/TID/mem fd of it (bound to this address space, not the tid)."""

    __slots__ = ("scratch", "mem", "tasks", "image", "image_at", "image_ok")

    def __init__(self, scratch: int = 0) -> None:
        self.scratch = scratch
        self.mem = -1
        self.tasks = 0
        self.image = b""   # what inject.install_fd writes at image_at
        self.image_at = 0
        self.image_ok = False  # the page held the image after the last injection

    def unref(self) -> None:
        self.tasks -= 1
        if self.tasks <= 0 and self.mem >= 0:
            os.close(self.mem)
            self.mem = -1


class Park(Record):
    """A call handed to a worker thread while its caller waits in pause(2)
    (ptrace.py).  Guarded by `lock`: the worker sets done and the result,
    the tracer sets abandoned (the caller died); whichever comes second
    cleans up."""

    ticket: int
    saved: Any              # the caller's registers at its seccomp stop (UserRegs)
    mask: int               # its signal mask, restored when the answer is in
    lock: threading.Lock = factory(threading.Lock)
    done: bool = False
    abandoned: bool = False
    value: int = 0          # the answer (-errno), or...
    fd: int = -1            # ...an fd of ours to install
    cloexec: bool = False
    held_urg: bool = False  # a SIGURG of the workload's came meanwhile: deliver it after
    cont: bool = False      # the handler lets the call run (CONTINUE)


class Tracee:
    """One traced task (thread)."""

    __slots__ = ("tid", "tgid", "table", "mm", "pidfd", "park", "pending_exec", "watched",
                 "started", "bypass", "last_stop", "pin_after")

    def __init__(self, tid: int, tgid: int, table: FdTable, mm: AddressSpace) -> None:
        self.tid = tid
        self.tgid = tgid
        self.table = table
        table.tasks += 1
        self.mm = mm
        mm.tasks += 1
        self.pidfd = -1
        self.park: Park | None = None
        # (dev, ino) pairs an exec of this task may run (execcheck.py).
        self.pending_exec: frozenset[tuple[int, int]] | None = None
        self.watched = False  # its exit status is kept (the container's init)
        self.started = True   # False until its first stop (a new child)
        # (nr, args) of a parked call its handler let run: its next seccomp
        # stop, if it is that call again, runs unanswered (ptrace.py _wake).
        self.bypass: tuple[int, ...] | None = None
        # Its last seccomp stop and when a refused pin may be tried again,
        # monotonic ns (sentry/cpu.py Colocation).
        self.last_stop = 0
        self.pin_after = 0

    def set_table(self, table: FdTable) -> None:
        table.tasks += 1
        old, self.table = self.table, table
        old.unref()

    def set_mm(self, mm: AddressSpace) -> None:
        mm.tasks += 1
        old, self.mm = self.mm, mm
        old.unref()

    def drop(self) -> None:
        """The task is gone: release what it held."""
        self.table.unref()
        self.mm.unref()
        if self.pidfd >= 0:
            os.close(self.pidfd)
            self.pidfd = -1


def child_of(parent: Tracee, tid: int, flags: int) -> Tracee:
    """The record of a task parent just created with these clone flags."""
    table = parent.table if flags & CLONE_FILES else FdTable(parent.table.chan, parent.table.reserved)
    if not flags & CLONE_FILES:
        table.private_needed = parent.table.private_needed
    mm = parent.mm if flags & CLONE_VM else AddressSpace(parent.mm.scratch)
    tgid = parent.tgid if flags & CLONE_THREAD else tid
    return Tracee(tid, tgid, table, mm)
