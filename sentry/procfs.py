"""The container's /proc seen through the sentry: /proc/self, magic links.

Why it needs care (kernel facts, fs/proc/base.c, fs/proc/self.c):

- /proc/self and /proc/thread-self are symlinks whose text the kernel
  computes for the task WALKING the path, in the pid namespace of that
  procfs.  The sentry's worker is not in the container's pid namespace, so
  for it they resolve to nothing (ENOENT).  The target's own pids in its
  namespace are the last fields of NStgid/NSpid in the sentry's
  /proc/<tid>/status (a procfs of the sandbox's pid namespace, whose pids
  the notifications carry; cached with its credentials, sentry/creds.py).
- /proc/PID/{fd/N,cwd,root,exe,ns/*,map_files/*} are magic links: following
  them jumps to an object, not to a path, and the jump is not confined by
  RESOLVE_IN_ROOT (so the resolver refuses them: RESOLVE_NO_MAGICLINKS).
  Following one on the target's behalf must never reach an object outside
  the container (CVE-2019-5736 reopened the runtime's binary through
  /proc/self/exe; CVE-2024-21626 walked from a leaked host directory fd).

What the sentry does (the slow path of `paths.open_path`, taken only when the
fast openat2 fails with ELOOP, or with ENOENT while a symlink is on the way):

- walks the path one component at a time, each step an openat2 BENEATH the
  current directory with RESOLVE_NO_MAGICLINKS, symlinks expanded by hand
  (absolute ones restart at the container root, ".." stops at the root, 40
  links at most: ELOOP), so it is confined like the fast path;
- in the container's procfs root, "self" and "thread-self" become
  "<ns tgid>" and "<ns tgid>/task/<ns tid>";
- a magic link of the CALLER'S OWN process is followed by taking the object
  from the target itself: fd/N with pidfd_getfd(2), cwd and exe through the
  sentry's /proc/<tid>/{cwd,exe}, root is the container root.  The object
  must then pass `_inside`: a directory or a file on a mount of the
  container's mount namespace, or a non-directory on a kernel-internal mount
  (pipes, sockets, anon inodes, memfds).  A last component is reopened
  through /proc/self/fd/<our copy> with the requested flags, which is what
  the kernel does for the target natively (permission checked on the inode
  with the target's credentials, not the original open mode);
- magic links of OTHER processes (following them) and ns/*, map_files/*:
  refused, EACCES and ELOOP (mapping a container pid to a sandbox pid needs
  a scan of the sentry's /proc: not done).  readlink(2) of any of them works
  (text translated to the container's view, fs_stat.readlink).

Every procfs operation is done with exactly the target's capabilities
(without the CAP_SYS_PTRACE the sentry keeps to reach target memory):
otherwise a container uid could read /proc/1/environ of another uid.
"""

from __future__ import annotations

import ctypes
import errno
import os
import stat as _stat
from collections import deque
TYPE_CHECKING = False  # typing's, without importing typing (docs/performance.md, Start-up)

from . import hostcalls, ownproc
from .creds import SELF_PROC_CAPS
from .errors import SysError
from .files import ROOT
from .hostcalls import (RESOLVE_BENEATH, RESOLVE_IN_ROOT, RESOLVE_NO_MAGICLINKS, RESOLVE_NO_SYMLINKS,
                        RESOLVE_NO_XDEV)
from runsc_py.log import get_logger

if TYPE_CHECKING:
    from .call import Call

PROC_SUPER_MAGIC = 0x9FA0
PROC_ROOT_INO = 1
MAXSYMLINKS = 40
BENEATH = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS
_O_PATH_NOFOLLOW = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC
_O_PATH_DIR = os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC
log = get_logger(__name__)

_SELF = b"/proc/self"
_THREAD_SELF = b"/proc/thread-self"


def translate_abs(path: bytes, ns_tgid: int, ns_tid: int) -> bytes:
    """A leading /proc/self or /proc/thread-self -> /proc/<ns tgid>[/task/<tid>]."""
    if not path.startswith(b"/proc/") or ns_tgid <= 0:
        return path
    # Exactly "/proc/self" is left alone: the link itself (lstat, readlink).
    if path.startswith(_SELF) and len(path) > 10 and path[10] == 0x2F:
        return b"/proc/%d%s" % (ns_tgid, path[10:])
    if path.startswith(_THREAD_SELF) and len(path) > 17 and path[17] == 0x2F:
        return b"/proc/%d/task/%d%s" % (ns_tgid, ns_tid, path[17:])
    return path


