"""runsc-py exec: run a new process in a running container."""

from __future__ import annotations

import json
TYPE_CHECKING = False  # typing's, without importing typing (docs/performance.md, Start-up)

from ..cli import Globals
from ..flags import REMAINDER, SUPPRESS

if TYPE_CHECKING:  # argparse is imported only for help and errors (flags.py)
    import argparse


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--process", "-p", default=None, help="OCI process JSON file")
    p.add_argument("--detach", "-d", action="store_true")
    p.add_argument("--pid-file", default=None)
    p.add_argument("--console-socket", default=None)
    p.add_argument("--tty", "-t", action="store_true")
    p.add_argument("--cwd", default=None)
    p.add_argument("--env", "-e", action="append", default=[])
    p.add_argument("--user", "-u", default=None, help="UID[:GID]")
    p.add_argument("--additional-gids", "-g", action="append", type=int, default=[])
    p.add_argument("--cap", "-c", action="append", default=[])
    p.add_argument("--no-new-privs", action="store_true", default=None)
    p.add_argument("--preserve-fds", type=int, default=0)
    p.add_argument("--process-label", default=None, help=SUPPRESS)
    p.add_argument("--apparmor", default=None, help=SUPPRESS)
    p.add_argument("id")
    p.add_argument("command", nargs=REMAINDER)


def run(g: Globals, a: argparse.Namespace) -> int:
    from .. import execproc, spec
    from ..errors import ConfigError, RuntimeFailure
    from ..state import Store
    store = Store(g.root)
    st = store.load(a.id)
    if a.process:
        try:
            with open(a.process) as f:
                proc = json.load(f)
        except OSError as e:
            raise RuntimeFailure(f"exec: open process file {a.process}: {e.strerror}") from None
        except ValueError as e:
            raise RuntimeFailure(f"exec: process file {a.process}: invalid JSON: {e}") from None
        try:
            spec.validate_process(proc, "process")
        except ConfigError as e:
            raise RuntimeFailure(str(e).replace("config.json: ", f"{a.process}: ", 1)) from None
    else:
        args = [x for x in a.command if x != "--"] if a.command[:1] == ["--"] else a.command
        proc = execproc.process_from_args(st.config.get("process") or {"cwd": "/"}, args, a.cwd,
                                          a.env, a.user, a.tty, a.cap, a.no_new_privs)
        if a.additional_gids:
            proc.setdefault("user", {})["additionalGids"] = a.additional_gids
    opts = execproc.ExecOptions(process=proc, detach=a.detach, pid_file=a.pid_file,
                                console_socket=a.console_socket, preserve_fds=a.preserve_fds)
    return execproc.exec_process(store, a.id, opts)
