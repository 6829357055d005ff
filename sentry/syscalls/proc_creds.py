"""Credentials: changes run by the kernel, queries answered by the sentry.

Changes (setuid family, setfsuid/setfsgid, setgroups, capset) take no path
and act only on the caller's own credentials; the kernel checks CAP_SETUID
& co. itself, so CONTINUE decides nothing.  They are notified so that the
sentry drops its cached credentials first (sentry/creds.py): it acts with
the caller's fs ids and capabilities on its behalf.

Queries (getresuid, getresgid, getgroups, capget, getpgid, getsid) are
answered from /proc/<tid>/status, which the kernel prints in the sentry's
user and pid namespaces: the container's (the sandbox joined its user
namespace; NSpgid/NSsid end with the container's pid namespace).  Emulated
to keep the host kernel surface small (sentry/policy.py).
"""

from __future__ import annotations

import errno
import struct

from .. import pids
from ..call import Call
from ..errors import SysError


def setuid(call: Call) -> None:
    """Implements Linux syscall setuid(2)."""
    # Drop the cached credentials first: this thread makes no other call
    # until the kernel has run this one.
    call.sb.creds_epoch.bump()
    call.reply_continue()


setgid = setreuid = setregid = setresuid = setresgid = setgroups = capset = setuid
setfsuid = setfsgid = setuid


def _put_ids(call: Call, values: tuple[int, int, int]) -> int:
    """Write three u32 ids to args 0, 1, 2, in order (EFAULT on the first
    that fails, as the kernel's put_user sequence)."""
    for i, v in enumerate(values):
        call.mem.write(call.pid, call.args[i], struct.pack("I", v & 0xFFFFFFFF))
    return 0


def getresuid(call: Call) -> int:
    """Implements Linux syscall getresuid(2)."""
    c = call.creds()
    return _put_ids(call, (c.ruid, c.euid, c.suid))


def getresgid(call: Call) -> int:
    """Implements Linux syscall getresgid(2)."""
    c = call.creds()
    return _put_ids(call, (c.rgid, c.egid, c.sgid))


def getgroups(call: Call) -> int:
    """Implements Linux syscall getgroups(2)."""
    size = call.args[0] & 0xFFFFFFFF
    if size & 0x80000000:
        return -errno.EINVAL
    groups = call.creds().groups
    if size == 0:
        return len(groups)
    if size < len(groups):
        return -errno.EINVAL
    if groups:
        call.mem.write(call.pid, call.args[1], struct.pack(f"{len(groups)}I", *groups))
    return len(groups)


_CAP_V1, _CAP_V2, _CAP_V3 = 0x19980330, 0x20071026, 0x20080522


def capget(call: Call) -> int:
    """Implements Linux syscall capget(2)."""
    a = call.args
    version, pid = struct.unpack("Ii", call.read(a[0], 8))
    if version not in (_CAP_V1, _CAP_V2, _CAP_V3):
        # The kernel says which version it wants; a NULL data pointer is
        # how libcap asks, and gets 0.
        call.mem.write(call.pid, a[0], struct.pack("I", _CAP_V3))
        return 0 if not a[1] else -errno.EINVAL
    if pid < 0:
        return -errno.EINVAL
    if not a[1]:
        return 0
    try:
        tid = pids.tid_of(call, pid)
    except SysError as e:
        return -e.errno
    st = pids.status(tid)
    if st is None:
        return -errno.ESRCH
    eff, prm, inh = (int(st[k][0], 16) for k in (b"CapEff", b"CapPrm", b"CapInh"))
    words = 1 if version == _CAP_V1 else 2
    data = b"".join(struct.pack("III", (eff >> (32 * i)) & 0xFFFFFFFF, (prm >> (32 * i)) & 0xFFFFFFFF,
                                (inh >> (32 * i)) & 0xFFFFFFFF) for i in range(words))
    call.mem.write(call.pid, a[1], data)
    return 0


def _ns_field(call: Call, name: bytes) -> int:
    pid = call.args[0] & 0xFFFFFFFF
    pid = pid - (1 << 32) if pid & 0x80000000 else pid
    if pid < 0:
        raise SysError(errno.ESRCH, "pid")
    st = pids.status(pids.tid_of(call, pid))
    if st is None or name not in st:
        raise SysError(errno.ESRCH, "pid")
    return int(st[name][-1])


def getpgid(call: Call) -> int:
    """Implements Linux syscall getpgid(2)."""
    return _ns_field(call, b"NSpgid")


def getsid(call: Call) -> int:
    """Implements Linux syscall getsid(2)."""
    return _ns_field(call, b"NSsid")


def rt_sigpending(call: Call) -> int:
    """Implements Linux syscall rt_sigpending(2): the pending signals the
    caller blocks (its own and its process's)."""
    size = call.args[1]
    if size > 8:
        return -errno.EINVAL
    st = pids.status(call.pid)
    if st is None:
        return -errno.ESRCH
    pending = (int(st[b"SigPnd"][0], 16) | int(st[b"ShdPnd"][0], 16)) & int(st[b"SigBlk"][0], 16)
    call.mem.write(call.pid, call.args[0], struct.pack("Q", pending)[:size])
    return 0
