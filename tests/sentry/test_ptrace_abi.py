"""The ptrace platform's bindings: the generated cffi module is what its
builder makes, and python-ptrace's register layout is the kernel's."""

from __future__ import annotations

import ctypes
from pathlib import Path

from sentry.platform import ptrace_abi, ptrace_cffi_build


def test_the_cffi_module_is_up_to_date(tmp_path: Path) -> None:
    out = tmp_path / "gen.py"
    ptrace_cffi_build.generate(str(out))
    committed = Path(ptrace_cffi_build.__file__).with_name(f"{ptrace_cffi_build.MODULE}.py")
    assert out.read_text() == committed.read_text(), \
        "run: .venv/bin/python -m sentry.platform.ptrace_cffi_build"


def test_register_layout() -> None:
    # struct user_regs_struct (arch/x86/include/asm/user_64.h): 27 longs,
    # orig_rax the 16th; the injection and the answers rely on it.
    regs = ptrace_abi.UserRegs
    assert ctypes.sizeof(regs) == 27 * 8
    assert regs.orig_rax.offset == 15 * 8 and regs.rax.offset == 10 * 8
    assert regs.rdi.offset == 14 * 8 and regs.rip.offset == 16 * 8 and regs.rsp.offset == 19 * 8
