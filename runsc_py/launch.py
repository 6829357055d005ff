"""`create`: build the process tree of a container.

    runtime (this process, exits when create is done)
      `- sandbox  (the pid in the pid file; parent of init; mirrors its exit
         |         status; the sentry's home once the platform attaches)
         |- init  (pid 1 of the container; becomes the user's program)
         `- gofer (runsc-gofer: serves the container's files, gofer/)

The sandbox is what containerd's shim and conmon watch: it is reparented to
them when the runtime exits, no runtime process stays their child's parent,
and its exit status is the workload's.  Init carries PR_SET_PDEATHSIG=SIGKILL,
so killing the sandbox takes the whole container down.  See sync.py for the
messages exchanged.
"""

from __future__ import annotations

import logging
import os
import resource
import signal
import socket
from typing import Any, NoReturn

from . import filtercache, libc
from .cgroups import CgroupManager
from .errors import RuntimeFailure
from .hooks import run_hooks
from .init import standard
from .log import rfc3339
from .procs import connect, connect_start, remove_network, stop_processes  # noqa: F401  (re-exported)
from .record import Record
from .spec import RLIMITS
from .state import START_SOCKET, ContainerState, Store, proc_start_time, remove_tree
from .sandbox import SENTRY_SOCKET, SandboxHost, SandboxOptions, stage_proc
from .sync import Channel, Msg
from .timeline import mark

log = logging.getLogger(__name__)

NS_FLAGS = {
    "user": libc.CLONE_NEWUSER, "ipc": libc.CLONE_NEWIPC, "uts": libc.CLONE_NEWUTS,
    "network": libc.CLONE_NEWNET, "pid": libc.CLONE_NEWPID, "mount": libc.CLONE_NEWNS,
    "cgroup": libc.CLONE_NEWCGROUP, "time": libc.CLONE_NEWTIME,
}
# Join order: user first (it grants the rights for the others), mount late
# (it changes how later paths resolve), as runc's nsexec does.
JOIN_ORDER = ("user", "ipc", "uts", "network", "pid", "cgroup", "time", "mount")


class CreateOptions(Record):
    cid: str
    bundle: str
    pid_file: str | None = None
    console_socket: str | None = None
    no_pivot: bool = False
    preserve_fds: int = 0
    systemd_cgroup: bool = False
    platform: str = "auto"   # resolved by create (_choose_platform)
    net_raw: bool = False
    strace: bool = False
    strace_syscalls: str = ""
    file_access: str = "directfs"
    lookup_cache: bool = True
    uname_release: str = ""
    strace_format: str = "text"
    network: str = "sandbox"            # runsc_py/network: sandbox, none, host, bridge
    net_policy: dict[str, Any] | None = None  # sentry/netpolicy.py NetPolicy.to_json()
    net_log: str = ""                   # --net-log FILE
    net_log_all: bool = False           # --strace: log every network decision too
    publish: tuple[str, ...] = ()       # -p, with --network=bridge


def _lookup_cache(opts: CreateOptions, spec: dict[str, Any]) -> bool:
    """The sentry keeps lookups (sentry/lookups.py) unless told the root is
    shared, or a directory is bind-mounted in (the host may change it)."""
    if not opts.lookup_cache:
        return False
    for m in spec.get("mounts") or []:
        bind = m.get("type") == "bind" or {"bind", "rbind"} & set(m.get("options") or [])
        if bind and not os.path.isfile(m.get("source") or ""):
            log.info("lookup cache off: %s is a bind-mounted directory", m.get("destination"))
            return False
    return True


def create(store: Store, opts: CreateOptions, spec: dict[str, Any]) -> ContainerState:
    """Create the container and return its state (status created)."""
    bundle = os.path.abspath(opts.bundle)
    if "process" not in spec:
        raise RuntimeFailure("config.json: process: is required to create a container")
    root_path = (spec.get("root") or {}).get("path") or "rootfs"
    rootfs = os.path.realpath(os.path.join(bundle, root_path))
    if not os.path.isdir(rootfs):
        raise RuntimeFailure(f"rootfs ({rootfs}) does not exist")
    _check_rlimits(spec["process"].get("rlimits"))
    _check_capabilities(spec["process"].get("capabilities"))
    _check_sysctls(spec.get("linux") or {})
    if spec["process"].get("terminal") and not opts.console_socket:
        raise RuntimeFailure("cannot allocate tty if runsc-py will detach without setting console socket")
    if opts.console_socket and not spec["process"].get("terminal"):
        raise RuntimeFailure("cannot use console socket if runsc-py will not detach or allocate tty")
    _check_platform(opts.platform)

    os.makedirs(store.root, mode=0o711, exist_ok=True)
    state_dir = store.dir(opts.cid)
    try:
        os.mkdir(state_dir, 0o711)
    except FileExistsError:
        raise RuntimeFailure(f"container with id exists: {opts.cid}") from None

    # The sandbox process first: it imports the sentry and the gofer on the
    # other CPU while we probe the platform, load the filters and make the
    # cgroups, then waits for its orders (_Presandbox).
    ns: _Namespaces | None = None
    early: _Presandbox | None = None
    try:
        ns = _plan_namespaces(store, opts, spec)
        early = _Presandbox.fork(ns)
        opts.platform = _choose_platform(opts.platform)
        mark(f"create.platform-{opts.platform}")  # --platform=auto: after its probe
        sandbox_opts = _sandbox_options(opts, spec)
        sandbox_opts.bpf = filtercache.load(store.root, sandbox_opts)
        mark("create.filters")
        st = ContainerState(id=opts.cid, bundle=bundle, rootfs=rootfs, created=rfc3339(),
                            owner=_owner(), annotations=dict(spec.get("annotations") or {}),
                            platform=opts.platform,
                            sandbox={**sandbox_opts.filter_state(), "network": opts.network}, config=spec)
    except BaseException:
        if early is not None:
            early.kill()
        if ns is not None:
            ns.close_fds()
        remove_tree(state_dir)
        raise
    cg: CgroupManager | None = None
    try:
        store.save(st)
        lx = spec.get("linux") or {}
        cg = CgroupManager.for_container(opts.cid, lx, opts.systemd_cgroup)
        cg.create()
        st.cgroup = cg.to_dict()
        store.save(st)
        # Device rules are always set (the sandbox's table applies even to
        # a spec that has none: runc's defaults, then sandbox.devices).
        cg.set({"devices": [], **(lx.get("resources") or {})})
        # The sandbox joins them while it imports (a v1 hierarchy's first
        # migration waits for an RCU grace period): it forks nothing before
        # CGROUPS, so every process it makes is born in them.
        cg.apply(early.pid)
        mark("create.cgroups")
        _launch(store, st, opts, spec, cg, state_dir, sandbox_opts, early, ns)
        return st
    except BaseException:
        ns.close_fds()
        _abort(st, cg, early.pid, state_dir)
        raise


