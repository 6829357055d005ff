"""The escape suite (benchmarks/escape) as a differential test.

A security test that cannot fail proves nothing: probes that runc blocks too
pass under any sandbox.  Each probe here runs with the suite's "privileged"
profile (`docker run --privileged -v /proc:/hostproc`: every capability, no
masked or read-only paths, every device, /sys and cgroups read-write, the
host's /proc bind-mounted) three times:

- under runc: the POSITIVE CONTROL.  It must get through (ALLOWED or
  ESCAPED): the probe, on this host, does see the hole it looks for.  If runc
  blocks it, the test FAILS rather than skip it: the probe no longer detects
  anything here (a kernel, host or probe change), and the sandbox's BLOCKED
  would prove nothing.  Fix the probe or replace it.
- under the runsc-py under test ($RUNSC_PY_TEST_RUNTIME), in each
  file-access mode (directfs, gofer): it must be BLOCKED.

The probes (each in its own container; ~30 s in all): core_pattern written
directly, through /proc/self/fd/N of a read-only fd and through the host's
/proc at /hostproc (the host-wide knob table, sentry/kernobj.py, and the
refusal of a foreign procfs, sentry/procfs.py); a sysfs knob; the classic
release_agent write through a new cgroup v1 mount; /proc/timer_list (a host
secret); a host process's root and command line through /hostproc (the
host marker; the command line is what the refusal of a foreign procfs
alone stops: it is world-readable and needs no ptrace access); the
"shocker" open_by_handle_at.  Not here: the host block device (this
machine refuses block device opens even to the host's root, so runc's
control blocks too; it stays in the suite, with that note).

Every probe writes back the value already there; the harness compares and
restores the host's knobs after each one, and the Suite context manager
deletes every container, marker, key and file even when an assertion fails.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

import helpers

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.escape.harness import Suite  # noqa: E402

PROFILE = "privileged"
PROBES = ["core_pattern", "core_pattern.fd_reopen", "core_pattern.hostproc", "ksm_pages_to_scan",
          "release_agent", "timer_list", "hostproc_root", "hostproc_cmdline", "open_by_handle"]
MODES = ("directfs", "gofer")


@pytest.mark.runsc_py_only  # the sandbox side must be runsc-py: runc is the control
@pytest.mark.skipif(os.geteuid() != 0, reason="the runtimes need root")
@pytest.mark.skipif(not shutil.which("gcc"), reason="needs gcc for the static probes")
@pytest.mark.skipif(not shutil.which("runc"), reason="needs runc (the positive control)")
def test_escape_probes_get_through_runc_and_not_runsc_py() -> None:
    sandbox = helpers.runtime_binary()
    with Suite() as suite:
        control = suite.run("runc", [PROFILE], PROBES)["results"][PROFILE]
        under = {mode: suite.run(f"runsc-py-{mode}", [PROFILE], PROBES,
                                 argv=[sandbox, f"--file-access={mode}"])["results"][PROFILE]
                 for mode in MODES}
        work, marker = suite.work, suite.host.marker if suite.host else ""
    assert not work.exists() and not os.path.exists(marker), "the suite left files behind"

    lost = {p: f"{r['verdict']}: {r['detail']}" for p, r in control.items()
            if r["verdict"] not in ("ALLOWED", "ESCAPED")}
    assert not lost, ("positive control lost: runc blocked these probes, which then prove "
                      f"nothing on this host (fix or replace them): {lost}")
    holes = {(mode, p): f"{r['verdict']}: {r['detail']}" for mode, row in under.items()
             for p, r in row.items() if r["verdict"] != "BLOCKED"}
    assert not holes, f"runsc-py did not block what runc lets through: {holes}"
