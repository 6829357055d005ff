"""`create`: build the process tree of a container.

    runtime (this process, exits when create is done)
      `- sandbox  (the pid in the pid file; parent of init; mirrors its exit
         |         status; the sentry's home once the platform attaches)
         |- init  (pid 1 of the container; becomes the user's program)
         `- gofer (runsc-gofer: serves the container's files, gofer/;
                   directfs: gives the sentry the root at the start, exits)

The sandbox is what containerd's shim and conmon watch: it is reparented to
them when the runtime exits, no runtime process stays their child's parent,
and its exit status is the workload's.  Init carries PR_SET_PDEATHSIG=SIGKILL,
so killing the sandbox takes the whole container down.  See sync.py for the
messages exchanged.
"""

from __future__ import annotations

import os
import resource
import _signal  # signal.py's C module: signal.py imports enum (runsc_py/signals.py)
from runsc_py import sockets  # socket's API without socket.py's enums (sockets.py)
TYPE_CHECKING = False  # typing's, without importing typing (docs/performance.md, Start-up)
if TYPE_CHECKING:
    from typing import Any, Callable

from . import filtercache
from .cgroups import CgroupManager
from .errors import RuntimeFailure
from .hooks import run_hooks
from .init import standard
from .log import rfc3339
from .procs import connect, connect_start, remove_network, stop_processes  # noqa: F401  (re-exported)
from .record import Record
from .spec import RLIMITS
from .state import START_SOCKET, ContainerState, Store, proc_start_time, remove_tree
from .presandbox import JOIN_ORDER, NS_FLAGS, Presandbox, private_namespaces, uname_release  # noqa: F401  (NS_FLAGS, JOIN_ORDER: re-exported)
from .sandbox import SENTRY_SOCKET, SandboxOptions
from .sync import Channel, Msg
from .timeline import mark
from runsc_py.log import INFO, WARNING, get_logger

log = get_logger(__name__)

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


def create(store: Store, opts: CreateOptions, spec: dict[str, Any], early: Presandbox,
           policy: Callable[[], dict[str, Any]] | None = None) -> ContainerState:
    """Create the container and return its state (status created).  EARLY:
    the sandbox process, forked already (presandbox.py); the caller kills
    it if this fails before it is handed its orders.  POLICY: makes
    opts.net_policy, once the cgroups are on their way."""
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

    try:
        st = ContainerState(id=opts.cid, bundle=bundle, rootfs=rootfs, created=rfc3339(),
                            owner=_owner(), annotations=dict(spec.get("annotations") or {}),
                            platform=opts.platform, sandbox={"network": opts.network}, config=spec)
        lx = spec.get("linux") or {}
        cg = CgroupManager.for_container(opts.cid, lx, opts.systemd_cgroup)
        st.cgroup = cg.to_dict()  # on record before it exists: what delete removes
    except BaseException:
        remove_tree(state_dir)
        raise
    applying: _Background | None = None
    try:
        store.save(st)
        cg.create()
        # The sandbox joins them, and their limits are set, in a thread
        # while we choose the platform, load the filters and write its
        # orders, and it imports: the first migration waits for an RCU grace
        # period (the writer side of the cgroup threadgroup lock: 12-20 ms
        # here under load), so it starts as early as it can and goes first,
        # as runc applies before it sets.  Joined before CGROUPS (and before
        # any other fork): the sandbox forks nothing before then, so every
        # process it makes is born in them, limited.  Device rules are
        # always set (the sandbox's table applies even to a spec that has
        # none: runc's defaults, then sandbox.devices).
        applying = _Background("cgroups", _apply_and_set, cg, early.pid,
                               {"devices": [], **(lx.get("resources") or {})})
        # The platform probe's thread, after that one (whose wait for a
        # grace period is the longer), while we make the network policy.
        probing = _start_probe(opts.platform)
        mark("create.cgroups")
        if policy is not None:
            opts.net_policy = policy()
        opts.platform = _choose_platform(opts.platform, probing)
        mark(f"create.platform-{opts.platform}")  # --platform=auto: after its probe
        sandbox_opts = _sandbox_options(opts, spec)
        st.platform = opts.platform
        st.sandbox = {**sandbox_opts.filter_state(), "network": opts.network}
        sandbox_opts.bpf = filtercache.load(store.root, sandbox_opts)
        mark("create.filters")
        _launch(store, st, opts, spec, cg, state_dir, sandbox_opts, early, applying)
        return st
    except BaseException:
        if applying is not None:
            applying.wait()  # no migration may race the clean-up
        early.ns.close_fds()
        _abort(st, cg, early.pid, state_dir)
        early.pid = 0  # reaped
        raise


