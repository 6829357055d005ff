"""The wire between the sentry and the gofer: message pairs, checked both ways.

Transport: AF_UNIX SOCK_SEQPACKET (one datagram per message, never split or
merged); file descriptors travel beside a message with SCM_RIGHTS.  One
control socket (attach, new channels) plus one channel socket per sentry
worker thread, so a request that blocks in the gofer (opening a FIFO) holds
only its own channel.  Requests carry an id; the reply repeats it.

Every message:

    header   u16 version | u16 op | u32 body length | u64 request id   (16 bytes)
    body     head: every field's fixed-size part, in the order of the op's
                   schema (one struct per op, compiled from OPS below)
             tail: the variable bytes (credential groups, strings), in
                   schema order

Field kinds (the schema is data, in OPS below), as head | tail:

    "u"  u64 little-endian                                  |
    "i"  s64 little-endian                                  |
    "b"  byte string: u32 length                            | the bytes
         (paths: at most PATH_MAX, no NUL)
    "h"  handle: s32; -1 is the container root (held by the |
         gofer), k >= 0 is the k-th descriptor passed with
         the message
    "c"  credentials: u32 uid | u32 gid | u64 capabilities  | n x u32 groups
         | u32 n

The fixed head makes unmarshalling one unpack per message plus a slice per
string (version 1 unpacked field by field: the gofer's decoding was a
tenth of a round trip).

Reply body:  s64 result (>= 0 success, < 0 -errno) | u32 n | n bytes of data;
descriptors returned (an opened file) travel with it, one at most.

Unmarshalling is strict: unknown version or op, a body shorter or longer
than its schema, a string over its limit or with a NUL, a handle naming a
descriptor that was not passed, a descriptor passed but not named: the
request is refused (EPROTO/EINVAL/EBADF) and every received fd closed.

The file operations are fd-relative, like gVisor's LISAFS: the sentry names
a directory by handle (root, or a descriptor it holds: the target's cwd, a
dirfd, an fd the gofer returned earlier) and a path or single name below it;
the gofer never re-walks a path from a string it stored.
"""

from __future__ import annotations

import errno
import os
from runsc_py import sockets  # socket's API without socket.py's enums (sockets.py)
import struct
from collections import namedtuple

VERSION = 2
HEADER = struct.Struct("<HHIQ")
# A recvmsg of up to 64 KiB costs what one of 16 KiB does (a larger buffer
# is an mmap per message, and the default socket buffer refuses it).
MAX_MESSAGE = 65536
MAX_FDS = 4
PATH_MAX = 4096
ROOT = -1


class Op(int):
    """A request's operation: one of the constants below (each made once:
    compared by value or identity), with its name.  An int, not an
    enum.IntEnum: the sandbox imports no enum (runsc_py/sockets.py)."""
    __slots__ = ()
    ATTACH: Op
    CHANNEL: Op
    RESOLVE: Op
    OPENAT2: Op
    PATH_OF: Op
    MKDIRAT: Op
    MKNODAT: Op
    UNLINKAT: Op
    SYMLINKAT: Op
    RENAMEAT2: Op
    LINKAT: Op
    ACCESS: Op

    @property
    def name(self) -> str:
        return _OP_NAMES[int(self)]

    def __repr__(self) -> str:
        return f"<Op.{self.name}: {int(self)}>"


_OP_NAMES = {
    # control socket
    1: "ATTACH",      # sandbox -> gofer: join the container's mount namespace (fd passed)
    2: "CHANNEL",     # sentry -> gofer: serve this socket (fd passed); result: serving thread's tid
    # file operations (channels)
    10: "RESOLVE",    # path resolution as the target's kernel would (sentry/resolve.py)
    11: "OPENAT2",    # literal openat2 below a handle
    12: "PATH_OF",    # the path of a directory handle relative to the root
    13: "MKDIRAT",
    14: "MKNODAT",
    15: "UNLINKAT",
    16: "SYMLINKAT",
    17: "RENAMEAT2",
    18: "LINKAT",
    19: "ACCESS",     # faccessat2(handle, "", mode, AT_EMPTY_PATH|AT_EACCESS)
}
for _n, _name in _OP_NAMES.items():
    setattr(Op, _name, int.__new__(Op, _n))
del _n, _name


# op -> field kinds of the request body.  Every file operation starts with
# the credentials the gofer acts with.
OPS: dict[Op, str] = {
    Op.ATTACH: "hu",          # mount namespace fd, donate root fd (directfs) 0/1
    Op.CHANNEL: "h",          # the channel socket
    Op.RESOLVE: "chbuuu",     # start (ROOT: absolute), path, flags, mode, how (RESOLVE_*)
    Op.OPENAT2: "chbuuu",     # dir, path, flags, mode, resolve
    Op.PATH_OF: "ch",         # dir
    Op.MKDIRAT: "chbu",       # dir, name, mode
    Op.MKNODAT: "chbuu",      # dir, name, mode, dev
    Op.UNLINKAT: "chbu",      # dir, name, flags
    Op.SYMLINKAT: "cbhb",     # target text, dir, name
    Op.RENAMEAT2: "chbhbu",   # old dir, old name, new dir, new name, flags
    Op.LINKAT: "chbhbu",      # old dir, old name, new dir, new name, flags
    Op.ACCESS: "chu",         # object, mode
}

