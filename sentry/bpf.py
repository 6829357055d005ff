"""Classic BPF seccomp programs read back: a structural check and an
interpreter, for a program that comes from a cache rather than from
libseccomp just now (runsc_py/filtercache.py).

`check` accepts only what libseccomp emits for our policies: loads of
seccomp_data words, the immediate and scratch-memory moves, AND, the
forward jumps and RET (seven opcodes); every jump lands inside the program,
which ends in a RET, and has at most BPF_MAXINSNS instructions.  Stricter
than the kernel's own check: a program this refuses is rebuilt, never
loaded.  `run` evaluates a program on one syscall as the kernel would, so
the cache can also check what a program answers (`expect`).
"""

from __future__ import annotations

import struct

BPF_MAXINSNS = 4096
SECCOMP_DATA_SIZE = 64            # nr, arch, instruction_pointer, args[6]
BPF_MEMWORDS = 16

LD_ABS, LD_IMM, ST, LD_MEM, ALU_AND_K, JA = 0x20, 0x00, 0x02, 0x60, 0x54, 0x05
JEQ_K, JGT_K, JGE_K, JSET_K, RET_K = 0x15, 0x25, 0x35, 0x45, 0x06
_JUMPS = (JEQ_K, JGT_K, JGE_K, JSET_K)
_OPCODES = {LD_ABS, LD_IMM, ST, LD_MEM, ALU_AND_K, JA, RET_K, *_JUMPS}

AUDIT_ARCH_X86_64 = 0xC000003E
AUDIT_ARCH_I386 = 0x40000003
X32_SYSCALL_BIT = 0x40000000

# seccomp return values (linux/seccomp.h)
RET_KILL_PROCESS = 0x80000000
RET_KILL_THREAD = 0x00000000
RET_ERRNO = 0x00050000
RET_USER_NOTIF = 0x7FC00000
RET_TRACE = 0x7FF00000            # data 0 (libseccomp's TRACE(0): the ptrace platform)
RET_ALLOW = 0x7FFF0000

_INSN = struct.Struct("<HBBI")


class BadProgram(ValueError):
    """The bytes are not a program this module accepts."""


def decode(prog: bytes) -> list[tuple[int, int, int, int]]:
    """(code, jt, jf, k) per instruction, after the structural check."""
    n, rest = divmod(len(prog), _INSN.size)
    if rest or not 0 < n <= BPF_MAXINSNS:
        raise BadProgram(f"bpf: {len(prog)} bytes is not 1..{BPF_MAXINSNS} instructions")
    code = [_INSN.unpack_from(prog, i * _INSN.size) for i in range(n)]
    for pc, (op, jt, jf, k) in enumerate(code):
        if op not in _OPCODES:
            raise BadProgram(f"bpf: opcode {op:#x} at {pc}")
        if op == LD_ABS and (k >= SECCOMP_DATA_SIZE or k % 4):
            raise BadProgram(f"bpf: load of seccomp_data offset {k} at {pc}")
        if op in (ST, LD_MEM) and k >= BPF_MEMWORDS:
            raise BadProgram(f"bpf: scratch word {k} at {pc}")
        if op == JA and pc + 1 + k >= n:
            raise BadProgram(f"bpf: jump out of the program at {pc}")
        if op in _JUMPS and pc + 1 + max(jt, jf) >= n:
            raise BadProgram(f"bpf: jump out of the program at {pc}")
    if code[-1][0] != RET_K:
        raise BadProgram("bpf: the program does not end in a return")
    return code


def check(prog: bytes) -> None:
    """Raise BadProgram unless PROG passes the structural check."""
    decode(prog)


def run(code: list[tuple[int, int, int, int]], nr: int, arch: int = AUDIT_ARCH_X86_64,
        args: tuple[int, ...] = (0, 0, 0, 0, 0, 0)) -> int:
    """What a decoded program returns for one syscall.  Terminates: every
    jump goes forward (decode checked the targets)."""
    data = struct.pack("<iIQ6Q", nr if nr < 1 << 31 else nr - (1 << 32), arch, 0,
                       *[a & (1 << 64) - 1 for a in args])
    acc, mem, pc = 0, [0] * BPF_MEMWORDS, 0
    while True:
        op, jt, jf, k = code[pc]
        pc += 1
        if op == LD_ABS:
            acc = struct.unpack_from("<I", data, k)[0]
        elif op == LD_IMM:
            acc = k
        elif op == ST:
            mem[k] = acc
        elif op == LD_MEM:
            acc = mem[k]
        elif op == ALU_AND_K:
            acc &= k
        elif op == JA:
            pc += k
        elif op == RET_K:
            return k
        else:
            taken = (acc == k if op == JEQ_K else acc > k if op == JGT_K
                     else acc >= k if op == JGE_K else bool(acc & k))
            pc += jt if taken else jf


def expect(prog: bytes, answers: dict[tuple[int, int], int]) -> None:
    """Raise BadProgram unless PROG returns answers[(nr, arch)] for each
    syscall number and architecture there (all arguments zero)."""
    code = decode(prog)
    for (nr, arch), want in answers.items():
        got = run(code, nr, arch)
        if got != want:
            raise BadProgram(f"bpf: syscall {nr:#x} (arch {arch:#x}) answers {got:#x}, not {want:#x}")
