"""The runtime's compiled modules in one file, for the launcher.

Every runsc-py command is a new interpreter, and containerd runs several per
container.  An import from source costs more than running its module: the
path finder stats and lists directories, the loader stats the source, opens,
reads and checks its .pyc, builds a spec.  A `run` imports ~150 modules this
way (the runtime before the sandbox's fork, then both processes): ~10 ms of
CPU per container went to that machinery, not to the modules.

scripts/setup.sh writes this file once per install, next to the launcher
(`<venv>/runsc-py.codecache`): the code objects of every pure-Python module
a command, the sandbox process or the gofer imports (ours, the standard
library's, site-packages'), compiled without their docstrings, marshalled.  The launcher `install`s it as the
first meta path finder; each import it serves is one stat of the source,
one open, pread and close of its entry, and a marshal.loads.  Nothing is
kept in memory but the index (no copy of the file in every sandbox's heap,
no fd inherited by the sandbox).

It is the install's own output, trusted as its __pycache__ is, and checked
as much as that or more; when in doubt the module is imported from its
source as if there were no cache:
  - the file is opened without following symlinks or waiting (a FIFO); it
    is a regular file,
    owned by root or by us, that no group or other user may write;
  - it starts with the format's magic and the interpreter's bytecode magic
    (another Python's file is not read further);
  - the index has a CRC-32, and so has each entry; an entry is read from
    the very file (device, inode) its index came from;
  - an entry is used only while its source has the size and mtime it had
    when the entry was written (a module edited since comes from its
    source: an install keeps working while being worked on, only slower,
    until setup.sh rewrites the file).
The file is written beside its final name (O_EXCL, random name) and renamed
over it, so a reader sees a whole file or the old one.

    (setup.sh: codecache.main([FILE]) in the launcher's interpreter, with its path)
"""

from __future__ import annotations

import binascii  # built in, as marshal is: no file to find
import marshal
import os
import sys

from _frozen_importlib import ModuleSpec
from _frozen_importlib_external import MAGIC_NUMBER

TYPE_CHECKING = False  # typing's, without importing typing (docs/performance.md, Start-up)
if TYPE_CHECKING:
    from types import CodeType, ModuleType

FORMAT_MAGIC = b"RSPYCODE"
# magic, the interpreter's bytecode magic, the index's length
_HEADER_LEN = 8 + 4 + 4
_MAX_INDEX = 1 << 20
_MAX_ENTRY = 16 << 20

# An index entry: (is_package, origin, source mtime_ns, source size,
# offset from the end of the index, length, crc32), by module name.
Entry = tuple  # (bool, str, int, int, int, int, int)
# The entry of Records' generated methods (a dict: their text -> code), by a
# name no module has.
GENERATED = "<record methods>"
_CODE = type((lambda: None).__code__)
# No symlink followed; a FIFO put in its place is not waited for (then refused).
_O_READ = os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK


class CodeCache:
    """A meta path finder and loader serving the modules in the file at
    `path` whose sources have not changed since it was written."""

    def __init__(self, path: str, index: dict[str, Entry], base: int, ident: tuple[int, int]) -> None:
        self.path = path
        self.index = index
        self.base = base  # where the entries start (an entry's offset counts from here)
        self.ident = ident  # (st_dev, st_ino) of the file the index came from
        self.served = 0
        self._generated: dict[str, CodeType] | None = None  # GENERATED's entry, once read

    # --- importlib's finder and loader protocols ---------------------------
    def find_spec(self, name: str, path: object = None, target: object = None) -> ModuleSpec | None:
        e = self.index.get(name)
        if e is None:
            return None
        code = self._code(e)
        if code is None:
            return None
        is_pkg, origin = e[0], e[1]
        spec = ModuleSpec(name, self, origin=origin, is_package=is_pkg, loader_state=code)
        spec.has_location = True  # __file__ is the source's: tracebacks show its lines
        if is_pkg:
            spec.submodule_search_locations = [origin.rpartition("/")[0]]
        return spec

    def create_module(self, spec: ModuleSpec) -> None:
        return None  # the default module object

    def exec_module(self, module: ModuleType) -> None:
        spec = module.__spec__
        code, spec.loader_state = spec.loader_state, None
        self.served += 1
        exec(code, module.__dict__)

    def generated(self, src: str) -> CodeType | None:
        """The code of a method a Record class generates (runsc_py/record.py),
        by its text, or None."""
        if self._generated is None:
            e = self.index.get(GENERATED)
            table = self._read(e) if e is not None else None
            self._generated = table if type(table) is dict else {}
        code = self._generated.get(src)
        return code if type(code) is _CODE else None

    # --- the file ---------------------------------------------------------
    def _code(self, e: Entry) -> CodeType | None:
        """The entry's code, or None: its source changed, or the entry
        cannot be read whole and unchanged."""
        origin, mtime_ns, size = e[1:4]
        try:
            st = os.stat(origin)
        except OSError:
            return None
        if st.st_mtime_ns != mtime_ns or st.st_size != size:
            return None
        code = self._read(e)
        return code if type(code) is _CODE else None

    def _read(self, e: Entry) -> object:
        """The object an entry holds, or None (not readable whole and
        unchanged)."""
        offset, length, crc = e[4:7]
        try:
            fd = os.open(self.path, _O_READ)
        except OSError:
            return None
        try:
            st = os.fstat(fd)
            if (st.st_dev, st.st_ino) != self.ident:
                return None  # replaced since (setup.sh ran again): its index is not ours
            data = os.pread(fd, length, self.base + offset)
        except OSError:
            return None
        finally:
            os.close(fd)
        if len(data) != length or _crc32(data) != crc:
            return None
        try:
            return marshal.loads(data)
        except (EOFError, ValueError, TypeError):
            return None


