"""Container cgroups: v1 (legacy/hybrid) and v2 (unified), through cgroupfs.

    mgr = CgroupManager.for_container(cid, spec["linux"], systemd=False)
    mgr.create()                 # mkdir everywhere (cpuset seeded)
    mgr.set(linux["resources"])  # limits
    mgr.apply(pid)               # join
    state.cgroup = mgr.to_dict() # ... later: CgroupManager.from_dict(state.cgroup)

The layout is discovered from /proc/self/mountinfo (see detect()).  With
--systemd-cgroup the "slice:prefix:name" path is expanded as systemd would,
but the directories are still made through cgroupfs: no systemd D-Bus.
"""

from __future__ import annotations

from ._base import CgroupManager
from ._mountinfo import Hierarchies, detect
from .systemd_path import expand_slice, resolve, systemd_path

TYPE_CHECKING = False  # typing.TYPE_CHECKING, whose import the short commands do without (test_startup.py)
if TYPE_CHECKING:
    from .v1 import V1Manager
    from .v2 import V2Manager

__all__ = ["CgroupManager", "Hierarchies", "V1Manager", "V2Manager", "detect", "expand_slice",
           "resolve", "systemd_path"]


def __getattr__(name: str) -> object:
    # v1/v2 are imported on first use only: the CLI starts often.
    if name == "V1Manager":
        from .v1 import V1Manager
        return V1Manager
    if name == "V2Manager":
        from .v2 import V2Manager
        return V2Manager
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
