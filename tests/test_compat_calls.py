"""Calls real programs make (issue 15), each answered as under runc: a
static C probe (tests/compatprobe.c) runs in a real container under runc
and under runsc-py in both file-access modes, with Docker's capabilities,
and every line must match.  Where runsc-py answers differently on purpose,
the line is in KNOWN with the reason (also in the README)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Iterator

import pytest

from helpers import Runtime, run_ok

pytestmark = pytest.mark.runsc_py_only

PROBE_C = Path(__file__).parent / "compatprobe.c"
MODES = ["directfs", "gofer"]
DOCKER_CAPS = ["CAP_" + c for c in (
    "CHOWN DAC_OVERRIDE FSETID FOWNER MKNOD NET_RAW SETGID SETUID SETFCAP SETPCAP "
    "NET_BIND_SERVICE SYS_CHROOT KILL AUDIT_WRITE").split()]
GROUPS = ["files", "fds", "sched", "sigs", "ipc", "aio", "memory", "procs", "unix", "nodump"]

# label -> why runsc-py's line differs from runc's
KNOWN: dict[str, str] = {
    "unix-peercred-pid-is-client": "the sentry connects for the caller: the peer pid the kernel records "
                                   "is the sentry's, outside the container's pid namespace (0)",
}


@pytest.fixture(scope="module")
def compatprobe() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="rsp-compat-", dir="/tmp"))
    subprocess.run(["gcc", "-static", "-O2", "-o", str(d / "compatprobe"), str(PROBE_C), "-lrt"],
                   check=True, capture_output=True)
    yield d / "compatprobe"
    shutil.rmtree(d, ignore_errors=True)


def _lines(rt: Runtime, bundle, probe: Path, group: str, extra: list[str], name: str) -> list[str]:  # type: ignore[no-untyped-def]
    b = bundle(["/compatprobe", group], name=name, files={"compatprobe": probe.read_bytes()},
               config={"process": {"capabilities": {k: DOCKER_CAPS for k in
                                                    ("bounding", "effective", "permitted")}},
                       "mounts": None},
               edit=_tmp if group != "unix" else _writable_root)
    (b.rootfs / "compatprobe").chmod(0o755)
    return run_ok(rt, b, global_args=extra, timeout=120).splitlines()


def _writable_root(spec: dict) -> None:
    """The unix group binds in a directory of the rootfs too (served by the
    gofer in gofer mode)."""
    _tmp(spec)
    spec["root"]["readonly"] = False


def _tmp(spec: dict) -> None:
    from helpers import default_spec
    spec["mounts"] = default_spec()["mounts"] + [
        {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["mode=1777"]}]


@pytest.mark.parametrize("group", GROUPS)
def test_calls_answer_as_under_runc(runtime, bundle, test_ctx, compatprobe, group):
    runc = Runtime(test_ctx, "/usr/sbin/runc", root=test_ctx.workdir / "runc-root", is_runc=True)
    want = _lines(runc, bundle, compatprobe, group, [], f"runc-{group}")
    assert len(want) >= 3, want
    for mode in MODES:
        got = _lines(runtime, bundle, compatprobe, group, [f"--file-access={mode}"], f"{mode}-{group}")
        diffs = [(w, g) for w, g in zip(want, got) if w != g and w.split()[0] not in KNOWN]
        assert not diffs and len(want) == len(got), f"{mode}:\n" + "\n".join(
            f"runc:     {w}\nrunsc-py: {g}" for w, g in diffs) + (
            "" if len(want) == len(got) else f"\n{len(want)} lines under runc, {len(got)} here")


def test_unix_binds_leave_the_sentrys_root_empty(runtime, bundle, compatprobe):
    """The scratch tree that gives a bind its caller's name (sentry/
    unixnames.py) is gone after every bind: the sandbox process's root
    holds only its /proc again."""
    from helpers import wait_ready
    for mode in MODES:
        b = bundle(["sh", "-c", "/compatprobe unix >/dev/null; echo ready; exec sleep 30"],
                   name=f"scratch-{mode}", files={"compatprobe": compatprobe.read_bytes()},
                   edit=_writable_root)
        (b.rootfs / "compatprobe").chmod(0o755)
        with runtime.container(b, global_args=[f"--file-access={mode}"]) as c:
            wait_ready(c)
            assert sorted(os.listdir(f"/proc/{c.pid}/root")) == ["proc"], mode
