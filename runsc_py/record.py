"""Plain data classes for the short commands, without the dataclasses module.

`dataclasses` imports inspect, and with it ast, dis and tokenize, and
compiles the methods of every class it decorates: more CPU than the rest of
a `state` or `kill`, which needs none of it.  A Record's fields are its
class annotations, in order (a subclass's after its base's); a field's
default is the class attribute of that name, and a dict or list default is
copied for each instance (dataclasses' default_factory).  Records compare
by value; a frozen one refuses changes and hashes by value.
"""

from __future__ import annotations

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

    def __init__(self, *args: Any, **kw: Any) -> None:
        name = type(self).__name__
        if len(args) > len(self._fields):
            raise TypeError(f"{name}: {len(args)} arguments for {len(self._fields)} fields")
        values = dict(zip(self._fields, args))
        for k, v in kw.items():
            if k not in self._fields:
                raise TypeError(f"{name}: unknown field {k!r}")
            if k in values:
                raise TypeError(f"{name}: {k!r} given twice")
            values[k] = v
        for f in self._fields:
            if f not in values:
                if not hasattr(type(self), f):
                    raise TypeError(f"{name}: missing field {f!r}")
                d = getattr(type(self), f)
                values[f] = d.copy() if isinstance(d, (dict, list)) else d
            object.__setattr__(self, f, values[f])

    def __setattr__(self, key: str, value: Any) -> None:
        if self._frozen:
            raise AttributeError(f"{type(self).__name__} is frozen: cannot set {key!r}")
        object.__setattr__(self, key, value)

    def as_dict(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in self._fields}

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self.as_dict() == other.as_dict()  # type: ignore[attr-defined]

    __hash__ = None  # type: ignore[assignment]  # mutable records are not hashable

    def _hash(self) -> int:
        return hash(tuple(getattr(self, f) for f in self._fields))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(" + ", ".join(f"{f}={getattr(self, f)!r}" for f in self._fields) + ")"
