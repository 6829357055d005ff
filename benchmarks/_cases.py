"""The benchmark cases.

A case is a function (ctx, runtime, rep) -> {metric_key: float | error str}.
It may raise: the runner records the exception as that repetition's error.
Each case deletes the containers it made (the Session deletes any it missed).
All metrics are "lower is better" (times, memory), so ratios read the same
way everywhere: runsc-py/runc = 3.0 means three times slower (or bigger).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ._netcases import net_cases
from ._runtimes import REPO, Runtime, Session

PROBES = Path(__file__).resolve().parent / "probes"

Value = float | str  # a measurement, or why it could not be made


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    unit: str


@dataclass
class Options:
    budget: float = 0.3          # microbench seconds per op
    io_mib: int = 100
    workload_size: int = 16      # the shell workload makes size x size files
    concurrent: int = 20
    concurrent_max: int = 50     # the second concurrent case, and the density case's top
    sleep_s: int = 600           # the concurrent sandboxes' sleep (deleted before it ends)


@dataclass
class Ctx:
    session: Session
    opts: Options
    rootfs: dict[str, Path] = field(default_factory=dict)  # runtime name -> rootfs
    # Details a case keeps for the report's own sections (_startup.py, _ctr.py).
    profiles: dict[str, dict] = field(default_factory=dict)
    # Things started once and shared by the repetitions (a private containerd).
    services: dict[str, object] = field(default_factory=dict)

    def bundle(self, rt: Runtime, name: str, args: list[str], *, tmpfs_tmp: bool = False) -> Path:
        """A bundle for RT running ARGS on its private, writable rootfs copy."""
        sys.path.insert(0, str(REPO))
        from runsc_py.spec import default_spec  # the `runc spec` default
        spec = default_spec()
        spec["process"]["terminal"] = False
        spec["process"]["args"] = args
        spec["root"] = {"path": str(self.rootfs[rt.name]), "readonly": False}
        if tmpfs_tmp:
            spec["mounts"].append({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
                                   "options": ["nosuid", "nodev", "mode=1777",
                                               f"size={self.opts.io_mib + 64}m"]})
        path = self.session.work / "bundles" / f"{rt.name}-{name}"
        path.mkdir(parents=True, exist_ok=True)
        (path / "config.json").write_text(json.dumps(spec, indent=1))
        return path


# --- preparation ------------------------------------------------------------

def compile_probes(dest_bin: Path) -> None:
    """gcc -static -O2 every probes/*.c into DEST_BIN/<name>."""
    if not shutil.which("gcc"):
        raise SystemExit("benchmarks: gcc is needed to build the C probes (apt-get install gcc libc6-dev)")
    for src in sorted(PROBES.glob("*.c")):
        out = dest_bin / src.stem
        r = subprocess.run(["gcc", "-static", "-O2", "-Wall", "-o", str(out), str(src)],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise SystemExit(f"benchmarks: compiling {src.name} failed:\n{r.stderr}")


WORKLOAD = r"""set -e
N={n}
W=/work/wl.$$
rm -rf $W; mkdir -p $W/src; cd $W
i=0
while [ $i -lt $N ]; do
  mkdir -p src/d$i
  j=0
  while [ $j -lt $N ]; do
    echo "file $i $j the quick brown fox" > src/d$i/f$j.txt
    seq 1 40 >> src/d$i/f$j.txt
    j=$((j+1))
  done
  i=$((i+1))
done
tar cf tree.tar src
n=$(grep -r "quick brown" src | wc -l)
[ "$n" -eq $((N*N)) ] || {{ echo "grep found $n files, expected $((N*N))" >&2; exit 1; }}
gzip -9 tree.tar
mkdir out
tar xzf tree.tar.gz -C out
diff -r src out/src
n=$(find out -type f | wc -l)
[ "$n" -eq $((N*N)) ] || {{ echo "untar gave $n files" >&2; exit 1; }}
cd /; rm -rf $W
echo ok
"""


def prepare_rootfs(master: Path, opts: Options) -> None:
    sys.path.insert(0, str(REPO))
    from runsc_py.busybox import build_rootfs
    build_rootfs(str(master))
    compile_probes(master / "bin")
    (master / "work").mkdir(exist_ok=True)
    (master / "work" / "workload.sh").write_text(WORKLOAD.format(n=opts.workload_size))


# --- helpers ------------------------------------------------------------------

def _run_once(rt: Runtime, bundle: Path, case: str, timeout: float = 300):
    """`run` a container to completion; delete it if the runtime left it."""
    cid = rt.new_id(case)
    r = rt.call("run", "--bundle", str(bundle), cid, timeout=timeout)
    if not r.ok:
        rt.delete(cid)
    rt.session.forget(rt, cid)
    return r


def _json_lines(text: str) -> dict:
    """The probe's JSON, or its parsable lines if it died half way."""
    try:
        return json.loads(text)
    except ValueError:
        ops = {}
        for m in re.finditer(r'^\s*"(\w+)": (\{[^{}]*\})', text, re.M):
            try:
                ops[m.group(1)] = json.loads(m.group(2))
            except ValueError:
                pass
        return {"ops": ops, "truncated": True}


# --- cases ----------------------------------------------------------------------

def case_start(ctx: Ctx, rt: Runtime, rep: int) -> dict[str, Value]:
    b = ctx.bundle(rt, "start", ["/bin/true"])
    r = _run_once(rt, b, "start", timeout=60)
    if not r.ok:
        return {"start": r.error()}
    # CPU and faults of the `run` and every process it waited for: for
    # runsc-py and runsc that is the sandbox, its gofer and init too.
    return {"start": r.elapsed * 1e3, "cpu": (r.cpu_user + r.cpu_sys) * 1e3,
            "sys": r.cpu_sys * 1e3, "faults": float(r.faults)}


MICRO_OPS = [
    ("getpid", "getpid (syscall)"),
    ("open_close", "open+close"),
    ("stat", "stat"),
    ("stat_enoent", "stat ENOENT"),
    ("pipe_64", "pipe write+read 64 B"),
    ("pread_4k", "pread 4 KiB"),
    ("fork_wait", "fork+wait"),
    ("fork_exec_wait", "fork+exec+wait"),
    ("create_write_unlink", "create+write+close+unlink"),
    ("read_meminfo", "read /proc/meminfo (synthesized)"),
]


def case_microbench(ctx: Ctx, rt: Runtime, rep: int) -> dict[str, Value]:
    b = ctx.bundle(rt, "microbench", ["/bin/microbench", "-b", str(ctx.opts.budget), "-d", "/work"])
    r = _run_once(rt, b, "micro", timeout=60 + 40 * ctx.opts.budget * len(MICRO_OPS))
    data = _json_lines(r.stdout)
    ops = data.get("ops", {})
    out: dict[str, Value] = {}
    for op, _ in MICRO_OPS:
        res = ops.get(op)
        if res is None:
            out[op] = f"no result ({r.error() if not r.ok else 'op missing from output'})"
        elif "error" in res:
            out[op] = str(res["error"])
        else:
            out[op] = float(res["us"])
    return out


def _io_case(ctx: Ctx, rt: Runtime, where: str) -> dict[str, Value]:
    tmpfs = where == "tmpfs"
    path = "/tmp/seqio.dat" if tmpfs else "/work/seqio.dat"
    b = ctx.bundle(rt, f"io-{where}", ["/bin/seqio", path, str(ctx.opts.io_mib)], tmpfs_tmp=tmpfs)
    r = _run_once(rt, b, f"io{where}", timeout=600)
    try:
        data = json.loads(r.stdout)
    except ValueError:
        err = r.error() if not r.ok else f"bad output: {r.stdout[:100]!r}"
        return {"write": err, "read": err}
    if "error" in data:
        return {"write": data["error"], "read": data["error"]}
    return {"write": data["write_s"] * 1e3, "fsync": data["fsync_s"] * 1e3,
            "read": data["read_s"] * 1e3}


def case_io_rootfs(ctx: Ctx, rt: Runtime, rep: int) -> dict[str, Value]:
    return _io_case(ctx, rt, "rootfs")


def case_io_tmpfs(ctx: Ctx, rt: Runtime, rep: int) -> dict[str, Value]:
    return _io_case(ctx, rt, "tmpfs")


def case_workload(ctx: Ctx, rt: Runtime, rep: int) -> dict[str, Value]:
    b = ctx.bundle(rt, "workload", ["/bin/sh", "/work/workload.sh"])
    r = _run_once(rt, b, "wl", timeout=600)
    if not r.ok or "ok" not in r.stdout:
        return {"wall": r.error() if not r.ok else f"no 'ok' in output: {r.stdout[-100:]!r}"}
    return {"wall": r.elapsed}


def _pss_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def _proc_table() -> dict[int, tuple[int, str, str, str]]:
    """pid -> (ppid, comm, exe realpath, cmdline) for every visible process."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            try:
                exe = os.readlink(f"/proc/{pid}/exe").removesuffix(" (deleted)")
            except OSError:
                exe = ""
        except (OSError, ValueError, IndexError):
            continue
        table[pid] = (ppid, comm, exe, cmd)
    return table


def runtime_processes(rt: Runtime, pid: int) -> list[int]:
    """The runtime's own live processes for a container whose pid file says PID.

    Candidates: PID, its descendants, and processes whose command line names
    the runtime's --root (gVisor's gofer is not a child of the sandbox); of
    those, the runtime's are the ones running the runtime's own executable
    (python for runsc-py, /usr/bin/runsc for gVisor, including its ptrace
    stubs) or named runsc-* (runsc-py's sandbox/gofer set their comm).  The
    workload (busybox sleep) is neither; runc leaves no process at all."""
    table = _proc_table()
    root = str(rt.root)
    cands = {p for p, (_, _, _, cmd) in table.items() if root in cmd}
    if pid in table:
        cands.add(pid)
    changed = True
    while changed:
        kids = {p for p, (pp, *_rest) in table.items() if pp in cands} - cands
        changed = bool(kids)
        cands |= kids
    exes = rt.executables()
    out = []
    for p in cands:
        _, comm, exe, _ = table[p]
        if comm == "runsc-py" and p != pid:
            continue  # a CLI process (ours is done by now; another's is not the sandbox)
        if comm.startswith("runsc-") or (exe and os.path.realpath(exe) in exes):
            out.append(p)
    return sorted(out)


def case_memory(ctx: Ctx, rt: Runtime, rep: int) -> dict[str, Value]:
    b = ctx.bundle(rt, "memory", ["sleep", "600"])
    cid = rt.new_id("mem")
    pid_file = ctx.session.work / f"{cid}.pid"
    try:
        r = rt.call("run", "--detach", "--pid-file", str(pid_file), "--bundle", str(b), cid, timeout=60)
        if not r.ok:
            return {"pss": r.error()}
        if rt.state(cid) != "running":
            return {"pss": f"container not running after run --detach ({rt.state(cid)})"}
        time.sleep(1.0)  # let the sandbox finish its start-up allocations
        pid = int(pid_file.read_text().strip())
        procs = runtime_processes(rt, pid)
        pss = [_pss_kib(p) for p in procs]
        total = sum(x for x in pss if x is not None)
        return {"pss": total / 1024, "procs": float(len(procs))}
    finally:
        rt.delete(cid)
        rt.session.forget(rt, cid)


def case_concurrent(ctx: Ctx, rt: Runtime, rep: int) -> dict[str, Value]:
    return _concurrent(ctx, rt, ctx.opts.concurrent)


def case_concurrent_max(ctx: Ctx, rt: Runtime, rep: int) -> dict[str, Value]:
    return _concurrent(ctx, rt, ctx.opts.concurrent_max)


def _concurrent(ctx: Ctx, rt: Runtime, n: int) -> dict[str, Value]:
    b = ctx.bundle(rt, "concurrent", ["sleep", str(ctx.opts.sleep_s)])
    ids = [rt.new_id(f"c{i}") for i in range(n)]
    errors: list[str] = []
    lock = threading.Lock()

    def start(cid: str) -> None:
        r = rt.call("run", "--detach", "--bundle", str(b), cid, timeout=300)
        if not r.ok:
            with lock:
                errors.append(r.error())

    t0 = time.perf_counter()
    try:
        with ThreadPoolExecutor(max_workers=n) as pool:
            list(pool.map(start, ids))
        # `run --detach` returns once the container is started; confirm it.
        with ThreadPoolExecutor(max_workers=min(n, 8)) as pool:
            states = list(pool.map(rt.state, ids))
        t_running = time.perf_counter() - t0
    finally:
        t1 = time.perf_counter()
        with ThreadPoolExecutor(max_workers=n) as pool:
            list(pool.map(rt.delete, ids))
        t_delete = time.perf_counter() - t1
        for cid in ids:  # the Session's final sweep catches what delete missed
            rt.session.forget(rt, cid)
    not_running = [s for s in states if s != "running"]
    failed = float(max(len(errors), len(not_running)))
    if errors:
        msg = f"{len(errors)}/{n} failed: {errors[0]}"
        return {"running": msg, "delete": msg, "failures": failed}
    if not_running:
        msg = f"{len(not_running)}/{n} not running: {not_running[0]}"
        return {"running": msg, "delete": msg, "failures": failed}
    return {"running": t_running, "delete": t_delete, "failures": 0.0}


def case_density(ctx: Ctx, rt: Runtime, rep: int) -> dict[str, Value]:
    """Idle memory per sandbox as the count grows: 1, then 10, then
    concurrent_max sandboxes running `sleep` (each wave started
    concurrently), the runtime's own processes' PSS summed and divided by
    the count after each wave (shared pages, as the interpreter's text and
    what a sandbox shares with its gofer, are divided among their users)."""
    top = ctx.opts.concurrent_max
    waves = [w for w in (1, 10, top) if w <= top]
    b = ctx.bundle(rt, "density", ["sleep", "600"])
    running: list[tuple[str, Path]] = []
    out: dict[str, Value] = {}
    errors: list[str] = []
    lock = threading.Lock()

    def start(cid: str) -> None:
        pid_file = ctx.session.work / f"{cid}.pid"
        r = rt.call("run", "--detach", "--pid-file", str(pid_file), "--bundle", str(b), cid,
                    timeout=300)
        with lock:
            if r.ok:
                running.append((cid, pid_file))
            else:
                errors.append(r.error())

    try:
        for w in waves:
            new = [rt.new_id(f"d{i}") for i in range(len(running), w)]
            with ThreadPoolExecutor(max_workers=max(1, len(new))) as pool:
                list(pool.map(start, new))
            if errors:
                msg = f"{len(errors)} of {w} failed: {errors[0]}"
                for k in waves:
                    out.setdefault(f"pss{k}", msg)
                return out
            time.sleep(2.0)  # let the sandboxes finish their start-up allocations
            # Each sandbox's processes name the same --root: take the union.
            procs: set[int] = set()
            for _cid, pid_file in running:
                procs.update(runtime_processes(rt, int(pid_file.read_text().strip())))
            total = sum(x for x in map(_pss_kib, procs) if x)
            out[f"pss{w}"] = total / 1024 / len(running)
        return out
    finally:
        with ThreadPoolExecutor(max_workers=16) as pool:
            list(pool.map(lambda c: rt.delete(c[0]), running))
        for cid, _ in running:
            rt.session.forget(rt, cid)


@dataclass(frozen=True)
class Case:
    name: str
    fn: Callable[[Ctx, Runtime, int], dict[str, Value]]
    repeat: int
    metrics: tuple[Metric, ...]
    only: Callable[[str], bool] | None = None  # the runtimes it applies to (by name); None: all

    def applies(self, runtime: str) -> bool:
        return self.only is None or self.only(runtime)


def all_cases(opts: Options) -> list[Case]:
    mib, n, c, m = opts.io_mib, opts.workload_size, opts.concurrent, opts.concurrent_max
    return [
        Case("start", case_start, 10, (
            Metric("start", "start-to-exit /bin/true", "ms"),
            Metric("cpu", "start-to-exit /bin/true: CPU of every process (user+sys)", "ms"),
            Metric("sys", "start-to-exit /bin/true: kernel CPU (sys)", "ms"),
            Metric("faults", "start-to-exit /bin/true: minor page faults", "count"))),
        Case("microbench", case_microbench, 5,
             tuple(Metric(k, label, "us/op") for k, label in MICRO_OPS)),
        Case("io-rootfs", case_io_rootfs, 3, (
            Metric("write", f"write {mib} MiB, rootfs (1 MiB writes)", "ms"),
            Metric("read", f"read {mib} MiB, rootfs (cached)", "ms"))),
        Case("io-tmpfs", case_io_tmpfs, 3, (
            Metric("write", f"write {mib} MiB, tmpfs", "ms"),
            Metric("read", f"read {mib} MiB, tmpfs", "ms"))),
        Case("workload", case_workload, 3,
             (Metric("wall", f"shell workload: {n*n} files, tar/grep/gzip/untar (incl. start)", "s"),)),
        Case("memory", case_memory, 3, (
            Metric("pss", "runtime PSS, idle `sleep` container", "MiB"),
            Metric("procs", "runtime processes, idle container", "count"))),
        Case("concurrent", case_concurrent, 3, (
            Metric("running", f"{c} sandboxes started concurrently: all running", "s"),
            Metric("delete", f"{c} sandboxes: delete all", "s"),
            Metric("failures", f"{c} sandboxes started concurrently: failures", "count"))),
        Case("concurrent-max", case_concurrent_max, 2, (
            Metric("running", f"{m} sandboxes started concurrently: all running", "s"),
            Metric("delete", f"{m} sandboxes: delete all", "s"),
            Metric("failures", f"{m} sandboxes started concurrently: failures", "count"))),
        Case("density", case_density, 1, tuple(
            Metric(f"pss{w}", f"runtime PSS per idle sandbox, {w} running", "MiB")
            for w in (1, 10, m) if w <= m)),
        *net_cases(Case, Metric),
        *extra_cases(opts),
    ]


def extra_cases(opts: Options) -> list[Case]:
    """The start-up profile (_startup.py) and containerd (_ctr.py) cases."""
    from ._ctr import ctr_cases
    from ._startup import startup_cases
    return [*startup_cases(opts), *ctr_cases(opts)]
