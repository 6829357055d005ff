"""The OCI runtime-spec config.json: loading, schema checks, the default spec.

The spec is kept as the parsed JSON (plain dicts), which is what hooks, state
and exec need anyway; `validate()` walks it once and rejects anything the
runtime-spec schema rejects, naming the offending field, so that later code
can index it without defensive checks.
"""

from __future__ import annotations

import os
TYPE_CHECKING = False  # typing's, without importing typing (docs/performance.md, Start-up)
if TYPE_CHECKING:
    from typing import Any

from . import jsonio
from .errors import ConfigError

SPEC_VERSION = "1.1.0"

NAMESPACE_TYPES = {"pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time"}

CAPABILITIES = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
    "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
    "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
    "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
    "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
]
CAP_NUMBERS = {name: i for i, name in enumerate(CAPABILITIES)}
CAP_SETS = ("bounding", "effective", "inheritable", "permitted", "ambient")

RLIMITS = {
    "RLIMIT_CPU": 0, "RLIMIT_FSIZE": 1, "RLIMIT_DATA": 2, "RLIMIT_STACK": 3, "RLIMIT_CORE": 4,
    "RLIMIT_RSS": 5, "RLIMIT_NPROC": 6, "RLIMIT_NOFILE": 7, "RLIMIT_MEMLOCK": 8, "RLIMIT_AS": 9,
    "RLIMIT_LOCKS": 10, "RLIMIT_SIGPENDING": 11, "RLIMIT_MSGQUEUE": 12, "RLIMIT_NICE": 13,
    "RLIMIT_RTPRIO": 14, "RLIMIT_RTTIME": 15,
}

HOOK_KINDS = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")
DEVICE_TYPES = {"c", "b", "u", "p"}
PROPAGATIONS = {"private", "rprivate", "shared", "rshared", "slave", "rslave", "unbindable", "runbindable"}


def load(bundle: str) -> dict[str, Any]:
    """Read and validate BUNDLE/config.json."""
    path = os.path.join(bundle, "config.json")
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise ConfigError("", f"open {path}: no such file or directory") from None
    except OSError as e:
        raise ConfigError("", f"open {path}: {e.strerror}") from None
    try:
        spec = jsonio.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise ConfigError("", f"invalid JSON: {e}") from None
    validate(spec)
    return spec


# --- schema checks ---------------------------------------------------------------

def _type(v: Any, t: type | tuple[type, ...], field: str) -> None:
    ok = isinstance(v, t) and not (isinstance(v, bool) and t in (int, (int,)))
    if not ok:
        names = t.__name__ if isinstance(t, type) else "/".join(x.__name__ for x in t)
        raise ConfigError(field, f"must be of type {_json_name(names)}, got {type(v).__name__ if v is not None else 'null'}")


def _json_name(py: str) -> str:
    return {"dict": "object", "list": "array", "str": "string", "int": "integer", "bool": "boolean"}.get(py, py)


def _str_list(v: Any, field: str) -> None:
    _type(v, list, field)
    for i, s in enumerate(v):
        _type(s, str, f"{field}[{i}]")


def _uint(v: Any, field: str, bits: int = 32) -> None:
    _type(v, int, field)
    if v < 0 or v >= 1 << bits:
        raise ConfigError(field, f"{v} is out of range")


