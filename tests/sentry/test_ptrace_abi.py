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


def test_python_ptrace_is_loaded_without_its_package_init() -> None:
    """The binding is python-ptrace's own (its modules, its constants), its
    package __init__ is not run (ptrace_abi._bare_package: no logging,
    traceback, enum), and a failed request still raises what ptrace_checked
    promises: PtraceError with the errno and pid."""
    import errno
    import subprocess
    import sys
    code = ("import sys; from sentry.platform import ptrace_abi as a\n"
            "assert a._pt.__name__ == 'ptrace.binding.func' and a._pt.PTRACE_CONT == 7\n"
            "assert a.UserRegs.__module__ == 'ptrace.binding.linux_struct'\n"
            "heavy = {'logging', 'traceback', 'enum', 'ptrace.error', 'ptrace.signames'}\n"
            "print(sorted(heavy & set(sys.modules)))\n"
            "try:\n"
            "    a.ptrace_checked(a.PTRACE_SEIZE, 0x3FFFFFFF, 0, 0)\n"
            "except a.PtraceError as e:\n"
            "    print(e.errno, e.pid)\n")
    import importlib.util
    root = Path(__file__).resolve().parents[2]
    # -S as the launcher starts (site imports enum itself); the packages' dirs by hand
    dirs = [str(root)] + [str(Path(importlib.util.find_spec(m).origin).parents[n])  # type: ignore[union-attr,arg-type]
                          for m, n in (("ptrace", 1), ("_cffi_backend", 0))]
    out = subprocess.run([sys.executable, "-IS", "-c", f"import sys; sys.path[:0] = {dirs!r}\n" + code],
                         capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[0] == "[]", out
    assert out[1] == f"{errno.ESRCH} {0x3FFFFFFF}", out
