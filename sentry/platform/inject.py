"""Running system calls inside a stopped tracee, and giving it fds that way.

Kernel facts relied on (ptrace(2), seccomp(2), arch/x86/entry):

- At a PTRACE_EVENT_SECCOMP stop the call has not run.  orig_rax is its
  number and rdi, rsi, rdx, r10, r8, r9 its arguments: rewriting them makes
  the tracee run another call (the filters run again on it, TRACE counting
  as ALLOW); orig_rax = -1 skips it, rax then being its return value.
  Resumed with PTRACE_SYSCALL, the tracee stops again at syscall exit
  (a syscall-stop: WSTOPSIG = SIGTRAP|0x80 with PTRACE_O_TRACESYSGOOD).
- At a syscall-exit stop, or a signal-delivery stop that interrupted a call,
  rip points just after the 2-byte `syscall` instruction: rip - 2, rax = a
  number, orig_rax = -1 (so the kernel's restart logic leaves it alone)
  runs that call when the tracee resumes.  Resumed with PTRACE_SYSCALL it
  stops at the call's entry, at its seccomp stop if a filter says TRACE,
  and at its exit; resumed with PTRACE_CONT, only at the seccomp stop.
- Registers other than rax, rcx and r11 must come back as they were: the
  syscall ABI preserves them, and compiled code relies on it.  So every
  sequence ends by restoring the registers of the original stop, with
  orig_rax = -1 and rax = the answer.
- A message sent with SCM_RIGHTS carries the open file (O_PATH ones too);
  recvmsg installs it at the lowest free descriptor, as open(2) would,
  close-on-exec with MSG_CMSG_CLOEXEC.  kcmp(KCMP_FILE) tells whether the
  descriptor the tracee got is the very file sent.

The scratch page: recvmsg needs a msghdr, an iovec and a control buffer in
the tracee's memory.  They are written into one anonymous page the tracer
maps in each address space with an injected mmap (fork copies it at the
same address), never below the stack pointer: a goroutine's stack may
have only ~128 bytes free below its SP, and other threads of the process
run meanwhile.  The workload can see and change the page (it is its own
memory): what it could forge is caught by the ticket in the message and
by kcmp, and hurts only itself.

Injections into one fd table never overlap: the tracer thread runs each
sequence to its end (it waits for that one tracee: waitpid(tid)), and the
socket is drained when one fails, so a tracee never receives an fd meant
for another call.
"""

from __future__ import annotations

import ctypes
import errno
import os
from runsc_py import sockets  # socket's API without socket.py's enums (sockets.py)
import struct
TYPE_CHECKING = False  # typing's, without importing typing (docs/performance.md, Start-up)
if TYPE_CHECKING:
    from typing import Protocol
else:
    Protocol = object  # structural for the type checker; a plain base at run time

from ..call import Gone
from . import ptrace_abi as abi
from .tracees import Channel, Tracee
from runsc_py.log import get_logger

log = get_logger(__name__)

SYS_mmap, SYS_recvmsg, SYS_socketpair, SYS_dup3, SYS_close_range = 9, 47, 53, 292, 436
PROT_RW = 0x3
MAP_PRIVATE_ANON = 0x02 | 0x20
MSG_DONTWAIT = 0x40
MSG_CMSG_CLOEXEC = 0x40000000
SOCK_DGRAM_CLOEXEC = sockets.SOCK_DGRAM | sockets.SOCK_CLOEXEC
U64 = (1 << 64) - 1
PAGE = 4096

