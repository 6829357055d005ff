"""Round-trip cost of notified calls (run with -s to see the figures).

A behaviour test: every loop completes with the right answers.  The figures
are printed, never asserted (the machines are shared; benchmarks/ measures).

getppid is moved to the emulate tier with a handler that answers 0 (the bare
notification round trip); stat and openat go through the real handlers.
"""

from __future__ import annotations

import logging

import pytest
from harness import run_probe

from sentry.policy import PolicyOptions

log = logging.getLogger(__name__)


@pytest.mark.slow
@pytest.mark.parametrize("sync", [True, False], ids=["sync_wakeup", "no_sync_wakeup"])
def test_round_trip(probe: str, root: str, sync: bool, capsys: pytest.CaptureFixture[str]) -> None:
    pol = PolicyOptions(notify_extra=(("getppid", "bench.null"),))
    r = run_probe(probe, ["loop-getppid=20000", "loop-stat=5000:/etc/hello",
                          "loop-open=3000:/etc/hello"], root, policy=pol, sync_wakeup=sync)
    assert r.status == 0, r.out
    figures = {}
    for line in r.out.splitlines():
        parts = line.split()
        figures[parts[0].split("=")[0]] = float(parts[2])
        if "bad" in parts:
            assert parts[-1] == "0", line
    with capsys.disabled():
        print(f"\nsentry round trip ({'sync' if sync else 'no sync'}): "
              + ", ".join(f"{k} {v:.1f} us/op" for k, v in figures.items()))
