"""VRRP groups and sync groups declared in the interfaces file: the vrrp-* options and
ifvip-sync-group in the option schema (check, problems at path:line:col), and
vrrp_groups_from_interfaces / carp_groups_from_interfaces filling the group configs."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Any

import pytest

from ifvip.daemon.carp.config import carp_groups_from_interfaces
from ifvip.daemon.settings import ConfigProblems, HostAddress
from ifvip.daemon.vrrp.config import build_vrrp_group, vrrp_groups_from_interfaces
from ifvip.interfaces.check import check
from ifvip.interfaces.loader import load
from ifvip.interfaces.options import COMMON, common_option

PASSWORD = "pw-Zq8x"  # a pass file's text: never in any message

BASE = """\
iface eth0 inet static
  address 198.51.100.1/24
  vrrp-id 51
  vrrp-address 198.51.100.10/24
"""


def _errors(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "interfaces"
    path.write_text(text)
    return [str(e) for e in check(load(str(path))) if not e.warning]


def _groups(tmp_path: Path, text: str, links: Any = ("eth0", "eth1")) -> list[Any]:
    path = tmp_path / "interfaces"
    path.write_text(text)
    return vrrp_groups_from_interfaces(load(str(path)), str(path), links, build=build_vrrp_group)


def _problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigProblems) as found:
        _groups(tmp_path, text)
    return found.value.problems


# ----------------------------------------------------------------------------- schema

GOOD = [
    ("vrrp-priority", "254"),
    ("vrrp-version", "3"),
    ("vrrp-advert-int", "0.5"),
    ("vrrp-preempt", "no"),
    ("vrrp-nopreempt", "yes"),
    ("vrrp-preempt-delay", "10"),
    ("vrrp-auth-pass-file", "/etc/ifvip/vrrp.pass"),
    ("vrrp-unicast-peer", "198.51.100.2 198.51.100.3"),
    ("vrrp-srcip", "198.51.100.1"),
    ("vrrp-manage", "eth0:routes eth0:more"),
    ("vrrp-notify", "/usr/local/bin/a /usr/local/bin/b"),
    ("vrrp-instance", "VI_outside-1"),
    ("vrrp-upscript", "/usr/local/bin/up"),
    ("vrrp-downscript", "/usr/local/bin/down"),
    ("vrrp-xparam", "anything at all"),
    ("vrrp-checksum", "message-only"),
    ("vrrp-garp-master-repeat", "3"),
    ("vrrp-garp-master-delay", "0"),
    ("vrrp-garp-master-refresh", "60"),
    ("vrrp-vip-lifetime", "0"),
    ("vrrp-ignoreifstate", "yes"),
    ("ifvip-sync-group", "dmz"),
]

BAD = [
    ("vrrp-id", "0"),
    ("vrrp-id", "256"),
    ("vrrp-address", "198.51.100.300/24"),
    ("vrrp-address", "198.51.100.10/24 2001:db8::10/64"),
    ("vrrp-address", "198.51.100.10/24@"),
    ("vrrp-priority", "0"),
    ("vrrp-priority", "high"),
    ("vrrp-version", "4"),
    ("vrrp-advert-int", "-1"),
    ("vrrp-advert-int", "nan"),
    ("vrrp-advert-int", "1e0"),  # keepalived reads plain decimals
    ("vrrp-preempt-delay", "+5"),
    ("vrrp-preempt", "maybe"),
    ("vrrp-nopreempt", "1"),
    ("vrrp-preempt-delay", "soon"),
    ("vrrp-unicast-peer", "198.51.100.2 peer-b"),
    ("vrrp-srcip", "eth0"),
    ("vrrp-instance", "two words"),
    ("vrrp-checksum", "crc32"),
    ("vrrp-garp-master-repeat", "0"),
    ("vrrp-garp-master-delay", "x"),
    ("vrrp-garp-master-refresh", "-5"),
    ("vrrp-vip-lifetime", "-1"),
    ("vrrp-ignoreifstate", "true"),
    ("ifvip-sync-group", "dmz group"),
    ("ifvip-sync-group", "dmz/1"),
]


def test_every_vrrp_option_has_one_schema_entry_with_help() -> None:
    names = [o.name for o in COMMON]
    assert len(names) == len(set(names))
    for name, _value in GOOD:
        spec = common_option(name)
        assert spec is not None, name
        assert spec.help
    assert common_option("vrrp-id") is not None and common_option("vrrp-address") is not None


@pytest.mark.parametrize(("name", "value"), GOOD, ids=[g[0] for g in GOOD])
def test_check_accepts_good_values(tmp_path: Path, name: str, value: str) -> None:
    text = BASE.replace("vrrp-id 51", "vrrp-id 51\n  vrrp-version 3")
    if name == "vrrp-version":
        text = BASE
    if name == "vrrp-auth-pass-file":
        text = BASE  # v2: VRRPv3 has no authentication
    assert _errors(tmp_path, text + f"  {name} {value}\n") == []


def _with(name: str, value: str) -> tuple[str, int]:
    """BASE with `name value` (in place of BASE's own line for that option), and its line."""
    lines = BASE.splitlines()
    for index, line in enumerate(lines):
        if line.split()[0] == name:
            lines[index] = f"  {name} {value}"
            return "\n".join(lines) + "\n", index + 1
    return BASE + f"  {name} {value}\n", len(lines) + 1


@pytest.mark.parametrize(("name", "value"), BAD, ids=[f"{b[0]} {b[1]}" for b in BAD])
def test_check_names_a_bad_value_at_its_line_and_column(
    tmp_path: Path, name: str, value: str
) -> None:
    text, line = _with(name, value)
    spec = common_option(name)
    assert spec is not None
    assert _errors(tmp_path, text) == [
        f"{tmp_path / 'interfaces'}:{line}:3: {name} '{value}' is not a valid {spec.kind.value}"
    ]


@pytest.mark.parametrize(("name", "value"), BAD, ids=[f"{b[0]} {b[1]}" for b in BAD])
def test_run_refuses_a_bad_value_at_its_line_and_column(
    tmp_path: Path, name: str, value: str
) -> None:
    text, line = _with(name, value)
    problems = _problems(tmp_path, text)
    assert len(problems) == 1
    assert problems[0].startswith(f"{tmp_path / 'interfaces'}:{line}:3: "), problems
    assert f" {name} '{value}' is not a valid " in problems[0]


@pytest.mark.parametrize(
    ("text", "line", "said"),
    [
        pytest.param(
            BASE.replace("  vrrp-address 198.51.100.10/24\n", ""),
            3,
            "vrrp-id needs vrrp-address",
            id="vrrp-id without addresses",
        ),
        pytest.param(
            BASE + "  vrrp-auth-pass " + PASSWORD + "\n",
            5,
            "vrrp-auth-pass: a VRRP password written in the interfaces file is refused",
            id="an inline password",
        ),
        pytest.param(
            BASE + "  vrrp-password " + PASSWORD + "\n",
            5,
            "vrrp-password: a VRRP password written in the interfaces file is refused",
            id="an inline password, another spelling",
        ),
        pytest.param(
            BASE + "  vrrp-prioirty 5\n",
            5,
            "option 'vrrp-prioirty' is not one of ifvip's vrrp-* options",
            id="a misspelt option on a VRRP stanza",
        ),
        pytest.param(
            BASE + "  vrrp-preempt yes\n  vrrp-nopreempt yes\n",
            6,
            "vrrp-nopreempt contradicts vrrp-preempt",
            id="contradicting preemption",
        ),
        pytest.param(
            "iface eth1 inet manual\n  vrrp-priority 100\n",
            2,
            "vrrp-priority without vrrp-id on this stanza",
            id="a vrrp option without its group",
        ),
        pytest.param(
            "iface eth1 inet manual\n  ifvip-sync-group dmz\n",
            2,
            "ifvip-sync-group on a stanza without ucarp-vid or vrrp-id",
            id="a sync group on a stanza that runs no group",
        ),
    ],
)
def test_group_level_problems_in_check_and_run(
    tmp_path: Path, text: str, line: int, said: str
) -> None:
    errors = _errors(tmp_path, text)
    assert [e for e in errors if said in e] == [e for e in errors if f":{line}:" in e]
    assert any(e.startswith(f"{tmp_path / 'interfaces'}:{line}:") and said in e for e in errors)
    assert not any(PASSWORD in e for e in errors)
    if "vrrp-id" in text:
        problems = _problems(tmp_path, text)
        assert any(p.startswith(f"{tmp_path / 'interfaces'}:{line}:") for p in problems)
        assert any(said in p for p in problems), problems
        assert not any(PASSWORD in p for p in problems)


# ------------------------------------------------------------------ groups of a file

FILE = """\
iface eth0 inet static
  address 198.51.100.1/24
  vrrp-id 51
  vrrp-address 198.51.100.10/24 198.51.100.11/24@eth1
  vrrp-priority 150
  vrrp-advert-int 2
  vrrp-nopreempt yes
  vrrp-unicast-peer 198.51.100.2 198.51.100.1
  vrrp-auth-pass-file {passfile}
  vrrp-manage eth0:routes
  vrrp-instance VI_outside
  vrrp-vip-lifetime 30
  vrrp-garp-master-repeat 2
  ifvip-sync-group dmz

iface eth0:routes inet manual
  up true

iface eth1 inet6 manual
  vrrp-id 52
  vrrp-address fe80::52/64 2001:db8:1::52/64
  vrrp-srcip fe80::1
  vrrp-advert-int 0.25
  vrrp-preempt-delay 5
  ifvip-sync-group dmz
"""


def _passfile(tmp_path: Path, text: str = PASSWORD) -> Path:
    passfile = tmp_path / "vrrp.pass"
    passfile.write_text(text + "\n")
    passfile.chmod(0o600)
    return passfile


def test_vrrp_stanzas_become_groups(tmp_path: Path) -> None:
    passfile = _passfile(tmp_path)
    first, second = _groups(tmp_path, FILE.format(passfile=passfile))
    assert (first.interface, first.vrid, first.priority, first.version) == ("eth0", 51, 150, 2)
    assert [str(v) for v in first.vips] == ["198.51.100.10/24", "198.51.100.11/24@eth1"]
    assert first.srcip == ipaddress.ip_address("198.51.100.1")  # the stanza's address
    assert first.advert_int_cs == 200 and not first.preempt
    assert first.unicast_peers == (ipaddress.ip_address("198.51.100.2"),)  # ours skipped
    assert first.password is not None and first.password.value == PASSWORD.encode()
    assert first.manage == ("eth0:routes",) and first.interfaces_file == str(
        tmp_path / "interfaces"
    )
    assert (first.instance, first.lifetime, first.garp_master_repeat) == ("VI_outside", 30, 2)
    assert first.sync_group == "dmz" and first.needs_engine
    assert (second.interface, second.vrid, second.version, second.family) == ("eth1", 52, 3, 6)
    assert second.srcip == ipaddress.ip_address("fe80::1")
    assert second.advert_int_cs == 25 and second.preempt and second.preempt_delay == 5.0
    assert second.sync_group == "dmz" and second.password is None and not second.manage
    assert (first.group_name, second.group_name) == ("vrid 51", "vrid 52")


def test_defaults_match_ifvip_run(tmp_path: Path) -> None:
    (group,) = _groups(tmp_path, BASE)
    flags = build_vrrp_group(
        interface="eth0", srcip="198.51.100.1", vrid="51", vips=["198.51.100.10/24"]
    )
    assert group == type(flags)(**{**flags.__dict__, "interfaces_file": group.interfaces_file})


def test_a_problem_of_the_group_is_named_at_its_option(tmp_path: Path) -> None:
    passfile = _passfile(tmp_path, "longer-than-8")
    text = FILE.format(passfile=passfile).replace("vrrp-advert-int 2", "vrrp-advert-int 1.5")
    problems = _problems(tmp_path, text)
    path = tmp_path / "interfaces"
    assert problems == [
        f"{path}:6:3: vrrp-advert-int: 1.5: VRRPv2 intervals are whole seconds 1..255",
        f"{path}:9:3: vrrp-auth-pass-file: the password is longer than 8 bytes "
        "(keepalived truncates it; give the 8 bytes it uses)",
    ]
    assert not any("longer-than-8" in p for p in problems)


def test_a_missing_pass_file_an_absent_link_and_a_vrid_twice(tmp_path: Path) -> None:
    path = tmp_path / "interfaces"
    text = (
        BASE.replace("vrrp-id 51", "vrrp-id 50")
        + "  vrrp-auth-pass-file /nonexistent/vrrp.pass\n"
        + "\niface eth2 inet static\n  address 198.51.100.3/24\n  vrrp-id 53\n"
        + "  vrrp-address 198.51.100.13/24\n"
        + "\niface eth1 inet static\n  address 198.51.100.4/24\n  vrrp-id 51\n"
        + "  vrrp-address 198.51.100.14/24\n"
        + "\niface eth1 inet6 manual\n  vrrp-id 51\n  vrrp-address fe80::51/64\n"
        + "  vrrp-srcip fe80::1\n"
    )
    assert _problems(tmp_path, text) == [
        f"{path}:5:3: vrrp-auth-pass-file: cannot read /nonexistent/vrrp.pass: "
        "No such file or directory",
        f"{path}:7:1: --interface: no such interface 'eth2'",
        f"{path}:17:1: vrrp-id 51 on eth1 is already the group of {path}:12:1 (one VRID per "
        "interface in one process)",
    ]


def test_a_managed_stanza_must_exist(tmp_path: Path) -> None:
    path = tmp_path / "interfaces"
    problems = _problems(tmp_path, BASE + "  vrrp-manage eth0:none\n")
    assert problems == [f"{path}:1:1: vrrp-manage: no stanza 'eth0:none' in {path}"]


def test_a_ucarp_stanza_names_its_sync_group(tmp_path: Path) -> None:
    path = tmp_path / "interfaces"
    ucarp = (
        "iface eth0 inet static\n  address 198.51.100.1/24\n  ucarp-vid 42\n"
        "  ucarp-vip 198.51.100.100\n  ucarp-password secret\n  ifvip-sync-group {}\n"
        "\niface eth0:ucarp inet static\n  address 198.51.100.100/24\n"
    )
    path.write_text(ucarp.format("dmz"))
    (group,) = carp_groups_from_interfaces(load(str(path)), str(path))
    assert group.sync_group == "dmz"
    path.write_text(ucarp.format("dmz group"))
    with pytest.raises(ConfigProblems) as found:
        carp_groups_from_interfaces(load(str(path)), str(path))
    assert found.value.problems == [
        f"{path}:6:3: ifvip-sync-group 'dmz group' is not a valid "
        "word (letters, digits, '-', '_', '.')"
    ]


# ------------------------------------------------- one `ifvip run --interfaces FILE` process

MIXED = """\
iface eth0 inet static
  address 198.51.100.1/24
  ucarp-vid 1
  ucarp-vip 198.51.100.100
  ucarp-password secret
  ifvip-sync-group dmz

iface eth0:ucarp inet static
  address 198.51.100.100/24

iface eth1 inet static
  address 203.0.113.1/24
  ucarp-vid 1
  ucarp-vip 203.0.113.100
  ucarp-password secret
  vrrp-id 1
  vrrp-address 203.0.113.51/24
  vrrp-priority {priority}

iface eth1:ucarp inet static
  address 203.0.113.100/24

iface eth1 inet6 manual
  vrrp-id 2
  vrrp-address fe80::2/64 2001:db8:1::2/64
  vrrp-srcip fe80::1
  ifvip-sync-group dmz
"""


@pytest.fixture
def host(monkeypatch: pytest.MonkeyPatch) -> None:
    """A host with eth0 and eth1 and their own addresses, none of the VIPs (nothing is
    asked of the kernel)."""
    from ifvip.daemon import host as host_module
    from ifvip.daemon import launch
    from ifvip.daemon.vrrp import discover

    async def no_addresses(*_args: Any) -> list[Any]:
        return []

    monkeypatch.setattr(launch, "present_links", lambda: ["lo", "eth0", "eth1"])
    monkeypatch.setattr(discover, "_addresses", no_addresses)
    own = [
        HostAddress("eth0", ipaddress.ip_interface("198.51.100.1/24"), permanent=True),
        HostAddress("eth1", ipaddress.ip_interface("203.0.113.1/24"), permanent=True),
    ]
    monkeypatch.setattr(host_module, "host_addresses", lambda: own)
    monkeypatch.setattr(host_module, "journaled", lambda _state: set())


def _options(tmp_path: Path, *argv: str) -> dict[str, Any]:
    from ifvip.cli import cli

    run = cli.commands["run"]
    with run.make_context("run", [*argv, "--state-dir", str(tmp_path / "state")]) as ctx:
        return dict(ctx.params)


def _plan(tmp_path: Path, text: str, *argv: str) -> Any:
    from ifvip.daemon.launch import build_plan

    path = tmp_path / "interfaces"
    path.write_text(text)
    return build_plan(_options(tmp_path, "--interfaces", str(path), *argv))


@pytest.mark.usefixtures("host")
def test_a_file_mixing_carp_and_vrrp_is_one_plan_with_unique_names(tmp_path: Path) -> None:
    plan = _plan(tmp_path, MIXED.format(priority=100))
    groups = plan.groups()
    assert [str(k) for k in groups] == [
        "vhid 1 on eth0",
        "vhid 1 on eth1",
        "vrid 1 on eth1",
        "vrid 2 on eth1",
    ]
    names = [d.config.group_name for d in groups.values()]
    assert names == ["vhid 1 on eth0", "vhid 1 on eth1", "vrid 1", "vrid 2"]
    assert len(set(names)) == len(names)
    assert [d.config.sync_group for d in groups.values()] == ["dmz", None, None, "dmz"]
    assert [d.protocol for d in groups.values()] == ["carp", "carp", "vrrp", "vrrp"]
    assert plan.engines is not None  # the ucarp-* groups ifup IFACE:ucarp


@pytest.mark.usefixtures("host")
def test_one_group_keeps_its_plain_name(tmp_path: Path) -> None:
    (definition,) = _plan(tmp_path, BASE).groups().values()
    assert definition.config.group_name == "vrid 51"


@pytest.mark.usefixtures("host")
def test_a_reload_diffs_group_by_group_across_protocols(tmp_path: Path) -> None:
    from ifvip.daemon.settings import diff_groups

    before = _plan(tmp_path, MIXED.format(priority=100)).groups()
    changed = MIXED.format(priority=200).replace("  ucarp-vid 1\n  ucarp-vip 203.0.113.100\n", "")
    changed = changed.replace("  ucarp-password secret\n  vrrp-id 1", "  vrrp-id 1")
    after = _plan(tmp_path, changed).groups()
    diff = diff_groups(before, after)
    assert [str(k) for k in diff.unchanged] == ["vrid 2 on eth1"]
    assert [str(k) for k in diff.changed] == ["vhid 1 on eth0", "vrid 1 on eth1"]
    assert [str(k) for k in diff.removed] == ["vhid 1 on eth1"]
    assert diff.added == ()
    # vhid 1 on eth0 changed only by its name: it is alone now, `vhid 1` again.
    assert after[next(iter(after))].config.group_name == "vhid 1"


@pytest.mark.usefixtures("host")
def test_group_flags_or_manage_keep_todays_meaning(tmp_path: Path) -> None:
    from ifvip.daemon.launch import from_file_only

    path = str(tmp_path / "interfaces")
    assert from_file_only(_options(tmp_path, "--interfaces", path))
    assert from_file_only(_options(tmp_path, "--interfaces", path, "--protocol", "vrrp"))
    for argv in (["-v", "3"], ["--vip", "198.51.100.9/24"], ["--manage", "eth0:1"]):
        assert not from_file_only(_options(tmp_path, "--interfaces", path, *argv)), argv
    assert not from_file_only(_options(tmp_path, "-v", "3"))


@pytest.mark.usefixtures("host")
def test_sync_group_flag(tmp_path: Path) -> None:
    from ifvip.daemon.launch import build_plan

    vrrp = ["--protocol", "vrrp", "-i", "eth0", "-s", "198.51.100.1", "--vrid", "9"]
    options = _options(tmp_path, *vrrp, "--vip", "198.51.100.9/24", "--sync-group", "dmz")
    (definition,) = build_plan(options).groups().values()
    assert definition.config.sync_group == "dmz"
    carp = ["-i", "eth0", "-s", "198.51.100.1", "-v", "9", "-p", "pw", "-a", "198.51.100.9"]
    (definition,) = build_plan(_options(tmp_path, *carp, "--sync-group", "dmz")).groups().values()
    assert (definition.protocol, definition.config.sync_group) == ("carp", "dmz")
    with pytest.raises(ConfigProblems) as found:
        build_plan(_options(tmp_path, *carp, "--sync-group", "dmz group"))
    assert found.value.problems[-1] == (
        "--sync-group: 'dmz group' is not a word (letters, digits, '-', '_', '.')"
    )
    with pytest.raises(ConfigProblems) as found:
        _plan(tmp_path, BASE, "--sync-group", "dmz")
    assert found.value.problems[0].startswith("--sync-group: names the sync group of a group")


@pytest.mark.usefixtures("host")
def test_a_file_without_groups_and_bad_values_of_both_protocols(tmp_path: Path) -> None:
    with pytest.raises(ConfigProblems) as found:
        _plan(tmp_path, "iface eth0 inet manual\n")
    assert found.value.problems == [
        f"--interfaces: no stanza in {tmp_path / 'interfaces'} has ucarp-vid or vrrp-id"
    ]
    bad = MIXED.format(priority=100).replace(
        "ucarp-vid 1\n  ucarp-vip 198", "ucarp-vid 0\n  ucarp-vip 198"
    )
    bad = bad.replace("vrrp-id 2", "vrrp-id 300")
    with pytest.raises(ConfigProblems) as found:
        _plan(tmp_path, bad)
    path = tmp_path / "interfaces"
    assert found.value.problems == [
        f"{path}:1:1: --vhid: 0 is out of range 1..255",
        f"{path}:24:3: vrrp-id '300' is not a valid 1-255",
    ]


def test_run_exits_78_naming_the_line_and_never_the_pass_file_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from ifvip.cli import cli
    from ifvip.daemon import launch

    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("a bad configuration reached the daemon")

    monkeypatch.setattr(launch, "run_plan", refuse)
    passfile = _passfile(tmp_path, "longer-than-8")
    path = tmp_path / "interfaces"
    path.write_text(
        "iface lo inet loopback\n  vrrp-id 7\n  vrrp-address 198.51.100.7/24\n"
        f"  vrrp-srcip 127.0.0.1\n  vrrp-auth-pass-file {passfile}\n  vrrp-advert-int 0\n"
    )
    env = {k: None for k in os.environ if k.startswith(("IFVIP_", "UCARP_"))}
    argv = ["run", "--interfaces", str(path), "--state-dir", str(tmp_path / "state")]
    result = CliRunner().invoke(cli, argv, env=env)
    assert result.exit_code == 78, result.output
    assert f"ifvip run: {path}:5:3: vrrp-auth-pass-file: the password is longer" in result.output
    assert f"ifvip run: {path}:6:3: vrrp-advert-int: 0: VRRPv2 intervals" in result.output
    assert "longer-than-8" not in result.output


@pytest.mark.usefixtures("host")
def test_up_list_runs_the_listed_interfaces_groups_and_checks_no_other(tmp_path: Path) -> None:
    up = tmp_path / "up"
    up.write_text("eth1\n")
    elsewhere = "\niface eth9 inet static\n  address 198.51.100.9/24\n  vrrp-id 9\n"
    text = MIXED.format(priority=100) + elsewhere + "  vrrp-address 198.51.100.99/24\n"
    plan = _plan(tmp_path, text, "--up-list", str(up))
    assert [str(k) for k in plan.groups()] == ["vhid 1 on eth1", "vrid 1 on eth1", "vrid 2 on eth1"]
    # Alone in the process, vhid 1 keeps its plain name.
    assert next(d.config.group_name for d in plan.groups().values()) == "vhid 1"
    up.write_text("")
    with pytest.raises(ConfigProblems) as found:
        _plan(tmp_path, text, "--up-list", str(up))
    assert found.value.problems == [
        f"--interfaces: no stanza in {tmp_path / 'interfaces'} has ucarp-vid or vrrp-id on no "
        "interface (--up-list)"
    ]
    with pytest.raises(ConfigProblems) as found:
        _plan(tmp_path, text, "--up-list", str(up), "--vrid", "3")
    assert found.value.problems == [
        "--up-list: only with --interfaces FILE and no group given by options"
    ]


def test_the_dual_homed_example_is_two_groups_of_one_sync_group(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parents[2] / "interfaces.d-examples"
    text = (example / "dmz-dual-homed.interfaces").read_text()
    passfile = _passfile(tmp_path, "dmz-pw")
    outside, inside = _groups(tmp_path, text.replace("/etc/ifvip/dmz.pass", str(passfile)))
    assert (outside.interface, outside.vrid, str(outside.vips[0])) == (
        "eth0",
        10,
        "203.0.113.10/24",
    )
    assert (inside.interface, inside.vrid, str(inside.vips[0])) == ("eth1", 20, "198.51.100.10/25")
    assert outside.sync_group == inside.sync_group == "dmz"
    assert inside.manage == ("eth1:routes",) and not outside.manage
    assert outside.password is not None and outside.password.value == b"dmz-pw"


def test_check_warns_when_the_first_ipv6_address_is_not_link_local(tmp_path: Path) -> None:
    path = tmp_path / "interfaces"
    text = "iface eth1 inet6 manual\n  vrrp-id 52\n  vrrp-address {}\n"
    path.write_text(text.format("2001:db8::52/64 fe80::52/64"))
    found = [str(e) for e in check(load(str(path)))]
    assert found == [
        f"{path}:3:3: warning: vrrp-address: the first IPv6 address should be link-local "
        "(RFC 5798 §5.2.9; keepalived and ifvip advertise the addresses in this order)"
    ]
    path.write_text(text.format("fe80::52/64 2001:db8::52/64"))
    assert check(load(str(path))) == []


@pytest.mark.parametrize(("master", "warned"), [(None, True), ("no", True), ("yes", False)])
def test_a_carp_sync_group_member_that_does_not_preempt_is_warned(
    tmp_path: Path, master: str | None, warned: bool
) -> None:
    """A held CARP master only raises its advskew (OpenBSD's demotion), so a CARP sync group
    moves as one only when both hosts preempt: `check` says so where it is declared."""
    text = (
        "iface eth0 inet static\n  address 198.51.100.1/24\n  ucarp-vid 42\n"
        "  ucarp-vip 198.51.100.100\n  ifvip-sync-group dmz\n"
        + (f"  ucarp-master {master}\n" if master else "")
    )
    path = tmp_path / "interfaces"
    path.write_text(text)
    found = [str(e) for e in check(load(str(path)))]
    said = [e for e in found if "without ucarp-master yes" in e]
    assert said == ([f"{path}:5:3: warning: ifvip-sync-group on a CARP group without "
                     "ucarp-master yes: a held CARP master only raises its advskew (as "
                     "OpenBSD's), so its members move together only when both hosts "
                     "preempt"] if warned else [])  # fmt: skip


def _check_cli(tmp_path: Path, text: str) -> tuple[int, list[str]]:
    """`ifvip check`'s exit status and lines (errors and warnings)."""
    from click.testing import CliRunner

    from ifvip.cli import cli

    path = tmp_path / "interfaces"
    path.write_text(text)
    done = CliRunner().invoke(cli, ["check", "-i", str(path)])
    return done.exit_code, done.stdout.splitlines()


def test_check_reports_what_run_refuses_in_a_group_the_host_aside(tmp_path: Path) -> None:
    """A VRRPv2 interval in tenths, a VRID twice on one interface, a managed stanza that
    is not there, a CARP group without its password: `run` exits 78 on each, so `check`
    names each, with run's text, at its line. Scoped to the interface (ifup of the others
    works), so the exit status stays 0 as for the schema's per-interface errors."""
    path = tmp_path / "interfaces"
    text = (
        BASE.replace("vrrp-address 198.51.100.10/24", "vrrp-address 198.51.100.10/24\n")
        + "  vrrp-advert-int 1.5\n  vrrp-manage eth0:none\n"
        + "\niface eth1 inet static\n  address 198.51.100.4/24\n  vrrp-id 51\n"
        + "  vrrp-address 198.51.100.14/24\n"
        + "\niface eth1 inet6 manual\n  vrrp-id 51\n  vrrp-address fe80::51/64\n"
        + "\niface eth2 inet static\n  address 203.0.113.1/24\n  ucarp-vid 7\n"
        + "  ucarp-vip 203.0.113.7\n  ucarp-upscript /bin/true\n"
    )
    status, lines = _check_cli(tmp_path, text)
    assert status == 0
    assert lines == [
        f"{path}:6:3: vrrp-advert-int: 1.5: VRRPv2 intervals are whole seconds 1..255",
        f"{path}:14:1: vrrp-id 51 on eth1 is already the group of {path}:9:1 (one VRID per "
        "interface in one process)",
        f"{path}:18:1: ucarp-vid needs ucarp-password",
    ]
    # run says the same (its IPv6 source found on the host), and, with the interval
    # fixed, the missing managed stanza
    with pytest.raises(ConfigProblems) as run:
        vrrp_groups_from_interfaces(load(str(path)), str(path), build=build_vrrp_group)
    assert lines[0] in run.value.problems
    fixed = text.replace("vrrp-advert-int 1.5", "vrrp-advert-int 2")
    assert (
        f"{path}:1:1: vrrp-manage: no stanza 'eth0:none' in {path}"
        in _check_cli(tmp_path, fixed)[1]
    )


def test_check_stands_in_for_the_host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What only the host has is not a problem for `check`: an IPv6 group's link-local
    source (run finds it on the interface), a pass file this user cannot read."""
    text = (
        "iface eth1 inet6 static\n  address 2001:db8::1/64\n  vrrp-id 52\n"
        "  vrrp-address fe80::52/64 2001:db8::52/64\n"
        "\niface eth0 inet dhcp\n  vrrp-id 53\n  vrrp-address 198.51.100.53/24\n"
        "  vrrp-auth-pass-file /etc/ifvip/vrrp.pass\n"
    )
    monkeypatch.setattr(os, "access", lambda *_args: False)
    assert _check_cli(tmp_path, text) == (0, [])
    v3 = text.replace("vrrp-id 53\n", "vrrp-id 53\n  vrrp-version 3\n")
    _status, lines = _check_cli(tmp_path, v3)
    assert lines == [
        f"{tmp_path / 'interfaces'}:10:3: vrrp-auth-pass-file: VRRPv3 has no authentication "
        "(keepalived ignores it)"
    ]
