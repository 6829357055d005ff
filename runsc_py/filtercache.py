"""The cache of seccomp programs: built once per policy and options, not per
container.

Every container loads three BPF programs: the workload's filter
(sentry/filter.py: the policy table through libseccomp, ~750 instructions),
the sandbox process's own allowlist (sentry/self_filter.py) and the gofer's
(gofer/filter.py).  Building them costs more CPU than anything else the
sandbox does before the workload runs, and gives the same bytes every time
for the same inputs.  `load` returns them from <root>/@cache/, building and
storing the ones that are missing.

What the bytes depend on, all of it in the key (a SHA-256):
  - the runtime's version and this file's format;
  - the modules that build them (FILTER_SOURCES: they import nothing else
    of ours, which tests/test_filtercache.py checks), by the identity of
    their files (path, device, inode, size, mtime: what Python's own .pyc
    check trusts; hashing their 110 KB was ~1 ms of every create, on its
    way to the sandbox's orders);
  - the generator: the libseccomp Python binding and libseccomp.so.2 found
    on this host (device, inode, size, mtime of each);
  - the kind and its options (_options): for the workload filter
    SandboxOptions.FILTER_FIELDS (the same fields an `exec` rebuilds it
    from) and the platform (ptrace's variant has SECCOMP_RET_TRACE where
    seccomp's has USER_NOTIF); for the sandbox's own allowlist the platform
    (ptrace adds the tracer's requests and kcmp) and whether its threads
    join the workload's network namespace (--network=none: setns); the
    gofer's has none.
  - the ptrace platform's second filter ("guard": it keeps the workload's
    calls off the reserved descriptor, sentry/platform/reserved.py) comes
    with the workload's on that platform, for the usual descriptor
    (RESERVED_FD, its only option); a process whose hard RLIMIT_NOFILE is
    lower builds its own (ptrace_entry.PreparedTrace.enter).

Nothing here is trusted that did not pass every check (when in doubt the
program is rebuilt, from the policy, in this process):
  - <root> and <root>/@cache are directories owned by us (euid) that no group
    or other user may write, opened without following symlinks; @cache is
    made 0700 (and is no valid container id, so never a container's);
  - an entry is a regular file owned by us, not group/world-writable,
    opened with O_NOFOLLOW relative to that directory, of bounded size;
  - it starts with the format's magic and the full key it was stored under
    (a file of other inputs, or another version's, does not match), then the
    program's length and its SHA-256, which must match the program;
  - the program passes sentry/bpf.py's structural check and answers a few
    syscalls as every policy of ours must (PROBES: x86-64 only, the i386
    and x32 ABIs killed, exec notified or refused, ptrace and mount refused,
    getpid allowed).
An entry that fails is replaced: the fresh build is written to a new file
(O_CREAT|O_EXCL, 0600, random name) and renamed over it, atomically, so a
reader sees a whole entry or none.  No integrity check here is a defence
against root: whoever can write <root> is root already.  It is a defence
against corruption, against a cache left by other code or options, and
against following a path somebody else could have planted.
"""

from __future__ import annotations

import errno
import os
import stat
import struct
import sys
TYPE_CHECKING = False  # typing's, without importing typing (docs/performance.md, Start-up)
if TYPE_CHECKING:
    from typing import Any, Callable

from . import jsonio
from runsc_py.log import get_logger

log = get_logger(__name__)

CACHE_DIR = "@cache"        # under --root; "@" is outside state.validate_id's ids
FORMAT = 1
MAGIC = b"RSPYBPF\x01"
_HEADER = struct.Struct("<8s32sI32s")   # magic, key, program length, program SHA-256
_MAX_PROGRAM = 4096 * 8                 # BPF_MAXINSNS instructions

KINDS = ("workload", "sentry", "gofer")
GUARD = "guard"  # with "workload" on the ptrace platform (load)
# The modules whose code decides the programs (package, file).
FILTER_SOURCES = (("sentry", "policy.py"), ("sentry", "sysno.py"), ("sentry", "filter.py"),
                  ("sentry", "self_filter.py"), ("sentry.platform", "reserved.py"),
                  ("gofer", "filter.py"), ("runsc_py", "record.py"))
