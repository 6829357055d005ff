"""The gofer around real containers, in both file-access modes.

Checked from the host: the gofer is a process of its own (not in the
container's pid or network namespace, in its mount namespace, with its own
seccomp filter, no_new_privs, only file capabilities); the workload holds no
fd of the gofer's sockets; the sandbox goes down when the gofer dies.
Checked from inside, with --file-access=gofer and the default directfs: the
read-only root and read-only bind mounts, masked paths, symlink and ".."
escapes, and a renameat2(RENAME_EXCHANGE) race against path resolution.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from gofer.server import FILE_CAPS
from helpers import (RESERVED_FD, Runtime, container_platform, reserved_socket, run_ok, wait_ready,
                     wait_until)
from test_sandbox import ALL_CAPS, _status

pytestmark = pytest.mark.runsc_py_only

MODES = ["directfs", "gofer"]


def _with_mounts(*mounts: dict) -> object:
    """An edit= function appending MOUNTS to the spec's default mounts."""
    def edit(spec: dict) -> None:
        spec["mounts"] = list(spec.get("mounts") or []) + list(mounts)
    return edit


TMPFS_TMP = {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"}


def _children(pid: int) -> list[int]:
    kids = []
    for t in os.listdir(f"/proc/{pid}/task"):
        try:
            kids += [int(x) for x in Path(f"/proc/{pid}/task/{t}/children").read_text().split()]
        except OSError:
            pass
    return kids


def _comm(pid: int) -> str:
    return Path(f"/proc/{pid}/comm").read_text().strip()


def _start_time(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    return int(data[data.rfind(b")") + 2:].split()[19])


def _gofer_of(sandbox_pid: int) -> int:
    gofers = [p for p in _children(sandbox_pid) if _comm(p) == "runsc-gofer"]
    assert len(gofers) == 1, f"children of the sandbox: {[(p, _comm(p)) for p in _children(sandbox_pid)]}"
    return gofers[0]


def _ns(pid: int, kind: str) -> int:
    return os.stat(f"/proc/{pid}/ns/{kind}").st_ino


def _socket_inodes(pid: int) -> set[str]:
    out = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            t = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if t.startswith("socket:"):
            out.add(t)
    return out


def test_workload_sentry_and_gofer_are_separate_processes(runtime, bundle):
    """Gofer mode: the gofer serves every file operation for the
    container's life (in directfs mode it exits once it has given the
    root: test_directfs_gofer_exits_once_it_gave_the_root)."""
    b = bundle(["sh", "-c", "echo ready; exec sleep 30"], rootfs="shared")
    cid = runtime.new_id("gp")
    res = runtime.run_container(b, cid, detach=True, pid_file=runtime.ctx.workdir / f"{cid}.pid",
                                global_args=["--file-access=gofer"])
    assert res.returncode == 0, res
    try:
        sandbox = int((runtime.ctx.workdir / f"{cid}.pid").read_text())
        runtime.ctx.remember_pid(sandbox)
        workload = [p for p in runtime.ps(cid) if p != sandbox]
        assert len(workload) == 1, workload
        init = workload[0]
        gofer = _gofer_of(sandbox)
        # Three processes, three roles.
        assert _comm(sandbox) == "runsc-sandbox"
        assert _comm(gofer) == "runsc-gofer"
        assert _comm(init) == "sleep"
        assert gofer not in runtime.ps(cid), "ps lists the container's processes, not the gofer"
        # The gofer: outside the container's pid namespace, no network (an
        # empty namespace of its own), in the container's mount namespace.
        assert _ns(gofer, "pid") != _ns(init, "pid")
        assert _ns(gofer, "net") not in (_ns(init, "net"), _ns(os.getpid(), "net"))
        assert _ns(gofer, "mnt") == _ns(init, "mnt")
        assert _ns(sandbox, "mnt") != _ns(init, "mnt")
        # It confines itself right after it has given the root (gofer/server.py).
        wait_until(lambda: _status(gofer)["Seccomp"] == "2", 5, "the gofer's own filter")
        g = _status(gofer)
        assert g["Seccomp"] == "2" and g["NoNewPrivs"] == "1", g
        assert int(g["CapEff"], 16) == FILE_CAPS, g["CapEff"]
        assert int(g["CapBnd"], 16) == FILE_CAPS, g["CapBnd"]
        assert Path(f"/proc/{gofer}/environ").stat().st_uid == 0  # non-dumpable: root-owned
        # The workload holds no socket of the gofer's (nor of the sandbox's),
        # but on the ptrace platform its reserved one, whose other end (and
        # a copy of its own, to clear what a failed injection left) is the
        # sandbox's: the channel fds are given through, not a control socket.
        traced = container_platform(runtime, cid) == "ptrace"

        def own_fds(pid: int) -> tuple[set[str], list[int]]:
            socks, fds = _socket_inodes(pid), [int(fd) for fd in os.listdir(f"/proc/{pid}/fd")]
            if traced:
                socks.discard(reserved_socket(pid))
                fds.remove(RESERVED_FD)
            return socks, fds
        ours, fds = own_fds(init)
        assert not ours & (_socket_inodes(gofer) | _socket_inodes(sandbox))
        assert all(fd <= 2 for fd in fds), fds
        # Nor does a process `exec` adds (it enters through sentry.sock).
        res = runtime.exec(cid, "sleep", "30", detach=True, pid_file=runtime.ctx.workdir / f"{cid}.exec.pid")
        assert res.returncode == 0, res
        extra = [p for p in runtime.ps(cid) if p not in (sandbox, init)]
        assert len(extra) == 1, extra
        theirs, fds = own_fds(extra[0])
        assert not theirs & (_socket_inodes(gofer) | _socket_inodes(sandbox))
        assert all(fd <= 2 for fd in fds), fds
    finally:
        runtime.run("delete", "--force", cid)


def test_directfs_gofer_exits_once_it_gave_the_root(runtime, bundle):
    """directfs: the gofer's one job is to give the sentry the container's
    root at the start; then it exits (the sandbox reaps it: no zombie),
    and the container goes on: files, a new process through `exec`, a
    clean stop.  Only the sentry holds the root from then on."""
    b = bundle(["sh", "-c", "echo ready; while :; do cat /etc/hostname >/dev/null; sleep 0.05; done"],
               rootfs="shared")
    with runtime.container(b, global_args=["--file-access=directfs"]) as c:
        wait_ready(c)
        wait_until(lambda: not [p for p in _children(c.pid) if _comm(p) == "runsc-gofer"], 10,
                   "the gofer to exit and be reaped")
        children = _children(c.pid)
        assert len(children) == 1 and children[0] in c.ps(), "the sandbox's one child: init"
        assert c.state()["status"] == "running"
        assert c.exec("cat", "/etc/hostname").returncode == 0
        # Past the sandbox's tidying (a collection and malloc_trim, 1 s
        # after the start, under its own seccomp allowlist): still serving.
        time.sleep(1.5)
        assert c.state()["status"] == "running", "the loop still reads files"
        assert c.exec("cat", "/etc/hostname").returncode == 0
        c.kill("KILL")
        c.wait_status("stopped", timeout=10)


def test_gofer_death_before_the_start_tears_down_the_sandbox(runtime, bundle):
    """Until it has given the root (directfs) the gofer is needed: its
    death then ends the container, as in gofer mode at any time."""
    b = bundle(["sh", "-c", "echo ready; exec sleep 30"], rootfs="shared")
    with runtime.container(b, start=False, global_args=["--file-access=directfs"]) as c:
        gofer = _gofer_of(c.pid)
        _kill_gofer_and_see_the_workload_die(c, gofer, [p for p in _children(c.pid) if p != gofer][0])


def test_gofer_death_tears_down_the_sandbox(runtime, bundle):
    # In gofer mode the workload keeps asking for files while the gofer dies.
    b = bundle(["sh", "-c", "echo ready; while :; do cat /etc/passwd >/dev/null; done"], rootfs="shared")
    with runtime.container(b, global_args=["--file-access=gofer"]) as c:
        wait_ready(c)
        _kill_gofer_and_see_the_workload_die(c, _gofer_of(c.pid), [p for p in c.ps() if p != c.pid][0])


def _kill_gofer_and_see_the_workload_die(c, gofer: int, init: int) -> None:  # type: ignore[no-untyped-def]
    os.kill(gofer, signal.SIGKILL)
    c.wait_status("stopped", timeout=10)
    wait_until(lambda: not os.path.exists(f"/proc/{init}") or _status(init)["State"].startswith("Z"),
               10, "the workload to die with its gofer")
    c.delete()


def test_delete_leaves_no_gofer(runtime, bundle):
    b = bundle(["sh", "-c", "echo ready; exec sleep 60"], rootfs="shared")
    with runtime.container(b, global_args=["--file-access=gofer"]) as c:
        wait_ready(c)
        gofer = _gofer_of(c.pid)
        c.kill("KILL")
        c.wait_status("stopped", timeout=10)
        c.delete()
        wait_until(lambda: not os.path.exists(f"/proc/{gofer}"), 10, "the gofer to be reaped")


def test_kill_all_term_reaches_the_workload_not_the_gofer(runtime, bundle):
    # The workload notes the TERM and keeps running: the gofer, which
    # ignores every catchable signal, must still be there (same process)
    # and still serving files afterwards.
    script = ("trap 'echo got-term' TERM; echo ready; "
              "while :; do sleep 0.1; [ -e /tmp/stop ] && break; done; cat /etc/hostname; echo bye")
    b = bundle(["sh", "-c", script], rootfs="shared", edit=_with_mounts(TMPFS_TMP))
    with runtime.container(b, global_args=["--file-access=gofer"]) as c:
        wait_ready(c)
        gofer = _gofer_of(c.pid)
        start = _start_time(gofer)
        c.kill("TERM", all=True)
        c.wait_output("got-term")
        time.sleep(0.3)
        assert _start_time(gofer) == start, "the gofer died of kill --all TERM"
        c.exec("touch", "/tmp/stop", user="0:0")
        c.wait_output("bye")
        c.wait_status("stopped", timeout=10)
        assert "got-term" in c.stdout()


# --- inside the container, both modes ---------------------------------------------

@pytest.fixture
def host_dir() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="rsp-gofer-src-", dir="/tmp"))
    (d / "f").write_text("host-data\n")
    os.chmod(d / "f", 0o644)  # explicit: an earlier test may have left umask 0
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.mark.parametrize("mode", MODES)
def test_read_only_root_and_bind_mounts_with_every_capability(runtime, bundle, host_dir, mode):
    script = ("for p in /newfile /data/newfile; do touch $p 2>&1 || true; done; "
              "mkdir /data/d 2>&1 || true; rm /data/f 2>&1 || true; chmod 600 /data/f 2>&1 || true; "
              "ln -s x /data/l 2>&1 || true; mknod /data/p p 2>&1 || true; "
              "mv /data/f /data/g 2>&1 || true; echo rw > /tmp/rw && cat /tmp/rw; cat /data/f")
    b = bundle(script, config={"root": {"readonly": True}, "process": {"capabilities": ALL_CAPS}},
               edit=_with_mounts({"destination": "/data", "type": "bind", "source": str(host_dir),
                                  "options": ["rbind", "ro"]}, TMPFS_TMP))
    out = run_ok(runtime, b, global_args=[f"--file-access={mode}"])
    assert out.count("Read-only file system") == 8, out
    assert "rw\nhost-data" in out, out
    assert sorted(os.listdir(host_dir)) == ["f"]
    assert (host_dir / "f").stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize("mode", MODES)
