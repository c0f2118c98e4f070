"""Bad `ifvip run` configurations, through the command line: each exits 78 (EX_CONFIG) with a
line naming the option, never echoing a password, and before anything runs.

The daemon entry point is replaced by one that fails the test, so a case that slipped through
validation cannot start a group; interfaces are `lo` (present in every namespace) and the
state directory is the test's own, so nothing of the host is read or written beyond
/sys/class/net.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ifvip.cli import cli
from ifvip.daemon import launch
from ifvip.daemon.settings import EX_CONFIG

PASSWORD = "pw-Zq8"  # a valid CARP password, looked for in every output
LONG_CARP = "carp-password-of-20b"  # 20 bytes: over ucarp's 19
LONG_VRRP = "vrrp-pw-9"  # 9 bytes: over VRRPv2's 8

CARP = ["-i", "lo", "-s", "198.51.100.1", "-v", "42", "-p", PASSWORD, "-a", "198.51.100.100"]
VRRP = ["--protocol", "vrrp", "-i", "lo", "-s", "198.51.100.1", "--vrid", "51"]
VRRP += ["--vip", "198.51.100.100/24"]


def _without(argv: list[str], *options: str) -> list[str]:
    """argv minus these options and their values."""
    out: list[str] = []
    skip = False
    for word in argv:
        if skip:
            skip = False
        elif word in options:
            skip = True
        else:
            out.append(word)
    return out


def _carp(*changes: str, drop: tuple[str, ...] = ()) -> list[str]:
    return [*_without(CARP, *drop), *changes]


# (case id, argv after `run`, the option the message must name, secrets it must not show)
CASES: list[tuple[str, list[str], str, tuple[str, ...]]] = [
    ("unknown interface", _carp("-i", "nosuch0"), "--interface", ()),
    ("interface name too long", _carp("-i", "x" * 16), "--interface", ()),
    ("VIP not an address", _carp("-a", "198.51.100.300"), "--addr", ()),
    ("--vip not an address", _carp("--vip", "not-an-address/24"), "--vip", ()),
    ("vhid 0", _carp("-v", "0"), "--vhid", ()),
    ("vhid 256", _carp("-v", "256"), "--vhid", ()),
    ("vhid not a number", _carp("-v", "forty-two"), "--vhid", ()),
    ("CARP password over 19 bytes", _carp("-p", LONG_CARP), "--pass", (LONG_CARP,)),
    (
        "VRRPv2 password over 8 bytes",
        [*VRRP, "--vrrp-version", "2", "--auth-pass", LONG_VRRP],
        "--auth-pass",
        (LONG_VRRP,),
    ),
    ("check URL malformed", _carp("--check-http", "ftp://example/"), "--check-http", ()),
    ("check URL without host", _carp("--check-http", "http://"), "--check-http", ()),
    ("check port 0", _carp("--check-tcp", "0"), "--check-tcp", ()),
    ("check port 65536", _carp("--check-tcp", "198.51.100.5:65536"), "--check-tcp", ()),
    ("check interval not a number", _carp("--check-interval", "soon"), "--check-interval", ()),
    ("--pass with --passfile", _carp("-o", "/dev/null"), "--passfile", (PASSWORD,)),
    ("--manage without --interfaces", _carp("--manage", "eth0"), "--manage", ()),
    ("advbase not a number", _carp("-b", "fast"), "--advbase", ()),
    ("advbase 256", _carp("-b", "256"), "--advbase", ()),
    ("advbase 0 with advskew 0", _carp("-b", "0", "-k", "0"), "--advbase", ()),
    ("advskew 256", _carp("-k", "256"), "--advskew", ()),
    ("deadratio 0", _carp("-r", "0"), "--deadratio", ()),
    ("masklen 33", _carp("--masklen", "33"), "--masklen", ()),
    ("mcast not multicast", _carp("--mcast", "198.51.100.7"), "--mcast", ()),
    ("metrics not ADDR:PORT", _carp("--metrics", "nowhere"), "--metrics", ()),
    ("metrics port 70000", _carp("--metrics", "198.51.100.1:70000"), "--metrics", ()),
    ("status socket relative", _carp("--status-socket", "ifvip.sock"), "--status-socket", ()),
    (
        "unreadable passfile",
        _carp("-o", "/nonexistent/ifvip-pass", drop=("-p",)),
        "--passfile",
        (),
    ),
    ("unknown protocol", _carp("--protocol", "hsrp"), "--protocol", (PASSWORD,)),
    ("VRRP version 4", [*VRRP, "--vrrp-version", "4"], "--vrrp-version", ()),
    ("VRRP vrid 0", [*_without(VRRP, "--vrid"), "--vrid", "0"], "--vrid", ()),
    ("VRRP priority 256", [*VRRP, "--priority", "256"], "--priority", ()),
    ("VRRP with a CARP password", [*VRRP, "-p", PASSWORD], "-p/-o/-a", (PASSWORD,)),
    ("no password at all", _carp(drop=("-p",)), "--pass", ()),
    ("upscript not executable", _carp("-u", "/nonexistent/up"), "--upscript", ()),
    ("garp repeat negative", _carp("--garp-repeat", "-1"), "--garp-repeat", ()),
    ("--vip on no such device", _carp("--vip", "198.51.100.101/24@nosuch0"), "--vip", ()),
    ("VRRP --vip on no such device", [*VRRP, "--vip", "198.51.100.9/24@nosuch0"], "--vip", ()),
    ("VIP equal to the source", _carp("-a", "198.51.100.1"), "--addr", ()),
    (
        "missing --interfaces file",
        _carp("--interfaces", "/nonexistent/ifvip-interfaces"),
        "--interfaces: cannot read /nonexistent/ifvip-interfaces: No such file",
        (),
    ),
    (
        "missing --interfaces file with --manage",
        _carp("--interfaces", "/nonexistent/ifvip-interfaces", "--manage", "lo:1"),
        "--interfaces: cannot read /nonexistent/ifvip-interfaces: No such file",
        (),
    ),
]


@pytest.fixture
def no_daemon(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a bad configuration reached the daemon")

    monkeypatch.setattr(launch, "run_plan", refuse)
    monkeypatch.setattr(launch, "detach", refuse)


def _no_settings() -> dict[str, str | None]:
    """No IFVIP_*/UCARP_* setting reaches the command, but the session's own directories
    (tests/conftest.py) do: the reading cache must not go to the machine's /run/ifvip."""
    keep = ("IFVIP_CACHE_DIR", "IFVIP_STATE_DIR")
    return {k: None for k in os.environ if k.startswith(("IFVIP_", "UCARP_")) and k not in keep}


