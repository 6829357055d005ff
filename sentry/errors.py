"""The sentry's single error type: a Linux errno to hand back to the target.

Handlers raise `SysError(errno.EFAULT)` (or return a negative errno); the
supervisor turns either into the notification's answer.  Host OSErrors are
translated in one place, `from_oserror`.
"""

from __future__ import annotations

import errno as _errno
import os


class SysError(Exception):
    """A syscall failure with the errno the target will see.

    The message is only made when asked for (str(), a log line): most are
    raised on a hot path (ENOENT of a stat) and never printed."""

    __slots__ = ("errno", "context")

    def __init__(self, err: int, context: str = "") -> None:
        self.errno = err
        self.context = context

    def __str__(self) -> str:
        msg = os.strerror(self.errno)
        return f"{self.context}: {msg}" if self.context else msg


def from_oserror(err: OSError) -> int:
    """The negative errno the target gets for a host failure (EIO if none)."""
    return -(err.errno or _errno.EIO)


EFAULT = _errno.EFAULT
ENOSYS = _errno.ENOSYS
ENAMETOOLONG = _errno.ENAMETOOLONG
EPERM = _errno.EPERM
EINVAL = _errno.EINVAL
ENOENT = _errno.ENOENT
EBADF = _errno.EBADF
EACCES = _errno.EACCES
ELOOP = _errno.ELOOP
EXDEV = _errno.EXDEV
ENOTDIR = _errno.ENOTDIR
