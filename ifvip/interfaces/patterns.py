"""Interface-name patterns: C fnmatch(3) and ifupdown's `[VAR]/GLOB[/N][=LOGICAL]` targets.

Python's fnmatch differs from C's (no backslash escapes, `[^...]` handling, no extglob), so
the glob is translated to a regular expression here, with glibc's FNM_EXTMATCH forms
`?(…) *(…) +(…) @(…) !(…)` that ifupdown uses for pattern targets (specs §11).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from functools import lru_cache

from ifvip.record import record


@lru_cache(maxsize=512)
def _compile(pattern: str, extmatch: bool) -> re.Pattern[str]:
    return re.compile(_translate(pattern, extmatch) + r"\Z", re.DOTALL)


def _translate(pat: str, extmatch: bool) -> str:
    out: list[str] = []
    i, n = 0, len(pat)
    while i < n:
        c = pat[i]
        if extmatch and c in "?*+@!" and i + 1 < n and pat[i + 1] == "(":
            close = _matching_paren(pat, i + 1)
            if close is not None:
                alts = "|".join(_translate(p, extmatch) for p in _split_alts(pat[i + 2 : close]))
                if c == "!":
                    out.append(f"(?:(?!(?:{alts})).*?)")
                else:
                    suffix = {"?": "?", "*": "*", "+": "+", "@": ""}[c]
                    out.append(f"(?:{alts}){suffix}")
                i = close + 1
                continue
        if c == "*":
            out.append(".*")
        elif c == "?":
            out.append(".")
        elif c == "\\" and i + 1 < n:
            i += 1
            out.append(re.escape(pat[i]))
        elif c == "[":
            end = _bracket_end(pat, i)
            if end is None:
                out.append(re.escape(c))
            else:
                body = pat[i + 1 : end]
                negate = body[:1] in ("!", "^")
                if negate:
                    body = body[1:]
                items = "".join("\\" + ch if ch in "\\^[]" else ch for ch in body)
                out.append(f"[{'^' if negate else ''}{items}]")
                i = end
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


def _bracket_end(pat: str, start: int) -> int | None:
    j = start + 1
    if j < len(pat) and pat[j] in "!^":
        j += 1
    if j < len(pat) and pat[j] == "]":
        j += 1
    while j < len(pat) and pat[j] != "]":
        j += 1
    return j if j < len(pat) else None


def _matching_paren(pat: str, start: int) -> int | None:
    depth = 0
    for j in range(start, len(pat)):
        if pat[j] == "(":
            depth += 1
        elif pat[j] == ")":
            depth -= 1
            if depth == 0:
                return j
    return None


def _split_alts(body: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for ch in body:
        if ch == "|" and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        depth += ch == "("
        depth -= ch == ")"
        current.append(ch)
    parts.append("".join(current))
    return parts


def fnmatch(pattern: str, name: str, *, extmatch: bool = False) -> bool:
    """C fnmatch(pattern, name, 0), or with FNM_EXTMATCH."""
    return _compile(pattern, extmatch).match(name) is not None


def match_any(patterns: Sequence[str], name: str) -> bool:
    return any(fnmatch(p, name) for p in patterns)


@record(kw_only=False, slots=True)
class Link:
    """An interface of the running system, as pattern targets see it."""

    name: str
    mac: str = "00:00:00:00:00:00"


@record(kw_only=False)
class SystemView:
    """The kernel's interfaces in getifaddrs() order, and a reader of their sysfs files."""

    links: tuple[Link, ...] = ()
    sysfs: Callable[[str, str], str | None] = lambda _link, _var: None


def expand(target: str, system: SystemView) -> list[str]:
    """Expand one `[VAR]/GLOB[/N][=LOGICAL]` target into `PHYS[=LOGICAL]` names.

    A target without `/` is returned as it is. `VAR` empty matches the name, `mac` the MAC
    address, anything else the content of /sys/class/net/IF/VAR. ifupdown 0.8.41 inverts
    the `VAR/*` existence test (it matches links *without* that file): reproduced on purpose,
    because the goldens and real systems depend on it.
    """
    phys, eq, logical = target.partition("=")
    if "/" not in phys:
        return [target]
    var, _, rest = phys.partition("/")
    glob, _, nth = rest.partition("/")
    wanted: int | None = None
    if nth:
        try:
            wanted = int(nth)
        except ValueError:
            return []
    matches: list[str] = []
    for link in system.links:
        if var == "":
            subject: str | None = link.name
        elif var == "mac":
            subject = link.mac
        else:
            subject = system.sysfs(link.name, var)
            if glob == "*":
                if subject is None:
                    matches.append(link.name)
                continue
        if subject is not None and fnmatch(glob, subject, extmatch=True):
            matches.append(link.name)
    if wanted is not None:
        matches = matches[wanted - 1 : wanted] if wanted > 0 else []
    return [m + eq + logical for m in matches]
