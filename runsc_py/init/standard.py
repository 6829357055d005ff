"""The container's init: from a forked runtime process to the user's program.

A linear script in lifecycle order.  It runs as pid 1 of the container's pid
namespace, already inside every other namespace of the container (the sandbox
process unshared them before forking us), and talks to the runtime over the
sync channel until `create` is done, then to `start` over start.sock.

The order is the one runc uses, for the same reasons:
  - mounts before pivot_root, resolved inside the rootfs (CVE-2021-30465);
  - createRuntime/createContainer hooks before pivot_root (runtime-spec);
  - masked and read-only paths after /proc is mounted, before the program runs;
  - rlimits before dropping capabilities (raising needs CAP_SYS_RESOURCE);
  - the bounding set before setuid (needs CAP_SETPCAP), capset after it;
  - no inherited fd survives execve (CVE-2024-21626), and the sandbox is
    attached last, right before execve, so everything the program does is
    supervised and nothing the runtime does is.
"""

from __future__ import annotations

import os
import select
import _signal  # signal.py's C module: signal.py imports enum (runsc_py/signals.py)
from runsc_py import sockets  # socket's API without socket.py's enums (sockets.py)
TYPE_CHECKING = False  # typing's, without importing typing (docs/performance.md, Start-up)
if TYPE_CHECKING:
    from typing import Any, NoReturn

from .. import libc
from ..errors import RuntimeFailure
from ..hooks import run_hooks
from ..record import Record
from ..sandbox import SandboxOptions, enter, prepare_filter
from ..sync import Channel, Msg
from ..timeline import mark
from . import console, network, process, rootfs
from runsc_py.log import get_logger

log = get_logger(__name__)


class InitConfig(Record):
    spec: dict[str, Any]
    rootfs: str
    hook_state: dict[str, Any]          # the state JSON handed to hooks
    new_namespaces: set[str]            # namespace types created (not joined)
    cgroup_mounts: list[tuple[str, str]] = []
    cgroup_dirs: dict[str, str] = {}  # controller -> host dir
    state_dir: str = ""
    no_pivot: bool = False
    preserve_fds: int = 0
    sandbox: SandboxOptions = SandboxOptions()  # (always given: launch.py)
    prepared_filter: Any = None
    loopback: bool = False              # bring lo up here (no network set-up helper)
    backstop: list[str] = []            # networks for FIB prohibit rules, added here (network/backstop.py)


def run(cfg: InitConfig, chan: Channel, start_sock: sockets.socket, parent_alive_fd: int,
        mount_ns_fd: int, sentry_sock: sockets.socket) -> NoReturn:
    """Entry point in the forked init; never returns.

    mount_ns_fd: a mount namespace to join (-1: create one if the spec asks).
    sentry_sock: connected to the sandbox process, which receives our
    seccomp listener right before execve.
    """
    conn: sockets.socket | None = None
    try:
        conn = _setup_and_wait(cfg, chan, start_sock, parent_alive_fd, mount_ns_fd)
        _exec(cfg, conn, sentry_sock)
    except RuntimeFailure as e:
        _report(chan, conn, str(e))
    except OSError as e:
        _report(chan, conn, f"container init: {e.strerror or e}")
    except BaseException as e:  # never let an init unwind into the runtime's code
        _report(chan, conn, f"container init: {type(e).__name__}: {e}")
    os._exit(1)


def _report(chan: Channel, conn: sockets.socket | None, msg: str) -> None:
    if conn is not None:
        try:
            conn.sendall(msg.encode())
        except OSError:
            pass
    else:
        chan.error(msg)


