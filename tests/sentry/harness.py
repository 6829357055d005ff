"""Run a static probe under the sentry's filter in a plain forked child.

fork -> child: dup2 stdout to a pipe, install the (prepared) filter, send the
listener over a socketpair, close it, execv the probe.  Parent: receive the
listener, run a Supervisor on it, collect the output.  The child is always
killed and reaped, whatever happens.

file_access="gofer": the production gofer (runsc_py.sandbox.SandboxHost.
start_gofer) serves the files, attached to a mount namespace whose root is
ROOT (held by a small child that pivot_root'ed there).  "directfs": the
sentry works in an fd of ROOT itself.

platform: "seccomp" (a Supervisor on the listener) or "ptrace" (the child
asks to be traced, a PtraceSupervisor's tracer thread in this process
attaches; this thread never waits for the child then: its tracer reaps it).
Default: $RUNSC_PY_TEST_PLATFORM, else seccomp.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

from runsc_py import libc
from runsc_py.sandbox import SandboxHost, SandboxOptions
from sentry.call import Sandbox, SentryOptions
from sentry.files import DirectFS
from sentry.handoff import ATTACHED, receive_attach, receive_listener
from sentry.platform.ptrace import PtraceSupervisor, platform_dispatch
from sentry.install import prepare_filter, send_listener
from sentry.policy import PolicyOptions
from sentry.supervisor import Supervisor, build_dispatch


def default_platform() -> str:
    return os.environ.get("RUNSC_PY_TEST_PLATFORM") or "seccomp"


@dataclass
class Run:
    status: int
    out: str
    handled: int
    workers: int

    @property
    def signaled(self) -> int:
        return os.WTERMSIG(self.status) if os.WIFSIGNALED(self.status) else 0

    def lines(self) -> dict[str, list[str]]:
        res: dict[str, list[str]] = {}
        for line in self.out.splitlines():
            parts = line.split()
            if parts:
                res[parts[0]] = parts[1:]
        return res


def run_probe(probe: str, args: list[str], root: str, *, policy: PolicyOptions | None = None,
              hostname: str = "sandbox", sync_wakeup: bool = True, threads: int = 1,
              cwd: str | None = None, as_uid: int | None = None,
              timeout: float = 60.0, file_access: str = "directfs", platform: str = "") -> Run:
    with _files(root, file_access) as (files, holder):
        return _run(probe, args, files, policy=policy, hostname=hostname, sync_wakeup=sync_wakeup,
                    threads=threads, cwd=cwd, as_uid=as_uid, timeout=timeout,
                    enter=(holder, root), platform=platform or default_platform())


@contextmanager
def _files(root: str, file_access: str) -> Iterator[Any]:
    if file_access == "directfs":
        files = DirectFS(os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC))
        try:
            yield files, 0
        finally:
            files.close()
        return
    holder = _mount_ns_rooted_at(root)
    host = SandboxHost(SandboxOptions(file_access=file_access))
    try:
        host.start_gofer()
        files = host._attach_gofer(holder)
        yield files, holder
    finally:
        host.stop_gofer()
        if host.gofer_pidfd >= 0:
            os.close(host.gofer_pidfd)
        os.kill(holder, signal.SIGKILL)
        os.waitpid(holder, 0)


def _mount_ns_rooted_at(root: str) -> int:
    """A child holding a mount namespace whose root is ROOT (for the gofer)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            libc.unshare(libc.CLONE_NEWNS)
            libc.mount(None, "/", None, libc.MS_PRIVATE | libc.MS_REC)
            libc.mount(root, root, None, libc.MS_BIND | libc.MS_REC)
            os.chdir(root)
            libc.pivot_root(".", ".")
            libc.umount2(".", libc.MNT_DETACH)
            os.write(w, b"1")
            while True:
                signal.pause()
        finally:
            os._exit(1)
    os.close(w)
    ok = os.read(r, 1)
    os.close(r)
    if not ok:
        os.waitpid(pid, 0)
        raise RuntimeError(f"could not build a mount namespace rooted at {root}")
    return pid


