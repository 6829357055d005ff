"""runsc-py resume: thaw a paused container."""

from __future__ import annotations

import argparse

from ..cli import Globals


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("id")


def run(g: Globals, a: argparse.Namespace) -> int:
    from .. import container
    from ..state import Store
    container.resume(Store(g.root), a.id)
    return 0
