"""The platforms in real containers: --platform=auto falls back to ptrace where
seccomp user notification is unavailable, and the ptrace platform's own
guarantees seen from inside a container (the rest of the suite runs on it
with RUNSC_PY_TEST_PLATFORM=ptrace)."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import Runtime, run_ok, wait_until

pytestmark = pytest.mark.runsc_py_only

HERE = Path(__file__).parent

# A runtime started under a filter that refuses SECCOMP_FILTER_FLAG_NEW_LISTENER
# (EBUSY, as when another listener already exists in the chain: runsc-py
# inside another sandbox).  The filter is inherited by everything it starts.
_NO_LISTENER = """\
import os, sys, errno, seccomp
f = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
f.set_attr(seccomp.Attr.CTL_NNP, 0)
f.add_rule(seccomp.ERRNO(errno.EBUSY), "seccomp", seccomp.Arg(1, seccomp.MASKED_EQ, 8, 8))
f.load()
os.execv(sys.argv[1], sys.argv[1:])
"""


@pytest.fixture(scope="module")
def ptprobe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ptprobe") / "ptprobe"
    subprocess.run(["gcc", "-static", "-O2", "-pthread", "-o", str(out),
                    str(HERE / "sentry" / "ptprobe.c")], check=True)
    return out


def _no_listener_runtime(runtime: Runtime, workdir: Path) -> Runtime:
    wrapper = workdir / "no-listener"
    wrapper.write_text(f"#!/bin/sh\nexec {sys.executable} -c '{_NO_LISTENER}' {runtime.binary} \"$@\"\n")
    wrapper.chmod(0o755)
    return Runtime(runtime.ctx, str(wrapper), runtime.root, is_runc=False)


def test_auto_falls_back_to_ptrace_without_user_notification(runtime, bundle, workdir):
    rt = _no_listener_runtime(runtime, workdir)
    b = bundle("cat /etc/hostname; ls /bin/sh", rootfs="shared")
    log = workdir / "auto.log"
    with rt.container(b, global_args=["--platform=auto", "--log", str(log)]) as c:
        assert c.platform == "ptrace"
        c.wait_status("stopped")
        assert c.stdout().split() == ["runsc-py-test", "/bin/sh"], c.stdout()
    text = log.read_text()
    assert "platform auto: ptrace" in text and "EBUSY" in text, text
    # With nothing in the way, auto picks seccomp (this kernel has it all).
    with runtime.container(b, global_args=["--platform=auto"]) as c:
        assert c.platform == "seccomp"


def test_seccomp_asked_where_it_is_missing_fails_clearly(runtime, bundle, workdir):
    rt = _no_listener_runtime(runtime, workdir)
    b = bundle(["true"], rootfs="shared")
    res = rt.run_container(b, extra=(), global_args=["--platform=seccomp"])
    assert res.returncode != 0 and "seccomp" in res.stderr + res.stdout, res


def _with_ptprobe(bundle, ptprobe: Path, args: list[str], caps: list[str] = ()):  # type: ignore[no-untyped-def]
    config: dict = {"root": {"readonly": False}}
    if caps:
        config["process"] = {"capabilities": {k: list(caps) for k in
                                              ("bounding", "effective", "permitted")}}
    b = bundle(["/ptprobe", *args], config=config, files={"etc/hello": "hello-root\n"})
    shutil.copy(ptprobe, b.rootfs / "ptprobe")
    os.chmod(b.rootfs / "etc" / "hello", 0o644)
    return b


def test_a_process_lowering_its_credentials_gets_its_own_socket(runtime, bundle, ptprobe):
    # A forked child shares its parent's reserved socket until it calls
    # setresuid: from then on one of its own (seen through the container's
    # procfs: /proc/self/fd/1023), and both still receive fds.
    b = _with_ptprobe(bundle, ptprobe, ["setuid-private=/etc/hello"],
                      caps=["CAP_SETUID", "CAP_SETGID"])
    out = run_ok(runtime, b, global_args=["--platform=ptrace"])
    assert out.split() == ["setuid-private", "setuid=1", "same-before=1", "same-after=0", "open=1",
                           "parent-open=1"], out


def test_fds_reach_a_non_dumpable_process_after_exec(runtime, bundle, ptprobe):
    # euid 1000 with real uid 0, then exec: the new program is non-dumpable,
    # its /proc/PID/mem root's 0600, and the first fd injected into its new
    # address space opens that mem fd while the tracer acts as the caller
    # (postgres' pg_ctl under pg_ctlcluster: "Could not open logfile").
    b = _with_ptprobe(bundle, ptprobe, ["euid1000", "exec=/bin/cat", "/etc/hello"],
                      caps=["CAP_SETUID"])
    out = run_ok(runtime, b, global_args=["--platform=ptrace"])
    assert out == "hello-root\n", out


def test_no_signal_is_lost_during_fd_injections(runtime, bundle, ptprobe):
    # Each open is answered by an injected recvmsg: a signal arriving in
    # between stopped the tracee there and was dropped (asyncio's
    # test_subprocess_send_signal: the child never saw SIGHUP and the test
    # hung).  Real-time signals are queued, never merged: every one counts.
    # The first open after an exec maps the scratch page and may make the
    # process's reserved socket its own: several injected calls, each
    # returning to user mode, where a signal stops it: SIGTERM swept across
    # that window must kill the child every time.
    b = _with_ptprobe(bundle, ptprobe, ["rt-during-opens=/etc/hello", "term-at-exec=2000"])
    out = run_ok(runtime, b, global_args=["--platform=ptrace"], timeout=240).splitlines()
    assert out == ["rt-during-opens sent=3000 got=3000 opens>0=1", "term-at-exec tries=2000 lost=0"], out


def test_an_open_into_a_full_fd_table_is_emfile(runtime, bundle, ptprobe):
    # The injected recvmsg finds no free descriptor: the kernel drops the fd
    # (MSG_CTRUNC), and the open is EMFILE, as natively (it was EIO:
    # CPython's test_subprocess test_no_leaking).
    b = _with_ptprobe(bundle, ptprobe, ["emfile=/etc/hello"])
    out = run_ok(runtime, b, global_args=["--platform=ptrace"])
    assert out.split() == ["emfile", "EMFILE", "under32=1"], out


def test_opens_survive_a_workload_writing_over_the_scratch_page(runtime, bundle, ptprobe):
    # The tracer writes the injected recvmsg's msghdr only when the last
    # injection did not leave it intact (inject.install_fd): a workload
    # that writes over that page of its own (found through /proc/self/maps)
    # between opens still gets every file, the injection made again on a
    # page written anew.
    b = _with_ptprobe(bundle, ptprobe, ["scribble=/etc/hello"])
    out = run_ok(runtime, b, global_args=["--platform=ptrace"])
    assert out.split() == ["scribble", "found=1", "opens=6", "same=6"], out


def test_fifo_and_threads_in_a_container(runtime, bundle, ptprobe):
    b = _with_ptprobe(bundle, ptprobe, ["fifo-read=/tmp/f", "fifo-write=/tmp/g", "threads=/etc/hello"])
    out = run_ok(runtime, b, global_args=["--platform=ptrace"]).splitlines()
    assert out == ["fifo-read 1 0 x child=0 usr1=0", "fifo-write 1 0 child=0", "threads bad 0"], out


def test_ptrace_inside_is_refused(runtime, bundle, ptprobe):
    # A task has one tracer (the sandbox's), so the container cannot trace its
    # own processes on this platform: ptrace is EPERM, as the policy says on
    # both platforms, even with CAP_SYS_PTRACE.  Its tracer is outside the
    # container's pid namespace: TracerPid reads 0.
    b = _with_ptprobe(bundle, ptprobe, ["ptrace"], caps=["CAP_SYS_PTRACE"])
    out = run_ok(runtime, b, global_args=["--platform=ptrace"])
    assert out.split() == ["ptrace", "attach", "-1", str(errno.EPERM), "traceme", "-1",
                           str(errno.EPERM)], out
    out = run_ok(runtime, bundle(["grep", "TracerPid", "/proc/self/status"], rootfs="shared"),
                 global_args=["--platform=ptrace"])
    assert out.split() == ["TracerPid:", "0"], out


_BUSY_STATS = "i=0; while [ $i -lt 400 ]; do [ -e /etc/passwd ]; i=$((i+1)); done"
_COLOCATION = f"""
mask() {{ m=$(taskset -p $1); echo "${{m##*: }}"; }}
{_BUSY_STATS}
echo "$(nproc) $(mask $$) $(grep Cpus_allowed_list /proc/self/status | cut -f2)"
taskset -p 1 $$ >/dev/null
{_BUSY_STATS}
echo "$(mask $$) $(grep Cpus_allowed_list /proc/self/status | cut -f2)"
"""


def _several_cpus() -> int:
    ncpu = len(os.sched_getaffinity(0))
    if ncpu < 2:
        pytest.skip("one CPU: there is no other CPU to keep a tracee from")
    return ncpu


def test_a_busy_tracee_runs_beside_its_tracer_and_keeps_its_own_mask(runtime, bundle):
    # A shell making stats back to back is pinned to the tracer's CPU (the
    # host's view: a one-CPU mask its children inherit), while
    # sched_getaffinity, as nproc and taskset ask it, still answers the
    # mask it had; a mask the workload sets replaces it.
    ncpu = _several_cpus()
    out = run_ok(runtime, bundle(_COLOCATION), global_args=["--platform=ptrace"])
    first, second = out.splitlines()
    nproc, mask, real = first.split()
    assert (int(nproc), mask) == (ncpu, f"{(1 << ncpu) - 1:x}"), out
    assert real.isdigit(), out  # one CPU: the tracer's
    assert second.split() == ["1", "0"], out


def _cpus_allowed(pid: int) -> str:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Cpus_allowed_list:"):
            return line.split()[1]
    return ""


def test_a_tracee_computing_on_its_own_is_unpinned(runtime, bundle):
    # After its stats the shell computes without a system call the sentry
    # sees: the watch thread gives it its own mask back (seen from the
    # host), so that it does not share the tracer's CPU with other pinned
    # tasks while it computes.
    ncpu = _several_cpus()
    script = f"""{_BUSY_STATS}
