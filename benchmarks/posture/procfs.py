"""Read one process's security-relevant facts from /proc, from outside.

Kernel facts relied on (as root in the host's pid namespace):
- /proc/PID/status has Seccomp (0 off, 1 strict, 2 filter), Seccomp_filters
  (number of attached filters, Linux >= 5.9), NoNewPrivs and the capability
  sets as hex masks.  These are the thread group leader's; seccomp filters,
  no_new_privs and capabilities are per thread, so every thread is read too.
- /proc/PID/ns/KIND is a magic link; stat() follows it and st_ino is the
  namespace's identity (the same inode in two processes = the same namespace).
- /proc/PID/cgroup: "ID:CONTROLLERS:PATH" per v1 hierarchy, "0::PATH" for v2.
- /proc/PID/mountinfo is that process's mount namespace's table; mount ids are
  global, so /proc/PID/fdinfo/N's mnt_id is found in the holder's table.
- Field 22 of /proc/PID/stat (start time) tells a reused pid from the original.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

NS_KINDS = ("cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts")


class Gone(Exception):
    """The process exited while it was being read."""


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except (FileNotFoundError, ProcessLookupError) as e:
        raise Gone(f"{path}: {e.strerror}") from None


def status(pid: int, tid: int | None = None) -> dict[str, str]:
    """/proc/PID/status (or /proc/PID/task/TID/status) as a dict."""
    path = f"/proc/{pid}/status" if tid is None else f"/proc/{pid}/task/{tid}/status"
    out = {}
    for line in _read(path).splitlines():
        key, _, value = line.partition(":")
        out[key] = value.strip()
    return out


@dataclass(frozen=True)
class Stat:
    comm: str
    state: str
    ppid: int
    start: int


def stat(pid: int) -> Stat:
    data = _read(f"/proc/{pid}/stat")
    comm = data[data.index("(") + 1:data.rindex(")")]
    rest = data[data.rindex(")") + 2:].split()
    return Stat(comm, rest[0], int(rest[1]), int(rest[19]))


def cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0")[:-1]]


def pids() -> list[int]:
    return sorted(int(e) for e in os.listdir("/proc") if e.isdigit())


def threads(pid: int) -> list[int]:
    try:
        return sorted(int(t) for t in os.listdir(f"/proc/{pid}/task"))
    except OSError:
        return []


def children(pid: int) -> list[int]:
    """Children of every thread of PID (/proc/PID/task/TID/children)."""
    out: list[int] = []
    for tid in threads(pid):
        try:
            out += [int(c) for c in Path(f"/proc/{pid}/task/{tid}/children").read_text().split()]
        except OSError:
            continue
    return sorted(set(out))


def descendants(pid: int) -> list[int]:
    seen: list[int] = []
    todo = [pid]
    while todo:
        for c in children(todo.pop(0)):
            if c not in seen:
                seen.append(c)
                todo.append(c)
    return seen


def namespaces(pid: int) -> dict[str, int]:
    """Namespace kind -> inode; kinds that cannot be read are left out."""
    out = {}
    for kind in NS_KINDS:
        try:
            out[kind] = os.stat(f"/proc/{pid}/ns/{kind}").st_ino
        except OSError:
            continue
    return out


def host_namespaces() -> tuple[dict[str, int], str]:
    """The host's namespaces and where they were read: pid 1's when
    readable, else this tool's own (it runs in the host's namespaces)."""
    ns = namespaces(1)
    if len(ns) == len(namespaces(os.getpid())):
        return ns, "pid 1"
    own = namespaces(os.getpid())
    return {**own, **ns}, "this tool's process (pid 1's /proc/1/ns is not readable here)"


def cgroups(pid: int) -> list[str]:
    """The lines of /proc/PID/cgroup ("ID:CONTROLLERS:PATH")."""
    return [ln for ln in _read(f"/proc/{pid}/cgroup").splitlines() if ln]


@dataclass(frozen=True)
class Mount:
    mount_id: int
    dev: str        # "major:minor"
    root: str       # the mounted directory's path inside its filesystem
    mountpoint: str
    fstype: str


def _unescape(s: str) -> str:
    for code, ch in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        s = s.replace(code, ch)
    return s


def mounts(pid: int | str = "self") -> dict[int, Mount]:
    out = {}
    for line in _read(f"/proc/{pid}/mountinfo").splitlines():
        f = line.split()
        sep = f.index("-")
        out[int(f[0])] = Mount(int(f[0]), f[2], _unescape(f[3]), _unescape(f[4]), f[sep + 1])
    return out


def uid_map_root(pid: int) -> tuple[int, int]:
    """Host uid and gid of root in PID's user namespace (0, 0 when unmapped)."""
    res = []
    for name in ("uid_map", "gid_map"):
        host = 0
        for line in _read(f"/proc/{pid}/{name}").splitlines():
            inside, outside, count = (int(x) for x in line.split())
            if inside == 0 and count > 0:
                host = outside
        res.append(host)
    return res[0], res[1]
