"""The workload's syscall policy AS DATA: one record per x86-64 syscall.

Three tiers, as in gVisor's syscall table:

- native: the host kernel runs the call for the workload, optionally only
  for some argument values (rules).  Small on purpose (<= 95 entries): this
  is the host kernel surface the workload can reach.  A refused argument
  mode is answered with the errno Linux gives an unprivileged process for
  it: explicit rules carry errnos (TIOCSTI -> EPERM, a raw socket without
  net_raw -> EPERM), and `otherwise` answers the values no rule matches (an
  ioctl command the file "does not support" -> ENOTTY, an unknown prctl
  option -> EINVAL, a socket family "not compiled in" -> EAFNOSUPPORT).
  The rules of one entry never overlap with different actions; `otherwise`
  is checked last (Entry.decide() is the reference semantics, and
  tests/sentry/test_policy.py runs the exported BPF against it).
- emulate: the call is sent to the sentry (SECCOMP_RET_USER_NOTIF) and a
  handler in sentry/syscalls/<family>.py implements it; a handler that does
  not exist yet answers ENOSYS (fail closed).
- deny: answered by the filter itself with the errno an unprivileged Linux
  process would get (EPERM), or ENOSYS for what should look absent.

Every x86-64 syscall not listed here is denied with ENOSYS (the default) and
appears in `policy_table()` as such.

Argument rules compare ioctl commands on their low 32 bits (snapd and flatpak
filters were bypassed by setting the high bits) and never look behind
pointers (a BPF filter cannot, and the memory could change anyway).
"""

from __future__ import annotations

import errno
TYPE_CHECKING = False  # typing's, without importing typing (docs/performance.md, Start-up)
if TYPE_CHECKING:
    from typing import Iterable, Sequence

from runsc_py.record import Record

NATIVE = "native"
EMULATE = "emulate"
DENY = "deny"

ALLOW = "allow"
NOTIFY = "notify"

# The host kernel surface the workload reaches with arguments it chooses:
# the native tier plus the emulated calls a handler lets the kernel run
# (CONTINUES).  About two thirds of Docker's default profile (312).
HOST_SURFACE_LIMIT = 200

_U64 = (1 << 64) - 1
_ENOSYS = errno.ENOSYS
_OP_TEXT = {"eq": "==", "ne": "!=", "ge": ">="}


class ArgCmp(Record, frozen=True):
    """One comparison on a syscall argument: op is eq, ne, ge or masked_eq."""

    index: int
    op: str
    value: int
    mask: int = 0

    def describe(self) -> str:
        if self.op == "masked_eq":
            return f"arg{self.index}&{self.mask:#x}=={self.value:#x}"
        return f"arg{self.index}{_OP_TEXT[self.op]}{self.value:#x}"

    def holds(self, args: Sequence[int]) -> bool:
        """The comparison on 64-bit argument values, as the filter makes it."""
        v = args[self.index] & _U64
        if self.op == "eq":
            return v == self.value
        if self.op == "ne":
            return v != self.value
        if self.op == "ge":
            return v >= self.value
        if self.op == "masked_eq":
            return v & self.mask == self.value
        raise ValueError(f"policy: unknown comparison {self.op}")


class Rule(Record, frozen=True):
    """action (ALLOW, NOTIFY or an errno) when all comparisons hold."""

    action: str | int
    args: tuple[ArgCmp, ...] = ()

    def describe(self) -> str:
        return f"{_act_text(self.action)} if {' && '.join(a.describe() for a in self.args) or 'always'}"

    def holds(self, args: Sequence[int]) -> bool:
        return all(c.holds(args) for c in self.args)


def _errname(err: int) -> str:
    # Python names 95 ENOTSUP; Linux's socket code and man pages say EOPNOTSUPP.
    return "EOPNOTSUPP" if err == errno.EOPNOTSUPP else errno.errorcode[err]


def _act_text(action: str | int) -> str:
    return action if isinstance(action, str) else _errname(action)


class Entry(Record, frozen=True):
    """One syscall.  otherwise: a native entry's answer (an errno) for the
    argument values none of its rules match."""

    name: str
    tier: str
    reason: str
    errno: int = 0
    handler: str = ""
    rules: tuple[Rule, ...] = ()
    otherwise: int = _ENOSYS  # (the field "errno" hides the module here)

    def rule_text(self) -> str:
        if self.tier == DENY:
            return _errname(self.errno)
        if self.tier == EMULATE:
            return f"notify -> {self.handler}"
        if not self.rules:
            return "always"
        return "; ".join([r.describe() for r in self.rules] + [f"else {_errname(self.otherwise)}"])

    def rule_summary(self) -> str:
        """rule_text() in a few words: how many values each action gets."""
        if self.tier != NATIVE or not self.rules:
            return self.rule_text()
        counts: dict[str, int] = {}
        for r in sorted(self.rules, key=lambda r: isinstance(r.action, int)):  # allow first
            counts[_act_text(r.action)] = counts.get(_act_text(r.action), 0) + 1
        parts = [f"{act} {n}" for act, n in counts.items()]
        return f"{', '.join(parts)}; else {_errname(self.otherwise)}"

    def decide(self, args: Sequence[int]) -> str | int:
        """ALLOW, NOTIFY or an errno for these six argument values: the
        reference semantics the filter must implement."""
        if self.tier == DENY:
            return self.errno
        if self.tier == EMULATE:
            return NOTIFY
        if not self.rules:
            return ALLOW
        for r in self.rules:
            if r.holds(args):
                return r.action
        return self.otherwise


def eq(i: int, v: int) -> ArgCmp:
    return ArgCmp(i, "eq", v)


def ne(i: int, v: int) -> ArgCmp:
    return ArgCmp(i, "ne", v)


def low32(i: int, v: int) -> ArgCmp:
    """Compare the low 32 bits only (ioctl commands, int-typed arguments)."""
    return ArgCmp(i, "masked_eq", v & 0xFFFFFFFF, 0xFFFFFFFF)


def masked(i: int, mask: int, v: int) -> ArgCmp:
    return ArgCmp(i, "masked_eq", v, mask)


def ge(i: int, v: int) -> ArgCmp:
    return ArgCmp(i, "ge", v)


def _native(name: str, reason: str, *rules: Rule, otherwise: int = errno.ENOSYS) -> Entry:
    return Entry(name, NATIVE, reason, rules=tuple(rules), otherwise=otherwise)


def _allow_if(*args: ArgCmp) -> Rule:
    return Rule(ALLOW, tuple(args))


def _emulate(name: str, handler: str, reason: str) -> Entry:
    return Entry(name, EMULATE, reason, handler=handler)


def _deny(name: str, err: int, reason: str) -> Entry:
    return Entry(name, DENY, reason, errno=err)


# --- constants used by the rules (x86-64) --------------------------------------
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
CLONE_NEW_MASK = (CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC
                  | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET)
CLONE_NEWTIME = 0x00000080  # unshare(2) only

