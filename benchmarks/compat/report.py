"""Compare runtimes case by case against runc; write RESULTS.md / RESULTS.json.

A case is LOST by a runtime when it passes under runc and does not pass
under that runtime: it failed or errored (the case's own traceback is the
reason), or it has no result at all because its module did not run to the
end (crashed, timed out, failed to import: regrtest's word for the module is
the reason).  Skips under the runtime that pass under runc count as lost too
(a skip is a feature test that failed: "os.fork() not available").
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

from benchmarks.compat.apps import APPS
from benchmarks.compat.cpython import Case, Suite, excerpt

REFERENCE = "runc"
OK_STATUSES = ("pass", "xfail")


def module_of(case: str) -> str:
    parts = case.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "test" else parts[0]


def verdict(word: str) -> str:
    """regrtest's words for a module, folded into a few verdicts."""
    for prefix, v in (("passed", "passed"), ("failed (env changed)", "env changed"),
                      ("failed (uncaught exception)", "uncaught exception"),
                      ("failed", "failed"), ("skipped (resource denied)", "resource denied"),
                      ("resource denied", "resource denied"), ("skipped", "skipped"),
                      ("crashed", "crashed"), ("timed out", "timed out"),
                      ("ran no tests", "ran no tests"), ("no result", "no result")):
        if word.startswith(prefix):
            return v
    return word.split(" ")[0]


def losses(ref: Suite, other: Suite) -> dict[str, Case]:
    """case -> how it ended under OTHER, for every case passing under REF but not OTHER."""
    lost: dict[str, Case] = {}
    for name, c in ref.cases.items():
        if c.status not in OK_STATUSES:
            continue
        o = other.cases.get(name)
        if o is not None and o.status in OK_STATUSES:
            continue
        if o is None and module_of(name) not in other.modules:
            continue        # a partial run: this module was not run at all
        if o is None:
            why = other.modules[module_of(name)]
            if verdict(why) in ("failed", "env changed"):
                # The module ran: regrtest's junit writer leaves a case whose
                # subtests failed without a name or result.
                o = Case("missing", f"no result: failing subtests (no junit details); "
                                    f"module {module_of(name)} {why}")
            else:
                o = Case("missing", f"no result: module {module_of(name)} {why}")
        lost[name] = o
    return lost


_ERRNO = re.compile(r"^(\w+(?:\.\w+)*): \[Errno (\d+)\] ([^:'\"]+)")


def signature(case: Case) -> str:
    """A loss's group: 'OSError: [Errno 38] Function not implemented', the
    module verdict for cases without a result, else the exception's type and
    the start of its message."""
    if case.status == "missing" and "subtests" in case.message:
        return "failing subtests (regrtest's junit XML has no details: see the module's verbose run)"
    if case.status == "missing":
        return "module " + re.sub(r"\d+", "N", case.message.split(": ", 1)[-1].split(" ", 2)[-1])[:80]
    if case.status == "skip":
        return "skipped: " + re.sub(r"\d+", "N", case.message.strip().splitlines()[0] if case.message.strip() else "")[:100]
    last = [ln for ln in case.message.splitlines() if re.search(r"\w", ln)][-1:] or [""]
    m = _ERRNO.match(last[0].strip())
    if m:
        return f"{m.group(1)}: [Errno {m.group(2)}] {m.group(3).strip()}"
    return re.sub(r"\d+", "N", last[0].strip())[:100]


def gains(ref: Suite, other: Suite) -> list[str]:
    return sorted(n for n, c in other.cases.items() if c.status in OK_STATUSES
                  and ref.cases.get(n, Case("missing")).status not in OK_STATUSES)


def summarize(suites: dict[str, Suite], apps: dict[str, dict[str, dict]],
              meta: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"meta": meta, "cpython": {}, "apps": apps, "losses": {}}
    ref = suites.get(REFERENCE)
    for name, s in suites.items():
        counts = Counter(c.status for c in s.cases.values())
        mods = Counter(verdict(v) for v in s.modules.values())
        row: dict[str, Any] = {"cases": dict(counts), "total_cases": len(s.cases),
                               "modules": dict(mods), "total_modules": len(s.modules),
                               "elapsed_s": s.elapsed}
        if ref is not None and name != REFERENCE:
            lost = losses(ref, s)
            row["lost_vs_runc"] = len(lost)
            row["lost_by_kind"] = dict(Counter(c.status for c in lost.values()))
            g = gains(ref, s)
            row["gained_vs_runc"] = len(g)
            # Cases of a module that never finished are all "every runc-passing
            # case of MODULE": kept as a count, not thousands of names.
            whole: dict[str, dict[str, Any]] = {}
            kept: dict[str, list[str]] = {}
            for k, c in sorted(lost.items()):
                if c.status == "missing" and "subtests" not in c.message:
                    w = whole.setdefault(module_of(k), {"cases": 0, "reason": c.message})
                    w["cases"] += 1
                else:
                    kept[k] = [c.status, excerpt(c.message, 6)[-600:]]
            out["losses"][name] = kept
            out.setdefault("modules_without_result", {})[name] = whole
            sigs: dict[str, list[str]] = {}
            for k, c in sorted(lost.items()):
                sigs.setdefault(signature(c), []).append(module_of(k))
            row["loss_signatures"] = {
                sig: {"cases": len(mods), "modules": sorted(set(mods))}
                for sig, mods in sorted(sigs.items(), key=lambda kv: -len(kv[1]))}
            row["modules_not_ok"] = {m: v for m, v in sorted(s.modules.items())
                                     if verdict(v) not in ("passed", "skipped", "resource denied")
                                     and verdict(ref.modules.get(m, "")) == "passed"}
        out["cpython"][name] = row
    return out