def _apply_and_set(cg: CgroupManager, pid: int, resources: dict[str, Any]) -> None:
    cg.apply(pid)
    cg.set(resources)


class _Background:
    """One blocking call run in a thread of ours while create goes on;
    join() waits for it and raises what it raised."""

    def __init__(self, name: str, fn: Any, *args: Any) -> None:
        import threading
        self._error: BaseException | None = None

        def run() -> None:
            try:
                fn(*args)
            except BaseException as e:  # raised in the caller, at join()
                self._error = e
        self._thread = threading.Thread(target=run, name=name, daemon=True)
        self._thread.start()

    def join(self) -> None:
        self._thread.join()
        if self._error is not None:
            err, self._error = self._error, None
            raise err

    def wait(self) -> None:
        """join(), its error dropped (a clean-up that reports its own)."""
        self._thread.join()
        self._error = None


def _check_platform(asked: str) -> None:
    from sentry.platform import PLATFORMS
    if asked not in PLATFORMS:
        raise RuntimeFailure(f"platform {asked}: unknown (one of {', '.join(PLATFORMS)})")


def _start_probe(asked: str) -> Any:
    """For `auto`, the platform probe started now (a thread of its own),
    while create makes the network policy; None otherwise."""
    from sentry.platform import AUTO
    if asked != AUTO:
        return None
    from sentry.platform import probe
    return probe.Probing()


def _choose_platform(asked: str, probing: Any = None) -> str:
    """The platform this container runs on: asked, or for `auto` what the
    probe finds (sentry/platform/probe.py; probing: started already),
    logged with the reason."""
    from sentry.platform import AUTO
    from sentry.platform import probe
    _check_platform(asked)
    if asked != AUTO:
        return asked
    chosen, why = probe.choose(probing)
    # The fallback is worth a warning: every intercepted call then costs a
    # ptrace stop.
    log.log(INFO if chosen == "seccomp" else WARNING, "platform auto: %s (%s)",
            chosen, why)
    return chosen


def _sandbox_options(opts: CreateOptions, spec: dict[str, Any]) -> SandboxOptions:
    """What the sandbox process and the workload's filter need to know."""
    lx = spec.get("linux") or {}
    kinds = {n.get("type") for n in lx.get("namespaces") or []}
    release = uname_release(spec, opts.uname_release)
    return SandboxOptions(platform=opts.platform, net_raw=opts.net_raw,
                          userns="user" in kinds, strace=opts.strace,
                          strace_syscalls=opts.strace_syscalls, strace_format=opts.strace_format,
                          file_access=opts.file_access,
                          lookup_cache=_lookup_cache(opts, spec),
                          uts_private="uts" in private_namespaces(lx), uname_release=release,
                          network=opts.network)  # the sentry's filter depends on it (--network=none)


