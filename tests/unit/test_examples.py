"""Every file in interfaces.d-examples/ is valid for `ifvip check` and `ifvip ifup -n`, says
what it is for and how to run it, and its `ifvip run` command lines are ones ifvip accepts."""

from __future__ import annotations

import ipaddress
import os
import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from ifvip.cli import cli

EXAMPLES = Path(__file__).resolve().parents[2] / "interfaces.d-examples"
FILES = sorted(EXAMPLES.glob("*.interfaces"))
ALLOWED = [
    ipaddress.ip_network(net)
    for net in ("198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32", "fe80::/10")
]


def _header(path: Path) -> list[str]:
    lines = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        lines.append(line[1:].strip())
    return lines


def _run_commands(path: Path) -> list[list[str]]:
    """The `ifvip run ...` command lines of the header, continuations joined."""
    commands, current = [], ""
    for line in _header(path):
        if current:
            current += " " + line
        elif line.startswith("ifvip run"):
            current = line
        if current and current.endswith("\\"):
            current = current[:-1].rstrip()
            continue
        if current:
            commands.append(shlex.split(current)[2:])
            current = ""
    return commands


def _stanzas(path: Path) -> set[str]:
    return {line.split()[1] for line in path.read_text().splitlines() if line.startswith("iface ")}


def test_the_examples_the_issue_asks_for_are_there() -> None:
    assert {path.stem for path in FILES} >= {
        "dmz-dual-stack",
        "single-vip",
        "ucarp-debian",
        "vrrp-ipv6",
        "policy-routing",
        "dmz-dual-homed",
    }


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_example_passes_ifvip_check(path: Path) -> None:
    done = CliRunner().invoke(cli, ["check", "-i", str(path)])
    assert done.exit_code == 0, done.output
    assert "error:" not in done.output
    assert " 0 error(s)" in done.stderr


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_example_plans_with_ifup_no_act(path: Path, tmp_path: Path) -> None:
    stanzas = sorted(_stanzas(path))
    done = CliRunner().invoke(
        cli, ["ifup", "-n", "-i", str(path), "--state-dir", str(tmp_path), *stanzas]
    )
    assert done.exit_code == 0, done.output
    # Every address of the file is in the plan, and -n touched nothing.
    for line in path.read_text().splitlines():
        words = line.split()
        if words[:1] == ["address"]:
            assert words[1].split("/")[0] in done.stderr, (path.name, words[1])
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_example_says_what_it_is_for_and_how_to_run_it(path: Path) -> None:
    header = "\n".join(_header(path))
    assert header.startswith(f"{path.stem}: "), "the first line names the example"
    assert "What it is for:" in header
    assert "How to run it" in header
    assert "ifvip check -i /etc/network/interfaces" in header
    assert _run_commands(path), "no `ifvip run` command line in the header"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_example_run_commands_are_valid(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith(("IFVIP_", "UCARP_"))]:
        monkeypatch.delenv(name)
    run = cli.commands["run"]
    for argv in _run_commands(path):
        with run.make_context("run", argv) as ctx:
            params = ctx.params
        if params.get("interfaces_file"):
            assert params["interfaces_file"] == "/etc/network/interfaces"
        for target in params.get("manage") or ():
            # --manage names a stanza of this file (IFACE=LOGICAL: the logical one).
            assert target.split("=")[-1] in _stanzas(path), target
        assert not params.get("password"), "passwords go in files, not on command lines"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_example_uses_documentation_addresses_only(path: Path) -> None:
    text = path.read_text()
    seen = 0
    for token in re.findall(r"[0-9A-Fa-f:.]*[.:][0-9A-Fa-f:.]+", text):
        try:
            address = ipaddress.ip_address(token.strip(".:"))
        except ValueError:
            continue
        if address.version == 4 and str(address).startswith(("255.", "0.")):
            continue  # a netmask
        seen += 1
        assert any(address in net for net in ALLOWED), (path.name, str(address))
    assert seen
