"""config.json, area by area (namespaces, root, mounts, devices, masked and
read-only paths, sysctl, cgroups, hooks): every test runs a real container on
the busybox rootfs and asserts what the workload sees from INSIDE (it prints
it), or what the host sees of the workload's cgroups and namespaces.

The expectations are runc's behaviour (validate with
RUNSC_PY_TEST_RUNTIME=/usr/sbin/runc).  Process settings (user, caps,
rlimits, ...), user namespaces, device-cgroup denials and path-escape checks
are in test_config_security.py.

runsc-py's state pid is the SANDBOX process (the parent of the container's
init): the workload is found inside (`$$`, /proc/self) or with `ps`.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from helpers import CGROUP_ROOT, default_spec, kv, run_ok, umount_lazy, wait_ready, wait_until, workload_pid


# -- helpers -------------------------------------------------------------------------







def section(out: str, name: str) -> str:
    """The text the workload printed between `@@NAME` and the next `@@` line."""
    m = re.search(rf"^@@{re.escape(name)}\n(.*?)(?=^@@|\Z)", out, re.S | re.M)
    assert m, f"no section @@{name} in the workload's output:\n{out}"
    return m.group(1)


class Mount:
    def __init__(self, line: str) -> None:
        f = line.split()
        sep = f.index("-")
        self.root = f[3]
        self.mountpoint = f[4]
        self.opts = set(f[5].split(","))
        self.optional = f[6:sep]
        self.fstype = f[sep + 1]
        self.source = f[sep + 2]
        self.super = set(f[sep + 3].split(",")) if len(f) > sep + 3 else set()

    def __repr__(self) -> str:
        return (f"<{self.mountpoint} {self.fstype} opts={sorted(self.opts)} "
                f"optional={self.optional} super={sorted(self.super)}>")


def mounts(text: str) -> dict[str, Mount]:
    """mountinfo text -> {mountpoint: Mount} (the top mount of each point)."""
    out = {}
    for ln in text.splitlines():
        if " - " in ln:
            m = Mount(ln)
            out[m.mountpoint] = m
    return out


def default_mounts() -> list[dict]:
    """The default spec's mounts (append to them: lists replace in config=)."""
    return default_spec()["mounts"]


MOUNTINFO = "echo @@mountinfo; cat /proc/self/mountinfo; echo @@end"


def host_ns(kind: str) -> str:
    return os.readlink(f"/proc/self/ns/{kind}")


def add_ns(spec, *entries):
    spec["linux"]["namespaces"] = [n for n in spec["linux"]["namespaces"]
                                   if n["type"] not in {e["type"] for e in entries}]
    spec["linux"]["namespaces"].extend(entries)




# -- namespaces ------------------------------------------------------------------------

def test_pid_namespace(runtime, bundle):
    b = bundle('echo pid=$$; echo ns=$(readlink /proc/self/ns/pid); '
               'echo procs=$(ls /proc | grep "^[0-9]")', rootfs="shared")
    out = kv(run_ok(runtime, b))
    assert out["pid"] == "1", out
    assert out["ns"] != host_ns("pid")
    # sh (pid 1), the $(...) subshell, ls and grep: nothing of the host
    procs = [int(p) for p in out["procs"].split()]
    assert 1 in procs and max(procs) <= 10, out


def test_uts_namespace(runtime, bundle):
    b = bundle("echo host=$(hostname); echo uname=$(uname -n); "
               "echo ns=$(readlink /proc/self/ns/uts)", rootfs="shared",
               config={"hostname": "cfg-host"})
    before = os.uname().nodename
    out = kv(run_ok(runtime, b))
    assert out["host"] == "cfg-host" and out["uname"] == "cfg-host"
    assert out["ns"] != host_ns("uts")
    assert os.uname().nodename == before


@pytest.mark.runsc_py_only
def test_uts_domainname(runtime, bundle):
    """runtime-spec 1.0.2 "domainname" (runc 1.1.5 ignores it: "(none)")."""
    b = bundle("echo domain=$(cat /proc/sys/kernel/domainname); "
               "echo host=$(hostname)", rootfs="shared",
               config={"hostname": "cfg-host", "domainname": "cfg.example.org"})
    before = Path("/proc/sys/kernel/domainname").read_text()
    out = kv(run_ok(runtime, b))
    assert out == {"domain": "cfg.example.org", "host": "cfg-host"}
    assert Path("/proc/sys/kernel/domainname").read_text() == before