def test_masked_and_read_only_paths(runtime, bundle, mode):
    # (This kernel has no /proc/kcore or /proc/sysrq-trigger: the spec's
    # other masked paths stand in.)
    script = ("wc -c < /proc/keys; (echo x > /proc/keys) 2>/dev/null; wc -c < /proc/keys; "
              "wc -c < /proc/timer_list; ls /proc/acpi | wc -l; ls /sys/firmware | wc -l; "
              "(echo 1 > /proc/sys/kernel/domainname) 2>&1; "
              "(echo 1 > /proc/sys/vm/drop_caches) 2>&1; true")
    # Masked paths of the container's own files, which exist and are not
    # empty: a file reads as empty (runc binds /dev/null: a write is
    # discarded), a directory lists as empty and takes no new file.
    script += ("; wc -c < /etc/secret; (echo x > /etc/secret) 2>/dev/null; wc -c < /etc/secret; "
               "ls /etc/private | wc -l; (echo x > /etc/private/new) 2>&1; "
               "cat /etc/private/key 2>&1; cat /etc/visible")
    b = bundle(script, config={"process": {"capabilities": ALL_CAPS}},
               files={"etc/secret": "secret\n", "etc/private/key": "key\n", "etc/visible": "visible\n"},
               edit=lambda spec: spec["linux"]["maskedPaths"].extend(["/etc/secret", "/etc/private"]))
    out = run_ok(runtime, b, global_args=[f"--file-access={mode}"]).splitlines()
    assert [ln.strip() for ln in out[:5]] == ["0"] * 5, out   # masked: empty
    assert "Read-only file system" in out[5], out
    assert "Read-only file system" in out[6], out
    assert [ln.strip() for ln in out[7:10]] == ["0", "0", "0"], out
    assert "Read-only file system" in out[10], out
    assert "No such file or directory" in out[11], out
    assert out[12] == "visible", out
    assert (b.rootfs / "etc" / "secret").read_text() == "secret\n"
    assert not (b.rootfs / "etc" / "private" / "new").exists()

