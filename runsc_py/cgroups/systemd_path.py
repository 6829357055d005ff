"""cgroupsPath resolution: cgroupfs form and systemd "slice:prefix:name" form.

Pure functions; the result is always a normalized absolute path relative to
the root of each cgroup hierarchy, e.g. "/runsc-py/abc" or
"/system.slice/runsc-py-abc.scope".
"""

from __future__ import annotations

import posixpath

from runsc_py.errors import RuntimeFailure

DEFAULT_PARENT = "/runsc-py"
DEFAULT_SCOPE_PREFIX = "runsc-py"
_SLICE = ".slice"


def expand_slice(slice_name: str) -> str:
    """Expand a systemd slice name into its cgroup path (as systemd does).

    "a-b-c.slice" -> "/a.slice/a-b.slice/a-b-c.slice"; "-.slice" -> "/".
    """
    if not slice_name.endswith(_SLICE) or "/" in slice_name:
        raise RuntimeFailure(f"invalid slice name: {slice_name!r}")
    stem = slice_name[:-len(_SLICE)]
    if stem == "-":
        return "/"
    path, prefix = "", ""
    for component in stem.split("-"):
        if not component:      # "a--b.slice", "-a.slice", "a-.slice"
            raise RuntimeFailure(f"invalid slice name: {slice_name!r}")
        path += "/" + prefix + component + _SLICE
        prefix += component + "-"
    return path


def systemd_path(cgroups_path: str) -> str:
    """"slice:prefix:name" -> "<expanded slice>/<prefix>-<name>.scope".

    An empty slice means "system.slice".  A name that is itself a slice
    ("x.slice") is used as the unit as is, like runc does.
    """
    parts = cgroups_path.split(":")
    if len(parts) != 3:
        raise RuntimeFailure(
            'expected cgroupsPath to be of format "slice:prefix:name" for systemd cgroups, '
            f"got {cgroups_path!r} instead")
    parent, prefix, name = parts
    if not name:
        raise RuntimeFailure(f"invalid systemd cgroupsPath {cgroups_path!r}: empty name")
    for what, value in (("prefix", prefix), ("name", name)):
        if "/" in value or value in (".", ".."):
            raise RuntimeFailure(f"invalid systemd cgroupsPath {cgroups_path!r}: bad {what} {value!r}")
    unit = name if name.endswith(_SLICE) else f"{prefix}-{name}.scope"
    try:
        base = expand_slice(parent or "system.slice")
    except RuntimeFailure as e:
        raise RuntimeFailure(f"invalid systemd cgroupsPath {cgroups_path!r}: {e}") from None
    return posixpath.join(base, unit)


def cgroupfs_path(cgroups_path: str) -> str:
    """Normalize a cgroupfs path; relative paths are taken under the root."""
    path = posixpath.normpath("/" + cgroups_path.strip().lstrip("/"))
    if path == "/":
        raise RuntimeFailure(f"invalid cgroupsPath {cgroups_path!r}: refusing to use the root cgroup")
    if "\0" in path or "\n" in path:
        raise RuntimeFailure(f"invalid cgroupsPath {cgroups_path!r}")
    return path


def resolve(cid: str, cgroups_path: str | None, systemd: bool) -> str:
    """The container's cgroup path relative to each hierarchy root."""
    if systemd:
        return systemd_path(cgroups_path or f":{DEFAULT_SCOPE_PREFIX}:{cid}")
    return cgroupfs_path(cgroups_path or f"{DEFAULT_PARENT}/{cid}")
