"""Stopping a container's processes and reaching its sockets: what `start`,
`kill` and `delete` need from the launch sequence, without importing it
(launch.py pulls in init, the sandbox and the sync protocol; a `delete`
needs none of them).
"""

from __future__ import annotations

import os
import select

TYPE_CHECKING = False  # typing's, without importing typing
if TYPE_CHECKING:
    from runsc_py import sockets  # socket's API without socket.py's enums (sockets.py)

from .log import get_logger
from .signals import SIGKILL
from .state import START_SOCKET, ContainerState, proc_start_time

log = get_logger(__name__)  # (runsc_py/log.py: no `logging` import unless a record is written)


def connect_start(state_dir: str) -> sockets.socket:
    return connect(state_dir, START_SOCKET)


def connect(state_dir: str, name: str) -> sockets.socket:
    from . import sockets  # here: `delete` and `kill` import this module without using it
    sock = sockets.socket(sockets.AF_UNIX, sockets.SOCK_STREAM)
    dfd = os.open(state_dir, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        sock.connect(f"/proc/self/fd/{dfd}/{name}")
    finally:
        os.close(dfd)
    return sock


def stop_processes(st: ContainerState, sandbox_pid: int) -> None:
    """SIGKILL init first so the sandbox reaps it and exits; then the sandbox.

    Killing the sandbox first would orphan init to whatever reaps orphans.
    """
    if st.init_pid and proc_start_time(st.init_pid) == st.init_start:
        try:
            os.kill(st.init_pid, SIGKILL)
        except ProcessLookupError:
            pass
        wait_gone(st.init_pid, st.init_start, 2.0)
    if sandbox_pid:
        start = st.pid_start or proc_start_time(sandbox_pid)
        if not wait_gone(sandbox_pid, start or 0, 1.0 if st.init_pid else 0.0):
            try:
                os.kill(sandbox_pid, SIGKILL)
            except ProcessLookupError:
                pass
        try:
            os.waitpid(sandbox_pid, os.WNOHANG if sandbox_pid != _child_of_us(sandbox_pid) else 0)
        except ChildProcessError:
            pass
        wait_gone(sandbox_pid, start or 0)


def _child_of_us(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
        ppid = int(data[data.rfind(b")") + 2:].split()[1])
        return pid if ppid == os.getpid() else -1
    except (OSError, ValueError, IndexError):
        return -1


def wait_gone(pid: int, start: int, timeout: float = 5.0) -> bool:
    """Wait until the process PID that started at START has exited (a
    zombie counts as gone); False if it still runs after TIMEOUT seconds.

    Woken by its pidfd, which polls readable once the process has exited
    (a sleep-and-check loop added up to its step to every delete).  The
    start time is checked again after the pidfd is open: the pid may have
    been reused in between, and then the pidfd names another process."""
    if proc_start_time(pid) != start:
        return True
    try:
        fd = os.pidfd_open(pid)
    except OSError:
        return True  # ESRCH: gone (and reaped) already
    try:
        if proc_start_time(pid) != start:
            return True
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        poller.poll(max(0, int(timeout * 1000)))
        return proc_start_time(pid) != start
    finally:
        os.close(fd)


def remove_network(st: ContainerState) -> None:
    """What --network=bridge made on the host (network/bridge.py, imported
    only when there is one: it needs pyroute2)."""
    cfg = (st.sandbox or {}).get("bridge")
    if cfg:
        from .network import bridge
        try:
            bridge.remove(cfg)
        except Exception as e:  # cleanup continues whatever happens
            log.warning("cleanup of the bridge network failed: %s", e)
