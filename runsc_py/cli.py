"""runsc-py's command line: `runsc-py [global flags] COMMAND [flags] [ID] [args]`.

Global flags come before the command, parsed the way Go's flag library does
(`--root DIR`, `--root=DIR`, `-root DIR`).  Only the chosen command's module
is imported: containerd runs the binary several times per container, so
start-up time matters.
"""

from __future__ import annotations

import os
import sys

from .errors import RuntimeFailure
from .flags import SUPPRESS, Parser
from .record import Record

TYPE_CHECKING = False  # typing.TYPE_CHECKING, whose import the short commands do without (test_startup.py)
if TYPE_CHECKING:
    from typing import NoReturn

COMMANDS = {
    "create": "Create a container (it waits for `start`)",
    "start": "Start a created container",
    "run": "Create and start a container",
    "state": "Print the state of a container as JSON",
    "kill": "Send a signal to the container's init (or all processes)",
    "delete": "Delete a container and everything it holds",
    "list": "List containers",
    "ps": "List the processes of a container",
    "exec": "Run a new process in a running container",
    "pause": "Freeze every process of a container",
    "resume": "Thaw a paused container",
    "update": "Update the resource limits of a container",
    "events": "Print container statistics as JSON lines",
    "spec": "Write a default config.json",
    "features": "Print the features this runtime supports as JSON",
    "policy": "Print the sandbox's syscall policy table",
    "install": "Register runsc-py with containerd, Docker or podman", "uninstall": "Remove it",
}
ALIASES = {"rm": "delete", "ls": "list"}
# Commands whose modules log through log.get_logger only (tests/test_startup.py).
_LAZY_LOGGING = {"state", "start", "kill", "delete", "list", "ps", "pause", "resume", "spec", "features"}
_UNPRIVILEGED = {"spec", "features", "policy"}

VERSION = "0.1.0"
SPEC_VERSION = "1.1.0"


class Globals(Record):
    """The global flags."""

    root: str
    log: str | None
    log_format: str
    debug: bool
    systemd_cgroup: bool
    rootless: str
    platform: str
    network: str
    file_access: str
    strace: bool
    strace_syscalls: str
    net_raw: bool
    lookup_cache: bool = True
    uname_release: str = ""
    strace_format: str = "text"
    net_allow: tuple[str, ...] = ()
    net_deny: tuple[str, ...] = ()
    net_default: str = ""
    net_deny_private: bool = False
    net_policy: str = ""
    net_log: str = ""


def _bool(v: str) -> bool:
    return v.lower() in ("1", "true", "yes", "")


