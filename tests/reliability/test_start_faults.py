"""Bad starts: a missing interface, a state directory that cannot be written.

Each must end `ifvip run` with one clear sentence (no traceback) and a non-zero exit, and
leave the namespace as it was: no VIP added, nothing half-applied.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.programs import AS_ROOT
from tests.reliability.harness import IFVIP, VIP, PairLab

pytestmark = [
    pytest.mark.root,
    AS_ROOT,
]


def _addresses(lab: PairLab) -> set[str]:
    return {a for a in lab.lab.addresses("h1")}


def _run(
    lab: PairLab, argv: list[str], *, wrap: str | None = None
) -> subprocess.CompletedProcess[str]:
    command = [IFVIP, "run", "-s", lab.address("h1"), "-v", "42", "-p", "secret", "-a", VIP, *argv]
    if wrap is not None:  # a shell line run in a private mount namespace first
        command = ["unshare", "-m", "sh", "-c", f'{wrap} && exec "$@"', "sh", *command]
    return subprocess.run(
        ["ip", "netns", "exec", lab.lab.hosts["h1"].netns, *command],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )


def test_a_missing_interface_is_a_config_error_and_nothing_is_applied(lab: PairLab) -> None:
    before = _addresses(lab)
    result = _run(lab, ["-i", "nosuch0", "--state-dir", str(lab.tmp / "state")])
    assert result.returncode == 78, result
    assert "no such interface 'nosuch0'" in result.stderr
    assert "Traceback" not in result.stderr
    assert _addresses(lab) == before


def test_a_read_only_state_dir_is_a_clear_error_and_nothing_is_applied(lab: PairLab) -> None:
    before = _addresses(lab)
    readonly = lab.tmp / "ro"
    readonly.mkdir()
    result = _run(
        lab,
        ["-i", "eth0", "--state-dir", str(readonly / "state")],
        wrap=f"mount -t tmpfs -o ro,size=64k none {readonly}",
    )
    assert _addresses(lab) == before
    assert result.returncode == 78, result
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    assert str(Path(readonly / "state")) in result.stderr
