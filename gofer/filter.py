"""The gofer's own seccomp filter: file serving and nothing else.

Installed by the gofer on itself right after it joined the container's
mount namespace and cut its capabilities, before it answers any request.
An allowlist kept as data with a reason per entry (`runsc-py policy
--gofer` prints it); anything else fails with EPERM.  Compared with the
sentry's (sentry/self_filter.py): no access to other processes at all
(no process_vm_*, pidfd_getfd, kill, ptrace), no socket creation, no
bind/connect/accept, no exec, mount or namespaces.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing's, without importing typing (docs/performance.md, Start-up)
if TYPE_CHECKING:
    from typing import Any


from sentry.self_filter import build_allowlist
from runsc_py.log import get_logger

log = get_logger(__name__)

ALLOW: dict[str, str] = {
    # a threaded Python process
    "brk": "Python's allocator",
    "mmap": "allocator, thread stacks",
    "munmap": "allocator",
    "mprotect": "thread stack guard pages",
    "mremap": "allocator",
    "madvise": "allocator",
    "futex": "locks between channel threads",
    "set_robust_list": "new threads",
    "rseq": "new threads (glibc)",
    "exit": "a channel thread ends",
    "exit_group": "the gofer ends with the sandbox",
    "gettid": "logging",
    "getpid": "logging",
    "getppid": "logging",
    "getrandom": "Python hash seeds",
    "clock_gettime": "logging timestamps",
    "rt_sigaction": "Python's signal setup",
    "rt_sigprocmask": "Python's signal handling",
    "rt_sigreturn": "return from signal handlers",
    "sigaltstack": "Python's faulthandler",
    "tgkill": "Python's signal wake-ups",
    # the sockets to the sentry
    "recvmsg": "requests with SCM_RIGHTS",
    "sendmsg": "replies with SCM_RIGHTS",
    "recvfrom": "Python's socket module",
    "sendto": "Python's socket module",
    "getsockopt": "socket type check of a new channel",
    "getsockname": "Python's socket module",
    "poll": "Python's socket module",
    # file serving: every call fd-relative below the container root
    "read": "log records", "write": "log records",
    "close": "every fd received or opened",
    "fcntl": "CLOEXEC",
    "dup": "Python's io",
    "lseek": "directory scans (path_of)",
    "openat": "fd-relative opens (path_of walks up with \"..\")",
    "openat2": "RESOLVE_IN_ROOT / RESOLVE_BENEATH resolution in the root",
    "newfstatat": "fstat of handles",
    "fstat": "fstat of handles",
    "statx": "identity checks",
    "readlinkat": "symlink texts",
    "getdents64": "directory scans (path_of)",
    "faccessat2": "access(2) for the sentry",
    "mkdirat": "mkdir", "mknodat": "mknod", "unlinkat": "unlink/rmdir",
    "symlinkat": "symlink", "renameat2": "rename", "linkat": "link",
    # acting with the target's credentials, per thread
    "setfsuid": "act as the target's fsuid", "setfsgid": "act as the target's fsgid",
    "setgroups": "act with the target's groups",
    "capget": "read capabilities", "capset": "act with the target's capabilities",
    "getuid": "credentials", "geteuid": "credentials", "getgid": "credentials",
    "getegid": "credentials", "getgroups": "credentials",
}


def build() -> Any:
    """The gofer's libseccomp filter object."""
    return build_allowlist(ALLOW, sockets=False)


def build_bpf() -> bytes:
    """build() as raw BPF, exactly what its load() would install."""
    from sentry.filter import export_bpf
    return export_bpf(build())


def install(prepared: Any = None) -> None:
    """Load the filter on the calling (single-threaded) gofer.  Always
    enforcing: there is no log-only mode to switch on.  PREPARED: this
    filter's program from the runtime's cache (runsc_py/filtercache.py) as
    a sentry.install.PreparedFilter, made before the gofer left the host's
    mount namespace, loaded as libseccomp's load() would."""
    if prepared is None:
        build().load()
    else:
        prepared.load_allowlist()
    log.debug("gofer: own seccomp filter installed (%d syscalls allowed)", len(ALLOW) + 2)


def table() -> list[tuple[str, str]]:
    rows = sorted(ALLOW.items())
    rows += [("clone", "threads only: CLONE_THREAD required"),
             ("prctl", "PR_SET_NAME, PR_GET_NAME, PR_GET_DUMPABLE, PR_GET_NO_NEW_PRIVS, "
                       "PR_CAPBSET_READ, PR_CAP_AMBIENT")]
    return sorted(rows)
