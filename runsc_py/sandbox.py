"""The sandbox process's side of the sentry: receive listeners, serve them.

The sandbox process (launch.py) is the parent of the container's init and
the first process of a pid namespace of its own, which holds the gofer and
the container's pid namespace (the sandbox namespace).  Notifications carry
pids as the receiving sentry sees them, so the sentry's /proc is a procfs of
that namespace: it shows the sandbox's processes and nothing of the host's
(no /proc/1/root of the host's init, no /proc/sys).  Each process that enters
the sandbox (init right before it execs the user's program, every `exec`)
installs the workload filter and sends its listener here; each listener gets
a Supervisor (sentry/supervisor.py) with its own worker threads.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from typing import Any

from .record import Record

log = logging.getLogger(__name__)

SENTRY_SOCKET = "sentry.sock"


class SandboxOptions(Record):
    platform: str = "seccomp"
    net_raw: bool = False
    userns: bool = False
    strace: bool = False
    strace_syscalls: str = ""      # comma-separated names; empty: all
    strace_format: str = "text"    # or "json": one object per call
    file_access: str = "directfs"  # or "gofer": every file operation is a gofer request
    lookup_cache: bool = False     # sentry/lookups.py
    uts_private: bool = False      # the UTS namespace is the container's own (not the host's)
    uname_release: str = ""        # what uname(2) reports ("": the host's, uname native)
    # kind -> seccomp program ("workload", "sentry", "gofer"), from the
    # runtime's cache (filtercache.py); not kept in the state file
    bpf: dict[str, bytes] = {}

    # The fields the workload's filter depends on: kept in the state file,
    # so that an `exec` builds the very filter init got.
    FILTER_FIELDS = ("net_raw", "uts_private", "uname_release", "strace")

    def filter_state(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.FILTER_FIELDS}

    @classmethod
    def from_state(cls, platform: str, state: dict[str, Any]) -> "SandboxOptions":
        return cls(platform=platform, **{k: state[k] for k in cls.FILTER_FIELDS if k in state})


def policy_options(opts: SandboxOptions) -> Any:
    from sentry.policy import PolicyOptions
    return PolicyOptions(net_raw=opts.net_raw, uts_private=opts.uts_private,
                         uname_release=opts.uname_release, trace_refused=opts.strace)


def prepare_filter(opts: SandboxOptions) -> Any:
    """Build the workload filter now (imports, BPF): before any pivot_root or
    setns into the container's mount namespace hides the host's files."""
    from sentry.install import PreparedFilter
    from sentry.install import prepare_filter as _prepare
    if "workload" in opts.bpf:
        return PreparedFilter(opts.bpf["workload"])
    return _prepare(policy_options(opts))


def enter(prepared: Any, sock: socket.socket, no_new_privs: bool = False) -> None:
    """Install the prepared filter and hand the listener to the sentry.

    Called while the process still holds CAP_SYS_ADMIN (in its user
    namespace), so no_new_privs is set only when the spec asks for it.
    Everything after this runs under the sentry.
    """
    from sentry.install import send_listener
    fd = prepared.install(no_new_privs)
    send_listener(sock, fd)


def stage_proc() -> tuple[int, dict[str, str]]:
    """Make the sentry's /proc now, while we still hold the host's rights:
    (a detached procfs mount, the host's namespaces as their links read).

    Called first thing in the sandbox process, before it enters a user
    namespace: a procfs is owned by the user namespace of its pid namespace,
    and ours was made by the (host's) runtime.  The mount stays detached
    until SandboxHost.confine_fs attaches it.  `subset=pid` leaves out every
    system-wide file (/proc/sys, /proc/kcore, sysrq-trigger): the sentry
    reads only /proc/PID/* and /proc/self/*.  The host's namespaces (ours:
    nothing is unshared yet but the pid namespace) are read here too: the
    container's sysctls of a namespace it shares with the host are host-wide
    (sentry/kernobj.py).
    """
    from . import libc
    host_ns = {}
    for kind in _SYSCTL_NS:
        try:
            host_ns[kind] = os.readlink(f"/proc/self/ns/{kind}")
        except OSError:
            host_ns[kind] = ""  # not known: the container's counts as shared
    fd = libc.fsmount_new("proc", {"subset": "pid"},
                          libc.MOUNT_ATTR_NOSUID | libc.MOUNT_ATTR_NODEV | libc.MOUNT_ATTR_NOEXEC)
    return fd, host_ns


# Namespaces whose sysctls a container may write when they are its own.
_SYSCTL_NS = ("net", "uts", "ipc", "user")


class SandboxHost(Record):
    options: SandboxOptions
    dispatch: list[Any] = []  # syscall number -> handler
    _sandbox: Any = None
    _threads: list[threading.Thread] = []
    _gofer: socket.socket | None = None
    gofer_pid: int = -1
    gofer_pidfd: int = -1
    proc_fd: int = -1                           # the sentry's /proc, detached (stage_proc)
    host_ns: dict[str, str] = {}  # the host's namespace links
    limits: Any = None                          # sentry.synth.Limits: the container's cgroups
    prepared: dict[str, Any] = {}  # "sentry"/"gofer" -> PreparedFilter

    @classmethod
    def prepare(cls, options: SandboxOptions, staged: tuple[int, dict[str, str]]) -> "SandboxHost":
        """STAGED: what stage_proc() made."""
        # Import everything the sentry needs while the host's files are visible.
        import sentry.call  # noqa: F401
        import sentry.self_filter  # noqa: F401
        import sentry.strace  # noqa: F401
        import seccomp  # noqa: F401
        import sentry.handoff  # noqa: F401
        import sentry.supervisor
        import gofer.client  # noqa: F401
        import gofer.server  # noqa: F401
        import gofer.filter  # noqa: F401
        # Build the dispatch table now (it imports every handler module):
        # after confine_fs the sentry can no longer read the host's files.
        from sentry.install import PreparedFilter
        host = cls(options, sentry.supervisor.build_dispatch(policy_options(options)),
                   proc_fd=staged[0], host_ns=staged[1],
                   prepared={k: PreparedFilter(v) for k, v in options.bpf.items()
                             if k in ("sentry", "gofer")})
        # What is made so far (modules, tables) lives as long as the
        # sandbox: out of the collector's reach, also in init and the
        # gofer, which fork from here (a collection writes to every object
        # it scans, so each would copy those pages for itself).
        import gc
        gc.freeze()
        return host

    def open_limits(self, cgroup_dirs: dict[str, str], born: int | None = None) -> None:
        """Open the container's cgroup directories and read the host's
        facts (sentry/synth.py), while the host's files are visible.
        born: the host's boot clock where the container's time namespace
        starts its clocks (None: now)."""
        from sentry.synth import Limits
        self.limits = Limits.open(cgroup_dirs, born)

    def start_gofer(self) -> None:
        """Fork the gofer (gofer/server.py); it waits for `attach`."""
        from . import libc
        from gofer import server
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        # Opened here: the gofer shares our mount namespace until it
        # attaches, and we are about to pivot into an empty one.
        null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # --------------------------------------------- gofer
            try:
                _close_all_but({theirs.fileno(), null} | _log_fds())
                server.main(theirs, null, parent, self.prepared.get("gofer"))
            finally:
                os._exit(1)
        os.close(null)
        theirs.close()
        self._gofer = ours
        self.gofer_pid = pid
        self.gofer_pidfd = libc.pidfd_open(pid)

    def stop_gofer(self) -> None:
        """Close the control socket (the gofer exits on EOF) and reap it,
        woken by its pidfd (readable once it has exited), not by polling."""
        import select
        if self._gofer is None:
            return
        self._gofer.close()
        self._gofer = None
        if self.gofer_pidfd >= 0:
            poller = select.poll()
            poller.register(self.gofer_pidfd, select.POLLIN)
            poller.poll(2000)
        try:
            pid, _ = os.waitpid(self.gofer_pid, os.WNOHANG)
        except ChildProcessError:
            return
        if pid:
            return
        os.kill(self.gofer_pid, 9)
        try:
            os.waitpid(self.gofer_pid, 0)
        except ChildProcessError:
            pass

    def confine_fs(self, workdir: str) -> None:
        """pivot_root into an empty read-only tmpfs with only /proc (the
        sandbox namespace's procfs from stage_proc, whose pids match the
        notifications).  Our mount namespace is private; WORKDIR (any
        existing directory) is the mount point."""
        from . import libc
        libc.mount("tmpfs", workdir, "tmpfs", libc.MS_NOSUID | libc.MS_NODEV | libc.MS_NOEXEC,
                   "size=16k,mode=0555")
        os.mkdir(os.path.join(workdir, "proc"), 0o555)
        libc.move_mount(self.proc_fd, os.path.join(workdir, "proc"))
        os.close(self.proc_fd)
        self.proc_fd = -1
        os.chdir(workdir)
        libc.pivot_root(".", ".")
        libc.umount2(".", libc.MNT_DETACH)
        os.chdir("/")
        libc.mount(None, "/", None, libc.MS_REMOUNT | libc.MS_BIND | libc.MS_RDONLY
                   | libc.MS_NOSUID | libc.MS_NODEV | libc.MS_NOEXEC)

    def confine(self) -> None:
        """Install the sentry's own seccomp filter on this (single-threaded)
        process, once its procfs fd is open: the filter refuses AT_FDCWD."""
        import gc
        from sentry import ownproc, self_filter
        ownproc.reset("/proc")
        # Always enforcing: no environment switch turns it into log-only (a
        # runtime inherits whatever environment containerd or a shim has).
        self_filter.install(self.prepared.get("sentry"))
        # The start-up is over: the collector (off in the launcher) runs
        # again, over what the sentry allocates from now on (prepare froze
        # what was there).
        gc.enable()

    def drain(self, timeout: float = 1.0) -> None:
        """Let the supervisors finish (they stop when every target is gone),
        so no answer or log line is cut off by our exit."""
        import time
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))

    def attach(self, sock: socket.socket, init_pid: int) -> None:
        """Receive one listener from SOCK and start serving it."""
        from sentry.call import Sandbox, SentryOptions
        from sentry.handoff import HandoffError, receive_listener
        from sentry.supervisor import Supervisor
        try:
            fd = receive_listener(sock)
        except (HandoffError, OSError) as e:
            log.warning("sentry: refused a listener: %s", e)
            return
        if self._sandbox is None:
            from .timeline import mark
            mark("sentry.attach")
            files = self._attach_gofer(init_pid)
            mark("sentry.gofer-attached")
            so = SentryOptions(release=self.options.uname_release,
                               userns=self.options.userns,
                               policy=policy_options(self.options),
                               container_pidns=_ns_link(init_pid, "pid"),
                               private_ns=self._private_ns(init_pid))
            self._sandbox = Sandbox(files, so, self.limits)
        sup = Supervisor(fd, self._sandbox, dispatch=self.dispatch)
        if self.options.strace:
            from sentry import strace
            from sentry.policy import syscall_numbers
            names = {nr: name for name, nr in syscall_numbers().items()}
            only = {n.strip() for n in self.options.strace_syscalls.split(",") if n.strip()} or None
            sup.dispatch = strace.wrap(sup.dispatch, names, only, self.options.strace_format)
            logger = logging.getLogger("sentry.strace")
            logger.setLevel(logging.INFO)
            if self.options.strace_format == "json" and not logger.handlers:
                for h in logging.getLogger().handlers:
                    if isinstance(h, logging.FileHandler):
                        # The file is open already: our root holds no path.
                        strace.json_handler(logging.StreamHandler(h.stream))
                        break
        t = threading.Thread(target=sup.serve, name=f"sentry-listener-{fd}", daemon=True)
        t.start()
        self._threads.append(t)
        log.debug("sentry: serving listener %d (sync wake-up: %s)", fd, sup.sync_wakeup)


    def _private_ns(self, init_pid: int) -> frozenset[str]:
        """The container's namespaces (of _SYSCTL_NS) that are not the
        host's: an unreadable link counts as shared (fail closed)."""
        out = set()
        for kind in _SYSCTL_NS:
            mine = _ns_link(init_pid, kind)
            if mine and self.host_ns.get(kind) and mine != self.host_ns[kind]:
                out.add(kind)
        return frozenset(out)

    def _attach_gofer(self, init_pid: int) -> Any:
        """The gofer joins init's mount namespace (final once init hands
        itself over) and gives us the root: kept (directfs) or only its
        identity (gofer mode)."""
        from gofer import client
        from sentry.files import DirectFS
        assert self._gofer is not None, "attach before start_gofer"
        from sentry import ownproc
        ns = ownproc.open_(f"{init_pid}/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
        try:
            root_fd = client.attach(self._gofer, ns)
        finally:
            os.close(ns)
        if self.options.file_access == "gofer":
            return client.GoferFS(self._gofer, root_fd, self.options.lookup_cache)
        return DirectFS(root_fd, lookup_cache=self.options.lookup_cache)


def _ns_link(pid: int, kind: str) -> str:
    """pid's namespace of this kind as its link reads ("net:[N]"), through
    the sentry's procfs; "" if it cannot be read."""
    from sentry import ownproc
    try:
        return ownproc.readlink(f"{pid}/ns/{kind}")
    except OSError:
        return ""


def _log_fds() -> set[int]:
    """Descriptors of the log files (the gofer logs where the sandbox does;
    never the caller's stdio, whose EOF a shim waits for)."""
    fds = set()
    for h in logging.getLogger().handlers:
        stream = getattr(h, "stream", None)
        try:
            if isinstance(h, logging.FileHandler) and stream is not None:
                fds.add(stream.fileno())
        except (OSError, ValueError):
            pass
    return fds


def _close_all_but(keep: set[int]) -> None:
    low = 3
    for fd in sorted(k for k in keep if k >= 3):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, 1 << 20)
