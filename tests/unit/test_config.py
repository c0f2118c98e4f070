"""CARP group configuration: ucarp's options and rules, every problem named, secrets hidden."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ifvip.daemon.carp.config import build_carp_group
from ifvip.daemon.settings import ConfigProblems, Secret

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


def test_every_integer_option_is_refused_in_the_same_words() -> None:
    """One integer parser (settings.parse_int) for CARP's, the checks' and policy's options."""
    from ifvip.daemon.checks import parse_check_options
    from ifvip.daemon.policy import parse_policy_options

    refused = [*_problems(vhid="two")]
    for call in (
        lambda: parse_check_options(tcp=["80"], rise="two"),
        lambda: parse_check_options(tcp=["http"]),
        lambda: parse_policy_options(rtable="two", vip=None),
    ):
        with pytest.raises(ConfigProblems) as error:
            call()
        refused += error.value.problems
    assert "--vhid: 'two' is not a whole number" in refused
    assert "--check-rise: 'two' is not a whole number" in refused
    assert "--check-tcp: 'http' is not a whole number" in refused
    assert "--rtable: 'two' is not a whole number" in refused


def test_both_protocols_check_what_they_share_alike(tmp_path: Path) -> None:
    """The interface, the scripts, --manage and --vip-lifetime are checked by one piece of
    settings.py for CARP and VRRP: the same words, the same numbers accepted."""
    from ifvip.daemon.vrrp.config import build_vrrp_group

    def vrrp(**changes: Any) -> list[str]:
        good = {"interface": "eth0", "srcip": "198.51.100.1", "vrid": "42"}
        with pytest.raises(ConfigProblems) as error:
            build_vrrp_group(**{**good, "vips": ["198.51.100.100/24"], **changes})
        return error.value.problems

    plain = tmp_path / "not-executable"
    plain.write_text("")
    for problems in (
        _problems(interface="", upscript=str(plain), manage=["eth1"], lifetime="x"),
        vrrp(interface="", upscript=str(plain), manage=["eth1"], lifetime="x"),
    ):
        assert problems[0].startswith("--interface: no interface given"), problems
        assert f"--upscript: {plain} is not an executable file" in problems
        assert "--manage: needs --interfaces FILE" in problems
        assert "--vip-lifetime: 'x' is not a whole number" in problems
    assert f"--notify: {plain} is not an executable file" in vrrp(notify=[str(plain)])
    assert build_carp_group(**GOOD, lifetime="0x10").lifetime == 16  # as VRRP's


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


def test_vip_lifetime_is_two_master_down_intervals_unless_set() -> None:
    from ifvip.daemon.settings import vip_lifetime

    assert vip_lifetime(build_carp_group(**GOOD)) == 6
    assert vip_lifetime(build_carp_group(**GOOD, advbase="2", advskew="100")) == 13
    assert vip_lifetime(build_carp_group(**GOOD, lifetime="0")) is None
    assert vip_lifetime(build_carp_group(**GOOD, lifetime="9")) == 9
    assert _problems(lifetime="x")[0].startswith("--vip-lifetime")


def test_explicit_vips_are_kept_apart_from_the_ucarp_address() -> None:
    group = build_carp_group(**GOOD, vips=["203.0.113.7/24@eth1"])
    assert [str(v) for v in group.vips] == ["198.51.100.100/32", "203.0.113.7/24@eth1"]
    assert [str(v) for v in group.explicit_vips] == ["203.0.113.7/24@eth1"]


UCARP_STANZAS = """\
auto eth0
iface eth0 inet static
  address 198.51.100.1/24
  ucarp-vid 42
  ucarp-vip 198.51.100.100
  ucarp-password secret
  ucarp-advskew 10
  ucarp-master no

iface eth0:ucarp inet static
  address 198.51.100.100
  netmask 255.255.255.0

iface eth1 inet static
  address 203.0.113.1
  netmask 255.255.255.0
  ucarp-vid 7
  ucarp-vip 203.0.113.100
  ucarp-password other
  ucarp-master yes
  ucarp-nomcast yes

iface eth1:ucarp inet static
  address 203.0.113.100
  netmask 255.255.255.0
"""


