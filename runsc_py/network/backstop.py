"""The kernel backstop of the network policy: policy-routing rules in the
workload's network namespace (pyroute2), after nsjail's applyTrafficRule.

For each network the policy denies outright (every port, egress:
NetPolicy.denied_nets), one FIB rule `to NET prohibit` at preference
BASE_PREF + i, before the main table (32766) and after only the local
table's rule (0), so it holds whatever route the namespace has.  The rules
select on the destination alone: no fwmark, iif/oif or tos selector, so a
socket mark (SO_MARK), SO_BINDTODEVICE or a TOS value does not route around
them.  FR_ACT_PROHIBIT answers a local sender EACCES, the sentry's own
answer for a denied address (an IPv4-mapped IPv6 destination is routed as
IPv4 and meets the IPv4 rule).

FIB rules are a list the kernel walks for every route lookup, so at most
FIB_MAX networks become rules (the built-in ones come first).  A longer
deny list goes, whole, into an nftables table instead (`nft -f`, where the
nft tool exists): interval sets of IPv4 and IPv6 prefixes, matched in
O(log n) by a drop rule on the output hook (a dropped local packet fails
its system call with EPERM).  The workload cannot reach netfilter either:
NETLINK_NETFILTER sockets are refused (EPROTONOSUPPORT).

The workload cannot remove them: its netlink sockets are made by the
sentry without CAP_NET_ADMIN (mutations EPERM whatever it holds), the
route ioctls are EPERM, and it cannot join another namespace.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import os
import socket
import struct
from typing import Any, Iterable

log = logging.getLogger(__name__)

BASE_PREF = 100
FIB_MAX = 32
FR_ACT_PROHIBIT = 8
NFT_TABLE = "runsc-py-guard"

Net = ipaddress.IPv4Network | ipaddress.IPv6Network


def install(nl: "Netlink", nets: list[Net]) -> int:
    """Put the backstop in the namespace of nl (and of this process, for
    nft); returns how many networks it covers."""
    n = _fib_rules(nl, nets[:FIB_MAX])
    if len(nets) > FIB_MAX:
        _nft_sets(nets)
        n = len(nets)
    return n


def _nft_sets(nets: list[Net]) -> None:
    import shutil
    import subprocess
    if not shutil.which("nft"):
        log.warning("network backstop: %d networks denied but no nft tool: only the first %d "
                    "are in the kernel's rules (the sentry checks them all)", len(nets), FIB_MAX)
        return
    v4 = ", ".join(str(n) for n in nets if n.version == 4) or "255.255.255.255/32"
    v6 = ", ".join(str(n) for n in nets if n.version == 6) or "::/128"
    text = (f"table inet {NFT_TABLE} {{\n"
            f"  set deny4 {{ type ipv4_addr; flags interval; auto-merge; elements = {{ {v4} }} }}\n"
            f"  set deny6 {{ type ipv6_addr; flags interval; auto-merge; elements = {{ {v6} }} }}\n"
            "  chain out { type filter hook output priority 0; policy accept;\n"
            "    ip daddr @deny4 drop\n    ip6 daddr @deny6 drop\n  }\n}\n")
    r = subprocess.run(["nft", "-f", "-"], input=text, capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise RuntimeError(f"backstop nft table: {r.stderr.strip()[:300]}")


def _fib_rules(nl: "Netlink", nets: Iterable[Net]) -> int:
    """Add the rules through nl (in the target namespace); rules already
    there (a namespace shared by a pod) are kept."""
    pr = nl.pr
    n = 0
    for i, net in enumerate(nets):
        msg = pr.fibmsg()
        msg["family"] = socket.AF_INET if net.version == 4 else socket.AF_INET6
        msg["dst_len"] = net.prefixlen
        msg["action"] = FR_ACT_PROHIBIT
        msg["table"] = 0
        msg["attrs"] = [("FRA_PRIORITY", BASE_PREF + i), ("FRA_DST", str(net.network_address))]
        try:
            nl.request(msg, pr.RTM_NEWRULE, pr.NLM_F_CREATE | pr.NLM_F_EXCL)
        except NetlinkError as e:
            if e.code != errno.EEXIST:
                raise RuntimeError(f"backstop rule to {net} prohibit: {e}") from None
        n += 1
    log.debug("network backstop: %d prohibit rules", n)
    return n


IFF_UP = 0x1


def loopback_up(nl: "Netlink") -> None:
    """lo (always index 1 in a namespace) up: RTM_NEWLINK changing IFF_UP,
    as runc does for a private namespace."""
    pr = nl.pr
    msg = pr.ifinfmsg()
    msg["index"] = 1
    msg["flags"] = IFF_UP
    msg["change"] = IFF_UP
    nl.request(msg, pr.RTM_NEWLINK, 0)


class NetlinkError(OSError):
    @property
    def code(self) -> int:
        return self.errno or 0


NLMSG_ERROR = 2
_NLMSGHDR = struct.Struct("=IHHII")


class Netlink:
    """A route-netlink socket of this thread's namespace; requests are
    encoded by pyroute2's message classes and acknowledged one at a time."""

    def __init__(self) -> None:
        from . import _pyroute2
        self.pr = _pyroute2.light()
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)  # NETLINK_ROUTE
        self.seq = 0

    def request(self, msg: Any, kind: int, flags: int) -> None:
        """Send msg as KIND and wait for its acknowledgement (NetlinkError)."""
        self.seq += 1
        hdr = msg["header"]
        hdr["type"] = kind
        hdr["flags"] = self.pr.NLM_F_REQUEST | self.pr.NLM_F_ACK | flags
        hdr["sequence_number"] = self.seq
        msg.encode()
        self.sock.send(bytes(msg.data))
        while True:
            data = self.sock.recv(65536)
            off = 0
            while off + _NLMSGHDR.size <= len(data):
                length, typ, _fl, seq, _pid = _NLMSGHDR.unpack_from(data, off)
                if typ == NLMSG_ERROR and seq == self.seq:
                    err = struct.unpack_from("=i", data, off + _NLMSGHDR.size)[0]
                    if err:
                        raise NetlinkError(-err, os.strerror(-err))
                    return
                if length < _NLMSGHDR.size:
                    break
                off += (length + 3) & ~3

    def close(self) -> None:
        self.sock.close()