def self_link_text(call: Call, path: bytes) -> bytes | None:
    """readlink of /proc/self or /proc/thread-self: the target's own text."""
    if path not in (_SELF, _THREAD_SELF):
        return None
    c = call.creds()
    if path == _SELF:
        return b"%d" % c.ns_tgid
    return b"%d/task/%d" % (c.ns_tgid, c.ns_tid)


_OWN_EXE = (b"/proc/self/exe", b"/proc/thread-self/exe")


def own_exe_text(call: Call, path: bytes) -> bytes | None:
    """readlink of the caller's own /proc/self/exe, or None (then the walk
    answers).  Every statically linked glibc program asks it at start, so a
    shell's every command paid the whole component-wise walk.

    The same answer as the walk's, in three calls: /proc/<tgid>/exe opened
    O_PATH|O_NOFOLLOW below the container's own procfs root (kept per
    sandbox: `_proc_root`), RESOLVE_NO_XDEV, so that anything mounted
    over /proc/<tgid> or its exe (a masked path) sends it to the walk;
    then read with our own credentials: Linux lets a task read its own
    exe link whatever its credentials (ptrace_may_access of its own thread
    group), which the walk's switch to exactly the target's capabilities
    would refuse to a non-dumpable one."""
    if path not in _OWN_EXE:
        return None
    root = _proc_root(call)
    if root < 0:
        return None
    tgid = call.creds().ns_tgid
    if tgid <= 0:
        return None
    fd = call.fs.openat2(root, b"%d/exe" % tgid, _O_PATH_NOFOLLOW, 0, BENEATH | RESOLVE_NO_XDEV)
    if fd < 0:
        return None
    try:
        call.check_valid()  # tgid was the caller's (a task is not reused while it waits here)
        n = call.scratch.readlink_fd(fd)
    finally:
        os.close(fd)
    if n < 0:
        return None
    return container_view(call, call.scratch.link.raw[:n])


def _proc_root(call: Call) -> int:
    """Our O_PATH fd of the root of the container's procfs at /proc, or -1
    (none, not its own pid namespace's: own_exe_text stays off).  Found once
    per sandbox with the caller's walk and kept: the workload cannot mount,
    unmount or move it (the mount family is refused, and a mount point is
    not renamed), so it stays the same directory for the container's life."""
    sb = call.sb
    fd = getattr(sb, "proc_root", None)
    if fd is not None:
        return fd
    from .paths import open_path  # (paths imports this module)
    try:
        fd = open_path(call, None, b"/proc", _O_PATH_DIR)
    except SysError:
        return -1  # not known now (this caller's view): the walk answers; tried again later
    try:
        st = os.fstat(fd)
        ours = st.st_ino == PROC_ROOT_INO and sb.fs_kinds.is_proc(call.scratch, fd) \
            and st.st_dev in sb.fs_kinds.own_proc
    except OSError:
        ours = False
    if not ours:
        os.close(fd)
        fd = -1
    if getattr(sb, "proc_root", None) is None:  # another thread may have been first
        sb.proc_root = fd
        log.debug("sentry: own exe links %s", "from the container's procfs" if fd >= 0
                  else "walked: /proc is not the container's own procfs")
    elif fd >= 0:
        os.close(fd)
    return sb.proc_root


def container_view(call: Call, text: bytes) -> bytes:
    """A magic link's text as read by the sentry -> as the target reads it.

    The kernel prints the object's path relative to the READER's root; ours
    is not the container's.  Strip the container root's own text; paths
    that do not start with it (not reachable from our root) are already
    relative to the container's mount namespace.  "pipe:[N]" and such stay.
    """
    rl = call.sb.files.root_link
    if not text.startswith(b"/") or rl == b"/":
        return text
    if text == rl:
        return b"/"
    if text.startswith(rl + b"/"):
        return text[len(rl):]
    return text


