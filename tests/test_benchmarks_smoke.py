"""Smoke test of benchmarks/run.py: it runs, cleans up and writes numbers.

Timings are never asserted (the machine is shared and noisy); only that the
output files exist and hold numbers, and that a failing op is reported as
"n/a (error)" instead of failing the run.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks._report import markdown, summarize  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.mark.skipif(os.geteuid() != 0, reason="the runtimes need root")
@pytest.mark.skipif(not (shutil.which("runc") and shutil.which("gcc")), reason="needs runc and gcc")
def test_run_start_and_microbench(tmp_path: Path) -> None:
    out = tmp_path / "out"
    chart = importlib.util.find_spec("matplotlib") is not None
    # The runtime name of the platform under test (benchmarks/_runtimes.py).
    us = "runsc-py-ptrace" if os.environ.get("RUNSC_PY_TEST_PLATFORM") == "ptrace" else "runsc-py"
    cmd = [sys.executable, "-m", "benchmarks.run", "--runtimes", f"runc,{us}",
           "--cases", "start,microbench", "--repeat", "1", "--budget", "0.01",
           "--out", str(out), "--quiet"] + ([] if chart else ["--no-chart"])
    before = set(Path("/tmp").glob("rsp-bench-*"))
    r = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    assert (out / "results.md").is_file() and (out / "results.json").is_file()
    if chart:
        assert (out / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    res = json.loads((out / "results.json").read_text())
    assert res["runtimes"] == ["runc", us], res.get("unavailable")
    summary = res["summary"]
    for rt in ("runc", us):
        assert isinstance(summary["start/start"][rt]["median"], (int, float))
    for key, row in summary.items():
        if key.startswith("microbench/"):
            assert isinstance(row["runc"]["median"], (int, float)), (key, row["runc"])
            # runsc-py must have run every operation: an error recorded for
            # the table (n/a) is a failure here.
            assert isinstance(row[us].get("median"), (int, float)), (key, row[us])
            assert not row[us].get("errors"), (key, row[us])
    md = (out / "results.md").read_text()
    assert "| start-to-exit /bin/true | ms |" in md
    assert f"{us}/runc" in md
    assert md == r.stdout.rstrip("\n") + "\n"
    assert set(Path("/tmp").glob("rsp-bench-*")) <= before  # its scratch dir is gone


def test_failed_op_is_na_in_table() -> None:
    raw = {"microbench": {"stat": {"runc": [1.0, 1.2], "runsc-py": ["stat: Function not implemented (errno 38)"]}}}
    result = {
        "date": "2000-01-01 00:00:00",
        "machine": {"cpu": "x", "cpus": 2, "mem_gib": 1, "kernel": "6", "distro": "d", "commit": "c",
                    "loadavg_start": (0, 0, 0)},
        "versions": {}, "runtimes": ["runc", "runsc-py"], "options": {}, "repeats": {"microbench": 2},
        "metrics": {"microbench/stat": {"label": "stat", "unit": "us/op"}},
        "raw": raw,
    }
    result["summary"] = summarize(raw)
    md = markdown(result)
    row = next(ln for ln in md.splitlines() if ln.startswith("| stat |"))
    assert "1.10" in row and "n/a (error)" in row
    assert "Function not implemented" in md