def test_ipc_namespace(runtime, bundle):
    """A SysV shared memory segment of the host is not visible inside."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    key = 0x52535000 | (os.getpid() & 0xfff)
    shmid = libc.shmget(key, 4096, 0o600 | 0o1000)  # IPC_CREAT
    assert shmid >= 0, os.strerror(ctypes.get_errno())
    try:
        assert str(shmid) in Path("/proc/sysvipc/shm").read_text()
        b = bundle("echo ns=$(readlink /proc/self/ns/ipc); "
                   "echo shm=$(tail -n +2 /proc/sysvipc/shm | wc -l)", rootfs="shared")
        out = kv(run_ok(runtime, b))
        assert out["ns"] != host_ns("ipc")
        assert out["shm"] == "0", out
    finally:
        libc.shmctl(shmid, 0, None)  # IPC_RMID


def test_network_namespace_has_only_lo_up(runtime, bundle):
    b = bundle("echo ns=$(readlink /proc/self/ns/net); echo ifs=$(ls /sys/class/net); "
               "echo flags=$(cat /sys/class/net/lo/flags); ip link show lo",
               rootfs="shared")
    out = run_ok(runtime, b)
    d = kv(out)
    assert d["ns"] != host_ns("net")
    assert d["ifs"] == "lo", out
    assert int(d["flags"], 16) & 0x1, f"lo is not UP (IFF_UP): {out}"
    assert re.search(r"<[^>]*\bUP\b[^>]*>", out), out


def test_mount_namespace(runtime, bundle):
    b = bundle("echo ns=$(readlink /proc/self/ns/mnt); " + MOUNTINFO, rootfs="shared")
    out = run_ok(runtime, b)
    assert kv(out)["ns"] != host_ns("mnt")
    m = mounts(section(out, "mountinfo"))
    assert "/" in m and "/proc" in m, m
    # the host's mounts are gone (e.g. the host's /sys/fs/cgroup/unified)
    host = {ln.split()[4] for ln in Path("/proc/self/mountinfo").read_text().splitlines()}
    assert not ({p for p in host if p.startswith("/run/") or p.startswith("/tmp/")} & set(m)), m


def test_cgroup_namespace(runtime, bundle):
    b = bundle("cat /proc/self/cgroup; echo ns=$(readlink /proc/self/ns/cgroup)",
               rootfs="shared",
               edit=lambda s: add_ns(s, {"type": "cgroup"}))
    out = run_ok(runtime, b)
    assert kv(out)["ns"] != host_ns("cgroup")
    lines = [ln for ln in out.splitlines() if re.match(r"^\d+:", ln)]
    assert lines, out
    for ln in lines:
        _, ctrl, path = ln.split(":", 2)
        if ctrl in ("", "name=systemd"):
            continue  # hierarchies runc does not manage here
        assert path == "/", f"cgroup path not virtualised: {ln!r}\n{out}"


def test_no_cgroup_namespace_shows_host_paths(runtime, bundle):
    """Without a cgroup namespace the container sees its real cgroup path."""
    b = bundle("cat /proc/self/cgroup", rootfs="shared")
    cid = runtime.new_id("nocgns")
    out = run_ok(runtime, b, cid=cid)
    pids_line = [ln for ln in out.splitlines() if ln.split(":")[1:2] == ["pids"]]
    assert pids_line and pids_line[0].endswith("/" + cid), out


@pytest.fixture
def netns_holder():
    """A process in a new network namespace with a veth pair (rspv0/rspv1);
    yields its pid.  Killed afterwards (the namespace goes with it)."""
    p = subprocess.Popen(
        ["unshare", "--net", "--", "sh", "-c",
         "ip link add rspv0 type veth peer name rspv1 && ip link set lo up && echo ready "
         "&& exec sleep 60"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = p.stdout.readline()
        assert line.strip() == "ready", p.stderr.read()
        yield p.pid
    finally:
        p.kill()
        p.wait()


def test_join_network_namespace_by_path(runtime, bundle, netns_holder):
    path = f"/proc/{netns_holder}/ns/net"
    ino = os.stat(path).st_ino
    b = bundle("echo ns=$(readlink /proc/self/ns/net); echo ifs=$(ls /sys/class/net)",
               rootfs="shared",
               edit=lambda s: add_ns(s, {"type": "network", "path": path}))
    out = kv(run_ok(runtime, b))
    assert out["ns"] == f"net:[{ino}]"
    assert sorted(out["ifs"].split()) == ["lo", "rspv0", "rspv1"], out


def test_join_uts_namespace_by_path(runtime, bundle, workdir):
    """Joining a uts namespace by path (no "hostname" in the spec, else the
    runtime would rename the joined namespace): the container sees the
    namespace's hostname."""
    p = subprocess.Popen(["unshare", "--uts", "--", "sh", "-c",
                          "hostname joined-uts && echo ready && exec sleep 60"],
                         stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "ready"
        path = f"/proc/{p.pid}/ns/uts"
        ino = os.stat(path).st_ino

        def edit(s):
            add_ns(s, {"type": "uts", "path": path})
            s.pop("hostname", None)
        b = bundle("echo ns=$(readlink /proc/self/ns/uts); echo host=$(hostname)",
                   rootfs="shared", edit=edit)
        out = kv(run_ok(runtime, b))
        assert out["ns"] == f"uts:[{ino}]"
        assert out["host"] == "joined-uts"
    finally:
        p.kill()
        p.wait()


# -- sysctl ----------------------------------------------------------------------------

def test_sysctl(runtime, bundle):
    host_fwd = Path("/proc/sys/net/ipv4/ip_forward").read_text()
    host_shmmax = Path("/proc/sys/kernel/shmmax").read_text()
    b = bundle("echo fwd=$(cat /proc/sys/net/ipv4/ip_forward); "
               "echo shmmax=$(cat /proc/sys/kernel/shmmax); "
               "echo mq=$(cat /proc/sys/fs/mqueue/msg_max)", rootfs="shared",
               config={"linux": {"sysctl": {"net.ipv4.ip_forward": "1",
                                            "kernel.shmmax": "123456789",
                                            "fs.mqueue.msg_max": "42"}}})
    out = kv(run_ok(runtime, b))
    assert out == {"fwd": "1", "shmmax": "123456789", "mq": "42"}
    assert Path("/proc/sys/net/ipv4/ip_forward").read_text() == host_fwd
    assert Path("/proc/sys/kernel/shmmax").read_text() == host_shmmax


# -- root ------------------------------------------------------------------------------

def test_root_readonly(runtime, bundle):
    b = bundle("touch /x 2>&1; echo rc=$?; " + MOUNTINFO, rootfs="shared")
    out = run_ok(runtime, b)
    assert "Read-only file system" in out
    assert kv(out)["rc"] != "0"
    assert "ro" in mounts(section(out, "mountinfo"))["/"].opts


def test_root_writable(runtime, bundle):
    b = bundle("echo data > /written && cat /written; " + MOUNTINFO,
               config={"root": {"readonly": False}})
    out = run_ok(runtime, b)
    assert out.startswith("data\n"), out
    assert "rw" in mounts(section(out, "mountinfo"))["/"].opts
    assert (b.rootfs / "written").read_text() == "data\n", "the write reached the bundle rootfs"


@pytest.mark.parametrize("form", ["relative", "absolute", "relative-dotted"])
def test_root_path(runtime, bundle, form):
    b = bundle("cat /marker", files={"marker": f"root-{form}\n"})
    if form == "absolute":
        b.update({"root": {"path": str(b.rootfs)}})
    elif form == "relative-dotted":
        b.update({"root": {"path": "./rootfs/"}})
    else:
        assert b.spec["root"]["path"] == "rootfs"
    assert run_ok(runtime, b) == f"root-{form}\n"


def test_root_path_elsewhere(runtime, bundle, workdir):
    """root.path relative to the bundle, pointing outside it."""
    b = bundle("cat /marker", files={"marker": "moved\n"})
    other = workdir / "elsewhere"
    other.mkdir()
    shutil.move(str(b.rootfs), str(other / "rfs"))
    b.update({"root": {"path": "../../elsewhere/rfs"}})
    assert run_ok(runtime, b) == "moved\n"


def test_no_pivot(runtime, bundle):
    b = bundle("cat /marker; echo pid=$$; echo ls=$(ls /)", files={"marker": "no-pivot\n"})
    cid = runtime.new_id("nopivot")
    with runtime.container(b, cid, start=False, extra=["--no-pivot"]) as c:
        c.start()
        c.wait_status("stopped")
        out = c.stdout()
    assert out.startswith("no-pivot\npid=1\n"), out
    listing = kv(out)["ls"].split()
    assert sorted(listing) == sorted(os.listdir(b.rootfs)), out


# -- mounts ----------------------------------------------------------------------------

def test_default_mounts(runtime, bundle):
    """proc, /dev tmpfs, devpts, shm, mqueue, sysfs (ro), cgroup (ro) as in
    the default spec, with their options."""
    b = bundle(MOUNTINFO + "; touch /sys/x 2>&1; touch /proc/x 2>&1; cat /proc/1/cmdline; echo",
               rootfs="shared")
    out = run_ok(runtime, b)
    m = mounts(section(out, "mountinfo"))
    assert m["/proc"].fstype == "proc"
    assert m["/dev"].fstype == "tmpfs" and {"nosuid"} <= m["/dev"].opts
    assert "mode=755" in m["/dev"].super
    assert m["/dev/pts"].fstype == "devpts"
    assert {"nosuid", "noexec"} <= m["/dev/pts"].opts
    assert {"mode=620", "ptmxmode=666", "gid=5"} <= m["/dev/pts"].super, m["/dev/pts"]
    assert m["/dev/shm"].fstype == "tmpfs"
    assert {"nosuid", "noexec", "nodev"} <= m["/dev/shm"].opts
    assert m["/dev/mqueue"].fstype == "mqueue"
    assert {"nosuid", "noexec", "nodev"} <= m["/dev/mqueue"].opts
    assert m["/sys"].fstype == "sysfs"
    assert {"ro", "nosuid", "noexec", "nodev"} <= m["/sys"].opts
    assert "touch: /sys/x: Read-only file system" in out
    assert "sh\0-c" in out or "sh-c" in out.replace("\0", "")


def test_cgroup_mount_v1(runtime, bundle):
    """The cgroup mount (ro): on a v1/hybrid host a tmpfs at /sys/fs/cgroup
    with one read-only mount per controller, showing the container's own
    cgroup (its limits)."""
    if not Path("/sys/fs/cgroup/pids/pids.max").exists() and not Path(
            "/sys/fs/cgroup/pids").is_dir():
        pytest.skip("not a v1/hybrid cgroup host")
    b = bundle("echo ls=$(ls /sys/fs/cgroup); echo max=$(cat /sys/fs/cgroup/pids/pids.max); "
               "echo mem=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes); "
               "echo 5 > /sys/fs/cgroup/pids/pids.max; mkdir /sys/fs/cgroup/pids/sub; "
               + MOUNTINFO, rootfs="shared",
               config={"linux": {"resources": {"pids": {"limit": 77},
                                               "memory": {"limit": 64 << 20}}}})
    cid = runtime.new_id("cgmount")
    res = runtime.run_container(b, cid)
    out = res.stdout
    assert res.returncode == 0, res
    d = kv(out)
    for ctrl in ("pids", "memory", "cpuset", "devices", "freezer", "blkio"):
        assert ctrl in d["ls"].split(), d["ls"]
    assert d["max"] == "77", out
    assert d["mem"] == str(64 << 20), out
    assert "Read-only file system" in res.stderr, res
    m = mounts(section(out, "mountinfo"))
    # runc: a (rw) tmpfs at /sys/fs/cgroup, one ro bind per hierarchy on it
    assert m["/sys/fs/cgroup"].fstype == "tmpfs"
    assert {"nosuid", "nodev", "noexec"} <= m["/sys/fs/cgroup"].opts
    for ctrl in ("pids", "memory", "cpuset", "devices", "freezer"):
        cm = m[f"/sys/fs/cgroup/{ctrl}"]
        assert cm.fstype == "cgroup" and "ro" in cm.opts and ctrl in cm.super, cm
        # the bind's root is the container's own cgroup, not the hierarchy's root
        assert cm.root.endswith("/" + cid), cm


def test_tmpfs_size_and_mode(runtime, bundle):
    b = bundle("stat -c mode=%a /mnt/t; echo df=$(df -k /mnt/t | tail -1); " + MOUNTINFO,
               rootfs="shared",
               config={"mounts": default_mounts() + [
                   {"destination": "/mnt/t", "type": "tmpfs", "source": "tmpfs",
                    "options": ["size=1m", "mode=710", "nr_inodes=100"]}]})
    out = run_ok(runtime, b)
    assert kv(out)["mode"] == "710"
    df = kv(out)["df"].split()
    assert df[0] == "tmpfs" and df[1] == "1024", out
    t = mounts(section(out, "mountinfo"))["/mnt/t"]
    assert t.fstype == "tmpfs"
    assert {"size=1024k", "mode=710", "nr_inodes=100"} <= t.super, t


@pytest.mark.parametrize("flags,expect_opts,absent", [
    (["nosuid", "nodev", "noexec"], {"nosuid", "nodev", "noexec"}, set()),
    (["suid", "dev", "exec"], set(), {"nosuid", "nodev", "noexec"}),
    (["relatime"], {"relatime"}, {"noatime"}),
    (["noatime"], {"noatime"}, {"relatime"}),
    (["strictatime"], set(), {"noatime", "relatime"}),
    (["nodiratime", "relatime"], {"nodiratime", "relatime"}, set()),
    (["ro"], {"ro"}, {"rw"}),
    (["rw", "sync"], {"rw"}, {"ro"}),
])
def test_mount_flags(runtime, bundle, flags, expect_opts, absent):
    b = bundle(MOUNTINFO, rootfs="shared",
               config={"mounts": default_mounts() + [
                   {"destination": "/mnt/f", "type": "tmpfs", "source": "tmpfs",
                    "options": flags}]})
    out = run_ok(runtime, b)
    t = mounts(section(out, "mountinfo"))["/mnt/f"]
    assert expect_opts <= t.opts, t
    assert not (absent & t.opts), t
    if "sync" in flags:
        assert "sync" in t.opts or "sync" in t.super, t


def test_noexec_mount_refuses_exec(runtime, bundle):
    b = bundle("cp /bin/busybox /mnt/x/true && /mnt/x/true; echo rc=$?; "
               "cp /bin/busybox /mnt/y/true && /mnt/y/true; echo rc2=$?", rootfs="shared",
               config={"mounts": default_mounts() + [
                   {"destination": "/mnt/x", "type": "tmpfs", "source": "tmpfs",
                    "options": ["noexec"]},
                   {"destination": "/mnt/y", "type": "tmpfs", "source": "tmpfs",
                    "options": ["exec"]}]})
    res = runtime.run_container(b)
    assert res.returncode == 0, res
    d = kv(res.stdout)
    assert d["rc"] != "0" and "Permission denied" in res.stderr, res
    assert d["rc2"] == "0", res


@pytest.fixture
def host_dir(workdir):
    """A host directory with a file and a submount (tmpfs at sub/) holding
    another file; unmounted afterwards even on failure."""
    d = workdir / "hostdir"
    (d / "sub").mkdir(parents=True)
    (d / "file").write_text("host-file\n")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "rsp-sub", str(d / "sub")],
                   check=True)
    try:
        (d / "sub" / "inner").write_text("inner\n")
        yield d
    finally:
        with contextlib.suppress(OSError):
            umount_lazy(str(d / "sub"))


