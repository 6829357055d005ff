"""Reading a task's credentials from /proc/TID/status (sentry/creds.py)."""

from __future__ import annotations

import os
import signal

import pytest

from sentry.creds import _field, read_creds, read_umask
from sentry.errors import SysError


def test_a_long_groups_line_is_read_whole() -> None:
    """2,000 groups make the status text longer than one 8 KiB read: every
    field after Groups (CapEff, Umask...) must still be read whole."""
    groups = list(range(5000, 7000))
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.setgroups(groups)
            os.umask(0o027)
            os.write(w, b"1")
            signal.pause()
        finally:
            os._exit(0)
    try:
        os.close(w)
        assert os.read(r, 1) == b"1"
        c = read_creds(pid)
        assert c.groups == tuple(groups)
        assert c.umask == 0o027 == read_umask(pid)
        with open(f"/proc/{pid}/status") as f:
            cap_eff = next(line for line in f if line.startswith("CapEff:")).split()[1]
        assert c.cap_eff == int(cap_eff, 16)
    finally:
        os.close(r)
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


def test_a_field_cut_short_is_an_error_and_an_absent_optional_one_a_default() -> None:
    with pytest.raises(SysError):
        _field(b"\nName:\tx\nCapEff:\t00000000000000", b"\nCapEff:", 1)
    assert _field(b"\nName:\tx\n", b"\nUmask:", 1, [b"0022"]) == [b"0022"]
    with pytest.raises(SysError):
        _field(b"\nName:\tx\n", b"\nUid:", 1)
    assert _field(b"\nGroups:\t\nX:\t1\n", b"\nGroups:", 1) == []


def test_a_failed_switch_leaves_no_capability_and_nothing_in_force(monkeypatch: pytest.MonkeyPatch) -> None:
    """creds.ThreadCreds.apply: when a step fails (here setgroups), the thread
    must not keep the sentry's full capabilities, and the next switch to
    the same credentials must not find them "already in force"."""
    import threading

    from sentry import creds, hostcalls

    out: dict[str, object] = {}

    def worker() -> None:
        tc = creds.ThreadCreds()
        real_setgroups = hostcalls.setgroups
        monkeypatch.setattr(hostcalls, "setgroups", lambda groups: -1)  # EPERM
        want = (1000, 1000, (1000,), 0)
        try:
            tc.apply(want)
        except SysError as e:
            out["err"] = e.errno
        out["eff_after_failure"] = hostcalls.capget_self()[0]
        out["unknown"] = tc.unknown
        try:
            tc.apply(want)  # still failing: must try again, not return early
        except SysError:
            out["second_raised"] = True
        monkeypatch.setattr(hostcalls, "setgroups", real_setgroups)
        tc.reset()
        out["eff_after_reset"] = hostcalls.capget_self()[0]
        out["own_eff"] = tc.own_eff

    t = threading.Thread(target=worker)  # capabilities are per thread: not the test's own
    t.start()
    t.join()
    assert out["err"] == 1, out
    assert out["eff_after_failure"] == 0, out
    assert out["unknown"] is True, out
    assert out.get("second_raised") is True, out
    assert out["eff_after_reset"] == out["own_eff"], out


def test_a_thread_started_by_one_acting_as_a_caller_starts_as_the_sentry() -> None:
    """A thread inherits the credentials its creator has in force (fsuid,
    groups, effective capabilities).  The ptrace platform starts workers
    from a tracer thread acting as the caller: they took the caller's
    credentials for their own, and the wake-up signal of a parked call of
    a uid-1000 process was EPERM (the caller hung in pause(2)).  A
    ThreadCreds given the sentry's own credentials sets its thread to them."""
    import threading

    from sentry import creds, hostcalls

    out: dict[str, object] = {}
    own = creds.own_creds()

    def inner() -> None:
        before = (hostcalls.setfsuid(0xFFFFFFFF), hostcalls.capget_self()[0])
        tc = creds.ThreadCreds(own=own)
        out["before"] = before
        out["after"] = (hostcalls.setfsuid(0xFFFFFFFF), hostcalls.capget_self()[0], tuple(os.getgroups()))
        out["current_is_own"] = tc.current == tc.own

    def outer() -> None:
        tc = creds.ThreadCreds(own=own)
        tc.apply((1000, 1000, (1000,), 0))  # acting as a uid-1000 caller
        t = threading.Thread(target=inner)
        t.start()
        t.join()
        tc.reset()

    t = threading.Thread(target=outer)
    t.start()
    t.join()
    assert out["before"] == (1000, 0), out  # what the kernel gave the new thread
    assert out["after"] == (os.geteuid(), own[0], own[3]), out
    assert out["current_is_own"] is True, out


