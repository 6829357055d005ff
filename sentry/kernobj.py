"""Which objects of the kernel's own filesystems, and which devices, the
workload may reach, and for what: the boundary for host-wide kernel state.

A container that asks for everything (every capability, no masked or
read-only paths, every device: `docker run --privileged`) must still not
write host-wide kernel state: one write of /proc/sys/kernel/core_pattern
starting with "|" makes the host kernel run a program of the writer's choice
as host root.  runc leaves that to the spec's readonlyPaths; here the
sandbox decides, as gVisor does by owning /proc and /sys.  Every object the
sentry resolves for the workload passes `check` (sentry/paths.py calls it,
whatever the path, symlink, /proc/self/fd or /proc/thread-self spelling,
openat2 variation or bind mount that led there), with what the call will do
to it:

    LOOKUP  O_PATH: stat, readlink, access, an exec check
    READ    its contents read
    WRITE   its contents written or truncated
    CHANGE  its attributes changed, or names created or removed in it

The decision is by the object's filesystem (statfs magic, `FsKinds`, one
fstatfs per device) and, on procfs and sysfs, by its path below that
filesystem's root, so that a bind mount of /proc/sys elsewhere names the
same knobs.  The tables below are data, one reason per entry, like the
syscall table (sentry/policy.py):

- procfs (only the container's own: a procfs of any other pid namespace,
  the host's bound into the rootfs, is refused whole, by the walk that
  enters it, sentry/procfs.py): writable are the files of the container's
  processes (/proc/<pid>/..., the kernel checks each) and the sysctls Linux
  namespaces (`NAMESPACED_SYSCTLS`), each only where that namespace is the
  container's own and not the host's; every other write is EROFS, as if
  mounted read-only (what Docker's readonlyPaths give); a name made in a
  procfs directory outside them is ENOENT, as Linux's.  Files that leak
  host secrets (`SECRET_PROC`) are not read at all (EACCES).
- sysfs: read-only (EROFS), and /sys/firmware (EACCES).
- debugfs, tracefs, securityfs, bpffs, configfs, pstore, efivarfs,
  binfmt_misc, fusectl: nothing but a lookup (EACCES).
- cgroupfs: read-only (EROFS): release_agent, notify_on_release and the
  container's own limits are host state.
- devices (any filesystem): block devices EPERM (the device cgroup's
  answer); character devices only from `CHAR_DEVICES`, the rest EPERM.

Errors are the errno the target gets (SysError); any failure to tell what an
object is refuses it (fail closed).
"""

from __future__ import annotations

import errno
import os
import stat as _stat
TYPE_CHECKING = False  # typing's, without importing typing (docs/performance.md, Start-up)

from . import ownproc
from .errors import SysError
from .hostcalls import Scratch

if TYPE_CHECKING:
    from .call import Call

LOOKUP, READ, WRITE, CHANGE = range(4)
INTENTS = ("lookup", "read", "write", "change")

# Filesystem kinds (FsKinds.kind).
PLAIN = 0     # anything not below: the container's files, tmpfs, pipes...
PROC = 1      # procfs (the container's own, checked by the walk)
SYSFS = 2
SEALED = 3    # kernel filesystems with nothing for a workload: lookups only
CGROUP = 4

PROC_SUPER_MAGIC = 0x9FA0
SYSFS_MAGIC = 0x62656572
CGROUP_SUPER_MAGIC = 0x27E0EB
CGROUP2_SUPER_MAGIC = 0x63677270
# magic -> (kind, reason)
KERNEL_FS: dict[int, tuple[int, str]] = {
    PROC_SUPER_MAGIC: (PROC, "process files and sysctls: by path below"),
    SYSFS_MAGIC: (SYSFS, "devices, drivers, kernel and power knobs: host-wide"),
    CGROUP_SUPER_MAGIC: (CGROUP, "cgroup v1: release_agent, notify_on_release, limits of host cgroups"),
    CGROUP2_SUPER_MAGIC: (CGROUP, "cgroup v2: limits of host cgroups"),
    0x64626720: (SEALED, "debugfs: kernel internals, addresses"),
    0x74726163: (SEALED, "tracefs: kernel tracing of every process"),
    0x73636673: (SEALED, "securityfs: LSM policy, IMA, TPM event logs"),
    0xCAFE4A11: (SEALED, "bpffs: pinned BPF programs and maps"),
    0x62656570: (SEALED, "configfs: kernel object configuration"),
    0x6165676C: (SEALED, "pstore: kernel crash logs"),
    0xDE5E81E4: (SEALED, "efivarfs: firmware variables"),
    0x42494E4D: (SEALED, "binfmt_misc: registering interpreters runs them for every exec on the host"),
    0x65735543: (SEALED, "fusectl: aborts FUSE connections of the host"),
}

