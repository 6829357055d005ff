"""The start-up profile of runsc-py: where a container's start-up goes.

Two views, for the runsc-py variants only (runc and runsc have no such
marks), kept in the report so that a regression shows:

- the timeline: `run /bin/true` with --debug; every process of the
  start-up logs its phases (runsc_py/timeline.py) with its own CPU time and
  page faults; each phase's time is counted from the harness's Popen, so
  the first one includes the interpreter's start and the CLI's imports;
- the imports: each subcommand of a container's life, run with
  `python -X importtime` on the launcher against a live container: how
  many modules it imports, their import time, its CPU, and whether it
  pulls in the sandbox's code (the sentry, the gofer, libseccomp,
  pyroute2), which only create, run and exec need.

The case's own metrics are a few of those figures, in the main table.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import time
from pathlib import Path

from ._cases import Case, Ctx, Metric, Options, Value
from ._runtimes import REPO, Runtime, is_runsc_py

# phase -> (metric key, label) of the figures in the main table
KEY_PHASES = {
    "cli.run.main": ("t_main", "start-up profile: CLI in main() (interpreter + imports)"),
    "create.filters": ("t_filters", "start-up profile: spec loaded, seccomp programs ready"),
    "sandbox.imported": ("t_sandbox", "start-up profile: sandbox has imported the sentry"),
    "create.done": ("t_created", "start-up profile: create done (init waits for start)"),
    "sentry.execve": ("t_exec", "start-up profile: the workload's execve answered"),
    "cli.run.done": ("t_done", "start-up profile: run returns"),
}
HEAVY = ("sentry", "gofer", "seccomp", "pyroute2")


def _marks(log: Path) -> list[tuple[str, int, float, int, int]]:
    import sys
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from runsc_py.timeline import parse
    return parse(log.read_text())


def case_profile(ctx: Ctx, rt: Runtime, rep: int) -> dict[str, Value]:
    b = ctx.bundle(rt, "profile", ["/bin/true"])
    log = ctx.session.work / f"profile-{rt.name}-{rep}.log"
    cid = rt.new_id("prof")
    t0 = time.time_ns()
    r = rt.call("--debug", "--log", str(log), "--log-format", "json", "run", "--bundle", str(b), cid,
                timeout=60)
    if not r.ok:
        rt.delete(cid)
    rt.session.forget(rt, cid)
    if not r.ok:
        return {k: r.error() for k, _ in KEY_PHASES.values()}
    marks = _marks(log)
    log.unlink()
    phases = ctx.profiles.setdefault("timeline", {}).setdefault(rt.name, {})
    seen: dict[str, int] = {}
    for phase, ns, cpu, _pid, faults in marks:
        seen[phase] = seen.get(phase, 0) + 1
        name = phase if seen[phase] == 1 else f"{phase}#{seen[phase]}"
        phases.setdefault(name, []).append(((ns - t0) / 1e6, cpu, faults))
    ctx.profiles.setdefault("total", {}).setdefault(rt.name, []).append(
        (r.elapsed * 1e3, (r.cpu_user + r.cpu_sys) * 1e3, r.cpu_sys * 1e3, r.faults))
    out: dict[str, Value] = {}
    first = {}
    for phase, ns, _cpu, _pid, _f in marks:
        first.setdefault(phase, ns)
    for phase, (key, _label) in KEY_PHASES.items():
        out[key] = (first[phase] - t0) / 1e6 if phase in first else f"no {phase} mark"
    if rep == 0:
        ctx.profiles.setdefault("imports", {})[rt.name] = import_profile(ctx, rt)
    return out


def import_profile(ctx: Ctx, rt: Runtime, reps: int = 3) -> dict[str, dict[str, object]]:
    """subcommand -> modules, import ms, CPU ms (min of REPS), heavy modules."""
    b = ctx.bundle(rt, "imports", ["sleep", "600"])
    cid = rt.new_id("imp")
    launcher = rt.argv[0]
    python = Path(launcher).read_text().splitlines()[0][2:].split()[0]
    prefix = [python, "-IS", "-X", "importtime", launcher, *rt.argv[1:], "--root", str(rt.root)]
    steps = [("create", ["create", "--bundle", str(b), cid]), ("start", ["start", cid]),
             ("state", ["state", cid]), ("ps", ["ps", "--format", "json", cid]),
             ("list", ["list", "--format", "json"]), ("kill", ["kill", cid, "CONT"]),
             ("exec", ["exec", "--process", str(ctx.session.work / "imports-process.json"), cid]),
             ("delete", ["delete", "--force", cid])]
    (ctx.session.work / "imports-process.json").write_text(json.dumps(
        {"args": ["true"], "cwd": "/", "env": ["PATH=/bin:/usr/bin"], "user": {"uid": 0, "gid": 0}}))
    out: dict[str, dict[str, object]] = {}
    try:
        for name, args in steps:
            rows = []
            for _ in range(reps if name not in ("create", "start", "delete") else 1):
                rows.append(_imports(prefix + args, ctx.session.work))
            best = min(rows, key=lambda x: x["import_ms"])  # type: ignore[arg-type,return-value]
            best["cpu_ms"] = min(x["cpu_ms"] for x in rows)  # type: ignore[type-var]
            out[name] = best
    finally:
        rt.delete(cid)
        rt.session.forget(rt, cid)
    return out


def _imports(cmd: list[str], work: Path) -> dict[str, object]:
    # Files, not pipes: a created container keeps the runtime's stdio.
    out, err = work / "imports.out", work / "imports.err"
    with open(out, "w") as o, open(err, "w") as e:
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=o, stderr=e)
        _, status, ru = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
    mods, total = [], 0
    for line in err.read_text().splitlines():
        if line.startswith("import time:") and "|" in line and "imported package" not in line:
            self_us, _cum, name = line[len("import time:"):].split("|")
            mods.append(name.strip())
            total += int(self_us)
    heavy = sorted({m.split(".")[0] for m in mods if m.split(".")[0] in HEAVY})
    return {"rc": p.returncode, "modules": len(mods), "import_ms": total / 1000,
            "cpu_ms": (ru.ru_utime + ru.ru_stime) * 1000, "heavy": heavy}


def startup_cases(opts: Options) -> list[Case]:
    return [Case("startup-profile", case_profile, 5,
                 tuple(Metric(k, label, "ms") for k, label in KEY_PHASES.values()),
                 only=is_runsc_py)]


def markdown(profiles: dict[str, dict[str, object]]) -> list[str]:
    """The report's section: the timeline and the import profile."""
    lines: list[str] = []
    timeline = profiles.get("timeline") or {}
    for rt, phases in timeline.items():  # type: ignore[union-attr]
        lines += ["", f"### Start-up timeline: {rt} `run /bin/true` (--debug, medians)", "",
                  "Time from the harness's Popen to each mark; CPU and minor faults of the "
                  "marking process so far (the CLI's first mark: the interpreter and its "
                  "imports; -1 faults: the sandbox's own filter has no getrusage).", "",
                  "| phase | at ms | step ms | process CPU ms | process faults |",
                  "|---|---:|---:|---:|---:|"]
        rows = sorted(((p, statistics.median(v[0] for v in vals), statistics.median(v[1] for v in vals),
                        statistics.median(v[2] for v in vals)) for p, vals in phases.items()),  # type: ignore[union-attr]
                      key=lambda r: r[1])
        prev = 0.0
        for p, at, cpu, faults in rows:
            lines.append(f"| {p} | {at:.1f} | {at - prev:+.1f} | {cpu:.1f} | {faults:.0f} |")
            prev = at
        totals = (profiles.get("total") or {}).get(rt)  # type: ignore[union-attr]
        if totals:
            wall, cpu, sys_, faults = (statistics.median(t[i] for t in totals) for i in range(4))
            lines += ["", f"Whole `run` (its process tree): {wall:.1f} ms, CPU {cpu:.1f} ms "
                          f"(of which sys {sys_:.1f}), {faults:.0f} minor faults."]
    imports = profiles.get("imports") or {}
    for rt, cmds in imports.items():  # type: ignore[union-attr]
        lines += ["", f"### Imports per subcommand: {rt} (`python -X importtime`, best of 3)", "",
                  "| command | rc | modules | import ms | CPU ms | sandbox code imported |",
                  "|---|---:|---:|---:|---:|---|"]
        for name, row in cmds.items():  # type: ignore[union-attr]
            heavy = ", ".join(row["heavy"]) or "none"
            lines.append(f"| {name} | {row['rc']} | {row['modules']} | {row['import_ms']:.1f} | "
                         f"{row['cpu_ms']:.1f} | {heavy} |")
    if lines:
        lines = ["", "## Start-up profile"] + lines
    return lines
