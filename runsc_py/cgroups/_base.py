"""The manager interface and what v1 and v2 share."""

from __future__ import annotations

import os

from runsc_py.errors import RuntimeFailure, describe_oserror
from runsc_py.log import get_logger
from runsc_py.signals import SIGKILL

from . import _fs

TYPE_CHECKING = False  # typing.TYPE_CHECKING, whose import the short commands do without (test_startup.py)
if TYPE_CHECKING:
    from typing import Any

log = get_logger(__name__)  # (runsc_py/log.py: no `logging` import unless a record is written)

FREEZE_TIMEOUT = 2.0     # seconds to reach FROZEN / frozen 1
DESTROY_TIMEOUT = 2.0    # seconds of EBUSY retries in rmdir


class CgroupManager:
    """One container's cgroup, in every hierarchy.

    Build it with for_container() (new container) or from_dict() (saved
    state); the concrete class is V1Manager (legacy/hybrid) or V2Manager.
    """

    mode: str = ""

    def __init__(self, path: str, rootless: bool | None = None) -> None:
        self.path = path        # relative to each hierarchy root, e.g. "/runsc-py/abc"
        self.rootless = os.geteuid() != 0 if rootless is None else rootless
        # allow rules for linux.devices, appended with runc's defaults to any
        # device rule list given to set() (v1)
        self.spec_devices: list[dict[str, Any]] = []

    # -- construction -------------------------------------------------------
    @classmethod
    def for_container(cls, cid: str, linux: dict[str, Any] | None, systemd: bool) -> "CgroupManager":
        from ._mountinfo import detect
        from .systemd_path import resolve

        from .devices import spec_device_rules

        rel = resolve(cid, (linux or {}).get("cgroupsPath") or "", systemd)
        h = detect()
        mgr: CgroupManager
        if h.mode == "v1":
            from .v1 import V1Manager
            mgr = V1Manager.at(h.v1, h.unified, rel)
        elif h.mode == "v2":
            from .v2 import V2Manager
            mgr = V2Manager.at(h.unified, rel)
        else:
            raise RuntimeFailure("cgroup: no cgroup filesystem is mounted (see /proc/self/mountinfo)")
        mgr.spec_devices = spec_device_rules(linux)
        return mgr

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "CgroupManager":
        mode = d.get("mode")
        mgr: CgroupManager
        if mode == "v1":
            from .v1 import V1Manager
            mgr = V1Manager(str(d.get("path", "")), dict(d.get("paths") or {}), str(d.get("unified") or ""))
        elif mode == "v2":
            from .v2 import V2Manager
            mgr = V2Manager(str(d.get("path", "")), str(d.get("unified") or ""))
        else:
            raise RuntimeFailure(f"cgroup: unknown cgroup mode {mode!r} in state")
        mgr.spec_devices = list(d.get("specDevices") or [])
        return mgr

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    # -- the operations (implemented per version) --------------------------
    def create(self) -> None:
        raise NotImplementedError

    def apply(self, pid: int) -> None:
        raise NotImplementedError

    def set(self, resources: dict[str, Any]) -> None:
        raise NotImplementedError

    def freeze(self) -> None:
        raise NotImplementedError

    def thaw(self) -> None:
        raise NotImplementedError

    def is_frozen(self) -> bool:
        raise NotImplementedError

    def stats(self) -> dict[str, Any]:
        raise NotImplementedError

    def _pids_dir(self) -> str:
        raise NotImplementedError

    def _dirs(self) -> list[tuple[str, bool]]:
        """(directory, required) for every hierarchy, leaf level."""
        raise NotImplementedError

    # -- shared -------------------------------------------------------------
    def _fail(self, msg: str, required: bool = True) -> None:
        """An error as root; a warning when rootless or for optional hierarchies."""
        if required and not self.rootless:
            raise RuntimeFailure(msg)
        log.warning("%s", msg)

    def _write(self, path: str, value: str, required: bool = True) -> None:
        try:
            _fs.write_file(path, value)
        except RuntimeFailure as e:
            log.debug("cgroup: writing %r to %s failed", value, path)
            self._fail(str(e), required)

    def _mkdir(self, d: str, required: bool = True) -> None:
        try:
            os.makedirs(d, mode=0o755, exist_ok=True)
        except OSError as e:
            self._fail(describe_oserror(f"cgroup: mkdir {d}", e), required)

    def pids(self) -> list[int]:
        d = self._pids_dir()
        return _fs.procs_recursive(d) if d else []

    def _refuse_self_freeze(self) -> None:
        """Freezing the cgroup we run in would freeze us for good."""
        if os.getpid() in self.pids():
            raise RuntimeFailure(f"cgroup: refusing to freeze {self._pids_dir()}: "
                                 f"the calling process (pid {os.getpid()}) is in it")

    def kill_all(self, sig: int) -> None:
        """Signal every process of the cgroup with the cgroup frozen.

        Freezing first means nothing can fork between listing and signalling.
        A container that was paused stays paused, except for SIGKILL, which
        needs the processes to run to die.
        """
        d = self._pids_dir()
        if not d or not os.path.isdir(d):
            return              # already destroyed (or never created): nothing to signal
        me = os.getpid()
        present = self.pids()
        if not present:
            return              # nothing to signal, and nothing in it can fork (delete's usual case)
        inside = me in present
        was_frozen = self.is_frozen()
        froze = False
        if inside:
            # Called from a process of the container: never freeze ourselves;
            # signal the others, then ourselves.
            log.warning("kill: pid %d is in the cgroup it signals; not freezing it", me)
        else:
            try:
                self.freeze()
                froze = True
            except RuntimeFailure as e:
                log.warning("kill: cannot freeze the cgroup, signalling anyway: %s", e)
        try:
            pids = [p for p in self.pids() if p != me] + ([me] if inside else [])
            for pid in pids:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
                except OSError as e:
                    log.warning("kill: pid %d: %s", pid, e)
        finally:
            if froze and (not was_frozen or sig == SIGKILL):
                try:
                    self.thaw()
                except RuntimeFailure as e:
                    log.warning("kill: cannot thaw the cgroup: %s", e)

    def destroy(self) -> None:
        """Remove the leaf (and child cgroups) everywhere; idempotent."""
        for d, required in self._dirs():
            if not d:
                continue
            try:
                _fs.rmdir_tree(d, DESTROY_TIMEOUT)
            except OSError as e:
                self._fail(describe_oserror(f"cgroup: remove {d}", e), required)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.to_dict()!r})"