def global_parser() -> Parser:
    p = Parser(prog="runsc-py", add_help=False,
               description="A sandboxed, runc-compatible OCI runtime.")
    p.add_argument("-h", "--help", action="store_true")
    p.add_argument("-v", "--version", action="store_true")
    p.add_argument("--root", default="/run/runsc-py",
                   help="directory of container state (default /run/runsc-py)")
    p.add_argument("--log", default=None, help="append log lines to this file")
    p.add_argument("--log-format", default="text", choices=["text", "json"])
    p.add_argument("--debug", action="store_true", help="log debug messages")
    p.add_argument("--systemd-cgroup", action="store_true",
                   help="cgroupsPath is slice:prefix:name (created through cgroupfs)")
    p.add_argument("--rootless", default="auto",
                   help="true|false|auto; rootless containers need a user namespace in the spec")
    p.add_argument("--platform", default="auto", choices=["auto", "seccomp", "ptrace"],
                   help="how the sentry intercepts syscalls: seccomp user notification "
                        "(fast: needs Linux 6.6 and no other listener in the filter chain), "
                        "ptrace (works where that is missing; each intercepted call costs a "
                        "ptrace stop), or auto (default: seccomp where it works, else ptrace, "
                        "probed at each create)")
    p.add_argument("--network", default="sandbox", choices=["sandbox", "host", "none", "bridge"],
                   help="sandbox: the spec's network namespace (default); none: a loopback only; "
                        "host: the host's; bridge: a veth into a NAT bridge (run without an engine)")
    p.add_argument("--net-allow", action="append", default=[], metavar="[in:|out:]CIDR[:PORTS]",
                   help="allow traffic to (out, default) or accepted on (in) CIDR; repeatable")
    p.add_argument("--net-deny", action="append", default=[], metavar="[in:|out:]CIDR[:PORTS]",
                   help="deny it; the longest prefix decides, a deny beats an allow of the same length")
    p.add_argument("--net-default", default="", choices=["", "allow", "deny"],
                   help="egress verdict when no rule matches (default allow)")
    p.add_argument("--net-deny-private", action="store_true",
                   help="also deny RFC 1918, 100.64.0.0/10 and fc00::/7")
    p.add_argument("--net-policy", default="", metavar="FILE", help="a JSON network policy file")
    p.add_argument("--net-log", default="", metavar="FILE",
                   help="append every network policy decision as a JSON line")
    p.add_argument("--file-access", default="directfs", choices=["directfs", "gofer"],
                   help="how the sentry reaches files (default directfs)")
    p.add_argument("--directfs", action="store_const", const="directfs", dest="file_access")
    p.add_argument("--lookup-cache", action="store_true", default=True,
                   help="keep resolved lookups until the sandbox changes its files "
                        "(default true; =false when something outside may change the root, "
                        "like gVisor's --file-access=shared)")
    p.add_argument("--no-lookup-cache", action="store_false", dest="lookup_cache",
                   help=SUPPRESS)
    p.add_argument("--strace", action="store_true", help="log every intercepted syscall")
    p.add_argument("--strace-syscalls", default="", help="comma-separated syscalls to log")
    p.add_argument("--strace-format", default="text", choices=["text", "json"],
                   help="--strace lines as text, or one JSON object per call")
    p.add_argument("--net-raw", action="store_true", help="allow raw and packet sockets")
    p.add_argument("--uname-release", default="",
                   help="the kernel release uname(2) reports inside (default: the host's own; "
                        "per container: annotation dev.runsc-py.uname-release)")
    p.add_argument("--criu", default=None, help=SUPPRESS)
    return p


_LONG = {"root", "log", "log-format", "debug", "systemd-cgroup", "rootless", "platform", "network",
         "file-access", "directfs", "lookup-cache", "strace", "strace-syscalls", "net-raw", "bundle",
         "uname-release", "strace-format",
         "net-allow", "net-deny", "net-default", "net-deny-private", "net-policy", "net-log", "publish",
         "pid-file", "console-socket", "no-pivot", "no-new-keyring", "preserve-fds", "no-subreaper", "detach",
         "force", "all", "format", "process", "tty", "cwd", "env", "user", "resources", "stats",
         "interval", "keep", "additional-gids", "cap", "no-new-privs", "process-label", "apparmor",
         "memory", "cpu-quota", "cpu-period", "cpu-shares", "pids-limit", "cpuset-cpus",
         "cpuset-mems", "help", "version", "criu"}


_BOOL = {"debug", "systemd-cgroup", "net-raw", "net-deny-private", "strace", "directfs", "lookup-cache", "detach",
         "force", "all", "tty", "no-pivot", "no-new-keyring", "no-subreaper", "keep", "stats", "no-new-privs"}


def normalize(argv: list[str]) -> list[str]:
    """Go flags accept -flag as --flag; argparse does not.  Known names only,
    so that a container command's own arguments (`ls -la`) are left alone."""
    out = []
    for a in argv:
        if a.startswith("-") and not a.startswith("--") and a[1:].split("=", 1)[0] in _LONG:
            a = "-" + a
        name, eq, value = a.partition("=")
        if eq and name[2:] in _BOOL:
            # Go's boolean flags take --flag=true/false.
            if value.lower() in ("1", "t", "true", "yes"):
                a = name
            elif name == "--directfs":
                a = "--file-access=gofer"
            elif name == "--lookup-cache":
                a = "--no-lookup-cache"
            else:
                continue
        out.append(a)
    return out


def split_global(argv: list[str], parser: Parser | None = None
                 ) -> tuple[list[str], str | None, list[str]]:
    """Split argv into (global flags, command, command args)."""
    # The global flags that take a value, as the parser declares them.
    takes_value = (parser or global_parser()).value_options()
    i = 0
    while i < len(argv):
        a = argv[i]
        if not a.startswith("-"):
            return argv[:i], a, argv[i + 1:]
        if a in takes_value:
            i += 2
            continue
        i += 1
    return argv, None, []


