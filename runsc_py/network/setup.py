"""The network set-up helper: one short-lived process per `create` that,
once the workload's namespace exists, joins it and installs what the mode
and the policy need: loopback up and the backstop's rules (backstop.py,
two kinds of rtnetlink request encoded there), the bridge's veth end
(bridge.py, through pyroute2's IPRoute, imported only then).

Order in `create` (launch.py), as runc's: the namespaces exist, then the
network is set up, then the prestart/createRuntime hooks run.  The helper
is forked before the sandbox process (no thread is running: a fork never
copies a half-imported module) and dies with the runtime (PDEATHSIG).
It never touches the runtime's own namespace (the host's): a spec that
joins it by path (a CRI pod with host networking) gets no rule there.

Wire: one JSON document each way on a stream socketpair, each ended by
closing that direction (a deny list can be long): the job
{"netns": path, "lo": bool, "nets": [CIDR...], "bridge": {...}|null}, the
answer {"ok": true, ...} or {"error": "..."}.
"""

from __future__ import annotations

import ipaddress
import json
import os
import _signal  # signal.py's C module: signal.py imports enum (runsc_py/signals.py)
from runsc_py import sockets  # socket's API without socket.py's enums (sockets.py)
import time
TYPE_CHECKING = False  # typing's, without importing typing (docs/performance.md, Start-up)
if TYPE_CHECKING:
    from typing import Any

from .. import libc
from ..errors import RuntimeFailure
from ..record import Record
from runsc_py.log import get_logger

log = get_logger(__name__)

TIMEOUT = 20.0


class Helper(Record):
    pid: int
    sock: sockets.socket

    @classmethod
    def start(cls) -> "Helper":
        ours, theirs = sockets.socketpair(sockets.AF_UNIX, sockets.SOCK_STREAM)
        pid = os.fork()
        if pid == 0:  # ------------------------------------------------ helper
            code = 1
            try:
                ours.close()
                libc.prctl(libc.PR_SET_PDEATHSIG, _signal.SIGKILL)
                code = _serve(theirs)
            except BaseException:
                log.exception("network set-up helper failed")
            finally:
                os._exit(code)
        theirs.close()
        return cls(pid, ours)

    def run(self, job: dict[str, Any]) -> dict[str, Any]:
        """Send the job, wait for the answer (RuntimeFailure on an error)."""
        try:
            self.sock.settimeout(TIMEOUT)
            self.sock.sendall(json.dumps(job).encode())
            self.sock.shutdown(sockets.SHUT_WR)
            data = _read_all(self.sock)
        except (OSError, sockets.timeout) as e:
            raise RuntimeFailure(f"network set-up: {e}") from None
        finally:
            self.close()
        if not data:
            raise RuntimeFailure("network set-up: the helper died")
        ans = json.loads(data)
        if "error" in ans:
            raise RuntimeFailure(f"network set-up: {ans['error']}")
        return ans

    def close(self) -> None:
        """Stop the helper (if still running) and reap it."""
        self.sock.close()
        for _ in range(200):
            try:
                pid, _ = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                return
            if pid:
                return
            time.sleep(0.005)
        try:
            os.kill(self.pid, _signal.SIGKILL)
            os.waitpid(self.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass


def _serve(sock: sockets.socket) -> int:
    data = _read_all(sock)
    if not data:
        return 0
    job = json.loads(data)
    try:
        ans = _do(job)
    except Exception as e:  # reported to the runtime, which fails create
        ans = {"error": str(e)}
    sock.sendall(json.dumps(ans).encode())
    sock.shutdown(sockets.SHUT_WR)
    return 0


def _read_all(sock: sockets.socket) -> bytes:
    parts = []
    while chunk := sock.recv(1 << 16):
        parts.append(chunk)
    return b"".join(parts)


def _do(job: dict[str, Any]) -> dict[str, Any]:
    ans: dict[str, Any] = {"ok": True}
    own = os.stat("/proc/self/ns/net").st_ino
    fd = os.open(job["netns"], os.O_RDONLY | os.O_CLOEXEC)
    try:
        if os.fstat(fd).st_ino == own:
            # A spec joining the host's namespace by path (a CRI pod with
            # host networking): the policy is the sentry's alone there.
            if job.get("bridge"):
                raise RuntimeError(f"{job['netns']} is the runtime's own network namespace: "
                                   "no interface is put there")
            return {"ok": True, "rules": 0, "skipped": "the host's namespace"}
        if job.get("bridge"):
            from . import _pyroute2, bridge
            ans["bridge"] = bridge.attach_host(_pyroute2.full(), fd, job["bridge"])
        libc.setns(fd, libc.CLONE_NEWNET)
    finally:
        os.close(fd)
    from . import backstop
    nl = backstop.Netlink()
    try:
        if job.get("lo"):
            backstop.loopback_up(nl)
        if job.get("bridge"):
            from . import _pyroute2, bridge
            with _pyroute2.full()() as ipr:
                bridge.configure_inside(ipr, ans["bridge"])
        nets = [ipaddress.ip_network(n) for n in job.get("nets") or []]
        ans["rules"] = backstop.install(nl, nets)
    finally:
        nl.close()
    return ans