@pytest.mark.parametrize("kind", ["bind", "rbind"])
def test_bind_mount_ro(runtime, bundle, host_dir, kind):
    b = bundle("cat /mnt/h/file; cat /mnt/h/sub/inner 2>/dev/null || echo no-inner; "
               "touch /mnt/h/new 2>&1; echo rc=$?; " + MOUNTINFO, rootfs="shared",
               config={"mounts": default_mounts() + [
                   {"destination": "/mnt/h", "type": "bind", "source": str(host_dir),
                    "options": [kind, "ro"]}]})
    out = run_ok(runtime, b)
    lines = out.splitlines()
    assert lines[0] == "host-file"
    if kind == "rbind":
        assert lines[1] == "inner", "rbind must carry the submount"
    else:
        assert lines[1] == "no-inner", "bind must not carry the submount"
    assert "Read-only file system" in out and kv(out)["rc"] != "0"
    assert not (host_dir / "new").exists()
    m = mounts(section(out, "mountinfo"))
    assert "ro" in m["/mnt/h"].opts
    assert ("/mnt/h/sub" in m) == (kind == "rbind"), m


def test_bind_mount_rw_writes_through(runtime, bundle, host_dir):
    b = bundle("echo from-container > /mnt/h/new", rootfs="shared",
               config={"mounts": default_mounts() + [
                   {"destination": "/mnt/h", "type": "bind", "source": str(host_dir),
                    "options": ["rbind", "rw"]}]})
    run_ok(runtime, b)
    assert (host_dir / "new").read_text() == "from-container\n"


