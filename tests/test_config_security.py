"""config.json: the process (args, env, cwd, user, umask, capabilities,
rlimits, noNewPrivileges, oomScoreAdj, terminal), user namespaces, the
devices cgroup and path-escape safety.  Each test runs a real container on
the busybox rootfs and asserts what the workload sees from INSIDE; the
expectations are runc's (validate with RUNSC_PY_TEST_RUNTIME=/usr/sbin/runc).

runsc-py's state pid is the SANDBOX process (parent of the container's
init): the workload is inspected from inside, or found with `ps`.
"""

from __future__ import annotations

import contextlib
import os
import re
import uuid
from pathlib import Path

import pytest

from helpers import default_spec, kv, read_until, run_ok, wait_ready, workload_pid

PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

CAP = {"CAP_CHOWN": 0, "CAP_DAC_OVERRIDE": 1, "CAP_FOWNER": 3, "CAP_KILL": 5,
       "CAP_SETGID": 6, "CAP_SETUID": 7, "CAP_NET_BIND_SERVICE": 10, "CAP_NET_RAW": 13,
       "CAP_SYS_CHROOT": 18, "CAP_SYS_ADMIN": 21, "CAP_MKNOD": 27, "CAP_AUDIT_WRITE": 29}


def mask(*names: str) -> int:
    m = 0
    for n in names:
        m |= 1 << CAP[n]
    return m








def status_fields(out: str) -> dict[str, str]:
    """`Name:\\tvalue` lines (from /proc/self/status)."""
    d = {}
    for ln in out.splitlines():
        m = re.match(r"^(\w+):\s*(.*)$", ln)
        if m:
            d[m.group(1)] = m.group(2).strip()
    return d




# -- args, env, cwd ----------------------------------------------------------------

def test_args_passed_verbatim(runtime, bundle):
    """No shell in between: spaces, $, globs and empty strings arrive as is."""
    b = bundle(["/usr/bin/printf", "[%s]", "a b", "$HOME", "*", "", "tab\there", "x\ny"],
               rootfs="shared")
    assert run_ok(runtime, b) == "[a b][$HOME][*][][tab\there][x\ny]"


def test_args_path_lookup(runtime, bundle):
    """args[0] without a slash is looked up in the spec's PATH."""
    b = bundle(["env"], rootfs="shared")
    b.spec["process"]["env"] = ["PATH=/usr/bin:/bin", "X=1"]
    b.write_config()
    assert "X=1" in run_ok(runtime, b).splitlines()


def test_env(runtime, bundle):
    b = bundle(["env"], rootfs="shared")
    b.spec["process"]["env"] = [PATH_ENV, "FOO=bar baz", "EMPTY=", "EQ=a=b", "TERM=xterm"]
    b.write_config()
    env = run_ok(runtime, b).splitlines()
    for e in ("FOO=bar baz", "EMPTY=", "EQ=a=b", PATH_ENV, "TERM=xterm"):
        assert e in env, env
    # runc adds HOME from the user's /etc/passwd entry when the spec has none
    assert "HOME=/root" in env, env
    assert not any(e.startswith("RUNSC") or e.startswith("PYTEST") for e in env), env


def test_env_home_of_user_and_explicit(runtime, bundle):
    b = bundle("echo home=$HOME", rootfs="shared",
               config={"process": {"user": {"uid": 1000, "gid": 1000}}})
    assert kv(run_ok(runtime, b))["home"] == "/home/user"
    b2 = bundle("echo home=$HOME", rootfs="shared")
    b2.spec["process"]["env"].append("HOME=/custom")
    b2.write_config()
    assert kv(run_ok(runtime, b2))["home"] == "/custom"


def test_cwd(runtime, bundle):
    b = bundle("pwd; echo $PWD; ls", rootfs="shared", config={"process": {"cwd": "/etc"}})
    out = run_ok(runtime, b).splitlines()
    assert out[0] == "/etc" and out[1] == "/etc"
    assert "passwd" in out


