"""The kernel backstop of the network policy: policy-routing rules in the
workload's network namespace (rtnetlink requests encoded here), after
nsjail's applyTrafficRule.

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
import os
from runsc_py import sockets  # socket's API without socket.py's enums (sockets.py)
import struct
from runsc_py.log import get_logger
TYPE_CHECKING = False  # typing's, without importing typing (docs/performance.md, Start-up)
if TYPE_CHECKING:
    from typing import Iterable

log = get_logger(__name__)

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
    n = 0
    for i, net in enumerate(nets):
        family = sockets.AF_INET if net.version == 4 else sockets.AF_INET6
        body = _FIB_RULE_HDR.pack(family, net.prefixlen, 0, 0, 0, 0, 0, FR_ACT_PROHIBIT, 0)
        body += _attr(FRA_PRIORITY, struct.pack("=I", BASE_PREF + i))
        body += _attr(FRA_DST, net.network_address.packed)
        try:
            nl.request(RTM_NEWRULE, NLM_F_CREATE | NLM_F_EXCL, body)
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
    nl.request(RTM_NEWLINK, 0, _IFINFOMSG.pack(sockets.AF_UNSPEC, 0, 1, IFF_UP, IFF_UP))


class NetlinkError(OSError):
    @property
    def code(self) -> int:
        return self.errno or 0


# include/uapi/linux/netlink.h, rtnetlink.h, fib_rules.h, if_link.h: two
# requests, encoded here (pyroute2's message classes cost the helper a
# 30-40 ms import on the critical path's other CPU for these few bytes).
NLMSG_ERROR = 2
NLM_F_REQUEST, NLM_F_ACK, NLM_F_EXCL, NLM_F_CREATE = 0x1, 0x4, 0x200, 0x400
RTM_NEWLINK, RTM_NEWRULE = 16, 32
FRA_DST, FRA_PRIORITY = 1, 6
_NLMSGHDR = struct.Struct("=IHHII")        # len, type, flags, seq, pid
_IFINFOMSG = struct.Struct("=BxHiII")      # family, type, index, flags, change
_FIB_RULE_HDR = struct.Struct("=BBBBBBBBI")  # family, dst_len, src_len, tos, table, res1, res2, action, flags
_RTATTR = struct.Struct("=HH")             # len, type


def _attr(kind: int, payload: bytes) -> bytes:
    """One route attribute, padded to 4 bytes (RTA_ALIGN)."""
    size = _RTATTR.size + len(payload)
    return _RTATTR.pack(size, kind) + payload + bytes(-size % 4)


class Netlink:
    """A route-netlink socket of this thread's namespace; requests are sent
    one at a time and each waits for its acknowledgement (NetlinkError)."""

    def __init__(self) -> None:
        self.sock = sockets.socket(sockets.AF_NETLINK, sockets.SOCK_RAW, 0)  # NETLINK_ROUTE
        self.seq = 0

    def request(self, kind: int, flags: int, body: bytes) -> None:
        """Send a KIND message with BODY; wait for the kernel's answer."""
        self.seq += 1
        self.sock.send(_NLMSGHDR.pack(_NLMSGHDR.size + len(body), kind,
                                      NLM_F_REQUEST | NLM_F_ACK | flags, self.seq, 0) + body)
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