def main(argv: list[str] | None = None) -> None:
    import time
    t_main, cpu_main = time.time_ns(), time.process_time()
    argv = normalize(list(sys.argv[1:] if argv is None else argv))
    gp = global_parser()
    gflags, cmd, rest = split_global(argv, gp)
    try:
        gargs = gp.parse_args(gflags)
    except SystemExit as e:
        sys.exit(e.code if isinstance(e.code, int) else 2)
    if gargs.version:
        print(f"runsc-py version {VERSION}\ncommit: {_commit()}\nspec: {SPEC_VERSION}")
        return
    if gargs.help or cmd is None or cmd == "help":
        gp.print_help()
        print("\ncommands:\n" + "\n".join(f"  {k:<10} {v}" for k, v in COMMANDS.items()))
        return
    cmd = ALIASES.get(cmd, cmd)
    g = Globals(root=gargs.root, log=gargs.log, log_format=gargs.log_format, debug=gargs.debug,
                systemd_cgroup=gargs.systemd_cgroup, rootless=gargs.rootless,
                platform=gargs.platform, network=gargs.network, file_access=gargs.file_access,
                strace=gargs.strace, strace_syscalls=gargs.strace_syscalls, net_raw=gargs.net_raw,
                lookup_cache=gargs.lookup_cache, uname_release=gargs.uname_release,
                strace_format=gargs.strace_format, net_allow=tuple(gargs.net_allow),
                net_deny=tuple(gargs.net_deny), net_default=gargs.net_default,
                net_deny_private=gargs.net_deny_private, net_policy=gargs.net_policy,
                net_log=gargs.net_log)
    from . import log as logsetup
    # The short commands configure logging at their first record, if any
    # (log.py): importing it costs them a third of their CPU.
    logsetup.setup(g.log, g.log_format, g.debug, defer=cmd in _LAZY_LOGGING and not g.debug)
    from . import timeline
    timeline.mark(f"cli.{cmd}.main", t_main, cpu_main)
    if cmd not in COMMANDS:
        _fail(f"command {cmd!r} does not exist", 1)
    if os.geteuid() != 0 and cmd not in _UNPRIVILEGED:
        _fail("running as a non-root user (rootless mode) is not supported yet: run as root; "
              "an unprivileged container root is available through a user namespace "
              "with linux.uidMappings/gidMappings in config.json", 1)
    # __import__, not importlib's import_module: the importlib package (and
    # warnings, which it imports) is ~0.4 ms of every command's start.
    name = f"{__package__}.commands.{cmd}"
    __import__(name)
    mod = sys.modules[name]
    parser = Parser(prog=f"runsc-py {cmd}", description=COMMANDS[cmd])
    mod.configure(parser)
    try:
        args = parser.parse_args(rest)
    except SystemExit as e:
        sys.exit(e.code if isinstance(e.code, int) else 2)
    try:
        timeline.mark(f"cli.{cmd}.parsed")
        code = mod.run(g, args)
        timeline.mark(f"cli.{cmd}.done")
    except RuntimeFailure as e:
        _fail(str(e), e.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:  # `runsc-py policy | head`
        os._exit(0)
    except OSError as e:
        _fail(f"{cmd}: {e.strerror or e}" + (f": {e.filename}" if e.filename else ""), 1)
    sys.exit(code or 0)


def run_and_exit(argv: list[str] | None = None) -> NoReturn:
    """main(), then leave at once: the output flushed (stdout, stderr, the
    log file), but none of the interpreter's finalization (module teardown,
    a last collection), which costs a short command a twentieth of its
    time.  Safe because every command is done when main() returns: nothing
    runs at exit (no atexit hook, no thread, no buffered file but these)."""
    code = 0
    try:
        main(argv)
    except SystemExit as e:
        if e.code is None:
            code = 0
        elif isinstance(e.code, int):
            code = e.code & 0xFF
        else:
            print(e.code, file=sys.stderr)
            code = 1
    if "logging" in sys.modules:
        sys.modules["logging"].shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


def _fail(msg: str, code: int) -> None:
    from .log import get_logger
    get_logger("runsc-py").error("%s", msg)
    print(f"runsc-py: {msg}", file=sys.stderr)
    sys.exit(code)


def _commit() -> str:
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        head = open(os.path.join(here, ".git", "HEAD")).read().strip()
        if head.startswith("ref: "):
            return open(os.path.join(here, ".git", head[5:])).read().strip()[:12]
        return head[:12]
    except OSError:
        return "unknown"