from helpers import KNOWN_DIFFERENCES  # noqa: E402  (lines of the probe that differ, with why)


@pytest.fixture(scope="module")
def fsprobe(tmp_path_factory) -> Path:
    """tests/sentry/fsprobe.c, static: the file-semantics probe."""
    out = tmp_path_factory.mktemp("fsprobe") / "fsprobe"
    subprocess.run(["gcc", "-static", "-O2", "-o", str(out),
                    str(Path(__file__).parent / "sentry" / "fsprobe.c")], check=True)
    return out


@pytest.mark.parametrize("mode", MODES)
def test_file_semantics_probe_matches_runc(runtime, bundle, test_ctx, fsprobe, mode):
    """The probe (create, rename and RENAME_EXCHANGE, link, unlink, mkdir,
    rmdir, chmod, utimes, truncate, getdents, xattrs, AF_UNIX by path,
    inotify, escapes) in a real container: every line as under runc.  This
    runs the sentry with its own seccomp filter and in its empty root, which
    the in-process tests (tests/sentry) do not."""
    runc = Runtime(test_ctx, "/usr/sbin/runc", root=test_ctx.workdir / "runc-root", is_runc=True)
    outs = {}
    for name, rt, extra in (("runc", runc, []), ("runsc-py", runtime, [f"--file-access={mode}"])):
        b = bundle(["/fsprobe"], name=f"fs-{name}",
                   config={"root": {"readonly": False}, "process": {"cwd": "/work"}},
                   files={"etc/hello": "hello-root\n", "secret": "root-only\n", "work/.keep": ""})
        os.unlink(b.rootfs / "work" / ".keep")
        os.chmod(b.rootfs / "secret", 0o600)
        shutil.copy(fsprobe, b.rootfs / "fsprobe")
        outs[name] = run_ok(rt, b, global_args=extra, timeout=120).splitlines()
    diffs = [(n, s) for n, s in zip(outs["runc"], outs["runsc-py"])
             if n != s and n.split()[:1] not in KNOWN_DIFFERENCES]
    assert not diffs and len(outs["runc"]) == len(outs["runsc-py"]), \
        "\n".join(f"runc:     {n}\nrunsc-py: {s}" for n, s in diffs)
    got = {ln.split()[0]: ln.split()[1:] for ln in outs["runsc-py"] if ln.strip()}
    assert got["renameat2-exchange"] == ["0", "0"]   # the steps really did something
    assert got["getxattr"][2] == "value"
    assert got["inotify-event"] == ["1", "newdir"]


