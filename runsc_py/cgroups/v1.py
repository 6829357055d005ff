"""cgroup v1 (legacy and hybrid) manager: one directory per hierarchy."""

from __future__ import annotations

import os
import time

from runsc_py.errors import RuntimeFailure, describe_oserror
from runsc_py.log import get_logger

from . import _fs
from ._base import FREEZE_TIMEOUT, CgroupManager, blkio_entries, hugepage_sizes, opt_int
from .devices import sandboxed, with_defaults

TYPE_CHECKING = False  # typing.TYPE_CHECKING, whose import the short commands do without (test_startup.py)
if TYPE_CHECKING:
    from typing import Any

log = get_logger(__name__)  # (runsc_py/log.py: no `logging` import unless a record is written)

_CLK_TCK = os.sysconf("SC_CLK_TCK")


def device_rule(rule: dict[str, Any]) -> tuple[str, str]:
    """OCI LinuxDeviceCgroup -> (devices.allow|devices.deny, "c 1:3 rwm")."""
    dtype = rule.get("type") or "a"
    if dtype not in ("a", "b", "c"):
        raise RuntimeFailure(f"cgroup: invalid device rule type {dtype!r}")
    access = rule.get("access") or "rwm"
    if not access or any(c not in "rwm" for c in access):
        raise RuntimeFailure(f"cgroup: invalid device rule access {access!r}")

    def num(v: Any) -> str:
        return "*" if v is None or int(v) < 0 else str(int(v))

    line = f"{dtype} {num(rule.get('major'))}:{num(rule.get('minor'))} {access}"
    return ("devices.allow" if rule.get("allow") else "devices.deny"), line


