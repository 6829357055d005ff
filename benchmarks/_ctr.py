"""containerd: `ctr run -d` of concurrent_max containers at once, per runtime.

A private containerd for the whole run (its own root, state and sockets
under the session's work dir, the CRI plugin off, a namespace of its own),
started on first use and stopped by the session's cleanup.  The image is
the benchmark's busybox rootfs as an OCI layout (umoci), imported once.
The shim (io.containerd.runc.v2) calls each runtime's binary as runc's:
create, start, state, kill, delete, each a process of its own.  Measured:
all tasks RUNNING after the concurrent `ctr run -d`s, and removing them.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from ._cases import Case, Ctx, Metric, Options, Value
from ._runtimes import KNOWN, Runtime

IMAGE = "localhost/busybox:bb"


@dataclass
class Containerd:
    dir: Path
    proc: subprocess.Popen[bytes]
    ns: str

    @property
    def sock(self) -> str:
        return str(self.dir / "c.sock")

    def ctr(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["ctr", "-a", self.sock, "-n", self.ns, *args], capture_output=True,
                              text=True, timeout=timeout, stdin=subprocess.DEVNULL)

    def stop(self) -> None:
        for cid in self.ctr("containers", "ls", "-q").stdout.split():
            self.ctr("task", "kill", "-s", "SIGKILL", cid)
            self.ctr("task", "delete", "--force", cid)
            self.ctr("containers", "rm", cid)
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        for pid in _pids_naming(self.sock):  # shims outlive their daemon
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for line in reversed(Path("/proc/self/mountinfo").read_text().splitlines()):
            mp = line.split()[4]
            if mp.startswith(str(self.dir) + "/"):
                subprocess.run(["umount", "-l", mp], capture_output=True)
        for h in Path("/sys/fs/cgroup").iterdir():
            d = h / self.ns
            if d.is_dir():
                for sub in sorted((p for p in d.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
                    try:
                        sub.rmdir()
                    except OSError:
                        pass
                try:
                    d.rmdir()
                except OSError:
                    pass


def _pids_naming(needle: str) -> list[int]:
    out = []
    for e in os.listdir("/proc"):
        if e.isdigit():
            try:
                if needle.encode() in Path(f"/proc/{e}/cmdline").read_bytes():
                    out.append(int(e))
            except OSError:
                pass
    return out


def _start(ctx: Ctx) -> Containerd | str:
    for tool in ("containerd", "ctr", "umoci"):
        if not shutil.which(tool):
            return f"{tool} not installed"
    d = ctx.session.work / "ctrd"
    (d / "fifo").mkdir(parents=True)
    cfg = d / "config.toml"
    cfg.write_text("version = 2\n"
                   f'root = "{d}/root"\nstate = "{d}/state"\n'
                   'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
                   f'[grpc]\n  address = "{d}/c.sock"\n[ttrpc]\n  address = "{d}/c.sock.ttrpc"\n'
                   f'[debug]\n  address = "{d}/debug.sock"\n')
    log = open(d / "containerd.log", "wb")
    proc = subprocess.Popen(["containerd", "--config", str(cfg)], stdin=subprocess.DEVNULL,
                            stdout=log, stderr=log, start_new_session=True)
    cd = Containerd(d, proc, f"rb{ctx.session.token}")
    ctx.session.finalizers.append(cd.stop)
    deadline = time.monotonic() + 30
    while not (os.path.exists(cd.sock) and cd.ctr("version").returncode == 0):
        if proc.poll() is not None or time.monotonic() > deadline:
            return f"containerd did not start: {(d / 'containerd.log').read_text()[-300:]}"
        time.sleep(0.1)
    layout, unpacked = d / "layout", d / "unpacked"
    try:
        for args in (["init", "--layout", str(layout)], ["new", "--image", f"{layout}:bb"],
                     ["unpack", "--image", f"{layout}:bb", str(unpacked)]):
            subprocess.run(["umoci", *args], check=True, capture_output=True, timeout=120)
        master = ctx.session.work / "rootfs-master"
        subprocess.run(["cp", "-a", f"{master}/.", str(unpacked / "rootfs")], check=True, timeout=120)
        subprocess.run(["umoci", "repack", "--image", f"{layout}:bb", str(unpacked)], check=True,
                       capture_output=True, timeout=120)
        subprocess.run(["tar", "-C", str(layout), "-cf", str(d / "image.tar"), "."], check=True,
                       timeout=120)
    except subprocess.CalledProcessError as e:
        return f"image: {e}"
    shutil.rmtree(unpacked, ignore_errors=True)
    r = cd.ctr("images", "import", "--base-name", "localhost/busybox", str(d / "image.tar"))
    if r.returncode != 0:
        return f"ctr images import: {r.stderr.strip()[-200:]}"
    return cd


def _binary(ctx: Ctx, rt: Runtime) -> str:
    """What the shim runs for RT: its binary, or a wrapper adding its flags."""
    argv = KNOWN.get(rt.name, rt.argv)
    if len(argv) == 1:
        return shutil.which(argv[0]) or argv[0]
    w = ctx.session.work / f"ctr-{rt.name}.sh"
    w.write_text("#!/bin/sh\nexec " + " ".join(argv) + ' "$@"\n')
    w.chmod(0o755)
    return str(w)


def case_ctr(ctx: Ctx, rt: Runtime, rep: int) -> dict[str, Value]:
    cd = ctx.services.get("containerd")
    if cd is None:
        cd = ctx.services["containerd"] = _start(ctx)
    if isinstance(cd, str):
        return {"running": cd, "remove": cd}
    assert isinstance(cd, Containerd)
    n = ctx.opts.concurrent_max
    binary = _binary(ctx, rt)
    ids = [f"rb{ctx.session.token}-{rt.name}-ctr{i}-{uuid.uuid4().hex[:4]}" for i in range(n)]
    runc_args = ["--runc-binary", binary, "--runc-root", str(cd.dir / "runc"),
                 "--fifo-dir", str(cd.dir / "fifo")]
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=n) as pool:
        results = list(pool.map(lambda c: cd.ctr("run", "-d", *runc_args, IMAGE, c, "sleep", "600",
                                                  timeout=300), ids))
    failed = [r for r in results if r.returncode != 0]
    running: set[str] = set()
    deadline = time.monotonic() + 120
    while not failed and len(running) < n and time.monotonic() < deadline:
        out = cd.ctr("task", "ls").stdout.splitlines()[1:]
        running = {ln.split()[0] for ln in out if "RUNNING" in ln}
        if len(running) < n:
            time.sleep(0.05)
    t_running = time.perf_counter() - t0
    t1 = time.perf_counter()

    def remove(cid: str) -> None:
        cd.ctr("task", "kill", "-s", "SIGKILL", cid)
        for _ in range(200):
            st = cd.ctr("task", "ls").stdout
            if not any(ln.split()[:1] == [cid] and "RUNNING" in ln for ln in st.splitlines()[1:]):
                break
            time.sleep(0.05)
        cd.ctr("task", "delete", "--force", cid)
        cd.ctr("containers", "rm", cid)

    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(remove, ids))
    t_remove = time.perf_counter() - t1
    if failed or len(running) < n:
        why = failed[0].stderr.strip().splitlines()[-1][:200] if failed else \
            f"{n - len(running)} not RUNNING after 120 s"
        msg = f"{max(len(failed), n - len(running))}/{n} failed: {why}"
        return {"running": msg, "remove": msg, "failures": float(max(len(failed), n - len(running)))}
    return {"running": t_running, "remove": t_remove, "failures": 0.0}


def ctr_cases(opts: Options) -> list[Case]:
    m = opts.concurrent_max
    return [Case("containerd", case_ctr, 1, (
        Metric("running", f"containerd: {m} `ctr run -d` at once: all RUNNING", "s"),
        Metric("remove", f"containerd: {m} tasks killed and removed", "s"),
        Metric("failures", f"containerd: {m} `ctr run -d` at once: failures", "count")))]


def markdown(profiles: dict[str, object]) -> list[str]:
    """(Nothing beyond the main table's rows.)"""
    return []
