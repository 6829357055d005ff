"""Real containers under the sentry (runsc-py run).

- A busybox script doing file and /proc work: the output must equal runc's,
  line for line.
- A static probe (tests/sentry/probe.c) making refused calls: each answers
  the errno Linux gives an unprivileged process, whatever the capabilities.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from runsc_py.spec import CAPABILITIES

SCRIPT = r"""
cd /tmp
mkdir -p a/b/c && echo mkdir-ok
touch a/f && echo touch-ok
echo hello > a/f
mv a/f a/g && echo mv-ok
ln a/g a/hard && echo ln-ok
ln -s g a/soft && echo ln-s-ok
ln -s /etc/passwd a/abs && echo ln-abs-ok
readlink a/soft
cat a/soft
head -1 a/abs
chmod 640 a/g && stat -c '%a %h %s %F' a/g
stat -c '%F' a/soft
rm a/hard && echo rm-ok
rmdir a/b/c && echo rmdir-ok
rmdir a 2>/dev/null || echo rmdir-nonempty
mkfifo a/p && stat -c '%F' a/p
touch -d '2001-02-03 04:05:06' a/g && stat -c '%y' a/g
ls a
grep '^Name:' /proc/self/status
grep -c '^Pid:' /proc/self/status
readlink /proc/self/exe
ls -l /proc/self/fd/ 2>/dev/null | awk 'NR>1 && $9 == 1 {print $1, $9, $10, $11}' | sed 's/:\[[0-9]*\]//' | sort
cat /proc/self/fd/0 </etc/hostname >/dev/null && echo fd0-ok
cd /proc && grep '^Name:' self/status
cd /tmp && rm -r a && echo cleanup-ok
ls /tmp
"""


def test_busybox_file_script_matches_runc(runtime, bundle) -> None:  # type: ignore[no-untyped-def]
    b = bundle(SCRIPT, config={"root": {"readonly": False}})
    r = runtime.run_container(b)
    assert r.returncode == 0, str(r)
    out = r.stdout.splitlines()
    expected = [
        "mkdir-ok", "touch-ok", "mv-ok", "ln-ok", "ln-s-ok", "ln-abs-ok", "g", "hello",
        "root:x:0:0:root:/root:/bin/sh", "640 2 6 regular file", "symbolic link", "rm-ok",
        "rmdir-ok", "rmdir-nonempty", "fifo", "2001-02-03 04:05:06.000000000 +0000",
        "abs", "b", "g", "p", "soft", "Name:\tgrep", "1", "/bin/busybox",
        "l-wx------ 1 -> pipe",
        "fd0-ok", "Name:\tgrep", "cleanup-ok",
    ]
    # Checked against runc (RUNSC_PY_TEST_RUNTIME=/usr/sbin/runc).
    assert out == expected, str(r)



AFFINITY_SCRIPT = r"""
mask() { m=$(taskset -p $1); echo "${m##*: }"; }
before=$(mask $$)
i=0; odd=0
while [ $i -lt 100 ]; do
    read x </etc/hostname
    # a child forked right after the open: it must not inherit a pin
    child=$(sh -c 'm=$(taskset -p $$); echo "${m##*: }"')
    [ "$child" = "$before" ] || odd=$((odd+1))
    i=$((i+1))
