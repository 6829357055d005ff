"""runsc_py/record.py: the dataclass subset the runtime and the sentry use."""

from __future__ import annotations

from typing import ClassVar

import pytest

from runsc_py.record import Record


class Point(Record, frozen=True):
    x: int
    y: int = 0
    tags: tuple[str, ...] = ()


class Bag(Record):
    name: str
    items: list[int] = []
    meta: dict[str, int] = {}
    KIND: ClassVar[str] = "bag"
    LIMIT = 3  # not annotated: no field

    def total(self) -> int:
        return sum(self.items)


class Sub(Bag):
    extra: int = 1


def test_fields_and_defaults() -> None:
    assert Point._fields == ("x", "y", "tags")
    assert Bag._fields == ("name", "items", "meta")
    assert Sub._fields == ("name", "items", "meta", "extra")
    p = Point(1)
    assert (p.x, p.y, p.tags) == (1, 0, ())
    assert Point(1, 2) == Point(x=1, y=2) != Point(1, 3)
    assert repr(Point(1, 2)) == "Point(x=1, y=2, tags=())"
    with pytest.raises(TypeError):
        Point()
    with pytest.raises(TypeError):
        Point(1, z=3)
    with pytest.raises(TypeError):
        Point(1, 2, (), 4)


def test_mutable_defaults_are_per_instance() -> None:
    a, b = Bag("a"), Bag("b")
    a.items.append(1)
    a.meta["k"] = 1
    assert b.items == [] and b.meta == {}
    assert Bag("a", [1], {"k": 1}) == a
    s = Sub("s", extra=5)
    assert s.total() == 0 and s.extra == 5 and s.KIND == "bag"


def test_frozen_records_refuse_changes_and_hash_by_value() -> None:
    p = Point(1, 2)
    with pytest.raises(AttributeError):
        p.x = 5  # type: ignore[misc]
    assert hash(p) == hash(Point(1, 2))
    assert {Point(1, 2), Point(1, 2)} == {p}
    with pytest.raises(TypeError):
        hash(Bag("a"))  # a mutable record is not hashable, as a dataclass
    b = Bag("a")
    b.name = "b"
    assert b.name == "b"


def test_replace() -> None:
    p = Point(1, 2, ("t",))
    q = p.replace(y=5)
    assert q == Point(1, 5, ("t",)) and p == Point(1, 2, ("t",))
    with pytest.raises(TypeError):
        p.replace(z=1)


def test_a_field_without_default_after_one_with_is_refused() -> None:
    with pytest.raises(TypeError):
        class Bad(Record):  # noqa: F841
            a: int = 0
            b: int


def test_set_and_factory_defaults_are_per_instance() -> None:
    import threading

    from runsc_py.record import factory

    class Held(Record):
        names: set[str] = set()
        lock: threading.Lock = factory(threading.Lock)

    a, b = Held(), Held()
    a.names.add("x")
    assert b.names == set() and a.lock is not b.lock
    own = threading.Lock()
    assert Held(lock=own).lock is own
