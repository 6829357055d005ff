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

import os
from runsc_py import sockets  # socket's API without socket.py's enums (sockets.py)
import threading
TYPE_CHECKING = False  # typing's, without importing typing (docs/performance.md, Start-up)
if TYPE_CHECKING:
    from typing import Any

from .record import Record
from runsc_py.log import INFO, get_logger, log_fds

log = get_logger(__name__)

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
    network: str = "sandbox"       # runsc_py/network/modes.py
    net_policy: dict[str, Any] | None = None  # sentry/netpolicy.py, as JSON
    net_log: str = ""              # --net-log FILE (opened before we confine ourselves)
    net_log_all: bool = False      # --strace: every decision to the log too
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


def dispatch_for(want: Any, prebuilt: Any = None) -> list[Any]:
    """The sentry's dispatch table for the PolicyOptions WANT: preload's
    (PREBUILT: its options and table) if made for exactly those, else
    built now."""
    import sentry.supervisor
    if prebuilt is not None and prebuilt[0] == want:
        return prebuilt[1]
    return sentry.supervisor.build_dispatch(want)


def prepare_filter(opts: SandboxOptions) -> Any:
    """Build the workload filter now (imports, BPF): before any pivot_root or
    setns into the container's mount namespace hides the host's files."""
    from sentry.install import prepare_filter as _prepare
    cached = opts.bpf.get("workload")  # the runtime's cache (filtercache.py), for this platform
    return _prepare(None if cached is not None else policy_options(opts), opts.platform, cached,
                    opts.bpf.get("guard"))


def enter(prepared: Any, sock: sockets.socket, no_new_privs: bool = False) -> None:
    """Install the prepared filter and hand the workload to the sentry: its
    listener (seccomp), or itself to the tracer (ptrace, which attaches
    before the filters go in: sentry/platform/ptrace_entry.py).

    Called with no_new_privs set already, or while the process still holds
    CAP_SYS_ADMIN (in its user namespace): no_new_privs is set only when
    the spec asks for it (init/process.py identity_before_handoff).
    Everything after this runs under the sentry.
    """
    prepared.enter(sock, no_new_privs)


