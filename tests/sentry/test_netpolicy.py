"""The network policy table (sentry/netpolicy.py) and its decoding
(sentry/netguard.py), without a container."""

from __future__ import annotations

import ipaddress
import json

import pytest

from sentry.netguard import NetGuard, destination, sockaddr
from sentry.netpolicy import (ALLOW, DENY, IN, OUT, NetPolicy, PolicyError, PolicySource,
                              build_policy, parse_rule, spellings)

META = "169.254.169.254"


def _decide(pol: NetPolicy, addr: str, port: int = 80, direction: str = OUT) -> str:
    return pol.decide(direction, ipaddress.ip_address(addr), port).verdict


@pytest.mark.parametrize("spelling", [
    META, "::ffff:" + META, "::" + META, "64:ff9b::a9fe:a9fe", "64:ff9b:1::a9fe:a9fe",
    "2002:a9fe:a9fe::1", "fe80::1", "169.254.0.1",
])
def test_metadata_is_denied_by_default_in_every_spelling(spelling: str) -> None:
    assert _decide(build_policy(PolicySource()), spelling) == DENY


def test_longest_prefix_wins_and_deny_breaks_ties() -> None:
    pol = build_policy(PolicySource(allow=["0.0.0.0/0", "10.1.2.0/24:80,443", "169.254.169.254/32:80"],
                                    deny=["10.1.0.0/16", "10.9.0.0/16"]))
    assert _decide(pol, "8.8.8.8") == ALLOW
    assert _decide(pol, "10.1.2.3", 80) == ALLOW
    assert _decide(pol, "10.1.2.3", 81) == DENY
    assert _decide(pol, "10.1.3.3") == DENY
    assert _decide(pol, META, 80) == ALLOW      # opened on purpose, /32
    assert _decide(pol, META, 81) == DENY       # only that port
    assert _decide(pol, "169.254.1.1") == DENY  # the /0 allow does not open the /16
    pol = build_policy(PolicySource(allow=["10.9.0.0/16"], deny=["10.9.0.0/16"]))
    assert _decide(pol, "10.9.1.1") == DENY


def test_default_deny_keeps_the_loopback_but_not_in_host_mode() -> None:
    pol = build_policy(PolicySource(default=DENY, allow=["10.0.0.53/32:53"]))
    assert _decide(pol, "127.0.0.1") == ALLOW and _decide(pol, "::1") == ALLOW
    assert _decide(pol, "10.0.0.53", 53) == ALLOW and _decide(pol, "10.0.0.53", 54) == DENY
    assert _decide(pol, "1.1.1.1", 53) == DENY
    host = build_policy(PolicySource(default=DENY), host_network=True)
    assert _decide(host, "127.0.0.1") == DENY


def test_private_ranges_on_request() -> None:
    pol = build_policy(PolicySource(deny_private=True))
    for a in ("10.0.0.1", "172.16.0.1", "192.168.1.1", "100.64.0.1", "fd00::1", "::ffff:10.0.0.1"):
        assert _decide(pol, a) == DENY, a
    assert _decide(pol, "8.8.8.8") == ALLOW


def test_ingress_rules_are_separate() -> None:
    pol = build_policy(PolicySource(deny=["in:0.0.0.0/0:22"]))
    assert _decide(pol, "0.0.0.0", 22, IN) == DENY
    assert _decide(pol, "0.0.0.0", 8080, IN) == ALLOW
    assert _decide(pol, "10.0.0.1", 22, OUT) == ALLOW


@pytest.mark.parametrize("text", ["10.0.0.300/8", "10.0.0.0/8:70000", "[2001:db8::/32", "nonsense",
                                  "10.0.0.0/8:80-10"])
def test_bad_rules_are_refused(text: str) -> None:
    with pytest.raises(PolicyError):
        parse_rule(DENY, text)


def test_rule_forms() -> None:
    r = parse_rule(ALLOW, "[2001:db8::/32]:443,8000-8100")
    assert r.net == ipaddress.ip_network("2001:db8::/32") and r.holds_port(8050) and not r.holds_port(80)
    assert parse_rule(DENY, "in:10.0.0.1").direction == IN
    assert parse_rule(DENY, "fe80::/10").ports == ()


def test_annotations_and_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    f = tmp_path / "p.json"
    f.write_text(json.dumps({"default": "deny", "allow": ["10.0.0.0/8:443"]}))
    pol = build_policy(PolicySource(file=str(f)),
                       {"dev.runsc-py.net.deny": "10.1.0.0/16 10.2.0.0/16",
                        "dev.runsc-py.net.deny-private": "false"})
    assert _decide(pol, "10.3.0.1", 443) == ALLOW
    assert _decide(pol, "10.1.0.1", 443) == DENY
    assert _decide(pol, "8.8.8.8", 443) == DENY
    assert NetPolicy.from_json(json.loads(json.dumps(pol.to_json()))).rules == pol.rules


def test_backstop_takes_whole_denied_networks_only() -> None:
    pol = build_policy(PolicySource(allow=["10.1.2.0/24"], deny=["10.1.0.0/16", "10.9.0.0/16:80",
                                                                  "192.0.2.0/24"]))
    nets = [str(n) for n in pol.denied_nets()]
    assert nets[:2] == ["169.254.0.0/16", "fe80::/10"]
    assert "192.0.2.0/24" in nets
    assert "10.1.0.0/16" not in nets   # partly reopened
    assert "10.9.0.0/16" not in nets   # one port only: the sentry's alone


def test_spellings() -> None:
    got = {str(a) for a in spellings(ipaddress.ip_address("::ffff:1.2.3.4"))}
    assert got == {"::ffff:102:304", "1.2.3.4"}
    assert [str(a) for a in spellings(ipaddress.ip_address("::1"))] == ["::1"]


def test_destination_decoding_follows_the_kernel() -> None:
    v4 = sockaddr(ipaddress.ip_address(META), 80)
    assert destination(v4) == (ipaddress.ip_address(META), 80)
    unspec = b"\0\0" + v4[2:]                # AF_UNSPEC: udp_sendmsg reads sin_addr
    assert destination(unspec) == (ipaddress.ip_address(META), 80)
    assert destination(v4[:8]) is None       # too short: the kernel says EINVAL
    v6 = sockaddr(ipaddress.ip_address("::ffff:" + META), 443)
    assert destination(v6)[1] == 443
    assert destination(b"\x01\x00/tmp/x\0") is None  # AF_UNIX


def test_guard_refuses_and_caches() -> None:
    g = NetGuard(build_policy(PolicySource(deny=["10.0.0.0/8"])))
    denied = sockaddr(ipaddress.ip_address("10.1.1.1"), 80)
    assert g.check(1, "connect", denied) == -13
    assert g.check(1, "connect", denied) == -13  # from the cache
    assert g.check(1, "bind", denied) == 0       # ingress: other rules
    assert g.check(1, "sendto", sockaddr(ipaddress.ip_address("::ffff:" + META), 53)) == -13
    assert g.check(1, "connect", sockaddr(ipaddress.ip_address("10.1.1.1"), 80)[:8]) == 0
