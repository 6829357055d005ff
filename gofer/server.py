"""The gofer process: serves the container's files to the sentry.

Life, in order (`main`):

1. Forked by the sandbox process before it confines itself (launch.py);
   named `runsc-gofer`; dies with the sandbox (PDEATHSIG); its stdio is
   /dev/null; it leaves the container's network namespace for an empty one
   (no network at all).
2. Waits for ATTACH on the control socket: the container's mount namespace
   (an fd), sent when init has finished the rootfs and hands itself to the
   sentry.  setns() into it: the gofer's root is now the container root,
   with exactly the spec's mounts (bind mounts with their ro/nosuid/nodev/
   noexec flags, tmpfs, the read-only root, masked and read-only paths: the
   mount table init built, the same one the kernel applies to the
   workload's own execve).  Nothing of the host is reachable: ".." and
   absolute symlinks stop at that root.
3. Confines itself: capabilities cut to what serving files needs (bounding,
   permitted, effective), no_new_privs, non-dumpable, its own seccomp
   allowlist (gofer/filter.py), then answers ATTACH with an O_PATH fd of
   the root (kept by the sentry in directfs mode, used only for its
   identity in gofer mode).
4. Serves: CHANNEL requests on the control socket give it one socket per
   sentry worker thread; each gets a thread here running the same
   operations the sentry runs in directfs mode (`sentry.files.LocalOps`),
   with the credentials named in each request.

Faults: a malformed request gets an error reply (protocol.ProtocolError's
errno), a log line, and the channel keeps serving; a request whose
operation fails gets -errno.  EOF on the control socket (the sandbox is
gone) ends the process.
"""

from __future__ import annotations

import errno
import os
import _signal  # signal.py's C module: signal.py imports enum (runsc_py/signals.py)
from runsc_py import sockets  # socket's API without socket.py's enums (sockets.py)
import threading
TYPE_CHECKING = False  # typing's, without importing typing (docs/performance.md, Start-up)
if TYPE_CHECKING:
    from typing import Any, NoReturn

from runsc_py import libc
from runsc_py.timeline import mark
from sentry import hostcalls
from sentry.creds import ThreadCreds, own_creds
from sentry.errors import SysError
from sentry.files import ENOENT_VIA_LINK, LocalOps
from sentry.hostcalls import Scratch
from sentry.resolve import Resolver

from . import filter as gofer_filter
from . import protocol
from .protocol import ROOT, Op, ProtocolError, Request, WireCreds
from runsc_py.log import get_logger

# Everything is imported above, while the host's files are visible: after
# ATTACH the gofer's root is the container's.

log = get_logger(__name__)

# What serving files needs: ownership and mode changes, permission checks
# overridden for a root workload, device nodes, acting as any uid/gid.
CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER, CAP_FSETID = 0, 1, 2, 3, 4
CAP_SETGID, CAP_SETUID, CAP_LINUX_IMMUTABLE, CAP_MKNOD, CAP_SETFCAP = 6, 7, 9, 27, 31
FILE_CAPS = sum(1 << c for c in (CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER,
                                 CAP_FSETID, CAP_SETGID, CAP_SETUID, CAP_LINUX_IMMUTABLE,
                                 CAP_MKNOD, CAP_SETFCAP))
_LAST_CAP = 40


class Gofer:
    """The serving half, once attached: a root and one thread per channel."""

    def __init__(self, root_fd: int) -> None:
        # The gofer is its own root and has no procfs of its own: path_of
        # walks "..", never reads /proc/self/fd links.
        self.resolver = Resolver(root_fd, root_link=b"/")
        self.resolver.links_readable = False
        self.threads: list[threading.Thread] = []
        # Our own credentials, before any channel thread switches: each
        # starts from them, whatever its creator had in force then.
        self.own_creds = own_creds()

    def serve_channel(self, sock: sockets.socket) -> int:
        """Serve sock on a new thread; its tid (the sentry keeps it on its CPU)."""
        t = threading.Thread(target=self._channel, args=(sock,), name="gofer-channel", daemon=True)
        t.start()
        self.threads.append(t)
        return t.native_id or 0

    def _channel(self, sock: sockets.socket) -> None:
        ops = LocalOps(self.resolver, Scratch())
        creds = ThreadCreds(own=self.own_creds)
        with sock:
            while True:
                try:
                    data, fds = protocol.recv(sock)
                except ProtocolError as e:
                    # A request cut short still gets its answer: the sentry
                    # thread that sent it waits for one.
                    log.warning("gofer: %s", e)
                    if len(e.partial) >= protocol.HEADER.size:
                        req_id = protocol.HEADER.unpack_from(e.partial)[3]
                        try:
                            protocol.send(sock, protocol.encode_reply(req_id, 0, -e.errno))
                        except OSError:
                            return
                    continue
                except OSError:
                    return
                if not data and not fds:
                    return  # the sentry closed this channel
                reply, out_fd = self.handle(ops, creds, data, fds)
                try:
                    protocol.send(sock, reply, [out_fd] if out_fd >= 0 else [])
                except OSError:
                    return
                finally:
                    if out_fd >= 0:
                        os.close(out_fd)

    def handle(self, ops: object, creds: object, data: bytes, fds: list[int]) -> tuple[bytes, int]:
        """One request -> (reply message, fd to send or -1).  Closes fds."""
        req = _decode(data, fds, "request")
        if isinstance(req, bytes):
            return req, -1
        try:
            result, payload = _perform(ops, creds, req)
        except ProtocolError as e:
            log.warning("gofer: refused %s: %s", req.op.name, e)
            result, payload = -e.errno, b""
        except Exception:  # a bug here must not take the gofer down
            log.exception("gofer: %s failed", req.op.name)
            result, payload = -errno.EIO, b""
        finally:
            for fd in req.fds:
                os.close(fd)
        if req.op in _RETURNS_FD and result >= 0:
            return protocol.encode_reply(req.id, req.op, 0), result
        return protocol.encode_reply(req.id, req.op, result, payload), -1


