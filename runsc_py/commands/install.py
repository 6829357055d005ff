"""runsc-py install / uninstall: register the runtime with containerd, Docker, podman.

Each client keeps its runtimes in its own configuration file:

  containerd (TOML, version 2)
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.NAME]
        runtime_type = "io.containerd.runc.v2"
        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.NAME.options]
          BinaryName = "/abs/path/runsc-py"
  Docker (daemon.json)
      {"runtimes": {"NAME": {"path": "/abs/path/runsc-py", "runtimeArgs": []}}}
  podman (containers.conf, TOML)
      [engine.runtimes]
      NAME = ["/abs/path/runsc-py"]

containerd replaces its built-in runtimes table (which holds `runc`, the
default `default_runtime_name`) by the file's as soon as the file has one: a
table holding only NAME makes the CRI plugin refuse to load ("no corresponding
runtime configured in `containerd.runtimes` for `containerd`
`default_runtime_name = "runc"`").  So when the default runtime is `runc` and
the table has no `runc`, install adds containerd's own default entry for it,
marked with a comment; uninstall removes that entry again when it is unchanged
and nothing else is left beside it.

Only that entry is touched: comments, key order and every other setting are
kept (tomlkit round-trips TOML; JSON keeps its key order).  A file is backed
up to FILE.bak-<timestamp> before it changes; a run that changes nothing says
"no change" and writes nothing; --dry-run prints the diff and writes nothing.
"""

from __future__ import annotations

import difflib
import json
import os
import shutil
import sys
import tempfile
import time
TYPE_CHECKING = False  # typing's, without importing typing (docs/performance.md, Start-up)
if TYPE_CHECKING:
    from typing import Any, Callable

from ..cli import Globals

if TYPE_CHECKING:  # argparse is imported only for help and errors (flags.py)
    import argparse
from ..errors import RuntimeFailure

CRI = ("plugins", "io.containerd.grpc.v1.cri", "containerd", "runtimes")
SHIM = "io.containerd.runc.v2"
# containerd's default `default_runtime_name`, and the note on the entry we add for it.
DEFAULT_RUNTIME = "runc"
DEFAULT_NOTE = ("added by runsc-py install: containerd's default runtime must stay listed "
                "once this table exists")


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--containerd-config", metavar="FILE",
                   help="containerd config.toml (e.g. /etc/containerd/config.toml)")
    p.add_argument("--docker-config", metavar="FILE",
                   help="Docker daemon.json (e.g. /etc/docker/daemon.json)")
    p.add_argument("--podman-config", metavar="FILE",
                   help="podman containers.conf (e.g. /etc/containers/containers.conf)")
    p.add_argument("--runtime-name", default="runsc-py", metavar="NAME",
                   help="name of the runtime entry (default runsc-py)")
    p.add_argument("--binary", default=None, metavar="PATH",
                   help="runtime binary to register (default: this runsc-py)")
    p.add_argument("--dry-run", action="store_true", help="print the changes, write nothing")


def run(g: Globals, a: argparse.Namespace) -> int:
    return _apply(a, remove=False)


def run_uninstall(g: Globals, a: argparse.Namespace) -> int:
    return _apply(a, remove=True)


def binary_path(given: str | None) -> str:
    """The absolute path of the runsc-py binary being run (or of --binary)."""
    if given:
        return os.path.abspath(given)
    argv0 = sys.argv[0]
    if os.sep in argv0 and os.path.isfile(argv0):
        return os.path.abspath(argv0)
    found = shutil.which(argv0) or shutil.which("runsc-py")
    if not found:
        raise RuntimeFailure("cannot find the runsc-py binary: pass --binary PATH")
    return os.path.abspath(found)


def _apply(a: argparse.Namespace, remove: bool) -> int:
    targets: list[tuple[str, Callable[[str, str, str, bool], str]]] = []
    if a.containerd_config:
        targets.append((a.containerd_config, edit_containerd))
    if a.docker_config:
        targets.append((a.docker_config, edit_docker))
    if a.podman_config:
        targets.append((a.podman_config, edit_podman))
    if not targets:
        verb = "uninstall" if remove else "install"
        raise RuntimeFailure(f"{verb}: no configuration file given: use --containerd-config, "
                             "--docker-config and/or --podman-config")
    name = a.runtime_name
    if not name or any(c in name for c in "\"'\n[]"):
        raise RuntimeFailure(f"invalid --runtime-name {name!r}")
    binary = binary_path(a.binary)
    # Compute every change first: a malformed file fails before anything is written.
    plans = []
    for path, edit in targets:
        old = _read(path)
        try:
            new = edit(old, name, binary, remove)
        except (ValueError, KeyError, TypeError) as e:
            raise RuntimeFailure(f"{path}: cannot parse: {e}") from None
        plans.append((path, old, new))
    for path, old, new in plans:
        _report_and_write(path, old, new, remove, a.dry_run, name)
    return 0


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return None


def _report_and_write(path: str, old: str | None, new: str, remove: bool, dry_run: bool,
                      name: str) -> None:
    before = old or ""
    if new == before:
        print(f"{path}: no change")
        return
    diff = difflib.unified_diff(before.splitlines(keepends=True), new.splitlines(keepends=True),
                                fromfile=f"{path} (before)", tofile=f"{path} (after)")
    sys.stdout.writelines(ln if ln.endswith("\n") else ln + "\n" for ln in diff)
    what = f"{'removed' if remove else 'set'} runtime {name!r}"
    if dry_run:
        print(f"{path}: would have {what} (dry run: nothing written)")
        return
    backup = None
    if old is not None:
        backup = _backup(path)
    _write_atomic(path, new)
    print(f"{path}: {what}" + (f" (backup: {backup})" if backup else " (new file)"))