def _check_platform(asked: str) -> None:
    from sentry.platform import PLATFORMS
    if asked not in PLATFORMS:
        raise RuntimeFailure(f"platform {asked}: unknown (one of {', '.join(PLATFORMS)})")


def _choose_platform(asked: str) -> str:
    """The platform this container runs on: asked, or for `auto` what the
    probe finds (sentry/platform/probe.py), logged with the reason."""
    from sentry.platform import AUTO
    from sentry.platform import probe
    _check_platform(asked)
    if asked != AUTO:
        return asked
    chosen, why = probe.choose()
    # The fallback is worth a warning: every intercepted call then costs a
    # ptrace stop.
    log.log(logging.INFO if chosen == "seccomp" else logging.WARNING, "platform auto: %s (%s)",
            chosen, why)
    return chosen


def _sandbox_options(opts: CreateOptions, spec: dict[str, Any]) -> SandboxOptions:
    """What the sandbox process and the workload's filter need to know."""
    lx = spec.get("linux") or {}
    kinds = {n.get("type") for n in lx.get("namespaces") or []}
    ann = spec.get("annotations") or {}
    release = ann.get("dev.runsc-py.uname-release") or opts.uname_release
    return SandboxOptions(platform=opts.platform, net_raw=opts.net_raw,
                          userns="user" in kinds, strace=opts.strace,
                          strace_syscalls=opts.strace_syscalls, strace_format=opts.strace_format,
                          file_access=opts.file_access,
                          lookup_cache=_lookup_cache(opts, spec),
                          uts_private="uts" in private_namespaces(lx), uname_release=release,
                          network=opts.network)  # the sentry's filter depends on it (--network=none)


class _Namespaces(Record):
    """The container's namespaces as create plans them, before any fork."""
    net: Any                   # network/modes.py NetPlan
    new: set[str]              # types made for it
    fds: dict[str, int]        # types joined: an fd of each, opened now

    def close_fds(self) -> None:
        """Ours (the sandbox has its copies once forked); idempotent."""
        while self.fds:
            os.close(self.fds.popitem()[1])


def _plan_namespaces(store: Store, opts: CreateOptions, spec: dict[str, Any]) -> _Namespaces:
    from .network import modes
    lx = spec.get("linux") or {}
    namespaces = {n["type"]: n.get("path") or "" for n in lx.get("namespaces") or []}
    net = modes.plan(opts.network, namespaces)
    if net.mode == "host":
        namespaces.pop("network", None)  # the sandbox and the workload stay in ours
    joined = {t: _container_namespace(store, t, p) for t, p in namespaces.items() if p}
    return _Namespaces(net, {t for t, p in namespaces.items() if not p}, _open_namespaces(joined))


class _Presandbox(Record):
    """The sandbox process, forked as soon as create knows its namespaces:
    it imports what it runs (sandbox.preload: the sentry, the gofer,
    libseccomp: ~30 ms of CPU) on the other CPU while the runtime does its
    own part, then reads its orders (go): the init configuration, pickled
    on a pipe (its length first), and the sockets it serves, with
    SCM_RIGHTS on its channel.  EOF before the orders (the runtime failed
    or died) ends it."""
    pid: int
    chan: Channel          # the runtime's end of the sync channel
    orders: int            # the pipe's write end

    @classmethod
    def fork(cls, ns: _Namespaces) -> "_Presandbox":
        import pickle  # noqa: F401  (imported once, for both: go() and the child's loads)
        to_sandbox, sandbox_end = Channel.pair("runtime", "sandbox")
        orders_r, orders_w = os.pipe2(os.O_CLOEXEC)
        own_pid_ns = _sandbox_pid_namespace(ns.fds.get("pid"))
        pid = -1
        try:
            pid = os.fork()
            if pid == 0:  # ------------------------------------------ sandbox
                # Nothing may unwind from here into the runtime's own cleanup code.
                try:
                    os.close(own_pid_ns)
                    os.close(orders_w)
                    to_sandbox.sock.close()
                    _sandbox_orders(sandbox_end, orders_r, ns.fds)
                except BaseException:
                    log.exception("sandbox process failed")
                finally:
                    os._exit(1)
        except BaseException:
            for fd in (orders_r, orders_w):
                os.close(fd)
            to_sandbox.close()
            raise
        finally:
            sandbox_end.close()
            if pid != 0:
                libc.setns(own_pid_ns, libc.CLONE_NEWPID)  # our later children are ours again
                os.close(own_pid_ns)
        os.close(orders_r)
        mark("create.sandbox-forked")
        return cls(pid, to_sandbox, orders_w)

    def go(self, init_cfg: standard.InitConfig, new_ns: set[str], init_end: Channel,
           start_sock: socket.socket, sentry_sock: socket.socket) -> None:
        import pickle
        data = pickle.dumps((init_cfg, new_ns), protocol=pickle.HIGHEST_PROTOCOL)
        try:
            with open(self.orders, "wb", closefd=False) as f:
                f.write(len(data).to_bytes(8, "little") + data)
        except BrokenPipeError:
            raise RuntimeFailure("sync with sandbox: sandbox exited unexpectedly") from None
        finally:
            os.close(self.orders)
            self.orders = -1
        self.chan.send(Msg.GO, fds=[init_end.sock.fileno(), start_sock.fileno(), sentry_sock.fileno()])

    def kill(self) -> None:
        """Before go(): stop it and reap it."""
        if self.orders >= 0:
            os.close(self.orders)
            self.orders = -1
        self.chan.close()
        try:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass


