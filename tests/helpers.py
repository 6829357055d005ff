"""Support code for the runtime's integration tests (see conftest.py for the
fixtures built on it).

Everything here drives a real runtime binary through its command line, the
way containerd's shim, conmon and the OCI validation tools do: no mocks.  The
binary is chosen by the environment variable RUNSC_PY_TEST_RUNTIME (default:
<repo>/.venv/bin/runsc-py), so that the same tests can be run against runc to
check that the *tests* are right:

    RUNSC_PY_TEST_RUNTIME=/usr/sbin/runc .venv/bin/pytest tests/

Kernel facts the helpers rely on:
- A container's processes are inspected through /proc from the host: the pid
  namespace and mount namespace of a process are the inodes of
  /proc/PID/ns/{pid,mnt}; its cgroups are in /proc/PID/cgroup.
- /proc/PID/root and /proc/PID/exe of a process that pivot_root'ed into
  another mount namespace read as paths of *that* namespace, so leaks are
  found by cgroup, by namespace and by the pids the runtime reported, not only
  by path.
- Field 22 of /proc/PID/stat (start time) guards against pid reuse.
"""

from __future__ import annotations

import contextlib
import copy
import ctypes
import errno
import hashlib
import json
import os
import re
import select
import shutil
import signal
import socket
import shlex
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

REPO = Path(__file__).resolve().parents[1]
RUNTIME_ENV = "RUNSC_PY_TEST_RUNTIME"
DEFAULT_RUNTIME = REPO / ".venv" / "bin" / "runsc-py"
# Per runtime call; RUNSC_PY_TEST_TIMEOUT overrides (e.g. 5 while a runtime hangs).
DEFAULT_TIMEOUT = float(os.environ.get("RUNSC_PY_TEST_TIMEOUT", "30"))
HOST_BUSYBOX = Path("/bin/busybox")
CACHE_DIR = Path("/var/cache/runsc-py-tests")
# Bump when the rootfs layout below changes: the cache key includes it.
ROOTFS_LAYOUT_VERSION = 1
CGROUP_ROOT = Path("/sys/fs/cgroup")
ID_RE = re.compile(r"^[\w+\-.]+$")


PLATFORM_ENV = "RUNSC_PY_TEST_PLATFORM"


def platform_under_test() -> str:
    """The sentry platform the tests run runsc-py on: $RUNSC_PY_TEST_PLATFORM
    (seccomp, ptrace; default: the runtime's own choice, auto)."""
    return os.environ.get(PLATFORM_ENV, "")


def runtime_binary() -> str:
    """The runtime under test: $RUNSC_PY_TEST_RUNTIME or <repo>/.venv/bin/runsc-py.

    With $RUNSC_PY_TEST_PLATFORM set, runsc-py is run through a wrapper that
    adds --platform=P to every call, so that the clients the tests drive
    (containerd, podman, dockerd, CRI) use that platform too."""
    binary = os.environ.get(RUNTIME_ENV) or str(DEFAULT_RUNTIME)
    platform = platform_under_test()
    if not platform or os.path.basename(binary) == "runc":
        return binary
    return str(_platform_wrapper(binary, platform))


def container_platform(rt: "Runtime", cid: str) -> str:
    """The sentry platform runsc-py chose for container cid (its state
    file), "" for runc or when it is gone."""
    try:
        return str(json.loads((rt.root / cid / "state.json").read_text()).get("platform", ""))
    except (OSError, ValueError):
        return ""


# The descriptor the ptrace platform reserves in every workload process
# (sentry/platform/reserved.py): a socket whose other end is the sandbox's.
RESERVED_FD = 1023


def reserved_socket(pid: int) -> str:
    """The reserved socket of a ptrace-platform workload process ("" if none)."""
    try:
        t = os.readlink(f"/proc/{pid}/fd/{RESERVED_FD}")
    except OSError:
        return ""
    return t if t.startswith("socket:") else ""


def install_args(binary: str) -> list[str]:
    """Arguments of `install` that register BINARY itself: needed when it is
    the $RUNSC_PY_TEST_PLATFORM wrapper (install registers the runsc-py it
    runs as, which a wrapper execs)."""
    return ["--binary", binary] if platform_under_test() and os.path.basename(binary) != "runc" else []


def _platform_wrapper(binary: str, platform: str) -> Path:
    key = hashlib.sha256(f"{binary}\0{platform}".encode()).hexdigest()[:12]
    d = Path(f"/tmp/runsc-py-{platform}-{key}")
    exe = d / "runsc-py"
    text = f'#!/bin/sh\nexec {shlex.quote(binary)} --platform={shlex.quote(platform)} "$@"\n'
    if not exe.exists() or exe.read_text() != text:
        d.mkdir(mode=0o755, exist_ok=True)
        tmp = d / f".runsc-py.{os.getpid()}"
        tmp.write_text(text)
        tmp.chmod(0o755)
        os.replace(tmp, exe)
    return exe


def binary_is_runc(binary: str) -> bool:
    """True when the binary under test is runc (the reference), not runsc-py."""
    if os.path.basename(binary) == "runc":
        return True
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True,
                             timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.startswith("runc version")


# --------------------------------------------------------------------------
# The busybox rootfs
# --------------------------------------------------------------------------

PASSWD = """\
root:x:0:0:root:/root:/bin/sh
user:x:1000:1000:user:/home/user:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
"""
GROUP = """\
root:x:0:
tty:x:5:
user:x:1000:
nogroup:x:65534:
"""


def _busybox_key() -> str:
    h = hashlib.sha256(HOST_BUSYBOX.read_bytes()).hexdigest()[:16]
    ver = subprocess.run([str(HOST_BUSYBOX)], capture_output=True, text=True).stdout.split("\n")[0]
    m = re.search(r"v(\d[\w.\-]*)", ver)
    return f"busybox-{m.group(1) if m else 'unknown'}-{h}-l{ROOTFS_LAYOUT_VERSION}"


