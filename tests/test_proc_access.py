"""A non-root container user and another uid's /proc/PID: runsc-py == runc.

The container's init runs as root (`sleep`); a probe exec'd as uid 1000
(tests/sentry/procpid.c, static, compiled here) opens root's
/proc/1/{environ,mem,fd/} and its magic links fd/0, cwd, root and exe - and
the same under /proc/1/task/1 - through
every open form: open, openat from AT_FDCWD and from a dirfd of /proc/1,
openat2 with each RESOLVE_* combination from both, creat, the probe's own
/proc/self/fd/N, /proc/thread-self/fd/N and /dev/fd/N of that dirfd,
/proc/self/root/..., a symlink, a cwd of /proc/1, readlink.  It does the same
for its own /proc/self, /proc/<own pid> and /proc/thread-self, which Linux
lets it open.  One line per form with the errno name (or "ok" and what a
read gave), no pids: the lines under runsc-py, in both file-access modes,
must be runc's.

So the sandbox never lets uid 1000 reach another uid's environment, memory
or fds (the sentry acts with exactly the caller's capabilities on procfs:
without CAP_SYS_PTRACE), and never refuses the caller its own files.  The
positive controls are runc's own lines: every "other" line refused, and the
"self" lines succeed, so the probe can tell the two apart.

Run against runc (RUNSC_PY_TEST_RUNTIME=/usr/sbin/runc) it compares runc with
runc: a check of the probe and of this test.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from helpers import Runtime

HERE = Path(__file__).parent
TMPFS_TMP = {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["mode=1777"]}
FILES = ("environ", "mem", "mem-rw", "fd-dir", "fd-0", "cwd", "root", "exe")
LINKS = ("fd-0", "cwd", "root", "exe")      # magic links
OTHER = ("other", "other-task")             # root's init: /proc/1, /proc/1/task/1
OWN = ("self", "own-pid", "thread-self")    # the probe's own process


# Where runsc-py answers otherwise than runc today, by rule (each returns
# True for a (form, target, file, runc's result, runsc-py's result) it
# explains).  None lets uid 1000 reach another uid's file: that is asserted
# separately, whatever these say.  They are strict: a rule that no line
# needs any more fails the test, so that it is removed once fixed (three
# rules for sentry bugs on the caller's own magic links under openat2's
# RESOLVE_* flags went that way).
def _ok(r: str) -> bool:
    return r.startswith("ok")


def _scoped_errno(form: str, target: str, file: str, want: str, have: str) -> bool:
    """Both refuse, with another errno, in an openat2 with RESOLVE_* flags:
    the kernel tests the scope or link rule and the permission in one order,
    the sentry (which resolves, then walks procfs) in another."""
    return form.startswith(("openat2-", "cwd-openat2-")) and not form.endswith("-none") \
        and not _ok(want) and not _ok(have)


KNOWN_DIFFERENCES = (_scoped_errno,)
STRICT = (_scoped_errno,)


@pytest.fixture(scope="module")
def procpid(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/sentry/procpid.c, static."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc not installed")
    out = tmp_path_factory.mktemp("procpid") / "procpid"
    subprocess.run(["gcc", "-static", "-O2", "-o", str(out), str(HERE / "sentry" / "procpid.c")],
                   check=True)
    return out


def _probe_lines(rt: Runtime, bundle, procpid: Path, name: str,  # type: ignore[no-untyped-def]
                 global_args: list[str]) -> list[str]:
    """The probe's lines, exec'd as 1000:1000 in a container whose init is root."""
    b = bundle(["sleep", "600"], name=name, edit=lambda spec: spec["mounts"].append(dict(TMPFS_TMP)))
    shutil.copy(procpid, b.rootfs / "procpid")
    with rt.container(b, global_args=global_args) as c:
        r = c.exec("/procpid", "1", user="1000:1000", timeout=60)
        assert r.returncode == 0, str(r)
    lines = r.stdout.splitlines()
    assert lines and lines[0] == "uid 1000 euid 1000", lines[:3]
    return lines[1:]


def _results(lines: list[str]) -> dict[tuple[str, str, str], str]:
    """(form, target, file) -> result."""
    out = {}
    for ln in lines:
        form, target, file, result = ln.split(" ", 3)
        out[(form, target, file)] = result
    return out


@pytest.mark.parametrize("mode", ["directfs", "gofer"])
def test_other_uid_proc_pid_refused_as_under_runc(runtime: Runtime, bundle, test_ctx,  # type: ignore[no-untyped-def]
                                                  procpid: Path, mode: str) -> None:
    runc = Runtime(test_ctx, "/usr/sbin/runc", root=test_ctx.workdir / "runc-root", is_runc=True)
    ref = _probe_lines(runc, bundle, procpid, "procpid-runc", [])
    got = _probe_lines(runtime, bundle, procpid, f"procpid-{mode}",
                       [] if runtime.is_runc else [f"--file-access={mode}"])
    want, have = _results(ref), _results(got)

    # The positive controls, from runc: the probe reaches nothing of uid 0's
    # and its own files open, so an "ok" could be told from a refusal.
    assert not [k for k, v in want.items() if k[1].startswith("other") and v.startswith("ok")], \
        "runc let uid 1000 open root's /proc/1 files: the probe does not test what it says"
    for target in OWN:
        for file in ("environ", "fd-dir", "cwd", "root", "exe"):
            assert want[("open", target, file)] == "ok read", (target, file, want[("open", target, file)])
    for file in FILES:
        assert want[("open", "other", file)] == "EACCES", (file, want[("open", "other", file)])

    # Never another uid's file (whatever KNOWN_DIFFERENCES says), never
    # anything runc refuses but for the listed bugs on the caller's own files.
    assert list(want) == list(have), "the probe printed other lines under runsc-py"
    leaks = [k for k, v in have.items() if k[1] in OTHER and v.startswith("ok")]
    assert not leaks, "runsc-py let uid 1000 open root's /proc/1 files:\n" + "\n".join(
        f"  {' '.join(k)}: runsc-py {have[k]}, runc {want[k]}" for k in leaks)
    # The same answers, line for line, but for the known differences.
    used: set[object] = set()
    diffs = []
    for k in want:
        if want[k] == have[k]:
            continue
        rule = next((r for r in KNOWN_DIFFERENCES if r(*k, want[k], have[k])), None)
        if rule is None:
            diffs.append(f"  {' '.join(k)}: runc {want[k]}, runsc-py {have[k]}")
        used.add(rule)
    assert not diffs, "answers differ from runc's:\n" + "\n".join(diffs)
    if not runtime.is_runc:
        fixed = [r.__name__ for r in STRICT if r not in used]
        assert not fixed, f"known differences no longer seen (fixed? remove them): {fixed}"


@pytest.fixture(scope="module")
def procfirst(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/procfirst.c: static, without libc (no call before its own)."""
    out = tmp_path_factory.mktemp("procfirst") / "procfirst"
    subprocess.run(["gcc", "-static", "-nostdlib", "-O2", "-fno-builtin", "-fno-stack-protector",
                    "-o", str(out), str(HERE / "procfirst.c")], check=True)
    return out


def test_a_first_look_at_proc_itself_as_under_runc(runtime: Runtime, bundle, test_ctx,  # type: ignore[no-untyped-def]
                                                   procfirst: Path) -> None:
    """A stat or listing of /proc as the container's first look into it
    (python3 -c 'os.stat("/proc")'): the sentry checks a procfs root it
    enters as the container's own; one a path ends on was refused (EACCES)
    until a walk had entered it."""
    def lines(rt: Runtime, name: str, args: list[str]) -> list[str]:
        b = bundle(["/procfirst"], name=name)
        shutil.copy(procfirst, b.rootfs / "procfirst")
        res = rt.run_container(b, global_args=args)
        assert res.returncode == 0, res
        return res.stdout.splitlines()

    runc = Runtime(test_ctx, "/usr/sbin/runc", root=test_ctx.workdir / "runc-root", is_runc=True)
    want = lines(runc, "procfirst-runc", [])
    assert want == ["stat /proc: ok dir", "list /proc: ok entries"], want
    for mode in ([""] if runtime.is_runc else ["directfs", "gofer"]):
        assert lines(runtime, f"procfirst-{mode or 'runc2'}",
                     [f"--file-access={mode}"] if mode else []) == want, mode