TTY_IOCTLS = {
    "TCGETS": 0x5401, "TCSETS": 0x5402, "TCSETSW": 0x5403, "TCSETSF": 0x5404,
    "TIOCGPGRP": 0x540F, "TIOCSPGRP": 0x5410, "TIOCGWINSZ": 0x5413,
    "TIOCSWINSZ": 0x5414, "FIONREAD": 0x541B, "FIONBIO": 0x5421,
    "FIONCLEX": 0x5450, "FIOCLEX": 0x5451,
    # tcdrain/tcsendbreak, tcflow, tcflush, output queue, tcgetsid, giving up
    # the controlling tty; ptsname/unlockpt/TIOCGPTPEER on the container's ptmx
    "TCSBRK": 0x5409, "TCXONC": 0x540A, "TCFLSH": 0x540B, "TIOCOUTQ": 0x5411,
    "TCSBRKP": 0x5425, "TIOCNOTTY": 0x5422, "TIOCGSID": 0x5429,
    "TIOCGPTN": 0x80045430, "TIOCSPTLCK": 0x40045431, "TIOCGPTPEER": 0x5441,
    # async I/O ownership and queues of held fds (nginx, event loops)
    "FIOASYNC": 0x5452, "FIOQSIZE": 0x5460, "FIOSETOWN": 0x8901, "SIOCSPGRP": 0x8902,
    "FIOGETOWN": 0x8903, "SIOCGPGRP": 0x8904, "SIOCATMARK": 0x8905,
    "SIOCGSTAMP": 0x8906, "SIOCGSTAMPNS": 0x8907, "SIOCOUTQNSD": 0x894B,
    # termios, old and new forms, exclusive mode, modem lines, breaks, packet
    # mode, line discipline, signals to the foreground group (pty masters)
    "TCGETA": 0x5405, "TCSETA": 0x5406, "TCSETAW": 0x5407, "TCSETAF": 0x5408,
    "TIOCEXCL": 0x540C, "TIOCNXCL": 0x540D, "TIOCGEXCL": 0x80045440,
    "TIOCMGET": 0x5415, "TIOCMBIS": 0x5416, "TIOCMBIC": 0x5417, "TIOCMSET": 0x5418,
    "TIOCGSOFTCAR": 0x5419, "TIOCSSOFTCAR": 0x541A, "TIOCPKT": 0x5420, "TIOCGPKT": 0x80045438,
    "TIOCSETD": 0x5423, "TIOCGETD": 0x5424, "TIOCSBRK": 0x5427, "TIOCCBRK": 0x5428,
    "TCGETS2": 0x802C542A, "TCSETS2": 0x402C542B, "TCSETSW2": 0x402C542C, "TCSETSF2": 0x402C542D,
    "TIOCSIG": 0x40045436, "TIOCGDEV": 0x80045432, "TIOCGLCKTRMIOS": 0x5456,
    "TIOCGICOUNT": 0x545D,
    # files the workload holds: attributes (lsattr/chattr: the kernel checks
    # CAP_LINUX_IMMUTABLE), extents (cp and tar with sparse files), reflinks
    # between held fds, block size, entropy count of /dev/random
    "FS_IOC_GETFLAGS": 0x80086601, "FS_IOC_SETFLAGS": 0x40086602,
    "FS_IOC_GETVERSION": 0x80087601, "FS_IOC_FSGETXATTR": 0x801C581F,
    "FS_IOC_FSSETXATTR": 0x401C5820, "FS_IOC_FIEMAP": 0xC020660B, "FIGETBSZ": 0x2,
    "FICLONE": 0x40049409, "FICLONERANGE": 0x4020940D, "FIDEDUPERANGE": 0xC0189436,
    "RNDGETENTCNT": 0x80045200,
}
# Acquiring a controlling terminal: allowed as a session leader would do it
# (argument 0); "stealing" it from another session (argument 1) needs
# CAP_SYS_ADMIN and gets EPERM here, as for an unprivileged caller.
TIOCSCTTY = 0x540E
# Refused ioctls that Linux refuses an unprivileged caller with EPERM: the
# sandbox answers EPERM whatever the container's capabilities.  Any other
# refused command gets ENOTTY, what Linux answers for a command the file does
# not support.
PRIVILEGED_IOCTLS = {
    # Fakes terminal input: EPERM without CAP_SYS_ADMIN unless the tty is the
    # caller's controlling one (EIO when dev.tty.legacy_tiocsti=0).
    "TIOCSTI": 0x5412,
    "TIOCCONS": 0x541D,  # redirects console output: CAP_SYS_ADMIN
    "FIFREEZE": 0xC0045877, "FITHAW": 0xC0045878,  # freezes a filesystem: CAP_SYS_ADMIN
    # Interface, route, ARP and bridge configuration: CAP_NET_ADMIN.
    "SIOCADDRT": 0x890B, "SIOCDELRT": 0x890C, "SIOCSIFFLAGS": 0x8914,
    "SIOCSIFADDR": 0x8916, "SIOCSIFDSTADDR": 0x8918, "SIOCSIFBRDADDR": 0x891A,
    "SIOCSIFNETMASK": 0x891C, "SIOCSIFMETRIC": 0x891E, "SIOCSIFMTU": 0x8922,
    "SIOCSIFNAME": 0x8923, "SIOCSIFHWADDR": 0x8924, "SIOCADDMULTI": 0x8931,
    "SIOCDELMULTI": 0x8932, "SIOCDIFADDR": 0x8936, "SIOCSIFHWBROADCAST": 0x8937,
    "SIOCSIFTXQLEN": 0x8943, "SIOCDARP": 0x8953, "SIOCSARP": 0x8955,
    "SIOCSIFMAP": 0x8971, "SIOCBRADDBR": 0x89A0, "SIOCBRDELBR": 0x89A1,
    "SIOCBRADDIF": 0x89A2, "SIOCBRDELIF": 0x89A3,
}
TIOCSTI = PRIVILEGED_IOCTLS["TIOCSTI"]

# Read-only interface queries on the container's own network namespace
# (ifconfig, `ip link show DEV`); nothing that configures an interface.
NET_QUERY_IOCTLS = {
    "SIOCGIFNAME": 0x8910, "SIOCGIFCONF": 0x8912, "SIOCGIFFLAGS": 0x8913,
    "SIOCGIFADDR": 0x8915, "SIOCGIFDSTADDR": 0x8917, "SIOCGIFBRDADDR": 0x8919,
    "SIOCGIFNETMASK": 0x891B, "SIOCGIFMETRIC": 0x891D, "SIOCGIFMTU": 0x8921,
    "SIOCGIFHWADDR": 0x8927, "SIOCGIFINDEX": 0x8933, "SIOCGIFTXQLEN": 0x8942,
}

# prctl options act on the caller (and its threads) only; the kernel
# checks the capability-guarded ones itself (PR_SET_SECUREBITS: CAP_SETPCAP;
# PR_SET_SECCOMP: no_new_privs or CAP_SYS_ADMIN, and a filter can only
# restrict its caller further).  One is refused whatever the capabilities:
PRCTL_PRIVILEGED = {
    # Rewrites the mm's layout fields and /proc/self/exe (checkpoint tools):
    # CAP_SYS_RESOURCE, which this machine's root does not even hold.
    "PR_SET_MM": 35,
}
PR_SET_SECCOMP = 22

AF_UNIX, AF_INET, AF_INET6, AF_NETLINK, AF_PACKET = 1, 2, 10, 16, 17
SOCK_STREAM, SOCK_DGRAM, SOCK_RAW, SOCK_SEQPACKET, SOCK_PACKET = 1, 2, 3, 5, 10
SOCK_TYPE_MASK = 0xF
SOCK_MAX = 11  # types from here on: EINVAL before the family is asked
NETLINK_ROUTE = 0
NETLINK_SOCK_DIAG = 4
NETLINK_NOTIFIED = (NETLINK_ROUTE, NETLINK_SOCK_DIAG)


def _socket_type_action(family: int, typ: int, net_raw: bool) -> str | int:
    """What socket(family, typ) gets, as Linux answers an unprivileged caller
    (no CAP_NET_RAW) for the modes the sandbox refuses."""
    raw = ALLOW if net_raw else errno.EPERM  # no CAP_NET_RAW: EPERM
    if typ >= SOCK_MAX:
        return errno.EINVAL
    if family == AF_UNIX:
        # unix_create() makes SOCK_RAW a SOCK_DGRAM.
        ok = (SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET, SOCK_RAW)
        return ALLOW if typ in ok else errno.ESOCKTNOSUPPORT
    if family in (AF_INET, AF_INET6):
        if typ in (SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET):
            return ALLOW
        if typ == SOCK_RAW or (family == AF_INET and typ == SOCK_PACKET):
            return raw  # (AF_INET, SOCK_PACKET) is a packet socket
        return errno.ESOCKTNOSUPPORT
    raise ValueError(f"policy: socket family {family} has no type table")


