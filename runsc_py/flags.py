"""Command-line parsing without importing argparse on the common path.

containerd runs the binary several times per container (create, start,
state, delete...), and argparse costs more than the rest of a `state`: its
import pulls in gettext, and building a parser formats every option's help
(textwrap, shutil, locale lookups).  `Parser` takes the same
`add_argument` calls as argparse.ArgumentParser (the subset the commands
use) and parses the command lines that clients send: options known by
their exact name (`--root DIR`, `--root=DIR`, `-b DIR`), positionals, an
optional one (nargs="?"), a remainder.  Anything else (help, an unknown or
abbreviated option, a missing or extra argument, a bad value, `--`) is
handed to a real argparse parser built from the same calls, so help texts
and error messages are argparse's, word for word.  tests/test_flags.py
holds both to the same answers.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # typing.TYPE_CHECKING, whose import the short commands do without (test_startup.py)
if TYPE_CHECKING:
    from typing import Any

# types.SimpleNamespace, without importing types (~0.3 ms of every command).
SimpleNamespace = type(sys.implementation)

# argparse's own values for these constants (checked by tests/test_flags.py),
# so that the commands' add_argument calls need no argparse import.
SUPPRESS = "==SUPPRESS=="
REMAINDER = "..."
OPTIONAL = "?"

_STORE, _STORE_TRUE, _STORE_FALSE, _STORE_CONST, _APPEND = (
    "store", "store_true", "store_false", "store_const", "append")
_KNOWN_ACTIONS = {_STORE, _STORE_TRUE, _STORE_FALSE, _STORE_CONST, _APPEND}
_KNOWN_KWARGS = {"action", "default", "type", "choices", "dest", "help", "metavar", "nargs", "const"}


class _Fallback(Exception):
    """This command line is argparse's to parse (or to refuse)."""


class _Action:
    __slots__ = ("names", "kind", "dest", "default", "type", "choices", "nargs", "const")

    def __init__(self, names: tuple[str, ...], kw: dict[str, Any]) -> None:
        self.names = names
        self.kind = kw.get("action", _STORE)
        self.nargs = kw.get("nargs")
        self.type = kw.get("type")
        self.choices = kw.get("choices")
        self.const = kw.get("const")
        if names[0].startswith("-"):
            longs = [n for n in names if n.startswith("--")]
            self.dest = kw.get("dest") or (longs or list(names))[0].lstrip("-").replace("-", "_")
        else:
            self.dest = kw.get("dest") or names[0]
        default = kw.get("default")
        if "default" not in kw:
            default = {_STORE_TRUE: False, _STORE_FALSE: True}.get(self.kind)
        self.default = default

    @property
    def takes_value(self) -> bool:
        return self.kind in (_STORE, _APPEND)


