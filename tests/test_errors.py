"""Failures: each must exit non-zero, print ONE clear line on stderr naming
the field or path at fault, append a JSON error line to --log when
--log-format json, and leave nothing behind (no state dir; the autouse leak
check covers processes, mounts and cgroups)."""

from __future__ import annotations

import json
import os
import resource

import pytest


def _check_failure(runtime, res, cid, *needles, any_of=True, runc_vague=False):
    """Common assertions for a failed create/run.  runc_vague: runc's message
    does not name the field (our contract requires it): skip that check
    against runc."""
    assert res.returncode != 0, f"expected a failure: {res}"
    lines = res.stderr_lines
    assert len(lines) == 1, f"expected ONE line on stderr, got {len(lines)}: {res}"
    low = lines[0].lower()
    if needles and not (runc_vague and runtime.is_runc):
        found = [n for n in needles if n.lower() in low]
        ok = bool(found) if any_of else len(found) == len(needles)
        assert ok, f"stderr should name one of {needles}: {lines[0]!r}"
    entries = runtime.log_entries()
    errors = [e for e in entries if e.get("level") == "error"]
    assert errors, f"no error line in --log {runtime.log_path}: {entries}"
    assert errors[-1]["msg"].strip() and "time" in errors[-1]
    if cid is not None:
        assert not (runtime.root / cid).exists(), f"state dir left: {runtime.root / cid}"
        st = runtime.run("state", cid)
        assert st.returncode != 0 and "container does not exist" in st.stderr, st


def _create_fail(runtime, b, *needles, cid=None, runc_vague=False):
    cid = cid or runtime.new_id("err")
    res = runtime.create(cid, b, check=False, global_args=runtime.log_args())
    _check_failure(runtime, res, cid, *needles, runc_vague=runc_vague)
    return res


# -- config.json -----------------------------------------------------------------

def test_malformed_json(runtime, bundle):
    b = bundle(["true"], rootfs="shared")
    b.config_path.write_text('{"ociVersion": "1.0.2", "process": {')
    # runc says only "unexpected EOF"
    _create_fail(runtime, b, "config.json", "json", runc_vague=True)


def test_missing_config(runtime, bundle):
    b = bundle(["true"], rootfs="shared")
    b.config_path.unlink()
    _create_fail(runtime, b, "config.json")


def test_args_not_a_list(runtime, bundle):
    b = bundle(["true"], rootfs="shared")
    b.spec["process"]["args"] = "sh -c true"
    b.write_config()
    _create_fail(runtime, b, "args")


def test_empty_args(runtime, bundle):
    b = bundle(["true"], rootfs="shared")
    b.spec["process"]["args"] = []
    b.write_config()
    _create_fail(runtime, b, "args")


def test_unknown_namespace_type(runtime, bundle):
    b = bundle(["true"], rootfs="shared")
    b.spec["linux"]["namespaces"].append({"type": "bogus"})
    b.write_config()
    _create_fail(runtime, b, "bogus", "namespace")


def test_rlimit_soft_above_hard(runtime, bundle):
    b = bundle(["true"], rootfs="shared",
               config={"process": {"rlimits": [{"type": "RLIMIT_NOFILE", "soft": 2048, "hard": 1024}]}})
    _create_fail(runtime, b, "rlimit", "nofile")


def test_rlimit_unknown_type(runtime, bundle):
    b = bundle(["true"], rootfs="shared",
               config={"process": {"rlimits": [{"type": "RLIMIT_BOGUS", "soft": 1, "hard": 1}]}})
    _create_fail(runtime, b, "rlimit", "bogus")


