"""python -m benchmarks.compat: CPython's regression suite and an application
matrix in a Debian bookworm rootfs, under several runtimes, compared with runc.

    .venv/bin/python -m benchmarks.compat                       # everything (hours)
    .venv/bin/python -m benchmarks.compat --modules test_os,test_posix --runtimes runc,runsc-py
    .venv/bin/python -m benchmarks.compat --apps nginx,su --no-cpython
    .venv/bin/python -m benchmarks.compat --report-only         # re-render from raw/

Each run stores its raw results per runtime in --raw (default
benchmarks/compat/raw/, not committed): cpython-RUNTIME.json and
apps-RUNTIME.json, replacing that runtime's earlier ones; RESULTS.md and
RESULTS.json are then rendered from every raw file there.  So runtimes can
be measured by separate (even concurrent) invocations and merged.
Everything made (containers, overlay mounts, temp dirs) is removed at the
end, also on failure, Ctrl-C and SIGTERM.  Needs root.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks._runtimes import KNOWN, Session
from benchmarks.compat import apps as apps_mod
from benchmarks.compat import cpython, report, rootfs

log = logging.getLogger("compat")
HERE = Path(__file__).resolve().parent
DEFAULT_RUNTIMES = ["runc", "runsc-py", "runsc-py-gofer", "runsc", "runsc-py-ptrace"]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.compat", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runtimes", default=",".join(DEFAULT_RUNTIMES),
                   help="comma-separated, from %s (default %%(default)s)" % ", ".join(KNOWN))
    p.add_argument("--modules", default="", help="CPython test modules (default: every one)")
    p.add_argument("--apps", default="", help=f"apps (default: all of {', '.join(apps_mod.APPS)})")
    p.add_argument("--no-cpython", action="store_true", help="skip CPython's suite")
    p.add_argument("--no-apps", action="store_true", help="skip the application matrix")
    p.add_argument("--jobs", type=int, default=2, help="regrtest -j (default %(default)s)")
    p.add_argument("--chunks", type=int, default=6,
                   help="containers the module list is split into (default %(default)s)")
    p.add_argument("--timeout", type=float, default=480,
                   help="regrtest's per-module timeout, s (default %(default)s)")
    p.add_argument("--deadline", type=float, default=3 * 3600,
                   help="one chunk container's wall-time limit, s (default %(default)s)")
    p.add_argument("--regrtest-arg", action="append", default=[], metavar="ARG",
                   help="extra argument for regrtest, repeatable (e.g. --regrtest-arg=-i "
                        "--regrtest-arg=test_issue14725 to skip a hanging case)")
    p.add_argument("--raw", default=str(HERE / "raw"), help="raw results dir (default %(default)s)")
    p.add_argument("--out", default=str(HERE), help="RESULTS.md/.json dir (default %(default)s)")
    p.add_argument("--work", default="/var/tmp", help="scratch parent dir (overlays, bundles)")
    p.add_argument("--report-only", action="store_true", help="measure nothing; re-render")
    p.add_argument("--explain-only", action="store_true",
                   help="only re-run verbosely the modules of the stored CPython results whose "
                        "failing subtests have no junit details (done after every suite anyway)")
    p.add_argument("-v", "--verbose", action="store_true")
    return p.parse_args(argv)


def _split(s: str) -> list[str]:
    return [x.strip() for x in s.split(",") if x.strip()]


def load_raw(raw: Path) -> tuple[dict[str, cpython.Suite], dict[str, dict], dict[str, Any]]:
    suites: dict[str, cpython.Suite] = {}
    apps: dict[str, dict] = {}
    meta: dict[str, Any] = {}
    order = {n: i for i, n in enumerate(DEFAULT_RUNTIMES + list(KNOWN))}
    for f in sorted(raw.glob("cpython-*.json")):
        d = json.loads(f.read_text())
        suites[d["runtime"]] = cpython.Suite.from_json(d)
        meta.update(d.get("meta", {}))
        meta.setdefault("cpython_runs", {})[d["runtime"]] = {
            k: d.get("meta", {}).get(k) for k in ("date", "timeout", "jobs", "modules_requested")}
    for f in sorted(raw.glob("apps-*.json")):
        d = json.loads(f.read_text())
        apps[d["runtime"]] = d["apps"]
        meta.update(d.get("meta", {}))
    for f in sorted(raw.glob("skipped-*.json")):
        d = json.loads(f.read_text())
        meta.setdefault("skipped_runtimes", {})[d["runtime"]] = d["why"]
    suites = dict(sorted(suites.items(), key=lambda kv: order.get(kv[0], 99)))
    apps = dict(sorted(apps.items(), key=lambda kv: order.get(kv[0], 99)))
    return suites, apps, meta


def render(raw: Path, out: Path) -> dict[str, Any]:
    suites, apps, meta = load_raw(raw)
    summary = report.summarize(suites, apps, meta)
    report.write(summary, out)
    return summary


def _usable(sess: Session, name: str, lower: Path, work: Path) -> str | None:
    """None if NAME runs /bin/true in the rootfs, else why not."""
    from benchmarks.compat import container
    r = container.run(sess.runtime(name), lower, work, "probe", ["/bin/true"], timeout=120)
    shutil.rmtree(r.out_dir, ignore_errors=True)
    return None if r.result.ok else r.result.error()


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if a.verbose else logging.INFO,
                        format="%(asctime)s %(message)s", datefmt="%H:%M:%S", stream=sys.stderr)
    raw, out = Path(a.raw), Path(a.out)
    if a.report_only:
        render(raw, out)
        print(f"compat: wrote {out / 'RESULTS.md'}")
        return 0
    if os.geteuid() != 0:
        raise SystemExit("compat: must run as root (the runtimes need it)")
    names = _split(a.runtimes)
    for n in names:
        if n not in KNOWN:
            raise SystemExit(f"compat: unknown runtime {n!r} (known: {', '.join(KNOWN)})")
    app_names = _split(a.apps) or list(apps_mod.APPS)
    unknown = [x for x in app_names if x not in apps_mod.APPS]
    if unknown:
        raise SystemExit(f"compat: unknown app(s) {', '.join(unknown)}")
    # SIGTERM/SIGHUP unwind through the finally blocks (cleanup).
    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, lambda n, f: sys.exit(128 + n))
    lower = rootfs.ensure()
    modules = _split(a.modules) or cpython.all_modules(lower)
    meta = {"date": _dt.datetime.now().strftime("%Y-%m-%d %H:%M"), "kernel": os.uname().release,
            "rootfs": lower.parent.name, "resources": cpython.RESOURCES, "jobs": a.jobs,
            "timeout": a.timeout, "regrtest_args": a.regrtest_arg}
    work = Path(tempfile.mkdtemp(prefix="compat-", dir=a.work))
    os.chmod(work, 0o755)
    sess = Session(work)
    sess.io_dir.mkdir()
    raw.mkdir(parents=True, exist_ok=True)
    try:
        for name in names:
            why = _usable(sess, name, lower, work)
            if why is not None:
                log.warning("compat: %s: skipped: cannot run /bin/true: %s", name, why)
                (raw / f"skipped-{name}.json").write_text(json.dumps({"runtime": name, "why": why}))
                continue
            (raw / f"skipped-{name}.json").unlink(missing_ok=True)
            if a.explain_only:
                f = raw / f"cpython-{name}.json"
                if f.exists():
                    d = json.loads(f.read_text())
                    suite = cpython.Suite.from_json(d)
                    cpython.explain_subtests(sess.runtime(name), lower, work, suite,
                                             a.timeout, a.deadline)
                    d.update(suite.to_json())
                    f.write_text(json.dumps(d))
                continue
            if not a.no_apps:
                res = apps_mod.run_apps(sess.runtime(name), lower, work, app_names)
                (raw / f"apps-{name}.json").write_text(json.dumps(
                    {"runtime": name, "meta": meta, "apps": res}, indent=1))
            if not a.no_cpython:
                def save(suite: cpython.Suite, name: str = name) -> None:
                    d = suite.to_json()
                    d["meta"] = {**meta, "modules_requested": len(modules)}
                    (raw / f"cpython-{name}.json").write_text(json.dumps(d))
                    render(raw, out)
                cpython.run_suite(sess.runtime(name), lower, work, modules, jobs=a.jobs,
                                  chunks=a.chunks if len(modules) > 20 else 1,
                                  timeout=a.timeout, deadline=a.deadline,
                                  raw_dir=raw / "logs", on_chunk=save,
                                  extra=a.regrtest_arg)
            render(raw, out)
    finally:
        left = sess.cleanup()
        for x in left:
            log.warning("compat: cleanup: %s", x)
    summary = render(raw, out)
    for name, row in summary["cpython"].items():
        if "lost_vs_runc" in row:
            print(f"compat: {name}: {row['lost_vs_runc']} CPython cases lost against runc")
    for name, res in summary["apps"].items():
        bad = [k for k, v in res.items() if not v["ok"]]
        print(f"compat: {name}: apps {len(res) - len(bad)}/{len(res)} ok"
              + (f" (failed: {', '.join(bad)})" if bad else ""))
    print(f"compat: wrote {out / 'RESULTS.md'}")
    return 0