# --- the slow path ---------------------------------------------------------------
def walk(call: Call, start: int, path: bytes, flags: int, mode: int, scope: int = 0) -> int:
    """Open path for the target component by component; our fd or -errno.

    start: O_PATH fd of the start directory for a relative path, or -1.
    scope: openat2's RESOLVE_* flags the target asked for (BENEATH or
    IN_ROOT make start the top instead of the container root; NO_SYMLINKS,
    NO_MAGICLINKS refuse those links).  The caller has switched to the
    target's credentials.  call.proc_rel is then the result's path below
    its procfs root when the walk found it by name (None otherwise: not on
    a procfs, or reached through a magic link).
    """
    call.proc_rel = None
    try:
        return _Walk(call, scope).run(start, path, flags, mode)
    except SysError as e:
        return -e.errno
    except OSError as e:
        return -(e.errno or errno.EIO)


class _Walk:
    def __init__(self, call: Call, scope: int) -> None:
        self.call = call
        self.s = call.scratch
        self.fs = call.fs
        self.cur = -1
        self.proc_rel: list[bytes] | None = None  # components below the procfs root
        self.links = 0
        self.beneath = bool(scope & RESOLVE_BENEATH)
        self.scoped = bool(scope & (RESOLVE_BENEATH | RESOLVE_IN_ROOT))
        self.no_symlinks = bool(scope & RESOLVE_NO_SYMLINKS)
        self.no_magic = bool(scope & RESOLVE_NO_MAGICLINKS) or self.no_symlinks
        self.no_xdev = bool(scope & RESOLVE_NO_XDEV)
        # The top: where absolute paths restart and ".." stops (the
        # container root, or the start dir of a scoped openat2).
        self.top = ROOT
        self.top_id = call.sb.files.root_id
        self.top_rel: list[bytes] | None = None

    def _set_cur(self, fd: int, proc_rel: list[bytes] | None = None, check: bool = True) -> None:
        """Move to directory fd (ours from now on, closed if refused)."""
        if proc_rel is None and check:
            try:
                st = os.fstat(fd)
                if st.st_ino == PROC_ROOT_INO and self.call.sb.fs_kinds.is_proc(self.s, fd):
                    check_own_procfs(self.call, fd, st.st_dev)
                    proc_rel = []
            except BaseException:
                os.close(fd)
                raise
        if self.cur >= 0 and self.cur != fd:
            os.close(self.cur)
        self.cur = fd
        self.proc_rel = proc_rel

    def _open(self, dirfd: int, name: bytes, flags: int) -> int:
        fd = self.fs.openat2(dirfd, name, flags, 0, 0)
        if fd < 0:
            raise SysError(-fd, "procfs walk")
        return fd

    def _at_top(self) -> bool:
        st = os.fstat(self.cur)
        return (st.st_dev, st.st_ino) == self.top_id

    def _restart_at_top(self) -> None:
        if self.top == ROOT:
            self._set_cur(self._open(ROOT, b".", _O_PATH_DIR))
        else:
            self._set_cur(os.dup(self.top), list(self.top_rel) if self.top_rel is not None else None,
                          check=self.top_rel is None)

    def run(self, start: int, path: bytes, flags: int, mode: int) -> int:
        if self.scoped:
            if path[:1] == b"/":
                if self.beneath:
                    return -errno.EXDEV
                path = path.lstrip(b"/")
            relative = True
        else:
            relative = start >= 0 and path[:1] != b"/"
        base = start if relative else ROOT
        prefix = b""
        if relative:
            st = os.fstat(start)
            if self.call.sb.fs_kinds.is_proc(self.s, start) and st.st_ino != PROC_ROOT_INO:
                # A start inside a procfs (cwd /proc/N/...): which process it
                # belongs to matters, so walk from the root along its path.
                prefix = self.fs.path_of(start)
                base = ROOT
        self._set_cur(self._open(base, b".", _O_PATH_DIR))
        try:
            if prefix:
                r = self._run(prefix, _O_PATH_DIR, 0, prefix_only=True)
                if r < 0:
                    return r
                st = os.fstat(start)
                if (st.st_dev, st.st_ino) != _ident(self.cur):
                    return -errno.EACCES  # moved meanwhile: refuse
            if self.scoped:
                self.top = start
                self.top_id = _ident(start)
                self.top_rel = list(self.proc_rel) if self.proc_rel is not None else None
            return self._run(path, flags, mode)
        finally:
            if self.cur >= 0:
                os.close(self.cur)

    def _run(self, path: bytes, flags: int, mode: int, prefix_only: bool = False) -> int:
        comps = deque(path.split(b"/"))
        # O_CREAT|O_EXCL never follows a last symlink (EEXIST).
        follow = not flags & os.O_NOFOLLOW and (flags & (os.O_CREAT | os.O_EXCL)) != (os.O_CREAT | os.O_EXCL)
        creds = self.call.creds()
        while True:
            while comps and comps[0] in (b"", b"."):
                comps.popleft()
            if not comps:
                if prefix_only:
                    return 0
                # Ends at a directory ("/", "a/..", "a/."): open it.
                self.call.proc_rel = self.proc_rel
                return self._openat2(b".", flags, mode, BENEATH, self.proc_rel)
            comp = comps.popleft()
            rest_is_dir = bool(comps)  # "x/" and "x/." name a directory
            last = all(c in (b"", b".") for c in comps) and not prefix_only
            if comp == b"..":
                if self._at_top():
                    if self.beneath:
                        return -errno.EXDEV
                else:
                    rel = self.proc_rel[:-1] if self.proc_rel else None
                    self._set_cur(self._open(self.cur, b"..", _O_PATH_DIR), rel,
                                  check=rel is None)
                continue
            if self.proc_rel == [] and comp in (b"self", b"thread-self") and creds.ns_tgid > 0:
                if self.no_symlinks:
                    return -errno.ELOOP
                repl = [b"%d" % creds.ns_tgid]
                if comp == b"thread-self":
                    repl += [b"task", b"%d" % creds.ns_tid]
                comps.extendleft(reversed(repl))
                continue
            lfd = self._openat2(comp, _O_PATH_NOFOLLOW, 0, BENEATH,
                                self.proc_rel + [comp] if self.proc_rel is not None else None)
            if lfd < 0:
                if lfd == -errno.ENOENT and last and not rest_is_dir and flags & os.O_CREAT:
                    self.call.proc_rel = self.proc_rel + [comp] if self.proc_rel is not None else None
                    return self.fs.openat2(self.cur, comp, flags, mode, BENEATH | RESOLVE_NO_SYMLINKS)
                return lfd
            try:
                st = os.fstat(lfd)
                if _stat.S_ISLNK(st.st_mode) and (not last or follow or rest_is_dir):
                    # Magic links live under /proc/<pid>/; the top-level
                    # ones (mounts -> self/mounts, net -> self/net) are plain.
                    if self.proc_rel and self.call.sb.fs_kinds.is_proc(self.s, lfd):
                        # The kernel's nd_jump_link: NO_MAGICLINKS is ELOOP;
                        # a scoped lookup (BENEATH, IN_ROOT) or NO_XDEV may
                        # not jump: EXDEV.
                        if self.no_magic:
                            return -errno.ELOOP
                        if self.scoped or self.no_xdev:
                            return -errno.EXDEV
                        obj, held_only = _magic(self.call, self.proc_rel + [comp])
                        if held_only and not last:
                            os.close(obj)
                            return -errno.EACCES
                        if last:
                            try:
                                if rest_is_dir and not _stat.S_ISDIR(os.fstat(obj).st_mode):
                                    return -errno.ENOTDIR
                                if held_only and not _within_held_mode(obj, flags):
                                    return -errno.EACCES
                                self.call.proc_rel = None  # the object's own place is not known
                                return _reopen(obj, flags, mode)
                            finally:
                                os.close(obj)
                        self._set_cur(obj)
                        continue
                    if self.no_symlinks:
                        return -errno.ELOOP
                    self.links += 1
                    if self.links > MAXSYMLINKS:
                        return -errno.ELOOP
                    n = self.s.readlink_fd(lfd)
                    if n < 0:
                        return n
                    target = self.s.link.raw[:n]
                    if not target:
                        return -errno.ENOENT
                    comps.extendleft(reversed(target.split(b"/")))
                    if target[:1] == b"/":
                        if self.beneath:
                            return -errno.EXDEV
                        self._restart_at_top()
                    continue
                if last:
                    oflags = flags
                    if rest_is_dir:
                        oflags |= os.O_DIRECTORY
                    self.call.proc_rel = self.proc_rel + [comp] if self.proc_rel is not None else None
                    return self._openat2(comp, oflags, mode, BENEATH | RESOLVE_NO_SYMLINKS
                                         if not _stat.S_ISLNK(st.st_mode) else BENEATH,
                                         self.call.proc_rel)
                if not _stat.S_ISDIR(st.st_mode):
                    return -errno.ENOTDIR
                rel = self.proc_rel + [comp] if self.proc_rel is not None else None
                if rel is not None and len(rel) == 1 and _is_sentry(self.cur, comp):
                    return -errno.ENOENT
                nxt, lfd = lfd, -1
                self._set_cur(nxt, rel, check=rel is None)
            finally:
                if lfd >= 0:
                    os.close(lfd)


    def _openat2(self, name: bytes, flags: int, mode: int, resolve: int,
                 rel: list[bytes] | None) -> int:
        """openat2 in the current directory; for the caller's own fd/,
        fdinfo/ and magic links (`self_only`), when refused, again with the
        capabilities that stand for Linux's same-thread-group rule."""
        fd = self.fs.openat2(self.cur, name, flags, mode, resolve)
        if fd in (-errno.EACCES, -errno.EPERM) and self_only(self.call, rel):
            # By the sentry itself in gofer mode too: the gofer holds no
            # CAP_SYS_PTRACE, and this is procfs, not the container's files.
            with self.call.creds_state.lifted(SELF_PROC_CAPS):
                fd = self.s.openat2(self.cur, name, flags, mode, resolve)
        return fd