@pytest.mark.parametrize("mode", MODES)
def test_links_to_proc_self_are_the_callers(runtime, bundle, mode):
    """/dev/fd and /dev/stdin lead into /proc/self, which names nothing for
    the sentry (it has no pid in the container's namespace): the kernel's
    resolution ends in ENOENT behind a symlink, and the walk follows the
    link for the caller.  In gofer mode that ENOENT and the probe for a
    symlink on the way come back in one round trip."""
    script = ("echo from-stdin | cat /dev/stdin; cat /dev/fd/0 </etc/hostname >/dev/null && "
              "echo devfd-ok; ls /dev/fd/ | grep -c '^[0-9]'; "
              "cat /dev/fd/9 2>&1 | grep -c 'No such file'; cat /no/such 2>&1 | grep -c 'No such file'")
    b = bundle(script, rootfs="shared")
    out = run_ok(runtime, b, global_args=[f"--file-access={mode}"]).split()
    assert out[:2] == ["from-stdin", "devfd-ok"], out
    assert int(out[2]) >= 3, out
    assert out[3:] == ["1", "1"], out


@pytest.mark.parametrize("mode", MODES)
def test_created_files_get_the_callers_umask_only(runtime, bundle, mode):
    """The mode of a new file, directory or FIFO is the caller's mode minus
    the caller's umask, as natively: the gofer, which creates them in gofer
    mode, must not mask them again with its own (umask 0 gave 644/755)."""
    script = ("mkdir /umask && cd /umask && umask 0 && touch f && mkdir d && mkfifo p && stat -c %a f d p && "
              "umask 027 && touch g && mkdir e && mkfifo q && stat -c %a g e q")
    b = bundle(["sh", "-c", script], edit=lambda s: s["root"].update(readonly=False))
    out = run_ok(runtime, b, global_args=[f"--file-access={mode}"]).split()
    assert out == ["666", "777", "666", "640", "750", "640"], out


