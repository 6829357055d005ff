"""Summaries of a run: medians and ratios, as Markdown, JSON and a PNG chart."""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import subprocess
from pathlib import Path
from typing import Any

from ._runtimes import REFERENCES, REPO, is_runsc_py


def machine_info() -> dict[str, Any]:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = 0.0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gib = int(line.split()[1]) / 2**20
    except OSError:
        pass
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    return {
        "kernel": platform.release(),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "mem_gib": round(mem_gib, 1),
        "distro": _os_release(),
        "commit": commit + ("+dirty" if dirty else ""),
        "loadavg_start": os.getloadavg(),
    }


def _os_release() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return "?"


def summarize(raw: dict[str, dict[str, dict[str, list[Any]]]]) -> dict[str, Any]:
    """raw[case][metric][runtime] = [value per rep] -> medians and errors."""
    out: dict[str, Any] = {}
    for case, metrics in raw.items():
        for metric, per_rt in metrics.items():
            row = out.setdefault(f"{case}/{metric}", {})
            for rt, values in per_rt.items():
                nums = [v for v in values if isinstance(v, (int, float))]
                errs = [v for v in values if isinstance(v, str)]
                cell: dict[str, Any] = {"n": len(nums), "errors": sorted(set(errs))}
                if nums:
                    cell.update(median=statistics.median(nums), min=min(nums), max=max(nums))
                row[rt] = cell
    return out


def _fmt(v: float, unit: str = "") -> str:
    if unit == "count" or v == 0:
        return f"{v:.0f}"
    a = abs(v)
    if a >= 1000:
        return f"{v:,.0f}"
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:.2f}"
    return f"{v:.3f}"


def _ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None:
        return "n/a"
    if b == 0:
        return "—"
    r = a / b
    if r >= 100:
        return f"{r:.0f}x"
    if r >= 10:
        return f"{r:.1f}x"
    return f"{r:.2f}x" if r >= 0.1 else f"{r:.3f}x"


def ratio_columns(runtimes: list[str]) -> list[tuple[str, str]]:
    return [(v, ref) for v in runtimes if is_runsc_py(v) for ref in REFERENCES if ref in runtimes]


def markdown(result: dict[str, Any]) -> str:
    runtimes: list[str] = result["runtimes"]
    summary = result["summary"]
    m = result["machine"]
    lines = [
        "# runsc-py benchmarks",
        "",
        f"- date: {result['date']}",
        f"- machine: {m['cpu']}, {m['cpus']} CPUs, {m['mem_gib']} GiB; kernel {m['kernel']}; {m['distro']}",
        f"- runsc-py commit: {m['commit']}",
        "- runtimes: " + "; ".join(f"{n}: {v}" for n, v in result["versions"].items()),
    ]
    for name, why in result.get("unavailable", {}).items():
        lines.append(f"- not measured: {name} ({why})")
    lines += [
        f"- load average (1/5/15 min) at start {_load(m['loadavg_start'])}, "
        f"at end {_load(result.get('loadavg_end', (0, 0, 0)))}",
        f"- repetitions per case: {result['repeats']}; runtimes alternate within each repetition "
        f"(order rotated each time); the cells are medians; duration {result.get('duration_s', 0):.0f} s",
        f"- options: {json.dumps(result['options'])}",
        "",
        "Lower is better everywhere; a ratio of 3.0x means three times slower (or bigger).",
        "",
    ]
    ratios = ratio_columns(runtimes)
    head = ["case", "unit", *runtimes, *(f"{v}/{ref}" for v, ref in ratios)]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "|".join(["---", "---"] + ["---:"] * (len(head) - 2)) + "|")
    notes: list[str] = []
    for key, meta in result["metrics"].items():
        row = summary.get(key, {})
        cells = [meta["label"], meta["unit"]]
        med: dict[str, float | None] = {}
        for rt in runtimes:
            cell = row.get(rt)
            if cell is None:
                cells.append("")
                med[rt] = None
                continue
            med[rt] = cell.get("median")
            if med[rt] is None:
                err = cell["errors"][0] if cell["errors"] else "no value"
                notes.append(f"{rt}, {meta['label']}: {err}")
                cells.append(f"n/a (error) [{len(notes)}]")
            else:
                txt = _fmt(med[rt], meta["unit"])  # type: ignore[arg-type]
                if cell["errors"]:
                    notes.append(f"{rt}, {meta['label']}: {len(cell['errors'])} failed "
                                 f"repetition(s): {cell['errors'][0]}")
                    txt += f" [{len(notes)}]"
                cells.append(txt)
        if meta["unit"] == "count":
            cells += ["" for _ in ratios]
        else:
            cells += [_ratio(med.get(v), med.get(ref)) for v, ref in ratios]
        lines.append("| " + " | ".join(cells) + " |")
    if notes:
        lines += ["", "Notes:", ""]
        lines += [f"{i}. {n}" for i, n in enumerate(notes, 1)]
    for w in result.get("warnings", []):
        lines.append(f"- warning: {w}")
    from . import _ctr, _startup
    lines += _startup.markdown(result.get("profiles") or {})
    lines += _ctr.markdown(result.get("profiles") or {})
    return "\n".join(lines) + "\n"


