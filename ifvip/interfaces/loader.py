"""Read an interfaces(5) file and the files it sources, exactly as ifupdown 0.8.41 does.

The line discipline is config.c's `get_line()` (specs/ifupdown.md §1): leading white space
is dropped, a line starting with `#` is a comment and is never continued, a line whose
last character is `\\` is joined to the next raw line with nothing in between, and
trailing white space is dropped last. The statements are then parsed by grammar.py and
interpreted here in order, with ifupdown's semantics for stanzas, `inherits`, repeated
options, `source`/`source-directory`, the recursion guard and the implicit `lo`.

Unlike ifupdown, reading does not stop at the first error: every error is collected with
its `path:line:col`. `InterfacesFile.ifupdown_ok` says whether ifupdown itself would have
accepted the file; the statements after an error in a sourced file are checked but, as in
ifupdown, do not become part of the model.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, TypeAlias

from ifvip.errors import ConfigError
from ifvip.interfaces.grammar import C_SPACE_CHARS, WORD_MAX, Statement, parse_statements
from ifvip.interfaces.model import (
    HOOK_ALIASES,
    HOOKS,
    Iface,
    InterfacesFile,
    Mapping,
    Option,
    Origin,
    Rename,
)
from ifvip.interfaces.options import FAMILIES, is_known_method
from ifvip.interfaces.sources import Dependency, file_dependency, source_directory, wordexp

DEFAULT_PATH: Final = "/etc/network/interfaces"
LOOPBACK: Final = "lo"
_BATCH_LINES: Final = 2048  # logical lines parsed at once


@dataclass(frozen=True, slots=True)
class LogicalLine:
    """A line after comment removal and continuation joining, with its physical origin."""

    text: str
    # (offset in text, physical line, column of that offset): one entry per joined line.
    segments: tuple[tuple[int, int, int], ...]
    last_line: int

    def locate(self, path: str, offset: int) -> Origin:
        if len(self.segments) == 1:
            return Origin(path, self.segments[0][1], self.segments[0][2] + offset)
        line, col, base = self.segments[0][1], self.segments[0][2], 0
        for start, seg_line, seg_col in self.segments:
            if start > offset:
                break
            base, line, col = start, seg_line, seg_col
        return Origin(path, line, col + offset - base)


def _physical_lines(text: str) -> Iterator[str]:
    """The lines of `text` as fgets() gives them, one at a time (no list of a whole big
    file): split at newlines, a last empty piece dropped, each cut at a NUL byte (fgets()
    stops there as strlen() sees it: the rest of such a line is lost)."""
    start, size = 0, len(text)
    while True:
        end = text.find("\n", start)
        if end < 0:
            if start < size:
                yield text[start:].split("\0", 1)[0]
            return
        yield text[start:end].split("\0", 1)[0]
        start = end + 1


def logical_lines(text: str) -> Iterator[LogicalLine]:
    """Split file text into logical lines the way ifupdown's get_line() does."""
    raw = _physical_lines(text)
    lineno = 0
    while True:
        while True:
            line = next(raw, None)
            if line is None:
                return
            lineno += 1
            stripped = line.lstrip(C_SPACE_CHARS)
            if not stripped.startswith("#"):
                break
        col = len(line) - len(stripped) + 1
        segments = [(0, lineno, col)]
        text_ = stripped
        while text_.endswith("\\"):
            text_ = text_[:-1]
            following = next(raw, None)
            if following is None:
                if not text_:
                    return
                lineno += 1
                continue
            segments.append((len(text_), lineno + 1, 1))
            text_ += following
            lineno += 1
        text_ = text_.rstrip(C_SPACE_CHARS)
        if text_:
            yield LogicalLine(text_, tuple(segments), lineno)


