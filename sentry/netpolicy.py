"""The network policy the sentry enforces: rules as data, matched by prefix.

A rule is (verdict, direction, network, ports, origin): `allow out
10.0.0.0/8:443`, `deny out 169.254.0.0/16` (default: cloud metadata).
Directions: `out` is checked on connect, sendto, sendmsg and sendmmsg with
an address (the destination); `in` on bind and listen (the local address
the socket accepts on).

Matching: among the rules of the direction whose network holds the address
and whose ports hold the port, the LONGEST prefix wins; at equal length a
deny beats an allow.  So an operator's `allow out 0.0.0.0/0` does not open
the metadata range (a /16 deny is more specific), while `allow out
169.254.169.254/32:80` does, on purpose.  No rule matching: the direction's
default (allow unless set to deny: `--net-default=deny`).

Spellings: a destination is checked under every address that reaches the
same host, and refused if any of them is: an IPv6 address embedding an
IPv4 one (IPv4-mapped ::ffff:a.b.c.d, which an AF_INET6 socket sends as
IPv4; IPv4-compatible ::a.b.c.d; NAT64 64:ff9b::/96 and 64:ff9b:1::/48;
6to4 2002::/16; Teredo's client address) is also checked as that IPv4
address.  An AF_INET address has one spelling at the system call (the
decimal, octal or short forms are the resolver's business: what reaches the
kernel is four bytes), and so does an IPv6 one (16 bytes; the scope id does
not change the destination's prefix).

Built-in rules (origin "default"): deny out 169.254.0.0/16 and fe80::/10
(cloud metadata, link-local); allow out 127.0.0.0/8, ::1/128 and the
unspecified addresses 0.0.0.0/32 and ::/128 (which Linux connects to the
local host): the sandbox's own loopback, so `--net-default=deny` keeps it
(not in --network=host, where loopback is the host's); with
`deny_private`: deny out 10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7.

Lookup cost does not grow with the rule count: rules are kept per family,
direction and prefix length in dicts keyed by the masked network, and a
lookup probes each prefix length present (at most 33 or 129), longest first.
"""

from __future__ import annotations

import errno
import ipaddress
TYPE_CHECKING = False  # typing's, without importing typing (docs/performance.md, Start-up)
if TYPE_CHECKING:
    from typing import Any, Iterable, Sequence

from runsc_py import jsonio
from runsc_py.record import Record

ALLOW = "allow"
DENY = "deny"
OUT = "out"
IN = "in"

AF_INET = 2
AF_INET6 = 10

# The errno a refused call gets: what Linux answers for a destination a
# `prohibit` route or rule refuses (the kernel backstop gives the same).
DENIED_ERRNO = errno.EACCES

METADATA = ("169.254.0.0/16", "fe80::/10")
LOOPBACK = ("127.0.0.0/8", "::1/128", "0.0.0.0/32", "::/128")
PRIVATE = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")

Net = ipaddress.IPv4Network | ipaddress.IPv6Network


class PortRange(Record, frozen=True):
    lo: int
    hi: int

    def holds(self, port: int) -> bool:
        return self.lo <= port <= self.hi

    def text(self) -> str:
        return str(self.lo) if self.lo == self.hi else f"{self.lo}-{self.hi}"


class NetRule(Record, frozen=True):
    """One rule.  ports empty: every port."""

    verdict: str
    direction: str
    net: Net
    ports: tuple[PortRange, ...] = ()
    origin: str = "flag"

    def holds_port(self, port: int) -> bool:
        return not self.ports or any(p.holds(port) for p in self.ports)

    def text(self) -> str:
        ports = ":" + ",".join(p.text() for p in self.ports) if self.ports else ""
        net = f"[{self.net}]" if self.ports and self.net.version == 6 else str(self.net)
        return f"{self.verdict} {self.direction} {net}{ports} ({self.origin})"


class PolicyError(ValueError):
    """A rule, flag, annotation or policy file that does not parse."""


def parse_ports(text: str) -> tuple[PortRange, ...]:
    """"80", "80,443", "8000-8100" -> port ranges."""
    out = []
    for part in text.split(","):
        lo, _, hi = part.strip().partition("-")
        try:
            a, b = int(lo), int(hi or lo)
        except ValueError:
            raise PolicyError(f"port {part!r}: not a number or range") from None
        if not (0 <= a <= b <= 65535):
            raise PolicyError(f"port range {part!r}: out of 0-65535")
        out.append(PortRange(a, b))
    return tuple(out)


