"""Find the host processes of a live container, for any OCI runtime.

Inputs: the runtime's `state` (pid, bundle) and the bundle's config.json.

    helpers   the runtime's own processes:
              - processes whose command line names the container id or the
                bundle directory (runsc-py's sandbox, gVisor's runsc-sandbox and
                runsc-gofer, shims, conmon), the state pid among them when it
                is one of those;
              - their descendants and the state pid's descendants that are
                not workload (e.g. gVisor's ptrace stubs; a gofer forked by
                the sandbox).
    workload  every host process in the container's pid namespace, plus the
              processes sharing the container init's cgroups that are not
              helpers.  The container's pid namespace is the init's: the
              state pid when it is not a helper (runc, crun), else the
              descendant of the state pid, outside the host's and the
              helpers' pid namespaces, that runs the spec's process.args
              (or, failing that, the first such descendant).  gVisor has none:
              its workload runs inside the sentry and the ptrace stubs.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.posture import procfs

log = logging.getLogger(__name__)


@dataclass
class Member:
    pid: int
    role: str           # "workload" | "helper"
    why: str
    start: int = 0


@dataclass
class Sandbox:
    cid: str
    state_pid: int
    bundle: str
    rootfs: str
    init: int | None
    pidns: int | None
    members: list[Member] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def pids(self, role: str | None = None) -> list[int]:
        return [m.pid for m in self.members if role is None or m.role == role]


def _names_container(pid: int, cid: str, bundle: str) -> bool:
    argv = procfs.cmdline(pid)
    if not argv:
        return False
    bundle = bundle.rstrip("/")
    for a in argv:
        if a == cid or a.endswith("/" + cid) or a.endswith("=" + cid):
            return True
        if bundle and (a == bundle or a.endswith("=" + bundle) or a.startswith(bundle + "/")):
            return True
    return False


def _ancestors(pid: int) -> set[int]:
    """PID and its ancestors (this tool and whatever started it may name the id)."""
    out = set()
    while pid > 1 and pid not in out:
        out.add(pid)
        try:
            pid = procfs.stat(pid).ppid
        except procfs.Gone:
            break
    return out


def load_spec(bundle: str) -> dict:
    try:
        return json.loads((Path(bundle) / "config.json").read_text())
    except (OSError, ValueError) as e:
        log.warning("spec of bundle %s: %s", bundle, e)
        return {}


def _rootfs(bundle: str, spec: dict) -> str:
    root = (spec.get("root") or {}).get("path") or "rootfs"
    return os.path.normpath(os.path.join(bundle, root))


def _pidns(pid: int) -> int | None:
    return procfs.namespaces(pid).get("pid")


def _find_init(state_pid: int, helpers: set[int], spec_args: list[str], host_pidns: int) -> int | None:
    helper_ns = {_pidns(h) for h in helpers}
    cands = [p for p in procfs.descendants(state_pid)
             if p not in helpers and _pidns(p) not in helper_ns | {host_pidns, None}]
    for p in cands:
        if spec_args and procfs.cmdline(p) == spec_args:
            return p
    return cands[0] if cands else None


def discover(cid: str, state: dict, host_pidns: int) -> Sandbox:
    """The container's processes, from its OCI STATE (needs "pid", "bundle")."""
    state_pid = int(state["pid"])
    bundle = str(state.get("bundle") or "")
    spec = load_spec(bundle) if bundle else {}
    spec_args = list((spec.get("process") or {}).get("args") or [])
    sb = Sandbox(cid, state_pid, bundle, _rootfs(bundle, spec), None, None)

    # 1. helpers by identity, and the state pid's standing
    mine = _ancestors(os.getpid())
    named = {p for p in procfs.pids() if p not in mine and _names_container(p, cid, bundle)}
    helpers: dict[int, str] = {p: "command line names the container id or bundle" for p in named}

    # 2. the container init and its pid namespace
    if state_pid not in helpers:
        sb.init = state_pid
    else:
        sb.init = _find_init(state_pid, set(helpers), spec_args, host_pidns)
    sb.pidns = _pidns(sb.init) if sb.init else None
    if sb.init is None:
        sb.notes.append("no host process runs the workload in a pid namespace of its own "
                        "(it runs inside the runtime's helpers)")
    if sb.pidns == host_pidns:
        sb.notes.append("the container shares the host's pid namespace: workload found by cgroup")
        sb.pidns = None

    # 3. workload: its pid namespace, and its init's cgroups
    workload: dict[int, str] = {}
    init_cg = None
    if sb.init:
        try:
            init_cg = procfs.cgroups(sb.init)
        except procfs.Gone:
            init_cg = None
    own_cg = procfs.cgroups(os.getpid())
    for p in procfs.pids():
        if p in helpers or p in mine:
            continue
        if sb.pidns is not None and _pidns(p) == sb.pidns:
            workload[p] = "in the container's pid namespace"
            continue
        if init_cg and init_cg != own_cg:
            try:
                if procfs.cgroups(p) == init_cg:
                    workload[p] = "in the container init's cgroups"
            except procfs.Gone:
                continue

    # 4. helpers by descent: the state pid's and the helpers' other descendants
    for root in [state_pid, *sorted(named)]:
        for p in [root, *procfs.descendants(root)]:
            if p not in workload and p not in helpers:
                helpers[p] = ("the state pid" if p == state_pid
                              else f"descendant of {root}, outside the container's pid namespace")
    if state_pid in helpers and state_pid in named:
        helpers[state_pid] = "the state pid; its command line names the container"

    for p, why in sorted(helpers.items()):
        sb.members.append(Member(p, "helper", why))
    for p, why in sorted(workload.items()):
        sb.members.append(Member(p, "workload", why))
    for m in sb.members:
        try:
            m.start = procfs.stat(m.pid).start
        except procfs.Gone:
            pass
    return sb
