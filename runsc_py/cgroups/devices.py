"""Device cgroup rules the runtime adds on top of the spec's (as runc does).

A config.json usually says only `{"allow": false, "access": "rwm"}` and
relies on the runtime to allow the standard devices afterwards; runc appends
its "AllowedDevices" and an allow rule per linux.devices entry to the end of
linux.resources.devices.  Without them even /dev/null is EPERM.
"""

from __future__ import annotations

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

