"""The sentry's own seccomp filter: what the sandbox process may ask the host.

The sandbox process (parent of the container's init, host of the sentry's
worker threads) installs this on itself once init is forked and before it
serves any notification.  Like gVisor's Sentry filter, it is an allowlist kept
as data, one reason per entry; anything else fails with EPERM (fail closed:
a compromised sentry cannot exec, mount, ptrace, load BPF, create namespaces,
open io_uring, or touch keyrings).  `runsc-py policy --sentry` prints it.

Argument filters narrow the risky ones: clone only for threads, socket only
AF_UNIX, prctl only the few options in use.
"""

from __future__ import annotations

import errno
from runsc_py.log import get_logger
TYPE_CHECKING = False  # typing's, without importing typing (docs/performance.md, Start-up)
if TYPE_CHECKING:
    from typing import Any

log = get_logger(__name__)

CLONE_THREAD = 0x00010000
CLONE_NEWNET = 0x40000000
AF_UNIX, AF_NETLINK = 1, 16
NETLINK_ROUTE, NETLINK_SOCK_DIAG = 0, 4

# name -> reason.  Entries with argument rules are in RULES below.
ALLOW: dict[str, str] = {
    # memory and threads of a Python process
    "brk": "Python's allocator",
    "mmap": "allocator, thread stacks",
    "munmap": "allocator",
    "mprotect": "thread stack guard pages",
    "mremap": "allocator",
    "madvise": "allocator",
    "futex": "locks between worker threads",
    "set_robust_list": "new threads",
    "rseq": "new threads (glibc)",
    "exit": "worker thread exit",
    "exit_group": "the sandbox exits with the workload's status",
    "gettid": "logging, thread ids",
    "getpid": "logging",
    "getppid": "logging",
    "sched_yield": "thread hand-off",
    "sched_getaffinity": "how many CPUs we may use; a target's CPU mask around ADDFD (notify.py)",
    "sched_setaffinity": "pin a target to our CPU for the length of an ADDFD, then restore (notify.py)",
    "getrandom": "Python hash seeds, tempfile names",
    "clock_gettime": "timeouts",
    "clock_nanosleep": "the stall monitor's tick",
    "nanosleep": "the stall monitor's tick",
    "gettimeofday": "logging timestamps",
    # signals
    "rt_sigaction": "signal forwarding to the workload",
    "rt_sigprocmask": "Python's signal handling",
    "rt_sigreturn": "return from signal handlers",
    "restart_syscall": "a wait interrupted by a forwarded signal resumes",
    "sigaltstack": "Python's faulthandler",
    "kill": "forward signals to the workload's init; mirror its exit signal on ourselves",
    "tgkill": "Python's signal wake-ups",
    "pidfd_open": "watch init's exit; pin a target task's identity",
    "pidfd_send_signal": "signal a pinned task",
    "pidfd_getfd": "take a target's fd for fd-relative emulation (socket bind/connect, dirfds)",
    "wait4": "reap the workload's init",
    "waitid": "reap the workload's init",
    # the notification fd and the workload's memory
    "ioctl": "SECCOMP_IOCTL_NOTIF_* on the listener, PIDFD_GET_INFO on a target's pidfd "
             "(its ids after an exec), TCGETS probes of Python's io",
    "process_vm_readv": "copy syscall arguments from the workload",
    "process_vm_writev": "write results into the workload",
    "poll": "wait on the listener, sockets, pidfds",
    "ppoll": "wait on the listener",
    "select": "wait on sockets",
    "pselect6": "wait on sockets",
    "epoll_create1": "selectors; the workload's epoll fds (fs_fd)",
    "epoll_ctl": "selectors",
    "epoll_wait": "selectors",
    "epoll_pwait": "selectors",
    # files: every path is resolved fd-relative inside the container root
    "read": "/proc reads, sockets",
    "write": "log file, sockets",
    "pread64": "/proc/PID/mem fallback reads",
    "pwrite64": "/proc/PID/mem fallback writes",
    "readv": "sockets",
    "writev": "sockets",
    "lseek": "Python's io",
    "close": "every fd we open",
    "close_range": "closing received fds",
    "dup": "Python's io",
    "dup2": "Python's io",
    "dup3": "Python's io",
    "fcntl": "CLOEXEC, O_NONBLOCK",
    "openat": "/proc/PID/* of targets, fd-relative opens",
    "openat2": "RESOLVE_IN_ROOT / RESOLVE_BENEATH resolution in the container root",
    "newfstatat": "stat emulation (fd-relative)",
    "fstat": "stat emulation",
    "statx": "stat emulation",
    "readlinkat": "readlink emulation, fd identity checks",
    "getdents64": "/proc/self/fd scans",
    "faccessat": "access emulation",
    "faccessat2": "access emulation",
    "mkdirat": "mkdir emulation",
    "mknodat": "mknod emulation (FIFOs, sockets, permitted char devices)",
    "unlinkat": "unlink/rmdir emulation",
    "renameat": "rename emulation",
    "renameat2": "rename emulation (RENAME_EXCHANGE/NOREPLACE)",
    "linkat": "link emulation",
    "symlinkat": "symlink emulation",
    "fchmodat": "chmod emulation",
    "fchmod": "chmod emulation on a resolved fd",
    "fchownat": "chown emulation",
    "fchown": "chown emulation on a resolved fd",
    "utimensat": "utimes emulation",
    "ftruncate": "truncate emulation",
    "fstatfs": "statfs emulation",
    "memfd_create": "the files the sentry writes itself (sentry/synth.py: /proc/meminfo...), "
                    "and the workload's memfds (fs_fd)",
    # calls the sentry makes to answer rare ones of the workload's (each
    # on a target named by tid, or on its copy of a target's fd)
    "sched_getparam": "proc_sched", "sched_getscheduler": "proc_sched",
    "sched_getattr": "proc_sched", "sched_rr_get_interval": "proc_sched",
    "sched_get_priority_max": "proc_sched", "sched_get_priority_min": "proc_sched",
    "getpriority": "proc_sched", "ioprio_get": "proc_sched",
    "times": "sys_time", "clock_getres": "sys_time",
    "sysfs": "sys_info", "ustat": "sys_info", "lsm_list_modules": "sys_info",
    "get_robust_list": "proc_thread",
    "eventfd2": "fs_fd",
    "timerfd_create": "fs_fd", "timerfd_gettime": "fs_fd", "signalfd4": "fs_fd",
    "inotify_rm_watch": "fs_fd", "memfd_secret": "fs_fd", "mq_getsetattr": "fs_fd",
    "mq_unlink": "fs_fd",
    "fadvise64": "fs_io", "readahead": "fs_io", "sync_file_range": "fs_io", "syncfs": "fs_io",
    "sync": "fs_io", "cachestat": "fs_io",
    # The only calls that take a path and no directory fd: each is given
    # our own magic link /proc/self/fd/N of an object already resolved in
    # the root (no fd-relative form before Linux 6.13's *xattrat; none at
    # all for inotify_add_watch or truncate).  The sentry's cwd is the
    # empty root's "/", except while an AF_UNIX bind of a relative name
    # runs there (sentry/unixnames.py).
    "getxattr": "xattr emulation via /proc/self/fd/N",
    "setxattr": "xattr emulation via /proc/self/fd/N",
    "listxattr": "xattr emulation via /proc/self/fd/N",
    "removexattr": "xattr emulation via /proc/self/fd/N",
    "inotify_add_watch": "inotify emulation on a target's inotify fd, via /proc/self/fd/N",
    "truncate": "truncate emulation via /proc/self/fd/N (an open for writing would differ)",
    "fgetxattr": "xattr emulation on a target's fd",
    "fsetxattr": "xattr emulation on a target's fd",
    "flistxattr": "xattr emulation on a target's fd",
    "fremovexattr": "xattr emulation on a target's fd",
    "fsync": "log file",
    "getcwd": "Python's os module",
    "umask": "the supervisor creates files with the target's umask applied by hand",
    "uname": "platform module",
    "sysinfo": "sysinfo emulation",
    "getrlimit": "Python's resource module",
    "prlimit64": "prlimit emulation on the target (pid-checked by the handler)",
    # identity of worker threads (they act with the target's credentials)
    "getuid": "credentials", "geteuid": "credentials", "getgid": "credentials",
    "getegid": "credentials", "getgroups": "credentials",
    "setfsuid": "act as the target's fsuid", "setfsgid": "act as the target's fsgid",
    "setgroups": "act with the target's groups (per thread)",
    "setresuid": "restore the worker's identity; a unix connect's peer ids (creds.as_peer)",
    "setresgid": "restore the worker's identity; a unix connect's peer ids (creds.as_peer)",
    "capget": "read capabilities (ours; a target's after an exec)", "capset": "act with the target's capabilities",
    # sockets: the handoff and AF_UNIX emulation
    "accept4": "listeners of exec'd processes on sentry.sock",
    "accept": "listeners of exec'd processes on sentry.sock",
    "recvmsg": "SCM_RIGHTS: listener handoff",
    "sendmsg": "SCM_RIGHTS replies",
    "recvfrom": "sockets",
    "sendto": "sockets, logging",
    "bind": "bind emulation on a target's socket (pidfd_getfd): AF_UNIX paths, network policy",
    "fchdir": "a relative AF_UNIX name is bound from a scratch cwd (sentry/unixnames.py)",
    "connect": "connect emulation on a target's socket (pidfd_getfd): AF_UNIX paths, network policy",
    "listen": "listen emulation on a target's socket (network policy)",
    "sendmmsg": "sendmmsg emulation on a target's socket (network policy)",
    "getsockname": "socket emulation",
    "getpeername": "socket emulation",
    "getsockopt": "socket emulation",
    "setsockopt": "socket emulation",
    "shutdown": "sockets",
    "socketpair": "Python internals",
}