class V1Manager(CgroupManager):
    mode = "v1"

    def __init__(self, path: str, paths: dict[str, str], unified: str = "",
                 rootless: bool | None = None) -> None:
        super().__init__(path, rootless)
        self.paths = paths          # controller ("cpu", "name=systemd", ...) -> leaf dir
        self.unified = unified      # hybrid: the leaf in the cgroup2 hierarchy, else ""

    @classmethod
    def at(cls, mounts: dict[str, str], unified_mount: str, rel: str) -> "V1Manager":
        sub = rel.lstrip("/")
        paths = {c: os.path.join(m, sub) for c, m in sorted(mounts.items())}
        return cls(rel, paths, os.path.join(unified_mount, sub) if unified_mount else "")

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"mode": "v1", "path": self.path, "paths": dict(self.paths), "unified": self.unified}
        if self.spec_devices:
            d["specDevices"] = self.spec_devices
        return d

    # -- helpers ------------------------------------------------------------
    def _unique_dirs(self) -> list[str]:
        seen: list[str] = []
        for d in self.paths.values():
            if d not in seen:
                seen.append(d)
        return seen

    def _dirs(self) -> list[tuple[str, bool]]:
        out = [(d, True) for d in self._unique_dirs()]
        if self.unified:
            out.append((self.unified, False))
        return out

    def _ctl(self, controller: str, what: str) -> str | None:
        d = self.paths.get(controller)
        if not d:
            log.warning("cgroup: %s controller is not mounted; ignoring %s", controller, what)
        return d

    def _pids_dir(self) -> str:
        for c in ("pids", "memory", "freezer", "cpu", "devices"):
            if c in self.paths:
                return self.paths[c]
        dirs = self._unique_dirs()
        return dirs[0] if dirs else ""

    # -- create / apply -----------------------------------------------------
    def create(self) -> None:
        cpuset = self.paths.get("cpuset")
        for d in self._unique_dirs():
            if d == cpuset:
                self._create_cpuset(d)
            else:
                self._mkdir(d)
        if self.unified:
            self._mkdir(self.unified, required=False)

    def _create_cpuset(self, leaf: str) -> None:
        """mkdir level by level; an empty cpuset.cpus/mems is copied from the parent.

        A v1 cpuset cgroup starts with empty cpus and mems, and no task can
        join it until they are set.
        """
        sub = self.path.strip("/")
        mount = leaf[:len(leaf) - len(sub)].rstrip("/") if sub and leaf.endswith(sub) else os.path.dirname(leaf)
        cur = mount
        for comp in [c for c in sub.split("/") if c]:
            parent, cur = cur, os.path.join(cur, comp)
            try:
                os.mkdir(cur, 0o755)
            except FileExistsError:
                pass
            except OSError as e:
                self._fail(describe_oserror(f"cgroup: mkdir {cur}", e))
                return
            for f in ("cpuset.cpus", "cpuset.mems"):
                if _fs.read_str(os.path.join(cur, f)) == "":
                    value = _fs.read_str(os.path.join(parent, f)) or ""
                    if value:
                        self._write(os.path.join(cur, f), value)

    def apply(self, pid: int) -> None:
        for d in self._unique_dirs():
            self._write(os.path.join(d, "cgroup.procs"), str(pid))
        if self.unified:
            self._write(os.path.join(self.unified, "cgroup.procs"), str(pid), required=False)

    # -- set ----------------------------------------------------------------
    def set(self, resources: dict[str, Any]) -> None:
        r = resources or {}
        if r.get("unified"):
            self._fail("cgroup: unified resources are only supported with cgroup v2")
        cpu = r.get("cpu") or {}
        self._set_cpuset(cpu)
        if "devices" in r:  # create always sets them; `update` only when given
            self._set_devices(r["devices"] or [])
        self._set_memory(r.get("memory") or {})
        self._set_cpu(cpu)
        self._set_pids(r.get("pids") or {})
        self._set_blkio(r.get("blockIO") or {})
        self._set_hugetlb(r.get("hugepageLimits") or [])
        self._set_network(r.get("network") or {})
        if r.get("rdma"):
            log.warning("cgroup: rdma limits are not supported; ignoring them")

    def _set_cpuset(self, cpu: dict[str, Any]) -> None:
        if not (cpu.get("cpus") or cpu.get("mems")):
            return
        d = self._ctl("cpuset", "cpu.cpus/cpu.mems")
        if not d:
            return
        # mems before cpus does not matter to the kernel; both must be subsets of the parent.
        for key, f in (("cpus", "cpuset.cpus"), ("mems", "cpuset.mems")):
            if cpu.get(key):
                self._write(os.path.join(d, f), str(cpu[key]))

    def _set_devices(self, rules: list[dict[str, Any]]) -> None:
        d = self._ctl("devices", "device rules")
        if not d:
            return
        # runc appends its default allowed devices and the spec's devices;
        # then the sandbox keeps only the devices it allows (devices.py).
        for rule in sandboxed(with_defaults(rules, self.spec_devices)):
            f, line = device_rule(rule)
            self._write(os.path.join(d, f), line)

    def _set_memory(self, m: dict[str, Any]) -> None:
        limit = opt_int(m, "limit") or 0
        swap = opt_int(m, "swap") or 0
        reservation = opt_int(m, "reservation")
        swappiness = opt_int(m, "swappiness")
        oom_off = bool(m.get("disableOOMKiller"))
        if opt_int(m, "kernel") or opt_int(m, "kernelTCP"):
            log.debug("cgroup: memory.kernel/kernelTCP are deprecated and ignored")
        if not (limit or swap or reservation or oom_off or swappiness is not None):
            return
        d = self._ctl("memory", "memory limits")
        if not d:
            return
        lim_f = os.path.join(d, "memory.limit_in_bytes")
        sw_f = os.path.join(d, "memory.memsw.limit_in_bytes")
        has_sw = os.path.exists(sw_f)
        if limit == -1 and swap == 0 and has_sw:
            swap = -1          # unlimited memory means unlimited memory+swap
        if swap and not has_sw:
            log.warning("cgroup: swap accounting is not enabled in the kernel; ignoring memory.swap")
            swap = 0
        if limit and swap:
            # memory <= memory+swap must hold after every single write.
            cur = _fs.read_uint(lim_f)
            if swap == -1 or cur < swap:
                self._write(sw_f, str(swap))
                self._write(lim_f, str(limit))
            else:
                self._write(lim_f, str(limit))
                self._write(sw_f, str(swap))
        elif limit:
            self._write(lim_f, str(limit))
        elif swap:
            self._write(sw_f, str(swap))
        if reservation:
            self._write(os.path.join(d, "memory.soft_limit_in_bytes"), str(reservation))
        if swappiness is not None and swappiness != -1 and swappiness < (1 << 63):
            if not 0 <= swappiness <= 100:
                raise RuntimeFailure(f"cgroup: invalid memory swappiness {swappiness} (0-100)")
            self._write(os.path.join(d, "memory.swappiness"), str(swappiness))
        if oom_off:
            self._write(os.path.join(d, "memory.oom_control"), "1")

    def _set_cpu(self, cpu: dict[str, Any]) -> None:
        shares = opt_int(cpu, "shares") or 0
        quota = opt_int(cpu, "quota") or 0
        period = opt_int(cpu, "period") or 0
        burst = opt_int(cpu, "burst")
        rt_period = opt_int(cpu, "realtimePeriod") or 0
        rt_runtime = opt_int(cpu, "realtimeRuntime") or 0
        idle = opt_int(cpu, "idle")
        if not (shares or quota or period or rt_period or rt_runtime or burst is not None
                or idle is not None):
            return
        d = self._ctl("cpu", "cpu limits")
        if not d:
            return
        if shares:
            f = os.path.join(d, "cpu.shares")
            self._write(f, str(shares))
            got = _fs.read_uint(f)
            if got and got != shares:
                bound = "maximum" if shares > got else "minimum"
                self._fail(f"cgroup: the {bound} allowed cpu-shares is {got}")
        period_pending = False
        if period:
            try:
                _fs.write_file(os.path.join(d, "cpu.cfs_period_us"), str(period))
            except RuntimeFailure as e:
                # A smaller period can be refused (EINVAL) while the old quota
                # is in place; retry after the quota is written.
                if quota:
                    period_pending = True
                else:
                    self._fail(str(e))
        if quota:
            self._write(os.path.join(d, "cpu.cfs_quota_us"), str(quota))
            if period_pending:
                self._write(os.path.join(d, "cpu.cfs_period_us"), str(period))
        if burst is not None:
            self._write(os.path.join(d, "cpu.cfs_burst_us"), str(burst))
        if rt_period:
            self._write(os.path.join(d, "cpu.rt_period_us"), str(rt_period))
        if rt_runtime:
            self._write(os.path.join(d, "cpu.rt_runtime_us"), str(rt_runtime))
        if idle is not None:
            self._write(os.path.join(d, "cpu.idle"), str(idle))

    def _set_pids(self, p: dict[str, Any]) -> None:
        # runtime-spec 1.3 / runc 1.4: absent = untouched, negative = "max", 0 is a real limit.
        limit = opt_int(p, "limit")
        if limit is None:
            return
        d = self._ctl("pids", "pids.limit")
        if d:
            self._write(os.path.join(d, "pids.max"), "max" if limit < 0 else str(limit))

    def _set_blkio(self, b: dict[str, Any]) -> None:
        weight = opt_int(b, "weight") or 0
        leaf = opt_int(b, "leafWeight") or 0
        throttles = [(k, f) for k, f in (
            ("throttleReadBpsDevice", "blkio.throttle.read_bps_device"),
            ("throttleWriteBpsDevice", "blkio.throttle.write_bps_device"),
            ("throttleReadIOPSDevice", "blkio.throttle.read_iops_device"),
            ("throttleWriteIOPSDevice", "blkio.throttle.write_iops_device")) if b.get(k)]
        wdev = b.get("weightDevice") or []
        if not (weight or leaf or throttles or wdev):
            return
        d = self._ctl("blkio", "blockIO")
        if not d:
            return
        wfile = next((os.path.join(d, f) for f in ("blkio.bfq.weight", "blkio.weight")
                      if os.path.exists(os.path.join(d, f))), None)
        if weight or wdev:
            if wfile is None:
                log.warning("cgroup: no blkio weight support in the kernel (no BFQ); ignoring blockIO weights")
            else:
                if weight:
                    self._write(wfile, str(weight))
                for wd in wdev:
                    if wd.get("weight"):
                        self._write(wfile + "_device" if wfile.endswith("blkio.weight") else wfile,
                                    f"{int(wd['major'])}:{int(wd['minor'])} {int(wd['weight'])}")
        if leaf:
            self._write(os.path.join(d, "blkio.leaf_weight"), str(leaf))
        for key, f in throttles:
            for dev in b[key]:
                self._write(os.path.join(d, f), f"{int(dev['major'])}:{int(dev['minor'])} {int(dev['rate'])}")

    def _set_hugetlb(self, limits: list[dict[str, Any]]) -> None:
        if not limits:
            return
        d = self._ctl("hugetlb", "hugepageLimits")
        if not d:
            return
        for h in limits:
            self._write(os.path.join(d, f"hugetlb.{h['pageSize']}.limit_in_bytes"), str(int(h["limit"])))

    def _set_network(self, n: dict[str, Any]) -> None:
        classid = opt_int(n, "classID")
        if classid is not None:
            d = self._ctl("net_cls", "network.classID")
            if d:
                self._write(os.path.join(d, "net_cls.classid"), str(classid))
        prios = n.get("priorities") or []
        if prios:
            d = self._ctl("net_prio", "network.priorities")
            if d:
                for p in prios:
                    self._write(os.path.join(d, "net_prio.ifpriomap"), f"{p['name']} {int(p['priority'])}")

    # -- freezer ------------------------------------------------------------
    def _freezer_state(self) -> str:
        d = self.paths.get("freezer")
        if not d:
            raise RuntimeFailure("cgroup: the freezer controller is not mounted")
        return os.path.join(d, "freezer.state")

    def is_frozen(self) -> bool:
        d = self.paths.get("freezer")
        if not d:
            return False
        return (_fs.read_str(os.path.join(d, "freezer.state")) or "THAWED") != "THAWED"

    def freeze(self) -> None:
        f = self._freezer_state()
        self._refuse_self_freeze()
        # A v1 freeze can stay FREEZING while tasks keep forking: rewrite
        # FROZEN now and then, thaw briefly every so often (as runc does).
        deadline = time.monotonic() + FREEZE_TIMEOUT
        i = 0
        while True:
            if i % 50 == 49:
                _fs.write_file(f, "THAWED")
                time.sleep(0.01)
            _fs.write_file(f, "FROZEN")
            state = _fs.read_str(f)
            if state == "FROZEN":
                return
            if state != "FREEZING":
                raise RuntimeFailure(f"cgroup: freeze: unexpected state {state!r} in {f}")
            if time.monotonic() >= deadline:
                break
            i += 1
            time.sleep(min(0.0005 * (1 << min(i, 5)), 0.02))
        try:
            _fs.write_file(f, "THAWED")     # never leave it half frozen
        except RuntimeFailure as e:
            log.warning("%s", e)
        raise RuntimeFailure(f"cgroup: freeze: {f} still FREEZING after {FREEZE_TIMEOUT:g}s")

    def thaw(self) -> None:
        f = self._freezer_state()
        _fs.write_file(f, "THAWED")
        if not _fs.wait_until(lambda: _fs.read_str(f) == "THAWED", FREEZE_TIMEOUT):
            raise RuntimeFailure(f"cgroup: thaw: {f} is not THAWED after {FREEZE_TIMEOUT:g}s")

    # -- stats --------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        return {
            "cpu": self._cpu_stats(),
            "memory": self._memory_stats(),
            "pids": self._pids_stats(),
            "blkio": self._blkio_stats(),
            "hugetlb": self._hugetlb_stats(),
        }

    def _cpu_stats(self) -> dict[str, Any]:
        usage: dict[str, Any] = {"total": 0, "percpu": [], "kernel": 0, "user": 0}
        acct = self.paths.get("cpuacct")
        if acct:
            def j(f: str, _d: str = acct) -> str:
                return os.path.join(_d, f)
            usage["total"] = _fs.read_uint(j("cpuacct.usage"))
            usage["percpu"] = _fs.read_uint_list(j("cpuacct.usage_percpu"))
            if os.path.exists(j("cpuacct.usage_sys")):
                usage["kernel"] = _fs.read_uint(j("cpuacct.usage_sys"))
                usage["user"] = _fs.read_uint(j("cpuacct.usage_user"))
                usage["percpu_kernel"] = _fs.read_uint_list(j("cpuacct.usage_percpu_sys"))
                usage["percpu_user"] = _fs.read_uint_list(j("cpuacct.usage_percpu_user"))
            else:
                st = _fs.read_kv(j("cpuacct.stat"))
                ns = 1_000_000_000 // _CLK_TCK
                usage["kernel"] = st.get("system", 0) * ns
                usage["user"] = st.get("user", 0) * ns
        thr = {"periods": 0, "throttledPeriods": 0, "throttledTime": 0}
        cpu = self.paths.get("cpu")
        if cpu:
            st = _fs.read_kv(os.path.join(cpu, "cpu.stat"))
            thr = {"periods": st.get("nr_periods", 0), "throttledPeriods": st.get("nr_throttled", 0),
                   "throttledTime": st.get("throttled_time", 0)}
        return {"usage": usage, "throttling": thr}

    def _memory_stats(self) -> dict[str, Any]:
        d = self.paths.get("memory")

        def entry(prefix: str) -> dict[str, int]:
            if not d:
                return {"usage": 0, "max": 0, "limit": 0, "failcnt": 0}
            def j(f: str, _d: str = d) -> str:
                return os.path.join(_d, f"{prefix}.{f}")
            return {"usage": _fs.read_uint(j("usage_in_bytes")), "max": _fs.read_uint(j("max_usage_in_bytes")),
                    "limit": _fs.read_uint(j("limit_in_bytes")), "failcnt": _fs.read_uint(j("failcnt"))}

        raw = _fs.read_kv(os.path.join(d, "memory.stat")) if d else {}
        return {"usage": entry("memory"), "swap": entry("memory.memsw"), "kernel": entry("memory.kmem"),
                "kernelTCP": entry("memory.kmem.tcp"), "cache": raw.get("cache", 0),
                "raw": raw}

    def _pids_stats(self) -> dict[str, int]:
        d = self.paths.get("pids")
        if not d:
            return {"current": 0, "limit": 0}
        return {"current": _fs.read_uint(os.path.join(d, "pids.current")),
                "limit": _fs.read_uint(os.path.join(d, "pids.max"), max_value=0)}

    def _blkio_stats(self) -> dict[str, Any]:
        d = self.paths.get("blkio")
        if not d:
            return {}
        out: dict[str, Any] = {}
        for key, names in (
                ("ioServiceBytesRecursive", ("blkio.io_service_bytes_recursive",
                                             "blkio.bfq.io_service_bytes_recursive",
                                             "blkio.throttle.io_service_bytes_recursive")),
                ("ioServicedRecursive", ("blkio.io_serviced_recursive", "blkio.bfq.io_serviced_recursive",
                                         "blkio.throttle.io_serviced_recursive"))):
            for n in names:
                text = _fs.read_str(os.path.join(d, n))
                if text is not None:
                    out[key] = blkio_entries(text)
                    break
        return out

    def _hugetlb_stats(self) -> dict[str, Any]:
        d = self.paths.get("hugetlb")
        if not d:
            return {}
        out: dict[str, Any] = {}
        for size in hugepage_sizes():
            def j(f: str, _d: str = d, _s: str = size) -> str:
                return os.path.join(_d, f"hugetlb.{_s}.{f}")
            if os.path.exists(j("usage_in_bytes")):
                out[size] = {"usage": _fs.read_uint(j("usage_in_bytes")),
                             "max": _fs.read_uint(j("max_usage_in_bytes")),
                             "failcnt": _fs.read_uint(j("failcnt"))}
        return out