def test_cwd_created_when_missing(runtime, bundle):
    """runc creates a missing cwd (in a writable root)."""
    b = bundle("pwd", config={"process": {"cwd": "/new/work/dir"}, "root": {"readonly": False}})
    assert run_ok(runtime, b) == "/new/work/dir\n"
    assert (b.rootfs / "new/work/dir").is_dir()


# -- user ----------------------------------------------------------------------------

def test_user_uid_gid_additional_gids(runtime, bundle):
    b = bundle("echo uid=$(id -u) gid=$(id -g); echo groups=$(id -G); "
               "grep -E '^(Uid|Gid|Groups):' /proc/self/status", rootfs="shared",
               config={"process": {"user": {"uid": 1000, "gid": 1000,
                                            "additionalGids": [5, 65534]}}})
    out = run_ok(runtime, b)
    st = status_fields(out)
    assert st["Uid"].split() == ["1000"] * 4, out
    assert st["Gid"].split() == ["1000"] * 4, out
    assert sorted(map(int, st["Groups"].split())) == [5, 65534], out
    assert "uid=1000 gid=1000" in out


def test_user_without_additional_gids_has_no_groups(runtime, bundle):
    b = bundle("grep -E '^(Uid|Gid|Groups):' /proc/self/status", rootfs="shared",
               config={"process": {"user": {"uid": 1000, "gid": 1000}}})
    st = status_fields(run_ok(runtime, b))
    assert st["Uid"].split()[0] == "1000"
    assert st["Groups"] == "", st


def test_user_groups_not_from_etc_group(runtime, bundle):
    """With a numeric user (all the spec has) the supplementary groups are
    exactly additionalGids: runc adds none from /etc/group memberships."""
    group = "root:x:0:\ntty:x:5:user\nuser:x:1000:\nextra:x:4242:other,user\nnogroup:x:65534:\n"
    b = bundle("grep Groups: /proc/self/status", files={"etc/group": group},
               config={"process": {"user": {"uid": 1000, "gid": 1000,
                                            "additionalGids": [65534]}}})
    st = status_fields(run_ok(runtime, b))
    assert st["Groups"].split() == ["65534"], st


def test_user_uid_not_in_passwd(runtime, bundle):
    """A numeric uid with no passwd entry works (HOME falls back to /)."""
    b = bundle("echo uid=$(id -u) home=$HOME", rootfs="shared",
               config={"process": {"user": {"uid": 4321, "gid": 4321}}})
    assert run_ok(runtime, b).split() == ["uid=4321", "home=/"]


@pytest.mark.parametrize("umask,file_mode,dir_mode", [(0o022, "644", "755"),
                                                      (0o077, "600", "700"),
                                                      (0o027, "640", "750")])
def test_umask(runtime, bundle, umask, file_mode, dir_mode):
    b = bundle("echo umask=$(umask); touch /dev/shm/f; mkdir /dev/shm/d; "
               "stat -c 'f=%a' /dev/shm/f; stat -c 'd=%a' /dev/shm/d", rootfs="shared",
               config={"process": {"user": {"uid": 0, "gid": 0, "umask": umask}}})
    out = kv(run_ok(runtime, b))
    assert out == {"umask": f"{umask:04o}", "f": file_mode, "d": dir_mode}


def test_umask_default(runtime, bundle):
    """Without user.umask runc uses 0022."""
    b = bundle("umask", rootfs="shared")
    assert run_ok(runtime, b) == "0022\n"


# -- capabilities -----------------------------------------------------------------------

CAPS_SCRIPT = "grep -E '^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs):' /proc/self/status"


def _caps(out: str) -> dict[str, int]:
    return {k: int(v, 16) for k, v in status_fields(out).items() if k.startswith("Cap")}


def test_capabilities_default_spec(runtime, bundle):
    """`runc spec`'s capabilities (no inheritable set): an ambient capability
    can only be raised if it is also inheritable, so CapAmb stays empty
    (runc only warns)."""
    b = bundle(CAPS_SCRIPT, rootfs="shared")
    caps = _caps(run_ok(runtime, b))
    want = mask("CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE")
    assert caps == {"CapInh": 0, "CapPrm": want, "CapEff": want, "CapBnd": want,
                    "CapAmb": 0}, {k: hex(v) for k, v in caps.items()}


