"""The workload's paths and held fds -> objects: the one guarded entry point.

Every handler that names a file gets its object here, and nowhere else:

- `open_path(call, dirfd, path, flags, mode)`: a path, resolved as the
  target's kernel would (absolute in the container root, relative from its
  cwd or dirfd; openat2's RESOLVE_* flags honoured), opened;
- `open_parent(call, dirfd, path)`: the directory that holds the last name,
  and that name, for the calls that create, remove or rename names;
- `open_fd_object(call, fd)`: the object behind one of the target's fds, as
  an O_PATH fd of ours (AT_EMPTY_PATH, fstatfs);
- `held_fd(call, fd)`: our copy of the target's open file itself
  (pidfd_getfd: fchmod, fchown, f*xattr, sockets), with the target's
  credentials in force.

Every object passes `_guard` before a handler sees it:

1. An object on a procfs never comes from the fast resolution: the kernel
   may have followed a procfs "self" link for the SENTRY (a procfs that can
   see it), so the object could be the sentry's own /proc/<pid>/mem.  It is
   redone with the component-wise walk (sentry/procfs.py), with exactly the
   target's capabilities (no CAP_SYS_PTRACE: another uid's environ, mem and
   fd/ stay refused), which stay in force for the operation that follows.
2. Every object on a kernel filesystem (procfs, sysfs, debugfs, cgroupfs...)
   is checked against the table of host-wide kernel state
   (sentry/kernobj.py) for what the call will do with it: never written or
   re-permissioned when host-wide, never read when it leaks host secrets,
   whatever the spec's capabilities and masks.

A handler cannot skip either: it never resolves by itself (no
`open_start_dir`, no `call.fs.openat2`, no `ownproc` path of a target: a
test in tests/sentry/test_paths.py checks the handler modules).

Errors: SysError(errno) with the target's errno.  Objects are ours to close
(`release` for the lent ones of the lookup cache).
"""

from __future__ import annotations

import errno
import os
import stat as _stat
TYPE_CHECKING = False  # typing's, without importing typing (docs/performance.md, Start-up)

from . import kernobj, ownproc, procfs, synth
from .creds import SELF_PROC_CAPS
from .errors import SysError
from .files import ENOENT_VIA_LINK, ROOT
from .hostcalls import (RESOLVE_BENEATH, RESOLVE_IN_ROOT, RESOLVE_NO_MAGICLINKS, RESOLVE_NO_SYMLINKS,
                        RESOLVE_NO_XDEV)
from .resolve import AT_FDCWD, open_start_dir, signed_fd

if TYPE_CHECKING:
    from .call import Call
    from .creds import Creds
    from .lookups import LookupCache

LAST_NORM, LAST_ROOT, LAST_DOT, LAST_DOTDOT = range(4)
_O_PATH_DIR = os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC
_O_PATH = os.O_PATH | os.O_CLOEXEC
_SCOPED = RESOLVE_BENEATH | RESOLVE_IN_ROOT

# What the caller will do with the object (kernobj.py decides by it).
LOOKUP = kernobj.LOOKUP   # O_PATH: stat, readlink, access, exec checks
READ = kernobj.READ       # contents read
WRITE = kernobj.WRITE     # contents written or truncated
CHANGE = kernobj.CHANGE   # names created or removed in it, attributes changed


def intent_of(flags: int) -> int:
    """What an open with these flags may do to the object."""
    if flags & os.O_PATH:
        return LOOKUP
    if flags & os.O_ACCMODE != os.O_RDONLY or flags & (os.O_TRUNC | os.O_CREAT):
        return WRITE
    return READ


def split_last(path: bytes) -> tuple[bytes, bytes, int]:
    """(directory part, last component with its trailing slashes, kind).

    "a/b/c//" -> (b"a/b/", b"c//", LAST_NORM); "x" -> (b"", b"x", LAST_NORM);
    "/" -> (b"/", b"", LAST_ROOT); "a/.." -> (b"a/", b"..", LAST_DOTDOT).
    """
    stripped = path.rstrip(b"/")
    if not stripped:
        return b"/", b"", LAST_ROOT
    i = stripped.rfind(b"/")
    base = stripped[i + 1:]
    kind = LAST_DOT if base == b"." else LAST_DOTDOT if base == b".." else LAST_NORM
    return stripped[:i + 1], path[i + 1:], kind


