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
- only the kernel's own resolution is kept, never what the procfs walk
  answered (sentry/procfs.py: /proc/self/cwd/..., /dev/fd/N depend on the
  calling process, which the key is not), and nothing under /proc/;
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
  link, a unix-socket bind; opens and creat with O_CREAT report the same
  themselves, fs_open) makes only the kept ENOENTs stale: it fails rather than replace an existing name, so
  every lookup that succeeded still finds the same objects with the same
  permissions on the way, while a missing name may now exist;
- an unlink reports what it removed (`REPORTS_ITSELF`, fs_dir): a name that
  was neither a directory nor a symlink makes only the kept lookups of
  non-directories stale.  Such a name can only ever be the last step of a
  resolution, so no lookup of a directory went through it, and removing a
  name never makes a missing one exist.  Anything else counts as any
  change: a directory, a symlink, an lstat that failed, and any other
  tree-changing call in progress at any time between the lstat and the
  unlink (it could have put something else at that name: TreeEpoch counts
  the calls in progress and started, sandbox-wide).

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
    "fs_dir.chdir", "fs_dir.fchdir",
    "fs_open.open_", "fs_open.openat", "fs_open.openat2", "fs_open.creat",
    "fs_attr.getxattr", "fs_attr.lgetxattr", "fs_attr.listxattr", "fs_attr.llistxattr",
    "fs_attr.fgetxattr", "fs_attr.flistxattr",
    "fs_attr.inotify_add_watch", "fs_attr.getxattrat", "fs_attr.listxattrat", "net_socket.connect",
    "proc_exec.execve", "proc_exec.execveat", "proc_creds.setuid", "proc_creds.getresuid",
    "proc_creds.getresgid", "proc_creds.getgroups", "proc_creds.capget", "proc_creds.getpgid",
    "proc_creds.getsid", "proc_creds.rt_sigpending", "proc_sched.sched_getparam",
    "proc_sched.sched_getscheduler", "proc_sched.sched_getattr", "proc_sched.sched_rr_get_interval",
    "proc_sched.sched_get_priority_max", "proc_sched.sched_get_priority_min",
    "proc_sched.getpriority", "proc_sched.ioprio_get", "proc_sched.sched_getaffinity",
    "proc_thread.get_robust_list", "sys_info.uname", "sys_info.sysinfo", "sys_info.sysfs",
    "sys_info.ustat", "sys_info.lsm_list_modules", "sys_time.time", "sys_time.times",
    "sys_time.clock_getres", "fs_fd.epoll_create", "fs_fd.epoll_create1", "fs_fd.eventfd",
    "fs_fd.eventfd2", "fs_fd.timerfd_create", "fs_fd.timerfd_gettime", "fs_fd.signalfd",
    "fs_fd.signalfd4", "fs_fd.pidfd_open", "fs_fd.inotify_rm_watch", "fs_fd.memfd_create",
    "fs_fd.memfd_secret", "fs_fd.mq_getsetattr", "fs_fd.mq_unlink", "proc_sched.getcpu",
    "proc_sched.sched_setaffinity", "fs_io.fadvise64", "fs_io.readahead", "fs_io.sync_file_range",
    "fs_io.syncfs", "fs_io.sync", "fs_io.cachestat", "net_socket.listen",
    "net_socket.socket", "net_send.sendto", "net_send.sendmsg", "net_send.sendmmsg",
   
   
})

# Handlers that change the tree only by adding a name where there was none
# (they fail with EEXIST rather than replace one); opens with O_CREAT report
# themselves (fs_open).
ADDS_NAMES = frozenset({
    "fs_dir.mkdir", "fs_dir.mkdirat", "fs_dir.mknod", "fs_dir.mknodat",
    "fs_dir.symlink", "fs_dir.symlinkat", "fs_dir.link", "fs_dir.linkat",
    "net_socket.bind",
})

# Handlers that report their change themselves (Call.name_removed), as
# precisely as they know it; the supervisor leaves them alone.
REPORTS_ITSELF = frozenset({"fs_dir.unlink", "fs_dir.unlinkat", "fs_dir.rmdir"})

MAX_ENTRIES = 256  # O_PATH fds held per worker thread at most


# What a handler's call may do to the tree (Supervisor: after the call,
# before its answer).
KEEPS, ADDS, CHANGES, REPORTS = range(4)


def tree_kinds(names: dict[object, str]) -> dict[object, int]:
    """handler -> KEEPS/ADDS/REPORTS for the handlers listed above (names:
    handler -> "module.function"); any other handler is CHANGES."""
    kinds = {}
    for h, name in names.items():
        if name in KEEPS_TREE:
            kinds[h] = KEEPS
        elif name in ADDS_NAMES:
            kinds[h] = ADDS
        elif name in REPORTS_ITSELF:
            kinds[h] = REPORTS
    return kinds