def _socket_rules(net_raw: bool) -> tuple[Rule, ...]:
    """Every (family, type & SOCK_TYPE_MASK) of the supported families gets
    an explicit rule, so a refused type answers ESOCKTNOSUPPORT (or EINVAL,
    EPERM) as Linux would, not the entry's EAFNOSUPPORT."""
    rules = []
    for dom in (AF_UNIX, AF_INET, AF_INET6):
        for typ in range(SOCK_TYPE_MASK + 1):
            rules.append(Rule(_socket_type_action(dom, typ, net_raw),
                              (eq(0, dom), masked(1, SOCK_TYPE_MASK, typ))))
    for typ in range(SOCK_TYPE_MASK + 1):
        on_type = (eq(0, AF_NETLINK), masked(1, SOCK_TYPE_MASK, typ))
        if typ in (SOCK_RAW, SOCK_DGRAM):
            # The sentry makes NETLINK_ROUTE and NETLINK_SOCK_DIAG sockets
            # whose file lacks CAP_NET_ADMIN (dumps only); other netlink
            # protocols it answers EPROTONOSUPPORT (net_socket.socket).
            for proto in NETLINK_NOTIFIED:
                rules.append(Rule(NOTIFY, (*on_type, eq(2, proto))))
            # Other netlink families: as if not built into this kernel (one
            # rule per value below the last notified one, then ">=": a
            # filter rule compares an argument once).
            for proto in range(max(NETLINK_NOTIFIED)):
                if proto not in NETLINK_NOTIFIED:
                    rules.append(Rule(errno.EPROTONOSUPPORT, (*on_type, eq(2, proto))))
            rules.append(Rule(errno.EPROTONOSUPPORT, (*on_type, ge(2, max(NETLINK_NOTIFIED) + 1))))
        else:
            rules.append(Rule(errno.EINVAL if typ >= SOCK_MAX else errno.ESOCKTNOSUPPORT, on_type))
    # Packet sockets: CAP_NET_RAW (EPERM without it), allowed with net_raw.
    rules.append(Rule(ALLOW if net_raw else errno.EPERM, (eq(0, AF_PACKET),)))
    return tuple(rules)


def _socketpair_rules() -> tuple[Rule, ...]:
    # Linux creates the first socket, then asks the family for a pair:
    # AF_PACKET fails the creation without CAP_NET_RAW; the other families
    # the sandbox knows have no socketpair (EOPNOTSUPP).
    return (_allow_if(eq(0, AF_UNIX)),
            *(Rule(errno.EOPNOTSUPP, (eq(0, dom),)) for dom in (AF_INET, AF_INET6, AF_NETLINK)),
            Rule(errno.EPERM, (eq(0, AF_PACKET),)))


def _native_entries(net_raw: bool) -> list[Entry]:
    clone_rules = [_allow_if(masked(0, CLONE_NEW_MASK, 0))]
    # One EPERM rule per namespace bit: "any bit set" is not one comparison.
    for bit in (CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC,
                CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET):
        clone_rules.append(Rule(errno.EPERM, (masked(0, bit, bit),)))
    # unshare(2) also has CLONE_NEWTIME (in clone(2) these bits are the exit signal).
    unshare_rules = [_allow_if(masked(0, CLONE_NEW_MASK | CLONE_NEWTIME, 0))]
    for bit in (CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC,
                CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWTIME):
        unshare_rules.append(Rule(errno.EPERM, (masked(0, bit, bit),)))
    return [
        # memory
        _native("mmap", "memory management of the workload's own address space"),
        _native("munmap", "memory management"),
        _native("mprotect", "memory management (loaders, JITs)"),
        _native("brk", "heap"),
        _native("mremap", "memory management (realloc of large blocks)"),
        _native("madvise", "memory hints; MADV_DONTNEED is used by allocators"),
        _native("msync", "flush of file mappings of held fds"),
        # threads and synchronisation
        _native("futex", "thread synchronisation"),
        _native("set_robust_list", "libc thread start-up"),
        _native("set_tid_address", "libc thread start-up"),
        _native("rseq", "glibc registers restartable sequences at start-up"),
        _native("sched_yield", "scheduling hint"),
        # signals (kill/tgkill reach only the container's pid namespace)
        _native("rt_sigaction", "signal handlers"),
        _native("rt_sigprocmask", "signal masks"),
        _native("rt_sigreturn", "return from a signal handler"),
        _native("sigaltstack", "alternate signal stacks (Go, Rust)"),
        _native("rt_sigsuspend", "wait for a signal"),
        _native("rt_sigtimedwait", "wait for a signal (sigwait)"),
        _native("kill", "signals; the pid namespace confines the targets"),
        _native("tgkill", "signals to threads (raise, abort); pid namespace confined"),
        # time
        _native("clock_gettime", "time (vDSO fallback)"),
        _native("gettimeofday", "time (vDSO fallback)"),
        _native("nanosleep", "sleep"),
        _native("clock_nanosleep", "sleep"),
        _native("setitimer", "interval timers (profilers, alarm)"),
        _native("alarm", "SIGALRM timer (shell scripts, timeout)"),
        _native("timerfd_settime", "timers as fds"),
        # I/O on fds the workload holds (opened by the sentry or inherited)
        _native("read", "I/O on a held fd"),
        _native("write", "I/O on a held fd"),
        _native("readv", "I/O on a held fd"),
        _native("writev", "I/O on a held fd"),
        _native("pread64", "I/O on a held fd"),
        _native("pwrite64", "I/O on a held fd"),
        _native("lseek", "I/O on a held fd"),
        _native("close", "release a held fd"),
        _native("dup", "duplicate a held fd"),
        _native("dup2", "duplicate a held fd"),
        _native("dup3", "duplicate a held fd"),
        _native("fcntl", "fd flags and record locks"),
        _native("flock", "advisory locks on held fds"),
        _native("fsync", "flush a held fd"),
        _native("fdatasync", "flush a held fd (databases)"),
        _native("ftruncate", "resize a held file"),
        _native("fstat", "stat of a held fd: no path"),
        _native("getdents64", "list a held directory fd"),
        _native("sendfile", "copy between held fds (cp, web servers)"),
        # readiness
        _native("poll", "readiness of held fds"),
        _native("ppoll", "readiness of held fds"),
        _native("select", "readiness of held fds"),
        _native("pselect6", "readiness of held fds"),
        _native("epoll_ctl", "event loops"),
        _native("epoll_wait", "event loops"),
        _native("epoll_pwait", "event loops"),
        _native("pipe", "anonymous pipes"),
        _native("pipe2", "anonymous pipes"),
        # identity (read-only) and process groups
        _native("getpid", "own pid (namespace-relative)"),
        _native("gettid", "own tid"),
        _native("getppid", "parent pid (namespace-relative)"),
        _native("getuid", "own credentials, read-only"),
        _native("geteuid", "own credentials, read-only"),
        _native("getgid", "own credentials, read-only"),
        _native("getegid", "own credentials, read-only"),
        _native("getpgrp", "job control (shells)"),
        _native("setpgid", "job control (shells)"),
        _native("setsid", "session leaders (daemons, shells)"),
        # processes
        _native("exit", "thread exit"),
        _native("exit_group", "process exit"),
        _native("wait4", "reap children"),
        _native("waitid", "reap children"),
        _native("clone", "threads and fork, never with a CLONE_NEW* flag", *clone_rules),
        _native("vfork", "posix_spawn and busybox use it"),
        # restricted by arguments
        _native("ioctl", "terminal, fd and read-only interface-query ioctls only, compared on "
                         "the low 32 bits; capability-checked ones (TIOCSTI, SIOCSIF*...) EPERM, "
                         "others ENOTTY (the file does not support the command)",
                *(_allow_if(low32(1, v)) for v in (*TTY_IOCTLS.values(), *NET_QUERY_IOCTLS.values())),
                _allow_if(low32(1, TIOCSCTTY), eq(2, 0)),
                Rule(errno.EPERM, (low32(1, TIOCSCTTY), ne(2, 0))),
                *(Rule(errno.EPERM, (low32(1, v),)) for v in PRIVILEGED_IOCTLS.values()),
                otherwise=errno.ENOTTY),
        _native("prctl", "per-process options, checked by the kernel (PR_SET_SECCOMP: a filter "
                         "only restricts its caller, and a second listener is EBUSY); PR_SET_MM "
                         "EPERM (rewrites the mm's layout)",
                _allow_if(ne(0, PRCTL_PRIVILEGED["PR_SET_MM"])),
                Rule(errno.EPERM, (eq(0, PRCTL_PRIVILEGED["PR_SET_MM"]),))),
        _native("arch_prctl", "TLS bases, CPUID faulting, AMX and shadow-stack state of the "
                              "caller (glibc, JITs, CRIU)"),
        _native("personality", "the caller's execution domain and flags (setarch -R, "
                               "READ_IMPLIES_EXEC): its own address space"),
        _native("seccomp", "the workload's own filters (OpenSSH, Chromium, systemd, bubblewrap): a "
                           "filter can only restrict its caller further, and the kernel refuses "
                           "a second listener (EBUSY) and needs no_new_privs or CAP_SYS_ADMIN"),
        _native("unshare", "CLONE_FILES, CLONE_FS, CLONE_SYSVSEM: what the caller shares with its "
                           "own threads; never a CLONE_NEW* flag (EPERM)", *unshare_rules),
        _native("getrlimit", "read own limits"),
        _native("setrlimit", "own limits: raising a hard limit needs CAP_SYS_RESOURCE (the kernel checks)"),
        _native("prlimit64", "limits of a process of the container's pid namespace (the kernel "
                             "checks CAP_SYS_RESOURCE and the same-credentials rule)"),
        _native("getrandom", "randomness"),
        # sockets: data path native, addresses (bind/connect) emulated
        _native("socket", "AF_UNIX/INET/INET6 stream, dgram, seqpacket; raw and packet "
                          "only with net_raw (else EPERM, as without CAP_NET_RAW); other types "
                          "ESOCKTNOSUPPORT, other families EAFNOSUPPORT (as if not built into "
                          "the kernel); AF_NETLINK notified: NETLINK_ROUTE/SOCK_DIAG made by "
                          "the sentry without CAP_NET_ADMIN (dumps only), other protocols "
                          "EPROTONOSUPPORT",
                *_socket_rules(net_raw), otherwise=errno.EAFNOSUPPORT).replace(handler="net_socket.socket"),
        _native("socketpair", "AF_UNIX pairs only; INET/INET6/NETLINK EOPNOTSUPP (no pairs in Linux "
                              "either), AF_PACKET EPERM, other families EAFNOSUPPORT",
                *_socketpair_rules(), otherwise=errno.EAFNOSUPPORT),
        _native("accept", "socket data path"),
        _native("accept4", "socket data path"),
        _native("shutdown", "socket data path"),
        _native("sendto", "socket data path without an address (send); with one, notified: "
                          "checked against the network policy and sent by the sentry",
                _allow_if(eq(4, 0)), Rule(NOTIFY, (ne(4, 0),))).replace(handler="net_send.sendto"),
        _native("recvfrom", "socket data path"),
        _native("recvmsg", "socket data path"),
        _native("getsockopt", "socket options"),
        _native("setsockopt", "socket options"),
        _native("getsockname", "socket addresses"),
        _native("getpeername", "socket addresses"),
        _native("recvmmsg", "socket data path (several datagrams at once)"),
        *_more_native_entries(),
    ]