# The *at calls: allowed only with a real directory fd in each dirfd argument
# (bit 31 of the low 32 bits clear, whatever the high bits: the kernel reads
# an int), so never AT_FDCWD: what the sentry opens by name is below the
# root fd the gofer donated or the procfs fd it keeps (sentry/ownproc.py).
# Its root is an empty tmpfs anyway; this leaves nothing to resolve from it.
DIRFD_ARGS: dict[str, tuple[int, ...]] = {
    "openat": (0,), "openat2": (0,), "newfstatat": (0,), "statx": (0,), "readlinkat": (0,),
    "faccessat": (0,), "faccessat2": (0,), "mkdirat": (0,), "mknodat": (0,), "unlinkat": (0,),
    "renameat": (0, 2), "renameat2": (0, 2), "linkat": (0, 2), "symlinkat": (1,),
    "fchmodat": (0,), "fchownat": (0,), "utimensat": (0,),
}
_FD_SIGN = 0x80000000

# Deliberately absent (EPERM): execve/execveat, mount family, pivot_root,
# chroot, unshare, setns, ptrace (but on the ptrace platform, below), bpf,
# perf_event_open, userfaultfd, io_uring_*, keyctl family, *_module,
# kexec_*, reboot, swapon/off, clone with namespace flags, socket for
# anything but AF_UNIX and route/diag netlink.

