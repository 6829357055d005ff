"""runsc_py/flags.py: the argparse-free parser gives argparse's answers.

For every command's parser (and the global flags) and a corpus of command
lines, the fast path either returns exactly what argparse returns or hands
the line to argparse; it never accepts a line argparse refuses.  No
container is run: these are unit tests of the parser.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io

import pytest

from runsc_py import cli, flags

IDS = ["c1", "my.container-1"]

LINES: dict[str, list[list[str]]] = {
    "create": [["--bundle", "/b", "--pid-file", "/p", "c1"], ["--bundle=/b", "c1"], ["-b", "/b", "c1"],
               ["c1", "--bundle", "/b"], ["--console-socket", "/s", "--no-pivot", "c1"],
               ["--preserve-fds", "2", "c1"], ["--preserve-fds", "x", "c1"], ["--preserve-fds=3", "c1"],
               ["c1", "c2"], [], ["--bund", "/b", "c1"], ["--bundle"], ["--bundle", "--pid-file", "p", "c1"],
               ["--no-pivot=true", "c1"], ["-h"], ["--", "c1"], ["--no-new-keyring", "c1"],
               ["-b/b", "c1"], ["--bundle", "-", "c1"]],
    "run": [["--bundle", "/b", "--detach", "c1"], ["-d", "c1"], ["--keep", "c1"], ["c1", "-d"],
            ["--no-subreaper", "--bundle", "/b", "c1"]],
    "start": [["c1"], [], ["c1", "c2"], ["-x"], ["--help"]],
    "state": [["c1"], ["my.container-1"], [], ["-"], ["c1", "-"]],
    "kill": [["c1"], ["c1", "9"], ["c1", "KILL"], ["--all", "c1", "9"], ["-a", "c1", "SIGTERM"],
             ["c1", "--all"], ["c1", "--all", "9"], ["c1", "9", "10"], ["c1", "-9"], []],
    "delete": [["c1"], ["--force", "c1"], ["-f", "c1"], ["c1", "--force"], ["c1", "-f"], []],
    "list": [[], ["--format", "json"], ["--format=json"], ["-q"], ["--format", "xml"], ["-f", "table"],
             ["x"]],
    "ps": [["c1"], ["--format", "json", "c1"], ["--format=json", "c1"], ["c1", "-ef"], ["c1", "--", "-ef"],
           ["c1", "--format", "json"], ["-f", "json", "c1", "aux"]],
    "exec": [["--process", "/p.json", "c1"], ["--process=/p.json", "--detach", "--pid-file", "/p", "c1"],
             ["c1", "sh", "-c", "echo hi"], ["--tty", "c1", "ls", "-la"], ["-t", "c1", "ls"],
             ["--env", "A=1", "--env", "B=2", "c1", "env"], ["-e", "A=1", "c1"], ["--cwd", "/", "c1", "pwd"],
             ["--user", "1000:1000", "--additional-gids", "5", "-g", "6", "c1", "id"],
             ["--additional-gids", "x", "c1"], ["--cap", "CAP_KILL", "c1"], ["--no-new-privs", "c1"],
             ["--preserve-fds", "1", "c1"], ["--process-label", "x", "--apparmor", "y", "c1"],
             ["c1", "--tty", "sh"], ["c1"], [], ["c1", "sh", "-c", "--x"], ["--env", "-x", "c1"],
             ["--env=-x", "c1", "env"], ["c1", "--", "sh"], ["--detach", "--detach", "c1"]],
    "pause": [["c1"]], "resume": [["c1"]],
    "update": [["--resources", "-", "c1"], ["--resources=-", "c1"], ["-r", "/f", "c1"],
               ["--memory", "100", "--pids-limit", "5", "c1"], ["--cpu-quota", "x", "c1"],
               ["--cpuset-cpus", "0-1", "c1"]],
    "events": [["c1"], ["--stats", "c1"], ["--interval", "5s", "c1"], ["--interval=1s", "c1"]],
    "spec": [[], ["--bundle", "/b"], ["--rootless"], ["-b", "/b", "--rootless"]],
    "features": [[], ["x"]],
    "policy": [[], ["--format", "json"], ["--sentry"], ["--gofer", "--format=json"], ["--continue"]],
}

GLOBAL_LINES = [[], ["--root", "/r"], ["--root=/r", "--debug"], ["--log", "/l", "--log-format", "json"],
                ["--log-format", "xml"], ["--systemd-cgroup"], ["--rootless", "true"], ["--rootless=false"],
                ["--platform", "ptrace"], ["--platform", "kvm"], ["--network", "none"],
                ["--file-access", "gofer"], ["--directfs"], ["--lookup-cache"], ["--no-lookup-cache"],
                ["--strace", "--strace-syscalls", "open,stat"], ["--strace-format", "json"],
                ["--net-raw"], ["--uname-release", "4.4.0"], ["--criu", "/x"], ["-v"], ["--version"],
                ["-h"], ["--help"], ["--bogus"], ["--root"], ["--debug=true"]]


def _both(parser: flags.Parser, argv: list[str]) -> None:
    """Fast path == argparse, or the fast path hands the line over."""
    ref = parser.argparse_parser()
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            want: dict | None = vars(ref.parse_args(argv))
    except SystemExit:
        want = None
    try:
        got = vars(parser._parse(list(argv)))
    except flags._Fallback:
        return
    assert want is not None, f"{argv}: argparse refuses it, the fast path accepted {got}"
    assert got == want, argv


@pytest.mark.parametrize("cmd", sorted(LINES))
def test_commands_match_argparse(cmd: str) -> None:
    mod = importlib.import_module(f"runsc_py.commands.{cmd}")
    for argv in LINES[cmd] + [[i] for i in IDS]:
        p = flags.Parser(prog=f"runsc-py {cmd}")
        mod.configure(p)
        _both(p, argv)


def test_global_flags_match_argparse() -> None:
    for argv in GLOBAL_LINES:
        _both(cli.global_parser(), cli.normalize(argv))


def test_common_lines_take_the_fast_path() -> None:
    """What containerd's shim and conmon send never needs argparse."""
    cases = {"create": ["--bundle", "/b", "--pid-file", "/p", "--console-socket", "/s", "c1"],
             "start": ["c1"], "state": ["c1"], "kill": ["c1", "9"], "delete": ["--force", "c1"],
             "ps": ["--format", "json", "c1"],
             "exec": ["--process", "/p.json", "--detach", "--pid-file", "/p", "c1"]}
    for cmd, argv in cases.items():
        p = flags.Parser()
        importlib.import_module(f"runsc_py.commands.{cmd}").configure(p)
        p._parse(argv)  # no _Fallback
    cli.global_parser()._parse(["--root", "/run/containerd/runc/default", "--log", "/b/log.json",
                                "--log-format", "json", "--systemd-cgroup"])


def test_constants_are_argparse_values() -> None:
    assert flags.SUPPRESS == argparse.SUPPRESS
    assert flags.REMAINDER == argparse.REMAINDER
    assert flags.OPTIONAL == argparse.OPTIONAL


def test_suppressed_options_stay_out_of_the_help(capsys: pytest.CaptureFixture[str]) -> None:
    """argparse hides an option whose help IS its SUPPRESS object."""
    p = flags.Parser(prog="runsc-py")
    p.add_argument("--shown", help="a shown option")
    p.add_argument("--hidden", default=None, help=flags.SUPPRESS)
    p.print_help()
    out = capsys.readouterr().out
    assert "--shown" in out and "hidden" not in out and "SUPPRESS" not in out, out


def test_errors_are_argparse_errors(capsys: pytest.CaptureFixture[str]) -> None:
    p = flags.Parser(prog="runsc-py kill")
    importlib.import_module("runsc_py.commands.kill").configure(p)
    with pytest.raises(SystemExit) as e:
        p.parse_args([])
    assert e.value.code == 2
    assert "the following arguments are required: id" in capsys.readouterr().err
