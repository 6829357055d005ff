"""Plain data classes for the short commands, without the dataclasses module.

`dataclasses` imports inspect, and with it ast, dis and tokenize, and
compiles the methods of every class it decorates: more CPU than the rest of
a `state` or `kill`, which needs none of it.  A Record's fields are its
class annotations, in order (a subclass's after its base's); a field's
default is the class attribute of that name, and a dict, list or set default
is copied for each instance (dataclasses' default_factory); factory(f) as
a default calls f for each instance.  Records compare
by value; a frozen one refuses changes and hashes by value; replace() is
dataclasses.replace.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # typing.TYPE_CHECKING, whose import the short commands do without (test_startup.py)
if TYPE_CHECKING:
    from typing import Any, ClassVar


class Record:
    _fields: ClassVar[tuple[str, ...]] = ()
    _frozen: ClassVar[bool] = False

    def __init_subclass__(cls, frozen: bool = False, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        own = tuple(n for n, t in cls.__dict__.get("__annotations__", {}).items()
                    if not str(t).startswith("ClassVar"))
        cls._fields = tuple(dict.fromkeys(cls._fields + own))
        cls._frozen = frozen
        if frozen:
            cls.__hash__ = Record._hash  # type: ignore[method-assign]
            cls.__setattr__ = Record._refuse  # type: ignore[method-assign]
        # __init__ and __eq__ are compiled at their first call: a process
        # imports many more records than it makes (the sandbox imports the
        # whole sentry), and each compile costs ~0.2 ms here.  The fields'
        # order is checked now, as the class statement runs.
        if "__init__" not in cls.__dict__:
            _check_defaults(cls)
            cls.__init__ = _compiled_on_first_call(cls, "__init__", _make_init)  # type: ignore[misc]
        if "__eq__" not in cls.__dict__:
            cls.__eq__ = _compiled_on_first_call(cls, "__eq__", _make_eq)  # type: ignore[method-assign]
            if not frozen:
                cls.__hash__ = None  # type: ignore[assignment]  # as a dataclass with eq

    def _refuse(self, key: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen: cannot set {key!r}")

    def replace(self, **changes: Any) -> Any:
        """A copy with CHANGES (dataclasses.replace)."""
        return type(self)(**{**self.as_dict(), **changes})

    def as_dict(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in self._fields}


    def _hash(self) -> int:
        return hash(tuple(getattr(self, f) for f in self._fields))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(" + ", ".join(f"{f}={getattr(self, f)!r}" for f in self._fields) + ")"


_MISSING = object()


class factory:
    """A default made by calling FN for each instance (dataclasses'
    field(default_factory=FN)), for what is not a dict, list or set."""

    __slots__ = ("fn",)

    def __init__(self, fn: Any) -> None:
        self.fn = fn


def _compiled_on_first_call(cls: type, name: str, make: Any) -> Any:
    """A stand-in for cls.NAME that compiles it (make(cls)), puts it in the
    class in its place and calls it."""
    def first_call(self: Any, *args: Any, **kw: Any) -> Any:
        method = make(cls)
        type.__setattr__(cls, name, method)
        return method(self, *args, **kw)
    first_call.__qualname__ = f"{cls.__qualname__}.{name}"
    return first_call


def _defaults(cls: type) -> dict[str, Any]:
    own = [k for k in cls.__mro__[:cls.__mro__.index(Record)]]  # Record's methods are no defaults
    return {f: k.__dict__[f] for f in cls._fields for k in reversed(own) if f in k.__dict__}  # type: ignore[attr-defined]


def _check_defaults(cls: type) -> None:
    """A field without a default may not follow one with a default (the
    dataclasses rule), checked when the class is made."""
    defaults = _defaults(cls)
    seen_default = False
    for f in cls._fields:  # type: ignore[attr-defined]
        if f in defaults:
            seen_default = True
        elif seen_default:
            raise TypeError(f"{cls.__name__}: field {f!r} without a default follows one with a default")


def _make_init(cls: type) -> Any:
    """An __init__ with the fields as parameters, compiled once per class
    (one compile: dataclasses makes several, and imports inspect for them),
    so that a record is made as fast as a dataclass instance."""
    src, env = _init_source(cls)
    exec(_compile(src), env)  # our own field names: identifiers, as the class syntax checked
    init = env["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    return init


def _init_source(cls: type) -> tuple[str, dict[str, Any]]:
    """_make_init's text, and the names it uses."""
    fields = cls._fields  # type: ignore[attr-defined]
    defaults = _defaults(cls)
    params, body = [], []
    env: dict[str, Any] = {"_setattr": object.__setattr__, "_MISSING": _MISSING}
    seen_default = False
    for f in fields:
        if f not in defaults:
            if seen_default:
                raise TypeError(f"{cls.__name__}: field {f!r} without a default follows one with a default")
            params.append(f)
            body.append(f"_setattr(self, {f!r}, {f})")
            continue
        seen_default = True
        env[f"_d_{f}"] = d = defaults[f]
        if isinstance(d, (dict, list, set)):  # a fresh copy for each instance
            params.append(f"{f}=_MISSING")
            body.append(f"_setattr(self, {f!r}, _d_{f}.copy() if {f} is _MISSING else {f})")
        elif isinstance(d, factory):
            params.append(f"{f}=_MISSING")
            body.append(f"_setattr(self, {f!r}, _d_{f}.fn() if {f} is _MISSING else {f})")
        else:
            params.append(f"{f}=_d_{f}")
            body.append(f"_setattr(self, {f!r}, {f})")
    src = f"def __init__(self, {', '.join(params)}):\n    " + "\n    ".join(body or ["pass"]) + "\n"
    return src, env


def _make_eq(cls: type) -> Any:
    """__eq__ comparing the fields as one tuple (as dataclasses does):
    records are compared on hot paths (sentry/creds.py)."""
    env: dict[str, Any] = {}
    exec(_compile(_eq_source(cls)), env)  # our own field names, as in _make_init
    eq = env["__eq__"]
    eq.__qualname__ = f"{cls.__qualname__}.__eq__"
    return eq


def _eq_source(cls: type) -> str:
    fields = cls._fields  # type: ignore[attr-defined]
    mine = ", ".join(f"self.{f}" for f in fields)
    theirs = ", ".join(f"other.{f}" for f in fields)
    return ("def __eq__(self, other):\n"
            "    if other.__class__ is not self.__class__:\n        return NotImplemented\n"
            f"    return ({mine}{',' if fields else ''}) == ({theirs}{',' if fields else ''})\n")


def _compile(src: str) -> Any:
    """SRC's code: compiled when the launcher's code cache has it
    (runsc_py/codecache.py keeps every record's generated methods, by
    their text), else compiled now."""
    cache = sys.modules.get("runsc_py.codecache")  # imported by the launcher, if at all
    code = cache.generated(src) if cache is not None else None
    return code if code is not None else compile(src, "<record>", "exec")


def generated_sources() -> list[str]:
    """The text of the methods every Record class loaded in this process
    compiles at their first call (the code cache's builder keeps them
    compiled)."""
    out = []
    todo = list(Record.__subclasses__())
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if _generated(cls, "__init__"):
            out.append(_init_source(cls)[0])
        if _generated(cls, "__eq__"):
            out.append(_eq_source(cls))
    return out


def _generated(cls: type, name: str) -> bool:
    """cls.NAME is ours to generate: still its stand-in, or compiled by it."""
    f = cls.__dict__.get(name)
    code = getattr(f, "__code__", None)
    return getattr(f, "__name__", "") == "first_call" or (code is not None and code.co_filename == "<record>")
