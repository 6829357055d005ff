"""Bounded reads and writes of a target's memory.

Two ways in, the same rules for both:
- reads: pread on the caller's /proc/TID/mem fd, opened once per task and
  cached with its credentials (sentry/creds.py).  This is what the
  seccomp_unotify(2) man page recommends, and it is the fast path: ~1.3 us
  per transfer here, where process_vm_readv pays the task lookup and the
  ptrace access check on every call (~4 us).  The fd is bound to the
  address space it was opened on, not to the pid: once the task is gone
  the transfer gives 0 bytes (EFAULT), never another process's memory.
  Like ptrace(2) it reads with FOLL_FORCE, so a path in a PROT_NONE page
  is read where Linux answers EFAULT (nothing beyond the caller's own
  address space, which it may mprotect anyway).
- writes (results): process_vm_writev, which respects page protections:
  a read-only or unmapped result buffer gets EFAULT, as under Linux.
- process_vm_readv/writev by pid, when no mem fd could be opened.

Kernel facts:
- process_vm_readv respects page protections (like the kernel's own
  copy_from_user) and may transfer less than asked when a range crosses into
  an unmapped page; it never splits a single iovec element in the middle of a
  page, so reads are issued page-bounded where a short read is legitimate
  (strings) and exact elsewhere.
- Any short transfer is a failure here: EFAULT, the errno the kernel would
  have returned to the target (fail closed).
- The pid of a notification may be reused once the notification is gone: the
  caller must re-check SECCOMP_IOCTL_NOTIF_ID_VALID after reading and before
  acting on what it read (`Call.check_valid`).

One `Memory` per supervisor thread: its buffer and iovecs are allocated once.
"""

from __future__ import annotations

import ctypes
import os
TYPE_CHECKING = False  # typing's, without importing typing (docs/performance.md, Start-up)
if TYPE_CHECKING:
    from typing import Callable

from .errors import EFAULT, ENAMETOOLONG, SysError

PATH_MAX = 4096
PAGE_SIZE = 4096

_libc = ctypes.CDLL("libc.so.6", use_errno=True)  # find_library would fork ldconfig


class IoVec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


_readv = _libc.process_vm_readv
_readv.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_ulong, ctypes.c_void_p,
                   ctypes.c_ulong, ctypes.c_ulong]
_readv.restype = ctypes.c_ssize_t
_writev = _libc.process_vm_writev
_writev.argtypes = _readv.argtypes
_writev.restype = ctypes.c_ssize_t
# File offsets are signed: no user address is above this one.
_ADDR_MAX = (1 << 63) - 1
# First read of a string through a mem fd: the kernel copies through a
# bounce page, so the cost grows with the size (a 4 KiB pread ~10 us, 256
# bytes ~1 us); most paths end well within it.
_FIRST = 256
_strnlen = _libc.strnlen
_strnlen.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
_strnlen.restype = ctypes.c_size_t


def _fd_read(fd: int, size: int, addr: int) -> bytes:
    """Up to size bytes at addr through a mem fd; b"" if none (unmapped:
    EIO, or the address space is gone: 0)."""
    try:
        return os.pread(fd, size, addr) if addr <= _ADDR_MAX else b""
    except OSError:
        return b""


def _fd_write(fd: int, data: bytes | memoryview, addr: int) -> int:
    """Bytes written at addr through a mem fd (-1: none)."""
    try:
        return os.pwrite(fd, data, addr) if addr <= _ADDR_MAX else -1
    except OSError:
        return -1


def _read_cstring_fd(fd: int, addr: int, limit: int = PATH_MAX) -> bytes:
    """read_cstring through a mem fd: page-bounded preads, same errors."""
    # Most strings: one read of at most _FIRST bytes, within the page.
    room = PAGE_SIZE - (addr & (PAGE_SIZE - 1))
    first = min(room, _FIRST, limit)
    b = _fd_read(fd, first, addr)
    end = b.find(0)
    if end >= 0:
        return b[:end]
    if len(b) < first:
        raise SysError(EFAULT, f"read string at {addr:#x}")
    parts = [b]
    got = first
    while got < limit:
        cur = addr + got
        chunk = min(PAGE_SIZE - (cur & (PAGE_SIZE - 1)), limit - got)
        b = _fd_read(fd, chunk, cur)
        if not b:
            raise SysError(EFAULT, f"read string at {addr:#x}")
        end = b.find(0)
        if end >= 0:
            parts.append(b[:end])
            return b"".join(parts) if len(parts) > 1 else parts[0]
        parts.append(b)
        got += len(b)
        if len(b) < chunk:
            raise SysError(EFAULT, f"read string at {addr:#x}")
    raise SysError(ENAMETOOLONG, f"read string at {addr:#x}")


