"""The sentry's side of the wire: attach, per-thread channels, requests.

`attach()` is made by the sandbox process once: it sends the container's
mount namespace (`attach_send`, once `create` is done: init's rootfs is
final then) and gets back an O_PATH fd of the root (`attach_reply`, when
init hands itself to the sentry).
directfs keeps that fd (sentry.files.DirectFS); gofer mode keeps only the
root's identity and talks to the gofer for everything (`GoferFS`).

`GoferFS.for_thread()` gives each sentry worker thread its own channel (a
SEQPACKET socketpair whose far end is sent to the gofer over the control
socket): one request in flight per channel, so no demultiplexing, and a
request that blocks in the gofer blocks only the thread that made it.
"""

from __future__ import annotations

import errno
import itertools
import os
from runsc_py import sockets  # socket's API without socket.py's enums (sockets.py)
import threading
TYPE_CHECKING = False  # typing's, without importing typing (docs/performance.md, Start-up)
if TYPE_CHECKING:
    from typing import Callable

from sentry.cpu import Placement, current_cpu, several_cpus
from sentry.errors import SysError
from sentry.files import ENOENT_VIA_LINK, ROOT

from . import protocol
from .protocol import Op, ProtocolError, WireCreds


class GoferGone(Exception):
    """The gofer closed its end or sent garbage: the sandbox is torn down."""


def _call(sock: sockets.socket, op: Op, req_id: int, args: list[object], fds: list[int],
          wait: "Callable[[sockets.socket], tuple[bytes, list[int]]]" = protocol.recv
          ) -> tuple[int, bytes, list[int]]:
    _send(sock, op, req_id, args, fds)
    return _reply(sock, op, req_id, wait)


def _send(sock: sockets.socket, op: Op, req_id: int, args: list[object], fds: list[int]) -> None:
    try:
        msg = protocol.encode_request(op, req_id, args, len(fds))
    except ProtocolError as e:
        raise SysError(e.errno, str(e)) from None
    try:
        protocol.send(sock, msg, fds)
    except OSError as e:
        raise GoferGone(f"gofer: {op.name}: {e.strerror}") from None


def _reply(sock: sockets.socket, op: Op, req_id: int,
           wait: "Callable[[sockets.socket], tuple[bytes, list[int]]]" = protocol.recv
           ) -> tuple[int, bytes, list[int]]:
    try:
        data, rfds = wait(sock)
    except OSError as e:
        raise GoferGone(f"gofer: {op.name}: {e.strerror}") from None
    if not data:
        raise GoferGone(f"gofer: {op.name}: connection closed")
    try:
        return protocol.decode_reply(data, req_id, rfds)
    except ProtocolError as e:
        for fd in rfds:
            os.close(fd)
        raise GoferGone(str(e)) from None


def attach(control: sockets.socket, mntns_fd: int) -> int:
    """ATTACH: the gofer joins the mount namespace; returns our root fd."""
    attach_send(control, mntns_fd)
    return attach_reply(control)


def attach_send(control: sockets.socket, mntns_fd: int) -> None:
    """ATTACH's request alone: attach_reply() takes its answer later (the
    sandbox asks once init's rootfs is final, and takes the root when init
    hands itself over)."""
    _send(control, Op.ATTACH, 0, [0, 1], [mntns_fd])


def attach_reply(control: sockets.socket) -> int:
    """The root fd ATTACH answered (attach_send)."""
    result, _data, fds = _reply(control, Op.ATTACH, 0)
    if result < 0 or len(fds) != 1:
        for fd in fds:
            os.close(fd)
        raise GoferGone(f"gofer: attach: {os.strerror(-result) if result < 0 else 'no root fd'}")
    return fds[0]  # close-on-exec (protocol.recv)


