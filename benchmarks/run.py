"""Compare runsc-py with runc and gVisor's runsc on the same bundles.

    .venv/bin/python -m benchmarks.run            # everything (~2.5 min on 2 cores)
    .venv/bin/python -m benchmarks.run --quick    # one pass, small sizes
    python3 benchmarks/run.py --runtimes runc,runsc-py --cases start,microbench

Runtimes alternate within each repetition (and the order rotates from one
repetition to the next), so slow drift of the machine's load hits all of them
alike: compare the ratios of one run, not absolute figures across runs.
Writes results.md, results.json and results.png to --out (default
benchmarks/results/<date>/).  Needs root, gcc + static glibc (the C probes are
built at run time), and matplotlib for the chart (`pip install -e '.[bench]'`,
or --no-chart).  Everything made (containers, cgroups, temp dirs) is removed
at the end, also on failure and Ctrl-C.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `python3 benchmarks/run.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "benchmarks"

from benchmarks._cases import Ctx, Options, all_cases, prepare_rootfs  # noqa: E402
from benchmarks._report import chart, machine_info, markdown, require_matplotlib, summarize  # noqa: E402
from benchmarks._runtimes import DEFAULT_RUNTIMES, KNOWN, REPO, Session  # noqa: E402


class Progress:
    """One status line on stderr (rewritten in place on a terminal)."""

    def __init__(self, quiet: bool = False) -> None:
        self.tty = sys.stderr.isatty()
        self.quiet = quiet
        self.t0 = time.monotonic()
        self.width = 0

    def show(self, text: str) -> None:
        if self.quiet:
            return
        line = f"[{time.monotonic() - self.t0:6.0f}s] {text}"
        if self.tty:
            sys.stderr.write("\r" + line.ljust(self.width)[:160])
            self.width = len(line)
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()

    def log(self, text: str) -> None:
        if self.tty and self.width:
            sys.stderr.write("\r" + " " * min(self.width, 160) + "\r")
            self.width = 0
        sys.stderr.write(text + "\n")
        sys.stderr.flush()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="benchmarks.run", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runtimes", default=",".join(DEFAULT_RUNTIMES),
                   help=f"comma-separated, from {', '.join(KNOWN)} (default %(default)s); "
                        "one that cannot run /bin/true is reported and skipped")
    p.add_argument("--cases", default=None,
                   help="comma-separated cases (default: all): "
                        + ", ".join(c.name for c in all_cases(Options())))
    p.add_argument("--repeat", type=int, default=None,
                   help="repetitions of every case (default: 10 for start, 5 for microbench, 3 for the others)")
    p.add_argument("--out", default=None, help="output directory (default benchmarks/results/<date>/)")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: 3 starts, 1 repetition of the rest, 0.05 s per microbench op, "
                        "20 MiB I/O, a small workload, 5 concurrent sandboxes")
    p.add_argument("--budget", type=float, default=None, help="microbench seconds per op (default 0.3)")
    p.add_argument("--no-chart", action="store_true", help="skip the PNG chart (no matplotlib needed)")
    p.add_argument("--quiet", action="store_true", help="no progress display")
    p.add_argument("--from-json", metavar="FILE", default=None,
                   help="measure nothing: re-render results.md/.png from a results.json "
                        "into --out (default: FILE's directory)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if os.geteuid() != 0:
        raise SystemExit("benchmarks: must run as root (the runtimes need it)")
    if not args.no_chart:
        require_matplotlib()  # fail before spending minutes measuring
    if args.from_json:
        src = Path(args.from_json)
        return _write(json.loads(src.read_text()), Path(args.out) if args.out else src.parent,
                      args, Progress(args.quiet))
    opts = Options()
    if args.quick:
        opts = Options(budget=0.05, io_mib=20, workload_size=6, concurrent=5, concurrent_max=8)
    if args.budget is not None:
        opts.budget = args.budget
    cases = all_cases(opts)
    if args.cases:
        wanted = [c.strip() for c in args.cases.split(",") if c.strip()]
        unknown = set(wanted) - {c.name for c in cases}
        if unknown:
            raise SystemExit(f"benchmarks: unknown case(s) {', '.join(sorted(unknown))}")
        cases = [c for c in cases if c.name in wanted]
    names = [r.strip() for r in args.runtimes.split(",") if r.strip()]
    for n in names:
        if n not in KNOWN:
            raise SystemExit(f"benchmarks: unknown runtime {n!r} (known: {', '.join(KNOWN)})")

    now = _dt.datetime.now()
    out = Path(args.out) if args.out else REPO / "benchmarks" / "results" / now.strftime("%Y-%m-%d_%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    progress = Progress(args.quiet)

    # SIGTERM/SIGHUP behave like Ctrl-C: unwind through the cleanup below.
    def _interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")
    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, _interrupt)

    work = Path(tempfile.mkdtemp(prefix="rsp-bench-", dir="/tmp"))
    session = Session(work)
    session.io_dir.mkdir()
    result: dict[str, Any] = {}
    t_start = time.monotonic()
    try:
        result = _run(args, opts, cases, names, session, progress, now)
    except KeyboardInterrupt:
        progress.log("benchmarks: interrupted, cleaning up")
        raise SystemExit(130)
    finally:
        leftovers = session.cleanup()
        for w in leftovers:
            progress.log(f"benchmarks: cleanup: {w}")
        if result:
            result.setdefault("warnings", []).extend(f"cleanup: {w}" for w in leftovers)
    result["duration_s"] = time.monotonic() - t_start
    result["loadavg_end"] = os.getloadavg()
    result["summary"] = summarize(result["raw"])
    return _write(result, out, args, progress)


def _write(result: dict[str, Any], out: Path, args: argparse.Namespace, progress: Progress) -> int:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(result, indent=1, default=str))
    md = markdown(result)
    (out / "results.md").write_text(md)
    if not args.no_chart:
        chart(result, out / "results.png")
    progress.log(f"benchmarks: wrote {out}/results.md, results.json"
                 + ("" if args.no_chart else ", results.png"))
    print(md)
    return 0


def _run(args: argparse.Namespace, opts: Options, cases: list, names: list[str],
         session: Session, progress: Progress, now: _dt.datetime) -> dict[str, Any]:
    progress.show("building the busybox rootfs and the C probes")
    master = session.work / "rootfs-master"
    prepare_rootfs(master, opts)
    ctx = Ctx(session, opts)
    runtimes = []
    unavailable: dict[str, str] = {}
    for name in names:
        rt = session.runtime(name)
        if not shutil.which(rt.argv[0]):
            unavailable[name] = f"{rt.argv[0]} not found"
            continue
        dest = session.work / f"rootfs-{name}"
        subprocess.run(["cp", "-a", str(master), str(dest)], check=True)
        ctx.rootfs[name] = dest
        progress.show(f"checking {name} runs /bin/true")
        from benchmarks._cases import case_start
        probe = case_start(ctx, rt, 0)["start"]
        if isinstance(probe, str):
            unavailable[name] = probe
            progress.log(f"benchmarks: {name} is not measured: {probe}")
            continue
        runtimes.append(rt)
    if not runtimes:
        raise SystemExit("benchmarks: no runtime could run /bin/true")
    result: dict[str, Any] = {
        "date": now.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": machine_info(),
        "versions": {rt.name: rt.version() for rt in runtimes},
        "runtimes": [rt.name for rt in runtimes],
        "unavailable": unavailable,
        "options": {**vars(opts), "quick": args.quick},
        "repeats": {},
        "metrics": {},
        "raw": {},
        "warnings": [],
    }
    for ci, case in enumerate(cases, 1):
        reps = args.repeat or (3 if args.quick and case.name == "start" else 1 if args.quick else case.repeat)
        result["repeats"][case.name] = reps
        raw = result["raw"].setdefault(case.name, {})
        applicable = [rt for rt in runtimes if case.applies(rt.name)]
        for m in case.metrics:
            result["metrics"][f"{case.name}/{m.key}"] = {"label": m.label, "unit": m.unit}
            raw[m.key] = {rt.name: [] for rt in applicable}
        for rep in range(reps):
            order = runtimes[rep % len(runtimes):] + runtimes[:rep % len(runtimes)]
            for rt in order:
                if not case.applies(rt.name):
                    continue
                progress.show(f"case {ci}/{len(cases)} {case.name}: {rt.name}, rep {rep + 1}/{reps}")
                try:
                    values = case.fn(ctx, rt, rep)
                except KeyboardInterrupt:
                    raise
                except Exception as e:
                    err = f"{type(e).__name__}: {e}"
                    progress.log(f"benchmarks: {case.name} on {rt.name} failed: {err}")
                    if os.environ.get("RUNSC_PY_BENCH_DEBUG"):
                        traceback.print_exc()
                    values = {m.key: err for m in case.metrics}
                for key, v in values.items():
                    raw.setdefault(key, {}).setdefault(rt.name, []).append(v)
                for m in case.metrics:  # a metric the case could not produce this time
                    if m.key not in values:
                        raw[m.key][rt.name].append("no value")
    result["profiles"] = ctx.profiles
    return result


if __name__ == "__main__":
    sys.exit(main())
