"""The sandbox around real containers: the workload runs under the sentry.

Checked from the host (like a security team would): the workload's seccomp
mode and no_new_privs, the sandbox process outside the container's pid
namespace, no fd of the runtime or sentry leaking into the workload, the
sentry taking the container down when it dies, and the deny tier holding even
when the spec grants every capability.
"""

from __future__ import annotations

import errno
import os
import stat
import re
import signal
import subprocess
import time

import pytest

from helpers import RESERVED_FD
from runsc_py.spec import CAPABILITIES

pytestmark = pytest.mark.runsc_py_only

def _host_caps() -> list[str]:
    """Every capability this host's root can grant (its bounding set)."""
    bnd = int(next(ln for ln in open("/proc/self/status") if ln.startswith("CapBnd:")).split()[1], 16)
    return [c for i, c in enumerate(CAPABILITIES) if bnd & (1 << i)]


ALL_CAPS = {k: _host_caps() for k in ("bounding", "effective", "permitted", "inheritable")}


def _status(pid: int) -> dict[str, str]:
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


def _workload_pids(c) -> list[int]:
    """Host pids of the container's processes other than the sandbox process."""
    return [p for p in c.ps() if p != c.pid]


def test_workload_is_under_the_sentry_filter(runtime, bundle):
    b = bundle(["sleep", "30"], rootfs="shared")
    with runtime.container(b) as c:
        pids = _workload_pids(c)
        assert pids, "no workload process found"
        for pid in pids:
            st = _status(pid)
            assert st["Seccomp"] == "2", st
            assert st["NoNewPrivs"] == "1", st
        # The sandbox process itself: not dumpable, the first process of a
        # pid namespace of its own, which holds the container's.
        sb = _status(c.pid)
        assert sb["Name"] == "runsc-sandbox"
        assert sb["Seccomp"] == "2", "the sentry runs under its own filter"
        assert sb["NoNewPrivs"] == "1"
        assert sb["NSpid"].split() == [str(c.pid), "1"], sb["NSpid"]
        assert os.readlink(f"/proc/{c.pid}/ns/pid") != os.readlink("/proc/self/ns/pid")
        # host, sandbox, container
        assert len(_status(pids[0])["NSpid"].split()) == 3, _status(pids[0])["NSpid"]


def test_exec_process_is_under_the_filter(runtime, bundle):
    b = bundle(["sleep", "30"], rootfs="shared")
    with runtime.container(b) as c:
        res = c.exec("sh", "-c", "grep -E '^(Seccomp|NoNewPrivs):' /proc/$$/status")
        assert res.returncode == 0, res
        assert "Seccomp:\t2" in res.stdout
        assert "NoNewPrivs:\t1" in res.stdout


def test_sandbox_is_invisible_inside(runtime, bundle):
    b = bundle("ls /proc | grep -E '^[0-9]+$' | sort -n | tr '\\n' ' '", rootfs="shared")
    res = runtime.run_container(b)
    assert res.returncode == 0, res
    pids = res.stdout.split()
    # pid 1 (the shell) and the pipeline's own processes only: no runtime pid
    assert pids[0] == "1"
    assert all(int(p) < 20 for p in pids), pids


