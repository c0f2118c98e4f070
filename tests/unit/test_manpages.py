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


def test_an_option_or_command_without_help_fails_the_generator() -> None:
    from ifvip.manpage import UndocumentedError, ifvip_8

    @click.group()
    def group() -> None:
        """A group."""

    @group.command()
    @click.option("--documented", help="Has a help text.")
    @click.option("--bare")
    def thing(documented: str | None, bare: str | None) -> None:
        """A command."""

    with pytest.raises(UndocumentedError, match="ifvip thing --bare has no help text"):
        ifvip_8(group)

    @click.group()
    def other() -> None:
        """Another group."""

    @other.command()
    def silent() -> None:
        pass

    with pytest.raises(UndocumentedError, match="ifvip silent has no help text"):
        ifvip_8(other)


def test_environment_signals_exit_codes_and_files_are_documented() -> None:
    from ifvip.manpage import env_names

    page = pages()["ifvip.8"].replace("\\-", "-")
    for section in ("ENVIRONMENT", "SIGNALS", "EXIT STATUS", "FILES"):
        assert f".SH {section}" in page
    environment = page[page.index(".SH ENVIRONMENT") : page.index(".SH SIGNALS")]
    for name, command in cli.commands.items():
        for param in command.params:
            if isinstance(param, click.Option):
                for env in env_names(name, param):
                    assert env in page, f"{env} ({name} {param.opts[0]}) is not in ifvip.8"
                    if param.envvar:
                        assert env in environment, f"{env} is not under ENVIRONMENT"
    assert "UCARP_PASS_FILE" in environment
    for signal in ("SIGTERM", "SIGINT", "SIGHUP", "SIGUSR1", "SIGUSR2"):
        assert signal in page
    for code in ("0", "1", "2", "78"):
        assert f".TP\n{code}\n" in page
    for path in ("/etc/network/interfaces", "/run/network/", "/run/ifvip/"):
        assert f"\\fI{path}\\fR" in page
