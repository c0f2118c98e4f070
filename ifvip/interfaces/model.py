"""The interfaces(5) model: frozen records of what a file says, each with its origin."""

from __future__ import annotations

from dataclasses import field
from functools import cached_property

from ifvip.errors import ConfigError
from ifvip.interfaces.sources import Dependency
from ifvip.record import record

# The four option names that may repeat; every other repeated option is joined with "\n"
# by ifupdown 0.8 (specs/ifupdown.md §1.2).
HOOKS = ("pre-up", "up", "down", "post-down")

# Parse-time aliases: ifquery prints them under the name they are mapped to.
HOOK_ALIASES = {"post-up": "up", "pre-down": "down"}

_set = object.__setattr__  # past the __setattr__ of a frozen record


# Origin and Option: slots, and an __init__ written out, as a big file has a million of
# each (record's shared __init__ takes twice as long).
@record(kw_only=False, slots=True)
class Origin:
    """Where something was written: the file as ifupdown names it, 1-based line and column."""

    path: str
    line: int
    col: int = 1

    def __init__(self, path: str, line: int, col: int = 1) -> None:
        _set(self, "path", path)
        _set(self, "line", line)
        _set(self, "col", col)

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}"


@record(kw_only=False, slots=True)
class Option:
    """One option of a stanza, after ifupdown's aliasing and joining of repeated names."""

    name: str
    value: str
    origin: Origin

    def __init__(self, name: str, value: str, origin: Origin) -> None:
        _set(self, "name", name)
        _set(self, "value", value)
        _set(self, "origin", origin)

    @property
    def is_hook(self) -> bool:
        return self.name in HOOKS


@record(kw_only=False)
class Iface:
    """An `iface` stanza: logical name, family, method and options in file order."""

    name: str
    family: str
    method: str
    options: tuple[Option, ...]
    origin: Origin
    inherits: str | None = None
    builtin: bool = False  # the implicit `iface lo inet loopback` ifupdown adds

    def get(self, name: str) -> str | None:
        """The value of the first option called `name`, as ifupdown's get_var() finds it."""
        for option in self.options:
            if option.name == name:
                return option.value
        return None

    def hooks(self, name: str) -> tuple[Option, ...]:
        return tuple(o for o in self.options if o.name == name)

    def __str__(self) -> str:
        return f"{self.name}/{self.family}"


@record(kw_only=False)
class Mapping:
    """A `mapping` stanza: globs on logical names, a script and its `map` lines."""

    patterns: tuple[str, ...]
    script: str | None
    maps: tuple[str, ...]
    origin: Origin


@record(kw_only=False)
class Rename:
    """One `rename CUR=NEW` pair."""

    current: str
    new: str
    origin: Origin


@record(kw_only=False)
class InterfacesFile:
    """Everything read from a top-level file and the files it sources.

    `ifupdown_ok` is False when ifupdown 0.8.41 itself would refuse the file (a parse error
    in the top-level file). `diagnostics` holds every error and warning found, in reading
    order; ifvip's strict commands refuse to act when any of them is an error.
    """

    path: str
    ifaces: tuple[Iface, ...]
    mappings: tuple[Mapping, ...] = ()
    classes: tuple[tuple[str, tuple[str, ...]], ...] = ()
    no_auto_down: tuple[str, ...] = ()
    no_scripts: tuple[str, ...] = ()
    renames: tuple[Rename, ...] = ()
    diagnostics: tuple[ConfigError, ...] = ()
    ifupdown_ok: bool = True
    files: tuple[str, ...] = field(default=())
    # Every look-up the reading depended on, so a cached reading can be re-validated.
    dependencies: tuple[Dependency, ...] = field(default=(), repr=False)

    def allowed(self, cls: str) -> tuple[str, ...] | None:
        """The interface names listed for class `cls` (`auto` included), or None if none."""
        for name, members in self.classes:
            if name == cls:
                return members
        return None

    def stanzas(self, logical: str) -> tuple[Iface, ...]:
        """Every stanza for a logical name, in file order (all families)."""
        return self._by_name.get(logical, ())

    @cached_property
    def _by_name(self) -> dict[str, tuple[Iface, ...]]:
        index: dict[str, list[Iface]] = {}
        for stanza in self.ifaces:
            index.setdefault(stanza.name, []).append(stanza)
        return {name: tuple(stanzas) for name, stanzas in index.items()}

    @property
    def errors(self) -> tuple[ConfigError, ...]:
        return tuple(d for d in self.diagnostics if not d.warning)

    @property
    def warnings(self) -> tuple[ConfigError, ...]:
        return tuple(d for d in self.diagnostics if d.warning)
