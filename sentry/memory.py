"""Bounded reads and writes of a target's memory (process_vm_readv/writev).

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
import ctypes.util
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
_strnlen = _libc.strnlen
_strnlen.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
_strnlen.restype = ctypes.c_size_t


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

    def _read_raw(self, pid: int, addr: int, offset: int, size: int) -> int:
        """Read up to size bytes at addr into buf[offset:]; bytes read or -1."""
        self.local.base = self._buf_p + offset
        self.local.len = size
        self.remote.base = addr
        self.remote.len = size
        return _readv(pid, self._local_p, 1, self._remote_p, 1, 0)

    def read(self, pid: int, addr: int, size: int) -> bytes:
        """Exactly size bytes at addr, or SysError(EFAULT)."""
        if size == 0:
            return b""
        if size > self.size:
            out = ctypes.create_string_buffer(size)
            self.local.base = ctypes.addressof(out)
            self.local.len = size
            self.remote.base = addr
            self.remote.len = size
            if _readv(pid, self._local_p, 1, self._remote_p, 1, 0) != size:
                raise SysError(EFAULT, f"read target memory {addr:#x}+{size}")
            return out.raw
        if addr == 0 or self._read_raw(pid, addr, 0, size) != size:
            raise SysError(EFAULT, f"read target memory {addr:#x}+{size}")
        return self.buf.raw[:size]

    def read_into(self, pid: int, addr: int, obj: ctypes.Structure | ctypes.Array) -> None:  # type: ignore[type-arg]
        """Fill a ctypes object from target memory, or SysError(EFAULT)."""
        size = ctypes.sizeof(obj)
        self.local.base = ctypes.addressof(obj)
        self.local.len = size
        self.remote.base = addr
        self.remote.len = size
        if addr == 0 or _readv(pid, self._local_p, 1, self._remote_p, 1, 0) != size:
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

    def write(self, pid: int, addr: int, data: bytes) -> None:
        """Write all of data at addr, or SysError(EFAULT)."""
        size = len(data)
        if size == 0:
            return
        if self.before_write is not None:
            self.before_write()
        src = ctypes.c_char_p(data)
        self.local.base = ctypes.cast(src, ctypes.c_void_p).value
        self.local.len = size
        self.remote.base = addr
        self.remote.len = size
        if addr == 0 or _writev(pid, self._local_p, 1, self._remote_p, 1, 0) != size:
            raise SysError(EFAULT, f"write target memory {addr:#x}+{size}")

    def write_from(self, pid: int, addr: int, obj: ctypes.Structure | ctypes.Array, size: int = -1) -> None:  # type: ignore[type-arg]
        """Write a ctypes object (its first size bytes) to target memory."""
        if size < 0:
            size = ctypes.sizeof(obj)
        if self.before_write is not None:
            self.before_write()
        self.local.base = ctypes.addressof(obj)
        self.local.len = size
        self.remote.base = addr
        self.remote.len = size
        if addr == 0 or _writev(pid, self._local_p, 1, self._remote_p, 1, 0) != size:
            raise SysError(EFAULT, f"write target memory {addr:#x}+{size}")