def validate(spec: Any) -> None:
    _type(spec, dict, "")
    _type(spec.get("ociVersion"), str, "ociVersion")
    root = spec.get("root")
    if root is not None:
        _type(root, dict, "root")
        _type(root.get("path"), str, "root.path")
        if "readonly" in root:
            _type(root["readonly"], bool, "root.readonly")
    if "hostname" in spec:
        _type(spec["hostname"], str, "hostname")
    if "domainname" in spec:
        _type(spec["domainname"], str, "domainname")
    if "process" in spec:
        validate_process(spec["process"], "process")
    for i, m in enumerate(spec.get("mounts") or []):
        f = f"mounts[{i}]"
        _type(m, dict, f)
        _type(m.get("destination"), str, f"{f}.destination")
        if not m["destination"].startswith("/"):
            raise ConfigError(f"{f}.destination", f"{m['destination']!r} must be an absolute path")
        for k in ("type", "source"):
            if k in m:
                _type(m[k], str, f"{f}.{k}")
        if "options" in m:
            _str_list(m["options"], f"{f}.options")
    hooks = spec.get("hooks")
    if hooks is not None:
        _type(hooks, dict, "hooks")
        for kind, lst in hooks.items():
            if kind not in HOOK_KINDS:
                raise ConfigError(f"hooks.{kind}", "unknown hook kind")
            _type(lst, list, f"hooks.{kind}")
            for i, h in enumerate(lst):
                f = f"hooks.{kind}[{i}]"
                _type(h, dict, f)
                _type(h.get("path"), str, f"{f}.path")
                if not h["path"].startswith("/"):
                    raise ConfigError(f"{f}.path", f"{h['path']!r} must be an absolute path")
                for k in ("args", "env"):
                    if k in h:
                        _str_list(h[k], f"{f}.{k}")
                if "timeout" in h:
                    _type(h["timeout"], int, f"{f}.timeout")
                    if h["timeout"] <= 0:
                        raise ConfigError(f"{f}.timeout", "must be greater than zero")
    if "annotations" in spec:
        _type(spec["annotations"], dict, "annotations")
        for k, v in spec["annotations"].items():
            _type(v, str, f"annotations.{k}")
    if "linux" in spec:
        _validate_linux(spec["linux"])


def validate_process(p: Any, f: str) -> None:
    _type(p, dict, f)
    if "terminal" in p:
        _type(p["terminal"], bool, f"{f}.terminal")
    _str_list(p.get("args"), f"{f}.args")
    if not p["args"]:
        raise ConfigError(f"{f}.args", "must not be empty")
    _type(p.get("cwd"), str, f"{f}.cwd")
    if not p["cwd"].startswith("/"):
        raise ConfigError(f"{f}.cwd", f"{p['cwd']!r} must be an absolute path")
    if "env" in p:
        _str_list(p["env"], f"{f}.env")
    user = p.get("user", {})
    _type(user, dict, f"{f}.user")
    for k in ("uid", "gid"):
        if k in user:
            _uint(user[k], f"{f}.user.{k}")
    if "umask" in user:
        _uint(user["umask"], f"{f}.user.umask")
    for i, g in enumerate(user.get("additionalGids") or []):
        _uint(g, f"{f}.user.additionalGids[{i}]")
    caps = p.get("capabilities")
    if caps is not None:
        _type(caps, dict, f"{f}.capabilities")
        for s, lst in caps.items():
            if s not in CAP_SETS:
                raise ConfigError(f"{f}.capabilities.{s}", "unknown capability set")
            _str_list(lst, f"{f}.capabilities.{s}")
            for c in lst:
                if c not in CAP_NUMBERS:
                    raise ConfigError(f"{f}.capabilities.{s}", f"unknown capability {c!r}")
    seen = set()
    for i, r in enumerate(p.get("rlimits") or []):
        rf = f"{f}.rlimits[{i}]"
        _type(r, dict, rf)
        _type(r.get("type"), str, f"{rf}.type")
        if r["type"] not in RLIMITS:
            raise ConfigError(f"{rf}.type", f"unknown rlimit {r['type']!r}")
        if r["type"] in seen:
            raise ConfigError(f"{rf}.type", f"duplicate rlimit {r['type']!r}")
        seen.add(r["type"])
        _uint(r.get("hard"), f"{rf}.hard", 64)
        _uint(r.get("soft"), f"{rf}.soft", 64)
        if r["soft"] > r["hard"]:
            raise ConfigError(rf, f"soft limit {r['soft']} is above hard limit {r['hard']}")
    if "noNewPrivileges" in p:
        _type(p["noNewPrivileges"], bool, f"{f}.noNewPrivileges")
    if "oomScoreAdj" in p:
        _type(p["oomScoreAdj"], int, f"{f}.oomScoreAdj")
        if not -1000 <= p["oomScoreAdj"] <= 1000:
            raise ConfigError(f"{f}.oomScoreAdj", f"{p['oomScoreAdj']} is out of range [-1000, 1000]")
    if "consoleSize" in p:
        _type(p["consoleSize"], dict, f"{f}.consoleSize")