def test_bind_mount_no_type(runtime, bundle, host_dir):
    """A mount without "type" but with the bind option is a bind mount."""
    b = bundle("cat /mnt/h/file", rootfs="shared",
               config={"mounts": default_mounts() + [
                   {"destination": "/mnt/h", "source": str(host_dir),
                    "options": ["bind", "ro"]}]})
    assert run_ok(runtime, b) == "host-file\n"


def test_bind_mount_single_file(runtime, bundle, host_dir):
    """A file bind-mounted onto a path that does not exist in the rootfs:
    the runtime creates an empty file to mount on."""
    b = bundle("cat /etc/injected.conf; stat -c type=%F /etc/injected.conf", rootfs="copy",
               config={"mounts": default_mounts() + [
                   {"destination": "/etc/injected.conf", "type": "bind",
                    "source": str(host_dir / "file"), "options": ["bind", "ro"]}]})
    out = run_ok(runtime, b)
    assert out.splitlines()[0] == "host-file"
    assert kv(out)["type"] == "regular file"


def test_mount_destination_created(runtime, bundle):
    """A destination missing from the rootfs (several levels deep) is created,
    even with a read-only root."""
    b = bundle("echo x > /new/deep/dir/f && cat /new/deep/dir/f; " + MOUNTINFO,
               config={"mounts": default_mounts() + [
                   {"destination": "/new/deep/dir", "type": "tmpfs", "source": "tmpfs",
                    "options": ["size=1m"]}]})
    out = run_ok(runtime, b)
    assert out.startswith("x\n")
    assert mounts(section(out, "mountinfo"))["/new/deep/dir"].fstype == "tmpfs"
    assert (b.rootfs / "new/deep/dir").is_dir()


def test_mount_order_nested(runtime, bundle, host_dir):
    """Mounts are done in order: a later mount under an earlier one lands on it."""
    b = bundle("cat /mnt/a/b/file; echo; ls /mnt/a", rootfs="shared",
               config={"mounts": default_mounts() + [
                   {"destination": "/mnt/a", "type": "tmpfs", "source": "tmpfs"},
                   {"destination": "/mnt/a/b", "type": "bind", "source": str(host_dir),
                    "options": ["rbind", "ro"]}]})
    out = run_ok(runtime, b)
    assert out.split() == ["host-file", "b"], out


@pytest.mark.parametrize("prop,expect", [("rshared", "shared"), ("shared", "shared"),
                                         ("rprivate", None), ("private", None),
                                         ("unbindable", "unbindable"),
                                         # a new tmpfs has no master: slave == private
                                         ("rslave", None)])
def test_mount_propagation_option(runtime, bundle, prop, expect):
    b = bundle(MOUNTINFO, rootfs="shared",
               config={"mounts": default_mounts() + [
                   {"destination": "/mnt/p", "type": "tmpfs", "source": "tmpfs",
                    "options": [prop]}]})
    out = run_ok(runtime, b)
    t = mounts(section(out, "mountinfo"))["/mnt/p"]
    tags = [o.split(":")[0] for o in t.optional]
    if expect is None:
        assert tags == [], t
    else:
        assert expect in tags, t


@pytest.fixture
def shared_host_dir(workdir):
    """A host directory made a shared mount (bind onto itself, --make-shared);
    everything under it is unmounted afterwards."""
    src = workdir / "propsrc"
    src.mkdir()
    subprocess.run(["mount", "--bind", str(src), str(src)], check=True)
    try:
        subprocess.run(["mount", "--make-shared", str(src)], check=True)
        yield src
    finally:
        _umount_tree(src)


def _umount_tree(top: Path) -> None:
    for _ in range(10):
        mps = [ln.split()[4] for ln in Path("/proc/self/mountinfo").read_text().splitlines()]
        mine = [mp for mp in mps if mp == str(top) or mp.startswith(str(top) + "/")]
        if not mine:
            return
        for mp in sorted(mine, key=len, reverse=True):
            with contextlib.suppress(OSError):
                umount_lazy(mp)