echo ready
j=0; while [ $j -lt 20000000 ]; do j=$((j+1)); done"""
    with runtime.container(bundle(script), global_args=["--platform=ptrace"]) as c:
        c.wait_output("ready")
        pid = next(p for p in c.ps() if Path(f"/proc/{p}/comm").read_text().strip() == "sh")
        wait_until(lambda: _cpus_allowed(pid) == f"0-{ncpu - 1}", timeout=5,
                   what="the computing shell's own mask back")


# A program that makes no call the sentry sees after its exec: pause(2)
# forever, no libc (whose start-up makes notified calls).
IDLE_C = """void _start(void) {
    for (;;)
        __asm__ volatile("syscall" : : "a"(34L) : "rcx", "r11", "memory");
}
"""


def test_an_exec_stays_beside_the_tracer_and_keeps_its_own_mask(runtime, bundle):
    # A process of one thread that execs is kept beside the tracer
    # (sentry/cpu.py: the kernel's exec balancing would move the new
    # program to the other CPU, away from the tracer and its parent): the
    # host sees a one-CPU mask, the program its own (sched_getaffinity, as
    # taskset asks it), and once it has waited idle for a while it has its
    # own mask back.
    ncpu = _several_cpus()
    full = f"{(1 << ncpu) - 1:x}"
    script = """exec sh -c 'm=$(taskset -p $$); echo "mask ${m##*: }"; exec /idle'"""
    b = bundle(script)
    idle = b.rootfs / "idle"
    idle.with_suffix(".c").write_text(IDLE_C)
    subprocess.run(["gcc", "-static", "-nostdlib", "-fno-pie", "-no-pie", "-fno-stack-protector", "-O2",
                    "-o", str(idle), str(idle.with_suffix(".c"))], check=True)
    with runtime.container(b, global_args=["--platform=ptrace"]) as c:
        c.wait_output("mask")
        assert c.stdout().split() == ["mask", full], c.stdout()
        pid = next(p for p in c.ps() if Path(f"/proc/{p}/comm").read_text().strip() == "idle")
        assert _cpus_allowed(pid).isdigit(), _cpus_allowed(pid)
        wait_until(lambda: _cpus_allowed(pid) == f"0-{ncpu - 1}", timeout=10,
                   what="the idle program's own mask back")
