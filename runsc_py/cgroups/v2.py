"""cgroup v2 (unified) manager: one directory, controllers enabled from above."""

from __future__ import annotations

import os

from runsc_py.errors import RuntimeFailure
from runsc_py.log import get_logger
from runsc_py.record import Record
from runsc_py.signals import SIGKILL

from . import _fs
from ._base import FREEZE_TIMEOUT, CgroupManager, hugepage_sizes, opt_int

TYPE_CHECKING = False  # typing.TYPE_CHECKING, whose import the short commands do without (test_startup.py)
if TYPE_CHECKING:
    from typing import Any

log = get_logger(__name__)  # (runsc_py/log.py: no `logging` import unless a record is written)


# -- translation of OCI resources (pure) -------------------------------------

def _go_div(a: int, b: int) -> int:
    """Integer division truncating toward zero, as Go does."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def shares_to_weight(shares: int) -> int:
    """runc's cpu.shares (2..262144) -> cpu.weight (1..10000); 0 stays 0 (unset)."""
    if shares == 0:
        return 0
    return 1 + _go_div((shares - 2) * 9999, 262142)


def blkio_weight_to_io_weight(weight: int) -> int:
    """runc's blkio.weight (10..1000) -> io.weight (1..10000); 0 stays 0."""
    if weight == 0:
        return 0
    return 1 + _go_div((weight - 10) * 9999, 990)


def swap_to_v2(swap: int, memory: int) -> int:
    """OCI memory.swap is memory+swap; cgroup v2 memory.swap.max is swap only.

    Returns -1 for "max" and 0 for "leave unset" (runc's
    ConvertMemorySwapToCgroupV2Value).
    """
    if memory == -1 and swap == 0:
        return -1
    if swap in (-1, 0):
        return swap
    if memory in (0, -1):
        raise RuntimeFailure("cgroup: unable to set swap limit without memory limit")
    if memory < 0:
        raise RuntimeFailure(f"cgroup: invalid memory value: {memory}")
    if swap < memory:
        raise RuntimeFailure("cgroup: memory+swap limit should be >= memory limit")
    return swap - memory


def _num(v: int) -> str:
    """0 -> "" (unset), negative -> "max", else the number."""
    if v == 0:
        return ""
    return "max" if v < 0 else str(v)


class Write(Record, frozen=True):
    """One value to write; alts are (file, value) tried in order, the first
    existing file wins.  missing_ok: skip silently if no file exists."""

    alts: tuple[tuple[str, str], ...]
    missing_ok: bool = False

    @property
    def file(self) -> str:
        return self.alts[-1][0]

    @property
    def value(self) -> str:
        return self.alts[-1][1]


def _w(f: str, v: str, missing_ok: bool = False) -> Write:
    return Write(((f, v),), missing_ok)