def _sandbox_orders(chan: Channel, orders_r: int, ns_fds: dict[str, int]) -> NoReturn:
    """The sandbox process until its orders come (_Presandbox)."""
    mark("sandbox.forked")
    libc.set_name("runsc-sandbox")
    from .sandbox import preload
    preload()
    mark("sandbox.preloaded")
    # Length first: the pipe's write end may live on in a process forked
    # after us (the network helper), so its EOF is no end of message.
    with open(orders_r, "rb") as f:
        head = f.read(8)
        size = int.from_bytes(head, "little") if len(head) == 8 else 0
        data = f.read(size) if size else b""
    if not data or len(data) != size:  # the runtime gave up before sending them
        os._exit(1)
    import pickle
    init_cfg, new_ns = pickle.loads(data)
    _msg, fds = chan.recv(Msg.GO)
    if len(fds) != 3:
        raise RuntimeFailure("sync with runtime: go: want 3 fds")
    init_chan = Channel(socket.socket(fileno=fds[0]), "runtime")
    start_sock, sentry_sock = socket.socket(fileno=fds[1]), socket.socket(fileno=fds[2])
    _sandbox_main(chan, init_chan, start_sock, sentry_sock, init_cfg, ns_fds, new_ns)


def _launch(store: Store, st: ContainerState, opts: CreateOptions, spec: dict[str, Any],
            cg: CgroupManager, state_dir: str, sandbox_opts: SandboxOptions,
            early: _Presandbox, ns: _Namespaces) -> None:
    net, new_ns = ns.net, ns.new
    helper, net_job = _network_job(store, opts, net, st, state_dir)
    to_sandbox = early.chan
    to_init, init_end = Channel.pair("runtime", "container init")
    try:
        start_sock = _listen(state_dir, START_SOCKET)
        sentry_sock = _listen(state_dir, SENTRY_SOCKET)
        # An exec'd process announces its listener by number; the sandbox takes
        # it from the pid the kernel records with the message (sentry/handoff.py).
        # Set on the listener: a connection accepted later inherits it, and one
        # not accepted yet gets the sender's credentials anyway, so no message
        # goes without them whenever it is sent.
        sentry_sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        hook_state = {"ociVersion": spec.get("ociVersion", ""), "id": st.id, "status": "creating",
                      "pid": 0, "bundle": st.bundle, "annotations": st.annotations}
        init_cfg = standard.InitConfig(spec=spec, rootfs=st.rootfs, hook_state=hook_state,
                                       new_namespaces=new_ns, cgroup_mounts=host_cgroup_mounts(),
                                       cgroup_dirs=_cgroup_dirs(cg), state_dir=state_dir,
                                       no_pivot=opts.no_pivot, preserve_fds=opts.preserve_fds,
                                       sandbox=sandbox_opts.replace(
                                           network=net.mode, net_policy=opts.net_policy,
                                           net_log=opts.net_log, net_log_all=opts.net_log_all),
                                       loopback=("network" in new_ns or net.workload_own) and helper is None)
        try:
            early.go(init_cfg, new_ns, init_end, start_sock, sentry_sock)
        finally:
            start_sock.close()
            sentry_sock.close()
            ns.close_fds()
        mark("create.sandbox-orders")
        _drive(store, st, opts, spec, cg, early.pid, to_sandbox, to_init, new_ns, hook_state,
               helper, net_job, net)
    except BaseException:
        stop_processes(st, early.pid)
        raise
    finally:
        init_end.close()
        to_sandbox.close()
        to_init.close()
        if helper is not None:
            helper.close()


def _network_job(store: Store, opts: CreateOptions, net: Any, st: ContainerState,
                 state_dir: str) -> tuple[Any, dict[str, Any]]:
    """The network set-up helper (network/setup.py), started now so that
    pyroute2 is imported while the sandbox builds the container, and its
    job; (None, {}) when nothing needs it."""
    from sentry.netpolicy import NetPolicy
    nets = []
    if net.backstop and opts.net_policy is not None:
        nets = [str(n) for n in NetPolicy.from_json(opts.net_policy).denied_nets()]
    bridge = None
    if net.mode == "bridge":
        from .network import bridge as br
        bridge = br.plan(opts.cid, opts.publish, state_dir)
        st.sandbox["bridge"] = bridge
        store.save(st)  # what delete must remove is on record before it exists
    elif opts.publish:
        raise RuntimeFailure("--publish: needs --network=bridge")
    if not nets and bridge is None:
        return None, {}
    from .network.setup import Helper
    # lo: only in a namespace of our own, as runc (a joined one is its owner's).
    return Helper.start(), {"lo": net.spec_ns == "new" or net.workload_own, "nets": nets,
                            "bridge": bridge}


