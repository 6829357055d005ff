"""The one guarded entry point (sentry/paths.py) and the table of kernel
objects (sentry/kernobj.py): structure and table invariants.  Their
behaviour in real containers is tested in tests/test_kernobj.py and by the
escape suite."""

from __future__ import annotations

import ast
import errno
import os
from pathlib import Path

import pytest

from sentry import kernobj

SYSCALLS = Path(__file__).resolve().parents[2] / "sentry" / "syscalls"

# What resolves or fetches objects outside sentry/paths.py: no handler may
# call these itself (it would skip the procfs walk and kernobj's check).
_FORBIDDEN_NAMES = {"open_start_dir", "walk", "target_fd", "resolve", "resolve_probed", "openat2",
                    "open_"}
_FORBIDDEN_MODULES = {"resolve", "procfs", "ownproc"}


def _calls(tree: ast.AST) -> list[tuple[str, int]]:
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            if isinstance(f, ast.Attribute):
                base = f.value
                owner = base.id if isinstance(base, ast.Name) else (
                    base.attr if isinstance(base, ast.Attribute) else "")
                out.append((f"{owner}.{f.attr}", node.lineno))
            elif isinstance(f, ast.Name):
                out.append((f.id, node.lineno))
    return out


def test_handlers_resolve_only_through_paths() -> None:
    bad = []
    for src in sorted(SYSCALLS.glob("*.py")):
        tree = ast.parse(src.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.level >= 1:
                mod = node.module.split(".")[-1]
                names = {a.name for a in node.names}
                if mod in _FORBIDDEN_MODULES and names & _FORBIDDEN_NAMES:
                    bad.append(f"{src.name}:{node.lineno}: from {node.module} import {names}")
        for name, line in _calls(tree):
            owner, _, attr = name.rpartition(".")
            if attr in _FORBIDDEN_NAMES and (owner in ("fs", "ownproc", "procfs", "resolve")
                                             or (not owner and attr in ("open_start_dir", "target_fd"))):
                bad.append(f"{src.name}:{line}: {name}()")
    assert not bad, "handlers must resolve through sentry/paths.py:\n" + "\n".join(bad)


def test_kernel_fs_table_has_reasons() -> None:
    for magic, (kind, why) in kernobj.KERNEL_FS.items():
        assert kind in (kernobj.PROC, kernobj.SYSFS, kernobj.SEALED, kernobj.CGROUP), hex(magic)
        assert len(why) > 10, hex(magic)
    for table in (kernobj.NAMESPACED_SYSCTLS, kernobj.SECRET_PROC, kernobj.SECRET_SYSFS):
        assert all(isinstance(v, (str, tuple)) and v for v in table.values())
    assert all(ns in ("net", "uts", "ipc", "user") for ns, _ in kernobj.NAMESPACED_SYSCTLS.values())


@pytest.mark.parametrize("dev,mode,ok", [
    ((1, 3), "c", True), ((1, 9), "c", True), ((136, 7), "c", True), ((5, 2), "c", True),
    ((1, 1), "c", False), ((1, 2), "c", False), ((1, 11), "c", False), ((4, 1), "c", False),
    ((10, 130), "c", False), ((8, 0), "b", False), ((7, 0), "b", False),
])
def test_devices_outside_the_table_are_refused(dev: tuple[int, int], mode: str, ok: bool) -> None:
    import stat
    fmt = stat.S_IFCHR if mode == "c" else stat.S_IFBLK
    rdev = os.makedev(*dev)
    kernobj.check_device(fmt, rdev, kernobj.LOOKUP)  # a stat is always fine
    for intent in (kernobj.READ, kernobj.WRITE):
        if ok:
            kernobj.check_device(fmt, rdev, intent)
        else:
            with pytest.raises(Exception) as ei:
                kernobj.check_device(fmt, rdev, intent)
            assert getattr(ei.value, "errno", None) == errno.EPERM


def test_mountinfo_escapes_are_decoded() -> None:
    assert kernobj._unescape(rb"/a\040b\011c\134d") == b"/a b\tc\\d"
    assert kernobj._unescape(b"/plain") == b"/plain"