class _Builder:
    """Accumulates the model in reading order; ifupdown's `defn` plus our diagnostics."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.ifaces: list[_MutableIface] = []
        self.mappings: list[_MutableMapping] = []
        # class -> names in order; a dict is an ordered set with O(1) duplicate checks.
        self.classes: dict[str, dict[str, None]] = {}
        self.no_auto_down: list[str] = []
        self.no_scripts: list[str] = []
        self.renames: list[Rename] = []
        self.diagnostics: list[ConfigError] = []
        self.seen: set[str] = set()
        self.files: list[str] = []
        self.dependencies: list[Dependency] = []
        self.has_loopback = False
        self.top_level_failed = False

    def allow(self, cls: str, name: str) -> None:
        self.classes.setdefault(cls, {}).setdefault(name, None)


@dataclass
class _MutableIface:
    name: str
    family: str
    method: str
    origin: Origin
    inherits: str | None
    options: list[Option] = field(default_factory=list)
    builtin: bool = False

    def freeze(self) -> Iface:
        return Iface(
            self.name,
            self.family,
            self.method,
            tuple(self.options),
            self.origin,
            self.inherits,
            self.builtin,
        )


@dataclass
class _MutableMapping:
    patterns: tuple[str, ...]
    origin: Origin
    script: str | None = None
    maps: list[str] = field(default_factory=list)


class _FileReader:
    """Interprets the statements of one file; ifupdown's read_interfaces_defn()."""

    def __init__(self, builder: _Builder, path: str, *, top: bool) -> None:
        self.b = builder
        self.path = path
        self.top = top
        self.current: _MutableIface | _MutableMapping | None = None
        # After an error ifupdown stops reading the file; we go on checking, recording nothing.
        self.stopped = False

    def error(self, origin: Origin, msg: str, *, fatal: bool = True) -> None:
        self.b.diagnostics.append(ConfigError(origin.path, origin.line, origin.col, msg))
        if fatal and not self.stopped:
            self.stopped = True
            if self.top:
                self.b.top_level_failed = True

    def warn(self, origin: Origin, msg: str) -> None:
        self.b.diagnostics.append(
            ConfigError(origin.path, origin.line, origin.col, msg, warning=True)
        )

    def read(self, text: str) -> None:
        # A statement is one logical line, so the lines go to the parser in batches: the
        # same statements as one parse of the whole file, without holding every line and
        # statement of a big file at once (memory stays the model's plus one batch).
        batch: list[LogicalLine] = []
        for line in logical_lines(text):
            batch.append(line)
            if len(batch) >= _BATCH_LINES:
                self._read_batch(batch)
                batch = []
        if batch:
            self._read_batch(batch)

    def _read_batch(self, lines: list[LogicalLine]) -> None:
        joined = "".join(line.text + "\n" for line in lines)
        starts, offset = [], 0
        for line in lines:
            starts.append(offset)
            offset += len(line.text) + 1
        for line, start, statement in zip(lines, starts, parse_statements(joined), strict=True):
            self.statement(statement, line, start)

    def statement(self, st: Statement, line: LogicalLine, start: int) -> None:
        def at(offset: int) -> Origin:
            return line.locate(self.path, offset - start)

        here = at(st.first.start)
        words = [_truncate(w.text) for w in st.args]
        kind = st.kind
        if kind == "mapping":
            self.current = _MutableMapping(tuple(words), here)
            if not self.stopped:
                self.b.mappings.append(self.current)
        elif kind in ("source", "source-directory"):
            self.current = None
            if not self.stopped:
                self.source(st.rest.text, at(st.rest.start), directory=kind != "source")
        elif kind == "iface":
            self.iface(st, at, here)
        elif kind in ("auto", "allow"):
            cls = "auto" if kind == "auto" else _truncate(st.first.text)[len("allow-") :]
            if words:
                self.current = None
            elif not isinstance(self.current, _MutableIface):
                self.warn(here, f"'{st.first.text}' without interfaces outside a stanza is ignored")
                return
            if self.stopped:
                return
            for name in words or [self.current.name]:  # type: ignore[union-attr]
                self.b.allow(cls, name)
        elif kind in ("no-auto-down", "no-scripts"):
            target = self.b.no_auto_down if kind == "no-auto-down" else self.b.no_scripts
            if words:
                self.current = None
            elif isinstance(self.current, _MutableIface):
                words = [self.current.name]
            if not self.stopped:
                target.extend(words)
        elif kind == "rename":
            self.current = None
            for word in st.args:
                current, sep, new = word.text.partition("=")
                if not sep or not current or not new:
                    self.error(at(word.start), f"rename needs CUR=NEW, not '{word.text}'")
                elif not self.stopped:
                    self.b.renames.append(Rename(current, new, at(word.start)))
        else:
            self.option(st, here)

    def iface(self, st: Statement, at: _At, here: Origin) -> None:
        self.current = None
        args = st.args
        if not args:
            self.error(here, "too few parameters for iface line")
            return
        name = _truncate(args[0].text)
        family: str | None = None
        method: str | None = None
        inherits_kw = False
        family_word = _truncate(args[1].text) if len(args) > 1 else None
        method_word = _truncate(args[2].text) if len(args) > 2 else None
        next_index = 2
        if family_word is not None:
            if family_word in FAMILIES:
                family = family_word
                if method_word is not None:
                    next_index = 3
                    if is_known_method(family, method_word):
                        method = method_word
                    elif method_word == "inherits":
                        inherits_kw = True
            elif family_word == "inherits":
                inherits_kw = True
        if family is None and not inherits_kw:
            where = args[1].start if len(args) > 1 else st.rest.start + len(st.rest.text)
            self.error(at(where), "unknown or no address type and no inherits keyword specified")
            return
        if method is None and not inherits_kw:
            where = args[2].start if len(args) > 2 else st.rest.start + len(st.rest.text)
            self.error(at(where), "unknown or no method and no inherits keyword specified")
            return
        if not inherits_kw and len(args) > next_index:
            extra = args[next_index]
            if extra.text == "inherits":
                inherits_kw = True
                next_index += 1
            else:
                self.warn(
                    at(extra.start),
                    "extra parameter for the iface line not understood and ignored: "
                    + _truncate(extra.text),
                )
        elif inherits_kw:
            next_index = 2 if family is None else 3
        template_name: str | None = None
        options: list[Option] = []
        if inherits_kw:
            if len(args) <= next_index:
                end = st.rest.start + len(st.rest.text)
                self.error(at(end), "'inherits' keyword is missing a parameter")
                return
            template_name = _truncate(args[next_index].text)
            template = self._find_iface(template_name, family)
            if template is None:
                self.error(
                    at(args[next_index].start),
                    f"unknown iface to inherit from: {template_name} ({family or '*'})",
                )
                return
            options = list(template.options)
            family = family or template.family
            method = method or template.method
        assert family is not None and method is not None
        name, family, method = sys.intern(name), sys.intern(family), sys.intern(method)
        stanza = _MutableIface(name, family, method, here, template_name, options)
        if family in ("inet", "inet6") and method == "loopback":
            self.b.has_loopback = True
        self.current = stanza
        if not self.stopped:
            self.b.ifaces.append(stanza)

    def _find_iface(self, name: str, family: str | None) -> _MutableIface | None:
        for stanza in self.b.ifaces:
            if stanza.name == name and (family is None or stanza.family == family):
                return stanza
        return None

    def option(self, st: Statement, here: Origin) -> None:
        name = _truncate(st.first.text)
        current = self.current
        if isinstance(current, _MutableMapping):
            if name == "script":
                if current.script is not None:
                    self.error(here, "duplicate script in mapping")
                    return
                current.script = st.rest.text
            elif name == "map":
                current.maps.append(st.rest.text)
            else:
                self.error(here, "misplaced option")
            return
        if current is None:
            self.error(here, "misplaced option")
            return
        # One string per option name, not one per line of a big file.
        name = sys.intern(HOOK_ALIASES.get(name, name))
        if not st.rest.text:
            self.error(here, "option with empty value")
            return
        value = st.rest.text
        if name not in HOOKS:
            for index, existing in enumerate(current.options):
                if existing.name == name:
                    # ifupdown joins a repeated option with a newline and keeps one variable.
                    value = existing.value + "\n" + value
                    current.options[index] = Option(name, value, existing.origin)
                    first = existing.origin
                    how = "inherited" if first.line and _before(first, current.origin) else "given"
                    self.error(
                        here,
                        f"option '{name}' repeated ({how} at {first}); ifupdown joins the "
                        "values with a newline and the result is broken. "
                        "Use one stanza per value",
                        fatal=False,
                    )
                    return
        current.options.append(Option(name, value, here))

    def source(self, pattern: str, origin: Origin, *, directory: bool) -> None:
        base = os.path.dirname(self.path) or "."
        full = pattern if pattern.startswith("/") else f"{base}/{pattern}"
        words = wordexp(full)
        self.b.dependencies.append(Dependency("wordexp", full, tuple(words)))
        for word in words:
            if directory:
                names = source_directory(word)
                self.b.dependencies.append(
                    Dependency("directory", word, None if names is None else tuple(names))
                )
                for name in names or ():
                    read_file(self.b, f"{word}/{name}", origin)
            else:
                if not os.path.exists(word):
                    continue
                read_file(self.b, word, origin)