def parse_rule(verdict: str, text: str, origin: str = "flag") -> NetRule:
    """`[in:|out:]CIDR[:PORTS]`; an IPv6 CIDR with ports is bracketed:
    `[2001:db8::/32]:443`.  A bare address is a /32 or /128."""
    if verdict not in (ALLOW, DENY):
        raise PolicyError(f"rule {text!r}: verdict must be allow or deny")
    body = text.strip()
    direction = OUT
    for d in (IN, OUT):
        if body.startswith(d + ":"):
            direction, body = d, body[len(d) + 1:]
    ports: tuple[PortRange, ...] = ()
    if body.startswith("["):
        end = body.find("]")
        if end < 0:
            raise PolicyError(f"rule {text!r}: unclosed '['")
        cidr, rest = body[1:end], body[end + 1:]
        if rest:
            if not rest.startswith(":"):
                raise PolicyError(f"rule {text!r}: expected ':PORTS' after ']'")
            ports = parse_ports(rest[1:])
    elif body.count(":") == 1:  # IPv4 CIDR with ports
        cidr, port_text = body.split(":")
        ports = parse_ports(port_text)
    else:
        cidr = body
    try:
        net = ipaddress.ip_network(cidr, strict=False)
    except ValueError as e:
        raise PolicyError(f"rule {text!r}: {e}") from None
    return NetRule(verdict, direction, net, ports, origin)


def default_rules(deny_private: bool = False, host_network: bool = False) -> list[NetRule]:
    """The built-in rules (module docstring)."""
    rules = [NetRule(DENY, OUT, ipaddress.ip_network(c), (), "default: cloud metadata and link-local")
             for c in METADATA]
    if not host_network:
        rules += [NetRule(ALLOW, OUT, ipaddress.ip_network(c), (), "default: the sandbox's loopback")
                  for c in LOOPBACK]
    if deny_private:
        rules += [NetRule(DENY, OUT, ipaddress.ip_network(c), (), "private ranges (--net-deny-private)")
                  for c in PRIVATE]
    return rules


# --- spellings ----------------------------------------------------------------
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
_6TO4 = ipaddress.ip_network("2002::/16")
_TEREDO = ipaddress.ip_network("2001::/32")


