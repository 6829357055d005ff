"""The lookup cache of gofer mode: what the kernel resolved, kept until the
sandbox changes its file tree (gVisor's dentry cache in its default
"exclusive" file access).

In gofer mode every resolution is a round trip to the gofer (two context
switches and Python on both sides: most of a `stat`).  The cache keeps the
result of an absolute O_PATH lookup (stat, lstat, access, readlink...) for
exactly the path string, flags and credentials it was resolved with:

- a hit returns a duplicate of the O_PATH fd the gofer returned: the object
  the kernel found by RESOLVE_IN_ROOT resolution, so a hit can only ever
  name an object inside the root, and its attributes are read fresh
  (fstat on the fd) every time; only the name -> object mapping and the
  search permissions along the path are reused;
- ENOENT is kept too, when the directory that lacks the name is known;
- entries are only made for objects on the root's own filesystem (never
  procfs, sysfs, tmpfs or devices: those change by themselves), and the
  cache is off when the container has directory bind mounts (the host may
  change what is under them) or `--lookup-cache=false` says the root is
  shared;
- any system call of the sandbox that is not known to leave names and
  permissions alone (`KEEPS_TREE`, checked by the supervisor after each
  handler and before the reply) makes every entry stale: renames, unlinks,
  creates, chmod/chown/xattrs, binds of unix sockets, and anything new.

Invalidation is a generation counter: a lookup that was in flight when the
tree changed does not enter its (possibly older) answer.  Like gVisor's
exclusive mode, this assumes nothing outside the sandbox renames or
re-permissions the container's root while it runs; the README says so.
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

MAX_ENTRIES = 256  # O_PATH fds held by the sentry at most


class LookupCache:
    """(path, flags, creds) -> O_PATH fd or -ENOENT, for one sandbox's root."""

    def __init__(self, root_dev: int) -> None:
        self.root_dev = root_dev
        self.generation = 0
        self._lock = threading.Lock()
        self._entries: dict[tuple[object, ...], tuple[int, int]] = {}  # key -> (gen, value)

    def get(self, key: tuple[object, ...]) -> int | None:
        """A new fd of the cached object, -ENOENT, or None (not cached)."""
        e = self._entries.get(key)
        if e is None or e[0] != self.generation:
            return None
        value = e[1]
        if value < 0:
            return value
        with self._lock:
            e = self._entries.get(key)
            if e is None or e[0] != self.generation:
                return None
            return os.dup(e[1])  # close-on-exec: os.dup makes it non-inheritable

    def put(self, key: tuple[object, ...], value: int, generation: int) -> None:
        """Enter value (our fd, duplicated here; or -ENOENT) resolved in generation."""
        if value < 0 and value != -errno.ENOENT:
            return
        with self._lock:
            if generation != self.generation:
                return  # the tree changed while this lookup was in flight
            if len(self._entries) >= MAX_ENTRIES:
                self._drop_all()
            old = self._entries.pop(key, None)
            if old is not None and old[1] >= 0:
                os.close(old[1])
            self._entries[key] = (generation, os.dup(value) if value >= 0 else value)

    def changed(self) -> None:
        """The tree may have changed: every entry is stale (closed lazily)."""
        with self._lock:
            self.generation += 1
            if len(self._entries) >= MAX_ENTRIES // 2:
                self._drop_all()

    def close(self) -> None:
        with self._lock:
            self.generation += 1
            self._drop_all()

    def _drop_all(self) -> None:
        for _gen, value in self._entries.values():
            if value >= 0:
                os.close(value)
        self._entries.clear()
