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

The workload cannot remove them: its netlink sockets are made by the
sentry without CAP_NET_ADMIN (mutations EPERM whatever it holds), the
route ioctls are EPERM, and it cannot join another namespace.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import socket
from typing import Any, Iterable

log = logging.getLogger(__name__)

BASE_PREF = 100
FR_ACT_PROHIBIT = "FR_ACT_PROHIBIT"


def install(ipr: Any, nets: Iterable[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> int:
    """Add the rules with IPRoute ipr (a socket in the target namespace);
    rules already there (a namespace shared by a pod) are kept.  Returns
    how many rules are in place."""
    n = 0
    for i, net in enumerate(nets):
        fam = socket.AF_INET if net.version == 4 else socket.AF_INET6
        try:
            ipr.rule("add", family=fam, priority=BASE_PREF + i, dst=str(net.network_address),
                     dst_len=net.prefixlen, action=FR_ACT_PROHIBIT, table=0)
        except Exception as e:  # pyroute2's NetlinkError
            if getattr(e, "code", 0) != errno.EEXIST:
                raise RuntimeError(f"backstop rule to {net} prohibit: {e}") from None
        n += 1
    log.debug("network backstop: %d prohibit rules", n)
    return n


def loopback_up(ipr: Any) -> None:
    """lo up (RTM_NEWLINK with IFF_UP), as runc does for a private namespace."""
    idx = ipr.link_lookup(ifname="lo")
    if idx:
        ipr.link("set", index=idx[0], state="up")
