"""The state directory: ifupdown's file formats, locks and ifvip's journal."""

from __future__ import annotations

import multiprocessing
import os
import stat
from pathlib import Path

import pytest

from ifvip.ifupdown.state import StateDir, StateError


def test_record_writes_ifupdown_format_in_bring_up_order(tmp_path: Path) -> None:
    state = StateDir.open(tmp_path / "run")
    state.record("eth0", "eth0")
    state.record("eth1", "work")
    state.record("eth0.5", "eth0.5")
    assert (tmp_path / "run" / "ifstate").read_text() == "eth0=eth0\neth1=work\neth0.5=eth0.5\n"
    assert (tmp_path / "run" / "ifstate.eth1").read_text() == "work\n"
    assert state.logical("eth1") == "work"
    state.record("eth1", None)
    assert state.configured() == [("eth0", "eth0"), ("eth0.5", "eth0.5")]
    # ifupdown leaves the per-interface file in place, empty.
    assert (tmp_path / "run" / "ifstate.eth1").read_text() == ""
    assert state.logical("eth1") is None


def test_record_again_keeps_the_position(tmp_path: Path) -> None:
    state = StateDir.open(tmp_path)
    state.record("eth0", "a")
    state.record("eth1", "eth1")
    state.record("eth0", "b")
    assert state.configured() == [("eth0", "b"), ("eth1", "eth1")]


def test_slash_in_names_becomes_a_dot(tmp_path: Path) -> None:
    state = StateDir.open(tmp_path)
    state.record("a/b", "x")
    assert (tmp_path / "ifstate.a.b").read_text() == "x\n"


def test_journal_round_trip_is_private(tmp_path: Path) -> None:
    state = StateDir.open(tmp_path)
    assert state.read_journal("eth0") is None
    entries = [{"op": "AddAddress", "address": "198.51.100.1/24"}]
    state.write_journal("eth0", entries)
    assert state.read_journal("eth0") == entries
    mode = stat.S_IMODE(os.stat(tmp_path / "ifvip-journal.eth0.jsonl").st_mode)
    assert mode == 0o600
    state.drop_journal("eth0")
    assert state.read_journal("eth0") is None


def test_journal_appends_and_survives_a_torn_last_line(tmp_path: Path) -> None:
    state = StateDir.open(tmp_path)
    state.write_journal("eth0", [{"version": 1}])
    state.append_journal("eth0", [{"stanza": 0}, {"stanza": 1}])
    assert state.read_journal("eth0") == [{"version": 1}, {"stanza": 0}, {"stanza": 1}]
    with open(tmp_path / "ifvip-journal.eth0.jsonl", "a") as journal:
        journal.write('{"stanza": 2, "op": {"op": "AddAdd')  # killed while writing
    assert state.read_journal("eth0") == [{"version": 1}, {"stanza": 0}, {"stanza": 1}]
    (tmp_path / "ifvip-journal.eth0.jsonl").write_text('{"version": 1}\nnot json\n{}\n')
    with pytest.raises(StateError, match="unreadable journal"):
        state.read_journal("eth0")


def _hold(
    path: str, ready: multiprocessing.synchronize.Event, release: multiprocessing.synchronize.Event
) -> None:  # type: ignore[name-defined]
    with StateDir.open(path).lock("eth0"):
        ready.set()
        release.wait(10)


def test_lock_waits_for_another_process_with_a_bound(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold, args=(str(tmp_path), ready, release))
    holder.start()
    try:
        assert ready.wait(10)
        with (
            pytest.raises(StateError, match="timed out"),
            StateDir.open(tmp_path).lock("eth0", timeout=0.2),
        ):
            pass
    finally:
        release.set()
        holder.join(10)
    with StateDir.open(tmp_path).lock("eth0", timeout=1):
        pass


def test_read_only_state_dir_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "ifstate").mkdir()  # a directory where the file should be: any user fails
    with pytest.raises(StateError, match="cannot"):
        StateDir.open(tmp_path).record("eth0", "eth0")


def _try_lock(path: str, result: multiprocessing.queues.Queue) -> None:  # type: ignore[name-defined]
    held = StateDir.open(path).try_lock("eth0")
    result.put(held is not None)


def _busy_elsewhere(path: Path) -> bool:
    ctx = multiprocessing.get_context("fork")
    result = ctx.Queue()
    child = ctx.Process(target=_try_lock, args=(str(path), result))
    child.start()
    child.join(10)
    return not result.get(timeout=10)


def test_lock_stays_held_while_the_state_is_read_and_written(tmp_path: Path) -> None:
    """An fcntl lock goes when the process closes any descriptor of the file: reading and
    writing `ifstate.eth0` under the lock must go through the lock's own descriptor."""
    state = StateDir.open(tmp_path)
    said: list[str] = []
    with state.lock("eth0", waiting=said.append):
        state.record("eth0", "work")
        assert state.logical("eth0") == "work"
        assert state.settled_logical("eth0", timeout=0.1) == "work"  # ours: no waiting
        assert _busy_elsewhere(tmp_path)
        state.record("eth0", None)
        assert state.logical("eth0") is None
        assert _busy_elsewhere(tmp_path)
        # Another task of this process waits as well.
        assert state.try_lock("eth0") is None
    assert said == []
    assert (tmp_path / "ifstate.eth0").read_text() == ""
    assert not _busy_elsewhere(tmp_path)


def test_lock_says_it_waits_as_ifupdown_does(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold, args=(str(tmp_path), ready, release))
    holder.start()
    said: list[str] = []
    try:
        assert ready.wait(10)
        with (
            pytest.raises(StateError, match="timed out"),
            StateDir.open(tmp_path).lock("eth0", timeout=0.2, waiting=said.append),
        ):
            pass
    finally:
        release.set()
        holder.join(10)
    assert said == [f"waiting for lock on {tmp_path}/ifstate.eth0"]
