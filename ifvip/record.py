"""`@record`: frozen, keyword-only dataclasses without generated code.

A `@dataclass(frozen=True)` compiles six methods with `exec` when its module is imported
(`__init__`, `__repr__`, `__eq__`, `__hash__`, `__setattr__`, `__delattr__`): about
0.5-1 ms a class, 34 ms for the ifupdown planner's 25 operation classes, on every `ifup`.
`@record` lets dataclasses collect the fields (no code generated) and gives the class
shared, ordinary methods with the same behaviour: `__init__` (keyword-only unless
`kw_only=False`, defaults and default factories, `__post_init__`), equality and hash over
the fields that `compare` (and `hash`), the dataclass repr (fields with `repr=True`), and
`dataclasses.FrozenInstanceError` on assigning or deleting a field. The class stays a
dataclass: `dataclasses.fields()`, `replace()`, `asdict()` and `field(...)` work as
before, and type checkers see a frozen dataclass (PEP 681).

`@record(frozen=False)` is a mutable dataclass (`eq=True`: unhashable, as dataclasses make
it); `@record(slots=True)` gives the class `__slots__` and pickles it as dataclasses do.
A method the class defines itself (an `__init__` written out for a class made a million
times, say) is kept.
"""

from __future__ import annotations

import dataclasses

TYPE_CHECKING = False  # typing is not imported at run time (`ifvip status` needs none)
if TYPE_CHECKING:
    from typing import Any, TypeVar, dataclass_transform

    T = TypeVar("T")
else:

    def dataclass_transform(**_):  # for type checkers only (PEP 681)
        return lambda function: function


_INIT = "__record_init__"  # (name, default, default factory) of each __init__ field
_POSITIONAL = "__record_positional__"  # the fields __init__ also takes by position
_LATER = "__record_later__"  # init=False fields with a default, set after the others
_COMPARE = "__record_compare__"
_HASH = "__record_hash__"
_REPR = "__record_repr__"


_set = object.__setattr__


def _init(self: Any, *args: Any, **kwargs: Any) -> None:
    cls = self.__class__
    positional = getattr(cls, _POSITIONAL)
    if len(args) > len(positional):
        raise TypeError(
            f"{cls.__qualname__}.__init__() takes {len(positional) + 1} positional arguments "
            f"but {len(args) + 1} were given"
        )
    given = kwargs
    if args:
        given = dict(zip(positional, args, strict=False))
        for key in kwargs:
            if key in given:
                raise TypeError(
                    f"{cls.__qualname__}.__init__() got multiple values for argument {key!r}"
                )
        given.update(kwargs)
    used = 0
    for field, default, factory in getattr(cls, _INIT):
        if field in given:
            value = given[field]
            used += 1
        elif default is not dataclasses.MISSING:
            value = default
        elif factory is not dataclasses.MISSING:
            value = factory()
        else:
            raise TypeError(f"{cls.__qualname__}.__init__() missing 1 required argument: {field!r}")
        _set(self, field, value)  # past __setattr__, which refuses every assignment
    if used < len(given):
        known = {field for field, _, _ in getattr(cls, _INIT)}
        unexpected = next(key for key in given if key not in known)
        raise TypeError(
            f"{cls.__qualname__}.__init__() got an unexpected keyword argument {unexpected!r}"
        )
    for field, default, factory in getattr(cls, _LATER):
        _set(self, field, factory() if default is dataclasses.MISSING else default)
    post_init = getattr(self, "__post_init__", None)
    if post_init is not None:
        post_init()


def _eq(self: Any, other: Any) -> Any:
    if other.__class__ is not self.__class__:
        return NotImplemented
    names = getattr(self.__class__, _COMPARE)
    return tuple(getattr(self, n) for n in names) == tuple(getattr(other, n) for n in names)


def _hash(self: Any) -> int:
    return hash(tuple(getattr(self, n) for n in getattr(self.__class__, _HASH)))


def _repr(self: Any) -> str:
    shown = ", ".join(f"{n}={getattr(self, n)!r}" for n in getattr(self.__class__, _REPR))
    return f"{self.__class__.__qualname__}({shown})"


def _setattr(self: Any, name: str, value: Any) -> None:
    raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")


def _delattr(self: Any, name: str) -> None:
    raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")


def _getstate(self: Any) -> list[Any]:  # slots: pickled as dataclasses pickle them
    return [getattr(self, f.name) for f in dataclasses.fields(self)]


def _setstate(self: Any, state: list[Any]) -> None:
    for f, value in zip(dataclasses.fields(self), state, strict=True):
        _set(self, f.name, value)


def _make(cls: type[T], kw_only: bool, frozen: bool, slots: bool) -> type[T]:
    body = dict(cls.__dict__)
    explicit_hash = "__hash__" in body and not (body["__hash__"] is None and "__eq__" in body)
    undocumented = not cls.__doc__
    if undocumented:  # else dataclasses calls inspect.signature() for one: ms a class
        cls.__doc__ = cls.__name__
    made = dataclasses.dataclass(
        cls, init=False, kw_only=kw_only, eq=False, repr=False, slots=slots
    )
    fields = dataclasses.fields(made)  # type: ignore[arg-type]
    if undocumented:
        made.__doc__ = f"{cls.__name__}({', '.join(f.name for f in fields if f.init)})"
    setattr(made, _INIT, tuple((f.name, f.default, f.default_factory) for f in fields if f.init))
    setattr(made, _POSITIONAL, tuple(f.name for f in fields if f.init and not f.kw_only))
    later = [f for f in fields if not f.init]
    for f in later:
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise TypeError(f"{cls.__qualname__}.{f.name}: init=False needs a default")
    setattr(made, _LATER, tuple((f.name, f.default, f.default_factory) for f in later))
    setattr(made, _COMPARE, tuple(f.name for f in fields if f.compare))
    hashed = [f.name for f in fields if (f.compare if f.hash is None else f.hash)]
    setattr(made, _HASH, tuple(hashed))
    setattr(made, _REPR, tuple(f.name for f in fields if f.repr))
    for name, method in (("__init__", _init), ("__repr__", _repr), ("__eq__", _eq)):
        if name not in body:
            setattr(made, name, method)
    if not explicit_hash and "__eq__" not in body:
        made.__hash__ = _hash if frozen else None  # type: ignore[assignment]
    if frozen:
        made.__setattr__ = _setattr  # type: ignore[method-assign]
        made.__delattr__ = _delattr  # type: ignore[method-assign]
        if slots:
            pickling: tuple[tuple[str, Any], ...] = (
                ("__getstate__", _getstate),
                ("__setstate__", _setstate),
            )
            for name, function in pickling:
                if name not in body:
                    setattr(made, name, function)
    return made


@dataclass_transform(
    frozen_default=True,
    kw_only_default=True,
    field_specifiers=(dataclasses.field, dataclasses.Field),
)
def record(
    cls: type[T] | None = None,
    /,
    *,
    kw_only: bool = True,
    frozen: bool = True,
    slots: bool = False,
) -> Any:
    """`@record` / `@record(kw_only=False, frozen=False, slots=True)`: a dataclass (see the
    module)."""
    if cls is None:
        return lambda c: _make(c, kw_only, frozen, slots)
    return _make(cls, kw_only, frozen, slots)