# RESOLVE's last field.  PROBE: on ENOENT, also resolve refusing symlinks;
# if that stops at one, the reply's data is VIA_LINK (sentry/files.py,
# resolve_probed): one round trip where the sentry would need two.  If it
# does not (no symlink on the way) and the path is absolute, the data is
# the u64 st_dev of the directory that lacks the name (sentry/lookups.py
# keeps the ENOENT when that is the root's filesystem), or empty.
RESOLVE_NO_SYMLINKS = 1
RESOLVE_PROBE = 2
VIA_LINK = b"link"
# UNLINKAT's reply, on success: the u32 st_mode of what it removed (an
# lstat of the name just before), or empty if that failed (sentry/lookups.py:
# removing a file that is neither a directory nor a symlink leaves every
# lookup of a directory as it was).

_REPLY = struct.Struct("<HHIQqI")  # header + result + data length
MAX_GROUPS = 65536
_FIXED = {"u": "Q", "i": "q", "h": "i", "b": "I", "c": "IIQI"}  # kind -> its head part


class ProtocolError(Exception):
    """A malformed message: errno says what the peer gets back.  partial:
    what arrived of a message cut short (its header names the request to
    answer)."""

    def __init__(self, err: int, what: str, partial: bytes = b"") -> None:
        super().__init__(f"gofer protocol: {what}")
        self.errno = err
        self.partial = partial


class WireCreds(namedtuple("WireCreds", "uid gid caps groups", defaults=((),))):
    """Immutable; a named tuple because one is made for every request
    (collections', not typing's: the sandbox imports no `typing`).
    uid, gid, caps: int; groups: tuple[int, ...]."""
    __slots__ = ()


class Request(namedtuple("Request", "op id args fds")):
    """op: Op, id: int, args: list[object], fds: list[int]."""
    __slots__ = ()


class _Schema:
    """One op's fields, compiled: the struct of the body's head."""

    __slots__ = ("op", "kinds", "head")

    def __init__(self, op: Op, kinds: str) -> None:
        self.op = op
        self.kinds = kinds
        self.head = struct.Struct("<" + "".join(_FIXED[k] for k in kinds))


_SCHEMA: dict[int, _Schema] = {int(op): _Schema(op, kinds) for op, kinds in OPS.items()}


def encode_request(op: Op, req_id: int, args: list[object], nfds: int) -> bytes:
    """Body fields in schema order; handles are ROOT or indexes into the fds
    sent; credentials as WireCreds."""
    sch = _SCHEMA[op]
    if len(args) != len(sch.kinds):
        raise ValueError(f"{op.name}: {len(sch.kinds)} fields, got {len(args)}")
    head: list[int] = []
    tail: list[bytes] = []
    for kind, value in zip(sch.kinds, args):
        if kind == "b":
            head.append(len(value))  # type: ignore[arg-type]
            tail.append(value)  # type: ignore[arg-type]
        elif kind == "c":
            c: WireCreds = value  # type: ignore[assignment]
            head += (c.uid & 0xFFFFFFFF, c.gid & 0xFFFFFFFF, c.caps, len(c.groups))
            if c.groups:
                tail.append(struct.pack(f"<{len(c.groups)}I", *c.groups))
        elif kind == "h":
            if value != ROOT and not 0 <= value < nfds:  # type: ignore[operator]
                raise ValueError(f"{op.name}: handle {value} with {nfds} fds")
            head.append(value)  # type: ignore[arg-type]
        else:
            head.append(value)  # type: ignore[arg-type]
    body = sch.head.pack(*head)
    if tail:
        body += b"".join(tail)
    if HEADER.size + len(body) > MAX_MESSAGE:
        # Only a caller with thousands of supplementary groups gets here
        # (MAX_MESSAGE holds two PATH_MAX paths and ~14,000 groups).
        raise ProtocolError(errno.ENOMEM, f"{op.name}: request of {HEADER.size + len(body)} bytes, "
                                          f"over the {MAX_MESSAGE}-byte limit")
    return HEADER.pack(VERSION, op, len(body), req_id) + body


