"""The man pages are generated from the CLI and the option schema and must stay in step."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import click
import pytest

from ifvip.cli import cli
from ifvip.interfaces.options import COMMON, METHODS
from ifvip.manpage import pages

MAN = Path(__file__).resolve().parents[2] / "man"


def test_committed_pages_are_the_generated_ones() -> None:
    for name, text in pages().items():
        assert (MAN / name).read_text() == text, (
            f"man/{name} is stale: run `python -m ifvip.manpage man`"
        )


def test_every_command_and_option_is_documented() -> None:
    page = pages()["ifvip.8"].replace("\\-", "-")
    for name, command in cli.commands.items():
        assert f".SS {name}" in page
        for param in command.params:
            if isinstance(param, click.Option):
                for opt in param.opts:
                    assert opt in page, f"{name} {opt} is not in ifvip.8"


def test_every_schema_option_is_documented() -> None:
    page = pages()["ifvip-interfaces.5"].replace("\\-", "-")
    for spec in METHODS:
        if spec.family != "meta":
            assert f".SS {spec.family} {spec.name}" in page
            for option in spec.options:
                assert f"\\fB{option.name}\\fR" in page
    for option in COMMON:
        assert f"\\fB{option.name}\\fR" in page


@pytest.mark.skipif(shutil.which("groff") is None, reason="groff is not installed")
@pytest.mark.parametrize("name", ["ifvip.8", "ifvip-interfaces.5"])
def test_pages_render_without_warnings(name: str) -> None:
    done = subprocess.run(
        ["groff", "-man", "-ww", "-z", str(MAN / name)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert (done.returncode, done.stderr) == (0, "")