@pytest.mark.parametrize("mode", MODES)
def test_symlink_and_dotdot_escapes_stay_inside(runtime, bundle, mode):
    marker = Path(tempfile.mkdtemp(prefix="rsp-marker-", dir="/tmp"))
    name = f"escape-{uuid.uuid4().hex[:8]}"
    (marker / name).write_text("HOST-SECRET\n")
    try:
        rel = os.path.relpath(marker / name, "/")
        dots = "/".join([".."] * 40)
        script = (f"cd /tmp; ln -s /{dots}/{rel} abs; ln -s {dots}/{rel} relative; "
                  f"ln -s /proc/self/root/{dots}/{rel} viaroot; "
                  f"for p in abs relative viaroot /{dots}/{rel} {dots}/{rel} "
                  f"/proc/self/cwd/{dots}/{rel} /proc/1/root/{dots}/{rel} "
                  f"/proc/self/fd/0/../{dots}/{rel} /dev/fd/../../{dots}/{rel}; do "
                  f"cat $p 2>/dev/null; done; echo done")
        b = bundle(script, config={"process": {"capabilities": ALL_CAPS}},
                   edit=_with_mounts(TMPFS_TMP))
        out = run_ok(runtime, b, global_args=[f"--file-access={mode}"])
        assert "HOST-SECRET" not in out, out
        assert out.strip().endswith("done"), out
    finally:
        shutil.rmtree(marker, ignore_errors=True)


RACE_C = Path(__file__).parent / "sentry" / "race.c"  # also run under the harness (tests/sentry)


@pytest.fixture(scope="module")
def race_binary() -> Iterator[Path]:
    if shutil.which("gcc") is None:
        pytest.fail("gcc is missing: scripts/setup.sh installs it")
    d = Path(tempfile.mkdtemp(prefix="rsp-race-", dir="/tmp"))
    subprocess.run(["gcc", "-static", "-O2", "-pthread", "-o", str(d / "race"), str(RACE_C)],
                   check=True, capture_output=True)
    yield d / "race"
    shutil.rmtree(d, ignore_errors=True)


@pytest.mark.parametrize("mode", MODES)
def test_rename_exchange_race_stays_inside(runtime, bundle, race_binary, mode):
    marker = Path(tempfile.mkdtemp(prefix="rsp-marker-", dir="/tmp"))
    (marker / "secret").write_text("HOST-SECRET\n")
    try:
        dots = "/".join([".."] * 40)
        target = f"{dots}{marker}"        # the symlink's text: far above the root
        b = bundle(["/race", target, "3000", "secret"],
                   files={"race": race_binary.read_bytes()},
                   config={"process": {"cwd": "/tmp", "capabilities": ALL_CAPS}},
                   edit=_with_mounts(TMPFS_TMP))
        os.chmod(b.rootfs / "race", 0o755)
        out = run_ok(runtime, b, global_args=[f"--file-access={mode}"], timeout=120)
        opened, host = out.split()[1], out.split()[3]
        assert host == "0", out
        assert int(opened) > 0, out
    finally:
        shutil.rmtree(marker, ignore_errors=True)


