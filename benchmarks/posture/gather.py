"""Gather the posture of every process of a discovered sandbox."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

from benchmarks.posture import caps, dumpable, fds, procfs, surface
from benchmarks.posture.discover import Sandbox

log = logging.getLogger(__name__)

_THREAD_KEYS = ("Seccomp", "Seccomp_filters", "NoNewPrivs", "CapEff", "CapPrm", "CapBnd")


@dataclass
class Proc:
    pid: int
    role: str
    why: str
    comm: str
    argv0: str
    state_pid: bool
    uid: str
    seccomp: int
    filters: int
    nnp: int
    cap_eff: int
    cap_prm: int
    cap_bnd: int
    threads: int
    thread_diffs: list[str]
    ns: dict[str, int]
    host_ns: list[str]          # kinds shared with the host
    dumpable: dumpable.Dumpable
    cgroups: list[str]
    fds: list[fds.Fd] = field(default_factory=list)
    # The workload's host kernel surface, read from its filters (surface.py).
    surface: dict[str, object] = field(default_factory=dict)

    @property
    def name(self) -> str:
        base = os.path.basename(self.argv0) if self.argv0 else ""
        if base and base != self.comm and self.comm in ("exe", "python3", "python"):
            return f"{base} ({self.comm})"
        return self.comm

    def to_json(self) -> dict[str, object]:
        return {
            "pid": self.pid, "role": self.role, "why": self.why, "comm": self.comm,
            "argv0": self.argv0, "state_pid": self.state_pid, "uid": self.uid,
            "seccomp": self.seccomp, "seccomp_filters": self.filters, "no_new_privs": self.nnp,
            "cap_eff": caps.names(self.cap_eff), "cap_prm": caps.names(self.cap_prm),
            "cap_bnd": caps.names(self.cap_bnd), "threads": self.threads,
            "thread_diffs": self.thread_diffs, "namespaces": self.ns,
            "host_namespaces_shared": self.host_ns,
            "dumpable": {"value": self.dumpable.value, "method": self.dumpable.method},
            "cgroups": self.cgroups, "fds": [f.to_json() for f in self.fds],
            "surface": self.surface,
        }


def _int(status: dict[str, str], key: str, default: int = -1) -> int:
    try:
        return int(status[key])
    except (KeyError, ValueError):
        return default


def _thread_diffs(pid: int, lead: dict[str, str]) -> tuple[int, list[str]]:
    tids = procfs.threads(pid)
    diffs = []
    for tid in tids:
        if tid == pid:
            continue
        try:
            st = procfs.status(pid, tid)
        except procfs.Gone:
            continue
        d = [f"{k} {st.get(k)}" for k in _THREAD_KEYS if st.get(k) != lead.get(k)]
        if d:
            diffs.append(f"thread {tid} ({st.get('Name', '?')}): " + ", ".join(d))
    return len(tids), diffs


def one(pid: int, role: str, why: str, sb: Sandbox, host_ns: dict[str, int],
        own_userns: int) -> Proc:
    st = procfs.status(pid)
    ns = procfs.namespaces(pid)
    nthreads, diffs = _thread_diffs(pid, st)
    argv = procfs.cmdline(pid)
    return Proc(
        pid=pid, role=role, why=why, comm=st.get("Name", "?"), argv0=argv[0] if argv else "",
        state_pid=pid == sb.state_pid, uid=st.get("Uid", "").split("\t")[1] if st.get("Uid") else "?",
        seccomp=_int(st, "Seccomp"), filters=_int(st, "Seccomp_filters"),
        nnp=_int(st, "NoNewPrivs"), cap_eff=int(st.get("CapEff", "0"), 16),
        cap_prm=int(st.get("CapPrm", "0"), 16), cap_bnd=int(st.get("CapBnd", "0"), 16),
        threads=nthreads, thread_diffs=diffs, ns=ns,
        host_ns=sorted(k for k, v in ns.items() if host_ns.get(k) == v),
        dumpable=dumpable.check(pid, st, own_userns), cgroups=procfs.cgroups(pid),
        fds=fds.read(pid),
        surface=surface.surface(pid) if role == "workload" else {})


def _link_ipc(procs: list[Proc]) -> None:
    """Annotate pipes/sockets with who holds them or their peer; flag crossings."""
    role = {p.pid: p.role for p in procs}
    names = {p.pid: p.name for p in procs}
    holders = fds.holders()
    netns: dict[int, int] = {}
    for p in procs:
        if "net" in p.ns:
            netns.setdefault(p.ns["net"], p.pid)
    netns.setdefault(procfs.namespaces(os.getpid()).get("net", 0), os.getpid())
    peers = fds.unix_peers(netns)
    sock_holder: dict[int, set[int]] = {}
    for key, pids in holders.items():
        if key.startswith("socket:"):
            sock_holder[int(key[8:-1])] = pids

    def who(pid: int) -> str:
        if pid in role:
            return f"{role[pid]} {pid} {names[pid]}"
        try:
            return f"host process {pid} {procfs.stat(pid).comm}"
        except procfs.Gone:
            return f"host process {pid}"

    for p in procs:
        for f in p.fds:
            if f.place not in ("pipe", "socket"):
                continue
            others = sorted(holders.get(f.target, set()) - {p.pid})
            if others:
                f.links.append("also held by " + ", ".join(who(o) for o in others[:6]))
            peer_pids: list[int] = []
            if f.place == "socket" and f.inode in peers:
                peer_pids = sorted(sock_holder.get(peers[f.inode], set()))
                f.links.append(f"peer socket:[{peers[f.inode]}] held by "
                               + (", ".join(who(o) for o in peer_pids[:6]) or "nobody"))
            crossing = [o for o in others + peer_pids if o != p.pid and role.get(o) != p.role]
            if crossing and _reserved(p, f, crossing, names):
                f.note = ("the ptrace platform's reserved socket: fds are installed through it, "
                          "every call of the workload on it is refused (EBADF)")
            elif crossing:
                f.flagged = True
            if f.place == "pipe" and not others:
                f.note = "other end not found in any process"


# sentry/platform/reserved.py: the ptrace platform gives every workload process
# this descriptor, a socket whose other end (and a copy of its own) only the
# sandbox process holds.
RESERVED_FD = 1023


def _reserved(p: Proc, f: fds.Fd, crossing: list[int], names: dict[int, str]) -> bool:
    """f is a workload's reserved socket, shared with the sandbox process only."""
    return (f.fd == RESERVED_FD and f.place == "socket" and p.role == "workload"
            and all(names.get(o) == "runsc-sandbox" for o in crossing))


def gather(sb: Sandbox, caller_stdio: tuple[str, ...] = ()) -> tuple[list[Proc], dict[str, object]]:
    """Facts per process, and the context (host namespaces, method notes)."""
    host_ns, host_ns_from = procfs.host_namespaces()
    own_userns = procfs.namespaces(os.getpid())["user"]
    rootfs = fds.RootfsRef.of(sb.rootfs)
    host_devs = fds.host_devices()
    table = fds.mount_table(sb.pids())
    procs = []
    for m in sb.members:
        try:
            if procfs.stat(m.pid).start != m.start:
                continue
            p = one(m.pid, m.role, m.why, sb, host_ns, own_userns)
        except procfs.Gone as e:
            log.info("process %d exited while being read: %s", m.pid, e)
            continue
        fds.classify_files(p.pid, p.fds, rootfs, host_devs, table, caller_stdio)
        procs.append(p)
    _link_ipc(procs)
    ctx: dict[str, object] = {"host_namespaces_from": host_ns_from, "host_namespaces": host_ns,
           "rootfs": sb.rootfs, "rootfs_device": rootfs.dev if rootfs else None,
           "cap_last": caps.last_cap()}
    return procs, ctx
