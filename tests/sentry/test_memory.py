"""Bounded target-memory access, on our own process (same code path)."""

from __future__ import annotations

import ctypes
import mmap
import os

import pytest

from sentry.errors import SysError
from sentry.memory import PAGE_SIZE, Memory


@pytest.fixture
def two_pages():
    m = mmap.mmap(-1, 2 * PAGE_SIZE)
    base = ctypes.addressof(ctypes.c_char.from_buffer(m))
    yield m, base
    m.close()


def test_read_cstring_simple() -> None:
    b = ctypes.create_string_buffer(b"/etc/hello")
    assert Memory().read_cstring(os.getpid(), ctypes.addressof(b)) == b"/etc/hello"


def test_string_ending_before_unreadable_page(two_pages) -> None:
    m, base = two_pages
    s = b"tail\0"
    m[PAGE_SIZE - len(s):PAGE_SIZE] = s
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.mprotect(ctypes.c_void_p(base + PAGE_SIZE), PAGE_SIZE, 0) == 0
    try:
        got = Memory().read_cstring(os.getpid(), base + PAGE_SIZE - len(s))
        assert got == b"tail"
        with pytest.raises(SysError) as e:
            m[PAGE_SIZE - 4:PAGE_SIZE] = b"tail"  # no NUL before the hole
            Memory().read_cstring(os.getpid(), base + PAGE_SIZE - 4)
        assert e.value.errno == 14
    finally:
        libc.mprotect(ctypes.c_void_p(base + PAGE_SIZE), PAGE_SIZE, 3)


def test_too_long_and_null() -> None:
    b = ctypes.create_string_buffer(b"a" * 5000)
    with pytest.raises(SysError) as e:
        Memory().read_cstring(os.getpid(), ctypes.addressof(b))
    assert e.value.errno == 36
    with pytest.raises(SysError) as e:
        Memory().read_cstring(os.getpid(), 0)
    assert e.value.errno == 14


def test_exact_read_write_fail_closed() -> None:
    b = ctypes.create_string_buffer(16)
    mem = Memory()
    mem.write(os.getpid(), ctypes.addressof(b), b"0123456789")
    assert mem.read(os.getpid(), ctypes.addressof(b), 10) == b"0123456789"
    with pytest.raises(SysError):
        mem.read(os.getpid(), 8, 10)
