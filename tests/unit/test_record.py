"""ifvip/record.py: a @record class behaves as the frozen dataclass it replaces."""

from __future__ import annotations

import copy
import dataclasses
import pickle

import pytest

from ifvip.record import record


@record
class Base:
    name: str
    hidden: str = dataclasses.field(default="h", repr=False)
    note: str | None = dataclasses.field(default=None, compare=False)


@record
class Child(Base):
    count: int = 0


@dataclasses.dataclass(frozen=True, kw_only=True)
class Reference:
    name: str
    hidden: str = dataclasses.field(default="h", repr=False)
    note: str | None = dataclasses.field(default=None, compare=False)
    count: int = 0


@record(kw_only=False)
class Positional:
    a: int
    b: int = 2


def test_behaves_as_the_frozen_dataclass() -> None:
    mine = Child(name="x", note="n", count=3)
    theirs = Reference(name="x", note="n", count=3)
    assert repr(mine).replace("Child", "Reference") == repr(theirs)
    assert mine == Child(name="x", note="other", count=3)  # note does not compare
    assert mine != Child(name="x", count=4)
    assert hash(mine) == hash(Child(name="x", note="other", count=3))
    assert hash(mine) == hash(theirs)  # the same tuple of compared fields
    assert mine != theirs  # type: ignore[comparison-overlap]  # another class
    assert Base(name="x") != Child(name="x")
    with pytest.raises(dataclasses.FrozenInstanceError):
        mine.name = "y"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        mine.extra = 1  # type: ignore[attr-defined]
    with pytest.raises(dataclasses.FrozenInstanceError):
        del mine.count
    assert dataclasses.replace(mine, count=5) == Child(name="x", count=5)
    assert dataclasses.asdict(mine) == dataclasses.asdict(theirs)
    assert [f.name for f in dataclasses.fields(mine)] == ["name", "hidden", "note", "count"]
    assert pickle.loads(pickle.dumps(mine)) == mine
    with pytest.raises(TypeError):
        Child("x")  # type: ignore[call-arg]  # keyword-only


def test_positional_records() -> None:
    assert Positional(1) == Positional(1, 2)
    assert repr(Positional(1)) == "Positional(a=1, b=2)"
    match Positional(1):
        case Positional(a, b):
            assert (a, b) == (1, 2)


@record
class WithFactory:
    items: list[int] = dataclasses.field(default_factory=list)
    later: int = dataclasses.field(default=7, init=False)
    doubled: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "doubled", self.doubled * 2)


def test_init_as_a_dataclass_makes_it() -> None:
    first, second = WithFactory(), WithFactory(doubled=2)
    assert first.items == [] and first.items is not second.items
    assert (first.later, second.doubled) == (7, 4)
    with pytest.raises(TypeError, match="missing 1 required argument: 'name'"):
        Child()  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="unexpected keyword argument 'nope'"):
        Child(name="x", nope=1)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="takes 3 positional arguments but 4 were given"):
        Positional(1, 2, 3)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="multiple values for argument 'a'"):
        Positional(1, a=2)  # type: ignore[misc]
    with pytest.raises(TypeError):
        WithFactory(later=1)  # type: ignore[call-arg]


@record(kw_only=False, slots=True)
class Slotted:
    a: int
    b: str = "b"


@dataclasses.dataclass(frozen=True, slots=True)
class SlottedReference:
    a: int
    b: str = "b"


def test_slots_records_pickle_and_stay_frozen() -> None:
    mine, theirs = Slotted(1), SlottedReference(1)
    assert Slotted.__slots__ == SlottedReference.__slots__ == ("a", "b")
    assert not hasattr(mine, "__dict__")
    assert repr(mine).replace("Slotted", "SlottedReference") == repr(theirs)
    assert hash(mine) == hash(theirs)
    assert pickle.loads(pickle.dumps(mine)) == mine
    assert copy.copy(mine) == mine and copy.deepcopy(mine) == mine
    with pytest.raises(dataclasses.FrozenInstanceError):
        mine.a = 2  # type: ignore[misc]
    with pytest.raises((dataclasses.FrozenInstanceError, AttributeError, TypeError)):
        mine.extra = 1  # type: ignore[attr-defined]


@record(frozen=False)
class Mutable:
    items: list[int] = dataclasses.field(default_factory=list)
    ok: bool = True


def test_mutable_records() -> None:
    result = Mutable()
    result.ok = False
    result.items.append(1)
    assert result == Mutable(items=[1], ok=False)
    assert repr(result) == "Mutable(items=[1], ok=False)"
    assert Mutable.__hash__ is None  # as a dataclass with eq=True and frozen=False
    assert pickle.loads(pickle.dumps(result)) == result