def _drive(store: Store, st: ContainerState, opts: CreateOptions, spec: dict[str, Any],
           cg: CgroupManager, pid: int, to_sandbox: Channel, to_init: Channel,
           new_ns: set[str], hook_state: dict[str, Any], helper: Any = None,
           net_job: dict[str, Any] | None = None, net: Any = None) -> int:
    """The runtime's half of the sync protocol (sync.py), from the
    sandbox's HELLO (it has its orders, and is in its cgroups)."""
    lx = spec.get("linux") or {}
    st.pid = pid
    msg, _ = to_sandbox.recv(Msg.USERNS, Msg.HELLO)
    if msg["type"] is Msg.USERNS:
        _write_id_maps(pid, lx)
        to_sandbox.send(Msg.MAPPED)
        msg, _ = to_sandbox.recv(Msg.HELLO)
    to_sandbox.send(Msg.CGROUPS)
    # Init and the gofer, as pidfds: the sandbox numbers them in its own
    # pid namespace, the state file keeps the host's numbers.
    _msg, fds = to_sandbox.recv(Msg.INIT_PID)
    try:
        if len(fds) != 2:
            raise RuntimeFailure("sync with sandbox: init_pid: want 2 pidfds")
        st.init_pid, st.gofer_pid = (_pidfd_pid(fd) for fd in fds)
    finally:
        for fd in fds:
            os.close(fd)
    st.pid_start = proc_start_time(pid) or 0
    st.init_start = proc_start_time(st.init_pid) or 0
    store.save(st)
    hook_state["pid"] = pid

    # The network, before the prestart hooks (runc's order): in the
    # workload's namespace, init's own with --network=none.
    if helper is not None and net_job is not None:
        owner = st.init_pid if net.workload_own else pid
        ans = helper.run(dict(net_job, netns=f"/proc/{owner}/ns/net"))
        if ans.get("bridge"):
            st.sandbox["bridge"] = ans["bridge"]
            store.save(st)

    to_init.recv(Msg.HOOKS)
    mark("create.init-rootfs")
    hooks = spec.get("hooks") or {}
    run_hooks("prestart", hooks.get("prestart"), hook_state)
    run_hooks("createRuntime", hooks.get("createRuntime"), hook_state)
    to_init.send(Msg.HOOKS_DONE, pid=pid)

    msg, fds = to_init.recv(Msg.CONSOLE, Msg.READY)
    if msg["type"] is Msg.CONSOLE:
        try:
            _send_console(opts.console_socket or "", fds[0])
        finally:
            for fd in fds:
                os.close(fd)
        to_init.recv(Msg.READY)

    if opts.pid_file:
        write_pid_file(opts.pid_file, pid)
    to_sandbox.send(Msg.DONE)
    mark("create.done")
    log.debug("container %s created: sandbox pid %d, init pid %d", st.id, pid, st.init_pid)
    return pid