def _start(call: Call, dirfd_arg: int | None) -> int:
    """Our O_PATH fd of the target's cwd (dirfd None: AT_FDCWD) or dirfd,
    which must be a directory of the container (`contained`)."""
    dfd = AT_FDCWD if dirfd_arg is None else signed_fd(dirfd_arg)
    try:
        fd = open_start_dir(call.pid, dfd)
    except SysError as e:
        if e.errno not in (errno.EACCES, errno.EPERM):
            raise
        # The caller's own fd or cwd (a non-dumpable caller's /proc entries
        # belong to root): what Linux grants any task on itself.
        with call.creds_state.lifted(SELF_PROC_CAPS):
            fd = open_start_dir(call.pid, dfd)
    try:
        contained(call, fd)
    except BaseException:
        os.close(fd)
        raise
    return fd


def contained(call: Call, fd: int) -> None:
    """Refuse (EACCES) a start directory on a mount that is not one of the
    container's.  Relative paths are resolved beneath the caller's cwd or
    dirfd, so these must be inside the container: a cwd is set by the
    kernel (chdir runs in the caller), and a magic link it follows there
    could lead out (the host's /proc bound into a privileged container:
    chdir("/hostproc/<pid>/root") is the host's root).  The container's
    mount ids are cached per sandbox; an unknown one rereads the caller's
    mountinfo once."""
    mid = procfs.mount_id(call.scratch, fd)
    sb = call.sb
    if mid in sb.mount_ids:
        return
    ids = frozenset(procfs.mount_ids(f"{call.pid}/mountinfo"))
    sb.mount_ids = ids  # replaced whole: other threads read the old or the new set
    if mid not in ids:
        raise SysError(errno.EACCES, "start directory outside the container")


# --- paths ---------------------------------------------------------------------
def open_path(call: Call, dirfd_arg: int | None, path: bytes, flags: int, mode: int = 0, *,
              real_ids: bool = False, lend: bool = False, resolve: int = 0,
              intent: int | None = None) -> int:
    """Resolve and open path for the target; returns our fd or raises.

    An absolute O_PATH lookup goes through this thread's lookup cache
    (sentry/lookups.py).  lend: the caller only reads the fd and gives it
    back with release(), so a cached fd is lent, not duplicated, and a kept
    ENOENT comes back as -ENOENT, not raised (stat's hot path: the exception
    cost more than the rest of the answer).  resolve: openat2's RESOLVE_*
    flags.  intent: what the caller will do (default: from flags).

    dirfd_arg None means AT_FDCWD.  Order: start dir from /proc (our
    creds), ID_VALID check, then switch creds and open.  A leading
    /proc/self is the target's, not ours (sentry/procfs.py); the fast
    openat2 failing on a magic link (ELOOP) or a dangling procfs self link
    (ENOENT behind a symlink) takes the slow, component-wise walk.
    """
    if not path:
        raise SysError(errno.ENOENT, "empty path")
    if intent is None:
        intent = intent_of(flags)
    if resolve & _SCOPED:
        return _open_scoped(call, dirfd_arg, path, flags, mode, resolve, intent)
    creds = call.creds()
    start = -1
    if path[0] != 0x2F:
        start = _start(call, dirfd_arg)
    elif path.startswith(b"/proc/") and not resolve & RESOLVE_NO_SYMLINKS:
        # (with RESOLVE_NO_SYMLINKS "self" is a symlink like any other: ELOOP)
        path = procfs.translate_abs(path, creds.ns_tgid, creds.ns_tid)
    try:
        if start >= 0 or not call.creds_hit or call.mem.fd < 0:
            call.check_valid()
        # else: nothing here was read by pid.  The creds and the mem fd
        # come from this thread's cache, filled before the notification
        # was received and checked alive (pidfd) after it: a task that
        # held the tid before the caller would be dead, so they are the
        # caller's, and the path was read from its address space.
        call.creds_state.become(creds, real_ids)
        lookups = call.lookups
        if lookups is not None and start < 0 and flags & os.O_PATH and not resolve \
                and not path.startswith(b"/proc/"):
            fd = _cached_lookup(call, lookups, path, flags, creds, real_ids, intent)
            if fd < 0:
                if lend:
                    return fd
                raise SysError(-fd)
            if fd == call.lent and not lend:
                call.lent = -1
                fd = os.dup(fd)  # close-on-exec: os.dup makes it non-inheritable
            return fd
        if resolve & RESOLVE_NO_SYMLINKS:
            fd = call.fs.resolve(start, path, flags, mode, no_symlinks=True)
        else:
            fd = call.fs.resolve_probed(start, path, flags, mode)
            if _needs_walk(call, fd):
                fd = _walk(call, creds, real_ids, start, path, flags, mode, resolve)
                if fd < 0:
                    raise SysError(-fd)
                return _check_object(call, fd, intent, call.proc_rel)
        if fd >= 0 and resolve & RESOLVE_NO_XDEV:
            fd = _same_mount(call, fd, start)
    finally:
        if start >= 0:
            os.close(start)
    if fd < 0:
        raise SysError(-fd)
    return _guard(call, fd, creds, real_ids, dirfd_arg, path, flags, mode, intent, resolve)