def test_ucarp_stanzas_become_groups_like_debians_hook(tmp_path: Path) -> None:
    from ifvip.daemon.carp.config import carp_groups_from_interfaces
    from ifvip.interfaces.loader import load

    path = tmp_path / "interfaces"
    path.write_text(UCARP_STANZAS)
    groups = carp_groups_from_interfaces(load(str(path)), str(path))
    assert [(g.interface, g.vhid, str(g.srcip), g.addr) for g in groups] == [
        ("eth0", 42, "198.51.100.1", "198.51.100.100"),
        ("eth1", 7, "203.0.113.1", "203.0.113.100"),
    ]
    assert [(g.preempt, g.nomcast, g.advskew, g.ucarp_stanza) for g in groups] == [
        (False, False, 10, "eth0:ucarp"),
        (True, True, 0, "eth1:ucarp"),
    ]


def test_a_ucarp_stanza_without_password_names_its_line(tmp_path: Path) -> None:
    from ifvip.daemon.carp.config import carp_groups_from_interfaces
    from ifvip.interfaces.loader import load

    path = tmp_path / "interfaces"
    path.write_text("iface eth0 inet static\n  address 198.51.100.1/24\n  ucarp-vid 42\n")
    with pytest.raises(ConfigProblems) as error:
        carp_groups_from_interfaces(load(str(path)), str(path))
    assert error.value.problems == [f"{path}:1:1: ucarp-vid needs ucarp-vip and ucarp-password"]


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"IFVIP_VHID": "0"}, "--vhid: 0 is out of range 1..255"),
        ({"UCARP_VHID": "300"}, "--vhid: 300 is out of range 1..255"),
        ({"UCARP_VHID": "300", "IFVIP_VHID": "301"}, "--vhid: 301 is out of range"),
        ({"UCARP_MASKLEN": "40", "IFVIP_VHID": "1"}, "--masklen: 40 is out of range"),
        ({"UCARP_GARP_TIMEOUT": "-1", "IFVIP_VHID": "1"}, "--garp-repeat:"),
    ],
)
def test_every_option_reads_ifvip_and_ucarp_variables(env: dict[str, str], expected: str) -> None:
    from click.testing import CliRunner

    from ifvip.cli import cli

    base = {"IFVIP_INTERFACE": "lo", "IFVIP_SRCIP": "198.51.100.1", "UCARP_PASS": "x"}
    base["UCARP_ADDR"] = "198.51.100.100"
    result = CliRunner().invoke(cli, ["run"], env={**base, **env})
    assert result.exit_code == 78, result.output
    assert expected in result.output


def test_an_unusable_state_dir_is_refused_before_anything_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from ifvip.cli import cli
    from ifvip.daemon import host
    from ifvip.daemon.settings import HostAddress

    # -s must be an address of the interface (read from the kernel): say lo has it.
    own = [HostAddress("lo", _v4("198.51.100.1/24"), True)]
    monkeypatch.setattr(host, "host_addresses", lambda: own)
    blocker = tmp_path / "file"
    blocker.write_text("")
    args = ["run", "-i", "lo", "-s", "198.51.100.1", "-v", "1", "-p", "x", "-a", "198.51.100.9"]
    result = CliRunner().invoke(cli, [*args, "--state-dir", str(blocker / "state")])
    assert result.exit_code == 78
    assert "--state-dir" in result.output and "Not a directory" in result.output


def _v4(text: str) -> Any:
    import ipaddress

    return ipaddress.ip_interface(text)


def test_host_problems_refuse_the_hosts_own_address_and_a_foreign_source() -> None:
    import ipaddress

    from ifvip.daemon.settings import HostAddress, Vip, host_problems

    addresses = [
        HostAddress("eth0", _v4("198.51.100.1/24"), True),
        HostAddress("eth0", _v4("198.51.100.100/24"), False),  # a VIP with its lifetime
        HostAddress("eth1", _v4("203.0.113.9/24"), True),
    ]
    source = ipaddress.IPv4Address("198.51.100.1")

    def problems(vip: str, *, srcip: Any = source, ours: tuple[str, ...] = ()) -> list[str]:
        return host_problems(
            interface="eth0",
            srcip=srcip,
            vips=[Vip.parse(vip)],
            addresses=addresses,
            ours=ours,
        )

    assert problems("198.51.100.100/24") == []
    assert problems("203.0.113.9/24") == [
        "--vip: 203.0.113.9 is already an address of eth1 (the host's own: ifvip would "
        "delete it on BACKUP and at exit)"
    ]
    # Listed in an ifvip journal: left by an earlier run (--vip-lifetime 0), not the host's.
    assert problems("203.0.113.9/24", ours=("203.0.113.9/24",)) == []
    # Tagged by the kernel as added by an ifvip (IFA_PROTO), with no journal left (a
    # killed run with --vip-lifetime 0 and a fresh /run): a leftover, not the host's.
    addresses.append(HostAddress("eth1", _v4("203.0.113.10/24"), True, ifvip=True))
    assert problems("203.0.113.10/24") == []
    assert problems("198.51.100.100/24", srcip=ipaddress.IPv4Address("198.51.100.7")) == [
        "--srcip: 198.51.100.7 is not an address of eth0"
    ]
    assert problems("198.51.100.100/24", srcip=None) == []  # VRRP: not checked