_RETURNS_FD = {Op.RESOLVE, Op.OPENAT2}


def _decode(data: bytes, fds: list[int], where: str, only: Op | None = None) -> Request | bytes:
    """The request, or the error reply to send for a malformed one (its fds closed)."""
    try:
        req = protocol.decode_request(data, fds)
        if only is None or req.op is only:
            return req
        err = ProtocolError(errno.EINVAL, f"{req.op.name} on the {where} socket")
    except ProtocolError as e:
        err = e
    for fd in fds:
        os.close(fd)
    log.warning("gofer: refused a %s request: %s", where, err)
    req_id = int.from_bytes(data[8:16], "little") if len(data) >= 16 else 0
    return protocol.encode_reply(req_id, 0, -err.errno)


def _name(op: Op, name: object) -> bytes:
    """A single directory entry (trailing slashes kept for the kernel's rules)."""
    b = name if isinstance(name, bytes) else b""
    if not b or b"/" in b.rstrip(b"/") or b.rstrip(b"/") in (b"", b".", b".."):
        raise ProtocolError(errno.EINVAL, f"{op.name}: not a single name: {b[:64]!r}")
    return b


def _perform(ops, creds, req: Request) -> tuple[int, bytes]:  # type: ignore[no-untyped-def]
    """Run one file operation with the request's credentials."""
    op, a = req.op, req.args
    if op in (Op.ATTACH, Op.CHANNEL):
        raise ProtocolError(errno.EINVAL, f"{op.name} on a channel")
    w: WireCreds = a[0]  # type: ignore[assignment]
    creds.apply((w.uid, w.gid, w.groups, w.caps))
    if op is Op.RESOLVE:
        how = a[5]
        if how == protocol.RESOLVE_PROBE:
            r = ops.resolve_probed(a[1], a[2], a[3], a[4])
            if r == ENOENT_VIA_LINK:
                return -errno.ENOENT, protocol.VIA_LINK
            if r == -errno.ENOENT and a[1] == ROOT and a[2].startswith(b"/"):
                dev = ops.missing_dev(a[2])
                return r, (dev.to_bytes(8, "little") if dev >= 0 else b"")
            return r, b""
        if how & ~protocol.RESOLVE_NO_SYMLINKS:
            raise ProtocolError(errno.EINVAL, f"RESOLVE: how {how:#x}")
        return ops.resolve(a[1], a[2], a[3], a[4], bool(how)), b""
    if op is Op.OPENAT2:
        return ops.openat2(a[1], a[2], a[3], a[4], a[5]), b""
    if op is Op.PATH_OF:
        try:
            return 0, ops.path_of(a[1])
        except SysError as e:
            return -e.errno, b""
    if op is Op.MKDIRAT:
        return ops.mkdirat(a[1], _name(op, a[2]), a[3]), b""
    if op is Op.MKNODAT:
        return ops.mknodat(a[1], _name(op, a[2]), a[3], a[4]), b""
    if op is Op.UNLINKAT:
        r = ops.unlinkat(a[1], _name(op, a[2]), a[3])
        mode = ops.unlinked_mode
        return r, (mode.to_bytes(4, "little") if r == 0 and mode else b"")
    if op is Op.SYMLINKAT:
        return ops.symlinkat(a[1], a[2], _name(op, a[3])), b""
    if op is Op.RENAMEAT2:
        return ops.renameat2(a[1], _name(op, a[2]), a[3], _name(op, a[4]), a[5]), b""
    if op is Op.LINKAT:
        return ops.linkat(a[1], _name(op, a[2]), a[3], _name(op, a[4]), a[5]), b""
    if op is Op.ACCESS:
        if a[1] == ROOT:
            raise ProtocolError(errno.EBADF, "ACCESS needs an object fd")
        return ops.access(a[1], a[2]), b""
    raise ProtocolError(errno.EINVAL, f"unhandled op {op.name}")