# Sysctls Linux keeps per namespace (path below /proc/sys -> (namespace,
# reason)); a prefix ending in "/" covers its directory.  Writable only with
# the namespace private to the container: with the host's network namespace
# (--network=host) net.* is the host's.
NAMESPACED_SYSCTLS: dict[str, tuple[str, str]] = {
    "net/": ("net", "the network namespace's own stack (kernel checks CAP_NET_ADMIN over it)"),
    "kernel/hostname": ("uts", "the UTS namespace's host name"),
    "kernel/domainname": ("uts", "the UTS namespace's NIS domain name"),
    "kernel/shmmax": ("ipc", "System V shared memory limit of the IPC namespace"),
    "kernel/shmall": ("ipc", "System V shared memory limit of the IPC namespace"),
    "kernel/shmmni": ("ipc", "System V shared memory limit of the IPC namespace"),
    "kernel/shm_rmid_forced": ("ipc", "System V shared memory behaviour of the IPC namespace"),
    "kernel/shm_next_id": ("ipc", "next System V id of the IPC namespace (checkpoint/restore)"),
    "kernel/msgmax": ("ipc", "System V message queue limit of the IPC namespace"),
    "kernel/msgmnb": ("ipc", "System V message queue limit of the IPC namespace"),
    "kernel/msgmni": ("ipc", "System V message queue limit of the IPC namespace"),
    "kernel/msg_next_id": ("ipc", "next System V id of the IPC namespace (checkpoint/restore)"),
    "kernel/sem": ("ipc", "System V semaphore limits of the IPC namespace"),
    "kernel/sem_next_id": ("ipc", "next System V id of the IPC namespace (checkpoint/restore)"),
    "fs/mqueue/": ("ipc", "POSIX message queue limits of the IPC namespace"),
    "user/": ("user", "the user namespace's limits on nested namespaces"),
}

# Files below the procfs root whose contents are host secrets, whatever the
# capabilities (not read: EACCES).  kallsyms is not here: the sentry never
# opens with CAP_SYSLOG (sentry/creds.py), so the kernel prints no address.
SECRET_PROC: dict[str, str] = {
    "kcore": "the host's physical memory as an ELF core",
    "kmsg": "the host kernel's log (addresses, other containers' events)",
    "keys": "keys of the host's keyrings visible to the caller",
    "key-users": "keyring quotas of every host user",
    "timer_list": "every host task's timers, with names and pids",
    "sched_debug": "every host task's scheduling state, with names and pids",
    "slabinfo": "kernel heap layout, used to shape heap exploits",
    "vmallocinfo": "kernel virtual addresses of every vmalloc area",
    "kpageflags": "flags of every physical page of the host",
    "kpagecount": "map count of every physical page of the host",
    "kpagecgroup": "cgroup of every physical page of the host",
    "pagetypeinfo": "physical memory layout, used to shape page-level exploits",
}
# Below /sys: not read at all.
SECRET_SYSFS: dict[str, str] = {
    "firmware/": "ACPI tables, DMI serial numbers, EFI variables of the host",
    "kernel/vmcoreinfo": "physical address of the host's crash-dump notes",
}

