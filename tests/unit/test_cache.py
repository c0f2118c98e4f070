"""ifvip/interfaces/cache.py: a cached reading is the reading, and only while it holds."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from ifvip.interfaces import cache
from ifvip.interfaces.loader import load

TEXT = """\
auto lo eth0
allow-hotplug eth1
no-auto-down eth1
rename old0=new0
mapping eth*
  script /bin/true
  map home eth0-home
source-directory parts
iface eth0 inet static
  address 198.51.100.2/24
  gateway 198.51.100.1
  up echo one
  up echo two
  bogus-option yes
iface eth0 inet6 static
  address 2001:db8::2/64
iface eth1 inet manual
  unknown-word
"""


def _reading(tmp_path: Path) -> str:
    (tmp_path / "parts").mkdir()
    (tmp_path / "parts" / "extra").write_text("iface eth2 inet dhcp\n")
    path = tmp_path / "interfaces"
    path.write_text(TEXT)
    return str(path)


def _same(a: object, b: object) -> None:
    """Equal, and of the same classes all the way down (== alone would miss a tuple that
    came back a list, or a field that does not compare)."""
    assert type(a) is type(b)
    if dataclasses.is_dataclass(a):
        for f in dataclasses.fields(a):
            _same(getattr(a, f.name), getattr(b, f.name))
    elif isinstance(a, tuple):
        assert len(a) == len(b)  # type: ignore[arg-type]
        for x, y in zip(a, b, strict=True):  # type: ignore[call-overload]
            _same(x, y)
    else:
        assert a == b


def test_a_cached_reading_is_the_reading(tmp_path: Path) -> None:
    path = _reading(tmp_path)
    fresh = load(path)
    assert fresh.mappings and fresh.renames and fresh.diagnostics and fresh.no_auto_down
    assert len(fresh.dependencies) > 2  # the files and the source-directory listing
    store = str(tmp_path / "cache")
    cache.store(fresh, no_loopback=False, directory=store)
    cached = cache.lookup(path, no_loopback=False, directory=store)
    assert cached is not None
    _same(cached, fresh)
    assert cached.stanzas("eth0") == fresh.stanzas("eth0")
    assert cache.lookup(path, no_loopback=True, directory=store) is None  # another key


def test_a_reading_is_used_only_while_its_lookups_hold(tmp_path: Path) -> None:
    path = _reading(tmp_path)
    store = str(tmp_path / "cache")
    cache.store(load(path), no_loopback=False, directory=store)
    (tmp_path / "parts" / "more").write_text("iface eth3 inet dhcp\n")
    assert cache.lookup(path, no_loopback=False, directory=store) is None
    assert [d.name for d in cache.load(path).ifaces if d.name == "eth3"] == ["eth3"]


def test_anything_unexpected_is_a_fresh_read(tmp_path: Path) -> None:
    path = _reading(tmp_path)
    store = tmp_path / "cache"
    cache.store(load(path), no_loopback=False, directory=str(store))
    (entry,) = os.listdir(store)
    (store / entry).write_bytes(b"\xffnot marshal")
    assert cache.lookup(path, no_loopback=False, directory=str(store)) is None
    (store / entry).write_bytes(b"")
    assert cache.lookup(path, no_loopback=False, directory=str(store)) is None
    # A reading holding what a reading should not (a list) is not kept at all.
    odd = dataclasses.replace(load(path), files=[path])  # type: ignore[arg-type]
    os.unlink(store / entry)
    cache.store(odd, no_loopback=False, directory=str(store))
    assert os.listdir(store) == []
    # Nor is a cache directory others may write to used.
    os.chmod(store, 0o777)
    cache.store(load(path), no_loopback=False, directory=str(store))
    assert os.listdir(store) == []
