"""Kubernetes' path: containerd's CRI plugin runs pods on runsc-py, configured
by `runsc-py install --containerd-config`.

No kubelet and no crictl here (neither is packaged for Debian bookworm), so
the test talks CRI itself: a gRPC client built at import time from
tests/cri_v1.proto (a subset of k8s.io/cri-api runtime/v1) with grpcio-tools,
calling what a kubelet calls: RunPodSandbox with `runtime_handler`,
CreateContainer, StartContainer, ContainerStatus, ExecSync, ContainerStats,
StopContainer, RemoveContainer, StopPodSandbox, RemovePodSandbox.

A PRIVATE containerd per module, its config written as on Debian (the CRI
section of /etc/containerd/config.toml) then edited by `runsc-py install`:
root, state, sockets, CNI dirs, the shim's runc root and the pods' logs all
under a temp dir; the sandbox image is the busybox test image's `pause` tag
(imported, never pulled); pods use the host network (no CNI here) and a
private cgroup parent.  `restrict_oom_score_adj = true` because CRI gives the
pod sandbox oom_score_adj -998 and this machine has no CAP_SYS_RESOURCE in any
bounding set, so no runtime could lower it.  Teardown (whatever happened):
remove every pod, stop containerd and its shims by pid, unmount what is left
under the temp dir, remove the cgroup parent and the temp dir.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pytest

from helpers import install_args
import tomlkit

from test_containerd import (IMAGE, TIMEOUT, _build_image, _cgroup_dirs, _mounts_under,
                             _pids_naming, _wait_until, scrub, stop_daemon)

pytestmark = [
    pytest.mark.runsc_py_only,
    pytest.mark.skipif(not (shutil.which("containerd") and shutil.which("ctr")
                            and shutil.which("umoci")),
                       reason="containerd, ctr and umoci are needed"),
]

grpc = pytest.importorskip("grpc")
pytest.importorskip("grpc_tools")
pb, services = grpc.protos_and_services("cri_v1.proto")

HANDLER = "runsc-py"
PAUSE = "localhost/busybox:pause"
K8S_NS = "k8s.io"  # the containerd namespace the CRI plugin works in

# Debian's /etc/containerd/config.toml, with every path moved under the temp dir.
CONFIG = """\
version = 2
root = "{d}/root"
state = "{d}/state"

[grpc]
  address = "{d}/c.sock"
[ttrpc]
  address = "{d}/c.sock.ttrpc"
[debug]
  address = "{d}/debug.sock"

[plugins]
  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "{pause}"
    stream_server_address = "127.0.0.1"
    restrict_oom_score_adj = true
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "{d}/cni/bin"
      conf_dir = "{d}/cni/net.d"
  [plugins."io.containerd.internal.v1.opt"]
    path = "{d}/opt"
