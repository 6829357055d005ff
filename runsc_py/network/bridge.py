"""`--network=bridge`: standalone networking for `runsc-py run` without an
engine, as podman's netavark or Docker's default bridge do it.

    host:  bridge rpy-br0 10.213.0.1/24 (shared; created on first use)
             `- rpyXXXXXXXXXX  (host end of the container's veth pair)
    ctr:   eth0 10.213.0.N/24, default route via 10.213.0.1; lo up
    nft:   table ip runsc-py-<id>: masquerade of the container's traffic
           leaving by another interface; -p HOSTPORT:CTRPORT as DNAT in
           prerouting (traffic from outside) and output (the host's own,
           to any local address, 127.0.0.1 too: route_localnet on the bridge
           and a masquerade of 127.0.0.0/8 towards the container).

What is made where, and what removes it:
- the veth pair is created in ONE request with its peer already in the
  container's namespace (pyroute2, in the set-up helper, network/setup.py):
  no moment exists where both ends sit in the host's namespace, and when
  that namespace dies (the container ends, even after a kill -9 of every
  runtime process) the kernel deletes the pair;
- the nft table, the lease file (/run/runsc-py-net/leases/<ip>) and the
  bridge are the host's: `delete` removes the table and the lease, and the
  bridge once no port is left on it.  `delete` does this with `nft` and
  `ip` (no pyroute2 import on delete).  A container whose runtime was
  killed mid-create still has its state directory, so `delete --force`
  cleans it the same way; `plan()` also reclaims leases whose container
  state is gone (a lease names its state directory).
The leak check of the tests (tests/helpers.py find_leaks) looks for
leftover veths, bridges, nft tables and namespaces named after a test's
container ids.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import subprocess
TYPE_CHECKING = False  # typing's, without importing typing (docs/performance.md, Start-up)
if TYPE_CHECKING:
    from typing import Any

from ..errors import RuntimeFailure
from runsc_py.log import get_logger

log = get_logger(__name__)

BRIDGE = "rpy-br0"
SUBNET = ipaddress.ip_network("10.213.0.0/24")
GATEWAY = SUBNET.network_address + 1
LEASES = "/run/runsc-py-net/leases"
TABLE_PREFIX = "runsc-py-"


def host_veth(cid: str) -> str:
    """The host end's name: 15 bytes at most (IFNAMSIZ - 1)."""
    return "rpy" + hashlib.sha256(cid.encode()).hexdigest()[:12]


def table_name(cid: str) -> str:
    return TABLE_PREFIX + cid


def parse_publish(spec: str) -> dict[str, Any]:
    """[IP:]HOSTPORT:CTRPORT[/tcp|/udp]."""
    body, _, proto = spec.partition("/")
    proto = proto or "tcp"
    parts = body.split(":")
    if proto not in ("tcp", "udp") or len(parts) not in (2, 3):
        raise RuntimeFailure(f"--publish {spec!r}: want [IP:]HOSTPORT:CTRPORT[/tcp|/udp]")
    host_ip = parts[0] if len(parts) == 3 else ""
    try:
        hp, cp = int(parts[-2]), int(parts[-1])
        if host_ip:
            ipaddress.IPv4Address(host_ip)
    except ValueError:
        raise RuntimeFailure(f"--publish {spec!r}: bad port or address") from None
    if not (0 < hp < 65536 and 0 < cp < 65536):
        raise RuntimeFailure(f"--publish {spec!r}: ports are 1-65535")
    return {"host_ip": host_ip, "host_port": hp, "ctr_port": cp, "proto": proto}


def _lease(cid: str, state_dir: str) -> str:
    """An address of SUBNET for cid: a lease file made with O_EXCL."""
    os.makedirs(LEASES, mode=0o700, exist_ok=True)
    for host in SUBNET.hosts():
        if host == GATEWAY:
            continue
        path = os.path.join(LEASES, str(host))
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            if _stale(path):
                os.unlink(path)
                return _lease(cid, state_dir)
            continue
        with os.fdopen(fd, "w") as f:
            f.write(f"{cid}\n{state_dir}\n")
        return str(host)
    raise RuntimeFailure(f"network bridge: no free address left in {SUBNET}")


def _stale(path: str) -> bool:
    """A lease whose container's state directory is gone."""
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError:
        return False
    return len(lines) >= 2 and not os.path.exists(os.path.join(lines[1], "state.json"))


