"""The reserved descriptor of the ptrace platform, and the filter guarding it.

There is no ADDFD for ptrace.  The known way to give a tracee an fd (rr's
AutoRemoteSyscalls::send_fd; ptrace.md) is to send it with SCM_RIGHTS on a
socket whose other end the tracee holds, then turn a stopped call of the
tracee into a recvmsg on that end.  Every workload process holds such an
end at RESERVED_FD: a SOCK_DGRAM socket of a socketpair whose other end
only the sandbox holds (sentry/platform/inject.py).  It is made by the
runtime before the filters are installed (init, every `exec`), survives
execve (no close-on-exec) and is inherited by fork.

The workload must not use it: reading it would take an fd meant for
another call, closing or replacing it would break (or forge) the channel.
So a second seccomp filter, installed next to the policy's, answers every
call naming RESERVED_FD in an fd argument with EBADF, as if it were not
open.  Kernel facts relied on (seccomp(2), kernel/seccomp.c):

- Every filter of the chain runs; the action of highest precedence wins
  (KILL > TRAP > ERRNO > USER_NOTIF > TRACE > LOG > ALLOW): this filter's
  ERRNO beats the policy's ALLOW or TRACE for the same call.
- After a PTRACE_EVENT_SECCOMP stop the kernel runs the whole chain again
  on the (possibly rewritten) call, treating TRACE as ALLOW.  So the calls
  the sentry itself makes the tracee run on RESERVED_FD are TRACE rules
  here, not ERRNO: recvmsg(RESERVED_FD) and dup2/dup3 onto it.  When the
  workload makes them itself, the tracer sees the stop and answers EBADF
  (sentry/platform/ptrace.py); when the tracer rewrote a stopped call into
  one, the re-run lets it through.
- close_range(2) is always a TRACE rule: a range covering RESERVED_FD is
  split by the tracer into the ranges around it (the workload's other fds
  are closed as asked, the reserved one stays).
- fds are compared on their low 32 bits, as the kernel reads an int.

What the workload can still do with it: see it (/proc/self/fd lists fd
1023 as a socket) and count it against RLIMIT_NOFILE's numbering (an fd
table with a soft limit of 1024 has 1023 usable numbers), and pass it to
another process with SCM_RIGHTS (the filter cannot see inside sendmsg's
buffers): that process could then take fds sent to the giver.  Hence one
socket per fd table where credentials differ (inject.py replaces it when a
process lowers its credentials while sharing it, or gains some by exec),
and injections never overlap (one at a time, the queue drained before the
next).
"""

from __future__ import annotations

import errno
TYPE_CHECKING = False  # typing's, without importing typing (docs/performance.md, Start-up)
if TYPE_CHECKING:
    from typing import Any

# High, below the common soft RLIMIT_NOFILE of 1024 (dup2 needs fd < limit
# when it is installed; the runtime raises the soft limit for that moment
# if it is lower: ptrace_entry.install_reserved).  A process whose hard
# limit is lower gets the highest number it allows (`number_for`); the
# number travels with the attach request and is kept per fd table.
RESERVED_FD = 1023

