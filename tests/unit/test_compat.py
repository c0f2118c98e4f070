"""Image configuration forms → `ifvip run` argv; policy routing and --nonlocal-bind plans."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from ifvip.daemon.compat import explain, titpetric_vhid, translate
from ifvip.daemon.policy import (
    PolicyRouting,
    apply_sysctls,
    nonlocal_bind_plan,
    parse_policy_options,
    policy_plan,
    restore_sysctls,
)
from ifvip.daemon.settings import ConfigProblems, Vip
from ifvip.daemon.vrrp.config import build_vrrp_group
from ifvip.ifupdown.plan import AddRoute, AddRule, DelRoute, DelRule, WriteSysctl


def _no_file(path: str, name: str) -> bool:
    return False


def _pairs(argv: list[str]) -> list[tuple[str, str]]:
    """The option/value pairs of a translated argv (flags pair with '')."""
    pairs = []
    items = argv[1:]
    while items:
        option = items.pop(0)
        value = items.pop(0) if items and not items[0].startswith("--") else ""
        pairs.append((option, value))
    return pairs


# ------------------------------------------------------------------------- not a form


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["run"],
        ["run", "-i", "eth0", "-s", "198.51.100.1", "-v", "7", "-p", "pw", "-a", "203.0.113.10"],
        ["run", "--check-interval", "2", "--check-tcp", "80", "-i", "eth0"],
        ["status"],
        ["status", "--json"],
        ["ifquery", "eth0", "100", "203.0.113.10/24/eth0"],
        ["ifup", "-a"],
        ["--version"],
        ["-h"],
        ["demo", "--headless"],
        ["198.51.100.1"],
    ],
)
def test_ordinary_ifvip_argv_is_never_translated(argv: list[str]) -> None:
    translation = explain(argv, {"PATH": "/bin"}, stanza_in=_no_file)
    assert translation.form is None and translation.argv == argv


def test_own_group_variables_win_over_an_images() -> None:
    env = {"VIRTUAL_IP": "203.0.113.10", "IFVIP_ADDR": "203.0.113.10"}
    assert translate(["run"], env) == ["run"]


# ------------------------------------------------------------------------- kubernetize


def test_kubernetize_environment_gets_the_images_defaults() -> None:
    translation = explain([], {"UCARP_ADDR": "203.0.113.10"})
    assert translation.form == "kubernetize"
    assert translation.argv == ["run", "--vhid", "1", "--pass", "password"]
    assert any("insecure" in note for note in translation.notes)
    assert not any("'password'" in note for note in translation.notes)


def test_kubernetize_policy_routing_variables() -> None:
    env = {
        "UCARP_ADDR": "203.0.113.10",
        "UCARP_VHID": "7",
        "UCARP_PASS_FILE": "/run/secrets/ucarp",
        "UCARP_RTABLE": "2",
        "UCARP_RTABLE_NETWORK_LENGTH": "24",
        "UCARP_GATEWAY": "203.0.113.1",
        "UCARP_RULE_PRIORITY": "100",
    }
    assert translate(["run"], env) == [
        "run",
        "--rtable",
        "2",
        "--rtable-network-length",
        "24",
        "--rtable-gateway",
        "203.0.113.1",
        "--rule-priority",
        "100",
    ]


def test_both_image_environments_are_ambiguous() -> None:
    with pytest.raises(ConfigProblems) as caught:
        translate([], {"UCARP_ADDR": "203.0.113.10", "VIRTUAL_IP": "203.0.113.10"})
    assert caught.value.problems[0].startswith("VIRTUAL_IP and UCARP_ADDR:")


# ------------------------------------------------------------------------- titpetric


def test_titpetric_positional_form_without_an_interfaces_file() -> None:
    env = {"DEV": "eth0", "IPDEV": "eth1", "OPTS": "-P -k 20"}
    argv = ["203.0.113.10", "203.0.113.255", "s3cret", "203.0.113.11/24", "2001:db8::10/64"]
    translation = explain(argv, env, stanza_in=_no_file)
    assert translation.form == "titpetric"
    assert translation.argv == [
        "run",
        "--interface",
        "eth0",
        "--vhid",
        str(titpetric_vhid("203.0.113.10")),
        "--pass",
        "s3cret",
        "--deadratio",
        "5",
        "--vip",
        "203.0.113.10/32@eth1",
        "--vip",
        "203.0.113.11/24@eth1",
        "--vip",
        "2001:db8::10/64@eth1",
        "-P",
        "-k",
        "20",
    ]


def test_titpetric_vhid_is_the_first_md5_byte_of_the_echoed_vip() -> None:
    # printf '%d' 0x$(echo 203.0.113.10 | md5sum | cut -b1-2)
    import hashlib

    digest = hashlib.md5(b"203.0.113.10\n", usedforsecurity=False).hexdigest()
    assert titpetric_vhid("203.0.113.10") == int(digest[:2], 16)
    assert translate(["203.0.113.10", "203.0.113.255", "pw"], {"VHID": "42"})[4] == "42"


def test_titpetric_interfaces_mode_manages_ipdev() -> None:
    seen: list[tuple[str, str]] = []

    def stanza_in(path: str, name: str) -> bool:
        seen.append((path, name))
        return True

    argv = ["run", "203.0.113.10", "203.0.113.255", "pw", "203.0.113.11/24"]
    translation = explain(argv, {"IPDEV": "eth2"}, stanza_in=stanza_in)
    assert seen == [("/etc/network/interfaces", "eth2")]
    assert _pairs(translation.argv)[4:] == [
        ("--addr", "203.0.113.10"),
        ("--interfaces", "/etc/network/interfaces"),
        ("--manage", "eth2"),
    ]
    assert translation.argv[2] == "eth0"  # DEV's default


def test_titpetric_opts_that_cannot_be_split() -> None:
    with pytest.raises(ConfigProblems) as caught:
        translate(["203.0.113.10", "203.0.113.255", "pw"], {"OPTS": "-x 'open"})
    assert caught.value.problems[0].startswith("OPTS:")


# ------------------------------------------------------------------------- solnet


def test_solnet_command_line() -> None:
    argv = [
        "--master",
        "--router-name",
        "lb1",
        "--auth-pass",
        "pw8bytes",
        "--vrid=51",
        "-x",
        "203.0.113.20/24/eth1",
        "--check-interval",
        "3",
        "-r",
        "4",
        "--enable-check",
        "http://203.0.113.10:8080/health",
        "eth0",
        "150",
        "203.0.113.10/24/eth0",
        "2001:db8::10/64/eth0",
    ]
    translation = explain(argv, {})
    assert translation.form == "solnet"
    assert _pairs(translation.argv) == [
        ("--protocol", "vrrp"),
        ("--vrrp-version", "2"),
        ("--interface", "eth0"),
        ("--priority", "150"),
        ("--vrid", "51"),
        ("--auth-pass", "pw8bytes"),
        ("--advert-int", "1"),
        ("--vip", "203.0.113.10/24@eth0"),
        ("--vip", "2001:db8::10/64@eth0"),
        ("--vip-excluded", "203.0.113.20/24@eth1"),
        ("--check-http", "http://203.0.113.10:8080/health"),
        ("--check-interval", "3"),
        ("--check-rise", "4"),
        ("--check-fall", "2"),
    ]
    assert len(translation.notes) == 2  # --router-name and --master are dropped, said so


def test_solnet_defaults_and_override_script() -> None:
    translation = explain(["run", "-o", "check.sh", "eth0", "100", "203.0.113.10/32/eth0"], {})
    pairs = dict(_pairs(translation.argv))
    assert pairs["--vrid"] == "1" and pairs["--auth-pass"] == "12345678"
    assert pairs["--check-script"] == "/ka-data/scripts/check.sh"
    assert pairs["--check-interval"] == "2"
    assert any("built-in password" in note for note in translation.notes)
    assert not any("12345678" in note for note in translation.notes)


def test_solnet_without_a_check_has_no_check_options() -> None:
    argv = translate(["eth0", "100", "203.0.113.10/24/eth0"], {})
    assert not any(a.startswith("--check") for a in argv)


# ------------------------------------------------------------------------- rancher


RANCHER = {"VIRTUAL_IP": "203.0.113.10", "VIRTUAL_MASK": "24", "VRID": "51", "INTERFACE": "eth0"}


def test_rancher_environment() -> None:
    translation = explain([], {**RANCHER, "CHECK_PORT": "80"})
    assert translation.form == "rancher"
    assert _pairs(translation.argv) == [
        ("--protocol", "vrrp"),
        ("--vrrp-version", "2"),
        ("--interface", "eth0"),
        ("--vrid", "51"),
        ("--priority", "100"),
        ("--advert-int", "1"),
        ("--nopreempt", ""),
        ("--auth-pass", "blahblah"),
        ("--vip", "203.0.113.10/24@eth0"),
        ("--garp-master-delay", "1"),
        ("--garp-master-refresh", "60"),
        ("--check-tcp", "80"),
        ("--check-interval", "1"),
        ("--check-timeout", "1"),
        ("--check-rise", "2"),
        ("--check-fall", "2"),
    ]


@pytest.mark.parametrize(
    ("extra", "check"),
    [
        ({"CHECK_IP": "any", "CHECK_PORT": "443"}, ("--check-tcp", "443")),
        ({"CHECK_IP": "203.0.113.10", "CHECK_PORT": "443"}, ("--check-tcp", "203.0.113.10:443")),
        ({"CHECK_IP": "2001:db8::10", "CHECK_PORT": "443"}, ("--check-tcp", "[2001:db8::10]:443")),
        (
            {"CHECK_SCRIPT": "/usr/local/bin/chk", "CHECK_PORT": "80"},
            ("--check-script", "/usr/local/bin/chk"),
        ),
    ],
)
def test_rancher_checks(extra: dict[str, str], check: tuple[str, str]) -> None:
    pairs = _pairs(translate(["run"], {**RANCHER, **extra}))
    assert check in pairs
    assert sum(1 for option, _ in pairs if option in ("--check-tcp", "--check-script")) == 1


def test_rancher_auth_pass_and_status() -> None:
    assert ("--auth-pass", "own-pass") in _pairs(
        translate([], {**RANCHER, "AUTH_PASS": "own-pass"})
    )
    assert translate(["status"], RANCHER) == ["status"]


# ------------------------------------------------------------------------- bad configurations


def _problems(call: Any) -> list[str]:
    with pytest.raises(ConfigProblems) as caught:
        call()
    return caught.value.problems


VIP4 = Vip.parse("203.0.113.10/24")


@pytest.mark.parametrize(
    ("call", "named"),
    [
        (lambda: translate([], {"VIRTUAL_IP": "203.0.113.10"}), "VIRTUAL_MASK:"),
        (lambda: translate([], {**RANCHER, "INTERFACE": ""}), "INTERFACE:"),
        (lambda: translate([], {**RANCHER, "CHECK_IP": "203.0.113.10"}), "CHECK_IP:"),
        (
            lambda: translate(
                ["-o", "a.sh", "-e", "http://x/", "eth0", "1", "203.0.113.1/24/eth0"], {}
            ),
            "--override-check and --enable-check:",
        ),
        (
            lambda: translate(["-x", "203.0.113.9", "eth0", "1", "203.0.113.1/24/eth0"], {}),
            "--exclude:",
        ),
        (lambda: parse_policy_options(rtable="x", vip=VIP4), "--rtable:"),
        (lambda: parse_policy_options(rtable="254", vip=VIP4), "--rtable:"),
        (lambda: parse_policy_options(rtable="0", vip=VIP4), "--rtable:"),
        (
            lambda: parse_policy_options(rtable="2", network_length="33", vip=VIP4),
            "--rtable-network-length:",
        ),
        (lambda: parse_policy_options(rtable="2", gateway="gw", vip=VIP4), "--rtable-gateway:"),
        (
            lambda: parse_policy_options(rtable="2", gateway="2001:db8::1", vip=VIP4),
            "--rtable-gateway:",
        ),
        (
            lambda: parse_policy_options(rtable="2", rule_priority="-1", vip=VIP4),
            "--rule-priority:",
        ),
        (lambda: parse_policy_options(rtable=None, gateway="203.0.113.1"), "--rtable-gateway:"),
        (lambda: parse_policy_options(rtable="2", vip=None), "--rtable:"),
    ],
)
def test_each_bad_form_or_policy_option_is_named(call: Any, named: str) -> None:
    problems = _problems(call)
    assert problems and problems[0].startswith(named), problems


# ------------------------------------------------------------------------- policy routing


def test_policy_plan_is_the_kubernetize_vip_up_and_down() -> None:
    policy = parse_policy_options(
        rtable="2", network_length="24", gateway="203.0.113.1", rule_priority="100", vip=VIP4
    )
    assert policy == PolicyRouting(2, 24, ipaddress.ip_address("203.0.113.1"), 100)
    up, down = policy_plan(policy, VIP4, "eth0")
    v4 = 4
    assert up == [
        AddRule(family=v4, priority=100, src="203.0.113.10/32", table=2),
        DelRoute(
            family=v4, dst="203.0.113.0/24", dev="eth0", src="203.0.113.10", scope="link", proto=2
        ),
        AddRoute(
            family=v4, dst="203.0.113.0/24", dev="eth0", table=2, src="203.0.113.10", scope="link"
        ),
        AddRoute(family=v4, dst=None, gateway="203.0.113.1", table=2),
    ]
    assert down == [
        DelRoute(family=v4, dst=None, gateway="203.0.113.1", table=2),
        DelRoute(
            family=v4, dst="203.0.113.0/24", dev="eth0", table=2, src="203.0.113.10", scope="link"
        ),
        DelRule(family=v4, priority=100, src="203.0.113.10/32", table=2),
    ]
    rendered = [op.render().strip() for op in up]
    assert rendered[0] == "ip -4 rule add priority 100 from 203.0.113.10/32 table 2"


def test_policy_for_a_host_vip_keeps_the_main_table_alone() -> None:
    vip = Vip.parse("203.0.113.10/32")
    policy = parse_policy_options(rtable="7", network_length="24", vip=vip)
    assert policy is not None
    up, down = policy_plan(policy, vip, "eth0")
    assert [type(op).__name__ for op in up] == ["AddRule", "AddRoute"]
    assert up[1].dst == "203.0.113.0/24"  # type: ignore[attr-defined]
    assert [type(op).__name__ for op in down] == ["DelRoute", "DelRule"]


def test_no_rtable_no_policy() -> None:
    assert parse_policy_options(rtable=None) is None


# ------------------------------------------------------------------------- --nonlocal-bind


def test_nonlocal_bind_sets_both_and_restores_what_it_changed() -> None:
    sysctls = {"net.ipv4.ip_nonlocal_bind": "0", "net.ipv6.ip_nonlocal_bind": "1"}
    writes: list[tuple[str, str]] = []

    def write(name: str, value: str) -> str:
        writes.append((name, value))
        previous = sysctls[name]
        sysctls[name] = value
        return previous

    applied = apply_sysctls(nonlocal_bind_plan(), write)
    assert sysctls == {"net.ipv4.ip_nonlocal_bind": "1", "net.ipv6.ip_nonlocal_bind": "1"}
    assert applied[0] == WriteSysctl(name="net.ipv4.ip_nonlocal_bind", value="1", previous="0")
    restore_sysctls(applied, write)
    assert sysctls == {"net.ipv4.ip_nonlocal_bind": "0", "net.ipv6.ip_nonlocal_bind": "1"}
    assert writes[-1] == ("net.ipv4.ip_nonlocal_bind", "0") and len(writes) == 3


# ------------------------------------------------------------------------- osixia

OSIXIA = {
    "KEEPALIVED_INTERFACE": "eth1",
    "KEEPALIVED_PASSWORD": "s3cr3t",
    "KEEPALIVED_PRIORITY": "200",
    "KEEPALIVED_ROUTER_ID": "52",
    "KEEPALIVED_UNICAST_PEERS": "198.51.100.1 198.51.100.2",
    "KEEPALIVED_VIRTUAL_IPS": "203.0.113.10 203.0.113.11/24",
    "KEEPALIVED_STATE": "BACKUP",
}


def _osixia_group(argv: list[str]) -> Any:
    """The VRRP group the translated argv describes, validated as `ifvip run` does."""
    options: dict[str, list[str]] = {}
    for option, value in _pairs(argv):
        options.setdefault(option, []).append(value)
    assert options.pop("--protocol") == ["vrrp"]
    return build_vrrp_group(
        interface=options["--interface"][0],
        srcip="198.51.100.1",
        vrid=options["--vrid"][0],
        vips=options["--vip"],
        priority=options["--priority"][0],
        version=options["--vrrp-version"][0],
        advert_int=options["--advert-int"][0],
        nopreempt="--nopreempt" in options,
        auth_pass=options["--auth-pass"][0],
        unicast_peers=options.get("--unicast-peer", []),
        notify=options.get("--notify", []),
        links=["eth0", "eth1"],
    )


def test_osixia_environment_is_the_images_vrrp_instance() -> None:
    translation = explain([], OSIXIA)
    assert translation.form == "osixia" and translation.notes == []
    assert _pairs(translation.argv) == [
        ("--protocol", "vrrp"),
        ("--vrrp-version", "2"),
        ("--advert-int", "1"),
        ("--nopreempt", ""),
        ("--interface", "eth1"),
        ("--vrid", "52"),
        ("--priority", "200"),
        ("--auth-pass", "s3cr3t"),
        ("--unicast-peer", "198.51.100.1"),
        ("--unicast-peer", "198.51.100.2"),
        ("--vip", "203.0.113.10/32@eth1"),
        ("--vip", "203.0.113.11/24@eth1"),
    ]
    group = _osixia_group(translation.argv)
    # Our own address (198.51.100.1) is in the image's peer list (osixia#33): filtered.
    assert group.unicast_peers == (ipaddress.IPv4Address("198.51.100.2"),)
    assert (group.vrid, group.version, group.preempt) == (52, 2, False)
    assert translate(["run"], OSIXIA) == translation.argv


def test_osixia_defaults_are_the_images_and_never_show_the_password() -> None:
    translation = explain([], {"KEEPALIVED_VIRTUAL_IPS": "203.0.113.10"})
    pairs = _pairs(translation.argv)
    assert ("--interface", "eth0") in pairs
    assert ("--vrid", "51") in pairs and ("--priority", "150") in pairs
    assert ("--auth-pass", "d0cker") in pairs
    assert not any(option == "--unicast-peer" for option, _value in pairs)  # multicast
    assert len(translation.notes) == 3
    assert not any("d0cker" in note for note in translation.notes)


@pytest.mark.parametrize(
    ("value", "extra", "vips"),
    [
        # 2.0.20 on `docker run`: the baseimage's PYTHON2BASH list.
        (
            "#PYTHON2BASH:['203.0.113.10', '2001:db8::10/64 dev eth2']",
            {},
            ["203.0.113.10/32@eth0", "2001:db8::10/64@eth2"],
        ),
        # 2.0.20's YAML list: the names of one variable per row (startup.sh's ${!vip}).
        (
            "KEEPALIVED_VIRTUAL_IPS_ROW_1 KEEPALIVED_VIRTUAL_IPS_ROW_2",
            {
                "KEEPALIVED_VIRTUAL_IPS_ROW_1": "203.0.113.10/24 dev eth0 label eth0:1",
                "KEEPALIVED_VIRTUAL_IPS_ROW_2": "203.0.113.11",
            },
            ["203.0.113.10/24@eth0", "203.0.113.11/32@eth0"],
        ),
        ("#PYTHON2BASH:'2001:db8::10'", {}, ["2001:db8::10/128@eth0"]),
    ],
)
def test_osixia_list_forms(value: str, extra: dict[str, str], vips: list[str]) -> None:
    argv = translate([], {"KEEPALIVED_VIRTUAL_IPS": value, **extra})
    assert [v for option, v in _pairs(argv) if option == "--vip"] == vips


def test_osixia_peers_as_python2bash_and_the_notify_script() -> None:
    env = {
        "KEEPALIVED_VIRTUAL_IPS": "203.0.113.10",
        "KEEPALIVED_UNICAST_PEERS": "#PYTHON2BASH:['198.51.100.1', '198.51.100.2']",
        "KEEPALIVED_NOTIFY": "/container/notify.sh",
    }
    pairs = _pairs(translate([], env))
    assert [v for o, v in pairs if o == "--unicast-peer"] == ["198.51.100.1", "198.51.100.2"]
    assert ("--notify", "/container/notify.sh") in pairs
    # 2.3.4's name wins over 2.0.20's.
    pairs = _pairs(translate([], {**env, "KEEPALIVED_NOTIFY_SCRIPT": "/n.sh"}))
    assert [v for o, v in pairs if o == "--notify"] == ["/n.sh"]


def test_osixia_state_and_unread_variables_leave_notes() -> None:
    env = {
        **OSIXIA,
        "KEEPALIVED_STATE": "MASTER",
        "KEEPALIVED_COMMAND_LINE_ARGUMENTS": "--log-detail --dump-conf",
        "KEEPALIVED_CONF": "/etc/keepalived/keepalived.conf",
    }
    translation = explain([], env)
    assert len(translation.notes) == 3
    assert any("KEEPALIVED_STATE MASTER" in note for note in translation.notes)
    assert any("KEEPALIVED_CONF is not read" in note for note in translation.notes)


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"KEEPALIVED_INTERFACE": "eth0"}, "KEEPALIVED_VIRTUAL_IPS:"),
        ({"KEEPALIVED_VIRTUAL_IPS": "#PYTHON2BASH:['203.0.113.10'"}, "KEEPALIVED_VIRTUAL_IPS:"),
        ({"KEEPALIVED_VIRTUAL_IPS": "#PYTHON2BASH:[1, 2]"}, "KEEPALIVED_VIRTUAL_IPS:"),
        ({"KEEPALIVED_VIRTUAL_IPS": "vip.example"}, "KEEPALIVED_VIRTUAL_IPS:"),
        (
            {"KEEPALIVED_VIRTUAL_IPS": "#PYTHON2BASH:['203.0.113.10 brd 203.0.113.255']"},
            "KEEPALIVED_VIRTUAL_IPS:",
        ),
        (
            {"KEEPALIVED_VIRTUAL_IPS": "#PYTHON2BASH:['203.0.113.10 dev']"},
            "KEEPALIVED_VIRTUAL_IPS:",
        ),
        ({**OSIXIA, "KEEPALIVED_STATE": "FAULT"}, "KEEPALIVED_STATE:"),
        (
            {**OSIXIA, "UCARP_ADDR": "203.0.113.10"},
            "UCARP_ADDR and KEEPALIVED_*:",
        ),
    ],
)
def test_each_bad_osixia_variable_is_named(env: dict[str, str], named: str) -> None:
    problems = _problems(lambda: translate([], env))
    assert problems and problems[0].startswith(named), problems
    assert not any("s3cr3t" in problem for problem in problems)


def test_osixia_bad_values_are_left_to_the_run_options() -> None:
    argv = translate([], {**OSIXIA, "KEEPALIVED_PASSWORD": "longer-than-8"})
    problems = _problems(lambda: _osixia_group(argv))
    assert any(p.startswith("--auth-pass:") for p in problems)
    assert not any("longer-than-8" in p for p in problems)
