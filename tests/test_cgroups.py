"""runsc_py.cgroups against the real cgroup filesystem (run as root).

Every cgroup lives under /runsc-py-test/<uuid> and every process is a child
of the test; fixtures kill them and remove the directories even on failure.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from runsc_py.cgroups import CgroupManager, V1Manager, V2Manager, detect, expand_slice, resolve, systemd_path
from runsc_py.cgroups import _fs
from runsc_py.cgroups._mountinfo import hierarchies_from, parse_mountinfo
from runsc_py.cgroups.v1 import device_rule
from runsc_py.cgroups.v2 import plan, shares_to_weight, swap_to_v2
from runsc_py.errors import RuntimeFailure

TEST_PARENT = "/runsc-py-test"
HIER = detect()

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to manage cgroups")
needs_v1 = pytest.mark.skipif(HIER.mode != "v1", reason="cgroup v1/hybrid hierarchy not mounted")


def _read(path: str) -> str:
    with open(path) as f:
        return f.read().strip()


def _state(pid: int) -> str:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("State:"):
                return line.split()[1]
    return "?"


def _force_cleanup(mgr: CgroupManager) -> None:
    """Best effort, for finalizers: thaw, SIGKILL everything, remove dirs."""
    d = mgr.to_dict()
    dirs = list(dict.fromkeys(list(d["paths"].values()) + [d["unified"]]))
    for cdir in dirs:
        if not cdir:
            continue
        for f, v in (("freezer.state", "THAWED"), ("cgroup.freeze", "0")):
            try:
                _fs.write_file(os.path.join(cdir, f), v)
            except RuntimeFailure:
                pass
        for pid in _fs.procs_recursive(cdir):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
    for cdir in dirs:
        if not cdir:
            continue
        try:
            _fs.rmdir_tree(cdir, 3.0)
        except OSError:
            pass
        # Empty levels under the shared test parent, and the parent itself
        # when empty (another run may be using it).
        parent = os.path.dirname(cdir)
        while TEST_PARENT + "/" in parent + "/":
            try:
                os.rmdir(parent)
            except OSError:
                break
            if parent.endswith(TEST_PARENT):
                break
            parent = os.path.dirname(parent)


@pytest.fixture
def procs() -> Iterator[Callable[[], subprocess.Popen[bytes]]]:
    """Factory of `sh -c 'read; exec sleep'` children: they block until
    released with go(p), so that the exec happens inside the new cgroup."""
    started: list[subprocess.Popen[bytes]] = []

    def spawn() -> subprocess.Popen[bytes]:
        p = subprocess.Popen(["sh", "-c", "read x; exec sleep 1000"], stdin=subprocess.PIPE)
        started.append(p)
        return p

    yield spawn
    for p in started:
        if p.poll() is None:
            p.kill()
        p.wait(timeout=10)


def go(p: subprocess.Popen[bytes]) -> None:
    assert p.stdin is not None
    p.stdin.write(b"\n")
    p.stdin.flush()
    # wait for the exec: /proc/PID/comm becomes "sleep"
    deadline = time.monotonic() + 5
    while _read(f"/proc/{p.pid}/comm") != "sleep":
        assert time.monotonic() < deadline, "child did not exec sleep"
        time.sleep(0.01)


def _test_path(*extra: str) -> str:
    return "/".join([TEST_PARENT, uuid.uuid4().hex[:12], *extra])


# v1/v2 depend on procs so that they are torn down first: thaw, then kill.
@pytest.fixture
def v1(procs: Callable[[], subprocess.Popen[bytes]]) -> Iterator[V1Manager]:
    if os.geteuid() != 0:
        pytest.skip("needs root to manage cgroups")
    if HIER.mode != "v1":
        pytest.skip("cgroup v1/hybrid hierarchy not mounted")
    mgr = CgroupManager.for_container("t", {"cgroupsPath": _test_path()}, False)
    assert isinstance(mgr, V1Manager)
    yield mgr
    _force_cleanup(mgr)


@pytest.fixture
def v2(procs: Callable[[], subprocess.Popen[bytes]]) -> Iterator[V2Manager]:
    """A V2Manager on the real cgroup2 hierarchy: the system one on a pure v2
    host, or the controller-less /sys/fs/cgroup/unified on a hybrid one."""
    if os.geteuid() != 0:
        pytest.skip("needs root to manage cgroups")
    if not HIER.unified:
        pytest.skip("no cgroup2 hierarchy mounted")
    root_ctl = os.path.join(HIER.unified, "cgroup.subtree_control")
    before = set(_read(root_ctl).split())
    mgr = V2Manager.at(HIER.unified, _test_path())
    yield mgr
    _force_cleanup(mgr)
    if HIER.mode == "v1":
        # create() enables what the hybrid root offers (e.g. hugetlb): undo.
        for c in set(_read(root_ctl).split()) - before:
            try:
                _fs.write_file(root_ctl, f"-{c}")
            except RuntimeFailure:
                pass


# -- pure: path resolution ----------------------------------------------------

@pytest.mark.parametrize("slice_name,expected", [
    ("system.slice", "/system.slice"),
    ("a-b.slice", "/a.slice/a-b.slice"),
    ("a-b-c.slice", "/a.slice/a-b.slice/a-b-c.slice"),
    ("-.slice", "/"),
])
def test_expand_slice(slice_name: str, expected: str) -> None:
    assert expand_slice(slice_name) == expected


@pytest.mark.parametrize("bad", ["", ".slice", "foo", "a--b.slice", "-a.slice", "a-.slice", "a/b.slice"])
def test_expand_slice_invalid(bad: str) -> None:
    with pytest.raises(RuntimeFailure, match="invalid slice name"):
        expand_slice(bad)


@pytest.mark.parametrize("path,expected", [
    ("system.slice:docker:abc", "/system.slice/docker-abc.scope"),
    ("a-b.slice:crio:x1", "/a.slice/a-b.slice/crio-x1.scope"),
    (":runsc-py:c1", "/system.slice/runsc-py-c1.scope"),
    ("-.slice:p:n", "/p-n.scope"),
    ("kubepods-besteffort.slice::pod1.slice", "/kubepods.slice/kubepods-besteffort.slice/pod1.slice"),
])
def test_systemd_path(path: str, expected: str) -> None:
    assert systemd_path(path) == expected


@pytest.mark.parametrize("bad", ["/a/b", "a:b", "a:b:c:d", "system.slice:p:", "bad:p:n",
                                 "a--b.slice:p:n", "system.slice:p:../x"])
def test_systemd_path_malformed(bad: str) -> None:
    with pytest.raises(RuntimeFailure) as ei:
        systemd_path(bad)
    assert "cgroupsPath" in str(ei.value) and repr(bad) in str(ei.value)


def test_resolve() -> None:
    assert resolve("c1", None, False) == "/runsc-py/c1"
    assert resolve("c1", "", False) == "/runsc-py/c1"
    assert resolve("c1", "/a/b", False) == "/a/b"
    assert resolve("c1", "a/b", False) == "/a/b"            # relative: under the root
    assert resolve("c1", "//a/./b/../c/", False) == "/a/c"
    assert resolve("c1", "/../../x", False) == "/x"         # cannot escape the hierarchy
    assert resolve("c1", "", True) == "/system.slice/runsc-py-c1.scope"
    assert resolve("c1", "user.slice:pfx:c1", True) == "/user.slice/pfx-c1.scope"
    with pytest.raises(RuntimeFailure, match="root cgroup"):
        resolve("c1", "/", False)
    with pytest.raises(RuntimeFailure, match="slice:prefix:name"):
        resolve("c1", "/a/b", True)


# -- pure: mountinfo ----------------------------------------------------------

HYBRID_COMOUNTED = """\
25 30 0:23 / /sys rw,nosuid shared:7 - sysfs sysfs rw
31 25 0:26 / /sys/fs/cgroup ro,nosuid shared:9 - tmpfs tmpfs ro,mode=755
32 31 0:27 / /sys/fs/cgroup/unified rw,nosuid shared:10 - cgroup2 cgroup2 rw,nsdelegate
33 31 0:28 / /sys/fs/cgroup/systemd rw,nosuid shared:11 - cgroup cgroup rw,xattr,name=systemd
36 31 0:31 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:15 - cgroup cgroup rw,cpu,cpuacct
37 31 0:32 / /sys/fs/cgroup/memory rw,nosuid shared:16 - cgroup cgroup rw,memory
38 31 0:33 / /sys/fs/cgroup/cpuset rw,nosuid shared:17 - cgroup cgroup rw,cpuset,clone_children
39 31 0:34 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid shared:18 - cgroup cgroup rw,net_cls,net_prio
90 40 0:32 /docker/abc /mnt/memory\\040x rw - cgroup cgroup rw,memory
"""

PURE_V2 = """\
25 30 0:23 / /sys rw,nosuid shared:7 - sysfs sysfs rw
30 25 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
"""


def test_mountinfo_hybrid_comounted() -> None:
    mounts = parse_mountinfo(HYBRID_COMOUNTED)
    assert [m.fstype for m in mounts].count("cgroup") == 6
    assert mounts[-1].mountpoint == "/mnt/memory x" and mounts[-1].root == "/docker/abc"
    h = hierarchies_from(mounts)
    assert h.mode == "v1"
    assert h.unified == "/sys/fs/cgroup/unified"
    assert h.v1["cpu"] == h.v1["cpuacct"] == "/sys/fs/cgroup/cpu,cpuacct"
    assert h.v1["memory"] == "/sys/fs/cgroup/memory"       # the root mount wins over the bind
    assert h.v1["name=systemd"] == "/sys/fs/cgroup/systemd"
    assert h.v1["net_prio"] == "/sys/fs/cgroup/net_cls,net_prio"
    assert "xattr" not in h.v1 and "clone_children" not in h.v1
    m = V1Manager.at(h.v1, h.unified, "/x/y")
    assert m.paths["cpu"] == m.paths["cpuacct"] == "/sys/fs/cgroup/cpu,cpuacct/x/y"
    assert m._unique_dirs().count("/sys/fs/cgroup/cpu,cpuacct/x/y") == 1   # created/joined once


def test_mountinfo_pure_v2() -> None:
    h = hierarchies_from(parse_mountinfo(PURE_V2))
    assert (h.mode, h.unified, h.v1) == ("v2", "/sys/fs/cgroup", {})
    # a lone name=systemd v1 mount (for old containers) does not make it v1
    extra = "40 31 0:40 / /run/systemd-v1 rw - cgroup cgroup rw,name=systemd\n"
    assert hierarchies_from(parse_mountinfo(PURE_V2 + extra)).mode == "v2"
    assert hierarchies_from([]).mode == "none"


def test_detect_real_machine() -> None:
    with open("/proc/self/mountinfo") as f:
        text = f.read()
    h = detect()
    if " - cgroup " in text:
        assert h.mode == "v1"
        for c, mp in h.v1.items():
            assert os.path.isdir(mp), c
            assert os.path.exists(os.path.join(mp, "cgroup.procs"))
    if " - cgroup2 " in text:
        assert os.path.exists(os.path.join(h.unified, "cgroup.controllers"))


def test_for_container_and_dict_roundtrip() -> None:
    m = CgroupManager.for_container("cid1", {}, False)
    d = m.to_dict()
    assert json.loads(json.dumps(d)) == d
    assert d["mode"] in ("v1", "v2") and isinstance(d["paths"], dict)
    if d["mode"] == "v1":
        assert d["paths"]["freezer"].endswith("/runsc-py/cid1")
        assert d["unified"] == (os.path.join(HIER.unified, "runsc-py/cid1") if HIER.unified else "")
    else:
        assert d["unified"].endswith("/runsc-py/cid1")
    m2 = CgroupManager.from_dict(d)
    assert type(m2) is type(m) and m2.to_dict() == d
    s = CgroupManager.for_container("cid1", {"cgroupsPath": "machine.slice:libpod:cid1"}, True)
    assert all(p.endswith("/machine.slice/libpod-cid1.scope") for p in s.to_dict()["paths"].values())
    with pytest.raises(RuntimeFailure, match="slice:prefix:name"):
        CgroupManager.for_container("cid1", {"cgroupsPath": "/bad"}, True)
    with pytest.raises(RuntimeFailure, match="unknown cgroup mode"):
        CgroupManager.from_dict({"mode": "v3"})


# -- pure: translations ---------------------------------------------------------

def test_device_rule() -> None:
    assert device_rule({"allow": False, "access": "rwm"}) == ("devices.deny", "a *:* rwm")
    assert device_rule({"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"}) == \
        ("devices.allow", "c 1:3 rwm")
    assert device_rule({"allow": True, "type": "c", "major": 136, "minor": -1, "access": "rw"}) == \
        ("devices.allow", "c 136:* rw")
    assert device_rule({"allow": True, "type": "b", "major": None, "minor": None}) == \
        ("devices.allow", "b *:* rwm")
    with pytest.raises(RuntimeFailure):
        device_rule({"allow": True, "type": "x"})
    with pytest.raises(RuntimeFailure):
        device_rule({"allow": True, "type": "c", "access": "rwx"})


def test_v2_translation() -> None:
    assert shares_to_weight(0) == 0
    assert shares_to_weight(2) == 1
    assert shares_to_weight(1024) == 1 + (1022 * 9999) // 262142 == 39
    assert shares_to_weight(262144) == 10000
    assert swap_to_v2(0, -1) == -1
    assert swap_to_v2(-1, 100) == -1
    assert swap_to_v2(300, 100) == 200
    assert swap_to_v2(0, 100) == 0
    with pytest.raises(RuntimeFailure, match="without memory limit"):
        swap_to_v2(300, 0)
    with pytest.raises(RuntimeFailure, match=">= memory limit"):
        swap_to_v2(50, 100)

    def writes(r: dict[str, Any]) -> list[tuple[str, str]]:
        return [(w.file, w.value) for w in plan(r)]

    assert writes({"memory": {"limit": 100, "swap": 300, "reservation": 50}}) == \
        [("memory.swap.max", "200"), ("memory.max", "100"), ("memory.low", "50")]
    assert writes({"memory": {"limit": 100, "swap": 100}}) == [("memory.swap.max", "0"), ("memory.max", "100")]
    assert writes({"memory": {"limit": -1}}) == [("memory.swap.max", "max"), ("memory.max", "max")]
    assert writes({"cpu": {"shares": 1024, "quota": 50000, "period": 100000}}) == \
        [("cpu.weight", "39"), ("cpu.max", "50000 100000")]
    assert writes({"cpu": {"quota": -1, "period": 100000}}) == [("cpu.max", "max 100000")]
    assert writes({"cpu": {"quota": 20000}}) == [("cpu.max", "20000")]
    assert writes({"cpu": {"cpus": "0-1", "mems": "0"}}) == [("cpuset.cpus", "0-1"), ("cpuset.mems", "0")]
    assert writes({"pids": {"limit": 64}}) == [("pids.max", "64")]
    assert writes({"pids": {"limit": -1}}) == [("pids.max", "max")]
    assert writes({"pids": {}}) == []
    assert writes({"blockIO": {"weight": 500}}) == [("io.weight", str(1 + (490 * 9999) // 990))]
    assert plan({"blockIO": {"weight": 500}})[0].alts[0] == ("io.bfq.weight", "500")
    assert writes({"blockIO": {"throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1024}]}}) == \
        [("io.max", "8:0 rbps=1024")]
    assert writes({"hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}]}) == [("hugetlb.2MB.max", "4194304")]
    # unified comes last so that it overrides
    assert writes({"unified": {"memory.high": "1000"}, "pids": {"limit": 5}})[-1] == ("memory.high", "1000")
    with pytest.raises(RuntimeFailure, match="no slashes"):
        plan({"unified": {"../memory.max": "1"}})
    assert writes({"devices": [{"allow": False, "access": "rwm"}]}) == []   # warned, skipped
    assert plan({"memory": {"limit": 100, "swap": 100}})[0].missing_ok     # no swap accounting: fine


# -- v1, real -----------------------------------------------------------------------

def _all_v1_dirs(m: V1Manager) -> list[str]:
    return [d for d in list(m.paths.values()) + [m.unified] if d]


@needs_root
@needs_v1
def test_v1_create_apply_set(v1: V1Manager, procs: Callable[[], subprocess.Popen[bytes]]) -> None:
    v1.create()
    for d in _all_v1_dirs(v1):
        assert os.path.isdir(d), d
    # cpuset seeded from the parent at every new level, or nobody could join
    cs = v1.paths["cpuset"]
    assert _read(os.path.join(cs, "cpuset.cpus")) == _read(os.path.join(os.path.dirname(cs), "cpuset.cpus")) != ""
    assert _read(os.path.join(cs, "cpuset.mems")) != ""

    p = procs()
    v1.apply(p.pid)
    go(p)
    lines = _read(f"/proc/{p.pid}/cgroup").splitlines()
    for line in lines:
        _, ctl, path = line.split(":", 2)
        if ctl == "" and not v1.unified:
            continue
        assert path == v1.path, line

    ncpu = len(os.sched_getaffinity(0))
    v1.set({
        "memory": {"limit": 256 << 20, "swap": 512 << 20, "reservation": 128 << 20, "swappiness": 10,
                   "kernel": 1 << 30},
        "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"},
        "pids": {"limit": 42},
    })
    mem, cpu = v1.paths["memory"], v1.paths["cpu"]
    assert _read(f"{mem}/memory.limit_in_bytes") == str(256 << 20)
    if os.path.exists(f"{mem}/memory.memsw.limit_in_bytes"):
        assert _read(f"{mem}/memory.memsw.limit_in_bytes") == str(512 << 20)
    assert _read(f"{mem}/memory.soft_limit_in_bytes") == str(128 << 20)
    assert _read(f"{mem}/memory.swappiness") == "10"
    assert _read(f"{cpu}/cpu.shares") == "512"
    assert _read(f"{cpu}/cpu.cfs_quota_us") == "50000"
    assert _read(f"{cpu}/cpu.cfs_period_us") == "100000"
    assert _read(f"{cs}/cpuset.cpus") == "0"
    assert _read(f"{v1.paths['pids']}/pids.max") == "42"
    assert os.sched_getaffinity(p.pid) == {0}

    # update: only what is given changes; -1 quota = unlimited; 0 is not "unset" for pids
    v1.set({"cpu": {"quota": -1}, "pids": {"limit": -1}})
    assert _read(f"{cpu}/cpu.cfs_quota_us") == "-1"
    assert _read(f"{cpu}/cpu.shares") == "512"
    assert _read(f"{v1.paths['pids']}/pids.max") == "max"
    assert _read(f"{mem}/memory.limit_in_bytes") == str(256 << 20)
    if ncpu > 1:
        v1.set({"cpu": {"cpus": f"0-{ncpu - 1}"}})
        assert os.sched_getaffinity(p.pid) == set(range(ncpu))


@needs_root
@needs_v1
def test_v1_memory_swap_ordering(v1: V1Manager) -> None:
    v1.create()
    mem = v1.paths["memory"]
    if not os.path.exists(f"{mem}/memory.memsw.limit_in_bytes"):
        pytest.skip("kernel without swap accounting (memory.memsw.*)")
    lim, sw = f"{mem}/memory.limit_in_bytes", f"{mem}/memory.memsw.limit_in_bytes"
    v1.set({"memory": {"limit": 100 << 20, "swap": 200 << 20}})
    # lowering both needs memory first, raising both needs memsw first
    v1.set({"memory": {"limit": 50 << 20, "swap": 60 << 20}})
    assert (_read(lim), _read(sw)) == (str(50 << 20), str(60 << 20))
    v1.set({"memory": {"limit": 300 << 20, "swap": 400 << 20}})
    assert (_read(lim), _read(sw)) == (str(300 << 20), str(400 << 20))
    v1.set({"memory": {"limit": -1}})          # unlimited memory: unlimited swap too
    assert int(_read(lim)) > 1 << 60 and int(_read(sw)) > 1 << 60


@needs_root
@needs_v1
def test_v1_nested_path_and_destroy_keeps_parents(procs: Callable[[], subprocess.Popen[bytes]]) -> None:
    base = _test_path()
    parent = CgroupManager.for_container("p", {"cgroupsPath": base}, False)
    child = CgroupManager.for_container("c", {"cgroupsPath": base + "/mid/leaf"}, False)
    assert isinstance(parent, V1Manager) and isinstance(child, V1Manager)
    try:
        parent.create()
        child.create()
        mid = os.path.dirname(child.paths["cpuset"])
        assert _read(f"{mid}/cpuset.cpus") != ""       # intermediate level seeded too
        p = procs()
        child.apply(p.pid)
        go(p)
        child.kill_all(signal.SIGKILL)
        child.destroy()                                 # EBUSY while exiting is retried
        for d in child.paths.values():
            assert not os.path.exists(d)
            assert os.path.isdir(os.path.dirname(d))    # parents that existed stay
        for d in parent.paths.values():
            assert os.path.isdir(d)
        child.destroy()                                 # idempotent
    finally:
        _force_cleanup(child)
        _force_cleanup(parent)


@needs_root
@needs_v1
def test_v1_devices(procs: Callable[[], subprocess.Popen[bytes]]) -> None:
    linux = {"cgroupsPath": _test_path(),
             "devices": [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229},
                         {"path": "/dev/myfifo", "type": "p"}]}
    m = CgroupManager.for_container("t", linux, False)
    assert isinstance(m, V1Manager)
    try:
        m.create()
        m.set({"devices": [
            {"allow": False, "access": "rwm"},
            {"allow": True, "type": "c", "major": 4, "minor": 1, "access": "rwm"},
            {"allow": False, "type": "c", "major": 4, "minor": 1, "access": "m"},   # in order
            {"allow": True, "type": "b", "major": 8, "minor": -1, "access": "r"},
        ]})
        listed = set(_read(os.path.join(m.paths["devices"], "devices.list")).splitlines())
        # the spec's rules, then runc's default allowed devices, then
        # linux.devices, kept only where the sandbox's table allows them
        # (cgroups/devices.py): a host console (4:1) and disks (8:*) are not
        # opened whatever the spec says; mknod stays as the rules have it.
        assert listed == {"c *:* m", "b *:* m", "c 1:3 rw", "c 1:8 rw", "c 1:7 rw", "c 5:0 rw",
                          "c 1:5 rw", "c 1:9 rw", "c 136:* rw", "c 5:2 rw", "c 10:200 rw",
                          "c 10:229 rw"}
        # the rules bind: a process in the cgroup can open /dev/null but not /dev/mem (1:1)
        probe = subprocess.run(
            ["sh", "-c", f"echo $$ > {m.paths['devices']}/cgroup.procs; "
             "echo x > /dev/null && echo null-ok; head -c1 /dev/mem >/dev/null 2>&1 || echo mem-denied"],
            capture_output=True, text=True, timeout=10)
        assert probe.stdout.split() == ["null-ok", "mem-denied"], probe
        # the spec devices survive a save/load (update may set devices again)
        assert CgroupManager.from_dict(json.loads(json.dumps(m.to_dict()))).spec_devices == m.spec_devices
        # Even a spec (or an update) that allows every device gets the
        # sandbox's table: every char device of it, nothing more.
        m.set({"devices": [{"allow": True, "access": "rwm"}]})
        listed = set(_read(os.path.join(m.paths["devices"], "devices.list")).splitlines())
        assert "a *:* rwm" not in listed and "c 1:1 rw" not in listed, listed
        assert {"c 1:3 rw", "c 5:1 rw", "c 10:229 rw", "c *:* m"} <= listed, listed
    finally:
        _force_cleanup(m)


@needs_root
@needs_v1
def test_v1_kill_all_from_inside(v1: V1Manager, procs: Callable[[], subprocess.Popen[bytes]]) -> None:
    """A process of the container (e.g. a forked helper cleaning up) must not
    freeze itself: freeze() refuses, kill_all() signals the others then itself."""
    v1.create()
    p = procs()
    v1.apply(p.pid)
    go(p)
    code = ("import json, os, signal, sys\n"
            "from runsc_py.cgroups import CgroupManager\n"
            "m = CgroupManager.from_dict(json.loads(sys.argv[1]))\n"
            "m.apply(os.getpid())\n"
            "try:\n    m.freeze()\nexcept Exception as e:\n    print('refused:', e, flush=True)\n"
            "m.kill_all(signal.SIGKILL)\n"
            "print('survived', flush=True)\n")
    helper = subprocess.run([sys.executable, "-c", code, json.dumps(v1.to_dict())],
                            capture_output=True, text=True, timeout=20)
    assert helper.returncode == -signal.SIGKILL, helper
    assert helper.stdout.startswith("refused: cgroup: refusing to freeze"), helper
    assert "survived" not in helper.stdout
    assert p.wait(timeout=5) == -signal.SIGKILL
    assert not v1.is_frozen()


@needs_root
@needs_v1
def test_v1_write_errors(v1: V1Manager, caplog: pytest.LogCaptureFixture) -> None:
    v1.create()
    with pytest.raises(RuntimeFailure) as ei:
        v1.set({"cpu": {"cpus": "4095"}})
    assert str(ei.value).startswith(f"cgroup: write {v1.paths['cpuset']}/cpuset.cpus: ")
    with pytest.raises(RuntimeFailure, match="only supported with cgroup v2"):
        v1.set({"unified": {"memory.high": "1"}})
    with pytest.raises(RuntimeFailure, match="swappiness"):
        v1.set({"memory": {"swappiness": 101}})
    # apply before create is an error naming the file
    ghost = V1Manager.at(HIER.v1, HIER.unified, _test_path())
    with pytest.raises(RuntimeFailure, match="cgroup.procs"):
        ghost.apply(os.getpid())
    # rootless: the same failures are only warnings
    soft = V1Manager(v1.path, dict(v1.paths), v1.unified, rootless=True)
    with caplog.at_level(logging.WARNING, logger="runsc_py.cgroups"):
        soft.set({"cpu": {"cpus": "4095"}})
    assert any("cpuset.cpus" in r.getMessage() for r in caplog.records)


@needs_root
@needs_v1
def test_v1_freeze_thaw_pids_state(v1: V1Manager, procs: Callable[[], subprocess.Popen[bytes]]) -> None:
    from runsc_py.state import ContainerState, _frozen

    v1.create()
    p1, p2 = procs(), procs()
    v1.apply(p1.pid)
    v1.apply(p2.pid)
    go(p1)
    go(p2)
    # a process in a child cgroup (a nested cgroup made by the container) is listed too
    sub = os.path.join(v1.paths["pids"], "nested")
    os.mkdir(sub)
    p3 = procs()
    v1.apply(p3.pid)
    _fs.write_file(os.path.join(sub, "cgroup.procs"), str(p3.pid))
    go(p3)
    assert v1.pids() == sorted([p1.pid, p2.pid, p3.pid])

    st = ContainerState(id="t", bundle="/", rootfs="/", created="", cgroup=v1.to_dict())
    assert not v1.is_frozen() and not _frozen(st)
    v1.freeze()
    assert _read(os.path.join(v1.paths["freezer"], "freezer.state")) == "FROZEN"
    assert v1.is_frozen() and _frozen(st)
    assert _state(p1.pid) == "D" and _state(p3.pid) == "D"       # in the refrigerator
    v1.freeze()                                                  # idempotent
    v1.thaw()
    assert _read(os.path.join(v1.paths["freezer"], "freezer.state")) == "THAWED"
    assert not _frozen(st)
    assert _state(p1.pid) == "S"


@needs_root
@needs_v1
def test_v1_destroy_busy_fails(v1: V1Manager, procs: Callable[[], subprocess.Popen[bytes]],
                               monkeypatch: pytest.MonkeyPatch) -> None:
    import runsc_py.cgroups._base as base
    monkeypatch.setattr(base, "DESTROY_TIMEOUT", 0.2)
    v1.create()
    p = procs()
    v1.apply(p.pid)
    with pytest.raises(RuntimeFailure, match=r"cgroup: remove .*: Device or resource busy"):
        v1.destroy()


@needs_root
@needs_v1
def test_v1_destroy_removes_child_cgroups(v1: V1Manager) -> None:
    """A leaf is removed with one rmdir; child cgroups made under it (a
    nested runtime's, systemd's in the container) go first, deepest first."""
    v1.create()
    nested = [os.path.join(v1.paths["memory"], "a", "b"), os.path.join(v1.paths["pids"], "c")]
    for d in nested:
        os.makedirs(d)
    v1.destroy()
    for d in v1.paths.values():
        assert not os.path.exists(d)


@needs_root
@needs_v1
def test_v1_stats(v1: V1Manager, procs: Callable[[], subprocess.Popen[bytes]]) -> None:
    v1.create()
    v1.set({"memory": {"limit": 64 << 20}, "pids": {"limit": 100}})
    p = procs()
    v1.apply(p.pid)
    go(p)                                   # the exec allocates inside the cgroup
    # burn a little CPU inside the cgroup
    subprocess.run(["sh", "-c", f"echo $$ > {v1.paths['cpuacct']}/cgroup.procs; "
                    f"echo $$ > {v1.paths['cpu']}/cgroup.procs; i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done"],
                   check=True)
    s = v1.stats()
    assert json.loads(json.dumps(s)) == s
    assert set(s) >= {"cpu", "memory", "pids", "blkio"}
    assert s["cpu"]["usage"]["total"] > 0
    assert len(s["cpu"]["usage"]["percpu"]) >= 1
    assert sum(s["cpu"]["usage"]["percpu"]) > 0
    assert set(s["cpu"]["usage"]) >= {"total", "percpu", "kernel", "user"}
    assert set(s["cpu"]["throttling"]) == {"periods", "throttledPeriods", "throttledTime"}
    mu = s["memory"]["usage"]
    assert set(mu) == {"usage", "max", "limit", "failcnt"}
    assert mu["usage"] > 0 and mu["max"] >= mu["usage"]
    assert mu["limit"] == 64 << 20
    assert set(s["memory"]["swap"]) == {"usage", "max", "limit", "failcnt"}
    assert isinstance(s["memory"]["cache"], int)
    assert "rss" in s["memory"]["raw"] and all(isinstance(v, int) for v in s["memory"]["raw"].values())
    assert s["pids"] == {"current": 1, "limit": 100}
    v1.set({"pids": {"limit": -1}})
    assert v1.stats()["pids"]["limit"] == 0              # 0 = no limit ("max")
    assert isinstance(s["blkio"], dict)


@needs_root
@needs_v1
def test_v1_kill_all(v1: V1Manager, procs: Callable[[], subprocess.Popen[bytes]]) -> None:
    v1.create()
    ps = [procs() for _ in range(3)]
    for p in ps:
        v1.apply(p.pid)
        go(p)
    # a non-fatal signal to a paused container: delivered, container stays paused
    v1.freeze()
    v1.kill_all(signal.SIGTERM)
    assert v1.is_frozen()
    assert all(p.poll() is None for p in ps)
    v1.thaw()                     # now the pending SIGTERM is handled
    for p in ps:
        assert p.wait(timeout=5) == -signal.SIGTERM

    more = [procs() for _ in range(2)]
    for p in more:
        v1.apply(p.pid)
        go(p)
    v1.freeze()                   # SIGKILL works on a paused container
    v1.kill_all(signal.SIGKILL)
    for p in more:
        assert p.wait(timeout=5) == -signal.SIGKILL
    assert not v1.is_frozen()
    assert _fs.wait_until(lambda: v1.pids() == [], 2)
    # Empty (delete's usual case): nothing to signal, so no freeze and thaw.
    def no_freezing() -> None:
        raise AssertionError("an empty cgroup was frozen")
    v1.freeze = no_freezing  # type: ignore[method-assign]
    v1.kill_all(signal.SIGKILL)
    v1.destroy()
    for d in _all_v1_dirs(v1):
        assert not os.path.exists(d), d
    v1.kill_all(signal.SIGKILL)       # a destroyed cgroup: nothing to do, no error


# -- v2, real ----------------------------------------------------------------------

@needs_root
def test_v2_lifecycle(v2: V2Manager, procs: Callable[[], subprocess.Popen[bytes]]) -> None:
    if not os.path.exists(os.path.join(HIER.unified, "cgroup.procs")):
        pytest.skip("no usable cgroup2 hierarchy")
    v2.create()
    assert os.path.isdir(v2.unified)
    d = v2.to_dict()
    assert d["mode"] == "v2" and d["unified"] == v2.unified and "freezer" not in d["paths"]
    assert CgroupManager.from_dict(d).to_dict() == d

    p1, p2 = procs(), procs()
    v2.apply(p1.pid)
    v2.apply(p2.pid)
    go(p1)
    go(p2)
    assert _read(f"/proc/{p1.pid}/cgroup").splitlines()[-1] == f"0::{v2.path}"
    os.mkdir(os.path.join(v2.unified, "nested"))
    p3 = procs()
    _fs.write_file(os.path.join(v2.unified, "nested", "cgroup.procs"), str(p3.pid))
    go(p3)
    assert v2.pids() == sorted([p1.pid, p2.pid, p3.pid])

    if not os.path.exists(os.path.join(v2.unified, "cgroup.freeze")):
        pytest.skip("kernel without the cgroup v2 freezer (cgroup.freeze, Linux 5.2+)")
    from runsc_py.state import ContainerState, _frozen
    st = ContainerState(id="t", bundle="/", rootfs="/", created="", cgroup=d)
    v2.freeze()
    assert _fs.read_kv(os.path.join(v2.unified, "cgroup.events"))["frozen"] == 1
    assert _fs.read_kv(os.path.join(v2.unified, "nested", "cgroup.events"))["frozen"] == 1
    assert v2.is_frozen() and _frozen(st)
    v2.thaw()
    assert _fs.read_kv(os.path.join(v2.unified, "cgroup.events"))["frozen"] == 0
    assert not v2.is_frozen() and not _frozen(st)

    s = v2.stats()
    assert json.loads(json.dumps(s)) == s
    assert set(s["memory"]["usage"]) == {"usage", "max", "limit", "failcnt"}
    assert set(s["pids"]) == {"current", "limit"}
    assert s["cpu"]["usage"]["total"] >= 0

    # a paused container: non-fatal signal keeps it paused, SIGKILL kills
    v2.freeze()
    v2.kill_all(signal.SIGTERM)
    assert v2.is_frozen()
    v2.thaw()
    for p in (p1, p2, p3):
        assert p.wait(timeout=5) == -signal.SIGTERM
    p4 = procs()
    v2.apply(p4.pid)
    go(p4)
    v2.freeze()
    v2.kill_all(signal.SIGKILL)
    assert p4.wait(timeout=5) == -signal.SIGKILL
    v2.destroy()
    assert not os.path.exists(v2.unified)
    v2.destroy()
    v2.kill_all(signal.SIGKILL)


@needs_root
def test_v2_set_errors_and_warnings(v2: V2Manager, caplog: pytest.LogCaptureFixture) -> None:
    v2.create()
    with caplog.at_level(logging.WARNING, logger="runsc_py.cgroups"):
        v2.set({"devices": [{"allow": False, "access": "rwm"}]})
    assert any("eBPF" in r.getMessage() for r in caplog.records)
    with pytest.raises(RuntimeFailure) as ei:
        v2.set({"unified": {"cgroup.max.descendants": "bogus"}})
    assert str(ei.value).startswith(f"cgroup: write {v2.unified}/cgroup.max.descendants: ")
    v2.set({"unified": {"cgroup.max.descendants": "7"}})
    assert _read(os.path.join(v2.unified, "cgroup.max.descendants")) == "7"
    ctl = set(_read(os.path.join(v2.unified, "..", "cgroup.subtree_control")).split())
    if "memory" not in ctl:
        with pytest.raises(RuntimeFailure, match=r"memory\.max: no such file"):
            v2.set({"memory": {"limit": 1 << 30}})


@needs_root
def test_v2_hugetlb_limit(v2: V2Manager) -> None:
    sizes = [s for s in ("2MB", "1GB") if os.path.exists(f"/sys/kernel/mm/hugepages/hugepages-"
                                                          f"{2048 if s == '2MB' else 1048576}kB")]
    if "hugetlb" not in _read(os.path.join(HIER.unified, "cgroup.controllers")).split() or not sizes:
        pytest.skip("hugetlb controller not available in the cgroup2 hierarchy")
    v2.create()
    v2.set({"hugepageLimits": [{"pageSize": sizes[0], "limit": 4 << 20 if sizes[0] == "2MB" else 1 << 30}]})
    assert int(_read(os.path.join(v2.unified, f"hugetlb.{sizes[0]}.max"))) > 0
    assert sizes[0] in v2.stats()["hugetlb"]


@needs_root
def test_v2_limits_real(v2: V2Manager, procs: Callable[[], subprocess.Popen[bytes]]) -> None:
    avail = set(_read(os.path.join(HIER.unified, "cgroup.controllers")).split())
    missing = {"memory", "pids", "cpu", "cpuset"} - avail
    if missing:
        pytest.skip(f"controllers {sorted(missing)} are not in the cgroup2 hierarchy "
                    f"(hybrid host: they are bound to v1)")
    v2.create()
    p = procs()
    v2.apply(p.pid)
    go(p)
    v2.set({"memory": {"limit": 256 << 20, "reservation": 64 << 20},
            "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"},
            "pids": {"limit": 42}})
    u = v2.unified
    assert _read(f"{u}/memory.max") == str(256 << 20)
    assert _read(f"{u}/memory.low") == str(64 << 20)
    assert _read(f"{u}/cpu.weight") == "39"
    assert _read(f"{u}/cpu.max") == "50000 100000"
    assert _read(f"{u}/cpuset.cpus") == "0"
    assert _read(f"{u}/pids.max") == "42"
    s = v2.stats()
    assert s["memory"]["usage"]["usage"] > 0 and s["memory"]["usage"]["limit"] == 256 << 20
    assert s["pids"] == {"current": 1, "limit": 42}
    v2.kill_all(signal.SIGKILL)
    p.wait(timeout=5)
    v2.destroy()
    assert not os.path.exists(u)
