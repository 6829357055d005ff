"""End to end: a forked child installs the filter, hands the listener over a
socketpair, execs a static probe; the supervisor in this process serves it."""

from __future__ import annotations

import errno
import os
import signal

import pytest
from harness import default_platform, run_probe



def test_native_emulated_and_denied(probe: str, root: str) -> None:
    r = run_probe(probe, ["getpid", "uname", "bpf", "keyctl", "mount", "io_uring_setup",
                          "clone3", "unknown", "clone-newuts", "fork", "tiocsti",
                          "tcgets-high"], root, hostname="sbx-test")
    assert r.status == 0, r.out
    got = r.lines()
    assert int(got["getpid"][0]) > 0
    # uname is native: the host's names and release, so that version checks
    # agree with the kernel the workload really runs on.
    assert got["uname"] == ["0", os.uname().nodename, os.uname().release, "x86_64"]
    assert got["bpf"] == ["-1", str(errno.EPERM)]
    assert got["keyctl"] == ["-1", str(errno.EPERM)]
    assert got["mount"] == ["-1", str(errno.EPERM)]
    assert got["io_uring_setup"] == ["-1", str(errno.ENOSYS)]
    assert got["clone3"] == ["-1", str(errno.ENOSYS)]
    assert got["unknown"] == ["-1", str(errno.ENOSYS)]
    assert got["clone-newuts"] == ["-1", str(errno.EPERM)]
    assert got["fork"] == ["1", "0"]
    assert got["tiocsti"] == ["-1", str(errno.EPERM)]  # as Linux without CAP_SYS_ADMIN
    # Allowed on its low 32 bits; stdout is a pipe, so the kernel says ENOTTY.
    assert got["tcgets-high"] == ["-1", str(errno.ENOTTY)]


@pytest.mark.parametrize("check", ["x32", "i386"])
def test_foreign_abi_is_killed(probe: str, root: str, check: str) -> None:
    r = run_probe(probe, [check], root)
    assert os.WIFSIGNALED(r.status) and r.signaled == signal.SIGSYS, r.out
    assert check not in r.out


def test_open_and_stat_inside_root(probe: str, root: str) -> None:
    r = run_probe(probe, ["cat=/etc/hello", "cat=/sub/abs", "stat=/etc/hello", "lstat=/sub/abs",
                          "readlink=/sub/abs", "access=/etc/hello", "open=/../../etc/hello",
                          "cat=/sub/escape", "open=/nonexistent", "badptr", "longpath"], root)
    assert r.status == 0, r.out
    got = r.lines()
    lines = r.out.splitlines()
    assert lines[0] == "cat 1 11 hello-root" and lines[1] == "cat 1 11 hello-root"
    assert lines[6].startswith("open ") and int(lines[6].split()[1]) >= 0  # "/.." stays at /
    assert lines[7] == f"cat -1 {errno.ENOENT}"
    assert lines[8] == f"open -1 {errno.ENOENT}"
    st = os.stat(os.path.join(root, "etc/hello"))
    assert got["stat"] == ["0", "0", f"size={st.st_size}", f"mode={st.st_mode:o}",
                           f"ino={st.st_ino}"]
    assert got["lstat"] == ["0", "0", "islnk=1"]
    assert got["readlink"] == ["10", "0", "/etc/hello"]
    assert got["access"] == ["0", "0"]
    assert got["badptr"] == ["-1", str(errno.EFAULT)]
    assert got["longpath"] == ["-1", str(errno.ENAMETOOLONG)]


def test_symlinks_resolve_inside_root(probe: str, root: str) -> None:
    # /sub/abs -> /etc/hello must mean <root>/etc/hello; /sub/escape climbs
    # above the root and must stay inside it (the host's /etc/hostname is
    # not under root, so ENOENT).
    r = run_probe(probe, ["cat=/sub/abs", "cat=/sub/escape"], root)
    lines = r.out.splitlines()
    assert lines[0].endswith("hello-root")
    assert lines[1] == f"cat -1 {errno.ENOENT}"


