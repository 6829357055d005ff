"""unshare(2) without namespaces: the sharing flags a process may drop.

CLONE_FILES, CLONE_FS and CLONE_SYSVSEM (and flags 0) only stop sharing
what the caller already shares with its own threads or parent: Linux allows
them to anyone, and programs use them (unshare(CLONE_FILES) before exec,
unshare(CLONE_FS) before chdir in a thread).  Every CLONE_NEW* flag is
refused with EPERM, whatever the container's capabilities: the sandbox
makes no namespaces.  The flags are a value in the notification, not memory
the workload could change afterwards, so continuing the allowed ones leaves
the kernel nothing to decide that we did not see.
"""

from __future__ import annotations

import errno

from ..call import Call
from ..policy import CLONE_NEW_MASK

CLONE_NEWTIME = 0x00000080  # unshare(2) only: in clone(2) these bits are the exit signal


def unshare(call: Call) -> int | None:
    """Implements Linux syscall unshare(2): no CLONE_NEW* flag."""
    if call.args[0] & (CLONE_NEW_MASK | CLONE_NEWTIME):
        return -errno.EPERM
    call.reply_continue()
    return None