done
echo "$before $(mask $$) $odd"
"""


@pytest.mark.parametrize("cpus", [None, "1"], ids=["all", "cpuset-1"])
def test_injected_fds_leave_the_cpu_affinity_alone(runtime, bundle, cpus) -> None:  # type: ignore[no-untyped-def]
    """Every `read x </etc/hostname` is an open whose fd the sentry injects
    with ADDFD while it pins the caller to its own CPU (sentry/platform/seccomp_notify.py):
    the caller's mask afterwards is the one it had, with or without a cpuset,
    and a child forked right after each open never inherits the pin."""
    ncpu = len(os.sched_getaffinity(0))
    if cpus and ncpu < 2:
        pytest.skip("one CPU: no cpuset narrower than the machine")
    config = {"linux": {"resources": {"cpu": {"cpus": cpus}}}} if cpus else None
    b = bundle(AFFINITY_SCRIPT, config=config)
    r = runtime.run_container(b)
    assert r.returncode == 0, str(r)
    want = "2" if cpus else f"{(1 << ncpu) - 1:x}"
    assert r.stdout.split() == [want, want, "0"], str(r)


# --- refused argument modes answer the errno Linux gives an unprivileged process ---

PROBE_C = Path(__file__).parent / "sentry" / "probe.c"

# label -> (syscall number, arguments, errno or 0 for success).  The probe runs
# each as a raw syscall ("buf" is a pointer to a zeroed buffer).  Up to the
# personality lines these answered ENOSYS (or EPERM for personality) before
# the filter gave refused modes Linux's errnos.
REFUSALS = {
    "ioctl-unknown": (16, [1, 0x1234, "buf"], errno.ENOTTY),
    "ioctl-tiocsti": (16, [0, 0x5412, "buf"], errno.EPERM),
    "ioctl-tiocsti-high": (16, [0, 0x100005412, "buf"], errno.EPERM),
    "ioctl-siocsifflags": (16, [1, 0x8914, "buf"], errno.EPERM),
    "ioctl-fifreeze": (16, [1, 0xC0045877, "buf"], errno.EPERM),
    "socket-bluetooth": (41, [31, 1, 0], errno.EAFNOSUPPORT),
    "socket-packet": (41, [17, 3, 0x300], errno.EPERM),
    "socket-inet-packet": (41, [2, 10, 0x300], errno.EPERM),
    "socket-inet-rdm": (41, [2, 4, 0], errno.ESOCKTNOSUPPORT),
    "socket-inet-type12": (41, [2, 12, 0], errno.EINVAL),
    "socket-netlink-audit": (41, [16, 3, 9], errno.EPROTONOSUPPORT),
    "socket-netlink-stream": (41, [16, 1, 0], errno.ESOCKTNOSUPPORT),
    "socket-unix-raw": (41, [1, 3, 0], 0),
    "socketpair-inet": (53, [2, 1, 0, "buf"], errno.EOPNOTSUPP),
    "socketpair-bluetooth": (53, [31, 1, 0, "buf"], errno.EAFNOSUPPORT),
    "prctl-set-mm": (157, [35, 1, 0x1000, 0, 0], errno.EPERM),
    "personality-query": (135, [0xFFFFFFFF], 0),
    # unchanged, for the whole picture
    "socket-inet-raw": (41, [2, 3, 1], errno.EPERM),
    "clone-newuser": (56, [0x10000011, 0, 0, 0, 0], errno.EPERM),
    "unshare-newuser": (272, [0x10000000], errno.EPERM),
    "unshare-newtime": (272, [0x80], errno.EPERM),
    # allowed as Linux allows them (these answered EPERM / ENOTTY before)
    "unshare-files-fs-sysvsem": (272, [0x400 | 0x200 | 0x40000], 0),
    "unshare-nothing": (272, [0], 0),
    "ioctl-tiocsctty-steal": (16, [0, 0x540E, 1], errno.EPERM),
    "setns": (308, [0, 0], errno.EPERM),
}


def _host_caps() -> list[str]:
    """Every capability this host's root can grant (its bounding set)."""
    bnd = int(next(ln for ln in open("/proc/self/status") if ln.startswith("CapBnd:")).split()[1], 16)
    return [c for i, c in enumerate(CAPABILITIES) if bnd & (1 << i)]


@pytest.fixture(scope="module")
def probe_bin():  # type: ignore[no-untyped-def]
    if shutil.which("gcc") is None:
        pytest.skip("gcc not installed")
    d = Path(tempfile.mkdtemp(prefix="sentry-e2e-probe-", dir="/tmp"))
    try:
        subprocess.run(["gcc", "-static", "-O2", "-o", str(d / "probe"), str(PROBE_C)], check=True)
        yield (d / "probe").read_bytes()
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _run_probe(runtime, bundle, probe_bin, cases, *, all_caps, global_args=()):  # type: ignore[no-untyped-def]
    args = ["/probe"] + [",".join(["sys=" + label, str(nr), *(str(a) for a in argv)])
                         for label, (nr, argv, _) in cases.items()]
    config = {}
    if all_caps:
        caps = _host_caps()
        config = {"process": {"capabilities": {k: caps for k in (
            "bounding", "effective", "permitted", "inheritable")}}}
    b = bundle(args, config=config)
    b.write_file("probe", probe_bin, 0o755)
    r = runtime.run_container(b, global_args=list(global_args))
    assert r.returncode == 0, str(r)
    got = {}
    for line in r.stdout.splitlines():
        label, ret, err = line.split()
        got[label] = int(err) if int(ret) < 0 else 0
    return got


@pytest.mark.runsc_py_only
@pytest.mark.parametrize("all_caps", [False, True], ids=["default-caps", "all-caps"])
def test_refused_modes_get_linux_errnos(runtime, bundle, probe_bin, all_caps) -> None:  # type: ignore[no-untyped-def]
    # The same answers with every capability: the filter answers, not the kernel.
    got = _run_probe(runtime, bundle, probe_bin, REFUSALS, all_caps=all_caps)
    want = {label: err for label, (_, _, err) in REFUSALS.items()}
    assert {k: errno.errorcode.get(v, v) for k, v in got.items()} == \
        {k: errno.errorcode.get(v, v) for k, v in want.items()}


@pytest.mark.runsc_py_only
def test_net_raw_allows_raw_and_packet_sockets(runtime, bundle, probe_bin) -> None:  # type: ignore[no-untyped-def]
    cases = {k: REFUSALS[k][:2] + (0,) for k in ("socket-packet", "socket-inet-packet", "socket-inet-raw")}
    cases["socket-inet6-raw"] = (41, [10, 3, 58], 0)
    cases["socket-bluetooth"] = REFUSALS["socket-bluetooth"]
    got = _run_probe(runtime, bundle, probe_bin, cases, all_caps=True, global_args=["--net-raw"])
    assert got == {label: err for label, (_, _, err) in cases.items()}