# --- the process -------------------------------------------------------------------

def main(control: sockets.socket, null: int, parent: int, prepared: Any = None) -> NoReturn:
    """The gofer process's whole life (see the module docstring).  PARENT:
    the sandbox process's pid, to see whether it died before PDEATHSIG was set.
    PREPARED: its filter from the runtime's cache (gofer/filter.py install)."""
    code = 1
    try:
        libc.set_name("runsc-gofer")
        libc.prctl(libc.PR_SET_PDEATHSIG, 9)
        if os.getppid() != parent:
            os._exit(1)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.close(null)
        libc.prctl(libc.PR_SET_DUMPABLE, 0)
        # Modes arrive with the caller's umask applied by the sentry: ours
        # must not mask them again (was 022: umask 0; touch f gave 0644).
        os.umask(0)
        # `kill --all` signals every process of the container's cgroup, the
        # gofer included: only SIGKILL (or the sandbox's end) stops it.
        for sig in _signal.valid_signals():
            if sig not in (_signal.SIGKILL, _signal.SIGSTOP, _signal.SIGCHLD):
                try:
                    _signal.signal(sig, _signal.SIG_IGN)
                except (OSError, ValueError):
                    pass
        libc.unshare(libc.CLONE_NEWNET)  # no network: an empty namespace
        gofer = _attach(control, prepared)
        while True:
            try:
                data, fds = protocol.recv(control)
            except ProtocolError as e:
                log.warning("gofer: control: %s", e)
                continue
            if not data and not fds:
                code = 0
                break  # the sandbox is gone
            req = _decode(data, fds, "control", only=Op.CHANNEL)
            if isinstance(req, bytes):
                protocol.send(control, req)
                continue
            sock = sockets.socket(fileno=req.fds[0])
            if sock.type != sockets.SOCK_SEQPACKET:
                sock.close()
                protocol.send(control, protocol.encode_reply(req.id, req.op, -errno.EINVAL))
                continue
            tid = gofer.serve_channel(sock)
            protocol.send(control, protocol.encode_reply(req.id, req.op, tid))
    except BaseException:
        log.exception("gofer failed")
    finally:
        os._exit(code)


def _attach(control: sockets.socket, prepared: Any = None) -> Gofer:
    """Wait for ATTACH, join the container's mount namespace, reply with
    the root, confine.  The reply goes first: the sentry waits for it
    while the workload's first execve does (~2.5 ms of confinement off a
    start's critical path), and the gofer reads no other request before
    it is confined (its serving loop starts after this returns; in
    directfs mode the next thing it reads is the EOF it exits on)."""
    data, fds = protocol.recv(control)
    if not data:
        os._exit(0)
    req = protocol.decode_request(data, fds)
    if req.op is not Op.ATTACH:
        raise ProtocolError(errno.EINVAL, f"expected ATTACH, got {req.op.name}")
    mntns = req.fds[0]
    libc.setns(mntns, libc.CLONE_NEWNS)
    os.close(mntns)
    os.chdir("/")
    root = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    protocol.send(control, protocol.encode_reply(req.id, req.op, 0), [root])
    _drop_capabilities()
    # Always enforcing: no environment switch turns it into log-only (a
    # runtime inherits whatever environment containerd or a shim has).
    gofer_filter.install(prepared)
    mark("gofer.confined")
    gofer = Gofer(root)
    log.debug("gofer: attached to the container root")
    # Serving from now on: the collector (off in the launcher, frozen over
    # what the sandbox made before the fork) runs again.
    import gc
    gc.enable()
    return gofer


def _drop_capabilities() -> None:
    """Bounding set, then permitted/effective/inheritable: FILE_CAPS only."""
    for cap in range(_LAST_CAP + 1):
        if not FILE_CAPS >> cap & 1:
            try:
                libc.prctl(libc.PR_CAPBSET_DROP, cap)
            except OSError as e:
                if e.errno != errno.EINVAL:  # a cap this kernel does not know
                    raise
    r = hostcalls.capset_self(FILE_CAPS, FILE_CAPS, 0)
    if r < 0:
        raise OSError(-r, "gofer: capset")
    libc.prctl(libc.PR_SET_NO_NEW_PRIVS, 1)