SETS = {
    "bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT"],
    "permitted": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
    "effective": ["CAP_CHOWN", "CAP_KILL"],
    "inheritable": ["CAP_KILL", "CAP_NET_BIND_SERVICE"],
    "ambient": ["CAP_KILL"],
}


def test_capabilities_five_sets_non_root(runtime, bundle):
    """uid 1000 and no file capabilities: after execve the kernel gives
    permitted = effective = ambient; inheritable and bounding are kept."""
    b = bundle(CAPS_SCRIPT, rootfs="shared",
               config={"process": {"capabilities": SETS, "user": {"uid": 1000, "gid": 1000}}})
    caps = _caps(run_ok(runtime, b))
    assert {k: hex(v) for k, v in caps.items()} == {
        "CapInh": hex(mask(*SETS["inheritable"])),
        "CapPrm": hex(mask(*SETS["ambient"])),
        "CapEff": hex(mask(*SETS["ambient"])),
        "CapBnd": hex(mask(*SETS["bounding"])),
        "CapAmb": hex(mask(*SETS["ambient"])),
    }


@pytest.mark.parametrize("nnp", [True, False])
def test_capabilities_five_sets_root(runtime, bundle, nnp):
    """uid 0: execve gives permitted = effective = bounding | inheritable |
    ambient (root's implicit file capabilities); with noNewPrivileges the
    kernel caps that by the permitted set before execve."""
    b = bundle(CAPS_SCRIPT, rootfs="shared",
               config={"process": {"capabilities": SETS, "noNewPrivileges": nnp}})
    caps = _caps(run_ok(runtime, b))
    full = mask(*SETS["bounding"], *SETS["inheritable"], *SETS["ambient"])
    if nnp:
        full &= mask(*SETS["permitted"])
    assert {k: hex(v) for k, v in caps.items()} == {
        "CapInh": hex(mask(*SETS["inheritable"])),
        "CapPrm": hex(full),
        "CapEff": hex(full),
        "CapBnd": hex(mask(*SETS["bounding"])),
        "CapAmb": hex(mask(*SETS["ambient"])),
    }


@pytest.mark.parametrize("with_chown", [True, False])
def test_capability_enforced(runtime, bundle, with_chown):
    caps = ["CAP_KILL"] + (["CAP_CHOWN"] if with_chown else [])
    b = bundle("touch /dev/shm/f && chown 1000:1000 /dev/shm/f; echo rc=$?; "
               "stat -c owner=%u /dev/shm/f", rootfs="shared",
               config={"process": {"capabilities": {k: caps for k in (
                   "bounding", "effective", "permitted")}}})
    res = runtime.run_container(b)
    assert res.returncode == 0, res
    out = kv(res.stdout)
    if with_chown:
        assert out == {"rc": "0", "owner": "1000"}, res
    else:
        assert out["rc"] != "0" and out["owner"] == "0", res
        assert "Operation not permitted" in res.stderr, res


def test_no_capabilities(runtime, bundle):
    b = bundle(CAPS_SCRIPT, rootfs="shared")
    b.spec["process"]["capabilities"] = {}
    b.write_config()
    caps = _caps(run_ok(runtime, b))
    assert caps == {"CapInh": 0, "CapPrm": 0, "CapEff": 0, "CapBnd": 0, "CapAmb": 0}, caps


# -- rlimits, noNewPrivileges, oomScoreAdj ---------------------------------------------

