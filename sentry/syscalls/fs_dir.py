"""Directory and name changes: chdir(2), fchdir(2), getcwd(2).

The cwd is the target's kernel state: the sentry cannot set it from outside,
so these run in the kernel (CONTINUE).  That is not a security decision: the
container's mount namespace confines any directory the target can name to the
container root, later path calls are resolved by the sentry relative to that
cwd (sentry/resolve.py), and the kernel checks permissions itself.
mkdir, unlink, rename, link, symlink, mknod have no handler yet (ENOSYS).
"""

from __future__ import annotations

from ..call import Call


def chdir(call: Call) -> None:
    """Implements Linux syscall chdir(2)."""
    call.reply_continue()


def fchdir(call: Call) -> None:
    """Implements Linux syscall fchdir(2)."""
    call.reply_continue()


def getcwd(call: Call) -> None:
    """Implements Linux syscall getcwd(2)."""
    call.reply_continue()
