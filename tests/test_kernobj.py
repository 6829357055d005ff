"""/proc and /sys belong to the sandbox (sentry/kernobj.py, sentry/synth.py),
in real containers, in both file-access modes.

A container that asks for everything (every capability, no masked or
read-only paths, /sys read-write, every device, the host's /proc bound in)
cannot write a host-wide kernel knob under any spelling, cannot read host
secrets, and can still write what Linux keeps per namespace (its own
net.ipv4.ip_forward, its host name).  With --memory/--cpus limits, `free`,
`nproc` and friends show those limits.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Iterator

import pytest

from helpers import run_ok
from test_sandbox import ALL_CAPS

pytestmark = pytest.mark.runsc_py_only

MODES = ["directfs", "gofer"]
PROBE_C = Path(__file__).parent / "knobprobe.c"
CORE = Path("/proc/sys/kernel/core_pattern")


@pytest.fixture(scope="module")
def knobprobe() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="rsp-knob-", dir="/tmp"))
    subprocess.run(["gcc", "-static", "-O2", "-o", str(d / "knobprobe"), str(PROBE_C)],
                   check=True, capture_output=True)
    yield d / "knobprobe"
    shutil.rmtree(d, ignore_errors=True)


def _privileged(spec: dict) -> None:
    """docker run --privileged, and the host's /proc bound in."""
    spec["process"]["capabilities"] = ALL_CAPS
    spec["process"]["noNewPrivileges"] = False
    lx = spec["linux"]
    lx["maskedPaths"] = []
    lx["readonlyPaths"] = []
    lx["resources"]["devices"] = [{"allow": True, "access": "rwm"}]
    for m in spec["mounts"]:
        if m["destination"] in ("/sys", "/sys/fs/cgroup"):
            m["options"] = [o for o in m.get("options", []) if o != "ro"]
    spec["mounts"].append({"destination": "/hostproc", "type": "bind", "source": "/proc",
                           "options": ["rbind"]})
    spec["mounts"].append({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"})


@pytest.mark.parametrize("mode", MODES)
def test_privileged_cannot_write_host_knobs_under_any_spelling(runtime, bundle, knobprobe, mode):
    before = CORE.read_text()
    b = bundle(["/knobprobe", "kernel/core_pattern"], files={"knobprobe": knobprobe.read_bytes()},
               edit=_privileged)
    os.chmod(b.rootfs / "knobprobe", 0o755)
    out = run_ok(runtime, b, global_args=[f"--file-access={mode}"])
    assert CORE.read_text() == before
    got = dict(line.split(" ", 1) for line in out.splitlines())
    assert got.pop("read") == "OK", out  # reading a sysctl is fine
    # Every write spelling: refused as if read-only (or never reaching it).
    reached = {k: v for k, v in got.items() if v == "OK"}
    assert not reached, out
    for name in ("direct", "self-fd", "thread-self-fd", "dev-fd", "o-path-reopen", "symlink",
                 "openat-dirfd", "openat2-beneath", "openat2-plain", "cwd-relative", "self-root"):
        assert got[name] == "EROFS", (name, out)
    assert got["host-proc-bind"] in ("EACCES", "EROFS"), out
    assert got["host-proc-environ"] == "EACCES", out
    assert got["timer_list"] == "EACCES", out
    assert got["sched_debug"] in ("EACCES", "ENOENT"), out
    assert got["sys-firmware"] in ("EACCES", "ENOENT"), out
    assert got["sys-open-write"] in ("EROFS", "ENOENT"), out


@pytest.mark.parametrize("mode", MODES)
def test_privileged_can_write_its_own_namespaced_knobs(runtime, bundle, mode):
    script = ("echo 1 > /proc/sys/net/ipv4/ip_forward && cat /proc/sys/net/ipv4/ip_forward; "
              "echo knob-host > /proc/sys/kernel/hostname && hostname; "
              "sysctl -w kernel.msgmax=16384 >/dev/null && cat /proc/sys/kernel/msgmax")
    b = bundle(script, edit=_privileged)
    out = run_ok(runtime, b, global_args=[f"--file-access={mode}"])
    assert out.split() == ["1", "knob-host", "16384"], out


# Host devices the host's root can open here, each a host secret or host
# state: the kernel log, the console's screen, the hypervisor interface.
HOST_DEVICES = [("kmsg", 1, 11), ("vcs", 7, 0), ("kvm", 10, 232)]


def test_no_device_outside_the_table_even_when_the_spec_allows_all(runtime, bundle):
    """Docker --privileged lists the host's devices: the nodes exist, and
    the device cgroup and the sentry refuse opening them."""
    present = [(n, ma, mi) for n, ma, mi in HOST_DEVICES if os.path.exists(f"/dev/{n}")]
    if not present:
        pytest.skip("none of /dev/kmsg, /dev/vcs, /dev/kvm on this host")
    script = "".join(f"(exec 3</dev/{n}) 2>/dev/null && echo {n}-open || echo {n}-refused; "
                     for n, _, _ in present) + "echo x > /dev/null && echo null-ok"

    def edit(spec: dict) -> None:
        _privileged(spec)
        spec["linux"]["devices"] = [{"path": f"/dev/{n}", "type": "c", "major": ma, "minor": mi,
                                     "fileMode": 0o666} for n, ma, mi in present]
    b = bundle(script, edit=edit)
    out = run_ok(runtime, b)
    assert out.split() == [f"{n}-refused" for n, _, _ in present] + ["null-ok"], out


@pytest.mark.parametrize("mode", MODES)
def test_free_and_nproc_show_the_limits(runtime, bundle, mode):
    script = ("free -m | awk '/Mem:/{print $2}'; nproc; cat /sys/devices/system/cpu/online; "
              "grep -c ^processor /proc/cpuinfo; grep -c '^cpu[0-9]' /proc/stat; "
              "awk '/MemTotal/{print $2}' /proc/meminfo; cut -d. -f1 /proc/uptime; "
              "awk '/SwapTotal/{print $2}' /proc/meminfo")
    b = bundle(script, config={"linux": {"resources": {
        "memory": {"limit": 300 * 1024 * 1024, "swap": 300 * 1024 * 1024},
        "cpu": {"quota": 100000, "period": 100000}}}})
    out = run_ok(runtime, b, global_args=[f"--file-access={mode}"]).split()
    assert out[:5] == ["300", "1", "0", "1", "1"], out
    assert out[5] == str(300 * 1024), out
    assert int(out[6]) < 60, out  # the container's age, not the host's uptime
    assert out[7] == "0", out   # no swap beyond the memory limit


def test_sysinfo_and_affinity_agree_with_the_files(runtime, bundle):
    """python's view: os.sched_getaffinity and sysinfo via /proc agree."""
    script = ("nproc; awk '/MemTotal/{print $2}' /proc/meminfo; "
              "cat /proc/uptime | cut -d' ' -f1 | cut -d. -f1")
    b = bundle(script, config={"linux": {"resources": {
        "memory": {"limit": 200 * 1024 * 1024}, "cpu": {"cpus": "0"}}}})
    out = run_ok(runtime, b).split()
    assert out[0] == "1" and out[1] == str(200 * 1024), out


def test_no_limits_shows_the_host(runtime, bundle):
    out = run_ok(runtime, bundle("nproc; grep -c ^processor /proc/cpuinfo", rootfs="shared")).split()
    n = len(os.sched_getaffinity(0))
    assert out == [str(n), str(n)], out


@pytest.mark.parametrize("mode", MODES)
def test_privileged_cannot_reach_the_host_through_its_proc(runtime, bundle, mode):
    """The host's /proc bound in, every capability: the root and cwd of a
    host process are host directories.  A chdir there (which the kernel
    runs) must not make relative paths resolve on the host, and no other
    spelling reaches it either."""
    host = subprocess.Popen(["sleep", "60"], cwd="/etc")
    try:
        p = host.pid
        script = (f"cd /hostproc/{p}/root 2>/dev/null && cat etc/hostname; "
                  f"cd /hostproc/{p}/cwd 2>/dev/null && cat hostname; "
                  f"cat /hostproc/{p}/root/etc/hostname; ls /hostproc/{p}/root/ 2>/dev/null | head -3; "
                  f"cat /hostproc/{p}/environ; "
                  "echo end")
        b = bundle(script, edit=_privileged)
        res = runtime.run_container(b, global_args=[f"--file-access={mode}"])
        host_name = Path("/etc/hostname").read_text().strip()
        assert host_name not in res.stdout.split(), res
        assert res.stdout.split() == ["end"], res
    finally:
        host.kill()
        host.wait()
