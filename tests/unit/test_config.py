"""CARP group configuration: ucarp's options and rules, every problem named, secrets hidden."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ifvip.daemon.config import ConfigProblems, Secret, build_carp_group, env_defaults

GOOD: dict[str, Any] = {
    "interface": "eth0",
    "srcip": "198.51.100.1",
    "vhid": "42",
    "password": "secret",
    "passfile": None,
    "addr": "198.51.100.100",
}


def _problems(**changes: Any) -> list[str]:
    with pytest.raises(ConfigProblems) as error:
        build_carp_group(**{**GOOD, **changes})
    return error.value.problems


def test_a_ucarp_command_line_becomes_a_group() -> None:
    group = build_carp_group(**GOOD, advskew="0x10", masklen="24", links=["lo", "eth0"])
    assert (group.vhid, group.advskew, group.advbase, group.deadratio) == (42, 16, 1, 3)
    assert str(group.vips[0]) == "198.51.100.100/24"
    assert group.addr == "198.51.100.100"


@pytest.mark.parametrize(
    ("changes", "option"),
    [
        ({"vhid": "0"}, "--vhid"),
        ({"vhid": "256"}, "--vhid"),
        ({"vhid": "x"}, "--vhid"),
        ({"vhid": None}, "--vhid"),
        ({"srcip": "198.51.100.300"}, "--srcip"),
        ({"srcip": None}, "--srcip"),
        ({"addr": "not-an-ip"}, "--addr"),
        ({"addr": None}, "--addr"),
        ({"password": "x" * 20}, "--pass"),
        ({"password": ""}, "--pass"),
        ({"password": None}, "--pass"),
        ({"interface": None}, "--interface"),
        ({"interface": "a-name-longer-than-15"}, "--interface"),
        ({"advbase": "0", "advskew": "0"}, "--advbase"),
        ({"advskew": "300"}, "--advskew"),
        ({"deadratio": "0"}, "--deadratio"),
        ({"mcast": "198.51.100.9"}, "--mcast"),
        ({"upscript": "/nonexistent/up"}, "--upscript"),
        ({"masklen": "33"}, "--masklen"),
        ({"vips": ["2001:db8::1/129"]}, "--vip"),
        ({"manage": ["eth1"]}, "--manage"),
    ],
)
def test_each_bad_option_is_named(changes: dict[str, Any], option: str) -> None:
    problems = _problems(**changes)
    assert any(p.startswith(option) for p in problems), problems


def test_all_problems_are_reported_at_once() -> None:
    problems = _problems(vhid="0", srcip="bad", addr="bad")
    assert len(problems) == 3


def test_unknown_interface_is_a_problem() -> None:
    assert _problems(links=["lo"]) == ["--interface: no such interface 'eth0'"]


def test_passfile_first_line_only_and_never_shown(tmp_path: Path) -> None:
    passfile = tmp_path / "pass"
    passfile.write_bytes(b"hunter2\nsecond line\n")
    group = build_carp_group(**{**GOOD, "password": None, "passfile": str(passfile)})
    assert group.password == Secret(b"hunter2")
    assert "hunter2" not in repr(group) and "hunter2" not in str(group.password)
    problems = _problems(password=None, passfile=str(tmp_path / "missing"))
    assert problems[0].startswith("--passfile: cannot read")
    too_long = tmp_path / "long"
    too_long.write_text("y" * 25 + "\n")
    problems = _problems(password=None, passfile=str(too_long))
    assert all("y" * 25 not in p for p in problems)


def test_kubernetize_environment_maps_to_options() -> None:
    found = env_defaults({"UCARP_ADDR": "198.51.100.100", "UCARP_VHID": "7", "OTHER": "x"})
    assert found == {"addr": "198.51.100.100", "vhid": "7"}