def _backup(path: str) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    backup, n = f"{path}.bak-{stamp}", 1
    while os.path.exists(backup):
        backup, n = f"{path}.bak-{stamp}.{n}", n + 1
    shutil.copy2(path, backup)
    return backup


def _write_atomic(path: str, text: str) -> None:
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    try:
        mode = os.stat(path).st_mode & 0o7777
    except FileNotFoundError:
        mode = 0o644
    fd, tmp = tempfile.mkstemp(prefix=".runsc-py-", dir=d)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


# The three formats: edit(old text or None, name, binary, remove) -> new text.

def _toml_out(doc: Any, old: str | None) -> str:
    """DOC as text; OLD itself when DOC means the same (no rewrite, no change)."""
    import tomlkit
    if tomlkit.parse(old or "").unwrap() == doc.unwrap():
        return old or ""
    out = tomlkit.dumps(doc)
    return out.rstrip("\n") + "\n" if out.strip() else ""


def _walk(doc: Any, keys: tuple[str, ...], create: bool) -> Any:
    import tomlkit
    t = doc
    for k in keys:
        if k not in t:
            if not create:
                return None
            t.add(k, tomlkit.table(is_super_table=True))
        t = t[k]
        if not isinstance(t, dict):
            raise ValueError(f"{'.'.join(keys)}: {k} is not a table")
    return t


def edit_containerd(old: str | None, name: str, binary: str, remove: bool) -> str:
    import tomlkit
    doc = tomlkit.parse(old or "")
    if remove:
        runtimes = _walk(doc, CRI, create=False)
        if runtimes is None or name not in runtimes:
            return old or ""
        del runtimes[name]
        if list(runtimes) == [DEFAULT_RUNTIME] and _is_our_default(runtimes[DEFAULT_RUNTIME]):
            del runtimes[DEFAULT_RUNTIME]
        _prune_empty(doc, CRI)
        return _toml_out(doc, old)
    if not (old or "").strip():
        doc.add("version", 2)
    elif doc.get("version") != 2:
        print("runsc-py: warning: containerd config has no `version = 2`: the "
              f"{CRI[1]} plugin section is read from version 2 files only", file=sys.stderr)
    runtimes = _walk(doc, CRI, create=True)
    default = (_walk(doc, CRI[:-1], create=False) or {}).get("default_runtime_name",
                                                            DEFAULT_RUNTIME)
    if default == DEFAULT_RUNTIME != name and DEFAULT_RUNTIME not in runtimes:
        entry = tomlkit.table()
        entry.add(tomlkit.comment(DEFAULT_NOTE))
        entry.add("runtime_type", SHIM)
        runtimes.add(DEFAULT_RUNTIME, entry)
    if name not in runtimes:
        runtimes.add(name, tomlkit.table())
    entry = runtimes[name]
    if entry.get("runtime_type") != SHIM:
        entry["runtime_type"] = SHIM
    if "options" not in entry:
        entry.add("options", tomlkit.table())
    if entry["options"].get("BinaryName") != binary:
        entry["options"]["BinaryName"] = binary
    return _toml_out(doc, old)


def _is_our_default(entry: Any) -> bool:
    """Whether ENTRY is the default runtime entry install added, unchanged."""
    from tomlkit.items import Comment
    if not isinstance(entry, dict) or dict(entry) != {"runtime_type": SHIM}:
        return False
    return any(isinstance(item, Comment) and DEFAULT_NOTE in item.as_string()
               for _, item in entry.value.body)


def _prune_empty(doc: Any, keys: tuple[str, ...]) -> None:
    """Remove the tables along KEYS that are left empty, innermost first."""
    for depth in range(len(keys), 0, -1):
        parent = _walk(doc, keys[:depth - 1], create=False)
        leaf = parent.get(keys[depth - 1]) if parent is not None else None
        if leaf is None or len(leaf) != 0:
            return
        del parent[keys[depth - 1]]


def edit_podman(old: str | None, name: str, binary: str, remove: bool) -> str:
    import tomlkit
    doc = tomlkit.parse(old or "")
    if remove:
        runtimes = _walk(doc, ("engine", "runtimes"), create=False)
        if runtimes is None or name not in runtimes:
            return old or ""
        del runtimes[name]
        return _toml_out(doc, old)
    runtimes = _walk(doc, ("engine", "runtimes"), create=True)
    if runtimes.get(name) != [binary]:
        runtimes[name] = [binary]
    return _toml_out(doc, old)


def edit_docker(old: str | None, name: str, binary: str, remove: bool) -> str:
    doc = json.loads(old) if (old or "").strip() else {}
    if not isinstance(doc, dict):
        raise ValueError("daemon.json is not a JSON object")
    runtimes = doc.get("runtimes")
    if runtimes is not None and not isinstance(runtimes, dict):
        raise ValueError('"runtimes" is not a JSON object')
    want = {"path": binary, "runtimeArgs": []}
    if remove:
        if not runtimes or name not in runtimes:
            return old or ""
        del runtimes[name]
        if not runtimes:
            del doc["runtimes"]
    else:
        if runtimes is not None and runtimes.get(name) == want:
            return old or ""
        doc.setdefault("runtimes", {})[name] = want
    return json.dumps(doc, indent=_json_indent(old)) + "\n"


def _json_indent(old: str | None) -> int:
    for ln in (old or "").splitlines()[1:]:
        stripped = ln.lstrip(" ")
        if stripped and len(stripped) < len(ln):
            return len(ln) - len(stripped)
    return 4
