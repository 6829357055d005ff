"""`exec`: start a new process inside a running container.

    exec command (E0)            joiner (E1)                 process (E2)
    ---------------------------------------------------------------------
    fork E1        <-- HELLO --  (E1's pid)
    join E1 to the cgroups
                   -- CGROUPS -> setns into the container's
                                 namespaces (user first), fork E2
                   <-- INIT_PID  (E2's pid), exit
                   <------------------------------ CONSOLE (pty master;
                                                   may come before INIT_PID)
                                                        rlimits, cwd, user,
                                                        caps, sandbox, execve
    the channel closes by execve (close-on-exec): success; else ERROR.

E2 is a child of E1, which exits at once: attached, E0 is a child subreaper
and E2 becomes its child, so E0 can wait for it and return its exit code;
detached, E2 is reparented to the caller (containerd's shim is a subreaper).
"""

from __future__ import annotations

import os
import _signal  # signal.py's C module: signal.py imports enum (runsc_py/signals.py)
from runsc_py import sockets  # socket's API without socket.py's enums (sockets.py)
TYPE_CHECKING = False  # typing's, without importing typing (docs/performance.md, Start-up)
if TYPE_CHECKING:
    from typing import Any, NoReturn

from . import libc
from .cgroups import CgroupManager
from .errors import RuntimeFailure
from .init import console, process
from .launch import JOIN_ORDER, NS_FLAGS, _send_console, connect, write_pid_file
from .record import Record
from .sandbox import SENTRY_SOCKET, SandboxOptions, enter, prepare_filter
from .state import ContainerState, Status, Store
from .signals import wait_forwarding
from .sync import Channel, Msg

_NS_FILES = {"user": "user", "ipc": "ipc", "uts": "uts", "network": "net", "pid": "pid",
             "cgroup": "cgroup", "time": "time", "mount": "mnt"}


class ExecOptions(Record):
    process: dict[str, Any]
    detach: bool = False
    pid_file: str | None = None
    console_socket: str | None = None
    preserve_fds: int = 0


def exec_process(store: Store, cid: str, opts: ExecOptions) -> int:
    st = store.load(cid)
    status = store.status(st)
    if status is Status.PAUSED:
        raise RuntimeFailure("cannot exec in a paused container")
    if status not in (Status.RUNNING, Status.CREATED):
        raise RuntimeFailure("cannot exec in a stopped container")
    proc = opts.process
    if proc.get("terminal") and not opts.console_socket:
        raise RuntimeFailure("cannot allocate tty without setting console socket")
    # Into the sandbox: the exec'd process gets the workload filter too and
    # hands its listener to the sentry over sentry.sock.  Built here, before
    # the fork, while the host's files (modules, libseccomp) are visible.
    sandbox_opts = SandboxOptions.from_state(st.platform, st.sandbox)
    from . import filtercache
    sandbox_opts.bpf = filtercache.load(store.root, sandbox_opts, ("workload",))
    prepared = prepare_filter(sandbox_opts)
    try:
        sentry_conn = connect(store.dir(cid), SENTRY_SOCKET)
    except OSError as e:
        raise RuntimeFailure(f"exec: connect to the sentry: {e.strerror}") from None
    ns_fds = _open_container_namespaces(st)
    chan, child_end = Channel.pair("exec", "exec process")
    if not opts.detach:
        libc.prctl(libc.PR_SET_CHILD_SUBREAPER, 1)
    pid = os.fork()
    if pid == 0:
        try:
            chan.sock.close()
            _joiner(child_end, ns_fds, proc, opts.preserve_fds, prepared, sentry_conn)
        finally:
            os._exit(1)
    child_end.close()
    sentry_conn.close()
    for fd in ns_fds.values():
        os.close(fd)
    proc_pid = 0
    try:
        chan.recv(Msg.HELLO)
        if st.cgroup:
            CgroupManager.from_dict(st.cgroup).apply(pid)
        chan.send(Msg.CGROUPS)
        # E2 may send CONSOLE before E1 has sent INIT_PID (whichever of the
        # two runs first after the fork): either order.
        msg, fds = chan.recv(Msg.INIT_PID, Msg.CONSOLE)
        console_fds = None
        if msg["type"] is Msg.CONSOLE:
            console_fds = fds
            msg, _ = chan.recv(Msg.INIT_PID)
        proc_pid = int(msg["pid"])
        os.waitpid(pid, 0)
        if proc.get("terminal"):
            if console_fds is None:
                msg, console_fds = chan.recv(Msg.CONSOLE)
            fds = console_fds
            try:
                _send_console(opts.console_socket or "", fds[0])
            finally:
                for fd in fds:
                    os.close(fd)
        # EOF: the process reached execve.  A message: it failed before.
        data = chan.sock.recv(65536)
        if data:
            chan_msg = _decode_error(data)
            raise RuntimeFailure(chan_msg)
    except BaseException:
        for p in (proc_pid, pid):
            if p:
                try:
                    os.kill(p, _signal.SIGKILL)
                    os.waitpid(p, 0)
                except (ProcessLookupError, ChildProcessError):
                    pass
        raise
    finally:
        chan.close()
    if opts.pid_file:
        write_pid_file(opts.pid_file, proc_pid)
    if opts.detach:
        return 0
    return wait_forwarding(proc_pid, proc_pid)


