"""containerd + ctr drive runsc-py through the runc v2 shim (`--runc-binary`).

A PRIVATE containerd per module: its own root, state, gRPC/ttrpc/debug
sockets under a temp dir, the CRI plugin disabled, a unique namespace, the
shim's runc root (`--runc-root`) and ctr's FIFOs (`--fifo-dir`) under the temp
dir too.  The image is the busybox test rootfs turned into an OCI layout by
umoci and imported with `ctr images import`.  Terminal tests run ctr on a
pseudo-terminal of their own (class Pty), as a person at a shell would.
Teardown (whatever happened): kill/delete every task and container, stop
containerd and its shims by pid, unmount everything under the temp dir, remove
the namespace's cgroup directories, remove the temp dir.
"""

from __future__ import annotations

import fcntl
import json
import os
import select
import shutil
import signal
import struct
import subprocess
import termios
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Callable, Iterator

import pytest

import helpers

pytestmark = [
    pytest.mark.runsc_py_only,
    pytest.mark.skipif(not (shutil.which("containerd") and shutil.which("ctr")
                            and shutil.which("umoci")),
                       reason="containerd, ctr and umoci are needed"),
]

IMAGE = "localhost/busybox:bb"
TIMEOUT = 60


@dataclass
class Containerd:
    dir: Path
    sock: str
    ns: str
    runc_root: Path
    fifo_dir: Path
    binary: str

    def ctr(self, *args: str, check: bool = True, timeout: float = TIMEOUT
            ) -> subprocess.CompletedProcess[str]:
        cmd = ["ctr", "-a", self.sock, "-n", self.ns, *args]
        res = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                             timeout=timeout)
        if check and res.returncode != 0:
            raise AssertionError(f"{cmd} -> {res.returncode}\nstdout: {res.stdout}\n"
                                 f"stderr: {res.stderr}")
        return res

    def run_args(self) -> list[str]:
        return ["--runc-binary", self.binary, "--runc-root", str(self.runc_root),
                "--fifo-dir", str(self.fifo_dir)]

    def task_pids(self, cid: str) -> list[int]:
        out = self.ctr("task", "ps", cid).stdout.splitlines()
        return [int(ln.split()[0]) for ln in out[1:] if ln.strip()]

    def cleanup_containers(self) -> None:
        """Kill and delete every task, remove every container (best effort)."""
        res = self.ctr("containers", "ls", "-q", check=False)
        for cid in res.stdout.split():
            self.ctr("task", "kill", "-s", "SIGKILL", cid, check=False)
            for _ in range(50):
                st = self.ctr("task", "ls", check=False).stdout
                if not any(ln.split()[:1] == [cid] and ("RUNNING" in ln or "PAUSED" in ln)
                           for ln in st.splitlines()[1:]):
                    break
                time.sleep(0.1)
            self.ctr("task", "delete", "--force", cid, check=False)
            self.ctr("containers", "rm", cid, check=False)


class Pty:
    """A command run with a new pseudo-terminal as its stdin/stdout/stderr
    (and controlling terminal), as when a person types `ctr run -t` in a shell."""

    def __init__(self, argv: list[str], rows: int = 40, cols: int = 100) -> None:
        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        try:
            self.proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave,
                                         start_new_session=True, preexec_fn=_take_ctty)
        finally:
            os.close(slave)
        self.out = b""

    def send(self, data: bytes) -> None:
        os.write(self.master, data)

    def expect(self, needle: bytes, timeout: float = TIMEOUT) -> bytes:
        """Read until NEEDLE has been printed; return everything read so far."""
        deadline = time.monotonic() + timeout
        while needle not in self.out:
            left = deadline - time.monotonic()
            assert left > 0, f"{needle!r} not printed; got {self.out!r}"
            if select.select([self.master], [], [], min(left, 1.0))[0]:
                try:
                    data = os.read(self.master, 4096)
                except OSError:  # EIO: every slave fd is closed
                    data = b""
                assert data, f"EOF before {needle!r}; got {self.out!r}"
                self.out += data
        return self.out

    def wait(self, timeout: float = TIMEOUT) -> int:
        """Drain the terminal while the command exits; its exit code."""
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None:
            assert time.monotonic() < deadline, f"still running; got {self.out!r}"
            if select.select([self.master], [], [], 0.2)[0]:
                try:
                    self.out += os.read(self.master, 4096)
                except OSError:
                    pass
        return self.proc.returncode

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        os.close(self.master)


