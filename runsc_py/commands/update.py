"""runsc-py update: change the resource limits of a running container."""

from __future__ import annotations

import json
import sys
TYPE_CHECKING = False  # typing's, without importing typing (docs/performance.md, Start-up)
if TYPE_CHECKING:
    from typing import Any

from ..cli import Globals

if TYPE_CHECKING:  # argparse is imported only for help and errors (flags.py)
    import argparse


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--resources", "-r", default=None, help="LinuxResources JSON file, or - for stdin")
    p.add_argument("--memory", type=int, default=None, help="memory limit in bytes")
    p.add_argument("--pids-limit", type=int, default=None)
    p.add_argument("--cpu-quota", type=int, default=None)
    p.add_argument("--cpu-period", type=int, default=None)
    p.add_argument("--cpu-shares", type=int, default=None)
    p.add_argument("--cpuset-cpus", default=None)
    p.add_argument("--cpuset-mems", default=None)
    p.add_argument("id")


def run(g: Globals, a: argparse.Namespace) -> int:
    from ..cgroups import CgroupManager
    from ..errors import ContainerNotRunning, RuntimeFailure
    from ..state import Status, Store
    store = Store(g.root)
    with store.lock(a.id):
        st = store.load(a.id)
        if store.status(st) is Status.STOPPED:
            raise ContainerNotRunning()
        res: dict[str, Any] = {}
        if a.resources:
            try:
                text = sys.stdin.read() if a.resources == "-" else open(a.resources).read()
                res = json.loads(text)
            except (OSError, ValueError) as e:
                raise RuntimeFailure(f"update: read resources {a.resources}: {e}") from None
            if not isinstance(res, dict):
                raise RuntimeFailure("update: resources must be a JSON object")
        mem = res.setdefault("memory", {}) if a.memory is not None else None
        if mem is not None:
            mem["limit"] = a.memory
        if a.pids_limit is not None:
            res.setdefault("pids", {})["limit"] = a.pids_limit
        cpu_flags = {"quota": a.cpu_quota, "period": a.cpu_period, "shares": a.cpu_shares,
                     "cpus": a.cpuset_cpus, "mems": a.cpuset_mems}
        for k, v in cpu_flags.items():
            if v is not None:
                res.setdefault("cpu", {})[k] = v
        CgroupManager.from_dict(st.cgroup).set(res)
        lx = st.config.setdefault("linux", {})
        merged = lx.setdefault("resources", {})
        for k, v in res.items():
            if isinstance(v, dict) and isinstance(merged.get(k), dict):
                merged[k].update(v)
            else:
                merged[k] = v
        store.save(st)
    return 0
