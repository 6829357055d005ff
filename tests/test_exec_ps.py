"""exec, ps, pause/resume, update and events on a running container."""

from __future__ import annotations

import json
import os
import select
import time

import pytest

from helpers import proc_stat, read_until, wait_until

PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@pytest.fixture
def running(runtime, bundle):
    """A running `sleep 30` container on the shared rootfs."""
    b = bundle(["sleep", "30"], rootfs="shared")
    with runtime.container(b) as c:
        yield c


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""


# -- exec ------------------------------------------------------------------------

def test_exec_args(running):
    res = running.exec("echo", "hello", "world")
    assert res.returncode == 0, res
    assert res.stdout == "hello world\n"


def test_exec_exit_code_propagates(running):
    res = running.exec("sh", "-c", "echo partial; exit 5")
    assert res.returncode == 5, res
    assert res.stdout == "partial\n"


def test_exec_stderr_and_stdin(running):
    res = running.exec("sh", "-c", "cat; echo oops >&2", input="from-stdin\n")
    assert res.returncode == 0, res
    assert res.stdout == "from-stdin\n"
    assert "oops\n" in res.stderr


def test_exec_missing_binary(running):
    res = running.exec("/no/such/binary")
    assert res.returncode != 0, res
    assert "/no/such/binary" in res.stderr or "no such file" in res.stderr.lower(), res
    assert running.status == "running"


def test_exec_process_file(running):
    process = {
        "terminal": False,
        "user": {"uid": 1000, "gid": 1000},
        "args": ["sh", "-c", "echo $FOO; pwd; id -u; id -g; exit 4"],
        "env": [PATH_ENV, "FOO=from-process-json"],
        "cwd": "/tmp",
    }
    res = running.exec(process=process)
    assert res.returncode == 4, res
    assert res.stdout.split() == ["from-process-json", "/tmp", "1000", "1000"]


def test_exec_env(running):
    res = running.exec("sh", "-c", "echo $FOO-$BAR-$TERM", env=["FOO=foo", "BAR=b a r"])
    assert res.returncode == 0, res
    # the config's process env (TERM=xterm) is inherited
    assert res.stdout == "foo-b a r-xterm\n"


def test_exec_cwd(running):
    res = running.exec("pwd", cwd="/etc")
    assert res.returncode == 0, res
    assert res.stdout == "/etc\n"


def test_exec_user(running):
    res = running.exec("id", user="1000:1000")
    assert res.returncode == 0, res
    out = res.stdout
    assert "uid=1000" in out and "gid=1000" in out, out
    res = running.exec("id", "-u", user="65534")
    assert res.stdout.strip() == "65534", res


def test_exec_detach_pid_file(running, workdir):
    pf = workdir / "exec.pid"
    res = running.exec("sleep", "31", detach=True, pid_file=pf)
    assert res.returncode == 0, res
    text = pf.read_text()
    assert text.isdigit(), f"pid file must hold only digits: {text!r}"
    pid = int(text)
    assert proc_stat(pid) is not None, "the exec pid file names a live process"
    pids = running.ps()
    assert any(_cmdline(p) == "sleep 31" for p in pids), \
        f"ps does not list the exec'd process: {[(p, _cmdline(p)) for p in pids]}"


def test_exec_detach_output_goes_to_runtime_fds(running, runtime):
    res = running.exec("sh", "-c", "sleep 0.2; echo late-output", detach=True)
    assert res.returncode == 0, res
    wait_until(lambda: "late-output" in res.read_stdout(), 10, "the detached exec's output")


def test_exec_tty_console_socket(running, runtime, console_socket, workdir):
    """As the containerd shim does it: exec --detach --tty --console-socket
    --pid-file (runc refuses a console socket without --detach)."""
    pf = workdir / "exec-tty.pid"
    res = running.exec("sh", "-c", "tty; read x; echo got:$x", tty=True, detach=True,
                       console_socket=console_socket.path, pid_file=pf)
    assert res.returncode == 0, res
    assert pf.read_text().isdigit()
    master = console_socket.receive()
    try:
        out = read_until(master, b"/dev/")
        os.write(master, b"typed\n")
        out += read_until(master, b"got:typed")
        assert b"got:typed" in out
    finally:
        os.close(master)


def test_exec_many_in_a_row(running):
    for i in range(5):
        res = running.exec("echo", str(i))
        assert res.returncode == 0 and res.stdout == f"{i}\n", res


# -- ps ---------------------------------------------------------------------------

def test_ps_json(running):
    pids = running.ps()
    assert pids and all(isinstance(p, int) and p > 0 for p in pids)
    cmds = [_cmdline(p) for p in pids]
    assert "sleep 30" in cmds, f"the workload is not among ps pids: {list(zip(pids, cmds))}"
    for p in pids:
        assert proc_stat(p) is not None, f"ps lists {p}, which does not exist on the host"


def test_ps_json_grows_with_exec(running):
    before = set(running.ps())
    running.exec("sleep", "32", detach=True).check()
    after = wait_until(lambda: (lambda s: s if len(s) > len(before) else None)(set(running.ps())),
                       5, "a new pid in ps")
    assert any(_cmdline(p) == "sleep 32" for p in after - before)


