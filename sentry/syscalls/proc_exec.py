"""execve(2), execveat(2): observed, then run by the kernel.

CONTINUE here is not a security decision: the filter stays installed across
execve, no_new_privs forbids privilege gain (setuid bits, file caps), and the
kernel resolves the path in the target's own mount namespace (the container
root).  The sentry only logs the event; it cannot run the exec itself.
"""

from __future__ import annotations

import logging

from ..call import Call
from ..errors import SysError

log = logging.getLogger(__name__)


def execve(call: Call) -> None:
    """Implements Linux syscall execve(2)."""
    if log.isEnabledFor(logging.DEBUG):
        try:
            log.debug("execve pid=%d path=%r", call.pid, call.path(0))
        except SysError:
            pass
    call.sb.creds_cache.clear()
    call.reply_continue()


def execveat(call: Call) -> None:
    """Implements Linux syscall execveat(2)."""
    if log.isEnabledFor(logging.DEBUG):
        try:
            log.debug("execveat pid=%d path=%r", call.pid, call.path(1))
        except SysError:
            pass
    call.sb.creds_cache.clear()
    call.reply_continue()