# The ptrace platform only (sentry/platform/ptrace.py): the requests its
# tracer threads make, nothing else (no ATTACH, POKE*, PEEK*, DETACH...),
# and kcmp(KCMP_FILE) to check an injected fd is the file sent.
PTRACE_REQUESTS: dict[int, str] = {
    0x4206: "PTRACE_SEIZE: attach init and every exec'd process",
    7: "PTRACE_CONT: resume a stop",
    24: "PTRACE_SYSCALL: resume to the exit of an injected call",
    12: "PTRACE_GETREGS: a stopped call's number and arguments",
    13: "PTRACE_SETREGS: its answer, or an injected call",
    0x4201: "PTRACE_GETEVENTMSG: the new tid of a fork, the old tid of an exec",
    0x4208: "PTRACE_LISTEN: leave a group-stop stopped",
    0x420A: "PTRACE_GETSIGMASK: a parked caller's signal mask",
    0x420B: "PTRACE_SETSIGMASK: hold its signals meanwhile, then give them back",
}
KCMP_FILE = 0


def build_allowlist(allow: dict[str, str], default_errno: int = errno.EPERM,
                    sockets: bool = True,
                    dirfd_args: dict[str, tuple[int, ...]] | None = None) -> Any:
    """An allowlist filter for one of our own processes (sentry, gofer):
    ALLOW-style names plus the argument-checked entries every Python
    process of ours needs.  dirfd_args: names allowed only with real
    directory fds in those arguments (DIRFD_ARGS)."""
    import seccomp

    from .policy import syscall_numbers
    numbers = syscall_numbers()  # names newer than libseccomp's table, too
    f = seccomp.SyscallFilter(defaction=seccomp.ERRNO(default_errno))
    f.set_attr(seccomp.Attr.CTL_NNP, 1)
    f.set_attr(seccomp.Attr.CTL_OPTIMIZE, 2)  # binary tree: see sentry/filter.py
    dirfd_args = dirfd_args or {}
    for name in allow:
        nr = numbers[name]
        if name in dirfd_args:
            f.add_rule(seccomp.ALLOW, nr,
                       *(seccomp.Arg(i, seccomp.MASKED_EQ, _FD_SIGN, 0) for i in dirfd_args[name]))
        else:
            f.add_rule(seccomp.ALLOW, nr)
    # clone3 carries its flags in memory a filter cannot read: ENOSYS makes
    # glibc fall back to clone, whose flags are checked here.
    f.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
    # clone: threads only (CLONE_THREAD set); fork/namespaces refused.
    f.add_rule(seccomp.ALLOW, "clone", seccomp.Arg(0, seccomp.MASKED_EQ, CLONE_THREAD, CLONE_THREAD))
    if sockets:
        # socket: AF_UNIX only (socketpairs to the gofer; no network).
        f.add_rule(seccomp.ALLOW, "socket", seccomp.Arg(0, seccomp.EQ, AF_UNIX))
        # and the workload's route and sock_diag netlink sockets
        # (sentry/syscalls/net_socket.py: made without CAP_NET_ADMIN).
        for proto in (NETLINK_ROUTE, NETLINK_SOCK_DIAG):
            f.add_rule(seccomp.ALLOW, "socket", seccomp.Arg(0, seccomp.EQ, AF_NETLINK),
                       seccomp.Arg(2, seccomp.EQ, proto))
    # prctl: name, dumpable query, no_new_privs query, capability bounding reads.
    for opt in (15, 16, 3, 39, 23, 47):  # SET_NAME GET_NAME GET_DUMPABLE GET_NNP CAPBSET_READ CAP_AMBIENT
        f.add_rule(seccomp.ALLOW, "prctl", seccomp.Arg(0, seccomp.EQ, opt))
    return f


