"""runsc-py list: list containers (table, --format json, or -q ids)."""

from __future__ import annotations


from .. import jsonio
from ..cli import Globals

TYPE_CHECKING = False  # typing.TYPE_CHECKING, whose import the short commands do without (test_startup.py)
if TYPE_CHECKING:  # argparse is imported only for help and errors (flags.py)
    import argparse


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", "-f", default="table", choices=["table", "json"])
    p.add_argument("--quiet", "-q", action="store_true", help="print only ids")


def run(g: Globals, a: argparse.Namespace) -> int:
    from ..container import oci_state
    from ..errors import RuntimeFailure
    from ..state import Store
    store = Store(g.root)
    rows = []
    for cid in store.ids():
        try:
            rows.append(oci_state(store, store.load(cid)))
        except RuntimeFailure:
            continue
    if a.quiet:
        for r in rows:
            print(r["id"])
    elif a.format == "json":
        print(jsonio.dumps(rows))
    else:
        fmt = "{:<20} {:<10} {:<10} {:<40} {:<32} {}"
        print(fmt.format("ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"))
        for r in rows:
            print(fmt.format(r["id"], r["pid"], r["status"], r["bundle"], r["created"], r["owner"]))
    return 0
