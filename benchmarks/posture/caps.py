"""Capability masks: decode /proc's hex masks to names; set this process's sets.

The names and numbers are Linux's (include/uapi/linux/capability.h); a bit
above the last known one is shown as CAP_<number>.
"""

from __future__ import annotations

import ctypes
import os

NAMES = [
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID",
    "SETUID", "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST",
    "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO",
    "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE",
    "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE",
    "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM",
    "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
]
CAP_SYS_PTRACE = NAMES.index("SYS_PTRACE")


def last_cap() -> int:
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except (OSError, ValueError):
        return len(NAMES) - 1


def names(mask: int) -> list[str]:
    return [NAMES[i] if i < len(NAMES) else f"CAP_{i}" for i in range(64) if mask >> i & 1]


def summary(mask: int, full: int) -> str:
    """Short form for a table cell: "none", "all", "all but X, Y" or the names."""
    if mask == 0:
        return "none"
    if mask & full == full:
        return "all"
    missing = names(full & ~mask)
    present = names(mask)
    if len(missing) < len(present) and len(missing) <= 4:
        return "all but " + ", ".join(missing)
    if len(present) <= 10:
        return ", ".join(present)
    return f"{len(present)} caps"


class _Header(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _Data(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


_LINUX_CAPABILITY_VERSION_3 = 0x20080522
_libc = ctypes.CDLL(None, use_errno=True)


def capset(effective: int, permitted: int) -> None:
    """Set this thread's effective and permitted sets (inheritable cleared)."""
    hdr = _Header(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_Data * 2)()
    for i in range(2):
        data[i].effective = (effective >> (32 * i)) & 0xFFFFFFFF
        data[i].permitted = (permitted >> (32 * i)) & 0xFFFFFFFF
        data[i].inheritable = 0
    if _libc.capset(ctypes.byref(hdr), data) != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"capset: {os.strerror(e)}")


def prctl(option: int, arg: int) -> int:
    r = _libc.prctl(option, ctypes.c_ulong(arg), 0, 0, 0)
    if r < 0:
        e = ctypes.get_errno()
        raise OSError(e, f"prctl({option}): {os.strerror(e)}")
    return int(r)


PR_SET_DUMPABLE = 4
PR_SET_KEEPCAPS = 8
