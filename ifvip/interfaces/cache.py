"""A cache of readings of interfaces files, so `ifquery`, `ifup` and `ifdown` can answer
without the parser.

Scripts call `ifquery` often, and importing the parser (pyparsing) costs more than the
whole query, or than an `ifup` of a few stanzas. A reading is stored with every look-up it
depended on (the files read, each `source` expansion, each `source-directory` listing:
sources.py) and is used again only while every look-up still gives the same answer. The
cache lives in a directory owned by the caller and closed to others; anything unexpected
means a fresh read.

An entry is the reading in `marshal`'s format (built in: importing `pickle` costs `ifquery`
more than the whole look-up, and a warm read of 10,000 stanzas is faster too), the model's
records written as lists `[class name, field values...]` (the model itself holds tuples,
never lists). Readings of big files (over `SOURCE_MAX` bytes in all) are not kept: writing
a model holds a table of every object in it, and /run is memory, so a 48 MB file would cost
hundreds of MB more at each miss and hit than reading it again does.
"""

from __future__ import annotations

import marshal
import os
from dataclasses import fields

from ifvip import __version__
from ifvip.errors import ConfigError
from ifvip.interfaces.model import Iface, InterfacesFile, Mapping, Option, Origin, Rename
from ifvip.interfaces.sources import Dependency

# CPython's built-in SHA-256, as ifvip.wire.digest uses it (no OpenSSL), without importing
# that module's typing.
from _sha256 import sha256  # type: ignore[import-not-found, unused-ignore]  # isort: skip

TYPE_CHECKING = False  # typing is not imported at run time: ifquery does not need it
if TYPE_CHECKING:
    from typing import Any, Final

FORMAT: Final = 3  # 2: Origin and Option have slots; 3: marshal, not pickle
SOURCE_MAX: Final = 8 << 20  # bytes of interfaces files (all of a reading) worth a cache entry
ENTRY_MAX: Final = 64 << 20  # an entry bigger than a SOURCE_MAX reading is written as: not ours

# The records a reading is made of, by name, with their fields in __init__'s order.
_RECORDS: Final = {
    cls.__name__: (cls, tuple(f.name for f in fields(cls)))
    for cls in (InterfacesFile, Iface, Option, Origin, Mapping, Rename, ConfigError, Dependency)
}
# Part of every key: an entry written for other fields is never read as these.
_LAYOUT: Final = ";".join(f"{name}({','.join(names)})" for name, (_, names) in _RECORDS.items())


def _encode(value: Any) -> Any:
    """`value` as marshal writes it: a record as a list, a tuple of them as a tuple."""
    if value is None or type(value) in (str, int, bool):
        return value
    if type(value) is tuple:
        return tuple(_encode(item) for item in value)
    known = _RECORDS.get(type(value).__name__)
    if known is None or known[0] is not type(value):
        raise TypeError(f"a reading does not hold {type(value).__name__}")
    return [type(value).__name__, *(_encode(getattr(value, name)) for name in known[1])]


def _decode(value: Any) -> Any:
    """The reading `_encode` wrote (a big one has a million values: scalars are not
    passed down)."""
    items = [item if type(item) not in _NESTED else _decode(item) for item in value]
    if type(value) is tuple:
        return tuple(items)
    cls, _ = _RECORDS[items[0]]
    return cls(*items[1:])


_NESTED: Final = (tuple, list)


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
    parts = (__version__, str(FORMAT), str(marshal.version), _LAYOUT, os.getcwd(), path)
    key = "\0".join((*parts, str(no_loopback)))
    return os.path.join(directory, sha256(key.encode("utf-8", "surrogateescape")).hexdigest())


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
            if os.fstat(cached.fileno()).st_size > ENTRY_MAX:
                return None
            entry = cached.read()  # one read: marshal.load() reads a file piece by piece
        defn = _decode(marshal.loads(entry))
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
        try:
            entry = _encode(defn)
        except TypeError:  # something a reading should not hold: not kept
            return
        os.makedirs(directory, mode=0o700, exist_ok=True)
        if not _private(directory):
            return
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as out:
                marshal.dump(entry, out)  # ValueError: not marshal's, not kept either
            os.replace(tmp, _entry(directory, defn.path, no_loopback))
        except BaseException:
            os.unlink(tmp)
            raise
    except (OSError, ValueError):
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
