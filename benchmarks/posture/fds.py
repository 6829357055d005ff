"""Open file descriptors of a process, classified by where they lead.

For each /proc/PID/fd/N: the link text (readlink), the file's device
(stat() follows the magic link to the open file) and the mount it was opened
through (mnt_id in /proc/PID/fdinfo/N, looked up in the holder's own
/proc/PID/mountinfo).  Places:

    rootfs   a file inside the container's root filesystem (same device as
             the bundle's rootfs and, through the holder's mount, a path at or
             under the rootfs directory)
    host     a file on a filesystem the host has mounted, outside the rootfs
             (flagged; fds 0-2 are marked stdio, and so are the files the
             tool gave the runtime as stdio when it started the container: the
             caller's stdio that every OCI runtime hands over)
    private  a file on a filesystem the host has not mounted (the container's
             own /dev tmpfs, /proc, /sys instances; a helper's private tmpfs)
    pipe / socket
             linked to the processes holding the same pipe or socket inode and,
             for Unix sockets, the peer's inode (read with `ss -xaH` inside the
             holder's network namespace).  Flagged when the other end is held by
             a process in another group (workload <-> helper, or either <-> a
             host process outside the sandbox).
    anon     anon_inode:[...] and memfds: nothing on a filesystem
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
from dataclasses import dataclass, field

from benchmarks.posture import procfs

log = logging.getLogger(__name__)

_INODE = re.compile(r"^(socket|pipe):\[(\d+)\]$")


@dataclass
class Fd:
    fd: int
    target: str
    place: str = ""
    note: str = ""
    flagged: bool = False
    inode: int = 0
    links: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return {"fd": self.fd, "target": self.target, "place": self.place, "note": self.note,
                "flagged": self.flagged, "links": self.links}

    def __str__(self) -> str:
        s = f"{self.fd} -> {self.target} [{self.place}]"
        if self.note:
            s += f" {self.note}"
        if self.links:
            s += " (" + "; ".join(self.links) + ")"
        return s


@dataclass(frozen=True)
class RootfsRef:
    """Where the container's rootfs lives on the host: device and path in its fs."""
    dev: str
    fs_path: str

    @classmethod
    def of(cls, rootfs: str) -> RootfsRef | None:
        try:
            st = os.stat(rootfs)
        except OSError:
            return None
        real = os.path.realpath(rootfs)
        best = None
        for m in procfs.mounts("self").values():
            mp = m.mountpoint.rstrip("/") or "/"
            if (real == mp or real.startswith(mp.rstrip("/") + "/")) and \
                    m.dev == f"{os.major(st.st_dev)}:{os.minor(st.st_dev)}":
                if best is None or len(mp) >= len(best.mountpoint):
                    best = m
        if best is None:
            return None
        rel = os.path.relpath(real, best.mountpoint)
        return cls(best.dev, os.path.normpath(os.path.join(best.root, rel)))

    def contains(self, dev: str, fs_path: str) -> bool:
        p = os.path.normpath(fs_path)
        return dev == self.dev and (p == self.fs_path or p.startswith(self.fs_path.rstrip("/") + "/"))


def host_devices() -> set[str]:
    return {m.dev for m in procfs.mounts("self").values()}