# Character devices a container may open: (major, minor or None for all) ->
# reason.  Anything else, and every block device, is EPERM (the device
# cgroup's answer), whatever the spec's devices say.
CHAR_DEVICES: dict[tuple[int, int | None], str] = {
    (1, 3): "/dev/null", (1, 5): "/dev/zero", (1, 7): "/dev/full",
    (1, 8): "/dev/random", (1, 9): "/dev/urandom",
    (5, 0): "/dev/tty: the caller's controlling terminal",
    (5, 1): "/dev/console: the container's terminal (a pty slave)",
    (5, 2): "/dev/ptmx: new ptys of the container's own devpts",
    (136, None): "pty slaves (/dev/pts/N) of the container's devpts",
    (137, None): "pty slaves", (138, None): "pty slaves", (139, None): "pty slaves",
    (140, None): "pty slaves", (141, None): "pty slaves", (142, None): "pty slaves",
    (143, None): "pty slaves",
    (10, 200): "/dev/net/tun: interfaces of the container's own network namespace",
    (10, 229): "/dev/fuse: useless without mount(2), harmless",
}


class FsKinds:
    """st_dev -> filesystem kind (one fstatfs per device), shared by the
    sentry's threads.  own_proc: the devices of procfs mounts of the
    container's own pid namespace (the walk adds them, sentry/procfs.py)."""

    MAX = 4096

    def __init__(self) -> None:
        self._d: dict[int, int] = {}
        self.own_proc: set[int] = set()

    def kind(self, s: Scratch, fd: int, dev: int) -> int:
        """The kind of fd's filesystem (dev: its st_dev); SysError if it
        cannot be told."""
        k = self._d.get(dev)
        if k is None:
            r = s.fstatfs_into(fd)
            if r < 0:
                raise SysError(-r, "fstatfs: filesystem of an object")
            magic = int.from_bytes(s.statfs.raw[:8], "little")
            k = KERNEL_FS.get(magic, (PLAIN, ""))[0]
            if len(self._d) < self.MAX:
                self._d[dev] = k
        return k

    def is_proc(self, s: Scratch, fd: int) -> bool:
        return self.kind(s, fd, os.fstat(fd).st_dev) == PROC


def check(call: Call, fd: int, intent: int, rel: list[bytes] | None = None
          ) -> tuple[int, list[bytes] | None]:
    """Refuse (SysError) what the table forbids for fd's object (module
    docstring); fd stays open either way.  rel: the object's path below
    its procfs root when the walk that found it knows it (else it is read
    from the kernel, `_rel`).  Returns the object's filesystem kind and,
    for a procfs or sysfs object being read, its path below that root
    (sentry/synth.py answers some of those)."""
    st = os.fstat(fd)
    if _stat.S_ISCHR(st.st_mode) or _stat.S_ISBLK(st.st_mode):
        check_device(st.st_mode, st.st_rdev, intent)
    kind = call.sb.fs_kinds.kind(call.scratch, fd, st.st_dev)
    if kind == PLAIN:
        return kind, None
    if kind == SEALED:
        if intent != LOOKUP:
            raise SysError(errno.EACCES, "kernel filesystem sealed from the sandbox")
        return kind, None
    if kind == CGROUP:
        if intent in (WRITE, CHANGE):
            raise SysError(errno.EROFS, "cgroup filesystem: read-only in the sandbox")
        return kind, None
    if kind == SYSFS:
        if intent in (WRITE, CHANGE):
            raise SysError(errno.EROFS, "sysfs: read-only in the sandbox")
        if intent != READ:
            return kind, None
        rel = _rel(call, fd, st)
        if _listed(rel, SECRET_SYSFS):
            raise SysError(errno.EACCES, "sysfs: host secret")
        return kind, rel
    # PROC
    if st.st_dev not in call.sb.fs_kinds.own_proc and call.sb.options.container_pidns:
        # A procfs root a walk ended on, not one it entered (which it
        # checks): the first look of a container into /proc may be a stat
        # of /proc itself.  The same check, here: EACCES unless it is the
        # container's own.  (Imported here: the runtime imports these
        # rules, never procfs.)
        from .procfs import PROC_ROOT_INO, check_own_procfs
        if st.st_ino != PROC_ROOT_INO:
            raise SysError(errno.EACCES, "procfs of another pid namespace")
        check_own_procfs(call, fd, st.st_dev)
    if intent == LOOKUP:
        return kind, None
    if rel is None:
        rel = _rel(call, fd, st)
    if rel is None:
        raise SysError(errno.EACCES, "procfs: where the object is cannot be told")
    if intent == CHANGE and _stat.S_ISDIR(st.st_mode) and (not rel or not rel[0].isdigit()):
        # A name made, moved or removed in a procfs directory: Linux's
        # procfs lookups fail for any name it did not make (ENOENT).
        raise SysError(errno.ENOENT, "procfs: no names made here")
    if not rel:
        if intent == WRITE:
            raise SysError(errno.EROFS, "procfs root")
        return kind, rel
    top = rel[0].decode(errors="replace")
    if top in SECRET_PROC and intent != CHANGE:
        raise SysError(errno.EACCES if intent == READ else errno.EROFS, f"procfs: {top}")
    if intent == READ or top.isdigit():
        return kind, rel  # the container's processes: the kernel checks each file
    if top == "sys" and len(rel) > 1 and _sysctl_writable(call, b"/".join(rel[1:]).decode()):
        return kind, rel
    raise SysError(errno.EROFS, "procfs: host-wide kernel state")


