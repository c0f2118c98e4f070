"""run-parts(8) as ifupdown calls it on the if-*.d directories, done in-process.

ifupdown runs `run-parts [--exit-on-error] [--verbose] /etc/network/if-up.d` (and the
pre-up, down and post-down directories) for every stanza, through a shell: two processes
per phase even when the directory is empty, which is most of ifupdown's time on a file
with many stanzas. ifvip reads the directory itself and starts only the scripts, with
exactly the choices and messages of Debian's run-parts (debianutils 5.7, checked against
the binary by tests/unit/test_runparts.py):

- names made only of ASCII letters, digits, `_` and `-` (so `foo.sh`, `foo.dpkg-old` are
  skipped), in byte order (the hook environment has no locale: C collation);
- an entry is run if it is a regular file, after symlinks, that the caller may execute;
  other entries are skipped without a word; an entry that cannot be stat()ed (a dangling
  symlink) is reported, and ends the run with status 1 under `--exit-on-error`;
- each script runs with the run-parts environment, no arguments, umask 022, and its
  failure (`DIR/NAME exited with return code N`, `... because of uncaught signal N`,
  `failed to exec DIR/NAME: ...`) makes the status 1; `--exit-on-error` stops there;
- a directory that cannot be listed: `failed to open directory DIR: ...`, status 1;
- `--verbose` says `executing DIR/NAME` before each script.

Messages go where run-parts writes them, to standard error, prefixed `run-parts: `.
`scripts()` is the choice alone (no process is started), for tests and `-n`.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Awaitable, Callable
from typing import Final

from ifvip.record import record

NAME: Final = re.compile(r"[A-Za-z0-9_-]+")
UMASK: Final = 0o022  # run-parts' default --umask


@record(kw_only=False)
class Entry:
    """A directory entry run-parts looks at: a script to run, or one it cannot stat."""

    path: str
    error: str | None = None  # strerror of the failed stat(); None: run it


def scripts(directory: str) -> list[Entry]:
    """The entries run-parts would act on in `directory`, in its order.

    Raises OSError when the directory cannot be listed."""
    names = sorted((n for n in os.listdir(directory) if NAME.fullmatch(n)), key=os.fsencode)
    entries: list[Entry] = []
    for name in names:
        path = f"{directory}/{name}"  # as run-parts joins them, even after a trailing /
        try:
            st = os.stat(path)
        except OSError as exc:
            entries.append(Entry(path, exc.strerror or str(exc)))
            continue
        if stat.S_ISREG(st.st_mode) and os.access(path, os.X_OK):
            entries.append(Entry(path))
    return entries


Spawn = Callable[[str], Awaitable[int]]  # runs one script; its exit status, or -signal


async def run_parts(
    directory: str,
    spawn: Spawn,
    say: Callable[[str], None],
    *,
    exit_on_error: bool,
    verbose: bool,
) -> int:
    """Run the scripts of `directory` as run-parts does; its exit status (0 or 1).

    `spawn(path)` starts one script and returns its status (OSError if it cannot be
    executed); `say` writes one run-parts message."""
    try:
        entries = scripts(directory)
    except OSError as exc:
        say(f"failed to open directory {directory}: {exc.strerror or exc}")
        return 1
    status = 0
    for entry in entries:
        if entry.error is not None:
            say(f"failed to stat component {entry.path}: {entry.error}")
            if exit_on_error:
                return 1
            continue
        if verbose:
            say(f"executing {entry.path}")
        try:
            code = await spawn(entry.path)
        except OSError as exc:
            say(f"failed to exec {entry.path}: {exc.strerror or exc}")
            code = 1  # run-parts' child exits 1 when its exec fails
        if code == 0:
            continue
        if code > 0:
            say(f"{entry.path} exited with return code {code}")
        else:
            say(f"{entry.path} exited because of uncaught signal {-code}")
        status = 1
        if exit_on_error:
            return status
    return status
