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
  every entry of every thread stale: renames, unlinks, chmod/chown/xattrs,
  and anything new.  Every system call that can change a name or a
  permission is emulated (sentry/policy.py), so none of them escapes this;
- a call that can only add a name (`ADDS_NAMES`: mkdir, mknod, symlink,
  link, a unix-socket bind, an open or creat with O_CREAT) makes only the
  kept ENOENTs stale: it fails rather than replace an existing name, so
  every lookup that succeeded still finds the same objects with the same
  permissions on the way, while a missing name may now exist.

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

# Handlers that change the tree only by adding a name where there was none
# (they fail with EEXIST rather than replace one); opens with O_CREAT report
# themselves (fs_open).
ADDS_NAMES = frozenset({
    "fs_dir.mkdir", "fs_dir.mkdirat", "fs_dir.mknod", "fs_dir.mknodat",
    "fs_dir.symlink", "fs_dir.symlinkat", "fs_dir.link", "fs_dir.linkat",
    "fs_open.creat", "net_socket.bind",
})

MAX_ENTRIES = 256  # O_PATH fds held per worker thread at most


class TreeEpoch:
    """Counts the sandbox's changes to its file tree: `value` any change,
    `added` names added (ADDS_NAMES).  Shared by every worker thread of
    every listener of one sandbox."""

    def __init__(self) -> None:
        self.value = 0
        self.added = 0
        self._lock = threading.Lock()  # two bumps must give two values

    def bump(self) -> None:
        with self._lock:
            self.value += 1

    def names_added(self) -> None:
        with self._lock:
            self.added += 1


class LookupCache:
    """One worker thread's (path, flags, creds) -> O_PATH fd or -ENOENT."""

    def __init__(self, epoch: TreeEpoch, root_dev: int) -> None:
        self.epoch = epoch
        self.root_dev = root_dev
        self._seen = epoch.value
        self._seen_added = epoch.added
        self._found: dict[tuple[object, ...], int] = {}    # key -> our fd
        self._missing: set[tuple[object, ...]] = set()     # keys that were ENOENT

    def since(self) -> tuple[int, int]:
        """The epoch a lookup starts in (for put)."""
        return self.epoch.value, self.epoch.added

    def get(self, key: tuple[object, ...]) -> int | None:
        """The cached fd (still ours: lent until this thread's next get or
        put), -ENOENT, or None (not cached)."""
        epoch = self.epoch
        if self._seen != epoch.value:
            self._drop_all()
            return None
        fd = self._found.get(key)
        if fd is not None:
            return fd
        if self._seen_added != epoch.added:
            self._missing.clear()
            self._seen_added = epoch.added
            return None
        return -errno.ENOENT if key in self._missing else None

    def put(self, key: tuple[object, ...], value: int, since: tuple[int, int]) -> None:
        """Enter value (our fd, duplicated here; or -ENOENT), resolved by a
        lookup that started in epoch `since`."""
        if value < 0 and value != -errno.ENOENT:
            return
        if since[0] != self.epoch.value:
            return  # the tree changed while this lookup was in flight
        if value < 0 and since[1] != self.epoch.added:
            return  # a name was added meanwhile: maybe this one
        if self._seen != since[0] or len(self._found) + len(self._missing) >= MAX_ENTRIES:
            self._drop_all()
            self._seen = since[0]
        if value < 0:
            if self._seen_added != since[1]:
                self._missing.clear()
                self._seen_added = since[1]
            self._missing.add(key)
            return
        old = self._found.pop(key, None)
        if old is not None:
            os.close(old)
        self._found[key] = os.dup(value)

    def close(self) -> None:
        self._drop_all()

    def _drop_all(self) -> None:
        self._seen = self.epoch.value
        self._seen_added = self.epoch.added
        for fd in self._found.values():
            os.close(fd)
        self._found.clear()
        self._missing.clear()
