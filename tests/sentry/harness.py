"""Run a static probe under the sentry's filter in a plain forked child.

fork -> child: dup2 stdout to a pipe, install the (prepared) filter, send the
listener over a socketpair, close it, execv the probe.  Parent: receive the
listener, run a Supervisor on it, collect the output.  The child is always
killed and reaped, whatever happens.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import threading
import time
from dataclasses import dataclass

from sentry.call import Sandbox, SentryOptions
from sentry.handoff import receive_listener
from sentry.install import prepare_filter, send_listener
from sentry.policy import PolicyOptions
from sentry.supervisor import Supervisor


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
              timeout: float = 60.0) -> Run:
    prepared = prepare_filter(policy)
    parent_sock, child_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    rpipe, wpipe = os.pipe()
    root_fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    argv = [probe, *args]
    pid = os.fork()
    if pid == 0:  # child: no allocation-heavy work past this point
        try:
            os.dup2(wpipe, 1)
            if cwd:
                os.chdir(cwd)
            if as_uid is not None:
                os.setgroups([])
                os.setgid(as_uid)
                os.setuid(as_uid)
            fd = prepared.install()
            send_listener(child_sock, fd)
            os.execv(probe, argv)
        finally:
            os._exit(127)
    os.close(wpipe)
    child_sock.close()
    sup = None
    try:
        parent_sock.settimeout(timeout)
        lfd = receive_listener(parent_sock)
        opts = SentryOptions(hostname=hostname, policy=policy or PolicyOptions())
        sup = Supervisor(lfd, Sandbox(root_fd, opts), threads=threads, sync_wakeup=sync_wakeup)
        sup.start()
        waiter = threading.Thread(target=sup.wait, daemon=True)  # stall monitor
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
        _, status = os.waitpid(pid, 0)
        pid = 0
        waiter.join(timeout=5)
        return Run(status, out.decode(errors="replace"), sup.handled, sup.workers)
    finally:
        if pid:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            os.waitpid(pid, 0)
        if sup is not None:
            sup.close()
        os.close(rpipe)
        os.close(root_fd)
        parent_sock.close()
