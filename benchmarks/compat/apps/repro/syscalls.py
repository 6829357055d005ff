"""Differential syscall probe (FINDINGS.md): one call each, "name: ok" or
"name: ERR ERRNO".  Run it under runc and runsc-py and diff the outputs:

    python3 -u /compat/repro/syscalls.py
"""
import errno, fcntl, mmap, os, resource, select, signal, socket, struct, termios, time, ctypes

libc = ctypes.CDLL(None, use_errno=True)
tmp = "/tmp/probe.dat"
with open(tmp, "wb") as f:
    f.write(b"x" * 65536)

def sysc(nr, *a):
    r = libc.syscall(nr, *[ctypes.c_long(x) for x in a])
    if r < 0:
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
    return r

def fd():
    return os.open(tmp, os.O_RDWR)

def opath_fd():
    return os.open(tmp, os.O_PATH)

def ioctl_fioasync():
    a, b = socket.socketpair()
    fcntl.ioctl(a.fileno(), 0x5452, struct.pack("i", 1))

def ioctl_fionbio():
    a, b = socket.socketpair()
    fcntl.ioctl(a.fileno(), 0x5421, struct.pack("i", 1))

def fstat_after_setuid():
    pid = os.fork()
    if pid == 0:
        f = fd()
        os.setreuid(65534, 65534)
        try:
            os.stat(f"/proc/self/fd/{f}")
            os.fstat(f)
            os._exit(0)
        except OSError as e:
            os._exit(e.errno)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) or None

def unix_getsockname():
    p = "/tmp/probe.sock"
    s = socket.socket(socket.AF_UNIX); s.bind(p)
    n = s.getsockname(); os.unlink(p)
    if n != p:
        raise OSError(0, f"getsockname -> {n!r}")

CHECKS = {
    "getpriority": lambda: os.getpriority(os.PRIO_PROCESS, 0),
    "setpriority": lambda: os.setpriority(os.PRIO_PROCESS, 0, 0),
    "sched_getscheduler": lambda: os.sched_getscheduler(0),
    "sched_getparam": lambda: os.sched_getparam(0),
    "sched_get_priority_max": lambda: os.sched_get_priority_max(os.SCHED_FIFO),
    "sched_setaffinity": lambda: os.sched_setaffinity(0, os.sched_getaffinity(0)),
    "sched_rr_get_interval": lambda: os.sched_rr_get_interval(0),
    "times": lambda: os.times() and sysc(100, 0),
    "clock_getres": lambda: time.clock_getres(time.CLOCK_MONOTONIC),
    "getitimer": lambda: signal.getitimer(signal.ITIMER_REAL),
    "rt_sigpending": lambda: signal.sigpending(),
    "rt_sigtimedwait": lambda: signal.sigtimedwait([signal.SIGUSR1], 0),
    "tkill": lambda: sysc(200, os.getpid(), 0),
    "posix_fadvise": lambda: os.posix_fadvise(fd(), 0, 0, os.POSIX_FADV_SEQUENTIAL),
    "posix_fallocate": lambda: os.posix_fallocate(fd(), 0, 100),
    "fallocate(syscall)": lambda: sysc(285, fd(), 0, 0, 100),
    "copy_file_range": lambda: os.copy_file_range(fd(), fd(), 10),
    "splice": lambda: os.splice(fd(), os.pipe()[1], 10),
    "sendfile": lambda: os.sendfile(os.pipe()[1], fd(), 0, 10),
    "readahead": lambda: sysc(187, fd(), 0, 100),
    "sync": lambda: os.sync(),
    "syncfs": lambda: sysc(306, fd()),
    "sync_file_range": lambda: sysc(277, fd(), 0, 0, 0),
    "preadv": lambda: os.preadv(fd(), [bytearray(10)], 0),
    "pwritev": lambda: os.pwritev(fd(), [b"ab"], 0),
    "eventfd(old)": lambda: sysc(284, 0),
    "eventfd2": lambda: os.eventfd(0),
    "epoll_create(old)": lambda: sysc(213, 10),
    "epoll_create1": lambda: select.epoll(),
    "signalfd4": lambda: sysc(289, -1, ctypes.addressof(ctypes.c_uint64(0)), 8, 0),
    "timer_create": lambda: sysc(222, 1, 0, ctypes.addressof(ctypes.c_int(0))),
    "pidfd_open": lambda: os.pidfd_open(os.getpid()),
    "close_range": lambda: sysc(436, 1000, 1010, 0),
    "mincore": lambda: sysc(27, 0, 4096, 0),
    "mlock": lambda: sysc(149, 0, 0),
    "membarrier": lambda: sysc(324, 0, 0),
    "getcpu": lambda: sysc(309, ctypes.addressof(ctypes.c_uint(0)), 0, 0),
    "shmget": lambda: sysc(29, 0, 4096, 0o1600),
    "semget": lambda: sysc(64, 0, 1, 0o1600),
    "msgget": lambda: sysc(68, 0, 0o1600),
    "mq_open": lambda: sysc(240, 0, 0),
    "memfd_create": lambda: os.memfd_create("x"),
    "getrusage": lambda: resource.getrusage(resource.RUSAGE_SELF),
    "prlimit(other pid)": lambda: resource.prlimit(os.getpid(), resource.RLIMIT_NOFILE),
    "ioctl FIOASYNC": ioctl_fioasync,
    "ioctl FIONBIO": ioctl_fionbio,
    "ioctl TCGETS on file": lambda: termios.tcgetattr(fd()),
    "open O_PATH": opath_fd,
    "fstat via /proc/self/fd after setreuid": fstat_after_setuid,
    "unix bind/getsockname": unix_getsockname,
    "mmap+madvise": lambda: mmap.mmap(-1, 4096).madvise(mmap.MADV_DONTNEED),
    "os.getloadavg": lambda: os.getloadavg(),
    "seccomp GET_ACTION_AVAIL": lambda: sysc(317, 2, 0, ctypes.addressof(ctypes.c_uint32(0x7fff0000))),
    "unshare(0)": lambda: os.unshare(0) if hasattr(os, "unshare") else sysc(272, 0),
}
for name, fn in CHECKS.items():
    try:
        r = fn()
        if isinstance(r, int) and r and name.startswith("fstat via"):
            print(f"{name}: ERR {errno.errorcode.get(r, r)}")
        else:
            print(f"{name}: ok", flush=True)
    except OSError as e:
        print(f"{name}: ERR {errno.errorcode.get(e.errno, e.errno)} {e.strerror if e.errno == 0 else ''}".rstrip())
    except Exception as e:
        print(f"{name}: EXC {type(e).__name__} {e}")
