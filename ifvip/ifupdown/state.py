"""The state directory: ifupdown-compatible `ifstate` files, per-interface locks, our journal.

Layout (specs/ifupdown.md §8), under `/run/network` by default:

- `ifstate`: one `PHYS=LOGICAL` line per configured interface, in the order they came up,
  rewritten through `.ifstate.tmp` and rename() under an fcntl lock on `.ifstate.lock`;
- `ifstate.PHYS` (`/` in the name becomes `.`): holds `LOGICAL` while up, empty after
  down; it is also the per-interface lock (fcntl write lock while ifup/ifdown run);
- `ifvip-journal.PHYS.jsonl` (ifvip's own, 0600): what an ifup actually applied, in order,
  with the previous value of everything it changed, so that ifdown undoes exactly that;
  one JSON value a line, appended as the ifup goes, so even an ifup that was killed
  half-way leaves a record of what it did.

Other tools read `ifstate` and `ifstate.PHYS`; their format is kept byte for byte.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

DEFAULT_STATE_DIR: Final = "/run/network"
LOCK_TIMEOUT: Final = 60.0  # seconds an ifup/ifdown waits for another one on the same link
_POLL: Final = 0.05


class StateError(Exception):
    """The state directory cannot be used (permissions, read-only, lock timeout)."""


def _file_name(physical: str) -> str:
    return physical.replace("/", ".")


@dataclass(frozen=True)
class StateDir:
    path: Path

    @classmethod
    def open(
        cls, path: str | os.PathLike[str] = DEFAULT_STATE_DIR, *, create: bool = True
    ) -> StateDir:
        state = cls(Path(path))
        if create:
            try:
                state.path.mkdir(mode=0o755, parents=True, exist_ok=True)
            except OSError as exc:
                raise StateError(
                    f"cannot create state directory {state.path}: {exc.strerror}"
                ) from exc
        return state

    # ---------------------------------------------------------------- ifstate

    def configured(self) -> list[tuple[str, str]]:
        """The `ifstate` lines as (physical, logical), in the order they came up."""
        try:
            text = (self.path / "ifstate").read_text()
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise StateError(f"cannot read {self.path / 'ifstate'}: {exc.strerror}") from exc
        pairs = []
        for line in text.splitlines():
            physical, sep, logical = line.strip().partition("=")
            if sep:
                pairs.append((physical, logical))
        return pairs

    def logical(self, physical: str) -> str | None:
        """The logical name `physical` is up as, from `ifstate.PHYS` (None: not configured)."""
        try:
            text = (self.path / f"ifstate.{_file_name(physical)}").read_text()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StateError(f"cannot read interface state: {exc.strerror}") from exc
        return text.strip() or None

    def record(self, physical: str, logical: str | None) -> None:
        """Mark `physical` up as `logical` (or down, with None) in both state files."""
        try:
            with self._global_lock():
                pairs = [p for p in self.configured() if p[0] != physical]
                before = {p for p, _ in self.configured()}
                if logical is not None:
                    if physical in before:
                        # ifupdown rewrites the line in place, keeping the bring-up order.
                        pairs = [
                            (p, logical if p == physical else lg) for p, lg in self.configured()
                        ]
                    else:
                        pairs.append((physical, logical))
                tmp = self.path / ".ifstate.tmp"
                tmp.write_text("".join(f"{p}={lg}\n" for p, lg in pairs))
                os.replace(tmp, self.path / "ifstate")
            iface_file = self.path / f"ifstate.{_file_name(physical)}"
            iface_file.write_text(f"{logical}\n" if logical is not None else "")
        except OSError as exc:
            raise StateError(f"cannot write state in {self.path}: {exc.strerror}") from exc

    @contextlib.contextmanager
    def _global_lock(self) -> Iterator[None]:
        with open(self.path / ".ifstate.lock", "a+") as lock:
            _lock(lock.fileno(), f"{self.path}/.ifstate.lock", LOCK_TIMEOUT)
            yield

    @contextlib.contextmanager
    def lock(self, physical: str, *, timeout: float = LOCK_TIMEOUT) -> Iterator[None]:
        """Hold ifupdown's per-interface lock (a write lock on `ifstate.PHYS`)."""
        path = self.path / f"ifstate.{_file_name(physical)}"
        try:
            handle = open(path, "a+")  # noqa: SIM115 - closed in the finally below
        except OSError as exc:
            raise StateError(f"failed to open lockfile {path}: {exc.strerror}") from exc
        try:
            _lock(handle.fileno(), str(path), timeout)
            yield
        finally:
            handle.close()

    # ---------------------------------------------------------------- journal

    def _journal_path(self, physical: str) -> Path:
        return self.path / f"ifvip-journal.{_file_name(physical)}.jsonl"

    def read_journal(self, physical: str) -> list[dict[str, Any]] | None:
        """What the last ifup of `physical` applied, oldest first; None without a journal.

        A last line cut short (the ifup was killed while writing it) is left out.
        """
        try:
            text = self._journal_path(physical).read_text()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StateError(f"unreadable journal for {physical}: {exc.strerror}") from exc
        entries = []
        lines = text.splitlines()
        for number, line in enumerate(lines, 1):
            try:
                entry = json.loads(line)
            except ValueError as exc:
                if number == len(lines) and not text.endswith("\n"):
                    break
                raise StateError(f"unreadable journal for {physical}: {exc}") from exc
            if not isinstance(entry, dict):
                raise StateError(f"unreadable journal for {physical}: line {number}")
            entries.append(entry)
        return entries

    def write_journal(self, physical: str, entries: list[dict[str, Any]]) -> None:
        """Replace the journal atomically (0600: hook lines may carry secrets)."""
        path = self._journal_path(physical)
        tmp = path.with_name(path.name + ".tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write("".join(json.dumps(entry) + "\n" for entry in entries))
            os.replace(tmp, path)
        except OSError as exc:
            raise StateError(f"cannot write journal {path}: {exc.strerror}") from exc

    def append_journal(self, physical: str, entries: list[dict[str, Any]]) -> None:
        """Add entries at the end of the journal (one write, so whole lines land)."""
        with self.journal_appender(physical) as append:
            append(entries)

    @contextlib.contextmanager
    def journal_appender(self, physical: str) -> Iterator[Callable[[list[dict[str, Any]]], None]]:
        """The journal held open for appending while an ifup runs: each call adds its
        entries with one write() (whole lines land, visible to any other process
        at once), without opening the file again for every run of ops."""
        path = self._journal_path(physical)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        except OSError as exc:
            raise StateError(f"cannot write journal {path}: {exc.strerror}") from exc

        def append(entries: list[dict[str, Any]]) -> None:
            if not entries:
                return
            data = "".join(json.dumps(entry) + "\n" for entry in entries).encode()
            try:
                while data:
                    data = data[os.write(fd, data) :]
            except OSError as exc:
                raise StateError(f"cannot write journal {path}: {exc.strerror}") from exc

        try:
            yield append
        finally:
            os.close(fd)

    def drop_journal(self, physical: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._journal_path(physical).unlink()


def _lock(fd: int, name: str, timeout: float) -> None:
    """An fcntl write lock, waited for at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except OSError as exc:
            if exc.errno not in (11, 13):  # EAGAIN, EACCES: held by another process
                raise StateError(f"failed to lock {name}: {exc.strerror}") from exc
        if time.monotonic() >= deadline:
            raise StateError(f"timed out after {timeout:.0f} s waiting for lock on {name}")
        time.sleep(_POLL)