_LIBSECCOMP_DIRS = ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64",
                    "/usr/lib", "/usr/local/lib", "/lib")

# x86-64 syscall numbers of the probes (a fixed ABI)
_READ, _GETPID, _EXECVE, _PTRACE, _MOUNT, _CLONE3, _CLOSE_RANGE, _UNKNOWN = 0, 39, 59, 101, 165, 435, 436, 999


def _probes(kind: str, traced: bool, platform: str = "seccomp") -> dict[tuple[int, int], int]:
    """What every program of KIND answers, whatever the rest of the policy:
    README's invariants (the workload's filter under --strace notifies what
    it would refuse, so that the sentry logs it; on the ptrace platform the
    sentry is reached by SECCOMP_RET_TRACE instead of a notification)."""
    from sentry import bpf
    x86, i386 = bpf.AUDIT_ARCH_X86_64, bpf.AUDIT_ARCH_I386
    eperm, enosys = bpf.RET_ERRNO | errno.EPERM, bpf.RET_ERRNO | errno.ENOSYS
    if kind == GUARD:
        # Default allow, every ABI but x86-64's killed; close_range always
        # stops (the tracer splits a range over the reserved descriptor).
        return {(_GETPID, x86): bpf.RET_ALLOW, (_READ, x86): bpf.RET_ALLOW,
                (_CLOSE_RANGE, x86): bpf.RET_TRACE, (20, i386): bpf.RET_KILL_PROCESS}
    if kind == "workload":
        sentry = bpf.RET_TRACE if platform == "ptrace" else bpf.RET_USER_NOTIF
        refused = sentry if traced else eperm
        return {(_GETPID, x86): bpf.RET_ALLOW, (_EXECVE, x86): sentry,
                (_PTRACE, x86): refused, (_MOUNT, x86): refused, (_UNKNOWN, x86): enosys,
                (bpf.X32_SYSCALL_BIT | _GETPID, x86): bpf.RET_KILL_PROCESS,
                (20, i386): bpf.RET_KILL_PROCESS}
    return {(_GETPID, x86): bpf.RET_ALLOW, (_READ, x86): bpf.RET_ALLOW, (_EXECVE, x86): eperm,
            (_PTRACE, x86): eperm, (_MOUNT, x86): eperm, (_CLONE3, x86): enosys,
            (_UNKNOWN, x86): eperm, (bpf.X32_SYSCALL_BIT | _GETPID, x86): bpf.RET_KILL_THREAD,
            (20, i386): bpf.RET_KILL_THREAD}


def load(root: str, sandbox: Any, kinds: tuple[str, ...] = KINDS) -> dict[str, bytes]:
    """kind -> program for SANDBOX (a runsc_py.sandbox.SandboxOptions), from
    the cache under the runtime's ROOT, built and stored where missing or
    refused.  Never fails for a cache problem: the worst case is a build.
    On the ptrace platform the workload's filter brings its guard."""
    if "workload" in kinds and GUARD not in kinds and sandbox.platform == "ptrace":
        kinds = (*kinds, GUARD)
    traced = bool(sandbox.filter_state().get("strace"))
    try:
        inputs = _inputs()
    except OSError as e:
        log.warning("filter cache: %s: building without the cache", e)
        inputs = None
    dfd = _open_cache(root) if inputs is not None else -1
    out = {}
    try:
        for kind in kinds:
            build = _builder(kind, sandbox)
            if dfd < 0 or inputs is None:
                out[kind] = build()
                continue
            key = _key(inputs, kind, _options(kind, sandbox))
            out[kind] = _get(dfd, kind, key, build, _probes(kind, traced, sandbox.platform))
    finally:
        if dfd >= 0:
            os.close(dfd)
    return out