def test_rlimits(runtime, bundle):
    b = bundle("echo soft=$(ulimit -n) hard=$(ulimit -Hn); cat /proc/self/limits",
               rootfs="shared",
               config={"process": {"rlimits": [
                   {"type": "RLIMIT_NOFILE", "soft": 512, "hard": 1000},
                   {"type": "RLIMIT_CORE", "soft": 0, "hard": 0},
                   {"type": "RLIMIT_NPROC", "soft": 300, "hard": 400},
                   {"type": "RLIMIT_MSGQUEUE", "soft": 4096, "hard": 8192}]}})
    out = run_ok(runtime, b)
    assert "soft=512 hard=1000" in out
    limits = {}
    for ln in out.splitlines():
        m = re.match(r"^(Max [a-z ]+?)\s{2,}(\S+)\s+(\S+)", ln)
        if m:
            limits[m.group(1)] = (m.group(2), m.group(3))
    assert limits["Max open files"] == ("512", "1000")
    assert limits["Max core file size"] == ("0", "0")
    assert limits["Max processes"] == ("300", "400")
    assert limits["Max msgqueue size"] == ("4096", "8192")


@pytest.mark.parametrize("nnp", [True, False])
def test_no_new_privileges(runtime, bundle, nnp):
    b = bundle("grep NoNewPrivs: /proc/self/status", rootfs="shared",
               config={"process": {"noNewPrivileges": nnp}})
    assert status_fields(run_ok(runtime, b))["NoNewPrivs"] == ("1" if nnp else "0")


@pytest.mark.parametrize("adj", [500, 1000, 0])
def test_oom_score_adj(runtime, bundle, adj):
    b = bundle("cat /proc/self/oom_score_adj", rootfs="shared",
               config={"process": {"oomScoreAdj": adj}})
    assert run_ok(runtime, b) == f"{adj}\n"


# -- terminal ----------------------------------------------------------------------------

def test_terminal(runtime, bundle, console_socket):
    b = bundle("echo tty=$(tty); [ -t 0 ] && [ -t 1 ] && [ -t 2 ] && echo all-ttys; "
               "stat -c 'console=%F %t' /dev/console; echo pts=$(ls /dev/pts | tr '\\n' ' '); "
               "echo term=$TERM; stty size; echo done", terminal=True, rootfs="shared")
    with runtime.container(b, start=False, console_socket=console_socket.path) as c:
        master = console_socket.receive()
        try:
            c.start()
            raw = read_until(master, b"done")
        finally:
            os.close(master)
        c.wait_status("stopped")
    out = raw.decode(errors="replace").replace("\r\n", "\n")
    d = kv(out)
    assert d["tty"] == "/dev/pts/0", out
    assert "all-ttys" in out
    assert d["console"] == "character special file 88", out  # a pts (major 136)
    assert d["pts"].split() == ["0", "ptmx"], out
    assert d["term"] == "xterm"
    assert c.stdout() == ""


# -- user namespace ----------------------------------------------------------------------

USERNS_MAP = [{"containerID": 0, "hostID": 100000, "size": 65536}]


@pytest.fixture
def userns_bundle(bundle, workdir):
    """A bundle for a user namespace mapping container 0 -> host 100000
    (65536 ids): rootfs chowned to 100000, work dirs traversable."""
    def make(args, **kw):
        b = bundle(args, **kw)
        for d in (workdir, workdir / "bundles", b.path):
            os.chmod(d, 0o755)
        for dirpath, dirnames, filenames in os.walk(b.rootfs):
            for n in [dirpath] + [os.path.join(dirpath, f) for f in dirnames + filenames]:
                st = os.lstat(n)
                os.lchown(n, st.st_uid + 100000, st.st_gid + 100000)

        def edit(s):
            s["linux"]["namespaces"].append({"type": "user"})
            s["linux"]["uidMappings"] = USERNS_MAP
            s["linux"]["gidMappings"] = USERNS_MAP
        b.edit(edit)
        return b
    return make


