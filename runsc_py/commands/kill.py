"""runsc-py kill: send a signal (number or name, default TERM) to a container."""

from __future__ import annotations


from ..cli import Globals

TYPE_CHECKING = False  # typing.TYPE_CHECKING, whose import the short commands do without (test_startup.py)
if TYPE_CHECKING:  # argparse is imported only for help and errors (flags.py)
    import argparse


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--all", "-a", action="store_true", help="signal every process of the container")
    p.add_argument("id")
    p.add_argument("signal", nargs="?", default="SIGTERM")


def run(g: Globals, a: argparse.Namespace) -> int:
    from .. import container
    from ..signals import parse_signal
    from ..state import Store
    sig = parse_signal(a.signal)
    container.kill(Store(g.root), a.id, sig, a.all)
    return 0
