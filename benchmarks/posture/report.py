"""Markdown for one runtime's posture report and a summary across runtimes."""

from __future__ import annotations

from typing import Any

from benchmarks.posture import caps

SECCOMP = {0: "off", 1: "strict", 2: "filter"}
STDIO = ("stdio", "caller's stdio")


def _seccomp(p: dict[str, Any]) -> str:
    mode = SECCOMP.get(p["seccomp"], str(p["seccomp"]))
    return f"{mode} ({p['seccomp_filters']})" if p["seccomp"] == 2 else mode


def _mask(names: list[str]) -> int:
    m = 0
    for n in names:
        if n in caps.NAMES:
            m |= 1 << caps.NAMES.index(n)
    return m


def _caps(names: list[str], full: int) -> str:
    return caps.summary(_mask(names), full)


def _cgroup(lines: list[str]) -> str:
    v1 = sorted({ln.split(":", 2)[2] for ln in lines if not ln.startswith("0::")})
    v2 = [ln.split(":", 2)[2] for ln in lines if ln.startswith("0::")]
    parts = []
    if v1:
        parts.append("v1 " + (v1[0] if len(v1) == 1 else " / ".join(v1)))
    if v2:
        parts.append("v2 " + v2[0])
    return ", ".join(parts) or "?"


def _flagged(p: dict[str, Any]) -> str:
    """Flagged fds for a table cell; the caller's stdio (fds 0-2 on host files) in one item."""
    out = []
    caller = [f for f in p["fds"] if f["flagged"] and f["note"] == "caller's stdio"]
    if caller:
        out.append(f"{','.join(str(f['fd']) for f in caller)}: the caller's stdio (host files)")
    stdio = [f for f in p["fds"] if f["flagged"] and f["note"] == "stdio"]
    if stdio:
        targets = sorted({f["target"] for f in stdio})
        out.append(f"{','.join(str(f['fd']) for f in stdio)}: stdio on host {', '.join(targets)}")
    for f in p["fds"]:
        if f["flagged"] and f["note"] not in STDIO:
            out.append(f"{f['fd']}: {f['target']} ({f['place']})")
    return "; ".join(out) or "-"


def flagged_count(p: dict[str, Any]) -> int:
    """Flagged fds other than the caller's stdio."""
    return sum(1 for f in p["fds"] if f["flagged"] and f["note"] not in STDIO)


def _full(res: dict[str, Any]) -> int:
    return (1 << (res["context"]["cap_last"] + 1)) - 1


def process_table(res: dict[str, Any]) -> list[str]:
    full = _full(res)
    lines = ["| role | pid | process | seccomp (filters) | NNP | CapEff | CapBnd | host ns shared "
             "| dumpable | fds | flagged fds | cgroup |",
             "|---|---:|---|---|---|---|---|---|---|---:|---|---|"]
    for p in res["processes"]:
        pid = f"{p['pid']}*" if p["state_pid"] else str(p["pid"])
        name = p["comm"]
        if p["argv0"] and p["argv0"].rsplit("/", 1)[-1] != p["comm"] and p["comm"] in ("exe",):
            name = f"{p['argv0'].rsplit('/', 1)[-1]} ({p['comm']})"
        cells = [p["role"], pid, name.replace("|", "/"), _seccomp(p), str(p["no_new_privs"]),
                 _caps(p["cap_eff"], full), _caps(p["cap_bnd"], full),
                 ", ".join(p["host_namespaces_shared"]) or "none", p["dumpable"]["value"],
                 str(len(p["fds"])), _flagged(p).replace("|", "/"), _cgroup(p["cgroups"])]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def markdown(res: dict[str, Any]) -> str:
    title = f"### {res['runtime']}"
    lines = [title, "",
             f"{res['version']}; container `{res['id']}` ({res['source']}); "
             f"kernel {res['kernel']}, {res['date']}.  `*` = the pid `state` reports.", ""]
    for n in res["notes"]:
        lines.append(f"- {n}")
    if res["notes"]:
        lines.append("")
    lines += process_table(res)
    lines += ["", "<details><summary>details</summary>", ""]
    for p in res["processes"]:
        lines.append(f"- **{p['role']} {p['pid']} {p['comm']}** ({p['why']}); uid {p['uid']}, "
                     f"{p['threads']} thread(s)")
        lines.append(f"  - CapPrm: {', '.join(p['cap_prm']) or 'none'}")
        if p["thread_diffs"]:
            lines.append("  - threads differing from the leader: " + "; ".join(p["thread_diffs"]))
        else:
            lines.append("  - every thread has the leader's seccomp, no_new_privs and capabilities")
        own = sorted(set(p["namespaces"]) - set(p["host_namespaces_shared"]))
        lines.append(f"  - namespaces of its own: {', '.join(own) or 'none'}; "
                     f"shared with the host: {', '.join(p['host_namespaces_shared']) or 'none'}")
        lines.append(f"  - dumpable: {p['dumpable']['value']} ({p['dumpable']['method']})")
        lines.append(f"  - cgroups: {'; '.join(p['cgroups'])}")
        lines.append("  - fds: " + ("; ".join(_fd(f) for f in p["fds"]) or "none"))
    lines += ["", "</details>", ""]
    return "\n".join(lines)


