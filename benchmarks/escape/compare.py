"""Side-by-side verdicts of several runtimes, from the harness's JSON results.

    python -m benchmarks.escape.compare /tmp/escape-out   # results-*.json there
    python -m benchmarks.escape.compare /tmp/escape-out --write benchmarks/escape/RESULTS.md

Prints one Markdown table per capability profile (rows: probes, columns:
runtimes) and a count of each verdict per runtime and profile.  --write puts
those tables and every runtime's own table with its details into FILE,
below the GENERATED line: what is above it (the explanatory header, the
notes) is kept as it is.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path
from typing import Any

from benchmarks.escape.harness import VERDICTS, markdown

ORDER = ("runsc-py", "runsc-py-gofer", "runc", "crun", "runsc")
GENERATED = ("<!-- Everything below is written by `python -m benchmarks.escape.compare DIR "
             "--write FILE`; edit above this line. -->")


def load(directory: Path) -> list[dict[str, Any]]:
    found = [json.loads(p.read_text()) for p in sorted(directory.glob("results-*.json"))]
    if not found:
        raise SystemExit(f"compare: no results-*.json in {directory}")
    rank = {n: i for i, n in enumerate(ORDER)}
    return sorted(found, key=lambda r: (rank.get(r["runtime"], len(ORDER)), r["runtime"]))


def _cell(v: str) -> str:
    return f"**{v}**" if v == "ESCAPED" else v


def tables(results: list[dict[str, Any]]) -> str:
    names = [r["runtime"] for r in results]
    profiles: list[str] = []
    for r in results:
        profiles += [p for p in r["profiles"] if p not in profiles]
    probes: list[str] = []
    for r in results:
        probes += [p for p in r["probes"] if p not in probes]
    out = ["Counts per runtime and profile: BLOCKED / ALLOWED / ESCAPED / ERROR.", "",
           "| runtime | " + " | ".join(profiles) + " |", "|---" * (1 + len(profiles)) + "|"]
    for r in results:
        cells = []
        for p in profiles:
            row = r["results"].get(p, {})
            n = Counter(x["verdict"] for x in row.values())
            cells.append(" / ".join(str(n[v]) for v in VERDICTS) if row else "-")
        out.append(f"| {r['runtime']} | " + " | ".join(cells) + " |")
    for p in profiles:
        out += ["", f"#### {p}", "", "| probe | " + " | ".join(names) + " |",
                "|---" * (1 + len(names)) + "|"]
        for probe in probes:
            cells = [_cell(r["results"].get(p, {}).get(probe, {}).get("verdict", "-"))
                     for r in results]
            out.append(f"| {probe} | " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


def write(path: Path, results: list[dict[str, Any]]) -> None:
    """Replace what follows the GENERATED line of PATH (appended if missing)
    with the side-by-side tables and each runtime's own section."""
    head = path.read_text() if path.exists() else ""
    head = head.split(GENERATED, 1)[0].rstrip("\n")
    body = ["## Side by side", "", tables(results).rstrip("\n"), "", "## Per runtime", ""]
    body += [markdown(r) for r in results]
    path.write_text(head + "\n\n" + GENERATED + "\n\n" + "\n".join(body).rstrip("\n") + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.escape.compare")
    ap.add_argument("dir", help="directory holding the harness's results-RUNTIME.json files")
    ap.add_argument("--write", metavar="FILE",
                    help="write the tables into FILE below its GENERATED line (e.g. RESULTS.md)")
    a = ap.parse_args(argv)
    results = load(Path(a.dir))
    if a.write:
        write(Path(a.write), results)
    else:
        print(tables(results), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
