"""A cache of readings of interfaces files, so `ifquery`, `ifup` and `ifdown` can answer
without the parser.

Scripts call `ifquery` often, and importing the parser (pyparsing) costs more than the
whole query, or than an `ifup` of a few stanzas. A reading is stored with every look-up it
depended on (the files read, each `source` expansion, each `source-directory` listing:
sources.py) and is used again only while every look-up still gives the same answer. The
cache lives in a directory owned by the caller and closed to others (it holds pickles);
anything unexpected means a fresh read.

Readings of big files (over `SOURCE_MAX` bytes in all) are not kept: pickling a model
holds a memo of every object in it, and /run is memory, so a 48 MB file would cost
hundreds of MB more at each miss and hit than reading it again does.
"""

from __future__ import annotations

import os
import pickle
from typing import Final

from ifvip import __version__
from ifvip.interfaces.model import InterfacesFile
from ifvip.wire.digest import sha256

FORMAT: Final = 2  # 2: Origin and Option have slots
SOURCE_MAX: Final = 8 << 20  # bytes of interfaces files (all of a reading) worth a cache entry
PICKLE_MAX: Final = 64 << 20  # an entry bigger than a SOURCE_MAX reading pickles to: not ours


def cache_dir() -> str:
    """IFVIP_CACHE_DIR, else /run/ifvip/cache for root, else the user's cache directory."""
    explicit = os.environ.get("IFVIP_CACHE_DIR")
    if explicit:
        return explicit
    if os.geteuid() == 0:
        return "/run/ifvip/cache"
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return os.path.join(base, "ifvip")


def _entry(directory: str, path: str, no_loopback: bool) -> str:
    # Paths in a reading are as given (maybe relative), so the working directory is part of
    # the key, with the version: a new ifvip never trusts an old reading.
    key = "\0".join((__version__, str(FORMAT), os.getcwd(), path, str(no_loopback)))
    return os.path.join(directory, sha256(key.encode("utf-8", "surrogateescape")).hex())


def _private(directory: str) -> bool:
    try:
        st = os.stat(directory)
    except OSError:
        return False
    return st.st_uid == os.geteuid() and st.st_mode & 0o077 == 0


def lookup(path: str, *, no_loopback: bool, directory: str | None = None) -> InterfacesFile | None:
    """A cached reading of `path` that is still valid, or None."""
    directory = directory or cache_dir()
    if not _private(directory):
        return None
    try:
        with open(_entry(directory, path, no_loopback), "rb") as cached:
            if os.fstat(cached.fileno()).st_size > PICKLE_MAX:
                return None
            defn = pickle.load(cached)
    except Exception:
        return None
    if not isinstance(defn, InterfacesFile) or not defn.dependencies:
        return None
    if not all(dep.still_holds() for dep in defn.dependencies):
        return None
    return defn


def store(defn: InterfacesFile, *, no_loopback: bool, directory: str | None = None) -> None:
    """Keep a reading for later; failing to (read-only /run, full disk) is not an error."""
    import tempfile  # noqa: PLC0415 - only a miss writes

    directory = directory or cache_dir()
    try:
        if sum(os.stat(name).st_size for name in defn.files) > SOURCE_MAX:
            return
        os.makedirs(directory, mode=0o700, exist_ok=True)
        if not _private(directory):
            return
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as out:
                pickle.dump(defn, out, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, _entry(directory, defn.path, no_loopback))
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError:
        return


def load(path: str, *, no_loopback: bool = False) -> InterfacesFile:
    """Read `path` through the cache: a valid cached reading, else a fresh one (then stored)."""
    cached = lookup(path, no_loopback=no_loopback)
    if cached is not None:
        return cached
    from ifvip.interfaces.loader import load as read  # noqa: PLC0415 - the slow path only

    defn = read(path, no_loopback=no_loopback)
    store(defn, no_loopback=no_loopback)
    return defn