def build(default_errno: int = errno.EPERM, join_netns: bool = False,
          platform: str = "seccomp") -> Any:
    """A libseccomp filter object for the sandbox process.  join_netns:
    setns(fd, CLONE_NEWNET) too (--network=none: the sentry's threads join
    the workload's namespace, runsc_py/sandbox.py).  platform: ptrace adds
    PTRACE_REQUESTS and kcmp(KCMP_FILE)."""
    import seccomp
    f = build_allowlist(ALLOW, default_errno, dirfd_args=DIRFD_ARGS)
    if join_netns:
        f.add_rule(seccomp.ALLOW, "setns", seccomp.Arg(1, seccomp.EQ, CLONE_NEWNET))
    if platform == "ptrace":
        for req in PTRACE_REQUESTS:
            f.add_rule(seccomp.ALLOW, "ptrace", seccomp.Arg(0, seccomp.EQ, req))
        f.add_rule(seccomp.ALLOW, "kcmp", seccomp.Arg(2, seccomp.EQ, KCMP_FILE))
    return f


def build_bpf(join_netns: bool = False, platform: str = "seccomp") -> bytes:
    """build() as raw BPF, exactly what its load() would install."""
    from .filter import export_bpf
    return export_bpf(build(join_netns=join_netns, platform=platform))


def install(prepared: Any = None, join_netns: bool = False, platform: str = "seccomp") -> None:
    """Load the filter on the calling process (single-threaded: no TSYNC
    needed).  Always enforcing: there is no log-only mode to switch on.
    PREPARED: this filter's program, built for the same join_netns and
    platform, from the runtime's cache (runsc_py/filtercache.py) as a
    sentry.install.PreparedFilter, made before the sandbox confined itself,
    loaded as libseccomp's load() would."""
    if prepared is None:
        build(join_netns=join_netns, platform=platform).load()
    else:
        prepared.load_allowlist()
    log.debug("sentry: own seccomp filter installed (%d syscalls allowed, platform %s)",
              len(ALLOW) + 3, platform)


def table(join_netns: bool = False, platform: str = "seccomp") -> list[tuple[str, str]]:
    rows = sorted((name, reason + (f" (arg {', '.join(map(str, DIRFD_ARGS[name]))}: a directory fd, "
                                   "never AT_FDCWD)" if name in DIRFD_ARGS else ""))
                  for name, reason in ALLOW.items())
    if platform == "ptrace":
        rows += [("ptrace", "ptrace platform only, requests: "
                            + "; ".join(PTRACE_REQUESTS.values())),
                 ("kcmp", "ptrace platform only, KCMP_FILE: an injected fd is the file sent")]
    rows += [("clone", "threads only: CLONE_THREAD required"),
             ("socket", "AF_UNIX; AF_NETLINK with NETLINK_ROUTE or NETLINK_SOCK_DIAG"),
             ("prctl", "PR_SET_NAME, PR_GET_NAME, PR_GET_DUMPABLE, PR_GET_NO_NEW_PRIVS, "
                       "PR_CAPBSET_READ, PR_CAP_AMBIENT")]
    if join_netns:
        rows.append(("setns", "CLONE_NEWNET only (--network=none: the sentry's threads join the "
                              "workload's network namespace)"))
    return sorted(rows)
