"""runsc-py run: create and start a container; attached unless --detach."""

from __future__ import annotations

import argparse
import os
import signal

from ..cli import Globals
from . import create


def configure(p: argparse.ArgumentParser) -> None:
    create.configure(p)
    p.add_argument("--detach", "-d", action="store_true", help="do not wait for the container")
    p.add_argument("--keep", action="store_true", help="do not delete the container after it exits")
    p.add_argument("--no-subreaper", action="store_true", help="accepted for compatibility")


def run(g: Globals, a: argparse.Namespace) -> int:
    from .. import container
    from ..errors import RuntimeFailure
    store, st = create.create_from_args(g, a)
    if not a.detach and st.config["process"].get("terminal") and not a.console_socket:
        pass  # create() already refused a terminal without a console socket
    try:
        container.start(store, a.id)
    except RuntimeFailure:
        _cleanup(store, a.id)
        raise
    if a.detach:
        return 0
    code = _wait(st.pid, st.init_pid)
    if not a.keep:
        _cleanup(store, a.id)
    return code


def _wait(pid: int, init_pid: int) -> int:
    """Wait for the sandbox (our child) and forward signals to the workload."""
    def forward(sig: int, _frame: object) -> None:
        try:
            os.kill(init_pid, sig)
        except ProcessLookupError:
            pass

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1,
                signal.SIGUSR2, signal.SIGWINCH):
        signal.signal(sig, forward)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def _cleanup(store, cid: str) -> None:  # type: ignore[no-untyped-def]
    from .. import container
    container.delete(store, cid, force=True)
