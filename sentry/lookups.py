"""The lookup cache: what the kernel resolved, kept until the sandbox
changes its file tree (gVisor's dentry cache in its default "exclusive"
file access for the root).

A stat is mostly the resolution of its path: in directfs mode an openat2
(RESOLVE_IN_ROOT) and the Python around it, in gofer mode a round trip to
the gofer (two context switches and Python on both sides).  Each worker
thread keeps the result of an absolute O_PATH lookup (stat, lstat, access,
readlink...) for exactly the path string, flags and credentials it was
resolved with:

- a hit is the O_PATH fd that resolution returned: the object the kernel
  found by RESOLVE_IN_ROOT resolution, so a hit can only ever name an object
  inside the root, and its attributes are read fresh (fstat on the fd)
  every time; only the name -> object mapping and the search permissions
  along the path are reused;
- ENOENT is kept too, when no symlink lay on the way and the directory that
  lacks the name is on the root's filesystem;
- entries are only made for objects on the root's own filesystem (never
  procfs, sysfs, tmpfs or devices: those change by themselves), and the
  cache is off when the container has directory bind mounts (the host may
  change what is under them) or `--lookup-cache=false` says the root is
  shared;
- any system call of the sandbox that is not known to leave names and
  permissions alone (`KEEPS_TREE`, checked by the supervisor after each
  handler and before the reply) bumps the sandbox's `TreeEpoch`, which makes
  every entry of every thread stale: renames, unlinks, creates,
  chmod/chown/xattrs, binds of unix sockets, and anything new.  Every system
  call that can change a name or a permission is emulated (sentry/policy.py),
  so none of them escapes this.

One cache per worker thread, like the credentials cache (sentry/creds.py):
only its owner closes its fds, so a hit can be lent to the handler without a
dup - no other thread can close that fd number under it.  A lookup that was
in flight when the tree changed does not enter its (possibly older) answer:
it is entered with the epoch it started in, and that entry is never a hit.
Like gVisor's exclusive mode, this assumes nothing outside the sandbox
renames or re-permissions the container's root while it runs; the README
says so.
"""

from __future__ import annotations

import errno
import os
import threading

# Handlers (module.function under sentry/syscalls) that change no name and
# no permission in the container's file tree.  Opens are here: an open that
# creates (O_CREAT) reports the change itself (fs_open), before the fd is
# installed.  Handlers that answer with CONTINUE (exec, chdir, setuid...)
# are all here: the kernel acts after our answer, so their change could
# not be reported in time, and none of them changes the tree.
KEEPS_TREE = frozenset({
    "fs_stat.stat", "fs_stat.lstat", "fs_stat.newfstatat", "fs_stat.statx",
    "fs_stat.access", "fs_stat.faccessat", "fs_stat.faccessat2",
    "fs_stat.readlink", "fs_stat.readlinkat", "fs_stat.statfs", "fs_stat.fstatfs",
    "fs_dir.getcwd", "fs_dir.chdir", "fs_dir.fchdir",
    "fs_open.open_", "fs_open.openat", "fs_open.openat2",
    "fs_attr.getxattr", "fs_attr.lgetxattr", "fs_attr.listxattr", "fs_attr.llistxattr",
    "fs_attr.inotify_init1", "fs_attr.inotify_add_watch",
    "net_socket.connect",
    "proc_exec.execve", "proc_exec.execveat", "proc_creds.setuid", "proc_creds.getresuid",
    "proc_creds.umask", "proc_ns.unshare",
    "sys_info.uname", "sys_info.sysinfo", "sys_info.getrusage", "sys_info.personality",
    "sys_limits.setrlimit", "sys_limits.prlimit64",
})

MAX_ENTRIES = 256  # O_PATH fds held per worker thread at most


class TreeEpoch:
    """Bumped whenever the sandbox may have changed its file tree; shared by
    every worker thread of every listener of one sandbox."""

    def __init__(self) -> None:
        self.value = 0
        self._lock = threading.Lock()  # two bumps must give two values

    def bump(self) -> None:
        with self._lock:
            self.value += 1


class LookupCache:
    """One worker thread's (path, flags, creds) -> O_PATH fd or -ENOENT."""

    def __init__(self, epoch: TreeEpoch, root_dev: int) -> None:
        self.epoch = epoch
        self.root_dev = root_dev
        self._seen = epoch.value
        self._entries: dict[tuple[object, ...], int] = {}

    def get(self, key: tuple[object, ...]) -> int | None:
        """The cached fd (still ours: lent until this thread's next get or
        put), -ENOENT, or None (not cached)."""
        if self._seen != self.epoch.value:
            self._drop_all()
            return None
        return self._entries.get(key)

    def put(self, key: tuple[object, ...], value: int, since: int) -> None:
        """Enter value (our fd, duplicated here; or -ENOENT), resolved by a
        lookup that started in epoch `since`."""
        if value < 0 and value != -errno.ENOENT:
            return
        if since != self.epoch.value:
            return  # the tree changed while this lookup was in flight
        if self._seen != since or len(self._entries) >= MAX_ENTRIES:
            self._drop_all()
        self._seen = since
        old = self._entries.pop(key, None)
        if old is not None and old >= 0:
            os.close(old)
        self._entries[key] = os.dup(value) if value >= 0 else value

    def close(self) -> None:
        self._drop_all()

    def _drop_all(self) -> None:
        self._seen = self.epoch.value
        for value in self._entries.values():
            if value >= 0:
                os.close(value)
        self._entries.clear()
