"""Files the sentry writes itself: the container's own view of its limits.

Under runc a container reads the host's /proc/meminfo and /proc/cpuinfo, so
`free`, `top`, `nproc`, `os.cpu_count()`, node's `os.totalmem()` and the
JVM size themselves to the host; LXCFS fixes that with a FUSE mount.  gVisor
shows its own numbers, and so does the sentry: a read open of one of the
files below (whatever spelling led there: sentry/paths.py calls `replace`
for every procfs and sysfs object) is answered with a sealed, read-only
memfd holding text made at that moment from the container's cgroup limits
and usage:

    /proc/meminfo   MemTotal = the memory limit (the host's memory if
                    lower or unlimited), usage and cache from the cgroup
    /proc/cpuinfo   the host's processor entries, as many as the CPUs the
                    cpuset and the CPU quota allow (ceil(quota / period))
    /proc/stat      those CPUs, with the container's CPU time (cgroup
                    accounting) and idle time for the rest of its age
    /proc/uptime    its age (as its time namespace's clocks count it), and
                    the idle time of its CPUs over that age
    /proc/loadavg   the container's running and total tasks (the averages
                    are not kept: 0.00, as gVisor shows them)
    /proc/swaps     no swap area (the cgroup's swap shows in meminfo)
    /sys/devices/system/cpu/{online,possible,present}   "0-(N-1)"

sysinfo(2) and sched_getaffinity(2) tell the same (sentry/syscalls).  What
needs no synthesis: the start times in /proc/<pid>/stat and the clocks
come from the kernel itself, because the container runs in a time
namespace whose clocks start when it was created (runsc_py/launch.py).  A file read through one fd keeps the text of its
open (top rereads with lseek: it sees the values of its open).

The cgroup directories are opened once, before the sentry's root is
emptied (`Limits.open`); what the host has (its memory, its CPUs' entries)
is read at the same time.
"""

from __future__ import annotations

import errno
import fcntl
import math
import os
import time

from runsc_py.record import Record

from . import ownproc
from .errors import SysError

# The cgroup files the synthesized views read, per controller ("unified":
# cgroup v2).  Each is opened read-only once, by name, while the host's
# files are visible; the sentry keeps these fds and no directory fd, so
# nothing else of the host's cgroup tree is reachable from it (a
# directory fd would let a compromised sentry walk ".." and write a
# release_agent).
CGROUP_FILES: dict[str, tuple[str, ...]] = {
    "memory": ("memory.limit_in_bytes", "memory.usage_in_bytes", "memory.stat",
               "memory.memsw.limit_in_bytes", "memory.memsw.usage_in_bytes", "tasks"),
    "cpu": ("cpu.cfs_quota_us", "cpu.cfs_period_us", "cpuacct.stat", "tasks"),
    "cpuacct": ("cpuacct.stat",),
    "cpuset": ("cpuset.effective_cpus", "cpuset.cpus"),
    "pids": ("tasks",),
    "unified": ("memory.max", "memory.current", "memory.stat", "memory.swap.max",
                "memory.swap.current", "cpu.max", "cpu.stat", "cpuset.cpus.effective",
                "cgroup.threads"),
}
_UNLIMITED = 1 << 62
_CLK_TCK = 100  # USER_HZ on x86-64
_F_SEAL_ALL = 0x0001 | 0x0002 | 0x0004 | 0x0008  # SEAL, SHRINK, GROW, WRITE
_F_ADD_SEALS = 1033


