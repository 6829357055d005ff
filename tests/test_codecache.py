"""The launcher's file of compiled modules (runsc_py/codecache.py).

The installed launcher serves the product's imports from it; a module whose
source changed since the file was written is imported from its source; and
nothing in the file is used unless its checks pass: a tampered, corrupted,
foreign, badly owned or symlinked file (or entry) is ignored, and the
imports then come from the sources as if there were no file.  Each case runs
a fresh interpreter with the launcher's flags (-I -S).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from runsc_py import codecache

pytestmark = pytest.mark.runsc_py_only

REPO = Path(__file__).resolve().parent.parent
LAUNCHER = REPO / ".venv" / "bin" / "runsc-py"


def _python(code: str, *paths: Path | str) -> str:
    """Run code in `python -IS` with the repository and paths on sys.path;
    its stdout."""
    prelude = f"import sys\nsys.path += {[str(REPO), *map(str, paths)]!r}\n"
    res = subprocess.run([sys.executable, "-IS", "-c", prelude + code], capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    return res.stdout


@pytest.fixture
def probe(tmp_path: Path) -> Path:
    """A package of two modules, and a cache of them written by a process
    that imported them."""
    pkg = tmp_path / "src" / "ccprobe"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("WHERE = 'package'\n")
    (pkg / "one.py").write_text('"""Module one."""\nVALUE = 1\n\ndef fail():\n    raise ValueError(\'from one\')\n\n\n'
                                'def check(x):\n    """Asserts."""\n    assert x, "checked"\n    return x\n')
    (pkg / "two.py").write_text("VALUE = 2\n")
    cache = tmp_path / "probe.codecache"
    out = _python("import ccprobe.one, ccprobe.two\nfrom runsc_py import codecache\n"
                  f"found = {{k: v for k, v in codecache.entries().items() if k.startswith('ccprobe')}}\n"
                  f"print(codecache.write_entries({str(cache)!r}, found))", tmp_path / "src")
    assert out.strip() == "3"
    return tmp_path


def _served(probe: Path, cache: Path | None = None) -> dict[str, str]:
    """module -> 'cache' or 'source', and each one's VALUE, in a fresh
    interpreter that installed the cache."""
    cache = cache or probe / "probe.codecache"
    out = _python(
        "from runsc_py import codecache\n"
        f"c = codecache.install({str(cache)!r})\n"
        "import ccprobe.one, ccprobe.two\n"
        "for m in (ccprobe, ccprobe.one, ccprobe.two):\n"
        "    kind = 'cache' if isinstance(m.__loader__, codecache.CodeCache) else 'source'\n"
        "    print(m.__name__, kind, getattr(m, 'VALUE', m.__dict__.get('WHERE')), m.__file__)\n",
        probe / "src")
    res = {}
    for line in out.splitlines():
        name, kind, value, path = line.split()
        assert path == str(probe / "src" / name.replace(".", "/")) + ("/__init__.py" if name == "ccprobe" else ".py")
        res[name] = f"{kind}:{value}"
    return res


def _after_launcher(code: str) -> str:
    """Run the installed launcher's own lines up to run_and_exit (its path,
    its cache installed as `c`), then code; its stdout."""
    text = LAUNCHER.read_text()
    assert "codecache import install" in text, text
    head = text.split("from runsc_py.cli import run_and_exit")[0].split("\n", 1)[1]
    res = subprocess.run([sys.executable, "-IS", "-c", head.replace("install(", "c = install(") + code],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    return res.stdout


def test_the_installed_launcher_serves_imports_from_its_file() -> None:
    out = _after_launcher(  # what a `run` imports
        "import runsc_py.cli, runsc_py.commands.create, runsc_py.launch, sentry.call, gofer.server, ipaddress\n"
        "print(c is not None and c.served, type(sentry.call.__loader__).__name__,"
        " type(ipaddress.__loader__).__name__)\n")
    served, ours, stdlib = out.split()
    assert int(served) > 50 and ours == "CodeCache" and stdlib == "CodeCache", out


def test_modules_come_from_the_file_and_keep_their_source_path(probe: Path) -> None:
    assert _served(probe) == {"ccprobe": "cache:package", "ccprobe.one": "cache:1",
                              "ccprobe.two": "cache:2"}


def test_docstrings_are_left_out_and_asserts_kept(probe: Path) -> None:
    out = _python("from runsc_py import codecache\n"
                  f"codecache.install({str(probe / 'probe.codecache')!r})\n"
                  "import ccprobe.one\n"
                  "print(ccprobe.one.__doc__, ccprobe.one.check.__doc__, ccprobe.one.check(5))\n"
                  "try:\n    ccprobe.one.check(0)\nexcept AssertionError as e:\n    print(e)\n",
                  probe / "src")
    assert out.split() == ["None", "None", "5", "checked"], out


def test_a_traceback_shows_the_source_line(probe: Path) -> None:
    out = _python("from runsc_py import codecache\n"
                  f"codecache.install({str(probe / 'probe.codecache')!r})\n"
                  "import traceback, ccprobe.one\n"
                  "try:\n    ccprobe.one.fail()\n"
                  "except ValueError:\n    print(traceback.format_exc())\n", probe / "src")
    assert "raise ValueError('from one')" in out and str(probe / "src" / "ccprobe" / "one.py") in out, out


@pytest.mark.parametrize("edit", ["content", "touch"])
def test_an_edited_source_is_imported_from_the_source(probe: Path, edit: str) -> None:
    one = probe / "src" / "ccprobe" / "one.py"
    if edit == "content":
        one.write_text(one.read_text().replace("VALUE = 1", "VALUE = 11"))
        want = "source:11"
    else:  # same bytes, newer mtime: not the file the entry was made from
        st = one.stat()
        os.utime(one, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
        want = "source:1"
    assert _served(probe) == {"ccprobe": "cache:package", "ccprobe.one": want, "ccprobe.two": "cache:2"}


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x40
    path.write_bytes(bytes(data))


ALL_SOURCE = {"ccprobe": "source:package", "ccprobe.one": "source:1", "ccprobe.two": "source:2"}


def test_a_corrupted_entry_is_imported_from_its_source(probe: Path) -> None:
    cache = probe / "probe.codecache"
    c = codecache.load(str(cache))
    assert c is not None
    offset, length = c.index["ccprobe.one"][4:6]
    _flip(cache, c.base + offset + length // 2)
    assert _served(probe) == {"ccprobe": "cache:package", "ccprobe.one": "source:1",
                              "ccprobe.two": "cache:2"}


@pytest.mark.parametrize("damage", ["magic", "interpreter", "index", "truncated", "empty"])
def test_a_damaged_or_foreign_file_is_not_used(probe: Path, damage: str) -> None:
    cache = probe / "probe.codecache"
    if damage == "magic":
        _flip(cache, 0)
    elif damage == "interpreter":  # another Python's bytecode
        _flip(cache, 8)
    elif damage == "index":
        _flip(cache, 20)
    elif damage == "truncated":
        cache.write_bytes(cache.read_bytes()[:30])
    else:
        cache.write_bytes(b"")
    assert codecache.load(str(cache)) is None
    assert _served(probe) == ALL_SOURCE


@pytest.mark.parametrize("how", ["group-writable", "world-writable", "other-owner", "symlink", "fifo"])
def test_a_file_others_could_have_written_is_not_used(probe: Path, how: str) -> None:
    cache = probe / "probe.codecache"
    if how == "group-writable":
        cache.chmod(0o664)
    elif how == "world-writable":
        cache.chmod(0o646)
    elif how == "other-owner":
        os.chown(cache, 4242, 4242)
    elif how == "symlink":
        real = probe / "real.codecache"
        cache.rename(real)
        cache.symlink_to(real)
    else:
        cache.unlink()
        os.mkfifo(cache)
    assert codecache.load(str(cache)) is None  # a FIFO: not waited for
    assert _served(probe) == ALL_SOURCE


def test_a_replaced_file_is_not_read_with_the_old_index(probe: Path) -> None:
    """An index read, then the file replaced (setup.sh again): the entries
    of the new file are not read at the old offsets."""
    cache = probe / "probe.codecache"
    c = codecache.load(str(cache))
    assert c is not None
    other = probe / "other.codecache"
    other.write_bytes(cache.read_bytes())
    other.chmod(0o644)  # whatever the umask
    os.replace(other, cache)
    assert c._code(c.index["ccprobe.two"]) is None
    fresh = codecache.load(str(cache))
    assert fresh is not None and fresh._code(fresh.index["ccprobe.two"]) is not None


def test_a_missing_file_leaves_imports_as_they_are(probe: Path) -> None:
    assert codecache.install(str(probe / "none.codecache")) is None
    assert _served(probe, probe / "none.codecache") == ALL_SOURCE


def test_records_methods_come_compiled_from_the_file() -> None:
    """runsc_py/record.py compiles a Record's __init__ and __eq__ at their
    first call; the installed file has those of every Record class of the
    product, by their text; a class it does not know compiles its own."""
    out = _after_launcher(
        "import builtins\n"
        "n = [0]\nreal = builtins.compile\n"
        "def counting(*a, **k):\n    n[0] += 1\n    return real(*a, **k)\n"
        "builtins.compile = counting\n"
        "from sentry.creds import Creds\n"
        "a, b = Creds(0, 0, 0, 0, (), 0, 0), Creds(0, 0, 0, 0, (), 0, 0)\n"
        "known = n[0]\n"
        "from runsc_py.record import Record\n"
        "class New(Record):\n    x: int\n    y: str = 'q'\n"
        "print(a == b, known, New(1) == New(1), New(2).y, n[0] - known)\n")
    assert out.split() == ["True", "0", "True", "q", "2"], out
