"""Small helpers over cgroupfs files (no state, no policy)."""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Callable

from runsc_py.errors import RuntimeFailure, describe_oserror

# "max" (no limit) is reported as the largest uint64, as runc does.
UNLIMITED_U64 = (1 << 64) - 1


def write_file(path: str, value: str) -> None:
    """Write one value to an existing cgroup file in a single write(2)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, value.encode())
        finally:
            os.close(fd)
    except OSError as e:
        raise RuntimeFailure(describe_oserror(f"cgroup: write {path}", e)) from None


def read_str(path: str) -> str | None:
    """The stripped content, or None if the file does not exist / is unreadable."""
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def parse_uint(text: str | None, max_value: int = UNLIMITED_U64) -> int:
    """Parse a counter; "max" gives max_value, garbage or absent gives 0."""
    if text is None:
        return 0
    text = text.strip()
    if text == "max":
        return max_value
    try:
        return max(int(text), 0)
    except ValueError:
        return 0


def read_uint(path: str, max_value: int = UNLIMITED_U64) -> int:
    return parse_uint(read_str(path), max_value)


def read_kv(path: str) -> dict[str, int]:
    """Parse flat-keyed files such as memory.stat, cpu.stat, cgroup.events."""
    out: dict[str, int] = {}
    text = read_str(path)
    if not text:
        return out
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2:
            try:
                out[parts[0]] = int(parts[1])
            except ValueError:
                continue
    return out


def read_uint_list(path: str) -> list[int]:
    text = read_str(path)
    if not text:
        return []
    return [parse_uint(x) for x in text.split()]


def procs_recursive(top: str) -> list[int]:
    """Every pid listed in cgroup.procs of top and of all its descendants."""
    pids: set[int] = set()
    for dirpath, _dirs, _files in os.walk(top):
        text = read_str(os.path.join(dirpath, "cgroup.procs"))
        if text:
            pids.update(int(p) for p in text.split())
    return sorted(pids)


def wait_until(pred: Callable[[], bool], timeout: float) -> bool:
    """Poll pred with a short, growing sleep; True as soon as it holds."""
    deadline = time.monotonic() + timeout
    delay = 0.0005
    while True:
        if pred():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(delay)
        delay = min(delay * 2, 0.02)


def rmdir_tree(top: str, timeout: float) -> None:
    """Remove a cgroup directory and its child cgroups, deepest first.

    cgroupfs directories contain only control files, which go with the
    directory; rmdir fails with EBUSY while a process is still attached (e.g.
    still exiting), so it is retried until timeout.  A missing directory is
    fine.  Raises OSError on final failure.
    """
    deadline = time.monotonic() + timeout
    delay = 0.001
    while True:
        try:
            _rmdir_once(top)
            return
        except FileNotFoundError:
            return
        except OSError as e:
            if e.errno not in (errno.EBUSY, errno.EAGAIN, errno.ENOTEMPTY) \
                    or time.monotonic() >= deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def _rmdir_once(top: str) -> None:
    try:
        os.rmdir(top)  # the usual case: no child cgroup, no task left
        return
    except OSError as e:
        if e.errno not in (errno.EBUSY, errno.ENOTEMPTY):
            raise
    # Child cgroups (a nested runtime's, or systemd's) go first, deepest first.
    subdirs: list[str] = []
    for dirpath, dirnames, _files in os.walk(top):
        subdirs.extend(os.path.join(dirpath, d) for d in dirnames)
    for d in sorted(subdirs, key=lambda p: p.count("/"), reverse=True):
        try:
            os.rmdir(d)
        except FileNotFoundError:
            pass
    os.rmdir(top)