def build_rootfs(dest: Path) -> None:
    """Populate DEST with a minimal busybox rootfs (~2 MB)."""
    for d in ("bin", "sbin", "usr/bin", "usr/sbin", "etc", "proc", "sys", "dev", "tmp",
              "root", "var/run", "var/tmp", "home/user", "mnt", "run"):
        (dest / d).mkdir(parents=True, exist_ok=True)
    os.chmod(dest / "tmp", 0o1777)
    os.chmod(dest / "var/tmp", 0o1777)
    os.chmod(dest / "root", 0o700)
    os.chown(dest / "home/user", 1000, 1000)
    shutil.copy2(HOST_BUSYBOX, dest / "bin/busybox")
    os.chmod(dest / "bin/busybox", 0o755)
    applets = subprocess.run([str(HOST_BUSYBOX), "--list-full"], capture_output=True,
                             text=True, check=True).stdout.split()
    for rel in applets:
        if "/" not in rel or rel.endswith("/busybox"):
            continue  # e.g. "linuxrc"
        link = dest / rel
        link.parent.mkdir(parents=True, exist_ok=True)
        target = os.path.relpath(dest / "bin/busybox", link.parent)
        if not link.exists() and not link.is_symlink():
            os.symlink(target, link)
    (dest / "etc/passwd").write_text(PASSWD)
    (dest / "etc/group").write_text(GROUP)
    (dest / "etc/hostname").write_text("runsc-py-test\n")
    (dest / "etc/hosts").write_text("127.0.0.1\tlocalhost\n::1\tlocalhost\n")
    (dest / "etc/resolv.conf").write_text("")


def cached_rootfs() -> Path:
    """The master busybox rootfs, built once per busybox version and cached
    under /var/cache/runsc-py-tests/ (atomically: build aside, then rename).
    Never handed to a runtime: bundles get a copy."""
    key = _busybox_key()
    final = CACHE_DIR / key / "rootfs"
    if (final / "bin/busybox").exists():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=final.parent))
    try:
        build_rootfs(tmp / "rootfs")
        try:
            os.rename(tmp / "rootfs", final)
        except OSError as e:
            if e.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise  # else: a concurrent session won the race
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def copy_tree(src: Path, dest: Path) -> None:
    """cp -a SRC DEST (DEST must not exist)."""
    subprocess.run(["cp", "-a", str(src), str(dest)], check=True)


# --------------------------------------------------------------------------
# The spec
# --------------------------------------------------------------------------

def default_spec(args: Sequence[str] | None = None, *, terminal: bool = False) -> dict[str, Any]:
    """Same shape as `runc spec`, except "terminal": false and ARGS."""
    caps = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
    return {
        "ociVersion": "1.0.2-dev",
        "process": {
            "terminal": terminal,
            "user": {"uid": 0, "gid": 0},
            "args": list(args) if args is not None else ["sh"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "TERM=xterm"],
            "cwd": "/",
            "capabilities": {k: list(caps) for k in ("bounding", "effective", "permitted", "ambient")},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": True},
        "hostname": "runsc-py-test",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
        ],
        "linux": {
            "resources": {"devices": [{"allow": False, "access": "rwm"}]},
            "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")],
            "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                            "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                            "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                              "/proc/sysrq-trigger"],
        },
    }