def plan(cid: str, publish: tuple[str, ...], state_dir: str) -> dict[str, Any]:
    """What attach_host/configure_inside make (runtime side: no pyroute2)."""
    ports = [parse_publish(p) for p in publish]
    ip = _lease(cid, state_dir)
    return {"cid": cid, "bridge": BRIDGE, "gateway": str(GATEWAY), "prefix": SUBNET.prefixlen,
            "ip": ip, "host_veth": host_veth(cid), "table": table_name(cid), "publish": ports}


# --- in the set-up helper (pyroute2 loaded) -------------------------------------------
def attach_host(iproute: Any, netns_fd: int, cfg: dict[str, Any]) -> dict[str, Any]:
    """Host side: the bridge, the veth pair (peer straight into netns_fd),
    forwarding, the nft table."""
    with iproute() as ipr:
        br = ipr.link_lookup(ifname=cfg["bridge"])
        if not br:
            try:
                ipr.link("add", ifname=cfg["bridge"], kind="bridge")
            except Exception as e:
                if getattr(e, "code", 0) != 17:  # EEXIST: another create won the race
                    raise
            br = ipr.link_lookup(ifname=cfg["bridge"])
            try:
                ipr.addr("add", index=br[0], address=cfg["gateway"], prefixlen=cfg["prefix"])
            except Exception as e:
                if getattr(e, "code", 0) != 17:
                    raise
        ipr.link("set", index=br[0], state="up")
        ipr.link("add", ifname=cfg["host_veth"], kind="veth",
                 peer={"ifname": "eth0", "net_ns_fd": netns_fd})
        v = ipr.link_lookup(ifname=cfg["host_veth"])[0]
        ipr.link("set", index=v, master=br[0], state="up")
    _sysctl("net/ipv4/ip_forward", "1")
    _sysctl(f"net/ipv4/conf/{cfg['bridge']}/route_localnet", "1")
    _nft(_ruleset(cfg))
    return cfg


def configure_inside(ipr: Any, cfg: dict[str, Any]) -> None:
    """Container side (we are in its namespace): eth0's address, up, the
    default route."""
    idx = ipr.link_lookup(ifname="eth0")[0]
    ipr.addr("add", index=idx, address=cfg["ip"], prefixlen=cfg["prefix"])
    ipr.link("set", index=idx, state="up")
    ipr.route("add", dst="0.0.0.0/0", gateway=cfg["gateway"])


def _sysctl(key: str, value: str) -> None:
    with open(f"/proc/sys/{key}", "w") as f:
        f.write(value)


def _ruleset(cfg: dict[str, Any]) -> str:
    ip, t = cfg["ip"], cfg["table"]
    pre, out = [], []
    for p in cfg["publish"]:
        match = f"{p['proto']} dport {p['host_port']} dnat to {ip}:{p['ctr_port']}"
        daddr = f"ip daddr {p['host_ip']} " if p["host_ip"] else ""
        pre.append(f"    {daddr}{match}")
        out.append(f"    {daddr or 'fib daddr type local '}{match}")
    return "\n".join([
        f"table ip {t} {{",
        "  chain pre { type nat hook prerouting priority dstnat; policy accept;",
        *pre, "  }",
        "  chain out { type nat hook output priority -100; policy accept;",
        *out, "  }",
        "  chain post { type nat hook postrouting priority srcnat; policy accept;",
        f"    ip saddr {ip} oifname != \"{cfg['bridge']}\" masquerade",
        f"    ip saddr 127.0.0.0/8 ip daddr {ip} masquerade",
        "  }",
        "}", ""])


def _nft(text: str) -> None:
    r = subprocess.run(["nft", "-f", "-"], input=text, capture_output=True, text=True, timeout=20)
    if r.returncode != 0:
        raise RuntimeError(f"nft: {r.stderr.strip()}")


# --- delete (no pyroute2) -----------------------------------------------------------------
def remove(cfg: dict[str, Any]) -> None:
    """Undo plan/attach_host for one container; every step is tried."""
    subprocess.run(["nft", "delete", "table", "ip", cfg["table"]], capture_output=True, timeout=20)
    subprocess.run(["ip", "link", "del", cfg["host_veth"]], capture_output=True, timeout=20)
    try:
        os.unlink(os.path.join(LEASES, cfg["ip"]))
    except OSError:
        pass
    brif = f"/sys/class/net/{cfg['bridge']}/brif"
    try:
        empty = not os.listdir(brif)
    except OSError:
        return
    if empty and not _leases_in_use():
        subprocess.run(["ip", "link", "del", cfg["bridge"]], capture_output=True, timeout=20)


def _leases_in_use() -> bool:
    try:
        return any(not _stale(os.path.join(LEASES, n)) for n in os.listdir(LEASES))
    except OSError:
        return False