def _cell(r: dict | None) -> str:
    if r is None:
        return "-"
    mark = "pass" if r["ok"] else ("**TIMEOUT**" if r["timed_out"] else "**FAIL**")
    return f"{mark} {r['elapsed']:.1f} s"


def markdown(summary: dict[str, Any], md_case_limit: int = 400) -> str:
    meta = summary["meta"]
    cp = summary["cpython"]
    L = ["# Compatibility: CPython's regression suite and an application matrix", "",
         f"Generated by `python -m benchmarks.compat` ({meta.get('date', '?')}, kernel "
         f"{meta.get('kernel', '?')}, rootfs {meta.get('rootfs', '?')}). "
         "Debian bookworm rootfs, Docker's default capabilities, loopback-only network. "
         "See benchmarks/compat/README.md for how it runs and FINDINGS.md for the causes.", ""]
    for rt, why in meta.get("skipped_runtimes", {}).items():
        L += [f"Runtime {rt} skipped: it cannot run /bin/true: {why}", ""]
    if cp:
        L += ["## CPython cases lost against runc", "",
              "Lost = passes under runc, fails / errors / is skipped / has no result under the runtime "
              "(a partial run counts the modules it ran).", "",
              "| runtime | **lost vs runc** | fail | error | skip | no result | gained | cases run | pass | modules | suite time | per-module timeout |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for name, row in cp.items():
            k = row.get("lost_by_kind", {})
            lost = row.get("lost_vs_runc")
            req = meta.get("cpython_runs", {}).get(name, {}).get("modules_requested")
            label = name
            if req and row["total_modules"] < req:
                label = f"{name} (partial: {row['total_modules']} of {req} modules)"
            L.append(f"| {label} | **{lost if lost is not None else '(reference)'}** | "
                     f"{k.get('fail', 0)} | {k.get('error', 0)} | {k.get('skip', 0)} | "
                     f"{k.get('missing', 0)} | {row.get('gained_vs_runc', '-')} | {row['total_cases']} | "
                     f"{row['cases'].get('pass', 0)} | {row['total_modules']} | {row['elapsed_s'] / 60:.0f} min | "
                     f"{meta.get('cpython_runs', {}).get(name, {}).get('timeout', '?')} s |")
        L += ["", "Modules by regrtest's verdict:", ""]
        for name, row in cp.items():
            L.append(f"- {name}: " + ", ".join(f"{k} {v}" for k, v in sorted(row["modules"].items())))
        L.append("")
    apps = summary["apps"]
    if apps:
        rts = list(apps)
        L += ["## Application matrix", "", "| app | " + " | ".join(rts) + " | what it does |",
              "|---" * (len(rts) + 2) + "|"]
        names = [a for a in APPS if any(a in apps[r] for r in rts)]
        for a in names:
            L.append(f"| {a} | " + " | ".join(_cell(apps[r].get(a)) for r in rts) + f" | {APPS[a][0]} |")
        L += ["", "<details><summary>last lines of each failed app</summary>", ""]
        for r in rts:
            for a, res in apps[r].items():
                if not res["ok"]:
                    L += [f"**{r} / {a}** (exit {res['rc']}{', timed out' if res['timed_out'] else ''}):",
                          "```", res["tail"][-1200:], "```", ""]
        L += ["</details>", ""]
    for name, lost in summary["losses"].items():
        row = cp[name]
        L += [f"## {name}: modules that passed under runc but not here", ""]
        for m, v in row["modules_not_ok"].items():
            L.append(f"- {m}: {v}")
        L += ["", f"## {name}: lost cases by error ({row['lost_vs_runc']})", "",
              "| cases | error (last traceback line, digits as N) | modules |", "|---|---|---|"]
        for sig, grp in list(row["loss_signatures"].items())[:40]:
            mods = grp["modules"]
            L.append(f"| {grp['cases']} | {sig.replace('|', '/')} | {', '.join(mods[:8])}"
                     f"{' ...' if len(mods) > 8 else ''} |")
        total = row["lost_vs_runc"]
        L += ["", f"## {name}: lost cases ({total})", "",
              "(regrtest reports a module its --timeout killed as \"crashed (Exit code 1)\"; "
              "the chunk logs in raw/logs/ hold the faulthandler dump of where it hung)", ""]
        for mod, w in summary.get("modules_without_result", {}).get(name, {}).items():
            L.append(f"- **{mod}**: all {w['cases']} runc-passing cases have no result: "
                     f"{w['reason'].removeprefix('no result: ')[:200]}")
        by_mod: dict[str, list[tuple[str, list[str]]]] = {}
        for case, (status, msg) in lost.items():
            by_mod.setdefault(module_of(case), []).append((case, [status, msg]))
        shown = 0
        for mod, items in by_mod.items():
            missing = [c for c, (st, _) in items if st == "missing"]
            if missing and len(missing) == len(items):
                L.append(f"- **{mod}**: all {len(items)} runc-passing cases have no result: "
                         f"{items[0][1][1][:200]}")
                continue
            L.append(f"- **{mod}** ({len(items)}):")
            for case, (status, msg) in items:
                if shown >= md_case_limit:
                    break
                shown += 1
                last = [ln for ln in msg.splitlines() if ln.strip()][-1:] or [""]
                L.append(f"  - `{case.split('.', 2)[-1]}` {status}: {last[0][:220].replace('|', '/')}")
        if shown >= md_case_limit:
            L.append(f"\n(list cut at {md_case_limit} cases: RESULTS.json has all, with tracebacks)")
        L.append("")
    return "\n".join(L)


def write(summary: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "RESULTS.json").write_text(json.dumps(summary, indent=1, sort_keys=False))
    (out / "RESULTS.md").write_text(markdown(summary))