def _decode_error(data: bytes) -> str:
    from . import jsonio
    try:
        return str(jsonio.loads(data).get("msg", "exec failed"))
    except ValueError:
        return data.decode(errors="replace")


def _open_container_namespaces(st: ContainerState) -> dict[str, int]:
    """fds of the init's namespaces that differ from ours."""
    fds: dict[str, int] = {}
    for kind, name in _NS_FILES.items():
        theirs = f"/proc/{st.init_pid}/ns/{name}"
        try:
            if os.stat(theirs).st_ino == os.stat(f"/proc/self/ns/{name}").st_ino:
                continue
            fds[kind] = os.open(theirs, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            continue
        except OSError as e:
            for fd in fds.values():
                os.close(fd)
            raise RuntimeFailure(f"exec: open namespace {theirs}: {e.strerror}") from None
    return fds


def _joiner(chan: Channel, ns_fds: dict[str, int], proc: dict[str, Any], preserve_fds: int,
            prepared: Any, sentry_conn: sockets.socket) -> NoReturn:
    try:
        chan.send(Msg.HELLO, pid=os.getpid())
        chan.recv(Msg.CGROUPS)
        for kind in JOIN_ORDER:
            if kind in ns_fds:
                libc.setns(ns_fds[kind], NS_FLAGS[kind])
        for fd in ns_fds.values():
            os.close(fd)
        pid = os.fork()
        if pid == 0:
            try:
                _exec_child(chan, proc, preserve_fds, prepared, sentry_conn)
            finally:
                os._exit(127)
        chan.send(Msg.INIT_PID, pid=pid)
    except BaseException as e:
        chan.error(f"exec: {getattr(e, 'strerror', None) or e}")
        os._exit(1)
    os._exit(0)


def _exec_child(chan: Channel, proc: dict[str, Any], preserve_fds: int, prepared: Any,
                sentry_conn: sockets.socket) -> NoReturn:
    try:
        os.setsid()
        if proc.get("terminal"):
            master, slave = console.open_pty()
            console.set_size(master, proc.get("consoleSize"))
            chan.send(Msg.CONSOLE, fds=[master])
            os.close(master)
            console.attach_console(slave, mount_console=False)
        process.set_oom_score_adj(proc.get("oomScoreAdj"))
        process.apply_rlimits(proc.get("rlimits"))
        try:
            os.chdir(proc.get("cwd") or "/")
        except OSError as e:
            raise RuntimeFailure(f"exec: chdir to cwd ({proc.get('cwd')!r}): {e.strerror}") from None
        env = process.environ(proc.get("env"))
        process.default_home(env, (proc.get("user") or {}).get("uid", 0))
        argv0 = process.lookup(proc["args"][0], env)
        last_cap = process.last_cap()
        process.close_inherited_fds(2 + preserve_fds)
        process.reset_signals()
        # The identity and the sandbox hand-off, as for init: the filter
        # goes in as late as it still can (process.identity_before_handoff).
        process.become_user_and_hand_off(proc, last_cap, lambda: enter(prepared, sentry_conn))
        os.execve(argv0, proc["args"], env)
    except RuntimeFailure as e:
        chan.error(str(e))
    except OSError as e:
        chan.error(f"exec {proc['args'][0]}: {e.strerror}")
    except BaseException as e:
        chan.error(f"exec: {e}")
    os._exit(127)


def process_from_args(base: dict[str, Any], args: list[str], cwd: str | None, env: list[str],
                      user: str | None, tty: bool, caps: list[str], no_new_privs: bool | None) -> dict[str, Any]:
    """runc's behaviour: start from the container's process, override from flags."""
    import copy
    p = copy.deepcopy(base)
    if not args:
        raise RuntimeFailure("exec: args must not be empty")
    p["args"] = args
    p["terminal"] = tty
    p.pop("consoleSize", None)
    if cwd:
        p["cwd"] = cwd
    if env:
        p["env"] = list(p.get("env") or []) + env
    if user:
        u, _, g = user.partition(":")
        try:
            p["user"] = {"uid": int(u), "gid": int(g) if g else 0}
        except ValueError:
            raise RuntimeFailure(f"exec: invalid --user {user!r} (want UID[:GID])") from None
    if caps:
        c = p.setdefault("capabilities", {})
        for s in ("bounding", "effective", "permitted", "ambient"):
            c[s] = sorted(set(c.get(s) or []) | set(caps))
    if no_new_privs is not None:
        p["noNewPrivileges"] = no_new_privs
    return p
