"""Bounded target-memory access, on our own process (same code path)."""

from __future__ import annotations

import ctypes
import mmap
import os
import time

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


# --- the same rules through a /proc/TID/mem fd (what the sentry uses) -------

@pytest.fixture(params=["process_vm", "mem_fd"])
def mem(request):  # type: ignore[no-untyped-def]
    m = Memory()
    fd = -1
    if request.param == "mem_fd":
        fd = os.open("/proc/self/mem", os.O_RDWR | os.O_CLOEXEC)
        m.fd, m.fd_pid = fd, os.getpid()
    yield m
    if fd >= 0:
        os.close(fd)


@pytest.fixture
def page_before_hole():
    """A page whose next page is unmapped (munmap: EFAULT for every way in)."""
    m = mmap.mmap(-1, 2 * PAGE_SIZE)
    base = ctypes.addressof(ctypes.c_char.from_buffer(m))
    libc = ctypes.CDLL(None, use_errno=True)
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    assert libc.munmap(ctypes.c_void_p(base + PAGE_SIZE), PAGE_SIZE) == 0
    yield base
    libc.munmap(ctypes.c_void_p(base), PAGE_SIZE)


def test_both_ways_read_strings_up_to_a_hole(mem, page_before_hole) -> None:  # type: ignore[no-untyped-def]
    base = page_before_hole
    pid = os.getpid()
    for n in (5, 300, 4000):  # within the first read, past it, most of the page
        s = b"x" * (n - 1) + b"\0"
        ctypes.memmove(base + PAGE_SIZE - n, s, n)
        assert mem.read_cstring(pid, base + PAGE_SIZE - n) == b"x" * (n - 1)
    ctypes.memmove(base + PAGE_SIZE - 4, b"tail", 4)  # no NUL before the hole
    with pytest.raises(SysError) as e:
        mem.read_cstring(pid, base + PAGE_SIZE - 4)
    assert e.value.errno == 14
    with pytest.raises(SysError) as e:
        mem.read(pid, base + PAGE_SIZE - 4, 8)
    assert e.value.errno == 14
    with pytest.raises(SysError) as e:
        mem.write(pid, base + PAGE_SIZE - 4, b"12345678")
    assert e.value.errno == 14


def test_both_ways_limits_and_exact_transfers(mem) -> None:  # type: ignore[no-untyped-def]
    pid = os.getpid()
    long = ctypes.create_string_buffer(b"a" * 5000)
    with pytest.raises(SysError) as e:
        mem.read_cstring(pid, ctypes.addressof(long))
    assert e.value.errno == 36
    short = ctypes.create_string_buffer(b"b" * 300)
    with pytest.raises(SysError) as e:
        mem.read_cstring(pid, ctypes.addressof(short), 256)  # XATTR_NAME_MAX + 1
    assert e.value.errno == 36
    b = ctypes.create_string_buffer(16)
    mem.write(pid, ctypes.addressof(b), b"0123456789")
    assert mem.read(pid, ctypes.addressof(b), 10) == b"0123456789"
    out = ctypes.create_string_buffer(8)
    mem.read_into(pid, ctypes.addressof(b) + 2, out)
    assert out.raw == b"23456789"
    mem.write_from(pid, ctypes.addressof(b), ctypes.create_string_buffer(b"XY", 2))
    assert b.raw[:4] == b"XY23"
    for bad in (0, 8, 1 << 63, (1 << 64) - 16):
        with pytest.raises(SysError):
            mem.read(pid, bad, 10)
        with pytest.raises(SysError):
            mem.read_cstring(pid, bad)
        with pytest.raises(SysError):
            mem.write(pid, bad, b"z")


def test_mem_fd_is_bound_to_the_address_space_not_the_pid() -> None:
    """Once its process is gone, a mem fd reaches nothing (EFAULT), so a
    cached fd can never read or write a later owner of the pid."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        buf = ctypes.create_string_buffer(b"/child/path")
        os.write(w, str(ctypes.addressof(buf)).encode())
        time.sleep(30)
        os._exit(0)
    os.close(w)
    addr = int(os.read(r, 64))
    os.close(r)
    m = Memory()
    m.fd = os.open(f"/proc/{pid}/mem", os.O_RDWR | os.O_CLOEXEC)
    m.fd_pid = pid
    try:
        assert m.read_cstring(pid, addr) == b"/child/path"
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        with pytest.raises(SysError) as e:
            m.read_cstring(pid, addr)
        assert e.value.errno == 14
        with pytest.raises(SysError):
            m.write(pid, addr, b"x")
    finally:
        os.close(m.fd)