_SELF_ONLY = frozenset({b"fd", b"fdinfo", b"exe", b"cwd", b"root"})


def self_only(call: Call, rel: list[bytes] | None) -> bool:
    """rel (below the container's procfs root) is, or is below, the
    caller's own fd/ or fdinfo/ directory or one of its own magic links:
    what Linux grants a task on its own thread group whatever its
    credentials (a non-dumpable task's entries belong to root)."""
    if not rel:
        return False
    creds = call.creds()
    if rel[0] != b"%d" % creds.ns_tgid:
        return False
    if len(rel) >= 3 and rel[1] == b"task":
        rel = rel[:1] + rel[3:]  # any thread of its own thread group
    return len(rel) >= 2 and rel[1] in _SELF_ONLY


def _ident(fd: int) -> tuple[int, int]:
    st = os.fstat(fd)
    return st.st_dev, st.st_ino


def check_own_procfs(call: Call, root: int, dev: int) -> None:
    """Entering a procfs root: it must be a procfs of the container's own
    pid namespace.  A procfs of another one - the host's, bound into the
    rootfs by the spec - shows other processes whose files are host state:
    refused whole (EACCES), whatever the capabilities.  Known devices are
    remembered (kernobj.FsKinds.own_proc)."""
    want = call.sb.options.container_pidns
    kinds = call.sb.fs_kinds
    if not want or dev in kinds.own_proc:
        return
    cs = call.creds_state
    dropped = cs.ptrace_dropped
    if dropped:
        cs.restore_ptrace()  # reading namespace links is ours to do
    try:
        own = _shows_pidns(call, root, want)
    finally:
        if dropped:
            cs.drop_ptrace()
    if not own:
        raise SysError(errno.EACCES, "procfs of another pid namespace")
    if len(kinds.own_proc) < 64:
        kinds.own_proc.add(dev)