def decode_request(data: bytes, fds: list[int]) -> Request:
    """Check and unpack one request.  On ProtocolError the caller closes fds."""
    if len(data) < HEADER.size:
        raise ProtocolError(errno.EPROTO, f"short message ({len(data)} bytes)")
    version, op_n, blen, req_id = HEADER.unpack_from(data)
    if version != VERSION:
        raise ProtocolError(errno.EPROTONOSUPPORT, f"version {version}, want {VERSION}")
    end = len(data)
    if blen != end - HEADER.size:
        raise ProtocolError(errno.EPROTO, f"body length {blen}, message has {end - HEADER.size}")
    sch = _SCHEMA.get(op_n)
    if sch is None:
        raise ProtocolError(errno.EINVAL, f"unknown op {op_n}")
    op = sch.op
    nfds = len(fds)
    if nfds > MAX_FDS:
        raise ProtocolError(errno.EBADF, f"{nfds} fds")
    off = HEADER.size + sch.head.size
    if off > end:
        raise ProtocolError(errno.EPROTO, f"{op.name}: truncated")
    vals = sch.head.unpack_from(data, HEADER.size)
    args: list[object] = []
    add = args.append
    used: set[int] = set()
    i = 0
    for kind in sch.kinds:
        v = vals[i]
        i += 1
        if kind == "b":
            if v > PATH_MAX or off + v > end:
                raise ProtocolError(errno.ENAMETOOLONG if v > PATH_MAX else errno.EPROTO,
                                    f"{op.name}: string of {v} bytes")
            s = data[off:off + v]
            if b"\0" in s:
                raise ProtocolError(errno.EINVAL, f"{op.name}: NUL in a string")
            add(s)
            off += v
        elif kind == "h":
            if v == ROOT:
                add(ROOT)
            elif 0 <= v < nfds:
                used.add(v)
                add(fds[v])
            else:
                raise ProtocolError(errno.EBADF, f"{op.name}: handle {v} with {nfds} fds")
        elif kind == "c":
            gid, caps, n = vals[i:i + 3]
            i += 3
            if n > MAX_GROUPS or off + 4 * n > end:
                raise ProtocolError(errno.EPROTO, f"{op.name}: {n} groups")
            groups = struct.unpack_from(f"<{n}I", data, off) if n else ()
            off += 4 * n
            add(WireCreds(v, gid, caps, groups))
        else:  # "u", "i"
            add(v)
    if off != end:
        raise ProtocolError(errno.EPROTO, f"{op.name}: {end - off} trailing bytes")
    if len(used) != nfds:
        raise ProtocolError(errno.EBADF, f"{op.name}: {nfds - len(used)} unnamed fds")
    return Request(op, req_id, args, list(fds))


def encode_reply(req_id: int, op: int, result: int, data: bytes = b"") -> bytes:
    head = _REPLY.pack(VERSION, op, 12 + len(data), req_id, result, len(data))
    return head + data if data else head


def decode_reply(data: bytes, want_id: int, fds: list[int]) -> tuple[int, bytes, list[int]]:
    """(result, data, fds) of the reply to want_id; ProtocolError otherwise."""
    if len(data) < _REPLY.size:
        raise ProtocolError(errno.EPROTO, f"short reply ({len(data)} bytes)")
    version, _op, blen, req_id, result, n = _REPLY.unpack_from(data)
    if version != VERSION or req_id != want_id or blen != len(data) - HEADER.size:
        raise ProtocolError(errno.EPROTO, f"reply v{version} id {req_id} (want {want_id})")
    if _REPLY.size + n != len(data):
        raise ProtocolError(errno.EPROTO, "reply data length")
    if len(fds) > 1 or (fds and result < 0):
        raise ProtocolError(errno.EPROTO, f"reply with {len(fds)} fds, result {result}")
    return result, data[_REPLY.size:], fds


_ANCILLARY = sockets.CMSG_SPACE(MAX_FDS * 4)


def send(sock: sockets.socket, msg: bytes, fds: list[int] | tuple[int, ...] = ()) -> None:
    if fds:
        sock.sendmsg((msg,), ((sockets.SOL_SOCKET, sockets.SCM_RIGHTS,
                               struct.pack(f"{len(fds)}i", *fds)),))
    else:
        sock.send(msg)


def recv(sock: sockets.socket, flags: int = 0) -> tuple[bytes, list[int]]:
    """One message and the fds beside it, close-on-exec (MSG_CMSG_CLOEXEC:
    no window in which a fork could inherit them); b"" at EOF.  Truncation
    is an error.  BlockingIOError with MSG_DONTWAIT and nothing there."""
    msg, ancillary, mflags, _addr = sock.recvmsg(MAX_MESSAGE, _ANCILLARY,
                                                 flags | sockets.MSG_CMSG_CLOEXEC)
    fds: list[int] = []
    for level, kind, data in ancillary:
        if level == sockets.SOL_SOCKET and kind == sockets.SCM_RIGHTS:
            fds += struct.unpack(f"{len(data) // 4}i", data[:len(data) - len(data) % 4])
    if mflags & (sockets.MSG_TRUNC | sockets.MSG_CTRUNC):
        for fd in fds:
            os.close(fd)
        raise ProtocolError(errno.EMSGSIZE, "message or fds truncated", msg)
    return msg, fds