# The scratch page: msghdr | iovec | 8 bytes of data | cmsg buffer | int[2]
_IOV, _DATA, _CMSG, _PAIR = 64, 80, 96, 128
_CMSG_SPACE = 24  # CMSG_SPACE(sizeof(int))
_HDR = struct.Struct("=QI4xQQQQI4x")   # struct msghdr (56 bytes)
_IOVEC = struct.Struct("=QQ")
_CMSGHDR = struct.Struct("=QiiI")       # cmsg_len, level, type, the fd
_TICKET = struct.Struct("=Q")
_FLAGS_AT = 48                          # msghdr.msg_flags
# What the injected recvmsg left on the page: msghdr.msg_controllen (at 40,
# written back: the control bytes received), the ticket (_DATA) and the
# control message (_CMSG: cmsg_len, level, type, the fd).
_RESULT = struct.Struct(f"=40xQ{_DATA - 48}xQ{_CMSG - _DATA - 8}xQiiI")
assert _RESULT.size == _CMSG + 20
_ALL_BUT_URG = U64 & ~abi.sigmask_of((23,))  # SIGURG: the wake-up of a parked call
_REGS_SIZE = ctypes.sizeof(abi.UserRegs)
# The wait status of a syscall-stop (PTRACE_O_TRACESYSGOOD).
_SYSCALL_STOP_STATUS = (abi.SYSCALL_STOP << 8) | 0x7F


class TraceeGone(Gone):
    """The tracee died (or was killed by an exec in its process) meanwhile
    (a Gone: a handler that meets it has nothing to answer)."""


class Waiter(Protocol):
    def wait_tid(self, tid: int) -> int:
        """The next wait status of tid; TraceeGone if it ended."""
        ...


_OUR_PID = [0]  # cached: getpid() is a system call


def _our_pid() -> int:
    _OUR_PID[0] = os.getpid()
    return _OUR_PID[0]


def _signed(v: int) -> int:
    return v - (1 << 64) if v & (1 << 63) else v