def test_workload_holds_no_runtime_fd(runtime, bundle):
    """Nothing of the runtime's but, on the ptrace platform, the reserved
    descriptor: a socket whose other end only the sandbox holds, that the
    workload cannot use (tests/sentry/test_ptrace.py)."""
    b = bundle(["sleep", "30"], rootfs="shared")
    with runtime.container(b) as c:
        for pid in _workload_pids(c):
            fds = {int(fd): os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
            if c.platform == "ptrace":
                assert fds.pop(RESERVED_FD, "").startswith("socket:"), fds
            targets = list(fds.values())
            assert all(fd <= 2 for fd in fds), targets
            assert not any("seccomp" in t or "socket" in t for t in targets), targets


def test_killing_the_sandbox_kills_the_workload(runtime, bundle):
    b = bundle(["sleep", "300"], rootfs="shared")
    with runtime.container(b) as c:
        workload = _workload_pids(c)
        assert workload
        os.kill(c.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(os.path.exists(f"/proc/{p}") and
                                                  _status(p).get("State", "Z")[0] != "Z"
                                                  for p in workload):
            time.sleep(0.05)
        alive = [p for p in workload if os.path.exists(f"/proc/{p}")
                 and _status(p).get("State", "Z")[0] != "Z"]
        assert not alive, f"workload survived its sentry: {alive}"
        c.wait_status("stopped")


def test_any_signal_sent_to_the_sandbox_reaches_init(runtime, bundle):
    """The sandbox process forwards what it is sent, not only the usual
    few: SIGPWR (no default handler in the sandbox) reaches the workload."""
    b = bundle("trap 'echo got-pwr; exit 3' PWR; echo ready; while :; do sleep 0.1; done",
               rootfs="shared")
    with runtime.container(b) as c:
        c.wait_output("ready")
        os.kill(c.pid, signal.SIGPWR)
        c.wait_status("stopped")
        assert "got-pwr" in c.wait_output("got-pwr")


def test_exit_status_is_mirrored(runtime, bundle):
    """The sandbox process exits as the workload did: code, or signal."""
    b = bundle("sh -c 'exit 9'; exit 7", rootfs="shared")
    res = runtime.run_container(b)
    assert res.returncode == 7, res
    cid = runtime.new_id("sig")
    runtime.ctx.ids.add(cid)
    proc = runtime.popen("run", "--bundle", str(bundle(["sleep", "60"], rootfs="shared")), cid,
                         stdout=subprocess.DEVNULL)
    try:
        runtime.wait_status(cid, "running")
        runtime.kill(cid, "KILL")
        assert proc.wait(timeout=20) == 128 + signal.SIGKILL
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize("cmd, expect", [
    # mount(2) and unshare(2) are denied even with every capability granted:
    # the sandbox, not the capability set, is the boundary.
    ("mount -t tmpfs none /tmp", "permission denied"),  # busybox's wording of EPERM
    ("unshare -n true", "Operation not permitted"),
    ("chroot / true", "Operation not permitted"),
])
def test_denied_even_with_all_capabilities(runtime, bundle, cmd, expect):
    b = bundle(f"grep CapEff /proc/self/status; {cmd}; echo rc=$?", rootfs="shared",
               config={"process": {"capabilities": ALL_CAPS}})
    res = runtime.run_container(b)
    assert res.returncode == 0, res
    bnd = next(ln for ln in open("/proc/self/status") if ln.startswith("CapBnd:")).split()[1]
    assert f"CapEff:\t{bnd}" in res.stdout, res  # really every capability the host has
    assert "rc=" in res.stdout and "rc=0" not in res.stdout, res
    assert expect in res.stdout + res.stderr, res


def test_uname_reports_the_host_release_and_the_container_names(runtime, bundle):
    b = bundle("uname -n; uname -r", rootfs="shared", config={"hostname": "sbx-host"})
    res = runtime.run_container(b)
    assert res.returncode == 0, res
    assert res.stdout.split() == ["sbx-host", os.uname().release]


def test_uname_release_set_by_flag_or_annotation(runtime, bundle):
    script = "uname -n; uname -r; hostname newname; uname -n"
    b = bundle(script, rootfs="shared", config={"hostname": "sbx-host", "process": {"capabilities": ALL_CAPS}})
    res = runtime.run_container(b, global_args=["--uname-release", "4.4.0"])
    assert res.returncode == 0, res
    assert res.stdout.split() == ["sbx-host", "4.4.0", "newname"]
    b = bundle("uname -r", rootfs="shared", config={"annotations": {"dev.runsc-py.uname-release": "5.10.0-x"}})
    res = runtime.run_container(b)
    assert res.stdout.split() == ["5.10.0-x"], res


def test_shell_script_and_fork_exec_heavy_workload(runtime, bundle):
    script = ("i=0; while [ $i -lt 50 ]; do echo $i | grep -q . && i=$((i+1)); done; "
              "seq 1 200 | sort -rn | head -3 | tr '\\n' ' '; echo; echo done")
    b = bundle(script, rootfs="shared")
    res = runtime.run_container(b)
    assert res.returncode == 0, res
    assert res.stdout == "200 199 198 \ndone\n"


def test_sentry_own_filter_is_an_allowlist_without_dangerous_calls():
    from sentry import self_filter
    names = {n for n, _ in self_filter.table()}
    for bad in ("execve", "execveat", "mount", "umount2", "pivot_root", "chroot", "unshare", "setns",
                "ptrace", "bpf", "perf_event_open", "userfaultfd", "io_uring_setup", "keyctl",
                "init_module", "finit_module", "kexec_load", "reboot", "fork", "vfork", "clone3"):
        assert bad not in names, bad
    assert all(reason for _, reason in self_filter.table())


def test_sentry_own_filter_refuses_at_fdcwd():
    """The sentry's *at calls need a real directory fd (sentry/ownproc.py):
    AT_FDCWD is EPERM however its high bits are set, and the path-only calls
    it has no use for (statfs, readlink, the l*xattr family) too.  fchdir
    is allowed: a relative AF_UNIX name is bound from a scratch cwd
    (sentry/unixnames.py)."""
    import ctypes
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            from sentry import self_filter
            libc = ctypes.CDLL(None, use_errno=True)
            libc.syscall.restype = ctypes.c_long
            d = os.open("/etc", os.O_PATH | os.O_DIRECTORY)
            self_filter.install()

            def err(nr: int, *args: object) -> int:
                return 0 if libc.syscall(nr, *args) >= 0 else ctypes.get_errno()

            got = [err(257, ctypes.c_long(-100), b"/etc/passwd", 0, 0),          # openat AT_FDCWD
                   err(257, ctypes.c_long(0x1FFFFFF9C), b"/etc/passwd", 0, 0),   # high bits set
                   err(257, ctypes.c_long(d), b"passwd", 0, 0),                   # a dirfd: allowed
                   err(262, ctypes.c_long(-100), b"/", ctypes.create_string_buffer(256), 0),  # newfstatat
                   err(264, ctypes.c_long(d), b"a", ctypes.c_long(-100), b"b"),  # renameat: 2nd dirfd
                   err(81, ctypes.c_long(d)),                                     # fchdir: allowed
                   err(137, b"/", ctypes.create_string_buffer(256)),               # statfs
                   err(89, b"/proc/self/exe", ctypes.create_string_buffer(64), 64),  # readlink
                   err(192, b"/etc", b"user.x", None, 0)]                           # lgetxattr
            os.write(w, repr(got).encode())
        finally:
            os._exit(0)
    os.close(w)
    got = os.read(r, 4096).decode()
    os.close(r)
    os.waitpid(pid, 0)
    e = errno.EPERM
    assert got == repr([e, e, 0, e, e, 0, e, e, e]), got


def test_strace_logs_intercepted_syscalls(runtime, bundle, workdir):
    log_file = workdir / "strace.log"
    b = bundle("stat -c %s /etc/hostname; cat /etc/hostname", rootfs="shared")
    res = runtime.run("run", "--bundle", str(b), runtime.new_id("strace"),
                      global_args=["--log", str(log_file), "--strace"])
    assert res.returncode == 0, res
    text = log_file.read_text()
    assert "execve('/bin/sh'" in text
    assert re.search(r"(newfstatat|statx|stat|lstat)\(AT_FDCWD, '/etc/hostname'|stat\('/etc/hostname'", text), text
    log2 = workdir / "strace2.log"
    res = runtime.run("run", "--bundle", str(b), runtime.new_id("strace"),
                      global_args=["--log", str(log2), "--strace", "--strace-syscalls=newfstatat,stat,statx"])
    assert res.returncode == 0, res
    lines = [ln for ln in log2.read_text().splitlines() if "sentry" in ln or "] " in ln]
    assert any("stat" in ln and "/etc/hostname" in ln for ln in lines)
    assert not any("execve(" in ln for ln in lines)


def test_filter_without_no_new_privs_when_the_spec_says_so(runtime, bundle):
    """The filter is installed while init still holds CAP_SYS_ADMIN, so the
    sandbox does not force no_new_privs: setuid programs keep working."""
    b = bundle("grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status", rootfs="shared",
               config={"process": {"noNewPrivileges": False}})
    res = runtime.run_container(b)
    assert res.returncode == 0, res
    assert "Seccomp:\t2" in res.stdout and "NoNewPrivs:\t0" in res.stdout, res


_CRED_CALLS = ("setgroups", "setresgid", "setresuid", "capset")


@pytest.mark.parametrize("nnp,user,before_exec", [
    (True, {"uid": 1000, "gid": 1000}, []),  # the filter last, as runc's with noNewPrivileges
    (True, {"uid": 0, "gid": 0}, []),
    (False, {"uid": 0, "gid": 0}, ["capset"]),  # root keeps CAP_SYS_ADMIN through setresuid
    (False, {"uid": 1000, "gid": 1000, "additionalGids": [5]}, list(_CRED_CALLS)),
])
def test_init_takes_what_it_can_of_its_identity_before_the_filter(runtime, bundle, workdir,
                                                                  nnp, user, before_exec):
    """Each credential call init makes under the filter is a notification
    round trip before the workload's first instruction: init takes as much
    of the spec's identity as still lets it install the filter
    (process.identity_before_handoff), and the rest is notified.  The
    workload's identity is the spec's either way."""
    log_file = workdir / f"ident-{nnp}-{user['uid']}.log"
    b = bundle("grep -E '^(Uid|Gid|Groups|NoNewPrivs|Seccomp):' /proc/self/status", rootfs="shared",
               config={"process": {"noNewPrivileges": nnp, "user": user}})
    res = runtime.run("run", "--bundle", str(b), runtime.new_id("ident"),
                      global_args=["--log", str(log_file), "--strace"])
    assert res.returncode == 0, res
    status = {k: v.split() for k, v in (ln.split(":", 1) for ln in res.stdout.splitlines())}
    uid, gid = str(user["uid"]), str(user["gid"])
    assert status["Uid"] == [uid] * 4 and status["Gid"] == [gid] * 4, res.stdout
    assert status.get("Groups", []) == [str(g) for g in user.get("additionalGids", [])], res.stdout
    assert status["NoNewPrivs"] == ["1" if nnp else "0"] and status["Seccomp"] == ["2"], res.stdout
    calls = re.findall(r"\[\d+\] (\w+)\(", log_file.read_text())
    first_exec = calls.index("execve")
    assert [c for c in calls[:first_exec] if c in _CRED_CALLS] == before_exec, calls[:first_exec + 1]


def test_sentry_sees_no_files_by_path(runtime, bundle):
    """The sandbox process's root is an empty tmpfs with only /proc: neither
    the host's nor the container's files are reachable by path.  It is
    writable, for the scratch tree of AF_UNIX names (sentry/unixnames.py),
    which is removed after each bind."""
    b = bundle(["sleep", "30"], rootfs="shared")
    with runtime.container(b) as c:
        assert sorted(os.listdir(f"/proc/{c.pid}/root")) == ["proc"]
        mounts = [ln.split() for ln in open(f"/proc/{c.pid}/mountinfo")]
        by_point = {m[4]: m for m in mounts}
        assert sorted(by_point) == ["/", "/proc"], mounts
        assert by_point["/"][5].startswith("rw"), mounts
        assert by_point["/"][-1].endswith("size=16k,mode=555"), mounts
        proc = by_point["/proc"]
        assert proc[proc.index("-") + 1] == "proc" and "subset=pid" in proc[-1], proc


_CGROUP_MAGIC, _CGROUP2_MAGIC = 0x27E0EB, 0x63677270


def _fs_magic(path: str) -> int:
    """statfs(2)'s f_type of what path leads to."""
    import ctypes
    buf = ctypes.create_string_buffer(120)
    if ctypes.CDLL(None, use_errno=True).statfs(path.encode(), buf) != 0:
        return 0
    return int.from_bytes(buf.raw[:8], "little")


def test_sandbox_holds_no_directory_of_the_host_cgroup_tree(runtime, bundle):
    """The synthesized /proc files read the container's cgroup files through
    read-only fds opened once (sentry/synth.py): no directory fd of the
    host's cgroup tree, from which a compromised sentry could walk ".." to
    other cgroups and their release_agent."""
    b = bundle(["sleep", "30"], rootfs="shared",
               config={"linux": {"resources": {"memory": {"limit": 256 * 1024 * 1024},
                                               "cpu": {"quota": 50000, "period": 100000}}}})
    with runtime.container(b) as c:
        held = []
        for fd in os.listdir(f"/proc/{c.pid}/fd"):
            try:
                target = os.readlink(f"/proc/{c.pid}/fd/{fd}")
                st = os.stat(f"/proc/{c.pid}/fd/{fd}")
            except OSError:
                continue
            if _fs_magic(f"/proc/{c.pid}/fd/{fd}") in (_CGROUP_MAGIC, _CGROUP2_MAGIC):
                held.append((target, stat.S_ISDIR(st.st_mode)))
        assert held, "the sandbox reads no cgroup file"
        assert not [t for t, is_dir in held if is_dir], held


def test_sandbox_drops_the_capabilities_it_never_uses(runtime, bundle):
    """With a spec that does not grant them (the default, Docker's set), the
    sandbox process keeps no CAP_NET_ADMIN (its network calls are made
    without it), CAP_SYS_ADMIN (only --network=none's threads setns),
    CAP_SYS_MODULE, CAP_SYS_RAWIO, CAP_SYSLOG, CAP_BPF...: a compromised
    sentry cannot reconfigure its network namespace (the host's with
    --network=host) nor reach the kernel through them.  What it acts with
    for callers stays (file, ptrace, setuid/setgid capabilities), and so
    does the workload's bounding set (the kernel compares permitted sets)."""
    b = bundle(["sleep", "30"], rootfs="shared")
    with runtime.container(b) as c:
        st = _status(c.pid)
        for field in ("CapPrm", "CapEff", "CapBnd"):
            mask = int(st[field], 16)
            for cap in (12, 16, 17, 21, 34, 39):  # NET_ADMIN, SYS_MODULE, SYS_RAWIO, SYS_ADMIN, SYSLOG, BPF
                assert not mask >> cap & 1, (field, cap, st[field])
        prm = int(st["CapPrm"], 16)
        for cap in (0, 1, 2, 3, 6, 7, 19):  # CHOWN, DAC_*, FOWNER, SETGID, SETUID, SYS_PTRACE
            assert prm >> cap & 1, (cap, st["CapPrm"])


def test_sentry_proc_shows_only_the_sandbox(runtime, bundle):
    """The sentry's /proc is a procfs of the sandbox's pid namespace with
    only the per-process entries: no host process (no /proc/1/root of the
    host's init to walk), no /proc/sys to write, no /proc/kcore."""
    b = bundle(["sleep", "30"], rootfs="shared")
    with runtime.container(b, global_args=["--file-access=gofer"]) as c:  # a gofer for good
        proc = f"/proc/{c.pid}/root/proc"
        names = set(os.listdir(proc))
        pids = {n for n in names if n.isdigit()}
        assert names - pids == {"self", "thread-self"}, names
        comms = {open(f"{proc}/{p}/comm").read().strip() for p in pids}
        assert comms == {"runsc-sandbox", "runsc-gofer", "sleep"}, comms
        assert open(f"{proc}/1/comm").read().strip() == "runsc-sandbox"
        # The pids the sentry sees are the workload's pids in the sandbox's
        # namespace (what its notifications carry).
        for pid in _workload_pids(c):
            assert _status(pid)["NSpid"].split()[1] in pids


def test_no_pid_namespace_in_the_spec_still_hides_the_host(runtime, bundle):
    """Like gVisor, a spec without a pid namespace still gets one: the host's
    is never shared, and the sandbox's (with the sentry) is never shown."""
    b = bundle("echo pid=$$; ls /proc | grep -E '^[0-9]+$' | sort -n | tr '\\n' ' '",
               rootfs="shared")
    b.spec["linux"]["namespaces"] = [n for n in b.spec["linux"]["namespaces"]
                                     if n["type"] != "pid"]
    b.write_config()
    res = runtime.run_container(b)
    assert res.returncode == 0, res
    lines = res.stdout.splitlines()
    assert lines[0] == "pid=1", res
    assert all(int(p) < 20 for p in lines[1].split()), res


def test_joining_a_host_pid_namespace_works_and_says_what_it_costs(runtime, bundle, workdir):
    """A pid namespace that is not a runsc-py container's (here the host's
    own) can be joined; the sandbox then stays in the host's pid namespace,
    and the log says so."""
    holder = subprocess.Popen(["sleep", "60"])
    try:
        b = bundle("grep NSpid /proc/self/status", rootfs="shared")
        b.spec["linux"]["namespaces"] = [
            n if n["type"] != "pid" else {"type": "pid", "path": f"/proc/{holder.pid}/ns/pid"}
            for n in b.spec["linux"]["namespaces"]]
        b.write_config()
        log = workdir / "join.log"
        res = runtime.run_container(b, global_args=["--log", str(log)])
        assert res.returncode == 0, res
        assert len(res.stdout.split()) == 2, res  # "NSpid: <host pid>": the host's namespace
        assert "is not a runsc-py container's" in log.read_text()
    finally:
        holder.kill()
        holder.wait()


def test_no_kernel_addresses_even_with_all_capabilities(runtime, bundle):
    """CAP_SYSLOG is never carried into the sentry's host opens: /proc/kallsyms
    shows zeroed addresses (no KASLR leak) whatever the spec grants."""
    b = bundle("head -20 /proc/kallsyms | cut -d' ' -f1 | sort -u", rootfs="shared",
               config={"process": {"capabilities": ALL_CAPS}})
    res = runtime.run_container(b)
    assert res.returncode == 0, res
    assert res.stdout.split() == ["0000000000000000"], res


def _control_sockets(runtime, cid: str) -> list[str]:
    d = runtime.root / cid
    return [str(d / n) for n in ("sentry.sock", "start.sock") if (d / n).exists()]


def test_control_sockets_are_root_only_whatever_the_umask(runtime, bundle):
    """sentry.sock (listeners of `exec`) and start.sock are 0600 even when
    the runtime runs with umask 0 (containerd's shim may)."""
    b = bundle(["sleep", "30"], rootfs="shared")
    old = os.umask(0)
    try:
        with runtime.container(b, start=False) as c:
            socks = _control_sockets(runtime, c.id)
            assert len(socks) == 2, socks
            for s in socks:
                assert os.stat(s).st_mode & 0o777 == 0o600, (s, oct(os.stat(s).st_mode))
            # A non-root host user cannot connect at all.
            pid = os.fork()
            if pid == 0:
                import socket as _s
                code = 0
                try:
                    os.setgid(1000)
                    os.setuid(1000)
                    k = _s.socket(_s.AF_UNIX, _s.SOCK_STREAM)
                    k.connect(socks[0])
                except PermissionError:
                    code = 7
                except BaseException:
                    code = 9
                os._exit(code)
            _, status = os.waitpid(pid, 0)
            assert os.waitstatus_to_exitcode(status) == 7
    finally:
        os.umask(old)


def test_a_silent_peer_on_sentry_sock_does_not_stall_the_exit(runtime, bundle):
    """A peer that connects to sentry.sock and sends nothing must not keep
    the sandbox from mirroring the workload's exit (it used to block in a
    receive), nor keep it alive after."""
    import socket as _s
    b = bundle(["sh", "-c", "echo ready; read x < /dev/null; sleep 1; exit 3"], rootfs="shared")
    with runtime.container(b) as c:
        c.wait_output("ready")
        k = _s.socket(_s.AF_UNIX, _s.SOCK_STREAM)
        try:
            k.connect(str(runtime.root / c.id / "sentry.sock"))
            t0 = time.monotonic()
            st = c.wait_status("stopped", timeout=10)
            assert time.monotonic() - t0 < 4.0, "the silent peer held up the exit"
        finally:
            k.close()
        assert st["status"] == "stopped"


def test_strace_shows_every_answer_of_the_sandbox(runtime, bundle, workdir):
    """Refused calls the filter would answer itself are logged with their
    errno (strace mode routes them through the sentry), an injected fd is
    "= N (fd injected)", a continued call "(run by the kernel)"; the JSON
    form has one object per call."""
    import json
    b = bundle("cat /etc/hostname >/dev/null; mount -t tmpfs none /mnt 2>/dev/null; "
               "unshare -n true 2>/dev/null; true", rootfs="shared")
    log = workdir / "strace.log"
    res = runtime.run_container(b, global_args=["--log", str(log), "--strace"])
    assert res.returncode == 0, res
    text = log.read_text()
    assert re.search(r"openat\(AT_FDCWD, '/etc/hostname', [^)]*\) = \d+ \(fd injected\)", text), text
    assert re.search(r"mount\('none', '/mnt', [^)]*\) = -1 EPERM", text), text
    assert re.search(r"unshare\(\d+[^)]*\) = -1 EPERM", text), text
    assert re.search(r"execve\('/bin/sh', [^)]*\) = \? \(run by the kernel\)", text), text
    assert "continued in the kernel" not in text
    log2 = workdir / "strace.json"
    res = runtime.run_container(b, global_args=["--log", str(log2), "--strace",
                                                "--strace-format=json"])
    assert res.returncode == 0, res
    calls = [json.loads(ln) for ln in log2.read_text().splitlines() if ln.startswith('{"pid"')]
    assert calls, log2.read_text()
    by = {c["syscall"]: c for c in calls}
    assert by["mount"]["errno"] == "EPERM" and by["mount"]["result"] == -1
    opens = [c for c in calls if c["syscall"] in ("openat", "open") and "'/etc/hostname'" in c["args"]]
    assert opens and opens[0]["how"] == "fd injected" and opens[0]["result"] >= 0, opens


@pytest.mark.parametrize("net_raw,strace,release,config", [
    (False, False, "", {}),
    (True, True, "5.10.0", {}),
    (False, False, "", {"annotations": {"dev.runsc-py.uname-release": "4.4.0"}}),
    (False, False, "", {"linux": {"namespaces": [{"type": "uts"}, {"type": "pid"}]}}),
    (False, True, "6.1", {"linux": {"namespaces": [{"type": "uts", "path": "/proc/self/ns/uts"}]}}),
])
def test_the_dispatch_table_built_ahead_is_the_one_the_orders_ask_for(net_raw, strace, release, config) -> None:
    """create forks the sandbox with the policy fields its orders will
    carry (presandbox.policy_fields), so that it builds the sentry's
    dispatch table while it imports; prepare() takes that table only for
    exactly the options of its orders, and builds one otherwise."""
    from runsc_py import launch, presandbox, sandbox
    from sentry.policy import PolicyOptions
    spec = {"process": {"args": ["true"]}, **config}
    opts = launch.CreateOptions(cid="c", bundle=".", net_raw=net_raw, strace=strace, uname_release=release)
    want = sandbox.policy_options(launch._sandbox_options(opts, spec))
    n, uts, rel, trace = presandbox.policy_fields(net_raw, strace, release, spec)
    early = PolicyOptions(net_raw=n, uts_private=uts, uname_release=rel, trace_refused=trace)
    assert early == want
    table = object()
    assert sandbox.dispatch_for(want, (early, table)) is table
    other = want.replace(net_raw=not want.net_raw)
    built = sandbox.dispatch_for(other, (early, table))
    names = [getattr(h, "__name__", None) for h in sandbox.dispatch_for(other)]  # (--strace wraps: new closures)
    assert built is not table and [getattr(h, "__name__", None) for h in built] == names


def test_init_is_cloned_into_namespaces_of_its_own_and_the_caller_stays() -> None:
    """libc.fork_with (how the sandbox makes init): the child is the first
    process of a new pid namespace, in a mount namespace of its own; the
    caller's namespaces and its later children's do not change (unlike
    unshare(CLONE_NEWPID)), it can still make threads, and a caller that
    has threads is refused (a raw clone does not take malloc's locks)."""
    import sys
    from pathlib import Path
    root = Path(__file__).resolve().parents[1]
    code = f"""
import os, sys, threading
sys.path.insert(0, {str(root)!r})
from runsc_py import libc
ns = lambda p, k: os.readlink(f"/proc/{{p}}/ns/{{k}}")
r, w = os.pipe()
pid = libc.fork_with(libc.CLONE_NEWPID | libc.CLONE_NEWNS)
if pid == 0:
    os.write(w, f"{{os.getpid()}} {{ns('self', 'pid')}} {{ns('self', 'mnt')}}".encode())
    os._exit(3)
os.close(w)
child_pid, child_pidns, child_mnt = os.read(r, 200).decode().split()
assert os.waitpid(pid, 0)[1] >> 8 == 3
assert child_pid == "1", child_pid
assert child_pidns != ns("self", "pid") and child_mnt != ns("self", "mnt")
assert ns("self", "pid_for_children") == ns("self", "pid")
t = threading.Thread(target=lambda: None); t.start(); t.join()
ev = threading.Event(); t = threading.Thread(target=ev.wait); t.start()
try:
    libc.fork_with(libc.CLONE_NEWPID)
except RuntimeError as e:
    print("refused:", e)
ev.set(); t.join()
"""
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "refused: fork_with: the caller has threads", res.stdout
