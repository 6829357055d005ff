"""Tests of the test infrastructure itself (conftest.py, helpers.py): the
busybox rootfs, the default spec, deep_merge, and that the leak check
really finds (and cleans) leaked processes, mounts, cgroups and state dirs.

The leak-check tests build their own TestContext, so what they leak on
purpose is not seen by the autouse leak check of the test itself."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

import helpers
from helpers import Runtime, TestContext


@pytest.fixture
def inner_ctx():
    d = Path(tempfile.mkdtemp(prefix="rsp-", dir="/tmp"))
    ctx = TestContext(workdir=d)
    ctx.mount_ids_before = {m.mount_id for m in helpers.read_mounts()}
    yield ctx
    problems, cleanup = helpers.find_leaks(ctx)
    cleanup()
    ctx.release_namespaces()
    helpers.remove_workdir(d)
    assert not helpers.find_leaks(ctx)[0]


def test_rootfs_layout(rootfs_master):
    r = rootfs_master
    assert os.path.realpath(r / "bin/sh") == str(r / "bin/busybox")
    assert os.readlink(r / "bin/sh") == "busybox"
    assert os.path.realpath(r / "usr/bin/env") == str(r / "bin/busybox")
    for d in ("proc", "sys", "dev", "tmp", "root", "var/run", "etc", "sbin", "usr/bin"):
        assert (r / d).is_dir(), d
    passwd = (r / "etc/passwd").read_text()
    assert passwd.startswith("root:x:0:0:")
    assert "nobody:x:65534:65534:" in passwd and ":x:1000:1000:" in passwd
    assert (r / "etc/group").read_text().startswith("root:x:0:")
    assert (r / "etc/hostname").read_text().strip()
    size = sum(f.stat().st_size for f in r.rglob("*") if f.is_file() and not f.is_symlink())
    assert size < 4 * 1024 * 1024


def test_default_spec_has_runc_spec_shape(workdir):
    if not shutil.which("runc"):
        pytest.skip("runc not installed")
    subprocess.run(["runc", "spec", "--bundle", str(workdir)], check=True)
    ref = json.loads((workdir / "config.json").read_text())
    ours = helpers.default_spec(["true"])
    assert ours["process"]["terminal"] is False and ref["process"]["terminal"] is True
    ref["process"]["terminal"] = False
    ref["process"]["args"] = ["true"]
    ref["hostname"] = ours["hostname"]
    assert ours == ref


def test_deep_merge():
    base = {"a": {"b": 1, "c": [1, 2]}, "d": 1, "e": 2}
    helpers.deep_merge(base, {"a": {"c": [3], "x": {"y": 1}}, "d": None, "f": "new"})
    assert base == {"a": {"b": 1, "c": [3], "x": {"y": 1}}, "e": 2, "f": "new"}


def test_bundle_factory(bundle):
    b = bundle("echo hi", config={"process": {"env": ["A=1"]}},
               edit=lambda s: s["process"].update(cwd="/tmp"), files={"etc/motd": "hello"})
    spec = json.loads(b.config_path.read_text())
    assert spec["process"]["args"] == ["sh", "-c", "echo hi"]
    assert spec["process"]["env"] == ["A=1"] and spec["process"]["cwd"] == "/tmp"
    assert spec["root"]["path"] == "rootfs" and (b.path / "rootfs/bin/busybox").exists()
    assert (b.rootfs / "etc/motd").read_text() == "hello"
    s = bundle(["true"], rootfs="shared", config={"root": {"readonly": False}})
    assert s.spec["root"] == {"path": str(s.rootfs), "readonly": True}


def test_ids_are_valid_and_unique(runtime):
    ids = {runtime.new_id("test_some/thing weird") for _ in range(50)}
    assert len(ids) == 50
    assert all(helpers.ID_RE.match(i) for i in ids)


def test_leak_check_clean(inner_ctx):
    assert helpers.find_leaks(inner_ctx)[0] == []


def test_leak_check_finds_process(inner_ctx):
    (inner_ctx.workdir / "d").mkdir()
    p = subprocess.Popen(["sleep", "30"], cwd=inner_ctx.workdir / "d")
    problems, cleanup = helpers.find_leaks(inner_ctx)
    assert any(str(p.pid) in x and "cwd" in x for x in problems), problems
    cleanup()  # kills it (and reaps it: it is our child)
    p.wait(timeout=5)
    assert helpers.proc_stat(p.pid) is None


def test_leak_check_finds_cgroup(inner_ctx):
    cid = f"leak-{uuid.uuid4().hex[:8]}"
    inner_ctx.ids.add(cid)
    d = helpers.CGROUP_ROOT / "pids" / "runsc-py" / cid
    if not (helpers.CGROUP_ROOT / "pids").is_dir():
        pytest.skip("no v1 pids hierarchy")
    d.mkdir(parents=True)
    problems, cleanup = helpers.find_leaks(inner_ctx)
    assert any(str(d) in x for x in problems), problems
    cleanup()
    assert not d.exists()


def test_leak_check_finds_mount(inner_ctx):
    m = inner_ctx.workdir / "m"
    m.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "leaktest", str(m)], check=True)
    problems, cleanup = helpers.find_leaks(inner_ctx)
    assert any(str(m) in x for x in problems), problems
    cleanup()
    assert not any(x.mountpoint == str(m) for x in helpers.read_mounts())


def test_leak_check_finds_abandoned_container(inner_ctx, runtime_binary, rootfs_master):
    """A container whose state dir vanished: its processes and cgroups are
    found through the pids/namespaces the runtime reported and its id."""
    rt = Runtime(inner_ctx, runtime_binary)
    b = inner_ctx.workdir / "bundle"
    b.mkdir()
    helpers.copy_tree(rootfs_master, b / "rootfs")
    (b / "config.json").write_text(json.dumps(helpers.default_spec(["sleep", "30"])))
    cid = rt.new_id("abandoned")
    rt.create(cid, b)
    rt.start(cid)
    rt.state(cid)
    shutil.rmtree(rt.root / cid)
    problems, cleanup = helpers.find_leaks(inner_ctx)
    assert any("still alive" in x for x in problems), problems
    cleanup()
    assert not [x for x in helpers.find_leaks(inner_ctx)[0] if "still alive" in x]
