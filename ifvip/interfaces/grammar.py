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


def _rest(text: str, first_end: int, eol: int) -> Word:
    start = first_end
    while start < eol and text[start] in _BLANKS:
        start += 1
    return Word(text[start:eol], start)


def _keyword_statement(text: str, loc: int, toks: pp.ParseResults) -> Statement:
    keyword: str = toks["keyword"]
    first_end = loc + len(keyword)
    eol = text.index("\n", first_end)
    args = tuple(Word(m.group(), m.start()) for m in _WORD_RE.finditer(text, first_end, eol))
    return Statement(_kind(keyword), Word(keyword, loc), args, _rest(text, first_end, eol))


def _option_statement(text: str, loc: int, toks: pp.ParseResults) -> Statement:
    value: str = toks["value"]
    eol = text.index("\n", loc)
    return Statement("option", Word(toks["name"], loc), (), Word(value, eol - len(value)))


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

# A keyword line: the keyword as the whole first word, then its whitespace-separated words.
KEYWORD_LINE: Final[pp.ParserElement] = (
    pp.Regex(f"(?P<keyword>{_KEYWORDS})(?={_WS}|\\n)[^\\n]*\\n")
    .leave_whitespace()
    .set_parse_action(_keyword_statement)
)

# Any other first word names an option; its value may be empty (an error reported later).
OPTION_LINE: Final[pp.ParserElement] = (
    pp.Regex(f"(?P<name>{_WORD}){_WS}*(?P<value>[^\\n]*)\\n")
    .leave_whitespace()
    .set_parse_action(_option_statement)
)

STATEMENTS: Final[pp.ParserElement] = (
    pp.ZeroOrMore(KEYWORD_LINE | OPTION_LINE).leave_whitespace(recursive=False).parse_with_tabs()
)


def parse_statements(text: str) -> list[Statement]:
    """Parse logical lines, each ended by a newline, into Statements (offsets into `text`)."""
    return list(STATEMENTS.parse_string(text, parse_all=True))
