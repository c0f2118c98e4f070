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
from functools import lru_cache
from typing import TypeAlias


class MissingVariableError(Exception):
    """A variable outside `[[...]]` is unset or empty."""

    def __init__(self, name: str, names: tuple[str, ...] = ()) -> None:
        super().__init__(name)
        self.name = name
        self.names = names or (name,)  # every one the template misses, in order


Lookup = Callable[[str], "str | None"]


# A compiled template: literal text, a variable (name, from-char, to-char) or a group.
_Node: TypeAlias = "str | tuple[str, str, str] | list[_Node]"


def expand(template: str, lookup: Lookup) -> str:
    """Expand `template`; raises MissingVariableError for a required variable that is unset."""
    text, missing = _run(_compile(template), lookup)
    if missing:
        raise MissingVariableError(missing[0], tuple(missing))
    return text


def _run(nodes: list[_Node], lookup: Lookup) -> tuple[str, list[str]]:
    out: list[str] = []
    missing: list[str] = []
    for node in nodes:
        if isinstance(node, str):
            out.append(node)
        elif isinstance(node, tuple):
            name, source, target = node
            value = lookup(name)
            if not value:
                missing.append(name)
                continue
            out.append(value.replace(source, target) if source else value)
        else:
            inner, inner_missing = _run(node, lookup)
            if not inner_missing:
                out.append(inner)
    return "".join(out), missing


@lru_cache(maxsize=1024)
def _compile(template: str) -> list[_Node]:
    nodes, end = _parse(template, 0, nested=False)
    assert end == len(template)
    return nodes


def _parse(template: str, pos: int, *, nested: bool) -> tuple[list[_Node], int]:
    nodes: list[_Node] = []
    literal: list[str] = []
    n = len(template)

    def flush() -> None:
        if literal:
            nodes.append("".join(literal))
            literal.clear()

    while pos < n:
        char = template[pos]
        if char == "\\" and pos + 1 < n:
            literal.append(template[pos + 1])
            pos += 2
        elif template.startswith("[[", pos):
            flush()
            inner, pos = _parse(template, pos + 2, nested=True)
            nodes.append(inner)
        elif nested and template.startswith("]]", pos):
            flush()
            return nodes, pos + 2
        elif char == "%":
            close = template.find("%", pos + 1)
            if close < 0:
                literal.append(template[pos:])
                pos = n
                continue
            flush()
            name, _, mapping = template[pos + 1 : close].partition("/")
            source, _, target = mapping.partition("/")
            nodes.append((name, source[:1], target[:1]))
            pos = close + 1
        else:
            literal.append(char)
            pos += 1
    flush()
    return nodes, pos
