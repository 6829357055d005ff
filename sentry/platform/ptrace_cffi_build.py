"""Builds sentry/platform/_ptrace_cffi.py: cffi's out-of-line ABI mode.

The per-stop calls of the ptrace platform (ptrace, waitpid) go through cffi
instead of ctypes: measured here (CPU time per call, a failing call so that
only the binding differs), ptrace() 1176 ns with cffi against 1590 ns with
ctypes, ioctl() 1124 against 1308, errno 32 against 69 ns.  Their pointer
arguments are declared as integers, so the buffers stay the ctypes objects
python-ptrace defines (its user_regs_struct) and no cast is made per call.

Out-of-line, not in-line ABI mode: `ffi.cdef()` at import runs pycparser,
~100-500 ms here, paid by every sandbox start; the generated module holds
the parsed declarations and imports in ~1-2 ms.  It is pure Python, made by
this script (no C compiler), committed, and checked to be up to date by
tests/sentry/test_ptrace_abi.py:

    .venv/bin/python -m sentry.platform.ptrace_cffi_build
"""

from __future__ import annotations

import os
import sys

CDEF = """
long ptrace(long request, int pid, uintptr_t addr, uintptr_t data);
int waitpid(int pid, uintptr_t status, int options);
"""
MODULE = "_ptrace_cffi"


def generate(path: str) -> None:
    import cffi
    ffi = cffi.FFI()
    ffi.cdef(CDEF)
    ffi.set_source(f"sentry.platform.{MODULE}", None)
    ffi.emit_python_code(path)


def main() -> None:
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), f"{MODULE}.py")
    generate(out)
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
