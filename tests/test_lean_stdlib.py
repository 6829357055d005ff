"""What the short commands use instead of stdlib modules whose import
costs them a third of their CPU (tests/test_startup.py checks they are not
imported): runsc_py/jsonio.py reads and writes exactly what the json
package does, runsc_py/signals.py names signals as signal.Signals does."""

from __future__ import annotations

import json
import math

import pytest

from runsc_py import jsonio

DOCS = [
    {}, [], "", 0, -1, 2**70, 1.5, -0.0, 1e300, True, False, None,
    {"ociVersion": "1.1.0", "id": "c1", "pid": 4518, "status": "running", "bundle": "/b",
     "annotations": {"a": "b", "\u00e9t\u00e9": "\u2603 snow", "q": "\"\\\n\t\u0001"}},
    {"nested": {"list": [1, [2, [3, {}]], [], {"k": None}], "t": (1, 2)}, "e": [], "f": {}},
    ["\ud83d\ude00", "tab\there", "x" * 1000],
    {"1": 1, "2": [True, False, None]},
]


@pytest.mark.parametrize("doc", DOCS, ids=range(len(DOCS)))
def test_dumps_is_json_dumps(doc: object) -> None:
    assert jsonio.dumps(doc) == json.dumps(doc)
    for indent in (1, 2, 4):
        assert jsonio.dumps(doc, indent=indent) == json.dumps(doc, indent=indent)


@pytest.mark.parametrize("doc", DOCS, ids=range(len(DOCS)))
def test_loads_is_json_loads(doc: object) -> None:
    for text in (json.dumps(doc), json.dumps(doc, indent=2), "  \n" + json.dumps(doc) + "\n\t "):
        assert jsonio.loads(text) == json.loads(text)
        assert jsonio.loads(text.encode()) == json.loads(text.encode())


def test_non_finite_floats_and_keys_as_json_writes_them() -> None:
    doc = {"n": float("nan"), "i": float("inf"), "m": float("-inf")}
    assert jsonio.dumps(doc) == json.dumps(doc)
    assert jsonio.dumps(doc, indent=2) == json.dumps(doc, indent=2)
    back = jsonio.loads(json.dumps(doc))
    assert math.isnan(back["n"]) and back["i"] == math.inf and back["m"] == -math.inf
    keys = {7: "a", True: "b", None: "c", 2.5: "d"}
    assert jsonio.dumps(keys, indent=2) == json.dumps(keys, indent=2)
    assert jsonio.dumps(keys) == json.dumps(keys)


@pytest.mark.parametrize("bad", ["", "   ", "{", '{"a": 1', '{"a": 1}}', "[1,]", "nul", '"\x01"', "{'a': 1}", "1 2"])
def test_malformed_is_a_value_error_as_in_json(bad: str) -> None:
    with pytest.raises(json.JSONDecodeError):
        json.loads(bad)
    with pytest.raises(ValueError):
        jsonio.loads(bad)


@pytest.mark.parametrize("doc", DOCS, ids=range(len(DOCS)))
def test_sorted_and_compact_dumps_are_json_s(doc: object) -> None:
    assert jsonio.dumps(doc, sort_keys=True) == json.dumps(doc, sort_keys=True)
    assert jsonio.dumps(doc, compact=True) == json.dumps(doc, separators=(",", ":"))


BAD = ["", "   ", "{", '{"a": 1', '{"a": 1}}', "[1,]", "nul", '"\x01"', "{'a': 1}", "1 2", '{"a" 1}']


def test_errors_are_json_s_own_without_json_imported() -> None:
    """In a process that has not imported json (the CLI's), a malformed
    document raises json's JSONDecodeError with json's message."""
    import subprocess
    import sys
    from pathlib import Path
    code = ("import sys\nsys.path.insert(0, %r)\nfrom runsc_py import jsonio\n"
            "for bad in %r:\n"
            "    try:\n        jsonio.loads(bad)\n"
            "    except ValueError as e:\n        print(type(e).__name__, e)\n"
            % (str(Path(__file__).resolve().parent.parent), BAD))
    out = subprocess.run([sys.executable, "-IS", "-c", code], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    want = []
    for bad in BAD:
        try:
            json.loads(bad)
        except json.JSONDecodeError as e:
            want.append(f"JSONDecodeError {e}")
    assert out == want


def test_unserializable_and_circular_are_refused_as_in_json() -> None:
    with pytest.raises(TypeError):
        jsonio.dumps({"s": {1, 2}})
    with pytest.raises(TypeError):
        jsonio.dumps({"s": object()}, indent=2)
    loop: list[object] = []
    loop.append(loop)
    with pytest.raises(ValueError):
        jsonio.dumps(loop)


def test_signal_names_are_signal_modules() -> None:
    """runsc_py/signals.py names signals from `_signal` (no enum import):
    every name and alias of signal.Signals, with and without SIG, in any
    case; numbers; SIGRTMIN+N / SIGRTMAX-N; refusals as before."""
    import signal

    from runsc_py.errors import RuntimeFailure
    from runsc_py.signals import NAMES, parse_signal
    assert NAMES == {**{s.name: int(s) for s in signal.Signals},
                     **{a: int(getattr(signal, a)) for a in ("SIGIOT", "SIGPOLL", "SIGCLD")}}
    for name, number in NAMES.items():
        assert parse_signal(name) == number
        assert parse_signal(name[3:].lower()) == number
    assert parse_signal("9") == 9
    assert parse_signal("RTMIN+2") == signal.SIGRTMIN + 2
    assert parse_signal("SIGRTMAX-1") == signal.SIGRTMAX - 1
    for bad in ("0", "65", "NOPE", "SIG_DFL", "RTMIN+99", ""):
        with pytest.raises(RuntimeFailure):
            parse_signal(bad)