def _more_native_entries() -> list[Entry]:
    """What real programs use beyond the basics (issue 15), each acting only
    on the caller, its held fds, or namespaces of the container."""
    return [
        # memory of the caller
        _native("mincore", "residency of the caller's own pages"),
        _native("mlock", "lock own pages (RLIMIT_MEMLOCK; the kernel checks)"),
        _native("mlock2", "lock own pages (RLIMIT_MEMLOCK)"),
        _native("munlock", "unlock own pages"),
        _native("mlockall", "lock own address space (RLIMIT_MEMLOCK; databases)"),
        _native("munlockall", "unlock own address space"),
        _native("membarrier", "memory barriers across the caller's threads (JITs, RCU libraries)"),
        _native("pkey_mprotect", "memory protection keys of own pages"),
        _native("pkey_alloc", "memory protection keys"),
        _native("pkey_free", "memory protection keys"),
        _native("remap_file_pages", "deprecated, emulated by the kernel with mmap"),
        _native("map_shadow_stack", "shadow stacks of the caller's threads (glibc with CET)"),
        _native("mseal", "seal own mappings against change"),
        _native("get_mempolicy", "read own NUMA policy"),
        _native("set_mempolicy", "own NUMA policy (numactl); the kernel checks the node sets"),
        _native("mbind", "NUMA policy of own mappings; moving others' pages needs CAP_SYS_NICE"),
        # processes and threads (the container's pid namespace confines pids)
        _native("fork", "old-style fork (no flags)"),
        _native("tkill", "signal to a thread (old threading libraries)"),
        _native("restart_syscall", "restart a call interrupted by a stop or a signal"),
        _native("pidfd_send_signal", "signal through a pidfd of a container process"),
        _native("pidfd_getfd", "fd of another container process (PTRACE_MODE_ATTACH checked by the "
                               "kernel); only container processes can be named"),
        _native("close_range", "close held fds (before exec)"),
        # scheduling (the kernel checks CAP_SYS_NICE for raising priorities)
        _native("setpriority", "nice value (PAM's pam_limits, nice, renice)"),
        _native("sched_setparam", "scheduling of container processes"),
        _native("sched_setscheduler", "scheduling policy (realtime needs CAP_SYS_NICE)"),
        _native("sched_setattr", "scheduling attributes (deadline needs CAP_SYS_NICE)"),
        _native("ioprio_set", "I/O priority; the realtime class needs CAP_SYS_ADMIN (the kernel checks)"),
        # signals and time
        _native("rt_sigqueueinfo", "queued signal to a container process"),
        _native("rt_tgsigqueueinfo", "queued signal to a container thread"),
        _native("pause", "wait for a signal"),
        _native("getitimer", "interval timers"),
        _native("timer_create", "POSIX timers"),
        _native("timer_settime", "POSIX timers"),
        _native("timer_gettime", "POSIX timers"),
        _native("timer_getoverrun", "POSIX timers"),
        _native("timer_delete", "POSIX timers"),
        # I/O on held fds
        _native("epoll_pwait2", "event loops with a timespec timeout"),
        _native("getdents", "list a held directory fd (old ABI)"),
        _native("fallocate", "space of a held file"),
        _native("copy_file_range", "copy between held fds (cp, shutil)"),
        _native("splice", "move data between held fds through a pipe"),
        _native("tee", "duplicate pipe data"),
        _native("vmsplice", "user pages into a pipe"),
        _native("preadv", "vectored positional I/O on a held fd"),
        _native("pwritev", "vectored positional I/O on a held fd"),
        _native("preadv2", "vectored positional I/O with flags"),
        _native("pwritev2", "vectored positional I/O with flags"),
        _native("futex_waitv", "wait on several futexes (Wine, Proton)"),
        _native("futex_wake", "futex2"),
        _native("futex_wait", "futex2"),
        _native("futex_requeue", "futex2"),
        _native("inotify_init", "a new inotify fd; watches are added by path (emulated)"),
        _native("inotify_init1", "a new inotify fd"),
        # Linux AIO: operations on held fds only (not io_uring: no paths, no sockets by name)
        _native("io_setup", "Linux AIO context (databases, libaio)"),
        _native("io_destroy", "Linux AIO"),
        _native("io_submit", "Linux AIO on held fds"),
        _native("io_getevents", "Linux AIO"),
        _native("io_pgetevents", "Linux AIO"),
        _native("io_cancel", "Linux AIO"),
        # System V IPC and POSIX message queues: the container's IPC namespace
        _native("shmget", "System V shared memory of the IPC namespace (PostgreSQL)"),
        _native("shmat", "System V shared memory"),
        _native("shmdt", "System V shared memory"),
        _native("shmctl", "System V shared memory"),
        _native("semget", "System V semaphores of the IPC namespace"),
        _native("semop", "System V semaphores"),
        _native("semtimedop", "System V semaphores"),
        _native("semctl", "System V semaphores"),
        _native("msgget", "System V message queues of the IPC namespace"),
        _native("msgsnd", "System V message queues"),
        _native("msgrcv", "System V message queues"),
        _native("msgctl", "System V message queues"),
        _native("mq_open", "POSIX message queue: a name in the IPC namespace's mqueue, not a path"),
        _native("mq_timedsend", "POSIX message queues"),
        _native("mq_timedreceive", "POSIX message queues"),
        _native("mq_notify", "POSIX message queues"),
        # identity, read-only
        _native("getrusage", "own resource usage"),
        _native("umask", "own file mode mask (the sentry reads it when it creates files)"),
        _native("getcwd", "own cwd, printed by the kernel relative to its own root"),
        # confinement the workload applies to itself
        _native("landlock_create_ruleset", "Landlock: the caller restricts itself"),
        _native("landlock_add_rule", "Landlock: the caller restricts itself"),
        _native("landlock_restrict_self", "Landlock: the caller restricts itself"),
        _native("lsm_get_self_attr", "the caller's own LSM attributes"),
        _native("lsm_set_self_attr", "the caller's own LSM attributes (the LSM checks)"),
        # obsolete interfaces Linux still answers
    ]


