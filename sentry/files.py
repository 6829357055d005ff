"""File access: the one interface every path-taking handler goes through.

Two implementations, chosen per sandbox (`--directfs`, the default, or
`--file-access=gofer`), with the same per-thread operations (`FileOps`):

- directfs (`DirectFS`, here): the gofer donated an fd of the container
  root at start; the sentry's worker threads make the fd-relative calls
  themselves (openat2 RESOLVE_IN_ROOT/BENEATH, mkdirat, renameat2...) with
  the target's credentials, inside the sentry's empty mount namespace and
  seccomp filter.  No cross-process round trip: the fast mode.
- gofer (`gofer.client.GoferFS`): the sentry holds no root; every
  resolution and every directory change is a request to the gofer process
  (gofer/protocol.py), which performs exactly these same operations
  (`LocalOps`, below) in its own mount namespace with its own filter and
  capabilities, and returns results and fds.

Handles: a directory is named by an fd the sentry holds (the target's cwd
or dirfd taken from /proc, an fd returned by an earlier call) or by ROOT,
the container root.  Results: fd or 0 on success, -errno on failure (no
exceptions), except `path_of`, which raises SysError.

What stays in the sentry in both modes: operations on an object that was
already resolved and handed back as an fd (fstat/statx/statfs/readlink of
it, chmod/chown/utimes/xattrs/truncate through its /proc/self/fd link,
link(2) of an object given by fd or followed to, AF_UNIX bind/connect,
inotify watches, ADDFD into the target).  They walk
no path: the fd is the object.
"""

from __future__ import annotations

import ctypes
import errno
import os
import stat as _stat
TYPE_CHECKING = False  # typing's, without importing typing (docs/performance.md, Start-up)
if TYPE_CHECKING:
    from typing import Protocol
else:
    Protocol = object  # structural for the type checker; a plain base at run time

from .hostcalls import Scratch
from .resolve import Resolver

ROOT = -1  # the container root as a handle (same value on the wire: gofer/protocol.py)
# resolve_probed's "ENOENT, and a symlink lies on the way": the kernel may
# have followed a procfs self link for the sentry, which resolves to nothing
# there; the procfs walk (sentry/procfs.py) follows it for the target.
ENOENT_VIA_LINK = -(1 << 20)

_libc = ctypes.CDLL("libc.so.6", use_errno=True)
_libc.syscall.restype = ctypes.c_long
SYS_renameat2 = 316
_O_PATH_DIR = os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC


class FileOps(Protocol):
    """One worker thread's file operations (its scratch buffers, its creds)."""

    def resolve(self, start: int, path: bytes, flags: int, mode: int,
                no_symlinks: bool = False) -> int: ...
    def resolve_probed(self, start: int, path: bytes, flags: int, mode: int) -> int: ...
    def missing_dev(self, path: bytes) -> int: ...
    def openat2(self, dirfd: int, path: bytes, flags: int, mode: int, resolve: int) -> int: ...
    def path_of(self, dirfd: int) -> bytes: ...
    def mkdirat(self, dirfd: int, name: bytes, mode: int) -> int: ...
    def mknodat(self, dirfd: int, name: bytes, mode: int, dev: int) -> int: ...
    def unlinkat(self, dirfd: int, name: bytes, flags: int) -> int: ...
    unlinked_mode: int  # after a successful unlinkat: the st_mode removed, or 0
    def symlinkat(self, target: bytes, dirfd: int, name: bytes) -> int: ...
    def renameat2(self, odir: int, oname: bytes, ndir: int, nname: bytes, flags: int) -> int: ...
    def linkat(self, odir: int, oname: bytes, ndir: int, nname: bytes, flags: int) -> int: ...
    def access(self, fd: int, mode: int) -> int: ...


def host_call(fn, *args, **kw) -> int:  # type: ignore[no-untyped-def]
    try:
        fn(*args, **kw)
    except OSError as e:
        return -(e.errno or errno.EIO)
    return 0