class Parser:
    """The add_argument/parse_args subset of argparse.ArgumentParser."""

    def __init__(self, prog: str | None = None, description: str | None = None,
                 add_help: bool = True) -> None:
        self._init = {"prog": prog, "description": description, "add_help": add_help}
        self._calls: list[tuple[tuple[str, ...], dict[str, Any]]] = []
        self._options: dict[str, _Action] = {}
        self._positionals: list[_Action] = []
        self._actions: list[_Action] = []
        self._fast = True  # False once a call outside the subset was made

    def add_argument(self, *names: str, **kw: Any) -> None:
        self._calls.append((names, kw))
        if set(kw) - _KNOWN_KWARGS or kw.get("action", _STORE) not in _KNOWN_ACTIONS \
                or kw.get("nargs") not in (None, OPTIONAL, REMAINDER) \
                or kw.get("type") not in (None, int, str):
            self._fast = False
            return
        act = _Action(names, kw)
        self._actions.append(act)
        if names[0].startswith("-"):
            if act.nargs is not None:
                self._fast = False
            for n in names:
                self._options[n] = act
        else:
            self._positionals.append(act)

    def value_options(self) -> set[str]:
        """The option strings that take a value."""
        return {n for n, a in self._options.items() if a.takes_value}

    def argparse_parser(self) -> Any:
        """The same parser, as argparse's (for help and error messages)."""
        import argparse
        p = argparse.ArgumentParser(**self._init)
        for names, kw in self._calls:
            # argparse tests SUPPRESS by identity (help, default): ours is
            # an equal string, not the same object.
            p.add_argument(*names, **{k: argparse.SUPPRESS if isinstance(v, str) and v == SUPPRESS else v
                                      for k, v in kw.items()})
        return p

    def print_help(self) -> None:
        self.argparse_parser().print_help()

    def parse_args(self, argv: list[str]) -> Any:
        """A namespace of the values; argparse's exit (status 2, its
        message) for a command line it refuses; its help for -h."""
        if self._fast:
            try:
                return self._parse(argv)
            except _Fallback:
                pass
        return self.argparse_parser().parse_args(argv)

    # -- the fast path -----------------------------------------------------------

    def _parse(self, argv: list[str]) -> SimpleNamespace:
        ns: dict[str, Any] = {}
        for act in self._actions:  # the first action of a dest sets its default
            if act.dest not in ns:
                d = act.default
                # argparse converts a string default with the action's type
                ns[act.dest] = list(d) if isinstance(d, list) else \
                    self._convert(act, d) if isinstance(d, str) and act.type is int else d
        pending = list(self._positionals)
        i = 0
        while i < len(argv):
            arg = argv[i]
            act, value = self._option(arg)
            if act is not None:
                if act.takes_value and value is None:
                    i += 1
                    if i >= len(argv) or argv[i].startswith("-") and argv[i] != "-":
                        raise _Fallback  # no value, or one argparse reads otherwise
                    value = argv[i]
                elif not act.takes_value and value is not None:
                    raise _Fallback  # --flag=value for a flag without one
                self._apply(ns, act, value)
                i += 1
                continue
            # Positionals from here, matched as argparse's consume_positionals
            # does: in order, a plain one takes one word, an optional one
            # takes one if the next word is not an option (and is used up
            # either way), a remainder takes every word left, options too.
            while pending:
                act = pending[0]
                if act.nargs == REMAINDER:
                    if "--" in argv[i:]:
                        raise _Fallback  # argparse drops a "--" there (sometimes)
                    ns[act.dest] = list(argv[i:])
                    return SimpleNamespace(**ns)
                if i < len(argv) and self._option(argv[i])[0] is None:
                    ns[act.dest] = self._convert(act, argv[i])
                    i += 1
                elif act.nargs is None:
                    break
                pending.pop(0)
            if i < len(argv) and self._option(argv[i])[0] is None:
                raise _Fallback  # more positionals than the command takes
        for act in pending:
            if act.nargs is None:
                raise _Fallback  # a required positional is missing
            if act.nargs == REMAINDER:
                ns[act.dest] = []
        return SimpleNamespace(**ns)

    def _option(self, arg: str) -> tuple[_Action | None, str | None]:
        """(the option ARG names, its =value) or (None, None) for a
        positional; _Fallback for an option-like word this parser does not
        know exactly (argparse may take it as an abbreviation, a cluster of
        short flags, a negative number, or refuse it)."""
        if not arg.startswith("-") or arg == "-":
            return None, None
        if arg == "--" or arg in ("-h", "--help") and arg not in self._options:
            raise _Fallback
        act = self._options.get(arg)
        if act is not None:
            return act, None
        name, eq, value = arg.partition("=")
        act = self._options.get(name) if eq else None
        if act is None:
            raise _Fallback
        return act, value

    def _apply(self, ns: dict[str, Any], act: _Action, value: str | None) -> None:
        if act.kind == _STORE_TRUE:
            ns[act.dest] = True
        elif act.kind == _STORE_FALSE:
            ns[act.dest] = False
        elif act.kind == _STORE_CONST:
            ns[act.dest] = act.const
        elif act.kind == _APPEND:
            ns[act.dest] = [*(ns[act.dest] or []), self._convert(act, value or "")]
        else:
            ns[act.dest] = self._convert(act, value or "")

    @staticmethod
    def _convert(act: _Action, value: str) -> Any:
        if act.type is int:
            try:
                v: Any = int(value)
            except ValueError:
                raise _Fallback from None
        else:
            v = value
        if act.choices is not None and v not in act.choices:
            raise _Fallback
        return v
