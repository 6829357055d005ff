"""The CLI's logging (runsc_py/log.py): the lines containerd, podman and a
reader of --log see, without the standard `logging` in the process.

Each case is a fresh interpreter (the settings are process-wide, as the
CLI sets them once), with the launcher's flags.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.runsc_py_only

REPO = Path(__file__).resolve().parent.parent


def _run(code: str) -> subprocess.CompletedProcess[str]:
    prelude = f"import sys\nsys.path.insert(0, {str(REPO)!r})\nfrom runsc_py import log\n"
    res = subprocess.run([sys.executable, "-IS", "-c", prelude + code], capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 0, res.stderr
    return res


SCRIPT = """
a = log.get_logger("runsc_py.x")
a.debug("hidden %d", 1)
a.info("hidden too")
a.warning("careful: %s", "\\u00e9t\\u00e9 \\"q\\"")
a.error("failed: %(what)s", {"what": "it"})
a.log(log.ERROR, "bad format %d", "x")
try:
    try:
        raise KeyError("k")
    except KeyError as e:
        raise RuntimeError("outer") from e
except RuntimeError:
    a.exception("caught")
print("logging" in sys.modules, "traceback" in sys.modules)
"""


def test_json_lines_as_containerd_reads_them(tmp_path: Path) -> None:
    f = tmp_path / "log.json"
    res = _run(f"log.setup({str(f)!r}, 'json', False)\n" + SCRIPT)
    assert res.stdout.split() == ["False", "True"]  # traceback only for the exception's text
    lines = [json.loads(x) for x in f.read_text().splitlines()]
    assert [x["level"] for x in lines] == ["warning", "error", "error", "error"]
    assert lines[0]["msg"] == 'careful: \u00e9t\u00e9 "q"'
    assert lines[1]["msg"] == "failed: it"
    assert lines[2]["msg"].startswith("bad format %d")  # a bad record is still a line
    exc = lines[3]["msg"]
    assert exc.startswith("caught\nTraceback (most recent call last):") and "KeyError: 'k'" in exc \
        and "direct cause" in exc and exc.endswith("RuntimeError: outer"), exc
    for x in lines:
        assert set(x) == {"level", "msg", "time"}
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", x["time"]), x
    assert f.read_text().isascii()


def test_text_lines_and_debug(tmp_path: Path) -> None:
    f = tmp_path / "log.txt"
    res = _run(f"log.setup({str(f)!r}, 'text', True)\n" + SCRIPT)
    lines = f.read_text().splitlines()
    assert re.fullmatch(r'time="[^"]+Z" level=debug msg="hidden 1" pid=\d+', lines[0]), lines[0]
    assert lines[1].split(" ", 1)[1].startswith('level=info msg="hidden too"')
    assert 'level=warning msg="careful: \\u00e9t\\u00e9 \\"q\\""' in lines[2]
    assert res.stderr == ""  # with --log, nothing on stderr


def test_without_a_log_file_only_debug_goes_to_stderr() -> None:
    res = _run("log.setup(None, 'text', False)\n" + SCRIPT)
    assert res.stderr == ""
    res = _run("log.setup(None, 'text', True)\n" + SCRIPT)
    assert "level=debug" in res.stderr and "level=error" in res.stderr


def test_deferred_file_is_made_at_the_first_record_only(tmp_path: Path) -> None:
    f = tmp_path / "log.json"
    _run(f"log.setup({str(f)!r}, 'json', False, defer=True)\nlog.get_logger('a').info('not written')\n")
    assert not f.exists()
    _run(f"log.setup({str(f)!r}, 'json', False, defer=True)\nlog.get_logger('a').error('now')\n")
    assert json.loads(f.read_text())["msg"] == "now"


def test_levels_by_name_and_bare_lines(tmp_path: Path) -> None:
    """sentry.strace and sentry.net log at INFO while the rest stays at
    WARNING; the strace JSON lines are written bare."""
    f = tmp_path / "log.json"
    _run(f"log.setup({str(f)!r}, 'json', False)\n"
         "log.get_logger('sentry.net').setLevel(log.INFO)\n"
         "log.get_logger('sentry.net.child').info('child')\n"
         "log.get_logger('sentry.netguard').info('not a child')\n"
         "s = log.get_logger('sentry.strace'); s.setLevel(log.INFO); s.bare = True\n"
         "s.info('%s', '{\"pid\": 3}')\n")
    lines = f.read_text().splitlines()
    assert json.loads(lines[0])["msg"] == "child"
    assert lines[1] == '{"pid": 3}'
    assert len(lines) == 2


def test_exception_text_by_hand_when_traceback_cannot_be_imported() -> None:
    """The confined sandbox cannot import: the traceback is written from
    the frames, as traceback would without source lines."""
    res = _run("import builtins\nreal = builtins.__import__\n"
               "def refuse(name, *a, **k):\n"
               "    if name == 'traceback':\n        raise ImportError(name)\n"
               "    return real(name, *a, **k)\n"
               "builtins.__import__ = refuse\n"
               "def inner():\n    raise ValueError('v')\n"
               "try:\n    inner()\nexcept ValueError:\n    print(log.format_exception(True))\n")
    out = res.stdout.rstrip("\n").splitlines()
    assert out[0] == "Traceback (most recent call last):"
    assert re.fullmatch(r'  File "<string>", line \d+, in inner', out[-2]), out
    assert out[-1] == "ValueError: v"


def test_as_a_library_records_go_to_the_standard_logging() -> None:
    """No setup (tests, benchmarks): logging's handlers see the records."""
    res = _run("import logging\nlogging.basicConfig(level=logging.INFO, format='%(name)s %(message)s')\n"
               "log.get_logger('runsc_py.y').info('seen %d', 2)\n"
               "print(log.get_logger('runsc_py.y').isEnabledFor(log.DEBUG))\n")
    assert res.stderr.strip() == "runsc_py.y seen 2" and res.stdout.strip() == "False"
