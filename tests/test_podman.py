"""podman (+ conmon) drives runsc-py: `podman --runtime runsc-py run --rm oci:DIR:TAG ...`,
`run -d` + `exec` + `stop`, and the error naming the machine's limit without --ulimit.

Private storage (--root, --runroot, --tmpdir under a temp dir, vfs driver),
no network (--network none: no bridge on the host), cgroupfs under a private
--cgroup-parent, the machine's limits (nofile/nproc 1024: the hard
RLIMIT_NOFILE here is 20000).  The image is the busybox test rootfs as an OCI
layout (umoci).  Teardown removes the containers, unmounts anything left under
the temp dir, removes the cgroup parent and the temp dir.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import time
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from helpers import install_args

from test_containerd import _build_image, _cgroup_dirs, _mounts_under, _pids_naming, scrub

pytestmark = [
    pytest.mark.runsc_py_only,
    pytest.mark.slow,
    pytest.mark.skipif(not (shutil.which("podman") and shutil.which("conmon")
                            and shutil.which("umoci")),
                       reason="podman, conmon and umoci are needed"),
]

TIMEOUT = 120


class Podman:
    def __init__(self, d: Path, binary: str, cgroup_parent: str) -> None:
        self.dir = d
        self.image = f"oci:{d}/layout:bb"
        self.cgroup_parent = cgroup_parent
        self.base = ["podman", "--root", str(d / "root"), "--runroot", str(d / "runroot"),
                     "--tmpdir", str(d / "tmp"), "--storage-driver=vfs",
                     "--runtime", binary, "--cgroup-manager=cgroupfs",
                     "--events-backend=file"]

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        res = subprocess.run([*self.base, *args], stdin=subprocess.DEVNULL,
                             capture_output=True, text=True, timeout=TIMEOUT)
        if check and res.returncode != 0:
            raise AssertionError(f"podman {args} -> {res.returncode}\nstdout: {res.stdout}\n"
                                 f"stderr: {res.stderr}")
        return res

    def run(self, *cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self("run", "--rm", "--network", "none", "--cgroup-parent", self.cgroup_parent,
                    "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024",
                    self.image, *cmd, check=check)


@pytest.fixture(scope="module")
def podman(rootfs_master: Path, runtime_binary: str) -> Iterator[Podman]:
    # Not mkdtemp: its names may hold "_" next to "-" or at the end, which the
    # image reference "oci:DIR:TAG" does not allow in a path component.
    d = Path(f"/tmp/rsp-podman-{uuid.uuid4().hex[:12]}")
    d.mkdir(mode=0o700)
    parent = f"rsp-podman-{uuid.uuid4().hex[:8]}"
    pm = Podman(d, os.path.abspath(runtime_binary), "/" + parent)
    try:
        _build_image(rootfs_master, d)
        yield pm
    finally:
        pm("rm", "--all", "--force", check=False)
        scrub(d, str(d), parent)  # conmon names our --root/--runroot


def _check_clean(pm: Podman) -> None:
    assert pm("ps", "-a", "-q").stdout.strip() == ""
    # After a failed `run --rm`, conmon runs podman's `container cleanup` as its
    # exit command once podman itself has returned: give that a moment.
    deadline = time.monotonic() + 15
    while _pids_naming(str(pm.dir)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _pids_naming(str(pm.dir)), "conmon or container processes left"
    mounts = [m for m in _mounts_under(pm.dir) if "/overlay" in m or "/vfs-containers" in m]
    assert not mounts, mounts
    for cg in _cgroup_dirs(pm.cgroup_parent.lstrip("/")):
        # <parent>/conmon is podman's own cgroup for every conmon; libpod-<id> is the container's
        left = [p for p in cg.iterdir() if p.is_dir() and p.name != "conmon"]
        assert not left, f"cgroups left in {cg}: {left}"


def test_podman_run_echo(podman: Podman) -> None:
    res = podman.run("echo", "hi")
    assert res.stdout.strip() == "hi", res
    _check_clean(podman)


def test_podman_exit_code(podman: Podman) -> None:
    res = podman.run("sh", "-c", "exit 3", check=False)
    assert res.returncode == 3, res
    _check_clean(podman)


def test_podman_runs_under_the_sentry(podman: Podman) -> None:
    res = podman.run("sh", "-c", "grep Seccomp: /proc/self/status")
    assert res.stdout.split() == ["Seccomp:", "2"], res



def test_podman_exec_and_stop(podman: Podman) -> None:
    name = f"pm-{uuid.uuid4().hex[:8]}"
    try:
        podman("run", "-d", "--name", name, "--network", "none", "--cgroup-parent",
               podman.cgroup_parent, "--ulimit", "nofile=1024:1024", "--ulimit",
               "nproc=1024:1024", podman.image, "sleep", "60")
        assert podman("inspect", "--format", "{{.State.Status}}", name).stdout.strip() == "running"
        res = podman("exec", name, "sh", "-c", "echo in-exec; grep Seccomp: /proc/self/status; "
                     "exit 3", check=False)
        assert res.returncode == 3, res
        assert res.stdout.split() == ["in-exec", "Seccomp:", "2"], res
        # sleep is the container's pid 1 and ignores SIGTERM: SIGKILL after 1 s.
        podman("stop", "-t", "1", name)
        state = podman("inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}",
                       name).stdout.split()
        assert state == ["exited", "137"], state
        podman("rm", name)
    finally:
        podman("rm", "--force", name, check=False)
    _check_clean(podman)


def test_podman_machine_limit_is_named(podman: Podman) -> None:
    """Without --ulimit podman asks for RLIMIT_NOFILE 1048576; above this
    machine's hard limit (and without CAP_SYS_RESOURCE) runsc-py names it."""
    with open("/proc/self/status") as f:
        cap_eff = int(next(ln for ln in f if ln.startswith("CapEff:")).split()[1], 16)
    if resource.getrlimit(resource.RLIMIT_NOFILE)[1] >= 1048576 or cap_eff & (1 << 24):
        pytest.skip("this machine can grant podman's default RLIMIT_NOFILE")
    res = podman("run", "--rm", "--network", "none", "--cgroup-parent", podman.cgroup_parent,
                 podman.image, "true", check=False)
    assert res.returncode != 0, res
    assert "RLIMIT_NOFILE hard limit 1048576" in res.stderr, res.stderr
    assert "CAP_SYS_RESOURCE" in res.stderr, res.stderr
    _check_clean(podman)


def test_podman_runtime_registered_by_name(podman: Podman, runtime_binary: str) -> None:
    """`install --podman-config` then `podman --runtime runsc-py` (the name)."""
    conf = podman.dir / "containers.conf"
    res = subprocess.run([runtime_binary, "install", *install_args(runtime_binary), "--podman-config",
                          str(conf)],
                         stdin=subprocess.DEVNULL, capture_output=True, text=True,
                         timeout=TIMEOUT)
    assert res.returncode == 0, res
    base = list(podman.base)
    base[base.index("--runtime") + 1] = "runsc-py"
    env = {**os.environ, "CONTAINERS_CONF": str(conf)}

    def pm(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*base, *args], stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=TIMEOUT, env=env)

    res = pm("info", "--format", "{{.Host.OCIRuntime.Name}} {{.Host.OCIRuntime.Path}}")
    assert res.stdout.split() == ["runsc-py", os.path.abspath(runtime_binary)], res
    res = pm("run", "--rm", "--network", "none", "--cgroup-parent", podman.cgroup_parent,
             "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024", podman.image,
             "sh", "-c", "grep Seccomp: /proc/self/status")
    assert res.returncode == 0 and res.stdout.split() == ["Seccomp:", "2"], res
    _check_clean(podman)