def _setup_and_wait(cfg: InitConfig, chan: Channel, start_sock: sockets.socket,
                    parent_alive_fd: int, mount_ns_fd: int) -> sockets.socket:
    spec = cfg.spec
    lx = spec.get("linux") or {}
    proc = spec["process"]
    in_userns = "user" in cfg.new_namespaces or _joined_userns(lx)

    # 1. A session of our own.  (Dying with the sandbox process is set up
    #    once it is our parent: see step 4.)  Dumpable: in a new user
    #    namespace the uid change cleared it, and the sentry (same uid, no
    #    privilege over our inherited mm) must read /proc/<us>/root.
    mark("init.start")
    os.setsid()
    if in_userns:
        libc.prctl(libc.PR_SET_DUMPABLE, 1)
    # The sandbox filter is built now, while the host's files (Python modules,
    # libseccomp) are still visible; it is installed right before execve.
    cfg.prepared_filter = prepare_filter(cfg.sandbox)
    mark("init.filter-built")
    # The container's mount namespace is ours alone (the sandbox process
    # keeps its own, with the host's /proc).
    if mount_ns_fd >= 0:
        libc.setns(mount_ns_fd, libc.CLONE_NEWNS)
        os.close(mount_ns_fd)
    # (Otherwise we were born in a mount namespace of our own: sandboxproc.py.)

    # 2. The root filesystem, still seen through the host's paths.
    if "mount" in cfg.new_namespaces:
        rootfs.set_root_propagation(lx.get("rootfsPropagation"))
        rootfs.bind_rootfs(cfg.rootfs)
        dev_is_bound = False
        for m in spec.get("mounts") or []:
            rootfs.mount_entry(cfg.rootfs, m, cfg.cgroup_mounts, in_userns,
                               None if "cgroup" in cfg.new_namespaces else cfg.cgroup_dirs)
            if m["destination"] == "/dev" and "bind" in (m.get("options") or []) + [m.get("type")]:
                dev_is_bound = True
        if not dev_is_bound:
            rootfs.create_devices(cfg.rootfs, lx.get("devices") or [], defaults=True, in_userns=in_userns)
            rootfs.dev_symlinks(cfg.rootfs)

    # 3. The network, before the prestart hooks: the loopback interface of
    #    a new network namespace, the kernel backstop of the network
    #    policy (unless the runtime's set-up helper does them:
    #    runsc_py/network/setup.py, for a bridge or an nft table).
    if cfg.loopback:
        network.loopback_up()
    if cfg.backstop:
        network.backstop(cfg.backstop)

    mark("init.rootfs")
    # 4. prestart and createRuntime hooks run in the runtime's namespace.
    chan.send(Msg.HOOKS)
    msg, _ = chan.recv(Msg.HOOKS_DONE)
    cfg.hook_state["pid"] = msg["pid"]  # the sandbox pid, as `state` reports it
    # The sandbox process is our parent (in a joined pid namespace: once
    # our forker has exited, which the sandbox waited for before reporting
    # our pid): die with it.
    _die_with_parent(parent_alive_fd)

    # 5. createContainer hooks: container namespaces, before pivot_root.
    hooks = spec.get("hooks") or {}
    run_hooks("createContainer", hooks.get("createContainer"), cfg.hook_state)

    # 6. Enter the rootfs.
    if "mount" in cfg.new_namespaces:
        if cfg.no_pivot:
            rootfs.move_root(cfg.rootfs)
        else:
            rootfs.pivot(cfg.rootfs)
    else:
        os.chroot(cfg.rootfs)
        os.chdir("/")

    # 7. The console: a pty of the container's devpts; the master goes out.
    if proc.get("terminal"):
        master, slave = console.open_pty()
        console.set_size(master, proc.get("consoleSize"))
        chan.send(Msg.CONSOLE, fds=[master])
        os.close(master)
        console.attach_console(slave, mount_console="mount" in cfg.new_namespaces)

    # 8. Identity of the sandbox: hostname, domainname, sysctls.
    if "hostname" in spec or "domainname" in spec:
        if "uts" not in cfg.new_namespaces and not _joined(lx, "uts"):
            raise RuntimeFailure("unable to set hostname without a private UTS namespace")
        if spec.get("hostname"):
            libc.sethostname(spec["hostname"])
        if spec.get("domainname"):
            libc.setdomainname(spec["domainname"])
    for key, value in (lx.get("sysctl") or {}).items():
        _write_sysctl(key, value)

    # 9. Read-only and masked paths, then the read-only root.
    if "mount" in cfg.new_namespaces:
        for p in lx.get("readonlyPaths") or []:
            rootfs.readonly_path(p)
        for p in lx.get("maskedPaths") or []:
            rootfs.mask_path(p)
        if (spec.get("root") or {}).get("readonly"):
            rootfs.remount_root_readonly()

    # 10. Process limits that need privileges we are about to drop.
    process.set_oom_score_adj(proc.get("oomScoreAdj"))
    process.apply_rlimits(proc.get("rlimits"))

    # 11. `create` is done: wait for `start`.
    mark("init.ready")
    chan.send(Msg.READY)
    chan.close()
    conn = _wait_for_start(start_sock)
    return conn