def _shows_pidns(call: Call, root: int, want: str) -> bool:
    """Is the procfs at root one of pid namespace want?  Its pid 1 is in
    it; or, when pid 1's link cannot be read (the host's init may refuse
    us), the caller's own entry there is the caller: same namespace, same
    start time.  Any error: no."""
    try:
        if os.readlink("1/ns/pid", dir_fd=root) == want:
            return True
    except OSError:
        pass
    try:
        tid = call.creds().ns_tgid
        if tid <= 0 or os.readlink(f"{tid}/ns/pid", dir_fd=root) != want:
            return False
        return _start_time(os.open(f"{tid}/stat", os.O_RDONLY | os.O_CLOEXEC, dir_fd=root)) == \
            _start_time(ownproc.open_(f"{call.pid}/stat", os.O_RDONLY | os.O_CLOEXEC))
    except (OSError, ValueError, IndexError):
        return False


def _start_time(fd: int) -> int:
    """Field 22 of a /proc/PID/stat opened as fd (closed here)."""
    try:
        data = os.read(fd, 4096)
    finally:
        os.close(fd)
    return int(data[data.rfind(b")") + 2:].split()[19])


def _is_sentry(proc_root: int, comp: bytes) -> bool:
    """Is /proc/<comp> of the procfs at PROC_ROOT one of the sentry's tasks?

    Only a procfs of a pid namespace that holds the sentry (a bind mount of
    the host's /proc, of another sandbox's) can show it: there "self" names
    us, and our threads are under it.  The sentry's threads may open their
    own /proc/PID/mem whatever their credentials: never on the target's
    behalf.  The container's own procfs cannot show us: "self" is dangling
    there (ENOENT).  Any other error fails closed (taken for ours: ENOENT
    to the target).
    """
    if not comp.isdigit():
        return False
    try:
        me = os.readlink("self", dir_fd=proc_root)
        os.stat(f"{me}/task/{comp.decode()}", dir_fd=proc_root, follow_symlinks=False)
    except OSError as e:
        return e.errno != errno.ENOENT
    return True


