"""The container lifecycle as the OCI validation tools, containerd's shim and
conmon drive it: create -> start -> kill -> (state notices) -> delete, `run`
attached and detached, bad transitions, stdio and console-socket plumbing."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from helpers import read_until, subreaper_probe

# sh as pid 1 ignores signals it has no handler for: trap TERM/INT/HUP/USR1.
TRAPPING = ('trap "echo got-signal; exit 7" TERM INT HUP USR1; echo ready; '
            'sleep 30 & wait')


def _assert_gone(runtime, cid):
    res = runtime.run("state", cid)
    assert res.returncode != 0, res
    assert "container does not exist" in res.stderr, res
    assert not (runtime.root / cid).exists(), "state dir left after delete"


@pytest.mark.parametrize("sig", ["TERM", "SIGTERM", "15", "KILL", "SIGKILL", "9", "USR1"])
def test_validation_flow(runtime, bundle, workdir, sig):
    """create (pid file, stdio as files, no console) -> created -> start ->
    running -> kill -> stopped (nobody reaps: state notices) -> delete."""
    b = bundle(TRAPPING, rootfs="shared")
    cid = runtime.new_id("flow")
    pid_file = workdir / "flow.pid"
    res = runtime.create(cid, b, pid_file=pid_file)
    content = pid_file.read_text()
    assert content.isdigit(), f"pid file must hold only digits, got {content!r}"
    st = runtime.state(cid)
    assert st["status"] == "created"
    assert st["pid"] == int(content) > 0
    assert st["id"] == cid and st["bundle"] == str(b.path)
    assert os.path.exists(f"/proc/{st['pid']}")

    runtime.start(cid)
    st = runtime.state(cid)
    assert st["status"] == "running"
    assert st["pid"] == int(content)
    # the container's stdout is the runtime's (a file here)
    b_out = res.stdout_path
    _wait_in_file(b_out, "ready")

    runtime.kill(cid, sig)
    st = runtime.wait_status(cid, "stopped")
    assert st["pid"] == 0, "a stopped container's state pid is 0"
    if sig not in ("KILL", "SIGKILL", "9"):
        _wait_in_file(b_out, "got-signal")

    runtime.delete(cid)
    _assert_gone(runtime, cid)


def _wait_in_file(path, needle, timeout=10):
    from helpers import wait_until
    wait_until(lambda: needle in path.read_text(), timeout, f"{needle!r} in {path}")


def test_kill_created_container(runtime, bundle):
    """A container killed before `start` is stopped; its program never ran."""
    b = bundle("echo SHOULD-NOT-RUN", rootfs="shared")
    with runtime.container(b, start=False) as c:
        assert c.status == "created"
        c.kill("KILL")
        c.wait_status("stopped")
        c.delete()
        _assert_gone(runtime, c.id)
        assert "SHOULD-NOT-RUN" not in c.stdout()


def test_run_attached_returns_exit_code_and_output(runtime, bundle):
    b = bundle("echo out; echo err >&2; exit 3", rootfs="shared")
    res = runtime.run_container(b)
    assert res.returncode == 3, res
    assert res.stdout == "out\n"
    assert "err\n" in res.stderr
    # `run` without --keep deletes the container when it exits
    _assert_gone(runtime, res.id)


def test_run_attached_stdin(runtime, bundle):
    b = bundle(["cat"], rootfs="shared")
    res = runtime.run_container(b, input="piped data\n")
    assert res.returncode == 0, res
    assert res.stdout == "piped data\n"


def test_run_detach(runtime, bundle, workdir):
    b = bundle("echo detached-out; exec sleep 30", rootfs="shared")
    pf = workdir / "run.pid"
    res = runtime.run_container(b, detach=True, pid_file=pf)
    assert res.returncode == 0, res
    cid = res.id
    st = runtime.state(cid)
    assert st["status"] == "running"
    assert st["pid"] == int(pf.read_text())
    from helpers import wait_until
    wait_until(lambda: "detached-out" in res.read_stdout(), 10, "the detached output")
    runtime.kill(cid, "KILL")
    runtime.wait_status(cid, "stopped")
    runtime.delete(cid)
    _assert_gone(runtime, cid)


def test_start_stopped_container_fails(runtime, bundle):
    b = bundle("true", rootfs="shared")
    with runtime.container(b) as c:
        c.wait_status("stopped")
        res = c.start(check=False)
        assert res.returncode != 0, res
        assert "cannot start a container that has stopped" in res.stderr, res
        assert c.status == "stopped"


def test_start_twice_fails(runtime, bundle):
    b = bundle(["sleep", "30"], rootfs="shared")
    with runtime.container(b) as c:
        assert c.status == "running"
        res = c.start(check=False)
        assert res.returncode != 0, res
        assert "cannot start an already running container" in res.stderr, res
        assert c.status == "running"


def test_delete_running_needs_force(runtime, bundle):
    b = bundle(["sleep", "30"], rootfs="shared")
    with runtime.container(b) as c:
        res = c.delete(check=False)
        assert res.returncode != 0, res
        assert res.stderr.strip()
        assert c.status == "running"
        c.delete(force=True)
        _assert_gone(runtime, c.id)


def test_delete_created_without_force(runtime, bundle):
    b = bundle(["sleep", "30"], rootfs="shared")
    with runtime.container(b, start=False) as c:
        pid = c.pid
        c.delete()
        _assert_gone(runtime, c.id)
        from helpers import proc_stat, wait_until
        wait_until(lambda: (proc_stat(pid) or ("Z",))[0] in ("Z", "X"), 5,
                   "the created container's process to die")


def test_delete_force_unknown_id_succeeds(runtime):
    res = runtime.delete(runtime.new_id("ghost"), force=True, check=False)
    assert res.returncode == 0, res


def test_delete_unknown_id_fails(runtime):
    res = runtime.delete(runtime.new_id("ghost"), check=False)
    assert res.returncode != 0
    assert "container does not exist" in res.stderr, res


def test_kill_all_on_stopped_container_succeeds(runtime, bundle):
    b = bundle("true", rootfs="shared")
    with runtime.container(b) as c:
        c.wait_status("stopped")
        res = runtime.kill(c.id, "9", all=True, check=False)
        assert res.returncode == 0, res
        c.delete()


def test_kill_stopped_container_without_all_fails(runtime, bundle):
    b = bundle("true", rootfs="shared")
    with runtime.container(b) as c:
        c.wait_status("stopped")
        res = runtime.kill(c.id, "KILL", check=False)
        assert res.returncode != 0, res
        assert "not running" in res.stderr, res


def test_create_leaves_no_runtime_parent(runtime, bundle, workdir):
    """After `create` returns every intermediate runtime process has exited:
    the container's pid is reparented to the (subreaper) caller."""
    b = bundle(["sleep", "30"], rootfs="shared")
    cid = runtime.new_id("reparent")
    pf = workdir / "reparent.pid"
    argv = runtime.argv("create", "--bundle", b, "--pid-file", pf, cid)
    r = subreaper_probe(argv, pf, workdir / "reparent.out", workdir / "reparent.err")
    assert r["rc"] == 0, (workdir / "reparent.err").read_text()
    assert r["ppid"] == r["self"], (
        f"state pid {r['pid']} has parent {r['ppid']}, not the caller {r['self']}: "
        "a runtime process is still around after create returned")
    runtime.state(cid)  # remember the pids for the leak check
    runtime.delete(cid, force=True)