def preload(platform: str = "auto", policy: tuple[bool, bool, str, bool] | None = None) -> Any:
    """Import what the sandbox process runs whatever the platform: the
    sentry (its handlers come with sentry.call, every one through the
    dispatch table) and the gofer.  The sandbox does it as soon as it is
    forked, while the runtime finishes its part of create: it was the
    longer of the two paths, so what is needed only some of the time is
    imported when it is (by prepare(), before the sandbox leaves the host's
    files): libseccomp, for a program the runtime did not send, and
    --strace's wrapper.  POLICY: the fields of the PolicyOptions the
    runtime will send (presandbox.py policy_fields): the dispatch table is
    built from them now, returned as (PolicyOptions, table) for prepare()
    to take if they match."""
    import sentry.call  # noqa: F401
    import sentry.self_filter  # noqa: F401
    import sentry.handoff  # noqa: F401
    import sentry.supervisor  # noqa: F401
    import sentry.netguard  # noqa: F401
    import gofer.client  # noqa: F401
    import gofer.server  # noqa: F401
    if policy is None or policy[3]:
        import sentry.strace  # noqa: F401
    if platform == "ptrace":
        import sentry.platform.ptrace  # noqa: F401
        # init builds its own guard of the reserved descriptor when its
        # hard RLIMIT_NOFILE moves it (platform/ptrace_entry.py), after
        # pivot_root: libseccomp must be loaded before init is forked.
        import seccomp  # noqa: F401
    if policy is not None:
        from sentry.policy import PolicyOptions
        net_raw, uts_private, release, trace = policy
        po = PolicyOptions(net_raw=net_raw, uts_private=uts_private, uname_release=release,
                           trace_refused=trace)
        return po, sentry.supervisor.build_dispatch(po)  # imports every handler module
    # The handler modules (the container's dispatch table is built from its
    # options in prepare).
    sentry.supervisor.import_handlers()
    return None


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
    _sentry_options: Any = None                 # sentry.call.SentryOptions (prepare_sentry)
    _threads: list[threading.Thread] = []
    _gofer: sockets.socket | None = None
    gofer_pid: int = -1
    gofer_pidfd: int = -1
    gofer_retired: bool = False                 # directfs: its exit, once it gave the root, is expected
    _ptrace: Any = None                         # sentry.platform.ptrace.PtraceSupervisor
    proc_fd: int = -1                           # the sentry's /proc, detached (stage_proc)
    host_ns: dict[str, str] = {}  # the host's namespace links
    limits: Any = None                          # sentry.synth.Limits: the container's cgroups
    prepared: dict[str, Any] = {}  # "sentry"/"gofer" -> PreparedFilter
    names: Any = None                           # sentry.unixnames.NameMirror (confine)
    net_log_fd: int = -1                        # --net-log, opened before confine_fs
    _workload_netns: int = -1                   # --network=none: init's namespace
    _ready: Any = None                          # (serve, worker) ReadyThreads for init's listener
    _init_dispatch: Any = None                  # (dispatch, its tree kinds) for init's listener
    _gofer_attach_sent: bool = False            # send_gofer_attach

    @classmethod
    def prepare(cls, options: SandboxOptions, staged: tuple[int, dict[str, str]],
                prebuilt: Any = None) -> "SandboxHost":
        """STAGED: what stage_proc() made.  PREBUILT: preload()'s
        (PolicyOptions, dispatch table), taken if made for these options."""
        # Import everything the sentry needs while the host's files are
        # visible (done already, ahead of the orders: presandbox.py, but
        # for the platform `auto` chose).
        if options.platform == "ptrace":
            import sentry.platform.ptrace  # noqa: F401
            import seccomp  # noqa: F401  (preload's reason)
        if options.strace:
            import sentry.strace  # noqa: F401
        if not {"sentry", "gofer", "workload"} <= options.bpf.keys():
            # The runtime sends every program (filtercache.load builds what
            # its cache lacks); without one, it is built here, init and
            # the gofer (forked from us) included, before any of us leaves
            # the host's files.
            import seccomp  # noqa: F401
            import sentry.filter  # noqa: F401
        dispatch = dispatch_for(policy_options(options), prebuilt)
        log_fd = -1
        if options.net_log:
            try:
                log_fd = os.open(options.net_log, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC,
                                 0o640)
            except OSError as e:
                raise OSError(e.errno, f"network log {options.net_log}: {e.strerror}") from None
        from sentry.install import PreparedFilter
        host = cls(options, dispatch,
                   proc_fd=staged[0], host_ns=staged[1], net_log_fd=log_fd,
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
        ours, theirs = sockets.socketpair(sockets.AF_UNIX, sockets.SOCK_SEQPACKET)
        # Opened here: the gofer shares our mount namespace until it
        # attaches, and we are about to pivot into an empty one.
        null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # --------------------------------------------- gofer
            try:
                _close_all_but({theirs.fileno(), null} | log_fds())  # the gofer logs where we do
                server.main(theirs, null, parent, self.prepared.get("gofer"))
            finally:
                os._exit(1)
        os.close(null)
        theirs.close()
        self._gofer = ours
        self.gofer_pid = pid
        self.gofer_pidfd = libc.pidfd_open(pid)

    def retire_gofer(self) -> None:
        """directfs: the gofer has given the root, which is all it does in
        this mode (nothing else ever asks it anything), so it goes: its
        control socket is closed, it exits on the EOF, and the supervision
        loop reaps it (its pidfd turns readable; gofer_retired says that
        is no failure).  One Python process fewer per sandbox (its memory:
        docs/performance.md, Density), and no process holding the
        container's root but the sentry."""
        if self._gofer is not None:
            self._gofer.close()
            self._gofer = None
        self.gofer_retired = True

    def reap_gofer(self) -> None:
        """The retired gofer has exited: reap it, drop its pidfd."""
        try:
            os.waitpid(self.gofer_pid, os.WNOHANG)
        except ChildProcessError:
            pass
        if self.gofer_pidfd >= 0:
            os.close(self.gofer_pidfd)
            self.gofer_pidfd = -1

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
        """pivot_root into an empty tmpfs with only /proc (the
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
        # Writable: the sentry's scratch tree for AF_UNIX names
        # (sentry/unixnames.py); nothing else is ever written there.
        libc.mount(None, "/", None, libc.MS_REMOUNT | libc.MS_BIND
                   | libc.MS_NOSUID | libc.MS_NODEV | libc.MS_NOEXEC)

    # Capabilities the sentry never uses, for itself or for a caller (its
    # workers never carry CAP_SYS_ADMIN, _MODULE, _RAWIO or SYSLOG to a
    # caller's operation: sentry/creds.py _NEVER; network calls are made
    # without CAP_NET_ADMIN: net_socket.NetCaps), dropped for good before its
    # filter: a compromised sentry then cannot reconfigure the network it
    # lives in (the host's with --network=host), load modules, read the
    # kernel log or do raw I/O.  Except those the workload may hold: the
    # kernel compares permitted sets (cap_safe_nice, cap_ptrace_access_check:
    # a task whose set is not within the sentry's needs CAP_SYS_NICE or
    # CAP_SYS_PTRACE in the caller's name), so the sentry keeps a superset
    # of the workload's bounding set, and CAP_SYS_ADMIN with --network=none,
    # where its threads setns into the workload's network namespace.
    _NEVER_CAPS = {
        "NET_ADMIN": 12, "SYS_MODULE": 16, "SYS_RAWIO": 17, "SYS_PACCT": 20, "SYS_ADMIN": 21,
        "SYS_BOOT": 22, "SYS_TIME": 25, "SYS_TTY_CONFIG": 26, "LEASE": 28, "AUDIT_WRITE": 29,
        "AUDIT_CONTROL": 30, "MAC_OVERRIDE": 32, "MAC_ADMIN": 33, "SYSLOG": 34, "WAKE_ALARM": 35,
        "BLOCK_SUSPEND": 36, "AUDIT_READ": 37, "PERFMON": 38, "BPF": 39, "CHECKPOINT_RESTORE": 40,
    }

    def _drop_capabilities(self, workload_caps: int) -> None:
        """workload_caps: the spec's bounding set (a mask), kept."""
        from . import libc
        from sentry import hostcalls
        drop = {c for c in self._NEVER_CAPS.values() if not workload_caps >> c & 1}
        if self.options.network == "none":
            drop.discard(21)  # CAP_SYS_ADMIN: setns
        try:
            with open("/proc/sys/kernel/cap_last_cap") as f:
                last = int(f.read())
        except (OSError, ValueError):
            last = 40
        mask = 0
        for cap in sorted(drop):
            if cap <= last:
                mask |= 1 << cap
                try:
                    libc.prctl(libc.PR_CAPBSET_DROP, cap)
                except OSError:
                    pass  # not in our bounding set already (a user namespace's)
        eff, perm, inh = hostcalls.capget_self()
        r = hostcalls.capset_self(eff & ~mask, perm & ~mask, inh & ~mask)
        if r < 0:
            raise OSError(-r, "sandbox: drop capabilities")

    def confine(self, workload_caps: int = ~0) -> None:
        """Install the sentry's own seccomp filter on this (single-threaded)
        process, once its procfs fd is open: the filter refuses AT_FDCWD."""
        import gc
        from sentry import ownproc, self_filter
        from sentry.unixnames import NameMirror
        ownproc.reset("/proc")
        self.names = NameMirror(os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC))
        self._drop_capabilities(workload_caps)
        # Always enforcing: no environment switch turns it into log-only (a
        # runtime inherits whatever environment containerd or a shim has).
        # The cached program (filtercache.py) was built for these same
        # join_netns and platform: they are in its key.
        self_filter.install(self.prepared.get("sentry"), join_netns=self.options.network == "none",
                            platform=self.options.platform)
        # The start-up is over: the collector (off in the launcher) runs
        # again, over what the sentry allocates from now on (prepare froze
        # what was there).
        gc.enable()

    def tidy(self) -> None:
        """Once the container has started and the sandbox has been idle a
        while (_supervise): the start-up's garbage goes, and the heap's free
        pages back to the kernel.  gc.freeze() in prepare kept everything
        made until then out of the collector's reach (init and the gofer
        were still to be forked from here); the cycles among it are
        collected now, and malloc_trim returns what the start-up freed.
        Not in gofer mode, whose gofer still shares our pages: a
        collection writes to every object it scans, and each page it
        touches would then be copied, not freed."""
        if self.options.file_access == "gofer":
            return
        import gc
        from . import libc
        gc.unfreeze()
        gc.collect()
        gc.freeze()
        libc.malloc_trim()

    def drain(self, timeout: float = 1.0) -> None:
        """Let the supervisors finish (they stop when every target is gone),
        so no answer or log line is cut off by our exit."""
        import time
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        if self._ptrace is not None:
            self._ptrace.drain(max(0.0, deadline - time.monotonic()))

    def attach(self, sock: sockets.socket, init_pid: int, pid: int = 0) -> None:
        """Receive one process from SOCK (sent by PID, 0: the socket's peer)
        and start serving it: its listener (seccomp), or the process itself
        to trace (ptrace)."""
        if self.options.platform == "ptrace":
            self._attach_traced(sock, init_pid)
            return
        from sentry.handoff import HandoffError, receive_listener
        from sentry.supervisor import Supervisor
        try:
            fd = receive_listener(sock, pid)
        except (HandoffError, OSError) as e:
            log.warning("sentry: refused a listener: %s", e)
            return
        made, self._init_dispatch = self._init_dispatch, None
        dispatch, kinds = made if made is not None else (self._dispatch(), None)
        sup = Supervisor(fd, self._sentry_sandbox(init_pid), dispatch=dispatch, kinds=kinds)
        ready, self._ready = self._ready, None
        if ready is not None:  # init's listener: its threads are waiting (prepare_sentry)
            serve, worker = ready
            serve.hand(lambda: self._serve(sup, worker))
            t = serve
        else:
            t = threading.Thread(target=self._serve, args=(sup,), name=f"sentry-listener-{fd}", daemon=True)
            t.start()
        self._threads.append(t)
        log.debug("sentry: serving listener %d (sync wake-up: %s)", fd, sup.sync_wakeup)

    def _attach_traced(self, sock: sockets.socket, init_pid: int) -> None:
        """The ptrace platform: a tracer thread seizes the process, then it
        is told so (sentry/platform/ptrace_entry.py waits for that)."""
        from sentry.handoff import ATTACHED, HandoffError, receive_attach
        from sentry.platform.ptrace import PtraceSupervisor, platform_dispatch
        try:
            req = receive_attach(sock)
        except (HandoffError, OSError) as e:
            log.warning("sentry: refused an attach request: %s", e)
            return
        try:
            if req.pid != init_pid and _ns_link(req.pid, "pid") != _ns_link(init_pid, "pid"):
                raise HandoffError(f"process {req.pid} is not in the container's pid namespace")
            sandbox = self._sentry_sandbox(init_pid)
            if self._ptrace is None:
                self._ptrace = PtraceSupervisor(sandbox, self._dispatch(platform_dispatch(self.dispatch)),
                                                thread_setup=self._join_workload_netns)
            self._ptrace.attach(req.pid, req.send, req.drain, req.reserved, watch=req.pid == init_pid)
            sock.sendall(ATTACHED)
            log.debug("sentry: tracing %d", req.pid)
        except (HandoffError, OSError) as e:
            log.warning("sentry: could not trace %d: %s", req.pid, e)
            req.send.close()
            req.drain.close()
        finally:
            os.close(req.pidfd)

    def wait_init(self, init_pid: int) -> int:
        """init's wait status once it has exited.  On the ptrace platform its
        tracer (a thread of ours, as is its parent) reaps it: ask it."""
        while self._ptrace is not None:
            st = self._ptrace.exit_status(init_pid, 0.2)
            if st is not None:
                return st
            if not self._ptrace.tracing:
                # Its tracer ended without seeing it exit (a tracer failure:
                # EXITKILL killed it): it is our child again.
                break
        return os.waitpid(init_pid, 0)[1]

    def prepare_sentry(self, init_pid: int) -> None:
        """What the sentry's first attach needs and init's hand-over does
        not change, made while the sandbox waits for that hand-over rather
        than after it, on the workload's way to its first instruction: its
        options (init's pid namespace and which of its namespaces are the
        container's own are fixed when init is forked; the network policy);
        the ctypes types of a worker's buffers (warm_thread_types); on the
        seccomp platform, the threads that serve init's listener and the
        dispatch table's tree kinds (~0.4 ms)."""
        from sentry.call import SentryOptions, warm_thread_types
        from sentry.creds import Creds
        if self.options.platform != "ptrace" and self._sandbox is None and self._ready is None:
            # The threads that will serve init's listener, started now
            # while we wait for it rather than after its hand-over, on the
            # workload's way to its first instruction.  The worker is
            # started by our thread, not by the serve thread that joins the
            # workload's network namespace: it joins it itself.
            from sentry.lookups import tree_kinds
            from sentry.supervisor import ReadyThread, handler_names
            self._ready = (ReadyThread("sentry-listener"),
                           ReadyThread("sentry-0", setup=self._join_workload_netns))
            dispatch = self._dispatch()
            self._init_dispatch = (dispatch, tree_kinds(handler_names(dispatch)))
        if self._sentry_options is None:
            warm_thread_types()
            self._sentry_options = SentryOptions(release=self.options.uname_release,
                                                 userns=self.options.userns,
                                                 policy=policy_options(self.options),
                                                 container_pidns=_ns_link(init_pid, "pid"),
                                                 private_ns=self._private_ns(init_pid),
                                                 net=self._net_guard())
            Creds(0, 0, 0, 0, (), 0, 0)  # its first one compiles its __init__ (record.py)

    def _sentry_sandbox(self, init_pid: int) -> Any:
        """The container as the sentry knows it (made on the first attach:
        the gofer joins init's mount namespace then)."""
        from sentry.call import Sandbox
        if self._sandbox is None:
            from .timeline import mark
            mark("sentry.attach")
            files = self._attach_gofer(init_pid)
            mark("sentry.gofer-attached")
            if self.options.file_access != "gofer":
                self.retire_gofer()
            self.prepare_sentry(init_pid)
            self._sandbox = Sandbox(files, self._sentry_options, self.limits, self.names)
            if self.options.network == "none":
                from sentry import ownproc
                self._workload_netns = ownproc.open_(f"{init_pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        return self._sandbox

    def _dispatch(self, table: list[Any] | None = None) -> list[Any]:
        """The dispatch table (or TABLE: the platform's), wrapped for --strace."""
        if table is None:
            table = self.dispatch
        if self.options.strace or (self.options.net_policy or {}).get("log"):
            get_logger("sentry.net").setLevel(INFO)  # every network decision
        if not self.options.strace:
            return table
        from sentry import strace
        from sentry.policy import syscall_numbers
        names = {nr: name for name, nr in syscall_numbers().items()}
        only = {n.strip() for n in self.options.strace_syscalls.split(",") if n.strip()} or None
        dispatch = strace.wrap(table, names, only, self.options.strace_format)
        get_logger("sentry.strace").setLevel(INFO)
        if self.options.strace_format == "json":
            strace.json_lines()  # into the log file, if there is one
        return dispatch


    def _private_ns(self, init_pid: int) -> frozenset[str]:
        """The container's namespaces (of _SYSCTL_NS) that are not the
        host's: an unreadable link counts as shared (fail closed)."""
        out = set()
        for kind in _SYSCTL_NS:
            mine = _ns_link(init_pid, kind)
            if mine and self.host_ns.get(kind) and mine != self.host_ns[kind]:
                out.add(kind)
        return frozenset(out)

    def _serve(self, sup: Any, first: Any = None) -> None:
        """A supervisor's thread: with --network=none it first joins the
        workload's network namespace (namespaces are per thread; the
        workers it starts inherit it), so the netlink sockets the sentry
        makes for the workload see the workload's interfaces, while our
        main thread, whose namespace is what /proc/<pid>/ns/net shows the
        engine, stays in the spec's.  first: a ReadyThread for the first
        worker (it joins the namespace itself)."""
        if self._join_workload_netns():
            sup.serve(first)
        elif first is not None:
            first.hand(None)

    def _join_workload_netns(self) -> bool:
        """With --network=none, the calling (sentry) thread joins the
        workload's network namespace (see _serve); False if it could not."""
        if self._workload_netns >= 0:
            from . import libc
            try:
                libc.setns(self._workload_netns, libc.CLONE_NEWNET)
            except OSError as e:
                log.error("sentry: join the workload's network namespace: %s", e.strerror)
                return False
        return True

    def _net_guard(self) -> Any:
        """The network policy the handlers check (sentry/netguard.py)."""
        from sentry.netguard import NetGuard
        from sentry.netpolicy import NetPolicy
        pol = self.options.net_policy
        if pol is None:
            return None
        return NetGuard(NetPolicy.from_json(pol), log_fd=self.net_log_fd,
                        log_strace=self.options.net_log_all or bool(pol.get("log")))

    def send_gofer_attach(self, init_pid: int) -> None:
        """Ask the gofer to join init's mount namespace now, once `create`
        is done (init's rootfs is final: pivoted, masked, read-only), so
        that its root is here when init hands itself over (_attach_gofer)
        rather than a round trip later, on the workload's way to its first
        instruction.  A failure is left to _attach_gofer to meet."""
        from gofer import client
        if self._gofer is None or self._gofer_attach_sent or self._sandbox is not None:
            return
        try:
            self._send_attach(init_pid)
        except (client.GoferGone, OSError) as e:
            log.debug("sandbox: early gofer attach: %s", e)

    def _send_attach(self, init_pid: int) -> None:
        """ATTACH's request to the gofer: init's mount namespace."""
        from gofer import client
        from sentry import ownproc
        ns = ownproc.open_(f"{init_pid}/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
        try:
            client.attach_send(self._gofer, ns)
            self._gofer_attach_sent = True
        finally:
            os.close(ns)

    def _attach_gofer(self, init_pid: int) -> Any:
        """The gofer joins init's mount namespace (asked already once
        `create` was done: send_gofer_attach) and gives us the root: kept
        (directfs) or only its identity (gofer mode)."""
        from gofer import client
        from sentry.files import DirectFS
        assert self._gofer is not None, "attach before start_gofer"
        if not self._gofer_attach_sent:
            self._send_attach(init_pid)
        root_fd = client.attach_reply(self._gofer)
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


def _close_all_but(keep: set[int]) -> None:
    low = 3
    for fd in sorted(k for k in keep if k >= 3):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, 1 << 20)