def _sandbox_main(chan: Channel, init_chan: Channel, start_sock: socket.socket,
                  sentry_sock: socket.socket, init_cfg: standard.InitConfig, ns_fds: dict[str, int], new_ns: set[str]) -> NoReturn:
    """The sandbox process: set up namespaces, fork init, then supervise it."""
    try:
        mark("sandbox.start")
        libc.set_name("runsc-sandbox")
        os.setsid()
        staged = stage_proc()
        # Join namespaces given by path, user first.  The pid namespace is
        # entered by the short-lived forker below, never by us: the kernel
        # refuses to create threads (the sentry's workers) in a process whose
        # children's pid namespace differs from its own.
        for kind in JOIN_ORDER:
            if kind in ns_fds and kind not in ("mount", "pid"):
                libc.setns(ns_fds[kind], NS_FLAGS[kind])
        if "user" in new_ns:
            libc.unshare(libc.CLONE_NEWUSER)
            chan.send(Msg.USERNS)
            chan.recv(Msg.MAPPED)
            os.setresgid(0, 0, 0)
            os.setresuid(0, 0, 0)
        # Imports first: nothing may fork between unshare(CLONE_NEWPID) and init.
        host = SandboxHost.prepare(init_cfg.sandbox, staged)
        mark("sandbox.imported")
        chan.send(Msg.HELLO)
        chan.recv(Msg.CGROUPS)  # we are in the container's cgroups now
        # The sandbox keeps a mount namespace of its own (a private copy of
        # the host's until confine_fs empties it, leaving only the procfs
        # stage_proc made); init enters or creates the container's.
        flags = libc.CLONE_NEWNS
        for kind in new_ns - {"user", "mount", "pid"}:
            flags |= NS_FLAGS[kind]
        libc.unshare(flags)
        # Clocks of the container: its own time namespace (the spec's, or
        # one made here when it names none), in which uptime, process start
        # times and /proc/stat's btime count from its creation, as gVisor's
        # do.  Before any child exists: offsets are fixed by the first.
        lx = init_cfg.spec.get("linux") or {}
        born = None
        if "time" in new_ns:
            _set_time_offsets(lx.get("timeOffsets") or {})
        elif not any(n.get("type") == "time" for n in lx.get("namespaces") or []):
            born = _own_clocks()
        host.open_limits(init_cfg.cgroup_dirs, born)
        mark("sandbox.namespaces")
        libc.mount(None, "/", None, libc.MS_SLAVE | libc.MS_REC)
        mount_ns_fd = ns_fds.pop("mount", -1)
        pid_ns_fd = ns_fds.pop("pid", -1)
        for fd in ns_fds.values():
            os.close(fd)
        alive_r, alive_w = os.pipe()
        handoff_init, handoff_sentry = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        # Init is forked by a short-lived child that enters the container's
        # pid namespace; we are a child subreaper, so init becomes our child
        # when that forker exits.
        libc.prctl(libc.PR_SET_CHILD_SUBREAPER, 1)
        pid_r, pid_w = os.pipe()
        forker = os.fork()
        if forker == 0:  # ------------------------------------ init's forker
            try:
                os.close(pid_r)
                # Init gets a mount namespace of its own from here (a copy of
                # ours, with the host's view it needs to build the rootfs),
                # so that we can then shrink ours (confine_fs below).
                libc.unshare(libc.CLONE_NEWNS)
                # A pid namespace for the container even when the spec asks
                # for none: the host's is never shared, and ours (the
                # sandbox's, with the sentry and the gofer in it) is never
                # shown to the workload.  gVisor does the same.
                if pid_ns_fd >= 0:
                    libc.setns(pid_ns_fd, libc.CLONE_NEWPID)
                else:
                    libc.unshare(libc.CLONE_NEWPID)
                # --network=none: the workload's own namespace, away from the
                # spec's (which we keep, for the engine to configure).
                if init_cfg.sandbox.network == "none":
                    libc.unshare(libc.CLONE_NEWNET)
                init_pid = os.fork()
                if init_pid == 0:  # ------------------------------------ init
                    os.close(host.proc_fd)
                    os.close(pid_w)
                    os.close(alive_w)
                    chan.sock.close()
                    handoff_sentry.close()
                    sentry_sock.close()
                    standard.run(init_cfg, init_chan, start_sock, alive_r, mount_ns_fd, handoff_init)
                os.write(pid_w, str(init_pid).encode())
            finally:
                os._exit(0)
        os.close(pid_w)
        os.waitpid(forker, 0)
        data = os.read(pid_r, 32)
        os.close(pid_r)
        if not data:
            raise RuntimeFailure("sandbox: could not fork the container's init")
        init_pid = int(data)
        if pid_ns_fd >= 0:
            os.close(pid_ns_fd)
        os.close(alive_r)
        handoff_init.close()
        if mount_ns_fd >= 0:
            os.close(mount_ns_fd)
        init_chan.close()
        start_sock.close()
        # The gofer: forked now (init has its own copy of every fd it needs
        # already, so it never holds the gofer's socket), attached to the
        # container's mount namespace when init hands itself over.
        mark("sandbox.init-forked")
        host.start_gofer()
        mark("sandbox.gofer-forked")
        init_pidfd = libc.pidfd_open(init_pid)
        chan.send(Msg.INIT_PID, fds=[init_pidfd, host.gofer_pidfd])
    except BaseException as e:
        log.debug("sandbox set-up failed", exc_info=True)
        chan.error(f"sandbox: {getattr(e, 'strerror', None) or e}")
        os._exit(1)
    from .init.process import cap_mask
    caps = (init_cfg.spec.get("process") or {}).get("capabilities") or {}
    _supervise(chan, init_pid, init_pidfd, host, handoff_sentry, sentry_sock, init_cfg.state_dir,
               cap_mask(caps.get("bounding")))