def test_rlimit_above_host_hard_limit(runtime, bundle):
    """podman's default nofile 1048576 > this machine's hard limit, and
    CAP_SYS_RESOURCE is not in the bounding set: a clear error."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard == resource.RLIM_INFINITY or hard >= 1048576:
        pytest.skip(f"host hard RLIMIT_NOFILE is {hard}")
    b = bundle(["true"], rootfs="shared",
               config={"process": {"rlimits": [{"type": "RLIMIT_NOFILE", "soft": 1048576,
                                                "hard": 1048576}]}})
    _create_fail(runtime, b, "rlimit", "nofile")


def test_cgroup_value_refused_after_the_sandbox_is_forked(runtime, bundle):
    """The sandbox process is forked before the cgroups are made (it
    imports while the runtime works): a create failing there still leaves
    no process, cgroup or state behind."""
    b = bundle(["true"], rootfs="shared")
    b.spec["linux"].setdefault("resources", {})["cpu"] = {"cpus": "4096-4097"}
    b.write_config()
    _create_fail(runtime, b, "cpuset", "cpus", runc_vague=True)


# -- rootfs and mounts --------------------------------------------------------------

def test_missing_rootfs(runtime, bundle, workdir):
    b = bundle(["true"], rootfs="shared")
    b.spec["root"] = {"path": str(workdir / "no-such-rootfs")}
    b.write_config()
    _create_fail(runtime, b, "no-such-rootfs", "rootfs")


def test_missing_bind_mount_source(runtime, bundle, workdir):
    b = bundle(["true"], rootfs="shared")
    b.spec["mounts"].append({"destination": "/mnt", "type": "bind",
                             "source": str(workdir / "no-such-source"),
                             "options": ["rbind", "ro"]})
    b.write_config()
    _create_fail(runtime, b, "no-such-source")


# -- hooks ----------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["prestart", "createRuntime"])
def test_failing_hook(runtime, bundle, kind):
    b = bundle(["true"], rootfs="shared", config={"hooks": {kind: [
        {"path": "/bin/sh", "args": ["sh", "-c", "echo hook-says-no >&2; exit 1"]}]}})
    _create_fail(runtime, b, "hook")


def test_hanging_hook_times_out(runtime, bundle, workdir):
    # The hook's argv[0] names the work dir, so that the leak check finds it
    # if the runtime does not kill it.
    hook = workdir / "hooks" / "sleep"
    hook.parent.mkdir()
    os.symlink("/bin/busybox", hook)
    b = bundle(["true"], rootfs="shared", config={"hooks": {"createRuntime": [
        {"path": str(hook), "args": [str(hook), "30"], "timeout": 1}]}})
    _create_fail(runtime, b, "hook", "timeout", "timed out")


def test_missing_hook_binary(runtime, bundle, workdir):
    b = bundle(["true"], rootfs="shared", config={"hooks": {"prestart": [
        {"path": str(workdir / "no-such-hook")}]}})
    _create_fail(runtime, b, "hook", "no-such-hook")


# -- ids and states ---------------------------------------------------------------------

@pytest.mark.parametrize("cmd", [["state"], ["start"], ["kill", "{id}", "KILL"], ["delete"],
                                 ["pause"], ["resume"], ["ps"], ["exec", "{id}", "true"],
                                 ["events", "--stats"]])
def test_unknown_id(runtime, cmd):
    cid = runtime.new_id("ghost")
    args = [a.replace("{id}", cid) for a in cmd]
    if "{id}" not in cmd:
        args.append(cid)
    res = runtime.run(*args, global_args=runtime.log_args())
    assert res.returncode != 0, res
    assert "container does not exist" in res.stderr, res
    assert len(res.stderr_lines) == 1, res
    assert runtime.log_entries()[-1]["level"] == "error"


def test_duplicate_id(runtime, bundle):
    b = bundle(["sleep", "30"], rootfs="shared")
    with runtime.container(b, start=False) as c:
        pid = c.pid
        res = runtime.create(c.id, b, pid_file=False, check=False,
                             global_args=runtime.log_args())
        _check_failure(runtime, res, None, "exist")
        # the first is untouched
        st = c.state()
        assert st["status"] == "created" and st["pid"] == pid
        c.start()
        assert c.status == "running"


@pytest.mark.parametrize("sig", ["FOO", "SIGFOO", "99", "-1"])
def test_invalid_signal(runtime, bundle, sig):
    b = bundle(["sleep", "30"], rootfs="shared")
    with runtime.container(b) as c:
        res = runtime.kill(c.id, sig, check=False, global_args=runtime.log_args())
        assert res.returncode != 0, res
        assert len(res.stderr_lines) == 1, res
        assert "signal" in res.stderr.lower(), res
        assert c.status == "running"


def test_pause_stopped_container_fails(runtime, bundle):
    b = bundle(["true"], rootfs="shared")
    with runtime.container(b) as c:
        c.wait_status("stopped")
        res = runtime.run("pause", c.id)
        assert res.returncode != 0, res
        assert "not running" in res.stderr, res


def test_exec_in_stopped_container_fails(runtime, bundle):
    b = bundle(["true"], rootfs="shared")
    with runtime.container(b) as c:
        c.wait_status("stopped")
        res = c.exec("true")
        assert res.returncode != 0, res
        assert "not running" in res.stderr or "stopped" in res.stderr, res


def test_bad_bundle_path(runtime, workdir):
    cid = runtime.new_id("err")
    res = runtime.run("create", "--bundle", workdir / "nonexistent-bundle", cid,
                      global_args=runtime.log_args())
    _check_failure(runtime, res, cid, "nonexistent-bundle", "config.json")


def test_exec_process_file_invalid(runtime, bundle, workdir):
    b = bundle(["sleep", "30"], rootfs="shared")
    with runtime.container(b) as c:
        pf = workdir / "bad-process.json"
        pf.write_text(json.dumps({"args": "not-a-list", "cwd": "/"}))
        res = c.exec(process=pf)
        assert res.returncode != 0, res
        assert "args" in res.stderr, res
        assert c.status == "running"


@pytest.mark.parametrize("case", ["missing-rootfs", "bad-namespace"])
def test_error_without_log_is_one_stderr_line(runtime, bundle, workdir, case):
    """Without --log the error is still exactly one line on stderr."""
    b = bundle(["true"], rootfs="shared")
    if case == "missing-rootfs":
        b.spec["root"] = {"path": str(workdir / "no-such-rootfs")}
    else:
        b.spec["linux"]["namespaces"].append({"type": "bogus"})
    b.write_config()
    cid = runtime.new_id("err")
    res = runtime.create(cid, b, check=False)
    assert res.returncode != 0, res
    assert len(res.stderr_lines) == 1, res
    assert res.stdout == ""
    assert not (runtime.root / cid).exists()