class Limits(Record):
    """The container's cgroup files (read-only fds) and the host's facts."""

    files: dict[tuple[str, str], int] = {}  # (controller, name) -> fd
    controllers: set[str] = set()            # those found ("unified" on v2)
    host_mem_kb: int = 0
    host_swap_kb: int = 0
    cpuinfo: list[bytes] = []  # one "processor : N" block each
    cpus: tuple[int, ...] = ()                           # the sandbox's CPUs at start
    nr_cpu_ids: int = 1                                  # the host's possible CPUs
    cpu_node: dict[int, int] = {}  # CPU -> NUMA node
    started: float = 0.0                                 # CLOCK_BOOTTIME at start

    @classmethod
    def open(cls, cgroup_dirs: dict[str, str], born: float | None = None) -> "Limits":
        """Read the host's facts and open the cgroup directories; called by
        the sandbox process while the host's files are still visible.
        born: the host's boot clock where the container's clocks start
        (its time namespace's offset), so that the ages agree."""
        lim = cls(started=time.clock_gettime(time.CLOCK_BOOTTIME) if born is None else float(born),
                  cpus=tuple(sorted(os.sched_getaffinity(0))))
        for ctl, names in CGROUP_FILES.items():
            path = cgroup_dirs.get(ctl)
            if not path:
                continue
            try:
                d = os.open(path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            except OSError:
                continue
            lim.controllers.add(ctl)
            try:
                for name in names:
                    try:
                        lim.files[(ctl, name)] = os.open(name, os.O_RDONLY | os.O_CLOEXEC, dir_fd=d)
                    except OSError:
                        pass  # not on this kernel or hierarchy (swap accounting off...)
            finally:
                os.close(d)
        try:
            with open("/sys/devices/system/cpu/possible", "rb") as f:
                lim.nr_cpu_ids = max(parse_cpu_list(f.read().decode().strip())) + 1
        except (OSError, ValueError):
            lim.nr_cpu_ids = max(lim.cpus, default=0) + 1
        try:
            for name in os.listdir("/sys/devices/system/node"):
                if name.startswith("node") and name[4:].isdigit():
                    with open(f"/sys/devices/system/node/{name}/cpulist") as f:
                        for c in parse_cpu_list(f.read().strip()):
                            lim.cpu_node[c] = int(name[4:])
        except OSError:
            pass
        try:
            with open("/proc/meminfo", "rb") as f:
                for line in f:
                    if line.startswith(b"MemTotal:"):
                        lim.host_mem_kb = int(line.split()[1])
                    elif line.startswith(b"SwapTotal:"):
                        lim.host_swap_kb = int(line.split()[1])
            with open("/proc/cpuinfo", "rb") as f:
                lim.cpuinfo = [b for b in f.read().split(b"\n\n") if b.strip()]
        except OSError:
            pass
        return lim

    def close(self) -> None:
        for fd in self.files.values():
            os.close(fd)
        self.files.clear()

    # --- cgroup files ------------------------------------------------------------
    def _read(self, ctl: str, name: str) -> bytes | None:
        fd = self.files.get((ctl, name))
        if fd is None:
            return None
        parts = []
        try:
            # From offset 0 each time: a cgroup file is generated afresh.
            while chunk := os.pread(fd, 65536, sum(map(len, parts))):
                parts.append(chunk)
                if len(chunk) < 65536:
                    break
        except OSError:
            return None
        return b"".join(parts)

    def _num(self, ctl: str, name: str) -> int | None:
        v = self._read(ctl, name)
        if v is None:
            return None
        v = v.strip()
        if v == b"max":
            return _UNLIMITED
        try:
            return int(v)
        except ValueError:
            return None

    def _stat(self, ctl: str, name: str) -> dict[str, int]:
        out: dict[str, int] = {}
        for line in (self._read(ctl, name) or b"").splitlines():
            k, _, v = line.partition(b" ")
            try:
                out[k.decode()] = int(v)
            except ValueError:
                pass
        return out

    @property
    def v2(self) -> bool:
        return "unified" in self.controllers and "memory" not in self.controllers

    # --- memory -----------------------------------------------------------------------
    def memory(self) -> dict[str, int]:
        """Bytes: total, used, cache (page cache), shmem, anon, active/inactive
        file and anon, swap_total, swap_used."""
        host = self.host_mem_kb * 1024 or _UNLIMITED
        if self.v2:
            limit = self._num("unified", "memory.max") or _UNLIMITED
            used = self._num("unified", "memory.current") or 0
            st = self._stat("unified", "memory.stat")
            cache, anon, shmem = st.get("file", 0), st.get("anon", 0), st.get("shmem", 0)
            swap_limit = self._num("unified", "memory.swap.max")
            swap_used = self._num("unified", "memory.swap.current") or 0
            act_f, inact_f = st.get("active_file", 0), st.get("inactive_file", 0)
            act_a, inact_a = st.get("active_anon", 0), st.get("inactive_anon", 0)
        else:
            limit = self._num("memory", "memory.limit_in_bytes") or _UNLIMITED
            used = self._num("memory", "memory.usage_in_bytes") or 0
            st = self._stat("memory", "memory.stat")
            cache, anon, shmem = st.get("total_cache", 0), st.get("total_rss", 0), st.get("total_shmem", 0)
            memsw = self._num("memory", "memory.memsw.limit_in_bytes")
            swap_limit = None if memsw is None or memsw >= _UNLIMITED // 2 else max(0, memsw - limit)
            memsw_used = self._num("memory", "memory.memsw.usage_in_bytes")
            swap_used = max(0, (memsw_used or used) - used)
            act_f, inact_f = st.get("total_active_file", 0), st.get("total_inactive_file", 0)
            act_a, inact_a = st.get("total_active_anon", 0), st.get("total_inactive_anon", 0)
        total = min(limit, host)
        host_swap = self.host_swap_kb * 1024
        swap_total = host_swap if swap_limit is None or swap_limit >= _UNLIMITED // 2 \
            else min(swap_limit, host_swap)
        return {"total": total, "used": min(used, total), "cache": min(cache, used),
                "shmem": shmem, "anon": anon, "active_file": act_f, "inactive_file": inact_f,
                "active_anon": act_a, "inactive_anon": inact_a, "swap_total": swap_total,
                "swap_used": min(swap_used, swap_total)}

    # --- CPUs ---------------------------------------------------------------------------
    def cpu_list(self) -> list[int]:
        """The CPUs the container may count: its cpuset, cut to the quota."""
        cpus = list(self.cpus) or [0]
        raw = self._read("unified", "cpuset.cpus.effective") if self.v2 else (
            self._read("cpuset", "cpuset.effective_cpus") or self._read("cpuset", "cpuset.cpus"))
        if raw and raw.strip():
            allowed = parse_cpu_list(raw.decode().strip())
            cpus = [c for c in cpus if c in allowed] or cpus
        quota, period = self.quota()
        if quota > 0 and period > 0:
            cpus = cpus[:max(1, math.ceil(quota / period))]
        return cpus

    def quota(self) -> tuple[int, int]:
        """(quota, period) in microseconds; quota <= 0: none."""
        if self.v2:
            raw = (self._read("unified", "cpu.max") or b"max 100000").split()
            if raw[0] == b"max":
                return -1, 0
            return int(raw[0]), int(raw[1]) if len(raw) > 1 else 100000
        q = self._num("cpu", "cpu.cfs_quota_us")
        p = self._num("cpu", "cpu.cfs_period_us")
        return (q if q is not None else -1), (p or 0)

    def cpu_time(self) -> tuple[int, int]:
        """(user, system) CPU time of the container in USER_HZ ticks."""
        if self.v2:
            st = self._stat("unified", "cpu.stat")
            return st.get("user_usec", 0) * _CLK_TCK // 1000000, st.get("system_usec", 0) * _CLK_TCK // 1000000
        st = self._stat("cpuacct", "cpuacct.stat") or self._stat("cpu", "cpuacct.stat")
        return st.get("user", 0), st.get("system", 0)

    def tasks(self) -> list[int]:
        raw = self._read("unified", "cgroup.threads") if self.v2 else (
            self._read("pids", "tasks") or self._read("cpu", "tasks") or self._read("memory", "tasks"))
        return [int(t) for t in (raw or b"").split() if t.isdigit()]

    def age(self) -> float:
        return max(0.0, time.clock_gettime(time.CLOCK_BOOTTIME) - self.started)


def parse_cpu_list(text: str) -> set[int]:
    """ "0-3,8,10-11" -> {0, 1, 2, 3, 8, 10, 11} """
    out: set[int] = set()
    for part in text.split(","):
        if not part:
            continue
        lo, _, hi = part.partition("-")
        out.update(range(int(lo), int(hi or lo) + 1))
    return out


# --- the texts -------------------------------------------------------------------------
def meminfo(lim: Limits) -> bytes:
    m = lim.memory()
    kb = {k: v // 1024 for k, v in m.items()}
    free = kb["total"] - kb["used"]
    available = min(kb["total"], free + kb["inactive_file"] + kb["active_file"] // 2)
    rows = [
        ("MemTotal", kb["total"]), ("MemFree", free), ("MemAvailable", available),
        ("Buffers", 0), ("Cached", kb["cache"]), ("SwapCached", 0),
        ("Active", kb["active_anon"] + kb["active_file"]),
        ("Inactive", kb["inactive_anon"] + kb["inactive_file"]),
        ("Active(anon)", kb["active_anon"]), ("Inactive(anon)", kb["inactive_anon"]),
        ("Active(file)", kb["active_file"]), ("Inactive(file)", kb["inactive_file"]),
        ("Unevictable", 0), ("Mlocked", 0),
        ("SwapTotal", kb["swap_total"]), ("SwapFree", kb["swap_total"] - kb["swap_used"]),
        ("Dirty", 0), ("Writeback", 0), ("AnonPages", kb["anon"]), ("Mapped", 0),
        ("Shmem", kb["shmem"]), ("KReclaimable", 0), ("Slab", 0), ("SReclaimable", 0),
        ("SUnreclaim", 0), ("KernelStack", 0), ("PageTables", 0), ("NFS_Unstable", 0),
        ("Bounce", 0), ("WritebackTmp", 0), ("CommitLimit", kb["total"] // 2 + kb["swap_total"]),
        ("Committed_AS", kb["used"]), ("VmallocTotal", 34359738367), ("VmallocUsed", 0),
        ("VmallocChunk", 0), ("HardwareCorrupted", 0), ("AnonHugePages", 0),
        ("HugePages_Total", None), ("HugePages_Free", None), ("HugePages_Rsvd", None),
        ("HugePages_Surp", None), ("Hugepagesize", 2048), ("Hugetlb", 0),
    ]
    out = []
    for name, v in rows:
        if v is None:
            out.append(f"{name + ':':<16}{0:>8}")
        else:
            out.append(f"{name + ':':<16}{max(0, v):>8} kB")
    return ("\n".join(out) + "\n").encode()


def cpuinfo(lim: Limits) -> bytes:
    n = len(lim.cpu_list())
    blocks = []
    for i in range(n):
        src = lim.cpuinfo[i % len(lim.cpuinfo)] if lim.cpuinfo else b"processor\t: 0"
        lines = []
        for line in src.split(b"\n"):
            key = line.split(b":", 1)[0].strip()
            if key == b"processor":
                line = b"processor\t: %d" % i
            elif key in (b"core id", b"apicid", b"initial apicid"):
                line = line.split(b":", 1)[0] + b": %d" % i
            elif key in (b"siblings", b"cpu cores"):
                line = line.split(b":", 1)[0] + b": %d" % n
            elif key == b"physical id":
                line = line.split(b":", 1)[0] + b": 0"
            lines.append(line)
        blocks.append(b"\n".join(lines))
    return b"\n\n".join(blocks) + b"\n\n"


def stat(lim: Limits) -> bytes:
    cpus = lim.cpu_list()
    n = len(cpus)
    user, system = lim.cpu_time()
    idle = max(0, int(lim.age() * _CLK_TCK) * n - user - system)
    per = [(user // n, system // n, idle // n) for _ in range(n)]

    def line(name: str, u: int, s: int, i: int) -> str:
        return f"{name} {u} 0 {s} {i} 0 0 0 0 0 0"

    tasks = lim.tasks()
    now = time.time()
    btime = int(now - time.clock_gettime(time.CLOCK_BOOTTIME) + lim.started)
    rows = [line("cpu ", user, system, idle)]
    rows += [line(f"cpu{i}", u, s, i_) for i, (u, s, i_) in enumerate(per)]
    rows += ["intr 0", "ctxt 0", f"btime {btime}", f"processes {len(tasks)}",
             f"procs_running {_running(lim, tasks)}", "procs_blocked 0", "softirq 0 0 0 0 0 0 0 0 0 0 0"]
    return ("\n".join(rows) + "\n").encode()


def loadavg(lim: Limits) -> bytes:
    tasks = lim.tasks()
    last = max(tasks, default=0)
    return f"0.00 0.00 0.00 {_running(lim, tasks)}/{len(tasks)} {last}\n".encode()


def uptime(lim: Limits) -> bytes:
    """The container's age, and the idle time of its CPUs over it."""
    age = lim.age()
    user, system = lim.cpu_time()
    idle = max(0.0, age * len(lim.cpu_list()) - (user + system) / _CLK_TCK)
    return f"{age:.2f} {idle:.2f}\n".encode()


def swaps(lim: Limits) -> bytes:
    return b"Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n"


def cpu_range(lim: Limits) -> bytes:
    n = len(lim.cpu_list())
    return (b"0\n" if n == 1 else b"0-%d\n" % (n - 1))


def _running(lim: Limits, tasks: list[int]) -> int:
    """Tasks in state R (host tids, read through the sentry's procfs)."""
    n = 0
    for tid in tasks[:4096]:
        try:
            fd = ownproc.open_(f"{tid}/stat", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            data = os.read(fd, 512)
        except OSError:
            continue
        finally:
            os.close(fd)
        if data[data.rfind(b")") + 2:][:1] == b"R":
            n += 1
    return max(n, 1)


# Below the procfs or sysfs root -> the text maker.
PROC_FILES = {"meminfo": meminfo, "cpuinfo": cpuinfo, "stat": stat, "loadavg": loadavg,
              "swaps": swaps, "uptime": uptime}
SYS_FILES = {"devices/system/cpu/online": cpu_range, "devices/system/cpu/possible": cpu_range,
             "devices/system/cpu/present": cpu_range}


def maker(table: dict, rel: list[bytes] | None):  # type: ignore[type-arg,no-untyped-def]
    if not rel:
        return None
    return table.get(b"/".join(rel).decode(errors="replace"))


def as_file(name: str, data: bytes) -> int:
    """A sealed, read-only memfd holding data: our fd."""
    try:
        fd = os.memfd_create(name, os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    except OSError as e:
        raise SysError(e.errno or errno.ENOMEM, "memfd_create") from None
    try:
        os.write(fd, data)
        fcntl.fcntl(fd, _F_ADD_SEALS, _F_SEAL_ALL)
        ro = ownproc.open_(ownproc.self_fd(fd), os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        raise SysError(e.errno or errno.EIO, "synthesized file") from None
    finally:
        os.close(fd)
    return ro