def _same_mount(call: Call, fd: int, start: int) -> int:
    """RESOLVE_NO_XDEV, approximated on the result: it must be on the mount
    the resolution started from (the start dir, or the root)."""
    s = call.scratch
    mid = procfs.mount_id(s, fd)
    if start >= 0:
        want = procfs.mount_id(s, start)
    else:
        root = call.fs.openat2(ROOT, b".", _O_PATH_DIR, 0, 0)
        if root < 0:
            os.close(fd)
            return root
        try:
            want = procfs.mount_id(s, root)
        finally:
            os.close(root)
    if mid != want:
        os.close(fd)
        return -errno.EXDEV
    return fd


def _needs_walk(call: Call, fd: int) -> bool:
    """Did the fast resolution stop at a procfs link (sentry/procfs.py),
    or at a refusal the walk may answer otherwise?  EACCES: the gofer holds
    no CAP_SYS_PTRACE (the kernel's access check on a procfs magic link
    comes before the ELOOP of RESOLVE_NO_MAGICLINKS), and a non-dumpable
    caller's own /proc/<pid>/fd belongs to root, which Linux lets the
    caller itself search (procfs.self_only).  Elsewhere the walk meets the
    same refusal: only failing lookups pay for it."""
    return fd == ENOENT_VIA_LINK or fd == -errno.ELOOP or fd == -errno.EACCES


def _walk(call: Call, creds: Creds, real_ids: bool, start: int, path: bytes, flags: int,
          mode: int, scope: int = 0) -> int:
    """The component-wise walk (sentry/procfs.py) with exactly the target's
    capabilities, which stay in force for the operation that follows (no
    CAP_SYS_PTRACE: another uid's /proc/PID/environ, mem, fd/ stay
    refused).  Our fd or -errno; call.proc_rel says where it ended."""
    call.on_proc = True
    call.check_valid()
    call.creds_state.become(creds, real_ids, keep_ptrace=False)
    return procfs.walk(call, start, path, flags | os.O_CLOEXEC, mode, scope)


def _cached_lookup(call: Call, lookups: LookupCache, path: bytes, flags: int, creds: Creds,
                   real_ids: bool, intent: int) -> int:
    """open_path of an absolute O_PATH lookup through the lookup cache
    (sentry/lookups.py); creds are in force.  A hit is lent (call.lent);
    a kept ENOENT is returned as -ENOENT."""
    key = (path, flags, call.creds_state.current)
    hit = lookups.get(key)
    if hit is not None:
        if hit < 0:
            return hit
        call.stat_of = -1
        call.lent = hit
        return hit
    since = lookups.since()
    fs = call.fs
    fd = fs.resolve_probed(-1, path, flags, 0)
    if fd == -errno.ENOENT and fs.missing_dev(path) == lookups.root_dev:
        lookups.put(key, fd, since)  # missing in a directory of the root's filesystem
    if fd < 0:
        # The procfs walk's answers are never kept: they depend on the
        # calling process (its pid, cwd, fds, exe), which the key is not.
        if not _needs_walk(call, fd):
            raise SysError(-fd)
        fd = _walk(call, creds, real_ids, -1, path, flags, 0)
        if fd < 0:
            raise SysError(-fd)
        return _check_object(call, fd, intent, call.proc_rel)
    fd = _guard(call, fd, creds, real_ids, None, path, flags, 0, intent)
    s = call.scratch
    if call.stat_of == fd and s.stat_dev.value == lookups.root_dev:
        # the kernel's own resolution, not on procfs, on the root's filesystem
        lookups.put(key, fd, since, _stat.S_ISDIR(s.stat_mode.value))
    return fd


