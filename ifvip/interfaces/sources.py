"""What a read of an interfaces file depended on: files, globs and directory listings.

`source` and `source-directory` make a file's meaning depend on other files and on
directory contents. The loader records each such look-up here, so that a cached reading
can later be proved still valid by repeating only the look-ups (cache.py). This module
must stay light: it is imported on the fast path that avoids the parser.
"""

from __future__ import annotations

import glob
import os
import re
import string

from ifvip.record import record

TYPE_CHECKING = False  # typing is not imported at run time: ifquery does not need it
if TYPE_CHECKING:
    from typing import Final

# source-directory reads only names made of these characters (run-parts' rule).
SOURCE_DIR_NAME: Final = re.compile(r"^[A-Za-z0-9_-]+$")


def wordexp(pattern: str) -> list[str]:
    """Expand like wordexp(WRDE_NOCMD): split words, `~`, `$VAR`, globs in sorted order.

    A command substitution makes wordexp fail, and ifupdown then skips the line silently.
    A glob that matches nothing is kept as written (the caller's stat() then skips it).
    """
    if "$(" in pattern or "`" in pattern:
        return []
    words: list[str] = []
    for raw in pattern.split():
        word = os.path.expanduser(string.Template(raw).safe_substitute(os.environ))
        matches = sorted(glob.glob(word)) if glob.has_magic(word) else []
        words.extend(matches or [word])
    return words


def source_directory(path: str) -> list[str] | None:
    """The names source-directory reads in `path`, sorted; None if it cannot be listed."""
    try:
        return sorted(n for n in os.listdir(path) if SOURCE_DIR_NAME.match(n))
    except OSError:
        return None


def signature(path: str) -> tuple[int, int, int, int] | None:
    """(mtime_ns, ctime_ns, size, inode) of a file, or None if it does not exist."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino)


@record(kw_only=False)
class Dependency:
    """One look-up and its answer: kind is `file`, `wordexp` or `directory`."""

    kind: str
    key: str
    answer: tuple[object, ...] | None

    def still_holds(self) -> bool:
        if self.kind == "file":
            sig = signature(self.key)
            return (None if sig is None else tuple(sig)) == self.answer
        if self.kind == "wordexp":
            return tuple(wordexp(self.key)) == self.answer
        listing = source_directory(self.key)
        return (None if listing is None else tuple(listing)) == self.answer


def file_dependency(path: str) -> Dependency:
    sig = signature(path)
    return Dependency("file", path, None if sig is None else tuple(sig))
