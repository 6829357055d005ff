"""The interface between the sentry and a platform.

A `Call` (sentry/call.py) is what every handler sees; its platform-facing
half is one `CallChannel` per sentry thread.  The handlers never see the
channel: they use call.args, call.pid, call.mem, call.check_valid(),
call.reply_fd(), call.reply_continue(), and return a value or -errno.

What a platform provides, and how each does it:

| need                              | seccomp_notify             | ptrace                                   |
|-----------------------------------|----------------------------|------------------------------------------|
| a stopped call and its arguments  | NOTIF_RECV                 | PTRACE_EVENT_SECCOMP stop, GETREGS       |
| the caller's memory               | /proc/TID/mem (memory.py)  | the same                                 |
| answer a value or an errno        | NOTIF_SEND                 | orig_rax = -1, rax = value, SETREGS      |
| install an fd in the caller       | NOTIF_ADDFD (SEND)         | SCM_RIGHTS + an injected recvmsg         |
| let the call run                  | USER_NOTIF_FLAG_CONTINUE   | resume the stop unchanged                |
| still the same task?              | NOTIF_ID_VALID             | the stop holds it (pidfd off the tracer) |
| keep an exec'ing task beside us   | nothing: SYNC_WAKE_UP      | pinned beside the tracer (sentry/cpu.py) |
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing's, without importing typing (docs/performance.md, Start-up)
if TYPE_CHECKING:
    from typing import Protocol, Sequence
else:
    Protocol = object  # structural for the type checker; a plain base at run time


class CallChannel(Protocol):
    """One sentry thread's way to read and answer the call it was given.

    args: the six argument values of the current call, overwritten in place
    for each call (a Call binds it once).  Every method takes the call's id (the platform's own numbering) and
    never raises for a caller that went away: it returns False (or
    -ENOENT) and the answer is dropped."""

    args: Sequence[int]

    def id_valid(self, nid: int) -> bool:
        """True while call nid is pending: its pid still names its caller."""
        ...

    def reply(self, nid: int, val: int) -> bool:
        """Answer with a value (>= 0) or -errno."""
        ...

    def reply_continue(self, nid: int) -> bool:
        """Let the kernel run the call itself (never a security decision)."""
        ...

    def reply_fd(self, nid: int, srcfd: int, cloexec: bool = False, newfd: int = -1) -> int | None:
        """Install a copy of srcfd in the caller and answer with its number.

        Returns the number, -errno (-ENOENT: the caller is gone), or None
        when the platform completes the answer later (the number is then
        not known here).  srcfd stays the caller's to close."""
        ...

    def keep_beside(self, tid: int) -> None:
        """The caller tid, a process of one thread, is about to exec: keep
        it on the CPU that serves it (sentry/cpu.py Colocation.exec_pin).
        Placement only, best effort."""
        ...
