"""JSON for the short commands, without importing the `json` package.

`import json` costs ~14 ms of CPU on these VMs, a third of a `runsc-py
state` beyond the interpreter itself: json.decoder compiles regular
expressions at import (re, and with it enum).  What the short commands
read and write (state files, `state`, `list` and `ps` output, the sync
channel's messages) goes through the same C scanner and encoder `json`
uses (CPython's `_json`), with the same results: loads() accepts exactly
what json.loads accepts (str or UTF-8 bytes), dumps() writes what
json.dumps writes with its defaults (ensure_ascii, ", " and ": ") or, with
INDENT, what json.dumps(indent=INDENT) writes; SORT_KEYS and COMPACT
(separators "," and ":") as json's sort_keys and separators.
tests/test_lean_stdlib.py compares them.  A malformed document raises
json's own JSONDecodeError (a ValueError), with its message: `json` is
imported for that error only.  `create` and the sandbox use it too: json's
import is 4 modules and 6 regular expressions compiled.
"""

from __future__ import annotations

import _json

TYPE_CHECKING = False  # typing's, without importing typing
if TYPE_CHECKING:
    from typing import Any, NoReturn

_WS = " \t\n\r"
_CONSTANTS = {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}


class _Context:
    """What _json's scanner reads from json.JSONDecoder: its defaults."""
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = _CONSTANTS.__getitem__


_scan = _json.make_scanner(_Context())
_str = _json.encode_basestring_ascii


def loads(s: str | bytes | bytearray) -> Any:
    if isinstance(s, (bytes, bytearray)):
        s = bytes(s).decode("utf-8")  # what the runtime writes; json.loads also guesses UTF-16/32
    i = len(s) - len(s.lstrip(_WS))
    try:
        obj, end = _scan(s, i)
    except (StopIteration, ValueError, SystemError):
        # SystemError: _json raises json.decoder's JSONDecodeError, which
        # it looks up in sys.modules only; json not imported, it fails so.
        _stdlib_error(s)
    if s[end:].strip(_WS):
        _stdlib_error(s)
    return obj


def _stdlib_error(s: str) -> NoReturn:
    """Raise the error json.loads raises for s (its message: "Expecting
    ',' delimiter: line 1 column 9 (char 8)")."""
    import json
    json.loads(s)
    raise ValueError("invalid JSON")  # not reached: json refused it too


def _default(o: object) -> None:
    raise TypeError(f"Object of type {type(o).__name__} is not JSON serializable")


def _float(o: float) -> str:
    if o != o:
        return "NaN"
    if o in (float("inf"), float("-inf")):
        return "Infinity" if o > 0 else "-Infinity"
    return float.__repr__(o)


def dumps(obj: Any, indent: int | None = None, sort_keys: bool = False, compact: bool = False) -> str:
    if indent is None:
        # A fresh encoder per call, as json's: its markers (the circular
        # reference check) are the call's own.
        encode = _json.make_encoder({}, _default, _str, None, ":" if compact else ": ",
                                    "," if compact else ", ", sort_keys, False, True)
        return "".join(encode(obj, 0))
    if sort_keys or compact:
        raise ValueError("jsonio.dumps: indent with sort_keys or compact: use json")
    out: list[str] = []
    _indented(obj, indent, 0, out)
    return "".join(out)


def _key(k: object) -> str:
    if isinstance(k, str):
        return _str(k)
    if k is True or k is False or k is None:
        return '"' + {True: "true", False: "false", None: "null"}[k] + '"'
    if isinstance(k, int):
        return '"' + int.__repr__(k) + '"'
    if isinstance(k, float):
        return '"' + _float(k) + '"'
    raise TypeError(f"keys must be str, int, float, bool or None, not {type(k).__name__}")


def _indented(o: Any, indent: int, level: int, out: list[str]) -> None:
    """json.dumps(o, indent=INDENT): "," at line ends, ": " after keys."""
    if isinstance(o, str):
        out.append(_str(o))
    elif o is None:
        out.append("null")
    elif o is True:
        out.append("true")
    elif o is False:
        out.append("false")
    elif isinstance(o, int):
        out.append(int.__repr__(o))
    elif isinstance(o, float):
        out.append(_float(o))
    elif isinstance(o, dict):
        if not o:
            out.append("{}")
            return
        inner = "\n" + " " * (indent * (level + 1))
        sep = "{" + inner
        for k, v in o.items():
            out.append(sep)
            out.append(_key(k))
            out.append(": ")
            _indented(v, indent, level + 1, out)
            sep = "," + inner
        out.append("\n" + " " * (indent * level) + "}")
    elif isinstance(o, (list, tuple)):
        if not o:
            out.append("[]")
            return
        inner = "\n" + " " * (indent * (level + 1))
        sep = "[" + inner
        for v in o:
            out.append(sep)
            _indented(v, indent, level + 1, out)
            sep = "," + inner
        out.append("\n" + " " * (indent * level) + "]")
    else:
        _default(o)