def test_vips_on_a_device_that_does_not_exist_are_refused() -> None:
    from ifvip.daemon.settings import parse_vips

    problems: list[str] = []
    found = parse_vips(
        ["198.51.100.7/24@eth0", "198.51.100.8/24@nosuch0"], ["lo", "eth0"], problems
    )
    assert [str(v) for v in found] == ["198.51.100.7/24@eth0"]
    assert problems == ["--vip: 198.51.100.8/24@nosuch0: no such interface 'nosuch0'"]


def test_ucarp_stanzas_sharing_a_vhid_or_missing_their_ucarp_stanza(tmp_path: Path) -> None:
    from ifvip.daemon.carp.config import carp_groups_from_interfaces, vhid_in_file
    from ifvip.daemon.settings import managed_problems
    from ifvip.interfaces.loader import load

    path = tmp_path / "interfaces"
    path.write_text(UCARP_STANZAS.replace("ucarp-vid 7", "ucarp-vid 42").replace("eth1", "eth0"))
    with pytest.raises(ConfigProblems) as error:
        carp_groups_from_interfaces(load(str(path)), str(path))
    assert error.value.problems == [
        f"{path}:14:1: ucarp-vid 42 on eth0 is already the group of {path}:2:1"
    ]
    path.write_text(UCARP_STANZAS.replace("iface eth1:ucarp", "iface eth2:ucarp"))
    with pytest.raises(ConfigProblems) as error:
        carp_groups_from_interfaces(load(str(path)), str(path))
    assert error.value.problems == [
        f"{path}:14:1: ucarp-vid needs an 'iface eth1:ucarp' stanza (what MASTER brings up) "
        "or ucarp-upscript"
    ]
    defn = load(str(path))
    assert managed_problems(defn, "F", ["eth0:ucarp", "eth9"]) == [
        "--manage: no stanza 'eth9' in F"
    ]
    assert vhid_in_file(defn, "F", "eth0", 42) == [
        f"--vhid: 42 on eth0 is also the ucarp-vid of {path}:2:1 in F"
    ]
    assert vhid_in_file(defn, "F", "eth0", 43) == vhid_in_file(defn, "F", "eth2", 42) == []


def test_only_the_vips_ifvip_adds_itself_are_checked_against_the_host() -> None:
    """A group with scripts adds its VIP through them (and a SIGHUP or a restart finds it
    up, permanent): only its --vip ones are ifvip's to delete."""
    base = dict(
        interface="lo", srcip="198.51.100.1", vhid="42", password="pw", passfile=None,
        addr="198.51.100.100", vips=["203.0.113.7/24"],
    )  # fmt: skip
    plain = build_carp_group(**base)  # type: ignore[arg-type]
    scripted = build_carp_group(**base, upscript="/bin/true", downscript="/bin/true")  # type: ignore[arg-type]
    assert [str(v) for v in plain.added_vips] == ["198.51.100.100/32", "203.0.113.7/24"]
    assert [str(v) for v in scripted.added_vips] == ["203.0.113.7/24"]


def test_every_group_builder_parameter_is_a_run_option_of_the_same_name() -> None:
    """compose.py hands `ifvip run`'s options to the builders by name (keywords_for): a
    builder parameter with no run option of its name would silently keep its default."""
    from ifvip.cli import run
    from ifvip.daemon.carp.config import build_carp_group
    from ifvip.daemon.settings import keywords_for
    from ifvip.daemon.vrrp.config import build_vrrp_group

    options = {p.name for p in run.params if p.name is not None}
    given_by_compose = {"interface", "srcip", "vips", "links", "lifetime"}
    builders = {
        build_carp_group: given_by_compose | {"ucarp_stanza"},  # the file's, not an option
        build_vrrp_group: given_by_compose | {"vrid", "version", "checksum", "own"},
    }
    for builder, explicit in builders.items():
        code = builder.__code__
        names = set(code.co_varnames[: code.co_argcount + code.co_kwonlyargcount])
        assert names - explicit <= options, (builder.__name__, names - explicit - options)
        picked = keywords_for(builder, dict.fromkeys(options, "x"), but=("interface",))
        assert set(picked) == (names - explicit) | ({"srcip", "vips"} & names), picked