def _run(probe: str, args: list[str], files: Any, *, policy: PolicyOptions | None,
         hostname: str, sync_wakeup: bool, threads: int, cwd: str | None,
         as_uid: int | None, timeout: float, enter: tuple[int, str], platform: str) -> Run:
    """enter: (pid, root): run the probe in pid's mount namespace (the one
    the gofer serves, rooted at root), as a container's process would."""
    traced = platform == "ptrace"
    prepared = prepare_filter(policy, platform)
    parent_sock, child_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    rpipe, wpipe = os.pipe()
    argv = [probe, *args]
    holder, root = enter
    ns_fd = os.open(f"/proc/{holder}/ns/mnt", os.O_RDONLY | os.O_CLOEXEC) if holder else -1
    exe = os.open(probe, os.O_RDONLY | os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:  # child: no allocation-heavy work past this point
        try:
            os.dup2(wpipe, 1)
            if ns_fd >= 0:
                libc.setns(ns_fd, libc.CLONE_NEWNS)
                if cwd:
                    cwd = "/" + os.path.relpath(cwd, root)
            if cwd:
                os.chdir(cwd)
            if as_uid is not None:
                os.setgroups([])
                os.setgid(as_uid)
                os.setuid(as_uid)
            if traced:
                prepared.enter(child_sock, True)
            else:
                send_listener(child_sock, prepared.install())
            if ns_fd >= 0 and probe.startswith(root.rstrip("/") + "/"):
                os.execv("/" + os.path.relpath(probe, root), argv)  # as a container would
            os.execve(exe, argv, os.environ)
        finally:
            os._exit(127)
    os.close(wpipe)
    os.close(exe)
    if ns_fd >= 0:
        os.close(ns_fd)
    child_sock.close()
    sup: Any = None
    waiter: threading.Thread | None = None
    try:
        parent_sock.settimeout(timeout)
        opts = SentryOptions(policy=policy or PolicyOptions(), release=(policy or PolicyOptions()).uname_release)
        if traced:
            req = receive_attach(parent_sock)
            os.close(req.pidfd)
            sup = PtraceSupervisor(Sandbox(files, opts), platform_dispatch(build_dispatch(policy)))
            sup.attach(req.pid, req.send, req.drain, req.reserved, watch=True)
            parent_sock.sendall(ATTACHED)
        else:
            lfd = receive_listener(parent_sock, pid)
            sup = Supervisor(lfd, Sandbox(files, opts), threads=threads, sync_wakeup=sync_wakeup)
            sup.start()
            def watch() -> None:  # the stall monitor, then close, as Supervisor.serve does
                assert sup is not None
                if sup.wait():
                    sup.close()
            waiter = threading.Thread(target=watch, daemon=True)
            waiter.start()
        out = b""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([rpipe], [], [], left)[0]:
                raise TimeoutError(f"probe {args}: no end of output after {timeout}s: {out!r}")
            chunk = os.read(rpipe, 65536)
            if not chunk:
                break
            out += chunk
        status = _reap(pid, sup if traced else None, timeout)
        pid = 0
        if waiter is not None:
            waiter.join(timeout=5)
        workers = len(sup.workers._threads) + 1 if traced else sup.workers
        return Run(status, out.decode(errors="replace"), sup.handled, workers)
    finally:
        if pid:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                _reap(pid, sup if traced else None, timeout)
            except (ChildProcessError, TimeoutError):
                pass
        if sup is not None:
            sup.close()
        os.close(rpipe)
        parent_sock.close()


def _reap(pid: int, traced: Any, timeout: float) -> int:
    """The child's wait status: waitpid, or on ptrace what its tracer saw
    (this thread must not wait for a tracee: it would take its stops)."""
    if traced is None:
        return os.waitpid(pid, 0)[1]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = traced.exit_status(pid, 0.05)
        if st is not None:
            return st
        if not traced.tracing:
            # Its tracer is gone (its EXITKILL killed the probe): ours again.
            return os.waitpid(pid, 0)[1]
    raise TimeoutError(f"probe {pid}: not reaped by its tracer in {timeout}s")
