"""The container's terminal: a pty from the container's own devpts.

The master goes to the caller over --console-socket (one SCM_RIGHTS message);
the slave becomes /dev/console and the process's stdio and controlling tty.
"""

from __future__ import annotations

import fcntl
import os
import struct
import termios

from .. import libc
from ..errors import RuntimeFailure

TIOCGPTN = 0x80045430
TIOCSPTLCK = 0x40045431


def open_pty() -> tuple[int, str]:
    """Open /dev/ptmx (-> pts/ptmx of the container's devpts); return (master, slave path)."""
    try:
        master = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
        fcntl.ioctl(master, TIOCSPTLCK, struct.pack("i", 0))
        n = struct.unpack("I", fcntl.ioctl(master, TIOCGPTN, b"\0" * 4))[0]
    except OSError as e:
        raise RuntimeFailure(f"open console /dev/ptmx: {e.strerror}") from None
    return master, f"/dev/pts/{n}"


def set_size(fd: int, size: dict[str, int] | None) -> None:
    if size:
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", size.get("height", 0),
                                                         size.get("width", 0), 0, 0))


def attach_console(slave_path: str, mount_console: bool) -> None:
    """Make the slave our stdio and controlling terminal; bind it on /dev/console."""
    try:
        if mount_console:
            if not os.path.exists("/dev/console"):
                os.close(os.open("/dev/console", os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o600))
            libc.mount(slave_path, "/dev/console", None, libc.MS_BIND)
        slave = os.open(slave_path, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(slave, fd)
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)
        if slave > 2:
            os.close(slave)
    except OSError as e:
        raise RuntimeFailure(f"set up console {slave_path}: {e.strerror}") from None
