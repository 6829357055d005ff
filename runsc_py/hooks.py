"""OCI hooks: run with the container state JSON on stdin, bounded by timeout.

Kinds and where they run (runtime-spec config.md "POSIX-platform Hooks"):
prestart/createRuntime in the runtime namespace after the namespaces exist;
createContainer in the container namespace before pivot_root; startContainer
in the container after start, before the user's program; poststart in the
runtime namespace before `start` returns; poststop after delete.
"""

from __future__ import annotations

import os

from . import jsonio
from .errors import RuntimeFailure
from .log import get_logger

TYPE_CHECKING = False  # typing.TYPE_CHECKING, whose import the short commands do without (test_startup.py)
if TYPE_CHECKING:
    from typing import Any
    import subprocess

log = get_logger(__name__)  # (runsc_py/log.py: no `logging` import unless a record is written)


# runtime-spec: a failing poststart or poststop hook is a warning, and the
# remaining hooks still run; any other failing hook aborts the operation.
WARN_ONLY = {"poststart", "poststop"}


def run_hooks(kind: str, hooks: list[dict[str, Any]] | None, state: dict[str, Any]) -> None:
    """Run every hook of KIND in order; the first failure raises (or, for
    poststart/poststop, is logged as a warning and the rest still run)."""
    if not hooks:
        return
    payload = jsonio.dumps(state).encode()
    for i, hook in enumerate(hooks):
        try:
            _run_one(f"{kind}[{i}]", hook, payload)
        except RuntimeFailure as e:
            if kind not in WARN_ONLY:
                raise
            log.warning("%s", e)


def _run_one(name: str, hook: dict[str, Any], payload: bytes) -> None:
    path = hook["path"]
    args = hook.get("args") or [path]
    env = {}
    for kv in hook.get("env") or []:
        k, _, v = kv.partition("=")
        env[k] = v
    timeout = hook.get("timeout")
    log.debug("running %s hook %s %s", name, path, args)
    import subprocess  # here: most containers have no hooks, and every command loads this module
    try:
        proc = subprocess.Popen(args, executable=path, env=env, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, close_fds=True,
                                start_new_session=True)
    except OSError as e:
        raise RuntimeFailure(f"error running {name} hook {path}: {e.strerror}") from None
    try:
        out, err = proc.communicate(payload, timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        raise RuntimeFailure(f"error running {name} hook {path}: timed out after {timeout}s") from None
    except BrokenPipeError:
        out, err = proc.communicate()
    if proc.returncode != 0:
        detail = (err or out).decode(errors="replace").strip().splitlines()
        tail = f": {detail[-1]}" if detail else ""
        raise RuntimeFailure(f"error running {name} hook {path}: exit status {proc.returncode}{tail}")


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, 9)
    except OSError:
        proc.kill()
    proc.wait()
