"""AF_UNIX binds that keep the caller's name.

The kernel stores the sun_path string bind(2) was given, and getsockname,
getpeername, accept's and recvfrom's peer addresses, /proc/net/unix and
`ss -x` all report that string.  The sentry binds the caller's socket
itself (sentry/syscalls/net_socket.py), in a directory it resolved in the
container root; given "/proc/self/fd/<dir fd>/<name>", the socket would be
named by the sentry's magic link, and a program that hands its own address
to a client (multiprocessing's Listener.address, socketserver, logging's
socket handlers) would hand out a path that names nothing in the container.

So the string given to the kernel is the caller's own, made to resolve to
the directory the sentry already resolved: the sentry's root is an empty
tmpfs of its private mount namespace (runsc_py/sandbox.py confine_fs).  For
"/run/app/x.sock" the sentry makes, in that root, the directory "run" and
in it a symlink "app" -> "/proc/self/fd/<dir fd>" (its own magic link of
the resolved directory), binds the caller's string, and removes both.  For
a relative "app/x.sock" the same tree is made in a scratch directory that
becomes the sentry's cwd; for a bare "x.sock" the cwd is the resolved
directory itself.  The kernel walks only the sentry's own entries and its
magic link, then creates the one final name in the resolved directory
(never following it): nothing the workload controls is resolved by the
kernel.  One bind at a time (the cwd and the root's entries are the
process's).

Names this cannot mirror keep the magic-link name (`None` from `bind`):
a socket directly in "/" (its directory would be the sentry's root
itself), a directory part that walks into or out of its own last
directory ("a/b/../b/x"), a relative one that climbs above the cwd
("../x/s"), a first component "proc" (the sentry's procfs).  An in-process sentry (tests' harness) has no private
root: `NameMirror(-1)` mirrors nothing.
"""

from __future__ import annotations

import os
import threading
from runsc_py.log import get_logger
TYPE_CHECKING = False  # typing's, without importing typing (docs/performance.md, Start-up)
if TYPE_CHECKING:
    from typing import Callable

log = get_logger(__name__)

_RESERVED = frozenset({b"proc", b".cwd", b".", b".."})
_CWD = b".cwd"  # the scratch cwd for relative names, in the sentry's root


class NameMirror:
    """The sentry's root as a scratch tree for exact AF_UNIX names."""

    def __init__(self, root_fd: int) -> None:
        """root_fd: an O_PATH fd of the sentry's own (private, writable,
        empty) root, or -1: mirror nothing."""
        self.root_fd = root_fd
        self._lock = threading.Lock()

    def bind(self, path: bytes, dir_fd: int, bind_as: Callable[[bytes], int],
             own: Callable[[], None], target: Callable[[], None]) -> int | None:
        """bind_as(path) with PATH resolving to dir_fd's directory plus
        PATH's last component.  own()/target(): switch this thread to the
        sentry's credentials (for the scratch tree) and back to the
        caller's (for the bind itself: the kernel checks the caller's
        search and write permissions).  Returns bind's result, or None when
        PATH cannot be mirrored (the caller keeps the magic-link name)."""
        if self.root_fd < 0:
            return None
        absolute = path.startswith(b"/")
        plan = _plan(path, absolute)
        if plan is None:
            return None
        dirs, link = plan
        with self._lock:
            made: list[tuple[int, bytes, bool]] = []
            opened: list[int] = []
            own()
            try:
                try:
                    base = self._base(absolute, opened, made)
                    if link:
                        self._mirror(base, dirs, link, dir_fd, opened, made)
                        if not absolute:
                            os.fchdir(base)
                    else:
                        os.fchdir(dir_fd)
                except OSError as e:
                    log.debug("unix name mirror for %r: %s", path, e)
                    return None
                target()
                return bind_as(path)
            finally:
                own()
                self._undo(made, opened)
                target()

    def _base(self, absolute: bool, opened: list[int], made: list[tuple[int, bytes, bool]]) -> int:
        """The directory the mirror starts in: the root, or the scratch cwd."""
        if absolute:
            return self.root_fd
        os.mkdir(_CWD, 0o555, dir_fd=self.root_fd)
        made.append((self.root_fd, _CWD, True))
        fd = os.open(_CWD, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=self.root_fd)
        opened.append(fd)
        return fd

    @staticmethod
    def _mirror(base: int, dirs: list[tuple[bytes, ...]], link: tuple[bytes, ...], dir_fd: int,
                opened: list[int], made: list[tuple[int, bytes, bool]]) -> None:
        """dirs (parents first) as directories under base, link a symlink to
        our magic link of dir_fd."""
        at: dict[tuple[bytes, ...], int] = {(): base}
        for d in dirs:
            parent = at[d[:-1]]
            os.mkdir(d[-1], 0o555, dir_fd=parent)
            made.append((parent, d[-1], True))
            fd = os.open(d[-1], os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                         dir_fd=parent)
            opened.append(fd)
            at[d] = fd
        parent = at[link[:-1]]
        os.symlink(b"/proc/self/fd/%d" % dir_fd, link[-1], dir_fd=parent)
        made.append((parent, link[-1], False))

    def _undo(self, made: list[tuple[int, bytes, bool]], opened: list[int]) -> None:
        """Remove the scratch tree (deepest first: made is in creation order,
        parents first), back to the root as cwd."""
        try:
            os.fchdir(self.root_fd)
        except OSError as e:
            log.warning("unix name mirror: fchdir back to the root: %s", e)
        for at, name, is_dir in reversed(made):
            try:
                os.unlink(name, dir_fd=at) if not is_dir else os.rmdir(name, dir_fd=at)
            except OSError as e:
                log.warning("unix name mirror: removing %r: %s", name, e)
        for fd in opened:
            os.close(fd)


def _plan(path: bytes, absolute: bool) -> tuple[list[tuple[bytes, ...]], tuple[bytes, ...]] | None:
    """The scratch tree that makes PATH's directory part end in a symlink:
    (directories, parents first; the symlink's position), positions being
    name tuples below the base; an empty symlink position: PATH is a bare
    name (the cwd is the directory itself).  None: not mirrorable.

    The walk is simulated as the kernel will do it: "." stays, ".." goes
    up (at the root, stays).  The symlink's position may be reached only
    at the end (then only "." steps): walking below it or ".." from it
    would be a walk inside the container's directory."""
    if not path or path.endswith(b"/"):
        return None
    comps = [c for c in path.split(b"/") if c]
    steps = comps[:-1]
    if not steps:
        return None if absolute else ([], ())
    cur: tuple[bytes, ...] = ()
    seen: list[tuple[bytes, ...]] = []
    for c in steps:
        if c == b".":
            pass
        elif c == b"..":
            if not cur and not absolute:
                return None  # above the scratch cwd
            cur = cur[:-1]
        else:
            cur = cur + (c,)
        seen.append(cur)
    link = cur
    if not link:
        return None  # the directory would be the base itself
    first = seen.index(link)
    if any(p != link for p in seen[first:]):
        return None
    if any(p[:len(link)] == link for p in seen[:first]):
        return None
    if absolute and any(len(p) == 1 and p[0] in _RESERVED for p in seen):
        return None
    dirs = sorted({p for p in seen if p and p != link}, key=len)
    return dirs, link