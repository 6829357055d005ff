"""runsc-py pause: freeze every process of a container."""

from __future__ import annotations


from ..cli import Globals

TYPE_CHECKING = False  # typing.TYPE_CHECKING, whose import the short commands do without (test_startup.py)
if TYPE_CHECKING:  # argparse is imported only for help and errors (flags.py)
    import argparse


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("id")


def run(g: Globals, a: argparse.Namespace) -> int:
    from .. import container
    from ..state import Store
    container.pause(Store(g.root), a.id)
    return 0
