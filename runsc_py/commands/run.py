"""runsc-py run: create and start a container; attached unless --detach."""

from __future__ import annotations

TYPE_CHECKING = False  # typing's, without importing typing (docs/performance.md, Start-up)

from ..cli import Globals

if TYPE_CHECKING:  # argparse is imported only for help and errors (flags.py)
    import argparse
from . import create


def configure(p: argparse.ArgumentParser) -> None:
    create.configure(p)
    p.add_argument("--detach", "-d", action="store_true", help="do not wait for the container")
    p.add_argument("--keep", action="store_true", help="do not delete the container after it exits")
    p.add_argument("--no-subreaper", action="store_true", help="accepted for compatibility")


def run(g: Globals, a: argparse.Namespace) -> int:
    from ..errors import RuntimeFailure
    store, st = create.create_from_args(g, a)
    # After the sandbox's fork (create): nothing the sandbox needs, so off
    # the path both share (docs/performance.md, Start-up).
    from .. import container
    from ..signals import wait_forwarding
    try:
        container.start(store, a.id)
    except RuntimeFailure:
        _cleanup(store, a.id)
        raise
    if a.detach:
        return 0
    code = wait_forwarding(st.pid, st.init_pid)
    from ..timeline import mark
    mark("run.exited")
    if not a.keep:
        _cleanup(store, a.id)
    return code


def _cleanup(store, cid: str) -> None:  # type: ignore[no-untyped-def]
    from .. import container
    container.delete(store, cid, force=True)