@pytest.mark.parametrize("mode", MODES)
def test_execve_binary_and_interpreter_checked_in_the_root(runtime, bundle, mode):
    """The sentry answers a refused exec itself (strace shows the errno, not
    a CONTINUE), with the kernel's errno, through the file interface."""
    script = ('printf "#!/nonexistent/sh\\n" > /tmp/s1; chmod +x /tmp/s1; /tmp/s1; '
              'printf "#!/bin/sh\\necho script-ok\\n" > /tmp/s2; chmod +x /tmp/s2; /tmp/s2; '
              'touch /tmp/plain; /tmp/plain; /tmp; /nope; true')
    b = bundle(script, edit=_with_mounts(TMPFS_TMP))
    log = runtime.ctx.workdir / f"strace-{mode}.log"
    res = runtime.run_container(b, global_args=[f"--file-access={mode}", "--log", str(log),
                                                "--strace", "--strace-syscalls=execve"])
    assert res.returncode == 0, res
    assert "script-ok" in res.stdout, res
    lines = [ln for ln in log.read_text().splitlines() if "execve(" in ln]
    want = {"/tmp/s1": "ENOENT", "/tmp/s2": "run by the kernel", "/tmp/plain": "EACCES", "/tmp'": "EACCES",
            "/nope": "ENOENT"}
    for path, outcome in want.items():
        hit = [ln for ln in lines if f"execve('{path}" in ln]
        assert hit and outcome in hit[0], (path, hit or lines)


def test_policy_prints_the_gofers_own_allowlist(runtime):
    res = runtime.run("policy", "--gofer", "--format", "json", root=False)
    assert res.returncode == 0, res
    import json
    names = {row["name"] for row in json.loads(res.stdout)}
    assert {"openat2", "mkdirat", "renameat2", "recvmsg", "sendmsg", "capset"} <= names
    assert not names & {"execve", "socket", "bind", "connect", "process_vm_readv", "pidfd_getfd",
                        "kill", "ptrace", "mount", "setns", "unshare"}
    sentry = {row["name"] for row in json.loads(runtime.run("policy", "--sentry", "--format", "json",
                                                             root=False).stdout)}
    assert "process_vm_readv" in sentry and "execve" not in sentry


# --- the lookup cache, in both modes (sentry/lookups.py) --------------------------

HOME = "/home/user"


@pytest.mark.parametrize("mode", ["directfs", "gofer"])
def test_lookup_cache_follows_the_sandboxs_own_changes(runtime, bundle, mode):
    """Lookups the cache answers (stat, test -e) see every change the
    sandbox makes: creates (by an open alone, too), renames, unlinks, and a chmod that takes away
    search permission (uid 1000, no capabilities: a cached answer from
    before the chmod would still find the file)."""
    script = ("cd ~ && mkdir d && touch d/f; stat -c ok1 ~/d/f; chmod 0 ~/d; "
              "stat -c %n ~/d/f 2>&1 | grep -c 'Permission denied'; chmod 755 ~/d; "
              "test -e ~/g || echo g-missing; touch ~/g; test -e ~/g && echo g-created; "
              "test -e ~/n || echo n-missing; echo > ~/n; test -e ~/n && echo n-created; "
              "mv ~/d ~/e; test -e ~/d/f || echo d-gone; test -e ~/e/f && echo e-there; "
              "rm ~/e/f; test -e ~/e/f || echo f-removed; "
              "ln -s e ~/l; test -e ~/l/h || echo h-missing; echo > ~/e/h; test -e ~/l/h && echo h-via-link; "
              "rmdir ~/e 2>/dev/null || rm -r ~/e; test -e ~/l/h || echo h-gone")
    b = bundle(script, config={"root": {"readonly": False},
                               "process": {"user": {"uid": 1000, "gid": 1000},
                                           "env": ["PATH=/bin:/usr/bin", f"HOME={HOME}"]}})
    home = b.rootfs / HOME.lstrip("/")
    home.mkdir(parents=True, exist_ok=True)
    os.chown(home, 1000, 1000)
    res = runtime.run_container(b, global_args=[f"--file-access={mode}"])
    out = res.stdout.split()
    assert out == ["ok1", "1", "g-missing", "g-created", "n-missing", "n-created", "d-gone", "e-there", "f-removed",
                   "h-missing", "h-via-link", "h-gone"], (res.stdout, res.stderr)