class GoferFS:
    """gofer mode: no root in the sentry; every file operation is a request."""

    mode = "gofer"

    def __init__(self, control: sockets.socket, root_fd: int, lookup_cache: bool = False) -> None:
        from sentry.resolve import Resolver
        r = Resolver(root_fd)          # identity only: never walked from
        self.root_id = r.root_id
        self.root_link = r.root_link
        os.close(root_fd)
        # Lookups the gofer answered, kept until the tree changes (sentry/lookups.py).
        self.lookup_cache = lookup_cache
        self._control = control
        self._lock = threading.Lock()
        self._ids = itertools.count(1)

    def for_thread(self, scratch: object, creds: object) -> "GoferOps":
        mine, theirs = sockets.socketpair(sockets.AF_UNIX, sockets.SOCK_SEQPACKET)
        try:
            with self._lock:
                result, _d, fds = _call(self._control, Op.CHANNEL, next(self._ids), [0],
                                        [theirs.fileno()])
        finally:
            theirs.close()
        for fd in fds:
            os.close(fd)
        if result < 0:
            mine.close()
            raise GoferGone(f"gofer: new channel: {os.strerror(-result)}")
        return GoferOps(mine, creds, self._ids, peer_tid=result)

    def close(self) -> None:
        self._control.close()


