"""`ifvip run` warns at start, once per file, about a world-readable password file."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from ifvip.cli import cli

SECRET = "s3cr3t-pw"


def _passfile(tmp_path: Path, mode: int) -> Path:
    path = tmp_path / "carp.pass"
    path.write_text(SECRET + "\n")
    os.chmod(path, mode)
    return path


def _run(args: list[str], env: dict[str, str] | None = None) -> int:
    # No such interface: the configuration is refused (78) after the start-up checks.
    argv = ["run", "-i", "nosuch0", "-s", "198.51.100.1", "-v", "42", "-a", "198.51.100.100"]
    result = CliRunner().invoke(cli, argv + args, env=env)
    return result.exit_code


@pytest.mark.parametrize("how", ["--passfile", "UCARP_PASS_FILE"])
def test_a_world_readable_passfile_is_warned_about_once_without_the_password(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, how: str
) -> None:
    path = _passfile(tmp_path, 0o644)
    caplog.set_level(logging.WARNING, logger="ifvip")
    if how == "--passfile":
        code = _run(["--passfile", str(path)])
    else:
        code = _run([], env={"UCARP_PASS_FILE": str(path)})
    assert code == 78
    warnings = [r.getMessage() for r in caplog.records if "world-readable" in r.getMessage()]
    assert warnings == [f"password file {path} is world-readable (mode 0644): chmod o-r {path}"]
    assert SECRET not in caplog.text


def test_the_vrrp_auth_pass_file_is_checked_too(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = _passfile(tmp_path, 0o604)
    caplog.set_level(logging.WARNING, logger="ifvip")
    argv = ["run", "--protocol", "vrrp", "-i", "nosuch0", "--vrid", "51"]
    argv += ["--vip", "198.51.100.100/24", "--auth-pass-file", str(path)]
    result = CliRunner().invoke(cli, argv)
    assert result.exit_code == 78
    assert sum("world-readable" in r.getMessage() for r in caplog.records) == 1
    assert SECRET not in caplog.text


def test_a_private_passfile_draws_no_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = _passfile(tmp_path, 0o600)
    caplog.set_level(logging.WARNING, logger="ifvip")
    assert _run(["--passfile", str(path)]) == 78
    assert "world-readable" not in caplog.text