def test_ps_table(running, runtime):
    res = runtime.run("ps", running.id, check=True)
    lines = res.stdout.splitlines()
    header = lines[0].split()
    assert "PID" in header and "CMD" in header, res
    col = header.index("PID")
    table_pids = {int(ln.split()[col]) for ln in lines[1:] if ln.strip()}
    assert set(running.ps()) <= table_pids, res


def test_ps_stopped_container(runtime, bundle):
    b = bundle(["true"], rootfs="shared")
    with runtime.container(b) as c:
        c.wait_status("stopped")
        res = runtime.run("ps", "--format", "json", c.id)
        # runc: an empty list or "container not running"; either way no pids
        if res.returncode == 0:
            assert json.loads(res.stdout or "[]") in ([], None)
        else:
            assert "not running" in res.stderr, res


# -- pause / resume ------------------------------------------------------------------

def test_pause_resume(running, runtime):
    runtime.run("pause", running.id, check=True)
    assert running.status == "paused"
    freezer = runtime.cgroup_dir(running.id, "freezer") / "freezer.state"
    assert freezer.read_text().strip() == "FROZEN"
    assert running.exec("true").returncode != 0, "exec into a paused container must fail"
    # a paused container is listed as paused
    assert {e["id"]: e["status"] for e in runtime.list()}[running.id] == "paused"
    runtime.run("resume", running.id, check=True)
    assert running.status == "running"
    assert freezer.read_text().strip() == "THAWED"
    assert running.exec("echo", "awake").stdout == "awake\n"


def test_resume_running_fails(running, runtime):
    res = runtime.run("resume", running.id)
    assert res.returncode != 0, res
    assert running.status == "running"


def test_delete_force_paused(running, runtime):
    runtime.run("pause", running.id, check=True)
    runtime.delete(running.id, force=True)
    assert runtime.run("state", running.id).returncode != 0


def test_kill_paused_then_resume(running, runtime):
    runtime.run("pause", running.id, check=True)
    runtime.kill(running.id, "KILL")
    # runc thaws a paused container it SIGKILLs; a runtime that does not
    # must still let `resume` deliver the kill
    if running.status == "paused":
        runtime.run("resume", running.id, check=True)
    running.wait_status("stopped")


# -- update ---------------------------------------------------------------------------

@pytest.mark.parametrize("form", ["file", "file=", "stdin", "stdin="])
def test_update_pids_limit(running, runtime, workdir, form):
    limit = {"file": 101, "file=": 102, "stdin": 103, "stdin=": 104}[form]
    body = json.dumps({"pids": {"limit": limit}})
    kw = {}
    if form.startswith("file"):
        f = workdir / "resources.json"
        f.write_text(body)
        args = ["--resources", str(f)] if form == "file" else [f"--resources={f}"]
    else:
        args = ["--resources", "-"] if form == "stdin" else ["--resources=-"]
        kw["input"] = body
    res = runtime.run("update", *args, running.id, **kw)
    assert res.returncode == 0, res
    assert (runtime.cgroup_dir(running.id, "pids") / "pids.max").read_text().strip() == str(limit)


def test_update_memory_limit(running, runtime):
    limit = 96 * 1024 * 1024
    res = runtime.run("update", "--resources", "-", running.id,
                      input=json.dumps({"memory": {"limit": limit}}))
    assert res.returncode == 0, res
    f = runtime.cgroup_dir(running.id, "memory") / "memory.limit_in_bytes"
    assert int(f.read_text()) == limit


def test_update_invalid_json(running, runtime):
    res = runtime.run("update", "--resources", "-", running.id, input="{not json")
    assert res.returncode != 0, res
    assert running.status == "running"


# -- events -----------------------------------------------------------------------------

def test_events_stats(running, runtime):
    res = runtime.run("events", "--stats", running.id, timeout=15)
    assert res.returncode == 0, res
    lines = [ln for ln in res.stdout.splitlines() if ln.strip()]
    assert len(lines) == 1, res
    ev = json.loads(lines[0])
    assert ev["type"] == "stats" and ev["id"] == running.id
    data = ev["data"]
    for key in ("cpu", "memory", "pids"):
        assert key in data, data
    assert data["pids"]["current"] >= 1
    assert data["memory"]["usage"]["usage"] > 0
    assert "usage" in data["cpu"]


def test_events_interval_stream(running, runtime):
    proc = runtime.popen("events", "--interval", "1s", running.id)
    try:
        deadline = time.monotonic() + 15
        line = b""
        while not line.endswith(b"\n"):
            r, _, _ = select.select([proc.stdout], [], [], max(0.0, deadline - time.monotonic()))
            if not r:
                pytest.fail(f"no event within 15s (partial: {line!r})")
            chunk = os.read(proc.stdout.fileno(), 1)
            if not chunk:
                pytest.fail(f"events exited without a line: rc={proc.poll()} {line!r}")
            line += chunk
        ev = json.loads(line)
        assert ev["type"] == "stats" and ev["id"] == running.id
        assert "pids" in ev["data"]
    finally:
        proc.kill()
        proc.wait(timeout=10)
        proc.stdout.close()