def _fd(f: dict[str, Any]) -> str:
    s = f"{f['fd']} -> {f['target']} [{f['place']}{', ' + f['note'] if f['note'] else ''}]"
    if f["links"]:
        s += " (" + "; ".join(f["links"]) + ")"
    if f["flagged"]:
        s = "**" + s.replace("*", "\\*") + "**"
    return s.replace("|", "/")


def summary(results: list[dict[str, Any]]) -> str:
    """One row per runtime: the workload's and the helpers' posture at a glance."""
    lines = ["| runtime | workload procs | workload seccomp | host kernel surface (allow / notify) "
             "| workload NNP | workload CapEff "
             "| workload host ns | helpers | helper seccomp | helper CapEff | helper dumpable "
             "| helper host ns | flagged fds beyond stdio (workload / helpers) |",
             "|---|---:|---|---|---|---|---|---|---|---|---|---|---|"]
    for res in results:
        full = _full(res)
        w = [p for p in res["processes"] if p["role"] == "workload"]
        h = [p for p in res["processes"] if p["role"] == "helper"]

        def uniq(items: list[str]) -> str:
            seen: list[str] = []
            for i in items:
                if i not in seen:
                    seen.append(i)
            return " / ".join(seen) or "-"

        def flagged(ps: list[dict[str, Any]]) -> int:
            return sum(flagged_count(p) for p in ps)

        cells = [res["runtime"], str(len(w)),
                 uniq([_seccomp(p) for p in w]), uniq([_surface(p) for p in w]),
                 uniq([str(p["no_new_privs"]) for p in w]),
                 uniq([_caps(p["cap_eff"], full) for p in w]),
                 uniq([", ".join(p["host_namespaces_shared"]) or "none" for p in w]),
                 uniq([_name(p) for p in h]) if h else "none",
                 uniq([_seccomp(p) for p in h]), uniq([_caps(p["cap_eff"], full) for p in h]),
                 uniq([p["dumpable"]["value"] for p in h]),
                 uniq([", ".join(p["host_namespaces_shared"]) or "none" for p in h]),
                 f"{flagged(w)} / {flagged(h)}"]
        lines.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    return "\n".join(lines)


def _surface(p: dict[str, Any]) -> str:
    """Syscalls the workload reaches the host kernel with, read from its
    filters (surface.py): allowed for some arguments / sent to a supervisor."""
    s = p.get("surface") or {}
    if not s:
        return "?"
    if "error" in s:
        return f"unreadable ({s['error'][:60]})"
    return f"{s['allow']} / {s['notify']}"


def _name(p: dict[str, Any]) -> str:
    base = p["argv0"].rsplit("/", 1)[-1] if p["argv0"] else ""
    if p["comm"] == "exe" and base:
        return base
    return p["comm"]