@pytest.mark.usefixtures("no_daemon")
@pytest.mark.parametrize(
    ("argv", "option", "secrets"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_a_bad_configuration_exits_78_naming_the_option(
    argv: list[str], option: str, secrets: tuple[str, ...], tmp_path: Path
) -> None:
    state = tmp_path / "state"
    env = _no_settings()
    result = CliRunner().invoke(cli, ["run", *argv, "--state-dir", str(state)], env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert result.exit_code == EX_CONFIG, result.output
    assert option in result.output, result.output
    for secret in (*secrets, PASSWORD, LONG_CARP, LONG_VRRP):
        assert secret not in result.output
    assert not state.exists(), "validation must come before the state directory is made"


def test_at_least_fifteen_cases() -> None:
    assert len(CASES) >= 15
    assert len({c[0] for c in CASES}) == len(CASES)


@pytest.mark.usefixtures("no_daemon")
def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    argv = _carp("-v", "0", "-a", "nowhere", "--check-tcp", "0", "--metrics", "x")
    result = CliRunner().invoke(cli, ["run", *argv, "--state-dir", str(tmp_path / "s")])
    assert result.exit_code == EX_CONFIG
    lines = [line for line in result.output.splitlines() if line.startswith("ifvip run: ")]
    named = {line.split()[2].rstrip(":") for line in lines}
    assert {"--vhid", "--addr"} <= named, result.output


@pytest.mark.usefixtures("no_daemon")
def test_a_passfile_password_over_19_bytes_is_not_shown(tmp_path: Path) -> None:
    passfile = tmp_path / "pass"
    passfile.write_text(LONG_CARP + "\n")
    argv = [*_without(CARP, "-p"), "-o", str(passfile), "--state-dir", str(tmp_path / "s")]
    result = CliRunner().invoke(cli, ["run", *argv])
    assert result.exit_code == EX_CONFIG
    assert "--pass" in result.output and LONG_CARP not in result.output


UCARP_STANZA = """iface lo inet static
    address 198.51.100.1/24
    ucarp-vid {vid}
    ucarp-vip 198.51.100.100
    ucarp-password pw-Zq8
"""


def _run_file(tmp_path: Path, text: str, *argv: str) -> Any:
    config = tmp_path / "interfaces"
    config.write_text(text)
    env = _no_settings()
    argv = ("--interfaces", str(config), *argv, "--state-dir", str(tmp_path / "state"))
    return CliRunner().invoke(cli, ["run", *argv], env=env)


@pytest.mark.usefixtures("no_daemon")
@pytest.mark.parametrize(
    ("text", "argv", "said"),
    [
        pytest.param(
            UCARP_STANZA.format(vid=42)
            + "\niface lo:ucarp inet manual\n\n"
            + UCARP_STANZA.format(vid=42),
            (),
            "interfaces:9:1: ucarp-vid 42 on lo is already the group of ",
            id="the same vhid twice in the file",
        ),
        pytest.param(
            UCARP_STANZA.format(vid=42),
            (),
            "ucarp-vid needs an 'iface lo:ucarp' stanza",
            id="ucarp-vid without its IFACE:ucarp stanza",
        ),
        pytest.param(
            "iface lo:1 inet manual\n",
            (*CARP, "--manage", "lo:2"),
            "--manage: no stanza 'lo:2' in ",
            id="--manage of no stanza",
        ),
        pytest.param(
            UCARP_STANZA.format(vid=42) + "\niface lo:ucarp inet manual\n",
            (*CARP, "--manage", "lo:ucarp"),
            "--vhid: 42 on lo is also the ucarp-vid of ",
            id="the same vhid in the file and on the command line",
        ),
        pytest.param(
            UCARP_STANZA.format(vid=42) + "\niface lo:ucarp inet manual\n",
            ("-v", "42"),
            "--vhid: 42 on lo is also the ucarp-vid of ",
            id="-v of a ucarp-vid group of the file, without --manage",
        ),
        pytest.param(
            "iface lo:1 inet manual\n",
            (*VRRP, "--manage", "lo:2"),
            "--manage: no stanza 'lo:2' in ",
            id="VRRP --manage of no stanza",
        ),
    ],
)
def test_an_interfaces_file_that_would_run_wrong_is_refused(
    tmp_path: Path, text: str, argv: tuple[str, ...], said: str
) -> None:
    result = _run_file(tmp_path, text, *argv)
    assert result.exit_code == EX_CONFIG, result.output
    assert said in result.output, result.output
    assert PASSWORD not in result.output
