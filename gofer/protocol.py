"""The wire between the sentry and the gofer: message pairs, checked both ways.

Transport: AF_UNIX SOCK_SEQPACKET (one datagram per message, never split or
merged); file descriptors travel beside a message with SCM_RIGHTS.  One
control socket (attach, new channels) plus one channel socket per sentry
worker thread, so a request that blocks in the gofer (opening a FIFO) holds
only its own channel.  Requests carry an id; the reply repeats it.

Every message:

    header   u16 version | u16 op | u32 body length | u64 request id   (16 bytes)
    body     op-specific fields, in the order of the op's schema

Field kinds (the schema is data, in OPS below):

    "u"  u64 little-endian
    "i"  s64 little-endian
    "b"  byte string: u32 length + bytes (paths: at most PATH_MAX, no NUL)
    "h"  handle: s32; -1 is the container root (held by the gofer), k >= 0
         is the k-th descriptor passed with the message
    "c"  credentials: u32 uid | u32 gid | u64 capabilities | u32 n | n x u32 groups

Reply body:  s64 result (>= 0 success, < 0 -errno) | "b" data;  descriptors
returned (an opened file) travel with it, one at most.

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
import socket
import struct
from dataclasses import dataclass, field
from enum import IntEnum
from typing import NamedTuple

VERSION = 1
HEADER = struct.Struct("<HHIQ")
MAX_MESSAGE = 16384
MAX_FDS = 4
PATH_MAX = 4096
ROOT = -1


class Op(IntEnum):
    # control socket
    ATTACH = 1     # sandbox -> gofer: join the container's mount namespace (fd passed)
    CHANNEL = 2    # sentry -> gofer: serve this socket (fd passed); result: serving thread's tid
    # file operations (channels)
    RESOLVE = 10   # path resolution as the target's kernel would (sentry/resolve.py)
    OPENAT2 = 11   # literal openat2 below a handle
    PATH_OF = 12   # the path of a directory handle relative to the root
    MKDIRAT = 13
    MKNODAT = 14
    UNLINKAT = 15
    SYMLINKAT = 16
    RENAMEAT2 = 17
    LINKAT = 18
    ACCESS = 19    # faccessat2(handle, "", mode, AT_EMPTY_PATH|AT_EACCESS)


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
# resolve_probed): one round trip where the sentry would need two.
RESOLVE_NO_SYMLINKS = 1
RESOLVE_PROBE = 2
VIA_LINK = b"link"

_OP_OF = {int(o): o for o in Op}  # Op(n) is a slow call, and it raises
_U64 = struct.Struct("<Q")
_S64 = struct.Struct("<q")
_U32 = struct.Struct("<I")
_S32 = struct.Struct("<i")
_CREDS = struct.Struct("<IIQI")
MAX_GROUPS = 65536


class ProtocolError(Exception):
    """A malformed message: errno says what the peer gets back."""

    def __init__(self, err: int, what: str) -> None:
        super().__init__(f"gofer protocol: {what}")
        self.errno = err


class WireCreds(NamedTuple):
    """Immutable; a NamedTuple because one is made for every request."""
    uid: int
    gid: int
    caps: int
    groups: tuple[int, ...] = ()


def encode_creds(c: WireCreds) -> bytes:
    """The "c" field (the client caches it: creds change rarely)."""
    head = _CREDS.pack(c.uid & 0xFFFFFFFF, c.gid & 0xFFFFFFFF, c.caps, len(c.groups))
    return head + struct.pack(f"<{len(c.groups)}I", *c.groups) if c.groups else head


@dataclass
class Request:
    op: Op
    id: int
    args: list[object] = field(default_factory=list)
    fds: list[int] = field(default_factory=list)


def encode_request(op: Op, req_id: int, args: list[object], nfds: int) -> bytes:
    """Body fields in schema order; handles are ROOT or indexes into the fds
    sent; credentials as WireCreds or already encoded (encode_creds)."""
    kinds = OPS[op]
    if len(args) != len(kinds):
        raise ValueError(f"{op.name}: {len(kinds)} fields, got {len(args)}")
    parts: list[bytes] = []
    add = parts.append
    for kind, value in zip(kinds, args):
        if kind == "u":
            add(_U64.pack(value))  # type: ignore[arg-type]
        elif kind == "b":
            add(_U32.pack(len(value)))  # type: ignore[arg-type]
            add(value)  # type: ignore[arg-type]
        elif kind == "h":
            if value != ROOT and not 0 <= value < nfds:  # type: ignore[operator]
                raise ValueError(f"{op.name}: handle {value} with {nfds} fds")
            add(_S32.pack(value))  # type: ignore[arg-type]
        elif kind == "c":
            add(value if isinstance(value, bytes) else encode_creds(value))  # type: ignore[arg-type]
        else:  # "i"
            add(_S64.pack(value))  # type: ignore[arg-type]
    body = b"".join(parts)
    return HEADER.pack(VERSION, op, len(body), req_id) + body


def decode_request(data: bytes, fds: list[int]) -> Request:
    """Check and unpack one request.  On ProtocolError the caller closes fds."""
    if len(data) < HEADER.size:
        raise ProtocolError(errno.EPROTO, f"short message ({len(data)} bytes)")
    version, op_n, blen, req_id = HEADER.unpack_from(data)
    if version != VERSION:
        raise ProtocolError(errno.EPROTONOSUPPORT, f"version {version}, want {VERSION}")
    if blen != len(data) - HEADER.size:
        raise ProtocolError(errno.EPROTO, f"body length {blen}, message has {len(data) - HEADER.size}")
    op = _OP_OF.get(op_n)
    if op is None:
        raise ProtocolError(errno.EINVAL, f"unknown op {op_n}")
    if len(fds) > MAX_FDS:
        raise ProtocolError(errno.EBADF, f"{len(fds)} fds")
    args: list[object] = []
    add = args.append
    used: set[int] = set()
    off = HEADER.size
    end = len(data)
    try:  # unpack_from raises struct.error past the end: truncated
        for kind in OPS[op]:
            if kind == "u":
                add(_U64.unpack_from(data, off)[0])
                off += 8
            elif kind == "b":
                n = _U32.unpack_from(data, off)[0]
                off += 4
                if n > PATH_MAX or off + n > end:
                    raise ProtocolError(errno.ENAMETOOLONG if n > PATH_MAX else errno.EPROTO,
                                        f"{op.name}: string of {n} bytes")
                s = data[off:off + n]
                if b"\0" in s:
                    raise ProtocolError(errno.EINVAL, f"{op.name}: NUL in a string")
                add(s)
                off += n
            elif kind == "h":
                h = _S32.unpack_from(data, off)[0]
                off += 4
                if h == ROOT:
                    add(ROOT)
                elif 0 <= h < len(fds):
                    used.add(h)
                    add(fds[h])
                else:
                    raise ProtocolError(errno.EBADF, f"{op.name}: handle {h} with {len(fds)} fds")
            elif kind == "c":
                uid, gid, caps, n = _CREDS.unpack_from(data, off)
                off += _CREDS.size
                if n > MAX_GROUPS or off + 4 * n > end:
                    raise ProtocolError(errno.EPROTO, f"{op.name}: {n} groups")
                groups = struct.unpack_from(f"<{n}I", data, off) if n else ()
                off += 4 * n
                add(WireCreds(uid, gid, caps, groups))
            else:  # "i"
                add(_S64.unpack_from(data, off)[0])
                off += 8
    except struct.error:
        raise ProtocolError(errno.EPROTO, f"{op.name}: truncated") from None
    if off != end:
        raise ProtocolError(errno.EPROTO, f"{op.name}: {end - off} trailing bytes")
    if len(used) != len(fds):
        raise ProtocolError(errno.EBADF, f"{op.name}: {len(fds) - len(used)} unnamed fds")
    return Request(op, req_id, args, list(fds))


def encode_reply(req_id: int, op: int, result: int, data: bytes = b"") -> bytes:
    body = _S64.pack(result) + _U32.pack(len(data)) + data
    return HEADER.pack(VERSION, op, len(body), req_id) + body


def decode_reply(data: bytes, want_id: int, fds: list[int]) -> tuple[int, bytes, list[int]]:
    """(result, data, fds) of the reply to want_id; ProtocolError otherwise."""
    if len(data) < HEADER.size + 12:
        raise ProtocolError(errno.EPROTO, f"short reply ({len(data)} bytes)")
    version, _op, blen, req_id = HEADER.unpack_from(data)
    if version != VERSION or req_id != want_id or blen != len(data) - HEADER.size:
        raise ProtocolError(errno.EPROTO, f"reply v{version} id {req_id} (want {want_id})")
    result = _S64.unpack_from(data, HEADER.size)[0]
    n = _U32.unpack_from(data, HEADER.size + 8)[0]
    if HEADER.size + 12 + n != len(data):
        raise ProtocolError(errno.EPROTO, "reply data length")
    if len(fds) > 1 or (fds and result < 0):
        raise ProtocolError(errno.EPROTO, f"reply with {len(fds)} fds, result {result}")
    return result, data[HEADER.size + 12:], fds


def send(sock: socket.socket, msg: bytes, fds: list[int] | tuple[int, ...] = ()) -> None:
    if fds:
        socket.send_fds(sock, [msg], list(fds))
    else:
        sock.send(msg)


def recv(sock: socket.socket) -> tuple[bytes, list[int]]:
    """One message and the fds beside it; b"" at EOF.  Truncation is an error."""
    msg, fds, flags, _addr = socket.recv_fds(sock, MAX_MESSAGE, MAX_FDS)
    if flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC):
        import os
        for fd in fds:
            os.close(fd)
        raise ProtocolError(errno.EMSGSIZE, "message or fds truncated")
    return msg, fds
