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
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Final

from ifvip.record import record

DEFAULT_STATE_DIR: Final = "/run/network"
LOCK_TIMEOUT: Final = 60.0  # seconds an ifup/ifdown waits for another one on the same link
_POLL: Final = 0.05


class StateError(Exception):
    """The state directory cannot be used (permissions, read-only, lock timeout)."""


# The per-interface locks this process holds: path -> the one descriptor that holds it.
# An fcntl lock belongs to the process and goes when the process closes *any* descriptor
# of the file, so while a lock is held every read and write of that `ifstate.PHYS` goes
# through its descriptor, and nothing else opens the file. `_HELD_GUARD` makes "is it
# held here? then use it, else open, read, close" one step with respect to taking a lock.
_HELD: dict[str, int] = {}
_HELD_GUARD = threading.Lock()


def _file_name(physical: str) -> str:
    return physical.replace("/", ".")


@record(kw_only=False)
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
        path = str(self.path / f"ifstate.{_file_name(physical)}")
        try:
            with _HELD_GUARD:
                fd = _HELD.get(path)
                if fd is not None:
                    text = _read_fd(fd)
                else:
                    with open(path) as handle:
                        text = handle.read()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StateError(f"cannot read interface state: {exc.strerror}") from exc
        return text.strip() or None

    def settled_logical(
        self,
        physical: str,
        *,
        timeout: float = LOCK_TIMEOUT,
        waiting: Callable[[str], None] | None = None,
    ) -> str | None:
        """`logical()` read under the interface's lock, as ifupdown reads it: while another
        ifup/ifdown runs on the interface its answer is not final, so wait for it first
        (`waiting` is told, as by `lock()`). A lock that cannot be taken (no write access,
        time out) leaves the plain reading: the engine locks, and says why, before it acts."""
        try:
            with self.lock(physical, timeout=timeout, waiting=waiting):
                return self.logical(physical)
        except StateError:
            return self.logical(physical)

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
            path = str(self.path / f"ifstate.{_file_name(physical)}")
            data = (f"{logical}\n" if logical is not None else "").encode()
            with _HELD_GUARD:
                fd = _HELD.get(path)
                if fd is not None:  # through the lock's own descriptor, as ifupdown does
                    os.ftruncate(fd, 0)
                    _write_fd(fd, data)
                else:
                    with open(path, "wb") as handle:
                        handle.write(data)
        except OSError as exc:
            raise StateError(f"cannot write state in {self.path}: {exc.strerror}") from exc

    @contextlib.contextmanager
    def _global_lock(self) -> Iterator[None]:
        with open(self.path / ".ifstate.lock", "a+") as lock:
            _lock(lock.fileno(), f"{self.path}/.ifstate.lock", LOCK_TIMEOUT)
            yield

    @contextlib.contextmanager
    def lock(
        self,
        physical: str,
        *,
        timeout: float = LOCK_TIMEOUT,
        waiting: Callable[[str], None] | None = None,
    ) -> Iterator[None]:
        """Hold ifupdown's per-interface lock (a write lock on `ifstate.PHYS`) for the
        whole block, through one descriptor kept open (`logical()`/`record()` use it).

        Busy (another process, or another task of this one): `waiting` is told
        `waiting for lock on PATH` once, as ifupdown prints it, and the lock is waited
        for, at most `timeout` seconds."""
        held = self.try_lock(physical)
        if held is None:
            if waiting is not None:
                waiting(f"waiting for lock on {self.lock_path(physical)}")
            deadline = time.monotonic() + timeout
            while held is None:
                if time.monotonic() >= deadline:
                    raise StateError(
                        f"timed out after {timeout:.0f} s waiting for lock on "
                        f"{self.lock_path(physical)}"
                    )
                time.sleep(_POLL)
                held = self.try_lock(physical)
        try:
            yield
        finally:
            held.release()

    def lock_path(self, physical: str) -> str:
        return str(self.path / f"ifstate.{_file_name(physical)}")

    def try_lock(self, physical: str) -> HeldLock | None:
        """Take the per-interface lock if it is free now (None: busy); release() it."""
        path = self.lock_path(physical)
        with _HELD_GUARD:
            if path in _HELD:  # another task of this process holds it
                return None
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            except OSError as exc:
                raise StateError(f"failed to open lockfile {path}: {exc.strerror}") from exc
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)  # it held no lock: closing it drops nothing of ours
                if exc.errno in (11, 13):  # EAGAIN, EACCES: held by another process
                    return None
                raise StateError(f"failed to lock lockfile {path}: {exc.strerror}") from exc
            _HELD[path] = fd
            return HeldLock(path, fd)

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


@record(kw_only=False, frozen=False)
class HeldLock:
    """A per-interface lock this process holds, through its one descriptor."""

    path: str
    fd: int

    def release(self) -> None:
        with _HELD_GUARD:
            if _HELD.get(self.path) == self.fd:
                del _HELD[self.path]
                os.close(self.fd)


def _read_fd(fd: int) -> str:
    chunks = []
    offset = 0
    while chunk := os.pread(fd, 4096, offset):
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks).decode()


def _write_fd(fd: int, data: bytes) -> None:
    offset = 0
    while offset < len(data):
        offset += os.pwrite(fd, data[offset:], offset)


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