def _open_scoped(call: Call, dirfd_arg: int | None, path: bytes, flags: int, mode: int,
                 resolve: int, intent: int) -> int:
    """openat2 with RESOLVE_BENEATH or RESOLVE_IN_ROOT: the target asked for
    its own confinement under its dirfd; honoured literally (the dirfd is
    inside our root, so this cannot escape).  A result on a procfs is
    redone by the walk, scoped the same way."""
    creds = call.creds()
    start = _start(call, dirfd_arg)
    try:
        call.check_valid()
        call.creds_state.become(creds)
        fd = call.fs.openat2(start, path, flags, mode, resolve | RESOLVE_NO_MAGICLINKS)
        if fd == -errno.ELOOP and not resolve & (RESOLVE_NO_MAGICLINKS | RESOLVE_NO_SYMLINKS):
            fd = ENOENT_VIA_LINK  # a magic link on the way: the walk decides (EXDEV, scoped)
        elif fd == -errno.ENOENT and not resolve & RESOLVE_NO_SYMLINKS:
            # A procfs "self" link resolves to nothing for the sentry: is
            # there a symlink on the way?  Then the walk follows it.
            probe = call.fs.openat2(start, path, _O_PATH, 0,
                                    resolve | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_SYMLINKS)
            if probe >= 0:
                os.close(probe)
            elif probe == -errno.ELOOP:
                fd = ENOENT_VIA_LINK
        if fd < 0 and fd != ENOENT_VIA_LINK:
            raise SysError(-fd, "openat2")
        if fd >= 0 and not call.sb.fs_kinds.is_proc(call.scratch, fd):
            return _check_object(call, fd, intent)
        if fd >= 0:
            os.close(fd)
        fd = _walk(call, creds, False, start, path, flags, mode, resolve)
    finally:
        os.close(start)
    if fd < 0:
        raise SysError(-fd, "openat2")
    return _check_object(call, fd, intent, call.proc_rel)


def release(call: Call, fd: int) -> None:
    """Give back an fd of open_path(..., lend=True): closed unless lent (a
    lent fd stays the lookup cache's)."""
    if fd == call.lent:
        call.lent = -1
    else:
        os.close(fd)


def _guard(call: Call, fd: int, creds: Creds, real_ids: bool, dirfd_arg: int | None,
           path: bytes, flags: int, mode: int, intent: int, resolve: int = 0) -> int:
    """Every resolved object passes here (module docstring): procfs results
    are redone by the walk with exactly the target's capabilities, and
    objects of kernel filesystems are checked (kernobj.py)."""
    call.stat_of = -1
    s = call.scratch
    r = s.fstat_into(fd)
    if r < 0:
        os.close(fd)
        raise SysError(-r, "fstat")
    try:
        kind = call.sb.fs_kinds.kind(s, fd, s.stat_dev.value)
    except BaseException:
        os.close(fd)
        raise
    if kind == kernobj.PLAIN:
        m = s.stat_mode.value
        if (_stat.S_ISCHR(m) or _stat.S_ISBLK(m)) and intent != LOOKUP:
            _check_object(call, fd, intent)  # devices: kernobj.CHAR_DEVICES
        call.stat_of = fd  # stat(2) and friends reuse it
        return fd
    if kind != kernobj.PROC:
        return _check_object(call, fd, intent)
    os.close(fd)
    cs = call.creds_state
    if cs.ptrace_dropped:
        cs.restore_ptrace()  # to open the start dir in our procfs
    start = _start(call, dirfd_arg) if path[0] != 0x2F else -1
    try:
        fd = _walk(call, creds, real_ids, start, path, flags, mode, resolve)
    finally:
        if start >= 0:
            os.close(start)
    if fd < 0:
        raise SysError(-fd)
    return _check_object(call, fd, intent, call.proc_rel)


def _check_object(call: Call, fd: int, intent: int, rel: list[bytes] | None = None) -> int:
    """kernobj.check, closing fd when it refuses; a procfs or sysfs file the
    sentry writes itself (sentry/synth.py) is answered with that instead."""
    try:
        kind, rel = kernobj.check(call, fd, intent, rel)
        if rel is not None and intent == READ and call.sb.limits is not None:
            make = synth.maker(synth.PROC_FILES if kind == kernobj.PROC else synth.SYS_FILES, rel)
            if make is not None:
                new = synth.as_file(rel[-1].decode(), make(call.sb.limits))
                os.close(fd)
                return new
    except BaseException:
        os.close(fd)
        raise
    return fd


# --- parents ---------------------------------------------------------------------
def open_parent(call: Call, dirfd_arg: int | None, path: bytes) -> tuple[int, bytes, int]:
    """(our O_PATH fd of the parent directory, last component, its kind).

    The last component keeps its trailing slashes (the host kernel then
    applies the same trailing-slash rules as for the target) and is never
    followed; "." and ".." are never handed to the host (the handler
    answers from the kind: LAST_DOT, LAST_DOTDOT, LAST_ROOT).  The parent
    is checked as a directory whose names will change (kernobj.CHANGE).
    """
    if not path:
        raise SysError(errno.ENOENT, "empty path")
    head, name, kind = split_last(path)
    if head:
        return open_path(call, dirfd_arg, head, _O_PATH_DIR, intent=CHANGE), name, kind
    start = _start(call, dirfd_arg)
    try:
        creds = call.creds()
        call.check_valid()
        call.creds_state.become(creds)
        if kind == LAST_NORM and name[:4] in (b"self", b"thre"):
            start, name = _proc_parent(call, start, name)
        kernobj.check(call, start, CHANGE)
    except BaseException:
        os.close(start)
        raise
    return start, name, kind


