"""Invariants of the syscall table and the filter built from it."""

from __future__ import annotations

import errno
import random
import struct

import pytest

from sentry import policy
from sentry.filter import build_bpf, build_pfc
from sentry.policy import (ALLOW, DANGEROUS, DENY, EMULATE, HOST_SURFACE_LIMIT, NATIVE, NOTIFY, Entry,
                           PolicyOptions)
from sentry.supervisor import build_dispatch


def test_no_syscall_in_two_tiers() -> None:
    names = [e.name for e in policy._raw_entries(PolicyOptions())]
    dup = {n for n in names if names.count(n) > 1}
    assert not dup


def test_duplicate_is_refused() -> None:
    e = policy._native("read", "x")
    with pytest.raises(ValueError, match="read"):
        policy._check_unique([e, policy._deny("read", errno.EPERM, "y")])


@pytest.mark.parametrize("opts", [PolicyOptions(), PolicyOptions(net_raw=True, uts_private=True)])
def test_host_kernel_surface_is_small(opts: PolicyOptions) -> None:
    """Native plus notified-then-continued: at most 200, none dangerous."""
    t = policy.build_table(opts)
    surface = policy.host_surface(t)
    assert len(surface) <= HOST_SURFACE_LIMIT, len(surface)
    assert not set(surface) & set(DANGEROUS)


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


def test_every_syscall_has_a_deliberate_answer() -> None:
    """No x86-64 syscall is left to the filter's default: each has an entry
    with its tier and reason (runsc-py policy prints them)."""
    rows = policy.policy_table(PolicyOptions(uts_private=True))
    assert not [r[1] for r in rows if "not classified" in r[4]]


def test_table_covers_every_syscall() -> None:
    rows = policy.policy_table()
    assert {r[1] for r in rows} == set(policy.syscall_numbers())
    assert all(r[2] in (NATIVE, EMULATE, DENY) and r[4] for r in rows)


def test_ioctl_rules_low32_and_no_tiocsti() -> None:
    e = policy.build_table()["ioctl"]
    for r in e.rules:
        cmp, *more = r.args  # the command first; TIOCSCTTY also checks its argument
        assert cmp.index == 1 and cmp.op == "masked_eq" and cmp.mask == 0xFFFFFFFF
        assert all(c.index == 2 for c in more) and (not more or cmp.value == policy.TIOCSCTTY)
        if r.action == policy.ALLOW:
            assert cmp.value != policy.TIOCSTI
    assert e.decide([0, policy.TIOCSTI | 1 << 32, 0, 0, 0, 0]) == errno.EPERM


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


def test_every_notified_syscall_has_a_real_handler() -> None:
    """build_dispatch never leaves a hole (a missing handler becomes an
    ENOSYS stub), so what must hold is that no emulated entry got a stub:
    each is the function its table entry names."""
    import importlib
    d = build_dispatch()
    numbers = policy.syscall_numbers()
    for e in policy.build_table().values():
        if e.tier != EMULATE:
            continue
        mod_name, _, func = e.handler.rpartition(".")
        mod = importlib.import_module(f"sentry.syscalls.{mod_name}")
        want = getattr(mod, func, None)
        assert callable(want), f"{e.name}: handler {e.handler} does not exist"
        assert d[numbers[e.name]] is want, f"{e.name}: dispatch has {d[numbers[e.name]]!r}"
        assert not want.__name__.startswith("missing_"), e.name


