"""Resolve a target's path inside the container root, the way its kernel would.

The rule to reproduce: the target's root is the container root (absolute
paths, absolute symlinks and ".." at the top stop there), and a relative
path starts at its cwd or at a dirfd.  The kernel offers "resolve in root R"
(openat2 RESOLVE_IN_ROOT: R is both the start and the root) and "resolve
beneath D" (RESOLVE_BENEATH: fail with EXDEV on anything that would leave D),
but no "start at D with root R".  So:

1. Absolute path: openat2(root, path, RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS).
2. Relative path: get the start directory D as an O_PATH fd of our own:
   /proc/TID/cwd for AT_FDCWD, /proc/TID/fd/N for a dirfd (both are magic
   links the supervisor may follow: it is root, and the links point into the
   target's mount namespace, so mounts inside the container are crossed as
   the target would cross them).  Then openat2(D, path, RESOLVE_BENEATH|
   RESOLVE_NO_MAGICLINKS): correct whenever the walk stays under D, which is
   nearly always.
3. On EXDEV (a ".." above D, or an absolute symlink on the way): compute D's
   path relative to the root, join, and resolve that with RESOLVE_IN_ROOT.
   D's path comes from readlink(/proc/self/fd/D) minus the root's own link
   text (both are d_path strings of the same mount namespace), and is
   VERIFIED: it must resolve, without any symlink, to the same (st_dev,
   st_ino) as D.  If not (names with newlines, " (deleted)", a root not
   reachable from ours), the path is rebuilt by walking ".." from D up to
   the root and looking up each name by inode; a walk that reaches the
   filesystem's top without meeting the root means D is outside the
   container: ENOENT.  The walk reads directories the caller may only
   search (a 0711 parent), so it runs with CAP_DAC_READ_SEARCH: it only
   names D, which the caller already holds, and the joined path is then
   resolved with the caller's own credentials.

Why not RESOLVE_IN_ROOT from D: it would make D the root (".." at D would
stay at D, "/x" would mean D/x): wrong for a cwd.  Why not rewrite relative
paths as cwd-path + path always: that needs the cwd's path on every call
(two extra syscalls and a verification); BENEATH first costs nothing more
than the open itself.

Invariant relied on: every directory fd the workload holds was opened by the
sentry inside the root (or inherited from the runtime, which opens none
outside it), so D itself is inside the root.

/proc inside the container: RESOLVE_NO_MAGICLINKS refuses /proc/PID/fd/*,
/proc/PID/exe... (ELOOP), and /proc/self would name the supervisor, not the
target: sentry/procfs.py handles both (called from sentry/paths.py, the one
guarded entry point every handler resolves through).
"""

from __future__ import annotations

import errno
import os
import stat as _stat

from . import ownproc
from .errors import SysError
from .hostcalls import (RESOLVE_BENEATH, RESOLVE_IN_ROOT, RESOLVE_NO_MAGICLINKS, RESOLVE_NO_SYMLINKS,
                        Scratch, capget_self, capset_self)

AT_FDCWD = -100
IN_ROOT = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS
BENEATH = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS
_O_PATH_DIR = os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC
_MAX_DEPTH = 512
_CAP_DAC_READ_SEARCH = 1 << 2


def signed_fd(arg: int) -> int:
    """A dirfd argument as the kernel reads it: the low 32 bits, signed."""
    v = arg & 0xFFFFFFFF
    return v - (1 << 32) if v & 0x80000000 else v


def open_start_dir(pid: int, dirfd: int) -> int:
    """Our O_PATH fd of the target's cwd (AT_FDCWD) or of its dirfd."""
    if dirfd == AT_FDCWD:
        where = f"{pid}/cwd"
    elif dirfd < 0:
        raise SysError(errno.EBADF, f"dirfd {dirfd}")
    else:
        where = f"{pid}/fd/{dirfd}"
    try:
        return ownproc.open_(where, _O_PATH_DIR)
    except OSError as e:
        if e.errno == errno.ENOENT:
            # No such fd (or the task is gone: the reply will not matter).
            raise SysError(errno.EBADF if dirfd != AT_FDCWD else errno.ENOENT, where) from None
        raise SysError(e.errno or errno.EIO, where) from None