class Session:
    """System calls run one after the other in a stopped tracee, then its
    registers put back with an answer.

    saved: the tracee's registers at the stop the session starts from
    (a seccomp stop, or a signal-delivery stop of an interrupted call).
    block: block every signal meanwhile (several calls that return to user
    mode between them), restored by finish().
    block_later: block them only if a second call is made.  One call made
    from a seccomp stop runs to its exit stop without returning to user
    mode; between two calls the tracee does return there, and a signal
    would stop it (a signal-delivery stop the session could only drop: the
    kernel lets a tracer pass on a signal, never queue it back)."""

    def __init__(self, waiter: Waiter, t: Tracee, saved: abi.UserRegs, *,
                 at_seccomp: bool, block: bool = False, block_later: bool = False,
                 work: abi.UserRegs | None = None) -> None:
        """work: the registers buffer to build each call in (the tracer
        lends its own to the session of the call in front of it); a new
        one if None."""
        self.waiter = waiter
        self.t = t
        self.saved = saved
        self._saved_p = ctypes.addressof(saved)
        self.work = work if work is not None else abi.UserRegs()
        self._work_p = ctypes.addressof(self.work)
        self.at_seccomp = at_seccomp  # still at the original seccomp stop
        self.mask = -1
        self.block_later = block_later
        self.calls = 0
        if block:
            self._block()

    def _block(self) -> None:
        """Every signal blocked until finish() (they stay pending)."""
        m = ctypes.c_uint64()
        if abi.ptrace(abi.PTRACE_GETSIGMASK, self.t.tid, 8, ctypes.addressof(m)) == 0:
            self.mask = m.value
            m.value = U64
            abi.ptrace(abi.PTRACE_SETSIGMASK, self.t.tid, 8, ctypes.addressof(m))

    # --- one call ---------------------------------------------------------
    def syscall(self, nr: int, a0: int = 0, a1: int = 0, a2: int = 0, a3: int = 0, a4: int = 0,
                a5: int = 0, *, traced: bool = False, result: bool = True) -> int:
        """Run nr(a0..a5) in the tracee; its return value (or -errno).
        traced: a filter stops it (TRACE), so no entry stop is needed.
        result: False when the caller reads the outcome from memory (0 is
        returned: one GETREGS less)."""
        if self.calls and self.block_later and self.mask < 0:
            self._block()
        self.calls += 1
        w = self.work
        ctypes.memmove(self._work_p, self._saved_p, _REGS_SIZE)
        w.rdi = a0 & U64
        w.rsi = a1 & U64
        w.rdx = a2 & U64
        w.r10 = a3 & U64
        w.r8 = a4 & U64
        w.r9 = a5 & U64
        tid = self.t.tid
        if self.at_seccomp:
            w.orig_rax = nr
            request = abi.PTRACE_SYSCALL
            expect_entry = False
        else:
            w.rip = self.saved.rip - 2
            w.rax = nr
            w.orig_rax = U64
            request = abi.PTRACE_CONT if traced else abi.PTRACE_SYSCALL
            expect_entry = not traced
        self._check(abi.ptrace(abi.PTRACE_SETREGS, tid, 0, self._work_p), "setregs")
        self._check(abi.ptrace(request, tid, 0, 0), "resume")
        self.at_seccomp = False
        while True:
            status = self.waiter.wait_tid(tid)
            if status == _SYSCALL_STOP_STATUS and not expect_entry:
                break  # the usual case: the exit of our call
            if not os.WIFSTOPPED(status):
                raise TraceeGone(tid)
            sig = os.WSTOPSIG(status)
            event = status >> 16
            if event == abi.PTRACE_EVENT_SECCOMP:
                request = abi.PTRACE_SYSCALL  # our own call, stopped by a TRACE rule
            elif sig == abi.SYSCALL_STOP:
                if not expect_entry:
                    break
                expect_entry = False
                request = abi.PTRACE_SYSCALL
            elif event == abi.PTRACE_EVENT_STOP:
                if sig != abi.SIGTRAP:  # group-stop: stay stopped, resume as planned later
                    self._check(abi.ptrace(abi.PTRACE_LISTEN, tid, 0, 0), "listen")
                    continue
            elif event == 0:
                # A signal on the way back to user mode: only SIGURG can be
                # unblocked here (a parked caller's mask, or every signal
                # blocked: block, block_later); kept for later, not
                # delivered now.
                self._held(sig)
            else:
                raise TraceeGone(tid)  # fail closed: nothing else can stop here
            self._check(abi.ptrace(request, tid, 0, 0), "resume")
        if not result:
            return 0
        self._check(abi.ptrace(abi.PTRACE_GETREGS, tid, 0, self._work_p), "getregs")
        return _signed(w.rax)

    def _held(self, sig: int) -> None:
        park = self.t.park
        if sig == 23 and park is not None:
            park.held_urg = True
        else:
            log.warning("ptrace: signal %d to %d during an injected call: dropped", sig, self.t.tid)

    def _check(self, r: int, what: str) -> None:
        if r != 0:
            err = abi.get_errno()
            if err == errno.ESRCH:
                raise TraceeGone(self.t.tid)
            raise OSError(err, f"ptrace {what} {self.t.tid}: {os.strerror(err)}")

    # --- the end ------------------------------------------------------------
    def finish(self, rax: int) -> None:
        """Registers as at the starting stop, with this answer; the caller
        resumes the tracee."""
        w = self.work
        ctypes.memmove(self._work_p, self._saved_p, _REGS_SIZE)
        w.orig_rax = U64
        w.rax = rax & U64
        self._check(abi.ptrace(abi.PTRACE_SETREGS, self.t.tid, 0, self._work_p), "setregs")
        self._unblock()

    def restart(self) -> None:
        """Registers as at the starting stop, set to make the original call
        again (it will stop at its seccomp stop anew)."""
        w = self.work
        ctypes.memmove(self._work_p, self._saved_p, _REGS_SIZE)
        w.rip = self.saved.rip - 2
        w.rax = self.saved.orig_rax
        w.orig_rax = U64
        self._check(abi.ptrace(abi.PTRACE_SETREGS, self.t.tid, 0, self._work_p), "setregs")
        self._unblock()

    def _unblock(self) -> None:
        if self.mask >= 0:
            m = ctypes.c_uint64(self.mask)
            abi.ptrace(abi.PTRACE_SETSIGMASK, self.t.tid, 8, ctypes.addressof(m))
            self.mask = -1


# --- memory of the tracee -------------------------------------------------------