class TreeEpoch:
    """Counts the sandbox's changes to its file tree: `value` any change,
    `added` names added (ADDS_NAMES), `removed` names of non-directories
    removed; and the tree-changing calls in progress (`changing`) and
    started.  Shared by every worker thread of every listener of one
    sandbox."""

    def __init__(self) -> None:
        self.value = 0
        self.added = 0
        self.removed = 0
        self.changing = 0
        self._started = 0
        self._lock = threading.Lock()  # two bumps must give two values

    def bump(self) -> None:
        with self._lock:
            self.value += 1

    def names_added(self) -> None:
        with self._lock:
            self.added += 1

    def begin(self) -> None:
        """A call that may change the tree (not KEEPS) starts."""
        with self._lock:
            self.changing += 1
            self._started += 1

    def end(self, kind: int) -> None:
        """That call is over: count what it did (REPORTS: it said so)."""
        with self._lock:
            if kind == ADDS:
                self.added += 1
            elif kind != REPORTS:
                self.value += 1
            self.changing -= 1

    def alone(self) -> tuple[int, int] | None:
        """From a REPORTS call in progress: a mark if it is the only
        tree-changing call in progress, else None."""
        with self._lock:
            return (self.value, self._started) if self.changing == 1 else None

    def file_removed(self, mark: tuple[int, int] | None) -> None:
        """The REPORTS call that took mark removed a name that was neither
        a directory nor a symlink: precise if no other tree-changing call
        ran meanwhile, else any change."""
        with self._lock:
            if mark is not None and mark == (self.value, self._started):
                self.removed += 1
            else:
                self.value += 1

    def since(self) -> tuple[int, int, int]:
        """Where a lookup starts: (value, added, removed)."""
        return self.value, self.added, self.removed


class LookupCache:
    """One worker thread's (path, flags, creds) -> O_PATH fd or -ENOENT."""

    def __init__(self, epoch: TreeEpoch, root_dev: int) -> None:
        self.epoch = epoch
        self.root_dev = root_dev
        self._seen, self._seen_added, self._seen_removed = epoch.since()
        self._found: dict[tuple[object, ...], int] = {}    # key -> our fd
        self._dirs: set[tuple[object, ...]] = set()        # found keys naming a directory
        self._missing: set[tuple[object, ...]] = set()     # keys that were ENOENT

    def since(self) -> tuple[int, int, int]:
        """The epoch a lookup starts in (for put)."""
        return self.epoch.since()

    def get(self, key: tuple[object, ...]) -> int | None:
        """The cached fd (still ours: lent until this thread's next get or
        put), -ENOENT, or None (not cached)."""
        epoch = self.epoch
        if self._seen != epoch.value:
            self._drop_all()
            return None
        if self._seen_removed != epoch.removed:
            self._drop_files()
        fd = self._found.get(key)
        if fd is not None:
            return fd
        if self._seen_added != epoch.added:
            self._missing.clear()
            self._seen_added = epoch.added
            return None
        return -errno.ENOENT if key in self._missing else None

    def put(self, key: tuple[object, ...], value: int, since: tuple[int, int, int],
            is_dir: bool = False) -> None:
        """Enter value (our fd, duplicated here, of a directory or not; or
        -ENOENT), resolved by a lookup that started in epoch `since`."""
        if value < 0 and value != -errno.ENOENT:
            return
        epoch = self.epoch
        if since[0] != epoch.value:
            return  # the tree changed while this lookup was in flight
        if value < 0 and since[1] != epoch.added:
            return  # a name was added meanwhile: maybe this one
        if value >= 0 and not is_dir and since[2] != epoch.removed:
            return  # a file was removed meanwhile: maybe this one
        if self._seen != since[0] or len(self._found) + len(self._missing) >= MAX_ENTRIES:
            self._drop_all()
            # What was seen is what this lookup saw (drop_all read the epoch
            # again: a change since then must still be applied by get).
            self._seen, self._seen_added, self._seen_removed = since
        if value < 0:
            if self._seen_added != since[1]:
                self._missing.clear()
                self._seen_added = since[1]
            self._missing.add(key)
            return
        old = self._found.pop(key, None)
        if old is not None:
            os.close(old)
        try:
            self._found[key] = os.dup(value)  # close-on-exec
        except OSError:
            self._dirs.discard(key)  # out of fds (EMFILE): not kept
            return
        if is_dir:
            self._dirs.add(key)
        else:
            self._dirs.discard(key)

    def close(self) -> None:
        self._drop_all()

    def _drop_files(self) -> None:
        """Drop the found entries that are not directories."""
        self._seen_removed = self.epoch.removed
        found, dirs = self._found, self._dirs
        for key in [k for k in found if k not in dirs]:
            os.close(found.pop(key))

    def _drop_all(self) -> None:
        self._seen, self._seen_added, self._seen_removed = self.epoch.since()
        for fd in self._found.values():
            os.close(fd)
        self._found.clear()
        self._dirs.clear()
        self._missing.clear()