def _load(t: Any) -> str:
    return "/".join(f"{x:.2f}" for x in t)


def require_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise SystemExit(
            "benchmarks: matplotlib is needed for the PNG chart and is not installed.\n"
            "  install the optional dependencies: .venv/bin/pip install -e '.[bench]'\n"
            "  (or pass --no-chart to write only the Markdown and JSON)") from None


def chart(result: dict[str, Any], path: Path) -> None:
    """Horizontal bars: each runtime's median relative to runc (log scale);
    memory (runc has no runtime process) in absolute MiB on a second panel."""
    require_matplotlib()
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runtimes: list[str] = result["runtimes"]
    summary = result["summary"]
    base = "runc" if "runc" in runtimes else runtimes[0]
    others = [r for r in runtimes if r != base]
    rel_keys, mem_keys = [], []
    for key, meta in result["metrics"].items():
        if meta["unit"] == "count":
            continue
        (mem_keys if meta["unit"] == "MiB" else rel_keys).append(key)

    def med(key: str, rt: str) -> float | None:
        return summary.get(key, {}).get(rt, {}).get("median")

    fig_h = 1.2 + 0.32 * len(rel_keys) * max(1, len(others)) / 2 + (1.5 if mem_keys else 0)
    ratios = [len(rel_keys) * max(1, len(others)), max(2, len(mem_keys) * len(runtimes))]
    fig, axes = plt.subplots(2 if mem_keys else 1, 1, figsize=(11, max(4.0, fig_h)),
                             gridspec_kw={"height_ratios": ratios if mem_keys else ratios[:1]},
                             squeeze=False)
    ax = axes[0][0]
    height = 0.8 / max(1, len(others))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for j, rt in enumerate(others):
        ys, xs = [], []
        for i, key in enumerate(rel_keys):
            a, b = med(key, rt), med(key, base)
            if a is not None and b:
                ys.append(i + j * height)
                xs.append(a / b)
        ax.barh(ys, xs, height=height, label=rt, color=colors[j % len(colors)])
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_yticks([i + height * (len(others) - 1) / 2 for i in range(len(rel_keys))])
    ax.set_yticklabels([result["metrics"][k]["label"] for k in rel_keys], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(f"median relative to {base} (log scale, lower is better)")
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title(f"runsc-py benchmarks {result['date']} - kernel {result['machine']['kernel']}, "
                 f"{result['machine']['cpus']} x {result['machine']['cpu']}", fontsize=9)
    if mem_keys:
        ax2 = axes[1][0]
        labels, vals = [], []
        for key in mem_keys:
            for rt in runtimes:
                v = med(key, rt)
                labels.append(f"{rt}")
                vals.append(v if v is not None else math.nan)
        ax2.barh(range(len(vals)), vals, color=[colors[(runtimes.index(lb) - 1) % len(colors)]
                                                if lb != base else "gray" for lb in labels])
        ax2.set_yticks(range(len(vals)))
        ax2.set_yticklabels(labels, fontsize=8)
        ax2.invert_yaxis()
        ax2.set_xlabel("runtime PSS with an idle container, MiB (runc: no runtime process)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