def plan(resources: dict[str, Any]) -> list[Write]:
    """OCI LinuxResources -> the ordered cgroup v2 file writes.

    Unsupported settings (devices, realtime, swappiness, OOM-killer, net
    classes) are logged and skipped.  "unified" entries come last so they win.
    """
    r = resources or {}
    out: list[Write] = []
    cpu = r.get("cpu") or {}
    mem = r.get("memory") or {}

    if cpu.get("cpus"):
        out.append(_w("cpuset.cpus", str(cpu["cpus"])))
    if cpu.get("mems"):
        out.append(_w("cpuset.mems", str(cpu["mems"])))

    if mem:
        limit = opt_int(mem, "limit") or 0
        swap = opt_int(mem, "swap") or 0
        swap2 = swap_to_v2(swap, limit)
        swap_s = _num(swap2)
        if swap_s == "" and swap2 == 0 and swap > 0:
            swap_s = "0"          # memory == memory+swap: no swap at all
        if swap_s:
            # Without swap accounting, "max" and "0" are what we have anyway.
            out.append(_w("memory.swap.max", swap_s, missing_ok=swap_s in ("max", "0")))
        if _num(limit):
            out.append(_w("memory.max", _num(limit)))
        reservation = opt_int(mem, "reservation") or 0
        if _num(reservation):
            out.append(_w("memory.low", _num(reservation)))
        swappiness = opt_int(mem, "swappiness")
        if swappiness is not None and swappiness != -1 and swappiness < (1 << 63):
            log.warning("cgroup: memory.swappiness is not supported with cgroup v2; ignoring it")
        if mem.get("disableOOMKiller"):
            log.warning("cgroup: disableOOMKiller is not supported with cgroup v2; ignoring it")
        if opt_int(mem, "kernel") or opt_int(mem, "kernelTCP"):
            log.debug("cgroup: memory.kernel/kernelTCP are not supported with cgroup v2; ignoring them")

    if cpu:
        idle = opt_int(cpu, "idle")
        if idle is not None:
            out.append(_w("cpu.idle", str(idle)))
        weight = shares_to_weight(opt_int(cpu, "shares") or 0)
        if weight:
            out.append(_w("cpu.weight", str(weight)))
        quota = opt_int(cpu, "quota") or 0
        period = opt_int(cpu, "period") or 0
        if quota or period:
            s = str(quota) if quota > 0 else "max"
            if period:
                s += f" {period}"
            out.append(_w("cpu.max", s))
        burst = opt_int(cpu, "burst")
        if burst is not None:
            out.append(_w("cpu.max.burst", str(burst)))
        if opt_int(cpu, "realtimeRuntime") or opt_int(cpu, "realtimePeriod"):
            log.warning("cgroup: realtime CPU limits are not supported with cgroup v2; ignoring them")

    pids_limit = opt_int(r.get("pids"), "limit")
    if pids_limit is not None:
        # runtime-spec 1.3 / runc 1.4: negative = "max", 0 is a real limit.
        out.append(_w("pids.max", "max" if pids_limit < 0 else str(pids_limit)))

    bio = r.get("blockIO") or {}
    bw = opt_int(bio, "weight") or 0
    if bw:
        out.append(Write((("io.bfq.weight", str(bw)), ("io.weight", str(blkio_weight_to_io_weight(bw))))))
    for wd in bio.get("weightDevice") or []:
        if wd.get("weight"):
            dev = f"{int(wd['major'])}:{int(wd['minor'])}"
            out.append(Write((("io.bfq.weight", f"{dev} {int(wd['weight'])}"),
                              ("io.weight", f"{dev} {blkio_weight_to_io_weight(int(wd['weight']))}"))))
    for key, name in (("throttleReadBpsDevice", "rbps"), ("throttleWriteBpsDevice", "wbps"),
                      ("throttleReadIOPSDevice", "riops"), ("throttleWriteIOPSDevice", "wiops")):
        for dev in bio.get(key) or []:
            out.append(_w("io.max", f"{int(dev['major'])}:{int(dev['minor'])} {name}={int(dev['rate'])}"))

    for h in r.get("hugepageLimits") or []:
        out.append(_w(f"hugetlb.{h['pageSize']}.max", str(int(h["limit"]))))

    if r.get("devices"):
        log.warning("cgroup: device rules need an eBPF program with cgroup v2, which is not "
                    "implemented; ignoring linux.resources.devices")
    if r.get("network"):
        log.warning("cgroup: network classID/priorities are not supported with cgroup v2; ignoring them")
    if r.get("rdma"):
        log.warning("cgroup: rdma limits are not supported; ignoring them")

    for key, value in (r.get("unified") or {}).items():
        if not key or "/" in key or key.startswith("."):
            raise RuntimeFailure(f"cgroup: unified resource {key!r} must be a file name (no slashes)")
        out.append(_w(key, str(value)))
    return out


# -- the manager ------------------------------------------------------------