def check_device(mode: int, rdev: int, intent: int) -> None:
    """Devices: only the CHAR_DEVICES table, for more than a lookup."""
    if intent == LOOKUP:
        return
    if _stat.S_ISBLK(mode):
        raise SysError(errno.EPERM, "block device")
    major, minor = os.major(rdev), os.minor(rdev)
    if (major, minor) not in CHAR_DEVICES and (major, None) not in CHAR_DEVICES:
        raise SysError(errno.EPERM, f"character device {major}:{minor}")


def _sysctl_writable(call: Call, name: str) -> bool:
    private = call.sb.options.private_ns
    for prefix, (ns, _why) in NAMESPACED_SYSCTLS.items():
        if name == prefix or (prefix.endswith("/") and name.startswith(prefix)):
            return private is None or ns in private
    return False


def _listed(rel: list[bytes] | None, table: dict[str, str]) -> bool:
    if rel is None:
        return True  # not known: refuse
    name = b"/".join(rel).decode(errors="replace")
    return any(name == k or (k.endswith("/") and (name + "/").startswith(k)) for k in table)


# --- where an object sits in its filesystem ----------------------------------------
def _rel(call: Call, fd: int, st: os.stat_result) -> list[bytes] | None:
    """The path of fd's object below its filesystem's root, as components,
    from the path the kernel prints for it (in the container's mount
    namespace: ours does not reach it) and the mount it is on (the
    container's mountinfo: its mount point and which directory of the
    filesystem it shows).  None when it cannot be told (fail closed)."""
    from .procfs import mount_id
    try:
        text = os.fsencode(ownproc.readlink(ownproc.self_fd(fd)))
        mid = mount_id(call.scratch, fd)
        mounts = _mountinfo(call.pid)
    except (OSError, SysError):
        return None
    ent = mounts.get(mid)
    if ent is None or not text.startswith(b"/") or text.endswith(b" (deleted)"):
        return None
    point, root = ent
    if text == point:
        below = b""
    elif text.startswith(point.rstrip(b"/") + b"/"):
        below = text[len(point.rstrip(b"/")):]
    else:
        return None
    full = (root.rstrip(b"/") + below).strip(b"/")
    return [c for c in full.split(b"/") if c]


def _unescape(field: bytes) -> bytes:
    """mountinfo's octal escapes (\\040 for a space...)."""
    if b"\\" not in field:
        return field
    out = bytearray()
    i = 0
    while i < len(field):
        if field[i] == 0x5C and field[i + 1:i + 4].isdigit() and len(field[i + 1:i + 4]) == 3:
            out.append(int(field[i + 1:i + 4], 8))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return bytes(out)


def _mountinfo(pid: int) -> dict[int, tuple[bytes, bytes]]:
    """mount id -> (mount point, root within its filesystem) of pid's
    mount namespace (read through the sentry's procfs)."""
    fd = ownproc.open_(f"{pid}/mountinfo", os.O_RDONLY | os.O_CLOEXEC)
    with open(fd, "rb") as f:
        data = f.read()
    out: dict[int, tuple[bytes, bytes]] = {}
    for line in data.splitlines():
        parts = line.split(b" ", 5)
        if len(parts) >= 5:
            out[int(parts[0])] = (_unescape(parts[4]), _unescape(parts[3]))
    return out
