"""ifupdown's command templates: `%var%`, `%var/a/b%`, `[[optional]]` and `\\x` escapes.

The method definitions (`methods.py`) are written in the syntax of ifupdown's `.defn`
files and expanded the way execute.c's `parse()` does (specs/ifupdown.md §2): a `%name%`
becomes the option's value (`%iface%` the physical name), `%name/a/b%` replaces every
character `a` by `b`, a `[[...]]` group vanishes when any variable inside it is unset or
empty, and a variable missing outside any group makes the whole method unusable
("missing required variable").
"""

from __future__ import annotations

from collections.abc import Callable


class MissingVariableError(Exception):
    """A variable outside `[[...]]` is unset or empty."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


Lookup = Callable[[str], "str | None"]


def expand(template: str, lookup: Lookup) -> str:
    """Expand `template`; raises MissingVariableError for a required variable that is unset."""
    text, missing, end = _expand(template, 0, lookup, nested=False)
    assert end == len(template)
    if missing is not None:
        raise MissingVariableError(missing)
    return text


def _expand(
    template: str, pos: int, lookup: Lookup, *, nested: bool
) -> tuple[str, str | None, int]:
    out: list[str] = []
    missing: str | None = None
    n = len(template)
    while pos < n:
        char = template[pos]
        if char == "\\" and pos + 1 < n:
            out.append(template[pos + 1])
            pos += 2
        elif template.startswith("[[", pos):
            inner, inner_missing, pos = _expand(template, pos + 2, lookup, nested=True)
            if inner_missing is None:
                out.append(inner)
        elif nested and template.startswith("]]", pos):
            return "".join(out), missing, pos + 2
        elif char == "%":
            close = template.find("%", pos + 1)
            if close < 0:
                out.append(template[pos:])
                pos = n
                continue
            value, name = _variable(template[pos + 1 : close], lookup)
            if value is None or value == "":
                missing = missing or name
            else:
                out.append(value)
            pos = close + 1
        else:
            out.append(char)
            pos += 1
    return "".join(out), missing, pos


def _variable(spec: str, lookup: Lookup) -> tuple[str | None, str]:
    name, _, mapping = spec.partition("/")
    value = lookup(name)
    if value is not None and mapping:
        source, _, target = mapping.partition("/")
        if source:
            value = value.replace(source[0], target[:1])
    return value, name