def deep_merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Merge OVERRIDE into BASE in place and return BASE: dicts merge
    recursively, anything else (lists included) replaces, None deletes."""
    for k, v in override.items():
        if v is None:
            base.pop(k, None)
        elif isinstance(v, Mapping) and isinstance(base.get(k), dict):
            deep_merge(base[k], v)
        else:
            base[k] = copy.deepcopy(v)
    return base


@dataclass
class Bundle:
    """A bundle directory: PATH/config.json and PATH/rootfs (or a shared rootfs)."""

    path: Path
    rootfs: Path
    spec: dict[str, Any]

    @property
    def config_path(self) -> Path:
        return self.path / "config.json"

    def __str__(self) -> str:
        return str(self.path)

    def __fspath__(self) -> str:
        return str(self.path)

    def write_config(self, spec: dict[str, Any] | None = None) -> None:
        """Write SPEC (default: self.spec) to config.json."""
        if spec is not None:
            self.spec = spec
        self.config_path.write_text(json.dumps(self.spec, indent=2))

    def update(self, override: Mapping[str, Any]) -> "Bundle":
        """deep_merge OVERRIDE into the spec and rewrite config.json."""
        deep_merge(self.spec, override)
        self.write_config()
        return self

    def edit(self, fn: Callable[[dict[str, Any]], Any]) -> "Bundle":
        """Call FN(spec) (it edits in place or returns a new spec), rewrite config.json."""
        ret = fn(self.spec)
        if isinstance(ret, dict):
            self.spec = ret
        self.write_config()
        return self

    def write_file(self, rel: str, content: str | bytes, mode: int = 0o644) -> Path:
        """Create ROOTFS/REL (a copied rootfs only)."""
        p = self.rootfs / rel.lstrip("/")
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content.encode() if isinstance(content, str) else content)
        os.chmod(p, mode)
        return p


# --------------------------------------------------------------------------
# Running the runtime
# --------------------------------------------------------------------------

class Result(subprocess.CompletedProcess):  # type: ignore[type-arg]
    """A CompletedProcess (text stdout/stderr) that remembers where the
    output went: the runtime's stdio are files, never pipes, so that a
    container inheriting them cannot make the test hang waiting for EOF.
    After a detached run the container keeps writing to them: read_stdout()
    returns the current contents."""

    stdout_path: Path
    stderr_path: Path

    def read_stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def read_stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def stderr_lines(self) -> list[str]:
        return [ln for ln in self.stderr.splitlines() if ln.strip()]

    def check(self) -> "Result":
        assert self.returncode == 0, f"command failed: {self}"
        return self

    def __str__(self) -> str:
        cmd = " ".join(str(a) for a in self.args)
        return (f"\n  $ {cmd}\n  exit status {self.returncode}\n"
                f"  stdout: {self.stdout[-3000:]!r}\n  stderr: {self.stderr[-3000:]!r}")

    __repr__ = __str__


class RuntimeTimeout(AssertionError):
    pass


@dataclass
class TestContext:
    """Everything one test touched, for the leak check: work dir, runtimes
    (each with its --root), container ids, bundles, pids and namespaces seen."""

    __test__ = False  # not a pytest test class

    workdir: Path
    shared_rootfs: Path | None = None
    runtimes: list["Runtime"] = field(default_factory=list)
    ids: set[str] = field(default_factory=set)
    bundles: list[Bundle] = field(default_factory=list)
    pids: dict[int, int] = field(default_factory=dict)        # pid -> start time
    # ("pid"|"mnt", inode) -> an open fd on that namespace.  Holding the fd
    # keeps the namespace from being freed, and so its inode number from
    # being reused by an unrelated process's new namespace (nsfs inode
    # numbers come from an IDA: the lowest free one is reused at once).
    ns_fds: dict[tuple[str, int], int] = field(default_factory=dict)
    mount_ids_before: set[int] = field(default_factory=set)
    _counter: int = 0

    def next_name(self, prefix: str) -> str:
        self._counter += 1
        return f"{prefix}{self._counter}"

    def remember_pid(self, pid: int, force: bool = False) -> None:
        """Record PID and its descendants (and their new namespaces).  A pid
        already recorded is not rescanned unless FORCE."""
        if pid <= 1:
            return
        if not force and pid in self.pids:
            st = proc_stat(pid)
            if st is None or st[2] == self.pids[pid]:
                return
        procs = scan_processes()
        mine = {"pid": _ns_inode(os.getpid(), "pid"), "mnt": _ns_inode(os.getpid(), "mnt")}
        todo = [pid]
        seen = set()
        while todo:
            p = todo.pop()
            if p in seen or p not in procs:
                continue
            seen.add(p)
            info = procs[p]
            self.pids[p] = info.start
            for kind in ("pid", "mnt"):
                if info.ns.get(kind) in (0, mine[kind]):
                    continue
                self._hold_ns(p, info.start, kind)
            todo.extend(c.pid for c in procs.values() if c.ppid == p)

    def _hold_ns(self, pid: int, start: int, kind: str) -> None:
        try:
            fd = os.open(f"/proc/{pid}/ns/{kind}", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return
        ino = os.fstat(fd).st_ino
        st = proc_stat(pid)
        # Still the same process after the open: the fd is its namespace.
        if st is None or st[2] != start or (kind, ino) in self.ns_fds:
            os.close(fd)
            return
        self.ns_fds[(kind, ino)] = fd

    @property
    def namespaces(self) -> set[tuple[str, int]]:
        return set(self.ns_fds)

    def release_namespaces(self) -> None:
        for fd in self.ns_fds.values():
            os.close(fd)
        self.ns_fds.clear()


class Runtime:
    """Runs the runtime binary with a per-test --root.

    Every call goes through run(): argv is [binary, --root ROOT, *global_args,
    *args]; stdin is /dev/null unless `input` is given; stdout and stderr go
    to files under WORKDIR/io (see Result).  Calls time out after 30 s by
    default, $RUNSC_PY_TEST_TIMEOUT if set (the runtime's process group is
    then killed and the test fails).
    """

    def __init__(self, ctx: TestContext, binary: str, root: Path | None = None,
                 is_runc: bool | None = None) -> None:
        self.ctx = ctx
        self.binary = binary
        self.root = root if root is not None else ctx.workdir / "root"
        self.is_runc = binary_is_runc(binary) if is_runc is None else is_runc
        self.log_path = ctx.workdir / "log.json"
        (ctx.workdir / "io").mkdir(exist_ok=True)
        ctx.runtimes.append(self)

    # -- plumbing ----------------------------------------------------------

    def with_root(self, root: Path) -> "Runtime":
        """Another Runtime on the same binary with a different --root (also
        covered by the leak check)."""
        return Runtime(self.ctx, self.binary, root, self.is_runc)

    def new_id(self, hint: str = "c") -> str:
        """A unique container id matching [\\w+\\-.]+ (short: the state dir's
        unix sockets must fit in 108 bytes)."""
        hint = re.sub(r"[^\w+\-.]", "-", hint)[:20] or "c"
        cid = f"{hint}-{uuid.uuid4().hex[:8]}"
        self.ctx.ids.add(cid)
        return cid

    def log_args(self, path: Path | None = None, fmt: str = "json") -> list[str]:
        """Global flags `--log PATH --log-format FMT` (PATH defaults to self.log_path)."""
        return ["--log", str(path or self.log_path), "--log-format", fmt]

    def log_entries(self, path: Path | None = None) -> list[dict[str, Any]]:
        """The JSON lines of the --log file (every line must be JSON)."""
        p = path or self.log_path
        if not p.exists():
            return []
        out = []
        for ln in p.read_text().splitlines():
            if ln.strip():
                out.append(json.loads(ln))
        return out

    def argv(self, *args: Any, global_args: Sequence[str] = (), root: bool = True) -> list[str]:
        cmd = [self.binary]
        if root:
            cmd += ["--root", str(self.root)]
        return cmd + [str(a) for a in global_args] + [str(a) for a in args]

    def _io_files(self, tag: str) -> tuple[Path, Path]:
        n = self.ctx.next_name("")
        safe = re.sub(r"[^\w.\-]", "_", tag)[:30]
        io = self.ctx.workdir / "io"
        return io / f"{n}-{safe}.out", io / f"{n}-{safe}.err"

    def run(self, *args: Any, input: str | bytes | None = None, timeout: float = DEFAULT_TIMEOUT,
            check: bool = False, global_args: Sequence[str] = (), root: bool = True,
            stdin: Any = None, env: Mapping[str, str] | None = None, cwd: Any = None,
            pass_fds: Sequence[int] = ()) -> Result:
        """Run `BINARY --root ROOT [global_args] ARGS...` and wait for it."""
        cmd = self.argv(*args, global_args=global_args, root=root)
        out_p, err_p = self._io_files(str(args[0]) if args else "noargs")
        stdin_f: Any = subprocess.DEVNULL if stdin is None else stdin
        close_stdin = None
        if input is not None:
            data = input.encode() if isinstance(input, str) else input
            in_p = out_p.with_suffix(".in")
            in_p.write_bytes(data)
            stdin_f = close_stdin = open(in_p, "rb")
        try:
            with open(out_p, "wb") as out_f, open(err_p, "wb") as err_f:
                proc = subprocess.Popen(cmd, stdin=stdin_f, stdout=out_f, stderr=err_f,
                                        env=dict(env) if env is not None else None, cwd=cwd,
                                        pass_fds=tuple(pass_fds), start_new_session=True)
            try:
                rc = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                res = self._result(cmd, -9, out_p, err_p)
                raise RuntimeTimeout(f"runtime call timed out after {timeout}s: {res}") from None
        finally:
            if close_stdin:
                close_stdin.close()
        res = self._result(cmd, rc, out_p, err_p)
        if check:
            res.check()
        return res

    def _result(self, cmd: list[str], rc: int, out_p: Path, err_p: Path) -> Result:
        res = Result(cmd, rc, out_p.read_text(errors="replace"), err_p.read_text(errors="replace"))
        res.stdout_path, res.stderr_path = out_p, err_p
        return res

    def popen(self, *args: Any, global_args: Sequence[str] = (), stdin: Any = subprocess.DEVNULL,
              stdout: Any = subprocess.PIPE, stderr: Any = None, **kw: Any) -> subprocess.Popen:
        """Start the runtime without waiting (e.g. `events`); the caller must
        kill/wait it.  stderr defaults to a file under WORKDIR/io."""
        cmd = self.argv(*args, global_args=global_args)
        if stderr is None:
            stderr = open(self._io_files(str(args[0]))[1], "wb")
        return subprocess.Popen(cmd, stdin=stdin, stdout=stdout, stderr=stderr, **kw)

    # -- subcommands -------------------------------------------------------

    def create(self, cid: str, bundle: Bundle | Path | str, *, pid_file: Path | str | bool = True,
               console_socket: Path | str | None = None, extra: Sequence[str] = (),
               check: bool = True, **kw: Any) -> Result:
        """`create --bundle B [--pid-file P] [--console-socket S] EXTRA ID`.
        pid_file=True uses WORKDIR/<id>.pid (set as result.pid_file)."""
        self.ctx.ids.add(cid)
        args: list[Any] = ["create", "--bundle", str(bundle)]
        pf: Path | None = None
        if pid_file is True:
            pf = self.ctx.workdir / f"{cid}.pid"
        elif pid_file:
            pf = Path(pid_file)
        if pf is not None:
            args += ["--pid-file", pf]
        if console_socket is not None:
            args += ["--console-socket", console_socket]
        res = self.run(*args, *extra, cid, **kw)
        res.pid_file = pf  # type: ignore[attr-defined]
        if res.returncode == 0:
            with contextlib.suppress(Exception):
                st = self.try_state(cid)
                if st and st.get("pid"):
                    self.ctx.remember_pid(int(st["pid"]))
        if check:
            res.check()
        return res

    def start(self, cid: str, check: bool = True, **kw: Any) -> Result:
        return self.run("start", cid, check=check, **kw)

    def state(self, cid: str, **kw: Any) -> dict[str, Any]:
        """`state ID` parsed; fails the test if the command fails."""
        res = self.run("state", cid, **kw)
        assert res.returncode == 0, f"state failed: {res}"
        try:
            st = json.loads(res.stdout)
        except ValueError:
            raise AssertionError(f"state printed invalid JSON: {res}") from None
        if st.get("pid"):
            self.ctx.remember_pid(int(st["pid"]))
        return st

    def try_state(self, cid: str) -> dict[str, Any] | None:
        """`state ID` parsed, or None if it fails (e.g. does not exist)."""
        res = self.run("state", cid)
        if res.returncode != 0:
            return None
        st = json.loads(res.stdout)
        if st.get("pid"):
            self.ctx.remember_pid(int(st["pid"]))
        return st

    def status(self, cid: str) -> str | None:
        st = self.try_state(cid)
        return st["status"] if st else None

    def wait_status(self, cid: str, *statuses: str, timeout: float = 10.0) -> dict[str, Any]:
        """Poll `state` (never waitpid) until its status is one of STATUSES."""
        deadline = time.monotonic() + timeout
        st: dict[str, Any] | None = None
        while True:
            st = self.try_state(cid)
            if st and st["status"] in statuses:
                return st
            if time.monotonic() > deadline:
                raise AssertionError(f"container {cid} did not reach {statuses} within "
                                     f"{timeout}s; last state: {st}")
            time.sleep(0.05)

    def kill(self, cid: str, sig: str | int = "KILL", *, all: bool = False, check: bool = True,
             **kw: Any) -> Result:
        args = ["kill"] + (["--all"] if all else []) + [cid, str(sig)]
        return self.run(*args, check=check, **kw)

    def delete(self, cid: str, *, force: bool = False, check: bool = True, **kw: Any) -> Result:
        args = ["delete"] + (["--force"] if force else []) + [cid]
        return self.run(*args, check=check, **kw)

    def exec(self, cid: str, *cmd: str, process: dict[str, Any] | Path | None = None,
             env: Sequence[str] = (), cwd: str | None = None, user: str | None = None,
             tty: bool = False, detach: bool = False, pid_file: Path | str | None = None,
             console_socket: Path | str | None = None, extra: Sequence[str] = (),
             **kw: Any) -> Result:
        """`exec [flags] ID [CMD...]`; PROCESS (a dict) is written to a file
        and passed as --process FILE."""
        args: list[Any] = ["exec"]
        if process is not None:
            if isinstance(process, dict):
                p = self.ctx.workdir / f"{self.ctx.next_name('process')}.json"
                p.write_text(json.dumps(process))
                process = p
            args += ["--process", process]
        for e in env:
            args += ["--env", e]
        if cwd is not None:
            args += ["--cwd", cwd]
        if user is not None:
            args += ["--user", user]
        if tty:
            args.append("--tty")
        if detach:
            args.append("--detach")
        if pid_file is not None:
            args += ["--pid-file", pid_file]
        if console_socket is not None:
            args += ["--console-socket", console_socket]
        args += list(extra)
        return self.run(*args, cid, *cmd, **kw)

    def ps(self, cid: str) -> list[int]:
        """`ps --format json ID` -> host pids."""
        res = self.run("ps", "--format", "json", cid)
        assert res.returncode == 0, f"ps failed: {res}"
        return [int(p) for p in json.loads(res.stdout or "[]")]

    def list(self) -> list[dict[str, Any]]:
        """`list --format json` (runc prints `null` when empty)."""
        res = self.run("list", "--format", "json")
        assert res.returncode == 0, f"list failed: {res}"
        return json.loads(res.stdout or "null") or []

    def cgroup_dir(self, cid: str, controller: str) -> Path:
        """The host cgroup directory of CONTROLLER ("pids", "memory", ... or
        "" for the unified hierarchy) holding the container's processes,
        found from /proc/<pid>/cgroup of a pid reported by `ps`."""
        for pid in self.ps(cid):
            try:
                lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
            except OSError:
                continue
            for ln in lines:
                _, ctrls, path = ln.split(":", 2)
                if controller in ctrls.split(",") or (controller == "" and ctrls == ""):
                    mount = _cgroup_mount(controller)
                    if mount is not None:
                        return mount / path.lstrip("/")
        raise AssertionError(f"no {controller or 'unified'} cgroup found for {cid}")

    def run_container(self, bundle: Bundle | Path | str, cid: str | None = None, *,
                      detach: bool = False, pid_file: Path | str | None = None,
                      extra: Sequence[str] = (), **kw: Any) -> Result:
        """The `run` subcommand: `run --bundle B [--detach] [--pid-file P] ID`."""
        cid = cid or self.new_id("run")
        self.ctx.ids.add(cid)
        args: list[Any] = ["run", "--bundle", str(bundle)]
        if detach:
            args.append("--detach")
        if pid_file is not None:
            args += ["--pid-file", pid_file]
        res = self.run(*args, *extra, cid, **kw)
        res.id = cid  # type: ignore[attr-defined]
        return res

    @contextlib.contextmanager
    def container(self, bundle: Bundle | Path | str, cid: str | None = None, *,
                  start: bool = True, pid_file: Path | str | bool = True,
                  console_socket: Path | str | None = None,
                  extra: Sequence[str] = (), global_args: Sequence[str] = ()) -> Iterator["Container"]:
        """create (+ start unless start=False) a container; always
        `delete --force` it on exit, even if the body failed.  global_args:
        for create only (the sandbox keeps what they chose)."""
        cid = cid or self.new_id()
        try:
            res = self.create(cid, bundle, pid_file=pid_file, console_socket=console_socket,
                              extra=extra, global_args=global_args)
            c = Container(self, cid, bundle, res)
            if start:
                self.start(cid)
            yield c
        finally:
            with contextlib.suppress(Exception):
                self.run("delete", "--force", cid, timeout=min(15.0, DEFAULT_TIMEOUT))


class Container:
    """A created container: id, bundle, the create Result (whose stdout and
    stderr files are the container's stdio when there is no terminal) and the
    pid from --pid-file (the runtime's pid: for runsc-py the sandbox, for
    runc the init - do not assume it is the workload)."""

    def __init__(self, rt: Runtime, cid: str, bundle: Any, create_result: Result) -> None:
        self.rt = rt
        self.id = cid
        self.bundle = bundle
        self.create_result = create_result
        pf = getattr(create_result, "pid_file", None)
        self.pid_file: Path | None = pf
        self.pid = int(pf.read_text()) if pf and pf.exists() and pf.read_text().isdigit() else 0

    def state(self) -> dict[str, Any]:
        return self.rt.state(self.id)

    @property
    def platform(self) -> str:
        """The sentry platform runsc-py chose for it (its state file), "" for runc."""
        return container_platform(self.rt, self.id)

    @property
    def status(self) -> str | None:
        return self.rt.status(self.id)

    def wait_status(self, *statuses: str, timeout: float = 10.0) -> dict[str, Any]:
        return self.rt.wait_status(self.id, *statuses, timeout=timeout)

    def start(self, **kw: Any) -> Result:
        return self.rt.start(self.id, **kw)

    def kill(self, sig: str | int = "KILL", **kw: Any) -> Result:
        return self.rt.kill(self.id, sig, **kw)

    def delete(self, **kw: Any) -> Result:
        return self.rt.delete(self.id, **kw)

    def exec(self, *cmd: str, **kw: Any) -> Result:
        return self.rt.exec(self.id, *cmd, **kw)

    def ps(self) -> list[int]:
        return self.rt.ps(self.id)

    def stdout(self) -> str:
        """What the container has written to its stdout so far."""
        return self.create_result.read_stdout()

    def stderr(self) -> str:
        return self.create_result.read_stderr()

    def wait_output(self, needle: str, timeout: float = 10.0, stream: str = "stdout") -> str:
        """Poll the container's stdout (or stderr) file until it contains NEEDLE."""
        read = self.stdout if stream == "stdout" else self.stderr
        return wait_until(lambda: (lambda s: s if needle in s else None)(read()), timeout,
                          f"{needle!r} on the container's {stream}")


def wait_until(pred: Callable[[], Any], timeout: float = 10.0, what: str = "condition",
               interval: float = 0.05) -> Any:
    """Poll PRED until it returns something truthy (returned) or fail."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


# --------------------------------------------------------------------------
# Console sockets and ptys
# --------------------------------------------------------------------------

class ConsoleSocket:
    """An AF_UNIX SOCK_STREAM listener for --console-socket.  receive()
    accepts one connection and returns the single fd sent with SCM_RIGHTS
    (the pty master), asserting there was exactly one."""

    def __init__(self, directory: Path) -> None:
        self.path = Path(tempfile.mktemp(prefix="cs-", suffix=".sock", dir=directory))
        assert len(str(self.path)) < 100, self.path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(self.path))
        self.sock.listen(4)
        self.message = b""

    def __str__(self) -> str:
        return str(self.path)

    def __fspath__(self) -> str:
        return str(self.path)

    def receive(self, timeout: float = 10.0) -> int:
        self.sock.settimeout(timeout)
        conn, _ = self.sock.accept()
        with conn:
            conn.settimeout(timeout)
            msg, fds, _flags, _addr = socket.recv_fds(conn, 4096, 16)
        self.message = msg
        assert len(fds) == 1, f"expected exactly one fd over the console socket, got {fds}"
        return fds[0]

    def close(self) -> None:
        self.sock.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def read_until(fd: int, needle: bytes, timeout: float = 10.0) -> bytes:
    """Read from FD (a pty master) until NEEDLE appears, EOF/EIO, or timeout
    (which fails).  Returns everything read."""
    buf = b""
    deadline = time.monotonic() + timeout
    while needle not in buf:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"timed out waiting for {needle!r}; read so far: {buf!r}")
        r, _, _ = select.select([fd], [], [], left)
        if not r:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError as e:
            if e.errno == errno.EIO:
                break
            raise
        if not chunk:
            break
        buf += chunk
    return buf


# --------------------------------------------------------------------------
# Subreaper probe (who is the parent of the container after create?)
# --------------------------------------------------------------------------

_SUBREAPER_SCRIPT = r"""
import ctypes, json, os, subprocess, sys
PR_SET_CHILD_SUBREAPER = 36
libc = ctypes.CDLL(None, use_errno=True)
assert libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
argv, pid_file, out, err = json.loads(sys.argv[1])
with open(out, "wb") as o, open(err, "wb") as e:
    rc = subprocess.call(argv, stdin=subprocess.DEVNULL, stdout=o, stderr=e, timeout=30)
res = {"self": os.getpid(), "rc": rc, "pid": None, "ppid": None}
if rc == 0:
    pid = int(open(pid_file).read())
    res["pid"] = pid
    for ln in open(f"/proc/{pid}/status"):
        if ln.startswith("PPid:"):
            res["ppid"] = int(ln.split()[1])
print(json.dumps(res))
"""


def subreaper_probe(argv: Sequence[str], pid_file: Path, out: Path, err: Path) -> dict[str, Any]:
    """Run ARGV (a `create`) from a child Python process that is a child
    subreaper; once ARGV returns, report {"self", "rc", "pid", "ppid"} where
    pid is the pid file's content and ppid its parent."""
    res = subprocess.run([sys.executable, "-c", _SUBREAPER_SCRIPT,
                          json.dumps([list(map(str, argv)), str(pid_file), str(out), str(err)])],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, f"subreaper probe failed: {res.stderr}"
    return json.loads(res.stdout)


# --------------------------------------------------------------------------
# /proc, mounts and cgroups: the leak check
# --------------------------------------------------------------------------

@dataclass
class ProcInfo:
    pid: int
    ppid: int
    state: str
    start: int
    cmdline: str
    ns: dict[str, int]

    def links(self) -> dict[str, str]:
        out = {}
        for name in ("cwd", "root", "exe"):
            with contextlib.suppress(OSError):
                out[name] = os.readlink(f"/proc/{self.pid}/{name}")
        return out

    def cgroups(self) -> list[str]:
        try:
            return [ln.split(":", 2)[2] for ln in
                    Path(f"/proc/{self.pid}/cgroup").read_text().splitlines() if ln.count(":") >= 2]
        except OSError:
            return []


def _ns_inode(pid: int, kind: str) -> int:
    try:
        return os.stat(f"/proc/{pid}/ns/{kind}").st_ino
    except OSError:
        return 0


def proc_stat(pid: int) -> tuple[str, int, int] | None:
    """(state, ppid, start time) of PID, or None."""
    try:
        data = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    rest = data[data.rfind(b")") + 2:].split()
    return rest[0].decode(), int(rest[1]), int(rest[19])


def scan_processes() -> dict[int, ProcInfo]:
    procs = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        pid = int(name)
        st = proc_stat(pid)
        if st is None:
            continue
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(
                errors="replace").strip()
        except OSError:
            cmd = ""
        procs[pid] = ProcInfo(pid, st[1], st[0], st[2], cmd,
                              {k: _ns_inode(pid, k) for k in ("pid", "mnt")})
    return procs


@dataclass
class MountInfo:
    mount_id: int
    root: str
    mountpoint: str
    fstype: str
    source: str

    def __str__(self) -> str:
        return f"{self.mountpoint} ({self.fstype} {self.source} root={self.root})"


def _unescape(s: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), s)


def read_mounts() -> list[MountInfo]:
    out = []
    for ln in Path("/proc/self/mountinfo").read_text().splitlines():
        f = ln.split()
        sep = f.index("-")
        out.append(MountInfo(int(f[0]), _unescape(f[3]), _unescape(f[4]), f[sep + 1],
                             _unescape(f[sep + 2])))
    return out


def _cgroup_mount(controller: str) -> Path | None:
    """Where the hierarchy of CONTROLLER ("" = cgroup2) is mounted."""
    for m in read_mounts():
        if controller == "" and m.fstype == "cgroup2":
            return Path(m.mountpoint)
        if m.fstype == "cgroup" and controller:
            # superoptions are not in MountInfo: match by the mountpoint's name
            if controller in os.path.basename(m.mountpoint).split(","):
                return Path(m.mountpoint)
    p = CGROUP_ROOT / controller if controller else CGROUP_ROOT / "unified"
    return p if p.exists() else None


def cgroup_hierarchies() -> list[Path]:
    """Mountpoints of all cgroup/cgroup2 hierarchies (deduplicated)."""
    seen: dict[tuple[int, int], Path] = {}
    for m in read_mounts():
        if m.fstype in ("cgroup", "cgroup2"):
            with contextlib.suppress(OSError):
                st = os.stat(m.mountpoint)
                seen.setdefault((st.st_dev, st.st_ino), Path(m.mountpoint))
    return list(seen.values())


def find_cgroup_dirs(ids: set[str], paths: set[str], max_depth: int = 8) -> list[Path]:
    """Cgroup directories whose name is one of IDS or whose path (relative
    to the hierarchy root) ends with one of PATHS."""
    found: list[Path] = []
    rel_paths = {p.strip("/") for p in paths if p.strip("/")}
    for top in cgroup_hierarchies():
        base_depth = len(top.parts)
        for dirpath, dirnames, _ in os.walk(top):
            d = Path(dirpath)
            depth = len(d.parts) - base_depth
            if depth >= max_depth:
                dirnames[:] = []
            if d == top:
                continue
            rel = str(d.relative_to(top))
            if d.name in ids or any(rel == p or rel.endswith("/" + p) for p in rel_paths):
                found.append(d)
                dirnames[:] = []  # children go with it
    return found


def _all_cgroup_descendants(d: Path) -> list[Path]:
    out = []
    for dirpath, _, _ in os.walk(d):
        out.append(Path(dirpath))
    return sorted(out, key=lambda p: len(p.parts), reverse=True)


_libc = ctypes.CDLL(None, use_errno=True)
MNT_DETACH = 2


def umount_lazy(path: str) -> None:
    if _libc.umount2(path.encode(), MNT_DETACH) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), path)