class GoferOps:
    """One worker thread's channel; the FileOps of sentry/files.py."""

    def __init__(self, sock: sockets.socket, creds: object, ids: "itertools.count[int]",
                 peer_tid: int = 0) -> None:
        self.sock = sock
        self.creds = creds  # sentry.creds.ThreadCreds: its .current is what we act as
        self.ids = ids
        # The gofer thread serving this channel: kept on our CPU, and we stay
        # on it until the reply, so neither wake-up lands on an idle vCPU
        # (sentry/cpu.py).  0: not known, no placement.
        self.peer_tid = peer_tid
        self._creds_of: object = None
        self._creds_wire = WireCreds(0, 0, 0)
        self.placement = Placement() if peer_tid > 0 and several_cpus() else None
        self._cpu = -1
        # After resolve_probed's plain ENOENT of an absolute path: the st_dev
        # of the directory that lacks the name, or -1 (sentry/lookups.py).
        self.enoent_dev = -1
        # After a successful unlinkat: the st_mode of what the gofer removed,
        # or 0 (sentry/lookups.py).
        self.unlinked_mode = 0

    def _wire_creds(self) -> WireCreds:
        """The credentials we act as (kept while they last)."""
        cur = self.creds.current  # type: ignore[attr-defined]
        if cur is not self._creds_of:
            uid, gid, groups, caps = cur
            self._creds_wire = WireCreds(uid, gid, caps, groups)
            self._creds_of = cur
        return self._creds_wire

    def _req(self, op: Op, args: list[object], handles: tuple[int, ...]) -> tuple[int, bytes, list[int]]:
        """Handles (ROOT or our fds) become wire handles in the args (placeholders _H)."""
        fds: list[int] = []
        wire: list[object] = [self._wire_creds()]
        hi = iter(handles)
        for a in args:
            if a is _H:
                h = next(hi)
                if h == ROOT:
                    wire.append(ROOT)
                else:
                    if h < 0:
                        raise SysError(errno.EBADF, f"gofer: {op.name}: handle {h}")
                    if h in fds:
                        wire.append(fds.index(h))
                    else:
                        fds.append(h)
                        wire.append(len(fds) - 1)
            else:
                wire.append(a)
        pl = self.placement
        if pl is None:
            return _call(self.sock, op, next(self.ids), wire, fds)
        # The gofer thread stays on our CPU: our request wakes it there, and
        # it runs as soon as we stop (usually before our receive below).
        self._cpu = cpu = current_cpu()
        pl.place_peer(self.peer_tid, cpu)
        return _call(self.sock, op, next(self.ids), wire, fds, self._reply)

    def _reply(self, sock: sockets.socket) -> tuple[bytes, list[int]]:
        """The reply: mostly there already; if not, wait for it pinned.

        Usually the gofer thread ran on this CPU between our send and this
        receive and the reply is queued.  Otherwise we sleep until its
        reply wakes us, and that wake-up would land on the idle CPU (~100
        us): pinned to this one, we are queued here instead.  Then we let
        the gofer thread finish (it has sent its reply but not yet gone
        back to waiting) before we go on: an ADDFD would hand it the CPU in
        the middle of ours.  Placement only, like the pins (sentry/cpu.py).
        """
        try:
            return protocol.recv(sock, sockets.MSG_DONTWAIT)
        except BlockingIOError:
            pass
        pl = self.placement
        assert pl is not None
        pinned = pl.pin_self(self._cpu)
        try:
            return protocol.recv(sock)
        finally:
            os.sched_yield()
            if pinned:
                pl.unpin_self()

    def _fd(self, op: Op, args: list[object], handles: tuple[int, ...]) -> int:
        result, _d, fds = self._req(op, args, handles)
        return result if result < 0 else _the_fd(op, fds)

    def _int(self, op: Op, args: list[object], handles: tuple[int, ...]) -> int:
        result, _d, fds = self._req(op, args, handles)
        for fd in fds:
            os.close(fd)
        return result

    def resolve(self, start: int, path: bytes, flags: int, mode: int,
                no_symlinks: bool = False) -> int:
        return self._fd(Op.RESOLVE, [_H, path, flags, mode, int(no_symlinks)],
                        (start if start >= 0 else ROOT,))

    def resolve_probed(self, start: int, path: bytes, flags: int, mode: int) -> int:
        result, data, fds = self._req(Op.RESOLVE, [_H, path, flags, mode, protocol.RESOLVE_PROBE],
                                      (start if start >= 0 else ROOT,))
        if result < 0:  # (never with an fd: decode_reply refuses that)
            if result == -errno.ENOENT:
                if data == protocol.VIA_LINK:
                    return ENOENT_VIA_LINK
                self.enoent_dev = int.from_bytes(data, "little") if len(data) == 8 else -1
            return result
        return _the_fd(Op.RESOLVE, fds)

    def missing_dev(self, path: bytes) -> int:
        """The st_dev the gofer sent with the last plain ENOENT (sentry/files.py)."""
        return self.enoent_dev

    def openat2(self, dirfd: int, path: bytes, flags: int, mode: int, resolve: int) -> int:
        return self._fd(Op.OPENAT2, [_H, path, flags, mode, resolve], (dirfd,))

    def path_of(self, dirfd: int) -> bytes:
        result, data, fds = self._req(Op.PATH_OF, [_H], (dirfd,))
        for fd in fds:
            os.close(fd)
        if result < 0:
            raise SysError(-result, "gofer: path_of")
        return data

    def mkdirat(self, dirfd: int, name: bytes, mode: int) -> int:
        return self._int(Op.MKDIRAT, [_H, name, mode], (dirfd,))

    def mknodat(self, dirfd: int, name: bytes, mode: int, dev: int) -> int:
        return self._int(Op.MKNODAT, [_H, name, mode, dev], (dirfd,))

    def unlinkat(self, dirfd: int, name: bytes, flags: int) -> int:
        result, data, fds = self._req(Op.UNLINKAT, [_H, name, flags], (dirfd,))
        for fd in fds:
            os.close(fd)
        self.unlinked_mode = int.from_bytes(data, "little") if len(data) == 4 else 0
        return result

    def symlinkat(self, target: bytes, dirfd: int, name: bytes) -> int:
        return self._int(Op.SYMLINKAT, [target, _H, name], (dirfd,))

    def renameat2(self, odir: int, oname: bytes, ndir: int, nname: bytes, flags: int) -> int:
        return self._int(Op.RENAMEAT2, [_H, oname, _H, nname, flags], (odir, ndir))

    def linkat(self, odir: int, oname: bytes, ndir: int, nname: bytes, flags: int) -> int:
        return self._int(Op.LINKAT, [_H, oname, _H, nname, flags], (odir, ndir))

    def access(self, fd: int, mode: int) -> int:
        return self._int(Op.ACCESS, [_H, mode], (fd,))


_H = object()  # placeholder for a handle argument in GoferOps._req


def _the_fd(op: Op, fds: list[int]) -> int:
    """The one fd of a successful reply (close-on-exec: protocol.recv), or GoferGone."""
    if len(fds) != 1:
        raise GoferGone(f"gofer: {op.name}: no fd in the reply")
    return fds[0]