def _take_ctty() -> None:
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def _build_image(rootfs: Path, work: Path, pause: bool = False) -> Path:
    """The busybox rootfs as an OCI layout at WORK/layout, tag `bb` (cmd sh),
    and with PAUSE a tag `pause` whose entrypoint sleeps forever (a CRI pod's
    sandbox image); returns a tar of the layout for `ctr images import`."""
    layout, bundle = work / "layout", work / "unpacked"

    def umoci(*args: str) -> None:
        subprocess.run(["umoci", *args], check=True, capture_output=True, timeout=TIMEOUT)

    umoci("init", "--layout", str(layout))
    umoci("new", "--image", f"{layout}:bb")
    umoci("unpack", "--image", f"{layout}:bb", str(bundle))
    subprocess.run(["cp", "-a", f"{rootfs}/.", str(bundle / "rootfs")], check=True,
                   timeout=TIMEOUT)
    umoci("repack", "--image", f"{layout}:bb", str(bundle))
    umoci("config", "--image", f"{layout}:bb", "--config.cmd", "sh",
          "--config.env", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    if pause:
        umoci("config", "--image", f"{layout}:bb", "--tag", "pause",
              "--config.entrypoint", "sleep", "--config.cmd", "2147483647")
    shutil.rmtree(bundle)
    tar = work / "image.tar"
    subprocess.run(["tar", "-C", str(layout), "-cf", str(tar), "."], check=True,
                   timeout=TIMEOUT)
    return tar


def _mounts_under(d: Path) -> list[str]:
    prefix = str(d) + "/"
    return [m.mountpoint for m in helpers.read_mounts()
            if m.mountpoint.startswith(prefix) or m.mountpoint == str(d)]


def _pids_naming(needle: str) -> list[int]:
    pids = []
    for e in os.listdir("/proc"):
        if not e.isdigit() or int(e) == os.getpid():
            continue
        try:
            cmd = Path(f"/proc/{e}/cmdline").read_bytes().replace(b"\0", b" ").decode(
                errors="replace")
        except OSError:
            continue
        if needle in cmd:
            pids.append(int(e))
    return pids


def _cgroup_dirs(ns: str) -> list[Path]:
    root = Path("/sys/fs/cgroup")
    out = []
    for h in root.iterdir():
        for cand in (h / ns, root / ns):
            if cand.is_dir() and cand not in out:
                out.append(cand)
    return out


def _rmdir_tree(d: Path) -> None:
    for sub in sorted((p for p in d.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
        try:
            sub.rmdir()
        except OSError:
            pass
    try:
        d.rmdir()
    except OSError:
        pass


def stop_daemon(proc: subprocess.Popen[bytes], log: IO[bytes], wait: float = 10) -> None:
    """SIGTERM a private client daemon, SIGKILL it if it has not exited within
    `wait` seconds, and close its log."""
    proc.terminate()
    try:
        proc.wait(wait)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
    log.close()


def scrub(d: Path, needle: str, cgroup_parent: str) -> None:
    """Teardown of a private client daemon's leftovers, whatever happened:
    SIGKILL processes naming NEEDLE (shims and conmon outlive their daemon),
    lazy-unmount everything under D, remove the cgroups under CGROUP_PARENT,
    then D itself."""
    for pid in _pids_naming(needle):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for mp in sorted(_mounts_under(d), key=len, reverse=True):
        subprocess.run(["umount", "-l", mp], capture_output=True, timeout=TIMEOUT)
    for cg in _cgroup_dirs(cgroup_parent):
        _rmdir_tree(cg)
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def containerd(rootfs_master: Path, runtime_binary: str) -> Iterator[Containerd]:
    d = Path(tempfile.mkdtemp(prefix="rsp-ctrd-", dir="/tmp"))
    ns = f"rsp-{uuid.uuid4().hex[:8]}"
    cd = Containerd(dir=d, sock=str(d / "c.sock"), ns=ns, runc_root=d / "runc",
                    fifo_dir=d / "fifo", binary=os.path.abspath(runtime_binary))
    cd.fifo_dir.mkdir()
    cfg = d / "config.toml"
    cfg.write_text(
        "version = 2\n"
        f'root = "{d}/root"\n'
        f'state = "{d}/state"\n'
        'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
        f'[grpc]\n  address = "{d}/c.sock"\n'
        f'[ttrpc]\n  address = "{d}/c.sock.ttrpc"\n'
        f'[debug]\n  address = "{d}/debug.sock"\n')
    log = open(d / "containerd.log", "wb")
    proc = subprocess.Popen(["containerd", "--config", str(cfg)], stdin=subprocess.DEVNULL,
                            stdout=log, stderr=log, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"containerd exited: {(d / 'containerd.log').read_text()}")
            if os.path.exists(cd.sock) and cd.ctr("version", check=False).returncode == 0:
                break
            if time.monotonic() > deadline:
                raise AssertionError("containerd did not come up in 30 s")
            time.sleep(0.1)
        tar = _build_image(rootfs_master, d)
        cd.ctr("images", "import", "--base-name", "localhost/busybox", str(tar))
        yield cd
    finally:
        try:
            cd.cleanup_containers()
        except Exception:
            pass
        stop_daemon(proc, log)
        scrub(d, str(cd.sock), ns)  # shims name our socket on their command line


def _ids(cd: Containerd) -> str:
    return f"c-{uuid.uuid4().hex[:8]}"


def _assert_gone(cd: Containerd, cid: str) -> None:
    assert cid not in cd.ctr("containers", "ls", "-q").stdout.split()
    runc_ns = cd.runc_root / cd.ns
    assert not (runc_ns / cid).exists(), f"runtime state left: {runc_ns / cid}"
    assert not [m for m in _mounts_under(cd.dir) if cid in m], "mounts left"
    assert not [p for p in _cgroup_dirs(cd.ns) if (p / cid).exists()], "cgroup dirs left"
    _wait_until(lambda: not _pids_naming(cid + " ") and not _pids_naming("/" + cid + "/"),
                f"processes naming {cid} left")


def _wait_until(cond: Callable[[], bool], what: str, timeout: float = 10) -> None:
    """The shim exits (and reaps) asynchronously after `task delete`: poll."""
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_run_echo(containerd: Containerd) -> None:
    cid = _ids(containerd)
    res = containerd.ctr("run", "--rm", *containerd.run_args(), IMAGE, cid, "echo", "hello")
    assert res.stdout.strip() == "hello"
    _assert_gone(containerd, cid)


def test_run_exit_code(containerd: Containerd) -> None:
    cid = _ids(containerd)
    res = containerd.ctr("run", "--rm", *containerd.run_args(), IMAGE, cid,
                         "sh", "-c", "exit 3", check=False)
    assert res.returncode == 3, res
    _assert_gone(containerd, cid)


def test_detached_lifecycle(containerd: Containerd) -> None:
    cd, cid = containerd, _ids(containerd)
    try:
        cd.ctr("run", "-d", *cd.run_args(), IMAGE, cid, "sleep", "30")
        res = cd.ctr("task", "exec", "--fifo-dir", str(cd.fifo_dir), "--exec-id", "x", cid,
                     "echo", "hi")
        assert res.stdout.strip() == "hi"

        pids = cd.task_pids(cid)
        assert len(pids) >= 2, pids  # the sandbox and sleep
        comms = {p: Path(f"/proc/{p}/comm").read_text().strip() for p in pids}
        assert "runsc-sandbox" in comms.values(), comms
        assert "sleep" in comms.values(), comms
        for p in pids:  # every process, the sandbox included, is filtered
            status = Path(f"/proc/{p}/status").read_text()
            assert "Seccomp:\t2" in status, (p, comms[p], status)
        assert (cd.runc_root / cd.ns / cid).is_dir()

        cd.ctr("task", "pause", cid)
        assert "PAUSED" in cd.ctr("task", "ls").stdout
        cd.ctr("task", "resume", cid)
        ls = [ln.split() for ln in cd.ctr("task", "ls").stdout.splitlines()[1:]]
        assert any(ln[0] == cid and ln[2] == "RUNNING" for ln in ls), ls

        cd.ctr("task", "kill", "-s", "SIGKILL", cid)
        deadline = time.monotonic() + 15
        while True:
            ls = [ln.split() for ln in cd.ctr("task", "ls").stdout.splitlines()[1:]]
            if any(ln[0] == cid and ln[2] == "STOPPED" for ln in ls):
                break
            assert time.monotonic() < deadline, ls
            time.sleep(0.1)
        cd.ctr("task", "delete", cid)
        cd.ctr("containers", "rm", cid)
        _wait_until(lambda: not any(os.path.exists(f"/proc/{p}") for p in pids),
                    f"processes {pids} left")
        _assert_gone(cd, cid)
    finally:
        cd.ctr("task", "kill", "-s", "SIGKILL", cid, check=False)
        cd.ctr("task", "delete", "--force", cid, check=False)
        cd.ctr("containers", "rm", cid, check=False)


# Typed into the container's shell: wait until the terminal has size %s,
# then print SIZE-2 (typed as SIZE-$((1+1)): the echo of the line must not match).
_WAIT_SIZE = (b'while [ "$(stty size 2>/dev/null)" != "%s" ]; do sleep 0.1; done; '
              b'echo SIZE-$((1+1))\r')


def test_run_tty(containerd: Containerd) -> None:
    """`ctr run -t`: the runtime hands the shim the pty master over the console
    socket; ctr copies its terminal to it and sets the window size on it."""
    cd, cid = containerd, _ids(containerd)
    term = Pty(["ctr", "-a", cd.sock, "-n", cd.ns, "run", "-t", "--rm", *cd.run_args(), IMAGE,
                cid, "sh"])
    try:
        term.expect(b"# ")
        term.send(b"echo MARK$((6*7)); tty\r")
        term.expect(b"MARK42\r\r\n/dev/")  # tty names the pty
        # ctr sets the size once the task runs, asynchronously: wait for it.
        term.send(_WAIT_SIZE % b"40 100")
        term.expect(b"SIZE-2")
        term.send(b"exit 7\r")
        assert term.wait() == 7, term.out
    finally:
        term.close()
        cd.ctr("task", "kill", "-s", "SIGKILL", cid, check=False)
        cd.ctr("task", "delete", "--force", cid, check=False)
        cd.ctr("containers", "rm", cid, check=False)
    _assert_gone(cd, cid)


def test_exec_tty_and_metrics(containerd: Containerd) -> None:
    """`ctr task exec -t` gets a terminal too; `ctr task metrics` reads the
    container's cgroups through the pid runsc-py reports (the sandbox)."""
    cd, cid = containerd, _ids(containerd)
    limit = 64 << 20
    try:
        cd.ctr("run", "-d", "--memory-limit", str(limit), *cd.run_args(), IMAGE, cid,
               "sleep", "30")
        term = Pty(["ctr", "-a", cd.sock, "-n", cd.ns, "task", "exec", "-t", "--fifo-dir",
                    str(cd.fifo_dir), "--exec-id", "t", cid, "sh"], rows=30, cols=90)
        try:
            term.expect(b"# ")
            term.send(b"tty; grep Seccomp: /proc/self/status\r")
            term.expect(b"/dev/pts/")
            term.expect(b"Seccomp:\t2")
            term.send(_WAIT_SIZE % b"30 90")
            term.expect(b"SIZE-2")
            term.send(b"exit 5\r")
            assert term.wait() == 5, term.out
        finally:
            term.close()

        m = json.loads(cd.ctr("task", "metrics", "--format", "json", cid).stdout)
        assert m["memory"]["usage"]["limit"] == limit, m["memory"]
        assert m["memory"]["usage"]["usage"] > 0, m["memory"]
        assert m["cpu"]["usage"]["total"] > 0, m["cpu"]
        assert m["pids"]["current"] >= 2, m["pids"]  # the sandbox (and its threads), sleep
        table = cd.ctr("task", "metrics", cid).stdout
        for key in ("memory.usage_in_bytes", "cpuacct.usage", "pids.current"):
            assert key in table, table
    finally:
        cd.ctr("task", "kill", "-s", "SIGKILL", cid, check=False)
        _wait_until(lambda: not any(ln.split()[:1] == [cid] and "RUNNING" in ln for ln in
                                    cd.ctr("task", "ls", check=False).stdout.splitlines()),
                    f"task {cid} still running")
        cd.ctr("task", "delete", "--force", cid, check=False)
        cd.ctr("containers", "rm", cid, check=False)
    _assert_gone(cd, cid)


def test_kill_sigterm(containerd: Containerd) -> None:
    """SIGTERM reaches the workload (its handler runs; the exit status comes back)."""
    cd, cid = containerd, _ids(containerd)
    try:
        cd.ctr("run", "-d", *cd.run_args(), IMAGE, cid, "sh", "-c",
               "trap 'exit 42' TERM; while :; do sleep 0.1; done")
        cd.ctr("task", "kill", "-s", "SIGTERM", cid)
        _wait_until(lambda: any(ln.split()[:1] == [cid] and "STOPPED" in ln for ln in
                                cd.ctr("task", "ls").stdout.splitlines()),
                    f"task {cid} did not stop on SIGTERM", timeout=TIMEOUT)
        res = cd.ctr("task", "delete", cid)
        assert "exit code 42" in res.stderr, res
        cd.ctr("containers", "rm", cid)
    finally:
        cd.ctr("task", "kill", "-s", "SIGKILL", cid, check=False)
        cd.ctr("task", "delete", "--force", cid, check=False)
        cd.ctr("containers", "rm", cid, check=False)
    _assert_gone(cd, cid)


def test_network_sandbox_policy_and_annotations(containerd: Containerd) -> None:
    """ctr gives the container a new network namespace: loopback up, the
    kernel backstop in it, the metadata address refused, netlink mutation
    refused; a policy set per container with an OCI annotation applies."""
    cid = _ids(containerd)
    script = ("ip -o link; ip rule; ip addr add 10.9.9.9/32 dev lo; echo ipaddr=$?;"
              " nc -w 1 169.254.169.254 80 </dev/null; echo meta=$?;"
              " nc -w 1 127.0.0.2 9 </dev/null; echo lo=$?")
    res = containerd.ctr("run", "--rm", *containerd.run_args(),
                         "--annotation", "dev.runsc-py.net.deny=127.0.0.2/32",
                         "--annotation", "dev.runsc-py.net.log=true",
                         IMAGE, cid, "sh", "-c", script, check=False)
    out = res.stdout + res.stderr
    assert res.returncode == 0, res
    assert "lo: <LOOPBACK,UP" in out and "eth" not in out, out
    assert "to 169.254.0.0/16" in out and "prohibit" in out, out
    assert "ipaddr=0" not in out, out
    assert "meta=0" not in out and "Permission denied" in out, out
    assert "lo=0" not in out, out
    _assert_gone(containerd, cid)


def test_network_host_namespace(containerd: Containerd) -> None:
    cid = _ids(containerd)
    res = containerd.ctr("run", "--rm", "--net-host", *containerd.run_args(), IMAGE, cid,
                         "sh", "-c", "cat /proc/net/dev | tail -n +3 | cut -d: -f1 | sort | xargs")
    host = sorted(ln.split(":")[0].strip() for ln in open("/proc/net/dev").read().splitlines()[2:])
    assert sorted(res.stdout.split()) == host, res
    _assert_gone(containerd, cid)