class LocalOps:
    """The operations themselves, on this thread, with its current credentials.

    Used by the sentry in directfs mode and by the gofer's channel threads.
    """

    def __init__(self, resolver: Resolver, scratch: Scratch) -> None:
        self.resolver = resolver
        self.root_fd = resolver.root_fd
        self.s = scratch
        self.unlinked_mode = 0  # of the last unlinkat (sentry/lookups.py)

    def _dir(self, h: int) -> int:
        return self.root_fd if h == ROOT else h

    def resolve(self, start: int, path: bytes, flags: int, mode: int,
                no_symlinks: bool = False) -> int:
        return self.resolver.open(self.s, start, path, flags | os.O_CLOEXEC, mode, no_symlinks)

    def resolve_probed(self, start: int, path: bytes, flags: int, mode: int) -> int:
        """resolve(), with ENOENT split: ENOENT_VIA_LINK when a resolution
        that refuses symlinks stops at one (ELOOP) on the way."""
        fd = self.resolver.open(self.s, start, path, flags | os.O_CLOEXEC, mode)
        if fd == -errno.ENOENT:
            probe = self.resolver.open(self.s, start, path, os.O_PATH | os.O_CLOEXEC, 0, True)
            if probe >= 0:
                os.close(probe)
            elif probe == -errno.ELOOP:
                return ENOENT_VIA_LINK
        return fd

    def missing_dev(self, path: bytes) -> int:
        """After resolve_probed's plain ENOENT of absolute path (no symlink
        on the way): the st_dev of the directory that lacks the name (its
        longest existing prefix), or -1 (sentry/lookups.py)."""
        parts = path.split(b"/")
        for n in range(len(parts) - 1, 0, -1):
            prefix = b"/".join(parts[:n]) or b"/"
            fd = self.resolver.open(self.s, -1, prefix, _O_PATH_DIR, 0, True)
            if fd >= 0:
                try:
                    return os.fstat(fd).st_dev
                finally:
                    os.close(fd)
            if fd != -errno.ENOENT:
                return -1
        return -1

    def openat2(self, dirfd: int, path: bytes, flags: int, mode: int, resolve: int) -> int:
        return self.s.openat2(self._dir(dirfd), path, flags | os.O_CLOEXEC, mode, resolve)

    def path_of(self, dirfd: int) -> bytes:
        return self.resolver.path_of(self.s, self._dir(dirfd))

    def mkdirat(self, dirfd: int, name: bytes, mode: int) -> int:
        return host_call(os.mkdir, name, mode, dir_fd=self._dir(dirfd))

    def mknodat(self, dirfd: int, name: bytes, mode: int, dev: int) -> int:
        return host_call(os.mknod, name, mode, dev if _stat.S_ISCHR(mode) else 0, dir_fd=self._dir(dirfd))

    def unlinkat(self, dirfd: int, name: bytes, flags: int) -> int:
        """unlinkat; on success unlinked_mode is the st_mode the name had
        just before (0: not known)."""
        d = self._dir(dirfd)
        try:
            self.unlinked_mode = os.stat(name, dir_fd=d, follow_symlinks=False).st_mode
        except OSError:
            self.unlinked_mode = 0
        rm = os.rmdir if flags & 0x200 else os.unlink  # AT_REMOVEDIR
        return host_call(rm, name, dir_fd=d)

    def symlinkat(self, target: bytes, dirfd: int, name: bytes) -> int:
        return host_call(os.symlink, target, name, dir_fd=self._dir(dirfd))

    def renameat2(self, odir: int, oname: bytes, ndir: int, nname: bytes, flags: int) -> int:
        r = _libc.syscall(SYS_renameat2, self._dir(odir), oname, self._dir(ndir), nname,
                          ctypes.c_uint(flags))
        return 0 if r == 0 else -ctypes.get_errno()

    def linkat(self, odir: int, oname: bytes, ndir: int, nname: bytes, flags: int) -> int:
        return host_call(os.link, oname, nname, src_dir_fd=self._dir(odir),
                     dst_dir_fd=self._dir(ndir), follow_symlinks=False)

    def access(self, fd: int, mode: int) -> int:
        return self.s.faccess_fd(fd, mode)


class DirectFS:
    """directfs: the sentry works in the root the gofer donated.

    lookup_cache: the supervisor threads keep resolved lookups until the
    sandbox changes its tree (sentry/lookups.py)."""

    mode = "directfs"

    def __init__(self, root_fd: int, root_link: bytes | None = None,
                 lookup_cache: bool = False) -> None:
        self.resolver = Resolver(root_fd, root_link)
        self.root_id = self.resolver.root_id
        self.root_link = self.resolver.root_link
        self.lookup_cache = lookup_cache

    def for_thread(self, scratch: Scratch, creds: object) -> FileOps:
        return LocalOps(self.resolver, scratch)

    def close(self) -> None:
        os.close(self.resolver.root_fd)