def test_user_namespace(runtime, userns_bundle):
    b = userns_bundle("echo uid=$(id -u); echo gid=$(id -g); "
                      "echo map=$(cat /proc/self/uid_map); echo gmap=$(cat /proc/self/gid_map); "
                      "echo owner=$(stat -c %u:%g /bin/busybox); "
                      "echo x > /dev/shm/f && echo owned=$(stat -c %u /dev/shm/f); "
                      "echo ready; exec sleep 30")
    with runtime.container(b) as c:
        out = kv(wait_ready(c))
        assert out["uid"] == "0" and out["gid"] == "0", out
        assert out["map"].split() == ["0", "100000", "65536"], out
        assert out["gmap"].split() == ["0", "100000", "65536"], out
        assert out["owner"] == "0:0", out   # host 100000 seen as 0
        assert out["owned"] == "0", out
        pid = workload_pid(runtime, c.id, "sleep 30")
        # from the host: the workload runs as 100000 in a user namespace
        assert Path(f"/proc/{pid}/uid_map").read_text().split() == ["0", "100000", "65536"]
        assert Path(f"/proc/{pid}/gid_map").read_text().split() == ["0", "100000", "65536"]
        uids = status_fields(Path(f"/proc/{pid}/status").read_text())["Uid"].split()
        assert uids == ["100000"] * 4, uids
        assert os.readlink(f"/proc/{pid}/ns/user") != os.readlink("/proc/self/ns/user")


def test_user_namespace_nonroot_in_container(runtime, userns_bundle):
    b = userns_bundle("id -u; stat -c %u /dev/shm; touch /dev/shm/x && stat -c %u /dev/shm/x; "
                      "echo ready; exec sleep 30",
                      config={"process": {"user": {"uid": 1000, "gid": 1000}}})
    with runtime.container(b) as c:
        out = wait_ready(c).split()
        assert out[0] == "1000" and out[2] == "1000", out
        pid = workload_pid(runtime, c.id, "sleep 30")
        uids = status_fields(Path(f"/proc/{pid}/status").read_text())["Uid"].split()
        assert uids == ["101000"] * 4, uids


# -- devices cgroup ---------------------------------------------------------------------

def test_devices_cgroup_denies_unlisted_device(runtime, bundle):
    """mknod is allowed (runc allows "m" on every device) but opening a
    device the devices cgroup does not allow fails with EPERM, even for root
    with CAP_MKNOD/CAP_DAC_OVERRIDE."""
    caps = ["CAP_MKNOD", "CAP_DAC_OVERRIDE", "CAP_CHOWN", "CAP_FOWNER"]
    b = bundle("mknod /dev/blk b 7 0 && echo mknod-b-ok; mknod /dev/mem2 c 1 1 && echo mknod-c-ok; "
               "mknod /dev/null2 c 1 3 && echo mknod-null-ok; "
               "head -c 1 /dev/blk; echo blk=$?; head -c 1 /dev/mem2; echo mem=$?; "
               "echo x > /dev/null2; echo null=$?", rootfs="shared",
               config={"process": {"capabilities": {k: caps for k in (
                   "bounding", "effective", "permitted")}}})
    res = runtime.run_container(b)
    assert res.returncode == 0, res
    out = kv(res.stdout)
    assert "mknod-c-ok" in res.stdout, res
    if runtime.is_runc:
        assert "mknod-b-ok" in res.stdout, res
    else:
        # runsc-py's sandbox refuses mknod of block devices outright (EPERM),
        # whatever the capabilities: stricter than runc's devices cgroup.
        assert "mknod-b-ok" not in res.stdout, res
    assert out["blk"] != "0" and out["mem"] != "0", res
    assert out["null"] == "0", res
    assert res.stderr.count("Operation not permitted") >= 2, res


def test_devices_cgroup_allow_rule(runtime, bundle):
    """A linux.resources.devices allow rule for c 1:7 (full) after the
    deny-all: a mknod'ed copy opens; c 1:1 stays denied."""
    caps = ["CAP_MKNOD"]
    b = bundle("mknod /dev/full2 c 1 7; mknod /dev/mem2 c 1 1; "
               "echo x > /dev/full2; echo full=$?; head -c 1 /dev/mem2; echo mem=$?",
               rootfs="shared",
               config={"process": {"capabilities": {k: caps for k in (
                   "bounding", "effective", "permitted")}},
                       "linux": {"resources": {"devices": [
                           {"allow": False, "access": "rwm"},
                           {"allow": True, "type": "c", "major": 1, "minor": 7,
                            "access": "rw"}]}}})
    res = runtime.run_container(b)
    out = kv(res.stdout)
    assert out["full"] != "0" and "No space left on device" in res.stderr, res
    assert out["mem"] != "0" and "Operation not permitted" in res.stderr, res