class V2Manager(CgroupManager):
    mode = "v2"

    def __init__(self, path: str, unified: str, rootless: bool | None = None) -> None:
        super().__init__(path, rootless)
        self.unified = unified      # the leaf directory

    @classmethod
    def at(cls, mount: str, rel: str) -> "V2Manager":
        return cls(rel, os.path.join(mount, rel.lstrip("/")))

    def to_dict(self) -> dict[str, Any]:
        return {"mode": "v2", "path": self.path, "paths": {"": self.unified}, "unified": self.unified}

    def _dirs(self) -> list[tuple[str, bool]]:
        return [(self.unified, True)]

    def _pids_dir(self) -> str:
        return self.unified

    def _mount(self) -> str:
        sub = self.path.strip("/")
        if sub and self.unified.endswith("/" + sub):
            return self.unified[:-len(sub) - 1] or "/"
        return os.path.dirname(self.unified)

    # -- create / apply -----------------------------------------------------
    def _enable_controllers(self, d: str) -> None:
        """Enable in d/cgroup.subtree_control every controller d has."""
        avail = (_fs.read_str(os.path.join(d, "cgroup.controllers")) or "").split()
        enabled = set((_fs.read_str(os.path.join(d, "cgroup.subtree_control")) or "").split())
        for c in avail:
            if c in enabled:
                continue
            try:
                _fs.write_file(os.path.join(d, "cgroup.subtree_control"), f"+{c}")
            except RuntimeFailure as e:
                # Typically EBUSY: d has processes of its own.  set() reports
                # it if a resource of this controller is actually requested.
                log.debug("cgroup: enabling %s: %s", c, e)

    def create(self) -> None:
        cur = self._mount()
        for comp in [c for c in self.path.split("/") if c]:
            self._enable_controllers(cur)
            cur = os.path.join(cur, comp)
            self._mkdir(cur)

    def apply(self, pid: int) -> None:
        self._write(os.path.join(self.unified, "cgroup.procs"), str(pid))

    # -- set ----------------------------------------------------------------
    def set(self, resources: dict[str, Any]) -> None:
        for w in plan(resources):
            for f, v in w.alts:
                p = os.path.join(self.unified, f)
                if os.path.exists(p):
                    self._write(p, v)
                    break
            else:
                if w.missing_ok:
                    log.debug("cgroup: %s does not exist; skipping", w.file)
                    continue
                p = os.path.join(self.unified, w.file)
                ctl = w.file.split(".", 1)[0]
                have = (_fs.read_str(os.path.join(self.unified, "cgroup.controllers")) or "").split()
                why = ("not supported by this kernel" if ctl in have else
                       f"the {ctl} controller is not enabled for this cgroup")
                self._fail(f"cgroup: write {p}: no such file ({why})")

    # -- freezer ------------------------------------------------------------
    def _frozen_event(self) -> int:
        return _fs.read_kv(os.path.join(self.unified, "cgroup.events")).get("frozen", -1)

    def is_frozen(self) -> bool:
        return _fs.read_str(os.path.join(self.unified, "cgroup.freeze")) == "1"

    def freeze(self) -> None:
        self._refuse_self_freeze()
        _fs.write_file(os.path.join(self.unified, "cgroup.freeze"), "1")
        if not _fs.wait_until(lambda: self._frozen_event() == 1, FREEZE_TIMEOUT):
            try:
                _fs.write_file(os.path.join(self.unified, "cgroup.freeze"), "0")
            except RuntimeFailure as e:
                log.warning("%s", e)
            raise RuntimeFailure(f"cgroup: freeze: {self.unified}/cgroup.events not frozen "
                                 f"after {FREEZE_TIMEOUT:g}s")

    def thaw(self) -> None:
        _fs.write_file(os.path.join(self.unified, "cgroup.freeze"), "0")
        if not _fs.wait_until(lambda: self._frozen_event() != 1, FREEZE_TIMEOUT):
            raise RuntimeFailure(f"cgroup: thaw: {self.unified}/cgroup.events still frozen "
                                 f"after {FREEZE_TIMEOUT:g}s")

    def kill_all(self, sig: int) -> None:
        # cgroup.kill (5.14+) kills the whole subtree atomically, frozen or not.
        if not os.path.isdir(self.unified):
            return
        if sig == SIGKILL:
            f = os.path.join(self.unified, "cgroup.kill")
            if os.path.exists(f):
                try:
                    _fs.write_file(f, "1")
                    return
                except RuntimeFailure as e:
                    log.debug("%s; falling back to signalling each process", e)
        super().kill_all(sig)

    # -- stats --------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        def j(f: str) -> str:
            return os.path.join(self.unified, f)
        cs = _fs.read_kv(j("cpu.stat"))
        cpu = {"usage": {"total": cs.get("usage_usec", 0) * 1000, "percpu": [],
                         "kernel": cs.get("system_usec", 0) * 1000, "user": cs.get("user_usec", 0) * 1000},
               "throttling": {"periods": cs.get("nr_periods", 0), "throttledPeriods": cs.get("nr_throttled", 0),
                              "throttledTime": cs.get("throttled_usec", 0) * 1000}}

        raw = _fs.read_kv(j("memory.stat"))
        mem_cur = _fs.read_uint(j("memory.current"))
        mem_max = _fs.read_uint(j("memory.max"))
        events = _fs.read_kv(j("memory.events"))
        usage = {"usage": mem_cur, "max": _fs.read_uint(j("memory.peak")), "limit": mem_max,
                 "failcnt": events.get("max", 0)}
        # Like runc: v1-compatible memory+swap figures.
        swap_cur = _fs.read_uint(j("memory.swap.current"))
        swap_max = _fs.read_uint(j("memory.swap.max"))
        unl = _fs.UNLIMITED_U64
        swap = {"usage": swap_cur + mem_cur if os.path.exists(j("memory.swap.current")) else 0,
                "max": _fs.read_uint(j("memory.swap.peak")),
                "limit": unl if unl in (swap_max, mem_max) else swap_max + mem_max,
                "failcnt": _fs.read_kv(j("memory.swap.events")).get("max", 0)}
        memory = {"usage": usage, "swap": swap, "cache": raw.get("file", 0), "raw": raw}

        pids = {"current": _fs.read_uint(j("pids.current")), "limit": _fs.read_uint(j("pids.max"), max_value=0)}

        blkio: dict[str, Any] = {}
        io = _fs.read_str(j("io.stat"))
        if io is not None:
            sb: list[dict[str, Any]] = []
            sd: list[dict[str, Any]] = []
            for line in io.splitlines():
                parts = line.split()
                if not parts or ":" not in parts[0]:
                    continue
                major, _, minor = parts[0].partition(":")
                kv = dict(p.split("=", 1) for p in parts[1:] if "=" in p)
                for key, op, lst in (("rbytes", "Read", sb), ("wbytes", "Write", sb),
                                     ("rios", "Read", sd), ("wios", "Write", sd)):
                    if key in kv:
                        lst.append({"major": int(major), "minor": int(minor), "op": op, "value": int(kv[key])})
            blkio = {"ioServiceBytesRecursive": sb, "ioServicedRecursive": sd}

        hugetlb: dict[str, Any] = {}
        for size in hugepage_sizes():
            if os.path.exists(j(f"hugetlb.{size}.current")):
                hugetlb[size] = {"usage": _fs.read_uint(j(f"hugetlb.{size}.current")), "max": 0,
                                 "failcnt": _fs.read_kv(j(f"hugetlb.{size}.events")).get("max", 0)}
        return {"cpu": cpu, "memory": memory, "pids": pids, "blkio": blkio, "hugetlb": hugetlb}