def _validate_linux(lx: Any) -> None:
    _type(lx, dict, "linux")
    seen: set[str] = set()
    for i, ns in enumerate(lx.get("namespaces") or []):
        f = f"linux.namespaces[{i}]"
        _type(ns, dict, f)
        _type(ns.get("type"), str, f"{f}.type")
        if ns["type"] not in NAMESPACE_TYPES:
            raise ConfigError(f"{f}.type", f"unknown namespace type {ns['type']!r}")
        if ns["type"] in seen:
            raise ConfigError(f"{f}.type", f"duplicate namespace {ns['type']!r}")
        seen.add(ns["type"])
        if "path" in ns:
            _type(ns["path"], str, f"{f}.path")
    for key in ("uidMappings", "gidMappings"):
        for i, m in enumerate(lx.get(key) or []):
            f = f"linux.{key}[{i}]"
            _type(m, dict, f)
            for k in ("containerID", "hostID", "size"):
                _uint(m.get(k), f"{f}.{k}")
    if (lx.get("uidMappings") or lx.get("gidMappings")) and "user" not in seen:
        raise ConfigError("linux.uidMappings", "user namespace mappings need a user namespace")
    for i, d in enumerate(lx.get("devices") or []):
        f = f"linux.devices[{i}]"
        _type(d, dict, f)
        _type(d.get("path"), str, f"{f}.path")
        if not d["path"].startswith("/dev/"):
            raise ConfigError(f"{f}.path", f"{d['path']!r} must be under /dev")
        _type(d.get("type"), str, f"{f}.type")
        if d["type"] not in DEVICE_TYPES:
            raise ConfigError(f"{f}.type", f"invalid device type {d['type']!r}")
        if d["type"] != "p":
            _type(d.get("major"), int, f"{f}.major")
            _type(d.get("minor"), int, f"{f}.minor")
    if "sysctl" in lx:
        _type(lx["sysctl"], dict, "linux.sysctl")
        for k, v in lx["sysctl"].items():
            _type(v, str, f"linux.sysctl.{k}")
            if "/" in k or ".." in k:
                raise ConfigError(f"linux.sysctl.{k}", "invalid sysctl name")
    for key in ("maskedPaths", "readonlyPaths"):
        if key in lx:
            _str_list(lx[key], f"linux.{key}")
    if "rootfsPropagation" in lx:
        _type(lx["rootfsPropagation"], str, "linux.rootfsPropagation")
        if lx["rootfsPropagation"] not in PROPAGATIONS:
            raise ConfigError("linux.rootfsPropagation", f"invalid propagation {lx['rootfsPropagation']!r}")
    if "cgroupsPath" in lx:
        _type(lx["cgroupsPath"], str, "linux.cgroupsPath")
    if "resources" in lx:
        _type(lx["resources"], dict, "linux.resources")


# --- the default spec (`runsc-py spec`) -----------------------------------------------

DEFAULT_CAPS = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]

DEFAULT_MASKED = [
    "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
    "/proc/scsi",
]
DEFAULT_READONLY = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]


def default_spec(rootless: bool = False) -> dict[str, Any]:
    """The same default config.json that `runc spec` writes."""
    spec: dict[str, Any] = {
        "ociVersion": SPEC_VERSION,
        "process": {
            "terminal": True,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {k: list(DEFAULT_CAPS) for k in ("bounding", "effective", "permitted", "ambient")},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": True},
        "hostname": "runsc-py",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
        ],
        "linux": {
            "resources": {"devices": [{"allow": False, "access": "rwm"}]},
            "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount", "cgroup")],
            "maskedPaths": list(DEFAULT_MASKED),
            "readonlyPaths": list(DEFAULT_READONLY),
        },
    }
    if rootless:
        lx = spec["linux"]
        lx["namespaces"] = [n for n in lx["namespaces"] if n["type"] != "network"] + [{"type": "user"}]
        lx["uidMappings"] = [{"containerID": 0, "hostID": os.getuid(), "size": 1}]
        lx["gidMappings"] = [{"containerID": 0, "hostID": os.getgid(), "size": 1}]
        lx.pop("resources", None)
        for m in spec["mounts"]:
            if m["destination"] == "/dev/pts":
                m["options"] = [o for o in m["options"] if o != "gid=5"]
            if m["destination"] == "/sys":
                m.update(type="none", source="/sys", options=["rbind", "nosuid", "noexec", "nodev", "ro"])
        spec["mounts"] = [m for m in spec["mounts"] if m["destination"] != "/sys/fs/cgroup"]
    return spec
