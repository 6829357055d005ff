"""Build the workload's BPF filter from the policy table (libseccomp).

- Default action ERRNO(ENOSYS): an unknown or unclassified syscall fails
  closed and looks absent (libc falls back where it can).
- Only x86-64 is in the filter.  libseccomp then emits, before the syscall
  checks, "arch != AUDIT_ARCH_X86_64 -> bad-arch action" (i386 via int 0x80)
  and "nr >= 0x40000000 (x32) -> bad-arch action"; the bad-arch action is
  KILL_PROCESS.
- native -> ALLOW (or the entry's argument rules), emulate -> NOTIFY,
  deny -> ERRNO(errno).  On the ptrace platform (`trace=True`) emulate is
  TRACE instead: the same program, every other action unchanged, so native
  calls never stop and only emulated ones cost a ptrace stop
  (sentry/platform/ptrace.py).
- A native entry's `otherwise` errno (the answer for argument values no rule
  matches) is one more rule, "arg >= 0" on the argument every rule compares
  first.  libseccomp puts that comparison after the equality tests on the
  same argument, and a value that fails a rule's later comparisons falls
  through to it; tests/sentry/test_policy.py runs the exported BPF against
  Entry.decide() to hold libseccomp to that.
"""

from __future__ import annotations

import errno

import seccomp

from .policy import ALLOW, DENY, EMULATE, NATIVE, NOTIFY, ArgCmp, Entry, PolicyOptions, build_table, ge
from runsc_py.log import get_logger

log = get_logger(__name__)

_OPS = {"eq": seccomp.EQ, "ne": seccomp.NE, "ge": seccomp.GE, "masked_eq": seccomp.MASKED_EQ}


def _action(act: str | int, emulate: int) -> int:
    if act == ALLOW:
        return seccomp.ALLOW
    if act == NOTIFY:
        return emulate
    assert isinstance(act, int)
    return seccomp.ERRNO(act)


def _arg(c: ArgCmp) -> seccomp.Arg:
    if c.op == "masked_eq":
        return seccomp.Arg(c.index, seccomp.MASKED_EQ, c.mask, c.value)
    return seccomp.Arg(c.index, _OPS[c.op], c.value)


def _first_arg(e: Entry) -> int:
    """The argument every rule of e compares: libseccomp's first tree level,
    where the catch-all for `otherwise` must sit to be tried last."""
    first = min(c.index for r in e.rules for c in r.args)
    if not all(any(c.index == first for c in r.args) for r in e.rules):
        raise ValueError(f"otherwise needs every rule to compare arg{first}")
    return first


def _add(f: seccomp.SyscallFilter, e: Entry, nr: int | str, trace: bool = False,
         emulate: int = seccomp.NOTIFY) -> None:
    """e's rules in f; trace: every errno answer goes to the sentry (NOTIFY),
    which gives the same errno and logs it (--strace).  emulate: the action
    that hands a call to the sentry (NOTIFY, or TRACE on ptrace)."""
    if trace:
        e = _traced(e)
    if e.tier == DENY:
        if e.errno == errno.ENOSYS:
            return  # the default action already; libseccomp refuses duplicates (EACCES)
        f.add_rule_exactly(seccomp.ERRNO(e.errno), nr)
    elif e.tier == EMULATE:
        f.add_rule_exactly(emulate, nr)
    elif e.tier == NATIVE:
        if not e.rules:
            f.add_rule_exactly(seccomp.ALLOW, nr)
        for r in e.rules:
            if r.action == errno.ENOSYS:
                if e.otherwise != errno.ENOSYS:
                    # libseccomp refuses a rule whose action is the default.
                    raise ValueError("an ENOSYS rule needs otherwise=ENOSYS")
                continue
            f.add_rule_exactly(_action(r.action, emulate), nr, *[_arg(a) for a in r.args])
        if e.rules and e.otherwise != errno.ENOSYS:
            f.add_rule_exactly(seccomp.ERRNO(e.otherwise), nr, _arg(ge(_first_arg(e), 0)))
    else:
        raise ValueError(f"filter: {e.name}: unknown tier {e.tier}")


