"""Start-up: each command imports only what it uses, and --debug logs the
start-up timeline (runsc_py/timeline.py).

containerd runs the binary for create, start, state (often), kill and
delete of every container: the short commands must not pay for the sentry,
the gofer, libseccomp or pyroute2.  Checked with `python -X importtime` on
the real launcher against a real container.  No test here measures time.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.runsc_py_only

HEAVY = ("sentry", "gofer", "pyroute2", "seccomp")
# Neither these: they cost more than the short commands themselves.
STDLIB_HEAVY = ("argparse", "dataclasses", "inspect", "subprocess", "shutil", "ctypes", "hashlib",
                "tempfile", "logging", "typing",
                # json's decoder imports re, and re enum: runsc_py/jsonio.py; signal's
                # wrappers import enum: runsc_py/signals.py.  `start` connects
                # to the sandbox, and socket imports enum.
                "json", "re", "signal", "enum")


def _imports(runtime, *args: str) -> tuple[set[str], subprocess.CompletedProcess]:
    """The modules a command imports (its own process only: the launcher
    is run by the venv's python with -X importtime)."""
    import helpers
    # The launcher itself, not the $RUNSC_PY_TEST_PLATFORM wrapper (a shell
    # script that adds --platform): its platform is passed as the wrapper does.
    launcher = Path(os.environ.get(helpers.RUNTIME_ENV) or helpers.DEFAULT_RUNTIME)
    platform = [f"--platform={helpers.platform_under_test()}"] if helpers.platform_under_test() else []
    python = launcher.read_text().splitlines()[0][2:].split()[0]
    cmd = [python, "-IS", "-X", "importtime", str(launcher), *platform, "--root", str(runtime.root), *args]
    # Files, not pipes: a created container keeps the runtime's stdio.
    out, err = runtime.ctx.workdir / "imports.out", runtime.ctx.workdir / "imports.err"
    with open(out, "w") as o, open(err, "w") as e:
        rc = subprocess.run(cmd, stdout=o, stderr=e, stdin=subprocess.DEVNULL, timeout=60).returncode
    res = subprocess.CompletedProcess(cmd, rc, out.read_text(), err.read_text())
    mods = set()
    for line in res.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            name = line.split("|")[-1].strip()
            if name != "imported package":
                mods.add(name)
    return mods, res


@pytest.mark.parametrize("cmd", ["state", "kill", "delete", "ps", "list", "start", "pause-resume"])
def test_short_commands_import_no_sandbox_code(runtime, bundle, cmd: str) -> None:
    b = bundle(["sleep", "30"], rootfs="shared")
    with runtime.container(b, start=cmd != "start") as c:
        argv = {"state": ["state", c.id], "kill": ["kill", c.id, "CONT"],
                "delete": ["delete", "--force", c.id], "ps": ["ps", "--format", "json", c.id],
                "list": ["list", "--format", "json"], "start": ["start", c.id],
                "pause-resume": ["pause", c.id]}[cmd]
        mods, res = _imports(runtime, *argv)
        assert res.returncode == 0, res
        if cmd == "pause-resume":
            more, res = _imports(runtime, "resume", c.id)
            assert res.returncode == 0, res
            mods |= more
    allowed = {"socket", "enum", "selectors"} if cmd == "start" else set()
    heavy = sorted(m for m in mods if m.split(".")[0] in HEAVY + STDLIB_HEAVY and m not in allowed)
    assert not heavy, f"{cmd} imports {heavy}"


def test_create_imports_no_network_code_without_network_set_up(runtime, bundle) -> None:
    """pyroute2 is for network set-up only (its import costs more than a
    whole start), in the set-up helper (runsc_py/network/setup.py) that
    create forks when there are kernel rules or a bridge to make (the
    default policy's denied networks in a namespace of the container's);
    with --network=host there is none, and no process of the start-up
    imports it.  (-X importtime reports the forked processes' imports
    too: the sandbox imports the sentry after its fork.)"""
    b = bundle(["true"], rootfs="shared")
    cid = runtime.new_id("imp")
    mods, res = _imports(runtime, "--network=host", "create", "--bundle", str(b), cid)
    try:
        assert res.returncode == 0, res
        assert not [m for m in mods if m.startswith("pyroute2")]
    finally:
        runtime.delete(cid, force=True)


def test_start_up_imports_no_typing_json_logging_enum(runtime, bundle) -> None:
    """`typing` costs a start ~4 ms of CPU on the critical path (the
    runtime's before the sandbox's fork, then the sandbox's): no process of
    a default create imports it (annotations are strings; typing's names
    are imported under TYPE_CHECKING only, docs/performance.md).  Nor
    `json` (4 modules, 6 regular expressions compiled): the spec, the
    filter cache's keys and the sentry's JSON lines go through
    runsc_py/jsonio.py.  Nor `logging` (~9 ms of CPU with traceback,
    tokenize, textwrap...): runsc_py/log.py writes the lines; nor re
    (pickle.py's: the orders go through _pickle), nor socket, signal and
    enum (~5 ms: runsc_py/sockets.py, _signal, str and int constants).
    On the ptrace platform neither: python-ptrace's package __init__, which
    imports logging, traceback, signal and enum, is not run
    (sentry/platform/ptrace_abi.py)."""
    b = bundle(["true"], rootfs="shared")
    cid = runtime.new_id("imp")
    mods, res = _imports(runtime, "create", "--bundle", str(b), cid)
    try:
        assert res.returncode == 0, res
        assert "typing" not in mods
        assert not [m for m in mods if m.split(".")[0] == "json"], sorted(mods)
        heavy = {"logging", "traceback", "re", "socket", "signal", "enum", "selectors", "pickle",
                 "datetime"}
        assert not heavy & mods, sorted(heavy & mods)
        assert "sentry.supervisor" in mods  # the sandbox's imports are among them
        import helpers
        if helpers.platform_under_test() == "ptrace":
            assert "ptrace.binding.func" in mods and "ptrace.error" not in mods, sorted(mods)
    finally:
        runtime.delete(cid, force=True)


def test_help_and_errors_still_come_from_argparse(runtime) -> None:
    res = runtime.run("state", "--help", root=False)
    assert res.returncode == 0 and "usage: runsc-py state" in res.stdout, res
    res = runtime.run("state", root=False)
    assert res.returncode == 2 and "the following arguments are required: id" in res.stderr, res
    res = runtime.run("kill", "--bogus", "x", root=False)
    assert res.returncode == 2 and "unrecognized arguments: --bogus" in res.stderr, res


def test_debug_logs_the_start_up_timeline(runtime, bundle, workdir) -> None:
    from runsc_py.timeline import parse
    log = workdir / "timeline.log"
    b = bundle(["true"], rootfs="shared")
    res = runtime.run("--debug", "--log", str(log), "--log-format", "json", "run", "--bundle", str(b),
                      runtime.new_id("tl"))
    assert res.returncode == 0, res
    for line in log.read_text().splitlines():
        json.loads(line)  # still one JSON object per line
    marks = parse(log.read_text())
    phases = [m[0] for m in marks]
    for want in ("cli.run.main", "cli.run.parsed", "create.filters", "create.cgroups", "sandbox.start",
                 "sandbox.imported", "init.start", "init.filter-built", "init.rootfs", "create.done",
                 "sentry.gofer-attached", "sentry.execve", "start.init-execed", "sandbox.exit",
                 "cli.run.done"):
        assert want in phases, (want, phases)
    # the platform create chose (after its probe with --platform=auto)
    assert any(p.startswith("create.platform-") for p in phases), phases
    # the CLI, the sandbox, init, the gofer (pids are their namespaces')
    assert {"cli", "sandbox", "init", "gofer"} <= {m[0].split(".")[0] for m in marks}
    t = {m[0]: m[1] for m in reversed(marks)}
    assert t["cli.run.main"] <= t["create.filters"] <= t["sandbox.start"] <= t["sentry.execve"] \
        <= t["cli.run.done"], marks


def test_no_timeline_without_debug(runtime, bundle, workdir) -> None:
    log = workdir / "quiet.log"
    b = bundle(["true"], rootfs="shared")
    res = runtime.run("--log", str(log), "run", "--bundle", str(b), runtime.new_id("q"))
    assert res.returncode == 0, res
    assert "timeline" not in (log.read_text() if log.exists() else "")


