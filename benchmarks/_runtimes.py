"""The runtimes under comparison and how to call them.

Every call goes through Runtime.call(): argv is `BIN [GLOBAL...] --root ROOT
ARGS`, stdin is /dev/null, stdout/stderr are FILES (a detached container
inherits the runtime's stdio: a pipe would never see EOF), and it has a
timeout.  Every container id handed to a runtime is recorded in the Session
before the call, so that cleanup() can `delete --force` it whatever happens.

Container ids carry the session's random token: cgroup directories are named
after the id (no cgroupsPath in our specs), so ids must never collide with
another runtime's or another developer's containers, and leftovers can be
recognised as ours.
"""

from __future__ import annotations

import json
import os
import resource
import select
import shutil
import signal
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RUNSC_PY = str(REPO / ".venv" / "bin" / "runsc-py")



def _crun_argv() -> list[str]:
    """crun (1.8) refuses a hybrid cgroup host whose v2 hierarchy has any
    controller bound ("cgroups in hybrid mode not supported, drop all
    controllers from cgroupv2"; this machine binds hugetlb to cgroup2).  There
    it runs in a private mount namespace without /sys/fs/cgroup/unified, where
    it sees a v1-only host and uses the v1 hierarchies; the host is unchanged."""
    try:
        controllers = Path("/sys/fs/cgroup/unified/cgroup.controllers").read_text().strip()
    except OSError:
        return ["crun"]
    if not controllers:
        return ["crun"]
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c",
            'umount -l /sys/fs/cgroup/unified && exec crun "$@"', "crun"]


def binary(argv: list[str]) -> str:
    """The runtime binary of an argv prefix (the last word of a wrapper)."""
    return argv[-1] if argv[0] == "unshare" else argv[0]


# name -> argv prefix (before --root).  runsc is gVisor on the ptrace platform
# (the KVM platform hangs on this machine kind); runsc-py variants differ by
# platform / file access mode (the -nocache ones: every lookup walks, as
# under gVisor's --file-access=shared; measured on request, not by default).
KNOWN: dict[str, list[str]] = {
    "runc": ["runc"],
    "crun": _crun_argv(),
    "runsc": ["runsc", "--network=none"],
    "runsc-py": [RUNSC_PY],
    "runsc-py-gofer": [RUNSC_PY, "--file-access=gofer"],
    "runsc-py-ptrace": [RUNSC_PY, "--platform=ptrace"],
    "runsc-py-nocache": [RUNSC_PY, "--lookup-cache=false"],
    "runsc-py-gofer-nocache": [RUNSC_PY, "--file-access=gofer", "--lookup-cache=false"],
}
DEFAULT_RUNTIMES = ["runc", "runsc", "runsc-py", "runsc-py-gofer", "runsc-py-ptrace"]
REFERENCES = ("runc", "runsc")


def is_runsc_py(name: str) -> bool:
    return name.startswith("runsc-py")


@dataclass
class Result:
    rc: int
    elapsed: float
    stdout: str
    stderr: str
    timed_out: bool = False
    # The call's process tree, as far as it waited for it (os.wait4):
    # user and system CPU seconds, minor page faults.
    cpu_user: float = 0.0
    cpu_sys: float = 0.0
    faults: int = 0

    @property
    def ok(self) -> bool:
        return self.rc == 0 and not self.timed_out

    def error(self) -> str:
        """One line saying why the call failed."""
        if self.timed_out:
            return f"timed out after {self.elapsed:.0f} s"
        lines = [ln.strip() for ln in self.stderr.splitlines() if ln.strip()]
        return f"exit {self.rc}: {lines[-1][:200] if lines else '(no stderr)'}"


