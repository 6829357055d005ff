"""The ptrace platform's own machinery (sentry/platform/ptrace.py), always on
ptrace whatever $RUNSC_PY_TEST_PLATFORM says: the reserved descriptor the
workload cannot use, calls parked on a worker (a FIFO open waiting for the
other end while the tracer serves the task that opens it), signals held
meanwhile, threads, a socket of its own for a process that changes its
credentials, exec verification.  The handlers themselves are tested on both
platforms by the rest of tests/sentry."""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest
from harness import run_probe

from sentry.platform import execcheck
from sentry.platform.reserved import RESERVED_FD

HERE = Path(__file__).parent
R = RESERVED_FD


@pytest.fixture(scope="module")
def ptprobe() -> str:
    d = Path(tempfile.mkdtemp(prefix="ptprobe-", dir="/tmp"))
    os.chmod(d, 0o755)
    out = d / "ptprobe"
    subprocess.run(["gcc", "-static", "-O2", "-pthread", "-o", str(out), str(HERE / "ptprobe.c")],
                   check=True)
    os.chmod(out, 0o755)
    return str(out)


def _run(probe: str, args: list[str], root: str, **kw):  # type: ignore[no-untyped-def]
    return run_probe(probe, args, root, platform="ptrace", **kw)


# Calls on the reserved descriptor: each refused as if it were not open.
RESERVED_CALLS = {
    "read": f"0,{R},buf,1", "write": f"1,{R},buf,1", "close": f"3,{R}", "fstat": f"5,{R},buf",
    "ioctl": f"16,{R},0x541B,buf", "dup": f"32,{R}", "dup2-from": f"33,{R},100",
    "dup2-onto": f"33,0,{R}", "recvmsg": f"47,{R},buf,0", "fcntl": f"72,{R},1",
    "dup3-onto": f"292,1,{R},0", "high-bits": f"3,{0x1_0000_0000 | R}",
}


def test_the_reserved_descriptor_is_refused(probe: str, root: str) -> None:
    checks = [f"sys={name},{spec}" for name, spec in RESERVED_CALLS.items()]
    r = _run(probe, checks + ["cat=/etc/hello"], root)
    assert r.status == 0, r.out
    got = r.lines()
    for name in RESERVED_CALLS:
        assert got[name] == ["-1", str(errno.EBADF)], (name, r.out)
    # The channel is intact: an open still gets its fd.
    assert got["cat"] == ["1", "11", "hello-root"], r.out


def test_close_range_spares_the_reserved_descriptor(probe: str, root: str) -> None:
    r = _run(probe, ["sys=all,436,3,0xffffffff,0", "cat=/etc/hello", f"sys=just,436,{R},{R},0",
                     "cat=/etc/hello", f"sys=from,436,{R},{R + 5},0", "cat=/etc/hello"], root)
    assert r.status == 0, r.out
    lines = r.out.splitlines()
    assert lines[0] == "all 0 0" and lines[2] == "just 0 0" and lines[4] == "from 0 0", r.out
    assert lines[1] == lines[3] == lines[5] == "cat 1 11 hello-root", r.out


@pytest.mark.parametrize("check", ["fifo-read", "fifo-write"])
def test_fifo_opens_wait_for_the_other_end(ptprobe: str, root: str, check: str) -> None:
    # The first open waits on a worker; the tracer meanwhile serves the child,
    # whose own open of the other end is what lets the first one finish.
    r = _run(ptprobe, [f"{check}=/fifo"], root, timeout=30)
    assert r.status == 0, r.out
    got = r.lines()
    want = ["1", "0", "x", "child=0", "usr1=0"] if check == "fifo-read" else ["1", "0", "child=0"]
    assert got[check] == want, r.out
    assert r.workers >= 2  # the tracer and at least one worker


def test_a_signal_to_a_parked_call_is_delivered_after(ptprobe: str, root: str) -> None:
    # SIGUSR1 (SA_RESTART handler) comes while the open waits for a writer:
    # held until the open is answered (as WAIT_KILLABLE_RECV holds it on the
    # seccomp platform), then delivered once.
    r = _run(ptprobe, ["fifo-read-signal=/fifo"], root, timeout=30)
    assert r.status == 0, r.out
    assert r.lines()["fifo-read-signal"] == ["1", "0", "x", "child=0", "usr1=1"], r.out


def test_threads_open_at_once(ptprobe: str, root: str) -> None:
    r = _run(ptprobe, ["threads=/etc/hello"], root, timeout=60)
    assert r.status == 0, r.out
    assert r.lines()["threads"] == ["bad", "0"], r.out


