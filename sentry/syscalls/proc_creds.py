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
    call.reply_continue()


setgid = setreuid = setregid = setresuid = setresgid = setgroups = setuid
getgroups = getresuid = getresgid = capget = capset = getpgid = getsid = setuid