def _supervise(chan: Channel, init_pid: int, pidfd: int, host: "SandboxHost", handoff: socket.socket,
               sentry_sock: socket.socket, state_dir: str, workload_caps: int) -> NoReturn:
    """Wait for init and exit as it did; meanwhile host the sentry.
    workload_caps: the container's bounding set (the sentry keeps those).

    Events: the runtime's DONE (or its death, which aborts), init's listener
    on the handoff socketpair, listeners of `exec`'d processes on sentry.sock,
    init's exit.  Signals sent to us are forwarded to init.
    """
    # Nothing of the caller's stdio stays open here: the shim waits for EOF.
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)
    libc.prctl(libc.PR_SET_DUMPABLE, 0)
    # The sentry sees no file of the host or the container by path: its
    # root becomes an empty read-only tmpfs holding only the sandbox
    # namespace's procfs (container files are reached through the gofer).
    host.confine_fs(state_dir)

    def forward(sig: int, _frame: object) -> None:
        try:
            os.kill(init_pid, sig)
        except ProcessLookupError:
            pass

    # Every signal sent to us goes to init.  As the first process of our pid
    # namespace we would otherwise ignore the ones we do not handle; before,
    # their default action killed us and so the container.  Not forwarded:
    # those the kernel raises for a fault of our own, and SIGCHLD.
    for sig in signal.valid_signals() - _NOT_FORWARDED:
        signal.signal(sig, forward)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)

    import select
    import time
    peers_ok = _runtime_uids()
    # From here on the sandbox process runs under its own allowlist
    # (sentry/self_filter.py): no exec, mount, namespaces, ptrace, bpf...
    host.confine(workload_caps)
    mark("sandbox.confined")
    poller = select.poll()
    for fd in (chan.sock.fileno(), pidfd, handoff.fileno(), sentry_sock.fileno(), host.gofer_pidfd):
        poller.register(fd, select.POLLIN)
    watching_chan = True
    # Connections on sentry.sock waiting for their listener (`exec`): fd ->
    # (socket, deadline).  Never read blocking: a peer that connects and
    # sends nothing must not stall the mirroring of init's exit.
    pending: dict[int, tuple[socket.socket, float]] = {}
    while True:
        wait_ms = None
        if pending:
            wait_ms = max(0, int((min(d for _, d in pending.values()) - time.monotonic()) * 1000) + 1)
        try:
            events = poller.poll(wait_ms)
        except InterruptedError:
            continue
        fds = {fd for fd, _ev in events}
        now = time.monotonic()
        for fd, (conn, deadline) in list(pending.items()):
            if fd in fds:
                del pending[fd]
                poller.unregister(fd)
                with conn:
                    host.attach(conn, init_pid)
            elif now >= deadline:
                del pending[fd]
                poller.unregister(fd)
                conn.close()
                log.warning("sandbox: a peer on %s sent no listener in %.0f s: closed",
                            SENTRY_SOCKET, _PEER_TIMEOUT)
        for fd, ev in events:
            if ev & select.POLLNVAL:  # never spin on a dead descriptor
                poller.unregister(fd)
        if pidfd in fds:
            break
        if host.gofer_pidfd in fds:
            # No half-working container: without its gofer the sandbox ends.
            log.error("sandbox: the gofer exited; killing the container")
            os.kill(init_pid, signal.SIGKILL)
            poller.unregister(host.gofer_pidfd)
        if watching_chan and chan.sock.fileno() in fds:
            try:
                chan.recv(Msg.DONE)
            except Exception:
                os.kill(init_pid, signal.SIGKILL)  # the runtime died mid-create
                break
            poller.unregister(chan.sock.fileno())
            chan.close()
            watching_chan = False
        if handoff.fileno() in fds:
            # init's listener, sent right before it execs the user's program
            host.attach(handoff, init_pid, init_pid)
            poller.unregister(handoff.fileno())
            handoff.close()
        if sentry_sock.fileno() in fds:
            try:
                conn, _ = sentry_sock.accept()
            except OSError:
                continue
            uid = _peer_uid(conn)
            if uid not in peers_ok:
                log.warning("sandbox: refused a peer on %s with uid %s", SENTRY_SOCKET, uid)
                conn.close()
                continue
            conn.settimeout(_PEER_TIMEOUT)  # the message is there when it polls readable
            pending[conn.fileno()] = (conn, time.monotonic() + _PEER_TIMEOUT)
            poller.register(conn.fileno(), select.POLLIN)
    try:
        status = host.wait_init(init_pid)
    except ChildProcessError:
        os._exit(1)
    mark("sandbox.init-exited")
    host.drain()
    mark("sandbox.drained")
    host.stop_gofer()
    mark("sandbox.exit")
    _exit_like(status)


_PEER_TIMEOUT = 5.0


def _peer_uid(conn: socket.socket) -> int | None:
    """The uid of conn's peer (SO_PEERCRED), as our user namespace sees it."""
    import struct
    try:
        _pid, uid, _gid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
    except OSError:
        return None
    return uid


def _runtime_uids() -> set[int]:
    """The uids a peer on sentry.sock may have: root, as our user namespace
    sees the host's root (the runtime's `exec`): 0, its mapped id, or the
    overflow uid when it is not mapped."""
    out = {0}
    try:
        with open("/proc/self/uid_map") as f:
            lines = [ln.split() for ln in f if ln.strip()]
    except OSError:
        return out
    identity = any(int(a) == 0 and int(b) == 0 for a, b, _n in lines)
    if identity:
        return out
    for ns_start, host_start, n in lines:
        if int(host_start) <= 0 < int(host_start) + int(n):
            out.add(int(ns_start) - int(host_start))
            return out
    out.add(65534)  # the kernel's overflowuid: host root is not mapped here
    return out


_NOT_FORWARDED = {signal.SIGKILL, signal.SIGSTOP, signal.SIGCHLD, signal.SIGPIPE, signal.SIGSEGV,
                  signal.SIGBUS, signal.SIGFPE, signal.SIGILL, signal.SIGSYS, signal.SIGTRAP,
                  signal.SIGABRT}


def _exit_like(status: int) -> NoReturn:
    """Exit as init did.  A signal is re-raised on ourselves when we can
    die of it; as the first process of our pid namespace we cannot (the
    kernel ignores it), and exit with 128 + the signal, the status that
    containerd, conmon and `runsc-py run` report for a signalled init."""
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        try:
            signal.signal(sig, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, [sig])
            os.kill(os.getpid(), sig)
        except (OSError, ValueError):
            pass
        os._exit(128 + sig)
    os._exit(os.waitstatus_to_exitcode(status) & 0xFF)


# --- helpers --------------------------------------------------------------------

def _set_time_offsets(offsets: dict[str, Any]) -> None:
    """The spec's linux.timeOffsets for the new time namespace."""
    lines = []
    for clock in ("monotonic", "boottime"):
        o = offsets.get(clock)
        if o:
            lines.append(f"{clock} {int(o.get('secs', 0))} {int(o.get('nanosecs', 0))}\n")
    if lines:
        try:
            _write_timens_offsets("".join(lines))
        except OSError as e:
            raise RuntimeFailure(f"linux.timeOffsets: write /proc/self/timens_offsets: {e.strerror}") from None


def _own_clocks() -> int | None:
    """A time namespace for the container whose boot and monotonic clocks
    start now; returns the host's boot clock (whole seconds) where the
    container's starts, or None (logged) on a kernel without time
    namespaces."""
    import time
    try:
        libc.unshare(libc.CLONE_NEWTIME)
    except OSError as e:
        log.debug("no time namespace (%s): the container sees the host's uptime", e.strerror)
        return None
    mono = int(time.clock_gettime(time.CLOCK_MONOTONIC))
    boot = int(time.clock_gettime(time.CLOCK_BOOTTIME))
    _write_timens_offsets(f"monotonic {-mono} 0\nboottime {-boot} 0\n")
    return boot


