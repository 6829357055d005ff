"""Smoke test of the host-side posture tool (benchmarks/posture) on runsc-py.

A live `sleep` container is inspected from outside through the tool's command
line (`python -m benchmarks.posture --runtime runsc-py --root R --json ID`):
the report must have a row for the sandbox process (the pid `state`
reports), every workload process must run under a seccomp filter, and no
workload fd may lead to the host beyond the stdio the runtime was given.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import workload_pid

REPO = Path(__file__).resolve().parent.parent

pytestmark = [pytest.mark.runsc_py_only,
              pytest.mark.skipif(os.geteuid() != 0, reason="the runtime needs root")]


def test_posture_of_a_live_runsc_py_sandbox(runtime, bundle) -> None:
    b = bundle(["sleep", "3600"], rootfs="shared")
    with runtime.container(b) as c:
        sleeper = workload_pid(runtime, c.id, "sleep")
        r = subprocess.run([sys.executable, "-m", "benchmarks.posture", "--runtime", "runsc-py",
                            "--root", str(runtime.root), "--json", c.id],
                           cwd=REPO, capture_output=True, text=True, timeout=120,
                           stdin=subprocess.DEVNULL)
        assert r.returncode == 0, r.stderr
        [res] = json.loads(r.stdout)
        procs = {p["pid"]: p for p in res["processes"]}

        sandbox = procs.get(c.pid)
        assert sandbox is not None, f"no row for the sandbox process {c.pid}: {sorted(procs)}"
        assert sandbox["state_pid"] and sandbox["role"] == "helper", sandbox

        workload = [p for p in procs.values() if p["role"] == "workload"]
        assert sleeper in {p["pid"] for p in workload}, (sleeper, sorted(procs))
        for p in workload:
            assert p["seccomp"] == 2 and p["seccomp_filters"] >= 1, p
            leaked = [f for f in p["fds"] if f["flagged"] and f["note"] not in ("stdio",)]
            assert not leaked, leaked