def test_a_process_that_changes_credentials_gets_its_own_socket(ptprobe: str, root: str,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    # Shared with its parent until it calls setresuid: then a socket of its
    # own, made inside it (a process that no longer has the parent's
    # credentials must not hold the parent's channel); both still get fds.
    # (That the sockets differ is seen from inside a container, which has a
    # procfs: tests/test_ptrace_platform.py.)
    os.chmod(Path(root) / "etc" / "hello", 0o644)
    caplog.set_level("DEBUG", logger="sentry.platform.inject")
    r = _run(ptprobe, ["setuid-private=/etc/hello"], root, timeout=30)
    assert r.status == 0, r.out
    got = dict(kv.split("=") for kv in r.lines()["setuid-private"])
    assert got["setuid"] == got["open"] == got["parent-open"] == "1", r.out
    assert any("reserved socket of its own" in m for m in caplog.messages), caplog.messages


def _in_root(ptprobe: str, root: str) -> str:
    Path(root, "bin").mkdir(exist_ok=True)
    exe = Path(root, "bin", "ptprobe")
    exe.write_bytes(Path(ptprobe).read_bytes())
    exe.chmod(0o755)
    return str(exe)


# In gofer mode the probe runs in a mount namespace rooted at root, from
# /bin/ptprobe there: the file the sentry checks.
def test_exec_runs_what_was_checked(ptprobe: str, root: str) -> None:
    exe = _in_root(ptprobe, root)
    r = _run(exe, ["pid", "exec=/bin/ptprobe", "pid"], root, file_access="gofer")
    assert r.status == 0, r.out
    assert r.out.count("pid ") == 2 and "exec" not in r.out, r.out


def test_an_exec_of_another_file_is_killed(ptprobe: str, root: str,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    # As if another thread had rewritten the path between the handler's check
    # and the kernel's exec: the file executed is not the one checked.
    exe = _in_root(ptprobe, root)
    shutil.copy(exe, Path(root, "bin", "other"))
    real = execcheck.expected

    def elsewhere(call, nr, path):  # type: ignore[no-untyped-def]
        return frozenset({(0, 0)}) if path == b"/bin/other" else real(call, nr, path)
    monkeypatch.setattr(execcheck, "expected", elsewhere)
    r = _run(exe, ["pid", "exec=/bin/other", "pid"], root, file_access="gofer")
    assert os.WIFSIGNALED(r.status) and r.signaled == signal.SIGKILL, r.out
    assert r.out.count("pid ") == 1, r.out


def test_a_parked_call_its_handler_lets_run(ptprobe: str, root: str) -> None:
    # openat2 is parked (its flags are in memory); its handler lets an O_PATH
    # open run in the kernel (CONTINUE): the call is made again and let
    # through.  sendmsg is parked (a send may wait for its reader).
    # (In gofer mode: the caller's own root, where the kernel resolves the
    # path again, is the container's.)
    exe = _in_root(ptprobe, root)
    r = _run(exe, ["openat2-opath=/etc/hello", "sendmsg"], root, file_access="gofer")
    assert r.status == 0, r.out
    got = r.lines()
    assert got["openat2-opath"] == ["1", "0", "opath=1"], r.out
    assert got["sendmsg"] == ["4", "ping"], r.out


def test_the_tracer_forgets_a_task_s_credentials_at_its_exit(root: str) -> None:
    # The tracer thread's credentials cache checks no pidfd per call
    # (CredsCache.exits_seen): it reaps its own tracees, and a tracee's
    # exit drops its entry before the tid can name another task.
    import socket

    from sentry.call import Sandbox
    from sentry.files import DirectFS
    from sentry.platform.ptrace import PtraceChannel, PtraceSupervisor, TracedCall, Tracer, platform_dispatch
    from sentry.platform.tracees import AddressSpace, Channel, FdTable, Tracee
    from sentry.supervisor import build_dispatch

    umask = os.umask(0)
    try:
        sb = Sandbox(DirectFS(os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)))
        sup = PtraceSupervisor(sb, platform_dispatch(build_dispatch()))
    finally:
        os.umask(umask)
    pid = os.fork()
    if pid == 0:
        signal.pause()
        os._exit(0)
    try:
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        tr = Tracer(sup, pid, Channel(a, b), R, False)
        tr.chan = PtraceChannel(tr)
        tr.call = TracedCall(tr.chan, sb)
        tr.call.creds_cache.exits_seen = True  # as Tracer._main sets it
        t = Tracee(pid, pid, FdTable(tr.first_chan, R), AddressSpace())
        tr.tracees[pid] = t
        cache = tr.call.creds_cache
        cache.lookup(pid)
        assert cache.lookup(pid)[2]  # kept
        tr._exited(t, 0)
        assert not cache.lookup(pid)[2]  # read again
        tr.call.close()
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