def _reopen(obj: int, flags: int, mode: int) -> int:
    """Open the object behind our fd obj again, as the kernel reopens
    /proc/PID/fd/N for its owner: inode permission with the current creds."""
    if flags & os.O_PATH:
        return os.dup(obj)  # O_PATH never checks permissions
    try:
        return ownproc.open_(ownproc.self_fd(obj), (flags | os.O_CLOEXEC) & ~os.O_NOFOLLOW, mode)
    except OSError as e:
        return -(e.errno or errno.EIO)


_libc = ctypes.CDLL("libc.so.6", use_errno=True)
SYS_pidfd_getfd = 438
_PIDFD_THREAD = os.O_EXCL


def open_own(call: Call, rel: str, flags: int) -> int:
    """Our fd of the caller's own procfs entry rel ("TID/cwd", "TID/fd/N",
    in our procfs), or SysError; again with `SELF_PROC_CAPS` if refused
    (`self_only`: Linux grants these to any task on itself)."""
    try:
        return ownproc.open_(rel, flags)
    except OSError as e:
        if e.errno not in (errno.EACCES, errno.EPERM):
            raise SysError(e.errno or errno.EIO, rel) from None
    try:
        with call.creds_state.lifted(SELF_PROC_CAPS):
            return ownproc.open_(rel, flags)
    except OSError as e:
        raise SysError(e.errno or errno.EIO, rel) from None


def target_fd(call: Call, n: int) -> int:
    """Our copy of the target's fd n (pidfd_getfd), or SysError.

    pidfd_getfd needs PTRACE_MODE_ATTACH_REALCREDS over the target: the
    sentry's real uid and CAP_SYS_PTRACE, restored here if a procfs
    operation dropped it.
    """
    if n < 0 or n > 0x7FFFFFFF:
        raise SysError(errno.EBADF, "target fd")
    cs = call.creds_state
    if cs.ptrace_dropped:
        cs.restore_ptrace()
    pidfd = hostcalls.pidfd_open(call.pid, _PIDFD_THREAD)
    if pidfd < 0:
        raise SysError(errno.ESRCH, "pidfd_open")
    try:
        call.check_valid()
        r = _libc.syscall(SYS_pidfd_getfd, pidfd, n, 0)
        if r < 0:
            err = ctypes.get_errno()
            raise SysError(errno.EBADF if err == errno.EBADF else err, "pidfd_getfd")
        return int(r)  # pidfd_getfd(2) sets close-on-exec itself
    finally:
        os.close(pidfd)


def _within_held_mode(obj: int, flags: int) -> bool:
    """A reopen asks for no more access than the fd the target holds."""
    import fcntl
    held = fcntl.fcntl(obj, fcntl.F_GETFL) & os.O_ACCMODE
    want = flags & os.O_ACCMODE
    if flags & (os.O_TRUNC | os.O_CREAT) and held == os.O_RDONLY:
        return False
    return want == held or held == os.O_RDWR