def test_stdio_pipes_passthrough(runtime, bundle):
    """Without a terminal the container's stdio are the runtime's fds (here
    pipes, as the shim gives): the output arrives, and EOF arrives once the
    container exits (nothing else keeps the write ends open)."""
    b = bundle("echo to-stdout; echo to-stderr >&2; read line; echo in:$line",
               rootfs="shared")
    cid = runtime.new_id("pipes")
    runtime.ctx.ids.add(cid)
    r, w = os.pipe()
    os.write(w, b"hello\n")
    os.close(w)
    try:
        create = runtime.popen("create", "--bundle", b, cid, stdin=r,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    finally:
        os.close(r)
    try:
        rc = create.wait(timeout=30)
        assert rc == 0, create.stderr.read1(65536) if rc else ""
        runtime.start(cid)
        out, err = create.communicate(timeout=20)  # EOF: only the container held them
        assert out == b"to-stdout\nin:hello\n"
        assert err == b"to-stderr\n"
        runtime.wait_status(cid, "stopped")
        runtime.delete(cid)
    finally:
        if create.poll() is None:
            create.kill()
            create.wait()


def test_create_returns_with_pipes_not_held(runtime, bundle):
    """`create` with stdout/stderr pipes must not make the caller wait for the
    container: the runtime's own processes must have closed them (only the
    created container holds them).  Here the container never started, so
    after `delete` EOF must arrive."""
    b = bundle(["sleep", "30"], rootfs="shared")
    cid = runtime.new_id("eof")
    runtime.ctx.ids.add(cid)
    create = runtime.popen("create", "--bundle", b, cid, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE)
    try:
        assert create.wait(timeout=30) == 0
        runtime.delete(cid, force=True)
        out, err = create.communicate(timeout=20)
        assert out == b"" and err == b""
    finally:
        if create.poll() is None:
            create.kill()
            create.wait()


def test_console_socket(runtime, bundle, console_socket):
    b = bundle("tty; echo hi; read x; echo got:$x", terminal=True, rootfs="shared")
    with runtime.container(b, start=False, console_socket=console_socket.path) as c:
        master = console_socket.receive()
        try:
            c.start()
            out = read_until(master, b"hi")
            tty_line = out.split(b"\n")[0].strip()
            assert tty_line.startswith(b"/dev/"), out
            os.write(master, b"abc\n")
            out = read_until(master, b"got:abc")
            assert b"got:abc" in out
        finally:
            os.close(master)
        c.wait_status("stopped")
        assert c.stdout() == "", "with a terminal nothing goes to the runtime's stdout"


def test_console_socket_requires_terminal(runtime, bundle, console_socket):
    """--console-socket with process.terminal false is an error (runc)."""
    b = bundle(["true"], rootfs="shared")
    cid = runtime.new_id("cs")
    res = runtime.create(cid, b, console_socket=console_socket.path, check=False)
    assert res.returncode != 0, res
    assert not (runtime.root / cid).exists()


def test_terminal_without_console_socket_fails(runtime, bundle):
    b = bundle(["true"], terminal=True, rootfs="shared")
    cid = runtime.new_id("cs")
    res = runtime.create(cid, b, check=False)
    assert res.returncode != 0, res
    assert not (runtime.root / cid).exists()


def test_state_json_shape(runtime, bundle):
    b = bundle(["sleep", "30"], rootfs="shared",
               config={"annotations": {"org.example.key": "value"}})
    with runtime.container(b, start=False) as c:
        st = c.state()
        assert st["ociVersion"].startswith("1.")
        assert st["status"] == "created"
        assert st["annotations"] == {"org.example.key": "value"}
        assert st["rootfs"] == str(b.rootfs)
        json.dumps(st)