def _exec(cfg: InitConfig, conn: sockets.socket, sentry_sock: sockets.socket) -> NoReturn:
    spec = cfg.spec
    proc = spec["process"]
    state = dict(cfg.hook_state, status="created")

    # 12. startContainer hooks: inside the container, after start.
    run_hooks("startContainer", (spec.get("hooks") or {}).get("startContainer"), state)

    # 13. Working directory (as root: it may be unreadable to the user);
    #     runc creates it when the image lacks it.
    process.enter_cwd(proc["cwd"], proc.get("user") or {})

    # 14. The program and its environment, found as root.
    env = process.environ(proc.get("env"))
    process.default_home(env, (proc.get("user") or {}).get("uid", 0))
    argv0 = process.lookup(proc["args"][0], env)
    last_cap = process.last_cap()

    mark("init.exec-prepared")  # the last mark: step 15 closes the log file
    # 15. No fd of the runtime survives execve (CVE-2024-21626).
    process.close_inherited_fds(2 + cfg.preserve_fds)
    process.reset_signals()

    # 16. Identity and capabilities, and the hand-off to the supervisor (its
    #     filter goes in) as late among them as init can still install the
    #     filter: no_new_privs is set only if the spec asks
    #     (process.identity_before_handoff).  setuid clears the
    #     parent-death signal (and, in a user namespace, the dumpable flag
    #     the sentry needs to open /proc/<us>/root): set again after it.
    # 17. Then, under the sentry, the program.
    process.become_user_and_hand_off(proc, last_cap, lambda: _attach_sandbox(cfg, sentry_sock),
                                     lambda: _after_setuid(cfg, spec))
    try:
        os.execve(argv0, proc["args"], env)
    except OSError as e:
        raise RuntimeFailure(f"exec {argv0}: {e.strerror}") from None


def _after_setuid(cfg: InitConfig, spec: dict[str, Any]) -> None:
    """What a user switch cleared, set again: the parent-death signal and,
    in a user namespace, the dumpable flag (the sentry opens
    /proc/<us>/root)."""
    libc.prctl(libc.PR_SET_PDEATHSIG, _signal.SIGKILL)
    if "user" in cfg.new_namespaces or _joined_userns(spec.get("linux") or {}):
        libc.prctl(libc.PR_SET_DUMPABLE, 1)


def _attach_sandbox(cfg: InitConfig, sentry_sock: sockets.socket) -> None:
    """THE hand-off point: from here on the workload runs under the sentry.

    Installs the seccomp filter built in step 1 (NEW_LISTENER,
    WAIT_KILLABLE_RECV; no_new_privs only if the spec asks: either it is
    set already or we still hold CAP_SYS_ADMIN here) and sends the listener
    to the sandbox process, which serves it from then on.  What follows
    (the rest of the identity, if any, and the execve) is notified and
    answered by the sentry.  Every descendant of the program inherits the
    filter.
    """
    enter(cfg.prepared_filter, sentry_sock)


def _wait_for_start(start_sock: sockets.socket) -> sockets.socket:
    """Block until `start` connects and says "start"; return that connection."""
    while True:
        conn, _ = start_sock.accept()
        conn.settimeout(5.0)  # a peer that says nothing does not hold up `start`
        try:
            data = conn.recv(16)
        except OSError:
            data = b""
        conn.settimeout(None)
        if data.startswith(b"start"):
            start_sock.close()
            return conn
        conn.close()


def _die_with_parent(alive_fd: int) -> None:
    """PDEATHSIG, then check the parent did not die before it was set."""
    libc.prctl(libc.PR_SET_PDEATHSIG, _signal.SIGKILL)
    r, _, _ = select.select([alive_fd], [], [], 0)
    if r:  # EOF: the sandbox process is gone already
        os._exit(1)
    # Keep alive_fd open (close-on-exec) - nothing else needs it.


def _joined(lx: dict[str, Any], kind: str) -> bool:
    return any(n["type"] == kind and n.get("path") for n in lx.get("namespaces") or [])


def _joined_userns(lx: dict[str, Any]) -> bool:
    return _joined(lx, "user")


def _write_sysctl(key: str, value: str) -> None:
    path = "/proc/sys/" + key.replace(".", "/")
    try:
        with open(path, "w") as f:
            f.write(value)
    except OSError as e:
        raise RuntimeFailure(f"write sysctl {key}={value!r}: {e.strerror}") from None