# Handlers are "module.function" under sentry.syscalls.
_EMULATED: list[tuple[str, str, str]] = [
    # answered by the sentry to keep the host kernel surface small: rare,
    # and cheap to answer from outside (each module says how)
    ("sysfs", "sys_info.sysfs", "obsolete filesystem-type query: answered by the sentry (the same on every side)"),
    ("ustat", "sys_info.ustat", "obsolete free-space query by device: answered by the sentry"),
    ("lsm_list_modules", "sys_info.lsm_list_modules", "which LSMs run: the same for everyone"),
    ("time", "sys_time.time", "wall clock (glibc uses the vDSO): answered by the sentry"),
    ("times", "sys_time.times", "the caller's CPU times, from its /proc stat"),
    ("clock_getres", "sys_time.clock_getres", "clock resolution (glibc uses the vDSO)"),
    ("sched_getparam", "proc_sched.sched_getparam", "scheduling state of a container task, read by the sentry"),
    ("sched_getscheduler", "proc_sched.sched_getscheduler", "scheduling state of a container task"),
    ("sched_getattr", "proc_sched.sched_getattr", "scheduling state of a container task"),
    ("sched_rr_get_interval", "proc_sched.sched_rr_get_interval", "scheduling state of a container task"),
    ("sched_get_priority_max", "proc_sched.sched_get_priority_max", "priority range of a policy"),
    ("sched_get_priority_min", "proc_sched.sched_get_priority_min", "priority range of a policy"),
    ("getpriority", "proc_sched.getpriority", "nice values of container tasks, read by the sentry"),
    ("ioprio_get", "proc_sched.ioprio_get", "I/O priorities of container tasks, read by the sentry"),
    ("rt_sigpending", "proc_creds.rt_sigpending", "the caller's pending signals, from its /proc status"),
    ("signalfd", "fs_fd.signalfd", "made by the sentry and installed (an fd reads its reader's signals)"),
    ("signalfd4", "fs_fd.signalfd4", "made by the sentry and installed"),
    ("epoll_create", "fs_fd.epoll_create", "made by the sentry and installed"),
    ("eventfd", "fs_fd.eventfd", "made by the sentry and installed"),
    ("get_robust_list", "proc_thread.get_robust_list", "the caller's own list, read by the sentry"),
    ("readahead", "fs_io.readahead", "on the sentry's copy of the held fd"),
    ("fadvise64", "fs_io.fadvise64", "on the sentry's copy of the held fd (cp: once per file)"),
    ("sync_file_range", "fs_io.sync_file_range", "on the sentry's copy of the held fd"),
    ("syncfs", "fs_io.syncfs", "on the sentry's copy of the held fd"),
    ("sync", "fs_io.sync", "flushes every filesystem: done by the sentry"),
    ("cachestat", "fs_io.cachestat", "on the sentry's copy of the held fd"),
    ("getresuid", "proc_creds.getresuid", "the caller's ids, from its /proc status"),
    ("getresgid", "proc_creds.getresgid", "the caller's ids, from its /proc status"),
    ("getgroups", "proc_creds.getgroups", "the caller's groups, from its /proc status"),
    ("capget", "proc_creds.capget", "capabilities of a container task, from its /proc status"),
    ("getpgid", "proc_creds.getpgid", "process group of a container task (NSpgid)"),
    ("getsid", "proc_creds.getsid", "session of a container task (NSsid)"),
    ("inotify_rm_watch", "fs_fd.inotify_rm_watch", "on the sentry's copy of the held inotify fd"),
    ("epoll_create1", "fs_fd.epoll_create1", "made by the sentry and installed (once per event loop)"),
    ("eventfd2", "fs_fd.eventfd2", "made by the sentry and installed (once per event loop)"),
    ("timerfd_create", "fs_fd.timerfd_create", "made by the sentry and installed"),
    ("timerfd_gettime", "fs_fd.timerfd_gettime", "on the sentry's copy of the held timerfd"),
    ("pidfd_open", "fs_fd.pidfd_open", "a pidfd of the container process named, installed"),
    ("getcpu", "proc_sched.getcpu", "the CPU the caller runs on, from its /proc stat (glibc uses the vDSO)"),
    ("sched_setaffinity", "proc_sched.sched_setaffinity", "the kernel's owner-or-CAP_SYS_NICE rule checked, "
                          "then set by the sentry (the cpuset still bounds it)"),
    ("mq_unlink", "fs_fd.mq_unlink", "a name of the container's IPC namespace, removed with the caller's credentials"),
    ("memfd_create", "fs_fd.memfd_create", "made by the sentry and installed (the name is a label)"),
    ("memfd_secret", "fs_fd.memfd_secret", "made by the sentry and installed"),
    ("mq_getsetattr", "fs_fd.mq_getsetattr", "on the sentry's copy of the held queue fd"),
    ("getxattrat", "fs_attr.getxattrat", "path-taking (Linux 6.13)"),
    ("setxattrat", "fs_attr.setxattrat", "path-taking (Linux 6.13)"),
    ("listxattrat", "fs_attr.listxattrat", "path-taking (Linux 6.13)"),
    ("removexattrat", "fs_attr.removexattrat", "path-taking (Linux 6.13)"),
    ("sched_getaffinity", "proc_sched.sched_getaffinity", "the CPUs the container counts (its quota and cpuset), as /proc/cpuinfo and nproc say"),
    # file open family: resolved by the sentry inside the container root
    ("open", "fs_open.open_", "path resolved in the container root; fd injected with ADDFD|SEND"),
    ("openat", "fs_open.openat", "path resolved in the container root; fd injected"),
    ("openat2", "fs_open.openat2", "path resolved in the container root; fd injected"),
    ("creat", "fs_open.creat", "path resolved in the container root; fd injected"),
    # stat family
    ("stat", "fs_stat.stat", "path resolved in the container root"),
    ("lstat", "fs_stat.lstat", "path resolved in the container root"),
    ("newfstatat", "fs_stat.newfstatat", "path resolved in the container root"),
    ("statx", "fs_stat.statx", "path resolved in the container root"),
    ("access", "fs_stat.access", "path resolved in the container root, target credentials"),
    ("faccessat", "fs_stat.faccessat", "path resolved in the container root, target credentials"),
    ("faccessat2", "fs_stat.faccessat2", "path resolved in the container root, target credentials"),
    ("readlink", "fs_stat.readlink", "path resolved in the container root"),
    ("readlinkat", "fs_stat.readlinkat", "path resolved in the container root"),
    ("statfs", "fs_stat.statfs", "path resolved in the container root"),
    ("fstatfs", "fs_stat.fstatfs", "filesystem facts of a held fd"),
    # directory and name changes
    ("mkdir", "fs_dir.mkdir", "path-taking"),
    ("mkdirat", "fs_dir.mkdirat", "path-taking"),
    ("rmdir", "fs_dir.rmdir", "path-taking"),
    ("unlink", "fs_dir.unlink", "path-taking"),
    ("unlinkat", "fs_dir.unlinkat", "path-taking"),
    ("rename", "fs_dir.rename", "path-taking"),
    ("renameat", "fs_dir.renameat", "path-taking"),
    ("renameat2", "fs_dir.renameat2", "path-taking"),
    ("link", "fs_dir.link", "path-taking"),
    ("linkat", "fs_dir.linkat", "path-taking"),
    ("symlink", "fs_dir.symlink", "path-taking"),
    ("symlinkat", "fs_dir.symlinkat", "path-taking"),
    ("mknod", "fs_dir.mknod", "path-taking; device nodes refused"),
    ("mknodat", "fs_dir.mknodat", "path-taking; device nodes refused"),
    ("chdir", "fs_dir.chdir", "kernel state of the target: checked, then continued (see fs_dir)"),
    ("fchdir", "fs_dir.fchdir", "kernel state of the target: checked, then continued (see fs_dir)"),
    # attributes
    ("chmod", "fs_attr.chmod", "path-taking"),
    ("fchmod", "fs_attr.fchmod", "metadata change on the host"),
    ("fchmodat", "fs_attr.fchmodat", "path-taking"),
    ("fchmodat2", "fs_attr.fchmodat2", "path-taking"),
    ("chown", "fs_attr.chown", "path-taking"),
    ("fchown", "fs_attr.fchown", "metadata change on the host"),
    ("lchown", "fs_attr.lchown", "path-taking"),
    ("fchownat", "fs_attr.fchownat", "path-taking"),
    ("truncate", "fs_attr.truncate", "path-taking"),
    ("utime", "fs_attr.utime", "path-taking"),
    ("utimes", "fs_attr.utimes", "path-taking"),
    ("utimensat", "fs_attr.utimensat", "path-taking"),
    ("futimesat", "fs_attr.futimesat", "path-taking"),
    ("setxattr", "fs_attr.setxattr", "path-taking"),
    ("lsetxattr", "fs_attr.lsetxattr", "path-taking"),
    ("getxattr", "fs_attr.getxattr", "path-taking"),
    ("lgetxattr", "fs_attr.lgetxattr", "path-taking"),
    ("listxattr", "fs_attr.listxattr", "path-taking"),
    ("llistxattr", "fs_attr.llistxattr", "path-taking"),
    ("removexattr", "fs_attr.removexattr", "path-taking"),
    ("lremovexattr", "fs_attr.lremovexattr", "path-taking"),
    ("fgetxattr", "fs_attr.fgetxattr", "fd-taking: the native tier is full"),
    ("flistxattr", "fs_attr.flistxattr", "fd-taking: the native tier is full"),
    ("fsetxattr", "fs_attr.fsetxattr", "metadata change on the host (an ACL changes permissions)"),
    ("fremovexattr", "fs_attr.fremovexattr", "metadata change on the host (an ACL changes permissions)"),
    ("inotify_add_watch", "fs_attr.inotify_add_watch", "path-taking"),
    # exec: the kernel runs it (the filter survives execve; no_new_privs
    # blocks privilege gain); notified so the sentry sees every exec
    ("execve", "proc_exec.execve", "observed, then continued: not a security decision"),
    ("execveat", "proc_exec.execveat", "observed, then continued: not a security decision"),
    # system information
    ("sysinfo", "sys_info.sysinfo", "container view of memory and load"),
    # sockets with addresses
    ("bind", "net_socket.bind", "AF_UNIX paths resolved in the container root; IP addresses "
             "checked against the network policy (ingress), bound by the sentry"),
    ("connect", "net_socket.connect", "AF_UNIX paths resolved in the container root; IP addresses "
                "checked against the network policy (egress), connected by the sentry"),
    ("listen", "net_socket.listen", "the bound address checked against the network policy "
               "(ingress), listen made by the sentry"),
    ("sendmsg", "net_send.sendmsg", "the destination is inside struct msghdr: copied once, checked "
                "against the network policy and sent by the sentry (SCM_RIGHTS/CREDENTIALS translated)"),
    ("sendmmsg", "net_send.sendmmsg", "as sendmsg, for each message"),
    # credentials change: decide on the private copy of the arguments
    ("setuid", "proc_creds.setuid", "credential changes"),
    ("setgid", "proc_creds.setgid", "credential changes"),
    ("setreuid", "proc_creds.setreuid", "credential changes"),
    ("setregid", "proc_creds.setregid", "credential changes"),
    ("setresuid", "proc_creds.setresuid", "credential changes"),
    ("setresgid", "proc_creds.setresgid", "credential changes"),
    ("setgroups", "proc_creds.setgroups", "credential changes"),
    ("setfsuid", "proc_creds.setfsuid", "credential changes (the fs ids the sentry acts with)"),
    ("setfsgid", "proc_creds.setfsgid", "credential changes (the fs ids the sentry acts with)"),
    ("capset", "proc_creds.capset", "capability changes"),
]