def _options(kind: str, sandbox: Any) -> dict[str, Any]:
    """Every option KIND's program depends on (its builder below reads
    nothing else of SANDBOX): part of the key."""
    if kind == "workload":
        return {**sandbox.filter_state(), "platform": sandbox.platform}
    if kind == "sentry":
        return {"join_netns": sandbox.network == "none", "platform": sandbox.platform}
    if kind == GUARD:
        from sentry.platform.reserved import RESERVED_FD
        return {"fd": RESERVED_FD}
    return {}


def _builder(kind: str, sandbox: Any) -> Callable[[], bytes]:
    """The function that builds KIND's program from the policy (imports
    libseccomp and the policy modules: only on a miss).  What it reads of
    SANDBOX is in _options."""
    opts = _options(kind, sandbox)
    if kind == "workload":
        def workload() -> bytes:
            from sentry.filter import build_bpf
            from .sandbox import SandboxOptions, policy_options
            fields = {k: v for k, v in opts.items() if k in SandboxOptions.FILTER_FIELDS}
            return build_bpf(policy_options(SandboxOptions(**fields)), trace=opts["platform"] == "ptrace")
        return workload
    if kind == "sentry":
        def sentry() -> bytes:
            from sentry.self_filter import build_bpf
            return build_bpf(join_netns=opts["join_netns"], platform=opts["platform"])
        return sentry
    if kind == GUARD:
        def guard() -> bytes:
            from sentry.platform.reserved import build_bpf
            return build_bpf(opts["fd"])
        return guard
    if kind == "gofer":
        def gofer() -> bytes:
            from gofer.filter import build_bpf
            return build_bpf()
        return gofer
    raise ValueError(f"filter cache: unknown kind {kind!r}")


# -- the key ---------------------------------------------------------------------

def _inputs() -> bytes:
    """Everything but kind and options that the programs depend on: the
    runtime's version, the builders' files, the generator's files."""
    import _sha256  # hashlib's import (OpenSSL) costs more than a `state`

    from . import __version__
    h = _sha256.sha256()
    h.update(f"runsc-py filter cache {FORMAT} {__version__}\0".encode())
    for package, name in FILTER_SOURCES:
        path = os.path.join(_package_dir(package), name)
        st = os.stat(path)
        h.update(f"{path}:{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}\0".encode())
    h.update(_generator().encode())
    return h.digest()


def _package_dir(name: str) -> str:
    __import__(name)  # the packages' __init__ is a docstring (not importlib's package: cli.py)
    mod = sys.modules[name]
    return list(mod.__path__)[0]


def _generator() -> str:
    """The identity of libseccomp as the build would use it: the binding
    the import system finds, and libseccomp.so.2 in the usual library
    directories (each stat follows the soname link to the versioned file,
    so an upgrade changes it)."""
    from _frozen_importlib_external import PathFinder  # importlib.machinery's
    parts = []
    spec = PathFinder.find_spec("seccomp")
    paths = [spec.origin] if spec is not None and spec.origin else []
    paths += [os.path.join(d, "libseccomp.so.2") for d in _LIBSECCOMP_DIRS]
    for p in paths:
        try:
            st = os.stat(p)
        except OSError:
            continue
        parts.append(f"{p}:{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}")
    return "\n".join(parts) or "no libseccomp found"


def _key(inputs: bytes, kind: str, options: dict[str, Any]) -> bytes:
    import _sha256
    h = _sha256.sha256(inputs)
    h.update(f"\0{kind}\0".encode())
    h.update(jsonio.dumps(options, sort_keys=True).encode())
    return h.digest()


# -- the directory -------------------------------------------------------------------

def _trusted_dir(fd: int, what: str) -> bool:
    st = os.fstat(fd)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o022:
        log.warning("filter cache: %s is not a directory of ours that only we may write "
                    "(uid %d, mode %o): not used", what, st.st_uid, stat.S_IMODE(st.st_mode))
        return False
    return True