"""


@dataclass
class Cri:
    dir: Path
    sock: str
    binary: str
    cgroup_parent: str
    runtime: Any
    images: Any
    pods: list[str] = field(default_factory=list)

    def ctr(self, *args: str) -> str:
        res = subprocess.run(["ctr", "-a", self.sock, "-n", K8S_NS, *args],
                             stdin=subprocess.DEVNULL, capture_output=True, text=True,
                             timeout=TIMEOUT)
        assert res.returncode == 0, res
        return res.stdout

    def run_pod(self, share_pids: bool = False) -> tuple[str, Any]:
        """A pod as a kubelet asks for one (host network: no CNI here); with
        SHARE_PIDS, shareProcessNamespace: true."""
        u = uuid.uuid4().hex[:8]
        config = pb.PodSandboxConfig(
            metadata=pb.PodSandboxMetadata(name=f"pod-{u}", uid=u, namespace="default"),
            log_directory=str(self.dir / "logs" / u),
            linux=pb.LinuxPodSandboxConfig(
                cgroup_parent=self.cgroup_parent,
                security_context=pb.LinuxSandboxSecurityContext(
                    namespace_options=_namespaces(share_pids))))
        pod = self.runtime.RunPodSandbox(
            pb.RunPodSandboxRequest(config=config, runtime_handler=HANDLER),
            timeout=TIMEOUT).pod_sandbox_id
        self.pods.append(pod)
        return pod, config

    def run_container(self, pod: str, config: Any, name: str, cmd: list[str],
                      memory_limit: int = 0) -> str:
        share = config.linux.security_context.namespace_options.pid == pb.POD
        linux = pb.LinuxContainerConfig(
            resources=pb.LinuxContainerResources(memory_limit_in_bytes=memory_limit),
            security_context=pb.LinuxContainerSecurityContext(
                namespace_options=_namespaces(share)))
        cid = self.runtime.CreateContainer(pb.CreateContainerRequest(
            pod_sandbox_id=pod, sandbox_config=config,
            config=pb.ContainerConfig(metadata=pb.ContainerMetadata(name=name),
                                      image=pb.ImageSpec(image=IMAGE), command=cmd,
                                      log_path=f"{name}.log", linux=linux)),
            timeout=TIMEOUT).container_id
        self.runtime.StartContainer(pb.StartContainerRequest(container_id=cid), timeout=TIMEOUT)
        return cid

    def status(self, cid: str) -> tuple[Any, dict[str, Any]]:
        res = self.runtime.ContainerStatus(
            pb.ContainerStatusRequest(container_id=cid, verbose=True), timeout=TIMEOUT)
        return res.status, json.loads(res.info.get("info") or "{}")

    def remove_pod(self, pod: str) -> None:
        self.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod),
                                    timeout=TIMEOUT)
        self.runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod),
                                      timeout=TIMEOUT)
        self.pods.remove(pod)


def _namespaces(share_pids: bool) -> Any:
    """The kubelet's choice: the pod's network namespace is the node's here;
    IPC and UTS are the pod's; pids are the container's own unless shared."""
    return pb.NamespaceOption(network=pb.NODE, pid=pb.POD if share_pids else pb.CONTAINER,
                              ipc=pb.POD)


def _write_config(d: Path, binary: str) -> Path:
    cfg = d / "config.toml"
    cfg.write_text(CONFIG.format(d=d, pause=PAUSE))
    res = subprocess.run([binary, "install", *install_args(binary), "--containerd-config", str(cfg)],
                         stdin=subprocess.DEVNULL, capture_output=True, text=True,
                         timeout=TIMEOUT)
    assert res.returncode == 0, res
    # The shim's runc root (the runtime's --root) under the temp dir too, as
    # a node would set Root or SystemdCgroup next to BinaryName.
    doc = tomlkit.parse(cfg.read_text())
    opts = doc["plugins"]["io.containerd.grpc.v1.cri"]["containerd"]["runtimes"][HANDLER][
        "options"]
    assert opts["BinaryName"] == binary, cfg.read_text()
    opts["Root"] = str(d / "runc")
    cfg.write_text(tomlkit.dumps(doc))
    return cfg


@pytest.fixture(scope="module")
def cri(rootfs_master: Path, runtime_binary: str) -> Iterator[Cri]:
    d = Path(tempfile.mkdtemp(prefix="rsp-cri-", dir="/tmp"))
    parent = f"rsp-cri-{uuid.uuid4().hex[:8]}"
    binary = os.path.abspath(runtime_binary)
    cfg = _write_config(d, binary)
    log = open(d / "containerd.log", "wb")
    proc = subprocess.Popen(["containerd", "--config", str(cfg)], stdin=subprocess.DEVNULL,
                            stdout=log, stderr=log, start_new_session=True)
    channel = grpc.insecure_channel(f"unix://{d}/c.sock")
    c = Cri(dir=d, sock=str(d / "c.sock"), binary=binary, cgroup_parent="/" + parent,
            runtime=services.RuntimeServiceStub(channel), images=services.ImageServiceStub(channel))
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"containerd exited: {(d / 'containerd.log').read_text()}")
            try:
                c.runtime.Version(pb.VersionRequest(), timeout=2)
                break
            except grpc.RpcError as e:
                if e.code() == grpc.StatusCode.UNIMPLEMENTED:  # up, but no CRI plugin
                    failed = [ln for ln in (d / "containerd.log").read_text().splitlines()
                              if "io.containerd.grpc.v1.cri" in ln and "level=info" not in ln]
                    raise AssertionError(f"the CRI plugin did not load: {failed}") from None
                if time.monotonic() > deadline:
                    raise AssertionError("containerd's CRI did not answer in 30 s: "
                                         f"{(d / 'containerd.log').read_text()}") from None
                time.sleep(0.2)
        c.ctr("images", "import", "--base-name", "localhost/busybox",
              str(_build_image(rootfs_master, d, pause=True)))
        yield c
    finally:
        for pod in list(c.pods):
            try:
                c.remove_pod(pod)
            except grpc.RpcError:
                pass
        channel.close()
        stop_daemon(proc, log)
        scrub(d, str(d), parent)  # shims name our socket or state dir


def test_cri_plugin_loads_the_installed_config(cri: Cri) -> None:
    plugins = [ln.split() for ln in subprocess.run(
        ["ctr", "-a", cri.sock, "plugins", "ls"], capture_output=True, text=True,
        timeout=TIMEOUT, check=True).stdout.splitlines()]
    assert ["io.containerd.grpc.v1", "cri", "linux/amd64", "ok"] in [p[:4] for p in plugins]
    dump = subprocess.run(["containerd", "--config", str(cri.dir / "config.toml"), "config",
                           "dump"], capture_output=True, text=True, timeout=TIMEOUT, check=True)
    runtimes = tomlkit.parse(dump.stdout).unwrap()["plugins"]["io.containerd.grpc.v1.cri"][
        "containerd"]["runtimes"]
    assert runtimes[HANDLER]["runtime_type"] == "io.containerd.runc.v2"
    assert runtimes[HANDLER]["options"]["BinaryName"] == cri.binary
    assert "runc" in runtimes  # containerd's default_runtime_name stays valid
    v = cri.runtime.Version(pb.VersionRequest(), timeout=TIMEOUT)
    assert v.runtime_name == "containerd" and v.runtime_api_version == "v1", v


def test_pod_lifecycle(cri: Cri) -> None:
    pod, config = cri.run_pod()
    st = cri.runtime.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=pod,
                                                                 verbose=True), timeout=TIMEOUT)
    assert st.status.state == pb.SANDBOX_READY and st.status.runtime_handler == HANDLER, st
    info = json.loads(st.info["info"])
    assert info["runtimeOptions"]["binary_name"] == cri.binary, info["runtimeOptions"]
    pause_pid = int(info["pid"])
    assert Path(f"/proc/{pause_pid}/comm").read_text().strip() == "runsc-sandbox"
    assert (cri.dir / "runc" / K8S_NS / pod / "state.json").is_file()  # the options' Root

    limit = 64 << 20
    cid = cri.run_container(pod, config, "app", [
        "sh", "-c", "echo hello-cri; grep Seccomp: /proc/self/status; exec sleep 60"],
        memory_limit=limit)
    status, info = cri.status(cid)
    assert status.state == pb.CONTAINER_RUNNING, status
    app_pid = int(info["pid"])
    assert Path(f"/proc/{app_pid}/comm").read_text().strip() == "runsc-sandbox"
    assert app_pid != pause_pid  # a sandbox per container, as runc has an init each
    log = Path(status.log_path)
    _wait_until(lambda: log.exists() and "Seccomp:" in log.read_text(), f"{log}: no output",
                timeout=TIMEOUT)
    lines = [ln.split(" ", 3)[3] for ln in log.read_text().splitlines()]  # TIME STREAM TAG MSG
    assert lines[:2] == ["hello-cri", "Seccomp:\t2"], lines

    res = cri.runtime.ExecSync(pb.ExecSyncRequest(
        container_id=cid, cmd=["sh", "-c", "echo out; echo err >&2; grep Seccomp: "
                               "/proc/self/status; exit 4"], timeout=30), timeout=TIMEOUT)
    assert (res.stdout, res.stderr, res.exit_code) == (b"out\nSeccomp:\t2\n", b"err\n", 4), res

    stats = cri.runtime.ContainerStats(pb.ContainerStatsRequest(container_id=cid),
                                       timeout=TIMEOUT).stats
    assert stats.attributes.id == cid, stats
    assert stats.cpu.usage_core_nano_seconds.value > 0, stats
    assert stats.memory.working_set_bytes.value > 0, stats
    # available = limit - working set: read from the container's own cgroup
    assert 0 < stats.memory.available_bytes.value < limit, stats

    # sleep is pid 1 of its namespace and ignores SIGTERM: SIGKILL after the timeout.
    cri.runtime.StopContainer(pb.StopContainerRequest(container_id=cid, timeout=1),
                              timeout=TIMEOUT)
    status, _ = cri.status(cid)
    assert status.state == pb.CONTAINER_EXITED and status.exit_code == 137, status
    cri.runtime.RemoveContainer(pb.RemoveContainerRequest(container_id=cid), timeout=TIMEOUT)
    cri.remove_pod(pod)

    for p in (pause_pid, app_pid):
        _wait_until(lambda: not os.path.exists(f"/proc/{p}"), f"process {p} left")
    for i in (pod, cid):
        assert not (cri.dir / "runc" / K8S_NS / i).exists(), f"runtime state of {i} left"
        assert not [m for m in _mounts_under(cri.dir) if i in m], "mounts left"
        assert not [cg for cg in _cgroup_dirs(cri.cgroup_parent.lstrip("/")) if (cg / i).exists()]
        assert not _pids_naming(i), f"processes naming {i} left"
    left = cri.ctr("containers", "ls", "-q").split()
    assert pod not in left and cid not in left, left


def test_shared_pid_namespace(cri: Cri) -> None:
    """shareProcessNamespace: true: CRI has the app container join the pid
    namespace of the pod's sandbox container by /proc/<its pid>/ns/pid."""
    pod, config = cri.run_pod(share_pids=True)
    try:
        cid = cri.run_container(pod, config, "app", ["sleep", "60"])
        res = cri.runtime.ExecSync(pb.ExecSyncRequest(
            container_id=cid, cmd=["sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '"],
            timeout=30), timeout=TIMEOUT)
        assert res.stdout.decode().split() == ["sleep", "2147483647"], res  # the pause process
    finally:
        cri.remove_pod(pod)