def _mnt_id(pid: int, fd: int) -> int | None:
    try:
        with open(f"/proc/{pid}/fdinfo/{fd}") as f:
            for line in f:
                if line.startswith("mnt_id:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def read(pid: int) -> list[Fd]:
    """The fds of PID with their targets (unclassified)."""
    out = []
    try:
        names = os.listdir(f"/proc/{pid}/fd")
    except OSError as e:
        log.debug("fds of %d: %s", pid, e)
        return []
    for n in sorted(names, key=int):
        try:
            out.append(Fd(int(n), os.readlink(f"/proc/{pid}/fd/{n}")))
        except OSError:
            continue
    return out


def mount_table(pids: list[int]) -> dict[int, procfs.Mount]:
    """Mounts by id over the mount namespaces of PIDS and this tool's.  Mount
    ids are global: an fd may have been opened in another process's namespace
    (runsc-py's sandbox holds the container's root, gVisor's sandbox files the
    gofer opened), so its mount is looked up in every table."""
    table: dict[int, procfs.Mount] = {}
    sources: list[int | str] = [*pids, "self"]
    for pid in sources:
        try:
            table.update(procfs.mounts(pid))
        except (OSError, procfs.Gone):
            continue
    return table


def classify_files(pid: int, fds: list[Fd], rootfs: RootfsRef | None, host_devs: set[str],
                   table: dict[int, procfs.Mount], caller_stdio: tuple[str, ...] = ()) -> None:
    """Set .place for every fd that is not a pipe or socket.  CALLER_STDIO:
    path prefixes of the files the runtime's caller gave it as stdio (the tool's
    own container), noted as such wherever they show up (gVisor's sandbox holds
    the workload's stdio at fds 256-258)."""
    try:
        table = {**table, **procfs.mounts(pid)}
    except (OSError, procfs.Gone):
        pass
    for f in fds:
        if _INODE.match(f.target):
            kind, ino = _INODE.match(f.target).groups()  # type: ignore[union-attr]
            f.place, f.inode = kind, int(ino)
            continue
        if f.target.startswith(("anon_inode:", "/memfd:")) or not f.target.startswith("/"):
            f.place = "anon"
            if "seccomp" in f.target:
                f.note = "seccomp listener"
            continue
        try:
            st = os.stat(f"/proc/{pid}/fd/{f.fd}")
        except OSError as e:
            f.place, f.note = "unknown", f"stat: {e.strerror}"
            continue
        dev = f"{os.major(st.st_dev)}:{os.minor(st.st_dev)}"
        mid = _mnt_id(pid, f.fd)
        m = table.get(mid) if mid is not None else None
        path = f.target.removesuffix(" (deleted)")
        if m is not None:
            mp = m.mountpoint.rstrip("/")
            if path == m.mountpoint or path.startswith(mp + "/"):
                rel = os.path.relpath(path, m.mountpoint)
            else:   # a detached or unreachable mount: the path is relative to its root
                rel = path.lstrip("/")
            fs_path = os.path.normpath(os.path.join(m.root, rel))
        else:
            fs_path = path
        if rootfs is not None and rootfs.contains(dev, fs_path):
            f.place = "rootfs"
        elif dev in host_devs:
            f.place = "host"
            f.flagged = True
            if any(path.startswith(c) for c in caller_stdio):
                f.note = "caller's stdio"
            elif f.fd <= 2:
                f.note = "stdio"
        else:
            f.place = "private"


def unix_peers(netns_pids: dict[int, int]) -> dict[int, int]:
    """Unix socket inode -> peer inode, over the network namespaces given as
    {netns inode: a pid inside it} (`ss -xaH` run in each via nsenter)."""
    peers: dict[int, int] = {}
    for ns, pid in netns_pids.items():
        argv = ["nsenter", f"--net=/proc/{pid}/ns/net", "ss", "-xaH"]
        try:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=20,
                                 stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as e:
            log.warning("unix socket peers in netns %d: %s", ns, e)
            continue
        if out.returncode != 0:
            log.warning("unix socket peers in netns %d: %s", ns, out.stderr.strip()[:200])
            continue
        for line in out.stdout.splitlines():
            f = line.split()
            if len(f) >= 8 and f[-3].isdigit() and f[-1].isdigit():
                local, peer = int(f[-3]), int(f[-1])
                if peer:
                    peers[local] = peer
    return peers


def holders() -> dict[str, set[int]]:
    """'pipe:[N]' / 'socket:[N]' -> pids holding it, over every host process."""
    out: dict[str, set[int]] = {}
    for pid in procfs.pids():
        try:
            names = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for n in names:
            try:
                t = os.readlink(f"/proc/{pid}/fd/{n}")
            except OSError:
                continue
            if _INODE.match(t):
                out.setdefault(t, set()).add(pid)
    return out
