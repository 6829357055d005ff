"""The sentry's side of the network policy: decode a socket address the
handler copied once, decide (sentry/netpolicy.py), log the decision.

The handlers (sentry/syscalls/net_socket.py, net_send.py) never CONTINUE a
call that carries an address: they copy it, ask `check()`, and then either
make the call themselves on their pidfd_getfd copy of the workload's socket
(the same open file) with exactly the bytes that were checked, or answer
EACCES.  Another thread rewriting the sockaddr meanwhile changes nothing.

How the kernel reads a destination, which `destinations()` follows:
- sa_family AF_INET6 (len >= 24): the 16 address bytes at offset 8.  A
  v4-mapped address is sent as IPv4 (netpolicy.spellings covers it).
- sa_family AF_INET, or AF_UNSPEC with len >= 16: the 4 bytes at offset 4.
  udp_sendmsg and raw_sendmsg take an AF_UNSPEC sockaddr's sin_addr as the
  destination (a compatibility rule), so AF_UNSPEC is checked as IPv4 (on
  an AF_INET6 socket it means "no address": checking it is only stricter).
- AF_UNIX: paths and abstract names, not the network policy's business.
- any other family: AF_INET/AF_INET6 sockets refuse it (EAFNOSUPPORT or
  EINVAL); netlink addresses name the kernel or a local process; packet
  sockets (only with --net-raw) address links, not hosts: not checked.
An address too short for its family is made as given: the kernel answers
EINVAL before reading it.
"""

from __future__ import annotations

import ipaddress
import os
import time

from runsc_py import jsonio
from runsc_py.record import Record

from .netpolicy import DENIED_ERRNO, IN, OUT, Decision, NetPolicy
from runsc_py.log import INFO, WARNING, get_logger

log = get_logger("sentry.net")

AF_UNSPEC, AF_UNIX, AF_INET, AF_INET6 = 0, 1, 2, 10

IPAddr = ipaddress.IPv4Address | ipaddress.IPv6Address

# Which direction each call checks (in: the local address a socket accepts on).
DIRECTION = {"connect": OUT, "sendto": OUT, "sendmsg": OUT, "sendmmsg": OUT,
             "bind": IN, "listen": IN}


def destination(raw: bytes) -> tuple[IPAddr, int] | None:
    """(address, port) the kernel would use from this sockaddr, or None
    (not an IP destination, or too short: the kernel refuses it)."""
    if len(raw) < 2:
        return None
    fam = raw[0] | raw[1] << 8
    if fam == AF_INET6:
        if len(raw) < 24:
            return None
        return ipaddress.IPv6Address(raw[8:24]), raw[2] << 8 | raw[3]
    if fam == AF_INET or fam == AF_UNSPEC:
        if len(raw) < 16:
            return None
        return ipaddress.IPv4Address(raw[4:8]), raw[2] << 8 | raw[3]
    return None


CACHE_MAX = 4096


def _key(raw: bytes) -> bytes:
    """The bytes of a sockaddr the kernel reads for a destination (family,
    port, address): flowinfo, scope id and sin_zero do not change it."""
    if len(raw) >= 24 and raw[0] == AF_INET6 and raw[1] == 0:
        return b"6" + raw[:4] + raw[8:24]
    return b"4" + raw[:8] if len(raw) >= 16 else b"?" + raw


def sockaddr(addr: IPAddr, port: int) -> bytes:
    """A sockaddr_in / sockaddr_in6 for addr:port (tests, listen's check)."""
    if addr.version == 4:
        return AF_INET.to_bytes(2, "little") + port.to_bytes(2, "big") + addr.packed + bytes(8)
    return AF_INET6.to_bytes(2, "little") + port.to_bytes(2, "big") + bytes(4) + addr.packed + bytes(4)


class NetGuard(Record):
    """One sandbox's policy and decision log.

    log_fd: a file opened before the sandbox confined itself (--net-log),
    -1 for none; log_strace: also log every decision to the runtime's log
    (--strace).  Allowed decisions are logged only when one of them is on;
    denied ones always go to the runtime's log at WARNING.
    """

    policy: NetPolicy
    log_fd: int = -1
    log_strace: bool = False
    # (direction, family + port + address bytes) -> Decision: the policy
    # never changes, so a destination is decided once (a dict lookup
    # instead of ~10 us of address objects and prefix probes).  Bounded:
    # cleared when full.  Shared by the workers (a dict store is atomic).
    _cache: dict[tuple[str, bytes], tuple[Decision, IPAddr, int]] = {}

    @property
    def logging(self) -> bool:
        return self.log_fd >= 0 or self.log_strace

    def check(self, pid: int, call: str, raw: bytes) -> int:
        """0 if the call may be made with this sockaddr, else -EACCES."""
        direction = DIRECTION[call]
        key = (direction, _key(raw))
        hit = self._cache.get(key)
        if hit is None:
            dest = destination(raw)
            if dest is None:
                return 0
            hit = (self.policy.decide(direction, dest[0], dest[1]), dest[0], dest[1])
            if len(self._cache) >= CACHE_MAX:
                self._cache.clear()
            self._cache[key] = hit
        d, addr, port = hit
        if d.allowed:
            if self.logging:
                self._log(pid, call, addr, port, d)
            return 0
        self._log(pid, call, addr, port, d)
        return -DENIED_ERRNO

    def check_addr(self, pid: int, call: str, addr: IPAddr, port: int) -> int:
        d = self.policy.decide(DIRECTION[call], addr, port)
        if d.allowed:
            if self.logging:
                self._log(pid, call, addr, port, d)
            return 0
        self._log(pid, call, addr, port, d)
        return -DENIED_ERRNO

    def _log(self, pid: int, call: str, addr: IPAddr, port: int, d: Decision) -> None:
        rec = {"time": round(time.time(), 6), "pid": pid, "call": call,
               "address": str(addr), "port": port, "checked": d.address,
               "verdict": d.verdict, "rule": d.rule_text()}
        line = jsonio.dumps(rec, compact=True)
        if self.log_fd >= 0:
            try:
                os.write(self.log_fd, line.encode() + b"\n")  # O_APPEND: one write per line
            except OSError:
                pass
        if self.log_strace or not d.allowed:
            log.log(INFO if d.allowed else WARNING, "net %s", line)