def spellings(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """addr and every IPv4 address it embeds (module docstring)."""
    out: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = [addr]
    if addr.version == 4:
        return out
    assert isinstance(addr, ipaddress.IPv6Address)
    n = int(addr)
    low32 = ipaddress.IPv4Address(n & 0xFFFFFFFF)
    if addr.ipv4_mapped is not None:
        out.append(addr.ipv4_mapped)
    elif n >> 32 == 0 and n > 1:  # IPv4-compatible ::a.b.c.d (not :: or ::1)
        out.append(low32)
    if addr in _NAT64 or addr in _NAT64_LOCAL:
        out.append(low32)
    if addr.sixtofour is not None:
        out.append(addr.sixtofour)
    if addr in _TEREDO and addr.teredo is not None:
        out.extend(addr.teredo)  # (server, client)
    return out


# --- the compiled table ---------------------------------------------------------
class _Index(Record):
    """Rules of one (family, direction): prefix length -> masked net -> rules."""

    bits: int
    by_len: dict[int, dict[int, list[NetRule]]] = {}
    lengths: list[int] = []  # longest first

    def add(self, r: NetRule) -> None:
        plen = r.net.prefixlen
        self.by_len.setdefault(plen, {}).setdefault(int(r.net.network_address), []).append(r)
        self.lengths = sorted(self.by_len, reverse=True)

    def match(self, value: int, port: int) -> NetRule | None:
        full = (1 << self.bits) - 1
        for plen in self.lengths:
            mask = full ^ ((1 << (self.bits - plen)) - 1)
            rules = self.by_len[plen].get(value & mask)
            if not rules:
                continue
            hit = None
            for r in rules:
                if r.holds_port(port):
                    if r.verdict == DENY:
                        return r
                    hit = r
            if hit is not None:
                return hit
        return None


class Decision(Record, frozen=True):
    verdict: str
    rule: NetRule | None   # None: the direction's default
    address: str           # the spelling that decided (the first one, when allowed)

    @property
    def allowed(self) -> bool:
        return self.verdict == ALLOW

    def rule_text(self) -> str:
        return self.rule.text() if self.rule else f"{self.verdict} (default)"


class NetPolicy:
    """The compiled rule table of one sandbox."""

    def __init__(self, rules: Iterable[NetRule], default_out: str = ALLOW,
                 default_in: str = ALLOW) -> None:
        self.rules = tuple(rules)
        self.defaults = {OUT: default_out, IN: default_in}
        self._idx = {(v, d): _Index(32 if v == 4 else 128) for v in (4, 6) for d in (IN, OUT)}
        for r in self.rules:
            self._idx[(r.net.version, r.direction)].add(r)

    def decide(self, direction: str, addr: ipaddress.IPv4Address | ipaddress.IPv6Address,
               port: int) -> Decision:
        """The verdict for reaching (addr, port) in DIRECTION."""
        first: Decision | None = None
        for a in spellings(addr) if direction == OUT else (addr,):
            r = self._idx[(a.version, direction)].match(int(a), port)
            d = Decision(r.verdict if r else self.defaults[direction], r, str(a))
            if not d.allowed:
                return d
            if first is None:
                first = d
        assert first is not None
        return first

    def to_json(self) -> dict[str, Any]:
        return {"default_out": self.defaults[OUT], "default_in": self.defaults[IN],
                "rules": [{"verdict": r.verdict, "direction": r.direction, "net": str(r.net),
                           "ports": [[p.lo, p.hi] for p in r.ports], "origin": r.origin}
                          for r in self.rules]}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "NetPolicy":
        rules = [NetRule(r["verdict"], r["direction"], ipaddress.ip_network(r["net"]),
                         tuple(PortRange(lo, hi) for lo, hi in r.get("ports") or ()), r.get("origin", ""))
                 for r in d.get("rules") or []]
        return cls(rules, d.get("default_out", ALLOW), d.get("default_in", ALLOW))

    def denied_nets(self) -> list[Net]:
        """Networks denied outright (every port, out), for the kernel backstop:
        those no more specific allow rule reopens in part."""
        allows = [r.net for r in self.rules if r.direction == OUT and r.verdict == ALLOW]
        out = []
        for r in self.rules:
            if r.direction != OUT or r.verdict != DENY or r.ports:
                continue
            if any(a.version == r.net.version and a.subnet_of(r.net) and a != r.net  # type: ignore[arg-type]
                   for a in allows):
                continue
            out.append(r.net)
        return out


# --- where rules come from ---------------------------------------------------------
class PolicySource(Record):
    """What the command line, a policy file and the spec's annotations say."""

    allow: Sequence[str] = ()
    deny: Sequence[str] = ()
    default: str = ""          # "", allow or deny (egress)
    deny_private: bool = False
    file: str = ""


ANNOTATION_PREFIX = "dev.runsc-py.net."
# Annotations (per container: containerd `--annotation`, Docker `--annotation`,
# podman `--annotation`, CRI pod annotations):
#   dev.runsc-py.net.allow   "CIDR[:PORTS] CIDR[:PORTS] ..." (space or comma+space separated)
#   dev.runsc-py.net.deny    same
#   dev.runsc-py.net.default allow|deny
#   dev.runsc-py.net.deny-private true|false
#   dev.runsc-py.net.log     true|false (log every decision)


def _split_list(text: str) -> list[str]:
    return [t for t in text.replace(";", " ").split() if t]


def _load_file(path: str) -> dict[str, Any]:
    """A policy file: JSON {"default": "deny", "deny_private": true,
    "allow": ["10.0.0.0/8:443", "in:0.0.0.0/0:8080"], "deny": [...]}."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise PolicyError(f"network policy file {path}: {e.strerror}") from None
    try:
        data = jsonio.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise PolicyError(f"network policy file {path}: {e}") from None
    if not isinstance(data, dict):
        raise PolicyError(f"network policy file {path}: not a JSON object")
    return data


def _bool(v: Any) -> bool:
    return v is True or str(v).lower() in ("1", "true", "yes")


def build_policy(src: PolicySource, annotations: dict[str, str] | None = None,
                 host_network: bool = False) -> NetPolicy:
    """Defaults, then the policy file, then flags, then annotations (all
    rules are kept; the longest prefix decides, whoever wrote it)."""
    rules: list[NetRule] = []
    default = src.default
    deny_private = src.deny_private
    if src.file:
        data = _load_file(src.file)
        default = data.get("default", default) or default
        deny_private = deny_private or _bool(data.get("deny_private", False))
        for verdict in (ALLOW, DENY):
            for t in data.get(verdict) or []:
                rules.append(parse_rule(verdict, str(t), f"file {src.file}"))
    rules += [parse_rule(ALLOW, t, "--net-allow") for t in src.allow]
    rules += [parse_rule(DENY, t, "--net-deny") for t in src.deny]
    ann = annotations or {}
    for verdict in (ALLOW, DENY):
        for t in _split_list(ann.get(ANNOTATION_PREFIX + verdict, "").replace(",", " ")):
            rules.append(parse_rule(verdict, t, f"annotation {ANNOTATION_PREFIX}{verdict}"))
    if ANNOTATION_PREFIX + "default" in ann:
        default = ann[ANNOTATION_PREFIX + "default"]
    if _bool(ann.get(ANNOTATION_PREFIX + "deny-private", False)):
        deny_private = True
    default = default or ALLOW
    if default not in (ALLOW, DENY):
        raise PolicyError(f"network policy: default {default!r}: must be allow or deny")
    return NetPolicy(default_rules(deny_private, host_network) + rules, default_out=default)


def annotation_log(annotations: dict[str, str] | None) -> bool:
    return _bool((annotations or {}).get(ANNOTATION_PREFIX + "log", False))