SYS_ADMIN = {"capabilities": {k: ["CAP_SYS_ADMIN"] for k in ("bounding", "effective", "permitted")}}


@pytest.mark.parametrize("prop,inward,outward", [
    ("rprivate", False, False),
    ("rslave", True, False),
    ("rshared", True, True),
    ("private", True, True),
    ("slave", True, True),
    ("shared", True, True),
])
def test_rootfs_propagation(runtime, bundle, shared_host_dir, prop, inward, outward):
    """linux.rootfsPropagation, seen through a bind of a shared host dir:
    a host mount under it shows up inside (slave, shared), a mount made
    inside shows up on the host (shared only)."""
    src = shared_host_dir
    b = bundle("echo ready; exec sleep 30", rootfs="shared",
               config={"linux": {"rootfsPropagation": prop}, "process": SYS_ADMIN,
                       "mounts": default_mounts() + [
                           {"destination": "/mnt/p", "type": "bind", "source": str(src),
                            "options": ["rbind"]}]})
    (src / "fromhost").mkdir()
    (src / "frominside").mkdir()
    with runtime.container(b) as c:
        wait_ready(c)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "rsp-fromhost",
                        str(src / "fromhost")], check=True)
        res = c.exec("grep", "-c", " /mnt/p/fromhost ", "/proc/self/mountinfo")
        assert res.stdout.strip() == ("1" if inward else "0"), res
        res = c.exec("mount", "-t", "tmpfs", "-o", "size=1m", "rsp-inside", "/mnt/p/frominside")
        if not runtime.is_runc:
            # runsc-py's sandbox denies mount(2) whatever the capabilities:
            # the outward direction cannot arise.
            assert res.returncode != 0, res
            return
        assert res.returncode == 0, res
        seen_host = any(ln.split()[4] == str(src / "frominside")
                        for ln in Path("/proc/self/mountinfo").read_text().splitlines())
        assert seen_host == outward


# -- devices ---------------------------------------------------------------------------

DEFAULT_DEVICES = {"/dev/null": (1, 3), "/dev/zero": (1, 5), "/dev/full": (1, 7),
                   "/dev/random": (1, 8), "/dev/urandom": (1, 9), "/dev/tty": (5, 0)}


def test_default_devices(runtime, bundle):
    script = "".join(f"stat -c '%n %F %t %T %a' {d}; " for d in DEFAULT_DEVICES)
    script += ("echo x > /dev/null && echo null-ok; head -c 3 /dev/zero | od -An -tx1; "
               "head -c 8 /dev/urandom | wc -c; echo x > /dev/full; echo full=$?")
    b = bundle(script, rootfs="shared")
    res = runtime.run_container(b)
    assert res.returncode == 0, res
    seen = {}
    for ln in res.stdout.splitlines():
        f = ln.split()
        if f and f[0] in DEFAULT_DEVICES:
            assert " ".join(f[1:4]) == "character special file", ln
            seen[f[0]] = (int(f[4], 16), int(f[5], 16), f[6])
    for dev, (ma, mi) in DEFAULT_DEVICES.items():
        assert dev in seen, res.stdout
        assert seen[dev][:2] == (ma, mi), (dev, seen[dev])
        assert seen[dev][2] == "666", (dev, seen[dev])
    assert "null-ok" in res.stdout
    assert "00 00 00" in res.stdout
    assert "\n8\n" in res.stdout
    assert kv(res.stdout)["full"] != "0" and "No space left on device" in res.stderr


def test_dev_symlinks(runtime, bundle):
    links = ["/dev/fd", "/dev/stdin", "/dev/stdout", "/dev/stderr", "/dev/ptmx"]
    b = bundle("".join(f"echo {p}=$(readlink {p}); " for p in links)
               + "ls /dev/pts; ls -d /dev/shm /dev/mqueue; echo hi > /dev/stderr",
               rootfs="shared")
    res = runtime.run_container(b)
    assert res.returncode == 0, res
    d = kv(res.stdout)
    assert d["/dev/fd"] == "/proc/self/fd"
    assert d["/dev/stdin"] == "/proc/self/fd/0"
    assert d["/dev/stdout"] == "/proc/self/fd/1"
    assert d["/dev/stderr"] == "/proc/self/fd/2"
    assert d["/dev/ptmx"] == "pts/ptmx"
    assert "ptmx" in res.stdout.split()
    assert res.stderr.endswith("hi\n")