# The emulated calls whose handler may answer SECCOMP_USER_NOTIF_FLAG_CONTINUE
# (the kernel then runs the call itself), and why that decides nothing.  The
# kernel's own documentation says CONTINUE cannot implement a security
# policy: between our look and its run, another thread may rewrite what a
# pointer argument points at.  So it is only used where every argument is a
# value in the notification and the call acts on the caller's own state, or
# where the kernel resolves the pointer again in the caller's own root and
# mount namespace (the container's), with its credentials.  A handler
# continues itself (never through a helper): tests/sentry/test_policy.py
# checks this table against the handlers' code, both ways, and
# `runsc-py policy --continue` prints it (the README's list is made from it).
CONTINUES: dict[str, str] = {
    "open": "O_PATH opens only, after the sentry resolved them (ADDFD cannot install O_PATH "
            "files). The kernel resolves the path again in the caller's own root and mount "
            "namespace: a rewrite reaches only what the container's mounts show (with the host's "
            "/proc bound in, a host file's O_PATH fd, whose only native use is fstat); every "
            "other use of an O_PATH fd is notified and checks its object is the container's",
    "openat": "O_PATH opens only, after the sentry resolved them, as for open",
    "openat2": "O_PATH opens only, after the sentry resolved them, as for open",
    "execve": "after the sentry checked the binary and a #! interpreter in the root; the kernel "
              "resolves the path again in the caller's own root and mount namespace, so a rewrite "
              "reaches only what the container's mounts show (with the host's /proc bound in, a "
              "host executable, which then runs under the same filter and namespaces)",
    "execveat": "as execve; the dirfd is the caller's own, and an fexecve'd fd's object must be "
                "the container's",
    "chdir": "the cwd is the caller's own kernel state; the sentry resolved it first, and every "
             "later use of the cwd checks it is a directory of the container (paths.contained), "
             "so a rewritten path gains nothing",
    "setuid": "integer argument; the kernel checks CAP_SETUID itself; the sentry drops its cached "
              "credentials first",
    "setgid": "integer argument; the kernel checks CAP_SETGID itself",
    "setreuid": "integer arguments; the kernel checks CAP_SETUID itself",
    "setregid": "integer arguments; the kernel checks CAP_SETGID itself",
    "setresuid": "integer arguments; the kernel checks CAP_SETUID itself",
    "setresgid": "integer arguments; the kernel checks CAP_SETGID itself",
    "setgroups": "the caller's own groups; the kernel checks CAP_SETGID itself",
    "setfsuid": "integer argument; the kernel checks CAP_SETUID itself; the sentry drops its cached "
                "credentials first",
    "setfsgid": "integer argument; the kernel checks CAP_SETGID itself",
    "fchdir": "integer argument; the caller's own fd and cwd, checked as for chdir",
    "capset": "the caller's own capabilities; the kernel allows only dropping or what it holds",
}


