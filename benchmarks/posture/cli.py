"""python -m benchmarks.posture: the host-side view of a live sandbox.

    # a live container of any runtime (--root: that runtime's state root)
    python -m benchmarks.posture --runtime runc --root /run/runc ID
    # or start a `sleep` container with each runtime, report, delete it
    python -m benchmarks.posture --runtime runsc-py,runc,runsc,crun --out DIR

For every process of the sandbox (workload and the runtime's helpers, see
discover.py) it reports seccomp mode and filter count, no_new_privs, the
capability sets, namespaces shared with the host, dumpability (see
dumpable.py for the method), open fds (see fds.py) and cgroups.  Output:
Markdown (a summary row per runtime, then a table per runtime with
details) or --json on stdout; with --out DIR also DIR/results.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks._runtimes import KNOWN, Runtime, Session, is_runsc_py
from benchmarks.posture import dumpable, gather, procfs, report
from benchmarks.posture.discover import Sandbox, discover

log = logging.getLogger("posture")

WORKLOAD = ["sh", "-c", "sleep 3600 & wait"]
# Each runtime's state root when --root is not given.
DEFAULT_ROOTS = {"runc": "/run/runc", "crun": "/run/crun", "runsc": "/var/run/runsc",
                 "runsc-py": "/run/runsc-py"}


def _state(rt: Runtime, cid: str) -> dict[str, Any]:
    r = rt.call("state", cid, timeout=30)
    if not r.ok:
        raise RuntimeError(f"{rt.name} state {cid}: {r.error()}")
    try:
        st = dict(json.loads(r.stdout))
    except ValueError as e:
        raise RuntimeError(f"{rt.name} state {cid}: not JSON: {e}") from None
    if not isinstance(st.get("pid"), int) or st["pid"] <= 0 or st.get("status") == "stopped":
        raise RuntimeError(f"{rt.name} state {cid}: no live process (status {st.get('status')!r}, "
                           f"pid {st.get('pid')!r})")
    return st


def _settled(rt: Runtime, cid: str, host_pidns: int, timeout: float = 15) -> Sandbox:
    """Discover until the process set holds still and the workload's `sleep`
    exists (when the workload has host processes at all)."""
    deadline = time.monotonic() + timeout
    prev: set[int] | None = None
    while True:
        sb = discover(cid, _state(rt, cid), host_pidns)
        sleeping = any(procfs.cmdline(p)[:1] == ["sleep"] for p in sb.pids("workload"))
        ready = sleeping or sb.init is None
        if ready and prev == set(sb.pids()):
            return sb
        if time.monotonic() > deadline:
            log.warning("%s: process set still changing after %.0f s; reporting it as is",
                        rt.name, timeout)
            return sb
        prev = set(sb.pids()) if ready else None
        time.sleep(0.3)


def assess(rt: Runtime, cid: str, source: str, settle: bool,
           caller_stdio: tuple[str, ...] = ()) -> dict[str, Any]:
    """The posture of container CID of RT, as a JSON-able dict."""
    host_pidns = procfs.namespaces(os.getpid())["pid"]
    sb = _settled(rt, cid, host_pidns) if settle else discover(cid, _state(rt, cid), host_pidns)
    procs, ctx = gather.gather(sb, caller_stdio)
    return {
        "runtime": rt.name, "version": rt.version(), "argv": rt.argv, "id": cid,
        "source": source, "bundle": sb.bundle, "state_pid": sb.state_pid, "init": sb.init,
        "kernel": os.uname().release, "date": time.strftime("%Y-%m-%d %H:%M"),
        "notes": sb.notes, "context": ctx, "processes": [p.to_json() for p in procs],
    }


def _own_container(session: Session, name: str, profile: str) -> tuple[Runtime, str]:
    from benchmarks.escape.harness import make_bundle
    from runsc_py.busybox import build_rootfs

    rootfs = session.work / "rootfs"
    if not rootfs.exists():
        build_rootfs(str(rootfs))
    bdir = session.work / f"b-{name}"
    bdir.mkdir()
    bundle = make_bundle(bdir, profile, rootfs, [])
    spec = json.loads((bundle / "config.json").read_text())
    spec["process"]["args"] = WORKLOAD
    spec["hostname"] = "posture"
    (bundle / "config.json").write_text(json.dumps(spec, indent=1))
    rt = session.runtime(name)
    cid = rt.new_id("posture")
    r = rt.call("run", "--detach", "--bundle", str(bundle), cid, timeout=60)
    if not r.ok:
        raise RuntimeError(f"{name} run --detach: {r.error()}")
    return rt, cid


def run_own(names: list[str], profile: str) -> tuple[list[dict[str, Any]], list[str]]:
    """Start a `sleep` container per runtime, assess it, delete it (always)."""
    session = Session(Path(tempfile.mkdtemp(prefix="posture-", dir="/var/tmp")))
    session.io_dir.mkdir(parents=True)
    os.chmod(session.work, 0o755)
    results, errors = [], []
    try:
        for name in names:
            try:
                rt, cid = _own_container(session, name, profile)
                res = assess(rt, cid, f"started by the tool: `{' '.join(WORKLOAD)}`, "
                                      f"{profile} profile", settle=True,
                             caller_stdio=(str(session.io_dir) + "/", "/dev/null"))
                results.append(res)
            except (RuntimeError, OSError) as e:
                log.error("%s: %s", name, e)
                errors.append(f"{name}: {e}")
            finally:
                for rt_, cid_ in list(session.ids):
                    rt_.delete(cid_)
                    session.forget(rt_, cid_)
    finally:
        for left in session.cleanup():
            # Exited container processes wait for the host's init to reap them: not a leak.
            (log.info if "not yet reaped" in left else log.warning)("cleanup: %s", left)
    return results, errors


def main(argv: list[str] | None = None) -> int:
    from benchmarks.escape.harness import PROFILES

    ap = argparse.ArgumentParser(prog="python -m benchmarks.posture", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runtime", required=True,
                    help=f"comma-separated, from {', '.join(KNOWN)} (one with ID)")
    ap.add_argument("--root", help="the runtime's state root (with ID; default: its own default)")
    ap.add_argument("--profile", default="runc-default", choices=list(PROFILES),
                    help="capabilities of the tool's own container (default %(default)s)")
    ap.add_argument("--out", help="directory for results.md and results.json")
    ap.add_argument("--json", action="store_true", help="print JSON instead of Markdown")
    ap.add_argument("-v", "--verbose", action="store_true")
    ap.add_argument("id", nargs="?", help="a live container to inspect (default: start one)")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if a.verbose else logging.INFO,
                        format="posture: %(levelname)s: %(message)s", stream=sys.stderr)
    if os.geteuid() != 0:
        raise SystemExit("posture: needs root (reads other processes' /proc entries)")
    names = [n for n in a.runtime.split(",") if n]
    unknown = [n for n in names if n not in KNOWN]
    if unknown:
        raise SystemExit(f"posture: unknown runtime(s) {', '.join(unknown)} (known: {', '.join(KNOWN)})")
    for s in (signal.SIGTERM, signal.SIGHUP):    # unwind through the cleanup
        signal.signal(s, lambda n, f: sys.exit(128 + n))

    try:
        ok, calib = dumpable.calibrate()
    except (OSError, RuntimeError) as e:
        ok, calib = False, f"could not run: {e}"
    log.info("dumpable method calibration: %s", calib)
    if not ok:
        log.warning("dumpable method calibration failed: its answers are not trustworthy")

    if a.id:
        if len(names) != 1:
            raise SystemExit("posture: give one runtime with a container ID")
        with tempfile.TemporaryDirectory(prefix="posture-") as tmp:
            session = Session(Path(tmp))
            session.io_dir.mkdir()
            name = names[0]
            root = Path(a.root or DEFAULT_ROOTS["runsc-py" if is_runsc_py(name) else name])
            rt = Runtime(name, list(KNOWN[name]), root, session)
            try:
                results = [assess(rt, a.id, "live container", settle=False)]
            except RuntimeError as e:
                raise SystemExit(f"posture: {e}") from None
        errors: list[str] = []
    else:
        results, errors = run_own(names, a.profile)
    for r in results:
        r["dumpable_calibration"] = {"ok": ok, "detail": calib}

    md = report.summary(results) + "\n\n" + "\n".join(report.markdown(r) for r in results)
    if a.out:
        out = Path(a.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "results.md").write_text(md)
        (out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps(results, indent=1) if a.json else md)
    for err in errors:
        print(f"posture: {err}", file=sys.stderr)
    return 1 if errors else 0

