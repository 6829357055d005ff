"""runsc-py events: container statistics as JSON lines (--stats: one line)."""

from __future__ import annotations

import json
import re
import sys
import time
TYPE_CHECKING = False  # typing's, without importing typing (docs/performance.md, Start-up)

from ..cli import Globals

if TYPE_CHECKING:  # argparse is imported only for help and errors (flags.py)
    import argparse


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--stats", action="store_true", help="print the statistics once and exit")
    p.add_argument("--interval", default="5s", help="interval between stats (default 5s)")
    p.add_argument("id")


def parse_duration(text: str) -> float:
    total = 0.0
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001, "us": 1e-6, "ns": 1e-9}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|us|ns|h|m|s)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        from ..errors import RuntimeFailure
        raise RuntimeFailure(f"invalid interval: {text!r}")
    for n, u in parts:
        total += float(n) * units[u]
    return total


def run(g: Globals, a: argparse.Namespace) -> int:
    import gc
    gc.enable()  # a long-lived command: the launcher turned the collector off for the start-up
    from ..cgroups import CgroupManager
    from ..errors import ContainerNotRunning
    from ..state import Status, Store
    store = Store(g.root)
    st = store.load(a.id)
    interval = parse_duration(a.interval)
    if store.status(st) is Status.STOPPED:
        raise ContainerNotRunning()
    cg = CgroupManager.from_dict(st.cgroup)
    while True:
        print(json.dumps({"type": "stats", "id": st.id, "data": cg.stats()}), flush=True)
        if a.stats:
            return 0
        time.sleep(interval)
        if store.status(st) is Status.STOPPED:
            return 0
        sys.stdout.flush()