def _write_timens_offsets(text: str) -> None:
    """Write /proc/self/timens_offsets.  In a user namespace of its own
    the sandbox is not dumpable (its ids changed), so its /proc/self files
    belong to the host's root, not to it: it is dumpable for the length of
    the write (nothing else exists yet that could attach)."""
    was = libc.prctl(libc.PR_GET_DUMPABLE, 0)
    if not was:
        libc.prctl(libc.PR_SET_DUMPABLE, 1)
    try:
        with open("/proc/self/timens_offsets", "w") as f:
            f.write(text)
    finally:
        if not was:
            libc.prctl(libc.PR_SET_DUMPABLE, 0)


def _sandbox_pid_namespace(joined: int | None) -> int:
    """Make our next child (the sandbox process) start in a pid namespace
    of its own; return an fd of ours, to go back to once it is forked.

    The sandbox is then the first process of that namespace; the gofer and
    the container's own pid namespace live inside it.  When it dies, the
    kernel kills everything in it.  A container that joins another one's
    pid namespace (a pod sharing pids) gets its sandbox started in the
    namespace that contains the joined one: that of the other sandbox.
    When that is the host's (the joined namespace was not made by runsc-py,
    or is the host's own), the sandbox stays in the host's, and so does its
    sentry's view of /proc; a warning says so.
    """
    own = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    try:
        if joined is None:
            libc.unshare(libc.CLONE_NEWPID)
            return own
        try:
            parent = libc.ns_parent(joined)
        except OSError:  # EPERM: the host's own namespace has no parent we may see
            parent = os.dup(own)
        try:
            if os.fstat(parent).st_ino == os.fstat(own).st_ino:
                log.warning("sandbox: the joined pid namespace is not a runsc-py container's: "
                            "the sandbox process and its sentry's /proc stay in the host's "
                            "pid namespace")
            libc.setns(parent, libc.CLONE_NEWPID)
        finally:
            os.close(parent)
        return own
    except BaseException:
        os.close(own)
        raise


def _pidfd_pid(pidfd: int) -> int:
    """The pid of PIDFD's process in our pid namespace (its fdinfo)."""
    with open(f"/proc/self/fdinfo/{pidfd}", "rb") as f:
        for line in f:
            if line.startswith(b"Pid:"):
                pid = int(line.split()[1])
                if pid > 0:
                    return pid
    raise RuntimeFailure(f"sync with sandbox: pidfd {pidfd}: process not found")


def _cgroup_dirs(cg: CgroupManager) -> dict[str, str]:
    d = cg.to_dict()
    dirs = {k: v for k, v in (d.get("paths") or {}).items() if k}
    if d.get("unified"):
        dirs["unified"] = d["unified"]
    elif d.get("mode") == "v2" and (d.get("paths") or {}).get(""):
        dirs["unified"] = d["paths"][""]
    return dirs


def host_cgroup_mounts() -> list[tuple[str, str]]:
    """The host's cgroup hierarchies as (directory name, mount options).

    A container's `cgroup` mount reproduces them: one cgroup2 mount on a
    unified host, a tmpfs of per-controller mounts on v1/hybrid hosts.
    """
    out: list[tuple[str, str]] = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            pre, _, post = line.partition(" - ")
            fields = pre.split()
            fstype, _src, superopts = (post.split() + ["", "", ""])[:3]
            mnt = fields[4]
            if fstype not in ("cgroup", "cgroup2") or not mnt.startswith("/sys/fs/cgroup"):
                continue
            if mnt == "/sys/fs/cgroup" and fstype == "cgroup2":
                return [("", "cgroup2")]
            opts = [o for o in superopts.split(",") if o not in ("rw", "ro")]
            out.append((os.path.basename(mnt), "cgroup2" if fstype == "cgroup2" else ",".join(opts)))
    return out


def _container_namespace(store: Store, kind: str, path: str) -> str:
    """PATH, or the container's namespace when PATH names a sandbox's own.

    Clients join a container's namespaces through the pid they were given:
    CRI puts /proc/<sandbox container's pid>/ns/pid in every container of a
    pod with shareProcessNamespace, podman does the same for pods.  Our pid is
    the sandbox process, whose pid namespace is the host's and whose mount
    namespace is its confined view; the container's are those of its init.
    (Its ipc, uts, net, cgroup and user namespaces are the container's.)"""
    parts = os.path.normpath(path).split("/")
    if kind not in ("pid", "mount") or len(parts) != 5 or parts[:2] != ["", "proc"] \
            or parts[3] != "ns" or not parts[2].isdigit():
        return path
    pid = int(parts[2])
    for cid in store.ids():
        try:
            st = store.load(cid)
        except RuntimeFailure:
            continue
        if st.pid == pid and st.init_pid and proc_start_time(pid) == st.pid_start:
            if proc_start_time(st.init_pid) != st.init_start:
                raise RuntimeFailure(f"namespace {kind} {path}: container {cid} is not running")
            return f"/proc/{st.init_pid}/ns/{parts[4]}"
    return path


def _open_namespaces(joined: dict[str, str]) -> dict[str, int]:
    fds: dict[str, int] = {}
    try:
        for kind, path in joined.items():
            try:
                fds[kind] = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError as e:
                raise RuntimeFailure(f"open namespace {kind} {path}: {e.strerror}") from None
    except BaseException:
        for fd in fds.values():
            os.close(fd)
        raise
    return fds