def _under(path: str, roots: Sequence[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


def _has_component(path: str, names: set[str]) -> bool:
    return any(part in names for part in path.split("/"))


def find_leaks(ctx: TestContext) -> tuple[list[str], Callable[[], None]]:
    """Return (descriptions of leaks, a function cleaning them up)."""
    ids = set(ctx.ids)
    roots = [str(ctx.workdir)] + ([str(ctx.shared_rootfs)] if ctx.shared_rootfs else [])
    me = os.getpid()
    ancestors = set()
    p = me
    while p > 1:
        ancestors.add(p)
        st = proc_stat(p)
        if st is None:
            break
        p = st[1]
    problems: list[str] = []
    held_ns = ctx.namespaces
    roots_re = re.compile("(" + "|".join(re.escape(r) for r in roots) + r")(/|\s|$)")

    # -- processes
    leaked_procs: list[ProcInfo] = []
    for info in scan_processes().values():
        if info.pid in ancestors or info.pid == me:
            continue
        if info.state in ("Z", "X"):
            if info.ppid == me:
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(info.pid, os.WNOHANG)
            continue
        why = None
        if ctx.pids.get(info.pid) == info.start:
            why = "a pid the runtime reported (or its descendant)"
        elif any((k, v) in held_ns for k, v in info.ns.items()):
            why = "in a namespace of the test's containers"
        elif roots_re.search(info.cmdline):
            why = "its command line names the test's files"
        else:
            links = info.links()
            for k, v in links.items():
                if _under(v, roots):
                    why = f"its {k} is {v}"
                    break
            if why is None:
                for cg in info.cgroups():
                    if _has_component(cg, ids):
                        why = f"in cgroup {cg}"
                        break
        if why:
            leaked_procs.append(info)
            problems.append(f"process {info.pid} ({info.cmdline[:120]!r}) still alive: {why}")

    # -- mounts
    leaked_mounts = []
    for m in read_mounts():
        # Only mounts that are provably this test's: a bare "runsc-py" in a
        # path may be another session's container (and umount -l'ing it
        # would break that session).
        if (_under(m.mountpoint, roots) or _under(m.source, roots)
                or _has_component(m.mountpoint, ids) or _has_component(m.source, ids)):
            leaked_mounts.append(m)
            problems.append(f"mount left: {m}")

    # -- cgroups
    cg_paths: set[str] = set()
    for b in ctx.bundles:
        with contextlib.suppress(Exception):
            spec = json.loads(b.config_path.read_text())
            cp = (spec.get("linux") or {}).get("cgroupsPath")
            if isinstance(cp, str) and cp and ":" not in cp:
                cg_paths.add(cp)
    cg_paths |= {f"runsc-py/{i}" for i in ids}
    leaked_cgroups = find_cgroup_dirs(ids, cg_paths) if (ids or cg_paths) else []
    for d in leaked_cgroups:
        problems.append(f"cgroup left: {d}")

    # -- state dirs
    leaked_state = []
    for rt in ctx.runtimes:
        if rt.root.is_dir():
            for e in sorted(rt.root.iterdir()):
                # @cache: the runtime's own cache (runsc_py/filtercache.py), no container's
                if e.is_dir() and e.name != "@cache":
                    leaked_state.append(e)
                    problems.append(f"state dir left: {e}")

    # -- network: namespaces, interfaces, nft tables, bridge leases
    net_leaks = find_net_leaks(ids)
    problems += [desc for desc, _undo in net_leaks]

    def cleanup() -> None:
        for _desc, undo in net_leaks:
            with contextlib.suppress(Exception):
                undo()
        for d in leaked_cgroups:
            for sub in _all_cgroup_descendants(d):
                fs = sub / "freezer.state"
                if fs.exists():
                    with contextlib.suppress(OSError):
                        fs.write_text("THAWED")
                cf = sub / "cgroup.freeze"
                if cf.exists():
                    with contextlib.suppress(OSError):
                        cf.write_text("0")
        for info in leaked_procs:
            if proc_stat(info.pid) and proc_stat(info.pid)[2] == info.start:  # type: ignore[index]
                with contextlib.suppress(ProcessLookupError):
                    os.kill(info.pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        for info in leaked_procs:
            while time.monotonic() < deadline:
                st = proc_stat(info.pid)
                if st is None or st[2] != info.start or st[0] in ("Z", "X"):
                    if st and st[1] == me:
                        with contextlib.suppress(ChildProcessError):
                            os.waitpid(info.pid, 0)
                    break
                time.sleep(0.02)
        for m in sorted(leaked_mounts, key=lambda m: m.mountpoint.count("/"), reverse=True):
            with contextlib.suppress(OSError):
                umount_lazy(m.mountpoint)
        for d in leaked_cgroups:
            for sub in _all_cgroup_descendants(d):
                for _ in range(50):
                    try:
                        os.rmdir(sub)
                        break
                    except FileNotFoundError:
                        break
                    except OSError:
                        time.sleep(0.02)
        for e in leaked_state:
            if not any(_under(m.mountpoint, [str(e)]) for m in read_mounts()):
                shutil.rmtree(e, ignore_errors=True)

    return problems, cleanup


def _net_host_veth(cid: str) -> str:
    """runsc_py/network/bridge.py's name for a container's host-side veth."""
    return "rpy" + hashlib.sha256(cid.encode()).hexdigest()[:12]


def find_net_leaks(ids: set[str]) -> list[tuple[str, Callable[[], None]]]:
    """Network objects named after the test's container ids: namespaces
    (/run/netns), interfaces (the bridge mode's host veths, anything whose
    name holds an id), nft tables runsc-py-<id>, bridge leases naming an id;
    and the shared bridge when no lease is left.  (description, undo)."""
    out: list[tuple[str, Callable[[], None]]] = []
    if not ids:
        return out
    def run(*cmd: str) -> Callable[[], None]:
        return lambda: subprocess.run(list(cmd), capture_output=True, timeout=20)
    with contextlib.suppress(OSError):
        for name in os.listdir("/run/netns"):
            if any(name.startswith(i) for i in ids):
                out.append((f"network namespace left: {name}", run("ip", "netns", "del", name)))
    veths = {_net_host_veth(i) for i in ids}
    with contextlib.suppress(OSError):
        for name in os.listdir("/sys/class/net"):
            if name in veths or any(i in name for i in ids):
                out.append((f"interface left: {name}", run("ip", "link", "del", name)))
    if shutil.which("nft"):
        r = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True, timeout=20)
        for ln in r.stdout.splitlines():
            parts = ln.split()
            if len(parts) == 3 and parts[2] in {f"runsc-py-{i}" for i in ids}:
                out.append((f"nft table left: {parts[1]} {parts[2]}",
                            run("nft", "delete", "table", parts[1], parts[2])))
    leases = Path("/run/runsc-py-net/leases")
    with contextlib.suppress(OSError):
        for lease in leases.iterdir():
            with contextlib.suppress(OSError):
                if lease.read_text().split("\n")[0] in ids:
                    out.append((f"bridge lease left: {lease}", lease.unlink))
    return out


def remove_workdir(workdir: Path) -> None:
    """rm -rf WORKDIR unless something is still mounted under it (rmtree
    would then delete through the mount)."""
    if any(_under(m.mountpoint, [str(workdir)]) for m in read_mounts()):
        return
    shutil.rmtree(workdir, ignore_errors=True)


# -- small helpers shared by the config tests --------------------------------------
def run_ok(runtime, b, **kw) -> str:
    """`run` the bundle attached, assert exit status 0, return its stdout."""
    res = runtime.run_container(b, **kw)
    assert res.returncode == 0, res
    return res.stdout

def wait_ready(c, needle: str = "ready", timeout: float = 10.0) -> str:
    """c.wait_output(NEEDLE), failing with the container's output and status."""
    try:
        return c.wait_output(needle, timeout)
    except AssertionError as e:
        raise AssertionError(f"{e}\n  status: {c.rt.status(c.id)}\n  stdout: {c.stdout()!r}"
                             f"\n  stderr: {c.stderr()!r}") from None

def kv(out: str) -> dict[str, str]:
    """KEY=VALUE lines of the workload's output (later lines win)."""
    d = {}
    for ln in out.splitlines():
        if "=" in ln:
            k, v = ln.split("=", 1)
            d[k.strip()] = v.strip()
    return d

def workload_pid(runtime, cid: str, needle: str) -> int:
    """The host pid of the container process whose command line contains
    NEEDLE (`ps` lists every process of the container; runsc-py's state pid
    is the sandbox, not the workload)."""
    def find():
        for pid in runtime.ps(cid):
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if needle in cmd:
                return pid
        return None
    return wait_until(find, 10, f"a process of {cid} running {needle!r}")


# Lines of the file-semantics probe (tests/sentry/fsprobe.c) where runsc-py
# answers differently from Linux on this kernel, each documented in the
# README with its reason.
KNOWN_DIFFERENCES = [
    # linkat(fd, "", AT_EMPTY_PATH) without CAP_DAC_READ_SEARCH: ENOENT, as
    # gVisor and Linux before 6.10.  Since 6.10 Linux also allows an fd the
    # caller opened with its present credentials (here a directory: EPERM);
    # the sentry opens every file for the workload, so it cannot tell those
    # fds from received ones.
    ["linkat-empty-path"],
]