def _launch(store: Store, st: ContainerState, opts: CreateOptions, spec: dict[str, Any],
            cg: CgroupManager, state_dir: str, sandbox_opts: SandboxOptions,
            early: Presandbox, applying: _Background) -> None:
    ns = early.ns
    net, new_ns = ns.net, ns.new
    helper, net_job, init_nets = _network_job(store, opts, net, st, state_dir, applying)
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
        sentry_sock.setsockopt(sockets.SOL_SOCKET, sockets.SO_PASSCRED, 1)
        hook_state = {"ociVersion": spec.get("ociVersion", ""), "id": st.id, "status": "creating",
                      "pid": 0, "bundle": st.bundle, "annotations": st.annotations}
        init_cfg = standard.InitConfig(spec=spec, rootfs=st.rootfs, hook_state=hook_state,
                                       new_namespaces=new_ns, cgroup_mounts=host_cgroup_mounts(),
                                       cgroup_dirs=_cgroup_dirs(cg), state_dir=state_dir,
                                       no_pivot=opts.no_pivot, preserve_fds=opts.preserve_fds,
                                       sandbox=sandbox_opts.replace(
                                           network=net.mode, net_policy=opts.net_policy,
                                           net_log=opts.net_log, net_log_all=opts.net_log_all),
                                       loopback=("network" in new_ns or net.workload_own) and helper is None,
                                       backstop=init_nets)
        try:
            early.go(init_cfg, new_ns, init_end, start_sock, sentry_sock)
        finally:
            start_sock.close()
            sentry_sock.close()
            ns.close_fds()
        mark("create.sandbox-orders")
        _drive(store, st, opts, spec, cg, early.pid, to_sandbox, to_init, new_ns, hook_state,
               applying, helper, net_job, net)
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
                 state_dir: str, applying: _Background) -> tuple[Any, dict[str, Any], list[str]]:
    """Who sets the network up: (the helper, its job, the backstop's
    networks for init).  In a namespace made for the container, init brings
    lo up and adds the backstop's FIB rules itself (init/network.py: it is
    in that namespace, with its capabilities, before the prestart hooks);
    the set-up helper (network/setup.py, host root) is forked for a joined
    namespace (a pod's, which init's user namespace may not own), a
    bridge, or a deny list too long for FIB rules (nft)."""
    from sentry.netpolicy import NetPolicy
    from .network.backstop import FIB_MAX
    nets = []
    if net.backstop and opts.net_policy is not None:
        nets = [str(n) for n in NetPolicy.from_json(opts.net_policy).denied_nets()]
    if nets and not net.workload_own and net.spec_ns != "new" and _is_own_netns(net.spec_ns):
        # A spec joining the runtime's own namespace by path (a CRI pod
        # with host networking): the policy is the sentry's alone there.
        nets = []
    bridge = None
    if net.mode == "bridge":
        from .network import bridge as br
        bridge = br.plan(opts.cid, opts.publish, state_dir)
        st.sandbox["bridge"] = bridge
        store.save(st)  # what delete must remove is on record before it exists
    elif opts.publish:
        raise RuntimeFailure("--publish: needs --network=bridge")
    own_ns = net.spec_ns == "new" or net.workload_own
    if bridge is None and (not nets or own_ns and len(nets) <= FIB_MAX):
        return None, {}, nets
    from .network.setup import Helper
    applying.join()  # no thread of ours runs across a fork
    # lo: only in a namespace of our own, as runc (a joined one is its owner's).
    return Helper.start(), {"lo": net.spec_ns == "new" or net.workload_own, "nets": nets,
                            "bridge": bridge}, []


def _is_own_netns(path: str) -> bool:
    try:
        return os.stat(path).st_ino == os.stat("/proc/self/ns/net").st_ino
    except OSError:
        return False  # opened already (presandbox.plan): the sandbox will say


def _drive(store: Store, st: ContainerState, opts: CreateOptions, spec: dict[str, Any],
           cg: CgroupManager, pid: int, to_sandbox: Channel, to_init: Channel,
           new_ns: set[str], hook_state: dict[str, Any], applying: _Background,
           helper: Any = None, net_job: dict[str, Any] | None = None, net: Any = None) -> int:
    """The runtime's half of the sync protocol (sync.py), from the
    sandbox's HELLO (it has its orders, and is in its cgroups)."""
    lx = spec.get("linux") or {}
    st.pid = pid
    msg, _ = to_sandbox.recv(Msg.USERNS, Msg.HELLO)
    if msg["type"] is Msg.USERNS:
        _write_id_maps(pid, lx)
        to_sandbox.send(Msg.MAPPED)
        msg, _ = to_sandbox.recv(Msg.HELLO)
    applying.join()
    mark("create.cgroups-applied")
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


# --- helpers --------------------------------------------------------------------

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


def _listen(state_dir: str, name: str) -> sockets.socket:
    """A listening socket in the state dir, bound through a short /proc path
    (state dirs can be longer than sun_path allows), mode 0600 whatever the
    caller's umask: only root may connect (init's start, the sentry's
    listener hand-off: both act on the container)."""
    sock = sockets.socket(sockets.AF_UNIX, sockets.SOCK_STREAM)
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
    sock = sockets.socket(sockets.AF_UNIX, sockets.SOCK_STREAM)
    try:
        sock.connect(path)
        sockets.send_fds(sock, [b"/dev/ptmx"], [master])
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
            cg.kill_all(_signal.SIGKILL)
            cg.destroy()
        except Exception as e:  # cleanup continues whatever happens
            log.warning("cleanup of cgroup failed: %s", e)
    remove_tree(state_dir)