def _magic(call: Call, rel: list[bytes]) -> tuple[int, bool]:
    """Our fd of the object behind the magic link /proc/<rel...>, or SysError.

    The flag is True for a non-directory outside the container that the
    target holds as its own fd N (its stdio files, given by whoever started
    the container): it may be reopened with no more access than that fd has,
    and never walked through.
    """
    creds = call.creds()
    own = rel[0] == b"%d" % creds.ns_tgid
    if len(rel) >= 4 and rel[1] == b"task":
        rel = [rel[0]] + rel[3:]
        own = own and len(rel) >= 2
    if not own:
        raise SysError(errno.EACCES, "magic link of another process")
    kind = rel[1] if len(rel) >= 2 else b""
    if kind == b"fd" and len(rel) == 3 and rel[2].isdigit():
        obj = target_fd(call, int(rel[2]))
    elif kind == b"root" and len(rel) == 2:
        fd = call.fs.openat2(ROOT, b".", _O_PATH_DIR, 0, 0)
        if fd < 0:
            raise SysError(-fd, "magic link: root")
        return fd, False
    elif kind in (b"cwd", b"exe") and len(rel) == 2:
        cs = call.creds_state
        if cs.ptrace_dropped:
            cs.restore_ptrace()
        obj = open_own(call, f"{call.pid}/{kind.decode()}", os.O_PATH | os.O_CLOEXEC)
        call.check_valid()
    else:
        raise SysError(errno.ELOOP, "magic link not followed by the sentry")
    held_only = False
    try:
        _inside(call, obj)
    except SysError:
        if kind == b"fd" and not _stat.S_ISDIR(os.fstat(obj).st_mode):
            held_only = True
        else:
            os.close(obj)
            raise
    except BaseException:
        os.close(obj)
        raise
    # Back to exactly the target's capabilities for the reopen.
    call.creds_state.drop_ptrace()
    return obj, held_only


def mount_ids(path: str) -> set[int]:
    """The mount ids listed in a mountinfo file; SysError if it cannot be
    read (callers refuse).  A relative path ("PID/mountinfo") is in the
    sentry's procfs (sentry/ownproc.py); an absolute one only before the
    sentry's filter."""
    flags = os.O_RDONLY | os.O_CLOEXEC
    try:
        fd = os.open(path, flags) if path.startswith("/") else ownproc.open_(path, flags)
        with open(fd, "rb") as f:
            return {int(line.split(b" ", 1)[0]) for line in f if line.strip()}
    except (OSError, ValueError) as e:
        raise SysError(getattr(e, "errno", None) or errno.EACCES, f"read {path}") from None


STATX_MNT_ID = 0x1000


def mount_id(s: hostcalls.Scratch, fd: int) -> int:
    """The id of the mount fd's object is on (statx STATX_MNT_ID)."""
    r = s.fstatx_into(fd, 0, STATX_MNT_ID)
    if r < 0:
        raise SysError(-r, "statx")
    return int.from_bytes(s.stat.raw[144:152], "little")


# Filesystems whose objects exist only as fds, with no directory to walk
# from: pipes, sockets, and anon inodes (eventfd, epoll, timerfd, signalfd,
# inotify, pidfd...).  memfds live on the kernel's internal shmem mount.
_FD_ONLY_FS = {0x50495045: "pipefs", 0x534F434B: "sockfs", 0x09041934: "anon_inodefs"}
_SHMEM_FS = {0x01021994: "tmpfs (memfd)", 0x958458F6: "hugetlbfs (memfd)"}


def fd_only(call: Call, fd: int) -> bool:
    """Is fd's object one that exists only as an fd (module note above)?
    Told by filesystem magic (and a memfd's name); an error refuses."""
    s = call.scratch
    r = s.fstatfs_into(fd)
    if r < 0:
        raise SysError(-r, "fstatfs")
    magic = int.from_bytes(s.statfs.raw[:8], "little")
    if magic in _FD_ONLY_FS:
        return True
    if magic in _SHMEM_FS:
        try:
            return ownproc.readlink(ownproc.self_fd(fd)).startswith("/memfd:")
        except OSError:
            raise SysError(errno.EACCES, "readlink of a magic link's object") from None
    return False


def _inside(call: Call, fd: int) -> None:
    """Refuse (EACCES) an object that is not part of the container.

    A directory or file on one of the container's mounts (the target's
    mountinfo) is inside.  An object that exists only as an fd (pipe,
    socket, anon inode, memfd: told by filesystem magic) cannot be walked
    from and is the target's own: allowed.  Anything else - a host file or
    directory the target holds only because a runtime leaked it - is
    refused, and so is any object whose mount or filesystem cannot be read.
    """
    mid = mount_id(call.scratch, fd)
    if mid in mount_ids(f"{call.pid}/mountinfo"):
        return
    if not _stat.S_ISDIR(os.fstat(fd).st_mode) and fd_only(call, fd):
        return
    raise SysError(errno.EACCES, "magic link to an object outside the container")