class Memory:
    """Per-thread accessor of target memory with a preallocated buffer."""

    def __init__(self, size: int = PATH_MAX + PAGE_SIZE) -> None:
        self.size = size
        self.buf = ctypes.create_string_buffer(size)
        self._buf_p = ctypes.addressof(self.buf)
        self.local = IoVec()
        self.remote = IoVec()
        self._local_p = ctypes.addressof(self.local)
        self._remote_p = ctypes.addressof(self.remote)
        # Called before each write (Call: restores CAP_SYS_PTRACE after a
        # procfs operation ran with exactly the target's capabilities).
        self.before_write: Callable[[], None] | None = None
        # fd: the /proc/TID/mem fd of task fd_pid, or -1.  Set by the owner
        # (Call: the caller's, with its credentials); mem_fd(pid) finds it
        # when fd_pid is not pid (or -1: process_vm_readv/writev).
        self.fd = -1
        self.fd_pid = 0
        self.mem_fd: Callable[[int], int] | None = None

    def _find_fd(self, pid: int) -> int:
        """The mem fd of pid when it is not fd_pid's (callers test that
        first, inline: this is the per-syscall path)."""
        return self.mem_fd(pid) if self.mem_fd is not None else -1

    def _xfer(self, pid: int, obj: object, addr: int, size: int, write: bool) -> int:
        """Move size bytes between the start of obj (a ctypes object) and
        the target's addr; bytes moved, or <= 0 (nothing: unmapped, or the
        task is gone).  A write by pid first calls before_write
        (CAP_SYS_PTRACE back); the mem fd had its access checked when it was
        opened."""
        fd = self.fd if pid == self.fd_pid else self._find_fd(pid)
        if fd >= 0:
            view = memoryview(obj).cast("B")  # type: ignore[arg-type]
            if write:
                return _fd_write(fd, view[:size], addr)
            # pread and a copy: preadv is not in the sentry's own filter.
            b = _fd_read(fd, size, addr)
            n = len(b)
            view[:n] = b
            return n if n else -1
        local = ctypes.addressof(obj)  # type: ignore[arg-type]
        if write and self.before_write is not None:
            self.before_write()
        self.local.base = local
        self.local.len = size
        self.remote.base = addr
        self.remote.len = size
        return (_writev if write else _readv)(pid, self._local_p, 1, self._remote_p, 1, 0)

    def _read_raw(self, pid: int, addr: int, offset: int, size: int) -> int:
        """Read up to size bytes at addr into buf[offset:] by pid (the string
        reader without a mem fd); bytes read or <= 0."""
        self.local.base = self._buf_p + offset
        self.local.len = size
        self.remote.base = addr
        self.remote.len = size
        return _readv(pid, self._local_p, 1, self._remote_p, 1, 0)

    def read(self, pid: int, addr: int, size: int) -> bytes:
        """Exactly size bytes at addr, or SysError(EFAULT)."""
        if size == 0:
            return b""
        buf = self.buf if size <= self.size else ctypes.create_string_buffer(size)
        if addr == 0 or self._xfer(pid, buf, addr, size, False) != size:
            raise SysError(EFAULT, f"read target memory {addr:#x}+{size}")
        return buf.raw[:size]

    def read_into(self, pid: int, addr: int, obj: ctypes.Structure | ctypes.Array) -> None:  # type: ignore[type-arg]
        """Fill a ctypes object from target memory, or SysError(EFAULT)."""
        size = ctypes.sizeof(obj)
        if addr == 0 or self._xfer(pid, obj, addr, size, False) != size:
            raise SysError(EFAULT, f"read target memory {addr:#x}+{size}")

    def read_cstring(self, pid: int, addr: int, limit: int = PATH_MAX) -> bytes:
        """The NUL-terminated string at addr, without the NUL.

        Like the kernel's getname(): a string of `limit` bytes or more (no NUL
        within the first `limit` bytes) is ENAMETOOLONG; an unreadable byte
        before the NUL is EFAULT.  Reads are page-bounded so a string ending
        just before an unmapped page is read correctly.
        """
        if addr == 0:
            raise SysError(EFAULT, "read string: NULL pointer")
        fd = self.fd if pid == self.fd_pid else self._find_fd(pid)
        if fd >= 0:
            if limit >= _FIRST and 0 < addr <= _ADDR_MAX - _FIRST:
                # The common case inline (every path argument): one read of
                # _FIRST bytes within the page, the NUL found in it.
                room = PAGE_SIZE - (addr & (PAGE_SIZE - 1))
                try:
                    b = os.pread(fd, room if room < _FIRST else _FIRST, addr)
                except OSError:
                    b = b""
                end = b.find(0)
                if end >= 0:
                    return b[:end]
            return _read_cstring_fd(fd, addr, limit)
        got = 0
        while got < limit:
            cur = addr + got
            chunk = min(PAGE_SIZE - (cur & (PAGE_SIZE - 1)), limit - got)
            n = self._read_raw(pid, cur, got, chunk)
            if n <= 0:
                raise SysError(EFAULT, f"read string at {addr:#x}")
            ln = _strnlen(self._buf_p + got, n)
            if ln < n:
                return ctypes.string_at(self._buf_p, got + ln)
            got += n
            if n < chunk:
                raise SysError(EFAULT, f"read string at {addr:#x}")
        raise SysError(ENAMETOOLONG, f"read string at {addr:#x}")

    # Results are written with process_vm_writev, never through the mem fd:
    # the mem fd writes with FOLL_FORCE, into read-only and PROT_NONE pages
    # too, where the kernel's own copy-out answers EFAULT.  process_vm_writev
    # respects page protections, so a result buffer the caller may not write
    # gets EFAULT as under Linux (tested).  It costs a task lookup per call
    # (~2 us more than the mem fd).

    def write(self, pid: int, addr: int, data: bytes | memoryview) -> None:
        """Write all of data at addr, or SysError(EFAULT)."""
        size = len(data)
        if size == 0:
            return
        src = ctypes.create_string_buffer(bytes(data), size)
        if addr == 0 or self._writev(pid, src, addr, size) != size:
            raise SysError(EFAULT, f"write target memory {addr:#x}+{size}")

    def write_from(self, pid: int, addr: int, obj: ctypes.Structure | ctypes.Array, size: int = -1) -> None:  # type: ignore[type-arg]
        """Write a ctypes object (its first size bytes) to target memory."""
        if size < 0:
            size = ctypes.sizeof(obj)
        if addr == 0 or addr > _ADDR_MAX:
            raise SysError(EFAULT, f"write target memory {addr:#x}+{size}")
        # _writev inline (every stat result comes this way).
        if self.before_write is not None:
            self.before_write()
        self.local.base = ctypes.addressof(obj)  # type: ignore[arg-type]
        self.local.len = size
        self.remote.base = addr
        self.remote.len = size
        if _writev(pid, self._local_p, 1, self._remote_p, 1, 0) != size:
            raise SysError(EFAULT, f"write target memory {addr:#x}+{size}")

    def _writev(self, pid: int, obj: object, addr: int, size: int) -> int:
        """process_vm_writev of size bytes from obj to addr (CAP_SYS_PTRACE
        back first, after a procfs operation ran without it)."""
        if addr > _ADDR_MAX:
            return -1
        if self.before_write is not None:
            self.before_write()
        self.local.base = ctypes.addressof(obj)  # type: ignore[arg-type]
        self.local.len = size
        self.remote.base = addr
        self.remote.len = size
        return _writev(pid, self._local_p, 1, self._remote_p, 1, 0)