def opt_int(section: dict[str, Any] | None, key: str) -> int | None:
    """An integer resource value, or None when absent/null."""
    if not section:
        return None
    v = section.get(key)
    if v is None or isinstance(v, bool):
        return None
    try:
        return int(v)
    except (TypeError, ValueError):
        raise RuntimeFailure(f"cgroup: invalid value for {key}: {v!r}") from None


def hugepage_sizes() -> list[str]:
    """Supported huge page sizes in cgroup file naming: "2MB", "1GB", "64KB"."""
    try:
        names = os.listdir("/sys/kernel/mm/hugepages")
    except OSError:
        return []
    out: list[str] = []
    for n in names:
        if not (n.startswith("hugepages-") and n.endswith("kB")):
            continue
        try:
            size = int(n[len("hugepages-"):-2])
        except ValueError:
            continue
        units = ["KB", "MB", "GB", "TB", "PB"]
        i = 0
        while size >= 1024 and size % 1024 == 0 and i < len(units) - 1:
            size //= 1024
            i += 1
        out.append(f"{size}{units[i]}")
    return sorted(out)


def blkio_entries(text: str | None) -> list[dict[str, Any]]:
    """v1 blkio "8:0 Read 123" lines -> runc BlkioEntry dicts (Total lines dropped)."""
    out: list[dict[str, Any]] = []
    for line in (text or "").splitlines():
        parts = line.split()
        if len(parts) != 3 or ":" not in parts[0]:
            continue
        major, _, minor = parts[0].partition(":")
        try:
            out.append({"major": int(major), "minor": int(minor), "op": parts[1], "value": int(parts[2])})
        except ValueError:
            continue
    return out
