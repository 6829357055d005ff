"""One workload in one container on the Debian rootfs.

Every container gets: its own overlay root (overlay.py), Docker's default
capability set (as Docker grants it: bounding/effective/permitted, no
ambient set, no_new_privs off, so su/postgres/nginx can switch users), its
own network namespace (loopback only: nothing a workload does can leave the
machine; gVisor runs with --network=none, which is its loopback-only mode),
the harness's scripts read-only at /compat, and an output directory bound
read-write at /compat-out.  Runtimes are called through
benchmarks._runtimes (files for stdio, timeouts, `delete --force` of every id
on cleanup).
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks._runtimes import Result, Runtime
from benchmarks.compat.overlay import Overlay
from benchmarks.escape.harness import DOCKER_CAPS, held_caps
from runsc_py.spec import default_spec

log = logging.getLogger("compat.container")

HERE = Path(__file__).resolve().parent
SCRIPTS = HERE / "apps"
ENV = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
       "HOME=/root", "LANG=C.UTF-8", "TERM=dumb", "DEBIAN_FRONTEND=noninteractive"]


def compat_spec(root: Path, args: list[str], out_dir: Path, cwd: str = "/root",
                hostname: str = "compat") -> dict[str, Any]:
    spec = default_spec()
    proc = spec["process"]
    proc.update(terminal=False, args=args, env=list(ENV), cwd=cwd, noNewPrivileges=False)
    held = held_caps()
    caps = [c for c in DOCKER_CAPS if c in held]
    proc["capabilities"] = {k: list(caps) for k in ("bounding", "effective", "permitted")}
    proc["rlimits"] = [{"type": "RLIMIT_NOFILE", "hard": 4096, "soft": 1024}]
    spec["root"] = {"path": str(root), "readonly": False}
    spec["hostname"] = hostname
    spec["mounts"] += [
        {"destination": "/compat", "type": "bind", "source": str(SCRIPTS),
         "options": ["rbind", "ro", "nosuid", "nodev"]},
        {"destination": "/compat-out", "type": "bind", "source": str(out_dir),
         "options": ["rbind", "rw", "nosuid", "nodev"]},
    ]
    # /dev/shm as Docker's 64 MiB is tight for postgres and multiprocessing tests.
    for m in spec["mounts"]:
        if m["destination"] == "/dev/shm":
            m["options"] = [o for o in m["options"] if not o.startswith("size=")] + ["size=268435456"]
    return spec


@dataclass
class Run:
    result: Result
    out_dir: Path          # what the workload left in /compat-out (caller removes)


def run(rt: Runtime, lower: Path, work: Path, case: str, args: list[str], timeout: float,
        cwd: str = "/root") -> Run:
    """Run ARGS in a fresh container of RT on an overlay of LOWER; wait for
    it (up to TIMEOUT), delete it, unmount and remove its root.  The caller
    removes run.out_dir."""
    out_dir = Path(tempfile.mkdtemp(prefix=f"out-{case}-", dir=work))
    out_dir.chmod(0o777)
    bundle = Path(tempfile.mkdtemp(prefix=f"bundle-{case}-", dir=work))
    try:
        with Overlay(lower, work, name=f"root-{case}") as ovl:
            spec = compat_spec(ovl.merged, args, out_dir, cwd=cwd)
            (bundle / "config.json").write_text(json.dumps(spec, indent=1))
            cid = rt.new_id(case)
            try:
                res = rt.call("run", "--bundle", str(bundle), cid, timeout=timeout)
            finally:
                rt.delete(cid)
                rt.session.forget(rt, cid)
    finally:
        shutil.rmtree(bundle, ignore_errors=True)
    return Run(res, out_dir)
