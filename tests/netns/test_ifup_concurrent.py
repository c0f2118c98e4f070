"""Concurrent commands on one interface: the per-interface lock is held for the whole
ifup, and a second command waits for it as ifupdown's does (`waiting for lock on ...`)."""

from __future__ import annotations

import contextlib
import os
import select
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.netns.kernelstate import IFVIP, Twins, snapshot
from tests.programs import AS_ROOT

pytestmark = [pytest.mark.root, AS_ROOT]


def _config(tmp_path: Path) -> tuple[Path, Path, Path]:
    """An interfaces file whose `up` hook waits (at most 30 s) for a release file."""
    started, release = tmp_path / "hook-started", tmp_path / "release"
    config = tmp_path / "interfaces"
    config.write_text(
        "iface eth0 inet static\n"
        "    address 203.0.113.5/24\n"
        "    up ip route add 198.51.100.0/26 via 203.0.113.1 dev $IFACE table 100\n"
        f"    up touch {started}; for i in $(seq 600); do [ -e {release} ] && break;"
        " sleep 0.05; done\n"
        "    up ip addr add 203.0.113.6/24 dev $IFACE\n"
    )
    return config, started, release


def _argv(ns: str, command: str, config: Path, state: Path) -> list[str]:
    argv = ["ip", "netns", "exec", ns, *IFVIP, command, "-i", str(config)]
    return [*argv, f"--state-dir={state}", "--no-scripts", "eth0"]


def _wait_for(path: Path) -> None:
    deadline = time.monotonic() + 30
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert path.exists(), f"{path.name} never appeared"


def _read_until(child: subprocess.Popen[bytes], text: str, timeout: float = 30) -> str:
    """The child's stderr up to the line holding `text` (or all of it, if it exits first)."""
    assert child.stderr is not None
    fd = child.stderr.fileno()
    seen = b""
    deadline = time.monotonic() + timeout
    while text.encode() not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            seen += chunk
    return seen.decode()


@contextlib.contextmanager
def _started(argv: list[str]) -> Iterator[subprocess.Popen[bytes]]:
    with subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) as child:
        try:
            yield child
        finally:
            if child.poll() is None:
                child.kill()


def _finish(child: subprocess.Popen[bytes], said: str) -> tuple[int, str]:
    assert child.stderr is not None
    rest = child.stderr.read().decode()
    return child.wait(timeout=30), said + rest


def test_second_command_waits_for_a_slow_ifup(tmp_path: Path) -> None:
    """A second `ifup eth0` waits for the running one, then says already configured; an
    `ifdown eth0` during a slow `ifup eth0` waits for it, then undoes all of it."""
    config, started, release = _config(tmp_path)
    state = tmp_path / "state"
    lock = f"{state}/ifstate.eth0"
    with Twins(1) as twins:
        (ns,) = twins.names
        before = snapshot(ns)

        with _started(_argv(ns, "ifup", config, state)) as first:
            _wait_for(started)
            with _started(_argv(ns, "ifup", config, state)) as second:
                said = _read_until(second, "waiting for lock")
                assert f"ifup: waiting for lock on {lock}\n" in said
                assert second.poll() is None  # still waiting while the first one runs
                release.touch()
                assert _finish(first, "") == (0, "")
                code, said = _finish(second, said)
                assert (code, said) == (
                    0,
                    f"ifup: waiting for lock on {lock}\nifup: interface eth0 already configured\n",
                )
        assert "203.0.113.6" in before.diff(snapshot(ns))

        down = subprocess.run(
            _argv(ns, "ifdown", config, state),
            check=False,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert down.returncode == 0, down.stderr
        assert snapshot(ns).diff(before) == ""

        started.unlink()
        release.unlink()
        with _started(_argv(ns, "ifup", config, state)) as first:
            _wait_for(started)
            with _started(_argv(ns, "ifdown", config, state)) as down_child:
                said = _read_until(down_child, "waiting for lock")
                assert f"ifdown: waiting for lock on {lock}\n" in said
                assert down_child.poll() is None
                release.touch()
                assert _finish(first, "") == (0, "")
                assert _finish(down_child, said) == (0, f"ifdown: waiting for lock on {lock}\n")
        # Everything the ifup did, the last address included, is gone; the state says so.
        assert snapshot(ns).diff(before) == ""
        assert (state / "ifstate").read_text() == ""
        assert (state / "ifstate.eth0").read_text() == ""
        assert not (state / "ifvip-journal.eth0.jsonl").exists()
