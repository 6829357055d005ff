"""The host kernel surface of a live process: which x86-64 syscalls its
seccomp filters let reach the kernel, read from outside.

The filters are dumped with PTRACE_SECCOMP_GET_FILTER (the tool seizes the
process for the moment it takes, then detaches; it needs CAP_SYS_ADMIN, and
a process that already has a tracer cannot be read) and explored for every
syscall number: every path through the BPF program is followed, taking
both branches of any test on an argument (arguments are the caller's to
choose), so a syscall counts as reachable when SOME argument values reach
the action.  With several filters the kernel applies the most restrictive
answer; a syscall is natively reachable when every filter can allow it.

    allow    ALLOW (or LOG) for some arguments: the kernel runs it for the
             workload with arguments it chooses
    notify   USER_NOTIF or TRACE for some arguments: a supervisor decides
             (runsc-py's sentry emulates, or continues the calls listed by
             `runsc-py policy --continue`)
    refused  neither: an errno, a signal or a kill for every argument
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct

PTRACE_SEIZE, PTRACE_INTERRUPT, PTRACE_DETACH = 0x4206, 0x4207, 17
PTRACE_SECCOMP_GET_FILTER = 0x420C
ARCH_X86_64 = 0xC000003E
NR_MAX = 470

RET_KILL_PROCESS, RET_KILL_THREAD, RET_TRAP, RET_ERRNO = 0x80000000, 0, 0x00030000, 0x00050000
RET_USER_NOTIF, RET_TRACE, RET_LOG, RET_ALLOW = 0x7FC00000, 0x7FF00000, 0x7FFC0000, 0x7FFF0000
ACTION_MASK = 0xFFFF0000

_libc = ctypes.CDLL(None, use_errno=True)
_libc.ptrace.restype = ctypes.c_long
_libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]


def dump_filters(pid: int) -> list[bytes]:
    """Every seccomp filter of pid, most recent first (raw sock_filter[])."""
    if _libc.ptrace(PTRACE_SEIZE, pid, None, None) < 0:
        e = ctypes.get_errno()
        raise OSError(e, f"ptrace seize {pid}: {os.strerror(e)}")
    try:
        # Requests need the tracee stopped: interrupt it, wait for the stop.
        if _libc.ptrace(PTRACE_INTERRUPT, pid, None, None) < 0:
            e = ctypes.get_errno()
            raise OSError(e, f"ptrace interrupt {pid}: {os.strerror(e)}")
        os.waitpid(pid, 0x40000000)  # __WALL
        progs = []
        for index in range(64):
            n = _libc.ptrace(PTRACE_SECCOMP_GET_FILTER, pid, ctypes.c_void_p(index), None)
            if n < 0:
                e = ctypes.get_errno()
                if e == errno.ENOENT:
                    break
                raise OSError(e, f"seccomp get filter {index} of {pid}: {os.strerror(e)}")
            buf = ctypes.create_string_buffer(n * 8)
            if _libc.ptrace(PTRACE_SECCOMP_GET_FILTER, pid, ctypes.c_void_p(index), buf) < 0:
                e = ctypes.get_errno()
                raise OSError(e, f"seccomp get filter {index} of {pid}: {os.strerror(e)}")
            progs.append(buf.raw)
        return progs
    finally:
        _libc.ptrace(PTRACE_DETACH, pid, None, None)


def _actions(prog: bytes, nr: int) -> set[int]:
    """Every action prog can return for syscall nr on x86-64, whatever the
    arguments (both branches of a test on an argument are taken)."""
    code = [struct.unpack_from("<HBBI", prog, i) for i in range(0, len(prog), 8)]
    out: set[int] = set()
    # state: (pc, acc, x, mem) with values an int or None (from an argument)
    stack: list[tuple[int, int | None, int | None, tuple[int | None, ...]]] = [(0, 0, 0, (0,) * 16)]
    seen = set()
    while stack:
        pc, acc, x, mem = stack.pop()
        key = (pc, acc, x, mem)
        if key in seen or pc >= len(code):
            continue
        seen.add(key)
        op, jt, jf, k = code[pc]
        cls = op & 0x07
        if cls == 0x06:  # RET K, or RET A (unknown A: taken for ALLOW, the worst case)
            v = acc if op & 0x18 == 0x10 else k
            out.add(RET_ALLOW if v is None else v & ACTION_MASK)
            continue
        if cls == 0x00:  # LD
            mode = op & 0xE0
            if mode == 0x20:  # ABS
                acc = nr if k == 0 else ARCH_X86_64 if k == 4 else None
            elif mode == 0x00:  # IMM
                acc = k
            elif mode == 0x60:  # MEM
                acc = mem[k]
            else:
                acc = None
            stack.append((pc + 1, acc, x, mem))
        elif cls == 0x01:  # LDX
            x = k if op & 0xE0 == 0x00 else mem[k] if op & 0xE0 == 0x60 else None
            stack.append((pc + 1, acc, x, mem))
        elif cls == 0x02:  # ST
            m = list(mem)
            m[k] = acc
            stack.append((pc + 1, acc, x, tuple(m)))
        elif cls == 0x03:  # STX
            m = list(mem)
            m[k] = x
            stack.append((pc + 1, acc, x, tuple(m)))
        elif cls == 0x04:  # ALU
            src = k if op & 0x08 == 0 else x
            aop = op & 0xF0
            if acc is None or src is None:
                acc = None
            elif aop == 0x50:
                acc &= src
            elif aop == 0x40:
                acc |= src
            elif aop == 0x00:
                acc = (acc + src) & 0xFFFFFFFF
            elif aop == 0x10:
                acc = (acc - src) & 0xFFFFFFFF
            elif aop == 0x60:
                acc = (acc << src) & 0xFFFFFFFF
            elif aop == 0x70:
                acc >>= src
            else:
                acc = None
            stack.append((pc + 1, acc, x, mem))
        elif cls == 0x05:  # JMP
            jop = op & 0xF0
            if jop == 0x00:  # JA
                stack.append((pc + 1 + k, acc, x, mem))
                continue
            src = k if op & 0x08 == 0 else x
            if acc is None or src is None:
                stack.append((pc + 1 + jt, acc, x, mem))
                stack.append((pc + 1 + jf, acc, x, mem))
                continue
            taken = {0x10: acc == src, 0x20: acc > src, 0x30: acc >= src, 0x40: bool(acc & src)}.get(jop)
            if taken is None:
                stack.append((pc + 1 + jt, acc, x, mem))
                stack.append((pc + 1 + jf, acc, x, mem))
            else:
                stack.append((pc + 1 + (jt if taken else jf), acc, x, mem))
        elif cls == 0x07:  # MISC: TAX / TXA
            if op & 0xF8 == 0x00:
                x = acc
            else:
                acc = x
            stack.append((pc + 1, acc, x, mem))
    return out


def explore(progs: list[bytes]) -> dict[str, list[int]]:
    """Syscall numbers by what the filters (all applied) can do with them."""
    allow, notify, refused = [], [], []
    for nr in range(NR_MAX):
        per = [_actions(p, nr) for p in progs]
        if all(a & {RET_ALLOW, RET_LOG} for a in per):
            allow.append(nr)
        elif all(a & {RET_ALLOW, RET_LOG, RET_USER_NOTIF, RET_TRACE} for a in per):
            notify.append(nr)
        else:
            refused.append(nr)
    return {"allow": allow, "notify": notify, "refused": refused}


def surface(pid: int) -> dict[str, object]:
    """{"allow": n, "notify": n, "filters": n} of a live process, or an error."""
    try:
        progs = dump_filters(pid)
    except OSError as e:
        return {"error": str(e)}
    if not progs:
        return {"allow": NR_MAX, "notify": 0, "filters": 0}
    ex = explore(progs)
    return {"allow": len(ex["allow"]), "notify": len(ex["notify"]), "filters": len(progs)}