def _open_cache(root: str) -> int:
    """An fd of <root>/@cache (made if missing), or -1 when it cannot be
    trusted or made (logged)."""
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        rfd = os.open(root, flags)
    except OSError as e:
        log.warning("filter cache: open %s: %s: not used", root, e.strerror)
        return -1
    try:
        if not _trusted_dir(rfd, root):
            return -1
        try:
            os.mkdir(CACHE_DIR, 0o700, dir_fd=rfd)
        except FileExistsError:
            pass
        dfd = os.open(CACHE_DIR, flags, dir_fd=rfd)
    except OSError as e:
        log.warning("filter cache: %s/%s: %s: not used", root, CACHE_DIR, e.strerror)
        return -1
    finally:
        os.close(rfd)
    if not _trusted_dir(dfd, f"{root}/{CACHE_DIR}"):
        os.close(dfd)
        return -1
    return dfd


# -- entries ------------------------------------------------------------------------

def _get(dfd: int, kind: str, key: bytes, build: Callable[[], bytes],
         probes: dict[tuple[int, int], int]) -> bytes:
    name = f"{kind}-{key.hex()[:32]}.bpf"
    why = _read(dfd, name, key, probes)
    if isinstance(why, bytes):
        log.debug("filter cache: %s: hit", name)
        return why
    prog = build()
    from sentry import bpf
    try:
        bpf.expect(prog, probes)
    except bpf.BadProgram as e:
        # A fresh build is what would be loaded without the cache: used as
        # it is, but a program the probes refuse would never be read back.
        log.warning("filter cache: the %s filter just built fails the cache's probes (%s): "
                    "not stored", kind, e)
        return prog
    if why != "missing":
        log.warning("filter cache: %s: %s: rebuilt", name, why)
    else:
        log.debug("filter cache: %s: missing: built", name)
    _store(dfd, name, key, prog)
    return prog


def _read(dfd: int, name: str, key: bytes, probes: dict[tuple[int, int], int]) -> bytes | str:
    """The program of entry NAME, or why it cannot be used."""
    from sentry import bpf
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dfd)
    except FileNotFoundError:
        return "missing"
    except OSError as e:
        return f"open: {e.strerror}"
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o022:
            return f"not a regular file of ours that only we may write (uid {st.st_uid}, " \
                   f"mode {stat.S_IMODE(st.st_mode):o})"
        if st.st_size > _HEADER.size + _MAX_PROGRAM:
            return f"{st.st_size} bytes: too big"
        data = os.read(fd, _HEADER.size + _MAX_PROGRAM + 1)
    except OSError as e:
        return f"read: {e.strerror}"
    finally:
        os.close(fd)
    if len(data) < _HEADER.size:
        return "truncated"
    magic, stored_key, length, digest = _HEADER.unpack_from(data)
    prog = data[_HEADER.size:]
    if magic != MAGIC:
        return "not an entry of this format"
    if stored_key != key:
        return "stored under another key"
    import _sha256
    if length != len(prog) or _sha256.sha256(prog).digest() != digest:
        return "the program does not match its checksum"
    try:
        bpf.expect(prog, probes)
    except bpf.BadProgram as e:
        return str(e)
    return prog


def _store(dfd: int, name: str, key: bytes, prog: bytes) -> None:
    """Write the entry beside the others and rename it into place (a reader
    sees a whole entry or none).  A failure only costs the next start a build."""
    import _sha256
    data = _HEADER.pack(MAGIC, key, len(prog), _sha256.sha256(prog).digest()) + prog
    tmp = f".tmp-{os.getpid()}-{os.urandom(6).hex()}"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                     dir_fd=dfd)
    except OSError as e:
        log.warning("filter cache: create %s: %s: not stored", tmp, e.strerror)
        return
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)
        os.rename(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
    except OSError as e:
        log.warning("filter cache: store %s: %s: not stored", name, e.strerror)
        try:
            os.unlink(tmp, dir_fd=dfd)
        except OSError:
            pass
