"""The sandbox process's first moments, in the runtime: the namespaces
`create` plans from the spec, and the fork of the sandbox process.

The sandbox is forked first thing in `create`, right after the spec is
read, so that it imports the sentry, init's code and the gofer on the other
CPU while the runtime imports launch.py, probes the platform, loads the
filters and makes the cgroups; it then waits for its orders (Presandbox.go)
and becomes what sandboxproc.py describes.  This module imports little:
everything it does comes before that work is shared out.
"""

from __future__ import annotations

import os
import _signal  # signal.py's C module: signal.py imports enum (runsc_py/signals.py)
from runsc_py import sockets  # socket's API without socket.py's enums (sockets.py)
TYPE_CHECKING = False  # typing's, without importing typing (docs/performance.md, Start-up)
if TYPE_CHECKING:
    from typing import Any

from . import libc
from .errors import RuntimeFailure
from .record import Record
from .state import Store, proc_start_time
from .sync import Channel, Msg
from .timeline import mark
from runsc_py.log import get_logger

if TYPE_CHECKING:
    from .init.standard import InitConfig

log = get_logger(__name__)

NS_FLAGS = {
    "user": libc.CLONE_NEWUSER, "ipc": libc.CLONE_NEWIPC, "uts": libc.CLONE_NEWUTS,
    "network": libc.CLONE_NEWNET, "pid": libc.CLONE_NEWPID, "mount": libc.CLONE_NEWNS,
    "cgroup": libc.CLONE_NEWCGROUP, "time": libc.CLONE_NEWTIME,
}
# Join order: user first (it grants the rights for the others), mount late
# (it changes how later paths resolve), as runc's nsexec does.
JOIN_ORDER = ("user", "ipc", "uts", "network", "pid", "cgroup", "time", "mount")


class Namespaces(Record):
    """The container's namespaces as create plans them, before any fork."""
    net: Any                   # network/modes.py NetPlan
    new: set[str]              # types made for it
    fds: dict[str, int]        # types joined: an fd of each, opened now

    def close_fds(self) -> None:
        """Ours (the sandbox has its copies once forked); idempotent."""
        while self.fds:
            os.close(self.fds.popitem()[1])


def plan(store: Store, network: str, spec: dict[str, Any]) -> Namespaces:
    """The spec's namespaces under the --network mode NETWORK: which are
    made, which joined (opened now: a path that is gone fails here)."""
    from .network import modes
    lx = spec.get("linux") or {}
    namespaces = {n["type"]: n.get("path") or "" for n in lx.get("namespaces") or []}
    net = modes.plan(network, namespaces)
    if net.mode == "host":
        namespaces.pop("network", None)  # the sandbox and the workload stay in ours
    joined = {t: _container_namespace(store, t, p) for t, p in namespaces.items() if p}
    return Namespaces(net, {t for t, p in namespaces.items() if not p}, _open_namespaces(joined))


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


def uname_release(spec: dict[str, Any], flag: str) -> str:
    """The release an emulated uname(2) reports: the spec's annotation, or
    --uname-release ("": the host's)."""
    return (spec.get("annotations") or {}).get("dev.runsc-py.uname-release") or flag


def policy_fields(net_raw: bool, strace: bool, release_flag: str, spec: dict[str, Any]
                  ) -> tuple[bool, bool, str, bool]:
    """The fields of the sentry's PolicyOptions that launch.py's
    SandboxOptions will give (sandbox.policy_options), known before the
    fork: the sandbox builds its dispatch table from them while it imports,
    and prepare() checks them against its orders' (rebuilt if they differ)."""
    lx = spec.get("linux") or {}
    return (net_raw, "uts" in private_namespaces(lx), uname_release(spec, release_flag), strace)


class Presandbox(Record):
    """The sandbox process, forked as soon as create knows its namespaces
    (before the runtime imports launch.py): it imports what it runs
    (sandboxproc.py, init's code, sandbox.preload: the sentry, the gofer,
    libseccomp: ~45 ms of CPU here) on the other CPU while the runtime does
    its own part, then reads its orders (go): the init configuration,
    pickled on a pipe (its length first), and the sockets it serves, with
    SCM_RIGHTS on its channel.  EOF before the orders (the runtime failed
    or died) ends it."""
    pid: int
    chan: Channel          # the runtime's end of the sync channel
    orders: int            # the pipe's write end
    ns: Namespaces

    @classmethod
    def fork(cls, ns: Namespaces, platform: str = "auto",
             policy: tuple[bool, bool, str, bool] | None = None) -> "Presandbox":
        """PLATFORM: the one asked for (its code is imported ahead too);
        POLICY: policy_fields(), its dispatch table built ahead too."""
        # The C pickler itself: pickle.py adds nothing we use and imports re.
        import _pickle  # noqa: F401  (imported once, for both: go() and the child's loads)
        # Also imported once, for both, rather than by each after the fork
        # (~7 ms of CPU): init's code and the sandbox's (the runtime's
        # launch.py builds the orders with them, the sandbox runs them), the
        # network policy (ipaddress) and the kernel-object rules.
        from .init import standard  # noqa: F401
        import sentry.kernobj  # noqa: F401
        import sentry.netpolicy  # noqa: F401
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
                    from . import sandboxproc
                    sandboxproc.orders(sandbox_end, orders_r, ns.fds, platform, policy)
                except BaseException:
                    log.exception("sandbox process failed")
                finally:
                    os._exit(1)
        except BaseException:
            for fd in (orders_r, orders_w):
                os.close(fd)
            to_sandbox.close()
            ns.close_fds()
            raise
        finally:
            sandbox_end.close()
            if pid != 0:
                libc.setns(own_pid_ns, libc.CLONE_NEWPID)  # our later children are ours again
                os.close(own_pid_ns)
        os.close(orders_r)
        mark("create.sandbox-forked")
        return cls(pid, to_sandbox, orders_w, ns)

    def go(self, init_cfg: InitConfig, new_ns: set[str], init_end: Channel,
           start_sock: sockets.socket, sentry_sock: sockets.socket) -> None:
        import _pickle
        data = _pickle.dumps((init_cfg, new_ns), protocol=5)
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
        """Stop it and reap it, unless done already (launch.create's own
        clean-up reaps it once it has its orders)."""
        if self.orders >= 0:
            os.close(self.orders)
            self.orders = -1
        self.chan.close()
        if self.pid <= 0:
            return
        try:
            os.kill(self.pid, _signal.SIGKILL)
            os.waitpid(self.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        self.pid = 0


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
