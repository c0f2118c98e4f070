"""The pyparsing grammar of interfaces(5) statements, one per logical line.

Continuations and comments are resolved before this grammar runs (see loader.py), which
hands it the logical lines of a file joined by newlines: none is empty, none starts with
whitespace or `#`. The grammar follows ifupdown 0.8.41's `next_word()`: a word runs up to
C `isspace()`, and an option's value is the rest of the line, verbatim, after the
whitespace that follows its name.

Keywords are case-sensitive and count only as the whole first word, except `source-dir`,
which ifupdown matches as a prefix (`strncmp(word, "source-dir", 10)`), so
`source-directory` and even `source-dirXYZ` are the same keyword.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

import pyparsing as pp

# C isspace() in the C locale. Python's str.isspace() would also take Unicode spaces.
C_SPACE_CHARS: Final = " \t\n\v\f\r"
# The same, less the newline that separates logical lines here.
_BLANKS: Final = " \t\v\f\r"
_WS: Final = "[ \\t\\v\\f\\r]"
_WORD: Final = "[^ \\t\\n\\v\\f\\r]+"
_WORD_RE: Final = re.compile(_WORD)

# ifupdown copies words into 80-byte buffers: longer words are silently cut to 79 bytes.
WORD_MAX: Final = 79


@dataclass(frozen=True, slots=True)
class Word:
    text: str
    start: int  # offset in the text given to parse_statements()


@dataclass(frozen=True, slots=True)
class Statement:
    """One logical line: its kind, first word, the words after it and the verbatim rest.

    `kind` is one of mapping, source, source-directory, iface, auto, allow, no-auto-down,
    no-scripts, rename or option. Option lines carry no `args`: their value is `rest`.
    """

    kind: str
    first: Word
    args: tuple[Word, ...]
    rest: Word


def _kind(keyword: str) -> str:
    if keyword.startswith("source-dir"):
        return "source-directory"
    if keyword.startswith("allow-"):
        return "allow"
    return keyword


def _statement(text: str, loc: int, toks: pp.ParseResults) -> Statement:
    match: re.Match[str] = toks[0]
    keyword, name, rest = match.group("keyword", "name", "rest")
    rest_word = Word(rest, match.start("rest"))
    if keyword is None:
        return Statement("option", Word(name, loc), (), rest_word)
    eol = match.end("rest")
    args = tuple(Word(m.group(), m.start()) for m in _WORD_RE.finditer(text, rest_word.start, eol))
    return Statement(_kind(keyword), Word(keyword, loc), args, rest_word)


_KEYWORDS: Final = "|".join(
    (
        "mapping",
        "source",
        f"source-dir(?:{_WORD})?",
        "iface",
        "auto",
        f"allow-{_WORD}",
        "no-auto-down",
        "no-scripts",
        "rename",
    )
)

# One logical line: a keyword that is the whole first word, or else an option name; then
# the rest of the line after the white space that follows it. A keyword's arguments are the
# words of the rest; an option's value is the rest itself, which may be empty (an error the
# loader reports, as ifupdown does).
STATEMENT: Final[pp.ParserElement] = (
    pp.Regex(
        f"(?:(?P<keyword>{_KEYWORDS})(?={_WS}|\\n)|(?P<name>{_WORD})){_WS}*(?P<rest>[^\\n]*)\\n",
        as_match=True,
    )
    .leave_whitespace()
    .set_parse_action(_statement)
)

STATEMENTS: Final[pp.ParserElement] = (
    pp.ZeroOrMore(STATEMENT).leave_whitespace(recursive=False).parse_with_tabs()
)


def parse_statements(text: str) -> list[Statement]:
    """Parse logical lines, each ended by a newline, into Statements (offsets into `text`)."""
    return list(STATEMENTS.parse_string(text, parse_all=True))