@dataclass
class Runtime:
    name: str
    argv: list[str]
    root: Path
    session: "Session"
    available: bool = True
    unavailable_reason: str = ""

    def executables(self) -> set[str]:
        """Real paths of the binaries this runtime's processes run (memory case)."""
        exe = shutil.which(binary(self.argv)) or binary(self.argv)
        paths = {os.path.realpath(exe)}
        try:
            with open(exe, "rb") as f:
                first = f.readline(256)
            if first.startswith(b"#!"):
                interp = first[2:].decode().split()[0]
                paths.add(os.path.realpath(interp))
        except OSError:
            pass
        return paths

    def version(self) -> str:
        try:
            out = subprocess.run([binary(self.argv), "--version"], capture_output=True, text=True,
                                 timeout=20, stdin=subprocess.DEVNULL).stdout
        except (OSError, subprocess.TimeoutExpired) as e:
            return f"? ({e})"
        return " ".join(out.split("\n")[:2]).strip()

    def new_id(self, case: str) -> str:
        cid = f"rb{self.session.token}-{self.name}-{case}-{uuid.uuid4().hex[:6]}"
        self.session.ids.append((self, cid))
        return cid

    def call(self, *args: str, timeout: float = 120) -> Result:
        argv = [*self.argv, "--root", str(self.root), *args]
        io = self.session.io_dir
        out_path = io / f"{threading.get_ident()}-{time.monotonic_ns()}.out"
        err_path = out_path.with_suffix(".err")
        with open(out_path, "w+") as out, open(err_path, "w+") as err:
            t0 = time.perf_counter()
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                    start_new_session=True)
            timed_out = False
            ru = None
            try:
                rc, ru = _wait(proc, timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
                _kill_group(proc)
                rc = proc.wait()
            except BaseException:
                _kill_group(proc)
                proc.wait()
                raise
            elapsed = time.perf_counter() - t0
            out.seek(0)
            err.seek(0)
            res = Result(rc, elapsed, out.read(), err.read(), timed_out)
            if ru is not None:
                res.cpu_user, res.cpu_sys, res.faults = ru.ru_utime, ru.ru_stime, ru.ru_minflt
        out_path.unlink(missing_ok=True)
        err_path.unlink(missing_ok=True)
        return res

    def delete(self, cid: str) -> None:
        self.call("delete", "--force", cid, timeout=60)

    def state(self, cid: str) -> str | None:
        r = self.call("state", cid, timeout=30)
        if not r.ok:
            return None
        try:
            return str(json.loads(r.stdout).get("status"))
        except ValueError:
            return None


def _wait(proc: subprocess.Popen[bytes], timeout: float) -> tuple[int, "resource.struct_rusage"]:
    """proc's exit status and resource usage, woken the moment it exits.
    Popen.wait(timeout) polls with sleeps that grow to 50 ms, which rounded
    every elapsed time up to the next step of 31.5, 63.5, 113.5, 163.5 ...
    ms.  wait4 gives the CPU and faults of the process and of the children
    it waited for (a `run`'s whole tree)."""
    fd = os.pidfd_open(proc.pid)
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        if not poller.poll(timeout * 1000):
            raise subprocess.TimeoutExpired(proc.args, timeout)
    finally:
        os.close(fd)
    _, status, ru = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, ru


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    # The runtime was started in its own session: its process group holds it
    # and whatever it forked that did not move away (never the containers,
    # which `delete --force` handles).
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@dataclass
class Session:
    """One benchmark run's scratch space and everything it must clean up."""
    work: Path
    token: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    ids: list[tuple[Runtime, str]] = field(default_factory=list)
    runtimes: dict[str, Runtime] = field(default_factory=dict)
    # Run first by cleanup() (a private containerd's stop).
    finalizers: list = field(default_factory=list)

    @property
    def io_dir(self) -> Path:
        return self.work / "io"

    def runtime(self, name: str) -> Runtime:
        if name not in self.runtimes:
            argv = list(KNOWN[name]) if name in KNOWN else name.split()
            root = self.work / f"root-{name}"
            root.mkdir(parents=True, exist_ok=True)
            self.runtimes[name] = Runtime(name, argv, root, self)
        return self.runtimes[name]

    def forget(self, rt: Runtime, cid: str) -> None:
        try:
            self.ids.remove((rt, cid))
        except ValueError:
            pass

    def cleanup(self) -> list[str]:
        """Delete every container, kill stragglers, remove cgroups and files.

        Returns what had to be cleaned up beyond `delete --force` (reported
        as a warning: it means a runtime left something behind)."""
        leftovers: list[str] = []
        for fin in reversed(self.finalizers):
            try:
                fin()
            except Exception as e:  # keep cleaning the rest
                leftovers.append(f"{getattr(fin, '__qualname__', fin)}: {e}")
        self.finalizers.clear()
        for rt, cid in reversed(self.ids):
            try:
                rt.delete(cid)
            except Exception as e:  # keep cleaning the rest
                leftovers.append(f"delete {rt.name} {cid}: {e}")
        self.ids.clear()
        # Processes still in one of our containers' cgroups, or naming our work dir.
        zombies = []
        for pid in _our_pids(self.token, str(self.work)):
            desc = _describe(pid)
            if "state Z" in desc:  # exited, not yet reaped by its parent: holds nothing
                zombies.append(f"{pid} ({desc})")
                continue
            leftovers.append(f"killed leftover pid {pid} ({desc})")
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if leftovers:
            time.sleep(0.2)
        # Mounts under the work dir (a runtime that died mid-setup).
        for mnt in _mounts_under(str(self.work)):
            leftovers.append(f"unmounted {mnt}")
            subprocess.run(["umount", "-l", mnt], capture_output=True)
        # Empty cgroup directories named after our ids.
        for d in _cgroup_dirs(self.token):
            try:
                os.rmdir(d)
                leftovers.append(f"removed cgroup {d}")
            except OSError:
                pass
        shutil.rmtree(self.work, ignore_errors=True)
        if zombies:
            leftovers.append(f"{len(zombies)} exited process(es) of our containers not yet reaped "
                             f"by their parent: {', '.join(zombies[:5])}")
        return leftovers


def _describe(pid: int) -> str:
    """'comm, state S, parent PPID' from /proc/PID/stat."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "gone"
    comm = stat[stat.index("(") + 1:stat.rindex(")")]
    state, ppid = stat[stat.rindex(")") + 2:].split()[:2]
    return f"{comm}, state {state}, parent {ppid}"


def _our_pids(token: str, work: str) -> list[int]:
    found = []
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            cg = Path(f"/proc/{entry}/cgroup").read_text()
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if f"rb{token}-" in cg or work in cmd:
            found.append(int(entry))
    return found


def _mounts_under(work: str) -> list[str]:
    out = []
    try:
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            mp = line.split()[4].replace("\\040", " ")
            if mp == work or mp.startswith(work + "/"):
                out.append(mp)
    except OSError:
        pass
    return sorted(out, key=len, reverse=True)


def _cgroup_dirs(token: str) -> list[str]:
    base = Path("/sys/fs/cgroup")
    found: list[str] = []
    if not base.is_dir():
        return found
    for dirpath, dirnames, _ in os.walk(base):
        for d in dirnames:
            if d.startswith(f"rb{token}-") or f"rb{token}-" in d:
                found.append(os.path.join(dirpath, d))
        if dirpath.count("/") >= 5:  # ids sit at most one level below a hierarchy's top
            dirnames.clear()
    return sorted(found, key=len, reverse=True)
