"""A fast subset of the compatibility harness's application matrix
(benchmarks/compat, issue 15 item 3): real applications in the Debian
bookworm rootfs, under the runtime under test, in both file-access modes.

The rootfs is built by debootstrap on first use (a few minutes) and cached
in /var/cache/runsc-py-compat/; every container gets a private overlay of it
under the test's work dir (unmounted in the fixture's teardown, before the
leak check looks for mounts).  Each app is the harness's own script
(benchmarks/compat/apps/NAME.sh), which does real work and prints OK last.

Apps that fail today on known sandbox gaps are strict xfails naming the
cause (benchmarks/compat/FINDINGS.md): once the sandbox is fixed the test
XPASSes, which fails the suite, and the marker must go.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Iterator

import pytest

from helpers import Runtime, TestContext

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.compat import container, rootfs  # noqa: E402
from benchmarks.compat.apps import APPS  # noqa: E402
from benchmarks.compat.overlay import Overlay  # noqa: E402

pytestmark = pytest.mark.slow

MODES = {"directfs": (), "gofer": ("--file-access=gofer",)}
# app -> why it fails under runsc-py today (None: it must pass)
APPS_UNDER_TEST: dict[str, str | None] = {
    "nginx": None,      # was: ioctl(FIOASYNC) ENOTTY and epoll_create ENOSYS
    "postgres": None,   # was: EACCES on its own fds after a uid change, SysV shm ENOSYS,
                        # peer authentication seeing the sentry as the client
    "python": None,
    "redis": None,      # was: epoll_create ENOSYS
    "sqlite": None,
    "tar-xz": None,     # was: O_PATH opens EBADF (ADDFD refuses O_PATH files)
    "su": None,         # was: setpriority ENOSYS (PAM's pam_limits)
}


@pytest.fixture(scope="session")
def debian_rootfs() -> Path:
    if not shutil.which("debootstrap"):
        pytest.fail("debootstrap is not installed: scripts/setup.sh installs it")
    return rootfs.ensure()


@pytest.fixture
def overlay(debian_rootfs: Path, test_ctx: TestContext) -> Iterator[Overlay]:
    ovl = Overlay(debian_rootfs, test_ctx.workdir, name="root")
    with ovl:
        yield ovl


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("app", list(APPS_UNDER_TEST))
def test_app(app: str, mode: str, runtime: Runtime, overlay: Overlay,
             request: pytest.FixtureRequest) -> None:
    if runtime.is_runc:
        if mode != "directfs":
            pytest.skip("file-access modes are runsc-py's")
    elif APPS_UNDER_TEST[app]:
        request.applymarker(pytest.mark.xfail(strict=True, reason=APPS_UNDER_TEST[app]))
    out = runtime.ctx.workdir / "out"
    out.mkdir(mode=0o777)
    bundle = runtime.ctx.workdir / "bundle"
    bundle.mkdir()
    spec = container.compat_spec(overlay.merged, ["/bin/sh", "-x", f"/compat/{app}.sh"], out)
    (bundle / "config.json").write_text(json.dumps(spec))
    cid = runtime.new_id(app)
    res = runtime.run("run", "--bundle", bundle, cid, global_args=MODES[mode],
                      timeout=APPS[app][1])
    runtime.run("delete", "--force", cid)
    lines = res.stdout.rstrip().splitlines()
    assert res.returncode == 0 and lines[-1:] == ["OK"], \
        f"{app} failed (exit {res.returncode}):\n" + "\n".join(
            (res.stdout + res.stderr).strip().splitlines()[-20:])


@pytest.mark.parametrize("mode", list(MODES))
def test_vfork_with_a_running_thread(mode: str, runtime: Runtime, overlay: Overlay) -> None:
    """CPython's subprocess vforks while another thread runs: glibc aborted
    ("The futex facility returned an unexpected error code") in 4 runs of 5
    on 27b0983 (benchmarks/compat/FINDINGS.md section 2; test_subprocess
    lost all its cases).  Five runs of the reproducer, 200 vforks each."""
    if runtime.is_runc and mode != "directfs":
        pytest.skip("file-access modes are runsc-py's")
    out = runtime.ctx.workdir / "out"
    out.mkdir(mode=0o777)
    bundle = runtime.ctx.workdir / "bundle"
    bundle.mkdir()
    script = "for i in 1 2 3 4 5; do python3 /compat/repro/vfork_futex.py vfork || exit 1; done"
    spec = container.compat_spec(overlay.merged, ["/bin/sh", "-c", script], out)
    (bundle / "config.json").write_text(json.dumps(spec))
    cid = runtime.new_id("vfork")
    res = runtime.run("run", "--bundle", bundle, cid, global_args=MODES[mode], timeout=300)
    runtime.run("delete", "--force", cid)
    assert res.returncode == 0 and res.stdout.split() == ["ok"] * 5, str(res)