def _listen(state_dir: str, name: str) -> socket.socket:
    """A listening socket in the state dir, bound through a short /proc path
    (state dirs can be longer than sun_path allows), mode 0600 whatever the
    caller's umask: only root may connect (init's start, the sentry's
    listener hand-off: both act on the container)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dfd = os.open(state_dir, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    path = f"/proc/self/fd/{dfd}/{name}"
    old = os.umask(0o177)  # the runtime is single-threaded here
    try:
        sock.bind(path)
        os.chmod(path, 0o600)
    except BaseException:
        sock.close()
        raise
    finally:
        os.umask(old)
        os.close(dfd)
    sock.listen(8)
    return sock


def _write_id_maps(pid: int, lx: dict[str, Any]) -> None:
    for kind, key in (("uid", "uidMappings"), ("gid", "gidMappings")):
        maps = lx.get(key) or []
        if not maps:
            continue
        text = "".join(f"{m['containerID']} {m['hostID']} {m['size']}\n" for m in maps)
        try:
            with open(f"/proc/{pid}/{kind}_map", "w") as f:
                f.write(text)
        except OSError as e:
            raise RuntimeFailure(f"write {kind}_map: {e.strerror}") from None


def _send_console(path: str, master: int) -> None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
        socket.send_fds(sock, [b"/dev/ptmx"], [master])
    except OSError as e:
        raise RuntimeFailure(f"send console to socket {path}: {e.strerror}") from None
    finally:
        sock.close()


def write_pid_file(path: str, pid: int) -> None:
    """Digits only, no newline, atomically (temp file + rename)."""
    path = os.path.abspath(path)
    tmp = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.{os.getpid()}")
    try:
        with open(tmp, "w") as f:
            f.write(str(pid))
        os.rename(tmp, path)
    except OSError as e:
        raise RuntimeFailure(f"write pid file {path}: {e.strerror}") from None


def _check_rlimits(rlimits: list[dict[str, Any]] | None) -> None:
    """Fail early, with a clear message, on limits this host cannot grant."""
    if not rlimits or _has_cap_sys_resource():
        return
    for r in rlimits:
        _soft, hard = resource.getrlimit(RLIMITS[r["type"]])
        if hard != resource.RLIM_INFINITY and r["hard"] > hard:
            raise RuntimeFailure(
                f"process.rlimits: {r['type']} hard limit {r['hard']} is above this host's hard "
                f"limit {hard} and CAP_SYS_RESOURCE is not available to raise it")


def private_namespaces(lx: dict[str, Any]) -> set[str]:
    """The namespace kinds of the spec that will not be the host's (ours):
    new ones, and joined ones that are not ours."""
    out = set()
    for n in lx.get("namespaces") or []:
        kind, path = n.get("type"), n.get("path")
        if not path:
            out.add(kind)
            continue
        name = "mnt" if kind == "mount" else kind
        try:
            if os.stat(path).st_ino != os.stat(f"/proc/self/ns/{name}").st_ino:
                out.add(kind)
        except OSError:
            pass  # not readable: counts as the host's (fail closed)
    return out


def _check_sysctls(lx: dict[str, Any]) -> None:
    """linux.sysctl: only what Linux keeps per namespace, and only for a
    namespace the container does not share with the host (runc's rule;
    sentry/kernobj.py has the table).  init writes them before the sandbox
    exists, as root: a host-wide one (kernel.core_pattern...) would be a
    host escape written by the spec."""
    sysctls = lx.get("sysctl") or {}
    if not sysctls:
        return
    from sentry.kernobj import NAMESPACED_SYSCTLS
    private = private_namespaces(lx)
    if "network" in private:
        private.add("net")
    for key in sysctls:
        name = key.replace(".", "/")
        ns = next((ns for prefix, (ns, _why) in NAMESPACED_SYSCTLS.items()
                   if name == prefix or (prefix.endswith("/") and name.startswith(prefix))), None)
        if ns is None:
            raise RuntimeFailure(f"sysctl {key!r} is not in a separate kernel namespace")
        if ns not in private:
            what = "network" if ns == "net" else ns
            raise RuntimeFailure(f"sysctl {key!r} is not allowed in the host's {what} namespace")


def _check_capabilities(caps: dict[str, list[str]] | None) -> None:
    """Capabilities outside our own bounding set cannot be granted: say which."""
    if not caps:
        return
    from .spec import CAP_NUMBERS
    bnd = _status_mask("CapBnd")
    missing = sorted({c for lst in caps.values() for c in lst if not bnd & (1 << CAP_NUMBERS[c])})
    if missing:
        raise RuntimeFailure(f"process.capabilities: {', '.join(missing)} not in the runtime's "
                             "bounding set: this host cannot grant them")


def _status_mask(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1], 16)
    return 0


def _has_cap_sys_resource() -> bool:
    return bool(_status_mask("CapEff") & (1 << 24))


def _owner() -> str:
    try:
        import pwd
        return pwd.getpwuid(os.geteuid()).pw_name
    except (KeyError, ImportError):
        return str(os.geteuid())


def _abort(st: ContainerState, cg: CgroupManager | None, sandbox_pid: int, state_dir: str) -> None:
    """Undo a failed create: no process, cgroup or state may stay behind."""
    stop_processes(st, sandbox_pid or st.pid)
    remove_network(st)
    if cg is not None:
        try:
            cg.kill_all(signal.SIGKILL)
            cg.destroy()
        except Exception as e:  # cleanup continues whatever happens
            log.warning("cleanup of cgroup failed: %s", e)
    remove_tree(state_dir)