_At: TypeAlias = Callable[[int], Origin]


def _before(a: Origin, b: Origin) -> bool:
    return (a.path, a.line) != (b.path, b.line) and (a.path != b.path or a.line < b.line)


def _truncate(word: str) -> str:
    return word[:WORD_MAX]


def read_file(builder: _Builder, path: str, origin: Origin | None) -> None:
    """Read one file into the builder; the recursion guard compares path strings."""
    if path in builder.seen:
        return
    builder.seen.add(path)
    builder.dependencies.append(file_dependency(path))
    top = origin is None
    try:
        data = Path(path).read_bytes()
    except IsADirectoryError:
        where = origin or Origin(path, 0, 0)
        builder.diagnostics.append(
            ConfigError(where.path, where.line, where.col, f"{path}: Is a directory", warning=True)
        )
        return
    except OSError as exc:
        where = origin or Origin(path, 0, 0)
        builder.diagnostics.append(
            ConfigError(
                where.path,
                where.line,
                where.col,
                f'couldn\'t open interfaces file "{path}": {exc.strerror}',
                warning=True,
            )
        )
        return
    builder.files.append(path)
    text = data.decode("utf-8", "surrogateescape")
    del data  # a big file is not held twice while it is read
    _FileReader(builder, path, top=top).read(text)