# -- path escapes -----------------------------------------------------------------------

@pytest.mark.parametrize("target", ["/etc", "../../../../../../../../etc"])
def test_symlink_mount_destination_stays_in_rootfs(runtime, bundle, target):
    """rootfs/evil -> /etc (or ../../..): a mount at /evil/NAME lands in the
    container's /etc, never in the host's /etc."""
    name = f"rsp-escape-{uuid.uuid4().hex[:8]}"
    host_path = Path("/etc") / name
    b = bundle(f"ls -d /etc/{name} && grep -c ' /etc/{name} ' /proc/self/mountinfo; "
               f"echo inside > /evil/{name}/f && cat /etc/{name}/f",
               config={"mounts": default_spec()["mounts"] + [
                   {"destination": f"/evil/{name}", "type": "tmpfs", "source": "tmpfs",
                    "options": ["size=1m"]}]})
    os.symlink(target, b.rootfs / "evil")
    try:
        res = runtime.run_container(b)
        assert not host_path.exists(), f"the mount destination escaped to the host's {host_path}"
        assert res.returncode == 0, res
        assert res.stdout.split() == [f"/etc/{name}", "1", "inside"], res
        assert (b.rootfs / "etc" / name).is_dir()
        assert not any(f" {host_path} " in ln
                       for ln in Path("/proc/self/mountinfo").read_text().splitlines())
    finally:
        if host_path.is_dir() and not host_path.is_symlink():
            with contextlib.suppress(OSError):
                os.rmdir(host_path)


def test_symlink_bind_file_destination_stays_in_rootfs(runtime, bundle, workdir):
    """A file bind mount onto rootfs/evil-file -> /etc/<name>: the empty file
    to mount on is created in the rootfs, not on the host."""
    name = f"rsp-escape-{uuid.uuid4().hex[:8]}.conf"
    host_path = Path("/etc") / name
    src = workdir / "src.conf"
    src.write_text("bound\n")
    b = bundle(f"cat /evil-file; cat /etc/{name}",
               config={"mounts": default_spec()["mounts"] + [
                   {"destination": "/evil-file", "type": "bind", "source": str(src),
                    "options": ["bind", "ro"]}]})
    os.symlink(f"/etc/{name}", b.rootfs / "evil-file")
    try:
        res = runtime.run_container(b)
        assert not host_path.exists(), f"created {host_path} on the host"
        assert res.returncode == 0, res
        assert res.stdout == "bound\nbound\n", res
    finally:
        with contextlib.suppress(FileNotFoundError):
            if host_path.is_file() and host_path.stat().st_size == 0:
                host_path.unlink()


def test_dotdot_mount_destination_stays_in_rootfs(runtime, bundle):
    name = f"rsp-escape-{uuid.uuid4().hex[:8]}"
    b = bundle(f"grep -c ' /{name} ' /proc/self/mountinfo",
               config={"mounts": default_spec()["mounts"] + [
                   {"destination": f"/../../../../{name}", "type": "tmpfs",
                    "source": "tmpfs"}]})
    # where a naive join would land: ROOTFS/../../../.. (and /)
    escapes = [Path(os.path.normpath(f"{b.rootfs}/../../../../{name}")), Path(f"/{name}")]
    try:
        res = runtime.run_container(b)
        assert res.returncode == 0, res
        assert res.stdout.strip() == "1"
        assert (b.rootfs / name).is_dir()
        for e in escapes:
            assert not e.exists(), f"created {e} outside the rootfs"
    finally:
        for e in escapes:
            with contextlib.suppress(OSError):
                os.rmdir(e)