_DENIED: list[tuple[str, int, str]] = [
    ("statmount", errno.ENOSYS, "mount details by id in the caller's mount namespace (Linux 6.8): "
                                "as on older kernels, tools read /proc/self/mountinfo instead"),
    ("listmount", errno.ENOSYS, "mount ids of the caller's namespace (Linux 6.8): as on older "
                                "kernels, tools read /proc/self/mountinfo instead"),
    ("open_tree_attr", errno.EPERM, "new mount API: CAP_SYS_ADMIN"),
    ("file_getattr", errno.ENOSYS, "inode flags by path (Linux 6.17): as on older kernels, "
                                   "FS_IOC_FSGETXATTR on a held fd does the same"),
    ("file_setattr", errno.ENOSYS, "inode flags by path (Linux 6.17): as on older kernels, "
                                   "FS_IOC_FSSETXATTR on a held fd does the same"),
    ("migrate_pages", errno.EPERM, "moves another process's pages between host NUMA nodes: refused, as Docker's default profile does without CAP_SYS_NICE"),
    ("move_pages", errno.EPERM, "moves pages between host NUMA nodes: refused, as Docker's default profile does without CAP_SYS_NICE"),
    ("set_mempolicy_home_node", errno.EPERM, "host NUMA placement: refused, as Docker's default profile does"),
    ("bpf", errno.EPERM, "eBPF: large kernel attack surface; unprivileged bpf is disabled"),
    ("perf_event_open", errno.EPERM, "kernel profiling interface; side channels"),
    ("userfaultfd", errno.EPERM, "used to widen kernel race windows in exploits"),
    ("io_uring_setup", errno.ENOSYS, "io_uring runs file/socket ops with no per-syscall seccomp check"),
    ("io_uring_enter", errno.ENOSYS, "io_uring: bypasses the filter"),
    ("io_uring_register", errno.ENOSYS, "io_uring: bypasses the filter"),
    ("kexec_load", errno.EPERM, "replaces the running kernel: CAP_SYS_BOOT"),
    ("kexec_file_load", errno.EPERM, "replaces the running kernel: CAP_SYS_BOOT"),
    ("init_module", errno.EPERM, "loads kernel code: CAP_SYS_MODULE"),
    ("finit_module", errno.EPERM, "loads kernel code: CAP_SYS_MODULE"),
    ("delete_module", errno.EPERM, "unloads kernel code: CAP_SYS_MODULE"),
    ("create_module", errno.ENOSYS, "obsolete"),
    ("get_kernel_syms", errno.ENOSYS, "obsolete"),
    ("query_module", errno.ENOSYS, "obsolete"),
    ("keyctl", errno.EPERM, "kernel keyring is not namespaced"),
    ("add_key", errno.EPERM, "kernel keyring is not namespaced"),
    ("request_key", errno.EPERM, "kernel keyring is not namespaced"),
    ("open_by_handle_at", errno.EPERM, "opens files by handle, bypassing paths (shocker): CAP_DAC_READ_SEARCH"),
    ("name_to_handle_at", errno.EPERM, "file handles, the other half of open_by_handle_at"),
    ("mount", errno.EPERM, "mount table changes: CAP_SYS_ADMIN"),
    ("umount2", errno.EPERM, "mount table changes: CAP_SYS_ADMIN"),
    ("pivot_root", errno.EPERM, "mount table changes: CAP_SYS_ADMIN"),
    ("move_mount", errno.EPERM, "new mount API: CAP_SYS_ADMIN"),
    ("fsopen", errno.EPERM, "new mount API: CAP_SYS_ADMIN"),
    ("fsmount", errno.EPERM, "new mount API: CAP_SYS_ADMIN"),
    ("fsconfig", errno.EPERM, "new mount API: CAP_SYS_ADMIN"),
    ("fspick", errno.EPERM, "new mount API: CAP_SYS_ADMIN"),
    ("open_tree", errno.EPERM, "new mount API: CAP_SYS_ADMIN"),
    ("mount_setattr", errno.EPERM, "new mount API: CAP_SYS_ADMIN"),
    ("setns", errno.EPERM, "joining namespaces: not in the sandbox"),
    ("clone3", errno.ENOSYS, "flags live in memory a filter cannot check; libc falls back to clone"),
    ("ptrace", errno.EPERM, "process inspection: CAP_SYS_PTRACE"),
    ("process_vm_readv", errno.EPERM, "cross-process memory access"),
    ("process_vm_writev", errno.EPERM, "cross-process memory access"),
    ("process_madvise", errno.EPERM, "cross-process memory hints"),
    ("process_mrelease", errno.EPERM, "cross-process memory reaping"),
    ("kcmp", errno.EPERM, "kernel pointer ordering leak"),
    ("swapon", errno.EPERM, "CAP_SYS_ADMIN"),
    ("swapoff", errno.EPERM, "CAP_SYS_ADMIN"),
    ("reboot", errno.EPERM, "CAP_SYS_BOOT"),
    ("acct", errno.EPERM, "process accounting: CAP_SYS_PACCT"),
    ("quotactl", errno.EPERM, "disk quotas: CAP_SYS_ADMIN"),
    ("quotactl_fd", errno.EPERM, "disk quotas: CAP_SYS_ADMIN"),
    ("syslog", errno.EPERM, "kernel log: CAP_SYSLOG; leaks kernel addresses"),
    ("iopl", errno.EPERM, "I/O port access: CAP_SYS_RAWIO"),
    ("ioperm", errno.EPERM, "I/O port access: CAP_SYS_RAWIO"),
    ("modify_ldt", errno.ENOSYS, "16-bit segments: old exploit vector, unneeded by 64-bit code"),
    ("settimeofday", errno.EPERM, "host clock: CAP_SYS_TIME"),
    ("clock_settime", errno.EPERM, "host clock: CAP_SYS_TIME"),
    ("adjtimex", errno.EPERM, "host clock: CAP_SYS_TIME"),
    ("clock_adjtime", errno.EPERM, "host clock: CAP_SYS_TIME"),
    ("lookup_dcookie", errno.ENOSYS, "obsolete (oprofile)"),
    ("nfsservctl", errno.ENOSYS, "removed from Linux"),
    ("uselib", errno.ENOSYS, "obsolete a.out loader"),
    ("_sysctl", errno.ENOSYS, "removed from Linux"),
    ("vhangup", errno.EPERM, "CAP_SYS_TTY_CONFIG"),
    ("fanotify_init", errno.EPERM, "CAP_SYS_ADMIN"),
    ("fanotify_mark", errno.EPERM, "CAP_SYS_ADMIN"),
    ("chroot", errno.EPERM, "per-process roots are not tracked by the sentry's resolver yet"),
    ("afs_syscall", errno.ENOSYS, "unimplemented in Linux"),
    ("tuxcall", errno.ENOSYS, "unimplemented in Linux"),
    ("security", errno.ENOSYS, "unimplemented in Linux"),
    ("vserver", errno.ENOSYS, "unimplemented in Linux"),
    ("getpmsg", errno.ENOSYS, "unimplemented in Linux"),
    ("putpmsg", errno.ENOSYS, "unimplemented in Linux"),
    ("epoll_ctl_old", errno.ENOSYS, "unimplemented in Linux"),
    ("epoll_wait_old", errno.ENOSYS, "unimplemented in Linux"),
    ("set_thread_area", errno.ENOSYS, "32-bit TLS; x86-64 code uses arch_prctl"),
    ("get_thread_area", errno.ENOSYS, "32-bit TLS; x86-64 code uses arch_prctl"),
]