def _traced(e: Entry) -> Entry:
    """The entry with NOTIFY wherever it would answer an errno itself."""
    from .policy import Rule
    if e.tier == DENY:
        return e.replace(tier=EMULATE, handler="refused")
    if e.tier != NATIVE or not e.rules:
        return e
    rules = tuple(Rule(NOTIFY, r.args) if isinstance(r.action, int) else r for r in e.rules)
    if e.otherwise != errno.ENOSYS or any(r.action == errno.ENOSYS for r in e.rules):
        # the catch-all: NOTIFY for whatever no rule matches
        rules += (Rule(NOTIFY, (ge(_first_arg(e), 0),)),)
    return e.replace(rules=tuple(r for r in rules), otherwise=errno.ENOSYS)


def build_filter(options: PolicyOptions | None = None, trace: bool = False) -> seccomp.SyscallFilter:
    """The libseccomp filter object for the policy (not loaded).  trace:
    the ptrace platform's variant (SECCOMP_RET_TRACE for the emulate tier)."""
    from .policy import syscall_numbers

    numbers = syscall_numbers()
    f = seccomp.SyscallFilter(defaction=seccomp.ERRNO(errno.ENOSYS))
    f.set_attr(seccomp.Attr.ACT_BADARCH, seccomp.KILL_PROCESS)
    # We set no_new_privs ourselves (install.py) and load with our own flags.
    f.set_attr(seccomp.Attr.CTL_NNP, 0)
    # A binary tree over the syscall numbers (libseccomp >= 2.5) instead of
    # a linear scan of ~500 instructions: every call of the workload, native
    # or notified, runs this program first.
    f.set_attr(seccomp.Attr.CTL_OPTIMIZE, 2)
    if not f.exist_arch(seccomp.Arch.X86_64):
        raise RuntimeError("filter: native architecture is not x86-64")
    refused = bool(options and options.trace_refused)
    emulate = seccomp.TRACE(0) if trace else seccomp.NOTIFY
    for e in build_table(options).values():
        nr = numbers.get(e.name)
        if nr is None:
            log.debug("filter: %s: unknown to this libseccomp, left to the default", e.name)
            continue
        try:
            _add(f, e, nr, refused, emulate)
        except (RuntimeError, ValueError, OSError) as exc:
            raise RuntimeError(f"filter: {e.name}: {exc}") from exc
    return f


def build_bpf(options: PolicyOptions | None = None, trace: bool = False) -> bytes:
    """The filter as raw BPF (struct sock_filter[]), ready for seccomp(2)."""
    return export_bpf(build_filter(options, trace))


def export_bpf(f: seccomp.SyscallFilter) -> bytes:
    """A libseccomp filter's program as raw BPF, exactly what its load()
    would hand to seccomp(2).  Through a memfd, not a temporary file:
    libseccomp writes to an fd, tempfile costs an import of random, shutil
    and more, and the ptrace platform builds one in the container's init,
    whose root may be read-only (ptrace_entry.py)."""
    import os

    fd = os.memfd_create("runsc-py-bpf", os.MFD_CLOEXEC)
    try:
        with open(fd, "w+b", closefd=False) as tmp:
            f.export_bpf(tmp)
        data = b""
        os.lseek(fd, 0, os.SEEK_SET)
        while chunk := os.read(fd, 65536):
            data += chunk
    finally:
        os.close(fd)
    if not data or len(data) % 8:
        raise RuntimeError(f"filter: export_bpf: bad program size {len(data)}")
    return data


def build_pfc(options: PolicyOptions | None = None) -> str:
    """Human-readable pseudo filter code, for `runsc-py policy --pfc`."""
    import tempfile

    f = build_filter(options)
    with tempfile.TemporaryFile(mode="w+") as tmp:
        f.export_pfc(tmp)
        tmp.flush()
        tmp.seek(0)
        return tmp.read()