def _mem(t: Tracee) -> int:
    """A /proc/TID/mem fd of t's address space (kept with it)."""
    mm = t.mm
    if mm.mem < 0:
        from .. import ownproc
        mm.mem = ownproc.open_(f"{t.tid}/mem", os.O_RDWR | os.O_CLOEXEC)
    return mm.mem


def scratch(s: Session) -> int:
    """The address of t's scratch page, mapped now if it has none."""
    mm = s.t.mm
    if not mm.scratch:
        addr = s.syscall(SYS_mmap, 0, PAGE, PROT_RW, MAP_PRIVATE_ANON, U64, 0)
        if addr < 0 or addr & (PAGE - 1):
            raise OSError(-addr if addr < 0 else errno.EFAULT, "ptrace: map the scratch page")
        mm.scratch = addr
    return mm.scratch


# --- fds ---------------------------------------------------------------------------

def _drain(chan: Channel) -> None:
    """Read off (and close) whatever a failed injection left queued."""
    # (socket.recv_fds ignores its flags argument in Python 3.11: recvmsg.)
    space = sockets.CMSG_SPACE(4 * 4)
    while True:
        try:
            _msg, anc, _f, _a = chan.drain.recvmsg(16, space, sockets.MSG_DONTWAIT)
        except OSError:  # EAGAIN: empty
            break
        for level, kind, data in anc:
            if level == sockets.SOL_SOCKET and kind == sockets.SCM_RIGHTS:
                for (fd,) in struct.iter_unpack("i", data[:len(data) - len(data) % 4]):
                    os.close(fd)
    chan.dirty = False


def install_fd(s: Session, fd: int, cloexec: bool, ticket: int) -> int:
    """Give a copy of our fd to the tracee: its number there, or -errno.

    The socket at the tracee's reserved descriptor is its fd table's own
    (replaced first if it must be: `private_channel`).  Our fd stays ours.

    The msghdr and its iovec are written into the scratch page only when
    the last injection did not leave them as written (it reads them back:
    a received fd leaves them unchanged, `AddressSpace.image_ok`).  The
    workload may rewrite the page in between (its own memory): what the
    recvmsg then does is to itself, what it could forge is caught by the
    ticket and kcmp, and the injection is made once more on a page
    written anew."""
    t = s.t
    if t.table.private_needed:
        private_channel(s)
    base = scratch(s)
    mm = t.mm
    if mm.image_at != base:
        # The msghdr, its iovec and an empty data and control area: the same
        # bytes for every injection into this address space.
        mm.image = (_HDR.pack(0, 0, base + _IOV, 1, base + _CMSG, _CMSG_SPACE, 0).ljust(_IOV, b"\0")
                    + _IOVEC.pack(base + _DATA, 8) + bytes(_CMSG - _DATA + _CMSG_SPACE))
        mm.image_at = base
        mm.image_ok = False
    mem = _mem(t)
    if mm.image_ok:
        mm.image_ok = False
        r = _send_and_receive(s, mem, base, fd, cloexec, ticket)
        if r != -errno.EIO:
            return r
        log.debug("ptrace: %d: injection on a page it changed: again, written anew", t.tid)
    if os.pwrite(mem, mm.image, base) != len(mm.image):
        return -errno.EFAULT
    return _send_and_receive(s, mem, base, fd, cloexec, ticket)