class Resolver:
    """Path resolution inside one container root (shared by all threads)."""

    def __init__(self, root_fd: int, root_link: bytes | None = None) -> None:
        """root_link: the root's path as /proc/self/fd links print it (the
        gofer, which has no procfs of its own, is its own root: b"/")."""
        self.root_fd = root_fd
        st = os.fstat(root_fd)
        if not _stat.S_ISDIR(st.st_mode):
            raise ValueError("resolver: root fd is not a directory")
        self.root_id = (st.st_dev, st.st_ino)
        if root_link is None:
            root_link = ownproc.readlink(ownproc.self_fd(root_fd)).encode()
        self.root_link = root_link
        self.links_readable = True

    def open(self, s: Scratch, start: int, path: bytes, flags: int, mode: int,
             no_symlinks: bool = False) -> int:
        """openat2 of path; start is an O_PATH dir fd for relative paths (or -1).

        Returns our new fd, or -errno.  no_symlinks: fail with ELOOP at the
        first symlink (used to tell "missing" from "missing behind a link").
        """
        if not path:
            return -errno.ENOENT
        extra = RESOLVE_NO_SYMLINKS if no_symlinks else 0
        if path[0] == 0x2F or start < 0:  # b"/"
            return s.openat2(self.root_fd, path, flags, mode, IN_ROOT | extra)
        fd = s.openat2(start, path, flags, mode, BENEATH | extra)
        if fd != -errno.EXDEV:
            return fd
        try:
            base = self.path_of(s, start)
        except SysError as e:
            return -e.errno
        return s.openat2(self.root_fd, base + b"/" + path, flags, mode, IN_ROOT | extra)

    def path_of(self, s: Scratch, dirfd: int) -> bytes:
        """The path of directory dirfd relative to the root ("/" for the root)."""
        want = os.fstat(dirfd)
        want_id = (want.st_dev, want.st_ino)
        if want_id == self.root_id:
            return b""
        try:
            link = ownproc.readlink(ownproc.self_fd(dirfd)).encode() if self.links_readable else b""
        except OSError:
            link = b""  # no procfs of our own (the gofer): walk up
        rl = self.root_link
        rel = None
        if not link:
            pass
        elif rl == b"/":
            rel = link
        elif link.startswith(rl + b"/"):
            rel = link[len(rl):]
        if rel is not None and rel.startswith(b"/"):
            fd = s.openat2(self.root_fd, rel, _O_PATH_DIR, 0, IN_ROOT | RESOLVE_NO_SYMLINKS)
            if fd >= 0:
                try:
                    st = os.fstat(fd)
                finally:
                    os.close(fd)
                if (st.st_dev, st.st_ino) == want_id:
                    return rel.rstrip(b"/")
        return self._walk_up(dirfd, want_id)

    def _walk_up(self, dirfd: int, want_id: tuple[int, int]) -> bytes:
        """Rebuild dirfd's path by walking ".." up to the root (slow path),
        able to read every directory on the way (module docstring, 3)."""
        try:
            eff, perm, inh = capget_self()
        except OSError as e:
            raise SysError(e.errno or errno.EIO, "resolve: walk up: capget") from None
        lift = not eff & _CAP_DAC_READ_SEARCH and perm & _CAP_DAC_READ_SEARCH
        if lift and capset_self(eff | _CAP_DAC_READ_SEARCH, perm, inh) < 0:
            lift = False
        try:
            return self._walk_up_names(dirfd, want_id)
        except OSError as e:
            raise SysError(e.errno or errno.EIO, "resolve: walk up") from None
        finally:
            if lift and capset_self(eff, perm, inh) < 0:
                # Never seen.  The thread must not keep the capability, and
                # its credentials cache (ThreadCreds) may believe anything:
                # drop every effective capability (always allowed), so the
                # error is on the side of less.
                capset_self(0, perm, inh)
                raise SysError(errno.EPERM, "resolve: walk up: capset back")

    def _walk_up_names(self, dirfd: int, want_id: tuple[int, int]) -> bytes:
        names: list[bytes] = []
        cur = os.open(".", _O_PATH_DIR, dir_fd=dirfd)
        cur_id = want_id
        try:
            for _ in range(_MAX_DEPTH):
                if cur_id == self.root_id:
                    return b"".join(b"/" + n for n in reversed(names))
                parent = os.open("..", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=cur)
                pst = os.fstat(parent)
                if (pst.st_dev, pst.st_ino) == cur_id:
                    os.close(parent)
                    raise SysError(errno.ENOENT, "resolve: directory outside the container root")
                try:
                    names.append(self._name_in(parent, cur_id))
                except BaseException:
                    os.close(parent)
                    raise
                os.close(cur)
                cur, cur_id = parent, (pst.st_dev, pst.st_ino)
            raise SysError(errno.ENAMETOOLONG, "resolve: directory too deep")
        finally:
            os.close(cur)

    @staticmethod
    def _name_in(parent: int, child_id: tuple[int, int]) -> bytes:
        with os.scandir(parent) as it:
            for ent in it:
                try:
                    st = os.stat(ent.name, dir_fd=parent, follow_symlinks=False)
                except OSError:
                    continue
                if (st.st_dev, st.st_ino) == child_id:
                    return os.fsencode(ent.name)
        raise SysError(errno.ENOENT, "resolve: directory was removed")
