"""What a fork+exec costs the sentry, and that the shortcuts answer as
Linux does (the same tests pass against runc).

- readlink("/proc/self/exe"), which every static glibc program makes at
  start, is answered from the container's procfs root kept by the sandbox
  (sentry/procfs.py own_exe_text), not by a component-wise walk;
- a program's "#!" line is read once per file identity (size, mtimes,
  inode), and a rewritten script is read again (syscalls/proc_exec.py);
- an execve forgets only its own task's cached credentials and memory fd
  (sentry/creds.py), and a task's memory fd is opened at its second call.
"""

from __future__ import annotations

import pytest

BOTH = pytest.mark.parametrize("mode", ["directfs", "gofer"])
_CAPS = ["CAP_SETUID", "CAP_SETGID", "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_KILL",
         "CAP_AUDIT_WRITE", "CAP_NET_BIND_SERVICE"]
CAPS = {k: _CAPS for k in ("bounding", "effective", "permitted")}


def _run(runtime, bundle, script: str, mode: str, **kw):
    b = bundle(script, rootfs="copy", config={"root": {"readonly": False},
                                              "process": {"capabilities": CAPS}}, **kw)
    args = [] if runtime.is_runc else [f"--file-access={mode}"]
    res = runtime.run_container(b, global_args=args)
    assert res.returncode == 0, res
    return res.stdout.split()


@BOTH
def test_readlink_of_own_exe(runtime, bundle, mode: str) -> None:
    out = _run(runtime, bundle, "readlink /proc/self/exe; readlink /proc/thread-self/exe; "
               "mkdir /b2; cp /bin/busybox /b2/busybox; /b2/busybox readlink /proc/self/exe; "
               "i=0; while [ $i -lt 20 ]; do /b2/busybox readlink /proc/self/exe; i=$((i+1)); done | uniq -c; "
               "/b2/busybox sh -c 'readlink /proc/$$/exe'; rm /b2/busybox; /bin/busybox readlink /proc/self/exe",
               mode)
    assert out == ["/bin/busybox", "/bin/busybox", "/b2/busybox", "20", "/b2/busybox", "/b2/busybox",
                   "/bin/busybox"], out


@BOTH
def test_own_exe_of_a_non_dumpable_program(runtime, bundle, mode: str) -> None:
    """A setuid program reads its own exe link (Linux allows a task its own
    whatever its credentials)."""
    out = _run(runtime, bundle, "mkdir /su; cp /bin/busybox /su/busybox; chmod 4755 /su/busybox; "
               "su -s /bin/sh nobody -c '/su/busybox readlink /proc/self/exe; id -u; "
               "/su/busybox id -u'", mode)
    assert out == ["/su/busybox", "65534", "65534"], out  # busybox drops the set uid itself


@BOTH
def test_a_rewritten_script_is_read_again(runtime, bundle, mode: str) -> None:
    script = ("printf '#!/bin/sh\\necho one\\n' > /s; chmod +x /s; /s; /s; "
              "printf '#!/nowhere/sh\\necho two\\n' > /s; /s; echo rc=$?; "
              "printf '#!/bin/sh\\necho three\\n' > /s; /s; "
              "printf '#!/bin/sh\\necho four\\n' > /t; chmod +x /t; mv /t /s; /s")
    out = _run(runtime, bundle, script, mode)
    assert out == ["one", "one", "rc=127", "three", "four"], out  # (sh: /s: not found)


@BOTH
def test_exec_keeps_other_tasks_credentials(runtime, bundle, mode: str) -> None:
    """A child that drops to another uid and execs does not change what
    the sentry acts with for its parent, nor the other way round."""
    script = ("mkdir /d; chmod 700 /d; echo x > /d/f; "
              "for i in 1 2 3; do su -s /bin/sh nobody -c 'cat /d/f 2>&1'; "
              "cat /d/f; id -u; done")
    out = _run(runtime, bundle, script, mode)
    assert out == ["cat:", "can't", "open", "'/d/f':", "Permission", "denied", "x", "0"] * 3, out


@pytest.mark.runsc_py_only
@BOTH
def test_own_exe_shortcut_when_it_is_the_first_look_into_proc(runtime, bundle, workdir, mode: str) -> None:
    """busybox's readlink of /proc/self/exe is often a container's first
    look into /proc: the procfs root is checked as the container's own then,
    not left to a walk that had not happened, which turned the shortcut off
    for the container's life (every later command walked /proc/self/exe)."""
    log = workdir / f"own-exe-{mode}.log"
    b = bundle(["/bin/true"], rootfs="shared")
    res = runtime.run("run", "--bundle", str(b), runtime.new_id("ownexe"),
                      global_args=["--debug", "--log", str(log), f"--file-access={mode}"])
    assert res.returncode == 0, res
    text = log.read_text()
    assert "own exe links from the container's procfs" in text, text[-2000:]