# syscall -> the argument indexes holding an fd (or a directory fd).  A call
# naming RESERVED_FD there gets EBADF.  Every native or emulated call taking
# an fd is listed; denied ones are answered by the policy anyway.
FD_ARGS: dict[str, tuple[int, ...]] = {
    # I/O and attributes of held fds
    "read": (0,), "write": (0,), "readv": (0,), "writev": (0,), "pread64": (0,),
    "pwrite64": (0,), "preadv": (0,), "pwritev": (0,), "preadv2": (0,), "pwritev2": (0,),
    "lseek": (0,), "close": (0,), "fstat": (0,), "fstatfs": (0,), "fcntl": (0,), "ioctl": (0,),
    "flock": (0,), "fsync": (0,), "fdatasync": (0,), "syncfs": (0,), "ftruncate": (0,),
    "fallocate": (0,), "fadvise64": (0,), "readahead": (0,), "sync_file_range": (0,),
    "getdents": (0,), "getdents64": (0,), "fchdir": (0,), "fchmod": (0,), "fchown": (0,),
    "fgetxattr": (0,), "fsetxattr": (0,), "flistxattr": (0,), "fremovexattr": (0,),
    "mmap": (4,), "dup": (0,), "sendfile": (0, 1), "splice": (0, 2), "tee": (0, 1),
    "vmsplice": (0,), "copy_file_range": (0, 2), "cachestat": (0,),
    # sockets
    "connect": (0,), "bind": (0,), "listen": (0,), "accept": (0,), "accept4": (0,),
    "sendto": (0,), "recvfrom": (0,), "sendmsg": (0,), "sendmmsg": (0,), "recvmmsg": (0,),
    "shutdown": (0,), "getsockname": (0,), "getpeername": (0,), "getsockopt": (0,),
    "setsockopt": (0,),
    # polling and event fds
    "epoll_ctl": (0, 2), "epoll_wait": (0,), "epoll_pwait": (0,), "epoll_pwait2": (0,),
    "timerfd_settime": (0,), "timerfd_gettime": (0,), "signalfd": (0,), "signalfd4": (0,),
    "inotify_add_watch": (0,), "inotify_rm_watch": (0,), "pidfd_send_signal": (0,),
    "pidfd_getfd": (1,), "mq_timedsend": (0,), "mq_timedreceive": (0,), "mq_notify": (0,),
    "mq_getsetattr": (0,),
    # directory fds of the *at calls
    "openat": (0,), "openat2": (0,), "newfstatat": (0,), "statx": (0,), "readlinkat": (0,),
    "faccessat": (0,), "faccessat2": (0,), "mkdirat": (0,), "mknodat": (0,), "unlinkat": (0,),
    "renameat": (0, 2), "renameat2": (0, 2), "linkat": (0, 2), "symlinkat": (1,),
    "fchmodat": (0,), "fchmodat2": (0,), "fchownat": (0,), "utimensat": (0,), "futimesat": (0,),
    "execveat": (0,), "name_to_handle_at": (0,),
}
# Calls the sentry makes the tracee run on RESERVED_FD: TRACE (see above).
TRACED_FD_ARGS: dict[str, tuple[int, ...]] = {
    "recvmsg": (0,), "dup2": (0, 1), "dup3": (0, 1),
}
# Always stopped: the tracer splits a range that covers RESERVED_FD.
ALWAYS_TRACED = ("close_range",)

_LOW32 = 0xFFFFFFFF


def number_for(hard_nofile: int) -> int:
    """The reserved descriptor of a process whose hard RLIMIT_NOFILE is this
    (-1: unlimited)."""
    if hard_nofile < 0 or hard_nofile > RESERVED_FD:
        return RESERVED_FD
    return hard_nofile - 1


def build_filter(fd: int = RESERVED_FD) -> Any:
    """The guard filter of reserved descriptor fd (libseccomp object, not
    loaded): default ALLOW."""
    import seccomp

    from ..policy import syscall_numbers
    numbers = syscall_numbers()
    f = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
    f.set_attr(seccomp.Attr.ACT_BADARCH, seccomp.KILL_PROCESS)
    f.set_attr(seccomp.Attr.CTL_NNP, 0)  # install.py sets no_new_privs itself
    f.set_attr(seccomp.Attr.CTL_OPTIMIZE, 2)
    for rules, action in ((FD_ARGS, seccomp.ERRNO(errno.EBADF)), (TRACED_FD_ARGS, seccomp.TRACE(0))):
        for name, indexes in rules.items():
            for i in indexes:
                f.add_rule(action, numbers[name], seccomp.Arg(i, seccomp.MASKED_EQ, _LOW32, fd))
    for name in ALWAYS_TRACED:
        f.add_rule(seccomp.TRACE(0), numbers[name])
    return f


def load_builder() -> None:
    """Import what build_filter and build_bpf use (libseccomp's binding,
    the syscall table, the exporter) while they can still be imported."""
    import seccomp  # noqa: F401
    from ..filter import export_bpf  # noqa: F401
    from ..policy import syscall_numbers  # noqa: F401


def build_bpf(fd: int = RESERVED_FD) -> bytes:
    from ..filter import export_bpf
    return export_bpf(build_filter(fd))