@pytest.mark.parametrize("exits_seen", [False, True], ids=["pidfd-checked", "exits-seen"])
def test_a_cached_entry_is_checked_alive_unless_its_owner_sees_every_exit(
        monkeypatch: pytest.MonkeyPatch, exits_seen: bool) -> None:
    """A CredsCache entry names its task while that task lives: checked with
    its pidfd on every lookup, except in a cache whose owner sees every
    exit and forgets the task before its tid can be reused (the ptrace
    tracer: CredsCache.exits_seen, Tracer._gone); task_gone() drops it."""
    from sentry import creds, hostcalls

    pid = os.fork()
    if pid == 0:
        signal.pause()
        os._exit(0)
    try:
        alive_checks = []
        real_alive = hostcalls.pidfd_alive
        monkeypatch.setattr(hostcalls, "pidfd_alive", lambda fd: alive_checks.append(fd) or real_alive(fd))
        cache = creds.CredsCache(creds.CredsEpoch())
        cache.exits_seen = exits_seen
        c1, _mem, hit = cache.lookup(pid)
        assert not hit
        cache.lookup(pid)  # (the second call opens the mem fd, checked alive after)
        before = len(alive_checks)
        c2, _mem, hit = cache.lookup(pid)
        assert hit and c2 == c1
        assert len(alive_checks) == before + (0 if exits_seen else 1)
        cache.task_gone(pid)
        _c3, _mem, hit = cache.lookup(pid)
        assert not hit  # read again, with a new pidfd
        cache.clear()
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


def _child_that_changes_ids() -> tuple[int, int, int]:
    """A forked child that waits; told to go on, it takes uid and gid 1000
    (which clears its capabilities, as an exec of a program for a non-root
    user may) and says so.  (pid, its go fd, its done fd)."""
    go_r, go_w = os.pipe()
    done_r, done_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.read(go_r, 1)
            os.setresgid(1000, 1000, 1000)
            os.setresuid(1000, 1000, 1000)
            os.write(done_w, b"x")
            signal.pause()
        finally:
            os._exit(0)
    os.close(go_r)
    os.close(done_w)
    return pid, go_w, done_r


def test_a_leaders_exec_refreshes_ids_and_capabilities_from_the_kernel(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """After exec_of_leader(tid), the entry's ids and effective set are
    read again (PIDFD_GET_INFO, capget), not /proc/TID/status: the result
    equals a full read; its old mem fd is closed and a new one is opened at
    the next call but one.  A forget() after it still means a full read."""
    from sentry import creds

    pid, go, done = _child_that_changes_ids()
    try:
        reads = []
        real_read = creds.read_creds
        monkeypatch.setattr(creds, "read_creds", lambda tid: reads.append(tid) or real_read(tid))
        epoch = creds.CredsEpoch()
        cache = creds.CredsCache(epoch)
        before, _mem, hit = cache.lookup(pid)
        assert not hit and before.euid == 0 and before.cap_eff != 0
        _c, old_mem, hit = cache.lookup(pid)  # its second lookup: the mem fd
        assert hit and old_mem >= 0
        epoch.exec_of_leader(pid)
        os.write(go, b"x")
        assert os.read(done, 1) == b"x"
        after, mem, hit = cache.lookup(pid)
        assert len(reads) == 1  # the first fill only
        assert not hit and mem == -1
        with pytest.raises(OSError):
            os.fstat(old_mem)  # closed: it named the old address space
        assert after == real_read(pid)
        assert (after.ruid, after.euid, after.fsuid, after.rgid, after.fsgid, after.cap_eff) == \
            (1000, 1000, 1000, 1000, 1000, 0)
        assert after.groups == before.groups and after.tgid == before.tgid == pid
        again, mem, hit = cache.lookup(pid)
        assert hit and again == after and mem >= 0
        epoch.exec_of_leader(pid)
        epoch.forget(pid)  # (another thread's exec: its tid and its leader's)
        cache.lookup(pid)
        assert len(reads) == 2
        cache.clear()
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(go)
        os.close(done)


def test_a_refresh_of_a_task_gone_reads_nothing_stale() -> None:
    """exec_of_leader() of a task that has exited: the refresh fails and
    the lookup fails as for any task gone, never with the old entry."""
    from sentry import creds
    from sentry.errors import SysError

    pid, go, done = _child_that_changes_ids()
    epoch = creds.CredsEpoch()
    cache = creds.CredsCache(epoch)
    try:
        cache.lookup(pid)
        epoch.exec_of_leader(pid)
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(go)
        os.close(done)
    with pytest.raises(SysError):
        cache.lookup(pid)
    cache.clear()


def test_only_a_single_threaded_processs_exec_keeps_its_groups() -> None:
    """proc_exec._alone: the refresh after an exec (exec_of_leader) is for a
    process with one thread; with more, the task under the leader's tid
    after the exec may be another thread, with credentials of its own."""
    import threading
    from sentry.syscalls.proc_exec import _alone

    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.read(r, 1)  # one thread, then two
        threading.Thread(target=signal.pause, daemon=True).start()
        os.write(w, b"x")
        signal.pause()
        os._exit(0)
    try:
        assert _alone(pid)
        os.write(w, b"x")
        import time
        deadline = time.monotonic() + 5
        while _alone(pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not _alone(pid)
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(r)
        os.close(w)
    assert not _alone(pid)  # gone: not known to be alone
