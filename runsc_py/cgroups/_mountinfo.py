"""Discover cgroup hierarchies from /proc/self/mountinfo.

Three layouts exist in the wild:

* pure v2 ("unified"): one cgroup2 mount, usually /sys/fs/cgroup;
* hybrid: every v1 controller mounted on its own (or co-mounted, e.g.
  "cpu,cpuacct") plus an (often controller-less) cgroup2 mount, usually at
  /sys/fs/cgroup/unified;
* legacy v1: as hybrid without the cgroup2 mount.

Mount points are never hard-coded: they come from mountinfo, so nested
runtimes and unusual layouts work.
"""

from __future__ import annotations

from runsc_py.record import Record

MOUNTINFO = "/proc/self/mountinfo"
_PREFERRED_BASE = "/sys/fs/cgroup"


class CgroupMount(Record, frozen=True):
    mountpoint: str
    root: str                  # the directory of the hierarchy that is mounted
    fstype: str                # "cgroup" (v1) or "cgroup2"
    controllers: tuple[str, ...]   # v1 only: "cpu", "memory", ..., "name=systemd"


class Hierarchies(Record):
    """What detect() found: mode "v1" (legacy or hybrid) or "v2" (unified)."""

    mode: str
    v1: dict[str, str] = {}                             # controller -> mountpoint
    unified: str = ""                                   # cgroup2 mountpoint or ""


def _unescape(s: str) -> str:
    r"""mountinfo escapes space, tab, newline and backslash as \ooo."""
    if "\\" not in s:
        return s
    out: list[str] = []
    i = 0
    while i < len(s):
        if s[i] == "\\" and i + 4 <= len(s) and all(c in "01234567" for c in s[i + 1:i + 4]):
            out.append(chr(int(s[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(s[i])
            i += 1
    return "".join(out)


_V1_NON_CONTROLLER_OPTS = {"rw", "ro", "noprefix", "xattr", "clone_children", "cpuset_v2_mode",
                           "favordynmods", "none"}


def parse_mountinfo(text: str) -> list[CgroupMount]:
    """The cgroup and cgroup2 mounts of a mountinfo text, in file order."""
    mounts: list[CgroupMount] = []
    for line in text.splitlines():
        fields = line.split()
        try:
            sep = fields.index("-", 6)
        except ValueError:
            continue
        if len(fields) < sep + 3:
            continue
        fstype = fields[sep + 1]
        if fstype not in ("cgroup", "cgroup2"):
            continue
        root, mountpoint = _unescape(fields[3]), _unescape(fields[4])
        controllers: tuple[str, ...] = ()
        if fstype == "cgroup":
            opts = fields[sep + 3].split(",") if len(fields) > sep + 3 else []
            controllers = tuple(o for o in opts
                                if o not in _V1_NON_CONTROLLER_OPTS
                                and not o.startswith("release_agent="))
        mounts.append(CgroupMount(mountpoint, root, fstype, controllers))
    return mounts


def _rank(m: CgroupMount) -> tuple[int, int]:
    """Lower is better: the hierarchy's own root first, then /sys/fs/cgroup."""
    under_std = m.mountpoint == _PREFERRED_BASE or m.mountpoint.startswith(_PREFERRED_BASE + "/")
    return (0 if m.root == "/" else 1, 0 if under_std else 1)


def hierarchies_from(mounts: list[CgroupMount]) -> Hierarchies:
    """Choose one mount per hierarchy and decide the mode.

    The mode is v1 as soon as a real v1 controller is mounted (a lone
    "name=systemd" v1 mount next to a cgroup2 one does not make a v1 system).
    """
    # A later mount on the same mount point hides an earlier one.
    visible: dict[str, CgroupMount] = {}
    for m in mounts:
        visible.pop(m.mountpoint, None)
        visible[m.mountpoint] = m
    v1: dict[str, CgroupMount] = {}
    unified: CgroupMount | None = None
    for m in visible.values():
        if m.fstype == "cgroup2":
            if unified is None or _rank(m) < _rank(unified):
                unified = m
            continue
        for c in m.controllers:
            cur = v1.get(c)
            if cur is None or _rank(m) < _rank(cur):
                v1[c] = m
    real = [c for c in v1 if not c.startswith("name=")]
    if real:
        return Hierarchies("v1", {c: m.mountpoint for c, m in v1.items()},
                           unified.mountpoint if unified else "")
    if unified is not None:
        return Hierarchies("v2", {}, unified.mountpoint)
    return Hierarchies("none")


def detect(mountinfo: str = MOUNTINFO) -> Hierarchies:
    """Read mountinfo and return the cgroup layout ("none" if nothing is mounted)."""
    with open(mountinfo) as f:
        return hierarchies_from(parse_mountinfo(f.read()))