def test_relative_paths_from_cwd(probe: str, root: str) -> None:
    r = run_probe(probe, ["cat=hello", "cat=../etc/hello", "stat=../../../etc/hello",
                          "cat=../sub/abs", "chdir=/sub", "cat=abs", "cat=../../etc/hello"],
                  root, cwd=os.path.join(root, "etc"))
    lines = r.out.splitlines()
    assert r.status == 0, r.out
    assert lines[0].endswith("hello-root")
    assert lines[1].endswith("hello-root")
    assert lines[2].startswith("stat 0 0 ")
    assert lines[3].endswith("hello-root")
    assert lines[4].startswith("chdir-open 3 ") and lines[5] == "fchdir 0 0"
    assert lines[6].endswith("hello-root") and lines[7].endswith("hello-root")


def test_target_credentials_apply(probe: str, root: str) -> None:
    # A uid-1000 target may not read a 0600 root file, though the sentry is root.
    r = run_probe(probe, ["cat=/secret", "cat=/etc/hello"], root, as_uid=1000)
    lines = r.out.splitlines()
    assert lines[0] == f"cat -1 {errno.EACCES}", r.out
    assert lines[1].endswith("hello-root")


def test_credentials_cache_follows_setuid(probe: str, root: str) -> None:
    # The sentry caches each task's credentials (sentry/creds.py); a setuid
    # by the task must drop them, or the next open would still act as root.
    r = run_probe(probe, ["cat=/secret", "sys=setuid,105,1000", "cat=/secret", "stat=/secret"], root)
    lines = r.out.splitlines()
    assert lines[0].endswith("root-only"), r.out
    assert lines[1] == "setuid 0 0", r.out
    assert lines[2] == f"cat -1 {errno.EACCES}", r.out
    assert lines[3].startswith("stat 0 0 "), r.out  # stat needs no read permission


def test_blocking_open_does_not_stall_others(probe: str, root: str) -> None:
    # Opening a FIFO for reading blocks in the handler until a writer comes
    # (from this process, 0.5 s later): the stall monitor must have added a
    # worker meanwhile, so other notifications would still be served.
    fifo = os.path.join(root, "fifo")
    os.mkfifo(fifo)
    import threading
    import time

    def writer() -> None:
        time.sleep(0.5)
        fd = os.open(fifo, os.O_WRONLY)
        os.write(fd, b"through-fifo\n")
        os.close(fd)

    t = threading.Thread(target=writer)
    t.start()
    try:
        r = run_probe(probe, ["cat=/fifo", "uname"], root)
    finally:
        t.join()
    assert r.lines()["cat"][-1] == "through-fifo"
    assert r.lines()["uname"][0] == "0"
    assert r.workers >= 2


def test_a_failing_worker_fails_closed(probe: str, root: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # A bug outside the handlers (here: taking in the probe's first open
    # blows up) must not leave the workload blocked forever: the supervisor
    # closes the listener and the kernel answers the pending call, and every
    # later notified one, with ENOSYS.  On the ptrace platform the tracer
    # thread ends, and its EXITKILL kills the workload.
    from sentry import call as call_mod
    load = call_mod.Call.load

    def broken(self: call_mod.Call, *a: int) -> None:
        load(self, *a)
        if self.nr in (2, 257):  # open, openat
            raise RuntimeError("injected")
    monkeypatch.setattr(call_mod.Call, "load", broken)
    r = run_probe(probe, ["cat=/etc/hello", "getpid", "stat=/etc/hello", "cat=/etc/hello"], root,
                  timeout=20)
    if default_platform() == "ptrace":
        assert r.signaled == signal.SIGKILL and r.out == "", r.out
        return
    lines = r.out.splitlines()
    assert lines[0] == f"cat -1 {errno.ENOSYS}", r.out
    assert lines[1].startswith("getpid "), r.out  # native calls are unaffected
    # Later notified calls, of another handler and of the same one, get
    # ENOSYS from the kernel: the listener is closed, nothing waits on it.
    assert lines[2].startswith(f"stat -1 {errno.ENOSYS} "), r.out
    assert lines[3] == f"cat -1 {errno.ENOSYS}", r.out