@pytest.mark.parametrize("mode", ["directfs", "gofer"])
@pytest.mark.parametrize("setup", ["default", "no-cache", "dir-bind-mount"])
def test_lookup_cache_keeps_answers_until_the_sandbox_changes_files(runtime, bundle, host_dir, setup,
                                                                    mode):
    """The cache assumes, like gVisor's exclusive file access, that nothing
    outside the sandbox changes its root: a file removed and one created
    behind its back are not seen until the sandbox changes something
    itself.  A mkdir only adds a name: then the created file is seen, the
    removed one not yet; an rmdir removes one: then both.  --lookup-cache=false, and a bind-mounted
    directory in the spec (the host may change it), turn it off: then every
    lookup is the kernel's.  (The FIFO is opened read-write, so that no
    handler blocks: a blocked handler would start a second supervisor
    thread, with a cache of its own.)"""
    script = ("exec > /result 3<>/sync; test -e /victim && echo v1; test -e /later || echo l0; "
              "echo ready; read x <&3; test -e /victim && echo v2 || echo v2-gone; "
              "test -e /later && echo l2 || echo l2-missing; mkdir /made; "
              "test -e /victim && echo v3 || echo v3-gone; test -e /later && echo l3; rmdir /made; "
              "test -e /victim && echo v4 || echo v4-gone; echo done")
    edit = None
    if setup == "dir-bind-mount":
        edit = _with_mounts({"destination": "/data", "type": "bind", "source": str(host_dir),
                             "options": ["rbind", "ro"]})
    b = bundle(script, edit=edit, config={"root": {"readonly": False}})
    (b.rootfs / "victim").write_text("x\n")
    os.mkfifo(b.rootfs / "sync")
    result = b.rootfs / "result"
    cid = runtime.new_id("lc")
    flags = [f"--file-access={mode}"] + (["--lookup-cache=false"] if setup == "no-cache" else [])
    res = runtime.run_container(b, cid, detach=True, pid_file=runtime.ctx.workdir / f"{cid}.pid",
                                global_args=flags)
    assert res.returncode == 0, res
    try:
        runtime.ctx.remember_pid(int((runtime.ctx.workdir / f"{cid}.pid").read_text()))
        wait_until(lambda: result.exists() and "ready" in result.read_text(), 20, "ready")
        (b.rootfs / "victim").unlink()
        (b.rootfs / "later").write_text("y\n")
        fd = os.open(b.rootfs / "sync", os.O_WRONLY)  # the container has it open for reading
        os.write(fd, b"go\n")
        os.close(fd)
        wait_until(lambda: "done" in result.read_text(), 20, "done")
    finally:
        runtime.run("delete", "--force", cid)
    out = result.read_text().split()
    if setup == "default":
        assert out == ["v1", "l0", "ready", "v2", "l2-missing", "v3", "l3", "v4-gone", "done"], out
    else:
        assert out == ["v1", "l0", "ready", "v2-gone", "l2", "v3-gone", "l3", "v4-gone", "done"], out


@pytest.mark.parametrize("mode", ["directfs", "gofer"])
@pytest.mark.parametrize("setup", ["default", "no-cache"])
def test_lookup_cache_an_unlinked_file_keeps_directory_lookups(runtime, bundle, mode, setup):
    """Unlinking a file (not a directory, not a symlink) can only change
    lookups that end at it: the sandbox's rm drops what it knew of files
    (the host's removal of /victim is seen) and keeps what it knew of
    directories (the host's removal of /keepdir is not, until a change
    that may touch directories).  Without the cache both are seen."""
    script = ("exec > /result 3<>/sync; test -d /keepdir && echo d1; test -e /victim && echo v1; "
              "echo > /mine; echo ready; read x <&3; rm /mine; "
              "test -d /keepdir && echo d2 || echo d2-gone; "
              "test -e /victim && echo v2 || echo v2-gone; mv /result /result2; "
              "test -d /keepdir && echo d3 || echo d3-gone; echo done")
    b = bundle(script, config={"root": {"readonly": False}})
    (b.rootfs / "victim").write_text("x\n")
    (b.rootfs / "keepdir").mkdir()
    os.mkfifo(b.rootfs / "sync")
    cid = runtime.new_id("lcu")
    flags = [f"--file-access={mode}"] + (["--lookup-cache=false"] if setup == "no-cache" else [])
    res = runtime.run_container(b, cid, detach=True, pid_file=runtime.ctx.workdir / f"{cid}.pid",
                                global_args=flags)
    assert res.returncode == 0, res
    result = b.rootfs / "result"
    try:
        runtime.ctx.remember_pid(int((runtime.ctx.workdir / f"{cid}.pid").read_text()))
        wait_until(lambda: result.exists() and "ready" in result.read_text(), 20, "ready")
        (b.rootfs / "victim").unlink()
        (b.rootfs / "keepdir").rmdir()
        fd = os.open(b.rootfs / "sync", os.O_WRONLY)
        os.write(fd, b"go\n")
        os.close(fd)
        wait_until(lambda: (b.rootfs / "result2").exists()
                   and "done" in (b.rootfs / "result2").read_text(), 20, "done")
    finally:
        runtime.run("delete", "--force", cid)
    out = (b.rootfs / "result2").read_text().split()
    if setup == "default":
        assert out == ["d1", "v1", "ready", "d2", "v2-gone", "d3-gone", "done"], out
    else:
        assert out == ["d1", "v1", "ready", "d2-gone", "v2-gone", "d3-gone", "done"], out