def load(path: str = DEFAULT_PATH, *, no_loopback: bool = False) -> InterfacesFile:
    """Read `path` (and what it sources) into an InterfacesFile.

    With `no_loopback` False, `lo` heads the auto list and, unless a stanza uses the
    loopback method, a built-in `iface lo inet loopback` heads the stanzas (§1.4).
    """
    builder = _Builder(path)
    if not no_loopback:
        builder.allow("auto", LOOPBACK)
    read_file(builder, path, None)
    ifaces = [stanza.freeze() for stanza in builder.ifaces]
    if not no_loopback and not builder.has_loopback:
        ifaces.insert(0, Iface(LOOPBACK, "inet", "loopback", (), Origin(path, 0, 0), builtin=True))
    return InterfacesFile(
        path=path,
        ifaces=tuple(ifaces),
        mappings=tuple(
            Mapping(m.patterns, m.script, tuple(m.maps), m.origin) for m in builder.mappings
        ),
        classes=tuple((cls, tuple(names)) for cls, names in builder.classes.items()),
        no_auto_down=tuple(builder.no_auto_down),
        no_scripts=tuple(builder.no_scripts),
        renames=tuple(builder.renames),
        diagnostics=tuple(builder.diagnostics),
        ifupdown_ok=not builder.top_level_failed,
        files=tuple(builder.files),
        dependencies=tuple(builder.dependencies),
    )