_crc32 = binascii.crc32


def _trusted(st: os.stat_result) -> bool:
    """A regular file of root's or ours that no one else may write."""
    import stat
    return (stat.S_ISREG(st.st_mode) and st.st_uid in (0, os.geteuid())
            and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH))


def load(path: str) -> CodeCache | None:
    """The cache in the file at path, or None (missing, not trusted, of
    another format or interpreter)."""
    try:
        fd = os.open(path, _O_READ)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not _trusted(st):
            return None
        head = os.pread(fd, _HEADER_LEN, 0)
        if len(head) != _HEADER_LEN or head[:8] != FORMAT_MAGIC or head[8:12] != MAGIC_NUMBER:
            return None
        n = int.from_bytes(head[12:16], "little")
        if n > _MAX_INDEX:
            return None
        raw = os.pread(fd, n + 4, _HEADER_LEN)
    except OSError:
        return None
    finally:
        os.close(fd)
    if len(raw) != n + 4 or _crc32(raw[:n]) != int.from_bytes(raw[n:], "little"):
        return None
    try:
        index = marshal.loads(raw[:n])
    except (EOFError, ValueError, TypeError):
        return None
    if type(index) is not dict:
        return None
    return CodeCache(path, index, _HEADER_LEN + n + 4, (st.st_dev, st.st_ino))


def install(path: str) -> CodeCache | None:
    """Put the cache at path first on sys.meta_path (the launcher's call);
    None, and imports as usual, if there is none to trust."""
    global _ACTIVE
    cache = load(path)
    if cache is not None:
        sys.meta_path.insert(0, cache)
        _ACTIVE = cache
    return cache


_ACTIVE: CodeCache | None = None  # the installed one (process-wide, as sys.meta_path)


def generated(src: str) -> CodeType | None:
    """The installed cache's code of a Record's generated method (record.py)."""
    return _ACTIVE.generated(src) if _ACTIVE is not None else None


# --- writing it (setup.sh) --------------------------------------------------

# What the commands, the sandbox process and the gofer import between them:
# every module of our packages (their imports bring in the rest).
_PACKAGES = ("runsc_py", "sentry", "gofer")
# Modules that are not imported by the product (build scripts, entry points).
_SKIP_SUFFIXES = ("__main__", "_build")


def _import_everything() -> None:
    import importlib
    import pkgutil
    for pkg_name in _PACKAGES:
        pkg = importlib.import_module(pkg_name)
        for info in pkgutil.walk_packages(pkg.__path__, pkg_name + "."):
            if info.name.endswith(_SKIP_SUFFIXES):
                continue
            importlib.import_module(info.name)
    # What is imported only by a function's body at run time.
    from .sandbox import preload
    preload("ptrace")


def entries() -> dict[str, tuple[bool, str, int, int, bytes]]:
    """name -> (is_package, origin, source mtime_ns, size, marshalled code)
    for every pure-Python module loaded in this process from a source file."""
    from importlib.machinery import SourceFileLoader
    out = {}
    for key, mod in sorted(sys.modules.items()):
        spec = getattr(mod, "__spec__", None)
        if spec is None or not isinstance(spec.loader, SourceFileLoader) or not spec.has_location:
            continue
        name = spec.name
        if key != name:
            continue  # __main__
        origin = spec.origin or ""
        if not origin.endswith(".py"):
            continue
        with open(origin, "rb") as f:
            st = os.fstat(f.fileno())
            source = f.read()
        out[name] = (spec.submodule_search_locations is not None, origin, st.st_mtime_ns,
                     st.st_size, marshal.dumps(compile_without_docstrings(source, origin)))
    return out


def compile_without_docstrings(source: bytes, path: str) -> CodeType:
    """The module's code as the interpreter compiles it, less its
    docstrings (as -OO, but asserts and `if __debug__` stay): a third of
    the time to unmarshal, and of the memory the code takes in every
    process.  Nothing of the product reads a docstring at run time (help
    texts are their own strings); a traceback still shows the source line."""
    import ast
    tree = ast.parse(source, path)
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            first = body[0] if body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
                    and isinstance(first.value.value, str):
                node.body = body[1:] or [ast.copy_location(ast.Pass(), first)]
    return compile(tree, path, "exec", dont_inherit=True)


def write(path: str) -> int:
    """Write the cache of every module the product imports to path; the
    number of modules."""
    _import_everything()
    found = entries()
    from .record import generated_sources
    table = {src: compile(src, "<record>", "exec") for src in generated_sources()}
    found[GENERATED] = (False, "", 0, 0, marshal.dumps(table))
    return write_entries(path, found) - 1


def write_entries(path: str, found: dict[str, tuple[bool, str, int, int, bytes]]) -> int:
    """Write the cache file of `entries()`'s modules to path, atomically."""
    index: dict[str, Entry] = {}
    blobs = []
    offset = 0
    for name, (is_pkg, origin, mtime_ns, size, blob) in found.items():
        index[name] = (is_pkg, origin, mtime_ns, size, offset, len(blob), _crc32(blob))
        blobs.append(blob)
        offset += len(blob)
    raw = marshal.dumps(index)
    data = b"".join([FORMAT_MAGIC, MAGIC_NUMBER, len(raw).to_bytes(4, "little"), raw,
                     _crc32(raw).to_bytes(4, "little"), *blobs])
    d = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(d, f".{os.path.basename(path)}.{os.urandom(6).hex()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return len(index)


def main(argv: list[str]) -> None:
    """setup.sh's call, with the launcher's interpreter flags and path."""
    if len(argv) != 1:
        sys.exit("usage: codecache FILE")
    print(f"codecache: {write(argv[0])} modules in {argv[0]}", file=sys.stderr)