def _continues(mod, fn, depth: int = 3) -> bool:  # type: ignore[no-untyped-def]
    """Does fn call reply_continue, itself or through functions of its own
    module (a few levels deep)?"""
    import ast
    import inspect
    src = inspect.getsource(fn)
    if "reply_continue(" in src:
        return True
    if depth == 0:
        return False
    called = {n.func.id for n in ast.walk(ast.parse(src.strip() if src[0] != " " else "if 1:\n" + src))
              if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    return any(callable(getattr(mod, c, None)) and getattr(getattr(mod, c), "__module__", "") == mod.__name__
               and _continues(mod, getattr(mod, c), depth - 1) for c in called)


def test_continue_table_matches_the_handlers() -> None:
    """policy.CONTINUES lists exactly the emulated calls whose handler lets
    the kernel run them (reply_continue in the handler's code or its
    module's helpers), each with its reason: the README's list is printed
    from it."""
    import importlib
    table = policy.build_table()
    continuing = set()
    for e in table.values():
        if e.tier != EMULATE:
            continue
        mod_name, _, func = e.handler.rpartition(".")
        mod = importlib.import_module(f"sentry.syscalls.{mod_name}")
        if _continues(mod, getattr(mod, func)):
            continuing.add(e.name)
    assert continuing == set(policy.CONTINUES), (
        f"continue without a reason: {sorted(continuing - set(policy.CONTINUES))}; "
        f"listed but never continued: {sorted(set(policy.CONTINUES) - continuing)}")
    assert all(len(r) > 20 for r in policy.CONTINUES.values())


# --- refused argument modes: the errno Linux gives an unprivileged process ----

AF_BLUETOOTH, IPPROTO_ICMP, NETLINK_AUDIT = 31, 1, 9
PR_SET_SECCOMP, ARCH_GET_CPUID, ADDR_NO_RANDOMIZE = 22, 0x1011, 0x0040000

# (syscall, args, without net_raw, with net_raw)
REFUSALS = [
    ("ioctl", [1, 0x1234], errno.ENOTTY, errno.ENOTTY),
    ("ioctl", [1, 0x5409], ALLOW, ALLOW),  # TCSBRK (tcdrain): in the set since issue 3 closed it
    ("ioctl", [1, 0x5460], ALLOW, ALLOW),  # FIOQSIZE: in the set since issue 15
    ("ioctl", [1, 0x5452], ALLOW, ALLOW),  # FIOASYNC (nginx)
    ("ioctl", [0, policy.TIOCSTI], errno.EPERM, errno.EPERM),
    ("ioctl", [0, policy.TIOCSTI | 1 << 32], errno.EPERM, errno.EPERM),
    ("ioctl", [3, policy.PRIVILEGED_IOCTLS["SIOCSIFFLAGS"]], errno.EPERM, errno.EPERM),
    ("ioctl", [3, policy.PRIVILEGED_IOCTLS["FIFREEZE"]], errno.EPERM, errno.EPERM),
    ("ioctl", [0, 0x5401 | 1 << 32], ALLOW, ALLOW),  # TCGETS, high bits ignored
    ("socket", [AF_BLUETOOTH, policy.SOCK_STREAM, 0], errno.EAFNOSUPPORT, errno.EAFNOSUPPORT),
    ("socket", [999, policy.SOCK_STREAM, 0], errno.EAFNOSUPPORT, errno.EAFNOSUPPORT),
    ("socket", [policy.AF_PACKET, policy.SOCK_RAW, 0x300], errno.EPERM, ALLOW),
    ("socket", [policy.AF_INET, policy.SOCK_PACKET, 0x300], errno.EPERM, ALLOW),
    ("socket", [policy.AF_INET6, policy.SOCK_PACKET, 0], errno.ESOCKTNOSUPPORT, errno.ESOCKTNOSUPPORT),
    ("socket", [policy.AF_INET, policy.SOCK_RAW, IPPROTO_ICMP], errno.EPERM, ALLOW),
    ("socket", [policy.AF_INET6, policy.SOCK_RAW | 0x80000, IPPROTO_ICMP], errno.EPERM, ALLOW),
    ("socket", [policy.AF_INET, 4, 0], errno.ESOCKTNOSUPPORT, errno.ESOCKTNOSUPPORT),  # SOCK_RDM
    ("socket", [policy.AF_INET, 12, 0], errno.EINVAL, errno.EINVAL),  # >= SOCK_MAX
    ("socket", [policy.AF_UNIX, policy.SOCK_RAW, 0], ALLOW, ALLOW),  # a SOCK_DGRAM in Linux
    ("socket", [policy.AF_UNIX, 0, 0], errno.ESOCKTNOSUPPORT, errno.ESOCKTNOSUPPORT),
    ("socket", [policy.AF_NETLINK, policy.SOCK_RAW, NETLINK_AUDIT], errno.EPROTONOSUPPORT,
     errno.EPROTONOSUPPORT),
    ("socket", [policy.AF_NETLINK, policy.SOCK_STREAM, 0], errno.ESOCKTNOSUPPORT,
     errno.ESOCKTNOSUPPORT),
    ("socket", [policy.AF_NETLINK, policy.SOCK_DGRAM | 0x800, 0], NOTIFY, NOTIFY),  # made by the sentry
    ("socketpair", [policy.AF_INET, policy.SOCK_STREAM, 0], errno.EOPNOTSUPP, errno.EOPNOTSUPP),
    ("socketpair", [AF_BLUETOOTH, policy.SOCK_STREAM, 0], errno.EAFNOSUPPORT, errno.EAFNOSUPPORT),
    ("socketpair", [policy.AF_PACKET, policy.SOCK_RAW, 0], errno.EPERM, errno.EPERM),
    ("prctl", [policy.PRCTL_PRIVILEGED["PR_SET_MM"], 1], errno.EPERM, errno.EPERM),
    ("prctl", [policy.PRCTL_PRIVILEGED["PR_SET_MM"] | 1 << 32, 1], ALLOW, ALLOW),  # the kernel: EINVAL
    ("prctl", [28, 0], ALLOW, ALLOW),  # PR_SET_SECUREBITS: the kernel checks CAP_SETPCAP
    ("prctl", [PR_SET_SECCOMP, 2], ALLOW, ALLOW),  # own filters: they only restrict
    ("prctl", [1000], ALLOW, ALLOW),  # the kernel answers EINVAL itself
    ("arch_prctl", [ARCH_GET_CPUID], ALLOW, ALLOW),
    ("personality", [ADDR_NO_RANDOMIZE], ALLOW, ALLOW),
    ("seccomp", [1, 0, 0], ALLOW, ALLOW),
    ("clone", [policy.CLONE_NEWUSER | 17], errno.EPERM, errno.EPERM),
    ("unshare", [policy.CLONE_NEWUSER], errno.EPERM, errno.EPERM),
    ("unshare", [policy.CLONE_NEWTIME], errno.EPERM, errno.EPERM),
    ("unshare", [0x400 | 0x200], ALLOW, ALLOW),  # CLONE_FILES | CLONE_FS
    ("ioctl", [0, policy.TIOCSCTTY, 1], errno.EPERM, errno.EPERM),
    ("ioctl", [0, policy.TIOCSCTTY, 0], ALLOW, ALLOW),
    ("ioctl", [0, policy.TTY_IOCTLS["TCFLSH"], 2], ALLOW, ALLOW),
    ("setns", [3, 0], errno.EPERM, errno.EPERM),
]


@pytest.mark.parametrize("net_raw", [False, True])
def test_refused_modes_get_linux_errnos(net_raw: bool) -> None:
    opts = PolicyOptions(net_raw=net_raw)
    table, prog, numbers = policy.build_table(opts), build_bpf(opts), policy.syscall_numbers()
    for name, args, without, with_raw in REFUSALS:
        want = with_raw if net_raw else without
        full = (args + [0] * 6)[:6]
        assert table[name].decide(full) == want, (name, args)
        assert _run_bpf(prog, numbers[name], full) == _ret(want), (name, args)


# --- the exported BPF does what the table says ------------------------------
# A classic-BPF interpreter runs the filter libseccomp built on sample
# arguments and compares with Entry.decide(): this holds libseccomp to the
# order the `otherwise` catch-all relies on, and catches overlapping rules.

_ARCH_X86_64, _ARCH_I386 = 0xC000003E, 0x40000003
_KILL_PROCESS = 0x80000000


def _ret(action: str | int) -> int:
    if action == ALLOW:
        return 0x7FFF0000
    if action == NOTIFY:
        return 0x7FC00000
    assert isinstance(action, int)
    return 0x00050000 | action


def _run_bpf(prog: bytes, nr: int, args: list[int], arch: int = _ARCH_X86_64) -> int:
    """Run a seccomp BPF program on one seccomp_data; the return value."""
    code = [struct.unpack_from("<HBBI", prog, i) for i in range(0, len(prog), 8)]
    data = struct.pack("<iIQ6Q", nr, arch, 0, *[a & (1 << 64) - 1 for a in args])
    acc, mem, pc = 0, [0] * 16, 0
    while True:
        op, jt, jf, k = code[pc]
        pc += 1
        if op == 0x20:  # ld [k]
            acc = struct.unpack_from("<I", data, k)[0]
        elif op == 0x00:  # ld #k
            acc = k
        elif op == 0x02:  # st M[k]
            mem[k] = acc
        elif op == 0x60:  # ld M[k]
            acc = mem[k]
        elif op == 0x54:  # and #k
            acc &= k
        elif op == 0x05:  # ja
            pc += k
        elif op in (0x15, 0x25, 0x35, 0x45):  # jeq, jgt, jge, jset #k
            taken = {0x15: acc == k, 0x25: acc > k, 0x35: acc >= k, 0x45: bool(acc & k)}[op]
            pc += jt if taken else jf
        elif op == 0x06:  # ret #k
            return k
        else:
            raise AssertionError(f"bpf: opcode {op:#x} at {pc - 1} not interpreted")


def _samples(e: Entry, rng: random.Random) -> list[list[int]]:
    """Argument vectors that hit every rule of e, its edges and the rest."""
    out = [[0] * 6] + [[rng.getrandbits(64) for _ in range(6)] for _ in range(20)]
    for r in e.rules:
        hit = [0] * 6
        for c in r.args:
            hit[c.index] = c.value + 1 if c.op == "ne" else c.value
        out.append(hit)
        for c in r.args:
            for v in (hit[c.index] + 1, hit[c.index] | 1 << 32, hit[c.index] ^ 0x8, 0,
                      0xFFFFFFFF, 1 << 63, rng.getrandbits(32)):
                out.append(hit[:c.index] + [v] + hit[c.index + 1:])
    return out


@pytest.mark.parametrize("net_raw", [False, True])
def test_bpf_matches_the_table(net_raw: bool) -> None:
    opts = PolicyOptions(net_raw=net_raw)
    prog, numbers, rng = build_bpf(opts), policy.syscall_numbers(), random.Random(3)
    table = policy.build_table(opts)
    for name, nr in numbers.items():
        e = table.get(name)
        if e is None:  # unclassified: the filter's default
            assert _run_bpf(prog, nr, [0] * 6) == _ret(errno.ENOSYS), name
            continue
        for args in _samples(e, rng):
            assert _run_bpf(prog, nr, args) == _ret(e.decide(args)), (name, [hex(a) for a in args])
    # Foreign ABIs are killed whatever the call.
    assert _run_bpf(prog, 20, [0] * 6, arch=_ARCH_I386) == _KILL_PROCESS
    assert _run_bpf(prog, 0x40000000 | numbers["getpid"], [0] * 6) == _KILL_PROCESS


@pytest.mark.parametrize("net_raw", [False, True])
def test_rules_never_overlap_with_different_actions(net_raw: bool) -> None:
    rng = random.Random(5)
    for e in policy.build_table(PolicyOptions(net_raw=net_raw)).values():
        for args in _samples(e, rng):
            actions = {r.action for r in e.rules if r.holds(args)}
            assert len(actions) <= 1, (e.name, [hex(a) for a in args], actions)


def test_syscall_numbers_written_out_are_libseccomps() -> None:
    """sentry/sysno.py (read at start-up instead of asking libseccomp for
    512 numbers) says what libseccomp's table and the newer calls say."""
    assert policy.syscall_numbers() == policy.libseccomp_numbers()
