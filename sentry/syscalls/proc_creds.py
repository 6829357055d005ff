"""Credential calls: run by the kernel with its own permission checks.

They take no path and act only on the caller's own credentials; the kernel
checks CAP_SETUID & co. itself, so CONTINUE decides nothing.  They are
notified (not native) so that the native tier stays small and so that the
sentry sees credential changes (its per-call credential read, sentry/creds.py,
picks them up).
"""

from __future__ import annotations

from ..call import Call



def setuid(call: Call) -> None:
    """Implements Linux syscall setuid(2)."""
    # Drop the cached credentials first: this thread makes no other call
    # until the kernel has run this one.
    call.sb.creds_epoch.bump()
    call.reply_continue()


setgid = setreuid = setregid = setresuid = setresgid = setgroups = capset = setuid


def getresuid(call: Call) -> None:
    """Implements Linux syscall getresuid(2)."""
    call.reply_continue()


getgroups = getresgid = capget = getpgid = getsid = getresuid


def umask(call: Call) -> None:
    """Implements Linux syscall umask(2) (never cached: see creds.py)."""
    call.reply_continue()
