"""Container state on disk: <root>/<id>/state.json, its lock, and status.

The status is never trusted from the file alone: it is derived from the
sandbox process (alive? same start time? a zombie nobody reaped?), the freezer
and whether `start` has happened, so a dead init is noticed even when nobody
reaped it (the OCI validation tools never reap).
"""

from __future__ import annotations

import fcntl
import os

from . import jsonio
from .errors import ContainerNotExist, RuntimeFailure
from .record import Record

TYPE_CHECKING = False  # typing.TYPE_CHECKING, whose import the short commands do without (test_startup.py)
if TYPE_CHECKING:
    from typing import Any

DEFAULT_ROOT = "/run/runsc-py"
STATE_FILE = "state.json"
START_SOCKET = "start.sock"
# runc's ^[\w+\-.]+$, with Go's ASCII \w (no re: the short commands
# do without it and enum, which re imports).
_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+-.")


class Status(str):
    """A container's status: one of the five constants below (compared by
    identity), its text what `state` prints.  A str, not an enum.Enum: the
    short commands import no enum."""
    __slots__ = ()
    CREATING: Status
    CREATED: Status
    RUNNING: Status
    PAUSED: Status
    STOPPED: Status

    @property
    def value(self) -> str:
        return str.__str__(self)

    def __repr__(self) -> str:
        return f"<Status.{self.upper()}: {str.__repr__(self)}>"

    def can_start(self) -> bool:
        return self is Status.CREATED

    def can_kill(self) -> bool:
        return self in (Status.CREATED, Status.RUNNING, Status.PAUSED)

    def can_delete(self) -> bool:
        return self in (Status.CREATED, Status.STOPPED, Status.CREATING)


Status.CREATING = Status("creating")
Status.CREATED = Status("created")
Status.RUNNING = Status("running")
Status.PAUSED = Status("paused")
Status.STOPPED = Status("stopped")


def validate_id(cid: str) -> None:
    if not cid or not _ID_CHARS.issuperset(cid) or cid in (".", ".."):
        raise RuntimeFailure(f"invalid container id format: {cid!r}")


class ContainerState(Record):
    id: str
    bundle: str
    rootfs: str
    created: str
    owner: str = ""
    pid: int = 0                # the sandbox process: what the pid file names
    pid_start: int = 0          # its start time in clock ticks (pid reuse guard)
    init_pid: int = 0           # the workload's init (pid 1 inside the container)
    init_start: int = 0
    gofer_pid: int = 0          # the gofer (runsc-gofer): a runtime process, not listed by ps
    started: bool = False
    annotations: dict[str, str] = {}
    cgroup: dict[str, Any] = {}
    platform: str = "seccomp"
    sandbox: dict[str, Any] = {}
    config: dict[str, Any] = {}

    def to_json(self) -> str:
        return jsonio.dumps(self.as_dict())

    @classmethod
    def from_json(cls, text: str) -> "ContainerState":
        data = jsonio.loads(text)
        known = set(cls._fields)
        return cls(**{k: v for k, v in data.items() if k in known})


def remove_tree(path: str) -> None:
    """Remove a container's state directory and what is in it, errors
    ignored (shutil.rmtree's, without importing shutil: it imports bz2,
    lzma and fnmatch).  Fd-relative and never following a symlink, as
    rmtree: the directory is root's, but a path is not trusted twice."""
    try:
        dfd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return
    try:
        _remove_entries(dfd)
    finally:
        os.close(dfd)
    try:
        os.rmdir(path)
    except OSError:
        pass


def _remove_entries(dfd: int) -> None:
    for entry in os.scandir(dfd):
        try:
            if entry.is_dir(follow_symlinks=False):
                sub = os.open(entry.name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                              dir_fd=dfd)
                try:
                    _remove_entries(sub)
                finally:
                    os.close(sub)
                os.rmdir(entry.name, dir_fd=dfd)
            else:
                os.unlink(entry.name, dir_fd=dfd)
        except OSError:
            pass


def proc_start_time(pid: int) -> int | None:
    """Field 22 of /proc/PID/stat, or None if the process is gone or a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    rest = data[data.rfind(b")") + 2:].split()
    if rest[0] in (b"Z", b"X"):
        return None
    return int(rest[19])


class Store:
    """The --root directory: one subdirectory per container."""

    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)

    def dir(self, cid: str) -> str:
        validate_id(cid)
        return os.path.join(self.root, cid)

    def ids(self) -> list[str]:
        try:
            return sorted(d for d in os.listdir(self.root)
                          if os.path.isfile(os.path.join(self.root, d, STATE_FILE)))
        except FileNotFoundError:
            return []

    def load(self, cid: str) -> ContainerState:
        try:
            with open(os.path.join(self.dir(cid), STATE_FILE)) as f:
                return ContainerState.from_json(f.read())
        except (FileNotFoundError, NotADirectoryError):
            raise ContainerNotExist() from None
        except ValueError as e:
            raise RuntimeFailure(f"load state of {cid}: {e}") from None

    def save(self, st: ContainerState) -> None:
        d = self.dir(st.id)
        tmp = os.path.join(d, STATE_FILE + ".tmp")
        with open(tmp, "w") as f:
            f.write(st.to_json())
        os.rename(tmp, os.path.join(d, STATE_FILE))

    def lock(self, cid: str) -> "Lock":
        return Lock(self.dir(cid))

    def status(self, st: ContainerState) -> Status:
        if not st.pid:
            return Status.STOPPED if st.started else Status.CREATING
        if proc_start_time(st.pid) != st.pid_start:
            return Status.STOPPED
        if _frozen(st):
            return Status.PAUSED
        if not st.started and os.path.exists(os.path.join(self.dir(st.id), START_SOCKET)):
            return Status.CREATED
        return Status.RUNNING


def _frozen(st: ContainerState) -> bool:
    path = (st.cgroup.get("paths") or {}).get("freezer")
    if path:
        try:
            with open(os.path.join(path, "freezer.state")) as f:
                return f.read().strip() in ("FROZEN", "FREEZING")
        except OSError:
            return False
    unified = st.cgroup.get("unified")
    if unified and st.cgroup.get("mode") == "v2":
        try:
            with open(os.path.join(unified, "cgroup.freeze")) as f:
                return f.read().strip() == "1"
        except OSError:
            return False
    return False


class Lock:
    """An exclusive flock on the container's directory for the whole command."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd = -1

    def __enter__(self) -> "Lock":
        try:
            self.fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise ContainerNotExist() from None
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)