def _proc_parent(call: Call, start: int, name: bytes) -> tuple[int, bytes]:
    """Relative "self"/"thread-self" from the procfs root: name the target's."""
    st = os.fstat(start)
    if st.st_ino != procfs.PROC_ROOT_INO or not call.sb.fs_kinds.is_proc(call.scratch, start):
        return start, name
    c = call.creds()
    base = name.rstrip(b"/")
    if base == b"self":
        return start, b"%d" % c.ns_tgid + name[4:]
    if base == b"thread-self":
        os.close(start)
        return open_path(call, None, b"/proc/%d/task" % c.ns_tgid, _O_PATH_DIR, intent=CHANGE), \
            b"%d" % c.ns_tid + name[11:]
    return start, name


# --- held fds --------------------------------------------------------------------
def open_fd_object(call: Call, dirfd_arg: int, intent: int = LOOKUP) -> int:
    """Our O_PATH fd of the object behind the target's fd (AT_EMPTY_PATH;
    AT_FDCWD: its cwd), checked like a resolved one."""
    dfd = signed_fd(dirfd_arg)
    if dfd < 0 and dfd != AT_FDCWD:
        raise SysError(errno.EBADF, "fd object")
    where = f"{call.pid}/cwd" if dfd == AT_FDCWD else f"{call.pid}/fd/{dfd}"
    try:
        fd = procfs.open_own(call, where, _O_PATH)
    except SysError as e:
        if e.errno == errno.ENOENT:
            raise SysError(errno.EBADF, where) from None
        raise
    try:
        call.check_valid()
        if intent != LOOKUP:
            held_inside(call, fd)
    except BaseException:
        os.close(fd)
        raise
    return _check_object(call, fd, intent)


def held_inside(call: Call, fd: int) -> None:
    """Refuse (EACCES) to act on a held object that is not the container's:
    on none of its mounts, and not one that exists only as an fd (pipe,
    socket, anon inode, memfd).  The workload's fds come from the sentry's
    guarded opens, except O_PATH ones, which the kernel opens for it
    (fs_open): whatever that reached, nothing outside the container is
    changed, linked or executed through it."""
    mid = procfs.mount_id(call.scratch, fd)
    if mid in call.sb.mount_ids:
        return
    ids = frozenset(procfs.mount_ids(f"{call.pid}/mountinfo"))
    call.sb.mount_ids = ids
    if mid in ids:
        return
    if not _stat.S_ISDIR(os.fstat(fd).st_mode) and procfs.fd_only(call, fd):
        return
    raise SysError(errno.EACCES, "held object outside the container")


def held_fd(call: Call, n: int, intent: int = LOOKUP) -> int:
    """Our copy of the target's open file n (pidfd_getfd: the same open
    file, so the kernel's own answers, EBADF for an O_PATH fd..., are the
    target's), checked for what the call will do with it (an object outside
    the container is never changed: `held_inside`), and the target's
    credentials in force."""
    fd = procfs.target_fd(call, signed_fd(n))
    try:
        if intent != LOOKUP:
            held_inside(call, fd)
            kernobj.check(call, fd, intent)
        call.act_as_target()
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_child(call: Call, dirfd: int, name: bytes, flags: int, intent: int = CHANGE) -> int:
    """Our fd of name, one component in a directory fd of ours that this
    call resolved (the socket file a bind just made): never followed out of
    it, checked like a resolved object.  Our fd or -errno."""
    fd = call.fs.openat2(dirfd, name, flags, 0, RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)
    if fd < 0:
        return fd
    try:
        return _check_object(call, fd, intent)
    except SysError as e:
        return -e.errno


def reopen(fd: int, flags: int) -> int:
    """Open the object behind our fd again (its inode, through our own magic
    link), with the credentials in force: to read an object already
    resolved and checked (a "#!" line).  Our fd or -errno."""
    try:
        return ownproc.open_(ownproc.self_fd(fd), flags | os.O_CLOEXEC)
    except OSError as e:
        return -(e.errno or errno.EIO)