ATTRS_C = r"""
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
/* stat, then change the same path's attributes by path, three times over:
   the lookups of utimensat/fchownat/fchmodat2 share the stat's cache key. */
int main(void) {
    struct stat st;
    struct timespec ts[2] = {{5, 0}, {5, 0}};
    close(open("/f", O_CREAT | O_WRONLY, 0644));
    for (int i = 0; i < 3; i++) {
        if (stat("/f", &st)) { perror("stat"); return 1; }
        if (utimensat(AT_FDCWD, "/f", ts, 0)) { perror("utimensat"); return 1; }
        if (stat("/f", &st) || st.st_mtime != 5) { perror("stat after utimensat"); return 1; }
        if (fchownat(AT_FDCWD, "/f", 0, 0, 0)) { perror("fchownat"); return 1; }
        if (stat("/f", &st)) { perror("stat after fchownat"); return 1; }
        if (syscall(452, AT_FDCWD, "/f", 0600, 0)) { perror("fchmodat2"); return 1; }
        if (stat("/f", &st) || (st.st_mode & 0777) != 0600) { perror("stat after fchmodat2"); return 1; }
    }
    puts("ok");
    return 0;
}
"""


@pytest.mark.parametrize("mode", ["directfs", "gofer"])
def test_lookup_cache_changing_a_cached_object_by_path(runtime, bundle, mode, tmp_path):
    """stat, then change the same path's attributes by path (utimensat,
    fchownat, fchmodat2), then stat again, all following the name (one key
    in the cache): the changing calls' own lookups must never close the
    cache's fd under it (they take their own)."""
    (tmp_path / "attrs.c").write_text(ATTRS_C)
    subprocess.run(["gcc", "-static", "-O2", "-o", str(tmp_path / "attrs"), str(tmp_path / "attrs.c")],
                   check=True, capture_output=True)
    b = bundle("/attrs", config={"root": {"readonly": False}})
    shutil.copy(tmp_path / "attrs", b.rootfs / "attrs")
    res = runtime.run_container(b, global_args=[f"--file-access={mode}"])
    assert res.stdout.split() == ["ok"], (res.stdout, res.stderr)


@pytest.mark.parametrize("mode", ["directfs", "gofer"])
def test_lookup_cache_keeps_nothing_that_depends_on_the_caller(runtime, bundle, mode):
    """What /proc/self/cwd (or /dev/fd/N, /proc/self/exe) leads to depends
    on the calling process and its state, which the cache's key is not:
    the same path after a chdir names the new cwd's file."""
    script = ("mkdir /a /b; touch /a/f; cd /a; test -e /proc/self/cwd/f && echo a-f; "
              "cd /b; test -e /proc/self/cwd/f && echo stale || echo b-none; "
              "touch /b/f; test -e /proc/self/cwd/f && echo b-f")
    b = bundle(script, config={"root": {"readonly": False}})
    res = runtime.run_container(b, global_args=[f"--file-access={mode}"])
    assert res.stdout.split() == ["a-f", "b-none", "b-f"], (res.stdout, res.stderr)
