"""Invariants of the syscall table and the filter built from it."""

from __future__ import annotations

import errno

import pytest

from sentry import policy
from sentry.filter import build_bpf, build_pfc
from sentry.policy import DANGEROUS, DENY, EMULATE, NATIVE, NATIVE_LIMIT, PolicyOptions
from sentry.supervisor import build_dispatch


def test_no_syscall_in_two_tiers() -> None:
    names = [e.name for e in policy._raw_entries(PolicyOptions())]
    dup = {n for n in names if names.count(n) > 1}
    assert not dup


def test_duplicate_is_refused() -> None:
    e = policy._native("read", "x")
    with pytest.raises(ValueError, match="read"):
        policy._check_unique([e, policy._deny("read", errno.EPERM, "y")])


@pytest.mark.parametrize("net_raw", [False, True])
def test_native_tier_is_small(net_raw: bool) -> None:
    t = policy.build_table(PolicyOptions(net_raw=net_raw))
    assert sum(e.tier == NATIVE for e in t.values()) <= NATIVE_LIMIT


def test_dangerous_families_denied() -> None:
    t = policy.build_table()
    for name in DANGEROUS:
        assert t[name].tier == DENY, name
        assert t[name].errno in (errno.EPERM, errno.ENOSYS), name


def test_every_entry_has_a_reason_and_known_name() -> None:
    numbers = policy.syscall_numbers()
    for e in policy.build_table().values():
        assert e.reason.strip(), e.name
        assert e.name in numbers, e.name
        if e.tier == EMULATE:
            assert e.handler, e.name


def test_table_covers_every_syscall() -> None:
    rows = policy.policy_table()
    assert {r[1] for r in rows} == set(policy.syscall_numbers())
    assert all(r[2] in (NATIVE, EMULATE, DENY) and r[4] for r in rows)


def test_ioctl_rules_low32_and_no_tiocsti() -> None:
    e = policy.build_table()["ioctl"]
    for r in e.rules:
        (cmp,) = r.args
        assert cmp.op == "masked_eq" and cmp.mask == 0xFFFFFFFF
        assert cmp.value != policy.TIOCSTI


def test_clone_new_flags_never_allowed() -> None:
    e = policy.build_table()["clone"]
    allow = [r for r in e.rules if r.action == policy.ALLOW]
    assert len(allow) == 1 and allow[0].args[0].mask == policy.CLONE_NEW_MASK
    assert allow[0].args[0].value == 0


def test_net_raw_option_loosens_socket_only() -> None:
    base, raw = policy.build_table(), policy.build_table(PolicyOptions(net_raw=True))
    assert [k for k in base if base[k] != raw[k]] == ["socket"]


def test_filter_shape() -> None:
    pfc = build_pfc()
    assert "invalid architecture action\naction KILL_PROCESS" in pfc
    assert pfc.count("filter for arch") == 1  # x86-64 only
    assert "action ERRNO(38);" in pfc.split("# default action")[1]
    assert len(build_bpf()) % 8 == 0


def test_every_notified_syscall_has_a_dispatch_entry() -> None:
    d = build_dispatch()
    numbers = policy.syscall_numbers()
    for e in policy.build_table().values():
        if e.tier == EMULATE:
            assert d[numbers[e.name]] is not None, e.name
