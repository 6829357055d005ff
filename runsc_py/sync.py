"""The parent/child synchronisation protocol of `create`.

Three processes take part (compare runc's nsexec + `runc init`):

    runtime (P)              sandbox (S)                 init (I)
    ---------------------------------------------------------------------
    fork S  ------------->   (S: first process of a new pid namespace)
    probe, filters,          import the sentry and the gofer
    cgroups; join S to them
    init config (a pickle on a pipe)
            --- GO ------>   (fds: init's channel end, start.sock, sentry.sock)
                             make the sentry's /proc (detached)
                             join/unshare user ns
            <-- USERNS ---   (only with a new user ns)
    write uid/gid maps
            --- MAPPED -->
            <-- HELLO ----
            --- CGROUPS ->   unshare the other namespaces, fork I
            <-- INIT_PID -   (pidfds of I and the gofer) prepare the rootfs
            <-------------------------------- HOOKS ----  (before pivot_root)
    run prestart and createRuntime hooks
            --------------------------------- HOOKS_DONE ->
                                                        createContainer hooks,
                                                        pivot_root, console:
            <-------------------------------- CONSOLE ---  (pty master fd)
                                                        hostname, sysctl,
                                                        masks, rlimits...
            <-------------------------------- READY -----
    write state + pid file, exit
            --- DONE ---->   wait for I, mirror its exit status
                                                        wait on start.sock,
                                                        startContainer hooks,
                                                        user, caps, sandbox,
                                                        execve

Any side may instead send ERROR {"msg": ...}; the runtime then tears
everything down.  Messages are one JSON object per SOCK_SEQPACKET datagram;
file descriptors travel with SCM_RIGHTS.  EOF means the peer died.
"""

from __future__ import annotations

from runsc_py import sockets  # socket's API without socket.py's enums (sockets.py)
TYPE_CHECKING = False  # typing's, without importing typing (docs/performance.md, Start-up)
if TYPE_CHECKING:
    from typing import Any

from . import jsonio
from .errors import RuntimeFailure

_MAX = 65536


class Msg(str):
    """A message type: one of the constants below (compared by identity);
    Msg(text) is the constant of that text, or ValueError.  A str, not an
    enum.Enum (as state.Status): no process of a start imports enum."""
    __slots__ = ()
    USERNS: Msg
    MAPPED: Msg
    GO: Msg
    HELLO: Msg
    CGROUPS: Msg
    INIT_PID: Msg
    HOOKS: Msg
    HOOKS_DONE: Msg
    CONSOLE: Msg
    READY: Msg
    DONE: Msg
    ERROR: Msg

    def __new__(cls, value: str) -> "Msg":
        known = _MSGS.get(value)
        if known is None:
            raise ValueError(f"{value!r} is not a message type")
        return known

    @property
    def value(self) -> str:
        return str.__str__(self)

    def __repr__(self) -> str:
        return f"<Msg.{self.upper()}: {str.__repr__(self)}>"


_MSGS: dict[str, Msg] = {}
for _name in ("userns", "mapped", "go", "hello", "cgroups", "init_pid", "hooks", "hooks_done",
              "console", "ready", "done", "error"):
    _MSGS[_name] = str.__new__(Msg, _name)
    setattr(Msg, _name.upper(), _MSGS[_name])
del _name


class Channel:
    """One end of a SOCK_SEQPACKET socketpair speaking the protocol above."""

    def __init__(self, sock: sockets.socket, peer: str) -> None:
        self.sock = sock
        self.peer = peer

    @staticmethod
    def pair(peer_a: str, peer_b: str) -> tuple["Channel", "Channel"]:
        a, b = sockets.socketpair(sockets.AF_UNIX, sockets.SOCK_SEQPACKET)
        return Channel(a, peer_b), Channel(b, peer_a)

    def send(self, kind: Msg, fds: list[int] | None = None, **data: Any) -> None:
        payload = jsonio.dumps({"type": kind.value, **data}).encode()
        if fds:
            sockets.send_fds(self.sock, [payload], fds)
        else:
            self.sock.send(payload)

    def error(self, msg: str) -> None:
        try:
            self.send(Msg.ERROR, msg=msg)
        except OSError:
            pass

    def recv(self, *expected: Msg) -> tuple[dict[str, Any], list[int]]:
        """Receive one message; an ERROR or EOF becomes a RuntimeFailure."""
        try:
            data, fds, _flags, _addr = sockets.recv_fds(self.sock, _MAX, 4)
        except OSError as e:
            raise RuntimeFailure(f"sync with {self.peer}: {e.strerror}") from None
        if not data:
            raise RuntimeFailure(f"sync with {self.peer}: {self.peer} exited unexpectedly")
        try:
            msg = jsonio.loads(data)
            kind = Msg(msg["type"])
        except (ValueError, KeyError, TypeError):
            raise RuntimeFailure(f"sync with {self.peer}: malformed message") from None
        if kind is Msg.ERROR:
            for fd in fds:
                _close(fd)
            raise RuntimeFailure(str(msg.get("msg", "unknown error")))
        if expected and kind not in expected:
            for fd in fds:
                _close(fd)
            raise RuntimeFailure(f"sync with {self.peer}: unexpected message {kind.value!r}, "
                                 f"want {'/'.join(e.value for e in expected)}")
        msg["type"] = kind
        return msg, fds

    def close(self) -> None:
        self.sock.close()


def _close(fd: int) -> None:
    import os
    try:
        os.close(fd)
    except OSError:
        pass