# The dangerous families: must all be in the deny tier (checked by tests).
DANGEROUS = (
    "bpf", "perf_event_open", "userfaultfd", "io_uring_setup", "io_uring_enter",
    "io_uring_register", "kexec_load", "kexec_file_load", "init_module", "finit_module",
    "delete_module", "keyctl", "add_key", "request_key", "open_by_handle_at",
    "name_to_handle_at", "mount", "umount2", "pivot_root", "move_mount", "fsopen",
    "fsmount", "fsconfig", "fspick", "open_tree", "mount_setattr", "setns",
    "ptrace", "process_vm_readv", "process_vm_writev", "swapon", "swapoff", "reboot",
    "acct", "quotactl", "syslog", "iopl", "ioperm", "modify_ldt", "settimeofday",
    "clock_settime", "adjtimex", "clock_adjtime", "lookup_dcookie", "nfsservctl", "clone3",
)


class PolicyOptions(Record, frozen=True):
    """Options that change the table.

    net_raw: allow SOCK_RAW for AF_INET/AF_INET6 (like --net-raw).
    uts_private: the container has a UTS namespace of its own (not the
    host's): sethostname/setdomainname are then its own, native.
    uname_release: the kernel release uname(2) reports; "" (the default):
    the host's own, and uname is native, so that version checks agree with
    the features the workload really gets.
    trace_refused: --strace: every answer the filter would give itself (a
    deny entry, an errno of an argument rule) goes to the sentry instead,
    which gives the same errno and logs it (sentry/strace.py).  A refused
    call then costs a notification (~15-30 us) instead of ~0.1 us: a
    debugging mode, as strace itself is.
    notify_extra: name -> handler: move a syscall to the emulate tier (tests
    and benchmarks: e.g. {"getppid": "bench.null"}).
    """

    net_raw: bool = False
    uts_private: bool = False
    uname_release: str = ""
    trace_refused: bool = False
    notify_extra: tuple[tuple[str, str], ...] = ()


def host_surface(table: dict[str, Entry]) -> list[str]:
    """The calls the workload reaches the host kernel with, with arguments
    it chooses: native, and continued after a look (CONTINUES)."""
    return sorted(n for n, e in table.items()
                  if e.tier == NATIVE or (e.tier == EMULATE and n in CONTINUES))


def _check_unique(entries: Iterable[Entry]) -> dict[str, Entry]:
    table: dict[str, Entry] = {}
    for e in entries:
        if e.name in table:
            raise ValueError(f"policy: {e.name}: listed in tiers {table[e.name].tier} and {e.tier}")
        table[e.name] = e
    return table


def _option_entries(options: PolicyOptions) -> list[Entry]:
    """The entries whose tier an option decides."""
    out = []
    if options.uname_release:
        out.append(_emulate("uname", "sys_info.uname",
                            f"reports release {options.uname_release} (set by the operator)"))
    else:
        out.append(_native("uname", "the host's release and the UTS namespace's names: version "
                                    "checks agree with what the workload really gets"))
    for name, what in (("sethostname", "host name"), ("setdomainname", "NIS domain name")):
        if options.uts_private:
            out.append(_native(name, f"the container's own UTS namespace's {what} (the kernel "
                                     "checks CAP_SYS_ADMIN over it)"))
        else:
            out.append(_deny(name, errno.EPERM, f"the container shares the host's UTS namespace: "
                                                f"its {what} is the host's"))
    return out


def _raw_entries(options: PolicyOptions) -> list[Entry]:
    return (_native_entries(options.net_raw)
            + [_emulate(n, h, r) for n, h, r in _EMULATED]
            + [_deny(n, err, r) for n, err, r in _DENIED]
            + _option_entries(options))


def build_table(options: PolicyOptions | None = None) -> dict[str, Entry]:
    """name -> Entry; raises ValueError if a name is listed twice."""
    options = options or PolicyOptions()
    table = _check_unique(_raw_entries(options))
    for name, handler in options.notify_extra:
        old = table.get(name)
        table[name] = old.replace(tier=EMULATE, handler=handler, rules=(), errno=0) if old \
            else _emulate(name, handler, "moved to the emulate tier by an option")
    return table


# Syscalls newer than libseccomp 2.5.4's table (number, name).
_EXTRA_NAMES = {457: "statmount", 458: "listmount", 459: "lsm_get_self_attr",
                460: "lsm_set_self_attr", 461: "lsm_list_modules", 462: "mseal",
                463: "setxattrat", 464: "getxattrat", 465: "listxattrat", 466: "removexattrat",
                467: "open_tree_attr", 468: "file_getattr", 469: "file_setattr"}


def syscall_numbers() -> dict[str, int]:
    """Every x86-64 syscall name -> number (sentry/sysno.py: libseccomp's
    table plus newer ones, written out)."""
    from .sysno import NUMBERS
    return dict(NUMBERS)


def libseccomp_numbers() -> dict[str, int]:
    """syscall_numbers() as libseccomp resolves them now (sentry/sysno.py
    is this, written out; tests/sentry/test_policy.py compares them)."""
    import seccomp

    out: dict[str, int] = {}
    for nr in range(0, 512):
        try:
            name = seccomp.resolve_syscall(seccomp.Arch.X86_64, nr)
        except (ValueError, RuntimeError, TypeError):
            continue
        out[name.decode() if isinstance(name, bytes) else name] = nr
    for nr, name in _EXTRA_NAMES.items():
        out.setdefault(name, nr)
    return out


def policy_table(options: PolicyOptions | None = None) -> list[tuple[int, str, str, str, str]]:
    """Rows (nr, name, tier, rule, reason) for every x86-64 syscall, by number."""
    table = build_table(options)
    rows = []
    for name, nr in syscall_numbers().items():
        e = table.get(name)
        if e is None:
            rows.append((nr, name, DENY, "ENOSYS", "not classified: the filter's default fails closed"))
        else:
            rows.append((nr, name, e.tier, e.rule_text(), e.reason))
    rows.sort()
    return rows


def print_table(fmt: str = "table", net_raw: bool = False) -> None:
    """Print policy_table() for `runsc-py policy` (fmt: table or json)."""
    import json
    import sys

    rows = policy_table(PolicyOptions(net_raw=net_raw))
    if fmt == "json":
        json.dump([{"nr": nr, "name": n, "tier": t, "rule": r, "reason": why}
                   for nr, n, t, r, why in rows], sys.stdout, indent=1)
        sys.stdout.write("\n")
        return
    table = build_table(PolicyOptions(net_raw=net_raw))
    counts = {t: sum(1 for row in rows if row[2] == t) for t in (NATIVE, EMULATE, DENY)}
    out = [f"{'NR':>4}  {'SYSCALL':<24} {'TIER':<8} {'RULE':<40} REASON"]
    for nr, n, t, r, why in rows:
        if len(r) > 40:
            # How many values each action gets and the answer for the rest
            # (`--format json` has every rule).
            r = table[n].rule_summary()
        out.append(f"{nr:>4}  {n:<24} {t:<8} {r:<40} {why}")
    out.append(f"# native {counts[NATIVE]}, emulate {counts[EMULATE]}, deny {counts[DENY]}")
    surface = host_surface(table)
    continued = sum(1 for n in surface if table[n].tier == EMULATE)
    out.append(f"# host kernel surface (reached with arguments the workload chooses): {len(surface)} "
               f"= native {len(surface) - continued} + continued {continued}; limit "
               f"{HOST_SURFACE_LIMIT}, none of the dangerous families")
    sys.stdout.write("\n".join(out) + "\n")