def test_linux_devices_added(runtime, bundle):
    devices = [
        {"path": "/dev/mydev", "type": "c", "major": 1, "minor": 3, "fileMode": 0o640,
         "uid": 1000, "gid": 5},
        {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o666},
        {"path": "/dev/sub/dir/mynull", "type": "c", "major": 1, "minor": 3},
    ]
    b = bundle("stat -c '%n %F %t %T %a %u %g' /dev/mydev /dev/fuse /dev/sub/dir/mynull; "
               "echo data > /dev/sub/dir/mynull && echo write-ok; "
               "echo data > /dev/mydev", rootfs="shared",
               config={"linux": {"devices": devices, "resources": {"devices": [
                   {"allow": False, "access": "rwm"},
                   {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"}]}}})
    res = runtime.run_container(b)
    lines = res.stdout.splitlines()
    assert lines[0] == "/dev/mydev character special file 1 3 640 1000 5", res.stdout
    assert lines[1].startswith("/dev/fuse character special file a e5 666 0 0"), res.stdout
    assert lines[2].startswith("/dev/sub/dir/mynull character special file 1 3 "), res.stdout
    assert "write-ok" in res.stdout
    # root without CAP_DAC_OVERRIDE may not write a 0640 device owned by 1000:5
    assert res.returncode != 0 and "Permission denied" in res.stderr, res


# -- masked and read-only paths --------------------------------------------------------

def test_masked_paths(runtime, bundle):
    def edit(s):
        s["linux"]["maskedPaths"] += ["/etc/secretdir", "/etc/secret", "/no/such/path"]
    b = bundle("echo kcore=$(cat /proc/kcore 2>/dev/null | wc -c); "
               "echo keys=$(cat /proc/keys | wc -c); echo tl=$(cat /proc/timer_list | wc -c); "
               "echo secret=$(cat /etc/secret | wc -c); echo dir=$(ls -A /etc/secretdir | wc -l); "
               "echo fw=$(ls -A /sys/firmware | wc -l); "
               "echo x > /etc/secretdir/f 2>&1; echo wr=$?; " + MOUNTINFO,
               edit=edit, config={"root": {"readonly": False}},
               files={"etc/secret": "top secret\n", "etc/secretdir/a": "a\n",
                      "etc/secretdir/b": "b\n"})
    out = run_ok(runtime, b)
    d = kv(out)
    assert d["kcore"] == "0"
    assert d["keys"] == "0" and d["tl"] == "0"
    assert d["secret"] == "0"
    assert d["dir"] == "0"
    assert d["fw"] == "0"
    assert d["wr"] != "0", "a masked directory must not be writable"
    m = mounts(section(out, "mountinfo"))
    assert m["/etc/secretdir"].fstype == "tmpfs" and "ro" in m["/etc/secretdir"].opts
    assert "/no/such/path" not in m
    assert (b.rootfs / "etc/secret").read_text() == "top secret\n"


def test_readonly_paths(runtime, bundle):
    def edit(s):
        s["linux"]["readonlyPaths"] += ["/data/ro", "/no/such/path"]
    b = bundle("echo 1 > /proc/sys/kernel/domainname; echo sys=$?; "
               "echo 1 > /proc/sys/vm/overcommit_memory; echo vm=$?; "
               "cat /proc/sys/kernel/ostype; "
               "echo x > /data/ro/f; echo ro=$?; echo x > /data/rw/f; echo rw=$?; "
               "cat /data/ro/existing; " + MOUNTINFO,
               edit=edit, config={"root": {"readonly": False}},
               files={"data/ro/existing": "readable\n", "data/rw/.keep": ""})
    res = runtime.run_container(b)
    assert res.returncode == 0, res
    out = res.stdout
    d = kv(out)
    assert d["sys"] != "0" and d["vm"] != "0" and d["ro"] != "0", out
    assert d["rw"] == "0", out
    assert res.stderr.count("Read-only file system") >= 3, res
    assert "Linux\n" in out and "readable\n" in out
    m = mounts(section(out, "mountinfo"))
    assert "ro" in m["/proc/sys"].opts and "ro" in m["/data/ro"].opts
    assert not (b.rootfs / "data/ro/f").exists()


# -- cgroups ---------------------------------------------------------------------------

RESOURCES = {
    "memory": {"limit": 64 << 20, "reservation": 32 << 20},
    "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"},
    "pids": {"limit": 42},
}

V1_FILES = {
    ("memory", "memory.limit_in_bytes"): str(64 << 20),
    ("memory", "memory.soft_limit_in_bytes"): str(32 << 20),
    ("cpu", "cpu.shares"): "512",
    ("cpu", "cpu.cfs_quota_us"): "50000",
    ("cpu", "cpu.cfs_period_us"): "100000",
    ("cpuset", "cpuset.cpus"): "0",
    ("cpuset", "cpuset.mems"): "0",
    ("pids", "pids.max"): "42",
}


def _controllers():
    return [c for c in ("memory", "cpu", "cpuset", "pids", "devices", "freezer")
            if (CGROUP_ROOT / c).is_dir()]


def _cgroup_line(pid: int, ctrl: str) -> str:
    for ln in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, ctrls, path = ln.split(":", 2)
        if ctrl in ctrls.split(","):
            return path
    raise AssertionError(f"no {ctrl} line in /proc/{pid}/cgroup")


def _check_resources(runtime, cid: str, expect_path) -> list[Path]:
    """EXPECT_PATH: the cgroup path, or a function controller -> path."""
    pid = workload_pid(runtime, cid, "sleep")
    dirs = []
    for (ctrl, fname), want in V1_FILES.items():
        want_path = expect_path(ctrl) if callable(expect_path) else expect_path
        path = _cgroup_line(pid, ctrl)
        assert path == want_path, f"{ctrl}: workload in {path}, expected {want_path}"
        d = CGROUP_ROOT / ctrl / want_path.lstrip("/")
        assert d.is_dir()
        assert (d / fname).read_text().strip() == want, (d / fname)
        assert pid in [int(x) for x in (d / "cgroup.procs").read_text().split()]
        dirs.append(d)
    return dirs


needs_v1 = pytest.mark.skipif(not (CGROUP_ROOT / "pids" / "cgroup.procs").exists(),
                              reason="needs the v1/hybrid cgroup hierarchy")

INSIDE_LIMITS = ("echo mem=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes); "
                 "echo pids=$(cat /sys/fs/cgroup/pids/pids.max); "
                 "echo cpus=$(cat /sys/fs/cgroup/cpuset/cpuset.cpus); "
                 "echo quota=$(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us); "
                 "echo shares=$(cat /sys/fs/cgroup/cpu/cpu.shares); "
                 "echo ready; exec sleep 30")


def _inside_ok(c):
    out = kv(wait_ready(c))
    assert out == {"mem": str(64 << 20), "pids": "42", "cpus": "0", "quota": "50000",
                   "shares": "512"}, out


@needs_v1
def test_cgroup_resources_default_path(runtime, bundle):
    b = bundle(INSIDE_LIMITS, rootfs="shared",
               config={"linux": {"resources": RESOURCES}})
    with runtime.container(b) as c:
        _inside_ok(c)
        if runtime.is_runc:
            # runc: "<the caller's own cgroup>/<id>"
            def expect(ctrl):
                return os.path.join(_cgroup_line(os.getpid(), ctrl), c.id)
        else:
            expect = f"/runsc-py/{c.id}"
        dirs = _check_resources(runtime, c.id, expect)
        c.kill("KILL")
        c.wait_status("stopped")
        c.delete()
    for d in dirs:
        assert not d.exists(), f"cgroup {d} left after delete"


@needs_v1
def test_cgroup_resources_cgroups_path(runtime, bundle):
    parent = f"rsp-mytest-{uuid.uuid4().hex[:8]}"
    cid = runtime.new_id("cgpath")
    cgpath = f"/{parent}/{cid}"
    b = bundle(INSIDE_LIMITS, rootfs="shared",
               config={"linux": {"resources": RESOURCES, "cgroupsPath": cgpath}})
    try:
        with runtime.container(b, cid) as c:
            _inside_ok(c)
            dirs = _check_resources(runtime, c.id, cgpath)
            c.kill("KILL")
            c.wait_status("stopped")
            c.delete()
        for d in dirs:
            assert not d.exists(), f"cgroup {d} left after delete"
    finally:
        _rmdir_everywhere(cgpath)
        _rmdir_everywhere(f"/{parent}")


def _rmdir_everywhere(rel: str) -> None:
    for top in CGROUP_ROOT.iterdir():
        d = top / rel.lstrip("/")
        if d.is_dir():
            for _ in range(50):
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.02)


@needs_v1
def test_cgroup_systemd_path(runtime, bundle):
    """--systemd-cgroup with "slice:prefix:name" -> /slice/prefix-name.scope
    (cgroupfs-driven here: this machine runs no systemd; runc needs systemd's
    D-Bus for this and fails)."""
    if runtime.is_runc and not Path("/run/systemd/system").exists():
        pytest.skip("runc's systemd driver needs a running systemd")
    name = uuid.uuid4().hex[:12]
    b = bundle(INSIDE_LIMITS, rootfs="shared",
               config={"linux": {"resources": RESOURCES,
                                 "cgroupsPath": f"system.slice:runsc:{name}"}})
    cid = runtime.new_id("sysd")
    rel = f"/system.slice/runsc-{name}.scope"
    had_slice = {top.name for top in CGROUP_ROOT.iterdir() if (top / "system.slice").is_dir()}
    try:
        res = runtime.create(cid, b, global_args=["--systemd-cgroup"], check=False)
        assert res.returncode == 0, res
        runtime.start(cid, global_args=["--systemd-cgroup"])
        c_out = lambda: res.read_stdout()  # noqa: E731
        wait_until(lambda: "ready" in c_out(), 10, "the workload")
        dirs = _check_resources(runtime, cid, rel)
        runtime.run("delete", "--force", cid, global_args=["--systemd-cgroup"], check=True)
        for d in dirs:
            assert not d.exists(), f"cgroup {d} left after delete"
    finally:
        runtime.run("delete", "--force", cid, global_args=["--systemd-cgroup"])
        _rmdir_everywhere(rel)
        for top in CGROUP_ROOT.iterdir():
            if top.name not in had_slice and (top / "system.slice").is_dir():
                with contextlib.suppress(OSError):
                    (top / "system.slice").rmdir()


@needs_v1
def test_pids_limit_stops_fork_bomb(runtime, bundle):
    limit = 16
    b = bundle('i=0; while [ $i -lt 50 ]; do sleep 10 & i=$((i+1)); echo spawned=$i; done; '
               'echo all-spawned', rootfs="shared",
               config={"linux": {"resources": {"pids": {"limit": limit}}}})
    res = runtime.run_container(b)
    assert "all-spawned" not in res.stdout, res
    assert res.returncode != 0, res
    spawned = int(kv(res.stdout).get("spawned", "0"))
    assert limit // 2 <= spawned < limit, res
    assert "fork" in res.stderr or "Resource temporarily unavailable" in res.stderr, res


# -- hooks -----------------------------------------------------------------------------

HOOK_KINDS = ["prestart", "createRuntime", "createContainer", "startContainer",
              "poststart", "poststop"]


def _host_hook(kind: str, out: Path) -> dict:
    script = (f'cat > {out}/{kind}.json; echo {kind} >> {out}/order; '
              f'readlink /proc/self/ns/mnt > {out}/{kind}.mnt; '
              f'readlink /proc/self/ns/uts > {out}/{kind}.uts; hostname > {out}/{kind}.hostname; '
              f'readlink /proc/self/ns/pid > {out}/{kind}.pidns')
    return {"path": "/bin/sh", "args": ["sh", "-c", script], "env": [f"HOOK_KIND={kind}"]}


def test_hooks_all_kinds(runtime, bundle, workdir):
    out = workdir / "hookout"
    out.mkdir()
    hooks = {k: [_host_hook(k, out)] for k in HOOK_KINDS if k != "startContainer"}
    # startContainer runs inside the container: its path resolves in the
    # container's rootfs (the script exists only there), and it writes into
    # a bind mount of the host's HOOKOUT dir at /hookout.
    hooks["startContainer"] = [{"path": "/hookbin/start.sh", "args": ["start.sh", "a1"]}]
    start_sh = ('#!/bin/sh\n'
                'cat > /hookout/startContainer.json; echo startContainer >> /hookout/order\n'
                'echo "$1" > /hookout/startContainer.arg\n'
                'hostname > /hookout/startContainer.hostname\n'
                'readlink /proc/self/ns/mnt > /hookout/startContainer.mnt\n')
    b = bundle("readlink /proc/self/ns/mnt > /hookout/workload.mnt; "
               "readlink /proc/self/ns/uts > /hookout/workload.uts; "
               "readlink /proc/self/ns/pid > /hookout/workload.pidns; echo ready; exec sleep 30",
               config={"hostname": "hooked", "hooks": hooks,
                       "mounts": default_mounts() + [
                           {"destination": "/hookout", "type": "bind", "source": str(out),
                            "options": ["rbind", "rw"]}]},
               files={"hookbin/start.sh": start_sh})
    os.chmod(b.rootfs / "hookbin/start.sh", 0o755)
    cid = runtime.new_id("hooks")
    order = out / "order"

    def read_order():
        return order.read_text().split() if order.exists() else []

    # runc 1.1 runs poststart hooks at the end of `create` (opencontainers/runc
    # #1710, moved to `start` only in 2026 by runc PR #5186); the contract
    # (and the runtime-spec) run them after the program started, before
    # `start` returns.
    after_create = ["prestart", "createRuntime", "createContainer"]
    if runtime.is_runc:
        after_create.append("poststart")
    with runtime.container(b, cid, start=False) as c:
        st_created = c.state()
        assert read_order() == after_create
        c.start()
        if not runtime.is_runc:
            assert read_order() == HOOK_KINDS[:5]
        wait_ready(c)
        c.kill("KILL")
        c.wait_status("stopped")
        c.delete()
    if runtime.is_runc:
        assert read_order() == after_create + ["startContainer", "poststop"]
    else:
        assert read_order() == HOOK_KINDS

    states = {k: json.loads((out / f"{k}.json").read_text()) for k in HOOK_KINDS}
    for k, st in states.items():
        assert st["id"] == cid, (k, st)
        assert st["bundle"] == str(b.path), (k, st)
        assert st["ociVersion"], (k, st)
    for k in ("prestart", "createRuntime", "poststart"):
        assert states[k]["pid"] == st_created["pid"], (k, states[k], st_created)
    # hooks run inside the container's pid namespace: runc gives the pid as
    # seen from there (1)
    for k in ("createContainer", "startContainer"):
        assert states[k]["pid"] in (1, st_created["pid"]), (k, states[k], st_created)
    assert states["poststop"].get("pid", 0) == 0, states["poststop"]
    want_status = {"prestart": "creating", "createRuntime": "creating",
                   "createContainer": "creating", "startContainer": "created",
                   "poststart": "running", "poststop": "stopped"}
    if runtime.is_runc:
        want_status["poststart"] = "created"  # run by `create` (see above)
    got = {k: states[k]["status"] for k in HOOK_KINDS}
    assert got == want_status
    # startContainer: inside the container (its mount namespace, after pivot)
    assert (out / "startContainer.arg").read_text() == "a1\n"
    assert (out / "startContainer.mnt").read_text() == (out / "workload.mnt").read_text()
    assert (out / "startContainer.hostname").read_text() == "hooked\n"
    # createContainer: in the container's mount and uts namespaces (runc:
    # before pivot_root, so its path and the hook's files are the host's)
    assert (out / "createContainer.mnt").read_text() == (out / "workload.mnt").read_text()
    assert (out / "createContainer.uts").read_text() == (out / "workload.uts").read_text()
    # runc runs createContainer hooks in the new uts namespace before it sets
    # the hostname: they see the host's name.  (Either is fine for us.)
    cc_host = (out / "createContainer.hostname").read_text().strip()
    if runtime.is_runc:
        assert cc_host == os.uname().nodename
    else:
        assert cc_host in (os.uname().nodename, "hooked")
    # prestart, createRuntime, poststart, poststop: the runtime's namespaces
    for k in ("prestart", "createRuntime", "poststart", "poststop"):
        assert (out / f"{k}.mnt").read_text().strip() == host_ns("mnt"), k
        assert (out / f"{k}.uts").read_text().strip() == host_ns("uts"), k
        assert (out / f"{k}.pidns").read_text().strip() == host_ns("pid"), k


def test_hook_env_and_args(runtime, bundle, workdir):
    """path is executed with argv = args (args[0] is argv[0]) and exactly env."""
    out = workdir / "hook.txt"
    script = (f'tr "\\0" "\\n" < /proc/$$/cmdline > {out}.argv; '
              f'tr "\\0" "\\n" < /proc/$$/environ > {out}.env')
    b = bundle(["true"], rootfs="shared", config={"hooks": {"prestart": [
        {"path": "/bin/sh", "args": ["my-argv0", "-c", script, "zero", "one"],
         "env": ["HOOK_VAR=hv", "OTHER=o o"]}]}})
    with runtime.container(b, start=False):
        pass
    assert Path(f"{out}.argv").read_text().splitlines() == ["my-argv0", "-c", script,
                                                           "zero", "one"]
    assert sorted(Path(f"{out}.env").read_text().splitlines()) == ["HOOK_VAR=hv", "OTHER=o o"]


def test_hook_timeout(runtime, bundle, workdir):
    hook = workdir / "hooks" / "sleep"
    hook.parent.mkdir()
    os.symlink("/bin/busybox", hook)
    b = bundle(["true"], rootfs="shared", config={"hooks": {"prestart": [
        {"path": str(hook), "args": ["sleep", "30"], "timeout": 1}]}})
    cid = runtime.new_id("hooktmo")
    t0 = time.monotonic()
    res = runtime.create(cid, b, check=False)
    elapsed = time.monotonic() - t0
    assert res.returncode != 0, res
    assert elapsed < 10, f"create took {elapsed:.1f}s with a 1 s hook timeout"
    assert runtime.try_state(cid) is None


@pytest.mark.parametrize("kind", ["createContainer", "startContainer"])
def test_failing_container_hook_aborts(runtime, bundle, kind):
    hook = {"path": "/bin/sh", "args": ["sh", "-c", "exit 3"]}
    b = bundle("echo RAN", rootfs="shared", config={"hooks": {kind: [hook]}})
    cid = runtime.new_id("hookfail")
    res = runtime.create(cid, b, check=False)
    if kind == "createContainer":
        assert res.returncode != 0, res
        assert runtime.try_state(cid) is None
        return
    assert res.returncode == 0, res
    # runc's `start` itself succeeds (the hook fails in the init, which then
    # exits); the program never runs and the container ends stopped.
    runtime.start(cid, check=False)
    runtime.wait_status(cid, "stopped")
    time.sleep(0.2)
    assert "RAN" not in res.read_stdout()
    runtime.delete(cid, force=True)


def test_failing_poststart_hook(runtime, bundle, workdir):
    """runc 1.1 runs poststart at `create`, and a failing one fails `create`
    (runc #1710).  The contract (runtime-spec 1.0.2): a failing poststart
    hook is a warning; `start` succeeds, the container keeps running and
    the next poststart hook still runs."""
    marker = workdir / "second-poststart"
    b = bundle("echo ready; exec sleep 30", rootfs="shared", config={"hooks": {"poststart": [
        {"path": "/bin/sh", "args": ["sh", "-c", "exit 1"]},
        {"path": "/bin/sh", "args": ["sh", "-c", f"touch {marker}"]}]}})
    cid = runtime.new_id("poststart")
    if runtime.is_runc:
        res = runtime.create(cid, b, check=False)
        assert res.returncode != 0 and "hook" in res.stderr, res
        assert runtime.try_state(cid) is None
        return
    with runtime.container(b, cid, start=False) as c:
        res = c.start(check=False)
        assert res.returncode == 0, res
        wait_ready(c)
        assert c.status == "running"
        assert marker.exists()


def test_failing_poststop_hook_is_a_warning(runtime, bundle, workdir):
    """`delete` succeeds and the container is gone.  runtime-spec: the
    remaining poststop hooks still run (runc 1.1 stops at the failing one:
    not required against runc)."""
    marker = workdir / "second-poststop"
    b = bundle(["true"], rootfs="shared", config={"hooks": {"poststop": [
        {"path": "/bin/sh", "args": ["sh", "-c", "exit 1"]},
        {"path": "/bin/sh", "args": ["sh", "-c", f"touch {marker}"]}]}})
    with runtime.container(b) as c:
        c.wait_status("stopped")
        res = c.delete(check=False)
        assert res.returncode == 0, res
        assert runtime.try_state(c.id) is None
    if not runtime.is_runc:
        assert marker.exists(), "the poststop hook after the failing one did not run"