def _send_and_receive(s: Session, mem: int, base: int, fd: int, cloexec: bool, ticket: int) -> int:
    """One injection: fd sent with the ticket, the stopped call made a
    recvmsg on the msghdr at base; the number it got there, or -errno
    (-EIO: not received as sent)."""
    t = s.t
    mm = t.mm
    chan = t.table.chan
    if chan.dirty:
        _drain(chan)
    try:
        chan.send.sendmsg([_TICKET.pack(ticket)],
                          [(sockets.SOL_SOCKET, sockets.SCM_RIGHTS, struct.pack("i", fd))],
                          sockets.MSG_DONTWAIT)
    except OSError as e:
        return -(e.errno or errno.EIO)
    chan.dirty = True  # until the tracee has taken it
    flags = MSG_DONTWAIT | (MSG_CMSG_CLOEXEC if cloexec else 0)
    # Its result is read from the scratch page: the msghdr as the kernel
    # left it (msg_controllen: the control bytes received, this call's
    # own), the 8-byte message and the control message with the fd.
    s.syscall(SYS_recvmsg, t.table.reserved, base, flags, traced=True, result=False)
    got = os.pread(mem, _CMSG + _CMSG_SPACE, base)
    if len(got) != _CMSG + _CMSG_SPACE:
        return -errno.EFAULT
    controllen, seen, clen, level, ctype, theirs = _RESULT.unpack_from(got)
    if seen == ticket and controllen == 0:
        # Our message arrived without its fd: the kernel found no free
        # descriptor to install it at (scm_detach_fds, MSG_CTRUNC), which
        # is the open's own EMFILE (a full table, a lowered RLIMIT_NOFILE).
        chan.dirty = False
        return -errno.EMFILE
    if seen != ticket or level != sockets.SOL_SOCKET or ctype != sockets.SCM_RIGHTS or clen != 20 \
            or controllen != _CMSG_SPACE:
        log.warning("ptrace: %d did not receive its fd (injected recvmsg)", t.tid)
        return -errno.EIO
    chan.dirty = False
    if abi.kcmp_file(_OUR_PID[0] or _our_pid(), t.tid, fd, theirs) != 0:
        log.warning("ptrace: fd %d of %d is not the file sent", theirs, t.tid)
        return -errno.EIO
    # (msg_flags, output only, comes back with the flags of the call.)
    img = mm.image
    mm.image_ok = got[:_FLAGS_AT] == img[:_FLAGS_AT] and got[_HDR.size:_DATA] == img[_HDR.size:_DATA]
    return theirs


def private_channel(s: Session) -> None:
    """Give t's fd table a reserved socket of its own: made by the tracee
    itself (socketpair), so no other holder of the old one ever sees the
    new one travel; we take our ends with pidfd_getfd, dup3 it onto the
    reserved descriptor, close the two it got."""
    t = s.t
    base = scratch(s)
    r = s.syscall(SYS_socketpair, sockets.AF_UNIX, SOCK_DGRAM_CLOEXEC, 0, base + _PAIR)
    if r < 0:
        raise OSError(-r, "ptrace: socketpair in the tracee")
    a, b = struct.unpack("=ii", os.pread(_mem(t), 8, base + _PAIR))
    if t.pidfd < 0:
        t.pidfd = abi.pidfd_open_thread(t.tid)
        if t.pidfd < 0:
            raise OSError(-t.pidfd, "ptrace: pidfd of the tracee")
    send = abi.pidfd_getfd(t.pidfd, b)
    drain = abi.pidfd_getfd(t.pidfd, a)
    try:
        if send < 0 or drain < 0:
            raise OSError(errno.EBADF, "ptrace: take the new reserved socket")
        r = s.syscall(SYS_dup3, a, t.table.reserved, 0, traced=True)
        if r != t.table.reserved:
            raise OSError(-r if r < 0 else errno.EIO, "ptrace: dup3 onto the reserved descriptor")
        for fd in (a, b):
            s.syscall(SYS_close_range, fd, fd, 0, traced=True)
    except BaseException:
        for fd in (send, drain):
            if fd >= 0:
                os.close(fd)
        raise
    t.table.set_channel(Channel(sockets.socket(fileno=send), sockets.socket(fileno=drain)))
    t.table.private_needed = False
    log.debug("ptrace: fd table of %d got a reserved socket of its own", t.tid)


def split_close_range(s: Session, first: int, last: int, flags: int) -> int:
    """close_range(first, last, flags) around the reserved descriptor."""
    fd = s.t.table.reserved
    r = 0
    if first < fd:
        r = s.syscall(SYS_close_range, first, fd - 1, flags, traced=True)
    if r == 0 and last > fd:
        r = s.syscall(SYS_close_range, fd + 1, last, flags, traced=True)
    return r
