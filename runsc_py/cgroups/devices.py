"""Device cgroup rules the runtime adds on top of the spec's (as runc does).

A config.json usually says only `{"allow": false, "access": "rwm"}` and
relies on the runtime to allow the standard devices afterwards; runc appends
its "AllowedDevices" and an allow rule per linux.devices entry to the end of
linux.resources.devices.  Without them even /dev/null is EPERM.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING, whose import the short commands do without (test_startup.py)
if TYPE_CHECKING:
    from typing import Any


def _c(major: int | None, minor: int | None, access: str = "rwm") -> dict[str, Any]:
    return {"allow": True, "type": "c", "major": major, "minor": minor, "access": access}


# runc's libcontainer/specconv AllowedDevices, in order.
DEFAULT_ALLOWED: tuple[dict[str, Any], ...] = (
    _c(None, None, "m"),                                                      # mknod c *:*
    {"allow": True, "type": "b", "major": None, "minor": None, "access": "m"},  # mknod b *:*
    _c(1, 3),      # /dev/null
    _c(1, 8),      # /dev/random
    _c(1, 7),      # /dev/full
    _c(5, 0),      # /dev/tty
    _c(1, 5),      # /dev/zero
    _c(1, 9),      # /dev/urandom
    _c(136, None),  # /dev/pts/*
    _c(5, 2),      # /dev/ptmx
    _c(10, 200),   # /dev/net/tun
)


def spec_device_rules(linux: dict[str, Any] | None) -> list[dict[str, Any]]:
    """An allow rule for each linux.devices entry (char/block; fifos need none)."""
    out: list[dict[str, Any]] = []
    for d in (linux or {}).get("devices") or []:
        t = d.get("type")
        if t == "u":
            t = "c"
        if t not in ("c", "b") or d.get("major") is None or d.get("minor") is None:
            continue
        out.append({"allow": True, "type": t, "major": int(d["major"]), "minor": int(d["minor"]),
                    "access": "rwm"})
    return out


def with_defaults(rules: list[dict[str, Any]], extra: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """The spec's rules, then the defaults, then the spec devices (runc order)."""
    return [*rules, *DEFAULT_ALLOWED, *(extra or [])]


# What the sandbox lets a container open, whatever its spec allows (the
# table is sentry/kernobj.py's CHAR_DEVICES: null, zero, full, random,
# urandom, tty, console, ptmx, pty slaves, tun, fuse).  The device cgroup
# refuses the rest in the kernel, before any driver's open runs (a host
# watchdog or disk is never opened); the sentry checks again after its
# opens (sentry/kernobj.py), which is what holds where there is no device
# cgroup (cgroup v2 here has none yet).
def _matches(rule: dict[str, Any], dtype: str, major: int, minor: int, access: str) -> bool:
    t = rule.get("type") or "a"
    if t != "a" and t != dtype:
        return False
    if rule.get("major") is not None and int(rule["major"]) >= 0 and int(rule["major"]) != major:
        return False
    if rule.get("minor") is not None and int(rule["minor"]) >= 0 and int(rule["minor"]) != minor:
        return False
    return access in (rule.get("access") or "rwm")


def allowed(rules: list[dict[str, Any]], dtype: str, major: int, minor: int, access: str) -> bool:
    """Does the rule list (in order, the last match wins; no match: the
    kernel's default, allow) allow this access to this device?"""
    ok = True
    for rule in rules:
        if _matches(rule, dtype, major, minor, access):
            ok = bool(rule.get("allow"))
    return ok


def sandboxed(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The final device rules: deny everything, then allow mknod as the
    rules do, and reading or writing only the devices of the sandbox's
    table that the rules allow."""
    from sentry.kernobj import CHAR_DEVICES
    out: list[dict[str, Any]] = [{"allow": False, "type": "a", "major": None, "minor": None,
                                  "access": "rwm"}]
    # "Any" device for mknod: numbers no real device has.
    for dtype in ("c", "b"):
        if allowed(rules, dtype, 4095, 1048575, "m"):
            out.append({"allow": True, "type": dtype, "major": None, "minor": None, "access": "m"})
    for (major, minor) in CHAR_DEVICES:
        access = "".join(a for a in "rw" if allowed(rules, "c", major, minor or 0, a))
        if access:
            out.append({"allow": True, "type": "c", "major": major, "minor": minor, "access": access})
    return out
