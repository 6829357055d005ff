from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

HERE = Path(__file__).parent


@pytest.fixture(scope="session")
def probe(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    if os.geteuid() != 0:
        pytest.skip("sentry tests need root (process_vm_readv, /proc/PID/fd of the probe)")
    if shutil.which("gcc") is None:
        pytest.skip("gcc not installed")
    # World-traversable: some tests run the probe as uid 1000.
    d = Path(tempfile.mkdtemp(prefix="sentry-probe-", dir="/tmp"))
    os.chmod(d, 0o755)
    out = d / "probe"
    subprocess.run(["gcc", "-static", "-O2", "-o", str(out), str(HERE / "probe.c")], check=True)
    yield str(out)
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def root(tmp_path: Path) -> str:
    """A small container root: /etc/hello, /sub/abs -> /etc/hello, /sub/up -> ../etc."""
    r = tmp_path / "root"
    (r / "etc").mkdir(parents=True)
    (r / "sub").mkdir()
    (r / "etc" / "hello").write_text("hello-root\n")
    (r / "sub" / "abs").symlink_to("/etc/hello")
    (r / "sub" / "escape").symlink_to("../../../../../../etc/hostname")
    (r / "secret").write_text("root-only\n")
    os.chmod(r / "secret", 0o600)
    return str(r)
