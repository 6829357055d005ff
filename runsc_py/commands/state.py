"""runsc-py state: print the OCI state of a container as JSON."""

from __future__ import annotations


from .. import jsonio
from ..cli import Globals

TYPE_CHECKING = False  # typing.TYPE_CHECKING, whose import the short commands do without (test_startup.py)
if TYPE_CHECKING:  # argparse is imported only for help and errors (flags.py)
    import argparse


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("id")


def run(g: Globals, a: argparse.Namespace) -> int:
    from ..container import oci_state
    from ..state import Store
    store = Store(g.root)
    st = store.load(a.id)
    print(jsonio.dumps(oci_state(store, st), indent=2))
    return 0
