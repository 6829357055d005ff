"""Smoke test of the escape-attempt suite (benchmarks/escape) under runsc-py.

Four probes, the runc-default profile: nothing may report ESCAPED, and the
dangerous families (chroot breakout, bpf, file handles, block devices) must
be BLOCKED.  Runs in a few seconds, so it is not marked slow.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.escape.harness import run_suite  # noqa: E402

PROBES = ["chroot_escape", "bpf_prog_load", "open_by_handle", "mknod_blockdev"]


@pytest.mark.skipif(os.geteuid() != 0, reason="the runtime needs root")
@pytest.mark.skipif(not shutil.which("gcc"), reason="needs gcc for the static probes")
def test_escape_probes_blocked_under_runsc_py() -> None:
    # The runtime name of the platform under test (benchmarks/_runtimes.py).
    name = "runsc-py-ptrace" if os.environ.get("RUNSC_PY_TEST_PLATFORM") == "ptrace" else "runsc-py"
    res = run_suite(name, ["runc-default"], PROBES)
    row = res["results"]["runc-default"]
    verdicts = {name: (r["verdict"], r["detail"]) for name, r in row.items()}
    assert set(verdicts) == set(PROBES)
    assert not [n for n, (v, _) in verdicts.items() if v == "ESCAPED"], verdicts
    assert all(v == "BLOCKED" for v, _ in verdicts.values()), verdicts
    assert not os.path.exists(res["work"]) and not os.path.exists(res["marker"]), "left behind"
