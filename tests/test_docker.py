"""Docker drives runsc-py: `docker run --runtime runsc-py`, registered in a
daemon.json written by `runsc-py install --docker-config`.

A PRIVATE dockerd (Debian's docker.io) per module: --data-root, --exec-root
(its own containerd, shims and runtime state live there), --pidfile and the
API socket under a temp dir, its own containerd namespaces, no iptables and no
bridge (containers run with --network none), a private --cgroup-parent.  The
image is the busybox test rootfs (`docker import`).  dockerd 20.10 also writes
/etc/docker/key.json (its identity key; no flag moves it) and may create
/run/docker: the teardown removes them when they were not there before.
Teardown (whatever happened): remove every container, stop dockerd by pid
(it stops its containerd), kill what still names the temp dir, unmount what
is left under it, remove the cgroup parent and the temp dir.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

from helpers import install_args

from test_containerd import (_cgroup_dirs, _mounts_under, _pids_naming, _wait_until, scrub,
                             stop_daemon)

DOCKERD = shutil.which("dockerd")
# Debian's CLI, next to its daemon (another `docker` may come first in PATH).
DOCKER = (str(Path(DOCKERD).parent.parent / "bin" / "docker") if DOCKERD else None)

pytestmark = [
    pytest.mark.runsc_py_only,
    pytest.mark.slow,
    pytest.mark.skipif(not (DOCKERD and DOCKER and os.access(DOCKER, os.X_OK)),
                       reason="dockerd and docker (Debian's docker.io) are needed"),
]

IMAGE = "localhost/busybox:bb"
TIMEOUT = 120
# Outside the temp dir: what dockerd creates there, removed afterwards if new.
HOST_PATHS = [Path("/etc/docker/key.json"), Path("/etc/docker"), Path("/run/docker/plugins"),
              Path("/run/docker")]


@dataclass
class Docker:
    dir: Path
    sock: str
    binary: str
    cgroup_parent: str
    ns: str

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [DOCKER or "docker", "-H", f"unix://{self.sock}", *args]
        res = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                             timeout=TIMEOUT, env={**os.environ,
                                                   "DOCKER_CONFIG": str(self.dir / "cli")})
        if check and res.returncode != 0:
            raise AssertionError(f"{cmd} -> {res.returncode}\nstdout: {res.stdout}\n"
                                 f"stderr: {res.stderr}")
        return res

    def run_args(self) -> list[str]:
        return ["--runtime", "runsc-py", "--network", "none"]


@pytest.fixture(scope="module")
def docker(rootfs_master: Path, runtime_binary: str) -> Iterator[Docker]:
    d = Path(tempfile.mkdtemp(prefix="rsp-dk-", dir="/tmp"))
    tag = uuid.uuid4().hex[:8]
    dk = Docker(dir=d, sock=str(d / "docker.sock"), binary=os.path.abspath(runtime_binary),
                cgroup_parent=f"rsp-dk-{tag}", ns=f"rsp-dk-{tag}")
    existed = {p for p in HOST_PATHS if p.exists()}
    res = subprocess.run([dk.binary, "install", *install_args(dk.binary), "--docker-config",
                          str(d / "daemon.json")],
                         stdin=subprocess.DEVNULL, capture_output=True, text=True,
                         timeout=TIMEOUT)
    assert res.returncode == 0, res
    # A second entry with a runtime flag: the network mode none.
    cfg = json.loads((d / "daemon.json").read_text())
    cfg["runtimes"]["runsc-py-none"] = {"path": dk.binary, "runtimeArgs": ["--network=none"]}
    (d / "daemon.json").write_text(json.dumps(cfg))
    log = open(d / "dockerd.log", "wb")
    proc = subprocess.Popen(
        [DOCKERD or "dockerd", "--config-file", str(d / "daemon.json"),
         "--data-root", str(d / "data"), "--exec-root", str(d / "exec"),
         "--pidfile", str(d / "docker.pid"), "-H", f"unix://{dk.sock}",
         "--iptables=false", "--ip6tables=false", "--bridge=none",
         "--cgroup-parent", dk.cgroup_parent, "--containerd-namespace", dk.ns,
         "--containerd-plugins-namespace", dk.ns + "-plugins"],
        stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while dk("version", check=False).returncode != 0:
            if proc.poll() is not None:
                raise AssertionError(f"dockerd exited: {(d / 'dockerd.log').read_text()}")
            if time.monotonic() > deadline:
                raise AssertionError("dockerd did not come up in 60 s: "
                                     f"{(d / 'dockerd.log').read_text()}")
            time.sleep(0.2)
        tar = d / "rootfs.tar"
        subprocess.run(["tar", "-C", str(rootfs_master), "-cf", str(tar), "."], check=True,
                       timeout=TIMEOUT)
        dk("import", str(tar), IMAGE)
        yield dk
    finally:
        try:
            ids = dk("ps", "-aq", check=False).stdout.split()
            if ids:
                dk("rm", "--force", *ids, check=False)
        except Exception:
            pass
        stop_daemon(proc, log, wait=30)
        scrub(d, str(d), dk.cgroup_parent)  # its containerd and shims, if any is left
        for p in HOST_PATHS:  # files first, then the directories if empty
            if p not in existed and p.exists():
                try:
                    p.rmdir() if p.is_dir() else p.unlink()
                except OSError:
                    pass


def _check_clean(dk: Docker, cid: str) -> None:
    assert cid not in dk("ps", "-aq", "--no-trunc").stdout.split()
    assert not [p for p in (dk.dir / "exec").glob(f"runtime-*/*/{cid}")], "runtime state left"
    assert not [m for m in _mounts_under(dk.dir) if cid in m], "mounts left"
    assert not [cg for cg in _cgroup_dirs(dk.cgroup_parent) if (cg / cid).exists()], \
        "cgroups left"
    _wait_until(lambda: not _pids_naming(cid), f"processes naming {cid} left")


def test_docker_run(docker: Docker) -> None:
    info = docker("info", "--format", "{{json .Runtimes}}").stdout
    assert '"runsc-py"' in info and docker.binary in info, info
    name = f"dk-{uuid.uuid4().hex[:8]}"
    res = docker("run", "--name", name, *docker.run_args(), IMAGE, "sh", "-c",
                 "echo hello; grep Seccomp: /proc/self/status; exit 3", check=False)
    assert res.returncode == 3, res
    assert res.stdout.split() == ["hello", "Seccomp:", "2"], res
    cid = docker("inspect", "--format", "{{.Id}}", name).stdout.strip()
    assert docker("inspect", "--format", "{{.HostConfig.Runtime}}", name).stdout.strip() == \
        "runsc-py"
    docker("rm", name)
    _check_clean(docker, cid)


def test_docker_detached_exec_stop(docker: Docker) -> None:
    name = f"dk-{uuid.uuid4().hex[:8]}"
    try:
        cid = docker("run", "-d", "--name", name, *docker.run_args(), IMAGE,
                     "sleep", "60").stdout.strip()
        pid = int(docker("inspect", "--format", "{{.State.Pid}}", name).stdout)
        assert Path(f"/proc/{pid}/comm").read_text().strip() == "runsc-sandbox"
        res = docker("exec", name, "sh", "-c", "echo in-exec; grep Seccomp: /proc/self/status; "
                     "exit 4", check=False)
        assert res.returncode == 4, res
        assert res.stdout.split() == ["in-exec", "Seccomp:", "2"], res
        assert "sleep 60" in docker("top", name).stdout
        # sleep is the container's pid 1 and ignores SIGTERM: SIGKILL after 1 s.
        docker("stop", "-t", "1", name)
        state = docker("inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}",
                       name).stdout.split()
        assert state == ["exited", "137"], state
        docker("rm", name)
        _wait_until(lambda: not os.path.exists(f"/proc/{pid}"), f"sandbox {pid} left")
        _check_clean(docker, cid)
    finally:
        docker("rm", "--force", name, check=False)


def test_docker_network_reaches_the_container(docker: Docker) -> None:
    """A user-defined bridge network (no iptables: traffic stays on this
    host's bridge): the engine's interface is the workload's in the default
    mode, the metadata address is refused; with the runtime's
    --network=none (a second runtime entry) the engine's veth stays out."""
    net = f"rsp-net-{uuid.uuid4().hex[:6]}"
    docker("network", "create", "--subnet", "10.214.0.0/24", "-o",
           f"com.docker.network.bridge.name=br-{net[-6:]}", net)
    name = f"dk-{uuid.uuid4().hex[:8]}"
    try:
        res = docker("run", "--rm", "--name", name, "--runtime", "runsc-py", "--network", net, IMAGE,
                     "sh", "-c", "ip -o addr; nc -w 1 169.254.169.254 80 </dev/null; echo meta=$?",
                     check=False)
        out = res.stdout + res.stderr
        assert res.returncode == 0, res
        assert "eth0" in out and "10.214.0." in out, out
        assert "meta=0" not in out and "Permission denied" in out, out
        res = docker("run", "--rm", "--name", name, "--runtime", "runsc-py-none", "--network", net,
                     IMAGE, "sh", "-c", "ip -o link; ip -o addr", check=False)
        assert res.returncode == 0, res
        assert "eth0" not in res.stdout and "10.214.0." not in res.stdout, res
        assert "lo: <LOOPBACK,UP" in res.stdout, res
    finally:
        docker("rm", "-f", name, check=False)
        docker("network", "rm", net, check=False)
